"""Streaming feature extraction: shapes, row order, labels, batching, persistence."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from selfpose.data.sequence import SequenceMeta
from selfpose.data.store import Dataset, DatasetWriter
from selfpose.pose.features import FeatureError, FeatureSet, extract, read_arrays
from selfpose.pose.labels import label_subset


def make_store(path, sizes=((8, 8), (8, 8), (8, 8))):
    """Frames whose pixel (0, 0) says (frame index, sequence index, 7) so features can be checked."""
    rng = np.random.default_rng(1)
    with DatasetWriter(path) as w:
        for s, (h, wd) in enumerate(sizes):
            T = 9 + 3 * s
            frames = np.zeros((T, h, wd, 3), np.uint8)
            frames[:, :, :, 0] = np.arange(T)[:, None, None]
            frames[:, :, :, 1] = s
            frames[:, :, :, 2] = 7
            meta = SequenceMeta(id=f"seq{s}", subject=f"S{s % 2}", action=["walk", "sit", "jump"][s % 3],
                                take=f"take{s}", view="c0", fps=10.0, num_frames=T, height=h, width=wd)
            j3 = rng.normal(0, 300, (T, 17, 3)).astype(np.float32) + np.array([0, 0, 4000], np.float32)
            boxes = np.tile(np.array([1, 1, 5, 6], np.float32), (T, 1))
            w.write_sequence(meta, frames=frames, joints3d=j3, boxes=boxes,
                             joints2d=rng.uniform(0, 8, (T, 17, 2)).astype(np.float32),
                             frame_ids=np.arange(T, dtype=np.int64) + 100)
    return Dataset.open(path)


def corner_fn(frames):
    assert torch.is_inference_mode_enabled()
    return frames[:, :, 0, 0] * 255  # (B, 3): frame index, sequence index, 7


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return make_store(tmp_path_factory.mktemp("features") / "store")


def test_extract_rows_follow_the_index_and_carry_labels(ds):
    f = label_subset(ds, 1.0)
    f = f[np.random.default_rng(0).permutation(len(f))]
    calls = []
    fs = extract(lambda x: calls.append(len(x)) or corner_fn(x), ds, f, batch_size=5, progress=False)
    assert len(fs) == len(f) and fs.features.shape == (len(f), 3) and fs.features.dtype == np.float32
    np.testing.assert_allclose(fs.features[:, 0], f[:, 1], atol=1e-4)
    np.testing.assert_allclose(fs.features[:, 1], f[:, 0], atol=1e-4)
    assert max(calls) <= 5 and len(calls) >= len(f) // 5  # streamed in batches
    # 3D: pelvis-centred, root kept aside, in mm
    raw = np.stack([ds.sequences[s]["joints3d"][t] for s, t in f])
    np.testing.assert_allclose(fs.joints3d, raw - raw[:, :1], atol=1e-3)
    np.testing.assert_allclose(fs.root3d, raw[:, 0])
    assert np.all(fs.joints3d[:, 0] == 0)
    assert fs.joints2d.shape == (len(f), 17, 2) and fs.boxes.shape == (len(f), 4)
    np.testing.assert_array_equal(fs.frame_ids, f[:, 1] + 100)
    assert list(fs.sequence_ids[:3]) == [f"seq{s}" for s in f[:3, 0]]
    assert set(fs.actions) == {"walk", "sit", "jump"} and set(fs.subjects) == {"S0", "S1"}
    assert fs.pred_boxes is None and fs.pred_joints2d is None


def test_mapping_output_and_box_fn(ds):
    f = label_subset(ds, 0.5)

    def fn(x):
        return {"features": corner_fn(x), "boxes": torch.tensor([[0.0, 0, 4, 4]]).repeat(len(x), 1),
                "joints2d": torch.zeros(len(x), 17, 2)}

    fs = extract(fn, ds, f, batch_size=4, progress=False)
    assert fs.pred_boxes.shape == (len(f), 4) and np.all(fs.pred_boxes[:, 2] == 4)
    assert fs.joints2d_input() is fs.pred_joints2d
    fs2 = extract(corner_fn, ds, f, box_fn=lambda x: torch.ones(len(x), 4), progress=False)
    assert np.all(fs2.pred_boxes == 1)


def test_batches_never_mix_frame_sizes(tmp_path):
    ds = make_store(tmp_path / "mixed", sizes=((8, 8), (12, 10), (8, 8)))
    seen = []

    def fn(x):
        seen.append(tuple(x.shape[-2:]))
        return corner_fn(x)

    f = label_subset(ds, 1.0)
    fs = extract(fn, ds, f, batch_size=64, progress=False)
    assert set(seen) == {(8, 8), (12, 10)} and len(seen) == 2
    np.testing.assert_allclose(fs.features[:, 1], f[:, 0], atol=1e-4)
    np.testing.assert_array_equal(fs.frame_hw[f[:, 0] == 1], [[12, 10]] * int((f[:, 0] == 1).sum()))


def test_bad_feature_functions(ds):
    f = label_subset(ds, 1.0)
    with pytest.raises(FeatureError, match="expected|shape"):
        extract(lambda x: torch.zeros(1, 3), ds, f, batch_size=4, progress=False)
    with pytest.raises(FeatureError, match="tensor"):
        extract(lambda x: np.zeros((len(x), 3)), ds, f, progress=False)
    with pytest.raises(FeatureError, match="features"):
        extract(lambda x: {"feats": x}, ds, f, progress=False)


def test_autocast_gives_float32(ds):
    lin = torch.nn.Linear(3, 4)
    fs = extract(lambda x: lin(x.mean(dim=(2, 3))), ds, label_subset(ds, 0.5), autocast=True, progress=False)
    assert fs.features.dtype == np.float32 and fs.features.shape[1] == 4


def test_save_load_round_trip_and_subset(ds, tmp_path):
    fs = extract(corner_fn, ds, label_subset(ds, 1.0), progress=False)
    back = FeatureSet.load(fs.save(tmp_path / "feats"))
    for name in ("features", "joints3d", "root3d", "boxes", "frame_ids", "seq", "frame"):
        np.testing.assert_array_equal(getattr(back, name), getattr(fs, name))
    assert list(back.actions) == list(fs.actions) and back.pred_boxes is None
    sub = fs.subset(fs.actions == "sit")
    assert len(sub) == int((fs.actions == "sit").sum()) and set(sub.actions) == {"sit"}
    with pytest.raises(FeatureError, match="extract"):
        FeatureSet.load(tmp_path / "nothing")


def test_read_arrays_in_row_order(ds):
    f = np.array([[2, 3], [0, 1], [2, 0], [0, 5]])
    got = read_arrays(ds, f, ("frames", "boxes"))
    assert got["frames"].shape == (4, 8, 8, 3)
    np.testing.assert_array_equal(got["frames"][:, 0, 0, 0], f[:, 1])
    np.testing.assert_array_equal(got["frames"][:, 0, 0, 1], f[:, 0])


def test_feature_cache_extracts_each_frame_once(ds):
    from selfpose.pose.features import FeatureCache

    calls = []

    def fn(frames):
        calls.append(len(frames))
        return corner_fn(frames)   # (B, 3): frame index, sequence index, 7

    cache = FeatureCache(fn, ds, batch_size=4, progress=False)
    some, every = label_subset(ds, 0.25), label_subset(ds, 1.0)
    a = cache.get(some)
    assert cache.extracted == len(some)
    b = cache.get(every)                                    # only the frames not seen yet are encoded
    assert cache.extracted == len(every) and sum(calls) == len(every)
    ref = extract(fn, ds, every, batch_size=4, progress=False)
    np.testing.assert_array_equal(b.features, ref.features)  # rows in the asked order, labels aligned
    np.testing.assert_array_equal(b.seq, ref.seq)
    np.testing.assert_array_equal(b.frame, ref.frame)
    np.testing.assert_array_equal(b.joints3d, ref.joints3d)
    np.testing.assert_array_equal(a.features, extract(fn, ds, some, batch_size=4, progress=False).features)
    calls.clear()
    back = cache.get(every[::-1])
    assert calls == []                                       # nothing new: nothing encoded
    np.testing.assert_array_equal(back.frame, every[::-1, 1])
    np.testing.assert_allclose(back.features[:, 0], every[::-1, 1], atol=1e-4)


def test_functions_that_read_the_background_get_each_rows_estimate(tmp_path):
    """A feature function flagged ``reads_background`` gets each row's estimated background: a static camera's one
    image or a moving camera's per-frame one, in the index's row order; a sequence without one is a clear error."""
    from selfpose.pose.features import read_backgrounds

    with DatasetWriter(tmp_path / "store") as w:
        for s in range(3):
            T = 6
            frames = np.zeros((T, 8, 8, 3), np.uint8)
            meta = SequenceMeta(id=f"seq{s}", subject="S1", action="walk", take=f"take{s}", view="c0", fps=10.0,
                                num_frames=T, height=8, width=8)
            extra = {}
            if s == 0:      # static camera: one image, pixel (0, 0) = 50
                extra["background"] = np.full((8, 8, 3), 50, np.uint8)
            elif s == 1:    # moving camera: frame k's background has pixel (0, 0) = 100 + k
                extra["backgrounds"] = np.broadcast_to((100 + np.arange(T, dtype=np.uint8))[:, None, None, None],
                                                       (T, 8, 8, 3)).copy()
            w.write_sequence(meta, frames=frames, frame_ids=np.arange(T, dtype=np.int64), **extra)
    ds = Dataset.open(tmp_path / "store")
    index = np.array([[1, 4], [0, 2], [1, 1], [1, 5], [0, 0]])
    bg = read_backgrounds(ds, index)
    assert bg.shape == (5, 8, 8, 3) and bg.dtype == np.uint8
    assert bg[:, 0, 0, 0].tolist() == [104, 50, 101, 105, 50]

    def fn(frames, background=None):
        return background[:, :, 0, 0] * 255

    fn.reads_background = True
    got = extract(fn, ds, index, batch_size=2, progress=False).features
    np.testing.assert_allclose(got[:, 0], [104, 50, 101, 105, 50], atol=1e-4)
    with pytest.raises(FeatureError, match="no estimated background.*pose_background"):
        extract(fn, ds, np.array([[2, 0]]), progress=False)
    corner = extract(corner_fn, ds, index, progress=False)   # unflagged functions are called as before
    assert corner.features.shape == (5, 3)
