"""Label fractions (every K-th frame) and leak-free validation splits."""

from __future__ import annotations

import numpy as np
import pytest

from selfpose.data.sequence import SequenceMeta
from selfpose.data.store import Dataset, DatasetWriter
from selfpose.pose.labels import (LabelError, check_frames, evenly_spaced, holdout_mask, label_stride,
                                  label_subset, split_validation)

# take → (subject, action, frames); every take has two views.
TAKES = {"S1_walk": ("S1", "walk", 40), "S1_sit": ("S1", "sit", 25), "S2_walk": ("S2", "walk", 33),
         "S2_sit": ("S2", "sit", 3), "S3_jump": ("S3", "jump", 57), "S3_walk": ("S3", "walk", 20)}


def make_store(path, takes=TAKES, views=("c0", "c1"), with_3d=True):
    rng = np.random.default_rng(0)
    with DatasetWriter(path) as w:
        for take, (subject, action, T) in takes.items():
            for v in views:
                meta = SequenceMeta(id=f"{take}__{v}", subject=subject, action=action, take=take, view=v,
                                    fps=10.0, num_frames=T, height=8, width=8)
                arrays = {"frames": rng.integers(0, 255, (T, 8, 8, 3), dtype=np.uint8)}
                if with_3d:
                    arrays["joints3d"] = rng.normal(0, 300, (T, 17, 3)).astype(np.float32)
                w.write_sequence(meta, **arrays)
    return Dataset.open(path)


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return make_store(tmp_path_factory.mktemp("labels") / "store")


def test_fraction_one_keeps_every_frame(ds):
    f = label_subset(ds, 1.0)
    assert len(f) == ds.num_frames
    assert len(np.unique(f, axis=0)) == ds.num_frames


def test_every_kth_frame_of_every_sequence(ds):
    f = label_subset(ds, 0.1, seed=3)
    assert label_stride(0.1) == 10
    for i, s in enumerate(ds.sequences):
        frames = f[f[:, 0] == i, 1]
        assert len(frames) >= 1, f"{s.id} contributes nothing"  # even S2_sit with 3 frames < K
        assert np.all(np.diff(frames) == 10)
        assert frames[0] < min(10, len(s)) and frames[-1] + 10 >= len(s)


def test_views_of_a_take_share_the_labelled_instants(ds):
    f = label_subset(ds, 0.2, seed=1)
    for take, recs in ds.takes().items():
        idx = [ds.sequences.index(r) for r in recs]
        sets = [tuple(f[f[:, 0] == i, 1]) for i in idx]
        assert all(s == sets[0] for s in sets), take


def test_all_subjects_and_actions_keep_their_share(ds):
    f = label_subset(ds, 0.25, seed=0)
    subj = np.array([ds.sequences[i].meta.subject for i in f[:, 0]])
    act = np.array([ds.sequences[i].meta.action for i in f[:, 0]])
    assert set(subj) == set(ds.subjects()) and set(act) == set(ds.actions())
    for s in ds.subjects():
        total = sum(len(r) for r in ds.sequences if r.meta.subject == s)
        assert abs((subj == s).sum() / total - 0.25) < 0.12


def test_seed_moves_offsets_deterministically(ds):
    a, b = label_subset(ds, 0.1, seed=0), label_subset(ds, 0.1, seed=0)
    np.testing.assert_array_equal(a, b)
    others = [label_subset(ds, 0.1, seed=s) for s in range(1, 6)]
    assert any(len(o) != len(a) or (o != a).any() for o in others)


def test_bad_fraction_and_missing_3d(tmp_path, ds):
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(LabelError, match="fraction"):
            label_subset(ds, bad)
    no3d = make_store(tmp_path / "no3d", takes={"A": ("S1", "walk", 5)}, with_3d=False)
    with pytest.raises(LabelError, match="joints3d"):
        label_subset(no3d, 1.0)
    assert len(label_subset(no3d, 1.0, require_3d=False)) == 10


def test_take_split_does_not_leak(ds):
    f = label_subset(ds, 1.0)
    tr, va = split_validation(ds, f, val_fraction=0.2, by="take", seed=0)
    assert len(tr) + len(va) == len(f) and len(va) >= 0.2 * len(f)

    def take(rows):
        return {ds.sequences[i].meta.take for i in rows[:, 0]}

    assert take(tr).isdisjoint(take(va)) and take(va)
    # every view of a held-out take is held out entirely
    for t in take(va):
        for r in ds.takes()[t]:
            i = ds.sequences.index(r)
            assert (va[:, 0] == i).sum() == len(r)
    rows = {tuple(r) for r in tr} | {tuple(r) for r in va}
    assert rows == {tuple(r) for r in f}


def test_sequence_and_frames_splits(ds):
    f = label_subset(ds, 1.0)
    tr, va = split_validation(ds, f, 0.1, by="sequence", seed=2)
    assert set(tr[:, 0]).isdisjoint(set(va[:, 0]))
    tr, va = split_validation(ds, f, 0.2, by="frames")
    for take, recs in ds.takes().items():
        idx = [ds.sequences.index(r) for r in recs]
        t_ids, v_ids = tr[np.isin(tr[:, 0], idx), 1], va[np.isin(va[:, 0], idx), 1]
        if len(v_ids):
            assert t_ids.max() < v_ids.min(), take  # validation is the end of the take
            assert len(t_ids)  # and some of the take stays in training


def test_subject_split_holds_out_whole_people(ds):
    """by='subject': no frame of a validation person is trained on (model selection on unseen people)."""
    f = label_subset(ds, 1.0)
    tr, va = split_validation(ds, f, 0.3, by="subject", seed=1)

    def people(rows):
        return {ds.sequences[i].meta.subject for i in rows[:, 0]}

    assert people(va) and people(tr) and people(tr).isdisjoint(people(va))
    assert len(tr) + len(va) == len(f)
    with pytest.raises(LabelError, match="subject of every sample"):
        holdout_mask(["a", "b"], ["a", "b"], [0, 0], 0.5, by="subject")
    # one person only: nobody can be held out
    with pytest.raises(LabelError, match="single subject"):
        holdout_mask(["a", "b"], ["a", "b"], [0, 0], 0.5, by="subject", subjects=["S1", "S1"])


def test_capped_validation_keeps_evenly_spaced_held_out_frames_and_trains_on_none_of_the_rest(ds):
    """pose.val_max_frames: the held-out person's frames are thinned for validation, never given to training."""
    from selfpose.pose.fit import PoseConfig
    from selfpose.pose.stage import split_labels

    f = np.arange(20).reshape(10, 2)
    assert (evenly_spaced(f, None) == f).all() and (evenly_spaced(f, 10) == f).all()
    assert evenly_spaced(f, 3)[:, 0].tolist() == [0, 8, 18]     # rows 0, 4 (4.5 rounds half to even), 9
    assert len(evenly_spaced(f, 1)) == 1
    full = PoseConfig(fraction=1.0, val_fraction=0.3, val_by="subject", seed=1)
    capped = PoseConfig(fraction=1.0, val_fraction=0.3, val_by="subject", seed=1, val_max_frames=7)
    lab0, tr0, va0 = split_labels(ds, full)
    lab1, tr1, va1 = split_labels(ds, capped)
    assert (lab0 == lab1).all() and (tr0 == tr1).all()          # training frames do not change
    assert len(va0) > 7 and len(va1) == 7
    assert {tuple(r) for r in va1} <= {tuple(r) for r in va0}     # a subset of the held-out people's frames
    assert (va1[0] == va0[0]).all() and (va1[-1] == va0[-1]).all()
    with pytest.raises(Exception, match="val_max_frames must be >= 1"):
        PoseConfig(val_max_frames=0)


def test_split_errors(tmp_path, ds):
    one = make_store(tmp_path / "one", takes={"A": ("S1", "walk", 12)})
    with pytest.raises(LabelError, match="single take"):
        split_validation(one, label_subset(one, 1.0), 0.2, by="take")
    with pytest.raises(LabelError, match="split"):
        holdout_mask(["a"], ["a"], [0], 0.1, by="nope")
    assert not holdout_mask(["a", "b"], ["a", "b"], [0, 0], 0.0).any()
    with pytest.raises(LabelError, match="out of range"):
        check_frames(ds, np.array([[0, 10_000]]))
    with pytest.raises(LabelError, match="sequence indices"):
        check_frames(ds, np.array([[99, 0]]))
