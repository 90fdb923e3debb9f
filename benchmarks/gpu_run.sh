#!/usr/bin/env bash
# Issue 14 item 8: the benchmark at a larger profile (configs/benchmark_gpu.yaml) on one CUDA GPU — the data
# rendered, the full method pretrained, its pose heads and probes, the random encoder on the same crop, the
# supervised upper bound and the no-pixel references — with everything it writes under one folder.
#
#   benchmarks/gpu_run.sh [WORK [KEY=VALUE ...]]  WORK defaults to out/gpu; KEY=VALUE: benchmark config overrides
#   CONFIG=configs/benchmark_sync_gpu.yaml benchmarks/gpu_run.sh out/sync_gpu   another GPU benchmark config (CONFIG
#                                                 relative to the repository root, as the configs' own paths are)
#   DATA=out/quick/data benchmarks/gpu_run.sh    reuse data rendered earlier (a benchmark's WORK/data: train/, test/)
#   PYTHON=/path/to/python benchmarks/gpu_run.sh a Python whose torch is a CUDA build, with selfpose installed
#   GPU_RUN_DRY=1 benchmarks/gpu_run.sh WORK device=cpu steps=30 ...   a dry run of the script on a CPU
#
# WORK then holds: gpu.txt (the GPU, driver, torch), log.txt (everything printed), timings.txt (wall seconds
# of the run), results.md / results.json / cells/ (the benchmark's report) and the runs. An interrupted run
# resumes where it stopped when called again with the same WORK. Nothing here runs in CI or in the tests.
set -euo pipefail
WORK=$(realpath -m "${1:-out/gpu}")                    # relative to where it is called from
shift || true                                          # the rest: config overrides
CONFIG=${CONFIG:-configs/benchmark_gpu.yaml}
[[ -z "${DATA:-}" ]] || DATA=$(realpath -m "$DATA")
PY=${PYTHON:-$(command -v python || command -v python3 || echo python)}
cd "$(dirname "$0")/.."                                # the config's relative paths are the repository's
# No GPU: one line and stop, before anything is made.
info=$("$PY" - <<'PYEOF'
import os, platform, sys
import torch
if os.environ.get("GPU_RUN_DRY"):   # a dry run of the script on a CPU (with the override device=cpu)
    sys.exit(print(f"dry run without a GPU: torch {torch.__version__}, host CPUs: {os.cpu_count()}"))
if not torch.cuda.is_available():
    sys.exit(f"gpu_run.sh: this torch ({torch.__version__}) sees no CUDA GPU; run it on a GPU machine "
             "(PYTHON=... names a Python with a CUDA build of torch and selfpose installed)")
p = torch.cuda.get_device_properties(0)
print(f"gpu: {p.name}, {p.total_memory / 2**30:.0f} GiB, {p.multi_processor_count} SMs\n"
      f"torch: {torch.__version__}, CUDA {torch.version.cuda}, bf16: {torch.cuda.is_bf16_supported()}\n"
      f"python: {platform.python_version()}, host CPUs: {os.cpu_count()}")
PYEOF
)
mkdir -p "$WORK"
echo "$info" | tee "$WORK/gpu.txt"

extra=("$@")
if [[ -n "${DATA:-}" ]]; then
  [[ -d "$DATA/train" && -d "$DATA/test" ]] || { echo "gpu_run.sh: DATA=$DATA needs train/ and test/ (a benchmark's WORK/data)" >&2; exit 2; }
  extra+=("data.train_dir=$DATA/train" "data.test_dir=$DATA/test")
fi

start=$(date +%s)
set +e
PYTHONUNBUFFERED=1 "$PY" -m selfpose benchmark --config "$CONFIG" --work "$WORK" ${extra[@]+"${extra[@]}"} 2>&1 \
  | tee -a "$WORK/log.txt"
rc=${PIPESTATUS[0]}
set -e
end=$(date +%s)
echo "$(date -u +%FT%TZ) exit $rc, wall $((end - start)) s, commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  | tee -a "$WORK/timings.txt"
exit "$rc"
