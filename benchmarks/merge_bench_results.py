"""One report from two or more ``results.json`` of one benchmark config whose parts ran in different work folders.

A benchmark resumes from the cells cached in its work folder; when that folder is lost (a machine shut down)
and only the published ``results.json`` of the earlier part survives, the rest is run in a new folder and the
two are merged here. Cells present in several sources must agree (a reference computed by both runs is a
determinism check: ``--tolerance`` mm on every metric), else the merge is refused; each source's provenance
line is kept.

    python benchmarks/merge_bench_results.py benchmarks/results/benchmark_sync_s1_cpu/results.json \
        out/bench_sync8k/results.json --config configs/benchmark_sync_s1_cpu.yaml --out OUT

A cell deliberately recomputed with a changed setting (e.g. the ceiling's ``supervised_start_steps``, its old
cells moved aside in the work folder) is taken from the last part that has it with ``--supersede GLOB`` (on the
cell's key, repeatable); its copies in earlier parts are dropped unchecked and the report lists them.

Parts that ran different seeds (``seeds=[1]`` on one part's command line) are merged with the config of the
whole, e.g. ``--set 'seeds=[0,1]' --set 'all_seeds_for=["*"]'``: the tables then give mean ± std over seeds.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
from pathlib import Path

METRICS = ("mpjpe", "n_mpjpe", "p_mpjpe")


def merge(sources: list[dict], tolerance: float = 0.05,
          supersede: tuple[str, ...] = ()) -> tuple[dict, list[str], list[str]]:
    """Results dicts (``selfpose.bench.run``'s ``results.json``) → one results dict with every cell, and the
    names of the cells found in more than one source (all agreeing within ``tolerance`` mm; otherwise
    ``SystemExit`` names the first that does not), and the names of the cells whose earlier copies were dropped:
    a cell whose key matches a ``supersede`` glob is taken from the last source that has it, unchecked."""
    out = {"cells": {}, "transfer": {}, "analysis": {}, "persons": {}, "computed": [], "seconds": {},
           "pretrain_seconds": {}, "data_seconds": {}}
    shared, dropped = [], []
    for i, src in enumerate(sources):
        for part in ("cells", "transfer", "analysis", "persons"):
            for key, cell in (src.get(part) or {}).items():
                if any(fnmatch.fnmatchcase(key, g) for g in supersede):
                    if any(key in (later.get(part) or {}) for later in sources[i + 1:]):
                        dropped.append(key)
                        continue
                    out[part][key] = cell
                    continue
                have = out[part].get(key)
                if have is not None:
                    for m in METRICS:
                        a, b = have.get(m), cell.get(m)
                        if a is not None and b is not None and not math.isclose(a, b, abs_tol=tolerance):
                            raise SystemExit(f"{part} {key}: {m} {a:.2f} in one source, {b:.2f} in another "
                                             f"(more than {tolerance} mm apart): not one config's cells")
                    shared.append(key)
                    continue
                out[part][key] = cell
        for part in ("seconds", "pretrain_seconds", "data_seconds"):
            for k, v in (src.get(part) or {}).items():
                out[part].setdefault(k, v)
        out["computed"] += [c for c in src.get("computed") or [] if c not in out["computed"]]
    out["same_crop_of"] = sources[-1].get("same_crop_of")
    out["train_dir"], out["test_dir"] = sources[-1].get("train_dir"), sources[-1].get("test_dir")
    out["environment"] = sources[-1].get("environment") or {}
    out["sources"] = [s.get("environment") or {} for s in sources]
    return out, sorted(set(shared)), sorted(set(dropped))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="+", type=Path, help="results.json of each part")
    ap.add_argument("--config", type=Path, required=True, help="the benchmark config every part ran")
    ap.add_argument("--out", type=Path, required=True, help="folder for the merged report (made if missing)")
    ap.add_argument("--tolerance", type=float, default=0.05, help="mm by which a cell in two sources may differ")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override of the config for the merged report, as on the benchmark's command line; e.g. "
                         "'seeds=[0,1]' 'all_seeds_for=[\"*\"]' when the parts ran one seed each (repeatable)")
    ap.add_argument("--supersede", action="append", default=[], metavar="GLOB",
                    help="cells whose key matches (e.g. 'supervised_start*') come from the last part that has "
                         "them; earlier copies are dropped unchecked and listed in the report (repeatable)")
    a = ap.parse_args()

    from selfpose.bench.kinds import load_benchmark_config
    from selfpose.bench.report import provenance, write_report
    from selfpose.config import to_dict

    for p in a.results:
        if not p.is_file():
            raise SystemExit(f"{p}: no such results.json")
    sources = [json.loads(p.read_text()) for p in a.results]
    cfg = load_benchmark_config(a.config, a.overrides)
    merged, shared, dropped = merge(sources, a.tolerance, tuple(a.supersede))
    merged["config"] = to_dict(cfg)
    missing = [m for m in cfg.methods if not any(c["name"] == m for c in merged["cells"].values())]
    if missing:
        raise SystemExit(f"no cell of {', '.join(missing)} in the sources: run them first (or leave them out of "
                         "the config)")
    a.out.mkdir(parents=True, exist_ok=True)
    write_report(merged, cfg, a.out)
    lines = [f"- `{p}`: " + provenance(s).split(". Cells")[0] for p, s in zip(a.results, sources)]
    head = ("Merged from the parts below (`benchmarks/merge_bench_results.py`); cells in more than one part agree "
            f"within {a.tolerance} mm: {', '.join(shared) or 'none'}."
            + (f" Recomputed cells taken from the last part that has them (`--supersede "
               f"{' '.join(a.supersede)}`), earlier copies dropped: {', '.join(dropped) or 'none'}." if a.supersede
               else "") + "\n\n" + "\n".join(lines) + "\n\n")
    md = a.out / "results.md"
    body = md.read_text().split("\n\n", 1)[1]   # write_report's own provenance line is the last source's: above
    md.write_text(head + body)
    print(f"{len(merged['cells'])} frozen cells, {len(merged['transfer'])} transfer cells → {md}")


if __name__ == "__main__":
    main()
