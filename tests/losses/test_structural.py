"""Structural reconstruction terms: SSIM, image gradients, Laplacian pyramid — hand-made cases with known answers."""

import math

import pytest
import torch
import torch.nn.functional as F

from selfpose.losses import LossInputError
from selfpose.losses.structural import (
    gaussian_taps,
    gradient_loss,
    image_gradients,
    laplacian_loss,
    laplacian_pyramid,
    masked_mean,
    ssim_loss,
    ssim_map,
)


def smooth_images(b, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return F.interpolate(torch.rand(b, 3, 4, 4, generator=g), size=size, mode="bilinear", align_corners=False)


def step_edge(h=8, w=10, col=5, height=1.0):
    """(1, 3, h, w): 0 left of column ``col``, ``height`` from it on."""
    x = torch.zeros(1, 3, h, w)
    x[..., col:] = height
    return x


# ---------------------------------------------------------------- SSIM
def test_ssim_of_identical_images_is_one_and_the_loss_zero():
    x = smooth_images(2, seed=1)
    assert torch.allclose(ssim_map(x, x), torch.ones_like(x), atol=1e-5)
    assert ssim_loss(x, x.clone()).item() == pytest.approx(0.0, abs=1e-6)


def test_ssim_of_flat_images_is_the_luminance_term():
    # Constant images have zero variance: SSIM = (2ab + C1) / (a² + b² + C1) exactly.
    a, b, c1 = 0.2, 0.6, 0.01 ** 2
    s = ssim_map(torch.full((1, 3, 16, 16), a), torch.full((1, 3, 16, 16), b))
    want = (2 * a * b + c1) / (a * a + b * b + c1)
    # float32 moments: variances of 0 come out ~1e-8, a few 1e-5 of SSIM once divided by C2 = 9e-4.
    assert torch.allclose(s, torch.full_like(s, want), atol=1e-4)
    assert ssim_loss(torch.full((1, 3, 16, 16), a), torch.full((1, 3, 16, 16), b)).item() == pytest.approx(1 - want,
                                                                                                         abs=1e-4)


def test_ssim_sees_structure_the_pixel_error_misses():
    # Same pixel MSE: a uniform shift of brightness vs. noise of the same power.
    # SSIM punishes the lost structure (noise) far more than the shift.
    x = smooth_images(1, seed=2) * 0.5 + 0.25
    shift = x + 0.1
    g = torch.Generator().manual_seed(3)
    noise = x + 0.1 * torch.sign(torch.randn(x.shape, generator=g))
    assert F.mse_loss(shift, x).item() == pytest.approx(F.mse_loss(noise, x).item(), rel=1e-5)
    assert ssim_loss(noise, x).item() > 5 * ssim_loss(shift, x).item()


def test_ssim_mask_weights_pixels():
    x = smooth_images(1, size=32, seed=4)
    y = x.clone()
    y[..., :, 24:] = 1 - y[..., :, 24:]                 # damage the right quarter only
    left = torch.zeros(1, 1, 32, 32)
    left[..., :12] = 1.0                                 # far (> window) from the damage
    assert ssim_loss(y, x, left).item() == pytest.approx(0.0, abs=1e-5)
    right = torch.zeros(1, 32, 32)
    right[..., 24:] = 1.0
    assert ssim_loss(y, x, right).item() > ssim_loss(y, x).item()      # the mean is over the damaged part only
    # The weighted mean of the map, by hand.
    m = torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    want = ((1 - ssim_map(y, x)) * m).sum() / (3 * m.sum())
    assert ssim_loss(y, x, m).item() == pytest.approx(want.item(), rel=1e-5)


def test_ssim_input_errors():
    with pytest.raises(LossInputError, match="too small"):
        ssim_loss(torch.zeros(1, 3, 5, 5), torch.zeros(1, 3, 5, 5))
    with pytest.raises(LossInputError, match="odd"):
        ssim_loss(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 16), window=4)
    with pytest.raises(LossInputError, match="same shape"):
        ssim_loss(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 17))
    with pytest.raises(LossInputError, match="mask"):
        ssim_loss(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 16), torch.ones(1, 3, 16, 16))
    g = gaussian_taps(11, 1.5)
    assert sum(g) == pytest.approx(1.0) and max(g) == g[5] and g == g[::-1]
    assert g[5] / g[8] == pytest.approx(math.exp(9 / (2 * 1.5 ** 2)))


def test_filters_match_torch_convolution_and_interpolation():
    # The matrix forms equal a reflect-padded depthwise convolution and F.interpolate.
    from selfpose.losses.structural import _pyramid_up, _separable

    x = torch.rand(2, 3, 13, 10, generator=torch.Generator().manual_seed(0))
    taps = gaussian_taps(5, 1.0)
    k = torch.tensor(taps)
    want = F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), (k[:, None] * k[None]).expand(3, 1, 5, 5), groups=3)
    assert torch.allclose(_separable(x, taps), want, atol=1e-6)
    assert torch.allclose(_separable(x, taps, step=2), want[..., ::2, ::2], atol=1e-6)
    assert torch.allclose(_pyramid_up(x, (25, 19)), F.interpolate(x, size=(25, 19), mode="bilinear",
                                                                  align_corners=False), atol=1e-6)


# ---------------------------------------------------------------- image gradients
def test_image_gradients_of_a_step_edge():
    dx, dy = image_gradients(step_edge(h=4, w=6, col=3, height=0.5))
    assert dx.shape == (1, 3, 4, 5) and dy.shape == (1, 3, 3, 6)
    assert dx[0, 0, 0].tolist() == [0, 0, 0.5, 0, 0] and dy.abs().sum() == 0


@pytest.mark.parametrize("norm,height,want_per_col", [("l1", 1.0, 1.0), ("l1", 0.5, 0.5), ("l2", 0.5, 0.25)])
def test_a_shifted_edge_costs_a_known_gradient_loss(norm, height, want_per_col):
    # The edge moved one column: two differences of `height` per row differ, out of W-1; E_y = 0.
    w = 10
    pred, target = step_edge(w=w, col=6, height=height), step_edge(w=w, col=5, height=height)
    got = gradient_loss(pred, target, norm=norm).item()
    assert got == pytest.approx(2 * want_per_col / (w - 1) / 2)
    assert gradient_loss(target, target.clone(), norm=norm).item() == 0.0
    # A brightness offset has the same gradients: no cost at all (the pixel MSE would see it).
    assert gradient_loss(target + 0.3, target, norm=norm).item() == pytest.approx(0.0, abs=1e-7)


def test_gradient_loss_mask_takes_the_mean_of_the_two_pixels():
    w = 10
    pred, target = step_edge(w=w, col=6), step_edge(w=w, col=5)
    # Weight only column 5: the difference 4→5 and 5→6 each weigh 1/2 (both are the ones that differ),
    # every other horizontal difference 0. E_x = (½·1 + ½·1) / (½ + ½) = 1; vertical differences of
    # column 5 weigh 1 and are all zero: E_y = 0.
    m = torch.zeros(1, 1, 8, w)
    m[..., 5] = 1.0
    assert gradient_loss(pred, target, m).item() == pytest.approx((1.0 + 0.0) / 2)
    # Zero weight where the edge is: nothing to pay.
    far = torch.zeros(1, 8, w)
    far[..., :3] = 1.0
    assert gradient_loss(pred, target, far).item() == 0.0
    with pytest.raises(LossInputError, match="norm"):
        gradient_loss(pred, target, norm="l3")
    with pytest.raises(LossInputError, match="too small"):
        gradient_loss(torch.zeros(1, 3, 1, 5), torch.zeros(1, 3, 1, 5))


# ---------------------------------------------------------------- Laplacian pyramid
def test_laplacian_pyramid_of_a_constant_image_is_zero_except_the_coarsest_level():
    c = torch.full((2, 3, 32, 24), 0.37)
    pyr = laplacian_pyramid(c, levels=4)
    assert [tuple(p.shape[-2:]) for p in pyr] == [(32, 24), (16, 12), (8, 6), (4, 3)]
    for lvl in pyr[:-1]:
        assert lvl.abs().max().item() < 1e-6
    assert torch.allclose(pyr[-1], torch.full_like(pyr[-1], 0.37), atol=1e-6)


def test_laplacian_pyramid_reconstructs_the_image():
    x = torch.rand(1, 3, 20, 20, generator=torch.Generator().manual_seed(5))   # odd sizes along the way (5 px)
    pyr = laplacian_pyramid(x, levels=3)
    rec = pyr[-1]
    for lvl in reversed(pyr[:-1]):
        rec = lvl + F.interpolate(rec, size=lvl.shape[-2:], mode="bilinear", align_corners=False)
    assert torch.allclose(rec, x, atol=1e-6)


def test_laplacian_loss_known_values_and_masks():
    a, b = torch.full((1, 3, 16, 16), 0.2), torch.full((1, 3, 16, 16), 0.5)
    # Constant images differ only in the coarsest level, by 0.3 everywhere.
    assert laplacian_loss(a, b, levels=3).item() == pytest.approx(0.3, abs=1e-6)
    assert laplacian_loss(a, b, levels=1).item() == pytest.approx(0.3, abs=1e-6)       # plain L1
    x = smooth_images(2, seed=6)
    assert laplacian_loss(x, x.clone()).item() == 0.0
    # The fine levels see a one-pixel checkerboard the coarse mean hides.
    checker = ((torch.arange(16)[:, None] + torch.arange(16)[None]) % 2).float().expand(1, 3, 16, 16) * 0.2
    assert laplacian_loss(0.4 + checker - 0.1, torch.full((1, 3, 16, 16), 0.4), levels=3).item() > 0.05
    # A mask that is 1 everywhere is no mask; masks follow the images down the pyramid.
    y = smooth_images(2, seed=7)
    assert laplacian_loss(x, y, torch.ones(2, 32, 32)).item() == pytest.approx(laplacian_loss(x, y).item(), rel=1e-5)
    assert laplacian_loss(x, y, 2 * torch.ones(2, 1, 32, 32)).item() == pytest.approx(laplacian_loss(x, y).item(),
                                                                                       rel=1e-5)
    # Zero weight on the second item: the loss is that of the first alone, at every level.
    first_only = torch.zeros(2, 1, 32, 32)
    first_only[0] = 1.0
    assert laplacian_loss(x, y, first_only).item() == pytest.approx(laplacian_loss(x[:1], y[:1]).item(), rel=1e-5)
    # Within an image, weight on the half where the images agree: far less than the unweighted loss
    # (not 0: the coarse levels blur across the middle).
    left = torch.zeros(2, 1, 32, 32)
    left[..., :16] = 1.0
    z = y.clone()
    z[..., :16] = x[..., :16]
    assert laplacian_loss(z, x, left).item() < 0.5 * laplacian_loss(z, x).item()


def test_laplacian_input_errors():
    with pytest.raises(LossInputError, match="levels"):
        laplacian_loss(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8), levels=0)
    with pytest.raises(LossInputError, match="at least 12 px"):
        laplacian_pyramid(torch.zeros(1, 3, 8, 8), levels=4)


# ---------------------------------------------------------------- shared behaviour
@pytest.mark.parametrize("loss", [ssim_loss, gradient_loss, laplacian_loss])
def test_gradients_flow_and_a_fixed_target_is_reached(loss):
    # Detail at 8 × 8 (not 4 × 4): edges strong enough for the gradient term to steer by.
    target = F.interpolate(torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(8)), size=32,
                           mode="bilinear", align_corners=False)
    pred = torch.full_like(target, 0.5).requires_grad_()
    first = loss(pred, target)
    first.backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    opt = torch.optim.Adam([pred], lr=0.02)
    for _ in range(60):
        opt.zero_grad()
        value = loss(pred, target)
        value.backward()
        opt.step()
    assert value.item() < 0.2 * first.item()


@pytest.mark.parametrize("loss", [ssim_loss, gradient_loss, laplacian_loss])
def test_runs_in_float32_under_bf16_autocast(loss):
    x, y = smooth_images(1, seed=9), smooth_images(1, seed=10)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = loss(x, y)
    assert got.dtype == torch.float32 and got.item() == pytest.approx(loss(x, y).item(), rel=1e-5)


def test_masked_mean_by_hand():
    v = torch.arange(12.0).reshape(1, 3, 2, 2)
    m = torch.tensor([[[[1.0, 0.0], [0.0, 3.0]]]])
    want = (v[..., 0, 0].sum() + 3 * v[..., 1, 1].sum()) / (3 * 4)
    assert masked_mean(v, m).item() == pytest.approx(want.item())
    assert masked_mean(v, None).item() == pytest.approx(v.mean().item())
