"""Speed of 3D from real video: the detector, lifting + correction, and the whole pipeline, in frames/s.

Per real clip: the detector's own rate (decoding included), the lifter's rate
on that clip's 2D (the swap pass's two extra lifts, the correction and the bone
fix included — everything `predict` does after detection), and the end-to-end
rate of detection + lifting (lifting: the median of ``--repeat`` timings, after a
warm-up; a single timing of a 40-frame clip varies by ±30%). Lifting is also timed on the clips' 2D repeated
to 2,000 frames, where fixed costs no longer dominate.

    python benchmarks/bench_video.py RUN [--videos ../shared/data/videos] [--threads 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def _timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def main() -> None:
    import torch

    from selfpose.data.datasets.videos import find_videos
    from selfpose.keypoints.detector import detect_video
    from selfpose.keypoints.files import house_keypoints
    from selfpose.lifting.model import Lifter
    from selfpose.lifting.video import VideoLiftConfig, lift_keypoints

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--videos", type=Path, default=Path("../shared/data/videos"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=7, help="lifting is timed this many times per clip; the median")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    lifter = Lifter.load(args.run)
    cfg = VideoLiftConfig()
    print(f"{lifter.cfg.method}, {args.threads} threads, correction {cfg.correct}, swap repair {cfg.repair_swaps}, "
          f"bones fixed {cfg.fixed_bones}")
    print("| clip | frames | detector fps | lifting + correction fps | end to end fps |")
    print("|---|---:|---:|---:|---:|")
    all_xy = []
    for video in find_videos(args.videos):
        det = detect_video(video)
        h = house_keypoints(det.keypoints)
        xy, conf = h[..., :2], np.nan_to_num(h[..., 2])
        lift_keypoints(lifter, xy, conf, det.width, det.height, cfg)   # warm-up
        lift_s = float(np.median([_timed(lift_keypoints, lifter, xy, conf, det.width, det.height, cfg)
                                  for _ in range(args.repeat)]))
        n = len(det)
        print(f"| {video.name} | {n} | {n / det.seconds:.1f} | {n / lift_s:.0f} | {n / (det.seconds + lift_s):.1f} |")
        all_xy.append((xy, conf, det.width, det.height))
    xy, conf, w, h = all_xy[0]
    reps = int(np.ceil(2000 / len(xy)))
    long_xy, long_conf = np.concatenate([xy] * reps)[:2000], np.concatenate([conf] * reps)[:2000]
    t0 = time.perf_counter()
    lift_keypoints(lifter, long_xy, long_conf, w, h, cfg)
    s = time.perf_counter() - t0
    t0 = time.perf_counter()
    lift_keypoints(lifter, long_xy, long_conf, w, h, VideoLiftConfig(correct=False, repair_swaps=False,
                                                                      fixed_bones=False))
    s_plain = time.perf_counter() - t0
    print(f"\n2,000 frames (the first clip's 2D repeated): lifting + correction + swap pass + bone fix "
          f"{2000 / s:.0f} frames/s; lifting alone {2000 / s_plain:.0f} frames/s")


if __name__ == "__main__":
    main()
