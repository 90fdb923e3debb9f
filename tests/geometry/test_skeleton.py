"""Skeleton definitions and the mappings to Human3.6M-17, checked on real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from selfpose.geometry.skeleton import (H36M17, H36M_LEFT, H36M_RIGHT, SKELETONS, bone_lengths, to_h36m)

# (left, right) house bone pairs, named by their child joint.
LIMB_PAIRS = [("left_hip", "right_hip"), ("left_knee", "right_knee"), ("left_ankle", "right_ankle"),
              ("left_shoulder", "right_shoulder"), ("left_elbow", "right_elbow"), ("left_wrist", "right_wrist")]


def bone_index(child: str) -> int:
    """Index into :func:`bone_lengths`' output of the bone ending at ``child``."""
    j = H36M17.index(child)
    return [c for _, c in H36M17.bones].index(j)


def facing(j: np.ndarray) -> np.ndarray:
    """Unit forward direction ``(..., 3)`` of house-order joints in a right-handed frame.

    With left = l_hip − r_hip and up = thorax − pelvis, a person's forward
    is left × up (facing +y with z up: (−x) × z = +y).
    """
    f = np.cross(j[..., 4, :] - j[..., 1, :], j[..., 8, :] - j[..., 0, :])
    return f / np.linalg.norm(f, axis=-1, keepdims=True)


def knee_forwardness(j: np.ndarray) -> np.ndarray:
    """How far the knees sit in front of the hip-ankle lines, ``(...)``: positive for a human."""
    f = facing(j)
    out = 0.0
    for hip, knee, ankle in ((1, 2, 3), (4, 5, 6)):
        out = out + ((j[..., knee, :] - (j[..., hip, :] + j[..., ankle, :]) / 2) * f).sum(-1)
    return out


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real data file {path} not found")
    return path


# -- definitions ---------------------------------------------------------------

@pytest.mark.parametrize("skel", list(SKELETONS.values()), ids=list(SKELETONS))
def test_every_skeleton_is_a_tree(skel):
    assert len(skel.parents) == skel.num_joints == len(set(skel.joint_names))
    roots = [j for j, p in enumerate(skel.parents) if p < 0]
    assert len(roots) == 1
    for j in range(skel.num_joints):  # every joint reaches the root without a cycle
        seen, k = set(), j
        while skel.parents[k] >= 0:
            assert k not in seen, f"{skel.name}: cycle through {skel.joint_names[k]}"
            seen.add(k)
            k = skel.parents[k]
        assert k == roots[0]
    assert len(skel.bones) == skel.num_joints - 1


@pytest.mark.parametrize("skel", list(SKELETONS.values()), ids=list(SKELETONS))
def test_flip_pairs_swap_left_and_right_names(skel):
    def side(name: str) -> tuple[str, str]:
        """(side, rest) of 'left_knee' or 'mouth_left'."""
        parts = name.split("_")
        for i in (0, -1):
            if parts[i] in ("left", "right"):
                return parts[i], "_".join(parts[:i] + parts[i + 1:] if i == 0 else parts[:i])
        raise AssertionError(f"{skel.name}: flip-pair joint {name!r} has no side")

    for a, b in skel.flip_pairs:
        (sa, ra), (sb, rb) = side(skel.joint_names[a]), side(skel.joint_names[b])
        # Pair order is free (flip_permutation swaps both ways).
        assert {sa, sb} == {"left", "right"} and ra == rb, (skel.joint_names[a], skel.joint_names[b])
    perm = skel.flip_permutation()
    np.testing.assert_array_equal(perm[perm], np.arange(skel.num_joints))
    # Every left/right joint has a partner.
    sided = [n for n in skel.joint_names if "left" in n.split("_") or "right" in n.split("_")]
    assert len(sided) == 2 * len(skel.flip_pairs)


def test_h36m_tree_is_rooted_at_pelvis_with_parents_first():
    assert H36M17.joint_names[0] == "pelvis" and H36M17.parents[0] == -1
    assert all(p < j for j, p in enumerate(H36M17.parents) if p >= 0)
    assert all(H36M17.joint_names[j].startswith("left") for j in H36M_LEFT)
    assert all(H36M17.joint_names[j].startswith("right") for j in H36M_RIGHT)


@pytest.mark.parametrize("name", list(SKELETONS))
def test_to_h36m_keeps_names_where_a_joint_is_copied(name):
    src = SKELETONS[name]
    X = np.random.default_rng(0).normal(size=(2, src.num_joints, 3))
    out, valid = to_h36m(X, name)
    assert out.shape == (2, 17, 3) and valid.shape == (17,)
    assert np.isfinite(out[..., valid, :]).all() and np.isnan(out[..., ~valid, :]).all()
    # A house joint copied from a source joint of the same name is that joint.
    for j, house in enumerate(H36M17.joint_names):
        if house in src.joint_names and house not in ("head",):
            np.testing.assert_array_equal(out[..., j, :], X[..., src.index(house), :])
    # 2D works as well as 3D.
    assert to_h36m(X[..., :2], name)[0].shape == (2, 17, 2)


def test_to_h36m_identity_and_errors():
    X = np.random.default_rng(1).normal(size=(5, 17, 3))
    out, valid = to_h36m(X, H36M17)
    np.testing.assert_array_equal(out, X)
    assert valid.all()
    with pytest.raises(ValueError, match="15 joints"):
        to_h36m(X, "humaneva15")
    with pytest.raises(KeyError, match="known"):
        to_h36m(X, "openpose25")


def test_bone_lengths_of_a_known_pose():
    X = np.zeros((17, 3))
    X[1] = [100.0, 0, 0]  # right hip 100 mm from the pelvis
    X[2] = [100.0, 400, 0]  # right knee 400 mm below it
    lengths = bone_lengths(X)
    assert lengths.shape == (16,)
    assert lengths[bone_index("right_hip")] == pytest.approx(100.0)
    assert lengths[bone_index("right_knee")] == pytest.approx(400.0)


# -- real data: the mappings give human-shaped house skeletons ----------------------

def check_human_shape(j: np.ndarray, lr_tol: float) -> None:
    """Assert ``(N, 17, 3)`` house-order joints (mm) look like people."""
    lengths = np.median(bone_lengths(j).reshape(-1, 16), axis=0)
    for left, right in LIMB_PAIRS:
        a, b = lengths[bone_index(left)], lengths[bone_index(right)]
        # Thorax→shoulder "bones" join markers, not bones: HumanEva's differ by
        # up to 20% between sides in every subject. Limbs must match closely.
        tol = max(lr_tol, 0.25) if left == "left_shoulder" else lr_tol
        assert abs(a - b) <= tol * max(a, b), f"{left} {a:.0f} mm vs {right} {b:.0f} mm"
    thigh, shin = lengths[bone_index("right_knee")], lengths[bone_index("right_ankle")]
    upper, fore = lengths[bone_index("right_elbow")], lengths[bone_index("right_wrist")]
    assert 300 < thigh < 650 and 300 < shin < 650, (thigh, shin)
    assert 200 < upper < 450 and 150 < fore < 400, (upper, fore)
    # Limbs hang from the right places: hips near the pelvis, shoulders near the thorax.
    assert np.median(np.linalg.norm(j[:, 4] - j[:, 0], axis=-1)) < 250
    assert np.median(np.linalg.norm(j[:, 11] - j[:, 8], axis=-1)) < 250


def test_h36m_fixture_is_human_shaped(shared_data):
    d = np.load(need(shared_data / "fixtures/h36m/test_h36m_body3d.npz"))
    j = d["S"][..., :3] * 1000.0
    check_human_shape(j, lr_tol=0.02)
    # Camera frame, y down: the head is above (smaller y than) the pelvis.
    assert (j[:, 10, 1] < j[:, 0, 1] - 300).all()
    assert (knee_forwardness(j) > 0).all()


def test_mpi_inf_3dhp_mapping_on_real_frames(shared_data):
    for split in ("test", "train"):
        d = np.load(need(shared_data / f"fixtures/mpi_inf_3dhp/test_3dhp_{split}.npz"))
        assert d["S"].shape[1:] == (17, 4)
        j, valid = to_h36m(d["S"][..., :3] * 1000.0, "mpi_inf_3dhp17")
        assert valid.all()
        check_human_shape(j, lr_tol=0.2)
        # Head top above neck above pelvis along the body axis (camera y down
        # for the upright test subjects, along thorax − pelvis for everyone).
        up = j[:, 8] - j[:, 0]
        assert ((j[:, 10] - j[:, 8]) * up).sum(-1).min() > 0
        assert ((j[:, 9] - j[:, 8]) * up).sum(-1).min() > 0
        if split == "test":
            assert (j[:, 10, 1] < j[:, 0, 1] - 500).all()
            assert (j[:, 9, 1] < j[:, 8, 1]).all()
    # Left/right are not swapped: in TS1_002001.jpg the subject faces the
    # camera (checked by eye; the right arm is raised on the image's left).
    d = np.load(need(shared_data / "fixtures/mpi_inf_3dhp/test_3dhp_test.npz"))
    assert str(d["imgname"][0]).startswith("TS1")
    j, _ = to_h36m(d["S"][:1, :, :3] * 1000.0, "mpi_inf_3dhp17")
    assert facing(j)[0, 2] < -0.7  # towards the camera: −z
    assert j[0, 1, 0] < j[0, 4, 0]  # the right hip is on the image's left


def test_humaneva_mapping_on_real_motion(shared_data):
    d = np.load(need(shared_data / "fixtures/humaneva/data_3d_humaneva15.npz"), allow_pickle=True)["positions_3d"].item()
    # The source's head joint lies *below* the thorax in every frame of S3's
    # "Walking 1" chunks 0 and 2 (and most of chunk 4): a data defect, left
    # out of the shape checks.
    world = np.concatenate([a for s, subject in d.items() for action, a in subject.items()
                            if not (s.endswith("S3") and action.startswith("Walking"))]) * 1000.0
    assert world.shape[1:] == (15, 3) and len(world) > 8000
    j, valid = to_h36m(world, "humaneva15")
    assert valid.all() and np.isfinite(j).all()
    check_human_shape(j, lr_tol=0.1)
    # World z up: the head is well above the pelvis, and along the body axis
    # the derived spine and neck/nose lie between pelvis, thorax and head.
    assert np.median(j[:, 10, 2] - j[:, 0, 2]) > 500
    up = j[:, 8] - j[:, 0]
    assert (((j[:, 7] - j[:, 0]) * up).sum(-1) > 0).all()
    assert (((j[:, 9] - j[:, 8]) * up).sum(-1) > 0).all()
    # Chirality: with correct left/right labels the knees point forward.
    assert np.median(knee_forwardness(j)) > 0
