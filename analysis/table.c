/* table.c — the comparison table of table.h: row order from the spec, statistics over seeds, Markdown and CSV. */
#include "analysis/table.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "util/error.h"

const char *const report_column_keys[REPORT_COLUMNS] = {"id_accuracy", "ood_accuracy", "nfs", "mean_cka",
                                                        "robustness"};
const char *const report_column_labels[REPORT_COLUMNS] = {"ID acc %", "OOD acc %", "NFS %", "CKA to teacher %",
                                                          "robustness %"};
static const char *const csv_column_names[REPORT_COLUMNS] = {"id_acc", "ood_acc", "nfs", "cka", "robustness"};

int report_row_names(const struct experiment_spec *spec, char (*names)[32], int cap)
{
    int n = 0;
    if (n < cap) snprintf(names[n++], 32, "base");
    /* plain methods first, then the subnetwork variants; each in the method enum's order */
    for (int subnet = 0; subnet <= 1; subnet++)
        for (int method = 0; method < SPEC_METHOD_COUNT; method++)
            for (int m = 0; m < spec->distill.n_methods && n < cap; m++) {
                const struct spec_method_run *run = &spec->distill.methods[m];
                if ((int)run->method == method && run->subnetwork == subnet) snprintf(names[n++], 32, "%s", run->name);
            }
    if (n < cap) snprintf(names[n++], 32, "teacher");
    return n;
}

int report_table_collect(struct results_file *r, const struct experiment_spec *spec, struct report_table *t)
{
    char names[REPORT_MAX_ROWS][32];
    t->n_rows = report_row_names(spec, names, REPORT_MAX_ROWS);
    for (int i = 0; i < t->n_rows; i++) {
        struct report_row *row = &t->rows[i];
        double values[REPORT_COLUMNS][SPEC_MAX_LIST];
        int count[REPORT_COLUMNS] = {0};
        snprintf(row->name, sizeof row->name, "%s", names[i]);
        row->n = 0;
        for (int s = 0; s < spec->seeds.n; s++) {
            char path[128];
            snprintf(path, sizeof path, "/runs/%s/%d/metrics", row->name, spec->seeds.items[s]);
            if (!results_exists(r, path)) continue;
            row->n++;
            for (int k = 0; k < REPORT_COLUMNS; k++) {
                double v;
                if (results_get_attr_f64(r, path, report_column_keys[k], &v) == 0 && isfinite(v))
                    values[k][count[k]++] = 100 * v;
            }
        }
        err_clear();  /* a missing attribute is a missing value, not an error */
        for (int k = 0; k < REPORT_COLUMNS; k++) {
            double sum = 0, sq = 0;
            for (int j = 0; j < count[k]; j++) sum += values[k][j];
            double mean = count[k] ? sum / count[k] : NAN;
            for (int j = 0; j < count[k]; j++) sq += (values[k][j] - mean) * (values[k][j] - mean);
            row->mean[k] = mean;
            row->sd[k] = count[k] > 1 ? sqrt(sq / (count[k] - 1)) : NAN;
        }
    }
    return CIRCD_OK;
}

void report_table_markdown(const struct report_table *t, FILE *out)
{
    fputs("| model |", out);
    for (int k = 0; k < REPORT_COLUMNS; k++) fprintf(out, " %s |", report_column_labels[k]);
    fputs(" n |\n|---|", out);
    for (int k = 0; k < REPORT_COLUMNS; k++) fputs("---:|", out);
    fputs("---:|\n", out);
    for (int i = 0; i < t->n_rows; i++) {
        const struct report_row *row = &t->rows[i];
        fprintf(out, "| %s |", row->name);
        for (int k = 0; k < REPORT_COLUMNS; k++) {
            if (isnan(row->mean[k])) fputs(" — |", out);
            else if (isnan(row->sd[k])) fprintf(out, " %.1f |", row->mean[k]);
            else fprintf(out, " %.1f ± %.1f |", row->mean[k], row->sd[k]);
        }
        fprintf(out, " %d |\n", row->n);
    }
}

static void csv_number(FILE *out, double v)
{
    if (isnan(v)) fputc(',', out);
    else fprintf(out, ",%.6g", v);
}

void report_table_csv(const struct report_table *t, FILE *out)
{
    fputs("model", out);
    for (int k = 0; k < REPORT_COLUMNS; k++) fprintf(out, ",%s_mean,%s_std", csv_column_names[k], csv_column_names[k]);
    fputs(",n\n", out);
    for (int i = 0; i < t->n_rows; i++) {
        const struct report_row *row = &t->rows[i];
        fputs(row->name, out);
        for (int k = 0; k < REPORT_COLUMNS; k++) {
            csv_number(out, row->mean[k]);
            csv_number(out, row->sd[k]);
        }
        fprintf(out, ",%d\n", row->n);
    }
}
