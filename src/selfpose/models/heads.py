"""Pose heads: features (B, D) → flattened joints (B, out_dim).

* :class:`MLPHead`: the pose stage's 2-hidden-layer MLP (2048 units, dropout
  0.5; Honari et al. Eq. 15).
* :class:`MartinezHead`: the residual MLP of Martinez et al., ICCV 2017
  ("a simple yet effective baseline"): linear → width, residual blocks of two
  (linear, BN, ReLU, dropout), linear → out. Also the weak-2D head
  ("MLP-ResNet", Eq. 13).

out_dim is 3·J for 3D joints (mm) and 2·J for 2D joints (px); reshape with
``.view(B, J, 3)`` / ``.view(B, J, 2)`` (house order, J = 17).
"""

from __future__ import annotations

import torch
from torch import nn

from selfpose.errors import SelfposeError


class HeadError(SelfposeError, ValueError):
    """Bad head settings."""


class MLPHead(nn.Module):
    """``layers`` × (linear → hidden, ReLU, dropout), then linear → out_dim."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 2048, layers: int = 2, dropout: float = 0.5):
        super().__init__()
        if min(in_dim, out_dim, hidden) < 1 or layers < 0:
            raise HeadError(f"MLPHead needs positive sizes and layers >= 0, got in={in_dim}, out={out_dim}, "
                            f"hidden={hidden}, layers={layers}")
        mods: list[nn.Module] = []
        d = in_dim
        for _ in range(layers):
            mods += [nn.Linear(d, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            d = hidden
        mods.append(nn.Linear(d, out_dim))
        self.net = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ResidualBlock(nn.Module):
    """x + 2 × (linear, BN, ReLU, dropout) — one block of Martinez et al."""

    def __init__(self, width: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class MartinezHead(nn.Module):
    """Linear → width (BN, ReLU, dropout), ``blocks`` residual blocks, linear → out_dim."""

    def __init__(self, in_dim: int, out_dim: int, width: int = 1024, blocks: int = 3, dropout: float = 0.5):
        super().__init__()
        if min(in_dim, out_dim, width) < 1 or blocks < 0:
            raise HeadError(f"MartinezHead needs positive sizes and blocks >= 0, got in={in_dim}, "
                            f"out={out_dim}, width={width}, blocks={blocks}")
        self.inp = nn.Sequential(nn.Linear(in_dim, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True),
                                 nn.Dropout(dropout))
        self.blocks = nn.Sequential(*[ResidualBlock(width, dropout) for _ in range(blocks)])
        self.out = nn.Linear(width, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.blocks(self.inp(x)))


#: head kind name → class, for configs.
HEADS = {"mlp": MLPHead, "martinez": MartinezHead}


def make_head(kind: str, in_dim: int, out_dim: int, **kwargs) -> nn.Module:
    """Build a head by name ("mlp" or "martinez"); ``kwargs`` go to its constructor."""
    if kind not in HEADS:
        raise HeadError(f"unknown pose head {kind!r}; choose one of {', '.join(HEADS)}")
    return HEADS[kind](in_dim, out_dim, **kwargs)
