"""The lifters' training loop: model selection over stages."""

from __future__ import annotations

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
    old_steps = {"pose_machine": 3600}   # its default then (runs saved then keep it in their config.yaml)
    for method, h in pinned.items():
        over = {"method": method, **({"steps": old_steps[method]} if method in old_steps else {})}
        assert config_hash(load_lifter_config(None, over)) == h
    # a key at a non-neutral value does count
    moved = load_lifter_config(None, {"method": "pose_machine", "steps": 3600,
                                      "pose_machine": {"joint_params": "transformer"}})
    assert config_hash(moved) != pinned["pose_machine"]
    assert config_hash(load_lifter_config(None, {"val_subjects": ["S8"]})) != pinned["martinez"]
    # bf16 `auto` (the default since 2026-12-02) hashes as the `true` it replaced; `false` still counts
    pm = {"method": "pose_machine", "steps": 3600}
    assert config_hash(load_lifter_config(None, {**pm, "pose_machine": {"bf16": True}})) == pinned["pose_machine"]
    assert config_hash(load_lifter_config(None, {**pm, "pose_machine": {"bf16": False}})) != pinned["pose_machine"]


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
