"""Tests of the dataset contact sheet (selfpose.viz.sheet)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from selfpose.data.sequence import SequenceMeta
from selfpose.data.store import Dataset, DatasetError, DatasetWriter
from selfpose.geometry.camera import Camera, look_at
from selfpose.geometry.skeleton import H36M17
from selfpose.viz.sheet import background_error, contact_sheet, render_frame, sample_frames
from selfpose.viz.skeleton import draw_skeleton_2d

# -- tiny hand-made datasets ------------------------------------------------

# A standing person, world mm, z up (pelvis at 900 mm above the floor).
_STAND = np.array([
    [0, 0, 900], [-120, 0, 900], [-130, 0, 480], [-130, 0, 60],
    [120, 0, 900], [130, 0, 480], [130, 0, 60],
    [0, 0, 1130], [0, 0, 1380], [0, -20, 1480], [0, 0, 1640],
    [180, 0, 1350], [320, 0, 1120], [420, 0, 900],
    [-180, 0, 1350], [-320, 0, 1120], [-420, 0, 900],
], dtype=np.float64)


def _motion(T: int, seed: int) -> np.ndarray:
    """(T, 17, 3) world mm: the standing pose swaying its arms and drifting sideways."""
    rng = np.random.default_rng(seed)
    out = np.repeat(_STAND[None], T, axis=0)
    ph = np.linspace(0, 2 * np.pi, T) + rng.uniform(0, np.pi)
    for wrist, elbow in ((13, 12), (16, 15)):
        out[:, wrist, 2] += 250 * np.sin(ph)
        out[:, elbow, 2] += 120 * np.sin(ph)
    out[..., 0] += 150 * np.sin(ph / 2)[:, None]
    return out


def _background(h: int, w: int, seed: int) -> np.ndarray:
    """A smooth colour gradient with a few soft blobs (uint8 RGB)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    c0, c1 = rng.uniform(60, 200, 3), rng.uniform(60, 200, 3)
    img = c0 * (1 - yy[..., None]) + c1 * yy[..., None]
    for _ in range(3):
        cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.1, 0.3)
        img += 40 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / r**2)[..., None] * rng.uniform(-1, 1, 3)
    return np.clip(img, 0, 255).astype(np.uint8)


def _paint_person(bg: np.ndarray, j2d: np.ndarray, colour: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Frame and mask: thick limbs (a stick 'body') of ``colour`` painted over ``bg``."""
    h, w = bg.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    th = max(2, int(round(max(h, w) / 28)))
    for a, b in H36M17.bones:
        cv2.line(mask, tuple(int(v) for v in np.round(j2d[a])), tuple(int(v) for v in np.round(j2d[b])), 1, th)
    head = tuple(int(v) for v in np.round(j2d[10]))
    cv2.circle(mask, head, int(th * 1.2), 1, -1)
    frame = bg.copy()
    frame[mask > 0] = colour
    return frame, mask


def make_dataset(path: Path, motions: dict[tuple[str, str], np.ndarray], size: int = 64, views: int = 2,
                 labels: tuple[str, ...] = ("frames", "masks", "boxes", "joints2d", "joints3d", "background",
                                            "true_background"), name: str = "tiny") -> Dataset:
    """A dataset of stick figures: one sequence per (subject, action) × view.

    ``motions`` maps (subject, action) to (T, 17, 3) world mm, z up. Each view
    is a camera 4 m away at a different azimuth; 3D is in that camera's frame
    and 2D its projection. ``labels`` chooses which arrays are written.
    """
    with DatasetWriter(path, attrs={"name": name}) as w:
        for s_i, ((subject, action), world) in enumerate(motions.items()):
            centre = world[:, 0].mean(0)
            # a fixed clothing colour per subject, muted so the drawn skeleton stands out
            colour = ((70, 70, 75), (205, 180, 140), (120, 85, 55), (40, 70, 70))[s_i % 4]
            for v in range(views):
                az = np.radians(-90 + 50 * v)
                eye = centre + np.array([4200 * np.cos(az), 4200 * np.sin(az), 300.0])
                R, t = look_at(eye, centre + np.array([0, 0, 0.0]))
                cam = Camera.from_fov(size, size, 45.0, R=R, t=t)
                j3d = cam.world_to_camera(world)
                j2d = cam.project(j3d)
                bg = _background(size, size, seed=10 * s_i + v)
                frames, masks = zip(*(_paint_person(bg, p, colour) for p in j2d))
                frames, masks = np.stack(frames), np.stack(masks)
                boxes = np.concatenate([j2d.min(1) - 2, j2d.max(1) + 2], axis=1)
                arrays = {"frames": frames, "masks": masks, "boxes": boxes, "joints2d": j2d, "joints3d": j3d,
                          "joints2d_conf": np.ones(j2d.shape[:2], np.float32),
                          "background": np.median(frames, axis=0).astype(np.uint8), "true_background": bg}
                meta = SequenceMeta(id=f"{subject}__{action}__cam{v}", subject=subject, action=action,
                                    take=f"{subject}__{action}", view=f"cam{v}", fps=25.0, num_frames=len(world),
                                    height=size, width=size, camera=cam, scenario="lab")
                w.write_sequence(meta, **{k: a for k, a in arrays.items() if k in labels})
    return Dataset.open(path)


@pytest.fixture()
def tiny(tmp_path) -> Dataset:
    motions = {("S1", "sway"): _motion(20, 0), ("S2", "sway"): _motion(24, 1), ("S2", "wave"): _motion(18, 2)}
    return make_dataset(tmp_path / "tiny", motions)


def _png(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert img is not None, f"{path} is not a readable image"
    return img[..., ::-1]


# -- tests ------------------------------------------------------------------

def test_sample_frames_spread_and_deterministic(tiny):
    picks = sample_frames(tiny, 12, seed=3)
    assert len(picks) == 12
    assert {p.rec.meta.subject for p in picks} == {"S1", "S2"}
    assert len({p.rec.id for p in picks}) == len(tiny)  # every sequence used
    assert all(0 <= p.index < len(p.rec) for p in picks)
    again = sample_frames(tiny, 12, seed=3)
    assert [(p.rec.id, p.index) for p in picks] == [(p.rec.id, p.index) for p in again]
    other = sample_frames(tiny, 12, seed=4)
    assert [(p.rec.id, p.index) for p in picks] != [(p.rec.id, p.index) for p in other]
    assert len({p.rec.id for p in sample_frames(tiny, 12, max_sequences=2)}) == 2


def test_sample_frames_more_than_available(tmp_path):
    ds = make_dataset(tmp_path / "d", {("S1", "a"): _motion(3, 0)}, views=1)
    picks = sample_frames(ds, 16)
    assert sorted(p.index for p in picks) == [0, 1, 2]  # no frame shown twice


def test_contact_sheet_full(tiny, tmp_path):
    out = contact_sheet(tiny, tmp_path / "sheets" / "sheet.png", num_frames=16)
    assert out.is_file()
    img = _png(out)
    h, w = img.shape[:2]
    assert 1000 <= w <= 1400 and 1500 <= h <= 4000, (h, w)
    # the skeleton colours are present (left blue, right red)
    assert (np.abs(img.astype(int) - (40, 120, 255)).sum(-1) < 60).sum() > 200
    assert (np.abs(img.astype(int) - (235, 45, 45)).sum(-1) < 60).sum() > 200


def test_contact_sheet_reads_only_sampled_frames(tiny, tmp_path, monkeypatch):
    """Frames are read one by one from the memory map, never as a whole array."""
    from selfpose.data import store

    touched = []
    orig = store.SequenceRecord.__getitem__

    class Spy:
        """Stands in for the frames memory map: records reads, refuses whole-array reads."""

        def __init__(self, arr):
            self.arr, self.shape, self.dtype = arr, arr.shape, arr.dtype

        def __len__(self):
            return len(self.arr)

        def __getitem__(self, i):
            out = self.arr[i]
            touched.append(out.shape)
            return out

        def __array__(self, *a, **k):
            raise AssertionError("the whole frames array was read")

    def getitem(self, name):
        arr = orig(self, name)
        return Spy(arr) if name == "frames" else arr

    monkeypatch.setattr(store.SequenceRecord, "__getitem__", getitem)
    contact_sheet(tiny, tmp_path / "s.png", num_frames=4)
    assert touched, "the spy saw no frame read"
    assert all(len(s) == 3 for s in touched), f"more than one frame read at once: {touched}"
    assert len(touched) <= 4 + 2  # the grid frames + the background rows


def test_contact_sheet_without_labels(tmp_path):
    """Frames only, no masks/boxes/2D/3D/background: still a sheet, with just the frames."""
    ds = make_dataset(tmp_path / "bare", {("S1", "a"): _motion(10, 0)}, views=1, labels=("frames",))
    out = contact_sheet(ds, tmp_path / "bare.png", num_frames=4)
    img = _png(out)
    full = make_dataset(tmp_path / "full", {("S1", "a"): _motion(10, 0)}, views=1)
    full_img = _png(contact_sheet(full, tmp_path / "full.png", num_frames=4))
    assert full_img.shape[0] > img.shape[0]  # background and 3D rows only where they exist
    blue = lambda im: (np.abs(im.astype(int) - (40, 120, 255)).sum(-1) < 30).sum()  # noqa: E731
    assert blue(full_img) > blue(img) + 500  # only the legend is blue when there is no skeleton


def test_contact_sheet_without_frames(tmp_path):
    """Mocap-only data (2D and 3D, no frames): skeletons on a blank canvas."""
    ds = make_dataset(tmp_path / "mocap", {("S1", "a"): _motion(10, 0)}, views=2, labels=("joints2d", "joints3d"))
    pick = sample_frames(ds, 1)[0]
    img, note = render_frame(pick, 256)
    assert note == "no frames"
    assert img.shape == (256, 256, 3)
    assert (img != 236).any(axis=-1).sum() > 100  # the skeleton is drawn on the blank canvas
    out = contact_sheet(ds, tmp_path / "mocap.png", num_frames=6)
    assert _png(out).shape[1] > 1000


def test_render_frame_projects_3d_when_no_2d(tmp_path):
    ds = make_dataset(tmp_path / "p", {("S1", "a"): _motion(5, 0)}, views=1, labels=("frames", "joints3d"))
    img, note = render_frame(sample_frames(ds, 1)[0], 128)
    assert "projected" in note
    assert (np.abs(img.astype(int) - (235, 45, 45)).sum(-1) < 60).any()


def test_render_frame_upscales_and_draws(tiny):
    pick = sample_frames(tiny, 1)[0]
    img, _ = render_frame(pick, 256)
    assert img.shape == (256, 256, 3)  # 64 px frames shown at 256 px
    plain = cv2.resize(np.asarray(pick.rec["frames"][pick.index]), (256, 256), interpolation=cv2.INTER_CUBIC)
    changed = np.abs(img.astype(int) - plain.astype(int)).sum(-1) > 30
    # the box top edge, scaled by 4, is drawn
    x0, y0, x1, y1 = (np.asarray(pick.rec["boxes"][pick.index]) + 0.5) * 4 - 0.5
    row = int(round(y0))
    assert changed[row, int(x0) + 2:int(x1) - 2].mean() > 0.8
    # a pixel far from the person is untouched
    assert not changed[:8, :8].any()


def test_background_error():
    a = np.zeros((4, 4, 3), np.uint8)
    b = np.full((4, 4, 3), 51, np.uint8)
    assert background_error(a, b) == pytest.approx(0.2)
    assert background_error(a, a) == 0.0


def test_single_sequence_and_directory_out(tmp_path):
    ds = make_dataset(tmp_path / "one", {("S1", "a"): _motion(8, 0)}, views=1)
    (tmp_path / "dir").mkdir()
    out = contact_sheet(ds, tmp_path / "dir", num_frames=3)
    assert out == tmp_path / "dir" / "contact_sheet.png" and out.is_file()


def test_empty_dataset_is_an_error(tmp_path):
    with DatasetWriter(tmp_path / "empty"):
        pass
    with pytest.raises(DatasetError, match="no sequence"):
        contact_sheet(Dataset.open(tmp_path / "empty"), tmp_path / "x.png")


def real_mocap_dataset(path: Path, mocap: Path, size: int = 128, frames: int = 30) -> Dataset:
    """A small dataset made of real Human3.6M motion (first ``frames`` frames, every 4th, of 3 sequences)."""
    data = np.load(mocap)
    keys = ["S1/walking_1", "S5/directions_2", "S8/sittingdown_1"]
    motions = {tuple(k.split("/")): np.asarray(data[k][: 4 * frames : 4], dtype=np.float64) for k in keys}
    return make_dataset(path, motions, size=size, views=2, name="h36m-mocap-sticks")


def test_contact_sheet_real_mocap(tmp_path, shared_data):
    mocap = shared_data / "mocap" / "h36m17_train_S1-S8_25fps.npz"
    if not mocap.is_file():
        pytest.skip(f"real mocap {mocap} not found")
    ds = real_mocap_dataset(tmp_path / "real", mocap, frames=12)
    out = contact_sheet(ds, tmp_path / "real.png", num_frames=8)
    img = _png(out)
    assert img.shape[1] > 1000 and (np.abs(img.astype(int) - (40, 190, 70)).sum(-1) < 60).sum() > 100


def test_all_nan_joints_draw_nothing():
    """Stored float32 joints that are all unknown (NaN) draw nothing and do not crash."""
    j = np.full((17, 2), np.nan, np.float32)
    img = draw_skeleton_2d(np.zeros((32, 32, 3), np.uint8), j)
    assert not img.any()
