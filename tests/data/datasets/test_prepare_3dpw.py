"""3DPW fixture (mmhuman3d npz with SMPL parameters + one image) → store; SMPL forward kinematics."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from selfpose.data.datasets import PrepareConfig, PrepareError, PrepareWarning, prepare
from selfpose.data.datasets.pw3d import APPROX_REST_MM, SmplJoints, smpl_forward_kinematics
from selfpose.data.store import Dataset
from selfpose.geometry.skeleton import SMPL24


@pytest.fixture(scope="module")
def source(shared_data):
    return shared_data / "fixtures" / "3dpw"


def test_forward_kinematics_rest_rotation_and_bone_lengths():
    rng = np.random.default_rng(0)
    zero = smpl_forward_kinematics(np.zeros((1, 24, 3)), APPROX_REST_MM)[0]
    np.testing.assert_allclose(zero, APPROX_REST_MM - APPROX_REST_MM[0], atol=1e-9)
    # A global rotation only rotates the whole body about the pelvis.
    g = Rotation.from_rotvec([0.3, -2.0, 0.5])
    rv = np.zeros((1, 24, 3))
    rv[0, 0] = g.as_rotvec()
    np.testing.assert_allclose(smpl_forward_kinematics(rv, APPROX_REST_MM)[0], g.apply(zero), atol=1e-9)
    # Any pose keeps every bone's length; bending the left knee moves only the left shin and foot.
    rv = rng.normal(0, 0.6, (5, 24, 3))
    posed = smpl_forward_kinematics(rv, APPROX_REST_MM)
    bones = [(p, c) for c, p in enumerate(SMPL24.parents) if p >= 0]
    for p, c in bones:
        np.testing.assert_allclose(np.linalg.norm(posed[:, c] - posed[:, p], axis=-1),
                                   np.linalg.norm(APPROX_REST_MM[c] - APPROX_REST_MM[p]), rtol=1e-9)
    knee = np.zeros((1, 24, 3))
    knee[0, 4] = [1.2, 0, 0]
    moved = np.abs(smpl_forward_kinematics(knee, APPROX_REST_MM)[0] - zero).max(axis=1) > 1e-6
    assert np.flatnonzero(moved).tolist() == [7, 10]


def test_approximate_rest_skeleton_is_an_adult():
    r = APPROX_REST_MM
    assert r[1, 0] > 0 > r[2, 0]  # SMPL: the left hip is at +x
    assert 1300 < r[15, 1] - r[7, 1] < 1700  # ankle to head joint
    assert 1200 < np.linalg.norm(r[22] - r[23]) < 1800  # T-pose hand span


def test_prepare_fixture_approximate(source, tmp_path, checks):
    with pytest.warns(PrepareWarning, match="not found under"):  # the test sample's image is not in the fixture
        ds = Dataset.open(prepare("3dpw", source, tmp_path / "ds", PrepareConfig(size=96), progress=False))
    assert len(ds) == 1 and ds.attrs["num_skipped_images"] == 1
    assert ds.attrs["joints3d_model"] == "approximate"
    rec = ds.sequences[0]
    assert rec.id == "courtyard_rangeOfMotions_00__p0" and rec["frame_ids"].tolist() == [311]
    assert rec.meta.camera is None and not rec.has("joints2d") and rec.meta.fps == 30.0
    assert rec["frames"].shape == (1, 96, 96, 3) and rec["joints3d"].shape == (1, 17, 3)
    assert rec.meta.attrs["gender"] == "f" and "translation unknown" in rec.meta.attrs["joints3d_frame"]
    assert rec.meta.attrs["joints3d_root_relative"] is True
    j = np.asarray(rec["joints3d"], np.float64)
    np.testing.assert_allclose(j[0, 0], 0, atol=1e-6)  # pelvis-centred
    checks.check_limbs_mm(j, lr_tol=0.02)
    # Camera orientation, y down: the head is above the pelvis; the subject faces the camera
    # (checked by eye), so her left hip and left wrist are on the image's right (+x).
    assert j[0, 10, 1] < -400
    assert checks.body_forward(j)[0, 2] < -0.5
    assert j[0, 4, 0] > j[0, 1, 0] and j[0, 13, 0] > j[0, 16, 0]
    assert (checks.knee_ahead_mm(j) > 0).all()
    # The box comes from bbox_xywh, moved into the letterboxed 96 px frame (1080×1920 → 54×96).
    x0, y0 = (79.5563 + 0.5) * 0.05 - 0.5 + 21, (593.9235 + 0.5) * 0.05 - 0.5
    np.testing.assert_allclose(rec["boxes"][0, [0, 1]], [x0, y0], atol=0.01)


def fake_smpl(path, rest_m: np.ndarray, with_shape: bool):
    """An SMPL-like model whose 'mesh' is its 24 joints: J_regressor = I."""
    sd = np.zeros((24, 3, 10))
    if with_shape:
        sd[:, 1, 0] = rest_m[:, 1] * 0.1  # beta 0 stretches the body vertically by 10 % per unit
    kintree = np.array([[2**32 - 1] + list(SMPL24.parents[1:]), list(range(24))], dtype=np.int64)
    model = {"v_template": rest_m, "shapedirs": sd, "J_regressor": np.eye(24), "kintree_table": kintree}
    if path.suffix == ".npz":
        np.savez(path, **model)
    else:
        with open(path, "wb") as fh:
            pickle.dump(model, fh)
    return path


def test_smpl_model_gives_exact_joints(tmp_path):
    rest_m = APPROX_REST_MM / 1000.0 + np.array([0.0, 0.9, 0.0])
    model = SmplJoints(fake_smpl(tmp_path / "smpl.npz", rest_m, with_shape=True))
    betas = np.zeros((2, 10))
    betas[1, 0] = 1.0
    rest = model.rest(betas)
    np.testing.assert_allclose(rest[0], rest_m * 1000, atol=1e-9)
    np.testing.assert_allclose(rest[1, :, 1], rest_m[:, 1] * 1100, atol=1e-9)
    assert SmplJoints(fake_smpl(tmp_path / "smpl.pkl", rest_m, False)).template_mm.shape == (24, 3)


def test_prepare_with_smpl_model(source, tmp_path):
    rest_m = APPROX_REST_MM / 1000.0
    model = fake_smpl(tmp_path / "smpl.npz", rest_m, with_shape=False)
    with pytest.warns(PrepareWarning):
        approx = Dataset.open(prepare("3dpw", source, tmp_path / "a", progress=False))
    with pytest.warns(PrepareWarning):
        exact = Dataset.open(prepare("3dpw", source, tmp_path / "b", PrepareConfig(smpl_model=str(model)),
                                     progress=False))
    assert exact.attrs["joints3d_model"] == "smpl"
    # Same rest skeleton, no shape directions: the exact path reproduces the approximate one.
    np.testing.assert_allclose(exact.sequences[0]["joints3d"], approx.sequences[0]["joints3d"], atol=1e-3)
    with pytest.raises(PrepareError, match="not found"):
        prepare("3dpw", source, tmp_path / "c", PrepareConfig(smpl_model=str(tmp_path / "nope.npz")), progress=False)
    bad = tmp_path / "bad.npz"
    np.savez(bad, v_template=np.zeros((10, 3)))
    with pytest.raises(PrepareError, match="lacks shapedirs, J_regressor"):
        prepare("3dpw", source, tmp_path / "d", PrepareConfig(smpl_model=str(bad)), progress=False)


def test_all_images_missing_is_an_error(source, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "sample_3dpw_train.npz").write_bytes((source / "sample_3dpw_train.npz").read_bytes())
    with pytest.raises(PrepareError, match="none of the 1 annotated images was found"):
        prepare("3dpw", src, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()
