"""selfpose benchmark, kind lifting: cells, caching, resume, strict config and the kind dispatch, on tiny data.

The data: the shipped CMU motion through seeded synthetic cameras (``prepare mocap``
without cameras), a few frames per take; lifters of a few units trained for a few steps.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

import selfpose
from selfpose.bench.kinds import benchmark_kind, load_benchmark_config
from selfpose.bench.lifting import cells_of, run_lifting_benchmark
from selfpose.bench.lifting_config import LiftingBenchmarkConfig
from selfpose.bench.run import BenchmarkError
from selfpose.config import ConfigError, from_dict

MOTION = str(Path(selfpose.__file__).parent / "assets" / "motion" / "cmu_h36m17approx_30fps.npz")
TINY = {
    "methods": ["martinez", "temporal_conv"], "inputs": ["gt", "noisy"], "label_sets": ["all", "s1", "s1_2d"],
    "train_subjects": ["train"], "few_3d": ["train"], "test_subjects": ["test"], "seeds": [0, 1],
    "all_seeds_for": ["martinez/gt/all"],
    "lifter": {"batch_size": 8, "eval_every": 2, "checkpoint_every": 2, "threads": 1, "warmup_steps": 0},
    "per_method": {"martinez": {"steps": 4, "martinez": {"width": 16}},
                   "temporal_conv": {"steps": 3, "temporal_conv": {"channels": 8, "receptive_field": 9}}},
    "data": {"motion": MOTION, "cameras": None, "prepare": {"max_frames": 12}},
}


def quiet(_):
    pass


def test_config_is_strict():
    with pytest.raises(ConfigError, match="unknown config key 'step'"):
        from_dict(LiftingBenchmarkConfig, {**TINY, "step": 3})
    with pytest.raises(ConfigError, match="unknown methods"):
        from_dict(LiftingBenchmarkConfig, {**TINY, "methods": ["martinex"]})
    with pytest.raises(ConfigError, match="label_sets"):
        from_dict(LiftingBenchmarkConfig, {**TINY, "label_sets": ["s5"]})
    with pytest.raises(ConfigError, match="data.prepare.*max_frame"):
        from_dict(LiftingBenchmarkConfig, {**TINY, "data": {**TINY["data"], "prepare": {"max_frame": 3}}})
    with pytest.raises(ConfigError, match="both trained and tested"):
        from_dict(LiftingBenchmarkConfig, {**TINY, "test_subjects": ["train"]})
    with pytest.raises(ConfigError, match="lifter.seed is set by each cell"):
        from_dict(LiftingBenchmarkConfig, {**TINY, "lifter": {"seed": 3}})
    # a misspelt LifterConfig key fails when the cells are planned, before any data is prepared
    cfg = from_dict(LiftingBenchmarkConfig, {**TINY, "per_method": {"martinez": {"stpes": 3}}})
    with pytest.raises(ConfigError, match="stpes"):
        run_lifting_benchmark(cfg, Path("/nonexistent/never/made"), progress=False, log=quiet)


def test_cells_seeds_and_2d_only_label_set():
    cfg = from_dict(LiftingBenchmarkConfig, TINY)
    keys = [k for k, *_ in cells_of(cfg)]
    # s1_2d only for methods that learn from 2D-only sequences (neither of these does)
    assert not any("s1_2d" in k for k in keys)
    assert "martinez_gt_all_s1" in keys and "martinez_gt_s1_s1" not in keys and "temporal_conv_noisy_s1_s0" in keys
    assert len(keys) == 2 * 2 + 1 + 2 * 2


def test_kind_dispatch(tmp_path):
    root = Path(__file__).resolve().parents[2] / "configs"
    assert benchmark_kind(root / "benchmark_cpu.yaml") == "lab"
    assert benchmark_kind(root / "lifting_cpu.yaml") == "lifting"
    assert benchmark_kind(root / "lifting_cpu.yaml", ["kind=lab"]) == "lab"
    p = tmp_path / "lab.yaml"
    p.write_text("kind: lab\nsteps: 7\n")
    assert type(load_benchmark_config(p)).__name__ == "BenchmarkConfig" and load_benchmark_config(p).steps == 7
    with pytest.raises(ConfigError, match="kind must be one of"):
        benchmark_kind(None, ["kind=lifter"])
    with pytest.raises(ConfigError, match="unknown config key 'steps'"):   # the lifting schema has no steps
        load_benchmark_config(root / "lifting_cpu.yaml", ["steps=3"])


def test_shipped_lifting_configs_load():
    """Every configs/lifting_*.yaml loads strictly and resolves a LifterConfig for each of its cells."""
    from selfpose.bench.lifting import cell_config
    from selfpose.config import read_mapping
    from selfpose.lifting.lifters import LIFTERS

    paths = sorted((Path(__file__).resolve().parents[2] / "configs").glob("lifting_*.yaml"))
    assert len(paths) >= 2
    for p in paths:
        raw = read_mapping(p)
        if "pose_machine" not in LIFTERS:   # it lands separately: judge the rest of the file meanwhile
            raw["methods"] = [m for m in raw["methods"] if m != "pose_machine"]
            raw["per_method"].pop("pose_machine", None)
        cfg = from_dict(LiftingBenchmarkConfig, raw)
        assert cfg.kind == "lifting" and cfg.test_subjects == ("S8",) and cfg.data.cameras
        for key, m, inp, ls, s in cells_of(cfg):
            lcfg = cell_config(cfg, m, inp, ls, s)
            assert lcfg.method == m and lcfg.seed == s and lcfg.train_noise == (inp == "noisy")
            assert lcfg.steps == cfg.per_method[m]["steps"]


def test_runs_caches_resumes_and_reports(tmp_path, monkeypatch):
    """Two tiny lifters and a stand-in with a test-time correction: cells, report, cache, resume."""
    from selfpose.lifting.lifters import LIFTERS, LifterMethod, build_martinez

    calls = []

    def correct(lifter, x, y, cfg):   # a stand-in correction: leaves the 3D as it is, counts its clips
        calls.append(x.shape[0])
        return y, {"clips": int(x.shape[0])}

    monkeypatch.setitem(LIFTERS, "corrector", LifterMethod("corrector", build_martinez, correct=correct))
    raw = {**TINY, "methods": [*TINY["methods"], "corrector"],
           "per_method": {**TINY["per_method"], "corrector": {"steps": 2, "martinez": {"width": 8}}},
           "all_seeds_for": ["martinez/gt/all", "corrector/noisy/*"], "publish": str(tmp_path / "pub" / "lifting")}
    cfg = from_dict(LiftingBenchmarkConfig, raw)
    work = tmp_path / "work"
    lines = []
    res = run_lifting_benchmark(cfg, work, progress=False, log=lines.append)
    cells = res["cells"]
    lifters = [k for k in cells if not k.startswith(("mean_pose", "nearest_2d", "linear_2d", "random_2d"))]
    assert len(lifters) == 5 + 4 + 2 * 1 + 2 * 2 and len(cells) == len(lifters) + 4 * 3
    assert set(res["computed"]) == set(cells) and len(lines) == len(cells)
    for k in lifters:
        c = cells[k]
        ev = c["eval"]
        assert set(ev) == ({"off", "on"} if c["method"] == "corrector" else {"off"})
        for v in ev.values():
            assert v["mpjpe"] > 0 and v["p_mpjpe"] <= v["mpjpe"] + 1e-6 and v["frames"] > 0 and v["per_action"]
            assert v["frames_per_second"] > 0
        assert c["train"]["steps_done"] == {"martinez": 4, "temporal_conv": 3, "corrector": 2}[c["method"]]
        assert c["train"]["train_seconds"] > 0
    # the correction ran for the "on" variant only, once per clip, and its counts were kept
    on = cells["corrector_noisy_all_s1"]["eval"]["on"]
    assert on["correction"]["clips"] > 0 and cells["corrector_noisy_all_s1"]["eval"]["off"]["correction"] is None
    # noisy cells trained and tested on noisy 2D: a different score from the GT cell with the same seed
    assert cells["martinez_noisy_all_s0"]["eval"]["off"]["mpjpe"] != cells["martinez_gt_all_s0"]["eval"]["off"]["mpjpe"]
    ref = cells["mean_pose_all"]["eval"]["off"]
    assert ref["mpjpe"] > 0 and ref["frames"] == cells["martinez_gt_all_s0"]["eval"]["off"]["frames"]
    near = cells["nearest_2d_all"]
    assert near["input"] == "gt" and 0 < near["eval"]["off"]["mpjpe"] and near["train"]["stride"] == 4
    # label sets with the same 3D subjects (here all three: few_3d is every training subject) share one result
    assert cells["nearest_2d_s1_2d"]["eval"] == near["eval"] and cells["mean_pose_s1"]["eval"] == cells["mean_pose_all"]["eval"]

    md = (work / "results.md").read_text()
    assert "Command:" in md and "CPUs" in md and "commit" in md and "45.5" in md and "40.1" in md and "35.3" in md
    assert "one shared skeleton" in md and "## Targets" in md and "corrector + correction" in md
    assert isinstance(res["repeated_test_takes"], dict) and "**Data check" in md
    assert "± " in md and "mean training pose (reference)" in md and "per action" in md
    assert "`pose_machine` was not run" in md or "pose_machine" in cfg.methods
    rows = list(csv.DictReader(open(work / "cells.csv")))
    assert len(rows) == len(cells) + sum(1 for k in lifters if cells[k]["method"] == "corrector")
    assert (work / "lifting.png").stat().st_size > 1000
    assert json.loads((work / "results.json").read_text())["kind"] == "lifting"
    pub = tmp_path / "pub"
    assert (pub / "lifting.png").is_file() and "![" in (pub / "lifting.md").read_text()
    assert "(lifting.png)" in (pub / "lifting.md").read_text()

    # a rerun is served from the cache: nothing computed, no file rewritten, the same tables
    stamps = {p: p.stat().st_mtime_ns for p in (work / "cells").glob("*.json")}
    again = run_lifting_benchmark(cfg, work, progress=False, log=quiet)
    assert again["computed"] == [] and again["cells"] == cells
    assert {p: p.stat().st_mtime_ns for p in (work / "cells").glob("*.json")} == stamps

    # a lost cell of a finished run is evaluated again without training
    key = "martinez_gt_s1_s0"
    (work / "cells" / f"{key}.json").unlink()
    third = run_lifting_benchmark(cfg, work, progress=False, log=quiet)
    assert third["computed"] == [key] and third["cells"][key]["train"] == cells[key]["train"]
    assert {m: third["cells"][key]["eval"]["off"][m] for m in ("mpjpe", "p_mpjpe", "per_action")} == \
        {m: cells[key]["eval"]["off"][m] for m in ("mpjpe", "p_mpjpe", "per_action")}

    # an interrupted cell (checkpoint, no finished run) resumes its run from the checkpoint
    key = "martinez_gt_all_s0"
    (work / "cells" / f"{key}.json").unlink()
    for name in ("lifter.json", "lifter.safetensors"):
        (work / "runs" / key / name).unlink()
    seen = {}
    import selfpose.lifting.train as train_mod

    real = train_mod.fit_lifter_run

    def spy(*a, **kw):
        seen.update(kw)
        return real(*a, **kw)

    monkeypatch.setattr(train_mod, "fit_lifter_run", spy)
    fourth = run_lifting_benchmark(cfg, work, progress=False, log=quiet)
    assert fourth["computed"] == [key] and seen.get("resume") is True
    assert fourth["cells"][key]["eval"]["off"]["mpjpe"] == pytest.approx(cells[key]["eval"]["off"]["mpjpe"], rel=1e-5)

    # a cached cell made with another budget is an error, never mixed into the tables
    other = from_dict(LiftingBenchmarkConfig, {**raw, "per_method": {**raw["per_method"],
                                                                      "martinez": {"steps": 5, "martinez": {"width": 16}}}})
    with pytest.raises(BenchmarkError, match="another config"):
        run_lifting_benchmark(other, work, progress=False, log=quiet)


def test_cli_dispatches_on_kind(tmp_path):
    """`selfpose benchmark` runs the lifting schema for `kind: lifting` (here: the reference row only)."""
    import yaml
    from typer.testing import CliRunner

    from selfpose.cli import app

    p = tmp_path / "lift.yaml"
    p.write_text(yaml.safe_dump({**TINY, "kind": "lifting", "methods": [], "per_method": {},
                                 "label_sets": ["all"], "lifter": {}, "references": ["mean_pose"]}))
    r = CliRunner().invoke(app, ["benchmark", "--config", str(p), "--work", str(tmp_path / "w")])
    assert r.exit_code == 0, r.output
    assert "1 piece(s) computed, 1 cells" in r.output and (tmp_path / "w" / "results.md").is_file()
    r = CliRunner().invoke(app, ["benchmark", "--config", str(p), "--work", str(tmp_path / "w"), "pose_steps=3"])
    assert r.exit_code == 2 and "unknown config key 'pose_steps'" in r.output and "Traceback" not in r.output


def test_nearest_2d_reference_finds_the_training_frame_itself(tmp_path):
    """Tested on frames it was given (stride 1), the nearest-2D lookup returns their own 3D: error 0."""
    from selfpose.bench.lifting import nearest_2d_cell, prepare_data

    cfg = from_dict(LiftingBenchmarkConfig, {**TINY, "methods": []})
    data = prepare_data(cfg, tmp_path, progress=False)
    same = nearest_2d_cell(data, ["test"], ["test"], stride=1)["eval"]["off"]
    assert same["mpjpe"] == pytest.approx(0.0, abs=1e-3) and same["frames"] > 0
    other = nearest_2d_cell(data, ["train"], ["test"], stride=3)["eval"]["off"]
    assert other["mpjpe"] > 1.0


def test_linear_2d_reference_fits_its_training_frames_better_than_the_mean_pose(tmp_path):
    """Fitted and scored on the same frames, least squares can only beat the constant (mean) prediction."""
    from selfpose.bench.lifting import linear_2d_cell, mean_pose_cell, prepare_data

    cfg = from_dict(LiftingBenchmarkConfig, {**TINY, "methods": []})
    data = prepare_data(cfg, tmp_path, progress=False)
    lin = linear_2d_cell(data, ["test"], ["test"])
    mean = mean_pose_cell(data, ["test"], ["test"])["eval"]["off"]
    assert 0 < lin["eval"]["off"]["mpjpe"] < 0.9 * mean["mpjpe"] and lin["train"]["train_frames_3d"] > 0
    # a ridge that swamps the data shrinks the map towards zero: much worse than the fit
    assert linear_2d_cell(data, ["test"], ["test"], ridge=1e6)["eval"]["off"]["mpjpe"] > lin["eval"]["off"]["mpjpe"]


def test_random_2d_reference_reads_random_features_of_the_2d(tmp_path):
    """Fitted and scored on the same frames, a readout of 1024 random features beats the constant mean pose,
    and another seed gives other features (another score)."""
    from selfpose.bench.lifting import mean_pose_cell, prepare_data, random_2d_cell

    cfg = from_dict(LiftingBenchmarkConfig, {**TINY, "methods": []})
    data = prepare_data(cfg, tmp_path, progress=False)
    rnd = random_2d_cell(data, ["test"], ["test"], stride=1)
    mean = mean_pose_cell(data, ["test"], ["test"])["eval"]["off"]
    assert 0 < rnd["eval"]["off"]["mpjpe"] < mean["mpjpe"] and rnd["train"]["features"] == 1024
    assert random_2d_cell(data, ["test"], ["test"], stride=1, seed=1)["eval"]["off"]["mpjpe"] != \
        rnd["eval"]["off"]["mpjpe"]


def test_repeated_takes_finds_a_test_take_copied_from_training(tmp_path):
    """A test take that is a training take moved elsewhere is a leak; a different motion is not."""
    import numpy as np

    from selfpose.bench.lifting import repeated_takes

    rng = np.random.default_rng(0)
    walk = rng.normal(0, 300, (20, 17, 3)).astype(np.float32)
    np.savez(tmp_path / "m.npz", **{"A/walk_1": walk, "A/run_1": walk[::-1].copy(),
                                    "B/walk_1": walk + np.float32([500, -200, 0]),   # re-placed copy
                                    "B/run_1": rng.normal(0, 300, (25, 17, 3)).astype(np.float32)})
    assert repeated_takes(tmp_path / "m.npz", ["A"], ["B"]) == {"B/walk_1": ["A/walk_1"]}
    assert repeated_takes(tmp_path / "m.npz", ["B"], ["A"]) == {"A/walk_1": ["B/walk_1"]}


def test_repeated_test_takes_are_left_out_of_every_score(tmp_path):
    """With exclude_repeated (the default) a test take copied from training is scored by no cell."""
    import numpy as np

    rng = np.random.default_rng(1)
    z = np.load(MOTION)
    walk = z[z.files[0]][:12]
    np.savez(tmp_path / "m.npz", **{"A/walk_1": walk, "B/walk_1": walk + np.float32([300, 0, 0]),
                                    "B/jump_1": walk[::-1] + rng.normal(0, 20, walk.shape).astype(np.float32)})
    (tmp_path / "m.json").write_text('{"fps": 30}')
    cfg = from_dict(LiftingBenchmarkConfig, {
        **TINY, "methods": ["martinez"], "inputs": ["gt"], "label_sets": ["all"], "seeds": [0], "all_seeds_for": [],
        "train_subjects": ["A"], "few_3d": ["A"], "test_subjects": ["B"], "references": ["mean_pose"],
        "per_method": {"martinez": {"steps": 2, "martinez": {"width": 8}, "val_fraction": 0}},
        "data": {"motion": str(tmp_path / "m.npz"), "cameras": None, "prepare": {}}})
    res = run_lifting_benchmark(cfg, tmp_path / "w", progress=False, log=quiet)
    assert res["excluded_test_takes"] == ["B__walk_1"]
    views = 4   # synthetic cameras: a ring of four
    for cell in res["cells"].values():
        assert cell["eval"]["off"]["frames"] == views * len(walk)     # only B/jump_1's frames are scored
    assert "left out of every score" in (tmp_path / "w" / "results.md").read_text()
