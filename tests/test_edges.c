/* test_edges.c — edge attribution patching and EAP-IG (edges.h) on tiny random models with grouped-query (4 heads,
 * 2 kv heads) and multi-head attention: the per-downstream input gradients against the model's own residual and
 * grouped k/v gradients, every edge score against the derivative of M along edge_forward's ablation weight, edge
 * sums against node AtP, EAP-IG's endpoint and its convergence to M(corrupt) - M(clean), per-pair absolute sums,
 * errors; and the cost against a forward on a larger model (printed). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "circuits/edge_forward.h"
#include "circuits/edges.h"
#include "kernels/kernels.h"
#include "testing.h"
#include "util/error.h"

enum { B = 3, T = 6 };

static struct llama_config config(int n_heads, int n_kv_heads)
{
    return testing_config(13, 16, 2, n_heads, n_kv_heads, 4, 24, 32);
}

static void random_model(struct llama_model *m, const struct llama_config *cfg, uint64_t seed, float scale)
{
    CHECK(model_create(m, cfg) == 0);
    struct rng r;
    rng_seed(&r, seed);
    for (size_t i = 0; i < m->n_params; i++) m->params[i] = scale * rng_normal(&r);
    for (int i = 0; i < m->n_tensors; i++) /* norms near 1 */
        if (m->tensors[i].ndim == 1)
            for (size_t j = 0; j < m->tensors[i].numel; j++) m->params[m->tensors[i].offset + j] += 1.0f;
    CHECK(model_enable_grads(m) == 0);
}

/* Rows of random tokens; the counterfactual changes one or two prompt tokens. */
static void random_pairs(struct pair_batch *pb, int rows, int cols, int vocab, uint64_t seed)
{
    struct rng r;
    rng_seed(&r, seed);
    CHECK(pair_batch_alloc(pb, rows, cols) == 0);
    pb->B = rows;
    pb->T = cols;
    for (int i = 0; i < rows * cols; i++) pb->corrupt[i] = pb->clean[i] = (int32_t)rng_below(&r, (uint64_t)vocab);
    for (int b = 0; b < rows; b++) {
        pb->corrupt[b * cols + 1] = (pb->clean[b * cols + 1] + 3) % vocab;
        if (b % 3 == 2) pb->corrupt[b * cols + 3] = (pb->clean[b * cols + 3] + 5) % vocab;
        pb->pairs[b] = (struct arith_metric_pair){.length = cols - 1 - b % 2, .position = cols - 2 - b % 2,
                                                  .prefix_len = 0, .clean_id = 2 + b % 5, .cf_id = 7};
    }
}

/* pb with clean and corrupt exchanged (same metric tokens and positions), or only row b of pb. */
static void swapped_pairs(struct pair_batch *out, const struct pair_batch *pb)
{
    CHECK(pair_batch_alloc(out, pb->B, pb->T) == 0);
    out->B = pb->B;
    out->T = pb->T;
    memcpy(out->clean, pb->corrupt, (size_t)pb->B * pb->T * sizeof(int32_t));
    memcpy(out->corrupt, pb->clean, (size_t)pb->B * pb->T * sizeof(int32_t));
    memcpy(out->pairs, pb->pairs, (size_t)pb->B * sizeof *pb->pairs);
}

static void one_row(struct pair_batch *out, const struct pair_batch *pb, int b)
{
    CHECK(pair_batch_alloc(out, 1, pb->T) == 0);
    out->B = 1;
    out->T = pb->T;
    memcpy(out->clean, pb->clean + (size_t)b * pb->T, (size_t)pb->T * sizeof(int32_t));
    memcpy(out->corrupt, pb->corrupt + (size_t)b * pb->T, (size_t)pb->T * sizeof(int32_t));
    out->pairs[0] = pb->pairs[b];
}

static double max_abs(const float *x, size_t n)
{
    double mx = 0;
    for (size_t i = 0; i < n; i++) mx = fabs(x[i]) > mx ? fabs(x[i]) : mx;
    return mx;
}

/* (1), (2): a layer's q/k/v input gradients plus the direct path give the model's resid_pre gradient, the MLP
 * input's plus the direct path its resid_mid gradient; the k (v) inputs of the query heads of one group differ and
 * add up to the model's grouped kv-head gradient taken through W_k (W_v) and the input norm. */
static void test_input_grads(struct llama_model *m, const struct pair_batch *pb)
{
    const struct llama_config *c = &m->config;
    int L = c->n_layers, H = c->n_heads, KV = c->n_kv_heads, hd = c->head_dim, d = c->d_model, group = H / KV;
    int N = pb->B * pb->T, inputs = 3 * H + 1;
    size_t Nd = (size_t)N * d, Nkv = (size_t)N * KV * hd;
    struct input_grads ig;
    CHECK(input_grads_alloc(&ig, c, pb->B, pb->T) == 0);
    float *pre = malloc(L * Nd * sizeof(float)), *mid = malloc(L * Nd * sizeof(float));
    float *post = malloc(L * Nd * sizeof(float)), *dk = malloc(L * Nkv * sizeof(float));
    float *dv = malloc(L * Nkv * sizeof(float)), *grads = malloc(inputs * Nd * sizeof(float));
    float *sum = malloc(Nd * sizeof(float)), *slice = malloc((size_t)N * hd * sizeof(float));
    float *dln = malloc(Nd * sizeof(float)), *want = malloc(Nd * sizeof(float));
    float *dlogits = calloc((size_t)N * c->vocab_size, sizeof(float));

    model_hooks_clear(m);
    CHECK(input_grads_register(&ig, m) == 0);
    for (int l = 0; l < L; l++) {
        struct hook_request r[5] = {{{HOOK_RESID_PRE, l}, HOOK_GRAD, pre + l * Nd, -1, -1},
                                    {{HOOK_RESID_MID, l}, HOOK_GRAD, mid + l * Nd, -1, -1},
                                    {{HOOK_RESID_POST, l}, HOOK_GRAD, post + l * Nd, -1, -1},
                                    {{HOOK_ATTN_K, l}, HOOK_GRAD, dk + l * Nkv, -1, -1},
                                    {{HOOK_ATTN_V, l}, HOOK_GRAD, dv + l * Nkv, -1, -1}};
        for (int i = 0; i < 5; i++) CHECK(model_hook_add(m, &r[i]) == 0);
    }
    CHECK(model_forward(m, pb->clean, NULL, pb->B, pb->T) == 0);
    metric_dlogits(pb, c->vocab_size, dlogits);
    model_zero_grad(m);
    CHECK(model_backward(m, dlogits) == 0);
    model_hooks_clear(m);

    for (int l = 0; l < L; l++) {
        input_grads_layer(&ig, m, l, grads);
        memcpy(sum, mid + l * Nd, Nd * sizeof(float));
        for (int j = 0; j < 3 * H; j++) vec_accumulate(sum, grads + j * Nd, Nd);
        double scale = max_abs(pre + l * Nd, Nd);
        CHECK(scale > 1e-3);
        CHECK_CLOSE(sum, pre + l * Nd, Nd, 1e-4, 1e-5 * scale);
        vec_add(sum, post + l * Nd, grads + 3 * H * Nd, Nd);
        CHECK_CLOSE(sum, mid + l * Nd, Nd, 1e-4, 1e-5 * max_abs(mid + l * Nd, Nd));

        const struct layer_acts *a = &m->acts.layers[l];
        const struct layer_params *p = &m->w.layers[l];
        for (int kv = 0; kv < KV; kv++)
            for (int j = GRAPH_K; j <= GRAPH_V; j++) {
                const float *grouped = (j == GRAPH_K ? dk : dv) + l * Nkv;
                const float *w = (j == GRAPH_K ? p->wk : p->wv) + (size_t)kv * hd * d;
                for (int i = 0; i < N; i++) memcpy(slice + (size_t)i * hd, grouped + ((size_t)i * KV + kv) * hd,
                                                   hd * sizeof(float));
                vec_zero(dln, Nd);
                matmul_backward(dln, NULL, slice, a->ln1, w, N, d, hd);
                vec_zero(want, Nd);
                rmsnorm_backward(want, NULL, dln, a->resid_pre, p->ln1, a->ln1_rstd, N, d);
                vec_zero(sum, Nd);
                for (int h = kv * group; h < (kv + 1) * group; h++) vec_accumulate(sum, grads + (j * H + h) * Nd, Nd);
                double scale_kv = max_abs(want, Nd);
                CHECK_CLOSE(sum, want, Nd, 1e-4, 1e-5 * scale_kv + 1e-9);
                if (group > 1) { /* two query heads of the group: their own inputs differ materially */
                    const float *g0 = grads + (j * H + kv * group) * Nd, *g1 = g0 + Nd;
                    double diff = 0;
                    for (size_t i = 0; i < Nd; i++) diff = fmax(diff, fabs(g0[i] - g1[i]));
                    CHECK(diff > 0.05 * fmax(max_abs(g0, Nd), max_abs(g1, Nd)));
                    CHECK(max_abs(g0, Nd) > 1e-4);
                }
            }
    }
    input_grads_logits(&ig, m, grads);
    CHECK_CLOSE(grads, post + (L - 1) * Nd, Nd, 0, 0);
    input_grads_free(&ig);
    free(pre); free(mid); free(post); free(dk); free(dv); free(grads); free(sum); free(slice); free(dln);
    free(want); free(dlogits);
}

/* The sum of M over rows after a forward of tokens. */
static double metric_sum(struct llama_model *m, const struct pair_batch *pb, const int32_t *tokens)
{
    double rows[64], s = 0;
    CHECK(pb->B <= 64);
    CHECK(model_forward(m, tokens, NULL, pb->B, pb->T) == 0);
    metric_rows(m, pb, rows);
    for (int b = 0; b < pb->B; b++) s += rows[b];
    return s;
}

/* (3): the sum of an upstream node's edge scores is its node score (heads: Δz · dM/dz, MLPs: Δmlp_out ·
 * dM/dmlp_out; input: Δembed · dM/dembed, measured here with a gradient hook). */
static void check_edge_sums(const struct edge_scores *e, const struct node_scores *n, const char *what)
{
    const struct circuit_graph *g = e->g;
    int bad = 0;
    for (int i = 0; i < n->n_nodes; i++) {
        int u = graph_up_from_node(g, i);
        double sum = 0;
        for (int d = 0; d < g->n_down; d++) sum += e->signed_sum[graph_edge_index(g, u, d)];
        double want = n->signed_sum[i];
        if (fabs(sum - want) > 1e-5 + 1e-4 * fabs(want)) {
            bad++;
            fprintf(stderr, "%s node %d: edge sum %.8g, node score %.8g\n", what, i, sum, want);
        }
    }
    CHECK(bad == 0);
}

/* Δembed · dM/dembed summed over rows: the input node's total effect, at the clean input. */
static double input_node_score(struct llama_model *m, const struct pair_batch *pb)
{
    size_t Nd = (size_t)pb->B * pb->T * m->config.d_model;
    float *corrupt = malloc(Nd * sizeof(float)), *grad = malloc(Nd * sizeof(float));
    float *dlogits = calloc((size_t)pb->B * pb->T * m->config.vocab_size, sizeof(float));
    model_hooks_clear(m);
    CHECK(model_forward(m, pb->corrupt, NULL, pb->B, pb->T) == 0);
    memcpy(corrupt, m->acts.embed, Nd * sizeof(float));
    struct hook_request r = {{HOOK_EMBED, -1}, HOOK_GRAD, grad, -1, -1};
    CHECK(model_hook_add(m, &r) == 0);
    CHECK(model_forward(m, pb->clean, NULL, pb->B, pb->T) == 0);
    metric_dlogits(pb, m->config.vocab_size, dlogits);
    model_zero_grad(m);
    CHECK(model_backward(m, dlogits) == 0);
    model_hooks_clear(m);
    double s = 0;
    for (size_t i = 0; i < Nd; i++) s += ((double)corrupt[i] - m->acts.embed[i]) * grad[i];
    free(corrupt); free(grad); free(dlogits);
    return s;
}

static double input_edge_sum(const struct edge_scores *e)
{
    double s = 0;
    for (int d = 0; d < e->g->n_down; d++) s += e->signed_sum[graph_edge_index(e->g, 0, d)];
    return s;
}

/* (1): every real edge's score is dM/d alpha at 0 of edge_forward's ablation of that edge alone (ablated = the
 * corrupt run's outputs): input_d = resid - alpha (a - a') = resid + alpha Δ, so dM/d alpha = Δ · g = score. */
static void test_finite_differences(struct llama_model *m, const struct pair_batch *pb, const struct edge_scores *e)
{
    const struct circuit_graph *g = e->g;
    struct edge_runner r;
    CHECK(edge_runner_init(&r, m, g, pb->B, pb->T) == 0);
    size_t n_out = edge_outputs_numel(&r, m, pb->B, pb->T), E = (size_t)g->n_up * g->n_down;
    float *ablated = malloc(n_out * sizeof(float)), *alpha = calloc(E, sizeof(float));
    double rows[B], plain = 0;
    CHECK(edge_forward(&r, m, pb->corrupt, pb->B, pb->T, NULL, NULL) == 0);
    memcpy(ablated, r.outputs, n_out * sizeof(float));
    CHECK(edge_forward(&r, m, pb->clean, pb->B, pb->T, NULL, NULL) == 0);
    edge_metric_rows(&r, m, pb, rows);
    for (int b = 0; b < pb->B; b++) plain += rows[b];
    CHECK_NEAR(plain, e->metric_clean_sum, 1e-4);
    const double eps = 1e-2;
    int bad = 0, checked = 0, nonzero = 0;
    for (size_t i = 0; i < E; i++) {
        if (!g->real[i]) { CHECK(e->signed_sum[i] == 0); continue; }
        double side[2];
        for (int s = 0; s < 2; s++) {
            alpha[i] = (float)(s ? -eps : eps);
            CHECK(edge_forward(&r, m, pb->clean, pb->B, pb->T, alpha, ablated) == 0);
            edge_metric_rows(&r, m, pb, rows);
            side[s] = 0;
            for (int b = 0; b < pb->B; b++) side[s] += rows[b];
        }
        alpha[i] = 0;
        double derivative = (side[0] - side[1]) / (2 * eps), score = e->signed_sum[i];
        checked++;
        nonzero += fabs(score) > 1e-3;
        if (fabs(derivative - score) > 2e-3 + 2e-2 * fabs(derivative)) {
            char name[96];
            bad++;
            fprintf(stderr, "%s: EAP %.6g, d M / d alpha %.6g\n",
                    graph_edge_name(g, (int)(i / g->n_down), (int)(i % g->n_down), name, sizeof name), score,
                    derivative);
        }
    }
    printf("finite differences: %d edges, %d with |score| > 1e-3, %d off\n", checked, nonzero, bad);
    CHECK(checked == (int)g->n_edges);
    CHECK(nonzero > checked / 2);
    CHECK(bad == 0);
    free(ablated);
    free(alpha);
    edge_runner_free(&r);
}

static void test_model(int n_heads, int n_kv_heads, uint64_t seed)
{
    printf("-- %d heads, %d kv heads\n", n_heads, n_kv_heads);
    struct llama_config cfg = config(n_heads, n_kv_heads);
    struct llama_model m;
    random_model(&m, &cfg, seed, 0.4f);
    struct circuit_graph g;
    CHECK(graph_init(&g, &cfg) == 0);
    struct pair_batch pb, swapped;
    random_pairs(&pb, B, T, cfg.vocab_size, seed + 1);
    swapped_pairs(&swapped, &pb);
    test_input_grads(&m, &pb);

    /* plain EAP, and its sums against node AtP */
    struct edge_scores eap;
    struct node_scores atp;
    CHECK(edge_scores_init(&eap, &g) == 0 && node_scores_init(&atp, &cfg) == 0);
    CHECK(eap_edges_batch(&m, &pb, 0, &eap) == 0);
    CHECK(m.n_hooks == 0);
    CHECK(atp_nodes_batch(&m, &pb, &atp) == 0);
    CHECK(eap.pairs == B);
    double m_clean = metric_sum(&m, &pb, pb.clean), m_corrupt = metric_sum(&m, &pb, pb.corrupt);
    CHECK_NEAR(eap.metric_clean_sum, m_clean, 1e-6 * (1 + fabs(m_clean)));
    CHECK_NEAR(eap.metric_corrupt_sum, m_corrupt, 1e-6 * (1 + fabs(m_corrupt)));
    check_edge_sums(&eap, &atp, "EAP vs AtP");
    double input = input_node_score(&m, &pb);
    CHECK(fabs(input) > 1e-3);
    CHECK_NEAR(input_edge_sum(&eap), input, 1e-5 + 1e-4 * fabs(input));
    test_finite_differences(&m, &pb, &eap);

    /* per-pair absolute sums: each row alone, summed */
    double *abs_rows = calloc((size_t)g.n_up * g.n_down, sizeof(double));
    for (int b = 0; b < B; b++) {
        struct pair_batch row;
        struct edge_scores one;
        one_row(&row, &pb, b);
        CHECK(edge_scores_init(&one, &g) == 0);
        CHECK(eap_edges_batch(&m, &row, 0, &one) == 0);
        for (size_t i = 0; i < (size_t)g.n_up * g.n_down; i++) abs_rows[i] += fabs(one.signed_sum[i]);
        edge_scores_free(&one);
        pair_batch_free(&row);
    }
    int bad_abs = 0, differs = 0;
    for (size_t i = 0; i < (size_t)g.n_up * g.n_down; i++) {
        bad_abs += fabs(abs_rows[i] - eap.abs_sum[i]) > 1e-5 + 1e-4 * abs_rows[i];
        differs += eap.abs_sum[i] > fabs(eap.signed_sum[i]) + 1e-3;
    }
    CHECK(bad_abs == 0);
    CHECK(differs > 0); /* rows disagree in sign on some edges, so the test above can tell the sums apart */
    free(abs_rows);

    /* (4) EAP-IG with one step takes the gradients at the corrupt input: minus plain EAP of the swapped pairs */
    struct edge_scores ig1, eap_swapped;
    struct node_scores node_ig1, atp_swapped;
    CHECK(edge_scores_init(&ig1, &g) == 0 && edge_scores_init(&eap_swapped, &g) == 0);
    CHECK(node_scores_init(&node_ig1, &cfg) == 0 && node_scores_init(&atp_swapped, &cfg) == 0);
    CHECK(eap_edges_batch(&m, &pb, 1, &ig1) == 0);
    CHECK(eap_edges_batch(&m, &swapped, 0, &eap_swapped) == 0);
    CHECK(atp_nodes_ig_batch(&m, &pb, 1, &node_ig1) == 0);
    CHECK(atp_nodes_batch(&m, &swapped, &atp_swapped) == 0);
    CHECK(m.n_hooks == 0);
    int bad_ig1 = 0;
    for (size_t i = 0; i < (size_t)g.n_up * g.n_down; i++)
        bad_ig1 += fabs(ig1.signed_sum[i] + eap_swapped.signed_sum[i]) > 1e-5 + 1e-4 * fabs(ig1.signed_sum[i]);
    CHECK(bad_ig1 == 0);
    for (int i = 0; i < atp.n_nodes; i++)
        CHECK_NEAR(node_ig1.signed_sum[i], -atp_swapped.signed_sum[i], 1e-5 + 1e-4 * fabs(node_ig1.signed_sum[i]));
    CHECK_NEAR(ig1.metric_clean_sum, eap_swapped.metric_corrupt_sum, 1e-9 * (1 + fabs(m_clean)));
    check_edge_sums(&ig1, &node_ig1, "EAP-IG(1) vs node IG(1)");

    /* more steps: edge and node IG agree */
    struct edge_scores ig8;
    struct node_scores node_ig8;
    CHECK(edge_scores_init(&ig8, &g) == 0 && node_scores_init(&node_ig8, &cfg) == 0);
    CHECK(eap_edges_batch(&m, &pb, 8, &ig8) == 0);
    CHECK(atp_nodes_ig_batch(&m, &pb, 8, &node_ig8) == 0);
    check_edge_sums(&ig8, &node_ig8, "EAP-IG(8) vs node IG(8)");
    int moved = 0; /* the path matters: most edges move between one and eight steps */
    for (size_t i = 0; i < (size_t)g.n_up * g.n_down; i++) moved += fabs(ig8.signed_sum[i] - ig1.signed_sum[i]) > 1e-3;
    CHECK(moved > (int)g.n_edges / 2);
    edge_scores_free(&ig8);
    node_scores_free(&node_ig8);

    /* The input node's edges add up to Δe · (1/m) sum_k dM/de at e_k: a left Riemann sum of
     * -integral_0^1 dM(e' + a (e - e'))/da da = M(corrupt) - M(clean), with an error ~ c/m once m resolves the
     * path (these random models are far from linear: m in the hundreds). */
    double err[3];
    int steps[3] = {64, 256, 1024};
    for (int s = 0; s < 3; s++) {
        struct edge_scores ig;
        CHECK(edge_scores_init(&ig, &g) == 0);
        CHECK(eap_edges_batch(&m, &pb, steps[s], &ig) == 0);
        err[s] = input_edge_sum(&ig) - (m_corrupt - m_clean);
        printf("EAP-IG %4d steps: input edges sum %.6f, M(corrupt) - M(clean) %.6f, error %.3g\n", steps[s],
               input_edge_sum(&ig), m_corrupt - m_clean, err[s]);
        edge_scores_free(&ig);
    }
    CHECK(fabs(m_corrupt - m_clean) > 0.1);
    CHECK(fabs(err[2]) < 0.02 * fabs(m_corrupt - m_clean));
    CHECK(err[0] / err[1] > 3 && err[0] / err[1] < 5); /* first order: a quarter of the error with 4x the steps */
    CHECK(err[1] / err[2] > 3 && err[1] / err[2] < 5);

    /* (5) errors */
    CHECK(eap_edges_batch(&m, &pb, -1, &ig1) == CIRCD_EINPUT);
    CHECK(eap_edges_batch(&m, &pb, EDGES_MAX_IG_STEPS + 1, &ig1) == CIRCD_EINPUT);
    CHECK(strstr(err_msg(), "ig_steps") != NULL);
    CHECK(atp_nodes_ig_batch(&m, &pb, -3, &node_ig1) == CIRCD_EINPUT);
    CHECK(ig1.pairs == B && node_ig1.pairs == B); /* failed calls add nothing */
    struct llama_config other = config(n_heads, n_kv_heads);
    other.n_layers = 3;
    struct circuit_graph g3;
    struct edge_scores wrong;
    CHECK(graph_init(&g3, &other) == 0 && edge_scores_init(&wrong, &g3) == 0);
    CHECK(eap_edges_batch(&m, &pb, 0, &wrong) == CIRCD_EINPUT);
    CHECK(wrong.pairs == 0);
    edge_scores_free(&wrong);
    graph_free(&g3);

    edge_scores_free(&eap); edge_scores_free(&ig1); edge_scores_free(&eap_swapped);
    node_scores_free(&atp); node_scores_free(&node_ig1); node_scores_free(&atp_swapped);
    pair_batch_free(&pb);
    pair_batch_free(&swapped);
    graph_free(&g);
    model_free(&m);
}

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The cost of EAP against one forward of the same batch (printed, not asserted). */
static void report_cost(void)
{
    struct llama_config cfg = config(4, 2);
    cfg.d_model = 128;
    cfg.head_dim = 32;
    cfg.d_ff = 344;
    cfg.n_layers = 4;
    cfg.vocab_size = 64;
    struct llama_model m;
    random_model(&m, &cfg, 5, 0.02f);
    struct circuit_graph g;
    struct edge_scores s;
    struct pair_batch pb;
    CHECK(graph_init(&g, &cfg) == 0 && edge_scores_init(&s, &g) == 0);
    random_pairs(&pb, 32, 20, cfg.vocab_size, 6);
    CHECK(model_forward(&m, pb.clean, NULL, pb.B, pb.T) == 0); /* warm-up */
    double t0 = seconds();
    for (int i = 0; i < 5; i++) CHECK(model_forward(&m, pb.clean, NULL, pb.B, pb.T) == 0);
    double forward = (seconds() - t0) / 5;
    t0 = seconds();
    CHECK(eap_edges_batch(&m, &pb, 0, &s) == 0);
    double eap = seconds() - t0;
    t0 = seconds();
    CHECK(eap_edges_batch(&m, &pb, 5, &s) == 0);
    double ig = seconds() - t0;
    printf("cost (d 128, L 4, H 4, KV 2, B 32, T 20, %zu edges): forward %.2f ms, EAP %.2f ms (%.1f forwards), "
           "EAP-IG 5 steps %.2f ms (%.1f forwards)\n",
           g.n_edges, forward * 1e3, eap * 1e3, eap / forward, ig * 1e3, ig / forward);
    edge_scores_free(&s);
    graph_free(&g);
    pair_batch_free(&pb);
    model_free(&m);
}

int main(void)
{
    test_model(4, 2, 11);
    test_model(4, 4, 23);
    report_cost();
    return testing_finish();
}
