"""benchmarks/gpu_run.sh (issue 14 item 8) on a machine without a GPU: one line, nothing made.

The script's GPU path is not exercised by the tests (they never need a GPU); its config is loaded by
tests/bench/test_benchmark.py::test_shipped_configs_load, and every stage it runs takes ``device``
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


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: the script would run the benchmark")
def test_without_a_gpu_the_script_says_so_in_one_line_and_makes_nothing(tmp_path):
    work = tmp_path / "gpu"
    r = subprocess.run(["bash", str(SCRIPT), str(work)], capture_output=True, text=True, timeout=120,
                       env=_env())
    assert r.returncode != 0
    assert r.stderr.strip().splitlines() == [
        f"gpu_run.sh: this torch ({torch.__version__}) sees no CUDA GPU; run it on a GPU machine "
        "(PYTHON=... names a Python with a CUDA build of torch and selfpose installed)"]
    assert not work.exists()


SYNC_SCRIPT = SCRIPT.with_name("sync_transfer_gpu.sh")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: the script would run the benchmark")
def test_the_sync_transfer_script_without_a_gpu_says_so_before_rendering_anything(tmp_path):
    work = tmp_path / "sync_gpu"
    r = subprocess.run(["bash", str(SYNC_SCRIPT), str(work)], capture_output=True, text=True, timeout=120,
                       env=_env())
    assert r.returncode != 0
    assert r.stderr.strip().splitlines() == [
        "sync_transfer_gpu.sh: this torch sees no CUDA GPU (GPU_RUN_DRY=1 with device=cpu for a dry run)"]
    assert not work.exists()
