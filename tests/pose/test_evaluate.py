"""Metrics + box IoU on feature sets, the report files, and the whole pose stage in one call."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from selfpose.data.sequence import SequenceMeta
from selfpose.data.store import Dataset, DatasetWriter
from selfpose.pose.evaluate import detection_quality, evaluate, results_markdown, run_pose_stage, write_report
from selfpose.pose.features import FeatureError, extract
from selfpose.pose.fit import FittedPose, PoseConfig
from selfpose.pose.labels import label_subset

ACTIONS = ("walk", "sit", "jump")


def make_store(path, takes=6, T=30):
    """Two views per take; pixel (0, 0) encodes (frame, sequence) so a test feature function can
    look up the frame's true pose."""
    rng = np.random.default_rng(0)
    template = rng.normal(0, 250, (17, 3)).astype(np.float32)
    with DatasetWriter(path) as w:
        s = 0
        for k in range(takes):
            motion = template + np.cumsum(rng.normal(0, 15, (T, 17, 3)), axis=0).astype(np.float32)
            for v in range(2):
                frames = np.zeros((T, 8, 8, 3), np.uint8)
                frames[..., 0] = np.arange(T)[:, None, None]
                frames[..., 1] = s
                meta = SequenceMeta(id=f"t{k}_c{v}", subject=f"S{k % 2}", action=ACTIONS[k % 3], take=f"t{k}",
                                    view=f"c{v}", fps=10.0, num_frames=T, height=8, width=8)
                boxes = np.tile(np.array([1, 1, 6, 7], np.float32), (T, 1))
                w.write_sequence(meta, frames=frames, joints3d=motion + [0, 0, 3000 + 500 * v], boxes=boxes)
                s += 1
    return Dataset.open(path)


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return make_store(tmp_path_factory.mktemp("evaluate") / "store")


def perfect_fn(ds):
    table = [np.asarray(s["joints3d"]) for s in ds.sequences]

    def fn(x):
        code = (x[:, :2, 0, 0] * 255).round().long().numpy()
        j = np.stack([table[s][t] for t, s in code])
        return torch.from_numpy((j - j[:, :1]).reshape(len(j), -1))
    return fn


def test_evaluate_perfect_and_shifted_predictions(ds):
    fs = extract(perfect_fn(ds), ds, label_subset(ds, 1.0), progress=False)
    fs.pred_boxes = fs.boxes.copy()
    res = evaluate(fs.joints3d, fs)
    assert res["overall"]["mpjpe"] < 1e-6 and res["overall"]["count"] == len(fs) == res["num_samples"]
    assert set(res["per_action"]) == set(ACTIONS)
    assert res["detection"]["mean_iou"] == pytest.approx(1.0) and res["detection"]["hit_rate"] == 1.0
    # a 10 mm shift of every joint but the pelvis: MPJPE = 10·16/17 mm
    pred = fs.joints3d.copy()
    pred[:, 1:, 0] += 10.0
    res = evaluate(pred, fs)
    assert res["overall"]["mpjpe"] == pytest.approx(10 * 16 / 17, rel=1e-4)
    with pytest.raises(FeatureError, match="shape"):
        evaluate(pred[:3], fs)


def test_detection_quality_half_overlap():
    pred = np.array([[0, 0, 2, 2], [0, 0, 2, 2], [np.nan, 0, 1, 1]], float)
    true = np.array([[0, 0, 2, 2], [1, 0, 3, 2], [0, 0, 1, 1]], float)
    q = detection_quality(pred, true, ["a", "b", "b"])
    assert q["count"] == 2 and q["mean_iou"] == pytest.approx((1 + 1 / 3) / 2) and q["hit_rate"] == 0.5
    assert q["per_action"]["b"]["count"] == 1


def test_write_report(ds, tmp_path):
    fs = extract(perfect_fn(ds), ds, label_subset(ds, 0.5), progress=False)
    fs.pred_boxes = fs.boxes + 1
    res = evaluate(fs.joints3d + 5.0, fs)
    res["label_fraction"] = 0.5
    res["nan_value"] = float("nan")
    js, md = write_report(res, tmp_path / "report")
    back = json.loads(js.read_text())
    assert back["overall"]["count"] == len(fs) and back["nan_value"] is None and back["label_fraction"] == 0.5
    text = md.read_text()
    assert "N-MPJPE (mm)" in text and "## Per action" in text and "## Detection" in text
    for a in ACTIONS:
        assert f"| {a} |" in text
    assert "label_fraction" in text
    assert text == results_markdown(res)


def test_run_pose_stage_end_to_end(ds, tmp_path):
    train = ds.select(subjects=["S0"])
    test = ds.select(subjects=["S1"])
    cfg = PoseConfig(hidden=64, steps=150, eval_every=25, fraction=0.5, val_fraction=0.3, threads=1)
    fitted, res = run_pose_stage(perfect_fn(ds), train, test, cfg, out_dir=tmp_path / "run",
                                 box_fn=lambda x: torch.tensor([[1.0, 1, 6, 7]]).repeat(len(x), 1),
                                 progress=False)
    assert res["label_frames"] == res["train_frames"] + res["val_frames"]
    assert res["label_frames"] == sum(len(s) for s in train.sequences) // 2
    assert res["overall"]["count"] == sum(len(s) for s in test.sequences)
    assert res["detection"]["mean_iou"] == pytest.approx(1.0)
    assert (tmp_path / "run" / "results.json").is_file() and (tmp_path / "run" / "results.md").is_file()
    again = FittedPose.load(tmp_path / "run" / "pose_head")
    fs = extract(perfect_fn(ds), test, label_subset(test, 1.0), progress=False)
    np.testing.assert_array_equal(again.predict(fs), fitted.predict(fs))
    # perfect features beat the mean training pose (z-score mean) on the unseen subject
    mean_pose = np.broadcast_to(fitted.out_mean.view(17, 3).numpy(), fs.joints3d.shape)
    assert res["overall"]["n_mpjpe"] < 0.85 * evaluate(mean_pose, fs)["overall"]["n_mpjpe"]
