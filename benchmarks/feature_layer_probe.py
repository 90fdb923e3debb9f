"""Which layer of a frozen encoder holds the pose? Ridge and k-NN probes on each stage, pretrained vs random.

Issue 14 item 4 asks whether keeping spatial layout in the features measures
better than the pooled code ``v`` that the benchmark's pose head reads. This
probe answers it for any benchmark work folder: every run encodes the *same*
crop (the one ``--crop-of``'s trained detector cuts, as ``random_same_crop``
does), and each representation is read by the closed-form probes of
:mod:`selfpose.pose.probes`, their setting chosen on held-out training people
(never on the test people):

* ``v``         the pose code the benchmark reads (``v_dim``);
* ``pooled``    the backbone's globally pooled last stage (before ``v``'s linear layer);
* ``stageK``    stage K's map, average-pooled to ``--grid`` × ``--grid`` cells and flattened
                (spatial layout kept; K = 2, 3, 4).

Usage (after ``selfpose benchmark --config configs/benchmark_quick_cpu.yaml --work W``)::

    PYTHONPATH=src python benchmarks/feature_layer_probe.py W \\
        --runs full=W/runs/temporal_s0 random=W/runs/random_s0 --crop-of W/runs/temporal_s0 --out OUT.json

Labels: the benchmark's 1% share of the training people (``label_subset``, seed 0) minus the held-out person
(``--val``, default S6), 2,000 evenly spaced frames of the held-out person for selection, and every
``--test-every``-th frame of the test set for the figures. N-MPJPE in mm, pelvis-centred camera frame.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def rows_of(ds, fraction: float, seed: int, subjects: set[str] | None, exclude: set[str] | None,
            limit: int | None = None) -> np.ndarray:
    """``(N, 2)`` (sequence, frame) rows of :func:`label_subset`, restricted to/away from subjects, thinned."""
    from selfpose.pose.labels import label_subset

    rows = label_subset(ds, fraction, seed=seed)
    subj = np.array([ds.sequences[int(i)].meta.subject for i in rows[:, 0]])
    keep = np.ones(len(rows), bool)
    if subjects is not None:
        keep &= np.isin(subj, sorted(subjects))
    if exclude:
        keep &= ~np.isin(subj, sorted(exclude))
    rows = rows[keep]
    if limit is not None and len(rows) > limit:
        rows = rows[np.linspace(0, len(rows) - 1, limit).round().astype(int)]
    return rows


def load(ds, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint8 frames ``(N, H, W, 3)`` and pelvis-centred 3D ``(N, 17, 3)`` mm of the rows."""
    frames, poses = [], []
    for i in np.unique(rows[:, 0]):
        f = rows[rows[:, 0] == i, 1]
        s = ds.sequences[int(i)]
        frames.append(np.asarray(s["frames"][f]))
        j = np.asarray(s["joints3d"][f], dtype=np.float32)
        poses.append(j - j[:, :1])
    return np.concatenate(frames), np.concatenate(poses)


def representations(runs: dict, crop_model, frames: np.ndarray, grid: int, batch: int = 128) -> dict[str, np.ndarray]:
    """``{run/rep: (N, D)}`` for every run, every run encoding the crop that ``crop_model``'s detector cuts."""
    import torch
    import torch.nn.functional as F

    out: dict[str, list] = {}
    with torch.inference_mode():
        for k in range(0, len(frames), batch):
            x = torch.from_numpy(frames[k:k + batch]).permute(0, 3, 1, 2).float() / 255.0
            xp = crop_model.prepare(x)
            theta = crop_model.crop_theta(crop_model.detect(xp), tuple(xp.shape[-2:]))
            for name, model in runs.items():
                crops = model.crop(model.prepare(x), theta)
                bb = model.encoder.backbone
                maps = bb.features(crops)
                pooled = torch.flatten(bb.avgpool(maps[-1]), 1)
                reps = {"v": model.encoder.v_head(pooled), "pooled": pooled}
                for s in (2, 3, 4):
                    m = maps[s - 1]
                    g = min(grid, m.shape[-1])
                    reps[f"stage{s}"] = torch.flatten(F.adaptive_avg_pool2d(m, g), 1)
                for r, t in reps.items():
                    out.setdefault(f"{name}/{r}", []).append(t.float().numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("work", help="benchmark work folder (holds data/train and data/test)")
    ap.add_argument("--runs", nargs="+", required=True, help="NAME=RUN_DIR pretraining runs to compare")
    ap.add_argument("--crop-of", required=True, help="the run whose trained detector cuts every run's crop")
    ap.add_argument("--share", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--val", default="S6", help="held-out training person that chooses each probe's setting (the benchmark holds out S6 at seed 0, "
                    "S1 at seed 1: pass --val S1 with --seed 1)")
    ap.add_argument("--test-every", type=int, default=6, help="every n-th labelled test frame")
    ap.add_argument("--grid", type=int, default=2, help="cells per side a stage map is pooled to")
    ap.add_argument("--out", default=None, help="JSON file for the figures")
    args = ap.parse_args()

    import torch

    from selfpose.data.store import Dataset
    from selfpose.evaluation.metrics import n_mpjpe
    from selfpose.pose.probes import knn_predict, ridge_fit, ridge_predict, select_knn, select_ridge, standardise
    from selfpose.pretrain import load_run

    torch.manual_seed(0)
    t0 = time.time()
    work = Path(args.work)
    train, test = Dataset.open(work / "data" / "train"), Dataset.open(work / "data" / "test")
    tr_rows = rows_of(train, args.share, args.seed, None, {args.val})
    va_rows = rows_of(train, 0.05, args.seed, {args.val}, None, limit=2000)
    te_rows = rows_of(test, 1.0 / args.test_every, args.seed, None, None)
    runs = {}
    for spec in args.runs:
        name, path = spec.split("=", 1)
        runs[name] = load_run(path).method.model.eval()
    crop_model = load_run(args.crop_of).method.model.eval()
    sets = {}
    for split, ds, rows in (("train", train, tr_rows), ("val", train, va_rows), ("test", test, te_rows)):
        frames, poses = load(ds, rows)
        sets[split] = (representations(runs, crop_model, frames, args.grid), poses)
        print(f"{split}: {len(rows)} frames encoded ({time.time() - t0:.0f} s)", flush=True)

    alphas = [0.1, 1.0, 10.0, 100.0, 1e3, 1e4, 1e5]
    results = {}
    for key in sets["train"][0]:
        xtr, xva, xte = standardise(sets["train"][0][key], sets["val"][0][key], sets["test"][0][key])
        ytr, yva, yte = sets["train"][1], sets["val"][1], sets["test"][1]
        a, _ = select_ridge(xtr, ytr, xva, yva, alphas)
        ridge = float(n_mpjpe(ridge_predict(ridge_fit(xtr, ytr, a), xte, ytr.shape[1:]), yte))
        k, _ = select_knn(xtr, ytr, xva, yva, [1, 5, 10, 20, 50])
        knn = float(n_mpjpe(knn_predict(xtr, ytr, xte, k=k), yte))
        results[key] = {"dim": int(xtr.shape[1]), "ridge_n_mpjpe": ridge, "ridge_alpha": a, "knn_n_mpjpe": knn,
                        "knn_k": k}
        print(f"{key:24s} D={xtr.shape[1]:5d}  ridge {ridge:6.1f} (alpha {a:g})  k-NN {knn:6.1f} (k {k})", flush=True)
    mean = float(n_mpjpe(np.broadcast_to(sets["train"][1].mean(0), sets["test"][1].shape).copy(), sets["test"][1]))
    print(f"mean training pose: {mean:.1f}; frames train/val/test {len(tr_rows)}/{len(va_rows)}/{len(te_rows)}; "
          f"{time.time() - t0:.0f} s")
    if args.out:
        Path(args.out).write_text(json.dumps({"args": vars(args), "mean_pose_n_mpjpe": mean, "results": results,
                                              "frames": [len(tr_rows), len(va_rows), len(te_rows)]}, indent=1))


if __name__ == "__main__":
    main()
