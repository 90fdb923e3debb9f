"""How often a 2D network puts a left joint on the right limb (issue 14, item 4).

Reads the 2D network of an image-chain work folder (``benchmarks/lifting_image_chain.py --work W``) and
reports, on the test set's cached predictions (``W/pred2d_test.npz``) and on ``--train-frames`` random
training frames predicted afresh:

* the mean 2D error (px) and how often the left/right-swapped prediction is closer to the truth overall;
* per limb joint (wrist, elbow, knee, ankle), among frames whose true left and right joints lie more than
  ``--min-px`` apart, how often the predicted *left* joint lies nearer the true *right* one (chance: 50%).

    PYTHONPATH=src python benchmarks/left_right_confusion.py W TRAIN_DIR TEST_DIR [--train-frames 3000]
"""

from __future__ import annotations

import argparse

import numpy as np

LIMBS = ("wrist", "elbow", "knee", "ankle")


def confusion(pred: np.ndarray, true: np.ndarray, min_px: float) -> dict:
    """``pred``, ``true``: ``(N, 17, 2)`` px, house skeleton → the figures above (fractions in 0..1)."""
    from selfpose.geometry.skeleton import H36M17

    perm = H36M17.flip_permutation()
    err = np.linalg.norm(pred - true, axis=-1).mean(1)
    swapped = np.linalg.norm(pred[:, perm] - true, axis=-1).mean(1)
    out = {"mean_px": float(err.mean()), "swapped_closer": float((swapped < err).mean())}
    for n in LIMBS:
        L, R = H36M17.index("left_" + n), H36M17.index("right_" + n)
        apart = np.linalg.norm(true[:, L] - true[:, R], axis=-1) > min_px
        wrong = (np.linalg.norm(pred[apart, L] - true[apart, R], axis=-1)
                 < np.linalg.norm(pred[apart, L] - true[apart, L], axis=-1))
        out[n] = {"frames_apart": int(apart.sum()), "left_on_right": float(wrong.mean()) if apart.any() else None}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("work")
    ap.add_argument("train_dir")
    ap.add_argument("test_dir")
    ap.add_argument("--train-frames", type=int, default=3000)
    ap.add_argument("--min-px", type=float, default=12.0)
    a = ap.parse_args()
    import torch

    from selfpose.data.store import Dataset
    from selfpose.lifting.heatmap2d import Heatmap2D, frame_index
    from selfpose.lifting.image_chain import load_chain
    from selfpose.pose.features import read_arrays

    torch.set_num_threads(1)
    test = load_chain(f"{a.work}/pred2d_test.npz", a.test_dir, None)
    rows = {"test": confusion(test.arrays.joints2d, test.joints2d_true, a.min_px)}
    ds = Dataset.open(a.train_dir)
    idx = frame_index(ds)
    idx = idx[np.sort(np.random.default_rng(0).choice(len(idx), min(a.train_frames, len(idx)), replace=False))]
    pred = Heatmap2D.load(f"{a.work}/heatmap2d").predict(ds, idx).joints2d
    rows["train"] = confusion(pred, read_arrays(ds, idx, ("joints2d",))["joints2d"], a.min_px)
    for name, r in rows.items():
        limbs = ", ".join(f"{n} {r[n]['left_on_right']:.1%} of {r[n]['frames_apart']}" for n in LIMBS
                          if r[n]["left_on_right"] is not None)
        print(f"{name}: mean {r['mean_px']:.2f} px, swapped closer {r['swapped_closer']:.1%}; "
              f"left joint nearer the true right one (> {a.min_px:g} px apart): {limbs}")


if __name__ == "__main__":
    main()
