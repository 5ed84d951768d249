/* model_internal.h — what forward.c, forward_range.c, backward.c and hooks.c share inside runtime/model/ and nobody
 * else needs. */
#ifndef CIRCD_MODEL_INTERNAL_H
#define CIRCD_MODEL_INTERNAL_H

#include "kernels/backend.h"
#include "model/model.h"

/* Where forward/backward/AdamW compute: the backend and its buffers (the host buffers on the CPU, the device's
 * copies on a GPU). forward.c, backward.c and hooks.c work only through this view. */
struct model_compute {
    const struct kernels_backend *k;
    float *params, *grads, *adam_m, *adam_v;
    const struct param_views *w, *dw;
    struct model_acts *acts;
    struct model_grad_scratch *s;
    const float *rope_cos, *rope_sin;
    float *staging; /* [staging_floats] device memory for host data a kernel must read (HOOK_GRAD_ADD); NULL on CPU */
};

/* The device side of a model on a GPU backend (model_device.c). Host and device activation buffers are carved
 * identically, so the whole activation set moves in one copy. The two flags say which side is newer. */
struct model_device {
    const struct kernels_backend *k;
    float *params, *grads, *adam_m, *adam_v;
    struct param_views w, dw;
    float *rope_cos, *rope_sin;
    float *act_memory, *grad_memory, *staging;
    int32_t *tokens, *targets;
    size_t act_floats, grad_floats, staging_floats, token_capacity;
    struct model_acts acts;
    struct model_grad_scratch scratch;
    int host_newer;   /* params / moments written on the host since the last upload */
    int device_newer; /* params, grads or moments changed on the device since the last download */
    int acts_stale;   /* host activations older than the device's (only logits, losses are downloaded eagerly) */
    int logits_stale; /* host logits older than the device's */
};

void model_compute_view(struct llama_model *m, struct model_compute *c);
/* Uploads what the host changed (params, moments) before the device computes; CIRCD_OK or a device error. */
int model_device_refresh(const struct llama_model *m);
/* After model_reserve grew the host buffers: the device's twins, carved for [B, T] as the host's, and the kernels'
 * workspace; CIRCD_ENOMEM / a device error. */
int model_device_reserve(struct llama_model *m, size_t act_floats, size_t grad_floats, size_t staging_floats,
                         int B, int T);
/* Allocates the device gradients / moments when the host ones exist (model_enable_grads / training). */
int model_device_enable(struct llama_model *m);
void model_device_free(struct llama_model *m);
/* Checks the backend's sticky error: CIRCD_EIO naming `what` and the device, or CIRCD_OK. */
int model_device_check(const struct llama_model *m, const char *what);
/* Host parameters, gradients and moments := the device's (for const readers: savers). */
int model_device_download(const struct llama_model *m);
/* Carves the activation and scratch views of a [B, T] forward out of two buffers laid out by model_reserve. */
void model_carve_acts(const struct llama_config *c, struct model_acts *acts, struct model_grad_scratch *s,
                      float *act_base, float *grad_base, int B, int T);
/* Points the parameter views of `v` into `base` following the tensor table (model.c). */
void model_bind_views(const struct llama_model *m, struct param_views *v, float *base);

/* Applies the registered patches of (kind, layer) to `value`, then copies it to the registered caches. */
void hook_fire_forward(struct llama_model *m, enum hook_kind kind, int layer, float *value);
/* Adds the registered HOOK_GRAD_ADD tensors of (kind, layer) to `grad`, copies it to the registered gradient
 * readers, then zeroes it where the point was patched (a patched element is a constant: nothing flows upstream). */
void hook_fire_backward(struct llama_model *m, enum hook_kind kind, int layer, float *grad);
/* 1 if any registration names (kind, layer) with one of the actions in `action_mask` (bit 1 << action). */
int hook_is_registered(const struct llama_model *m, enum hook_kind kind, int layer, unsigned action_mask);

/* The pieces of model_forward (forward.c), shared with forward_range.c. forward_begin records the [B, T] shape (the
 * hooks read it), copies tokens (when not NULL) and targets (NULL: all -1) to the host and compute buffers, uploads
 * parameters the host changed, and resets the loss to NAN (CIRCD_OK or a device error); forward_embed embeds the
 * copied tokens into acts.embed; forward_layer runs layer l from its resid_pre to its resid_post;
 * forward_head applies the final norm and lm_head to the last layer's resid_post. Each fires its hooks. */
int forward_begin(struct llama_model *m, const int32_t *tokens, const int32_t *targets, int B, int T);
void forward_embed(struct llama_model *m);
void forward_layer(struct llama_model *m, int l);
void forward_head(struct llama_model *m);
/* CIRCD_EINPUT naming `what`[i] when an id is outside [0, vocab) (or -1 when allow_ignore). */
int model_check_tokens(const struct llama_model *m, const int32_t *ids, size_t n, const char *what,
                       int allow_ignore);

#endif
