"""ResNet backbones: torchvision key names and parameter counts, checkpoint loading, stage outputs."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from selfpose.models.backbones import BackboneError, load_torchvision_state_dict, resnet


def _torchvision_resnet18_keys() -> list[str]:
    """torchvision.models.resnet18().state_dict().keys(), in order (public layout)."""
    bn = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    keys = ["conv1.weight"] + [f"bn1.{s}" for s in bn]
    for stage in range(1, 5):
        for b in range(2):
            p = f"layer{stage}.{b}"
            keys += [f"{p}.conv1.weight"] + [f"{p}.bn1.{s}" for s in bn]
            keys += [f"{p}.conv2.weight"] + [f"{p}.bn2.{s}" for s in bn]
            if stage > 1 and b == 0:
                keys += [f"{p}.downsample.0.weight"] + [f"{p}.downsample.1.{s}" for s in bn]
    return keys + ["fc.weight", "fc.bias"]


def test_resnet18_state_dict_keys_are_torchvision_keys():
    keys = list(resnet("resnet18").state_dict().keys())
    assert len(keys) == 122
    assert keys == _torchvision_resnet18_keys()


def test_resnet50_has_bottleneck_keys():
    sd = resnet("resnet50").state_dict()
    assert "layer1.0.conv3.weight" in sd and "layer1.0.downsample.0.weight" in sd
    assert tuple(sd["layer4.2.conv3.weight"].shape) == (2048, 512, 1, 1)
    assert tuple(sd["fc.weight"].shape) == (1000, 2048)


@pytest.mark.parametrize("arch,count", [("resnet18", 11_689_512), ("resnet34", 21_797_672),
                                        ("resnet50", 25_557_032)])
def test_parameter_counts_match_torchvision(arch, count):
    assert sum(p.numel() for p in resnet(arch).parameters()) == count


def test_width_and_layers_shrink_the_model():
    small = resnet("resnet18", width=16, layers=(1, 1, 1), num_classes=None)
    assert small.stage_channels == [16, 32, 64]
    assert small.out_channels == 64 and small.fc is None
    assert not any(k.startswith("layer4") for k in small.state_dict())
    assert sum(p.numel() for p in small.parameters()) < 100_000


def test_features_shapes_and_upto():
    net = resnet("resnet18", width=8, num_classes=None).eval()
    x = torch.rand(2, 3, 64, 64)
    feats = net.features(x, upto=3)
    assert [tuple(f.shape) for f in feats] == [(2, 8, 16, 16), (2, 16, 8, 8), (2, 32, 4, 4)]
    assert tuple(net(x).shape) == (2, 64)
    torch.testing.assert_close(net.features(x)[2], feats[2])
    with pytest.raises(BackboneError, match="upto"):
        net.features(x, upto=5)


def test_unknown_arch_is_an_error():
    with pytest.raises(BackboneError, match="resnet18"):
        resnet("resnet19")


@pytest.mark.parametrize("fmt", ["pth", "safetensors"])
def test_state_dict_round_trip(tmp_path, fmt):
    torch.manual_seed(0)
    src = resnet("resnet18", width=16)  # any width round-trips; small keeps the test fast
    with torch.no_grad():  # make the BN statistics non-trivial too
        src.bn1.running_mean.uniform_()
        src.layer1[0].bn1.num_batches_tracked.fill_(7)
    path = tmp_path / f"r18.{fmt}"
    if fmt == "pth":
        torch.save(src.state_dict(), path)
    else:
        save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(path))
    torch.manual_seed(1)
    dst = load_torchvision_state_dict(resnet("resnet18", width=16), path)
    for k, v in src.state_dict().items():
        torch.testing.assert_close(dst.state_dict()[k], v, msg=k)
    x = torch.rand(2, 3, 64, 64)
    torch.testing.assert_close(dst.eval()(x), src.eval()(x))


def test_loading_into_a_headless_model_skips_fc_and_fills_old_bn_counters(tmp_path):
    sd = {k: v for k, v in resnet("resnet18").state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "old.pth"
    torch.save(sd, path)
    net = load_torchvision_state_dict(resnet("resnet18", num_classes=None), path)
    torch.testing.assert_close(net.conv1.weight, sd["conv1.weight"])


def test_missing_file_and_mismatches_are_clear_errors(tmp_path):
    with pytest.raises(BackboneError, match="not found"):
        load_torchvision_state_dict(resnet("resnet18"), tmp_path / "nope.pth")
    path = tmp_path / "r18.pth"
    torch.save(resnet("resnet18").state_dict(), path)
    with pytest.raises(BackboneError, match="width=64"):
        load_torchvision_state_dict(resnet("resnet18", width=32), path)
    with pytest.raises(BackboneError, match="missing keys"):
        load_torchvision_state_dict(resnet("resnet34"), path)
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(BackboneError, match="cannot read"):
        load_torchvision_state_dict(resnet("resnet18"), bad)


def test_channels_last_and_bf16_autocast():
    net = resnet("resnet18", width=8, num_classes=None).to(memory_format=torch.channels_last)
    x = torch.rand(2, 3, 32, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        f = net.features(x)
    assert f[0].dtype == torch.bfloat16
    assert f[0].is_contiguous(memory_format=torch.channels_last)
    assert torch.isfinite(f[-1].float()).all()
