"""Weak 2D supervision: weighted MSE with missing joints, normalisation to the frame."""

import numpy as np
import pytest
import torch

from selfpose.losses import LossInputError, normalise_2d, weak2d_loss

NAN = float("nan")


def test_weak2d_hand_values():
    pred = torch.zeros(1, 3, 2)
    target = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [NAN, NAN]]])
    # per-joint MSE 0.5 and 2.0; the NaN joint is ignored.
    assert weak2d_loss(pred, target).item() == pytest.approx(1.25)
    conf = torch.tensor([[1.0, 0.5, 1.0]])
    assert weak2d_loss(pred, target, conf).item() == pytest.approx((0.5 + 0.5 * 2.0) / 1.5)
    # A NaN confidence counts as 0 weight.
    assert weak2d_loss(pred, target, torch.tensor([[1.0, NAN, 1.0]])).item() == pytest.approx(0.5)


def test_missing_joints_give_finite_zero_gradients():
    pred = torch.rand(2, 17, 2, requires_grad=True)
    target = torch.rand(2, 17, 2)
    target[0, 3] = NAN
    target[1, :, 0] = NAN                                  # one NaN coordinate hides the joint
    loss = weak2d_loss(pred, target)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(pred.grad).all()
    assert (pred.grad[0, 3] == 0).all() and (pred.grad[1] == 0).all()
    assert (pred.grad[0, 4] != 0).any()


def test_no_valid_joint_gives_zero():
    pred = torch.rand(2, 17, 2, requires_grad=True)
    loss = weak2d_loss(pred, torch.full((2, 17, 2), NAN))
    loss.backward()
    assert loss.item() == 0.0 and (pred.grad == 0).all()


def test_input_errors():
    with pytest.raises(LossInputError, match="same shape"):
        weak2d_loss(torch.zeros(2, 17, 2), torch.zeros(2, 16, 2))
    with pytest.raises(LossInputError, match=r"\(B, J, 2\)"):
        weak2d_loss(torch.zeros(2, 17, 3), torch.zeros(2, 17, 3))
    with pytest.raises(LossInputError, match="joint count"):
        weak2d_loss(torch.zeros(2, 17, 2), torch.zeros(2, 17, 2), torch.ones(2, 16))
    with pytest.raises(LossInputError, match="≥ 0"):
        weak2d_loss(torch.zeros(2, 17, 2), torch.zeros(2, 17, 2), -torch.ones(2, 17))


def test_normalise_2d_numpy_and_torch():
    px = np.array([[[640, 480], [320, 120]]])               # integer pixels
    out = normalise_2d(px, 640, 480)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    np.testing.assert_allclose(out, [[[1.0, 1.0], [0.5, 0.25]]])
    t = normalise_2d(torch.tensor([[NAN, 240.0]], dtype=torch.float64), 640, 480)
    assert t.dtype == torch.float64 and torch.isnan(t[0, 0]) and t[0, 1].item() == 0.5
    with pytest.raises(LossInputError, match="positive"):
        normalise_2d(px, 0, 480)
    with pytest.raises(LossInputError, match=r"\(\.\.\., 2\)"):
        normalise_2d(np.zeros((3, 3)), 10, 10)


def test_loss_is_scale_free_after_normalisation():
    # The same relative error on a 2× larger frame gives the same loss.
    pred, target = torch.rand(1, 17, 2) * 100, torch.rand(1, 17, 2) * 100
    small = weak2d_loss(normalise_2d(pred, 100, 100), normalise_2d(target, 100, 100))
    large = weak2d_loss(normalise_2d(2 * pred, 200, 200), normalise_2d(2 * target, 200, 200))
    assert small.item() == pytest.approx(large.item(), rel=1e-5)


def test_weak2d_goes_down():
    torch.manual_seed(0)
    v = torch.randn(32, 24)
    target = normalise_2d(torch.rand(32, 17, 2) * 128, 128, 128)
    target[::3, 5] = NAN
    conf = torch.rand(32, 17)
    head = torch.nn.Sequential(torch.nn.Linear(24, 64), torch.nn.ReLU(), torch.nn.Linear(64, 34))
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    first = weak2d_loss(head(v).view(32, 17, 2), target, conf).item()
    for _ in range(200):
        opt.zero_grad()
        loss = weak2d_loss(head(v).view(32, 17, 2), target, conf)
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 * first
