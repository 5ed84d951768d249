/* mpi_pipeline.c — the pipeline-parallel teacher forward (sched/pipeline.h) on 2 ranks (any S >= 2 works): logits
 * and every layer's hook_z / hook_mlp_out caches equal model_forward's on one rank (M = 1, 2, 3 micro-batches with B
 * not divisible by M, outputs on rank 0 or on the last rank); a 1-layer model cannot be split over 2 ranks; a bad
 * token, mismatched arguments and a failed driver end with the same error on every rank instead of a hang; and a
 * distillation step whose teacher runs pipelined over the ranks trains the student to the same weights as with the
 * teacher on one rank. */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distill/method.h"
#include "model/forward_range.h"
#include "sched/pipeline.h"
#include "testing.h"
#include "util/error.h"
#include "util/rng.h"

enum { V = 13, T = 6, B = 5, D = 16, HEADS = 4, KV = 2, HD = 4, LAYERS = 3 };

static int rank, size;

/* Per-layer buffers for N rows: z[l] [N, H*hd], mlp[l] [N, d]. */
struct caches {
    float *z[LAYERS], *mlp[LAYERS];
};

static void caches_alloc(struct caches *c, size_t N)
{
    for (int l = 0; l < LAYERS; l++) {
        c->z[l] = calloc(N * HEADS * HD, sizeof(float));
        c->mlp[l] = calloc(N * D, sizeof(float));
    }
}

static void caches_free(struct caches *c)
{
    for (int l = 0; l < LAYERS; l++) { free(c->z[l]); free(c->mlp[l]); }
}

static void random_tokens(int32_t *tokens, size_t n, uint64_t seed)
{
    struct rng r;
    rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) tokens[i] = (int32_t)rng_below(&r, V);
}

/* model_forward on one rank with z / mlp_out cached through hooks: the reference. */
static void reference(struct llama_model *m, const int32_t *tokens, float *logits, struct caches *c)
{
    model_hooks_clear(m);
    for (int l = 0; l < LAYERS; l++) {
        struct hook_request rz = {{HOOK_ATTN_Z, l}, HOOK_CACHE, c->z[l], -1, -1};
        struct hook_request rm = {{HOOK_MLP_OUT, l}, HOOK_CACHE, c->mlp[l], -1, -1};
        CHECK(model_hook_add(m, &rz) == 0 && model_hook_add(m, &rm) == 0);
    }
    CHECK(model_forward(m, tokens, NULL, B, T) == 0);
    memcpy(logits, m->acts.logits, (size_t)B * T * V * sizeof(float));
    model_hooks_clear(m);
}

/* The range forward by itself: layers [0, 2) then [2, 3) on one rank reproduce model_forward bit for bit. */
static void test_range(struct llama_model *m, const int32_t *tokens, const float *want_logits)
{
    size_t N = (size_t)B * T;
    CHECK(model_forward_range(m, 0, 2, tokens, NULL, B, T) == 0);
    float *resid = testing_copy(model_forward_range_output(m, 2), N * D);
    CHECK(model_forward_range(m, 2, LAYERS, NULL, resid, B, T) == 0);
    CHECK(testing_scaled_diff(m->acts.logits, want_logits, N * V) == 0.0f);
    CHECK(model_forward_range(m, 1, 1, NULL, resid, B, T) == CIRCD_EINPUT);
    CHECK(model_forward_range(m, 1, 2, NULL, NULL, B, T) == CIRCD_EINPUT);
    free(resid);
}

static void test_forward(struct llama_model *teacher, const int32_t *tokens, const float *want_logits,
                         const struct caches *want, int dest)
{
    size_t N = (size_t)B * T;
    struct pipeline p;
    CHECK(pipeline_init(&p, teacher, MPI_COMM_WORLD, dest) == 0);
    float *logits = calloc(N * V, sizeof(float));
    struct caches got;
    caches_alloc(&got, N);
    for (int M = 1; M <= 3; M++) {
        struct pipeline_output out = {logits, got.z, got.mlp};
        int rc = pipeline_forward(&p, rank == dest ? tokens : NULL, B, T, M, rank == dest ? &out : NULL);
        CHECK(rc == 0);
        if (rank != dest) continue;
        float dl = testing_scaled_diff(logits, want_logits, N * V), dz = 0, dm = 0;
        for (int l = 0; l < LAYERS; l++) {
            dz = fmaxf(dz, testing_scaled_diff(got.z[l], want->z[l], N * HEADS * HD));
            dm = fmaxf(dm, testing_scaled_diff(got.mlp[l], want->mlp[l], N * D));
        }
        printf("S=%d dest=%d M=%d: max |diff| / scale: logits %.3g, z %.3g, mlp_out %.3g\n", size, dest, M, dl, dz, dm);
        if (M == 1) CHECK(dl == 0.0f && dz == 0.0f && dm == 0.0f); /* the same rows through the same kernels */
        CHECK(dl <= 1e-5f && dz <= 1e-5f && dm <= 1e-5f);
    }
    /* logits only: the caches are left alone */
    struct pipeline_output only = {logits, NULL, NULL};
    memset(got.z[0], 0, N * HEADS * HD * sizeof(float));
    CHECK(pipeline_forward(&p, tokens, B, T, 2, &only) == 0);
    if (rank == dest) CHECK(got.z[0][0] == 0.0f && testing_scaled_diff(logits, want_logits, N * V) <= 1e-5f);
    CHECK(p.stats.forwards == 4 && p.stats.compute_s > 0 && p.stats.wall_s >= p.stats.compute_s);
    caches_free(&got);
    free(logits);
    pipeline_free(&p);
}

/* Failures that would leave a rank blocked in MPI_Recv without care end with an error on every rank. */
static void test_errors(struct llama_model *teacher, const int32_t *tokens)
{
    size_t N = (size_t)B * T;
    struct pipeline p;
    CHECK(pipeline_init(&p, teacher, MPI_COMM_WORLD, 0) == 0);
    float *logits = calloc(N * V, sizeof(float));
    struct pipeline_output out = {logits, NULL, NULL};
    int32_t *bad = malloc(N * sizeof *bad);
    memcpy(bad, tokens, N * sizeof *bad);
    bad[N - 2] = V; /* in the last micro-batch: stage 0 has already sent the first ones on */
    int rc = pipeline_forward(&p, bad, B, T, 2, &out);
    printf("rank %d, bad token: %s\n", rank, err_msg());
    CHECK(rc == CIRCD_EINPUT);
    CHECK(strstr(err_msg(), "outside the vocabulary") != NULL);
    CHECK(rank == 0 || strstr(err_msg(), "rank 0") != NULL);
    /* the pipeline still works afterwards */
    CHECK(pipeline_forward(&p, tokens, B, T, 2, &out) == 0);
    /* ranks disagreeing on M; M > B; T beyond max_seq */
    CHECK(pipeline_forward(&p, tokens, B, T, rank == 0 ? 2 : 3, &out) == CIRCD_EINPUT);
    CHECK(strstr(err_msg(), "disagree") != NULL);
    CHECK(pipeline_forward(&p, tokens, B, T, B + 1, &out) == CIRCD_EINPUT);
    CHECK(pipeline_forward(&p, tokens, B, 99, 1, &out) == CIRCD_EINPUT);
    /* no logits buffer on the destination */
    CHECK(pipeline_forward(&p, tokens, B, T, 1, NULL) == CIRCD_EINPUT);
    CHECK(strstr(err_msg(), "no logits buffer") != NULL);
    /* driver / server: two forwards, then a stop carrying the driver's error */
    if (rank == 0) {
        CHECK(pipeline_request_forward(&p, tokens, B, T, 2, &out) == 0);
        CHECK(pipeline_request_forward(&p, bad, B, T, 3, &out) == CIRCD_EINPUT);
        err_set(CIRCD_EIO, "student checkpoint unwritable");
        pipeline_request_stop(&p, CIRCD_EIO);
    } else {
        CHECK(pipeline_serve(&p) == CIRCD_EIO);
        CHECK(strstr(err_msg(), "student checkpoint unwritable") != NULL);
    }
    if (rank == 0) pipeline_request_stop(&p, CIRCD_OK);
    else CHECK(pipeline_serve(&p) == CIRCD_OK);
    free(bad);
    free(logits);
    pipeline_free(&p);

    /* more ranks than layers */
    struct llama_config one = testing_config(V, D, 1, HEADS, KV, HD, 2 * D, 8);
    struct llama_model small;
    CHECK(model_create(&small, &one) == 0);
    rc = pipeline_init(&p, &small, MPI_COMM_WORLD, 0);
    printf("rank %d, 1-layer model on %d ranks: %s\n", rank, size, err_msg());
    CHECK(rc == CIRCD_EINPUT && strstr(err_msg(), "1-layer") != NULL);
    model_free(&small);
}

/* A distillation step (CE + KD + CKA over mapped pairs) with the teacher pipelined over the ranks, rank 0 training:
 * after 5 AdamW steps the student equals the one trained with the teacher on one rank (within 1e-5); then a batch
 * with a bad token fails the step on rank 0 and, through the stop word, the serving ranks. */
static void test_distill(struct llama_model *teacher)
{
    enum { SB = 3, ST = 6, STEPS = 5 };
    struct llama_config sc = testing_config(V, 8, 2, 2, 1, HD, 16, 8);
    struct llama_model student, ref_student;
    CHECK(model_create(&student, &sc) == 0 && model_create(&ref_student, &sc) == 0);
    CHECK(model_enable_training(&student) == 0 && model_enable_training(&ref_student) == 0);
    testing_randomize_model(&student, 2, 0.4f, 0.1f);
    memcpy(ref_student.params, student.params, student.n_params * sizeof(float));
    int32_t tokens[SB * ST], targets[SB * ST];
    random_tokens(tokens, SB * ST, 9);
    for (int b = 0; b < SB; b++)
        for (int t = 0; t < ST; t++) targets[b * ST + t] = t >= 2 && t < ST - 1 ? tokens[b * ST + t + 1] : -1;
    struct circuit_graph tg, sg;
    CHECK(graph_init(&tg, &teacher->config) == 0 && graph_init(&sg, &sc) == 0);
    int t_ups[3] = {graph_up_head(&tg, LAYERS - 1, 2), graph_up_mlp(&tg, 0), graph_up_head(&tg, 1, 1)};
    int s_ups[3] = {graph_up_head(&sg, 1, 0), graph_up_mlp(&sg, 1), graph_up_head(&sg, 0, 1)};
    struct component_map map = {3, t_ups, s_ups, (double[3]){1, 1, 1}};
    struct distill_setup setup = {.lambda_task = 1.0f, .lambda_kd = 0.7f, .lambda_align = 1.5f, .temperature = 2.0f,
                                  .kl_direction = KL_FORWARD, .rows = ALIGN_ALL, .strategy = ALIGN_MAPPED,
                                  .teacher = teacher, .teacher_graph = &tg, .student_graph = &sg, .map = &map,
                                  .pad_id = 0};
    struct adamw_config opt = {0.9f, 0.95f, 1e-8f, 0.1f, 1.0f};
    float ref_loss[STEPS], loss[STEPS];
    struct distill_step s;
    if (rank == 0) { /* the reference: the whole teacher on this rank */
        CHECK(distill_step_init(&s, &setup, &ref_student, SB, ST) == 0);
        for (int i = 0; i < STEPS; i++)
            CHECK(distill_train_step(&s, &ref_student, tokens, targets, SB, ST, &opt, 1e-2f, &ref_loss[i]) == 0);
        distill_step_free(&s);
    }
    struct pipeline p;
    CHECK(pipeline_init(&p, teacher, MPI_COMM_WORLD, 0) == 0);
    setup.teacher_pipeline = &p;
    setup.teacher_micro_batches = 2;
    if (rank == 0) {
        CHECK(distill_step_init(&s, &setup, &student, SB, ST) == 0);
        for (int i = 0; i < STEPS; i++)
            CHECK(distill_train_step(&s, &student, tokens, targets, SB, ST, &opt, 1e-2f, &loss[i]) == 0);
        float moved = testing_scaled_diff(student.params, ref_student.params, student.n_params);
        printf("distill step, teacher on %d ranks: loss %.6f -> %.6f (one rank: %.6f -> %.6f), weights max |diff| / "
               "scale %.3g\n", size, loss[0], loss[STEPS - 1], ref_loss[0], ref_loss[STEPS - 1], moved);
        CHECK(moved <= 1e-5f);
        CHECK(fabsf(loss[STEPS - 1] - ref_loss[STEPS - 1]) <= 1e-5f * fmaxf(1, fabsf(ref_loss[STEPS - 1])));
        CHECK(fabsf(loss[STEPS - 1] - loss[0]) > 1e-3f); /* it trained */
        tokens[4] = -3;
        CHECK(distill_train_step(&s, &student, tokens, targets, SB, ST, &opt, 1e-2f, &loss[0]) == CIRCD_EINPUT);
        pipeline_request_stop(&p, CIRCD_EINPUT);
        distill_step_free(&s);
    } else {
        int rc = pipeline_serve(&p);
        printf("rank %d, serving: %s\n", rank, err_msg());
        CHECK(rc == CIRCD_EINPUT && strstr(err_msg(), "outside the vocabulary") != NULL);
    }
    pipeline_free(&p);
    graph_free(&tg);
    graph_free(&sg);
    model_free(&student);
    model_free(&ref_student);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    CHECK(size >= 2 && size <= LAYERS);
    struct llama_config cfg = testing_config(V, D, LAYERS, HEADS, KV, HD, 2 * D, 8);
    struct llama_model ref, teacher;
    CHECK(model_create(&ref, &cfg) == 0 && model_create(&teacher, &cfg) == 0);
    testing_randomize_model(&ref, 7, 0.4f, 0.1f);
    memcpy(teacher.params, ref.params, ref.n_params * sizeof(float));
    size_t N = (size_t)B * T;
    int32_t tokens[B * T];
    random_tokens(tokens, N, 11);
    float *want_logits = malloc(N * V * sizeof(float));
    struct caches want;
    caches_alloc(&want, N);
    reference(&ref, tokens, want_logits, &want);
    test_range(&ref, tokens, want_logits);

    test_forward(&teacher, tokens, want_logits, &want, 0);
    test_forward(&teacher, tokens, want_logits, &want, size - 1);
    test_errors(&teacher, tokens);
    test_distill(&teacher);

    caches_free(&want);
    free(want_logits);
    model_free(&ref);
    model_free(&teacher);
    int code = testing_finish();
    MPI_Allreduce(MPI_IN_PLACE, &code, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Finalize();
    return code;
}
