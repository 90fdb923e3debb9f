"""Checks shared by the preparer tests: house order, units and reprojection of a prepared sequence.

Tests get them through the ``checks`` fixture (pytest runs in importlib mode,
so test modules cannot import sibling helper modules).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from selfpose.geometry.skeleton import H36M17, bone_lengths


def body_forward(j: np.ndarray) -> np.ndarray:
    """``(N, 3)`` unit vectors the body faces, from house-order ``(N, 17, 3)`` joints.

    ``up × right`` with up = thorax − pelvis and right = right hip − left hip:
    swapping left and right flips it.
    """
    f = np.cross(j[:, 8] - j[:, 0], j[:, 1] - j[:, 4])
    return f / np.linalg.norm(f, axis=-1, keepdims=True)


def nose_ahead_mm(j: np.ndarray) -> np.ndarray:
    """How far the neck/nose joint is in front of the thorax, mm (positive unless left/right are swapped)."""
    return np.einsum("nc,nc->n", j[:, 9] - j[:, 8], body_forward(j))


def knee_ahead_mm(j: np.ndarray) -> np.ndarray:
    """``(N, 2)`` how far each knee is in front of its hip–ankle midpoint, mm (knees bend forward)."""
    f = body_forward(j)
    r = np.einsum("nc,nc->n", j[:, 2] - (j[:, 1] + j[:, 3]) / 2, f)
    left = np.einsum("nc,nc->n", j[:, 5] - (j[:, 4] + j[:, 6]) / 2, f)
    return np.stack([r, left], axis=1)


def check_limbs_mm(j: np.ndarray, lr_tol: float = 0.15) -> None:
    """Limb lengths of an adult in millimetres, left ≈ right."""
    L = np.median(bone_lengths(np.asarray(j, np.float64)), axis=0)
    bone = {c: i for i, (_, c) in enumerate(H36M17.bones)}
    for right, left, lo, hi in ((2, 5, 300, 600), (3, 6, 300, 600), (15, 12, 200, 450), (16, 13, 150, 400)):
        a, b = L[bone[right]], L[bone[left]]
        assert lo < a < hi and lo < b < hi, (H36M17.joint_names[right], a, b)
        assert abs(a - b) <= lr_tol * max(a, b), (H36M17.joint_names[right], a, b)


def reprojection_px(rec) -> np.ndarray:
    """``(T, 17)`` distance between the stored 2D and the stored 3D projected with the stored camera."""
    cam = rec.meta.camera
    return np.linalg.norm(cam.project(np.asarray(rec["joints3d"], np.float64)) - rec["joints2d"], axis=-1)


@pytest.fixture()
def checks() -> SimpleNamespace:
    """The helpers above, for the preparer tests."""
    return SimpleNamespace(body_forward=body_forward, nose_ahead_mm=nose_ahead_mm, knee_ahead_mm=knee_ahead_mm,
                           check_limbs_mm=check_limbs_mm, reprojection_px=reprojection_px)
