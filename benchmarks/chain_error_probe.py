"""What in the 2D network's errors costs the image → 2D → 3D chain its 3D (issue 14, item 4).

A lifter trained on ground-truth 2D is fed the 2D network's S8 predictions after
one change at a time, each removing or keeping one property of the 2D error:

* ``as predicted``: the chain as it is;
* ``left/right oracle, whole body``: per frame, the prediction or its left/right
  mirror-labelled copy, whichever is nearer the truth (what perfect facing would buy);
* ``left/right oracle, per limb pair``: the same decision per left/right joint pair;
* ``errors scaled ×k``: ground truth + k × (prediction − truth) — how the 3D error
  grows with the size of the 2D error when its structure is kept;
* ``errors from other frames``: ground truth + the error vectors of a random
  permutation of the frames — the same error sizes, their relation to the pose lost;
* ``ground truth``: the lifter's own floor on these frames.

Usage (from the repository root; ``W`` is a ``benchmarks/lifting_image_chain.py`` work folder)::

    PYTHONPATH=src python benchmarks/chain_error_probe.py W/pred2d_test.npz DATA/test W/lifter_gt2d [MORE_LIFTERS …]

Prints one line per variant and lifter: mean 2D error (px, joints inside the frame),
N-MPJPE and P-MPJPE (mm) over every S8 frame.
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np

def swap_pairs(pred: np.ndarray, true: np.ndarray, pairs) -> np.ndarray:
    """``pred`` (N, J, 2) with each left/right pair exchanged where the exchange is nearer ``true`` (an oracle)."""
    out = pred.copy()
    for lt, rt in pairs:
        keep = np.linalg.norm(pred[:, lt] - true[:, lt], axis=-1) + np.linalg.norm(pred[:, rt] - true[:, rt], axis=-1)
        swap = np.linalg.norm(pred[:, rt] - true[:, lt], axis=-1) + np.linalg.norm(pred[:, lt] - true[:, rt], axis=-1)
        s = swap < keep
        out[s, lt], out[s, rt] = pred[s, rt], pred[s, lt]
    return out


def swap_whole(pred: np.ndarray, true: np.ndarray, perm: np.ndarray) -> tuple[np.ndarray, float]:
    """Per frame, ``pred`` or ``pred[:, perm]`` (left/right relabelled), whichever is nearer ``true``; and the share swapped."""
    e = np.nanmean(np.linalg.norm(pred - true, axis=-1), axis=1)
    es = np.nanmean(np.linalg.norm(pred[:, perm] - true, axis=-1), axis=1)
    s = es < e
    return np.where(s[:, None, None], pred[:, perm], pred), float(s.mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pred2d", help="pred2d_test.npz of a lifting_image_chain.py work folder")
    ap.add_argument("data", help="the test dataset those predictions are of")
    ap.add_argument("lifters", nargs="+", help="lifter runs trained on ground-truth 2D")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    from selfpose.geometry.skeleton import H36M17
    from selfpose.lifting.heatmap2d import errors_2d
    from selfpose.lifting.image_chain import evaluate_chain, load_chain
    from selfpose.lifting.train import Lifter

    chain = load_chain(args.pred2d, args.data, None)
    a = chain.arrays
    pred, true = a.joints2d, chain.joints2d_true
    err = pred - true
    whole, share = swap_whole(pred, true, H36M17.flip_permutation())
    perm = np.random.default_rng(args.seed).permutation(len(err))
    variants = [("as predicted", pred), (f"left/right oracle, whole body ({100 * share:.1f}% of frames)", whole),
                ("left/right oracle, per limb pair", swap_pairs(pred, true, H36M17.flip_pairs)),
                ("errors scaled x0.25", true + 0.25 * err), ("errors scaled x0.5", true + 0.5 * err),
                ("errors from other frames", true + err[perm]), ("ground truth", true.copy())]
    for run in args.lifters:
        lifter = Lifter.load(run)
        print(f"lifter {run}")
        for name, arr in variants:
            c = dataclasses.replace(chain, arrays=dataclasses.replace(a, joints2d=arr))
            r = evaluate_chain(lifter, c)
            e2 = errors_2d(arr, true, mask=chain.inside())
            print(f"  {name:<52} 2D {e2['mean_px']:5.2f} px   N-MPJPE {r['overall']['n_mpjpe']:6.1f}   "
                  f"P-MPJPE {r['overall']['p_mpjpe']:6.1f} mm")


if __name__ == "__main__":
    main()
