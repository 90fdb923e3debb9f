"""The image path's 2D network (soft-argmax, losses, shapes, persistence) and the image → 2D → 3D chain end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from selfpose.config import ConfigError, from_dict
from selfpose.lifting.heatmap2d import (
    Heatmap2D,
    Heatmap2DConfig,
    Heatmap2DError,
    HeatmapNet,
    coordinate_loss,
    errors_2d,
    fit_heatmap_run,
    heatmap_loss,
    soft_argmax,
)

J = 17
TINY = {"width": 8, "layers": (1, 1, 1), "deconv_layers": 2, "deconv_channels": 16}


pytestmark = pytest.mark.usefixtures("one_thread")   # tiny convolutions: one thread is fastest here


def test_soft_argmax_is_exact_on_a_peak_and_spans_the_frame():
    h, w, H, W = 8, 16, 64, 128                      # cells of 8x8 px
    logits = torch.full((2, 3, h, w), -1e4)
    logits[0, 0, 2, 5] = 0.0                          # one-hot → that cell's centre exactly
    logits[0, 1, 7, 15] = 0.0                         # last cell → (W − 4, H − 4)
    logits[0, 2, 4, 3] = logits[0, 2, 4, 4] = 0.0     # two equal cells → their midpoint
    logits[1] = 0.0                                   # flat → the frame centre
    p = soft_argmax(logits, (H, W))
    assert p.shape == (2, 3, 2)
    assert torch.allclose(p[0, 0], torch.tensor([5.5 * 8, 2.5 * 8]))
    assert torch.allclose(p[0, 1], torch.tensor([W - 4.0, H - 4.0]))
    assert torch.allclose(p[0, 2], torch.tensor([4.0 * 8, 4.5 * 8]))
    assert torch.allclose(p[1], torch.tensor([W / 2, H / 2]).expand(3, 2))


def test_losses_ignore_masked_joints_and_heatmap_loss_is_lowest_at_the_label():
    pred = torch.tensor([[[10.0, 10.0], [0.0, 0.0]]])
    target = torch.tensor([[[12.0, 7.0], [100.0, 100.0]]])
    w = torch.tensor([[1.0, 0.0]])
    assert torch.isclose(coordinate_loss(pred, target, w, 10.0), torch.tensor(5.0 / 10 / 2))
    assert coordinate_loss(pred, target, torch.zeros(1, 2), 10.0) == 0
    # heatmaps peaked at the label beat heatmaps peaked elsewhere
    t = torch.tensor([[[20.0, 12.0]]])
    good, bad = torch.full((1, 1, 8, 8), -5.0), torch.full((1, 1, 8, 8), -5.0)
    good[0, 0, 1, 2], bad[0, 0, 6, 6] = 5.0, 5.0      # cell (1, 2) of 8-px cells holds (20, 12)
    one = torch.ones(1, 1)
    assert heatmap_loss(good, t, one, (64, 64), 2.0) < heatmap_loss(bad, t, one, (64, 64), 2.0)


def test_network_shapes_and_output_in_pixels():
    cfg = Heatmap2DConfig(**TINY)
    net = HeatmapNet(cfg, J).eval()
    out = net(torch.rand(3, 3, 64, 48))
    assert out["heatmaps"].shape == (3, J, 64 // 4, 48 // 4)      # stride 16, two deconvs → stride 4
    assert out["joints2d"].shape == (3, J, 2) and out["features"].shape == (3, net.feature_dim)
    # zero-initialised last layer: flat heatmaps, every joint at the frame centre
    assert torch.allclose(out["joints2d"], torch.tensor([24.0, 32.0]).expand(3, J, 2))


def test_loss_goes_down_on_a_fixed_batch():
    torch.manual_seed(0)
    cfg = Heatmap2DConfig(**TINY)
    net = HeatmapNet(cfg, J)
    x = torch.rand(4, 3, 32, 32)
    t = torch.rand(4, J, 2) * 24 + 4
    w = torch.ones(4, J)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    l1s = []
    for _ in range(30):
        out = net(x)
        l1 = coordinate_loss(out["joints2d"], t, w, 32.0)
        loss = l1 + 0.1 * heatmap_loss(out["heatmaps"], t, w, (32, 32), 2.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        l1s.append(float(l1.detach()))
    assert l1s[-1] < 0.5 * l1s[0]


def test_save_load_round_trip_and_size_check(tmp_path):
    cfg = Heatmap2DConfig(**TINY)
    torch.manual_seed(1)
    net = HeatmapNet(cfg, J)
    for m in net.modules():   # non-trivial BN statistics so a lost buffer shows
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
    torch.nn.init.normal_(net.final.weight, std=0.1)
    model = Heatmap2D(net, cfg, (32, 32), {"best_step": 7})
    model.save(tmp_path / "m")
    back = Heatmap2D.load(tmp_path / "m")
    frames = (np.random.default_rng(0).random((5, 32, 32, 3)) * 255).astype(np.uint8)
    a, b = model.predict_frames(frames), back.predict_frames(frames)
    assert np.array_equal(a.joints2d, b.joints2d) and np.array_equal(a.features, b.features)
    assert back.info["best_step"] == 7 and back.image_hw == (32, 32)
    assert a.joints2d.shape == (5, J, 2) and a.features.shape == (5, net.feature_dim)
    with pytest.raises(Heatmap2DError, match="trained on 32x32"):
        back.predict_frames(frames[:, :16])
    (tmp_path / "m" / "heatmap2d.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(Heatmap2DError, match="not a selfpose-heatmap2d"):
        Heatmap2D.load(tmp_path / "m")


def test_config_is_strict_and_checked():
    with pytest.raises(ConfigError):
        from_dict(Heatmap2DConfig, {"widht": 16})
    with pytest.raises(ConfigError, match="deconv_layers"):
        Heatmap2DConfig(layers=(1, 1), deconv_layers=4)
    with pytest.raises(ConfigError, match="batch_size"):
        Heatmap2DConfig(batch_size=1)


def test_errors_2d():
    t = np.zeros((2, 2, 2))
    p = np.array([[[3.0, 4.0], [1.0, 0.0]], [[0.0, 20.0], [np.nan, 0.0]]])
    e = errors_2d(p, t, thresholds_px=(5.0,))
    assert e["count"] == 3 and np.isclose(e["mean_px"], (5 + 1 + 20) / 3) and np.isclose(e["pck@5px"], 200 / 3)
    e = errors_2d(p, t, thresholds_px=(5.0,), mask=np.array([[True, False], [False, False]]))
    assert e["count"] == 1 and e["mean_px"] == 5.0


@pytest.fixture(scope="module")
def tiny_lab(tmp_path_factory):
    from selfpose.data.synthetic.synthesize import SynthConfig, synthesize

    return synthesize(SynthConfig(scenario="lab", height=64, width=64, max_sequences=2, max_seconds=2,
                                  num_subjects=2, views=2), tmp_path_factory.mktemp("img") / "lab", progress=False)


def test_fit_run_then_chain_to_3d(tiny_lab, tmp_path):
    """Train → run folder → load → predict the store → a lifter on the predicted 2D → evaluate_poses' layout."""
    from selfpose.lifting.data import load_arrays
    from selfpose.lifting.image_chain import evaluate_chain, load_chain, predict_chain
    from selfpose.lifting.config import MartinezConfig
    from selfpose.lifting.train import LifterConfig, fit_lifter
    from selfpose.outputs import output_kind

    cfg = Heatmap2DConfig(**TINY, steps=30, batch_size=8, eval_every=15, val_fraction=0.0, seed=0, threads=1)
    info = fit_heatmap_run(tiny_lab, tmp_path / "run", cfg, progress=False)
    assert info["steps_done"] == 30 and info["train_frames"] > 0
    assert output_kind(tmp_path / "run") == "heatmap2d"
    assert (tmp_path / "run" / "metrics.csv").is_file()
    from selfpose.errors import OutputError

    with pytest.raises(OutputError, match="already exists"):
        fit_heatmap_run(tiny_lab, tmp_path / "run", cfg, progress=False)
    model = Heatmap2D.load(tmp_path / "run")
    first = model.info["curve"][0]["train_l1_px"]
    assert model.info["curve"][-1]["train_l1_px"] < first         # it learnt something from the labels

    chain = predict_chain(model, tiny_lab)
    gt = load_arrays(tiny_lab)
    assert len(chain) == len(gt) and chain.arrays.joints2d.shape == gt.joints2d.shape
    assert np.array_equal(chain.joints2d_true, gt.joints2d) and np.array_equal(chain.arrays.joints3d, gt.joints3d)
    assert not np.array_equal(chain.arrays.joints2d, gt.joints2d)
    assert chain.features.shape == (len(gt), model.net.feature_dim)
    chain.save(tmp_path / "pred.npz")
    cached = load_chain(tmp_path / "pred.npz", tiny_lab)
    assert np.array_equal(cached.arrays.joints2d, chain.arrays.joints2d)

    lifter = fit_lifter(gt, LifterConfig(steps=5, batch_size=16, martinez=MartinezConfig(width=32), eval_every=5,
                                              train_subjects=()),
                        progress=False)
    res = evaluate_chain(lifter, chain)
    assert {"mpjpe", "n_mpjpe", "p_mpjpe"} <= set(res["overall"]) and res["num_samples"] == len(gt)
    assert res["2d"]["mean_px"] > 0 and res["2d"]["count"] > 0


def test_training_data_errors(tiny_lab, tmp_path):
    with pytest.raises(Heatmap2DError, match="no sequence .* has subjects S9"):
        fit_heatmap_run(tiny_lab, tmp_path / "r", Heatmap2DConfig(**TINY, train_subjects=("S9",)), progress=False)
    assert not (tmp_path / "r").exists()


def _fit_2d_cli(data, out):
    """``fit-lifter method=heatmap2d`` at a tiny size through the CLI; returns the runner and its result."""
    from typer.testing import CliRunner

    from selfpose.cli import app

    run = CliRunner()
    r = run.invoke(app, ["fit-lifter", "--data", str(data), "--out", str(out), "method=heatmap2d", "steps=3",
                         "width=8", "batch_size=4", "train_subjects="])
    assert r.exit_code == 0, r.output
    return run, r


def test_cli_trains_the_2d_network_and_evaluate_lifts_its_2d(tiny_lab, tmp_path):
    """fit-lifter method=heatmap2d on an image dataset, a lifter on its labels, evaluate --keypoints-2d."""
    import json

    from selfpose.cli import app

    r2d, lift = tmp_path / "r2d", tmp_path / "lift"
    run, r = _fit_2d_cli(tiny_lab, r2d)
    assert "--keypoints-2d" in r.output and (r2d / "heatmap2d.json").is_file()
    r = run.invoke(app, ["fit-lifter", "--data", str(tiny_lab), "--out", str(lift), "steps=2", "martinez.width=8",
                         "batch_size=4", "train_subjects=", "val_fraction=0", "input_norm=image"])
    assert r.exit_code == 0, r.output
    labels = json.loads(run.invoke(app, ["evaluate", str(lift), "--data", str(tiny_lab), "--json"]).stdout)
    chain = json.loads(run.invoke(app, ["evaluate", str(lift), "--data", str(tiny_lab), "--keypoints-2d", str(r2d),
                                        "--json"]).stdout)
    assert labels["input_2d"] == "ground truth" and chain["input_2d"].startswith("predicted by")
    assert chain["2d"]["mean_px"] > 0 and chain["num_samples"] == labels["num_samples"]
    assert chain["overall"]["mpjpe"] != labels["overall"]["mpjpe"]
    # method=heatmap2d needs frames
    r = run.invoke(app, ["fit-lifter", "--data", str(tmp_path), "--out", str(tmp_path / "x"), "method=heatmap2d"])
    assert r.exit_code == 2


def test_a_lifter_trains_on_the_networks_2d_and_features_and_needs_them_at_evaluation(tiny_lab, tmp_path):
    """fit-lifter --keypoints-2d --image-features: pose_machine on predicted 2D + pooled features of the frames."""
    import json

    from selfpose.cli import app
    from selfpose.lifting.model import Lifter

    r2d, lift = tmp_path / "r2d", tmp_path / "lift"
    run, _ = _fit_2d_cli(tiny_lab, r2d)
    tiny_pm = ["method=pose_machine", "pose_machine.hidden=16", "pose_machine.conv_channels=4,8", "pose_machine.clip=4",
               "pose_machine.predict_clip=4", "pose_machine.projector_steps=1", "pose_machine.bf16=false", "steps=2",
               "batch_size=4", "train_subjects=", "val_fraction=0", "input_norm=image", "threads=1"]
    r = run.invoke(app, ["fit-lifter", "--data", str(tiny_lab), "--out", str(lift), "--keypoints-2d", str(r2d),
                         "--image-features", *tiny_pm])
    assert r.exit_code == 0, r.output
    lifter = Lifter.load(lift)
    assert lifter.feature_dim == Heatmap2D.load(r2d).net.feature_dim > 0
    assert lifter.cfg.keypoints_2d == str(r2d.resolve()) and lifter.cfg.image_features
    # the 2D labels alone are not what it was trained on: a one-line refusal that names the fix
    r = run.invoke(app, ["evaluate", str(lift), "--data", str(tiny_lab)])
    assert r.exit_code == 2 and "--keypoints-2d" in r.output and "image features" in r.output
    res = json.loads(run.invoke(app, ["evaluate", str(lift), "--data", str(tiny_lab), "--keypoints-2d", str(r2d),
                                      "--json"]).stdout)
    assert res["input_2d"].startswith("predicted by") and np.isfinite(res["overall"]["mpjpe"])
    # features without a 2D network to take them from: a config error before anything is written
    r = run.invoke(app, ["fit-lifter", "--data", str(tiny_lab), "--out", str(tmp_path / "x"), "--image-features",
                         *tiny_pm])
    assert r.exit_code == 2 and "keypoints_2d" in r.output and not (tmp_path / "x").exists()
