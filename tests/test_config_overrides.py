"""A ``key=value`` override changes that key only: every other default stays, for every stage's config.

For each config class the CLI loads, every scalar leaf is overridden in turn
(with and without a config file) and the whole resolved config is compared
with the defaults: exactly one leaf may differ.
"""

from __future__ import annotations

import importlib
import math

import pytest
import yaml

from selfpose.config import ConfigError, load, to_dict

CLASSES = [
    ("selfpose.data.synthetic.synthesize", "SynthConfig"),
    ("selfpose.data.datasets", "PrepareConfig"),
    ("selfpose.pretrain", "PretrainConfig"),
    ("selfpose.pose.stage", "PoseStageConfig"),
    ("selfpose.pose.supervised", "SupervisedConfig"),
    ("selfpose.bench.config", "BenchmarkConfig"),
    ("selfpose.training.config", "RunConfig"),
    ("selfpose.lifting.noise", "NoiseConfig"),
]


def _cls(module: str, name: str):
    return getattr(importlib.import_module(module), name)


def _leaves(d: dict, prefix: str = "") -> dict[str, object]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_leaves(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def _changed(v):
    """Another valid-looking value of the same type (None when there is no obvious one)."""
    if isinstance(v, bool):
        return not v
    if isinstance(v, int):
        return v + 1
    if isinstance(v, float):
        return 0.5 if v == 0 else (v * 0.5 if math.isfinite(v) else None)
    return None


@pytest.mark.parametrize("module,name", CLASSES, ids=[c[1] for c in CLASSES])
def test_each_override_changes_only_its_key(module, name, tmp_path):
    cls = _cls(module, name)
    base = _leaves(to_dict(cls()))
    tried = with_file = 0
    for key, value in base.items():
        new = _changed(value)
        if new is None:
            continue
        try:
            cfg = load(cls, None, [f"{key}={new}"])
        except ConfigError:
            continue   # the changed value is out of this key's valid range: nothing to compare
        got = _leaves(to_dict(cfg))
        diff = {k for k in set(base) | set(got) if base.get(k) != got.get(k)}
        assert diff == {key}, f"{name}: overriding {key} changed {sorted(diff)}"
        tried += 1
        # With --config: a file that sets a sibling of the key in the same section keeps it (and the
        # section's other defaults) when the key is overridden. (A file's free-form mapping, such as the
        # benchmark's data.test, states the whole of it: such a section is skipped here.)
        parent = key.rpartition(".")[0]
        sibling = next((k for k, v in base.items() if k != key and k.rpartition(".")[0] == parent
                        and _changed(v) is not None), None)
        if sibling is None:
            continue
        f = tmp_path / "c.yaml"
        f.write_text(yaml.safe_dump(_nested(sibling, _changed(base[sibling]))))
        try:
            from_file = _leaves(to_dict(load(cls, f)))
            cfg = load(cls, f, [f"{key}={new}"])
        except ConfigError:
            continue
        if {k for k in set(base) | set(from_file) if base.get(k) != from_file.get(k)} != {sibling}:
            continue
        got = _leaves(to_dict(cfg))
        diff = {k for k in set(base) | set(got) if base.get(k) != got.get(k)}
        assert diff == {key, sibling}, f"{name}: {sibling} in a file, overriding {key} changed {sorted(diff)}"
        with_file += 1
    assert tried >= min(3, len(base)), f"{name}: only {tried} keys could be overridden"
    assert with_file >= 1, f"{name}: no override was tried over a config file"


def _nested(dotted: str, value) -> dict:
    out: dict = {}
    d = out
    *heads, last = dotted.split(".")
    for h in heads:
        d = d.setdefault(h, {})
    d[last] = value
    return out


def test_optim_override_keeps_the_pretraining_warmup(tmp_path):
    from selfpose.pretrain import PretrainConfig

    assert PretrainConfig().optim.warmup_steps == 100
    assert load(PretrainConfig, None, ["optim.lr=0.002"]).optim.warmup_steps == 100
    # A file that names one optim key keeps the section's other defaults too.
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump({"optim": {"lr": 0.002}}))
    cfg = load(PretrainConfig, f, ["optim.weight_decay=0.1"])
    assert (cfg.optim.lr, cfg.optim.weight_decay, cfg.optim.warmup_steps) == (0.002, 0.1, 100)


def test_benchmark_test_override_keeps_the_rest_of_the_section(tmp_path):
    from selfpose.bench.config import BenchmarkConfig

    default_test = dict(BenchmarkConfig().data.test)
    cfg = load(BenchmarkConfig, None, ["data.test.seed=7"])
    assert cfg.data.test == {**default_test, "seed": 7}
    # Over a file, the file's section is the base the override changes.
    f = tmp_path / "b.yaml"
    f.write_text(yaml.safe_dump({"pretrain_config": None,
                                 "data": {"test": {"scenario": "lab", "subjects": ["S8"], "seed": 3}}}))
    cfg = load(BenchmarkConfig, f, ["data.test.seed=4"])
    assert cfg.data.test == {"scenario": "lab", "subjects": ["S8"], "seed": 4}
