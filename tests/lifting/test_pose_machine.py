"""The pose_machine lifter: shapes, each stage's loss, the correction's rules, the 2D-only path, CLI, resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from selfpose.cli import app
from selfpose.lifting import pose_machine as pm
from selfpose.lifting.config import load_lifter_config
from selfpose.lifting.loop import Batch
from selfpose.lifting.train import build_lifter, fit_lifter

from .test_martinez import arrays

J = 17


TINY = ["method=pose_machine", "pose_machine.hidden=24", "pose_machine.conv_channels=4,8", "pose_machine.clip=8", "pose_machine.predict_clip=8",
        "pose_machine.bf16=false", "batch_size=8", "val_fraction=0", "threads=1", "warmup_steps=0", "max_seconds=null"]


pytestmark = pytest.mark.usefixtures("one_thread")   # tiny LSTMs: one thread is ~25× faster than two here


def tiny_cfg(*extra: str):
    return load_lifter_config(None, [*TINY, *extra])


def cmu_motion() -> Path:
    import selfpose

    return Path(selfpose.__file__).parent / "assets" / "motion" / "cmu_h36m17approx_30fps.npz"


def test_defaults_register_a_2d_only_method_with_its_section():
    cfg = load_lifter_config(None, ["method=pose_machine"])
    assert cfg.section is cfg.pose_machine and cfg.pose_machine.correction.enabled
    assert cfg.pose_machine.correction.steps == 2 and cfg.pose_machine.correction.lr == 1.5e-4
    from selfpose.lifting.lifters import LIFTERS

    m = LIFTERS["pose_machine"]
    assert m.learns_from_2d_only and m.correct is not None and m.clip(cfg) == cfg.pose_machine.clip
    names = [s.name for s in m.stages(None, cfg)]
    assert names == ["transformer", "projector", "joint"]
    from selfpose.config import ConfigError

    with pytest.raises(ConfigError, match="stop_mm"):
        load_lifter_config(None, ["method=pose_machine", "pose_machine.correction.stop_mm=30"])


def test_shapes_of_every_part():
    torch.manual_seed(0)
    net = pm.PoseMachineNet(3 * J + 2, 3 * J, hidden=16, conv_channels=(4, 8))
    x = torch.randn(2, 5, 3 * J + 2)
    assert net.context == (0, 0)
    y = net(x)
    assert y.shape == (2, 5, 3 * J) and torch.equal(y, net.transformer(x))
    assert torch.equal(net.corrector(y), y)                       # Ψ_C starts as the identity
    assert net.projector(y).shape == (2, 5, 2 * J)
    # per-clip weights: clip c with its own copy gives what the shared weights give
    w = [p.detach()[None].repeat(2, *([1] * p.dim())) for p in net.corrector.weights()]
    w[2][1] += 0.1
    out = pm.corrector_apply(*w, y)
    assert torch.allclose(out[0], net.corrector(y[0])) and not torch.allclose(out[1], net.corrector(y[1]))
    # the transformer sees the whole clip: changing the last frame changes the first frame's output (reversed LSTM)
    x2 = x.clone()
    x2[:, -1] += 1
    assert not torch.allclose(net(x2)[:, 0], y[:, 0])
    # bf16 autocast keeps the output float32
    assert pm.PoseMachineNet(3 * J + 2, 3 * J, hidden=16, conv_channels=(4, 8), bf16=True)(x).dtype == torch.float32
    with pytest.raises(ValueError, match="3J"):
        pm.PoseMachineNet(40, 3 * J, hidden=8)


def test_normalised_2d_ignores_translation_scale_and_missing_joints():
    p = torch.randn(3, J, 2)
    vis = torch.ones(3, J)
    vis[0, 5] = 0
    a = pm.normalise_2d(p, vis)
    b = pm.normalise_2d(p * 7 + torch.tensor([3.0, -2.0]), vis)
    assert torch.allclose(a, b, atol=1e-5)
    q = p.clone()
    q[0, 5] = 1e3                                      # a missing joint's value does not matter elsewhere
    c = pm.normalise_2d(q, vis)
    keep = vis.bool()
    assert torch.allclose(a[keep], c[keep], atol=1e-5)
    err = pm.reprojection_error(q.reshape(1, 3, 2 * J), a[None], vis[None])
    assert float(err) < 1e-8                            # missing joints are excluded from the loss


def test_frames_without_visible_joints_give_finite_gradients():
    """Detector noise drops whole frames (temporal dropouts): the 2D loss must skip them, not turn NaN."""
    pred = torch.randn(2, 4, 2 * J, requires_grad=True)
    target = pm.normalise_2d(torch.randn(2, 4, J, 2), torch.ones(2, 4, J))
    vis = torch.ones(2, 4, J)
    vis[0, 1] = 0          # no joint visible
    vis[1, 2, 1:] = 0      # one joint visible: no scale
    err = pm.reprojection_error(pred, target, vis, per_clip=True)
    err.sum().backward()
    assert torch.isfinite(err).all() and torch.isfinite(pred.grad).all()
    assert pred.grad[0, 1].abs().sum() == 0 and pred.grad[1, 2].abs().sum() == 0


def fixed_batch(lifter, a, clip: int = 8, n: int = 8) -> Batch:
    from selfpose.lifting.data import encode

    x = lifter.normalise(torch.from_numpy(encode(a, None, lifter.cfg.input_norm)))
    y = (torch.from_numpy(a.joints3d.reshape(len(a), -1)) - lifter.out_mean) / lifter.out_std
    idx = torch.arange(n * clip).view(n, clip)
    return Batch(x[idx], y[idx], torch.ones(n, dtype=torch.bool), (0, 0))


@pytest.mark.parametrize("stage", ["transformer", "projector", "joint"])
def test_each_stage_loss_goes_down_on_a_fixed_batch(stage):
    a = arrays(64)
    lifter = build_lifter(a, tiny_cfg("pose_machine.hidden=48"))
    batch = fixed_batch(lifter, a)
    if stage == "joint":      # half the windows 2D-only: they reach the loss through the 2D term alone
        batch.has3d[4:] = False
        batch.y[4:] = float("nan")
    loss_fn = {"transformer": pm.transformer_loss, "projector": pm.projector_loss, "joint": pm.joint_loss}[stage]
    params = {"transformer": lambda n: n.transformer.parameters(),
              "projector": lambda n: [*n.corrector.parameters(), *n.projector.parameters()],
              "joint": lambda n: n.parameters()}[stage](lifter.net)
    opt = torch.optim.Adam(params, 3e-3)
    losses = []
    torch.manual_seed(1)
    for _ in range(60):
        loss, terms = loss_fn(lifter, batch)
        assert torch.isfinite(loss) and all(torch.isfinite(t) for t in terms.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5]), losses[::10]


def test_2d_only_windows_train_the_transformer_through_the_2d_term():
    a = arrays(64)
    lifter = build_lifter(a, tiny_cfg())
    batch = fixed_batch(lifter, a)
    batch.has3d[:] = False
    batch.y[:] = float("nan")
    loss, terms = pm.joint_loss(lifter, batch)
    assert float(terms["mse"].detach()) == 0 and float(terms["reproj"].detach()) > 0
    loss.backward()
    assert lifter.net.transformer.fc_in.weight.grad.abs().sum() > 0


# ---------------------------------------------------------------------------------------------- correction


def correction_setup(clips: int = 3, T: int = 6):
    """A lifter whose Ψ_C has a constant hidden layer (W1 = 0, b1 = 1) and W2 = 0: one Adam step then moves
    every output coordinate by ±lr·(hidden + 1) z-units, so the robust joints' movement is linear in lr."""
    a = arrays(64)
    lifter = build_lifter(a, tiny_cfg())
    with torch.no_grad():
        c = lifter.net.corrector
        c.fc1.weight.zero_()
        c.fc1.bias.fill_(1.0)
        c.fc2.weight.zero_()
        c.fc2.bias.zero_()
    batch = fixed_batch(lifter, a, clip=T, n=1)
    x = batch.x.repeat(clips, 1, 1)       # identical clips: each rule fires for all of them or none
    torch.manual_seed(0)
    y = (batch.y + 0.3 * torch.randn_like(batch.y)).repeat(clips, 1, 1)   # p_3D off the truth: a gradient
    return lifter, x, y


def run_correction(lifter, x, y, **cc):
    from dataclasses import replace

    cfg = lifter.cfg
    cfg = replace(cfg, pose_machine=replace(cfg.pose_machine, correction=replace(cfg.pose_machine.correction, **cc)))
    return pm.correct(lifter, x, y, cfg)


def moved_mm(lifter, a, b) -> float:
    return float(pm.robust_move(lifter.to_mm(a), lifter.to_mm(b), pm.robust_joints(J)).mean())


def test_correction_rules_each_fire_on_hand_made_cases():
    lifter, x, y = correction_setup()
    before = {k: v.clone() for k, v in lifter.net.state_dict().items()}
    # one step at a reference lr, nothing stopped or discarded: how far the robust joints move per unit lr
    out, n = run_correction(lifter, x, y, steps=1, lr=1e-4, stop_mm=0.0, discard_mm=1e9)
    ref = moved_mm(lifter, out, y) / 1e-4
    assert ref > 0 and n == {"clips": 3, "stopped_small": 0, "discarded": 0, "applied": 3, "steps_taken": 3}

    # < 5 mm: stop after the first step, the small correction kept
    out, n = run_correction(lifter, x, y, steps=2, lr=2.0 / ref)
    assert n == {"clips": 3, "stopped_small": 3, "discarded": 0, "applied": 3, "steps_taken": 3}
    assert 1.0 < moved_mm(lifter, out, y) < 5.0

    # > 20 mm: discarded, the uncorrected 3D returned exactly
    out, n = run_correction(lifter, x, y, steps=2, lr=50.0 / ref)
    assert n == {"clips": 3, "stopped_small": 0, "discarded": 3, "applied": 0, "steps_taken": 3}
    assert torch.equal(out, y)

    # in between (about 8 mm a step, two steps): applied, no rule stops it
    out, n = run_correction(lifter, x, y, steps=2, lr=8.0 / ref)
    assert n == {"clips": 3, "stopped_small": 0, "discarded": 0, "applied": 3, "steps_taken": 6}
    assert 5.0 < moved_mm(lifter, out, y) <= 20.0

    # the network's own weights never change (per-clip copies), so nothing leaks into the next clip
    assert all(torch.equal(before[k], v) for k, v in lifter.net.state_dict().items())


def test_correction_is_per_clip():
    """A clip's result does not depend on which other clips share its batch (independent Ψ_C copies)."""
    a = arrays(64)
    lifter = build_lifter(a, tiny_cfg())
    batch = fixed_batch(lifter, a, clip=6, n=4)
    torch.manual_seed(0)
    y = batch.y + 0.3 * torch.randn_like(batch.y)
    alone, _ = run_correction(lifter, batch.x[:1], y[:1], stop_mm=0.0, discard_mm=1e9)
    together, n = run_correction(lifter, batch.x, y, stop_mm=0.0, discard_mm=1e9, clips_per_batch=3)
    assert n["clips"] == 4 and n["steps_taken"] == 8
    assert torch.allclose(alone[0], together[0], atol=1e-5)
    assert not torch.allclose(together[0], y[0])


def test_predict_runs_the_correction_by_default_and_reports_its_counts():
    a = arrays(64)
    lifter = build_lifter(a, tiny_cfg())
    on = lifter.predict(a)
    counts = lifter.last_correction
    assert counts is not None and counts["clips"] == 8 and counts["applied"] + counts["discarded"] == 8
    off = lifter.predict(a, correction=False)
    assert lifter.last_correction is None and on.shape == off.shape == (64, J, 3)
    assert np.isfinite(on).all()
    # through detector noise with long temporal dropouts (whole frames missing) it stays finite
    from selfpose.lifting.noise import NoiseConfig

    noisy = lifter.predict(a, NoiseConfig(dropout_person_prob=0.3, dropout_joint_prob=0.2), seed=3)
    assert np.isfinite(noisy).all() and lifter.last_correction["clips"] == 8


# ---------------------------------------------------------------------------------------------- 2D-only data


@pytest.fixture
def cmu_dataset(tmp_path):
    ds = tmp_path / "ds"
    r = CliRunner().invoke(app, ["prepare", "mocap", str(cmu_motion()), "--out", str(ds), "max_frames=24"])
    assert r.exit_code == 0, r.output
    return ds


def forbid_3d(monkeypatch, subject: str) -> None:
    """Make reading ``joints3d`` of any sequence of ``subject`` fail the test."""
    from selfpose.data.store import SequenceRecord

    real = SequenceRecord.__getitem__

    def guarded(self, name):
        if name == "joints3d" and self.meta.subject == subject:
            raise AssertionError(f"the 3D of 2D-only sequence {self.meta.id} was read")
        return real(self, name)

    monkeypatch.setattr(SequenceRecord, "__getitem__", guarded)


def test_2d_only_subject_3d_is_never_read(cmu_dataset, tmp_path, monkeypatch):
    from selfpose.lifting.train import fit_lifter_run

    forbid_3d(monkeypatch, "test")
    from selfpose.data.store import Dataset

    rec = next(r for r in Dataset.open(cmu_dataset) if r.meta.subject == "test")
    with pytest.raises(AssertionError, match="2D-only"):
        rec["joints3d"]                                   # the guard is live

    seen = []
    joint = pm.joint_loss
    monkeypatch.setattr(pm, "joint_loss", lambda lifter, batch: (seen.append(batch.has3d.clone()), joint(lifter, batch))[1])
    cfg = tiny_cfg("train_subjects=train,test", "labels_3d=train", "steps=6", "pose_machine.projector_steps=2",
                   "pose_machine.joint_fraction=0.5", "eval_every=3")
    info = fit_lifter_run(cmu_dataset, tmp_path / "run", cfg, progress=False)
    assert info["subjects"] == ["test", "train"] and info["subjects_3d"] == ["train"]
    assert info["train_frames_3d"] < info["train_frames"]
    seen = torch.cat(seen)
    assert (~seen).any() and seen.any()        # the joint stage drew 2D-only windows (and labelled ones)


def test_input_stats_subjects_share_the_2d_only_runs_statistics_without_reading_3d(cmu_dataset, tmp_path,
                                                                                   monkeypatch):
    """The control for the 2D-only lever: a run trained on ``train`` only whose input z-scoring also saw ``test``'s 2D
    has exactly the statistics of the run that trains on ``test`` as 2D-only data, and never opens ``test``'s 3D."""
    from selfpose.lifting.train import fit_lifter_run
    from selfpose.lifting.model import Lifter

    base = ["steps=2", "pose_machine.projector_steps=1", "pose_machine.joint_fraction=0.5", "eval_every=2"]
    two_d = fit_lifter_run(cmu_dataset, tmp_path / "2d", tiny_cfg("train_subjects=train,test", "labels_3d=train", *base),
                           progress=False)
    plain = fit_lifter_run(cmu_dataset, tmp_path / "plain", tiny_cfg("train_subjects=train", *base), progress=False)
    forbid_3d(monkeypatch, "test")
    stats = fit_lifter_run(cmu_dataset, tmp_path / "stats",
                           tiny_cfg("train_subjects=train", "input_stats_subjects=train,test", *base), progress=False)
    assert stats["subjects"] == ["train"] and stats["train_frames"] == plain["train_frames"]
    assert stats["input_stats_frames"] == two_d["train_frames"] > plain["input_stats_frames"] == plain["train_frames"]
    a, b, c = (Lifter.load(tmp_path / n) for n in ("stats", "2d", "plain"))
    # the same frames (the order of summation differs: float32 rounding only)
    assert torch.allclose(a.in_mean, b.in_mean, rtol=1e-5, atol=1e-6) and torch.allclose(a.in_std, b.in_std, rtol=1e-5)
    assert not torch.equal(a.in_std, c.in_std)                 # the other subject's 2D did move them
    assert torch.equal(a.out_mean, c.out_mean)                 # targets: the 3D-labelled frames only, as before


def test_input_stats_subjects_config_errors(cmu_dataset, tmp_path):
    from selfpose.config import ConfigError
    from selfpose.lifting.model import LifterError
    from selfpose.lifting.train import fit_lifter_run

    with pytest.raises(ConfigError, match="validation people"):
        tiny_cfg("train_subjects=train", "val_subjects=test", "input_stats_subjects=test")
    with pytest.raises(ConfigError, match="input_stats_subjects"):
        tiny_cfg("keypoints_2d=somewhere", "input_stats_subjects=test")
    with pytest.raises(LifterError, match="S9 not in"):
        fit_lifter_run(cmu_dataset, tmp_path / "r", tiny_cfg("train_subjects=train", "input_stats_subjects=S9"),
                       progress=False)
    assert not (tmp_path / "r").exists()                       # refused before anything was written


def test_prepare_fit_evaluate_through_the_cli(cmu_dataset, tmp_path):
    run = CliRunner()
    out = tmp_path / "run"
    r = run.invoke(app, ["fit-lifter", "--data", str(cmu_dataset), "--out", str(out), "train_subjects=train", "steps=4",
                         "pose_machine.projector_steps=2", "eval_every=2", *TINY[1:]] + ["method=pose_machine"])
    assert r.exit_code == 0, r.output
    meta = json.loads((out / "lifter.json").read_text())
    assert meta["config"]["method"] == "pose_machine"
    assert [row["stage"] for row in meta["curve"]][-1] == "joint"
    res = {}
    for flag in ("--correction", "--no-correction"):
        r = run.invoke(app, ["evaluate", str(out), "--data", str(cmu_dataset), "--subjects", "test", flag, "--json"])
        assert r.exit_code == 0, r.output
        res[flag] = json.loads(r.stdout)
        assert res[flag]["overall"]["count"] == res[flag]["num_samples"] > 0
        assert all(np.isfinite(res[flag]["overall"][k]) for k in ("mpjpe", "n_mpjpe", "p_mpjpe"))
    c = res["--correction"]["correction"]
    assert c["clips"] > 0 and c["applied"] + c["discarded"] == c["clips"]
    assert res["--no-correction"]["correction"] is None


# ---------------------------------------------------------------------------------------------- resume


def test_resume_inside_the_projector_stage_gives_the_uninterrupted_weights(tmp_path, monkeypatch):
    a = arrays(96)
    cfg = tiny_cfg("steps=6", "pose_machine.joint_fraction=0.34", "pose_machine.projector_steps=6",
                   "checkpoint_every=2", "keep_checkpoints=0", "eval_every=2")
    # stages: transformer 4 steps (global 1-4), projector 6 (5-10), joint 2 (11-12)
    whole = fit_lifter(a, cfg, None, progress=False, run_dir=tmp_path / "whole")

    calls = {"n": 0}
    real = pm.projector_loss

    def interrupted(lifter, batch):
        calls["n"] += 1
        if calls["n"] == 5:      # projector step 5 = global step 9, after the checkpoint at global step 8
            raise KeyboardInterrupt
        return real(lifter, batch)

    monkeypatch.setattr(pm, "projector_loss", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fit_lifter(a, cfg, None, progress=False, run_dir=tmp_path / "cut")
    monkeypatch.setattr(pm, "projector_loss", real)
    saved = sorted(p.name for p in (tmp_path / "cut" / "checkpoints").iterdir())
    assert any("8" in s for s in saved) and not any("10" in s for s in saved), saved
    resumed = fit_lifter(a, cfg, None, progress=False, run_dir=tmp_path / "cut", resume=True)
    sd_w, sd_r = whole.net.state_dict(), resumed.net.state_dict()
    assert all(torch.equal(sd_w[k], sd_r[k]) for k in sd_w)
    assert resumed.info["steps_done"] == whole.info["steps_done"] == 12


def test_a_time_limit_shortens_every_stage_instead_of_skipping_the_last(monkeypatch):
    """With max_seconds each stage gets its share: a slow machine still reaches the joint stage."""
    from selfpose.lifting import loop

    clock = {"t": 0.0}
    monkeypatch.setattr(loop.time, "perf_counter", lambda: clock["t"])
    real = pm.transformer_loss

    def slow(lifter, batch):        # every transformer step "takes" 10 s of the 100 s budget
        clock["t"] += 10.0
        return real(lifter, batch)

    monkeypatch.setattr(pm, "transformer_loss", slow)
    a = arrays(64)
    cfg = tiny_cfg("steps=40", "pose_machine.projector_steps=3", "max_seconds=100", "eval_every=5")
    lifter = fit_lifter(a, cfg, None, progress=False)
    stages = [row["stage"] for row in lifter.info["curve"]]
    assert stages[-1] == "joint" and "projector" in stages
    assert lifter.info["stages_cut"] and lifter.info["stages_cut"][0].startswith("transformer@")
    assert not lifter.info["stopped_early"]


def test_joint_params_choose_what_the_joint_stage_updates():
    a = arrays(32)
    for choice, want in (("all", "net"), ("transformer", "transformer")):
        cfg = tiny_cfg("steps=4", f"pose_machine.joint_params={choice}")
        lifter = build_lifter(a, cfg)
        joint = [s for s in pm.pose_machine_stages(lifter, cfg) if s.name == "joint"][0]
        module = lifter.net if want == "net" else lifter.net.transformer
        assert {id(p) for p in joint.params(lifter.net)} == {id(p) for p in module.parameters()}
    from selfpose.config import ConfigError

    with pytest.raises(ConfigError):
        tiny_cfg("pose_machine.joint_params=projector")


def test_a_transformer_only_joint_stage_leaves_the_projector_as_its_stage_learnt_it(monkeypatch):
    a = arrays(64)
    cfg = tiny_cfg("steps=4", "pose_machine.joint_fraction=0.5", "pose_machine.projector_steps=2",
                   "pose_machine.joint_params=transformer", "pose_machine.joint_lr=0.01")
    snap = {}
    real = pm.joint_loss

    def first_joint_step(lifter, batch):   # the weights as the projector stage left them
        if not snap:
            snap.update({k: v.clone() for k, v in lifter.net.state_dict().items()})
        return real(lifter, batch)

    monkeypatch.setattr(pm, "joint_loss", first_joint_step)
    lifter = fit_lifter(a, cfg, None, progress=False)
    after = lifter.net.state_dict()
    frozen = [k for k in after if k.startswith(("corrector.", "projector."))]
    moved = [k for k in after if k.startswith("transformer.") and not torch.equal(after[k], snap[k])]
    assert frozen and all(torch.equal(after[k], snap[k]) for k in frozen) and moved
