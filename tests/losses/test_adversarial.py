"""DrNet's losses: hand-computed values and their input checks."""

import math

import pytest
import torch

from selfpose.losses._checks import LossInputError
from selfpose.losses.adversarial import content_similarity_loss, scene_confusion_loss, scene_discriminator_loss


def test_content_similarity_by_hand():
    c = torch.tensor([[[0.0, 0.0], [1.0, 2.0], [0.0, 0.0]]])   # (1, 3, 2): pairs (1,2)-(0,0) and (0,0)-(0,0)
    # squared differences: [1, 4] and [0, 0] → mean over 2 pairs × 2 dims = 5 / 4
    assert content_similarity_loss(c).item() == pytest.approx(1.25)
    assert content_similarity_loss(torch.ones(4, 5, 3)).item() == 0.0
    with pytest.raises(LossInputError, match="K >= 2"):
        content_similarity_loss(torch.zeros(2, 1, 3))
    with pytest.raises(LossInputError, match="shape"):
        content_similarity_loss(torch.zeros(2, 3))


def test_discriminator_and_confusion_by_hand():
    zero = torch.zeros(3)
    # logits 0 → p = ½: BCE = ln 2 for either label, and the confusion loss is at its minimum ln 2
    assert scene_discriminator_loss(zero, torch.zeros(5)).item() == pytest.approx(math.log(2))
    assert scene_confusion_loss(zero).item() == pytest.approx(math.log(2))
    # a confident, right discriminator: small loss; the encoder's confusion loss grows
    right = scene_discriminator_loss(torch.full((2,), 6.0), torch.full((2,), -6.0)).item()
    assert right == pytest.approx(math.log1p(math.exp(-6.0)), rel=1e-4)   # float32
    assert scene_confusion_loss(torch.full((2,), 6.0)).item() > math.log(2) + 1
    with pytest.raises(LossInputError):
        scene_discriminator_loss(torch.zeros(2, 1), torch.zeros(2))
