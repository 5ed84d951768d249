/* test_handbuilt.c — attribution patching on a hand-built model whose answer flows through one known head.
 *
 * The model (vocabulary 8, d_model 12, 2 layers of 2 heads, head_dim 4): tokens are one-hot in dims 0..7. Head 1 of
 * layer 1 ("the mover") attends from the query token 7 to the operand token (1, 2 or 3) — its queries and keys live
 * in the RoPE pair that rotates by 0.01 rad per position, so the attention is content-based — and copies the
 * operand's identity into answer dims 8..10; lm_head reads answer dim 8 + i as token 4 + i. Every other weight is
 * small and random, so every other node matters a little. RMSNorm eps is 1e10 with weights 1e5: in float32 var + eps
 * == eps, so every norm is exactly linear and M is linear in everything layer 1 writes into the residual stream.
 *
 * Checks: AtP and exact patching both rank blocks.1.attn.hook_z[1] first among all nodes; for the nodes whose
 * effect on M is linear (layer 1's heads and MLP) AtP equals exact patching to rounding, while layer 0's nodes
 * (through attention and SwiGLU) are only approximately linear; at edge level, the mover's edge into the logits has
 * an EAP score equal to ablating that single edge, and the circuit of the mover's edges keeps the behaviour. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "circuits/edge_forward.h"
#include "circuits/edges.h"
#include "circuits/faithfulness.h"
#include "circuits/nodes.h"
#include "testing.h"
#include "util/rng.h"

enum { V = 8, D = 12, L = 2, H = 2, HD = 4, FF = 4, T = 4, B = 3, MOVER = 1 };

static struct llama_config config(void)
{
    struct llama_config c = testing_config(V, D, L, H, H, HD, FF, 8);
    c.norm_eps = 1e10f; /* var + eps == eps in float32: every norm is linear */
    return c;
}

static void build(struct llama_model *m)
{
    struct rng r;
    rng_seed(&r, 5);
    for (size_t i = 0; i < m->n_params; i++) m->params[i] = 0.01f * rng_normal(&r);
    for (int t = 0; t < V; t++)
        for (int j = 0; j < D; j++) m->w.embed[t * D + j] = t == j ? 1.0f : 0.0f;
    const float gain = 1e5f; /* norm weight: with eps 1e10 every norm is x * 1e5 / 1e5 */
    for (int j = 0; j < D; j++) m->w.norm[j] = gain;
    for (int l = 0; l < L; l++)
        for (int j = 0; j < D; j++) m->w.layers[l].ln1[j] = m->w.layers[l].ln2[j] = gain;
    struct layer_params *p = &m->w.layers[1];
    int q0 = MOVER * HD; /* the mover's rows in wq / wk / wv, columns in wo */
    for (int i = 0; i < HD; i++)
        for (int j = 0; j < D; j++) p->wq[(q0 + i) * D + j] = p->wk[(q0 + i) * D + j] = p->wv[(q0 + i) * D + j] = 0;
    p->wq[(q0 + 1) * D + 7] = 8.0f;                                  /* the query token asks ... */
    for (int t = 1; t <= 3; t++) p->wk[(q0 + 1) * D + t] = 8.0f;    /* ... for an operand token */
    for (int t = 1; t <= 3; t++) p->wv[(q0 + t - 1) * D + t] = 1.0f; /* v = the operand's one-hot */
    for (int j = 0; j < D; j++)
        for (int i = 0; i < HD; i++) p->wo[j * H * HD + q0 + i] = 0;
    for (int i = 0; i < 3; i++) p->wo[(8 + i) * H * HD + q0 + i] = 1.0f; /* into answer dims 8..10 */
    for (int v = 0; v < V; v++)
        for (int j = 8; j < 11; j++) m->w.lm_head[v * D + j] = v >= 4 && v <= 6 && j == 8 + v - 4 ? 4.0f : 0.0f;
}

/* Rows [0, a, b, 7] with a in 1..3 (answer 3 + a), partners with another a. */
static void pairs(struct pair_batch *pb)
{
    static const int a[B] = {1, 2, 3}, a_cf[B] = {2, 3, 1}, b[B] = {4, 6, 5};
    for (int r = 0; r < B; r++) {
        int32_t clean[T] = {0, a[r], b[r], 7}, corrupt[T] = {0, a_cf[r], b[r], 7};
        memcpy(pb->clean + r * T, clean, sizeof clean);
        memcpy(pb->corrupt + r * T, corrupt, sizeof corrupt);
        pb->pairs[r] = (struct arith_metric_pair){T, T - 1, 0, 3 + a[r], 3 + a_cf[r]};
    }
    pb->B = B;
    pb->T = T;
}

static int argmax_abs(const double *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (fabs(x[i]) > fabs(x[best])) best = i;
    return best;
}

static void test_nodes(struct llama_model *m, const struct pair_batch *pb)
{
    struct node_scores atp, exact;
    CHECK(node_scores_init(&atp, &m->config) == 0 && node_scores_init(&exact, &m->config) == 0);
    CHECK(atp_nodes_batch(m, pb, &atp) == 0);
    CHECK(exact_patch_nodes_batch(m, pb, &exact) == 0);
    /* The behaviour is there: M clean = +4 per row, corrupt = -4 (the mover copies the operand). */
    CHECK_NEAR(atp.metric_clean_sum / B, 4.0, 0.05);
    CHECK_NEAR(atp.metric_corrupt_sum / B, -4.0, 0.05);
    int mover = 1 * H + MOVER;
    CHECK(argmax_abs(atp.signed_sum, atp.n_nodes) == mover);
    CHECK(argmax_abs(exact.signed_sum, exact.n_nodes) == mover);
    CHECK_NEAR(exact.signed_sum[mover] / B, -8.0, 0.1); /* patching the mover moves M from +4 to -4 */
    /* Linear nodes: layer 1's heads and MLP. AtP = exact to float rounding. */
    int linear[] = {1 * H + 0, 1 * H + 1, L * H + 1};
    for (size_t i = 0; i < sizeof linear / sizeof *linear; i++) {
        int n = linear[i];
        CHECK_NEAR(atp.signed_sum[n], exact.signed_sum[n], 1e-5 * (1 + fabs(exact.signed_sum[n])));
        CHECK_NEAR(atp.abs_sum[n], exact.abs_sum[n], 1e-5 * (1 + fabs(exact.abs_sum[n])));
    }
    /* The layer-1 non-mover head is weak but not nothing, so the equality above is not 0 == 0. */
    CHECK(fabs(exact.signed_sum[1 * H + 0]) > 1e-6);
    /* Layer 0's nodes reach M through attention and SwiGLU: AtP only approximates exact patching there. */
    double worst_rel = 0;
    for (int n = 0; n < H; n++)
        worst_rel = fmax(worst_rel, fabs(atp.signed_sum[n] - exact.signed_sum[n]) / (fabs(exact.signed_sum[n]) + 1e-12));
    printf("layer-0 heads: largest relative |AtP - exact| = %.3g (nonlinear path)\n", worst_rel);
    node_scores_free(&atp);
    node_scores_free(&exact);
}

static void test_edges(struct llama_model *m, const struct pair_batch *pb)
{
    struct circuit_graph g;
    struct edge_scores s;
    CHECK(graph_init(&g, &m->config) == 0);
    CHECK(edge_scores_init(&s, &g) == 0);
    CHECK(eap_edges_batch(m, pb, 0, &s) == 0);
    int mover = graph_up_head(&g, 1, MOVER), logits = graph_down_logits(&g);
    /* The strongest edge is the mover's into the logits. */
    size_t best = 0;
    for (size_t i = 0; i < (size_t)g.n_up * g.n_down; i++)
        if (g.real[i] && fabs(s.signed_sum[i]) > fabs(s.signed_sum[best])) best = i;
    CHECK(best == graph_edge_index(&g, mover, logits));
    /* It is linear: its score equals ablating exactly that edge (alpha = 1) with corrupt values. */
    struct edge_runner run;
    CHECK(edge_runner_init(&run, m, &g, B, T) == 0);
    size_t numel = edge_outputs_numel(&run, m, B, T);
    float *corrupt = malloc(numel * sizeof *corrupt);
    float *alpha = calloc((size_t)g.n_up * g.n_down, sizeof *alpha);
    double clean_m[B], ablated_m[B];
    CHECK(edge_forward(&run, m, pb->corrupt, B, T, NULL, NULL) == 0);
    memcpy(corrupt, run.outputs, numel * sizeof *corrupt);
    CHECK(edge_forward(&run, m, pb->clean, B, T, NULL, NULL) == 0);
    edge_metric_rows(&run, m, pb, clean_m);
    alpha[graph_edge_index(&g, mover, logits)] = 1;
    CHECK(edge_forward(&run, m, pb->clean, B, T, alpha, corrupt) == 0);
    edge_metric_rows(&run, m, pb, ablated_m);
    double effect = 0;
    for (int r = 0; r < B; r++) effect += ablated_m[r] - clean_m[r];
    double score = s.signed_sum[graph_edge_index(&g, mover, logits)];
    CHECK_NEAR(score, effect, 1e-5 * fabs(effect));
    CHECK_NEAR(effect / B, -8.0, 0.1);
    /* The circuit of the 3 strongest edges (by |score|) keeps the behaviour; the empty circuit loses it. */
    struct faithfulness f;
    CHECK(faithfulness_init(&f, m, &g, pb, 1, ABLATION_COUNTERFACTUAL) == 0);
    struct circuit c;
    CHECK(circuit_alloc(&c, &g) == 0);
    circuit_top_edges(&c, s.signed_sum, 3, 1);
    CHECK(c.edges[graph_edge_index(&g, mover, logits)] &&
          c.edges[graph_edge_index(&g, 0, graph_down_head(&g, 1, MOVER, GRAPH_V))]);
    double metric;
    CHECK(faithfulness_metrics(&f, &c, 1, &metric) == 0);
    double faith = faithfulness_normalise(&f, metric);
    printf("faithfulness of the 3-edge circuit: %.4f (edges %zu)\n", faith, circuit_edge_count(&c));
    CHECK(faith > 0.95 && faith < 1.05);
    circuit_free(&c);
    faithfulness_free(&f);
    free(corrupt);
    free(alpha);
    edge_runner_free(&run);
    edge_scores_free(&s);
    graph_free(&g);
}

int main(void)
{
    struct llama_config cfg = config();
    struct llama_model m;
    struct pair_batch pb;
    CHECK(model_create(&m, &cfg) == 0);
    build(&m);
    CHECK(pair_batch_alloc(&pb, B, T) == 0);
    pairs(&pb);
    test_nodes(&m, &pb);
    test_edges(&m, &pb);
    pair_batch_free(&pb);
    model_free(&m);
    return testing_finish();
}
