"""Self-supervised pretraining: the config, the entry point, and loading a run.

``selfpose pretrain --data DIR --out RUN [--config FILE] [key=value ...]``
calls :func:`pretrain`; :func:`load_run` gives back the trained method
(weights loaded from safetensors, never from a pickle) for the pose stage,
prediction and analyses.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

from selfpose.config import ConfigError, from_dict
from selfpose.methods.drnet import DrNetConfig
from selfpose.methods.temporal import LossConfig, SamplerConfig
from selfpose.models.temporal import ModelConfig
from selfpose.training.config import OptimConfig, TrainConfig


@dataclass
class DataConfig:
    """Which part of the dataset pretraining sees.

    Attributes:
        subjects: train on these subjects only (empty: all) — e.g. keep the
            test subjects out of pretraining.
        views: use these camera views only (empty: all).
        two_stage: free-fall schedule (reconstruction + tracking, then DSL at
            ``train.stage2_step``); None: on for ``dive`` datasets.
    """

    subjects: tuple[str, ...] = ()
    views: tuple[str, ...] = ()
    two_stage: bool | None = None


@dataclass
class PretrainConfig:
    """Everything ``selfpose pretrain`` uses; see ``configs/*.yaml`` for readable examples."""

    method: str = "temporal"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    drnet: DrNetConfig = field(default_factory=DrNetConfig)   # used by method=drnet only
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-3, warmup_steps=100))
    train: TrainConfig = field(default_factory=TrainConfig)


def select_data(ds, data_cfg: DataConfig):
    """The dataset restricted to the configured subjects and views (clear error when empty)."""
    from selfpose.data.store import DatasetError

    sel = ds.select(subjects=set(data_cfg.subjects) or None, views=set(data_cfg.views) or None)
    if not len(sel):
        raise DatasetError(f"no sequence of {ds.root} matches data.subjects={list(data_cfg.subjects)} "
                           f"data.views={list(data_cfg.views)}; it has subjects {ds.subjects()} and views {ds.views()}")
    return sel


def is_two_stage(cfg: PretrainConfig, ds) -> bool:
    if cfg.data.two_stage is not None:
        return cfg.data.two_stage
    return ds.attrs.get("scenario") == "dive"


def make_sampler(kind: str, ds, sampler_cfg: SamplerConfig):
    """``(kind, dataset) → sampler`` for the training loop (module level: picklable for DDP)."""
    from selfpose.data.samplers import (ContrastivePairSampler, DSLSampler, GravitySampler, MultiViewSyncSampler,
                                        MultiViewTripletSampler)

    if kind == "dsl":
        return DSLSampler(ds, d_pos_s=sampler_cfg.d_pos_s, d_neg_s=sampler_cfg.d_neg_s)
    if kind == "contrastive":
        return ContrastivePairSampler(ds, d_pos_s=sampler_cfg.d_pos_s, d_neg_s=sampler_cfg.d_neg_s,
                                      num_negatives=sampler_cfg.num_negatives)
    if kind == "views":   # NSD: two views of one instant
        return MultiViewSyncSampler(ds, sync_prob=1.0, flip_prob=0.0)
    if kind == "tcn":
        return MultiViewTripletSampler(ds, d_neg_s=sampler_cfg.d_neg_s)
    if kind == "gravity":
        return GravitySampler(ds, step_s=sampler_cfg.gravity_step_s)
    raise ConfigError(f"unknown sampler kind {kind!r}")


def _resolve(cfg: PretrainConfig) -> PretrainConfig:
    """A known method name (else a ConfigError before any data is read), its variant's switches set."""
    from selfpose.methods.registry import check_method
    from selfpose.methods.variants import resolve

    check_method(cfg.method)
    return resolve(cfg)


def _build_method(cfg: PretrainConfig, two_stage: bool):
    from selfpose.methods.registry import build

    return build(cfg.method, cfg, two_stage)


def pretrain(cfg: PretrainConfig, data: str | Path, out: str | Path, resume: bool = False, overwrite: bool = False,
             progress: bool = True):
    """Pretrain ``cfg.method`` on the dataset folder ``data`` into the run folder ``out``.

    Returns the training loop's :class:`~selfpose.training.loop.TrainResult`.
    """
    from selfpose.data.store import Dataset
    from selfpose.training.loop import train

    cfg = _resolve(cfg)
    ds = select_data(Dataset.open(data), cfg.data)
    two_stage = is_two_stage(cfg, ds)
    if two_stage and cfg.train.stage2_step is None:
        raise ConfigError("two-stage training (dive data) needs train.stage2_step: the step where DSL starts")
    method_factory = functools.partial(_build_method, cfg, two_stage)
    sampler_factory = functools.partial(make_sampler, sampler_cfg=cfg.sampler)
    return train(method_factory, ds, sampler_factory, cfg, out, resume=resume, overwrite=overwrite,
                 progress=progress)


@dataclass
class Run:
    """A finished (or checkpointed) pretraining run, ready for inference."""

    path: Path
    config: PretrainConfig
    method: object  # selfpose.methods.base.Method, in eval mode

    @property
    def model(self):
        return self.method.model


def load_config(run_dir: str | Path) -> PretrainConfig:
    import yaml

    p = Path(run_dir) / "config.yaml"
    if not p.is_file():
        from selfpose.training.checkpoint import CheckpointError

        raise CheckpointError(f"{run_dir} is not a pretraining run (no config.yaml); run `selfpose pretrain` first")
    return from_dict(PretrainConfig, yaml.safe_load(p.read_text()))


def load_run(run_dir: str | Path) -> Run:
    """The method of a run with its latest valid weights (safetensors; no code is executed)."""
    from selfpose.training.checkpoint import load_weights

    run_dir = Path(run_dir)
    cfg = load_config(run_dir)
    method = _build_method(cfg, False)
    state = load_weights(run_dir)
    missing, unexpected = method.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if not k.startswith("head2d")]:
        from selfpose.training.checkpoint import CheckpointError

        raise CheckpointError(f"the weights in {run_dir} do not fit its config (missing {missing[:3]}, "
                              f"unexpected {unexpected[:3]}); was the run written by another selfpose version?")
    method.eval()
    return Run(run_dir, cfg, method)


def init_run(cfg: PretrainConfig, data: str | Path, out: str | Path, overwrite: bool = False) -> Path:
    """A run folder holding the method's *initial* weights (seeded as training would seed them).

    It is the "frozen randomly initialised encoder" reference: the pose
    stage, evaluation and analyses work on it exactly as on a trained run.
    """
    import torch

    from selfpose.data.store import Dataset
    from selfpose.outputs import atomic_output, check_output
    from selfpose.training.checkpoint import save_checkpoint
    from selfpose.training.config import save_config

    cfg = _resolve(cfg)
    out = Path(out)
    check_output(out, "run", overwrite=overwrite, inputs=[data])
    ds = select_data(Dataset.open(data), cfg.data)
    # Built beside `out` and swapped in complete: only a run folder is ever replaced.
    with atomic_output(out, "run", overwrite=overwrite, inputs=[data]) as tmp:
        torch.manual_seed(cfg.train.seed)
        method = _build_method(cfg, is_two_stage(cfg, ds))
        save_config(cfg, tmp / "config.yaml")
        save_checkpoint(tmp, 0, method.state_dict(), None, {"step": 0, "note": "initial weights, not trained"})
    return out
