/* model_internal.h — what forward.c, backward.c and hooks.c share inside runtime/model/ and nobody else needs. */
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

#endif
