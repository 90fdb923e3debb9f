"""The smallest complete :class:`~selfpose.methods.base.Method`: a conv autoencoder of frames.

It exists to exercise the training machinery (tests, examples, timing the
loop without the real model) and as a template of the Method interface.
It is not a pose method: its features are whatever an autoencoder learns.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from selfpose.methods.base import Method


class ToyAutoencoder(Method):
    """Encode each frame (resized to ``size``²) to ``latent`` numbers and decode it back; loss = MSE.

    Args:
        size: square input size in pixels (a multiple of 4).
        channels: width of the first conv layer.
        latent: code size (the pose feature size).
        kinds: sampler kind of stage 1 and of stage 2.
        noise: amplitude of the uniform input noise (in [0, 1] intensity units);
            with the dropout, it makes the steps use the RNG, as real methods do.
    """

    name = "toy"

    def __init__(self, size: int = 32, channels: int = 8, latent: int = 16, kinds: tuple[str, str] = ("dsl", "dsl"),
                 noise: float = 0.02):
        super().__init__()
        if size % 4:
            raise ValueError(f"size must be a multiple of 4, got {size}")
        c, s = channels, size // 4
        self.size, self.kinds, self.noise = size, tuple(kinds), float(noise)
        self.encoder = nn.Sequential(
            nn.Conv2d(3, c, 4, 2, 1), nn.BatchNorm2d(c), nn.ReLU(),
            nn.Conv2d(c, 2 * c, 4, 2, 1), nn.ReLU(), nn.Flatten(), nn.Linear(2 * c * s * s, latent))
        self.decoder = nn.Sequential(
            nn.Dropout(0.1), nn.Linear(latent, 2 * c * s * s), nn.ReLU(), nn.Unflatten(1, (2 * c, s, s)),
            nn.ConvTranspose2d(2 * c, c, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(c, 3, 4, 2, 1), nn.Sigmoid())

    def _images(self, frames: torch.Tensor) -> torch.Tensor:
        """(N, K, 3, H, W) uint8, or float in [0, 1] → float (N·K, 3, size, size) in [0, 1]."""
        x = frames.flatten(0, 1)
        x = x.float() / 255 if x.dtype == torch.uint8 else x.float()
        if x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True)
        return x

    def training_step(self, batch: dict, step: int):
        x = self._images(batch["frames"])
        noisy = (x + self.noise * torch.rand_like(x)).clamp(0, 1)
        recon = self.decoder(self.encoder(noisy))
        loss = F.mse_loss(recon.float(), x)
        return loss, {"mse": float(loss.detach())}

    @torch.no_grad()
    def pictures(self, batch: dict) -> dict[str, np.ndarray]:
        x = self._images(batch["frames"][:, :1])
        recon = self.decoder(self.encoder(x)).float()
        grid = torch.cat([torch.cat(list(x), dim=2), torch.cat(list(recon), dim=2)], dim=1)  # 2 rows
        return {"reconstruction": (grid.permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()}

    def sampler_kind(self, stage: int) -> str:
        return self.kinds[stage - 1]

    def batch_labels(self, stage: int) -> list[str]:
        return []

    def pose_features(self, frames: torch.Tensor) -> torch.Tensor:
        return self.encoder(self._images(frames[:, None]))


def toy_sampler(kind: str, dataset):
    """Samplers with distances that fit short test sequences (10 fps, a few seconds)."""
    from selfpose.data.samplers import make_sampler

    kwargs = {"dsl": {"d_pos_s": 0.2, "d_neg_s": 1.0}, "contrastive": {"d_pos_s": 0.2, "d_neg_s": 1.0},
              "gravity": {"step_s": 0.2}}
    return make_sampler(kind, dataset, **kwargs[kind]) if kind in kwargs else make_sampler(kind, dataset)
