/* decode.c — KV-cache decoding (decode.h): the per-token counterpart of forward.c, using the same kernels with one
 * query row attending over the cached keys and values, on the model's backend (the cache lives where the model
 * computes; only the logits come back to the host each step). */
#include "model/decode.h"

#include <stdlib.h>
#include <string.h>

#include "model/model_internal.h"
#include "util/error.h"

int decoder_init(struct decoder *dec, const struct llama_model *m, int max_len)
{
    const struct llama_config *c = &m->config;
    memset(dec, 0, sizeof *dec);
    if (max_len <= 0 || max_len > c->max_seq)
        return err_set(CIRCD_EINPUT, "decoding length %d must lie in [1, max_position_embeddings = %d]", max_len,
                       c->max_seq);
    size_t d = c->d_model, qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    size_t cache = (size_t)c->n_layers * max_len * kvd;
    size_t total = 2 * cache + 3 * d + 3 * qd + 3 * kvd + (size_t)c->n_heads * max_len + 3 * (size_t)c->d_ff +
                   (size_t)c->vocab_size + 2; /* + rstd and the token id */
    const struct kernels_backend *k = m->backend;
    int rc = model_device_refresh(m);
    if (rc) return rc;
    dec->memory = k->alloc(total * sizeof(float));
    dec->logits = xcalloc((size_t)c->vocab_size, sizeof(float));
    if (!dec->memory || !dec->logits) {
        if (dec->memory) k->release(dec->memory);
        free(dec->logits);
        return err_set(CIRCD_ENOMEM, "device %s: no room for a %d-position decoding cache", k->name, max_len);
    }
    float *p = dec->memory;
#define TAKE(field, count) (dec->field = p, p += (count))
    TAKE(k_cache, cache); TAKE(v_cache, cache);
    TAKE(x, d); TAKE(ln, d); TAKE(branch, d);
    TAKE(q, qd); TAKE(q_rot, qd); TAKE(z, qd);
    TAKE(k, kvd); TAKE(k_rot, kvd); TAKE(v, kvd);
    TAKE(pattern, (size_t)c->n_heads * max_len);
    TAKE(gate, c->d_ff); TAKE(up, c->d_ff); TAKE(hidden, c->d_ff);
    TAKE(compute_logits, c->vocab_size);
    TAKE(rstd, 1);
    dec->token = (int32_t *)p; /* one float slot holds the id */
#undef TAKE
    dec->model = m;
    dec->max_len = max_len;
    return CIRCD_OK;
}

void decoder_free(struct decoder *dec)
{
    if (dec->memory) dec->model->backend->release(dec->memory);
    free(dec->logits);
    memset(dec, 0, sizeof *dec);
}

int decoder_step(struct decoder *dec, int32_t token)
{
    const struct llama_model *m = dec->model;
    const struct llama_config *c = &m->config;
    if (dec->len >= dec->max_len)
        return err_set(CIRCD_EINPUT, "decoder cache full: %d positions", dec->max_len);
    if (token < 0 || token >= c->vocab_size)
        return err_set(CIRCD_EINPUT, "token %d is outside the vocabulary [0, %d)", (int)token, c->vocab_size);
    int d = c->d_model, nh = c->n_heads, nkv = c->n_kv_heads, hd = c->head_dim, ff = c->d_ff;
    int qd = nh * hd, kvd = nkv * hd, pos = dec->len, Tk = pos + 1;
    float eps = c->norm_eps;
    const struct kernels_backend *k = m->backend;
    const struct param_views *w = m->device ? &m->device->w : &m->w;
    const float *rope_cos = m->device ? m->device->rope_cos : m->rope_cos;
    const float *rope_sin = m->device ? m->device->rope_sin : m->rope_sin;

    k->copy(dec->token, &token, sizeof token, KERNELS_HOST_TO_DEVICE);
    k->embedding_forward(dec->x, dec->token, w->embed, 1, d);
    for (int l = 0; l < c->n_layers; l++) {
        const struct layer_params *p = &w->layers[l];
        float *k_cache = dec->k_cache + (size_t)l * dec->max_len * kvd;
        float *v_cache = dec->v_cache + (size_t)l * dec->max_len * kvd;
        k->rmsnorm_forward(dec->ln, dec->rstd, dec->x, p->ln1, 1, d, eps);
        k->matmul_forward(dec->q, dec->ln, p->wq, 1, d, qd);
        k->matmul_forward(dec->k, dec->ln, p->wk, 1, d, kvd);
        k->matmul_forward(v_cache + (size_t)pos * kvd, dec->ln, p->wv, 1, d, kvd);
        k->rope_forward(dec->q_rot, dec->q, rope_cos, rope_sin, 1, 1, nh, hd, pos);
        k->rope_forward(k_cache + (size_t)pos * kvd, dec->k, rope_cos, rope_sin, 1, 1, nkv, hd, pos);
        k->attention_pattern_forward(dec->pattern, dec->q_rot, k_cache, 1, 1, Tk, nh, nkv, hd);
        k->attention_mix_forward(dec->z, dec->pattern, v_cache, 1, 1, Tk, nh, nkv, hd);
        k->matmul_forward(dec->branch, dec->z, p->wo, 1, qd, d);
        k->vec_accumulate(dec->x, dec->branch, d);
        k->rmsnorm_forward(dec->ln, dec->rstd, dec->x, p->ln2, 1, d, eps);
        k->matmul_forward(dec->gate, dec->ln, p->w_gate, 1, d, ff);
        k->matmul_forward(dec->up, dec->ln, p->w_up, 1, d, ff);
        k->swiglu_forward(dec->hidden, dec->gate, dec->up, ff);
        k->matmul_forward(dec->branch, dec->hidden, p->w_down, 1, ff, d);
        k->vec_accumulate(dec->x, dec->branch, d);
    }
    k->rmsnorm_forward(dec->ln, dec->rstd, dec->x, w->norm, 1, d, eps);
    k->matmul_forward(dec->compute_logits, dec->ln, w->lm_head, 1, d, c->vocab_size);
    k->copy(dec->logits, dec->compute_logits, (size_t)c->vocab_size * sizeof(float), KERNELS_DEVICE_TO_HOST);
    dec->len++;
    return model_device_check(m, "decoding");
}

static int32_t argmax(const float *x, int n)
{
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

int generate_greedy(const struct llama_model *m, const int32_t *prompt, int n_prompt, int steps, int eos_id,
                    int32_t *out, int *n_out)
{
    struct decoder dec;
    *n_out = 0;
    if (n_prompt <= 0) return err_set(CIRCD_EINPUT, "generation needs a prompt of at least one token");
    int rc = decoder_init(&dec, m, n_prompt + steps > m->config.max_seq ? m->config.max_seq : n_prompt + steps);
    if (rc) return rc;
    if (n_prompt > dec.max_len) {
        decoder_free(&dec);
        return err_set(CIRCD_EINPUT, "prompt of %d tokens exceeds max_position_embeddings %d", n_prompt,
                       m->config.max_seq);
    }
    for (int i = 0; i < n_prompt && !rc; i++) rc = decoder_step(&dec, prompt[i]);
    for (int s = 0; s < steps && !rc; s++) {
        int32_t next = argmax(dec.logits, m->config.vocab_size);
        out[(*n_out)++] = next;
        if (next == eos_id || dec.len >= dec.max_len) break;
        rc = decoder_step(&dec, next);
    }
    decoder_free(&dec);
    return rc;
}
