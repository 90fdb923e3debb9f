"""The GPU scripts (benchmarks/gpu_run.sh, issue 14 item 8; sync_transfer_gpu.sh and sync_pretrain_gpu.sh,
issue 15) on a machine without a GPU: one line, nothing made; sync_pretrain_gpu.sh's dry run on the CPU.

The scripts' GPU path is not exercised by the tests (they never need a GPU); their configs are loaded by
tests/bench/test_benchmark.py::test_shipped_configs_load, and every stage they run takes ``device``
(tests/training/test_device.py, tests/bench/test_references.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_run.sh"


def _env() -> dict:
    """This environment without what would let the scripts skip their GPU check or read other data."""
    env = {k: v for k, v in os.environ.items() if k not in ("GPU_RUN_DRY", "DATA", "MOTION", "CONFIG")}
    return {**env, "PYTHON": sys.executable}


MOCAP = Path(__file__).resolve().parents[3] / "shared" / "data" / "mocap" / "h36m17_train_S1-S8_25fps.npz"


NO_GPU = {
    "gpu_run.sh": f"gpu_run.sh: this torch ({torch.__version__}) sees no CUDA GPU; run it on a GPU machine "
                  "(PYTHON=... names a Python with a CUDA build of torch and selfpose installed)",
    # sync_transfer_gpu.sh says so before it renders anything
    "sync_transfer_gpu.sh": "sync_transfer_gpu.sh: this torch sees no CUDA GPU (GPU_RUN_DRY=1 with device=cpu for a "
                            "dry run)",
    "sync_pretrain_gpu.sh": "sync_pretrain_gpu.sh: this torch sees no CUDA GPU (GPU_RUN_DRY=1 with train.device=cpu "
                            "for a dry run)",
}


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: the script would run the benchmark")
@pytest.mark.parametrize("script", sorted(NO_GPU))
def test_without_a_gpu_the_script_says_so_in_one_line_and_makes_nothing(tmp_path, script):
    work = tmp_path / "gpu"
    r = subprocess.run(["bash", str(SCRIPT.with_name(script)), str(work)], capture_output=True, text=True,
                       timeout=120, env=_env())
    assert r.returncode != 0
    assert r.stderr.strip().splitlines() == [NO_GPU[script]]
    assert not work.exists()


@pytest.mark.skipif(not MOCAP.exists(), reason=f"needs the real Human3.6M motion {MOCAP} (../shared beside the repo)")
def test_sync_pretrain_dry_run_renders_times_and_trains_every_seed_to_the_budget(tmp_path):
    """The CPU dry run of sync_pretrain_gpu.sh: the train split rendered by two worker processes, both seeds
    timed at once, then trained for the steps the budget allows within [MIN_STEPS, MAX_STEPS], each seed's run
    with its own seed and a checkpoint the pose stage reads."""
    from selfpose.pretrain import load_run

    work = tmp_path / "w"
    env = {**_env(), "GPU_RUN_DRY": "1", "MOTION": str(MOCAP), "RUN_CONFIG": str(SCRIPT.parents[1] / "configs" / "sync_cpu.yaml"),
           "WORKERS": "2", "SEEDS": "1 2", "LOADERS": "0", "CALIB_STEPS": "12", "MIN_STEPS": "4", "MAX_STEPS": "8",
           "MARGIN_S": "0", "RENDER_OVERRIDES": "data.train.subjects=[S1] data.train.identities_per_subject=1 "
                                                "data.train.max_sequences=2 data.train.max_seconds=3"}
    r = subprocess.run(["bash", str(SCRIPT.with_name("sync_pretrain_gpu.sh")), str(work), "600", "train.device=cpu",
                        "train.batch_size=2"], capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    timings = (work / "timings.txt").read_text()
    assert "rendered train in" in timings and "calibration (2 at once)" in timings
    assert "training 8 steps" in timings   # a 600-s budget allows far more: MAX_STEPS caps it
    assert '"workers": 2' in (work / "data" / "train" / "bench_synth.json").read_text()
    for seed in (1, 2):
        run = load_run(work / f"run_s{seed}")
        assert (run.step, run.config.train.seed, run.config.train.batch_size) == (8, seed, 2)
        assert (work / f"calib_s{seed}" / "metrics.csv").is_file()
