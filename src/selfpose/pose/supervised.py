"""Baseline (b): the same network trained fully supervised, from scratch, on the same labelled frames.

Honari et al. compare the self-supervised pose stage with "the same network
trained fully supervised from scratch on the same labelled frames". Here: a
randomly initialised :class:`~selfpose.models.temporal.TemporalModel` with
the same :class:`~selfpose.models.temporal.ModelConfig` (detector + encoder;
the decoder is not built since nothing is reconstructed) and the same pose
head as the pose stage, trained end to end — detector, encoder and head —
with the MSE on pelvis-centred 3D (Eq. 15) of the labelled frames only.

* Labelled frames and the validation split are exactly the pose stage's
  (:func:`~selfpose.pose.labels.label_subset`,
  :func:`~selfpose.pose.labels.split_validation`, same ``fraction``,
  ``val_fraction``, ``val_by``, ``seed``).
* Augmentation: colour jitter only (per-image brightness, contrast and
  saturation factors in ``[1 − s, 1 + s]``, ``s = colour_jitter``) applied to
  the whole frame before the detector — it changes appearance, never the
  geometry, so the 3D labels stay valid. No flips or crops (they would need
  the labels transformed and the paper's self-supervised model gets none).
* Early stopping: every ``eval_every`` steps the validation frames go
  through the very path used for evaluation (:func:`~selfpose.pose.features.extract`
  + :meth:`~selfpose.pose.fit.FittedPose.predict`); the step with the lowest
  N-MPJPE is kept, and ``patience`` validations without improvement stop the run.
* Budget: ``steps`` is a parameter; for a fair comparison give it the
  pretraining budget plus the pose stage's steps.
* Crop (``crop``, not in the paper): ``detector`` trains the detector from
  the pose loss alone, as the paper's baseline does; on data where the person
  is small and placed anywhere it learns no box (IoU 0.21 with the true box
  on the identity-diverse data of issue 14) and the reference then measures
  a failed detector, not what the pixels tell. ``true_box`` reads the crop a
  detector that found the person exactly would cut — the square around the
  stored person box × ``model.crop_margin``, as the ``random_same_crop``
  reference's ``true_box`` crop — so the row shows how far supervision alone
  reads pose from the person's pixels. Every frame then needs its box
  (``feature_fn(frames, boxes)``, ``extract(..., pass_boxes=True)``).

The result, :class:`SupervisedModel`, exposes ``feature_fn``/``box_fn`` and a
:class:`~selfpose.pose.fit.FittedPose` (``.pose``) on those features, so the
same :func:`~selfpose.pose.features.extract` +
:func:`~selfpose.pose.evaluate.evaluate` apply unchanged.
"""

from __future__ import annotations

import dataclasses
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
from selfpose.data.store import Dataset
from selfpose.errors import SelfposeError
from selfpose.evaluation.metrics import mpjpe, n_mpjpe
from selfpose.models.heads import make_head
from selfpose.models.stn import box_px_to_theta
from selfpose.models.temporal import ModelConfig, TemporalModel
from selfpose.pose.features import extract, frames_to_tensor, read_arrays
from selfpose.pose.fit import BestStep, FittedPose, PoseConfig, _batches
from selfpose.pose.labels import SPLIT_BY, evenly_spaced, label_subset, split_validation
from selfpose.training.config import OptimConfig
from selfpose.training.precision import bf16_autocast
from selfpose.training.toolkit import Stepper, build_optimizer, column_spread, progress_text
from selfpose.utils.progress import progress_bar

META = "supervised.json"
WEIGHTS = "model.safetensors"
FORMAT = "selfpose-supervised"
VERSION = 1
#: Where the baseline's encoder reads the person (:attr:`SupervisedConfig.crop`).
CROPS = ("detector", "true_box")


class SupervisedError(SelfposeError, RuntimeError):
    """The supervised baseline cannot be trained, saved or loaded as asked."""


@dataclass
class SupervisedConfig:
    """Baseline (b) (strict: unknown keys are errors).

    Attributes:
        model: the network's sizes — use the self-supervised run's ModelConfig.
        head, hidden, layers, width, blocks, dropout: the pose head, as in
            :class:`~selfpose.pose.fit.PoseConfig`.
        fraction, val_fraction, val_by, seed: labelled frames and validation
            split, as in the pose stage (same values → same frames).
        steps: optimiser steps (end to end).
        lr, weight_decay, batch_size: AdamW; cosine decay to 1% of ``lr`` (the
            shared toolkit's optimiser and schedule, see :meth:`optim`).
        colour_jitter: strength ``s`` of the colour jitter (0 = off).
        eval_every, patience: validation period (steps) and early stopping
            (validations without improvement; None = never stop early).
        val_max_frames: validate on at most this many held-out frames, evenly
            spaced, as :attr:`PoseConfig.val_max_frames <selfpose.pose.fit.PoseConfig>`; None: all.
        normalise, target_scale_mm: target normalisation as in PoseConfig.
        eval_batch_size: frames per forward pass when validating.
        device: ``cpu``, ``cuda``, ``cuda:N``, ``auto``.
        autocast: bf16 autocast for the forward passes (``auto``: where the CPU has native bf16).
        threads: torch intra-op threads while training (restored afterwards);
            None leaves torch's setting (convolutions use the cores; on a
            busy CPU 1 avoids oversubscription).
        crop: ``detector`` (the network's own detector, learnt end to end) or
            ``true_box`` (the stored person box; see the module docstring).
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    head: Literal["mlp", "martinez"] = "mlp"
    hidden: int = 2048
    layers: int = 2
    width: int = 1024
    blocks: int = 3
    dropout: float = 0.5
    fraction: float = 1.0
    val_fraction: float = 0.1
    val_by: Literal["take", "sequence", "frames", "subject"] = "take"
    seed: int = 0
    steps: int = 2000
    lr: float = 3e-4
    weight_decay: float = 1e-4
    batch_size: int = 32
    colour_jitter: float = 0.3
    eval_every: int = 100
    patience: int | None = None
    val_max_frames: int | None = None
    normalise: Literal["zscore", "scale"] = "zscore"
    target_scale_mm: float = 1000.0
    eval_batch_size: int = 64
    device: str = "cpu"
    autocast: bool | Literal["auto"] = False
    threads: int | None = None
    crop: Literal["detector", "true_box"] = "detector"

    def __post_init__(self) -> None:
        from selfpose.training.device import check_device_name

        check_device_name(self.device, "supervised.device")
        for name in ("steps", "batch_size", "eval_every", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"supervised.{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_size < 2:
            raise ConfigError("supervised.batch_size must be >= 2 (batch normalisation)")
        if not 0 <= self.colour_jitter < 1:
            raise ConfigError(f"supervised.colour_jitter must be in [0, 1), got {self.colour_jitter}")
        if self.crop not in CROPS:
            raise ConfigError(f"supervised.crop must be one of {CROPS}, got {self.crop!r}")
        if self.val_by not in SPLIT_BY:
            raise ConfigError(f"supervised.val_by must be one of {SPLIT_BY}, got {self.val_by!r}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"supervised.threads must be >= 1 or null, got {self.threads}")
        if self.patience is not None and self.patience < 1:
            raise ConfigError(f"supervised.patience must be >= 1 or null, got {self.patience}")
        if self.val_max_frames is not None and self.val_max_frames < 1:
            raise ConfigError(f"supervised.val_max_frames must be >= 1 or null, got {self.val_max_frames}")
        if not (math.isfinite(self.lr) and self.lr > 0) or self.weight_decay < 0:
            raise ConfigError(f"supervised.lr must be a finite number > 0 and supervised.weight_decay >= 0, "
                              f"got lr={self.lr!r}, weight_decay={self.weight_decay!r}")
        self.pose_config()  # validates the shared head/label settings

    def optim(self) -> OptimConfig:
        """Optimiser and schedule in the shared toolkit's terms: AdamW, cosine to 1% of ``lr``, no warm-up."""
        return OptimConfig(optimizer="adamw", lr=self.lr, weight_decay=self.weight_decay, schedule="cosine",
                           min_lr_ratio=0.01, warmup_steps=0, grad_clip=None)

    def pose_config(self) -> PoseConfig:
        """The :class:`PoseConfig` of the head (features are not standardised: they are learnt)."""
        return PoseConfig(head=self.head, hidden=self.hidden, layers=self.layers, width=self.width,
                          blocks=self.blocks, dropout=self.dropout, fraction=self.fraction, steps=self.steps,
                          lr=self.lr, batch_size=self.batch_size, weight_decay=self.weight_decay,
                          val_fraction=self.val_fraction, val_by=self.val_by, eval_every=self.eval_every,
                          patience=self.patience, seed=self.seed, normalise=self.normalise,
                          target_scale_mm=self.target_scale_mm, standardise_features=False, use_2d=False,
                          device=self.device, autocast=self.autocast, threads=self.threads)


def colour_jitter(frames: torch.Tensor, strength: float, gen: torch.Generator | None = None) -> torch.Tensor:
    """Per-image brightness, contrast and saturation jitter of ``(B, 3, H, W)`` frames in [0, 1].

    Each factor is drawn uniformly in ``[1 − strength, 1 + strength]``;
    contrast scales around the image's mean grey, saturation around each
    pixel's grey. Output clamped to [0, 1].
    """
    if strength <= 0:
        return frames
    B = frames.shape[0]
    f = 1 + strength * (2 * torch.rand(3, B, 1, 1, 1, generator=gen) - 1)
    f = f.to(frames.device, frames.dtype)
    x = frames * f[0]
    grey = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
    x = grey.mean(dim=(2, 3), keepdim=True) + f[1] * (x - grey.mean(dim=(2, 3), keepdim=True))
    grey = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
    x = grey + f[2] * (x - grey)
    return x.clamp(0, 1)


class SupervisedModel(nn.Module):
    """The trained baseline: network + pose head, usable exactly like a pretrained feature function.

    Attributes:
        model: the trained network (a TemporalModel, or any module with
            ``prepare``/``encode``/``feature_dim`` like it).
        pose: :class:`FittedPose` mapping ``feature_fn``'s features to 3D mm.
        cfg: the :class:`SupervisedConfig`.
        curve: one dict per validation (``step``, ``train_loss``, ``lr``,
            ``val_mpjpe``, ``val_n_mpjpe``, ``seconds``).
        best_step: the kept step (None without validation).
        split: ``{"train_subjects", "val_subjects"}`` of the labelled frames it trained
            and validated on (empty lists when unknown).
    """

    def __init__(self, model: nn.Module, pose: FittedPose, cfg: SupervisedConfig, curve: list[dict] | None = None,
                 best_step: int | None = None):
        super().__init__()
        self.model, self.head = model, pose.head
        self.pose, self.cfg = pose, cfg
        self.curve, self.best_step = list(curve or []), best_step
        self.split: dict[str, list[str]] = {"train_subjects": [], "val_subjects": []}

    @property
    def needs_boxes(self) -> bool:
        """True when :meth:`feature_fn` must be given the true person boxes (``crop: true_box``)."""
        return self.cfg.crop == "true_box"

    def _encode(self, frames: torch.Tensor, boxes: torch.Tensor | None = None) -> dict:
        return self._encode_prepared(self.model.prepare(frames), tuple(frames.shape[-2:]), boxes)

    def _encode_prepared(self, prepared: torch.Tensor, hw: tuple[int, int], boxes: torch.Tensor | None) -> dict:
        """Prepared frames (B, 3, h, w) of stored size ``hw`` → ``encode``'s dict + ``box_stored_px``."""
        H, W = hw
        h, w = prepared.shape[-2:]
        if self.needs_boxes:
            if boxes is None:
                raise SupervisedError("this supervised baseline reads the true person box (crop: true_box); "
                                      "call feature_fn(frames, boxes) or extract(..., pass_boxes=True)")
            if boxes.shape != (prepared.shape[0], 4):
                raise SupervisedError(f"boxes must have shape (B, 4) = x0, y0, x1, y1 px, got {tuple(boxes.shape)}")
            # θ is normalised to the frame, so stored-pixel boxes carry over to the resized frame unchanged.
            v, _ = self.model.encode_box(prepared, box_px_to_theta(boxes.to(prepared.device, torch.float32), W, H))
            return {"v": v, "box_stored_px": boxes.to(prepared.device, torch.float32)}
        out = self.model.encode(prepared)
        # encode() reports boxes in pixels of the resized frame; the store's boxes are in stored pixels.
        scale = torch.tensor([W / w, H / h, W / w, H / h], device=out["box_px"].device, dtype=torch.float32)
        out["box_stored_px"] = out["box_px"].float() * scale
        return out

    def feature_fn(self, frames: torch.Tensor, boxes: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Frames ``(B, 3, H, W)`` in [0, 1] (and, with ``crop: true_box``, the person boxes ``(B, 4)`` px)
        → ``{"features": (B, D), "boxes": (B, 4) px of the input frames}``."""
        self.eval()
        out = self._encode(frames, boxes)
        return {"features": out["v"].float(), "boxes": out["box_stored_px"]}

    def box_fn(self, frames: torch.Tensor, boxes: torch.Tensor | None = None) -> torch.Tensor:
        """Predicted boxes ``(B, 4)`` x0, y0, x1, y1 in px of the input frames (the given ones with ``true_box``)."""
        return self.feature_fn(frames, boxes)["boxes"]

    def predict_frames(self, frames: torch.Tensor, boxes: torch.Tensor | None = None) -> torch.Tensor:
        """Frames ``(B, 3, H, W)`` in [0, 1] → pelvis-centred 3D ``(B, J, 3)`` mm (eval mode)."""
        self.eval()
        return self.pose.forward_mm(self.feature_fn(frames, boxes)["features"])

    # -- persistence (safetensors + JSON, no pickle) ----------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write ``path/model.safetensors``, ``path/supervised.json`` and ``path/pose_head/``."""
        from safetensors.torch import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()},
                  str(path / WEIGHTS))
        self.pose.save(path / "pose_head")
        meta = {"format": FORMAT, "version": VERSION, "config": to_dict(self.cfg), "curve": self.curve,
                "best_step": self.best_step, "split": self.split}
        (path / META).write_text(json.dumps(meta, indent=1))
        return path

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> "SupervisedModel":
        """Read a baseline written by :meth:`save` (its network is a TemporalModel)."""
        from selfpose.utils.bundle import read_bundle

        path = Path(path)
        meta, state = read_bundle(path, WEIGHTS, META, FORMAT, VERSION, SupervisedError,
                                  "a supervised baseline", "train it again")
        cfg = from_dict(SupervisedConfig, meta["config"])
        model = TemporalModel(_network_config(cfg))
        model.load_state_dict(state, strict=True)
        pose = FittedPose.load(path / "pose_head", device=device)
        out = cls(model.to(device).eval(), pose, cfg, meta["curve"], meta["best_step"]).eval()
        out.split = meta.get("split", out.split)   # absent in files written before it was recorded
        return out


def _network_config(cfg: SupervisedConfig) -> ModelConfig:
    # Nothing is reconstructed: do not build (or save) the decoder.
    return dataclasses.replace(cfg.model, decoder=False)


def train_supervised(train_ds: Dataset, cfg: SupervisedConfig, model: nn.Module | None = None,
                     progress: bool = True) -> SupervisedModel:
    """Train baseline (b) on the labelled frames of ``train_ds`` (see the module docstring).

    Args:
        train_ds: the training dataset (same selection as the pose stage's).
        cfg: :class:`SupervisedConfig`.
        model: a network to train instead of a fresh ``TemporalModel(cfg.model)``
            (tests; it needs ``prepare``, ``encode`` → ``{"v", "box_px"}`` and
            ``feature_dim``).
        progress: show a progress bar.

    Returns:
        The :class:`SupervisedModel` at the best validation step.
    """
    from selfpose.training.device import resolve_device

    dev = resolve_device(cfg.device, "supervised.device")   # cuda on a machine without one: a one-line error
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    labelled = label_subset(train_ds, cfg.fraction, seed=cfg.seed)
    if cfg.val_fraction > 0:
        tr, va = split_validation(train_ds, labelled, cfg.val_fraction, cfg.val_by, cfg.seed)
        va = evenly_spaced(va, cfg.val_max_frames)   # the rest stay held out, unused
    else:
        tr, va = labelled, labelled[:0]
    sizes = {(train_ds.sequences[s].meta.height, train_ds.sequences[s].meta.width) for s in np.unique(tr[:, 0])}
    if len(sizes) != 1:
        raise SupervisedError(f"labelled frames have several sizes {sorted(sizes)}; train on sequences of one "
                              "frame size (prepare the dataset at one resolution)")
    if len(tr) < 2:
        raise SupervisedError(f"need at least 2 labelled training frames, got {len(tr)}; raise fraction")

    j3 = read_arrays(train_ds, tr, ("joints3d",))["joints3d"].astype(np.float32)
    J = j3.shape[1]
    y = torch.from_numpy((j3 - j3[:, :1]).reshape(len(tr), 3 * J))
    if cfg.normalise == "zscore":
        out_mean, out_std = column_spread(y)
    else:
        out_mean, out_std = torch.zeros(3 * J), torch.full((3 * J,), float(cfg.target_scale_mm))
    yn = ((y - out_mean) / out_std).to(dev)

    net = (model if model is not None else TemporalModel(_network_config(cfg))).to(dev)
    D = int(net.feature_dim())
    pcfg = cfg.pose_config()
    head = make_head(cfg.head, D, 3 * J, **pcfg.head_kwargs()).to(dev)
    pose = FittedPose(head, pcfg, torch.zeros(D), torch.ones(D), out_mean, out_std, J)
    result = SupervisedModel(net, pose, cfg)
    subjects = lambda f: sorted({train_ds.sequences[i].meta.subject for i in np.unique(f[:, 0])})   # noqa: E731
    result.split = {"train_subjects": subjects(tr), "val_subjects": subjects(va)}

    threads = torch.get_num_threads()
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    try:
        _train(result, train_ds, tr, va, yn, cfg, gen, dev, progress)
    finally:
        torch.set_num_threads(threads)
    return result


def _train(result: SupervisedModel, train_ds: Dataset, tr: np.ndarray, va: np.ndarray, yn: torch.Tensor,
           cfg: SupervisedConfig, gen: torch.Generator, dev: torch.device, progress: bool) -> None:
    """The optimisation loop of :func:`train_supervised`; leaves ``result`` at its best step."""
    net, head, pose = result.model, result.head, result.pose
    optim = cfg.optim()
    opt = build_optimizer(result, optim, lr_key="supervised.lr")
    # Checked without a host sync per step: nothing is saved before training ends.
    stepper = Stepper(opt, optim, cfg.steps, lr_key="supervised.lr", defer_check=True)
    amp = bf16_autocast(cfg.autocast, dev.type)
    batches = _batches(len(tr), cfg.batch_size, gen)
    best = BestStep(cfg.patience)
    curve: list[dict] = []
    loss_sum, loss_n, t0 = torch.zeros((), device=dev), 0, time.perf_counter()
    t_window = t0
    with progress_bar(None if progress else False) as bar:
        task = bar.add_task("supervised", total=cfg.steps)
        for step in range(1, cfg.steps + 1):
            result.train()
            lr = stepper.set_lr(step - 1)
            rows = next(batches).numpy()
            arrays = read_arrays(train_ds, tr[rows], ("frames", "boxes") if result.needs_boxes else ("frames",))
            frames = frames_to_tensor(arrays["frames"], dev)
            hw = tuple(frames.shape[-2:])
            frames = colour_jitter(net.prepare(frames), cfg.colour_jitter, gen)
            boxes = torch.from_numpy(arrays["boxes"]).to(dev) if result.needs_boxes else None
            with amp:
                pred = head(result._encode_prepared(frames, hw, boxes)["v"])
            loss = torch.mean((pred.float() - yn[torch.from_numpy(rows).to(dev)]) ** 2)
            stepper.step(loss, step - 1, {"mse": loss})
            loss_sum += loss.detach()  # no host sync per step
            loss_n += 1
            bar.update(task, completed=step)
            if step % cfg.eval_every and step != cfg.steps:
                continue
            stepper.check()
            now = time.perf_counter()
            row = {"step": step, "train_loss": float(loss_sum) / loss_n, "lr": lr}
            bar.update(task, description=progress_text("supervised", row["train_loss"], (now - t_window) / loss_n))
            loss_sum.zero_()
            loss_n, t_window = 0, now
            if len(va):
                fs = extract(result.feature_fn, train_ds, va, batch_size=cfg.eval_batch_size, device=dev,
                             autocast=cfg.autocast, progress=False, pass_boxes=result.needs_boxes)
                pv = pose.predict(fs)
                row["val_mpjpe"], row["val_n_mpjpe"] = float(mpjpe(pv, fs.joints3d)), float(n_mpjpe(pv, fs.joints3d))
                best.update(row["val_n_mpjpe"], step, result)
            row["seconds"] = time.perf_counter() - t0
            curve.append(row)
            if best.stop:
                break
    if best.state is not None:
        result.load_state_dict(best.state)
    result.eval()
    result.curve, result.best_step = curve, best.step
    pose.curve, pose.best_step = curve, best.step
    pose.best_val_n_mpjpe = None if best.step is None else best.value
