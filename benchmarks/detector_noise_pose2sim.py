"""How noisy is the 2D detector? Its 2D against the triangulated 3D of four real synchronised views.

No ground-truth 2D exists for real footage, but four calibrated views do: the
3D triangulated from all four re-projects into each view, and what is left is
the detector's error (minus what the consensus absorbs: with 4 views and a
3-parameter point the residual variance is 1 − 3/8 of the error's, so the
per-axis std is corrected by √(8/5); a bias shared by every view — MediaPipe
putting its hips where Human3.6M does not — stays in the 3D and is not seen here).

Prints the settings of :class:`selfpose.lifting.noise.NoiseConfig` that match it,
in px at a person 320 px tall (``person_px: 320``, Human3.6M's scale):
per-axis jitter std (overall and per joint, relative to the overall), the rate
of gross errors, of left/right swaps (frames the triangulation repaired) and of
missing joints (visibility < 0.5).

    selfpose keypoints ../shared/data/multiview/pose2sim_single --out K
    selfpose triangulate K --calibration ../shared/data/multiview/pose2sim_single/Calib.qca.txt --out T
    python benchmarks/detector_noise_pose2sim.py K T
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

REFERENCE_PX = 320.0


def main() -> None:
    from selfpose.geometry.skeleton import H36M17
    from selfpose.keypoints.calibration import read_toml

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("keypoints", type=Path)
    ap.add_argument("triangulation", type=Path)
    ap.add_argument("--gross", type=float, default=40.0, help="a residual beyond this (px at 320) is a gross error")
    args = ap.parse_args()
    tri = np.load(args.triangulation / "triangulation.npz")
    names = [str(n) for n in tri["camera_names"]]
    cams = read_toml(args.triangulation / "calibration.toml")
    world, swapped = tri["world"], tri["swapped"]
    perm = H36M17.flip_permutation()
    res_rel, vis_all, rows = [], [], []
    for v, name in enumerate(names):
        det = np.load(args.keypoints / f"{name}.npz")["h36m17"]          # (T, 17, 3) x, y, conf
        xy, conf = det[..., :2].astype(np.float64), det[..., 2]
        xy = np.where(swapped[:, v, None, None], xy[:, perm], xy)       # compare after the repair
        conf = np.where(swapped[:, v, None], conf[:, perm], conf)
        ref = cams[name].project_world(world)
        extent = (ref.max(1) - ref.min(1)).max(-1)                      # (T,) px
        rel = (xy - ref) * (REFERENCE_PX / extent)[:, None, None]       # px at a 320-px person
        ok = (conf >= 0.5) & np.isfinite(rel).all(-1) & np.isfinite(ref).all(-1)
        res_rel.append(np.where(ok[..., None], rel, np.nan))
        vis_all.append(conf)
        rows.append({"view": name, "person_px_median": float(np.median(extent)),
                     "residual_px_median": float(np.nanmedian(np.linalg.norm(xy - ref, axis=-1)[ok])),
                     "swapped_frames": int(swapped[:, v].sum())})
    r = np.stack(res_rel, 2)                                            # (T, 17, V, 2)
    norm = np.linalg.norm(r, axis=-1)
    gross = norm > args.gross
    clean = np.where(gross[..., None], np.nan, r)
    correction = np.sqrt(8 / 5)
    std_axis = float(np.nanstd(clean)) * correction
    per_joint = np.nanstd(clean.transpose(1, 0, 2, 3).reshape(17, -1), axis=1) * correction
    vis = np.stack(vis_all, 2)
    out = {
        "views": rows,
        "jitter_std_px_at_320": round(std_axis, 2),
        "jitter_joint_scale": [round(float(x), 2) for x in per_joint / std_axis],
        "median_error_px_at_320": round(float(np.nanmedian(norm)) * correction, 2),
        "gross_rate": round(float(gross.sum() / np.isfinite(norm).sum()), 4),
        "gross_threshold_px_at_320": args.gross,
        "swap_rate_per_frame": round(float(swapped.mean()), 4),
        "missing_rate": round(float((vis < 0.5).mean()), 4),
        "frames_x_views": int(swapped.size),
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
