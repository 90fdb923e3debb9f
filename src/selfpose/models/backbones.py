"""ResNet 18/34/50 with torchvision's state-dict key names.

torchvision is not available for this torch build, so the family is written
here, layer for layer as torchvision's ``resnet.py`` (v1.5: the stride of a
bottleneck sits on its 3×3 conv), with the same attribute names, so that a
torchvision checkpoint loads with :func:`load_torchvision_state_dict`
(``conv1``, ``bn1``, ``layer1.0.conv1``, ``layer2.0.downsample.0``/``.1``,
``fc``...). Nothing is ever downloaded: pretrained weights come only from a
file the user gives.

Two knobs make the same code serve small CPU models:

* ``width``: the base channel count (torchvision's is 64; stage ``k`` has
  ``width·2^(k-1)·expansion`` output channels). A checkpoint only fits at 64.
* ``layers``: blocks per stage (torchvision: resnet18 ``(2,2,2,2)``); fewer
  than 4 entries build fewer stages (e.g. a 3-stage feature extractor).

Inputs are images in [0, 1], shape (B, 3, H, W); the network normalises them
with the ImageNet mean/std first (``normalize=True``), which pretrained
weights expect and which is a harmless fixed affine map for random ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from selfpose.errors import SelfposeError

#: ImageNet channel statistics that torchvision's weights were trained with (RGB, images in [0, 1]).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class BackboneError(SelfposeError, ValueError):
    """A backbone cannot be built, or a checkpoint does not fit it."""


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3×3 convs with a residual connection (resnet18/34)."""

    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = conv3x3(cin, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1×1 → 3×3 (strided) → 1×1 convs with a residual connection (resnet50)."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = conv1x1(cin, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


#: arch name → (block type, blocks per stage), as torchvision.
ARCHS: dict[str, tuple[type[nn.Module], tuple[int, ...]]] = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
}


class ResNet(nn.Module):
    """torchvision-compatible ResNet with a configurable width and depth.

    Args:
        block: :class:`BasicBlock` or :class:`Bottleneck`.
        layers: blocks per stage, 1 to 4 stages.
        width: base channel count (torchvision: 64).
        num_classes: size of ``fc``; ``None`` builds no ``fc`` and
            :meth:`forward` returns the pooled feature (B, :attr:`out_channels`).
        in_channels: input channels (3 for RGB; a checkpoint needs 3).
        normalize: subtract/divide the ImageNet mean/std from [0, 1] inputs.
    """

    def __init__(self, block: type[nn.Module], layers: Sequence[int], width: int = 64,
                 num_classes: int | None = 1000, in_channels: int = 3, normalize: bool = True):
        super().__init__()
        layers = tuple(int(n) for n in layers)
        if not 1 <= len(layers) <= 4 or any(n < 1 for n in layers):
            raise BackboneError(f"layers must be 1 to 4 positive block counts, got {layers}")
        if width < 1:
            raise BackboneError(f"width must be a positive channel count, got {width}")
        self.layers_cfg = layers
        self.width = int(width)
        self.normalize = normalize
        # Non-persistent: the state dict keeps torchvision's exact key set.
        self.register_buffer("input_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("input_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        if normalize and in_channels != 3:
            raise BackboneError("normalize=True needs RGB input (in_channels=3)")

        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.stage_channels: list[int] = []
        cin = width
        for k, n in enumerate(layers):
            planes = width * 2 ** k
            stride = 1 if k == 0 else 2
            downsample = None
            if stride != 1 or cin != planes * block.expansion:
                downsample = nn.Sequential(conv1x1(cin, planes * block.expansion, stride),
                                           nn.BatchNorm2d(planes * block.expansion))
            blocks = [block(cin, planes, stride, downsample)]
            cin = planes * block.expansion
            blocks += [block(cin, planes) for _ in range(1, n)]
            setattr(self, f"layer{k + 1}", nn.Sequential(*blocks))
            self.stage_channels.append(cin)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(cin, num_classes) if num_classes else None
        self._init_weights()

    @property
    def out_channels(self) -> int:
        """Channels of the last stage = size of the pooled feature."""
        return self.stage_channels[-1]

    @property
    def num_stages(self) -> int:
        return len(self.stage_channels)

    def _init_weights(self) -> None:
        # torchvision's initialisation (He for convs, unit BN), so that a
        # random network here behaves like a random torchvision one.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] → (B, width, H/4, W/4)."""
        if self.conv1.weight.is_contiguous(memory_format=torch.channels_last):
            # Inputs (crops, composites from grid_sample) arrive NCHW; match a
            # channels_last model so every conv runs in its fast layout.
            x = x.contiguous(memory_format=torch.channels_last)
        if self.normalize:
            x = (x - self.input_mean.to(x.dtype)) / self.input_std.to(x.dtype)
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))

    def features(self, x: torch.Tensor, upto: int | None = None) -> list[torch.Tensor]:
        """Outputs of stages 1..``upto`` (default: all), e.g. for a perceptual loss.

        Args:
            x: (B, 3, H, W) images in [0, 1].
            upto: last stage to run (1..:attr:`num_stages`); later stages are not computed.
        Returns:
            list of ``upto`` tensors, stage ``k`` of shape
            (B, stage_channels[k-1], H/2^(k+1), W/2^(k+1)).
        """
        upto = self.num_stages if upto is None else int(upto)
        if not 1 <= upto <= self.num_stages:
            raise BackboneError(f"upto must be in 1..{self.num_stages}, got {upto}")
        out = []
        x = self.stem(x)
        for k in range(upto):
            x = getattr(self, f"layer{k + 1}")(x)
            out.append(x)
        return out

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] → globally average-pooled feature (B, :attr:`out_channels`)."""
        return torch.flatten(self.avgpool(self.features(x)[-1]), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, num_classes), or the pooled feature when there is no ``fc``."""
        f = self.pooled(x)
        return f if self.fc is None else self.fc(f)


def resnet(arch: str = "resnet18", width: int = 64, layers: Sequence[int] | None = None,
           num_classes: int | None = 1000, normalize: bool = True, in_channels: int = 3) -> ResNet:
    """Build ``arch`` (one of :data:`ARCHS`) with ``width`` base channels.

    ``layers`` overrides the blocks per stage (its block type stays that of
    ``arch``); ``num_classes=None`` drops the classifier.
    """
    if arch not in ARCHS:
        raise BackboneError(f"unknown backbone {arch!r}; choose one of {', '.join(ARCHS)}")
    block, default_layers = ARCHS[arch]
    return ResNet(block, default_layers if layers is None else layers, width=width,
                  num_classes=num_classes, normalize=normalize, in_channels=in_channels)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file (``.safetensors``, or a plain state dict loaded with ``weights_only=True``).

    Unwraps ``{"state_dict": ...}`` / ``{"model": ...}`` and strips a ``module.`` prefix; never runs pickled code.
    """
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        try:
            return load_file(str(path), device="cpu")
        except Exception as e:  # safetensors raises its own error types
            raise BackboneError(f"cannot read {path} as safetensors ({e}); give an intact file") from e
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling errors, truncated files...
        raise BackboneError(f"cannot read {path} as a torch state dict ({e}); give a plain state dict "
                            "(.pth, loaded without pickle code, e.g. torchvision's ResNet or the "
                            "EfficientNet-Lite0 wheel's file) or a .safetensors file") from e
    # Common wrappers of training scripts: {"state_dict": {...}} / {"model": {...}}.
    for key in ("state_dict", "model"):
        if isinstance(sd, dict) and isinstance(sd.get(key), dict):
            sd = sd[key]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise BackboneError(f"{path} does not hold a state dict (a mapping of names to tensors)")
    return {k.removeprefix("module."): v for k, v in sd.items()}


def load_torchvision_state_dict(model: ResNet, path: str | Path) -> ResNet:
    """Load a torchvision-format ResNet checkpoint (``.pth``/``.pt`` or ``.safetensors``) into ``model``.

    Never runs pickled code (``weights_only=True``) and never downloads.
    ``fc.*`` entries are skipped when ``model`` has no ``fc``; missing
    ``num_batches_tracked`` counters (old checkpoints) are set to 0. Any other
    missing/unexpected key or shape difference is a :class:`BackboneError`
    naming the first offenders (a shape difference usually means ``width`` ≠ 64
    or the wrong arch). Returns ``model``.
    """
    path = Path(path)
    if not path.is_file():
        raise BackboneError(f"pretrained weights {path} not found; give the path of a torchvision-format "
                            "ResNet state dict (.pth or .safetensors) — nothing is downloaded")
    sd = read_state_dict(path)
    own = model.state_dict()
    if model.fc is None:
        sd = {k: v for k, v in sd.items() if not k.startswith("fc.")}
    for k, v in own.items():
        if k.endswith("num_batches_tracked") and k not in sd:
            sd[k] = torch.zeros_like(v)
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    if missing or unexpected:
        raise BackboneError(
            f"{path} does not match this ResNet (layers {model.layers_cfg}, width {model.width}): "
            f"{len(missing)} missing keys {missing[:4]}, {len(unexpected)} unexpected keys {unexpected[:4]}; "
            "check the arch (resnet18/34/50) matches the checkpoint")
    bad = [(k, tuple(sd[k].shape), tuple(v.shape)) for k, v in own.items() if sd[k].shape != v.shape]
    if bad:
        k, got, want = bad[0]
        raise BackboneError(
            f"{path}: {len(bad)} tensors have other shapes than this ResNet's (first: {k} is {got}, "
            f"model wants {want}); torchvision checkpoints need width=64 (this model has width {model.width})")
    model.load_state_dict(sd, strict=True)
    return model
