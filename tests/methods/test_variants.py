"""The ablations and single-view baselines of the main method (selfpose.methods.variants)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from selfpose.config import ConfigError, from_dict
from selfpose.data.store import Dataset
from selfpose.data.synthetic.synthesize import SynthConfig, synthesize
from selfpose.methods.registry import METHODS, build
from selfpose.methods.variants import VARIANTS, resolve
from selfpose.pretrain import PretrainConfig, load_run, pretrain

SMALL = dict(image_size=64, crop_size=32, detector_input=32, detector_width=8, encoder_width=8, v_dim=16,
             i_dim=16, decoder_channels=16, decoder_hidden=64)


def config(method: str, **over) -> PretrainConfig:
    return from_dict(PretrainConfig, {"method": method, "model": {**SMALL, **over.pop("model", {})},
                                      "loss": {"perceptual_width": 8, "jitter": False, **over.pop("loss", {})},
                                      **over})


def batch_for(kind: str, n=2, seed=0) -> dict:
    """A fixed batch of 4-frame tuples (3 for ``tcn``): a moving "person" over a textured background."""
    g = torch.Generator().manual_seed(seed)
    if kind == "tcn":   # anchor and positive: one instant (two views: other backgrounds); negative: later
        background = torch.randint(0, 256, (n, 3, 3, 64, 64), dtype=torch.uint8, generator=g)
        background[:, 2] = background[:, 0]
        frames = background.clone()
        for k, x in enumerate((10, 12, 40)):
            frames[:, k, :, 18:46, x:x + 12] = torch.tensor([200, 60, 60], dtype=torch.uint8)[:, None, None]
        return {"frames": frames, "background": background, "dt": torch.full((n,), 30)}
    if kind == "views":   # one instant seen by two cameras, the second turned 90° about the vertical
        background = torch.randint(0, 256, (n, 2, 3, 64, 64), dtype=torch.uint8, generator=g)
        frames = background.clone()
        for k, (x, w) in enumerate(((20, 12), (26, 6))):
            frames[:, k, :, 18:46, x:x + w] = torch.tensor([200, 60, 60], dtype=torch.uint8)[:, None, None]
        R = torch.stack([torch.eye(3), torch.tensor([[0.0, 0, 1], [0, 1, 0], [-1, 0, 0]])])
        return {"frames": frames, "background": background, "camera_R": R.expand(n, 2, 3, 3).contiguous(),
                "sync": torch.ones(n, dtype=torch.bool)}
    background = torch.randint(0, 256, (n, 1, 3, 64, 64), dtype=torch.uint8, generator=g).expand(n, 4, 3, 64, 64)
    frames = background.clone()
    for k, x in enumerate((10, 14, 26, 40)):   # the person's column in each frame of the tuple
        frames[:, k, :, 18:46, x:x + 12] = torch.tensor([200, 60, 60], dtype=torch.uint8)[:, None, None]
    t = torch.tensor([0, 1, 8, 30]) if kind == "dsl" else torch.tensor([0, 1, 30, 40])
    delta = (t[None, :, None] - t[None, None, :]).abs().expand(n, 4, 4)
    return {"frames": frames, "background": background.contiguous(), "delta": delta,
            "d_pos": torch.full((n,), 2.0), "d_neg": torch.full((n,), 20.0)}


def test_every_variant_is_registered_with_its_switches():
    assert set(VARIANTS) <= set(METHODS)
    table = {  # detector, decoder, split, contrastive: the module docstring's table
        "temporal": (True, True, True, "dsl"), "dsl": (False, False, False, "dsl"),
        "dsl_stn": (True, False, False, "dsl"), "dsl_stn_dec": (True, True, False, "dsl"),
        "ae_stn_dec": (True, True, False, "none"), "css_stn_dec_split": (True, True, True, "css"),
        "css": (False, False, False, "css"), "mv_css": (False, False, False, "tcn"),
        "drnet": (True, True, True, "none"), "nsd": (True, True, True, "none"),
    }
    assert set(table) == set(VARIANTS)
    for name, (det, dec, split, con) in table.items():
        m = build(name, config(name))
        assert m.name == name and name in METHODS
        assert (m.model.detector is not None, m.model.decoder is not None, m.model.cfg.split) == (det, dec, split)
        assert m.cfg.loss.contrastive == con
        assert m.sampler_kind(1) == ("views" if name == "nsd" else {"css": "contrastive", "tcn": "tcn"}.get(con, "dsl"))


def test_resolve_overrides_and_is_idempotent():
    cfg = config("dsl", model={"decoder": True, "encoder_width": 4})
    r = resolve(cfg)
    assert r.model.decoder is False and r.model.detector is False and r.model.encoder_width == 4
    assert resolve(r) == r
    plain = config("temporal", model={"decoder": False})
    assert resolve(plain).model.decoder is True   # the full method is the full method


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_loss_goes_down_and_features_have_the_pose_size(name):
    torch.manual_seed(0)
    m = build(name, config(name))
    batch = batch_for(m.sampler_kind(1))
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    losses = []
    for step in range(30):
        loss, logs = m.training_step(batch, step)
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.8 * losses[0], (name, losses[0], losses[-1])
    con = m.cfg.loss.contrastive
    if con != "none":
        assert con in logs          # the variant's own contrastive term ran
    else:
        assert "dsl" not in logs and "css" not in logs
    assert ("recon" in logs) == (m.model.decoder is not None)
    m.eval()
    with torch.no_grad():
        f = m.pose_features(batch["frames"][0].float() / 255)
    assert f.shape == (batch["frames"].shape[1], m.model.feature_dim())
    assert m.model.feature_dim() == (SMALL["v_dim"] if m.model.cfg.split else SMALL["v_dim"] + SMALL["i_dim"])


def test_unknown_method_is_a_config_error_before_data(tmp_path):
    with pytest.raises(ConfigError, match="unknown method 'dls'.*dsl"):
        pretrain(dataclasses.replace(config("temporal"), method="dls"), tmp_path / "missing", tmp_path / "run")


@pytest.fixture(scope="module")
def tiny_lab(tmp_path_factory):
    path = synthesize(SynthConfig(scenario="lab", height=64, width=64, max_sequences=4, max_seconds=4,
                                  num_subjects=2), tmp_path_factory.mktemp("variants") / "lab", progress=False)
    return Dataset.open(path)


@pytest.mark.parametrize("name", ["css", "dsl_stn", "mv_css", "nsd", "drnet", "ae_stn_dec"])
def test_pretrain_and_pose_stage(name, tiny_lab, tmp_path):
    """A variant trains through the real loop and sampler, saves its resolved config, and feeds the pose stage."""
    from selfpose.pose.stage import PoseStageConfig, evaluate_pose_stage, fit_pose_stage

    cfg = config(name, sampler={"d_pos_s": 0.2, "d_neg_s": 1.0},
                 train={"steps": 6, "batch_size": 2, "checkpoint_every": 6, "picture_every": 6, "num_workers": 0,
                        "threads": 1})
    pretrain(cfg, tiny_lab.root, tmp_path / "run", progress=False)
    run = load_run(tmp_path / "run")
    assert run.config.method == name and run.config.model == resolve(cfg).model   # the saved config is resolved
    assert run.method.sampler_kind(1) == {"css": "contrastive", "mv_css": "tcn", "nsd": "views"}.get(name, "dsl")
    term = {"css": "css", "dsl_stn": "dsl", "mv_css": "tcn", "nsd": "recon", "drnet": "similarity",
            "ae_stn_dec": "recon"}[name]
    assert term in (run.path / "metrics.csv").read_text().splitlines()[0].split(",")   # its loss was logged
    pose_cfg = from_dict(PoseStageConfig, {"pose": {"fraction": 0.5, "steps": 20}})
    fit = fit_pose_stage(tmp_path / "run", tiny_lab.root, tmp_path / "pose", pose_cfg, progress=False)
    assert fit["num_labelled"] > 0
    res = evaluate_pose_stage(tmp_path / "pose", tiny_lab.root, progress=False)
    assert np.isfinite(res["overall"]["n_mpjpe"])


def test_drnet_game_sends_each_gradient_to_its_own_side():
    from selfpose.methods.drnet import DrNetMethod

    batch = batch_for("dsl")

    def grads(**drnet):
        torch.manual_seed(0)
        m = build("drnet", config("drnet", method_config={"drnet": drnet}))
        assert isinstance(m, DrNetMethod)
        loss, logs = m.training_step(batch, 0)
        loss.backward()
        enc = torch.cat([p.grad.flatten() for p in m.model.encoder.parameters() if p.grad is not None])
        disc = [p.grad for p in m.discriminator.parameters()]
        return logs, enc, disc

    logs, enc_game, disc = grads()
    assert {"similarity", "discriminator", "confusion", "recon"} <= set(logs) and "dsl" not in logs
    assert all(g is not None and g.abs().sum() > 0 for g in disc)
    # the encoder's confusion term does not train the discriminator ...
    _, _, disc_off = grads(w_discriminator=0.0)
    assert all(g is None or g.abs().sum() == 0 for g in disc_off)
    # ... and the discriminator's own loss does not reach the encoder
    _, enc_a, _ = grads(w_adversarial=0.0, w_similarity=0.0)
    _, enc_b, _ = grads(w_adversarial=0.0, w_similarity=0.0, w_discriminator=0.0)
    torch.testing.assert_close(enc_a, enc_b)
    assert not torch.allclose(enc_game, enc_a)   # while the game's confusion + similarity terms do


def test_nsd_decodes_each_view_from_the_other_turned_into_it():
    from selfpose.methods.nsd import rotate_point_codes

    Rz = torch.tensor([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])   # 90° about z: (1, 0, 0) → (0, 1, 0)
    v = torch.tensor([[1.0, 0, 0, 0, 0, 2, 7.0]])             # two points and one number that rides along
    torch.testing.assert_close(rotate_point_codes(v, Rz[None]), torch.tensor([[0.0, 1, 0, 0, 0, 2, 7.0]]))
    w = torch.randn(5, 10)
    R = torch.linalg.qr(torch.randn(5, 3, 3)).Q
    torch.testing.assert_close(rotate_point_codes(rotate_point_codes(w, R), R.transpose(1, 2)), w)

    m = build("nsd", config("nsd", model={"v_dim": 6}))
    n = 2
    Ra, Rb = torch.eye(3), Rz
    batch = {"camera_R": torch.stack([Ra, Rb])[None].expand(n, 2, 3, 3)}
    v, i = torch.randn(n * 2, 6), torch.randn(n * 2, 16)
    v_dec, i_dec = m.decoder_codes(v, i, batch, n, 2)
    vv = v.reshape(n, 2, 6)
    # view b (row 1 of each pair) is drawn from view a's points turned by R_b R_aᵀ, with a's appearance
    torch.testing.assert_close(v_dec.reshape(n, 2, 6)[:, 1], rotate_point_codes(vv[:, 0], (Rb @ Ra.T).expand(n, 3, 3)))
    torch.testing.assert_close(v_dec.reshape(n, 2, 6)[:, 0], rotate_point_codes(vv[:, 1], (Ra @ Rb.T).expand(n, 3, 3)))
    torch.testing.assert_close(i_dec.reshape(n, 2, -1), i.reshape(n, 2, -1).flip(1))
    with pytest.raises(ConfigError, match="camera_R"):
        m.decoder_codes(v, i, {}, n, 2)


def test_free_fall_stage_only_for_models_that_can_train_it(caplog):
    assert build("temporal", config("temporal"), two_stage=True).sampler_kind(1) == "gravity"
    assert build("dsl_stn", config("dsl_stn"), two_stage=True).sampler_kind(1) == "gravity"  # the detector tracks
    with caplog.at_level("WARNING", logger="selfpose.methods.temporal"):
        for name in ("dsl", "css"):   # no detector, no decoder: stage 1 would have no loss at all
            m = build(name, config(name), two_stage=True)
            assert not m.two_stage and m.sampler_kind(1) == m.sampler_kind(2)
    assert "nothing to train" in caplog.text
