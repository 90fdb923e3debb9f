#!/usr/bin/env bash
# Issue 15: sync pretraining on a lent GPU from the benchmark's own train renders, its length fitted to a
# wall-clock budget (one device call holds at most 10 minutes) — the GPU runs the steps, the transfer cells run
# on the CPU afterwards (benchmarks/sync_transfer_probe.py --run NAME=WORK/run_sSEED).
#
#   MOTION=path/to/h36m17_train_S1-S8_25fps.npz RUN_CONFIG=path/to/config.yaml \
#     benchmarks/sync_pretrain_gpu.sh WORK BUDGET_S [KEY=VALUE ...]
#
# 1. renders the train split of configs/benchmark_sync_s1_cpu.yaml into WORK/data/train (prepare_split, the
#    benchmark's own renders: S1, S5, S6, S7) by WORKERS processes (default 15; SynthConfig.workers: the
#    frames one process makes) of one torch thread each; skipped when there. RENDER_OVERRIDES: more
#    benchmark config overrides (space-separated; a dry run renders less);
# 2. times CALIB_STEPS (default 40) steps of the run's recipe for each of SEEDS (default "1"; several share
#    the GPU at once) in WORK/calib_sSEED: the slowest seed's median logged s/step after the first ten;
# 3. trains WORK/run_sSEED for each seed, at once, as many steps as the budget left allows less MARGIN_S
#    (default 45 s), the cosine schedule ending there: a multiple of MIN_STEPS (default 500), at least that,
#    at most MAX_STEPS (default 48000). LOADERS (default 6): loader processes per run.
#
# KEY=VALUE: pretraining overrides of RUN_CONFIG (e.g. train.batch_size=32); train.device is cuda unless one
# says otherwise. GPU_RUN_DRY=1 with train.device=cpu: a dry run on a CPU (tests/bench/test_gpu_script.py).
set -euo pipefail
PY=${PYTHON:-$(command -v python || command -v python3)}
# No GPU: one line and stop, before anything is made.
[[ -n "${GPU_RUN_DRY:-}" ]] || "$PY" -c "import sys, torch; torch.cuda.is_available() or sys.exit(
  'sync_pretrain_gpu.sh: this torch sees no CUDA GPU (GPU_RUN_DRY=1 with train.device=cpu for a dry run)')"
WORK=$(realpath -m "${1:?usage: sync_pretrain_gpu.sh WORK BUDGET_S [KEY=VALUE ...]}")
BUDGET=${2:?usage: sync_pretrain_gpu.sh WORK BUDGET_S [KEY=VALUE ...]}; shift 2
t0=$(date +%s)
: "${MOTION:?MOTION= the Human3.6M motion file (../shared/data/mocap/h36m17_train_S1-S8_25fps.npz)}"
: "${RUN_CONFIG:?RUN_CONFIG= the config.yaml of the sync run to pretrain with}"
MOTION=$(realpath "$MOTION"); RUN_CONFIG=$(realpath "$RUN_CONFIG")   # relative to where it is called from
cd "$(dirname "$0")/.."                                                 # the benchmark config's paths are the repo's
export PYTHONUNBUFFERED=1
mkdir -p "$WORK"
"$PY" -c "import os, platform, torch; c = torch.cuda.is_available()
print(f'torch {torch.__version__}, python {platform.python_version()}, host CPUs {os.cpu_count()}, '
      f'gpu {torch.cuda.get_device_name(0) if c else None}')" | tee "$WORK/gpu.txt"

"$PY" - configs/benchmark_sync_s1_cpu.yaml "$WORK" "data.train.motion=$MOTION" \
  "data.train.workers=${WORKERS:-15}" ${RENDER_OVERRIDES:-} > "$WORK/render_train.log" 2>&1 <<'PYEOF' \
  || { tail -n 20 "$WORK/render_train.log" >&2; exit 1; }
import sys
from pathlib import Path
from selfpose.bench.kinds import load_benchmark_config
from selfpose.bench.run import prepare_split
prepare_split(load_benchmark_config(sys.argv[1], sys.argv[3:]), Path(sys.argv[2]), "train", progress=False)
PYEOF
t_render=$(date +%s)
echo "rendered train in $(( t_render - t0 )) s" | tee -a "$WORK/timings.txt"

over=("train.device=cuda" "train.num_workers=${LOADERS:-6}" "train.threads=2" "train.keep_checkpoints=0" "$@")
read -r -a seeds <<< "${SEEDS:-1}"
# Every seed's calibration at once, as their runs will share the GPU: the slowest one's median s/step.
pids=(); calib=()
for seed in "${seeds[@]}"; do
  calib+=("$WORK/calib_s$seed/metrics.csv")
  rm -rf "$WORK/calib_s$seed"   # this script's own scratch folder
  "$PY" -m selfpose pretrain --data "$WORK/data/train" --out "$WORK/calib_s$seed" --config "$RUN_CONFIG" \
    "${over[@]}" "train.seed=$seed" "train.steps=${CALIB_STEPS:-40}" "train.log_every=5" \
    "train.checkpoint_every=100000" "train.picture_every=100000" > "$WORK/calib_s$seed.log" 2>&1 &
  pids+=($!)
done
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || { tail -n 20 "$WORK/calib_s${seeds[$i]}.log" >&2; exit 1; }
done
sps=$("$PY" -c "import csv, statistics, sys
print(max(statistics.median(float(r['sec_per_step']) for r in csv.DictReader(open(f)) if int(r['step']) > 10)
          for f in sys.argv[1:]))" "${calib[@]}")
now=$(date +%s)
steps=$("$PY" -c "import sys
left, sps = float(sys.argv[1]), float(sys.argv[2])
low, cap = int(sys.argv[3]), int(sys.argv[4])
print(max(low, min(cap, int(left / (sps * 1.08) // low * low))))" \
  "$(( BUDGET - (now - t0) - ${MARGIN_S:-45} ))" "$sps" "${MIN_STEPS:-500}" "${MAX_STEPS:-48000}")
echo "calibration (${#seeds[@]} at once): $sps s/step at $(( now - t_render )) s; training $steps steps" \
  | tee -a "$WORK/timings.txt"
pids=()
for seed in "${seeds[@]}"; do
  "$PY" -m selfpose pretrain --data "$WORK/data/train" --out "$WORK/run_s$seed" --config "$RUN_CONFIG" \
    "${over[@]}" "train.seed=$seed" "train.steps=$steps" "train.checkpoint_every=$(( steps / 4 ))" \
    "train.picture_every=$steps" > "$WORK/run_s$seed.log" 2>&1 &
  pids+=($!)
done
rc=0
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || { rc=1; tail -n 20 "$WORK/run_s${seeds[$i]}.log" >&2; }
done
echo "trained $steps steps (seeds ${seeds[*]}) in $(( $(date +%s) - now )) s; total $(( $(date +%s) - t0 )) s" \
  | tee -a "$WORK/timings.txt"
exit "$rc"
