/* edges.c — edge attribution patching and EAP-IG scores over the circuit graph, and node AtP with the same
 * integrated-gradients passes (edges.h). The per-downstream input gradients come from edge_grads.c. */
#include "circuits/edges.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "util/error.h"

int edge_scores_init(struct edge_scores *s, const struct circuit_graph *g)
{
    memset(s, 0, sizeof *s);
    size_t n = (size_t)g->n_up * g->n_down;
    s->g = g;
    s->signed_sum = xcalloc(n, sizeof *s->signed_sum);
    s->abs_sum = xcalloc(n, sizeof *s->abs_sum);
    if (!s->signed_sum || !s->abs_sum) { edge_scores_free(s); return CIRCD_ENOMEM; }
    return CIRCD_OK;
}

void edge_scores_free(struct edge_scores *s)
{
    free(s->signed_sum);
    free(s->abs_sum);
    memset(s, 0, sizeof *s);
}

static int check_ig_steps(int ig_steps)
{
    if (ig_steps < 0 || ig_steps > EDGES_MAX_IG_STEPS)
        return err_set(CIRCD_EINPUT, "ig_steps = %d: expected 0 (plain attribution patching) or 1..%d", ig_steps,
                       EDGES_MAX_IG_STEPS);
    return CIRCD_OK;
}

/* patch = e(x') + alpha (e(x) - e(x')) = corrupt - alpha * delta, with delta = e(x') - e(x). */
static void interpolate_embedding(float *patch, const float *corrupt, const float *delta, double alpha, size_t n)
{
    for (size_t i = 0; i < n; i++) patch[i] = (float)(corrupt[i] - alpha * delta[i]);
}

/* After gradient hooks were registered: a forward of the clean tokens (hook_embed replaced by patch unless NULL),
 * then the backward of sum over rows of M. Leaves the hooks cleared; dlogits [B*T, V] is scratch. */
static int metric_forward_backward(struct llama_model *m, const struct pair_batch *pb, const float *patch,
                                   float *dlogits, double *metric)
{
    int rc = CIRCD_OK, V = m->config.vocab_size;
    if (patch) {
        struct hook_request r = {{HOOK_EMBED, -1}, HOOK_PATCH, (float *)patch, -1, -1};
        rc = model_hook_add(m, &r);
    }
    if (!rc) rc = model_forward(m, pb->clean, NULL, pb->B, pb->T);
    if (!rc) {
        if (metric) metric_rows(m, pb, metric);
        vec_zero(dlogits, (size_t)pb->B * pb->T * V);
        metric_dlogits(pb, V, dlogits);
        rc = model_backward_hooks(m, dlogits);
    }
    model_hooks_clear(m);
    return rc;
}

/* Sums of one batch's per-pair scores into the running sums (signed and absolute). */
static void add_pair_scores(double *signed_sum, double *abs_sum, const double *pair, int B, size_t n)
{
    for (int b = 0; b < B; b++)
        for (size_t i = 0; i < n; i++) {
            double v = pair[(size_t)b * n + i];
            signed_sum[i] += v;
            abs_sum[i] += fabs(v);
        }
}

static void add_metric_sums(double *clean_sum, double *corrupt_sum, int64_t *pairs, const double *clean,
                            const double *corrupt, int B)
{
    for (int b = 0; b < B; b++) {
        *clean_sum += clean[b];
        *corrupt_sum += corrupt[b];
    }
    *pairs += B;
}

/* ---- edges ---- */

struct edge_work {
    int B, T;
    float *delta;         /* [n_up, N, d] a_u(corrupt) - a_u(clean) */
    float *grads;         /* [3H+1, N, d] one layer's downstream input gradients */
    float *corrupt_embed; /* [N, d] */
    float *patch;         /* [N, d] */
    float *block;         /* [n_up * (3H+1)] one pair's GEMM result */
    float *dlogits;       /* [N, V] */
    double *pair;         /* [B, n_up * n_down] per-pair scores */
    double *m_clean, *m_corrupt;
    struct input_grads ig;
};

static void edge_work_free(struct edge_work *w)
{
    free(w->delta);
    free(w->grads);
    free(w->corrupt_embed);
    free(w->patch);
    free(w->block);
    free(w->dlogits);
    free(w->pair);
    free(w->m_clean);
    free(w->m_corrupt);
    input_grads_free(&w->ig);
}

static int edge_work_alloc(struct edge_work *w, const struct llama_model *m, const struct circuit_graph *g, int B,
                           int T)
{
    memset(w, 0, sizeof *w);
    size_t N = (size_t)B * T, d = (size_t)m->config.d_model, inputs = 3 * (size_t)g->n_heads + 1;
    w->B = B;
    w->T = T;
    w->delta = xmalloc((size_t)g->n_up * N * d * sizeof(float));
    w->grads = xmalloc(inputs * N * d * sizeof(float));
    w->corrupt_embed = xmalloc(N * d * sizeof(float));
    w->patch = xmalloc(N * d * sizeof(float));
    w->block = xmalloc((size_t)g->n_up * inputs * sizeof(float));
    w->dlogits = xmalloc(N * m->config.vocab_size * sizeof(float));
    w->pair = xcalloc((size_t)B * g->n_up * g->n_down, sizeof(double));
    w->m_clean = xcalloc((size_t)B, sizeof(double));
    w->m_corrupt = xcalloc((size_t)B, sizeof(double));
    int rc = input_grads_alloc(&w->ig, &m->config, B, T);
    if (!rc && (!w->delta || !w->grads || !w->corrupt_embed || !w->patch || !w->block || !w->dlogits || !w->pair ||
                !w->m_clean || !w->m_corrupt))
        rc = CIRCD_ENOMEM;
    if (rc) edge_work_free(w);
    return rc;
}

/* delta[u] += sign * a_u of the model's last forward, for every upstream node u. */
static void add_upstream_outputs(const struct llama_model *m, const struct circuit_graph *g, float sign,
                                 float *delta, size_t N)
{
    model_sync_acts_host(m); /* host activations (a no-op on the CPU); device errors surface at the next step */
    const struct llama_config *c = &m->config;
    int d = c->d_model, hd = c->head_dim, qd = c->n_heads * hd;
    size_t Nd = N * d;
    for (size_t i = 0; i < Nd; i++) delta[i] += sign * m->acts.embed[i];
    for (int l = 0; l < c->n_layers; l++) {
        const struct layer_acts *a = &m->acts.layers[l];
        const float *wo = m->w.layers[l].wo;
        for (int h = 0; h < c->n_heads; h++) /* result_h[N, d] = z_h [N, hd] · W_O[:, h block]^T */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, d, hd, sign, a->z + (size_t)h * hd, qd,
                        wo + (size_t)h * hd, qd, 1.0f, delta + (size_t)graph_up_head(g, l, h) * Nd, d);
        float *mlp = delta + (size_t)graph_up_mlp(g, l) * Nd;
        for (size_t i = 0; i < Nd; i++) mlp[i] += sign * a->mlp_out[i];
    }
}

/* Per pair b: pair[b][u, first + j] += weight * sum_t delta[u, b, t] · grads[j, b, t] for upstream u < n_u and
 * inputs j < n_in, on real edges only: one GEMM [n_u, T*d] x [T*d, n_in] per pair. */
static void add_input_scores(struct edge_work *w, const struct circuit_graph *g, int d, int first, int n_in,
                             int n_u, double weight)
{
    size_t N = (size_t)w->B * w->T, row = (size_t)w->T * d, E = (size_t)g->n_up * g->n_down;
    for (int b = 0; b < w->B; b++) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n_u, n_in, (int)row, 1.0f, w->delta + b * row, N * d,
                    w->grads + b * row, N * d, 0.0f, w->block, n_in);
        double *pair = w->pair + (size_t)b * E;
        for (int u = 0; u < n_u; u++)
            for (int j = 0; j < n_in; j++) {
                size_t e = graph_edge_index(g, u, first + j);
                if (g->real[e]) pair[e] += weight * w->block[(size_t)u * n_in + j];
            }
    }
}

/* After a metric backward with the input-gradient hooks: adds weight * score of every edge into w->pair. */
static void add_edge_scores(struct edge_work *w, const struct llama_model *m, const struct circuit_graph *g,
                            double weight)
{
    model_sync_acts_host(m); /* host activations (a no-op on the CPU); device errors surface at the next step */
    int d = m->config.d_model, H = g->n_heads;
    for (int l = 0; l < g->n_layers; l++) {
        input_grads_layer(&w->ig, m, l, w->grads);
        add_input_scores(w, g, d, graph_down_head(g, l, 0, GRAPH_Q), 3 * H + 1, graph_up_mlp(g, l), weight);
    }
    input_grads_logits(&w->ig, m, w->grads);
    add_input_scores(w, g, d, graph_down_logits(g), 1, g->n_up, weight);
}

static int check_graph(const struct llama_model *m, const struct circuit_graph *g)
{
    const struct llama_config *c = &m->config;
    if (g->n_layers != c->n_layers || g->n_heads != c->n_heads || g->n_kv_heads != c->n_kv_heads ||
        c->n_layers < 1)
        return err_set(CIRCD_EINPUT,
                       "edge scores: the graph (%d layers, %d heads, %d kv heads) does not match the model "
                       "(%d layers, %d heads, %d kv heads; at least one layer)",
                       g->n_layers, g->n_heads, g->n_kv_heads, c->n_layers, c->n_heads, c->n_kv_heads);
    return CIRCD_OK;
}

int eap_edges_batch(struct llama_model *m, const struct pair_batch *pb, int ig_steps, struct edge_scores *s)
{
    const struct circuit_graph *g = s->g;
    int rc = check_ig_steps(ig_steps);
    if (!rc) rc = check_graph(m, g);
    if (rc) return rc;
    if ((rc = model_sync_host(m))) return rc; /* the edge forward reads the host parameters */
    int B = pb->B, T = pb->T;
    size_t N = (size_t)B * T, Nd = N * m->config.d_model;
    struct edge_work w;
    if ((rc = edge_work_alloc(&w, m, g, B, T))) return rc;
    model_hooks_clear(m);

    /* corrupt run: delta = a(x'), and its embedding for the IG endpoints */
    memset(w.delta, 0, (size_t)g->n_up * Nd * sizeof(float));
    if (!rc) rc = model_forward(m, pb->corrupt, NULL, B, T);
    if (!rc) {
        metric_rows(m, pb, w.m_corrupt);
        add_upstream_outputs(m, g, 1.0f, w.delta, N);
        memcpy(w.corrupt_embed, m->acts.embed, Nd * sizeof(float));
    }
    if (!rc && ig_steps == 0) { /* clean forward + backward with the gradient hooks, then delta -= a(x) */
        rc = input_grads_register(&w.ig, m);
        if (!rc) rc = metric_forward_backward(m, pb, NULL, w.dlogits, w.m_clean);
        if (!rc) { /* the backward leaves the clean forward's activations in place */
            add_upstream_outputs(m, g, -1.0f, w.delta, N);
            add_edge_scores(&w, m, g, 1.0);
        }
    } else if (!rc) { /* plain clean forward for delta, then m interpolated passes */
        rc = model_forward(m, pb->clean, NULL, B, T);
        if (!rc) {
            metric_rows(m, pb, w.m_clean);
            add_upstream_outputs(m, g, -1.0f, w.delta, N);
        }
        for (int k = 0; k < ig_steps && !rc; k++) {
            interpolate_embedding(w.patch, w.corrupt_embed, w.delta, (double)k / ig_steps, Nd);
            rc = input_grads_register(&w.ig, m);
            if (!rc) rc = metric_forward_backward(m, pb, w.patch, w.dlogits, NULL);
            if (!rc) add_edge_scores(&w, m, g, 1.0 / ig_steps);
        }
    }
    model_hooks_clear(m);
    if (!rc) {
        add_pair_scores(s->signed_sum, s->abs_sum, w.pair, B, (size_t)g->n_up * g->n_down);
        add_metric_sums(&s->metric_clean_sum, &s->metric_corrupt_sum, &s->pairs, w.m_clean, w.m_corrupt, B);
    }
    edge_work_free(&w);
    return rc;
}

/* ---- nodes with integrated gradients ---- */

int atp_nodes_ig_batch(struct llama_model *m, const struct pair_batch *pb, int ig_steps, struct node_scores *s)
{
    int rc = check_ig_steps(ig_steps);
    if (rc) return rc;
    if (ig_steps == 0) return atp_nodes_batch(m, pb, s);
    const struct llama_config *c = &m->config;
    int B = pb->B, T = pb->T, L = c->n_layers, H = c->n_heads, hd = c->head_dim, d = c->d_model;
    if (s->n_layers != L || s->n_heads != H)
        return err_set(CIRCD_EINPUT, "node scores of %d layers x %d heads for a model of %d x %d", s->n_layers,
                       s->n_heads, L, H);
    size_t N = (size_t)B * T, Nz = N * H * hd, Nd = N * d, per_layer = Nz + Nd;
    /* per layer: [z | mlp_out] differences and gradients */
    float *delta = xmalloc((size_t)L * per_layer * sizeof(float)), *grad = xmalloc((size_t)L * per_layer * sizeof(float));
    float *corrupt_embed = xmalloc(Nd * sizeof(float)), *delta_embed = xmalloc(Nd * sizeof(float));
    float *patch = xmalloc(Nd * sizeof(float)), *dlogits = xmalloc(N * c->vocab_size * sizeof(float));
    double *pair = xcalloc((size_t)B * s->n_nodes, sizeof(double));
    double *m_clean = xcalloc((size_t)B, sizeof(double)), *m_corrupt = xcalloc((size_t)B, sizeof(double));
    if (!delta || !grad || !corrupt_embed || !delta_embed || !patch || !dlogits || !pair || !m_clean || !m_corrupt)
        rc = CIRCD_ENOMEM;
    model_hooks_clear(m);
    for (int run = 0; run < 2 && !rc; run++) { /* run 0: corrupt (delta = value), run 1: clean (delta -= value) */
        rc = model_forward(m, run ? pb->clean : pb->corrupt, NULL, B, T);
        if (!rc) rc = model_sync_acts_host(m);
        if (rc) break;
        metric_rows(m, pb, run ? m_clean : m_corrupt);
        float sign = run ? -1.0f : 1.0f;
        for (int l = 0; l < L; l++) {
            float *dz = delta + (size_t)l * per_layer, *dmlp = dz + Nz;
            const struct layer_acts *a = &m->acts.layers[l];
            for (size_t i = 0; i < Nz; i++) dz[i] = (run ? dz[i] : 0.0f) + sign * a->z[i];
            for (size_t i = 0; i < Nd; i++) dmlp[i] = (run ? dmlp[i] : 0.0f) + sign * a->mlp_out[i];
        }
        if (!run) memcpy(corrupt_embed, m->acts.embed, Nd * sizeof(float));
        else for (size_t i = 0; i < Nd; i++) delta_embed[i] = corrupt_embed[i] - m->acts.embed[i];
    }
    for (int k = 0; k < ig_steps && !rc; k++) {
        interpolate_embedding(patch, corrupt_embed, delta_embed, (double)k / ig_steps, Nd);
        for (int l = 0; l < L && !rc; l++) {
            struct hook_request z = {{HOOK_ATTN_Z, l}, HOOK_GRAD, grad + (size_t)l * per_layer, -1, -1};
            struct hook_request mlp = {{HOOK_MLP_OUT, l}, HOOK_GRAD, grad + (size_t)l * per_layer + Nz, -1, -1};
            rc = model_hook_add(m, &z);
            if (!rc) rc = model_hook_add(m, &mlp);
        }
        if (!rc) rc = metric_forward_backward(m, pb, patch, dlogits, NULL);
        for (int l = 0; l < L && !rc; l++) {
            const float *dz = delta + (size_t)l * per_layer, *gz = grad + (size_t)l * per_layer;
            for (int b = 0; b < B; b++) {
                double *row = pair + (size_t)b * s->n_nodes;
                for (int t = 0; t < T; t++) {
                    size_t zrow = ((size_t)b * T + t) * H * hd, mrow = Nz + ((size_t)b * T + t) * d;
                    for (int h = 0; h < H; h++) {
                        double acc = 0;
                        for (int e = 0; e < hd; e++) acc += (double)dz[zrow + h * hd + e] * gz[zrow + h * hd + e];
                        row[l * H + h] += acc / ig_steps;
                    }
                    double acc = 0;
                    for (int e = 0; e < d; e++) acc += (double)dz[mrow + e] * gz[mrow + e];
                    row[L * H + l] += acc / ig_steps;
                }
            }
        }
    }
    model_hooks_clear(m);
    if (!rc) {
        add_pair_scores(s->signed_sum, s->abs_sum, pair, B, (size_t)s->n_nodes);
        add_metric_sums(&s->metric_clean_sum, &s->metric_corrupt_sum, &s->pairs, m_clean, m_corrupt, B);
    }
    free(delta); free(grad); free(corrupt_embed); free(delta_embed); free(patch); free(dlogits);
    free(pair); free(m_clean); free(m_corrupt);
    return rc;
}
