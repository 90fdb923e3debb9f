"""benchmarks/merge_bench_results.py: parts of one benchmark config run in different work folders, merged."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "merge_bench_results.py"


def _merge():
    spec = importlib.util.spec_from_file_location("merge_bench_results", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.merge


def _cell(name: str, n: float) -> dict:
    return {"name": name, "seed": 0, "share": 0.1, "mpjpe": n + 8.0, "n_mpjpe": n, "p_mpjpe": n - 70.0}


def test_parts_merge_and_a_shared_reference_must_agree():
    merge = _merge()
    a = {"cells": {"sync_s0_0.1": _cell("sync", 209.2), "mean_pose_s0_0.1": _cell("mean_pose", 226.4)},
         "transfer": {"scratch_finetune_s1_s0": _cell("scratch", 216.8)}, "computed": ["sync_s0"],
         "pretrain_seconds": {"sync_s0": 600.0}}
    b = {"cells": {"sum_s0_0.1": _cell("sum", 213.6), "mean_pose_s0_0.1": _cell("mean_pose", 226.42)},
         "transfer": {"scratch_finetune_s1_s0": _cell("scratch", 216.8)}, "computed": ["sum_s0"],
         "pretrain_seconds": {"sum_s0": 520.0}}
    merged, shared, dropped = merge([a, b])
    assert set(merged["cells"]) == {"sync_s0_0.1", "mean_pose_s0_0.1", "sum_s0_0.1"}
    assert merged["cells"]["mean_pose_s0_0.1"]["n_mpjpe"] == 226.4          # the first source's copy is kept
    assert merged["pretrain_seconds"] == {"sync_s0": 600.0, "sum_s0": 520.0}
    assert merged["computed"] == ["sync_s0", "sum_s0"]
    assert shared == ["mean_pose_s0_0.1", "scratch_finetune_s1_s0"]
    assert dropped == []

    b["cells"]["mean_pose_s0_0.1"] = _cell("mean_pose", 230.0)               # not the same config's cell
    with pytest.raises(SystemExit, match="mean_pose_s0_0.1: mpjpe"):
        merge([a, b])


def test_a_recomputed_cell_supersedes_its_earlier_copies():
    """The ceiling recomputed with more steps in a later part: without --supersede the parts disagree (refused);
    with it the last part's copy is taken, the earlier one dropped and named, and other cells still checked."""
    merge = _merge()
    old = {"cells": {"mean_pose_s0_0.1": _cell("mean_pose", 226.4)},
           "transfer": {"supervised_start_finetune_s1_s0": _cell("supervised_start", 198.2),
                        "supervised_start_alone_s1_s0": _cell("supervised_start_alone", 192.8),
                        "scratch_finetune_s1_s0": _cell("scratch", 216.8)}}
    new = {"cells": {"mean_pose_s0_0.1": _cell("mean_pose", 226.4)},
           "transfer": {"supervised_start_finetune_s1_s0": _cell("supervised_start", 192.2),
                        "supervised_start_alone_s1_s0": _cell("supervised_start_alone", 188.0)}}
    with pytest.raises(SystemExit, match="supervised_start_"):
        merge([old, new])
    merged, shared, dropped = merge([old, new], supersede=("supervised_start*",))
    assert merged["transfer"]["supervised_start_finetune_s1_s0"]["n_mpjpe"] == 192.2     # the later part's
    assert merged["transfer"]["supervised_start_alone_s1_s0"]["n_mpjpe"] == 188.0
    assert merged["transfer"]["scratch_finetune_s1_s0"]["n_mpjpe"] == 216.8             # only in the old part
    assert dropped == ["supervised_start_alone_s1_s0", "supervised_start_finetune_s1_s0"]
    assert shared == ["mean_pose_s0_0.1"]
    new["cells"]["mean_pose_s0_0.1"] = _cell("mean_pose", 230.0)      # cells outside the glob are still checked
    with pytest.raises(SystemExit, match="mean_pose_s0_0.1"):
        merge([old, new], supersede=("supervised_start*",))


def test_parts_of_different_seeds_merge_into_mean_and_std(tmp_path, monkeypatch):
    """Each part ran one seed (``seeds=[1]`` on its command line); ``--set`` gives the whole its two seeds."""
    import json
    import sys

    spec = importlib.util.spec_from_file_location("merge_bench_results", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    config = tmp_path / "bench.yaml"
    config.write_text("methods: [sync, flip_only]\nvariants: {flip_only: {method: sync, method_config: "
                      "{sync: {tasks: [flip]}}}}\nreferences: [mean_pose]\nshares: [0.1]\nseeds: [0]\n"
                      "analysis: false\n")
    parts = []
    for seed, (sync, flip) in enumerate(((209.0, 213.0), (211.0, 212.0))):
        cells = {f"{n}_s{seed}_0.1": {**_cell(n, v), "seed": seed}
                 for n, v in (("sync", sync), ("flip_only", flip), ("mean_pose", 226.4))}
        parts.append(tmp_path / f"part{seed}.json")
        parts[-1].write_text(json.dumps({"cells": cells, "transfer": {}, "environment": {"time": f"t{seed}"}}))
    out = tmp_path / "merged"
    monkeypatch.setattr(sys, "argv", ["merge", *map(str, parts), "--config", str(config), "--out", str(out),
                                      "--set", "seeds=[0,1]", "--set", 'all_seeds_for=["*"]'])
    mod.main()
    text = (out / "results.md").read_text()
    assert "| multi-view synchronisation (Jenni & Favaro) | 210.0 ± 1.4 |" in text     # mean ± std of two seeds
    assert "| `sync` vs `flip_only` | frozen N-MPJPE, 10% | +4.0 | +1.0 | +2.5 | 2/2 seeds |" in text
    assert json.loads((out / "results.json").read_text())["config"]["seeds"] == [0, 1]
