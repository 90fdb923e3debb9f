"""Encoder: shared backbone, v and i heads, split on/off, pretrained loading."""

from __future__ import annotations

import pytest
import torch

from selfpose.models.backbones import BackboneError, resnet
from selfpose.models.encoder import Encoder


def test_split_heads_share_the_backbone():
    enc = Encoder(width=8, v_dim=12, i_dim=5)
    v, i = enc(torch.rand(3, 3, 32, 32))
    assert v.shape == (3, 12) and i.shape == (3, 5)
    # Only the backbone and two linear output layers: the heads differ, the trunk is shared.
    names = {n.split(".")[0] for n, _ in enc.named_parameters()}
    assert names == {"backbone", "v_head", "i_head"}
    i.sum().backward()
    assert enc.backbone.conv1.weight.grad.abs().sum() > 0 and enc.v_head.weight.grad is None


def test_no_split_gives_one_latent():
    enc = Encoder(width=8, v_dim=12, i_dim=5, split=False)
    z, i = enc(torch.rand(2, 3, 32, 32))
    assert z.shape == (2, 17) and i is None and enc.i_head is None


def test_pretrained_backbone_is_loaded(tmp_path):
    torch.manual_seed(3)
    ref = resnet("resnet18", width=64)
    path = tmp_path / "r18.pth"
    torch.save(ref.state_dict(), path)
    enc = Encoder(width=64, pretrained=path)
    torch.testing.assert_close(enc.backbone.layer3[1].conv2.weight, ref.layer3[1].conv2.weight)
    with pytest.raises(BackboneError, match="width=64"):
        Encoder(width=32, pretrained=path)
