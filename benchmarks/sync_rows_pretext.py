"""Did each row of the sync ablation benchmark learn its pretext task? Held-out accuracy of every sync run.

For every ``method=sync`` run in a benchmark work folder (``WORK/runs/*``), the
accuracy of its heads on pairs of the benchmark's **test** data (held-out
people and motion), by :func:`selfpose.methods.sync_eval.pretext_scores`:
sync, sync on unflipped pairs (balanced; free of the flip→sync leak) and flip,
each with a 95% cluster-bootstrap interval over the pairs' instants; chance 50%.
Pairs are drawn as the run's own sampler settings say (offsets, still
fraction, single view, flip_unsync).

    python benchmarks/sync_rows_pretext.py --work out/bench_sync_room --out benchmarks/results/benchmark_sync_cpu_2000steps
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True, help="the benchmark's work folder")
    ap.add_argument("--out", type=Path, required=True, help="folder for pretext.json and pretext.md")
    ap.add_argument("--pairs", type=int, default=2000)
    ap.add_argument("--run", type=Path, action="append", default=[],
                    help="also this sync run (e.g. a row moved aside before it was redone), scored the same way")
    a = ap.parse_args()

    from selfpose.data.store import Dataset
    from selfpose.methods.sync_eval import format_accuracy as _cell, pretext_scores, run_sampler_kwargs
    from selfpose.pretrain import load_config, load_run

    test = Dataset.open(a.work / "data" / "test")
    rows = {}
    for run in sorted((a.work / "runs").iterdir()) + a.run:
        cfg = load_config(run)
        if cfg.method != "sync" or not (run / "run.json").is_file():
            continue
        if json.loads((run / "run.json").read_text()).get("status") != "finished":
            continue   # the benchmark's `scratch` run is initialised only
        kw = run_sampler_kwargs(cfg.sampler)
        t0 = time.perf_counter()
        sc = pretext_scores(load_run(run).method, test, num_pairs=a.pairs, seed=0, sampler_kwargs=kw)
        name = run.name if run.parent == a.work / "runs" else str(run)
        rows[name] = {k: sc.get(k) for k in ("sync", "sync_unflipped", "flip")}
        rows[name]["seconds"] = round(time.perf_counter() - t0, 1)
        print(name, {k: _cell(v) for k, v in rows[name].items() if k != "seconds"}, flush=True)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "pretext.json").write_text(json.dumps(rows, indent=1, default=float))
    lines = ["# Held-out pretext accuracy of each sync row", "",
             f"Each run of `{a.work}` scored on {a.pairs} pairs of the benchmark's test data (held-out people and "
             "motion), drawn with the run's own sampler settings; 95% cluster-bootstrap intervals over the pairs' "
             "instants; chance 50%. *sync, unflipped*: the sync head on the pairs not mirrored, balanced over its "
             "two classes (no flip→sync leak). Command: `python benchmarks/sync_rows_pretext.py --work "
             f"{a.work} --out {a.out}{''.join(f' --run {r}' for r in a.run)}` "
             f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}).", "",
             "| run | sync | sync, unflipped | flip (synchronised pairs) |", "|---|---:|---:|---:|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {_cell(r['sync'])} | {_cell(r['sync_unflipped'])} | {_cell(r['flip'])} |")
    (a.out / "pretext.md").write_text("\n".join(lines) + "\n")
    print((a.out / "pretext.md").read_text())


if __name__ == "__main__":
    main()
