/* graph.c — implementation of graph.h. */
#include "circuits/graph.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/config.h"
#include "util/error.h"

int graph_init(struct circuit_graph *g, const struct llama_config *cfg)
{
    memset(g, 0, sizeof *g);
    g->n_layers = cfg->n_layers;
    g->n_heads = cfg->n_heads;
    g->n_kv_heads = cfg->n_kv_heads;
    g->n_up = 1 + cfg->n_layers * (cfg->n_heads + 1);
    g->n_down = cfg->n_layers * (3 * cfg->n_heads + 1) + 1;
    g->real = xcalloc((size_t)g->n_up * g->n_down, 1);
    if (!g->real) return CIRCD_ENOMEM;
    for (int d = 0; d < g->n_down; d++) {
        struct graph_place p = graph_down_place(g, d);
        /* Upstream nodes computed before d reads the stream: all of earlier layers, plus this layer's heads for
         * its MLP (the input always). */
        int last = p.kind == 0 ? g->n_up : p.kind == 1 ? 1 + p.layer * (g->n_heads + 1)
                                                       : 1 + p.layer * (g->n_heads + 1) + g->n_heads;
        for (int u = 0; u < last; u++) g->real[graph_edge_index(g, u, d)] = 1;
        g->n_edges += (size_t)last;
    }
    return CIRCD_OK;
}

void graph_free(struct circuit_graph *g)
{
    free(g->real);
    memset(g, 0, sizeof *g);
}

struct graph_place graph_up_place(const struct circuit_graph *g, int u)
{
    struct graph_place p = {0, -1, -1, GRAPH_Q};
    if (u <= 0) return p;
    p.layer = (u - 1) / (g->n_heads + 1);
    int i = (u - 1) % (g->n_heads + 1);
    if (i < g->n_heads) { p.kind = 1; p.head = i; }
    else p.kind = 2;
    return p;
}

struct graph_place graph_down_place(const struct circuit_graph *g, int d)
{
    struct graph_place p = {0, -1, -1, GRAPH_Q};
    if (d >= graph_down_logits(g)) return p;
    p.layer = d / (3 * g->n_heads + 1);
    int i = d % (3 * g->n_heads + 1);
    if (i < 3 * g->n_heads) { p.kind = 1; p.qkv = (enum graph_qkv)(i / g->n_heads); p.head = i % g->n_heads; }
    else p.kind = 2;
    return p;
}

int graph_down_owner(const struct circuit_graph *g, int d)
{
    struct graph_place p = graph_down_place(g, d);
    if (p.kind == 0) return -1;
    return p.kind == 1 ? graph_up_head(g, p.layer, p.head) : graph_up_mlp(g, p.layer);
}

const char *graph_up_name(const struct circuit_graph *g, int u, char *buf, size_t cap)
{
    struct graph_place p = graph_up_place(g, u);
    if (p.kind == 0) snprintf(buf, cap, "input");
    else if (p.kind == 1) snprintf(buf, cap, "a%d.h%d", p.layer, p.head);
    else snprintf(buf, cap, "m%d", p.layer);
    return buf;
}

const char *graph_down_name(const struct circuit_graph *g, int d, char *buf, size_t cap)
{
    struct graph_place p = graph_down_place(g, d);
    if (p.kind == 0) snprintf(buf, cap, "logits");
    else if (p.kind == 1) snprintf(buf, cap, "a%d.h%d<%c>", p.layer, p.head, "qkv"[p.qkv]);
    else snprintf(buf, cap, "m%d", p.layer);
    return buf;
}

const char *graph_edge_name(const struct circuit_graph *g, int u, int d, char *buf, size_t cap)
{
    char up[32], down[32];
    struct graph_place p = graph_down_place(g, d);
    graph_up_name(g, u, up, sizeof up);
    if (p.kind == 1) snprintf(buf, cap, "%s->a%d.h%d<%c>", up, p.layer, p.head, "qkv"[p.qkv]);
    else snprintf(buf, cap, "%s->%s", up, graph_down_name(g, d, down, sizeof down));
    return buf;
}

const char *graph_up_hook(const struct circuit_graph *g, int u, char *buf, size_t cap)
{
    struct graph_place p = graph_up_place(g, u);
    if (p.kind == 0) snprintf(buf, cap, "hook_embed");
    else if (p.kind == 1) snprintf(buf, cap, "blocks.%d.attn.hook_result[%d]", p.layer, p.head);
    else snprintf(buf, cap, "blocks.%d.hook_mlp_out", p.layer);
    return buf;
}

const char *graph_down_hook(const struct circuit_graph *g, int d, char *buf, size_t cap)
{
    struct graph_place p = graph_down_place(g, d);
    if (p.kind == 0) snprintf(buf, cap, "blocks.%d.hook_resid_post", g->n_layers - 1);
    else if (p.kind == 1) snprintf(buf, cap, "blocks.%d.hook_%c_input[%d]", p.layer, "qkv"[p.qkv], p.head);
    else snprintf(buf, cap, "blocks.%d.hook_mlp_in", p.layer);
    return buf;
}

/* Parses a non-negative decimal at *s (no sign, no leading '+'), advancing s; -1 if none or too large. */
static int parse_index(const char **s)
{
    const char *p = *s;
    long v = 0;
    if (*p < '0' || *p > '9') return -1;
    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (*p++ - '0');
        if (v > 1000000) return -1;
    }
    *s = p;
    return (int)v;
}

/* Parses "input" / "aL.hH" / "mL" at the start of s: kind (0/1/2), layer, head; returns the rest or NULL. */
static const char *parse_node(const struct circuit_graph *g, const char *s, int *kind, int *layer, int *head)
{
    *layer = *head = -1;
    if (strncmp(s, "input", 5) == 0) { *kind = 0; return s + 5; }
    if (strncmp(s, "logits", 6) == 0) { *kind = 3; return s + 6; }
    if (*s == 'm') {
        s++;
        *kind = 2;
        if ((*layer = parse_index(&s)) < 0 || *layer >= g->n_layers) return NULL;
        return s;
    }
    if (*s != 'a') return NULL;
    s++;
    *kind = 1;
    if ((*layer = parse_index(&s)) < 0 || *layer >= g->n_layers || s[0] != '.' || s[1] != 'h') return NULL;
    s += 2;
    if ((*head = parse_index(&s)) < 0 || *head >= g->n_heads) return NULL;
    return s;
}

int graph_parse_up(const struct circuit_graph *g, const char *name)
{
    int kind, layer, head;
    const char *rest = parse_node(g, name, &kind, &layer, &head);
    if (!rest || *rest || kind == 3) return -1;
    return kind == 0 ? 0 : kind == 1 ? graph_up_head(g, layer, head) : graph_up_mlp(g, layer);
}

int graph_parse_down(const struct circuit_graph *g, const char *name)
{
    int kind, layer, head;
    const char *rest = parse_node(g, name, &kind, &layer, &head);
    if (!rest || kind == 0) return -1;
    if (kind == 3) return *rest ? -1 : graph_down_logits(g);
    if (kind == 2) return *rest ? -1 : graph_down_mlp(g, layer);
    if (rest[0] != '<' || !rest[1] || !strchr("qkv", rest[1]) || rest[2] != '>' || rest[3]) return -1;
    return graph_down_head(g, layer, head, (enum graph_qkv)(strchr("qkv", rest[1]) - "qkv"));
}

int graph_parse_edge(const struct circuit_graph *g, const char *name, int *u, int *d)
{
    const char *arrow = strstr(name, "->");
    char up[64];
    if (!arrow || (size_t)(arrow - name) >= sizeof up) return -1;
    memcpy(up, name, (size_t)(arrow - name));
    up[arrow - name] = '\0';
    *u = graph_parse_up(g, up);
    *d = graph_parse_down(g, arrow + 2);
    if (*u < 0 || *d < 0 || !g->real[graph_edge_index(g, *u, *d)]) return -1;
    return 0;
}

int circuit_alloc(struct circuit *c, const struct circuit_graph *g)
{
    c->g = g;
    c->edges = xcalloc((size_t)g->n_up * g->n_down, 1);
    c->nodes = xcalloc((size_t)g->n_up, 1);
    if (!c->edges || !c->nodes) { circuit_free(c); return CIRCD_ENOMEM; }
    return CIRCD_OK;
}

void circuit_free(struct circuit *c)
{
    free(c->edges);
    free(c->nodes);
    memset(c, 0, sizeof *c);
}

void circuit_set_full(struct circuit *c)
{
    memcpy(c->edges, c->g->real, (size_t)c->g->n_up * c->g->n_down);
    memset(c->nodes, 1, (size_t)c->g->n_up);
}

void circuit_set_empty(struct circuit *c)
{
    memset(c->edges, 0, (size_t)c->g->n_up * c->g->n_down);
    memset(c->nodes, 0, (size_t)c->g->n_up);
}

struct ranked { double key; size_t index; };

static int by_key_desc(const void *a, const void *b)
{
    const struct ranked *x = a, *y = b;
    if (x->key != y->key) return x->key > y->key ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Sorts candidates (NaN keys rank last) and returns them malloc'd; NULL when out of memory. */
static struct ranked *rank(const double *scores, const size_t *candidates, size_t n, int absolute)
{
    struct ranked *r = malloc((n ? n : 1) * sizeof *r);
    if (!r) return NULL;
    for (size_t i = 0; i < n; i++) {
        double s = scores[candidates[i]];
        r[i].key = isnan(s) ? -INFINITY : absolute ? fabs(s) : s;
        r[i].index = candidates[i];
    }
    qsort(r, n, sizeof *r, by_key_desc);
    return r;
}

void circuit_top_edges(struct circuit *c, const double *scores, size_t n, int absolute)
{
    const struct circuit_graph *g = c->g;
    size_t total = (size_t)g->n_up * g->n_down, m = 0;
    size_t *candidates = malloc(g->n_edges * sizeof *candidates);
    struct ranked *r = NULL;
    circuit_set_empty(c);
    if (candidates) {
        for (size_t i = 0; i < total; i++)
            if (g->real[i]) candidates[m++] = i;
        r = rank(scores, candidates, m, absolute);
    }
    if (!r) { free(candidates); return; } /* out of memory: the empty circuit */
    for (size_t i = 0; i < n && i < m; i++) c->edges[r[i].index] = 1;
    free(r);
    free(candidates);
    circuit_prune(c);
}

void circuit_top_nodes(struct circuit *c, const double *scores, size_t n, int absolute)
{
    const struct circuit_graph *g = c->g;
    size_t m = 0, *candidates = malloc((size_t)g->n_up * sizeof *candidates);
    struct ranked *r = NULL;
    circuit_set_empty(c);
    if (candidates) {
        for (int u = 0; u < g->n_up; u++) {
            if (isnan(scores[u])) c->nodes[u] = 1;
            else candidates[m++] = (size_t)u;
        }
        r = rank(scores, candidates, m, absolute);
    }
    if (!r) { free(candidates); return; }
    for (size_t i = 0; i < n && i < m; i++) c->nodes[r[i].index] = 1;
    for (int u = 0; u < g->n_up; u++)
        if (c->nodes[u])
            for (int d = 0; d < g->n_down; d++) c->edges[graph_edge_index(g, u, d)] = g->real[graph_edge_index(g, u, d)];
    free(r);
    free(candidates);
    circuit_prune(c);
}

void circuit_prune(struct circuit *c)
{
    const struct circuit_graph *g = c->g;
    for (int changed = 1; changed;) {
        changed = 0;
        for (int u = 0; u < g->n_up; u++) {
            int outgoing = 0, ingoing = u == 0;
            for (int d = 0; d < g->n_down && !outgoing; d++) outgoing = c->edges[graph_edge_index(g, u, d)];
            for (int d = 0; d < g->n_down && !ingoing; d++) {
                if (graph_down_owner(g, d) != u) continue;
                for (int v = 0; v < g->n_up && !ingoing; v++) ingoing = c->edges[graph_edge_index(g, v, d)];
            }
            unsigned char in = (unsigned char)(outgoing && ingoing);
            if (in != c->nodes[u]) { c->nodes[u] = in; changed = 1; }
        }
        for (int u = 0; u < g->n_up; u++)
            for (int d = 0; d < g->n_down; d++) {
                size_t i = graph_edge_index(g, u, d);
                int owner = graph_down_owner(g, d);
                if (c->edges[i] && (!c->nodes[u] || (owner >= 0 && !c->nodes[owner]))) { c->edges[i] = 0; changed = 1; }
            }
    }
}

size_t circuit_edge_count(const struct circuit *c)
{
    size_t n = 0, total = (size_t)c->g->n_up * c->g->n_down;
    for (size_t i = 0; i < total; i++) n += c->edges[i];
    return n;
}

int circuit_node_count(const struct circuit *c)
{
    int n = 0;
    for (int u = 0; u < c->g->n_up; u++) n += c->nodes[u];
    return n;
}
