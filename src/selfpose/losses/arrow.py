"""Arrow of time on the pose code: which of two frames of a video came first (not in Honari et al.).

Why: on the identity-diverse benchmark the pelvis-centred camera-frame pose is
worth 50 mm more when the person's facing is known, and all of it is front
versus back (``benchmarks/results/benchmark_cpu_identity.md``), which a body
dressed alike on both sides hardly shows in its pixels. Time shows it: people
walk the way they face. Given the pose codes of two frames and how the
person's box moved between them, telling the earlier frame from the later one
needs to know which way the person faces (a box that moves right is a walk
forward for someone facing right, a walk backward for someone facing left),
or motions that run one way only (sitting down). Wei et al. (CVPR 2018) used
the arrow of time as a self-supervised signal on whole frames; here it is a
term on ``v`` with the box motion given, so that the facing is what it asks for.

Both functions are pure; shapes and units in their docstrings.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from selfpose.losses._checks import LossInputError, check_tensor


def box_motion(theta_a: torch.Tensor, theta_b: torch.Tensor) -> torch.Tensor:
    """How the person's box moved from frame a to frame b, ``(B, 3)``: Δ centre x, Δ centre y, Δ log height.

    Args:
        theta_a, theta_b: ``(B, 4)`` boxes ``(sx, sy, tx, ty)`` in the frame's normalised coordinates
            (``sx``, ``sy`` the box's full width and height as fractions of the frame — half-extents in ``[-1, 1]``
            units —, centre ``tx``, ``ty`` in ``[-1, 1]``; the detector's θ), ``sy > 0``.

    Returns:
        ``(tx_b − tx_a, ty_b − ty_a, log sy_b − log sy_a)``: centre moves in normalised units (x right,
        y down), the log ratio of the heights (positive: the person got larger — came nearer).
    """
    a = check_tensor(theta_a, "theta_a", ("B", 4))
    b = check_tensor(theta_b, "theta_b", ("B", 4))
    if a.shape != b.shape:
        raise LossInputError(f"theta_a and theta_b must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if bool((a[:, 1] <= 0).any()) or bool((b[:, 1] <= 0).any()):
        raise LossInputError("box heights (theta[:, 1]) must be > 0")
    return torch.stack([b[:, 2] - a[:, 2], b[:, 3] - a[:, 3], torch.log(b[:, 1]) - torch.log(a[:, 1])], dim=1)


def arrow_of_time_loss(logits: torch.Tensor, later: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of "frame b came after frame a", mean over the batch (nats; chance is log 2 ≈ 0.693).

    Args:
        logits: ``(B,)`` scores, positive = b is later.
        later: ``(B,)`` targets: 1 where frame b's time is after frame a's, 0 where before (bool or float).
    """
    z = check_tensor(logits, "logits", ("B",))
    y = later.to(z.dtype) if isinstance(later, torch.Tensor) else later
    y = check_tensor(y, "later", ("B",))
    if y.shape != z.shape:
        raise LossInputError(f"logits and later must have the same shape, got {tuple(z.shape)} and {tuple(y.shape)}")
    if bool(((y != 0) & (y != 1)).any()):
        raise LossInputError("later must hold 0 or 1 (b before or after a)")
    return F.binary_cross_entropy_with_logits(z.float(), y.float())
