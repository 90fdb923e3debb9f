"""Detector prior on the mini-batch mean box (Honari et al., TPAMI 2022; docs/design.md §1.1).

Early in training the reconstruction gives the detector a poor signal, and
the easy minima are degenerate: a box shrunk onto a patch of background (the
decoder then draws nothing and the background does the rest) or grown to the
whole frame. The prior pulls the **batch mean** box towards a sensible size
(and, for lab data where the subject stays near the middle, a sensible
centre). Because only the mean is constrained, each individual box stays free
to move and resize to follow its person — a per-sample prior would instead
pin every box to the same place and size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from selfpose.losses._checks import LossInputError, check_nonempty, check_tensor


def detector_prior(theta: torch.Tensor, target_scale: float | Sequence[float] = 0.5,
                   target_center: Sequence[float] | None = (0.0, 0.0)) -> torch.Tensor:
    """``(s̄ − s*)² + ‖t̄ − t*‖²`` on batch means of the detector output.

    * size term: with a float ``target_scale``, ``s̄`` is the mean of ``s_x``
      and ``s_y`` over the batch and both axes (one number, so the mean aspect
      ratio stays free: people are taller than wide); with a pair
      ``(s*_x, s*_y)`` each axis has its own target and the term is summed
      over the two axes.
    * centre term (optional, ``target_center=None`` turns it off; use it for
      lab data only, where the subject stays near the frame centre):
      ``‖mean_b (t_x, t_y) − t*‖²``.

    Args:
        theta: ``(B, 4)`` boxes ``(s_x, s_y, t_x, t_y)``; scales as fractions
            of the frame, centres in normalised coordinates ``[-1, 1]``
            (``(0, 0)`` is the frame centre).
        target_scale: ``s*`` (fraction of the frame), default 0.5.
        target_center: ``t*`` (normalised coordinates) or None.

    Returns:
        scalar tensor.
    """
    check_tensor(theta, "theta", ("B", 4))
    check_nonempty(theta, "theta")
    mean = theta.mean(0)                                         # (4,)
    ts = torch.as_tensor(target_scale, dtype=theta.dtype, device=theta.device)
    if ts.ndim == 0:
        loss = (mean[:2].mean() - ts) ** 2
    elif ts.shape == (2,):
        loss = ((mean[:2] - ts) ** 2).sum()
    else:
        raise LossInputError(f"target_scale must be a float or a pair (s_x, s_y), got {target_scale!r}")
    if target_center is not None:
        tc = torch.as_tensor(target_center, dtype=theta.dtype, device=theta.device)
        if tc.shape != (2,):
            raise LossInputError(f"target_center must be a pair (t_x, t_y) in [-1, 1] or None, got {target_center!r}")
        loss = loss + ((mean[2:] - tc) ** 2).sum()
    return loss


__all__ = ("detector_prior",)
