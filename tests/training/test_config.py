"""Training config: strict keys, validation, stages, saving."""

from __future__ import annotations

import pytest

from selfpose.config import ConfigError, from_dict, load
from selfpose.training.config import (OptimConfig, RunConfig, TrainConfig, config_diff, config_dict, config_hash,
                                      save_config)


def test_strict_and_validated():
    with pytest.raises(ConfigError, match="did you mean train.batch_size"):
        from_dict(RunConfig, {"train": {"batchsize": 3}})
    with pytest.raises(ConfigError, match="precision must be one of"):
        from_dict(RunConfig, {"train": {"precision": "fp16"}})
    with pytest.raises(ConfigError, match="stage2_step"):
        TrainConfig(steps=10, stage2_step=10)
    with pytest.raises(ConfigError, match="optim.lr"):
        OptimConfig(lr=0)
    with pytest.raises(ConfigError, match="train.steps"):
        TrainConfig(steps=0)
    cfg = from_dict(RunConfig, {"optim": {"betas": [0.5, 0.9]}, "train": {"threads": None}})
    assert cfg.optim.betas == (0.5, 0.9) and cfg.train.threads is None


def test_stages():
    one = TrainConfig(steps=10)
    assert [one.stage_at(s) for s in (0, 9)] == [1, 1] and one.stage_bounds(1) == (0, 10)
    two = TrainConfig(steps=10, stage2_step=4)
    assert [two.stage_at(s) for s in (0, 3, 4, 9)] == [1, 1, 2, 2]
    assert two.stage_bounds(1) == (0, 4) and two.stage_bounds(2) == (4, 10)


def test_save_load_hash_diff(tmp_path):
    cfg = RunConfig(OptimConfig(lr=0.01), TrainConfig(steps=7, stage2_step=3))
    path = save_config(cfg, tmp_path / "config.yaml")
    assert load(RunConfig, path) == cfg
    other = load(RunConfig, path, ["train.steps=8"])
    assert config_hash(other) != config_hash(cfg) and config_hash(load(RunConfig, path)) == config_hash(cfg)
    assert config_diff(config_dict(cfg), config_dict(other)) == ["train.steps: 7 → 8"]


def test_one_config_comparer():
    from selfpose.training.config import changed_keys, config_changes

    old = {"optim": {"betas": [0.9, 0.999], "lr": 1e-3, "gone": 1}, "steps": 5}
    new = {"optim": {"betas": (0.9, 0.999), "lr": 2e-3, "added": 0}, "steps": 5}
    # JSON-equal values (a YAML list, a dataclass tuple) are equal; one-sided keys count unless shared_only.
    assert config_changes(old, new) == [("optim.added", None, 0), ("optim.gone", 1, None), ("optim.lr", 1e-3, 2e-3)]
    assert config_diff(old, new)[-1] == "optim.lr: 0.001 → 0.002"
    assert changed_keys(old, new) == ["optim.lr"]


def test_added_fields_stay_out_of_the_hash_at_their_neutral_value():
    from dataclasses import dataclass, field

    from selfpose.config import added_field, neutral_keys, to_dict

    @dataclass
    class Inner:
        a: float = 1.0
        new: float = added_field(0.0)

    @dataclass
    class Outer:
        inner: Inner = field(default_factory=Inner)
        flag: str = added_field("off")

    @dataclass
    class Before:        # the same config before `new` and `flag` existed
        inner: dict = field(default_factory=lambda: {"a": 1.0})

    assert neutral_keys(Outer()) == [("inner", "new"), ("flag",)]
    assert config_hash(Outer()) == config_hash(Before())
    assert config_hash(Outer(Inner(new=0.5))) != config_hash(Outer())
    assert config_hash(Outer(flag="on")) != config_hash(Outer())
    assert "new" in to_dict(Outer())["inner"]          # still written to config.yaml


def test_pretrain_hash_unchanged_by_the_structural_loss_keys_and_the_device():
    # A run saved before loss.w_ssim / w_grad / grad_distance / w_lap / lap_levels / w_arrow, train.device,
    # sampler.flip_unsync / sync_instants or init_from existed
    # resumes with the same hash: its config.yaml loads with the keys at their defaults, which do not count.
    from selfpose.pretrain import PretrainConfig

    cfg = PretrainConfig()
    old = config_dict(cfg)
    for k in ("w_ssim", "w_grad", "grad_distance", "w_lap", "lap_levels", "w_arrow"):
        old["loss"].pop(k)
    old["train"].pop("device")
    old["sampler"].pop("flip_unsync")
    old["sampler"].pop("sync_instants")
    old.pop("init_from")
    import hashlib
    import json

    assert config_hash(cfg) == hashlib.sha256(json.dumps(old, sort_keys=True, default=str).encode()).hexdigest()[:16]
    assert config_hash(from_dict(PretrainConfig, {"sampler": {"sync_instants": 8}})) != config_hash(cfg)
    assert config_hash(from_dict(PretrainConfig, {"loss": {"w_ssim": 1.0}})) != config_hash(cfg)
    assert config_hash(from_dict(PretrainConfig, {"loss": {"w_arrow": 1.0}})) != config_hash(cfg)
    assert config_hash(from_dict(PretrainConfig, {"train": {"device": "cuda"}})) != config_hash(cfg)


def test_a_method_sections_added_fields_stay_out_of_the_hash():
    # method_config is plain data: a sync run saved before feature_norm existed keeps its hash, and
    # one before sampler.flip_unsync existed too; a changed value counts.
    from selfpose.pretrain import PretrainConfig

    cfg = from_dict(PretrainConfig, {"method": "sync", "method_config": {"sync": {}}})   # as a run saves it
    assert cfg.method_config["sync"]["feature_norm"] == "none"
    import copy

    old = copy.deepcopy(config_dict(cfg))   # plain-data sections come by reference
    old["method_config"]["sync"].pop("feature_norm")
    old["method_config"]["sync"].pop("rows")
    old["method_config"]["sync"].pop("pose_rows")
    old["method_config"]["sync"].pop("pose_background")
    old["sampler"].pop("flip_unsync")
    old["sampler"].pop("sync_instants")
    for k in ("w_ssim", "w_grad", "grad_distance", "w_lap", "lap_levels", "w_arrow"):   # older additions
        old["loss"].pop(k)
    old["train"].pop("device")
    old.pop("init_from")
    import hashlib
    import json

    assert config_hash(cfg) == hashlib.sha256(json.dumps(old, sort_keys=True, default=str).encode()).hexdigest()[:16]
    # hashing leaves the live config whole (it once popped the neutral keys out of method_config itself)
    assert {"feature_norm", "rows", "pose_rows", "pose_background"} <= set(cfg.method_config["sync"])
    on = from_dict(PretrainConfig, {"method": "sync", "method_config": {"sync": {"feature_norm": "batch"}}})
    assert config_hash(on) != config_hash(cfg)
    bands = from_dict(PretrainConfig, {"method": "sync", "method_config": {"sync": {"pose_rows": 2}}})
    assert config_hash(bands) != config_hash(cfg)
    masked = from_dict(PretrainConfig, {"method": "sync", "method_config": {"sync": {"pose_background": "as_pretrained"}}})
    assert config_hash(masked) != config_hash(cfg)
    assert config_hash(from_dict(PretrainConfig, {"method": "sync", "sampler": {"flip_unsync": True}})) \
        != config_hash(cfg)
