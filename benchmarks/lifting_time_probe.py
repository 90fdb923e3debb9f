"""Does a temporal lifter use time? Score it with its test frames in order, shuffled, and each frame alone.

A lifter that reads a window of frames (``temporal_conv``, ``pose_machine``) is
scored three ways on the same test frames, with the same 2D input (noise, when
the run was trained with it, drawn once per sequence in time order and then
kept — so every variant sees the same 2D of each frame):

* **ordered** — as ``selfpose evaluate`` does: each sequence in time order;
* **shuffled** — each sequence's frames permuted at random (same person, same
  take, same set of 2D poses, but no continuity: the context is other instants);
* **alone** — every frame its own one-frame sequence, which the lifter's
  edge padding turns into a window of copies of that frame (no context at all).

ordered ≈ alone: the lifter reads only the current frame (time buys nothing);
ordered < alone: context helps; shuffled > alone: the lifter relies on
continuity and is hurt by a wrong context. ``martinez`` (single frame) scores
the same three ways and is the check that the variants change nothing else.

Frames are scored every ``--stride``-th frame of each test sequence (the
"alone" variant of ``pose_machine`` costs a whole prediction window per frame).
Correction off; MPJPE in mm, pelvis-centred camera frame::

    PYTHONPATH=src python benchmarks/lifting_time_probe.py --data H --run martinez=RUN1 --run temporal_conv=RUN2 \
        --subjects S8 --exclude-takes S8__smoking_1,S8__smoking_2 [--stride 4] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def shuffled_order(sequences: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``(N,)`` a permutation of ``arange(N)`` that moves frames only within their (contiguous) sequence."""
    from selfpose.lifting.windows import sequence_bounds

    starts, ends = sequence_bounds(sequences)
    order = np.arange(len(sequences))
    for s in np.unique(starts):
        e = int(ends[s])
        order[s:e] = s + rng.permutation(e - s)
    return order


def score_variants(lifter, arrays, raw: np.ndarray, picked: np.ndarray, seed: int = 0) -> dict:
    """MPJPE (mm) of ``lifter`` on the frames ``picked`` of ``arrays`` (2D encoded as ``raw``), three ways."""
    from selfpose.evaluation.metrics import mpjpe

    truth = arrays.joints3d[picked]
    out = {}
    t0 = time.perf_counter()
    pred = lifter.predict(arrays, raw=raw, correction=False)
    out["ordered"] = float(mpjpe(pred[picked], truth))
    order = shuffled_order(arrays.sequences, np.random.default_rng(seed))
    pred_s = lifter.predict(arrays.subset(order), raw=raw[order], correction=False)
    back = np.empty_like(order)
    back[order] = np.arange(len(order))
    out["shuffled"] = float(mpjpe(pred_s[back][picked], truth))
    alone = arrays.subset(picked)
    alone.sequences = np.array([f"alone{i}" for i in range(len(picked))])
    # "alone" windows: one target frame (a martinez MLP, or temporal_conv over its receptive field of copies);
    # pose_machine's LSTMs get its training clip of copies, the sequence length they learnt on
    clip = lifter.cfg.pose_machine.clip if lifter.cfg.method == "pose_machine" else 1
    out["alone"] = float(mpjpe(lifter.predict(alone, raw=raw[picked], correction=False, clip=clip), truth))
    out["seconds"] = time.perf_counter() - t0
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="the keypoint dataset the runs were trained on")
    ap.add_argument("--run", action="append", required=True, metavar="NAME=DIR")
    ap.add_argument("--subjects", default="S8")
    ap.add_argument("--exclude-takes", default="S8__smoking_1,S8__smoking_2")
    ap.add_argument("--stride", type=int, default=4)
    ap.add_argument("--out", default=None, help="folder for probe.json and probe.md")
    args = ap.parse_args()
    import torch

    from selfpose.lifting.data import load_arrays
    from selfpose.lifting.model import Lifter
    from selfpose.lifting.windows import sequence_bounds

    torch.set_num_threads(2)
    arrays = load_arrays(args.data, args.subjects.split(","))
    excluded = [t for t in args.exclude_takes.split(",") if t]
    arrays = arrays.subset(~np.isin(arrays.takes, excluded))
    starts, _ = sequence_bounds(arrays.sequences)
    picked = np.flatnonzero((np.arange(len(arrays)) - starts) % args.stride == 0)
    print(f"{len(arrays)} test frames, scoring {len(picked)} (every {args.stride}th of each sequence)")
    rows = {}
    for spec in args.run:
        name, _, folder = spec.partition("=")
        lifter = Lifter.load(folder)
        noise = lifter.cfg.noise if lifter.cfg.test_noise else None
        raw = lifter.encode_sequences(arrays, noise, seed=lifter.cfg.seed + 2)   # as evaluate draws it
        rows[name] = {"run": folder, "method": lifter.cfg.method, "input_2d": "noisy" if noise else "gt",
                      **score_variants(lifter, arrays, raw, picked)}
        r = rows[name]
        print(f"{name:28s} ordered {r['ordered']:6.1f}  shuffled {r['shuffled']:6.1f}  alone {r['alone']:6.1f} mm "
              f"({r['seconds']:.0f} s)")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "probe.json").write_text(json.dumps({"data": args.data, "subjects": args.subjects,
                                                    "excluded_takes": excluded, "stride": args.stride,
                                                    "frames": int(len(picked)), "runs": rows}, indent=1))
        lines = ["| run | method | 2D | ordered | shuffled | alone | alone − ordered |",
                 "|---|---|---|---:|---:|---:|---:|"]
        for name, r in rows.items():
            lines.append(f"| {name} | {r['method']} | {r['input_2d']} | {r['ordered']:.1f} | {r['shuffled']:.1f} | "
                         f"{r['alone']:.1f} | {r['alone'] - r['ordered']:+.1f} |")
        (out / "probe.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
