"""Free-fall tracking losses (Eqs. 7–12): hand values, checks, and recovering a fall."""

import pytest
import torch

from selfpose.losses import (
    LossInputError,
    gravity_loss,
    order_loss,
    scale_loss,
    tracking_loss,
)


def test_gravity_loss_zero_on_parabola_hand_value_otherwise():
    t = torch.arange(4.0)
    parabola = 0.1 + 0.2 * t + 0.05 * t ** 2
    assert gravity_loss(parabola[None]).item() == pytest.approx(0.0, abs=1e-12)
    # [0, 1, 2, 4]: 4 − 6 + 3 − 0 = 1 → 1; mean with the parabola → 0.5.
    y = torch.stack([parabola, torch.tensor([0.0, 1.0, 2.0, 4.0])])
    assert gravity_loss(y).item() == pytest.approx(0.5)


def test_order_loss_hand_values_and_direction():
    falling = torch.tensor([[0.0, 0.1, 0.2, 0.3]])
    static = torch.zeros(1, 4)
    assert order_loss(falling, eps=0.05).item() == 0.0
    assert order_loss(static, eps=0.05).item() == pytest.approx(0.15)
    # Rising: every step −0.1 → 3 · (0.05 + 0.1) when the fall should go down...
    assert order_loss(-falling, eps=0.05).item() == pytest.approx(0.45)
    # ...and 0 when the direction is up. Per-item directions.
    assert order_loss(-falling, eps=0.05, direction=-1).item() == 0.0
    both = torch.cat([falling, -falling])
    assert order_loss(both, eps=0.05, direction=torch.tensor([1.0, -1.0])).item() == 0.0


def test_scale_loss_hand_value():
    s = torch.tensor([[[0.5, 0.5], [0.6, 0.5], [0.6, 0.7], [0.6, 0.7]]])
    assert scale_loss(s).item() == pytest.approx(0.01 + 0.04)
    assert scale_loss(torch.full((3, 4, 2), 0.4)).item() == 0.0


def test_tracking_loss_combines_parts():
    theta = torch.rand(5, 4, 4)
    total, parts = tracking_loss(theta, eps=0.02, weights=(1.0, 2.0, 3.0))
    assert set(parts) == {"gravity", "order", "scale"}
    assert parts["gravity"].item() == pytest.approx(gravity_loss(theta[..., 3]).item())
    assert parts["scale"].item() == pytest.approx(scale_loss(theta[..., :2]).item())
    expected = parts["gravity"] + 2 * parts["order"] + 3 * parts["scale"]
    assert total.item() == pytest.approx(expected.item())


def test_input_errors():
    with pytest.raises(LossInputError, match=r"\(N, 4\)"):
        gravity_loss(torch.zeros(2, 3))
    with pytest.raises(LossInputError, match="eps"):
        order_loss(torch.zeros(2, 4), eps=-1)
    with pytest.raises(LossInputError, match="direction"):
        order_loss(torch.zeros(2, 4), eps=0.1, direction=torch.ones(3))
    with pytest.raises(LossInputError, match=r"\(N, 4, 2\)"):
        scale_loss(torch.zeros(2, 4, 3))
    with pytest.raises(LossInputError, match="weights"):
        tracking_loss(torch.zeros(2, 4, 4), 0.1, weights=(1.0, 1.0))
    with pytest.raises(LossInputError, match="empty"):
        gravity_loss(torch.zeros(0, 4))


def test_tracking_loss_goes_down_to_a_fall():
    torch.manual_seed(0)
    theta = torch.rand(6, 4, 4, requires_grad=True)
    opt = torch.optim.Adam([theta], lr=0.02)
    first, _ = tracking_loss(theta, eps=0.05)
    for _ in range(300):
        opt.zero_grad()
        loss, _ = tracking_loss(theta, eps=0.05)
        loss.backward()
        opt.step()
    assert loss.item() < 0.01 * first.item()
    y = theta.detach()[..., 3]
    assert ((y[:, 1:] - y[:, :-1]) > 0.04).all()                      # falls, every step
    assert (y[:, 3] - 3 * y[:, 2] + 3 * y[:, 1] - y[:, 0]).abs().max() < 0.02
