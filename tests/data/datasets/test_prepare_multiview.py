"""prepare multiview: one take of synchronised views with their cameras in stored-frame pixels; refusals."""

from __future__ import annotations

import numpy as np
import pytest

from selfpose.data.datasets import PrepareConfig, PrepareError, prepare
from selfpose.data.datasets.framing import FrameTransform
from selfpose.data.store import Dataset
from selfpose.geometry.camera import Camera, look_at
from selfpose.keypoints.calibration import write_toml
from selfpose.viz.video import write_video


def rig(w: int = 96, h: int = 160) -> dict[str, Camera]:
    cams = {}
    for i in range(3):
        a = 2 * np.pi * i / 3
        R, t = look_at(np.array([3000 * np.cos(a), 3000 * np.sin(a), 1500.0]), np.array([0.0, 0.0, 900.0]))
        cams[f"cam{i + 1:02d}"] = Camera(150.0, 150.0, w / 2 + i, h / 2 - i, w, h, k=(-0.05, 0.1, 0.0),
                                         p=(1e-3, 0.0), R=R, t=t)
    return cams


def take(folder, cams, lengths=(6, 6, 6), names=None):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for (name, cam), n in zip(cams.items(), lengths):
        write_video(folder / f"{(names or {}).get(name, name)}.mp4",
                    rng.integers(0, 255, size=(n, cam.height, cam.width, 3), dtype=np.uint8), fps=30)
    return folder


def test_one_take_with_each_views_camera_in_stored_pixels(tmp_path):
    cams = rig()
    src = take(tmp_path / "lab_take", cams)
    write_toml(cams, src / "calib.toml")   # found in the folder without --calibration
    ds = Dataset.open(prepare("multiview", src, tmp_path / "ds", PrepareConfig(size=64), progress=False))
    assert len(ds) == 3 and ds.attrs["frames_per_view"] == 6
    X = np.array([[0.0, 0.0, 900.0], [200.0, -100.0, 1500.0]])
    for r in ds:
        assert r.meta.take == "lab_take" and r.meta.view in cams and len(r) == 6
        # where the letterbox (96 x 160 → 64 x 64, centred) puts the source pixel the calibration projects to
        expected = FrameTransform.letterbox(96, 160, 64).points(cams[r.meta.view].project_world(X))
        np.testing.assert_allclose(r.meta.camera.project_world(X), expected, atol=1e-6)
        assert 12 < expected[0, 0] < 52   # inside the pasted image, not the black bars


def test_refusals_name_what_is_wrong(tmp_path):
    cams = rig()
    calib = write_toml(cams, tmp_path / "c.toml")
    cfg = PrepareConfig(size=64, calibration=str(calib))
    src = take(tmp_path / "a", cams, names={"cam03": "side"})
    with pytest.raises(PrepareError, match="no video for camera.*cam03.*side.mp4 match no camera"):
        prepare("multiview", src, tmp_path / "x", cfg, progress=False)
    src = take(tmp_path / "b", cams, lengths=(6, 6, 12))
    with pytest.raises(PrepareError, match="differ in length"):
        prepare("multiview", src, tmp_path / "x", cfg, progress=False)
    with pytest.raises(PrepareError, match="needs the cameras' calibration"):
        prepare("multiview", take(tmp_path / "c", cams), tmp_path / "x", PrepareConfig(size=64), progress=False)
    assert not (tmp_path / "x").exists()


def test_the_real_pose2sim_take(shared_file, tmp_path):
    """The four real views become one take; the calibration's 1088-px sensor meets two 1080-px videos."""
    src = shared_file("multiview/pose2sim_single/cam01.mp4").parent
    ds = Dataset.open(prepare("multiview", src, tmp_path / "p", PrepareConfig(size=64, max_frames=3), progress=False))
    assert sorted(r.meta.view for r in ds) == ["cam01", "cam02", "cam03", "cam04"]
    assert {r.meta.attrs["camera_fit"].split(" ")[0] for r in ds} == {"top-left", "as"}
    assert all(len(r) == 3 and r.meta.camera is not None for r in ds)
