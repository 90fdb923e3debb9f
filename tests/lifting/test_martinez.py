"""The martinez lifter: input encoding, shapes, max-norm, loss on a fixed batch, and the CLI end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from selfpose.cli import app
from selfpose.config import ConfigError, load
from selfpose.lifting.data import LiftingArrays, encode_2d, noisy_2d
from selfpose.lifting.lifters import LIFTERS, max_norm_
from selfpose.lifting.noise import NoiseConfig
from selfpose.lifting.config import MartinezConfig
from selfpose.lifting.train import LifterConfig, fit_lifter

J = 17


def arrays(n: int = 64, seed: int = 0) -> LiftingArrays:
    """Random 3D poses in front of a 1000×1000 camera (f = 1000 px) and their exact projections."""
    rng = np.random.default_rng(seed)
    j3 = rng.normal(0, 200, (n, J, 3)).astype(np.float32)
    j3[:, 0] = 0
    cam = j3 + np.float32([0, 0, 4000])
    j2 = (1000 * cam[..., :2] / cam[..., 2:] + 500).astype(np.float32)
    hw = np.tile(np.float32([1000, 1000]), (n, 1))
    return LiftingArrays(joints2d=j2, joints3d=j3, visible=np.ones((n, J), np.float32), image_hw=hw,
                         focal=np.tile(np.float32([1000, 1000]), (n, 1)), principal=hw / 2,
                         subjects=np.full(n, "S1"), actions=np.full(n, "walk"),
                         takes=np.array([f"t{i * 4 // n}" for i in range(n)]),
                         sequences=np.array([f"t{i * 4 // n}" for i in range(n)]),   # 4 contiguous sequences
                         frame_ids=np.arange(n))


def test_encoding_is_root_centred_focal_scaled_with_visibility():
    a = arrays(4)
    x = encode_2d(a.joints2d, a.visible, a.image_hw, a.focal, a.principal, "focal")
    assert x.shape == (4, 2 * J + 2 + J)
    rel = x[:, :2 * J].reshape(4, J, 2)
    assert np.allclose(rel[:, 0], 0)                                              # pelvis at the origin
    assert np.allclose(rel * 1000, a.joints2d - a.joints2d[:, :1], atol=1e-3)      # px / f
    assert np.allclose(x[:, 2 * J:2 * J + 2] * 1000, a.joints2d[:, 0] - 500, atol=1e-3)
    # A missing pelvis: the hips' midpoint is the root; missing joints are NaN, visibility 0.
    j2 = a.joints2d.copy()
    j2[0, 0] = np.nan
    vis = a.visible.copy()
    vis[0, 5] = 0
    y = encode_2d(j2, vis, a.image_hw, a.focal, a.principal, "focal")
    root = (a.joints2d[0, 1] + a.joints2d[0, 4]) / 2
    assert np.allclose(y[0, 2 * J:2 * J + 2] * 1000, root - 500, atol=1e-3)
    assert np.isnan(y[0, [0, 1, 10, 11]]).all() and y[0, 2 * J + 2 + 5] == 0 and y[0, 2 * J + 2 + 4] == 1
    # image normalisation: half the width
    z = encode_2d(a.joints2d, a.visible, a.image_hw, a.focal, a.principal, "image")
    assert np.allclose(z[:, :2 * J].reshape(4, J, 2) * 500, a.joints2d - a.joints2d[:, :1], atol=1e-3)


def test_noise_hook_is_seeded_and_marks_outside_joints_missing():
    a = arrays(32)
    a.joints2d[3, 7] = [1500, 500]   # outside the 1000-px image
    cfg = NoiseConfig()
    n1, v1 = noisy_2d(a, np.arange(32), cfg, np.random.default_rng(5))
    n2, v2 = noisy_2d(a, np.arange(32), cfg, np.random.default_rng(5))
    assert np.array_equal(np.nan_to_num(n1), np.nan_to_num(n2)) and np.array_equal(v1, v2)
    assert v1[3, 7] == 0 and np.isnan(n1[3, 7]).all()
    assert not np.allclose(np.nan_to_num(n1), a.joints2d)    # jitter moved the joints


def test_martinez_shapes_and_max_norm():
    cfg = LifterConfig(martinez=MartinezConfig(width=32, blocks=2))
    net = LIFTERS["martinez"](53, 3 * J, cfg)
    assert net(torch.randn(5, 3, 53)).shape == (5, 3, 3 * J)   # frame by frame over a window
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(50)
    max_norm_(net, 1.0)
    for m in net.modules():
        if isinstance(m, torch.nn.Linear):
            assert m.weight.norm(dim=1).max() <= 1.0 + 1e-5


def test_loss_goes_down_on_a_fixed_batch():
    a = arrays(64)
    cfg = LifterConfig(martinez=MartinezConfig(width=64, blocks=2, dropout=0.0), steps=150, batch_size=64, warmup_steps=0, eval_every=50,
                       lr=3e-3, val_fraction=0.0, threads=1)
    lifter = fit_lifter(a, cfg, None, progress=False)
    curve = lifter.info["curve"]
    assert curve[-1]["train_loss"] < 0.5 * curve[0]["train_loss"]
    pred = lifter.predict(a)
    assert pred.shape == (64, J, 3) and np.allclose(pred[:, 0], 0)
    # with 2D noise at training time the loop still runs (fresh noise per batch)
    noisy = fit_lifter(a, LifterConfig(martinez=MartinezConfig(width=16), steps=3, batch_size=16, val_fraction=0.0, train_noise=True,
                                       threads=1), None, progress=False)
    assert np.isfinite(noisy.predict(a)).all()


def test_config_is_strict():
    with pytest.raises(ConfigError, match="unknown config key"):
        load(LifterConfig, None, ["martinez.widht=3"])
    with pytest.raises(ConfigError, match="method"):
        load(LifterConfig, None, ["method=nope"])
    assert load(LifterConfig, None, ["noise.jitter_std_px=2", "train_subjects=S1,S5"]).train_subjects == ("S1", "S5")


def test_prepare_fit_evaluate_through_the_cli(tmp_path):
    """Shipped CMU motion through synthetic cameras → a few steps of fit-lifter → evaluate --json."""
    run = CliRunner()
    ds, out = tmp_path / "ds", tmp_path / "run"
    from pathlib import Path

    import selfpose

    motion = Path(selfpose.__file__).parent / "assets" / "motion" / "cmu_h36m17approx_30fps.npz"
    r = run.invoke(app, ["prepare", "mocap", str(motion), "--out", str(ds), "max_frames=16"])
    assert r.exit_code == 0, r.output
    r = run.invoke(app, ["fit-lifter", "--data", str(ds), "--out", str(out), "train_subjects=train", "steps=6",
                         "eval_every=3", "martinez.width=32", "batch_size=16", "threads=1"])
    assert r.exit_code == 0, r.output
    assert {"lifter.json", "lifter.safetensors", "metrics.csv"} <= {p.name for p in out.iterdir()}
    meta = json.loads((out / "lifter.json").read_text())
    assert meta["subjects"] == ["train"] and meta["config"]["method"] == "martinez"
    r = run.invoke(app, ["evaluate", str(out), "--data", str(ds), "--subjects", "test", "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["subjects"] == ["test"] and res["overall"]["count"] == res["num_samples"] > 0
    assert all(np.isfinite(res["overall"][k]) for k in ("mpjpe", "n_mpjpe", "p_mpjpe")) and res["per_action"]
    assert (out / "results.json").is_file() and (out / "results.md").is_file()
    assert res["picture"] == "skeletons.png" and (out / "skeletons.png").stat().st_size > 0
    assert "](skeletons.png)" in (out / "results.md").read_text()
    # a second fit needs --overwrite, and replaces only the lifter run (results included)
    r = run.invoke(app, ["fit-lifter", "--data", str(ds), "--out", str(out), "steps=2", "martinez.width=8", "batch_size=4",
                         "train_subjects=train", "--overwrite"])
    assert r.exit_code == 0, r.output
    assert not (out / "skeletons.png").exists() and not (out / "results.json").exists()


def test_evaluate_refuses_a_folder_that_is_neither_lifter_nor_pose(tmp_path):
    (tmp_path / "x").mkdir()
    r = CliRunner().invoke(app, ["evaluate", str(tmp_path / "x"), "--data", str(tmp_path)])
    assert r.exit_code == 2
    msg = r.output.strip()
    assert "not a pose folder" in msg and "lifter" in msg and "Traceback" not in r.output


def test_fit_lifter_names_the_subjects_a_dataset_has(tmp_path):
    from pathlib import Path

    import selfpose

    motion = Path(selfpose.__file__).parent / "assets" / "motion" / "cmu_h36m17approx_30fps.npz"
    run = CliRunner()
    assert run.invoke(app, ["prepare", "mocap", str(motion), "--out", str(tmp_path / "ds"), "max_frames=4"]).exit_code == 0
    r = run.invoke(app, ["fit-lifter", "--data", str(tmp_path / "ds"), "--out", str(tmp_path / "run")])
    assert r.exit_code == 2 and "S1" in r.output and "test, train" in r.output and not (tmp_path / "run").exists()
