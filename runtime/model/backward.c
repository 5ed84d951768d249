/* backward.c — the backward pass of the Llama model: from dlogits (or the mean cross-entropy of the last forward)
 * down to every parameter gradient, firing the hook points' gradient readers on the way. Layer by layer it mirrors
 * forward.c in reverse; the residual-stream gradient is carried in one running buffer. */
#include <math.h>
#include <string.h>

#include "model/model_internal.h"
#include "util/error.h"

/* The gradient of a branch output (attn_out, mlp_out) equals the residual gradient; it needs its own copy only
 * when a hook will read, mask or add to it (an added term reaches the branch, not the residual skip path). */
static float *branch_grad(struct llama_model *m, const struct model_compute *x, enum hook_kind kind, int layer,
                          size_t n)
{
    struct model_grad_scratch *s = x->s;
    unsigned actions = (1u << HOOK_GRAD) | (1u << HOOK_PATCH) | (1u << HOOK_GRAD_ADD);
    if (!hook_is_registered(m, kind, layer, actions)) return s->dresid;
    x->k->copy(s->dbranch, s->dresid, n * sizeof(float), KERNELS_DEVICE_TO_DEVICE);
    hook_fire_backward(m, kind, layer, s->dbranch);
    return s->dbranch;
}

/* with_params = 0: the same pass without the parameter-gradient products (every dweight NULL), for callers that
 * only read hook gradients. */
static int backward(struct llama_model *m, const float *dlogits, int with_params)
{
    const struct llama_config *c = &m->config;
    static const struct layer_params no_params;
    if (!m->act_capacity_rows || !m->B) return err_set(CIRCD_EINTERNAL, "model_backward: no forward to differentiate");
    if (!dlogits && m->n_loss_rows == 0)
        return err_set(CIRCD_EINPUT, "model_backward: the last forward had no targets and no dlogits were given");

    int B = m->B, T = m->T, n = B * T;
    size_t N = (size_t)n;
    int d = c->d_model, nh = c->n_heads, nkv = c->n_kv_heads, hd = c->head_dim, ff = c->d_ff;
    int qd = nh * hd, kvd = nkv * hd, V = c->vocab_size;
    size_t pattern_size = (size_t)B * nh * T * T;
    int rc = model_device_refresh(m);
    if (rc) return rc;
    struct model_compute x;
    model_compute_view(m, &x);
    const struct kernels_backend *k = x.k;
    struct model_acts *acts = x.acts;
    struct model_grad_scratch *s = x.s;

    if (dlogits) {
        k->copy(s->dlogits, dlogits, N * V * sizeof(float), KERNELS_HOST_TO_DEVICE);
    } else {
        k->fill(s->dln, 1.0f / (float)m->n_loss_rows, N); /* dln doubles as the per-row dloss here */
        k->vec_zero(s->dlogits, N * V);
        k->crossentropy_backward(s->dlogits, acts->logits, acts->targets, s->dln, n, V);
    }
    hook_fire_backward(m, HOOK_LOGITS, -1, s->dlogits);

    k->vec_zero(s->dln, N * d);
    k->matmul_backward(s->dln, with_params ? x.dw->lm_head : NULL, s->dlogits, acts->ln_final, x.w->lm_head, n, d, V);
    hook_fire_backward(m, HOOK_LN_FINAL, -1, s->dln);
    k->vec_zero(s->dresid, N * d);
    const float *final_resid = c->n_layers ? acts->layers[c->n_layers - 1].resid_post : acts->embed;
    k->rmsnorm_backward(s->dresid, with_params ? x.dw->norm : NULL, s->dln, final_resid, x.w->norm, acts->ln_final_rstd,
                     n, d);

    for (int l = c->n_layers - 1; l >= 0; l--) {
        struct layer_acts *a = &acts->layers[l];
        const struct layer_params *p = &x.w->layers[l];
        const struct layer_params *dp = with_params ? &x.dw->layers[l] : &no_params;
        hook_fire_backward(m, HOOK_RESID_POST, l, s->dresid);

        /* MLP: resid_post = resid_mid + down(silu(gate(ln2)) * up(ln2)) */
        float *dmlp_out = branch_grad(m, &x, HOOK_MLP_OUT, l, N * d);
        k->vec_zero(s->dhidden, N * ff);
        k->matmul_backward(s->dhidden, dp->w_down, dmlp_out, a->hidden, p->w_down, n, ff, d);
        hook_fire_backward(m, HOOK_MLP_POST, l, s->dhidden);
        k->vec_zero(s->dgate, N * ff);
        k->vec_zero(s->dup, N * ff);
        k->swiglu_backward(s->dgate, s->dup, s->dhidden, a->gate, a->up, N * ff);
        hook_fire_backward(m, HOOK_MLP_PRE, l, s->dgate);
        hook_fire_backward(m, HOOK_MLP_PRE_LINEAR, l, s->dup);
        k->vec_zero(s->dln, N * d);
        k->matmul_backward(s->dln, dp->w_gate, s->dgate, a->ln2, p->w_gate, n, d, ff);
        k->matmul_backward(s->dln, dp->w_up, s->dup, a->ln2, p->w_up, n, d, ff);
        k->rmsnorm_backward(s->dresid, dp->ln2, s->dln, a->resid_mid, p->ln2, a->ln2_rstd, n, d);
        hook_fire_backward(m, HOOK_RESID_MID, l, s->dresid);

        /* attention: resid_mid = resid_pre + o_proj(attn(rope(q), rope(k), v)) */
        float *dattn_out = branch_grad(m, &x, HOOK_ATTN_OUT, l, N * d);
        k->vec_zero(s->dz, N * qd);
        k->matmul_backward(s->dz, dp->wo, dattn_out, a->z, p->wo, n, qd, d);
        hook_fire_backward(m, HOOK_ATTN_Z, l, s->dz);
        k->vec_zero(s->dpattern, pattern_size);
        k->vec_zero(s->dv, N * kvd);
        k->attention_mix_backward(s->dpattern, s->dv, s->dz, a->pattern, a->v, B, T, T, nh, nkv, hd);
        hook_fire_backward(m, HOOK_ATTN_PATTERN, l, s->dpattern);
        k->vec_zero(s->dq_rot, N * qd);
        k->vec_zero(s->dk_rot, N * kvd);
        k->attention_pattern_backward(s->dq_rot, s->dk_rot, s->dpattern, a->pattern, a->q_rot, a->k_rot, B, T, T, nh,
                                   nkv, hd);
        hook_fire_backward(m, HOOK_ATTN_ROT_Q, l, s->dq_rot);
        hook_fire_backward(m, HOOK_ATTN_ROT_K, l, s->dk_rot);
        k->vec_zero(s->dq, N * qd);
        k->vec_zero(s->dk, N * kvd);
        k->rope_backward(s->dq, s->dq_rot, x.rope_cos, x.rope_sin, B, T, nh, hd, 0);
        k->rope_backward(s->dk, s->dk_rot, x.rope_cos, x.rope_sin, B, T, nkv, hd, 0);
        hook_fire_backward(m, HOOK_ATTN_Q, l, s->dq);
        hook_fire_backward(m, HOOK_ATTN_K, l, s->dk);
        hook_fire_backward(m, HOOK_ATTN_V, l, s->dv);
        k->vec_zero(s->dln, N * d);
        k->matmul_backward(s->dln, dp->wq, s->dq, a->ln1, p->wq, n, d, qd);
        k->matmul_backward(s->dln, dp->wk, s->dk, a->ln1, p->wk, n, d, kvd);
        k->matmul_backward(s->dln, dp->wv, s->dv, a->ln1, p->wv, n, d, kvd);
        k->rmsnorm_backward(s->dresid, dp->ln1, s->dln, a->resid_pre, p->ln1, a->ln1_rstd, n, d);
        hook_fire_backward(m, HOOK_RESID_PRE, l, s->dresid);
    }
    hook_fire_backward(m, HOOK_EMBED, -1, s->dresid);
    if (with_params) {
        k->embedding_backward(x.dw->embed, s->dresid, acts->tokens, n, d);
        if (m->device) m->device->device_newer = 1;
    }
    return model_device_check(m, "the backward pass");
}

int model_backward(struct llama_model *m, const float *dlogits)
{
    if (!m->grads) return err_set(CIRCD_EINTERNAL, "model_backward: gradients are not enabled");
    return backward(m, dlogits, 1);
}

int model_backward_hooks(struct llama_model *m, const float *dlogits)
{
    return backward(m, dlogits, 0);
}

/* The optimizer walks the parameters it updates as contiguous runs inside one tensor (weight decay is per tensor):
 * whole tensors without a mask, else the maximal runs of nonzero mask. */
struct adamw_pass {
    struct model_compute x;
    const struct adamw_config *opt;
    float lr, grad_scale;
    double sum_squares;
};
typedef void (*adamw_run_fn)(struct llama_model *m, const struct param_tensor *t, size_t off, size_t n,
                             struct adamw_pass *pass);

static void for_each_update_run(struct llama_model *m, const unsigned char *mask, adamw_run_fn fn,
                                struct adamw_pass *pass)
{
    for (int i = 0; i < m->n_tensors; i++) {
        const struct param_tensor *t = &m->tensors[i];
        size_t end = t->offset + t->numel;
        if (!mask) { fn(m, t, t->offset, t->numel, pass); continue; }
        for (size_t a = t->offset; a < end;) {
            int on = mask[a] != 0;
            size_t b = a + 1;
            while (b < end && (mask[b] != 0) == on) b++;
            if (on) fn(m, t, a, b - a, pass);
            a = b;
        }
    }
}

static void run_sum_squares(struct llama_model *m, const struct param_tensor *t, size_t off, size_t n,
                            struct adamw_pass *pass)
{
    pass->sum_squares += pass->x.k->grad_sum_squares(pass->x.grads + off, n);
}

static void run_update(struct llama_model *m, const struct param_tensor *t, size_t off, size_t n,
                       struct adamw_pass *pass)
{
    const struct adamw_config *o = pass->opt;
    float wd = t->ndim == 1 ? 0.0f : o->weight_decay;
    const struct model_compute *x = &pass->x;
    x->k->adamw_update(x->params + off, x->grads + off, x->adam_m + off, x->adam_v + off, n, pass->lr, o->beta1,
                       o->beta2, o->eps, wd, (int)m->step, pass->grad_scale);
}

float model_adamw_step_masked(struct llama_model *m, const struct adamw_config *opt, float lr,
                              const unsigned char *mask)
{
    struct adamw_pass pass = {.opt = opt, .lr = lr, .grad_scale = 1.0f, .sum_squares = 0.0};
    if (model_device_refresh(m)) return NAN;
    model_compute_view(m, &pass.x);
    if (mask) for_each_update_run(m, mask, run_sum_squares, &pass);
    else pass.sum_squares = pass.x.k->grad_sum_squares(pass.x.grads, m->n_params); /* the unmasked step's own sum */
    double norm = sqrt(pass.sum_squares);
    if (opt->max_grad_norm > 0 && norm > opt->max_grad_norm) pass.grad_scale = (float)(opt->max_grad_norm / norm);
    m->step++;
    for_each_update_run(m, mask, run_update, &pass);
    if (m->device) m->device->device_newer = 1;
    if (model_device_check(m, "the AdamW step")) return NAN;
    return (float)norm;
}

float model_adamw_step(struct llama_model *m, const struct adamw_config *opt, float lr)
{
    return model_adamw_step_masked(m, opt, lr, NULL);
}

int model_train_step(struct llama_model *m, const int32_t *tokens, const int32_t *targets, int B, int T,
                     const struct adamw_config *opt, float lr, float *loss, float *grad_norm)
{
    if (!m->adam_m) return err_set(CIRCD_EINTERNAL, "model_train_step: training state is not enabled");
    int rc = model_forward(m, tokens, targets, B, T);
    if (rc) return rc;
    model_zero_grad(m);
    if ((rc = model_backward(m, NULL))) return rc;
    float norm = model_adamw_step(m, opt, lr);
    if (isnan(norm) && (rc = model_device_check(m, "the training step"))) return rc;
    if (loss) *loss = m->loss;
    if (grad_norm) *grad_norm = norm;
    return CIRCD_OK;
}
