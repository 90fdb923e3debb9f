"""Training curves of ``method=sync`` runs side by side: the sync and flip losses against the step.

Reads each run's ``metrics.csv`` (one row per logged step) and draws the running
mean over ``--window`` logged rows, so that a late onset of learning (the sync
loss leaving 0.693 after ~10k steps) is seen rather than read from a table.
Beside the picture, ``<out>.json`` gives per run and task the final running
mean and the **onset**: the first logged step after which the running mean
stays below ln 2 − ``--margin`` to the end of the run (None: it never does).

    python benchmarks/sync_curves.py out/sync_long/run_synthetic_room:global out/sync_rows2/run_synthetic_room:rows=2 \
        --out benchmarks/results/sync_pretext/curves.png
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np


def read(run: Path) -> dict[str, np.ndarray]:
    """Columns of ``run/metrics.csv`` as float arrays (empty cells → NaN)."""
    path = run / "metrics.csv"
    if not path.is_file():
        raise SystemExit(f"no metrics.csv in {run}: give the folder of a pretraining run")
    rows = list(csv.DictReader(path.open()))
    return {k: np.array([float(r[k]) if r.get(k) not in (None, "") else np.nan for r in rows]) for k in rows[0]}


def running_mean(x: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last ``window`` finite values at each position (shorter at the start)."""
    out = np.empty_like(x)
    for i in range(len(x)):
        w = x[max(0, i - window + 1): i + 1]
        out[i] = np.nanmean(w) if np.isfinite(w).any() else np.nan
    return out


def onset(steps: np.ndarray, smooth: np.ndarray, margin: float) -> int | None:
    """First step from which ``smooth`` stays below ln 2 − ``margin`` until the end (None: never)."""
    below = np.isfinite(smooth) & (smooth < np.log(2) - margin)
    if not below.size or not below[-1]:
        return None
    k = len(below) - int(np.argmin(below[::-1])) if not below.all() else 0
    return int(steps[k])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="RUN_DIR[:label]")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--window", type=int, default=50, help="logged rows per running mean")
    ap.add_argument("--margin", type=float, default=0.005, help="onset: the running mean stays below ln 2 − this")
    a = ap.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharex=True)
    summary = {"window_rows": a.window, "margin": a.margin, "runs": {}}
    for spec in a.runs:
        path, _, label = spec.partition(":")
        m = read(Path(path))
        entry = summary["runs"][label or path] = {"run": path, "steps": int(m["step"][-1])}
        for ax, task in zip(axes, ("sync", "flip")):
            if f"{task}_loss" in m:
                smooth = running_mean(m[f"{task}_loss"], a.window)
                ax.plot(m["step"], smooth, label=label or path)
                entry[task] = {"final_loss": round(float(smooth[-1]), 4), "onset_step": onset(m["step"], smooth, a.margin)}
    for ax, task in zip(axes, ("sync", "flip")):
        ax.axhline(np.log(2), color="grey", lw=0.8, ls="--")
        ax.set_title(f"{task} loss on training batches (running mean; chance {np.log(2):.3f})", fontsize=9)
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(a.out, dpi=110)
    plt.close(fig)
    import json

    a.out.with_suffix(".json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
