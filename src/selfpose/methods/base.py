"""The interface every self-supervised method implements: pretraining and every stage after it.

A :class:`Method` is an ``nn.Module`` that owns its model(s) and losses. Nothing
outside the method touches its networks: the training loop, the pose stage
(``fit-pose``, ``evaluate``), ``predict``, ``analyze`` and the benchmark all go
through these methods only, so any registered method
(:func:`selfpose.methods.register_method`) runs through all of them.

Pretraining (:func:`selfpose.training.loop.train`):

- ``training_step(batch, step)`` → ``(loss, logs)``; called through
  ``forward`` so that DistributedDataParallel sees the forward pass;
- ``sampler_kind(stage)`` → the sampler name (:func:`selfpose.data.samplers.make_sampler`)
  that feeds stage 1 / stage 2 (default: ``sampler_name``, set by the registry);
- ``pictures(batch)`` → images for the picture log (default: none);
- ``configure_optimizer(optim_cfg)`` (a default is given).

After pretraining (frames are uint8 or float [0, 1] ``(B, 3, H, W)`` at the
size they are stored at; the method resizes them itself):

- ``pose_features(frames)`` → ``(B, D)`` frozen features (the one thing a
  method must give); ``feature_dim`` = ``D``;
- ``encode_for_pose(frames)`` → ``{"features": (B, D), "boxes": (B, 4)}`` —
  ``boxes`` (px of the given frames, x0 y0 x1 y1) only when ``has_detector``;
  a method that reads the person where the data say it is (``reads_boxes``)
  is called ``encode_for_pose(frames, boxes)`` with the stored boxes instead;
- ``pose_input(frames, background)``: the frames as the method read them
  while pretraining (e.g. the person masked with the estimated background),
  applied by the pose stage before anything else when ``reads_background``;
- ``codes(frames)`` → named codes for the analyses (``code_names()``: ``v``
  always; ``i`` when the method has an appearance code);
- ``input_size``: the square side ``predict`` letterboxes videos to;
- optional drawings, listed by ``drawings()``: ``"masks"``
  (:meth:`Method.draw_masks`, the overlay of ``predict``) and ``"transfers"``
  (:meth:`Method.draw_transfers`, the pose/appearance grid of ``analyze``). A
  method that cannot draw one raises :class:`MethodError` saying so.

The loop sets ``method.stage`` (1 or 2) through :meth:`Method.set_stage`
before each stage, so a two-stage method can switch losses on.
"""

from __future__ import annotations

import abc

import numpy as np
import torch
from torch import nn

from selfpose.errors import SelfposeError

#: What a method may be able to draw (:meth:`Method.drawings`).
DRAWINGS = ("masks", "transfers")


class MethodError(SelfposeError, ValueError):
    """A method cannot do what was asked (e.g. draw transfers), or is registered wrongly."""


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
    #: The sampler this method trains on (``register_method(sampler=...)`` sets it); see :meth:`sampler_kind`.
    sampler_name: str | None = None

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

    def pictures(self, batch: dict) -> dict[str, np.ndarray]:
        """Named uint8 (H, W, 3) RGB images showing what the model does on ``batch`` (default: none).

        Called under ``torch.no_grad()`` in eval mode with a fixed batch, so
        that pictures of successive steps are comparable.
        """
        return {}

    def sampler_kind(self, stage: int) -> str:
        """Sampler name (:func:`selfpose.data.samplers.make_sampler`) for ``stage`` (1 or 2).

        Default: ``sampler_name`` (set by ``register_method(sampler=...)``); a
        method whose stages use different samplers overrides this.
        """
        if not self.sampler_name:
            raise MethodError(f"method {self.name!r} names no sampler: register it with sampler=NAME "
                              "or override sampler_kind()")
        return self.sampler_name

    # -- after pretraining: the pose stage, evaluate, predict, analyze, the benchmark -------------
    @abc.abstractmethod
    def pose_features(self, frames: torch.Tensor) -> torch.Tensor:
        """Frozen per-frame features for the pose stage.

        Args:
            frames: ``(B, 3, H, W)`` uint8, or float32 RGB in [0, 1], at any size
                (the method resizes them itself, e.g. with :meth:`prepare_frames`).

        Returns:
            ``(B, D)`` features (``D`` = :attr:`feature_dim`).
        """

    @property
    def feature_dim(self) -> int:
        """``D`` of :meth:`pose_features` (a method overrides this property)."""
        raise MethodError(f"method {self.name!r} does not say its feature size: override the feature_dim property")

    @property
    def has_detector(self) -> bool:
        """True when :meth:`encode_for_pose` gives person boxes."""
        return False

    @property
    def reads_boxes(self) -> bool:
        """True when the method reads the person at given boxes: the pose stage then calls
        ``encode_for_pose(frames, boxes)`` with the stored person boxes ``(B, 4)`` px (and data without
        boxes, such as a raw video, cannot be encoded)."""
        return False

    @property
    def reads_background(self) -> bool:
        """True when the method's pose features read the frames through :meth:`pose_input`, which needs the
        estimated background of each frame: the pose stage then reads it from the data (``background`` /
        ``backgrounds``) and hands both over, before colour jitter or anything else touches the frames."""
        return False

    def pose_input(self, frames: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
        """Frames ``(B, 3, H, W)`` float in [0, 1] and their estimated backgrounds (same shape and range) → the
        frames as the method read them while pretraining (same shape). Default: the frames unchanged."""
        return frames

    @property
    def input_size(self) -> int | None:
        """Side (px) of the square frames the method works at; ``predict`` letterboxes videos to it (None: 128)."""
        return None

    def prepare_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 or float frames ``(B, 3, H, W)`` → float32 in [0, 1], resized to ``input_size`` when set."""
        x = frames.float().div(255.0) if frames.dtype == torch.uint8 else frames.float()
        s = self.input_size
        if s is not None and tuple(x.shape[-2:]) != (s, s):
            x = nn.functional.interpolate(x, size=(s, s), mode="bilinear", align_corners=False, antialias=True)
        return x

    def encode_for_pose(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"features": (B, D) float32, "boxes": (B, 4) px of the given frames}`` (``boxes`` with a detector only).

        Default: :meth:`pose_features` and no boxes. A method with a detector
        overrides this; it may add ``"theta"`` (``(B, 4)`` STN box sx, sy, tx, ty).
        """
        return {"features": self.pose_features(frames).float()}

    # -- fine-tuning (``fit-pose --finetune``, :mod:`selfpose.pose.finetune`) ----------------------
    def finetune_backbone(self) -> nn.Module:
        """The house ResNet the pose features come from: fine-tuning freezes its stem and first stages."""
        raise MethodError(f"method {self.name!r} cannot be fine-tuned: it does not say which backbone its "
                          "features come from (override finetune_backbone())")

    def finetune_frozen(self) -> list[nn.Module]:
        """Modules besides the backbone's first stages that fine-tuning keeps frozen (default: none)."""
        return []

    def code_names(self) -> tuple[str, ...]:
        """The codes :meth:`codes` gives: ``("v",)``, or ``("v", "i")`` for a method with an appearance code."""
        return ("v",)

    def codes(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        """Named ``(B, ·)`` codes for the analyses (:meth:`code_names`): ``v`` = pose features, ``i`` = appearance."""
        return {"v": self.pose_features(frames)}

    def drawings(self) -> frozenset[str]:
        """What this method can draw, among :data:`DRAWINGS` (default: nothing)."""
        return frozenset()

    def draw_masks(self, frames: torch.Tensor, backgrounds: torch.Tensor, encoded: dict | None = None) -> torch.Tensor:
        """``(B, H, W)`` float person masks in [0, 1] at the frames' size (``"masks"`` in :meth:`drawings`).

        ``backgrounds``: uint8 ``(B, 3, H, W)`` background estimates of the frames.
        ``encoded``: what :meth:`encode_for_pose` returned under ``"encoded"`` for the
        same frames, if anything (saves a second encoder pass); may be ignored.
        """
        raise MethodError(f"method {self.name!r} cannot draw masks (it has no decoder)")

    def draw_transfers(self, frames: torch.Tensor, labels: list[str], cell_px: int = 112) -> np.ndarray:
        """Pose/appearance transfer grid, uint8 ``(H, W, 3)`` (``"transfers"`` in :meth:`drawings`).

        Cell ``(r, c)`` draws the pose of frame ``r`` with the appearance of frame ``c``.
        """
        raise MethodError(f"method {self.name!r} cannot draw transfers (it needs separate pose and appearance "
                          "codes and a decoder)")

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


def as_method(obj) -> Method:
    """``obj`` itself when it is a :class:`Method`; a bare ``TemporalModel`` wrapped in the method interface.

    Lets library callers keep passing a model to ``predict_video``/``analyze``;
    everything after that goes through the interface.
    """
    if isinstance(obj, Method):
        return obj
    from selfpose.models.temporal import TemporalModel

    if isinstance(obj, TemporalModel):
        from selfpose.methods.temporal import TemporalModelMethod

        return TemporalModelMethod(obj)
    raise MethodError(f"expected a selfpose Method (or a TemporalModel), got a {type(obj).__name__}")
