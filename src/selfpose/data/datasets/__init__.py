"""Real datasets → the house store (``selfpose prepare``).

Each source format has a preparer ``prepare_<format>(source, writer, cfg,
progress) -> dict`` that streams sequences into an open
:class:`~selfpose.data.store.DatasetWriter` and returns facts for the
dataset's attributes (at least ``num_sequences``). :func:`prepare` opens the writer (atomic: a failure
leaves no dataset behind) and dispatches.

Every preparer converts to the house conventions: Human3.6M-17 joints, 3D in
the camera frame in millimetres, 2D in pixels of the stored frame, frames
uint8 RGB framed as :class:`~selfpose.data.datasets.config.PrepareConfig`
says (default: the whole frame letterboxed into 128 × 128).

Formats: ``h36m``, ``mpi-inf-3dhp``, ``humaneva``, ``3dpw``, ``videos``, ``multiview``, ``mocap``.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any, Callable

from selfpose.data.datasets.config import PrepareConfig, PrepareError, PrepareWarning

__all__ = ["PREPARERS", "PrepareConfig", "PrepareError", "PrepareWarning", "prepare"]


def _lazy(module: str, func: str, doc: str) -> Callable[..., dict[str, Any]]:
    """A preparer imported on first use (keeps ``import selfpose.data.datasets`` light)."""
    def run(source: Path, writer, cfg: PrepareConfig, progress: bool | None = None) -> dict[str, Any]:
        return getattr(importlib.import_module(f"selfpose.data.datasets.{module}"), func)(source, writer, cfg, progress)
    run.__name__, run.__qualname__, run.__doc__ = func, func, doc
    return run


#: Source format name → preparer ``(source, writer, cfg, progress) -> dict``.
PREPARERS: dict[str, Callable[..., dict[str, Any]]] = {
    "h36m": _lazy("h36m", "prepare_h36m", "Human3.6M, mmpose body3d npz + images + cameras.pkl."),
    "mpi-inf-3dhp": _lazy("mpi_inf_3dhp", "prepare_mpi_inf_3dhp",
                          "MPI-INF-3DHP, mmpose body3d npz + images + cameras_train/test.pkl."),
    "humaneva": _lazy("humaneva", "prepare_humaneva",
                      "HumanEva-I, VideoPose3D npz (3D world + 2D ground truth), no frames."),
    "3dpw": _lazy("pw3d", "prepare_3dpw", "3DPW, mmhuman3d npz (SMPL parameters, boxes) + images."),
    "videos": _lazy("videos", "prepare_videos", "A folder of video files, optional 2D keypoint files."),
    "multiview": _lazy("multiview", "prepare_multiview",
                       "Synchronised videos of one take, one per camera of a calibration (.qca.txt / .toml)."),
    "mocap": _lazy("mocap", "prepare_mocap",
                   "An npz of (T, 17, 3) mm motions seen through Human3.6M or synthetic cameras, no frames."),
}


def prepare(fmt: str, source: str | os.PathLike, out: str | os.PathLike, cfg: PrepareConfig | None = None,
            overwrite: bool = False, progress: bool = True) -> Path:
    """Convert the dataset at ``source`` (format ``fmt``) into a store at ``out``.

    Args:
        fmt: a key of :data:`PREPARERS`.
        source: the source folder (or, for the annotation formats, one file).
        out: the dataset folder to create.
        cfg: conversion settings (defaults: :class:`PrepareConfig`).
        overwrite: replace an existing ``out``.
        progress: show progress bars (True still honours ``SELFPOSE_PROGRESS=0``).

    Returns:
        ``out``. On any error nothing is left at ``out`` (the store is written
        to a temporary folder and renamed into place when complete).
    """
    from selfpose.config import to_dict
    from selfpose.data.store import DatasetWriter

    if fmt not in PREPARERS:
        raise PrepareError(f"unknown dataset format {fmt!r}; known formats: {', '.join(PREPARERS)}")
    cfg = PrepareConfig() if cfg is None else cfg
    source, out = Path(source), Path(out)
    if not source.exists():
        raise PrepareError(f"source {source} does not exist; pass the folder of the {fmt} dataset")
    src, dst = source.resolve(), out.resolve()
    if dst == src or dst in src.parents:
        raise PrepareError(f"output {out} would contain or replace the source {source}; choose another --out")
    attrs = {"kind": "real", "source_format": fmt, "source": str(source), "prepare": to_dict(cfg),
             "skeleton": "h36m17", "units": {"joints3d": "mm, camera frame", "joints2d": "px of the stored frame"}}
    # A store inside its source folder is allowed (replacing it deletes only the store).
    with DatasetWriter(out, attrs=attrs, overwrite=overwrite, inputs=[(source, True)]) as writer:
        # None lets the progress module decide (on, unless SELFPOSE_PROGRESS=0).
        facts = PREPARERS[fmt](source, writer, cfg, None if progress else False)
        writer.attrs.update(facts)
        if not facts["num_sequences"]:
            raise PrepareError(f"no sequence was prepared from {source}")
    return out
