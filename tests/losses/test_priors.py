"""Detector prior on the batch-mean box."""

import pytest
import torch

from selfpose.losses import LossInputError, detector_prior


def test_detector_prior_hand_values():
    theta = torch.tensor([[0.2, 0.4, 0.1, -0.1], [0.4, 0.6, 0.3, 0.1]])
    # mean scale (0.3 + 0.5)/2 = 0.4 → 0.01; mean centre (0.2, 0) → 0.04.
    assert detector_prior(theta).item() == pytest.approx(0.05)
    assert detector_prior(theta, target_center=None).item() == pytest.approx(0.01)
    assert detector_prior(theta, target_scale=(0.3, 0.5), target_center=(0.2, 0.0)).item() == pytest.approx(0.0, abs=1e-12)
    assert detector_prior(theta, target_scale=(0.5, 0.5), target_center=None).item() == pytest.approx(0.04 + 0.0)


def test_only_the_batch_mean_is_constrained():
    # Very different boxes whose mean is on target cost nothing.
    theta = torch.tensor([[0.2, 0.3, -0.6, 0.5], [0.8, 0.7, 0.6, -0.5]])
    assert detector_prior(theta).item() == pytest.approx(0.0, abs=1e-12)


def test_input_errors():
    with pytest.raises(LossInputError, match=r"\(B, 4\)"):
        detector_prior(torch.zeros(3, 2, 4))
    with pytest.raises(LossInputError, match="target_scale"):
        detector_prior(torch.zeros(3, 4), target_scale=(0.5, 0.5, 0.5))
    with pytest.raises(LossInputError, match="target_center"):
        detector_prior(torch.zeros(3, 4), target_center=(0.0,))


def test_detector_prior_goes_down_and_keeps_the_spread():
    torch.manual_seed(0)
    theta = torch.rand(16, 4, requires_grad=True)
    spread = theta.detach().std(0)
    opt = torch.optim.SGD([theta], lr=2.0)
    first = detector_prior(theta).item()
    for _ in range(100):
        opt.zero_grad()
        loss = detector_prior(theta)
        loss.backward()
        opt.step()
    assert loss.item() < 1e-3 * first
    # The gradient of a batch mean shifts every box alike: their spread is untouched.
    assert torch.allclose(theta.detach().std(0), spread, atol=1e-5)
