"""The interface every self-supervised method implements for the training loop.

A :class:`Method` is an ``nn.Module`` that owns its model(s) and losses and
turns one batch (see :mod:`selfpose.data.loader`) into a scalar loss. The
loop (:func:`selfpose.training.loop.train`) knows nothing else about it:

- ``training_step(batch, step)`` → ``(loss, logs)``; called through
  ``forward`` so that DistributedDataParallel sees the forward pass;
- ``sampler_kind(stage)`` → which sampler feeds stage 1 / stage 2;
- ``pictures(batch)`` → images for the picture log;
- ``pose_features(frames)`` → frozen features for the pose stage;
- ``configure_optimizer(optim_cfg)`` (a default is given).

The loop sets ``method.stage`` (1 or 2) through :meth:`Method.set_stage`
before each stage, so a two-stage method can switch losses on.
"""

from __future__ import annotations

import abc

import numpy as np
import torch
from torch import nn


class Method(nn.Module, metaclass=abc.ABCMeta):
    """Base class of self-supervised methods (see the module docstring).

    Attributes:
        name: registry name of the method.
        stage: the current training stage (1, or 2 after ``train.stage2_step``).
        unused_parameters: set True in a method whose step leaves some
            trainable parameters without gradient (e.g. a head used only in
            stage 2): multi-process training then tells DDP to look for them.
    """

    name: str = "method"
    unused_parameters: bool = False

    def __init__(self) -> None:
        super().__init__()
        self.stage = 1

    def forward(self, batch: dict, step: int):
        """Same as :meth:`training_step` (so that a DDP wrapper can call it)."""
        return self.training_step(batch, step)

    @abc.abstractmethod
    def training_step(self, batch: dict, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        """Loss of one batch.

        Args:
            batch: a loader batch (uint8 ``frames`` (N, K, 3, H, W), ``background``, sampler extras...).
            step: index of this optimiser step (0-based, over the whole run).

        Returns:
            The scalar total loss (a tensor with grad) and named scalar values
            to log (floats: the loss terms, statistics...).
        """

    @abc.abstractmethod
    def pictures(self, batch: dict) -> dict[str, np.ndarray]:
        """Named uint8 (H, W, 3) RGB images showing what the model does on ``batch``.

        Called under ``torch.no_grad()`` in eval mode with a fixed batch, so
        that pictures of successive steps are comparable.
        """

    @abc.abstractmethod
    def sampler_kind(self, stage: int) -> str:
        """Sampler name (:func:`selfpose.data.samplers.make_sampler`) for ``stage`` (1 or 2)."""

    @abc.abstractmethod
    def pose_features(self, frames: torch.Tensor) -> torch.Tensor:
        """Frozen per-frame features for the pose stage.

        Args:
            frames: (B, 3, H, W) float32 RGB in [0, 1].

        Returns:
            (B, D) float32 features.
        """

    def batch_labels(self, stage: int) -> str | list[str]:
        """Labels the loader reads for ``stage`` (:data:`selfpose.data.loader.ALL_LABELS`).

        ``"auto"`` (the default) reads every stored label; a method that names
        only what it uses (e.g. ``["background"]``) reads several times fewer
        bytes per batch — and cannot touch ``true_background`` by mistake.
        """
        return "auto"

    def set_stage(self, stage: int) -> None:
        """Called by the loop when a stage starts (also on resume)."""
        self.stage = int(stage)

    def configure_optimizer(self, optim_cfg) -> torch.optim.Optimizer:
        """AdamW/Adam over the trainable parameters (``requires_grad``): the shared
        :func:`selfpose.training.toolkit.build_optimizer` (weight decay on weight
        matrices and conv kernels only; each group records its ``base_lr``, which
        the loop's schedule scales)."""
        from selfpose.training.toolkit import build_optimizer

        opt = build_optimizer(self.parameters(), optim_cfg)
        for g in opt.param_groups:
            g["base_lr"] = optim_cfg.lr
        return opt
