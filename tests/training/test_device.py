"""Device names, batches moved to the device, and precision per device (selfpose.training.device, .precision)."""

from __future__ import annotations

import pytest
import torch

from selfpose.config import ConfigError
from selfpose.training.config import TrainConfig
from selfpose.training.device import resolve_device, to_device
from selfpose.training.precision import autocast, full_precision, resolve_precision


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_names_resolve(no_gpu):
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cpu")   # no GPU seen: the CPU


def test_auto_takes_the_gpu_torch_sees(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")


@pytest.mark.parametrize("name", ["gpu", "CUDA", "cuda:x", "", "cpu "])
def test_unknown_names_are_config_errors(name):
    with pytest.raises(ConfigError, match=r"pose.device must be cpu, cuda, cuda:N or auto"):
        resolve_device(name, "pose.device")


def test_a_gpu_that_is_not_there(no_gpu, monkeypatch):
    with pytest.raises(ConfigError, match=r"^train.device=cuda:0 but this torch .* sees no CUDA GPU"):
        resolve_device("cuda:0", "train.device")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(ConfigError, match=r"torch sees 2 GPU\(s\) \(cuda:0 to cuda:1\)"):
        resolve_device("cuda:2", "train.device")


def test_train_config_checks_the_device_and_its_process_count():
    assert TrainConfig(device="cuda:1").device == "cuda:1"   # availability is checked when the run starts
    with pytest.raises(ConfigError, match="train.device must be"):
        TrainConfig(device="tpu")
    with pytest.raises(ConfigError, match="processes=2 is CPU data-parallel.*use processes: 1"):
        TrainConfig(device="cuda", processes=2)
    assert TrainConfig(device="auto", processes=2).processes == 2   # auto on a CPU machine is the CPU (checked at run)


def test_to_device_moves_every_tensor_and_keeps_the_rest():
    batch = {"frames": torch.zeros(2, 3), "meta": {"ids": [torch.ones(1), "take1"]}, "k": 4,
             "pair": (torch.zeros(1), None)}
    out = to_device(batch, torch.device("meta"))
    assert out["frames"].device.type == "meta" and out["meta"]["ids"][0].device.type == "meta"
    assert out["meta"]["ids"][1] == "take1" and out["k"] == 4
    assert isinstance(out["pair"], tuple) and out["pair"][0].device.type == "meta" and out["pair"][1] is None
    assert batch["frames"].device.type == "cpu"   # the input is not changed


def test_auto_precision_is_per_device(no_gpu):
    assert resolve_precision("auto", "cuda") == "fp32"   # no GPU: never bf16 there
    assert resolve_precision("bf16", "cuda") == "bf16"
    assert resolve_precision("auto", "meta") == "fp32"


def test_full_precision_undoes_autocast_on_its_own_device():
    a = torch.randn(8, 8)
    with autocast("bf16", "cpu"):
        assert (a @ a).dtype == torch.bfloat16
        with full_precision("cpu"):
            assert (a @ a).dtype == torch.float32
        with torch.autocast("cuda", enabled=False):   # another device's switch leaves CPU autocast on
            assert (a @ a).dtype == torch.bfloat16
    with full_precision("meta"):   # no autocast there: a plain context
        assert (a @ a).dtype == torch.float32
