/* test_faithfulness.c — MIB circuit evaluation on a tiny random GQA model: f(full) = 1 and f(empty) = 0 with both
 * ablation kinds, M(model) and counterfactual M(∅) against model_forward, a node circuit against hook patching of
 * every node outside it, mean ablation against means and logits computed by hand, the trapezoid areas in closed
 * form, top-n sizes, the curve and NFS, and refused inputs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "circuits/faithfulness.h"
#include "circuits/nodes.h"
#include "testing.h"
#include "util/error.h"

enum { N_BATCHES = 2, MAX_B = 3, MAX_T = 6 };
static const int batch_B[N_BATCHES] = {3, 2}, batch_T[N_BATCHES] = {6, 5};

struct setup {
    struct llama_config cfg;
    struct llama_model m;
    struct circuit_graph g;
    struct pair_batch pb[N_BATCHES];
};

static void setup_init(struct setup *s)
{
    struct llama_config c = {.vocab_size = 13, .d_model = 16, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                             .head_dim = 4, .d_ff = 24, .max_seq = 16, .rope_theta = 10000, .norm_eps = 1e-5f,
                             .bos_token_id = -1, .eos_token_id = -1};
    s->cfg = c;
    CHECK(model_create(&s->m, &c) == 0);
    struct rng r;
    rng_seed(&r, 5);
    for (size_t i = 0; i < s->m.n_params; i++) s->m.params[i] = 0.4f * rng_normal(&r);
    for (int i = 0; i < s->m.n_tensors; i++)
        if (s->m.tensors[i].ndim == 1)
            for (size_t j = 0; j < s->m.tensors[i].numel; j++) s->m.params[s->m.tensors[i].offset + j] = 1.0f;
    CHECK(graph_init(&s->g, &c) == 0);
    for (int k = 0; k < N_BATCHES; k++) {
        struct pair_batch *pb = &s->pb[k];
        CHECK(pair_batch_alloc(pb, MAX_B, MAX_T) == 0);
        pb->B = batch_B[k];
        pb->T = batch_T[k];
        for (int b = 0; b < pb->B; b++) {
            int length = pb->T - (b + k) % 2; /* some rows are one shorter (right-padded) */
            for (int t = 0; t < pb->T; t++) {
                int32_t *clean = &pb->clean[b * pb->T + t], *corrupt = &pb->corrupt[b * pb->T + t];
                *clean = t < length ? (int32_t)rng_below(&r, (uint64_t)c.vocab_size) : 0;
                *corrupt = t == 1 || t == 3 ? (*clean + 1 + b) % c.vocab_size : *clean;
            }
            pb->pairs[b] = (struct arith_metric_pair){.length = length, .position = length - 1, .prefix_len = 0,
                                                      .clean_id = 2 + b + k, .cf_id = 9};
        }
    }
}

static void setup_free(struct setup *s)
{
    for (int k = 0; k < N_BATCHES; k++) pair_batch_free(&s->pb[k]);
    graph_free(&s->g);
    model_free(&s->m);
}

/* Mean over the dataset of M from model_forward of clean (or corrupt) tokens with the current hooks. */
static double model_metric(struct setup *s, int corrupt)
{
    double sum = 0, rows[MAX_B];
    int n = 0;
    for (int k = 0; k < N_BATCHES; k++) {
        const struct pair_batch *pb = &s->pb[k];
        CHECK(model_forward(&s->m, corrupt ? pb->corrupt : pb->clean, NULL, pb->B, pb->T) == 0);
        metric_rows(&s->m, pb, rows);
        for (int b = 0; b < pb->B; b++) sum += rows[b];
        n += pb->B;
    }
    return sum / n;
}

static void check_areas(void)
{
    double x[4] = {0.1, 0.3, 0.6, 1.0}, under, from_one;
    faith_areas(x, x, 4, 0, &under, &from_one); /* f = x: ∫ x = (1 - 0.01) / 2, ∫ (1 - x) = 0.9 - 0.495 */
    CHECK_NEAR(under, 0.495, 1e-12);
    CHECK_NEAR(from_one, 0.405, 1e-12);
    double high[4] = {1.5, 1.5, 1.5, 1.5};
    faith_areas(x, high, 4, 0, &under, &from_one);
    CHECK_NEAR(under, 1.35, 1e-12);
    CHECK_NEAR(from_one, 0.45, 1e-12);
    double ends[2] = {0, 1}, cross[2] = {0, 2}; /* MIB takes |1 - f| at the points: (1 + 1) / 2, not 1/2 */
    faith_areas(ends, cross, 2, 0, &under, &from_one);
    CHECK_NEAR(under, 1, 1e-12);
    CHECK_NEAR(from_one, 1, 1e-12);
    double ex[4] = {0, 1, exp(1.0), exp(2.0)}, ones[4] = {1, 1, 1, 1}, half[4] = {0.5, 0.5, 0.5, 0.5};
    faith_areas(ex, ones, 4, 1, &under, &from_one); /* x = 0 is left out, then ln x = 0, 1, 2 */
    CHECK_NEAR(under, 2, 1e-12);
    CHECK_NEAR(from_one, 0, 1e-12);
    faith_areas(ex, half, 4, 1, &under, &from_one);
    CHECK_NEAR(under, 1, 1e-12);
    CHECK_NEAR(from_one, 1, 1e-12);
}

/* f(full) = 1 and f(empty) = 0 through the evaluator; M(model) against model_forward. */
static void check_ends(struct setup *s, struct faithfulness *f)
{
    struct circuit c[2];
    CHECK(circuit_alloc(&c[0], &s->g) == 0 && circuit_alloc(&c[1], &s->g) == 0);
    circuit_set_full(&c[0]);
    circuit_set_empty(&c[1]);
    double metrics[2];
    CHECK(faithfulness_metrics(f, c, 2, metrics) == 0);
    CHECK_NEAR(faithfulness_normalise(f, metrics[0]), 1, 1e-9);
    CHECK_NEAR(faithfulness_normalise(f, metrics[1]), 0, 1e-9);
    CHECK_NEAR(faithfulness_normalise(f, f->metric_model), 1, 1e-12);
    CHECK_NEAR(faithfulness_normalise(f, f->metric_empty), 0, 1e-12);
    CHECK_NEAR(f->metric_model, model_metric(s, 0), 1e-4);
    CHECK(fabs(f->metric_model - f->metric_empty) > 1e-2);
    CHECK(f->n_rows == 5);
    circuit_free(&c[0]);
    circuit_free(&c[1]);
}

/* Counterfactual: M(∅) is the corrupt run's M, and node circuits equal hook patching of every node outside. */
static void check_counterfactual(struct setup *s)
{
    struct faithfulness f;
    CHECK(faithfulness_init(&f, &s->m, &s->g, s->pb, N_BATCHES, ABLATION_COUNTERFACTUAL) == 0);
    check_ends(s, &f);
    CHECK_NEAR(f.metric_empty, model_metric(s, 1), 1e-4);

    const struct llama_config *c = &s->cfg;
    int L = c->n_layers, H = c->n_heads, n_nodes = L * (H + 1);
    double node_values[16], scores[16];
    struct rng r;
    rng_seed(&r, 9);
    for (int n = 0; n < n_nodes; n++) node_values[n] = rng_normal(&r);
    graph_scores_from_nodes(&s->g, node_values, scores);
    CHECK(isnan(scores[0]));
    CHECK(scores[graph_up_head(&s->g, 1, 2)] == node_values[1 * H + 2]);
    CHECK(scores[graph_up_mlp(&s->g, 1)] == node_values[L * H + 1]);

    struct circuit circuits[2];
    double metrics[2];
    const size_t sizes[2] = {4, 7};
    for (int i = 0; i < 2; i++) {
        CHECK(circuit_alloc(&circuits[i], &s->g) == 0);
        circuit_top_nodes(&circuits[i], scores, sizes[i], i);
        CHECK(circuit_node_count(&circuits[i]) == (int)sizes[i] + 1); /* + the input */
    }
    CHECK(faithfulness_metrics(&f, circuits, 2, metrics) == 0);
    for (int i = 0; i < 2; i++) {
        /* by hand: every z head and MLP outside the circuit patched with its corrupt value */
        float *z[4], *mlp[4];
        double sum = 0, rows[MAX_B];
        for (int k = 0; k < N_BATCHES; k++) {
            const struct pair_batch *pb = &s->pb[k];
            model_hooks_clear(&s->m);
            for (int l = 0; l < L; l++) {
                z[l] = malloc(hook_numel((struct hook_id){HOOK_ATTN_Z, l}, c, pb->B, pb->T) * sizeof(float));
                mlp[l] = malloc(hook_numel((struct hook_id){HOOK_MLP_OUT, l}, c, pb->B, pb->T) * sizeof(float));
                struct hook_request zr = {{HOOK_ATTN_Z, l}, HOOK_CACHE, z[l], -1, -1};
                struct hook_request mr = {{HOOK_MLP_OUT, l}, HOOK_CACHE, mlp[l], -1, -1};
                CHECK(model_hook_add(&s->m, &zr) == 0 && model_hook_add(&s->m, &mr) == 0);
            }
            CHECK(model_forward(&s->m, pb->corrupt, NULL, pb->B, pb->T) == 0);
            model_hooks_clear(&s->m);
            for (int l = 0; l < L; l++)
                for (int h = 0; h <= H; h++) {
                    int u = h < H ? graph_up_head(&s->g, l, h) : graph_up_mlp(&s->g, l);
                    if (circuits[i].nodes[u]) continue;
                    struct hook_request p = h < H ? (struct hook_request){{HOOK_ATTN_Z, l}, HOOK_PATCH, z[l], h, -1}
                                                  : (struct hook_request){{HOOK_MLP_OUT, l}, HOOK_PATCH, mlp[l], -1, -1};
                    CHECK(model_hook_add(&s->m, &p) == 0);
                }
            CHECK(model_forward(&s->m, pb->clean, NULL, pb->B, pb->T) == 0);
            model_hooks_clear(&s->m);
            metric_rows(&s->m, pb, rows);
            for (int b = 0; b < pb->B; b++) sum += rows[b];
            for (int l = 0; l < L; l++) { free(z[l]); free(mlp[l]); }
        }
        CHECK_NEAR(metrics[i], sum / f.n_rows, 1e-4);
        CHECK(fabs(metrics[i] - f.metric_model) > 1e-3 && fabs(metrics[i] - f.metric_empty) > 1e-3);
        circuit_free(&circuits[i]);
    }
    faithfulness_free(&f);
}

/* Mean ablation: the means by hand (embedding, rows shorter than t left out), and the empty circuit's logits are
 * lm_head · RMSNorm(sum of the means) whatever the input. */
static void check_mean(struct setup *s)
{
    struct faithfulness f;
    CHECK(faithfulness_init(&f, &s->m, &s->g, s->pb, N_BATCHES, ABLATION_MEAN) == 0);
    check_ends(s, &f);
    const struct llama_config *c = &s->cfg;
    int d = c->d_model, V = c->vocab_size, n_up = s->g.n_up;
    int bad = 0;
    for (int t = 0; t < MAX_T; t++) {
        double mean[16] = {0};
        int count = 0;
        for (int k = 0; k < N_BATCHES; k++)
            for (int b = 0; b < s->pb[k].B; b++) {
                if (t >= s->pb[k].pairs[b].length) continue;
                count++;
                const float *row = s->m.w.embed + (size_t)s->pb[k].clean[b * s->pb[k].T + t] * d;
                for (int e = 0; e < d; e++) mean[e] += row[e];
            }
        CHECK(f.means.count[t] == count);
        for (int e = 0; e < d; e++) bad += fabs(f.means.mean[(size_t)t * d + e] - mean[e] / count) > 1e-6;
    }
    CHECK(bad == 0);
    CHECK(f.means.count[MAX_T - 1] == 2 && f.means.count[0] == 5);

    /* logits of the empty circuit by hand, per position */
    double logits[MAX_T][16];
    const float *mean = f.means.mean;
    for (int t = 0; t < MAX_T; t++) {
        double x[16] = {0}, ss = 0;
        for (int u = 0; u < n_up; u++)
            for (int e = 0; e < d; e++) x[e] += mean[((size_t)u * MAX_T + t) * d + e];
        for (int e = 0; e < d; e++) ss += x[e] * x[e];
        double rstd = 1 / sqrt(ss / d + c->norm_eps);
        for (int v = 0; v < V; v++) {
            logits[t][v] = 0;
            for (int e = 0; e < d; e++) logits[t][v] += x[e] * rstd * s->m.w.norm[e] * s->m.w.lm_head[(size_t)v * d + e];
        }
    }
    double expected = 0;
    for (int k = 0; k < N_BATCHES; k++)
        for (int b = 0; b < s->pb[k].B; b++) {
            const struct arith_metric_pair *p = &s->pb[k].pairs[b];
            expected += logits[p->position][p->clean_id] - logits[p->position][p->cf_id];
        }
    CHECK_NEAR(f.metric_empty, expected / f.n_rows, 1e-4);

    /* two different inputs of one length give identical empty-circuit logits */
    struct circuit empty;
    CHECK(circuit_alloc(&empty, &s->g) == 0);
    circuit_set_empty(&empty);
    circuit_alpha(&empty, f.alpha);
    ablation_means_fill(&f.means, 1, MAX_T, f.ablated);
    int32_t a[MAX_T] = {1, 2, 3, 4, 5, 6}, b[MAX_T] = {7, 8, 9, 10, 11, 12};
    CHECK(edge_forward(&f.runner, &s->m, a, 1, MAX_T, f.alpha, f.ablated) == 0);
    float *first = testing_copy(f.runner.logits, (size_t)MAX_T * V);
    CHECK(edge_forward(&f.runner, &s->m, b, 1, MAX_T, f.alpha, f.ablated) == 0);
    CHECK_CLOSE(f.runner.logits, first, (size_t)MAX_T * V, 0, 0);
    CHECK(edge_forward(&f.runner, &s->m, b, 1, MAX_T, NULL, NULL) == 0);
    CHECK(fabs(f.runner.logits[3] - first[3]) > 1e-4);
    free(first);
    circuit_free(&empty);
    faithfulness_free(&f);
}

/* Top-n sizes, the curve (both levels) and NFS. */
static void check_curve(struct setup *s)
{
    const struct circuit_graph *g = &s->g;
    struct faithfulness f;
    CHECK(faithfulness_init(&f, &s->m, g, s->pb, N_BATCHES, ABLATION_COUNTERFACTUAL) == 0);
    size_t total = (size_t)g->n_up * g->n_down;
    double *scores = malloc(total * sizeof(double));
    struct rng r;
    rng_seed(&r, 11);
    for (size_t i = 0; i < total; i++) scores[i] = rng_uniform(&r) - 0.3;

    struct faith_curve curve;
    CHECK(faithfulness_curve(&f, GRAPH_LEVEL_EDGE, scores, 1, faith_mib_percents, 10, 0, &curve) == 0);
    CHECK(curve.n_points == 10);
    double x[10], y[10], sum = 0, under, from_one;
    for (int i = 0; i < 10; i++) {
        const struct faith_point *p = &curve.points[i];
        CHECK(p->n == (size_t)floor(faith_mib_percents[i] / 100 * (double)g->n_edges));
        CHECK(p->edges <= p->n);
        CHECK_NEAR(p->x, (double)p->edges / g->n_edges, 1e-15);
        CHECK_NEAR(p->f, faithfulness_normalise(&f, p->metric), 1e-15);
        x[i] = p->x;
        y[i] = p->f;
        sum += y[i];
    }
    faith_areas(x, y, 10, 0, &under, &from_one);
    CHECK_NEAR(curve.area_under, under, 1e-15);
    CHECK_NEAR(curve.area_from_one, from_one, 1e-15);
    CHECK_NEAR(curve.mean_f, sum / 10, 1e-15);
    CHECK(curve.points[9].edges == g->n_edges && curve.points[9].x == 1);
    CHECK_NEAR(curve.points[9].f, 1, 1e-9);
    CHECK(curve.points[0].n == 0 && curve.points[0].edges == 0);
    CHECK_NEAR(curve.points[0].f, 0, 1e-9);

    /* the top edges form a path input -> a0.h0<q>, a0.h0 -> m0, m0 -> logits, input -> logits: exactly 4 stay */
    int h0 = graph_up_head(g, 0, 0), m0 = graph_up_mlp(g, 0), logits = graph_down_logits(g);
    scores[graph_edge_index(g, 0, graph_down_head(g, 0, 0, GRAPH_Q))] = 10;
    scores[graph_edge_index(g, h0, graph_down_mlp(g, 0))] = 9;
    scores[graph_edge_index(g, m0, logits)] = 8;
    scores[graph_edge_index(g, 0, logits)] = 7;
    struct faith_point nfs;
    CHECK(faithfulness_nfs(&f, GRAPH_LEVEL_EDGE, scores, 0, 100 * 4.5 / g->n_edges, &nfs) == 0);
    CHECK(nfs.n == 4 && nfs.edges == 4 && nfs.nodes == 3);
    CHECK(faithfulness_nfs(&f, GRAPH_LEVEL_EDGE, scores, 0, 100 * 2.5 / g->n_edges, &nfs) == 0);
    CHECK(nfs.n == 2 && nfs.edges == 0); /* a0.h0 -> m0 without m0 -> logits prunes away */

    /* node level: 10 scored nodes; 100% keeps everything */
    double node_values[10], node_scores[11];
    for (int n = 0; n < 10; n++) node_values[n] = rng_normal(&r);
    graph_scores_from_nodes(g, node_values, node_scores);
    const double percents[3] = {10, 50, 100};
    CHECK(faithfulness_curve(&f, GRAPH_LEVEL_NODE, node_scores, 0, percents, 3, 0, &curve) == 0);
    CHECK(curve.points[0].n == 1 && curve.points[1].n == 5 && curve.points[2].n == 10);
    CHECK(curve.points[1].nodes == 6);
    CHECK_NEAR(curve.points[2].f, 1, 1e-9);
    CHECK(faithfulness_nfs(&f, GRAPH_LEVEL_NODE, node_scores, 0, 50, &nfs) == 0);
    CHECK(nfs.f == curve.points[1].f && nfs.edges == curve.points[1].edges);

    double bad_percent = 150, many[FAITH_MAX_POINTS + 1] = {0};
    CHECK(faithfulness_nfs(&f, GRAPH_LEVEL_EDGE, scores, 0, bad_percent, &nfs) == CIRCD_EINPUT);
    CHECK(faithfulness_curve(&f, GRAPH_LEVEL_EDGE, scores, 0, many, FAITH_MAX_POINTS + 1, 0, &curve) == CIRCD_EINPUT);
    free(scores);
    faithfulness_free(&f);
}

int main(void)
{
    check_areas();
    struct setup s;
    setup_init(&s);
    check_counterfactual(&s);
    check_mean(&s);
    check_curve(&s);
    struct faithfulness f;
    CHECK(faithfulness_init(&f, &s.m, &s.g, s.pb, 0, ABLATION_MEAN) == CIRCD_EINPUT);
    setup_free(&s);
    return testing_finish();
}
