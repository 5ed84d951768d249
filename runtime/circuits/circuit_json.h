/* circuit_json.h — circuits in MIB's submission layout (the EAP-IG library's Graph.to_json / from_json):
 *
 *   {"cfg":   {"n_layers": L, "n_heads": H, "d_model": d, "parallel_attn_mlp": false, "n_kv_heads": KV},
 *    "nodes": {"input": {"in_graph": true, "score": s?}, "a0.h1": {...}, "m0": {...}, ..., "logits": {...}},
 *    "edges": {"input->a0.h0<q>": {"score": s, "in_graph": b}, ..., "m3->logits": {...}}}
 *
 * Scores are whatever the caller passes; circd's writers pass MIB's sign, the attribution of MIB's loss -M (the
 * negated logit difference), i.e. -1 times circd's (h_corr - h_clean) · dM/dh.
 * Every real edge of the graph is written with its score (MIB applies its own top-n to a file of scores, or reads
 * in_graph as given); node scores only when the circuit was found at node level. Written atomically. Reading checks
 * the cfg against the model, every node and edge name, and the types, naming the file and the JSON field; edges
 * missing from the file are out of the circuit with score 0 (MIB's loader leaves them so too). */
#ifndef CIRCD_CIRCUITS_CIRCUIT_JSON_H
#define CIRCD_CIRCUITS_CIRCUIT_JSON_H

#include "circuits/graph.h"

/* edge_scores [n_up * n_down] or NULL (scores written as 0); node_scores [n_up] or NULL (no node scores; NaN
 * entries are written without a score). */
int circuit_json_write(const char *path, const struct circuit *c, int d_model, const double *edge_scores,
                       const double *node_scores);

/* c must be allocated on the model's graph. edge_scores [n_up * n_down] and node_scores [n_up] may be NULL; node
 * scores absent from the file are NaN and *has_node_scores (may be NULL) says whether any was present. */
int circuit_json_read(const char *path, struct circuit *c, double *edge_scores, double *node_scores,
                      int *has_node_scores);
/* The same from memory (data need not be NUL-terminated); name is used in messages. */
int circuit_json_parse(const char *data, size_t size, const char *name, struct circuit *c, double *edge_scores,
                       double *node_scores, int *has_node_scores);

#endif
