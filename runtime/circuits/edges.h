/* edges.h — edge attribution patching (EAP) and EAP-IG over the circuit graph (graph.h), as MIB and Hanna et al.,
 * and node attribution patching with the same integrated-gradients interpolation.
 *
 * EAP score of edge u -> d on one pair (clean x, corrupt x'), summed over positions t:
 *     score(u, d) = sum_t (a_u(x') - a_u(x))[t] · dM/d(input_d)[t]   at x
 * a_u is the output upstream u writes into the residual stream (input: hook_embed; head h of layer l:
 * z_h · W_O[:, h*hd:(h+1)*hd]^T, attn.hook_result; MLP: hook_mlp_out) and input_d the residual-stream copy downstream
 * d reads before its RMSNorm (hook_q_input / hook_k_input / hook_v_input of each query head, ungrouped under GQA;
 * hook_mlp_in; blocks.{L-1}.hook_resid_post for the logits). M is MIB's logit difference (nodes.h). The score is
 * dM/d alpha at alpha = 0 of edge_forward.h's ablation input_d = resid - alpha (a_u(x) - a_u(x')).
 *
 * EAP-IG (MIB's "EAP-IG-inputs", the EAP-IG library's get_scores_eap_ig in attribute.py): with m = ig_steps >= 1 the
 * gradients are the mean over m clean forward + backward passes in which hook_embed is replaced by
 *     e_k = e(x') + (k / m) (e(x) - e(x')),    k = 0, 1, ..., m - 1
 * (a left Riemann sum from the corrupt end: k = 0 is the corrupt embedding itself, the clean embedding is never
 * used; so m = 1 takes the gradients at the corrupt input). Activation differences stay a_u(x') - a_u(x) from plain
 * clean and corrupt forwards. The library's node-level file (attribute_node.py) steps k = 1..m instead; circd uses
 * the edge convention at both levels so that edge and node IG scores agree (sum over an upstream node's edges =
 * its node score).
 *
 * Cost per batch: one corrupt forward, one clean forward and one backward (plain EAP; EAP-IG adds m forward +
 * backward passes and drops none), then per layer the gradients of its 3*n_heads + 1 downstream inputs from the
 * backward's hooks and one GEMM per pair against the activation differences of the upstream nodes. Memory:
 * n_up * B*T * d_model floats of differences, (3 n_heads + 1) * B*T * d_model for one layer's input gradients, per
 * layer gradient hooks (dz, dpattern, dgate, dup) and B * n_up * n_down doubles of per-pair scores.
 *
 * Ownership: edge_scores borrows its graph (which must outlive it) and owns its sums. The batch functions allocate
 * their scratch once per call, need no parameter gradients (hook-only backward), and leave the model's hooks cleared. */
#ifndef CIRCD_CIRCUITS_EDGES_H
#define CIRCD_CIRCUITS_EDGES_H

#include <stdint.h>

#include "circuits/graph.h"
#include "circuits/nodes.h"
#include "data/arith_batch.h"
#include "model/model.h"

#define EDGES_MAX_IG_STEPS 4096

struct edge_scores {
    const struct circuit_graph *g; /* borrowed */
    double *signed_sum;            /* [n_up * n_down] sum over pairs of the per-pair score (0 on non-edges) */
    double *abs_sum;               /* [n_up * n_down] sum over pairs of |per-pair score| */
    double metric_clean_sum, metric_corrupt_sum;
    int64_t pairs;
};

int edge_scores_init(struct edge_scores *s, const struct circuit_graph *g);
void edge_scores_free(struct edge_scores *s);

/* Adds one batch of pairs to s: plain EAP with ig_steps 0, EAP-IG with ig_steps = m in [1, EDGES_MAX_IG_STEPS].
 * CIRCD_EINPUT for a bad ig_steps or a graph of another architecture. */
int eap_edges_batch(struct llama_model *m, const struct pair_batch *pb, int ig_steps, struct edge_scores *s);

/* Node AtP (nodes.h's scores: Δz_h · dM/dz_h per head, Δmlp_out · dM/dmlp_out per MLP) with the gradients averaged
 * over the same m interpolated passes as EAP-IG; ig_steps 0 is atp_nodes_batch. */
int atp_nodes_ig_batch(struct llama_model *m, const struct pair_batch *pb, int ig_steps, struct node_scores *s);

/* ---- the gradients of M with respect to every downstream input (edge_grads.c) ----
 * After a forward and backward with input_grads_register's hooks, input_grads_layer writes layer l's downstream
 * input gradients into out [3*n_heads + 1, B*T, d_model] in graph order (q inputs of heads 0..H-1, k inputs, v
 * inputs, the MLP input), and input_grads_logits the logits input's [B*T, d_model]. The k/v inputs are per query
 * head: the attention backward runs on per-query-head copies of the kv heads. */
struct input_grads {
    int B, T;
    float *memory;
    float **dz, **dpattern, **dgate, **dup; /* [L] per-layer gradient hooks */
    float *dresid_final;                    /* [N, d] blocks.{L-1}.hook_resid_post */
    float *k_rot, *v, *dq_rot, *dk_rot, *dq, *dk, *dv; /* [N, n_heads*hd] per-query-head scratch */
    float *dln;                                        /* [N, d] */
};

int input_grads_alloc(struct input_grads *g, const struct llama_config *cfg, int B, int T);
void input_grads_free(struct input_grads *g);
/* Registers the HOOK_GRAD requests (adds to the model's hooks; the caller clears them). */
int input_grads_register(struct input_grads *g, struct llama_model *m);
void input_grads_layer(struct input_grads *g, const struct llama_model *m, int l, float *out);
void input_grads_logits(const struct input_grads *g, const struct llama_model *m, float *out);

#endif
