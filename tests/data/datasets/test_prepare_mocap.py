"""Motion capture → keypoint dataset (no frames): synthetic and real Human3.6M cameras, bone scaling, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from selfpose.cli import app
from selfpose.data.datasets import PrepareConfig, prepare
from selfpose.data.inspect import check
from selfpose.data.sequence import outside_image
from selfpose.data.store import Dataset
from selfpose.data.synthetic.mocap import MotionFile
from selfpose.geometry.bone_scaling import H36M17_BONE_GROUPS, scale_bones
from selfpose.geometry.skeleton import H36M17, bone_lengths

T = 12
KEYS = {"S1/walking_1": "train/walking_1", "S1/jumping_1": "train/jumping_1", "S2/running_1": "train/running_1"}


def write_motion(path, keys=KEYS, fps=30.0, **extra):
    """A tiny motion npz (first T frames of shipped CMU takes) with its fps in a sibling .json."""
    with MotionFile() as mf:
        arrays = {k: mf.load(src).joints[:T] for k, src in keys.items()}
    np.savez(path, **arrays, **extra)
    path.with_suffix(".json").write_text(json.dumps({"fps": fps}))
    return arrays


@pytest.fixture(scope="module")
def motion(tmp_path_factory):
    p = tmp_path_factory.mktemp("mo") / "motion.npz"
    return p, write_motion(p)


@pytest.fixture(scope="module")
def synth(motion, tmp_path_factory):
    out = tmp_path_factory.mktemp("ds") / "ds"
    return Dataset.open(prepare("mocap", motion[0], out, PrepareConfig(seed=3, rig="ring"), progress=False))


def test_varied_rig_draws_shapes_heights_and_distances(motion, tmp_path, checks):
    from selfpose.data.datasets.mocap import VARIED_SHAPES

    ds = Dataset.open(prepare("mocap", motion[0], tmp_path / "v", PrepareConfig(seed=1, rig_views=6), progress=False))
    assert len(ds) == 3 * 6 and ds.attrs["cameras"] == "synthetic varied"
    shapes = {(r.meta.width, r.meta.height) for r in ds}
    assert shapes <= set(VARIED_SHAPES) and len(shapes) >= 3
    assert any(w > h for w, h in shapes) and any(w < h for w, h in shapes)  # landscape and portrait
    heights = [r.meta.camera.center[2] for r in ds]
    assert max(heights) - min(heights) > 500
    focal_ratio = [r.meta.camera.fx / max(r.meta.width, r.meta.height) for r in ds]
    assert 0.6 < min(focal_ratio) and max(focal_ratio) < 1.4 and max(focal_ratio) - min(focal_ratio) > 0.1
    for r in ds:
        assert checks.reprojection_px(r).max() < 1e-3
        assert not np.asarray(r["joints2d_outside"]).any()  # each camera frames the whole take
        j2 = np.asarray(r["joints2d"])
        assert (j2[:, 10, 1] < j2[:, 0, 1]).all()  # small roll: the head stays above the pelvis


def test_synthetic_cameras_shapes_takes_and_reprojection(synth, checks):
    assert len(synth) == 3 * 4 and synth.subjects() == ["S1", "S2"]
    assert synth.attrs["has_frames"] is False and synth.attrs["num_frames"] == 12 * T
    takes = synth.takes()
    assert sorted(takes) == ["S1__jumping_1", "S1__walking_1", "S2__running_1"]
    for recs in takes.values():  # four views of one take: shared take id and frame ids, distinct cameras
        assert sorted(r.meta.view for r in recs) == ["cam0", "cam1", "cam2", "cam3"]
        assert len({tuple(np.round(r.meta.camera.center)) for r in recs}) == 4
        assert all(r["frame_ids"].tolist() == list(range(T)) for r in recs)
    rec = synth.sequence("S1__walking_1__cam2")
    assert rec.meta.action == "walking" and rec.meta.fps == 30.0 and (rec.meta.width, rec.meta.height) == (1000, 1000)
    assert rec["joints3d"].shape == (T, 17, 3) and rec["joints2d"].shape == (T, 17, 2)
    assert rec["joints2d_outside"].dtype == bool and not rec.has("frames")
    for r in synth:
        assert checks.reprojection_px(r).max() < 1e-3
        assert (r["joints3d"][..., 2] > 1000).all()
    # The ring is at human height and the camera frame is y-down: the head is above the pelvis in the image.
    assert all((np.asarray(r["joints2d"])[:, 10, 1] < np.asarray(r["joints2d"])[:, 0, 1]).all() for r in synth)
    # Camera frame → world gives back the motion (same body in every view).
    cam = rec.meta.camera
    np.testing.assert_allclose(cam.camera_to_world(np.asarray(rec["joints3d"], np.float64)),
                               MotionFile(synth.attrs["source"]).load("S1/walking_1").joints, atol=0.05)
    report = check(synth, progress=False)
    assert report["ok"], report["problems"]
    assert report["reprojection"]["worst_px"] < 1e-3


def test_seeds_are_reproducible(motion, synth, tmp_path):
    same = Dataset.open(prepare("mocap", motion[0], tmp_path / "a", PrepareConfig(seed=3, rig="ring"), progress=False))
    other = Dataset.open(prepare("mocap", motion[0], tmp_path / "b", PrepareConfig(seed=4, rig="ring"), progress=False))
    rid = "S2__running_1__cam1"
    np.testing.assert_array_equal(same.sequence(rid)["joints2d"], synth.sequence(rid)["joints2d"])
    assert not np.allclose(other.sequence(rid)["joints2d"], synth.sequence(rid)["joints2d"])
    # A take's cameras do not depend on which other subjects were prepared.
    only = Dataset.open(prepare("mocap", motion[0], tmp_path / "c", PrepareConfig(seed=3, rig="ring", subjects=("S2",)),
                                progress=False))
    np.testing.assert_array_equal(only.sequence(rid)["joints2d"], synth.sequence(rid)["joints2d"])


def test_outside_flag_matches_image_bounds():
    uv = np.array([[-0.6, 10], [-0.4, 10], [999.4, 5], [999.6, 5], [5, 1000.0]])
    assert outside_image(uv, 1000, 1000).tolist() == [True, False, False, True, True]


def test_scale_bones_keeps_root_directions_and_topology():
    X = np.random.default_rng(0).normal(size=(5, 17, 3)) * 200
    s = np.linspace(0.8, 1.2, 17)
    Y = scale_bones(X, s)
    np.testing.assert_array_equal(Y[:, 0], X[:, 0])
    for p, c in H36M17.bones:
        a, b = X[:, c] - X[:, p], Y[:, c] - Y[:, p]
        np.testing.assert_allclose(np.linalg.norm(b, axis=-1), s[c] * np.linalg.norm(a, axis=-1), rtol=1e-9)
        np.testing.assert_allclose(np.einsum("nc,nc->n", a, b), np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def test_bone_augmentation_scales_bones_by_the_configured_std(tmp_path):
    keys = {f"S{i}/walking_{j}": "train/walking_1" for i in range(1, 6) for j in range(1, 9)}
    src = write_motion(tmp_path / "m.npz", keys)
    std = 0.1
    ds = Dataset.open(prepare("mocap", tmp_path / "m.npz", tmp_path / "ds",
                              PrepareConfig(bone_scale_std=std, max_frames=4), progress=False))
    bone_of = {c: i for i, (_, c) in enumerate(H36M17.bones)}
    ratios = []
    for recs in ds.takes().values():
        key = recs[0].meta.attrs["motion"]
        L0 = bone_lengths(src[key][:4].astype(np.float64))
        per_view = [bone_lengths(np.asarray(r["joints3d"], np.float64)) / L0 for r in recs]
        for v in per_view[1:]:  # one body per take, seen by all four views
            np.testing.assert_allclose(v, per_view[0], rtol=1e-4)
        factors = recs[0].meta.attrs["bone_scales"]
        for name, joints in H36M17_BONE_GROUPS.items():
            for j in joints:  # constant over frames, the stored factor, left = right
                np.testing.assert_allclose(per_view[0][:, bone_of[j]], factors[name], rtol=1e-4)
        ratios.append([factors[n] for n in H36M17_BONE_GROUPS])
        # The pelvis is kept: the world-frame pelvis equals the motion's.
        cam = recs[0].meta.camera
        np.testing.assert_allclose(cam.camera_to_world(np.asarray(recs[0]["joints3d"][:, 0], np.float64)),
                                   src[key][:4, 0], atol=0.05)
    r = np.array(ratios)  # 40 takes × 10 groups
    assert abs(r.mean() - 1) < 0.02 and 0.085 < r.std() < 0.115
    assert len({tuple(x) for x in r}) == len(r)  # each take its own body
    report = check(ds, progress=False)
    assert report["ok"], report["problems"]


def test_real_h36m_cameras(shared_data, tmp_path, checks):
    motion = shared_data / "mocap" / "h36m17_train_S1-S8_25fps.npz"
    cams = shared_data / "fixtures" / "h36m" / "cameras.pkl"
    if not (motion.is_file() and cams.is_file()):
        pytest.skip("Human3.6M motion or cameras.pkl missing from ../shared/data")
    ds = Dataset.open(prepare("mocap", motion, tmp_path / "h", PrepareConfig(cameras=str(cams), subjects=("S1",),
                                                                            max_frames=20), progress=False))
    assert ds.subjects() == ["S1"] and ds.views() == ["54138969", "55011271", "58860488", "60457274"]
    assert len(ds) == 4 * len(ds.takes()) == 4 * 30 and ds.num_frames == 120 * 20
    rec = ds.sequence("S1__walking_1__54138969")
    assert (rec.meta.width, rec.meta.height) == (1000, 1002) and rec.meta.fps == 25.0
    assert rec.meta.camera.has_distortion
    for r in ds:
        assert checks.reprojection_px(r).max() < 1e-3
        np.testing.assert_array_equal(r["joints2d_outside"], outside_image(np.asarray(r["joints2d"]), r.meta.width,
                                                                           r.meta.height))
        assert r.meta.attrs["num_joints2d_outside"] == int(np.asarray(r["joints2d_outside"]).sum())
    # Distortion is applied: an undistorted projection differs by pixels away from the image centre.
    from dataclasses import replace
    j3 = np.asarray(rec["joints3d"], np.float64)
    plain = replace(rec.meta.camera, k=(0.0, 0.0, 0.0), p=(0.0, 0.0)).project(j3)
    assert np.abs(plain - rec["joints2d"]).max() > 1.0
    assert check(ds, progress=False)["ok"]


runner = CliRunner()


def test_one_line_errors(tmp_path, motion, shared_data):
    cams = shared_data / "fixtures" / "h36m" / "cameras.pkl"
    if not cams.is_file():
        pytest.skip("cameras.pkl missing from ../shared/data")
    bad_shape = tmp_path / "shape.npz"
    np.savez(bad_shape, **{"S1/walk_1": np.zeros((5, 16, 3), np.float32)})
    nonfinite = tmp_path / "nan.npz"
    a = np.ones((5, 17, 3), np.float32)
    a[2, 3, 1] = np.nan
    np.savez(nonfinite, **{"S1/walk_1": a})
    for p in (bad_shape, nonfinite):
        p.with_suffix(".json").write_text('{"fps": 25}')
    near = tmp_path / "near.npz"  # stands behind Human3.6M S1's first camera (T = 1.84, 4.96, 1.56 m)
    arrays = write_motion(near, {"S1/walking_1": "train/walking_1"})
    np.savez(near, **{"S1/walking_1": arrays["S1/walking_1"] - arrays["S1/walking_1"][:1, :1] + [2400, 6400, 900]})
    subj = tmp_path / "subj.npz"
    write_motion(subj, {"S1/walking_1": "train/walking_1", "S42/walking_1": "train/walking_1"})
    cases = [
        (["prepare", "mocap", str(subj), "--out", str(tmp_path / "o1"), "--cameras", str(cams)], "S42"),
        (["prepare", "mocap", str(bad_shape), "--out", str(tmp_path / "o2")], "(T, 17, 3)"),
        (["prepare", "mocap", str(near), "--out", str(tmp_path / "o6"), "--cameras", str(cams)], "54138969"),
        (["prepare", "mocap", str(nonfinite), "--out", str(tmp_path / "o3")], "NaN/inf"),
        (["prepare", "mocap", str(motion[0]), "--out", str(tmp_path / "o4"), "--subjects", "S9"], "S9"),
        (["prepare", "mocap", str(motion[0]), "--out", str(tmp_path / "o5"), "bone_scale_std=0.5"], "bone_scale_std"),
    ]
    for args, needle in cases:
        r = runner.invoke(app, args)
        assert r.exit_code == 2, (args, r.output)
        msg = r.output.strip()
        assert msg.startswith("error:") and "\n" not in msg and needle in msg, (args, msg)
        assert not (tmp_path / args[4]).exists()
    # The subject error still works when the good subject is selected away from it.
    r = runner.invoke(app, ["prepare", "mocap", str(subj), "--out", str(tmp_path / "ok"), "--cameras", str(cams),
                            "--subjects", "S1", "max_frames=3"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["info", "--check", str(tmp_path / "ok")])
    assert r.exit_code == 0 and "OK:" in r.output, r.output


def test_check_catches_a_wrong_outside_flag(motion, tmp_path):
    ds = Dataset.open(prepare("mocap", motion[0], tmp_path / "d", PrepareConfig(max_frames=3), progress=False))
    rec = ds.sequence("S1__walking_1__cam0")
    flag = np.load(rec.path("joints2d_outside"), mmap_mode="r+")
    flag[1, 4] = ~flag[1, 4]
    flag.flush()
    del flag
    report = check(Dataset.open(tmp_path / "d"), progress=False)
    assert not report["ok"] and any("joints2d_outside flags disagree" in p and "frame 1" in p
                                    for p in report["problems"]), report["problems"]


def test_detector_joints_move_the_3d_before_projection(motion, tmp_path, checks):
    from selfpose.geometry.joint_definitions import DETECTOR_PROPORTIONS, proportions

    h = Dataset.open(prepare("mocap", motion[0], tmp_path / "h", PrepareConfig(seed=1, rig="ring"), progress=False))
    d = Dataset.open(prepare("mocap", motion[0], tmp_path / "d", PrepareConfig(seed=1, rig="ring", joints="detector"),
                             progress=False))
    assert d.attrs["joints"] == "detector"
    rid = "S1__walking_1__cam0"
    # in the world: the cameras frame the moved joints, so they may sit elsewhere
    a, b = (r.meta.camera.camera_to_world(np.asarray(r["joints3d"], np.float64))
            for r in (h.sequence(rid), d.sequence(rid)))
    for key, value in proportions(b).items():   # the take's own proportions moved to MediaPipe's
        assert value == pytest.approx(DETECTOR_PROPORTIONS[key], rel=1e-4), key
    np.testing.assert_allclose(a[:, 1:7], b[:, 1:7], atol=0.05)   # hips and legs unchanged
    for r in d:
        assert checks.reprojection_px(r).max() < 1e-3   # the 2D is the projection of the moved 3D
