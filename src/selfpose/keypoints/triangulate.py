"""Calibrated multi-view triangulation of 2D keypoints.

Pure functions over arrays, the library under ``selfpose triangulate``:

* :func:`dlt` — confidence-weighted direct linear transform of undistorted
  normalised points, many points at once;
* :func:`triangulate` — per frame and joint: left/right swaps of a view
  repaired against the other views, RANSAC over view pairs (every pair is
  tried: calibrated rigs have few cameras), a weighted refit on the
  inlier views, and each view's reprojection error.

Shapes: ``T`` frames, ``J`` joints, ``V`` views (cameras, in the order of the
``cameras`` list). Pixels are those of each view's video (distortion
included); 3D is in the calibration's world frame, mm.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

from selfpose.config import ConfigError
from selfpose.geometry.camera import Camera


@dataclass(frozen=True)
class TriangulationConfig:
    """Settings of :func:`triangulate` (strict: unknown keys are errors where it is read from a file).

    Attributes:
        min_confidence: a detection below this confidence is not used (MediaPipe's visibility).
        inlier_px: a view agrees with a 3D point when it reprojects within this many pixels;
            None = 2% of the view's larger image side (38 px in a 1920-px frame), a detector's error
            on a limb end at that scale.
        ransac: choose each point's views by RANSAC over view pairs (False: every confident view).
        fix_swaps: repair a view whose left and right limbs disagree with the other views.
    """

    min_confidence: float = 0.5
    inlier_px: float | None = None
    ransac: bool = True
    fix_swaps: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.min_confidence <= 1:
            raise ConfigError(f"min_confidence must be in [0, 1], got {self.min_confidence}")
        if self.inlier_px is not None and not self.inlier_px > 0:
            raise ConfigError(f"inlier_px must be > 0 (or null), got {self.inlier_px}")


@dataclass(frozen=True)
class Triangulation:
    """What :func:`triangulate` found.

    Attributes:
        world: ``(T, J, 3)`` mm, world frame; NaN where fewer than two views agree.
        inliers: ``(T, J, V)`` bool, the views each point was fitted to.
        reproj_px: ``(T, J, V)`` reprojection error in each view, px (NaN where the view has no detection).
        swapped: ``(T, V)`` bool, views whose left/right labels were swapped before fitting.
        cameras: the cameras, in view order.
    """

    world: np.ndarray
    inliers: np.ndarray
    reproj_px: np.ndarray
    swapped: np.ndarray
    cameras: tuple[Camera, ...]

    @property
    def error_px(self) -> np.ndarray:
        """``(T, J)`` mean reprojection error over the inlier views, px (NaN where not triangulated)."""
        return _nanmean(np.where(self.inliers, self.reproj_px, np.nan), axis=-1)

    def in_camera(self, view: int) -> np.ndarray:
        """``(T, J, 3)`` the points in view ``view``'s camera frame (mm; x right, y down, z forward)."""
        return self.cameras[view].world_to_camera(self.world)


def _nanmean(a: np.ndarray, axis: int) -> np.ndarray:
    n = np.isfinite(a).sum(axis)
    s = np.nansum(a, axis)
    return np.where(n > 0, s / np.maximum(n, 1), np.nan)


def dlt(xy: np.ndarray, weights: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Weighted DLT triangulation.

    Args:
        xy: ``(N, V, 2)`` undistorted normalised image points (``Camera.normalize``).
        weights: ``(N, V)`` ≥ 0; 0 = the view is not used (its ``xy`` may be NaN).
        R: ``(V, 3, 3)`` world → camera rotations; t: ``(V, 3)`` translations, mm.

    Returns:
        ``(N, 3)`` world points, mm; NaN where fewer than two views have weight.
    """
    xy = np.asarray(xy, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    P = np.concatenate([R, (np.asarray(t, dtype=np.float64) / 1000.0)[:, :, None]], axis=2)  # metres: conditioning
    ok = (w > 0) & np.isfinite(xy).all(-1)
    w = np.where(ok, w, 0.0)
    xy = np.where(ok[..., None], xy, 0.0)
    rows_x = xy[..., 0:1] * P[None, :, 2] - P[None, :, 0]  # (N, V, 4)
    rows_y = xy[..., 1:2] * P[None, :, 2] - P[None, :, 1]
    A = np.concatenate([rows_x, rows_y], axis=1) * np.concatenate([w, w], axis=1)[..., None]  # (N, 2V, 4)
    out = np.full((len(xy), 3), np.nan)
    enough = ok.sum(1) >= 2
    if enough.any():
        _, _, vt = np.linalg.svd(A[enough])
        X = vt[:, -1]
        with np.errstate(divide="ignore", invalid="ignore"):
            out[enough] = X[:, :3] / X[:, 3:4] * 1000.0
    return out


def _project_all(X: np.ndarray, cameras: tuple[Camera, ...]) -> tuple[np.ndarray, np.ndarray]:
    """``(N, 3)`` world → ``(N, V, 2)`` px in each view and ``(N, V)`` depth, mm."""
    uv, z = [], []
    for cam in cameras:
        Xc = cam.world_to_camera(X)
        uv.append(cam.project(Xc))
        z.append(Xc[:, 2])
    return np.stack(uv, 1), np.stack(z, 1)


def _fit(uv, xy, conf, cameras, R, t, use, threshold, ransac) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Robust fit of ``N`` points: ``(X (N, 3), inliers (N, V), err (N, V) px)``."""
    N, V = conf.shape
    if ransac and V > 2:
        best_n = np.full(N, -1)
        best_cost = np.full(N, np.inf)
        best_in = np.zeros((N, V), bool)
        for a, b in combinations(range(V), 2):
            w = np.zeros((N, V))
            w[:, a], w[:, b] = use[:, a], use[:, b]
            X = dlt(xy, w, R, t)
            proj, z = _project_all(X, cameras)
            err = np.linalg.norm(proj - uv, axis=-1)
            inl = use & (err < threshold[None, :]) & (z > 0)
            n = inl.sum(1)
            cost = np.where(inl, err, 0.0).sum(1)
            better = (n > best_n) | ((n == best_n) & (cost < best_cost))
            better &= np.isfinite(X).all(1) & (n >= 2)
            best_n = np.where(better, n, best_n)
            best_cost = np.where(better, cost, best_cost)
            best_in[better] = inl[better]
        chosen = best_in
    else:
        chosen = use.copy()
    X = dlt(xy, np.where(chosen, conf, 0.0), R, t)
    proj, z = _project_all(X, cameras)
    err = np.linalg.norm(proj - uv, axis=-1)
    err = np.where(np.isfinite(uv).all(-1), err, np.nan)
    inliers = chosen & np.isfinite(X).all(1, keepdims=True)
    if ransac:
        inliers &= np.nan_to_num(err, nan=np.inf) < threshold[None, :]
        refit = inliers.sum(1) >= 2
        X = np.where(refit[:, None], dlt(xy, np.where(inliers, conf, 0.0), R, t), np.nan)
        proj, _ = _project_all(X, cameras)
        err = np.where(np.isfinite(uv).all(-1), np.linalg.norm(proj - uv, axis=-1), np.nan)
        inliers &= refit[:, None]
    return X, inliers, err


def triangulate(uv: np.ndarray, conf: np.ndarray, cameras, flip_pairs=(), cfg: TriangulationConfig | None = None
                ) -> Triangulation:
    """Triangulate detected keypoints seen by calibrated, synchronised views.

    Args:
        uv: ``(T, J, V, 2)`` px in each view's video (NaN = no detection).
        conf: ``(T, J, V)`` detection confidence in [0, 1].
        cameras: ``V`` cameras (world → camera; :mod:`selfpose.keypoints.calibration`).
        flip_pairs: ``(left, right)`` joint index pairs whose labels a detector may swap.
        cfg: settings; None = the defaults.

    Returns:
        :class:`Triangulation`.
    """
    cfg = cfg or TriangulationConfig()
    cameras = tuple(cameras)
    uv = np.asarray(uv, dtype=np.float64)
    conf = np.nan_to_num(np.asarray(conf, dtype=np.float64))
    T, J, V, _ = uv.shape
    if conf.shape != (T, J, V) or len(cameras) != V:
        raise ValueError(f"uv (T, J, V, 2) = {uv.shape}, conf {conf.shape} and {len(cameras)} cameras disagree")
    threshold = np.array([cfg.inlier_px or 0.02 * max(c.width, c.height) for c in cameras])
    R = np.stack([c.R for c in cameras])
    t = np.stack([c.t for c in cameras])

    def normalised(points: np.ndarray) -> np.ndarray:
        return np.stack([cameras[v].normalize(points[..., v, :]) for v in range(V)], axis=-2)

    swapped = np.zeros((T, V), bool)
    xy_all = normalised(uv)   # undistorted once; the swap check and the fit below share it
    if cfg.fix_swaps and flip_pairs and V >= 3:
        perm = np.arange(J)
        for a, b in flip_pairs:
            perm[a], perm[b] = b, a
        lr = np.array(sorted({j for pair in flip_pairs for j in pair}))
        for v in range(V):
            others = [o for o in range(V) if o != v]
            use = conf[:, :, others] >= cfg.min_confidence
            sub_xy = xy_all[:, :, others].reshape(T * J, V - 1, 2)
            X, inl, _ = _fit(uv[:, :, others].reshape(T * J, V - 1, 2), sub_xy,
                             conf[:, :, others].reshape(T * J, V - 1), tuple(cameras[o] for o in others),
                             R[others], t[others], use.reshape(T * J, V - 1), threshold[others], cfg.ransac)
            ref = cameras[v].project_world(X).reshape(T, J, 2)
            seen = conf[:, :, v] >= cfg.min_confidence
            d_as = np.linalg.norm(uv[:, :, v] - ref, axis=-1)
            d_sw = np.linalg.norm(uv[:, perm, v] - ref, axis=-1)
            both = seen & seen[:, perm] & np.isfinite(d_as) & np.isfinite(d_sw)
            both = both[:, lr]
            n = both.sum(1)
            cost_as = np.where(both, d_as[:, lr], 0.0).sum(1)
            cost_sw = np.where(both, d_sw[:, lr], 0.0).sum(1)
            # a swap must explain the view clearly better (half the error), on at least two limb pairs' joints
            swapped[:, v] = (n >= 4) & (cost_sw < 0.5 * cost_as)
        if swapped.any():
            uv = uv.copy()
            conf = conf.copy()
            xy_all = xy_all.copy()
            for v in range(V):
                rows = swapped[:, v]
                uv[rows, :, v] = uv[rows][:, perm, v]
                conf[rows, :, v] = conf[rows][:, perm, v]
                xy_all[rows, :, v] = xy_all[rows][:, perm, v]

    use = (conf >= cfg.min_confidence) & np.isfinite(uv).all(-1)
    X, inliers, err = _fit(uv.reshape(T * J, V, 2), xy_all.reshape(T * J, V, 2), conf.reshape(T * J, V),
                           cameras, R, t, use.reshape(T * J, V), threshold, cfg.ransac)
    return Triangulation(world=X.reshape(T, J, 3), inliers=inliers.reshape(T, J, V),
                         reproj_px=err.reshape(T, J, V), swapped=swapped, cameras=cameras)
