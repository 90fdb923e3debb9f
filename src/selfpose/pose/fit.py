"""The pose stage (Honari et al. Eq. 15): a head from frozen features to pelvis-centred 3D.

``P_3D(v_t [, p̂_2D]) → (J, 3)`` mm, camera frame, pelvis-centred, trained with
the MSE to the labelled poses on cached feature tensors (no image is touched
here). The step with the lowest validation N-MPJPE is kept. Cost is the
head's: on 2 busy CPU cores a step of the 2048-wide MLP (batch 64) takes
~36 ms in float32 and ~23 ms under bf16 autocast, the Martinez head ~67/40 ms;
small heads take well under 1 ms.

Normalisation (fitted on the training labels, stored with the head):

* inputs: with ``standardise_features`` each feature dimension is z-scored
  (frozen features come at any scale; an MLP without normalisation layers
  trains badly on them). With ``use_2d`` the 2D joints (px) are z-scored per
  coordinate likewise; unknown (NaN) 2D become 0, the mean.
* targets: ``normalise="zscore"`` z-scores every joint coordinate (Martinez
  et al.; the MSE then weighs each coordinate by its inverse variance), or
  ``"scale"`` divides by a fixed ``target_scale_mm`` (the MSE is then exactly
  Eq. 15's MSE in mm up to a constant). Coordinates with no spread (the
  pelvis, always 0) keep a scale of 1.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from selfpose.config import ConfigError, from_dict, to_dict
from selfpose.errors import SelfposeError
from selfpose.evaluation.metrics import mpjpe, n_mpjpe
from selfpose.models.heads import make_head
from selfpose.pose.features import FeatureError, FeatureSet
from selfpose.pose.labels import SPLIT_BY, evenly_spaced, holdout_mask
from selfpose.training.config import OptimConfig
from selfpose.training.logs import write_metrics
from selfpose.training.precision import bf16_autocast
from selfpose.training.toolkit import Stepper, build_optimizer, column_spread, progress_text
from selfpose.utils.progress import progress_bar

FORMAT = "selfpose-pose-head"
VERSION = 1
WEIGHTS = "pose_head.safetensors"
META = "pose_head.json"


class PoseFitError(SelfposeError, RuntimeError):
    """The pose head cannot be fitted, saved or loaded as asked."""


@dataclass
class PoseConfig:
    """The pose stage (strict: unknown keys are errors).

    Attributes:
        head: ``mlp`` (2 hidden layers of 2048, dropout 0.5; Eq. 15) or
            ``martinez`` (residual MLP of Martinez et al., 1024 wide, 3 blocks).
        hidden, layers: the MLP's width and number of hidden layers.
        width, blocks: the Martinez head's width and residual blocks.
        dropout: dropout of either head.
        fraction: share of the training frames that are labelled (every K-th
            frame, see :func:`selfpose.pose.labels.label_subset`); used by
            :func:`selfpose.pose.evaluate.run_pose_stage`.
        steps: optimiser steps; ``epochs`` (when set) replaces it by
            ``epochs · ceil(N / batch_size)``.
        lr, lr_schedule: AdamW peak learning rate; ``cosine`` decays it to
            1% at the last step, ``constant`` keeps it (the shared schedule
            :func:`selfpose.training.toolkit.lr_at`, see :meth:`optim`).
        batch_size: samples per step (capped at the training set size).
        weight_decay: AdamW's decoupled weight decay (weight matrices only, as in pretraining).
        val_fraction, val_by: validation held out of the labelled frames when
            no validation set is given (see :func:`selfpose.pose.labels.holdout_mask`;
            0 = no model selection, the last step is kept).
        val_max_frames: validate on at most this many of the frames held out
            of ``train`` (when no ``val`` is given; the pose stage caps its own
            ``val`` the same way), evenly spaced in frame-index order
            (:func:`selfpose.pose.labels.evenly_spaced`); the rest stay held
            out, unused. A head's validation pass costs as much as its training
            steps on a whole held-out person (~46,000 frames at 100% labels in
            the CPU benchmark) while neighbouring frames at 25 fps tell the step
            choice little more; None: all.
        eval_every: validate every this many steps (and at the last step).
        patience: stop after this many validations without improvement;
            None = run every step.
        seed: initialisation, batches, validation split.
        normalise, target_scale_mm, standardise_features: see the module docstring.
        use_2d: append the 2D joints (the model's prediction when the feature
            set has one, else the stored 2D) to the features.
        device: where the head trains (``cpu``, ``cuda``, ``cuda:N``, ``auto``).
        autocast: train under bf16 autocast (about 1.5× faster on CPUs with
            AVX512-BF16; weights, optimiser and validation stay float32);
            ``auto``: only where the CPU has native bf16 (elsewhere it is emulated
            and many times slower).
        threads: torch intra-op threads while fitting (restored afterwards);
            None leaves torch's setting. Default 1: a head this small gains
            little from more threads, and on a busy CPU (parallel runs, data
            workers) they oversubscribe the cores — measured on 2 shared
            cores: 2048-wide MLP 36 ms/step with 1 thread vs 70 with 2; a
            128-wide one 40× faster with 1.
    """

    head: Literal["mlp", "martinez"] = "mlp"
    hidden: int = 2048
    layers: int = 2
    width: int = 1024
    blocks: int = 3
    dropout: float = 0.5
    fraction: float = 1.0
    steps: int = 2000
    epochs: int | None = None
    lr: float = 1e-3
    lr_schedule: Literal["cosine", "constant"] = "cosine"
    batch_size: int = 64
    weight_decay: float = 1e-4
    val_fraction: float = 0.1
    val_by: Literal["take", "sequence", "frames", "subject"] = "take"
    val_max_frames: int | None = None
    eval_every: int = 100
    patience: int | None = None
    seed: int = 0
    normalise: Literal["zscore", "scale"] = "zscore"
    target_scale_mm: float = 1000.0
    standardise_features: bool = True
    use_2d: bool = False
    device: str = "cpu"
    autocast: bool | Literal["auto"] = False
    threads: int | None = 1

    def __post_init__(self) -> None:
        from selfpose.training.device import check_device_name

        check_device_name(self.device, "pose.device")
        if self.head not in ("mlp", "martinez"):
            raise ConfigError(f"pose.head must be 'mlp' or 'martinez', got {self.head!r}")
        for name in ("hidden", "width", "steps", "batch_size", "eval_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"pose.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("layers", "blocks"):
            if getattr(self, name) < 0:
                raise ConfigError(f"pose.{name} must be >= 0, got {getattr(self, name)}")
        if self.epochs is not None and self.epochs < 1:
            raise ConfigError(f"pose.epochs must be >= 1 (or null to use steps), got {self.epochs}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"pose.threads must be >= 1 (or null: torch's default), got {self.threads}")
        if self.val_max_frames is not None and self.val_max_frames < 1:
            raise ConfigError(f"pose.val_max_frames must be >= 1 (or null: every held-out frame), got "
                              f"{self.val_max_frames}")
        if self.patience is not None and self.patience < 1:
            raise ConfigError(f"pose.patience must be >= 1 (or null: no early stopping), got {self.patience}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"pose.dropout must be in [0, 1), got {self.dropout}")
        if not 0 < self.fraction <= 1:
            raise ConfigError(f"pose.fraction must be in (0, 1], got {self.fraction}")
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"pose.val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.val_by not in SPLIT_BY:
            raise ConfigError(f"pose.val_by must be one of {SPLIT_BY}, got {self.val_by!r}")
        if not (math.isfinite(self.lr) and self.lr > 0) or self.weight_decay < 0 or self.target_scale_mm <= 0:
            raise ConfigError("pose.lr (a finite number) and pose.target_scale_mm must be > 0 and "
                              f"pose.weight_decay >= 0, got lr={self.lr!r}")
        if self.normalise not in ("zscore", "scale"):
            raise ConfigError(f"pose.normalise must be 'zscore' or 'scale', got {self.normalise!r}")
        if self.lr_schedule not in ("cosine", "constant"):
            raise ConfigError(f"pose.lr_schedule must be 'cosine' or 'constant', got {self.lr_schedule!r}")

    def optim(self) -> OptimConfig:
        """The optimiser and schedule of the head in the shared toolkit's terms (AdamW, no warm-up,
        cosine to 1% of ``lr`` or constant)."""
        return OptimConfig(optimizer="adamw", lr=self.lr, weight_decay=self.weight_decay,
                           schedule=self.lr_schedule, min_lr_ratio=0.01, warmup_steps=0, grad_clip=None)

    def head_kwargs(self) -> dict:
        if self.head == "mlp":
            return {"hidden": self.hidden, "layers": self.layers, "dropout": self.dropout}
        return {"width": self.width, "blocks": self.blocks, "dropout": self.dropout}


def pose_inputs(fs: FeatureSet, use_2d: bool) -> np.ndarray:
    """The head's raw input ``(N, D [+ 2J])`` float32: features, then flattened 2D px when ``use_2d``."""
    if not np.isfinite(fs.features).all():
        raise FeatureError("the features contain NaN or inf; check the feature function (a diverged model?)")
    if not use_2d:
        return fs.features.astype(np.float32, copy=False)
    j2 = fs.joints2d_input()
    if j2 is None:
        raise FeatureError("pose.use_2d=true but the feature set has no 2D joints (neither stored nor "
                           "predicted); extract with a joints2d_fn or use a dataset with joints2d")
    return np.concatenate([fs.features, j2.reshape(len(fs), -1)], axis=1).astype(np.float32, copy=False)


class FittedPose:
    """A trained pose head with its normalisation: features → pelvis-centred 3D (mm).

    Attributes:
        head: the network (eval mode), inputs/outputs normalised.
        cfg: the :class:`PoseConfig` it was trained with.
        in_mean, in_std: ``(D_in,)`` input normalisation (features [+ 2D]).
        out_mean, out_std: ``(3J,)`` target normalisation, mm.
        num_joints: ``J``.
        curve: one dict per validation (``step``, ``train_loss`` — mean MSE in
            normalised units since the last one —, ``lr``, ``val_mpjpe``,
            ``val_n_mpjpe`` mm, ``seconds``).
        best_step, best_val_n_mpjpe: the kept checkpoint (None without validation).
    """

    def __init__(self, head: nn.Module, cfg: PoseConfig, in_mean: torch.Tensor, in_std: torch.Tensor,
                 out_mean: torch.Tensor, out_std: torch.Tensor, num_joints: int, curve: list[dict] | None = None,
                 best_step: int | None = None, best_val_n_mpjpe: float | None = None):
        self.head, self.cfg, self.num_joints = head.eval(), cfg, int(num_joints)
        self.in_mean, self.in_std = in_mean.float().cpu(), in_std.float().cpu()
        self.out_mean, self.out_std = out_mean.float().cpu(), out_std.float().cpu()
        self.curve = list(curve or [])
        self.best_step, self.best_val_n_mpjpe = best_step, best_val_n_mpjpe

    @property
    def in_dim(self) -> int:
        return int(self.in_mean.numel())

    def predict(self, x: FeatureSet | np.ndarray | torch.Tensor, joints2d: np.ndarray | None = None,
                batch_size: int = 8192) -> np.ndarray:
        """Pelvis-centred 3D poses ``(N, J, 3)`` float32 mm, camera frame.

        Args:
            x: a :class:`FeatureSet` (its 2D is used when the head needs it),
                or ``(N, D)`` features.
            joints2d: ``(N, J, 2)`` px, needed with raw features when the head
                was trained with ``use_2d``.
            batch_size: rows per forward pass.
        """
        if isinstance(x, FeatureSet):
            raw = pose_inputs(x, self.cfg.use_2d)
        else:
            raw = x.detach().float().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, np.float32)
            if raw.ndim != 2:
                raise FeatureError(f"features must be (N, D), got shape {raw.shape}")
            if self.cfg.use_2d:
                if joints2d is None:
                    raise FeatureError("this pose head was trained with use_2d: pass joints2d (N, J, 2) px "
                                       "or a FeatureSet")
                raw = np.concatenate([raw, np.asarray(joints2d, np.float32).reshape(len(raw), -1)], axis=1)
        if raw.shape[1] != self.in_dim:
            raise FeatureError(f"the pose head takes {self.in_dim} inputs, got {raw.shape[1]}; were the "
                               "features extracted with the same model (and use_2d setting)?")
        dev = next(self.head.parameters()).device
        out = np.empty((len(raw), self.num_joints, 3), np.float32)
        self.head.eval()
        with torch.inference_mode():
            for s in range(0, len(raw), batch_size):
                xb = torch.from_numpy(np.ascontiguousarray(raw[s:s + batch_size])).to(dev)
                out[s:s + batch_size] = self.forward_mm(xb).cpu().numpy()
        return out

    def _normalise_inputs(self, raw: torch.Tensor) -> torch.Tensor:
        x = (raw - self.in_mean.to(raw.device)) / self.in_std.to(raw.device)
        return torch.nan_to_num(x, nan=0.0)  # unknown 2D joints → the training mean

    def forward_mm(self, raw: torch.Tensor) -> torch.Tensor:
        """Tensor path of :meth:`predict`: raw inputs ``(B, D_in)`` on the head's device → ``(B, J, 3)`` mm.

        Differentiable unless called under ``inference_mode``; the head's
        train/eval mode is left as it is.
        """
        y = self.head(self._normalise_inputs(raw)).float()
        y = y * self.out_std.to(y.device) + self.out_mean.to(y.device)
        y = y.view(len(y), self.num_joints, 3)
        return y - y[:, :1]  # exactly pelvis-centred

    # -- persistence (safetensors + JSON, no pickle) -------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write ``path/pose_head.safetensors`` (weights, normalisation), ``path/pose_head.json`` and
        ``path/metrics.csv`` (the validation curve)."""
        from safetensors.torch import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        tensors = {f"head.{k}": v.detach().cpu().contiguous() for k, v in self.head.state_dict().items()}
        tensors.update({"norm.in_mean": self.in_mean, "norm.in_std": self.in_std,
                        "norm.out_mean": self.out_mean, "norm.out_std": self.out_std})
        save_file(tensors, str(path / WEIGHTS))
        meta = {"format": FORMAT, "version": VERSION, "config": to_dict(self.cfg), "in_dim": self.in_dim,
                "num_joints": self.num_joints, "best_step": self.best_step,
                "best_val_n_mpjpe": self.best_val_n_mpjpe, "curve": self.curve}
        (path / META).write_text(json.dumps(meta, indent=1))
        # The validation curve also as metrics.csv, the format of a pretraining run (read_metrics, plots).
        write_metrics(path, [{"time": r.get("seconds", 0.0), **{k: v for k, v in r.items() if k != "seconds"}}
                             for r in self.curve])
        return path

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> "FittedPose":
        """Read a head written by :meth:`save`."""
        from selfpose.utils.bundle import read_bundle

        path = Path(path)
        meta, tensors = read_bundle(path, WEIGHTS, META, FORMAT, VERSION, PoseFitError, "a pose head",
                                    "run fit-pose again")
        cfg = from_dict(PoseConfig, meta["config"])
        J = int(meta["num_joints"])
        head = make_head(cfg.head, int(meta["in_dim"]), 3 * J, **cfg.head_kwargs())
        head.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("head.")}, strict=True)
        return cls(head.to(device), cfg, tensors["norm.in_mean"], tensors["norm.in_std"], tensors["norm.out_mean"],
                   tensors["norm.out_std"], J, meta["curve"], meta["best_step"], meta["best_val_n_mpjpe"])


def _batches(n: int, size: int, gen: torch.Generator):
    """Endless fixed-size batches of indices, reshuffled every epoch (no batch of 1: BatchNorm needs 2)."""
    size = min(size, n)
    perm = torch.randperm(n, generator=gen)
    pos = 0
    while True:
        if pos + size > n:
            perm = torch.cat([perm[pos:], torch.randperm(n, generator=gen)])
            pos = 0
        yield perm[pos:pos + size]
        pos += size


def fit_pose(train: FeatureSet, cfg: PoseConfig, val: FeatureSet | None = None,
             progress: bool = True) -> FittedPose:
    """Train the pose head on ``train`` (MSE on pelvis-centred 3D, Eq. 15), select on ``val``.

    Args:
        train: labelled features (``joints3d`` required).
        cfg: :class:`PoseConfig`.
        val: validation features; None holds out ``cfg.val_fraction`` of
            ``train`` (by ``cfg.val_by``, whole takes by default). Without any
            validation the last step is kept.
        progress: show a progress bar.

    Returns:
        :class:`FittedPose` at the step with the lowest validation N-MPJPE.
    """
    if train.joints3d is None:
        raise PoseFitError("the training features have no joints3d; the pose stage needs 3D labels")
    if val is None and cfg.val_fraction > 0:
        mask = holdout_mask(train.takes, train.sequence_ids, train.frame_ids, cfg.val_fraction, cfg.val_by, cfg.seed,
                            subjects=train.subjects)
        keep = np.flatnonzero(mask)
        keep = evenly_spaced(keep, cfg.val_max_frames)
        train, val = train.subset(~mask), train.subset(keep)
    if val is not None and len(val) == 0:
        val = None
    if val is not None and val.joints3d is None:
        raise PoseFitError("the validation features have no joints3d")
    n = len(train)
    if n < 2:
        raise PoseFitError(f"need at least 2 labelled training frames, got {n}; raise pose.fraction")
    from selfpose.training.device import resolve_device

    dev = resolve_device(cfg.device, "pose.device")   # cuda on a machine without one: a one-line error
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)

    x = torch.from_numpy(pose_inputs(train, cfg.use_2d))
    J = train.joints3d.shape[1]
    y = torch.from_numpy(train.joints3d.reshape(n, 3 * J).astype(np.float32))
    if cfg.standardise_features:
        in_mean, in_std = column_spread(x)
    else:
        in_mean, in_std = torch.zeros(x.shape[1]), torch.ones(x.shape[1])
    if cfg.use_2d and not cfg.standardise_features:
        # 2D in px is never fed raw: z-score its columns even when the features are not.
        m2, s2 = column_spread(x[:, train.dim:])
        in_mean[train.dim:], in_std[train.dim:] = m2, s2
    if cfg.normalise == "zscore":
        out_mean, out_std = column_spread(y)
    else:
        out_mean, out_std = torch.zeros(3 * J), torch.full((3 * J,), float(cfg.target_scale_mm))

    head = make_head(cfg.head, x.shape[1], 3 * J, **cfg.head_kwargs()).to(dev)
    fitted = FittedPose(head, cfg, in_mean, in_std, out_mean, out_std, J)
    xn = fitted._normalise_inputs(x).to(dev)
    yn = ((y - out_mean) / out_std).to(dev)
    xv = yv = None
    if val is not None:
        xv = torch.from_numpy(pose_inputs(val, cfg.use_2d)).to(dev)
        yv = torch.from_numpy(val.joints3d.astype(np.float32)).to(dev)

    steps = cfg.steps if cfg.epochs is None else cfg.epochs * math.ceil(n / min(cfg.batch_size, n))
    fused = dev.type in ("cpu", "cuda")  # one kernel for all parameters: the optimiser dominates small batches
    optim = cfg.optim()
    opt = build_optimizer(head, optim, fused=fused, lr_key="pose.lr")
    # Checked without a host sync per step: nothing is saved before the head is finished.
    stepper = Stepper(opt, optim, steps, lr_key="pose.lr", defer_check=True)
    batches = _batches(n, cfg.batch_size, gen)
    amp = bf16_autocast(cfg.autocast, dev.type)
    threads = torch.get_num_threads()
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    try:
        best_state, best, best_step, curve = _train(head, fitted, stepper, batches, xn, yn,
                                                   (xv, yv) if val is not None else None, cfg, steps, amp,
                                                   progress)
    finally:
        torch.set_num_threads(threads)
    if best_state is not None:
        head.load_state_dict(best_state)
    fitted.head = head.eval()
    fitted.curve = curve
    fitted.best_step, fitted.best_val_n_mpjpe = best_step, (None if best_step is None else best)
    return fitted


class BestStep:
    """Keeps the weights of the step with the lowest validation error (model selection) and counts
    evaluations without improvement for early stopping (``patience``; None = never stop)."""

    def __init__(self, patience: int | None):
        self.patience, self.value, self.step, self.state, self.stale = patience, math.inf, None, None, 0

    def update(self, value: float, step: int, module: torch.nn.Module) -> None:
        if value < self.value:
            self.value, self.step, self.stale = value, step, 0
            self.state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        else:
            self.stale += 1

    @property
    def stop(self) -> bool:
        return self.patience is not None and self.stale >= self.patience


def _train(head, fitted, stepper: Stepper, batches, xn, yn, val, cfg: PoseConfig, steps: int, amp,
           progress: bool):
    """The optimisation loop of :func:`fit_pose`; returns ``(best_state, best, best_step, curve)``."""
    dev = xn.device
    best = BestStep(cfg.patience)
    curve: list[dict] = []
    loss_sum, loss_n, t0 = torch.zeros((), device=dev), 0, time.perf_counter()
    t_window = t0
    with progress_bar(None if progress else False) as bar:
        task = bar.add_task("pose head", total=steps)
        for step in range(1, steps + 1):
            head.train()
            lr = stepper.set_lr(step - 1)
            idx = next(batches).to(dev)
            with amp:
                out = head(xn[idx])
            loss = torch.mean((out.float() - yn[idx]) ** 2)
            stepper.step(loss, step - 1, {"mse": loss})
            loss_sum += loss.detach()
            loss_n += 1
            if step % cfg.eval_every and step != steps:
                continue
            stepper.check()
            now = time.perf_counter()
            row = {"step": step, "train_loss": float(loss_sum) / loss_n, "lr": lr}
            bar.update(task, completed=step,
                       description=progress_text("pose head", row["train_loss"], (now - t_window) / loss_n))
            loss_sum.zero_()
            loss_n, t_window = 0, now
            if val is not None:
                xv, yv = val
                head.eval()
                with torch.inference_mode():
                    pv = fitted.forward_mm(xv)
                row["val_mpjpe"] = float(mpjpe(pv, yv))
                row["val_n_mpjpe"] = float(n_mpjpe(pv, yv))
                best.update(row["val_n_mpjpe"], step, head)
            row["seconds"] = time.perf_counter() - t0
            curve.append(row)
            if best.stop:
                break
    return best.state, best.value, best.step, curve
