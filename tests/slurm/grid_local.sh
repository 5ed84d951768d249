#!/usr/bin/env bash
# grid_local.sh — `bash slurm/grid.sh SPEC` without Slurm (issue 6): the job runs under `mpirun -np CIRCD_RANKS`
# with one OpenMP thread per rank and completes every stage; a SIGUSR1 to the script mid-training reaches circd,
# which checkpoints and exits 75; the same command then resumes (continuing, not restarting) to the numbers of an
# uninterrupted run; a missing binary or spec exits 2 with a message. Needs no cluster: runs wherever mpirun does.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
unset "${!SLURM_@}" # as if outside any allocation, even when ctest itself runs in one
export CIRCD_SUBMIT=local # mpirun here, even where a Slurm cluster answers (grid_requeue.sh tests submitting)
cd "$TMP"

# Missing binary, missing spec: exit 2, and the message says what to do.
rc=0
CIRCD=$TMP/no-such-circd bash "$GRID" "$SRC/experiments/smoke.yaml" >bad.log 2>&1 || rc=$?
((rc == 2)) || fail "missing binary: exit $rc, not 2"
grep -q 'CIRCD=.*no-such-circd is not an executable file' bad.log || fail "missing binary: $(cat bad.log)"
rc=0
bash "$GRID" "$TMP/no-such.yaml" >bad.log 2>&1 || rc=$?
((rc == 2)) || fail "missing spec: exit $rc, not 2"
grep -q 'spec .*no-such.yaml not found' bad.log || fail "missing spec: $(cat bad.log)"

# 1. smoke.yaml on 2 ranks through mpirun.
note "smoke.yaml with mpirun -np 2"
CIRCD_RANKS=2 bash "$GRID" "$SRC/experiments/smoke.yaml" --output smoke >smoke.log 2>&1 ||
    fail "grid.sh smoke run: exit $?: $(tail -5 smoke.log)"
grep -q 'no Slurm: spec .*smoke.yaml, 2 ranks × 1 threads, mpirun' smoke.log || fail "start line: $(head -2 smoke.log)"
grep -Eq 'command: (setsid )?mpirun -np 2 ' smoke.log || fail "not launched with mpirun -np 2"
grep -q '\[train-student-base\] starting on rank 1' smoke.log || fail "no stage ran on rank 1: not 2 ranks?"
grep -q 'circd finished (exit 0)' smoke.log || fail "no end line"
all_done "$SRC/experiments/smoke.yaml" smoke

# 2. Interrupted with SIGUSR1 after the teacher's first checkpoint, then resumed; against an uninterrupted run.
long_spec long.yaml 3000
note "uninterrupted reference (circd run, 1 rank)"
OMP_NUM_THREADS=1 "$CIRCD" run long.yaml --output ref >ref.log 2>&1 || fail "reference run: $(tail -5 ref.log)"
note "SIGUSR1 mid-training, then the same command again"
CIRCD_RANKS=2 bash "$GRID" long.yaml --output run >run.log 2>&1 &
pid=$!
wait_for_file run/checkpoints/teacher.ckpt 120 "$pid"
kill -s USR1 "$pid"
rc=0
wait "$pid" || rc=$?
((rc == 75)) || fail "after SIGUSR1: exit $rc, not 75: $(tail -5 run.log)"
grep -q 'SIGUSR1: asking circd to checkpoint and stop' run.log || fail "signal not forwarded: $(tail -5 run.log)"
grep -q 'train-teacher: stopped by signal 10 at step .* (checkpoint saved)' run.log ||
    fail "circd did not stop in train-teacher: $(grep -v 'step .*/' run.log | tail -5)"
grep -q 'run the same command again to continue' run.log || fail "no advice to rerun"
mv run.log run-1.log
CIRCD_RANKS=2 bash "$GRID" long.yaml --output run >run.log 2>&1 || fail "resumed run: exit $?: $(tail -5 run.log)"
grep -q '\[data\] done in an earlier run: skipped' run.log || fail "resumed run redid the data"
grep -q '\[train-teacher\] continuing' run.log || fail "resumed run did not continue the teacher"
grep -q '\[train-teacher\] resuming from .*teacher.ckpt at step [1-9]' run.log || fail "no resume from the checkpoint"
all_done long.yaml run
same_results ref run
echo "grid_local: OK"
