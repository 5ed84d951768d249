/* test_circuit_json.c — MIB circuit JSON: a write/read round trip keeps every edge's score and membership and the
 * node scores; the file has MIB's keys and names; every malformed case is refused naming the file and field. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "circuits/circuit_json.h"
#include "model/config.h"
#include "testing.h"
#include "util/error.h"

static struct circuit_graph graph;

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

static void test_round_trip(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/circuit.json", testing_tmpdir());
    size_t n = (size_t)graph.n_up * graph.n_down;
    double *scores = calloc(n, sizeof *scores), *back = calloc(n, sizeof *back);
    double node_scores[64], node_back[64];
    struct circuit c, r;
    CHECK(circuit_alloc(&c, &graph) == 0 && circuit_alloc(&r, &graph) == 0);
    for (size_t i = 0; i < n; i++) scores[i] = graph.real[i] ? sin((double)i) * 1e-3 : 0;
    for (int u = 0; u < graph.n_up; u++) node_scores[u] = u ? cos(u) : NAN;
    circuit_top_edges(&c, scores, graph.n_edges / 5, 1);
    CHECK(circuit_edge_count(&c) > 0);
    CHECK(circuit_json_write(path, &c, 16, scores, node_scores) == 0);
    int has = 0;
    CHECK(circuit_json_read(path, &r, back, node_back, &has) == 0);
    CHECK(has == 1);
    CHECK(memcmp(c.edges, r.edges, n) == 0);
    CHECK(memcmp(c.nodes, r.nodes, (size_t)graph.n_up) == 0);
    double worst = 0;
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(back[i] - scores[i]));
    CHECK(worst < 1e-12); /* 9 significant digits of numbers below 1e-3 */
    CHECK(isnan(node_back[0]));
    for (int u = 1; u < graph.n_up; u++) CHECK_NEAR(node_back[u], node_scores[u], 1e-8);
    /* MIB's layout and names. */
    size_t len;
    char *text = testing_read_file(path, &len);
    CHECK(text && strstr(text, "\"cfg\":{\"n_layers\":2,\"n_heads\":3,\"d_model\":16,\"parallel_attn_mlp\":false"));
    CHECK(text && strstr(text, "\"input->a0.h0<q>\":{\"score\":"));
    CHECK(text && strstr(text, "\"m1->logits\":"));
    CHECK(text && strstr(text, "\"logits\":{\"in_graph\":true}"));
    free(text);
    /* Without scores: edges score 0, nodes without "score". */
    CHECK(circuit_json_write(path, &c, 16, NULL, NULL) == 0);
    CHECK(circuit_json_read(path, &r, back, node_back, &has) == 0);
    CHECK(has == 0 && isnan(node_back[1]) && back[graph_edge_index(&graph, 0, graph_down_logits(&graph))] == 0);
    CHECK(memcmp(c.edges, r.edges, n) == 0);
    circuit_free(&c);
    circuit_free(&r);
    free(scores);
    free(back);
}

static void expect_error(const char *text, int code, const char *want)
{
    char path[512];
    snprintf(path, sizeof path, "%s/bad.json", testing_tmpdir());
    write_text(path, text);
    struct circuit c;
    CHECK(circuit_alloc(&c, &graph) == 0);
    int rc = circuit_json_read(path, &c, NULL, NULL, NULL);
    CHECK(rc == code);
    CHECK(strstr(err_msg(), "bad.json") != NULL);
    if (!strstr(err_msg(), want)) fprintf(stderr, "message \"%s\" lacks \"%s\"\n", err_msg(), want);
    CHECK(strstr(err_msg(), want) != NULL);
    circuit_free(&c);
}

static void test_errors(void)
{
    const char *cfg = "\"cfg\":{\"n_layers\":2,\"n_heads\":3,\"d_model\":16}";
    char text[1024];
    expect_error("{\"cfg\":{\"n_layers\":2,\"n_heads\":4},\"nodes\":{},\"edges\":{}}", CIRCD_EINPUT,
                 "cfg.n_heads: found 4, expected 3");
    expect_error("{\"cfg\":{\"n_heads\":3},\"nodes\":{},\"edges\":{}}", CIRCD_EINPUT, "cfg.n_layers: missing");
    expect_error("{\"nodes\":{},\"edges\":{}}", CIRCD_EINPUT, "cfg: missing");
    snprintf(text, sizeof text, "{%s,\"edges\":{}}", cfg);
    expect_error(text, CIRCD_EINPUT, "nodes: missing");
    snprintf(text, sizeof text, "{%s,\"nodes\":{\"a0.h3\":{\"in_graph\":true}},\"edges\":{}}", cfg);
    expect_error(text, CIRCD_EINPUT, "nodes.\"a0.h3\": not a node");
    snprintf(text, sizeof text, "{%s,\"nodes\":{\"m0\":{\"in_graph\":1}},\"edges\":{}}", cfg);
    expect_error(text, CIRCD_EINPUT, "nodes.\"m0\".in_graph: missing or not true/false");
    snprintf(text, sizeof text, "{%s,\"nodes\":{},\"edges\":{\"a1.h0->a0.h1<q>\":{\"in_graph\":true}}}", cfg);
    expect_error(text, CIRCD_EINPUT, "edges.\"a1.h0->a0.h1<q>\": not an edge");
    snprintf(text, sizeof text, "{%s,\"nodes\":{},\"edges\":{\"input->m0\":{\"in_graph\":true,\"score\":\"x\"}}}",
             cfg);
    expect_error(text, CIRCD_EINPUT, "edges.\"input->m0\".score: expected a number");
    snprintf(text, sizeof text, "{%s,\n\"nodes\":{},\n\"edges\":{\"input->m0\":}}", cfg);
    expect_error(text, CIRCD_EINPUT, "bad.json:3:");
    snprintf(text, sizeof text, "{%s,\"nodes\":{\"m0\":{\"in_graph\":true},\"m0\":{\"in_graph\":false}},\"edges\":{}}",
             cfg);
    expect_error(text, CIRCD_EINPUT, "duplicate");
    struct circuit c;
    CHECK(circuit_alloc(&c, &graph) == 0);
    CHECK(circuit_json_read("/nonexistent/circuit.json", &c, NULL, NULL, NULL) == CIRCD_EIO);
    circuit_free(&c);
    /* A partial file: what it names is read, the rest is out of the circuit. */
    snprintf(text, sizeof text, "{%s,\"nodes\":{\"m1\":{\"in_graph\":true,\"score\":2.5}},"
             "\"edges\":{\"m1->logits\":{\"in_graph\":true,\"score\":-1.5}}}", cfg);
    char path[512];
    snprintf(path, sizeof path, "%s/partial.json", testing_tmpdir());
    write_text(path, text);
    double scores[4096], nodes[64];
    CHECK((size_t)graph.n_up * graph.n_down <= 4096);
    CHECK(circuit_alloc(&c, &graph) == 0);
    CHECK(circuit_json_read(path, &c, scores, nodes, NULL) == 0);
    int m1 = graph_up_mlp(&graph, 1);
    CHECK(circuit_edge_count(&c) == 1 && circuit_node_count(&c) == 1 && c.nodes[m1]);
    CHECK(scores[graph_edge_index(&graph, m1, graph_down_logits(&graph))] == -1.5 && nodes[m1] == 2.5);
    circuit_free(&c);
}

int main(void)
{
    struct llama_config cfg = {0};
    cfg.n_layers = 2;
    cfg.n_heads = 3;
    cfg.n_kv_heads = 1;
    CHECK(graph_init(&graph, &cfg) == 0);
    test_round_trip();
    test_errors();
    graph_free(&graph);
    return testing_finish();
}
