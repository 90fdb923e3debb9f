"""The shared training toolkit: schedule, optimiser groups, the step's finiteness checks, and its three users."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from selfpose.training.config import OptimConfig
from selfpose.training.toolkit import (Stepper, TrainingError, build_optimizer, check_lr, lr_at, param_groups,
                                       progress_text)


def _nan_lr(**kw) -> OptimConfig:
    """An OptimConfig whose lr is NaN (set after construction: config validation may refuse it first)."""
    o = OptimConfig(**kw)
    o.lr = float("nan")
    return o


# -- schedule ----------------------------------------------------------------------------------


def test_lr_at_warmup_cosine_constant():
    o = OptimConfig(lr=1.0, warmup_steps=2, schedule="cosine", min_lr_ratio=0.2)
    f = [lr_at(s, o, 12) for s in range(12)]
    assert f[:2] == [0.5, 1.0]
    assert f[2] == pytest.approx(1.0) and f[-1] == pytest.approx(0.2)
    mid = 2 + (12 - 1 - 2) / 2  # halfway through the cosine: halfway between 1 and the floor
    assert lr_at(int(mid), o, 12) == pytest.approx(0.2 + 0.8 * 0.5 * (1 + math.cos(math.pi * int(mid - 2) / 9)))
    assert all(a >= b for a, b in zip(f[1:], f[2:]))
    assert {lr_at(s, OptimConfig(schedule="constant"), 12) for s in range(12)} == {1.0}
    assert lr_at(0, OptimConfig(), 1) == 1.0  # a one-step run takes the full lr


# -- optimiser ---------------------------------------------------------------------------------


def test_optimizer_groups_decay_only_weight_matrices():
    net = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 2))
    net[2].bias.requires_grad_(False)
    opt = build_optimizer(net, OptimConfig(lr=0.01, weight_decay=0.3))
    decay, no_decay = opt.param_groups
    assert {id(p) for p in decay["params"]} == {id(net[0].weight), id(net[2].weight)}
    assert {id(p) for p in no_decay["params"]} == {id(net[0].bias), id(net[1].weight), id(net[1].bias)}
    assert (decay["weight_decay"], no_decay["weight_decay"]) == (0.3, 0.0)
    assert all(g["base_lr"] == 0.01 for g in opt.param_groups) and isinstance(opt, torch.optim.AdamW)
    assert isinstance(build_optimizer(net.parameters(), OptimConfig(optimizer="adam")), torch.optim.Adam)
    only_bias = param_groups([net[0].bias], 0.1)
    assert len(only_bias) == 1 and only_bias[0]["weight_decay"] == 0.0  # empty groups are dropped
    with pytest.raises(TrainingError, match="no trainable parameter"):
        build_optimizer([p.detach() for p in net.parameters()], OptimConfig())


def test_nan_learning_rate_is_a_training_error():
    with pytest.raises(TrainingError, match=r"optim\.lr is nan.*finite"):
        check_lr(_nan_lr())
    with pytest.raises(TrainingError, match=r"pose\.lr"):
        build_optimizer(nn.Linear(2, 2), _nan_lr(), lr_key="pose.lr")
    net = nn.Linear(2, 2)
    opt = build_optimizer(net, OptimConfig(lr=0.1))
    stepper = Stepper(opt, _nan_lr(), 10)
    with pytest.raises(TrainingError, match="at step 3"):
        stepper.set_lr(3)


# -- the step ----------------------------------------------------------------------------------


def test_step_applies_the_schedule_and_clips():
    torch.manual_seed(0)
    net = nn.Linear(3, 1)
    o = OptimConfig(lr=0.5, warmup_steps=4, grad_clip=1e-3)
    stepper = Stepper(build_optimizer(net, o), o, 10)
    assert stepper.set_lr(0) == pytest.approx(0.125)
    assert all(g["lr"] == pytest.approx(0.125) for g in stepper.optimizer.param_groups)
    before = net.weight.detach().clone()
    extra = stepper.step((net(torch.ones(2, 3)) * 100).sum(), 0)
    assert extra["grad_norm"] > 1e-3  # the norm before clipping is reported
    assert not torch.equal(before, net.weight)


def test_non_finite_loss_names_step_and_terms_and_leaves_weights():
    net = nn.Linear(3, 1)
    o = OptimConfig(lr=0.1)
    stepper = Stepper(build_optimizer(net, o), o, 10, lr_key="optim.lr", hint="resume from the last checkpoint")
    stepper.set_lr(5)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    good = net(torch.ones(1, 3)).sum()
    bad = good * float("inf")
    with pytest.raises(TrainingError) as e:
        stepper.step(good + bad, 5, {"rgb": good.detach(), "dsl": bad.detach()})
    msg = str(e.value)
    assert "at step 5" in msg and "dsl=inf" in msg and "rgb" not in msg
    assert "lower optim.lr" in msg and "check the data" in msg and "resume from the last checkpoint" in msg
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_deferred_check_reports_the_first_bad_step():
    net = nn.Linear(3, 1)
    o = OptimConfig(lr=0.1)
    stepper = Stepper(build_optimizer(net, o), o, 10, lr_key="pose.lr", defer_check=True)
    for s in range(4):
        loss = net(torch.ones(1, 3)).sum() * (float("nan") if s >= 2 else 1.0)
        stepper.step(loss, s)  # no error yet: no host sync per step
    with pytest.raises(TrainingError, match=r"non-finite at step 2.*lower pose\.lr"):
        stepper.check()


def test_progress_text():
    assert progress_text("pose head", 0.123456, 0.0412) == "pose head loss 0.1235 0.04 s/step"


# -- the three users ---------------------------------------------------------------------------


def _feature_set(n=40, d=6, joints=3, seed=0):
    from selfpose.pose.features import FeatureSet

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    j3 = np.zeros((n, joints, 3), np.float32)
    j3[:, 1:] = (x[:, :3 * (joints - 1)].reshape(n, joints - 1, 3) * 100)
    s = np.array(["a"] * n)
    return FeatureSet(features=x, seq=np.zeros(n, np.int64), frame=np.arange(n), frame_ids=np.arange(n),
                      frame_hw=np.full((n, 2), 32), sequence_ids=s, subjects=s, actions=s, takes=s, views=s,
                      joints3d=j3)


@pytest.mark.parametrize("schedule", ["cosine", "constant"])
def test_pose_head_follows_the_shared_schedule_and_logs_metrics(tmp_path, schedule):
    from selfpose.pose.fit import PoseConfig, fit_pose
    from selfpose.training.logs import read_metrics

    cfg = PoseConfig(hidden=8, layers=1, dropout=0.0, steps=7, eval_every=1, batch_size=8, lr=0.02,
                     lr_schedule=schedule, val_fraction=0.0, threads=1)
    fitted = fit_pose(_feature_set(), cfg, progress=False)
    expected = [0.02 * lr_at(s, cfg.optim(), 7) for s in range(7)]
    assert [r["lr"] for r in fitted.curve] == pytest.approx(expected)
    assert [r["step"] for r in fitted.curve] == list(range(1, 8))
    fitted.save(tmp_path / "head")
    rows = read_metrics(tmp_path / "head")  # the pretraining format: step, time, lr, scalars
    assert [r["step"] for r in rows] == list(range(1, 8)) and rows[0]["lr"] == pytest.approx(expected[0], rel=1e-6)
    assert (tmp_path / "head" / "metrics.csv").read_text().startswith("step,time,lr,train_loss")


def test_pose_head_non_finite_loss_is_a_training_error():
    from selfpose.pose.fit import PoseConfig, fit_pose

    fs = _feature_set()
    fs.joints3d[3, 1, 0] = np.inf  # one corrupt label: the z-scored target is non-finite
    cfg = PoseConfig(hidden=8, layers=1, steps=6, eval_every=3, batch_size=40, val_fraction=0.0, threads=1,
                     normalise="scale")
    with pytest.raises(TrainingError, match=r"at step 0.*lower pose\.lr.*check the data"):
        fit_pose(fs, cfg, progress=False)


def test_pose_and_supervised_configs_refuse_nan_lr():
    from selfpose.config import ConfigError
    from selfpose.pose.fit import PoseConfig
    from selfpose.pose.supervised import SupervisedConfig

    with pytest.raises(ConfigError, match="pose.lr"):
        PoseConfig(lr=float("nan"))
    with pytest.raises(ConfigError, match="supervised.lr"):
        SupervisedConfig(lr=float("inf"))


def test_supervised_follows_the_shared_schedule(tmp_path, stand_in_net):
    from selfpose.data.sequence import SequenceMeta
    from selfpose.data.store import Dataset, DatasetWriter
    from selfpose.pose.supervised import SupervisedConfig, train_supervised

    rng = np.random.default_rng(0)
    with DatasetWriter(tmp_path / "ds") as w:
        for s in range(2):
            n = 12
            j3 = rng.normal(size=(n, 17, 3)).astype(np.float32) * 100 + np.array([0, 0, 3000], np.float32)
            meta = SequenceMeta(f"s{s}", f"S{s}", "walk", f"take{s}", "c0", 10.0, n, 16, 16)
            w.write_sequence(meta, frames=rng.integers(0, 255, (n, 16, 16, 3), dtype=np.uint8), joints3d=j3)
    cfg = SupervisedConfig(hidden=8, layers=1, dropout=0.0, steps=5, eval_every=1, batch_size=4, lr=0.01,
                           val_fraction=0.0, colour_jitter=0.0, threads=1)
    sm = train_supervised(Dataset.open(tmp_path / "ds"), cfg, model=stand_in_net(4), progress=False)
    assert [r["lr"] for r in sm.curve] == pytest.approx([0.01 * lr_at(s, cfg.optim(), 5) for s in range(5)])
    sm.save(tmp_path / "sm")
    assert json.loads((tmp_path / "sm" / "supervised.json").read_text())["curve"][-1]["step"] == 5
    assert (tmp_path / "sm" / "pose_head" / "metrics.csv").is_file()


def test_pretraining_non_finite_loss_keeps_the_last_checkpoint(blobs, tmp_path, run_config):
    from selfpose.training.checkpoint import list_checkpoints, load_weights
    from selfpose.training.loop import train
    from selfpose.training.toy import ToyAutoencoder, toy_sampler

    class ExplodesAtStep5(ToyAutoencoder):
        def training_step(self, batch, step):
            loss, logs = super().training_step(batch, step)
            if step >= 5:
                logs = {**logs, "blowup": loss * float("inf")}
                loss = loss + logs["blowup"]
            return loss, logs

    with pytest.raises(TrainingError, match=r"at step 5 \(non-finite terms: blowup=inf\).*--resume"):
        train(ExplodesAtStep5, blobs, toy_sampler, run_config(steps=8, checkpoint_every=4), tmp_path / "run",
              progress=False)
    (step, path), = list_checkpoints(tmp_path / "run")
    assert step == 4
    assert all(torch.isfinite(v).all() for v in load_weights(path).values() if v.is_floating_point())


def test_check_weights_names_the_non_finite_parameters():
    net = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    o = OptimConfig()
    stepper = Stepper(build_optimizer(net, o), o, 10)
    stepper.check_weights(net, 3)  # all finite: no error
    with torch.no_grad():
        net[1].bias.fill_(float("nan"))
    with pytest.raises(TrainingError, match=r"non-finite by step 3 \(1\.bias\).*set optim\.grad_clip"):
        stepper.check_weights(net, 3)


def test_pretraining_never_saves_diverged_weights(blobs, tmp_path, run_config):
    from selfpose.training.checkpoint import list_checkpoints
    from selfpose.training.loop import train
    from selfpose.training.toy import ToyAutoencoder, toy_sampler

    class CorruptsAWeight(ToyAutoencoder):
        """The loss stays finite; one weight (outside the loss) goes NaN during step 3."""

        def __init__(self):
            super().__init__()
            self.spare = nn.Parameter(torch.zeros(2, 2))

        def training_step(self, batch, step):
            if step == 3:
                with torch.no_grad():
                    self.spare.fill_(float("nan"))
            return super().training_step(batch, step)

    with pytest.raises(TrainingError, match=r"non-finite by step 4 \(spare\)"):
        train(CorruptsAWeight, blobs, toy_sampler, run_config(steps=8, checkpoint_every=2), tmp_path / "run",
              progress=False)
    assert [s for s, _ in list_checkpoints(tmp_path / "run")] == [2]
