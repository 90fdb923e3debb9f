"""How much of the demo's "pretrained vs random network" gap is seed noise.

Runs the demo's pretraining and 1% pose head (``selfpose.demo.pretrain_config``
/ ``pose_config``, the full budget) with other ``train.seed`` values on the
demo's own data, and the same head on each seed's frozen initial encoder
reading that seed's trained crop (the demo's ``random encoder, same crop``
row), then prints N-MPJPE on the demo's held-out people for each seed. A
finished seed is read back, not recomputed.

    make demo                                   # makes out/demo/data/{train,test} (and seed 0)
    python benchmarks/demo_seed_spread.py --demo out/demo --seeds 1 2 --work out/demo_seeds

About 8 minutes a seed on 2 cores (Xeon; pretraining, two pose heads, two evaluations).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def run_seed(demo: Path, work: Path, seed: int) -> dict:
    from selfpose.demo import FULL, reference_rows, pose_config, pretrain_config
    from selfpose.pose.stage import evaluate_pose_stage, fit_pose_stage
    from selfpose.pretrain import init_run, pretrain

    train, test = demo / "data" / "train", demo / "data" / "test"
    out = work / f"seed{seed}"
    done = out / "figures.json"
    if done.is_file():
        return json.loads(done.read_text())
    cfg = pretrain_config(FULL, seed=seed)
    figures = {"seed": seed}
    pretrain(cfg, train, out / "run", resume=(out / "run").is_dir())
    init_run(cfg, train, out / "random_init", overwrite=True)
    fit_pose_stage(out / "run", train, out / "pose_run", pose_config(FULL), overwrite=True)
    res = evaluate_pose_stage(out / "pose_run", test)
    figures["run"] = {"n_mpjpe": res["overall"]["n_mpjpe"], "mpjpe": res["overall"]["mpjpe"],
                      "box_iou": res.get("box_iou")}
    refs = reference_rows(out / "random_init", out / "run", train, test, pose_config(FULL), FULL.labels, True)
    figures["random_same_crop"] = {k: refs["random_same_crop"][k] for k in ("n_mpjpe", "mpjpe", "box_iou")}
    done.write_text(json.dumps(figures, indent=1))
    return figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--demo", type=Path, default=Path("out/demo"), help="a finished `selfpose demo` folder")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--work", type=Path, default=Path("out/demo_seeds"))
    args = ap.parse_args()
    rows = []
    seed0 = args.demo / "results.json"
    if seed0.is_file():   # the demo itself is seed 0
        r = json.loads(seed0.read_text())
        rows.append((0, r["full_method"]["n_mpjpe"], r["random_same_crop"]["n_mpjpe"]))
    for s in args.seeds:
        f = run_seed(args.demo, args.work, s)
        rows.append((s, f["run"]["n_mpjpe"], f["random_same_crop"]["n_mpjpe"]))
    print("| seed | full method N-MPJPE (mm) | random encoder, same crop N-MPJPE (mm) |\n|---:|---:|---:|")
    for s, a, b in rows:
        print(f"| {s} | {a:.1f} | {b:.1f} |")


if __name__ == "__main__":
    main()
