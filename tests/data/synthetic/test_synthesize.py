import json

import numpy as np
import pytest

import selfpose
from selfpose.config import ConfigError, from_dict
from selfpose.data.store import Dataset
from selfpose.data.synthetic.kinematics import forward_kinematics
from selfpose.data.synthetic.motion import MotionError
from selfpose.data.synthetic.synthesize import SynthConfig, synthesize
from selfpose.errors import OutputError


def _cfg(**kw) -> SynthConfig:
    base = {"height": 48, "width": 48, "max_seconds": 1.0, "fps": 5, "batch_size": 4}
    return from_dict(SynthConfig, {**base, **kw})


@pytest.fixture
def mocap(tmp_path):
    """A tiny mocap npz with subjects S1 and S5 (rest pose walking along x), fps in a sibling json."""
    rest = forward_kinematics(np.broadcast_to(np.eye(3), (1, 17, 3, 3)).copy(), np.array([[0, 0, 950.0]]))[0]
    walk = lambda T: (rest[None] + (np.arange(T) * 40.0)[:, None, None] * np.array([1.0, 0, 0])).astype(np.float32)  # noqa: E731
    path = tmp_path / "mocap.npz"
    np.savez_compressed(path, **{"S1/walking_1": walk(50), "S5/walking_1": walk(40), "S7/walking_1": walk(30)})
    path.with_suffix(".json").write_text(json.dumps({"fps": 25}))
    return path


def test_lab_dataset_from_mocap_subjects(tmp_path, mocap):
    cfg = _cfg(scenario="lab", motion=str(mocap), subjects=["S1", "S5"], seed=3)
    ds = Dataset.open(synthesize(cfg, tmp_path / "lab", progress=False))
    assert len(ds) == 8 and ds.subjects() == ["S1", "S5"] and ds.views() == ["cam0", "cam1", "cam2", "cam3"]
    a = ds.attrs
    assert (a["scenario"], a["seed"], a["motion_source"], a["selfpose_version"]) == ("lab", 3, str(mocap),
                                                                                    selfpose.__version__)
    assert a["config"]["subjects"] == ["S1", "S5"] and a["num_frames"] == ds.num_frames == 8 * 6
    for take, views in ds.takes().items():
        assert len(views) == 4
        ids = [v["frame_ids"][:].tolist() for v in views]
        assert all(i == ids[0] for i in ids) and ids[0] == list(range(6))
    rec = ds.sequences[0]
    assert rec.meta.fps == 5 and rec.meta.scenario == "lab" and rec.meta.camera is not None
    for name in ("frames", "masks", "boxes", "joints2d", "joints2d_conf", "joints3d", "frame_ids", "true_background"):
        assert rec.has(name), name
    np.testing.assert_allclose(rec["joints2d"][:], rec.meta.camera.project(rec["joints3d"][:].astype(float)),
                               atol=1e-3)
    # Every view of one camera has the same background; different cameras differ.
    bg = {r.meta.view: r["true_background"][:] for r in ds.sequences}
    same_cam = [r for r in ds.sequences if r.meta.view == "cam0"]
    np.testing.assert_array_equal(same_cam[0]["true_background"][:], same_cam[1]["true_background"][:])
    assert not np.array_equal(bg["cam0"], bg["cam1"])


def test_same_config_gives_identical_arrays_and_seed_changes_people(tmp_path):
    cfg = _cfg(scenario="wild", max_sequences=2, seed=0)
    a = Dataset.open(synthesize(cfg, tmp_path / "a", progress=False))
    b = Dataset.open(synthesize(cfg, tmp_path / "b", progress=False))
    c = Dataset.open(synthesize(_cfg(scenario="wild", max_sequences=2, seed=1), tmp_path / "c", progress=False))
    assert [r.id for r in a] == [r.id for r in b] == [r.id for r in c]
    for ra, rb in zip(a, b):
        for name in ra.arrays:
            np.testing.assert_array_equal(ra[name][:], rb[name][:])
    for ra, rc in zip(a, c):
        # Same motion, new person (identity), new camera and background.
        assert ra.meta.attrs["motion"] == rc.meta.attrs["motion"]
        assert ra.meta.attrs["identity"] != rc.meta.attrs["identity"]
        assert not np.array_equal(ra["frames"][0], rc["frames"][0])
        assert not np.allclose(ra["joints3d"][:], rc["joints3d"][:])


def test_shipped_cmu_subjects_get_round_robin_identities(tmp_path):
    cfg = _cfg(scenario="wild", subjects=["test"], num_subjects=2, max_sequences=3)
    ds = Dataset.open(synthesize(cfg, tmp_path / "w", progress=False))
    assert [r.meta.subject for r in ds] == ["P0", "P1", "P0"]
    assert ds.attrs["motion_source"] == "shipped:cmu_h36m17approx_30fps"
    assert all(r.meta.attrs["motion"].startswith("test/") for r in ds)


def test_dive_dataset(tmp_path):
    cfg = from_dict(SynthConfig, {"scenario": "dive", "num_sequences": 2, "height": 48, "width": 48})
    ds = Dataset.open(synthesize(cfg, tmp_path / "d", progress=False))
    assert len(ds) == 2 and ds.attrs["fps"] == 50 and all(r.meta.fps == 50 for r in ds)
    assert ds.attrs["motion_source"] == "procedural" and ds.actions() == ["dive"]
    for r in ds:
        cy = r["boxes"][:, [1, 3]].mean(axis=1)
        assert cy[-1] > cy[0] + 10


def test_pan_dataset_has_per_frame_cameras_and_backgrounds(tmp_path):
    cfg = _cfg(scenario="pan", motion="procedural", num_sequences=2, max_seconds=3.0)
    ds = Dataset.open(synthesize(cfg, tmp_path / "p", progress=False))
    assert ds.actions() == ["run", "walk"]
    for r in ds:
        T = len(r)
        assert r["camera_R"].shape == (T, 3, 3) and r["camera_t"].shape == (T, 3)
        assert r["true_backgrounds"].shape == (T, 48, 48, 3) and not r.has("true_background")
        assert not np.allclose(r["camera_R"][0], r["camera_R"][-1])


def test_procedural_lab_cycles_actions(tmp_path):
    cfg = _cfg(scenario="lab", motion="procedural", num_sequences=3, views=2, actions=["wave", "squat"])
    ds = Dataset.open(synthesize(cfg, tmp_path / "l", progress=False))
    assert len(ds) == 6 and ds.actions() == ["squat", "wave"] and ds.views() == ["cam0", "cam1"]


def test_unknown_subject_is_a_clear_error_and_leaves_no_folder(tmp_path, mocap):
    with pytest.raises(MotionError, match="'S9'.*available prefixes: S1, S5, S7"):
        synthesize(_cfg(motion=str(mocap), subjects=["S9"]), tmp_path / "x", progress=False)
    assert not (tmp_path / "x").exists()


def test_existing_output_needs_overwrite(tmp_path):
    (tmp_path / "ds").mkdir()
    with pytest.raises(OutputError, match="overwrite"):
        synthesize(_cfg(scenario="dive", num_sequences=1), tmp_path / "ds", progress=False)


def test_per_take_lab_cameras_identities_and_headings_stay_in_their_ranges(tmp_path, mocap):
    """Issue 14's benchmark data: per-take camera geometry, several looks per motion subject, random headings."""
    from selfpose.data.synthetic import scenarios as sc

    lo, hi = 0.4, 0.6
    cfg = _cfg(scenario="lab", motion=str(mocap), subjects=["S1", "S5", "S7"], lab_cameras="per_take",
               lab_fill=[lo, hi], identities_per_subject=2, random_heading=True, seed=2)
    ds = Dataset.open(synthesize(cfg, tmp_path / "lab", progress=False))
    eyes, fovs = {}, []
    for r in ds.sequences:
        cam = r.meta.camera
        eye = -cam.R.T @ cam.t
        assert sc.TAKE_HEIGHTS_MM[0] - 1 <= eye[2] <= sc.TAKE_HEIGHTS_MM[1] + 1
        fov = np.degrees(2 * np.arctan(cam.height / 2 / cam.fy))
        assert sc.TAKE_FOVS_DEG[0] - 1e-6 <= fov <= sc.TAKE_FOVS_DEG[1] + 1e-6
        fovs.append(fov)
        eyes[(r.meta.take, r.meta.view)] = eye
    # the same view name is another camera in another take
    takes = sorted({t for t, _ in eyes})
    assert not np.allclose(eyes[(takes[0], "cam0")], eyes[(takes[1], "cam0")])
    assert np.ptp(fovs) > 5
    # every view of a take shows one identity; identities never cross subjects
    looks = {}
    for take, views in ds.takes().items():
        ids = {v.meta.attrs["identity"] for v in views}
        assert len(ids) == 1
        looks[take] = ids.pop()
    assert all(look.startswith(take.split("__")[0] + "~") for take, look in looks.items())
    # the pelvis is not pinned to the frame centre: per-view aim offsets
    centres = [np.median(r["joints2d"][:, 0, 0]) / r.meta.width for r in ds.sequences]
    assert np.ptp(centres) > 0.05


def test_identities_per_subject_cycle_through_a_subjects_takes(tmp_path):
    import json as _json

    from selfpose.data.synthetic.kinematics import forward_kinematics as fk

    rest = fk(np.broadcast_to(np.eye(3), (1, 17, 3, 3)).copy(), np.array([[0, 0, 950.0]]))[0]
    walk = (rest[None] + (np.arange(10) * 30.0)[:, None, None] * np.array([1.0, 0, 0])).astype(np.float32)
    path = tmp_path / "m.npz"
    np.savez_compressed(path, **{f"S1/walk_{i}": walk for i in range(5)})
    path.with_suffix(".json").write_text(_json.dumps({"fps": 25}))
    cfg = _cfg(scenario="lab", motion=str(path), identities_per_subject=3, views=1)
    ds = Dataset.open(synthesize(cfg, tmp_path / "lab", progress=False))
    looks = [r.meta.attrs["identity"].split("#")[0] for r in sorted(ds.sequences, key=lambda r: r.meta.take)]
    assert looks == ["S1~0", "S1~1", "S1~2", "S1~0", "S1~1"] and ds.subjects() == ["S1"]


def test_segments_cut_each_motion_into_takes_of_their_own(tmp_path, mocap):
    from selfpose.data.synthetic.synthesize import segment_bounds

    # pieces of 4 frames (0.6 s at 5 fps); a tail shorter than half a piece is dropped
    assert segment_bounds(10, 4) == [(0, 4), (4, 4), (8, 2)] and segment_bounds(9, 4) == [(0, 4), (4, 4)]
    assert segment_bounds(3, 4) == [(0, 3)]
    base = dict(scenario="lab", motion=str(mocap), subjects=["S1"], views=2, max_seconds=0.6, lab_cameras="per_take",
                identities_per_subject=4)
    whole = Dataset.open(synthesize(_cfg(**base), tmp_path / "whole", progress=False))
    cut = Dataset.open(synthesize(_cfg(**base, segments=True), tmp_path / "cut", progress=False))
    # S1/walking_1: 50 frames at 25 fps -> 10 at 5 fps -> pieces of 4, 4 and 2 frames
    takes = sorted({r.meta.take for r in cut.sequences})
    assert takes == ["S1__walking_1_part0", "S1__walking_1_part1", "S1__walking_1_part2"]
    assert [len(r["joints3d"]) for r in sorted(cut.sequences, key=lambda r: r.meta.take)
            if r.meta.view == "cam0"] == [4, 4, 2]
    assert {r.meta.take for r in whole.sequences} == {"S1__walking_1"} and whole.num_frames == 2 * 4
    # each piece is a take of its own: its own look and its own cameras
    looks = {r.meta.take: r.meta.attrs["identity"].split("#")[0] for r in cut.sequences}
    assert len(set(looks.values())) == 3
    cams = {r.meta.take: (round(r.meta.camera.fx, 3), round(float(r.meta.camera.t[2]), 1))
            for r in cut.sequences if r.meta.view == "cam0"}
    assert len(set(cams.values())) == 3


@pytest.mark.parametrize("data, message", [
    ({"scenario": "lab", "motion": "procedural", "segments": True}, "segments=true"),
    ({"scenario": "lab", "motion": "x.npz", "segments": True, "max_seconds": None}, "segments=true"),
    ({"scenario": "pan", "views": 2}, "only the lab scenario"),
    ({"scenario": "dive", "motion": "x.npz"}, "procedural dives"),
    ({"scenario": "lab", "motion": "procedural", "actions": ["dive"]}, "not available for lab"),
    ({"scenario": "beach"}, "must be one of"),
    ({"sead": 1}, "did you mean seed"),
    ({"fps": 0}, "fps must be positive"),
    ({"lab_fill": [0.6, 0.4]}, "lab_fill"),
    ({"lab_cameras": "moving"}, "lab_cameras"),
    ({"identities_per_subject": 0}, "identities_per_subject"),
    ({"light": "sun"}, "light must be one of"),
    ({"workers": 0}, "workers must be an integer >= 1"),
])
def test_config_is_strict(data, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(SynthConfig, data)


def test_room_light_changes_only_the_shading(tmp_path):
    """`light: room` renders the same people, cameras and labels; only the pixels on the person differ."""
    a = Dataset.open(synthesize(_cfg(scenario="lab", max_sequences=1), tmp_path / "a", progress=False))
    b = Dataset.open(synthesize(_cfg(scenario="lab", max_sequences=1, light="room"), tmp_path / "b", progress=False))
    assert a.attrs["config"].get("light", "camera") == "camera" and b.attrs["config"]["light"] == "room"
    changed = []
    for ra, rb in zip(a, b):
        for name in ("joints2d", "joints3d", "masks", "boxes"):
            np.testing.assert_array_equal(ra[name][:], rb[name][:])
        fa, fb, m = ra["frames"][:], rb["frames"][:], ra["masks"][:] == 1
        np.testing.assert_array_equal(fa[~m], fb[~m])          # the background is not lit
        changed.append((fa[m] != fb[m]).any(-1).mean())
    # the four cameras see one room light from four sides: on some the person looks different
    assert max(changed) > 0.5, changed


def test_workers_store_the_same_dataset(tmp_path, mocap):
    """Rendered by two spawned processes (static and moving cameras): every array, background estimates
    included, equals the single-process render's, in the same order."""
    for kw in ({"scenario": "lab", "motion": str(mocap), "subjects": ["S1", "S5", "S7"]},
               {"scenario": "pan", "max_sequences": 2}):
        name = kw["scenario"]
        a = Dataset.open(synthesize(_cfg(**kw), tmp_path / f"{name}_one", progress=False))
        b = Dataset.open(synthesize(_cfg(workers=2, **kw), tmp_path / f"{name}_two", progress=False))
        assert [r.id for r in a] == [r.id for r in b] and len(a) >= 2
        assert a.num_frames == b.num_frames and b.attrs["config"]["workers"] == 2
        for ra, rb in zip(a, b):
            assert sorted(ra.arrays) == sorted(rb.arrays) and ({"background", "backgrounds"} & set(ra.arrays))
            for arr in ra.arrays:
                np.testing.assert_array_equal(ra[arr][:], rb[arr][:], err_msg=f"{ra.id}: {arr}")


def test_workers_render_from_a_script_read_on_stdin(tmp_path):
    """`python - <<EOF` has no script file for a spawned worker to re-run: the render still finishes (it
    respawned dying workers for ever before)."""
    import subprocess
    import sys

    script = ("from selfpose.config import from_dict\n"
              "from selfpose.data.synthetic.synthesize import SynthConfig, synthesize\n"
              "cfg = from_dict(SynthConfig, {'height': 48, 'width': 48, 'max_seconds': 1.0, 'fps': 5, 'batch_size': 4,"
              " 'scenario': 'wild', 'max_sequences': 2, 'workers': 2})\n"
              f"synthesize(cfg, {str(tmp_path / 'd')!r}, progress=False)\n")
    done = subprocess.run([sys.executable, "-"], input=script, text=True, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(Dataset.open(tmp_path / "d")) == 2


def test_config_defaults_resolve_by_scenario():
    assert SynthConfig().resolved_fps == 10 and SynthConfig().resolved_views == 4
    dive = SynthConfig(scenario="dive")
    assert dive.resolved_fps == 50 and dive.resolved_views == 1 and dive.procedural


def test_lab_from_real_h36m_subject(tmp_path, shared_data):
    path = shared_data / "mocap" / "h36m17_train_S1-S8_25fps.npz"
    if not path.is_file():
        pytest.skip(f"real mocap {path} not found")
    cfg = from_dict(SynthConfig, {"motion": str(path), "subjects": ["S1"], "max_seconds": 5, "height": 64,
                                  "width": 64})
    ds = Dataset.open(synthesize(cfg, tmp_path / "s1", progress=False))
    assert len(ds) == 120 and ds.subjects() == ["S1"]
    fill = np.concatenate([(r["boxes"][:, 3] - r["boxes"][:, 1]) / 64 for r in ds])
    assert np.median(fill) > 0.2 and fill.max() <= 0.62
