"""Tests of the code analyses (selfpose.pose.analyze)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from selfpose.data.sequence import SequenceMeta
from selfpose.data.store import Dataset, DatasetWriter
from selfpose.models.temporal import ModelConfig, TemporalModel
from selfpose.pose.analyze import (AnalyzeError, analyze, code_fn, kmeans_subject_accuracy, pick_transfer_frames,
                                   sample_frames_by_subject, transfer_pictures)

SMALL = dict(image_size=64, crop_size=32, detector_input=32, detector_width=8, encoder_width=8, v_dim=16, i_dim=12,
             decoder_channels=16, decoder_hidden=64)


def _model(**kw) -> TemporalModel:
    torch.manual_seed(0)
    return TemporalModel(ModelConfig(**{**SMALL, **kw}))


@pytest.fixture(scope="module")
def tiny_ds(tmp_path_factory) -> Dataset:
    """3 subjects with distinct colours, 2 sequences each of 10-30 frames, 64 px."""
    root = tmp_path_factory.mktemp("ds") / "tiny"
    rng = np.random.default_rng(0)
    with DatasetWriter(root) as w:
        for s, colour in enumerate([(200, 40, 40), (40, 200, 40), (40, 40, 200)]):
            for q in range(2):
                T = 10 + 10 * q + s
                f = rng.integers(0, 60, (T, 64, 64, 3), dtype=np.uint8)
                f[:, 16:56, 24:40] = colour
                meta = SequenceMeta(f"S{s}_q{q}", f"S{s}", "act", f"S{s}_q{q}", "0", 25.0, T, 64, 64)
                w.write_sequence(meta, frames=f, frame_ids=np.arange(T))
    return Dataset.open(root)


def test_kmeans_separated_clusters_and_permuted_names():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 32)) * 10
    subjects = np.repeat(["bob", "amy", "cid", "dan"], 50)
    x = centres[np.repeat(np.arange(4), 50)] + rng.normal(size=(200, 32)) * 0.3
    assert kmeans_subject_accuracy(x, subjects) == 1.0
    assert kmeans_subject_accuracy(torch.from_numpy(x), subjects, normalize=False) == 1.0


def test_kmeans_random_features_near_chance():
    rng = np.random.default_rng(1)
    subjects = np.repeat(np.arange(4), 100)
    acc = kmeans_subject_accuracy(rng.normal(size=(400, 16)), subjects, seed=0)
    assert 0.25 <= acc < 0.4   # chance = 1/4; the best matching adds a little


def test_kmeans_half_separated_and_errors():
    rng = np.random.default_rng(2)
    # subjects 0/1 identical, 2 separate: two clusters are mixed → ~2/3 + noise
    subjects = np.repeat(np.arange(3), 60)
    centres = np.array([[10.0, 0], [10.0, 0], [0, 10.0]])
    x = centres[subjects] + rng.normal(size=(180, 2)) * 0.5
    acc = kmeans_subject_accuracy(x, subjects)
    assert 0.6 < acc < 0.85
    with pytest.raises(AnalyzeError, match="at least 2 subjects"):
        kmeans_subject_accuracy(x, np.zeros(180))
    with pytest.raises(AnalyzeError, match=r"\(N,\)"):
        kmeans_subject_accuracy(x, subjects[:10])
    with pytest.raises(AnalyzeError, match="NaN"):
        kmeans_subject_accuracy(np.full((180, 2), np.nan), subjects)


def test_sample_frames_by_subject_is_balanced(tiny_ds):
    f = sample_frames_by_subject(tiny_ds, max_frames=30)
    subj = np.array([tiny_ds.sequences[s].meta.subject for s in f[:, 0]])
    assert [int((subj == s).sum()) for s in ("S0", "S1", "S2")] == [10, 10, 10]
    # evenly spread: both sequences of every subject contribute, indices are in range
    assert len(set(f[:, 0].tolist())) == 6
    assert all(0 <= i < tiny_ds.sequences[s].meta.num_frames for s, i in f)
    assert len(sample_frames_by_subject(tiny_ds, max_frames=10_000)) == tiny_ds.num_frames


def test_analyze_with_fit_callback(tiny_ds):
    model = _model()
    model.train()
    seen = []

    def fit_fn(feature_fn):
        x = torch.rand(5, 3, 64, 64)
        d = feature_fn(x).shape[1]
        seen.append(d)
        return {"n_mpjpe": 100.0 + d}

    res = analyze(model, tiny_ds, fit_fn=fit_fn, max_frames=60, progress=False)
    assert res["num_frames"] == 60 and res["num_subjects"] == 3 and res["subjects"] == ["S0", "S1", "S2"]
    assert np.isclose(res["chance"], 1 / 3)
    for k in ("kmeans_v", "kmeans_i"):
        assert 1 / 3 - 1e-9 <= res[k] <= 1.0
    assert seen == [16, 12]   # v first, then i
    assert res["pose_from_v"] == {"n_mpjpe": 116.0} and res["pose_from_i"] == {"n_mpjpe": 112.0}
    assert model.training  # mode restored

    unsplit = _model(split=False)
    res2 = analyze(unsplit, tiny_ds, max_frames=30, progress=False)
    assert res2["kmeans_i"] is None and res2["pose_from_v"] is None
    with pytest.raises(AnalyzeError, match="split=false"):
        code_fn(unsplit, "i")
    with pytest.raises(AnalyzeError, match="at least 2 subjects"):
        analyze(model, tiny_ds.select(subjects=["S1"]), progress=False)


def test_transfer_pictures(tiny_ds, tmp_path):
    model = _model()
    picks = pick_transfer_frames(tiny_ds, num=3, seed=0)
    assert len({tiny_ds.sequence(s).meta.subject for s, _ in picks}) == 3
    grid = transfer_pictures(model, tiny_ds, picks, tmp_path / "t.png", cell_px=60)
    assert grid.dtype == np.uint8 and (tmp_path / "t.png").is_file()
    assert 4 * 60 < grid.shape[1] < 4 * 60 + 200 and 4 * 60 < grid.shape[0] < 4 * 60 + 80
    grid4 = transfer_pictures(model, tiny_ds, num=4, seed=1, cell_px=60)
    assert grid4.shape[1] - grid.shape[1] >= 60   # one more column
    with pytest.raises(AnalyzeError, match="decoder"):
        transfer_pictures(_model(decoder=False), tiny_ds)
    with pytest.raises(AnalyzeError, match="split"):
        transfer_pictures(_model(split=False), tiny_ds)
    with pytest.raises(AnalyzeError, match="out of range"):
        transfer_pictures(model, tiny_ds, [("S0_q0", 99)])


def test_take_halves_alternate_each_persons_takes():
    from selfpose.pose.analyze import take_halves

    people = ["A", "A", "A", "A", "B", "B", "B"]
    takes = ["a2", "a1", "a3", "a1", "b1", "b2", "b2"]
    fit = take_halves(people, takes)
    # A's sorted takes a1, a2, a3: a1 and a3 fit the classifier, a2 scores it; B: b1 fits, b2 scores
    assert fit.tolist() == [False, True, True, True, True, False, False]


def test_classify_people_reads_a_code_that_holds_the_person_and_not_noise():
    from selfpose.pose.analyze import classify_people, take_halves

    rng = np.random.default_rng(0)
    people = np.repeat(["Q0", "Q1", "Q2"], 40)
    takes = np.array([f"{p}_take{k % 4}" for k, p in enumerate(people)])
    fit = take_halves(people, takes)
    onehot = (people[:, None] == np.array(["Q0", "Q1", "Q2"])[None]).astype(float)
    codes = {"v": rng.normal(size=(120, 6)), "i": np.hstack([onehot, rng.normal(0, 0.1, (120, 3))]), "none": None}
    r = classify_people(codes, people, fit)
    assert r["i"] == 1.0 and r["v"] < 0.6 and r["none"] is None      # chance is 1/3
    assert r["chance"] == pytest.approx(1 / 3) and r["frames"] == 120


def test_person_classification_on_a_model_and_a_dataset(tiny_ds):
    """Three people in distinct colours, two takes each: one take fits the classifier, the other scores it."""
    from selfpose.pose.analyze import person_classification

    r = person_classification(_model(), tiny_ds, progress=False)
    assert r["label"] == "subject" and r["people"] == 3 and r["frames"] == 96    # every frame: fewer than 2000
    # scored on the second takes (20, 21, 22 frames): chance is the largest one's share
    assert r["chance"] == pytest.approx(22 / 63)
    # the colour tells the people apart, even to a random network, on takes the classifier never saw
    assert r["v"] > 0.9 and r["i"] > 0.9
    assert person_classification(_model(split=False), tiny_ds, progress=False)["i"] is None


def test_person_classification_reads_the_box_for_a_method_that_crops_there(tmp_path):
    """A method that reads the person at the stored box (sync's true_box crop) is analysed on that crop."""
    from selfpose.config import from_dict
    from selfpose.methods.registry import build
    from selfpose.pose.analyze import _codes, person_classification
    from selfpose.pretrain import PretrainConfig

    rng = np.random.default_rng(0)
    root = tmp_path / "boxed"
    with DatasetWriter(root) as w:
        for s, colour in enumerate([(200, 40, 40), (40, 200, 40)]):
            for q in range(2):
                T = 12 + q
                f = rng.integers(0, 60, (T, 64, 64, 3), dtype=np.uint8)
                f[:, 16:56, 24:40] = colour
                boxes = np.tile(np.array([24, 16, 40, 56], np.float32), (T, 1))
                meta = SequenceMeta(f"S{s}_q{q}", f"S{s}", "act", f"S{s}_q{q}", "0", 25.0, T, 64, 64)
                w.write_sequence(meta, frames=f, frame_ids=np.arange(T), boxes=boxes)
    ds = Dataset.open(root)
    torch.manual_seed(0)
    m = build("sync", from_dict(PretrainConfig, {"method": "sync", "model": {"image_size": 64, "crop_size": 32,
                                                                            "encoder_width": 8}}))
    v, i, fs = _codes(m, ds, np.array([[0, 0], [0, 3]]), batch_size=8, progress=False)
    assert i is None and v.shape == (2, m.feature_dim)
    rec = list(ds)[0]
    frames = torch.from_numpy(np.ascontiguousarray(rec["frames"][[0, 3]])).permute(0, 3, 1, 2)
    with torch.no_grad():
        m.eval()
        want = m.pose_features(frames, torch.from_numpy(np.ascontiguousarray(rec["boxes"][[0, 3]])))
    torch.testing.assert_close(torch.as_tensor(v), want, atol=1e-4, rtol=1e-4)
    r = person_classification(m, ds, progress=False)
    assert r["i"] is None and r["people"] == 2 and r["v"] > 0.9      # the colours tell them apart
