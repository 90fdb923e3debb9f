"""mmpose ``body3d`` annotation files (Human3.6M, MPI-INF-3DHP): finding and reading them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from selfpose.data.datasets import safe_read
from selfpose.data.datasets.config import PrepareError
from selfpose.data.datasets.files import read_npz


def read_body3d_npz(path: Path) -> dict[str, np.ndarray]:
    """An mmpose ``body3d`` annotation file, checked.

    Keys used: ``imgname`` (N,), ``part`` (N, 17, 3) 2D px + visibility,
    ``S`` (N, 17, 4) 3D camera-frame metres + visibility (``center``/``scale``,
    mmpose's padded square crop, are not used: boxes come from the joints).
    """
    d = read_npz(path, ("imgname", "part", "S"))
    n = len(d["imgname"])
    part, S = np.asarray(d["part"], np.float64), np.asarray(d["S"], np.float64)
    if part.shape[:2] != (n, 17) or part.shape[2] < 2 or S.shape[:2] != (n, 17) or S.shape[2] < 3:
        raise PrepareError(f"{path}: expected part (N, 17, 2|3) and S (N, 17, 3|4) for N = {n} images, "
                           f"got {part.shape} and {S.shape}")
    return {"imgname": np.asarray(d["imgname"]).astype(str), "part": part, "S": S}


def is_body3d_npz(path: Path) -> bool:
    """True for an mmpose body3d file with 17 joints (other npz files in the folder are skipped)."""
    # A truncated or corrupt npz is an error, not "some other file" silently skipped.
    if not {"imgname", "part", "S"} <= set(safe_read.npz_keys(path, error=PrepareError)):
        return False
    try:
        with np.load(path, allow_pickle=False) as z:
            return z["S"].ndim == 3 and z["S"].shape[1] == 17
    except safe_read.CORRUPT_FILE_ERRORS as e:
        raise safe_read.unreadable(path, e, PrepareError, "an .npz archive") from e


def body3d_files(source: Path, kind: str) -> tuple[Path, list[Path]]:
    """``(root, npz files)`` for a folder of (or one) mmpose body3d annotation file(s)."""
    if source.is_file():
        if not is_body3d_npz(source):
            raise PrepareError(f"{source} is not an mmpose {kind} annotation file "
                               "(npz with imgname, part and S of 17 joints)")
        return source.parent, [source]
    files = sorted(p for p in (*source.glob("*.npz"), *source.glob("annotations/*.npz")) if is_body3d_npz(p))
    if not files:
        raise PrepareError(f"no mmpose {kind} annotation file (npz with imgname, part and S of 17 joints) "
                           f"found in {source} or {source / 'annotations'}")
    return source, files
