"""Train a 2D→3D lifter on a keypoint dataset, save it as a run folder, evaluate it.

``fit_lifter_run(data, out, cfg)`` (the ``selfpose fit-lifter`` command):

1. reads the training subjects' frames (:mod:`selfpose.lifting.data`) and
   holds out whole takes of *those* subjects for validation (never a test
   subject: model selection must not see the test set);
2. fits z-score statistics of the encoded 2D inputs and of the pelvis-centred
   3D targets on the training frames (stored with the weights);
3. trains the method of :data:`selfpose.lifting.lifters.LIFTERS` with the
   shared toolkit (:func:`~selfpose.training.toolkit.build_optimizer`, the
   :func:`~selfpose.training.toolkit.lr_at` schedule, the
   :class:`~selfpose.training.toolkit.Stepper`), MSE in z-scored units, with
   2D detector noise drawn per batch (seeded by ``(seed, step)``) when
   ``train_noise``; validates every ``eval_every`` steps (N-MPJPE on the held-out
   takes) and keeps the best step;
4. writes the run folder (kind ``lifter``, built aside and swapped in whole):
   ``lifter.safetensors`` (weights + normalisation), ``lifter.json`` (format,
   config, shapes, best step, data, timing) and ``metrics.csv`` (validation curve).

``evaluate_lifter_run(run, data, subjects)`` scores it with the metrics of
image pose folders (same JSON layout) and writes ``results.json``/``results.md``
into the run.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from selfpose.config import ConfigError, from_dict, to_dict
from selfpose.errors import SelfposeError
from selfpose.lifting.data import LiftingArrays, encode, fill_missing, load_arrays
from selfpose.lifting.noise import NoiseConfig

FORMAT = "selfpose-lifter"
VERSION = 1
WEIGHTS = "lifter.safetensors"
META = "lifter.json"
KIND = "lifter"


class LifterError(SelfposeError, RuntimeError):
    """A lifter cannot be trained, loaded or evaluated as asked."""


@dataclass
class LifterConfig:
    """``selfpose fit-lifter`` (strict: unknown keys are errors). Defaults: the reported ``martinez`` setting.

    Measured with these defaults (GT 2D, real Human3.6M motion through the real
    cameras, trained on S1, S5, S6, S7, tested on S8; 2 shared CPU cores,
    2026-12-01): 8500 steps in 444 s (0.05 s/step, batch 256); S8 MPJPE 45.7 mm,
    N-MPJPE 44.9, P-MPJPE 35.8 (action average 48.0 / 47.0 / 36.7). With
    ``steps=6000`` (324 s): 47.7 / 46.6 / 37.7 mm::

        selfpose prepare mocap h36m17_train_S1-S8_25fps.npz --cameras cameras.pkl --out D
        selfpose fit-lifter --data D --out RUN
        selfpose evaluate RUN --data D --subjects S8 --json

    Easier than the published protocol: one shared skeleton for every subject
    and re-placed mocap (see issue 12), so not directly comparable with
    Martinez et al.'s 45.5 mm.

    Attributes:
        method: a name of :data:`selfpose.lifting.lifters.LIFTERS`.
        width, blocks, dropout: the network (Martinez et al.: 1024, 2, 0.5).
        max_norm: max-norm radius of each linear layer's output rows, applied
            after every step (Martinez et al.: 1); null = off.
        input_norm: ``focal`` (needs cameras) or ``image``; see :mod:`selfpose.lifting.data`.
        steps, batch_size, lr, weight_decay, warmup_steps, lr_schedule, min_lr_ratio:
            optimisation (Adam; the toolkit's warm-up + cosine schedule).
        max_seconds: stop training after this long (the best step so far is
            kept); null = run every step.
        train_subjects: subjects trained on (and validated on: held-out takes);
            empty = every subject of the data.
        val_fraction: share of the training subjects' frames held out, whole takes
            (all views of a take together); 0 = no validation, keep the last step.
        val_max_frames: validate on at most this many held-out frames (every
            k-th), so a validation costs seconds, not minutes.
        eval_every: validate every this many steps (and at the last one).
        train_noise: draw 2D detector noise (``noise``) for every training batch;
            false = ground-truth 2D.
        test_noise: evaluate (and validate) on 2D through ``noise`` (seeded by
            ``seed``) instead of ground truth.
        noise: the 2D noise model (:class:`~selfpose.lifting.noise.NoiseConfig`;
            its defaults are the benchmark's "default detector noise").
        seed: initialisation, batches, validation split, noise.
        threads: torch intra-op threads while training (restored afterwards);
            null = torch's default.
    """

    method: str = "martinez"
    width: int = 1024
    blocks: int = 2
    dropout: float = 0.5
    max_norm: float | None = 1.0
    input_norm: Literal["focal", "image"] = "focal"
    steps: int = 8500
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup_steps: int = 100
    lr_schedule: Literal["cosine", "constant"] = "cosine"
    min_lr_ratio: float = 0.01
    max_seconds: float | None = None
    train_subjects: tuple[str, ...] = ("S1", "S5", "S6", "S7")
    val_fraction: float = 0.05
    val_max_frames: int = 8192
    eval_every: int = 250
    train_noise: bool = False
    test_noise: bool = False
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    seed: int = 0
    threads: int | None = None

    def __post_init__(self) -> None:
        from selfpose.lifting.lifters import LIFTERS

        if self.method not in LIFTERS:
            raise ConfigError(f"method must be one of {', '.join(LIFTERS)}, got {self.method!r}")
        for name in ("width", "steps", "batch_size", "eval_every", "val_max_frames"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_size < 2:
            raise ConfigError("batch_size must be >= 2 (batch normalisation needs two samples)")
        if self.blocks < 0 or self.warmup_steps < 0:
            raise ConfigError("blocks and warmup_steps must be >= 0")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.max_norm is not None and not self.max_norm > 0:
            raise ConfigError(f"max_norm must be > 0 (or null: off), got {self.max_norm}")
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise ConfigError(f"max_seconds must be > 0 (or null: no limit), got {self.max_seconds}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads must be >= 1 (or null), got {self.threads}")

    def optim(self):
        """The toolkit's :class:`~selfpose.training.config.OptimConfig` for this run."""
        from selfpose.training.config import OptimConfig

        return OptimConfig(optimizer="adam" if self.weight_decay == 0 else "adamw", lr=self.lr,
                           weight_decay=self.weight_decay, warmup_steps=self.warmup_steps,
                           schedule=self.lr_schedule, min_lr_ratio=self.min_lr_ratio, grad_clip=None)


class Lifter:
    """A trained lifter with its normalisation: encoded 2D → pelvis-centred 3D (mm, camera frame).

    Attributes:
        net: the network (eval mode).
        cfg: its :class:`LifterConfig`.
        in_mean, in_std: ``(in_dim,)`` z-scoring of the encoded 2D (visibility columns: 0, 1).
        out_mean, out_std: ``(3J,)`` z-scoring of the targets, mm.
        num_joints: ``J``.
        info: facts about training (best step, curve, data, seconds...).
    """

    def __init__(self, net: nn.Module, cfg: LifterConfig, in_mean, in_std, out_mean, out_std, num_joints: int,
                 info: dict | None = None):
        self.net, self.cfg, self.num_joints = net.eval(), cfg, int(num_joints)
        self.in_mean, self.in_std = in_mean.float().cpu(), in_std.float().cpu()
        self.out_mean, self.out_std = out_mean.float().cpu(), out_std.float().cpu()
        self.info = dict(info or {})

    def normalise(self, raw: torch.Tensor) -> torch.Tensor:
        """Encoded 2D ``(B, in_dim)`` → the network's input (z-scored, missing → 0)."""
        return fill_missing((raw - self.in_mean.to(raw.device)) / self.in_std.to(raw.device))

    def forward_mm(self, raw: torch.Tensor) -> torch.Tensor:
        """Encoded 2D ``(B, in_dim)`` → ``(B, J, 3)`` mm, exactly pelvis-centred (differentiable)."""
        y = self.net(self.normalise(raw)).float()
        y = (y * self.out_std.to(y.device) + self.out_mean.to(y.device)).view(len(y), self.num_joints, 3)
        return y - y[:, :1]

    def predict(self, arrays: LiftingArrays, noise: NoiseConfig | None = None, seed: int = 0,
                batch_size: int = 8192) -> np.ndarray:
        """``(N, J, 3)`` float32 mm for every frame of ``arrays`` (through 2D ``noise`` when given)."""
        rng = np.random.default_rng(seed) if noise is not None else None
        raw = encode(arrays, None, self.cfg.input_norm, noise, rng)
        out = np.empty((len(raw), self.num_joints, 3), np.float32)
        self.net.eval()
        with torch.inference_mode():
            for s in range(0, len(raw), batch_size):
                out[s:s + batch_size] = self.forward_mm(torch.from_numpy(raw[s:s + batch_size])).numpy()
        return out

    def save(self, folder: str | Path) -> None:
        """``folder/lifter.safetensors`` + ``folder/lifter.json``."""
        from safetensors.torch import save_file

        folder = Path(folder)
        tensors = {f"net.{k}": v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
        tensors.update({"norm.in_mean": self.in_mean, "norm.in_std": self.in_std,
                        "norm.out_mean": self.out_mean, "norm.out_std": self.out_std})
        save_file(tensors, str(folder / WEIGHTS))
        meta = {"format": FORMAT, "version": VERSION, "config": to_dict(self.cfg),
                "in_dim": int(self.in_mean.numel()), "num_joints": self.num_joints, **self.info}
        (folder / META).write_text(json.dumps(meta, indent=1))

    @classmethod
    def load(cls, folder: str | Path) -> "Lifter":
        """Read a run folder written by :func:`fit_lifter_run`."""
        from selfpose.lifting.lifters import LIFTERS
        from selfpose.utils.bundle import read_bundle

        meta, tensors = read_bundle(Path(folder), WEIGHTS, META, FORMAT, VERSION, LifterError, "a lifter",
                                    "run fit-lifter again")
        cfg = from_dict(LifterConfig, meta["config"])
        J = int(meta["num_joints"])
        net = LIFTERS[cfg.method](int(meta["in_dim"]), 3 * J, cfg)
        net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")}, strict=True)
        info = {k: v for k, v in meta.items() if k not in ("format", "version", "config", "in_dim", "num_joints")}
        return cls(net, cfg, tensors["norm.in_mean"], tensors["norm.in_std"], tensors["norm.out_mean"],
                   tensors["norm.out_std"], J, info)


def _val_subset(val: LiftingArrays, max_frames: int) -> LiftingArrays:
    """Every k-th held-out frame, at most ``max_frames``."""
    k = max(1, math.ceil(len(val) / max_frames))
    return val.subset(np.arange(0, len(val), k))


def split_train_val(arrays: LiftingArrays, cfg: LifterConfig) -> tuple[LiftingArrays, LiftingArrays | None]:
    """Held-out whole takes of the training frames (:func:`selfpose.pose.labels.holdout_mask`, by take)."""
    from selfpose.pose.labels import holdout_mask

    if cfg.val_fraction == 0:
        return arrays, None
    mask = holdout_mask(arrays.takes, arrays.sequences, arrays.frame_ids, cfg.val_fraction, "take", cfg.seed)
    if not mask.any():
        return arrays, None
    return arrays.subset(~mask), _val_subset(arrays.subset(mask), cfg.val_max_frames)


def fit_lifter(train: LiftingArrays, cfg: LifterConfig, val: LiftingArrays | None = None,
               progress: bool = True) -> Lifter:
    """Train ``cfg.method`` on ``train`` (MSE on z-scored pelvis-centred 3D), keep the best step on ``val``.

    Returns:
        the :class:`Lifter` at the step with the lowest validation N-MPJPE (the
        last step without ``val``); ``info`` holds the curve, best step and seconds.
    """
    from selfpose.evaluation.metrics import mpjpe, n_mpjpe
    from selfpose.lifting.lifters import LIFTERS, apply_constraints
    from selfpose.pose.fit import BestStep
    from selfpose.training.toolkit import Stepper, build_optimizer, column_spread, progress_text
    from selfpose.utils.progress import progress_bar

    if train.joints3d is None or len(train) < 2:
        raise LifterError(f"need at least 2 training frames with 3D, got {len(train)}")
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    J = train.num_joints
    noise = cfg.noise if cfg.train_noise else None
    raw = torch.from_numpy(encode(train, None, cfg.input_norm))
    in_mean, in_std = column_spread(raw)
    vis_cols = slice(2 * J + 2, None)   # visibility stays 0/1: "missing" is then exactly 0 after z-scoring too
    in_mean[vis_cols], in_std[vis_cols] = 0.0, 1.0
    y = torch.from_numpy(train.joints3d.reshape(len(train), 3 * J))
    out_mean, out_std = column_spread(y)
    net = LIFTERS[cfg.method](raw.shape[1], 3 * J, cfg)
    lifter = Lifter(net, cfg, in_mean, in_std, out_mean, out_std, J)
    yn = (y - out_mean) / out_std
    xn = None if noise is not None else lifter.normalise(raw)   # clean 2D: encode once
    xv = yv = None
    if val is not None and len(val):
        vrng = np.random.default_rng(cfg.seed + 1) if cfg.test_noise else None
        xv = torch.from_numpy(encode(val, None, cfg.input_norm, cfg.noise if cfg.test_noise else None, vrng))
        yv = torch.from_numpy(val.joints3d)

    optim = cfg.optim()
    opt = build_optimizer(net, optim, fused=True, lr_key="lr")
    stepper = Stepper(opt, optim, cfg.steps, lr_key="lr", defer_check=True)
    best = BestStep(None)
    curve: list[dict] = []
    n, bs = len(train), min(cfg.batch_size, len(train))
    perm, pos = torch.randperm(n, generator=gen), 0
    threads = torch.get_num_threads()
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    t0 = time.perf_counter()
    t_win, loss_sum, loss_n, step = t0, torch.zeros(()), 0, 0
    try:
        with progress_bar(None if progress else False) as bar:
            task = bar.add_task(cfg.method, total=cfg.steps)
            for step in range(1, cfg.steps + 1):
                if pos + bs > n:
                    perm, pos = torch.randperm(n, generator=gen), 0
                idx = perm[pos:pos + bs]
                pos += bs
                if noise is None:
                    xb = xn[idx]
                else:   # fresh detector noise for every batch, reproducible from (seed, step)
                    rng = np.random.default_rng([cfg.seed, step])
                    xb = lifter.normalise(torch.from_numpy(encode(train, idx.numpy(), cfg.input_norm, noise, rng)))
                net.train()
                lr = stepper.set_lr(step - 1)
                loss = torch.mean((net(xb) - yn[idx]) ** 2)
                stepper.step(loss, step - 1, {"mse": loss})
                apply_constraints(net, cfg)
                loss_sum += loss.detach()
                loss_n += 1
                out_of_time = cfg.max_seconds is not None and time.perf_counter() - t0 > cfg.max_seconds
                if step % cfg.eval_every and step != cfg.steps and not out_of_time:
                    continue
                stepper.check()
                now = time.perf_counter()
                row = {"step": step, "train_loss": float(loss_sum) / loss_n, "lr": lr}
                bar.update(task, completed=step,
                           description=progress_text(cfg.method, row["train_loss"], (now - t_win) / loss_n))
                loss_sum, loss_n, t_win = torch.zeros(()), 0, now
                if xv is not None:
                    net.eval()
                    with torch.inference_mode():
                        pv = lifter.forward_mm(xv)
                    row["val_mpjpe"] = float(mpjpe(pv, yv))
                    row["val_n_mpjpe"] = float(n_mpjpe(pv, yv))
                    best.update(row["val_n_mpjpe"], step, net)
                row["time"] = time.perf_counter() - t0
                curve.append(row)
                if out_of_time:
                    break
    finally:
        torch.set_num_threads(threads)
    if best.state is not None:
        net.load_state_dict(best.state)
    lifter.net = net.eval()
    lifter.info = {"curve": curve, "steps_done": step, "best_step": best.step if best.state is not None else step,
                   "best_val_n_mpjpe": None if best.state is None else best.value,
                   "train_seconds": time.perf_counter() - t0, "train_frames": len(train),
                   "val_frames": 0 if val is None else len(val)}
    return lifter


def fit_lifter_run(data, out, cfg: LifterConfig, overwrite: bool = False, progress: bool = True) -> dict:
    """``selfpose fit-lifter``: train on ``cfg.train_subjects`` of ``data`` and write the run folder ``out``."""
    from selfpose.outputs import atomic_output
    from selfpose.training.logs import write_metrics

    with atomic_output(out, KIND, overwrite=overwrite, inputs=[data]) as tmp:
        arrays = load_arrays(data, cfg.train_subjects or None)
        train, val = split_train_val(arrays, cfg)
        lifter = fit_lifter(train, cfg, val, progress=progress)
        lifter.info.update({"data": str(Path(data).resolve()), "subjects": sorted(set(arrays.subjects.tolist()))})
        lifter.save(tmp)
        write_metrics(tmp, lifter.info["curve"])
        return {k: v for k, v in lifter.info.items() if k != "curve"}


def is_lifter_run(folder) -> bool:
    """Whether ``folder`` is a lifter run (its marker says so, or it holds ``lifter.json``)."""
    from selfpose.outputs import output_kind

    folder = Path(folder)
    return folder.is_dir() and (output_kind(folder) == KIND or (folder / META).is_file())


def evaluate_lifter_run(run, data, subjects=None, noise: bool | None = None) -> dict:
    """Score the lifter run ``run`` on ``data`` (optionally ``subjects``); write ``results.json``/``.md`` into it.

    ``noise``: evaluate on 2D through the run's noise model (seeded by its
    seed); None = the run's ``test_noise``.

    Returns:
        :func:`selfpose.evaluation.metrics.evaluate_poses`' layout (``overall``,
        ``per_action``, ``action_average``; MPJPE/N-MPJPE/P-MPJPE mm) plus
        ``num_samples``, ``excluded_frames``, ``data``, ``subjects``, ``method``, ``input_2d``.
    """
    from selfpose.evaluation.metrics import evaluate_poses
    from selfpose.outputs import sibling_lock
    from selfpose.pose.evaluate import write_report

    run = Path(run)
    if not is_lifter_run(run):
        raise LifterError(f"{run} is not a lifter run (no {META}); create one with `selfpose fit-lifter`")
    with sibling_lock(run):
        lifter = Lifter.load(run)
        arrays = load_arrays(data, subjects)
        use_noise = lifter.cfg.test_noise if noise is None else noise
        pred = lifter.predict(arrays, lifter.cfg.noise if use_noise else None, seed=lifter.cfg.seed + 2)
        usable = np.isfinite(arrays.joints3d).all(axis=(1, 2))
        if not usable.any():
            raise LifterError(f"no frame of {data} has finite 3D labels: nothing to score")
        res = evaluate_poses(pred[usable], arrays.joints3d[usable], actions=list(arrays.actions[usable]))
        res.update({"num_samples": len(arrays), "excluded_frames": int((~usable).sum()),
                    "data": str(Path(data).resolve()), "subjects": sorted(set(arrays.subjects.tolist())),
                    "method": lifter.cfg.method, "input_2d": "noisy (run's noise model)" if use_noise else "ground truth"})
        write_report(res, run, title=f"Lifter evaluation ({lifter.cfg.method})")
    return res
