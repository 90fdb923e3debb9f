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


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--name", required=True, help="the entry's key in runs.json (replaced if present)")
    ap.add_argument("--command", required=True, help="the fit-lifter command that made the run")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--results", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
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
