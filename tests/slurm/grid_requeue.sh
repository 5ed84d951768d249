#!/usr/bin/env bash
# grid_requeue.sh — `sbatch slurm/grid.sh` on a real single-node Slurm cluster (issue 6), with the #SBATCH defaults
# of the script (2 tasks, srun with PMIx):
#   1. `bash slurm/grid.sh smoke.yaml` (not under sbatch, Slurm up) submits itself with `sbatch --wait`, logs to
#      circd-<id>.out in the submit directory, prints the comparison table, exits 0, and every stage is done;
#   2. `scontrol requeue` after the teacher's first checkpoint: Slurm sends TERM, the job restarts with
#      SLURM_RESTART_COUNT=1, skips the finished stages, continues the teacher, and ends with the numbers of an
#      uninterrupted run (`CIRCD_SUBMIT=local bash slurm/grid.sh`, mpirun, no Slurm);
#   3. `scancel --signal=USR1 --batch` (what --signal=B:USR1 sends before the time limit): the script forwards it,
#      circd checkpoints and exits 75, the job requeues itself, and resumes to the same numbers.
# Skips (77) when not root or no cluster runs (slurm/local-cluster.sh start makes one). About 2 minutes.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
need_cluster
# Jobs keep the script's 2 tasks, unless the node has fewer CPUs (then no job could start).
ntasks=()
((CLUSTER_CPUS >= 2)) || ntasks=(--ntasks=1)
ranks=$((CLUSTER_CPUS >= 2 ? 2 : 1))
mkdir "$TMP/submit"
cd "$TMP/submit"

# 1. The one command: `bash slurm/grid.sh smoke.yaml` outside a job, Slurm answering (CIRCD_SUBMIT=auto) — it
#    submits itself with sbatch --wait, logs to circd-<id>.out in the submit directory, prints the table, exits 0.
note "bash slurm/grid.sh smoke.yaml with Slurm up: sbatch --wait, then the table"
cp "$SRC/experiments/smoke.yaml" smoke.yaml
rc=0
(unset "${!SLURM_@}" && CIRCD_SUBMIT=auto CIRCD_RANKS=$ranks timeout 300 bash "$GRID" smoke.yaml --output "$TMP/smoke") \
    >"$TMP/smoke.out" 2>"$TMP/smoke.err" || rc=$?
id=$(grep -oP 'submitted job \K[0-9]+' "$TMP/smoke.err") || fail "no job submitted (exit $rc): $(cat "$TMP/smoke.err")"
JOBS+=("$id")
log=$TMP/submit/circd-$id.out
[[ -f $log ]] || fail "no log circd-$id.out in the submit directory: $(ls "$TMP/submit")"
((rc == 0)) || fail "bash slurm/grid.sh: exit $rc: $(tail -5 "$TMP/smoke.err") / $(tail -5 "$log")"
grep -q "job $id ended (exit 0)" "$TMP/smoke.err" || fail "no end line: $(tail -3 "$TMP/smoke.err")"
grep -q '^| model |' "$TMP/smoke.out" || fail "no table printed: $(cat "$TMP/smoke.out")"
grep -q '^| cd_b_subnet |' "$TMP/smoke.out" || fail "no cd_b_subnet row in the table: $(cat "$TMP/smoke.out")"
[[ $(job_field "$id" JobState) == COMPLETED ]] || fail "job $id: $(job_field "$id" JobState)"
grep -q "job $id (restart 0) on .*smoke.yaml, $ranks ranks × 1 threads, srun" "$log" || fail "start line: $(head -2 "$log")"
grep -q "command: srun --mpi=pmix --ntasks=$ranks --cpus-per-task=1 " "$log" || fail "not launched with srun"
grep -q 'circd finished (exit 0)' "$log" || fail "no end line: $(tail -3 "$log")"
grep -q '^| cd_b_subnet |' "$log" || fail "no table in the log"
all_done "$SRC/experiments/smoke.yaml" "$TMP/smoke"

# The reference: the same long spec, uninterrupted, without Slurm.
long_spec "$TMP/long.yaml" 6000
note "uninterrupted reference: bash slurm/grid.sh (mpirun)"
(unset "${!SLURM_@}" && CIRCD_SUBMIT=local CIRCD_RANKS=$ranks bash "$GRID" "$TMP/long.yaml" --output "$TMP/ref" \
    >"$TMP/ref.log" 2>&1) ||
    fail "reference run: $(tail -5 "$TMP/ref.log")"

# interrupted NAME HOW: submits the long spec into $TMP/NAME (log $TMP/NAME.log), waits for the teacher's first
# checkpoint, interrupts the job with HOW (a command taking the job id), lets it restart at once, waits for it to
# end, and checks that the restart resumed and ended with the reference's numbers.
interrupted() {
    local name=$1 how=$2 log=$TMP/$1.log
    note "$name: interrupt after the first checkpoint, then the requeued job"
    submit "${ntasks[@]}" -o "$log" "$GRID" "$TMP/long.yaml" --output "$TMP/$name"
    local deadline=$((SECONDS + 300))
    until [[ -e $TMP/$name/checkpoints/teacher.ckpt ]]; do
        ((SECONDS < deadline)) || fail "$name: no teacher checkpoint after 300 s (job $(job_field "$JOB" JobState))"
        [[ $(job_field "$JOB" JobState) == @(PENDING|RUNNING) ]] || fail "$name: job ended early: $(tail -5 "$log")"
        sleep 0.2
    done
    $how "$JOB" || fail "$name: $how $JOB failed"
    wait_requeued "$JOB" 120
    local end
    end=$(wait_job "$JOB" 300)
    [[ $end == "COMPLETED 0:0" ]] || fail "$name: job ended $end: $(tail -5 "$log")"
    grep -q "job $JOB (restart 0)" "$log" || fail "$name: no first start in the log"
    grep -q "job $JOB (restart 1)" "$log" || fail "$name: SLURM_RESTART_COUNT never reached 1: $(grep grid.sh "$log")"
    grep -q 'train-teacher: stopped by signal .* (checkpoint saved)' "$log" ||
        fail "$name: the teacher was not stopped mid-training: $(grep -v 'step .*/' "$log" | head -20)"
    # What the second run printed: finished stages skipped, the teacher continued from its checkpoint.
    sed -n "/job $JOB (restart 1)/,\$p" "$log" >"$TMP/$name.second"
    grep -q '\[data\] done in an earlier run: skipped' "$TMP/$name.second" || fail "$name: data redone after requeue"
    grep -q '\[train-teacher\] continuing' "$TMP/$name.second" || fail "$name: train-teacher not continued"
    grep -q '\[train-teacher\] resuming from .*teacher.ckpt at step [1-9]' "$TMP/$name.second" ||
        fail "$name: no resume from the checkpoint"
    if grep -q '\[train-teacher\] starting' "$TMP/$name.second"; then fail "$name: teacher restarted from 0"; fi
    grep -q 'circd finished (exit 0)' "$TMP/$name.second" || fail "$name: second run did not finish"
    all_done "$TMP/long.yaml" "$TMP/$name"
    same_results "$TMP/ref" "$TMP/$name"
}

# 2. scontrol requeue: TERM from Slurm, which requeues the job itself; the script must not requeue it again.
interrupted requeue "scontrol requeue"
grep -q 'SIGTERM: asking circd to checkpoint and stop' "$TMP/requeue.log" || fail "requeue: TERM not forwarded"
grep -q 'exit 75) on SIGTERM' "$TMP/requeue.log" || fail "requeue: no end line for TERM: $(grep grid.sh "$TMP/requeue.log")"
if grep -q 'requeued; it continues' "$TMP/requeue.log"; then fail "requeue: the script requeued itself on TERM"; fi

# 3. The time-limit warning: USR1 to the batch shell only; the script requeues the job itself.
usr1() { scancel --signal=USR1 --batch "$1"; }
interrupted usr1 usr1
grep -q 'SIGUSR1: asking circd to checkpoint and stop' "$TMP/usr1.log" || fail "usr1: USR1 not forwarded"
grep -q "exit 75): job $JOB requeued; it continues" "$TMP/usr1.log" ||
    fail "usr1: the job did not requeue itself: $(grep grid.sh "$TMP/usr1.log")"
echo "grid_requeue: OK"
