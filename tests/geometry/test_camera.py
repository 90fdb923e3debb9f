"""Cameras: Human3.6M projection on real data, transforms, look_at, resizing, cropping."""

from __future__ import annotations

import json
import pickle
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from selfpose.geometry.camera import Camera, look_at


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real data file {path} not found")
    return path


@pytest.fixture
def h36m(shared_data):
    """``(cameras, [(Camera, S mm (17, 3), part px (17, 2))])`` from the H36M fixture."""
    d = np.load(need(shared_data / "fixtures/h36m/test_h36m_body3d.npz"))
    with open(need(shared_data / "fixtures/h36m/cameras.pkl"), "rb") as fh:
        cams = pickle.load(fh)
    out = []
    for name, S, part in zip(d["imgname"], d["S"], d["part"]):
        # 'S1/S1_Directions_1.54138969/S1_Directions_1.54138969_000001.jpg'
        subject, folder = str(name).split("/")[:2]
        cam_id = folder.rsplit(".", 1)[1]
        out.append((Camera.from_h36m(cams[(subject, cam_id)]), S[:, :3] * 1000.0, part[:, :2]))
    return cams, out


def test_h36m_projection_matches_the_datasets_2d(h36m):
    _, samples = h36m
    assert len(samples) == 4
    worst = 0.0
    for cam, S_mm, part in samples:
        assert cam.has_distortion and cam.width == 1000
        err = np.linalg.norm(cam.project(S_mm) - part, axis=-1)
        worst = max(worst, err.max())
        # Distortion matters at this precision: without it the error grows.
        undistorted = replace(cam, k=(0.0, 0.0, 0.0), p=(0.0, 0.0))
        assert np.linalg.norm(undistorted.project(S_mm) - part, axis=-1).max() > err.max()
    assert worst < 0.5  # measured 0.22 px


def test_h36m_world_camera_round_trip(h36m):
    cams, samples = h36m
    for cam, S_mm, part in samples:
        world = cam.camera_to_world(S_mm)
        np.testing.assert_allclose(cam.world_to_camera(world), S_mm, atol=1e-9)
        np.testing.assert_allclose(cam.project_world(world), cam.project(S_mm), atol=1e-9)
    # Human3.6M's own form: X_cam = Rᵀ (X_world − T), T in metres.
    raw = cams[("S1", "54138969")]
    cam = Camera.from_h36m(raw)
    X_w = np.array([[100.0, -200.0, 900.0], [0.0, 0.0, 0.0]])
    R, T = np.asarray(raw["R"]), np.asarray(raw["T"]).ravel() * 1000.0
    np.testing.assert_allclose(cam.world_to_camera(X_w), (X_w - T) @ R, atol=1e-9)
    np.testing.assert_allclose(cam.center, T, atol=1e-9)
    np.testing.assert_allclose(cam.R @ cam.R.T, np.eye(3), atol=1e-9)


def test_world_camera_round_trip_random():
    rng = np.random.default_rng(0)
    R, t = look_at(rng.normal(size=3) * 3000, np.zeros(3))
    cam = Camera.from_fov(640, 480, 50.0, R=R, t=t)
    X = rng.normal(scale=1000.0, size=(7, 17, 3))
    np.testing.assert_allclose(cam.camera_to_world(cam.world_to_camera(X)), X, atol=1e-9)
    # Backprojection inverts projection (no distortion).
    X_c = cam.world_to_camera(X)
    np.testing.assert_allclose(cam.backproject(cam.project(X_c), X_c[..., 2]), X_c, atol=1e-6)


def test_look_at_is_a_proper_rotation_with_up_at_the_top():
    eye, target = np.array([3000.0, -4000.0, 1500.0]), np.array([0.0, 0.0, 900.0])
    R, t = look_at(eye, target)  # z up
    assert np.linalg.det(R) == pytest.approx(1.0)
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
    cam = Camera.from_fov(640, 480, 60.0, R=R, t=t)
    np.testing.assert_allclose(cam.center, eye, atol=1e-9)
    # The target is straight ahead, on the principal point.
    tc = cam.world_to_camera(target)
    assert tc[2] == pytest.approx(np.linalg.norm(target - eye))
    np.testing.assert_allclose(cam.project_world(target), [320.0, 240.0], atol=1e-9)
    # World up is image up (smaller v); camera y is down.
    above, below = cam.project_world(target + [0, 0, 500.0]), cam.project_world(target - [0, 0, 500.0])
    assert above[1] < 240.0 < below[1]
    assert np.dot(R[1], [0, 0, 1.0]) < 0
    # Looking straight down the up axis still gives a proper rotation.
    R2, _ = look_at(np.array([0.0, 0.0, 5000.0]), np.zeros(3))
    assert np.linalg.det(R2) == pytest.approx(1.0) and np.isfinite(R2).all()


def test_look_at_with_y_up_world():
    R, t = look_at(np.array([0.0, 1000.0, -3000.0]), np.array([0.0, 1000.0, 0.0]), up=np.array([0.0, 1.0, 0.0]))
    cam = Camera.from_fov(100, 100, 60.0, R=R, t=t)
    assert cam.project_world([0.0, 1500.0, 0.0])[1] < 50.0
    assert np.linalg.det(R) == pytest.approx(1.0)


def test_scaled_and_cropped_follow_the_pixels():
    rng = np.random.default_rng(1)
    cam = Camera(1100.0, 1120.0, 500.0, 480.0, 1000, 1000)
    X = np.concatenate([rng.normal(scale=400.0, size=(50, 2)), rng.uniform(2000, 6000, size=(50, 1))], axis=1)
    uv = cam.project(X)
    # Resizing a 1000² image to 256² (pixel-edge convention: u' = u·s).
    s = 256 / 1000
    small = cam.scaled(s)
    assert (small.width, small.height) == (256, 256)
    np.testing.assert_allclose(small.project(X), uv * s, atol=1e-9)
    wide = cam.scaled(0.5, 0.25)
    np.testing.assert_allclose(wide.project(X), uv * [0.5, 0.25], atol=1e-9)
    # Cropping shifts pixels by the crop's top-left corner.
    crop = cam.cropped(120.0, 80.0, 300, 400)
    assert (crop.width, crop.height) == (300, 400)
    np.testing.assert_allclose(crop.project(X), uv - [120.0, 80.0], atol=1e-9)
    # Crop then resize, as a detector's crop is fed to a network.
    both = cam.cropped(120.0, 80.0, 300, 300).scaled(128 / 300)
    np.testing.assert_allclose(both.project(X), (uv - [120.0, 80.0]) * 128 / 300, atol=1e-9)


def test_scaled_keeps_distortion_consistent(h36m):
    # Distortion acts on normalised coordinates, so it survives resizing.
    cams, samples = h36m
    cam, S_mm, part = samples[0]
    np.testing.assert_allclose(cam.scaled(0.5).project(S_mm), cam.project(S_mm) * 0.5, atol=1e-9)


def test_to_dict_from_dict_round_trip_through_json(h36m):
    cams, samples = h36m
    for cam in [samples[0][0], Camera.from_fov(64, 48, 40.0)]:
        d = json.loads(json.dumps(cam.to_dict()))
        back = Camera.from_dict(d)
        assert back.to_dict() == cam.to_dict()
        np.testing.assert_array_equal(back.R, cam.R)
        X = np.array([[10.0, -20.0, 3000.0]])
        np.testing.assert_array_equal(back.project(X), cam.project(X))
