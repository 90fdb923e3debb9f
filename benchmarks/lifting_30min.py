"""Score a 30-minute lifter run on S8 and record it in ``benchmarks/results/lifting_30min/runs.json``.

The 30-minute comparisons of issue 12 (docs/lifting.md) train with plain
``selfpose fit-lifter`` commands, two runs side by side at ``threads=1``, on

    selfpose prepare mocap ../shared/data/mocap/h36m17_train_S1-S8_25fps.npz \\
        --cameras ../shared/data/fixtures/h36m/cameras.pkl --out H

and this script scores each the same way: S8 without its two smoking takes
(exact copies of S5's motion), ground-truth and noisy 2D (the run's noise
model, seeded by its seed), test-time correction off and on — four
evaluations through :func:`selfpose.lifting.train.evaluate_lifter_run` (the
library behind ``selfpose evaluate``; the run folder is not written). The entry
keeps the training command, steps, best step, seconds, the validation curve's
best and last MPJPE, and each evaluation's overall metrics, rule counts and
frames/s::

    PYTHONPATH=src python benchmarks/lifting_30min.py RUN --data H --name NAME \\
        --command "selfpose fit-lifter --data H --out RUN ..."

Run it with the machine otherwise idle when the frames/s matter (``--threads``, default 2).
``--plot-lever PNG`` draws the 2D-only lever's six runs from runs.json instead.
"""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "lifting_30min" / "runs.json"
EXCLUDE = ("S8__smoking_1", "S8__smoking_2")
KEEP = ("mpjpe", "n_mpjpe", "p_mpjpe", "pck", "auc")


def score(run: Path, data: Path) -> dict:
    """The four evaluations, keyed like the earlier entries (``no-noise_correction`` …)."""
    from selfpose.lifting.train import evaluate_lifter_run

    out = {}
    for noise in (False, True):
        for correction in (False, True):
            key = f"{'noise' if noise else 'no-noise'}_{'correction' if correction else 'no-correction'}"
            res = evaluate_lifter_run(run, data, subjects=["S8"], noise=noise, correction=correction, write=False,
                                      exclude_takes=list(EXCLUDE))
            out[key] = {**{k: round(float(res["overall"][k]), 3) for k in KEEP if k in res["overall"]},
                        "correction": res["correction"], "frames_per_second": round(res["frames_per_second"])}
            print(f"{run.name} {key}: MPJPE {out[key]['mpjpe']:.2f} P-MPJPE {out[key]['p_mpjpe']:.2f} mm",
                  flush=True)
    return out


def entry(run: Path, command: str, evaluate: dict) -> dict:
    """The training facts of ``run``'s ``lifter.json`` plus ``evaluate``."""
    meta = json.loads((run / "lifter.json").read_text())
    vals = [row["val_mpjpe"] for row in meta["curve"] if row.get("val_mpjpe") is not None]
    return {"command": command, "steps_done": meta["steps_done"], "best_step": meta["best_step"],
            "train_seconds": round(meta["train_seconds"], 3), "stages_cut": meta.get("stages_cut", []),
            "last_val_mpjpe": round(vals[-1], 5) if vals else None,
            "best_val_mpjpe": round(min(vals), 5) if vals else None, "evaluate": evaluate}


LEVER = {"3D of S1": ("pm_s1", "pm_s1_seed1"),
         "3D of S1,\ninput z-scoring\nwith S5-S7's 2D": ("pm_s1_stats", "pm_s1_stats_seed1"),
         "3D of S1\n+ 2D-only S5-S7": ("pm_s1_2d", "pm_s1_2d_seed1")}
PANELS = (("no-noise_correction", "mpjpe", "GT 2D: MPJPE"), ("no-noise_correction", "p_mpjpe", "GT 2D: P-MPJPE"),
          ("noise_correction", "mpjpe", "noisy 2D: MPJPE"), ("noise_correction", "p_mpjpe", "noisy 2D: P-MPJPE"))


def plot_lever(results: Path, out: Path) -> None:
    """The 2D-only lever and its control: one panel per metric, a bar per label set (seed mean), a dot per seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = json.loads(results.read_text())["runs"]
    fig, axes = plt.subplots(1, len(PANELS), figsize=(4 * len(PANELS), 4.2))
    colours = ("#8c8c8c", "#5b8dd6", "#d6785b")
    for ax, (key, metric, title) in zip(axes, PANELS):
        for i, (label, names) in enumerate(LEVER.items()):
            vals = [runs[n]["evaluate"][key][metric] for n in names if n in runs]
            if not vals:
                continue
            ax.bar(i, sum(vals) / len(vals), color=colours[i], width=0.7)
            ax.scatter([i] * len(vals), vals, color="k", s=14, zorder=3)
            ax.text(i, max(vals) + 0.2, f"{sum(vals) / len(vals):.1f}", ha="center", va="bottom", fontsize=9)
        lo = min(runs[n]["evaluate"][key][metric] for names in LEVER.values() for n in names if n in runs)
        ax.set_ylim(lo * 0.9, None)
        ax.set_xticks(range(len(LEVER)), list(LEVER), fontsize=8)
        ax.set_title(title + " (mm)", fontsize=10)
    fig.suptitle("pose_machine, 30 min, S8 (correction on): what 2D-only subjects buy, and through which channel "
                 "(bars: mean of seeds 0, 1; dots: seeds)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, nargs="?", help="the run folder to score and record")
    ap.add_argument("--data", type=Path)
    ap.add_argument("--name", help="the entry's key in runs.json (replaced if present)")
    ap.add_argument("--command", help="the fit-lifter command that made the run")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--plot-lever", type=Path, metavar="PNG",
                    help="instead: draw the 2D-only lever's runs (S1 / S1 + statistics / S1 + 2D-only) from runs.json")
    args = ap.parse_args(argv)
    if args.plot_lever:
        plot_lever(args.results, args.plot_lever)
        return
    if not (args.run and args.data and args.name and args.command):
        ap.error("RUN, --data, --name and --command are needed to record a run (or pass --plot-lever PNG)")
    shlex.split(args.command)   # a malformed command is refused before minutes of scoring

    import torch

    torch.set_num_threads(args.threads)
    record = entry(args.run, args.command, score(args.run, args.data))
    doc = json.loads(args.results.read_text())
    doc["runs"][args.name] = record
    args.results.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"recorded {args.name} in {args.results}")


if __name__ == "__main__":
    main()
