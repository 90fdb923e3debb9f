"""The benchmark's ablation rows (variants) and transfer-by-fine-tuning cells, with the from-scratch reference."""

from __future__ import annotations

import json

import pytest
import torch

from selfpose.bench.config import BenchmarkConfig
from selfpose.bench.run import finetune_stage_config, pretrain_config, run_benchmark
from selfpose.config import ConfigError, from_dict

SYNTH = {"scenario": "lab", "height": 64, "width": 64, "max_sequences": 3, "max_seconds": 4, "num_subjects": 2}
SYNC = {
    "methods": ["sync", "sync_keep"], "references": ["scratch", "supervised_start", "mean_pose"], "shares": [1.0],
    "seeds": [0], "supervised_start_steps": 4,
    "steps": 4, "pose_steps": 10, "pretrain_config": None, "analysis": False,
    "variants": {"sync_keep": {"method": "sync", "method_config": {"sync": {"background": "keep"}}}},
    "finetune_for": ["sync"], "finetune": {"steps": 4, "eval_every": 2, "batch_size": 4},
    "protocols": {"all": {}, "one": {"subjects": ["P0"], "val_by": "take"},
                  "one_look": {"subjects": ["P0"], "looks_per_subject": 1, "val_by": "take"}}, "scratch_of": "sync",
    "pretrain": {"model": {"image_size": 64, "crop_size": 32, "encoder_width": 8},
                 "sampler": {"sync_max_offset_s": 1.0}, "train": {"batch_size": 2, "threads": 1, "num_workers": 0}},
    "data": {"train": {**SYNTH, "subjects": ["train"], "max_sequences": 4},   # P1 needs two takes to hold one out
             "test": {**SYNTH, "subjects": ["test"], "seed": 1, "subject_prefix": "Q"}},
}


def test_variants_and_protocols_are_checked():
    cfg = from_dict(BenchmarkConfig, SYNC)
    keep = pretrain_config(cfg, "sync_keep", 0)
    assert keep.method == "sync" and keep.method_config["sync"]["background"] == "keep"
    assert pretrain_config(cfg, "sync", 0).method_config["sync"]["background"] == "mask"
    one = finetune_stage_config(cfg, "one", 0)
    assert one.subjects == ("P0",) and one.pose.val_by == "take" and one.finetune.enabled
    assert one.finetune.frozen_stages == 3 and finetune_stage_config(cfg, "all", 0, scratch=True).finetune.frozen_stages == 0
    assert one.looks_per_subject is None
    looks = from_dict(BenchmarkConfig, {**SYNC, "protocols": {"s1": {"subjects": ["P0"], "looks_per_subject": 1}}})
    assert finetune_stage_config(looks, "s1", 0).looks_per_subject == 1
    assert finetune_stage_config(looks, "s1", 0, scratch=True).looks_per_subject == 1   # scratch: the same labels
    for bad, match in (({"variants": {"sync": {"method": "sync"}}}, "name of a registered method"),
                       ({"variants": {"v": {"method": "nope"}}}, "must name a registered method"),
                       ({"finetune_for": ["temporal"]}, "finetune_for names"),
                       ({"protocols": {"x": {"subject": ["P0"]}}}, "unknown key"),
                       ({"protocols": {"x": {"looks_per_subject": 0}}}, "looks_per_subject must be"),
                       ({"protocols": {"x": {"looks_per_subject": "1"}}}, "looks_per_subject must be"),
                       ({"protocols": {"x": {"looks_per_subject": True}}}, "looks_per_subject must be"),
                       ({"finetune": {"enabled": True}}, "without 'enabled'"),
                       ({"finetune": {"stepz": 3}}, "finetune: .*stepz"),
                       ({"scratch_of": None}, "scratch reference needs scratch_of")):
        with pytest.raises(ConfigError, match=match):
            from_dict(BenchmarkConfig, {**SYNC, **bad})


def test_a_row_can_have_its_own_recipe(tmp_path):
    """pretrain_configs: a row reads its own YAML in place of pretrain_config; the others keep theirs."""
    own = tmp_path / "sync.yaml"
    own.write_text("method: sync\noptim: {lr: 0.0042}\nmethod_config: {sync: {fusion: concat}}\n")
    base = tmp_path / "base.yaml"
    base.write_text("optim: {lr: 0.0001}\n")
    cfg = from_dict(BenchmarkConfig, {**SYNC, "pretrain_config": str(base), "pretrain_configs": {"sync": str(own)}})
    sync = pretrain_config(cfg, "sync", 0)
    assert sync.optim.lr == 0.0042 and sync.method_config["sync"]["fusion"] == "concat"
    assert sync.train.steps == SYNC["steps"] and sync.model.crop_size == 32   # the benchmark's keys still apply
    keep = pretrain_config(cfg, "sync_keep", 0)          # a variant of sync: sync's recipe, then its own keys
    assert keep.optim.lr == 0.0042 and keep.method_config["sync"]["fusion"] == "concat"
    assert keep.method_config["sync"]["background"] == "keep"
    other = tmp_path / "keep.yaml"
    other.write_text("optim: {lr: 0.0007}\n")
    cfg2 = from_dict(BenchmarkConfig, {**SYNC, "pretrain_config": str(base),
                                       "pretrain_configs": {"sync": str(own), "sync_keep": str(other)}})
    assert pretrain_config(cfg2, "sync_keep", 0).optim.lr == 0.0007     # its own entry wins
    assert from_dict(BenchmarkConfig, {**SYNC, "pretrain_config": str(base)}).pretrain_configs == {}
    assert pretrain_config(from_dict(BenchmarkConfig, {**SYNC, "pretrain_config": str(base)}),
                           "sync_keep", 0).optim.lr == 0.0001            # no entry anywhere: the common YAML
    with pytest.raises(ConfigError, match="pretrain_configs names"):
        from_dict(BenchmarkConfig, {**SYNC, "pretrain_configs": {"nope": str(own)}})
    with pytest.raises(ConfigError, match="not found"):
        pretrain_config(from_dict(BenchmarkConfig, {**SYNC, "pretrain_configs": {"sync": str(tmp_path / "x.yaml")}}),
                        "sync", 0)


def test_transfer_cells_run_cache_and_report(tmp_path):
    cfg = from_dict(BenchmarkConfig, SYNC)
    work = tmp_path / "w"
    res = run_benchmark(cfg, work, progress=False, log=lambda s: None)
    assert {c["name"] for c in res["cells"].values()} == {"sync", "sync_keep", "mean_pose"}   # frozen rows
    keys = set(res["transfer"])
    # the ceiling only where the protocol leaves somebody unlabelled (P1 in `one`; nobody in `all`)
    assert keys == {f"{n}_finetune_{p}_s0" for n in ("sync", "scratch") for p in ("all", "one", "one_look")} | {
        f"supervised_start_{k}_{p}_s0" for k in ("alone", "finetune") for p in ("one", "one_look")}
    alone, ceiling = res["transfer"]["supervised_start_alone_one_s0"], res["transfer"]["supervised_start_finetune_one_s0"]
    assert alone["train_subjects"] == ["P1"] and alone["val_subjects"] == ["P1"]    # never P0, never a test person
    assert ceiling["train_subjects"] == ["P0"] and ceiling["name"] == "supervised_start"
    start = json.loads((work / "pose" / "supervised_start_alone_one_s0" / "pose.json").read_text())
    assert start["finetune"]["frozen_stages"] == 0 and start["finetune"]["steps"] == 4
    tuned = json.loads((work / "pose" / "supervised_start_finetune_one_s0" / "pose.json").read_text())
    assert tuned["finetune"]["frozen_stages"] == 3                                  # fine-tuned as the rows are
    run = work / "runs" / "supervised_start_one_s0"                                 # ... from the trained start
    assert tuned["run"] == str(run.resolve())
    from safetensors.torch import load_file

    from selfpose.pretrain import load_run

    trained = load_file(str(work / "pose" / "supervised_start_alone_one_s0" / "encoder" / "model.safetensors"))
    loaded = load_run(run).method.state_dict()
    assert trained.keys() == loaded.keys() and all(torch.equal(trained[k], loaded[k]) for k in trained)
    # the two protocols label the same person: one start serves both, trained once (no folder of its own)
    shared = res["transfer"]["supervised_start_alone_one_look_s0"]
    scores = ("mpjpe", "n_mpjpe", "p_mpjpe", "train_subjects", "val_subjects")
    assert {k: shared[k] for k in scores} == {k: alone[k] for k in scores}
    assert shared["protocol"] == "one_look" and not (work / "pose" / "supervised_start_alone_one_look_s0").exists()
    assert "supervised_start_alone_one_look_s0" not in res["computed"] and shared["seconds"] == 0.0
    assert shared["shared_with"] == "supervised_start_alone_one_s0"
    made_from = json.loads((work / "runs" / "supervised_start_one_look_s0" / "made_from.json").read_text())
    assert made_from["pose_dir"] == str((work / "pose" / "supervised_start_alone_one_s0").resolve())
    look = json.loads((work / "pose" / "sync_finetune_one_look_s0" / "pose.json").read_text())
    assert look["config"]["looks_per_subject"] == 1 and look["train_subjects"] == ["P0"]
    one = res["transfer"]["sync_finetune_one_s0"]
    assert one["train_subjects"] == ["P0"] and one["val_subjects"] == ["P0"]        # S1-style protocol
    assert set(res["transfer"]["sync_finetune_all_s0"]["train_subjects"]) == {"P0", "P1"} - set(
        res["transfer"]["sync_finetune_all_s0"]["val_subjects"])                    # a held-out person selects
    scratch = json.loads((work / "pose" / "scratch_finetune_all_s0" / "pose.json").read_text())
    assert scratch["finetune"]["frozen_stages"] == 0
    assert json.loads((work / "pose" / "sync_finetune_all_s0" / "pose.json").read_text())["finetune"]["frozen_stages"] == 3
    text = (work / "results.md").read_text()
    assert "Transfer by fine-tuning" in text and "same network fine-tuned from scratch" in text
    assert "](transfer.png)" in text and (work / "transfer.png").stat().st_size > 5000
    assert "Jenni & Favaro's orderings" in text                        # the paired gaps, here sync vs scratch
    assert "| pretrained > same network from scratch | `sync` vs `scratch` | fine-tuned MPJPE, one |" in text
    assert "start trained on other people's 3D labels, fine-tuned (ceiling)" in text
    assert "the protocol leaves unlabelled (4 steps, one held out" in text           # the start's budget, said
    assert "**Room of each label protocol**" in text and "| `one` |" in text and "| `one_look` |" in text
    assert "| (not the paper's) ceiling: 3D-labelled start > scratch | `supervised_start` vs `scratch` | fine-tuned MPJPE, one |" in text
    again = run_benchmark(cfg, work, progress=False, log=lambda s: None)
    assert again["computed"] == [] and again["transfer"] == res["transfer"]


def test_the_ceiling_needs_the_scratch_network():
    with pytest.raises(ConfigError, match="add scratch to references"):
        from_dict(BenchmarkConfig, {**SYNC, "references": ["supervised_start"]})
    with pytest.raises(ConfigError, match="supervised_start_steps"):
        from_dict(BenchmarkConfig, {**SYNC, "supervised_start_steps": 0})
    assert "supervised_start" not in BenchmarkConfig().references              # never run unless asked
    # options that keep a pretrained start apply to the pretrained rows only, never to random weights
    cfg = from_dict(BenchmarkConfig, {**SYNC, "finetune": {**SYNC["finetune"], "head_warmup_steps": 2,
                                                           "method_lr_scale": 0.1}})
    assert finetune_stage_config(cfg, "one", 0).finetune.head_warmup_steps == 2
    scratch = finetune_stage_config(cfg, "one", 0, scratch=True).finetune
    assert scratch.head_warmup_steps == 0 and scratch.method_lr_scale == 1.0


def test_a_cell_cached_before_looks_existed_is_recomputed_once_a_protocol_sets_them():
    """Fingerprints compare shared keys: an every-look cell (no looks_per_subject key) must not pass for a
    protocol that now keeps one look, and must still pass while the key is unset."""
    from selfpose.bench.run import _set_since, pose_fingerprint

    cfg = from_dict(BenchmarkConfig, SYNC)
    old = {"pose": {k: v for k, v in pose_fingerprint(finetune_stage_config(cfg, "one", 0)).items()
                    if k != "looks_per_subject"}}
    looks = from_dict(BenchmarkConfig, {**SYNC, "protocols": {"one": {"subjects": ["P0"], "looks_per_subject": 1}}})
    assert _set_since(old, {"pose": pose_fingerprint(finetune_stage_config(looks, "one", 0))}) == [
        "pose.looks_per_subject"]
    assert _set_since(old, {"pose": pose_fingerprint(finetune_stage_config(cfg, "one", 0))}) == []


def test_scratch_frozen_is_the_rows_network_at_random_weights_reading_the_rows_input(tmp_path):
    """``scratch_frozen``: the frozen-feature reference a sync row needs — its own network before training, read as
    the row reads (here the crops masked as pretraining masked them), not the temporal network on raw crops."""
    from safetensors.torch import load_file

    from selfpose.bench.config import BenchmarkConfig as B
    from selfpose.pretrain import load_config, load_run

    with pytest.raises(ConfigError, match="scratch_frozen reference needs scratch_of"):
        from_dict(BenchmarkConfig, {**SYNC, "references": ["scratch_frozen"], "scratch_of": None})
    assert "scratch_frozen" not in B().references                              # never run unless asked
    pre = {**SYNC["pretrain"], "method_config": {"sync": {"pose_background": "as_pretrained"}}}
    cfg = from_dict(BenchmarkConfig, {**SYNC, "methods": ["sync"], "references": ["scratch_frozen", "mean_pose"],
                                      "finetune_for": [], "pretrain": pre})
    work = tmp_path / "w"
    res = run_benchmark(cfg, work, progress=False, log=lambda s: None)
    assert res["transfer"] == {}                                               # no fine-tuning asked
    cell = res["cells"]["scratch_frozen_s0_1"]
    assert cell["name"] == "scratch_frozen" and cell["n_mpjpe"] > 0
    assert cell["n_mpjpe"] != res["cells"]["sync_s0_1"]["n_mpjpe"]
    scratch, row = load_config(work / "runs" / "scratch_s0"), load_config(work / "runs" / "sync_s0")
    assert scratch.method_config == row.method_config and scratch.model == row.model   # read as the row reads
    assert scratch.method_config["sync"]["pose_background"] == "as_pretrained"
    pinned = load_file(str(work / "pose" / "scratch_frozen_s0_1" / "encoder" / "model.safetensors"))
    init = load_run(work / "runs" / "scratch_s0").method.state_dict()
    trained = load_run(work / "runs" / "sync_s0").method.state_dict()
    assert pinned.keys() == init.keys() and all(torch.equal(pinned[k], init[k]) for k in init)   # untrained weights
    assert any(not torch.equal(init[k], trained[k]) for k in init if init[k].is_floating_point())
    text = (work / "results.md").read_text()
    assert "| same network at its random weights, frozen |" in text
    assert "`same network at its random weights, frozen`: multi-view synchronisation (Jenni & Favaro)'s network" in text
    assert "| pretrained > same network at its random weights, frozen | `sync` vs `scratch_frozen` |" in text
    again = run_benchmark(cfg, work, progress=False, log=lambda s: None)
    assert again["computed"] == [] and again["cells"] == res["cells"]
