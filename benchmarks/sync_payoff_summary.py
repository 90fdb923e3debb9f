"""Does solving the sync pretext better pay off? One picture over many sync starts, read from the probes' files.

Each ``--start LABEL=FILE[,FILE...]`` is one pretraining run read by ``benchmarks/sync_transfer_probe.py`` (its
``results.json`` files: the call with ``--pretext-pairs`` and, if made, the one with ``--frozen-stages 0``). From
those files this takes the run's held-out sync accuracy on unflipped pairs (the ``*_pretext`` cell), its fine-tuned
MPJPE with the benchmark's frozen stages (the ``*_finetune_<protocol>`` cell that is neither a reference nor
``_frozen0``), with every stage fine-tuned (the ``*_frozen0*_finetune_<protocol>`` cell), and the same network from
scratch of the same pose seed (``bench_scratch_finetune_<protocol>``, or ``--scratch LABEL=MM`` for a start whose
scratch is another network, e.g. another crop size). It draws both fine-tuned results as percent of scratch against
the pretext accuracy, with the issue's target (10% below scratch), and writes the points as JSON beside the picture.

    python benchmarks/sync_payoff_summary.py \\
        --start "pairs s1=benchmarks/results/sync_easy_negatives/results.json:sync8k" ... \\
        --out benchmarks/results/sync_groups/payoff.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

REFERENCE_PREFIXES = ("bench_", "scratch")


def read_start(files: list[Path], protocol: str, run: str | None = None) -> dict:
    """The start's figures from its probe files: ``sync_unflipped`` (accuracy, interval), ``frozen`` and ``every``
    fine-tuned MPJPE (mm; None when absent) and ``scratch`` (mm). ``run``: the run's name in the probe (its
    ``--run NAME``) when the files hold several runs' cells."""
    cells: dict = {}
    for f in files:
        if not f.is_file():
            raise SystemExit(f"{f}: no such file; give a sync_transfer_probe.py results.json")
        cells.update(json.loads(f.read_text())["cells"])

    tail = f"_finetune_{protocol}"

    def mine(name: str) -> bool:   # NAME[_frozenK][_seedS]_finetune_<protocol> of the run (any run when None)
        base = name[: -len(tail)].split("_seed")[0].split("_frozen")[0]
        return not name.startswith(REFERENCE_PREFIXES) and (run is None or base == run)

    pretext = [v for k, v in cells.items() if k.endswith("_pretext") and (run is None or k == f"{run}_pretext")]
    frozen = [v["mpjpe"] for k, v in cells.items() if k.endswith(tail) and mine(k) and "_frozen" not in k
              and "_steps" not in k]
    every = [v["mpjpe"] for k, v in cells.items() if k.endswith(tail) and mine(k) and "_frozen0" in k
             and "_steps" not in k]
    scratch = cells.get(f"bench_scratch{tail}")
    for what, found in (("*_pretext cell", pretext), ("fine-tuned cell", frozen + every)):
        if not found:
            raise SystemExit(f"{', '.join(map(str, files))}: no {what}" + (f" of run {run!r}" if run else "")
                             + " (the probe's --run NAME; --pretext-pairs makes the pretext cell)")
    for what, found in (("pretext cells", pretext), ("frozen-stage cells", frozen), ("every-stage cells", every)):
        if len(found) > 1:
            raise SystemExit(f"{', '.join(map(str, files))}: {len(found)} {what}; name the run with LABEL=FILE:RUN")
    s = pretext[0]["sync_unflipped"]
    return {"sync_unflipped": s["accuracy"], "ci95": s["ci95"], "step": pretext[0].get("step"),
            "frozen": frozen[0] if frozen else None, "every": every[0] if every else None,
            "scratch": scratch["mpjpe"] if scratch else None}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--start", action="append", required=True, help="LABEL=FILE[,FILE...][:RUN]")
    ap.add_argument("--scratch", action="append", default=[], help="LABEL=MM: that start's scratch MPJPE")
    ap.add_argument("--protocol", default="s1")
    ap.add_argument("--out", type=Path, required=True, help="the picture (.png); the points go to the same name .json")
    a = ap.parse_args(argv)
    own = dict(s.split("=", 1) for s in a.scratch)
    points = {}
    for spec in a.start:
        label, rest = spec.split("=", 1)
        files, _, run = rest.partition(":")
        p = read_start([Path(f) for f in files.split(",")], a.protocol, run or None)
        if label in own:
            p["scratch"] = float(own[label])
        if p["scratch"] is None:
            raise SystemExit(f"{label}: no bench_scratch cell in its files; give --scratch {label}=MM")
        for k in ("frozen", "every"):
            p[f"{k}_pct"] = None if p[k] is None else 100.0 * (p[k] / p["scratch"] - 1.0)
        points[label] = p

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5))
    for label, p in points.items():
        x = 100 * p["sync_unflipped"]
        lo, hi = 100 * p["ci95"][0], 100 * p["ci95"][1]
        for k, marker, colour in (("frozen", "o", "tab:blue"), ("every", "^", "tab:orange")):
            if p[f"{k}_pct"] is not None:
                ax.errorbar(x, p[f"{k}_pct"], xerr=[[x - lo], [hi - x]], fmt=marker, color=colour, ms=6, capsize=2,
                            lw=0.8)
                ax.annotate(label, (x, p[f"{k}_pct"]), textcoords="offset points", xytext=(3, 5), fontsize=7)
    ax.plot([], [], "o", color="tab:blue", label="3 stages frozen (the paper's transfer)")
    ax.plot([], [], "^", color="tab:orange", label="every stage fine-tuned")
    ax.axhline(0, color="k", ls="--", lw=1, label="the same network from scratch")
    ax.axhline(-10, color="tab:green", ls=":", lw=1.2, label="10% below scratch (the target)")
    ax.set_xlabel("held-out sync accuracy, unflipped pairs of the paper's offsets (%; chance 50)")
    ax.set_ylabel(f"fine-tuned MPJPE vs scratch, {a.protocol} protocol (%)")
    ax.set_title("sync starts: a better-solved pretext, and what it buys after fine-tuning")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(a.out, dpi=110)
    a.out.with_suffix(".json").write_text(json.dumps(points, indent=1) + "\n")
    for label, p in points.items():
        f = "—" if p["frozen"] is None else f"{p['frozen']:.1f} ({p['frozen_pct']:+.1f}%)"
        e = "—" if p["every"] is None else f"{p['every']:.1f} ({p['every_pct']:+.1f}%)"
        print(f"{label}: sync {100 * p['sync_unflipped']:.1f}%, frozen {f}, every stage {e}, scratch {p['scratch']:.1f}")


if __name__ == "__main__":
    main()
