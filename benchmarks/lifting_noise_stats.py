"""Measured statistics of the default 2D detector noise on real Human3.6M motion seen through real cameras.

Projects subject S8's mocap (``../shared/data/mocap``) through S8's four cameras
(``../shared/data/fixtures/h36m/cameras.pkl``), applies
:class:`selfpose.lifting.noise.NoiseConfig` defaults with a fixed seed, and
prints per-mode rates and the 2D error of the visible joints against the clean
projections (px). Usage::

    PYTHONPATH=src python benchmarks/lifting_noise_stats.py [--subject S8] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import pickle
from pathlib import Path

import numpy as np

from selfpose.geometry.camera import Camera
from selfpose.lifting.noise import NoiseConfig, corrupt, outside_mask

DATA = Path(os.environ.get("SELFPOSE_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subject", default="S8")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    motion = np.load(DATA / "mocap" / "h36m17_train_S1-S8_25fps.npz")
    with open(DATA / "fixtures" / "h36m" / "cameras.pkl", "rb") as f:
        cams = pickle.load(f)
    cfg = NoiseConfig()
    rng = np.random.default_rng(args.seed)
    err, vis_all, outside, heights = [], [], [], []
    for name in sorted(k for k in motion.files if k.startswith(args.subject + "/")):
        for (subj, _), cam in sorted(cams.items()):
            if subj != args.subject:
                continue
            c = Camera.from_h36m(cam)
            clean = c.project_world(motion[name])  # (T, 17, 2) px
            size = (c.height, c.width)
            outside.append(outside_mask(clean, size).mean())
            noisy, vis = corrupt(clean, cfg, rng, size)
            ok = vis > 0
            err.append(np.linalg.norm(noisy - clean, axis=-1)[ok])
            vis_all.append(vis.ravel())
            heights.append(np.median(clean[..., 1].max(-1) - clean[..., 1].min(-1)))
    e = np.concatenate(err)
    v = np.concatenate(vis_all)
    print(f"subject {args.subject}: {v.size // 17} frames × 17 joints over 4 cameras; "
          f"median 2D person height {np.median(heights):.0f} px")
    print(f"clean projections outside the image: {100 * np.mean(outside):.2f}%")
    print(f"default noise: missing {100 * (1 - v.mean()):.2f}% of joints")
    print(f"2D error of visible joints vs clean (px): mean {e.mean():.2f}, median {np.median(e):.2f}, "
          f"p95 {np.percentile(e, 95):.1f}, p99 {np.percentile(e, 99):.1f}, > 20 px {100 * np.mean(e > 20):.2f}%")


if __name__ == "__main__":
    main()
