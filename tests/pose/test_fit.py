"""The pose head learns from good features, not from noise; selection, persistence, config."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from selfpose.config import ConfigError, from_dict
from selfpose.data.store import Dataset
from selfpose.data.synthetic.synthesize import SynthConfig, synthesize
from selfpose.evaluation.metrics import n_mpjpe
from selfpose.pose.features import FeatureError, extract
from selfpose.pose.fit import FittedPose, PoseConfig, PoseFitError, fit_pose, pose_inputs
from selfpose.pose.labels import label_subset, split_validation

SMALL = dict(hidden=128, width=128, blocks=1, steps=200, eval_every=25, batch_size=64, threads=1)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A 4-take synthetic lab store, and a test-only "perfect" feature function: the frame's true
    pelvis-centred 3D joints (flattened), found by looking the frame's pixels up in the store."""
    path = synthesize(SynthConfig(scenario="lab", height=32, width=32, max_sequences=4, max_seconds=3,
                                  num_subjects=2), tmp_path_factory.mktemp("fit") / "lab", progress=False)
    ds = Dataset.open(path)
    lut = {}
    for s in ds:
        frames, j3 = s["frames"], np.asarray(s["joints3d"])
        for t in range(len(s)):
            lut[frames[t].tobytes()] = (j3[t] - j3[t, :1]).ravel()

    def perfect(x):
        u = (x * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
        return torch.from_numpy(np.stack([lut[im.tobytes()] for im in u]))

    tr, va = split_validation(ds, label_subset(ds, 1.0), 0.25, by="take", seed=0)
    fs_tr, fs_va = (extract(perfect, ds, f, progress=False) for f in (tr, va))
    return ds, perfect, fs_tr, fs_va


def mean_pose_error(train, val):
    return n_mpjpe(np.broadcast_to(train.joints3d.mean(0), val.joints3d.shape), val.joints3d)


@pytest.mark.parametrize("head", ["mlp", "martinez"])
def test_head_learns_from_perfect_features(data, head):
    _, _, tr, va = data
    fitted = fit_pose(tr, PoseConfig(head=head, **SMALL), va, progress=False)
    base = mean_pose_error(tr, va)
    err = n_mpjpe(fitted.predict(va), va.joints3d)
    assert err < 0.6 * base, (err, base)
    # the kept checkpoint is the best validation step of the curve
    vals = [r["val_n_mpjpe"] for r in fitted.curve]
    assert fitted.best_step == fitted.curve[int(np.argmin(vals))]["step"]
    assert abs(err - min(vals)) < 1e-2
    assert fitted.curve[-1]["train_loss"] < fitted.curve[0]["train_loss"]


def test_head_does_not_learn_from_noise(data):
    _, _, tr, va = data
    rng = np.random.default_rng(0)
    tr, va = tr.subset(slice(None)), va.subset(slice(None))
    tr.features = rng.normal(size=(len(tr), 51)).astype(np.float32)
    va.features = rng.normal(size=(len(va), 51)).astype(np.float32)
    fitted = fit_pose(tr, PoseConfig(**SMALL), va, progress=False)
    assert fitted.best_val_n_mpjpe > 0.9 * mean_pose_error(tr, va)


@pytest.mark.parametrize("head", ["mlp", "martinez"])
def test_save_load_gives_identical_predictions(data, head, tmp_path):
    _, _, tr, va = data
    fitted = fit_pose(tr, PoseConfig(head=head, **{**SMALL, "steps": 20}), va, progress=False)
    back = FittedPose.load(fitted.save(tmp_path / "head"))
    np.testing.assert_array_equal(back.predict(va), fitted.predict(va))
    np.testing.assert_array_equal(back.predict(va.features), fitted.predict(va))
    assert back.cfg == fitted.cfg and back.best_step == fitted.best_step and back.curve == fitted.curve
    assert not list(tmp_path.glob("head/*.pt")) and not list(tmp_path.glob("head/*.pkl"))
    (tmp_path / "head" / "pose_head.safetensors").write_bytes(b"junk")
    with pytest.raises(PoseFitError, match="fit-pose"):
        FittedPose.load(tmp_path / "head")


def test_internal_validation_split_and_no_validation(data):
    _, _, tr, _ = data
    fitted = fit_pose(tr, PoseConfig(**{**SMALL, "steps": 30, "val_fraction": 0.3}), progress=False)
    assert fitted.best_step is not None and "val_n_mpjpe" in fitted.curve[0]
    fitted = fit_pose(tr, PoseConfig(**{**SMALL, "steps": 30, "val_fraction": 0.0}), progress=False)
    assert fitted.best_step is None and fitted.curve[-1]["step"] == 30
    pred = fitted.predict(tr)
    assert pred.shape == (len(tr), 17, 3) and np.all(pred[:, 0] == 0)


def test_val_max_frames_validates_on_evenly_spaced_held_out_frames(data):
    from selfpose.pose.labels import evenly_spaced, holdout_mask

    _, _, tr, _ = data
    cfg = PoseConfig(**{**SMALL, "steps": 30, "val_fraction": 0.3, "val_max_frames": 7})
    fitted = fit_pose(tr, cfg, progress=False)
    held = np.flatnonzero(holdout_mask(tr.takes, tr.sequence_ids, tr.frame_ids, 0.3, cfg.val_by, cfg.seed,
                                       subjects=tr.subjects))
    capped, full = tr.subset(evenly_spaced(held, 7)), tr.subset(held)
    assert len(held) > 7 and len(capped) == 7
    # the kept head's validation figure is its error on exactly those 7 frames, not on every held-out one
    assert fitted.best_val_n_mpjpe == pytest.approx(n_mpjpe(fitted.predict(capped), capped.joints3d), rel=1e-4)
    assert fitted.best_val_n_mpjpe != pytest.approx(n_mpjpe(fitted.predict(full), full.joints3d), rel=1e-4)


def test_epochs_patience_and_2d_inputs(data):
    _, _, tr, va = data
    cfg = PoseConfig(**{**SMALL, "epochs": 3, "batch_size": 100, "eval_every": 1})
    fitted = fit_pose(tr, cfg, va, progress=False)
    assert fitted.curve[-1]["step"] == 3 * int(np.ceil(len(tr) / 100))
    fitted = fit_pose(tr, PoseConfig(**{**SMALL, "steps": 400, "eval_every": 5, "patience": 2, "lr": 0.3}),
                      va, progress=False)
    assert fitted.curve[-1]["step"] < 400  # stopped early
    fitted = fit_pose(tr, PoseConfig(**{**SMALL, "steps": 10, "use_2d": True}), va, progress=False)
    assert fitted.in_dim == tr.dim + 34 and pose_inputs(va, True).shape[1] == fitted.in_dim
    assert fitted.predict(va).shape == (len(va), 17, 3)
    with pytest.raises(FeatureError, match="use_2d"):
        fitted.predict(va.features)


def test_bf16_autocast_and_thread_count_restored(data):
    _, _, tr, va = data
    before = torch.get_num_threads()
    fitted = fit_pose(tr, PoseConfig(**{**SMALL, "steps": 100, "autocast": True, "threads": 1}), va,
                      progress=False)
    assert torch.get_num_threads() == before
    assert fitted.best_val_n_mpjpe < 0.8 * mean_pose_error(tr, va)
    assert fitted.predict(va).dtype == np.float32


def test_config_is_strict():
    with pytest.raises(ConfigError, match="hidden"):
        from_dict(PoseConfig, {"hiden": 10})
    with pytest.raises(ConfigError):
        PoseConfig(head="transformer")
    with pytest.raises(ConfigError):
        PoseConfig(fraction=0)
    assert from_dict(PoseConfig, {"head": "martinez", "steps": "50"}).steps == 50
    with pytest.raises(ConfigError, match="pose.device must be cpu, cuda, cuda:N or auto"):
        PoseConfig(device="gpu0")


def test_the_head_trains_where_asked_and_a_missing_gpu_is_one_line(data, monkeypatch):
    _, _, tr, va = data
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    fitted = fit_pose(tr, PoseConfig(steps=5, device="auto"), va, progress=False)   # auto: the CPU here
    assert next(fitted.head.parameters()).device.type == "cpu"
    with pytest.raises(ConfigError, match="^pose.device=cuda but this torch .* sees no CUDA GPU"):
        fit_pose(tr, PoseConfig(steps=5, device="cuda"), va, progress=False)


def test_needs_3d(data):
    _, _, tr, _ = data
    no3d = tr.subset(slice(None))
    no3d.joints3d = None
    with pytest.raises(PoseFitError, match="joints3d"):
        fit_pose(no3d, PoseConfig(**SMALL), progress=False)
