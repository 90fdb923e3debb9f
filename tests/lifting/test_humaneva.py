"""The HumanEva-I lifting protocol: split selection, scoring on the real joints, the table, short chunks, calibration."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from selfpose.config import ConfigError, from_dict
from selfpose.lifting.data import LiftingArrays
from selfpose.lifting.humaneva import (DERIVED_JOINTS, PUBLISHED, REAL_JOINTS, HumanEvaProtocol, calibration_check,
                                       evaluate_lifter, protocol_arrays, protocol_masks, results_table, score,
                                       sequence_splits, short_chunks)


def _source(shared_data):
    src = shared_data / "fixtures" / "humaneva"
    if not (src / "data_3d_humaneva15.npz").is_file():
        pytest.skip(f"HumanEva-I sample files not found in {src}")
    return src


def test_real_joints_are_the_fifteen_humaneva_has():
    assert len(REAL_JOINTS) == 15 and not set(REAL_JOINTS) & set(DERIVED_JOINTS)
    assert set(REAL_JOINTS) | set(DERIVED_JOINTS) == set(range(17))


def test_protocol_masks_pick_train_chunks_for_training_and_validate_chunks_for_test():
    seqs = np.array(["a", "b", "c", "d", "e", "f", "g"])
    splits = {"a": "Train", "b": "Train", "c": "Validate", "d": "Validate", "e": "Train", "f": "Validate",
              "g": "Validate"}
    subjects = np.array(["S1", "S2", "S3", "S1", "S1", "S4", "S2"])
    actions = np.array(["Walking", "Gestures", "Box", "Jog", "Box", "Walking", "ThrowCatch"])
    train, test = protocol_masks(seqs, subjects, actions, splits, HumanEvaProtocol())
    assert train.tolist() == [True, False, False, False, True, False, False]      # Gestures not trained on
    assert test.tolist() == [False, False, True, True, False, False, False]       # S4, ThrowCatch not tested
    assert not (train & test).any()
    train_all, test_all = protocol_masks(seqs, subjects, actions, splits,
                                         HumanEvaProtocol(train_actions=(), test_actions=()))
    assert train_all.tolist() == [True, True, False, False, True, False, False]
    assert test_all.tolist() == [False, False, True, True, False, False, True]    # every action, still no S4


def test_protocol_config_is_strict():
    with pytest.raises(ConfigError, match="unknown config key"):
        from_dict(HumanEvaProtocol, {"val_frac": 0.1})
    with pytest.raises(ConfigError):
        HumanEvaProtocol(joints="all15")
    with pytest.raises(ConfigError):
        HumanEvaProtocol(val_fraction=1.0)


def _poses(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    p = rng.normal(0, 300, (n, 17, 3))
    return p - p[:, :1]


def test_score_cells_average_and_joint_selection():
    target = _poses(6)
    subjects = np.array(["S1", "S1", "S1", "S2", "S2", "S2"])
    actions = np.array(["Walking", "Walking", "Box", "Walking", "Walking", "Walking"])
    pred = target.copy()
    pred[:, 7, 0] += 100.0   # only the derived spine is wrong
    res15 = score(pred, target, subjects, actions)
    assert set(res15["cells"]) == {"Walking/S1", "Box/S1", "Walking/S2"}
    assert res15["cells"]["Walking/S2"]["count"] == 3 and res15["cells"]["Box/S1"]["count"] == 1
    assert res15["average"]["p_mpjpe"] < 1e-6 and res15["average"]["mpjpe"] < 1e-6   # not scored on 15 joints
    assert set(res15["per_joint"]) == set(REAL_JOINTS) and max(res15["per_joint"].values()) < 1e-6
    res17 = score(pred, target, subjects, actions, joints=None)
    assert max(res17["per_joint"], key=res17["per_joint"].get) == 7       # the wrong joint carries the error
    assert res17["overall"]["mpjpe"] == pytest.approx(100.0 / 17, rel=1e-5)
    # Average = unweighted over cells; overall = over frames.
    pred2 = target.copy()
    pred2[actions == "Box", 3, 0] += 170.0                   # one Box frame, one joint 170 mm off
    res = score(pred2, target, subjects, actions)
    assert res["cells"]["Box/S1"]["mpjpe"] == pytest.approx(170.0 / 15)
    assert res["average"]["mpjpe"] == pytest.approx(170.0 / 15 / 3)
    assert res["overall"]["mpjpe"] == pytest.approx(170.0 / 15 / 6)


def test_table_layout_and_published_rows():
    res = {"cells": {"Walking/S1": {"p_mpjpe": 10.0}, "Box/S3": {"p_mpjpe": 30.0}}}
    table = results_table({"ours": res}).splitlines()
    header = [c.strip() for c in table[0].strip("|").split("|")]
    assert header[0] == "Method" and header[-1] == "Avg"
    assert header[1:-1] == [f"{a} {s}" for a in ("Walking", "Jog", "Box") for s in ("S1", "S2", "S3")]
    assert len(table) == 2 + 1 + len(PUBLISHED)
    ours = [c.strip() for c in table[2].strip("|").split("|")]
    assert ours[1] == "10.0" and ours[9] == "30.0" and ours[2] == "–" and ours[-1] == "20.0"
    martinez = [c.strip() for c in table[3].strip("|").split("|")]
    assert martinez[0].startswith("Martinez") and martinez[1] == "19.7" and martinez[7] == "–"
    assert martinez[-1] == "24.6"                                 # the Avg the paper prints
    assert all(len(row.split("|")) == len(table[0].split("|")) for row in table)
    assert len(results_table({"ours": res}, published=False).splitlines()) == 3


def test_short_chunks_counts_takes_and_frames():
    takes = np.array(["a"] * 6 + ["b"] * 40 + ["c"] * 4)     # a: 2 views × 3 frames
    seqs = np.array(["a1"] * 3 + ["a2"] * 3 + ["b1"] * 40 + ["c1"] * 4)
    n = len(takes)
    arr = LiftingArrays(joints2d=np.zeros((n, 17, 2)), joints3d=None, visible=np.ones((n, 17)),
                        image_hw=np.zeros((n, 2)), focal=np.zeros((n, 2)), principal=np.zeros((n, 2)),
                        subjects=np.full(n, "S1"), actions=np.full(n, "Box"), takes=takes, sequences=seqs,
                        frame_ids=np.arange(n))
    s = short_chunks(arr, 27)
    assert (s["chunks"], s["short_chunks"], s["short_frames"], s["frames"]) == (3, 2, 10, 50)


@pytest.fixture(scope="module")
def humaneva_store(tmp_path_factory, shared_data):
    from selfpose.cli import app

    src = _source(shared_data)
    out = tmp_path_factory.mktemp("he") / "HE"
    r = CliRunner().invoke(app, ["prepare", "humaneva", str(src), "--out", str(out)])
    assert r.exit_code == 0, r.output
    return src, out


def test_protocol_arrays_on_the_real_files(humaneva_store):
    _, data = humaneva_store
    splits = sequence_splits(data)
    assert set(splits.values()) == {"Train", "Validate"}
    train, val, test = protocol_arrays(data)
    for part, split in ((train, "Train"), (val, "Train"), (test, "Validate")):
        assert {splits[s] for s in set(part.sequences)} == {split}
        assert set(part.actions) == {"Walking", "Jog", "Box"} or part is val
        assert set(part.subjects) <= {"S1", "S2", "S3"}
    assert not set(train.takes) & set(val.takes)                  # whole chunks held out
    views = {t: {s for s, tk in zip(val.sequences, val.takes) if tk == t} for t in set(val.takes)}
    assert all(len(v) == 3 for v in views.values())                # all three cameras of a held-out chunk
    assert 0.05 < len(val) / (len(train) + len(val)) < 0.25
    assert set(test.subjects) == {"S1", "S2", "S3"}

    class Oracle:   # any object with Lifter.predict's signature
        def predict(self, arrays, noise=None, seed=0):
            return arrays.joints3d + 5.0 * (np.arange(17) == 4)[None, :, None]   # left hip off by (5, 5, 5) mm

    res = evaluate_lifter(Oracle(), test)
    assert len(res["cells"]) == 9
    assert res["average"]["mpjpe"] == pytest.approx(5.0 * np.sqrt(3) / 15, rel=1e-4)


def test_calibrating_from_train_chunks_only_changes_nothing_that_matters(shared_data):
    src = _source(shared_data)
    res = calibration_check(src, subjects=("S1",))
    assert set(res) == {"S1_C1", "S1_C2", "S1_C3"}
    for c in res.values():
        assert c["pose_shift_max_mm"] < 0.1
        assert c["val_rms_px_train_only"] < 0.05 and abs(c["val_rms_px_train_only"] - c["val_rms_px_all"]) < 0.01


def test_fit_lifter_on_train_chunks_and_evaluate_on_validate_chunks(humaneva_store, tmp_path):
    humaneva_store = humaneva_store[1]
    """The protocol from the command line: train_splits=Train, evaluate --split Validate."""
    import json

    from typer.testing import CliRunner

    from selfpose.cli import app

    run, out = CliRunner(), tmp_path / "run"
    r = run.invoke(app, ["fit-lifter", "--data", str(humaneva_store), "--out", str(out), "train_subjects=",
                         "train_splits=Train", "steps=3", "martinez.width=16", "batch_size=8", "threads=1"])
    assert r.exit_code == 0, r.output
    res = json.loads(run.invoke(app, ["evaluate", str(out), "--data", str(humaneva_store), "--split", "Validate",
                                      "--json"]).stdout)
    from selfpose.lifting.data import load_arrays

    assert res["splits"] == ["Validate"]
    assert res["num_samples"] == len(load_arrays(humaneva_store, splits=["Validate"])) < \
        len(load_arrays(humaneva_store))
    r = run.invoke(app, ["evaluate", str(out), "--data", str(humaneva_store), "--split", "Test"])
    assert r.exit_code == 2 and "Train, Validate" in r.output
