/* mpi_data_parallel.c — data-parallel distillation steps (distill/method.h with setup.data_parallel) on 2 ranks:
 * for SFT (CE only), KD (forward and reverse KL, a subnetwork mask), CD-A (CKA over mapped pairs: every row,
 * answer rows with the unbiased estimator) and CD-B (the global projection on the last prompt row), 4 AdamW steps
 * on batches of 5 rows (blocks of 3 and 2) give the student — and CD-B's projection — of the same steps on one
 * rank within 1e-5, with the same reported loss, and the replicas are bit-identical; a bad token in rank 1's rows
 * fails the step on both ranks with rank 1's message (no hang) and the next step works; a batch with fewer rows
 * than ranks, and data parallel with a pipelined teacher, are refused; a stop signal on one rank stops both; and a
 * rank that fails between steps ends the other's training through its stop check. */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distill/method.h"
#include "testing.h"
#include "util/error.h"
#include "util/interrupt.h"
#include "util/rng.h"

enum { V = 13, SB = 5, ST = 7, STEPS = 4 };

static int rank, size;

/* Batch `step`: random tokens (pad id 0 never drawn), targets on positions 2..ST-2. */
static void batch(int step, int32_t *tokens, int32_t *targets)
{
    struct rng r;
    rng_seed(&r, 100 + (uint64_t)step);
    for (int i = 0; i < SB * ST; i++) tokens[i] = 1 + (int32_t)rng_below(&r, V - 1);
    for (int b = 0; b < SB; b++)
        for (int t = 0; t < ST; t++) targets[b * ST + t] = t >= 2 && t < ST - 1 ? tokens[b * ST + t + 1] : -1;
}

/* 1 when every rank holds the same bytes. */
static int same_on_every_rank(const void *p, size_t bytes)
{
    unsigned char *first = malloc(bytes);
    memcpy(first, p, bytes);
    MPI_Bcast(first, (int)bytes, MPI_BYTE, 0, MPI_COMM_WORLD);
    int mine = memcmp(first, p, bytes) == 0, all = 0;
    MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    free(first);
    return all;
}

struct models {
    struct llama_model *teacher;
    struct circuit_graph tg, sg;
    struct component_map map;
    int t_ups[3], s_ups[3];
};

/* STEPS steps of `setup` on a copy of `init`: *loss the last step's, params (and P for CD-B) into out. */
static void train(struct distill_setup setup, const struct llama_model *init, struct collective *dp, int unbiased,
                  float *params_out, float *p_out, float *loss)
{
    struct llama_model student;
    CHECK(model_create(&student, &init->config) == 0 && model_enable_training(&student) == 0);
    memcpy(student.params, init->params, init->n_params * sizeof(float));
    model_params_changed(&student);
    struct global_projection proj;
    memset(&proj, 0, sizeof proj);
    if (setup.strategy == ALIGN_GLOBAL) {
        CHECK(global_projection_init(&proj, 2 * init->config.head_dim + init->config.d_model,
                                     2 * setup.teacher->config.head_dim + setup.teacher->config.d_model, 7) == 0);
        proj.unbiased = unbiased;
        setup.projection = &proj;
    }
    setup.data_parallel = dp;
    struct adamw_config opt = {0.9f, 0.95f, 1e-8f, 0.1f, 1.0f};
    struct distill_step s;
    CHECK(distill_step_init(&s, &setup, &student, SB, ST) == 0);
    int32_t tokens[SB * ST], targets[SB * ST];
    for (int i = 0; i < STEPS; i++) {
        batch(i, tokens, targets);
        CHECK(distill_train_step(&s, &student, tokens, targets, SB, ST, &opt, 1e-2f, loss) == 0);
    }
    memcpy(params_out, student.params, student.n_params * sizeof(float));
    if (p_out) memcpy(p_out, proj.p, (size_t)proj.d_student * proj.d_teacher * sizeof(float));
    distill_step_free(&s);
    global_projection_free(&proj);
    model_free(&student);
}

struct method_case {
    const char *name;
    float task, kd, align;
    enum kl_direction kl;
    enum align_strategy strategy;
    enum align_rows rows;
    int unbiased, subnet;
};

static void test_method(struct models *ms, const struct llama_model *init, struct collective *dp,
                        const struct method_case *mc)
{
    struct distill_setup setup = {
        .lambda_task = mc->task, .lambda_kd = mc->kd, .lambda_align = mc->align, .temperature = 2.0f,
        .kl_direction = mc->kl, .cka_unbiased = mc->unbiased, .rows = mc->rows, .strategy = mc->strategy,
        .teacher = mc->kd > 0 || mc->strategy != ALIGN_NONE ? ms->teacher : NULL,
        .teacher_graph = &ms->tg, .student_graph = &ms->sg, .map = &ms->map,
        .teacher_components = ms->t_ups, .n_teacher = 3, .student_components = ms->s_ups, .n_student = 3,
        .projection_weight_decay = 0.01f, .pad_id = 0,
    };
    unsigned char *mask = NULL;
    if (mc->subnet) { /* the second half of the parameters only */
        mask = calloc(init->n_params, 1);
        memset(mask + init->n_params / 2, 1, init->n_params - init->n_params / 2);
        setup.mask = mask;
    }
    size_t n = init->n_params, np = mc->strategy == ALIGN_GLOBAL ? 10000 : 0;
    float *one = malloc(n * sizeof *one), *two = malloc(n * sizeof *two);
    float *p_one = np ? calloc(np, sizeof *p_one) : NULL, *p_two = np ? calloc(np, sizeof *p_two) : NULL;
    float loss_one = 0, loss_two = 0;
    train(setup, init, NULL, mc->unbiased, one, p_one, &loss_one);
    train(setup, init, dp, mc->unbiased, two, p_two, &loss_two);
    float moved = testing_scaled_diff(two, one, n), from_init = testing_scaled_diff(one, init->params, n);
    float p_moved = np ? testing_scaled_diff(p_two, p_one, np) : 0;
    int replicas = same_on_every_rank(two, n * sizeof(float)) && (!np || same_on_every_rank(p_two, np * 4));
    if (rank == 0)
        printf("%-28s loss %.6f on %d ranks, %.6f on one; weights max |diff| / scale %.3g (moved %.3g from the "
               "start)%s%s, replicas %s\n", mc->name, loss_two, size, loss_one, moved, from_init,
               np ? ", projection " : "", np ? (p_moved <= 1e-5f ? "agrees" : "DIFFERS") : "",
               replicas ? "identical" : "DIFFER");
    CHECK(moved <= 1e-5f);
    CHECK(p_moved <= 1e-5f);
    CHECK(from_init > 1e-3f); /* it trained */
    CHECK(fabsf(loss_two - loss_one) <= 1e-5f * fmaxf(1, fabsf(loss_one)));
    CHECK(replicas);
    if (mask) /* the masked-off half is untouched on every rank */
        CHECK(memcmp(two, init->params, n / 2 * sizeof(float)) == 0);
    free(one);
    free(two);
    free(p_one);
    free(p_two);
    free(mask);
}

/* Failures agree across the ranks: a bad token in rank 1's rows, too few rows, a pipelined teacher. */
static void test_errors(struct models *ms, const struct llama_model *init, struct collective *dp)
{
    struct llama_model student;
    CHECK(model_create(&student, &init->config) == 0 && model_enable_training(&student) == 0);
    memcpy(student.params, init->params, init->n_params * sizeof(float));
    model_params_changed(&student);
    struct distill_setup setup = {.lambda_task = 1, .lambda_kd = 0.5f, .lambda_align = 1, .temperature = 1,
                                  .rows = ALIGN_ALL, .strategy = ALIGN_MAPPED, .teacher = ms->teacher,
                                  .teacher_graph = &ms->tg, .student_graph = &ms->sg, .map = &ms->map,
                                  .data_parallel = dp};
    struct adamw_config opt = {0.9f, 0.95f, 1e-8f, 0.0f, 1.0f};
    struct distill_step s;
    CHECK(distill_step_init(&s, &setup, &student, SB, ST) == 0);
    int32_t tokens[SB * ST], targets[SB * ST];
    float loss;
    batch(0, tokens, targets);
    tokens[4 * ST + 1] = V + 5; /* row 4: rank 1's block */
    int rc = distill_train_step(&s, &student, tokens, targets, SB, ST, &opt, 1e-2f, &loss);
    if (rank == 0) printf("bad token on rank 1: %s\n", err_msg());
    CHECK(rc == CIRCD_EINPUT && (rank == 1 || strstr(err_msg(), "rank 1 of 2") != NULL));
    CHECK(student.step == 0 && memcmp(student.params, init->params, init->n_params * sizeof(float)) == 0);
    batch(0, tokens, targets);
    CHECK(distill_train_step(&s, &student, tokens, targets, SB, ST, &opt, 1e-2f, &loss) == 0 && student.step == 1);
    CHECK(distill_train_step(&s, &student, tokens, targets, 1, ST, &opt, 1e-2f, &loss) == CIRCD_EINPUT);
    CHECK(strstr(err_msg(), "leaves a rank without rows") != NULL);
    distill_step_free(&s);

    struct distill_step bad;
    setup.teacher_pipeline = (struct pipeline *)&setup; /* never used: refused first */
    CHECK(distill_step_init(&bad, &setup, &student, SB, ST) == CIRCD_EINPUT);
    CHECK(strstr(err_msg(), "exclude each other") != NULL);
    model_free(&student);
}

/* The stop check and the end of training agree over the ranks. */
static void test_stop(struct models *ms, const struct llama_model *init, struct collective *dp)
{
    struct llama_model student;
    CHECK(model_create(&student, &init->config) == 0);
    struct distill_setup setup = {.lambda_task = 1, .data_parallel = dp};
    struct distill_step s;
    CHECK(distill_step_init(&s, &setup, &student, SB, ST) == 0);
    interrupt_clear();
    CHECK(distill_stop_requested(&s) == 0);
    if (rank == 1) interrupt_request(10);
    CHECK(distill_stop_requested(&s) == 10 && interrupt_requested() == 10); /* rank 0 learns it too */
    interrupt_clear();
    CHECK(distill_data_parallel_finish(&s, CIRCD_OK) == CIRCD_OK); /* both finished well */
    distill_step_free(&s);

    /* rank 0 fails between steps (say its checkpoint write); rank 1 is at its next stop check */
    CHECK(distill_step_init(&s, &setup, &student, SB, ST) == 0);
    if (rank == 0) {
        CHECK(distill_data_parallel_finish(&s, err_set(CIRCD_EIO, "disk full")) == CIRCD_EIO);
        CHECK(strstr(err_msg(), "disk full") != NULL);
    } else {
        int sig = distill_stop_requested(&s);
        CHECK(sig != 0 && interrupt_requested() == 0);
        int rc = distill_data_parallel_finish(&s, err_set(CIRCD_EINTERRUPTED, "stopped by signal %d", sig));
        CHECK(rc == CIRCD_EIO && strstr(err_msg(), "another rank") != NULL);
    }
    distill_step_free(&s);
    model_free(&student);
    (void)ms;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    struct llama_config tc = testing_config(V, 16, 3, 4, 2, 4, 32, 8), sc = testing_config(V, 8, 2, 2, 1, 4, 16, 8);
    struct llama_model teacher, init;
    CHECK(model_create(&teacher, &tc) == 0 && model_create(&init, &sc) == 0);
    testing_randomize_model(&teacher, 1, 0.5f, 0.1f);
    testing_randomize_model(&init, 2, 0.4f, 0.1f);
    model_params_changed(&teacher);
    model_params_changed(&init);
    struct models ms = {.teacher = &teacher};
    CHECK(graph_init(&ms.tg, &tc) == 0 && graph_init(&ms.sg, &sc) == 0);
    int t_ups[3] = {graph_up_head(&ms.tg, 2, 2), graph_up_mlp(&ms.tg, 0), graph_up_head(&ms.tg, 1, 1)};
    int s_ups[3] = {graph_up_head(&ms.sg, 1, 0), graph_up_mlp(&ms.sg, 1), graph_up_head(&ms.sg, 0, 1)};
    memcpy(ms.t_ups, t_ups, sizeof t_ups);
    memcpy(ms.s_ups, s_ups, sizeof s_ups);
    ms.map = (struct component_map){3, ms.t_ups, ms.s_ups, (double[3]){1, 1, 1}};

    struct collective dp;
    CHECK(collective_open(&dp, MPI_COMM_WORLD, NULL) == 0);
    const struct method_case cases[] = {
        {"sft (CE)", 1, 0, 0, KL_FORWARD, ALIGN_NONE, ALIGN_ANSWER, 0, 0},
        {"kd (forward KL)", 1, 0.7f, 0, KL_FORWARD, ALIGN_NONE, ALIGN_ANSWER, 0, 0},
        {"kd (reverse KL, subnet)", 0.5f, 1, 0, KL_REVERSE, ALIGN_NONE, ALIGN_ANSWER, 0, 1},
        {"cd_a (all rows)", 1, 0.5f, 1.5f, KL_FORWARD, ALIGN_MAPPED, ALIGN_ALL, 0, 0},
        {"cd_a (answer rows, unbiased)", 1, 0, 1, KL_FORWARD, ALIGN_MAPPED, ALIGN_ANSWER, 1, 0},
        {"cd_b (last prompt row)", 1, 0.3f, 1, KL_FORWARD, ALIGN_GLOBAL, ALIGN_LAST_PROMPT, 0, 0},
        {"cd_b (all rows, subnet)", 1, 0, 2, KL_FORWARD, ALIGN_GLOBAL, ALIGN_ALL, 0, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) test_method(&ms, &init, &dp, &cases[i]);
    test_errors(&ms, &init, &dp);
    test_stop(&ms, &init, &dp);
    collective_close(&dp);
    graph_free(&ms.tg);
    graph_free(&ms.sg);
    model_free(&teacher);
    model_free(&init);
    int failed = testing_finish();
    MPI_Finalize();
    return failed;
}
