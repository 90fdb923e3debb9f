"""Detector: bounded θ, centred initial box, downsampling."""

from __future__ import annotations

import torch

from selfpose.models.detector import Detector, downsample


def test_initial_box_is_centred_half_frame_and_bounded():
    torch.manual_seed(0)
    det = Detector(width=8, input_size=32, scale_min=0.1, scale_max=1.0, init_scale=0.5).eval()
    theta = det(torch.rand(4, 3, 64, 64))
    assert theta.shape == (4, 4) and theta.dtype == torch.float32
    torch.testing.assert_close(theta, torch.tensor([[0.5, 0.5, 0.0, 0.0]]).expand(4, 4), atol=0.02, rtol=0)


def test_outputs_stay_within_bounds_for_any_weights():
    det = Detector(width=8, input_size=32, scale_min=0.2, scale_max=0.8)
    with torch.no_grad():
        det.head.weight.normal_(std=10.0)
    theta = det(torch.rand(8, 3, 64, 64))
    assert theta[:, :2].min() >= 0.2 and theta[:, :2].max() <= 0.8 and theta[:, 2:].abs().max() <= 1
    assert theta[:, 2].std() > 0.01  # the boxes do depend on the image


def test_downsample_shapes_and_box_filter():
    x = torch.rand(2, 3, 128, 128)
    torch.testing.assert_close(downsample(x, 64), torch.nn.functional.avg_pool2d(x, 2))
    assert downsample(x, 48).shape == (2, 3, 48, 48)
    assert downsample(x, 128) is x


def test_gradients_reach_the_backbone():
    det = Detector(width=8, input_size=32)
    det(torch.rand(2, 3, 64, 64)).sum().backward()
    assert det.head.bias.grad.abs().sum() > 0
    assert det.backbone.conv1.weight.grad.abs().sum() > 0


def _blob_frames(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Grey frames with one bright 8×8 square at a random place; returns frames and the square's centre in [-1, 1]."""
    frames = torch.full((n, 3, 32, 32), 0.4)
    xy = torch.randint(4, 28, (n, 2), generator=gen)
    for k, (x, y) in enumerate(xy.tolist()):
        frames[k, :, y - 4:y + 4, x - 4:x + 4] = 0.9
    return frames, xy.float() / 32 * 2 - 1


def test_position_is_learnable_with_and_without_coordinate_channels():
    """Regressing where a square is: both detectors learn it (zero padding lets a CNN see absolute position)."""
    errors = {}
    for coords in (False, True):
        torch.manual_seed(0)
        gen = torch.Generator().manual_seed(0)
        det = Detector(width=8, input_size=32, coords=coords)
        assert det.backbone.conv1.weight.shape[1] == (5 if coords else 3)
        opt = torch.optim.Adam(det.parameters(), lr=3e-3)
        for _ in range(150):
            x, c = _blob_frames(32, gen)
            loss = (det(x)[:, 2:] - c).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        det.eval()
        x, c = _blob_frames(256, torch.Generator().manual_seed(1))
        with torch.no_grad():
            errors[coords] = (det(x)[:, 2:] - c).abs().mean().item()
    # Chance (predicting the centre) is ≈ 0.38 here; measured ≈ 0.04 for both.
    assert errors[True] < 0.1 and errors[False] < 0.1, errors
