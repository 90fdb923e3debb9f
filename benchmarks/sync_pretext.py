"""Is the synchronisation pretext task solved on real pixels, not only on renders? (issue 15, item 5)

Two runs of ``method=sync`` (``configs/sync_cpu.yaml``), each scored on data it
never trained on by :func:`selfpose.methods.sync_eval.pretext_scores` (accuracy
of the sync and flip heads, 95% cluster-bootstrap interval over the pairs'
instants, chance 50%):

* **real** — Pose2Sim's four synchronised calibrated views
  (``../shared/data/multiview/pose2sim_single``, 100 frames at 60 fps), person
  boxes from MediaPipe's keypoints (``selfpose keypoints``), the static
  background estimated per view (``prepare multiview``). The take is 1.7 s, so
  the held-out frames are a contiguous block: training on frames
  ``[0, train_stop)``, testing on ``[test_start, 100)``, the gap between them
  larger than the largest time offset of a pair (``max_offset`` frames), so no
  test pair shares an instant or a neighbouring one with a training pair.
  Offsets are scaled to the short take: ``4 < |Δt| < max_offset`` frames at 60 fps.
* **synthetic** — the lab renderer on the real Human3.6M motion (every take,
  cut to ``--seconds``, per-take camera rigs and headings, two looks per
  motion subject, 10 fps): pretraining on S1, S5, S6, S7, testing on the takes
  of S8 (other people, other motion); the paper's offsets (0.08–2.56 s).

Writes ``results.json``, ``results.md`` and a picture per dataset of correctly
and wrongly classified pairs into ``--out``. Every step is cached in ``--work``.

    python benchmarks/sync_pretext.py --work out/sync_pretext --out benchmarks/results/sync_pretext
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
P2S = SHARED / "multiview" / "pose2sim_single"
MOTION = SHARED / "mocap" / "h36m17_train_S1-S8_25fps.npz"


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def real_data(work: Path, train_stop: int) -> tuple[Path, Path]:
    """(every frame, the training frames) of Pose2Sim's demo, prepared with keypoint boxes and backgrounds."""
    from selfpose.data.datasets import prepare
    from selfpose.data.datasets.config import PrepareConfig
    from selfpose.keypoints.files import detect_keypoints

    kp = work / "p2s_keypoints"
    if not (kp / "cam04.npz").is_file():
        detect_keypoints(P2S, kp)
    out = {}
    for name, cap in (("p2s_all", 0), ("p2s_train", train_stop)):
        d = work / name
        if not (d / "index.json").is_file():
            cfg = PrepareConfig(size=256, keypoints=str(kp), calibration=str(P2S / "Calib.qca.txt"), max_frames=cap)
            prepare("multiview", P2S, d, cfg, progress=False)
        out[name] = d
    return out["p2s_all"], out["p2s_train"]


def synthetic_data(work: Path, seconds: float, light: str = "camera") -> tuple[Path, Path]:
    """(training S1/S5/S6/S7, test S8) lab renders of the real Human3.6M motion, per-take rigs.

    ``light``: ``camera`` (a light that moves with each camera, the renderer's
    historical default) or ``room`` (one light fixed in the world); see
    ``SynthConfig.light``.
    """
    from selfpose.data.synthetic.synthesize import SynthConfig, synthesize

    common = dict(scenario="lab", motion=str(MOTION), lab_cameras="per_take", lab_fill=(0.5, 0.7),
                  random_heading=True, max_seconds=seconds, light=light)
    tag = "" if light == "camera" else f"_{light}"
    out = {}
    for name, subjects, seed in (("syn_train", ("S1", "S5", "S6", "S7"), 0), ("syn_test", ("S8",), 1)):
        d = work / f"{name}{tag}"
        if not d.is_dir():
            synthesize(SynthConfig(subjects=subjects, identities_per_subject=2, seed=seed, **common), d,
                       progress=True)
        out[name] = d
    return out["syn_train"], out["syn_test"]


def recipe(steps: int, overrides: list[str]):
    """The PretrainConfig of a run: ``configs/sync_cpu.yaml`` + ``train.steps`` + the overrides."""
    from selfpose.config import load
    from selfpose.pretrain import PretrainConfig

    return load(PretrainConfig, ROOT / "configs" / "sync_cpu.yaml", [f"train.steps={steps}", *overrides])


#: Keys that do not change what a run learns: its length (compared separately) and how often it saves.
_NOT_RECIPE = ("train.steps",)   # checkpoint/picture intervals are among the benchmark's _SPEED_KEYS


def check_recipe(run: Path, cfg) -> None:
    """Exit when ``run`` was pretrained with other settings than ``cfg`` (data paths, the step count and the
    speed keys aside): a cached run of another recipe must never be scored as this one."""
    from selfpose.bench.run import _SPEED_KEYS
    from selfpose.config import to_dict
    from selfpose.pretrain import load_config
    from selfpose.training.config import changed_keys

    diff = [k for k in changed_keys(to_dict(load_config(run)), to_dict(cfg))
            if not k.startswith("data.") and k not in _NOT_RECIPE and tuple(k.split(".")) not in _SPEED_KEYS]
    if diff:
        raise SystemExit(f"{run} was pretrained with other settings ({', '.join(diff[:6])}); move it away "
                         f"or use another --work folder")


def pretrain_run(data: Path, run: Path, steps: int, overrides: list[str]) -> Path:
    from selfpose.pretrain import pretrain

    cfg = recipe(steps, overrides)
    if (run / "checkpoints").is_dir() and (run / "run.json").is_file():
        check_recipe(run, cfg)
        meta = json.loads((run / "run.json").read_text())
        if meta.get("status") == "finished" and meta.get("steps") == steps:
            return run
    pretrain(cfg, data, run, resume=run.is_dir(), progress=True)
    return run


def score(run: Path, data: Path, sampler_kwargs: dict, pairs: int, picture: Path, title: str) -> dict:
    from selfpose.data.store import Dataset
    from selfpose.methods.sync import pair_grid
    from selfpose.methods.sync_eval import pick_pairs, pretext_scores
    from selfpose.pretrain import load_run
    from selfpose.viz.model_pictures import save_png

    method = load_run(run).method
    ds = Dataset.open(data)
    t0 = time.perf_counter()
    s = pretext_scores(method, ds, num_pairs=pairs, seed=0, sampler_kwargs=sampler_kwargs, keep_batches=True)
    seconds = time.perf_counter() - t0
    right, wrong = pick_pairs(s, "sync", per_kind=4)
    batch = s["batch"]
    for which, idx in (("correct", right), ("wrong", wrong)):
        if len(idx):
            sub = {k: v[idx] for k, v in batch.items()}
            save_png(pair_grid(method, sub, max_pairs=len(idx), cell_px=160, title=f"{title}: {which}"),
                     picture.with_name(f"{picture.stem}_{which}.png"))
    return {"pairs": s["pairs"], "instants": s["clusters"], "seconds": round(seconds, 1),
            **{t: s[t] for t in ("sync", "flip", "sync_unflipped") if t in s}}


def pretrain_seconds(run: Path) -> float:
    """The run's training time (its metrics' last ``time``, summed over resumes by the loop)."""
    from selfpose.bench.run import pretrain_seconds as seconds

    return round(float(seconds(run) or float("nan")), 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=ROOT / "out" / "sync_pretext")
    ap.add_argument("--out", type=Path, default=None, help="results folder (default: WORK/results)")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--pairs", type=int, default=2000)
    ap.add_argument("--which", choices=("real", "synthetic", "both"), default="both")
    ap.add_argument("--train-stop", type=int, default=46, help="real: training frames [0, N)")
    ap.add_argument("--test-start", type=int, default=70, help="real: held-out frames [N, 100)")
    ap.add_argument("--max-offset", type=int, default=24, help="real: unsynchronised |Δt| < this many frames")
    ap.add_argument("--seconds", type=float, default=6.0, help="synthetic: seconds per take (every take of S1, S5-S8)")
    ap.add_argument("--light", choices=("camera", "room"), default="camera",
                    help="synthetic: the renderer's light fixed to each camera, or one light fixed in the room")
    ap.add_argument("--set", nargs="*", default=[], help="PretrainConfig overrides for both runs")
    ap.add_argument("--real-from", type=Path, default=None,
                    help="real: score this run (pretrained elsewhere, e.g. on renders) on the real frames instead of "
                         "pretraining on them")
    a = ap.parse_args()
    if a.test_start - (a.train_stop - 1) <= a.max_offset:
        ap.error("the held-out block must start more than --max-offset frames after the last training frame")
    work = a.work
    out = a.out or work / "results"
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    res_path = out / "results.json"
    results = json.loads(res_path.read_text()) if res_path.is_file() else {}
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "commit": _commit(),
            "machine": f"{_cpu()} ({__import__('os').cpu_count()} CPUs)", "steps": a.steps,
            "pairs": a.pairs, "overrides": a.set,
            "command": "python benchmarks/sync_pretext.py " + " ".join(
                f"--{k.replace('_', '-')} {v}" for k, v in vars(a).items()
                if k not in ("work", "out", "set") and v is not None)
            + (" --set " + " ".join(a.set) if a.set else "")}
    if a.real_from is not None and not (a.real_from / "config.yaml").is_file():
        ap.error(f"--real-from {a.real_from} is not a pretraining run (no config.yaml)")
    if a.which in ("real", "both") and a.real_from is not None:
        # Never saw a real pixel: every frame is held out; the same block as the real run's held-out frames
        # is scored for comparison, and all 100 frames beside it.
        full, _ = real_data(work, a.train_stop)
        fps = 60.0
        kw = dict(min_offset_s=4 / fps, max_offset_s=a.max_offset / fps, still_fraction=0.2)
        results["real_from_renders"] = {
            "meta": {**meta, "steps": None, "run": str(a.real_from)}, "test_frames": [a.test_start, 100],
            "offsets_frames": [4, a.max_offset], "pretrain_seconds": pretrain_seconds(a.real_from),
            "held_out": score(a.real_from, full, {**kw, "frame_range": (a.test_start, 100)}, a.pairs,
                              out / "pairs_real_from_renders.png", "Pose2Sim, model pretrained on renders"),
            "all_frames": score(a.real_from, full, kw, a.pairs, work / "pairs_real_from_renders_all.png",
                                "Pose2Sim (all frames), model pretrained on renders")}
        res_path.write_text(json.dumps(results, indent=1))
    elif a.which in ("real", "both"):
        full, train = real_data(work, a.train_stop)
        fps = 60.0
        offs = [f"sampler.sync_min_offset_s={4 / fps}", f"sampler.sync_max_offset_s={a.max_offset / fps}"]
        run = pretrain_run(train, work / "run_real", a.steps, [*offs, *a.set])
        kw = dict(min_offset_s=4 / fps, max_offset_s=a.max_offset / fps, still_fraction=0.2)
        results["real"] = {
            "meta": meta, "train_frames": [0, a.train_stop], "test_frames": [a.test_start, 100], "offsets_frames": [4, a.max_offset],
            "pretrain_seconds": pretrain_seconds(run),
            "held_out": score(run, full, {**kw, "frame_range": (a.test_start, 100)}, a.pairs, out / "pairs_real.png",
                              "Pose2Sim held out"),
            "training_frames": score(run, full, {**kw, "frame_range": (0, a.train_stop)}, a.pairs,
                                     work / "pairs_real_train.png", "Pose2Sim training")}
        res_path.write_text(json.dumps(results, indent=1))
    if a.which in ("synthetic", "both"):
        train, test = synthetic_data(work, a.seconds, a.light)
        key = "synthetic" if a.light == "camera" else f"synthetic_{a.light}"
        run = pretrain_run(train, work / f"run_{key}", a.steps, a.set)
        results[key] = {"meta": meta, "light": a.light, "pretrain_seconds": pretrain_seconds(run),
                        "held_out": score(run, test, {"still_fraction": 0.2}, a.pairs,
                                          out / f"pairs_{key}.png", f"{key.replace('_', ' ')} held out"),
                        "training_takes": score(run, train, {"still_fraction": 0.2}, a.pairs,
                                                work / f"pairs_{key}_train.png", f"{key.replace('_', ' ')} training")}
        cam_run = work / "run_synthetic"
        if a.light != "camera" and (cam_run / "run.json").is_file():
            check_recipe(cam_run, recipe(a.steps, a.set))
            # The shortcut probe: the model pretrained with the light on each camera, scored on held-out
            # renders lit from the room. A head that read the body keeps its accuracy; one that read
            # which side of the image is lit falls to chance.
            results[key]["camera_run_held_out"] = score(cam_run, test, {"still_fraction": 0.2}, a.pairs,
                                                        work / f"pairs_{key}_camera_run.png",
                                                        f"camera-light model on {key.replace('_', ' ')}")
        res_path.write_text(json.dumps(results, indent=1))
    write_md(results, out / "results.md")
    print((out / "results.md").read_text())


def _cell(d: dict | None, task: str) -> str:
    if not d or task not in d:
        return "—"
    t = d[task]
    lo, hi = t["ci95"]
    return f"{100 * t['accuracy']:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}] (n={t['scored']})"


def write_md(results: dict, path: Path) -> None:
    lines = ["# Synchronisation pretext task: accuracy on held-out data", "",
             "Accuracy of each head of a `method=sync` run (`configs/sync_cpu.yaml`; threshold ½) with a 95% "
             "cluster-bootstrap interval over the instants of the pairs' first images (pairs drawn from one short "
             "take share frames). Chance is 50% for both tasks: half the pairs are synchronised; half the "
             "synchronised ones are flipped, and only those are scored for flips. **sync, unflipped** is the sync "
             "head on the pairs that are not mirrored, balanced over its two classes (chance 50%): only synchronised "
             "pairs are ever flipped, so a head that spots a mirrored image knows the pair is synchronised, and the "
             "plain sync accuracy counts that cue; this column does not.", "",
             "| data | frames scored | sync accuracy | sync, unflipped | flip accuracy | instants |",
             "|---|---|---:|---:|---:|---:|"]
    if "real" in results:
        r = results["real"]
        for key, what in (("held_out", f"held-out frames {r['test_frames'][0]}–{r['test_frames'][1] - 1}"),
                          ("training_frames", f"training frames 0–{r['train_frames'][1] - 1}")):
            lines.append(f"| real (Pose2Sim, 4 views, 60 fps) | {what} | {_cell(r[key], 'sync')} | "
                         f"{_cell(r[key], 'sync_unflipped')} | {_cell(r[key], 'flip')} | {r[key]['instants']} |")
    if "real_from_renders" in results:
        r = results["real_from_renders"]
        for key, what in (("held_out", f"frames {r['test_frames'][0]}–{r['test_frames'][1] - 1}"),
                          ("all_frames", "every frame (0–99)")):
            lines.append(f"| real (Pose2Sim), scored by `{r['meta']['run']}` (never trained on these frames) | {what} | "
                         f"{_cell(r[key], 'sync')} | {_cell(r[key], 'sync_unflipped')} | {_cell(r[key], 'flip')} | "
                         f"{r[key]['instants']} |")
    for part, label in (("synthetic", "synthetic lab (H36M motion), light on each camera"),
                        ("synthetic_room", "synthetic lab (H36M motion), light fixed in the room")):
        if part not in results:
            continue
        r = results[part]
        for key, what in (("held_out", "held-out takes (S8)"), ("training_takes", "training takes (S1, S5–S7)"),
                          ("camera_run_held_out", "held-out takes (S8), scored by the model pretrained on the "
                                                  "camera-lit renders")):
            if key in r:
                lines.append(f"| {label} | {what} | {_cell(r[key], 'sync')} | "
                             f"{_cell(r[key], 'sync_unflipped')} | {_cell(r[key], 'flip')} | {r[key]['instants']} |")
    lines += ["", "How each row was made:", ""]
    if "real_from_renders" in results:
        r = results["real_from_renders"]
        lines.append(f"- real_from_renders: `{r['meta']['command']}` — {r['meta']['date']}, commit {r['meta']['commit']}; "
                     f"the run `{r['meta']['run']}` ({r['pretrain_seconds']:.0f} s of training on renders), "
                     f"{r['meta']['pairs']} pairs per score (seed 0).")
    for part in ("real", "synthetic", "synthetic_room"):
        if part in results:
            m = results[part]["meta"]
            lines.append(f"- {part}: `{m['command']}` — {m['date']} on {m['machine']}, commit {m['commit']}; "
                         f"{m['steps']} pretraining steps ({results[part]['pretrain_seconds']:.0f} s of training), "
                         f"{m['pairs']} pairs per score (seed 0).")
    pics = ", ".join(f"`pairs_{p}_correct.png` / `pairs_{p}_wrong.png`"
                     for p in ("real", "real_from_renders", "synthetic", "synthetic_room")
                     if p in results)
    lines += ["", f"Pictures: {pics} (each row one pair as the encoder sees it; the caption gives the truth and "
              "the heads' probabilities)."]
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
