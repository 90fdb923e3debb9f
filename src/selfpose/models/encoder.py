"""Encoder: one shared ResNet backbone on the c×c crop, two linear output layers.

Honari et al. §3.1: the time-variant encoder E_tv (→ v) and the
time-invariant encoder E_ti (→ i) share the backbone and differ only in their
output layer. With ``split=False`` there is one latent z (size v_dim + i_dim)
returned as ``v`` and no i head.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from selfpose.models.backbones import load_torchvision_state_dict, resnet


class Encoder(nn.Module):
    """Crops (B, 3, c, c) in [0, 1] → (v (B, v_dim), i (B, i_dim)) or (z (B, v_dim + i_dim), None).

    Args:
        arch, width: backbone (see :func:`~selfpose.models.backbones.resnet`).
        v_dim, i_dim: sizes of the time-variant and time-invariant codes.
        split: two heads (v, i) or one latent z.
        pretrained: optional path of a torchvision-format state dict for the
            backbone (needs width 64; never downloaded).
    """

    def __init__(self, arch: str = "resnet18", width: int = 32, v_dim: int = 128, i_dim: int = 128,
                 split: bool = True, pretrained: str | Path | None = None):
        super().__init__()
        self.split = bool(split)
        self.backbone = resnet(arch, width=width, num_classes=None)
        if pretrained:
            load_torchvision_state_dict(self.backbone, pretrained)
        c = self.backbone.out_channels
        self.v_head = nn.Linear(c, v_dim if self.split else v_dim + i_dim)
        self.i_head = nn.Linear(c, i_dim) if self.split else None

    def features(self, crops: torch.Tensor) -> torch.Tensor:
        """Pooled backbone feature (B, backbone.out_channels)."""
        return self.backbone.pooled(crops)

    def forward(self, crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        f = self.features(crops)
        return self.v_head(f), (self.i_head(f) if self.i_head is not None else None)
