"""The lifter methods, by name: one registry that training, saving, evaluation and the benchmark go through.

**The network contract.** Every lifter network maps a window of encoded,
z-scored 2D frames ``(B, T, in_dim)`` to z-scored pelvis-centred 3D for the
frames it can see whole, ``(B, T − before − after, 3J)``, where
``net.context = (before, after)`` is how many input frames each output needs
before and after its own frame (``(0, 0)`` for a single-frame lifter). Windows
are cut and edge-padded by :mod:`selfpose.lifting.windows`.

**A method** (:class:`LifterMethod`) is its network builder, the
:class:`~selfpose.lifting.config.LifterConfig` keys its reported setting
changes (``defaults``), how many target frames one training window holds
(``clip``), the training stages (default: one stage of 3D MSE), what it does to
its weights after a step (``constrain``), and optionally a test-time
``correct`` hook. Register a new one with :func:`register_lifter`.

* ``martinez`` — Martinez et al., ICCV 2017 ("a simple yet effective
  baseline"): linear → 1024 (BN, ReLU, dropout 0.5), 2 residual blocks of two
  such layers, linear → 3J; every linear layer's output rows are kept within a
  max-norm ball (radius 1) after each step. Frame by frame.
* ``temporal_conv`` — VideoPose3D's dilated temporal convolutions
  (:mod:`selfpose.lifting.temporal_conv`), receptive field 27 by default.
* ``pose_machine`` — Wang, Lin et al.'s 3D pose machine (TPAMI 2019): a
  conv + LSTM 2D-to-3D transformer over clips, a 3D-to-2D projector (Ψ_C, Ψ_P),
  three training stages that also learn from 2D-only sequences, and test-time
  self-supervised correction (:mod:`selfpose.lifting.pose_machine`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from selfpose.models.heads import MartinezHead


class MartinezLifter(MartinezHead):
    """:class:`MartinezHead` applied to every frame of a window: ``(B, T, D)`` → ``(B, T, out)``.

    (A subclass, not a wrapper, so its weights keep the head's state-dict keys.)
    """

    context = (0, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        return super().forward(x.reshape(b * t, d)).view(b, t, -1)


def build_martinez(in_dim: int, out_dim: int, cfg) -> nn.Module:
    """:class:`MartinezLifter` of ``cfg.martinez`` (width × residual blocks, dropout)."""
    m = cfg.martinez
    return MartinezLifter(in_dim, out_dim, width=m.width, blocks=m.blocks, dropout=m.dropout)


def build_temporal_conv(in_dim: int, out_dim: int, cfg) -> nn.Module:
    """:class:`~selfpose.lifting.temporal_conv.TemporalConvLifter` of ``cfg.temporal_conv``."""
    from selfpose.lifting.temporal_conv import TemporalConvLifter

    t = cfg.temporal_conv
    return TemporalConvLifter(in_dim, out_dim, receptive_field=t.receptive_field, channels=t.channels,
                              dropout=t.dropout, causal=t.causal)


@torch.no_grad()
def max_norm_(module: nn.Module, max_norm: float) -> None:
    """Rescale each output row of every ``nn.Linear`` weight to L2 norm ≤ ``max_norm`` (in place)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            m.weight.copy_(torch.renorm(m.weight, p=2, dim=0, maxnorm=max_norm))


def martinez_constraints(net: nn.Module, cfg) -> None:
    """Max-norm after each step when ``cfg.martinez.max_norm`` is set."""
    if cfg.martinez.max_norm:
        max_norm_(net, float(cfg.martinez.max_norm))


@dataclass(frozen=True)
class LifterMethod:
    """One lifter method (see the module docstring).

    Attributes:
        name: its registry key (also the name of its config section, when it has one).
        build: ``(in_dim, out_dim, cfg) → nn.Module`` honouring the network contract.
        defaults: LifterConfig keys (nested mapping) of the method's reported setting.
        clip: ``cfg → int``, target frames per training window.
        stages: ``(lifter, cfg) → list[Stage]`` (:mod:`selfpose.lifting.loop`); None = one stage of 3D MSE.
        constrain: ``(net, cfg) → None`` after every optimiser step; None = nothing.
        correct: test-time correction ``(lifter, x (B, T, D) normalised, y (B, T', 3J) z-scored, cfg)
            → (y, stats dict)``; None = the method has none.
        predict_clip: ``cfg → int``, target frames per window at prediction (None: 1024).
        learns_from_2d_only: whether 2D-only training sequences (``labels_3d``) reach a loss.
    """

    name: str
    build: Callable[[int, int, object], nn.Module]
    defaults: dict = field(default_factory=dict)
    clip: Callable[[object], int] = lambda cfg: 1
    stages: Callable | None = None
    constrain: Callable[[nn.Module, object], None] | None = None
    correct: Callable | None = None
    predict_clip: Callable[[object], int] | None = None
    learns_from_2d_only: bool = False

    def __call__(self, in_dim: int, out_dim: int, cfg) -> nn.Module:
        return self.build(in_dim, out_dim, cfg)


#: method name → :class:`LifterMethod`.
LIFTERS: dict[str, LifterMethod] = {}


def register_lifter(method: LifterMethod) -> LifterMethod:
    """Add (or replace) a method in :data:`LIFTERS`; returns it."""
    LIFTERS[method.name] = method
    return method


register_lifter(LifterMethod("martinez", build_martinez, constrain=martinez_constraints))
# The CPU setting: VideoPose3D's layout at a quarter of its width (1024 → 256 channels), 8 target frames per
# window and 128 windows per batch (1024 target frames, VideoPose3D's batch): 8500 steps in 1414 s with one thread
# on a shared machine (147 ms/step alone, benchmarks/bench_lifting.py), S8 MPJPE 47.1 mm without the repeated
# smoking takes; configs/lifting_gpu.yaml has the full width.
register_lifter(LifterMethod("temporal_conv", build_temporal_conv, clip=lambda cfg: cfg.temporal_conv.clip,
                             defaults={"batch_size": 128}))



def build_pose_machine(in_dim: int, out_dim: int, cfg) -> nn.Module:
    """:class:`~selfpose.lifting.pose_machine.PoseMachineNet` of ``cfg.pose_machine``."""
    from selfpose.lifting import pose_machine

    return pose_machine.build_pose_machine(in_dim, out_dim, cfg)


def pose_machine_stages(lifter, cfg) -> list:
    from selfpose.lifting import pose_machine

    return pose_machine.pose_machine_stages(lifter, cfg)


def pose_machine_correct(lifter, x, y, cfg):
    from selfpose.lifting import pose_machine

    return pose_machine.correct(lifter, x, y, cfg)


# The CPU setting: the transformer at half the seed's width (1024 → 512: the two LSTMs cost a quarter as much;
# bf16 autocast trained 1.3-2x faster on the Xeon with AMX where this was measured; `bf16: auto` turns it off on
# CPUs without native bf16, where it is emulated and far slower), 12000 LSTM steps (70% transformer stage, 30%
# joint) + 500 cheap projector steps, and **clips of 4 frames, 256 clips per batch** (1024 frames a step, as
# before). Why short clips: the time probe (`benchmarks/lifting_time_probe.py`, docs/lifting.md) found that with
# ground-truth 2D the temporal context is worth only 1-2 mm here and that the old default (clips of 32, 32 per
# batch) lost to `martinez` in its per-frame path (57.3 mm each frame alone against 50.1, benchmark budget).
# The same frames cut into more, shorter windows train that path on more distinct instants: at the lifting
# benchmark's budget S8 MPJPE 56.0 (clips of 32) → 49.1 (8) → 46.1 mm (4). Clips of 4 against 8 was chosen on the
# held-out validation takes of the training subjects (never S8), given 30 minutes each (12000 steps each:
# best validation MPJPE 27.6 against 29.8 mm, seed 0); the S8 figures, with `martinez` given the same 30 minutes, are in
# pose_machine.py's docstring and docs/lifting.md. Shorter clips lose with detector noise (less context to average
# it over), which is why configs/lifter_video.yaml keeps its own clips of 32. Prediction windows are the training
# clip (`predict_clip` null; for clips of 8, windows of 8 / 16 / 32 / 128 frames scored 30.5 / 32.0 / 33.3 /
# 35.0 mm on the validation takes: `python benchmarks/lifting_predict_clip.py RUN --data H`). Each stage has its
# share of max_seconds (30 minutes), so a slower machine shortens every stage rather than skipping the last.
# The seed's full width is the section's own default (pose_machine.hidden=1024).
register_lifter(LifterMethod(
    "pose_machine", build_pose_machine, clip=lambda cfg: cfg.pose_machine.clip, stages=pose_machine_stages,
    correct=pose_machine_correct, learns_from_2d_only=True,
    predict_clip=lambda cfg: cfg.pose_machine.predict_clip or cfg.pose_machine.clip,
    defaults={"batch_size": 256, "steps": 12000, "eval_every": 200, "checkpoint_every": 400, "max_seconds": 1800,
              "pose_machine": {"hidden": 512, "projector_steps": 500, "clip": 4}}))

def apply_constraints(module: nn.Module, cfg) -> None:
    """What ``cfg.method`` does to its weights after each optimiser step."""
    fn = LIFTERS[cfg.method].constrain
    if fn is not None:
        fn(module, cfg)
