"""The lifting benchmark (``kind: lifting``): lifters × 2D input × 3D label sets × seeds, scored on unseen subjects.

``selfpose benchmark --config configs/lifting_cpu.yaml --work WORK`` (the
config's ``kind: lifting`` selects this schema, :mod:`selfpose.bench.kinds`;
a config without ``kind`` or with ``kind: lab`` is the image benchmark of
:mod:`selfpose.bench.run`).

1. The keypoint dataset is prepared once (``selfpose prepare mocap`` of
   ``data.motion`` through ``data.cameras``) into ``WORK/data/keypoints``; the
   settings it was made with are noted in ``WORK/data/keypoints.json``.
2. A cell is one method × input × label set × seed
   (:class:`~selfpose.bench.lifting_config.LiftingBenchmarkConfig`): one
   :func:`~selfpose.lifting.train.fit_lifter_run` into ``WORK/runs/<cell>``
   with the method's budget, then :func:`~selfpose.lifting.train.evaluate_lifter_run`
   on the test subjects — twice for a method with a test-time correction
   (``off`` and ``on``, the same weights: no retraining), once otherwise (``off``).
   It records MPJPE, N-MPJPE, P-MPJPE (overall, action average, per action,
   mm), the training facts (seconds, steps, best step), the evaluation's
   frames/s and the correction's rule counts into ``WORK/cells/<cell>.json``.
3. References that expose shortcuts (no learning): ``mean_pose`` predicts the
   mean pelvis-centred 3D pose of the label set's 3D-labelled training frames
   for every test frame (it reads no 2D: it is also what any lifter fed a
   constant input converges to under its MSE loss, so no separate "no-2D
   lifter" is trained); ``nearest_2d`` looks up the training frame whose
   ground-truth 2D is nearest (retrieval: how far memorising the training
   motion goes on the same skeleton); ``linear_2d`` fits a least-squares
   linear map from the ground-truth 2D to 3D (how much lifting needs no
   non-linearity); ``random_2d`` reads 3D linearly from a frozen, untrained
   ``martinez`` network's features of the same 2D (a random network on the
   same input).
4. The report (:mod:`selfpose.bench.lifting_report`): ``WORK/results.md``,
   ``results.json``, ``cells.csv``, ``lifting.png``; copied to ``publish``
   (``PREFIX.md``/``PREFIX.png``) when the config names one.

Caching and resuming: a cell is recomputed only when its file is missing; a
cell (or run) made with another config is an error, never mixed into the
tables (use a new work folder). An interrupted cell resumes its run from its
newest checkpoint (``fit_lifter_run(resume=True)``); a finished run whose
cell file is missing is only evaluated again.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

from selfpose.bench.lifting_config import LiftingBenchmarkConfig
from selfpose.bench.run import BenchmarkError, _cell
from selfpose.config import _merge, to_dict
from selfpose.training.config import changed_keys as differences

# LifterConfig keys that change speed or bookkeeping, not results: a run may resume with other values.
_SPEED_KEYS = ("threads", "checkpoint_every", "keep_checkpoints")


def _comparable(d: dict) -> dict:
    return {k: v for k, v in d.items() if k not in _SPEED_KEYS}


def label_set(cfg: LiftingBenchmarkConfig, name: str) -> dict:
    """``train_subjects`` and ``labels_3d`` of label set ``name`` (``all``, ``s1``, ``s1_2d``)."""
    return {"all": {"train_subjects": list(cfg.train_subjects), "labels_3d": []},
            "s1": {"train_subjects": list(cfg.few_3d), "labels_3d": []},
            "s1_2d": {"train_subjects": list(cfg.train_subjects), "labels_3d": list(cfg.few_3d)}}[name]


def cell_config(cfg: LiftingBenchmarkConfig, method: str, inp: str, labels: str, seed: int):
    """The resolved :class:`~selfpose.lifting.config.LifterConfig` of one cell.

    The method's registered defaults ← ``lifter`` ← ``per_method[method]`` ←
    the cell's method, seed, input (``train_noise``/``test_noise``) and label set.
    """
    from selfpose.lifting.config import load_lifter_config

    over = _merge(_merge(dict(cfg.lifter), dict(cfg.per_method.get(method) or {})),
                  {"method": method, "seed": seed, "train_noise": inp == "noisy", "test_noise": inp == "noisy",
                   **label_set(cfg, labels)})
    return load_lifter_config(None, over)


def cells_of(cfg: LiftingBenchmarkConfig) -> list[tuple[str, str, str, str, int]]:
    """``(key, method, input, label set, seed)`` of every lifter cell, in table order.

    ``s1_2d`` runs only for methods that learn from 2D-only sequences
    (``LIFTERS[m].learns_from_2d_only``); the others refuse such training data.
    """
    from selfpose.lifting.lifters import LIFTERS

    out = []
    for m in cfg.methods:
        for inp in cfg.inputs:
            for ls in cfg.label_sets:
                if ls == "s1_2d" and not LIFTERS[m].learns_from_2d_only:
                    continue
                out += [(f"{m}_{inp}_{ls}_s{s}", m, inp, ls, s) for s in cfg.seeds_of(m, inp, ls)]
    return out


def prepare_data(cfg: LiftingBenchmarkConfig, work: Path, progress: bool = True) -> Path:
    """The keypoint dataset: ``data.dir``, or ``prepare mocap`` into ``WORK/data/keypoints`` once."""
    from selfpose.data.datasets import prepare
    from selfpose.data.store import Dataset

    if cfg.data.dir is not None:
        Dataset.open(cfg.data.dir)   # a clear error now rather than after the first cell
        return Path(cfg.data.dir)
    d = work / "data" / "keypoints"
    stamp = work / "data" / "keypoints.json"
    pcfg = cfg.data.prepare_config()
    want = {"motion": str(Path(cfg.data.motion).resolve()), "prepare": to_dict(pcfg)}
    if (d / "index.json").exists():
        got = json.loads(stamp.read_text()).get("made_with") if stamp.exists() else None
        diff = ["(unknown: no keypoints.json)"] if got is None else differences(got, want)
        if diff:
            raise BenchmarkError(f"{d} was prepared with other data settings (differs in {', '.join(diff[:5])}); "
                                 f"use a new --work folder or delete {d}")
        return d
    if not Path(cfg.data.motion).is_file():
        raise BenchmarkError(f"data.motion {cfg.data.motion} not found (relative paths are read from {Path.cwd()}; "
                             "run from the repository root)")
    t0 = time.perf_counter()
    d.parent.mkdir(parents=True, exist_ok=True)
    prepare("mocap", cfg.data.motion, d, pcfg, overwrite=True, progress=progress)
    stamp.write_text(json.dumps({"made_with": want, "seconds": round(time.perf_counter() - t0, 1)}, indent=1))
    return d


def ensure_run(lcfg, data: Path, run_dir: Path, progress: bool) -> dict:
    """Train ``run_dir`` (or resume it, or reuse it when finished); returns its training facts.

    Raises:
        BenchmarkError: the folder holds a run of another config.
    """
    import yaml

    from selfpose.lifting.model import META
    from selfpose.lifting.train import CONFIG_FILE, fit_lifter_run
    from selfpose.training.checkpoint import latest_checkpoint

    want = _comparable(to_dict(lcfg))
    saved = run_dir / CONFIG_FILE
    if saved.exists():
        diff = differences(_comparable(yaml.safe_load(saved.read_text()) or {}), want)
        if diff:
            raise BenchmarkError(f"{run_dir} was trained with another config (differs in {', '.join(diff[:5])}); "
                                 "use a new --work folder or delete it")
        if (run_dir / META).exists():
            meta = json.loads((run_dir / META).read_text())
            return {k: v for k, v in meta.items() if k not in ("format", "version", "config", "curve")}
        if (run_dir / "checkpoints").is_dir() and latest_checkpoint(run_dir) is not None:
            return fit_lifter_run(data, run_dir, lcfg, resume=True, progress=progress)
    return fit_lifter_run(data, run_dir, lcfg, overwrite=run_dir.exists(), progress=progress)


def _summary(res: dict) -> dict:
    """The parts of an evaluation a cell keeps: overall and action-average metrics, MPJPE per action, speed."""
    o, a = res["overall"], res.get("action_average") or {}
    return {"mpjpe": o["mpjpe"], "n_mpjpe": o["n_mpjpe"], "p_mpjpe": o["p_mpjpe"],
            "action_mpjpe": a.get("mpjpe"), "action_p_mpjpe": a.get("p_mpjpe"),
            "per_action": {k: {"mpjpe": v["mpjpe"], "p_mpjpe": v["p_mpjpe"]} for k, v in res["per_action"].items()},
            "frames": res["num_samples"], "excluded_frames": res["excluded_frames"],
            "seconds": round(res["seconds"], 2), "frames_per_second": res["frames_per_second"],
            "correction": res.get("correction")}


def lifter_cell(lcfg, data: Path, run_dir: Path, test_subjects, progress: bool, exclude_takes=()) -> dict:
    """Train (or resume) one cell's run, then score it with its correction off (and on, when it has one)."""
    import torch

    from selfpose.lifting.lifters import LIFTERS
    from selfpose.lifting.train import evaluate_lifter_run

    fit = ensure_run(lcfg, data, run_dir, progress)
    variants = ("off", "on") if LIFTERS[lcfg.method].correct is not None else ("off",)
    threads = torch.get_num_threads()
    if lcfg.threads is not None:
        torch.set_num_threads(lcfg.threads)   # frames/s at the training's thread count
    try:
        ev = {v: _summary(evaluate_lifter_run(run_dir, data, list(test_subjects), noise=None, correction=v == "on",
                                              write=False, exclude_takes=list(exclude_takes))) for v in variants}
    finally:
        torch.set_num_threads(threads)
    keep = ("train_seconds", "steps_done", "best_step", "best_val_n_mpjpe", "stopped_early", "train_frames",
            "train_frames_3d", "val_frames", "subjects", "subjects_3d")
    return {"train": {k: fit.get(k) for k in keep}, "eval": ev}


def _test_arrays(data: Path, test_subjects, exclude_takes):
    """The test frames, without the excluded takes."""
    import numpy as np

    from selfpose.lifting.data import load_arrays

    test = load_arrays(data, list(test_subjects))
    return test.subset(~np.isin(test.takes, list(exclude_takes))) if exclude_takes else test


def mean_pose_cell(data: Path, subjects_3d, test_subjects, exclude_takes=()) -> dict:
    """Reference: the mean pelvis-centred 3D pose of ``subjects_3d``'s frames predicted for every test frame (mm)."""
    import numpy as np

    from selfpose.evaluation.metrics import evaluate_poses
    from selfpose.lifting.data import load_arrays

    train = load_arrays(data, list(subjects_3d))
    test = _test_arrays(data, test_subjects, exclude_takes)
    mean = train.joints3d[train.has3d].astype(np.float64).mean(0)
    pred = np.broadcast_to(mean, test.joints3d.shape).astype(np.float32)   # writable copy: metrics hand it to torch
    res = evaluate_poses(pred, test.joints3d, actions=list(test.actions))
    res.update({"num_samples": len(test), "excluded_frames": 0, "seconds": 0.0, "frames_per_second": None})
    return {"train": {"train_frames_3d": int(train.has3d.sum()), "subjects_3d": sorted(set(subjects_3d))},
            "eval": {"off": _summary(res)}}


def nearest_2d_cell(data: Path, subjects_3d, test_subjects, stride: int, batch: int = 512, exclude_takes=()) -> dict:
    """Reference: for every test frame, the 3D of the training frame whose ground-truth 2D is nearest (mm).

    A retrieval shortcut (no learning): 2D root-centred and divided by the focal
    length (:func:`selfpose.lifting.data.encode`'s coordinate columns; missing
    joints count as 0), Euclidean nearest neighbour among every ``stride``-th
    3D-labelled frame of ``subjects_3d``. What a lifter must beat to show it
    does more than look motion up: the test subject performs the training
    subjects' actions on the same skeleton.
    """
    import numpy as np
    import torch

    from selfpose.evaluation.metrics import evaluate_poses
    from selfpose.lifting.data import encode, load_arrays

    train = load_arrays(data, list(subjects_3d))
    train = train.subset(np.flatnonzero(train.has3d)[::stride])
    test = _test_arrays(data, test_subjects, exclude_takes)
    J = train.num_joints
    t0 = time.perf_counter()
    a = torch.from_numpy(np.nan_to_num(encode(train, None, "focal")[:, :2 * J]))
    b = torch.from_numpy(np.nan_to_num(encode(test, None, "focal")[:, :2 * J]))
    a2 = (a * a).sum(1)
    # batch × training-frame distances at a time (512 × 117k floats ≈ 240 MB); |b|² is the same along a row
    nearest = torch.cat([torch.argmin(a2[None] - 2 * b[i:i + batch] @ a.T, dim=1)
                         for i in range(0, len(b), batch)]).numpy()
    seconds = time.perf_counter() - t0
    res = evaluate_poses(train.joints3d[nearest], test.joints3d, actions=list(test.actions))
    res.update({"num_samples": len(test), "excluded_frames": 0, "seconds": seconds,
                "frames_per_second": len(test) / max(seconds, 1e-9)})
    return {"train": {"train_frames_3d": len(train), "subjects_3d": sorted(set(subjects_3d)), "stride": stride},
            "eval": {"off": _summary(res)}}


def linear_2d_cell(data: Path, subjects_3d, test_subjects, ridge: float = 1e-4, exclude_takes=()) -> dict:
    """Reference: a linear least-squares map from ground-truth 2D to pelvis-centred 3D (mm), no learning loop.

    Input: :func:`selfpose.lifting.data.encode`'s coordinate and root-position
    columns (2D root-centred and divided by the focal length; missing joints
    0); fitted in closed form (:func:`selfpose.pose.probes.ridge_fit`, an
    unpenalised bias) on every 3D-labelled frame of ``subjects_3d`` with a
    ridge of ``ridge`` × the mean diagonal of XᵀX.
    How much of the lifting a linear function of the 2D already does: what the
    lifters' non-linearity and (for the temporal ones) context must add.
    """
    import numpy as np

    from selfpose.evaluation.metrics import evaluate_poses
    from selfpose.lifting.data import encode, load_arrays
    from selfpose.pose.probes import ridge_fit, ridge_predict

    train = load_arrays(data, list(subjects_3d))
    train = train.subset(train.has3d)
    test = _test_arrays(data, test_subjects, exclude_takes)
    J = train.num_joints

    def design(a):
        return np.nan_to_num(encode(a, None, "focal")[:, :2 * J + 2].astype(np.float64))

    t0 = time.perf_counter()
    w = ridge_fit(design(train), train.joints3d - train.joints3d[:, :1], ridge)
    pred = ridge_predict(w, design(test), (J, 3)).astype(np.float32)
    seconds = time.perf_counter() - t0
    res = evaluate_poses(pred, test.joints3d, actions=list(test.actions))
    res.update({"num_samples": len(test), "excluded_frames": 0, "seconds": seconds,
                "frames_per_second": len(test) / max(seconds, 1e-9)})
    return {"train": {"train_frames_3d": len(train), "subjects_3d": sorted(set(subjects_3d)), "ridge": ridge},
            "eval": {"off": _summary(res)}}


def random_2d_cell(data: Path, subjects_3d, test_subjects, stride: int, seed: int = 0, exclude_takes=(),
                   batch: int = 8192) -> dict:
    """Reference: a random network on the same input — an untrained ``martinez`` lifter, frozen, read out linearly.

    The network (its registered defaults: 1024 wide, two residual blocks; eval
    mode, input z-scoring fitted on the training frames) maps the encoded
    ground-truth 2D to its last hidden layer; a ridge regression
    (:func:`selfpose.pose.probes.ridge_fit`, features standardised) reads 3D
    from it, fitted on every ``stride``-th 3D-labelled training frame. What a
    lifter's training adds beyond random features of the same 2D.
    """
    import numpy as np
    import torch

    from selfpose.evaluation.metrics import evaluate_poses
    from selfpose.lifting.config import load_lifter_config
    from selfpose.lifting.data import encode, load_arrays
    from selfpose.lifting.train import build_lifter
    from selfpose.pose.probes import ridge_fit, ridge_predict, standardise

    train = load_arrays(data, list(subjects_3d))
    train = train.subset(np.flatnonzero(train.has3d)[::stride])
    test = _test_arrays(data, test_subjects, exclude_takes)
    J = train.num_joints
    t0 = time.perf_counter()
    lifter = build_lifter(train, load_lifter_config(None, {"method": "martinez", "seed": seed}))
    net = lifter.net.eval()

    def features(a) -> np.ndarray:
        x = lifter.normalise(torch.from_numpy(encode(a, None, lifter.cfg.input_norm)))
        with torch.inference_mode():
            return torch.cat([net.blocks(net.inp(x[i:i + batch])) for i in range(0, len(x), batch)]).numpy()

    f_train, f_test = standardise(features(train), features(test))
    y = train.joints3d - train.joints3d[:, :1]
    pred = ridge_predict(ridge_fit(f_train, y, 1e-3), f_test, (J, 3)).astype(np.float32)
    seconds = time.perf_counter() - t0
    res = evaluate_poses(pred, test.joints3d, actions=list(test.actions))
    res.update({"num_samples": len(test), "excluded_frames": 0, "seconds": seconds,
                "frames_per_second": len(test) / max(seconds, 1e-9)})
    return {"train": {"train_frames_3d": len(train), "subjects_3d": sorted(set(subjects_3d)), "stride": stride,
                      "seed": seed, "features": int(f_train.shape[1])},
            "eval": {"off": _summary(res)}}


def repeated_takes(motion: str | Path, train_subjects, test_subjects, tol_mm: float = 1.0) -> dict[str, list[str]]:
    """Test takes whose motion repeats a training take: ``{test take: [training takes]}`` (the leaks of the test set).

    Compares the motion file's pelvis-centred poses (world axes, mm) over the
    two takes' common length; "repeats" = mean absolute difference below
    ``tol_mm``. (The Human3.6M motion file holds such copies: its S8 smoking
    takes equal S5's.)
    """
    import numpy as np

    z = np.load(motion)
    take = {k: (k.split("/", 1)[0], z[k] - z[k][:, :1]) for k in z.files}
    train = {k: x for k, (sub, x) in take.items() if sub in set(train_subjects)}
    out: dict[str, list[str]] = {}
    for k, (sub, x) in sorted(take.items()):
        if sub not in set(test_subjects):
            continue
        hits = [o for o, y in train.items()
                if np.abs(x[:min(len(x), len(y))] - y[:min(len(x), len(y))]).mean() < tol_mm]
        if hits:
            out[k] = hits
    return out


def run_lifting_benchmark(cfg: LiftingBenchmarkConfig, work: str | Path, progress: bool = True,
                          log: Callable[[str], None] = print) -> dict:
    """Run every missing cell of ``cfg`` in ``work`` (locked while it runs) and write the report.

    Returns:
        The dict written to ``WORK/results.json``: ``cells`` (key → ids,
        ``train`` facts and ``eval`` per correction variant), ``computed``
        (what this call computed: empty on a rerun), ``data_seconds``,
        ``environment``, ``config``.
    """
    from selfpose.outputs import inplace_output

    with inplace_output(work, "benchmark"):
        return _run(cfg, Path(work), progress, log)


def _run(cfg: LiftingBenchmarkConfig, work: Path, progress: bool, log: Callable[[str], None]) -> dict:
    from selfpose.bench.lifting_report import write_report
    from selfpose.training.logs import environment

    # Every cell's config first: a bad key fails before any data is prepared or trained.
    plan = [(key, m, inp, ls, s, cell_config(cfg, m, inp, ls, s)) for key, m, inp, ls, s in cells_of(cfg)]
    data = prepare_data(cfg, work, progress)
    where = str(data.resolve().relative_to(work.resolve())) if data.resolve().is_relative_to(work.resolve()) \
        else str(data.resolve())
    (work / "cells").mkdir(exist_ok=True)
    computed: list[str] = []
    cells: dict[str, dict] = {}
    leaks = None if cfg.data.dir is not None else repeated_takes(cfg.data.motion, cfg.train_subjects,
                                                                 cfg.test_subjects)
    # take ids of the keypoint dataset: the motion file's "S8/smoking_1" is take "S8__smoking_1"
    excluded = sorted(k.replace("/", "__") for k in (leaks or {})) if cfg.exclude_repeated else []
    for key, m, inp, ls, s, lcfg in plan:
        made_with = {"lifter": _comparable(to_dict(lcfg)), "data": where, "test": list(cfg.test_subjects),
                     "excluded_takes": excluded}
        cells[key] = _cell(work / "cells" / f"{key}.json", made_with, computed, key, _quiet,
                           lambda lcfg=lcfg, key=key: lifter_cell(lcfg, data, work / "runs" / key, cfg.test_subjects,
                                                                  progress, excluded),
                           name=m, method=m, input=inp, labels=ls, seed=s)
        if key in computed:
            log(_line(key, cells[key]))
    # References depend only on the 3D-labelled subjects: label sets that share them (s1, s1_2d) share one result.
    refs = {"mean_pose": lambda sub: mean_pose_cell(data, sub, cfg.test_subjects, excluded),
            "nearest_2d": lambda sub: nearest_2d_cell(data, sub, cfg.test_subjects, cfg.nearest_stride,
                                                      exclude_takes=excluded),
            "linear_2d": lambda sub: linear_2d_cell(data, sub, cfg.test_subjects, exclude_takes=excluded),
            "random_2d": lambda sub: random_2d_cell(data, sub, cfg.test_subjects, cfg.nearest_stride,
                                                    seed=cfg.seeds[0], exclude_takes=excluded)}
    memo: dict = {}
    for ref in cfg.references:
        for ls in cfg.label_sets:
            subs = label_set(cfg, ls)
            subjects_3d = tuple(sorted(subs["labels_3d"] or subs["train_subjects"]))
            key = f"{ref}_{ls}"
            made_with = {"subjects_3d": list(subjects_3d), "data": where, "test": list(cfg.test_subjects),
                         "excluded_takes": excluded,
                         **({"stride": cfg.nearest_stride} if ref in ("nearest_2d", "random_2d") else {})}

            def compute(ref=ref, sub=subjects_3d):
                if (ref, sub) not in memo:
                    memo[(ref, sub)] = refs[ref](list(sub))
                return json.loads(json.dumps(memo[(ref, sub)]))   # a copy: cells never share objects

            # linear_2d's format 2: fitted by probes.ridge_fit (unpenalised bias); its older cells are recomputed
            cells[key] = _cell(work / "cells" / f"{key}.json", made_with, computed, key, _quiet, compute,
                               version=2 if ref == "linear_2d" else 1, name=ref,
                               method=ref, input="any" if ref == "mean_pose" else "gt", labels=ls, seed=cfg.seeds[0])
            memo.setdefault((ref, subjects_3d), {k: cells[key][k] for k in ("train", "eval")})
            if key in computed:
                log(_line(key, cells[key]))
    stamp = work / "data" / "keypoints.json"
    results = {"kind": "lifting", "repeated_test_takes": leaks, "excluded_test_takes": excluded, "config": to_dict(cfg), "cells": cells, "computed": computed,
               "data_dir": str(data), "data_seconds": json.loads(stamp.read_text()).get("seconds")
               if cfg.data.dir is None and stamp.exists() else None, "environment": environment()}
    write_report(results, cfg, work)
    return results


def _quiet(_: str) -> None:
    """The shared cell cache's own log line knows only flat metrics; :func:`_line` says more."""


def _line(key: str, cell: dict) -> str:
    """One log line per cell: its MPJPE with the correction off (and on), and its training seconds."""
    ev = cell["eval"]
    parts = [f"MPJPE {ev[v]['mpjpe']:.1f} mm (correction {v})" if len(ev) > 1 else f"MPJPE {ev[v]['mpjpe']:.1f} mm"
             for v in ev]
    secs = (cell.get("train") or {}).get("train_seconds")
    return f"{key}: " + ", ".join(parts) + (f", trained {secs:.0f} s" if secs is not None else "")
