"""Weak 2D supervision of the time-variant code (Honari et al., TPAMI 2022, Eq. 13).

When 2D poses exist (labels or an off-the-shelf 2D detector), a small head on
``v_t`` regresses them: ``λ_2D ‖P_2D(v_t) − p_2D‖²`` with ``λ_2D = 10``.

Coordinates are **normalised to the frame**: pixels divided by the image size
(:func:`normalise_2d`: ``x / W``, ``y / H``, so the frame is ``[0, 1]²``). That
makes the loss — and ``λ_2D = 10`` — independent of the stored frame size; in
pixels the same error would weigh ``W²`` times more on a larger frame. The 2D
head therefore predicts normalised coordinates, and targets are normalised
before the loss.
"""

from __future__ import annotations

import numpy as np
import torch

from selfpose.losses._checks import LossInputError, check_axis, check_same, check_tensor


def normalise_2d(joints_px, width: float, height: float):
    """Pixels of a ``width × height`` frame → frame-normalised ``[0, 1]`` coordinates.

    Args:
        joints_px: ``(..., 2)`` (x, y) in pixels (numpy array or tensor; NaN
            for missing joints stays NaN).
        width, height: frame size in pixels (> 0).

    Returns:
        the same kind and shape: ``(x / width, y / height)``.
    """
    if not (width > 0 and height > 0):
        raise LossInputError(f"frame size must be positive, got width={width}, height={height}")
    if isinstance(joints_px, torch.Tensor):
        x = joints_px if joints_px.is_floating_point() else joints_px.float()
        scale = torch.tensor([width, height], dtype=x.dtype, device=x.device)
    else:
        x = np.asarray(joints_px)
        x = x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float32)
        scale = np.array([width, height], dtype=x.dtype)
    if x.ndim < 1 or x.shape[-1] != 2:
        raise LossInputError(f"joints_px must have shape (..., 2) (x, y in pixels), got {tuple(x.shape)}")
    return x / scale


def weak2d_loss(pred: torch.Tensor, target: torch.Tensor, conf: torch.Tensor | None = None) -> torch.Tensor:
    """Confidence-weighted MSE of 2D joints (Eq. 13); NaN targets are ignored.

    ``L_2D = Σ_{b,j} w_bj · mean_c (p̂_bjc − p_bjc)² / Σ_{b,j} w_bj`` with
    ``w_bj = conf_bj`` (1 when ``conf`` is None), set to 0 where the target
    joint has a NaN coordinate (missing label) or a NaN confidence. With no
    valid joint at all the loss is 0 (still in the graph, zero gradient).

    Args:
        pred: ``(B, J, 2)`` predicted joints, frame-normalised (see module doc).
        target: ``(B, J, 2)`` target joints, frame-normalised; NaN = missing.
        conf: ``(B, J)`` non-negative confidences (e.g. a 2D detector's
            scores) or None.

    Returns:
        scalar tensor (normalised-coordinate units squared).
    """
    check_tensor(pred, "pred", ("B", "J", 2))
    check_tensor(target, "target", ("B", "J", 2))
    check_same(pred, target, "pred", "target")
    valid = torch.isfinite(target).all(-1)                                     # (B, J)
    w = valid.to(pred.dtype)
    if conf is not None:
        check_tensor(conf, "conf", ("B", "J"))
        check_axis(conf, pred, "conf", "pred", 0, 0, "the batch size B")
        check_axis(conf, pred, "conf", "pred", 1, 1, "the joint count J")
        conf = conf.to(pred.dtype)
        if bool((conf < 0).any()):
            raise LossInputError("conf must be ≥ 0 (confidence weights); clamp the detector scores first")
        w = w * torch.nan_to_num(conf, nan=0.0)
    # Zero the missing targets *before* the difference: NaN · 0 is NaN, in the
    # value and in the gradient, so masking afterwards is not enough.
    tgt = torch.where(valid[..., None], target, torch.zeros_like(target)).to(pred.dtype)
    err = ((pred - tgt) ** 2).mean(-1)                                          # (B, J)
    return (w * err).sum() / w.sum().clamp_min(torch.finfo(pred.dtype).tiny)


__all__ = ("normalise_2d", "weak2d_loss")
