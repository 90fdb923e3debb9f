"""benchmarks/sync_payoff_summary.py: which cells of the transfer probe's files it reads as a start's figures."""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from types import SimpleNamespace

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "sync_payoff_summary.py"


def load() -> SimpleNamespace:
    """The script's functions (run as a module that is not __main__: nothing runs)."""
    return SimpleNamespace(**runpy.run_path(str(SCRIPT)))


def pretext(acc):
    return {"sync_unflipped": {"accuracy": acc, "ci95": [acc - 0.03, acc + 0.03]}, "step": 8000}


def write(path: Path, cells: dict) -> Path:
    path.write_text(json.dumps({"cells": cells}))
    return path


def test_a_start_reads_its_own_cells_and_the_seeds_scratch(tmp_path):
    m = load()
    a = write(tmp_path / "a.json", {
        "run_pretext": pretext(0.63), "other_pretext": pretext(0.55),
        "run_seed1_finetune_s1": {"mpjpe": 223.2}, "run_at8k_seed1_finetune_s1": {"mpjpe": 230.0},
        "run_steps3000_finetune_s1": {"mpjpe": 200.0}, "other_seed1_finetune_s1": {"mpjpe": 224.7},
        "bench_scratch_finetune_s1": {"mpjpe": 217.2}, "bench_sync_finetune_s1": {"mpjpe": 224.7}})
    b = write(tmp_path / "b.json", {"run_frozen0_seed1_finetune_s1": {"mpjpe": 210.0},
                                    "bench_scratch_finetune_s1": {"mpjpe": 217.2}})
    p = m.read_start([a, b], "s1", "run")
    assert p["sync_unflipped"] == 0.63 and p["frozen"] == 223.2 and p["every"] == 210.0 and p["scratch"] == 217.2
    # two runs in one file: the run must be named
    with pytest.raises(SystemExit, match="name the run"):
        m.read_start([a], "s1")
    with pytest.raises(SystemExit, match=r"no \*_pretext cell of run 'none'"):
        m.read_start([a], "s1", "none")
    c = write(tmp_path / "c.json", {"run_pretext": pretext(0.6)})
    with pytest.raises(SystemExit, match="no fine-tuned cell of run 'run'"):
        m.read_start([c], "s1", "run")


def test_the_picture_and_points(tmp_path):
    m = load()
    a = write(tmp_path / "a.json", {"x_pretext": pretext(0.6), "x_seed1_finetune_s1": {"mpjpe": 220.0},
                                    "bench_scratch_finetune_s1": {"mpjpe": 200.0}})
    m.main(["--start", f"x s1={a}", "--start", f"y={a}", "--scratch", "y=220", "--out", str(tmp_path / "p.png")])
    pts = json.loads((tmp_path / "p.json").read_text())
    assert pts["x s1"]["frozen_pct"] == pytest.approx(10.0) and pts["x s1"]["every"] is None
    assert pts["y"]["frozen_pct"] == pytest.approx(0.0)        # its own scratch, given
    assert (tmp_path / "p.png").stat().st_size > 10_000
