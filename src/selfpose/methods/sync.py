"""Multi-view synchronisation learning (Jenni & Favaro, ACCV 2020): ``method=sync``.

A Siamese ResNet sees two crops of one person from two cameras and answers
two binary questions: were they taken at the same instant (then the two
views differ by a rigid transformation of one 3D scene), and is the second
one mirrored. Only features that hold the person's 3D pose can tell a
synchronised pair of different views from two close instants, so the
encoder learns them. Pairs come from :class:`~selfpose.data.samplers.SyncPairSampler`
(``sampler.sync_*``, ``flip_prob``, ``still_fraction``, ``single_view``).

Per pair:

1. **Background** (``background``, the shortcut the paper removes): ``keep``
   the frames; ``subtract`` the estimated background (``frame − background``
   + ½: what stays is the person and noise); ``mask`` the person with the
   estimated background (pixels that differ from it by more than
   ``mask_threshold`` keep their colour, the rest turn mid grey); or
   ``replace`` the background with that of another pair of the batch (the same
   mask, composited over a random other camera's background, unmirrored in a
   flipped image, where only the person is mirrored). Only the
   *estimated* background (``background`` of the batch, from the frames) is
   read, never a label.
2. **Crop** (``crop``): the square around the person box × ``model.crop_margin``
   at ``model.crop_size`` px, as the house's ``true_box`` references cut it
   (``true_box``; jittered by ``box_jitter`` while pretraining), or the whole
   frame (``full``). With ``true_box`` the pose stage also reads the stored
   person box (:attr:`reads_boxes`).
3. **Augmentation**: per image, colour jitter (``colour_jitter``); the second
   image of a flipped pair is mirrored; each pair's order is swapped at
   random, so neither fusion nor head can tell which image was the flipped one
   by its slot.
4. **Encoder**: a ResNet (``model.encoder_arch``/``encoder_width``, the house
   backbone) → the pooled feature ``f`` (B, C) — the pose features after
   pretraining. The heads read it too, or with ``rows`` > 1 the last map
   pooled over its width into horizontal bands (B, C × rows).
5. **Fusion** (:func:`fuse`): element-wise ``product`` (the paper's best),
   ``difference``, ``sum`` or ``concat`` of the two features.
6. **Heads**: two MLPs (C or 2C → ``hidden`` → 1 logit) with binary
   cross-entropy: synchronised vs not on every pair, flipped vs not on the
   synchronised pairs (the only ones the sampler flips). ``tasks`` turns either off.

Groups (``sampler.sync_instants`` = M > 1, not in the paper): an item is M
instants of one take in two views, and the same crops, encoder, fusion and
heads score all M × M pairs (:meth:`SyncMethod.group_logits`; the two classes
weighed equally) — M/2 labelled pairs per image read instead of ½. On our
renders it learns the pretext about four times sooner
(``benchmarks/results/sync_groups``).

Optimisation: the pretraining config's ``optim`` (AdamW; weight decay on
weight matrices and kernels only). The paper's weight decay is not in our
reading of it; ``configs/sync_cpu.yaml`` uses 1e-4.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from selfpose.config import ConfigError, added_field
from selfpose.methods.base import Method, MethodError
from selfpose.models.backbones import resnet
from selfpose.models.stn import box_px_to_theta, crop
from selfpose.models.stn import square_theta as stn_square_theta

FUSIONS = ("product", "difference", "sum", "concat")
BACKGROUNDS = ("keep", "subtract", "mask", "replace")
CROPS = ("true_box", "full")
TASKS = ("sync", "flip")
POSE_BACKGROUNDS = ("keep", "as_pretrained")


@dataclass
class SyncConfig:
    """``method_config.sync`` (strict: unknown keys are errors).

    Attributes:
        fusion: how the two features meet (:data:`FUSIONS`).
        tasks: the binary tasks trained (:data:`TASKS`; at least one).
        background: the static-background shortcut's handling (:data:`BACKGROUNDS`).
        mask_threshold: a pixel is the person when its largest channel differs
            from the estimated background by more than this (frames in [0, 1]).
        crop: ``true_box`` (the stored person box, square × ``model.crop_margin``)
            or ``full`` (the whole frame).
        box_jitter: while pretraining, the crop's centre moves by up to this
            fraction of its side and its side scales by up to 1 ± this.
        colour_jitter: per-image brightness/contrast/saturation strength (0: off).
        hidden: width of each head's hidden layer.
        feature_norm: ``none``: the pooled features meet as they are;
            ``batch``: standardised per channel over the batch first (a batch
            norm without affine parameters). Why: the pooled features follow a
            ReLU, so they are all positive, and the product of two of them is large
            whenever both are large, same instant or not; standardised, the product
            is positive where the two images deviate from the average image in the
            same direction, a similarity the head can read (not in the paper; see
            ``docs/design.md`` §1.3 for what it changed).
        rows: the heads read the last feature map average-pooled over its width
            into this many horizontal bands, ``(C × rows)`` per image (1: global
            pooling, the paper). Why: cameras at about the person's height see a
            joint at about the same image height from every side, so the vertical
            layout is what two synchronised views share (on true 2D keypoints of
            our renders, the joints' heights alone tell synchronised pairs 78% of
            the time, their x alone 68%: ``benchmarks/results/sync_pretext``).
            The pose features stay globally pooled (see ``pose_rows``). At most
            the map's height (⌈``model.crop_size`` / 32⌉).
        pose_rows: the pose stage reads the last map pooled the same way into
            this many bands, ``(C × pose_rows)`` (1: globally pooled, the
            paper). Why: to ask whether the pose head misses what the heads
            learned to read in the bands — global pooling averages the top of
            the person with the bottom. Reading only: it changes no pretrained
            weight, so a run's weights can be read either way.
        pose_background: what the pose stage's crops show. ``keep``: the frames
            as they are (what every run made before this key read).
            ``as_pretrained``: the background handled as ``background`` handled
            it while pretraining (``mask``: the person on grey; ``subtract``:
            frame − background; ``keep`` and ``replace``: the frames as they
            are — ``replace`` has no other background to paste at test time),
            from the estimated background of each frame, never a label. Why:
            the frozen stages' filters and batch-norm statistics are those of
            the pretraining crops; reading raw frames they see a room they never
            saw (``benchmarks/results/sync_pose_input``). Reading only: it
            changes no pretrained weight.
    """

    fusion: Literal["product", "difference", "sum", "concat"] = "product"
    tasks: tuple[str, ...] = TASKS
    background: Literal["keep", "subtract", "mask", "replace"] = "mask"
    mask_threshold: float = 0.1
    crop: Literal["true_box", "full"] = "true_box"
    box_jitter: float = 0.1
    colour_jitter: float = 0.2
    hidden: int = 256
    feature_norm: Literal["none", "batch"] = added_field("none")
    rows: int = added_field(1)
    pose_rows: int = added_field(1)
    pose_background: Literal["keep", "as_pretrained"] = added_field("keep")

    def __post_init__(self) -> None:
        self.tasks = tuple(self.tasks)
        if self.pose_background not in POSE_BACKGROUNDS:
            raise ConfigError(f"method_config.sync.pose_background must be one of {POSE_BACKGROUNDS}, "
                              f"got {self.pose_background!r}")
        if self.feature_norm not in ("none", "batch"):
            raise ConfigError(f"method_config.sync.feature_norm must be none or batch, got {self.feature_norm!r}")
        if self.fusion not in FUSIONS:
            raise ConfigError(f"method_config.sync.fusion must be one of {FUSIONS}, got {self.fusion!r}")
        if self.background not in BACKGROUNDS:
            raise ConfigError(f"method_config.sync.background must be one of {BACKGROUNDS}, got {self.background!r}")
        if self.crop not in CROPS:
            raise ConfigError(f"method_config.sync.crop must be one of {CROPS}, got {self.crop!r}")
        bad = [t for t in self.tasks if t not in TASKS]
        if bad or not self.tasks or len(set(self.tasks)) != len(self.tasks):
            raise ConfigError(f"method_config.sync.tasks must be a non-empty list of distinct {TASKS}, "
                              f"got {list(self.tasks)}")
        if not 0 < self.mask_threshold < 1:
            raise ConfigError(f"method_config.sync.mask_threshold must be in (0, 1), got {self.mask_threshold}")
        if not 0 <= self.box_jitter < 0.5 or not 0 <= self.colour_jitter < 1:
            raise ConfigError(f"method_config.sync.box_jitter must be in [0, 0.5) and colour_jitter in [0, 1), "
                              f"got {self.box_jitter}, {self.colour_jitter}")
        if self.hidden < 1:
            raise ConfigError(f"method_config.sync.hidden must be >= 1, got {self.hidden}")
        for name in ("rows", "pose_rows"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"method_config.sync.{name} must be an integer >= 1, got {v!r}")


def fuse(fa: torch.Tensor, fb: torch.Tensor, how: str) -> torch.Tensor:
    """Fuse the two images' features of each pair.

    Args:
        fa, fb: ``(B, C)`` features of the first and second image.
        how: ``product`` (element-wise), ``difference`` (``fa − fb``), ``sum``
            or ``concat``.

    Returns:
        ``(B, C)``, or ``(B, 2C)`` for ``concat``.
    """
    if fa.shape != fb.shape or fa.ndim != 2:
        raise ValueError(f"need two (B, C) features of one shape, got {tuple(fa.shape)} and {tuple(fb.shape)}")
    if how == "product":
        return fa * fb
    if how == "difference":
        return fa - fb
    if how == "sum":
        return fa + fb
    if how == "concat":
        return torch.cat([fa, fb], dim=1)
    raise ValueError(f"unknown fusion {how!r}; choose one of {FUSIONS}")


def fused_dim(channels: int, how: str) -> int:
    """Size of :func:`fuse`'s output for ``channels``-wide features."""
    return 2 * channels if how == "concat" else channels


def person_mask(frames: torch.Tensor, background: torch.Tensor, threshold: float) -> torch.Tensor:
    """``(B, 1, H, W)`` float {0, 1}: pixels whose largest channel differs from the background by > ``threshold``.

    ``frames``, ``background``: ``(B, 3, H, W)`` in [0, 1]. A 3×3 max then
    min filter (closing) fills one-pixel holes in the person.
    """
    m = ((frames - background).abs().amax(dim=1, keepdim=True) > threshold).float()
    m = F.max_pool2d(m, 3, stride=1, padding=1)
    return -F.max_pool2d(-m, 3, stride=1, padding=1)


def handle_background(frames: torch.Tensor, background: torch.Tensor | None, how: str, threshold: float,
                      other: torch.Tensor | None = None) -> torch.Tensor:
    """Frames ``(B, 3, H, W)`` in [0, 1] with the static background handled as ``how`` (:data:`BACKGROUNDS`).

    ``background``: the estimated background of each frame (same shape);
    ``other``: for ``replace``, the backgrounds to composite the person over.
    """
    if how == "keep":
        return frames
    if background is None:
        raise MethodError(f"method_config.sync.background={how!r} needs the estimated background of each frame; "
                          "estimate it when preparing the data, or set background: keep")
    if how == "subtract":
        return (frames - background + 0.5).clamp(0, 1)
    m = person_mask(frames, background, threshold)
    if how == "mask":
        return frames * m + 0.5 * (1 - m)
    if how == "replace":
        if other is None:
            raise ValueError("background='replace' needs the other backgrounds")
        return frames * m + other * (1 - m)
    raise ValueError(f"unknown background handling {how!r}; choose one of {BACKGROUNDS}")


def square_theta(boxes: torch.Tensor, W: int, H: int, margin: float) -> torch.Tensor:
    """Person boxes ``(B, 4)`` x0, y0, x1, y1 px of a W×H frame → θ of the square around each × ``margin``."""
    return stn_square_theta(box_px_to_theta(boxes.float(), W, H), W, H, margin)


def mirror_joints2d(joints2d: torch.Tensor, width: int) -> torch.Tensor:
    """2D labels of an image mirrored left-right: ``x → width − 1 − x`` and left/right joints swap names.

    Args:
        joints2d: ``(..., 17, 2)`` px of an image ``width`` px wide (house
            skeleton; pixel centres at integers, as everywhere in selfpose).

    Returns:
        The same shape: joint ``j`` of the result is the mirror image of joint
        ``j``'s flip partner (:attr:`selfpose.geometry.skeleton.H36M17.flip_pairs`).
    """
    from selfpose.geometry.skeleton import H36M17

    if joints2d.shape[-2:] != (H36M17.num_joints, 2):
        raise ValueError(f"need (..., {H36M17.num_joints}, 2) house-skeleton 2D, got {tuple(joints2d.shape)}")
    perm = torch.as_tensor(H36M17.flip_permutation(), device=joints2d.device)
    out = joints2d.index_select(-2, perm).clone()
    out[..., 0] = (width - 1) - out[..., 0]
    return out


def joints_to_crop(joints2d: torch.Tensor, theta: torch.Tensor, W: int, H: int, size: int) -> torch.Tensor:
    """Frame pixels ``(B, J, 2)`` of a W×H frame → pixels of the ``size``-px crop cut at θ ``(B, 4)``.

    The inverse of :func:`selfpose.models.stn.crop`'s sampling (``align_corners=False``:
    pixel centres at integers, the frame's edges at −½ and W − ½).
    """
    xn = (2 * joints2d[..., 0] + 1) / W - 1
    yn = (2 * joints2d[..., 1] + 1) / H - 1
    u = (xn - theta[:, None, 2]) / theta[:, None, 0]
    v = (yn - theta[:, None, 3]) / theta[:, None, 1]
    return torch.stack([(u + 1) * size / 2 - 0.5, (v + 1) * size / 2 - 0.5], dim=-1)


class SyncMethod(Method):
    """The Siamese synchronisation/flip network (see the module docstring)."""

    name = "sync"

    def __init__(self, cfg, section: SyncConfig | None = None):
        super().__init__()
        self.cfg = section if section is not None else SyncConfig()
        self.model_cfg = cfg.model
        m = cfg.model
        self.encoder = resnet(m.encoder_arch, width=m.encoder_width, num_classes=None)
        # Both crops reach the encoder at crop_size px (``full`` resizes the frame); its last map is ceil(size / 32)
        # high (four stride-2 convolutions and a max pool with padding).
        height = -(-int(m.crop_size) // 32)
        for name in ("rows", "pose_rows"):
            if getattr(self.cfg, name) > height:
                raise ConfigError(f"method_config.sync.{name} = {getattr(self.cfg, name)} exceeds the height of the "
                                  f"last feature map ({height} at model.crop_size = {m.crop_size} px); lower it or "
                                  "raise model.crop_size")
        C = self.encoder.out_channels * self.cfg.rows
        D = fused_dim(C, self.cfg.fusion)

        def head() -> nn.Module:
            return nn.Sequential(nn.Linear(D, self.cfg.hidden), nn.ReLU(inplace=True), nn.Linear(self.cfg.hidden, 1))

        self.heads = nn.ModuleDict({t: head() for t in self.cfg.tasks})
        # Groups of instants (sampler.sync_instants > 1, not in the paper): all M × M pairs of a group are scored.
        self.instants = int(getattr(getattr(cfg, "sampler", None), "sync_instants", 1))
        if self.instants > 1 and self.cfg.background == "replace":
            raise ConfigError("method_config.sync.background=replace pastes each image of a pair over another "
                              "pair's background and is defined for pairs only; set sampler.sync_instants: 1 "
                              "or another background")
        # Only with feature_norm=batch, so that runs saved before it keep their state-dict keys.
        self.feature_norm = nn.BatchNorm1d(C, affine=False) if self.cfg.feature_norm == "batch" else None

    # -- pretraining -------------------------------------------------------------------------------
    def batch_labels(self, stage: int) -> list[str]:
        """The person boxes (``crop: true_box``) and the estimated background (unless ``background: keep``)."""
        out = ["boxes"] if self.cfg.crop == "true_box" else []
        return out + ([] if self.cfg.background == "keep" else ["background"])

    def _crops(self, x: torch.Tensor, boxes: torch.Tensor | None, jitter: float,
               gen: torch.Generator | None = None, with_theta: bool = False):
        """Frames ``(B, 3, H, W)`` in [0, 1] (+ boxes px) → crops ``(B, 3, c, c)`` (and their θ ``(B, 4)``)."""
        c = self.model_cfg.crop_size
        H, W = x.shape[-2:]
        if self.cfg.crop == "full":
            out = F.interpolate(x, size=(c, c), mode="bilinear", align_corners=False, antialias=True)
            return (out, torch.tensor([[1.0, 1.0, 0.0, 0.0]], device=x.device).expand(len(x), 4)) if with_theta else out
        if boxes is None:
            raise MethodError("method_config.sync.crop=true_box reads the person box of each frame; the data hold "
                              "none (boxes) — store boxes, or set crop: full")
        th = square_theta(boxes.to(x.device), W, H, self.model_cfg.crop_margin)
        if jitter > 0:
            u = torch.rand(len(th), 3, generator=gen).to(th.device) * 2 - 1
            scale = 1 + jitter * u[:, :1]
            th = torch.cat([th[:, :2] * scale, th[:, 2:] + jitter * th[:, :2] * u[:, 1:]], dim=1)
        out = crop(x, th, c, padding_mode="border")
        return (out, th) if with_theta else out

    def _flat_images(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A batch's frames ``(N, K, 3, H, W)`` and estimated backgrounds (if any) as ``(N·K, 3, H, W)`` floats in
        [0, 1] on the method's device."""
        dev = next(self.parameters()).device

        def flat(t: torch.Tensor) -> torch.Tensor:
            t = t.reshape(-1, *t.shape[2:]).to(dev)
            return t.float().div_(255.0) if t.dtype == torch.uint8 else t.float()

        bg = batch.get("background")
        return flat(batch["frames"]), (None if bg is None else flat(bg))

    def _cut(self, x: torch.Tensor, bg: torch.Tensor | None, boxes: torch.Tensor | None,
             other: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Flat images and backgrounds → the crops the encoder reads ``(B, 3, c, c)`` and their θ ``(B, 4)``:
        background handled (``other``: the replacement backgrounds), cut at the box (``(N, K, 4)`` px, jittered
        in training), colour-jittered in training."""
        from selfpose.pose.supervised import colour_jitter

        x = handle_background(x, bg, self.cfg.background, self.cfg.mask_threshold, other)
        boxes = None if boxes is None else boxes.reshape(-1, 4)
        c, theta = self._crops(x, boxes, self.cfg.box_jitter if self.training else 0.0, with_theta=True)
        return (colour_jitter(c, self.cfg.colour_jitter) if self.training else c), theta

    def pair_images(self, batch: dict) -> dict[str, torch.Tensor]:
        """The two crops of every pair as the encoder sees them, before the random order swap.

        Returns ``{"first", "second"}`` ``(N, 3, c, c)`` in [0, 1] — ``second``
        already mirrored where ``batch["flip"]`` — and, when the batch carries
        ``joints2d``, ``"joints2d"`` ``(N, 2, J, 2)``: each crop's 2D labels in
        its own pixels, mirrored (x and left/right names) with its image.
        """
        N, K = batch["frames"].shape[:2]
        if K != 2:
            raise MethodError(f"the sync method trains on pairs (K = 2 frames per item), got K = {K}; "
                              "train it with sampler 'sync'")
        dev = next(self.parameters()).device
        x, bg = self._flat_images(batch)
        other = None
        if self.cfg.background == "replace" and bg is not None:
            # Each image over the background of another pair's camera: the two images of a pair get different ones
            # (one pair alone: each over the other's). In eval mode always the next pair's: a held-out score must not
            # depend on the global RNG (it moved a replace run's flip score by 2 points between two calls).
            shift = (torch.randint(1, N, (1,)).item() if self.training else 1) if N > 1 else 0
            other = bg.reshape(N, 2, *bg.shape[1:]).roll(shift, dims=0).flip(1)
            # The second image of a flipped pair is mirrored after compositing, background and all; a mirrored real
            # room is a flip cue as strong as a kept background (flip loss 0.08 at 8,000 steps, as with `keep`,
            # benchmarks/results/benchmark_sync_s1_cpu). Mirroring its replacement background first leaves only the
            # person mirrored: the crop of a mirrored frame, mirrored, is an unmirrored patch of that frame.
            flip2 = batch["flip"].to(dev).bool()[:, None, None, None]
            other = torch.stack([other[:, 0], torch.where(flip2, other[:, 1].flip(-1), other[:, 1])], 1)
            other = other.reshape(bg.shape)
        c, theta = self._cut(x, bg, batch.get("boxes"), other)
        size = c.shape[-1]
        c = c.reshape(N, 2, *c.shape[1:])
        flip = batch["flip"].to(dev).bool()
        out = {"first": c[:, 0], "second": torch.where(flip[:, None, None, None], c[:, 1].flip(-1), c[:, 1])}
        if batch.get("joints2d") is not None:
            j = joints_to_crop(batch["joints2d"].reshape(N * 2, -1, 2).to(dev).float(), theta, W=x.shape[-1],
                               H=x.shape[-2], size=size).reshape(N, 2, -1, 2)
            j2 = torch.where(flip[:, None, None], mirror_joints2d(j[:, 1], size), j[:, 1])
            out["joints2d"] = torch.stack([j[:, 0], j2], dim=1)
        return out

    def pair_logits(self, batch: dict, images: dict | None = None) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Logits ``{task: (N,)}`` of a batch of pairs and the targets ``{task: (N,) bool}`` they are scored on.

        ``images``: :meth:`pair_images` of this batch when the caller has them already (not cut twice).
        """
        imgs = images if images is not None else self.pair_images({k: v for k, v in batch.items() if k != "joints2d"})
        first, second = imgs["first"], imgs["second"]
        N = first.shape[0]
        dev = first.device
        flip = batch["flip"].to(dev).bool()
        swap = (torch.rand(N) < 0.5).to(dev) if self.training else torch.zeros(N, dtype=torch.bool, device=dev)
        a = torch.where(swap[:, None, None, None], second, first)
        b = torch.where(swap[:, None, None, None], first, second)
        f = self.pair_features(torch.cat([a, b]))
        if self.feature_norm is not None:   # both images' features, one set of statistics
            f = self.feature_norm(f.float())
        z = fuse(f[:N], f[N:], self.cfg.fusion)
        logits = {t: h(z).squeeze(1).float() for t, h in self.heads.items()}
        sync = batch["sync"].to(dev).bool()
        targets = {"sync": sync, "flip": flip}
        return logits, {t: targets[t] for t in logits}

    def group_logits(self, batch: dict) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Logits and targets of a batch of groups (``sampler.sync_instants`` = M > 1; frames ``(N, 2M, ...)``:
        view a at M instants, then view b at the same instants, view-b images mirrored where ``flip`` ``(N, M)``).

        Returns ``{"sync": (N, M, M), "flip": (N, M)}`` logits and their bool targets: ``sync`` scores every
        (view-a instant i, view-b instant j) pair, true on the diagonal (``batch["sync"]``); ``flip`` the
        diagonal's pairs, true where the view-b image is mirrored. Each item's two views swap places at random
        in training, as the pairs' two images do.
        """
        N, K = batch["frames"].shape[:2]
        M = K // 2
        if K != 2 * self.instants:
            raise MethodError(f"this sync network trains on groups of {self.instants} instants in two views "
                              f"(K = {2 * self.instants} frames per item), got K = {K}")
        dev = next(self.parameters()).device
        c, _ = self._cut(*self._flat_images(batch), batch.get("boxes"))
        c = c.reshape(N, 2, M, *c.shape[1:])
        flip = batch["flip"].to(dev).bool()
        first, second = c[:, 0], torch.where(flip[..., None, None, None], c[:, 1].flip(-1), c[:, 1])
        swap = (torch.rand(N) < 0.5).to(dev) if self.training else torch.zeros(N, dtype=torch.bool, device=dev)
        a = torch.where(swap[:, None, None, None, None], second, first)
        b = torch.where(swap[:, None, None, None, None], first, second)
        f = self.pair_features(torch.cat([a.flatten(0, 1), b.flatten(0, 1)]))
        if self.feature_norm is not None:
            f = self.feature_norm(f.float())
        D = f.shape[1]
        fa, fb = f[: N * M].view(N, M, 1, D), f[N * M:].view(N, 1, M, D)
        sync = batch["sync"].to(dev).bool()
        logits, targets = {}, {}
        if "sync" in self.heads:
            z = fuse(fa.expand(N, M, M, D).reshape(-1, D), fb.expand(N, M, M, D).reshape(-1, D), self.cfg.fusion)
            logits["sync"], targets["sync"] = self.heads["sync"](z).view(N, M, M).float(), sync
        if "flip" in self.heads:
            z = fuse(fa.reshape(-1, D), fb.reshape(-1, D), self.cfg.fusion)   # the diagonal: a_i with b_i
            logits["flip"], targets["flip"] = self.heads["flip"](z).view(N, M).float(), flip
        return logits, targets

    def group_losses(self, logits: dict, targets: dict) -> dict[str, torch.Tensor]:
        """Binary cross-entropy per task of :meth:`group_logits`' output. ``sync``: the mean over the synchronised
        pairs and the mean over the rest, averaged (the two classes weigh as the pairs' 50/50 draw does);
        ``flip``: the mean over the diagonal."""
        out = {}
        for t, z in logits.items():
            y = targets[t]
            bce = F.binary_cross_entropy_with_logits(z, y.float(), reduction="none")
            if t == "sync":
                out[t] = 0.5 * (bce[y].mean() + bce[~y].mean())
            else:
                out[t] = bce.mean()
        return out

    def pair_features(self, x: torch.Tensor) -> torch.Tensor:
        """Crops ``(B, 3, c, c)`` → what the heads fuse: ``(B, C × rows)``, the last map pooled over its width
        into ``rows`` bands (top to bottom, channels of one band together), or ``(B, C)`` pooled globally."""
        return self._bands(x, self.cfg.rows)

    def _bands(self, x: torch.Tensor, rows: int) -> torch.Tensor:
        """Crops ``(B, 3, c, c)`` → the last map pooled over its width into ``rows`` bands ``(B, C × rows)``."""
        if rows == 1:
            return self.encoder.pooled(x)
        fmap = self.encoder.features(x)[-1]
        return F.adaptive_avg_pool2d(fmap, (rows, 1)).flatten(2).transpose(1, 2).flatten(1)

    def task_losses(self, logits: dict, targets: dict, sync: torch.Tensor) -> dict[str, torch.Tensor]:
        """Binary cross-entropy per task; the flip task on synchronised pairs only (the only ones flipped)."""
        out = {}
        for t, z in logits.items():
            y = targets[t].float()
            if t == "flip":
                w = sync.float()
                out[t] = (F.binary_cross_entropy_with_logits(z, y, reduction="none") * w).sum() / w.sum().clamp(min=1)
            else:
                out[t] = F.binary_cross_entropy_with_logits(z, y)
        return out

    def training_step(self, batch: dict, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        accs: dict[str, float] = {}
        if self.instants > 1:
            logits, targets = self.group_logits(batch)
            losses = self.group_losses(logits, targets)
            for t, z in logits.items():
                right, y = (z.detach() > 0) == targets[t], targets[t]
                # balanced: the mean of the two classes' accuracies, comparable with the pairs' 50/50 draw
                accs[t] = (float(0.5 * (right[y].float().mean() + right[~y].float().mean()))
                           if y.any() and (~y).any() else float(right.float().mean()))
        else:
            logits, targets = self.pair_logits(batch)
            sync = targets.get("sync", batch["sync"].bool().to(next(iter(logits.values())).device))
            losses = self.task_losses(logits, targets, sync)
            for t, z in logits.items():
                right = ((z.detach() > 0) == targets[t])
                if t == "flip":
                    right = right[sync] if sync.any() else right[:0]
                if len(right):
                    accs[t] = float(right.float().mean())
        total = sum(losses.values())
        logs = {"loss": float(total.detach())}
        for t in logits:
            logs[f"{t}_loss"] = float(losses[t].detach())
            if t in accs:
                logs[f"{t}_acc"] = accs[t]
        return total, logs

    def pictures(self, batch: dict) -> dict[str, np.ndarray]:
        """``pairs``: the first pairs as the encoder sees them, with the truth and the predicted probabilities
        (of a batch of groups: each item's first instant paired with view b's first and second)."""
        return {"pairs": pair_grid(self, group_pairs(batch) if self.instants > 1 else batch)}

    # -- after pretraining -------------------------------------------------------------------------
    @property
    def reads_boxes(self) -> bool:
        """True with ``crop: true_box``: features are read at the stored person box (the pose stage passes it)."""
        return self.cfg.crop == "true_box"

    @property
    def reads_background(self) -> bool:
        """True with ``pose_background: as_pretrained`` after a pretraining that masked or subtracted the background."""
        return self.cfg.pose_background == "as_pretrained" and self.cfg.background in ("mask", "subtract")

    def pose_input(self, frames: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
        """Frames ``(B, 3, H, W)`` float [0, 1] with the background handled as while pretraining (when
        :attr:`reads_background`; unchanged otherwise). ``background``: each frame's estimate, same shape."""
        if not self.reads_background:
            return frames
        return handle_background(frames.float(), background.float(), self.cfg.background, self.cfg.mask_threshold)

    @property
    def feature_dim(self) -> int:
        return int(self.encoder.out_channels) * self.cfg.pose_rows

    @property
    def input_size(self) -> int:
        return int(self.model_cfg.image_size)

    def encode_for_pose(self, frames: torch.Tensor, boxes: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Frames ``(B, 3, H, W)`` (uint8 or [0, 1]) and, with ``crop: true_box``, person boxes ``(B, 4)`` px
        → ``{"features": (B, C × pose_rows)}``: the pooled encoder feature of the crop (no jitter)."""
        x = frames.float().div(255.0) if frames.dtype == torch.uint8 else frames.float()
        return {"features": self._bands(self._crops(x, boxes, 0.0), self.cfg.pose_rows).float()}

    def pose_features(self, frames: torch.Tensor, boxes: torch.Tensor | None = None) -> torch.Tensor:
        return self.encode_for_pose(frames, boxes)["features"]

    def finetune_backbone(self) -> nn.Module:
        """The ResNet whose stages fine-tuning freezes or trains."""
        return self.encoder

    def finetune_frozen(self) -> list[nn.Module]:
        """The pretext heads (and the fusion's feature norm): not on the pose features' path."""
        return [self.heads] + ([self.feature_norm] if self.feature_norm is not None else [])


def group_pairs(batch: dict) -> dict:
    """A batch of groups (frames ``(N, 2M, ...)``, see :meth:`SyncMethod.group_logits`) → a batch of ``2N``
    pairs: item n's (a_1, b_1) — synchronised — then its (a_1, b_2), unsynchronised; flips, boxes, background
    and 2D labels follow their images."""
    N, K = batch["frames"].shape[:2]
    M = K // 2
    sel = torch.tensor([[0, M], [0, M + 1]])   # (pair kind, column)
    out = {}
    for k, v in batch.items():
        if isinstance(v, torch.Tensor) and v.ndim >= 2 and v.shape[:2] == (N, K):
            out[k] = v[:, sel].transpose(0, 1).reshape(2 * N, 2, *v.shape[2:])
    out["flip"] = batch["flip"][:, :2].transpose(0, 1).reshape(2 * N)
    out["dt"] = torch.stack([batch["dt"][:, 0, 0], batch["dt"][:, 0, 1]]).reshape(2 * N)
    out["sync"] = out["dt"] == 0
    return out


@torch.no_grad()
def pair_grid(method: SyncMethod, batch: dict, max_pairs: int = 8, cell_px: int = 112,
              title: str | None = None) -> np.ndarray:
    """uint8 ``(H, W, 3)`` picture: one row per pair (first image | second image), captioned with the truth
    (``sync``/``unsync``, ``flipped``) and the network's probabilities; 2D labels drawn when the batch has them.

    Called in eval mode (no jitter, no order swap), so the images are the pairs' own.
    """
    from selfpose.viz.model_pictures import tile
    from selfpose.viz.skeleton import draw_skeleton_2d

    n = min(int(batch["frames"].shape[0]), max_pairs)
    small = {k: (v[:n] if isinstance(v, torch.Tensor) and v.ndim and v.shape[0] == batch["frames"].shape[0] else v)
             for k, v in batch.items()}
    was = method.training
    method.eval()
    try:
        imgs = method.pair_images(small)
        logits, targets = method.pair_logits(small, imgs)
    finally:
        method.train(was)
    rows, caps = [], []
    for i in range(n):
        row = []
        for k, key in enumerate(("first", "second")):
            img = (imgs[key][i].permute(1, 2, 0).clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8)
            if "joints2d" in imgs:
                img = draw_skeleton_2d(img, imgs["joints2d"][i, k].cpu().numpy())
            row.append(img)
        rows.append(row)
        sync, flip = bool(small["sync"][i]), bool(small["flip"][i])
        probs = "\n".join(f"p({t})={torch.sigmoid(z[i]).item():.2f}" for t, z in logits.items())
        caps.append([("sync" if sync else f"unsync dt={int(small['dt'][i]) if 'dt' in small else '?'}")
                     + (" flipped" if flip else ""), probs])
    return tile(rows, cell_px=cell_px, col_labels=["first", "second"], captions=caps,
                title=title)


def build_sync(cfg, two_stage: bool, section: SyncConfig | None) -> SyncMethod:
    """Registry builder of ``method=sync`` (no two-stage schedule: there is nothing to switch)."""
    if two_stage:
        raise ConfigError("method=sync has no two-stage schedule; set data.two_stage: false")
    return SyncMethod(cfg, section)


__all__ = ("SyncConfig", "SyncMethod", "build_sync", "fuse", "fused_dim", "handle_background", "person_mask",
           "square_theta", "mirror_joints2d", "joints_to_crop", "pair_grid", "group_pairs", "FUSIONS", "BACKGROUNDS", "CROPS", "TASKS",
           "POSE_BACKGROUNDS")
