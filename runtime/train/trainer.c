/* trainer.c — implementation of trainer.h. */
#include "train/trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/error.h"
#include "util/interrupt.h"

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int curve_add(struct train_curve *c, int64_t step, float loss, float lr)
{
    if (c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 64;
        int64_t *s = realloc(c->step, (size_t)cap * sizeof *s);
        if (s) c->step = s;
        float *l = realloc(c->loss, (size_t)cap * sizeof *l);
        if (l) c->loss = l;
        float *r = realloc(c->lr, (size_t)cap * sizeof *r);
        if (r) c->lr = r;
        if (!s || !l || !r) return err_set(CIRCD_ENOMEM, "out of memory for the training curve");
        c->cap = cap;
    }
    c->step[c->n] = step;
    c->loss[c->n] = loss;
    c->lr[c->n] = lr;
    c->n++;
    return CIRCD_OK;
}

void train_result_free(struct train_result *result)
{
    free(result->curve.step);
    free(result->curve.loss);
    free(result->curve.lr);
    memset(&result->curve, 0, sizeof result->curve);
}

static void format_duration(char *buf, size_t cap, double s)
{
    if (!(s >= 0) || s > 1e7) snprintf(buf, cap, "?");
    else if (s >= 3600) snprintf(buf, cap, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
    else if (s >= 60) snprintf(buf, cap, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else snprintf(buf, cap, "%.0fs", s);
}

static int default_step(void *ctx, struct llama_model *m, const int32_t *tokens, const int32_t *targets, int B, int T,
                        const struct adamw_config *opt, float lr, float *loss)
{
    (void)ctx;
    return model_train_step(m, tokens, targets, B, T, opt, lr, loss, NULL);
}

/* The model's checkpoint and, with a custom step's extra state, its sidecar file. */
static int checkpoint_save(const struct train_config *cfg, struct llama_model *m, const struct rng *r, int64_t cursor)
{
    char extra[4200];
    int rc = CIRCD_OK;
    if (cfg->extra) {
        snprintf(extra, sizeof extra, "%s.extra", cfg->checkpoint_path);
        rc = cfg->extra(cfg->step_ctx, extra, 1);
    }
    return rc ? rc : model_checkpoint_save(m, cfg->checkpoint_path, r, cursor);
}

int train_run(struct llama_model *m, const struct train_config *cfg, batch_source_fn source, void *source_ctx,
              train_eval_fn eval, void *eval_ctx, struct train_result *result)
{
    memset(result, 0, sizeof *result);
    result->resumed_from = -1;
    int rc = model_enable_training(m);
    if (rc) return rc;
    struct rng data_rng;
    rng_seed(&data_rng, cfg->data_seed);
    int64_t cursor = 0;
    if (cfg->checkpoint_path && access(cfg->checkpoint_path, F_OK) == 0) {
        if ((rc = model_checkpoint_load(m, cfg->checkpoint_path, &data_rng, &cursor))) return rc;
        if (cfg->extra) {
            char extra[4200];
            snprintf(extra, sizeof extra, "%s.extra", cfg->checkpoint_path);
            if ((rc = cfg->extra(cfg->step_ctx, extra, 0))) return rc;
        }
        result->resumed_from = (int)m->step;
        fprintf(stderr, "[%s] resuming from %s at step %lld\n", cfg->name, cfg->checkpoint_path,
                (long long)m->step);
    }
    size_t cap = (size_t)cfg->batch * cfg->max_seq;
    int32_t *tokens = malloc(cap * sizeof *tokens), *targets = malloc(cap * sizeof *targets);
    if (!tokens || !targets) { free(tokens); free(targets); return err_set(CIRCD_ENOMEM, "out of memory"); }

    double start = now_seconds(), window_start = start;
    int64_t window_tokens = 0, tokens_total = 0, first_step = m->step;
    double loss_sum = 0;
    int loss_count = 0;
    while (m->step < cfg->steps) {
        if (interrupt_requested()) {
            if (cfg->checkpoint_path) rc = checkpoint_save(cfg, m, &data_rng, cursor);
            if (!rc) rc = err_set(CIRCD_EINTERRUPTED, "%s: stopped by signal %d at step %lld (checkpoint saved)",
                                  cfg->name, interrupt_requested(), (long long)m->step);
            break;
        }
        int T = 0;
        if ((rc = source(source_ctx, &data_rng, &cursor, tokens, targets, cfg->batch, cfg->max_seq, &T))) break;
        float lr = lr_at(&cfg->schedule, m->step), loss = 0;
        train_step_fn step = cfg->step ? cfg->step : default_step;
        if ((rc = step(cfg->step_ctx, m, tokens, targets, cfg->batch, T, &cfg->opt, lr, &loss))) break;
        window_tokens += (int64_t)cfg->batch * T;
        tokens_total += (int64_t)cfg->batch * T;
        loss_sum += loss;
        loss_count++;
        int last = m->step == cfg->steps;
        if (cfg->log_interval > 0 && (m->step % cfg->log_interval == 0 || last)) {
            double now = now_seconds(), rate = window_tokens / fmax(now - window_start, 1e-9);
            double per_step = (now - start) / (double)(m->step - first_step);
            char eta[32];
            format_duration(eta, sizeof eta, per_step * (double)(cfg->steps - m->step));
            float mean = (float)(loss_sum / loss_count);
            fprintf(stderr, "[%s] step %lld/%lld loss %.4f lr %.2e tok/s %.0f ETA %s\n", cfg->name,
                    (long long)m->step, (long long)cfg->steps, mean, lr, rate, eta);
            if ((rc = curve_add(&result->curve, m->step, mean, lr))) break;
            window_start = now;
            window_tokens = 0;
            loss_sum = 0;
            loss_count = 0;
        }
        if (cfg->checkpoint_path && cfg->checkpoint_interval > 0 && m->step % cfg->checkpoint_interval == 0 &&
            !last && (rc = checkpoint_save(cfg, m, &data_rng, cursor)))
            break;
        if (eval && cfg->eval_interval > 0 && m->step % cfg->eval_interval == 0 && !last &&
            (rc = eval(eval_ctx, m, m->step, now_seconds() - start)))
            break;
    }
    if (!rc && cfg->checkpoint_path) rc = checkpoint_save(cfg, m, &data_rng, cursor);
    if (!rc && eval) rc = eval(eval_ctx, m, m->step, now_seconds() - start);
    result->steps_done = m->step;
    result->seconds = now_seconds() - start;
    result->tokens_per_s = tokens_total / fmax(result->seconds, 1e-9);
    free(tokens);
    free(targets);
    return rc;
}
