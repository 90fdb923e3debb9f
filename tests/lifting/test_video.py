"""A lifter on real video: filling missing 2D, the facing direction, the swap repair, predict end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import selfpose
from selfpose.cli import app
from selfpose.geometry.skeleton import H36M17
from selfpose.keypoints import detector
from selfpose.lifting.video import (VideoLiftConfig, VideoLiftError, facing, focal_for, interpolate_missing,
                                    repair_swaps)

MOTION = Path(selfpose.__file__).parent / "assets" / "motion" / "cmu_h36m17approx_30fps.npz"
needs_detector = pytest.mark.skipif(not detector.available(),
                                    reason="MediaPipe is not installed (make setup installs the detector)")


def test_interpolate_missing_is_linear_inside_and_constant_outside():
    T = 6
    xy = np.stack([np.arange(T, dtype=float) * 10] * 2, -1)[:, None].repeat(2, 1)  # (T, 2, 2)
    known = np.ones((T, 2), bool)
    known[[0, 2, 3], 0] = False
    out = interpolate_missing(np.where(known[..., None], xy, -999.0), known)
    assert out[:, 0, 0].tolist() == [10, 10, 20, 30, 40, 50]   # held before the first, linear between
    assert np.array_equal(out[:, 1], xy[:, 1])
    known[:, 1] = False
    with pytest.raises(VideoLiftError, match="never seen"):
        interpolate_missing(xy, known)


def standing(yaw: float) -> np.ndarray:
    """A house pose facing the direction ``yaw`` (0: towards a camera looking along +z), camera frame mm."""
    J = np.zeros((17, 3))
    J[8] = [0, -500, 0]                         # thorax above the pelvis (y down)
    J[[1, 4]] = [[-100, 0, 0], [100, 0, 0]]     # right hip on the image's left when facing the camera
    J[[14, 11]] = [[-180, -480, 0], [180, -480, 0]]
    c, s = np.cos(yaw), np.sin(yaw)
    R = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return J @ R.T


def test_facing_points_at_the_camera_and_reverses_when_left_and_right_swap():
    f = facing(np.stack([standing(0.0), standing(np.pi / 2)]))
    np.testing.assert_allclose(f[0], [0, 0, -1], atol=1e-9)
    assert abs(f[1] @ f[0]) < 1e-9   # a quarter turn is a right angle
    swapped = standing(0.0)[H36M17.flip_permutation()]
    np.testing.assert_allclose(facing(swapped[None])[0], [0, 0, 1], atol=1e-9)


def test_repair_swaps_undoes_an_episode_and_leaves_a_real_turn_alone():
    T = 120
    yaw = np.linspace(0, np.pi, T)   # the person turns half around, smoothly, over the clip
    true = np.stack([standing(a) for a in yaw])
    perm = H36M17.flip_permutation()
    episode = np.zeros(T, bool)
    episode[40:75] = True                        # the detector exchanges left and right here
    as_detected = np.where(episode[:, None, None], true[:, perm], true)
    rng = np.random.default_rng(0)
    noise = lambda: rng.normal(0, 15, size=(T, 17, 3))  # noqa: E731  lifted 3D is not exact
    keep = repair_swaps(facing(as_detected + noise()), facing(as_detected[:, perm] + noise()))
    assert np.array_equal(keep, episode)
    none = repair_swaps(facing(true + noise()), facing(true[:, perm] + noise()))
    assert not none.any()
    # an episode reaching the clip's end is undone too when it is short enough to cost less than its one jump
    tail = np.zeros(T, bool)
    tail[110:] = True
    detected = np.where(tail[:, None, None], true[:, perm], true)
    assert np.array_equal(repair_swaps(facing(detected), facing(detected[:, perm])), tail)


def test_focal_from_the_field_of_view():
    assert focal_for(1920, 1080, VideoLiftConfig(fov_deg=90)) == pytest.approx(960)
    assert focal_for(1080, 1920, VideoLiftConfig(focal_px=1500)) == 1500
    from selfpose.config import ConfigError

    with pytest.raises(ConfigError, match="fov_deg"):
        VideoLiftConfig(fov_deg=200)


@pytest.fixture(scope="module")
def tiny_lifter(tmp_path_factory):
    """A martinez lifter trained for a few steps on the shipped motion (fast; the shapes are what is checked)."""
    root = tmp_path_factory.mktemp("vid")
    r = CliRunner().invoke(app, ["prepare", "mocap", str(MOTION), "--out", str(root / "ds"), "max_frames=12"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["fit-lifter", "--data", str(root / "ds"), "--out", str(root / "run"), "steps=4",
                                 "train_subjects=train", "martinez.width=16", "batch_size=8", "threads=1",
                                 "eval_every=2"])
    assert r.exit_code == 0, r.output
    return root / "run"


def test_lift_keypoints_fills_gaps_and_marks_them(tiny_lifter, one_thread):
    from selfpose.lifting.model import Lifter
    from selfpose.lifting.video import lift_keypoints

    lifter = Lifter.load(tiny_lifter)
    rng = np.random.default_rng(0)
    T = 30
    xy = 500 + rng.normal(0, 80, size=(1, 17, 2)) + rng.normal(0, 2, size=(T, 17, 2))
    conf = np.full((T, 17), 0.9)
    xy[5:9] = np.nan           # no person in four frames
    conf[5:9] = 0.0
    conf[12, 3] = 0.1          # one low-confidence joint
    res = lift_keypoints(lifter, xy, conf, 1000, 1000, VideoLiftConfig(correct=False), name="t")
    assert res["joints3d"].shape == (T, 17, 3) and np.isfinite(res["joints3d"]).all()
    assert res["valid"].tolist() == [not 5 <= t < 9 for t in range(T)]
    assert res["no_person"] == 4 and res["joints_filled"] == 1
    assert np.isfinite(res["translation"]).all() and (res["translation"][:, 2] > 0).all()
    with pytest.raises(VideoLiftError, match="no person"):
        lift_keypoints(lifter, np.full((5, 17, 2), np.nan), np.zeros((5, 17)), 100, 100)


@needs_detector
def test_predict_with_a_lifter_on_a_real_clip(tiny_lifter, shared_file, tmp_path, one_thread):
    video = shared_file("videos/single_person_demo.mp4")
    out = tmp_path / "P"
    r = CliRunner().invoke(app, ["predict", str(tiny_lifter), str(video), "--out", str(out)])
    assert r.exit_code == 0, r.output
    clip = out / "single_person_demo"
    d = np.load(clip / "joints3d.npz")
    from selfpose.data.video import read_frames

    T = len(read_frames(video))
    assert d["joints3d"].shape == (T, 17, 3) and d["valid"].shape == (T,) and np.isfinite(d["joints3d"]).all()
    assert d["valid"].all()   # the detector sees the person in every frame of this clip
    doc = json.loads((clip / "joints3d.json").read_text())
    assert doc["num_frames"] == T and len(doc["joints3d"]) == T and "pelvis-centred" in doc["units"]["joints3d"]
    assert (clip / "overlay.mp4").stat().st_size > 10_000 and (clip / "skeleton3d.png").stat().st_size > 10_000
    assert "swaps repaired" in (clip / "report.md").read_text()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["videos"][0]["frames"] == T and summary["method"] == "martinez"
    # a keypoint file of another video is refused in one line
    kp = tmp_path / "K"
    kp.mkdir()
    np.savez(kp / "single_person_demo.npz", keypoints=np.zeros((T + 30, 17, 3)), skeleton=np.array("h36m17"))
    r = CliRunner().invoke(app, ["predict", str(tiny_lifter), str(video), "--out", str(tmp_path / "Q"),
                                 "--keypoints", str(kp)])
    assert r.exit_code == 2 and "belongs to another video" in r.output and "Traceback" not in r.output


@needs_detector
def test_predict_on_a_video_with_no_person_is_a_one_line_error(tiny_lifter, tmp_path, one_thread):
    from selfpose.viz.video import write_video

    rng = np.random.default_rng(0)
    video = write_video(tmp_path / "empty.mp4", (rng.random((10, 96, 128, 3)) * 40 + 100).astype(np.uint8), fps=25)
    r = CliRunner().invoke(app, ["predict", str(tiny_lifter), str(video), "--out", str(tmp_path / "P")])
    assert r.exit_code == 2 and "no person" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "P").exists()


def test_fix_bone_lengths_keeps_directions_and_gives_one_length_per_bone():
    from selfpose.evaluation.metrics import limb_length_consistency
    from selfpose.lifting.video import fix_bone_lengths

    rng = np.random.default_rng(1)
    base = standing(0.3)
    base[[2, 3, 5, 6]] = [[-100, 420, 0], [-100, 840, 0], [100, 420, 30], [100, 840, 60]]
    base[[12, 13, 15, 16]] = [[200, -200, 0], [220, 50, 0], [-200, -200, 0], [-220, 50, 0]]
    J = base[None] * rng.uniform(0.9, 1.1, size=(40, 17, 1)) + rng.normal(0, 10, size=(40, 17, 3))
    out = fix_bone_lengths(J)
    assert limb_length_consistency(out)["mean"] < 1e-9 and limb_length_consistency(J)["mean"] > 0.02
    for p, c in H36M17.bones:   # every bone keeps its direction
        a, b = J[:, c] - J[:, p], out[:, c] - out[:, p]
        cos = (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
        assert (cos > 1 - 1e-9).all()
    np.testing.assert_array_equal(out[:, 0], J[:, 0])
    perm = H36M17.flip_permutation()   # left and right twins get one length
    thigh = lambda X, h, k: np.linalg.norm(X[:, k] - X[:, h], axis=-1)  # noqa: E731
    np.testing.assert_allclose(thigh(out, 1, 2), thigh(out, int(perm[1]), int(perm[2])))


def test_a_clip_shorter_than_the_prediction_window_gets_a_window_of_its_own_length():
    from types import SimpleNamespace

    from selfpose.lifting.video import _clip_window

    pose_machine = SimpleNamespace(method=SimpleNamespace(predict_clip=lambda cfg: 128), cfg=None)
    assert _clip_window(pose_machine, 40) == 40     # not padded to 128 with copies of the last frame
    assert _clip_window(pose_machine, 412) == 128   # a long clip keeps the method's window
    assert _clip_window(pose_machine, 0) == 1
    per_frame = SimpleNamespace(method=SimpleNamespace(predict_clip=None), cfg=None)
    assert _clip_window(per_frame, 40) == 40


def test_the_mean_pose_is_the_output_normalisations_mean(tiny_lifter):
    from selfpose.lifting.model import Lifter

    lifter = Lifter.load(tiny_lifter)
    mean = lifter.mean_pose()
    raw = lifter.out_mean.numpy().reshape(17, 3)
    assert mean.shape == (17, 3) and np.allclose(mean[0], 0)
    np.testing.assert_allclose(mean, raw - raw[:1], atol=1e-4)
