#!/usr/bin/env bash
# grid.sh — run a circd experiment as a Slurm batch job that survives time limits and preemption, or directly with
# mpirun on this machine's cores. `circd run SPEC [circd args...]` under the right launcher, with signals forwarded
# and the job requeued when circd stopped after a checkpoint (exit 75); the next start resumes, not restarts.
#
#   bash slurm/grid.sh SPEC [--output DIR]    (Slurm answers: sbatch --wait of itself, then the table; else mpirun)
#   sbatch slurm/grid.sh experiments/arith.yaml [--output DIR]       (submit from the repository root)
#   sbatch --ntasks=4 --cpus-per-task=2 --time=8:00:00 slurm/grid.sh SPEC   (any #SBATCH default below overrides)
#
# SPEC defaults to experiments/arith.yaml of the repository. Environment:
#   CIRCD_SUBMIT   how `bash slurm/grid.sh` (outside a Slurm job) runs: auto (default: sbatch --wait when sinfo
#                  shows a node that takes jobs, else mpirun here), sbatch (always submit) or local (mpirun here).
#                  Submitting passes CIRCD, SPEC and the arguments on, logs to circd-<job>.out in the current
#                  directory, waits, prints the comparison table of the log and exits with the job's status;
#                  CIRCD_RANKS / CIRCD_THREADS become --ntasks / --cpus-per-task, CIRCD_SBATCH_ARGS adds options
#   CIRCD          the circd binary; otherwise CIRCD_HOME/build/circd, then $SLURM_SUBMIT_DIR/build/circd (sbatch
#                  copies this script to a spool directory, so its own location does not tell), then the
#                  repository around this script, then `circd` on PATH
#   CIRCD_HOME     the repository (for the binary and the default SPEC)
#   CIRCD_RANKS    ranks without Slurm (default: one per CPU divided by CIRCD_THREADS); under Slurm, --ntasks
#   CIRCD_THREADS  OpenMP threads per rank without Slurm (default 1); under Slurm, --cpus-per-task
#   CIRCD_LAUNCHER srun or mpirun under Slurm (default: srun when it has PMIx, which Open MPI needs, else mpirun)
#
# Signals: SIGUSR1 (Slurm's --signal warning before the time limit, or `scancel -s USR1 -b JOB`) and SIGTERM
# (`scontrol requeue`, preemption, scancel) are passed on to circd as SIGUSR1 — circd treats both as "finish the
# step, checkpoint, exit 75", and mpirun relays USR1 whereas it answers TERM by killing its ranks. After a USR1 and
# exit 75 the job requeues itself (`scontrol requeue`); after a TERM it does not: Slurm requeues a requeued or
# preempted job on its own, and a self-requeue would undo a scancel. Exit status: circd's.
#
#SBATCH --job-name=circd
#SBATCH --ntasks=2
#SBATCH --cpus-per-task=1
#SBATCH --time=04:00:00
#SBATCH --requeue
#SBATCH --signal=B:USR1@300
#SBATCH --open-mode=append
#SBATCH --output=circd-%j.out
set -uo pipefail

EXIT_REQUEUE=75 # CIRCD_EXIT_REQUEUE (runtime/util/interrupt.h): stopped after a checkpoint, run again to continue
EXIT_INPUT=2    # circd's exit code for bad input; used here for a missing binary or spec too

say() { printf '[grid.sh %(%F %T)T] %s\n' -1 "$*" >&2; }

usage() { sed -n '2,9s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2; }

# ---- where circd is -------------------------------------------------------------------------------------------
# candidate repositories, most explicit first
repos=()
[[ -n ${CIRCD_HOME:-} ]] && repos+=("$CIRCD_HOME")
[[ -n ${SLURM_SUBMIT_DIR:-} ]] && repos+=("$SLURM_SUBMIT_DIR")
[[ -z ${SLURM_JOB_ID:-} ]] && repos+=("$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)")

find_circd() {
    if [[ -n ${CIRCD:-} ]]; then
        [[ -x $CIRCD && -f $CIRCD ]] && { printf '%s\n' "$CIRCD"; return 0; }
        say "error: CIRCD=$CIRCD is not an executable file"
        return 1
    fi
    local r tried=()
    for r in "${repos[@]}"; do
        [[ -x $r/build/circd ]] && { printf '%s\n' "$r/build/circd"; return 0; }
        tried+=("$r/build/circd")
    done
    command -v circd && return 0
    say "error: no circd binary (tried ${tried[*]:-nothing} and PATH). Build it (scripts/setup.sh) and set" \
        "CIRCD=/path/to/circd or CIRCD_HOME=/path/to/the/repository, or submit from the repository root."
    return 1
}

case ${1:-} in -h | --help) usage; exit 0 ;; esac
circd=$(find_circd) || exit "$EXIT_INPUT"

if (($# == 0)); then
    for r in "${repos[@]}" "$(dirname "$(dirname "$circd")")"; do
        [[ -f $r/experiments/arith.yaml ]] && { set -- "$r/experiments/arith.yaml"; break; }
    done
    (($#)) || { say "error: no SPEC given and no experiments/arith.yaml found"; usage; exit "$EXIT_INPUT"; }
fi
spec=$1
shift
[[ -f $spec ]] || { say "error: spec $spec not found (from $(pwd))"; exit "$EXIT_INPUT"; }

positive() { [[ $2 =~ ^[1-9][0-9]*$ ]] || { say "error: $1 must be a positive integer, not '$2'"; exit "$EXIT_INPUT"; }; }

# ---- outside a job: submit to Slurm and wait, or run here -----------------------------------------------------
# slurm_answers: a controller answers within 10 s and lists a node that takes jobs (idle, mixed, allocated, ...).
slurm_answers() {
    command -v sbatch >/dev/null && command -v sinfo >/dev/null || return 1
    timeout 10 sinfo -h -o '%T' 2>/dev/null | grep -Eq '^(idle|mixed|allocated|completing|planned)'
}

# submit_and_wait SPEC ARGS...: sbatch --wait of this script with the same SPEC and arguments and this circd; the
# job's log is ./circd-<job>.out. Prints the job id at once, the log's last comparison table at the end, and exits
# with the job's status (sbatch --wait's). Ctrl-C stops the waiting only: the job goes on.
submit_and_wait() {
    local spec_abs circd_abs sbatch_args=() id="" sbatch_pid status
    spec_abs=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
    circd_abs=$(cd "$(dirname "$circd")" && pwd)/$(basename "$circd")
    shift
    [[ -n ${CIRCD_RANKS:-} ]] && { positive CIRCD_RANKS "$CIRCD_RANKS"; sbatch_args+=(--ntasks="$CIRCD_RANKS"); }
    [[ -n ${CIRCD_THREADS:-} ]] && { positive CIRCD_THREADS "$CIRCD_THREADS"; sbatch_args+=(--cpus-per-task="$CIRCD_THREADS"); }
    # shellcheck disable=SC2206  # word splitting of the extra options is intended
    [[ -n ${CIRCD_SBATCH_ARGS:-} ]] && sbatch_args+=($CIRCD_SBATCH_ARGS)
    local ids
    ids=$(mktemp "${TMPDIR:-/tmp}/circd-submit-XXXXXX") || { say "error: no temporary file"; exit 1; }
    CIRCD=$circd_abs sbatch --wait --parsable --output="$PWD/circd-%j.out" "${sbatch_args[@]}" \
        "${BASH_SOURCE[0]}" "$spec_abs" "$@" >"$ids" &
    sbatch_pid=$!
    # shellcheck disable=SC2317  # called from the trap below
    stop_waiting() {
        say "stopped waiting${id:+; job $id goes on (scancel $id to stop it), log $PWD/circd-$id.out}"
        kill "$sbatch_pid" 2>/dev/null
        rm -f "$ids"
        exit 130
    }
    trap stop_waiting INT TERM
    while [[ -z $id ]] && kill -0 "$sbatch_pid" 2>/dev/null; do
        id=$(head -n 1 "$ids")
        id=${id%%;*}
        [[ -n $id ]] || sleep 0.2
    done
    [[ -z $id ]] || say "submitted job $id; log $PWD/circd-$id.out; waiting for it to end (Ctrl-C stops waiting)"
    wait "$sbatch_pid"
    status=$?
    trap - INT TERM
    [[ -n $id ]] || { id=$(head -n 1 "$ids"); id=${id%%;*}; }
    rm -f "$ids"
    if [[ -z $id ]]; then
        say "error: sbatch failed (exit $status): see its message above"
        exit "$((status ? status : 1))"
    fi
    local log=$PWD/circd-$id.out
    say "job $id ended (exit $status); log $log"
    [[ -f $log ]] || { say "no log $log"; exit "$((status ? status : 1))"; }
    # The last table in the log (a requeued job appends a run per start): from its header to the footnote.
    local table
    table=$(awk '/^\| model \|/ { table = ""; on = 1 } on { table = table $0 "\n" } /^\(ID: / { on = 0 }
                 END { printf "%s", table }' "$log")
    if [[ -n $table ]]; then
        printf '\n%s\n' "$table"
    else
        say "no comparison table in the log; its last lines:"
        tail -n 5 "$log" >&2
    fi
    exit "$status"
}

if [[ -z ${SLURM_JOB_ID:-} ]]; then
    submit=${CIRCD_SUBMIT:-auto}
    case $submit in
        auto) if slurm_answers; then submit=sbatch; fi ;;
        sbatch) command -v sbatch >/dev/null || { say "error: CIRCD_SUBMIT=sbatch but no sbatch"; exit "$EXIT_INPUT"; } ;;
        local) ;;
        *) say "error: CIRCD_SUBMIT must be auto, sbatch or local, not '$submit'"; exit "$EXIT_INPUT" ;;
    esac
    if [[ $submit == sbatch ]]; then
        say "Slurm: submitting spec $spec with sbatch --wait (CIRCD_SUBMIT=local runs here instead)"
        submit_and_wait "$spec" "$@"
    fi
fi

# ---- ranks, threads, launcher ---------------------------------------------------------------------------------

if [[ -n ${SLURM_JOB_ID:-} ]]; then
    ranks=${SLURM_NTASKS:-${SLURM_NPROCS:-1}}
    threads=${SLURM_CPUS_PER_TASK:-1}
    launcher=${CIRCD_LAUNCHER:-}
    if [[ -z $launcher ]]; then
        if command -v srun >/dev/null && srun --mpi=list 2>&1 | grep -qw pmix; then launcher=srun; else launcher=mpirun; fi
    fi
else
    threads=${CIRCD_THREADS:-1}
    positive CIRCD_THREADS "$threads"
    cpus=$(nproc)
    ranks=${CIRCD_RANKS:-$((cpus / threads > 0 ? cpus / threads : 1))}
    positive CIRCD_RANKS "$ranks"
    launcher=mpirun
fi
positive "the task count" "$ranks"
positive "the CPUs per task" "$threads"
export OMP_NUM_THREADS=$threads
if [[ $(id -u) == 0 ]]; then # Open MPI refuses root without both
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi

case $launcher in
    srun)
        # srun (22.05) does not inherit --cpus-per-task from the job: give it explicitly.
        launch=(srun --mpi=pmix --ntasks="$ranks" --cpus-per-task="$threads" "$circd" run "$spec" "$@") ;;
    mpirun)
        command -v mpirun >/dev/null || { say "error: mpirun not found (install openmpi-bin)"; exit "$EXIT_INPUT"; }
        # One slot per hardware thread; more ranks than that only when asked for explicitly; several OpenMP threads
        # per rank must not be bound to the rank's one core.
        launch=(mpirun -np "$ranks" --use-hwthread-cpus)
        if [[ -z ${SLURM_JOB_ID:-} ]]; then
            ((ranks > cpus)) && launch+=(--oversubscribe)
            # Its own session, out of reach of the terminal's Ctrl-C: mpirun answers SIGINT by killing its ranks;
            # the script forwards a USR1 instead. (setsid execs in place: $! stays mpirun's pid.)
            launch=(setsid "${launch[@]}")
        fi
        ((threads > 1)) && launch+=(--bind-to none)
        launch+=("$circd" run "$spec" "$@") ;;
    *) say "error: CIRCD_LAUNCHER must be srun or mpirun, not '$launcher'"; exit "$EXIT_INPUT" ;;
esac

# ---- run, forwarding signals ----------------------------------------------------------------------------------
if [[ -n ${SLURM_JOB_ID:-} ]]; then
    say "job $SLURM_JOB_ID (restart ${SLURM_RESTART_COUNT:-0}) on ${SLURM_JOB_NODELIST:-?}: spec $spec, $ranks ranks ×" \
        "$threads threads, $launcher, circd $circd"
else
    say "no Slurm: spec $spec, $ranks ranks × $threads threads, mpirun, circd $circd"
fi
say "command: ${launch[*]}"

pid=
got_usr1=0
got_term=0
interrupts=0
# shellcheck disable=SC2317  # called from the traps below
on_signal() {
    case $1 in
        USR1) got_usr1=1 ;;
        TERM) got_term=1 ;;
        INT) interrupts=$((interrupts + 1)) ;;
    esac
    [[ -n $pid ]] || return 0 # not started yet: checked right after the start
    if ((interrupts > 1)); then
        say "second SIGINT: killing circd"
        kill -s KILL "$pid" 2>/dev/null
    else
        say "SIG$1: asking circd to checkpoint and stop"
        kill -s USR1 "$pid" 2>/dev/null
    fi
}
trap 'on_signal USR1' USR1
trap 'on_signal TERM' TERM
trap 'on_signal INT' INT

"${launch[@]}" &
pid=$!
((got_usr1 || got_term || interrupts)) && kill -s USR1 "$pid" 2>/dev/null

# A trapped signal interrupts `wait` (status > 128) while the launcher still runs: wait again. Bash keeps the
# status of a finished child, so the last `wait` reports the launcher's own exit status.
while wait "$pid"; status=$?; kill -0 "$pid" 2>/dev/null; do :; done
wait "$pid"
last=$?
((last != 127)) && status=$last

# ---- what happens next ----------------------------------------------------------------------------------------
trap '' USR1 TERM INT # `scontrol requeue` of ourselves sends us a TERM
case $status in
    0) say "circd finished (exit 0): the experiment is complete" ;;
    "$EXIT_REQUEUE")
        if [[ -z ${SLURM_JOB_ID:-} ]]; then
            say "circd stopped after a checkpoint (exit 75): run the same command again to continue"
        elif ((got_term)); then
            say "circd stopped after a checkpoint (exit 75) on SIGTERM: a requeued or preempted job restarts by" \
                "itself and continues; a cancelled one ends here"
        elif ((got_usr1)); then
            if scontrol requeue "$SLURM_JOB_ID"; then
                say "circd stopped after a checkpoint (exit 75): job $SLURM_JOB_ID requeued; it continues when it" \
                    "starts again"
            else
                say "circd stopped after a checkpoint (exit 75) but scontrol requeue failed (submitted with" \
                    "--no-requeue?): submit the same command again to continue"
            fi
        else
            say "circd stopped after a checkpoint (exit 75) without a signal to this script: submit the same" \
                "command again to continue"
        fi ;;
    "$EXIT_INPUT") say "circd rejected its input (exit 2): fix the spec or the arguments; no requeue" ;;
    *) say "circd failed (exit $status): see the messages above; no requeue" ;;
esac
exit "$status"
