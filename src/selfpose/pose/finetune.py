"""Transfer by fine-tuning (Jenni & Favaro's protocol), for every method: ``fit-pose --finetune``.

The frozen pose stage (:mod:`selfpose.pose.stage`) reads a method's features
as they are. Fine-tuning instead trains the later layers with the pose head:

* the backbone the features come from (:meth:`Method.finetune_backbone
  <selfpose.methods.base.Method.finetune_backbone>`, a house ResNet) keeps its
  stem and first ``frozen_stages`` residual stages frozen — their weights
  untouched and their batch-norm statistics fixed (eval mode) — and the
  later stages train; so do the modules between the backbone and the
  features (e.g. the temporal model's ``v`` layer), except what the method
  keeps frozen (:meth:`~selfpose.methods.base.Method.finetune_frozen`, e.g.
  the temporal model's detector, so the crop stays the pretrained one);
* a fresh pose head (``pose.head`` etc., as the frozen stage) on the
  features, MSE on z-scored pelvis-centred 3D of the labelled frames;
* optionally the head first trains alone on the features as they are
  (``head_warmup_steps``: linear probe, then fine-tune) and the method's
  layers learn at a fraction of the head's rate (``method_lr_scale``);
* AdamW (weight decay on weight matrices and kernels), cosine learning rate
  to 1% of ``lr``; colour jitter on the frames (geometry untouched, so the
  labels stay valid); the forward pass under bf16 autocast where the pose
  stage's ``autocast`` allows it (the head and the loss in float32);
* the labelled frames and the held-out validation frames are exactly the
  frozen stage's (:func:`~selfpose.pose.stage.split_labels`: ``pose.fraction``,
  ``pose.val_by``…), and the step with the lowest validation N-MPJPE is kept.

The pose folder is the frozen stage's layout — ``pose_head/``, ``pose.json``,
``encoder/`` — with the *fine-tuned* method's weights in ``encoder/`` (its
sha256 recorded as usual), so ``evaluate``/``predict`` load it unchanged.
``pose.json`` records ``finetune`` (the settings, the trained parameter
count, the validation curve). No closed-form probes are fitted: they measure
frozen features.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from selfpose.config import ConfigError, to_dict
from selfpose.errors import SelfposeError

#: The backbone's stages, in order (the stem is conv1 + bn1).
STEM = ("conv1", "bn1")


class FinetuneError(SelfposeError, RuntimeError):
    """A method cannot be fine-tuned as asked."""


@dataclass
class FinetuneConfig:
    """``finetune`` of :class:`~selfpose.pose.stage.PoseStageConfig` (strict: unknown keys are errors).

    Attributes:
        enabled: fine-tune (``fit-pose --finetune``) instead of fitting on frozen features.
        frozen_stages: residual stages kept frozen with the stem (Jenni & Favaro: 3 of a ResNet's 4).
        steps: optimiser steps.
        lr: AdamW peak learning rate (cosine to 1%).
        weight_decay: AdamW decoupled weight decay (weights and kernels only).
        batch_size: labelled frames per step (≥ 2: batch normalisation).
        colour_jitter: per-image brightness/contrast/saturation strength (0: off).
        eval_every: validate every this many steps (and at the last).
        patience: validations without improvement before stopping (None: never).
        threads: torch intra-op threads while training (None: torch's setting).
        method_lr_scale: the method's trained layers learn at ``lr`` × this, the fresh head at ``lr``
            (1: one rate; below 1 keeps pretrained layers closer to where pretraining left them).
        head_warmup_steps: the first this many of ``steps`` train the head alone on the method's
            features as they are (method in eval mode, no gradient into it), then everything trains —
            "linear probe, then fine-tune" (Kumar et al., ICLR 2022): a random head's first
            gradients otherwise rewrite pretrained layers before the head reads them (0: off;
            ``steps``: the head alone throughout, the method unchanged). The cosine schedule runs over
            all ``steps``, so the method starts training part-way down it.
    """

    enabled: bool = False
    frozen_stages: int = 3
    steps: int = 1000
    lr: float = 3e-4
    weight_decay: float = 1e-4
    batch_size: int = 32
    colour_jitter: float = 0.2
    eval_every: int = 100
    patience: int | None = None
    threads: int | None = None
    method_lr_scale: float = 1.0
    head_warmup_steps: int = 0

    def __post_init__(self) -> None:
        if self.frozen_stages < 0:
            raise ConfigError(f"finetune.frozen_stages must be >= 0, got {self.frozen_stages}")
        for name in ("steps", "eval_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"finetune.{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_size < 2:
            raise ConfigError(f"finetune.batch_size must be >= 2 (batch normalisation), got {self.batch_size}")
        if not self.lr > 0 or self.weight_decay < 0:
            raise ConfigError(f"finetune.lr must be > 0 and finetune.weight_decay >= 0, got {self.lr}, "
                              f"{self.weight_decay}")
        if not 0 <= self.colour_jitter < 1:
            raise ConfigError(f"finetune.colour_jitter must be in [0, 1), got {self.colour_jitter}")
        if self.patience is not None and self.patience < 1:
            raise ConfigError(f"finetune.patience must be >= 1 or null, got {self.patience}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"finetune.threads must be >= 1 or null, got {self.threads}")
        if not self.method_lr_scale > 0:
            raise ConfigError(f"finetune.method_lr_scale must be > 0, got {self.method_lr_scale}")
        if not 0 <= self.head_warmup_steps <= self.steps:
            raise ConfigError(f"finetune.head_warmup_steps must be in [0, finetune.steps={self.steps}], got "
                              f"{self.head_warmup_steps}")


def frozen_modules(backbone: nn.Module, frozen_stages: int) -> list[nn.Module]:
    """The stem and the first ``frozen_stages`` residual stages of a house ResNet."""
    n = int(getattr(backbone, "num_stages", 0))
    if not hasattr(backbone, "conv1") or n == 0:
        raise FinetuneError(f"the fine-tuned backbone must be a house ResNet (conv1, bn1, layer1…), got "
                            f"{type(backbone).__name__}")
    if frozen_stages > n:
        raise FinetuneError(f"finetune.frozen_stages={frozen_stages} but the backbone has {n} stages; "
                            f"use at most {n}")
    return [getattr(backbone, s) for s in STEM] + [getattr(backbone, f"layer{k + 1}") for k in range(frozen_stages)]


def freeze_for_finetuning(method, frozen_stages: int) -> list[nn.Module]:
    """Set ``requires_grad`` for fine-tuning ``method``; returns the frozen modules (to keep in eval mode).

    Everything trains except the backbone's stem and first ``frozen_stages``
    stages and the method's :meth:`finetune_frozen` modules.
    """
    frozen = frozen_modules(method.finetune_backbone(), frozen_stages) + list(method.finetune_frozen())
    for p in method.parameters():
        p.requires_grad_(True)
    for m in frozen:
        for p in m.parameters():
            p.requires_grad_(False)
    return frozen


def _set_train(method, frozen: list[nn.Module]) -> None:
    """Train mode, except the frozen modules (batch-norm statistics fixed)."""
    method.train()
    for m in frozen:
        m.eval()


def finetune_pose(run, ds, cfg, progress: bool = True):
    """Fine-tune ``run.method`` with a pose head on the labelled frames of ``ds`` (see the module docstring).

    Args:
        run: the loaded :class:`~selfpose.pretrain.Run` (its method is changed in place).
        ds: the dataset (already restricted to ``cfg.subjects``).
        cfg: the :class:`~selfpose.pose.stage.PoseStageConfig` (``pose`` and ``finetune``).
        progress: show a progress bar.

    Returns:
        ``(FittedPose, info)``: the head at the kept step (the method holds the
        same step's weights, in eval mode) and what ``pose.json`` records.
    """
    from selfpose.evaluation.metrics import mpjpe, n_mpjpe
    from selfpose.models.heads import make_head
    from selfpose.pose.features import extract, frames_to_tensor, read_arrays, read_backgrounds
    from selfpose.pose.fit import BestStep, FittedPose, _batches
    from selfpose.pose.stage import pose_feature_fn, reads_background, reads_boxes, split_labels
    from selfpose.pose.supervised import colour_jitter
    from selfpose.training.config import OptimConfig
    from selfpose.training.precision import bf16_autocast
    from selfpose.training.toolkit import Stepper, build_optimizer, column_spread
    from selfpose.utils.progress import progress_bar

    fc, pc = cfg.finetune, cfg.pose
    method = run.method
    dev = next(method.parameters()).device
    torch.manual_seed(pc.seed)
    gen = torch.Generator().manual_seed(pc.seed)
    labelled, tr, va = split_labels(ds, pc)
    if len(tr) < 2:
        raise FinetuneError(f"need at least 2 labelled training frames, got {len(tr)}; raise pose.fraction")
    boxes_needed = reads_boxes(method)
    names = ("frames", "boxes") if boxes_needed else ("frames",)
    background_needed = reads_background(method)

    j3 = read_arrays(ds, tr, ("joints3d",))["joints3d"].astype(np.float32)
    J = j3.shape[1]
    y = torch.from_numpy((j3 - j3[:, :1]).reshape(len(tr), 3 * J))
    if pc.normalise == "zscore":
        out_mean, out_std = column_spread(y)
    else:
        out_mean, out_std = torch.zeros(3 * J), torch.full((3 * J,), float(pc.target_scale_mm))
    yn = ((y - out_mean) / out_std).to(dev)

    frozen = freeze_for_finetuning(method, fc.frozen_stages)
    D = int(method.feature_dim)
    head = make_head(pc.head, D, 3 * J, **pc.head_kwargs()).to(dev)
    pcfg = _head_config(pc, fc)
    pose = FittedPose(head, pcfg, torch.zeros(D), torch.ones(D), out_mean, out_std, J)
    both = nn.ModuleDict({"method": method, "head": head})
    optim = OptimConfig(optimizer="adamw", lr=fc.lr, weight_decay=fc.weight_decay, schedule="cosine",
                        min_lr_ratio=0.01, warmup_steps=0, grad_clip=None)
    opt = build_optimizer(both, optim, lr_key="finetune.lr",
                          scaled=(method, fc.method_lr_scale) if fc.method_lr_scale != 1.0 else None)
    stepper = Stepper(opt, optim, fc.steps, lr_key="finetune.lr", defer_check=True)
    trained = sum(p.numel() for p in method.parameters() if p.requires_grad)
    fn = pose_feature_fn(method)
    amp = bf16_autocast(cfg.autocast, dev.type)
    best = BestStep(fc.patience)
    curve: list[dict] = []
    batches = _batches(len(tr), fc.batch_size, gen)
    threads = torch.get_num_threads()
    if fc.threads is not None:
        torch.set_num_threads(fc.threads)
    t0 = time.perf_counter()
    loss_sum, loss_n = torch.zeros((), device=dev), 0
    try:
        with progress_bar(None if progress else False) as bar:
            task = bar.add_task("fine-tune", total=fc.steps)
            for step in range(1, fc.steps + 1):
                _set_train(method, frozen)
                head.train()
                lr = stepper.set_lr(step - 1)
                rows = next(batches).numpy()
                arrays = read_arrays(ds, tr[rows], names)
                x = frames_to_tensor(arrays["frames"], dev)
                if background_needed:   # as pretraining did: the background handled first, then the jitter
                    x = method.pose_input(x, frames_to_tensor(read_backgrounds(ds, tr[rows]), dev))
                x = colour_jitter(x, fc.colour_jitter, gen)
                probing = step <= fc.head_warmup_steps
                if probing:   # the head alone on the features as they are: no gradient, batch norm frozen
                    method.eval()
                with amp, torch.set_grad_enabled(not probing):   # bf16 where the CPU has it (cfg.autocast)
                    if boxes_needed:
                        feats = method.encode_for_pose(x, torch.from_numpy(arrays["boxes"]).to(dev))["features"]
                    else:
                        feats = method.encode_for_pose(x)["features"]
                pred = head(feats.float())
                loss = torch.mean((pred - yn[torch.from_numpy(rows).to(dev)]) ** 2)
                stepper.step(loss, step - 1, {"mse": loss})
                loss_sum += loss.detach()
                loss_n += 1
                bar.update(task, completed=step)
                if step % fc.eval_every and step != fc.steps:
                    continue
                stepper.check()
                row = {"step": step, "train_loss": float(loss_sum) / loss_n, "lr": lr}
                loss_sum.zero_()
                loss_n = 0
                if len(va):
                    method.eval()
                    head.eval()
                    fs = extract(fn, ds, va, batch_size=cfg.batch_size, device=dev, autocast=cfg.autocast,
                                 progress=False, pass_boxes=boxes_needed)
                    pv = pose.predict(fs)
                    row["val_mpjpe"], row["val_n_mpjpe"] = float(mpjpe(pv, fs.joints3d)), float(n_mpjpe(pv, fs.joints3d))
                    best.update(row["val_n_mpjpe"], step, both)
                row["seconds"] = time.perf_counter() - t0
                curve.append(row)
                if best.stop:
                    break
    finally:
        torch.set_num_threads(threads)
    if best.state is not None:
        both.load_state_dict(best.state)
    for p in method.parameters():
        p.requires_grad_(False)
    method.eval()
    head.eval()
    pose.curve, pose.best_step = curve, best.step
    pose.best_val_n_mpjpe = None if best.step is None else best.value
    subjects = lambda f: sorted({ds.sequences[i].meta.subject for i in np.unique(f[:, 0])}) if len(f) else []  # noqa: E731
    info = {"num_labelled": int(len(labelled)), "train_frames": int(len(tr)), "val_frames": int(len(va)),
            "train_subjects": subjects(tr), "val_subjects": subjects(va),
            "finetune": {**to_dict(fc), "trained_parameters": int(trained),
                         "frozen_parameters": int(sum(p.numel() for m in frozen for p in m.parameters())),
                         "seconds": round(time.perf_counter() - t0, 1), "curve": curve,
                         "best_step": best.step}}
    return pose, info


def _head_config(pc, fc):
    """The head's :class:`PoseConfig`: the pose stage's, features not standardised (they are learnt)."""
    import dataclasses

    return dataclasses.replace(pc, standardise_features=False, use_2d=False, steps=fc.steps, lr=fc.lr,
                               batch_size=fc.batch_size, weight_decay=fc.weight_decay)


def save_finetuned(run, out: Path, weights_note: dict) -> dict:
    """Write the fine-tuned method's weights and the run's config into ``out/encoder``; the ``encoder`` record."""
    from safetensors.torch import save_file

    from selfpose.pose.encoder import CONFIG, ENCODER_DIR, WEIGHTS, keep_config, sha256_file

    d = Path(out) / ENCODER_DIR
    d.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in run.method.state_dict().items()}, str(d / WEIGHTS))
    keep_config(run, d / CONFIG)
    return {"run": str(Path(run.path).resolve()), "step": run.step, "sha256": sha256_file(d / WEIGHTS),
            "bytes": (d / WEIGHTS).stat().st_size, "kept_as": "finetuned", "config_sha256": sha256_file(d / CONFIG),
            "pretrained_sha256": run.weights_sha256, **weights_note}


def write_finetuned_folder(out: Path, run, run_dir, data, cfg, pose, info: dict) -> dict:
    """The pose folder of a fine-tuned method (the frozen stage's layout; see the module docstring)."""
    from selfpose.pose.stage import POSE_JSON

    out.mkdir(parents=True, exist_ok=True)
    pose.save(out / "pose_head")
    encoder = save_finetuned(run, out, {"finetuned": True})
    record = {"run": str(Path(run_dir).resolve()), "data": str(Path(data).resolve()), "config": to_dict(cfg),
              "method": run.config.method, "encoder": encoder,
              "val_n_mpjpe": None if pose.best_val_n_mpjpe is None else float(pose.best_val_n_mpjpe),
              "best_step": None if pose.best_step is None else int(pose.best_step), "probes": {}, **info}
    (out / POSE_JSON).write_text(json.dumps(record, indent=1))
    return record


__all__ = ("FinetuneConfig", "FinetuneError", "finetune_pose", "freeze_for_finetuning", "frozen_modules",
           "write_finetuned_folder")
