"""Detector (the STN's localisation net): a small ResNet on a downsampled frame → bounded box θ.

Honari et al. §3.1: a ResNet on a low-resolution copy of the frame predicts
θ = (sx, sy, tx, ty) (see :mod:`selfpose.models.stn`); scales are bounded
through a sigmoid, centres through tanh.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from selfpose.models.backbones import IMAGENET_MEAN, IMAGENET_STD, resnet
from selfpose.models.stn import raw_from_theta, theta_from_raw


def downsample(frames: torch.Tensor, size: int) -> torch.Tensor:
    """(B, C, H, W) → (B, C, size, size), anti-aliased.

    An integer factor uses average pooling (an exact box filter, the cheapest
    anti-aliasing); any other ratio uses anti-aliased bilinear resizing.
    """
    H, W = frames.shape[-2:]
    if (H, W) == (size, size):
        return frames
    if H == W and H % size == 0:
        return F.avg_pool2d(frames, H // size)
    return F.interpolate(frames.float(), size=(size, size), mode="bilinear", align_corners=False, antialias=True)


class Detector(nn.Module):
    """Frames (B, 3, H, W) in [0, 1] → θ (B, 4) float32 within the bounds.

    Args:
        arch, width: backbone (see :func:`~selfpose.models.backbones.resnet`).
        input_size: side in pixels of the downsampled frame the backbone sees.
        scale_min, scale_max: bounds of sx, sy (fractions of the frame size).
        init_scale: box size (fraction of the frame) at initialisation; the
            box starts centred, so training starts from a sensible crop.
        coords: append two channels holding each pixel's x and y in [-1, 1]
            to the (normalised) frame ("CoordConv"), so the box, read from a
            globally pooled feature, can use absolute position directly
            instead of through the zero padding's border effects. Not in the
            paper; on a toy task (tests) both variants localise equally well,
            so this is a cheap convenience, not a measured gain.
    """

    def __init__(self, arch: str = "resnet18", width: int = 16, input_size: int = 64,
                 scale_min: float = 0.1, scale_max: float = 1.0, init_scale: float = 0.5, coords: bool = False):
        super().__init__()
        self.input_size = int(input_size)
        self.scale_min, self.scale_max = float(scale_min), float(scale_max)
        self.coords = bool(coords)
        if self.coords:
            # The backbone then sees 5 channels, so it cannot normalise them itself.
            self.backbone = resnet(arch, width=width, num_classes=None, normalize=False, in_channels=5)
            self.register_buffer("input_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
            self.register_buffer("input_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
            s = self.input_size
            ys, xs = torch.meshgrid(torch.linspace(-1, 1, s), torch.linspace(-1, 1, s), indexing="ij")
            self.register_buffer("grid", torch.stack([xs, ys])[None], persistent=False)
        else:
            self.backbone = resnet(arch, width=width, num_classes=None)
        self.head = nn.Linear(self.backbone.out_channels, 4)
        # Near-zero weights (not exactly zero, so the backbone gets gradients
        # from the first step) and a bias that decodes to a centred box of
        # size init_scale: the standard STN initialisation.
        nn.init.normal_(self.head.weight, std=1e-3)
        init = torch.tensor([[init_scale, init_scale, 0.0, 0.0]])
        with torch.no_grad():
            self.head.bias.copy_(raw_from_theta(init, self.scale_min, self.scale_max)[0])

    def raw(self, frames: torch.Tensor) -> torch.Tensor:
        """Unbounded outputs (B, 4), float32."""
        x = downsample(frames, self.input_size)
        if self.coords:
            x = (x - self.input_mean.to(x.dtype)) / self.input_std.to(x.dtype)
            x = torch.cat([x, self.grid.to(x.dtype).expand(x.shape[0], -1, -1, -1)], dim=1)
        return self.head(self.backbone.pooled(x)).float()

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        # Bounds are applied in float32: bf16 would quantise the centre to ~1/256 of the frame.
        return theta_from_raw(self.raw(frames), self.scale_min, self.scale_max)
