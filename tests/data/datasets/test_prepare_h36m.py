"""Human3.6M fixture (mmpose body3d npz + images + cameras.pkl) → store."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from selfpose.data.datasets import PrepareConfig, PrepareError, PrepareWarning, prepare
from selfpose.data.datasets.h36m import parse_image_name
from selfpose.data.store import Dataset


@pytest.fixture(scope="module")
def source(shared_data):
    return shared_data / "fixtures" / "h36m"


def test_parse_image_name():
    assert parse_image_name("S1/S1_Directions_1.54138969/S1_Directions_1.54138969_000001.jpg") == \
        ("S1", "Directions_1", "54138969", 1)
    assert parse_image_name("S5_SittingDown.54138969_002061.jpg") == ("S5", "SittingDown", "54138969", 2061)
    with pytest.raises(PrepareError, match="does not look like"):
        parse_image_name("frame_0001.jpg")


def test_native_resolution_reprojects_within_2px(source, tmp_path, checks):
    ds = Dataset.open(prepare("h36m", source, tmp_path / "ds", PrepareConfig(size=0), progress=False))
    assert len(ds) == 4 and ds.subjects() == ["S1", "S5", "S7", "S8"]
    assert ds.attrs["source_format"] == "h36m"
    for rec in ds:
        T = len(rec)
        assert T == 1 and rec["frames"].shape == (1, rec.meta.height, rec.meta.width, 3)
        assert rec.meta.width == 1000 and rec.meta.height in (1000, 1002)  # the image's size, not the pkl's
        assert rec["joints3d"].shape == (T, 17, 3) and rec["joints2d"].shape == (T, 17, 2)
        assert (rec["joints2d_conf"][:] == 1).all()
        assert checks.reprojection_px(rec).max() < 2.0
        assert rec.meta.camera.has_distortion and rec.meta.fps == 50.0
    # Views of one take share take ids and frame numbers.
    rec = ds.sequence("S1_Directions_1__54138969")
    assert rec.meta.take == "S1_Directions_1" and rec.meta.view == "54138969" and rec.meta.action == "Directions"
    assert rec["frame_ids"].tolist() == [1]


def test_house_order_and_units(source, tmp_path, checks):
    ds = Dataset.open(prepare("h36m", source, tmp_path / "ds", PrepareConfig(), progress=False))
    j = np.concatenate([np.asarray(r["joints3d"], np.float64) for r in ds])
    uv = np.concatenate([np.asarray(r["joints2d"]) for r in ds])
    checks.check_limbs_mm(j, lr_tol=0.05)
    assert (checks.nose_ahead_mm(j) > 30).all()  # left and right are not swapped
    assert (j[:, :, 2] > 2000).all()  # camera frame, metres → mm
    assert (uv[:, 10, 1] < uv[:, 0, 1] - 10).all()  # head above pelvis in the image
    # S1 Directions is filmed from behind (checked by eye): the right hip is on the image's right.
    s1 = ds.sequence("S1_Directions_1__54138969")
    assert s1["joints2d"][0, 1, 0] > s1["joints2d"][0, 4, 0]


def test_resized_frames_labels_and_camera_agree(source, tmp_path, checks):
    ds = Dataset.open(prepare("h36m", source, tmp_path / "ds", PrepareConfig(size=128), progress=False))
    for rec in ds:
        assert rec["frames"].shape == (1, 128, 128, 3) and rec.meta.camera.width == 128
        assert checks.reprojection_px(rec).max() < 2.0 * 128 / 1000
        x0, y0, x1, y1 = rec["boxes"][0]
        assert 0 <= x0 < x1 <= 128 and 0 <= y0 < y1 <= 128
        inside = (rec["joints2d"][0] >= [x0, y0]) & (rec["joints2d"][0] <= [x1, y1])
        assert inside.all()
        # The person is where the labels say: the box is less uniform than the frame's border.
        f = np.asarray(rec["frames"][0], np.float64)
        assert f[int(y0):int(y1), int(x0):int(x1)].std() > 10


def test_person_crop(source, tmp_path, checks):
    ds = Dataset.open(prepare("h36m", source, tmp_path / "ds", PrepareConfig(size=96, crop="person"),
                              progress=False))
    for rec in ds:
        assert rec["frames"].shape == (1, 96, 96, 3)
        # The person box is centred and its larger side is 1 / crop_scale (1.25) of the crop.
        b = rec["boxes"][0]
        np.testing.assert_allclose([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2], [47.5, 47.5], atol=1.0)
        assert abs(max(b[2] - b[0], b[3] - b[1]) - 96 / 1.25) < 1.0
        assert checks.reprojection_px(rec).max() < 2.0 * 96 / 300


def test_subjects_filter_and_missing_pieces(source, tmp_path):
    ds = Dataset.open(prepare("h36m", source, tmp_path / "a", PrepareConfig(subjects=("S5",)), progress=False))
    assert ds.subjects() == ["S5"]
    # A copy without one image: that image is skipped with a warning.
    src = tmp_path / "src"
    shutil.copytree(source, src, ignore=shutil.ignore_patterns("BF_IUV_gt"))
    (src / "S7" / "S7_Greeting.55011271" / "S7_Greeting.55011271_000396.jpg").unlink()
    with pytest.warns(PrepareWarning, match="1 annotated image"):
        ds = Dataset.open(prepare("h36m", src, tmp_path / "b", progress=False))
    assert len(ds) == 3 and ds.attrs["num_skipped_images"] == 1
    # Without cameras.pkl: a clear error, no dataset.
    (src / "cameras.pkl").unlink()
    with pytest.raises(PrepareError, match="cameras.pkl"):
        prepare("h36m", src, tmp_path / "c", progress=False)
    assert not (tmp_path / "c").exists()
