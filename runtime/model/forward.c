/* forward.c — the forward pass of the Llama model over a [B, T] batch of token ids, firing the hook points in
 * TransformerLens order, with the mean next-token cross-entropy when targets are given. Its pieces (embedding, one
 * layer, final norm + lm_head) are shared with forward_range.c, so a pipeline stage computes exactly the same
 * values. */
#include <math.h>
#include <string.h>

#include "model/model_internal.h"
#include "util/error.h"

int model_check_tokens(const struct llama_model *m, const int32_t *ids, size_t n, const char *what, int allow_ignore)
{
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if ((id < 0 && !(allow_ignore && id == -1)) || id >= m->config.vocab_size)
            return err_set(CIRCD_EINPUT, "%s[%zu] = %d is outside the vocabulary [0, %d)%s", what, i, (int)id,
                           m->config.vocab_size, allow_ignore ? " (or -1 to ignore)" : "");
    }
    return CIRCD_OK;
}

int forward_begin(struct llama_model *m, const int32_t *tokens, const int32_t *targets, int B, int T)
{
    size_t N = (size_t)B * T;
    m->B = B;
    m->T = T;
    if (tokens) memcpy(m->acts.tokens, tokens, N * sizeof(int32_t));
    if (targets) memcpy(m->acts.targets, targets, N * sizeof(int32_t));
    else for (size_t i = 0; i < N; i++) m->acts.targets[i] = -1;
    m->loss = NAN;
    m->n_loss_rows = 0;
    struct model_device *dv = m->device;
    if (!dv) return CIRCD_OK;
    int rc = model_device_refresh(m);
    if (rc) return rc;
    dv->k->copy(dv->tokens, m->acts.tokens, N * sizeof(int32_t), KERNELS_HOST_TO_DEVICE);
    dv->k->copy(dv->targets, m->acts.targets, N * sizeof(int32_t), KERNELS_HOST_TO_DEVICE);
    dv->acts_stale = dv->logits_stale = 1;
    return CIRCD_OK;
}

void forward_embed(struct llama_model *m)
{
    struct model_compute x;
    model_compute_view(m, &x);
    x.k->embedding_forward(x.acts->embed, x.acts->tokens, x.w->embed, m->B * m->T, m->config.d_model);
    hook_fire_forward(m, HOOK_EMBED, -1, x.acts->embed);
}

void forward_layer(struct llama_model *m, int l)
{
    const struct llama_config *c = &m->config;
    int B = m->B, T = m->T, n = B * T;
    size_t N = (size_t)n;
    int d = c->d_model, nh = c->n_heads, nkv = c->n_kv_heads, hd = c->head_dim, ff = c->d_ff;
    int qd = nh * hd, kvd = nkv * hd;
    float eps = c->norm_eps;
    struct model_compute x;
    model_compute_view(m, &x);
    const struct kernels_backend *k = x.k;
    struct layer_acts *a = &x.acts->layers[l];
    const struct layer_params *p = &x.w->layers[l];
    hook_fire_forward(m, HOOK_RESID_PRE, l, a->resid_pre);

    k->rmsnorm_forward(a->ln1, a->ln1_rstd, a->resid_pre, p->ln1, n, d, eps);
    k->matmul_forward(a->q, a->ln1, p->wq, n, d, qd);
    hook_fire_forward(m, HOOK_ATTN_Q, l, a->q);
    k->matmul_forward(a->k, a->ln1, p->wk, n, d, kvd);
    hook_fire_forward(m, HOOK_ATTN_K, l, a->k);
    k->matmul_forward(a->v, a->ln1, p->wv, n, d, kvd);
    hook_fire_forward(m, HOOK_ATTN_V, l, a->v);
    k->rope_forward(a->q_rot, a->q, x.rope_cos, x.rope_sin, B, T, nh, hd, 0);
    hook_fire_forward(m, HOOK_ATTN_ROT_Q, l, a->q_rot);
    k->rope_forward(a->k_rot, a->k, x.rope_cos, x.rope_sin, B, T, nkv, hd, 0);
    hook_fire_forward(m, HOOK_ATTN_ROT_K, l, a->k_rot);
    k->attention_pattern_forward(a->pattern, a->q_rot, a->k_rot, B, T, T, nh, nkv, hd);
    hook_fire_forward(m, HOOK_ATTN_PATTERN, l, a->pattern);
    k->attention_mix_forward(a->z, a->pattern, a->v, B, T, T, nh, nkv, hd);
    hook_fire_forward(m, HOOK_ATTN_Z, l, a->z);
    k->matmul_forward(a->attn_out, a->z, p->wo, n, qd, d);
    hook_fire_forward(m, HOOK_ATTN_OUT, l, a->attn_out);
    k->vec_add(a->resid_mid, a->resid_pre, a->attn_out, N * d);
    hook_fire_forward(m, HOOK_RESID_MID, l, a->resid_mid);

    k->rmsnorm_forward(a->ln2, a->ln2_rstd, a->resid_mid, p->ln2, n, d, eps);
    k->matmul_forward(a->gate, a->ln2, p->w_gate, n, d, ff);
    hook_fire_forward(m, HOOK_MLP_PRE, l, a->gate);
    k->matmul_forward(a->up, a->ln2, p->w_up, n, d, ff);
    hook_fire_forward(m, HOOK_MLP_PRE_LINEAR, l, a->up);
    k->swiglu_forward(a->hidden, a->gate, a->up, N * ff);
    hook_fire_forward(m, HOOK_MLP_POST, l, a->hidden);
    k->matmul_forward(a->mlp_out, a->hidden, p->w_down, n, ff, d);
    hook_fire_forward(m, HOOK_MLP_OUT, l, a->mlp_out);
    k->vec_add(a->resid_post, a->resid_mid, a->mlp_out, N * d);
    hook_fire_forward(m, HOOK_RESID_POST, l, a->resid_post);
}

void forward_head(struct llama_model *m)
{
    const struct llama_config *c = &m->config;
    int n = m->B * m->T;
    struct model_compute x;
    model_compute_view(m, &x);
    const struct kernels_backend *k = x.k;
    struct model_acts *acts = x.acts;
    const float *final_resid = c->n_layers ? acts->layers[c->n_layers - 1].resid_post : acts->embed;
    k->rmsnorm_forward(acts->ln_final, acts->ln_final_rstd, final_resid, x.w->norm, n, c->d_model, c->norm_eps);
    hook_fire_forward(m, HOOK_LN_FINAL, -1, acts->ln_final);
    k->matmul_forward(acts->logits, acts->ln_final, x.w->lm_head, n, c->d_model, c->vocab_size);
    hook_fire_forward(m, HOOK_LOGITS, -1, acts->logits);
}

int model_forward(struct llama_model *m, const int32_t *tokens, const int32_t *targets, int B, int T)
{
    int rc = model_reserve(m, B, T);
    if (rc) return rc;
    size_t N = (size_t)B * T;
    if ((rc = model_check_tokens(m, tokens, N, "tokens", 0))) return rc;
    if (targets && (rc = model_check_tokens(m, targets, N, "targets", 1))) return rc;

    if ((rc = forward_begin(m, tokens, targets, B, T))) return rc;
    forward_embed(m);
    for (int l = 0; l < m->config.n_layers; l++) forward_layer(m, l);
    forward_head(m);

    if (targets) {
        struct model_compute x;
        model_compute_view(m, &x);
        x.k->crossentropy_forward(x.acts->losses, x.acts->logits, x.acts->targets, (int)N, m->config.vocab_size);
        if (x.acts != &m->acts)
            x.k->copy(m->acts.losses, x.acts->losses, N * sizeof(float), KERNELS_DEVICE_TO_HOST);
        double sum = 0.0;
        for (size_t i = 0; i < N; i++)
            if (targets[i] >= 0) { sum += m->acts.losses[i]; m->n_loss_rows++; }
        m->loss = m->n_loss_rows ? (float)(sum / m->n_loss_rows) : 0.0f;
    }
    return model_device_check(m, "the forward pass");
}

const float *model_logits(const struct llama_model *m)
{
    struct model_device *dv = m->device;
    if (dv && dv->logits_stale && m->act_capacity_rows) {
        size_t n = (size_t)m->B * m->T * m->config.vocab_size;
        dv->k->copy(m->acts.logits, dv->acts.logits, n * sizeof(float), KERNELS_DEVICE_TO_HOST);
        dv->logits_stale = 0;
        if (model_device_check(m, "downloading the logits")) return NULL;
    }
    return m->acts.logits;
}

void model_next_token_targets(int32_t *targets, const int32_t *tokens, int B, int T)
{
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            targets[(size_t)b * T + t] = t + 1 < T ? tokens[(size_t)b * T + t + 1] : -1;
}
