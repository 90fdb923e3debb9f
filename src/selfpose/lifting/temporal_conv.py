"""``temporal_conv``: VideoPose3D-style dilated temporal convolutions (Pavllo et al., CVPR 2019).

Input ``(B, T, D)`` encoded 2D frames → ``(B, T − R + 1, 3J)``: every output
sees a receptive field of ``R = ∏ widths`` consecutive input frames. The
network is VideoPose3D's "symmetric" model:

* expand: Conv1d(D → C, width w₀) → BN → ReLU → dropout;
* one residual block per further width wᵢ: Conv1d(C → C, width wᵢ, dilation
  ∏_{k<i} w_k) → BN → ReLU → dropout → Conv1d(C → C, 1) → BN → ReLU → dropout,
  plus the block's input cropped to the output's length;
* shrink: Conv1d(C → 3J, 1).

All convolutions are "valid" (no padding), so the same weights serve a
centred model (the output is the window's middle frame, context ``(R−1)/2``
on each side) and a causal one (the output is the window's last frame,
context ``R − 1`` before, 0 after); they differ in which frame the target is
and in where a block's residual is cropped (centre vs. the end).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from selfpose.config import ConfigError


def filter_widths(receptive_field: int) -> list[int]:
    """Widths of the layers for a receptive field ``3^k`` (k ≥ 1): ``[3] * k`` (27 → [3, 3, 3]).

    Raises:
        ConfigError: ``receptive_field`` is not a power of 3 of at least 3.
    """
    k = round(math.log(max(receptive_field, 1), 3))
    if receptive_field < 3 or 3 ** k != receptive_field:
        raise ConfigError(f"temporal_conv.receptive_field must be a power of 3 (3, 9, 27, 81, 243), "
                          f"got {receptive_field}")
    return [3] * k


class TemporalConvLifter(nn.Module):
    """Dilated temporal convolutions: ``(B, T, in_dim)`` → ``(B, T − R + 1, out_dim)``.

    Attributes:
        context: ``(before, after)`` input frames each output needs around its target frame.
        receptive_field: ``R = before + 1 + after``.
    """

    def __init__(self, in_dim: int, out_dim: int, receptive_field: int = 27, channels: int = 1024,
                 dropout: float = 0.25, causal: bool = False):
        super().__init__()
        widths = filter_widths(receptive_field)
        self.causal = bool(causal)
        self.receptive_field = int(math.prod(widths))
        r = self.receptive_field - 1
        self.context = (r, 0) if causal else (r // 2, r - r // 2)
        self.drop = nn.Dropout(dropout)
        self.expand = nn.Conv1d(in_dim, channels, widths[0], bias=False)
        self.expand_bn = nn.BatchNorm1d(channels, momentum=0.1)
        self.convs, self.bns, self.mix, self.mix_bns, self.crops = (nn.ModuleList(), nn.ModuleList(),
                                                                    nn.ModuleList(), nn.ModuleList(), [])
        dilation = widths[0]
        for w in widths[1:]:
            self.convs.append(nn.Conv1d(channels, channels, w, dilation=dilation, bias=False))
            self.bns.append(nn.BatchNorm1d(channels, momentum=0.1))
            self.mix.append(nn.Conv1d(channels, channels, 1, bias=False))
            self.mix_bns.append(nn.BatchNorm1d(channels, momentum=0.1))
            self.crops.append((w - 1) * dilation)   # frames a block's valid convolution removes
            dilation *= w
        self.shrink = nn.Conv1d(channels, out_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[1] < self.receptive_field:
            raise ValueError(f"temporal_conv expects (B, T >= {self.receptive_field}, D), got {tuple(x.shape)}")
        h = self.drop(torch.relu(self.expand_bn(self.expand(x.transpose(1, 2)))))
        for conv, bn, mix, mix_bn, crop in zip(self.convs, self.bns, self.mix, self.mix_bns, self.crops):
            # The residual is the input frames aligned with the outputs: the window's centre, or its end (causal).
            start = crop if self.causal else crop // 2
            res = h[:, :, start:h.shape[2] - (crop - start)]
            h = self.drop(torch.relu(bn(conv(h))))
            h = res + self.drop(torch.relu(mix_bn(mix(h))))
        return self.shrink(h).transpose(1, 2)
