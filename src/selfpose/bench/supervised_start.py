"""The ceiling of a fine-tuning protocol: a start pretrained on other people's 3D labels.

A self-supervised start is worth what it adds over the same network from scratch (the ``scratch``
reference). How much *any* start could add under a label protocol is bounded by the start that knows
pose best: the scratch network trained — every stage, the fine-tuning stage's own loop — on the 3D labels
of the training people the protocol leaves unlabelled (the S1 protocol: S5, S6, S7; one of them held out
to keep the best step, never a test person), then fine-tuned exactly as the pretrained rows are. Two
rows of the transfer table per protocol:

* ``supervised_start``: that start, then fine-tuned on the protocol's labels (the ceiling row);
* ``supervised_start_alone``: the start's own test score, before fine-tuning (what the protocol's
  labels then add, or cost).

A protocol that labels every training person leaves nobody to pretrain on: it gets no such rows.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

#: The transfer table's names of the two rows.
CEILING, ALONE = "supervised_start", "supervised_start_alone"
#: What the run folder made from a start's weights records of them (to tell a stale one).
MADE_FROM = "made_from.json"


def unlabelled_people(train_people: list[str], protocol: dict) -> list[str]:
    """The training people a protocol labels none of (sorted); ``[]`` when it labels everyone."""
    labelled = set((protocol or {}).get("subjects") or [])
    return sorted(set(train_people) - labelled) if labelled else []


def start_stage_config(ft_cfg, people: list[str], steps: int):
    """The :class:`~selfpose.pose.stage.PoseStageConfig` that trains the start: ``ft_cfg`` (the protocol's
    scratch fine-tuning cell: every stage trains) on ``people``'s frames, every frame labelled, one person
    held out to keep the best step (held-out takes when there is only one), for ``steps`` steps (validated
    six times)."""
    from selfpose.config import from_dict, to_dict
    from selfpose.pose.finetune import FinetuneConfig

    if not people:
        raise ValueError("supervised_start needs at least one training person the protocol leaves unlabelled")
    pose = dataclasses.replace(ft_cfg.pose, fraction=1.0, val_by="subject" if len(people) > 1 else "take")
    finetune = from_dict(FinetuneConfig, {**to_dict(ft_cfg.finetune), "frozen_stages": 0, "steps": int(steps),
                                          "eval_every": max(1, int(steps) // 6), "head_warmup_steps": 0,
                                          "method_lr_scale": 1.0})
    # every frame of those people: a protocol's look limit is about whom it labels, not about the start
    return dataclasses.replace(ft_cfg, pose=pose, subjects=tuple(people), looks_per_subject=None, finetune=finetune)


def write_start_run(pose_dir: Path, scratch_run: Path, run_dir: Path, steps: int) -> Path:
    """A pretraining-run folder at ``run_dir`` holding the trained start of ``pose_dir`` (its ``encoder/``
    weights under ``scratch_run``'s config), so fine-tuning reads it as any run. Rewritten only when it is
    missing or made from other weights; built beside it and swapped in whole."""
    from selfpose.pose.stage import load_pose
    from selfpose.training.checkpoint import save_checkpoint

    record = json.loads((pose_dir / "pose.json").read_text())["encoder"]
    made = {"pose_dir": str(Path(pose_dir).resolve()), "sha256": record["sha256"]}
    marker = run_dir / MADE_FROM
    if marker.is_file() and json.loads(marker.read_text()) == made:
        return run_dir
    if run_dir.exists() and not marker.is_file():
        raise FileExistsError(f"{run_dir} exists and was not made by the supervised_start reference; move it away")
    tmp = run_dir.with_name(run_dir.name + ".tmp")
    if tmp.exists():   # a half-written start of an interrupted call (the name is this function's own)
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    shutil.copyfile(scratch_run / "config.yaml", tmp / "config.yaml")
    state = {k: v.detach().clone() for k, v in load_pose(pose_dir).method.state_dict().items()}
    save_checkpoint(tmp, int(steps), state, None, {"step": int(steps), "note": "supervised_start: trained on "
                                                   "3D labels by the benchmark's ceiling reference"})
    (tmp / MADE_FROM).write_text(json.dumps(made))
    old = run_dir.with_name(run_dir.name + ".old")
    if run_dir.exists():   # a stale start of ours (the marker says so): aside until the new one is in place
        if old.exists():
            shutil.rmtree(old)
        run_dir.rename(old)
    tmp.rename(run_dir)
    if old.exists():
        shutil.rmtree(old)
    return run_dir


__all__ = ("ALONE", "CEILING", "start_stage_config", "unlabelled_people", "write_start_run")
