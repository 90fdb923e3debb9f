"""Skeleton definitions and conversions to the house skeleton (Human3.6M-17).

Every array of joints in selfpose is in the Human3.6M-17 order defined here
unless its name says otherwise. Other datasets' skeletons are converted with
:func:`to_h36m`, which returns the converted joints and a validity mask: a
house joint that the source skeleton lacks and that cannot be derived from
its neighbours is NaN and marked invalid rather than invented.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Skeleton:
    """A named kinematic tree.

    ``parents[j]`` is the index of joint ``j``'s parent (-1 for the root);
    ``flip_pairs`` are the (left, right) joint index pairs swapped by a
    horizontal flip.
    """

    name: str
    joint_names: tuple[str, ...]
    parents: tuple[int, ...]
    flip_pairs: tuple[tuple[int, int], ...] = ()

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def bones(self) -> tuple[tuple[int, int], ...]:
        """(parent, child) index pairs, one per non-root joint."""
        return tuple((p, j) for j, p in enumerate(self.parents) if p >= 0)

    def index(self, name: str) -> int:
        try:
            return self.joint_names.index(name)
        except ValueError:
            raise KeyError(f"skeleton {self.name!r} has no joint {name!r}; joints: {', '.join(self.joint_names)}") from None

    def flip_permutation(self) -> np.ndarray:
        """Index permutation that swaps left and right joints."""
        perm = np.arange(self.num_joints)
        for a, b in self.flip_pairs:
            perm[a], perm[b] = b, a
        return perm


H36M17 = Skeleton(
    name="h36m17",
    joint_names=(
        "pelvis", "right_hip", "right_knee", "right_ankle",
        "left_hip", "left_knee", "left_ankle",
        "spine", "thorax", "neck_nose", "head",
        "left_shoulder", "left_elbow", "left_wrist",
        "right_shoulder", "right_elbow", "right_wrist",
    ),
    parents=(-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15),
    flip_pairs=((1, 4), (2, 5), (3, 6), (11, 14), (12, 15), (13, 16)),
)
"""The house skeleton. Joint 9 is the neck/nose joint of the Human3.6M
release, joint 10 the top of the head."""

#: Indices of joints that are reliable across datasets and detectors; used by
#: robust alignment and by the pose-machine's correction stopping rule.
H36M_ROBUST = (0, 1, 4, 11, 14)
H36M_LEFT = (4, 5, 6, 11, 12, 13)
H36M_RIGHT = (1, 2, 3, 14, 15, 16)

# MPI-INF-3DHP, 17-joint test/“univ” order used by the released test set and
# by mmpose's sample files.
MPI_INF_3DHP17 = Skeleton(
    name="mpi_inf_3dhp17",
    joint_names=(
        "head_top", "neck", "right_shoulder", "right_elbow", "right_wrist",
        "left_shoulder", "left_elbow", "left_wrist", "right_hip", "right_knee",
        "right_ankle", "left_hip", "left_knee", "left_ankle", "pelvis", "spine", "head",
    ),
    parents=(1, 15, 1, 2, 3, 1, 5, 6, 14, 8, 9, 14, 11, 12, -1, 14, 1),
    flip_pairs=((2, 5), (3, 6), (4, 7), (8, 11), (9, 12), (10, 13)),
)

HUMANEVA15 = Skeleton(
    name="humaneva15",
    joint_names=(
        "pelvis", "thorax", "left_shoulder", "left_elbow", "left_wrist",
        "right_shoulder", "right_elbow", "right_wrist", "left_hip", "left_knee",
        "left_ankle", "right_hip", "right_knee", "right_ankle", "head",
    ),
    parents=(-1, 0, 1, 2, 3, 1, 5, 6, 0, 8, 9, 0, 11, 12, 1),
    flip_pairs=((2, 5), (3, 6), (4, 7), (8, 11), (9, 12), (10, 13)),
)

SMPL24 = Skeleton(
    name="smpl24",
    joint_names=(
        "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee",
        "spine2", "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot",
        "neck", "left_collar", "right_collar", "head", "left_shoulder", "right_shoulder",
        "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hand", "right_hand",
    ),
    parents=(-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21),
    flip_pairs=((1, 2), (4, 5), (7, 8), (10, 11), (13, 14), (16, 17), (18, 19), (20, 21), (22, 23)),
)

COCO17 = Skeleton(
    name="coco17",
    joint_names=(
        "nose", "left_eye", "right_eye", "left_ear", "right_ear",
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
        "left_wrist", "right_wrist", "left_hip", "right_hip",
        "left_knee", "right_knee", "left_ankle", "right_ankle",
    ),
    parents=(-1, 0, 0, 1, 2, 0, 0, 5, 6, 7, 8, 5, 6, 11, 12, 13, 14),
    flip_pairs=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
)

_MP_NAMES = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner",
    "right_eye", "right_eye_outer", "left_ear", "right_ear", "mouth_left",
    "mouth_right", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index",
    "right_index", "left_thumb", "right_thumb", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel",
    "right_heel", "left_foot_index", "right_foot_index",
)
MEDIAPIPE33 = Skeleton(
    name="mediapipe33",
    joint_names=_MP_NAMES,
    parents=(-1, 0, 1, 2, 0, 4, 5, 3, 6, 0, 0, 0, 0, 11, 12, 13, 14, 15, 16, 15, 16, 15, 16,
             11, 12, 23, 24, 25, 26, 27, 28, 27, 28),
    flip_pairs=(
        (1, 4), (2, 5), (3, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16), (17, 18),
        (19, 20), (21, 22), (23, 24), (25, 26), (27, 28), (29, 30), (31, 32)),
)

SKELETONS: dict[str, Skeleton] = {
    s.name: s for s in (H36M17, MPI_INF_3DHP17, HUMANEVA15, SMPL24, COCO17, MEDIAPIPE33)
}

# A house joint is either copied from one source joint (an int), averaged from
# several (a tuple, e.g. the pelvis of COCO is the mid-hip), or missing (None).

_TO_H36M: dict[str, tuple] = {
    "h36m17": tuple(range(17)),
    "mpi_inf_3dhp17": (14, 8, 9, 10, 11, 12, 13, 15, 1, 16, 0, 5, 6, 7, 2, 3, 4),
    # HumanEva has no spine or neck/nose joint: the spine is the pelvis-thorax
    # midpoint, and the neck/nose lies between thorax and head.
    "humaneva15": (0, 11, 12, 13, 8, 9, 10, (0, 1), 1, (1, 14), 14, 2, 3, 4, 5, 6, 7),
    # SMPL's joints sit inside the body where H36M's markers are on landmarks;
    # the correspondence is the usual approximate one (head top is missing).
    "smpl24": (0, 2, 5, 8, 1, 4, 7, (3, 6), (9, 12), 12, 15, 16, 18, 20, 17, 19, 21),
    # 2D detectors: hips and shoulders give pelvis, thorax and spine; the nose
    # stands in for neck/nose and the ears' midpoint for the head.
    "coco17": ((11, 12), 12, 14, 16, 11, 13, 15, (11, 12, 5, 6), (5, 6), 0, (3, 4), 5, 7, 9, 6, 8, 10),
    "mediapipe33": ((23, 24), 24, 26, 28, 23, 25, 27, (23, 24, 11, 12), (11, 12), 0, (7, 8),
                    11, 13, 15, 12, 14, 16),
}


def to_h36m(joints: np.ndarray, source: str | Skeleton) -> tuple[np.ndarray, np.ndarray]:
    """Convert joints of another skeleton to Human3.6M-17.

    Args:
        joints: ``(..., J_src, D)`` joint coordinates (any unit, any D: 2D
            pixels or 3D millimetres alike).
        source: the source skeleton or its name (a key of :data:`SKELETONS`).

    Returns:
        ``(joints17, valid)``: ``(..., 17, D)`` float array in the house order
        and a ``(17,)`` bool array, False for joints the source cannot provide
        (those are NaN).
    """
    name = source.name if isinstance(source, Skeleton) else source
    if name not in _TO_H36M:
        raise KeyError(f"no mapping from skeleton {name!r} to h36m17; known: {', '.join(sorted(_TO_H36M))}")
    src = SKELETONS[name]
    joints = np.asarray(joints, dtype=np.float64)
    if joints.shape[-2] != src.num_joints:
        raise ValueError(f"{name} joints must have {src.num_joints} joints on axis -2, got shape {joints.shape}")
    out = np.full(joints.shape[:-2] + (17, joints.shape[-1]), np.nan)
    valid = np.zeros(17, dtype=bool)
    for j, rule in enumerate(_TO_H36M[name]):
        if rule is None:
            continue
        idx = (rule,) if isinstance(rule, int) else rule
        out[..., j, :] = joints[..., list(idx), :].mean(axis=-2)
        valid[j] = True
    return out, valid


def bone_lengths(joints: np.ndarray, skeleton: Skeleton = H36M17) -> np.ndarray:
    """Bone lengths ``(..., J-1)`` of ``(..., J, D)`` joints, in the joints' unit."""
    p = np.array([b[0] for b in skeleton.bones])
    c = np.array([b[1] for b in skeleton.bones])
    return np.linalg.norm(joints[..., c, :] - joints[..., p, :], axis=-1)
