"""Image → 2D → 3D on the lab benchmark's rendered S8 (issue 12, item 6): the 2D network, then a martinez lifter.

The data are exactly those of ``selfpose benchmark --config configs/benchmark_fixed_rig_cpu.yaml``
(``data.train``: S1, S5, S6, S7 and ``data.test``: S8 of the real H36M motion,
``synth lab`` at 128×128, 10 fps, ≤ 20 s per take, 4 views; rendered once into
``--data-work``/data by the benchmark's own :func:`selfpose.bench.run.prepare_data`,
so the test set is the one of ``benchmarks/results/benchmark_cpu.md``).

Stages, each cached in ``--work`` (a stage whose folder exists is reused; its
config must equal this script's, else delete it):

1. ``heatmap2d/``: :func:`selfpose.lifting.heatmap2d.fit_heatmap_run` on the training subjects' frames.
2. ``lifter_gt2d/``: ``fit_lifter_run`` (martinez) on the training subjects' ground-truth 2D.
3. ``pred2d_test.npz``: the 2D network over every S8 frame (:func:`~selfpose.lifting.image_chain.predict_chain`).
4. with ``--pred-lifter``: ``pred2d_train.npz`` (the 2D network over the training frames) and
   ``lifter_pred2d/``: the same martinez config trained on that *predicted* 2D.
5. with ``--features``: ``pm_pred2d/`` and ``pm_pred2d_feat/``: ``pose_machine`` (its
   defaults, capped like the martinez lifter) on the predicted training 2D, without and
   with the 2D network's pooled image features appended to its input — what the seed's
   image features add to its keypoints.
6. scores on S8 (:func:`~selfpose.lifting.image_chain.evaluate_chain`): 2D error (px, PCK)
   and MPJPE / N-MPJPE / P-MPJPE (mm) of each lifter on predicted and on ground-truth 2D,
   written to ``--work``/results.json and, with ``--out``, a Markdown report beside the
   self-supervised methods' S8 figures read from ``benchmarks/results/benchmark_cpu/results.json``.

Usage (from the repository root)::

    PYTHONPATH=src python benchmarks/lifting_image_chain.py --work out/image_chain --data-work out/bench_data \\
        --pred-lifter --out benchmarks/results/lifting_image_chain.md
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
#: The 2D network's reported setting (≈ 15 min on the 2 shared cores: ``max_seconds`` caps it).
HEATMAP = {"width": 16, "layers": (2, 2, 2), "steps": 2500, "threads": 1, "max_seconds": 1080.0,
           "train_subjects": ("S1", "S5", "S6", "S7")}
#: The martinez lifter of both chains (a shorter run than LifterConfig's 8500-step default, capped at 10 min).
LIFTER = {"steps": 4000, "max_seconds": 600.0, "threads": 1}
#: The pose_machine lifters of ``--features`` (its registered defaults otherwise: 3600 steps, hidden 512, clips of 32).
PM_LIFTER = {"method": "pose_machine", "max_seconds": 600.0, "threads": 1}
SELF_SUPERVISED = REPO / "benchmarks" / "results" / "benchmark_cpu" / "results.json"


def _same_config(folder: Path, meta_name: str, want: dict) -> None:
    from selfpose.training.config import changed_keys

    got = json.loads((folder / meta_name).read_text())["config"]
    diff = changed_keys(got, want)
    if diff:
        raise SystemExit(f"{folder} was made with another config (differs in {', '.join(diff[:5])}); delete it")


def heatmap_stage(train_dir: Path, work: Path, log, overrides: tuple[str, ...] = ()) -> tuple[object, dict]:
    from selfpose.config import from_dict, parse_overrides, to_dict
    from selfpose.lifting.heatmap2d import Heatmap2D, Heatmap2DConfig, fit_heatmap_run

    cfg = from_dict(Heatmap2DConfig, {**to_dict(Heatmap2DConfig(**HEATMAP)), **parse_overrides(overrides)})
    run = work / "heatmap2d"
    if run.exists():
        _same_config(run, "heatmap2d.json", to_dict(cfg))
        log(f"reusing {run}")
    else:
        log(f"training the 2D network into {run} ...")
        fit_heatmap_run(train_dir, run, cfg, progress=True)
    model = Heatmap2D.load(run)
    return model, {k: v for k, v in model.info.items() if k != "curve"}


def lifter_stage(run: Path, train, cfg, log):
    """A lifter run at ``run``: trained on ``train`` (a data folder, or LiftingArrays of predicted 2D [+ features])."""
    from selfpose.config import to_dict
    from selfpose.lifting.train import (
        Lifter,
        fit_lifter,
        fit_lifter_run,
        split_train_val,
    )
    from selfpose.outputs import atomic_output
    from selfpose.training.logs import write_metrics

    if run.exists():
        _same_config(run, "lifter.json", to_dict(cfg))
        log(f"reusing {run}")
    elif isinstance(train, (str, Path)):
        log(f"training {run} on ground-truth 2D ...")
        fit_lifter_run(train, run, cfg, progress=True)
    else:
        log(f"training {run} on predicted 2D ...")
        with atomic_output(run, "lifter") as tmp:
            arrays = train.subset(np.isin(train.subjects, cfg.train_subjects)) if cfg.train_subjects else train
            tr, va = split_train_val(arrays, cfg)
            lifter = fit_lifter(tr, cfg, va, progress=True)
            lifter.info.update({"data": "predicted 2D (pred2d_train.npz)", "subjects": sorted(set(arrays.subjects))})
            lifter.save(tmp)
            write_metrics(tmp, lifter.info["curve"])
    lifter = Lifter.load(run)
    return lifter, {k: v for k, v in lifter.info.items() if k != "curve"}


def chain_stage(model, data_dir: Path, cache: Path, subjects, log):
    from selfpose.lifting.image_chain import load_chain, predict_chain

    if cache.exists():
        log(f"reusing {cache}")
        return load_chain(cache, data_dir, subjects), json.loads(cache.with_suffix(".json").read_text())
    log(f"predicting 2D for {data_dir} ({subjects or 'all'}) ...")
    t0 = time.perf_counter()
    chain = predict_chain(model, data_dir, subjects, progress=True)
    sec = time.perf_counter() - t0
    chain.save(cache)
    info = {"seconds": sec, "frames": len(chain), "frames_per_second": len(chain) / sec}
    cache.with_suffix(".json").write_text(json.dumps(info, indent=1))
    return chain, info


def scores(lifter, chain) -> dict:
    """S8 3D scores of ``lifter`` on the chain's predicted 2D and on the ground-truth 2D of the same frames."""
    import dataclasses

    from selfpose.evaluation.metrics import evaluate_poses
    from selfpose.lifting.image_chain import evaluate_chain

    pred = evaluate_chain(lifter, chain)
    a = chain.inputs_for(lifter)   # with the image features when the lifter reads them
    gt = dataclasses.replace(a, joints2d=chain.joints2d_true,
                             visible=np.isfinite(chain.joints2d_true).all(-1).astype(np.float32))
    ref = evaluate_poses(lifter.predict(gt), a.joints3d, actions=list(a.actions))
    return {"predicted_2d": pred, "ground_truth_2d": ref}


def scale_facts(ds) -> dict:
    """What a pixel is worth on the test set: median pelvis depth, focal length, and 2D body height."""
    z = np.concatenate([r["joints3d"][:, 0, 2] for r in ds])
    fx = np.array([r.meta.camera.fx for r in ds])
    h = np.concatenate([np.nanmax(r["joints2d"][..., 1], 1) - np.nanmin(r["joints2d"][..., 1], 1) for r in ds])
    return {"median_depth_mm": float(np.median(z)), "median_fx_px": float(np.median(fx)),
            "mm_per_px_at_subject": float(np.median(z) / np.median(fx)), "median_body_height_px": float(np.median(h))}


def self_supervised_rows() -> list[dict]:
    """Mean over seeds of each method's S8 cell at 100% labels in the lab benchmark (CPU profile)."""
    if not SELF_SUPERVISED.is_file():
        return []
    cells = json.loads(SELF_SUPERVISED.read_text())["cells"].values()
    rows: dict[str, list[dict]] = {}
    for c in cells:
        if c.get("share") == 1.0:
            rows.setdefault(c["name"], []).append(c)
    return [{"name": n, "seeds": len(cs), **{m: float(np.mean([c[m] for c in cs]))
                                            for m in ("mpjpe", "n_mpjpe", "p_mpjpe")}} for n, cs in rows.items()]


def report(res: dict) -> str:
    env, h = res["environment"], res["heatmap2d"]
    lines = ["# Image → 2D → 3D on the lab benchmark's rendered S8 (issue 12, item 6)", "",
             (f"Date {env['time']}; machine: {env['cpu_count']} CPU cores ({env['cpu']}), torch {env['torch']}, "
             f"no GPU; commit {res['commit']}. The 2 cores were shared with other jobs (load average 4–10 "
             "during training): wall times are upper bounds, and time-capped stages ran fewer steps than asked."), "",
             "Command, from the repository root:", "",
             "    " + res["command"], "",
             "## Setting", "",
             ("- **Data**: the lab benchmark's own renders (`configs/benchmark_fixed_rig_cpu.yaml` → "
             "`selfpose.bench.run.prepare_data`): train S1, S5, S6, S7 "
             f"({res['data']['train_frames']:,} frames), test S8 ({res['data']['test_frames']:,} frames), "
             "128×128, 4 static cameras. The same S8 frames and metrics as `benchmarks/results/benchmark_cpu.md`."),
             (f"- **2D network** (`selfpose.lifting.heatmap2d`): ResNet18 width {HEATMAP['width']}, stages "
             f"{list(HEATMAP['layers'])} (stride 16), two 4×4 deconvolutions to 32×32 heatmaps, soft-argmax to px; "
             "L1 on coordinates + 0.1 × heatmap cross-entropy; colour jitter 0.3; AdamW 1e-3, batch 32, "
             f"one torch thread. {h['steps_done']} of {HEATMAP['steps']} steps in {h['train_seconds']:.0f} s "
             f"(cap {HEATMAP['max_seconds']:.0f} s), best validated step {h['best_step']} "
             f"(held-out takes of the training subjects: {h['best_val_mean_px']:.2f} px)."),
             (f"- **Lifter**: martinez, `LifterConfig(steps={LIFTER['steps']}, max_seconds={LIFTER['max_seconds']:.0f}, "
             "threads=1)` (other keys default: focal-normalised input, validation on held-out takes)."), ""]
    t = res["test"]
    e2 = t["2d"]
    lines += ["## 2D error of the network on S8 (px of the 128×128 frames; joints inside the frame)", "",
              "| mean px | median px | PCK@2px | PCK@5px | PCK@10px | joints | prediction speed |",
              "|---:|---:|---:|---:|---:|---:|---:|",
              (f"| {e2['mean_px']:.2f} | {e2['median_px']:.2f} | {e2['pck@2px']:.1f}% | {e2['pck@5px']:.1f}% | "
              f"{e2['pck@10px']:.1f}% | {e2['count']:,} | {res['pred_test']['frames_per_second']:.0f} frames/s |"), ""]
    if "2d_train" in res:
        tr = res["2d_train"]
        lines += [(f"On the training frames the same network errs {tr['mean_px']:.2f} px (mean), "
                  f"{tr['pck@5px']:.1f}% PCK@5px."), ""]
    lines += ["## 3D on S8 (mm, pelvis-centred camera frame; all 24,120 frames)", "",
              "| lifter trained on | 2D at test | MPJPE | N-MPJPE | P-MPJPE | action avg MPJPE | lifter training |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for key, name in (("lifter_gt2d", "GT 2D of S1, S5, S6, S7"), ("lifter_pred2d", "predicted 2D of S1, S5, S6, S7"),
                      ("pm_pred2d", "pose_machine: predicted 2D"),
                      ("pm_pred2d_feat", "pose_machine: predicted 2D + image features")):
        if key not in res:
            continue
        info = res[key]
        for inp, label in (("predicted_2d", "**predicted (image chain)**"), ("ground_truth_2d", "ground truth")):
            m, avg = res[key]["s8"][inp]["overall"], res[key]["s8"][inp]["action_average"]
            lines.append(f"| {name} | {label} | {m['mpjpe']:.1f} | {m['n_mpjpe']:.1f} | {m['p_mpjpe']:.1f} | "
                         f"{avg['mpjpe']:.1f} | {info['steps_done']} steps, {info['train_seconds']:.0f} s |")
    lines.append("")
    ss = res.get("self_supervised", [])
    if ss:
        lines += ["## Next to the self-supervised methods on the same S8 (from `benchmarks/results/benchmark_cpu.md`)",
                  "", ("Those figures are image → 3D with a pose head on self-supervised features and 100% of the "
                  "training labels (mean over the seeds run); the chain above uses the training subjects' 2D labels "
                  "for the 2D network and their 3D labels for the lifter."), "",
                  "| method | seeds | MPJPE | N-MPJPE | P-MPJPE |", "|---|---:|---:|---:|---:|"]
        refs = {"random": "random (reference: untrained network + pose head)",
                "mean_pose": "mean_pose (reference: mean training pose)"}
        for r in sorted(ss, key=lambda r: r["n_mpjpe"]):
            lines.append(f"| {refs.get(r['name'], r['name'])} | {r['seeds']} | {r['mpjpe']:.1f} | {r['n_mpjpe']:.1f} | {r['p_mpjpe']:.1f} |")
        lines.append("")
    d = res["data"]
    g = res["lifter_gt2d"]["s8"]
    lines += ["## Reading", "",
              (f"- **What a pixel costs.** On S8 the pelvis is a median {d['median_depth_mm'] / 1000:.2f} m from "
               f"cameras of focal length {d['median_fx_px']:.0f} px, so 1 px in the image is "
               f"{d['mm_per_px_at_subject']:.0f} mm at the subject, and the body's 2D extent is "
               f"{d['median_body_height_px']:.0f} px tall (median). The network's {e2['mean_px']:.2f} px mean 2D "
               f"error is about {e2['mean_px'] * d['mm_per_px_at_subject']:.0f} mm in the image plane, "
               f"{100 * e2['mean_px'] / d['median_body_height_px']:.1f}% of the body's 2D height: at this "
               "resolution the 2D link dominates the chain's error."),
              (f"- **The GT-2D lifter on predicted 2D**: {g['predicted_2d']['overall']['mpjpe']:.1f} mm MPJPE, "
               f"against {g['ground_truth_2d']['overall']['mpjpe']:.1f} mm on the ground-truth 2D of the same "
               "frames.")]
    if "lifter_pred2d" in res:
        p = res["lifter_pred2d"]["s8"]
        lines.append(f"- **A lifter trained on predicted 2D** (the 2D network run over its own training frames, "
                     f"{res['2d_train']['mean_px']:.2f} px there vs {e2['mean_px']:.2f} px on S8): "
                     f"{p['predicted_2d']['overall']['mpjpe']:.1f} mm on S8's predicted 2D, "
                     f"{p['ground_truth_2d']['overall']['mpjpe']:.1f} mm on its ground-truth 2D (it learnt to "
                     "expect the network's errors).")
    if "pm_pred2d_feat" in res:
        a, b = (res[k]["s8"]["predicted_2d"]["overall"]["mpjpe"] for k in ("pm_pred2d", "pm_pred2d_feat"))
        lines.append(f"- **Image features into the pose machine** (both trained on predicted 2D, same budget): "
                     f"{a:.1f} mm without, {b:.1f} mm with the 2D network's pooled features "
                     f"({res['pm_pred2d']['steps_done']} and {res['pm_pred2d_feat']['steps_done']} steps).")
    if ss:
        best = min((r for r in ss if r["name"] not in ("random", "mean_pose")), key=lambda r: r["n_mpjpe"])
        chain = min([res[k]["s8"]["predicted_2d"]["overall"]["n_mpjpe"]
                     for k in ("lifter_gt2d", "lifter_pred2d", "pm_pred2d", "pm_pred2d_feat") if k in res])
        lines.append(f"- **Against the self-supervised methods** (best N-MPJPE: {best['name']}, "
                     f"{best['n_mpjpe']:.1f} mm): the chain's best N-MPJPE is {chain:.1f} mm. The chain uses "
                     "every training frame's 2D label and 3D label; the self-supervised rows use the 3D labels for "
                     "their pose head only, no 2D labels.")
    lines.append("")
    lines += ["## Caveats", "",
              ("- Synthetic frames: the 2D network learns renders of one shared skeleton with rendered textures; "
              "real images and real 2D detectors err more."),
              ("- One seed, one short CPU budget; the 2D training stops at its time cap before its cosine "
              "schedule ends when the machine is busy (see steps above)."), ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("out/image_chain"))
    ap.add_argument("--data-work", type=Path, default=Path("out/bench_data"),
                    help="where the benchmark's data are rendered (WORK/data/{train,test}) or already are")
    ap.add_argument("--bench-config", type=Path, default=REPO / "configs" / "benchmark_fixed_rig_cpu.yaml")
    ap.add_argument("--pred-lifter", action="store_true", help="also train a lifter on the predicted training 2D")
    ap.add_argument("--features", action="store_true",
                    help="also train pose_machine on the predicted training 2D without and with image features")
    ap.add_argument("--out", type=Path, default=None, help="Markdown report")
    ap.add_argument("--threads", type=int, default=1, help="torch threads while predicting 2D (training: see configs)")
    ap.add_argument("--heatmap", nargs="*", default=(), metavar="KEY=VALUE",
                    help="override the 2D network's reported setting (HEATMAP), e.g. width=32 max_seconds=1800")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)

    from selfpose.bench.config import BenchmarkConfig
    from selfpose.bench.run import prepare_data
    from selfpose.config import load
    from selfpose.lifting.heatmap2d import errors_2d
    from selfpose.lifting.train import LifterConfig
    from selfpose.training.logs import environment, git_commit

    log = print
    args.work.mkdir(parents=True, exist_ok=True)
    train_dir, test_dir = prepare_data(load(BenchmarkConfig, args.bench_config), args.data_work, progress=True)
    res: dict = {"environment": environment(),
                 "command": " ".join(["PYTHONPATH=src python benchmarks/lifting_image_chain.py", *sys.argv[1:]])}
    git = git_commit(REPO) or {}
    res["commit"] = git.get("commit", "unknown")[:7] + (" (with uncommitted changes)" if git.get("dirty") else "")
    model, res["heatmap2d"] = heatmap_stage(train_dir, args.work, log, tuple(args.heatmap))
    lcfg = LifterConfig(**LIFTER)
    gt_lifter, res["lifter_gt2d"] = lifter_stage(args.work / "lifter_gt2d", train_dir, lcfg, log)
    test, res["pred_test"] = chain_stage(model, test_dir, args.work / "pred2d_test.npz", None, log)
    res["data"] = {"train": str(train_dir), "test": str(test_dir), "test_frames": len(test)}
    res["test"] = {"2d": errors_2d(test.arrays.joints2d, test.joints2d_true, mask=test.inside())}
    res["lifter_gt2d"]["s8"] = scores(gt_lifter, test)
    if args.pred_lifter:
        train, res["pred_train"] = chain_stage(model, train_dir, args.work / "pred2d_train.npz", None, log)
        res["2d_train"] = errors_2d(train.arrays.joints2d, train.joints2d_true, mask=train.inside())
        pred_lifter, res["lifter_pred2d"] = lifter_stage(args.work / "lifter_pred2d", train.arrays, lcfg, log)
        res["lifter_pred2d"]["s8"] = scores(pred_lifter, test)
    if args.features:
        from selfpose.lifting.config import load_lifter_config

        train, res["pred_train"] = chain_stage(model, train_dir, args.work / "pred2d_train.npz", None, log)
        pcfg = load_lifter_config(None, PM_LIFTER)
        for key, arrays in (("pm_pred2d", train.arrays), ("pm_pred2d_feat", train.with_features())):
            lifter, res[key] = lifter_stage(args.work / key, arrays, pcfg, log)
            res[key]["s8"] = scores(lifter, test)
    from selfpose.data.store import Dataset

    res["data"]["train_frames"] = Dataset.open(train_dir).num_frames
    res["data"].update(scale_facts(Dataset.open(test_dir)))
    res["self_supervised"] = self_supervised_rows()
    (args.work / "results.json").write_text(json.dumps(res, indent=1, default=str))
    text = report(res)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
