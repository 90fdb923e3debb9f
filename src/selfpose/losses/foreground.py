"""Label-free foreground targets from the estimated background (not in Honari et al.; a CPU-budget curriculum).

The method already needs an estimated background ``B`` per video (Eq. 1
composites over it). The pixels where the frame differs from it,
``|I − B| > τ``, are a free, label-free guess of where the person is. Two
weak targets come from it:

* a **box target** for the detector: the box around the foreground pixels
  (robust quantiles of their coordinates, enlarged by a margin);
* a **mask target** for the decoder: the foreground pixels cropped by the
  current (detached) box, compared with the decoded mask ``M``.

Why they exist: at the paper's budget (hundreds of thousands of GPU steps)
reconstruction alone drags the box onto the person. At a CPU budget (a few
thousand steps) the easy minimum wins first — an empty mask over a good
background already reconstructs most of the frame, the decoder never learns
to draw a person, so nothing pulls the box onto one (docs/design.md §1.1 calls the
batch-mean prior the paper's remedy; at this budget it is not enough). These
targets break that chicken-and-egg. They use no labels — only frames and the
background the method already estimates — so the model stays self-supervised;
their weights are 0 in the paper profile (``configs/temporal_paper_gpu.yaml``).

Shapes: frames and backgrounds ``(B, 3, H, W)`` floats in ``[0, 1]``; masks
``(B, 1, H, W)``; boxes ``θ = (s_x, s_y, t_x, t_y)`` (scales as fractions of
the frame, centres in ``[-1, 1]``, y down) as in :mod:`selfpose.models.stn`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from selfpose.losses._checks import LossInputError, check_nonempty, check_same, check_tensor


def foreground_mask(frames: torch.Tensor, background: torch.Tensor, threshold: float = 0.1) -> torch.Tensor:
    """``max_c |I − B| > threshold`` → ``(B, 1, H, W)`` float 0/1 (no gradient).

    Args:
        frames, background: ``(B, 3, H, W)`` in ``[0, 1]``.
        threshold: difference (in ``[0, 1]`` units, max over RGB) above which a pixel is foreground.
    """
    check_tensor(frames, "frames", ("B", 3, "H", "W"))
    check_tensor(background, "background", ("B", 3, "H", "W"))
    check_same(frames, background, "frames", "background")
    if not 0 < threshold < 1:
        raise LossInputError(f"threshold must be in (0, 1), got {threshold}")
    with torch.no_grad():
        return ((frames.float() - background.float()).abs().amax(1, keepdim=True) > threshold).float()


def _leading(marginal: torch.Tensor, q: float) -> torch.Tensor:
    """How many leading entries hold at most a share ``q`` of the mass; (B, L) → (B,) float.

    ``q = 0`` counts the leading empty entries exactly (empty columns have a cumulative share of exactly 0).
    """
    cdf = marginal.cumsum(-1) / marginal.sum(-1, keepdim=True).clamp_min(1e-12)
    return (cdf <= q).sum(-1).float()


def foreground_box(fg: torch.Tensor, quantile: float = 0.02, margin: float = 1.15,
                   min_fraction: float = 0.003, min_scale: float = 0.1,
                   max_scale: float = 1.0, square: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Box around the foreground pixels → ``(θ (B, 4), valid (B,) bool)``.

    The box spans the ``quantile`` … ``1 − quantile`` range of the foreground
    pixels' x and y (so a few stray pixels — noise, a shadow — do not stretch
    it), enlarged about its centre by ``margin`` and its sizes clamped to
    ``[min_scale, max_scale]``. A frame is ``valid`` when at least
    ``min_fraction`` of its pixels are foreground (else its box is meaningless
    and the caller should not use it). With ``square`` both sides take the
    longer one (in pixels), so the crop keeps the body's proportions instead
    of stretching a standing person sideways.

    Args:
        fg: ``(B, 1, H, W)`` foreground weights (0/1 or soft, ≥ 0).
    """
    check_tensor(fg, "fg", ("B", 1, "H", "W"))
    if not 0 <= quantile < 0.5:
        raise LossInputError(f"quantile must be in [0, 0.5), got {quantile}")
    if margin <= 0:
        raise LossInputError(f"margin must be > 0, got {margin}")
    H, W = fg.shape[-2:]
    with torch.no_grad():
        m = fg[:, 0].float()
        cols, rows = m.sum(1), m.sum(2)                      # (B, W), (B, H)
        # Edges as pixel boundaries: the box [x0, x1) leaves out a share `quantile` on each side.
        x0, x1 = _leading(cols, quantile), W - _leading(cols.flip(-1), quantile)
        y0, y1 = _leading(rows, quantile), H - _leading(rows.flip(-1), quantile)
        w, h = x1 - x0, y1 - y0
        if square:
            w = h = torch.maximum(w, h)
        sx = (w / W * margin).clamp(min_scale, max_scale)
        sy = (h / H * margin).clamp(min_scale, max_scale)
        theta = torch.stack([sx, sy, (x0 + x1) / W - 1, (y0 + y1) / H - 1], -1)
        valid = m.mean((1, 2)) >= min_fraction
    return theta, valid


def box_target_loss(theta: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Smooth-L1 (β = 0.05) between predicted and target boxes, mean over valid frames and the 4 numbers.

    Args:
        theta: ``(B, 4)`` detector boxes (gradients flow here).
        target: ``(B, 4)`` target boxes (detached).
        valid: ``(B,)`` bool, frames to use; all when None. No valid frame → 0.
    Returns:
        scalar tensor.
    """
    check_tensor(theta, "theta", ("B", 4))
    check_tensor(target, "target", ("B", 4))
    check_same(theta, target, "theta", "target")
    check_nonempty(theta, "theta")
    per = F.smooth_l1_loss(theta.float(), target.detach().float(), beta=0.05, reduction="none").mean(1)
    if valid is None:
        return per.mean()
    if valid.shape != per.shape:
        raise LossInputError(f"valid must have shape ({per.shape[0]},), got {tuple(valid.shape)}")
    w = valid.float()
    return (per * w).sum() / w.sum().clamp_min(1.0)


def mask_target_loss(mask: torch.Tensor, fg: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Binary cross-entropy between a decoded mask and the foreground target, mean over pixels.

    Args:
        mask: ``(B, 1, h, w)`` in ``[0, 1]`` (gradients flow here), e.g. the decoded crop mask ``M``.
        fg: ``(B, 1, h, w)`` target in ``[0, 1]``, e.g. the foreground cropped with the same box.
        valid: ``(B,)`` bool frames to use; all when None. No valid frame → 0.
    Returns:
        scalar tensor (nats per pixel).
    """
    check_tensor(mask, "mask", ("B", 1, "H", "W"))
    check_tensor(fg, "fg", ("B", 1, "H", "W"))
    check_same(mask, fg, "mask", "fg")
    check_nonempty(mask, "mask")
    m = mask.float().clamp(1e-4, 1 - 1e-4)
    t = fg.detach().float()
    # F.binary_cross_entropy's formula, written out: torch's op raises on a NaN mask (a diverged
    # decoder), where a NaN loss lets the training step report which term went non-finite.
    per = ((t - 1) * torch.log(1 - m) - t * torch.log(m)).mean((1, 2, 3))
    if valid is None:
        return per.mean()
    w = valid.float()
    return (per * w).sum() / w.sum().clamp_min(1.0)


__all__ = ("foreground_mask", "foreground_box", "box_target_loss", "mask_target_loss")
