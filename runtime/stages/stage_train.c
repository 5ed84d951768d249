/* stage_train.c — the `train-teacher` and `train-student-base` stages: a model of the spec's architecture for the
 * experiment's tokenizer, trained from scratch on its role's stream (the teacher on every length, the student base
 * on the student-facing lengths only), with periodic accuracy on held-out ID/OOD subsets, checkpoints under
 * <output>/checkpoints, the final weights as a Hugging Face directory under <output>/models/<role>, and the loss and
 * accuracy-versus-time curves in results.h5 under /runs/<row>/train. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/accuracy.h"
#include "stages/stage_source.h"
#include "stages/stages.h"
#include "io/atomic_file.h"
#include "train/trainer.h"
#include "data/tokenizer_files.h"
#include "util/error.h"

#define CURVE_EVAL_EXAMPLES 200 /* per set, for the accuracy-versus-time curve */

struct accuracy_curve {
    struct experiment *x;
    const char *name;
    int batch, max_new;
    float *rows; /* [n, 4]: step, seconds, ID accuracy, OOD accuracy */
    int n, cap;
};

static int record_accuracy(void *ctx, struct llama_model *m, int64_t step, double elapsed)
{
    struct accuracy_curve *c = ctx;
    struct accuracy_counts id, ood;
    memset(&id, 0, sizeof id);
    memset(&ood, 0, sizeof ood);
    int rc = eval_accuracy(m, &c->x->tok, &c->x->format, &c->x->splits.id_test, CURVE_EVAL_EXAMPLES, c->batch,
                           c->max_new, &id);
    if (!rc) rc = eval_accuracy(m, &c->x->tok, &c->x->format, &c->x->splits.ood_test, CURVE_EVAL_EXAMPLES, c->batch,
                                c->max_new, &ood);
    if (rc) return rc;
    if (c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 32;
        float *grown = realloc(c->rows, (size_t)cap * 4 * sizeof *grown);
        if (!grown) return err_set(CIRCD_ENOMEM, "out of memory");
        c->rows = grown;
        c->cap = cap;
    }
    float *r = c->rows + (size_t)c->n++ * 4;
    r[0] = (float)step;
    r[1] = (float)elapsed;
    r[2] = (float)accuracy_of(&id, -1, 0);
    r[3] = (float)accuracy_of(&ood, -1, 0);
    if (c->x->rank == 0)
        fprintf(stderr, "[%s] eval at step %lld (%.0fs): ID %.1f%%  OOD %.1f%%  (%d held-out problems each)\n",
                c->name, (long long)step, elapsed, 100 * r[2], 100 * r[3], CURVE_EVAL_EXAMPLES);
    return CIRCD_OK;
}

#define ACCURACY_MAGIC "circd-accuracy 1\n"

/* train_extra_fn: the accuracy curve beside the checkpoint, so a resumed run keeps the points before it. */
static int accuracy_extra(void *ctx, const char *path, int save)
{
    struct accuracy_curve *c = ctx;
    if (save) {
        struct atomic_file af;
        int rc = atomic_file_open(&af, path);
        if (rc) return rc;
        int32_t n = c->n;
        fputs(ACCURACY_MAGIC, af.fp);
        fwrite(&n, sizeof n, 1, af.fp);
        if (n) fwrite(c->rows, sizeof *c->rows, (size_t)n * 4, af.fp);
        return atomic_file_commit(&af);
    }
    FILE *fp = fopen(path, "rb");
    if (!fp) return CIRCD_OK; /* a checkpoint from before the curve was kept: it starts afresh */
    char magic[sizeof ACCURACY_MAGIC] = "";
    int32_t n = -1;
    int ok = fread(magic, 1, strlen(ACCURACY_MAGIC), fp) == strlen(ACCURACY_MAGIC) &&
             strcmp(magic, ACCURACY_MAGIC) == 0 && fread(&n, sizeof n, 1, fp) == 1 && n >= 0 && n < (1 << 24);
    float *rows = ok ? malloc((size_t)(n ? n : 1) * 4 * sizeof *rows) : NULL;
    ok = ok && rows && fread(rows, sizeof *rows, (size_t)n * 4, fp) == (size_t)n * 4;
    fclose(fp);
    if (!ok) { free(rows); return err_set(CIRCD_EINPUT, "%s: not a circd accuracy curve (or truncated)", path); }
    free(c->rows);
    c->rows = rows;
    c->n = c->cap = n;
    return CIRCD_OK;
}

static enum lr_shape lr_shape_of(enum spec_schedule s)
{
    return s == SPEC_SCHEDULE_CONSTANT ? LR_CONSTANT
         : s == SPEC_SCHEDULE_CONSTANT_THEN_DECAY ? LR_CONSTANT_THEN_DECAY : LR_WARMUP_COSINE;
}

static int write_curves(struct experiment *x, enum model_role role, const struct train_result *res,
                        const struct accuracy_curve *acc)
{
    char path[256];
    int n = res->curve.n, rc = CIRCD_OK;
    float *loss = malloc((size_t)(n ? n : 1) * 3 * sizeof *loss);
    if (!loss) return err_set(CIRCD_ENOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        loss[i * 3] = (float)res->curve.step[i];
        loss[i * 3 + 1] = res->curve.loss[i];
        loss[i * 3 + 2] = res->curve.lr[i];
    }
    snprintf(path, sizeof path, "/runs/%s/train/loss", role_row(role));
    uint64_t dims[2] = {(uint64_t)n, 3};
    if (n) rc = results_write_f32(&x->results, path, 2, dims, loss);
    free(loss);
    snprintf(path, sizeof path, "/runs/%s/train/accuracy", role_row(role));
    uint64_t adims[2] = {(uint64_t)acc->n, 4};
    if (!rc && acc->n) rc = results_write_f32(&x->results, path, 2, adims, acc->rows);
    snprintf(path, sizeof path, "/runs/%s/train", role_row(role));
    if (!rc) rc = results_set_attr_str(&x->results, path, "loss_columns", "step, loss, lr");
    if (!rc) rc = results_set_attr_str(&x->results, path, "accuracy_columns", "step, seconds, id_accuracy, ood_accuracy");
    if (!rc) rc = results_set_attr_f64(&x->results, path, "seconds", res->seconds);
    if (!rc) rc = results_set_attr_f64(&x->results, path, "tokens_per_s", res->tokens_per_s);
    if (!rc) rc = results_set_attr_i64(&x->results, path, "steps", res->steps_done);
    if (!rc) rc = results_set_attr_i64(&x->results, path, "resumed_from_step", res->resumed_from);
    return rc;
}

int stage_train(struct experiment *x, enum model_role role)
{
    const struct spec_model *sm = role_model(x, role);
    char dir[4200], path[4300];
    role_model_dir(x, role, dir, sizeof dir);
    snprintf(path, sizeof path, "/runs/%s/train", role_row(role));
    if (sm->from_checkpoint) { /* nothing to train: the spec points at weights */
        if (sm->config.vocab_size != x->tok.vocab_size)
            return err_set(CIRCD_EINPUT, "%s: the %s checkpoint %s has vocab_size %d but the experiment's %s "
                           "tokenizer has %d tokens", x->spec->path, role_name(role), dir, sm->config.vocab_size,
                           tokenizer_kind_name(x->tok.kind), x->tok.vocab_size);
        return results_set_attr_str(&x->results, path, "source", dir);
    }
    const struct spec_train *t = role_training(x, role);
    struct llama_config cfg;
    role_config(x, role, &cfg);
    struct llama_model m;
    int rc = model_create(&m, &cfg);
    if (rc) return err_prefix(rc, "%s: %s model: ", x->spec->path, role_name(role));
    uint64_t seed = (uint64_t)x->spec->seeds.items[0] + (uint64_t)t->seed_offset;
    model_init_random(&m, seed);
    rc = experiment_place_model(x, &m);

    char name[64], ckpt[4300];
    snprintf(name, sizeof name, "train-%s", role == ROLE_TEACHER ? "teacher" : "student-base");
    snprintf(ckpt, sizeof ckpt, "%s/checkpoints/%s.ckpt", x->output, role_name(role));
    struct train_config tc = {
        .name = name, .steps = t->steps, .batch = t->batch, .max_seq = cfg.max_seq,
        .schedule = {lr_shape_of(t->schedule), (float)t->lr, t->warmup_steps, t->steps, (float)t->min_lr_ratio,
                     (float)t->decay_fraction},
        .opt = {(float)t->beta1, (float)t->beta2, 1e-8f, (float)t->weight_decay, (float)t->grad_clip},
        .data_seed = seed * 0x9e3779b97f4a7c15ULL + x->spec->data.seed,
        .checkpoint_interval = t->checkpoint_interval, .eval_interval = t->eval_interval,
        .log_interval = t->steps >= 50 ? t->steps / 50 : 1, .checkpoint_path = x->rank == 0 ? ckpt : NULL,
        .extra = accuracy_extra,
    };
    struct stage_source source = {
        .stream = role == ROLE_TEACHER ? &x->teacher_stream : &x->student_stream, .tok = &x->tok,
        .direct = &x->format, .cot = &x->cot_format,
        .cot_fraction = role == ROLE_TEACHER && x->spec->data.chain_of_thought ? x->spec->data.cot_fraction : 0,
        .curriculum_examples = t->curriculum ? (int64_t)(t->curriculum_fraction * t->steps) * t->batch : 0,
    };
    struct accuracy_curve acc = {x, name, x->spec->eval.batch, x->spec->eval.max_new_tokens, NULL, 0, 0};
    tc.extra_ctx = &acc;
    struct train_result res;
    memset(&res, 0, sizeof res);
    if (!rc) rc = train_run(&m, &tc, stage_source_batch, &source, record_accuracy, &acc, &res);
    if (!rc && x->rank == 0) rc = model_save_hf(&m, dir);
    if (!rc && x->rank == 0) {
        /* The answer format beside the weights, so `circd atp --model DIR` encodes prompts as training did. */
        char path[4300];
        snprintf(path, sizeof path, "%s/circd_format.json", dir);
        rc = arith_format_save(&x->format, path);
        snprintf(path, sizeof path, "%s/circd_tokenizer.json", dir);
        if (!rc) rc = tokenizer_arith_save(&x->tok, path);
    }
    if (!rc) rc = write_curves(x, role, &res, &acc);
    if (!rc && x->rank == 0)
        fprintf(stderr, "[%s] %lld steps in %.0fs (%.0f tokens/s); model saved to %s\n", name,
                (long long)res.steps_done, res.seconds, res.tokens_per_s, dir);
    train_result_free(&res);
    free(acc.rows);
    model_free(&m);
    return rc;
}
