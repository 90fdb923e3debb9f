"""Does the swap repair find planted left/right swaps? Held-out people, synthetic detector noise, several windows.

Takes sequences of the test subject (never trained on) from a keypoint dataset
(``prepare mocap``), adds the lifter's own detector noise, exchanges left and
right over one episode per sequence (a whole-body swap, as MediaPipe makes when
it sees a person from the side or the back), runs
:func:`selfpose.lifting.video.repair_swaps` on the clip lifted with windows of
each length given, and counts planted frames found (recall) and frames
exchanged that were not planted (false).

    python benchmarks/swap_repair_probe.py RUN --data D [--subjects S8] [--windows 8,16,32,128]
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np


def main() -> None:
    from selfpose.geometry.skeleton import H36M17
    from selfpose.lifting.data import load_arrays
    from selfpose.lifting.model import Lifter
    from selfpose.lifting.noise import corrupt
    from selfpose.lifting.video import _arrays, facing, repair_swaps

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--subjects", default="S8")
    ap.add_argument("--windows", default="8,16,32,128")
    ap.add_argument("--sequences", type=int, default=24)
    ap.add_argument("--frames", type=int, default=200, help="frames per clip (from each sequence's start)")
    args = ap.parse_args()
    lifter = Lifter.load(args.run)
    arr = load_arrays(args.data, subjects=args.subjects.split(","))
    seqs = list(dict.fromkeys(arr.sequences))
    rng = np.random.default_rng(0)
    pick = [seqs[i] for i in rng.choice(len(seqs), size=min(args.sequences, len(seqs)), replace=False)]
    perm = H36M17.flip_permutation()
    clips = []
    for s in pick:
        idx = np.flatnonzero(arr.sequences == s)[: args.frames]
        xy = arr.joints2d[idx].astype(np.float64)
        noisy, vis = corrupt(xy, lifter.cfg.noise, np.random.default_rng(len(clips)))
        noisy = np.where(vis[..., None] > 0, noisy, xy)   # missing joints: keep the clean ones (filling is not probed)
        T = len(idx)
        n = int(rng.integers(15, 45))
        start = int(rng.integers(0, max(1, T - n)))
        planted = np.zeros(T, bool)
        planted[start:start + n] = True
        noisy = np.where(planted[:, None, None], noisy[:, perm], noisy)
        h, w = arr.image_hw[idx[0]]
        clips.append((noisy, planted, int(w), int(h), float(arr.focal[idx[0], 0])))
    print(f"{len(clips)} clips of {args.subjects}, {sum(p.sum() for _, p, *_ in clips)} planted swapped frames "
          f"of {sum(len(p) for _, p, *_ in clips)}")
    print("| window (frames) | planted found | exchanged but not planted |")
    print("|---:|---:|---:|")
    for win in [int(x) for x in args.windows.split(",")]:
        cfg = lifter.cfg
        if cfg.method == "pose_machine":
            lifter.cfg = dataclasses.replace(cfg, pose_machine=dataclasses.replace(cfg.pose_machine, predict_clip=win))
        found = false = planted_total = 0
        for xy, planted, w, h, f in clips:
            a = lifter.predict(_arrays(xy, w, h, f, "c"), correction=False)
            b = lifter.predict(_arrays(xy[:, perm], w, h, f, "c"), correction=False)
            s = repair_swaps(facing(a), facing(b))
            found += int((s & planted).sum())
            false += int((s & ~planted).sum())
            planted_total += int(planted.sum())
        lifter.cfg = cfg
        print(f"| {win} | {found} / {planted_total} ({found / planted_total:.1%}) | {false} |")


if __name__ == "__main__":
    main()
