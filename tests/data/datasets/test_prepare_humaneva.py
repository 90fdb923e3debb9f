"""HumanEva-I fixture (VideoPose3D npz, no images, no cameras) → label-only store."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from selfpose.data.datasets import PrepareConfig, PrepareError, PrepareWarning, prepare
from selfpose.data.datasets.humaneva import calibrate
from selfpose.data.store import Dataset
from selfpose.geometry.camera import Camera, look_at


@pytest.fixture(scope="module")
def source(shared_data):
    return shared_data / "fixtures" / "humaneva"


@pytest.fixture(scope="module")
def s1(source, tmp_path_factory):
    out = tmp_path_factory.mktemp("he") / "ds"
    return Dataset.open(prepare("humaneva", source, out, PrepareConfig(subjects=("S1",)), progress=False))


def test_calibrate_recovers_a_distorted_camera():
    R, t = look_at(np.array([3500.0, -2500.0, 1600.0]), np.array([0.0, 0.0, 900.0]))
    true = Camera(760.0, 758.0, 310.0, 235.0, 640, 480, k=(-0.28, 0.1, 0.0), p=(-0.001, 0.002), R=R, t=t)
    X = np.random.default_rng(0).uniform([-800, -800, 0], [800, 800, 1800], size=(3000, 3))
    cam, err = calibrate(X, true.project_world(X), 640, 480)
    assert err.max() < 0.05
    np.testing.assert_allclose([cam.fx, cam.fy, cam.cx, cam.cy], [760, 758, 310, 235], atol=0.5)
    np.testing.assert_allclose(cam.center, true.center, atol=2.0)


def test_shapes_views_and_no_frames(s1):
    assert s1.subjects() == ["S1"] and s1.views() == ["C1", "C2", "C3"]
    assert s1.attrs["has_frames"] is False
    takes = s1.takes()
    assert all(len(v) == 3 for v in takes.values())  # three synchronised views per chunk
    rec = s1.sequence("Train__S1__Walking_1_chunk0__C2")
    assert len(rec) == 613 and rec.meta.fps == 60.0 and rec.meta.action == "Walking"
    assert not rec.has("frames") and (rec.meta.width, rec.meta.height) == (640, 480)
    assert rec["joints2d"].shape == (613, 17, 2) and rec["joints3d"].shape == (613, 17, 3)
    assert rec.meta.attrs["joints3d_frame"] == "camera" and rec.meta.attrs["camera_estimated"]
    assert rec["frame_ids"].tolist() == list(range(613))


def test_cameras_reproject_and_house_order(s1, checks):
    for rec in s1:
        assert checks.reprojection_px(rec).max() < 1.0  # estimated cameras reproduce the 2D ground truth
    j = np.concatenate([np.asarray(r["joints3d"], np.float64) for r in s1 if r.meta.view == "C1"])
    uv = np.concatenate([np.asarray(r["joints2d"]) for r in s1 if r.meta.view == "C1"])
    checks.check_limbs_mm(j, lr_tol=0.1)
    assert (j[..., 2] > 2000).all()  # metres → mm, in front of the camera
    # Knees bend forwards: on average they are ahead of the hip–ankle line (left/right not swapped).
    assert (checks.knee_ahead_mm(j).mean(axis=0) > 20).all()
    assert (uv[:, 10, 1] < uv[:, 0, 1]).mean() > 0.99  # head above pelvis in the image


def test_step_and_world_fallback(source, tmp_path):
    cfg = PrepareConfig(subjects=("S2",), step=3, calib_max_px=1e-6)
    with pytest.warns(PrepareWarning, match="estimated camera reprojects with up to"):
        ds = Dataset.open(prepare("humaneva", source, tmp_path / "a", cfg, progress=False))
    rec = ds.sequence("Train__S2__Walking_1_chunk0__C1")
    assert len(rec) == 146 and rec.meta.fps == 20.0 and rec["frame_ids"][:3].tolist() == [0, 3, 6]
    # A calibration worse than calib_max_px is not used: world-frame 3D, no camera, said in attrs.
    assert rec.meta.camera is None and rec.meta.attrs["joints3d_frame"] == "world"
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(source / "data_3d_humaneva15.npz", src)
    with pytest.warns(PrepareWarning, match="no 2D"):
        ds = Dataset.open(prepare("humaneva", src, tmp_path / "b", PrepareConfig(subjects=("S3",)), progress=False))
    assert ds.views() == ["world"] and not ds.sequences[0].has("joints2d")
    with pytest.raises(PrepareError, match="data_3d_humaneva15.npz"):
        prepare("humaneva", tmp_path / "a", tmp_path / "c", progress=False)
