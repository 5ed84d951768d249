/* nodes.h — node-level circuit discovery on metric pairs (clean / counterfactual prompts): the MIB metric
 * M = logit[clean answer] - logit[counterfactual answer] at the first differing answer position, attribution
 * patching (AtP) scores of every attention head (per-head z) and every MLP output, and exact activation patching of
 * the same nodes for checking how well the linear approximation holds.
 *
 * AtP score of node h on one pair: (h(x_corrupt) - h(x_clean)) · dM/dh at x_clean, summed over positions — from one
 * corrupt forward, one clean forward and one backward per batch, for all nodes at once. Exact patching: M with h
 * replaced by h(x_corrupt) minus M clean, one forward per node. Scores are accumulated over batches as sums (signed,
 * and of absolute values per pair) and divided by the number of pairs at the end. */
#ifndef CIRCD_CIRCUITS_NODES_H
#define CIRCD_CIRCUITS_NODES_H

#include <stdint.h>

#include "data/arith_batch.h"
#include "model/model.h"

/* Node n: heads first (layer-major: n = l * n_heads + h), then MLPs (n = n_layers * n_heads + l). */
struct node_scores {
    int n_layers, n_heads, n_nodes;
    double *signed_sum;   /* [n_nodes] sum over pairs of the per-pair score */
    double *abs_sum;      /* [n_nodes] sum over pairs of |per-pair score| */
    double metric_clean_sum, metric_corrupt_sum; /* sums of M on clean and on corrupt inputs */
    int64_t pairs;
};

int node_scores_init(struct node_scores *s, const struct llama_config *cfg);
void node_scores_free(struct node_scores *s);
/* Writes "blocks.{l}.attn.hook_z[h]" or "blocks.{l}.hook_mlp_out" for node n. */
const char *node_name(const struct node_scores *s, int n, char *buf, size_t cap);

/* M per row of tokens [B, T] (logits of the last forward must be of those tokens): out[b]. */
void metric_rows(const struct llama_model *m, const struct pair_batch *pb, double *out);
/* Adds d(sum over rows of M)/d logits into dlogits [B, T, V] (zeroed by the caller): +1 at the clean answer's logit
 * and -1 at the counterfactual's, at each row's metric position. */
void metric_dlogits(const struct pair_batch *pb, int V, float *dlogits);

/* Adds one batch of pairs to AtP scores (hook gradients only: no parameter gradients needed; leaves the model's hooks
 * cleared). */
int atp_nodes_batch(struct llama_model *m, const struct pair_batch *pb, struct node_scores *s);
/* One exact-patching forward: the clean tokens with `patch` registered; adds each row's M - clean[b] to *signed_sum
 * and its |.| to *abs_sum (patched: [B] scratch for the patched M). Leaves the model's hooks cleared. */
int add_patch_effect(struct llama_model *m, const struct pair_batch *pb, const struct hook_request *patch,
                     const double *clean, double *patched, double *signed_sum, double *abs_sum);
/* Adds one batch of pairs to exact activation-patching effects (n_nodes + 2 forwards). */
int exact_patch_nodes_batch(struct llama_model *m, const struct pair_batch *pb, struct node_scores *s);

/* Pearson and Spearman correlation of two score vectors (e.g. AtP and exact, per node). */
double correlation_pearson(const double *x, const double *y, int n);
double correlation_spearman(const double *x, const double *y, int n);

#endif
