#!/usr/bin/env bash
# Issue 15: configs/benchmark_sync_gpu.yaml on one CUDA GPU — its train and test renders made at once in two
# processes (bench.run.prepare_split), then the benchmark (benchmarks/gpu_run.sh), then the held-out pretext
# accuracy of the sync run (benchmarks/sync_rows_pretext.py). Nothing here runs in CI or in the tests.
#
#   MOTION=../shared/data/mocap/h36m17_train_S1-S8_25fps.npz benchmarks/sync_transfer_gpu.sh WORK [KEY=VALUE ...]
#
# MOTION replaces the config's motion path (a GPU machine may not have ../shared); KEY=VALUE: config overrides
# (e.g. device=cpu steps=30 finetune.steps=20 for a dry run). WORK then holds what gpu_run.sh writes, the render
# logs and pretext.md / pretext.json.
set -euo pipefail
WORK=$(realpath -m "${1:?usage: sync_transfer_gpu.sh WORK [KEY=VALUE ...]}"); shift
over=("$@")
if [[ -n "${MOTION:-}" ]]; then
  MOTION=$(realpath "$MOTION")
  over=("data.train.motion=$MOTION" "data.test.motion=$MOTION" ${over[@]+"${over[@]}"})
fi
cd "$(dirname "$0")/.."
PY=${PYTHON:-$(command -v python || command -v python3 || echo python3)}
CONFIG=configs/benchmark_sync_gpu.yaml
[[ -n "${GPU_RUN_DRY:-}" ]] || "$PY" -c "import sys, torch; torch.cuda.is_available() or sys.exit(
  'sync_transfer_gpu.sh: this torch sees no CUDA GPU (GPU_RUN_DRY=1 with device=cpu for a dry run)')"
mkdir -p "$WORK"
t0=$(date +%s)
pids=()
for split in train test; do
  PYTHONUNBUFFERED=1 "$PY" - "$CONFIG" "$WORK" "$split" ${over[@]+"${over[@]}"} > "$WORK/render_$split.log" 2>&1 <<'PYEOF' &
import sys
from pathlib import Path
from selfpose.bench.kinds import load_benchmark_config
from selfpose.bench.run import prepare_split
prepare_split(load_benchmark_config(sys.argv[1], sys.argv[4:]), Path(sys.argv[2]), sys.argv[3], progress=False)
PYEOF
  pids+=($!)
done
trap 'kill "${pids[@]}" 2>/dev/null' EXIT   # one render failed: stop the other too
for p in "${pids[@]}"; do
  wait "$p" || { echo "rendering failed: see $WORK/render_*.log" >&2; tail -n 5 "$WORK"/render_*.log >&2; exit 1; }
done
trap - EXIT
echo "rendered train and test in $(( $(date +%s) - t0 )) s" | tee -a "$WORK/timings.txt"
DATA= CONFIG=$CONFIG PYTHON=$PY benchmarks/gpu_run.sh "$WORK" ${over[@]+"${over[@]}"}
PYTHONUNBUFFERED=1 "$PY" benchmarks/sync_rows_pretext.py --work "$WORK" --out "$WORK" --pairs 2000
