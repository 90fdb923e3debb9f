"""The torch loader: shapes, label alignment, workers, determinism, speed."""


import numpy as np
import pytest
import torch

from selfpose.data.loader import BatchIndexSampler, LoaderError, TupleDataset, make_loader, to_float
from selfpose.data.samplers import DSLSampler, GravitySampler, MultiViewSyncSampler
from selfpose.data.sequence import SequenceMeta
from selfpose.data.store import Dataset, DatasetWriter

H, W = 8, 6


def coded_store(path, lengths=(300, 260, 400), per_frame_bg=(2,), views=False):
    """Frames whose pixels encode (sequence, frame): R = t % 256, G = t // 256, B = sequence.

    Labels encode the same: boxes = (t, s, 0, 0), joints3d = t, masks = t % 2; background is
    static (value 100 + s) except for sequences in ``per_frame_bg`` (per-frame, value t % 256).
    With ``views``, sequences 0 and 1 are two views of one take.
    """
    with DatasetWriter(path) as w:
        for s, T in enumerate(lengths):
            t = np.arange(T)
            frames = np.zeros((T, H, W, 3), np.uint8)
            frames[..., 0] = (t % 256)[:, None, None]
            frames[..., 1] = (t // 256)[:, None, None]
            frames[..., 2] = s
            take, view = ("take", f"c{s}") if views and s < 2 else (f"take{s}", "c0")
            m = SequenceMeta(f"s{s}", f"S{s % 2}", "walk", take, view, 50.0, T, H, W)
            arrays = dict(frames=frames, boxes=np.stack([t, np.full(T, s), 0 * t, 0 * t], 1).astype(np.float32),
                          joints3d=np.broadcast_to(t[:, None, None], (T, 17, 3)).astype(np.float32),
                          masks=np.broadcast_to((t % 2)[:, None, None], (T, H, W)).astype(np.uint8))
            if s in per_frame_bg:
                arrays["backgrounds"] = np.broadcast_to((t % 256)[:, None, None, None], (T, H, W, 3)).astype(np.uint8)
            else:
                arrays["background"] = np.full((H, W, 3), 100 + s, np.uint8)
            w.write_sequence(m, **arrays)
    return Dataset.open(path)


def check_batch(b, ds):
    N, K = b["seq"].shape
    assert b["frames"].shape == (N, K, 3, H, W) and b["frames"].dtype == torch.uint8
    assert b["frames"].is_contiguous()
    t = b["index"]
    f = b["frames"].long()
    # Every pixel of every frame is the frame that was asked for.
    assert torch.equal(f[:, :, 0], (t % 256)[..., None, None].expand(N, K, H, W))
    assert torch.equal(f[:, :, 1], (t // 256)[..., None, None].expand(N, K, H, W))
    assert torch.equal(f[:, :, 2], b["seq"][..., None, None].expand(N, K, H, W))
    assert torch.equal(b["boxes"][..., 0].long(), t) and torch.equal(b["boxes"][..., 1].long(), b["seq"])
    assert b["joints3d"].shape == (N, K, 17, 3) and torch.equal(b["joints3d"][..., 5, 2].long(), t)
    assert b["masks"].shape == (N, K, H, W) and torch.equal(b["masks"][..., 0, 0].long(), t % 2)
    assert torch.equal(b["frame_ids"], t)  # default frame ids: stored index
    bg = b["background"][:, :, 0, 0, 0].long()
    assert b["background"].shape == (N, K, 3, H, W)
    expect = torch.where(b["seq"] == 2, t % 256, 100 + b["seq"])  # per-frame for sequence 2, else static
    assert torch.equal(bg, expect)
    subjects = ds.subjects()
    assert all(subjects[i] == ds.sequences[q].meta.subject for i, q in zip(b["subject"].ravel(), b["seq"].ravel()))


def test_batches_align_labels_with_frames(tmp_path):
    ds = coded_store(tmp_path / "ds")
    s = DSLSampler(ds, d_pos_s=0.2, d_neg_s=2.0)
    loader = make_loader(ds, s, batch_size=16, num_workers=0, seed=0, num_batches=5)
    batches = list(loader)
    assert len(batches) == 5
    for b in batches:
        check_batch(b, ds)
        assert b["delta"].shape == (16, 4, 4) and b["d_pos"].shape == (16,)
        assert torch.equal(b["delta"][:, 0], (b["index"] - b["index"][:, :1]).abs())


def test_two_workers_give_the_same_batches(tmp_path):
    ds = coded_store(tmp_path / "ds")
    s = GravitySampler(ds, step_s=0.1)
    one = list(make_loader(ds, s, batch_size=8, num_workers=0, seed=3, num_batches=4))
    loader = make_loader(ds, s, batch_size=8, num_workers=2, seed=3, num_batches=4)
    two = list(loader)
    assert loader.persistent_workers and not loader.pin_memory
    for a, b in zip(one, two):
        check_batch(b, ds)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # A second epoch differs; a new loader with the same seed repeats the first.
    again = list(loader)
    assert not torch.equal(again[0]["index"], two[0]["index"])
    other = list(make_loader(ds, s, batch_size=8, num_workers=0, seed=4, num_batches=1))
    assert not torch.equal(other[0]["index"], one[0]["index"])


def test_multiview_pairs_load_two_sequences(tmp_path):
    ds = coded_store(tmp_path / "ds", lengths=(300, 300, 200), views=True)
    s = MultiViewSyncSampler(ds)
    b = next(iter(make_loader(ds, s, batch_size=32, seed=0, num_batches=1)))
    check_batch(b, ds)
    assert torch.all(b["seq"][:, 0] != b["seq"][:, 1])
    sync = b["sync"]
    assert torch.equal(b["frame_ids"][sync, 0], b["frame_ids"][sync, 1])
    assert b["flip"].dtype == torch.bool


def test_per_item_access_float_frames_and_label_choice(tmp_path):
    ds = coded_store(tmp_path / "ds")
    s = DSLSampler(ds, 0.2, 2.0)
    tds = TupleDataset(ds, s, labels=["boxes"], as_float=True, length=10, seed=1)
    item = tds[3]
    assert item["frames"].shape == (4, 3, H, W) and item["frames"].dtype == torch.float32
    assert float(item["frames"].max()) <= 1.0
    assert set(item) >= {"frames", "boxes", "seq", "index"} and "masks" not in item
    np.testing.assert_allclose(item["frames"][:, 0, 0, 0].numpy() * 255, item["index"].numpy() % 256, atol=1e-3)
    assert torch.equal(tds[3]["index"], item["index"])  # per-item tuples are seeded by index
    batch = next(iter(torch.utils.data.DataLoader(tds, batch_size=5)))
    assert batch["frames"].shape == (5, 4, 3, H, W)
    assert to_float(torch.full((2,), 255, dtype=torch.uint8)).tolist() == [1.0, 1.0]


def test_clear_errors(tmp_path):
    ds = coded_store(tmp_path / "ds")
    s = DSLSampler(ds, 0.2, 2.0)
    with pytest.raises(LoaderError, match="different dataset"):
        TupleDataset(ds.select(subjects=["S0"]), s)
    with pytest.raises(LoaderError, match="'joints2d' is missing in 3"):
        TupleDataset(ds, s, labels=["joints2d"])
    with pytest.raises(LoaderError, match="unknown label"):
        TupleDataset(ds, s, labels=["pose"])
    with DatasetWriter(tmp_path / "mixed") as w:
        for i, (h, w_) in enumerate(((8, 6), (16, 12))):
            w.write_sequence(SequenceMeta(f"m{i}", "S", "a", f"t{i}", "c", 50.0, 200, h, w_),
                             frames=np.zeros((200, h, w_, 3), np.uint8))
    mixed = Dataset.open(tmp_path / "mixed")
    with pytest.raises(LoaderError, match="different frame sizes"):
        TupleDataset(mixed, DSLSampler(mixed, 0.2, 2.0))
    with pytest.raises(ValueError, match="batch_size"):
        BatchIndexSampler(s, 0, 1)


def test_static_camera_extrinsics_become_per_frame_labels(tmp_path):
    """A static camera's R, t (sequence metadata) load like a moving camera's per-frame arrays; unknown ones do not."""
    from selfpose.geometry.camera import Camera

    def Rz(a):
        c, s = np.cos(a), np.sin(a)
        return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])

    with DatasetWriter(tmp_path / "cams") as w:
        for v in range(2):
            cam = Camera(fx=50.0, fy=50.0, cx=H / 2, cy=W / 2, width=W, height=H, R=Rz(0.5 * (v + 1)),
                         t=np.array([0.0, 0.0, 3000.0 + v]))
            m = SequenceMeta(f"v{v}", "S1", "walk", "take", f"c{v}", 50.0, 40, H, W, camera=cam)
            w.write_sequence(m, frames=np.zeros((40, H, W, 3), np.uint8))
    ds = Dataset.open(tmp_path / "cams")
    b = TupleDataset(ds, MultiViewSyncSampler(ds, sync_prob=1.0)).load(MultiViewSyncSampler(ds, sync_prob=1.0)
                                                                        .sample(6, 0))
    assert b["camera_R"].shape == (6, 2, 3, 3) and b["camera_t"].shape == (6, 2, 3)
    for q in range(2):
        for j in range(6):
            v = int(b["seq"][j, q])
            np.testing.assert_allclose(b["camera_R"][j, q].numpy(), Rz(0.5 * (v + 1)), atol=1e-6)
            assert b["camera_t"][j, q, 2].item() == 3000.0 + v
    plain = coded_store(tmp_path / "plain")   # default cameras: extrinsics unknown
    tds = TupleDataset(plain, DSLSampler(plain, d_pos_s=0.02, d_neg_s=0.5))
    assert "camera_R" not in tds.labels
