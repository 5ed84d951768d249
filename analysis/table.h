/* table.h — circd-report's comparison table: the rows of an experiment (student base, the spec's distillation runs
 * in method order — sft, kd, cot, cd_a, cd_b — then their subnetwork variants, then the teacher), and per row the
 * mean and sample standard deviation over seeds of /runs/<row>/<seed>/metrics (ID and OOD accuracy, NFS, CKA to
 * the teacher circuit, interventional robustness; fractions shown as percent), written as Markdown and CSV. */
#ifndef CIRCD_ANALYSIS_TABLE_H
#define CIRCD_ANALYSIS_TABLE_H

#include <stdio.h>

#include "io/results.h"
#include "spec/spec.h"

#define REPORT_MAX_ROWS (2 + SPEC_MAX_LIST)
#define REPORT_COLUMNS 5

struct report_row {
    char name[32];
    int n;                          /* seeds whose metrics exist */
    double mean[REPORT_COLUMNS];    /* percent; NaN where no seed has the value */
    double sd[REPORT_COLUMNS];      /* sample standard deviation; NaN with fewer than 2 values */
};

struct report_table {
    struct report_row rows[REPORT_MAX_ROWS];
    int n_rows;
};

/* The metrics attribute behind each column ("id_accuracy", ...) and its Markdown header ("ID acc %", ...). */
extern const char *const report_column_keys[REPORT_COLUMNS];
extern const char *const report_column_labels[REPORT_COLUMNS];

/* The table's row names in report order, from the spec: "base", the method runs, "teacher". Returns the count. */
int report_row_names(const struct experiment_spec *spec, char (*names)[32], int cap);
/* Fills the table from results (every row of report_row_names, over every seed of the spec). Rows with no
 * metrics at all are kept with n = 0 (shown as "—"). */
int report_table_collect(struct results_file *r, const struct experiment_spec *spec, struct report_table *t);
void report_table_markdown(const struct report_table *t, FILE *out);
void report_table_csv(const struct report_table *t, FILE *out);

#endif
