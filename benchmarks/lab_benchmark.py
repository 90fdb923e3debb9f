"""The main method's lab benchmark: pretrain on S1, S5, S6, S7; fit pose on 1/10/100% labels; test on S8.

Three arms, same data and the same budget of optimisation steps:

* ``full``: the temporal method (``configs/temporal_cpu.yaml``) pretrained
  without labels, then the pose head on its frozen ``v``;
* ``random``: the same pose head on the same network, frozen at its random
  initialisation (detector included);
* ``supervised``: the same network (detector + encoder + head) trained from
  scratch on the labelled frames only, for as many steps as the pretraining.

Data: ``selfpose synth lab`` from the real Human3.6M motion
(``h36m17_train_S1-S8_25fps.npz``): S1, S5, S6, S7 for pretraining and
labels, S8 for testing — S8's body and clothes are drawn from its own seed, so
the test identity is never seen in pretraining. Everything is cached under
``--work``: rerunning skips finished cells (and resumes an interrupted
pretraining), so only what is missing is computed.

    python benchmarks/lab_benchmark.py --work bench_lab        # ~1.5 h on a 2-core CPU
    python benchmarks/lab_benchmark.py --work bench_tight --set model.square_crop=false   # the paper's crop

Writes ``WORK/results.json`` and ``WORK/results.md`` (N-MPJPE, MPJPE,
P-MPJPE per arm and label share, box IoU, KMeans subject accuracy of v and i).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MOTION = ROOT.parent / "shared" / "data" / "mocap" / "h36m17_train_S1-S8_25fps.npz"


def _done(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, default=Path("bench_lab"), help="folder for data, runs and results")
    p.add_argument("--motion", type=Path, default=MOTION, help="the H36M-17 motion npz")
    p.add_argument("--config", type=Path, default=ROOT / "configs" / "temporal_cpu.yaml")
    p.add_argument("--steps", type=int, default=3000, help="pretraining steps (and supervised steps)")
    p.add_argument("--supervised-steps", type=int, default=None, help="default: --steps")
    p.add_argument("--pose-steps", type=int, default=1000, help="pose-head steps per cell")
    p.add_argument("--shares", default="0.01,0.1,1.0", help="label shares")
    p.add_argument("--arms", default="full,random,supervised")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="PretrainConfig override for every arm, e.g. --set model.square_crop=false (repeatable)")
    a = p.parse_args(argv)

    from selfpose.config import ConfigError, from_dict, load
    from selfpose.data.store import Dataset
    from selfpose.data.synthetic.synthesize import SynthConfig, synthesize
    from selfpose.pose.evaluate import summary
    from selfpose.pose.stage import PoseStageConfig, analyze_run, evaluate_pose_stage, fit_pose_stage
    from selfpose.pretrain import PretrainConfig, init_run, pretrain

    if not a.motion.exists():
        raise SystemExit(f"{a.motion} not found; pass --motion with the path of h36m17_train_S1-S8_25fps.npz")
    work = a.work
    work.mkdir(parents=True, exist_ok=True)
    shares = [float(s) for s in a.shares.split(",")]
    arms = a.arms.split(",")
    seconds: dict[str, float] = {}

    def timed(name, fn, *args, **kw):
        t0 = time.perf_counter()
        out = fn(*args, **kw)
        seconds[name] = round(time.perf_counter() - t0, 1)
        return out

    # The config first: a bad key fails before any rendering.
    try:
        cfg = load(PretrainConfig, a.config, [*a.set, f"train.steps={a.steps}",
                                              f"train.checkpoint_every={max(a.steps // 6, 1)}",
                                              f"train.picture_every={max(a.steps // 12, 1)}"])
    except ConfigError as e:
        raise SystemExit(f"bad --config/--set: {e}") from None
    train_dir, test_dir = work / "lab_train", work / "lab_test"
    for d, subjects in ((train_dir, ("S1", "S5", "S6", "S7")), (test_dir, ("S8",))):
        if not (d / "index.json").exists():
            timed(f"synth_{d.name}", synthesize,
                  SynthConfig(scenario="lab", motion=str(a.motion), subjects=subjects, seed=a.seed), d, overwrite=True)

    run_dir = work / "run_full"
    if "full" in arms:
        state = _done(run_dir / "run.json") or {}
        if state.get("step") != a.steps:
            timed("pretrain", pretrain, cfg, train_dir, run_dir, resume=(run_dir / "checkpoints").exists(),
                  overwrite=not (run_dir / "checkpoints").exists())
    random_dir = work / "run_random"
    if "random" in arms and not (random_dir / "run.json").exists():
        init_run(cfg, train_dir, random_dir, overwrite=True)

    cells = work / "cells"
    cells.mkdir(exist_ok=True)
    results: dict = {"cells": {}, "seconds": seconds}
    for share in shares:
        pose_cfg = from_dict(PoseStageConfig, {"pose": {"fraction": share, "steps": a.pose_steps, "seed": a.seed}})
        for arm, rd in (("full", run_dir), ("random", random_dir)):
            if arm not in arms:
                continue
            key = f"{arm}_{share:g}"
            cell = cells / f"{key}.json"
            if (res := _done(cell)) is None:
                t0 = time.perf_counter()
                fit = fit_pose_stage(rd, train_dir, work / f"pose_{key}", pose_cfg, overwrite=True)
                ev = evaluate_pose_stage(work / f"pose_{key}", test_dir)
                res = {**summary(ev), "labelled": fit["num_labelled"], "seconds": round(time.perf_counter() - t0, 1)}
                cell.write_text(json.dumps(res, indent=1))
            results["cells"][key] = res
        key = f"mean_pose_{share:g}"
        cell = cells / f"{key}.json"
        if (res := _done(cell)) is None:
            res = _mean_pose(train_dir, test_dir, share, a.seed)
            cell.write_text(json.dumps(res, indent=1))
        results["cells"][key] = res
        if "supervised" in arms:
            key = f"supervised_{share:g}"
            cell = cells / f"{key}.json"
            if (res := _done(cell)) is None:
                res = _supervised(cfg, train_dir, test_dir, work / f"sup_{key}", share, a)
                cell.write_text(json.dumps(res, indent=1))
            results["cells"][key] = res

    if "full" in arms:
        ana = cells / "analysis.json"
        if (res := _done(ana)) is None:
            r = analyze_run(run_dir, train_dir, work / "analysis", labels=0.05, pose_steps=a.pose_steps)
            res = {k: r.get(k) for k in ("kmeans_v", "kmeans_i", "chance", "pose_from_v", "pose_from_i")}
            ana.write_text(json.dumps(res, indent=1, default=str))
        results["analysis"] = res
    results["train_frames"] = Dataset.open(train_dir).num_frames
    results["test_frames"] = Dataset.open(test_dir).num_frames
    results["steps"] = a.steps
    (work / "results.json").write_text(json.dumps(results, indent=1, default=str))
    (work / "results.md").write_text(_table(results, shares, arms))
    print(_table(results, shares, arms))
    return results


def _supervised(cfg, train_dir: Path, test_dir: Path, out: Path, share: float, a) -> dict:
    from selfpose.config import from_dict, to_dict
    from selfpose.data.store import Dataset
    from selfpose.pose.evaluate import evaluate, summary
    from selfpose.pose.features import extract
    from selfpose.pose.labels import label_subset
    from selfpose.pose.supervised import SupervisedConfig, train_supervised

    steps = a.supervised_steps or a.steps
    scfg = from_dict(SupervisedConfig, {"model": to_dict(cfg.model), "fraction": share, "steps": steps,
                                        "eval_every": max(steps // 12, 1), "patience": 4, "seed": a.seed})
    t0 = time.perf_counter()
    train = Dataset.open(train_dir)
    model = train_supervised(train, scfg)
    model.save(out)
    test = Dataset.open(test_dir)
    fs = extract(model.feature_fn, test, label_subset(test, 1.0), batch_size=64)
    ev = evaluate(model.pose.predict(fs), fs)
    return {**summary(ev), "labelled": int(len(label_subset(train, share, seed=a.seed))),
            "best_step": model.best_step, "seconds": round(time.perf_counter() - t0, 1)}


def _mean_pose(train_dir: Path, test_dir: Path, share: float, seed: int) -> dict:
    """Reference: predict the mean pelvis-centred pose of the labelled training frames for every test frame."""
    from selfpose.bench.run import mean_pose_cell

    return mean_pose_cell(train_dir, test_dir, share, seed)


def _fmt(x) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.1f}"


def _fmt3(x) -> str:
    return "—" if x is None else f"{x:.3f}"


def _table(results: dict, shares: list[float], arms: list[str]) -> str:
    names = {"full": "full method (DSL-STN-Dec-Split)", "random": "random frozen encoder",
             "supervised": "supervised from scratch", "mean_pose": "mean training pose (reference)"}
    head = "| arm | " + " | ".join(f"{s:.0%} labels" for s in shares) + " |\n|---|" + "---:|" * len(shares) + "\n"
    out = []
    for metric, title in (("n_mpjpe", "N-MPJPE (mm)"), ("mpjpe", "MPJPE (mm)"), ("p_mpjpe", "P-MPJPE (mm)")):
        rows = "".join(f"| {names[arm]} | " + " | ".join(_fmt(results["cells"].get(f"{arm}_{s:g}", {}).get(metric))
                                                        for s in shares) + " |\n" for arm in [*arms, "mean_pose"])
        out.append(f"**{title}** on S8 (unseen identity)\n\n{head}{rows}")
    iou = {arm: results["cells"].get(f"{arm}_{shares[0]:g}", {}).get("box_iou") for arm in arms}
    out.append("Mean box IoU on S8: " + ", ".join(f"{names[k]} {v:.3f}" for k, v in iou.items() if v is not None))
    if "analysis" in results:
        an = results["analysis"]
        def mm(r):
            r = r.get("val_n_mpjpe") if isinstance(r, dict) else r
            return "—" if r is None else f"{r:.1f} mm"

        out.append(f"KMeans subject accuracy (4 training subjects, chance {an.get('chance'):.2f}): "
                   f"v {an.get('kmeans_v'):.3f}, i {_fmt3(an.get('kmeans_i'))}; pose head (validation "
                   f"N-MPJPE on held-out training takes) from v {mm(an.get('pose_from_v'))}, "
                   f"from i {mm(an.get('pose_from_i'))}")
    return "\n\n".join(out) + "\n"


if __name__ == "__main__":
    main()
