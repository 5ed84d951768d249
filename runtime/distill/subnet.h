/* subnet.h — subnetwork fine-tuning: which student parameters belong to a set of circuit components, as a mask over
 * the model's flat parameter buffer, so that training updates only the circuit and leaves every other parameter
 * bit-identical.
 *
 * Components are upstream nodes of the circuit graph (circuits/graph.h: head h of layer l, or MLP l; the input
 * node — the embeddings — is not a component). A head owns its rows of q_proj, its columns of o_proj and the rows of
 * k_proj / v_proj of its kv head (shared with the other query heads of its group under GQA: the kv head is trained
 * when any of them is in the circuit); an MLP owns gate_proj, up_proj and down_proj. Norm weights, embeddings and
 * lm_head are never in the subnetwork. */
#ifndef CIRCD_DISTILL_SUBNET_H
#define CIRCD_DISTILL_SUBNET_H

#include "circuits/graph.h"
#include "model/model.h"

/* mask[n_params]: 1 for parameters of the components ups[0..n) (graph upstream indices), 0 elsewhere.
 * CIRCD_EINPUT naming a bad index (the input node, or out of range). */
int subnet_mask_build(const struct llama_model *m, const struct circuit_graph *g, const int *ups, int n,
                      unsigned char *mask);
/* Number of parameters the mask selects. */
size_t subnet_mask_count(const unsigned char *mask, size_t n_params);

#endif
