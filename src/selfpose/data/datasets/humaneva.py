"""HumanEva-I (VideoPose3D format) → the house store, labels only.

Source folder::

    SOURCE/data_3d_humaneva15.npz      positions_3d[split/subject][action chunk] → (T, 15, 3) world metres, 60 Hz
    SOURCE/data_2d_humaneva15_gt.npz   positions_2d[...][...] → three (T, 15, 2) arrays (cameras C1–C3, 640×480 px)

There are no images and no camera parameters. The 2D ground truth is the
projection of the 3D with the real cameras, so each (subject, camera) is
*calibrated* from its thousands of 2D/3D pairs (all chunks of that subject):
a normalised DLT gives intrinsics and pose, then OpenCV refines them with
radial and tangential distortion (the Human3.6M model that
:class:`~selfpose.geometry.camera.Camera` implements). A calibration is used
only if its worst reprojection error is below ``cfg.calib_max_px``; on the
sample files it is ≈0.3 px worst, ≈0.01 px RMS. Then each view is a sequence
with 3D in that camera's frame (mm) and the 2D; otherwise (or without the 2D
file) the 3D stays in the world frame — ``attrs["joints3d_frame"] == "world"``
and ``camera is None`` say so.

Sequences have no frames: ``height``/``width`` are the cameras' 640×480 and
``attrs["has_frames"]`` is False; ``PrepareConfig.size``/``crop`` do not apply.
Sequence = one view of one chunk (a stretch of valid mocap); views of a chunk
share its take id and frame ids.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from selfpose.data.datasets.config import PrepareConfig, PrepareError, warn
from selfpose.data.datasets.framing import keep_indices
from selfpose.data.datasets.safe_read import npz_object, read_npz
from selfpose.geometry.camera import Camera
from selfpose.geometry.skeleton import to_h36m

HUMANEVA_FPS = 60.0
WIDTH, HEIGHT = 640, 480
CAMERAS = ("C1", "C2", "C3")
FILE_3D = "data_3d_humaneva15.npz"
FILE_2D = "data_2d_humaneva15_gt.npz"
#: House joints that HumanEva lacks and that are midpoints of two of its joints (spine, neck/nose).
_DERIVED = [7, 9]


def _dlt(X: np.ndarray, x: np.ndarray) -> np.ndarray:
    """3×4 projection matrix from ``(N, 3)`` points and ``(N, 2)`` pixels (Hartley-normalised DLT)."""
    m, s = X.mean(0), X.std() + 1e-12
    mx, sx = x.mean(0), x.std() + 1e-12
    Xn, xn = (X - m) / s, (x - mx) / sx
    n = len(X)
    Xh = np.c_[Xn, np.ones(n)]
    A = np.zeros((2 * n, 12))
    A[0::2, 0:4], A[0::2, 8:12] = Xh, -xn[:, :1] * Xh
    A[1::2, 4:8], A[1::2, 8:12] = Xh, -xn[:, 1:2] * Xh
    _, V = np.linalg.eigh(A.T @ A)  # smallest eigenvector of the normal matrix = least-squares null vector
    P = V[:, 0].reshape(3, 4)
    T3 = np.diag([1 / s, 1 / s, 1 / s, 1.0])
    T3[:3, 3] = -m / s
    T2 = np.diag([sx, sx, 1.0])
    T2[:2, 2] = mx
    return T2 @ P @ T3


def calibrate(X_world_mm: np.ndarray, uv: np.ndarray, width: int, height: int,
              max_points: int = 4000, seed: int = 0) -> tuple[Camera, np.ndarray]:
    """A camera (intrinsics, distortion, pose) from 2D/3D correspondences.

    Args:
        X_world_mm: ``(N, 3)`` world points, mm (not all on one plane).
        uv: ``(N, 2)`` their pixels.
        width, height: image size, pixels.

    Returns:
        ``(camera, errors)``: the camera and the ``(N,)`` reprojection errors, pixels.
    """
    import cv2

    ok = np.isfinite(X_world_mm).all(1) & np.isfinite(uv).all(1)
    X, x = X_world_mm[ok], uv[ok]
    if len(X) < 12:
        raise PrepareError("too few 2D/3D pairs to calibrate a camera")
    P = _dlt(X, x)
    if np.linalg.det(P[:, :3]) < 0:  # the DLT's sign is arbitrary; points must lie in front
        P = -P
    K, R = cv2.RQDecomp3x3(P[:, :3])[1:3]
    D = np.diag(np.sign(np.diag(K)))
    K, R = K @ D, D @ R
    t = np.linalg.solve(K, P[:, 3])
    t, K = t / K[2, 2], K / K[2, 2]
    K[0, 1] = 0.0  # no skew in OpenCV's (or Camera's) model
    sel = np.random.default_rng(seed).choice(len(X), min(len(X), max_points), replace=False)
    flags = cv2.CALIB_USE_INTRINSIC_GUESS | cv2.CALIB_USE_EXTRINSIC_GUESS | cv2.CALIB_FIX_K3
    _, K, dist, rvecs, tvecs = cv2.calibrateCamera(
        [X[sel].astype(np.float32)], [x[sel].astype(np.float32)], (width, height), K, np.zeros(5),
        [cv2.Rodrigues(R)[0]], [t.reshape(3, 1)], flags=flags)
    k1, k2, p1, p2, k3 = np.asarray(dist, np.float64).ravel()[:5]
    # OpenCV's and Human3.6M's distortion models coincide for (k1, k2, k3) and (p1, p2).
    cam = Camera(K[0, 0], K[1, 1], K[0, 2], K[1, 2], width, height, k=(k1, k2, k3), p=(p1, p2),
                 R=cv2.Rodrigues(rvecs[0])[0], t=np.asarray(tvecs[0], np.float64).ravel())
    err = np.full(len(uv), np.nan)
    err[ok] = np.linalg.norm(cam.project_world(X) - x, axis=1)
    return cam, err


def _split_action(name: str) -> tuple[str, str]:
    """``"Box 1 chunk3"`` → (``"Box"``, ``"Box_1_chunk3"``)."""
    action = re.split(r"\s+\d", name, maxsplit=1)[0].strip() or name
    return action, re.sub(r"\s+", "_", name.strip())


def prepare_humaneva(source: Path, writer, cfg: PrepareConfig, progress: bool | None = None) -> dict[str, Any]:
    """Write HumanEva-I sequences (labels only) into ``writer``; returns facts for the dataset attrs."""
    from selfpose.data.sequence import SequenceMeta, safe_id
    from selfpose.utils.progress import track

    root = source.parent if source.is_file() else source
    p3 = root / FILE_3D
    if not p3.is_file():
        raise PrepareError(f"{p3} not found; pass the folder holding VideoPose3D's {FILE_3D} (and {FILE_2D})")
    pos3d = npz_object(read_npz(p3, ("positions_3d",), error=PrepareError), "positions_3d", p3, error=PrepareError)
    p2 = root / FILE_2D
    pos2d = npz_object(read_npz(p2, ("positions_2d",), error=PrepareError), "positions_2d", p2,
                       error=PrepareError) if p2.is_file() else None
    if pos2d is None:
        warn(f"{p2} not found: no 2D, no cameras; 3D stays in the world frame")

    def subject_of(key: str) -> str:
        return key.split("/")[-1]

    keys = [k for k in pos3d if not cfg.subjects or subject_of(k) in cfg.subjects]
    if not keys:
        raise PrepareError(f"no subject selected in {p3}; it has {', '.join(sorted({subject_of(k) for k in pos3d}))}")

    # Calibrate every (subject, camera) on all of that subject's chunks (train and validation alike).
    cams: dict[tuple[str, int], Camera] = {}
    calib: dict[str, dict[str, float]] = {}
    if pos2d is not None:
        for subj in sorted({subject_of(k) for k in keys}):
            for c, cname in enumerate(CAMERAS):
                X, x = [], []
                for k in pos3d:
                    if subject_of(k) != subj:
                        continue
                    for a, arr in pos3d[k].items():
                        views = pos2d.get(k, {}).get(a)
                        if views is None or len(views) <= c or len(views[c]) != len(arr):
                            continue
                        X.append(np.asarray(arr, np.float64).reshape(-1, 3) * 1000.0)
                        x.append(np.asarray(views[c], np.float64).reshape(-1, 2))
                if not X:
                    continue
                cam, err = calibrate(np.concatenate(X), np.concatenate(x), WIDTH, HEIGHT)
                worst = float(np.nanmax(err))
                calib[f"{subj}_{cname}"] = {"max_px": worst, "rms_px": float(np.sqrt(np.nanmean(err ** 2)))}
                if worst <= cfg.calib_max_px:
                    cams[(subj, c)] = cam
                else:
                    warn(f"HumanEva {subj} {cname}: estimated camera reprojects with up to {worst:.1f} px "
                         f"(> calib_max_px = {cfg.calib_max_px}); its 3D stays in the world frame")

    items = [(k, a) for k in keys for a in pos3d[k]]
    n_seq = 0
    for k, a in track(items, "HumanEva", enabled=progress):
        split, _, subj = k.rpartition("/")
        action, take_name = _split_action(a)
        world = np.asarray(pos3d[k][a], np.float64) * 1000.0  # (T, 15, 3) mm
        idx = keep_indices(len(world), cfg.step, cfg.max_frames)
        take = safe_id(split, subj, take_name)
        views = pos2d.get(k, {}).get(a) if pos2d is not None else None
        base = {"has_frames": False, "split": split, "source_chunk": a, "source_fps": HUMANEVA_FPS}
        fps = HUMANEVA_FPS / cfg.step
        if views is None:
            j3, _ = to_h36m(world[idx], "humaneva15")
            meta = SequenceMeta(safe_id(take, "world"), subj, action, take, "world", fps, len(idx), HEIGHT, WIDTH,
                                None, attrs={**base, "joints3d_frame": "world", "world_up": "z"})
            writer.write_sequence(meta, frame_ids=idx.astype(np.int64), joints3d=j3)
            n_seq += 1
            continue
        for c, uv in enumerate(views):
            cname = CAMERAS[c] if c < len(CAMERAS) else f"C{c + 1}"
            uv = np.asarray(uv, np.float64)
            if len(uv) != len(world):
                raise PrepareError(f"{p2}: {k}/{a} camera {cname} has {len(uv)} frames, the 3D has {len(world)}")
            j2, _ = to_h36m(uv[idx], "humaneva15")
            arrays = {"frame_ids": idx.astype(np.int64), "joints2d": j2,
                      "joints2d_conf": np.isfinite(j2).all(-1).astype(np.float32)}
            cam = cams.get((subj, c))
            attrs = dict(base)
            if cam is not None:
                arrays["joints3d"] = to_h36m(cam.world_to_camera(world[idx]), "humaneva15")[0]
                # Derived joints (spine, neck/nose: midpoints in 3D) project where their 3D
                # projects, not at the midpoint of the projections.
                arrays["joints2d"][:, _DERIVED] = cam.project(arrays["joints3d"][:, _DERIVED])
                attrs.update(joints3d_frame="camera", camera_estimated=True, calibration=calib[f"{subj}_{cname}"])
            else:
                arrays["joints3d"] = to_h36m(world[idx], "humaneva15")[0]
                attrs.update(joints3d_frame="world", world_up="z")
            meta = SequenceMeta(safe_id(take, cname), subj, action, take, cname, fps, len(idx), HEIGHT, WIDTH,
                                cam, attrs=attrs)
            writer.write_sequence(meta, **arrays)
            n_seq += 1
    return {"num_sequences": n_seq, "has_frames": False, "calibration": calib,
            "notes": ["no frames: HumanEva sequences carry 2D (640x480 px) and 3D only",
                      "cameras estimated from the 2D/3D ground truth (DLT + OpenCV refinement with distortion)"]}
