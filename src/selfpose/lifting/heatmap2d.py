"""The image path's 2D pose sub-network: frames → J heatmaps → soft-argmax → 2D joints (px), plus features.

The seed (Wang, Lin et al., TPAMI 2019) feeds its 2D-to-3D transformer from a
2D pose sub-network run on each frame. Ours, sized for a CPU:

* **Backbone**: :func:`selfpose.models.backbones.resnet` (torchvision key
  names), by default a narrow 3-stage ResNet18 (width 32, stages of 2 blocks):
  a 128×128 frame becomes an 8×8 map of 128 channels (stride 16).
* **Head**: ``deconv_layers`` transposed convolutions (4×4, stride 2, BN, ReLU;
  Xiao et al.'s "simple baselines" head) up to stride 4, then a 1×1 conv to J
  heatmap logits.
* **Soft-argmax** (integral regression, Sun et al. 2018): a softmax over each
  heatmap and the expected cell centre, in pixels of the *input frame*
  (:func:`soft_argmax`). Differentiable, sub-pixel, no quantisation.
* **Loss**: L1 between soft-argmax and the exact 2D labels, in units of the
  frame's longer side (:func:`coordinate_loss`), optionally plus a heatmap term
  (:func:`heatmap_loss`: cross-entropy against a normalised Gaussian at the
  label) that shapes the heatmaps early in training. Joints outside the frame
  (the renderer flags them, ``joints2d_outside``) are left out of the loss: a
  soft-argmax cannot reach past the frame's edge cells.
* **Features**: the backbone's last stage, average-pooled ``(N, C)`` — what
  the transformer may take beside the 2D.

Training (:func:`fit_heatmap`): whole frames (no crops), colour jitter as the
supervised baseline (:func:`selfpose.pose.supervised.colour_jitter`), AdamW
with the shared toolkit's warm-up + cosine schedule, validation on held-out
whole takes of the training subjects (mean px error), the best step kept.
:func:`fit_heatmap_run` writes a run folder (kind ``heatmap2d``):
``heatmap2d.safetensors`` + ``heatmap2d.json`` + ``metrics.csv``.

Measured (2026-12-01, 2 CPU cores shared with other jobs, one torch thread):
on the lab benchmark's renders (``configs/benchmark_fixed_rig_cpu.yaml``, 128×128),
``width=16, steps=2500, max_seconds=1080`` on S1, S5, S6, S7 stopped at its
time cap after 1476 steps (18 min) and errs 2.75 px mean, 1.83 px median on
S8 (PCK@5px 85.8%), predicting 198 frames/s; details and the 3D chain in
``benchmarks/results/lifting_image_chain.md``
(``PYTHONPATH=src python benchmarks/lifting_image_chain.py --pred-lifter``).
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
from selfpose.training.precision import bf16_autocast

FORMAT = "selfpose-heatmap2d"
VERSION = 1
WEIGHTS = "heatmap2d.safetensors"
META = "heatmap2d.json"
KIND = "heatmap2d"


class Heatmap2DError(SelfposeError, RuntimeError):
    """The 2D heatmap network cannot be trained, saved, loaded or run as asked."""


@dataclass
class Heatmap2DConfig:
    """The 2D pose sub-network and its training (strict: unknown keys are errors).

    Attributes:
        arch, width, layers: the backbone (:func:`selfpose.models.backbones.resnet`);
            ``layers`` = blocks per stage, 1–4 stages (3 stages: stride 16).
        deconv_layers, deconv_channels: the head's transposed convolutions
            (each doubles the resolution) and their channels.
        heatmap_weight: weight of :func:`heatmap_loss` beside the L1 on
            coordinates (0 = coordinates only); ``heatmap_sigma_px``: its
            Gaussian's standard deviation in frame pixels.
        steps, batch_size, lr, weight_decay, warmup_steps, min_lr_ratio:
            AdamW with the toolkit's linear warm-up + cosine decay.
        max_seconds: stop after this long (the best validated step is kept); null = every step.
        colour_jitter: brightness/contrast/saturation strength (0 = off).
        train_subjects: subjects trained on (and validated on, held-out takes); empty = all of the data.
        val_fraction: share of the training frames held out, whole takes (0 = none: keep the last step).
        val_max_frames: validate on at most this many held-out frames (every k-th).
        eval_every: validate every this many steps (and at the last).
        eval_batch_size: frames per forward pass when validating or predicting.
        seed: initialisation, batches, jitter, validation split.
        device: ``cpu``, ``cuda``...
        autocast: bf16 autocast for the forward passes (``auto``: where the CPU has native bf16).
        threads: torch intra-op threads while training (restored afterwards); null = torch's default.
    """

    arch: Literal["resnet18", "resnet34", "resnet50"] = "resnet18"
    width: int = 32
    layers: tuple[int, ...] = (2, 2, 2)
    deconv_layers: int = 2
    deconv_channels: int = 64
    heatmap_weight: float = 0.1
    heatmap_sigma_px: float = 2.0
    steps: int = 6000
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    min_lr_ratio: float = 0.01
    max_seconds: float | None = None
    colour_jitter: float = 0.3
    train_subjects: tuple[str, ...] = ()
    val_fraction: float = 0.05
    val_max_frames: int = 512
    eval_every: int = 250
    eval_batch_size: int = 128
    seed: int = 0
    device: str = "cpu"
    autocast: bool | Literal["auto"] = False
    threads: int | None = None

    def __post_init__(self) -> None:
        for name in ("width", "steps", "eval_every", "eval_batch_size", "val_max_frames", "deconv_channels"):
            if getattr(self, name) < 1:
                raise ConfigError(f"heatmap2d.{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_size < 2:
            raise ConfigError("heatmap2d.batch_size must be >= 2 (batch normalisation)")
        if not 1 <= len(self.layers) <= 4 or any(n < 1 for n in self.layers):
            raise ConfigError(f"heatmap2d.layers must be 1 to 4 positive block counts, got {list(self.layers)}")
        if not 0 <= self.deconv_layers <= len(self.layers) + 1:
            raise ConfigError(f"heatmap2d.deconv_layers must be in 0..{len(self.layers) + 1} (each doubles the "
                              f"resolution of a stride-{2 ** (len(self.layers) + 1)} map), got {self.deconv_layers}")
        if self.heatmap_weight < 0 or not self.heatmap_sigma_px > 0:
            raise ConfigError("heatmap2d.heatmap_weight must be >= 0 and heatmap_sigma_px > 0")
        if not 0 <= self.colour_jitter < 1:
            raise ConfigError(f"heatmap2d.colour_jitter must be in [0, 1), got {self.colour_jitter}")
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"heatmap2d.val_fraction must be in [0, 1), got {self.val_fraction}")
        if not (math.isfinite(self.lr) and self.lr > 0) or self.weight_decay < 0 or self.warmup_steps < 0:
            raise ConfigError("heatmap2d.lr must be finite and > 0, weight_decay and warmup_steps >= 0")
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise ConfigError(f"heatmap2d.max_seconds must be > 0 (or null), got {self.max_seconds}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"heatmap2d.threads must be >= 1 (or null), got {self.threads}")

    def optim(self):
        """The toolkit's :class:`~selfpose.training.config.OptimConfig`: AdamW, warm-up, cosine."""
        from selfpose.training.config import OptimConfig

        return OptimConfig(optimizer="adamw", lr=self.lr, weight_decay=self.weight_decay, schedule="cosine",
                           warmup_steps=self.warmup_steps, min_lr_ratio=self.min_lr_ratio, grad_clip=None)


# --- pure functions: soft-argmax, losses, 2D metrics -----------------------------------------------

def cell_centres(h: int, w: int, image_hw: tuple[int, int], device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(xs (w,), ys (h,))``: the centres of an ``h``×``w`` heatmap's cells in px of an ``image_hw`` frame.

    Cell ``(i, j)`` covers ``[j·W/w, (j+1)·W/w) × [i·H/h, (i+1)·H/h)`` of the
    frame, so its centre is ``((j + ½)·W/w, (i + ½)·H/h)`` — the heatmap spans
    the frame exactly, whatever the stride.
    """
    H, W = image_hw
    xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) * (W / w)
    ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) * (H / h)
    return xs, ys


def soft_argmax(logits: torch.Tensor, image_hw: tuple[int, int]) -> torch.Tensor:
    """Heatmap logits ``(B, J, h, w)`` → expected position ``(B, J, 2)`` (x, y) in px of the ``image_hw`` frame.

    Softmax over each heatmap's ``h·w`` cells, then the probability-weighted
    mean of the cell centres (:func:`cell_centres`). A one-hot heatmap gives its
    cell's centre exactly; the result always lies within the span of the centres.
    """
    B, J, h, w = logits.shape
    p = torch.softmax(logits.float().reshape(B, J, h * w), dim=-1).reshape(B, J, h, w)
    xs, ys = cell_centres(h, w, image_hw, logits.device)
    x = (p.sum(dim=2) * xs).sum(dim=-1)
    y = (p.sum(dim=3) * ys).sum(dim=-1)
    return torch.stack([x, y], dim=-1)


def coordinate_loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, scale: float) -> torch.Tensor:
    """Weighted mean L1 of 2D joints ``(B, J, 2)`` px, divided by ``scale`` px (the frame's longer side).

    ``weight`` ``(B, J)`` (0 = ignore, e.g. a joint outside the frame); a scalar
    tensor; 0 when every weight is 0.
    """
    err = (pred.float() - target.float()).abs().sum(-1) / scale       # (B, J)
    return (err * weight).sum() / (2 * weight.sum()).clamp_min(1.0)


def heatmap_loss(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, image_hw: tuple[int, int],
                 sigma_px: float) -> torch.Tensor:
    """Cross-entropy of the softmaxed heatmaps ``(B, J, h, w)`` against a Gaussian at the labels ``(B, J, 2)`` px.

    The target distribution is an isotropic Gaussian of ``sigma_px`` frame
    pixels at the label, evaluated at the cell centres and normalised to sum to
    1 (so it is defined for labels between cells). ``weight`` ``(B, J)`` as in
    :func:`coordinate_loss`. The minimum is the target's entropy, not 0.
    """
    B, J, h, w = logits.shape
    xs, ys = cell_centres(h, w, image_hw, logits.device)
    t = target.float()
    dx = (xs.view(1, 1, 1, w) - t[..., 0, None, None]) ** 2
    dy = (ys.view(1, 1, h, 1) - t[..., 1, None, None]) ** 2
    logq = -(dx + dy) / (2 * sigma_px ** 2)
    q = torch.softmax(logq.reshape(B, J, h * w), dim=-1)
    logp = torch.log_softmax(logits.float().reshape(B, J, h * w), dim=-1)
    ce = -(q * logp).sum(-1)                                              # (B, J)
    return (ce * weight).sum() / weight.sum().clamp_min(1.0)


def errors_2d(pred: np.ndarray, target: np.ndarray, thresholds_px=(2.0, 5.0, 10.0),
              mask: np.ndarray | None = None) -> dict:
    """2D pose error of ``pred`` vs ``target`` ``(N, J, 2)`` px.

    Returns:
        ``{"mean_px", "median_px", "pck@<t>px": %}`` over the joints where
        ``mask`` ``(N, J)`` is true (default: every joint with finite labels),
        and ``"count"`` (joints scored).
    """
    d = np.linalg.norm(np.asarray(pred, np.float64) - np.asarray(target, np.float64), axis=-1)
    keep = np.isfinite(d) if mask is None else (np.asarray(mask, bool) & np.isfinite(d))
    d = d[keep]
    if not d.size:
        raise Heatmap2DError("no joint to score (every label is masked or non-finite)")
    out = {"mean_px": float(d.mean()), "median_px": float(np.median(d))}
    out.update({f"pck@{t:g}px": float(100 * (d <= t).mean()) for t in thresholds_px})
    out["count"] = int(d.size)
    return out


# --- the network -----------------------------------------------------------------------------------

class HeatmapNet(nn.Module):
    """Backbone + deconvolution head + soft-argmax (see the module docstring).

    ``forward(frames (B, 3, H, W) in [0, 1])`` → ``{"heatmaps": (B, J, h, w)
    logits, "joints2d": (B, J, 2) px of the input frame, "features": (B, C)}``.
    """

    def __init__(self, cfg: Heatmap2DConfig, num_joints: int):
        super().__init__()
        from selfpose.models.backbones import resnet

        self.num_joints = int(num_joints)
        self.backbone = resnet(cfg.arch, width=cfg.width, layers=cfg.layers, num_classes=None)
        cin = self.backbone.out_channels
        head: list[nn.Module] = []
        for _ in range(cfg.deconv_layers):
            head += [nn.ConvTranspose2d(cin, cfg.deconv_channels, 4, stride=2, padding=1, bias=False),
                     nn.BatchNorm2d(cfg.deconv_channels), nn.ReLU(inplace=True)]
            cin = cfg.deconv_channels
        self.head = nn.Sequential(*head)
        self.final = nn.Conv2d(cin, self.num_joints, 1)
        # Flat heatmaps at the start: soft-argmax begins at the frame centre, not at a random cell.
        nn.init.zeros_(self.final.weight)
        nn.init.zeros_(self.final.bias)

    @property
    def feature_dim(self) -> int:
        return self.backbone.out_channels

    def forward(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        H, W = frames.shape[-2:]
        f = self.backbone.features(frames)[-1]
        logits = self.final(self.head(f))
        return {"heatmaps": logits, "joints2d": soft_argmax(logits, (H, W)),
                "features": torch.flatten(self.backbone.avgpool(f), 1).float()}


@dataclass
class Predictions2D:
    """Per-frame output of :meth:`Heatmap2D.predict`.

    Attributes:
        joints2d: ``(N, J, 2)`` float32 px of the stored frames.
        features: ``(N, C)`` float32 pooled backbone features.
    """

    joints2d: np.ndarray
    features: np.ndarray


class Heatmap2D:
    """A trained 2D pose sub-network: frames → 2D joints (px) and pooled features.

    Attributes:
        net: the :class:`HeatmapNet` (eval mode).
        cfg: its :class:`Heatmap2DConfig`.
        image_hw: ``(H, W)`` of the frames it was trained on (it refuses others).
        info: facts about training (curve, best step, seconds, data).
    """

    def __init__(self, net: HeatmapNet, cfg: Heatmap2DConfig, image_hw: tuple[int, int], info: dict | None = None):
        self.net, self.cfg = net.eval(), cfg
        self.image_hw = (int(image_hw[0]), int(image_hw[1]))
        self.info = dict(info or {})

    @property
    def num_joints(self) -> int:
        return self.net.num_joints

    def _check_size(self, hw) -> None:
        if tuple(int(v) for v in hw) != self.image_hw:
            raise Heatmap2DError(f"frames are {hw[0]}x{hw[1]} px but the 2D network was trained on "
                                 f"{self.image_hw[0]}x{self.image_hw[1]}; prepare the data at that size")

    def predict_frames(self, frames: np.ndarray, batch_size: int | None = None) -> Predictions2D:
        """uint8 frames ``(N, H, W, 3)`` → :class:`Predictions2D` (inference mode, eval batch norm)."""
        from selfpose.pose.features import frames_to_tensor

        self._check_size(frames.shape[1:3])
        bs = batch_size or self.cfg.eval_batch_size
        dev = next(self.net.parameters()).device
        j2 = np.empty((len(frames), self.num_joints, 2), np.float32)
        feats = np.empty((len(frames), self.net.feature_dim), np.float32)
        amp = bf16_autocast(self.cfg.autocast, dev.type)
        self.net.eval()
        with torch.inference_mode(), amp:
            for s in range(0, len(frames), bs):
                out = self.net(frames_to_tensor(frames[s:s + bs], dev))
                j2[s:s + bs] = out["joints2d"].float().cpu().numpy()
                feats[s:s + bs] = out["features"].float().cpu().numpy()
        return Predictions2D(j2, feats)

    def predict(self, ds, index: np.ndarray | None = None, batch_size: int | None = None,
                progress: bool = False) -> Predictions2D:
        """Predictions for the ``(seq, frame)`` rows ``index`` of the store ``ds`` (default: every frame, in order)."""
        from selfpose.pose.features import read_arrays
        from selfpose.utils.progress import progress_bar

        index = frame_index(ds) if index is None else np.asarray(index, np.int64)
        bs = batch_size or self.cfg.eval_batch_size
        chunk = bs * 8   # read frames in chunks: one memory-mapped read per sequence and chunk
        parts = []
        with progress_bar(None if progress else False) as bar:
            task = bar.add_task("2D poses", total=len(index))
            for s in range(0, len(index), chunk):
                frames = read_arrays(ds, index[s:s + chunk], ("frames",))["frames"]
                parts.append(self.predict_frames(frames, bs))
                bar.update(task, completed=min(s + chunk, len(index)))
        if not parts:
            return Predictions2D(np.empty((0, self.num_joints, 2), np.float32),
                                 np.empty((0, self.net.feature_dim), np.float32))
        return Predictions2D(np.concatenate([p.joints2d for p in parts]),
                             np.concatenate([p.features for p in parts]))

    # -- persistence: safetensors + JSON, no pickle ---------------------------------------------
    def save(self, folder: str | Path) -> Path:
        """``folder/heatmap2d.safetensors`` + ``folder/heatmap2d.json``."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()},
                  str(folder / WEIGHTS))
        meta = {"format": FORMAT, "version": VERSION, "config": to_dict(self.cfg), "num_joints": self.num_joints,
                "image_hw": list(self.image_hw), **self.info}
        (folder / META).write_text(json.dumps(meta, indent=1, default=str))
        return folder

    @classmethod
    def load(cls, folder: str | Path, device: str | torch.device = "cpu") -> Heatmap2D:
        """Read a network written by :meth:`save` (or a :func:`fit_heatmap_run` folder)."""
        from selfpose.utils.bundle import read_bundle

        meta, state = read_bundle(Path(folder), WEIGHTS, META, FORMAT, VERSION, Heatmap2DError,
                                  "a 2D heatmap network", "train it again")
        cfg = from_dict(Heatmap2DConfig, meta["config"])
        net = HeatmapNet(cfg, int(meta["num_joints"]))
        net.load_state_dict(state, strict=True)
        info = {k: v for k, v in meta.items() if k not in ("format", "version", "config", "num_joints", "image_hw")}
        return cls(net.to(device), cfg, tuple(meta["image_hw"]), info)


# --- data ------------------------------------------------------------------------------------------

def frame_index(ds) -> np.ndarray:
    """``(N, 2)`` int64 ``(sequence position, frame)`` of every frame of ``ds``, sequences in order.

    The order of :func:`selfpose.lifting.data.load_arrays` on the same store,
    so predictions line up with its arrays row for row.
    """
    parts = [np.stack([np.full(len(rec), i), np.arange(len(rec))], 1) for i, rec in enumerate(ds)]
    return np.concatenate(parts).astype(np.int64) if parts else np.empty((0, 2), np.int64)


def _label_names(ds) -> tuple[str, ...]:
    """The label arrays to read: ``joints2d``, and ``joints2d_outside`` when every sequence has it."""
    return ("joints2d", "joints2d_outside") if all(r.has("joints2d_outside") for r in ds) else ("joints2d",)


def _labels(got: dict, image_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """2D labels ``(N, J, 2)`` px and loss weights ``(N, J)`` from :func:`~selfpose.pose.features.read_arrays`'
    output of :func:`_label_names`: 0 where unknown, outside the ``image_hw`` frame, or flagged outside."""
    j2 = got["joints2d"].astype(np.float32)
    with np.errstate(invalid="ignore"):
        w = np.isfinite(j2).all(-1) & (j2 >= 0).all(-1) & (j2[..., 0] <= image_hw[1]) & (j2[..., 1] <= image_hw[0])
    if "joints2d_outside" in got:
        w &= ~got["joints2d_outside"].astype(bool)
    return np.nan_to_num(j2), w.astype(np.float32)


def _select(data, subjects):
    from selfpose.data.store import Dataset

    ds = Dataset.open(data)
    if subjects:
        have = ds.subjects()
        ds = ds.select(subjects=set(subjects))
        if not len(ds):
            raise Heatmap2DError(f"no sequence of {data} has subjects {', '.join(sorted(subjects))} (it has "
                                 f"{', '.join(have)}); choose others (train_subjects=...)")
    if not len(ds):
        raise Heatmap2DError(f"{data} holds no sequence")
    missing = [r.id for r in ds if not (r.has("frames") and r.has("joints2d"))]
    if missing:
        raise Heatmap2DError(f"sequence {missing[0]} of {data} has no frames or no joints2d; the 2D network "
                             "trains on an image dataset with 2D labels (e.g. `selfpose synth lab`)")
    sizes = {(r.meta.height, r.meta.width) for r in ds}
    if len(sizes) != 1:
        raise Heatmap2DError(f"{data} has frames of several sizes {sorted(sizes)}; use a dataset of one size")
    return ds, sizes.pop()


# --- training --------------------------------------------------------------------------------------

def fit_heatmap(data, cfg: Heatmap2DConfig, progress: bool = True) -> Heatmap2D:
    """Train the 2D network on ``cfg.train_subjects`` of the image store ``data`` (see the module docstring).

    Returns:
        the :class:`Heatmap2D` at the validated step with the lowest mean px
        error (the last step without validation); ``info`` holds the curve,
        best step, steps done, seconds and frame counts.
    """
    from selfpose.pose.labels import holdout_mask

    ds, hw = _select(data, cfg.train_subjects)
    index = frame_index(ds)
    metas = [r.meta for r in ds]
    takes = np.array([metas[s].take for s in index[:, 0]])
    seqs = np.array([metas[s].id for s in index[:, 0]])
    from selfpose.pose.features import read_arrays

    fids = read_arrays(ds, index, ("frame_ids",))["frame_ids"] if all(r.has("frame_ids") for r in ds) \
        else index[:, 1]
    val_mask = holdout_mask(takes, seqs, fids, cfg.val_fraction, "take", cfg.seed) if cfg.val_fraction \
        else np.zeros(len(index), bool)
    tr, va = index[~val_mask], index[val_mask]
    if len(va):
        va = va[:: max(1, math.ceil(len(va) / cfg.val_max_frames))]
    if len(tr) < 2:
        raise Heatmap2DError(f"need at least 2 training frames, got {len(tr)}")
    J = int(ds.sequences[0]["joints2d"].shape[1])
    torch.manual_seed(cfg.seed)
    dev = torch.device(cfg.device)
    net = HeatmapNet(cfg, J).to(dev)
    model = Heatmap2D(net, cfg, hw)
    threads = torch.get_num_threads()
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    try:
        curve, best_step, steps_done, seconds = _train(model, ds, tr, va, cfg, dev, progress)
    finally:
        torch.set_num_threads(threads)
    model.net.eval()
    best = min((r for r in curve if "val_mean_px" in r), key=lambda r: r["val_mean_px"], default=None)
    model.info = {"curve": curve, "steps_done": steps_done, "best_step": best_step,
                  "best_val_mean_px": None if best is None else best["val_mean_px"],
                  "train_seconds": seconds, "train_frames": len(tr), "val_frames": len(va),
                  "subjects": ds.subjects()}
    return model


def _train(model: Heatmap2D, ds, tr: np.ndarray, va: np.ndarray, cfg: Heatmap2DConfig, dev: torch.device,
           progress: bool) -> tuple[list[dict], int, int, float]:
    """The optimisation loop of :func:`fit_heatmap`; leaves ``model`` at its best step."""
    from selfpose.pose.features import frames_to_tensor, read_arrays
    from selfpose.pose.fit import BestStep, _batches
    from selfpose.pose.supervised import colour_jitter
    from selfpose.training.toolkit import Stepper, build_optimizer, progress_text
    from selfpose.utils.progress import progress_bar

    net, hw = model.net, model.image_hw
    scale = float(max(hw))
    gen = torch.Generator().manual_seed(cfg.seed)
    optim = cfg.optim()
    opt = build_optimizer(net, optim, lr_key="heatmap2d.lr")
    stepper = Stepper(opt, optim, cfg.steps, lr_key="heatmap2d.lr", defer_check=True)
    amp = bf16_autocast(cfg.autocast, dev.type)
    batches = _batches(len(tr), cfg.batch_size, gen)
    names = _label_names(ds)
    va_j2, va_w = _labels(read_arrays(ds, va, names), hw) if len(va) else (None, None)
    best = BestStep(None)
    curve: list[dict] = []
    t0 = time.perf_counter()
    t_win, sums, n_win, step = t0, torch.zeros(2), 0, 0
    with progress_bar(None if progress else False) as bar:
        task = bar.add_task("heatmap2d", total=cfg.steps)
        for step in range(1, cfg.steps + 1):
            rows = tr[next(batches).numpy()]
            got = read_arrays(ds, rows, ("frames", *names))
            frames = frames_to_tensor(got["frames"], dev)
            j2, w = (torch.from_numpy(a).to(dev) for a in _labels(got, hw))
            frames = colour_jitter(frames, cfg.colour_jitter, gen)
            net.train()
            lr = stepper.set_lr(step - 1)
            with amp:
                out = net(frames)
            l1 = coordinate_loss(out["joints2d"], j2, w, scale)
            loss = l1
            if cfg.heatmap_weight:
                loss = loss + cfg.heatmap_weight * heatmap_loss(out["heatmaps"], j2, w, hw, cfg.heatmap_sigma_px)
            stepper.step(loss, step - 1, {"l1": l1, "loss": loss})
            sums += torch.stack([loss.detach(), l1.detach() * scale])
            n_win += 1
            out_of_time = cfg.max_seconds is not None and time.perf_counter() - t0 > cfg.max_seconds
            bar.update(task, completed=step)
            if step % cfg.eval_every and step != cfg.steps and not out_of_time:
                continue
            stepper.check()
            now = time.perf_counter()
            row = {"step": step, "train_loss": float(sums[0]) / n_win, "train_l1_px": float(sums[1]) / n_win,
                   "lr": lr}
            bar.update(task, description=progress_text("heatmap2d", row["train_loss"], (now - t_win) / n_win))
            sums, n_win, t_win = torch.zeros(2), 0, now
            if len(va):
                pv = model.predict(ds, va).joints2d
                row["val_mean_px"] = errors_2d(pv, va_j2, mask=va_w > 0)["mean_px"]
                best.update(row["val_mean_px"], step, net)
            row["time"] = time.perf_counter() - t0
            curve.append(row)
            if out_of_time:
                break
    if best.state is not None:
        net.load_state_dict(best.state)
    return curve, (best.step if best.state is not None else step), step, time.perf_counter() - t0


def fit_heatmap_run(data, out, cfg: Heatmap2DConfig, overwrite: bool = False, progress: bool = True) -> dict:
    """Train the 2D network on the image store ``data`` and write the run folder ``out`` (kind ``heatmap2d``).

    ``out`` holds ``heatmap2d.safetensors``, ``heatmap2d.json`` (format,
    config, image size, curve, best step, data, timing) and ``metrics.csv``
    (the validation curve); it is built aside and swapped in whole.

    Returns:
        the training facts of ``heatmap2d.json`` without the curve.
    """
    from selfpose.outputs import atomic_output
    from selfpose.training.logs import write_metrics

    with atomic_output(out, KIND, overwrite=overwrite, inputs=[data]) as tmp:
        model = fit_heatmap(data, cfg, progress=progress)
        model.info["data"] = str(Path(data).resolve())
        model.save(tmp)
        write_metrics(tmp, model.info["curve"])
        return {k: v for k, v in model.info.items() if k != "curve"}


def is_heatmap_run(folder) -> bool:
    """Whether ``folder`` holds a 2D heatmap network (``heatmap2d.json``)."""
    folder = Path(folder)
    return folder.is_dir() and (folder / META).is_file()


__all__ = (
    "Heatmap2D",
    "Heatmap2DConfig",
    "Heatmap2DError",
    "HeatmapNet",
    "Predictions2D",
    "cell_centres",
    "coordinate_loss",
    "errors_2d",
    "fit_heatmap",
    "fit_heatmap_run",
    "frame_index",
    "heatmap_loss",
    "is_heatmap_run",
    "soft_argmax",
)
