#!/usr/bin/env bash
# cli_report.sh — `circd-report` on the smoke experiment (issue 7): the comparison table's rows (report order from
# the spec), exact headers, numbers (mean and sample std over seeds recomputed here from /runs/<row>/<seed>/metrics
# with h5dump), the figure files (well-formed SVG with the expected number of heatmap cells and polylines), the
# index; and exit 2 with a message naming the file for a missing, a non-HDF5 and a foreign (non-circd) HDF5 file.
# Needs $CIRCD and $CIRCD_REPORT (the binaries) and the HDF5 tools h5dump / h5copy.
set -euo pipefail
: "${CIRCD:?set CIRCD to the circd binary}" "${CIRCD_REPORT:?set CIRCD_REPORT to the circd-report binary}"
SRC=${CIRCD_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
TMP=$(mktemp -d)
trap '[[ -n ${KEEP_TMP:-} ]] || rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$CIRCD" run "$SRC/experiments/smoke.yaml" --output "$TMP/run" >"$TMP/run.log" 2>&1 || fail "smoke: $(tail -5 "$TMP/run.log")"
grep -q '| cd_b_subnet |' "$TMP/run.log" || fail "circd run did not end by printing the table"
H5=$TMP/run/results.h5
"$CIRCD_REPORT" "$H5" >"$TMP/report.log" 2>&1 || fail "circd-report: $(cat "$TMP/report.log")"
OUT=$TMP/run/report   # the default: the results file's directory + /report

# The table: exact headers, rows in report order.
MD=$OUT/comparison.md CSV=$OUT/comparison.csv
[[ $(head -1 "$MD") == '| model | ID acc % | OOD acc % | NFS % | CKA to teacher % | robustness % | n |' ]] ||
    fail "Markdown header: $(head -1 "$MD")"
[[ $(head -1 "$CSV") == 'model,id_acc_mean,id_acc_std,ood_acc_mean,ood_acc_std,nfs_mean,nfs_std,cka_mean,cka_std,robustness_mean,robustness_std,n' ]] ||
    fail "CSV header: $(head -1 "$CSV")"
ROWS=$(tail -n +2 "$CSV" | cut -d, -f1 | tr '\n' ' ')
WANT='base sft kd cot cd_a cd_b sft_subnet kd_subnet cot_subnet cd_a_subnet cd_b_subnet teacher '
[[ $ROWS == "$WANT" ]] || fail "rows: '$ROWS', expected '$WANT'"
[[ $(tail -n +3 "$MD" | cut -d'|' -f2 | tr -d ' ' | tr '\n' ' ') == "$WANT" ]] || fail "Markdown rows differ"
awk -F, 'NR > 1 && NF != 12 { exit 1 }' "$CSV" || fail "a CSV row without 12 fields"

# Numbers: mean and sample std over the seeds, from the metrics attributes directly.
attr() { h5dump -a "/runs/$1/$2/metrics/$3" "$H5" | awk '/\(0\):/ { print $2 }'; }
field() { awk -F, -v row="$1" -v col="$2" '$1 == row { print $col }' "$CSV"; }
check_stat() {  # row, metrics attribute, CSV column of the mean (the std follows it)
    local values
    values=$(for seed in 0 1; do attr "$1" "$seed" "$2"; done | tr '\n' ' ')
    [[ $(wc -w <<<"$values") == 2 ]] || fail "$1 $2: could not read both seeds' values ($values)"
    awk -v v="$values" -v mean="$(field "$1" "$3")" -v sd="$(field "$1" $(($3 + 1)))" -v what="$1 $2" 'BEGIN {
        n = split(v, x, " "); s = 0; for (i = 1; i <= n; i++) s += 100 * x[i]; m = s / n
        q = 0; for (i = 1; i <= n; i++) q += (100 * x[i] - m) ^ 2; d = sqrt(q / (n - 1))
        if (mean == "" || (mean - m) ^ 2 > 1e-6 * (1 + m * m) || (sd - d) ^ 2 > 1e-6 * (1 + d * d)) {
            printf "FAIL: %s: table %s ± %s, expected %.6g ± %.6g\n", what, mean, sd, m, d > "/dev/stderr"; exit 1 } }'
}
for row in sft cd_a kd_subnet; do
    check_stat "$row" id_accuracy 2
    check_stat "$row" mean_cka 8
    check_stat "$row" robustness 10
done
[[ $(field sft 12) == 2 && $(field teacher 12) == 1 ]] || fail "seed counts: sft $(field sft 12), teacher $(field teacher 12)"
[[ -z $(field teacher 3) && -z $(field base 9) ]] || fail "a single-seed row has a std / a missing CKA is not empty"
grep -q '^| teacher | [0-9.]* | [0-9.]* | — | — | — | 1 |$' "$MD" || fail "teacher row: $(grep teacher "$MD")"

# Figures: well-formed SVG, heatmap cells = layers × (heads + 1), polylines per series.
count() { grep -o "$1" "$2" | wc -l; }
for f in atp_heatmap_teacher atp_heatmap_base accuracy_by_digits faithfulness_teacher faithfulness_base training_curves; do
    svg=$OUT/$f.svg
    [[ -s $svg ]] || fail "$f.svg missing"
    grep -q '<svg ' "$svg" && [[ $(tail -1 "$svg") == '</svg>' ]] || fail "$f.svg is not <svg ...>...</svg>"
    if command -v xmllint >/dev/null; then xmllint --noout "$svg" || fail "$f.svg is not well-formed XML"; fi
    grep -q "($f.svg)" "$OUT/report.md" || fail "report.md does not link $f.svg"
done
[[ $(count 'class="cell"' "$OUT/atp_heatmap_teacher.svg") == 10 ]] || fail "teacher heatmap: not 2 x (4 + 1) cells"
[[ $(count 'class="cell"' "$OUT/atp_heatmap_base.svg") == 3 ]] || fail "base heatmap: not 1 x (2 + 1) cells"
[[ $(count 'class="series"' "$OUT/faithfulness_teacher.svg") == 2 ]] || fail "faithfulness: not 2 curves"
grep -q 'CPR [0-9.]*, CMD [0-9.]*' "$OUT/faithfulness_teacher.svg" || fail "faithfulness title lacks CPR / CMD"
[[ $(count 'class="series"' "$OUT/training_curves.svg") == 12 ]] || fail "training curves: not teacher + base + 10"
with_digits=$(h5ls -r "$H5" | grep -c '^/runs/[a-z_]*/0/accuracy_by_digits')
[[ $(count 'class="series"' "$OUT/accuracy_by_digits.svg") == "$with_digits" ]] ||
    fail "accuracy by digits: $(count 'class="series"' "$OUT/accuracy_by_digits.svg") lines, $with_digits rows have data"
# Attention patterns (when the run recorded /attention): heads × Σ over prompts of (prompt tokens)² cells.
if h5ls "$H5/attention/teacher/patterns" >/dev/null 2>&1; then
    heads=$(h5ls "$H5/attention/teacher/patterns" | sed 's/.*{\([0-9]*\),.*/\1/')
    squares=$(h5dump -a /attention/teacher/patterns/tokens "$H5" |
              awk '/\\037/ { n = gsub(/\\037/, ""); s += (n + 1) ^ 2 } END { print s }')
    svg=$OUT/attention_teacher.svg
    [[ -s $svg ]] || fail "attention_teacher.svg missing"
    if command -v xmllint >/dev/null; then xmllint --noout "$svg" || fail "attention_teacher.svg is not well-formed"; fi
    [[ $(count 'class="cell"' "$svg") == $((heads * squares)) ]] ||
        fail "attention: $(count 'class="cell"' "$svg") cells, expected $heads heads x $squares"
    grep -q '(attention_teacher.svg)' "$OUT/report.md" || fail "report.md does not link the attention figure"
fi
grep -q '(comparison.csv)' "$OUT/report.md" || fail "report.md does not link the CSV"

# --out, --help, bad input.
"$CIRCD_REPORT" "$H5" --out "$TMP/elsewhere" >/dev/null 2>&1 && cmp -s "$CSV" "$TMP/elsewhere/comparison.csv" ||
    fail "--out DIR does not give the same table"
"$CIRCD_REPORT" --help | grep -q 'usage: circd-report' || fail "--help"
expect_exit2() {  # file, pattern of the message
    local rc=0
    "$CIRCD_REPORT" "$1" --out "$TMP/bad" >"$TMP/bad.log" 2>&1 || rc=$?
    [[ $rc == 2 ]] || fail "$1: exit $rc, expected 2: $(cat "$TMP/bad.log")"
    grep -q "$1" "$TMP/bad.log" && grep -q "$2" "$TMP/bad.log" || fail "$1: message: $(cat "$TMP/bad.log")"
}
expect_exit2 "$TMP/missing.h5" 'cannot read'
echo "not hdf5" >"$TMP/text.h5"
expect_exit2 "$TMP/text.h5" 'not an HDF5 file'
h5copy -i "$H5" -o "$TMP/foreign.h5" -s /atp -d /atp
expect_exit2 "$TMP/foreign.h5" 'not a circd results file'
[[ ! -e $TMP/bad ]] || fail "a failed report created its output directory"
rc=0; "$CIRCD_REPORT" >/dev/null 2>&1 || rc=$?
[[ $rc == 2 ]] || fail "no argument: exit $rc"
echo "cli_report: ok"
