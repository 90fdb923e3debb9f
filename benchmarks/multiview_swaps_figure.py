"""Picture: one view's detected 2D against the triangulated 3D re-projected into it, around its repaired swaps.

    selfpose keypoints ../shared/data/multiview/pose2sim_single --out K
    selfpose triangulate K --calibration ../shared/data/multiview/pose2sim_single/Calib.qca.txt --out T
    python benchmarks/multiview_swaps_figure.py ../shared/data/multiview/pose2sim_single K T --view cam02 \
        --frames 38,41,50,60,75 --out benchmarks/results/multiview_pose2sim/cam02_swaps.jpg
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from selfpose.data.video import read_frames
    from selfpose.geometry.skeleton import H36M17
    from selfpose.keypoints.calibration import read_calibration
    from selfpose.keypoints.multiview import fit_camera_to_frame

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("videos", type=Path)
    ap.add_argument("keypoints", type=Path)
    ap.add_argument("triangulation", type=Path)
    ap.add_argument("--view", required=True)
    ap.add_argument("--frames", required=True, help="comma-separated frame indices")
    ap.add_argument("--calibration", type=Path, default=None, help="default: VIDEOS/Calib.qca.txt")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    tri = np.load(args.triangulation / "triangulation.npz")
    names = [str(n) for n in tri["camera_names"]]
    v = names.index(args.view)
    kp = np.load(args.keypoints / f"{args.view}.npz")
    det = kp["h36m17"]
    cam = read_calibration(args.calibration or args.videos / "Calib.qca.txt")[args.view]
    cam, _ = fit_camera_to_frame(cam, int(kp["width"]), int(kp["height"]))
    rep = cam.project_world(tri["world"])
    frames = read_frames(args.videos / f"{args.view}.mp4")
    idx = [int(x) for x in args.frames.split(",")]
    fig, axes = plt.subplots(2, len(idx), figsize=(3.2 * len(idx), 8.4), squeeze=False)
    for col, t in enumerate(idx):
        for row, (pts, name) in enumerate(((det, "detected 2D"), (rep, "triangulated 3D, re-projected"))):
            ax = axes[row, col]
            x0, x1 = np.nanmin(det[t, :, 0]) - 80, np.nanmax(det[t, :, 0]) + 80
            y0, y1 = np.nanmin(det[t, :, 1]) - 80, np.nanmax(det[t, :, 1]) + 80
            ax.imshow(frames[t])
            ax.set_xlim(x0, x1)
            ax.set_ylim(y1, y0)
            for p, c in H36M17.bones:
                side = H36M17.joint_names[c].split("_")[0]
                ax.plot(pts[t, [p, c], 0], pts[t, [p, c], 1], lw=3,
                        color={"left": "tab:blue", "right": "tab:red"}.get(side, "white"))
            flag = " — swap repaired" if tri["swapped"][t, v] else ""
            ax.set_title(f"frame {t}: {name}{flag}", fontsize=8)
            ax.axis("off")
    fig.suptitle(f"{args.view}: the person's left limbs blue, right red", fontsize=10)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=70)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
