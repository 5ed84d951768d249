# lib_mpi.sh — sourced by the 2-rank shell tests (cli_mpi_*.sh): strict mode, the binary and source tree, one
# OpenMP thread per rank (so that only the rank count differs between compared runs), mpirun as root, a temporary
# directory ($TMP, kept when KEEP_TMP is set, every process still using it killed at exit), fail and mpi2.
set -euo pipefail
: "${CIRCD:?set CIRCD to the circd binary}"
SRC=${CIRCD_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
export OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
TMP=$(mktemp -d)
[[ -n ${KEEP_TMP:-} ]] && echo "keeping temporaries in $TMP"
trap 'pkill -9 -f "$TMP" 2>/dev/null || true; [[ -n ${KEEP_TMP:-} ]] || rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
mpi2() { timeout 300 mpirun -np 2 "$CIRCD" "$@"; }

# stop_and_resume SPEC STEPS: makes a CD-A-only copy of SPEC distilling for STEPS steps ($TMP/long.yaml), runs it
# uninterrupted on 2 ranks into $TMP/whole, then again into $TMP/stopped with SIGUSR1 sent to mpirun once a 3-digit
# step is logged (exit 75 expected, a checkpoint left), then resumes it into $TMP/stopped ($TMP/resumed.log) and
# checks the weights equal the uninterrupted run's byte for byte.
stop_and_resume() {
  local spec=$1 steps=$2 long=$TMP/long.yaml launcher code
  sed -e 's/^  methods: \[.*\]/  methods: [cd_a]/' \
      -e "s/distill: {steps: 5, batch: 8, lr: 1.0e-3, warmup_steps: 1, checkpoint_interval: 5,/distill: {steps: $steps, batch: 8, lr: 1.0e-3, warmup_steps: 1, checkpoint_interval: 100,/" \
      "$spec" >"$long"
  grep -q "steps: $steps" "$long" || fail "could not make the long spec"
  mpi2 run "$long" --output "$TMP/whole" >"$TMP/whole.log" 2>&1 || fail "uninterrupted run: $(tail -5 "$TMP/whole.log")"
  mpirun -np 2 "$CIRCD" run "$long" --output "$TMP/stopped" >"$TMP/stopped.log" 2>&1 & # $! is mpirun: it forwards USR1
  launcher=$!
  for _ in $(seq 3000); do
    grep -Eq "\[distill-cd_a-0\] step [0-9]{3,}/$steps" "$TMP/stopped.log" 2>/dev/null && break
    kill -0 "$launcher" 2>/dev/null || break
    sleep 0.02
  done
  kill -USR1 "$launcher" 2>/dev/null || fail "the run ended before it could be stopped"
  set +e
  wait "$launcher"
  code=$?
  set -e
  [[ $code == 75 ]] || fail "stopped run: exit $code, expected 75: $(tail -5 "$TMP/stopped.log")"
  grep -q 'stopped by signal' "$TMP/stopped.log" || fail "no word of the signal"
  [[ -e $TMP/stopped/checkpoints/cd_a-0.ckpt ]] || fail "no checkpoint after the stop"
  mpi2 run "$long" --output "$TMP/stopped" >"$TMP/resumed.log" 2>&1 || fail "resumed run: $(tail -5 "$TMP/resumed.log")"
  grep -q '\[distill-cd_a-0\] resuming from' "$TMP/resumed.log" || fail "distill-cd_a-0 did not resume"
  cmp "$TMP/whole/models/cd_a-0/model.safetensors" "$TMP/stopped/models/cd_a-0/model.safetensors" ||
    fail "stopped-and-resumed weights differ from the uninterrupted run's"
}
