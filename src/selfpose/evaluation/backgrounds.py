"""How good is an estimated background? (synthetic data, where the truth is known)

The error is measured where a background estimate can be right at all:
pixels the person covers in under half of the frames (a per-pixel median
cannot see behind someone who stands still).
"""

from __future__ import annotations

import numpy as np

from selfpose.data.store import Dataset, SequenceRecord


def coverage(masks: np.ndarray, chunk: int = 256) -> np.ndarray:
    """Fraction of frames in which each pixel is covered by the person.

    Args:
        masks: ``(T, H, W)`` uint8 {0, 1}, typically a memory map (read in chunks).
    Returns:
        ``(H, W)`` float32 in [0, 1].
    """
    total = np.zeros(masks.shape[1:], np.float64)
    for s in range(0, len(masks), chunk):
        total += np.asarray(masks[s:s + chunk], dtype=np.float64).sum(0)
    return (total / max(len(masks), 1)).astype(np.float32)


def sequence_background_mae(rec: SequenceRecord, max_frames: int = 32) -> float | None:
    """Mean absolute error (in 0–255 units) of ``rec``'s estimated background
    against its true background, on pixels covered in < 50% of frames.

    Static cameras compare the single ``background`` to ``true_background``;
    moving cameras compare ``backgrounds`` to ``true_backgrounds`` on up to
    ``max_frames`` evenly spaced frames. ``None`` when the sequence lacks an
    estimate, the truth or masks.
    """
    if not rec.has("masks"):
        return None
    keep = coverage(rec["masks"]) < 0.5
    if not keep.any():
        return None
    if rec.has("background") and rec.has("true_background"):
        diff = np.abs(rec["background"].astype(np.int16) - rec["true_background"].astype(np.int16))
        return float(diff[keep].mean())
    if rec.has("backgrounds") and rec.has("true_backgrounds"):
        idx = np.unique(np.linspace(0, len(rec) - 1, min(max_frames, len(rec))).astype(int))
        diff = np.abs(rec["backgrounds"][idx].astype(np.int16) - rec["true_backgrounds"][idx].astype(np.int16))
        return float(diff[:, keep].mean())
    return None


def background_error_report(ds: Dataset) -> dict:
    """Background MAE (0–255 units) per sequence and over the dataset.

    Returns ``{"mae_255": mean over sequences, "worst_mae_255", "worst_sequence",
    "sequences": count, "per_sequence": {id: mae}}``; the means are NaN when
    no sequence has both an estimate and the truth.
    """
    per = {}
    for rec in ds.sequences:
        v = sequence_background_mae(rec)
        if v is not None:
            per[rec.id] = v
    if not per:
        return {"mae_255": float("nan"), "worst_mae_255": float("nan"), "worst_sequence": None,
                "sequences": 0, "per_sequence": {}}
    worst = max(per, key=per.get)
    return {"mae_255": float(np.mean(list(per.values()))), "worst_mae_255": per[worst],
            "worst_sequence": worst, "sequences": len(per), "per_sequence": per}
