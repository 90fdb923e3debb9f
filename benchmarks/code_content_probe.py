"""What does a frozen code ``v`` hold: the pose, where the person stands in the frame, or which way they face?

The full profile (benchmarks/results/benchmark_cpu_identity.md) splits the methods in two: at 1% labels the full
method, DSL-STN-Dec and AE-STN-Dec beat the random encoder by ~13 mm, most others (DSL, DSL-STN, CSS, MV-CSS,
DrNet, NSD) do not. A pretext task can be solved without the pose, and this probe asks what each code
learned instead. For each run it encodes its own crop (``NAME=RUN``) or another run's (``NAME=RUN@CROP_RUN``, e.g.
the random encoder on the full method's crop) and reads three targets from standardised ``v`` with a ridge
probe whose weight is chosen on a held-out training person (never on the test people):

* ``pose``     pelvis-centred 3D joints in the camera frame (51 numbers, mm);
* ``box``      the true person box in the frame: centre x, centre y (fractions of the frame), log height;
* ``heading``  cos and sin of the person's yaw in the camera frame (the right-to-left hip vector's angle in the
               camera's x–z plane): how far the pelvis-centred pose is fixed by which way the person faces;
* ``axis``     cos and sin of twice that yaw: the heading up to front/back (facing the camera and facing away,
               left and right swapped, give the same axis) — what a body dressed alike on both sides shows.

Oracles that see no pixels come first: the pose from the true heading, axis or box alone (10-NN); and for each code, the pose its predicted heading is worth (that heading looked up among the labelled
frames' true headings, the heading oracle's 10-NN bank). It prints the test people's R² of each (1 − residual / variance, pooled over the target's numbers; 0 is the
test set's own mean, 1 is exact) and the pose's N-MPJPE.

Usage (a benchmark work folder)::

    PYTHONPATH=src python benchmarks/code_content_probe.py W \\
        --runs full=W/runs/temporal_s0 dsl=W/runs/dsl_s0 random=W/runs/random_s0@W/runs/temporal_s0 --out OUT.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def targets(ds, rows: np.ndarray) -> dict[str, np.ndarray]:
    """``{"box": (N, 3), "heading": (N, 2), "axis": (N, 2)}`` of the rows (true boxes ``x0, y0, x1, y1`` px; camera-frame 3D)."""
    box, head, axis = [], [], []
    for i in np.unique(rows[:, 0]):
        f = rows[rows[:, 0] == i, 1]
        s = ds.sequences[int(i)]
        b = np.asarray(s["boxes"][f], np.float64)
        h, w = s.meta.height, s.meta.width
        box.append(np.stack([(b[:, 0] + b[:, 2]) / 2 / w, (b[:, 1] + b[:, 3]) / 2 / h,
                             np.log(np.maximum(b[:, 3] - b[:, 1], 1.0) / h)], 1))
        j = np.asarray(s["joints3d"][f], np.float64)
        hip = j[:, 4] - j[:, 1]                     # right hip → left hip, camera frame
        yaw = np.arctan2(hip[:, 2], hip[:, 0])
        head.append(np.stack([np.cos(yaw), np.sin(yaw)], 1))
        axis.append(np.stack([np.cos(2 * yaw), np.sin(2 * yaw)], 1))
    return {"box": np.concatenate(box), "heading": np.concatenate(head), "axis": np.concatenate(axis)}


def knn_columns(xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray, k: int = 10) -> np.ndarray:
    """The 10-NN mean of any ``(N, K)`` target (``knn_predict`` averages ``(N, J, 3)`` poses: pad to threes)."""
    from selfpose.pose.probes import knn_predict

    pad = -ytr.shape[1] % 3
    y3 = np.concatenate([ytr, np.zeros((len(ytr), pad))], 1).reshape(len(ytr), -1, 3)
    return knn_predict(xtr, y3, xte, k=k).reshape(len(xte), -1)[:, :ytr.shape[1]]


def r2(pred: np.ndarray, y: np.ndarray) -> float:
    """1 − Σ residual² / Σ (y − mean y)², pooled over every column of ``y`` (N, ...)."""
    y = y.reshape(len(y), -1)
    pred = pred.reshape(len(pred), -1)
    return float(1.0 - ((pred - y) ** 2).sum() / ((y - y.mean(0)) ** 2).sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("work", help="benchmark work folder (holds data/train and data/test)")
    ap.add_argument("--runs", nargs="+", required=True, help="NAME=RUN_DIR or NAME=RUN_DIR@CROP_RUN_DIR")
    ap.add_argument("--share", type=float, default=0.01, help="labelled share of the training people")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--val", default="S6", help="held-out training person that chooses the ridge weight")
    ap.add_argument("--test-every", type=int, default=6, help="every n-th test frame")
    ap.add_argument("--out", default=None, help="JSON file for the figures")
    args = ap.parse_args()

    import torch
    from feature_layer_probe import load, representations, rows_of

    from selfpose.data.store import Dataset
    from selfpose.evaluation.metrics import n_mpjpe
    from selfpose.pose.probes import (
        knn_predict,
        ridge_fit,
        ridge_predict,
        select_ridge,
        standardise,
    )
    from selfpose.pretrain import load_run

    torch.manual_seed(0)
    t0 = time.time()
    work = Path(args.work)
    train, test = Dataset.open(work / "data" / "train"), Dataset.open(work / "data" / "test")
    rows = {"train": (train, rows_of(train, args.share, args.seed, None, {args.val})),
            "val": (train, rows_of(train, 0.05, args.seed, {args.val}, None, limit=2000)),
            "test": (test, rows_of(test, 1.0 / args.test_every, args.seed, None, None))}
    data = {}
    for split, (ds, r) in rows.items():
        frames, poses = load(ds, r)
        data[split] = {"frames": frames, "pose": poses, **targets(ds, r)}
    alphas = [0.1, 1.0, 10.0, 100.0, 1e3, 1e4, 1e5]
    results = {}
    # Oracles that see no pixels: how much of the pelvis-centred pose the true heading (or box) alone gives,
    # read by 10-NN (the mapping from heading to pose is not linear)
    for t in ("heading", "axis", "box"):
        xtr, xte = standardise(data["train"][t], data["test"][t])
        pred = knn_predict(xtr, data["train"]["pose"], xte, k=10)
        results[f"oracle_{t}"] = {"pose": {"r2": r2(pred, data["test"]["pose"]),
                                           "n_mpjpe": float(n_mpjpe(pred, data["test"]["pose"]))}}
        print(f"pose from the true {t} alone (10-NN, no pixels): R² {results[f'oracle_{t}']['pose']['r2']:.3f}, "
              f"N-MPJPE {results[f'oracle_{t}']['pose']['n_mpjpe']:.1f}", flush=True)
    for spec in args.runs:
        name, path = spec.split("=", 1)
        path, _, crop_path = path.partition("@")
        model = load_run(path).method.model.eval()
        crop = load_run(crop_path).method.model.eval() if crop_path else model
        v = {s: representations({name: model}, crop, data[s]["frames"], grid=1)[f"{name}/v"] for s in data}
        xtr, xva, xte = standardise(v["train"], v["val"], v["test"])
        res = {}
        for t in ("pose", "box", "heading", "axis"):
            ytr, yva, yte = (data[s][t].reshape(len(data[s][t]), -1) for s in ("train", "val", "test"))
            if t == "pose":   # chosen by N-MPJPE on the held-out person, as the benchmark's probe
                a, _ = select_ridge(xtr, data["train"]["pose"], xva, data["val"]["pose"], alphas)
            else:             # chosen by squared error on the held-out person
                errs = {al: float(((ridge_predict(ridge_fit(xtr, ytr, al), xva) - yva) ** 2).mean()) for al in alphas}
                a = min(errs, key=errs.get)
            pred = ridge_predict(ridge_fit(xtr, ytr, a), xte)
            res[t] = {"r2": r2(pred, yte), "alpha": a}
            if t != "pose":   # the same target read by 10-NN: a code may hold it in a way no linear map reads
                res[t]["knn_r2"] = r2(knn_columns(xtr, ytr, xte), yte)
            if t == "pose":
                res[t]["n_mpjpe"] = float(n_mpjpe(pred.reshape(data["test"]["pose"].shape), data["test"]["pose"]))
            if t == "heading":
                # How much pose the code's heading knowledge is worth: look the heading it predicts up among the
                # labelled frames' true headings (the heading oracle's 10-NN bank)
                htr, hte = standardise(data["train"]["heading"], pred)
                via = knn_predict(htr, data["train"]["pose"], hte, k=10)
                res["pose_via_heading"] = {"r2": r2(via, data["test"]["pose"]),
                                           "n_mpjpe": float(n_mpjpe(via, data["test"]["pose"]))}
        results[name] = res
        print(f"{name:10s} pose R² {res['pose']['r2']:.3f} (N-MPJPE {res['pose']['n_mpjpe']:.1f})  "
              f"box R² {res['box']['r2']:.3f}  heading R² {res['heading']['r2']:.3f} (10-NN {res['heading']['knn_r2']:.3f})  "
              f"axis R² {res['axis']['r2']:.3f} (10-NN {res['axis']['knn_r2']:.3f})  "
              f"pose via its heading {res['pose_via_heading']['n_mpjpe']:.1f}  ({time.time() - t0:.0f} s)",
              flush=True)
    n = [len(rows[s][1]) for s in ("train", "val", "test")]
    print(f"frames train/val/test {n[0]}/{n[1]}/{n[2]}; {time.time() - t0:.0f} s")
    if args.out:
        Path(args.out).write_text(json.dumps({"args": vars(args), "frames": n, "results": results}, indent=1))


if __name__ == "__main__":
    main()
