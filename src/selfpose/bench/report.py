"""The benchmark's report: tables (mean ± std over seeds), every cell as CSV/JSON, error against label share.

Writes into the work folder:

* ``results.md``: N-MPJPE per method and label share, then MPJPE and
  P-MPJPE; the disentanglement analysis of the split methods;
* ``results.json``: everything :func:`selfpose.bench.run.run_benchmark` returns;
* ``cells.csv``: one row per method × seed × share;
* ``error_vs_labels.png``: N-MPJPE against label share (log x), one line per method.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

METRICS = ("n_mpjpe", "mpjpe", "p_mpjpe")
TITLES = {"n_mpjpe": "N-MPJPE (mm)", "mpjpe": "MPJPE (mm)", "p_mpjpe": "P-MPJPE (mm)"}
REFERENCE_NAMES = {"random": "random frozen network (reference)", "mean_pose": "mean training pose (reference)",
                   "box_camera_ridge": "box + camera only (ridge)", "box_camera_knn": "box + camera only (10-NN)"}


def display_name(name: str) -> str:
    """The paper's name of a method (``dsl_stn`` → ``DSL-STN``), or the reference's description."""
    from selfpose.methods.variants import VARIANTS

    if name in VARIANTS:
        return VARIANTS[name].paper_name
    return REFERENCE_NAMES.get(name, name)


def aggregate(cells: dict) -> dict:
    """``{(name, share): {metric: (mean, std, n)}}`` over seeds; std is 0 for one seed (``n`` says how many)."""
    groups: dict = {}
    for c in cells.values():
        groups.setdefault((c["name"], float(c["share"])), []).append(c)
    out = {}
    for key, cs in groups.items():
        out[key] = {}
        for m in METRICS:
            v = np.array([c[m] for c in cs if c.get(m) is not None], np.float64)
            out[key][m] = (float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0, int(len(v)))
    return out


def _fmt(cell) -> str:
    if cell is None or math.isnan(cell[0]):
        return "—"
    mean, std, n = cell
    return f"{mean:.1f} ± {std:.1f}" if n > 1 else f"{mean:.1f}"


def tables(results: dict, names: list[str], shares: list[float]) -> str:
    """Markdown tables: one per metric, rows ``names``, columns ``shares``."""
    agg = aggregate(results["cells"])
    head = "| method | " + " | ".join(f"{s:.0%} labels" for s in shares) + " |\n|---|" + "---:|" * len(shares) + "\n"
    out = []
    for m in METRICS:
        rows = "".join(f"| {display_name(n)} | " + " | ".join(_fmt(agg.get((n, float(s)), {}).get(m))
                                                              for s in shares) + " |\n" for n in names)
        out.append(f"**{TITLES[m]}** (mean ± standard deviation over seeds where there are several)\n\n{head}{rows}")
    if results.get("analysis"):
        rows = []
        for n, a in results["analysis"].items():
            pv, pi = (a.get(k) or {} for k in ("pose_from_v", "pose_from_i"))
            pv, pi = (p.get("val_n_mpjpe") if isinstance(p, dict) else p for p in (pv, pi))
            rows.append(f"| {display_name(n)} | {a['kmeans_v']:.3f} | {a['kmeans_i']:.3f} | {a['chance']:.3f} | "
                        + " | ".join("—" if p is None else f"{p:.1f}" for p in (pv, pi)) + " |")
        out.append("**Disentanglement** of the split methods (training subjects): KMeans subject accuracy of `v` "
                   "and `i`, and the validation N-MPJPE (mm) of a pose head on each\n\n"
                   "| method | KMeans v | KMeans i | chance | pose from v | pose from i |\n"
                   "|---|---:|---:|---:|---:|---:|\n" + "\n".join(rows) + "\n")
    out.append(cost_table(results, names))
    return "\n\n".join(out)


def cost_table(results: dict, names: list[str]) -> str:
    """Detection quality and compute per method: mean box IoU on the test set, pretraining and pose-cell seconds.

    Seconds are those of the run that computed each piece (a cached cell keeps
    its original time), so the total is what the command costs from scratch on
    the machine that made the cells, whatever reruns happened since.
    """
    pre = results.get("pretrain_seconds") or {}
    rows, total = [], 0.0
    for n in names:
        cs = [c for c in results["cells"].values() if c["name"] == n]
        if not cs:
            continue
        ious = [c["box_iou"] for c in cs if c.get("box_iou") is not None]
        runs = {f"{n}_s{c['seed']}" for c in cs}
        p = [pre[r] for r in runs if pre.get(r) is not None]
        cell_s = sum(c.get("seconds") or 0.0 for c in cs)
        total += sum(p) + cell_s
        rows.append(f"| {display_name(n)} | " + (f"{np.mean(ious):.3f}" if ious else "—") + " | "
                    + (f"{np.mean(p):.0f}" if p else "—") + f" | {cell_s / max(len(runs), 1):.0f} | {len(runs)} |")
    ana = sum(a.get("seconds") or 0.0 for a in (results.get("analysis") or {}).values())
    rendered = [v for v in (results.get("data_seconds") or {}).values() if v is not None]
    data = sum(rendered)
    total += ana + data
    data_txt = f"data rendering {data:.0f} s" if rendered else "data rendering not recorded"
    return ("**Detection and compute**: mean box IoU with the true boxes on the test set; wall seconds per seed of "
            "pretraining and of the pose cells (feature extraction included)\n\n"
            "| method | box IoU | pretraining (s) | pose cells (s) | seeds |\n|---|---:|---:|---:|---:|\n"
            + "\n".join(rows)
            + f"\n\nTotal compute: {total / 60:.0f} min ({data_txt}, disentanglement analysis {ana:.0f} s).\n")


def plot(results: dict, names: list[str], shares: list[float], path: Path) -> None:
    """N-MPJPE against label share (log x), error bars = std over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from matplotlib.ticker import FuncFormatter

    agg = aggregate(results["cells"])
    colours = plt.get_cmap("tab20").colors   # 20 distinct colours: the default cycle repeats after 10 methods
    markers = "osD^v<>ph*"
    fig, ax = plt.subplots(figsize=(8.4, 4.4), dpi=120)
    for k, n in enumerate(names):
        pts = [(s, agg[(n, float(s))]["n_mpjpe"]) for s in shares if (n, float(s)) in agg]
        if not pts:
            continue
        x = [p[0] * 100 for p in pts]
        y = [p[1][0] for p in pts]
        e = [p[1][1] for p in pts]
        ref = n in REFERENCE_NAMES
        ax.errorbar(x, y, yerr=e, fmt=("--" if ref else "-") + markers[k % len(markers)], ms=4, capsize=3,
                    color="black" if ref else colours[(2 * k) % 20 if k < 10 else (2 * k + 1) % 20],
                    alpha=0.8 if ref else 1.0, label=display_name(n))
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}%"))
    ax.set_xlabel("labelled training frames")
    ax.set_ylabel("N-MPJPE (mm), lower is better")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))   # outside: lines fill the axes
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def provenance(results: dict) -> str:
    """One line: when, on what machine and at which commit the report was written."""
    env = results.get("environment") or {}
    git = env.get("git") or {}
    commit = (git.get("commit", "")[:7] + (" (uncommitted changes)" if git.get("dirty") else "")) or "unknown"
    return (f"Written {env.get('time', '?')} on {env.get('cpu', '?')} ({env.get('cpu_count', '?')} CPUs), "
            f"torch {env.get('torch', '?')}, selfpose commit {commit}. Cells computed by earlier runs of the "
            "command are reused (see `computed` in results.json).")


def write_report(results: dict, cfg, work: Path) -> None:
    """``results.md``, ``results.json``, ``cells.csv`` and ``error_vs_labels.png`` in ``work``."""
    names = [*cfg.methods, *[r for r in REFERENCE_NAMES if r in cfg.references]]
    shares = list(cfg.shares)
    (work / "results.json").write_text(json.dumps(results, indent=1, default=str))
    with open(work / "cells.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["method", "seed", "share", *METRICS, "box_iou", "labelled", "frames"])
        for c in results["cells"].values():
            w.writerow([c["name"], c["seed"], c["share"], *[c.get(m) for m in METRICS], c.get("box_iou"),
                        c.get("labelled"), c.get("frames")])
    plot(results, names, shares, work / "error_vs_labels.png")
    (work / "results.md").write_text(provenance(results) + "\n\n" + tables(results, names, shares)
                                     + "\n\n![N-MPJPE against label share](error_vs_labels.png)\n")
