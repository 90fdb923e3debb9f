"""Where a stage computes: a config's ``device`` string → a ``torch.device``, and batches moved there.

Every stage runs on the CPU by default (this project's reference machine has no GPU); ``cuda``
(or ``cuda:N``) runs it on a GPU and ``auto`` picks the GPU when torch sees one. Asking for a GPU
that is not there is a one-line :class:`~selfpose.config.ConfigError` before any work starts, not
torch's "not compiled with CUDA" traceback halfway through.
"""

from __future__ import annotations

import re
from typing import Any

import torch

from selfpose.config import ConfigError

#: What a ``device`` key accepts.
DEVICE_PATTERN = re.compile(r"cpu|auto|cuda(:\d+)?")


def check_device_name(name: str, key: str = "device") -> str:
    """``name`` if it is ``cpu``, ``auto``, ``cuda`` or ``cuda:N``; else a ConfigError naming ``key``."""
    if not isinstance(name, str) or not DEVICE_PATTERN.fullmatch(name):
        raise ConfigError(f"{key} must be cpu, cuda, cuda:N or auto (a GPU when torch sees one), got {name!r}")
    return name


def resolve_device(name: str, key: str = "device") -> torch.device:
    """The ``torch.device`` of a config's ``device`` string (see :data:`DEVICE_PATTERN`).

    Raises:
        ConfigError: an unknown name, or a CUDA device this torch cannot see.
    """
    check_device_name(name, key)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{key}={name} but this torch {torch.__version__} sees no CUDA GPU; "
                              f"use {key}=cpu (or auto: the GPU when there is one)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"{key}={name} but torch sees {torch.cuda.device_count()} GPU(s) "
                              f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})")
    return dev


def to_device(batch: Any, device: torch.device) -> Any:
    """``batch`` with every tensor (in nested dicts, lists and tuples) on ``device``; other values as they are.

    Host-to-GPU copies are asynchronous (``non_blocking``) where the tensor is in pinned memory.
    On the CPU nothing is copied.
    """
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch
