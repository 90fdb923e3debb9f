"""Seeded samplers of frame-index tuples for self-supervised training.

A sampler looks only at a prepared dataset's metadata (frame counts, fps,
takes, views, frame ids) and draws *index tuples*: which stored frames of
which sequences form one training item. The data loader
(:mod:`selfpose.data.loader`) then reads those frames from the memory maps.
Sampling is vectorised: ``sampler.sample(n, rng)`` draws ``n`` tuples at once.

Temporal distances are configured in **seconds** and converted per sequence
by its stored fps, so a 25 fps and a 50 fps video get the same time spans.
The papers' values, in frames of their videos and in seconds:

=====================  =====  ============  ================  ========================
data (paper)           fps    d_pos/d_neg   seconds           note
=====================  =====  ============  ================  ========================
Human3.6M (lab)        50     10 / 200      0.2 / 4.0
MPI-INF-3DHP           25     10 / 450      0.4 / 18.0        training videos at 25 fps
ski (Rhodin 2018)      30     5 / 40        0.167 / 1.333     fps assumed
diving                 30     3 / 20        0.1 / 0.667       fps assumed
=====================  =====  ============  ================  ========================

(:data:`PAPER_DISTANCES`). Multi-view synchronisation (Jenni & Favaro) uses
``4 < |Δt| < 128`` frames of Human3.6M at 50 fps for unsynchronised pairs,
i.e. 0.08 s and 2.56 s.

Sequences too short for the requested distances are *excluded with one
logged warning* listing them (with their lengths and what to change); a
:class:`SamplerError` is raised only when no sequence qualifies, or for any
too-short sequence when the sampler is built with ``strict=True``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable
import numpy as np

from selfpose.data.sequence import SequenceMeta
from selfpose.errors import SelfposeError

logger = logging.getLogger(__name__)

#: The papers' DSL distances: name → (fps of the paper's videos, d_pos frames, d_neg frames).
PAPER_DISTANCES: dict[str, tuple[float, int, int]] = {
    "h36m": (50.0, 10, 200),
    "mpi_inf_3dhp": (25.0, 10, 450),
    "ski": (30.0, 5, 40),
    "diving": (30.0, 3, 20),
}


class SamplerError(SelfposeError, ValueError):
    """The dataset cannot provide the requested tuples (too short, too few views...)."""


def paper_distances_s(name: str) -> tuple[float, float]:
    """``(d_pos, d_neg)`` in seconds for one of :data:`PAPER_DISTANCES`."""
    if name not in PAPER_DISTANCES:
        raise KeyError(f"no paper distances for {name!r}; known: {', '.join(PAPER_DISTANCES)}")
    fps, d_pos, d_neg = PAPER_DISTANCES[name]
    return d_pos / fps, d_neg / fps


def seconds_to_frames(seconds: float, fps: float) -> int:
    """A duration in seconds as a whole number of frames at ``fps`` (nearest, at least 1)."""
    return max(1, int(round(float(seconds) * float(fps))))


@dataclass
class IndexBatch:
    """``n`` sampled tuples of ``k`` frames each.

    Attributes:
        seq: (n, k) int64, index of each frame's sequence in ``sampler.records``
            (the dataset's sequence list).
        frames: (n, k) int64, stored frame index within that sequence.
        extras: per-item arrays for the losses, e.g. ``delta`` (n, k, k) int64
            temporal distances in frames, ``d_pos``/``d_neg`` (n,) frames,
            ``sync``/``flip`` (n,) bool, ``step`` (n,) frames; each sampler
            documents its own.
    """

    seq: np.ndarray
    frames: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.seq)

    @property
    def tuple_size(self) -> int:
        return self.seq.shape[1]


def _as_generator(rng) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _metas(dataset) -> list[SequenceMeta]:
    seqs = getattr(dataset, "sequences", dataset)
    return [getattr(s, "meta", s) for s in seqs]


def _describe(m: SequenceMeta) -> str:
    return f"{m.id!r} ({m.num_frames} frames at {m.fps:g} fps = {m.num_frames / m.fps:.2f} s)"


def _sample_offset(ref: np.ndarray, length: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                   rng: np.random.Generator) -> np.ndarray:
    """For each item a frame ``t`` with ``lo ≤ |t − ref| ≤ hi`` and ``0 ≤ t < length``, uniformly.

    All arguments are int64 arrays of one shape; every item must have at
    least one valid ``t`` (callers guarantee it).
    """
    right = np.maximum(0, np.minimum(hi, length - 1 - ref) - lo + 1)
    left = np.maximum(0, np.minimum(hi, ref) - lo + 1)
    u = np.floor(rng.random(ref.shape) * (left + right)).astype(np.int64)
    u = np.minimum(u, left + right - 1)
    return np.where(u < left, ref - lo - u, ref + lo + (u - left))


class _TemporalSampler:
    """Shared machinery: per-sequence frame distances, exclusion of short sequences, weighting."""

    kind = "temporal"

    def __init__(self, dataset, strict: bool = False):
        self.records = list(getattr(dataset, "sequences", dataset))
        self.metas = _metas(dataset)
        if not self.metas:
            raise SamplerError(f"{type(self).__name__}: the dataset has no sequences")
        self.strict = strict

    # Subclasses: per-sequence requirement.
    def _need(self, m: SequenceMeta) -> tuple[int, str]:
        """(minimum number of frames, human description of why)."""
        raise NotImplementedError

    def _advice(self) -> str:
        raise NotImplementedError

    def _select(self) -> None:
        need = [self._need(m) for m in self.metas]
        short = [i for i, (n, _) in enumerate(need) if self.metas[i].num_frames < n]
        msgs = [f"{_describe(self.metas[i])} but {need[i][1]}" for i in short]
        if short and (self.strict or len(short) == len(self.metas)):
            head = ("no sequence is long enough" if len(short) == len(self.metas)
                    else f"{len(short)} sequence(s) too short")
            raise SamplerError(f"{type(self).__name__}: {head}: " + "; ".join(msgs[:10])
                               + (f"; ... and {len(msgs) - 10} more" if len(msgs) > 10 else "")
                               + f". {self._advice()}")
        if short:
            # One example in full and a few names: the warning reaches the terminal, so it stays readable.
            others = [repr(self.metas[i].id) for i in short[1:4]]
            more = f" and {len(short) - 4} more" if len(short) > 4 else ""
            logger.warning("%s: excluding %d of %d sequences that are too short, e.g. %s%s. %s",
                           type(self).__name__, len(short), len(self.metas), msgs[0],
                           f" (also {', '.join(others)}{more})" if others else "", self._advice())
        self.excluded = [self.metas[i].id for i in short]
        self.active = np.setdiff1d(np.arange(len(self.metas)), short).astype(np.int64)
        self.lengths = np.array([m.num_frames for m in self.metas], np.int64)
        self.fps = np.array([m.fps for m in self.metas], np.float64)

    def _choose(self, n: int, weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``n`` sequence indices (into ``records``) among ``active``, probability ∝ ``weights``."""
        w = weights.astype(np.float64)
        return self.active[rng.choice(len(self.active), size=n, p=w / w.sum())]

    def sample(self, n: int, rng=None) -> IndexBatch:  # pragma: no cover - abstract
        raise NotImplementedError


class DSLSampler(_TemporalSampler):
    """(reference, near, intermediate, far) frame tuples for the distance-based similarity loss (Eq. 6).

    For each item, one sequence (probability ∝ its number of usable
    reference frames), a reference frame ``r`` that has a far frame, and
    frames at ``1 ≤ Δ ≤ d_pos`` (near), ``d_pos < Δ < d_neg`` (intermediate)
    and ``Δ ≥ d_neg`` (far) from it, before or after, uniformly among the
    valid ones. ``d_pos``/``d_neg`` are seconds, converted per sequence.

    ``sample`` returns an :class:`IndexBatch` with ``k = 4`` and extras
    ``delta`` (n, 4, 4) int64 |frame differences| between every pair,
    ``d_pos``/``d_neg`` (n,) int64 in frames of the item's sequence (for the
    loss's ``g(Δ)``), and ``fps`` (n,) float64.
    """

    kind = "dsl"

    def __init__(self, dataset, d_pos_s: float = 0.2, d_neg_s: float = 4.0, strict: bool = False):
        super().__init__(dataset, strict)
        if not 0 < d_pos_s < d_neg_s:
            raise SamplerError(f"need 0 < d_pos_s < d_neg_s (seconds), got d_pos_s={d_pos_s}, d_neg_s={d_neg_s}")
        self.d_pos_s, self.d_neg_s = float(d_pos_s), float(d_neg_s)
        self.d_pos = np.array([seconds_to_frames(d_pos_s, m.fps) for m in self.metas], np.int64)
        self.d_neg = np.array([seconds_to_frames(d_neg_s, m.fps) for m in self.metas], np.int64)
        bad = [i for i, (p, q) in enumerate(zip(self.d_pos, self.d_neg)) if q < p + 2]
        if bad:
            m = self.metas[bad[0]]
            raise SamplerError(f"d_pos_s={d_pos_s} s and d_neg_s={d_neg_s} s leave no intermediate frame at "
                               f"{m.fps:g} fps (sequence {m.id!r}: d_pos={self.d_pos[bad[0]]}, "
                               f"d_neg={self.d_neg[bad[0]]} frames); increase d_neg_s")
        self._select()
        T, d = self.lengths, self.d_neg
        # Reference frames with a far frame: [0, T-1-d] ∪ [d, T-1].
        self.usable = np.where(T > d, np.minimum(T, 2 * (T - d)), 0)

    def _need(self, m):
        d = seconds_to_frames(self.d_neg_s, m.fps)
        return d + 1, f"a far frame needs Δ ≥ d_neg = {self.d_neg_s:g} s ({d} frames), i.e. ≥ {d + 1} frames"

    def _advice(self) -> str:
        return "Lower d_neg_s, or use longer sequences."

    def _references(self, seq: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        T, d, usable = self.lengths[seq], self.d_neg[seq], self.usable[seq]
        u = np.floor(rng.random(len(seq)) * usable).astype(np.int64)
        disjoint = 2 * (T - d) < T
        # Disjoint ranges: the first T-d values index [0, T-1-d], the rest [d, T-1].
        return np.where(disjoint & (u >= T - d), u + (2 * d - T), u)

    def sample(self, n: int, rng=None) -> IndexBatch:
        rng = _as_generator(rng)
        seq = self._choose(n, self.usable[self.active], rng)
        T, dp, dn = self.lengths[seq], self.d_pos[seq], self.d_neg[seq]
        ref = self._references(seq, rng)
        one = np.ones_like(ref)
        near = _sample_offset(ref, T, one, dp, rng)
        mid = _sample_offset(ref, T, dp + 1, dn - 1, rng)
        far = _sample_offset(ref, T, dn, T, rng)
        frames = np.stack([ref, near, mid, far], axis=1)
        delta = np.abs(frames[:, :, None] - frames[:, None, :])
        return IndexBatch(np.repeat(seq[:, None], 4, axis=1), frames,
                          {"delta": delta, "d_pos": dp, "d_neg": dn, "fps": self.fps[seq]})


class ContrastivePairSampler(DSLSampler):
    """Reference + one positive (``1 ≤ Δ ≤ d_pos``) + ``num_negatives`` far frames (``Δ ≥ d_neg``) of one video.

    For CSS/InfoNCE and triplet baselines. Negatives are drawn independently
    (they may repeat when a sequence has few far frames). ``k = 2 +
    num_negatives``; columns are ``[reference, positive, negatives...]``;
    extras as :class:`DSLSampler` (``delta`` is (n, k, k)).
    """

    kind = "contrastive"

    def __init__(self, dataset, d_pos_s: float = 0.2, d_neg_s: float = 4.0, num_negatives: int = 1,
                 strict: bool = False):
        if num_negatives < 1:
            raise SamplerError(f"num_negatives must be ≥ 1, got {num_negatives}")
        self.num_negatives = int(num_negatives)
        super().__init__(dataset, d_pos_s, d_neg_s, strict)

    def sample(self, n: int, rng=None) -> IndexBatch:
        rng = _as_generator(rng)
        seq = self._choose(n, self.usable[self.active], rng)
        T, dp, dn = self.lengths[seq], self.d_pos[seq], self.d_neg[seq]
        ref = self._references(seq, rng)
        pos = _sample_offset(ref, T, np.ones_like(ref), dp, rng)
        K = self.num_negatives
        rep = lambda a: np.repeat(a, K)  # noqa: E731
        neg = _sample_offset(rep(ref), rep(T), rep(dn), rep(T), rng).reshape(n, K)
        frames = np.concatenate([ref[:, None], pos[:, None], neg], axis=1)
        delta = np.abs(frames[:, :, None] - frames[:, None, :])
        return IndexBatch(np.repeat(seq[:, None], 2 + K, axis=1), frames,
                          {"delta": delta, "d_pos": dp, "d_neg": dn, "fps": self.fps[seq]})


class GravitySampler(_TemporalSampler):
    """Four equidistant frames ``t, t+δ, t+2δ, t+3δ`` of one video (gravity losses, Eqs. 7–12).

    ``step_s`` (δ in seconds) is converted per sequence (at least one
    frame). Extras: ``step`` (n,) int64 δ in frames, ``fps`` (n,) float64.
    """

    kind = "gravity"

    def __init__(self, dataset, step_s: float = 0.1, strict: bool = False):
        super().__init__(dataset, strict)
        if step_s <= 0:
            raise SamplerError(f"step_s must be > 0 seconds, got {step_s}")
        self.step_s = float(step_s)
        self.step = np.array([seconds_to_frames(step_s, m.fps) for m in self.metas], np.int64)
        self._select()
        self.usable = np.maximum(0, self.lengths - 3 * self.step)

    def _need(self, m):
        d = seconds_to_frames(self.step_s, m.fps)
        return 3 * d + 1, f"four frames {self.step_s:g} s ({d} frames) apart need ≥ {3 * d + 1} frames"

    def _advice(self) -> str:
        return "Lower step_s, or use longer sequences."

    def sample(self, n: int, rng=None) -> IndexBatch:
        rng = _as_generator(rng)
        seq = self._choose(n, self.usable[self.active], rng)
        start = np.floor(rng.random(n) * self.usable[seq]).astype(np.int64)
        step = self.step[seq]
        frames = start[:, None] + step[:, None] * np.arange(4)
        return IndexBatch(np.repeat(seq[:, None], 4, axis=1), frames, {"step": step, "fps": self.fps[seq]})


@dataclass
class _Take:
    name: str
    views: np.ndarray  # (V,) indices into records
    ids: np.ndarray  # (C,) sorted frame ids present in every view
    pos: np.ndarray  # (V, C) stored frame index of each common id in each view
    lo: int  # unsync |Δid| must be > lo ...
    hi: int  # ... and < hi (frame-id units)
    unsync: np.ndarray  # (C,) number of partners at lo < |Δid| < hi


class MultiViewSyncSampler(_TemporalSampler):
    """Pairs of frames from two different views of one take (Jenni & Favaro's sync/flip tasks).

    Each item picks a take (probability ∝ frames common to its views), an
    ordered pair of different views, and either a *synchronised* pair (the
    same frame id in both views, i.e. the same instant) or, with probability
    ``1 − sync_prob``, an *unsynchronised* one whose instants differ by
    ``min_offset_s < |Δt| < max_offset_s`` seconds. Instants are matched by
    the stored ``frame_ids`` (shared across the views of a take); seconds are
    converted to frame-id units with the view's fps × its frame-id step (so a
    store that kept every 2nd frame of a 50 fps take, at 25 fps, still measures
    time correctly).

    Extras: ``sync`` (n,) bool, ``flip`` (n,) bool (flip the *second* image
    horizontally; probability ``flip_prob``), ``dt`` (n,) int64 frame-id
    difference (0 for synchronised pairs).
    """

    kind = "views"

    def __init__(self, dataset, min_offset_s: float = 4 / 50, max_offset_s: float = 128 / 50,
                 sync_prob: float = 0.5, flip_prob: float = 0.5, strict: bool = False):
        super().__init__(dataset, strict)
        if not 0 <= min_offset_s < max_offset_s:
            raise SamplerError(f"need 0 ≤ min_offset_s < max_offset_s, got {min_offset_s}, {max_offset_s}")
        self.min_offset_s, self.max_offset_s = float(min_offset_s), float(max_offset_s)
        self.sync_prob, self.flip_prob = float(sync_prob), float(flip_prob)
        self.lengths = np.array([m.num_frames for m in self.metas], np.int64)
        self.fps = np.array([m.fps for m in self.metas], np.float64)
        self.takes, problems = self._build_takes()
        if problems and (strict or not self.takes):
            head = "no take qualifies" if not self.takes else f"{len(problems)} take(s) do not qualify"
            raise SamplerError(f"MultiViewSyncSampler: {head}: " + "; ".join(problems[:10])
                               + (" ..." if len(problems) > 10 else "") + ". " + self._advice())
        if problems:
            logger.warning("MultiViewSyncSampler: excluding %d take(s): %s. %s", len(problems),
                           "; ".join(problems[:10]) + (" ..." if len(problems) > 10 else ""), self._advice())
        self.excluded = [p.split(":")[0] for p in problems]
        self.active = np.unique(np.concatenate([t.views for t in self.takes]))

    def _advice(self) -> str:
        return ("Multi-view sync needs ≥ 2 views per take sharing frame ids and takes longer than "
                "max_offset_s; lower min/max_offset_s or add views.")

    def _frame_ids(self, i: int) -> np.ndarray:
        rec = self.records[i]
        if hasattr(rec, "get") and hasattr(rec, "has") and rec.has("frame_ids"):
            return np.asarray(rec["frame_ids"], np.int64)
        return np.arange(self.metas[i].num_frames, dtype=np.int64)

    def _groups(self) -> dict[str, list[int]]:
        """Take name → indices of its sequences (the views of one take)."""
        groups: dict[str, list[int]] = {}
        for i, m in enumerate(self.metas):
            groups.setdefault(m.take, []).append(i)
        return groups

    #: Views a take needs (a subclass that pairs a view with itself lowers it to 1).
    min_views = 2

    def _keep(self, name: str, idx: np.ndarray, common: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """Which common frame ids of take ``name`` may be sampled (``(C,)`` bool; default: all)."""
        return np.ones(len(common), bool)

    def _build_takes(self) -> tuple[list[_Take], list[str]]:
        takes, problems = [], []
        for name, members in self._groups().items():
            views = {}
            for i in members:  # one sequence per view (the first, if a view repeats)
                views.setdefault(self.metas[i].view, i)
            if len(views) < self.min_views:
                problems.append(f"{name!r}: only one view ({next(iter(views))!r})")
                continue
            idx = np.array(list(views.values()), np.int64)
            fids = [self._frame_ids(i) for i in idx]
            common = fids[0]
            for f in fids[1:]:
                common = np.intersect1d(common, f)
            if len(common) == 0:
                problems.append(f"{name!r}: its views share no frame id")
                continue
            orders = [np.argsort(f, kind="stable") for f in fids]
            pos = np.stack([o[np.searchsorted(f[o], common)] for f, o in zip(fids, orders)])
            keep = self._keep(name, idx, common, pos)
            if not keep.any():
                problems.append(f"{name!r}: no frame left to sample")
                continue
            common, pos = common[keep], pos[:, keep]
            f0 = fids[0]
            id_step = float(np.median(np.diff(np.sort(f0)))) if len(f0) > 1 else 1.0
            rate = self.fps[idx[0]] * id_step  # frame-id units per second
            lo = int(round(self.min_offset_s * rate))
            hi = int(round(self.max_offset_s * rate))
            # Partners c2 of each c1 at lo < |ids[c2] - ids[c1]| < hi, counted with searchsorted.
            a = np.searchsorted(common, common + lo, side="right")
            b = np.searchsorted(common, common + hi, side="left")
            c = np.searchsorted(common, common - hi, side="right")
            d = np.searchsorted(common, common - lo, side="left")
            unsync = np.maximum(0, b - a) + np.maximum(0, d - c)
            if self.sync_prob < 1 and not unsync.any():
                span = (common[-1] - common[0]) / rate
                problems.append(f"{name!r}: common frames span {span:.2f} s, too short for an unsynchronised "
                                f"pair {self.min_offset_s:g} s < |Δt| < {self.max_offset_s:g} s")
                continue
            takes.append(_Take(name, idx, common, pos, lo, hi, unsync))
        return takes, problems

    def sample(self, n: int, rng=None) -> IndexBatch:
        rng = _as_generator(rng)
        sizes = np.array([len(t.ids) for t in self.takes], np.float64)
        take_of = rng.choice(len(self.takes), size=n, p=sizes / sizes.sum())
        sync = rng.random(n) < self.sync_prob
        flip = rng.random(n) < self.flip_prob
        seq = np.empty((n, 2), np.int64)
        frames = np.empty((n, 2), np.int64)
        dt = np.zeros(n, np.int64)
        for k in np.unique(take_of):  # loop over takes, vectorised within one
            t = self.takes[k]
            sel = np.flatnonzero(take_of == k)
            m, V = len(sel), len(t.views)
            va = rng.integers(0, V, m)
            vb = (va + rng.integers(1, V, m)) % V if V > 1 else va  # a different view (if the take has one)
            s = sync[sel]
            c1 = np.empty(m, np.int64)
            c2 = np.empty(m, np.int64)
            # Synchronised: any common id.
            c1[s] = rng.integers(0, len(t.ids), int(s.sum()))
            c2[s] = c1[s]
            # Unsynchronised: c1 among ids with partners (∝ partner count), then a partner.
            u = np.flatnonzero(~s)
            if len(u):
                if not t.unsync.any():
                    raise SamplerError(f"take {t.name!r} has no unsynchronised pair; lower min/max_offset_s")
                w = t.unsync / t.unsync.sum()
                a1 = rng.choice(len(t.ids), size=len(u), p=w)
                ids = t.ids
                lo_r = np.searchsorted(ids, ids[a1] + t.lo, side="right")
                hi_r = np.searchsorted(ids, ids[a1] + t.hi, side="left")
                lo_l = np.searchsorted(ids, ids[a1] - t.hi, side="right")
                hi_l = np.searchsorted(ids, ids[a1] - t.lo, side="left")
                nr, nl = np.maximum(0, hi_r - lo_r), np.maximum(0, hi_l - lo_l)
                r = np.floor(rng.random(len(u)) * (nr + nl)).astype(np.int64)
                c1[u] = a1
                c2[u] = np.where(r < nl, lo_l + r, lo_r + (r - nl))
            seq[sel, 0], seq[sel, 1] = t.views[va], t.views[vb]
            frames[sel, 0], frames[sel, 1] = t.pos[va, c1], t.pos[vb, c2]
            dt[sel] = t.ids[c2] - t.ids[c1]
        return IndexBatch(seq, frames, {"sync": sync, "flip": flip, "dt": dt})


class MultiViewTripletSampler(MultiViewSyncSampler):
    """(anchor, positive, negative) for time-contrastive networks (Sermanet et al.; MV-CSS).

    The anchor is a frame of one view of a take, the positive the same instant
    in another view, the negative a frame of the anchor's own video at least
    ``d_neg_s`` seconds away. Columns ``[anchor, positive, negative]``
    (``k = 3``); extras ``dt`` (n,) int64 stored-frame distance of the negative.
    Takes whose videos are shorter than ``2·d_neg_s`` are excluded (some of
    their frames would have no negative).
    """

    kind = "tcn"

    def __init__(self, dataset, d_neg_s: float = 4.0, strict: bool = False):
        if d_neg_s <= 0:
            raise SamplerError(f"d_neg_s must be > 0 seconds, got {d_neg_s}")
        self.d_neg_s = float(d_neg_s)
        super().__init__(dataset, sync_prob=1.0, flip_prob=0.0, strict=strict)
        self.d_neg = np.array([seconds_to_frames(d_neg_s, m.fps) for m in self.metas], np.int64)
        ok = [bool((self.lengths[t.views] >= 2 * self.d_neg[t.views]).all()) for t in self.takes]
        keep = [t for t, good in zip(self.takes, ok) if good]
        short = [t.name for t, good in zip(self.takes, ok) if not good]
        msg = (f"{len(short)} take(s) have a video shorter than 2 × d_neg_s = {2 * d_neg_s:g} s: "
               + ", ".join(repr(n) for n in short[:10]) + (" ..." if len(short) > 10 else ""))
        if short and (strict or not keep):
            raise SamplerError(f"MultiViewTripletSampler: {msg}. Lower d_neg_s or use longer takes.")
        if short:
            logger.warning("MultiViewTripletSampler: excluding %s. Lower d_neg_s or use longer takes.", msg)
        self.takes = keep
        self.excluded = [*self.excluded, *short]
        self.active = np.unique(np.concatenate([t.views for t in self.takes]))

    def sample(self, n: int, rng=None) -> IndexBatch:
        rng = _as_generator(rng)
        pair = super().sample(n, rng)
        seq_a, ref = pair.seq[:, 0], pair.frames[:, 0]
        neg = _sample_offset(ref, self.lengths[seq_a], self.d_neg[seq_a], self.lengths[seq_a], rng)
        seq = np.concatenate([pair.seq, seq_a[:, None]], axis=1)
        frames = np.concatenate([pair.frames, neg[:, None]], axis=1)
        return IndexBatch(seq, frames, {"dt": np.abs(neg - ref)})


class SyncPairSampler(MultiViewSyncSampler):
    """Pairs for the synchronisation and flip tasks of Jenni & Favaro (``method=sync``).

    As :class:`MultiViewSyncSampler` — two different views of one take, at the
    same instant (``sync``) or at ``min_offset_s < |Δt| < max_offset_s`` — with
    what the pretext task needs besides:

    * **flipped pairs**: only a *synchronised* pair may have its second image
      mirrored (``flip``, probability ``flip_prob`` among synchronised pairs);
      an unsynchronised pair is never flipped, and the method scores the flip
      task on synchronised pairs only, so "unsynchronised" never tells "not
      flipped". That opens the other leak: "flipped" tells "synchronised", so a
      head that spots mirroring by any cue scores on the sync task without
      matching poses (on camera-lit renders the whole sync accuracy came from
      it, ``benchmarks/results/sync_pretext``). ``flip_unsync`` closes it:
      unsynchronised pairs are mirrored at the same rate (``flip`` is then true
      for them too; the flip task is still trained and scored on synchronised
      pairs only, the only ones where "mirrored" can be told from the pair);
    * **still frames skipped**: per take, the ``still_fraction`` of instants
      with the least motion (:func:`selfpose.data.motion.motion_energy` of the
      frames themselves, ``motion_gap_s`` before and after, averaged over the
      take's views — no label is read) are never drawn;
    * **a block of frames** (``frame_range``, ``(first, stop)`` frame ids;
      not a config key): only instants inside it are drawn — held-out frames
      of a short take, kept apart from the training frames;
    * **single view** (``single_view``, the ablation without a second camera):
      each video is its own take and both images come from it — a
      "synchronised" pair is one frame twice (the method augments the two
      copies differently), an unsynchronised one the same video at the same
      time offsets.

    * **groups of instants** (``instants`` = ``M`` > 1, not in the paper):
      each item is ``M`` instants of one take, every two of them
      ``min_offset_s < |Δt| < max_offset_s`` apart, seen from two views;
      columns ``[view a at t_1..t_M, view b at t_1..t_M]`` (``k = 2M``), so
      that the method scores all ``M × M`` pairs: the diagonal synchronised,
      the rest unsynchronised. ``sync_prob`` is then unused (the method weighs
      the two classes); ``flip`` mirrors each view-b image at ``flip_prob``
      (so every pair may be mirrored, as with ``flip_unsync``).

    Extras: ``sync``, ``flip`` (n,) bool, ``dt`` (n,) int64 frame-id difference;
    with ``instants`` = M > 1: ``flip`` (n, M) bool, ``dt`` (n, M, M) int64
    (``ids[b_j] − ids[a_i]``; ``sync`` = ``dt == 0``, (n, M, M)).
    ``energy``: per take name, the ``(C,)`` motion energy of its common ids
    (before skipping), for inspection.
    """

    kind = "sync"

    def __init__(self, dataset, min_offset_s: float = 4 / 50, max_offset_s: float = 128 / 50,
                 sync_prob: float = 0.5, flip_prob: float = 0.5, still_fraction: float = 0.2,
                 motion_gap_s: float = 0.08, single_view: bool = False, frame_range: tuple[int, int] | None = None,
                 flip_unsync: bool = False, instants: int = 1, strict: bool = False):
        if isinstance(instants, bool) or not isinstance(instants, (int, np.integer)) or instants < 1:
            raise SamplerError(f"instants must be an integer >= 1, got {instants!r}")
        self.instants = int(instants)
        if frame_range is not None and not (len(frame_range) == 2 and frame_range[0] < frame_range[1]):
            raise SamplerError(f"frame_range must be (first, stop) frame ids with first < stop, got {frame_range}")
        self.frame_range = None if frame_range is None else (int(frame_range[0]), int(frame_range[1]))
        if not 0 < sync_prob < 1:
            raise SamplerError(f"sync_prob must be in (0, 1): both classes are needed, got {sync_prob}")
        if not 0 <= flip_prob <= 1:
            raise SamplerError(f"flip_prob must be in [0, 1], got {flip_prob}")
        if not 0 <= still_fraction < 1:
            raise SamplerError(f"still_fraction must be in [0, 1), got {still_fraction}")
        if motion_gap_s <= 0:
            raise SamplerError(f"motion_gap_s must be > 0 seconds, got {motion_gap_s}")
        self.still_fraction, self.motion_gap_s = float(still_fraction), float(motion_gap_s)
        self.single_view = bool(single_view)
        self.flip_unsync = bool(flip_unsync)
        self.min_views = 1 if self.single_view else 2
        self.energy: dict[str, np.ndarray] = {}
        super().__init__(dataset, min_offset_s, max_offset_s, sync_prob, flip_prob, strict)

    def _advice(self) -> str:
        if self.single_view:
            return "Lower min/max_offset_s or still_fraction, or use longer videos."
        return super()._advice() + " (single_view: true pairs a camera with itself.)"

    def _groups(self) -> dict[str, list[int]]:
        if self.single_view:   # every video on its own: no second camera is ever used
            return {m.id: [i] for i, m in enumerate(self.metas)}
        return super()._groups()

    def _keep(self, name: str, idx: np.ndarray, common: np.ndarray, pos: np.ndarray) -> np.ndarray:
        inside = np.ones(len(common), bool)
        if self.frame_range is not None:
            inside = (common >= self.frame_range[0]) & (common < self.frame_range[1])
        if self.still_fraction == 0:
            return inside
        from selfpose.data.motion import motion_energy, moving_mask

        per_view = []
        for v, i in enumerate(idx):
            rec = self.records[i]
            if not (hasattr(rec, "has") and rec.has("frames")):
                raise SamplerError(f"skipping still frames reads the frames, and sequence {self.metas[i].id!r} "
                                   "has none here; build the sampler over the opened dataset, or set "
                                   "still_fraction: 0")
            gap = seconds_to_frames(self.motion_gap_s, self.metas[i].fps)
            per_view.append(motion_energy(rec["frames"], gap=gap)[pos[v]])
        energy = np.mean(per_view, axis=0)
        self.energy[name] = energy
        keep = inside.copy()
        keep[inside] = moving_mask(energy[inside], self.still_fraction)   # the least-moving share of the range
        return keep

    def sample(self, n: int, rng=None) -> IndexBatch:
        if self.instants > 1:
            return self._sample_groups(n, _as_generator(rng))
        batch = super().sample(n, rng)
        if not self.flip_unsync:
            batch.extras["flip"] = batch.extras["flip"] & batch.extras["sync"]
        return batch

    #: Windows tried per item before a take is declared too short for ``instants`` instants.
    _group_tries = 50

    def _group(self, t: _Take, rng: np.random.Generator) -> np.ndarray:
        """``(M,)`` positions in ``t.ids`` of ``M`` instants, every two ``lo < |Δid| < hi`` apart."""
        M, ids = self.instants, t.ids
        for _ in range(self._group_tries):
            # A window of hi ids holding a random instant, at a random place: every two ids inside it are < hi
            # apart; then instants drawn from it at random, each kept when it is > lo from those kept.
            start = ids[rng.integers(len(ids))] - rng.integers(0, t.hi)
            a, b = np.searchsorted(ids, start, side="left"), np.searchsorted(ids, start + t.hi, side="left")
            chosen: list[int] = []
            for c in a + rng.permutation(b - a):
                if all(abs(int(ids[c]) - int(ids[x])) > t.lo for x in chosen):
                    chosen.append(int(c))
                    if len(chosen) == M:
                        return np.array(chosen, np.int64)
        raise SamplerError(f"take {t.name!r}: could not draw {M} instants more than {t.lo} and less than {t.hi} "
                           f"frame ids apart in {self._group_tries} windows; lower sampler.sync_instants or "
                           "sync_min_offset_s, or raise sync_max_offset_s")

    def _sample_groups(self, n: int, rng: np.random.Generator) -> IndexBatch:
        M = self.instants
        sizes = np.array([len(t.ids) for t in self.takes], np.float64)
        take_of = rng.choice(len(self.takes), size=n, p=sizes / sizes.sum())
        seq = np.empty((n, 2 * M), np.int64)
        frames = np.empty((n, 2 * M), np.int64)
        dt = np.empty((n, M, M), np.int64)
        for i, k in enumerate(take_of):
            t = self.takes[k]
            V = len(t.views)
            va = int(rng.integers(0, V))
            vb = (va + int(rng.integers(1, V))) % V if V > 1 else va
            c = self._group(t, rng)
            seq[i, :M], seq[i, M:] = t.views[va], t.views[vb]
            frames[i, :M], frames[i, M:] = t.pos[va, c], t.pos[vb, c]
            dt[i] = t.ids[c][None, :] - t.ids[c][:, None]
        flip = rng.random((n, M)) < self.flip_prob
        return IndexBatch(seq, frames, {"sync": dt == 0, "flip": flip, "dt": dt})


@dataclass(frozen=True)
class SamplerRecipe:
    """How :func:`make_sampler` builds one sampler name.

    Attributes:
        factory: ``factory(dataset, **kwargs) -> sampler``.
        from_config: ``from_config(sampler_cfg) -> kwargs`` read from the
            pretraining config's ``sampler`` section (None: none).
        defaults: kwargs of this name that differ from the factory's own defaults.
    """

    factory: Callable
    from_config: Callable | None = None
    defaults: dict = field(default_factory=dict)


SAMPLERS: dict[str, SamplerRecipe] = {}


def register_sampler(name: str, factory: Callable, from_config: Callable | None = None, replace: bool = False,
                     **defaults) -> None:
    """Make ``name`` a sampler :func:`make_sampler` builds (and methods may name).

    ``factory(dataset, **kwargs)`` builds it; ``from_config(sampler_cfg)``
    gives the kwargs taken from the pretraining config's ``sampler`` section;
    ``defaults`` are kwargs fixed for this name (explicit kwargs still win).
    """
    if name in SAMPLERS and not replace:
        raise SamplerError(f"sampler {name!r} is already registered; pick another name or pass replace=True")
    SAMPLERS[name] = SamplerRecipe(factory, from_config, dict(defaults))


def make_sampler(kind: str, dataset, config=None, **kwargs) -> _TemporalSampler:
    """The one sampler factory: build sampler ``kind`` (a registered name) over ``dataset``.

    Names: ``dsl``, ``contrastive``, ``gravity``, ``views`` (synchronised
    pairs of views of one instant; ``sync_prob``/``flip_prob`` mix in
    unsynchronised and flipped pairs), ``tcn``, ``sync`` (the pairs of the
    synchronisation method, :class:`SyncPairSampler`) — plus any added with
    :func:`register_sampler`.

    Args:
        kind: the sampler's name.
        dataset: sequence metadata or a dataset (see the samplers).
        config: optional pretraining ``sampler`` section
            (:class:`~selfpose.methods.temporal.SamplerConfig`); its values
            become the sampler's arguments (distances in seconds...).
        kwargs: arguments that override the name's defaults and the config.
    """
    if kind not in SAMPLERS:
        raise SamplerError(f"unknown sampler {kind!r}; choose one of {', '.join(SAMPLERS)}")
    r = SAMPLERS[kind]
    args = {**r.defaults, **(r.from_config(config) if config is not None and r.from_config else {}), **kwargs}
    return r.factory(dataset, **args)


def _distances(c) -> dict:
    return {"d_pos_s": c.d_pos_s, "d_neg_s": c.d_neg_s}


register_sampler("dsl", DSLSampler, _distances)
register_sampler("contrastive", ContrastivePairSampler,
                 lambda c: {**_distances(c), "num_negatives": c.num_negatives})
register_sampler("gravity", GravitySampler, lambda c: {"step_s": c.gravity_step_s})
# Synchronised pairs by default: what methods that train on views (NSD) need.
register_sampler("views", MultiViewSyncSampler, sync_prob=1.0, flip_prob=0.0)
register_sampler("tcn", MultiViewTripletSampler, lambda c: {"d_neg_s": c.d_neg_s})
register_sampler("sync", SyncPairSampler,
                 lambda c: {"min_offset_s": c.sync_min_offset_s, "max_offset_s": c.sync_max_offset_s,
                            "sync_prob": c.sync_prob, "flip_prob": c.flip_prob, "still_fraction": c.still_fraction,
                            "motion_gap_s": c.motion_gap_s, "single_view": c.single_view,
                            "flip_unsync": c.flip_unsync, "instants": c.sync_instants})


__all__ = ("SamplerError", "IndexBatch", "DSLSampler", "ContrastivePairSampler", "GravitySampler",
           "MultiViewSyncSampler", "MultiViewTripletSampler", "SyncPairSampler", "SAMPLERS", "SamplerRecipe", "make_sampler",
           "register_sampler", "paper_distances_s", "seconds_to_frames", "PAPER_DISTANCES")
