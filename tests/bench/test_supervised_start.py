"""The ceiling reference's pieces (selfpose.bench.supervised_start); its cells run in tests/bench/test_transfer.py."""

from __future__ import annotations

import json

import pytest
import torch

from selfpose.bench.supervised_start import MADE_FROM, start_stage_config, unlabelled_people, write_start_run
from selfpose.config import from_dict, to_dict
from selfpose.pose.stage import PoseStageConfig


def test_unlabelled_people_are_those_the_protocol_does_not_label():
    assert unlabelled_people(["S1", "S5", "S6", "S7"], {"subjects": ["S1"]}) == ["S5", "S6", "S7"]
    assert unlabelled_people(["S1", "S5"], {}) == []                  # every training person labelled
    assert unlabelled_people(["S1", "S5"], None) == []


def test_the_start_trains_every_stage_on_all_frames_holding_out_a_person():
    ft = from_dict(PoseStageConfig, {"pose": {"fraction": 1.0, "val_by": "take", "seed": 3}, "subjects": ["S1"],
                                     "finetune": {"enabled": True, "steps": 1000, "frozen_stages": 3}})
    cfg = start_stage_config(ft, ["S5", "S6", "S7"], 3000)
    assert cfg.subjects == ("S5", "S6", "S7") and cfg.pose.val_by == "subject" and cfg.pose.fraction == 1.0
    assert cfg.finetune.frozen_stages == 0 and cfg.finetune.steps == 3000 and cfg.finetune.eval_every == 500
    assert cfg.pose.seed == 3 and ft.finetune.steps == 1000                    # the protocol's config untouched
    assert start_stage_config(ft, ["S5"], 10).pose.val_by == "take"           # one person: held-out takes
    one_look = from_dict(PoseStageConfig, {**to_dict(ft), "looks_per_subject": 1})
    assert start_stage_config(one_look, ["S5"], 10).looks_per_subject is None   # all of the start's people's looks
    with pytest.raises(ValueError, match="at least one"):
        start_stage_config(ft, [], 10)


def _pose_dir(path, sha: str):
    path.mkdir(parents=True)
    (path / "pose.json").write_text(json.dumps({"encoder": {"sha256": sha}}))
    return path


def test_the_start_run_is_reused_replaced_when_stale_and_never_overwrites_another_folder(tmp_path, monkeypatch):
    import selfpose.pose.stage as stage

    class Loaded:   # load_pose's result, reduced to what write_start_run reads
        method = torch.nn.Linear(2, 2)

    monkeypatch.setattr(stage, "load_pose", lambda d: Loaded)
    scratch = tmp_path / "scratch_s0"
    scratch.mkdir()
    (scratch / "config.yaml").write_text("method: sync\n")
    run = tmp_path / "runs" / "supervised_start_s1_s0"
    got = write_start_run(_pose_dir(tmp_path / "a", "aaa"), scratch, run, 7)
    assert got == run and (run / "config.yaml").read_text() == "method: sync\n"
    assert json.loads((run / MADE_FROM).read_text())["sha256"] == "aaa"
    assert (run / "checkpoints" / "latest").is_file() and not run.with_name(run.name + ".tmp").exists()
    stamp = (run / MADE_FROM).stat().st_mtime_ns
    write_start_run(tmp_path / "a", scratch, run, 7)                         # same start: reused
    assert (run / MADE_FROM).stat().st_mtime_ns == stamp
    write_start_run(_pose_dir(tmp_path / "b", "bbb"), scratch, run, 7)        # another start: replaced
    assert json.loads((run / MADE_FROM).read_text())["sha256"] == "bbb"
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="not made by"):
        write_start_run(tmp_path / "a", scratch, other, 7)
    assert (other / "notes.txt").read_text() == "keep"
