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


NO_GPU = {
    "gpu_run.sh": f"gpu_run.sh: this torch ({torch.__version__}) sees no CUDA GPU; run it on a GPU machine "
                  "(PYTHON=... names a Python with a CUDA build of torch and selfpose installed)",
    # sync_transfer_gpu.sh says so before it renders anything
    "sync_transfer_gpu.sh": "sync_transfer_gpu.sh: this torch sees no CUDA GPU (GPU_RUN_DRY=1 with device=cpu for a "
                            "dry run)",
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
