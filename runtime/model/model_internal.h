/* model_internal.h — what forward.c, forward_range.c, backward.c and hooks.c share inside runtime/model/ and nobody
 * else needs. */
#ifndef CIRCD_MODEL_INTERNAL_H
#define CIRCD_MODEL_INTERNAL_H

#include "model/model.h"

/* Applies the registered patches of (kind, layer) to `value`, then copies it to the registered caches. */
void hook_fire_forward(struct llama_model *m, enum hook_kind kind, int layer, float *value);
/* Adds the registered HOOK_GRAD_ADD tensors of (kind, layer) to `grad`, copies it to the registered gradient
 * readers, then zeroes it where the point was patched (a patched element is a constant: nothing flows upstream). */
void hook_fire_backward(struct llama_model *m, enum hook_kind kind, int layer, float *grad);
/* 1 if any registration names (kind, layer) with one of the actions in `action_mask` (bit 1 << action). */
int hook_is_registered(const struct llama_model *m, enum hook_kind kind, int layer, unsigned action_mask);

/* The pieces of model_forward (forward.c), shared with forward_range.c. forward_begin records the [B, T] shape (the
 * hooks read it), copies tokens (when not NULL) and targets (NULL: all -1), and resets the loss to NAN;
 * forward_embed embeds tokens into acts.embed; forward_layer runs layer l from its resid_pre to its resid_post;
 * forward_head applies the final norm and lm_head to the last layer's resid_post. Each fires its hooks. */
void forward_begin(struct llama_model *m, const int32_t *tokens, const int32_t *targets, int B, int T);
void forward_embed(struct llama_model *m, const int32_t *tokens);
void forward_layer(struct llama_model *m, int l);
void forward_head(struct llama_model *m);
/* CIRCD_EINPUT naming `what`[i] when an id is outside [0, vocab) (or -1 when allow_ignore). */
int model_check_tokens(const struct llama_model *m, const int32_t *ids, size_t n, const char *what,
                       int allow_ignore);

#endif
