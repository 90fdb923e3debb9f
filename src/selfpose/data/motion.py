"""How much the picture changes around each frame: a label-free motion energy.

Multi-view synchronisation (Jenni & Favaro) skips frames where the person
hardly moves: two views of a still person at different instants look like a
synchronised pair, so such pairs only teach noise. No label may say who
moves, so the measure comes from the pixels: the mean absolute grey-level
difference between the frames ``gap`` before and after each frame, on a
subsampled image. A static camera's background cancels out, so the energy is
the person's motion (and the sensor noise, the same for every frame of a
video).
"""

from __future__ import annotations

import numpy as np

#: Grey weights (ITU-R BT.601), as OpenCV's RGB→grey.
_GREY = np.array([0.299, 0.587, 0.114], np.float32)


def motion_energy(frames, gap: int = 2, stride: int = 4, chunk: int = 256) -> np.ndarray:
    """Per-frame motion energy of one video.

    Args:
        frames: ``(T, H, W, 3)`` uint8 RGB (an array or a memory map; read in chunks).
        gap: frames before and after each frame that are compared (≥ 1);
            at the ends the nearest frames inside the video are used.
        stride: keep every ``stride``-th pixel row and column (the energy is
            an average, so a coarse grid measures it as well and reads less).
        chunk: frames read at once (bounds the memory used).

    Returns:
        ``(T,)`` float32, mean ``|grey[t + gap] − grey[t − gap]|`` in grey
        levels (0–255) over the subsampled pixels; zeros for a 1-frame video.
    """
    if getattr(frames, "ndim", 0) != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must have shape (T, H, W, 3), got {getattr(frames, 'shape', None)}")
    if gap < 1 or stride < 1 or chunk < 1:
        raise ValueError(f"gap, stride and chunk must be >= 1, got {gap}, {stride}, {chunk}")
    T = int(frames.shape[0])
    if T < 2:
        return np.zeros(T, np.float32)
    grey = np.empty((T, *frames[0, ::stride, ::stride, 0].shape), np.float32)
    for a in range(0, T, chunk):
        grey[a:a + chunk] = frames[a:a + chunk, ::stride, ::stride].astype(np.float32) @ _GREY
    t = np.arange(T)
    before, after = np.clip(t - gap, 0, T - 1), np.clip(t + gap, 0, T - 1)
    out = np.empty(T, np.float32)
    for a in range(0, T, chunk):
        s = slice(a, a + chunk)
        out[s] = np.abs(grey[after[s]] - grey[before[s]]).mean(axis=(1, 2))
    return out


def moving_mask(energy: np.ndarray, still_fraction: float) -> np.ndarray:
    """``(T,)`` bool: the frames kept when the ``round(still_fraction · T)`` least-moving ones are skipped.

    A fraction of each video rather than a threshold in grey levels: the
    energy's scale depends on the camera, the person's size and the
    background's texture, a fraction does not. Ranks, not a quantile value:
    many frames may share one energy (a periodic motion), and a cut at a tied
    value would skip far more than the fraction. Ties are broken by frame
    order; when every frame ties (a still video) all are kept.
    """
    if not 0 <= still_fraction < 1:
        raise ValueError(f"still_fraction must be in [0, 1), got {still_fraction}")
    energy = np.asarray(energy, np.float64)
    keep = np.ones(energy.shape, bool)
    if still_fraction == 0 or energy.size == 0 or energy.max() == energy.min():
        return keep
    k = int(round(still_fraction * energy.size))
    keep[np.argsort(energy, kind="stable")[:k]] = False
    return keep


__all__ = ("motion_energy", "moving_mask")
