"""The lifters' training loop: model selection over stages."""

from __future__ import annotations

import math

import pytest

from selfpose.evaluation.metrics import n_mpjpe
from selfpose.lifting.config import MartinezConfig
from selfpose.lifting.loop import Stage, mse_3d, train_stages
from selfpose.lifting.train import LifterConfig, build_lifter

from .test_martinez import arrays


def test_a_later_stage_that_hurts_does_not_replace_the_best_weights():
    import torch

    train = val = arrays(64, seed=0)   # validation on the training poses: it improves while the net learns
    cfg = LifterConfig(martinez=MartinezConfig(width=32, dropout=0.0), batch_size=16, warmup_steps=0, eval_every=10,
                       lr=3e-3, val_fraction=0.0, threads=1, checkpoint_every=0)
    lifter = build_lifter(train, cfg)

    def harm(lifter, batch):   # a stage that drives the 3D away from the labels
        loss, _ = mse_3d(lifter, batch)
        return -loss, {"neg_mse": -loss}

    info = train_stages(lifter, train, val, cfg, [Stage("learn", 40), Stage("same", 20, lr=1e-12, train_mode=lambda m: m.eval()),
                                                  Stage("harm", 20, harm)], progress=False)
    rows = {r["step"]: r for r in info["curve"]}
    # the untouched stage ties with the first stage's end, and the later step wins the tie
    assert rows[60]["val_n_mpjpe"] == pytest.approx(rows[40]["val_n_mpjpe"], abs=1e-3)
    assert info["best_step"] == 60 and rows[80]["val_n_mpjpe"] > rows[60]["val_n_mpjpe"]
    pred = torch.from_numpy(lifter.predict(val))
    assert float(n_mpjpe(pred, torch.from_numpy(val.joints3d))) == pytest.approx(info["best_val_n_mpjpe"], rel=1e-4)


def test_a_stage_that_is_not_selectable_is_never_kept():
    """The best step comes from selectable stages only, even when an earlier stage scored better."""
    train = val = arrays(64, seed=0)
    cfg = LifterConfig(martinez=MartinezConfig(width=32, dropout=0.0), batch_size=16, warmup_steps=0, eval_every=10,
                       lr=3e-3, val_fraction=0.0, threads=1, checkpoint_every=0)
    lifter = build_lifter(train, cfg)

    def harm(lifter, batch):
        loss, _ = mse_3d(lifter, batch)
        return -loss, {"neg_mse": -loss}

    info = train_stages(lifter, train, val, cfg, [Stage("learn", 40, selectable=False), Stage("harm", 20, harm)],
                        progress=False)
    rows = {r["step"]: r for r in info["curve"]}
    assert rows[40]["val_n_mpjpe"] < rows[50]["val_n_mpjpe"] and info["best_step"] in (50, 60)


def test_config_hash_of_the_defaults_is_pinned():
    """Checkpoints are matched to their config by this hash: keys added since (at their neutral values) must not
    change it, or every unfinished run saved before could no longer resume."""
    from selfpose.lifting.config import load_lifter_config
    from selfpose.lifting.loop import config_hash

    # measured at commit 23314f1, before keypoints_2d, image_features, val_subjects, pose_machine.joint_params
    pinned = {"martinez": "a82eba34bc8ac005", "temporal_conv": "d8658b1f5284c98d", "pose_machine": "41050d38eb5aa863"}
    # pose_machine's defaults then (runs saved then keep them in their config.yaml): 3600 steps; clips of 32, 32
    # per batch, predicted over 128 frames until 2026-12-04
    old = {"pose_machine": {"steps": 3600, "batch_size": 32, "pose_machine": {"clip": 32, "predict_clip": 128}}}
    for method, h in pinned.items():
        over = {"method": method, **old.get(method, {})}
        assert config_hash(load_lifter_config(None, over)) == h
    # a key at a non-neutral value does count
    moved = load_lifter_config(None, {"method": "pose_machine", **old["pose_machine"],
                                      "pose_machine": {**old["pose_machine"]["pose_machine"],
                                                       "joint_params": "transformer"}})
    assert config_hash(moved) != pinned["pose_machine"]
    assert config_hash(load_lifter_config(None, {"val_subjects": ["S8"]})) != pinned["martinez"]
    # bf16 `auto` (the default since 2026-12-02) hashes as the `true` it replaced; `false` still counts
    pm, sec = {"method": "pose_machine", **old["pose_machine"]}, old["pose_machine"]["pose_machine"]
    with_bf16 = lambda v: config_hash(load_lifter_config(None, {**pm, "pose_machine": {**sec, "bf16": v}}))  # noqa: E731
    assert with_bf16(True) == pinned["pose_machine"] and with_bf16(False) != pinned["pose_machine"]


def test_validation_people_keep_only_their_3d_labelled_frames():
    import dataclasses

    import numpy as np

    from selfpose.lifting.config import load_lifter_config
    from selfpose.lifting.train import split_train_val

    train = arrays(32)
    people = arrays(16, seed=1)
    j3 = people.joints3d.copy()
    j3[:5] = np.nan                                   # five frames of the validation person have no 3D
    people = dataclasses.replace(people, joints3d=j3, has3d=None, subjects=np.full(16, "S9"))
    cfg = load_lifter_config(None, {"val_subjects": ["S9"], "train_subjects": ["S1"]})
    tr, va = split_train_val(train, cfg, people)
    assert len(tr) == 32 and len(va) == 11 and va.has3d.all() and np.isfinite(va.joints3d).all()


def test_schedule_position_follows_steps_or_the_spent_budget():
    from selfpose.lifting.loop import schedule_position

    assert schedule_position(10, 101, spent=90.0, budget=100.0, clock="steps") == 10.0
    assert schedule_position(10, 101, spent=90.0, budget=None, clock="budget") == 10.0
    assert schedule_position(10, 101, spent=50.0, budget=100.0, clock="budget") == pytest.approx(50.0)
    assert schedule_position(80, 101, spent=50.0, budget=100.0, clock="budget") == 80.0   # steps ahead of time
    assert schedule_position(10, 101, spent=250.0, budget=100.0, clock="budget") == 100.0  # never past the last step
    assert schedule_position(3, 101, spent=0.0, budget=0.0, clock="budget") == 100.0
    with pytest.raises(ValueError, match="clock"):
        schedule_position(0, 10, 0.0, None, "wall")


def _slow_stage_run(monkeypatch, seconds_per_step: float, **cfg_kw):
    """A martinez stage whose every step "takes" ``seconds_per_step`` on a fake clock."""
    from selfpose.lifting import loop

    clock = {"t": 0.0}
    monkeypatch.setattr(loop.time, "perf_counter", lambda: clock["t"])

    def slow(lifter, batch):
        clock["t"] += seconds_per_step
        return mse_3d(lifter, batch)

    train = arrays(64, seed=0)
    cfg = LifterConfig(martinez=MartinezConfig(width=32, dropout=0.0), batch_size=16, warmup_steps=0, eval_every=1,
                       lr=1e-3, min_lr_ratio=0.01, val_fraction=0.0, threads=1, **{"checkpoint_every": 0, **cfg_kw})
    lifter = build_lifter(train, cfg)
    return train, cfg, lifter, slow


def test_the_budget_clock_anneals_a_stage_that_its_time_limit_cuts(monkeypatch):
    """100 steps planned, 10 s per step, 100 s: the time runs out during step 11 (the limit is checked after each
    step). Counted in steps, the cosine has hardly begun there; counted in the budget, it has reached its floor
    (min_lr_ratio × lr). A step's rate is set before it runs: step k sees (k − 1) × 10 s spent."""
    lrs = {}
    for clock in ("steps", "budget"):
        train, cfg, lifter, slow = _slow_stage_run(monkeypatch, 10.0, max_seconds=100.0, lr_clock=clock)
        info = train_stages(lifter, train, None, cfg, [Stage("lift", 100, slow)], progress=False)
        assert info["stopped_early"] and info["steps_done"] == 11
        lrs[clock] = [r["lr"] for r in info["curve"]]
    assert lrs["steps"][-1] > 0.97e-3
    assert lrs["budget"][-1] == pytest.approx(1e-5, rel=0.05)
    assert all(a >= b for a, b in zip(lrs["budget"], lrs["budget"][1:]))   # it only goes down
    assert lrs["budget"][4] == pytest.approx(1e-5 + (1e-3 - 1e-5) * 0.5 * (1 + math.cos(math.pi * 0.4)), rel=1e-3)


def test_a_stage_time_limit_counts_the_seconds_before_a_resumption(monkeypatch, tmp_path):
    """A stage with 100 s of its own, interrupted during its 6th step (its checkpoint: 5 steps, 50 s), has 50 s
    left when resumed: it ends after step 11 (110 s), not after another 100 s; its budget-clock schedule goes on
    falling where it stopped."""
    train, cfg, lifter, slow = _slow_stage_run(monkeypatch, 10.0, lr_clock="budget", checkpoint_every=1)

    def interrupted(lifter, batch):   # Ctrl-C during the 6th step, after the 5th step's checkpoint
        calls.append(1)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return slow(lifter, batch)

    calls: list[int] = []
    with pytest.raises(KeyboardInterrupt):
        train_stages(lifter, train, None, cfg, [Stage("lift", 100, interrupted, max_seconds=100.0)],
                     run_dir=tmp_path, progress=False)
    _, _, lifter2, slow2 = _slow_stage_run(monkeypatch, 10.0, lr_clock="budget", checkpoint_every=1)
    second = train_stages(lifter2, train, None, cfg, [Stage("lift", 100, slow2, max_seconds=100.0)],
                          run_dir=tmp_path, resume=True, progress=False)
    assert second["steps_done"] == 11 and second["stages_cut"] == ["lift@11/100"]
    lrs = [r["lr"] for r in second["curve"]]   # the curve goes on from the checkpoint's (5 rows)
    assert len(lrs) == 11 and all(a > b for a, b in zip(lrs, lrs[1:]))
    assert lrs[-1] == pytest.approx(1e-5, rel=1e-3)
