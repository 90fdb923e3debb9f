"""Label-free foreground targets from the estimated background (box and mask curriculum)."""

import pytest
import torch

from selfpose.losses import LossInputError
from selfpose.losses.foreground import box_target_loss, foreground_box, foreground_mask, mask_target_loss
from selfpose.models.stn import box_px_to_theta, crop


def _scene(B=2, H=40, W=60):
    bg = torch.full((B, 3, H, W), 0.5)
    frames = bg.clone()
    # A "person" in x 10..19, y 5..34 in image 0, x 40..49, y 20..29 in image 1.
    frames[0, :, 5:35, 10:20] = 0.9
    frames[1, 1, 20:30, 40:50] = 0.0
    return frames, bg


def test_foreground_mask_marks_the_changed_pixels_only():
    frames, bg = _scene()
    fg = foreground_mask(frames, bg, threshold=0.1)
    assert fg.shape == (2, 1, 40, 60)
    assert fg[0].sum().item() == 30 * 10 and fg[1].sum().item() == 10 * 10
    assert fg[0, 0, 5:35, 10:20].min().item() == 1.0
    # A change below the threshold is background (sensor noise, compression).
    frames2 = bg + 0.05
    assert foreground_mask(frames2, bg, 0.1).sum().item() == 0


def test_foreground_box_is_the_pixel_box_in_theta_units():
    frames, bg = _scene()
    fg = foreground_mask(frames, bg)
    theta, valid = foreground_box(fg, quantile=0.0, margin=1.0, min_scale=0.01)
    want = box_px_to_theta(torch.tensor([[10.0, 5.0, 20.0, 35.0], [40.0, 20.0, 50.0, 30.0]]), 60, 40)
    torch.testing.assert_close(theta, want)
    assert valid.tolist() == [True, True]
    # The crop of that box holds the person and nothing else.
    c = crop(frames[:1], theta[:1], (30, 10))
    assert (c - 0.9).abs().max().item() < 1e-5


def test_foreground_box_margin_quantiles_and_validity():
    frames, bg = _scene()
    fg = foreground_mask(frames, bg)
    t1, _ = foreground_box(fg, quantile=0.0, margin=1.0, min_scale=0.01)
    t2, _ = foreground_box(fg, quantile=0.0, margin=1.5, min_scale=0.01, max_scale=2.0)
    torch.testing.assert_close(t2[:, :2], t1[:, :2] * 1.5)
    torch.testing.assert_close(t2[:, 2:], t1[:, 2:])
    # One stray pixel far away stretches the exact box but not the 5% quantile box.
    fg2 = fg.clone()
    fg2[0, 0, 39, 59] = 1
    exact, _ = foreground_box(fg2, quantile=0.0, margin=1.0, min_scale=0.01)
    robust, _ = foreground_box(fg2, quantile=0.05, margin=1.0, min_scale=0.01)
    assert exact[0, 0] > 0.8 and robust[0, 0] < 0.2
    # An empty frame is not valid.
    _, valid = foreground_box(torch.zeros(1, 1, 40, 60))
    assert valid.tolist() == [False]


def test_box_target_loss_hand_values_and_validity():
    t = torch.tensor([[0.5, 0.5, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0]])
    target = torch.tensor([[0.5, 0.5, 0.2, 0.0], [0.1, 0.1, 0.1, 0.1]])
    # First row: one error of 0.2 > β → 0.2 − 0.025 over 4 numbers.
    assert box_target_loss(t[:1], target[:1]).item() == pytest.approx((0.2 - 0.025) / 4)
    assert box_target_loss(t, target, torch.tensor([True, False])).item() == pytest.approx((0.2 - 0.025) / 4)
    assert box_target_loss(t, target, torch.tensor([False, False])).item() == 0.0
    with pytest.raises(LossInputError, match="valid"):
        box_target_loss(t, target, torch.tensor([True]))


def test_mask_target_loss_is_low_for_the_target_and_flows_to_the_mask():
    frames, bg = _scene()
    fg = foreground_mask(frames, bg)
    good = mask_target_loss(fg.clamp(0.01, 0.99), fg)
    empty = mask_target_loss(torch.zeros_like(fg), fg)
    assert good.item() < 0.02 < empty.item()
    m = torch.full_like(fg, 0.5, requires_grad=True)
    mask_target_loss(m, fg).backward()
    assert (m.grad[fg > 0] < 0).all() and (m.grad[fg == 0] > 0).all()


def test_detector_box_learns_the_foreground_box():
    """A free θ trained on the box loss alone converges to the foreground box."""
    frames, bg = _scene()
    target, valid = foreground_box(foreground_mask(frames, bg))
    theta = torch.tensor([[0.5, 0.5, 0.0, 0.0]] * 2, requires_grad=True)
    opt = torch.optim.Adam([theta], lr=0.02)
    first = box_target_loss(theta, target, valid).item()
    for _ in range(300):
        opt.zero_grad()
        box_target_loss(theta, target, valid).backward()
        opt.step()
    assert box_target_loss(theta, target, valid).item() < 0.01 * first
    torch.testing.assert_close(theta.detach(), target, atol=0.02, rtol=0)


def test_input_errors():
    with pytest.raises(LossInputError, match="same shape"):
        foreground_mask(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 9))
    with pytest.raises(LossInputError, match="threshold"):
        foreground_mask(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8), threshold=0)
    with pytest.raises(LossInputError, match="quantile"):
        foreground_box(torch.zeros(1, 1, 8, 8), quantile=0.5)
    with pytest.raises(LossInputError, match=r"\(B, 1, H, W\)"):
        mask_target_loss(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))


def test_square_box_takes_the_longer_side():
    frames, bg = _scene()          # person 0: 10 wide, 30 tall in a 60×40 frame
    fg = foreground_mask(frames, bg)
    theta, _ = foreground_box(fg[:1], quantile=0.0, margin=1.0, min_scale=0.01, square=True)
    # 30 px both ways: sx = 30/60, sy = 30/40; the centre does not move.
    torch.testing.assert_close(theta[0], torch.tensor([0.5, 0.75, 15 / 30 - 1, 40 / 40 - 1]))
