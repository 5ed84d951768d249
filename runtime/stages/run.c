/* run.c — the experiment driver: the spec's plan (plan/plan.h) run by the scheduler (sched/scheduler.h) on every
 * rank of the experiment's communicator once every stage still to run is known to be able to use its device, each
 * plan stage dispatched to its stage function on its device (stages/placement.h); the report stage (the comparison
 * table into results.h5 /tables/comparison and <output>/comparison.md); and the table printed on rank 0 at the end.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/atomic_file.h"
#include "plan/plan.h"
#include "sched/reduce.h"
#include "sched/scheduler.h"
#include "stages/stages.h"
#include "util/error.h"

static int stage_report(struct experiment *x);

/* "[stage] device cuda (FILE:LINE: devices.atp)": who asked for the stage's device, for messages. */
static void device_asker(const struct experiment *x, const struct plan_stage *s, char *buf, size_t cap)
{
    char origin[300];
    spec_device_origin(x->spec, s->device_rule, origin, sizeof origin);
    snprintf(buf, cap, "[%s] device %s (%s)", s->name, spec_device_names[s->device], origin);
}

static int run_stage(struct experiment *x, const struct plan_stage *s)
{
    enum model_role role = s->role == PLAN_ROLE_TEACHER ? ROLE_TEACHER : ROLE_STUDENT_BASE;
    char who[400];
    device_asker(x, s, who, sizeof who);
    /* The stage's models go where the plan says (experiment_place_model after each load); cpu stages stay put. */
    int rc = placement_open(&x->placement, s->device, s->device == SPEC_DEVICE_CUDA ? x->spec->precision
                                                                                   : SPEC_PRECISION_FP32,
                            x->local_rank, who);
    if (rc) return rc;
    switch (s->kind) {
    case PLAN_DATA: return stage_data(x);
    case PLAN_TRAIN: return stage_train(x, role);
    case PLAN_EVAL: return stage_eval(x, role);
    case PLAN_ATP: return stage_atp(x, role);
    case PLAN_PATCH: return stage_patch(x, role);
    case PLAN_CIRCUIT: return stage_circuit(x, role);
    case PLAN_DISTILL: return stage_distill(x, s->run, s->seed);
    case PLAN_DISTILL_EVAL: return stage_distill_eval(x, s->run, s->seed);
    case PLAN_REPORT: return stage_report(x);
    case PLAN_KIND_COUNT: break;
    }
    return err_set(CIRCD_EINTERNAL, "stage %s of unknown kind %d", s->name, (int)s->kind);
}

/* The comparison table of what results.h5 holds, printed on rank 0 from a read-only view of it (the experiment's
 * handle is collective over every rank, this print is not). */
static int print_final_table(struct experiment *x)
{
    int rc = results_close(&x->results);
    if (rc || x->rank != 0) return rc;
    char path[4200];
    snprintf(path, sizeof path, "%s/results.h5", x->output);
    if ((rc = results_open_readonly(&x->results, path, MPI_COMM_SELF))) return rc;
    rc = experiment_print_table(x, stdout);
    results_close(&x->results);
    return rc;
}

/* Before any stage runs: every stage still to run can use its device on every rank, else CIRCD_EINPUT everywhere
 * naming the first that cannot (and how many more). Collective over x->comm. */
static int check_devices(struct experiment *x, const struct plan *p)
{
    unsigned char *done = xcalloc((size_t)p->n_stages, 1);
    int rc = done ? sched_find_done(p, x->output, &x->results, done) : CIRCD_ENOMEM;
    int first = -1, more = 0;
    for (int i = 0; !rc && i < p->n_stages; i++)
        if (!done[i] && placement_unavailable(p->stages[i].device)) {
            if (first < 0) first = i;
            else more++;
        }
    if (first >= 0) {
        char who[400], others[64] = "";
        device_asker(x, &p->stages[first], who, sizeof who);
        if (more) snprintf(others, sizeof others, " (and %d more stage%s on that device)", more, more == 1 ? "" : "s");
        rc = err_set(CIRCD_EINPUT, "%s: %s%s", who, placement_unavailable(p->stages[first].device), others);
    }
    free(done);
    return reduce_agree(rc, x->comm);
}

int experiment_run(struct experiment *x)
{
    int size;
    MPI_Comm_size(x->comm, &size);
    if (x->rank == 0 && x->spec->parallel.ranks > 0 && x->spec->parallel.ranks != size)
        fprintf(stderr, "circd run: parallel.ranks is %d but the launcher started %d rank%s; planning for %d\n",
                x->spec->parallel.ranks, size, size == 1 ? "" : "s", size);
    struct plan p;
    int rc = plan_build(&p, x->spec, size);
    if (!rc) rc = check_devices(x, &p);
    if (!rc) rc = sched_run(x, &p, run_stage);
    plan_free(&p);
    if (rc) return rc;
    return print_final_table(x);
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

static const struct { const char *key, *label; double scale; } table_cols[] = {
    {"id_accuracy", "ID acc %", 100}, {"ood_accuracy", "OOD acc %", 100}, {"id_accuracy_add", "ID add", 100},
    {"id_accuracy_sub", "ID sub", 100}, {"ood_accuracy_add", "OOD add", 100}, {"ood_accuracy_sub", "OOD sub", 100},
    {"nfs", "NFS %", 100}, {"mean_cka", "CKA %", 100}, {"robustness", "robust %", 100},
};
#define TABLE_COLS ((int)(sizeof table_cols / sizeof table_cols[0]))

struct table_row {
    char name[32];
    double mean[TABLE_COLS], sd[TABLE_COLS]; /* scaled (percent); NaN where missing */
    int n[TABLE_COLS];                       /* seeds that have the value */
};

static void collect_row(struct experiment *x, struct table_row *row, const char *name, const int *seeds, int n_seeds)
{
    snprintf(row->name, sizeof row->name, "%s", name);
    for (int k = 0; k < TABLE_COLS; k++) {
        row->n[k] = stat(x, name, seeds, n_seeds, table_cols[k].key, &row->mean[k], &row->sd[k]);
        row->mean[k] *= table_cols[k].scale;
        row->sd[k] *= table_cols[k].scale;
    }
}

/* The rows evaluated so far: teacher and base (first seed), then every method run with any seed evaluated. */
static int collect_table(struct experiment *x, struct table_row *rows, int cap)
{
    int n = 0, first_seed = x->spec->seeds.items[0];
    static const enum model_role order[] = {ROLE_TEACHER, ROLE_STUDENT_BASE};
    for (size_t r = 0; r < sizeof order / sizeof order[0] && n < cap; r++) {
        char path[256];
        snprintf(path, sizeof path, "/runs/%s/%d/metrics", role_row(order[r]), first_seed);
        if (results_exists(&x->results, path)) collect_row(x, &rows[n++], role_row(order[r]), &first_seed, 1);
    }
    const struct spec_distill *d = &x->spec->distill;
    for (int m = 0; m < d->n_methods && n < cap; m++) {
        double mean, sd;
        if (stat(x, d->methods[m].name, x->spec->seeds.items, x->spec->seeds.n, "id_accuracy", &mean, &sd))
            collect_row(x, &rows[n++], d->methods[m].name, x->spec->seeds.items, x->spec->seeds.n);
    }
    return n;
}

/* where: the results file named in the footnote (NULL: none, as in the stored copies of the table). */
static void print_rows(struct experiment *x, const struct table_row *rows, int n, FILE *out, const char *where)
{
    fprintf(out, "\n| model |");
    for (int k = 0; k < TABLE_COLS; k++) fprintf(out, " %s |", table_cols[k].label);
    fprintf(out, "\n|---|");
    for (int k = 0; k < TABLE_COLS; k++) fprintf(out, "---|");
    fprintf(out, "\n");
    for (int r = 0; r < n; r++) {
        fprintf(out, "| %s |", rows[r].name);
        for (int k = 0; k < TABLE_COLS; k++) {
            if (!rows[r].n[k]) fprintf(out, " — |");
            else if (rows[r].n[k] == 1) fprintf(out, " %.1f |", rows[r].mean[k]);
            else fprintf(out, " %.1f ± %.1f |", rows[r].mean[k], rows[r].sd[k]);
        }
        fprintf(out, "\n");
    }
    fprintf(out, "\n(ID: both operands %d-%d digits; OOD: %d-%d digits; exact match of greedy answers; mean ± sd over "
                 "%d seeds; NFS: faithfulness of the model's own %g%% circuit; CKA: teacher circuit vs its best "
                 "student counterparts; robust: interchange interventions agreeing with the teacher's%s%s%s)\n",
            x->spec->data.id_test_digits.lo, x->spec->data.id_test_digits.hi, x->spec->data.ood_test_digits.lo,
            x->spec->data.ood_test_digits.hi, x->spec->seeds.n, x->spec->circuit.nfs_size,
            where ? "; results in " : "", where ? where : "", where ? "/results.h5" : "");
}

int experiment_print_table(struct experiment *x, FILE *out)
{
    struct table_row rows[2 + SPEC_MAX_LIST];
    print_rows(x, rows, collect_table(x, rows, 2 + SPEC_MAX_LIST), out, x->output);
    return CIRCD_OK;
}

/* The report stage: /tables/comparison [rows, columns, 2] (mean, sd in percent; NaN where missing) with the row
 * and column names and the Markdown table as attributes, the same table in <output>/comparison.md, and the
 * attention patterns of the top circuit heads (stage_attention.c). */
static int stage_report(struct experiment *x)
{
    struct table_row rows[2 + SPEC_MAX_LIST];
    int n = collect_table(x, rows, 2 + SPEC_MAX_LIST), rc = CIRCD_OK;
    char *markdown = NULL, names[(2 + SPEC_MAX_LIST) * 33] = "", columns[512] = "";
    size_t len = 0;
    FILE *mem = open_memstream(&markdown, &len);
    if (!mem) return err_set(CIRCD_ENOMEM, "report: cannot format the table");
    print_rows(x, rows, n, mem, NULL);
    fclose(mem);
    float *values = xcalloc((size_t)(n ? n : 1) * TABLE_COLS * 2, sizeof *values);
    if (!values) { free(markdown); return CIRCD_ENOMEM; }
    for (int r = 0; r < n; r++) {
        strcat(strcat(names, rows[r].name), "\n");
        for (int k = 0; k < TABLE_COLS; k++) {
            values[((size_t)r * TABLE_COLS + k) * 2] = rows[r].n[k] ? (float)rows[r].mean[k] : NAN;
            values[((size_t)r * TABLE_COLS + k) * 2 + 1] = rows[r].n[k] > 1 ? (float)rows[r].sd[k] : NAN;
        }
    }
    for (int k = 0; k < TABLE_COLS; k++) strcat(strcat(columns, table_cols[k].key), "\n");
    uint64_t dims[3] = {(uint64_t)n, TABLE_COLS, 2};
    if (n) rc = results_write_f32(&x->results, "/tables/comparison", 3, dims, values);
    if (!rc) rc = results_set_attr_str(&x->results, "/tables/comparison", "rows", names);
    if (!rc) rc = results_set_attr_str(&x->results, "/tables/comparison", "columns", columns);
    if (!rc) rc = results_set_attr_str(&x->results, "/tables/comparison", "markdown", markdown);
    if (!rc && x->rank == 0) {
        char path[4200];
        struct atomic_file af;
        snprintf(path, sizeof path, "%s/comparison.md", x->output);
        if (!(rc = atomic_file_open(&af, path))) {
            fputs(markdown + 1, af.fp);
            rc = atomic_file_commit(&af);
        }
    }
    if (!rc) rc = stage_attention(x);
    free(values);
    free(markdown);
    return rc;
}
