"""Reading a source dataset's files (images, npz, pickle, JSON) with one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import numpy as np

from selfpose.data.datasets import safe_read
from selfpose.data.datasets.config import PrepareError, warn


def read_image(path: Path) -> np.ndarray:
    """An image file as ``(H, W, 3)`` uint8 RGB."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise PrepareError(f"cannot read image {path}: missing or not an image file OpenCV can decode")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def find_image(root: Path, name: str) -> Path | None:
    """The image ``name`` (a path relative to the dataset) under ``root``.

    Tries ``root/name`` and ``root/images/name``, then — for flat folders such
    as the mmpose sample files — the bare file name in ``root`` and
    ``root/images``. ``None`` when absent.
    """
    rel = Path(name)
    for cand in (root / rel, root / "images" / rel, root / rel.name, root / "images" / rel.name):
        if cand.is_file():
            return cand
    return None


def read_npz(path: Path, required: Iterable[str] = ()) -> dict[str, Any]:
    """All arrays of an ``.npz`` file (pickled objects allowed: these are trusted dataset files)."""
    return safe_read.read_npz(path, required, error=PrepareError)


def read_pickle(path: Path) -> Any:
    """A pickle written by Python 2 or 3 (trusted dataset files only)."""
    return safe_read.read_pickle(path, error=PrepareError)


def read_json(path: Path) -> Any:
    return safe_read.read_json(path, error=PrepareError)


def check_found(samples: list, skipped: list[str], root: Path) -> None:
    """Error when no annotated image was found, warning when some were not."""
    if not samples and skipped:
        raise PrepareError(f"none of the {len(skipped)} annotated images was found under {root} "
                           f"(e.g. {skipped[0]}); pass the folder that holds them (or their 'images/' folder)")
    if not samples:
        raise PrepareError(f"no annotated images selected in {root} (check --subjects)")
    if skipped:
        warn(f"{len(skipped)} annotated image(s) not found under {root} and skipped, e.g. {skipped[0]}")
