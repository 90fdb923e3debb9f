"""The demo and the commands after pretraining, end to end on a micro budget.

One module-scoped run of the demo (a few training steps: this checks the
wiring and the outputs, not accuracy — accuracy is measured by the
benchmarks) feeds the CLI tests of fit-pose, evaluate, predict and analyze.
"""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from selfpose.cli import app
from selfpose.demo import DemoBudget, run_demo

MICRO = DemoBudget(max_sequences=3, max_seconds=5.0, steps=4, pose_steps=20, labels=0.2, lifter_seconds=4.0,
                   lifter_hidden=64)
runner = CliRunner()


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    report = run_demo(out, budget=MICRO, progress=False)
    assert report == out / "report.md"
    return out


def test_demo_writes_report_with_table_and_pictures(demo_dir):
    md = (demo_dir / "report.md").read_text()
    results = json.loads((demo_dir / "results.json").read_text())
    assert "lower is better" in md
    synthetic = md.split("## Real video")[0]   # the real-video part has a table of its own
    rows = [ln.split("|")[1].strip() for ln in synthetic.splitlines() if ln.startswith("| ") and "N-MPJPE" not in ln]
    assert rows == ["full method (DSL-STN-Dec-Split)", "random encoder, same crop", "box + camera only (ridge)",
                    "box + camera only (10-NN)", "mean pose"]
    for key in ("full_method", "random_same_crop", "box_camera_ridge", "box_camera_knn", "mean_pose"):
        assert np.isfinite(results[key]["n_mpjpe"]) and results[key]["frames"] > 0, key
    # the random encoder reads the full method's own crop: the same boxes, so the same detection IoU
    assert 0 <= results["full_method"]["box_iou"] <= 1
    assert results["random_same_crop"]["box_iou"] == pytest.approx(results["full_method"]["box_iou"], abs=1e-6)
    assert results["mean_pose"]["box_iou"] is None and results["box_camera_knn"]["box_iou"] is None
    for split in ("train", "test"):   # rendered without the where-they-stand shortcut (issue 14)
        synth = json.loads((demo_dir / "data" / split / "index.json").read_text())["attrs"]["config"]
        assert synth["lab_cameras"] == "per_take" and synth["random_heading"] and synth["lab_fill"] == [0.5, 0.7]
    assert results["pretrain_steps"] == MICRO.steps and results["check_ok"]
    for png in ("training_curves.png", "detections.png", "poses.png", "reconstruction.png", "analysis/transfers.png"):
        assert (demo_dir / png).stat().st_size > 5_000, png
        assert f"({png})" in md
    assert (demo_dir / "report.html").read_text().count("<img") == md.count("![")
    assert 0 <= results["kmeans_v"] <= 1 and 0 <= results["kmeans_i"] <= 1


def test_demo_real_video_part(demo_dir):
    """The shipped clip lifted by a lifter trained on the shipped motion, scored against the triangulation."""
    from selfpose.demo_video import detector_available

    v = json.loads((demo_dir / "results.json").read_text())["video"]
    md = (demo_dir / "report.md").read_text()
    reason = detector_available()
    if reason:   # the core install: the part says why it did not run
        assert v == {"skipped": reason} and f"Skipped: {reason}" in md
        pytest.skip(f"the real-video part needs the 2D detector: {reason}")
    assert v["frames"] == 100 and v["no_person"] == 0 and v["lifter_steps"] > 0
    for key in ("lifter", "mediapipe_world", "mean_pose"):
        row = v["rows"][key]
        assert row["frames"] == 100 and 0 < row["p_mpjpe"] < 400, key
    # MediaPipe's 3D of this person is far better than a pose that reads no 2D (measured on cam01: 67.0 against 229.6)
    assert v["rows"]["mediapipe_world"]["p_mpjpe"] < 0.6 * v["rows"]["mean_pose"]["p_mpjpe"]
    with np.load(demo_dir / "video" / "predict" / "pose2sim_cam01" / "joints3d.npz") as z:
        assert z["joints3d"].shape == (100, 17, 3) and np.isfinite(z["joints3d"]).all() and z["valid"].all()
    for png in ("video/overlay_strip.png", "video/vs_reference.png"):
        assert (demo_dir / png).stat().st_size > 5_000, png
        assert f"({png})" in md
    assert (demo_dir / "video" / "predict" / "pose2sim_cam01" / "overlay.mp4").stat().st_size > 10_000
    assert "Real video: 3D from one camera" in md


def test_cli_fit_pose_and_evaluate(demo_dir, tmp_path):
    r = runner.invoke(app, ["fit-pose", str(demo_dir / "run"), "--data", str(demo_dir / "data" / "train"),
                            "--labels", "0.2", "--out", str(tmp_path / "pose"), "pose.steps=10"])
    assert r.exit_code == 0, r.output
    info = json.loads((tmp_path / "pose" / "pose.json").read_text())
    assert info["num_labelled"] > 0 and any((tmp_path / "pose").glob("pose_head*"))
    r = runner.invoke(app, ["evaluate", str(tmp_path / "pose"), "--data", str(demo_dir / "data" / "test"), "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["overall"]["count"] > 0 and res["overall"]["n_mpjpe"] > 0
    assert (tmp_path / "pose" / "results.md").is_file()


def test_cli_predict_on_a_real_video(demo_dir, tmp_path, shared_data):
    video = shared_data / "videos" / "single_person_demo.mp4"
    if not video.is_file():
        pytest.skip(f"{video} not found")
    r = runner.invoke(app, ["predict", str(demo_dir / "pose"), str(video), "--out", str(tmp_path / "pred")])
    assert r.exit_code == 0, r.output
    npz = next((tmp_path / "pred").glob("*/joints3d.npz"))
    with np.load(npz) as z:
        assert z["joints3d"].shape == (40, 17, 3) and np.isfinite(z["joints3d"]).all()
    assert (npz.parent / "overlay.mp4").stat().st_size > 1_000


def test_cli_errors_after_pretraining(demo_dir, tmp_path):
    cases = [
        (["fit-pose", str(tmp_path), "--data", str(demo_dir / "data" / "train"), "--out", str(tmp_path / "p")],
         "not a pretraining run"),
        (["evaluate", str(tmp_path), "--data", str(demo_dir / "data" / "test")], "not a pose folder"),
        (["pretrain", "--data", str(demo_dir / "data" / "train"), "--out", str(tmp_path / "r"), "train.step=3"],
         "did you mean train.steps"),
        (["pretrain", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "r")], "does not exist"),
        (["predict", str(demo_dir / "pose"), str(tmp_path / "missing.mp4"), "--out", str(tmp_path / "o")],
         "missing.mp4"),
    ]
    for args, msg in cases:
        r = runner.invoke(app, args)
        assert r.exit_code == 2 and msg in r.output and "Traceback" not in r.output, (args, r.output)
