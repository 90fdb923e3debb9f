import json

import numpy as np
import pytest

from selfpose.data.synthetic.kinematics import ANKLE_HEIGHT_MM, REST_OFFSETS_MM, forward_kinematics, rot_x, rot_y, rot_z
from selfpose.data.synthetic.mocap import MotionFile, load_motions, parse_key
from selfpose.data.synthetic.motion import GRAVITY_MM_S2, Motion, MotionError, implausibility, resample, resampled_length
from selfpose.data.synthetic.procedural import PROCEDURAL_ACTIONS, procedural_motion
from selfpose.geometry.skeleton import bone_lengths


def _walker(T: int, fps: float, speed_mm_s: float = 1000.0) -> np.ndarray:
    """A rigid rest-pose body translating along x at ``speed_mm_s`` (exactly linear in time)."""
    rest = forward_kinematics(np.broadcast_to(np.eye(3), (1, 17, 3, 3)).copy(), np.array([[0, 0, 950.0]]))[0]
    t = np.arange(T) / fps
    return (rest[None] + (speed_mm_s * t)[:, None, None] * np.array([1.0, 0, 0])).astype(np.float32)


@pytest.fixture
def mocap(tmp_path):
    """A small Human3.6M-style npz (+ json with fps 25) with subjects S1 and S5."""
    arrays = {"S1/walking_1": _walker(50, 25), "S1/eating_2": _walker(30, 25), "S5/walking_1": _walker(40, 25)}
    path = tmp_path / "mocap.npz"
    np.savez_compressed(path, **arrays)
    path.with_suffix(".json").write_text(json.dumps({"fps": 25.0}))
    return path


def test_parse_key_subjects_and_splits():
    assert parse_key("S1/walking_1") == ("S1", "walking")
    assert parse_key("train/running_3") == ("", "running")
    assert parse_key("test/basketball_signal_2") == ("", "basketball_signal")
    assert parse_key("jump") == ("", "jump")


def test_select_by_subject_prefix_and_action(mocap):
    with MotionFile(mocap) as mf:
        assert mf.fps == 25.0
        assert mf.subjects() == ["S1", "S5"]
        assert mf.select(["S1"]) == ["S1/walking_1", "S1/eating_2"]
        assert mf.select(["S1", "S5"], ["walking"]) == ["S1/walking_1", "S5/walking_1"]
        assert mf.num_frames("S5/walking_1") == 40
        m = mf.load("S1/eating_2")
    assert (m.subject, m.action, m.fps, m.joints.shape) == ("S1", "eating", 25.0, (30, 17, 3))


def test_unknown_subject_prefix_is_a_clear_error(mocap):
    with MotionFile(mocap) as mf:
        with pytest.raises(MotionError, match=r"'S9'.*available prefixes: S1, S5"):
            mf.select(["S1", "S9"])
        with pytest.raises(MotionError, match="'jogging'.*available actions: eating, walking"):
            mf.select(actions=["jogging"])


def test_fps_from_json_or_user_else_error(tmp_path):
    path = tmp_path / "m.npz"
    np.savez(path, a=_walker(10, 30))
    with pytest.raises(MotionError, match="pass the motion's fps"):
        MotionFile(path)
    with MotionFile(path, fps=30) as mf:
        assert mf.fps == 30.0


def test_validation_names_the_key(tmp_path):
    bad = _walker(10, 25)
    bad[3, 4, 1] = np.nan
    np.savez(tmp_path / "m.npz", **{"S1/bad_1": bad, "S1/shape_1": np.zeros((5, 16, 3), np.float32)})
    with MotionFile(tmp_path / "m.npz", fps=25) as mf:
        with pytest.raises(MotionError, match=r"'S1/bad_1' has NaN.*frame 3"):
            mf.load("S1/bad_1")
        with pytest.raises(MotionError, match=r"'S1/shape_1' must have shape \(T, 17, 3\)"):
            mf.load("S1/shape_1")
    with pytest.raises(MotionError, match="not found"):
        MotionFile(tmp_path / "missing.npz", fps=25)


def test_resample_is_linear_in_time_and_lengths_agree(mocap):
    x = _walker(50, 25)                      # 1 m/s along x, 50 frames at 25 fps = 1.96 s
    y = resample(x, 25, 10)
    assert len(y) == resampled_length(50, 25, 10) == 20
    np.testing.assert_allclose(y[:, 0, 0] - y[0, 0, 0], np.arange(20) * 100.0, atol=1e-3)
    up = resample(x, 25, 50)
    np.testing.assert_allclose(up[::2], x, atol=1e-3)
    motions = list(load_motions(mocap, subjects=["S1"], fps=10, max_seconds=1.0))
    assert [m.name for m in motions] == ["S1/walking_1", "S1/eating_2"]
    assert [m.num_frames for m in motions] == [11, 11] and all(m.fps == 10 for m in motions)
    assert resampled_length(30, 25, 10) == 12 and resampled_length(30, 25, 10, max_seconds=1.0) == 11


def test_cropped_keeps_the_first_seconds():
    m = Motion("a", "", "walk", 10.0, _walker(100, 10))
    assert m.cropped(2.5).num_frames == 26 and m.cropped(None) is m
    assert m.cropped(2.5).duration_s == pytest.approx(2.5)


def test_shipped_cmu_motion_loads_as_package_data():
    with MotionFile(None) as mf:
        assert mf.fps == 30.0 and mf.source.startswith("shipped:")
        assert all(k.startswith(("train/", "test/")) for k in mf.keys)
        assert mf.subjects() == []
        keys = mf.select(["test"], ["walking"])
        m = mf.load(keys[0])
    assert m.subject == "" and m.action == "walking" and m.joints.dtype == np.float32
    assert implausibility(m) is None


def test_real_h36m_mocap_subject_selection(shared_data):
    path = shared_data / "mocap" / "h36m17_train_S1-S8_25fps.npz"
    if not path.is_file():
        pytest.skip(f"real mocap {path} not found")
    with MotionFile(path) as mf:
        assert mf.fps == 25.0
        keys = mf.select(["S1"])
        assert len(keys) == 30 and all(k.startswith("S1/") for k in keys)
        assert mf.num_frames("S1/walking_1") == 1738
        m = mf.load("S1/walking_1").resampled(10).cropped(5)
        assert m.joints.shape == (51, 17, 3)
        # One take of that release is stored upside down: it must be recognised.
        assert "upside down" in implausibility(mf.load("S6/sitting_2"))


def test_forward_kinematics_keeps_bone_lengths():
    rng = np.random.default_rng(0)
    T = 7
    R = rot_z(rng.uniform(-3, 3, (T, 17))) @ rot_y(rng.uniform(-3, 3, (T, 17))) @ rot_x(rng.uniform(-3, 3, (T, 17)))
    joints = forward_kinematics(R, rng.normal(size=(T, 3)) * 1000)
    want = np.linalg.norm(REST_OFFSETS_MM[1:], axis=1)
    np.testing.assert_allclose(bone_lengths(joints), np.broadcast_to(want, (T, 16)), rtol=1e-9)


@pytest.mark.parametrize("action", [a for a in PROCEDURAL_ACTIONS if a != "dive"])
def test_procedural_ground_motion_is_plausible(action):
    m = procedural_motion(action, np.random.default_rng(1), fps=25, duration_s=4.0)
    j = m.joints.astype(np.float64)
    assert j.shape == (101, 17, 3) and m.fps == 25 and m.action == action
    # Constant, Human3.6M-like bone lengths (thigh 443 mm, shin 454 mm, ...).
    bl = bone_lengths(j)
    assert bl.std(axis=0).max() < 0.01
    np.testing.assert_allclose(bl[0], np.linalg.norm(REST_OFFSETS_MM[1:], axis=1), rtol=1e-5)
    # Feet on the floor: the lower ankle is at ankle height, except in flight.
    low = j[:, [3, 6], 2].min(axis=1)
    assert low.min() == pytest.approx(ANKLE_HEIGHT_MM, abs=1e-3)
    on_floor = np.isclose(low, ANKLE_HEIGHT_MM, atol=1e-3).mean()
    assert on_floor > (0.45 if action in ("run", "jump") else 0.99)
    # Upright: head above thorax above pelvis.
    assert (j[:, 10, 2] > j[:, 8, 2]).all() and (j[:, 8, 2] > j[:, 0, 2]).all()
    assert implausibility(m) is None


def test_procedural_walk_travels_at_walking_speed_and_run_faster():
    def speed(action, path):
        m = procedural_motion(action, np.random.default_rng(3), fps=25, duration_s=6.0, path=path)
        step = np.linalg.norm(np.diff(m.joints[:, 0, :2], axis=0), axis=1)
        return step.sum() / m.duration_s, np.linalg.norm(m.joints[-1, 0, :2] - m.joints[0, 0, :2])
    walk_speed, walk_net = speed("walk", "straight")
    run_speed, _ = speed("run", "straight")
    assert 800 < walk_speed < 2000 and 2500 < run_speed < 5000
    assert walk_net > 0.9 * walk_speed * 6.0                 # straight: net travel ≈ path length
    _, circle_net = speed("walk", "circle")
    assert circle_net < 6000                                 # circle: stays within a few metres


def test_procedural_is_seeded():
    a = procedural_motion("walk", np.random.default_rng(5), 10, 2.0)
    b = procedural_motion("walk", np.random.default_rng(5), 10, 2.0)
    c = procedural_motion("walk", np.random.default_rng(6), 10, 2.0)
    np.testing.assert_array_equal(a.joints, b.joints)
    assert np.abs(a.joints - c.joints).max() > 10


def test_procedural_dive_somersaults_about_its_centre():
    m = procedural_motion("dive", np.random.default_rng(2), fps=50, duration_s=1.2)
    j = m.joints.astype(np.float64)
    np.testing.assert_allclose(j.mean(axis=1), 0, atol=1e-3)      # centred on the joint centroid
    assert bone_lengths(j).std(axis=0).max() < 0.01
    np.testing.assert_allclose(j[..., 1].std(), j[0, :, 1].std(), rtol=0.2)  # rotation about y: y unchanged-ish
    # Body axis (pelvis → thorax) turns forward through 0.5 + k turns: head first at the end.
    axis = j[:, 8] - j[:, 0]
    angle = np.unwrap(np.arctan2(axis[:, 0], axis[:, 2]))
    turns = (angle[-1] - angle[0]) / (2 * np.pi)
    assert turns > 0.4 and abs(turns - (np.round(turns - 0.5) + 0.5)) < 0.2
    assert j[0, 10, 2] > j[0, 0, 2] and j[-1, 10, 2] < j[-1, 0, 2]


def test_unknown_procedural_action():
    with pytest.raises(MotionError, match="choose one of walk, run"):
        procedural_motion("cartwheel", np.random.default_rng(0), 10, 1.0)
    assert GRAVITY_MM_S2 == 9810.0
