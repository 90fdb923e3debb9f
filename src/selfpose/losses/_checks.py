"""Input checks shared by the loss functions (one error type, messages that say what to do)."""

from __future__ import annotations

from collections.abc import Sequence

import torch


class LossInputError(ValueError):
    """A loss was given tensors of the wrong kind, shape or value range."""


def check_tensor(x, name: str, shape: Sequence[int | str | None], floating: bool = True) -> torch.Tensor:
    """Check ``x`` is a tensor of ``len(shape)`` dims matching ``shape``; return it.

    ``shape`` entries: an int (that exact size), a str (a symbolic size, only
    used in the message) or None (any size). Symbolic sizes are not matched
    against each other here; use :func:`check_same` for that.
    """
    if not isinstance(x, torch.Tensor):
        raise LossInputError(f"{name} must be a torch.Tensor, got {type(x).__name__}; "
                             "convert it with torch.as_tensor first")
    want = "(" + ", ".join("?" if s is None else str(s) for s in shape) + ")"
    if x.ndim != len(shape):
        raise LossInputError(f"{name} must have shape {want} ({len(shape)} dims), got {tuple(x.shape)}")
    for i, s in enumerate(shape):
        if isinstance(s, int) and x.shape[i] != s:
            raise LossInputError(f"{name} must have shape {want}, got {tuple(x.shape)} (axis {i} should be {s})")
    if floating and not x.is_floating_point():
        raise LossInputError(f"{name} must be a floating-point tensor, got {x.dtype}; "
                             "convert uint8 images with x.float() / 255")
    return x


def check_same(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    """Raise unless ``a`` and ``b`` have the same shape."""
    if a.shape != b.shape:
        raise LossInputError(f"{name_a} and {name_b} must have the same shape, got {tuple(a.shape)} and "
                             f"{tuple(b.shape)}")


def check_axis(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str, axis_a: int, axis_b: int,
               what: str) -> None:
    """Raise unless ``a.shape[axis_a] == b.shape[axis_b]`` (e.g. the same batch size)."""
    if a.shape[axis_a] != b.shape[axis_b]:
        raise LossInputError(f"{name_a} {tuple(a.shape)} and {name_b} {tuple(b.shape)} disagree on {what} "
                             f"({a.shape[axis_a]} vs {b.shape[axis_b]})")


def check_nonempty(x: torch.Tensor, name: str) -> None:
    if x.shape[0] == 0:
        raise LossInputError(f"{name} has an empty batch {tuple(x.shape)}; a loss needs at least one item")


def check_pixel_mask(mask, images: torch.Tensor) -> torch.Tensor:
    """A per-pixel weight for ``(B, C, H, W)`` images as ``(B, 1, H, W)`` in the images' dtype.

    Accepts ``(B, 1, H, W)`` or ``(B, H, W)`` non-negative weights (e.g. 0 on
    letterbox padding, ``1 + fg_weight`` on the person).
    """
    if not isinstance(mask, torch.Tensor):
        raise LossInputError(f"mask must be a torch.Tensor, got {type(mask).__name__}; "
                             "convert it with torch.as_tensor first")
    if mask.ndim == 3:
        mask = mask[:, None]
    b, _, h, w = images.shape
    if tuple(mask.shape) != (b, 1, h, w):
        raise LossInputError(f"mask must have shape (B, 1, H, W) = ({b}, 1, {h}, {w}) or (B, H, W), "
                             f"got {tuple(mask.shape)}")
    return mask.to(images.dtype)
