"""Arrow-of-time term: the box motion it is given and its cross-entropy."""

import math

import pytest
import torch

from selfpose.losses._checks import LossInputError
from selfpose.losses.arrow import arrow_of_time_loss, box_motion


def test_box_motion_is_centre_shift_and_log_height_ratio():
    a = torch.tensor([[0.2, 0.4, -0.5, 0.1]])
    b = torch.tensor([[0.3, 0.8, 0.25, 0.0]])
    m = box_motion(a, b)
    assert m.shape == (1, 3)
    assert m[0].tolist() == pytest.approx([0.75, -0.1, math.log(2.0)])
    assert box_motion(b, a)[0].tolist() == pytest.approx([-0.75, 0.1, -math.log(2.0)])   # reversed time: negated
    with pytest.raises(LossInputError, match="heights"):
        box_motion(a, torch.tensor([[0.3, 0.0, 0.0, 0.0]]))
    with pytest.raises(LossInputError, match="shape"):
        box_motion(a, torch.zeros(2, 4) + 0.5)


def test_arrow_loss_is_log2_at_chance_and_small_when_right():
    later = torch.tensor([1, 0, 1, 0], dtype=torch.bool)
    assert arrow_of_time_loss(torch.zeros(4), later).item() == pytest.approx(math.log(2.0))
    right = torch.tensor([9.0, -9.0, 9.0, -9.0])
    assert arrow_of_time_loss(right, later).item() < 1e-3
    assert arrow_of_time_loss(-right, later).item() > 8.0
    with pytest.raises(LossInputError, match="0 or 1"):
        arrow_of_time_loss(torch.zeros(2), torch.tensor([0.5, 1.0]))
    with pytest.raises(LossInputError, match="same shape"):
        arrow_of_time_loss(torch.zeros(3), later)
