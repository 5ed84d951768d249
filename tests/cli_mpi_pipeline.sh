#!/usr/bin/env bash
# cli_mpi_pipeline.sh — the distillation grid with the teacher's forward pipelined over 2 ranks (issue 6,
# parallel.teacher_pipeline_stages: 2; sched/pipeline.h):
#   1. smoke.yaml's KD / CD runs on 2 ranks (the teacher pipelined, the student on rank 0) give 1 rank's numbers
#      (`circd compare`, rtol 1e-5), and the log says the teacher ran pipelined and prints its bubble;
#   2. SIGUSR1 in the middle of a pipelined distillation stops both ranks with the requeue code (75) after rank 0's
#      checkpoint; the rerun resumes and ends with the very weights of an uninterrupted 2-rank run.
# Needs $CIRCD (the binary) and mpirun; OMP_NUM_THREADS=1 for every run so that only the rank count differs.
# shellcheck source=tests/lib_mpi.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib_mpi.sh"

# smoke.yaml with the methods that use the teacher, one seed, the teacher's 2 layers on 2 pipeline stages.
SPEC=$TMP/pipe.yaml
sed -e 's/^  methods: \[.*\]/  methods: [kd, cd_a, cd_b, kd_subnet]/' -e 's/^seeds: \[0, 1\]/seeds: [0]/' \
    -e 's/teacher_pipeline_stages: 1/teacher_pipeline_stages: 2/' "$SRC/experiments/smoke.yaml" >"$SPEC"
grep -q 'teacher_pipeline_stages: 2' "$SPEC" && grep -q 'methods: \[kd, cd_a' "$SPEC" || fail "could not make the spec"

# 1. 1 rank vs 2 ranks.
"$CIRCD" run "$SPEC" --output "$TMP/one" >"$TMP/one.log" 2>&1 || fail "1-rank run: $(tail -5 "$TMP/one.log")"
grep -q 'pipelined' "$TMP/one.log" && fail "1 rank claims a pipelined teacher"
mpi2 run "$SPEC" --output "$TMP/two" >"$TMP/two.log" 2>&1 || fail "2-rank run: $(tail -5 "$TMP/two.log")"
for run in kd cd_a cd_b kd_subnet; do
  grep -q "\[distill-$run-0\] teacher forward pipelined over 2 ranks" "$TMP/two.log" ||
    fail "distill-$run-0 did not pipeline its teacher: $(grep "distill-$run-0" "$TMP/two.log" | head -3)"
  grep -Eq "\[distill-$run-0\] teacher pipeline: 5 forwards, bubble" "$TMP/two.log" || fail "no bubble line for $run"
done
"$CIRCD" compare "$TMP/one/results.h5" "$TMP/two/results.h5" --ignore '/runs/*/train/accuracy' >"$TMP/cmp.txt" ||
  fail "2 ranks (pipelined teacher) differ from 1 rank: $(cat "$TMP/cmp.txt")"

# 2. Interrupted mid-distillation: a CD-A run long enough to be stopped.
stop_and_resume "$SPEC" 500
echo "ok: pipelined teacher on 2 ranks == 1 rank; stopped mid-distillation, resumed to the same weights"
