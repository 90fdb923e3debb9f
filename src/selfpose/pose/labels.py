"""Which training frames are labelled, and a validation split that does not leak.

Label fractions (Honari et al. §5): "label fractions are taken by keeping
every K-th frame of the training videos, uniformly over subjects and
actions". :func:`label_subset` keeps frames ``offset, offset + K, …`` of every
sequence with ``K = round(1 / fraction)``; since every sequence is subsampled
alike, every subject and action keeps the same share of its frames.

A *frame index* is an ``(N, 2)`` int64 array of ``(sequence index, stored
frame index)`` rows, the sequence index pointing into ``ds.sequences`` of
the :class:`~selfpose.data.store.Dataset` it was made from (so build it from
the same selection you later extract features from).

Model selection needs a validation set that the head never sees; frames of
one take are near-duplicates (neighbouring instants, and the same instant in
the other views), so :func:`split_validation` holds out *whole takes* by
default.
"""

from __future__ import annotations

import logging
import zlib
from typing import Literal

import numpy as np

from selfpose.data.store import Dataset
from selfpose.errors import SelfposeError

logger = logging.getLogger(__name__)

SplitBy = Literal["take", "sequence", "frames", "subject"]
SPLIT_BY: tuple[str, ...] = ("take", "sequence", "frames", "subject")


class LabelError(SelfposeError, ValueError):
    """A label subset or validation split cannot be made as asked."""


def label_stride(fraction: float) -> int:
    """``K = round(1 / fraction)``: keep every K-th frame (fraction 1.0 → K = 1, all frames)."""
    if not (0.0 < float(fraction) <= 1.0):
        raise LabelError(f"label fraction must be in (0, 1], got {fraction!r} (e.g. 0.01 for 1% of the frames)")
    return max(1, int(round(1.0 / float(fraction))))


def _take_rng(seed: int, take: str) -> np.random.Generator:
    # Seeded by the take *name*, so selecting other subjects/actions does not
    # change which frames of this take are labelled.
    return np.random.default_rng(np.random.SeedSequence([int(seed) % 2**63, zlib.crc32(take.encode())]))


def label_subset(ds: Dataset, fraction: float, seed: int = 0, require_3d: bool = True,
                 finite_only: bool = True) -> np.ndarray:
    """The labelled frames: every K-th frame of every sequence, ``K = round(1/fraction)``.

    Args:
        ds: the training dataset (or a selection of it).
        fraction: share of labelled frames in (0, 1]; 1.0 keeps every frame.
        seed: chooses each take's offset in ``[0, min(K, T))`` (``T`` its
            shortest view's length), so every non-empty sequence contributes
            at least one frame however short it is; the views of a take share
            the offset, i.e. the same instants are labelled in every camera.
        require_3d: skip sequences without ``joints3d`` (logged once); if
            False they are kept (e.g. for feature extraction only).
        finite_only: with ``require_3d``, leave out frames whose 3D label
            has a NaN/inf (logged with counts); evaluation passes False and
            counts them itself.

    Returns:
        ``(N, 2)`` int64 rows ``(sequence index in ds.sequences, stored frame
        index)``, sorted by sequence then frame. About ``fraction`` of the
        frames (exactly ``ceil((T - offset) / K)`` per sequence).
    """
    K = label_stride(fraction)
    skipped = [s.meta.id for s in ds.sequences if require_3d and not s.has("joints3d")]
    if skipped:
        logger.warning("label_subset: %d sequence(s) have no joints3d and are not labelled: %s%s", len(skipped),
                       ", ".join(skipped[:5]), " ..." if len(skipped) > 5 else "")
    lengths: dict[str, int] = {}
    for s in ds.sequences:
        if s.meta.id not in skipped and len(s) > 0:
            lengths[s.meta.take] = min(lengths.get(s.meta.take, len(s)), len(s))
    offsets = {take: int(_take_rng(seed, take).integers(0, min(K, T))) for take, T in lengths.items()}
    rows = []
    nonfinite: dict[str, int] = {}
    for i, s in enumerate(ds.sequences):
        if s.meta.id in skipped or len(s) == 0:
            continue
        frames = np.arange(offsets[s.meta.take], len(s), K, dtype=np.int64)
        if require_3d and finite_only:
            # A frame whose 3D label is NaN/inf (a mocap dropout) cannot teach or select a head: leave it out
            # and say how many (the loss and the validation error would be NaN otherwise).
            ok = np.isfinite(np.asarray(s["joints3d"][frames], dtype=np.float64)).all(axis=(1, 2))
            if not ok.all():
                nonfinite[s.meta.id] = int((~ok).sum())
                frames = frames[ok]
        rows.append(np.stack([np.full_like(frames, i), frames], axis=1))
    if nonfinite:
        logger.warning("label_subset: %d labelled frame(s) without finite 3D labels are left out (%s%s)",
                       sum(nonfinite.values()), ", ".join(f"{k}: {v}" for k, v in list(nonfinite.items())[:5]),
                       " ..." if len(nonfinite) > 5 else "")
    rows = [r for r in rows if len(r)]
    if not rows:
        raise LabelError(f"no labelled frames in {ds.root}: no sequence has frames"
                         f"{' and finite joints3d' if require_3d else ''}; use a dataset with 3D labels")
    return np.concatenate(rows)


def check_frames(ds: Dataset, frames: np.ndarray) -> np.ndarray:
    """Validate a frame index against ``ds``; returns it as ``(N, 2)`` int64."""
    f = np.asarray(frames)
    if f.ndim != 2 or f.shape[1] != 2 or not np.issubdtype(f.dtype, np.integer):
        raise LabelError(f"a frame index is an (N, 2) integer array of (sequence index, frame index), "
                         f"got {f.dtype} {f.shape}")
    f = f.astype(np.int64, copy=False)
    if len(f) == 0:
        return f
    n_seq = len(ds.sequences)
    if f[:, 0].min() < 0 or f[:, 0].max() >= n_seq:
        raise LabelError(f"sequence indices must be in [0, {n_seq}) for {ds.root}; was the frame index made "
                         "from another dataset or selection?")
    lengths = np.array([len(s) for s in ds.sequences], dtype=np.int64)
    bad = (f[:, 1] < 0) | (f[:, 1] >= lengths[f[:, 0]])
    if bad.any():
        s, t = f[np.argmax(bad)]
        raise LabelError(f"frame {t} is out of range for sequence {ds.sequences[s].meta.id!r} "
                         f"({lengths[s]} frames); {int(bad.sum())} bad row(s)")
    return f


def holdout_mask(takes, sequences, frame_ids, val_fraction: float = 0.1, by: SplitBy = "take",
                 seed: int = 0, subjects=None) -> np.ndarray:
    """Which samples go to validation; the core of :func:`split_validation`.

    Args:
        takes, sequences: ``(N,)`` take and sequence ids of each sample.
        frame_ids: ``(N,)`` frame id of each sample within its take.
        val_fraction: target share of samples held out, in [0, 1).
        by: ``"take"`` holds out whole takes (every view of a recording;
            nothing of a validation take is trained on — the default);
            ``"sequence"`` holds out whole sequences (other views of the same
            take stay in training: use it only for single-view data);
            ``"frames"`` holds out the last ``val_fraction`` of every take's
            time span (all views together), for when there are too few takes —
            frames next to the cut leak a little; ``"subject"`` holds out whole
            people (needs ``subjects``): model selection on people never trained
            on, as the test people are.
        seed: which takes/sequences/subjects are drawn.
        subjects: ``(N,)`` subject of each sample (for ``by="subject"``).

    Returns:
        ``(N,)`` bool, True = validation. Group splits take whole groups in a
        seeded random order until at least ``val_fraction`` of the samples is
        held out, always leaving one group for training.
    """
    takes, sequences = np.asarray(takes).astype(str), np.asarray(sequences).astype(str)
    frame_ids = np.asarray(frame_ids, dtype=np.int64)
    n = len(takes)
    if not (0.0 <= float(val_fraction) < 1.0):
        raise LabelError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    if by not in SPLIT_BY:
        raise LabelError(f"split `by` must be one of {SPLIT_BY}, got {by!r}")
    mask = np.zeros(n, dtype=bool)
    if val_fraction == 0 or n == 0:
        return mask
    if by == "frames":
        for take in np.unique(takes):
            sel = takes == take
            ids = frame_ids[sel]
            cut = np.quantile(ids, 1.0 - val_fraction, method="higher")
            held = ids >= cut
            if held.all():  # a take with one labelled instant stays in training
                held[:] = False
            mask[sel] = held
        if not mask.any():
            raise LabelError("no validation frames: every take has a single labelled instant; "
                             "use more labels or by='take'")
        return mask
    if by == "subject":
        if subjects is None or len(subjects) != n:
            raise LabelError("by='subject' needs the subject of every sample; pass subjects=, or split by 'take'")
        groups = np.asarray(subjects).astype(str)
    else:
        groups = takes if by == "take" else sequences
    uniq, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    if len(uniq) < 2:
        raise LabelError(f"cannot hold out whole {by}s: the labelled frames come from a single {by}; "
                         "use by='frames' (the end of each take) or more data")
    order = np.random.default_rng(seed).permutation(len(uniq))
    need = val_fraction * n
    chosen, total = [], 0
    for g in order[:-1]:  # the last group always stays in training
        chosen.append(g)
        total += counts[g]
        if total >= need:
            break
    mask[np.isin(inverse, chosen)] = True
    return mask


def evenly_spaced(frames: np.ndarray, n: int | None) -> np.ndarray:
    """At most ``n`` rows of ``frames`` (``(N, 2)`` frame indices), evenly spaced in their order, first and last
    kept; all of them when ``n`` is None or ``N <= n``. Deterministic: the same frames on every call."""
    f = np.asarray(frames)
    if n is None or len(f) <= n:
        return f
    if n < 1:
        raise ValueError(f"n must be >= 1 (or None), got {n}")
    return f[np.linspace(0, len(f) - 1, n).round().astype(np.int64)]


def split_validation(ds: Dataset, frames: np.ndarray, val_fraction: float = 0.1, by: SplitBy = "take",
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split a frame index into training and validation frames without leakage.

    See :func:`holdout_mask` for ``by`` (default ``"take"``: all views of a
    held-out take go to validation, none to training).

    Returns:
        ``(train_frames, val_frames)``, both ``(·, 2)`` int64 frame indices.
    """
    f = check_frames(ds, frames)
    seqs = ds.sequences
    takes = np.array([seqs[i].meta.take for i in f[:, 0]], dtype=str)
    ids = np.array([seqs[i].meta.id for i in f[:, 0]], dtype=str)
    subjects = np.array([seqs[i].meta.subject for i in f[:, 0]], dtype=str)
    frame_ids = np.empty(len(f), dtype=np.int64)
    for s in np.unique(f[:, 0]):
        sel = f[:, 0] == s
        rec = seqs[s]
        frame_ids[sel] = np.asarray(rec["frame_ids"])[f[sel, 1]] if rec.has("frame_ids") else f[sel, 1]
    mask = holdout_mask(takes, ids, frame_ids, val_fraction, by, seed, subjects=subjects)
    return f[~mask], f[mask]
