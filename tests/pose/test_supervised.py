"""Baseline (b): end-to-end supervised training on the labelled frames."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from selfpose.config import ConfigError, from_dict
from selfpose.data.store import Dataset
from selfpose.data.synthetic.synthesize import SynthConfig, synthesize
from selfpose.models.temporal import ModelConfig, TemporalModel
from selfpose.pose.evaluate import evaluate
from selfpose.pose.features import extract
from selfpose.pose.labels import label_subset
from selfpose.pose.supervised import (SupervisedConfig, SupervisedError, SupervisedModel, colour_jitter,
                                      train_supervised)

TINY = ModelConfig(image_size=32, crop_size=16, detector_input=16, detector_width=4, encoder_width=4, v_dim=8,
                   i_dim=8)


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    path = synthesize(SynthConfig(scenario="lab", height=32, width=32, max_sequences=3, max_seconds=3,
                                  num_subjects=2), tmp_path_factory.mktemp("supervised") / "lab", progress=False)
    return Dataset.open(path)


def test_loss_goes_down_with_a_stand_in(ds, stand_in_net):
    torch.manual_seed(0)
    cfg = SupervisedConfig(model=TINY, hidden=64, dropout=0.0, fraction=0.5, steps=90, eval_every=30,
                           batch_size=16, lr=5e-3, colour_jitter=0.2, val_by="take", val_fraction=0.3,
                           threads=1)
    before = torch.get_num_threads()
    sm = train_supervised(ds, cfg, model=stand_in_net(), progress=False)
    assert torch.get_num_threads() == before
    losses = [r["train_loss"] for r in sm.curve]
    assert losses[-1] < 0.85 * losses[0], losses
    assert sm.best_step == sm.curve[int(np.argmin([r["val_n_mpjpe"] for r in sm.curve]))]["step"]
    # the same evaluation path as the pose stage
    fs = extract(sm.feature_fn, ds, label_subset(ds, 0.25), progress=False)
    res = evaluate(sm.pose.predict(fs), fs)
    assert np.isfinite(res["overall"]["n_mpjpe"]) and res["detection"]["count"] == len(fs)


def test_temporal_model_trains_saves_and_reloads(ds, tmp_path):
    cfg = SupervisedConfig(model=TINY, hidden=32, fraction=0.25, steps=4, eval_every=2, batch_size=8,
                           val_by="take", val_fraction=0.3, threads=1)
    sm = train_supervised(ds, cfg, progress=False)
    assert sm.model.decoder is None  # nothing is reconstructed
    assert len(sm.curve) == 2 and "val_n_mpjpe" in sm.curve[0]
    frames = label_subset(ds, 0.2)
    fs = extract(sm.feature_fn, ds, frames, progress=False)
    assert fs.features.shape == (len(frames), TINY.v_dim) and fs.pred_boxes.shape == (len(frames), 4)
    subjects = {ds.sequences[i].meta.subject for i in range(len(ds.sequences))}
    assert sm.split["train_subjects"] and set(sm.split["train_subjects"] + sm.split["val_subjects"]) <= subjects
    back = SupervisedModel.load(sm.save(tmp_path / "sup"))
    assert back.split == sm.split
    fs2 = extract(back.feature_fn, ds, frames, progress=False)
    np.testing.assert_allclose(fs2.features, fs.features, atol=1e-6)
    np.testing.assert_allclose(back.pose.predict(fs2), sm.pose.predict(fs), atol=1e-4)
    x = torch.rand(2, 3, 32, 32)
    assert back.predict_frames(x).shape == (2, 17, 3)
    (tmp_path / "sup" / "model.safetensors").write_bytes(b"")
    with pytest.raises(SupervisedError, match="train it again"):
        SupervisedModel.load(tmp_path / "sup")


def test_val_max_frames_caps_the_held_out_frames_it_validates_on(ds, monkeypatch):
    import selfpose.pose.supervised as sup
    from selfpose.pose.labels import evenly_spaced, split_validation

    seen, real = [], sup._train
    monkeypatch.setattr(sup, "_train", lambda result, train_ds, tr, va, *a: (seen.append(va),
                                                                            real(result, train_ds, tr, va, *a))[1])
    cfg = SupervisedConfig(model=TINY, hidden=32, fraction=0.5, steps=2, eval_every=2, batch_size=8,
                           val_by="take", val_fraction=0.3, threads=1, val_max_frames=5)
    train_supervised(ds, cfg, progress=False)
    _, va = split_validation(ds, label_subset(ds, 0.5, seed=0), 0.3, "take", 0)
    assert len(va) > 5 and len(seen[0]) == 5
    np.testing.assert_array_equal(seen[0], evenly_spaced(va, 5))


def test_boxes_are_in_stored_pixels(ds):
    cfg = SupervisedConfig(model=ModelConfig(**{**TINY.__dict__, "image_size": 48, "detector": False}),
                           hidden=16, fraction=0.25, steps=1, val_fraction=0.0, batch_size=4, threads=1)
    sm = train_supervised(ds, cfg, progress=False)
    out = sm.feature_fn(torch.rand(3, 3, 32, 32))
    np.testing.assert_allclose(out["boxes"].numpy(), [[0, 0, 32, 32]] * 3, atol=1e-3)


def test_colour_jitter():
    x = torch.rand(4, 3, 8, 8)
    assert colour_jitter(x, 0.0) is x
    y = colour_jitter(x, 0.5, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1 and not torch.allclose(x, y)
    # per-image: a grey image stays grey (saturation and contrast keep R = G = B)
    g = torch.rand(2, 1, 8, 8).repeat(1, 3, 1, 1)
    gj = colour_jitter(g, 0.5)
    assert torch.allclose(gj[:, 0], gj[:, 1], atol=1e-6)


def test_config_is_strict():
    with pytest.raises(ConfigError, match="steps"):
        from_dict(SupervisedConfig, {"step": 3})
    cfg = from_dict(SupervisedConfig, {"model": {"v_dim": 8}, "head": "martinez"})
    assert cfg.model.v_dim == 8 and cfg.pose_config().head == "martinez"
    assert not cfg.pose_config().standardise_features
    with pytest.raises(ConfigError):
        SupervisedConfig(colour_jitter=1.5)


def test_true_box_crop_reads_the_given_box_and_never_trains_the_detector(ds, tmp_path):
    cfg = SupervisedConfig(model=TINY, hidden=16, fraction=0.25, steps=4, eval_every=2, batch_size=8,
                           val_by="take", val_fraction=0.3, threads=1, crop="true_box")
    det0 = {k: v.clone() for k, v in TemporalModel(TINY).detector.state_dict().items()}
    torch.manual_seed(0)
    sm = train_supervised(ds, cfg, model=_seeded_model(det0), progress=False)
    # the detector's weights are untouched: no loss reaches it when the true box is cropped
    for k, v in sm.model.detector.state_dict().items():
        torch.testing.assert_close(v, det0[k])
    frames = label_subset(ds, 0.2)
    fs = extract(sm.feature_fn, ds, frames, progress=False, pass_boxes=True)
    np.testing.assert_allclose(fs.pred_boxes, fs.boxes)    # the reported boxes are the true ones
    x = torch.rand(2, 3, 32, 32)
    with pytest.raises(SupervisedError, match="true_box"):
        sm.feature_fn(x)
    a = sm.feature_fn(x, torch.tensor([[4.0, 4.0, 14.0, 20.0]] * 2))["features"]
    b = sm.feature_fn(x, torch.tensor([[16.0, 10.0, 28.0, 30.0]] * 2))["features"]
    assert not torch.allclose(a, b)                          # the features come from the box's pixels
    back = SupervisedModel.load(sm.save(tmp_path / "sup"))
    assert back.needs_boxes
    fs2 = extract(back.feature_fn, ds, frames, progress=False, pass_boxes=True)
    np.testing.assert_allclose(fs2.features, fs.features, atol=1e-6)
    with pytest.raises(ConfigError, match="supervised.crop"):
        SupervisedConfig(crop="box")


def _seeded_model(detector_state):
    m = TemporalModel(dataclasses.replace(TINY, decoder=False))
    m.detector.load_state_dict(detector_state)
    return m
