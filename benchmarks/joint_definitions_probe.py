"""Where does MediaPipe put the house joints, compared with the Human3.6M motion's skeleton?

Ratios of segment lengths to the leg (thigh + shin), medians over frames, from
MediaPipe's metric world landmarks (``world`` in the files of ``selfpose
keypoints``) of each video, and from the Human3.6M motion's first take (one
shared skeleton). ``selfpose.geometry.joint_definitions`` uses the median over
the videos given.

    selfpose keypoints ../shared/data/videos --out K
    python benchmarks/joint_definitions_probe.py K [--motion ../shared/data/mocap/h36m17_train_S1-S8_25fps.npz]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

SEGMENTS = {"hip width": (1, 4), "shoulder width": (11, 14), "pelvis-thorax": (0, 8), "thorax-nose": (8, 9),
            "thorax-head": (8, 10), "upper arm": (14, 15), "forearm": (15, 16), "thigh": (1, 2)}


def ratios(J: np.ndarray) -> dict[str, float]:
    d = lambda a, b: float(np.nanmedian(np.linalg.norm(J[:, a] - J[:, b], axis=-1)))  # noqa: E731
    leg = d(1, 2) + d(2, 3)
    return {k: d(a, b) / leg for k, (a, b) in SEGMENTS.items()}


def main() -> None:
    from selfpose.data.synthetic.mocap import MotionFile
    from selfpose.keypoints.files import world_house_mm

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("keypoints", type=Path)
    ap.add_argument("--motion", type=Path, default=Path("../shared/data/mocap/h36m17_train_S1-S8_25fps.npz"))
    args = ap.parse_args()
    rows = {}
    for f in sorted(args.keypoints.glob("*.npz")):
        J = world_house_mm(np.load(f)["world"])   # segment ratios do not depend on the origin
        rows[f.stem] = ratios(J)
    with MotionFile(args.motion) as mf:
        h36m = ratios(mf.load(mf.select(())[0]).joints)
    med = {k: float(np.median([r[k] for r in rows.values()])) for k in SEGMENTS}
    print("| segment / leg | " + " | ".join(rows) + " | median | Human3.6M motion | ratio |")
    print("|---|" + "---:|" * (len(rows) + 3))
    for k in SEGMENTS:
        print(f"| {k} | " + " | ".join(f"{r[k]:.3f}" for r in rows.values())
              + f" | {med[k]:.3f} | {h36m[k]:.3f} | {med[k] / h36m[k]:.2f} |")


if __name__ == "__main__":
    main()
