/* fuzz_circuit_json.c — libFuzzer harness for MIB circuit JSON (circuits/circuit_json.h) on a 2-layer, 4-head graph (the smoke teacher's):
 * any input is rejected with CIRCD_EINPUT and a message, or yields a circuit whose in-graph edges are real edges of
 * the graph. */
#include <stdint.h>
#include <stdlib.h>

#include "circuits/circuit_json.h"
#include "model/config.h"
#include "util/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct circuit_graph g;
    static int ready;
    if (!ready) {
        struct llama_config cfg = {0};
        cfg.n_layers = 2;
        cfg.n_heads = 4;
        cfg.n_kv_heads = 1;
        if (graph_init(&g, &cfg)) abort();
        ready = 1;
    }
    struct circuit c;
    if (circuit_alloc(&c, &g)) abort();
    double scores[512], nodes[16];
    if ((size_t)g.n_up * g.n_down > sizeof scores / sizeof *scores) abort();
    int has = 0;
    int rc = circuit_json_parse((const char *)data, size, "fuzz.json", &c, scores, nodes, &has);
    if (rc) {
        if (rc != CIRCD_EINPUT || !err_msg()[0]) abort();
    } else {
        for (size_t i = 0; i < (size_t)g.n_up * g.n_down; i++)
            if (c.edges[i] && !g.real[i]) abort();
    }
    circuit_free(&c);
    return 0;
}
