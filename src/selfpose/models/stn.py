"""Spatial-transformer box parametrisation, affine crop and inverse warp (pure functions).

A box is θ = (sx, sy, tx, ty) per image, shape (B, 4):

* sx, sy: box width/height as a fraction of the frame width/height;
* tx, ty: box centre in normalised frame coordinates [-1, 1] (x right,
  y down; ``align_corners=False`` convention of ``F.affine_grid``).

The crop matrix (frame ← crop, normalised coordinates) is
``A = [[sx, 0, tx], [0, sy, ty]]``: the crop pixel at normalised (u, v)
samples the frame at (sx·u + tx, sy·v + ty). The inverse warp puts a crop
back: the frame pixel at (x, y) samples the crop at ((x − tx)/sx, (y − ty)/sy),
zero outside the box. In pixels of a W×H frame the box is centred at
cx = (tx + 1)/2·W, cy = (ty + 1)/2·H with size w = sx·W, h = sy·H.

Both warps run in float32 even under autocast: ``grid_sample`` needs its
input and grid in one dtype, and sub-pixel box positions need the precision.
The outputs are float32 (the next conv casts them again under autocast).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from selfpose.training.precision import full_precision


class STNError(ValueError):
    """Bad box parameters or image shapes for a spatial-transformer op."""


def _check_theta(theta: torch.Tensor, batch: int | None = None) -> None:
    if theta.ndim != 2 or theta.shape[1] != 4:
        raise STNError(f"theta must have shape (B, 4) = (sx, sy, tx, ty), got {tuple(theta.shape)}")
    if batch is not None and theta.shape[0] != batch:
        raise STNError(f"theta has {theta.shape[0]} rows but the images have batch size {batch}")


def theta_from_raw(raw: torch.Tensor, scale_min: float = 0.1, scale_max: float = 1.0) -> torch.Tensor:
    """Unbounded detector outputs (B, 4) → θ (B, 4).

    sx, sy = scale_min + (scale_max − scale_min)·sigmoid(raw[:, :2]) (fractions of
    the frame size); tx, ty = tanh(raw[:, 2:]) (normalised centre).
    """
    _check_theta(raw)
    if not 0 < scale_min <= scale_max:
        raise STNError(f"need 0 < scale_min <= scale_max, got {scale_min}, {scale_max}")
    s = scale_min + (scale_max - scale_min) * torch.sigmoid(raw[:, :2])
    return torch.cat([s, torch.tanh(raw[:, 2:])], dim=1)


def raw_from_theta(theta: torch.Tensor, scale_min: float = 0.1, scale_max: float = 1.0,
                   eps: float = 1e-6) -> torch.Tensor:
    """Inverse of :func:`theta_from_raw` (clamped into the open bounds), e.g. to initialise a detector."""
    _check_theta(theta)
    frac = ((theta[:, :2] - scale_min) / max(scale_max - scale_min, eps)).clamp(eps, 1 - eps)
    t = theta[:, 2:].clamp(-1 + eps, 1 - eps)
    return torch.cat([torch.logit(frac), torch.atanh(t)], dim=1)


def full_frame_theta(batch: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """θ of the whole frame, (1, 1, 0, 0) per image: (batch, 4)."""
    return torch.tensor([1.0, 1.0, 0.0, 0.0], device=device, dtype=dtype).expand(batch, 4).clone()


def affine_matrix(theta: torch.Tensor) -> torch.Tensor:
    """θ (B, 4) → frame ← crop matrices (B, 2, 3) = [[sx, 0, tx], [0, sy, ty]]."""
    _check_theta(theta)
    sx, sy, tx, ty = theta.unbind(1)
    z = torch.zeros_like(sx)
    return torch.stack([torch.stack([sx, z, tx], 1), torch.stack([z, sy, ty], 1)], 1)


def inverse_affine_matrix(theta: torch.Tensor) -> torch.Tensor:
    """θ (B, 4) → crop ← frame matrices (B, 2, 3) = [[1/sx, 0, −tx/sx], [0, 1/sy, −ty/sy]]."""
    _check_theta(theta)
    sx, sy, tx, ty = theta.unbind(1)
    z = torch.zeros_like(sx)
    return torch.stack([torch.stack([1 / sx, z, -tx / sx], 1), torch.stack([z, 1 / sy, -ty / sy], 1)], 1)


def _size2(size) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    h, w = size
    return int(h), int(w)


def _sample(images: torch.Tensor, mat: torch.Tensor, out_hw: tuple[int, int], padding_mode: str) -> torch.Tensor:
    with full_precision(images.device.type):
        images = images.float()
        grid = F.affine_grid(mat.float(), [images.shape[0], images.shape[1], *out_hw], align_corners=False)
        return F.grid_sample(images, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)


def crop(frames: torch.Tensor, theta: torch.Tensor, size: int | tuple[int, int],
         padding_mode: str = "zeros") -> torch.Tensor:
    """Differentiable affine crop (w.r.t. frames and θ).

    Args:
        frames: (B, C, H, W) images (any value range).
        theta: (B, 4) boxes (sx, sy, tx, ty).
        size: crop side c (or (h, w)) in pixels.
        padding_mode: what a box reaching outside the frame sees ("zeros", "border", "reflection").
    Returns:
        (B, C, c, c) float32 crops (bilinear).
    """
    if frames.ndim != 4:
        raise STNError(f"frames must have shape (B, C, H, W), got {tuple(frames.shape)}")
    _check_theta(theta, frames.shape[0])
    return _sample(frames, affine_matrix(theta), _size2(size), padding_mode)


def uncrop(crops: torch.Tensor, theta: torch.Tensor, out_hw: tuple[int, int]) -> torch.Tensor:
    """Inverse warp W⁻¹: put crops back into frames of ``out_hw`` = (H, W) pixels, zeros outside the box.

    Args:
        crops: (B, C, h, w) crops (e.g. decoded RGB and mask).
        theta: (B, 4) boxes the crops were taken from.
        out_hw: frame size (H, W) in pixels.
    Returns:
        (B, C, H, W) float32; differentiable w.r.t. crops and θ.
    """
    if crops.ndim != 4:
        raise STNError(f"crops must have shape (B, C, h, w), got {tuple(crops.shape)}")
    _check_theta(theta, crops.shape[0])
    return _sample(crops, inverse_affine_matrix(theta), _size2(out_hw), "zeros")


def _stack(cols, like):
    return torch.stack(cols, -1) if isinstance(like, torch.Tensor) else np.stack(cols, -1)


def theta_to_box_px(theta, W: int, H: int):
    """θ (..., 4) → boxes (..., 4) = x0, y0, x1, y1 in pixels of a W×H frame (torch or numpy)."""
    sx, sy, tx, ty = (theta[..., k] for k in range(4))
    cx, cy = (tx + 1) / 2 * W, (ty + 1) / 2 * H
    w, h = sx * W, sy * H
    return _stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], theta)


def box_px_to_theta(box, W: int, H: int):
    """Boxes (..., 4) = x0, y0, x1, y1 in pixels of a W×H frame → θ (..., 4) (torch or numpy)."""
    x0, y0, x1, y1 = (box[..., k] for k in range(4))
    return _stack([(x1 - x0) / W, (y1 - y0) / H, (x0 + x1) / W - 1, (y0 + y1) / H - 1], box)


def square_theta(theta: torch.Tensor, W: int, H: int, margin: float) -> torch.Tensor:
    """Boxes θ (B, 4) of a W×H frame → θ of the square around each, its side the box's longer side × ``margin``
    (pixels), centred on the box; differentiable in θ. The crop the house's square-crop models and the
    ``true_box`` references cut."""
    side = torch.maximum(theta[:, 0] * W, theta[:, 1] * H) * margin
    return torch.stack([side / W, side / H, theta[:, 2], theta[:, 3]], dim=1)


def iou(a, b):
    """Intersection over union of boxes (..., 4) x0, y0, x1, y1 (same units), element-wise → (...)."""
    ix = (_minimum(a[..., 2], b[..., 2]) - _maximum(a[..., 0], b[..., 0])).clip(0)
    iy = (_minimum(a[..., 3], b[..., 3]) - _maximum(a[..., 1], b[..., 1])).clip(0)
    inter = ix * iy
    area_a = (a[..., 2] - a[..., 0]).clip(0) * (a[..., 3] - a[..., 1]).clip(0)
    area_b = (b[..., 2] - b[..., 0]).clip(0) * (b[..., 3] - b[..., 1]).clip(0)
    union = area_a + area_b - inter
    return inter / (union.clip(1e-12) if isinstance(union, torch.Tensor) else np.maximum(union, 1e-12))


def _minimum(x, y):
    return torch.minimum(x, y) if isinstance(x, torch.Tensor) else np.minimum(x, y)


def _maximum(x, y):
    return torch.maximum(x, y) if isinstance(x, torch.Tensor) else np.maximum(x, y)
