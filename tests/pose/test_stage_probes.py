"""The pose stage fits the probes beside its head, selects both on held-out people, and reports them together."""

from __future__ import annotations

import json

import numpy as np
import pytest

from selfpose.config import from_dict
from selfpose.pose.stage import PoseStageConfig, evaluate_pose_stage, fit_pose_stage, load_pose

SMALL = dict(image_size=32, crop_size=16, detector_input=16, detector_width=4, encoder_width=4, v_dim=8,
             i_dim=8, decoder_channels=8, decoder_hidden=16)


@pytest.fixture(scope="module")
def run_and_data(tmp_path_factory):
    """A randomly initialised run and a tiny lab dataset of three people."""
    from selfpose.data.synthetic.synthesize import SynthConfig, synthesize
    from selfpose.pretrain import PretrainConfig, init_run

    root = tmp_path_factory.mktemp("stageprobes")
    data = synthesize(SynthConfig(scenario="lab", height=32, width=32, max_sequences=3, max_seconds=2,
                                  num_subjects=3, views=2), root / "lab", progress=False)
    cfg = from_dict(PretrainConfig, {"method": "temporal", "model": SMALL, "loss": {"perceptual_width": 8},
                                     "train": {"steps": 1, "batch_size": 2, "num_workers": 0, "threads": 1}})
    init_run(cfg, data, root / "run")
    return root / "run", data


def test_probes_are_fitted_selected_on_held_out_people_and_reported(run_and_data, tmp_path):
    run, data = run_and_data
    cfg = from_dict(PoseStageConfig, {"pose": {"fraction": 1.0, "steps": 5, "eval_every": 5, "hidden": 16,
                                               "val_by": "subject", "val_fraction": 0.2},
                                      "probes": {"knn_ks": [3, 1]}})
    info = fit_pose_stage(run, data, tmp_path / "pose", cfg, progress=False)
    # selection saw only people the heads never trained on
    assert info["val_subjects"] and info["train_subjects"]
    assert not set(info["val_subjects"]) & set(info["train_subjects"])
    assert set(info["probes"]) == {"ridge", "knn"} and info["probes"]["knn"]["chosen"] in (3, 1)
    assert set(info["probes"]["ridge"]["val_n_mpjpe"]) == {f"{a:g}" for a in cfg.probes.ridge_alphas}
    assert json.loads((tmp_path / "pose" / "pose.json").read_text())["val_subjects"] == info["val_subjects"]

    res = evaluate_pose_stage(tmp_path / "pose", data, progress=False)
    assert set(res["probes"]) == {"ridge", "knn"}
    for p in res["probes"].values():
        assert np.isfinite(p["n_mpjpe"]) and p["count"] == res["overall"]["count"]
    md = (tmp_path / "pose" / "results.md").read_text()
    assert "## Probes" in md and "MLP head" in md and "ridge probe, alpha" in md and "k-NN probe, k" in md
    # the saved probes, reloaded, predict what evaluate scored
    from selfpose.data.store import Dataset
    from selfpose.evaluation.metrics import n_mpjpe
    from selfpose.pose.features import extract
    from selfpose.pose.labels import label_subset
    from selfpose.pose.stage import pose_feature_fn

    lp = load_pose(tmp_path / "pose")
    assert lp.probes is not None and lp.probes.kinds == ("ridge", "knn")
    ds = Dataset.open(data)
    fs = extract(pose_feature_fn(lp.method), ds, label_subset(ds, 1.0), autocast="auto", progress=False)   # as evaluate
    for k, pred in lp.probes.predict(fs.features).items():
        assert float(n_mpjpe(pred, fs.joints3d)) == pytest.approx(res["probes"][k]["n_mpjpe"], rel=1e-5)


def test_no_probes_leaves_a_head_only_pose_folder(run_and_data, tmp_path):
    run, data = run_and_data
    cfg = from_dict(PoseStageConfig, {"pose": {"fraction": 1.0, "steps": 2, "hidden": 16, "val_fraction": 0.0},
                                      "probes": {"kinds": []}})
    info = fit_pose_stage(run, data, tmp_path / "pose", cfg, progress=False)
    assert info["probes"] == {} and info["val_subjects"] == [] and info["val_n_mpjpe"] is None
    assert not (tmp_path / "pose" / "probes").exists()
    res = evaluate_pose_stage(tmp_path / "pose", data, progress=False)
    assert "probes" not in res and "## Probes" not in (tmp_path / "pose" / "results.md").read_text()


def test_fit_pose_without_the_asked_gpu_fails_before_reading_anything(tmp_path, monkeypatch):
    import torch

    from selfpose.config import ConfigError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = from_dict(PoseStageConfig, {"pose": {"device": "cuda"}})
    with pytest.raises(ConfigError, match="^pose.device=cuda but this torch"):
        fit_pose_stage(tmp_path / "no_run", tmp_path / "no_data", tmp_path / "pose", cfg, progress=False)
    assert not (tmp_path / "pose").exists()
