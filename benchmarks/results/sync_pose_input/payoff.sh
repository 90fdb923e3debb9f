#!/usr/bin/env bash
# payoff.png of this folder from the committed probe copies: section 3's command of README.md with the starts of
# sections 5-9. Each "as pretrained" start is compared with scratch read the same way on the machine it was read
# on (--scratch; the seed-2 sixteen-groups start's file holds its own: the benchmark's cell). Run from anywhere:
#   [PYTHON=.venv/bin/python] [OUT=other.png] benchmarks/results/sync_pose_input/payoff.sh   (default: payoff.png here)
set -euo pipefail
cd "$(dirname "$0")/../../.."
PY=${PYTHON:-$(command -v python || command -v python3)}
OUT=${OUT:-benchmarks/results/sync_pose_input/payoff.png}
G=benchmarks/results/sync_groups; E=benchmarks/results/sync_easy_negatives; S=benchmarks/results/sync_pose_input
s1=190.627; s2=186.042   # scratch at pose seeds 1 / 2 on the Xeon (bf16)
zen4=187.679              # scratch at pose seed 1 on the AMD EPYC Zen 4 (bf16): pa_scratch_s1_zen4
"$PY" benchmarks/sync_payoff_summary.py \
  --start "pairs s1, raw=$E/results.json,$G/probe_pairs_s1_frozen0/results.json:sync8k" \
  --start "groups 8k s1, raw=$G/probe_dense8/results.json,$G/probe_dense8_frozen0/results.json" \
  --start "groups 8/step s1, raw=$G/probe_dense8_b8/results.json" \
  --start "groups 24k s1, raw=$G/probe_dense8_24k/results.json,$G/probe_dense8_24k_frozen0/results.json" \
  --start "pairs s1, as pretrained=$E/results.json,$S/pa_pairs_s1/results.json:sync8k" \
  --start "groups 8k s1, as pretrained=$G/probe_dense8/results.json,$S/pa_dense8_s1/results.json" \
  --start "groups 8/step s1, as pretrained=$G/probe_dense8_b8/results.json,$S/pa_dense8_b8_s1/results.json" \
  --start "groups 24k s1, as pretrained=$G/probe_dense8_24k/results.json,$S/pa_dense8_24k_s1/results.json,$S/pa_dense8_24k_frozen0_s1/results.json" \
  --start "groups 8/step 12k s1, as pretrained=$S/pa_dense8_b8_12k_s1/results.json" \
  --start "pairs s2, as pretrained=$E/seed2/results.json,$S/pa_pairs_s2/results.json:sync8k" \
  --start "groups 8k s2, as pretrained=$G/probe_dense8_s2/results.json,$S/pa_dense8_s2/results.json" \
  --start "groups 16/step 8k s1, as pretrained=$S/pa_dense8_b16_8k_s1/results.json" \
  --start "groups 16/step 8k s2, as pretrained=$S/pa_dense8_b16_8k_s2_pose1/results.json" \
  --start "groups 32/step 4k s1, as pretrained=$S/pa_dense8_b32_4k_pose1/results.json" \
  --start "groups 16/step 16k s1, as pretrained=$S/pa_dense8_b16_16k_pose1/results.json" \
  --start "groups 16/step 16k s2, as pretrained=$S/pa_dense8_b16_16k_s2_pose1/results.json" \
  --scratch "pairs s1, as pretrained=$s1" --scratch "groups 8k s1, as pretrained=$s1" \
  --scratch "groups 8/step s1, as pretrained=$s1" --scratch "groups 24k s1, as pretrained=$s1" \
  --scratch "groups 8/step 12k s1, as pretrained=$s1" --scratch "groups 16/step 8k s1, as pretrained=$s1" \
  --scratch "pairs s2, as pretrained=$s2" --scratch "groups 8k s2, as pretrained=$s2" \
  --scratch "groups 32/step 4k s1, as pretrained=$zen4" \
  --scratch "groups 16/step 16k s1, as pretrained=$s1" --scratch "groups 16/step 16k s2, as pretrained=$s1" \
  "$@" --out "$OUT"
