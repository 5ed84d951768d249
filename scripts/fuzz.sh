#!/usr/bin/env bash
# scripts/fuzz.sh SECONDS [TARGET...] — build the libFuzzer harnesses (tests/fuzz/fuzz_*.c) with clang in
# build-fuzz (CIRCD_FUZZ=ON: ASan + UBSan + coverage) and run each for SECONDS seconds over a temporary copy of
# its seed corpus (tests/data/io: *.safetensors for fuzz_safetensors, *.json for fuzz_config; tests/data/data
# for fuzz_mib_jsonl) with its dictionary.
# Exits non-zero if any harness finds a crash, a leak, a sanitizer report or a timeout; the reproducer is kept
# under build-fuzz/artifacts/ (rerun with: build-fuzz/fuzz_X build-fuzz/artifacts/crash-...).
# Environment: CIRCD_FUZZ_BUILD (build dir, default <repo>/build-fuzz), CIRCD_FUZZ_JOBS (build jobs, default 4).
set -euo pipefail

secs=${1:?usage: scripts/fuzz.sh SECONDS [TARGET...]}
shift
[[ $secs =~ ^[0-9]+$ && $secs -gt 0 ]] || { echo "fuzz.sh: SECONDS must be a positive integer" >&2; exit 2; }
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${CIRCD_FUZZ_BUILD:-$root/build-fuzz}
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  for src in "$root"/tests/fuzz/fuzz_*.c; do targets+=("$(basename "$src" .c)"); done
fi

CC=${CC:-clang} cmake -S "$root" -B "$build" -DCIRCD_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
if ! cmake --build "$build" -j "${CIRCD_FUZZ_JOBS:-4}" --target "${targets[@]}" >"$build/fuzz-build.log" 2>&1; then
  tail -n 40 "$build/fuzz-build.log" >&2
  echo "fuzz.sh: build failed (log: $build/fuzz-build.log)" >&2
  exit 1
fi

seeds_for() {
  case $1 in
    fuzz_safetensors) echo "io/*.safetensors" ;;
    fuzz_config) echo "io/*.json" ;;
    fuzz_tokenizer_hf) echo "tokenizers/*.json" ;;
    fuzz_circuit_json) echo "circuits/*.json" ;;
    fuzz_mib_jsonl) echo "data/*.json*" ;;
    fuzz_spec) echo "spec/*.yaml" ;;
    *) echo "io/*" ;;
  esac
}

mkdir -p "$build/artifacts"
work=$(mktemp -d "${TMPDIR:-/tmp}/circd-fuzz-XXXXXX")
trap 'rm -rf "$work"' EXIT
failed=0
for t in "${targets[@]}"; do
  corpus="$work/$t"
  mkdir -p "$corpus"
  pattern=$(seeds_for "$t")
  # shellcheck disable=SC2086
  cp "$root"/tests/data/$pattern "$corpus"/ 2>/dev/null || true
  dict=()
  name=${t#fuzz_}
  [[ -f $root/tests/fuzz/$name.dict ]] && dict=(-dict="$root/tests/fuzz/$name.dict")
  echo "== $t: ${secs}s, $(ls "$corpus" | wc -l) seeds"
  log="$build/artifacts/$t.log"
  if "$build/$t" "${dict[@]}" -max_total_time="$secs" -max_len=16384 -timeout=10 -rss_limit_mb=2048 \
       -print_final_stats=1 -artifact_prefix="$build/artifacts/$t-" "$corpus" >"$log" 2>&1; then
    grep -E "^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb)" "$log" || true
    echo "== $t: ok"
  else
    failed=1
    tail -n 40 "$log"
    echo "== $t: FAILED (log: $log; reproducers: $build/artifacts/$t-*)" >&2
  fi
done
exit $failed
