"""Synthetic identities, retargeting and body primitives."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from selfpose.data.synthetic.bodies import (CANONICAL_BONE_LENGTHS_MM, PATTERNS, BodyError, Identity,
                                            body_primitives, identity_for, rest_pose, retarget, sample_identity,
                                            with_side_marks)
from selfpose.geometry.skeleton import H36M17, bone_lengths

ANKLES = [H36M17.index("right_ankle"), H36M17.index("left_ankle")]


def _wavy_motion(T: int = 40, seed: int = 0) -> np.ndarray:
    """A (T, 17, 3) world-mm motion: the rest pose with swinging limbs, walking along x."""
    rng = np.random.default_rng(seed)
    base = rest_pose()
    out = np.repeat(base[None], T, axis=0)
    phase = np.linspace(0, 4 * np.pi, T)
    for c in (2, 3, 5, 6, 12, 13, 15, 16):
        out[:, c, 1] += 80 * np.sin(phase + c) + rng.normal(0, 5, T)
    out[:, :, 0] += np.linspace(0, 1500, T)[:, None]
    return out


def test_identity_for_is_deterministic_and_seed_sensitive():
    a, b = identity_for("S1", 3), identity_for("S1", 3)
    assert a == b
    c, d = identity_for("S1", 4), identity_for("S2", 3)
    assert c != a and d != a
    assert c.top != a.top and c.height_mm != a.height_mm


def test_sampled_identities_are_diverse_and_valid():
    rng = np.random.default_rng(0)
    ids = [sample_identity(rng, f"p{i}") for i in range(200)]
    heights = np.array([i.height_mm for i in ids])
    assert heights.min() >= 1500 and heights.max() <= 1950 and heights.std() > 50
    skins = np.array([i.skin for i in ids])
    assert np.ptp(skins.mean(1)) > 0.4  # light to dark skin
    assert {i.top_pattern for i in ids} == set(PATTERNS) == {i.bottom_pattern for i in ids}
    thigh = np.array([i.thigh_radius_mm for i in ids])
    assert thigh.max() / thigh.min() > 1.4  # slim to broad
    assert all(np.linalg.norm(np.subtract(i.top, i.bottom)) > 0.2 for i in ids)
    for i in ids:
        assert all(0.0 <= v <= 1.0 for c in (i.skin, i.top, i.bottom, i.shoe, i.hair) for v in c)


def test_identity_round_trips_through_json():
    import json

    ident = identity_for("S1", 7)
    assert Identity.from_dict(json.loads(json.dumps(ident.to_dict()))) == ident
    marked = with_side_marks(ident)
    assert Identity.from_dict(json.loads(json.dumps(marked.to_dict()))) == marked
    with pytest.raises(BodyError, match="side"):
        dataclasses.replace(ident, side=(0.5, 2.0, 0.5))
    with pytest.raises(BodyError, match="unknown identity fields"):
        Identity.from_dict({**ident.to_dict(), "tail": 1})


def test_identity_rejects_bad_values():
    with pytest.raises(BodyError, match="pattern"):
        Identity(name="x", top_pattern="tartan")
    with pytest.raises(BodyError, match="thigh_radius_mm"):
        Identity(name="x", thigh_radius_mm=-1.0)
    with pytest.raises(BodyError, match="skin"):
        Identity(name="x", skin=(0.5, 0.5, 2.0))


def test_bone_lengths_follow_height_and_proportions():
    base = Identity(name="base")
    np.testing.assert_allclose(base.bone_lengths_mm(), CANONICAL_BONE_LENGTHS_MM)
    tall = dataclasses.replace(base, height_mm=1870.0)
    np.testing.assert_allclose(tall.bone_lengths_mm(), CANONICAL_BONE_LENGTHS_MM * 1.1)
    leggy = dataclasses.replace(base, leg_scale=1.1)
    ratio = leggy.bone_lengths_mm() / CANONICAL_BONE_LENGTHS_MM
    assert ratio[1] > 1.03 and ratio[6] < 0.97  # longer legs, shorter spine: same stature
    vertical = [1, 2, 6, 7, 8, 9]
    assert np.isclose(leggy.bone_lengths_mm()[vertical].sum(), CANONICAL_BONE_LENGTHS_MM[vertical].sum())


def test_retarget_keeps_directions_and_sets_lengths():
    src = _wavy_motion()
    ident = dataclasses.replace(identity_for("S9", 1), height_mm=1900.0, leg_scale=1.08)
    out = retarget(src, ident)
    assert out.shape == src.shape
    np.testing.assert_allclose(bone_lengths(out), np.broadcast_to(ident.bone_lengths_mm(), (len(src), 16)),
                               rtol=1e-9)
    for p, c in H36M17.bones:
        u = src[:, c] - src[:, p]
        v = out[:, c] - out[:, p]
        cos = (u * v).sum(-1) / np.linalg.norm(u, axis=-1) / np.linalg.norm(v, axis=-1)
        assert cos.min() > 1 - 1e-9
    # Feet stay on the floor: the lowest ankle is as high as in the source, and
    # ankle heights over time move like the source's (scaled legs, no drift).
    assert np.isclose(out[:, ANKLES, 2].min(), src[:, ANKLES, 2].min())
    assert np.abs(out[:, ANKLES, 2] - src[:, ANKLES, 2]).max() < 60
    # Strides scale with the legs.
    legs = [1, 2, 4, 5]
    ratio = ident.bone_lengths_mm()[legs].sum() / bone_lengths(src)[:, legs].mean(0).sum()
    np.testing.assert_allclose(out[-1, 0, 0] - out[0, 0, 0], ratio * (src[-1, 0, 0] - src[0, 0, 0]))


def test_retarget_real_mocap_keeps_feet_near_floor(shared_data):
    path = shared_data / "mocap" / "h36m17_train_S1-S8_25fps.npz"
    if not path.exists():
        pytest.skip(f"real mocap {path} not found")
    with np.load(path) as npz:
        src = npz["S1/walking_1"][:300].astype(np.float64)
    for name, seed in (("small", 2), ("big", 5)):
        ident = dataclasses.replace(identity_for(name, seed), height_mm=1550.0 if name == "small" else 1930.0)
        out = retarget(src, ident)
        np.testing.assert_allclose(bone_lengths(out)[0], ident.bone_lengths_mm(), rtol=1e-9)
        # Whenever a foot is on the ground in the source, it is near the ground after retargeting.
        foot_src, foot_out = src[:, ANKLES, 2].min(1), out[:, ANKLES, 2].min(1)
        planted = foot_src < np.percentile(foot_src, 30)
        assert np.abs(foot_out[planted] - foot_src[planted]).max() < 40


def test_retarget_rejects_bad_input():
    with pytest.raises(BodyError, match=r"\(T, 17, 3\)"):
        retarget(np.zeros((5, 16, 3)), Identity(name="x"))
    bad = _wavy_motion(3)
    bad[1, 4, 0] = np.nan
    with pytest.raises(BodyError, match="NaN"):
        retarget(bad, Identity(name="x"))


def test_rest_pose_stands_on_the_floor_facing_minus_y():
    ident = identity_for("S1", 0)
    pose = rest_pose(ident)
    np.testing.assert_allclose(bone_lengths(pose), ident.bone_lengths_mm())
    assert np.isclose(pose[ANKLES, 2].min(), 60.0)
    assert pose[H36M17.index("right_hip"), 0] < 0 < pose[H36M17.index("left_hip"), 0]
    assert pose[H36M17.index("neck_nose"), 1] < pose[H36M17.index("thorax"), 1]  # nose points forward


def test_primitives_are_body_aligned():
    ident = identity_for("S1", 0)
    pose = rest_pose(ident)[None]
    prims = body_primitives(pose, ident)
    axes = prims.ell_axes[0]
    np.testing.assert_allclose(axes @ axes.transpose(0, 2, 1), np.broadcast_to(np.eye(3), axes.shape), atol=1e-9)
    np.testing.assert_allclose(axes[:, 2], np.broadcast_to([0, -1, 0], (len(axes), 3)), atol=0.2)  # forward
    head = prims.ell_center[0, prims.head_index]
    assert head[2] > pose[0, H36M17.index("thorax"), 2]
    # Capsule reference directions are unit and perpendicular to their axes.
    axis = prims.cap_b - prims.cap_a
    assert np.abs((axis * prims.cap_ref).sum(-1)).max() < 1e-6
    np.testing.assert_allclose(np.linalg.norm(prims.cap_ref, axis=-1), 1.0)
    # The lowest point of the shoes is close to the floor.
    lowest = (np.minimum(prims.cap_a[0, :, 2], prims.cap_b[0, :, 2]) - prims.cap_radius).min()
    assert -30 < lowest < 30
