/* test_trainer.c — the training loop: learning-rate schedules at known points, loss going down, an interrupted
 * (SIGTERM-style) and resumed run ending bit-identical to an uninterrupted one, and a read-only replica (data
 * parallel) resuming without writing the checkpoint and stopping through its stop callback. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testing.h"
#include "train/trainer.h"
#include "util/error.h"
#include "util/interrupt.h"

static void check_schedules(void)
{
    struct lr_schedule s = {LR_WARMUP_COSINE, 1e-3f, 10, 110, 0.1f, 0};
    CHECK_NEAR(lr_at(&s, 0), 1e-4, 1e-9);
    CHECK_NEAR(lr_at(&s, 9), 1e-3, 1e-9);
    CHECK_NEAR(lr_at(&s, 10), 1e-3, 1e-9);
    CHECK_NEAR(lr_at(&s, 60), 0.55e-3, 1e-8);   /* half way: floor + (peak - floor) / 2 */
    CHECK_NEAR(lr_at(&s, 110), 1e-4, 1e-9);
    CHECK_NEAR(lr_at(&s, 500), 1e-4, 1e-9);
    struct lr_schedule c = {LR_CONSTANT, 2e-3f, 0, 100, 0, 0};
    CHECK_NEAR(lr_at(&c, 0), 2e-3, 1e-9);
    CHECK_NEAR(lr_at(&c, 99), 2e-3, 1e-9);
    struct lr_schedule d = {LR_CONSTANT_THEN_DECAY, 1e-3f, 0, 100, 0.0f, 0.2f};
    CHECK_NEAR(lr_at(&d, 79), 1e-3, 1e-9);
    CHECK_NEAR(lr_at(&d, 90), 0.5e-3, 1e-9);
    CHECK_NEAR(lr_at(&d, 100), 0, 1e-9);
}

/* Sequences "a, a+k, a+2k, ..." mod vocab with random a and k: learnable next-token structure. */
struct source { int vocab; int64_t stop_at; };
static int arithmetic_sequences(void *ctx, struct rng *rng, int64_t *cursor, int32_t *tokens, int32_t *targets,
                                int B, int max_T, int *T)
{
    struct source *s = ctx;
    *T = max_T;
    for (int b = 0; b < B; b++) {
        int a = (int)rng_below(rng, (uint64_t)s->vocab), k = 1 + (int)rng_below(rng, 3);
        for (int t = 0; t < max_T; t++) tokens[b * max_T + t] = (a + k * t) % s->vocab;
        (*cursor)++;
    }
    model_next_token_targets(targets, tokens, B, max_T);
    for (int b = 0; b < B; b++) targets[b * max_T] = -1; /* the step k is unknown before the second token */
    if (s->stop_at >= 0 && *cursor >= s->stop_at) interrupt_request(15);
    return CIRCD_OK;
}

static struct llama_config config(void)
{
    struct llama_config c = {0};
    c.vocab_size = 16;
    c.d_model = 16;
    c.n_layers = 2;
    c.n_heads = 4;
    c.n_kv_heads = 2;
    c.head_dim = 4;
    c.d_ff = 32;
    c.max_seq = 12;
    c.rope_theta = 10000;
    c.norm_eps = 1e-5f;
    c.tie_embeddings = 1;
    c.bos_token_id = c.eos_token_id = -1;
    return c;
}

static int count_evals(void *ctx, struct llama_model *m, int64_t step, double elapsed)
{
    (void)m; (void)elapsed;
    int *n = ctx;
    (*n)++;
    CHECK(step % 20 == 0);
    return CIRCD_OK;
}

/* train_stop_fn: no stop for three calls, then signal 12 (ctx counts the calls). */
static int stop_after_three(void *ctx)
{
    int *calls = ctx;
    return ++*calls > 3 ? 12 : 0;
}

int main(void)
{
    check_schedules();
    struct llama_config cfg = config();
    char ckpt_a[4200], ckpt_b[4200];
    snprintf(ckpt_a, sizeof ckpt_a, "%s/a.ckpt", testing_tmpdir());
    snprintf(ckpt_b, sizeof ckpt_b, "%s/b.ckpt", testing_tmpdir());
    struct train_config tc = {"test", 60, 8, 12, {LR_WARMUP_COSINE, 1e-2f, 5, 60, 0.1f, 0},
                              {0.9f, 0.95f, 1e-8f, 0.01f, 1.0f}, 77, 25, 20, 10, ckpt_a, NULL, NULL, NULL, NULL, NULL, 0};

    struct llama_model straight;
    CHECK(model_create(&straight, &cfg) == 0);
    model_init_random(&straight, 3);
    struct source src = {cfg.vocab_size, -1};
    struct train_result res;
    int evals = 0;
    CHECK(train_run(&straight, &tc, arithmetic_sequences, &src, count_evals, &evals, &res) == 0);
    CHECK(res.steps_done == 60 && res.resumed_from == -1);
    CHECK(evals == 3); /* steps 20, 40 and the final 60 */
    CHECK(res.curve.n == 6 && res.curve.step[5] == 60);
    CHECK(res.curve.loss[5] < 0.6f * res.curve.loss[0]);
    printf("loss %.3f -> %.3f, %.0f tok/s\n", res.curve.loss[0], res.curve.loss[5], res.tokens_per_s);
    struct train_result straight_res = res;

    /* Interrupted after 200 examples (step 25), resumed in a fresh model: same bits at the end. */
    tc.checkpoint_path = ckpt_b;
    struct llama_model first, second;
    CHECK(model_create(&first, &cfg) == 0);
    model_init_random(&first, 3);
    src.stop_at = 200;
    CHECK(train_run(&first, &tc, arithmetic_sequences, &src, NULL, NULL, &res) == CIRCD_EINTERRUPTED);
    CHECK(res.steps_done == 25);
    CHECK(strstr(err_msg(), "checkpoint saved") != NULL);
    train_result_free(&res);
    interrupt_clear();
    src.stop_at = -1;

    /* A data-parallel replica: resumes from the checkpoint read-only (the file stays as it was), and a stop
     * callback (the replicas' agreed signal) ends it after 3 more steps with that signal in the message. */
    size_t ckpt_len = 0, after_len = 0;
    char *ckpt_before = testing_read_file(ckpt_b, &ckpt_len);
    struct llama_model replica;
    CHECK(ckpt_before != NULL && model_create(&replica, &cfg) == 0);
    model_init_random(&replica, 5);
    struct train_config ro = tc;
    int stop_calls = 0;
    ro.checkpoint_read_only = 1;
    ro.stop = stop_after_three;
    ro.step_ctx = &stop_calls; /* the default step ignores its context */
    CHECK(train_run(&replica, &ro, arithmetic_sequences, &src, NULL, NULL, &res) == CIRCD_EINTERRUPTED);
    CHECK(res.resumed_from == 25 && res.steps_done == 28 && stop_calls == 4);
    CHECK(strstr(err_msg(), "stopped by signal 12 at step 28") != NULL);
    char *ckpt_after = testing_read_file(ckpt_b, &after_len);
    CHECK(ckpt_after && after_len == ckpt_len && memcmp(ckpt_after, ckpt_before, ckpt_len) == 0);
    free(ckpt_before);
    free(ckpt_after);
    train_result_free(&res);
    model_free(&replica);

    CHECK(model_create(&second, &cfg) == 0);
    model_init_random(&second, 999); /* overwritten by the checkpoint */
    CHECK(train_run(&second, &tc, arithmetic_sequences, &src, NULL, NULL, &res) == 0);
    CHECK(res.resumed_from == 25 && res.steps_done == 60);
    CHECK(memcmp(second.params, straight.params, straight.n_params * sizeof(float)) == 0);
    /* The curve too: the points before the checkpoint and the window 21-25 open at the interruption come back. */
    CHECK(res.curve.n == straight_res.curve.n);
    for (int i = 0; i < res.curve.n && i < straight_res.curve.n; i++)
        CHECK(res.curve.step[i] == straight_res.curve.step[i] && res.curve.loss[i] == straight_res.curve.loss[i] &&
              res.curve.lr[i] == straight_res.curve.lr[i]);
    train_result_free(&res);
    train_result_free(&straight_res);

    /* Running again once finished trains nothing and changes nothing. */
    CHECK(train_run(&second, &tc, arithmetic_sequences, &src, NULL, NULL, &res) == 0);
    CHECK(res.resumed_from == 60 && memcmp(second.params, straight.params, straight.n_params * sizeof(float)) == 0);
    train_result_free(&res);
    model_free(&straight);
    model_free(&first);
    model_free(&second);
    return testing_finish();
}
