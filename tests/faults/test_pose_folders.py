"""A pose folder is tied to the encoder it was fitted on (issue 11, item 3).

Before: after `pretrain --resume` of its run, `evaluate` silently used the newer
encoder (105.5 mm became 146.7 mm, exit 0). Now fit-pose keeps a link to the
exact weights (and run config) in the pose folder and records step + sha256;
pruning by keep_checkpoints cannot strand it, and a changed file is refused.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from selfpose.config import from_dict
from selfpose.pose.encoder import EncoderMismatch
from selfpose.pose.stage import PoseStageConfig, evaluate_pose_stage, fit_pose_stage
from selfpose.pretrain import PretrainConfig, load_run, pretrain
from selfpose.training.checkpoint import list_checkpoints

SMALL = dict(image_size=48, crop_size=24, detector_input=24, detector_width=8, encoder_width=8, v_dim=8,
             i_dim=8, decoder_channels=8, decoder_hidden=32)


def _cfg(steps: int) -> PretrainConfig:
    return from_dict(PretrainConfig, {
        "method": "temporal", "model": SMALL, "loss": {"perceptual_width": 8, "jitter": False},
        "sampler": {"d_pos_s": 0.2, "d_neg_s": 1.0},
        "train": {"steps": steps, "batch_size": 2, "checkpoint_every": 2, "picture_every": 100, "keep_checkpoints": 1,
                  "num_workers": 0, "threads": 1}})


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A run trained 2 steps, a pose folder fitted on it, its figures; then the run resumed to 6 steps."""
    from selfpose.data.synthetic.synthesize import SynthConfig, synthesize

    root = tmp_path_factory.mktemp("posefolders")
    data = synthesize(SynthConfig(scenario="lab", height=48, width=48, max_sequences=2, max_seconds=3,
                                  num_subjects=2), root / "lab", progress=False)
    run, pose = root / "run", root / "pose"
    pretrain(_cfg(2), data, run, progress=False)
    fit = fit_pose_stage(run, data, pose, from_dict(PoseStageConfig, {"pose": {"fraction": 1.0, "steps": 10}}),
                         progress=False)
    before = evaluate_pose_stage(pose, data, progress=False)
    pretrain(_cfg(6), data, run, resume=True, progress=False)
    return {"data": data, "run": run, "pose": pose, "fit": fit, "before": before}


def test_resume_with_pruning_leaves_the_pose_folder_usable(fitted):
    run, pose = fitted["run"], fitted["pose"]
    assert fitted["fit"]["encoder"]["step"] == 2
    assert [s for s, _ in list_checkpoints(run)] == [6]         # keep_checkpoints=1 pruned step 2
    assert load_run(run).step == 6                                  # the run moved on ...
    after = evaluate_pose_stage(pose, fitted["data"], progress=False)
    for k in ("n_mpjpe", "mpjpe", "p_mpjpe"):                       # ... the pose folder did not
        assert after["overall"][k] == fitted["before"]["overall"][k]
    info = json.loads((pose / "pose.json").read_text())
    assert info["encoder"]["step"] == 2 and len(info["encoder"]["sha256"]) == 64
    assert info["encoder"]["kept_as"] == "link"                    # same filesystem: no extra bytes
    # the test means something: the resumed run's encoder gives other features than the pinned one
    import torch

    from selfpose.pose.stage import load_pose

    x = torch.randint(0, 256, (2, 3, 48, 48), dtype=torch.uint8)
    with torch.no_grad():
        pinned = load_pose(pose).method.pose_features(x)
        newer = load_run(run).method.pose_features(x)
    assert not torch.allclose(pinned, newer)


def _cli(*args):
    from selfpose.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def test_changed_or_missing_encoder_is_a_one_line_error(fitted, tmp_path):
    pose = tmp_path / "pose"
    shutil.copytree(fitted["pose"], pose)          # a copy: the original (and the run) stay as they were
    w = pose / "encoder" / "model.safetensors"
    data = bytearray(w.read_bytes())
    data[-1] ^= 0xFF                               # one byte of the weights changed
    w.unlink()
    w.write_bytes(bytes(data))
    with pytest.raises(EncoderMismatch, match="not the encoder it was fitted on"):
        evaluate_pose_stage(pose, fitted["data"], progress=False)
    r = _cli("evaluate", pose, "--data", fitted["data"])
    assert r.exit_code == 2 and r.output.count("\n") == 1 and r.output.startswith("error:")
    assert "fit the pose head again" in r.output and "Traceback" not in r.output
    assert not (pose / "results.md").exists() or (pose / "results.md").read_text() == \
        (fitted["pose"] / "results.md").read_text()   # nothing overwritten with other figures

    # the pinned config is a copy (an edit of the run's config made in place does not reach it), hash-checked
    c = pose / "encoder" / "config.yaml"
    assert c.stat().st_ino != (fitted["run"] / "config.yaml").stat().st_ino
    text = c.read_text()
    w.write_bytes((fitted["pose"] / "encoder" / "model.safetensors").read_bytes())   # the weights intact again
    c.write_text(text + "\n# edited\n")
    with pytest.raises(EncoderMismatch, match="not the run config it was fitted with"):
        evaluate_pose_stage(pose, fitted["data"], progress=False)
    c.write_text(text)

    w.unlink()
    with pytest.raises(EncoderMismatch, match="is missing"):
        evaluate_pose_stage(pose, fitted["data"], progress=False)
    info = json.loads((pose / "pose.json").read_text())
    del info["encoder"]
    (pose / "pose.json").write_text(json.dumps(info))
    with pytest.raises(EncoderMismatch, match="older selfpose"):
        evaluate_pose_stage(pose, fitted["data"], progress=False)
    # the original pose folder is untouched by all this
    again = evaluate_pose_stage(fitted["pose"], fitted["data"], progress=False)
    assert again["overall"]["n_mpjpe"] == fitted["before"]["overall"]["n_mpjpe"]
    assert np.isfinite(again["overall"]["n_mpjpe"])
