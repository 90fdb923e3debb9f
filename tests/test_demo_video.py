"""The demo's real-video part: its lifter settings, the shipped clip and reference, its report section.

The part itself runs end to end in tests/test_demo.py (the micro demo).
"""

from pathlib import Path

import numpy as np

from selfpose.config import to_dict
from selfpose.demo_video import ROWS, asset, load_reference, report_section, video_lifter_config
from selfpose.lifting.config import load_lifter_config


def test_demo_lifter_has_the_settings_of_configs_lifter_video():
    shipped = to_dict(load_lifter_config(Path(__file__).resolve().parents[1] / "configs" / "lifter_video.yaml"))
    demo = to_dict(video_lifter_config(120.0))
    for key in ("method", "train_noise", "noise", "pose_machine", "input_norm", "batch_size", "steps", "lr"):
        assert demo[key] == shipped[key], key
    assert demo["max_seconds"] == 120.0 and demo["lr_clock"] == "budget"
    assert demo["train_subjects"] == ["train"] and demo["val_subjects"] == ["test"]   # CMU's held-out people
    narrow = to_dict(video_lifter_config(5.0, hidden=64))["pose_machine"]
    assert narrow["hidden"] == 64 and narrow["clip"] == shipped["pose_machine"]["clip"] == 32   # width only


def test_shipped_clip_licence_and_reference():
    from selfpose.data.video import probe

    with asset("pose2sim_cam01.mp4") as clip:
        info = probe(clip)
    assert (info.width, info.height, info.num_frames) == (1080, 1920, 100)
    with asset("LICENSE.pose2sim") as lic:
        text = lic.read_text()
    assert "BSD 3-Clause" in text and "perfanalytics" in text
    ref = load_reference()
    j = ref["joints3d"]
    assert j.shape == (100, 17, 3) and np.isfinite(j).all()
    assert (j[..., 2] > 1000).all()   # in front of cam01, metres away
    thigh = np.linalg.norm(j[:, 2] - j[:, 1], axis=-1)
    assert 300 < np.median(thigh) < 550   # mm: a person's thigh, not metres or pixels
    assert tuple(ref["size"]) == (1080, 1920) and 1500 < ref["focal_px"][0] < 1900
    # the reference re-projects near where the views saw the joints (the triangulation's own error, px)
    assert np.nanmedian(ref["reproj_px"].astype(np.float32)) < 20


def _rows(lifter, mp, mean):
    return {k: {"mpjpe": 2 * p, "p_mpjpe": p, "limb_error_mm": 10.0, "limb_cv": 0.0, "frames": 100}
            for k, p in zip(("lifter", "mediapipe_world", "mean_pose"), (lifter, mp, mean))}


def test_report_section_table_and_verdict_follow_the_numbers():
    v = {"lifter_seconds": 120.0, "lifter_steps": 781, "train_frames": 33812, "lifter_val_n_mpjpe": 81.7,
         "frames": 100, "detector_fps": 30.0, "lift_fps": 900.0, "no_person": 0, "swaps_repaired": 2,
         "correction": {"applied": 3, "clips": 4}, "limb_cv_lifter": 0.12, "seconds": {"lifter": 121.0},
         "pictures": {"overlay": "overlay_strip.png", "vs_reference": "vs_reference.png", "video": "p/o.mp4"},
         "rows": _rows(129.6, 79.5, 240.6)}
    md = "\n".join(report_section(v, "video/"))
    table = [ln for ln in md.splitlines() if ln.startswith("| ") and "P-MPJPE" not in ln]
    assert [ln.split("|")[1].strip() for ln in table] == [label for _, label in ROWS]
    assert "| 129.6 |" in table[0] and "1.63× MediaPipe" in md and "![overlay and 3D](video/overlay_strip.png)" in md
    v["rows"] = _rows(70.0, 79.5, 240.6)
    assert "below MediaPipe's own 3D" in "\n".join(report_section(v, ""))
    v["rows"] = _rows(250.0, 79.5, 240.6)
    assert "no better than the mean pose" in "\n".join(report_section(v, ""))


def test_report_section_says_why_it_was_skipped():
    md = "\n".join(report_section({"skipped": "the 2D detector needs MediaPipe; run make setup"}, ""))
    assert "Skipped: the 2D detector needs MediaPipe" in md


def test_without_the_detector_the_part_is_skipped_and_writes_nothing(tmp_path, monkeypatch):
    import pytest

    from selfpose import demo_video
    from selfpose.errors import SelfposeError

    monkeypatch.setattr(demo_video, "detector_available", lambda: "the 2D detector needs MediaPipe; run make setup")
    with pytest.raises(demo_video.VideoDemoSkipped, match="needs MediaPipe") as e:
        demo_video.run_video_demo(tmp_path / "video", 1.0)
    assert isinstance(e.value, SelfposeError) and not (tmp_path / "video").exists()


def test_a_failing_real_video_part_is_reported_and_handed_back(monkeypatch, tmp_path):
    """The demo writes its report with the failure in it, then raises the error (tests/test_demo.py runs the rest)."""
    from selfpose import demo, demo_video
    from selfpose.errors import SelfposeError

    class Broken(SelfposeError, ValueError):
        pass

    def fail(*args, **kwargs):
        raise Broken("pose2sim_cam01.mp4 cannot be decoded; reinstall selfpose")

    monkeypatch.setattr(demo_video, "run_video_demo", fail)
    result, error = demo._video_part(tmp_path, demo.QUICK, overwrite=True, progress=False)
    assert isinstance(error, Broken) and result == {"failed": str(error)}
    assert "Failed: pose2sim_cam01.mp4 cannot be decoded" in "\n".join(report_section(result, ""))
