/* nodes.c — implementation of nodes.h. */
#include "circuits/nodes.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

#define NODES_MAX_HEADS 1024 /* config_validate's bound on num_attention_heads */

int node_scores_init(struct node_scores *s, const struct llama_config *cfg)
{
    memset(s, 0, sizeof *s);
    s->n_layers = cfg->n_layers;
    s->n_heads = cfg->n_heads;
    s->n_nodes = cfg->n_layers * (cfg->n_heads + 1);
    s->signed_sum = xcalloc((size_t)s->n_nodes, sizeof *s->signed_sum);
    s->abs_sum = xcalloc((size_t)s->n_nodes, sizeof *s->abs_sum);
    if (!s->signed_sum || !s->abs_sum) { node_scores_free(s); return CIRCD_ENOMEM; }
    return CIRCD_OK;
}

void node_scores_free(struct node_scores *s)
{
    free(s->signed_sum);
    free(s->abs_sum);
    memset(s, 0, sizeof *s);
}

const char *node_name(const struct node_scores *s, int n, char *buf, size_t cap)
{
    int heads = s->n_layers * s->n_heads;
    if (n < heads) snprintf(buf, cap, "blocks.%d.attn.hook_z[%d]", n / s->n_heads, n % s->n_heads);
    else snprintf(buf, cap, "blocks.%d.hook_mlp_out", n - heads);
    return buf;
}

void metric_rows(const struct llama_model *m, const struct pair_batch *pb, double *out)
{
    int V = m->config.vocab_size;
    for (int b = 0; b < pb->B; b++) {
        const struct arith_metric_pair *p = &pb->pairs[b];
        const float *row = model_logits(m) + ((size_t)b * pb->T + p->position) * V;
        out[b] = (double)row[p->clean_id] - (double)row[p->cf_id];
    }
}

void metric_dlogits(const struct pair_batch *pb, int V, float *dlogits)
{
    for (int b = 0; b < pb->B; b++) { /* each row's M only reaches its own logits */
        const struct arith_metric_pair *p = &pb->pairs[b];
        float *row = dlogits + ((size_t)b * pb->T + p->position) * V;
        row[p->clean_id] += 1.0f;
        row[p->cf_id] -= 1.0f;
    }
}

/* Per-layer caches of hook_z and hook_mlp_out for one [B, T] batch, in one allocation. */
struct node_cache {
    float *memory;
    float **z, **mlp; /* [L] views */
    size_t z_size, mlp_size;
};

static int node_cache_alloc(struct node_cache *c, const struct llama_config *cfg, int B, int T)
{
    int L = cfg->n_layers;
    c->z_size = (size_t)B * T * cfg->n_heads * cfg->head_dim;
    c->mlp_size = (size_t)B * T * cfg->d_model;
    c->memory = xmalloc((size_t)L * (c->z_size + c->mlp_size) * sizeof(float));
    c->z = xcalloc((size_t)L, sizeof *c->z);
    c->mlp = xcalloc((size_t)L, sizeof *c->mlp);
    if (!c->memory || !c->z || !c->mlp) { free(c->memory); free(c->z); free(c->mlp); return CIRCD_ENOMEM; }
    for (int l = 0; l < L; l++) {
        c->z[l] = c->memory + (size_t)l * (c->z_size + c->mlp_size);
        c->mlp[l] = c->z[l] + c->z_size;
    }
    return CIRCD_OK;
}

static void node_cache_free(struct node_cache *c)
{
    free(c->memory);
    free(c->z);
    free(c->mlp);
}

static int register_all(struct llama_model *m, struct node_cache *c, enum hook_action action)
{
    int rc = CIRCD_OK;
    for (int l = 0; l < m->config.n_layers && !rc; l++) {
        struct hook_request z = {{HOOK_ATTN_Z, l}, action, c->z[l], -1, -1};
        struct hook_request mlp = {{HOOK_MLP_OUT, l}, action, c->mlp[l], -1, -1};
        rc = model_hook_add(m, &z);
        if (!rc) rc = model_hook_add(m, &mlp);
    }
    return rc;
}

/* One forward of `tokens` with every z and mlp_out cached into c; metric per row into metric[]. */
static int cached_forward(struct llama_model *m, const struct pair_batch *pb, const int32_t *tokens,
                          struct node_cache *c, double *metric)
{
    model_hooks_clear(m);
    int rc = register_all(m, c, HOOK_CACHE);
    if (!rc) rc = model_forward(m, tokens, NULL, pb->B, pb->T);
    if (!rc) metric_rows(m, pb, metric);
    model_hooks_clear(m);
    return rc;
}

static void add_metrics(struct node_scores *s, const double *clean, const double *corrupt, int B)
{
    for (int b = 0; b < B; b++) {
        s->metric_clean_sum += clean[b];
        s->metric_corrupt_sum += corrupt[b];
    }
    s->pairs += B;
}

int atp_nodes_batch(struct llama_model *m, const struct pair_batch *pb, struct node_scores *s)
{
    const struct llama_config *cfg = &m->config;
    int B = pb->B, T = pb->T, L = cfg->n_layers, H = cfg->n_heads, hd = cfg->head_dim, d = cfg->d_model;
    int V = cfg->vocab_size;
    if (H > NODES_MAX_HEADS) return err_set(CIRCD_EINPUT, "AtP supports up to %d heads per layer, the model has %d",
                                            NODES_MAX_HEADS, H);
    struct node_cache corrupt, clean, grad;
    int rc = node_cache_alloc(&corrupt, cfg, B, T);
    if (rc) return rc;
    if ((rc = node_cache_alloc(&clean, cfg, B, T))) { node_cache_free(&corrupt); return rc; }
    if ((rc = node_cache_alloc(&grad, cfg, B, T))) { node_cache_free(&corrupt); node_cache_free(&clean); return rc; }
    double *m_clean = xcalloc((size_t)B, sizeof *m_clean), *m_corrupt = xcalloc((size_t)B, sizeof *m_corrupt);
    float *dlogits = xcalloc((size_t)B * T * V, sizeof *dlogits);
    if (!m_clean || !m_corrupt || !dlogits) rc = CIRCD_ENOMEM;
    if (!rc) rc = cached_forward(m, pb, pb->corrupt, &corrupt, m_corrupt);
    if (!rc) {
        rc = register_all(m, &clean, HOOK_CACHE);
        if (!rc) rc = register_all(m, &grad, HOOK_GRAD);
        if (!rc) rc = model_forward(m, pb->clean, NULL, B, T);
    }
    if (!rc) {
        metric_rows(m, pb, m_clean);
        metric_dlogits(pb, V, dlogits);
        rc = model_backward_hooks(m, dlogits);
    }
    model_hooks_clear(m);
    if (!rc) {
        for (int l = 0; l < L; l++) {
            for (int b = 0; b < B; b++) {
                double head_score[NODES_MAX_HEADS] = {0}, mlp_score = 0;
                for (int t = 0; t < T; t++) {
                    size_t zrow = ((size_t)b * T + t) * H * hd, mrow = ((size_t)b * T + t) * d;
                    for (int h = 0; h < H; h++)
                        for (int e = 0; e < hd; e++) {
                            size_t i = zrow + (size_t)h * hd + e;
                            head_score[h] += ((double)corrupt.z[l][i] - clean.z[l][i]) * grad.z[l][i];
                        }
                    for (int e = 0; e < d; e++) {
                        size_t i = mrow + e;
                        mlp_score += ((double)corrupt.mlp[l][i] - clean.mlp[l][i]) * grad.mlp[l][i];
                    }
                }
                for (int h = 0; h < H; h++) {
                    s->signed_sum[l * H + h] += head_score[h];
                    s->abs_sum[l * H + h] += fabs(head_score[h]);
                }
                s->signed_sum[L * H + l] += mlp_score;
                s->abs_sum[L * H + l] += fabs(mlp_score);
            }
        }
        add_metrics(s, m_clean, m_corrupt, B);
    }
    free(m_clean);
    free(m_corrupt);
    free(dlogits);
    node_cache_free(&corrupt);
    node_cache_free(&clean);
    node_cache_free(&grad);
    return rc;
}

int add_patch_effect(struct llama_model *m, const struct pair_batch *pb, const struct hook_request *patch,
                     const double *clean, double *patched, double *signed_sum, double *abs_sum)
{
    model_hooks_clear(m);
    int rc = model_hook_add(m, patch);
    if (!rc) rc = model_forward(m, pb->clean, NULL, pb->B, pb->T);
    model_hooks_clear(m);
    if (rc) return rc;
    metric_rows(m, pb, patched);
    for (int b = 0; b < pb->B; b++) {
        double effect = patched[b] - clean[b];
        *signed_sum += effect;
        *abs_sum += fabs(effect);
    }
    return CIRCD_OK;
}

int exact_patch_nodes_batch(struct llama_model *m, const struct pair_batch *pb, struct node_scores *s)
{
    const struct llama_config *cfg = &m->config;
    int B = pb->B, L = cfg->n_layers, H = cfg->n_heads;
    struct node_cache corrupt;
    int rc = node_cache_alloc(&corrupt, cfg, B, pb->T);
    if (rc) return rc;
    double *m_clean = xcalloc((size_t)B, sizeof *m_clean), *m_corrupt = xcalloc((size_t)B, sizeof *m_corrupt);
    double *m_patched = xcalloc((size_t)B, sizeof *m_patched);
    if (!m_clean || !m_corrupt || !m_patched) rc = CIRCD_ENOMEM;
    if (!rc) rc = cached_forward(m, pb, pb->corrupt, &corrupt, m_corrupt);
    model_hooks_clear(m);
    if (!rc) rc = model_forward(m, pb->clean, NULL, B, pb->T);
    if (!rc) metric_rows(m, pb, m_clean);
    for (int n = 0; n < s->n_nodes && !rc; n++) {
        struct hook_request patch = {{HOOK_ATTN_Z, n / H}, HOOK_PATCH, NULL, n % H, -1};
        if (n < L * H) patch.data = corrupt.z[n / H];
        else patch = (struct hook_request){{HOOK_MLP_OUT, n - L * H}, HOOK_PATCH, corrupt.mlp[n - L * H], -1, -1};
        rc = add_patch_effect(m, pb, &patch, m_clean, m_patched, &s->signed_sum[n], &s->abs_sum[n]);
    }
    model_hooks_clear(m);
    if (!rc) add_metrics(s, m_clean, m_corrupt, B);
    free(m_clean);
    free(m_corrupt);
    free(m_patched);
    node_cache_free(&corrupt);
    return rc;
}

double correlation_pearson(const double *x, const double *y, int n)
{
    double mx = 0, my = 0, sxy = 0, sxx = 0, syy = 0;
    for (int i = 0; i < n; i++) { mx += x[i]; my += y[i]; }
    mx /= n;
    my /= n;
    for (int i = 0; i < n; i++) {
        sxy += (x[i] - mx) * (y[i] - my);
        sxx += (x[i] - mx) * (x[i] - mx);
        syy += (y[i] - my) * (y[i] - my);
    }
    return sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : NAN;
}

/* Ranks 1..n with ties sharing their average rank. */
static void ranks(const double *x, int n, double *r)
{
    for (int i = 0; i < n; i++) {
        int less = 0, equal = 0;
        for (int j = 0; j < n; j++) {
            less += x[j] < x[i];
            equal += x[j] == x[i];
        }
        r[i] = less + (equal + 1) / 2.0;
    }
}

double correlation_spearman(const double *x, const double *y, int n)
{
    double *rx = malloc((size_t)n * sizeof *rx), *ry = malloc((size_t)n * sizeof *ry);
    if (!rx || !ry) { free(rx); free(ry); return NAN; }
    ranks(x, n, rx);
    ranks(y, n, ry);
    double rho = correlation_pearson(rx, ry, n);
    free(rx);
    free(ry);
    return rho;
}
