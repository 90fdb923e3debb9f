"""fit-lifter's run folder: refusals, --resume from the run's own config, --labels-3d, evaluate's switches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import selfpose
from selfpose.cli import app

MOTION = Path(selfpose.__file__).parent / "assets" / "motion" / "cmu_h36m17approx_30fps.npz"
TINY = ["train_subjects=train", "martinez.width=16", "batch_size=8", "threads=1", "eval_every=2"]


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    d = tmp_path_factory.mktemp("lift") / "ds"
    r = CliRunner().invoke(app, ["prepare", "mocap", str(MOTION), "--out", str(d), "max_frames=12"])
    assert r.exit_code == 0, r.output
    return d


def test_rerun_needs_resume_or_overwrite_and_resume_uses_the_runs_config(ds, tmp_path):
    run, out = CliRunner(), tmp_path / "run"
    r = run.invoke(app, ["fit-lifter", "--data", str(ds), "--out", str(out), "steps=4", "checkpoint_every=2", *TINY])
    assert r.exit_code == 0, r.output
    assert (out / "config.yaml").is_file() and (out / "checkpoints").is_dir()
    r = run.invoke(app, ["fit-lifter", "--data", str(ds), "--out", str(out), *TINY])
    assert r.exit_code == 2 and "--resume" in r.output and "--overwrite" in r.output
    # --resume reads RUN/config.yaml: a longer budget continues from step 4
    r = run.invoke(app, ["fit-lifter", "--data", str(ds), "--out", str(out), "--resume", "steps=6"])
    assert r.exit_code != 0 and "another config" in r.output    # steps is part of the run's identity
    r = run.invoke(app, ["fit-lifter", "--data", str(ds), "--out", str(out), "--resume", "max_seconds=100"])
    assert r.exit_code == 0, r.output
    assert "trained 4 steps" in r.output
    r = run.invoke(app, ["fit-lifter", "--data", str(ds), "--out", str(tmp_path / "new"), "--resume", *TINY])
    assert r.exit_code == 2 and "no checkpoints" in r.output and not (tmp_path / "new").exists()


def test_labels_3d_is_refused_by_a_3d_only_method(ds, tmp_path):
    r = CliRunner().invoke(app, ["fit-lifter", "--data", str(ds), "--out", str(tmp_path / "r"), "--labels-3d",
                                 "train", "train_subjects=train,test", "steps=2", "martinez.width=8"])
    # "test" would be 2D-only: martinez has no 2D path, so the run is refused before anything is written
    assert r.exit_code == 2 and "learns from 3D labels only" in r.output and not (tmp_path / "r").exists()


def test_labels_3d_outside_the_training_subjects_is_a_config_error(ds, tmp_path):
    r = CliRunner().invoke(app, ["fit-lifter", "--data", str(ds), "--out", str(tmp_path / "r"), "--labels-3d", "S9",
                                 "train_subjects=train"])
    assert r.exit_code == 2 and "S9" in r.output


def test_evaluate_switches(ds, tmp_path):
    run, out = CliRunner(), tmp_path / "run"
    assert run.invoke(app, ["fit-lifter", "--data", str(ds), "--out", str(out), "steps=2", *TINY]).exit_code == 0
    clean = json.loads(run.invoke(app, ["evaluate", str(out), "--data", str(ds), "--subjects", "test",
                                        "--json"]).stdout)
    noisy = json.loads(run.invoke(app, ["evaluate", str(out), "--data", str(ds), "--subjects", "test", "--noise",
                                        "--json"]).stdout)
    assert clean["input_2d"] == "ground truth" and noisy["input_2d"].startswith("noisy")
    assert clean["overall"]["mpjpe"] != noisy["overall"]["mpjpe"]
    assert clean["correction"] is None     # martinez has no test-time correction
    (tmp_path / "pose").mkdir()
    (tmp_path / "pose" / "pose.json").write_text("{}")
    r = run.invoke(app, ["evaluate", str(tmp_path / "pose"), "--data", str(ds), "--noise"])
    assert r.exit_code == 2 and "lifter runs" in r.output


def test_val_subjects_select_on_held_out_people(ds, tmp_path):
    run, out = CliRunner(), tmp_path / "run"
    r = run.invoke(app, ["fit-lifter", "--data", str(ds), "--out", str(out), "steps=4", *TINY, "val_subjects=test"])
    assert r.exit_code == 0, r.output
    meta = json.loads((out / "lifter.json").read_text())
    from selfpose.lifting.data import load_arrays

    test_frames = len(load_arrays(ds, ["test"]))
    # every frame of the held-out person validates; none of the training person's takes is held out
    assert meta["val_frames"] == test_frames and meta["train_frames"] == len(load_arrays(ds, ["train"]))
    assert meta["subjects"] == ["train"]
    # without train_subjects every other subject trains
    r = run.invoke(app, ["fit-lifter", "--data", str(ds), "--out", str(tmp_path / "all"), "steps=2",
                         "train_subjects=[]", "val_subjects=test", *TINY[1:]])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "all" / "lifter.json").read_text())["subjects"] == ["train"]
    r = run.invoke(app, ["fit-lifter", "--data", str(ds), "--out", str(tmp_path / "x"), *TINY, "val_subjects=train"])
    assert r.exit_code == 2 and "not trained on" in r.output and not (tmp_path / "x").exists()
    r = run.invoke(app, ["fit-lifter", "--data", str(ds), "--out", str(tmp_path / "y"), *TINY, "val_subjects=S9"])
    assert r.exit_code == 2 and "val_subjects" in r.output and "S9" in r.output
