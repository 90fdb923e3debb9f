"""Run a benchmark: render the data once, pretrain each (method, seed), fit and score a pose head per label share.

Everything lands under one work folder and every finished piece is cached:

    WORK/data/{train,test}/          the datasets (rendered once)
    WORK/runs/<method>_s<seed>/      pretraining runs (an interrupted one resumes; random_s<seed>: initial weights)
    WORK/pose/<cell>/                pose heads and their probes
    WORK/supervised/<cell>/          the supervised reference's networks
    WORK/cells/<cell>.json           one scored cell: metrics + the configs that made it
    WORK/results.{json,md}, cells.csv, error_vs_labels.png   (see :mod:`selfpose.bench.report`)

Every frozen-feature cell fits the MLP head and the ridge and k-NN probes on
the share's labelled frames and chooses their step and settings on held-out
training people (``val_by: subject``, the default; :func:`check_people` makes
sure no test person is among the training people). References: see
:class:`~selfpose.bench.config.BenchmarkConfig`.

A cell is recomputed when its file is missing or was written in an older
format (``version``, e.g. pose cells before probes and held-out-people
selection). A cached cell or run made with a different config is an error (use
a new work folder), never silently mixed into the table. Each cell keeps the
config that made it; keys that exist on one side only (a field added to
selfpose since) do not count as a difference, since new fields default to the
old behaviour — a new default that changes results bumps the cell format instead.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

from selfpose.bench.config import BenchmarkConfig
from selfpose.config import ConfigError, to_dict
from selfpose.errors import SelfposeError
# The one config comparer; keys on one side only are ignored (see the module docstring).
from selfpose.training.config import changed_keys as differences

# Keys that change speed or what is written beside the weights, not the weights: a run may be resumed (or
# reused) with other values. Checkpoints, pictures and logs do not touch the training RNG streams
# (tests/training/test_loop.py: same weights whatever their intervals), so a run pretrained by hand with
# checkpoints every 500 steps is the benchmark's cell of the same recipe.
_SPEED_KEYS = {("train", "threads"), ("train", "num_workers"), ("train", "processes"), ("train", "device"),
               ("train", "checkpoint_every"), ("train", "keep_checkpoints"), ("train", "picture_every"),
               ("train", "log_every")}
#: Formats of cached cells: a cell of an older format is recomputed (its fingerprint may not show what changed).
#: Pose cells 2: probes beside the head, selection on ``val_by`` (held-out people by default), subjects recorded.
POSE_CELL_VERSION = 2
#: Analysis cells 2: the pose heads on v and i select on ``val_by``.
ANALYSIS_CELL_VERSION = 2
#: Frames sampled per dataset for the person classification of every run's codes.
PERSON_FRAMES = 2000


class BenchmarkError(SelfposeError, RuntimeError):
    """A cached result that does not match the config, or a missing prerequisite."""


def _comparable(cfg) -> dict:
    d = to_dict(cfg)
    for section, key in _SPEED_KEYS:
        d.get(section, {}).pop(key, None)
    return d


def pretrain_config(cfg: BenchmarkConfig, method: str, seed: int):
    """The resolved :class:`~selfpose.pretrain.PretrainConfig` of ``method`` at ``seed``.

    ``cfg.pretrain_configs[method]`` (else, for a variant, that of its method; else ``cfg.pretrain_config``)
    ← ``cfg.pretrain`` ← method, steps (``cfg.row_steps[method]``, else ``cfg.steps``), seed and
    checkpoint/picture intervals ← the method's own switches.
    """
    import yaml

    from selfpose.config import _merge, from_dict
    from selfpose.pretrain import PretrainConfig, _resolve, upgrade_config_dict

    data: dict = {}
    steps = cfg.row_steps.get(method, cfg.steps)   # by the row's name, before a variant becomes its method
    # a row's own recipe, else (a variant) its method's, else the common one
    base = cfg.variants[method]["method"] if method in cfg.variants else method
    source = cfg.pretrain_configs.get(method) or cfg.pretrain_configs.get(base) or cfg.pretrain_config
    if source:
        p = Path(source)
        if not p.is_file():
            raise ConfigError(f"pretrain config {p} not found (row {method!r}; relative paths are read from {Path.cwd()})")
        data = yaml.safe_load(p.read_text()) or {}
    data = _merge(data, cfg.pretrain)
    if method in cfg.variants:   # an ablation row: a registered method with its own keys
        variant = dict(cfg.variants[method])
        method = variant.pop("method")
        data = _merge(data, variant)
    every = max(steps // 4, 1)
    data = _merge(data, {"method": method, "train": {"steps": steps, "seed": seed, "checkpoint_every": every,
                                                     "picture_every": every, "device": cfg.device}})
    return _resolve(from_dict(PretrainConfig, upgrade_config_dict(data)))


def pose_stage_config(cfg: BenchmarkConfig, share: float, seed: int):
    """The :class:`~selfpose.pose.stage.PoseStageConfig` of every frozen-feature cell at ``share`` and ``seed``."""
    from selfpose.config import from_dict
    from selfpose.pose.stage import PoseStageConfig

    return from_dict(PoseStageConfig, {"pose": {**cfg.pose, "fraction": share, "steps": cfg.pose_steps, "seed": seed,
                                                "val_by": cfg.val_by, "device": cfg.device},
                                       "probes": dict(cfg.probes)})


def finetune_stage_config(cfg: BenchmarkConfig, protocol: str, seed: int, scratch: bool = False):
    """The :class:`~selfpose.pose.stage.PoseStageConfig` of a fine-tuning cell under label ``protocol``.

    The pose head's keys are the frozen cells' (``pose``, ``pose_steps`` for the
    head's own settings); ``finetune`` holds the budget. ``scratch``: every stage
    trains (the network starts from random weights, nothing is worth freezing).
    """
    from selfpose.config import from_dict
    from selfpose.pose.stage import PoseStageConfig

    p = cfg.protocols[protocol] or {}
    # random weights have nothing to keep: no head warm-up on them, no slower rate for them
    ft = {**cfg.finetune, "enabled": True,
          **({"frozen_stages": 0, "head_warmup_steps": 0, "method_lr_scale": 1.0} if scratch else {})}
    return from_dict(PoseStageConfig, {"pose": {**cfg.pose, "fraction": float(p.get("fraction", 1.0)),
                                                "steps": cfg.pose_steps, "seed": seed,
                                                "val_by": p.get("val_by", cfg.val_by), "device": cfg.device},
                                       "subjects": list(p.get("subjects") or []),
                                       "looks_per_subject": p.get("looks_per_subject"), "finetune": ft})


def pose_fingerprint(pose_cfg) -> dict:
    """What a pose cell records of its :class:`~selfpose.pose.stage.PoseStageConfig`: all but where it ran."""
    d = to_dict(pose_cfg)
    d["pose"].pop("device", None)
    return d


def _supervised_shares(cfg: BenchmarkConfig) -> list[float]:
    """Shares the supervised reference trains at: every share for ``supervised``, 100% for ``supervised_upper``."""
    shares = set(cfg.shares) if "supervised" in cfg.references else set()
    if "supervised_upper" in cfg.references:
        shares.add(1.0)
    return sorted(shares)


def supervised_config(cfg: BenchmarkConfig, share: float, seed: int):
    """See :func:`selfpose.bench.supervised_ref.supervised_config`."""
    from selfpose.bench.supervised_ref import supervised_config as make

    return make(cfg, share, seed)


def check_people(train_dir: Path, test_dir: Path, val_by: str) -> None:
    """The test people are new, and ``val_by: subject`` has training people to hold out.

    Raises:
        BenchmarkError: a subject is in both datasets (the test people would be
            trained on or used to choose a step), or fewer than two training
            subjects with ``val_by == "subject"``.
    """
    from selfpose.data.store import Dataset

    tr, te = Dataset.open(train_dir).subjects(), Dataset.open(test_dir).subjects()
    both = sorted(set(tr) & set(te))
    if both:
        raise BenchmarkError(f"subject(s) {', '.join(both)} are in both the training and the test data; the test "
                             "people must be new to every method and reference: keep them out of data.train")
    if val_by == "subject" and len(tr) < 2:
        raise BenchmarkError(f"val_by: subject holds out whole training people to choose each head's step, but the "
                             f"training data have {len(tr)} ({', '.join(tr)}); render more people or set val_by: take")


def prepare_data(cfg: BenchmarkConfig, work: Path, progress: bool = True) -> tuple[Path, Path]:
    """The train and test dataset folders: the given ones, or rendered into ``WORK/data`` once."""
    from selfpose.data.store import Dataset

    if cfg.data.train_dir is not None:
        dirs = (Path(cfg.data.train_dir), Path(cfg.data.test_dir))
        for d in dirs:
            Dataset.open(d)   # a clear error now rather than after an hour of pretraining
        return dirs
    return prepare_split(cfg, work, "train", progress), prepare_split(cfg, work, "test", progress)


def prepare_split(cfg: BenchmarkConfig, work: Path, name: str, progress: bool = True) -> Path:
    """``WORK/data/<name>`` (``train`` or ``test``) rendered from ``cfg.data.<name>`` unless already there.

    One split at a time, so a machine with many cores can render both at once in two processes (a GPU
    run's script does) before the benchmark finds them finished.
    """
    from selfpose.config import from_dict
    from selfpose.data.synthetic.synthesize import SynthConfig, synthesize

    d = work / "data" / name
    scfg = from_dict(SynthConfig, getattr(cfg.data, name))
    stamp = d / "bench_synth.json"
    want = to_dict(scfg)
    if (d / "index.json").exists():
        got = json.loads(stamp.read_text()).get("synth") if stamp.exists() else None
        if got is not None:
            # Read through today's SynthConfig: a key added since (e.g. light) takes the default the
            # old renders had, so a camera-lit folder never passes for `light: room`.
            try:
                got = to_dict(from_dict(SynthConfig, got))
            except ConfigError:
                pass   # a key since removed: compare as stored
        # threads and workers set how fast the frames are made, not what they hold
        diff = ["(unknown: no bench_synth.json)"] if got is None else \
            [k for k in differences(got, want) if k not in ("threads", "workers")]
        if diff:
            raise BenchmarkError(f"{d} was rendered with other data.{name} settings (differs in "
                                 f"{', '.join(diff[:5])}); use a new --work folder or delete {d}")
    else:
        t0 = time.perf_counter()
        synthesize(scfg, d, overwrite=True, progress=progress)
        stamp.write_text(json.dumps({"synth": want, "seconds": round(time.perf_counter() - t0, 1)}, indent=1,
                                    default=str))
    return d


def _where(d: Path, work: Path) -> str:
    """A dataset's place as cells record it: relative to the work folder when inside it (so it can move)."""
    d, work = Path(d).resolve(), Path(work).resolve()
    return str(d.relative_to(work)) if d.is_relative_to(work) else str(d)


def _ensure_run(pcfg, train_dir: Path, run_dir: Path, random_init: bool, progress: bool) -> bool:
    """Pretrain (or resume, or initialise) ``run_dir``; True when anything was computed."""
    from selfpose.pretrain import init_run, load_config, pretrain

    steps = 0 if random_init else pcfg.train.steps
    if (run_dir / "config.yaml").exists():
        diff = differences(_comparable(load_config(run_dir)), _comparable(pcfg))
        if diff:
            raise BenchmarkError(f"{run_dir} was trained with another config (differs in {', '.join(diff[:5])}); "
                                 "use a new --work folder or delete it")
        state = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").exists() else {}
        if random_init or state.get("step") == steps:
            return False
        pretrain(pcfg, train_dir, run_dir, resume=True, progress=progress)
        return True
    if random_init:
        init_run(pcfg, train_dir, run_dir, overwrite=True)
    else:
        pretrain(pcfg, train_dir, run_dir, overwrite=True, progress=progress)
    return True


def run_benchmark(cfg: BenchmarkConfig, work: str | Path, progress: bool = True,
                  log: Callable[[str], None] = print) -> dict:
    """Run every missing cell of ``cfg`` in ``work`` and write the report (see :func:`_run_benchmark`).

    The work folder is locked while the benchmark runs (a second benchmark on it
    gets an :class:`~selfpose.errors.OutputError` naming this process) and must be
    new, empty or a benchmark work folder (:mod:`selfpose.outputs`).
    """
    from selfpose.outputs import inplace_output
    from selfpose.training.device import resolve_device

    resolve_device(cfg.device, "device")   # a GPU that is not there: one line, before the work folder is made
    with inplace_output(work, "benchmark"):
        return _run_benchmark(cfg, work, progress, log)


def _run_benchmark(cfg: BenchmarkConfig, work: str | Path, progress: bool = True,
                   log: Callable[[str], None] = print) -> dict:
    """Run every missing cell of ``cfg`` in ``work`` and write the report.

    Returns:
        The results dict written to ``WORK/results.json``: ``cells`` (one
        entry per method × seed × share with ``n_mpjpe``, ``mpjpe``,
        ``p_mpjpe`` in mm and ``box_iou``), ``analysis`` per split method,
        ``computed`` (what this call computed: an empty list on a rerun) and
        ``seconds``.
    """
    from selfpose.bench.report import write_report
    from selfpose.pose.evaluate import summary
    from selfpose.pose.stage import analyze_run, evaluate_pose_stage, fit_pose_stage

    from selfpose.training.logs import git_commit

    started_at = git_commit()   # the code that computes; the checkout may move on during a long run
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    refs = set(cfg.references)
    # Every config first: a bad key fails before any rendering or training.
    runs = []   # (row name, seed, resolved pretrain config, random_init)
    for m in cfg.methods:
        runs += [(m, s, pretrain_config(cfg, m, s), False) for s in cfg.seeds_of(m)]
    if refs & {"random", "random_same_crop"}:
        runs += [("random", s, pretrain_config(cfg, "temporal", s), True) for s in cfg.seeds_of("random")]
    if refs & {"scratch", "scratch_frozen"}:   # the fine-tuned row's network at its random initialisation
        runs += [("scratch", s, pretrain_config(cfg, cfg.scratch_of, s), True) for s in cfg.seeds_of("scratch")]
    sup = {(share, s): supervised_config(cfg, share, s) for s in cfg.seeds_of("supervised")
           for share in _supervised_shares(cfg)}
    train_dir, test_dir = prepare_data(cfg, work, progress)
    check_people(train_dir, test_dir, cfg.val_by)

    computed: list[str] = []
    seconds: dict[str, float] = {}
    cells: dict[str, dict] = {}
    caches: dict[str, _Caches] = {}
    (work / "cells").mkdir(exist_ok=True)
    where = {"train": _where(train_dir, work), "test": _where(test_dir, work)}
    for name, seed, pcfg, random_init in runs:
        run_dir = work / "runs" / f"{name}_s{seed}"
        t0 = time.perf_counter()
        if _ensure_run(pcfg, train_dir, run_dir, random_init, progress):
            computed.append(run_dir.name)
            seconds[f"pretrain {run_dir.name}"] = round(time.perf_counter() - t0, 1)
            log(f"pretrained {run_dir.name} in {seconds[f'pretrain {run_dir.name}']:.0f} s")
        run_caches = _Caches(run_dir, train_dir, test_dir, progress, cfg.device)   # each frame encoded once per run
        if "random_same_crop" in refs and name in ("random", cfg.crop_source()):
            # random_same_crop needs only the run and its datasets: a fresh (lazy) _Caches, so this run's full
            # feature caches are freed with the others'
            caches[run_dir.name] = _Caches(run_dir, train_dir, test_dir, progress, cfg.device)
        if (name == "random" and "random" not in refs) or (name == "scratch" and "scratch_frozen" not in refs):
            continue   # the run serves random_same_crop / the fine-tuning cells only
        row = "scratch_frozen" if name == "scratch" else name   # scratch's frozen cells: a reference row
        for share in (cfg.shares if name == "scratch" else cfg.shares_of(name)):
            key = f"{row}_s{seed}_{share:g}"
            pose_cfg = pose_stage_config(cfg, share, seed)
            fp = {"pretrain": _comparable(pcfg), "pose": pose_fingerprint(pose_cfg), "test": where["test"]}
            cells[key] = _cell(work / "cells" / f"{key}.json", fp, computed, key, log, lambda: _score(
                fit_pose_stage(run_dir, train_dir, work / "pose" / key, pose_cfg, overwrite=True, progress=progress,
                               features=run_caches.train(pose_cfg)),
                evaluate_pose_stage(work / "pose" / key, test_dir, progress=progress,
                                    features=run_caches.test(pose_cfg)), summary),
                version=POSE_CELL_VERSION, name=row, seed=seed, share=share)

    transfer: dict[str, dict] = {}
    for name, seed, pcfg, random_init in runs:   # transfer by fine-tuning, every label protocol
        if name not in cfg.finetune_for and not (name == "scratch" and "scratch" in refs):
            continue
        run_dir = work / "runs" / f"{name}_s{seed}"
        for protocol in cfg.protocols:
            key = f"{name}_finetune_{protocol}_s{seed}"
            pose_cfg = finetune_stage_config(cfg, protocol, seed, scratch=name == "scratch")
            fp = {"pretrain": _comparable(pcfg), "pose": pose_fingerprint(pose_cfg), "test": where["test"]}
            transfer[key] = _cell(work / "cells" / f"{key}.json", fp, computed, key, log, lambda: _score(
                fit_pose_stage(run_dir, train_dir, work / "pose" / key, pose_cfg, overwrite=True, progress=progress),
                evaluate_pose_stage(work / "pose" / key, test_dir, progress=progress), summary),
                version=POSE_CELL_VERSION, name=name, seed=seed, protocol=protocol)

    if "supervised_start" in refs:
        transfer.update(_supervised_start_cells(cfg, runs, work, train_dir, test_dir, where, computed, log, progress))

    if "random_same_crop" in refs:
        from selfpose.bench.same_crop import TRUE_BOX

        pcfgs = {(n, sd): p for n, sd, p, _ in runs}
        for seed in cfg.seeds_of("random"):
            crop = cfg.crop_source()
            crop_fp = TRUE_BOX if crop == TRUE_BOX else _comparable(pcfgs[(crop, seed)])
            same = _SameCropCaches(caches[f"random_s{seed}"], None if crop == TRUE_BOX else caches[f"{crop}_s{seed}"])
            for share in cfg.shares:
                key = f"random_same_crop_s{seed}_{share:g}"
                pose_cfg = pose_stage_config(cfg, share, seed)
                fp = {"random": _comparable(pcfgs[("random", seed)]), "crop_of": crop, "crop": crop_fp,
                      "pose": pose_fingerprint(pose_cfg), **where}
                cells[key] = _cell(work / "cells" / f"{key}.json", fp, computed, key, log,
                                   lambda: features_cell(*same.get(pose_cfg), pose_cfg, progress),
                                   version=POSE_CELL_VERSION, name="random_same_crop", seed=seed, share=share)

    if refs & {"supervised", "supervised_upper"}:
        from selfpose.bench.supervised_ref import supervised_cell

        for (share, seed), scfg in sup.items():
            key = f"supervised_s{seed}_{share:g}"
            fp = {"supervised": {k: v for k, v in to_dict(scfg).items() if k not in ("threads", "device")}, **where}
            # Cells from before supervised.crop existed do not record it (and fingerprints compare shared keys
            # only): a true-box cell is format 2, so such a cell is recomputed rather than taken for one.
            cells[key] = _cell(work / "cells" / f"{key}.json", fp, computed, key, log,
                               lambda: supervised_cell(train_dir, test_dir, scfg, work / "supervised" / key, progress),
                               version=2 if scfg.crop == "true_box" else 1, name="supervised", seed=seed, share=share)

    if "mean_pose" in refs:
        for share in cfg.shares:
            key = f"mean_pose_s{cfg.seeds[0]}_{share:g}"
            fp = {"share": share, "seed": cfg.seeds[0], **where}
            cells[key] = _cell(work / "cells" / f"{key}.json", fp, computed, key, log,
                               lambda: mean_pose_cell(train_dir, test_dir, share, cfg.seeds[0]),
                               name="mean_pose", seed=cfg.seeds[0], share=share)

    from selfpose.bench.shortcuts import SHORTCUTS, box_camera_cell

    for ref in (r for r in SHORTCUTS if r in refs):
        for share in cfg.shares:
            key = f"{ref}_s{cfg.seeds[0]}_{share:g}"
            fp = {"share": share, "seed": cfg.seeds[0], **where}
            cells[key] = _cell(work / "cells" / f"{key}.json", fp, computed, key, log,
                               lambda ref=ref, share=share: box_camera_cell(train_dir, test_dir, share, cfg.seeds[0],
                                                                            ref),
                               name=ref, seed=cfg.seeds[0], share=share)

    analysis, persons = {}, {}
    if cfg.analysis:
        for name, seed, pcfg, random_init in runs:
            if seed != cfg.seeds[0] or name == "scratch":
                continue
            run_dir = work / "runs" / f"{name}_s{seed}"
            key = f"persons_{name}_s{seed}"
            fp = {"pretrain": _comparable(pcfg), "max_frames": PERSON_FRAMES, **where}
            persons[name] = _cell(work / "cells" / f"{key}.json", fp, computed, key, log,
                                  lambda run_dir=run_dir: persons_cell(run_dir, train_dir, test_dir, progress),
                                  name=name, seed=seed)
            if random_init or not _has_appearance_code(pcfg) or cfg.analysis == "persons":
                continue
            key = f"analysis_{name}_s{seed}"
            fp = {"pretrain": _comparable(pcfg), "pose_steps": cfg.pose_steps, "val_by": cfg.val_by}

            def ana(run_dir=run_dir, name=name):
                r = analyze_run(run_dir, train_dir, work / "analysis" / name, labels=0.05,
                                pose_steps=cfg.pose_steps, progress=progress, val_by=cfg.val_by)
                return {k: r.get(k) for k in ("kmeans_v", "kmeans_i", "chance", "pose_from_v", "pose_from_i")}

            analysis[name] = _cell(work / "cells" / f"{key}.json", fp, computed, key, log, ana,
                                   version=ANALYSIS_CELL_VERSION, name=name, seed=seed)

    from selfpose.training.logs import environment

    # What each piece cost when it was computed, so a rerun that computes nothing still reports it.
    pre = {f"{n}_s{sd}": pretrain_seconds(work / "runs" / f"{n}_s{sd}") for n, sd, _, rnd in runs if not rnd}
    results = {"config": to_dict(cfg), "same_crop_of": cfg.crop_source(), "cells": cells, "transfer": transfer,
               "analysis": analysis,
               "persons": persons,
               "computed": computed,
               "seconds": seconds, "pretrain_seconds": pre,
               "data_seconds": {d.name: _render_seconds(d) for d in (train_dir, test_dir)},
               "train_dir": str(train_dir), "test_dir": str(test_dir),
               "environment": {**environment(), "git_at_start": started_at}}
    write_report(results, cfg, work)
    return results


def _supervised_start_cells(cfg: BenchmarkConfig, runs: list, work: Path, train_dir: Path, test_dir: Path,
                            where: dict, computed: list, log, progress: bool) -> dict:
    """The ``supervised_start`` reference's transfer cells (:mod:`selfpose.bench.supervised_start`): per scratch
    seed and per protocol that leaves a training person unlabelled, the start's own test score
    (``supervised_start_alone``) and the start fine-tuned as the rows (``supervised_start``)."""
    from selfpose.bench.supervised_start import ALONE, CEILING, start_stage_config, unlabelled_people, write_start_run
    from selfpose.data.store import Dataset
    from selfpose.pose.evaluate import summary
    from selfpose.pose.stage import evaluate_pose_stage, fit_pose_stage

    pcfgs = {(n, sd): p for n, sd, p, _ in runs}
    train_people = Dataset.open(train_dir).subjects()
    out: dict[str, dict] = {}
    for seed in cfg.seeds_of("scratch"):
        scratch_run = work / "runs" / f"scratch_s{seed}"
        trained: dict[str, tuple[str, Path]] = {}   # start fingerprint → (its cell's key, its pose folder)
        for protocol, spec in cfg.protocols.items():
            people = unlabelled_people(train_people, spec)
            if not people:   # a protocol labelling everyone leaves nobody to pretrain on
                continue
            start_cfg = start_stage_config(finetune_stage_config(cfg, protocol, seed, scratch=True), people,
                                           cfg.supervised_start_steps)
            start_key = f"{ALONE}_{protocol}_s{seed}"
            start_dir = work / "pose" / start_key
            start_fp = {"scratch": _comparable(pcfgs[("scratch", seed)]), "pose": pose_fingerprint(start_cfg),
                        "test": where["test"]}
            fp_text = json.dumps(start_fp, sort_keys=True, default=str)
            same = trained.get(fp_text)
            if same is not None:
                # protocols that label the same people (S1, S1's first look) share one start: trained once
                out[start_key] = {**out[same[0]], "protocol": protocol, "seconds": 0.0, "shared_with": same[0]}
                start_key, start_dir = same
            else:
                trained[fp_text] = (start_key, start_dir)
                out[start_key] = _cell(work / "cells" / f"{start_key}.json", start_fp, computed, start_key, log,
                                       lambda: _score(fit_pose_stage(scratch_run, train_dir, start_dir, start_cfg,
                                                                     overwrite=True, progress=progress),
                                                      evaluate_pose_stage(start_dir, test_dir, progress=progress),
                                                      summary),
                                       version=POSE_CELL_VERSION, name=ALONE, seed=seed, protocol=protocol)
            key = f"{CEILING}_finetune_{protocol}_s{seed}"
            pose_cfg = finetune_stage_config(cfg, protocol, seed)

            def ceiling(start_key=start_key, start_dir=start_dir, key=key, pose_cfg=pose_cfg,
                        protocol=protocol, seed=seed, scratch_run=scratch_run) -> dict:
                if not (start_dir / "pose.json").is_file():
                    raise BenchmarkError(f"{start_dir} (the start {key} fine-tunes) is missing; delete "
                                         f"{work / 'cells' / (start_key + '.json')} so that it is trained again")
                run = write_start_run(start_dir, scratch_run, work / "runs" / f"{CEILING}_{protocol}_s{seed}",
                                      cfg.supervised_start_steps)
                return _score(fit_pose_stage(run, train_dir, work / "pose" / key, pose_cfg, overwrite=True,
                                             progress=progress),
                              evaluate_pose_stage(work / "pose" / key, test_dir, progress=progress), summary)

            out[key] = _cell(work / "cells" / f"{key}.json", {"start": start_fp, "pose": pose_fingerprint(pose_cfg),
                                                             "test": where["test"]}, computed, key, log, ceiling,
                             version=POSE_CELL_VERSION, name=CEILING, seed=seed, protocol=protocol)
    return out


def _render_seconds(d: Path) -> float | None:
    """Seconds the benchmark spent rendering dataset ``d`` (None when it was given, not rendered)."""
    stamp = Path(d) / "bench_synth.json"
    return json.loads(stamp.read_text()).get("seconds") if stamp.exists() else None


def pretrain_seconds(run_dir: Path) -> float | None:
    """Wall seconds a pretraining run spent training, summed over resumes (the last ``time`` of its metrics.csv)."""
    from selfpose.training.logs import read_metrics

    rows = read_metrics(run_dir)
    return rows[-1].get("time") if rows else None


def _cell(path: Path, made_with: dict, computed: list, key: str, log, compute, version: int = 1, **ids) -> dict:
    """The cached cell at ``path``, or ``compute()`` stored there (atomically) with its ids and what made it.

    A cached cell of an older ``version`` (format) than asked is recomputed:
    what changed may not show in its fingerprint (a new default of a key it
    records, a metric it lacks). One made with another config is an error.
    """
    if path.exists():
        cell = json.loads(path.read_text())
        if int(cell.get("version", 1)) < version:
            log(f"{key}: recomputing (cached in format {cell.get('version', 1)}, this selfpose writes {version})")
        else:
            # shared keys only: a key the cached cell lacks is judged by _set_since below, after this guard
            diff = differences(cell.get("made_with", {}), made_with) if "made_with" in cell else ["made_with"]
            if diff:
                raise BenchmarkError(f"{path} was computed with another config (differs in {', '.join(diff[:5])}); "
                                     "use a new --work folder or delete it")
            late = _set_since(cell["made_with"], made_with)
            if not late:
                return {k: v for k, v in cell.items() if k != "made_with"}
            log(f"{key}: recomputing (cached before {late[0]} existed; it is set now)")
    t0 = time.perf_counter()
    cell = {**ids, **compute(), "seconds": round(time.perf_counter() - t0, 1)}
    if version > 1:
        cell["version"] = version
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({**cell, "made_with": made_with}, indent=1, default=str))
    tmp.replace(path)
    computed.append(key)
    shown = {"n_mpjpe": ".1f", "mpjpe": ".1f", "p_mpjpe": ".1f", "kmeans_v": ".2f", "kmeans_i": ".2f"}
    parts = [f"{k} {v:{shown[k]}}" for k, v in cell.items() if k in shown and isinstance(v, float)]
    parts += [f"{k}: v {v['v']:.2f}" for k, v in cell.items() if isinstance(v, dict) and isinstance(v.get("v"), float)]
    log(f"{key}: " + ", ".join(parts))
    return cell


# Keys added after cells were cached whose setting changes the result. Fingerprints compare shared keys only
# (a new key at its default behaves as before), so a cell made before such a key existed would be reused for a
# config that sets it; it is recomputed instead.
_RECOMPUTE_WHEN_SET = ("pose.pose.val_max_frames", "supervised.val_max_frames", "pose.looks_per_subject")


def _set_since(old: dict, new: dict) -> list[str]:
    """Dotted keys of :data:`_RECOMPUTE_WHEN_SET` that ``old`` lacks and ``new`` sets (not None)."""
    return [k for k in _RECOMPUTE_WHEN_SET if _lookup(old, k) is _MISSING and _lookup(new, k) not in (None, _MISSING)]


_MISSING = object()


def _lookup(d, dotted: str):
    """The value at a dotted key of nested dicts, or ``_MISSING``."""
    for part in dotted.split("."):
        if not isinstance(d, dict) or part not in d:
            return _MISSING
        d = d[part]
    return d


class _Caches:
    """Feature caches of one run on the train and test data, made on first use (cached cells need none)."""

    def __init__(self, run_dir: Path, train_dir: Path, test_dir: Path, progress: bool, device: str = "cpu"):
        self.run_dir, self.dirs, self.progress = run_dir, {"train": train_dir, "test": test_dir}, progress
        self.device = device
        self._made: dict = {}

    def run(self):
        """The loaded run (its latest weights), loaded once, on the benchmark's device."""
        if "run" not in self._made:
            from selfpose.pretrain import load_run
            from selfpose.training.device import resolve_device

            run = load_run(self.run_dir)
            run.method.to(resolve_device(self.device, "device"))
            self._made["run"] = run
        return self._made["run"]

    def dataset(self, which: str):
        from selfpose.data.store import Dataset

        return Dataset.open(self.dirs[which])

    def _get(self, which: str, pose_cfg):
        if which not in self._made:
            from selfpose.pose.features import FeatureCache
            from selfpose.pose.stage import pose_feature_fn, reads_boxes

            run = self.run()
            self._made[which] = FeatureCache(pose_feature_fn(run.method), self.dataset(which), source=run,
                                             batch_size=pose_cfg.batch_size, autocast=pose_cfg.autocast,
                                             progress=self.progress, device=next(run.method.parameters()).device,
                                             pass_boxes=reads_boxes(run.method))
        return self._made[which]

    def train(self, pose_cfg):
        return self._get("train", pose_cfg)

    def test(self, pose_cfg):
        return self._get("test", pose_cfg)


class _SameCropCaches:
    """Feature caches of the random run's encoder on the crop of another run (None: the true box), made on first use."""

    def __init__(self, random: _Caches, crop: _Caches | None):
        self.random, self.crop, self._made = random, crop, None

    def get(self, pose_cfg) -> tuple:
        """``(train, test)`` :class:`~selfpose.pose.features.FeatureCache`."""
        if self._made is None:
            from selfpose.bench.same_crop import same_crop_caches

            self._made = same_crop_caches(self.random.run(), None if self.crop is None else self.crop.run(),
                                          self.random.dataset("train"), self.random.dataset("test"),
                                          pose_cfg.batch_size, pose_cfg.autocast, self.random.progress)
        return self._made


def features_cell(train, test, pose_cfg, progress: bool) -> dict:
    """A pose cell on feature caches (no pose folder): the head and probes of ``pose_cfg`` fitted on
    ``train``'s labelled frames, scored on every frame of ``test`` — what :func:`fit_pose_stage` and
    :func:`evaluate_pose_stage` compute, for features no single run gives (e.g. ``random_same_crop``)."""
    from selfpose.pose.evaluate import summary
    from selfpose.pose.labels import label_subset
    from selfpose.pose.stage import fit_heads, score_heads, split_labels, subjects_of

    labelled, tr, va = split_labels(train.ds, pose_cfg.pose)
    train_fs = train.get(tr)
    val_fs = train.get(va) if len(va) else None
    head, probes = fit_heads(train_fs, val_fs, pose_cfg, progress)
    ev = score_heads(head, probes, test.get(label_subset(test.ds, 1.0, finite_only=False)))
    fit = {"num_labelled": int(len(labelled)), "val_n_mpjpe": head.best_val_n_mpjpe,
           "train_subjects": subjects_of(train_fs), "val_subjects": subjects_of(val_fs)}
    return _score(fit, ev, summary)


def persons_cell(run_dir: Path, train_dir: Path, test_dir: Path, progress: bool) -> dict:
    """How well a linear classifier reads the person from the run's ``v`` and ``i``
    (:func:`selfpose.pose.analyze.person_classification`) on the training people and on the test people."""
    from selfpose.data.store import Dataset
    from selfpose.pose.analyze import person_classification
    from selfpose.pretrain import load_run

    method = load_run(run_dir).method
    return {f"{which}_people": person_classification(method, Dataset.open(d), PERSON_FRAMES, progress=progress)
            for which, d in (("training", train_dir), ("test", test_dir))}


def _has_appearance_code(pcfg) -> bool:
    """Whether the method of ``pcfg`` has an appearance code ``i`` to analyse (asked of the method itself)."""
    import torch

    from selfpose.methods.registry import build

    with torch.random.fork_rng():   # building initialises weights; keep the caller's random stream
        return "i" in build(pcfg.method, pcfg).code_names()


def _score(fit: dict, ev: dict, summary) -> dict:
    import math

    out = {**summary(ev), "labelled": fit["num_labelled"], "val_n_mpjpe": fit.get("val_n_mpjpe"),
           # who trained the heads, who chose their step and settings (never a test person: check_people)
           "train_subjects": fit.get("train_subjects"), "val_subjects": fit.get("val_subjects")}
    if not (isinstance(out.get("box_iou"), float) and math.isfinite(out["box_iou"])):
        out["box_iou"] = None   # a method without a detector gives no boxes to score (as the mean-pose row)
    for probe, p in (ev.get("probes") or {}).items():   # the probes beside the head: "ridge_n_mpjpe", ...
        out.update({f"{probe}_{m}": p[m] for m in ("n_mpjpe", "mpjpe", "p_mpjpe")}, **{f"{probe}_chosen": p["chosen"]})
    return out


def mean_pose_cell(train_dir: Path, test_dir: Path, share: float, seed: int) -> dict:
    """Reference: the mean pelvis-centred pose of the labelled training frames predicted for every test frame."""
    import numpy as np

    from selfpose.data.store import Dataset
    from selfpose.evaluation.metrics import mpjpe, n_mpjpe, p_mpjpe
    from selfpose.pose.features import read_arrays
    from selfpose.pose.labels import label_subset

    train, test = Dataset.open(train_dir), Dataset.open(test_dir)
    y = read_arrays(train, label_subset(train, share, seed=seed), ("joints3d",))["joints3d"].astype(np.float64)
    t = read_arrays(test, label_subset(test, 1.0), ("joints3d",))["joints3d"].astype(np.float64)
    y, t = y - y[:, :1], t - t[:, :1]
    pred = np.broadcast_to(y.mean(0), t.shape).copy()   # writable: the metrics hand it to torch
    return {"n_mpjpe": float(n_mpjpe(pred, t)), "mpjpe": float(mpjpe(pred, t)), "p_mpjpe": float(p_mpjpe(pred, t)),
            "frames": int(len(t)), "box_iou": None, "labelled": int(len(y))}
