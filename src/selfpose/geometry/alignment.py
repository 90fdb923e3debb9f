"""Aligning one pose to another: root-centring, optimal scale, Procrustes.

These are the alignments behind MPJPE, N-MPJPE and P-MPJPE (see
:mod:`selfpose.evaluation.metrics`) and behind scale-free losses. Every
function takes joints of shape ``(..., J, 3)`` (any batch shape, any unit —
millimetres in selfpose) as torch tensors or numpy arrays and returns the same
kind it was given. Alignments are computed per sample, i.e. per leading index.

Numerics: float32 inputs are aligned in float64 and cast back (the 3×3 SVD of
Procrustes loses digits in float32), and degenerate poses (all joints at one
point) give finite results instead of NaN. Gradients flow through
:func:`scale_align`; through :func:`procrustes_align` they are only as stable
as ``torch.linalg.svd``'s (undefined for repeated singular values).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

# Procrustes centres the prediction on its mean; for a pose collapsed to a
# point that leaves rounding residue ~1e-16 of the coordinates, not zeros.
# Below this fraction of the uncentred squared norm the centred pose counts as
# collapsed. Relative, so that alignment stays invariant to rescaling the
# prediction whatever its unit.
_COLLAPSED = 1e-24


class PoseShapeError(ValueError):
    """Joint arrays do not have the shapes an alignment or metric needs."""


def _to_tensor(x) -> tuple[torch.Tensor, bool]:
    """``(tensor, was_numpy)``; numpy arrays, lists and integer tensors become float64 tensors."""
    if isinstance(x, torch.Tensor):
        return (x if x.is_floating_point() else x.double()), False
    return torch.as_tensor(np.asarray(x, dtype=np.float64)), True


def _back(x: torch.Tensor, was_numpy: bool):
    return x.detach().cpu().numpy() if was_numpy else x


def check_joints(joints: torch.Tensor, name: str = "joints", dim: int = 3) -> None:
    """Raise :class:`PoseShapeError` unless ``joints`` is ``(..., J, dim)`` with J ≥ 1."""
    if joints.ndim < 2 or joints.shape[-1] != dim or joints.shape[-2] < 1:
        raise PoseShapeError(f"{name} must have shape (..., J, {dim}) (joints on axis -2, "
                             f"coordinates on axis -1), got {tuple(joints.shape)}")


def check_pair(pred: torch.Tensor, target: torch.Tensor, dim: int = 3) -> None:
    """Raise :class:`PoseShapeError` unless ``pred`` and ``target`` are matching ``(..., J, dim)``."""
    check_joints(pred, "pred", dim)
    check_joints(target, "target", dim)
    if pred.shape != target.shape:
        raise PoseShapeError(f"pred and target must have the same shape, got {tuple(pred.shape)} and "
                             f"{tuple(target.shape)}; convert both to the same skeleton (e.g. with "
                             "selfpose.geometry.skeleton.to_h36m) and batch shape first")


def _pose_pair(pred, target, root) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Tensors of a checked ``(pred, target)`` pair, root-centred unless ``root`` is None,
    and whether ``pred`` came as numpy (to convert results back)."""
    p, was_np = _to_tensor(pred)
    t, _ = _to_tensor(target)
    check_pair(p, t)
    t = t.to(p)
    if root is not None:
        p, t = _root_center(p, root), _root_center(t, root)
    return p, t, was_np


def _root_center(joints: torch.Tensor, root: int | Sequence[int]) -> torch.Tensor:
    idx = [root] if isinstance(root, (int, np.integer)) else list(root)
    J = joints.shape[-2]
    if not idx or any(not -J <= i < J for i in idx):
        raise PoseShapeError(f"root joint(s) {root!r} out of range for {J} joints")
    return joints - joints[..., idx, :].mean(dim=-2, keepdim=True)


def root_center(joints, root: int | Sequence[int] = 0):
    """Joints relative to the root joint: ``joints - joints[..., root, :]``.

    Args:
        joints: ``(..., J, D)`` joints (tensor or array).
        root: index of the root joint (0 = pelvis in Human3.6M-17), or several
            indices whose mean is the root (e.g. both hips).

    Returns:
        ``(..., J, D)`` root-relative joints, same kind as ``joints``.
    """
    x, was_np = _to_tensor(joints)
    if x.ndim < 2:
        raise PoseShapeError(f"joints must have shape (..., J, D), got {tuple(x.shape)}")
    return _back(_root_center(x, root), was_np)


def _scale(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Least-squares ``s`` minimising ``‖s·pred − target‖²`` over the flattened joints, ``(...)``."""
    num = (pred * target).sum(dim=(-2, -1))
    den = (pred * pred).sum(dim=(-2, -1))
    return _safe_ratio(num, den, torch.zeros_like(den))


def _safe_ratio(num: torch.Tensor, den: torch.Tensor, floor: torch.Tensor) -> torch.Tensor:
    """``num / den``, and 0 where ``den <= floor`` (a collapsed pose carries no scale).

    ``torch.where`` on a safe denominator keeps the value and the gradient
    finite (zero) there, instead of 0/0.
    """
    ok = den > floor
    return torch.where(ok, num / torch.where(ok, den, torch.ones_like(den)), torch.zeros_like(num))


def scale_align(pred, target, root: int | Sequence[int] | None = 0, return_scale: bool = False):
    """Scale the prediction to best fit the target (the alignment of N-MPJPE).

    Both poses are root-centred (unless ``root`` is None: they are then used
    as given), and the prediction is multiplied by the per-sample optimal
    scale ``s* = ⟨p̂, p⟩ / ⟨p̂, p̂⟩`` over the flattened ``(J·3)`` coordinates
    (Rhodin et al., CVPR 2018), which minimises ``‖s·p̂ − p‖²``.

    Args:
        pred: ``(..., J, 3)`` predicted joints (e.g. mm).
        target: ``(..., J, 3)`` ground-truth joints, same unit.
        root: root joint index/indices for centring, or None for none.
        return_scale: also return ``s*``.

    Returns:
        ``aligned`` — ``(..., J, 3)`` the scaled root-centred prediction, to be
        compared with the root-centred target — and, if ``return_scale``, the
        ``(...)`` scales. Same kind (tensor/array) as ``pred``.
    """
    p, t, was_np = _pose_pair(pred, target, root)
    s = _scale(p, t)
    aligned = p * s[..., None, None]
    return (_back(aligned, was_np), _back(s, was_np)) if return_scale else _back(aligned, was_np)


def procrustes_align(pred, target, return_transform: bool = False):
    """Best similarity transform of the prediction onto the target (P-MPJPE).

    Finds per sample the rotation ``R`` (a proper rotation: reflections are
    excluded), uniform scale ``s`` and translation ``t`` minimising
    ``Σ_j ‖s R p̂_j + t − p_j‖²`` (Umeyama 1991, via the SVD of the 3×3
    cross-covariance). Root-centring is irrelevant here: ``t`` absorbs it.

    Args:
        pred: ``(..., J, 3)`` predicted joints (e.g. mm).
        target: ``(..., J, 3)`` ground-truth joints, same unit.
        return_transform: also return ``(R, s, t)``.

    Returns:
        ``aligned`` — ``(..., J, 3)`` ``s R p̂_j + t`` — and, if
        ``return_transform``, ``R`` ``(..., 3, 3)``, ``s`` ``(...)`` and
        ``t`` ``(..., 3)`` (target's unit). Same kind as ``pred``. A
        collapsed prediction (all joints at one point) maps to the target's
        centroid with ``s = 0``.
    """
    p, was_np = _to_tensor(pred)
    t, _ = _to_tensor(target)
    check_pair(p, t)
    dtype = p.dtype
    # The SVD of a near-rank-deficient 3×3 loses digits in float32.
    work = torch.float64 if dtype in (torch.float32, torch.float16, torch.bfloat16) else dtype
    p64, t64 = p.to(work), t.to(device=p.device, dtype=work)

    mu_p, mu_t = p64.mean(dim=-2, keepdim=True), t64.mean(dim=-2, keepdim=True)
    X, Y = p64 - mu_p, t64 - mu_t
    # With row-vector joints, X @ Q (Q = U D Vᵀ from svd(Xᵀ Y)) best rotates X onto Y.
    U, S, Vh = torch.linalg.svd(X.transpose(-1, -2) @ Y)
    # Reflection fix: flip the least significant axis when det(U Vᵀ) = −1.
    d = torch.sign(torch.linalg.det(U @ Vh))
    d = torch.where(d == 0, torch.ones_like(d), d)
    D = torch.ones_like(S)
    D[..., -1] = d
    Q = (U * D[..., None, :]) @ Vh
    s = _safe_ratio((S * D).sum(dim=-1), (X * X).sum(dim=(-2, -1)), _COLLAPSED * (p64 * p64).sum(dim=(-2, -1)))
    aligned = s[..., None, None] * (X @ Q) + mu_t
    aligned = aligned.to(dtype)
    if not return_transform:
        return _back(aligned, was_np)
    R = Q.transpose(-1, -2)  # column-vector convention: s R p̂_j + t
    trans = mu_t[..., 0, :] - s[..., None] * (R @ mu_p[..., 0, :, None])[..., 0]
    return (_back(aligned, was_np), _back(R.to(dtype), was_np), _back(s.to(dtype), was_np),
            _back(trans.to(dtype), was_np))
