/* hooks.c — hook point names and shapes (TransformerLens conventions), and the cache / patch / gradient-read /
 * gradient-add registrations that forward.c and backward.c fire at each point. */
#include "model/hooks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_internal.h"
#include "util/error.h"

/* Suffix after "blocks.{l}." for per-layer kinds; full name for global ones. */
static const char *const hook_suffix[HOOK_KIND_COUNT] = {
    [HOOK_EMBED] = "hook_embed",
    [HOOK_RESID_PRE] = "hook_resid_pre",
    [HOOK_ATTN_Q] = "attn.hook_q",
    [HOOK_ATTN_K] = "attn.hook_k",
    [HOOK_ATTN_V] = "attn.hook_v",
    [HOOK_ATTN_ROT_Q] = "attn.hook_rot_q",
    [HOOK_ATTN_ROT_K] = "attn.hook_rot_k",
    [HOOK_ATTN_PATTERN] = "attn.hook_pattern",
    [HOOK_ATTN_Z] = "attn.hook_z",
    [HOOK_ATTN_OUT] = "hook_attn_out",
    [HOOK_RESID_MID] = "hook_resid_mid",
    [HOOK_MLP_PRE] = "mlp.hook_pre",
    [HOOK_MLP_PRE_LINEAR] = "mlp.hook_pre_linear",
    [HOOK_MLP_POST] = "mlp.hook_post",
    [HOOK_MLP_OUT] = "hook_mlp_out",
    [HOOK_RESID_POST] = "hook_resid_post",
    [HOOK_LN_FINAL] = "ln_final.hook_normalized",
    [HOOK_LOGITS] = "hook_logits",
};

static int is_global(enum hook_kind kind)
{
    return kind == HOOK_EMBED || kind == HOOK_LN_FINAL || kind == HOOK_LOGITS;
}

int hook_has_heads(enum hook_kind kind)
{
    return kind == HOOK_ATTN_Q || kind == HOOK_ATTN_K || kind == HOOK_ATTN_V || kind == HOOK_ATTN_ROT_Q ||
           kind == HOOK_ATTN_ROT_K || kind == HOOK_ATTN_Z || kind == HOOK_ATTN_PATTERN;
}

int hook_parse(const char *name, const struct llama_config *cfg, struct hook_id *id)
{
    for (int k = 0; k < HOOK_KIND_COUNT; k++) {
        if (is_global(k) && strcmp(name, hook_suffix[k]) == 0) {
            id->kind = k;
            id->layer = -1;
            return CIRCD_OK;
        }
    }
    if (strncmp(name, "blocks.", 7) == 0) {
        char *end;
        long layer = strtol(name + 7, &end, 10);
        if (end != name + 7 && *end == '.' && layer >= 0) {
            for (int k = 0; k < HOOK_KIND_COUNT; k++) {
                if (is_global(k) || strcmp(end + 1, hook_suffix[k]) != 0) continue;
                if (cfg && layer >= cfg->n_layers)
                    return err_set(CIRCD_EINPUT, "hook \"%s\": layer %ld out of range, the model has %d layers",
                                   name, layer, cfg->n_layers);
                id->kind = k;
                id->layer = (int)layer;
                return CIRCD_OK;
            }
        }
    }
    return err_set(CIRCD_EINPUT,
                   "unknown hook \"%s\": expected hook_embed, blocks.{l}.hook_resid_pre|hook_resid_mid|"
                   "hook_resid_post|hook_attn_out|hook_mlp_out, blocks.{l}.attn.hook_q|hook_k|hook_v|hook_rot_q|"
                   "hook_rot_k|hook_pattern|hook_z, blocks.{l}.mlp.hook_pre|hook_pre_linear|hook_post, "
                   "ln_final.hook_normalized or hook_logits",
                   name);
}

const char *hook_name(struct hook_id id, char *buf, size_t size)
{
    if (id.kind < 0 || id.kind >= HOOK_KIND_COUNT) snprintf(buf, size, "?");
    else if (is_global(id.kind)) snprintf(buf, size, "%s", hook_suffix[id.kind]);
    else snprintf(buf, size, "blocks.%d.%s", id.layer, hook_suffix[id.kind]);
    return buf;
}

int hook_shape(struct hook_id id, const struct llama_config *c, int B, int T, int dims[4])
{
    dims[0] = B;
    dims[1] = T;
    switch (id.kind) {
    case HOOK_ATTN_Q: case HOOK_ATTN_ROT_Q: case HOOK_ATTN_Z:
        dims[2] = c->n_heads; dims[3] = c->head_dim; return 4;
    case HOOK_ATTN_K: case HOOK_ATTN_V: case HOOK_ATTN_ROT_K:
        dims[2] = c->n_kv_heads; dims[3] = c->head_dim; return 4;
    case HOOK_ATTN_PATTERN:
        dims[1] = c->n_heads; dims[2] = T; dims[3] = T; return 4;
    case HOOK_MLP_PRE: case HOOK_MLP_PRE_LINEAR: case HOOK_MLP_POST:
        dims[2] = c->d_ff; return 3;
    case HOOK_LOGITS:
        dims[2] = c->vocab_size; return 3;
    default:
        dims[2] = c->d_model; return 3;
    }
}

size_t hook_numel(struct hook_id id, const struct llama_config *c, int B, int T)
{
    int dims[4];
    int rank = hook_shape(id, c, B, T, dims);
    size_t n = 1;
    for (int i = 0; i < rank; i++) n *= (size_t)dims[i];
    return n;
}

int model_hook_add(struct llama_model *m, const struct hook_request *req)
{
    char name[64];
    hook_name(req->id, name, sizeof name);
    if (req->id.kind < 0 || req->id.kind >= HOOK_KIND_COUNT ||
        (!is_global(req->id.kind) && (req->id.layer < 0 || req->id.layer >= m->config.n_layers)))
        return err_set(CIRCD_EINPUT, "hook %s: no such hook point in a %d-layer model", name, m->config.n_layers);
    if (!req->data) return err_set(CIRCD_EINPUT, "hook %s: no data buffer", name);
    if (req->action == HOOK_PATCH) {
        int dims[4];
        hook_shape(req->id, &m->config, 1, m->config.max_seq, dims);
        int heads = hook_has_heads(req->id.kind) ? (req->id.kind == HOOK_ATTN_PATTERN ? dims[1] : dims[2]) : 0;
        if (req->head < -1 || (req->head >= 0 && req->head >= heads))
            return err_set(CIRCD_EINPUT, "hook %s: head %d out of range (%s)", name, req->head,
                           heads ? "the point has fewer heads" : "the point has no head axis; use -1");
        if (req->pos < -1 || req->pos >= m->config.max_seq)
            return err_set(CIRCD_EINPUT, "hook %s: position %d out of range [0, %d)", name, req->pos,
                           m->config.max_seq);
    }
    if (m->n_hooks == m->hooks_capacity) {
        int cap = m->hooks_capacity ? 2 * m->hooks_capacity : 16;
        struct hook_request *grown = realloc(m->hooks, (size_t)cap * sizeof *grown);
        if (!grown) return err_set(CIRCD_ENOMEM, "out of memory registering hook %s", name);
        m->hooks = grown;
        m->hooks_capacity = cap;
    }
    m->hooks[m->n_hooks++] = *req;
    return CIRCD_OK;
}

void model_hooks_clear(struct llama_model *m) { m->n_hooks = 0; }

int hook_is_registered(const struct llama_model *m, enum hook_kind kind, int layer, unsigned action_mask)
{
    for (int i = 0; i < m->n_hooks; i++) {
        const struct hook_request *r = &m->hooks[i];
        if (r->id.kind == kind && (is_global(kind) || r->id.layer == layer) && (action_mask & (1u << r->action)))
            return 1;
    }
    return 0;
}

static int hook_matches(const struct hook_request *r, enum hook_action action, enum hook_kind kind, int layer)
{
    return r->action == action && r->id.kind == kind && (is_global(kind) || r->id.layer == layer);
}

/* Visits the selected slice of a hook tensor as contiguous runs: fn(offset, length). The tensor is seen as
 * [outer, T_sel, heads, inner] ([B, T, H, hd] for q/k/v/z, [B*H, Tq, 1, Tk] for the pattern, [B, T, 1, width]
 * otherwise). */
static void for_each_selected_run(struct hook_id id, const struct llama_config *c, int B, int T, int head, int pos,
                                  void (*fn)(size_t off, size_t len, void *ctx), void *ctx)
{
    int dims[4];
    int rank = hook_shape(id, c, B, T, dims);
    size_t outer, heads, inner;
    int pattern = id.kind == HOOK_ATTN_PATTERN;
    if (pattern) { outer = (size_t)B; heads = (size_t)dims[1]; inner = (size_t)T * T; }
    else if (rank == 4) { outer = (size_t)B; heads = (size_t)dims[2]; inner = (size_t)T * dims[3]; }
    else { outer = (size_t)B; heads = 1; inner = (size_t)T * dims[2]; }
    /* Within one (outer, head) block of `inner` floats the layout differs: for the pattern it is [Tq, Tk];
     * for [B, T, H, hd] the head axis is inside T, handled below. */
    for (size_t o = 0; o < outer; o++) {
        if (pattern) {
            for (size_t h = 0; h < heads; h++) {
                if (head >= 0 && (size_t)head != h) continue;
                size_t base = (o * heads + h) * inner;
                if (pos >= 0) fn(base + (size_t)pos * T, (size_t)T, ctx);
                else fn(base, inner, ctx);
            }
        } else {
            size_t width = inner / T; /* floats per position: heads * hd or d */
            size_t hd = rank == 4 ? (size_t)dims[3] : width;
            for (int t = 0; t < T; t++) {
                if (pos >= 0 && t != pos) continue;
                size_t base = (o * T + t) * width * (rank == 4 ? heads : 1);
                if (rank == 4 && head >= 0) fn(base + (size_t)head * hd, hd, ctx);
                else fn(base, rank == 4 ? heads * hd : width, ctx);
            }
        }
    }
}

/* Hook data are host buffers; `value` / `grad` live in the compute backend's memory (the same on the CPU). */
struct run_copy { const struct kernels_backend *k; float *dst; const float *src; };
static void patch_run(size_t off, size_t len, void *ctx)
{
    struct run_copy *rc = ctx;
    rc->k->copy(rc->dst + off, rc->src + off, len * sizeof(float), KERNELS_HOST_TO_DEVICE);
}
static void zero_run(size_t off, size_t len, void *ctx)
{
    struct run_copy *rc = ctx;
    rc->k->vec_zero(rc->dst + off, len);
}

void hook_fire_forward(struct llama_model *m, enum hook_kind kind, int layer, float *value)
{
    const struct kernels_backend *k = m->backend;
    size_t numel = 0;
    for (int i = 0; i < m->n_hooks; i++) {
        const struct hook_request *r = &m->hooks[i];
        if (!hook_matches(r, HOOK_PATCH, kind, layer) || r->pos >= m->T) continue; /* pos beyond T: no patch */
        struct run_copy rc = {k, value, r->data};
        for_each_selected_run(r->id, &m->config, m->B, m->T, r->head, r->pos, patch_run, &rc);
    }
    for (int i = 0; i < m->n_hooks; i++) {
        const struct hook_request *r = &m->hooks[i];
        if (!hook_matches(r, HOOK_CACHE, kind, layer)) continue;
        if (!numel) numel = hook_numel(r->id, &m->config, m->B, m->T);
        k->copy(r->data, value, numel * sizeof(float), KERNELS_DEVICE_TO_HOST);
    }
}

void hook_fire_backward(struct llama_model *m, enum hook_kind kind, int layer, float *grad)
{
    struct model_compute x;
    model_compute_view(m, &x);
    const struct kernels_backend *k = x.k;
    size_t numel = 0;
    for (int i = 0; i < m->n_hooks; i++) {
        const struct hook_request *r = &m->hooks[i];
        if (!hook_matches(r, HOOK_GRAD_ADD, kind, layer)) continue;
        if (!numel) numel = hook_numel(r->id, &m->config, m->B, m->T);
        const float *term = r->data;
        if (x.staging) { /* a device adds host data through its staging buffer (sized for the largest hook) */
            k->copy(x.staging, r->data, numel * sizeof(float), KERNELS_HOST_TO_DEVICE);
            term = x.staging;
        }
        k->vec_accumulate(grad, term, numel);
    }
    for (int i = 0; i < m->n_hooks; i++) {
        const struct hook_request *r = &m->hooks[i];
        if (!hook_matches(r, HOOK_GRAD, kind, layer)) continue;
        if (!numel) numel = hook_numel(r->id, &m->config, m->B, m->T);
        k->copy(r->data, grad, numel * sizeof(float), KERNELS_DEVICE_TO_HOST);
    }
    for (int i = 0; i < m->n_hooks; i++) {
        const struct hook_request *r = &m->hooks[i];
        if (!hook_matches(r, HOOK_PATCH, kind, layer) || r->pos >= m->T) continue;
        struct run_copy rc = {k, grad, NULL};
        for_each_selected_run(r->id, &m->config, m->B, m->T, r->head, r->pos, zero_run, &rc);
    }
}

float *model_hook_value(struct llama_model *m, struct hook_id id)
{
    if (!m->act_capacity_rows || model_sync_acts_host(m)) return NULL;
    if (!is_global(id.kind) && (id.layer < 0 || id.layer >= m->config.n_layers)) return NULL;
    struct layer_acts *a = is_global(id.kind) ? NULL : &m->acts.layers[id.layer];
    switch (id.kind) {
    case HOOK_EMBED: return m->acts.embed;
    case HOOK_RESID_PRE: return a->resid_pre;
    case HOOK_ATTN_Q: return a->q;
    case HOOK_ATTN_K: return a->k;
    case HOOK_ATTN_V: return a->v;
    case HOOK_ATTN_ROT_Q: return a->q_rot;
    case HOOK_ATTN_ROT_K: return a->k_rot;
    case HOOK_ATTN_PATTERN: return a->pattern;
    case HOOK_ATTN_Z: return a->z;
    case HOOK_ATTN_OUT: return a->attn_out;
    case HOOK_RESID_MID: return a->resid_mid;
    case HOOK_MLP_PRE: return a->gate;
    case HOOK_MLP_PRE_LINEAR: return a->up;
    case HOOK_MLP_POST: return a->hidden;
    case HOOK_MLP_OUT: return a->mlp_out;
    case HOOK_RESID_POST: return a->resid_post;
    case HOOK_LN_FINAL: return m->acts.ln_final;
    case HOOK_LOGITS: return m->acts.logits;
    default: return NULL;
    }
}
