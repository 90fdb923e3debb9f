"""Method-agnostic training configuration: optimiser and loop settings.

A run's full config is assembled elsewhere (e.g. ``PretrainConfig`` =
``{data, model, loss, sampler, optim, train}``); the loop only needs the two
sections defined here and reads them as ``cfg.optim`` and ``cfg.train``.
:class:`RunConfig` is the smallest such config (used by tests and examples).
Both are strict (:mod:`selfpose.config`): unknown keys are errors.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from selfpose.config import ConfigError, added_field, neutral_keys, to_dict


@dataclass
class OptimConfig:
    """Optimiser and learning-rate schedule.

    Attributes:
        optimizer: ``adamw`` (decoupled weight decay) or ``adam`` (L2 added to the gradient).
        lr: peak learning rate.
        weight_decay: applied to weight matrices/kernels only (``ndim ≥ 2``), never
            to biases and normalisation scales (see ``Method.configure_optimizer``).
        betas: Adam's moment decay rates.
        warmup_steps: linear warm-up from ``lr / warmup_steps`` to ``lr``.
        schedule: after warm-up, ``cosine`` decays to ``min_lr_ratio · lr`` at the
            last step; ``constant`` keeps ``lr``.
        min_lr_ratio: floor of the cosine schedule as a fraction of ``lr``.
        grad_clip: clip the global gradient L2 norm to this value; ``None`` or 0: off.
    """

    optimizer: Literal["adamw", "adam"] = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 0
    schedule: Literal["cosine", "constant"] = "cosine"
    min_lr_ratio: float = 0.0
    grad_clip: float | None = None

    def __post_init__(self) -> None:
        # Written so that NaN fails too (NaN <= 0 is False); configs built in code skip config._coerce.
        for name in ("lr", "weight_decay", "min_lr_ratio", *(("grad_clip",) if self.grad_clip is not None else ())):
            if not math.isfinite(getattr(self, name)):
                raise ConfigError(f"optim.{name} must be a finite number, got {getattr(self, name)}")
        if not all(math.isfinite(b) for b in self.betas):
            raise ConfigError(f"optim.betas must be finite numbers, got {self.betas}")
        if not self.lr > 0:
            raise ConfigError(f"optim.lr must be > 0, got {self.lr}")
        if self.weight_decay < 0:
            raise ConfigError(f"optim.weight_decay must be ≥ 0, got {self.weight_decay}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"optim.betas must be two numbers in [0, 1), got {self.betas}")
        if self.warmup_steps < 0:
            raise ConfigError(f"optim.warmup_steps must be ≥ 0, got {self.warmup_steps}")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ConfigError(f"optim.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if self.grad_clip is not None and self.grad_clip < 0:
            raise ConfigError(f"optim.grad_clip must be ≥ 0 (or null to disable), got {self.grad_clip}")


@dataclass
class TrainConfig:
    """The training loop.

    Attributes:
        steps: optimiser steps of the whole run (all stages).
        batch_size: tuples per step *per process* (the effective batch is
            ``batch_size × processes``).
        num_workers: data-loader processes per training process (0: load in
            the training process). Batches are seeded by step, so this does
            not change the data.
        seed: seeds the model's initialisation, the tuples drawn for every
            step, and the per-process augmentation randomness.
        precision: ``fp32``; ``bf16`` (autocast on CPU: matmuls/convs in
            bfloat16, weights and optimiser in float32); ``auto``: bf16 when
            the CPU has native bf16 instructions (AVX512-BF16 or AMX), else
            fp32 (see :func:`selfpose.training.precision.bf16_supported`).
        channels_last: keep conv weights (and so activations) in NHWC memory
            layout. On the 2-core CPU profile (TemporalMethod, 8 DSL tuples of
            4 frames at 128²) a step takes 0.66 s in fp32, 0.55 s channels-last,
            0.43 s bf16 and 0.36 s bf16 + channels-last, hence both defaults.
        processes: data-parallel training processes on this machine (DDP over
            gloo); 1: no torch.distributed at all.
        threads: torch intra-op threads per process; ``None``: the machine's
            cores divided by ``processes``.
        checkpoint_every: save a checkpoint every this many steps (and always at the end).
        keep_checkpoints: keep the newest this many checkpoints; 0: keep all.
        log_every: write scalars (CSV + TensorBoard), averaged over the
            window, every this many steps.
        picture_every: write picture logs every this many steps; 0: only at the end.
        pictures: tuples of the fixed picture batch shown in picture logs.
        stage2_step: step at which two-stage methods switch to stage 2 (the
            loader is rebuilt with ``method.sampler_kind(2)``); ``None``: one stage.
        device: where the method trains: ``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (the GPU when
            torch sees one; :mod:`selfpose.training.device`). Batches are loaded on the CPU and
            moved there; ``precision: auto`` then means bf16 on GPUs that have it (Ampere and newer).
            A GPU run is one process (``processes: 1``).
    """

    steps: int = 2000
    batch_size: int = 8
    num_workers: int = 0
    seed: int = 0
    precision: Literal["fp32", "bf16", "auto"] = "auto"
    channels_last: bool = True
    processes: int = 1
    threads: int | None = None
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    log_every: int = 10
    picture_every: int = 250
    pictures: int = 4
    stage2_step: int | None = None
    device: str = added_field("cpu")   # runs saved before it existed keep their hash

    def __post_init__(self) -> None:
        from selfpose.training.device import check_device_name

        check_device_name(self.device, "train.device")
        if self.device.startswith("cuda") and self.processes > 1:
            raise ConfigError(f"train.processes={self.processes} is CPU data-parallel training; with "
                              f"train.device={self.device} use processes: 1 (one GPU process)")
        for name in ("steps", "batch_size", "processes", "checkpoint_every", "log_every", "pictures"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be ≥ 1, got {getattr(self, name)}")
        for name in ("num_workers", "keep_checkpoints", "picture_every", "seed"):
            if getattr(self, name) < 0:
                raise ConfigError(f"train.{name} must be ≥ 0, got {getattr(self, name)}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"train.threads must be ≥ 1 (or null for automatic), got {self.threads}")
        if self.stage2_step is not None and not 0 < self.stage2_step < self.steps:
            raise ConfigError(f"train.stage2_step must be in (0, steps={self.steps}) or null for a single "
                              f"stage, got {self.stage2_step}")

    def stage_at(self, step: int) -> int:
        """Stage (1 or 2) of the step that starts after ``step`` completed steps."""
        return 2 if self.stage2_step is not None and step >= self.stage2_step else 1

    def stage_bounds(self, stage: int) -> tuple[int, int]:
        """``[first, end)`` steps of ``stage``."""
        if self.stage2_step is None:
            return 0, self.steps
        return (0, self.stage2_step) if stage == 1 else (self.stage2_step, self.steps)


@dataclass
class RunConfig:
    """The smallest config :func:`selfpose.training.loop.train` accepts: ``optim`` + ``train``."""

    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def config_dict(cfg: Any) -> dict[str, Any]:
    """Plain-data form of a (nested) config dataclass."""
    return to_dict(cfg)


def config_hash(cfg: Any) -> str:
    """sha256 (16 hex digits) of the config's canonical JSON: identifies a run's settings.

    Fields added after runs were saved (:func:`selfpose.config.added_field`)
    are left out while they hold their neutral default, so an older run's
    checkpoint keeps its hash.
    """
    # a deep copy: to_dict hands plain-data sections (method_config) over by reference, and the neutral keys are
    # popped below — from the copy, never from the live config
    d = copy.deepcopy(config_dict(cfg))
    # A config holding plain-data sections (PretrainConfig.method_config) names their neutral fields itself.
    extra = getattr(cfg, "extra_neutral_keys", None)
    for path in [*neutral_keys(cfg), *(extra() if callable(extra) else [])]:
        node = d
        for k in path[:-1]:
            node = node.get(k) if isinstance(node, dict) else None
            if node is None:
                break
        if isinstance(node, dict):
            node.pop(path[-1], None)
    text = json.dumps(d, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def save_config(cfg: Any, path: str | Path) -> Path:
    """Write the resolved config as YAML (loadable again with :func:`selfpose.config.load`)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(config_dict(cfg), sort_keys=False))
    tmp.replace(path)
    return path


def config_changes(old: Any, new: Any, *, shared_only: bool = False, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """``(dotted key, old value, new value)`` for every leaf that differs between two plain-data configs.

    The one config comparer (resume warnings, the benchmark's cache checks).
    Values are compared as JSON (a tuple equals a list, a path its string).
    ``shared_only``: keys present on one side only do not count — a field
    added to selfpose since defaults to the old behaviour; otherwise such a
    key differs from ``None``.
    """
    if isinstance(old, dict) and isinstance(new, dict):
        keys = set(old) & set(new) if shared_only else set(old) | set(new)
        out = []
        for k in sorted(keys, key=str):
            # plain dicts of two runs, not a config lookup: a missing side is None
            out += config_changes(old.get(k), new.get(k), shared_only=shared_only, prefix=f"{prefix}{k}.")
        return out
    return [] if _plain(old) == _plain(new) else [(prefix.rstrip("."), old, new)]


def _plain(x: Any) -> Any:
    return json.loads(json.dumps(x, default=str))


def config_diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The changes between two plain config dicts as ``"key: old → new"`` lines (keys on either side count)."""
    return [f"{k}: {a!r} → {b!r}" for k, a, b in config_changes(old, new)]


def changed_keys(old: Any, new: Any) -> list[str]:
    """Dotted keys whose values differ, keys present on one side only ignored (see :func:`config_changes`)."""
    return [k for k, _, _ in config_changes(old, new, shared_only=True)]
