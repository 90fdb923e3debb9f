"""Transfer by fine-tuning (selfpose.pose.finetune): exactly the first stages frozen, the rest trained."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from selfpose.config import ConfigError, from_dict
from selfpose.pose.finetune import FinetuneConfig, FinetuneError, freeze_for_finetuning, frozen_modules
from selfpose.pretrain import PretrainConfig

SMALL = dict(image_size=64, crop_size=32, detector_input=32, detector_width=8, encoder_width=8, v_dim=16,
             i_dim=16, decoder_channels=16, decoder_hidden=64)
TRAIN = {"steps": 4, "batch_size": 2, "checkpoint_every": 4, "picture_every": 100, "num_workers": 0, "threads": 1}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    from selfpose.data.synthetic.synthesize import SynthConfig, synthesize

    return synthesize(SynthConfig(scenario="lab", height=64, width=64, max_sequences=3, max_seconds=3,
                                  num_subjects=2), tmp_path_factory.mktemp("ft") / "lab", progress=False)


def _run(method, lab, path):
    from selfpose.pretrain import pretrain

    cfg = from_dict(PretrainConfig, {"method": method, "model": SMALL, "sampler": {"sync_max_offset_s": 1.0,
                                                                                   "d_pos_s": 0.2, "d_neg_s": 1.0},
                                     "loss": {"perceptual_width": 8, "jitter": False}, "train": TRAIN})
    pretrain(cfg, lab, path, progress=False)
    return path


def _state(module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("method", ["sync", "temporal"])
def test_finetuning_trains_exactly_the_later_stages(method, lab, tmp_path):
    from selfpose.pose.stage import PoseStageConfig, fit_pose_stage, load_pose
    from selfpose.pretrain import load_run

    run_dir = _run(method, lab, tmp_path / "run")
    before = load_run(run_dir).method
    backbone = before.finetune_backbone()
    # requires_grad after freezing: off on the stem and layer1..3 (and what the method keeps frozen), on elsewhere
    probe = load_run(run_dir).method
    frozen = freeze_for_finetuning(probe, 3)
    fb = probe.finetune_backbone()
    off = {id(p) for m in frozen for p in m.parameters()}
    for name in ("conv1", "bn1", "layer1", "layer2", "layer3"):
        assert all(not p.requires_grad for p in getattr(fb, name).parameters()), name
    assert all(p.requires_grad for p in fb.layer4.parameters())
    assert all(p.requires_grad == (id(p) not in off) for p in probe.parameters())
    if method == "temporal":   # the detector keeps the pretrained crop
        assert all(not p.requires_grad for p in probe.model.detector.parameters())

    cfg = from_dict(PoseStageConfig, {"pose": {"fraction": 0.5, "steps": 5},
                                      "finetune": {"enabled": True, "steps": 8, "eval_every": 4, "batch_size": 4,
                                                   "lr": 1e-3}})
    info = fit_pose_stage(run_dir, lab, tmp_path / "pose", cfg, progress=False)
    after = load_pose(tmp_path / "pose").method
    assert info["finetune"]["trained_parameters"] > 0 and info["encoder"]["finetuned"]
    a, b = _state(before), _state(after)
    prefix = {"sync": "encoder.", "temporal": "model.encoder.backbone."}[method]
    for key in a:
        stage = key[len(prefix):].split(".")[0] if key.startswith(prefix) else None
        if stage in ("conv1", "bn1", "layer1", "layer2", "layer3"):
            torch.testing.assert_close(b[key], a[key], rtol=0, atol=0, msg=key)   # weights and BN statistics
        if method == "temporal" and key.startswith("model.detector."):
            torch.testing.assert_close(b[key], a[key], rtol=0, atol=0, msg=key)
    changed = [k for k in a if k.startswith(prefix + "layer4") and k.endswith("weight") and not torch.equal(a[k], b[k])]
    assert changed, "layer4 did not train"


def test_finetune_errors(lab, tmp_path):
    from selfpose.methods.base import MethodError
    from selfpose.pretrain import load_run

    with pytest.raises(ConfigError, match="batch_size"):
        FinetuneConfig(batch_size=1)
    with pytest.raises(ConfigError, match="frozen_stages"):
        FinetuneConfig(frozen_stages=-1)
    from selfpose.pose.stage import PoseStageConfig

    for bad in (0, True):
        with pytest.raises(ConfigError, match="looks_per_subject"):
            PoseStageConfig(looks_per_subject=bad)
    m = load_run(_run("sync", lab, tmp_path / "run")).method
    with pytest.raises(FinetuneError, match="at most 4"):
        frozen_modules(m.finetune_backbone(), 5)
    assert len(frozen_modules(m.finetune_backbone(), 0)) == 2   # the stem only

    from selfpose.methods.base import Method

    class Bare(Method):
        def training_step(self, batch, step):
            raise NotImplementedError

        def pose_features(self, frames):
            return frames.flatten(1)

    with pytest.raises(MethodError, match="cannot be fine-tuned"):
        Bare().finetune_backbone()


def test_cli_finetune_flag(lab, tmp_path):
    from typer.testing import CliRunner

    from selfpose.cli import app

    run_dir = _run("sync", lab, tmp_path / "run")
    res = CliRunner().invoke(app, ["fit-pose", str(run_dir), "--data", str(lab), "--labels", "0.5", "--out",
                                   str(tmp_path / "pose"), "--finetune", "finetune.steps=4", "finetune.eval_every=2",
                                   "finetune.batch_size=4", "pose.steps=5"])
    assert res.exit_code == 0, res.output
    assert "fine-tuned" in res.output
    import json

    rec = json.loads((tmp_path / "pose" / "pose.json").read_text())
    assert rec["finetune"]["steps"] == 4 and rec["finetune"]["frozen_stages"] == 3
    assert np.isfinite(rec["val_n_mpjpe"])
    # --read: the run read with an override that changes no weight; one that would is a one-line error
    args = ["fit-pose", str(run_dir), "--data", str(lab), "--labels", "0.5", "pose.steps=5"]
    res = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "read"),
                                   "--read", "method_config.sync.pose_background=as_pretrained"])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "read" / "pose.json").read_text())["read"] == [
        "method_config.sync.pose_background=as_pretrained"]
    res = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "bad"), "--read", "model.encoder_width=4"])
    assert res.exit_code != 0 and "changes the weights" in res.output and "Traceback" not in res.output


def _finetuned(run_dir, lab, out, **finetune):
    from selfpose.pose.stage import PoseStageConfig, fit_pose_stage, load_pose

    cfg = from_dict(PoseStageConfig, {"pose": {"fraction": 0.5, "steps": 5},
                                      "finetune": {"enabled": True, "steps": 6, "eval_every": 3, "batch_size": 4,
                                                   "lr": 1e-3, **finetune}})
    info = fit_pose_stage(run_dir, lab, out, cfg, progress=False)
    return info, load_pose(out)


def test_head_warmup_trains_the_head_alone_then_everything(lab, tmp_path):
    from selfpose.pretrain import load_run

    run_dir = _run("sync", lab, tmp_path / "run")
    before = _state(load_run(run_dir).method)
    # every step a warm-up step: the head trains, the method (weights and batch-norm statistics) does not
    info, probed = _finetuned(run_dir, lab, tmp_path / "probe", head_warmup_steps=6)
    for k, v in _state(probed.method).items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0, msg=k)
    assert info["finetune"]["head_warmup_steps"] == 6 and np.isfinite(info["val_n_mpjpe"])
    # warm-up then fine-tuning: layer4 moves
    _, tuned = _finetuned(run_dir, lab, tmp_path / "tuned", head_warmup_steps=3, eval_every=6)   # keeps step 6
    after = _state(tuned.method)
    assert any(not torch.equal(after[k], before[k]) for k in before if k.startswith("encoder.layer4"))
    with pytest.raises(ConfigError, match="head_warmup_steps"):
        FinetuneConfig(steps=10, head_warmup_steps=11)


def test_method_lr_scale_slows_the_method_not_the_head(lab, tmp_path):
    from selfpose.pretrain import load_run

    run_dir = _run("sync", lab, tmp_path / "run")
    before = _state(load_run(run_dir).method)

    def moved(method) -> float:   # the largest change of a layer4 kernel
        s = _state(method)
        return max(float((s[k] - before[k]).abs().max()) for k in before
                   if k.startswith("encoder.layer4") and k.endswith("conv1.weight"))

    _, full = _finetuned(run_dir, lab, tmp_path / "full")
    _, slow = _finetuned(run_dir, lab, tmp_path / "slow", method_lr_scale=0.01)
    # Adam's step is ~lr whatever the gradient's size: a hundredth of the rate moves the kernels ~a hundredth
    assert 0 < moved(slow.method) < 0.1 * moved(full.method)
    with pytest.raises(ConfigError, match="method_lr_scale"):
        FinetuneConfig(method_lr_scale=0)


def test_scaled_groups_slow_the_method_only_and_keep_weight_decay_groups():
    from torch import nn

    from selfpose.training.config import OptimConfig
    from selfpose.training.toolkit import build_optimizer

    method, head = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)), nn.Linear(4, 2)
    method[0].bias.requires_grad_(False)                                       # a frozen parameter stays out
    fc = FinetuneConfig(lr=1e-3, weight_decay=0.05, method_lr_scale=0.1)
    both = nn.ModuleDict({"method": method, "head": head})
    plain = build_optimizer(both, OptimConfig(optimizer="adamw", lr=fc.lr, weight_decay=fc.weight_decay))
    opt = build_optimizer(both, OptimConfig(optimizer="adamw", lr=fc.lr, weight_decay=fc.weight_decay),
                          scaled=(method, fc.method_lr_scale))
    ids = lambda o: {id(p) for g in o.param_groups for p in g["params"]}      # noqa: E731
    assert ids(opt) == ids(plain)                                              # the same parameters
    where = {id(p): ("method" if any(p is q for q in method.parameters()) else "head") for p in both.parameters()}
    for g in opt.param_groups:
        kinds = {where[id(p)] for p in g["params"]}
        assert len(kinds) == 1
        assert g["base_lr"] == pytest.approx(1e-4 if kinds == {"method"} else 1e-3)
        assert g["weight_decay"] == (0.05 if g["params"][0].dim() >= 2 else 0.0)


def test_finetuning_reads_the_frames_as_pretrained_before_the_jitter(lab, tmp_path, monkeypatch):
    """With ``pose_background: as_pretrained`` fine-tuning hands ``pose_input`` the stored frames (not yet
    colour-jittered) with their stored background estimate; evaluation reads the same way, and a loaded pose
    folder asks for the backgrounds."""
    from selfpose.data.store import Dataset
    from selfpose.methods.sync import SyncMethod
    from selfpose.pose.stage import PoseStageError, evaluate_pose_stage
    from selfpose.pretrain import pretrain

    cfg = from_dict(PretrainConfig, {"method": "sync", "model": SMALL, "sampler": {"sync_max_offset_s": 1.0},
                                     "method_config": {"sync": {"pose_background": "as_pretrained"}},
                                     "train": TRAIN})
    pretrain(cfg, lab, tmp_path / "run", progress=False)
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    original = SyncMethod.pose_input

    def spy(self, frames, background):
        seen.append((frames.detach().clone(), background.detach().clone()))
        return original(self, frames, background)

    monkeypatch.setattr(SyncMethod, "pose_input", spy)
    info, pose = _finetuned(tmp_path / "run", lab, tmp_path / "pose", colour_jitter=0.5)
    assert len(seen) >= 6 and np.isfinite(info["val_n_mpjpe"])
    frames, bg = seen[0]                               # the first training batch
    torch.testing.assert_close(frames * 255, (frames * 255).round(), atol=1e-4, rtol=0)   # not jittered yet
    stored = {np.asarray(s["background"]).tobytes() for s in Dataset.open(lab).sequences}
    assert all((b.permute(1, 2, 0) * 255).round().byte().numpy().tobytes() in stored for b in bg)
    n = len(seen)
    res = evaluate_pose_stage(tmp_path / "pose", lab, progress=False)
    assert len(seen) > n and np.isfinite(res["overall"]["mpjpe"])
    x = torch.zeros(2, 3, 64, 64, dtype=torch.uint8)
    boxes = torch.tensor([10.0, 4.0, 44.0, 60.0]).expand(2, 4)
    with pytest.raises(PoseStageError, match="background"):
        pose.predict_frames(x, boxes)
    assert pose.predict_frames(x, boxes, background=x)["joints3d"].shape == (2, 17, 3)


def test_fit_pose_reads_an_older_run_as_pretrained(lab, tmp_path):
    """``fit-pose --read``: a run made with ``pose_background: keep`` is read as pretrained without changing its
    files; the pose folder keeps the config it was read with (frozen and fine-tuned alike) and records ``read``;
    a key that would change the weights is a one-line error."""
    import json

    from selfpose.pose.stage import PoseStageConfig, fit_pose_stage, load_pose
    from selfpose.pretrain import load_run

    run_dir = _run("sync", lab, tmp_path / "run")
    before = (run_dir / "config.yaml").read_bytes()
    assert not load_run(run_dir).method.reads_background
    read = ["method_config.sync.pose_background=as_pretrained"]
    for finetune in (False, True):
        cfg = from_dict(PoseStageConfig, {"pose": {"fraction": 0.5, "steps": 5},
                                          "finetune": {"enabled": finetune, "steps": 4, "eval_every": 2,
                                                       "batch_size": 4}})
        out = tmp_path / f"pose_{finetune}"
        info = fit_pose_stage(run_dir, lab, out, cfg, progress=False, read=read)
        assert info["read"] == read and json.loads((out / "pose.json").read_text())["read"] == read
        loaded = load_pose(out)
        assert loaded.method.reads_background
        assert loaded.run.config.method_config["sync"]["pose_background"] == "as_pretrained"
    assert (run_dir / "config.yaml").read_bytes() == before          # the run itself is untouched
    frozen = load_pose(tmp_path / "pose_False")
    for k, v in load_run(run_dir).method.state_dict().items():       # the same weights, read another way
        torch.testing.assert_close(frozen.method.state_dict()[k], v, rtol=0, atol=0)
    cfg = from_dict(PoseStageConfig, {"pose": {"fraction": 0.5, "steps": 5}})
    with pytest.raises(ConfigError, match="changes the weights"):
        fit_pose_stage(run_dir, lab, tmp_path / "bad", cfg, progress=False, read=["method_config.sync.hidden=17"])
    assert not (tmp_path / "bad").exists()
