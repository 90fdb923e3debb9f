"""The shipped YAML configs are valid (strict keys) — a renamed field must not silently orphan them."""

from pathlib import Path

import pytest

from selfpose.config import load
from selfpose.pretrain import PretrainConfig

# Pretraining configs; configs/benchmark_*.yaml and lifting_*.yaml are benchmark configs (tests/bench),
# lifter_*.yaml are fit-lifter configs (below).
CONFIGS = sorted(p for p in (Path(__file__).resolve().parents[1] / "configs").glob("*.yaml")
                 if not p.name.startswith(("benchmark_", "lifting_", "lifter_")))
LIFTER_CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("lifter_*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_loads(path):
    cfg = load(PretrainConfig, path)
    # the file's method is the one its name says (temporal_*.yaml, sync_*.yaml)
    assert cfg.method == path.name.split("_")[0] and cfg.train.steps > 0


def test_there_are_configs():
    assert len(CONFIGS) >= 3


@pytest.mark.parametrize("path", LIFTER_CONFIGS, ids=lambda p: p.name)
def test_lifter_config_loads(path):
    from selfpose.lifting.config import load_lifter_config

    cfg = load_lifter_config(path, [])
    assert cfg.method in ("martinez", "temporal_conv", "pose_machine") and cfg.steps > 0


def test_the_video_lifter_config_is_the_pose_machine_with_measured_person_relative_noise():
    from selfpose.lifting.config import load_lifter_config

    cfg = load_lifter_config(Path(__file__).resolve().parents[1] / "configs" / "lifter_video.yaml", [])
    assert cfg.method == "pose_machine" and cfg.train_noise and cfg.noise.person_px == 320.0
    assert cfg.pose_machine.hidden == 512 and cfg.max_seconds == 1800   # the method's reported defaults underneath
    assert len(cfg.noise.jitter_joint_scale) == 17
