"""selfpose benchmark: cells, caching, fingerprints and the report, on a tiny rendered dataset."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from selfpose.bench.config import BenchmarkConfig
from selfpose.bench.report import aggregate
from selfpose.bench.run import BenchmarkError, differences, run_benchmark
from selfpose.config import ConfigError, from_dict, load

SYNTH = {"scenario": "lab", "height": 64, "width": 64, "max_sequences": 3, "max_seconds": 4, "num_subjects": 2}
TINY = {
    "methods": ["temporal", "css"], "references": ["random", "mean_pose"], "shares": [0.5, 1.0], "seeds": [0, 1],
    "all_seeds_for": ["temporal"], "steps": 4, "pose_steps": 10, "pretrain_config": None,
    "pretrain": {"model": {"image_size": 64, "crop_size": 32, "detector_input": 32, "detector_width": 8,
                           "encoder_width": 8, "v_dim": 16, "i_dim": 16, "decoder_channels": 16,
                           "decoder_hidden": 64},
                 "loss": {"perceptual_width": 8}, "sampler": {"d_pos_s": 0.2, "d_neg_s": 1.0},
                 "train": {"batch_size": 2, "threads": 1, "num_workers": 0}},
    "data": {"train": {**SYNTH, "subjects": ["train"]},
             "test": {**SYNTH, "subjects": ["test"], "seed": 1, "subject_prefix": "Q"}},
}


def test_config_is_strict():
    with pytest.raises(ConfigError, match="unknown method"):
        from_dict(BenchmarkConfig, {"methods": ["temporal", "dls"]})
    with pytest.raises(ConfigError, match="shares"):
        from_dict(BenchmarkConfig, {"shares": [0.0]})
    with pytest.raises(ConfigError, match="data.train.*unknown config key"):
        from_dict(BenchmarkConfig, {"data": {"train": {"scenaro": "lab"}}})
    with pytest.raises(ConfigError, match="unknown config key 'step'"):
        from_dict(BenchmarkConfig, {"step": 3})
    cfg = from_dict(BenchmarkConfig, {"seeds": [0, 1], "all_seeds_for": ["temporal"]})
    assert cfg.seeds_of("temporal") == (0, 1) and cfg.seeds_of("dsl") == (0,)
    # every method runs every share unless largest_share_for says otherwise; references always do
    assert cfg.shares_of("dsl") == (0.01, 0.1, 1.0)
    cfg = from_dict(BenchmarkConfig, {"shares": [0.1, 1.0, 0.01], "largest_share_for": ["temporal"]})
    assert cfg.shares_of("temporal") == (0.1, 1.0, 0.01) and cfg.shares_of("dsl") == (0.1, 0.01)
    assert cfg.shares_of("random") == cfg.shares_of("supervised") == (0.1, 1.0, 0.01)
    assert from_dict(BenchmarkConfig, {"shares": [0.5], "largest_share_for": []}).shares_of("dsl") == (0.5,)
    # the pose section reaches every frozen-feature cell's head; the benchmark's own keys cannot be overridden
    from selfpose.bench.run import pose_stage_config

    capped = from_dict(BenchmarkConfig, {"pose": {"val_max_frames": 800}})
    pc = pose_stage_config(capped, 0.1, 1).pose
    assert (pc.val_max_frames, pc.fraction, pc.seed, pc.val_by) == (800, 0.1, 1, "subject")
    with pytest.raises(ConfigError, match="pose.seed is set by the benchmark"):
        from_dict(BenchmarkConfig, {"pose": {"seed": 3}})
    with pytest.raises(ConfigError, match="pose: .*val_max_frame"):
        from_dict(BenchmarkConfig, {"pose": {"val_max_frame": 800}})
    with pytest.raises(ConfigError, match="val_max_frames must be >= 1"):
        from_dict(BenchmarkConfig, {"supervised": {"val_max_frames": 0}})
    with pytest.raises(ConfigError, match="largest_share_for names \\['random'\\]"):
        from_dict(BenchmarkConfig, {"largest_share_for": ["random"]})
    with pytest.raises(ConfigError, match="largest_share_for names \\['temporl'\\]"):
        from_dict(BenchmarkConfig, {"largest_share_for": ["temporl"]})
    with pytest.raises(ConfigError, match="pose must be a mapping"):
        from_dict(BenchmarkConfig, {"pose": None})
    # narrowing methods (as on the command line) keeps a config whose largest_share_for names others valid
    narrow = from_dict(BenchmarkConfig, {"methods": ["ae_stn_dec"], "largest_share_for": ["temporal", "dsl"],
                                         "shares": [0.1, 1.0]})
    assert narrow.shares_of("ae_stn_dec") == (0.1,)


def test_shipped_configs_load():
    from pathlib import Path

    for p in sorted((Path(__file__).resolve().parents[2] / "configs").glob("benchmark_*.yaml")):
        cfg = load(BenchmarkConfig, p)
        # a comparison of methods includes the main one of its paper (the temporal method; the sync method in its
        # own ablation benchmark, with the from-scratch reference); a references-only check is allowed too
        main = "sync" if p.name.startswith("benchmark_sync") else "temporal"
        assert cfg.shares and (main in cfg.methods or (not cfg.methods and cfg.references)), p.name
        if main == "sync":
            assert cfg.scratch_of == "sync" and "scratch" in cfg.references and set(cfg.finetune_for) == set(cfg.methods)


def test_runs_caches_and_reports(tmp_path):
    cfg = from_dict(BenchmarkConfig, {**TINY, "largest_share_for": ["temporal"]})
    work = tmp_path / "work"
    res = run_benchmark(cfg, work, progress=False, log=lambda s: None)
    # temporal: 2 seeds, css: 1, random: 1, mean pose: 1 — each at 2 shares but css, which skips the largest
    assert len(res["cells"]) == 9 and "css_s0_0.5" in res["cells"] and "css_s0_1" not in res["cells"]
    assert {(c["name"], c["seed"]) for c in res["cells"].values()} == {
        ("temporal", 0), ("temporal", 1), ("css", 0), ("random", 0), ("mean_pose", 0)}
    for c in res["cells"].values():
        assert c["n_mpjpe"] > 0 and c["mpjpe"] >= c["n_mpjpe"] - 1e-6 and c["labelled"] > 0
    assert set(res["analysis"]) == {"temporal"} and 0 <= res["analysis"]["temporal"]["kmeans_i"] <= 1
    # the InfoNCE run trained on the contrastive sampler, the others on DSL tuples
    head = lambda run: (work / "runs" / run / "metrics.csv").read_text().splitlines()[0].split(",")  # noqa: E731
    assert "css" in head("css_s0") and "dsl" not in head("css_s0") and "dsl" in head("temporal_s0")

    agg = aggregate(res["cells"])
    mean, std, n = agg[("temporal", 0.5)]["n_mpjpe"]
    seeds = [res["cells"][f"temporal_s{s}_0.5"]["n_mpjpe"] for s in (0, 1)]
    assert n == 2 and mean == pytest.approx(sum(seeds) / 2) and std > 0
    md = (work / "results.md").read_text()
    assert "DSL-STN-Dec-Split" in md and "CSS" in md and "±" in md and "KMeans" in md
    assert "| CSS | " in md and md.split("| CSS | ")[1].split("\n")[0].rstrip(" |").endswith("—")   # no 100% cell
    assert md.startswith("Written ") and "torch" in md and "CPUs" in md
    # compute: every pretrained run's own training seconds, the rendering time, and a total
    assert set(res["pretrain_seconds"]) == {"temporal_s0", "temporal_s1", "css_s0"}
    assert all(s > 0 for s in res["pretrain_seconds"].values())
    assert all(s > 0 for s in res["data_seconds"].values()) and set(res["data_seconds"]) == {"train", "test"}
    assert "Detection and compute" in md and "Total compute:" in md
    rows = list(csv.DictReader(open(work / "cells.csv")))
    assert len(rows) == 9 and (work / "error_vs_labels.png").stat().st_size > 1000

    stamps = {p: p.stat().st_mtime_ns for p in (work / "cells").glob("*.json")}
    again = run_benchmark(cfg, work, progress=False, log=lambda s: None)
    assert again["computed"] == [] and again["cells"] == res["cells"]
    assert again["pretrain_seconds"] == res["pretrain_seconds"]   # the cost survives a rerun that computed nothing
    assert {p: p.stat().st_mtime_ns for p in (work / "cells").glob("*.json")} == stamps

    # a changed budget never mixes with the cached cells
    with pytest.raises(BenchmarkError, match=r"another config \(differs in train.steps"):
        run_benchmark(from_dict(BenchmarkConfig, {**TINY, "steps": 5}), work, progress=False, log=lambda s: None)
    with pytest.raises(BenchmarkError, match="differs in pose.pose.steps"):
        run_benchmark(from_dict(BenchmarkConfig, {**TINY, "pose_steps": 11}), work, progress=False,
                      log=lambda s: None)


def test_differences_ignore_keys_on_one_side_only():
    old = {"loss": {"w_rgb": 20.0, "gone": 1}, "steps": [1, 2]}
    new = {"loss": {"w_rgb": 20.0, "added": 0.2}, "steps": (1, 2)}
    assert differences(old, new) == []
    assert differences(old, {"loss": {"w_rgb": 2.0}, "steps": [1, 3]}) == ["loss.w_rgb", "steps"]


def test_box_camera_references_read_no_pixels_and_beat_the_mean_pose_on_their_own_frames(tmp_path):
    """The shortcut rows run without any pretraining and land in the report under their issue-14 names."""
    from selfpose.bench.shortcuts import box_camera_cell

    cfg = from_dict(BenchmarkConfig, {**TINY, "methods": [], "shares": [1.0],
                                      "references": ["mean_pose", "box_camera_ridge", "box_camera_knn"]})
    work = tmp_path / "work"
    res = run_benchmark(cfg, work, progress=False, log=lambda s: None)
    assert set(res["cells"]) == {"mean_pose_s0_1", "box_camera_ridge_s0_1", "box_camera_knn_s0_1"}
    for c in res["cells"].values():
        assert c["mpjpe"] > 0 and c["frames"] > 0 and c["box_iou"] is None
    md = (work / "results.md").read_text()
    assert "box + camera only (ridge)" in md and "box + camera only (10-NN)" in md
    # fitted and scored on the same frames, least squares on the box can only beat a constant pose
    train = work / "data" / "train"
    from selfpose.bench.run import mean_pose_cell

    own = box_camera_cell(train, train, 1.0, 0, "box_camera_ridge")
    assert own["mpjpe"] < mean_pose_cell(train, train, 1.0, 0)["mpjpe"]
    with pytest.raises(BenchmarkError, match="unknown shortcut"):
        box_camera_cell(train, train, 1.0, 0, "box_only")


def test_provenance_names_the_commit_a_run_started_at_when_the_checkout_moved():
    from selfpose.bench.report import provenance

    env = {"time": "t", "cpu": "c", "cpu_count": 2, "torch": "2", "git": {"commit": "b" * 40, "dirty": False}}
    assert "selfpose commit bbbbbbb." in provenance({"environment": {**env, "git_at_start": env["git"]}})
    moved = provenance({"environment": {**env, "git_at_start": {"commit": "a" * 40, "dirty": True}}})
    assert "selfpose commit aaaaaaa (uncommitted changes) (started; the checkout was at bbbbbbb" in moved


def test_a_cell_cached_before_val_max_frames_existed_is_recomputed_once_it_is_set(tmp_path):
    """Fingerprints compare shared keys, so a cap added since must not reuse an uncapped cell."""
    import json

    from selfpose.bench.run import BenchmarkError, _cell

    path, calls = tmp_path / "cell.json", []

    def compute():
        calls.append(1)
        return {"n_mpjpe": float(len(calls))}

    old = {"pose": {"pose": {"lr": 1e-3}}}
    _cell(path, old, [], "k", lambda *_: None, compute)
    capped = {"pose": {"pose": {"lr": 1e-3, "val_max_frames": 8000}}}
    uncapped = {"pose": {"pose": {"lr": 1e-3, "val_max_frames": None}}}
    assert _cell(path, uncapped, [], "k", lambda *_: None, compute)["n_mpjpe"] == 1.0   # null: as before, reused
    log = []
    assert _cell(path, capped, [], "k", log.append, compute)["n_mpjpe"] == 2.0         # set: recomputed
    assert "before pose.pose.val_max_frames existed" in log[0]
    assert json.loads(path.read_text())["made_with"] == capped
    assert _cell(path, capped, [], "k", log.append, compute)["n_mpjpe"] == 2.0         # then reused
    with pytest.raises(BenchmarkError, match="another config"):                        # recorded and different
        _cell(path, {"pose": {"pose": {"lr": 1e-3, "val_max_frames": 100}}}, [], "k", log.append, compute)
    # a cell that lacks the key and differs in another is still an error, not silently recomputed
    path.write_text(json.dumps({"n_mpjpe": 1.0, "made_with": old}))
    with pytest.raises(BenchmarkError, match="differs in pose.pose.lr"):
        _cell(path, {"pose": {"pose": {"lr": 2e-3, "val_max_frames": 8000}}}, [], "k", log.append, compute)
    # recorded as null (every frame) and now set: a different config, an error
    path.write_text(json.dumps({"n_mpjpe": 1.0, "made_with": uncapped}))
    with pytest.raises(BenchmarkError, match="val_max_frames"):
        _cell(path, capped, [], "k", log.append, compute)
    # only the benchmark's own caps: another section's key of that name is judged as before (shared keys)
    path.write_text(json.dumps({"n_mpjpe": 1.0, "made_with": {"lifter": {"lr": 1e-3}}}))
    assert _cell(path, {"lifter": {"lr": 1e-3, "val_max_frames": 8192}}, [], "k", log.append, compute)["n_mpjpe"] == 1.0


def test_splits_rendered_apart_are_what_prepare_data_reuses(tmp_path, monkeypatch):
    """sync_transfer_gpu.sh renders train and test in two processes (prepare_split); the benchmark then renders
    neither again, a split rendered with other settings is refused, not overwritten, and one rendered with
    other threads or workers (speed, not content) is reused."""
    import selfpose.data.synthetic.synthesize as synth
    from selfpose.bench.run import prepare_data, prepare_split

    small = {"scenario": "lab", "height": 32, "width": 32, "max_sequences": 1, "max_seconds": 1, "fps": 5,
             "num_subjects": 2}
    cfg = from_dict(BenchmarkConfig, {**TINY, "data": {"train": {**small, "subjects": ["train"]},
                                                       "test": {**small, "subjects": ["test"], "seed": 1}}})
    assert prepare_split(cfg, tmp_path, "test", progress=False) == tmp_path / "data" / "test"
    assert not (tmp_path / "data" / "train").exists()
    rendered = []
    real = synth.synthesize
    monkeypatch.setattr(synth, "synthesize", lambda scfg, d, **kw: (rendered.append(Path(d).name), real(scfg, d, **kw)))
    assert prepare_data(cfg, tmp_path, progress=False) == (tmp_path / "data" / "train", tmp_path / "data" / "test")
    assert rendered == ["train"]                              # the test split made apart is reused
    other = from_dict(BenchmarkConfig, {**TINY, "data": {"train": {**small, "subjects": ["train"]},
                                                         "test": {**small, "subjects": ["test"], "seed": 2}}})
    with pytest.raises(BenchmarkError, match="seed"):
        prepare_split(other, tmp_path, "test", progress=False)
    # how fast the frames were made is not what they hold: other threads / workers reuse the split
    faster = from_dict(BenchmarkConfig, {**TINY, "data": {"train": {**small, "subjects": ["train"]},
                                                          "test": {**small, "subjects": ["test"], "seed": 1,
                                                                   "threads": 4, "workers": 3}}})
    assert prepare_split(faster, tmp_path, "test", progress=False) == tmp_path / "data" / "test"
    assert rendered == ["train"]


def test_renders_of_an_older_config_never_pass_for_a_new_key(tmp_path):
    """A data folder stamped before `light` existed was lit by the camera: asking for `light: room` refuses it."""
    import json

    from selfpose.bench.run import prepare_data

    small = {"scenario": "lab", "height": 32, "width": 32, "max_sequences": 1, "max_seconds": 1, "fps": 5,
             "num_subjects": 2}
    cfg = from_dict(BenchmarkConfig, {**TINY, "data": {"train": {**small, "subjects": ["train"]},
                                                       "test": {**small, "subjects": ["test"], "seed": 1}}})
    prepare_data(cfg, tmp_path, progress=False)
    for name in ("train", "test"):   # as an older selfpose wrote the stamp: no `light` key
        stamp = tmp_path / "data" / name / "bench_synth.json"
        d = json.loads(stamp.read_text())
        d["synth"].pop("light")
        stamp.write_text(json.dumps(d))
    prepare_data(cfg, tmp_path, progress=False)            # same settings: reused
    room = from_dict(BenchmarkConfig, {**TINY, "data": {"train": {**small, "subjects": ["train"], "light": "room"},
                                                        "test": {**small, "subjects": ["test"], "seed": 1}}})
    with pytest.raises(BenchmarkError, match="light"):
        prepare_data(room, tmp_path, progress=False)


def test_the_sync_s1_subset_config_makes_the_full_configs_cells(monkeypatch):
    """configs/benchmark_sync_s1_cpu.yaml says the full sync config reuses every cell it computes: their
    pretraining recipes, pose cells, fine-tuning cells and data must fingerprint alike."""
    from selfpose.bench.kinds import load_benchmark_config
    from selfpose.bench.run import (_comparable, finetune_stage_config, pose_fingerprint, pose_stage_config,
                                    pretrain_config)

    root = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(root)   # the configs name their recipe YAMLs relative to the repository
    full = load_benchmark_config(root / "configs/benchmark_sync_cpu.yaml")
    sub = load_benchmark_config(root / "configs/benchmark_sync_s1_cpu.yaml")
    assert set(sub.methods) == set(full.methods) and set(sub.finetune_for) <= set(full.finetune_for)
    assert set(sub.references) <= set(full.references) and set(sub.shares) <= set(full.shares)
    assert set(sub.protocols) <= set(full.protocols) and sub.scratch_of == full.scratch_of
    assert sub.data == full.data
    assert sub.supervised_start_steps == full.supervised_start_steps    # the ceiling's cells, shared
    for row in [*sub.methods, sub.scratch_of]:
        assert _comparable(pretrain_config(sub, row, 0)) == _comparable(pretrain_config(full, row, 0)), row
    for share in sub.shares:
        assert pose_fingerprint(pose_stage_config(sub, share, 0)) == pose_fingerprint(pose_stage_config(full, share, 0))
    for protocol in sub.protocols:
        for scratch in (False, True):
            assert (pose_fingerprint(finetune_stage_config(sub, protocol, 0, scratch=scratch))
                    == pose_fingerprint(finetune_stage_config(full, protocol, 0, scratch=scratch)))


def test_one_label_share_is_drawn_as_a_bar_per_row_and_several_as_lines(tmp_path):
    """At one share the lines plot is a column of markers in which rows a few mm apart hide each other."""
    from selfpose.bench.report import plot

    cells = {f"{n}_s{sd}_{sh:g}": {"name": n, "seed": sd, "share": sh, "n_mpjpe": v + sd - 10 * sh,
                                   "mpjpe": v, "p_mpjpe": v}
             for n, v in (("sync", 209.2), ("flip_only", 213.3), ("mean_pose", 226.4))
             for sd in (0, 1) for sh in (0.01, 0.1)}
    names = ["sync", "flip_only", "mean_pose"]
    assert plot({"cells": cells}, names, [0.1], tmp_path / "one.png") == "bars"
    assert plot({"cells": cells}, names, [0.01, 0.1], tmp_path / "two.png") == "lines"
    assert (tmp_path / "one.png").stat().st_size > 1000 and (tmp_path / "two.png").stat().st_size > 1000


def test_row_steps_give_one_row_its_own_pretraining_length():
    from selfpose.bench.run import _comparable, pretrain_config

    cfg = from_dict(BenchmarkConfig, {**TINY, "methods": ["temporal", "temporal_long"],
                                      "variants": {"temporal_long": {"method": "temporal"}},
                                      "row_steps": {"temporal_long": 40}})
    long, short = pretrain_config(cfg, "temporal_long", 1), pretrain_config(cfg, "temporal", 1)
    assert (long.method, long.train.steps, long.train.checkpoint_every, long.train.picture_every) == ("temporal", 40, 10, 10)
    assert (short.train.steps, short.train.checkpoint_every) == (4, 1)
    # apart from the length (and the intervals that follow it), the two rows are one recipe
    assert differences(_comparable(long), _comparable(short)) == ["train.steps"]
    with pytest.raises(ConfigError, match=r"row_steps names \['temporl'\]"):
        from_dict(BenchmarkConfig, {**TINY, "row_steps": {"temporl": 40}})
    for bad in (0, "40", 2.5, True):
        with pytest.raises(ConfigError, match="row_steps must be whole numbers >= 1"):
            from_dict(BenchmarkConfig, {**TINY, "row_steps": {"temporal": bad}})
