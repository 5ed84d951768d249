/* forward_range.c — implementation of forward_range.h on forward.c's pieces. */
#include "model/forward_range.h"

#include <string.h>

#include "model/model_internal.h"
#include "util/error.h"

int model_forward_range(struct llama_model *m, int first, int last, const int32_t *tokens, const float *resid_in,
                        int B, int T)
{
    const struct llama_config *c = &m->config;
    if (first < 0 || first >= last || last > c->n_layers)
        return err_set(CIRCD_EINPUT, "forward over layers [%d, %d): expected 0 <= first < last <= %d", first, last,
                       c->n_layers);
    if (first == 0 && !tokens) return err_set(CIRCD_EINPUT, "forward from layer 0 needs the tokens");
    if (first > 0 && !resid_in) return err_set(CIRCD_EINPUT, "forward from layer %d needs its residual input", first);
    int rc = model_reserve(m, B, T);
    if (rc) return rc;
    size_t N = (size_t)B * T;
    if (first == 0 && (rc = model_check_tokens(m, tokens, N, "tokens", 0))) return rc;

    if ((rc = forward_begin(m, first == 0 ? tokens : NULL, NULL, B, T))) return rc;
    struct model_compute x;
    model_compute_view(m, &x);
    if (first == 0) forward_embed(m);
    else x.k->copy(x.acts->layers[first].resid_pre, resid_in, N * c->d_model * sizeof(float),
                   KERNELS_HOST_TO_DEVICE);
    for (int l = first; l < last; l++) forward_layer(m, l);
    if (last == c->n_layers) forward_head(m);
    if ((rc = model_sync_acts_host(m))) return rc; /* the pipeline sends host activations and caches */
    return model_device_check(m, "the forward pass");
}

const float *model_forward_range_output(const struct llama_model *m, int last)
{
    return last > 0 ? m->acts.layers[last - 1].resid_post : m->acts.embed;
}
