"""3D pose metrics: MPJPE, N-MPJPE, P-MPJPE, 3DPCK, AUC, and box IoU.

Conventions (docs/design.md §3):

* Poses are ``(..., J, 3)`` joints in **millimetres**, camera frame, in the
  Human3.6M-17 order; any leading batch shape.
* Both poses are **root-centred** on the pelvis (joint 0) before comparison
  (``root=None`` disables it, for absolute-position errors).
* N-MPJPE scales the root-centred prediction by the per-sample optimal
  ``s* = ⟨p̂, p⟩ / ⟨p̂, p̂⟩``; P-MPJPE aligns it by a per-sample similarity
  Procrustes (rotation, uniform scale, translation).
* ``reduction="mean"`` averages over every sample; ``"none"`` returns one
  value per sample, shape ``(...)``, for aggregation by action or subject.

What holds between them (and is tested): the alignments minimise the *sum of
squared* joint errors, so in root-mean-square terms
``RMS_P ≤ RMS_N ≤ RMS`` for root-centred poses. For the *mean Euclidean*
errors reported here P-MPJPE ≤ N-MPJPE ≤ MPJPE is typical but not
guaranteed (an outlier joint can make the least-squares scale increase the
mean distance).

Every function accepts torch tensors or numpy arrays; torch in → torch out
(so validation can stay on the GPU), numpy in → numpy out (``float`` for
``reduction="mean"``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from selfpose.geometry.alignment import (PoseShapeError, _back, _pose_pair, _to_tensor, check_pair, procrustes_align,
                                         scale_align)

__all__ = ["MetricError", "PCK_JOINTS_3DHP", "AUC_THRESHOLDS_MM", "mpjpe", "n_mpjpe", "p_mpjpe", "pck3d", "auc",
           "evaluate_poses", "box_iou"]

#: House (Human3.6M-17) indices of the 14 joints scored by the official
#: MPI-INF-3DHP PCK/AUC evaluation: head (top), neck (house thorax),
#: shoulders, elbows, wrists, hips, knees and ankles. Pelvis (0, zero after
#: root-centring), spine (7) and neck/nose (9, 3DHP's "head" centre) are left out.
PCK_JOINTS_3DHP: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 8, 10, 11, 12, 13, 14, 15, 16)

#: MPI-INF-3DHP AUC thresholds: 0, 5, …, 150 mm (31 values).
AUC_THRESHOLDS_MM: tuple[float, ...] = tuple(float(x) for x in range(0, 151, 5))

_ALIGNS = ("none", "scale", "procrustes")


class MetricError(ValueError):
    """Bad arguments to a metric (a reduction or alignment name, thresholds, actions)."""


def _prepare(pred, target, root, joints, align: str = "none") -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Check, convert, root-centre, align and select joints; returns ``(pred, target, was_numpy)``."""
    if align not in _ALIGNS:
        raise MetricError(f"align must be one of {_ALIGNS}, got {align!r}")
    # Centre on the full skeleton first: the root may not be an evaluated joint.
    p, t, was_np = _pose_pair(pred, target, root)
    if joints is not None:
        idx = list(joints)
        if not idx or any(not -p.shape[-2] <= i < p.shape[-2] for i in idx):
            raise PoseShapeError(f"joint subset {joints!r} out of range for {p.shape[-2]} joints")
        p, t = p[..., idx, :], t[..., idx, :]
    if align == "scale":
        p = scale_align(p, t, root=None)
    elif align == "procrustes":
        # The SVD fails on NaN/inf (torch's "linalg.svd ... non-finite values"); say which input is bad.
        bad = ~(torch.isfinite(p).flatten(-2).all(-1) & torch.isfinite(t).flatten(-2).all(-1))
        if bad.any():
            raise MetricError(f"P-MPJPE needs finite poses: {int(bad.sum())} of {bad.numel()} samples hold NaN/inf "
                              "(in the prediction or the target); leave those samples out")
        p = procrustes_align(p, t)
    return p, t, was_np


def _reduce(per_sample: torch.Tensor, reduction: str, was_np: bool):
    if reduction == "mean":
        out = per_sample.mean()
        return float(out) if was_np else out
    if reduction == "none":
        return per_sample.detach().cpu().numpy() if was_np else per_sample
    raise MetricError(f"reduction must be 'mean' or 'none', got {reduction!r}")


def _joint_errors(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``(..., J)`` Euclidean joint distances."""
    return torch.linalg.vector_norm(p - t, dim=-1)


def mpjpe(pred, target, reduction: str = "mean", root: int | Sequence[int] | None = 0,
          joints: Sequence[int] | None = None):
    """Mean per-joint position error, mm.

    Args:
        pred, target: ``(..., J, 3)`` joints in mm, camera frame.
        reduction: ``"mean"`` (a scalar over all samples) or ``"none"``
            (``(...)`` per-sample errors).
        root: root joint(s) both poses are centred on (pelvis = 0), or None.
        joints: evaluate only these joints (after centring); None = all.

    Returns:
        The mean over joints of ``‖p̂_j − p_j‖``, in mm.
    """
    p, t, was_np = _prepare(pred, target, root, joints)
    return _reduce(_joint_errors(p, t).mean(dim=-1), reduction, was_np)


def n_mpjpe(pred, target, reduction: str = "mean", root: int | Sequence[int] | None = 0,
            joints: Sequence[int] | None = None):
    """Scale-normalised MPJPE, mm: MPJPE after scaling the root-centred prediction by ``s*``.

    ``s* = ⟨p̂, p⟩ / ⟨p̂, p̂⟩`` per sample, computed on the evaluated joints
    (see :func:`selfpose.geometry.alignment.scale_align`). Invariant to any
    positive scaling of the prediction. Arguments as :func:`mpjpe`.
    """
    p, t, was_np = _prepare(pred, target, root, joints, align="scale")
    return _reduce(_joint_errors(p, t).mean(dim=-1), reduction, was_np)


def p_mpjpe(pred, target, reduction: str = "mean", joints: Sequence[int] | None = None):
    """Procrustes-aligned MPJPE, mm: MPJPE after the per-sample best similarity transform.

    Invariant to any rotation, positive scaling and translation of the
    prediction. Root-centring does not matter here (the translation absorbs
    it). Arguments as :func:`mpjpe`.
    """
    p, t, was_np = _prepare(pred, target, None, joints, align="procrustes")
    return _reduce(_joint_errors(p, t).mean(dim=-1), reduction, was_np)


def pck3d(pred, target, threshold: float = 150.0, reduction: str = "mean",
          joints: Sequence[int] | None = PCK_JOINTS_3DHP, root: int | Sequence[int] | None = 0,
          align: str = "none"):
    """3D percentage of correct keypoints (MPI-INF-3DHP "3DPCK"), in %.

    A joint is correct when its root-centred error is at most ``threshold``
    mm. By default the 14 joints of the official MPI-INF-3DHP evaluation are
    scored (:data:`PCK_JOINTS_3DHP`).

    Args:
        pred, target: ``(..., J, 3)`` joints, mm (Human3.6M-17 order for the
            default ``joints``).
        threshold: distance in mm.
        reduction: ``"mean"`` (% over all samples and joints) or ``"none"``
            (``(...)`` per-sample %).
        joints: evaluated joint indices, or None for all.
        root: root joint(s) for centring, or None.
        align: ``"none"``, ``"scale"`` (NPCK, after the N-MPJPE scale, as in
            Rhodin et al. 2018) or ``"procrustes"``.
    """
    p, t, was_np = _prepare(pred, target, root, joints, align=align)
    correct = (_joint_errors(p, t) <= threshold).to(p.dtype)
    return _reduce(100.0 * correct.mean(dim=-1), reduction, was_np)


def auc(pred, target, thresholds: Sequence[float] = AUC_THRESHOLDS_MM, reduction: str = "mean",
        joints: Sequence[int] | None = PCK_JOINTS_3DHP, root: int | Sequence[int] | None = 0,
        align: str = "none"):
    """Area under the 3DPCK curve (MPI-INF-3DHP), in %: the mean of :func:`pck3d` over ``thresholds``.

    ``thresholds`` are in mm, by default 0, 5, …, 150. Other arguments as
    :func:`pck3d`.
    """
    th = torch.as_tensor(np.sort(np.asarray(thresholds, dtype=np.float64).ravel()))
    if th.numel() == 0:
        raise MetricError("auc needs at least one threshold (mm)")
    p, t, was_np = _prepare(pred, target, root, joints, align=align)
    err = _joint_errors(p, t).contiguous()
    # Thresholds passed by each joint: those ≥ its error (NaN errors pass none).
    passed = th.numel() - torch.searchsorted(th.to(err), err, side="left")
    return _reduce(100.0 * passed.to(p.dtype).mean(dim=-1) / th.numel(), reduction, was_np)


def evaluate_poses(pred, target, actions: Sequence[str] | None = None, pck_threshold: float = 150.0,
                   root: int | Sequence[int] | None = 0) -> dict:
    """All pose metrics, overall and per action.

    Args:
        pred, target: ``(N, J, 3)`` joints, mm, camera frame, Human3.6M-17
            order (PCK/AUC use :data:`PCK_JOINTS_3DHP`; for other skeletons
            they are computed on all joints).
        actions: ``N`` action names, or None for no per-action breakdown.
        pck_threshold: PCK threshold, mm.
        root: root joint(s) for centring.

    Returns:
        ``{"overall": m, "per_action": {action: m}, "action_average": m}``
        where each ``m`` is ``{"mpjpe", "n_mpjpe", "p_mpjpe"}`` (mm),
        ``{"pck", "auc"}`` (%) and ``"count"`` (samples). ``overall`` averages
        over samples; ``action_average`` is the unweighted mean of the
        per-action results (the Human3.6M protocol's "Avg"); the last two
        are empty/absent without ``actions``. Values are Python floats.
    """
    p, _ = _to_tensor(pred)
    t, _ = _to_tensor(target)
    check_pair(p, t)
    if p.ndim != 3:
        raise PoseShapeError(f"evaluate_poses takes (N, J, 3) poses, got {tuple(p.shape)}; "
                             "flatten the batch dimensions first")
    n = p.shape[0]
    if actions is not None and len(actions) != n:
        raise MetricError(f"got {len(actions)} actions for {n} poses; pass one action per pose")
    pck_joints = PCK_JOINTS_3DHP if p.shape[-2] == 17 else None
    with torch.no_grad():
        per = {
            "mpjpe": mpjpe(p, t, "none", root=root),
            "n_mpjpe": n_mpjpe(p, t, "none", root=root),
            "p_mpjpe": p_mpjpe(p, t, "none"),
            "pck": pck3d(p, t, pck_threshold, "none", joints=pck_joints, root=root),
            "auc": auc(p, t, reduction="none", joints=pck_joints, root=root),
        }
    per_np = {k: v.double().cpu().numpy() for k, v in per.items()}

    def summary(mask: np.ndarray | slice) -> dict:
        out = {k: float(v[mask].mean()) if v[mask].size else float("nan") for k, v in per_np.items()}
        out["count"] = int(per_np["mpjpe"][mask].size)
        return out

    result: dict = {"overall": summary(slice(None)), "per_action": {}}
    if actions is not None:
        acts = np.asarray([str(a) for a in actions])
        for a in sorted(set(acts.tolist())):
            result["per_action"][a] = summary(acts == a)
        if result["per_action"]:
            rows = list(result["per_action"].values())
            avg = {k: float(np.mean([r[k] for r in rows])) for k in per_np}
            avg["count"] = n
            result["action_average"] = avg
    return result


def box_iou(pred_boxes, true_boxes):
    """Intersection over union of paired boxes ``(x0, y0, x1, y1)`` in pixels.

    Args:
        pred_boxes, true_boxes: ``(..., 4)`` boxes; the leading shapes
            broadcast, so ``a[:, None]`` and ``b[None]`` give the pairwise
            ``(N, M)`` matrix.

    Returns:
        ``(...)`` IoU in [0, 1]; 0 when both boxes are empty. Same kind
        (tensor/array) as ``pred_boxes``.
    """
    a, was_np = _to_tensor(pred_boxes)
    b, _ = _to_tensor(true_boxes)
    if a.shape[-1:] != (4,) or b.shape[-1:] != (4,):
        raise PoseShapeError(f"boxes must have shape (..., 4) as x0, y0, x1, y1, got {tuple(a.shape)} and "
                             f"{tuple(b.shape)}")
    b = b.to(a)
    # Inverted boxes (x1 < x0) have no area rather than a negative one.
    area_a = (a[..., 2] - a[..., 0]).clamp_min(0) * (a[..., 3] - a[..., 1]).clamp_min(0)
    area_b = (b[..., 2] - b[..., 0]).clamp_min(0) * (b[..., 3] - b[..., 1]).clamp_min(0)
    w = (torch.minimum(a[..., 2], b[..., 2]) - torch.maximum(a[..., 0], b[..., 0])).clamp_min(0)
    h = (torch.minimum(a[..., 3], b[..., 3]) - torch.maximum(a[..., 1], b[..., 1])).clamp_min(0)
    inter = w * h
    union = area_a + area_b - inter
    iou = torch.where(union > 0, inter / union.clamp_min(1e-12), torch.zeros_like(union))
    return _back(iou, was_np)


#: The eight limb segments of the bone-length consistency figure, house joint indices (parent, child):
#: upper and lower arms and legs, left and right.
LIMBS8: dict[str, tuple[int, int]] = {
    "right_thigh": (1, 2), "right_shin": (2, 3), "left_thigh": (4, 5), "left_shin": (5, 6),
    "left_upper_arm": (11, 12), "left_forearm": (12, 13), "right_upper_arm": (14, 15), "right_forearm": (15, 16)}


def limb_length_consistency(joints, valid=None) -> dict[str, float]:
    """How much each limb's length varies over a clip: std / mean of its length per limb, and their mean.

    A rigid body's limbs keep their length, so a 3D sequence whose limbs
    stretch and shrink is inconsistent (the issue's ≤ 5% target is on
    ``"mean"``). Unit-free: the same for mm or m.

    Args:
        joints: ``(T, 17, 3)`` house-order joints (any unit, any frame).
        valid: ``(T,)`` bool frames to use (None = every frame with finite joints).

    Returns:
        ``{limb name: std/mean, ..., "mean": mean over the eight limbs}``; NaN
        for a limb with fewer than two usable frames.
    """
    J = np.asarray(joints, dtype=np.float64)
    if J.ndim != 3 or J.shape[1:] != (17, 3):
        raise ValueError(f"joints must be (T, 17, 3), got {J.shape}")
    use = np.ones(len(J), bool) if valid is None else np.asarray(valid, bool)
    out = {}
    for name, (a, b) in LIMBS8.items():
        length = np.linalg.norm(J[:, b] - J[:, a], axis=-1)
        ok = use & np.isfinite(length)
        out[name] = float(length[ok].std() / length[ok].mean()) if ok.sum() >= 2 and length[ok].mean() > 0 \
            else float("nan")
    vals = [v for v in out.values() if np.isfinite(v)]
    out["mean"] = float(np.mean(vals)) if vals else float("nan")
    return out


def limb_lengths(joints) -> np.ndarray:
    """``(T, 8)`` lengths of the :data:`LIMBS8` segments per frame, in the joints' unit, from ``(T, 17, 3)`` joints."""
    J = np.asarray(joints, dtype=np.float64)
    if J.ndim != 3 or J.shape[1:] != (17, 3):
        raise ValueError(f"joints must be (T, 17, 3), got {J.shape}")
    return np.stack([np.linalg.norm(J[:, b] - J[:, a], axis=-1) for a, b in LIMBS8.values()], -1)


def compare_to_reference(pred, ref) -> dict[str, float]:
    """A clip's 3D scored against a reference 3D of the same frames (e.g. one triangulated from other views).

    Args:
        pred, ref: ``(T, 17, 3)`` house-order joints, mm, one camera's frame; frames where either is not finite
            are left out.

    Returns:
        ``frames`` used; ``mpjpe`` and ``p_mpjpe`` (mm; both pelvis-relative, P-MPJPE after a per-frame
        similarity Procrustes); ``limb_error_mm``: mean absolute difference of the eight limb lengths (mm);
        ``limb_cv``: the prediction's :func:`limb_length_consistency` (unit-free).
    """
    P, R = np.asarray(pred, np.float64), np.asarray(ref, np.float64)
    if P.shape != R.shape or P.ndim != 3 or P.shape[1:] != (17, 3):
        raise ValueError(f"pred and ref must both be (T, 17, 3), got {P.shape} and {R.shape}")
    ok = np.isfinite(P).all((1, 2)) & np.isfinite(R).all((1, 2))
    if not ok.any():
        raise ValueError("no frame where both pred and ref are finite")
    p, r = P[ok], R[ok]
    return {"frames": int(ok.sum()), "mpjpe": float(mpjpe(p, r)), "p_mpjpe": float(p_mpjpe(p, r)),
            "limb_error_mm": float(np.abs(limb_lengths(p) - limb_lengths(r)).mean()),
            "limb_cv": limb_length_consistency(p)["mean"]}
