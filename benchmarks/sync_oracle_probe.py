"""How separable is the synchronisation question on our renders, given the pose itself? (issue 15 probe)

The image network of ``method=sync`` stays at chance on the room-lit renders
(``benchmarks/results/sync_pretext/probes.md``). Before changing the network,
this asks whether the *data* make the question answerable, with labels the
method never sees (this is a probe, not a method):

* **3D pose change** of each unsynchronised pair: the root-relative MPJPE (mm,
  in the first image's camera frame) between the person's pose at the two
  instants. A negative whose pose barely changed looks synchronised to any
  model; the share of such pairs bounds what a perfect pose-reading network
  can score.
* **2D-keypoint oracle**: a small MLP sees the two views' true 2D joints (each
  normalised to its person box) and answers "same instant?". Trained on pairs
  of the training takes (S1, S5, S6, S7), scored on pairs of the held-out
  takes (S8): what a network that has already read the 2D pose perfectly in
  each view could reach, and how fast (training pairs needed); then the same
  MLP on the joints' heights alone and on their x alone (which coordinates
  two views at about the person's height share).

Pairs are drawn by the method's own sampler (:class:`SyncPairSampler` with the
``sampler`` settings of ``configs/sync_cpu.yaml``, no flips), so offsets and
still-frame skipping are those the image network trains with. Accuracy is
reported overall and per bin of ``|Δt|``; intervals are 95% cluster bootstraps
over the first image's instant (:func:`cluster_bootstrap_ci`).

    python benchmarks/sync_oracle_probe.py --train out/sync_pretext/syn_train_room \
        --test out/sync_pretext/syn_test_room --out benchmarks/results/sync_pretext/oracle
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def draw_pairs(data: Path, n: int, seed: int, sampler_cfg: dict):
    """``n`` unflipped pairs of ``data``: (features (n, 68), sync (n,), |Δt| s (n,), 3D change mm (n,), cluster (n,))."""
    from selfpose.data.samplers import SyncPairSampler
    from selfpose.data.store import Dataset

    ds = Dataset.open(data)
    s = SyncPairSampler(ds, min_offset_s=sampler_cfg["sync_min_offset_s"], max_offset_s=sampler_cfg["sync_max_offset_s"],
                        sync_prob=0.5, flip_prob=0.0, still_fraction=sampler_cfg["still_fraction"],
                        motion_gap_s=sampler_cfg["motion_gap_s"])
    b = s.sample(n, np.random.default_rng(seed))
    recs = list(ds)
    feats, change, dt, cluster = [], [], [], []
    for (qa, qb), (fa, fb) in zip(b.seq, b.frames):
        ra, rb = recs[qa], recs[qb]
        row = []
        for r, f in ((ra, fa), (rb, fb)):
            box = np.asarray(r["boxes"][f], np.float64)          # x0, y0, x1, y1 px
            c = (box[:2] + box[2:]) / 2
            side = max(box[2] - box[0], box[3] - box[1], 1.0)
            row.append(((np.asarray(r["joints2d"][f], np.float64) - c) / side).ravel())
        feats.append(np.concatenate(row))
        # Pose change over the pair's time offset, seen from camera a: both instants in view a's frame.
        j0 = np.asarray(ra["joints3d"][fa], np.float64)
        ids_a = np.asarray(ra["frame_ids"])
        fb_in_a = int(np.searchsorted(ids_a, rb["frame_ids"][fb]))
        if fb_in_a >= len(ids_a) or ids_a[fb_in_a] != rb["frame_ids"][fb]:
            raise SystemExit(f"{ra.meta.id} lacks frame id {int(rb['frame_ids'][fb])} of {rb.meta.id}: the views of "
                             "a take must share their frame ids")
        j1 = np.asarray(ra["joints3d"][fb_in_a], np.float64)
        change.append(np.linalg.norm((j0 - j0[:1]) - (j1 - j1[:1]), axis=1).mean())
        dt.append(abs(int(ra["frame_ids"][fa]) - int(rb["frame_ids"][fb])) / ra.meta.fps)
        cluster.append(f"{ra.meta.take}@{int(ra['frame_ids'][fa])}")
    return (np.array(feats, np.float32), np.asarray(b.extras["sync"], bool), np.array(dt), np.array(change),
            np.array(cluster))


def plot(out: dict, change_mm: np.ndarray, path: Path) -> None:
    """Left: the oracle's accuracy on unsynchronised pairs per |Δt| bin, one line per training-set size.
    Right: how much the pose changes between the two instants of an unsynchronised pair."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    for n, r in out["mlp"].items():
        bins = list(r["unsynchronised_by_dt_s"])
        a.plot(range(len(bins)), [r["unsynchronised_by_dt_s"][k]["accuracy"] * 100 for k in bins], "o-",
               label=f"{int(n):,} training pairs: {r['accuracy'] * 100:.1f}% overall")
    a.set_xticks(range(len(bins)), [f"{k} s" for k in bins])
    a.axhline(50, color="grey", lw=0.8, ls="--")
    a.set_xlabel("|Δt| of the unsynchronised pair")
    a.set_ylabel("called unsynchronised (%)")
    a.set_title("true 2D keypoints of both views → MLP (held-out S8)", fontsize=9)
    a.legend(fontsize=7)
    b.hist(change_mm, bins=np.arange(0, 400, 10), color="tab:orange")
    for m in (20, 40, 80):
        b.axvline(m, color="grey", lw=0.8, ls=":")
    b.set_xlabel("root-relative pose change between the two instants (mm)")
    b.set_ylabel("unsynchronised pairs")
    b.set_title(f"{np.mean(change_mm < 40) * 100:.0f}% change < 40 mm, {np.mean(change_mm < 80) * 100:.0f}% < 80 mm",
                fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=Path, default=ROOT / "out/sync_pretext/syn_train_room")
    ap.add_argument("--test", type=Path, default=ROOT / "out/sync_pretext/syn_test_room")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/sync_pretext/oracle")
    ap.add_argument("--config", type=Path, default=ROOT / "configs/sync_cpu.yaml")
    ap.add_argument("--train-pairs", type=int, nargs="+", default=[2000, 8000, 32000])
    ap.add_argument("--test-pairs", type=int, default=4000)
    args = ap.parse_args(argv)

    import yaml
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler

    from selfpose.methods.sync_eval import cluster_bootstrap_ci

    for d in (args.train, args.test):
        if not (d / "index.json").is_file():
            raise SystemExit(f"no dataset at {d}: run benchmarks/sync_pretext.py --which synthetic --light room first")
    scfg = yaml.safe_load(args.config.read_text())["sampler"]
    t0 = time.time()
    Xte, yte, dte, cte, clte = draw_pairs(args.test, args.test_pairs, 1, scfg)
    Xtr_all, ytr_all, _, ctr, _ = draw_pairs(args.train, max(args.train_pairs), 0, scfg)

    bins = [0.0, 0.3, 0.6, 1.2, 2.6]
    neg = ~yte
    out = {"config": str(args.config.relative_to(ROOT)) if args.config.is_relative_to(ROOT) else str(args.config),
           "sampler": scfg, "test_pairs": int(len(yte)),
           "pose_change_mm": {"negatives_quantiles": {str(q): float(np.quantile(cte[neg], q))
                                                        for q in (0.1, 0.25, 0.5, 0.75, 0.9)},
                              "share_below_mm": {str(m): float(np.mean(cte[neg] < m)) for m in (10, 20, 40, 80)}},
           "mlp": {}}
    for n in sorted(args.train_pairs):
        sc = StandardScaler().fit(Xtr_all[:n])
        clf = MLPClassifier(hidden_layer_sizes=(256, 256), max_iter=300, early_stopping=True, random_state=0)
        clf.fit(sc.transform(Xtr_all[:n]), ytr_all[:n])
        right = clf.predict(sc.transform(Xte)) == yte
        by_dt = {}
        for lo, hi in zip(bins[:-1], bins[1:]):
            m = neg & (dte >= lo) & (dte < hi)
            if m.any():
                by_dt[f"{lo}-{hi}"] = {"negatives": int(m.sum()), "accuracy": float(right[m].mean()),
                                       "pose_change_mm_median": float(np.median(cte[m]))}
        out["mlp"][str(n)] = {
            "accuracy": float(0.5 * right[yte].mean() + 0.5 * right[neg].mean()),
            "ci95": cluster_bootstrap_ci(right, clte, classes=yte),
            "synchronised_accuracy": float(right[yte].mean()),
            "unsynchronised_by_dt_s": by_dt}
    # Which coordinates carry the answer: the joints' heights alone, or their x alone (largest training set).
    n = max(args.train_pairs)
    out["mlp_coordinates"] = {}
    for name, axis in (("y", 1), ("x", 0)):
        pick = lambda X: X.reshape(len(X), 2, -1, 2)[..., axis].reshape(len(X), -1)   # noqa: E731
        sc = StandardScaler().fit(pick(Xtr_all[:n]))
        clf = MLPClassifier(hidden_layer_sizes=(256, 256), max_iter=300, early_stopping=True, random_state=0)
        clf.fit(sc.transform(pick(Xtr_all[:n])), ytr_all[:n])
        right = clf.predict(sc.transform(pick(Xte))) == yte
        out["mlp_coordinates"][name] = {"train_pairs": n, "accuracy": float(0.5 * right[yte].mean() + 0.5 * right[neg].mean()),
                                        "ci95": cluster_bootstrap_ci(right, clte, classes=yte)}
    out["seconds"] = round(time.time() - t0, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(out, indent=1))
    plot(out, cte[neg], args.out / "oracle.png")
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
