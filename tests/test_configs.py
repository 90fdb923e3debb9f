"""The shipped YAML configs are valid (strict keys) — a renamed field must not silently orphan them."""

from pathlib import Path

import pytest

from selfpose.config import load
from selfpose.pretrain import PretrainConfig

# Pretraining configs; configs/benchmark_*.yaml and lifting_*.yaml are benchmark configs (tests/bench).
CONFIGS = sorted(p for p in (Path(__file__).resolve().parents[1] / "configs").glob("*.yaml")
                 if not p.name.startswith(("benchmark_", "lifting_")))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_loads(path):
    cfg = load(PretrainConfig, path)
    assert cfg.method == "temporal" and cfg.train.steps > 0


def test_there_are_configs():
    assert len(CONFIGS) >= 3
