"""STN box parametrisation, crop and inverse warp."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from selfpose.models.stn import (
    STNError,
    affine_matrix,
    box_px_to_theta,
    crop,
    full_frame_theta,
    iou,
    raw_from_theta,
    theta_from_raw,
    theta_to_box_px,
    uncrop,
)


def _smooth_frames(B=2, H=96, W=128):
    """Smooth colour ramps + low-frequency waves (bilinear resampling is near-exact on them)."""
    y, x = torch.meshgrid(torch.linspace(0, 1, H), torch.linspace(0, 1, W), indexing="ij")
    chans = [x, y, 0.5 + 0.4 * torch.sin(3 * x + 2 * y)]
    f = torch.stack(chans)[None].repeat(B, 1, 1, 1)
    return f * torch.linspace(0.6, 1.0, B).view(B, 1, 1, 1)


def test_theta_from_raw_bounds_and_inverse():
    raw = torch.randn(100, 4) * 5
    th = theta_from_raw(raw, 0.2, 0.9)
    assert th[:, :2].min() >= 0.2 and th[:, :2].max() <= 0.9
    assert th[:, 2:].abs().max() <= 1
    moderate = torch.randn(20, 4)
    torch.testing.assert_close(raw_from_theta(theta_from_raw(moderate, 0.1, 1.0), 0.1, 1.0), moderate,
                               atol=1e-4, rtol=1e-4)
    with pytest.raises(STNError, match=r"\(B, 4\)"):
        theta_from_raw(torch.zeros(3, 3))


def test_affine_matrix_layout():
    m = affine_matrix(torch.tensor([[0.5, 0.25, 0.1, -0.2]]))
    torch.testing.assert_close(m, torch.tensor([[[0.5, 0.0, 0.1], [0.0, 0.25, -0.2]]]))


def test_crop_of_pixel_aligned_box_is_exact():
    frames = torch.rand(1, 3, 128, 128)
    box = torch.tensor([[16.0, 40.0, 80.0, 104.0]])  # 64×64 px at integer offsets
    c = crop(frames, box_px_to_theta(box, 128, 128), 64)
    torch.testing.assert_close(c, frames[:, :, 40:104, 16:80])


def test_full_frame_theta_crops_the_whole_frame():
    frames = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(crop(frames, full_frame_theta(2), 32), frames)


def test_crop_then_uncrop_reproduces_the_frame_inside_the_box():
    H, W = 96, 128
    frames = _smooth_frames(H=H, W=W)
    box = torch.tensor([[30.3, 20.7, 90.1, 80.2], [10.0, 5.5, 70.0, 90.0]])
    theta = box_px_to_theta(box, W, H)
    back = uncrop(crop(frames, theta, 64), theta, (H, W))
    for b in range(2):
        x0, y0, x1, y1 = box[b].tolist()
        inner = (slice(None), slice(int(y0) + 3, int(y1) - 3), slice(int(x0) + 3, int(x1) - 3))
        err = (back[b][inner] - frames[b][inner]).abs().max()
        assert err < 0.01
        outside = torch.ones(H, W, dtype=torch.bool)
        outside[int(y0) - 1:int(y1) + 2, int(x0) - 1:int(x1) + 2] = False
        assert back[b][:, outside].abs().max() == 0  # zeros outside the box


def test_box_theta_round_trip_torch_and_numpy():
    rng = np.random.default_rng(0)
    xy0 = rng.uniform(0, 60, (10, 2))
    box = np.concatenate([xy0, xy0 + rng.uniform(5, 60, (10, 2))], 1).astype(np.float64)
    th = box_px_to_theta(box, 128, 96)
    assert isinstance(th, np.ndarray) and th.shape == (10, 4)
    np.testing.assert_allclose(theta_to_box_px(th, 128, 96), box, atol=1e-9)
    tb = torch.from_numpy(box)
    torch.testing.assert_close(theta_to_box_px(box_px_to_theta(tb, 128, 96), 128, 96), tb)
    # Full frame θ is the full frame box.
    np.testing.assert_allclose(theta_to_box_px(np.array([1.0, 1.0, 0.0, 0.0]), 128, 96), [0, 0, 128, 96])


def test_iou():
    a = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 10.0]])
    b = torch.tensor([[0.0, 0.0, 10.0, 10.0], [5.0, 0.0, 15.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    torch.testing.assert_close(iou(a, b), torch.tensor([1.0, 1 / 3, 0.0]))
    np.testing.assert_allclose(iou(a.numpy(), b.numpy()), [1.0, 1 / 3, 0.0], rtol=1e-6)


def test_gradients_reach_theta_through_crop_and_uncrop():
    frames = _smooth_frames(B=1, H=64, W=64)
    theta = torch.tensor([[0.5, 0.6, 0.1, -0.1]], requires_grad=True)
    crop(frames, theta, 32).mean().backward()
    assert theta.grad is not None and theta.grad.abs().sum() > 0
    theta.grad = None
    crops = torch.rand(1, 3, 32, 32, requires_grad=True)
    uncrop(crops, theta, (64, 64)).sum().backward()
    assert theta.grad.abs()[0, :2].sum() > 0  # box size changes the covered area
    assert crops.grad.abs().sum() > 0


def test_warps_run_in_float32_under_autocast():
    frames = torch.rand(2, 3, 32, 32)
    theta = torch.tensor([[0.5, 0.5, 0.0, 0.0]] * 2, dtype=torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        c = crop(frames, theta, 16)
        u = uncrop(c.bfloat16(), theta, (32, 32))
    assert c.dtype == torch.float32 and u.dtype == torch.float32


def test_shape_errors():
    with pytest.raises(STNError, match="batch size"):
        crop(torch.rand(2, 3, 8, 8), full_frame_theta(3), 4)
    with pytest.raises(STNError, match=r"\(B, C, H, W\)"):
        crop(torch.rand(3, 8, 8), full_frame_theta(1), 4)
