"""mask_r2 on hand-made silhouettes; decoded_silhouettes on a small untrained model."""

from __future__ import annotations

import math

import pytest
import torch

from selfpose.evaluation.silhouette import decoded_silhouettes, mask_r2


def _silhouettes(n=6, s=16):
    t = torch.zeros(n, 1, s, s)
    for k in range(n):   # a bar that moves: the pose-like variation a mean mask cannot follow
        t[k, 0, 2:14, 2 + k:5 + k] = 1
    return t


def test_exact_masks_explain_everything_and_the_mean_mask_nothing():
    t = _silhouettes()
    assert mask_r2(t, t) == pytest.approx(1.0)
    mean = t.mean(0, keepdim=True).expand_as(t)
    assert mask_r2(mean, t) == pytest.approx(0.0, abs=1e-12)
    assert mask_r2(1 - t, t) < 0                            # worse than one mean silhouette
    half = 0.5 * t + 0.5 * mean                             # half way: (1 - 0.5)² = 0.25 of the variance left
    assert mask_r2(half, t) == pytest.approx(0.75)


def test_a_given_constant_is_the_baseline_and_constant_targets_are_nan():
    t = _silhouettes()
    assert mask_r2(torch.zeros_like(t), t, constant=torch.zeros(1, 1, 16, 16)) == pytest.approx(0.0)
    same = torch.ones(3, 1, 8, 8)
    assert math.isnan(mask_r2(same, same))
    with pytest.raises(Exception, match="mask"):
        mask_r2(torch.zeros(3, 8, 8), torch.zeros(3, 8, 8))


def test_decoded_silhouettes_have_the_crop_shape_and_foreground_targets():
    from selfpose.config import from_dict
    from selfpose.models.temporal import ModelConfig, TemporalModel

    torch.manual_seed(0)
    cfg = from_dict(ModelConfig, {"image_size": 32, "crop_size": 16, "detector_input": 16, "detector_width": 8,
                                  "encoder_width": 8, "v_dim": 8, "i_dim": 8, "decoder_channels": 8,
                                  "decoder_hidden": 16})
    model = TemporalModel(cfg).eval()
    bg = torch.rand(4, 3, 32, 32)
    frames = bg.clone()
    frames[:, :, 8:24, 12:20] = 1.0                          # a bright person on the background
    mask, target = decoded_silhouettes(model, frames, bg)
    assert mask.shape == target.shape == (4, 1, 16, 16)
    # the crop resamples the 0/1 foreground bilinearly (as training does): soft at the edges, 0 off the person
    assert ((target >= 0) & (target <= 1)).all() and target.max() == 1.0 and target.sum() > 0
    assert ((mask >= 0) & (mask <= 1)).all()
    m2, _ = decoded_silhouettes(model, frames, bg, shuffle_i=True)
    assert m2.shape == mask.shape
