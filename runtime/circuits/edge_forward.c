/* edge_forward.c — implementation of edge_forward.h.
 *
 * The residual stream is kept as the running sum of the upstream outputs written so far (resid), and, when edges
 * are ablated, as the running sum of their replacements (ablated_resid). A downstream input with no ablated edge
 * reads resid; one with ablated edges reads
 *     resid - sum_{alpha != 0} alpha (a_u - a'_u)            or, equal and cheaper when most edges are ablated,
 *     ablated_resid + sum_{alpha != 1} (1 - alpha) (a_u - a'_u)
 * whichever sum has fewer terms. A layer whose q/k/v inputs are all plain runs as model_forward does; a head with
 * an ablated q input gets its own RMSNorm and q projection; when any head of a layer has its own k (or v) input,
 * the layer's k (or v) is expanded to one per query head (copies of the shared kv head for the other heads) and
 * attention runs with n_kv_heads = n_heads for it. Consecutive inputs with identical alpha columns share one
 * normalised input (node circuits ablate all inputs of a layer alike). */
#include "circuits/edge_forward.h"

#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "util/error.h"

struct edge_scratch {
    float *memory;
    float *resid, *ablated_resid; /* [N, d] running sums of this run's outputs and of their replacements */
    float *input;                 /* [N, d] one downstream input with ablated edges */
    float *ln, *normed;           /* [N, d] RMSNorm of the plain residual / of `input` */
    float *rstd;                  /* [N] */
    float *q, *k, *v;             /* [N, nh*hd], [N, nkv*hd], [N, nkv*hd] shared projections */
    float *k_heads, *v_heads;     /* [N, nh*hd] k / v per query head */
    float *q_rot, *k_rot;         /* [N, nh*hd] */
    float *head_rows;             /* [N, hd] one head's projection or z */
    float *wo_head;               /* [d, hd] one head's columns of o_proj */
    float *pattern;               /* [B, nh, T, T] */
    float *z;                     /* [N, nh*hd] */
    float *gate, *up, *hidden;    /* [N, d_ff] */
    int *n_ablated, *n_kept;      /* [n_down]: real edges into d with alpha != 0 / with alpha != 1 */
    int normed_for;               /* downstream input whose normalisation `normed` holds, or -1 */
};

int edge_runner_init(struct edge_runner *r, const struct llama_model *m, const struct circuit_graph *g,
                     int capacity_B, int capacity_T)
{
    const struct llama_config *c = &m->config;
    memset(r, 0, sizeof *r);
    if (capacity_B < 1 || capacity_T < 1 || capacity_T > c->max_seq)
        return err_set(CIRCD_EINPUT, "edge runner capacity [%d, %d]: need B >= 1 and 1 <= T <= %d", capacity_B,
                       capacity_T, c->max_seq);
    if (g->n_layers != c->n_layers || g->n_heads != c->n_heads || g->n_kv_heads != c->n_kv_heads)
        return err_set(CIRCD_EINPUT, "the circuit graph (%d layers, %d heads) is not of this model (%d, %d)",
                       g->n_layers, g->n_heads, c->n_layers, c->n_heads);
    size_t N = (size_t)capacity_B * capacity_T, d = (size_t)c->d_model, hd = (size_t)c->head_dim;
    size_t qd = (size_t)c->n_heads * hd, kvd = (size_t)c->n_kv_heads * hd, ff = (size_t)c->d_ff;
    size_t sizes[] = {N * d, N * d, N * d, N * d, N * d, N, N * qd, N * kvd, N * kvd, N * qd, N * qd, N * qd,
                      N * qd, N * hd, d * hd, (size_t)capacity_B * c->n_heads * capacity_T * capacity_T, N * qd,
                      N * ff, N * ff, N * ff};
    enum { N_BUFFERS = sizeof sizes / sizeof sizes[0] };
    size_t total = 0;
    for (int i = 0; i < N_BUFFERS; i++) total += sizes[i];

    struct edge_scratch *s = xcalloc(1, sizeof *s);
    r->scratch = s;
    r->g = g;
    r->capacity_B = capacity_B;
    r->capacity_T = capacity_T;
    if (!s) return CIRCD_ENOMEM;
    s->memory = xmalloc(total * sizeof(float));
    s->n_ablated = xcalloc((size_t)g->n_down, sizeof(int));
    s->n_kept = xcalloc((size_t)g->n_down, sizeof(int));
    r->outputs = xmalloc((size_t)g->n_up * N * d * sizeof(float));
    r->logits = xmalloc(N * (size_t)c->vocab_size * sizeof(float));
    if (!s->memory || !s->n_ablated || !s->n_kept || !r->outputs || !r->logits) {
        edge_runner_free(r);
        return CIRCD_ENOMEM;
    }
    float **views[N_BUFFERS] = {&s->resid, &s->ablated_resid, &s->input, &s->ln, &s->normed, &s->rstd, &s->q,
                                &s->k, &s->v, &s->k_heads, &s->v_heads, &s->q_rot, &s->k_rot, &s->head_rows,
                                &s->wo_head, &s->pattern, &s->z, &s->gate, &s->up, &s->hidden};
    float *p = s->memory;
    for (int i = 0; i < N_BUFFERS; i++) { *views[i] = p; p += sizes[i]; }
    return CIRCD_OK;
}

void edge_runner_free(struct edge_runner *r)
{
    struct edge_scratch *s = r->scratch;
    if (s) {
        free(s->memory);
        free(s->n_ablated);
        free(s->n_kept);
        free(s);
    }
    free(r->outputs);
    free(r->logits);
    memset(r, 0, sizeof *r);
}

size_t edge_outputs_numel(const struct edge_runner *r, const struct llama_model *m, int B, int T)
{
    return (size_t)r->g->n_up * B * T * m->config.d_model;
}

/* One forward's fixed arguments, passed to the helpers below. */
struct edge_run {
    struct edge_runner *r;
    struct edge_scratch *s;
    const struct llama_model *m;
    const float *alpha, *ablated;
    int B, T, N, d;
};

static const float *output_of(const struct edge_run *e, int u) { return e->r->outputs + (size_t)u * e->N * e->d; }

/* Adds upstream u's output (written by the caller) to the running residuals. */
static void commit_output(const struct edge_run *e, int u)
{
    size_t n = (size_t)e->N * e->d;
    vec_accumulate(e->s->resid, output_of(e, u), n);
    if (e->alpha) vec_accumulate(e->s->ablated_resid, e->ablated + (size_t)u * n, n);
}

static int is_ablated(const struct edge_run *e, int down) { return e->alpha && e->s->n_ablated[down] > 0; }

/* 1 when downstream inputs a and b read the same upstream nodes with the same alphas. */
static int same_input(const struct edge_run *e, int a, int b)
{
    const struct circuit_graph *g = e->r->g;
    for (int u = 0; u < g->n_up; u++) {
        size_t ia = graph_edge_index(g, u, a), ib = graph_edge_index(g, u, b);
        if (g->real[ia] != g->real[ib] || (g->real[ia] && e->alpha[ia] != e->alpha[ib])) return 0;
    }
    return 1;
}

/* Builds the input of an ablated downstream `down` into s->input (see the file comment). */
static void build_input(const struct edge_run *e, int down)
{
    const struct circuit_graph *g = e->r->g;
    struct edge_scratch *s = e->s;
    size_t n = (size_t)e->N * e->d;
    int from_ablated = s->n_kept[down] < s->n_ablated[down];
    memcpy(s->input, from_ablated ? s->ablated_resid : s->resid, n * sizeof(float));
    for (int u = 0; u < g->n_up; u++) {
        size_t i = graph_edge_index(g, u, down);
        if (!g->real[i]) continue;
        /* input += weight * (a_u - a'_u) */
        float weight = from_ablated ? 1.0f - e->alpha[i] : -e->alpha[i];
        if (weight == 0.0f) continue;
        const float *a = output_of(e, u), *replacement = e->ablated + (size_t)u * n;
        for (size_t j = 0; j < n; j++) s->input[j] += weight * (a[j] - replacement[j]);
    }
}

/* RMSNorm (weight w) of ablated downstream `down`'s input into s->normed, reusing it when the last one built had
 * the same input. */
static const float *normed_input(const struct edge_run *e, int down, const float *w)
{
    struct edge_scratch *s = e->s;
    if (s->normed_for >= 0 && same_input(e, s->normed_for, down)) return s->normed;
    build_input(e, down);
    rmsnorm_forward(s->normed, s->rstd, s->input, w, e->N, e->d, e->m->config.norm_eps);
    s->normed_for = down;
    return s->normed;
}

/* dst[:, col*w .. (col+1)*w) = src[N, w] inside rows of width stride. */
static void scatter_columns(float *dst, int stride, int col, const float *src, int N, int w)
{
    for (int i = 0; i < N; i++) memcpy(dst + (size_t)i * stride + (size_t)col * w, src + (size_t)i * w, w * sizeof(float));
}

static void gather_columns(float *dst, const float *src, int stride, int col, int N, int w)
{
    for (int i = 0; i < N; i++) memcpy(dst + (size_t)i * w, src + (size_t)i * stride + (size_t)col * w, w * sizeof(float));
}

/* The k (which = GRAPH_K) or v input of layer l: the shared [N, nkv*hd] projection, or, when any head has its own
 * input, one per query head in `per_head`. Returns the tensor to use and sets *heads to its head count. */
static const float *key_or_value(const struct edge_run *e, int l, enum graph_qkv which, const float *shared,
                                 float *per_head, int *heads)
{
    const struct llama_config *c = &e->m->config;
    const struct circuit_graph *g = e->r->g;
    int H = c->n_heads, hd = c->head_dim, kvd = c->n_kv_heads * hd, group = H / c->n_kv_heads;
    int own = 0;
    for (int h = 0; h < H; h++) own |= is_ablated(e, graph_down_head(g, l, h, which));
    if (!own) { *heads = c->n_kv_heads; return shared; }
    const float *w = which == GRAPH_K ? e->m->w.layers[l].wk : e->m->w.layers[l].wv;
    for (int h = 0; h < H; h++) {
        int down = graph_down_head(g, l, h, which), kv = h / group;
        if (is_ablated(e, down)) {
            const float *x = normed_input(e, down, e->m->w.layers[l].ln1);
            matmul_forward(e->s->head_rows, x, w + (size_t)kv * hd * c->d_model, e->N, c->d_model, hd);
        } else {
            gather_columns(e->s->head_rows, shared, kvd, kv, e->N, hd);
        }
        scatter_columns(per_head, H * hd, h, e->s->head_rows, e->N, hd);
    }
    *heads = H;
    return per_head;
}

static void attention_layer(const struct edge_run *e, int l)
{
    const struct llama_config *c = &e->m->config;
    const struct layer_params *p = &e->m->w.layers[l];
    const struct circuit_graph *g = e->r->g;
    struct edge_scratch *s = e->s;
    int H = c->n_heads, hd = c->head_dim, d = c->d_model, qd = H * hd, kvd = c->n_kv_heads * hd, N = e->N;
    int plain[3] = {0, 0, 0}; /* some head reads the plain residual for q / k / v */
    for (int j = 0; j < 3; j++)
        for (int h = 0; h < H; h++) plain[j] |= !is_ablated(e, graph_down_head(g, l, h, (enum graph_qkv)j));
    if (plain[0] || plain[1] || plain[2]) rmsnorm_forward(s->ln, s->rstd, s->resid, p->ln1, N, d, c->norm_eps);
    if (plain[0]) matmul_forward(s->q, s->ln, p->wq, N, d, qd);
    if (plain[1]) matmul_forward(s->k, s->ln, p->wk, N, d, kvd);
    if (plain[2]) matmul_forward(s->v, s->ln, p->wv, N, d, kvd);
    s->normed_for = -1;
    for (int h = 0; h < H; h++) {
        int down = graph_down_head(g, l, h, GRAPH_Q);
        if (!is_ablated(e, down)) continue;
        const float *x = normed_input(e, down, p->ln1);
        matmul_forward(s->head_rows, x, p->wq + (size_t)h * hd * d, N, d, hd);
        scatter_columns(s->q, qd, h, s->head_rows, N, hd);
    }
    int k_heads, v_heads;
    const float *k = key_or_value(e, l, GRAPH_K, s->k, s->k_heads, &k_heads);
    const float *v = key_or_value(e, l, GRAPH_V, s->v, s->v_heads, &v_heads);

    rope_forward(s->q_rot, s->q, e->m->rope_cos, e->m->rope_sin, e->B, e->T, H, hd, 0);
    rope_forward(s->k_rot, k, e->m->rope_cos, e->m->rope_sin, e->B, e->T, k_heads, hd, 0);
    attention_pattern_forward(s->pattern, s->q_rot, s->k_rot, e->B, e->T, e->T, H, k_heads, hd);
    attention_mix_forward(s->z, s->pattern, v, e->B, e->T, e->T, H, v_heads, hd);

    /* Head h's output z_h · W_O[:, h*hd:(h+1)*hd]^T; all heads read the residual before any of them writes. */
    for (int h = 0; h < H; h++) {
        int u = graph_up_head(g, l, h);
        gather_columns(s->head_rows, s->z, qd, h, N, hd);
        gather_columns(s->wo_head, p->wo, qd, h, d, hd);
        matmul_forward(e->r->outputs + (size_t)u * N * d, s->head_rows, s->wo_head, N, hd, d);
    }
    for (int h = 0; h < H; h++) commit_output(e, graph_up_head(g, l, h));
}

/* The plain residual, or the ablated input of `down` (built into s->input). */
static const float *input_of(const struct edge_run *e, int down)
{
    if (!is_ablated(e, down)) return e->s->resid;
    build_input(e, down);
    return e->s->input;
}

static void mlp_layer(const struct edge_run *e, int l)
{
    const struct llama_config *c = &e->m->config;
    const struct layer_params *p = &e->m->w.layers[l];
    struct edge_scratch *s = e->s;
    int d = c->d_model, ff = c->d_ff, N = e->N, u = graph_up_mlp(e->r->g, l);
    const float *x = input_of(e, graph_down_mlp(e->r->g, l));
    rmsnorm_forward(s->ln, s->rstd, x, p->ln2, N, d, c->norm_eps);
    matmul_forward(s->gate, s->ln, p->w_gate, N, d, ff);
    matmul_forward(s->up, s->ln, p->w_up, N, d, ff);
    swiglu_forward(s->hidden, s->gate, s->up, (size_t)N * ff);
    matmul_forward(e->r->outputs + (size_t)u * N * d, s->hidden, p->w_down, N, ff, d);
    commit_output(e, u);
}

/* Counts per downstream input the real edges with alpha != 0 and with alpha != 1. */
static void count_ablated(const struct edge_run *e)
{
    const struct circuit_graph *g = e->r->g;
    struct edge_scratch *s = e->s;
    for (int down = 0; down < g->n_down; down++) {
        s->n_ablated[down] = s->n_kept[down] = 0;
        if (!e->alpha) continue;
        for (int u = 0; u < g->n_up; u++) {
            size_t i = graph_edge_index(g, u, down);
            if (!g->real[i]) continue;
            s->n_ablated[down] += e->alpha[i] != 0.0f;
            s->n_kept[down] += e->alpha[i] != 1.0f;
        }
    }
}

int edge_forward(struct edge_runner *r, const struct llama_model *m, const int32_t *tokens, int B, int T,
                 const float *alpha, const float *ablated)
{
    const struct llama_config *c = &m->config;
    if (B < 1 || T < 1 || B > r->capacity_B || T > r->capacity_T)
        return err_set(CIRCD_EINPUT, "edge forward of [%d, %d] tokens: the runner holds at most [%d, %d]", B, T,
                       r->capacity_B, r->capacity_T);
    if (alpha && !ablated) return err_set(CIRCD_EINPUT, "edge forward: ablation weights without ablated outputs");
    size_t N = (size_t)B * T;
    for (size_t i = 0; i < N; i++)
        if (tokens[i] < 0 || tokens[i] >= c->vocab_size)
            return err_set(CIRCD_EINPUT, "tokens[%zu] = %d is outside the vocabulary [0, %d)", i, (int)tokens[i],
                           c->vocab_size);
    struct edge_run e = {r, r->scratch, m, alpha, ablated, B, T, (int)N, c->d_model};
    const struct circuit_graph *g = r->g;
    r->B = B;
    r->T = T;
    count_ablated(&e);

    embedding_forward(r->outputs, tokens, m->w.embed, (int)N, e.d);
    vec_zero(e.s->resid, N * e.d);
    if (alpha) vec_zero(e.s->ablated_resid, N * e.d);
    commit_output(&e, 0);
    for (int l = 0; l < c->n_layers; l++) {
        attention_layer(&e, l);
        mlp_layer(&e, l);
    }
    rmsnorm_forward(e.s->ln, e.s->rstd, input_of(&e, graph_down_logits(g)), m->w.norm, (int)N, e.d, c->norm_eps);
    matmul_forward(r->logits, e.s->ln, m->w.lm_head, (int)N, e.d, c->vocab_size);
    return CIRCD_OK;
}

void edge_metric_rows(const struct edge_runner *r, const struct llama_model *m, const struct pair_batch *pb,
                      double *out)
{
    int V = m->config.vocab_size;
    for (int b = 0; b < pb->B; b++) {
        const struct arith_metric_pair *p = &pb->pairs[b];
        const float *row = r->logits + ((size_t)b * r->T + p->position) * V;
        out[b] = (double)row[p->clean_id] - (double)row[p->cf_id];
    }
}
