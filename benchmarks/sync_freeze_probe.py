"""Probe: are the sync network's frozen early stages worth more than random ones? (issue 15)

The sync rows of ``configs/benchmark_sync_cpu.yaml`` fine-tune with the stem and
first three stages frozen; the ``scratch`` reference trains every stage from
random weights. This fine-tunes the ``scratch`` run (the sync network at its
random initial weights) with the sync rows' own freeze and settings
(:func:`selfpose.bench.run.finetune_stage_config`), so the comparison with the
``sync`` row isolates what pretraining put into the frozen stages, and the one
with ``scratch`` what the freeze costs. Run it on a work folder where the
benchmark has run (it reads ``results.json`` for the data folders):

    python benchmarks/sync_freeze_probe.py out/bench_sync s1 all
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main() -> None:
    from selfpose.bench.config import BenchmarkConfig
    from selfpose.bench.run import finetune_stage_config
    from selfpose.config import load
    from selfpose.pose.evaluate import summary
    from selfpose.pose.stage import evaluate_pose_stage, fit_pose_stage

    if len(sys.argv) < 3:
        sys.exit(__doc__.strip().splitlines()[-1].strip())
    work, protocols = Path(sys.argv[1]), sys.argv[2:]
    res = json.loads((work / "results.json").read_text())
    cfg = load(BenchmarkConfig, Path(__file__).resolve().parents[1] / "configs" / "benchmark_sync_cpu.yaml", [])
    for proto in protocols:
        pc = finetune_stage_config(cfg, proto, 0, scratch=False)   # the sync rows' freeze, on random weights
        out = work / "probes" / f"random_frozen_{proto}"
        t = time.time()
        fit = fit_pose_stage(work / "runs" / "scratch_s0", res["train_dir"], out, pc, overwrite=True, progress=False)
        ev = evaluate_pose_stage(out, res["test_dir"], progress=False)
        row = {**{k: round(v, 1) for k, v in summary(ev).items() if k in ("mpjpe", "n_mpjpe", "p_mpjpe")},
               "val_n_mpjpe": round(fit["val_n_mpjpe"], 1), "frozen_stages": fit["finetune"]["frozen_stages"],
               "seconds": round(time.time() - t, 1)}
        print(proto, row, flush=True)


if __name__ == "__main__":
    main()
