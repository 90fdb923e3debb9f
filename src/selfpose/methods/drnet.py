"""DrNet baseline (Denton & Birodkar, NeurIPS 2017) with the main method's detector and decoder.

Honari et al. compare with DrNet on the same detector, encoder and decoder:
the code splits into pose ``v`` and content ``i``; the decoder redraws frame
``t`` from ``(v_t, i_t')`` of another frame of the video (the temporal
method's permutation); content codes of one video are pulled together
(:func:`~selfpose.losses.adversarial.content_similarity_loss`); and a scene
discriminator on pairs of pose codes is played against the encoder
(:func:`~selfpose.losses.adversarial.scene_discriminator_loss`,
:func:`~selfpose.losses.adversarial.scene_confusion_loss`). No contrastive term.

The game runs in one optimiser step: the discriminator's loss sees detached
pose codes (it trains only the discriminator), and the encoder's confusion
loss goes through a copy of the discriminator's weights that are detached
(it trains only the encoder), so one backward pass gives each side its own
gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call

from selfpose.config import ConfigError
from selfpose.losses.adversarial import content_similarity_loss, scene_confusion_loss, scene_discriminator_loss
from selfpose.methods.temporal import TemporalConfig, TemporalMethod


@dataclass
class DrNetConfig:
    """DrNet's own weights (section ``method_config.drnet`` of the pretraining config).

    Attributes:
        w_similarity: weight of the content similarity term (DrNet: 1).
        w_adversarial: weight of the encoder's scene-confusion term (DrNet: 1).
        w_discriminator: weight of the discriminator's own loss (its
            gradient reaches only the discriminator).
        hidden: width of the discriminator's two hidden layers (DrNet: 100).
    """

    w_similarity: float = 1.0
    w_adversarial: float = 1.0
    w_discriminator: float = 1.0
    hidden: int = 128

    def __post_init__(self) -> None:
        for name in ("w_similarity", "w_adversarial", "w_discriminator"):
            if getattr(self, name) < 0:
                raise ConfigError(f"drnet.{name} must be >= 0, got {getattr(self, name)}")
        if self.hidden < 1:
            raise ConfigError(f"drnet.hidden must be >= 1, got {self.hidden}")


class SceneDiscriminator(nn.Module):
    """MLP on a pair of pose codes ``(v_a, v_b)`` → logit that they come from the same video."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2 * dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 1))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([a, b], dim=-1)).squeeze(-1)


class DrNetMethod(TemporalMethod):
    """DrNet on the temporal method's model (``split``, detector and decoder on; no contrastive term)."""

    name = "drnet"

    def __init__(self, cfg: TemporalConfig, drnet: DrNetConfig | None = None, two_stage: bool = False):
        if not cfg.model.split:
            raise ConfigError("DrNet needs the pose/content split (model.split=true)")
        super().__init__(cfg, two_stage=two_stage)
        self.drnet = drnet or DrNetConfig()
        self.discriminator = SceneDiscriminator(cfg.model.v_dim, self.drnet.hidden)

    def loss_terms(self, batch: dict, step: int):
        total, logs, codes = super().loss_terms(batch, step)
        n, k, D = codes["n"], codes["k"], self.drnet
        if codes["i"] is not None and k >= 2 and D.w_similarity > 0:
            sim = content_similarity_loss(codes["i"].float().reshape(n, k, -1))
            total = total + D.w_similarity * sim
            logs["similarity"] = sim.item()
        if n >= 2 and k >= 2 and (D.w_adversarial > 0 or D.w_discriminator > 0):
            v = codes["v"].float().reshape(n, k, -1)
            # Negatives: the next tuple's frame, almost always another video
            # (a batch draws 8 of hundreds of videos).
            a, same, other = v[:, 0], v[:, 1], v[:, 1].roll(1, dims=0)
            disc = scene_discriminator_loss(self.discriminator(a.detach(), same.detach()),
                                            self.discriminator(a.detach(), other.detach()))
            frozen = {name: p.detach() for name, p in self.discriminator.named_parameters()}
            conf = scene_confusion_loss(functional_call(self.discriminator, frozen, (a, same)))
            total = total + D.w_discriminator * disc + D.w_adversarial * conf
            logs.update({"discriminator": disc.item(), "confusion": conf.item()})
        return total, logs, codes


__all__ = ("DrNetConfig", "DrNetMethod", "SceneDiscriminator")
