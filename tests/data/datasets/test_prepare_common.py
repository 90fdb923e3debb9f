"""Frame geometry, config and dispatch shared by all preparers."""

from __future__ import annotations

import numpy as np
import pytest

from selfpose.config import ConfigError, from_dict
from selfpose.data.datasets import PREPARERS, PrepareConfig, PrepareError, prepare
from selfpose.data.datasets.framing import FrameTransform, keep_indices, person_square, sequence_transform
from selfpose.geometry.camera import Camera


def blob_image(w: int, h: int, u: float, v: float, sigma: float = 6.0) -> np.ndarray:
    """A Gaussian blob centred at sub-pixel ``(u, v)`` (pixel-centre coordinates)."""
    yy, xx = np.mgrid[0:h, 0:w]
    g = np.exp(-((xx - u) ** 2 + (yy - v) ** 2) / (2 * sigma**2))
    return np.repeat((g * 255).round().astype(np.uint8)[..., None], 3, axis=2)


def centroid(img: np.ndarray) -> np.ndarray:
    w = img[..., 0].astype(np.float64)
    yy, xx = np.mgrid[0:img.shape[0], 0:img.shape[1]]
    return np.array([(w * xx).sum() / w.sum(), (w * yy).sum() / w.sum()])


@pytest.mark.parametrize("make", [
    lambda: FrameTransform.letterbox(400, 300, 64),
    lambda: FrameTransform.letterbox(300, 400, 50),
    lambda: FrameTransform.square_crop(180.0, 160.0, 150.0, 48),
    lambda: FrameTransform.square_crop(40.0, 280.0, 200.0, 64),   # crop past the border: zero padding
    lambda: FrameTransform.letterbox(400, 300, 0),
])
def test_transform_moves_pixels_and_points_alike(make):
    tf = make()
    u, v = 123.3, 201.7
    out = tf.image(blob_image(400, 300, u, v))
    assert out.shape == (tf.height, tf.width, 3) and out.dtype == np.uint8
    np.testing.assert_allclose(centroid(out), tf.points(np.array([u, v])), atol=0.3)


def test_letterbox_geometry():
    tf = FrameTransform.letterbox(1280, 720, 128)
    assert (tf.width, tf.height, tf.rw, tf.rh, tf.px, tf.py) == (128, 128, 128, 72, 0, 28)
    img = tf.image(np.full((720, 1280, 3), 200, np.uint8))
    assert img[:28].max() == 0 and img[100:].max() == 0 and img[28:100].min() == 200
    # Box corners move like points.
    np.testing.assert_allclose(tf.boxes(np.array([0.0, 0.0, 640.0, 360.0])),
                               np.concatenate([tf.points(np.zeros(2)), tf.points(np.array([640.0, 360.0]))]))


def test_transformed_camera_projects_onto_transformed_points():
    cam = Camera(1145.0, 1143.8, 512.5, 515.4, 1000, 1002, k=(-0.2, 0.25, -0.003), p=(-0.0014, -0.001),
                 R=np.eye(3), t=np.zeros(3))
    X = np.random.default_rng(0).normal([0, 0, 5000], [400, 600, 200], size=(50, 3))
    for tf in (FrameTransform.letterbox(1000, 1002, 128), FrameTransform.square_crop(480, 470, 420, 96)):
        c2 = tf.camera(cam)
        assert (c2.width, c2.height) == (tf.width, tf.height)
        np.testing.assert_allclose(c2.project(X), tf.points(cam.project(X)), atol=1e-9)


def test_person_square_and_sequence_transform():
    boxes = np.array([[10, 20, 50, 120], [30, 10, 70, 100]], float)
    assert person_square(boxes) == (40.0, 65.0, 110.0)
    cfg = PrepareConfig(size=64, crop="person", crop_scale=1.5)
    tf = sequence_transform(cfg, 640, 480, boxes)
    assert (tf.x1 - tf.x0) == 165 and tf.width == 64
    with pytest.raises(PrepareError, match="person boxes"):
        sequence_transform(cfg, 640, 480, np.full((1, 4), np.nan))
    assert sequence_transform(PrepareConfig(size=64), 640, 480, None).rh == 48


def test_keep_indices():
    assert keep_indices(10, 3, 0).tolist() == [0, 3, 6, 9]
    assert keep_indices(10, 3, 2).tolist() == [0, 3]


def test_config_is_strict_and_validated():
    cfg = from_dict(PrepareConfig, {"size": 64, "step": 2, "subjects": "S1,S5"})
    assert cfg.subjects == ("S1", "S5") and cfg.size == 64
    with pytest.raises(ConfigError, match="stpe"):
        from_dict(PrepareConfig, {"stpe": 2})
    with pytest.raises(ConfigError, match="size"):
        from_dict(PrepareConfig, {"size": 8})
    with pytest.raises(ConfigError, match="crop"):
        from_dict(PrepareConfig, {"crop": "tight"})
    with pytest.raises(ConfigError, match="step"):
        PrepareConfig(step=0)


def test_prepare_rejects_unknown_format_and_missing_source(tmp_path):
    assert set(PREPARERS) == {"h36m", "mpi-inf-3dhp", "humaneva", "3dpw", "videos", "multiview", "mocap"}
    with pytest.raises(PrepareError, match="unknown dataset format 'h37m'.*h36m, mpi-inf-3dhp"):
        prepare("h37m", tmp_path, tmp_path / "out")
    with pytest.raises(PrepareError, match="does not exist"):
        prepare("h36m", tmp_path / "missing", tmp_path / "out")
    with pytest.raises(PrepareError, match="would contain or replace the source"):
        prepare("videos", tmp_path, tmp_path, overwrite=True)
    with pytest.raises(PrepareError, match="no mmpose Human3.6M annotation"):
        prepare("h36m", tmp_path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_store_takes_per_frame_backgrounds_after_close(tmp_path):
    """Preparers estimate a moving camera's per-frame backgrounds from the frames they just wrote."""
    from selfpose.data.sequence import SequenceMeta
    from selfpose.data.store import Dataset, DatasetWriter

    with DatasetWriter(tmp_path / "ds") as w:
        sw = w.add_sequence(SequenceMeta("v", "s", "", "v", "0", 25.0, 0, 8, 6))
        for i in range(2):
            sw.append(frames=np.full((3, 8, 6, 3), i, np.uint8))
        sw.close()
        frames = np.load(sw.array_path("frames"), mmap_mode="r")
        sw.set(backgrounds=np.asarray(frames) + 1)
        with pytest.raises(ValueError, match="backgrounds"):
            sw.set(backgrounds=np.zeros((5, 8, 6, 3), np.uint8))  # not the closed length
        with pytest.raises(RuntimeError, match="already written"):
            sw.set(frames=np.zeros((6, 8, 6, 3), np.uint8))
    rec = Dataset.open(tmp_path / "ds").sequences[0]
    assert rec.has("backgrounds") and rec["backgrounds"][:, 0, 0, 0].tolist() == [1, 1, 1, 2, 2, 2]
