"""Reconstruction loss (Eq. 2): pixel MSE, the frozen perceptual network, the total."""

import pytest
import torch
import torch.nn.functional as F

from selfpose.losses import (
    LossInputError,
    PerceptualNet,
    feature_loss,
    feature_terms,
    pixel_loss,
    reconstruction_loss,
)
from selfpose.models.backbones import resnet


@pytest.fixture(scope="module")
def small_net():
    return PerceptualNet(width=8, seed=0)


def smooth_images(b, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return F.interpolate(torch.rand(b, 3, 4, 4, generator=g), size=size, mode="bilinear", align_corners=False)


# ---------------------------------------------------------------- pixel_loss
def test_pixel_loss_hand_values():
    pred = torch.zeros(1, 3, 2, 2)
    target = torch.full((1, 3, 2, 2), 0.5)
    assert pixel_loss(pred, target).item() == pytest.approx(0.25)
    target[0, :, 0, 0] = 1.0                                       # one pixel off by 1, the rest by 0.5
    assert pixel_loss(pred, target).item() == pytest.approx((3 * 1.0 + 9 * 0.25) / 12)
    mask = torch.zeros(1, 2, 2)
    mask[0, 0, 0] = 1.0
    assert pixel_loss(pred, target, mask).item() == pytest.approx(1.0)
    mask[0, 1, 1] = 1.0
    assert pixel_loss(pred, target, mask[:, None]).item() == pytest.approx((1.0 + 0.25) / 2)


def test_pixel_loss_input_errors():
    with pytest.raises(LossInputError, match=r"\(B, 3, H, W\)"):
        pixel_loss(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4))
    with pytest.raises(LossInputError, match="same shape"):
        pixel_loss(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 5))
    with pytest.raises(LossInputError, match="floating"):
        pixel_loss(torch.zeros(1, 3, 4, 4, dtype=torch.uint8), torch.zeros(1, 3, 4, 4, dtype=torch.uint8))
    with pytest.raises(LossInputError, match="mask"):
        pixel_loss(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4))


# ---------------------------------------------------------------- PerceptualNet
def test_perceptual_net_is_frozen_and_stays_in_eval(small_net):
    assert not any(p.requires_grad for p in small_net.parameters())
    parent = torch.nn.Sequential(small_net)
    parent.train()
    assert not small_net.training and not any(m.training for m in small_net.modules())
    x = smooth_images(2)
    before = [b.clone() for b in small_net.buffers()]
    small_net(x)
    assert all(torch.equal(a, b) for a, b in zip(before, small_net.buffers()))   # BN statistics untouched


def test_random_net_is_seeded_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a = PerceptualNet(width=8, seed=0)
    assert torch.equal(torch.rand(3), expected)
    b, c = PerceptualNet(width=8, seed=0), PerceptualNet(width=8, seed=1)
    x = smooth_images(2)
    fa, fb, fc = a(x), b(x), c(x)
    assert all(torch.equal(u, v) for u, v in zip(fa, fb))
    assert not torch.allclose(fa[0], fc[0])


def test_perceptual_net_shapes_and_layer_choice(small_net):
    feats = small_net(smooth_images(2, size=64), layers=(1, 3))
    assert [tuple(f.shape) for f in feats] == [(2, 8, 16, 16), (2, 32, 4, 4)]
    with pytest.raises(LossInputError, match="layers"):
        small_net(smooth_images(1), layers=(4,))
    with pytest.raises(LossInputError, match="max_layer"):
        PerceptualNet(width=8, max_layer=4)


def test_perceptual_net_loads_a_torchvision_state_dict(tmp_path):
    # A torchvision-format ResNet18 (with its fc) saved as a plain state dict.
    torch.manual_seed(7)
    ref = resnet("resnet18", width=64, num_classes=1000).eval()
    path = tmp_path / "resnet18.pth"
    torch.save(ref.state_dict(), path)
    net = PerceptualNet(weights=path)
    x = smooth_images(1, size=32)
    with torch.no_grad():
        want = ref.features(x, upto=3)
        got = net(x)
    assert all(torch.allclose(u, v) for u, v in zip(got, want))
    with pytest.raises(LossInputError, match="width=64"):
        PerceptualNet(weights=path, width=32)
    with pytest.raises(ValueError, match="not found"):
        PerceptualNet(weights=tmp_path / "missing.pth")


# ---------------------------------------------------------------- feature_loss / reconstruction_loss
def test_feature_loss_matches_separate_forwards(small_net):
    pred, target = smooth_images(3, seed=1), smooth_images(3, seed=2)
    want = sum(F.mse_loss(p, t) for p, t in zip(small_net(pred), small_net(target)))
    assert feature_loss(small_net, pred, target).item() == pytest.approx(want.item(), rel=1e-5)
    assert feature_loss(small_net, pred, pred.clone()).item() == 0.0
    assert len(feature_terms(small_net, pred, target, layers=(2,))) == 1


def test_gradients_reach_pred_only(small_net):
    pred = smooth_images(2, seed=1).requires_grad_()
    target = smooth_images(2, seed=2).requires_grad_()
    feature_loss(small_net, pred, target).backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert target.grad is None


def test_reconstruction_loss_total_and_parts(small_net):
    pred, target = smooth_images(2, seed=1), smooth_images(2, seed=2)
    total, parts = reconstruction_loss(pred, target, small_net, w_rgb=2.0, w_feat=0.5)
    assert set(parts) == {"rgb", "feat", "feat_l1", "feat_l2", "feat_l3"}
    assert parts["rgb"].item() == pytest.approx(pixel_loss(pred, target).item())
    assert parts["feat"].item() == pytest.approx(sum(parts[f"feat_l{l}"].item() for l in (1, 2, 3)), rel=1e-6)
    assert total.item() == pytest.approx(2 * parts["rgb"].item() + 0.5 * parts["feat"].item(), rel=1e-6)
    # Without the feature term no network is needed.
    total_rgb, parts_rgb = reconstruction_loss(pred, target, None, w_rgb=0.05, w_feat=0.0)
    assert set(parts_rgb) == {"rgb"} and total_rgb.item() == pytest.approx(0.05 * parts["rgb"].item())
    with pytest.raises(LossInputError, match="PerceptualNet"):
        reconstruction_loss(pred, target, None)


def test_reconstruction_loss_goes_down(small_net):
    target = smooth_images(2, seed=3)
    pred = torch.full_like(target, 0.5).requires_grad_()
    opt = torch.optim.Adam([pred], lr=0.05)
    first, _ = reconstruction_loss(pred, target, small_net)
    for _ in range(30):
        opt.zero_grad()
        loss, parts = reconstruction_loss(pred, target, small_net)
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 * first.item()
    assert parts["feat"].item() < 0.2 * feature_loss(small_net, torch.full_like(target, 0.5), target).item()


def test_reconstruction_loss_structural_terms(small_net):
    from selfpose.losses import gradient_loss, laplacian_loss, ssim_loss

    pred, target = smooth_images(2, seed=1), smooth_images(2, seed=2)
    mask = 1.0 + 20.0 * (torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(0)) > 0.7).float()
    total, parts = reconstruction_loss(pred, target, None, w_rgb=2.0, w_feat=0.0, mask=mask, w_ssim=0.5,
                                       w_grad=3.0, w_lap=0.25, grad_distance="l2", lap_levels=3)
    assert set(parts) == {"rgb", "ssim", "img_grad", "lap"}
    # Each term is the pure function with the RGB term's pixel weights.
    assert parts["ssim"].item() == pytest.approx(ssim_loss(pred, target, mask).item(), rel=1e-6)
    assert parts["img_grad"].item() == pytest.approx(gradient_loss(pred, target, mask, norm="l2").item(), rel=1e-6)
    assert parts["lap"].item() == pytest.approx(laplacian_loss(pred, target, mask, levels=3).item(), rel=1e-6)
    want = 2 * parts["rgb"] + 0.5 * parts["ssim"] + 3 * parts["img_grad"] + 0.25 * parts["lap"]
    assert total.item() == pytest.approx(want.item(), rel=1e-6)
    # Off by default: the paper's two terms only.
    _, default_parts = reconstruction_loss(pred, target, small_net)
    assert set(default_parts) == {"rgb", "feat", "feat_l1", "feat_l2", "feat_l3"}
    with pytest.raises(LossInputError, match="w_ssim=-1"):
        reconstruction_loss(pred, target, None, w_feat=0.0, w_ssim=-1.0)
