"""Can the arrow of time be told on this data at all, and from what? Oracles for ``loss.w_arrow``.

The arrow-of-time term (``selfpose.losses.arrow``) asks a small head whether the intermediate frame of a DSL tuple
came after the reference, from the two pose codes and the detector's box motion. If it stays at chance in
pretraining, either the codes lack what it needs (the facing) or the data do not carry the arrow. This probe
answers the second question from the labels, with no network: pairs drawn like the DSL sampler's reference and
intermediate frames (``d_pos_s < |Δt| < d_neg_s``; here a uniform reference, a side by a coin flip and pairs
that leave the sequence dropped, where the sampler picks among the valid offsets), classified by a gradient-
boosted tree ensemble (scikit-learn) fitted on the training people but one and scored on the held-out one, from

* ``box``          the true box motion alone (Δ centre x, y as fractions of the frame, Δ log height): no facing;
* ``heading+box``  the true heading (cos, sin of the hips' yaw in the camera frame) at both frames + box motion:
                   what a code that knew the facing perfectly would give the head;
* ``pose+box``     both frames' pelvis-centred camera-frame 3D poses + box motion: a perfect pose code;
* ``pose``         the two poses without the box motion.

Accuracy 0.5 is chance. Usage::

    PYTHONPATH=src python benchmarks/arrow_oracle_probe.py W/data/train --val S6 --out arrow_oracle.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def pairs(ds, rng, per_seq: int, d_pos: float, d_neg: float) -> dict[str, np.ndarray]:
    """Reference/intermediate pairs of every sequence with their targets and inputs."""
    out: dict[str, list] = {k: [] for k in ("subject", "action", "later", "box", "heading", "pose")}
    for s in ds.sequences:
        T, fps = s.meta.num_frames, s.meta.fps
        lo, hi = int(np.floor(d_pos * fps)) + 1, int(np.ceil(d_neg * fps)) - 1
        if T <= lo + 1:
            continue
        ref = rng.integers(0, T, per_seq)
        dt = rng.integers(lo, hi + 1, per_seq) * rng.choice([-1, 1], per_seq)
        mid = ref + dt
        ok = (mid >= 0) & (mid < T)
        ref, mid = ref[ok], mid[ok]
        if not len(ref):
            continue
        b = np.asarray(s["boxes"][:], np.float64)
        j = np.asarray(s["joints3d"][:], np.float64)
        H, W = s.meta.height, s.meta.width
        cx, cy = (b[:, 0] + b[:, 2]) / 2 / W, (b[:, 1] + b[:, 3]) / 2 / H
        lh = np.log(np.maximum(b[:, 3] - b[:, 1], 1.0) / H)
        hip = j[:, 4] - j[:, 1]
        yaw = np.arctan2(hip[:, 2], hip[:, 0])
        pose = (j - j[:, :1]).reshape(len(j), -1)
        out["box"].append(np.stack([cx[mid] - cx[ref], cy[mid] - cy[ref], lh[mid] - lh[ref]], 1))
        out["heading"].append(np.stack([np.cos(yaw[ref]), np.sin(yaw[ref]), np.cos(yaw[mid]), np.sin(yaw[mid])], 1))
        out["pose"].append(np.concatenate([pose[ref], pose[mid]], 1))
        out["later"].append(mid > ref)
        out["subject"] += [s.meta.subject] * len(ref)
        out["action"] += [s.meta.action] * len(ref)
    return {k: np.concatenate(v) if k not in ("subject", "action") else np.array(v) for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", help="a rendered dataset folder with boxes and joints3d (the benchmark's data/train)")
    ap.add_argument("--val", default="S6", help="held-out person the accuracy is measured on")
    ap.add_argument("--per-seq", type=int, default=20, help="pairs drawn per sequence")
    ap.add_argument("--d-pos", type=float, default=0.2, help="sampler.d_pos_s")
    ap.add_argument("--d-neg", type=float, default=4.0, help="sampler.d_neg_s")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    from sklearn.ensemble import HistGradientBoostingClassifier

    from selfpose.data.store import Dataset

    t0 = time.time()
    p = pairs(Dataset.open(args.data), np.random.default_rng(args.seed), args.per_seq, args.d_pos, args.d_neg)
    te = p["subject"] == args.val
    walk = np.array(["walk" in a.lower() for a in p["action"]])
    inputs = {"box": p["box"], "heading+box": np.concatenate([p["heading"], p["box"]], 1),
              "pose+box": np.concatenate([p["pose"], p["box"]], 1), "pose": p["pose"]}
    res = {"pairs_train": int((~te).sum()), "pairs_val": int(te.sum()), "share_later": float(p["later"].mean())}
    for name, x in inputs.items():
        clf = HistGradientBoostingClassifier(max_iter=300, random_state=args.seed).fit(x[~te], p["later"][~te])
        right = clf.predict(x[te]) == p["later"][te]
        res[name] = {"accuracy": float(right.mean()), "walking": float(right[walk[te]].mean()),
                     "other actions": float(right[~walk[te]].mean())}
        print(f"{name:12s} held-out {args.val}: accuracy {res[name]['accuracy']:.3f} (walking "
              f"{res[name]['walking']:.3f}, other actions {res[name]['other actions']:.3f})", flush=True)
    print(f"pairs {res['pairs_train']} train / {res['pairs_val']} held out; {time.time() - t0:.0f} s")
    if args.out:
        Path(args.out).write_text(json.dumps({"args": vars(args), "results": res}, indent=1))


if __name__ == "__main__":
    main()
