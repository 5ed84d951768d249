/* model.h — a Llama-architecture causal language model (Hugging Face LlamaForCausalLM semantics) in a few flat
 * buffers: parameters, their gradients, the AdamW moments, and the activations of the last forward, each with
 * named views. forward → logits (+ mean cross-entropy), backward from the loss or from any dlogits, a training step
 * with AdamW, and hook points (hooks.h) to cache, patch and differentiate internal activations.
 *
 * Ownership: the model owns every buffer it allocates; views point into them and live as long as the model.
 * Buffers for a [B, T] forward are (re)allocated by model_reserve (or on the first forward that needs more),
 * never inside the forward/backward loops.
 */
#ifndef CIRCD_MODEL_MODEL_H
#define CIRCD_MODEL_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/backend.h"
#include "model/config.h"
#include "model/hooks.h"
#include "util/rng.h"

#define MODEL_MAX_NAME 96

/* One named parameter tensor (Hugging Face name) inside the flat parameter buffer. */
struct param_tensor {
    char name[MODEL_MAX_NAME];
    size_t offset; /* in floats, into params / grads / adam_m / adam_v */
    size_t numel;
    int ndim;
    int shape[2];
};

struct layer_params {
    float *ln1;    /* input_layernorm.weight [d] */
    float *wq;     /* self_attn.q_proj.weight [n_heads*hd, d] */
    float *wk;     /* self_attn.k_proj.weight [n_kv*hd, d] */
    float *wv;     /* self_attn.v_proj.weight [n_kv*hd, d] */
    float *wo;     /* self_attn.o_proj.weight [d, n_heads*hd] */
    float *ln2;    /* post_attention_layernorm.weight [d] */
    float *w_gate; /* mlp.gate_proj.weight [d_ff, d] */
    float *w_up;   /* mlp.up_proj.weight [d_ff, d] */
    float *w_down; /* mlp.down_proj.weight [d, d_ff] */
};

struct param_views {
    float *embed;               /* model.embed_tokens.weight [V, d] */
    struct layer_params *layers;
    float *norm;                /* model.norm.weight [d] */
    float *lm_head;             /* lm_head.weight [V, d]; == embed when tied */
};

/* Activations of one layer for a [B, T] forward (N = B*T rows). resid_post of layer l is resid_pre of l+1. */
struct layer_acts {
    float *resid_pre;  /* [N, d] */
    float *ln1;        /* [N, d] */
    float *ln1_rstd;   /* [N] */
    float *q, *k, *v;  /* [N, nh*hd], [N, nkv*hd], [N, nkv*hd] (before RoPE) */
    float *q_rot, *k_rot;
    float *pattern;    /* [B, nh, T, T] */
    float *z;          /* [N, nh*hd] */
    float *attn_out;   /* [N, d] */
    float *resid_mid;  /* [N, d] */
    float *ln2;        /* [N, d] */
    float *ln2_rstd;   /* [N] */
    float *gate, *up, *hidden; /* [N, d_ff] */
    float *mlp_out;    /* [N, d] */
    float *resid_post; /* [N, d] */
};

struct model_acts {
    float *embed;         /* [N, d] (== layers[0].resid_pre) */
    struct layer_acts *layers;
    float *ln_final;      /* [N, d] */
    float *ln_final_rstd; /* [N] */
    float *logits;        /* [N, V] */
    float *losses;        /* [N] per-position cross-entropy (0 where the target is ignored) */
    int32_t *tokens;      /* [N] copy of the input */
    int32_t *targets;     /* [N] copy of the targets (-1 = ignored) */
};

/* Gradient scratch for backward, reused layer after layer. */
struct model_grad_scratch {
    float *dlogits;   /* [N, V] */
    float *dresid;    /* [N, d] running gradient of the residual stream */
    float *dln;       /* [N, d] */
    float *dbranch;   /* [N, d] copy of dresid for a hooked attn_out / mlp_out */
    float *dq, *dk, *dv, *dq_rot, *dk_rot, *dz;
    float *dpattern;  /* [B, nh, T, T] */
    float *dgate, *dup, *dhidden;
};

struct adamw_config {
    float beta1, beta2, eps, weight_decay, max_grad_norm; /* max_grad_norm <= 0: no clipping */
};

struct model_device; /* model_device.c: the model's buffers in a GPU backend's memory */

struct llama_model {
    struct llama_config config;
    const struct kernels_backend *backend; /* where forward/backward/AdamW run (the CPU unless model_use_backend) */
    struct model_device *device;           /* the device-side buffers; NULL on the CPU */

    struct param_tensor *tensors;
    int n_tensors;
    size_t n_params;
    float *params;               /* [n_params] */
    float *grads;                /* [n_params], allocated by model_enable_grads */
    float *adam_m, *adam_v;      /* [n_params], allocated by model_enable_training */
    struct param_views w, dw;
    int64_t step;                /* optimizer steps taken */

    float *rope_cos, *rope_sin;  /* [max_seq, hd/2] */

    int B, T;                    /* shape of the last forward */
    size_t act_capacity_rows;    /* rows (B*T) the activation buffers hold; pattern capacity uses act_T */
    int act_T;
    float *act_memory;
    struct model_acts acts;
    float *grad_memory;
    struct model_grad_scratch scratch;
    float loss;                  /* mean cross-entropy of the last forward with targets (NAN without) */
    int n_loss_rows;

    struct hook_request *hooks;
    int n_hooks, hooks_capacity;
};

/* Allocates parameters for cfg (validated) with zeros; CIRCD_EINPUT / CIRCD_ENOMEM on failure. */
int model_create(struct llama_model *m, const struct llama_config *cfg);
void model_free(struct llama_model *m);
/* Initialises weights for training from scratch: N(0, 0.02) matrices, o_proj/down_proj scaled by 1/sqrt(2L),
 * norms 1. */
void model_init_random(struct llama_model *m, uint64_t seed);
const struct param_tensor *model_find_tensor(const struct llama_model *m, const char *name);
int model_enable_grads(struct llama_model *m);
int model_enable_training(struct llama_model *m);   /* grads + AdamW moments */
/* Makes the activation buffers hold a [B, T] forward (T <= max_seq). */
int model_reserve(struct llama_model *m, int B, int T);

/* tokens[B*T] in [0, vocab); targets NULL or [B*T] with -1 = ignored. Computes logits (m->acts.logits) and, with
 * targets, m->loss = mean cross-entropy over target rows. Hooks registered with HOOK_CACHE / HOOK_PATCH fire. */
int model_forward(struct llama_model *m, const int32_t *tokens, const int32_t *targets, int B, int T);
/* Accumulates parameter gradients into m->grads (call model_zero_grad first) from dlogits [B*T, V] of the last
 * forward, or, when dlogits is NULL, from the mean cross-entropy of its targets. HOOK_GRAD_ADD terms join the
 * gradient and HOOK_GRAD hooks fire (hooks.h has the order). */
int model_backward(struct llama_model *m, const float *dlogits);
/* The same backward for hook gradients only (HOOK_GRAD fires as above): no parameter gradients are computed or
 * touched, so it needs no model_enable_grads and costs about one forward instead of two (attribution patching). */
int model_backward_hooks(struct llama_model *m, const float *dlogits);
void model_zero_grad(struct llama_model *m);
/* Clips by global norm and applies one AdamW step with learning rate lr (no decay on 1-D tensors). Returns the
 * gradient norm before clipping. */
float model_adamw_step(struct llama_model *m, const struct adamw_config *opt, float lr);
/* The same step restricted to mask[n_params] (nonzero = train; NULL = every parameter, == model_adamw_step): the
 * clipping norm is that of the masked gradients only, and a parameter with mask 0 is not touched at all — value and
 * AdamW moments stay bit-identical (no update, no weight decay). m->step counts every call; returns the masked
 * gradient norm before clipping. */
float model_adamw_step_masked(struct llama_model *m, const struct adamw_config *opt, float lr,
                              const unsigned char *mask);
/* One training step on a batch: forward with targets, zero grad, backward, AdamW (model_enable_training first).
 * Returns CIRCD_OK; *loss and *grad_norm (either may be NULL) receive the batch loss and the pre-clip norm. */
int model_train_step(struct llama_model *m, const int32_t *tokens, const int32_t *targets, int B, int T,
                     const struct adamw_config *opt, float lr, float *loss, float *grad_norm);
/* The next-token targets of a [B, T] batch: targets[b, t] = tokens[b, t+1], -1 at t = T-1. */
void model_next_token_targets(int32_t *targets, const int32_t *tokens, int B, int T);

/* ---- devices (kernels/backend.h) ----
 * A model computes on its backend. On the CPU the host buffers above are the only ones. On a GPU the device holds
 * its own copies of the parameters, gradients, AdamW moments, activations and scratch, and the host buffers are
 * mirrors: after every forward the per-row losses (m->acts.losses) and model_logits() are current, and hooks copy
 * between device and host (hook data stay host buffers). Everything else on the host is brought up to
 * date on request:
 *   model_use_backend     moves the computation to `backend` (NULL = the CPU), copying the parameters (and
 *                         gradients / moments when enabled) over; CIRCD_EINPUT naming the device on failure.
 *   model_sync_host       host params, grads and AdamW moments := the device's (after training steps there).
 *   model_sync_acts_host  every host activation of the last forward := the device's.
 *   model_params_changed  call after writing m->params on the host: the device copy is refreshed before the next
 *                         forward (model_load_hf, model_init_random and model_checkpoint_load call it themselves).
 *   model_backend_grads   the gradient buffer in the backend's memory ([n_params]; m->grads on the CPU), what a
 *                         data-parallel all-reduce sums in place before model_adamw_step.
 * Each returns CIRCD_OK or an error naming the device (a no-op on the CPU). */
int model_use_backend(struct llama_model *m, const struct kernels_backend *backend);
/* The logits of the last forward on the host ([B*T, V]; downloaded on first use after a device forward; NULL on a
 * device error). Prefer it to m->acts.logits, which on a device is current only after this or model_sync_acts_host. */
const float *model_logits(const struct llama_model *m);
int model_sync_host(struct llama_model *m);
int model_sync_acts_host(const struct llama_model *m);
void model_params_changed(struct llama_model *m);
float *model_backend_grads(struct llama_model *m);

/* Hook registrations persist until model_hooks_clear. CIRCD_EINPUT for a bad head/pos selection. */
int model_hook_add(struct llama_model *m, const struct hook_request *req);
void model_hooks_clear(struct llama_model *m);
/* The activation of a hook point from the last forward (valid until the next forward); NULL if none. */
float *model_hook_value(struct llama_model *m, struct hook_id id);

/* Hugging Face checkpoint directory (config.json + model.safetensors, or sharded with
 * model.safetensors.index.json). Errors name the file and tensor; CIRCD_EINPUT for bad content. */
int model_load_hf(struct llama_model *m, const char *dir);
int model_save_hf(const struct llama_model *m, const char *dir);

/* Training checkpoints (io/checkpoint.h): parameters, AdamW moments, step, the caller's RNG state and data cursor,
 * atomically written with a checksum. Loading needs a model of the same architecture with training enabled; a
 * mismatch or a corrupted file is CIRCD_EINPUT naming the file, and the model is then left unchanged. */
int model_checkpoint_save(const struct llama_model *m, const char *path, const struct rng *rng, int64_t data_cursor);
int model_checkpoint_load(struct llama_model *m, const char *path, struct rng *rng, int64_t *data_cursor);

#endif
