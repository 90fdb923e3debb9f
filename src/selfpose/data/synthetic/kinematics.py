"""Forward kinematics on a Human3.6M-like rest skeleton, and the joint-angle body model on top of it."""

from __future__ import annotations

import numpy as np

from selfpose.geometry.skeleton import H36M17


def _dir(x: float, y: float, z: float, length: float) -> tuple[float, float, float]:
    v = np.array([x, y, z], dtype=np.float64)
    return tuple(v / np.linalg.norm(v) * length)


# Body frame: x forward, y to the body's left, z up (right-handed).
# Bone lengths are the medians of the Human3.6M training mocap
# (../shared/data/mocap/h36m17_train_S1-S8_25fps.npz, measured once; that
# release uses one skeleton for all subjects). Rest directions of the torso,
# neck, head and shoulder bones are the medians of its walking/directions
# takes in the pelvis's heading frame; limbs hang straight down at rest.
REST_OFFSETS_MM = np.array([
    (0.0, 0.0, 0.0),                    # 0 pelvis (root)
    (0.0, -132.9, 0.0),                 # 1 right hip
    (0.0, 0.0, -442.9),                 # 2 right knee
    (0.0, 0.0, -454.2),                 # 3 right ankle
    (0.0, 132.9, 0.0),                  # 4 left hip
    (0.0, 0.0, -442.9),                 # 5 left knee
    (0.0, 0.0, -454.2),                 # 6 left ankle
    _dir(-32.0, 0.0, 230.0, 233.5),     # 7 spine
    _dir(12.0, 0.0, 254.0, 257.1),      # 8 thorax
    _dir(83.0, 0.0, 82.0, 121.1),       # 9 neck/nose
    _dir(-43.0, 0.0, 102.0, 115.0),     # 10 head top
    _dir(-12.0, 136.0, -60.0, 151.0),   # 11 left shoulder
    (0.0, 0.0, -278.9),                 # 12 left elbow
    (0.0, 0.0, -251.7),                 # 13 left wrist
    _dir(-12.0, -136.0, -60.0, 151.0),  # 14 right shoulder
    (0.0, 0.0, -278.9),                 # 15 right elbow
    (0.0, 0.0, -251.7),                 # 16 right wrist
])
"""Offset of each joint from its parent in the rest pose, mm, body frame."""

#: Height of the ankle joint above the floor when the foot is flat, mm
#: (the Human3.6M walking takes' median lowest ankle height is ~31 mm).
ANKLE_HEIGHT_MM = 40.0

_PARENTS = H36M17.parents
_L_HIP, _L_KNEE, _R_HIP, _R_KNEE = 4, 5, 1, 2
_SPINE, _THORAX, _NECK = 7, 8, 9
_L_SHO, _L_ELB, _R_SHO, _R_ELB = 11, 12, 14, 15
#: The two ankle joints (right, left).
ANKLE_JOINTS = (3, 6)


def rot_x(a: np.ndarray) -> np.ndarray:
    """``(..., 3, 3)`` rotations by angles ``a`` (radians) about x."""
    a = np.asarray(a, dtype=np.float64)
    c, s, o, z = np.cos(a), np.sin(a), np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


def rot_y(a: np.ndarray) -> np.ndarray:
    """``(..., 3, 3)`` rotations by angles ``a`` (radians) about y."""
    a = np.asarray(a, dtype=np.float64)
    c, s, o, z = np.cos(a), np.sin(a), np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def rot_z(a: np.ndarray) -> np.ndarray:
    """``(..., 3, 3)`` rotations by angles ``a`` (radians) about z."""
    a = np.asarray(a, dtype=np.float64)
    c, s, o, z = np.cos(a), np.sin(a), np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


def forward_kinematics(local_R: np.ndarray, root_mm: np.ndarray,
                       offsets_mm: np.ndarray = REST_OFFSETS_MM) -> np.ndarray:
    """Joint positions from per-joint local rotations.

    Args:
        local_R: ``(T, 17, 3, 3)``; ``local_R[:, j]`` rotates the bones leaving
            joint ``j`` (the pelvis's is the body's global orientation).
        root_mm: ``(T, 3)`` pelvis positions, mm.
        offsets_mm: ``(17, 3)`` rest offsets from each joint's parent, mm.

    Returns:
        ``(T, 17, 3)`` float64 positions, mm. Bone lengths equal the offsets'
        norms in every frame.
    """
    T = local_R.shape[0]
    glob = np.empty_like(local_R)
    pos = np.empty((T, len(_PARENTS), 3))
    for j, p in enumerate(_PARENTS):  # parents precede children in H36M17
        if p < 0:
            glob[:, j] = local_R[:, j]
            pos[:, j] = root_mm
        else:
            glob[:, j] = glob[:, p] @ local_R[:, j]
            pos[:, j] = pos[:, p] + glob[:, p] @ offsets_mm[j]
    return pos


class JointAngles:
    """Joint angles (radians, ``(T,)`` each) of the simple procedural body model.

    Conventions, body frame x forward / y left / z up: ``*_flex`` swings a
    hanging limb (or the torso, for ``lean``) forward; knee flexion bends the
    shin backward; ``*_abd`` raises an arm or leg sideways, away from the body;
    ``elbow_*_abd`` bends the forearm further outward in the body's frontal
    plane (waving).
    """

    NAMES = ("yaw", "pitch", "roll", "lean", "twist", "nod",
             "hip_l_flex", "hip_r_flex", "hip_l_abd", "hip_r_abd", "knee_l", "knee_r",
             "sho_l_flex", "sho_r_flex", "sho_l_abd", "sho_r_abd",
             "elb_l", "elb_r", "elb_l_abd", "elb_r_abd")

    def __init__(self, T: int):
        self.T = T
        for n in self.NAMES:
            setattr(self, n, np.zeros(T))
        # Arms hang slightly away from the body at rest.
        self.sho_l_abd = np.full(T, np.radians(8.0))
        self.sho_r_abd = np.full(T, np.radians(8.0))

    def local_rotations(self) -> np.ndarray:
        T = self.T
        R = np.broadcast_to(np.eye(3), (T, 17, 3, 3)).copy()
        R[:, 0] = rot_z(self.yaw) @ rot_y(self.pitch) @ rot_x(self.roll)
        R[:, _SPINE] = rot_y(self.lean * 0.6) @ rot_z(self.twist * 0.5)
        R[:, _THORAX] = rot_y(self.lean * 0.4) @ rot_z(self.twist * 0.5)
        R[:, _NECK] = rot_y(self.nod)
        for side, hip, knee, sho, elb in ((1.0, _L_HIP, _L_KNEE, _L_SHO, _L_ELB),
                                          (-1.0, _R_HIP, _R_KNEE, _R_SHO, _R_ELB)):
            s = "l" if side > 0 else "r"
            R[:, hip] = rot_y(-getattr(self, f"hip_{s}_flex")) @ rot_x(side * getattr(self, f"hip_{s}_abd"))
            R[:, knee] = rot_y(getattr(self, f"knee_{s}"))
            R[:, sho] = rot_y(-getattr(self, f"sho_{s}_flex")) @ rot_x(side * getattr(self, f"sho_{s}_abd"))
            R[:, elb] = rot_x(side * getattr(self, f"elb_{s}_abd")) @ rot_y(-getattr(self, f"elb_{s}"))
        return R

    def joints(self, root_mm: np.ndarray | None = None) -> np.ndarray:
        root = np.zeros((self.T, 3)) if root_mm is None else root_mm
        return forward_kinematics(self.local_rotations(), root)
