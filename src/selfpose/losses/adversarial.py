"""DrNet's losses (Denton & Birodkar, NeurIPS 2017): content similarity and the scene discriminator game.

DrNet splits a frame's code into *content* (here ``i``) and *pose* (``v``).
Content of two frames of one video should match; pose should say nothing
about which video a frame comes from. A small discriminator sees two pose
codes and guesses whether they come from the same video; it is trained to
guess right, and the pose encoder to leave it at chance (target ½), which
removes identity and scene from the pose code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from selfpose.losses._checks import LossInputError, check_nonempty, check_tensor


def content_similarity_loss(content: torch.Tensor) -> torch.Tensor:
    """Mean squared distance between each frame's content code and the first frame's, within a video.

    Args:
        content: ``(N, K, D)`` content codes, ``K ≥ 2`` frames of one video per row (any units).

    Returns:
        Scalar: mean over the ``N·(K−1)`` pairs and the ``D`` dimensions of
        ``(c_k − c_0)²``.
    """
    check_tensor(content, "content", ("N", "K", "D"))
    check_nonempty(content, "content")
    if content.shape[1] < 2:
        raise LossInputError(f"content needs K >= 2 frames per video, got shape {tuple(content.shape)}")
    return (content[:, 1:] - content[:, :1]).pow(2).mean()


def scene_discriminator_loss(logit_same: torch.Tensor, logit_other: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of the discriminator: pairs of one video → 1, of two videos → 0.

    Args:
        logit_same: ``(N,)`` logits for pose-code pairs from the same video.
        logit_other: ``(M,)`` logits for pairs from different videos.

    Returns:
        Scalar: the mean of the two classes' mean BCE (nats), so an unequal
        ``N``/``M`` does not tilt it.
    """
    check_tensor(logit_same, "logit_same", ("N",))
    check_tensor(logit_other, "logit_other", ("M",))
    return 0.5 * (F.binary_cross_entropy_with_logits(logit_same, torch.ones_like(logit_same))
                  + F.binary_cross_entropy_with_logits(logit_other, torch.zeros_like(logit_other)))


def scene_confusion_loss(logit_same: torch.Tensor) -> torch.Tensor:
    """The pose encoder's side of the game: BCE of same-video pairs against the target ½ (nats).

    Its minimum, ``ln 2``, is reached when the discriminator outputs ½: the
    pose codes no longer tell whether two frames share a video.

    Args:
        logit_same: ``(N,)`` discriminator logits for pose-code pairs from the same video.
    """
    check_tensor(logit_same, "logit_same", ("N",))
    return F.binary_cross_entropy_with_logits(logit_same, torch.full_like(logit_same, 0.5))


__all__ = ("content_similarity_loss", "scene_confusion_loss", "scene_discriminator_loss")
