"""Pose heads: MLP and Martinez residual MLP."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from selfpose.models.heads import HeadError, MartinezHead, MLPHead, make_head


def test_mlp_head_shape_and_layout():
    head = MLPHead(128, 51)
    assert head(torch.randn(4, 128)).shape == (4, 51)
    linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
    assert [l.out_features for l in linears] == [2048, 2048, 51]
    assert [m.p for m in head.modules() if isinstance(m, nn.Dropout)] == [0.5, 0.5]


def test_martinez_head_shape_and_layout():
    head = MartinezHead(128, 34)
    assert head(torch.randn(4, 128)).shape == (4, 34)
    linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 1 + 2 * 3 + 1 and linears[-1].out_features == 34
    assert all(l.out_features == 1024 for l in linears[:-1])
    # 128·1024 + 6·1024² + 1024·34 weights + biases, and 7 BN layers of 1024.
    expected = 128 * 1024 + 1024 + 6 * (1024 * 1024 + 1024) + 1024 * 34 + 34 + 7 * 2 * 1024
    assert sum(p.numel() for p in head.parameters()) == expected


def test_residual_blocks_are_residual():
    head = MartinezHead(8, 6, width=16, blocks=1, dropout=0.0).eval()
    block = head.blocks[0]
    with torch.no_grad():
        for m in block.net:
            if isinstance(m, nn.Linear):
                m.weight.zero_()
                m.bias.fill_(-1.0)  # ReLU kills the branch: the block is the identity
    x = torch.randn(3, 16)
    torch.testing.assert_close(block(x), x)


@pytest.mark.parametrize("kind", ["mlp", "martinez"])
def test_heads_fit_a_linear_map(kind):
    torch.manual_seed(0)
    head = make_head(kind, 16, 6, **({"hidden": 64} if kind == "mlp" else {"width": 64}), dropout=0.0)
    x = torch.randn(64, 16)
    y = x @ torch.randn(16, 6)
    opt = torch.optim.Adam(head.parameters(), 3e-3)
    first = None
    for _ in range(60):
        loss = (head(x) - y).pow(2).mean()
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 * first


def test_unknown_kind():
    with pytest.raises(HeadError, match="martinez"):
        make_head("transformer", 4, 4)
