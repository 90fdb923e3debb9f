"""Synthetic renderer throughput: frames/s at 128×128 with real Human3.6M motion.

Usage: ``python benchmarks/bench_render.py [--frames 512] [--size 128] [--threads 1]``.
Uses ``../shared/data/mocap`` beside the repository when present, otherwise the
CMU motion shipped with the package. The person fills ~40% of the frame height.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from selfpose.data.synthetic.render import benchmark_render

MOCAP = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mocap" / "h36m17_train_S1-S8_25fps.npz"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=512)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--supersample", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3, help="report the best of this many runs")
    args = ap.parse_args()
    motion, source = None, "packaged CMU motion"
    if MOCAP.exists():
        with np.load(MOCAP) as npz:
            motion, source = npz["S1/walking_1"], f"{MOCAP.name}:S1/walking_1"
    fps = max(benchmark_render(args.frames, args.size, motion=motion, num_threads=args.threads,
                               supersample=args.supersample) for _ in range(args.repeats))
    print(f"render: {fps:.0f} frames/s at {args.size}x{args.size} (supersample {args.supersample}, "
          f"{args.frames} frames, {source})")


if __name__ == "__main__":
    main()
