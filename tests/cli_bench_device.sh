#!/usr/bin/env bash
# cli_bench_device.sh — `circd bench --device` (bench/bench_device.c) on its tiny config: on the CPU a row of fp32
# figures (positive tokens/s, step time, matmul share, the in-run OpenBLAS peak and the ratios), the PyTorch line and,
# with CIRCD_TORCH_TOKENS_PER_S, the circd / PyTorch ratio; --json with the same keys. --device cuda: on a machine
# with a GPU (and a CUDA build) the same rows for fp32 and bf16, else exit 2 with "bench --device cuda: no GPU (...)".
# Bad flags exit 2. bench/torch_reference.py byte-compiles where python3 exists. Needs $CIRCD.
set -euo pipefail
: "${CIRCD:?set CIRCD to the circd binary}"
SRC=${CIRCD_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# A figure row: precision, then 10 numbers (percentages with %), "(>= 60%)" or "(< 60%)", the MFU.
row_ok() { # row_ok FILE PRECISION
    local line
    line=$(grep -E "^$2 " "$1") || fail "no $2 row in: $(cat "$1")"
    awk -v line="$line" 'BEGIN {
        n = split(line, f, " ")
        tok = f[2] + 0; step = f[3] + 0; mm = f[5] + 0; peak = f[9] + 0
        gsub("%", "", f[6]); gsub("%", "", f[7]); gsub("%", "", f[10])
        time_share = f[6] + 0; flop_share = f[7] + 0; ratio = f[10] + 0
        if (!(tok > 0 && step > 0 && mm > 0 && peak > 0)) exit 1
        if (!(time_share > 0 && flop_share > 50 && flop_share <= 100 && ratio > 0)) exit 1
    }' || fail "$2 row has missing or implausible figures: $line"
}

CIRCD_TORCH_TOKENS_PER_S=1000 "$CIRCD" bench --device cpu --tiny --seconds 0.2 >"$TMP/cpu.txt" 2>&1 ||
    fail "bench --device cpu --tiny: $(cat "$TMP/cpu.txt")"
grep -q '^device cpu: tiny config: d 64, 2 layers' "$TMP/cpu.txt" || fail "header: $(head -1 "$TMP/cpu.txt")"
row_ok "$TMP/cpu.txt" fp32
grep -q '^bf16 ' "$TMP/cpu.txt" && fail "a bf16 row on the CPU"
grep -Eq 'x PyTorch \(1000 tok/s\)' "$TMP/cpu.txt" || fail "no circd / PyTorch ratio: $(cat "$TMP/cpu.txt")"
grep -q '^PyTorch: run `python3 bench/torch_reference.py --d 64 --layers 2 --heads 4 --kv-heads 2 --d-ff 176' \
    "$TMP/cpu.txt" || fail "no PyTorch line"

"$CIRCD" bench --device cpu --tiny --batch 2 --seconds 0.1 --json >"$TMP/cpu.json" 2>&1 || fail "--json: $(cat "$TMP/cpu.json")"
for key in train_tokens_per_s matmul_time_share matmul_flop_share peak_tflops matmul_peak_ratio model_peak_ratio; do
    grep -q "\"$key\": [0-9]" "$TMP/cpu.json" || fail "--json lacks $key: $(cat "$TMP/cpu.json")"
done
grep -q '"batch": 2' "$TMP/cpu.json" || fail "--batch 2 not used"

set +e
"$CIRCD" bench --device cuda --tiny --seconds 0.2 >"$TMP/cuda.txt" 2>&1
code=$?
set -e
if [[ $code == 0 ]]; then
    row_ok "$TMP/cuda.txt" fp32
    row_ok "$TMP/cuda.txt" bf16
    echo "bench --device cuda ran on a GPU:"; cat "$TMP/cuda.txt"
else
    [[ $code == 2 ]] || fail "bench --device cuda without a GPU exited $code, expected 2: $(cat "$TMP/cuda.txt")"
    grep -q 'bench --device cuda: no GPU (' "$TMP/cuda.txt" || fail "no-GPU message: $(cat "$TMP/cuda.txt")"
fi

for bad in "--device tpu" "--tiny" "--device cpu --batch -1"; do
    set +e
    # shellcheck disable=SC2086
    "$CIRCD" bench $bad >"$TMP/bad.txt" 2>&1
    code=$?
    set -e
    [[ $code == 2 ]] || fail "bench $bad exited $code, expected 2: $(cat "$TMP/bad.txt")"
done
grep -q -- '--batch: found -1' "$TMP/bad.txt" || fail "bad --batch message: $(cat "$TMP/bad.txt")"

if command -v python3 >/dev/null; then
    python3 -c "import py_compile, sys; py_compile.compile(sys.argv[1], cfile='$TMP/ref.pyc', doraise=True)" \
        "$SRC/bench/torch_reference.py" || fail "bench/torch_reference.py does not compile"
fi
echo "ok: bench --device cpu figures, --json, cuda ($([[ $code == 0 ]] && echo ran || echo 'no GPU: exit 2')), bad flags"
