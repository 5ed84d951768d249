/* edge_forward.h — a forward pass of a Llama model in which every downstream input of the circuit graph (graph.h:
 * each query head's own q, k and v input, each MLP input, the logits) reads its own copy of the residual stream, so
 * single edges can be ablated — how MIB evaluates edge circuits (and, with all outgoing edges of a node, node
 * circuits).
 *
 * With alpha[u * n_down + d] in [0, 1] on real edges (0 keeps the edge, 1 ablates it, fractions interpolate, which
 * derivative checks use) the input of downstream d is
 *     input_d = resid(run) - sum_u alpha[u, d] * (a_u(run) - a_u(ablated))
 * where resid(run) is the residual stream at d's read point in this run, a_u(run) the output upstream node u wrote
 * into it in this run (input: the embedding; head h of layer l: z_h · W_O[:, h*hd:(h+1)*hd]^T, TransformerLens's
 * attn.hook_result; MLP: hook_mlp_out) and a_u(ablated) the caller's replacement (a corrupt run's outputs for
 * counterfactual patching, dataset means for mean ablation). Each head normalises its own q/k/v inputs with the
 * layer's input_layernorm; the k/v inputs of query head h use kv head h / (n_heads / n_kv_heads)'s weights.
 * With alpha NULL (or all zero) the logits equal model_forward's up to rounding.
 *
 * Ownership: the runner owns its scratch (allocated once for a capacity, never in the forward); it reads the
 * model's parameters and does not touch the model's activations or hooks. */
#ifndef CIRCD_CIRCUITS_EDGE_FORWARD_H
#define CIRCD_CIRCUITS_EDGE_FORWARD_H

#include <stddef.h>
#include <stdint.h>

#include "circuits/graph.h"
#include "data/arith_batch.h"
#include "model/model.h"

struct edge_runner {
    const struct circuit_graph *g;
    int capacity_B, capacity_T;
    int B, T;              /* shape of the last run */
    float *outputs;        /* [n_up, B*T, d_model] upstream outputs a_u of the last run (row-major per node) */
    float *logits;         /* [B*T, vocab] logits of the last run */
    void *scratch;         /* private working memory */
};

int edge_runner_init(struct edge_runner *r, const struct llama_model *m, const struct circuit_graph *g,
                     int capacity_B, int capacity_T);
void edge_runner_free(struct edge_runner *r);
/* Floats of an outputs array for a [B, T] run: n_up * B * T * d_model. */
size_t edge_outputs_numel(const struct edge_runner *r, const struct llama_model *m, int B, int T);

/* Runs tokens [B, T] (B, T within the capacity). alpha NULL: no ablation (ablated may be NULL); otherwise ablated
 * holds [n_up, B*T, d_model] replacement outputs laid out as r->outputs. CIRCD_EINPUT for a bad shape or token. */
int edge_forward(struct edge_runner *r, const struct llama_model *m, const int32_t *tokens, int B, int T,
                 const float *alpha, const float *ablated);

/* The MIB metric M per row of pb from the runner's last logits (pb's clean or corrupt tokens were run). */
void edge_metric_rows(const struct edge_runner *r, const struct llama_model *m, const struct pair_batch *pb,
                      double *out);

#endif
