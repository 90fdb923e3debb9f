"""A method that is not the temporal model, defined and registered here through the public function only,
goes through pretrain → fit-pose → evaluate → predict → analyze → benchmark with no library file touched."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from selfpose.config import ConfigError, from_dict, load
from selfpose.methods import Method, MethodError, register_method, unregister_method

NAME = "tiny_ae"


@dataclass
class TinyAEConfig:
    """The method's own section: ``method_config.tiny_ae``."""

    width: int = 8
    dim: int = 12
    image_size: int = 32

    def __post_init__(self) -> None:
        if self.dim < 1 or self.image_size % 4:
            raise ConfigError(f"method_config.tiny_ae: need dim >= 1 and image_size a multiple of 4, got {self}")


class TinyAE(Method):
    """A two-layer conv autoencoder on single frames: reconstruction loss, no detector, no decoder of poses."""

    def __init__(self, cfg: TinyAEConfig):
        super().__init__()
        self.cfg = cfg
        w, q = cfg.width, cfg.image_size // 4
        self.encoder = nn.Sequential(nn.Conv2d(3, w, 4, 2, 1), nn.ReLU(), nn.Conv2d(w, w, 4, 2, 1), nn.ReLU(),
                                     nn.Flatten(), nn.Linear(w * q * q, cfg.dim))
        self.decoder = nn.Sequential(nn.Linear(cfg.dim, 3 * q * q), nn.Unflatten(1, (3, q, q)),
                                     nn.Upsample(scale_factor=4), nn.Sigmoid())

    @property
    def input_size(self) -> int:
        return self.cfg.image_size

    @property
    def feature_dim(self) -> int:
        return self.cfg.dim

    def batch_labels(self, stage: int) -> list[str]:
        return []   # frames only

    def pose_features(self, frames: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.prepare_frames(frames))

    def training_step(self, batch: dict, step: int):
        x = self.prepare_frames(batch["frames"].reshape(-1, *batch["frames"].shape[-3:]))
        loss = F.mse_loss(self.decoder(self.encoder(x)), x)
        return loss, {"tiny_recon": loss.item()}


def _build(cfg, two_stage: bool, section: TinyAEConfig) -> TinyAE:
    return TinyAE(section)


@pytest.fixture(scope="module")
def registered():
    register_method(NAME, _build, config_cls=TinyAEConfig, sampler="dsl")
    yield NAME
    unregister_method(NAME)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from selfpose.data.synthetic.synthesize import SynthConfig, synthesize

    root = tmp_path_factory.mktemp("plugin")
    small = dict(scenario="lab", height=48, width=48, max_sequences=3, max_seconds=3, num_subjects=2)
    train = synthesize(SynthConfig(**small, subjects=("train",)), root / "train", progress=False)
    test = synthesize(SynthConfig(**small, subjects=("test",), seed=1, subject_prefix="Q"), root / "test",
                      progress=False)
    return train, test


TRAIN = {"steps": 4, "batch_size": 2, "checkpoint_every": 4, "picture_every": 4, "num_workers": 0, "threads": 1}


def _config(**section):
    from selfpose.pretrain import PretrainConfig

    return from_dict(PretrainConfig, {"method": NAME, "method_config": {NAME: section},
                                      "sampler": {"d_pos_s": 0.2, "d_neg_s": 1.0}, "train": TRAIN})


def test_registration_is_checked(registered):
    with pytest.raises(MethodError, match="already registered"):
        register_method(NAME, _build)
    with pytest.raises(MethodError, match="unknown sampler"):
        register_method("tiny_other", _build, sampler="no_such_sampler")
    with pytest.raises(ConfigError, match="unknown config key 'method_config.tiny_ae.widht'"):
        _config(widht=4)
    with pytest.raises(ConfigError, match="unknown section 'method_config.nope'"):
        from selfpose.pretrain import PretrainConfig

        from_dict(PretrainConfig, {"method": NAME, "method_config": {"nope": {}}})


def test_section_from_a_file_and_overrides(registered, tmp_path):
    from selfpose.pretrain import PretrainConfig

    p = tmp_path / "tiny.yaml"
    p.write_text(f"method: {NAME}\nmethod_config:\n  {NAME}:\n    width: 4\n")
    cfg = load(PretrainConfig, p, [f"method_config.{NAME}.dim=6"])
    assert cfg.method_config[NAME] == {"width": 4, "dim": 6, "image_size": 32}   # defaults filled, strictly read


# a flat synthetic clip has no SIFT texture: the background estimate warns and assumes a static camera
@pytest.mark.filterwarnings("ignore::selfpose.data.backgrounds.BackgroundWarning")
def test_pretrain_fit_evaluate_predict_analyze(registered, tiny_data, tmp_path):
    from selfpose.pose.stage import (PoseStageConfig, analyze_run, evaluate_pose_stage, fit_pose_stage,
                                     load_pose, predict_with_pose)
    from selfpose.pretrain import load_run, pretrain

    train, test = tiny_data
    pretrain(_config(dim=10), train, tmp_path / "run", progress=False)
    run = load_run(tmp_path / "run")
    assert isinstance(run.method, TinyAE) and run.method.name == NAME and run.step == 4
    assert run.method.sampler_kind(1) == "dsl"                               # named at registration
    assert "tiny_recon" in (tmp_path / "run" / "metrics.csv").read_text().splitlines()[0]
    assert run.config.method_config[NAME]["dim"] == 10

    pose_cfg = from_dict(PoseStageConfig, {"pose": {"fraction": 1.0, "steps": 10}, "autocast": False})
    fit = fit_pose_stage(tmp_path / "run", train, tmp_path / "pose", pose_cfg, progress=False)
    assert fit["num_labelled"] > 0 and fit["method"] == NAME and fit["encoder"]["step"] == 4
    res = evaluate_pose_stage(tmp_path / "pose", test, progress=False)
    assert np.isfinite(res["overall"]["n_mpjpe"])
    assert not np.isfinite(res["box_iou"])   # no detector, so no boxes to score

    lp = load_pose(tmp_path / "pose")
    x = torch.randint(0, 256, (3, 3, 48, 48), dtype=torch.uint8)
    out = lp.predict_frames(x)
    assert out["joints3d"].shape == (3, 17, 3) and out["boxes"] is None and out["features"].shape == (3, 10)

    from selfpose.viz.video import write_video

    f = np.full((6, 40, 64, 3), 120, np.uint8)
    for t in range(6):
        f[t, 8:32, 10 + 3 * t:22 + 3 * t] = 30
    video = write_video(tmp_path / "clip.mp4", f, fps=10)
    pred = predict_with_pose(tmp_path / "pose", video, tmp_path / "pred", progress=False)
    (s,) = pred["videos"]
    z = np.load(tmp_path / "pred" / "clip" / "joints3d.npz")
    assert s["num_frames"] == 6 and s["decoder"] is False and s["stored_size"] == 32
    assert z["joints3d"].shape == (6, 17, 3) and np.allclose(z["theta"], [1, 1, 0, 0])   # whole frame: no detector

    with pytest.raises(MethodError, match="cannot draw transfers"):
        lp.method.draw_transfers(x, ["a", "b", "c"])
    ana = analyze_run(tmp_path / "pose", train, tmp_path / "ana", labels=0.5, pose_steps=5, progress=False)
    assert ana["kmeans_i"] is None and 0 <= ana["kmeans_v"] <= 1 and "transfers" not in ana
    assert ana["encoder"]["step"] == 4 and json.loads((tmp_path / "ana" / "analysis.json").read_text())


def test_benchmark_runs_the_registered_method(registered, tiny_data, tmp_path):
    import yaml
    from typer.testing import CliRunner

    from selfpose.bench.config import BenchmarkConfig
    from selfpose.bench.run import run_benchmark
    from selfpose.cli import app

    train, test = tiny_data
    bench = {"methods": [NAME], "references": ["mean_pose"], "shares": [1.0], "seeds": [0], "steps": 2,
             "pose_steps": 5, "pretrain_config": None,
             "pretrain": {"method_config": {NAME: {"dim": 8}}, "sampler": {"d_pos_s": 0.2, "d_neg_s": 1.0},
                          "train": {"batch_size": 2, "threads": 1, "num_workers": 0}},
             "data": {"train_dir": str(train), "test_dir": str(test)}}
    (tmp_path / "bench.yaml").write_text(yaml.safe_dump(bench))
    work = tmp_path / "work"
    r = CliRunner().invoke(app, ["benchmark", "--config", str(tmp_path / "bench.yaml"), "--work", str(work)])
    assert r.exit_code == 0, r.output
    # the run, its cell, the mean-pose cell, and how well its code tells the people apart
    assert "4 piece(s) computed, 2 cells" in r.output
    res = run_benchmark(from_dict(BenchmarkConfig, bench), work, progress=False, log=lambda s: None)
    assert res["computed"] == []                                 # the library sees the same cached cells
    cell = res["cells"][f"{NAME}_s0_1"]
    assert cell["name"] == NAME and np.isfinite(cell["n_mpjpe"]) and cell["labelled"] > 0
    assert cell["box_iou"] is None             # no detector: no box to score
    assert res["analysis"] == {}   # no appearance code: nothing to disentangle
    assert res["persons"][NAME]["test_people"]["i"] is None
    assert NAME in (work / "results.md").read_text()


PLUGIN = """
from selfpose.methods import register_method
from selfpose.methods.base import Method


class EnvPlugin(Method):
    def training_step(self, batch, step):
        raise NotImplementedError

    def pose_features(self, frames):
        raise NotImplementedError


register_method("env_plugin", lambda cfg, two_stage, section: EnvPlugin(), sampler="dsl")
"""


def test_plugins_named_in_the_environment_are_registered(tmp_path, monkeypatch):
    import sys

    from selfpose.bench.config import BenchmarkConfig
    from selfpose.methods import method_names

    (tmp_path / "selfpose_env_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("SELFPOSE_PLUGINS", "selfpose_env_plugin")
    try:
        assert "env_plugin" in method_names() and "env_plugin" not in method_names(builtin_only=True)
        assert from_dict(BenchmarkConfig, {"methods": ["env_plugin"]}).methods == ("env_plugin",)
        monkeypatch.setenv("SELFPOSE_PLUGINS", "selfpose_no_such_plugin")
        with pytest.raises(MethodError, match="SELFPOSE_PLUGINS names 'selfpose_no_such_plugin'"):
            method_names()
    finally:
        unregister_method("env_plugin")
        sys.modules.pop("selfpose_env_plugin", None)
