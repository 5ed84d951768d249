#!/usr/bin/env bash
# smoke_cuda.sh — the smoke experiment with `device: cuda` (every model stage on the GPU, issue 8) finishes, prints
# its table, and gives the CPU run's numbers within rtol 1e-2 (fp32 on both; summation order differs, so not
# bit for bit). Without a GPU (or without CUDA in the build) it prints "skipped: no GPU (<why>)" and exits 77, which
# CTest reports as skipped, never as a pass. Label gpu (CMakeLists.txt).
set -euo pipefail
: "${CIRCD:?set CIRCD to the circd binary}"
SRC=${CIRCD_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

{ echo "device: cuda"; grep -v '^device:' "$SRC/experiments/smoke.yaml"; } >"$TMP/smoke_cuda.yaml"
set +e
"$CIRCD" run "$TMP/smoke_cuda.yaml" --output "$TMP/gpu" >"$TMP/gpu.log" 2>&1
rc=$?
set -e
if [[ $rc -ne 0 ]] && grep -qE 'built without CUDA|no GPU' "$TMP/gpu.log"; then
  echo "skipped: no GPU ($(grep -m1 -oE 'built without CUDA[^)]*\)?|no GPU[^\n]*' "$TMP/gpu.log"))"
  exit 77
fi
[[ $rc -eq 0 ]] || { cat "$TMP/gpu.log" >&2; fail "the smoke experiment on cuda exited $rc"; }
grep -q '| cd_a |' "$TMP/gpu/comparison.md" || fail "no comparison table from the cuda run"
cat "$TMP/gpu/comparison.md"

"$CIRCD" run "$SRC/experiments/smoke.yaml" --output "$TMP/cpu" >"$TMP/cpu.log" 2>&1 || {
  cat "$TMP/cpu.log" >&2; fail "the smoke experiment on the CPU failed"; }
"$CIRCD" compare "$TMP/cpu/results.h5" "$TMP/gpu/results.h5" --rtol 1e-2 >"$TMP/cmp.txt" 2>&1 || {
  cat "$TMP/cmp.txt" >&2; fail "cuda and CPU results differ by more than rtol 1e-2"; }
echo "smoke on cuda: finished; results within rtol 1e-2 of the CPU's"
