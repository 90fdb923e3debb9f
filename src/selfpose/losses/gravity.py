"""Free-fall tracking losses for the detector boxes (Honari et al., TPAMI 2022, Eqs. 7–12).

Used on diving videos, where a person in the air falls under gravity: the
box centres of four equidistant frames ``t, t+δ, t+2δ, t+3δ``
(:class:`selfpose.data.samplers.GravitySampler`) must follow a parabola, keep
falling, and keep their size. This gives the detector a training signal before
the reconstruction can (training on dives is two-stage: reconstruction + ``L_T``
first, then DSL).

Coordinates are those of the detector's ``θ = (s_x, s_y, t_x, t_y)``: the
vertical centre ``y = t_y`` in normalised frame coordinates ``[-1, 1]``, **y
down**, so a fall means ``y`` increasing; scales ``s`` are fractions of the
frame size. Every loss takes the mean over the ``N`` items (sum over the
frame-to-frame terms within an item).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from selfpose.losses._checks import LossInputError, check_nonempty, check_tensor


def _check_y(y: torch.Tensor) -> None:
    check_tensor(y, "y", ("N", 4))
    check_nonempty(y, "y")


def gravity_loss(y: torch.Tensor) -> torch.Tensor:
    """Constant acceleration of four equidistant box centres (Eqs. 7–9).

    A body in free fall has ``y(t) = y0 + v t + a t²/2``; its two successive
    second finite differences ``y3 − 2y2 + y1`` and ``y4 − 2y3 + y2`` are then
    equal, i.e. the third difference vanishes:
    ``L_G = mean_n (y4 − 3y3 + 3y2 − y1)²``. The unknown ``g`` (which depends on
    the camera distance and frame rate) never appears, so nothing about the
    scene needs to be known.

    Args:
        y: ``(N, 4)`` vertical box centres (normalised coordinates, y down) of
            four frames ``δ`` apart, in time order.

    Returns:
        scalar tensor (normalised-coordinate units squared).
    """
    _check_y(y)
    third = y[:, 3] - 3 * y[:, 2] + 3 * y[:, 1] - y[:, 0]
    return (third ** 2).mean()


def order_loss(y: torch.Tensor, eps: float, direction=1.0) -> torch.Tensor:
    """The box keeps moving in the direction of the fall (Eq. 10).

    ``L_O = mean_n Σ_{k=1..3} max(0, ε − d·(y_{k+1} − y_k))``: each step must
    move by at least ``ε`` in direction ``d``. Without it, a static box
    (``y`` constant) satisfies :func:`gravity_loss` trivially.

    Args:
        y: ``(N, 4)`` vertical box centres (normalised coordinates, y down).
        eps: ``ε ≥ 0``, the least displacement per step, normalised units
            (the frame height is 2). A config value: the fall per step δ
            depends on δ and on how large the dive looks in the frame.
        direction: ``+1`` (falling: y increasing, the default) or ``−1``;
            a scalar or per-item ``(N,)`` tensor.

    Returns:
        scalar tensor.
    """
    _check_y(y)
    if eps < 0:
        raise LossInputError(f"eps must be ≥ 0 (normalised units), got {eps}")
    d = torch.as_tensor(direction, dtype=y.dtype, device=y.device)
    if d.ndim == 1:
        if d.shape[0] != y.shape[0]:
            raise LossInputError(f"direction must be a scalar or (N,) with N = {y.shape[0]}, got {tuple(d.shape)}")
        d = d[:, None]
    elif d.ndim != 0:
        raise LossInputError(f"direction must be a scalar or (N,), got shape {tuple(d.shape)}")
    steps = y[:, 1:] - y[:, :-1]                              # (N, 3)
    return F.relu(eps - d * steps).sum(1).mean()


def scale_loss(s: torch.Tensor) -> torch.Tensor:
    """The box keeps its size from frame to frame (Eq. 11).

    ``L_S = mean_n Σ_{k=1..3} ‖s_{k+1} − s_k‖²`` with ``s = (s_x, s_y)``.

    Args:
        s: ``(N, 4, 2)`` box scales (fractions of the frame width/height).

    Returns:
        scalar tensor.
    """
    check_tensor(s, "s", ("N", 4, 2))
    check_nonempty(s, "s")
    return ((s[:, 1:] - s[:, :-1]) ** 2).sum((1, 2)).mean()


def tracking_loss(theta: torch.Tensor, eps: float, weights: Sequence[float] = (1.0, 1.0, 1.0),
                  direction=1.0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The free-fall tracking loss ``L_T = w_G L_G + w_O L_O + w_S L_S`` (Eq. 12).

    Args:
        theta: ``(N, 4, 4)`` detector outputs ``(s_x, s_y, t_x, t_y)`` of the
            four equidistant frames of each item, in time order.
        eps: ``ε`` of :func:`order_loss` (normalised units).
        weights: ``(w_G, w_O, w_S)``; the paper sums the three terms (all 1).
        direction: fall direction for :func:`order_loss` (+1: down).

    Returns:
        ``(L_T, parts)`` with ``parts = {"gravity", "order", "scale"}`` the
        unweighted terms (tensors in the graph; call ``.item()`` to log).
    """
    check_tensor(theta, "theta", ("N", 4, 4))
    if len(weights) != 3:
        raise LossInputError(f"weights must be (w_gravity, w_order, w_scale), got {tuple(weights)}")
    y = theta[..., 3]
    parts = {"gravity": gravity_loss(y), "order": order_loss(y, eps, direction), "scale": scale_loss(theta[..., :2])}
    total = weights[0] * parts["gravity"] + weights[1] * parts["order"] + weights[2] * parts["scale"]
    return total, parts


__all__ = ("gravity_loss", "order_loss", "scale_loss", "tracking_loss")
