"""``selfpose triangulate``: a calibrated multi-camera user's 3D from per-view keypoint files.

Inputs: a folder of keypoint files (``selfpose keypoints``, or any 2D source
in the same format), one per camera, named after the camera
(``cam01.npz`` for the calibration's ``cam01``), synchronised and equally
long; and a calibration (:mod:`selfpose.keypoints.calibration`).

Output folder ``T``:

* ``triangulation.npz`` — ``world`` ``(T, 17, 3)`` mm in the calibration's
  world frame (NaN where fewer than two views agree), ``cameras``
  ``(V, T, 17, 3)`` the same in each camera's frame (x right, y down, z
  forward, mm), ``reproj_px`` ``(T, 17, V)``, ``inliers`` ``(T, 17, V)``,
  ``swapped`` ``(T, V)``, ``camera_names``;
* ``summary.json`` — reprojection error (median, 90th percentile, per
  joint), limb-length consistency, frames with every joint, swaps repaired
  per view, how each video's frame maps onto its camera's sensor;
* ``calibration.toml`` — the cameras as used, in the OpenCV/Pose2Sim layout;
* ``triangulation.png`` — the 3D seen from the front and from above.

Video frame vs sensor: a calibration may describe a larger sensor than the
video holds (Pose2Sim's demo: a 1088-px-wide sensor, two videos 1080 px
wide). The frame is then taken as the sensor's top-left part (principal
point unchanged, the extra columns/rows cut off the right/bottom): of the
candidates the reprojection probe (``benchmarks/multiview_calibration_probe.py``,
results in ``docs/keypoints.md``) tried on those views — that crop, the
centred crop, an 8-px left crop and a horizontal rescale — it reprojected
best (median 12.1 px against 13.2, 13.9 and 12.5), though by less than the
detector's own error; a larger mismatch is an error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from selfpose.errors import SelfposeError
from selfpose.geometry.camera import Camera
from selfpose.keypoints.calibration import read_calibration, write_toml
from selfpose.keypoints.triangulate import Triangulation, TriangulationConfig, triangulate

KIND = "triangulation"


class MultiviewError(SelfposeError, ValueError):
    """Keypoint files and calibration do not fit together."""


def fit_camera_to_frame(cam: Camera, width: int, height: int) -> tuple[Camera, str]:
    """The camera for a video of ``width × height`` px; returns it and what was done, in words.

    Equal sizes: unchanged. A video narrower or shorter than the sensor by
    5% at most: the sensor's top-left part (principal point unchanged; see
    the module docstring for the evidence). Anything else: :class:`MultiviewError`.
    """
    if (width, height) == (cam.width, cam.height):
        return cam, "as calibrated"
    dw, dh = cam.width - width, cam.height - height
    if 0 <= dw <= 0.05 * cam.width and 0 <= dh <= 0.05 * cam.height:
        return cam.cropped(0, 0, width, height), f"top-left {width}x{height} of the {cam.width}x{cam.height} sensor"
    raise MultiviewError(f"a {width}x{height} video does not fit its camera's {cam.width}x{cam.height} calibrated "
                         "image; give the keypoints of the calibrated videos")


def load_views(keypoints: Path, cameras: dict[str, Camera]) -> tuple[np.ndarray, np.ndarray, list[Camera], list[str]]:
    """Each camera's house-skeleton keypoints: ``(uv (T, 17, V, 2), conf (T, 17, V), cameras, notes)``."""
    from selfpose.data.datasets.framing import FrameTransform
    from selfpose.data.datasets.keypoints import find_keypoints, load_keypoints

    if not keypoints.is_dir():
        raise MultiviewError(f"keypoint folder {keypoints} not found; make it with `selfpose keypoints VIDEOS --out "
                             f"{keypoints}`")
    from selfpose.data.datasets.keypoints import KEYPOINT_SUFFIXES

    unknown = sorted(p.stem for p in keypoints.iterdir()
                     if p.suffix in KEYPOINT_SUFFIXES and p.stem not in cameras and not p.name.startswith(".")
                     and p.name != "summary.json")
    if unknown:
        raise MultiviewError(f"the calibration has no camera {', '.join(repr(u) for u in unknown)} (it has "
                             f"{', '.join(cameras)}); give the calibration of those views, or move their keypoint "
                             "files out of the folder")
    uvs, confs, cams, notes, lengths = [], [], [], [], {}
    for name, cam in cameras.items():
        path = find_keypoints(keypoints / f"{name}.mp4", keypoints)
        if path is None:
            raise MultiviewError(f"no keypoint file for camera {name!r} in {keypoints} (expected {name}.npz or "
                                 f"{name}.json); run `selfpose keypoints` on that camera's video")
        width, height = cam.width, cam.height
        if path.suffix == ".npz":
            with np.load(path) as d:
                if "width" in d and "height" in d:
                    width, height = int(d["width"]), int(d["height"])
        cam, how = fit_camera_to_frame(cam, width, height)
        kp = load_keypoints(path, width, height)
        xy, conf = kp.to_house(np.arange(len(kp)), FrameTransform.letterbox(width, height, 0))
        uvs.append(np.where((conf > 0)[..., None], xy, np.nan))
        confs.append(conf)
        cams.append(cam)
        notes.append(f"{name}: {path.name}, {len(kp)} frames, {width}x{height} ({how})")
        lengths[path.name] = len(kp)
    if len(set(lengths.values())) > 1:
        raise MultiviewError("the views' keypoint files differ in length (" + ", ".join(
            f"{k}: {v}" for k, v in lengths.items()) + "); give synchronised videos of the same length")
    if len(cams) < 2:
        raise MultiviewError(f"triangulation needs at least two cameras; the calibration has {len(cams)}")
    return np.stack(uvs, 2), np.stack(confs, 2), cams, notes


def summarize(res: Triangulation, names: list[str]) -> dict[str, Any]:
    """The figures of ``summary.json``."""
    from selfpose.evaluation.metrics import limb_length_consistency
    from selfpose.geometry.skeleton import H36M17

    err = np.where(res.inliers, res.reproj_px, np.nan)
    flat = err[np.isfinite(err)]
    full = np.isfinite(res.world).all((1, 2))
    per_joint = {H36M17.joint_names[j]: float(np.nanmedian(err[:, j])) if np.isfinite(err[:, j]).any() else None
                 for j in range(err.shape[1])}
    return {
        "frames": int(len(res.world)), "frames_all_joints": int(full.sum()),
        "points_triangulated": float(np.isfinite(res.world).all(-1).mean()),
        "reproj_px": {"median": float(np.median(flat)) if flat.size else None,
                      "p90": float(np.percentile(flat, 90)) if flat.size else None, "per_joint_median": per_joint},
        "views_per_point": float(res.inliers.sum(-1)[np.isfinite(res.world).all(-1)].mean())
        if np.isfinite(res.world).any() else 0.0,
        "limb_length_cv": limb_length_consistency(res.world, full),
        "swaps_repaired": {n: int(res.swapped[:, v].sum()) for v, n in enumerate(names)},
    }


def triangulate_folder(keypoints: str | Path, calibration: str | Path, out: str | Path,
                       cfg: TriangulationConfig | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Triangulate the per-camera keypoint files in ``keypoints`` with ``calibration`` into ``out``.

    Returns the summary (also written to ``out/summary.json``).

    Raises:
        CalibrationError: unreadable calibration.
        MultiviewError: a camera without its keypoint file, views of different lengths, a video that does
            not fit its camera.
        OutputError: ``out`` exists (without ``overwrite``) or is not a triangulation folder.
    """
    from selfpose.geometry.skeleton import H36M17
    from selfpose.outputs import atomic_output, check_output

    keypoints, calibration, out = Path(keypoints), Path(calibration), Path(out)
    check_output(out, KIND, overwrite=overwrite, inputs=[keypoints, calibration])
    cameras = read_calibration(calibration)
    uv, conf, cams, notes = load_views(keypoints, cameras)
    names = list(cameras)
    res = triangulate(uv, conf, cams, flip_pairs=H36M17.flip_pairs, cfg=cfg)
    summary = summarize(res, names)
    summary.update(views=notes, calibration=str(calibration), keypoints=str(keypoints))
    with atomic_output(out, KIND, overwrite=overwrite, inputs=[keypoints, calibration]) as tmp:
        np.savez(tmp / "triangulation.npz", world=res.world.astype(np.float32),
                 cameras=np.stack([res.in_camera(v) for v in range(len(cams))]).astype(np.float32),
                 reproj_px=res.reproj_px.astype(np.float32), inliers=res.inliers, swapped=res.swapped,
                 camera_names=np.array(names))
        write_toml(dict(zip(names, cams)), tmp / "calibration.toml")
        (tmp / "summary.json").write_text(json.dumps(summary, indent=1))
        _picture(res.world, tmp / "triangulation.png")
    return summary


def _picture(world: np.ndarray, path: Path) -> None:
    """The triangulated skeleton at six moments, seen from the front (x, z) and from above (x, y)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from selfpose.geometry.skeleton import H36M17

    ok = np.flatnonzero(np.isfinite(world).all((1, 2)))
    fig, axes = plt.subplots(2, 6, figsize=(13, 5))
    if len(ok):
        frames = ok[np.linspace(0, len(ok) - 1, 6).round().astype(int)]
        pts = world[ok].reshape(-1, 3)
        lo, hi = pts.min(0), pts.max(0)
        mid, half = (lo + hi) / 2, (hi - lo).max() / 2 + 50
        for col, t in enumerate(frames):
            for row, (a, b, label) in enumerate(((0, 2, "front (x, z)"), (0, 1, "above (x, y)"))):
                ax = axes[row, col]
                for p, c in H36M17.bones:
                    side = H36M17.joint_names[c].split("_")[0]
                    color = {"left": "tab:blue", "right": "tab:red"}.get(side, "0.4")
                    ax.plot(world[t, [p, c], a], world[t, [p, c], b], color=color, lw=2)
                ax.set_xlim(mid[a] - half, mid[a] + half)
                ax.set_ylim(mid[b] - half, mid[b] + half)
                ax.set_aspect("equal")
                ax.set_xticks([])
                ax.set_yticks([])
                ax.set_title(f"frame {t}" if row == 0 else "", fontsize=9)
                if col == 0:
                    ax.set_ylabel(label, fontsize=9)
    fig.suptitle("triangulated 3D (world frame, mm; left limbs blue, right red, spine and head grey)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
