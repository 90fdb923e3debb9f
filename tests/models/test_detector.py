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
