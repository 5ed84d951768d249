#!/usr/bin/env bash
# data_parallel_cuda.sh — NCCL on 2 GPUs (issue 8): the smoke experiment with `device: cuda` and
# `parallel.data_parallel_ranks: 2` under mpirun -np 2 (one rank per GPU, the node-local rank's) trains every
# distillation run data parallel with the gradients all-reduced by NCCL (the log says so), shards attribution
# patching over both GPUs with the score sums reduced by NCCL, and gives the 1-rank CPU run's numbers within rtol
# 1e-2 (fp32 on both, sums in other orders). Needs 2 GPUs: with fewer, or without CUDA in the build, it prints
# "skipped: no GPU (<why>)" / "skipped: needs 2 GPUs" and exits 77 (CTest: skipped, never a pass). Label gpu.
set -euo pipefail
: "${CIRCD:?set CIRCD to the circd binary}"
SRC=${CIRCD_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
export OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

gpus=0
command -v nvidia-smi >/dev/null 2>&1 && gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
if [[ $gpus -lt 2 ]]; then
  echo "skipped: needs 2 GPUs for NCCL between 2 ranks, found $gpus (nvidia-smi -L)"
  exit 77
fi
{ echo "device: cuda"; grep -v '^device:' "$SRC/experiments/smoke.yaml" |
    sed -e 's/^seeds: \[0, 1\]/seeds: [0]/' -e 's/^  methods: \[.*\]/  methods: [sft, kd, cd_a, cd_b]/' \
        -e 's/teacher_pipeline_stages: 1,/teacher_pipeline_stages: 1, data_parallel_ranks: 2,/'; } >"$TMP/dp.yaml"
grep -q 'data_parallel_ranks: 2' "$TMP/dp.yaml" || fail "could not make the spec"
set +e
timeout 600 mpirun -np 2 "$CIRCD" run "$TMP/dp.yaml" --output "$TMP/gpu" >"$TMP/gpu.log" 2>&1
rc=$?
set -e
if [[ $rc -ne 0 ]] && grep -qE 'built without CUDA|no GPU' "$TMP/gpu.log"; then
  echo "skipped: no GPU ($(grep -m1 -oE 'built without CUDA[^)]*\)?|no GPU.*' "$TMP/gpu.log"))"
  exit 77
fi
[[ $rc -eq 0 ]] || { tail -20 "$TMP/gpu.log" >&2; fail "2 ranks on 2 GPUs exited $rc"; }
for run in sft kd cd_a cd_b; do
  grep -q "\[distill-$run-0\] data parallel over 2 ranks (NCCL all-reduce" "$TMP/gpu.log" ||
    fail "distill-$run-0 did not all-reduce with NCCL: $(grep "distill-$run-0" "$TMP/gpu.log" | head -3)"
done
grep -v '^device:' "$TMP/dp.yaml" >"$TMP/cpu.yaml"
"$CIRCD" run "$TMP/cpu.yaml" --output "$TMP/cpu" >"$TMP/cpu.log" 2>&1 || {
  tail -20 "$TMP/cpu.log" >&2; fail "the 1-rank CPU run failed"; }
"$CIRCD" compare "$TMP/cpu/results.h5" "$TMP/gpu/results.h5" --rtol 1e-2 --ignore '/runs/*/train/accuracy' \
  >"$TMP/cmp.txt" 2>&1 || { cat "$TMP/cmp.txt" >&2; fail "2 GPUs (NCCL) and 1 CPU rank differ by more than 1e-2"; }
echo "data parallel on 2 GPUs with NCCL: finished; results within rtol 1e-2 of one CPU rank"
