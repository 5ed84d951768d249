/* edge_grads.c — the gradient of M with respect to every downstream input of the circuit graph (edges.h), from one
 * backward of the model with gradient hooks at attn.hook_z, attn.hook_pattern, mlp.hook_pre, mlp.hook_pre_linear
 * and the last hook_resid_post, and the clean forward's activations (the model keeps them).
 *
 * Query head h's inputs: its q path is the model's own (the pattern gradient of head h reaches only its q); its k
 * and v inputs feed per-query-head copies of kv head h / group, so the attention backward runs with n_kv = n_heads
 * on expanded k and v, giving each query head its own dk and dv. Each is taken back through RoPE (q, k), the head's
 * rows of W_q / its kv head's rows of W_k, W_v, and the layer's input RMSNorm on resid_pre. The MLP input:
 * d(ln2) = dgate · W_gate + dup · W_up through post_attention_layernorm on resid_mid. The logits read
 * blocks.{L-1}.hook_resid_post. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "circuits/edges.h"
#include "kernels/kernels.h"
#include "util/error.h"

int input_grads_alloc(struct input_grads *g, const struct llama_config *cfg, int B, int T)
{
    memset(g, 0, sizeof *g);
    int L = cfg->n_layers;
    size_t N = (size_t)B * T, d = (size_t)cfg->d_model, qd = (size_t)cfg->n_heads * cfg->head_dim;
    size_t ff = (size_t)cfg->d_ff, pattern = (size_t)B * cfg->n_heads * T * T;
    size_t per_layer = N * qd + pattern + 2 * N * ff;
    size_t total = (size_t)L * per_layer + N * d + 7 * N * qd + N * d;
    g->B = B;
    g->T = T;
    g->memory = xmalloc(total * sizeof(float));
    g->dz = xcalloc((size_t)L, sizeof *g->dz);
    g->dpattern = xcalloc((size_t)L, sizeof *g->dpattern);
    g->dgate = xcalloc((size_t)L, sizeof *g->dgate);
    g->dup = xcalloc((size_t)L, sizeof *g->dup);
    if (!g->memory || !g->dz || !g->dpattern || !g->dgate || !g->dup) {
        input_grads_free(g);
        return CIRCD_ENOMEM;
    }
    float *p = g->memory;
    for (int l = 0; l < L; l++) {
        g->dz[l] = p; p += N * qd;
        g->dpattern[l] = p; p += pattern;
        g->dgate[l] = p; p += N * ff;
        g->dup[l] = p; p += N * ff;
    }
    g->dresid_final = p; p += N * d;
    float **scratch[7] = {&g->k_rot, &g->v, &g->dq_rot, &g->dk_rot, &g->dq, &g->dk, &g->dv};
    for (int i = 0; i < 7; i++) { *scratch[i] = p; p += N * qd; }
    g->dln = p;
    return CIRCD_OK;
}

void input_grads_free(struct input_grads *g)
{
    free(g->memory);
    free(g->dz);
    free(g->dpattern);
    free(g->dgate);
    free(g->dup);
    memset(g, 0, sizeof *g);
}

int input_grads_register(struct input_grads *g, struct llama_model *m)
{
    int L = m->config.n_layers, rc = CIRCD_OK;
    for (int l = 0; l < L && !rc; l++) {
        struct hook_request req[4] = {
            {{HOOK_ATTN_Z, l}, HOOK_GRAD, g->dz[l], -1, -1},
            {{HOOK_ATTN_PATTERN, l}, HOOK_GRAD, g->dpattern[l], -1, -1},
            {{HOOK_MLP_PRE, l}, HOOK_GRAD, g->dgate[l], -1, -1},
            {{HOOK_MLP_PRE_LINEAR, l}, HOOK_GRAD, g->dup[l], -1, -1},
        };
        for (int i = 0; i < 4 && !rc; i++) rc = model_hook_add(m, &req[i]);
    }
    struct hook_request last = {{HOOK_RESID_POST, L - 1}, HOOK_GRAD, g->dresid_final, -1, -1};
    if (!rc) rc = model_hook_add(m, &last);
    return rc;
}

/* dst [N, n_heads*hd] = per-query-head copies of src [N, n_kv*hd] */
static void expand_kv(float *dst, const float *src, size_t N, int n_heads, int n_kv, int hd)
{
    int group = n_heads / n_kv;
    for (size_t i = 0; i < N; i++)
        for (int h = 0; h < n_heads; h++)
            memcpy(dst + (i * n_heads + h) * hd, src + (i * n_kv + h / group) * hd, (size_t)hd * sizeof(float));
}

/* out[N, d] = d(input) of one head's projection: dproj (head's [N, hd] slice of a [N, stride] gradient) through
 * the projection rows w_rows [hd, d], then back through the input RMSNorm. */
static void head_input_grad(struct input_grads *g, const struct llama_model *m, const struct layer_acts *a,
                            const struct layer_params *p, const float *dproj, int stride, const float *w_rows,
                            float *out)
{
    int N = g->B * g->T, d = m->config.d_model, hd = m->config.head_dim;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, d, hd, 1.0f, dproj, stride, w_rows, d, 0.0f, g->dln,
                d);
    vec_zero(out, (size_t)N * d);
    rmsnorm_backward(out, NULL, g->dln, a->resid_pre, p->ln1, a->ln1_rstd, N, d);
}

void input_grads_layer(struct input_grads *g, const struct llama_model *m, int l, float *out)
{
    const struct llama_config *c = &m->config;
    int B = g->B, T = g->T, N = B * T, d = c->d_model, H = c->n_heads, KV = c->n_kv_heads, hd = c->head_dim;
    int ff = c->d_ff, qd = H * hd, group = H / KV;
    size_t Nqd = (size_t)N * qd, Nd = (size_t)N * d;
    const struct layer_acts *a = &m->acts.layers[l];
    const struct layer_params *p = &m->w.layers[l];

    /* attention backward on per-query-head k and v */
    expand_kv(g->k_rot, a->k_rot, (size_t)N, H, KV, hd);
    expand_kv(g->v, a->v, (size_t)N, H, KV, hd);
    vec_zero(g->dv, Nqd);
    attention_mix_backward(NULL, g->dv, g->dz[l], a->pattern, g->v, B, T, T, H, H, hd);
    vec_zero(g->dq_rot, Nqd);
    vec_zero(g->dk_rot, Nqd);
    attention_pattern_backward(g->dq_rot, g->dk_rot, g->dpattern[l], a->pattern, a->q_rot, g->k_rot, B, T, T, H, H,
                               hd);
    vec_zero(g->dq, Nqd);
    vec_zero(g->dk, Nqd);
    rope_backward(g->dq, g->dq_rot, m->rope_cos, m->rope_sin, B, T, H, hd, 0);
    rope_backward(g->dk, g->dk_rot, m->rope_cos, m->rope_sin, B, T, H, hd, 0);

    for (int h = 0; h < H; h++) {
        size_t qrows = (size_t)h * hd * d, kvrows = (size_t)(h / group) * hd * d;
        head_input_grad(g, m, a, p, g->dq + (size_t)h * hd, qd, p->wq + qrows, out + (size_t)h * Nd);
        head_input_grad(g, m, a, p, g->dk + (size_t)h * hd, qd, p->wk + kvrows, out + (size_t)(H + h) * Nd);
        head_input_grad(g, m, a, p, g->dv + (size_t)h * hd, qd, p->wv + kvrows, out + (size_t)(2 * H + h) * Nd);
    }

    /* MLP input */
    float *mlp = out + (size_t)3 * H * Nd;
    vec_zero(g->dln, Nd);
    matmul_backward(g->dln, NULL, g->dgate[l], a->ln2, p->w_gate, N, d, ff);
    matmul_backward(g->dln, NULL, g->dup[l], a->ln2, p->w_up, N, d, ff);
    vec_zero(mlp, Nd);
    rmsnorm_backward(mlp, NULL, g->dln, a->resid_mid, p->ln2, a->ln2_rstd, N, d);
}

void input_grads_logits(const struct input_grads *g, const struct llama_model *m, float *out)
{
    memcpy(out, g->dresid_final, (size_t)g->B * g->T * m->config.d_model * sizeof(float));
}
