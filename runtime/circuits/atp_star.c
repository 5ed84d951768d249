/* atp_star.c — implementation of atp_star.h: hook caches of the corrupt and clean runs, plain / QK-fixed /
 * GradDrop node scores from them, exact patching of the same nodes, and the agreement of each with exact. */
#include "circuits/atp_star.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "util/error.h"

/* ---- nodes ---- */

int atp_star_scores_init(struct atp_star_scores *s, const struct llama_config *cfg,
                         const struct atp_star_options *options)
{
    memset(s, 0, sizeof *s);
    if (options->qk_fix && !options->attention_inputs)
        return err_set(CIRCD_EINPUT, "AtP*: the QK fix scores q/k nodes; it needs attention_inputs");
    if (options->grad_drop && cfg->n_layers < 2)
        return err_set(CIRCD_EINPUT, "AtP*: GradDrop averages over the other layers of a node and needs at least 2 "
                                     "layers; the model has %d", cfg->n_layers);
    s->n_layers = cfg->n_layers;
    s->n_heads = cfg->n_heads;
    s->n_kv_heads = cfg->n_kv_heads;
    s->options = *options;
    s->n_nodes = cfg->n_layers * (cfg->n_heads + 1);
    if (options->attention_inputs) s->n_nodes += cfg->n_layers * (cfg->n_heads + 2 * cfg->n_kv_heads);
    size_t n = (size_t)s->n_nodes;
    int ok = (s->signed_sum = xcalloc(n, sizeof(double))) && (s->abs_sum = xcalloc(n, sizeof(double)));
    if (ok && options->qk_fix)
        ok = (s->qk_signed_sum = xcalloc(n, sizeof(double))) && (s->qk_abs_sum = xcalloc(n, sizeof(double)));
    if (ok && options->grad_drop) ok = (s->grad_drop_sum = xcalloc(n, sizeof(double))) != NULL;
    if (!ok) { atp_star_scores_free(s); return CIRCD_ENOMEM; }
    return CIRCD_OK;
}

void atp_star_scores_free(struct atp_star_scores *s)
{
    free(s->signed_sum);
    free(s->abs_sum);
    free(s->qk_signed_sum);
    free(s->qk_abs_sum);
    free(s->grad_drop_sum);
    memset(s, 0, sizeof *s);
}

struct atp_node atp_star_node(const struct atp_star_scores *s, int n)
{
    int L = s->n_layers, H = s->n_heads, KV = s->n_kv_heads;
    if (n < L * H) return (struct atp_node){ATP_NODE_Z, n / H, n % H};
    n -= L * H;
    if (n < L) return (struct atp_node){ATP_NODE_MLP, n, -1};
    n -= L;
    if (n < L * H) return (struct atp_node){ATP_NODE_Q, n / H, n % H};
    n -= L * H;
    if (n < L * KV) return (struct atp_node){ATP_NODE_K, n / KV, n % KV};
    n -= L * KV;
    return (struct atp_node){ATP_NODE_V, n / KV, n % KV};
}

static enum hook_kind node_hook_kind(enum atp_node_kind kind)
{
    static const enum hook_kind kinds[] = {
        [ATP_NODE_Z] = HOOK_ATTN_Z, [ATP_NODE_MLP] = HOOK_MLP_OUT, [ATP_NODE_Q] = HOOK_ATTN_Q,
        [ATP_NODE_K] = HOOK_ATTN_K, [ATP_NODE_V] = HOOK_ATTN_V,
    };
    return kinds[kind];
}

const char *atp_star_node_name(const struct atp_star_scores *s, int n, char *buf, size_t cap)
{
    struct atp_node node = atp_star_node(s, n);
    char hook[64];
    hook_name((struct hook_id){node_hook_kind(node.kind), node.layer}, hook, sizeof hook);
    if (node.head < 0) snprintf(buf, cap, "%s", hook);
    else snprintf(buf, cap, "%s[%d]", hook, node.head);
    return buf;
}

/* ---- hook caches: per hook kind, one tensor per layer ---- */

struct hook_table {
    float *memory;
    float *at[HOOK_KIND_COUNT]; /* layer l's tensor of a kind is at[kind] + l * size[kind]; NULL: not held */
    size_t size[HOOK_KIND_COUNT];
    int n_layers;
};

#define KIND(k) (1u << (k))

static int table_alloc(struct hook_table *t, const struct llama_config *cfg, int B, int T, unsigned kinds)
{
    memset(t, 0, sizeof *t);
    t->n_layers = cfg->n_layers;
    size_t total = 0;
    for (int k = 0; k < HOOK_KIND_COUNT; k++)
        if (kinds & KIND(k)) total += (size_t)cfg->n_layers * hook_numel((struct hook_id){k, 0}, cfg, B, T);
    if (!(t->memory = xmalloc(total * sizeof(float)))) return CIRCD_ENOMEM;
    float *next = t->memory;
    for (int k = 0; k < HOOK_KIND_COUNT; k++) {
        if (!(kinds & KIND(k))) continue;
        t->size[k] = hook_numel((struct hook_id){k, 0}, cfg, B, T);
        t->at[k] = next;
        next += (size_t)cfg->n_layers * t->size[k];
    }
    return CIRCD_OK;
}

/* The hook kinds of s's nodes. */
static unsigned node_kinds(const struct atp_star_scores *s)
{
    unsigned kinds = KIND(HOOK_ATTN_Z) | KIND(HOOK_MLP_OUT);
    if (s->options.attention_inputs) kinds |= KIND(HOOK_ATTN_Q) | KIND(HOOK_ATTN_K) | KIND(HOOK_ATTN_V);
    return kinds;
}

static float *table_get(const struct hook_table *t, enum hook_kind kind, int layer)
{
    return t->at[kind] + (size_t)layer * t->size[kind];
}

static int table_register(struct llama_model *m, const struct hook_table *t, enum hook_action action)
{
    int rc = CIRCD_OK;
    for (int k = 0; k < HOOK_KIND_COUNT && !rc; k++)
        for (int l = 0; t->at[k] && l < t->n_layers && !rc; l++) {
            struct hook_request r = {{k, l}, action, table_get(t, k, l), -1, -1};
            rc = model_hook_add(m, &r);
        }
    return rc;
}

/* ---- one batch's runs: corrupt forward, clean forward + backward ---- */

struct atp_run {
    struct hook_table corrupt, clean, grad;
    float *dlogits;                        /* [B, T, V] dM/dlogits */
    float *delta_q, *delta_k;              /* QK fix: [L, B, H, T, T] P_patched - P_clean of each query head when its
                                            * q, or its kv head's k, takes the corrupt value; else NULL */
    double *metric_clean, *metric_corrupt; /* [B] */
};

static void run_free(struct atp_run *r)
{
    free(r->corrupt.memory);
    free(r->clean.memory);
    free(r->grad.memory);
    free(r->dlogits);
    free(r->delta_q);
    free(r->delta_k);
    free(r->metric_clean);
    free(r->metric_corrupt);
}

/* Buffers for scoring s's nodes on a [B, T] batch; qk: what the QK fix reads; drop: what GradDrop patches. */
static int run_alloc(struct atp_run *r, const struct llama_config *cfg, const struct atp_star_scores *s, int B, int T,
                     int qk, int drop)
{
    memset(r, 0, sizeof *r);
    unsigned nodes = node_kinds(s);
    unsigned rot = qk ? KIND(HOOK_ATTN_ROT_Q) | KIND(HOOK_ATTN_ROT_K) : 0, pattern = qk ? KIND(HOOK_ATTN_PATTERN) : 0;
    int rc = table_alloc(&r->corrupt, cfg, B, T, nodes | rot);
    if (!rc) rc = table_alloc(&r->clean, cfg, B, T, nodes | rot | pattern | (drop ? KIND(HOOK_ATTN_OUT) : 0));
    if (!rc) rc = table_alloc(&r->grad, cfg, B, T, nodes | pattern);
    if (!rc) {
        r->dlogits = xcalloc((size_t)B * T * cfg->vocab_size, sizeof(float));
        r->metric_clean = xcalloc((size_t)B, sizeof(double));
        r->metric_corrupt = xcalloc((size_t)B, sizeof(double));
        if (!r->dlogits || !r->metric_clean || !r->metric_corrupt) rc = CIRCD_ENOMEM;
    }
    if (!rc && qk) {
        size_t deltas = (size_t)cfg->n_layers * r->clean.size[HOOK_ATTN_PATTERN];
        if (!(r->delta_q = xmalloc(deltas * sizeof(float))) || !(r->delta_k = xmalloc(deltas * sizeof(float))))
            rc = CIRCD_ENOMEM;
    }
    if (rc) run_free(r);
    return rc;
}

/* ---- the QK fix's patterns ---- */

void attention_head_pattern(float *pattern, const float *rot_q, const float *rot_k, const struct llama_config *cfg,
                            int B, int T, int h, float *scratch)
{
    int H = cfg->n_heads, KV = cfg->n_kv_heads, hd = cfg->head_dim, j = h / (H / KV);
    float *q = scratch, *k = scratch + (size_t)B * T * hd;
    for (size_t row = 0; row < (size_t)B * T; row++) {
        memcpy(q + row * hd, rot_q + (row * H + h) * hd, (size_t)hd * sizeof(float));
        memcpy(k + row * hd, rot_k + (row * KV + j) * hd, (size_t)hd * sizeof(float));
    }
    attention_pattern_forward(pattern, q, k, B, T, T, 1, 1, hd);
}

/* The QK fix's pattern changes of every layer and query head (hook_pattern's layout), from the cached rot_q/rot_k
 * and patterns: a query head's pattern with its corrupt rot_q, and with its kv head's corrupt rot_k. */
static int qk_pattern_deltas(const struct llama_config *cfg, struct atp_run *r, int B, int T)
{
    int H = cfg->n_heads;
    size_t TT = (size_t)T * T;
    float *pattern = xmalloc(TT * B * sizeof(float));
    float *scratch = xmalloc((size_t)2 * B * T * cfg->head_dim * sizeof(float));
    if (!pattern || !scratch) { free(pattern); free(scratch); return CIRCD_ENOMEM; }
    for (int l = 0; l < cfg->n_layers; l++) {
        const float *clean = table_get(&r->clean, HOOK_ATTN_PATTERN, l);
        for (int side = 0; side < 2; side++) { /* 0: the q side patched, 1: the k side */
            const float *rot_q = table_get(side == 0 ? &r->corrupt : &r->clean, HOOK_ATTN_ROT_Q, l);
            const float *rot_k = table_get(side == 1 ? &r->corrupt : &r->clean, HOOK_ATTN_ROT_K, l);
            float *delta = (side == 0 ? r->delta_q : r->delta_k) + (size_t)l * r->clean.size[HOOK_ATTN_PATTERN];
            for (int h = 0; h < H; h++) {
                attention_head_pattern(pattern, rot_q, rot_k, cfg, B, T, h, scratch);
                for (int b = 0; b < B; b++) {
                    size_t base = ((size_t)b * H + h) * TT;
                    for (size_t i = 0; i < TT; i++) delta[base + i] = pattern[(size_t)b * TT + i] - clean[base + i];
                }
            }
        }
    }
    free(pattern);
    free(scratch);
    return CIRCD_OK;
}

/* Corrupt forward (cached), clean forward (cached) and its backward from dM/dlogits (gradients into r->grad);
 * the QK fix's pattern changes when r holds room for them. */
static int run_forwards(struct llama_model *m, const struct pair_batch *pb, struct atp_run *r)
{
    model_hooks_clear(m);
    int rc = table_register(m, &r->corrupt, HOOK_CACHE);
    if (!rc) rc = model_forward(m, pb->corrupt, NULL, pb->B, pb->T);
    if (!rc) metric_rows(m, pb, r->metric_corrupt);
    model_hooks_clear(m);
    if (!rc) rc = table_register(m, &r->clean, HOOK_CACHE);
    if (!rc) rc = table_register(m, &r->grad, HOOK_GRAD);
    if (!rc) rc = model_forward(m, pb->clean, NULL, pb->B, pb->T);
    if (!rc) {
        metric_rows(m, pb, r->metric_clean);
        metric_dlogits(pb, m->config.vocab_size, r->dlogits);
        rc = model_backward_hooks(m, r->dlogits);
    }
    model_hooks_clear(m);
    if (!rc && r->delta_q) rc = qk_pattern_deltas(&m->config, r, pb->B, pb->T);
    return rc;
}

/* The clean forward + backward again with layer l's attn_out and mlp_out patched to their own clean values: the
 * same forward, no gradient through layer l's residual contributions; gradients into r->grad. */
static int run_dropped_backward(struct llama_model *m, const struct pair_batch *pb, struct atp_run *r, int layer)
{
    struct hook_request attn = {{HOOK_ATTN_OUT, layer}, HOOK_PATCH, table_get(&r->clean, HOOK_ATTN_OUT, layer), -1, -1};
    struct hook_request mlp = {{HOOK_MLP_OUT, layer}, HOOK_PATCH, table_get(&r->clean, HOOK_MLP_OUT, layer), -1, -1};
    model_hooks_clear(m);
    int rc = model_hook_add(m, &attn);
    if (!rc) rc = model_hook_add(m, &mlp);
    if (!rc) rc = table_register(m, &r->grad, HOOK_GRAD);
    if (!rc) rc = model_forward(m, pb->clean, NULL, pb->B, pb->T);
    if (!rc) {
        rc = model_backward_hooks(m, r->dlogits);
    }
    model_hooks_clear(m);
    return rc;
}

/* ---- scores ---- */

/* Per pair b: sum over positions and the node's slice of (corrupt - clean) · grad, into out[b * stride]. */
static void plain_scores(struct atp_node node, const struct llama_config *cfg, const struct atp_run *r, int B, int T,
                         double *out, size_t stride)
{
    enum hook_kind kind = node_hook_kind(node.kind);
    int dims[4];
    int rank = hook_shape((struct hook_id){kind, node.layer}, cfg, B, T, dims);
    size_t width = rank == 4 ? (size_t)dims[2] * dims[3] : (size_t)dims[2]; /* floats per position */
    size_t offset = node.head >= 0 ? (size_t)node.head * dims[3] : 0, len = node.head >= 0 ? (size_t)dims[3] : width;
    const float *corrupt = table_get(&r->corrupt, kind, node.layer), *clean = table_get(&r->clean, kind, node.layer);
    const float *grad = table_get(&r->grad, kind, node.layer);
    for (int b = 0; b < B; b++) {
        double score = 0;
        for (int t = 0; t < T; t++) {
            size_t base = ((size_t)b * T + t) * width + offset;
            for (size_t e = 0; e < len; e++)
                score += ((double)corrupt[base + e] - clean[base + e]) * grad[base + e];
        }
        out[(size_t)b * stride] = score;
    }
}

/* QK fix of a q node (its query head) or a k node (the query heads of its kv head): per pair b, sum over the
 * affected heads of (P_patched - P_clean) · dM/dP, into out[b * stride]. */
static void qk_fixed_scores(struct atp_node node, const struct llama_config *cfg, const struct atp_run *r, int B,
                            int T, double *out, size_t stride)
{
    int H = cfg->n_heads, G = H / cfg->n_kv_heads;
    int first = node.kind == ATP_NODE_Q ? node.head : node.head * G, count = node.kind == ATP_NODE_Q ? 1 : G;
    size_t TT = (size_t)T * T, layer = (size_t)node.layer * r->clean.size[HOOK_ATTN_PATTERN];
    const float *delta = (node.kind == ATP_NODE_Q ? r->delta_q : r->delta_k) + layer;
    const float *grad = table_get(&r->grad, HOOK_ATTN_PATTERN, node.layer);
    for (int b = 0; b < B; b++) {
        double score = 0;
        for (size_t i = ((size_t)b * H + first) * TT; i < ((size_t)b * H + first + count) * TT; i++)
            score += (double)delta[i] * grad[i];
        out[(size_t)b * stride] = score;
    }
}

/* Per-pair scores of every node from the gradients in r->grad: out[b * n_nodes + n]; qk_fix: q/k nodes QK-fixed. */
static void score_nodes(const struct atp_star_scores *s, const struct llama_config *cfg, const struct atp_run *r,
                        int B, int T, int qk_fix, double *out)
{
    for (int n = 0; n < s->n_nodes; n++) {
        struct atp_node node = atp_star_node(s, n);
        if (qk_fix && (node.kind == ATP_NODE_Q || node.kind == ATP_NODE_K))
            qk_fixed_scores(node, cfg, r, B, T, out + n, (size_t)s->n_nodes);
        else
            plain_scores(node, cfg, r, B, T, out + n, (size_t)s->n_nodes);
    }
}

static void add_pair_scores(double *signed_sum, double *abs_sum, const double *per_pair, int B, int n_nodes)
{
    for (int b = 0; b < B; b++)
        for (int n = 0; n < n_nodes; n++) {
            double v = per_pair[(size_t)b * n_nodes + n];
            signed_sum[n] += v;
            abs_sum[n] += fabs(v);
        }
}

static void add_metrics(struct atp_star_scores *s, const double *clean, const double *corrupt, int B)
{
    for (int b = 0; b < B; b++) {
        s->metric_clean_sum += clean[b];
        s->metric_corrupt_sum += corrupt[b];
    }
    s->pairs += B;
}

/* AtP_l of every node from a backward with layer l dropped (r->grad holds it): nodes of layer l set to 0. */
static int dropped_layer_scores(struct llama_model *m, const struct pair_batch *pb, const struct atp_star_scores *s,
                                struct atp_run *r, int layer, double *out)
{
    int rc = run_dropped_backward(m, pb, r, layer);
    if (rc) return rc;
    score_nodes(s, &m->config, r, pb->B, pb->T, s->options.qk_fix, out);
    for (int n = 0; n < s->n_nodes; n++)
        if (atp_star_node(s, n).layer == layer)
            for (int b = 0; b < pb->B; b++) out[(size_t)b * s->n_nodes + n] = 0;
    return CIRCD_OK;
}

int atp_star_batch(struct llama_model *m, const struct pair_batch *pb, struct atp_star_scores *s)
{
    int B = pb->B, L = s->n_layers, nn = s->n_nodes;
    struct atp_run r;
    int rc = run_alloc(&r, &m->config, s, B, pb->T, s->options.qk_fix, s->options.grad_drop);
    if (rc) return rc;
    double *per_pair = xmalloc((size_t)B * nn * sizeof(double));
    double *drop_sum = s->options.grad_drop ? xcalloc((size_t)B * nn, sizeof(double)) : NULL;
    if (!per_pair || (s->options.grad_drop && !drop_sum)) rc = CIRCD_ENOMEM;
    if (!rc) rc = run_forwards(m, pb, &r);
    if (!rc) {
        score_nodes(s, &m->config, &r, B, pb->T, 0, per_pair);
        add_pair_scores(s->signed_sum, s->abs_sum, per_pair, B, nn);
        if (s->options.qk_fix) {
            score_nodes(s, &m->config, &r, B, pb->T, 1, per_pair);
            add_pair_scores(s->qk_signed_sum, s->qk_abs_sum, per_pair, B, nn);
        }
    }
    for (int l = 0; s->options.grad_drop && l < L && !rc; l++) {
        rc = dropped_layer_scores(m, pb, s, &r, l, per_pair);
        for (size_t i = 0; !rc && i < (size_t)B * nn; i++) drop_sum[i] += fabs(per_pair[i]);
    }
    if (!rc && s->options.grad_drop)
        for (size_t i = 0; i < (size_t)B * nn; i++) s->grad_drop_sum[i % nn] += drop_sum[i] / (L - 1);
    if (!rc) add_metrics(s, r.metric_clean, r.metric_corrupt, B);
    free(per_pair);
    free(drop_sum);
    run_free(&r);
    return rc;
}

int atp_star_grad_drop_layer(struct llama_model *m, const struct pair_batch *pb, const struct atp_star_scores *s,
                             int layer, double *out)
{
    if (layer < 0 || layer >= s->n_layers)
        return err_set(CIRCD_EINPUT, "GradDrop: layer %d out of range, the model has %d layers", layer, s->n_layers);
    struct atp_run r;
    int rc = run_alloc(&r, &m->config, s, pb->B, pb->T, s->options.qk_fix, 1);
    if (!rc) rc = run_forwards(m, pb, &r);
    if (!rc) rc = dropped_layer_scores(m, pb, s, &r, layer, out);
    run_free(&r);
    return rc;
}

int atp_star_exact_batch(struct llama_model *m, const struct pair_batch *pb, struct atp_star_scores *s)
{
    int B = pb->B;
    unsigned nodes = node_kinds(s);
    struct hook_table corrupt;
    int rc = table_alloc(&corrupt, &m->config, B, pb->T, nodes);
    if (rc) return rc;
    double *metrics = xcalloc((size_t)3 * B, sizeof *metrics);
    double *clean = metrics, *corrupted = metrics + B, *patched = metrics + 2 * B;
    if (!metrics) rc = CIRCD_ENOMEM;
    model_hooks_clear(m);
    if (!rc) rc = table_register(m, &corrupt, HOOK_CACHE);
    if (!rc) rc = model_forward(m, pb->corrupt, NULL, B, pb->T);
    if (!rc) metric_rows(m, pb, corrupted);
    model_hooks_clear(m);
    if (!rc) rc = model_forward(m, pb->clean, NULL, B, pb->T);
    if (!rc) metric_rows(m, pb, clean);
    for (int n = 0; n < s->n_nodes && !rc; n++) {
        struct atp_node node = atp_star_node(s, n);
        enum hook_kind kind = node_hook_kind(node.kind);
        struct hook_request patch = {{kind, node.layer}, HOOK_PATCH, table_get(&corrupt, kind, node.layer),
                                     node.head, -1};
        rc = add_patch_effect(m, pb, &patch, clean, patched, &s->signed_sum[n], &s->abs_sum[n]);
    }
    model_hooks_clear(m);
    if (!rc) add_metrics(s, clean, corrupted, B);
    free(metrics);
    free(corrupt.memory);
    return rc;
}

/* ---- agreement with exact patching ---- */

static void correlate(const double *x, const double *y, int n, double *pearson, double *spearman)
{
    *pearson = n >= 2 ? correlation_pearson(x, y, n) : NAN;
    *spearman = n >= 2 ? correlation_spearman(x, y, n) : NAN;
}

int atp_star_agreement(const struct atp_star_scores *atp, const struct atp_star_scores *exact,
                       struct atp_star_agreement *out)
{
    int nn = atp->n_nodes;
    if (exact->n_nodes != nn || exact->n_layers != atp->n_layers || exact->n_heads != atp->n_heads ||
        exact->n_kv_heads != atp->n_kv_heads)
        return err_set(CIRCD_EINPUT, "AtP* agreement: the estimates cover %d nodes, exact patching %d", nn,
                       exact->n_nodes);
    if (atp->pairs <= 0 || exact->pairs != atp->pairs)
        return err_set(CIRCD_EINPUT, "AtP* agreement: the estimates saw %lld pairs, exact patching %lld (need the "
                       "same pairs, at least one)", (long long)atp->pairs, (long long)exact->pairs);
    /* per node: mean AtP, exact, |AtP|, |exact|, QK-fixed, GradDrop; then AtP, exact, QK-fixed of the q/k nodes */
    double *v = xcalloc((size_t)9 * nn, sizeof(double));
    if (!v) return CIRCD_ENOMEM;
    double *atp_mean = v, *exact_mean = v + nn, *atp_abs = v + 2 * nn, *exact_abs = v + 3 * nn;
    double *qk_mean = v + 4 * nn, *drop_mean = v + 5 * nn;
    double *qk_atp = v + 6 * nn, *qk_exact = v + 7 * nn, *qk_fixed = v + 8 * nn;
    double pairs = (double)atp->pairs;
    int nqk = 0;
    for (int n = 0; n < nn; n++) {
        atp_mean[n] = atp->signed_sum[n] / pairs;
        exact_mean[n] = exact->signed_sum[n] / pairs;
        atp_abs[n] = atp->abs_sum[n] / pairs;
        exact_abs[n] = exact->abs_sum[n] / pairs;
        if (atp->qk_signed_sum) qk_mean[n] = atp->qk_signed_sum[n] / pairs;
        if (atp->grad_drop_sum) drop_mean[n] = atp->grad_drop_sum[n] / pairs;
        enum atp_node_kind kind = atp_star_node(atp, n).kind;
        if (kind == ATP_NODE_Q || kind == ATP_NODE_K) {
            qk_atp[nqk] = atp_mean[n];
            qk_exact[nqk] = exact_mean[n];
            qk_fixed[nqk++] = qk_mean[n];
        }
    }
    out->n_nodes = nn;
    out->n_qk_nodes = nqk;
    correlate(atp_mean, exact_mean, nn, &out->atp_pearson, &out->atp_spearman);
    correlate(qk_atp, qk_exact, nqk, &out->atp_qk_pearson, &out->atp_qk_spearman);
    correlate(qk_fixed, qk_exact, atp->qk_signed_sum ? nqk : 0, &out->qk_fix_pearson, &out->qk_fix_spearman);
    correlate(atp_abs, exact_abs, nn, &out->abs_atp_pearson, &out->abs_atp_spearman);
    correlate(drop_mean, exact_abs, atp->grad_drop_sum ? nn : 0, &out->grad_drop_pearson, &out->grad_drop_spearman);
    free(v);
    return CIRCD_OK;
}

void atp_star_agreement_print(FILE *f, const struct atp_star_agreement *a)
{
    fprintf(f, "agreement with exact patching (Pearson / Spearman), %d nodes, %d q/k nodes:\n", a->n_nodes,
            a->n_qk_nodes);
    fprintf(f, "  AtP vs exact (signed)            %7.3f / %7.3f\n", a->atp_pearson, a->atp_spearman);
    fprintf(f, "  AtP vs exact, q/k nodes          %7.3f / %7.3f\n", a->atp_qk_pearson, a->atp_qk_spearman);
    fprintf(f, "  QK-fixed vs exact, q/k nodes     %7.3f / %7.3f\n", a->qk_fix_pearson, a->qk_fix_spearman);
    fprintf(f, "  |AtP| vs |exact|                 %7.3f / %7.3f\n", a->abs_atp_pearson, a->abs_atp_spearman);
    fprintf(f, "  GradDrop vs |exact|              %7.3f / %7.3f\n", a->grad_drop_pearson, a->grad_drop_spearman);
}
