/* graph.h — the computational graph of a Llama model as MIB and the EAP-IG library see it, and circuits in it.
 *
 * Upstream ("forward") nodes write into the residual stream: the input embedding, every attention head (its
 * per-head output z_h · W_O[:, h]^T) and every MLP. Downstream ("backward") inputs read from it: each query head's
 * separate q, k and v inputs (as TransformerLens's use_split_qkv_input with grouped-query attention ungrouped: the
 * k/v input of query head h feeds kv head h / (n_heads / n_kv_heads) for that head only), each MLP's input and the
 * logits. An edge u -> d exists when u is computed before d reads the residual stream: every earlier layer, and a
 * head of layer l into the MLP of layer l.
 *
 * Indices are the EAP-IG library's, so score matrices line up with MIB's files:
 *   upstream   0 = input, 1 + l*(H+1) + h = head h of layer l, 1 + l*(H+1) + H = MLP l      (n_up = 1 + L*(H+1))
 *   downstream l*(3H+1) + j*H + h = q/k/v (j = 0/1/2) input of head h, l*(3H+1) + 3H = MLP l input,
 *              L*(3H+1) = logits                                                        (n_down = L*(3H+1) + 1)
 * Names: MIB's ("input", "a3.h1", "m3", "logits"; edges "a0.h1->a2.h3<q>", "m0->logits") and TransformerLens's
 * hook names for reports ("hook_embed", "blocks.3.attn.hook_result[1]", "blocks.3.hook_mlp_out";
 * "blocks.3.hook_q_input[1]", "blocks.3.hook_mlp_in", "blocks.{L-1}.hook_resid_post").
 *
 * A circuit marks edges and upstream nodes as in the graph. MIB's rules: top-n edges (or top-n nodes with all their
 * outgoing edges; the input node is always kept at node level) by score, signed or absolute, then pruning removes
 * nodes without both an incoming and an outgoing edge and edges whose ends are gone, until nothing changes. */
#ifndef CIRCD_CIRCUITS_GRAPH_H
#define CIRCD_CIRCUITS_GRAPH_H

#include <stddef.h>

struct llama_config;

enum graph_qkv { GRAPH_Q = 0, GRAPH_K = 1, GRAPH_V = 2 };
enum graph_level { GRAPH_LEVEL_NODE = 0, GRAPH_LEVEL_EDGE = 1 };

struct circuit_graph {
    int n_layers, n_heads, n_kv_heads;
    int n_up, n_down;
    size_t n_edges;      /* real edges */
    unsigned char *real; /* [n_up * n_down]: 1 where u -> d is an edge */
};

int graph_init(struct circuit_graph *g, const struct llama_config *cfg);
void graph_free(struct circuit_graph *g);

static inline int graph_up_head(const struct circuit_graph *g, int l, int h) { return 1 + l * (g->n_heads + 1) + h; }
static inline int graph_up_mlp(const struct circuit_graph *g, int l) { return 1 + l * (g->n_heads + 1) + g->n_heads; }
static inline int graph_down_head(const struct circuit_graph *g, int l, int h, enum graph_qkv j)
{
    return l * (3 * g->n_heads + 1) + (int)j * g->n_heads + h;
}
static inline int graph_down_mlp(const struct circuit_graph *g, int l) { return l * (3 * g->n_heads + 1) + 3 * g->n_heads; }
static inline int graph_down_logits(const struct circuit_graph *g) { return g->n_layers * (3 * g->n_heads + 1); }
static inline size_t graph_edge_index(const struct circuit_graph *g, int u, int d) { return (size_t)u * g->n_down + d; }

/* What an upstream / downstream index is: kind 0 = input / logits, 1 = head, 2 = MLP; layer and head (or -1);
 * for downstream heads also the q/k/v input. */
struct graph_place { int kind, layer, head; enum graph_qkv qkv; };
struct graph_place graph_up_place(const struct circuit_graph *g, int u);
struct graph_place graph_down_place(const struct circuit_graph *g, int d);
/* The upstream node whose own inputs downstream d is (the head / MLP itself), or -1 for the logits. */
int graph_down_owner(const struct circuit_graph *g, int d);

/* Upstream index of node n of a node_scores vector (heads layer-major, then MLPs; nodes.h). */
static inline int graph_up_from_node(const struct circuit_graph *g, int n)
{
    int heads = g->n_layers * g->n_heads;
    return n < heads ? graph_up_head(g, n / g->n_heads, n % g->n_heads) : graph_up_mlp(g, n - heads);
}

/* MIB names into buf (NUL-terminated), returning buf. */
const char *graph_up_name(const struct circuit_graph *g, int u, char *buf, size_t cap);
const char *graph_down_name(const struct circuit_graph *g, int d, char *buf, size_t cap);
const char *graph_edge_name(const struct circuit_graph *g, int u, int d, char *buf, size_t cap);
/* TransformerLens hook names of an upstream output / a downstream input. */
const char *graph_up_hook(const struct circuit_graph *g, int u, char *buf, size_t cap);
const char *graph_down_hook(const struct circuit_graph *g, int d, char *buf, size_t cap);
/* Parses MIB names; -1 when the name is not a node / input of this graph (edges: also when not a real edge). */
int graph_parse_up(const struct circuit_graph *g, const char *name);
int graph_parse_down(const struct circuit_graph *g, const char *name);
int graph_parse_edge(const struct circuit_graph *g, const char *name, int *u, int *d);

struct circuit {
    const struct circuit_graph *g;
    unsigned char *edges; /* [n_up * n_down] */
    unsigned char *nodes; /* [n_up] */
};

int circuit_alloc(struct circuit *c, const struct circuit_graph *g);
void circuit_free(struct circuit *c);
void circuit_set_full(struct circuit *c);  /* every real edge and node */
void circuit_set_empty(struct circuit *c); /* nothing */
/* MIB's apply_topn at edge level: the n real edges with the highest (|score| if absolute) scores, ties to the lower
 * index; scores [n_up * n_down] (non-edges ignored). Nodes with an outgoing and an incoming edge (input always
 * counts as having one) join, then prune. */
void circuit_top_edges(struct circuit *c, const double *scores, size_t n, int absolute);
/* At node level: the n highest-scoring upstream nodes (scores [n_up]; NaN = unscored, always kept: MIB keeps the
 * input so) with all their outgoing edges, then prune. */
void circuit_top_nodes(struct circuit *c, const double *scores, size_t n, int absolute);
void circuit_prune(struct circuit *c);
size_t circuit_edge_count(const struct circuit *c);
int circuit_node_count(const struct circuit *c);

#endif
