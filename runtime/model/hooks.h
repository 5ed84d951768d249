/* hooks.h — TransformerLens-style hook points of the Llama model: names, shapes, and the three things a caller can
 * do at one: CACHE its value on a forward, PATCH it with given values on a forward (whole tensor, or one head and/or
 * one position), and read its GRADIENT after a backward.
 *
 * Names (l = layer):  hook_embed · blocks.l.hook_resid_pre · blocks.l.attn.hook_q / hook_k / hook_v (before RoPE, as
 * TransformerLens) · blocks.l.attn.hook_rot_q / hook_rot_k (after RoPE) · blocks.l.attn.hook_pattern ·
 * blocks.l.attn.hook_z · blocks.l.hook_attn_out · blocks.l.hook_resid_mid · blocks.l.mlp.hook_pre (gate_proj
 * output) · blocks.l.mlp.hook_pre_linear (up_proj output) · blocks.l.mlp.hook_post (silu(pre) * pre_linear) ·
 * blocks.l.hook_mlp_out · blocks.l.hook_resid_post · ln_final.hook_normalized · hook_logits.
 *
 * Shapes: [B, T, d_model] for embed/resid/attn_out/mlp_out/ln_final; [B, T, n_heads, head_dim] for q, rot_q and z;
 * [B, T, n_kv_heads, head_dim] for k, v, rot_k (with GQA, query heads h share kv head h / (n_heads / n_kv_heads));
 * [B, n_heads, T, T] for the pattern (query position is the third axis); [B, T, d_ff] for the MLP hooks;
 * [B, T, vocab] for the logits.
 *
 * Order within one hook point: patches are applied first, then caches copy the value that flows on (so a cache
 * at a patched point shows the patched value). On backward the gradient read at a point is d(objective)/d(value
 * flowing out of the point); a patched element is a constant, so no gradient passes upstream of it.
 *
 * HOOK_GRAD_ADD joins an auxiliary term to the backward: its tensor c (the hook's full shape for the last forward)
 * is added to the gradient at the point, so a backward from the loss L differentiates L + <c, value> — c is
 * d(aux)/d(value) for an auxiliary loss on the activation. Every hook point supports it. Order within one point on
 * backward: all GRAD_ADD tensors are added first (in registration order), then HOOK_GRAD readers copy the sum, then
 * patched elements are zeroed. Where points alias (hook_embed and blocks.0.hook_resid_pre, resid_post of l and
 * resid_pre of l+1) each registration counts once, as the sum of its terms.
 */
#ifndef CIRCD_MODEL_HOOKS_H
#define CIRCD_MODEL_HOOKS_H

#include <stddef.h>

enum hook_kind {
    HOOK_EMBED,
    HOOK_RESID_PRE,
    HOOK_ATTN_Q,
    HOOK_ATTN_K,
    HOOK_ATTN_V,
    HOOK_ATTN_ROT_Q,
    HOOK_ATTN_ROT_K,
    HOOK_ATTN_PATTERN,
    HOOK_ATTN_Z,
    HOOK_ATTN_OUT,
    HOOK_RESID_MID,
    HOOK_MLP_PRE,
    HOOK_MLP_PRE_LINEAR,
    HOOK_MLP_POST,
    HOOK_MLP_OUT,
    HOOK_RESID_POST,
    HOOK_LN_FINAL,
    HOOK_LOGITS,
    HOOK_KIND_COUNT
};

struct hook_id {
    enum hook_kind kind;
    int layer; /* -1 for hook_embed, ln_final.hook_normalized, hook_logits */
};

enum hook_action { HOOK_CACHE, HOOK_PATCH, HOOK_GRAD, HOOK_GRAD_ADD };

struct llama_config;

/* "blocks.3.attn.hook_z" -> {HOOK_ATTN_Z, 3}. CIRCD_EINPUT with a message listing the valid forms on failure;
 * the layer is checked against n_layers when cfg is given. */
int hook_parse(const char *name, const struct llama_config *cfg, struct hook_id *id);
/* Writes the TransformerLens name of id into buf (always NUL-terminated); returns buf. */
const char *hook_name(struct hook_id id, char *buf, size_t size);
/* Shape of the hook's tensor for a [B, T] forward: fills dims (up to 4) and returns the rank. */
int hook_shape(struct hook_id id, const struct llama_config *cfg, int B, int T, int dims[4]);
size_t hook_numel(struct hook_id id, const struct llama_config *cfg, int B, int T);
/* 1 if the hook has a head axis (q, k, v, rot_q, rot_k, z, pattern). */
int hook_has_heads(enum hook_kind kind);

/* One registration. For HOOK_PATCH, `data` is a full tensor of the hook's shape and only the selected slice is
 * copied: head (or -1 for all heads; only for hooks with heads) and pos (or -1 for all positions; for the pattern,
 * the query position). For HOOK_CACHE/HOOK_GRAD `data` receives the whole tensor; for HOOK_GRAD_ADD the whole
 * tensor is read (head and pos are ignored for all three). */
struct hook_request {
    struct hook_id id;
    enum hook_action action;
    float *data;
    int head;
    int pos;
};

#endif
