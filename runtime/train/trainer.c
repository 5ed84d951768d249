/* trainer.c — implementation of trainer.h. */
#include "train/trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "train/curve_file.h"
#include "util/error.h"
#include "util/interrupt.h"

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
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

/* The model's checkpoint and its sidecars: the loss curve with the open logging window, and a custom step's extra
 * state. The checkpoint itself is written last. */
static int checkpoint_save(const struct train_config *cfg, struct llama_model *m, const struct rng *r, int64_t cursor,
                           const struct train_curve *curve, double loss_sum, int loss_count)
{
    char side[4200];
    snprintf(side, sizeof side, "%s.curve", cfg->checkpoint_path);
    struct curve_window w = {m->step, loss_sum, loss_count};
    int rc = curve_file_save(side, curve, &w);
    if (!rc && cfg->extra) {
        snprintf(side, sizeof side, "%s.extra", cfg->checkpoint_path);
        rc = cfg->extra(cfg->extra_ctx ? cfg->extra_ctx : cfg->step_ctx, side, 1);
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
    double loss_sum = 0; /* the steps since the last curve point */
    int loss_count = 0;
    if (cfg->checkpoint_path && access(cfg->checkpoint_path, F_OK) == 0) {
        if ((rc = model_checkpoint_load(m, cfg->checkpoint_path, &data_rng, &cursor))) return rc;
        if (cfg->extra) {
            char extra[4200];
            snprintf(extra, sizeof extra, "%s.extra", cfg->checkpoint_path);
            if ((rc = cfg->extra(cfg->extra_ctx ? cfg->extra_ctx : cfg->step_ctx, extra, 0))) return rc;
        }
        char side[4200];
        struct curve_window w;
        snprintf(side, sizeof side, "%s.curve", cfg->checkpoint_path);
        if ((rc = curve_file_load(side, &result->curve, &w, m->step))) return rc;
        loss_sum = w.loss_sum;
        loss_count = w.loss_count;
        result->resumed_from = (int)m->step;
        fprintf(stderr, "[%s] resuming from %s at step %lld\n", cfg->name, cfg->checkpoint_path,
                (long long)m->step);
    }
    size_t cap = (size_t)cfg->batch * cfg->max_seq;
    int32_t *tokens = malloc(cap * sizeof *tokens), *targets = malloc(cap * sizeof *targets);
    if (!tokens || !targets) { free(tokens); free(targets); return err_set(CIRCD_ENOMEM, "out of memory"); }

    double start = now_seconds(), window_start = start;
    int64_t window_tokens = 0, tokens_total = 0, first_step = m->step;
    const char *save_path = cfg->checkpoint_read_only ? NULL : cfg->checkpoint_path;
    while (m->step < cfg->steps) {
        int sig = cfg->stop ? cfg->stop(cfg->step_ctx) : interrupt_requested();
        if (sig) {
            if (save_path) rc = checkpoint_save(cfg, m, &data_rng, cursor, &result->curve, loss_sum, loss_count);
            if (!rc) rc = err_set(CIRCD_EINTERRUPTED, "%s: stopped by signal %d at step %lld (checkpoint saved)",
                                  cfg->name, sig, (long long)m->step);
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
            if ((rc = train_curve_add(&result->curve, m->step, mean, lr))) break;
            window_start = now;
            window_tokens = 0;
            loss_sum = 0;
            loss_count = 0;
        }
        /* Evaluation first: a checkpoint at the same step then holds its result (the caller's extra state). */
        if (eval && cfg->eval_interval > 0 && m->step % cfg->eval_interval == 0 && !last &&
            (rc = eval(eval_ctx, m, m->step, now_seconds() - start)))
            break;
        if (save_path && cfg->checkpoint_interval > 0 && m->step % cfg->checkpoint_interval == 0 &&
            !last && (rc = checkpoint_save(cfg, m, &data_rng, cursor, &result->curve, loss_sum, loss_count)))
            break;
    }
    if (!rc && save_path) rc = checkpoint_save(cfg, m, &data_rng, cursor, &result->curve, loss_sum, loss_count);
    if (!rc && eval) rc = eval(eval_ctx, m, m->step, now_seconds() - start);
    result->steps_done = m->step;
    result->seconds = now_seconds() - start;
    result->tokens_per_s = tokens_total / fmax(result->seconds, 1e-9);
    free(tokens);
    free(targets);
    return rc;
}
