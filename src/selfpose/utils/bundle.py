"""Small on-disk bundles: one safetensors file of weights + one JSON of metadata.

Pose heads and supervised baselines are saved this way: loading reads
tensors and JSON only, never a pickle.
"""

from __future__ import annotations

import json
from pathlib import Path


def read_bundle(path: str | Path, weights: str, meta: str, fmt: str, version: int, error: type[Exception],
                what: str, remedy: str) -> tuple[dict, dict]:
    """``(metadata, tensors)`` of the bundle folder ``path``.

    Raises ``error`` with a one-line message naming ``what`` and ``remedy`` when
    a file is missing or unreadable, or was written in another format/newer version.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    try:
        info = json.loads((path / meta).read_text())
        tensors = load_file(str(path / weights))
    except (OSError, ValueError, SafetensorError) as e:
        raise error(f"cannot read {what} from {path} ({e}); {remedy}") from e
    if info.get("format") != fmt or info.get("version", 0) > version:
        raise error(f"{path / meta} is not a {fmt} file this version of selfpose can read")
    return info, tensors
