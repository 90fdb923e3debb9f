"""Decoder: latent (v, i) → RGB crop P̂ and foreground mask M, both c×c in [0, 1].

Honari et al. §3.1 (docs/design.md §1.1 item 3): FC layers with ReLU + dropout
build low-resolution feature maps (c/8 × c/8); three blocks of (bilinear ×2
upsampling + 3 convs with BN/ReLU) grow them to c×c; a last conv gives 4
channels → sigmoid RGB (3) and sigmoid mask (1).

Channels halve at every upsampling (``channels`` → ``channels/2`` → ``channels/4``
→ ``channels/8``, at least 8): each block then costs about the same, instead
of the c×c block costing 16× the first one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from selfpose.errors import SelfposeError


class DecoderError(SelfposeError, ValueError):
    """Bad decoder settings or inputs."""


def _conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class UpBlock(nn.Module):
    """Bilinear ×2 upsampling, then ``convs`` × (3×3 conv, BN, ReLU)."""

    def __init__(self, cin: int, cout: int, convs: int = 3):
        super().__init__()
        layers = _conv_bn_relu(cin, cout)
        for _ in range(convs - 1):
            layers += _conv_bn_relu(cout, cout)
        self.convs = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.convs(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False))


class Decoder(nn.Module):
    """(B, in_dim) latent → (rgb (B, 3, c, c), mask (B, 1, c, c)), float32 in [0, 1].

    Args:
        in_dim: latent size (v_dim + i_dim).
        crop_size: c, a multiple of 8.
        channels: channels of the c/8 × c/8 maps built by the FC layers.
        dropout: dropout after each FC layer.
        hidden: width of the hidden FC layer.
        convs_per_block: 3 in the paper.
    """

    def __init__(self, in_dim: int, crop_size: int = 64, channels: int = 64, dropout: float = 0.3,
                 hidden: int = 512, convs_per_block: int = 3):
        super().__init__()
        if crop_size % 8 or crop_size < 8:
            raise DecoderError(f"crop_size must be a positive multiple of 8 (three ×2 upsamplings), got {crop_size}")
        if channels < 1 or hidden < 1 or in_dim < 1:
            raise DecoderError(f"in_dim, channels and hidden must be positive, got {in_dim}, {channels}, {hidden}")
        self.in_dim, self.crop_size, self.channels = int(in_dim), int(crop_size), int(channels)
        self.low = crop_size // 8
        self.fc = nn.Sequential(
            nn.Linear(in_dim, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden, channels * self.low * self.low), nn.ReLU(inplace=True), nn.Dropout(dropout))
        widths = [channels] + [max(channels // 2 ** (k + 1), 8) for k in range(3)]
        self.blocks = nn.Sequential(*[UpBlock(widths[k], widths[k + 1], convs_per_block) for k in range(3)])
        self.out = nn.Conv2d(widths[-1], 4, 3, padding=1)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if z.ndim != 2 or z.shape[1] != self.in_dim:
            raise DecoderError(f"latent must have shape (B, {self.in_dim}), got {tuple(z.shape)}")
        x = self.fc(z).view(z.shape[0], self.channels, self.low, self.low)
        if self.out.weight.is_contiguous(memory_format=torch.channels_last):
            # Keep the model's memory format from the first conv on (the FC output is NCHW).
            x = x.contiguous(memory_format=torch.channels_last)
        # Sigmoid in float32: the reconstruction loss compares these with frames.
        y = torch.sigmoid(self.out(self.blocks(x)).float())
        return y[:, :3], y[:, 3:]
