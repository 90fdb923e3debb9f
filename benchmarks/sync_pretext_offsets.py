"""Score sync runs' pretext heads on the *same* held-out pairs, whatever offsets each run was trained with.

``sync_transfer_probe.py --pretext-pairs`` draws each run's pairs with that run's own sampler settings, so a run
trained on easier negatives (``sampler.sync_min_offset_s`` raised) is also scored on easier negatives. This scores
every run at each given minimum offset of its unsynchronised pairs (the other sampler settings stay the run's own),
so runs can be compared on one task (issue 15, ``benchmarks/results/sync_easy_negatives/``). The runs' other
sampler settings (maximum offset, still frames, single view, mirrored unsynchronised pairs) must agree, else the
pairs would differ: that is an error.

    python benchmarks/sync_pretext_offsets.py --test out/bench_sync8k/data/test \\
        --run easyneg=out/sync_easyneg_s1 --run sync8k=out/bench_sync8k/runs/sync_s1 \\
        --min-offsets 0.08 0.5 --pairs 2000 --out out/sync_easyneg_probe/offset_scores.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def differing_settings(own: dict[str, dict]) -> list[str]:
    """Sampler settings (``run_sampler_kwargs``) other than the minimum offset on which the runs ``own`` (name →
    kwargs) disagree: where any does, the runs are not scored on the same pairs. Sorted key names."""
    keys = sorted({k for kw in own.values() for k in kw} - {"min_offset_s"})
    return [k for k in keys if len({repr(kw.get(k)) for kw in own.values()}) > 1]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--test", required=True, help="dataset folder of held-out takes (e.g. the benchmark's data/test)")
    ap.add_argument("--run", action="append", required=True, help="NAME=RUN_DIR of a method=sync run (repeatable)")
    ap.add_argument("--min-offsets", type=float, nargs="+", required=True,
                    help="minimum |Δt| (seconds) of the unsynchronised pairs to score at")
    ap.add_argument("--pairs", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0, help="seed of the drawn pairs (the same for every run)")
    ap.add_argument("--out", type=Path, required=True, help="JSON file of the scores")
    a = ap.parse_args(argv)

    from selfpose.data.store import Dataset
    from selfpose.methods.sync_eval import format_accuracy, pretext_scores, run_sampler_kwargs
    from selfpose.pretrain import load_config, load_run

    runs: dict[str, Path] = {}
    for spec in a.run:
        name, sep, path = spec.partition("=")
        if not sep or not Path(path).is_dir():
            raise SystemExit(f"--run {spec!r}: give NAME=RUN_DIR of an existing run folder")
        if name in runs:
            raise SystemExit(f"--run {spec!r}: the name {name!r} is given twice; name each run once")
        runs[name] = Path(path)
    settings = {name: run_sampler_kwargs(load_config(run).sampler) for name, run in runs.items()}
    if diff := differing_settings(settings):
        raise SystemExit(f"the runs' sampler settings differ in {', '.join(diff)}: their pairs would not be the same; "
                         "score such runs separately")
    test = Dataset.open(a.test)
    out: dict[str, dict] = {}
    for name, run in runs.items():
        loaded = load_run(run)
        own = settings[name]
        for lo in a.min_offsets:
            if lo >= own["max_offset_s"]:
                raise SystemExit(f"--min-offsets {lo}: not below {name}'s max offset {own['max_offset_s']} s")
            sc = pretext_scores(loaded.method, test, num_pairs=a.pairs, seed=a.seed,
                                sampler_kwargs={**own, "min_offset_s": lo})
            out[f"{name}@{lo:g}"] = {"run": str(run), "step": loaded.step, "trained_min_offset_s": own["min_offset_s"],
                                     "min_offset_s": lo, **{k: sc.get(k) for k in ("sync", "sync_unflipped", "flip")}}
            print(f"{name} (trained > {own['min_offset_s']:g} s), negatives > {lo:g} s: sync on unflipped pairs "
                  f"{format_accuracy(sc.get('sync_unflipped'))}, flip {format_accuracy(sc.get('flip'))}", flush=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=1, default=str))
    print(f"→ {a.out}")


if __name__ == "__main__":
    main()
