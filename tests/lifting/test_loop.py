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
