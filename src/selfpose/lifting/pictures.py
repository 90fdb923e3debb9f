"""A picture of a lifter's 3D next to the truth: test frames picked along the error distribution.

A table of millimetres says how large the error is, not what it looks like:
whether the worst frames are depth flips of one limb, a leaning torso or a
left/right swap is plain in a picture. :func:`error_frames` picks test frames
at chosen percentiles of the per-frame MPJPE (so the picture shows the typical
case as well as the tail), :func:`lifting_figure` draws them, truth solid and
prediction dashed, seen from the recording camera and from the side.
``selfpose evaluate RUN`` writes it as ``RUN/skeletons.png``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Percentiles of the per-frame MPJPE shown by default: typical, the upper tail and the worst frame.
PERCENTILES = (10.0, 50.0, 90.0, 100.0)


def frame_errors(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per-frame MPJPE, mm: ``(N,)`` from ``(N, J, 3)`` predictions and truth (camera frame, mm), pelvis-centred.

    Both poses are centred on joint 0 (the pelvis) first, as the evaluation does.
    """
    from selfpose.evaluation.metrics import mpjpe

    p = np.asarray(pred, dtype=np.float64)
    t = np.asarray(truth, dtype=np.float64)
    if p.shape != t.shape or p.ndim != 3 or p.shape[-1] != 3:
        raise ValueError(f"pred and truth must both be (N, J, 3) mm, got {p.shape} and {t.shape}")
    return np.asarray(mpjpe(p, t, reduction="none", root=0), dtype=np.float64)   # the evaluation's own metric


def error_frames(errors: np.ndarray, percentiles: Sequence[float] = PERCENTILES) -> np.ndarray:
    """Indices of the frames whose error sits at each percentile of ``errors`` (``(N,)``; NaN frames skipped).

    Percentile 100 is the worst frame, 0 the best; the pick is the frame whose
    error is nearest the percentile's value (one index per percentile, in order).
    """
    e = np.asarray(errors, dtype=np.float64)
    ok = np.flatnonzero(np.isfinite(e))
    if not len(ok):
        raise ValueError("no finite per-frame error to pick frames from")
    for q in percentiles:
        if not 0 <= q <= 100:
            raise ValueError(f"percentiles must be in [0, 100], got {q}")
    values = np.percentile(e[ok], list(percentiles))
    return np.array([ok[np.argmin(np.abs(e[ok] - v))] for v in values], dtype=np.int64)


def lifting_figure(pred: np.ndarray, truth: np.ndarray, labels: Sequence[str] | None = None,
                   percentiles: Sequence[float] = PERCENTILES, panel_in: float = 3.4) -> "Figure":
    """Truth (solid) and prediction (dashed) of frames at ``percentiles`` of the per-frame MPJPE.

    Args:
        pred, truth: ``(N, 17, 3)`` camera frame, mm (pelvis-centred for the picture).
        labels: optional ``N`` strings naming each frame (e.g. ``"S8 walking cam 2 frame 310"``).
        percentiles: which frames to show, see :func:`error_frames`.

    Returns:
        A matplotlib Figure, one row per picked frame (front and side views).
    """
    from selfpose.viz.skeleton import skeleton_views_figure

    err = frame_errors(pred, truth)
    if labels is not None and len(labels) != len(err):
        raise ValueError(f"{len(labels)} labels for {len(err)} frames")
    idx = error_frames(err, percentiles)
    names = {0.0: "best", 50.0: "median", 100.0: "worst"}
    titles = [f"{names.get(float(q), f'p{q:g}')} · {err[i]:.0f} mm" + (f"\n{labels[i]}" if labels is not None else "")
              for q, i in zip(percentiles, idx)]
    t = np.asarray(truth, dtype=np.float64)[idx]
    p = np.asarray(pred, dtype=np.float64)[idx]
    return skeleton_views_figure(list(t - t[:, :1]), titles, preds=list(p - p[:, :1]), panel_in=panel_in)
