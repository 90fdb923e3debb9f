"""Precision helpers: bf16 detection, autocast, channels-last."""

from __future__ import annotations

import pytest
import torch

from selfpose.training import precision as P


def test_resolve(monkeypatch):
    monkeypatch.setattr(P, "cpu_flags", lambda: frozenset({"avx2", "avx512_bf16"}))
    assert P.bf16_supported() and P.resolve_precision("auto") == "bf16"
    monkeypatch.setattr(P, "cpu_flags", lambda: frozenset({"avx2"}))
    assert not P.bf16_supported() and P.resolve_precision("auto") == "fp32"
    assert P.resolve_precision("bf16") == "bf16"
    with pytest.raises(P.PrecisionError, match="fp32, bf16 or auto"):
        P.resolve_precision("fp16")


def test_autocast_and_layout():
    a, b = torch.rand(4, 4), torch.rand(4, 4)
    with P.autocast("bf16"):
        assert (a @ b).dtype == torch.bfloat16
    with P.autocast("fp32"):
        assert (a @ b).dtype == torch.float32
    conv = P.to_channels_last(torch.nn.Conv2d(3, 4, 3))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    x = P.to_channels_last(torch.rand(1, 3, 8, 8))
    assert x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    v = torch.rand(3, 8)
    assert P.to_channels_last(v) is v


def test_cpu_facts_are_strings():
    assert isinstance(P.cpu_name(), str) and isinstance(P.cpu_flags(), frozenset)


def test_bf16_enabled_follows_the_cpu_only_for_auto(monkeypatch):
    monkeypatch.setattr(P, "cpu_flags", lambda: frozenset({"avx2", "amx_bf16"}))
    assert P.bf16_enabled("auto") and P.bf16_enabled(True) and not P.bf16_enabled(False)
    monkeypatch.setattr(P, "cpu_flags", lambda: frozenset({"avx2"}))
    assert not P.bf16_enabled("auto") and P.bf16_enabled(True)
    with pytest.raises(P.PrecisionError, match="true, false or auto"):
        P.bf16_enabled("yes please")
    a = torch.rand(4, 4)
    with P.bf16_autocast("auto"):
        assert (a @ a).dtype == torch.float32      # this CPU (mocked): no native bf16
    with P.bf16_autocast(True):
        assert (a @ a).dtype == torch.bfloat16


def test_configs_take_auto_and_the_pose_machine_resolves_it(monkeypatch):
    from selfpose.config import ConfigError, from_dict
    from selfpose.lifting.config import PoseMachineConfig
    from selfpose.lifting.pose_machine import build_pose_machine
    from selfpose.pose.supervised import SupervisedConfig

    assert from_dict(SupervisedConfig, {"autocast": "auto"}).autocast == "auto"
    assert from_dict(SupervisedConfig, {"autocast": "true"}).autocast is True
    with pytest.raises(ConfigError):
        from_dict(SupervisedConfig, {"autocast": "sometimes"})
    assert PoseMachineConfig().bf16 == "auto"

    class Cfg:
        pose_machine = PoseMachineConfig(hidden=8, conv_channels=(4, 4))

    for flags, want in ((frozenset({"avx512_bf16"}), True), (frozenset({"avx2"}), False)):
        monkeypatch.setattr(P, "cpu_flags", lambda flags=flags: flags)
        assert build_pose_machine(53, 51, Cfg()).transformer.bf16 is want
