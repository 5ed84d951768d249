/* bench_atp.c — `circd bench --atp`: what circuit discovery costs in units of one forward pass of the same batch,
 * measured in the same run: node attribution patching over every head and MLP (target <= 3.5 forwards: one corrupt
 * forward, one clean forward, one backward without parameter gradients), exact activation patching of every node
 * (n_nodes + 2 forwards, for comparison), edge AtP (EAP) and EAP-IG over MIB's graph, and the AtP* variants. Random weights and tokens: the cost does
 * not depend on what the model learned. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "circuits/atp_star.h"
#include "circuits/edges.h"
#include "circuits/nodes.h"
#include "util/error.h"

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* A method under measurement: one call on the batch. */
struct atp_method {
    const char *name;
    int (*run)(struct llama_model *m, const struct pair_batch *pb, void *state);
    void *state;
};

static int forward_only(struct llama_model *m, const struct pair_batch *pb, void *state)
{
    (void)state;
    return model_forward(m, pb->clean, NULL, pb->B, pb->T);
}

static int node_atp(struct llama_model *m, const struct pair_batch *pb, void *state)
{
    return atp_nodes_batch(m, pb, state);
}

static int node_exact(struct llama_model *m, const struct pair_batch *pb, void *state)
{
    return exact_patch_nodes_batch(m, pb, state);
}

static int edge_eap(struct llama_model *m, const struct pair_batch *pb, void *state)
{
    return eap_edges_batch(m, pb, 0, state);
}

static int edge_eap_ig5(struct llama_model *m, const struct pair_batch *pb, void *state)
{
    return eap_edges_batch(m, pb, 5, state);
}

static int atp_star(struct llama_model *m, const struct pair_batch *pb, void *state)
{
    return atp_star_batch(m, pb, state);
}

/* Mean seconds per call over at least min_seconds (and 2 calls), after one warm-up call. */
static int time_method(const struct atp_method *am, struct llama_model *m, const struct pair_batch *pb,
                       double min_seconds, double *per_call)
{
    int rc = am->run(m, pb, am->state);
    double start = seconds_now(), elapsed;
    int calls = 0;
    do {
        if (!rc) rc = am->run(m, pb, am->state);
        calls++;
        elapsed = seconds_now() - start;
    } while (!rc && (elapsed < min_seconds || calls < 2));
    *per_call = elapsed / calls;
    return rc;
}

static void random_pairs(struct pair_batch *pb, int vocab, int B, int T)
{
    struct rng r;
    rng_seed(&r, 17);
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) {
            int32_t tok = (int32_t)rng_below(&r, (uint64_t)vocab);
            pb->clean[b * T + t] = tok;
            pb->corrupt[b * T + t] = t == T / 2 ? (int32_t)((tok + 1) % vocab) : tok;
        }
        pb->pairs[b] = (struct arith_metric_pair){T, T - 1, 0, (int32_t)rng_below(&r, (uint64_t)vocab), 0};
        pb->pairs[b].cf_id = (pb->pairs[b].clean_id + 1) % vocab;
    }
    pb->B = B;
    pb->T = T;
}

int bench_atp(const struct bench_atp_case *cases, int n_cases, double min_seconds, int json)
{
    json_t *root = json ? json_object() : NULL;
    int rc = CIRCD_OK;
    if (!json)
        printf("%-7s %6s %-30s %10s %14s\n", "config", "nodes", "method", "ms/batch", "forward units");
    for (int c = 0; c < n_cases && !rc; c++) {
        const struct bench_atp_case *bc = &cases[c];
        struct llama_model m;
        struct pair_batch pb;
        struct node_scores scores;
        if ((rc = model_create(&m, &bc->config))) break;
        model_init_random(&m, 4321);
        if ((rc = pair_batch_alloc(&pb, bc->B, bc->T))) { model_free(&m); break; }
        random_pairs(&pb, bc->config.vocab_size, bc->B, bc->T);
        struct circuit_graph g;
        struct edge_scores edges;
        struct atp_star_scores qk, drop;
        struct atp_star_options qk_options = {1, 1, 0}, drop_options = {0, 0, 1};
        memset(&g, 0, sizeof g);
        memset(&edges, 0, sizeof edges);
        memset(&qk, 0, sizeof qk);
        memset(&drop, 0, sizeof drop);
        if (!(rc = node_scores_init(&scores, &bc->config)) && !(rc = graph_init(&g, &bc->config)) &&
            !(rc = edge_scores_init(&edges, &g)) && !(rc = atp_star_scores_init(&qk, &bc->config, &qk_options)))
            rc = atp_star_scores_init(&drop, &bc->config, &drop_options);
        const struct atp_method methods[] = {
            {"forward (reference)", forward_only, NULL},
            {"node AtP (heads + MLPs)", node_atp, &scores},
            {"exact patching (every node)", node_exact, &scores},
            {"edge AtP (EAP)", edge_eap, &edges},
            {"EAP-IG, 5 steps", edge_eap_ig5, &edges},
            {"AtP* q/k/v nodes + QK fix", atp_star, &qk},
            {"AtP* GradDrop", atp_star, &drop},
        };
        json_t *rows = json ? json_object() : NULL;
        double forward = 0;
        for (size_t i = 0; i < sizeof methods / sizeof methods[0] && !rc; i++) {
            double t;
            /* Exact patching is n_nodes forwards by construction: a shorter measurement suffices. */
            if ((rc = time_method(&methods[i], &m, &pb, i == 2 ? min_seconds / 4 : min_seconds, &t))) break;
            if (i == 0) forward = t;
            if (json) json_object_set_new(rows, methods[i].name, json_pack("{s:f, s:f}", "ms", t * 1e3, "forward_units",
                                                                            t / forward));
            else printf("%-7s %6d %-30s %10.2f %14.2f\n", bc->name, scores.n_nodes, methods[i].name, t * 1e3,
                        t / forward);
            fflush(stdout);
        }
        if (json) json_object_set_new(root, bc->name, rows);
        atp_star_scores_free(&qk);
        atp_star_scores_free(&drop);
        edge_scores_free(&edges);
        graph_free(&g);
        node_scores_free(&scores);
        pair_batch_free(&pb);
        model_free(&m);
    }
    if (json && !rc) {
        char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (text) printf("%s\n", text);
        free(text);
    }
    json_decref(root);
    return rc;
}
