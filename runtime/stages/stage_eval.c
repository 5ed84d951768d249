/* stage_eval.c — the evaluation of a trained model (teacher, student base): exact-match accuracy of greedy answers
 * on the whole ID and OOD test sets, overall and per operation, stored as attributes of
 * /runs/<row>/<seed>/metrics (id_accuracy, ood_accuracy, id_accuracy_add, ..., and the counts). */
#include <stdio.h>
#include <string.h>

#include "eval/accuracy.h"
#include "stages/stages.h"
#include "util/error.h"

#define COT_EVAL_EXAMPLES 100 /* per set */
#define COT_MAX_TOKENS 160    /* longest trace generated (capped by max_seq) */

#define DIGITS_EVAL_EXAMPLES 100 /* per operand length, for the accuracy-versus-length curve */

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
        size_t count = DIGITS_EVAL_EXAMPLES < d->id_test_size ? DIGITS_EVAL_EXAMPLES : (size_t)d->id_test_size;
        rc = arith_generate_distinct(&o, &r, count, NULL, &set);
        if (!rc) rc = eval_accuracy(m, &x->tok, format, &set, 0, x->spec->eval.batch,
                                    format->chain_of_thought ? COT_MAX_TOKENS : x->spec->eval.max_new_tokens, &c);
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
        memset(&sets[s], 0, sizeof sets[s]);
        rc = eval_accuracy(m, &x->tok, format, data[s], 0, x->spec->eval.batch, max_new, &sets[s]);
        snprintf(key, sizeof key, "%s_accuracy", set_names[s]);
        if (!rc) rc = put(x, path, key, accuracy_of(&sets[s], -1, 0));
        for (int op = 0; op < ARITH_OP_COUNT && !rc; op++) {
            snprintf(key, sizeof key, "%s_accuracy_%s", set_names[s], arith_op_name(op));
            rc = put(x, path, key, accuracy_of(&sets[s], op, 0));
        }
        snprintf(key, sizeof key, "%s_examples", set_names[s]);
        if (!rc) rc = put(x, path, key, (double)data[s]->count);
    }
    /* The per-length curve of direct answers (a trace model's curve would cost a trace per problem and length). */
    if (!rc && !format->chain_of_thought) rc = eval_by_digits(x, m, format, row, seed);
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
    if (rc) return rc;
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
            memset(&cot, 0, sizeof cot);
            rc = eval_accuracy(&m, &x->tok, &x->cot_format, data[s], COT_EVAL_EXAMPLES, x->spec->eval.batch,
                               COT_MAX_TOKENS, &cot);
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
