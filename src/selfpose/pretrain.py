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
from typing import Any

from selfpose.config import ConfigError, added_field, from_dict
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
    """Everything ``selfpose pretrain`` uses; see ``configs/*.yaml`` for readable examples.

    ``model``, ``loss`` and ``sampler`` are the temporal family's sections
    (``sampler``'s distances feed every sampler that takes them).
    ``method_config`` holds each registered method's own section, keyed by
    its section name (e.g. ``method_config.drnet.hidden=64``); every section
    is read strictly by its method's config class
    (:func:`selfpose.methods.register_method`), and the running method's
    section is recorded with its defaults filled in.

    ``init_from``: a finished pretraining run of the same method and network
    whose latest weights start this run (e.g. pretrain on renders, then go on
    on your own footage); None: the seeded random initialisation. Optimiser,
    schedule and step count start afresh.
    """

    method: str = "temporal"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    method_config: dict[str, Any] = field(default_factory=dict)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-3, warmup_steps=100))
    train: TrainConfig = field(default_factory=TrainConfig)
    init_from: str | None = added_field(None)

    def __post_init__(self) -> None:
        from selfpose.methods.registry import check_sections

        self.method_config = check_sections(self.method_config)

    def extra_neutral_keys(self) -> list[tuple[str, ...]]:
        """The method sections' neutral fields, for :func:`selfpose.training.config.config_hash`."""
        from selfpose.methods.registry import neutral_section_keys

        return neutral_section_keys(self.method_config)


def upgrade_config_dict(data: dict) -> dict:
    """A run's saved config in today's layout: the old top-level ``drnet`` section moves to ``method_config``."""
    if isinstance(data, dict) and isinstance(data.get("drnet"), dict):
        data = dict(data)
        data["method_config"] = {"drnet": data.pop("drnet"), **(data.get("method_config") or {})}
    return data


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


def _resolve(cfg: PretrainConfig) -> PretrainConfig:
    """A known method name (else a ConfigError before any data is read), its variant's switches set,
    its own section recorded with its defaults."""
    import dataclasses

    from selfpose.config import to_dict
    from selfpose.methods.registry import method_spec, section_config
    from selfpose.methods.variants import resolve

    spec = method_spec(cfg.method)
    cfg = resolve(cfg)
    if spec.config_cls is not None:
        own = to_dict(section_config(spec, cfg.method_config))
        cfg = dataclasses.replace(cfg, method_config={**cfg.method_config, spec.section: own})
    return cfg


def _build_method(cfg: PretrainConfig, two_stage: bool):
    from selfpose.methods.registry import build

    return build(cfg.method, cfg, two_stage)


def initial_weights(cfg: PretrainConfig) -> dict | None:
    """The state dict ``cfg.init_from`` names (its run's latest checkpoint), checked against ``cfg``; None without."""
    if cfg.init_from is None:
        return None
    src = Path(cfg.init_from)
    other = load_config(src).method   # a one-line error when it is not a run
    if other != cfg.method:
        raise ConfigError(f"init_from {src} is a {other!r} run; this run trains {cfg.method!r}")
    state = load_run(src).method.state_dict()
    own = _build_method(cfg, False).state_dict()
    bad = sorted(k for k in set(own) | set(state) if k not in own or k not in state or own[k].shape != state[k].shape)
    if bad:
        raise ConfigError(f"init_from {src}: its weights do not fit this run's network ({', '.join(bad[:3])}…); "
                          "use the same model and method settings as that run")
    return state


def _build_initialised(cfg: PretrainConfig, two_stage: bool, state: dict | None):
    method = _build_method(cfg, two_stage)
    if state is not None:
        method.load_state_dict(state)   # strict: checked by initial_weights
    return method


def pretrain(cfg: PretrainConfig, data: str | Path, out: str | Path, resume: bool = False, overwrite: bool = False,
             progress: bool = True):
    """Pretrain ``cfg.method`` on the dataset folder ``data`` into the run folder ``out``.

    Returns the training loop's :class:`~selfpose.training.loop.TrainResult`.
    """
    from selfpose.data.samplers import make_sampler
    from selfpose.data.store import Dataset
    from selfpose.training.loop import train

    cfg = _resolve(cfg)
    ds = select_data(Dataset.open(data), cfg.data)
    two_stage = is_two_stage(cfg, ds)
    if two_stage and cfg.train.stage2_step is None:
        raise ConfigError("two-stage training (dive data) needs train.stage2_step: the step where DSL starts")
    # read once, before any worker process: a resumed run then loads its own checkpoint over these weights
    method_factory = functools.partial(_build_initialised, cfg, two_stage, initial_weights(cfg))
    sampler_factory = functools.partial(make_sampler, config=cfg.sampler)
    return train(method_factory, ds, sampler_factory, cfg, out, resume=resume, overwrite=overwrite,
                 progress=progress)


@dataclass
class Run:
    """A finished (or checkpointed) pretraining run, ready for inference.

    ``checkpoint``: the checkpoint whose weights were loaded (None when the
    weights came from a pose folder's own copy); ``step``: its step;
    ``weights_file`` and ``weights_sha256``: the exact file loaded and its hash.
    """

    path: Path
    config: PretrainConfig
    method: object  # selfpose.methods.base.Method, in eval mode
    checkpoint: object = None
    step: int | None = None
    weights_file: Path | None = None
    weights_sha256: str | None = None
    #: KEY=VALUE overrides the run is read with (:func:`read_run_as`); its ``config`` then differs from its file.
    read: tuple[str, ...] = ()

    @property
    def model(self):
        return self.method.model


def load_config(run_dir: str | Path) -> PretrainConfig:
    """A run's resolved config; a missing, corrupt or foreign ``config.yaml`` is a one-line CheckpointError."""
    from selfpose.config import read_mapping
    from selfpose.training.checkpoint import CheckpointError

    p = Path(run_dir) / "config.yaml"
    if not p.is_file():
        raise CheckpointError(f"{run_dir} is not a pretraining run (no config.yaml); run `selfpose pretrain` first")
    redo = "restore it (it is the resolved config `selfpose pretrain` wrote) or pretrain again into a new folder"
    try:
        data = read_mapping(p, CheckpointError, allow_empty=False)   # an empty file would silently mean the defaults
    except CheckpointError as e:
        raise CheckpointError(f"{e}; {redo}") from e
    try:
        return from_dict(PretrainConfig, upgrade_config_dict(data))
    except ConfigError as e:
        raise CheckpointError(f"{p} does not fit this selfpose's PretrainConfig ({e}); {redo}") from e


def build_trained_method(cfg: PretrainConfig, state: dict, where: str | Path):
    """The method of ``cfg`` with the weights ``state`` loaded, in eval mode."""
    method = _build_method(cfg, False)
    missing, unexpected = method.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if not k.startswith("head2d")]:
        from selfpose.training.checkpoint import CheckpointError

        raise CheckpointError(f"the weights in {where} do not fit its config (missing {missing[:3]}, "
                              f"unexpected {unexpected[:3]}); was the run written by another selfpose version?")
    method.eval()
    return method


def load_run(run_dir: str | Path, checkpoint: str | Path | None = None) -> Run:
    """The method of a run with its latest valid weights, or those of ``checkpoint`` (safetensors; no code runs)."""
    from selfpose.training.checkpoint import MODEL_FILE, _load_safetensors, resolve_checkpoint

    run_dir = Path(run_dir)
    cfg = load_config(run_dir)
    ck = resolve_checkpoint(checkpoint if checkpoint is not None else run_dir, weights_only=True)
    method = build_trained_method(cfg, _load_safetensors(ck.path / MODEL_FILE), run_dir)
    return Run(run_dir, cfg, method, ck, int(ck.step), ck.path / MODEL_FILE, ck.state["files"][MODEL_FILE]["sha256"])


def read_run_as(run: Run, overrides: list[str] | tuple[str, ...]) -> Run:
    """``run`` read with config overrides that change how its weights are read, never which weights there are
    (e.g. ``method_config.sync.pose_background=as_pretrained``): the same weights, loaded strictly into the method
    of the overridden config. A key that would change the weights is a one-line :class:`ConfigError`."""
    import dataclasses

    from selfpose.config import _merge, parse_overrides, to_dict

    if not overrides:
        return run
    try:
        cfg = from_dict(PretrainConfig, _merge(to_dict(run.config), parse_overrides(list(overrides))))
    except ConfigError as e:
        raise ConfigError(f"--read {' '.join(overrides)}: {e}") from None
    try:
        method = build_trained_method(cfg, run.method.state_dict(), run.path)
    except Exception as e:   # noqa: BLE001 — a size mismatch is a RuntimeError, a missing key a CheckpointError
        raise ConfigError(f"--read {' '.join(overrides)} changes the weights of {run.path}, not only how they are "
                          f"read ({str(e).splitlines()[0]}); leave it out") from None
    return dataclasses.replace(run, config=cfg, method=method, read=tuple(overrides))


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
