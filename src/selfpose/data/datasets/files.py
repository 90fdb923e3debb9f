"""Reading a source dataset's files (images, npz, pickle, JSON) with one-line errors."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any, Iterable

import numpy as np

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
    try:
        with np.load(path, allow_pickle=True) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, pickle.UnpicklingError) as e:
        raise PrepareError(f"cannot read {path}: {e}") from e
    missing = [k for k in required if k not in data]
    if missing:
        raise PrepareError(f"{path} lacks key(s) {', '.join(missing)}; it has: {', '.join(data) or 'nothing'}")
    return data


def read_pickle(path: Path) -> Any:
    """A pickle written by Python 2 or 3 (latin1 keeps Python 2 numpy arrays readable)."""
    try:
        with open(path, "rb") as fh:
            return pickle.load(fh, encoding="latin1")
    except FileNotFoundError:
        raise PrepareError(f"{path} not found") from None
    except ModuleNotFoundError as e:
        raise PrepareError(f"{path} needs the Python module {e.name!r} to be read; convert it to .npz "
                           "(numpy arrays only) and pass that instead") from e
    except (OSError, EOFError, pickle.UnpicklingError, ValueError) as e:
        raise PrepareError(f"cannot read {path}: {e}") from e


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PrepareError(f"cannot read {path}: {e}") from e


def check_found(samples: list, skipped: list[str], root: Path) -> None:
    """Error when no annotated image was found, warning when some were not."""
    if not samples and skipped:
        raise PrepareError(f"none of the {len(skipped)} annotated images was found under {root} "
                           f"(e.g. {skipped[0]}); pass the folder that holds them (or their 'images/' folder)")
    if not samples:
        raise PrepareError(f"no annotated images selected in {root} (check --subjects)")
    if skipped:
        warn(f"{len(skipped)} annotated image(s) not found under {root} and skipped, e.g. {skipped[0]}")
