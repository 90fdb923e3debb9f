"""`selfpose triangulate` end to end on synthetic views written as keypoint files, and its refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest

from selfpose.keypoints.calibration import write_toml
from selfpose.keypoints.multiview import MultiviewError, fit_camera_to_frame, triangulate_folder

from .test_calibration import rig


def person(T: int = 20, seed: int = 0) -> np.ndarray:
    """``(T, 17, 3)`` a rigid house skeleton walking along x (world mm, z up)."""

    rng = np.random.default_rng(seed)
    base = np.array([[0, 0, 900], [-120, 0, 900], [-120, 0, 480], [-120, 0, 60], [120, 0, 900], [120, 0, 480],
                     [120, 0, 60], [0, 0, 1150], [0, 0, 1400], [0, -30, 1500], [0, 0, 1650], [180, 0, 1400],
                     [180, 0, 1120], [180, 0, 870], [-180, 0, 1400], [-180, 0, 1120], [-180, 0, 870]], float)
    walk = np.linspace(-300, 300, T)[:, None, None] * np.array([1.0, 0, 0])
    return base[None] + walk + rng.normal(0, 2, size=(T, 17, 3))


def write_views(folder, X, cams, noise=0.5, lengths=None, seed=1):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for v, (name, cam) in enumerate(cams.items()):
        uv = cam.project_world(X) + rng.normal(0, noise, size=X.shape[:2] + (2,))
        kp = np.concatenate([uv, np.full(X.shape[:2] + (1,), 0.9)], -1)
        if lengths is not None:
            kp = kp[: lengths[v]]
        np.savez(folder / f"{name}.npz", keypoints=kp, skeleton=np.array("h36m17"), width=np.array(cam.width),
                 height=np.array(cam.height))


def test_triangulate_folder_recovers_the_person(tmp_path):
    cams = rig()
    X = person()
    write_views(tmp_path / "K", X, cams)
    calib = write_toml(cams, tmp_path / "calib.toml")
    s = triangulate_folder(tmp_path / "K", calib, tmp_path / "T")
    d = np.load(tmp_path / "T" / "triangulation.npz")
    assert np.abs(d["world"] - X).max() < 10.0  # mm; 0.5-px noise at ~3.5 m
    assert d["cameras"].shape == (4, 20, 17, 3)
    assert np.allclose(d["cameras"][2], cams["cam03"].world_to_camera(d["world"]), atol=1e-2)
    assert s["reproj_px"]["median"] < 1.5 and s["frames_all_joints"] == 20
    assert s["limb_length_cv"]["mean"] < 0.02
    assert json.loads((tmp_path / "T" / "summary.json").read_text())["frames"] == 20
    assert (tmp_path / "T" / "triangulation.png").stat().st_size > 10_000
    with pytest.raises(Exception, match="already exists"):
        triangulate_folder(tmp_path / "K", calib, tmp_path / "T")


def test_missing_camera_and_unequal_lengths_are_one_line_errors(tmp_path):
    cams = rig()
    calib = write_toml(cams, tmp_path / "calib.toml")
    write_views(tmp_path / "K", person(), cams, lengths=[20, 20, 18, 20])
    with pytest.raises(MultiviewError, match="differ in length") as e:
        triangulate_folder(tmp_path / "K", calib, tmp_path / "T")
    assert "\n" not in str(e.value)
    write_views(tmp_path / "K", person(), cams)   # equal lengths again
    (tmp_path / "K" / "cam04.npz").rename(tmp_path / "K" / "cam09.npz")
    with pytest.raises(MultiviewError, match="calibration has no camera 'cam09'"):
        triangulate_folder(tmp_path / "K", calib, tmp_path / "T")
    (tmp_path / "K" / "cam09.npz").unlink()
    with pytest.raises(MultiviewError, match="no keypoint file for camera 'cam04'"):
        triangulate_folder(tmp_path / "K", calib, tmp_path / "T")
    assert not (tmp_path / "T").exists()


def test_a_narrower_video_is_the_sensors_top_left_part():
    cam = rig(1)["cam01"]
    crop, how = fit_camera_to_frame(cam, 1080, 1920)
    assert "top-left" in how and crop.cx == cam.cx and crop.width == 1080
    X = np.array([[100.0, 200.0, 1000.0]])
    assert np.allclose(crop.project_world(X), cam.project_world(X))
    with pytest.raises(MultiviewError, match="does not fit"):
        fit_camera_to_frame(cam, 640, 480)
