/* test_correspond.c — component correspondence (distill/correspond.h): gather picks the right slices and
 * scatter_add is its adjoint; the Hungarian assignment equals brute force on random rectangular matrices and a hand
 * case greedy gets wrong; the global projection's gradients match central differences and optimising P alone fits
 * T = S · A; component_map_build maps a copied model's heads and MLPs onto themselves with CKA 1. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distill/correspond.h"
#include "testing.h"
#include "util/error.h"

enum { B = 3, T = 5 };

static struct llama_config config(int d_model, int n_layers, int n_heads, int n_kv_heads)
{
    return testing_config(13, d_model, n_layers, n_heads, n_kv_heads, 4, 24, 16);
}

/* ---- gather / scatter_add ---- */

static double dot(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

static void test_gather_scatter(void)
{
    struct llama_config cfg = config(16, 2, 4, 2);
    struct llama_model m;
    struct circuit_graph g;
    CHECK(model_create(&m, &cfg) == 0 && graph_init(&g, &cfg) == 0);
    int L = cfg.n_layers, H = cfg.n_heads, hd = cfg.head_dim, d = cfg.d_model, N = B * T;
    size_t nz = (size_t)N * H * hd, nm = (size_t)N * d;
    struct rng r;
    rng_seed(&r, 5);
    float *x_z[2], *x_mlp[2], *d_z[2], *d_mlp[2];
    for (int l = 0; l < L; l++) {
        x_z[l] = testing_randn(&r, nz, 1);
        x_mlp[l] = testing_randn(&r, nm, 1);
        d_z[l] = calloc(nz, sizeof(float));
        d_mlp[l] = calloc(nm, sizeof(float));
    }
    unsigned char mask[B * T];
    int selected = 0;
    for (int i = 0; i < N; i++) selected += mask[i] = (unsigned char)(i % 3 != 1);
    CHECK(selected == 10);

    CHECK(component_dim(&m, &g, graph_up_head(&g, 1, 2)) == hd);
    CHECK(component_dim(&m, &g, graph_up_mlp(&g, 0)) == d);
    CHECK(component_dim(&m, &g, 0) == -1);
    CHECK(component_dim(&m, &g, g.n_up) == -1);

    /* Head 2 of layer 1: row k of the gather is row (b, t) of the k-th selected position, features 8..11. */
    int ld = hd + 3;
    float out[B * T * 19];
    for (size_t i = 0; i < sizeof out / sizeof *out; i++) out[i] = -7.0f;
    CHECK(component_gather(&m, &g, graph_up_head(&g, 1, 2), x_z, x_mlp, B, T, mask, out, ld) == selected);
    int k = 0, bad = 0;
    for (int i = 0; i < N; i++) {
        if (!mask[i]) continue;
        for (int f = 0; f < hd; f++) bad += out[k * ld + f] != x_z[1][((size_t)i * H + 2) * hd + f];
        for (int f = hd; f < ld; f++) bad += out[k * ld + f] != -7.0f; /* padding columns untouched */
        k++;
    }
    CHECK(bad == 0);
    CHECK(component_gather(&m, &g, graph_up_mlp(&g, 1), x_z, x_mlp, B, T, NULL, out, d) == N);
    CHECK(memcmp(out, x_mlp[1], nm * sizeof(float)) == 0);
    CHECK(component_gather(&m, &g, 0, x_z, x_mlp, B, T, mask, out, hd) == -1);
    CHECK(component_gather(&m, &g, graph_up_head(&g, 0, 0), x_z, x_mlp, B, T, mask, out, hd - 1) == -1);

    /* Adjointness for every component: <gather(x), y> == <x, scatter_add(y)>, y over the ld-strided rows. */
    float y[B * T * 19];
    double worst = 0;
    for (int u = 1; u < g.n_up; u++) {
        int dim = component_dim(&m, &g, u), stride = dim + 2;
        for (int i = 0; i < selected * stride; i++) y[i] = rng_normal(&r);
        for (int i = 0; i < selected * stride; i++) out[i] = 0;
        CHECK(component_gather(&m, &g, u, x_z, x_mlp, B, T, mask, out, stride) == selected);
        double lhs = 0;
        for (int i = 0; i < selected; i++) lhs += dot(out + (size_t)i * stride, y + (size_t)i * stride, (size_t)dim);
        for (int l = 0; l < L; l++) {
            memset(d_z[l], 0, nz * sizeof(float));
            memset(d_mlp[l], 0, nm * sizeof(float));
        }
        component_scatter_add(&m, &g, u, d_z, d_mlp, B, T, mask, y, stride);
        double rhs = 0;
        for (int l = 0; l < L; l++) rhs += dot(x_z[l], d_z[l], nz) + dot(x_mlp[l], d_mlp[l], nm);
        if (fabs(lhs - rhs) > worst) worst = fabs(lhs - rhs);
    }
    printf("gather/scatter_add adjoint over %d components: worst |<Gx,y> - <x,G*y>| = %.3g\n", g.n_up - 1, worst);
    CHECK(worst < 1e-5);

    /* scatter_add adds (the buffers already hold gradient from elsewhere) and leaves other heads alone. */
    for (size_t i = 0; i < nz; i++) d_z[0][i] = 1.0f;
    float ones[B * T * 4];
    for (int i = 0; i < selected * hd; i++) ones[i] = 0.5f;
    component_scatter_add(&m, &g, graph_up_head(&g, 0, 3), d_z, d_mlp, B, T, mask, ones, hd);
    double sum = 0;
    for (size_t i = 0; i < nz; i++) sum += d_z[0][i];
    CHECK_NEAR(sum, (double)nz + 0.5 * selected * hd, 1e-9);
    CHECK(d_z[0][((size_t)0 * H + 3) * hd] == 1.5f && d_z[0][((size_t)1 * H + 3) * hd] == 1.0f); /* row 1 masked out */
    CHECK(d_z[0][((size_t)0 * H + 2) * hd] == 1.0f);

    for (int l = 0; l < L; l++) { free(x_z[l]); free(x_mlp[l]); free(d_z[l]); free(d_mlp[l]); }
    graph_free(&g);
    model_free(&m);
}

/* ---- the assignment ---- */

/* Best total over one-to-one pairings of min(R, C) pairs, by trying every injection of the smaller side. */
static double brute_best(const double *w, int R, int C, int i, unsigned used, int rows_smaller)
{
    int n = rows_smaller ? R : C, m = rows_smaller ? C : R;
    if (i == n) return 0;
    double best = -INFINITY;
    for (int j = 0; j < m; j++) {
        if (used & (1u << j)) continue;
        double here = rows_smaller ? w[i * C + j] : w[j * C + i];
        double rest = brute_best(w, R, C, i + 1, used | (1u << j), rows_smaller);
        if (here + rest > best) best = here + rest;
    }
    return best;
}

/* Checks that row_col is a valid pairing of min(R, C) pairs and returns its total. */
static double pairing_total(const double *w, int R, int C, const int *row_col)
{
    unsigned used = 0;
    int pairs = 0;
    double total = 0;
    for (int i = 0; i < R; i++) {
        if (row_col[i] < 0) continue;
        CHECK(row_col[i] < C && !(used & (1u << row_col[i])));
        used |= 1u << row_col[i];
        pairs++;
        total += w[i * C + row_col[i]];
    }
    CHECK(pairs == (R < C ? R : C));
    return total;
}

static void test_assignment(void)
{
    struct rng r;
    rng_seed(&r, 11);
    const int shapes[][2] = {{4, 5}, {5, 4}, {6, 6}, {1, 1}, {1, 4}, {4, 1}, {7, 3}, {3, 7}};
    int trials = 0, wrong = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int R = shapes[s][0], C = shapes[s][1];
        for (int trial = 0; trial < 40; trial++) {
            double w[64];
            int row_col[8];
            for (int i = 0; i < R * C; i++) /* some trials with ties and negatives */
                w[i] = trial % 4 == 3 ? (double)rng_below(&r, 3) - 1 : rng_uniform(&r);
            CHECK(assignment_maximise(w, R, C, row_col) == CIRCD_OK);
            double got = pairing_total(w, R, C, row_col), want = brute_best(w, R, C, 0, 0, R <= C);
            if (fabs(got - want) > 1e-12) {
                wrong++;
                fprintf(stderr, "%dx%d trial %d: Hungarian %.15g, brute force %.15g\n", R, C, trial, got, want);
            }
            trials++;
        }
    }
    printf("assignment: %d random matrices (4x5, 5x4, 6x6 and edge shapes), %d differ from brute force\n", trials,
           wrong);
    CHECK(wrong == 0);

    /* Greedy takes 10 and is left with 0 + 5 = 15; the optimum is 9 + 9 + 5 = 23. */
    const double hand[9] = {10, 9, 0, 9, 0, 0, 0, 0, 5};
    int rc3[3];
    CHECK(assignment_maximise(hand, 3, 3, rc3) == CIRCD_OK);
    CHECK(rc3[0] == 1 && rc3[1] == 0 && rc3[2] == 2);

    /* The map: three teacher components, two student candidates — the weakest teacher component is unmapped. */
    const int teacher[3] = {5, 7, 11}, student[2] = {3, 8};
    const double sim[6] = {0.9, 0.1, 0.8, 0.7, 0.2, 0.3};
    struct component_map map;
    CHECK(component_map_assign(teacher, 3, student, 2, sim, &map) == CIRCD_OK);
    CHECK(map.n == 3);
    CHECK(map.teacher[0] == 5 && map.teacher[1] == 7 && map.teacher[2] == 11);
    CHECK(map.student[0] == 3 && map.student[1] == 8 && map.student[2] == -1);
    CHECK_NEAR(map.similarity[0], 0.9, 0);
    CHECK_NEAR(map.similarity[1], 0.7, 0);
    CHECK(isnan(map.similarity[2]));
    component_map_free(&map);
    CHECK(map.teacher == NULL && map.n == 0);
    CHECK(component_map_assign(teacher, 3, student, 0, sim, &map) == CIRCD_OK); /* no candidates at all */
    CHECK(map.n == 3 && map.student[0] == -1 && map.student[1] == -1 && map.student[2] == -1);
    component_map_free(&map);
    const double with_nan[6] = {0.9, NAN, 0.8, 0.7, 0.2, 0.3};
    CHECK(component_map_assign(teacher, 3, student, 2, with_nan, &map) == CIRCD_EINPUT);
    CHECK(map.n == 0 && map.student == NULL);
    CHECK(strstr(err_msg(), "not finite") != NULL);
}

/* ---- Strategy B: the global projection ---- */

/* The loss at (S, P) without touching any gradient buffer. */
static double projection_loss_only(struct global_projection *g, const float *Tm, const float *S, int rows,
                                   struct cka_workspace *w, float *scratch)
{
    float *saved = testing_copy(g->dp, (size_t)g->d_student * g->d_teacher);
    double loss = global_projection_loss(g, Tm, S, rows, 1.0f, NULL, w, scratch);
    memcpy(g->dp, saved, (size_t)g->d_student * g->d_teacher * sizeof(float));
    free(saved);
    return loss;
}

static void projection_gradients(int unbiased)
{
    enum { ROWS = 12, DS = 5, DT = 4 };
    struct rng r;
    rng_seed(&r, 21 + unbiased);
    float *Tm = testing_randn(&r, ROWS * DT, 1), *S = testing_randn(&r, ROWS * DS, 1);
    struct global_projection g;
    CHECK(global_projection_init(&g, DS, DT, 3) == CIRCD_OK);
    g.unbiased = unbiased;
    struct cka_workspace w;
    CHECK(cka_workspace_init(&w, ROWS, DT, DT) == CIRCD_OK);
    float scratch[2 * ROWS * DT], dS[ROWS * DS];
    const float weight = 0.75f;
    for (int i = 0; i < ROWS * DS; i++) dS[i] = 1.0f; /* gradients accumulate */
    double loss = global_projection_loss(&g, Tm, S, ROWS, weight, dS, &w, scratch);
    CHECK(loss > 0 && loss < 1.5);
    float fd_S[ROWS * DS], fd_P[DS * DT], got_S[ROWS * DS];
    const float eps = 1e-2f;
    for (int i = 0; i < ROWS * DS; i++) {
        float keep = S[i];
        S[i] = keep + eps;
        double up = projection_loss_only(&g, Tm, S, ROWS, &w, scratch);
        S[i] = keep - eps;
        double down = projection_loss_only(&g, Tm, S, ROWS, &w, scratch);
        S[i] = keep;
        fd_S[i] = (float)(weight * (up - down) / (2 * eps));
        got_S[i] = dS[i] - 1.0f;
    }
    for (int i = 0; i < DS * DT; i++) {
        float keep = g.p[i];
        g.p[i] = keep + eps;
        double up = projection_loss_only(&g, Tm, S, ROWS, &w, scratch);
        g.p[i] = keep - eps;
        double down = projection_loss_only(&g, Tm, S, ROWS, &w, scratch);
        g.p[i] = keep;
        fd_P[i] = (float)(weight * (up - down) / (2 * eps));
    }
    double norm_S = sqrt(dot(got_S, got_S, ROWS * DS)), norm_P = sqrt(dot(g.dp, g.dp, DS * DT));
    double err_S = 0, err_P = 0;
    for (int i = 0; i < ROWS * DS; i++) err_S = fmax(err_S, fabs((double)got_S[i] - fd_S[i]));
    for (int i = 0; i < DS * DT; i++) err_P = fmax(err_P, fabs((double)g.dp[i] - fd_P[i]));
    printf("projection gradients (%s CKA), loss %.4f: |dS| %.4g (worst error vs differences %.2g), |dP| %.4g (%.2g)\n",
           unbiased ? "unbiased" : "biased", loss, norm_S, err_S, norm_P, err_P);
    CHECK(norm_S > 1e-3 && norm_P > 1e-3);
    CHECK_CLOSE(got_S, fd_S, ROWS * DS, 5e-3, 3e-4 * norm_S);
    CHECK_CLOSE(g.dp, fd_P, DS * DT, 5e-3, 3e-4 * norm_P);

    /* A workspace too small: NAN, and nothing added. */
    struct cka_workspace small;
    CHECK(cka_workspace_init(&small, ROWS - 1, DT, DT) == CIRCD_OK);
    float dp0 = g.dp[0], ds0 = dS[0];
    CHECK(isnan(global_projection_loss(&g, Tm, S, ROWS, 1.0f, dS, &small, scratch)));
    CHECK(g.dp[0] == dp0 && dS[0] == ds0);
    cka_workspace_free(&small);

    cka_workspace_free(&w);
    global_projection_free(&g);
    CHECK(g.p == NULL);
    free(Tm);
    free(S);
}

/* Optimising P alone where the teacher state is a linear image of the student's: 1 − CKA goes to 0. */
static void projection_fit(void)
{
    enum { ROWS = 64, DS = 12, DT = 8, STEPS = 300 };
    struct rng r;
    rng_seed(&r, 99);
    float *S = testing_randn(&r, ROWS * DS, 1), *A = testing_randn(&r, DS * DT, 1), Tm[ROWS * DT];
    for (int i = 0; i < ROWS; i++)
        for (int j = 0; j < DT; j++) {
            double s = 0;
            for (int k = 0; k < DS; k++) s += (double)S[i * DS + k] * A[k * DT + j];
            Tm[i * DT + j] = (float)s;
        }
    struct global_projection g;
    CHECK(global_projection_init(&g, DS, DT, 7) == CIRCD_OK);
    struct cka_workspace w;
    CHECK(cka_workspace_init(&w, ROWS, DT, DT) == CIRCD_OK);
    float scratch[2 * ROWS * DT];
    double first = NAN, last = NAN;
    printf("projection fit, 1 - CKA:");
    for (int step = 0; step < STEPS; step++) {
        memset(g.dp, 0, sizeof(float) * DS * DT);
        double loss = global_projection_loss(&g, Tm, S, ROWS, 1.0f, NULL, &w, scratch);
        if (step == 0) first = loss;
        last = loss;
        if (step % 50 == 0) printf(" %d: %.5f", step, loss);
        global_projection_step(&g, 2e-2f, 0.0f);
    }
    printf(" %d: %.2e\n", STEPS - 1, last);
    CHECK(g.step == STEPS);
    CHECK(first > 0.05);
    CHECK(last < 1e-3);
    cka_workspace_free(&w);
    global_projection_free(&g);
    free(S);
    free(A);
}

static void test_projection(void)
{
    struct global_projection g;
    CHECK(global_projection_init(&g, 0, 4, 1) == CIRCD_EINPUT && g.p == NULL);
    CHECK(global_projection_init(&g, 400, 300, 1) == CIRCD_OK);
    double s2 = 0;
    for (int i = 0; i < 400 * 300; i++) s2 += (double)g.p[i] * g.p[i];
    CHECK_NEAR(s2 / (400.0 * 300), 1.0 / 400, 0.05 / 400); /* N(0, 1/D_S) */
    CHECK(g.unbiased == 0 && g.step == 0 && g.dp[7] == 0 && g.m[7] == 0 && g.v[7] == 0);
    struct global_projection again;
    CHECK(global_projection_init(&again, 400, 300, 1) == CIRCD_OK);
    CHECK(memcmp(g.p, again.p, sizeof(float) * 400 * 300) == 0); /* seeded */
    global_projection_free(&again);
    /* One AdamW step with bias correction moves every weight by lr (sign of its gradient) at step 1. */
    for (int i = 0; i < 400 * 300; i++) g.dp[i] = i % 2 ? 3.0f : -0.001f;
    float p0 = g.p[0], p1 = g.p[1];
    global_projection_step(&g, 0.01f, 0.0f);
    CHECK(g.step == 1);
    CHECK_NEAR(g.p[0] - p0, 0.01, 1e-5);
    CHECK_NEAR(g.p[1] - p1, -0.01, 1e-5);
    global_projection_free(&g);

    projection_gradients(0);
    projection_gradients(1);
    projection_fit();
}

/* ---- Strategy A end to end on models ---- */

struct cached_model {
    struct llama_model m;
    struct circuit_graph g;
    float *z[4], *mlp[4];
};

static void cached_model_init(struct cached_model *c, const struct llama_config *cfg, uint64_t seed)
{
    CHECK(model_create(&c->m, cfg) == 0 && graph_init(&c->g, cfg) == 0);
    struct rng r;
    rng_seed(&r, seed);
    for (size_t i = 0; i < c->m.n_params; i++) c->m.params[i] = 0.4f * rng_normal(&r);
    for (int i = 0; i < c->m.n_tensors; i++)
        if (c->m.tensors[i].ndim == 1)
            for (size_t j = 0; j < c->m.tensors[i].numel; j++) c->m.params[c->m.tensors[i].offset + j] = 1.0f;
    for (int l = 0; l < cfg->n_layers; l++) {
        c->z[l] = malloc(hook_numel((struct hook_id){HOOK_ATTN_Z, l}, cfg, B, T) * sizeof(float));
        c->mlp[l] = malloc(hook_numel((struct hook_id){HOOK_MLP_OUT, l}, cfg, B, T) * sizeof(float));
    }
}

/* The caller's side of component_map_build: one forward with every layer's hook_z and hook_mlp_out cached. */
static void cached_model_forward(struct cached_model *c, const int32_t *tokens)
{
    model_hooks_clear(&c->m);
    for (int l = 0; l < c->m.config.n_layers; l++) {
        struct hook_request z = {{HOOK_ATTN_Z, l}, HOOK_CACHE, c->z[l], -1, -1};
        struct hook_request mlp = {{HOOK_MLP_OUT, l}, HOOK_CACHE, c->mlp[l], -1, -1};
        CHECK(model_hook_add(&c->m, &z) == 0 && model_hook_add(&c->m, &mlp) == 0);
    }
    CHECK(model_forward(&c->m, tokens, NULL, B, T) == 0);
    model_hooks_clear(&c->m);
}

static void cached_model_free(struct cached_model *c)
{
    for (int l = 0; l < c->m.config.n_layers; l++) { free(c->z[l]); free(c->mlp[l]); }
    graph_free(&c->g);
    model_free(&c->m);
}

static void test_map_build(void)
{
    struct llama_config cfg = config(16, 2, 4, 2);
    struct cached_model teacher, student;
    cached_model_init(&teacher, &cfg, 77);
    cached_model_init(&student, &cfg, 78);
    memcpy(student.m.params, teacher.m.params, teacher.m.n_params * sizeof(float)); /* the same weights */
    int32_t tokens[B * T];
    struct rng r;
    rng_seed(&r, 3);
    for (int i = 0; i < B * T; i++) tokens[i] = (int32_t)rng_below(&r, (uint64_t)cfg.vocab_size);
    cached_model_forward(&teacher, tokens);
    cached_model_forward(&student, tokens);
    unsigned char mask[B * T];
    for (int i = 0; i < B * T; i++) mask[i] = (unsigned char)(i % T != 0); /* the first position left out */

    /* Every component of the teacher; the student's candidates are the same components in a shuffled order. */
    int n = teacher.g.n_up - 1, ups[16], cand[16];
    for (int i = 0; i < n; i++) ups[i] = i + 1;
    for (int i = 0; i < n; i++) cand[i] = ups[(i * 7 + 3) % n]; /* 7 is coprime with n = 10 */
    struct component_source ts = {&teacher.m, &teacher.g, teacher.z, teacher.mlp};
    struct component_source ss = {&student.m, &student.g, student.z, student.mlp};
    double sim[16 * 16];
    struct component_map map;
    for (int unbiased = 0; unbiased <= 1; unbiased++) {
        CHECK(component_map_build(&ts, ups, n, &ss, cand, n, B, T, mask, unbiased, &map, sim) == CIRCD_OK);
        int same = 0;
        double worst_diag = 1, best_off = -1;
        for (int i = 0; i < n; i++) {
            same += map.teacher[i] == ups[i] && map.student[i] == ups[i] && fabs(map.similarity[i] - 1) < 1e-5;
            for (int j = 0; j < n; j++) {
                double s = sim[i * n + j];
                if (cand[j] == ups[i] && s < worst_diag) worst_diag = s;
                if (cand[j] != ups[i] && s > best_off) best_off = s;
            }
        }
        printf("copied model (%s CKA): %d of %d components map onto themselves, lowest self-CKA %.7f, highest "
               "other %.4f\n", unbiased ? "unbiased" : "biased", same, n, worst_diag, best_off);
        CHECK(same == n);
        CHECK_NEAR(worst_diag, 1, 1e-5);
        CHECK(best_off < 0.999);
        component_map_free(&map);
    }

    /* Fewer candidates (three heads and an MLP): they map onto themselves, everything else stays unmapped. */
    int few[4] = {graph_up_mlp(&student.g, 1), graph_up_head(&student.g, 0, 1), graph_up_head(&student.g, 1, 3),
                  graph_up_head(&student.g, 1, 0)};
    CHECK(component_map_build(&ts, ups, n, &ss, few, 4, B, T, mask, 0, &map, NULL) == CIRCD_OK);
    int mapped = 0, self = 0;
    for (int i = 0; i < n; i++) {
        mapped += map.student[i] >= 0;
        self += map.student[i] == ups[i] && fabs(map.similarity[i] - 1) < 1e-5;
        if (map.student[i] < 0) CHECK(isnan(map.similarity[i]));
    }
    CHECK(mapped == 4 && self == 4);
    component_map_free(&map);

    /* A smaller student of another shape: a valid map with CKA in [0, 1]. */
    struct llama_config small_cfg = config(8, 1, 2, 1);
    struct cached_model small;
    cached_model_init(&small, &small_cfg, 5);
    cached_model_forward(&small, tokens);
    struct component_source sm = {&small.m, &small.g, small.z, small.mlp};
    int small_ups[3] = {1, 2, 3};
    CHECK(component_map_build(&ts, ups, n, &sm, small_ups, 3, B, T, NULL, 0, &map, sim) == CIRCD_OK);
    int used[4] = {0}, count = 0, in_range = 1;
    for (int i = 0; i < n; i++) {
        if (map.student[i] >= 0) { used[map.student[i]]++; count++; }
        for (int j = 0; j < 3; j++) in_range &= sim[i * 3 + j] >= -1e-6 && sim[i * 3 + j] <= 1 + 1e-6;
    }
    CHECK(count == 3 && used[1] == 1 && used[2] == 1 && used[3] == 1 && in_range);
    component_map_free(&map);

    /* Errors: the input node is no component; too few rows for the estimator. */
    int with_input[2] = {1, 0};
    CHECK(component_map_build(&ts, ups, 2, &ss, with_input, 2, B, T, mask, 0, &map, NULL) == CIRCD_EINPUT);
    CHECK(map.n == 0 && map.student == NULL && strstr(err_msg(), "student") != NULL);
    unsigned char three[B * T] = {1, 1, 1};
    CHECK(component_map_build(&ts, ups, 2, &ss, cand, 2, B, T, three, 1, &map, NULL) == CIRCD_EINPUT);
    CHECK(component_map_build(&ts, ups, 2, &ss, cand, 2, B, T, three, 0, &map, NULL) == CIRCD_OK);
    component_map_free(&map);

    cached_model_free(&small);
    cached_model_free(&teacher);
    cached_model_free(&student);
}

int main(void)
{
    test_gather_scatter();
    test_assignment();
    test_projection();
    test_map_build();
    return testing_finish();
}
