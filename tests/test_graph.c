/* test_graph.c — the circuit graph: sizes and edge counts against closed forms, index <-> name round trips for every
 * node, input and edge (the EAP-IG library's names and indices), rejected names, top-n selection and pruning on
 * hand-built score matrices. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "circuits/graph.h"
#include "model/config.h"
#include "testing.h"

static struct llama_config config(int L, int H, int KV)
{
    struct llama_config c = {0};
    c.n_layers = L;
    c.n_heads = H;
    c.n_kv_heads = KV;
    return c;
}

static void test_sizes(void)
{
    for (int L = 1; L <= 4; L++)
        for (int H = 1; H <= 5; H++) {
            struct llama_config cfg = config(L, H, 1);
            struct circuit_graph g;
            CHECK(graph_init(&g, &cfg) == 0);
            CHECK(g.n_up == 1 + L * (H + 1));
            CHECK(g.n_down == L * (3 * H + 1) + 1);
            /* Closed form: a head input of layer l sees 1 + l(H+1) nodes, an MLP input 1 + l(H+1) + H, the logits
             * all n_up. */
            size_t want = (size_t)g.n_up;
            for (int l = 0; l < L; l++) want += (size_t)3 * H * (1 + l * (H + 1)) + (size_t)(1 + l * (H + 1) + H);
            CHECK(g.n_edges == want);
            size_t count = 0;
            for (size_t i = 0; i < (size_t)g.n_up * g.n_down; i++) count += g.real[i];
            CHECK(count == want);
            graph_free(&g);
        }
    /* MIB's published count for GPT-2 small (12 layers, 12 heads): 32491 edges. */
    struct llama_config gpt2 = config(12, 12, 12);
    struct circuit_graph g;
    CHECK(graph_init(&g, &gpt2) == 0);
    CHECK(g.n_edges == 32491);
    graph_free(&g);
}

static void test_names(void)
{
    struct llama_config cfg = config(3, 4, 2);
    struct circuit_graph g;
    CHECK(graph_init(&g, &cfg) == 0);
    char buf[64], hook[96];
    for (int u = 0; u < g.n_up; u++) CHECK(graph_parse_up(&g, graph_up_name(&g, u, buf, sizeof buf)) == u);
    for (int d = 0; d < g.n_down; d++) CHECK(graph_parse_down(&g, graph_down_name(&g, d, buf, sizeof buf)) == d);
    int edges = 0, bad = 0;
    for (int u = 0; u < g.n_up; u++)
        for (int d = 0; d < g.n_down; d++) {
            if (!g.real[graph_edge_index(&g, u, d)]) continue;
            int pu, pd;
            edges++;
            bad += graph_parse_edge(&g, graph_edge_name(&g, u, d, buf, sizeof buf), &pu, &pd) != 0 || pu != u || pd != d;
        }
    CHECK(edges == (int)g.n_edges);
    CHECK(bad == 0);
    CHECK(strcmp(graph_up_name(&g, graph_up_head(&g, 2, 3), buf, sizeof buf), "a2.h3") == 0);
    CHECK(strcmp(graph_down_name(&g, graph_down_head(&g, 1, 2, GRAPH_K), buf, sizeof buf), "a1.h2<k>") == 0);
    CHECK(strcmp(graph_edge_name(&g, 0, graph_down_logits(&g), buf, sizeof buf), "input->logits") == 0);
    CHECK(strcmp(graph_edge_name(&g, graph_up_mlp(&g, 0), graph_down_head(&g, 1, 0, GRAPH_V), buf, sizeof buf),
                 "m0->a1.h0<v>") == 0);
    CHECK(strcmp(graph_up_hook(&g, graph_up_head(&g, 1, 2), hook, sizeof hook), "blocks.1.attn.hook_result[2]") == 0);
    CHECK(strcmp(graph_down_hook(&g, graph_down_head(&g, 2, 1, GRAPH_Q), hook, sizeof hook),
                 "blocks.2.hook_q_input[1]") == 0);
    CHECK(strcmp(graph_down_hook(&g, graph_down_logits(&g), hook, sizeof hook), "blocks.2.hook_resid_post") == 0);
    /* The EAP-IG library's indices. */
    CHECK(graph_parse_up(&g, "m1") == 1 + 1 * 5 + 4);
    CHECK(graph_parse_down(&g, "a1.h2<v>") == 1 * 13 + 2 * 4 + 2);
    CHECK(graph_parse_down(&g, "logits") == g.n_down - 1);
    CHECK(graph_down_owner(&g, graph_down_head(&g, 1, 2, GRAPH_V)) == graph_up_head(&g, 1, 2));
    CHECK(graph_down_owner(&g, graph_down_logits(&g)) == -1);
    /* Rejected: out of range, malformed, not edges (a head of layer 1 into layer 1's heads; MLP 1 into layer 0). */
    const char *bad_up[] = {"a3.h0", "a0.h4", "m3", "a0h1", "a-1.h0", "logits", "input ", "", "a0.h1<q>"};
    for (size_t i = 0; i < sizeof bad_up / sizeof *bad_up; i++) CHECK(graph_parse_up(&g, bad_up[i]) < 0);
    const char *bad_down[] = {"a0.h0", "a0.h0<x>", "a0.h0<q>x", "input", "m7", "logits2"};
    for (size_t i = 0; i < sizeof bad_down / sizeof *bad_down; i++) CHECK(graph_parse_down(&g, bad_down[i]) < 0);
    int u, d;
    CHECK(graph_parse_edge(&g, "a1.h0->a1.h1<q>", &u, &d) < 0);
    CHECK(graph_parse_edge(&g, "m1->a0.h1<k>", &u, &d) < 0);
    CHECK(graph_parse_edge(&g, "a1.h0->m1", &u, &d) == 0);
    CHECK(graph_parse_edge(&g, "m1->m1", &u, &d) < 0);
    CHECK(graph_parse_edge(&g, "input-logits", &u, &d) < 0);
    graph_free(&g);
}

static void test_top_and_prune(void)
{
    struct llama_config cfg = config(2, 2, 1);
    struct circuit_graph g;
    struct circuit c;
    CHECK(graph_init(&g, &cfg) == 0);
    CHECK(circuit_alloc(&c, &g) == 0);
    size_t n = (size_t)g.n_up * g.n_down;
    double scores[1024];
    CHECK(n <= 1024);
    for (size_t i = 0; i < n; i++) scores[i] = 0.001 * (double)(i % 7);
    int h0 = graph_up_head(&g, 0, 1), m1 = graph_up_mlp(&g, 1), logits = graph_down_logits(&g);
    /* A connected path input -> a0.h1<q> -> ... a0.h1 -> m1 -> logits, strongest, plus one negative edge. */
    scores[graph_edge_index(&g, 0, graph_down_head(&g, 0, 1, GRAPH_Q))] = 5;
    scores[graph_edge_index(&g, h0, graph_down_mlp(&g, 1))] = 4;
    scores[graph_edge_index(&g, m1, logits)] = 3;
    scores[graph_edge_index(&g, 0, graph_down_mlp(&g, 1))] = -10;
    circuit_top_edges(&c, scores, 3, 0);
    CHECK(circuit_edge_count(&c) == 3);
    CHECK(circuit_node_count(&c) == 3); /* input, a0.h1, m1 */
    CHECK(c.nodes[0] && c.nodes[h0] && c.nodes[m1]);
    /* Absolute: the -10 edge comes first and keeps m1 fed; the top 3 then are -10, 5, 4: m1 has no outgoing edge,
     * so pruning leaves nothing. */
    circuit_top_edges(&c, scores, 3, 1);
    CHECK(circuit_edge_count(&c) == 0);
    circuit_top_edges(&c, scores, 4, 1);
    CHECK(circuit_edge_count(&c) == 4);
    /* A dangling edge (a1.h0 gets no input) is pruned away. */
    scores[graph_edge_index(&g, graph_up_head(&g, 1, 0), logits)] = 4.5;
    circuit_top_edges(&c, scores, 4, 0);
    CHECK(circuit_edge_count(&c) == 3);
    CHECK(!c.nodes[graph_up_head(&g, 1, 0)]);
    /* Node level: the top node and the input (NaN, unscored) with all their outgoing edges. */
    double node_scores[16];
    for (int u = 0; u < g.n_up; u++) node_scores[u] = u;
    node_scores[0] = NAN;
    node_scores[m1] = 100;
    circuit_top_nodes(&c, node_scores, 1, 1);
    CHECK(circuit_node_count(&c) == 2);
    CHECK(c.nodes[0] && c.nodes[m1]);
    CHECK(circuit_edge_count(&c) == 3); /* input -> m1, input -> logits, m1 -> logits */
    CHECK(c.edges[graph_edge_index(&g, 0, graph_down_mlp(&g, 1))] && c.edges[graph_edge_index(&g, m1, logits)]);
    CHECK(c.edges[graph_edge_index(&g, 0, logits)]);
    circuit_top_nodes(&c, node_scores, (size_t)g.n_up, 1);
    circuit_set_full(&c);
    size_t full = circuit_edge_count(&c);
    circuit_prune(&c);
    CHECK(full == g.n_edges && circuit_edge_count(&c) == g.n_edges);
    CHECK(circuit_node_count(&c) == g.n_up);
    circuit_free(&c);
    graph_free(&g);
}

int main(void)
{
    test_sizes();
    test_names();
    test_top_and_prune();
    return testing_finish();
}
