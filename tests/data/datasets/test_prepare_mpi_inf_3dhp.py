"""MPI-INF-3DHP fixture (mmpose body3d npz + images + cameras_train/test.pkl) → store."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from selfpose.data.datasets import PrepareConfig, PrepareError, prepare
from selfpose.data.datasets.mpi_inf_3dhp import parse_image_name
from selfpose.data.store import Dataset


@pytest.fixture(scope="module")
def source(shared_data):
    return shared_data / "fixtures" / "mpi_inf_3dhp"


def test_parse_image_name():
    assert parse_image_name("S4_Seq2_Cam0_001033.jpg") == ("S4", "Seq2", "Cam0", 1033, False)
    assert parse_image_name("images/TS2_001850.jpg") == ("TS2", "test", "cam", 1850, True)
    with pytest.raises(PrepareError, match="looks like neither"):
        parse_image_name("img_000001.jpg")


def test_native_resolution_reprojects_within_2px(source, tmp_path, checks):
    ds = Dataset.open(prepare("mpi-inf-3dhp", source, tmp_path / "ds", PrepareConfig(size=0), progress=False))
    assert sorted(r.id for r in ds) == ["S4_Seq2__Cam0", "S8_Seq1__Cam8", "TS1__cam", "TS2__cam"]
    for rec in ds:
        # The pkl says h = 204 for training cameras: the image's real size is used.
        assert (rec.meta.width, rec.meta.height) == (2048, 2048)
        assert rec["frames"].shape == (1, 2048, 2048, 3)
        err = checks.reprojection_px(rec)
        # Cameras are exact (most joints reproject to < 0.3 px); the source's own 2D for the
        # hips and spine is off its 3D by up to ~2 px per axis.
        assert np.median(err) < 0.3
        diff = np.abs(rec.meta.camera.project(np.asarray(rec["joints3d"], np.float64)) - rec["joints2d"])
        assert diff.max() < 2.0 and err.max() < 2.2
    assert ds.sequence("TS2__cam").meta.attrs["split"] == "test"


def test_house_order_units_and_world_frame(source, tmp_path, checks):
    ds = Dataset.open(prepare("mpi-inf-3dhp", source, tmp_path / "ds", PrepareConfig(size=64), progress=False))
    j = np.concatenate([np.asarray(r["joints3d"], np.float64) for r in ds])
    checks.check_limbs_mm(j, lr_tol=0.2)
    assert (checks.nose_ahead_mm(j) > 10).all()  # head joint in front of the neck: left/right not swapped
    # TS1 faces the camera (checked by eye): the right hip is on the image's left.
    ts1 = ds.sequence("TS1__cam")
    assert ts1["joints2d"][0, 1, 0] < ts1["joints2d"][0, 4, 0]
    assert ts1["joints2d"][0, 10, 1] < ts1["joints2d"][0, 0, 1]  # head above pelvis
    for rec in ds:
        assert checks.reprojection_px(rec).max() < 2.2 * 64 / 2048
    # Training extrinsics are world→camera (X_cam = R X_world + T): S4 sits on the floor of a
    # y-up world, so its ankles are at height ≈ 0.
    s4 = ds.sequence("S4_Seq2__Cam0")
    world = s4.meta.camera.camera_to_world(np.asarray(s4["joints3d"][0], np.float64))
    assert np.abs(world[[3, 6], 1]).max() < 50
    assert world[10, 1] > world[0, 1] + 300  # head top well above the pelvis


def test_missing_test_cameras(source, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(source, src)
    (src / "cameras_test.pkl").unlink()
    with pytest.raises(PrepareError, match="needs cameras_test.pkl"):
        prepare("mpi-inf-3dhp", src, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()
    ds = Dataset.open(prepare("mpi-inf-3dhp", src / "test_3dhp_train.npz", tmp_path / "train", progress=False))
    assert ds.subjects() == ["S4", "S8"] and all(r.meta.fps == 25.0 for r in ds)
