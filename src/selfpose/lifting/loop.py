"""The lifters' training loop: stages of windows, validation, model selection, checkpoints, exact resume.

A method trains in one or more :class:`Stage` s (``martinez`` and
``temporal_conv``: one stage of 3D MSE; ``pose_machine``: transformer,
projector, joint). Each step of a stage:

1. draws ``batch_size`` windows with a generator seeded by ``(seed, stage, step)``
   — so a resumed run draws exactly the batches the uninterrupted one would —
   from the stage's frames (3D-labelled ones, or all of them for stages that
   learn from 2D alone), each ``before + clip + after`` input frames long
   (edge-padded within its sequence, :mod:`selfpose.lifting.windows`);
2. takes their encoded 2D (precomputed once for ground-truth 2D; drawn afresh
   through the detector-noise model per batch when ``train_noise``);
3. computes the stage's loss, steps the stage's optimiser (the shared
   toolkit: warm-up + cosine schedule, non-finite checks) and applies the
   method's weight constraints. The schedule's position is the stage's step,
   or with ``lr_clock=budget`` the share of the stage's time limit spent when
   that is further (:func:`schedule_position`): a stage that a time limit cuts
   on a slow machine then still ends at the schedule's low rate.

Every ``eval_every`` steps (and at a stage's end) it validates on held-out
takes of the training subjects (N-MPJPE, mm) and keeps the best step over
the stages whose models are complete (``Stage.selectable``; not
``pose_machine``'s transformer stage, whose projector is untrained), a tie
going to the later step: ``pose_machine``'s projector stage leaves the 3D
alone, so its end holds the transformer stage's last weights with a trained
projector, and the joint stage must beat that to be kept. Every ``checkpoint_every``
steps it writes a checkpoint (weights, optimiser, RNG, curve, best-so-far) into
``RUN/checkpoints/``; :func:`train_stages` with ``resume`` continues from the
newest one exactly (a time-limited stage: its seconds before the interruption
count, both for its limit and for a ``budget`` schedule; where time decides,
a resumed run is as exact as the clock).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Literal

import numpy as np
import torch
from torch import nn

from selfpose.lifting.data import LiftingArrays, encode
from selfpose.lifting.model import Lifter, LifterError


@dataclass
class Batch:
    """One training batch of windows.

    Attributes:
        x: ``(B, before + clip + after, in_dim)`` normalised encoded 2D (missing → 0).
        y: ``(B, clip, 3J)`` z-scored pelvis-centred 3D of the target frames; NaN rows without 3D.
        has3d: ``(B,)`` bool, every target frame of the window has a 3D label.
        context: ``(before, after)``.
    """

    x: torch.Tensor
    y: torch.Tensor
    has3d: torch.Tensor
    context: tuple[int, int]

    @property
    def targets_x(self) -> torch.Tensor:
        """``(B, clip, in_dim)``: the inputs of the target frames themselves (what re-projection compares with)."""
        before, after = self.context
        return self.x[:, before:self.x.shape[1] - after]


def mse_3d(lifter: Lifter, batch: Batch) -> tuple[torch.Tensor, dict]:
    """Mean squared error of the network's z-scored 3D on the windows with 3D labels.

    Shapes: ``net(batch.x)`` and ``batch.y`` are ``(B, clip, 3J)``; units: z-scores
    of mm per output column. Returns ``(loss, {"mse": loss})``.
    """
    if not bool(batch.has3d.any()):
        raise LifterError("a 3D-supervised stage drew a batch without any 3D label")
    pred = lifter.net(batch.x[batch.has3d])
    loss = torch.mean((pred - batch.y[batch.has3d]) ** 2)
    return loss, {"mse": loss}


@dataclass
class Stage:
    """One stage of a method's training.

    Attributes:
        name: shown in progress and in ``metrics.csv``'s ``stage`` column.
        steps: optimiser steps.
        loss: ``(lifter, batch) → (loss, terms)``.
        params: ``net → parameters`` this stage optimises (default: all).
        sample: ``labelled`` draws windows whose targets have 3D labels; ``all`` any window.
        lr: this stage's peak learning rate (None: ``cfg.lr``).
        train_mode: ``net → None`` that sets train/eval modes (default ``net.train()``).
        max_seconds: end this stage after this long (its seconds over every resumption; a
            checkpoint saved before they were recorded counts from its resumption),
            keeping its best step, and go on with the next one; None = no limit of its own. (The run's
            ``max_seconds`` ends the whole run; a stage's own limit keeps a multi-stage method's
            later stages from being starved by a slow machine.)
        selectable: whether this stage's steps may be kept as the run's best (False for a
            stage after which the model is not complete yet: ``pose_machine``'s transformer
            stage, whose projector is still untrained).
    """

    name: str
    steps: int
    loss: Callable[[Lifter, Batch], tuple[torch.Tensor, dict]] = mse_3d
    params: Callable[[nn.Module], Iterable[nn.Parameter]] = lambda net: net.parameters()
    sample: Literal["labelled", "all"] = "labelled"
    lr: float | None = None
    train_mode: Callable[[nn.Module], None] | None = None
    max_seconds: float | None = None
    selectable: bool = True


def default_stages(lifter: Lifter, cfg) -> list[Stage]:
    """One stage of 3D MSE for ``cfg.steps`` steps (``martinez``, ``temporal_conv``)."""
    return [Stage("lift", cfg.steps)]


# Keys added to LifterConfig after runs were saved, with the value that behaves as before they existed: at that
# value they stay out of the hash, so a checkpoint saved earlier still resumes (its hash is the same).
_ADDED_KEYS = {"keypoints_2d": None, "image_features": False, "val_subjects": [], "flip_train": False,
               "flip_test": False, "lr_clock": "steps", "input_stats_subjects": []}
_ADDED_SECTION_KEYS = {"pose_machine": {"joint_params": "all", "reproj_path": "projector", "camera_reproj_weight": 10.0,
                                        "bone_weight": 0.0},
                       "noise": {"person_px": 0.0}}


def config_hash(cfg) -> str:
    """sha256 (16 hex) of the config without the keys that may change on resume (budget, logging).

    Keys added later (``_ADDED_KEYS``) count only when they differ from their neutral value.
    """
    from selfpose.config import to_dict

    d = {k: v for k, v in to_dict(cfg).items()
         if k not in ("max_seconds", "threads", "checkpoint_every", "keep_checkpoints")
         and not (k in _ADDED_KEYS and _plain(v) == _ADDED_KEYS[k])}
    for section, keys in _ADDED_SECTION_KEYS.items():
        if isinstance(d.get(section), dict):
            d[section] = {k: v for k, v in d[section].items() if not (k in keys and _plain(v) == keys[k])}
    pm = d.get("pose_machine")
    if isinstance(pm, dict) and pm.get("bf16") == "auto":
        # `auto` became the default where `true` was (bf16 only where the CPU has it): the same config as
        # before, so runs saved with `true` resume, and an `auto` run may resume on a CPU of the other kind.
        d["pose_machine"] = {**pm, "bf16": True}
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def schedule_position(step0: int, steps: int, spent: float, budget: float | None, clock: str) -> float:
    """0-based position of a stage's step in its learning-rate schedule (:func:`~selfpose.training.toolkit.lr_at`).

    Args:
        step0: the stage's 0-based step.
        steps: the stage's steps (the schedule's length).
        spent: seconds the stage has trained so far.
        budget: the stage's time limit in seconds (its own, or what the run's was left when it
            began), None = none.
        clock: ``steps`` (the position is ``step0``) or ``budget`` (the larger of ``step0`` and
            the spent share of ``budget`` times ``steps − 1``, so the schedule ends when the time
            does; never past the last step).

    A pure function, so the rule can be tested without timing anything.
    """
    if clock not in ("steps", "budget"):
        raise ValueError(f"clock must be 'steps' or 'budget', got {clock!r}")
    if clock == "steps" or budget is None:
        return float(step0)
    if not budget > 0:
        return float(max(step0, steps - 1))
    return max(float(step0), min(float(steps - 1), (steps - 1) * spent / budget))


def _plain(v):
    return list(v) if isinstance(v, tuple) else v


class _Sampler:
    """Windows of one stage's frames (see the module docstring, step 1)."""

    def __init__(self, train: LiftingArrays, labelled_only: bool, clip: int, context: tuple[int, int]):
        from selfpose.lifting.windows import sequence_bounds

        self.starts, self.ends = sequence_bounds(train.sequences)
        self.candidates = np.flatnonzero(train.has3d) if labelled_only else np.arange(len(train))
        if not len(self.candidates):
            raise LifterError("no training frame with a 3D label; a lifter needs some (labels_3d=...)")
        self.clip, self.context = clip, context

    def draw(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``(inputs (n, before + clip + after), targets (n, clip))`` flat indices."""
        from selfpose.lifting.windows import context_index

        f = self.candidates[rng.integers(len(self.candidates), size=n)]
        s, e = self.starts[f], self.ends[f]
        first = np.minimum(f, np.maximum(s, e - self.clip))   # a whole clip inside the sequence when it fits
        return context_index(s, e, first, self.clip, *self.context)


def _checkpoint_state(net, opt, best, stage_i, stage_step, curve, elapsed, cfg,
                      stage_seconds: float = 0.0) -> tuple[dict, dict, dict]:
    from selfpose.training.checkpoint import rng_state

    model = {f"net.{k}": v for k, v in net.state_dict().items()}
    if best.state is not None:
        model.update({f"best.{k}": v for k, v in best.state.items()})
    state = {"stage": stage_i, "stage_step": stage_step, "config_hash": config_hash(cfg), "rng": rng_state(),
             "best": {"value": None if best.state is None else best.value, "step": best.step, "stale": best.stale},
             "curve": curve, "elapsed": elapsed, "stage_seconds": stage_seconds}
    return model, opt.state_dict(), state


def train_stages(lifter: Lifter, train: LiftingArrays, val: LiftingArrays | None, cfg, stages: list[Stage],
                 run_dir: str | Path | None = None, resume: bool = False, progress: bool = True) -> dict:
    """Run ``stages`` on ``lifter.net`` (in place); returns facts (curve, best step, steps done, seconds).

    Args:
        train: training frames (windows are cut from them); ``has3d`` says which have 3D.
        val: held-out frames with 3D (whole sequences), or None (keep each stage's last step).
        run_dir: where checkpoints go (None: no checkpoints).
        resume: continue from ``run_dir``'s newest checkpoint (its config must match, except budget keys).
    """
    from selfpose.evaluation.metrics import mpjpe, n_mpjpe
    from selfpose.pose.fit import BestStep
    from selfpose.training.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint, set_rng_state
    from selfpose.training.logs import write_metrics
    from selfpose.training.toolkit import Stepper, build_optimizer, progress_text
    from selfpose.utils.progress import progress_bar

    net = lifter.net
    method = lifter.method
    clip = int(method.clip(cfg))
    noise = cfg.noise if cfg.train_noise else None
    raw = None if noise is not None else encode(train, None, cfg.input_norm)
    xn = None if raw is None else lifter.normalise(torch.from_numpy(raw))
    J = lifter.num_joints
    y = torch.from_numpy(train.joints3d.reshape(len(train), 3 * J))   # NaN rows: frames without 3D
    yn = (y - lifter.out_mean) / lifter.out_std
    xn_f = yn_f = None
    if cfg.flip_train:   # the mirrored data, made once (ground-truth 2D) or per batch (noisy 2D)
        from selfpose.lifting.flip import flip_3d, flip_encoded

        yn_f = (flip_3d(y, J) - lifter.out_mean) / lifter.out_std
        if raw is not None:
            xn_f = lifter.normalise(torch.from_numpy(flip_encoded(raw, J)))
    del raw
    xv = yv = None
    if val is not None and len(val):
        xv = lifter.encode_sequences(val, cfg.noise if cfg.test_noise else None, seed=cfg.seed + 1)
        yv = torch.from_numpy(val.joints3d)

    # Where to start: a checkpoint's stage and step, or the beginning.
    start_stage, start_step, curve, elapsed0 = 0, 0, [], 0.0
    saved = None
    if resume:
        ck = latest_checkpoint(run_dir) if run_dir is not None else None
        if ck is None:
            raise LifterError(f"{run_dir} has no checkpoint to resume from; run fit-lifter without --resume")
        tensors, saved_opt, ck = load_checkpoint(ck)
        saved = ck.state
        if saved.get("config_hash") != config_hash(cfg):
            raise LifterError(f"{run_dir}'s checkpoint was trained with another config; resume with the run's own "
                              "config (only max_seconds, threads and checkpoint keys may change) or --overwrite")
        net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
        start_stage, start_step = int(saved["stage"]), int(saved["stage_step"])
        curve, elapsed0 = list(saved["curve"]), float(saved["elapsed"])
        best_saved = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}

    # the checkpoint's own step count: a stage cut by its time limit ran fewer steps than it names
    global_step = int(saved["step"]) if saved is not None else 0
    threads = torch.get_num_threads()
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    t0 = time.perf_counter() - elapsed0
    out_of_time = False
    best = BestStep(None)
    cut: list[str] = []
    try:
        with progress_bar(None if progress else False) as bar:
            for si in range(start_stage, len(stages)):
                stage = stages[si]
                params = [p for p in stage.params(net) if p.requires_grad]
                optim = cfg.optim()
                if stage.lr is not None:
                    optim.lr = stage.lr
                opt = build_optimizer(params, optim, fused=True, lr_key="lr")
                stepper = Stepper(opt, optim, stage.steps, lr_key="lr", defer_check=True)
                sampler = _Sampler(train, stage.sample == "labelled", clip, lifter.context)
                first = 1
                stage_spent0 = 0.0   # the stage's seconds before this (re)start
                if saved is not None and si == start_stage:
                    stage_spent0 = float(saved.get("stage_seconds", 0.0))
                    opt.load_state_dict(saved_opt)
                    set_rng_state(saved["rng"])
                    b = saved["best"]
                    if b["value"] is not None:
                        best.value, best.step, best.stale, best.state = b["value"], b["step"], b["stale"], best_saved
                    first = start_step + 1
                task = bar.add_task(f"{cfg.method}: {stage.name}", total=stage.steps, completed=first - 1)
                loss_sum, loss_n, t_win = torch.zeros(()), 0, time.perf_counter()
                stage_t0 = time.perf_counter()
                # the stage's time limit: its own, or what the run's limit left when the stage began
                budget = stage.max_seconds
                if cfg.max_seconds is not None:
                    left = cfg.max_seconds - (stage_t0 - t0 - stage_spent0)
                    budget = left if budget is None else min(budget, left)
                stage_cut = False
                step = first - 1
                for step in range(first, stage.steps + 1):
                    global_step += 1
                    rng = np.random.default_rng([cfg.seed, si, step])
                    inp, tgt = sampler.draw(rng, cfg.batch_size)
                    if noise is None:
                        xb = xn[torch.from_numpy(inp)]
                    else:   # fresh detector noise per batch, reproducible from (seed, stage, step)
                        xr = encode(train, inp, cfg.input_norm, noise, rng)
                    yb = yn[torch.from_numpy(tgt)]
                    if cfg.flip_train:   # drawn after the noise, so runs without mirroring draw as before
                        m = torch.from_numpy(rng.random(len(inp)) < 0.5)
                        yb = torch.where(m[:, None, None], yn_f[torch.from_numpy(tgt)], yb)
                        if noise is None:
                            xb = torch.where(m[:, None, None], xn_f[torch.from_numpy(inp)], xb)
                        else:
                            xr = np.where(m.numpy()[:, None, None], flip_encoded(xr, J), xr)
                    if noise is not None:
                        xb = lifter.normalise(torch.from_numpy(xr))
                    batch = Batch(xb, yb, torch.from_numpy(train.has3d[tgt].all(axis=1)), lifter.context)
                    (stage.train_mode or (lambda m: m.train()))(net)
                    lr = stepper.set_lr(schedule_position(step - 1, stage.steps,
                                                          stage_spent0 + time.perf_counter() - stage_t0,
                                                          budget, cfg.lr_clock))
                    loss, terms = stage.loss(lifter, batch)
                    stepper.step(loss, step - 1, terms)
                    if method.constrain is not None:
                        method.constrain(net, cfg)
                    loss_sum += loss.detach()
                    loss_n += 1
                    out_of_time = cfg.max_seconds is not None and time.perf_counter() - t0 > cfg.max_seconds
                    stage_cut = stage.max_seconds is not None and \
                        stage_spent0 + time.perf_counter() - stage_t0 > stage.max_seconds
                    last = step == stage.steps or out_of_time or stage_cut
                    if step % cfg.eval_every == 0 or last:
                        stepper.check()
                        now = time.perf_counter()
                        row = {"step": global_step, "stage": stage.name, "stage_step": step,
                               "train_loss": float(loss_sum) / loss_n, "lr": lr}
                        bar.update(task, completed=step, description=progress_text(
                            f"{cfg.method}: {stage.name}", row["train_loss"], (now - t_win) / loss_n))
                        loss_sum, loss_n, t_win = torch.zeros(()), 0, now
                        if xv is not None:
                            pv = torch.from_numpy(lifter.predict(val, raw=xv, correction=False))
                            row["val_mpjpe"] = float(mpjpe(pv, yv))
                            row["val_n_mpjpe"] = float(n_mpjpe(pv, yv))
                            if stage.selectable:
                                if row["val_n_mpjpe"] <= best.value:   # a tie goes to the later step (module doc)
                                    best.value = math.inf
                                best.update(row["val_n_mpjpe"], global_step, net)
                        row["time"] = time.perf_counter() - t0
                        curve.append(row)
                        if run_dir is not None:   # the curve so far, readable while the run trains
                            write_metrics(run_dir, curve)
                    if run_dir is not None and cfg.checkpoint_every and (global_step % cfg.checkpoint_every == 0
                                                                        or last):
                        now = time.perf_counter()
                        model_sd, opt_sd, st = _checkpoint_state(net, opt, best, si, step, curve, now - t0, cfg,
                                                                 stage_spent0 + now - stage_t0)
                        save_checkpoint(run_dir, global_step, model_sd, opt_sd, st, keep=cfg.keep_checkpoints)
                    if out_of_time or stage_cut:
                        break
                if stage_cut and not out_of_time:
                    cut.append(f"{stage.name}@{step}/{stage.steps}")
                saved = None
                if out_of_time:
                    break
    finally:
        torch.set_num_threads(threads)
    if best.state is not None:
        net.load_state_dict(best.state)
    net.eval()
    return {"curve": curve, "steps_done": global_step, "best_step": best.step if best.state is not None else global_step,
            "best_val_n_mpjpe": None if best.state is None else best.value, "stopped_early": out_of_time,
            "stages_cut": cut,
            "train_seconds": time.perf_counter() - t0, "train_frames": len(train),
            "train_frames_3d": int(train.has3d.sum()), "val_frames": 0 if val is None else len(val)}

