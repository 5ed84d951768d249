#!/usr/bin/env bash
# cli_mpi_run.sh — `circd run` under `mpirun -np 2` (issue 6):
#   1. the plan: `circd plan --ranks 2` places the two trainings on different ranks; --dot is a digraph;
#   2. smoke.yaml on 2 ranks gives the same numbers as on 1 rank (`circd compare`, rtol 1e-5, same thread count);
#   3. kill -9 of every rank at several points (mid teacher training, after AtP, mid grid, mid evaluation), rerun
#      each time: every stage finished before a kill is skipped, the final results.h5 is readable and has the
#      uninterrupted run's numbers;
#   4. a bad spec and a failing stage end both ranks with one clear message and a non-zero exit, no hang.
# Needs $CIRCD (the binary) and mpirun; OMP_NUM_THREADS=1 for every run so that only the rank count differs.
# shellcheck source=tests/lib_mpi.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib_mpi.sh"
# The accuracy-during-training curves hold wall-clock seconds; everything else must match.
IGNORE='/runs/*/train/accuracy'

# A smoke variant whose teacher trains long enough (400 steps) to be killed mid-training.
SPEC=$TMP/long.yaml
sed 's/teacher: {steps: 20,/teacher: {steps: 400,/' "$SRC/experiments/smoke.yaml" >"$SPEC"
grep -q 'steps: 400' "$SPEC" || fail "could not make the long spec"

# 1. The plan.
"$CIRCD" plan "$SPEC" --ranks 2 >"$TMP/plan.txt"
grep -Eq '^  rank 0 +train-teacher' "$TMP/plan.txt" || fail "train-teacher not on rank 0: $(cat "$TMP/plan.txt")"
grep -Eq '^  rank 1 +train-student-base' "$TMP/plan.txt" || fail "train-student-base not on rank 1"
grep -q 'on 2 ranks: 52 stages (52 to run) in [0-9]* rounds' "$TMP/plan.txt" || fail "plan header: $(head -2 "$TMP/plan.txt")"
"$CIRCD" plan "$SPEC" --ranks 2 --dot >"$TMP/plan.dot"
grep -q '"train-teacher" -> "atp-teacher";' "$TMP/plan.dot" || fail "dot lacks the atp edge"
grep -q '^digraph' "$TMP/plan.dot" || fail "not a digraph"

# 2. 1 rank vs 2 ranks.
"$CIRCD" run "$SPEC" --output "$TMP/one" >"$TMP/one.log" 2>&1 || fail "1-rank run: $(tail -5 "$TMP/one.log")"
mpi2 run "$SPEC" --output "$TMP/two" >"$TMP/two.log" 2>&1 || fail "2-rank run: $(tail -5 "$TMP/two.log")"
grep -q '\[train-student-base\] starting on rank 1' "$TMP/two.log" || fail "student base did not run on rank 1"
grep -q '| cd_b_subnet |' "$TMP/two.log" || fail "no table from the 2-rank run"
"$CIRCD" compare "$TMP/one/results.h5" "$TMP/two/results.h5" --ignore "$IGNORE" >"$TMP/cmp12.txt" ||
  fail "2 ranks differ from 1 rank: $(cat "$TMP/cmp12.txt")"
"$CIRCD" compare "$TMP/two/results.h5" "$TMP/one/results.h5" --ignore "$IGNORE" >/dev/null || fail "not symmetric"
# atp and patch are separate stages: the scores in one file, exact patching and AtP* in the other, both merged.
holds() { h5ls -r "$1" >"$TMP/h5ls.txt" && grep -q "^$2" "$TMP/h5ls.txt"; } # holds FILE PATH-PREFIX
holds "$TMP/two/stages/atp-teacher.h5" /atp/teacher/edges || fail "atp-teacher lacks its edge scores"
holds "$TMP/two/stages/atp-teacher.h5" /atp/teacher/exact && fail "atp-teacher did exact patching"
holds "$TMP/two/stages/patch-teacher.h5" /atp/teacher/exact || fail "patch-teacher lacks /exact"
holds "$TMP/two/stages/patch-teacher.h5" /atp/teacher/nodes && fail "patch-teacher redid the scores"
holds "$TMP/two/results.h5" /atp/teacher/atp_star || fail "results.h5 lacks AtP*"
# The comparison can fail: a file holding less (one stage's) must not compare equal.
"$CIRCD" compare "$TMP/one/results.h5" "$TMP/one/stages/atp-teacher.h5" >/dev/null 2>&1 &&
  fail "compare called a partial file equal"

# 2b. With parallel.teacher_pipeline_stages: 2 the plan gives KD / CD runs both ranks.
PIPE=$TMP/pipe.yaml
sed -e 's/teacher_pipeline_stages: 1/teacher_pipeline_stages: 2/' \
    -e 's/methods: \[sft, kd, cot, cd_a, cd_b, sft_subnet, kd_subnet, cot_subnet, cd_a_subnet, cd_b_subnet\]/methods: [kd, cd_a, cd_b_subnet]/' \
    "$SRC/experiments/smoke.yaml" >"$PIPE"
grep -q 'methods: \[kd, cd_a, cd_b_subnet\]' "$PIPE" || fail "could not make the pipeline spec"
"$CIRCD" plan "$PIPE" --ranks 2 | grep -Eq '^  ranks 0-1 +distill-kd-0 .*teacher pipelined over 2 ranks' ||
  fail "plan does not pipeline the KD teacher"
# (The pipelined runs themselves are compared with one rank in cli_mpi_pipeline.sh.)

# 3. kill -9 at several points, then finish.
OUT=$TMP/killed
run_until() { # run_until FILE: start the 2-rank run, kill -9 every rank as soon as FILE exists
  local file=$1
  mpi2 run "$SPEC" --output "$OUT" >>"$TMP/killed.log" 2>&1 &
  local launcher=$!
  for _ in $(seq 3000); do
    [[ -e $file ]] && break
    kill -0 "$launcher" 2>/dev/null || break
    sleep 0.02
  done
  pkill -9 -f "circd run $SPEC --output $OUT" || true
  wait "$launcher" 2>/dev/null || true
  echo "== killed at $(basename "$file") ==" >>"$TMP/killed.log"
}
run_until "$OUT/checkpoints/teacher.ckpt"
[[ -e $OUT/stages/train-teacher.h5 ]] && fail "the first kill came after the teacher finished: not mid-training"
run_until "$OUT/stages/atp-teacher.h5"
run_until "$OUT/stages/distill-cd_b-0.h5"
run_until "$OUT/stages/eval-kd-1.h5"
mpi2 run "$SPEC" --output "$OUT" >"$TMP/final.log" 2>&1 || fail "resumed run: $(tail -5 "$TMP/final.log")"
grep -q '\[data\] done in an earlier run: skipped' "$TMP/final.log" || fail "finished stages were redone"
grep -q '\[eval-kd-1\] done in an earlier run: skipped' "$TMP/final.log" || fail "eval-kd-1 was redone"
grep -q 'resuming from' "$TMP/killed.log" || fail "the teacher did not resume from its checkpoint"
h5dump -H "$OUT/results.h5" >/dev/null || fail "results.h5 unreadable"
"$CIRCD" compare "$TMP/two/results.h5" "$OUT/results.h5" --ignore "$IGNORE" >"$TMP/cmpk.txt" ||
  fail "killed-and-resumed differs: $(cat "$TMP/cmpk.txt")"
cmp "$TMP/two/models/teacher/model.safetensors" "$OUT/models/teacher/model.safetensors" ||
  fail "resumed teacher weights differ"

# 3a. One rank dies (kill -9 of rank 1 alone, mid teacher training): the launcher ends the job with an error
#     instead of leaving rank 0 waiting, and a rerun finishes with the same numbers.
OUT1=$TMP/one-rank-killed
mpi2 run "$SPEC" --output "$OUT1" >"$TMP/rankkill.log" 2>&1 &
launcher=$!
for _ in $(seq 3000); do [[ -e $OUT1/checkpoints/student_base.ckpt || -e $OUT1/stages/train-student-base.h5 ]] && break; sleep 0.02; done
victim=$(pgrep -f "circd run $SPEC --output $OUT1" | while read -r pid; do
  grep -qz '^OMPI_COMM_WORLD_RANK=1$' "/proc/$pid/environ" 2>/dev/null && echo "$pid"; done | head -1)
[[ -n $victim ]] || fail "could not find rank 1"
kill -9 "$victim"
start=$SECONDS
set +e
wait "$launcher"
code=$?
set -e
[[ $code != 0 ]] || fail "a job with a dead rank exited 0"
((SECONDS - start < 60)) || fail "the job took $((SECONDS - start)) s to end after rank 1 died"
pkill -9 -f "circd run $SPEC --output $OUT1" || true
mpi2 run "$SPEC" --output "$OUT1" >"$TMP/rankkill2.log" 2>&1 || fail "rerun after a dead rank: $(tail -5 "$TMP/rankkill2.log")"
"$CIRCD" compare "$TMP/two/results.h5" "$OUT1/results.h5" --ignore "$IGNORE" >"$TMP/cmpd.txt" ||
  fail "rerun after a dead rank differs: $(cat "$TMP/cmpd.txt")"

# 3b. A results.h5 damaged by a kill mid-merge is rebuilt from the stage files.
printf 'garbage' >"$OUT/results.h5"
mpi2 run "$SPEC" --output "$OUT" >"$TMP/rebuilt.log" 2>&1 || fail "rebuild: $(tail -5 "$TMP/rebuilt.log")"
grep -q 'was damaged' "$TMP/rebuilt.log" || fail "no word about the damaged file"
"$CIRCD" compare "$TMP/two/results.h5" "$OUT/results.h5" --ignore "$IGNORE" >"$TMP/cmpr.txt" ||
  fail "rebuilt results differ: $(cat "$TMP/cmpr.txt")"

# 4. Errors end every rank: a bad spec (exit 2), and a stage failing on one rank (a teacher checkpoint that
#    cannot be read) with its message once, naming the stage.
printf 'name: bad\nseeds: [0]\nmodels: {teacher: {arch: {d_model: -3}}}\n' >"$TMP/bad.yaml"
set +e
mpi2 run "$TMP/bad.yaml" >"$TMP/bad.log" 2>&1
code=$?
set -e
[[ $code == 2 ]] || fail "bad spec: exit $code, expected 2"
grep -q 'd_model' "$TMP/bad.log" || fail "bad spec: no message naming the key"
mkdir -p "$TMP/broken/stages" "$TMP/broken/models/teacher"
mpi2 run "$SPEC" --output "$TMP/broken" >/dev/null 2>&1 || fail "setup of the failing-stage case"
rm -f "$TMP/broken/stages/atp-teacher.h5" "$TMP/broken/stages/circuit-teacher.h5" "$TMP/broken/stages/report.h5"
rm -f "$TMP/broken/results.h5"
printf 'not safetensors' >"$TMP/broken/models/teacher/model.safetensors"
set +e
mpi2 run "$SPEC" --output "$TMP/broken" >"$TMP/broken.log" 2>&1
code=$?
set -e
[[ $code != 0 ]] || fail "a failing stage exited 0"
[[ $(grep -c 'circd run: \[atp-teacher\] failed on rank' "$TMP/broken.log") == 1 ]] ||
  fail "expected one message naming the failing stage: $(tail -5 "$TMP/broken.log")"
echo "ok: plan, 2 ranks == 1 rank, 4 kills resumed, a dead rank ends the job, damaged results rebuilt, errors end every rank"
