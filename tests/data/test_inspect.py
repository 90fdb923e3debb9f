"""Dataset summaries and consistency checks (``selfpose info --check``)."""

from __future__ import annotations

import json
import pickle
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from selfpose.data.inspect import check, format_check, format_summary, summarize
from selfpose.data.sequence import SequenceMeta
from selfpose.data.store import Dataset, DatasetWriter
from selfpose.geometry.camera import Camera

W, H, T = 64, 48, 20

# A standing person facing the camera, camera frame (x right, y down), mm,
# Human3.6M-17 order.
STANDING = np.array([
    [0, 0, 0], [-130, 0, 0], [-130, 440, 0], [-130, 880, 0], [130, 0, 0], [130, 440, 0], [130, 880, 0],
    [0, -230, 0], [0, -490, 0], [0, -600, -40], [0, -720, 0],
    [150, -490, 0], [150, -210, 0], [150, 40, 0], [-150, -490, 0], [-150, -210, 0], [-150, 40, 0],
], dtype=np.float64)


def walking_poses(n: int, seed: int) -> np.ndarray:
    """``(n, 17, 3)`` mm: the standing pose turning about the vertical, 4-5 m in front of the camera."""
    rng = np.random.default_rng(seed)
    yaw = rng.uniform(-np.pi, np.pi, size=n)
    c, s = np.cos(yaw), np.sin(yaw)
    R = np.zeros((n, 3, 3))
    R[:, 0, 0], R[:, 0, 2], R[:, 1, 1], R[:, 2, 0], R[:, 2, 2] = c, s, 1, -s, c
    root = np.stack([rng.uniform(-300, 300, n), rng.uniform(-100, 100, n), rng.uniform(4000, 5000, n)], axis=1)
    return np.einsum("nij,kj->nki", R, STANDING) + root[:, None]


def sequence_arrays(cam: Camera, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    j3 = walking_poses(T, seed)
    j2 = cam.project(j3)
    boxes = np.concatenate([j2.min(axis=1) - 2, j2.max(axis=1) + 2], axis=1)
    boxes = np.clip(boxes, 0, [W, H, W, H])
    masks = (rng.random((T, H, W)) < 0.2).astype(np.uint8)
    frames = rng.integers(0, 256, size=(T, H, W, 3), dtype=np.uint8)
    return dict(frames=frames, masks=masks, boxes=boxes, joints2d=j2, joints2d_conf=np.ones((T, 17)), joints3d=j3)


def meta(seq_id: str, subject: str, cam: Camera | None, action: str = "walk", view: str = "c0") -> SequenceMeta:
    return SequenceMeta(id=seq_id, subject=subject, action=action, take=f"{subject}_{action}", view=view, fps=25.0,
                        num_frames=T, height=H, width=W, camera=cam, scenario="lab")


def write_store(path, corrupt=None) -> Dataset:
    """Three sequences (two with cameras, one without); ``corrupt(name, arrays)`` may edit sequence 'a'."""
    cam = Camera.from_fov(W, H, 60.0)
    with DatasetWriter(path, attrs={"source": "test"}) as w:
        for sid, subject, c, seed in (("a", "S1", cam, 0), ("b", "S2", cam, 1), ("nocam", "S2", None, 2)):
            arrays = sequence_arrays(cam, seed)
            if corrupt is not None and sid == "a":
                corrupt(arrays)
            w.write_sequence(meta(sid, subject, c, view="c0" if sid != "b" else "c1"), **arrays)
    return Dataset.open(path)


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real data file {path} not found")
    return path


@pytest.fixture
def valid_store(tmp_path) -> Dataset:
    return write_store(tmp_path / "ok")


def test_valid_store_passes_with_exact_reprojection(valid_store):
    report = check(valid_store, progress=False)
    assert report["ok"], report["problems"]
    assert report["problems"] == [] and report["num_problems"] == 0
    r = report["reprojection"]
    assert r["num_sequences"] == 2 and r["worst_px"] < 1e-3 and r["mean_px"] < 1e-3
    assert r["skipped"] == {"nocam": "no camera"}
    assert set(r["per_sequence"]) == {"a", "b"}
    lo, hi = report["bone_lengths_mm"]["right_hip-right_knee"]
    assert lo == pytest.approx(440.0, abs=0.1) and hi == pytest.approx(440.0, abs=0.1)
    json.dumps(report)  # JSON-serialisable for `selfpose info --json`
    text = format_check(report)
    assert text.startswith("OK") and "1 × no camera" in text


def test_corrupted_2d_is_caught_by_reprojection(tmp_path):
    def corrupt(a):
        a["joints2d"][13, 5] += [3.0, 4.0]  # 5 px off at frame 13, left knee

    report = check(write_store(tmp_path / "bad2d", corrupt), progress=False)
    assert not report["ok"]
    r = report["reprojection"]
    assert r["worst_px"] == pytest.approx(5.0, abs=1e-3)
    assert (r["worst_sequence"], r["worst_frame"], r["worst_joint"]) == ("a", 13, "left_knee")
    assert r["per_sequence"]["b"]["worst_px"] < 1e-3
    assert len(report["problems"]) == 1 and report["problems"][0].startswith("a: 3D joints reproject up to 5.00 px")
    # A looser threshold accepts it.
    assert check(write_store(tmp_path / "bad2d_loose", corrupt), reproj_threshold_px=6.0, progress=False)["ok"]


def test_chunked_reading_finds_the_same_worst_frame(tmp_path):
    def corrupt(a):
        a["joints2d"][17, 2] += [0.0, 9.0]

    ds = write_store(tmp_path / "chunks", corrupt)
    big, small = check(ds, chunk_frames=256, progress=False), check(ds, chunk_frames=3, progress=False)
    assert small["reprojection"]["worst_frame"] == big["reprojection"]["worst_frame"] == 17
    assert small["reprojection"]["mean_px"] == pytest.approx(big["reprojection"]["mean_px"])
    assert small["problems"] == big["problems"]


def test_box_outside_the_image_is_caught(tmp_path):
    def corrupt(a):
        a["boxes"][4] = [-20.0, 5.0, 30.0, 40.0]
        a["boxes"][6] = [30.0, 5.0, 20.0, 40.0]  # x0 > x1

    report = check(write_store(tmp_path / "badbox", corrupt), progress=False)
    assert not report["ok"]
    text = " | ".join(report["problems"])
    assert "a: 1 boxes lie outside the 64x48 image (first at frame 4" in text
    assert "a: 1 boxes are empty or inverted" in text and "(first at frame 6" in text


def test_mask_values_other_than_0_1_are_caught(tmp_path):
    def corrupt(a):
        a["masks"][9, 10:12, 20:23] = 7

    report = check(write_store(tmp_path / "badmask", corrupt), progress=False)
    assert report["problems"] == ["a: masks have 6 values other than 0/1 (first at frame 9 of 20)"]


def test_nan_in_3d_is_caught_and_skipped_in_reprojection(tmp_path):
    def corrupt(a):
        a["joints3d"][2, 16] = np.nan

    report = check(write_store(tmp_path / "nan3d", corrupt), progress=False)
    assert not report["ok"]
    assert any(p.startswith("a: 1 3D joints are NaN") and "frame 2" in p for p in report["problems"])
    # The NaN joint is left out of the reprojection, which stays exact.
    assert report["reprojection"]["worst_px"] < 1e-3


def test_3d_in_metres_and_behind_the_camera_are_caught(tmp_path):
    def metres(a):
        a["joints3d"] = a["joints3d"] / 1000.0
        a["joints2d"] = Camera.from_fov(W, H, 60.0).project(a["joints3d"])

    report = check(write_store(tmp_path / "metres", metres), progress=False)
    assert any("implausible bone lengths" in p and "millimetres" in p for p in report["problems"])
    assert report["reprojection"]["worst_px"] < 1e-3  # projection is unit-free

    def behind(a):
        a["joints3d"][5, :, 2] *= -1

    report = check(write_store(tmp_path / "behind", behind), progress=False)
    assert any("17 3D joints are not in front of the camera" in p for p in report["problems"])


def test_wrong_array_shape_and_bad_camera_rotation(tmp_path):
    ds = write_store(tmp_path / "shape")
    np.save(ds.sequence("a").path("boxes"), np.zeros((T - 1, 4), dtype=np.float32))
    report = check(Dataset.open(tmp_path / "shape", verify=False), progress=False)   # open would refuse it
    assert any(p.startswith("a: boxes has shape (19, 4), expected (20, 4)") for p in report["problems"])

    cam = Camera.from_fov(W, H, 60.0)
    with DatasetWriter(tmp_path / "moving") as w:
        R = np.repeat(np.eye(3)[None], T, axis=0)
        R[7] *= 2.0
        w.write_sequence(meta("m", "S1", cam), joints3d=walking_poses(T, 0), camera_R=R,
                         camera_t=np.zeros((T, 3)))
    report = check(Dataset.open(tmp_path / "moving"), progress=False)
    assert report["problems"] == ["m: camera_R is not a rotation at 1 frames from frame 7"]
    assert report["reprojection"]["skipped"] == {"m": "no joints2d"}


def test_detected_2d_is_not_held_to_reprojection(tmp_path):
    def detected(a):
        a["joints2d"] = a["joints2d"] + 10.0
        a["joints2d_conf"] = np.full((T, 17), 0.8)

    report = check(write_store(tmp_path / "detected", detected), progress=False)
    assert report["ok"], report["problems"]
    assert "a" in report["reprojection"]["skipped"] and "ground-truth" in report["reprojection"]["skipped"]["a"]


def test_summarize_counts_everything(valid_store):
    s = summarize(valid_store)
    assert s["num_sequences"] == 3 and s["num_frames"] == 3 * T
    assert (s["num_subjects"], s["num_actions"], s["num_views"], s["num_takes"]) == (2, 1, 2, 2)
    assert s["frames_per_subject"] == {"S1": T, "S2": 2 * T}
    assert s["duration_s"] == pytest.approx(3 * T / 25.0)
    assert s["resolutions"] == {"64x48": 3} and s["fps"] == {"25": 3} and s["scenarios"] == {"lab": 3}
    assert s["cameras"] == {"intrinsics": 2, "per_frame_extrinsics": 0}
    assert s["labels"]["joints3d"] == 3 and s["labels"]["frames"] == 3 and s["labels"]["frame_ids"] == 3
    assert "camera_R" not in s["labels"]
    assert s["attrs"] == {"source": "test"}
    json.dumps(s)
    text = format_summary(s)
    for needle in ("2 subjects", "64x48 (3)", "S2 (40 frames)", "joints3d", "3/3"):
        assert needle in text, needle


def test_format_check_lists_problems(tmp_path):
    def corrupt(a):
        a["masks"][0, 0, 0] = 2

    text = format_check(check(write_store(tmp_path / "fmt", corrupt), progress=False))
    assert text.startswith("FAILED") and "- a: masks have 1 values other than 0/1" in text
    assert "1 problems, 0 warnings" in text


def test_real_h36m_frames_reproject_through_their_distorted_cameras(tmp_path, shared_data):
    d = np.load(need(shared_data / "fixtures/h36m/test_h36m_body3d.npz"))
    with open(need(shared_data / "fixtures/h36m/cameras.pkl"), "rb") as fh:
        cams = pickle.load(fh)

    def write(path, drop_distortion: bool) -> Dataset:
        with DatasetWriter(path) as w:
            for name, S, part in zip(d["imgname"], d["S"], d["part"]):
                subject, folder = str(name).split("/")[:2]
                cam = Camera.from_h36m(cams[(subject, folder.rsplit(".", 1)[1])])
                if drop_distortion:
                    cam = replace(cam, k=(0.0, 0.0, 0.0), p=(0.0, 0.0))
                m = SequenceMeta(id=folder.replace(".", "_"), subject=subject, action=folder.split(".")[0], take=folder,
                                 view="c", fps=50.0, num_frames=1, height=cam.height, width=cam.width, camera=cam)
                w.write_sequence(m, joints3d=S[None, :, :3] * 1000.0, joints2d=part[None, :, :2])
        return Dataset.open(path)

    report = check(write(tmp_path / "h36m", False), progress=False)
    assert report["ok"], report["problems"]
    assert report["reprojection"]["num_sequences"] == 4
    assert report["reprojection"]["worst_px"] < 0.5  # measured 0.22 px
    # Forgetting the lens distortion is caught (errors of 1.2-3.4 px).
    report = check(write(tmp_path / "h36m_nodist", True), progress=False)
    assert not report["ok"] and report["reprojection"]["worst_px"] > 2.0
    assert all("reproject" in p for p in report["problems"])


def test_empty_dataset_fails(tmp_path):
    with DatasetWriter(tmp_path / "empty"):
        pass
    report = check(Dataset.open(tmp_path / "empty"), progress=False)
    assert not report["ok"] and report["problems"][0].endswith("the dataset has no sequences")
    assert report["reprojection"]["worst_px"] is None
    assert "not checked" in format_check(report)


def test_a_few_glitchy_bone_lengths_only_warn(tmp_path):
    def glitch(a):
        a["joints3d"][11, 13] += [0.0, 400.0, 0.0]  # the left wrist jumps 40 cm in one frame
        a["joints2d"] = Camera.from_fov(W, H, 60.0).project(a["joints3d"])

    report = check(write_store(tmp_path / "glitch", glitch), progress=False)
    assert report["ok"], report["problems"]
    assert report["num_warnings"] == 1
    assert report["warnings"][0].startswith("a: bone lengths jump by more than 50% in 1 frames (mostly "
                                            "left_elbow-left_wrist")
    assert "! a: bone lengths jump" in format_check(report)
