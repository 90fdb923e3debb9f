"""Training curves of ``method=sync`` runs side by side: sync and flip loss and batch accuracy against the step.

Reads each run's ``metrics.csv`` (one row per logged step) and draws the running
mean over ``--window`` logged rows, so that a late onset of learning (the sync
loss leaving 0.693 after ~10k steps) is seen rather than read from a table.

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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="RUN_DIR[:label]")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--window", type=int, default=50, help="logged rows per running mean")
    a = ap.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharex=True)
    for spec in a.runs:
        path, _, label = spec.partition(":")
        m = read(Path(path))
        for ax, task in zip(axes, ("sync", "flip")):
            if f"{task}_loss" in m:
                ax.plot(m["step"], running_mean(m[f"{task}_loss"], a.window), label=label or path)
    for ax, task in zip(axes, ("sync", "flip")):
        ax.axhline(np.log(2), color="grey", lw=0.8, ls="--")
        ax.set_title(f"{task} loss on training batches (running mean; chance {np.log(2):.3f})", fontsize=9)
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(a.out, dpi=110)
    plt.close(fig)
    print(a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
