/* subnet.c — the parameter mask of a set of circuit components (subnet.h): a head's rows of q_proj, the rows of
 * k_proj / v_proj of its kv head, its columns of o_proj; an MLP's gate_proj, up_proj and down_proj. The mask is
 * the caller's buffer; nothing is allocated here. */
#include "distill/subnet.h"

#include <string.h>

#include "util/error.h"

/* mask[offset of p .. + n) = 1, p being a pointer into m->params. */
static void mark(const struct llama_model *m, unsigned char *mask, const float *p, size_t n)
{
    memset(mask + (p - m->params), 1, n);
}

static void mark_head(const struct llama_model *m, unsigned char *mask, int l, int h)
{
    const struct llama_config *c = &m->config;
    const struct layer_params *p = &m->w.layers[l];
    size_t d = (size_t)c->d_model, hd = (size_t)c->head_dim, qd = (size_t)c->n_heads * hd;
    size_t kv = (size_t)(h / (c->n_heads / c->n_kv_heads));
    mark(m, mask, p->wq + (size_t)h * hd * d, hd * d);
    mark(m, mask, p->wk + kv * hd * d, hd * d);
    mark(m, mask, p->wv + kv * hd * d, hd * d);
    for (size_t row = 0; row < d; row++) mark(m, mask, p->wo + row * qd + (size_t)h * hd, hd);
}

static void mark_mlp(const struct llama_model *m, unsigned char *mask, int l)
{
    const struct llama_config *c = &m->config;
    const struct layer_params *p = &m->w.layers[l];
    size_t n = (size_t)c->d_ff * c->d_model;
    mark(m, mask, p->w_gate, n);
    mark(m, mask, p->w_up, n);
    mark(m, mask, p->w_down, n);
}

int subnet_mask_build(const struct llama_model *m, const struct circuit_graph *g, const int *ups, int n,
                      unsigned char *mask)
{
    const struct llama_config *c = &m->config;
    if (g->n_layers != c->n_layers || g->n_heads != c->n_heads || g->n_kv_heads != c->n_kv_heads)
        return err_set(CIRCD_EINPUT, "subnetwork: the graph (%d layers, %d heads, %d kv heads) is not the model's "
                       "(%d, %d, %d)", g->n_layers, g->n_heads, g->n_kv_heads, c->n_layers, c->n_heads,
                       c->n_kv_heads);
    if (n < 0 || (n > 0 && !ups)) return err_set(CIRCD_EINPUT, "subnetwork: %d components and no index list", n);
    for (int i = 0; i < n; i++) {
        if (ups[i] == 0)
            return err_set(CIRCD_EINPUT, "subnetwork: component %d is the input node (the embeddings are never "
                           "trained)", i);
        if (ups[i] < 0 || ups[i] >= g->n_up)
            return err_set(CIRCD_EINPUT, "subnetwork: component %d has upstream index %d, outside [1, %d)", i,
                           ups[i], g->n_up);
    }
    memset(mask, 0, m->n_params);
    for (int i = 0; i < n; i++) {
        struct graph_place p = graph_up_place(g, ups[i]);
        if (p.kind == 1) mark_head(m, mask, p.layer, p.head);
        else mark_mlp(m, mask, p.layer);
    }
    return CIRCD_OK;
}

size_t subnet_mask_count(const unsigned char *mask, size_t n_params)
{
    size_t count = 0;
    for (size_t i = 0; i < n_params; i++) count += mask[i] != 0;
    return count;
}
