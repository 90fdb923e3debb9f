"""The lifter networks, by name: encoded 2D ``(B, in_dim)`` → pelvis-centred 3D ``(B, 3J)`` (z-scored).

One registry (:data:`LIFTERS`) so that further methods (``temporal_conv``,
``pose_machine``) plug into the same training, saving and evaluation:
a builder takes ``(in_dim, out_dim, cfg)`` and returns an ``nn.Module``;
:func:`apply_constraints` runs after every optimiser step.

* ``martinez`` — Martinez et al., ICCV 2017 ("a simple yet effective
  baseline"): linear → 1024 (BN, ReLU, dropout 0.5), 2 residual blocks of two
  such layers, linear → 3J; the weights of every linear layer are kept within
  a max-norm ball after each step (the paper's "max-norm constraint", radius 1:
  each output unit's incoming weight vector has L2 norm ≤ ``max_norm``).
  It is :class:`selfpose.models.heads.MartinezHead` plus that constraint.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from selfpose.models.heads import MartinezHead


def build_martinez(in_dim: int, out_dim: int, cfg) -> nn.Module:
    """:class:`MartinezHead` of ``cfg.width`` × ``cfg.blocks`` residual blocks, dropout ``cfg.dropout``."""
    return MartinezHead(in_dim, out_dim, width=cfg.width, blocks=cfg.blocks, dropout=cfg.dropout)


#: method name → builder ``(in_dim, out_dim, cfg) → nn.Module``.
LIFTERS: dict[str, Callable[[int, int, object], nn.Module]] = {"martinez": build_martinez}


@torch.no_grad()
def max_norm_(module: nn.Module, max_norm: float) -> None:
    """Rescale each output row of every ``nn.Linear`` weight to L2 norm ≤ ``max_norm`` (in place)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            m.weight.copy_(torch.renorm(m.weight, p=2, dim=0, maxnorm=max_norm))


def apply_constraints(module: nn.Module, cfg) -> None:
    """What a method does to its weights after each optimiser step (``martinez``: max-norm when set)."""
    if getattr(cfg, "max_norm", None):
        max_norm_(module, float(cfg.max_norm))
