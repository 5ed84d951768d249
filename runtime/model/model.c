/* model.c — allocation of a Llama model's flat buffers and their named views: the parameter table in Hugging Face
 * names and order, gradients, AdamW moments, activation and gradient-scratch buffers, RoPE tables, and the
 * from-scratch initialisation. */
#include "model/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "model/model_internal.h"
#include "util/error.h"

static void add_tensor(struct llama_model *m, size_t *offset, const char *name, int rows, int cols)
{
    struct param_tensor *t = &m->tensors[m->n_tensors++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->offset = *offset;
    t->ndim = cols ? 2 : 1;
    t->shape[0] = rows;
    t->shape[1] = cols;
    t->numel = (size_t)rows * (size_t)(cols ? cols : 1);
    *offset += t->numel;
}

/* Fills m->tensors in storage order: embed, per layer (ln1, q, k, v, o, ln2, gate, up, down), norm, lm_head. */
static void build_tensor_table(struct llama_model *m)
{
    const struct llama_config *c = &m->config;
    int d = c->d_model, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    size_t off = 0;
    char name[MODEL_MAX_NAME];
    add_tensor(m, &off, "model.embed_tokens.weight", c->vocab_size, d);
    for (int l = 0; l < c->n_layers; l++) {
#define LAYER_TENSOR(suffix, rows, cols)                                       \
    do {                                                                       \
        snprintf(name, sizeof name, "model.layers.%d.%s", l, suffix);          \
        add_tensor(m, &off, name, rows, cols);                                 \
    } while (0)
        LAYER_TENSOR("input_layernorm.weight", d, 0);
        LAYER_TENSOR("self_attn.q_proj.weight", qd, d);
        LAYER_TENSOR("self_attn.k_proj.weight", kvd, d);
        LAYER_TENSOR("self_attn.v_proj.weight", kvd, d);
        LAYER_TENSOR("self_attn.o_proj.weight", d, qd);
        LAYER_TENSOR("post_attention_layernorm.weight", d, 0);
        LAYER_TENSOR("mlp.gate_proj.weight", c->d_ff, d);
        LAYER_TENSOR("mlp.up_proj.weight", c->d_ff, d);
        LAYER_TENSOR("mlp.down_proj.weight", d, c->d_ff);
#undef LAYER_TENSOR
    }
    add_tensor(m, &off, "model.norm.weight", d, 0);
    if (!c->tie_embeddings) add_tensor(m, &off, "lm_head.weight", c->vocab_size, d);
    m->n_params = off;
}

/* The same table for params, grads and their device copies. */
void model_bind_views(const struct llama_model *m, struct param_views *v, float *base)
{
    const struct param_tensor *t = m->tensors;
    v->embed = base + t[0].offset;
    int i = 1;
    for (int l = 0; l < m->config.n_layers; l++) {
        struct layer_params *p = &v->layers[l];
        float **slots[] = {&p->ln1, &p->wq, &p->wk, &p->wv, &p->wo, &p->ln2, &p->w_gate, &p->w_up, &p->w_down};
        for (size_t s = 0; s < sizeof slots / sizeof slots[0]; s++) *slots[s] = base + t[i++].offset;
    }
    v->norm = base + t[i++].offset;
    v->lm_head = m->config.tie_embeddings ? v->embed : base + t[i].offset;
}

int model_create(struct llama_model *m, const struct llama_config *cfg)
{
    memset(m, 0, sizeof *m);
    int rc = config_validate(cfg);
    if (rc) return rc;
    m->config = *cfg;
    m->backend = kernels_backend_cpu();
    m->loss = NAN;
    int n_tensors = 3 + 9 * cfg->n_layers;
    m->tensors = xcalloc((size_t)n_tensors, sizeof *m->tensors);
    m->w.layers = xcalloc((size_t)cfg->n_layers, sizeof *m->w.layers);
    m->dw.layers = xcalloc((size_t)cfg->n_layers, sizeof *m->dw.layers);
    m->acts.layers = xcalloc((size_t)cfg->n_layers, sizeof *m->acts.layers);
    if (!m->tensors || !m->w.layers || !m->dw.layers || !m->acts.layers) goto nomem;
    build_tensor_table(m);
    m->params = xcalloc(m->n_params, sizeof(float));
    int half = cfg->head_dim / 2;
    m->rope_cos = xcalloc((size_t)cfg->max_seq * half, sizeof(float));
    m->rope_sin = xcalloc((size_t)cfg->max_seq * half, sizeof(float));
    float *inv_freq = xcalloc((size_t)half, sizeof(float));
    if (!m->params || !m->rope_cos || !m->rope_sin || !inv_freq) { free(inv_freq); goto nomem; }
    model_bind_views(m, &m->w, m->params);
    config_rope_inv_freq(cfg, inv_freq);
    rope_tables(m->rope_cos, m->rope_sin, inv_freq, cfg->max_seq, cfg->head_dim);
    free(inv_freq);
    return CIRCD_OK;
nomem:
    model_free(m);
    return CIRCD_ENOMEM;
}

void model_free(struct llama_model *m)
{
    model_device_free(m);
    free(m->tensors);
    free(m->params);
    free(m->grads);
    free(m->adam_m);
    free(m->adam_v);
    free(m->w.layers);
    free(m->dw.layers);
    free(m->rope_cos);
    free(m->rope_sin);
    free(m->act_memory);
    free(m->grad_memory);
    free(m->acts.layers);
    free(m->acts.tokens);
    free(m->acts.targets);
    free(m->hooks);
    memset(m, 0, sizeof *m);
}

void model_init_random(struct llama_model *m, uint64_t seed)
{
    struct rng r;
    rng_seed(&r, seed);
    float out_scale = 1.0f / sqrtf(2.0f * (float)m->config.n_layers);
    for (int i = 0; i < m->n_tensors; i++) {
        const struct param_tensor *t = &m->tensors[i];
        float *p = m->params + t->offset;
        if (t->ndim == 1) {
            for (size_t j = 0; j < t->numel; j++) p[j] = 1.0f;
            continue;
        }
        float std = 0.02f;
        if (strstr(t->name, "o_proj") || strstr(t->name, "down_proj")) std *= out_scale;
        for (size_t j = 0; j < t->numel; j++) p[j] = std * rng_normal(&r);
    }
    m->step = 0;
    model_params_changed(m);
}

const struct param_tensor *model_find_tensor(const struct llama_model *m, const char *name)
{
    for (int i = 0; i < m->n_tensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0) return &m->tensors[i];
    return NULL;
}

int model_enable_grads(struct llama_model *m)
{
    if (m->grads) return CIRCD_OK;
    m->grads = xcalloc(m->n_params, sizeof(float));
    if (!m->grads) return CIRCD_ENOMEM;
    model_bind_views(m, &m->dw, m->grads);
    return model_device_enable(m);
}

int model_enable_training(struct llama_model *m)
{
    int rc = model_enable_grads(m);
    if (rc) return rc;
    if (!m->adam_m) m->adam_m = xcalloc(m->n_params, sizeof(float));
    if (!m->adam_v) m->adam_v = xcalloc(m->n_params, sizeof(float));
    if (!m->adam_m || !m->adam_v) return CIRCD_ENOMEM;
    return model_device_enable(m);
}

void model_zero_grad(struct llama_model *m)
{
    struct model_compute c;
    model_compute_view(m, &c);
    if (c.grads) c.k->vec_zero(c.grads, m->n_params);
}

/* Carves `count` floats out of *cursor (a bump allocator over one big buffer). */
static float *carve(float **cursor, size_t count)
{
    float *p = *cursor;
    *cursor += (count + 15) & ~(size_t)15; /* keep every view 64-byte aligned */
    return p;
}

static size_t aligned(size_t count) { return (count + 15) & ~(size_t)15; }

void model_carve_acts(const struct llama_config *c, struct model_acts *acts, struct model_grad_scratch *s,
                      float *act_base, float *grad_base, int B, int T)
{
    size_t N = (size_t)B * T;
    size_t d = c->d_model, qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    size_t ff = c->d_ff, V = c->vocab_size, pat = (size_t)B * c->n_heads * T * T;
    float *cur = act_base;
    float *resid = carve(&cur, N * d); /* embed == resid_pre of layer 0 */
    acts->embed = resid;
    for (int l = 0; l < c->n_layers; l++) {
        struct layer_acts *a = &acts->layers[l];
        a->resid_pre = resid;
        a->ln1 = carve(&cur, N * d);
        a->ln1_rstd = carve(&cur, N);
        a->q = carve(&cur, N * qd);
        a->k = carve(&cur, N * kvd);
        a->v = carve(&cur, N * kvd);
        a->q_rot = carve(&cur, N * qd);
        a->k_rot = carve(&cur, N * kvd);
        a->pattern = carve(&cur, pat);
        a->z = carve(&cur, N * qd);
        a->attn_out = carve(&cur, N * d);
        a->resid_mid = carve(&cur, N * d);
        a->ln2 = carve(&cur, N * d);
        a->ln2_rstd = carve(&cur, N);
        a->gate = carve(&cur, N * ff);
        a->up = carve(&cur, N * ff);
        a->hidden = carve(&cur, N * ff);
        a->mlp_out = carve(&cur, N * d);
        a->resid_post = carve(&cur, N * d);
        resid = a->resid_post;
    }
    acts->ln_final = carve(&cur, N * d);
    acts->ln_final_rstd = carve(&cur, N);
    acts->logits = carve(&cur, N * V);
    acts->losses = carve(&cur, N);

    cur = grad_base;
    s->dlogits = carve(&cur, N * V);
    s->dresid = carve(&cur, N * d);
    s->dln = carve(&cur, N * d);
    s->dbranch = carve(&cur, N * d);
    s->dq = carve(&cur, N * qd);
    s->dq_rot = carve(&cur, N * qd);
    s->dz = carve(&cur, N * qd);
    s->dk = carve(&cur, N * kvd);
    s->dk_rot = carve(&cur, N * kvd);
    s->dv = carve(&cur, N * kvd);
    s->dpattern = carve(&cur, pat);
    s->dgate = carve(&cur, N * ff);
    s->dup = carve(&cur, N * ff);
    s->dhidden = carve(&cur, N * ff);
}

int model_reserve(struct llama_model *m, int B, int T)
{
    const struct llama_config *c = &m->config;
    if (B <= 0 || T <= 0) return err_set(CIRCD_EINPUT, "batch shape [%d, %d] must be positive", B, T);
    if (T > c->max_seq)
        return err_set(CIRCD_EINPUT, "sequence length %d exceeds max_position_embeddings %d", T, c->max_seq);
    size_t N = (size_t)B * T;
    if (N <= m->act_capacity_rows && T <= m->act_T && N * T <= m->act_capacity_rows * m->act_T) return CIRCD_OK;

    size_t d = c->d_model, qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    size_t ff = c->d_ff, V = c->vocab_size, pat = (size_t)B * c->n_heads * T * T;
    size_t per_layer = 5 * aligned(N * d) + 2 * aligned(N) + 3 * aligned(N * qd) + 3 * aligned(N * kvd) +
                       aligned(pat) + 3 * aligned(N * ff); /* resid_post aliases the next resid_pre */
    size_t act_total = aligned(N * d) * (c->n_layers + 1) + per_layer * c->n_layers + aligned(N * d) +
                       aligned(N) + aligned(N * V) + aligned(N);
    size_t grad_total = aligned(N * V) + 3 * aligned(N * d) + 3 * aligned(N * qd) + 3 * aligned(N * kvd) +
                        aligned(pat) + 3 * aligned(N * ff);

    free(m->act_memory);
    free(m->grad_memory);
    free(m->acts.tokens);
    free(m->acts.targets);
    m->act_memory = xcalloc(act_total, sizeof(float));
    m->grad_memory = xcalloc(grad_total, sizeof(float));
    m->acts.tokens = xcalloc(N, sizeof(int32_t));
    m->acts.targets = xcalloc(N, sizeof(int32_t));
    m->act_capacity_rows = 0;
    m->act_T = 0;
    if (!m->act_memory || !m->grad_memory || !m->acts.tokens || !m->acts.targets) return CIRCD_ENOMEM;

    model_carve_acts(c, &m->acts, &m->scratch, m->act_memory, m->grad_memory, B, T);
    size_t widest = N * (V > ff ? (V > qd ? V : qd) : (ff > qd ? ff : qd));
    size_t staging = widest > pat ? widest : pat;
    if (staging < N * d) staging = N * d;
    int rc = model_device_reserve(m, act_total, grad_total, staging, B, T);
    if (rc) return rc;
    m->act_capacity_rows = N;
    m->act_T = T;
    return CIRCD_OK;
}
