"""Tests of prediction on video (selfpose.pose.predict)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from selfpose.data.datasets.framing import FrameTransform
from selfpose.data.video import VideoError, probe, read_frames
from selfpose.models.temporal import ModelConfig, TemporalModel
from selfpose.pose.predict import OUTPUT_FILES, PredictError, predict_video, project_into_box
from selfpose.viz.video import write_video

SMALL = dict(image_size=64, crop_size=32, detector_input=32, detector_width=8, encoder_width=8, v_dim=16, i_dim=16,
             decoder_channels=16, decoder_hidden=64)


def _model(**kw) -> TemporalModel:
    torch.manual_seed(0)
    return TemporalModel(ModelConfig(**{**SMALL, **kw}))


def _head(dim: int):
    """A random linear pose head: features (B, D) → (B, 17, 3) mm."""
    lin = torch.nn.Linear(dim, 51)
    return lambda f: lin(f).reshape(-1, 17, 3) * 200.0


def test_project_into_box_fits_and_centres():
    j = np.zeros((2, 17, 3))
    j[:, :, 0] = np.linspace(-200, 200, 17)      # 400 mm wide
    j[:, :, 1] = np.linspace(-800, 800, 17)      # 1600 mm tall
    j[1, :, 2] = 5000                            # depth is ignored (orthographic)
    boxes = np.array([[10.0, 20.0, 110.0, 220.0], [10.0, 20.0, 110.0, 220.0]])
    p = project_into_box(j, boxes, fit=0.9)
    assert p.shape == (2, 17, 2)
    assert np.allclose(p[0], p[1])
    assert np.allclose(p[0].min(0) + p[0].max(0), [120.0, 240.0])   # centred on the box centre
    assert np.isclose(np.ptp(p[0, :, 1]), 0.9 * 200)                  # height is the tight side
    assert np.isclose(np.ptp(p[0, :, 0]), 0.9 * 200 / 4)              # aspect kept (1:4)
    j[1, 3] = np.nan
    assert np.isnan(project_into_box(j, boxes)[1]).all() and np.isfinite(project_into_box(j, boxes)[0]).all()


def test_predict_real_clip(tmp_path, shared_file):
    video = shared_file("videos/single_person_demo.mp4")
    model = _model()
    res = predict_video(model, _head(model.feature_dim()), video, tmp_path / "out", batch_size=16, progress=False,
                        num_skeletons=4, overlay_px=320)
    (s,) = res["videos"]
    out = tmp_path / "out" / "single_person_demo"
    assert s["out"] == str(out) and sorted(s["files"]) == sorted(OUTPUT_FILES)
    assert s["num_frames"] == 40 and s["decoder"] is True
    W, H = s["source_size"]
    z = np.load(out / "joints3d.npz")
    assert z["joints3d"].shape == (40, 17, 3) and z["joints3d"].dtype == np.float32
    assert z["boxes_px"].shape == z["boxes_stored_px"].shape == (40, 4)
    assert np.array_equal(z["frame_ids"], np.arange(40))
    assert np.isclose(float(z["fps"]), probe(video).fps)
    # boxes in source pixels: inside the frame's neighbourhood and larger than the stored ones by the letterbox scale
    b = z["boxes_px"]
    assert (b[:, 2] > b[:, 0]).all() and (b[:, 3] > b[:, 1]).all()
    assert b[:, [0, 2]].min() > -0.6 * W and b[:, [0, 2]].max() < 1.6 * W
    scale = max(W, H) / 64
    widths = (b[:, 2] - b[:, 0]) / (z["boxes_stored_px"][:, 2] - z["boxes_stored_px"][:, 0])
    assert np.allclose(widths, scale, rtol=1e-3)
    doc = json.loads((out / "joints3d.json").read_text())
    assert len(doc["joints3d"]) == 40 and len(doc["joints3d"][0]) == 17 and doc["units"]["joints3d"].startswith("mm")
    assert np.allclose(np.array(doc["joints3d"], float), z["joints3d"], atol=0.06)
    ov = read_frames(out / "overlay.mp4")
    assert ov.shape[0] == 40 and max(ov.shape[1:3]) == 320
    assert (out / "skeleton3d.png").stat().st_size > 10_000
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES)  # temporary store removed
    assert model.training  # mode restored


def _tiny_video(path, T=10, seed=0):
    rng = np.random.default_rng(seed)
    f = np.full((T, 48, 80, 3), 120, np.uint8)
    f += rng.integers(0, 20, f.shape, dtype=np.uint8)
    for t in range(T):
        f[t, 10:40, 20 + 2 * t:35 + 2 * t] = 30
    return write_video(path, f, fps=10)


# tiny flat synthetic videos have no SIFT texture: the camera-motion test warns and assumes static
@pytest.mark.filterwarnings("ignore::selfpose.data.backgrounds.BackgroundWarning")
def test_predict_folder_without_decoder(tmp_path):
    src = tmp_path / "videos"
    _tiny_video(src / "a.mp4")
    _tiny_video(src / "sub" / "b.mp4", T=7, seed=1)
    (src / "notes.txt").write_text("not a video")
    model = _model(decoder=False, detector=False)
    out = src / "predictions"  # inside the source folder: its outputs must not be taken for inputs
    res = predict_video(model, _head(model.feature_dim()), src, out, step=2, progress=False, num_skeletons=2)
    got = {s["out"]: s for s in res["videos"]}
    assert set(got) == {str(out / "a"), str(out / "sub__b")}
    assert got[str(out / "a")]["num_frames"] == 5 and got[str(out / "sub__b")]["num_frames"] == 4
    z = np.load(out / "a" / "joints3d.npz")
    assert np.array_equal(z["frame_ids"], [0, 2, 4, 6, 8]) and np.isclose(float(z["fps"]), 5.0)
    # detector off: the box is the whole letterboxed frame — the full width, and beyond the 80x48 picture
    # vertically by the black bars (13 of 64 stored rows above the 38 picture rows, 48/38 source px each)
    tf = FrameTransform.letterbox(80, 48, 64)
    assert (tf.py, tf.rh) == (13, 38)
    assert np.allclose(z["boxes_px"][0], [-0.5, -0.5 - 13 * 48 / 38, 79.5, 47.5 + 13 * 48 / 38], atol=0.01)
    # a second run over the same folder still sees only the two videos
    res2 = predict_video(model, _head(model.feature_dim()), src, out, step=2, progress=False, num_skeletons=0)
    assert len(res2["videos"]) == 2 and "skeleton3d.png" in res2["videos"][0]["files"]  # from the first run


@pytest.mark.filterwarnings("ignore::selfpose.data.backgrounds.BackgroundWarning")
def test_stored_size_differs_from_model_size_and_numpy_head(tmp_path):
    vid = _tiny_video(tmp_path / "v.mp4", T=6)
    model = _model()  # image_size 64; frames prepared at 96 and resized by the model

    class Fitted:  # an object with .predict (features → numpy mm), like a fitted pose head
        def predict(self, f):
            return np.tile(np.linspace(-300, 300, 51, dtype=np.float32), (len(f), 1))

    res = predict_video(model, Fitted(), vid, tmp_path / "out", size=96, progress=False, num_skeletons=2)
    (s,) = res["videos"]
    assert s["stored_size"] == 96 and sorted(s["files"]) == sorted(OUTPUT_FILES)
    z = np.load(tmp_path / "out" / "v" / "joints3d.npz")
    assert z["joints3d"].shape == (6, 17, 3) and np.isclose(z["joints3d"][0, 16, 2], 300)
    tf = FrameTransform.letterbox(80, 48, 96)
    # stored and source boxes agree through the letterbox transform
    assert np.allclose(tf.boxes(z["boxes_px"]), z["boxes_stored_px"], atol=1e-3)
    assert np.all(z["boxes_stored_px"][:, 2] <= 96.5)


@pytest.mark.filterwarnings("ignore::selfpose.data.backgrounds.BackgroundWarning")
def test_errors(tmp_path):
    model = _model()
    head = _head(model.feature_dim())
    with pytest.raises(VideoError, match="missing.mp4"):
        predict_video(model, head, tmp_path / "missing.mp4", tmp_path / "out")
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    with pytest.raises(VideoError, match="corrupt.mp4"):
        predict_video(model, head, bad, tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PredictError, match="callable"):
        predict_video(model, 3, tmp_path / "empty", tmp_path / "out")
    with pytest.raises(PredictError, match="no video files"):
        predict_video(model, head, tmp_path / "empty", tmp_path / "out")
    vid = _tiny_video(tmp_path / "v.mp4", T=4)
    with pytest.raises(PredictError, match=r"\(4, 17, 3\)"):
        predict_video(model, lambda f: f[:, :10], vid, tmp_path / "out", progress=False)
    assert not any(p.name.startswith(".predict-") for p in (tmp_path / "out" / "v").iterdir())


@pytest.mark.filterwarnings("ignore::selfpose.data.backgrounds.BackgroundWarning")
def test_a_method_that_reads_the_background_gets_the_estimated_one(tmp_path, monkeypatch):
    """A sync model read as pretrained (``pose_background: as_pretrained``, the person masked) gets every frame
    with the background ``predict`` estimated from the video."""
    from selfpose.config import from_dict
    from selfpose.methods.registry import build
    from selfpose.methods.sync import SyncMethod
    from selfpose.pretrain import PretrainConfig

    cfg = from_dict(PretrainConfig, {"method": "sync", "model": {"image_size": 64, "crop_size": 32, "encoder_width": 8},
                                     "method_config": {"sync": {"crop": "full", "pose_background": "as_pretrained"}}})
    method = build("sync", cfg).eval()
    assert method.reads_background and not method.reads_boxes
    calls: list[tuple[torch.Tensor, torch.Tensor]] = []
    original = SyncMethod.pose_input

    def spy(self, frames, background):
        calls.append((frames, background))
        return original(self, frames, background)

    monkeypatch.setattr(SyncMethod, "pose_input", spy)
    vid = _tiny_video(tmp_path / "v.mp4", T=6)
    res = predict_video(method, _head(method.feature_dim), vid, tmp_path / "out", progress=False, num_skeletons=0)
    assert res["videos"][0]["num_frames"] == 6
    assert sum(len(f) for f, _ in calls) == 6
    frames, bg = calls[0]
    assert frames.shape == bg.shape and frames.dtype == bg.dtype == torch.float32
    # the moving dark block is the person: the estimate is the textured grey without it
    assert float(bg[:, :, 30, 5:15].mean()) > 0.4 and float(frames[0, :, 25, 21].mean()) < 0.2
