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

Randomness: :func:`corrupt` draws one child seed per failure mode from ``rng``
before anything else, so switching one mode on or off leaves the others' draws
unchanged. In a data loader, seed per sample with :func:`sample_rng`::

    def __getitem__(self, i):                       # a torch Dataset
        rng = sample_rng(self.seed, self.epoch, i)  # same (seed, epoch, i) → same noise
        noisy, visible = corrupt(joints2d[i], self.noise, rng, image_size=(h, w))
        x = np.where(visible[..., None] > 0, noisy, 0.0)   # the network never sees NaN
        return torch.from_numpy(x).float(), torch.from_numpy(visible)

Everything here is numpy; the loader converts to torch after corruption.
"""

from __future__ import annotations

import math
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
    outside_image: Literal["missing", "keep"] = "missing"

    def __post_init__(self) -> None:
        # Configs built in code skip config._coerce, so NaN and types are checked here too.
        for name in ("jitter_std_px", "outlier_px", "dropout_mean_frames"):
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
    j = np.asarray(joints2d, dtype=np.float64)
    if j.ndim < 3 or j.shape[-1] != 2:
        raise NoiseInputError(f"2D joints must have shape (T, J, 2) or (N, T, J, 2), got {j.shape}")
    return j


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator for sample ``index`` of ``epoch``: independent across (seed, epoch, index), reproducible."""
    return np.random.default_rng([int(seed), int(epoch), int(index)])


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
    j = np.asarray(joints2d, dtype=np.float64)
    scale = np.ones(j.shape[-2]) if len(joint_scale) == 0 else np.asarray(joint_scale, dtype=np.float64)
    if scale.shape != (j.shape[-2],):
        raise ConfigError(f"noise.jitter_joint_scale has {scale.size} factors but the joints have "
                          f"{j.shape[-2]}; give one factor per joint (or [] for all 1)")
    return j + rng.standard_normal(j.shape) * (std_px * scale)[:, None]


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
    j = np.asarray(joints2d, dtype=np.float64)
    J = j.shape[-2]
    hit = rng.random(j.shape[:-1]) < prob
    jump = (rng.random(j.shape[:-1]) < jump_frac) & (J > 1)
    angle = rng.uniform(0, 2 * np.pi, j.shape[:-1])
    length = magnitude_px * rng.uniform(0.5, 1.5, j.shape[:-1])
    # Another joint, uniformly among the J-1 others: draw from J-1 and skip self.
    other = rng.integers(0, max(J - 1, 1), j.shape[:-1])
    other = other + (other >= np.arange(J))
    other = np.minimum(other, J - 1)
    displaced = j + np.stack([np.cos(angle), np.sin(angle)], axis=-1) * length[..., None]
    jumped = np.take_along_axis(j, other[..., None].repeat(2, axis=-1), axis=-2)
    new = np.where(jump[..., None], jumped, displaced)
    return np.where(hit[..., None], new, j), hit


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
    j = np.asarray(joints2d, dtype=np.float64)
    swapped = rng.random(j.shape[:-2] + (len(limbs),)) < prob
    out = j.copy()
    for k, (left, right) in enumerate(limbs):
        if max(max(left), max(right)) >= j.shape[-2]:
            raise NoiseInputError(f"limb swaps index joints {left}/{right} but the joints have "
                                  f"{j.shape[-2]} (swaps need the H36M17 order)")
        s = swapped[..., k, None, None]
        out[..., left, :] = np.where(s, j[..., right, :], j[..., left, :])
        out[..., right, :] = np.where(s, j[..., left, :], j[..., right, :])
    return out, swapped


def missing_mask(shape: tuple[int, ...], prob: float, rng: np.random.Generator) -> np.ndarray:
    """i.i.d. missing joints: ``(..., J)`` bool, True with probability ``prob`` (``shape`` is ``(..., J)``)."""
    return rng.random(shape) < prob


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
    T = shape[-2]
    out = np.zeros(shape, dtype=bool)
    if start_prob <= 0 or T == 0:
        return out
    starts = rng.random(shape) < start_prob
    ends = rng.random(shape) < 1.0 / mean_frames
    state = np.zeros(shape[:-2] + shape[-1:], dtype=bool)
    for t in range(T):
        # Missing at t: it was visible and a run starts at t, or it was missing and the run did not end after t-1.
        ended = ends[..., t - 1, :] if t > 0 else np.zeros_like(state)
        state = np.where(state, ~ended, starts[..., t, :])
        out[..., t, :] = state
    return out


def outside_mask(joints2d: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """``(..., J)`` bool: joints outside an image of ``(H, W)`` px (pixel centres at integers)."""
    h, w = image_size
    x, y = joints2d[..., 0], joints2d[..., 1]
    return ~((x >= -0.5) & (x <= w - 0.5) & (y >= -0.5) & (y <= h - 0.5))


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
    j = _check_joints(joints2d)
    out_dtype = np.result_type(np.asarray(joints2d).dtype, np.float32)
    # One child stream per failure mode, drawn first: a mode switched off does not shift the others.
    swap_rng, jit_rng, out_rng, miss_rng, djoint_rng, dperson_rng = (
        np.random.default_rng(s) for s in rng.integers(0, 2**63 - 1, size=6))
    if cfg.swap_prob > 0:
        j, _ = swap_limbs(j, cfg.swap_prob, swap_rng)
    if cfg.jitter_std_px > 0:
        j = jitter(j, cfg.jitter_std_px, cfg.jitter_joint_scale, jit_rng)
    if cfg.outlier_prob > 0:
        j, _ = outliers(j, cfg.outlier_prob, cfg.outlier_px, cfg.outlier_jump_frac, out_rng)
    gone = ~np.isfinite(j).all(axis=-1)
    if image_size is not None and cfg.outside_image == "missing":
        with np.errstate(invalid="ignore"):
            gone |= outside_mask(j, image_size)
    if cfg.missing_prob > 0:
        gone |= missing_mask(gone.shape, cfg.missing_prob, miss_rng)
    if cfg.dropout_joint_prob > 0:
        gone |= dropout_mask(gone.shape, cfg.dropout_joint_prob, cfg.dropout_mean_frames, djoint_rng)
    if cfg.dropout_person_prob > 0:
        gone |= dropout_mask(gone.shape[:-1] + (1,), cfg.dropout_person_prob, cfg.dropout_mean_frames,
                             dperson_rng)
    noisy = np.where(gone[..., None], np.nan, j).astype(out_dtype, copy=False)
    return noisy, (~gone).astype(np.float32)


def zero_noise() -> NoiseConfig:
    """A config with every failure mode off (:func:`corrupt` returns its input)."""
    return NoiseConfig(jitter_std_px=0.0, outlier_prob=0.0, swap_prob=0.0, missing_prob=0.0,
                       dropout_joint_prob=0.0, dropout_person_prob=0.0, outside_image="keep")
