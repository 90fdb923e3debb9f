"""2D keypoint noise: the failure modes of real 2D detectors, seeded and configurable.

A lifter trained and tested on projected ground-truth 2D never meets a detector's
errors. :func:`corrupt` applies them to clean 2D joints so a lifter can be trained
and tested for detector input without running a detector. Each failure mode is a
pure function of the joints and a numpy ``Generator``:

1. :func:`swap_limbs` — left/right confusion of a forearm or a lower leg (the
   detector labels the left wrist as the right one: side views, crossed legs).
2. :func:`jitter` — Gaussian localisation error of every joint (heatmap
   resolution, blur, clothing), larger at the extremities.
3. :func:`outliers` — a joint detected far away: at a random displacement, or on
   another body part (double counting, e.g. both wrists on one hand).
4. image bounds — a joint outside the image cannot be detected: it is missing.
5. :func:`missing_mask` — i.i.d. missing joints (a low-confidence keypoint
   thresholded away: self-occlusion).
6. :func:`dropout_mask` — runs of consecutive frames where a joint (occlusion by
   an object) or the whole person (the person detector lost them) is missing.

They compose in that order in :func:`corrupt` (geometric errors first, on the
true positions, then the masks, so a missing joint hides whatever error it had).
Missing joints are NaN in the output and 0 in a visibility channel.

Units: pixels of the image the 2D joints live in, OpenCV convention (integer
coordinates are pixel centres, so the image spans ``[-0.5, W - 0.5]``). The
default magnitudes are for Human3.6M's 1000×1000 images, where a person's 2D
height (head top to lowest ankle) has a median of 319 px over subject S8's mocap
seen through S8's four cameras (sitting actions included;
``benchmarks/lifting_noise_stats.py``); for other resolutions scale the pixel
settings by the ratio of person heights.

Randomness: :func:`corrupt` seeds one child stream per failure mode from ``rng``
before anything else, so switching one mode on or off leaves the others' draws
unchanged. Rare events (outliers, swaps, missing joints, dropout starts) are
drawn sparsely — the gaps between them, not one uniform per joint — and the
Gaussian jitter by Box–Muller in float32, so drawing fresh noise for every
training batch is cheap (``benchmarks/bench_noise.py``). In a data loader, seed per sample with :func:`sample_rng`::

    def __getitem__(self, i):                       # a torch Dataset
        rng = sample_rng(self.seed, self.epoch, i)  # same (seed, epoch, i) → same noise
        noisy, visible = corrupt(joints2d[i], self.noise, rng, image_size=(h, w))
        x = np.where(visible[..., None] > 0, noisy, 0.0)   # the network never sees NaN
        return torch.from_numpy(x).float(), torch.from_numpy(visible)

Everything here is numpy; the loader converts to torch after corruption.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np

from selfpose.config import ConfigError
from selfpose.errors import SelfposeError
from selfpose.geometry.skeleton import H36M17


class NoiseInputError(SelfposeError, ValueError):
    """The joints given to a noise function have the wrong shape."""


# Per-joint jitter factors (H36M17 order), normalised to mean 1 over the 17 joints.
# Derived from the stacked-hourglass per-joint PCKh@0.5 on the MPII test set
# (Newell et al., ECCV 2016: head 98.2, shoulder 96.3, elbow 91.2, wrist 87.1,
# hip 90.1, knee 87.4, ankle 83.6 — figures as we recall them, not re-checked
# here) by assuming an isotropic Gaussian error, for which PCK = 1 − exp(−r²/2σ²),
# so σ ∝ 1/√(−2 ln(1 − PCK)). That assumption folds gross errors into σ, so the
# factors only say *which* joints are worse, not by how much in px. Pelvis =
# hip, spine = mean of hip and shoulder, thorax = shoulder, neck/nose and head
# top = head (the detectors lifting papers use predict these directly or as
# averages of their neighbours; a judgement).
DEFAULT_JOINT_SCALE: tuple[float, ...] = (
    1.04,  # pelvis
    1.04, 1.10, 1.17,  # right hip, knee, ankle
    1.04, 1.10, 1.17,  # left hip, knee, ankle
    0.95, 0.87, 0.79, 0.79,  # spine, thorax, neck/nose, head
    0.87, 1.01, 1.10,  # left shoulder, elbow, wrist
    0.87, 1.01, 1.10,  # right shoulder, elbow, wrist
)

# Limb pairs that a swap exchanges: (left joints, right joints) of the forearm
# and of the lower leg. Hips and shoulders stay: confusing them is a whole-body
# front/back flip, a different failure.
LIMB_PAIRS: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...] = tuple(
    (tuple(H36M17.index(f"left_{j}") for j in names), tuple(H36M17.index(f"right_{j}") for j in names))
    for names in (("elbow", "wrist"), ("knee", "ankle"))
)


@dataclass
class NoiseConfig:
    """2D detector noise; the defaults are the benchmark's "default detector noise".

    Pixel values are for Human3.6M's 1000×1000 images (a person's 2D height
    ≈ 320 px). Every default is a judgement aimed at a modern heatmap detector
    fine-tuned on Human3.6M (CPN/HRNet-like), whose mean 2D joint error is, as
    we recall the lifting literature (not re-checked here), between about 5 px
    (HRNet) and 9 px (stacked hourglass); they are not fitted to any
    detector's output. Together they give a mean error of 5.9 px over the
    visible joints (median 4.7, 1.2% beyond 20 px) and 3.5% missing joints on
    S8's projections (``benchmarks/lifting_noise_stats.py``, seed 0).

    Attributes:
        jitter_std_px: Gaussian localisation error, std per axis in px, before
            the per-joint factors. 4 px → mean error ≈ 5 px per joint (the 2D
            Euclidean error of an isotropic Gaussian averages σ·√(π/2)).
        jitter_joint_scale: per-joint factors on ``jitter_std_px`` (one per
            joint; ``()``: 1 for every joint). Default :data:`DEFAULT_JOINT_SCALE`:
            extremities (wrists, ankles) noisier than head and shoulders.
        outlier_prob: probability per joint per frame of a gross error
            (detectors' failures cluster in the heavy tail; 1% is a judgement).
        outlier_px: mean displacement of a displaced outlier, px; the length is
            uniform in [0.5, 1.5]·``outlier_px`` and the direction uniform.
            50 px ≈ a forearm's length in Human3.6M's images (a judgement).
        outlier_jump_frac: fraction of outliers that land on another joint's
            (jittered) position instead — a detector firing on the wrong body
            part.
        swap_prob: probability per frame per limb pair (forearms; lower legs)
            that left and right are exchanged. 0.5% is a judgement.
        missing_prob: probability per joint per frame that the joint is missing
            (low confidence). 1% is a judgement; Human3.6M has little occlusion.
        dropout_joint_prob: probability per joint per frame, while the joint is
            visible, that a run of missing frames starts (occlusion by an
            object or another limb).
        dropout_person_prob: probability per frame, while the person is
            visible, that every joint goes missing for a run (the person
            detector loses them: blur, leaving the frame).
        dropout_mean_frames: mean run length in frames (geometric lengths ≥ 1).
            10 frames = 0.4 s at the mocap's 25 fps.
        person_px: 0 (default): the px magnitudes (jitter, outliers) are absolute.
            > 0: they hold for a person whose 2D extent (the larger side of the
            joints' bounding box, median over the frames of a window) is this
            many px, and scale with each window's person — a detector's error
            grows with the person's size in the image, so one setting serves
            data whose people fill 10% or 90% of the frame (the real-video
            lifter's varied cameras; ``configs/lifter_video.yaml``).
        outside_image: what happens to a joint outside the image (when
            :func:`corrupt` gets an ``image_size``): ``missing`` (a detector
            cannot see it), or ``keep``.
    """

    jitter_std_px: float = 4.0
    jitter_joint_scale: tuple[float, ...] = DEFAULT_JOINT_SCALE
    outlier_prob: float = 0.01
    outlier_px: float = 50.0
    outlier_jump_frac: float = 0.3
    swap_prob: float = 0.005
    missing_prob: float = 0.01
    dropout_joint_prob: float = 0.002
    dropout_person_prob: float = 0.0005
    dropout_mean_frames: float = 10.0
    person_px: float = 0.0
    outside_image: Literal["missing", "keep"] = "missing"

    def __post_init__(self) -> None:
        # Configs built in code skip config._coerce, so NaN and types are checked here too.
        for name in ("jitter_std_px", "outlier_px", "dropout_mean_frames", "person_px"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ConfigError(f"noise.{name} must be a finite number ≥ 0, got {v!r}")
        for name in ("outlier_prob", "outlier_jump_frac", "swap_prob", "missing_prob",
                     "dropout_joint_prob", "dropout_person_prob"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0 <= v <= 1):
                raise ConfigError(f"noise.{name} must be a probability in [0, 1], got {v!r}")
        if (self.dropout_joint_prob > 0 or self.dropout_person_prob > 0) and self.dropout_mean_frames < 1:
            raise ConfigError(f"noise.dropout_mean_frames must be ≥ 1 when dropouts are on, "
                              f"got {self.dropout_mean_frames}")
        scale = tuple(self.jitter_joint_scale)
        if not all(isinstance(s, (int, float)) and math.isfinite(s) and s >= 0 for s in scale):
            raise ConfigError(f"noise.jitter_joint_scale must be finite numbers ≥ 0, got {scale}")
        self.jitter_joint_scale = tuple(float(s) for s in scale)
        if self.outside_image not in ("missing", "keep"):
            raise ConfigError(f"noise.outside_image must be 'missing' or 'keep', got {self.outside_image!r}")


def _check_joints(joints2d: np.ndarray) -> np.ndarray:
    j = np.asarray(joints2d)
    if j.ndim < 3 or j.shape[-1] != 2:
        raise NoiseInputError(f"2D joints must have shape (T, J, 2) or (N, T, J, 2), got {j.shape}")
    return j


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator for sample ``index`` of ``epoch``: independent across (seed, epoch, index), reproducible."""
    return np.random.default_rng([int(seed), int(epoch), int(index)])


def _mode_streams(rng: np.random.Generator, n: int):
    """``stream(k)`` for k < n: independent generators, all seeded from ``rng`` now (4 words each).

    Each call of ``stream(k)`` re-seeds one shared PCG64 to stream k's random
    128-bit state and odd increment and returns a generator on it, so the
    streams must be used one after another. Why not ``default_rng(seed)`` per
    stream: building a bit generator costs ~10 µs (its SeedSequence), setting
    a state ~1 µs, and :func:`corrupt` needs six per batch.
    """
    words = rng.bit_generator.random_raw(4 * n).tolist()
    bitgen = np.random.PCG64(0)

    def stream(k: int) -> np.random.Generator:
        a, b, c, d = words[4 * k: 4 * k + 4]
        bitgen.state = {"bit_generator": "PCG64", "state": {"state": (a << 64) | b, "inc": (c << 64) | d | 1},
                        "has_uint32": 0, "uinteger": 0}
        return np.random.Generator(bitgen)

    return stream


# Below this rate, Bernoulli draws are made sparse (one geometric gap per success,
# ~9 ns each) rather than dense (one float32 uniform per trial, ~2.4 ns each with
# the compare; timeit on the dev machine): at the failure modes' ~1% rates the sparse
# draw costs a tenth or less; the break-even is near p = 0.25, this keeps a margin.
_SPARSE_MAX_P = 0.1


def _bernoulli_indices(n: int, p: float, rng: np.random.Generator) -> np.ndarray:
    """Sorted flat indices in ``[0, n)``, each present independently with probability ``p``."""
    if p <= 0 or n == 0:
        return np.zeros(0, dtype=np.int64)
    if p >= _SPARSE_MAX_P:
        return np.flatnonzero(rng.random(n, dtype=np.float32) < p)
    # The gaps between successive successes of a Bernoulli(p) sequence are geometric(p) (≥ 1).
    chunk = int(n * p + 5 * math.sqrt(n * p) + 16)   # covers n trials in one draw but rarely
    parts, first = [], 0                             # first: the trial index a gap of 1 lands on
    while first < n:
        # (gaps ≥ n all end the sequence: clipped so a tiny p cannot overflow the sum)
        idx = np.cumsum(np.minimum(rng.geometric(p, chunk), n)) + (first - 1)
        parts.append(idx)
        first = int(idx[-1]) + 1
    idx = np.concatenate(parts) if len(parts) > 1 else parts[0]
    return idx[: np.searchsorted(idx, n)]


def _standard_normal_f32(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """``shape`` i.i.d. N(0, 1) float32, by Box–Muller on float32 uniforms.

    Once the rare modes draw sparsely, the Gaussians are most of :func:`corrupt`'s
    time on a clip batch; numpy's float32 ziggurat ``standard_normal`` took ≈10 ns a
    value on the dev machine against ≈2.5–3.5 ns for this (timeit, 69 632 values,
    one thread, machine shared with other jobs). 24-bit uniforms cap |z| at
    √(2·24·ln 2) ≈ 5.8, a tail of probability 2e-8.
    """
    n = math.prod(shape)
    h = (n + 1) // 2
    u = rng.random(2 * h, dtype=np.float32)
    r, a = u[:h], u[h:]
    np.subtract(np.float32(1), r, out=r)          # in (0, 1]: exact in float32, never log(0)
    np.log(r, out=r)
    r *= np.float32(-2)
    np.sqrt(r, out=r)
    a *= np.float32(2 * np.pi)
    z = np.empty(2 * h, dtype=np.float32)
    np.cos(a, out=z[:h])
    np.sin(a, out=z[h:])
    z[:h] *= r
    z[h:] *= r
    return z[:n].reshape(shape)


def _joint_scale(joint_scale, num_joints: int) -> np.ndarray:
    scale = np.ones(num_joints) if len(joint_scale) == 0 else np.asarray(joint_scale, dtype=np.float64)
    if scale.shape != (num_joints,):
        raise ConfigError(f"noise.jitter_joint_scale has {scale.size} factors but the joints have "
                          f"{num_joints}; give one factor per joint (or [] for all 1)")
    return scale


def _jitter_(j: np.ndarray, std_px: float, joint_scale, rng: np.random.Generator) -> None:
    """:func:`jitter` in place on a C-contiguous float array ``j``."""
    J = j.shape[-2]
    scale = _joint_scale(joint_scale, J)
    # Frames as rows of J·2 values: a (J·2,) row of stds broadcasts along a long contiguous inner loop
    # (a (J, 1) one against (..., J, 2) runs numpy's inner loop 2 values at a time, ~3x slower).
    rows = j.reshape(-1, 2 * J)
    noise = _standard_normal_f32(rows.shape, rng)
    noise *= np.repeat(std_px * scale, 2).astype(np.float32)
    rows += noise


def jitter(joints2d: np.ndarray, std_px: float, joint_scale: tuple[float, ...] | np.ndarray,
           rng: np.random.Generator) -> np.ndarray:
    """Gaussian localisation error.

    Args:
        joints2d: ``(..., J, 2)`` px.
        std_px: std per axis in px.
        joint_scale: ``(J,)`` per-joint factors on ``std_px`` (empty: all 1).

    Returns:
        ``(..., J, 2)`` px, ``joints2d + N(0, (std_px · scale_j)²)`` per axis, independently per frame.
    """
    j = np.array(joints2d, dtype=np.float64, order="C")
    _jitter_(j, std_px, joint_scale, rng)
    return j


def _outliers_(j: np.ndarray, prob: float, magnitude_px: float, jump_frac: float,
               rng: np.random.Generator) -> np.ndarray:
    """:func:`outliers` in place on a C-contiguous float array ``j``; returns the flat indices of the hit joints."""
    J = j.shape[-2]
    flat = j.reshape(-1, 2)
    hit = _bernoulli_indices(flat.shape[0], prob, rng)
    k = hit.size
    if k == 0:
        return hit
    # Only the hit joints draw the rest (~1% of the joints), in one call: angle, length, jump?, other joint.
    u = rng.random((4, k))
    angle = (2 * np.pi) * u[0]
    length = magnitude_px * (0.5 + u[1])
    new = flat[hit] + np.stack([np.cos(angle), np.sin(angle)], axis=-1) * length[:, None]
    if J > 1:
        # Another joint, uniformly among the J-1 others: draw from J-1 and skip self.
        me = hit % J
        other = (u[3] * (J - 1)).astype(np.int64)
        other += other >= me
        # Read before any write: a jump lands on the other joint's position before outliers.
        new = np.where((u[2] < jump_frac)[:, None], flat[hit - me + other], new)
    flat[hit] = new
    return hit


def outliers(joints2d: np.ndarray, prob: float, magnitude_px: float, jump_frac: float,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Gross errors: a joint replaced by a far-away point.

    Each joint of each frame independently is an outlier with probability
    ``prob``. An outlier jumps, with probability ``jump_frac``, onto another
    joint of the same frame (uniform among the others, its position in
    ``joints2d``); otherwise it moves by a vector of uniform direction and
    length uniform in ``[0.5, 1.5]·magnitude_px``.

    Args:
        joints2d: ``(..., J, 2)`` px.

    Returns:
        ``(joints (..., J, 2) px, hit (..., J) bool)``.
    """
    j = np.array(joints2d, dtype=np.float64, order="C")
    hit = np.zeros(j.shape[:-1], dtype=bool)
    hit.reshape(-1)[_outliers_(j, prob, magnitude_px, jump_frac, rng)] = True
    return j, hit


def _swap_limbs_(j: np.ndarray, prob: float, rng: np.random.Generator, limbs) -> np.ndarray:
    """:func:`swap_limbs` in place on a C-contiguous float array ``j``; returns the flat indices into ``(..., L)``."""
    J, L = j.shape[-2], len(limbs)
    for left, right in limbs:
        if max(max(left), max(right)) >= J:
            raise NoiseInputError(f"limb swaps index joints {left}/{right} but the joints have "
                                  f"{J} (swaps need the H36M17 order)")
    frames = j.reshape(-1, J, 2)
    hit = _bernoulli_indices(frames.shape[0] * L, prob, rng)
    if hit.size == 0:                      # the common case at ~0.5% per frame and limb
        return hit
    frame, limb = np.divmod(hit, L)
    # Every limb reads the unswapped joints before any limb writes (limbs sharing joints: the last one wins).
    moves = []
    for k, (left, right) in enumerate(limbs):
        f = frame[limb == k][:, None]
        if f.size:
            moves.append((f, list(left), list(right), frames[f, list(left)], frames[f, list(right)]))
    for f, left, right, was_left, was_right in moves:
        frames[f, left] = was_right
        frames[f, right] = was_left
    return hit


def swap_limbs(joints2d: np.ndarray, prob: float, rng: np.random.Generator,
               limbs=LIMB_PAIRS) -> tuple[np.ndarray, np.ndarray]:
    """Left/right confusion: per frame and limb pair, exchange the left and right joints.

    Args:
        joints2d: ``(..., J, 2)`` px, H36M17 order (``limbs`` index it).
        prob: probability per frame per limb pair.
        limbs: ``((left joints, right joints), …)``; default :data:`LIMB_PAIRS`
            (forearms: elbow, wrist; lower legs: knee, ankle).

    Returns:
        ``(joints (..., J, 2) px, swapped (..., L) bool)`` with L = ``len(limbs)``.
    """
    j = np.array(joints2d, dtype=np.float64, order="C")
    swapped = np.zeros(j.shape[:-2] + (len(limbs),), dtype=bool)
    swapped.reshape(-1)[_swap_limbs_(j, prob, rng, limbs)] = True
    return j, swapped


def missing_mask(shape: tuple[int, ...], prob: float, rng: np.random.Generator) -> np.ndarray:
    """i.i.d. missing joints: ``(..., J)`` bool, True with probability ``prob`` (``shape`` is ``(..., J)``)."""
    out = np.zeros(math.prod(shape), dtype=bool)
    out[_bernoulli_indices(out.size, prob, rng)] = True
    return out.reshape(shape)


def dropout_mask(shape: tuple[int, ...], start_prob: float, mean_frames: float,
                 rng: np.random.Generator) -> np.ndarray:
    """Runs of consecutive missing frames, one independent stream per trailing index.

    Each stream is a two-state Markov chain over frames: from visible, a
    dropout starts with probability ``start_prob``; a dropout ends after each
    frame with probability ``1/mean_frames``, so run lengths are geometric
    (≥ 1) with mean ``mean_frames``. Streams start visible before frame 0.
    The stationary missing fraction is ``p·L / (1 + p·L)``.

    Args:
        shape: ``(..., T, K)``: frames on axis -2; K streams (K = J joints, or 1 for the whole person).

    Returns:
        ``(..., T, K)`` bool, True where missing.
    """
    T, K = shape[-2], shape[-1]
    out = np.zeros(shape, dtype=bool)
    S = math.prod(shape[:-2]) * K          # streams, numbered lead * K + k
    if start_prob <= 0 or T == 0 or S == 0:
        return out
    # Event form of the chain, no loop over frames: a start is drawn at every
    # frame of every stream (flat index s·T + t), and a start only counts at a
    # visible frame whose predecessor is visible — a start inside a run, or on
    # the frame a run ends before, is ignored, as the chain ignores it.
    cand = _bernoulli_indices(S * T, start_prob, rng)
    c = cand.size
    if c == 0:
        return out
    if T == 1:                             # one frame: a run is its start
        out.reshape(-1)[cand] = True
        return out
    length = rng.geometric(min(1.0, 1.0 / mean_frames), c)
    s, t = np.divmod(cand, T)
    stop = np.minimum(t + length, T)       # the run covers frames [t, stop)
    first = np.empty(c, dtype=bool)        # each stream's first start counts
    first[0] = True
    np.not_equal(s[1:], s[:-1], out=first[1:])
    if not first.all():                    # some stream has several starts: follow its chain of runs
        # The next start that can count after each run: the first at frame ≥ stop + 1 of the same stream.
        nxt = np.searchsorted(cand, s * T + stop + 1)
        same = nxt < c                     # (past the stream's last frame the search lands in a later stream)
        same[same] = s[nxt[same]] == s[same]
        nxt[~same] = c
        counts = np.zeros(c, dtype=bool)
        cur = np.flatnonzero(first)
        while cur.size:                    # at most T/2 rounds, usually a few
            counts[cur] = True
            cur = nxt[cur]
            cur = cur[cur < c]
        s, t, stop = s[counts], t[counts], stop[counts]
    n = stop - t
    # Every frame of every counted run, as flat indices of the (..., T, K) output.
    run_frame = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n) + np.repeat(t, n)
    s = np.repeat(s, n)
    out.reshape(-1)[(s // K) * (T * K) + run_frame * K + s % K] = True
    return out


def _pairs_all(ok: np.ndarray, value: bool) -> np.ndarray:
    """``(..., J)`` bool: ``ok[..., 0] & ok[..., 1]`` (``value=True``) or its negation, for a bool ``(..., J, 2)``.

    Reads each (x, y) pair of bools as one uint16 (both true: 0x0101 in either
    byte order) — a single contiguous pass instead of strided per-axis passes.
    """
    both = np.ascontiguousarray(ok).view(np.uint16)[..., 0]
    return both == 0x0101 if value else both != 0x0101


def outside_mask(joints2d: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """``(..., J)`` bool: joints outside an image of ``(H, W)`` px (pixel centres at integers).

    ``H`` and ``W`` may be arrays that broadcast against ``(..., J)`` (one image
    size per frame). Non-finite joints are outside.
    """
    h, w = image_size
    j = np.asarray(joints2d)
    if np.ndim(h) == 0 and np.ndim(w) == 0:
        # One image: test both coordinates against the larger side in one pass, then the smaller side's axis.
        ok = j >= -0.5
        ok &= j <= max(w, h) - 0.5
        if w != h:
            axis = 0 if w < h else 1
            ok[..., axis] &= j[..., axis] <= min(w, h) - 0.5
        return _pairs_all(ok, False)
    x, y = j[..., 0], j[..., 1]
    return ~((x >= -0.5) & (x <= w - 0.5) & (y >= -0.5) & (y <= h - 0.5))


def person_scale(joints2d: np.ndarray, person_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Per window, the person's 2D extent over ``person_px`` and the person's centre.

    Args:
        joints2d: ``(..., T, J, 2)`` px; NaN where missing.
        person_px: the reference extent.

    Returns:
        ``(scale (..., 1, 1, 1), centre (..., 1, 1, 2))``: the median over the
        window's frames of the larger side of the joints' bounding box, divided
        by ``person_px`` (1 where no frame has two finite joints), and the median
        bounding-box centre (0 likewise).
    """
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # all-NaN frames and windows are handled below
        lo, hi = np.nanmin(joints2d, axis=-2), np.nanmax(joints2d, axis=-2)       # (..., T, 2)
        extent = np.nanmedian(np.max(hi - lo, axis=-1), axis=-1)                   # (...)
        centre = np.nanmedian((lo + hi) / 2, axis=-2)                              # (..., 2)
    extent = np.where(np.isfinite(extent) & (extent > 0), extent, person_px)
    centre = np.where(np.isfinite(centre), centre, 0.0)
    dtype = joints2d.dtype
    return (extent / person_px).astype(dtype)[..., None, None, None], centre.astype(dtype)[..., None, None, :]


def corrupt(joints2d: np.ndarray, cfg: NoiseConfig, rng: np.random.Generator,
            image_size: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Apply detector noise to clean 2D joints.

    Args:
        joints2d: ``(T, J, 2)`` or ``(N, T, J, 2)`` px (any leading dims before T).
            Non-finite input joints count as missing.
        cfg: the noise settings. All rates and magnitudes zero returns the input
            unchanged (visible all 1 for finite input), except that joints outside
            ``image_size`` still go missing unless ``outside_image == "keep"``
            (:func:`zero_noise` sets it).
        rng: the only source of randomness (see :func:`sample_rng`).
        image_size: ``(H, W)`` px; with ``cfg.outside_image == "missing"``,
            joints that end up outside it are missing. None: no bounds.

    Returns:
        ``(noisy (..., T, J, 2) px (float32 input stays float32, else float64), NaN where missing; visible (..., T, J) float32 0/1)``.
    """
    x = _check_joints(joints2d)
    out_dtype = np.result_type(x.dtype, np.float32)
    # Work in place on one copy, in float32 for float32 input (half the memory traffic), else float64.
    j = np.array(x, dtype=np.float32 if out_dtype == np.float32 else np.float64, order="C")
    # One child stream per failure mode, drawn first: a mode switched off does not shift the others.
    stream = _mode_streams(rng, 6)
    if cfg.person_px > 0:   # noise in units of the window's person (see NoiseConfig.person_px)
        scale, centre = person_scale(j, cfg.person_px)
        j -= centre
        j /= scale
    if cfg.swap_prob > 0:
        _swap_limbs_(j, cfg.swap_prob, stream(0), LIMB_PAIRS)
    if cfg.jitter_std_px > 0:
        _jitter_(j, cfg.jitter_std_px, cfg.jitter_joint_scale, stream(1))
    if cfg.outlier_prob > 0:
        _outliers_(j, cfg.outlier_prob, cfg.outlier_px, cfg.outlier_jump_frac, stream(2))
    if cfg.person_px > 0:
        j *= scale
        j += centre
    if image_size is not None and cfg.outside_image == "missing":
        gone = outside_mask(j, image_size)   # NaN compares False: non-finite joints are outside too
    else:
        gone = _pairs_all(np.isfinite(j), False)
    if cfg.missing_prob > 0:
        gone.reshape(-1)[_bernoulli_indices(gone.size, cfg.missing_prob, stream(3))] = True
    if cfg.dropout_joint_prob > 0:
        gone |= dropout_mask(gone.shape, cfg.dropout_joint_prob, cfg.dropout_mean_frames, stream(4))
    if cfg.dropout_person_prob > 0:
        gone |= dropout_mask(gone.shape[:-1] + (1,), cfg.dropout_person_prob, cfg.dropout_mean_frames, stream(5))
    j.reshape(-1, 2)[np.flatnonzero(gone)] = np.nan   # (a boolean-mask store j[gone] is ~4x slower)
    return j.astype(out_dtype, copy=False), np.logical_not(gone).astype(np.float32)


def zero_noise() -> NoiseConfig:
    """A config with every failure mode off (:func:`corrupt` returns its input)."""
    return NoiseConfig(jitter_std_px=0.0, outlier_prob=0.0, swap_prob=0.0, missing_prob=0.0,
                       dropout_joint_prob=0.0, dropout_person_prob=0.0, outside_image="keep")
