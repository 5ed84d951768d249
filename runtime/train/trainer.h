/* trainer.h — the training loop every stage that trains uses (teacher, student base, distillation methods): batches
 * from a caller's source, the learning-rate schedule, AdamW with clipping, periodic evaluation, progress lines on
 * stderr, periodic atomic checkpoints, resume from the latest checkpoint, and a graceful stop on SIGTERM/SIGUSR1.
 *
 * Determinism: a batch depends only on the data RNG and cursor, both saved in every checkpoint, and the learning
 * rate only on the step, so an interrupted-and-resumed run produces the same parameters as an uninterrupted one. */
#ifndef CIRCD_TRAIN_TRAINER_H
#define CIRCD_TRAIN_TRAINER_H

#include <stdint.h>

#include "model/model.h"
#include "train/schedule.h"
#include "util/rng.h"

/* Fills tokens/targets [B, *T] (T <= max_T chosen by the source, e.g. the longest example of the batch) drawing
 * only from `rng`; *cursor counts examples drawn so far and may be advanced by the source. */
typedef int (*batch_source_fn)(void *ctx, struct rng *rng, int64_t *cursor, int32_t *tokens, int32_t *targets,
                               int B, int max_T, int *T);
/* Called every eval_interval steps and at the end (step = steps taken); may record metrics. */
typedef int (*train_eval_fn)(void *ctx, struct llama_model *m, int64_t step, double elapsed_s);

/* One optimisation step on a batch (forward, backward, parameter update; m->step advances by one), *loss = the
 * batch's objective. The default (NULL in train_config) is model_train_step. */
typedef int (*train_step_fn)(void *ctx, struct llama_model *m, const int32_t *tokens, const int32_t *targets, int B,
                             int T, const struct adamw_config *opt, float lr, float *loss);
/* State kept beside the model (a custom step's learnable projection, an evaluation curve): saved with every
 * checkpoint to `path` (the checkpoint path + ".extra", atomically) and loaded on resume; save = 1 / 0. An
 * evaluation due at a checkpoint's step runs before the checkpoint, so its result is part of that state. */
typedef int (*train_extra_fn)(void *ctx, const char *path, int save);
/* Whether to stop before the next step: the signal number that asked, or 0. Called at every step's start; a
 * data-parallel step agrees on it over its ranks so that all of them stop after the same step. */
typedef int (*train_stop_fn)(void *ctx);

struct train_config {
    const char *name;            /* shown in progress lines, e.g. "train-teacher" */
    int64_t steps;
    int batch, max_seq;
    struct lr_schedule schedule;
    struct adamw_config opt;
    uint64_t data_seed;
    int64_t checkpoint_interval; /* steps; 0 = only at the end and on interruption */
    int64_t eval_interval;       /* steps; 0 = only at the end */
    int64_t log_interval;        /* steps between progress lines; 0 = none */
    const char *checkpoint_path; /* NULL = no checkpoints */
    train_step_fn step;          /* NULL = model_train_step */
    void *step_ctx;
    train_extra_fn extra;        /* NULL = nothing beside the model */
    void *extra_ctx;             /* extra's context; NULL = step_ctx */
    train_stop_fn stop;          /* NULL = interrupt_requested(); called with step_ctx */
    int checkpoint_read_only;    /* 1: resume from checkpoint_path but never write it (the replicas of a
                                    data-parallel group: their first rank writes) */
};

/* One (step, loss, learning rate) point per log interval, for the training curves in results.h5. */
struct train_curve {
    int64_t *step;
    float *loss, *lr;
    int n, cap;
};

struct train_result {
    int64_t steps_done;
    int resumed_from;          /* step of the checkpoint resumed from, or -1 */
    double seconds, tokens_per_s;
    struct train_curve curve;  /* owned; free with train_result_free */
};

/* Trains m (model_enable_training is called) until cfg->steps, resuming from cfg->checkpoint_path if it exists.
 * Returns CIRCD_EINTERRUPTED after writing a checkpoint when SIGTERM/SIGUSR1 arrived. */
int train_run(struct llama_model *m, const struct train_config *cfg, batch_source_fn source, void *source_ctx,
              train_eval_fn eval, void *eval_ctx, struct train_result *result);
void train_result_free(struct train_result *result);

#endif
