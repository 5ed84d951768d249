/* stage_eval.c — the evaluation of a trained model (teacher, student base): exact-match accuracy of greedy answers
 * on the whole ID and OOD test sets, overall and per operation, stored as attributes of /runs/<row>/<seed>/metrics
 * (id_accuracy, ood_accuracy, id_accuracy_add, ..., id_examples, id_correct, ...), with one row per example in
 * /runs/<row>/<seed>/examples_id and examples_ood. Every set is sharded over the ranks of the stage's
 * communicator: the batches one rank would decode are split into contiguous blocks, each rank decodes its own (the
 * same batches, so the same answers) and writes its rows of the example tables; the counts are summed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/arith_batch.h"
#include "eval/accuracy.h"
#include "sched/reduce.h"
#include "stages/stages.h"
#include "util/error.h"

#define COT_EVAL_EXAMPLES 100 /* per set */
#define COT_MAX_TOKENS 160    /* longest trace generated (capped by max_seq) */

#define DIGITS_EVAL_EXAMPLES 100 /* per operand length, for the accuracy-versus-length curve */
#define DIGITS_EVAL_COT_EXAMPLES 32 /* the same for chain-of-thought models (each answer is a long trace) */

/* Position in eval_accuracy's order (examples grouped by prompt length, arith_group_by_prompt_length) at which each
 * of its batches starts: starts[0..n_batches], with starts[n_batches] = n. order[n] receives the order. */
static int batch_starts(const struct experiment *x, const struct arith_format *format, const struct arith_dataset *set,
                        size_t n, int batch, size_t *order, size_t **starts, size_t *n_batches)
{
    struct arith_item *items = xmalloc((n ? n : 1) * sizeof *items);
    size_t *groups = xmalloc((n + 1) * sizeof *groups), n_groups = 0, count = 0;
    *starts = xmalloc((n + 1) * sizeof **starts);
    int rc = items && groups && *starts ? CIRCD_OK : CIRCD_ENOMEM;
    for (size_t i = 0; i < n && !rc; i++) rc = arith_dataset_item(set, i, -1, &items[i]);
    if (!rc) rc = arith_group_by_prompt_length(&x->tok, format, items, n, order, groups, &n_groups);
    for (size_t g = 0; g < n_groups && !rc; g++)
        for (size_t first = groups[g]; first < groups[g + 1]; first += (size_t)batch) (*starts)[count++] = first;
    if (!rc) (*starts)[count] = n;
    *n_batches = count;
    free(items);
    free(groups);
    return rc;
}

/* Accuracy counts of the first `limit` examples of set (0: all), sharded over x->comm: rank r decodes its contiguous
 * block of eval_accuracy's batches, as one rank would batch them (a view of those examples in evaluation order
 * regroups into the same batches); the counts are summed over the ranks (integers: exact in any order). With
 * rows_path, each rank writes its examples' rows of [example, operation, digits, correct] there (rows in evaluation
 * order). Every rank returns the same code. */
static int eval_sharded(struct experiment *x, struct llama_model *m, const struct arith_format *format,
                        const struct arith_dataset *set, size_t limit, int max_new, struct accuracy_counts *counts,
                        const char *rows_path)
{
    size_t n = limit && limit < set->count ? limit : set->count, n_batches = 0, lo = 0, hi = 0, *starts = NULL;
    size_t *order = xmalloc((n ? n : 1) * sizeof *order);
    int batch = x->spec->eval.batch;
    int rc = order ? batch_starts(x, format, set, n, batch, order, &starts, &n_batches) : CIRCD_ENOMEM;
    shard_range_comm(n_batches, x->comm, &lo, &hi);
    size_t first = rc ? 0 : starts[lo], mine = rc ? 0 : starts[hi] - first;
    struct arith_dataset view = *set;
    view.examples = xmalloc((mine ? mine : 1) * sizeof *view.examples);
    view.count = mine;
    unsigned char *correct = xcalloc(mine ? mine : 1, 1);
    float *rows = xmalloc((mine ? mine : 1) * 4 * sizeof *rows);
    if (!rc && (!view.examples || !correct || !rows)) rc = CIRCD_ENOMEM;
    for (size_t j = 0; j < mine && !rc; j++) view.examples[j] = set->examples[order[first + j]];
    memset(counts, 0, sizeof *counts);
    if (!rc && mine) rc = eval_accuracy_each(m, &x->tok, format, &view, 0, batch, max_new, counts, correct);
    if (!(rc = reduce_agree(rc, x->comm)))
        MPI_Allreduce(MPI_IN_PLACE, counts, (int)(sizeof *counts / sizeof(int)), MPI_INT, MPI_SUM, x->comm);
    if (!rc && rows_path && n) {
        for (size_t j = 0; j < mine; j++) {
            const struct arith_problem *p = &view.examples[j].clean;
            rows[4 * j] = (float)order[first + j];
            rows[4 * j + 1] = (float)p->op;
            rows[4 * j + 2] = (float)arith_digit_count(p->a > p->b ? p->a : p->b);
            rows[4 * j + 3] = correct[j];
        }
        uint64_t dims[2] = {n, 4};
        rc = results_write_f32_rows(&x->results, rows_path, 2, dims, first, mine, rows);
        if (!rc) rc = results_set_attr_str(&x->results, rows_path, "columns", "example (index in the set), operation "
                                           "(0 add, 1 sub), digits (longer operand), correct (exact match); rows in "
                                           "evaluation order (by prompt length)");
    }
    free(order);
    free(starts);
    free(view.examples);
    free(correct);
    free(rows);
    return rc;
}

/* Accuracy on fresh problems of each operand length 1..D (both operands that long): the curve of accuracy versus
 * digit count. The sets come from the data seed, so every model of the experiment sees the same problems; the
 * short ones necessarily overlap the training distribution (there are only 155 one-digit problems). */
static int eval_by_digits(struct experiment *x, struct llama_model *m, const struct arith_format *format,
                          const char *row, int seed)
{
    const struct spec_data *d = &x->spec->data;
    int D = d->train_digits.hi > d->ood_test_digits.hi ? d->train_digits.hi : d->ood_test_digits.hi, rc = CIRCD_OK;
    float rows[ARITH_MAX_DIGITS][4];
    for (int digits = 1; digits <= D && !rc; digits++) {
        struct arith_gen_options o = x->split_options.id_test;
        o.min_digits = o.max_digits = digits;
        o.cf_kinds = 0;
        struct rng r;
        rng_seed(&r, (uint64_t)d->seed * 1000003u + 0xd161u + (uint64_t)digits);
        struct arith_dataset set;
        memset(&set, 0, sizeof set);
        struct accuracy_counts c;
        memset(&c, 0, sizeof c);
        /* Small specs (smoke tests) get as many per length as their ID test set has. */
        size_t per_length = format->chain_of_thought ? DIGITS_EVAL_COT_EXAMPLES : DIGITS_EVAL_EXAMPLES;
        size_t count = per_length < (size_t)d->id_test_size ? per_length : (size_t)d->id_test_size;
        rc = reduce_agree(arith_generate_distinct(&o, &r, count, NULL, &set), x->comm);
        if (!rc) rc = eval_sharded(x, m, format, &set, 0,
                                   format->chain_of_thought ? COT_MAX_TOKENS : x->spec->eval.max_new_tokens, &c, NULL);
        arith_dataset_free(&set);
        rows[digits - 1][0] = (float)digits;
        rows[digits - 1][1] = (float)accuracy_of(&c, ARITH_ADD, 0);
        rows[digits - 1][2] = (float)accuracy_of(&c, ARITH_SUB, 0);
        rows[digits - 1][3] = (float)accuracy_of(&c, -1, 0);
    }
    char path[300];
    snprintf(path, sizeof path, "/runs/%s/%d/accuracy_by_digits", row, seed);
    uint64_t dims[2] = {(uint64_t)D, 4};
    if (!rc) rc = results_write_f32(&x->results, path, 2, dims, &rows[0][0]);
    if (!rc) rc = results_set_attr_str(&x->results, path, "columns", "digits, add, sub, all (exact-match accuracy)");
    return rc;
}

static int put(struct experiment *x, const char *path, const char *name, double v)
{
    return results_set_attr_f64(&x->results, path, name, v);
}

int eval_model_accuracy(struct experiment *x, struct llama_model *m, const struct arith_format *format,
                        const char *row, int seed, const char *label)
{
    char path[256], key[64];
    int rc = CIRCD_OK;
    if (m->config.vocab_size != x->tok.vocab_size)
        return err_set(CIRCD_EINPUT, "%s: vocab_size %d does not match the experiment's tokenizer (%d tokens)", row,
                       m->config.vocab_size, x->tok.vocab_size);
    struct accuracy_counts sets[2];
    const struct arith_dataset *data[2] = {&x->splits.id_test, &x->splits.ood_test};
    const char *set_names[2] = {"id", "ood"};
    int max_new = format->chain_of_thought ? COT_MAX_TOKENS : x->spec->eval.max_new_tokens;
    snprintf(path, sizeof path, "/runs/%s/%d/metrics", row, seed);
    for (int s = 0; s < 2 && !rc; s++) {
        char rows_path[300];
        snprintf(rows_path, sizeof rows_path, "/runs/%s/%d/examples_%s", row, seed, set_names[s]);
        rc = eval_sharded(x, m, format, data[s], 0, max_new, &sets[s], rows_path);
        snprintf(key, sizeof key, "%s_accuracy", set_names[s]);
        if (!rc) rc = put(x, path, key, accuracy_of(&sets[s], -1, 0));
        for (int op = 0; op < ARITH_OP_COUNT && !rc; op++) {
            snprintf(key, sizeof key, "%s_accuracy_%s", set_names[s], arith_op_name(op));
            rc = put(x, path, key, accuracy_of(&sets[s], op, 0));
        }
        snprintf(key, sizeof key, "%s_examples", set_names[s]);
        if (!rc) rc = put(x, path, key, (double)data[s]->count);
        long correct = 0; /* the gathered count: every example counted once over the ranks */
        for (int op = 0; op < ARITH_OP_COUNT; op++)
            for (int digits = 0; digits <= ARITH_MAX_DIGITS; digits++) correct += sets[s].correct[op][digits];
        snprintf(key, sizeof key, "%s_correct", set_names[s]);
        if (!rc) rc = put(x, path, key, (double)correct);
    }
    /* The per-length curve of direct answers (a trace model's curve would cost a trace per problem and length). */
    if (!rc) rc = eval_by_digits(x, m, format, row, seed);
    if (!rc && x->rank == 0)
        fprintf(stderr, "[%s] ID %.2f%% (add %.2f%%, sub %.2f%%)  OOD %.2f%% (add %.2f%%, sub %.2f%%)\n", label,
                100 * accuracy_of(&sets[0], -1, 0), 100 * accuracy_of(&sets[0], ARITH_ADD, 0),
                100 * accuracy_of(&sets[0], ARITH_SUB, 0), 100 * accuracy_of(&sets[1], -1, 0),
                100 * accuracy_of(&sets[1], ARITH_ADD, 0), 100 * accuracy_of(&sets[1], ARITH_SUB, 0));
    return rc;
}

int stage_eval(struct experiment *x, enum model_role role)
{
    char dir[4200], path[256], key[64], label[64];
    role_model_dir(x, role, dir, sizeof dir);
    struct llama_model m;
    int rc = model_load_hf(&m, dir);
    if (!rc && (rc = experiment_place_model(x, &m))) model_free(&m);
    if (rc) return reduce_agree(rc, x->comm);
    const struct arith_dataset *data[2] = {&x->splits.id_test, &x->splits.ood_test};
    const char *set_names[2] = {"id", "ood"};
    snprintf(path, sizeof path, "/runs/%s/%d/metrics", role_row(role), x->spec->seeds.items[0]);
    snprintf(label, sizeof label, "eval-%s", role_row(role));
    rc = eval_model_accuracy(x, &m, &x->format, role_row(role), x->spec->seeds.items[0], label);
    /* A teacher that learned the trace format: how often its traces end in the right answer (a subset: traces are
     * long to generate). */
    if (!rc && role == ROLE_TEACHER && x->spec->data.chain_of_thought) {
        for (int s = 0; s < 2 && !rc; s++) {
            struct accuracy_counts cot;
            rc = eval_sharded(x, &m, &x->cot_format, data[s], COT_EVAL_EXAMPLES, COT_MAX_TOKENS, &cot, NULL);
            snprintf(key, sizeof key, "cot_%s_accuracy", set_names[s]);
            if (!rc) rc = put(x, path, key, accuracy_of(&cot, -1, 0));
            if (!rc && x->rank == 0)
                fprintf(stderr, "[eval-teacher] chain of thought, %s: %.1f%% of %d\n", set_names[s],
                        100 * accuracy_of(&cot, -1, 0), COT_EVAL_EXAMPLES);
        }
    }
    if (!rc) rc = results_set_attr_str(&x->results, path, "model", dir);
    model_free(&m);
    return rc;
}
