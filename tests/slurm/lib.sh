# lib.sh — helpers sourced by the Slurm tests (tests/slurm/*.sh): the environment they need, a temporary
# directory, a smoke variant long enough to interrupt, and waiting on jobs and files with deadlines.
# Expects CIRCD (the binary) and CIRCD_SOURCE_DIR (the repository; default: two levels above this file);
# CIRCD_SLURM_REQUIRED=1 turns a skip for want of a cluster into a failure.
# shellcheck shell=bash

SKIP=77 # CTest SKIP_RETURN_CODE of every Slurm test (CMakeLists.txt)
: "${CIRCD:?set CIRCD to the circd binary}"
SRC=${CIRCD_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
# shellcheck disable=SC2034  # used by the tests that source this file
GRID=$SRC/slurm/grid.sh
export CIRCD

fail() { echo "FAIL: $*" >&2; exit 1; }
# skip REASON: exit 77 (skipped), or fail where CIRCD_SLURM_REQUIRED=1 says a cluster must be there (CI).
skip() {
    [[ ${CIRCD_SLURM_REQUIRED:-0} != 1 ]] || fail "CIRCD_SLURM_REQUIRED=1 but: $*"
    echo "SKIP: $*" >&2
    exit "$SKIP"
}
note() { echo "-- $*" >&2; }

# A temporary directory, removed at exit unless KEEP_TMP is set (then its path is printed); the jobs this test
# submitted (JOBS) are cancelled at exit, whatever state they are in.
TMP=$(mktemp -d "${TMPDIR:-/tmp}/circd-slurm-test-XXXXXX")
JOBS=()
cleanup() {
    ((${#JOBS[@]} == 0)) || scancel "${JOBS[@]}" 2>/dev/null || true
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

# ---- a running cluster ----------------------------------------------------------------------------------------
# need_cluster: skip (exit 77) unless we are root and a Slurm controller answers with a node that takes jobs —
# slurm/local-cluster.sh start (CI's .ci/run) makes one. Sets CLUSTER_CPUS, the CPUs of that node.
need_cluster() {
    [[ $(id -u) == 0 ]] || skip "not root (the test cluster of slurm/local-cluster.sh runs as root)"
    local c
    for c in sbatch scontrol sinfo scancel; do command -v "$c" >/dev/null || skip "no $c: Slurm is not installed"; done
    local node
    node=$(timeout 10 sinfo -h -o '%T %c' 2>/dev/null | grep -E '^(idle|mixed|allocated|completing)' | head -n 1) ||
        true
    [[ -n $node ]] || skip "no Slurm cluster with a usable node (start one: slurm/local-cluster.sh install start)"
    # shellcheck disable=SC2034  # for the tests
    CLUSTER_CPUS=${node##* }
}

# job_field ID FIELD: one field of `scontrol show job ID` (JobState, Restarts, ExitCode, ...).
job_field() { scontrol show job -o "$1" 2>/dev/null | grep -oP "(^| )$2=\K\S+" || true; }

# submit SBATCH_ARGS...: submits; JOB is its id, recorded for cleanup (not in a $(...): JOBS must grow here).
submit() {
    JOB=$(sbatch --parsable "$@") || fail "sbatch $* failed"
    JOB=${JOB%%;*}
    JOBS+=("$JOB")
}

# wait_job ID SECONDS: until the job has ended for good (not requeued); prints "STATE EXITCODE".
wait_job() {
    local deadline=$((SECONDS + $2)) state
    while :; do
        state=$(job_field "$1" JobState)
        case $state in
            COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE)
                printf '%s %s\n' "$state" "$(job_field "$1" ExitCode)"; return ;;
            "") fail "job $1 is unknown to scontrol" ;;
        esac
        ((SECONDS < deadline)) || fail "job $1 still $state after $2 s"
        sleep 1
    done
}

# wait_requeued ID SECONDS: until the job has been requeued (Restarts >= 1) and is back in the queue or beyond.
# It restarts after the requeue delay (cred_expire: 10 s on slurm/local-cluster.sh's cluster). No `scontrol update
# StartTime=now` to skip it: a job started within the delay can be killed with "Job credential revoked" (seen here).
wait_requeued() {
    local deadline=$((SECONDS + $2)) state restarts
    while :; do
        state=$(job_field "$1" JobState)
        restarts=$(job_field "$1" Restarts)
        if ((${restarts:-0} >= 1)); then
            case $state in PENDING | RUNNING | COMPLETED | FAILED | CANCELLED) return ;; esac
        elif [[ $state == @(COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|"") ]]; then
            fail "job $1 ended (${state:-unknown}) without being requeued"
        fi
        ((SECONDS < deadline)) || fail "job $1 not requeued after $2 s (state $state, restarts ${restarts:-?})"
        sleep 0.5
    done
}
