"""Write the demo's real-video reference: the Pose2Sim view ``cam01``'s 3D triangulated from all four views.

``selfpose demo`` lifts the shipped ``cam01.mp4`` (Pose2Sim's single-person demo, BSD-3) from that one view and
scores the result against this file, which holds the 3D that ``selfpose triangulate`` made from the four
synchronised, calibrated views (MediaPipe 2D in each), seen from ``cam01`` — the package cannot ship the other
three views (4 MB) for the demo to triangulate itself, so it ships their answer. Made by:

    selfpose keypoints ../shared/data/multiview/pose2sim_single --out K
    selfpose triangulate K --calibration ../shared/data/multiview/pose2sim_single/Calib.qca.txt --out T
    python benchmarks/make_demo_reference.py T src/selfpose/assets/video/pose2sim_cam01_reference.npz

The reference is built from the same detector's 2D, so it flatters detector-based answers (docs/video.md).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def main() -> None:
    from selfpose.keypoints.calibration import read_toml

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("triangulation", type=Path, help="a `selfpose triangulate` output folder")
    ap.add_argument("out", type=Path, help="the .npz to write")
    ap.add_argument("--view", default="cam01")
    args = ap.parse_args()
    with np.load(args.triangulation / "triangulation.npz") as z:
        tri = {k: z[k] for k in z.files}
    names = [str(n) for n in tri["camera_names"]]
    v = names.index(args.view)
    cam = read_toml(args.triangulation / "calibration.toml")[args.view]
    summary = json.loads((args.triangulation / "summary.json").read_text())
    np.savez_compressed(
        args.out, joints3d=tri["cameras"][v].astype(np.float32), reproj_px=tri["reproj_px"].astype(np.float16),
        swapped=tri["swapped"][:, v], focal_px=np.array([cam.fx, cam.fy]), principal_px=np.array([cam.cx, cam.cy]),
        size=np.array([cam.width, cam.height]), view=np.array(args.view),
        note=np.array("3D triangulated by `selfpose triangulate` from the four Pose2Sim views' MediaPipe 2D, in "
                      f"{args.view}'s camera frame (x right, y down, z forward), mm; reprojection error median "
                      f"{summary['reproj_px']['median']:.1f} px, 90th percentile {summary['reproj_px']['p90']:.1f} "
                      "px; made by benchmarks/make_demo_reference.py"))
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
