"""Background estimation for the compositing decoder (docs/design.md §2 "Backgrounds").

The decoder pastes the person it draws onto the *background* ``B`` of the
frame (Eq. 1), so every training sequence needs one. Three estimators, chosen
by how the camera moves:

- :func:`median_background` — static camera: per-pixel median over time. The
  person is removed wherever they cover a pixel in fewer than half the frames.
- :func:`dive_background` — static camera, diver: the diver falls from top to
  bottom, so the bottom half of the first frame and the top half of the last
  frame are empty.
- :func:`panorama_backgrounds` — rotating/panning camera: SIFT homographies
  between successive frames (each matched to the latest key frame, see
  :func:`frame_homographies`), chained to a reference frame, every frame
  warped into a panorama, the panorama's per-pixel median (over the frames
  that cover each pixel), warped back into every frame.

:func:`estimate_background` dispatches, and with ``method="auto"`` decides
between a static and a moving camera (:func:`camera_motion_px`).

All inputs are ``(T, H, W, 3)`` uint8 RGB frame arrays — typically a
read-only memory map from the store. Nothing here reads a whole long video
into memory: only a bounded, evenly spaced subset of frames is used for the
medians, processed in row tiles.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from selfpose.errors import SelfposeError

logger = logging.getLogger(__name__)

#: Default number of frames used for a median. The median is exact for a pixel
#: the person covers in < 50% of the *sampled* frames; with 64 evenly spaced
#: samples the sampled fraction is within a few percent of the true fraction
#: for any smooth motion, while memory and time stay bounded (64 × 1080p RGB =
#: 400 MB if held at once, so we also tile rows, see ``tile_bytes``).
DEFAULT_MAX_FRAMES = 64

#: Bytes of frame data held at once by a tiled median (the sampled frames'
#: rows of one tile).
DEFAULT_TILE_BYTES = 64 * 2**20

METHODS = ("auto", "median", "dive", "pan")


class BackgroundError(SelfposeError, ValueError):
    """Frames cannot be used for background estimation (wrong shape/dtype, too few)."""


class BackgroundWarning(UserWarning):
    """Background estimation fell back to a weaker assumption (e.g. identity homography)."""


# ----------------------------------------------------------------------------- helpers


def _check_frames(frames, need: int = 1) -> tuple[int, int, int]:
    shape = getattr(frames, "shape", None)
    if shape is None or len(shape) != 4 or shape[-1] != 3:
        raise BackgroundError(f"frames must be a (T, H, W, 3) uint8 RGB array, got shape {shape}")
    if getattr(frames, "dtype", None) != np.uint8:
        raise BackgroundError(f"frames must be uint8 (0-255 RGB), got {getattr(frames, 'dtype', None)}")
    if shape[0] < need:
        raise BackgroundError(f"background estimation needs at least {need} frame(s), got {shape[0]}")
    return int(shape[0]), int(shape[1]), int(shape[2])


def sample_indices(num_frames: int, max_frames: int) -> np.ndarray:
    """``min(num_frames, max_frames)`` evenly spaced frame indices, first and last included.

    Evenly spaced rather than random: a person who stands still for a while
    then moves is seen at every stage, and the result is deterministic.
    """
    n = max(1, min(int(num_frames), int(max_frames)))
    return np.unique(np.round(np.linspace(0, num_frames - 1, n)).astype(np.int64))


def _median_stack(stack: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Per-pixel median over axis 0 of ``stack`` (N, ..., C) uint8, optionally ignoring invalid entries.

    With ``valid`` ((N, ...) bool, one flag per pixel for all channels), the
    invalid entries are overwritten *in place* alternately by 0 and 255 along
    axis 0 (``k`` invalid → ``k//2`` zeros, ``ceil(k/2)`` 255s). Sorting then
    puts the valid values in the middle, so the plain median of all ``N``
    values is a median (lower or upper) of the valid ones — one vectorised
    selection instead of a per-pixel variable-rank sort. Pixels with no valid
    entry get an arbitrary value; callers mask them.
    """
    import torch  # lazy: torch's uint8 median is ~2x faster than numpy's partition

    n, C = stack.shape[0], stack.shape[-1]
    flat = stack.reshape(n, -1, C)
    if valid is not None:
        inv = ~valid.reshape(n, -1)
        # Parity of each invalid entry's rank among its pixel's invalid entries.
        odd = np.logical_xor.accumulate(inv, axis=0) & inv
        flat *= (~inv)[..., None]  # invalid → 0 ...
        flat |= (odd.view(np.uint8) * np.uint8(255))[..., None]  # ... every other one → 255
    # torch.median returns the lower median, an actual sample (no averaging).
    out = torch.from_numpy(np.ascontiguousarray(flat)).median(dim=0).values.numpy()
    return out.reshape(stack.shape[1:])


# ----------------------------------------------------------------------------- static cameras


def median_background(frames, max_frames: int = DEFAULT_MAX_FRAMES,
                      tile_bytes: int = DEFAULT_TILE_BYTES) -> np.ndarray:
    """Per-pixel temporal median of a static-camera video.

    Args:
        frames: (T, H, W, 3) uint8 RGB, e.g. a read-only memory map; only the
            sampled frames' rows are read, one row tile at a time.
        max_frames: how many evenly spaced frames to take the median over
            (see :data:`DEFAULT_MAX_FRAMES` for why 64).
        tile_bytes: bound on the frame bytes held at once.

    Returns:
        (H, W, 3) uint8 background. Exact for every pixel the person covers in
        fewer than half of the sampled frames.
    """
    T, H, W = _check_frames(frames)
    idx = sample_indices(T, max_frames)
    rows = max(1, int(tile_bytes // max(1, len(idx) * W * 3)))
    out = np.empty((H, W, 3), np.uint8)
    for r0 in range(0, H, rows):
        r1 = min(H, r0 + rows)
        # Fancy index on the frame axis + a row slice: a memory map reads only these bytes.
        out[r0:r1] = _median_stack(np.asarray(frames[idx, r0:r1]))
    return out


def dive_background(frames) -> np.ndarray:
    """Background of a dive filmed by a static camera.

    The diver starts at the top of the frame and ends at the bottom, so the
    bottom half of the first frame and the top half of the last frame show
    the empty scene.

    Args:
        frames: (T, H, W, 3) uint8 RGB, T ≥ 2.

    Returns:
        (H, W, 3) uint8: rows ``[0, H//2)`` from the last frame, rows
        ``[H//2, H)`` from the first.
    """
    T, H, W = _check_frames(frames, need=2)
    out = np.array(frames[0], dtype=np.uint8, copy=True)
    out[: H // 2] = frames[T - 1, : H // 2]
    return out


# ----------------------------------------------------------------------------- homographies


@dataclass
class _Features:
    keypoints: np.ndarray | None  # (n, 2) float32, pixels of the full-size frame
    descriptors: np.ndarray | None  # (n, 128) float32


class _SiftMatcher:
    """SIFT features on a downscaled grey frame + ratio-test matching + RANSAC homography."""

    def __init__(self, frame_hw: tuple[int, int], max_side: int = 640, min_side: int = 384, ratio: float = 0.75,
                 ransac_px: float = 3.0, min_inliers: int = 12, max_features: int = 2000):
        import cv2

        self.cv2 = cv2
        H, W = frame_hw
        # Features on at most ``max_side`` pixels: SIFT cost grows with area and
        # a camera's global motion does not need 1080p precision. Small frames
        # (the 128 px CPU profile) are enlarged to ``min_side``: SIFT's finest
        # octave finds too few keypoints on them (measured: most frames of the
        # synthetic pan scenario failed to match at 128 px).
        self.scale = min(max_side / max(H, W), max(1.0, min_side / max(H, W)))
        self.ratio, self.min_inliers = ratio, min_inliers
        self.ransac_px = ransac_px  # in full-resolution pixels
        self.sift = cv2.SIFT_create(nfeatures=max_features)
        self.matcher = cv2.BFMatcher(cv2.NORM_L2)

    def features(self, frame: np.ndarray) -> _Features:
        cv2 = self.cv2
        grey = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
        if self.scale != 1.0:
            interp = cv2.INTER_AREA if self.scale < 1.0 else cv2.INTER_CUBIC
            grey = cv2.resize(grey, None, fx=self.scale, fy=self.scale, interpolation=interp)
        kps, desc = self.sift.detectAndCompute(grey, None)
        if desc is None or len(kps) < self.min_inliers:
            return _Features(None, None)
        pts = np.array([k.pt for k in kps], np.float32) / self.scale
        return _Features(pts, desc)

    def homography(self, src: _Features, dst: _Features) -> np.ndarray | None:
        """3×3 H with ``x_dst ~ H x_src`` (full-resolution pixels), or None when matching fails.

        A person the camera follows moves little in the frame and can carry
        more matches than the scene behind them, so the largest RANSAC
        consensus is not always the background. A second consensus is found
        among the remaining matches, and the one whose inliers spread over the
        larger area (convex hull) is taken: the scene fills the frame, a
        person a compact part of it.
        """
        cv2 = self.cv2
        if src.descriptors is None or dst.descriptors is None:
            return None
        pairs = self.matcher.knnMatch(src.descriptors, dst.descriptors, k=2)
        good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < self.ratio * p[1].distance]
        if len(good) < self.min_inliers:
            return None
        a = src.keypoints[[m.queryIdx for m in good]]
        b = dst.keypoints[[m.trainIdx for m in good]]
        best, best_area = None, -1.0
        for _ in range(2):
            if len(a) < self.min_inliers:
                break
            Hm, inl = cv2.findHomography(a, b, cv2.RANSAC, self.ransac_px)
            if Hm is None or inl is None:
                break
            inl = inl.ravel().astype(bool)
            if int(inl.sum()) >= self.min_inliers and _plausible(Hm):
                area = float(cv2.contourArea(cv2.convexHull(a[inl].astype(np.float32))))
                if area > best_area:
                    best, best_area = Hm / Hm[2, 2], area
            a, b = a[~inl], b[~inl]
        return best


def _plausible(Hm: np.ndarray) -> bool:
    """Reject degenerate homographies between neighbouring frames (flips, collapses, strong perspective)."""
    if not np.all(np.isfinite(Hm)) or abs(Hm[2, 2]) < 1e-12:
        return False
    Hm = Hm / Hm[2, 2]
    det = np.linalg.det(Hm[:2, :2])
    return bool(0.25 < det < 4.0 and np.abs(Hm[2, :2]).max() < 0.01)


def _displacement_px(Hm: np.ndarray, H: int, W: int) -> float:
    """Mean distance (pixels) a 3×3 grid of frame points moves under ``Hm``."""
    xs, ys = np.meshgrid(np.linspace(0, W - 1, 3), np.linspace(0, H - 1, 3))
    p = np.stack([xs.ravel(), ys.ravel(), np.ones(9)])
    q = Hm @ p
    q = q[:2] / q[2:]
    return float(np.linalg.norm(q - p[:2], axis=0).mean())


def camera_motion_px(frames, num_starts: int = 3, gaps: Sequence[int] = (2, 8, 32),
                     max_side: int = 320) -> float | None:
    """How far the camera moves: median over frame pairs of the mean point displacement (pixels).

    Pairs ``(t, t + gap)`` are taken at ``num_starts`` evenly spaced ``t`` for
    each ``gap`` (clipped to the video). The static-scene homography between
    the two frames comes from SIFT + RANSAC, which ignores a person covering
    less than half the frame. Returns the median displacement of the largest
    gap whose pairs mostly matched (larger gaps show slow pans), or None when
    no pair could be matched (low texture).
    """
    T, H, W = _check_frames(frames)
    if T < 2:
        return 0.0
    matcher = _SiftMatcher((H, W), max_side=max_side)
    cache: dict[int, _Features] = {}

    def feats(i: int) -> _Features:
        if i not in cache:
            cache[i] = matcher.features(np.asarray(frames[i]))
        return cache[i]

    best: float | None = None
    for gap in sorted({min(int(g), T - 1) for g in gaps if g > 0}):
        starts = np.unique(np.round(np.linspace(0, T - 1 - gap, num_starts)).astype(int))
        disp = []
        for t in starts:
            Hm = matcher.homography(feats(int(t)), feats(int(t) + gap))
            if Hm is not None:
                disp.append(_displacement_px(Hm, H, W))
        if len(disp) * 2 > len(starts):  # mostly matched: trust this gap
            best = float(np.median(disp))
    return best


def is_moving_camera(frames, threshold_px: float | None = None, **kwargs) -> bool:
    """True when :func:`camera_motion_px` exceeds ``threshold_px``.

    Default threshold: ``max(1, 0.005 × frame diagonal)`` pixels — a static
    camera's RANSAC homography moves points by well under a pixel, a pan
    over the sampled gaps by many. When no frame pair matches (a blank,
    textureless scene) the camera is assumed static, with a warning: the
    median is the safe choice there, since a textureless background looks
    the same wherever the camera points.
    """
    T, H, W = _check_frames(frames)
    thr = max(1.0, 0.005 * math.hypot(H, W)) if threshold_px is None else float(threshold_px)
    motion = camera_motion_px(frames, **kwargs)
    if motion is None:
        warnings.warn("cannot tell whether the camera moves (no SIFT matches between frames: low texture?); "
                      "assuming a static camera. Pass method='pan' to estimate_background to force a "
                      "moving-camera background.", BackgroundWarning, stacklevel=2)
        return False
    return motion > thr


# ----------------------------------------------------------------------------- moving cameras


@dataclass
class Panorama:
    """A moving camera's scene as one image, and where each frame lies in it.

    Attributes:
        image: (Hc, Wc, 3) uint8 median panorama; pixels no sampled frame
            covered are filled from the nearest covered pixel.
        covered: (Hc, Wc) bool, pixels seen by at least one sampled frame.
        homographies: (T, 3, 3) float64, frame pixels → panorama pixels.
        frame_hw: (H, W) of the frames.
        failed: frame indices whose homography to the previous (matched)
            frame could not be estimated and was replaced by the identity.
    """

    image: np.ndarray
    covered: np.ndarray
    homographies: np.ndarray
    frame_hw: tuple[int, int]
    failed: list[int] = field(default_factory=list)

    def background(self, i: int) -> np.ndarray:
        """(H, W, 3) uint8 background of frame ``i``: the panorama warped back into it."""
        import cv2

        H, W = self.frame_hw
        return cv2.warpPerspective(self.image, self.homographies[i], (W, H),
                                   flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)

    def backgrounds(self, start: int = 0, stop: int | None = None, out: np.ndarray | None = None) -> np.ndarray:
        """(stop − start, H, W, 3) uint8 backgrounds; ``out`` may be a preallocated array or writable memmap."""
        stop = len(self.homographies) if stop is None else stop
        H, W = self.frame_hw
        if out is None:
            out = np.empty((stop - start, H, W, 3), np.uint8)
        for k, i in enumerate(range(start, stop)):
            out[k] = self.background(i)
        return out


def frame_homographies(frames, step: int = 1, max_side: int = 640, key_shift: float = 0.2,
                       ref: int | None = None) -> tuple[np.ndarray, list[int]]:
    """Homographies from every frame to a reference frame (default: the middle one).

    Frames are matched (SIFT + ratio test + RANSAC) to the current *key
    frame* rather than to their predecessor, and a new key frame is taken
    once the camera has moved by more than ``key_shift`` × the frame's
    shorter side (or when matching to the key frame fails). Chaining then
    multiplies one estimate per key frame instead of one per frame, so the
    estimation noise of hundreds of small steps does not accumulate into
    drift (the classic video-mosaicking scheme).

    With ``step > 1`` only every ``step``-th frame (and the last) is matched;
    frames in between get a linear blend of their neighbours' homographies —
    an approximation for smooth camera motion that saves SIFT time on long,
    high-frame-rate videos. ``step=1`` (default) estimates every frame.

    When a frame cannot be matched at all (low texture, blur, a cut), it gets
    the previous frame's homography — the camera is assumed not to have moved
    — and becomes a key frame; a :class:`BackgroundWarning` lists such frames.

    Returns:
        ``(T, 3, 3)`` float64 homographies (frame pixels → reference-frame
        pixels) and the list of frames whose match failed.
    """
    T, H, W = _check_frames(frames)
    step = max(1, int(step))
    keys = list(range(0, T, step))
    if keys[-1] != T - 1:
        keys.append(T - 1)
    matcher = _SiftMatcher((H, W), max_side=max_side)
    max_disp = key_shift * min(H, W)
    to0 = np.empty((len(keys), 3, 3))  # key-list frame → frame 0
    to0[0] = np.eye(3)
    failed: list[int] = []
    key_feat, key_h = matcher.features(np.asarray(frames[keys[0]])), np.eye(3)
    prev_feat, prev_h, prev_is_key = key_feat, key_h, True
    for j in range(1, len(keys)):
        feat = matcher.features(np.asarray(frames[keys[j]]))
        M = matcher.homography(feat, key_feat)
        if M is None and not prev_is_key:
            # Too far from the key frame: restart from the previous frame.
            key_feat, key_h = prev_feat, prev_h
            M = matcher.homography(feat, key_feat)
        if M is None:
            failed.append(keys[j])
            h, promote = prev_h, True
        else:
            h = key_h @ M
            h = h / h[2, 2]
            promote = _displacement_px(M, H, W) > max_disp
        to0[j] = h
        prev_feat, prev_h, prev_is_key = feat, h, promote
        if promote:
            key_feat, key_h = feat, h
    if failed:
        shown = ", ".join(map(str, failed[:20])) + (" ..." if len(failed) > 20 else "")
        warnings.warn(f"no reliable homography for {len(failed)} of {len(keys) - 1} frames (frames {shown}): "
                      "assumed the camera did not move there. Backgrounds near these frames may be blurred "
                      "or contain the person; check the video for cuts or textureless scenes.",
                      BackgroundWarning, stacklevel=2)
    key_ref = len(keys) // 2 if ref is None else int(np.searchsorted(keys, ref))
    key_h = np.linalg.inv(to0[key_ref])[None] @ to0
    key_h /= key_h[:, 2:3, 2:3]
    if step == 1:
        return key_h, failed
    key_arr = np.asarray(keys)
    right = np.clip(np.searchsorted(key_arr, np.arange(T)), 1, len(keys) - 1)
    left = right - 1
    w = (np.arange(T) - key_arr[left]) / (key_arr[right] - key_arr[left])
    out = (1 - w)[:, None, None] * key_h[left] + w[:, None, None] * key_h[right]
    return out / out[:, 2:3, 2:3], failed


def _canvas(homs: np.ndarray, H: int, W: int, max_scale: float) -> tuple[np.ndarray, tuple[int, int], float]:
    """Frame → canvas homographies, the canvas size (Hc, Wc), and the canvas scale (≤ 1)."""
    corners = np.array([[0, 0, 1], [W, 0, 1], [W, H, 1], [0, H, 1]], float).T
    pts = homs @ corners
    pts = pts[:, :2] / pts[:, 2:]
    lo = pts.min(axis=(0, 2))
    hi = pts.max(axis=(0, 2))
    w_c, h_c = hi - lo
    # Cap the canvas area (a long pan could make it huge): shrink it uniformly.
    scale = min(1.0, math.sqrt(max_scale * H * W / max(1.0, w_c * h_c)))
    if scale < 1.0:
        warnings.warn(f"the panorama would be {w_c:.0f}×{h_c:.0f} px; reduced by {scale:.2f} to stay within "
                      f"{max_scale:g} frame areas (backgrounds will be slightly blurred; raise max_canvas_scale "
                      "for sharper ones)", BackgroundWarning, stacklevel=3)
    S = np.array([[scale, 0, -lo[0] * scale], [0, scale, -lo[1] * scale], [0, 0, 1.0]])
    size = (int(math.ceil(h_c * scale)) + 1, int(math.ceil(w_c * scale)) + 1)
    return S[None] @ homs, size, scale


def fit_panorama(frames, max_frames: int = DEFAULT_MAX_FRAMES, step: int = 1, max_side: int = 640,
                 max_canvas_scale: float = 16.0, tile_bytes: int = DEFAULT_TILE_BYTES) -> Panorama:
    """Build the median panorama of a moving-camera video.

    Args:
        frames: (T, H, W, 3) uint8 RGB (memory map fine).
        max_frames: evenly spaced frames whose warps enter the median.
        step: key-frame spacing for homography estimation (see
            :func:`frame_homographies`).
        max_side: longest side (pixels) of the images SIFT runs on.
        max_canvas_scale: the panorama holds at most this many frame areas
            (larger ones are downscaled), bounding memory and time.
        tile_bytes: bound on the warped-frame bytes held at once.

    Returns:
        A :class:`Panorama`; ``panorama.backgrounds()`` gives per-frame backgrounds.
    """
    import cv2
    from scipy import ndimage

    T, H, W = _check_frames(frames)
    homs, failed = frame_homographies(frames, step=step, max_side=max_side)
    G, (Hc, Wc), _ = _canvas(homs, H, W, max_canvas_scale)
    idx = sample_indices(T, max_frames)
    n = len(idx)
    # Canvas box each sampled frame covers: warps are computed only there.
    corners = np.array([[0, 0, 1], [W, 0, 1], [W, H, 1], [0, H, 1]], float).T
    pts = G[idx] @ corners
    pts = pts[:, :2] / pts[:, 2:]
    x_lo = np.clip(np.floor(pts[:, 0].min(axis=1)), 0, Wc).astype(int)
    x_hi = np.clip(np.ceil(pts[:, 0].max(axis=1)) + 1, 0, Wc).astype(int)
    y_lo = np.clip(np.floor(pts[:, 1].min(axis=1)), 0, Hc).astype(int)
    y_hi = np.clip(np.ceil(pts[:, 1].max(axis=1)) + 1, 0, Hc).astype(int)
    ones = np.full((H, W), 255, np.uint8)

    rows = max(1, int(tile_bytes // max(1, n * Wc * 4)))
    image = np.zeros((Hc, Wc, 3), np.uint8)
    covered = np.zeros((Hc, Wc), bool)
    for r0 in range(0, Hc, rows):
        r1 = min(Hc, r0 + rows)
        stack = np.zeros((n, r1 - r0, Wc, 3), np.uint8)
        valid = np.zeros((n, r1 - r0, Wc), bool)
        for k, i in enumerate(idx):
            ya, yb, xa, xb = max(r0, y_lo[k]), min(r1, y_hi[k]), x_lo[k], x_hi[k]
            if ya >= yb or xa >= xb:
                continue
            M = np.array([[1, 0, -xa], [0, 1, -ya], [0, 0, 1.0]]) @ G[i]
            size = (xb - xa, yb - ya)
            stack[k, ya - r0:yb - r0, xa:xb] = cv2.warpPerspective(
                np.asarray(frames[i]), M, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
            # Valid only where the bilinear warp saw no border pixel (else edges darken).
            valid[k, ya - r0:yb - r0, xa:xb] = cv2.warpPerspective(
                ones, M, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT) >= 254
        image[r0:r1] = _median_stack(stack, valid)
        covered[r0:r1] = valid.any(axis=0)
    if not covered.any():
        raise BackgroundError("no panorama pixel is covered by any frame; the homographies are degenerate")
    if not covered.all():
        # Nearest covered pixel for the rest, so a frame warped back never shows holes.
        _, (iy, ix) = ndimage.distance_transform_edt(~covered, return_indices=True)
        image = image[iy, ix]
    return Panorama(image=image, covered=covered, homographies=G, frame_hw=(H, W), failed=failed)


def panorama_backgrounds(frames, max_frames: int = DEFAULT_MAX_FRAMES, step: int = 1, max_side: int = 640,
                         max_canvas_scale: float = 16.0, out: np.ndarray | None = None) -> np.ndarray:
    """Per-frame backgrounds of a moving (rotating/panning) camera.

    SIFT homographies between successive frames (via key frames) → chained to
    the middle frame → frames warped into a panorama → its per-pixel median over the
    frames covering each pixel → warped back into every frame. See
    :func:`fit_panorama` for the arguments; ``out`` may be a preallocated
    (T, H, W, 3) uint8 array or writable memmap (a long 1080p video's
    backgrounds do not fit in memory).

    Returns:
        (T, H, W, 3) uint8.
    """
    pano = fit_panorama(frames, max_frames=max_frames, step=step, max_side=max_side,
                        max_canvas_scale=max_canvas_scale)
    return pano.backgrounds(out=out)


# ----------------------------------------------------------------------------- dispatch


def choose_method(frames) -> str:
    """``"pan"`` when the camera moves (:func:`is_moving_camera`), else ``"median"``.

    A dive cannot be recognised from pixels alone; ask for ``"dive"`` explicitly
    (e.g. from the sequence's scenario).
    """
    return "pan" if is_moving_camera(frames) else "median"


#: Background method for each sequence scenario (``SequenceMeta.scenario``); others → ``"auto"``.
SCENARIO_METHODS = {"lab": "median", "wild": "median", "static": "median", "dive": "dive", "pan": "pan",
                    "moving": "pan"}


def method_for_scenario(scenario: str) -> str:
    """The background method for a sequence's scenario: known ones map directly, unknown → ``"auto"``."""
    return SCENARIO_METHODS[scenario] if scenario in SCENARIO_METHODS else "auto"


def estimate_background(frames, method: str = "auto", **kwargs) -> np.ndarray:
    """The background of a video.

    Args:
        frames: (T, H, W, 3) uint8 RGB.
        method: ``"median"`` (static camera), ``"dive"`` (static camera,
            diver falling top → bottom), ``"pan"`` (moving camera) or
            ``"auto"`` (``"pan"`` or ``"median"`` by :func:`choose_method`).
        kwargs: passed to the chosen estimator.

    Returns:
        (H, W, 3) uint8 for ``median``/``dive``; (T, H, W, 3) uint8 for ``pan``.
    """
    if method not in METHODS:
        raise BackgroundError(f"unknown background method {method!r}; choose one of {', '.join(METHODS)}")
    _check_frames(frames)
    if method == "auto":
        method = choose_method(frames)
        logger.info("background: camera judged %s, using %r", "moving" if method == "pan" else "static", method)
    if method == "median":
        return median_background(frames, **kwargs)
    if method == "dive":
        return dive_background(frames, **kwargs)
    return panorama_backgrounds(frames, **kwargs)


# ----------------------------------------------------------------------------- several takes, one camera


#: Largest per-pixel difference (max over RGB, 0..255) at which a sequence's
#: own background "agrees" with the pooled one (JPEG noise and slow lighting
#: drift stay below it; a person standing in the median does not).
POOL_TOLERANCE = 25

#: Share of pixels that must agree before a sequence takes the pooled
#: background: a person covers a few percent of a lab frame, a different
#: camera or scene disagrees almost everywhere.
POOL_MIN_AGREE = 0.9


def pool_backgrounds(backgrounds, tolerance: int = POOL_TOLERANCE) -> tuple[np.ndarray, np.ndarray]:
    """One background for several recordings of the same static camera.

    A temporal median keeps a person who stands still for more than half of
    a take (seen on the lab data: a quarter of the sequences). Other takes
    of the same camera have the person elsewhere, so the per-pixel median
    over the takes' own backgrounds removes them.

    Args:
        backgrounds: ``(N, H, W, 3)`` uint8, the per-sequence estimates
            (e.g. :func:`median_background`) of ``N ≥ 3`` sequences believed
            to share a camera.
        tolerance: per-pixel agreement threshold (0..255, max over RGB).

    Returns:
        ``(pooled (H, W, 3) uint8, agree (N,) float)``: the pooled
        background and, per sequence, the share of its pixels within
        ``tolerance`` of it. Only sequences that mostly agree
        (:data:`POOL_MIN_AGREE`) should take it (see :func:`pool_dataset_backgrounds`); the others were
        filmed by another camera or in another scene.

    Raises:
        BackgroundError: fewer than 3 backgrounds (a median of two keeps
            both persons), or not uint8 ``(N, H, W, 3)``.
    """
    b = np.asarray(backgrounds)
    if b.ndim != 4 or b.shape[-1] != 3 or b.dtype != np.uint8:
        raise BackgroundError(f"backgrounds must be uint8 (N, H, W, 3), got {b.dtype} {b.shape}")
    if len(b) < 3:
        raise BackgroundError(f"pooling needs at least 3 backgrounds of one camera, got {len(b)}")
    pooled = _median_stack(b.copy())
    diff = np.abs(b.astype(np.int16) - pooled.astype(np.int16)).max(-1)
    return pooled, (diff <= tolerance).mean(axis=(1, 2))
