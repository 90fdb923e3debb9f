"""Sharper reconstruction terms that need no learned weights: SSIM, image gradients, a Laplacian pyramid.

Not in the paper. A squared pixel error is minimised by the blurred average
of every picture the decoder cannot tell apart, which is how a decoder comes
to draw a flat blob where the person is; these terms compare *structure*
instead — local means, contrasts and correlations (SSIM), edges (gradients),
band-pass detail at several scales (Laplacian pyramid) — and need no
downloaded network.

All take ``pred`` (the recomposed frame ``Î``) and ``target`` (the real frame
``I``), both ``(B, 3, H, W)`` float images in ``[0, 1]``, and an optional
per-pixel weight ``mask`` (``(B, 1, H, W)`` or ``(B, H, W)``, ≥ 0) with the
meaning it has in :func:`~selfpose.losses.reconstruction.pixel_loss`: the
loss is the mask-weighted mean over batch, channels and pixels,
``Σ m·e / (3 Σ m)``. Each returns a scalar; 0 when ``pred == target``.

They run in float32 with autocast off, whatever precision the training step
uses: SSIM's variances are differences of nearly equal means, and bf16
(8 bits of mantissa) would turn them into noise.
"""

from __future__ import annotations

import functools
import math
from typing import Literal

import torch
import torch.nn.functional as F

from selfpose.losses._checks import LossInputError, check_nonempty, check_pixel_mask, check_same, check_tensor
from selfpose.training.precision import full_precision

#: SSIM stabilisers for a dynamic range of 1 (Wang et al. 2004: K1 = 0.01, K2 = 0.03).
SSIM_C1 = 0.01 ** 2
SSIM_C2 = 0.03 ** 2

#: 5-tap binomial low-pass of the Laplacian pyramid (Burt & Adelson 1983).
BINOMIAL5 = (1 / 16, 4 / 16, 6 / 16, 4 / 16, 1 / 16)


def _check_images(pred: torch.Tensor, target: torch.Tensor, min_size: int = 1) -> None:
    check_tensor(pred, "pred", ("B", 3, "H", "W"))
    check_tensor(target, "target", ("B", 3, "H", "W"))
    check_same(pred, target, "pred", "target")
    check_nonempty(pred, "pred")
    if min(pred.shape[-2:]) < min_size:
        raise LossInputError(f"images of {tuple(pred.shape[-2:])} px are too small for this loss (it needs at "
                             f"least {min_size} px a side); lower the window / levels or use larger images")


def masked_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """``Σ m·v / (C Σ m)`` over ``(B, C, H, W)`` values and ``(B, 1, H, W)`` weights; the plain mean when None."""
    if mask is None:
        return values.mean()
    return (values * mask).sum() / (values.shape[1] * mask.sum()).clamp_min(torch.finfo(values.dtype).tiny)


@functools.lru_cache(maxsize=64)
def _filter_matrix(n: int, taps: tuple[float, ...], step: int, device: torch.device,
                   dtype: torch.dtype) -> torch.Tensor:
    """``(⌈n/step⌉, n)`` matrix of a 1D filter with reflect padding (edge not repeated), every ``step``-th output.

    Filtering as a matrix product: on a CPU a dense ``(…, n) @ (n, n)`` GEMM,
    though it multiplies by all the band's zeros, ran several times faster,
    forward + backward, than a depthwise convolution with the same taps
    (PyTorch's depthwise CPU kernels are slow) in our timing at 128 px.
    """
    r = len(taps) // 2
    i = torch.arange(n)[:, None]
    k = i + torch.arange(-r, r + 1)[None]
    k = torch.where(k < 0, -k, k)
    k = torch.where(k > n - 1, 2 * (n - 1) - k, k)
    m = torch.zeros(n, n, dtype=torch.float64)
    m.index_put_((i.expand_as(k), k), torch.tensor(taps, dtype=torch.float64).expand_as(k).clone(), accumulate=True)
    return m[::step].to(device=device, dtype=dtype)


@functools.lru_cache(maxsize=64)
def _upsample_matrix(n: int, m: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``(n, m)`` matrix of 1D linear interpolation from ``m`` to ``n`` samples (``align_corners=False``).

    Bilinear resizing is separable, so rows and columns each get one of these.
    """
    eye = torch.eye(m, dtype=torch.float64)[:, None, :]
    return F.interpolate(eye, size=n, mode="linear", align_corners=False)[:, 0].T.to(device=device, dtype=dtype)


def _apply(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """``rows @ x @ colsᵀ`` over the last two axes of ``(…, H, W)``: a separable linear map of each image."""
    return rows @ (x @ cols.T)


def _separable(x: torch.Tensor, taps: tuple[float, ...], step: int = 1) -> torch.Tensor:
    """Separable filter of ``(…, H, W)`` with 1D ``taps`` (odd count), reflect padding, every ``step``-th pixel."""
    h, w = x.shape[-2:]
    return _apply(x, _filter_matrix(h, taps, step, x.device, x.dtype), _filter_matrix(w, taps, step, x.device, x.dtype))


def gaussian_taps(window: int, sigma: float) -> tuple[float, ...]:
    """Normalised 1D Gaussian of ``window`` (odd) taps and standard deviation ``sigma`` px."""
    if window < 1 or window % 2 == 0:
        raise LossInputError(f"window must be an odd number of pixels ≥ 1, got {window}")
    if not sigma > 0:
        raise LossInputError(f"sigma must be > 0 px, got {sigma}")
    g = [math.exp(-(j - window // 2) ** 2 / (2 * sigma ** 2)) for j in range(window)]
    return tuple(v / sum(g) for v in g)


def ssim_map(pred: torch.Tensor, target: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-pixel, per-channel SSIM (Wang et al. 2004) with a Gaussian window, ``(B, 3, H, W)`` in ``[-1, 1]``.

    ``SSIM = (2 μ_x μ_y + C1)(2 σ_xy + C2) / ((μ_x² + μ_y² + C1)(σ_x² + σ_y² + C2))``
    with local statistics weighted by a ``window``-tap Gaussian of std
    ``sigma`` px (the paper's 11 and 1.5) and ``C1 = 0.01²``, ``C2 = 0.03²``
    for images in ``[0, 1]``. Borders are reflect-padded so the map has the
    images' size (and a pixel mask applies to it directly); images need
    more than ``window // 2`` px a side. 1 where the images agree exactly.
    """
    _check_images(pred, target, min_size=window // 2 + 1)
    with full_precision(pred.device.type):
        # Centred on mid-grey: the (co)variances E[xy] − E[x]E[y] cancel less of float32's precision
        # on values in [-0.5, 0.5] than on [0, 1] (flat areas came out 1e-4 off SSIM's exact value).
        x, y = pred.float() - 0.5, target.float() - 0.5
        taps = gaussian_taps(window, sigma)
        c = x.shape[1]
        # Two filtering passes over the five local moments: the target's own moments apart, so that
        # (a target needing no gradient) the backward pass filters three maps, not five.
        mx, xx, xy = _separable(torch.cat([x, x * x, x * y], dim=1), taps).split(c, dim=1)
        my, yy = _separable(torch.cat([y, y * y], dim=1), taps).split(c, dim=1)
        vx, vy, cxy = xx - mx * mx, yy - my * my, xy - mx * my
        mx, my = mx + 0.5, my + 0.5
        num = (2 * mx * my + SSIM_C1) * (2 * cxy + SSIM_C2)
        den = (mx * mx + my * my + SSIM_C1) * (vx + vy + SSIM_C2)
        return num / den


def ssim_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
              window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """``1 − SSIM`` of the recomposed frame against the real one, mask-weighted mean over pixels and channels.

    Args:
        pred, target: ``(B, 3, H, W)`` images in ``[0, 1]``.
        mask: optional per-pixel weights (see the module doc).
        window, sigma: the Gaussian window, in px (see :func:`ssim_map`).

    Returns:
        scalar in ``[0, 2]`` (0 for identical images; about 1 for unrelated textures).
    """
    s = ssim_map(pred, target, window, sigma)
    return masked_mean(1 - s, None if mask is None else check_pixel_mask(mask, s))


def image_gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward differences of ``(B, C, H, W)`` images: ``dx (B, C, H, W−1)``, ``dy (B, C, H−1, W)`` (intensity / px)."""
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def gradient_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
                  norm: Literal["l1", "l2"] = "l1") -> torch.Tensor:
    """Difference of finite-difference image gradients: ``(E_x + E_y) / 2``.

    ``E_x`` is the mask-weighted mean of ``|∂x Î − ∂x I|`` (``norm="l1"``) or
    its square (``"l2"``) over the ``W−1`` horizontal differences of each row,
    likewise ``E_y``. A difference between two pixels weighs the mean of their
    two mask values (the mask sampled where the difference lives), so a
    person's outline with ``fg_weight`` counts about half as much again as its
    inside, and a difference reaching into zero-weight padding counts half.

    Args:
        pred, target: ``(B, 3, H, W)`` images in ``[0, 1]``, at least 2 × 2 px.
        mask: optional per-pixel weights (see the module doc).
        norm: ``"l1"`` or ``"l2"``.

    Returns:
        scalar; in intensity units per px (``"l1"``) or their square (``"l2"``).
        Example: a vertical step edge of height ``h`` moved by one column in
        ``W``-px-wide images costs ``h / (W − 1)`` (l1) — two differences of
        ``h`` per row out of ``W − 1``, averaged with ``E_y = 0``.
    """
    _check_images(pred, target, min_size=2)
    if norm not in ("l1", "l2"):
        raise LossInputError(f"norm must be 'l1' or 'l2', got {norm!r}")
    pred, target = pred.float(), target.float()
    m = None if mask is None else check_pixel_mask(mask, pred)
    terms = []
    for k, (dp, dt) in enumerate(zip(image_gradients(pred), image_gradients(target))):
        e = (dp - dt).abs() if norm == "l1" else (dp - dt) ** 2
        w = None
        if m is not None:
            w = (m[..., :, 1:] + m[..., :, :-1]) / 2 if k == 0 else (m[..., 1:, :] + m[..., :-1, :]) / 2
        terms.append(masked_mean(e, w))
    return (terms[0] + terms[1]) / 2


def _pyramid_down(x: torch.Tensor) -> torch.Tensor:
    """Binomial low-pass (reflect padding), then every other row and column: ``(…, H, W) → (…, ⌈H/2⌉, ⌈W/2⌉)``."""
    return _separable(x, BINOMIAL5, step=2)


def _pyramid_up(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of ``(…, h, w)`` to ``size`` (``align_corners=False``, as ``F.interpolate``)."""
    (h, w), (H, W) = x.shape[-2:], size
    return _apply(x, _upsample_matrix(H, h, x.device, x.dtype), _upsample_matrix(W, w, x.device, x.dtype))


def _check_levels(levels: int, size: int) -> None:
    if levels < 1:
        raise LossInputError(f"levels must be ≥ 1, got {levels}")
    s = size
    for k in range(levels - 1):
        if s < 3:
            raise LossInputError(f"{levels} pyramid levels need images of at least {3 * 2 ** (levels - 2)} px a "
                                 f"side (level {k} would be {s} px); use fewer levels")
        s = math.ceil(s / 2)


def laplacian_pyramid(x: torch.Tensor, levels: int = 4) -> list[torch.Tensor]:
    """Laplacian pyramid of ``(B, C, H, W)`` images, finest level first.

    ``G_0 = x``, ``G_{k+1}`` = binomial blur of ``G_k`` taken every other pixel;
    level ``k < levels − 1`` is ``G_k − up(G_{k+1})`` (``up``: bilinear to
    ``G_k``'s size), the last level is ``G_{levels−1}`` itself, so
    ``x = L_0 + up(L_1 + up(…))`` and a constant image has zeros everywhere
    but the last level. Level ``k`` is ``⌈H/2^k⌉ × ⌈W/2^k⌉``.
    """
    _check_levels(levels, min(x.shape[-2:]))
    out, g = [], x
    for _ in range(levels - 1):
        low = _pyramid_down(g)
        out.append(g - _pyramid_up(low, tuple(g.shape[-2:])))
        g = low
    out.append(g)
    return out


def laplacian_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
                   levels: int = 4) -> torch.Tensor:
    """L1 between Laplacian pyramids: ``Σ_k mean_k |L_k(Î) − L_k(I)|`` over ``levels`` levels.

    Each level is a mean over its own pixels, so a coarse level (4× fewer
    pixels per step) counts as much as a fine one: fine levels compare
    edges and texture, the coarsest the low-pass colour layout. A mask is
    carried down the pyramid with the same blur-and-subsample as the images.

    Args:
        pred, target: ``(B, 3, H, W)`` images in ``[0, 1]``; they need at least
            ``3·2^(levels−2)`` px a side.
        mask: optional per-pixel weights (see the module doc).
        levels: pyramid levels (1 = plain L1 of the images; default 4: down to
            1/8 of the frame).

    Returns:
        scalar, intensity units (sum over levels of mean absolute differences).
    """
    _check_images(pred, target)
    _check_levels(levels, min(pred.shape[-2:]))
    with full_precision(pred.device.type):
        # Two pyramids, not one of the batch-concatenated pair: a target that needs no gradient
        # then adds nothing to the backward pass.
        m = None if mask is None else check_pixel_mask(mask, pred).float()
        total = pred.new_zeros((), dtype=torch.float32)
        for k, (lp, lt) in enumerate(zip(laplacian_pyramid(pred.float(), levels),
                                         laplacian_pyramid(target.float(), levels))):
            if k > 0 and m is not None:
                m = _pyramid_down(m)
            total = total + masked_mean((lp - lt).abs(), m)
        return total


__all__ = ("ssim_map", "ssim_loss", "image_gradients", "gradient_loss", "laplacian_pyramid", "laplacian_loss",
           "gaussian_taps", "masked_mean", "SSIM_C1", "SSIM_C2", "BINOMIAL5")
