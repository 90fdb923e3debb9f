"""Does a sync model that *has* learned its pretext transfer? Fine-tune pretext runs as the sync benchmark does.

The sync ablation benchmark's earlier recipe (``configs/benchmark_sync_cpu.yaml`` at 4ca633f) pretrained
every row for 2,000 steps, inside the ~5,000–10,000-step plateau before the
synchronisation task is learned (``benchmarks/results/sync_pretext/probes.md``),
so its transfer cells read networks that learned nothing of it. This takes
pretraining runs made elsewhere (e.g. the 20,000-step runs of
``benchmarks/sync_pretext.py``, pretrained on room-lit renders of the same
training motion subjects S1, S5, S6, S7) and fine-tunes each under the
benchmark's label protocols, with exactly the benchmark's fine-tuning settings
and data (``finetune_stage_config``, the benchmark work folder's rendered
train/test data), beside the benchmark's own ``scratch`` cells (the same
network from random weights, every stage trained, same budget).

    python benchmarks/sync_transfer_probe.py --bench-work out/bench_sync_room \
        --run global_20k=out/sync_long/run_synthetic_room --run rows2_20k=out/sync_rows2/run_synthetic_room \
        --out out/sync_transfer     # then copy results.md / results.json where they are published

``--steps N`` fine-tunes N steps instead of the config's (rows named NAME_stepsN): the CPU benchmark's 1,000
steps of 32 frames are under one pass over S1's frames, so ``scratch`` is far from converged there.
``--run NAME=RUN@STEP`` reads the run at its checkpoint of that step instead of its newest (a view of the run:
``OUT/views/NAME``, its config and that checkpoint's files hard-linked), so one run's checkpoints give transfer
against pretraining steps. ``--pretext-pairs N`` also scores each run's pretext heads on N pairs of the benchmark's
test data (held-out people; ``sync_eval.pretext_scores``, the run's own sampler settings), beside its transfer.
``--read KEY=VALUE`` reads every run and the scratch network with config overrides that change no weight (e.g.
``method_config.sync.pose_rows=2``: pose features pooled in the bands the heads read), through views.
``--seed N`` seeds the pose cells (the fresh head, batch order, the labelled subset, the held-out validation
takes) with N instead of 0: the spread over it says how much of a difference between two starts is the
fine-tuning's own noise.
``--finetune KEY=VALUE`` overrides the pretrained rows' fine-tuning settings (``finetune.*`` keys, e.g.
``head_warmup_steps=250`` or ``method_lr_scale=0.1``; rows named NAME_KEYVALUE).
``--supervised-start S5 S6 S7`` adds the ceiling row ``supervised``: the scratch network first trained on the 3D
labels of those (never the test) people's frames for ``--supervised-steps`` steps (every stage, one of them held out
to keep the best step: the fine-tuning stage itself, ``pose.val_by: subject``), written as a run at
``OUT/supervised_run`` and then fine-tuned like any row. What pretraining with *perfect* pose knowledge of other
people buys in a protocol: the most a self-supervised start could. Its own test score before fine-tuning is
the cell ``supervised_start``.
``--scratch`` adds the benchmark's ``scratch`` row beside them: the network of the config's ``scratch_of`` row
at its random initialisation, seed 0 (``pretrain.init_run`` of the benchmark's own ``pretrain_config``: the
weights of the benchmark's ``scratch`` run), every stage fine-tuned, the same steps.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def checkpoint_view(run: Path, step: int | None, dest: Path, read: tuple[str, ...] = ()) -> Path:
    """A run folder at ``dest`` whose only checkpoint is ``run``'s of ``step`` (its newest valid one when None;
    files hard-linked, copied where linking fails): the pose stage reads a run's newest checkpoint, so this makes
    it read that one. ``read``: KEY=VALUE overrides of the view's config that change how the weights are read,
    never which weights there are (e.g. ``method_config.sync.pose_rows=2``; the weights must still load strictly).
    An existing view of the same checkpoint and config is reused; one of another is refused, never replaced."""
    import os
    import shutil

    from selfpose.config import _merge, from_dict, parse_overrides, to_dict
    from selfpose.pretrain import PretrainConfig, load_config, load_run
    from selfpose.training.checkpoint import checkpoint_name, latest_checkpoint, validate_checkpoint
    from selfpose.training.config import save_config

    if step is None:
        ck = latest_checkpoint(run, weights_only=True)
        if ck is None:
            raise SystemExit(f"{run} has no checkpoint")
        step = ck.step
    src = run / "checkpoints" / checkpoint_name(step)
    if not src.is_dir():
        have = sorted(p.name for p in (run / "checkpoints").glob("ckpt-*"))
        raise SystemExit(f"{run} has no checkpoint of step {step} (it has {', '.join(have) or 'none'}); "
                         "pick one of those steps")
    validate_checkpoint(src, weights_only=True)
    cfg = load_config(run)
    if read:
        cfg = from_dict(PretrainConfig, _merge(to_dict(cfg), parse_overrides(list(read))))
    ck = dest / "checkpoints" / src.name
    if dest.exists():
        same = (ck / "state.json").is_file() and (ck / "state.json").read_bytes() == (src / "state.json").read_bytes()
        if not same or to_dict(load_config(dest)) != to_dict(cfg):
            raise SystemExit(f"{dest} is a view of another checkpoint or config; use another --out or name")
        return dest
    tmp = dest.with_name(dest.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)   # our own half-made view of an interrupted call
    (tmp / "checkpoints" / src.name).mkdir(parents=True)
    shutil.copy2(run / ".selfpose-output.json", tmp / ".selfpose-output.json")
    if read:
        save_config(cfg, tmp / "config.yaml")
    else:
        shutil.copy2(run / "config.yaml", tmp / "config.yaml")
    for f in src.iterdir():
        try:
            os.link(f, tmp / "checkpoints" / src.name / f.name)
        except OSError:
            shutil.copy2(f, tmp / "checkpoints" / src.name / f.name)
    try:
        load_run(tmp)   # the weights still load, strictly, under the view's config
    except Exception as e:   # noqa: BLE001 — a size mismatch is a RuntimeError, a missing key a CheckpointError
        shutil.rmtree(tmp)
        raise SystemExit(f"--read {' '.join(read)} changes {run}'s weights, not only how they are read "
                         f"({str(e).splitlines()[0]}); leave it out") from None
    tmp.rename(dest)
    return dest


def plot_transfer_vs_pretext(cells: dict, protocols: list[str], out_png: Path, seed: int = 0,
                             bench_scratch: bool = True) -> None:
    """Fine-tuned MPJPE (mm, test person) of every run with a pretext score against its held-out sync accuracy on
    unflipped pairs, one panel per protocol; the scratch cell of the protocol and 10% below it as lines.
    ``seed``: the pose seed of the fine-tuned cells (rows named ``NAME_seedN`` unless 0; the pretext cells, which
    no pose seed changes, are ``NAME_pretext`` whatever it is). ``bench_scratch``: fall back on the benchmark's
    scratch cell when the probe has no scratch row (False with ``--read``: that cell is of another reading)."""
    tag = f"_seed{seed}" if seed else ""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(protocols), figsize=(5.5 * len(protocols), 4.2), squeeze=False)
    for ax, protocol in zip(axes[0], protocols):
        labels = []
        for key, c in sorted(cells.items()):
            if not key.endswith("_pretext") or not c.get("sync_unflipped"):
                continue
            name = key[:-len("_pretext")]
            ft = cells.get(f"{name}{tag}_finetune_{protocol}")   # (rows of --steps/--frozen-stages are not drawn)
            if ft is None:
                continue
            acc, (lo, hi) = 100 * c["sync_unflipped"]["accuracy"], c["sync_unflipped"]["ci95"]
            ax.errorbar(acc, ft["mpjpe"], xerr=[[acc - 100 * lo], [100 * hi - acc]], fmt="o", capsize=3)
            labels.append(ax.annotate(f"{name} (step {c['step']})", (acc, ft["mpjpe"]), textcoords="offset points",
                                      xytext=(5, 5), fontsize=8))
        scratch = cells.get(f"scratch{tag}_finetune_{protocol}") or (
            cells.get(f"bench_scratch_finetune_{protocol}") if bench_scratch else None)
        if scratch is not None:
            ax.axhline(scratch["mpjpe"], color="k", ls="--", lw=1, label=f"scratch {scratch['mpjpe']:.1f}")
            ax.axhline(0.9 * scratch["mpjpe"], color="g", ls=":", lw=1, label="10% below scratch (the target)")
            ax.legend(fontsize=8, loc="lower left")
        ax.axvline(50, color="grey", lw=0.8)
        # a label right of a point in the axes' right half would run past the frame: put it on the left there
        lo_x, hi_x = ax.get_xlim()
        for t in labels:
            if t.xy[0] > (lo_x + hi_x) / 2:
                t.set_horizontalalignment("right")
                t.set_position((-5, 5))
        ax.set_xlabel("held-out sync accuracy, unflipped pairs (%; chance 50)")
        ax.set_ylabel(f"fine-tuned MPJPE, {protocol} protocol (mm)")
        ax.set_title(f"transfer against the pretext ({protocol})")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)


def supervised_start(cfg, scratch_run: Path, train: Path, test: Path, a, cell) -> Path:
    """The ceiling start: ``scratch_run``'s network trained on the 3D labels of ``a.supervised_start``'s frames
    (the benchmark's ``supervised_start`` reference, :mod:`selfpose.bench.supervised_start`), as a run folder.
    Its test score is the cell ``supervised_start``."""
    from selfpose.bench.run import finetune_stage_config
    from selfpose.bench.supervised_start import start_stage_config, write_start_run
    from selfpose.data.store import Dataset

    test_people = {s.meta.subject for s in Dataset.open(test).sequences}
    people = set(a.supervised_start)
    if test_people & people:
        raise SystemExit(f"--supervised-start {' '.join(a.supervised_start)} includes test people "
                         f"({', '.join(sorted(test_people & people))}); name training people only")
    missing = people - set(Dataset.open(train).subjects())
    if missing:
        raise SystemExit(f"--supervised-start: no training frames of {', '.join(sorted(missing))}; the training "
                         f"people are {', '.join(Dataset.open(train).subjects())}")
    for name in a.protocols if a.protocols is not None else cfg.protocols:
        labelled = people & set((cfg.protocols.get(name) or {}).get("subjects") or [])
        if labelled:   # the ceiling is other people's labels: never the protocol's own
            raise SystemExit(f"--supervised-start includes {', '.join(sorted(labelled))}, whom protocol {name} "
                             "labels; name people it leaves unlabelled")
    pose_cfg = start_stage_config(finetune_stage_config(cfg, next(iter(cfg.protocols)), seed=a.seed, scratch=True),
                                  list(a.supervised_start), a.supervised_steps)
    cell("supervised_start", scratch_run, pose_cfg, subjects=list(a.supervised_start))
    try:
        return write_start_run(a.out / "pose" / "supervised_start", scratch_run, a.out / "supervised_run",
                               a.supervised_steps)
    except FileExistsError as e:
        raise SystemExit(f"{e}; use another --out") from None


def benchmark_cells(bench_work: Path, protocols: list[str], shares: list[float], seed: int) -> dict:
    """The sync benchmark's own cells of pose seed ``seed`` that the probe's rows are read beside:
    ``bench_{ref}_frozen_features_{share}`` and ``bench_{ref}_finetune_{protocol}`` (MPJPE, N-MPJPE, P-MPJPE).
    The seed must match the probe's ``--seed``: it draws the labelled subset, the held-out person or takes and
    the head, which move a row by several mm (before 2026-12-05 seed 0's cells were shown whatever the seed)."""
    out = {}
    keep = ("mpjpe", "n_mpjpe", "p_mpjpe")
    for share in shares:
        for ref in ("sync", "random_same_crop", "box_camera_ridge", "supervised", "mean_pose"):
            p = Path(bench_work) / "cells" / f"{ref}_s{seed}_{share:g}.json"
            if p.is_file():
                c = json.loads(p.read_text())
                out[f"bench_{ref}_frozen_features_{share:g}"] = {k: c[k] for k in keep}
    for protocol in protocols:
        for ref in ("scratch", "sync"):
            p = Path(bench_work) / "cells" / f"{ref}_finetune_{protocol}_s{seed}.json"
            if p.is_file():
                c = json.loads(p.read_text())
                out[f"bench_{ref}_finetune_{protocol}"] = {k: c[k] for k in keep}
    return out


def plot_rows(cells: dict, protocols: list[str], out_png: Path, bench_scratch: bool = True) -> None:
    """A horizontal bar per fine-tuned row (MPJPE, mm, test person), one panel per protocol, best at the top;
    where exactly one scratch row is drawn (else the benchmark's own scratch cell, unless ``bench_scratch`` is
    False: with ``--read`` that cell is of another reading), it and 10% below it (the issue's target) as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(protocols), figsize=(7.5 * len(protocols), 4.8), squeeze=False)
    for ax, protocol in zip(axes[0], protocols):
        suffix = f"_finetune_{protocol}"
        rows = sorted(((k[:-len(suffix)], c["mpjpe"]) for k, c in cells.items()
                       if k.endswith(suffix) and not k.startswith("bench_")), key=lambda r: -r[1])
        if not rows:
            continue
        names, vals = zip(*rows)
        colour = ["tab:green" if n.startswith("supervised") else "grey" if n.startswith("scratch") else "tab:blue"
                  for n in names]
        ax.barh(range(len(rows)), vals, color=colour)
        for i, v in enumerate(vals):
            ax.text(v - 0.5, i, f"{v:.1f}", va="center", ha="right", color="white", fontsize=8)
        ax.set_yticks(range(len(rows)), names, fontsize=8)
        scratch = [v for n, v in rows if n.startswith("scratch")]
        bench = cells.get(f"bench_scratch{suffix}")
        if not scratch and bench is not None and bench_scratch:   # none of the probe's own: the benchmark's, same seed
            scratch = [bench["mpjpe"]]
        if len(scratch) == 1:
            ax.axvline(scratch[0], color="k", ls="--", lw=1, label=f"scratch {scratch[0]:.1f}")
            ax.axvline(0.9 * scratch[0], color="g", ls=":", lw=1.2, label=f"10% below scratch {0.9 * scratch[0]:.1f}")
            ax.legend(fontsize=8, loc="upper right")
        lo = min(min(vals), 0.9 * min(scratch or vals))
        ax.set_xlim(lo - 15, max([*vals, *scratch]) + 12)   # the scratch line stays in view
        ax.set_xlabel(f"fine-tuned MPJPE, {protocol} protocol (mm, test person; lower is better)")
        ax.set_title("green: start trained on other people's 3D labels (ceiling)\nblue: self-supervised starts; "
                     "grey: scratch", fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    import yaml

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench-work", type=Path, required=True, help="the sync benchmark's work folder (its data, "
                    "scratch cells)")
    ap.add_argument("--config", type=Path, default=ROOT / "configs/benchmark_sync_cpu.yaml")
    ap.add_argument("--run", action="append", default=[],
                    help="NAME=RUN_DIR of a method=sync pretraining run, or NAME=RUN_DIR@STEP: its checkpoint of STEP")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--protocols", nargs="*", default=None,
                    help="fine-tuning protocols (default: every protocol of the config; none given: no fine-tuning)")
    ap.add_argument("--shares", type=float, nargs="*", default=[],
                    help="also the frozen-feature cells (the house protocol: the MLP pose head on the pooled "
                         "features) at these label shares, beside the benchmark's own")
    ap.add_argument("--frozen-stages", type=int, default=None,
                    help="override the benchmark's frozen stages (0: fine-tune every stage, as scratch does); the "
                         "row is named NAME_frozenK")
    ap.add_argument("--steps", type=int, default=None,
                    help="fine-tuning steps instead of the config's finetune.steps (rows named NAME_stepsN)")
    ap.add_argument("--scratch", action="store_true",
                    help="also the scratch_of row's network at its random initialisation (seed 0, as the "
                         "benchmark's seed-0 scratch run, whatever --seed: with --seed N the benchmark's own "
                         "bench_scratch row starts from seed N's weights and differs from it), every stage fine-tuned")
    ap.add_argument("--read", nargs="*", default=[], metavar="KEY=VALUE",
                    help="read every run (and the scratch network) with these config overrides that change no "
                         "weight, e.g. method_config.sync.pose_rows=2 (through views in OUT/views)")
    ap.add_argument("--seed", type=int, default=0,
                    help="seed of the pose cells (the fresh head, batch order, labelled subset, validation takes; "
                         "the networks' weights, scratch's included, stay as they are); rows named NAME_seedN "
                         "unless 0")
    ap.add_argument("--finetune", nargs="*", default=[], metavar="KEY=VALUE",
                    help="fine-tuning overrides of every row but scratch (finetune.* keys without the prefix, e.g. "
                         "head_warmup_steps=250 method_lr_scale=0.1); rows named NAME_KEYVALUE")
    ap.add_argument("--supervised-start", nargs="*", default=[], metavar="SUBJECT",
                    help="add the ceiling row: the scratch network first trained on these people's 3D labels")
    ap.add_argument("--supervised-steps", type=int, default=3000,
                    help="steps of the --supervised-start training (default 3000)")
    ap.add_argument("--pretext-pairs", type=int, default=0,
                    help="also score each run's pretext heads on this many held-out pairs (0: no)")
    a = ap.parse_args(argv)
    if not (a.run or a.scratch or a.supervised_start):
        ap.error("give at least one --run, --scratch or --supervised-start")
    ft_over = {}
    for item in a.finetune:
        key, eq, value = item.partition("=")
        if not eq:
            ap.error(f"--finetune {item}: expected KEY=VALUE, e.g. head_warmup_steps=250")
        ft_over[key.removeprefix("finetune.")] = yaml.safe_load(value)

    from selfpose.bench.config import BenchmarkConfig
    from selfpose.bench.run import _score, finetune_stage_config, pose_fingerprint, pose_stage_config
    from selfpose.config import from_dict, to_dict
    from selfpose.pose.finetune import FinetuneConfig
    from selfpose.training.logs import git_commit
    from selfpose.pose.evaluate import summary
    from selfpose.pose.stage import evaluate_pose_stage, fit_pose_stage

    cfg = from_dict(BenchmarkConfig, yaml.safe_load(a.config.read_text()))
    train, test = a.bench_work / "data" / "train", a.bench_work / "data" / "test"
    for d in (train, test):
        if not (d / "index.json").is_file():
            raise SystemExit(f"no rendered data at {d}: run `selfpose benchmark --config {a.config} --work "
                             f"{a.bench_work}` first (its data step)")
    protocols = list(cfg.protocols) if a.protocols is None else a.protocols
    out_path = a.out / "results.json"
    res = json.loads(out_path.read_text()) if out_path.is_file() else {"cells": {}}
    def cell(key: str, run: Path, pose_cfg, **ids) -> None:
        """Fit and score one pose stage into ``res`` unless a cell made by this run with these settings is there."""
        made_with = {"run": str(run.resolve()), "bench_work": str(a.bench_work.resolve()),
                     "pose": pose_fingerprint(pose_cfg)}
        if (run / "made_from.json").is_file():   # a supervised start: which weights, not only where they lie
            made_with["start"] = json.loads((run / "made_from.json").read_text())
        if res["cells"].get(key, {}).get("made_with") == json.loads(json.dumps(made_with, default=str)):
            return
        t0 = time.time()
        pose_dir = a.out / "pose" / key
        got = _score(fit_pose_stage(run, train, pose_dir, pose_cfg, overwrite=True, progress=True),
                     evaluate_pose_stage(pose_dir, test, progress=True), summary)
        res["cells"][key] = {"run": str(run), **ids, **got, "seconds": round(time.time() - t0, 1),
                             "commit": git_commit(), "made_with": made_with}
        a.out.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(res, indent=1, default=str))
        print(key, {k: round(got[k], 1) for k in ("mpjpe", "n_mpjpe", "p_mpjpe")})

    specs = []
    for spec in a.run:
        name, _, run = spec.partition("=")
        run, at, step = run.partition("@")
        if not name or not run:
            raise SystemExit(f"--run {spec}: expected NAME=RUN_DIR or NAME=RUN_DIR@STEP")
        if not (Path(run) / "config.yaml").is_file():
            raise SystemExit(f"{run} is not a pretraining run (no config.yaml)")
        if at and not step.isdigit():
            raise SystemExit(f"--run {spec}: STEP must be a whole number of steps, got {step!r}")
        if at or a.read:
            run = str(checkpoint_view(Path(run), int(step) if at else None, a.out / "views" / name, tuple(a.read)))
        specs.append((name, run, False))
    if a.scratch:   # the benchmark's scratch row: random weights, every stage trained
        from selfpose.bench.run import _comparable, differences, pretrain_config
        from selfpose.pretrain import init_run, load_config

        if cfg.scratch_of is None:
            raise SystemExit(f"--scratch needs scratch_of in {a.config}: the row whose network starts from scratch")
        pcfg = pretrain_config(cfg, cfg.scratch_of, 0)
        if a.read:
            from selfpose.config import _merge, from_dict as _from_dict, parse_overrides
            from selfpose.pretrain import PretrainConfig

            pcfg = _from_dict(PretrainConfig, _merge(to_dict(pcfg), parse_overrides(a.read)))
        scratch_run = a.out / "scratch_run"
        if (scratch_run / "config.yaml").is_file():
            diff = differences(_comparable(load_config(scratch_run)), _comparable(pcfg))
            if diff:
                raise SystemExit(f"{scratch_run} holds another network (differs in {', '.join(diff[:5])}); "
                                 "use another --out")
        else:
            init_run(pcfg, train, scratch_run)
        specs.append(("scratch", str(scratch_run), True))
    if a.supervised_start:
        if not a.scratch:
            raise SystemExit("--supervised-start trains the scratch network: add --scratch")
        sup_run = supervised_start(cfg, scratch_run, train, test, a, cell)
        specs.append(("supervised", str(sup_run), False))
    if a.pretext_pairs:
        from selfpose.data.store import Dataset
        from selfpose.methods.sync_eval import pretext_scores, run_sampler_kwargs
        from selfpose.pretrain import load_config, load_run

        test_ds = Dataset.open(test)
        for name, run, is_scratch in specs:
            key = f"{name}_pretext"
            run = Path(run)
            made_with = {"run": str(run.resolve()), "pairs": a.pretext_pairs}
            if is_scratch or res["cells"].get(key, {}).get("made_with") == made_with:
                continue
            loaded = load_run(run)
            sc = pretext_scores(loaded.method, test_ds, num_pairs=a.pretext_pairs, seed=0,
                                sampler_kwargs=run_sampler_kwargs(load_config(run).sampler))
            res["cells"][key] = {**{k: sc.get(k) for k in ("sync", "sync_unflipped", "flip")}, "step": loaded.step,
                                 "made_with": made_with}
            print(key, {k: v and round(100 * v["accuracy"], 1) for k, v in res["cells"][key].items()
                        if k in ("sync", "sync_unflipped", "flip")})
    for name, run, is_scratch in specs:
        run = Path(run)
        if a.frozen_stages is not None and not is_scratch:
            name = f"{name}_frozen{a.frozen_stages}"
        if a.steps is not None:
            name = f"{name}_steps{a.steps}"
        if ft_over and not is_scratch:
            name += "".join(f"_{k}{v}" for k, v in ft_over.items())
        if a.seed:
            name = f"{name}_seed{a.seed}"
        for protocol in protocols:
            pose_cfg = finetune_stage_config(cfg, protocol, seed=a.seed, scratch=is_scratch)
            over = {"frozen_stages": a.frozen_stages} if a.frozen_stages is not None and not is_scratch else {}
            if a.steps is not None:
                over["steps"] = a.steps
            if ft_over and not is_scratch:
                over.update(ft_over)
            if over:   # through from_dict, so the values are checked like config keys
                pose_cfg.finetune = from_dict(FinetuneConfig, {**to_dict(pose_cfg.finetune), **over})
            cell(f"{name}_finetune_{protocol}", run, pose_cfg, protocol=protocol)
        for share in a.shares if not is_scratch else ():   # frozen features: the benchmark's pose_stage_config
            cell(f"{name}_frozen_features_{share:g}", run, pose_stage_config(cfg, share, seed=a.seed), share=share)
    # the benchmark's own cells beside them, of the same pose seed
    # replaced, not merged: an --out folder reused with another --seed must not keep the last seed's cells
    res["cells"] = {k: v for k, v in res["cells"].items() if not k.startswith("bench_")}
    res["cells"].update(benchmark_cells(a.bench_work, protocols, a.shares, a.seed))
    lines = ["| row | " + " | ".join(f"{p}: MPJPE / N-MPJPE / P-MPJPE (mm)" for p in protocols) + " |",
             "|---|" + "---|" * len(protocols)] if protocols else []
    names = sorted({k.rsplit("_finetune_", 1)[0] for k in res["cells"] if "_finetune_" in k}) if protocols else []
    for n in names:
        row = []
        for p in protocols:
            c = res["cells"].get(f"{n}_finetune_{p}")
            row.append("—" if c is None else f"{c['mpjpe']:.1f} / {c['n_mpjpe']:.1f} / {c['p_mpjpe']:.1f}")
        lines.append(f"| {n} | " + " | ".join(row) + " |")
    if "supervised_start" in res["cells"]:
        c = res["cells"]["supervised_start"]
        lines += ["", f"`supervised` starts from the scratch network trained on the 3D labels of "
                  f"{', '.join(c['subjects'])} (held out: {', '.join(c.get('val_subjects') or [])}); that start alone "
                  f"scores {c['mpjpe']:.1f} / {c['n_mpjpe']:.1f} / {c['p_mpjpe']:.1f} on the test people."]
    frozen = sorted({k.rsplit("_frozen_features_", 1)[0] for k in res["cells"] if "_frozen_features_" in k})
    shares = sorted({float(k.rsplit("_", 1)[1]) for k in res["cells"] if "_frozen_features_" in k})
    if frozen:
        lines += ["", "Frozen features, the house protocol (N-MPJPE mm, the MLP head on the pooled features):", "",
                  "| row | " + " | ".join(f"{s:g} of the labels" for s in shares) + " |", "|---|" + "---:|" * len(shares)]
        for n in frozen:
            cells = [res["cells"].get(f"{n}_frozen_features_{s:g}") for s in shares]
            lines.append(f"| {n} | " + " | ".join("—" if c is None else f"{c['n_mpjpe']:.1f}" for c in cells) + " |")
    pretext = sorted(k for k in res["cells"] if k.endswith("_pretext"))
    if pretext:
        from selfpose.methods.sync_eval import format_accuracy as acc

        lines += ["", "Pretext heads on held-out pairs of the test data (95% cluster-bootstrap interval; chance 50%):",
                  "", "| run | checkpoint step | sync, unflipped | flip |", "|---|---:|---:|---:|"]
        for k in pretext:
            c = res["cells"][k]
            lines.append(f"| {k[:-len('_pretext')]} | {c['step']} | {acc(c['sync_unflipped'])} | {acc(c['flip'])} |")
    a.out.mkdir(parents=True, exist_ok=True)
    if protocols and any("_finetune_" in k and not k.startswith("bench_") for k in res["cells"]):
        plot_rows(res["cells"], protocols, a.out / "rows.png", bench_scratch=not a.read)
        lines += ["", "Picture: `rows.png` (a bar per fine-tuned row; scratch and 10% below it as lines)."]
    if a.read:
        lines += ["", f"Every run here is read with `--read {' '.join(a.read)}`; the `bench_*` rows are the "
                  "benchmark's own cells, read as the benchmark's config reads them, not through `--read` (the sync "
                  "configs read as pretrained since 2026-12-05; older work folders read raw), so `rows.png` draws "
                  "no scratch line unless a scratch row of this probe is there."]
    if pretext and protocols:
        plot_transfer_vs_pretext(res["cells"], protocols, a.out / "transfer_vs_pretext.png", seed=a.seed,
                                 bench_scratch=not a.read)
        lines += ["", "Picture: `transfer_vs_pretext.png` (fine-tuned MPJPE against each run's held-out sync accuracy; "
                  "the same network from scratch and 10% below it as lines)."]
    out_path.write_text(json.dumps(res, indent=1, default=str))
    (a.out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
