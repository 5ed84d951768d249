# lib.sh — helpers sourced by the Slurm tests (tests/slurm/*.sh): the environment they need, a temporary
# directory, a smoke variant long enough to interrupt, and waiting on jobs and files with deadlines.
# Expects CIRCD (the binary) and CIRCD_SOURCE_DIR (the repository; default: two levels above this file).
# shellcheck shell=bash

SKIP=77 # CTest SKIP_RETURN_CODE of every Slurm test (CMakeLists.txt)
: "${CIRCD:?set CIRCD to the circd binary}"
SRC=${CIRCD_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
# shellcheck disable=SC2034  # used by the tests that source this file
GRID=$SRC/slurm/grid.sh
export CIRCD

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*" >&2; exit "$SKIP"; }
note() { echo "-- $*" >&2; }

# A temporary directory, removed at exit unless KEEP_TMP is set (then its path is printed).
TMP=$(mktemp -d "${TMPDIR:-/tmp}/circd-slurm-test-XXXXXX")
cleanup() {
    if [[ -n ${KEEP_TMP:-} ]]; then echo "kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

# long_spec FILE STEPS: smoke.yaml with a teacher of STEPS steps and a checkpoint every 500, so that a run can be
# stopped mid-training after its first checkpoint.
long_spec() {
    sed -e "s/teacher: {steps: 20, batch: 8, lr: 3.0e-3, warmup_steps: 2, checkpoint_interval: 10, eval_interval: 10,/teacher: {steps: $2, batch: 8, lr: 3.0e-3, warmup_steps: 2, checkpoint_interval: 500, eval_interval: $2,/" \
        "$SRC/experiments/smoke.yaml" >"$1"
    grep -q "steps: $2, " "$1" || fail "could not make the long spec from smoke.yaml (its teacher line changed?)"
}

# wait_for_file FILE SECONDS [PID]: until FILE exists; fails after SECONDS or when process PID ended first.
wait_for_file() {
    local deadline=$((SECONDS + $2))
    until [[ -e $1 ]]; do
        ((SECONDS < deadline)) || fail "no $1 after $2 s"
        [[ -z ${3:-} ]] || kill -0 "$3" 2>/dev/null || fail "process $3 ended before $1 appeared"
        sleep 0.2
    done
}

# all_done SPEC DIR: `circd plan` finds every stage of SPEC done in DIR.
all_done() {
    local plan
    plan=$("$CIRCD" plan "$1" --output "$2" 2>&1 | head -n 1)
    [[ $plan == *"(0 to run)"* ]] || fail "stages left to run in $2: $plan"
}

# table LOG: the comparison table's rows in a log (the line naming the results file differs between runs).
table() { grep '^|' "$1"; }

# same_results REF_DIR DIR: the two runs' tables and numbers agree (curves of resumed trainings excepted: they
# hold seconds and restart at the resume).
same_results() {
    diff <(table "$1.log") <(table "$2.log") >"$TMP/table.diff" || fail "tables differ: $(cat "$TMP/table.diff")"
    [[ -n $(table "$2.log") ]] || fail "no table in $2.log"
    "$CIRCD" compare "$1/results.h5" "$2/results.h5" --ignore '/runs/*/train/*,/runs/*/*/train_loss' \
        >"$TMP/compare.txt" 2>&1 || fail "$2/results.h5 differs from $1/results.h5: $(cat "$TMP/compare.txt")"
}
