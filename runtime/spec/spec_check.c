/* spec_check.c — the checks that involve more than one key, run after decoding: architectures (head counts and
 * widths), which operand lengths each stage sees, counterfactual kinds against the lengths they need, schedules,
 * per-length weights, circuit sizes, distillation weights, the pipeline layout and the devices (spec_devices.c).
 * Also fills the derived values (output, n_kv_heads, head_dim, d_ff, per-run loss weights). Each error points at
 * the key that is wrong, or at its nearest ancestor in the file when the key was left to its default. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec/spec_internal.h"
#include "util/error.h"

static int digits_within(struct spec_digits inner, struct spec_digits outer)
{
    return inner.lo >= outer.lo && inner.hi <= outer.hi;
}

static int digits_overlap(struct spec_digits a, struct spec_digits b) { return a.lo <= b.hi && b.lo <= a.hi; }

static const char *digits_text(struct spec_digits d, char *buf, size_t size)
{
    if (d.lo == d.hi) snprintf(buf, size, "%d", d.lo);
    else snprintf(buf, size, "[%d, %d]", d.lo, d.hi);
    return buf;
}

static void check_arch(struct spec_ctx *c, struct spec_model *m, const char *who)
{
    if (m->from_checkpoint) return;
    struct spec_arch *a = &m->arch;
    char p[96];
    if (a->d_model <= 0 || a->n_heads <= 0 || a->n_layers <= 0) return; /* missing or invalid: already reported */
    if (a->n_kv_heads == 0) a->n_kv_heads = a->n_heads;
    else if (a->n_heads % a->n_kv_heads) {
        snprintf(p, sizeof p, "models.%s.arch.n_kv_heads", who);
        spec_err_path(c, SPEC_ERR_INCONSISTENT, p, "%s: found %d, which does not divide n_heads = %d, expected a "
                      "divisor of n_heads (each key/value head serves the same number of query heads)", p,
                      a->n_kv_heads, a->n_heads);
        return;
    }
    if (a->head_dim == 0) {
        if (a->d_model % a->n_heads) {
            snprintf(p, sizeof p, "models.%s.arch.n_heads", who);
            spec_err_path(c, SPEC_ERR_INCONSISTENT, p, "%s: found %d, which does not divide d_model = %d, expected "
                          "a divisor of d_model or an explicit head_dim", p, a->n_heads, a->d_model);
            return;
        }
        a->head_dim = a->d_model / a->n_heads;
        snprintf(p, sizeof p, "models.%s.arch", who);
        if (a->head_dim % 2)
            spec_err_path(c, SPEC_ERR_INCONSISTENT, p, "%s: found head_dim = d_model / n_heads = %d, which is odd, "
                          "expected an even head width (RoPE rotates pairs): change n_heads or set head_dim", p,
                          a->head_dim);
    } else if (a->head_dim % 2) {
        snprintf(p, sizeof p, "models.%s.arch.head_dim", who);
        spec_err_path(c, SPEC_ERR_INCONSISTENT, p, "%s: found %d, expected an even head width (RoPE rotates pairs)",
                      p, a->head_dim);
    }
    if (a->d_ff == 0) a->d_ff = a->d_model > (1 << 18) ? 1 << 20 : 4 * a->d_model;
    if ((long long)a->n_heads * a->head_dim > 65536) {
        snprintf(p, sizeof p, "models.%s.arch.n_heads", who);
        spec_err_path(c, SPEC_ERR_INCONSISTENT, p, "%s: found n_heads * head_dim = %lld, expected at most 65536", p,
                      (long long)a->n_heads * a->head_dim);
    }
}

static void check_lengths(struct spec_ctx *c, struct experiment_spec *s)
{
    struct spec_data *d = &s->data;
    char a[32], b[32];
    if (!s->teacher.from_checkpoint) {
        if (!digits_within(d->ood_test_digits, d->train_digits))
            spec_err_path(c, SPEC_ERR_INCONSISTENT, "data.ood_test_digits", "data.ood_test_digits: found %s, which "
                          "the teacher never trains on (data.train_digits = %s), expected lengths inside "
                          "train_digits: the teacher must master what the student is tested on",
                          digits_text(d->ood_test_digits, a, sizeof a), digits_text(d->train_digits, b, sizeof b));
        if (!digits_within(d->id_test_digits, d->train_digits))
            spec_err_path(c, SPEC_ERR_INCONSISTENT, "data.id_test_digits", "data.id_test_digits: found %s, which "
                          "the teacher never trains on (data.train_digits = %s), expected lengths inside "
                          "train_digits", digits_text(d->id_test_digits, a, sizeof a),
                          digits_text(d->train_digits, b, sizeof b));
    }
    if (!digits_within(d->id_test_digits, d->student_train_digits))
        spec_err_path(c, SPEC_ERR_INCONSISTENT, "data.id_test_digits", "data.id_test_digits: found %s, outside "
                      "data.student_train_digits = %s, expected in-distribution lengths inside the students' "
                      "training lengths", digits_text(d->id_test_digits, a, sizeof a),
                      digits_text(d->student_train_digits, b, sizeof b));
    if (digits_overlap(d->student_train_digits, d->ood_test_digits))
        spec_err_path(c, SPEC_ERR_INCONSISTENT, "data.student_train_digits", "data.student_train_digits: found %s, "
                      "which overlaps data.ood_test_digits = %s, expected the OOD lengths to stay out of every "
                      "student-facing training set", digits_text(d->student_train_digits, a, sizeof a),
                      digits_text(d->ood_test_digits, b, sizeof b));
    /* tens_* partners change the tens digit: they need operands of at least two digits. */
    unsigned tens = 1u << SPEC_CF_TENS_OP1 | 1u << SPEC_CF_TENS_OP2 | 1u << SPEC_CF_TENS_CARRY;
    if ((d->atp_counterfactuals & tens) && d->atp_digits.lo < 2)
        spec_err_path(c, SPEC_ERR_INCONSISTENT, "data.atp_counterfactuals", "data.atp_counterfactuals: found a "
                      "tens_* kind with data.atp_digits starting at 1 digit, expected atp_digits >= 2 for tens_* "
                      "counterfactuals (a 1-digit operand has no tens digit)");
    if ((d->eval_counterfactuals & tens) && d->id_test_digits.lo < 2)
        spec_err_path(c, SPEC_ERR_INCONSISTENT, "data.eval_counterfactuals", "data.eval_counterfactuals: found a "
                      "tens_* kind with data.id_test_digits starting at 1 digit, expected id_test_digits >= 2 for "
                      "tens_* counterfactuals (a 1-digit operand has no tens digit)");
    if (d->chain_of_thought && d->cot_fraction <= 0)
        spec_err_path(c, SPEC_ERR_INCONSISTENT, "data.cot_fraction", "data.cot_fraction: found 0 with "
                      "chain_of_thought true, expected a positive fraction of chain-of-thought examples");
    /* Greedy decoding must have room for the longest answer (one more digit than the operands) and its end. */
    if (d->tokenizer == SPEC_TOKENIZER_DIGIT) {
        int longest = d->train_digits.hi;
        if (d->ood_test_digits.hi > longest) longest = d->ood_test_digits.hi;
        if (d->id_test_digits.hi > longest) longest = d->id_test_digits.hi;
        if (s->eval.max_new_tokens < longest + 2)
            spec_err_path(c, SPEC_ERR_INCONSISTENT, "eval.max_new_tokens", "eval.max_new_tokens: found %d, expected "
                          "at least %d for %d-digit operands (answer digits, a possible carry digit, the end token)",
                          s->eval.max_new_tokens, longest + 2, longest);
    }
}

static void check_train(struct spec_ctx *c, struct spec_train *t, const char *name, struct spec_digits range,
                        const char *range_key)
{
    char p[96];
    if (t->warmup_steps >= t->steps && t->warmup_steps > 0) {
        snprintf(p, sizeof p, "training.%s.warmup_steps", name);
        spec_err_path(c, SPEC_ERR_INCONSISTENT, p, "%s: found %d with steps = %d, expected fewer warm-up steps than "
                      "steps", p, t->warmup_steps, t->steps);
    }
    int width = range.hi - range.lo + 1;
    snprintf(p, sizeof p, "training.%s.length_weights", name);
    if (t->length_weights.n && t->length_weights.n != width)
        spec_err_path(c, SPEC_ERR_INCONSISTENT, p, "%s: found %d weight%s, expected %d: one per operand length %d..%d "
                      "of data.%s", p, t->length_weights.n, t->length_weights.n == 1 ? "" : "s", width, range.lo,
                      range.hi, range_key);
    double sum = 0;
    for (int i = 0; i < t->length_weights.n; i++) sum += t->length_weights.items[i];
    if (t->length_weights.n && !(sum > 0))
        spec_err_path(c, SPEC_ERR_INCONSISTENT, p, "%s: found only zero weights, expected at least one positive", p);
}

void spec_resolve_weights(struct spec_distill *d)
{
    for (int i = 0; i < d->n_methods; i++) {
        struct spec_method_run *r = &d->methods[i];
        int uses_kd = r->method == SPEC_METHOD_KD || r->method == SPEC_METHOD_CD_A || r->method == SPEC_METHOD_CD_B;
        int uses_align = r->method == SPEC_METHOD_CD_A || r->method == SPEC_METHOD_CD_B;
        if (isnan(r->lambda_task)) r->lambda_task = d->lambda_task;
        if (isnan(r->lambda_kd) || !uses_kd) r->lambda_kd = uses_kd ? d->lambda_kd : 0;
        if (isnan(r->lambda_align) || !uses_align) r->lambda_align = uses_align ? d->lambda_align : 0;
    }
}

static void check_distill(struct spec_ctx *c, struct experiment_spec *s)
{
    struct spec_distill *d = &s->distill;
    spec_resolve_weights(d);
    for (int i = 0; i < d->n_methods; i++) {
        struct spec_method_run *r = &d->methods[i];
        int uses_kd = r->method == SPEC_METHOD_KD || r->method == SPEC_METHOD_CD_A || r->method == SPEC_METHOD_CD_B;
        int uses_align = r->method == SPEC_METHOD_CD_A || r->method == SPEC_METHOD_CD_B;
        if (!(r->lambda_task > 0) && !(r->lambda_kd > 0) && !(r->lambda_align > 0))
            spec_err_path(c, SPEC_ERR_INCONSISTENT, "distill.methods", "distill.methods: found run %s with every "
                          "loss weight 0, expected a positive lambda_task%s%s", r->name, uses_kd ? ", lambda_kd" : "",
                          uses_align ? " or lambda_align" : "");
        if (r->method == SPEC_METHOD_COT && !s->teacher.from_checkpoint && !s->data.chain_of_thought)
            spec_err_path(c, SPEC_ERR_INCONSISTENT, "data.chain_of_thought", "data.chain_of_thought: found false "
                          "while distill.methods has %s, expected true: the teacher must learn the chain-of-thought "
                          "format to generate the traces cot distils", r->name);
    }
    const struct spec_floats *z = &s->circuit.sizes;
    if (z->n == 0)
        spec_err_path(c, SPEC_ERR_RANGE, "circuit.sizes", "circuit.sizes: found an empty list, expected at least one "
                      "circuit size in percent");
    for (int i = 1; i < z->n; i++)
        if (!(z->items[i] > z->items[i - 1])) {
            spec_err_path(c, SPEC_ERR_INCONSISTENT, "circuit.sizes", "circuit.sizes: found %g after %g, expected "
                          "strictly increasing sizes", z->items[i], z->items[i - 1]);
            break;
        }
}

static void check_seeds_and_layout(struct spec_ctx *c, struct experiment_spec *s)
{
    const struct ynode *seeds = ytree_find(c->root, "seeds");
    for (int i = 1; i < s->seeds.n; i++)
        for (int j = 0; j < i; j++)
            if (s->seeds.items[i] == s->seeds.items[j]) {
                const struct ynode *at = seeds && seeds->kind == YN_SEQ && i < seeds->n ? seeds->child[i] : seeds;
                spec_err(c, SPEC_ERR_DUPLICATE, at, "seeds[%d]: found seed %d a second time, expected distinct "
                         "seeds", i, s->seeds.items[i]);
                break;
            }
    int layers = s->teacher.from_checkpoint ? s->teacher.config.n_layers : s->teacher.arch.n_layers;
    int stages = s->parallel.teacher_pipeline_stages;
    if (layers > 0 && stages > layers)
        spec_err_path(c, SPEC_ERR_INCONSISTENT, "parallel.teacher_pipeline_stages", "parallel.teacher_pipeline_"
                      "stages: found %d, expected at most the teacher's %d layers", stages, layers);
    if (s->parallel.ranks > 0 && stages > s->parallel.ranks)
        spec_err_path(c, SPEC_ERR_INCONSISTENT, "parallel.teacher_pipeline_stages", "parallel.teacher_pipeline_"
                      "stages: found %d, expected at most parallel.ranks = %d", stages, s->parallel.ranks);
    int replicas = s->parallel.data_parallel_ranks;
    if (replicas > 1 && stages > 1)
        spec_err_path(c, SPEC_ERR_INCONSISTENT, "parallel.data_parallel_ranks", "parallel.data_parallel_ranks: found "
                      "%d with teacher_pipeline_stages %d, expected one of the two to be 1", replicas, stages);
    if (replicas > s->training.distill.batch)
        spec_err_path(c, SPEC_ERR_INCONSISTENT, "parallel.data_parallel_ranks", "parallel.data_parallel_ranks: found "
                      "%d, expected at most training.distill.batch = %d (every rank takes rows of each batch)",
                      replicas, s->training.distill.batch);
    if (s->parallel.ranks > 0 && replicas > s->parallel.ranks)
        spec_err_path(c, SPEC_ERR_INCONSISTENT, "parallel.data_parallel_ranks", "parallel.data_parallel_ranks: found "
                      "%d, expected at most parallel.ranks = %d", replicas, s->parallel.ranks);
}

void spec_check(struct spec_ctx *c, struct experiment_spec *s)
{
    if (!s->output && s->name) {
        size_t n = strlen(s->name) + 6;
        if ((s->output = malloc(n))) snprintf(s->output, n, "runs/%s", s->name);
        else c->oom = 1;
    }
    check_arch(c, &s->teacher, "teacher");
    check_arch(c, &s->student, "student");
    check_lengths(c, s);
    check_train(c, &s->training.teacher, "teacher", s->data.train_digits, "train_digits");
    check_train(c, &s->training.student_base, "student_base", s->data.student_train_digits, "student_train_digits");
    check_train(c, &s->training.distill, "distill", s->data.student_train_digits, "student_train_digits");
    check_distill(c, s);
    check_seeds_and_layout(c, s);
    spec_check_devices(c, s);
}
