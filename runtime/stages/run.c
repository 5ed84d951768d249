/* run.c — the experiment driver: each stage in order, skipped when results.h5 says it is done, begun and marked
 * done around its work (data flushed before the status), then the comparison table of what has been evaluated. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "stages/stages.h"
#include "util/error.h"

struct stage {
    const char *name;
    int (*run)(struct experiment *x, enum model_role role);
    enum model_role role;
};

static int run_data(struct experiment *x, enum model_role role) { (void)role; return stage_data(x); }

static const struct stage stages[] = {
    {"data", run_data, ROLE_TEACHER},
    {"train-teacher", stage_train, ROLE_TEACHER},
    {"eval-teacher", stage_eval, ROLE_TEACHER},
    {"train-student-base", stage_train, ROLE_STUDENT_BASE},
    {"eval-student-base", stage_eval, ROLE_STUDENT_BASE},
    {"atp-teacher", stage_atp, ROLE_TEACHER},
    {"atp-student-base", stage_atp, ROLE_STUDENT_BASE},
    {"circuit-teacher", stage_circuit, ROLE_TEACHER},
    {"circuit-student-base", stage_circuit, ROLE_STUDENT_BASE},
};

int experiment_run(struct experiment *x)
{
    int size;
    MPI_Comm_size(x->comm, &size);
    for (size_t i = 0; i < sizeof stages / sizeof stages[0]; i++) {
        const struct stage *s = &stages[i];
        char status[32];
        int rc = results_stage_status(&x->results, s->name, status, sizeof status);
        if (rc) return rc;
        if (strcmp(status, "done") == 0) {
            if (x->rank == 0) fprintf(stderr, "[%s] done in an earlier run: skipped\n", s->name);
            continue;
        }
        if (x->rank == 0) fprintf(stderr, "[%s] %s\n", s->name, status[0] ? "continuing" : "starting");
        if ((rc = results_stage_begin(&x->results, s->name, size))) return rc;
        rc = s->run(x, s->role);
        if (rc) {
            results_flush(&x->results);
            return rc;
        }
        if ((rc = results_stage_done(&x->results, s->name))) return rc;
    }
    return x->rank == 0 ? experiment_print_table(x, stdout) : CIRCD_OK;
}

static void cell(FILE *out, double v) { isnan(v) ? fprintf(out, " — |") : fprintf(out, " %.1f |", 100 * v); }

int experiment_print_table(struct experiment *x, FILE *out)
{
    static const char *const keys[] = {"id_accuracy", "ood_accuracy", "id_accuracy_add", "id_accuracy_sub",
                                       "ood_accuracy_add", "ood_accuracy_sub"};
    fprintf(out, "\n| model | ID acc %% | OOD acc %% | ID add | ID sub | OOD add | OOD sub |\n"
                 "|---|---|---|---|---|---|---|\n");
    static const enum model_role order[] = {ROLE_STUDENT_BASE, ROLE_TEACHER};
    for (size_t r = 0; r < sizeof order / sizeof order[0]; r++) {
        char path[256];
        snprintf(path, sizeof path, "/runs/%s/%d/metrics", role_row(order[r]), x->spec->seeds.items[0]);
        if (!results_exists(&x->results, path)) continue;
        fprintf(out, "| %s |", role_row(order[r]));
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
            double v = NAN;
            if (results_get_attr_f64(&x->results, path, keys[k], &v)) v = NAN;
            cell(out, v);
        }
        fprintf(out, "\n");
    }
    fprintf(out, "\n(ID: both operands %d-%d digits; OOD: %d-%d digits; exact match of greedy answers; "
                 "results in %s/results.h5)\n",
            x->spec->data.id_test_digits.lo, x->spec->data.id_test_digits.hi, x->spec->data.ood_test_digits.lo,
            x->spec->data.ood_test_digits.hi, x->output);
    return CIRCD_OK;
}
