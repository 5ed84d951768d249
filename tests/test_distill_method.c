/* test_distill_method.c — the distillation step: the gradient it applies is the gradient of the objective it reports,
 * λ_task·CE + λ_KD·T²KL + λ_align·Σ(1 − CKA), checked against central differences of that objective for every
 * alignment strategy (none, mapped pairs, global projection); subnetwork steps leave every parameter outside the
 * mask bit-identical; and a few steps of alignment raise the CKA of the aligned pairs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distill/method.h"
#include "distill/subnet.h"
#include "testing.h"
#include "util/rng.h"

enum { B = 3, T = 6, V = 13 };

static struct llama_config config(int d, int layers, int heads, int kv)
{
    return testing_config(V, d, layers, heads, kv, 4, 2 * d, 8);
}

static void randomize(struct llama_model *m, uint64_t seed)
{
    testing_randomize_model(m, seed, 0.4f, 0.1f);
}

static int32_t tokens[B * T], targets[B * T];

static void batch(void)
{
    struct rng r;
    rng_seed(&r, 9);
    for (int i = 0; i < B * T; i++) tokens[i] = (int32_t)(1 + rng_below(&r, V - 1));
    for (int b = 0; b < B; b++) {
        tokens[b * T + T - 1] = 0; /* a pad at the end */
        for (int t = 0; t < T; t++) targets[b * T + t] = t >= 2 && t < T - 2 ? tokens[b * T + t + 1] : -1;
    }
}

static const struct adamw_config frozen = {0.9f, 0.95f, 1e-8f, 0.0f, 0.0f};

/* The objective at the student's current parameters (a step with lr 0 changes nothing). */
static double objective(struct distill_step *s, struct llama_model *m)
{
    float loss = 0;
    CHECK(distill_train_step(s, m, tokens, targets, B, T, &frozen, 0.0f, &loss) == 0);
    return loss;
}

static void check_gradient(struct distill_step *s, struct llama_model *m, const char *label)
{
    objective(s, m);
    float *analytic = malloc(m->n_params * sizeof *analytic);
    memcpy(analytic, m->grads, m->n_params * sizeof *analytic);
    struct rng r;
    rng_seed(&r, 3);
    int bad = 0, checked = 0;
    double worst = 0;
    for (int k = 0; k < 60; k++) {
        size_t i = (size_t)rng_below(&r, m->n_params);
        float saved = m->params[i], h = 1e-2f;
        m->params[i] = saved + h;
        double plus = objective(s, m);
        m->params[i] = saved - h;
        double minus = objective(s, m);
        m->params[i] = saved;
        double fd = (plus - minus) / (2.0 * h), err = fabs(fd - analytic[i]);
        worst = fmax(worst, err / (1e-3 + fabs(fd)));
        bad += err > 2e-3 + 3e-2 * fabs(fd);
        checked += fabs(fd) > 1e-4;
    }
    printf("%s: %d of 60 entries off, %d non-trivial, worst relative %.3g (CE %.4f KL %.4f align %.4f)\n", label, bad,
           checked, worst, s->last.ce, s->last.kl, s->last.align);
    CHECK(bad == 0);
    CHECK(checked >= 20);
    free(analytic);
}

int main(void)
{
    struct llama_config tc = config(16, 2, 4, 2), sc = config(8, 2, 2, 1);
    struct llama_model teacher, student;
    CHECK(model_create(&teacher, &tc) == 0 && model_create(&student, &sc) == 0);
    CHECK(model_enable_training(&student) == 0);
    randomize(&teacher, 1);
    randomize(&student, 2);
    batch();
    struct circuit_graph tg, sg;
    CHECK(graph_init(&tg, &tc) == 0 && graph_init(&sg, &sc) == 0);
    int t_ups[3] = {graph_up_head(&tg, 1, 2), graph_up_mlp(&tg, 0), graph_up_head(&tg, 0, 1)};
    int s_ups[3] = {graph_up_head(&sg, 1, 0), graph_up_mlp(&sg, 1), graph_up_head(&sg, 0, 1)};
    struct component_map map = {3, t_ups, s_ups, (double[3]){1, 1, 1}};

    struct distill_setup base = {.lambda_task = 1.0f, .lambda_kd = 0.7f, .lambda_align = 0.0f, .temperature = 2.0f,
                                 .kl_direction = KL_FORWARD, .rows = ALIGN_ANSWER, .strategy = ALIGN_NONE,
                                 .teacher = &teacher, .teacher_graph = &tg, .student_graph = &sg, .pad_id = 0};
    struct distill_step s;
    CHECK(distill_step_init(&s, &base, &student, B, T) == 0);
    check_gradient(&s, &student, "CE + KD");
    distill_step_free(&s);

    struct distill_setup reverse = base;
    reverse.kl_direction = KL_REVERSE;
    reverse.lambda_task = 0;
    CHECK(distill_step_init(&s, &reverse, &student, B, T) == 0);
    check_gradient(&s, &student, "reverse KD");
    distill_step_free(&s);

    struct distill_setup mapped = base;
    mapped.strategy = ALIGN_MAPPED;
    mapped.lambda_align = 1.5f;
    mapped.map = &map;
    mapped.rows = ALIGN_ALL;
    CHECK(distill_step_init(&s, &mapped, &student, B, T) == 0);
    check_gradient(&s, &student, "CE + KD + CKA (mapped pairs)");
    CHECK(s.last.align_pairs == 3 && s.last.align > 0);
    distill_step_free(&s);

    struct global_projection proj;
    int dt = 4 + 16 + 4, ds = 4 + 8 + 4;
    CHECK(global_projection_init(&proj, ds, dt, 5) == 0);
    struct distill_setup global = mapped;
    global.strategy = ALIGN_GLOBAL;
    global.teacher_components = t_ups;
    global.n_teacher = 3;
    global.student_components = s_ups;
    global.n_student = 3;
    global.projection = &proj;
    CHECK(distill_step_init(&s, &global, &student, B, T) == 0);
    check_gradient(&s, &student, "CE + KD + CKA (global projection)");
    distill_step_free(&s);

    /* Subnetwork: 5 real steps; everything outside the mask keeps its bits, the masked part moves; the mapped CKA
     * rises. */
    unsigned char *mask = calloc(student.n_params, 1);
    CHECK(subnet_mask_build(&student, &sg, s_ups, 2, mask) == 0);
    float *before = testing_copy(student.params, student.n_params);
    struct distill_setup sub = mapped;
    sub.mask = mask;
    sub.lambda_task = 0;
    sub.lambda_kd = 0;
    sub.lambda_align = 1.0f;
    CHECK(distill_step_init(&s, &sub, &student, B, T) == 0);
    struct adamw_config opt = {0.9f, 0.95f, 1e-8f, 0.1f, 1.0f};
    float loss = 0, first = 0;
    for (int i = 0; i < 30; i++) {
        CHECK(distill_train_step(&s, &student, tokens, targets, B, T, &opt, 1e-2f, &loss) == 0);
        if (i == 0) first = loss;
    }
    printf("subnetwork alignment: 1 - CKA summed over 3 pairs %.4f -> %.4f\n", first, loss);
    CHECK(loss < first);
    size_t moved = 0, kept = 0;
    for (size_t i = 0; i < student.n_params; i++) {
        if (mask[i]) moved += before[i] != student.params[i];
        else kept += memcmp(&before[i], &student.params[i], sizeof(float)) == 0;
    }
    CHECK(kept == student.n_params - subnet_mask_count(mask, student.n_params));
    CHECK(moved > subnet_mask_count(mask, student.n_params) / 2);
    distill_step_free(&s);

    /* Setup errors. */
    struct distill_setup bad = base;
    bad.teacher = NULL;
    CHECK(distill_step_init(&s, &bad, &student, B, T) != 0);
    bad = mapped;
    bad.map = NULL;
    CHECK(distill_step_init(&s, &bad, &student, B, T) != 0);

    free(before);
    free(mask);
    global_projection_free(&proj);
    graph_free(&tg);
    graph_free(&sg);
    model_free(&teacher);
    model_free(&student);
    return testing_finish();
}
