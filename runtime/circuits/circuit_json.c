/* circuit_json.c — implementation of circuit_json.h (Jansson). */
#include "circuits/circuit_json.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/atomic_file.h"
#include "util/error.h"

static int set_new(json_t *obj, const char *key, json_t *value)
{
    return value && json_object_set_new(obj, key, value) == 0 ? 0 : -1;
}

static json_t *node_entry(int in_graph, const double *score)
{
    json_t *e = json_object();
    if (!e) return NULL;
    int bad = set_new(e, "in_graph", json_boolean(in_graph));
    if (!bad && score && !isnan(*score)) bad = set_new(e, "score", json_real(*score));
    if (bad) { json_decref(e); return NULL; }
    return e;
}

static json_t *build(const struct circuit *c, int d_model, const double *edge_scores, const double *node_scores)
{
    const struct circuit_graph *g = c->g;
    json_t *root = json_object(), *cfg = json_object(), *nodes = json_object(), *edges = json_object();
    int bad = !root || !cfg || !nodes || !edges;
    if (!bad) {
        bad |= set_new(cfg, "n_layers", json_integer(g->n_layers));
        bad |= set_new(cfg, "n_heads", json_integer(g->n_heads));
        bad |= set_new(cfg, "d_model", json_integer(d_model));
        bad |= set_new(cfg, "parallel_attn_mlp", json_false());
        bad |= set_new(cfg, "n_kv_heads", json_integer(g->n_kv_heads));
    }
    char name[64];
    for (int u = 0; u < g->n_up && !bad; u++)
        bad |= set_new(nodes, graph_up_name(g, u, name, sizeof name),
                       node_entry(c->nodes[u], node_scores ? &node_scores[u] : NULL));
    if (!bad) bad |= set_new(nodes, "logits", node_entry(1, NULL));
    for (int u = 0; u < g->n_up && !bad; u++)
        for (int d = 0; d < g->n_down && !bad; d++) {
            size_t i = graph_edge_index(g, u, d);
            if (!g->real[i]) continue;
            json_t *e = json_object();
            bad |= !e;
            if (!bad) bad |= set_new(e, "score", json_real(edge_scores ? edge_scores[i] : 0.0));
            if (!bad) bad |= set_new(e, "in_graph", json_boolean(c->edges[i]));
            if (!bad) bad |= set_new(edges, graph_edge_name(g, u, d, name, sizeof name), e);
            else json_decref(e);
        }
    if (!bad) {
        bad |= set_new(root, "cfg", cfg);
        cfg = NULL;
        bad |= set_new(root, "nodes", nodes);
        nodes = NULL;
        bad |= set_new(root, "edges", edges);
        edges = NULL;
    }
    json_decref(cfg);
    json_decref(nodes);
    json_decref(edges);
    if (bad) { json_decref(root); return NULL; }
    return root;
}

int circuit_json_write(const char *path, const struct circuit *c, int d_model, const double *edge_scores,
                       const double *node_scores)
{
    json_t *root = build(c, d_model, edge_scores, node_scores);
    if (!root) return err_set(CIRCD_ENOMEM, "%s: out of memory building the circuit JSON", path);
    struct atomic_file af;
    int rc = atomic_file_open(&af, path);
    if (!rc) {
        if (json_dumpf(root, af.fp, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9))) {
            atomic_file_abort(&af);
            rc = err_set(CIRCD_EIO, "%s: cannot write the circuit JSON", path);
        } else {
            rc = atomic_file_commit(&af);
        }
    }
    json_decref(root);
    return rc;
}

static int cfg_int(const char *path, json_t *cfg, const char *key, int want)
{
    json_t *v = json_object_get(cfg, key);
    if (!json_is_integer(v))
        return err_set(CIRCD_EINPUT, "%s: cfg.%s: missing or not an integer, expected %d", path, key, want);
    if (json_integer_value(v) != want)
        return err_set(CIRCD_EINPUT, "%s: cfg.%s: found %lld, expected %d (the model's)", path, key,
                       (long long)json_integer_value(v), want);
    return CIRCD_OK;
}

/* {"in_graph": bool, "score": number?}; *score untouched when absent. */
static int read_entry(const char *path, const char *section, const char *name, json_t *e, int *in_graph,
                      double *score, int *has_score)
{
    json_t *ig = json_object_get(e, "in_graph"), *s = json_object_get(e, "score");
    if (!json_is_object(e)) return err_set(CIRCD_EINPUT, "%s: %s.\"%s\": expected an object", path, section, name);
    if (!json_is_boolean(ig))
        return err_set(CIRCD_EINPUT, "%s: %s.\"%s\".in_graph: missing or not true/false", path, section, name);
    *in_graph = json_is_true(ig);
    *has_score = 0;
    if (s && !json_is_null(s)) {
        if (!json_is_number(s))
            return err_set(CIRCD_EINPUT, "%s: %s.\"%s\".score: expected a number", path, section, name);
        *score = json_number_value(s);
        *has_score = 1;
    }
    return CIRCD_OK;
}

static int read_root(const char *path, json_t *root, struct circuit *c, double *edge_scores, double *node_scores,
                     int *has_node_scores)
{
    const struct circuit_graph *g = c->g;
    json_t *cfg = json_object_get(root, "cfg"), *nodes = json_object_get(root, "nodes");
    json_t *edges = json_object_get(root, "edges");
    if (!json_is_object(root)) return err_set(CIRCD_EINPUT, "%s: expected a JSON object at the top", path);
    if (!json_is_object(cfg)) return err_set(CIRCD_EINPUT, "%s: cfg: missing or not an object", path);
    if (!json_is_object(nodes)) return err_set(CIRCD_EINPUT, "%s: nodes: missing or not an object", path);
    if (!json_is_object(edges)) return err_set(CIRCD_EINPUT, "%s: edges: missing or not an object", path);
    int rc = cfg_int(path, cfg, "n_layers", g->n_layers);
    if (!rc) rc = cfg_int(path, cfg, "n_heads", g->n_heads);
    if (rc) return rc;
    json_t *par = json_object_get(cfg, "parallel_attn_mlp");
    if (json_is_true(par))
        return err_set(CIRCD_EINPUT, "%s: cfg.parallel_attn_mlp: true, but Llama runs attention before the MLP", path);
    circuit_set_empty(c);
    if (edge_scores) memset(edge_scores, 0, (size_t)g->n_up * g->n_down * sizeof *edge_scores);
    if (node_scores)
        for (int u = 0; u < g->n_up; u++) node_scores[u] = NAN;
    int any_node_score = 0;
    const char *key;
    json_t *value;
    json_object_foreach(nodes, key, value) {
        int in_graph, has;
        double score = NAN;
        if ((rc = read_entry(path, "nodes", key, value, &in_graph, &score, &has))) return rc;
        if (strcmp(key, "logits") == 0) continue;
        int u = graph_parse_up(g, key);
        if (u < 0)
            return err_set(CIRCD_EINPUT, "%s: nodes.\"%s\": not a node of this model (expected input, aL.hH or mL "
                           "with L < %d, H < %d, or logits)", path, key, g->n_layers, g->n_heads);
        c->nodes[u] = (unsigned char)in_graph;
        any_node_score |= has;
        if (node_scores && has) node_scores[u] = score;
    }
    json_object_foreach(edges, key, value) {
        int in_graph, has, u, d;
        double score = 0;
        if ((rc = read_entry(path, "edges", key, value, &in_graph, &score, &has))) return rc;
        if (graph_parse_edge(g, key, &u, &d))
            return err_set(CIRCD_EINPUT, "%s: edges.\"%s\": not an edge of this model (expected PARENT->CHILD such as "
                           "\"a0.h1->a2.h3<q>\" or \"m0->logits\", the parent computed before the child)", path, key);
        size_t i = graph_edge_index(g, u, d);
        c->edges[i] = (unsigned char)in_graph;
        if (edge_scores) edge_scores[i] = score;
    }
    if (has_node_scores) *has_node_scores = any_node_score;
    return CIRCD_OK;
}

int circuit_json_read(const char *path, struct circuit *c, double *edge_scores, double *node_scores,
                      int *has_node_scores)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (jerr.line < 0) return err_set(CIRCD_EIO, "%s: %s", path, jerr.text);
        return err_set(CIRCD_EINPUT, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
    }
    int rc = read_root(path, root, c, edge_scores, node_scores, has_node_scores);
    json_decref(root);
    return rc;
}

int circuit_json_parse(const char *data, size_t size, const char *name, struct circuit *c, double *edge_scores,
                       double *node_scores, int *has_node_scores)
{
    json_error_t jerr;
    json_t *root = json_loadb(data, size, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) return err_set(CIRCD_EINPUT, "%s:%d:%d: %s", name, jerr.line, jerr.column, jerr.text);
    int rc = read_root(name, root, c, edge_scores, node_scores, has_node_scores);
    json_decref(root);
    return rc;
}
