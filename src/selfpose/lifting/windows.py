"""Temporal windows over the flat frame arrays of :class:`~selfpose.lifting.data.LiftingArrays`.

Lifters see time through windows: ``martinez`` one frame, ``temporal_conv`` a
receptive field of ``R`` frames around (or, causal, ending at) each target
frame, ``pose_machine`` a clip of ``T`` consecutive frames. All of them read
the same flat arrays, where each sequence's frames are contiguous and in time
order (:func:`~selfpose.lifting.data.load_arrays` writes them so). A window
never crosses into another sequence: frames before a sequence's first (after
its last) repeat that first (last) frame — edge padding, as VideoPose3D pads
its sequences. A sequence shorter than a window is therefore padded, never
skipped.

Everything here is index arithmetic on ``int64`` arrays: gathering a batch is
one fancy-indexing of the (already encoded) inputs.
"""

from __future__ import annotations

import numpy as np


def sequence_bounds(sequences: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each frame, the flat index of its sequence's first frame and one past its last.

    Args:
        sequences: ``(N,)`` sequence id of each frame; a sequence's frames must be
            contiguous (a run of equal ids).

    Returns:
        ``(starts (N,), ends (N,))`` int64.

    Raises:
        LiftingDataError: a sequence id appears in two separate runs (frames not contiguous).
    """
    seq = np.asarray(sequences)
    n = len(seq)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    change = np.flatnonzero(seq[1:] != seq[:-1]) + 1
    run_starts = np.concatenate([[0], change]).astype(np.int64)
    run_ends = np.concatenate([change, [n]]).astype(np.int64)
    if len(set(seq[run_starts].tolist())) != len(run_starts):
        from selfpose.lifting.data import LiftingDataError

        raise LiftingDataError("a sequence's frames are not contiguous in the arrays; keep each sequence's frames together")
    lengths = run_ends - run_starts
    return np.repeat(run_starts, lengths), np.repeat(run_ends, lengths)


def window_index(starts: np.ndarray, ends: np.ndarray, first: np.ndarray, length: int) -> np.ndarray:
    """Flat indices of ``length`` consecutive frames from ``first`` on, edge-padded within each sequence.

    Args:
        starts, ends: ``(B,)`` the bounds of each window's sequence (:func:`sequence_bounds`).
        first: ``(B,)`` flat index (may lie before ``starts`` or past ``ends``) of each window's first frame.
        length: frames per window.

    Returns:
        ``(B, length)`` int64, every entry in ``[start, end)`` of its row's sequence.
    """
    idx = np.asarray(first, np.int64)[:, None] + np.arange(length, dtype=np.int64)[None, :]
    return np.clip(idx, np.asarray(starts, np.int64)[:, None], np.asarray(ends, np.int64)[:, None] - 1)


def context_index(starts: np.ndarray, ends: np.ndarray, targets_first: np.ndarray, clip: int,
                  before: int, after: int) -> tuple[np.ndarray, np.ndarray]:
    """Input and target indices for clips of ``clip`` target frames with ``before``/``after`` context frames.

    A network with a receptive field of ``before + 1 + after`` frames maps an
    input window of ``before + clip + after`` frames to ``clip`` outputs.

    Returns:
        ``(inputs (B, before + clip + after), targets (B, clip))`` int64 flat indices.
    """
    first = np.asarray(targets_first, np.int64)
    return (window_index(starts, ends, first - before, before + clip + after),
            window_index(starts, ends, first, clip))


def tile_sequences(starts: np.ndarray, ends: np.ndarray, clip: int) -> np.ndarray:
    """First target frame of clips of ``clip`` frames that cover every frame of every sequence once or more.

    Each sequence is cut into ``ceil(L / clip)`` clips; the last one is moved
    back to end on the sequence's last frame (overlapping its predecessor) when
    the sequence is at least ``clip`` long, so no clip is padded unless the
    whole sequence is shorter than a clip.

    Returns:
        ``(C,)`` int64 flat index of each clip's first frame.
    """
    firsts = []
    for s, e in sorted(set(zip(np.asarray(starts).tolist(), np.asarray(ends).tolist()))):
        f = np.arange(s, e, clip, dtype=np.int64)
        if e - s >= clip:
            f[-1] = e - clip
        firsts.append(f)
    return np.concatenate(firsts) if firsts else np.zeros(0, np.int64)
