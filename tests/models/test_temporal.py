"""TemporalModel: shapes, flags (detector / decoder / split), composite (Eq. 1), gradients, autocast."""

from __future__ import annotations

import pytest
import torch

from selfpose.config import ConfigError, from_dict
from selfpose.models.temporal import ModelConfig, TemporalModel, TemporalModelError

#: A tiny model for fast tests (the defaults are the CPU profile, measured in the report).
TINY = {"image_size": 32, "crop_size": 16, "detector_input": 16, "detector_width": 8, "encoder_width": 8,
        "v_dim": 6, "i_dim": 4, "decoder_channels": 16, "decoder_hidden": 16}


def tiny(**kw) -> TemporalModel:
    torch.manual_seed(0)
    return TemporalModel(ModelConfig(**{**TINY, **kw}))


def test_defaults_are_the_cpu_profile_and_strict():
    cfg = from_dict(ModelConfig, {"crop_size": 64, "split": "false"})
    assert cfg.image_size == 128 and cfg.crop_size == 64 and cfg.split is False
    with pytest.raises(ConfigError, match="did you mean"):
        from_dict(ModelConfig, {"crop_sise": 64})
    with pytest.raises(ConfigError, match="multiple of 8"):
        ModelConfig(crop_size=60)
    with pytest.raises(ConfigError, match="encoder_arch"):
        ModelConfig(encoder_arch="vgg")
    with pytest.raises(ConfigError, match="scale_min"):
        ModelConfig(scale_min=0.0)


def test_default_model_size():
    model = TemporalModel(ModelConfig())
    n = {k: sum(p.numel() for p in getattr(model, k).parameters()) for k in ("detector", "encoder", "decoder")}
    # CPU profile: well under the paper's ~11M-parameter ResNet18 encoder alone.
    assert 0.3e6 < n["detector"] < 1.5e6 and 1e6 < n["encoder"] < 5e6 and 1e6 < n["decoder"] < 5e6
    assert model.feature_dim() == 128


def test_encode_decode_composite_shapes():
    model = tiny()
    frames, bg = torch.rand(3, 3, 32, 32), torch.rand(3, 3, 32, 32)
    out = model.encode(frames)
    assert out["theta"].shape == (3, 4) and out["crop"].shape == (3, 3, 16, 16)
    assert out["v"].shape == (3, 6) and out["i"].shape == (3, 4) and out["box_px"].shape == (3, 4)
    rgb, mask = model.decode(out["v"], out["i"])
    assert rgb.shape == (3, 3, 16, 16) and mask.shape == (3, 1, 16, 16)
    comp = model.composite(rgb, mask, out["theta"], bg)
    assert comp["image"].shape == (3, 3, 32, 32) and comp["mask"].shape == (3, 1, 32, 32)
    assert model.feature_dim() == 6
    full = model(frames, bg)
    assert {"image", "mask", "crop_rgb", "crop_mask", "v", "i", "theta"} <= set(full)


def test_initial_box_is_centred_half_frame():
    out = tiny().eval().encode(torch.rand(2, 3, 32, 32))
    torch.testing.assert_close(out["box_px"], torch.tensor([[8.0, 8.0, 24.0, 24.0]] * 2), atol=0.5, rtol=0)


def test_composite_is_eq1():
    model = tiny()
    B, c = 2, 16
    bg = torch.rand(B, 3, 32, 32)
    rgb = torch.rand(B, 3, c, c)
    theta = torch.tensor([[0.5, 0.5, 0.0, 0.0]] * B)
    # Mask 1: the box shows the (warped) crop; outside the box the background is untouched.
    out = model.composite(rgb, torch.ones(B, 1, c, c), theta, bg)
    torch.testing.assert_close(out["image"][:, :, 9:23, 9:23], rgb[:, :, 1:15, 1:15], atol=1e-5, rtol=0)
    torch.testing.assert_close(out["image"][:, :, :7], bg[:, :, :7])
    assert out["mask"][:, :, :7].abs().max() == 0 and out["mask"][:, :, 12:20, 12:20].min() > 0.999
    # Mask 0: the background everywhere.
    out0 = model.composite(rgb, torch.zeros(B, 1, c, c), theta, bg)
    torch.testing.assert_close(out0["image"], bg)


def test_detector_off_uses_full_frame_or_given_boxes():
    model = tiny(detector=False)
    assert model.detector is None
    frames = torch.rand(2, 3, 32, 32)
    out = model.encode(frames)
    torch.testing.assert_close(out["theta"], torch.tensor([[1.0, 1.0, 0.0, 0.0]] * 2))
    torch.testing.assert_close(out["box_px"], torch.tensor([[0.0, 0.0, 32.0, 32.0]] * 2))
    boxes = torch.tensor([[0.0, 0.0, 16.0, 16.0], [8.0, 4.0, 24.0, 20.0]])
    out = model.encode(frames, boxes=boxes)
    torch.testing.assert_close(out["box_px"], boxes)
    torch.testing.assert_close(out["crop"][0], frames[0, :, :16, :16])
    with pytest.raises(TemporalModelError, match="boxes"):
        model.encode(frames, boxes=boxes[:1])


def test_split_off_uses_one_latent():
    model = tiny(split=False)
    out = model.encode(torch.rand(2, 3, 32, 32))
    assert out["v"].shape == (2, 10) and out["i"] is None and model.feature_dim() == 10
    rgb, _ = model.decode(out["v"], None)
    assert rgb.shape == (2, 3, 16, 16)
    with pytest.raises(TemporalModelError, match="i=None"):
        model.decode(out["v"], torch.zeros(2, 4))
    with pytest.raises(TemporalModelError, match="both v and i"):
        tiny().decode(torch.zeros(2, 6), None)


def test_decoder_off_raises_a_clear_error():
    model = tiny(decoder=False)
    assert model.decoder is None
    out = model.encode(torch.rand(2, 3, 32, 32))
    with pytest.raises(TemporalModelError, match="model.decoder"):
        model.decode(out["v"], out["i"])


def test_gradients_reach_the_detector_through_the_composite():
    model = tiny()
    frames, bg = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    out = model(frames, bg)
    (out["image"] - frames).pow(2).mean().backward()
    det = model.detector
    assert det.head.weight.grad.abs().sum() > 0 and det.head.bias.grad.abs().sum() > 0
    assert det.backbone.conv1.weight.grad.abs().sum() > 0
    assert model.encoder.i_head.weight.grad.abs().sum() > 0
    assert model.decoder.out.weight.grad.abs().sum() > 0


def test_bf16_autocast_and_channels_last_forward_backward():
    model = tiny().to(memory_format=torch.channels_last)
    frames, bg = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(frames, bg)
        loss = (out["image"] - frames).pow(2).mean()
    assert out["v"].dtype == torch.bfloat16  # the encoder ran in bf16
    assert out["theta"].dtype == torch.float32 and out["image"].dtype == torch.float32
    assert torch.isfinite(out["image"]).all()
    loss.backward()
    assert model.detector.head.bias.grad.dtype == torch.float32
    assert torch.isfinite(model.detector.head.bias.grad).all() and model.detector.head.bias.grad.abs().sum() > 0


def test_prepare_converts_and_resizes():
    model = tiny()
    x = model.prepare(torch.full((2, 3, 64, 48), 255, dtype=torch.uint8))
    assert x.shape == (2, 3, 32, 32) and x.dtype == torch.float32
    torch.testing.assert_close(x, torch.ones_like(x))
    with pytest.raises(TemporalModelError, match=r"\(B, 3, H, W\)"):
        model.prepare(torch.zeros(2, 32, 32))


def test_background_shape_is_checked():
    model = tiny()
    with pytest.raises(TemporalModelError, match="background"):
        model.composite(torch.rand(2, 3, 16, 16), torch.rand(2, 1, 16, 16), torch.rand(2, 4) + 0.5,
                        torch.rand(3, 3, 32, 32))


def test_square_crop_keeps_the_detector_box_and_crops_a_square_around_it():
    model = tiny(square_crop=True, crop_margin=1.5)
    theta = torch.tensor([[0.2, 0.6, 0.1, -0.2]])
    ct = model.crop_theta(theta, (32, 64))
    # Longer side in pixels: max(0.2·64, 0.6·32) = 19.2 px, × 1.5 = 28.8 px both ways.
    torch.testing.assert_close(ct, torch.tensor([[28.8 / 64, 28.8 / 32, 0.1, -0.2]]))
    frames = torch.rand(2, 3, 32, 32)
    out = model.encode(frames)
    from selfpose.models.stn import theta_to_box_px

    torch.testing.assert_close(out["box_px"], theta_to_box_px(out["box_theta"], 32, 32))
    torch.testing.assert_close(out["theta"], model.crop_theta(out["box_theta"], (32, 32)))
    assert (out["theta"][:, 0] == out["theta"][:, 1]).all()
    # The paper's crop is the box itself.
    plain = tiny(square_crop=False)
    torch.testing.assert_close(plain.crop_theta(theta), theta)
