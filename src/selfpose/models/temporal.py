"""TemporalModel: detector (STN) → crop → shared encoder (v, i) → decoder → inverse warp + composite.

The network of Honari et al., TPAMI 2022 (docs/design.md §1.1), without its
losses (those live in :mod:`selfpose.losses`, the training step in
:mod:`selfpose.methods`). Every part can be switched off for the baselines
and ablations: ``detector=False`` crops the full frame (or given boxes),
``decoder=False`` builds no decoder, ``split=False`` uses one latent z.

Images are float in [0, 1], (B, 3, H, W); θ = (sx, sy, tx, ty) as in
:mod:`selfpose.models.stn`. The model works with ``channels_last`` weights and
inputs and under ``torch.autocast`` (bf16): the warps and the composite run in
float32, the convolutions in the autocast dtype.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from selfpose.config import ConfigError
from selfpose.errors import SelfposeError
from selfpose.models.backbones import ARCHS
from selfpose.models.decoder import Decoder
from selfpose.models.detector import Detector
from selfpose.models.encoder import Encoder
from selfpose.models.stn import (
    box_px_to_theta,
    square_theta,
    crop,
    full_frame_theta,
    theta_to_box_px,
    uncrop,
)


class TemporalModelError(SelfposeError, ValueError):
    """The model was asked for something its configuration does not build, or got bad inputs."""


@dataclass
class ModelConfig:
    """Network sizes; defaults are the CPU profile (paper: crop_size 128, widths 64).

    Attributes:
        image_size: side in pixels frames are resized to (stored frames already are 128).
        crop_size: side c in pixels of the crop the encoder sees and the decoder draws.
        detector: learn the box; False crops the full frame (θ = (1, 1, 0, 0)) or given boxes.
        detector_input: side in pixels of the downsampled frame the detector sees.
        detector_arch, detector_width: detector ResNet and its base channel count.
        detector_init_scale: box size (fraction of the frame) at initialisation, centred.
        square_crop: the encoder's crop (and the decoder's canvas) is a square
            centred on the detector's box, its side the box's longer side ×
            ``crop_margin`` (in pixels). The detector's box stays tight (it is
            what detection IoU measures); the crop keeps the body's
            proportions instead of stretching a standing person sideways, and
            some context. Not in the paper (its crop is the box itself: False).
        crop_margin: enlargement of the square crop (square_crop only).
        detector_coords: give the detector x/y coordinate channels (CoordConv; see
            :class:`~selfpose.models.detector.Detector`). Not in the paper.
        scale_min, scale_max: bounds of the box size (fractions of the frame size).
        encoder_arch, encoder_width: shared encoder ResNet and its base channel count (torchvision: 64).
        v_dim, i_dim: sizes of the time-variant (pose) and time-invariant (appearance) codes.
        split: False uses one latent z of size v_dim + i_dim for everything (no i branch).
        decoder: build the decoder (False for the contrastive-only baselines).
        decoder_channels: channels of the decoder's c/8 maps (halved at every upsampling).
        decoder_hidden: width of the decoder's hidden FC layer.
        decoder_dropout: dropout after the decoder's FC layers (paper: 0.3; CPU default 0:
            at a few thousand steps it only slows the decoder down).
        pretrained_encoder: path of a torchvision-format ResNet state dict for the
            encoder backbone (needs encoder_width 64); never downloaded.
    """

    image_size: int = 128
    crop_size: int = 64
    detector: bool = True
    detector_input: int = 64
    detector_arch: str = "resnet18"
    detector_width: int = 16
    detector_init_scale: float = 0.5
    detector_coords: bool = True
    square_crop: bool = True
    crop_margin: float = 1.25
    scale_min: float = 0.1
    scale_max: float = 1.0
    encoder_arch: str = "resnet18"
    encoder_width: int = 32
    v_dim: int = 128
    i_dim: int = 128
    split: bool = True
    decoder: bool = True
    decoder_channels: int = 64
    decoder_hidden: int = 512
    decoder_dropout: float = 0.0
    pretrained_encoder: str | None = None

    def __post_init__(self):
        for name in ("image_size", "crop_size", "detector_input", "detector_width", "encoder_width",
                     "v_dim", "i_dim", "decoder_channels", "decoder_hidden"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model.{name} must be positive, got {getattr(self, name)}")
        if self.crop_size % 8:
            raise ConfigError(f"model.crop_size must be a multiple of 8 (the decoder upsamples 3× by 2), "
                              f"got {self.crop_size}")
        for name in ("detector_arch", "encoder_arch"):
            if getattr(self, name) not in ARCHS:
                raise ConfigError(f"model.{name} must be one of {', '.join(ARCHS)}, got {getattr(self, name)!r}")
        if not 0 < self.scale_min <= self.scale_max:
            raise ConfigError(f"model: need 0 < scale_min <= scale_max, got {self.scale_min}, {self.scale_max}")
        if not self.scale_min < self.detector_init_scale < self.scale_max:
            raise ConfigError(f"model.detector_init_scale must lie strictly between scale_min and scale_max, "
                              f"got {self.detector_init_scale}")
        if self.crop_margin <= 0:
            raise ConfigError(f"model.crop_margin must be > 0, got {self.crop_margin}")
        if not 0 <= self.decoder_dropout < 1:
            raise ConfigError(f"model.decoder_dropout must be in [0, 1), got {self.decoder_dropout}")


class TemporalModel(nn.Module):
    """Detector + shared encoder (v, i heads) + decoder + composite (Eq. 1). See the module docstring."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.detector = (Detector(cfg.detector_arch, cfg.detector_width, cfg.detector_input, cfg.scale_min,
                                  cfg.scale_max, cfg.detector_init_scale, cfg.detector_coords)
                         if cfg.detector else None)
        self.encoder = Encoder(cfg.encoder_arch, cfg.encoder_width, cfg.v_dim, cfg.i_dim, cfg.split,
                               cfg.pretrained_encoder)
        self.decoder = (Decoder(cfg.v_dim + cfg.i_dim, cfg.crop_size, cfg.decoder_channels, cfg.decoder_dropout,
                                cfg.decoder_hidden) if cfg.decoder else None)

    # -- inputs ---------------------------------------------------------------------------------
    def prepare(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 (or float [0, 1]) frames (B, 3, H, W) → float32 [0, 1] at image_size × image_size."""
        if frames.ndim != 4 or frames.shape[1] != 3:
            raise TemporalModelError(f"frames must have shape (B, 3, H, W), got {tuple(frames.shape)}")
        x = frames.float().div_(255.0) if frames.dtype == torch.uint8 else frames.float()
        s = self.cfg.image_size
        if x.shape[-2:] != (s, s):
            x = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False, antialias=True)
        return x

    # -- the pipeline ---------------------------------------------------------------------------
    def detect(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames (B, 3, H, W) in [0, 1] → θ (B, 4) float32; the full frame when the detector is off."""
        if self.detector is None:
            return full_frame_theta(frames.shape[0], device=frames.device)
        return self.detector(frames)

    def crop_theta(self, theta: torch.Tensor, hw: tuple[int, int] | None = None) -> torch.Tensor:
        """Detector boxes θ (B, 4) → the boxes that are cropped (B, 4) (see ``square_crop``).

        ``hw`` = (H, W) of the frame (default: image_size square); differentiable in θ.
        Without a detector the crop is the full frame (or the given box), unchanged.
        """
        if not self.cfg.square_crop or self.detector is None:
            return theta
        H, W = hw if hw is not None else (self.cfg.image_size, self.cfg.image_size)
        return square_theta(theta, W, H, self.cfg.crop_margin)

    def crop(self, frames: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """Frames (B, 3, H, W) and θ (B, 4) → crops (B, 3, c, c) float32 (differentiable in θ)."""
        return crop(frames, theta, self.cfg.crop_size)

    def encode_crop(self, crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Crops (B, 3, c, c) → v (B, v_dim), i (B, i_dim); with split=False, (z (B, v_dim+i_dim), None)."""
        return self.encoder(crops)

    def encode_box(self, frames: torch.Tensor, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Prepared frames (B, 3, H, W) and a person box θ (B, 4) → ``encode_crop`` of the crop a detector that
        found that box would cut (:meth:`crop_theta`: the square × ``crop_margin`` with ``square_crop``)."""
        ct = self.crop_theta(theta.to(frames.device, torch.float32), (int(frames.shape[-2]), int(frames.shape[-1])))
        return self.encode_crop(self.crop(frames, ct))

    def encode(self, frames: torch.Tensor, boxes: torch.Tensor | None = None) -> dict[str, torch.Tensor | None]:
        """Frames (B, 3, H, W) in [0, 1] → {"theta", "box_theta", "crop", "v", "i", "box_px"} (no jitter).

        ``boxes`` (B, 4) x0, y0, x1, y1 in pixels of the frames, when given,
        replace the detector (e.g. ground-truth boxes with ``detector=False``).
        ``box_theta`` is the detector's (or given) box and ``box_px`` the same
        box in pixels; ``theta`` is the box that was cropped (the same unless
        ``square_crop`` with a detector), the one to composite with.
        """
        H, W = frames.shape[-2:]
        if boxes is not None:
            if boxes.shape != (frames.shape[0], 4):
                raise TemporalModelError(f"boxes must have shape (B, 4) = x0, y0, x1, y1 px, "
                                         f"got {tuple(boxes.shape)}")
            theta = box_px_to_theta(boxes.to(frames.device, torch.float32), W, H)
        else:
            theta = self.detect(frames)
        ct = theta if boxes is not None else self.crop_theta(theta, (H, W))
        crops = self.crop(frames, ct)
        v, i = self.encode_crop(crops)
        return {"theta": ct, "box_theta": theta, "crop": crops, "v": v, "i": i,
                "box_px": theta_to_box_px(theta, W, H)}

    def decode(self, v: torch.Tensor, i: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(v, i) → crop_rgb (B, 3, c, c), mask (B, 1, c, c), float32 in [0, 1].

        With split=False pass the latent z as ``v`` and ``i=None``.
        """
        if self.decoder is None:
            raise TemporalModelError("this model has no decoder (model.decoder=false); "
                                     "set model.decoder=true to decode or use a method without reconstruction")
        if self.cfg.split:
            if i is None:
                raise TemporalModelError("split model: decode needs both v and i (got i=None)")
            z = torch.cat([v, i], dim=1)
        else:
            if i is not None:
                raise TemporalModelError("split=False: pass the latent z as v and i=None")
            z = v
        return self.decoder(z)

    def composite(self, crop_rgb: torch.Tensor, mask: torch.Tensor, theta: torch.Tensor,
                  background: torch.Tensor) -> dict[str, torch.Tensor]:
        """Eq. 1: Î = W⁻¹(M)·W⁻¹(P̂) + (1 − W⁻¹(M))·B.

        Args:
            crop_rgb: (B, 3, c, c) decoded crop P̂ in [0, 1].
            mask: (B, 1, c, c) decoded mask M in [0, 1].
            theta: (B, 4) boxes the crops belong to.
            background: (B, 3, H, W) estimated background B in [0, 1].
        Returns:
            {"image": Î (B, 3, H, W) float32, "mask": W⁻¹(M) (B, 1, H, W) float32, 0 outside the box}.
        """
        if background.ndim != 4 or background.shape[1] != 3 or background.shape[0] != crop_rgb.shape[0]:
            raise TemporalModelError(f"background must have shape (B={crop_rgb.shape[0]}, 3, H, W), "
                                     f"got {tuple(background.shape)}")
        # One warp for the 4 channels: RGB and mask share the grid.
        warped = uncrop(torch.cat([crop_rgb.float(), mask.float()], dim=1), theta, background.shape[-2:])
        m = warped[:, 3:]
        bg = background.float()
        return {"image": bg + m * (warped[:, :3] - bg), "mask": m}

    def forward(self, frames: torch.Tensor, background: torch.Tensor) -> dict[str, torch.Tensor | None]:
        """Plain autoencoding pass (no jitter, no code permutation): encode, decode, composite.

        Returns the :meth:`encode` dict plus "crop_rgb", "crop_mask", "image", "mask".
        The methods build their own passes from the parts; this one is for tests and pictures.
        """
        out = self.encode(frames)
        rgb, m = self.decode(out["v"], out["i"])
        comp = self.composite(rgb, m, out["theta"], background)
        return {**out, "crop_rgb": rgb, "crop_mask": m, **comp}

    def feature_dim(self) -> int:
        """Size of the pose feature: v_dim, or v_dim + i_dim when split=False."""
        return self.cfg.v_dim if self.cfg.split else self.cfg.v_dim + self.cfg.i_dim
