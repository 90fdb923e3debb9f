"""Decoder: latent → RGB crop + mask in [0, 1] at c×c."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from selfpose.models.decoder import Decoder, DecoderError


@pytest.mark.parametrize("crop_size", [32, 64])
def test_shapes_and_ranges(crop_size):
    dec = Decoder(20, crop_size=crop_size, channels=16, hidden=32)
    rgb, mask = dec(torch.randn(3, 20))
    assert rgb.shape == (3, 3, crop_size, crop_size) and mask.shape == (3, 1, crop_size, crop_size)
    assert rgb.dtype == torch.float32
    for t in (rgb, mask):
        assert t.min() >= 0 and t.max() <= 1


def test_architecture_follows_the_paper():
    dec = Decoder(20, crop_size=64, channels=32, hidden=32)
    assert len(dec.blocks) == 3  # three ×2 upsampling blocks: 8 → 64
    convs = [m for m in dec.blocks[0].modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 3
    assert dec.out.out_channels == 4
    assert any(isinstance(m, nn.Dropout) for m in dec.fc)


def test_trains_to_a_target():
    torch.manual_seed(0)
    dec = Decoder(8, crop_size=16, channels=16, hidden=32, dropout=0.0)
    z = torch.randn(4, 8)
    target = torch.rand(4, 3, 1, 1).expand(4, 3, 16, 16)  # a flat colour per latent
    opt = torch.optim.Adam(dec.parameters(), 1e-2)
    losses = []
    for _ in range(30):
        rgb, _ = dec(z)
        loss = (rgb - target).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]


def test_errors():
    with pytest.raises(DecoderError, match="multiple of 8"):
        Decoder(8, crop_size=60)
    with pytest.raises(DecoderError, match=r"\(B, 8\)"):
        Decoder(8, crop_size=16, channels=8, hidden=8)(torch.zeros(2, 9))
