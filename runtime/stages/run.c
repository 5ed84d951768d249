/* run.c — the experiment driver: each stage in order, skipped when results.h5 says it is done, begun and marked
 * done around its work (data flushed before the status) — the fixed stages, then distill-<run>-<seed> and
 * eval-<run>-<seed> for every method run and seed of the grid — and the comparison table of what has been
 * evaluated. */
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

/* What one stage of the grid runs: a fixed stage (role) or a method run's distill / eval (run, seed). */
struct stage_call {
    const struct stage *fixed;
    int run, seed, eval;
};

static int call(struct experiment *x, const struct stage_call *c)
{
    if (c->fixed) return c->fixed->run(x, c->fixed->role);
    return c->eval ? stage_distill_eval(x, c->run, c->seed) : stage_distill(x, c->run, c->seed);
}

static int run_one(struct experiment *x, const char *name, const struct stage_call *c, int size)
{
    char status[32];
    int rc = results_stage_status(&x->results, name, status, sizeof status);
    if (rc) return rc;
    if (strcmp(status, "done") == 0) {
        if (x->rank == 0) fprintf(stderr, "[%s] done in an earlier run: skipped\n", name);
        return CIRCD_OK;
    }
    if (x->rank == 0) fprintf(stderr, "[%s] %s\n", name, status[0] ? "continuing" : "starting");
    if ((rc = results_stage_begin(&x->results, name, size))) return rc;
    if ((rc = call(x, c))) {
        results_flush(&x->results);
        return rc;
    }
    return results_stage_done(&x->results, name);
}

int experiment_run(struct experiment *x)
{
    int size, rc = CIRCD_OK;
    MPI_Comm_size(x->comm, &size);
    for (size_t i = 0; i < sizeof stages / sizeof stages[0] && !rc; i++) {
        struct stage_call c = {&stages[i], 0, 0, 0};
        rc = run_one(x, stages[i].name, &c, size);
    }
    const struct spec_distill *d = &x->spec->distill;
    for (int r = 0; r < d->n_methods && !rc; r++)
        for (int s = 0; s < x->spec->seeds.n && !rc; s++)
            for (int e = 0; e < 2 && !rc; e++) {
                char name[96];
                int seed = x->spec->seeds.items[s];
                snprintf(name, sizeof name, "%s-%s-%d", e ? "eval" : "distill", d->methods[r].name, seed);
                struct stage_call c = {NULL, r, seed, e};
                rc = run_one(x, name, &c, size);
            }
    if (rc) return rc;
    return x->rank == 0 ? experiment_print_table(x, stdout) : CIRCD_OK;
}

/* Mean and sample standard deviation of attribute `key` of /runs/<row>/<seed>/metrics over the seeds that have it. */
static int stat(struct experiment *x, const char *row, const int *seeds, int n_seeds, const char *key, double *mean,
                double *sd)
{
    double sum = 0, sq = 0;
    int n = 0;
    for (int s = 0; s < n_seeds; s++) {
        char path[256];
        double v;
        snprintf(path, sizeof path, "/runs/%s/%d/metrics", row, seeds[s]);
        if (!results_exists(&x->results, path) || results_get_attr_f64(&x->results, path, key, &v) || isnan(v))
            continue;
        sum += v;
        sq += v * v;
        n++;
    }
    *mean = n ? sum / n : NAN;
    *sd = n > 1 ? sqrt(fmax(0, (sq - sum * sum / n) / (n - 1))) : NAN;
    return n;
}

static void cell(FILE *out, struct experiment *x, const char *row, const int *seeds, int n_seeds, const char *key,
                 double scale)
{
    double mean, sd;
    int n = stat(x, row, seeds, n_seeds, key, &mean, &sd);
    if (!n) fprintf(out, " — |");
    else if (n == 1) fprintf(out, " %.1f |", scale * mean);
    else fprintf(out, " %.1f ± %.1f |", scale * mean, scale * sd);
}

int experiment_print_table(struct experiment *x, FILE *out)
{
    static const struct { const char *key; double scale; } cols[] = {
        {"id_accuracy", 100}, {"ood_accuracy", 100}, {"id_accuracy_add", 100}, {"id_accuracy_sub", 100},
        {"ood_accuracy_add", 100}, {"ood_accuracy_sub", 100}, {"nfs", 100}, {"mean_cka", 100}, {"robustness", 100},
    };
    fprintf(out, "\n| model | ID acc %% | OOD acc %% | ID add | ID sub | OOD add | OOD sub | NFS %% | CKA %% | "
                 "robust %% |\n|---|---|---|---|---|---|---|---|---|---|\n");
    int first_seed = x->spec->seeds.items[0];
    static const enum model_role order[] = {ROLE_TEACHER, ROLE_STUDENT_BASE};
    for (size_t r = 0; r < sizeof order / sizeof order[0]; r++) {
        char path[256];
        snprintf(path, sizeof path, "/runs/%s/%d/metrics", role_row(order[r]), first_seed);
        if (!results_exists(&x->results, path)) continue;
        fprintf(out, "| %s |", role_row(order[r]));
        for (size_t k = 0; k < sizeof cols / sizeof cols[0]; k++)
            cell(out, x, role_row(order[r]), &first_seed, 1, cols[k].key, cols[k].scale);
        fprintf(out, "\n");
    }
    const struct spec_distill *d = &x->spec->distill;
    for (int m = 0; m < d->n_methods; m++) {
        double mean, sd;
        if (!stat(x, d->methods[m].name, x->spec->seeds.items, x->spec->seeds.n, "id_accuracy", &mean, &sd)) continue;
        fprintf(out, "| %s |", d->methods[m].name);
        for (size_t k = 0; k < sizeof cols / sizeof cols[0]; k++)
            cell(out, x, d->methods[m].name, x->spec->seeds.items, x->spec->seeds.n, cols[k].key, cols[k].scale);
        fprintf(out, "\n");
    }
    fprintf(out, "\n(ID: both operands %d-%d digits; OOD: %d-%d digits; exact match of greedy answers; mean ± sd over "
                 "%d seeds; NFS: faithfulness of the model's own %g%% circuit; CKA: teacher circuit vs its best "
                 "student counterparts; robust: interchange interventions agreeing with the teacher's; results in "
                 "%s/results.h5)\n",
            x->spec->data.id_test_digits.lo, x->spec->data.id_test_digits.hi, x->spec->data.ood_test_digits.lo,
            x->spec->data.ood_test_digits.hi, x->spec->seeds.n, x->spec->circuit.nfs_size, x->output);
    return CIRCD_OK;
}
