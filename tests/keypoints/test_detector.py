"""The offline 2D detector and `selfpose keypoints`: real clips, a video with no person, refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest

from selfpose.data.datasets.keypoints import load_keypoints
from selfpose.keypoints import detector
from selfpose.keypoints.detector import DetectorConfig, DetectorError

needs_detector = pytest.mark.skipif(not detector.available(),
                                    reason="MediaPipe is not installed (make setup installs the detector)")


def test_only_the_bundled_model_is_accepted():
    for complexity in (0, 2):
        with pytest.raises(DetectorError, match="only model_complexity=1"):
            DetectorConfig(model_complexity=complexity)


def test_missing_mediapipe_is_a_one_line_error_naming_the_install(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_mediapipe(name, *args, **kwargs):
        if name.startswith("mediapipe"):
            raise ImportError("No module named 'mediapipe'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_mediapipe)
    with pytest.raises(DetectorError, match="make setup") as e:
        detector._pose_module()
    assert "\n" not in str(e.value)
    assert not detector.available()


@needs_detector
def test_real_clip_keypoints_round_trip(shared_file, tmp_path):
    from selfpose.keypoints.files import detect_keypoints

    video = shared_file("multiview/pose2sim_single/cam01.mp4")
    out = tmp_path / "K"
    res = detect_keypoints(video, out, progress=False)
    row = res["videos"][0]
    assert row["frames"] == 100 and row["no_person"] == 0
    d = np.load(out / "cam01.npz")
    assert d["keypoints"].shape == (100, 33, 4) and d["h36m17"].shape == (100, 17, 3)
    assert d["detected"].all()
    kp = load_keypoints(out / "cam01.npz", int(d["width"]), int(d["height"]))
    assert kp.skeleton == "mediapipe33" and len(kp) == 100
    # a standing person: the nose above the hips, the ankles below, inside the 1080 x 1920 frame
    nose, hip, ankle = kp.xy[:, 0, 1], kp.xy[:, 23, 1], kp.xy[:, 27, 1]
    assert (nose < hip).all() and (hip < ankle).all()
    assert (kp.xy[..., 0] > 0).all() and (kp.xy[..., 0] < 1080).all()
    # the house skeleton's pelvis is the hips' midpoint
    assert np.allclose(d["h36m17"][:, 0, :2], d["keypoints"][:, [23, 24], :2].mean(1), atol=1e-3)
    # running again keeps the file; the summary still lists the video
    again = detect_keypoints(video, out, progress=False)
    assert again["videos"][0]["skipped"]
    assert json.loads((out / "summary.json").read_text())["videos"][0]["frames"] == 100


@needs_detector
def test_video_with_no_person_marks_every_frame(tmp_path):
    from selfpose.keypoints.files import detect_keypoints
    from selfpose.viz.video import write_video

    rng = np.random.default_rng(0)
    frames = (rng.random((12, 128, 160, 3)) * 40 + 100).astype(np.uint8)  # grey noise, nobody there
    video = write_video(tmp_path / "empty.mp4", frames, fps=25)
    res = detect_keypoints(video, tmp_path / "K", progress=False)
    assert res["videos"][0]["no_person"] == 12
    d = np.load(tmp_path / "K" / "empty.npz")
    assert not d["detected"].any() and np.isnan(d["keypoints"]).all()


def test_no_video_and_foreign_output_are_refused(tmp_path):
    from selfpose.errors import OutputError
    from selfpose.keypoints.files import KeypointsError, detect_keypoints

    (tmp_path / "vids").mkdir()
    with pytest.raises(KeypointsError, match="no video files"):
        detect_keypoints(tmp_path / "vids", tmp_path / "K")
    with pytest.raises(KeypointsError, match="not found"):
        detect_keypoints(tmp_path / "none", tmp_path / "K")
    if detector.available():
        from selfpose.viz.video import write_video

        write_video(tmp_path / "vids" / "a.mp4", np.zeros((2, 32, 32, 3), np.uint8), fps=25)
        mine = tmp_path / "mine"
        mine.mkdir()
        (mine / "notes.txt").write_text("mine")
        with pytest.raises(OutputError):
            detect_keypoints(tmp_path / "vids", mine)
        assert (mine / "notes.txt").read_text() == "mine"
