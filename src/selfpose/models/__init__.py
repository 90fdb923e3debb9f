"""Networks: ResNet backbones, EfficientNet-Lite0, STN crop/warp, detector, encoder, decoder, TemporalModel, pose heads.

Submodules are imported on first use of a name (``from selfpose.models import
TemporalModel`` works), so that importing the package does not import torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "ResNet": "backbones", "resnet": "backbones", "load_torchvision_state_dict": "backbones",
    "BackboneError": "backbones",
    "EfficientNetLite0": "efficientnet_lite", "load_efficientnet_lite0": "efficientnet_lite",
    "Detector": "detector", "Encoder": "encoder", "Decoder": "decoder",
    "ModelConfig": "temporal", "TemporalModel": "temporal", "TemporalModelError": "temporal",
    "MLPHead": "heads", "MartinezHead": "heads", "make_head": "heads",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"selfpose.models.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'selfpose.models' has no attribute {name!r}")
