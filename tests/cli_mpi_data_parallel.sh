#!/usr/bin/env bash
# cli_mpi_data_parallel.sh — data-parallel distillation on 2 ranks (issue 8, parallel.data_parallel_ranks: 2;
# distill/method.h, sched/collective.h):
#   1. smoke.yaml's SFT / KD / CoT / CD-A / CD-B / subnetwork runs on 2 ranks, each splitting every batch by rows and
#      all-reducing the gradients, give 1 rank's numbers (`circd compare`, rtol 1e-5) and 1 rank's final weights
#      (every tensor within rtol 1e-5), and the log says which runs went data parallel;
#   2. SIGUSR1 in the middle of a data-parallel CD-A run stops both ranks with the requeue code (75) after rank 0's
#      checkpoint; the rerun resumes on both ranks and ends with the very weights of an uninterrupted 2-rank run.
# Needs $CIRCD (the binary), mpirun and python3 (the weight comparison); OMP_NUM_THREADS=1 for every run.
# shellcheck source=tests/lib_mpi.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib_mpi.sh"

# smoke.yaml with one seed and every kind of run, each trained by 2 data-parallel ranks.
SPEC=$TMP/dp.yaml
sed -e 's/^  methods: \[.*\]/  methods: [sft, kd, cot, cd_a, cd_b, cd_a_subnet]/' -e 's/^seeds: \[0, 1\]/seeds: [0]/' \
    -e 's/teacher_pipeline_stages: 1,/teacher_pipeline_stages: 1, data_parallel_ranks: 2,/' \
    "$SRC/experiments/smoke.yaml" >"$SPEC"
grep -q 'data_parallel_ranks: 2' "$SPEC" && grep -q 'methods: \[sft, kd, cot' "$SPEC" || fail "could not make the spec"

# max relative difference of every tensor of two safetensors files (F32), against 1e-5 of each tensor's scale.
same_weights() {
  python3 - "$1" "$2" <<'EOF'
import json, struct, sys
def load(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    header.pop("__metadata__", None)
    out = {}
    for name, t in header.items():
        assert t["dtype"] == "F32", name
        a, b = t["data_offsets"]
        out[name] = struct.unpack("<%df" % ((b - a) // 4), data[a:b])
    return out
one, two = load(sys.argv[1]), load(sys.argv[2])
assert one.keys() == two.keys(), "different tensors"
worst = 0.0
for name in one:
    scale = max(1.0, max(abs(v) for v in one[name]))
    worst = max(worst, max(abs(a - b) for a, b in zip(one[name], two[name])) / scale)
print("%.3g" % worst)
sys.exit(0 if worst <= 1e-5 else 1)
EOF
}

# 1. 1 rank vs 2 data-parallel ranks.
"$CIRCD" run "$SPEC" --output "$TMP/one" >"$TMP/one.log" 2>&1 || fail "1-rank run: $(tail -5 "$TMP/one.log")"
grep -q 'data parallel over' "$TMP/one.log" && fail "1 rank claims data parallel"
mpi2 run "$SPEC" --output "$TMP/two" >"$TMP/two.log" 2>&1 || fail "2-rank run: $(tail -5 "$TMP/two.log")"
for run in sft kd cot cd_a cd_b cd_a_subnet; do
  grep -q "\[distill-$run-0\] data parallel over 2 ranks (MPI all-reduce of [0-9]* gradients per step)" "$TMP/two.log" ||
    fail "distill-$run-0 did not run data parallel: $(grep "distill-$run-0" "$TMP/two.log" | head -3)"
  worst=$(same_weights "$TMP/one/models/$run-0/model.safetensors" "$TMP/two/models/$run-0/model.safetensors") ||
    fail "$run: 2-rank weights differ from 1 rank's by $worst of their scale"
  echo "$run: 2 data-parallel ranks vs 1, weights max |diff| / scale $worst"
done
"$CIRCD" compare "$TMP/one/results.h5" "$TMP/two/results.h5" --ignore '/runs/*/train/accuracy' >"$TMP/cmp.txt" ||
  fail "2 data-parallel ranks differ from 1 rank: $(cat "$TMP/cmp.txt")"

# 2. Interrupted mid-distillation: a CD-A run long enough to be stopped.
stop_and_resume "$SPEC" 400
[[ $(grep -c '\[distill-cd_a-0\] resuming from' "$TMP/resumed.log") == 2 ]] ||
  fail "distill-cd_a-0 did not resume on both ranks: $(grep 'resuming' "$TMP/resumed.log")"
"$CIRCD" compare "$TMP/whole/results.h5" "$TMP/stopped/results.h5" --ignore '/runs/*/train/accuracy' >"$TMP/cmp2.txt" ||
  fail "the resumed run's results differ: $(cat "$TMP/cmp2.txt")"
echo "ok: data parallel on 2 ranks == 1 rank; stopped mid-distillation, resumed on both ranks to the same weights"
