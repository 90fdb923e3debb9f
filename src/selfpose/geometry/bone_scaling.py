"""Seeded bone-length augmentation: scale bones along the kinematic tree.

Real people differ in proportions; motion made on one shared skeleton (the
Human3.6M mocap here) never shows a lifter a new body. :func:`scale_bones`
rescales each bone vector and carries the children along, so the root (the
pelvis) and every bone's direction are kept; :func:`random_bone_scales` draws
one factor per bone group, left and right sharing one (bodies are roughly
symmetric).
"""

from __future__ import annotations

import numpy as np

from selfpose.geometry.skeleton import H36M17, Skeleton

#: H36M17 bone groups, each named after its child joints (left and right share a factor).
H36M17_BONE_GROUPS: dict[str, tuple[int, ...]] = {
    "hip": (1, 4), "thigh": (2, 5), "shin": (3, 6), "spine": (7,), "thorax": (8,), "neck": (9,),
    "head": (10,), "shoulder": (11, 14), "upper_arm": (12, 15), "forearm": (13, 16),
}
#: Largest allowed standard deviation: factors are clipped to 1 ± 3·std and must stay positive.
MAX_BONE_SCALE_STD = 0.25


def random_bone_scales(rng: np.random.Generator, std: float,
                       groups: dict[str, tuple[int, ...]] = H36M17_BONE_GROUPS) -> dict[str, float]:
    """One factor per group, ``1 + std·N(0, 1)`` clipped to ``1 ± 3·std`` (std ≤ 0.25 keeps it > 0.25)."""
    if not 0 <= std <= MAX_BONE_SCALE_STD:
        raise ValueError(f"bone scale std must be in [0, {MAX_BONE_SCALE_STD}], got {std}")
    z = np.clip(rng.standard_normal(len(groups)), -3.0, 3.0)
    return {name: float(1.0 + std * zi) for name, zi in zip(groups, z)}


def joint_scales(factors: dict[str, float], groups: dict[str, tuple[int, ...]] = H36M17_BONE_GROUPS,
                 num_joints: int = 17) -> np.ndarray:
    """``(J,)`` factor of the bone ending at each joint (1 for the root and ungrouped joints)."""
    s = np.ones(num_joints)
    for name, joints in groups.items():
        s[list(joints)] = factors.get(name, 1.0)
    return s


def scale_bones(joints: np.ndarray, scales: np.ndarray, skeleton: Skeleton = H36M17) -> np.ndarray:
    """Scale every bone of ``(..., J, 3)`` joints by ``scales[child]``; children follow their parents.

    Args:
        joints: ``(..., J, 3)`` any unit, any frame.
        scales: ``(J,)`` factor of the bone from ``parents[j]`` to ``j`` (the root's is ignored), or
            ``(..., J)`` one set per pose (e.g. per frame).

    Returns:
        ``(..., J, 3)`` float64: the root is unchanged and each bone keeps its
        direction, its length times its factor.
    """
    X = np.asarray(joints, dtype=np.float64)
    scales = np.asarray(scales, dtype=np.float64)[..., None]   # (..., J, 1): broadcasts over the coordinates
    out = X.copy()
    order = sorted(range(skeleton.num_joints), key=lambda j: _depth(skeleton.parents, j))
    for j in order:
        p = skeleton.parents[j]
        if p >= 0:
            out[..., j, :] = out[..., p, :] + scales[..., j, :] * (X[..., j, :] - X[..., p, :])
    return out


def _depth(parents: tuple[int, ...], j: int) -> int:
    d = 0
    while parents[j] >= 0:
        j, d = parents[j], d + 1
    return d
