/* forward_range.h — the forward pass over a contiguous range of layers, for pipeline stages (sched/pipeline.h): the
 * first stage embeds tokens, the others start from the residual stream a previous stage computed, and the last one
 * ends with the final RMSNorm and lm_head. The range runs the same kernels in the same order as model_forward
 * (they share forward.c's per-layer code), so every value is bit-identical to the matching part of a whole
 * forward of the same [B, T] rows, and the hooks of the layers in the range fire as they would there. */
#ifndef CIRCD_MODEL_FORWARD_RANGE_H
#define CIRCD_MODEL_FORWARD_RANGE_H

#include "model/model.h"

/* Runs layers [first, last) (0 <= first < last <= n_layers) of a [B, T] batch. first == 0: embeds tokens[B*T]
 * (checked against the vocabulary; hook_embed fires) and resid_in is ignored; first > 0: resid_in [B*T, d_model] is
 * the residual stream entering layer `first` (tokens may be NULL). last == n_layers: the final norm and lm_head
 * follow (m->acts.logits; no loss is computed). The output residual is model_forward_range_output(m, last).
 * CIRCD_EINPUT for a bad range, shape or token; CIRCD_ENOMEM when the activation buffers cannot grow. */
int model_forward_range(struct llama_model *m, int first, int last, const int32_t *tokens, const float *resid_in,
                        int B, int T);
/* The residual stream leaving layer last-1 ([B*T, d_model] rows of the last forward, inside the model's
 * activations: valid until the next forward). */
const float *model_forward_range_output(const struct llama_model *m, int last);

#endif
