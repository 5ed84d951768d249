/* atp_star.h — AtP* (Kramár et al. 2024, "AtP*: An efficient and scalable method for localizing LLM behaviour to
 * components") as options of node attribution patching (nodes.h): more nodes, and two fixes of AtP's blind spots.
 *
 * Nodes. Always every head's z and every MLP output (the nodes of nodes.h, same indices); with attention_inputs
 * also the attention inputs: per query head h a q node (blocks.l.attn.hook_q, head h), per kv head j a k node and
 * a v node (hook_k / hook_v, kv head j). With grouped-query attention a kv head is shared: k/v node j of a layer
 * feeds query heads j*G .. j*G + G-1 (G = n_heads / n_kv_heads), and patching it changes all of them. Scores are
 * of the pre-RoPE hook values, as TransformerLens names them; patching hook_q/hook_k with the corrupt run's values
 * gives the corrupt run's hook_rot_q/hook_rot_k, since RoPE depends on positions only.
 *
 * Plain AtP of node n on one pair: sum over positions of (n(corrupt) - n(clean)) · dM/dn at the clean input.
 *
 * QK fix (qk_fix). A saturated softmax has a vanishing gradient, so AtP misses q/k nodes whose change moves the
 * attention a lot. For a q node (query head h) the pattern of head h is recomputed exactly from the corrupt
 * rot_q of head h and the clean rot_k; for a k node (kv head j) the patterns of its query heads from the clean
 * rot_q and the corrupt rot_k of head j. Score = sum of dP · dM/dP (dP = P_patched - P_clean, dM/dP read at
 * attn.hook_pattern in the clean backward). AtP* linearises per key and query position separately; our node is a
 * whole head over all positions, so we recompute the head's full pattern with all positions patched at once —
 * exactly the pattern an activation-patched forward has in that layer; only what follows the pattern stays linear.
 * v nodes, z and MLP nodes keep plain AtP. The pattern changes are computed once per batch (2 * H head patterns per
 * layer) and reused by GradDrop; with the QK fix a batch holds four [L, B, H, T, T] float buffers (the clean
 * pattern, its gradient, the q-side and k-side changes) besides the caches of the node hooks.
 *
 * GradDrop (grad_drop). For each layer l a clean forward + backward in which layer l's residual contributions
 * pass no gradient (blocks.l.hook_attn_out and blocks.l.hook_mlp_out patched with their own clean values: the
 * forward is unchanged, the patched values are constants), giving AtP_l(n) (the QK-fixed form for q/k nodes when
 * qk_fix is on); nodes of layer l get AtP_l = 0. Per pair GradDrop(n) = 1/(L-1) sum_l |AtP_l(n)| — an estimate of
 * |effect| that cancellation between paths cannot hide. Needs L >= 2. Cost: L extra forward + backward passes per
 * batch. (The patched forwards are bit-identical to the clean one, so one forward with only the backward repeated
 * would do; we pay the forwards to stay within the documented hook semantics.)
 *
 * Scores accumulate over batches as sums per pair and are divided by the number of pairs by the reader. */
#ifndef CIRCD_CIRCUITS_ATP_STAR_H
#define CIRCD_CIRCUITS_ATP_STAR_H

#include <stdint.h>
#include <stdio.h>

#include "circuits/nodes.h"

struct atp_star_options {
    int attention_inputs; /* add q, k, v nodes */
    int qk_fix;           /* QK-fixed scores of q/k nodes (needs attention_inputs) */
    int grad_drop;        /* GradDrop |effect| estimates (needs L >= 2) */
};

enum atp_node_kind { ATP_NODE_Z, ATP_NODE_MLP, ATP_NODE_Q, ATP_NODE_K, ATP_NODE_V };

/* Node n: z heads (n = l * n_heads + h), MLPs (L * n_heads + l) as in nodes.h; then with attention inputs q heads
 * (layer-major, n_heads per layer), k heads and v heads (n_kv_heads per layer each). */
struct atp_node {
    enum atp_node_kind kind;
    int layer, head; /* head: query head for z/q, kv head for k/v, -1 for MLP */
};

struct atp_star_scores {
    int n_layers, n_heads, n_kv_heads, n_nodes;
    struct atp_star_options options;
    double *signed_sum, *abs_sum;       /* [n_nodes] plain AtP (or exact effects), and |per-pair| */
    double *qk_signed_sum, *qk_abs_sum; /* [n_nodes] with the QK fix (plain for nodes other than q/k); or NULL */
    double *grad_drop_sum;              /* [n_nodes] per-pair GradDrop, summed; or NULL */
    double metric_clean_sum, metric_corrupt_sum;
    int64_t pairs;
};

/* CIRCD_EINPUT for qk_fix without attention_inputs, grad_drop with one layer; CIRCD_ENOMEM. */
int atp_star_scores_init(struct atp_star_scores *s, const struct llama_config *cfg,
                         const struct atp_star_options *options);
void atp_star_scores_free(struct atp_star_scores *s);
struct atp_node atp_star_node(const struct atp_star_scores *s, int n);
/* "blocks.1.attn.hook_z[2]", "blocks.0.hook_mlp_out", "blocks.1.attn.hook_q[2]", "blocks.1.attn.hook_k[0]",
 * "blocks.1.attn.hook_v[0]" (k/v: the kv head index). */
const char *atp_star_node_name(const struct atp_star_scores *s, int n, char *buf, size_t cap);

/* Adds one batch of pairs to the scores the options of s ask for (2 forwards + 1
 * backward, plus L forwards + backwards with GradDrop). Leaves the model's hooks cleared. */
int atp_star_batch(struct llama_model *m, const struct pair_batch *pb, struct atp_star_scores *s);
/* Adds one batch of exact activation-patching effects of every node of s into signed_sum / abs_sum (n_nodes + 2
 * forwards). */
int atp_star_exact_batch(struct llama_model *m, const struct pair_batch *pb, struct atp_star_scores *s);

/* GradDrop's AtP_l of every node on every pair of the batch, with the QK fix when s's options ask for it:
 * out[b * n_nodes + n] (0 for nodes of layer l). Adds nothing to s; for checking and inspection. */
int atp_star_grad_drop_layer(struct llama_model *m, const struct pair_batch *pb, const struct atp_star_scores *s,
                             int layer, double *out);

/* The attention pattern [B, T, T] of query head h of one layer, recomputed from post-RoPE queries
 * rot_q [B, T, n_heads, hd] and keys rot_k [B, T, n_kv_heads, hd] (head h reads kv head h / G). scratch holds
 * 2 * B * T * head_dim floats. */
void attention_head_pattern(float *pattern, const float *rot_q, const float *rot_k, const struct llama_config *cfg,
                            int B, int T, int h, float *scratch);

/* Agreement of the estimates in atp (from atp_star_batch) with exact patching (atp_star_exact_batch, same pairs),
 * over per-pair means of the nodes: NAN where a variant is off or a score vector is constant. */
struct atp_star_agreement {
    int n_nodes, n_qk_nodes;
    double atp_pearson, atp_spearman;             /* plain AtP vs exact, signed, all nodes */
    double atp_qk_pearson, atp_qk_spearman;       /* plain AtP vs exact, signed, q/k nodes only */
    double qk_fix_pearson, qk_fix_spearman;       /* QK-fixed vs exact, signed, q/k nodes only */
    double abs_atp_pearson, abs_atp_spearman;     /* mean |AtP| vs mean |exact|, all nodes */
    double grad_drop_pearson, grad_drop_spearman; /* GradDrop vs mean |exact|, all nodes */
};
/* CIRCD_EINPUT when the two do not cover the same nodes and pairs. */
int atp_star_agreement(const struct atp_star_scores *atp, const struct atp_star_scores *exact,
                       struct atp_star_agreement *out);
void atp_star_agreement_print(FILE *f, const struct atp_star_agreement *a);

#endif
