"""Index samplers: distance constraints, fps conversion, determinism, clear errors."""

import logging

import numpy as np
import pytest

from selfpose.data.samplers import (PAPER_DISTANCES, ContrastivePairSampler, DSLSampler, GravitySampler,
                                    MultiViewSyncSampler, MultiViewTripletSampler, SamplerError, make_sampler, paper_distances_s,
                                    seconds_to_frames)
from selfpose.data.sequence import SequenceMeta
from selfpose.data.store import Dataset, DatasetWriter


def meta(i, T, fps=50.0, take=None, view="c0", subject="S1"):
    return SequenceMeta(f"seq{i}", subject, "walk", take or f"take{i}", view, fps, T, 4, 4)


def test_paper_distances_in_seconds():
    assert paper_distances_s("h36m") == pytest.approx((0.2, 4.0))
    assert paper_distances_s("mpi_inf_3dhp") == pytest.approx((0.4, 18.0))
    for name, (fps, d_pos, d_neg) in PAPER_DISTANCES.items():
        p, n = paper_distances_s(name)
        assert (seconds_to_frames(p, fps), seconds_to_frames(n, fps)) == (d_pos, d_neg)
    with pytest.raises(KeyError, match="known"):
        paper_distances_s("nope")


def test_dsl_tuples_respect_distances():
    metas = [meta(0, 300, 50.0), meta(1, 1000, 50.0), meta(2, 150, 25.0), meta(3, 2000, 50.0)]
    s = DSLSampler(metas, d_pos_s=0.2, d_neg_s=4.0)
    b = s.sample(20000, rng=0)
    assert b.frames.shape == b.seq.shape == (20000, 4)
    assert np.all(b.seq == b.seq[:, :1])  # one sequence per tuple
    T = s.lengths[b.seq[:, 0]]
    assert np.all((b.frames >= 0) & (b.frames < T[:, None]))
    d = np.abs(b.frames - b.frames[:, :1])
    dp, dn = b.extras["d_pos"], b.extras["d_neg"]
    assert np.all((d[:, 1] >= 1) & (d[:, 1] <= dp))  # near
    assert np.all((d[:, 2] > dp) & (d[:, 2] < dn))  # intermediate
    assert np.all(d[:, 3] >= dn)  # far
    np.testing.assert_array_equal(b.extras["delta"][:, 0], d)
    # fps conversion: the same 0.2 s / 4 s are 5 / 100 frames at 25 fps, 10 / 200 at 50 fps.
    at25 = b.seq[:, 0] == 2
    assert set(dp[at25]) == {5} and set(dn[at25]) == {100}
    assert set(dp[~at25]) == {10} and set(dn[~at25]) == {200}
    # Sequences are drawn ∝ usable reference frames: the longest one most often.
    counts = np.bincount(b.seq[:, 0], minlength=4)
    assert counts[3] > counts[1] > counts[0]
    # Near frames go both ways; far frames of a long sequence too.
    assert (b.frames[:, 1] < b.frames[:, 0]).any() and (b.frames[:, 1] > b.frames[:, 0]).any()


def test_sampling_is_seeded_and_vectorised_fast():
    s = DSLSampler([meta(i, 500 + 37 * i) for i in range(50)])
    a, b, c = s.sample(100, 7), s.sample(100, 7), s.sample(100, 8)
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.seq, b.seq)
    assert not np.array_equal(a.frames, c.frames)
    # Speed is measured by benchmarks/bench_data.py, not asserted here.


def test_too_short_sequences_are_excluded_with_a_warning(caplog):
    metas = [meta(0, 1000), meta(1, 150), meta(2, 201)]  # 200 frames = 4 s at 50 fps: 150 is too short
    with caplog.at_level(logging.WARNING, logger="selfpose.data.samplers"):
        s = DSLSampler(metas, 0.2, 4.0)
    assert s.excluded == ["seq1"]
    assert "seq1" in caplog.text and "150 frames" in caplog.text
    b = s.sample(2000, 0)
    assert set(np.unique(b.seq)) == {0, 2}
    # Exactly long enough: every reference is at one end, the far frame at the other.
    ends = b.frames[b.seq[:, 0] == 2]
    assert set(np.unique(ends[:, [0, 3]])) == {0, 200}
    with pytest.raises(SamplerError, match="seq1"):
        DSLSampler(metas, 0.2, 4.0, strict=True)


def test_no_qualifying_sequence_is_an_error_naming_them():
    with pytest.raises(SamplerError) as e:
        DSLSampler([meta(0, 120, 25.0), meta(1, 90, 25.0)], 0.2, 18.0)
    msg = str(e.value)
    assert "'seq0'" in msg and "120 frames at 25 fps" in msg and "18 s" in msg and "Lower d_neg_s" in msg
    with pytest.raises(SamplerError, match="step_s"):
        GravitySampler([meta(0, 10, 25.0)], step_s=1.0)
    with pytest.raises(SamplerError, match="d_pos_s < d_neg_s"):
        DSLSampler([meta(0, 1000)], 1.0, 0.5)
    with pytest.raises(SamplerError, match="no intermediate"):
        DSLSampler([meta(0, 1000, 10.0)], 0.2, 0.25)


def test_contrastive_pairs():
    s = ContrastivePairSampler([meta(0, 600), meta(1, 900, 25.0)], 0.2, 4.0, num_negatives=5)
    b = s.sample(5000, 1)
    assert b.frames.shape == (5000, 7)
    d = np.abs(b.frames - b.frames[:, :1])
    assert np.all((d[:, 1] >= 1) & (d[:, 1] <= b.extras["d_pos"]))
    assert np.all(d[:, 2:] >= b.extras["d_neg"][:, None])
    T = s.lengths[b.seq[:, 0]]
    assert np.all(b.frames < T[:, None]) and np.all(b.seq == b.seq[:, :1])


def test_gravity_frames_are_equidistant():
    s = GravitySampler([meta(0, 40, 25.0), meta(1, 100, 50.0)], step_s=0.2)
    b = s.sample(3000, 2)
    steps = np.diff(b.frames, axis=1)
    assert np.all(steps == b.extras["step"][:, None])
    assert set(b.extras["step"][b.seq[:, 0] == 0]) == {5} and set(b.extras["step"][b.seq[:, 0] == 1]) == {10}
    assert np.all(b.frames[:, 0] >= 0) and np.all(b.frames[:, 3] < s.lengths[b.seq[:, 0]])


def _multiview_store(tmp_path):
    """Take A: 3 views, 50 fps, the stored frames are every frame id 10..409 (view c2 starts later).
    Take B: 2 views at 25 fps storing every 2nd frame id of a 50 fps recording. Take C: one view."""
    with DatasetWriter(tmp_path / "mv") as w:
        for v, first in (("c0", 10), ("c1", 10), ("c2", 30)):
            ids = np.arange(first, 410)
            w.write_sequence(meta(f"A{v}", len(ids), 50.0, take="A", view=v), frame_ids=ids,
                             frames=np.zeros((len(ids), 4, 4, 3), np.uint8))
        for v in ("c0", "c1"):
            ids = np.arange(0, 800, 2)
            w.write_sequence(meta(f"B{v}", len(ids), 25.0, take="B", view=v), frame_ids=ids,
                             frames=np.zeros((len(ids), 4, 4, 3), np.uint8))
        w.write_sequence(meta("C", 50), frames=np.zeros((50, 4, 4, 3), np.uint8))
    return Dataset.open(tmp_path / "mv")


def test_multiview_sync_pairs(tmp_path, caplog):
    ds = _multiview_store(tmp_path)
    with caplog.at_level(logging.WARNING, logger="selfpose.data.samplers"):
        s = MultiViewSyncSampler(ds, min_offset_s=4 / 50, max_offset_s=128 / 50)
    assert "'takeC'" in caplog.text and "only one view" in caplog.text  # take of sequence C
    b = s.sample(6000, 3)
    assert b.frames.shape == (6000, 2)
    metas = [r.meta for r in ds.sequences]
    fid = np.array([ds.sequences[q]["frame_ids"][f] for q, f in zip(b.seq.ravel(), b.frames.ravel())]).reshape(-1, 2)
    take = np.array([[metas[q].take for q in row] for row in b.seq])
    view = np.array([[metas[q].view for q in row] for row in b.seq])
    assert np.all(take[:, 0] == take[:, 1]) and np.all(view[:, 0] != view[:, 1])
    sync = b.extras["sync"]
    assert 0.4 < sync.mean() < 0.6 and 0.4 < b.extras["flip"].mean() < 0.6
    assert np.all(fid[sync, 0] == fid[sync, 1])
    dt = np.abs(fid[:, 1] - fid[:, 0])
    np.testing.assert_array_equal(dt, np.abs(b.extras["dt"]))
    # Take A: ids are 50 fps frames → 4 < |Δ| < 128 ids. Take B: ids are also 50 fps frames
    # (25 fps stored × id step 2), so the same time limits are the same id limits.
    un = ~sync
    assert np.all((dt[un] > 4) & (dt[un] < 128))
    for t in ("A", "B"):  # the whole range is used in both takes
        sel = un & (take[:, 0] == t)
        assert dt[sel].min() <= 8 and dt[sel].max() >= 120, t
    assert set(take[:, 0]) == {"A", "B"}


def test_multiview_errors(tmp_path):
    with pytest.raises(SamplerError, match="no take qualifies.*only one view"):
        MultiViewSyncSampler([meta(0, 100), meta(1, 100)])
    with pytest.raises(SamplerError, match="too short for an unsynchronised pair"):
        MultiViewSyncSampler([meta(0, 4, take="t", view="a"), meta(1, 4, take="t", view="b")])


def test_multiview_triplets(tmp_path, caplog):
    ds = _multiview_store(tmp_path)
    with caplog.at_level(logging.WARNING, logger="selfpose.data.samplers"):
        s = MultiViewTripletSampler(ds, d_neg_s=2.0)
    b = s.sample(3000, 5)
    assert b.frames.shape == b.seq.shape == (3000, 3)
    metas = [r.meta for r in ds.sequences]
    fid = np.array([ds.sequences[q]["frame_ids"][f] for q, f in zip(b.seq.ravel(), b.frames.ravel())]).reshape(-1, 3)
    view = np.array([[metas[q].view for q in row] for row in b.seq])
    take = np.array([[metas[q].take for q in row] for row in b.seq])
    assert np.all(take == take[:, :1])
    assert np.all(view[:, 0] != view[:, 1]) and np.all(fid[:, 0] == fid[:, 1])   # positive: same instant, other view
    assert np.all(b.seq[:, 2] == b.seq[:, 0])                                     # negative: the anchor's video
    fps = np.array([metas[q].fps for q in b.seq[:, 0]])
    gap_s = np.abs(b.frames[:, 2] - b.frames[:, 0]) / fps
    assert gap_s.min() >= 2.0 - 1e-9
    np.testing.assert_array_equal(b.extras["dt"], np.abs(b.frames[:, 2] - b.frames[:, 0]))
    assert make_sampler("tcn", ds, d_neg_s=2.0).kind == "tcn"
    with pytest.raises(SamplerError, match="shorter than 2 × d_neg_s"):
        MultiViewTripletSampler(ds, d_neg_s=100.0)


def test_make_sampler_by_name():
    assert isinstance(make_sampler("gravity", [meta(0, 100)], step_s=0.1), GravitySampler)
    with pytest.raises(SamplerError, match="choose one of"):
        make_sampler("triplets", [meta(0, 100)])


def _moving_store(tmp_path, still=(100, 160)):
    """One take, three views at 50 fps (frame ids 0..299): a square moves except in frames ``still``;
    a second take with one view only."""
    T = 300
    frames = np.full((T, 16, 16, 3), 80, np.uint8)
    for t in range(T):
        x = t % 10 if not still[0] <= t < still[1] else still[0] % 10
        frames[t, 4:10, x:x + 6] = 220
    with DatasetWriter(tmp_path / "moving") as w:
        for v in ("c0", "c1", "c2"):
            w.write_sequence(SequenceMeta(f"M{v}", "S1", "walk", "M", v, 50.0, T, 16, 16),
                             frame_ids=np.arange(T), frames=frames)
        w.write_sequence(SequenceMeta("solo", "S1", "walk", "solo", "c0", 50.0, T, 16, 16),
                         frame_ids=np.arange(T), frames=frames)
    return Dataset.open(tmp_path / "moving")


def test_sync_sampler_pairs_views_and_instants(tmp_path):
    from selfpose.data.samplers import SyncPairSampler

    ds = _multiview_store(tmp_path)
    s = make_sampler("sync", ds, still_fraction=0.0)
    assert isinstance(s, SyncPairSampler)
    b = s.sample(8000, 5)
    metas = [r.meta for r in ds.sequences]
    fid = np.array([ds.sequences[q]["frame_ids"][f] for q, f in zip(b.seq.ravel(), b.frames.ravel())]).reshape(-1, 2)
    take = np.array([[metas[q].take for q in row] for row in b.seq])
    view = np.array([[metas[q].view for q in row] for row in b.seq])
    sync, flip = b.extras["sync"], b.extras["flip"]
    assert np.all(take[:, 0] == take[:, 1]) and np.all(view[:, 0] != view[:, 1])   # two views of one take
    assert np.all(fid[sync, 0] == fid[sync, 1])                                    # same instant
    dt = np.abs(fid[~sync, 1] - fid[~sync, 0])
    assert np.all((dt > 4) & (dt < 128))                                           # 0.08 s < |Δt| < 2.56 s at 50 fps
    # only synchronised pairs are flipped, about flip_prob of them
    assert not flip[~sync].any() and 0.4 < flip[sync].mean() < 0.6 and 0.4 < sync.mean() < 0.6
    # flip_unsync: unsynchronised pairs are mirrored at the same rate, so "flipped" no longer tells "synchronised"
    u = make_sampler("sync", ds, still_fraction=0.0, flip_unsync=True).sample(8000, 5)
    us, uf = u.extras["sync"], u.extras["flip"]
    assert 0.45 < uf[~us].mean() < 0.55 and 0.45 < uf[us].mean() < 0.55
    assert abs(us[uf].mean() - us[~uf].mean()) < 0.04


def test_sync_sampler_groups_of_instants(tmp_path):
    """``instants`` = M: M instants of one take in two views, every two of them inside the offsets."""
    ds = _multiview_store(tmp_path)
    M = 6
    s = make_sampler("sync", ds, still_fraction=0.0, instants=M)
    b = s.sample(500, 3)
    assert b.seq.shape == b.frames.shape == (500, 2 * M)
    metas = [r.meta for r in ds.sequences]
    fid = np.array([ds.sequences[q]["frame_ids"][f] for q, f in zip(b.seq.ravel(), b.frames.ravel())]).reshape(b.seq.shape)
    take = np.array([[metas[q].take for q in row] for row in b.seq])
    view = np.array([[metas[q].view for q in row] for row in b.seq])
    assert np.all(take == take[:, :1])                                       # one take per item
    assert np.all(view[:, :M] == view[:, :1]) and np.all(view[:, M:] == view[:, M:M + 1])
    assert np.all(view[:, 0] != view[:, M])                                  # two different views
    np.testing.assert_array_equal(fid[:, :M], fid[:, M:])                   # view b at view a's instants
    dt, sync = b.extras["dt"], b.extras["sync"]
    np.testing.assert_array_equal(dt, fid[:, None, M:] - fid[:, :M, None])  # dt[i, j] = id(b_j) - id(a_i)
    np.testing.assert_array_equal(sync, np.broadcast_to(np.eye(M, dtype=bool), (500, M, M)))
    off = np.abs(dt[~sync])
    assert np.all((off > 4) & (off < 128))                                   # 0.08 s < |Δt| < 2.56 s at 50 fps
    assert b.extras["flip"].shape == (500, M) and 0.45 < b.extras["flip"].mean() < 0.55
    # from the config, and a group that cannot fit the offsets is a one-line error naming the key
    from selfpose.methods.temporal import SamplerConfig

    assert make_sampler("sync", ds, SamplerConfig(still_fraction=0.0, sync_instants=3)).instants == 3
    with pytest.raises(SamplerError, match="sync_instants"):
        make_sampler("sync", ds, still_fraction=0.0, instants=40).sample(4, 0)   # 40 instants > 4 apart in < 128
    with pytest.raises(SamplerError, match="instants must be"):
        make_sampler("sync", ds, still_fraction=0.0, instants=0)


def test_sync_sampler_skips_still_frames(tmp_path):
    ds = _moving_store(tmp_path)
    s = make_sampler("sync", ds, still_fraction=0.25)
    assert "'solo'" in " ".join(s.excluded)        # one view: no pair of views
    b = s.sample(5000, 1)
    f = b.frames
    inner = (f >= 104) & (f < 156)                 # the still block, away from its edges (motion_gap 4 frames)
    assert not inner.any()
    e = s.energy["M"]
    assert e[104:156].max() == 0 and e[:90].min() > 0
    assert len(s.takes[0].ids) == 300 - 75         # exactly the still fraction skipped
    # without skipping, the still block is drawn like any other frame
    f0 = make_sampler("sync", ds, still_fraction=0.0).sample(5000, 1).frames
    assert ((f0 >= 104) & (f0 < 156)).mean() > 0.1


def test_sync_sampler_single_view(tmp_path):
    ds = _moving_store(tmp_path)
    s = make_sampler("sync", ds, still_fraction=0.0, single_view=True)
    b = s.sample(4000, 2)
    assert np.all(b.seq[:, 0] == b.seq[:, 1])              # one camera: both images from one video
    sync = b.extras["sync"]
    assert np.all(b.frames[sync, 0] == b.frames[sync, 1])  # "synchronised" = the same frame twice
    dt = np.abs(b.frames[~sync, 1] - b.frames[~sync, 0])
    assert np.all((dt > 4) & (dt < 128))
    assert len(np.unique(b.seq[:, 0])) == 4                # every video, the single-view take included


def test_sync_sampler_errors(tmp_path):
    from selfpose.data.samplers import SyncPairSampler

    metas = [meta(0, 300, take="t", view="a"), meta(1, 300, take="t", view="b")]
    with pytest.raises(SamplerError, match="reads the frames"):
        SyncPairSampler(metas, still_fraction=0.2)
    with pytest.raises(SamplerError, match="sync_prob"):
        SyncPairSampler(metas, sync_prob=1.0, still_fraction=0.0)
    assert len(SyncPairSampler(metas, still_fraction=0.0).sample(10, 0)) == 10
