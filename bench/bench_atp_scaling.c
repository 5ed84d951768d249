/* bench_atp_scaling.c — `circd bench --atp-scaling` (run as `mpirun -np 2 circd bench --atp-scaling` with
 * OMP_NUM_THREADS=1): the throughput of sharded attribution patching (stages/discovery.h's node AtP and EAP, the code
 * the atp stages run) over one set of arithmetic metric pairs, first on one rank (rank 0 alone on MPI_COMM_SELF while
 * the others sleep) and then sharded over every rank, with the parallel efficiency T1 / (N * TN) (target >= 90% on
 * 2 cores); each time is the fastest of 3 alternating rounds (the machine may be shared). The sharded sums are
 * checked against the one-rank sums (relative difference printed). Random weights: the cost does not depend on what
 * the model learned; the pairs are real prompts of the digit tokenizer. */
#include <jansson.h>
#include <math.h>
#include <mpi.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "data/arith_splits.h"
#include "sched/reduce.h"
#include "stages/discovery.h"
#include "util/error.h"
#include "util/rng.h"

#define ROUNDS 3 /* alternating one-rank and all-rank measurements; the fastest of each */

/* The AtP set: count distinct 2-digit problems with random partners, tokenized into batches of B pairs. */
static int build_pairs(struct tokenizer *tok, int count, int B, int max_seq, struct pair_set *set)
{
    struct arith_gen_options o;
    arith_gen_options_default(&o);
    o.min_digits = o.max_digits = 2;
    o.cf_kinds = 1u << ARITH_CF_RANDOM;
    const char *texts[64];
    size_t n = 0;
    for (size_t i = 0; i < arith_template_count(&o) && n < 64; i++) texts[n++] = arith_template_text(&o, i);
    int rc = tokenizer_arith_create(tok, TOKENIZER_DIGITS, texts, n);
    if (rc) return rc;
    struct arith_dataset d;
    struct arith_format f;
    struct rng r;
    memset(&d, 0, sizeof d);
    rng_seed(&r, 2024);
    arith_format_default(&f);
    rc = arith_generate_distinct(&o, &r, (size_t)count, NULL, &d);
    if (!rc) rc = pair_set_build(set, tok, &f, &d, 0, ARITH_CF_RANDOM, B, max_seq);
    arith_dataset_free(&d);
    if (rc) tokenizer_free(tok);
    return rc;
}

/* One pass of a method over the set on comm: node AtP (edges NULL) or EAP; sums left in *nodes / *edges. */
static int pass(struct llama_model *m, const struct pair_set *set, MPI_Comm comm, struct node_scores *nodes,
                struct edge_scores *edges)
{
    if (edges) {
        size_t n = (size_t)edges->g->n_up * edges->g->n_down;
        memset(edges->signed_sum, 0, n * sizeof(double));
        memset(edges->abs_sum, 0, n * sizeof(double));
        edges->metric_clean_sum = edges->metric_corrupt_sum = 0;
        edges->pairs = 0;
        return discovery_edge_scores(m, set, 0, comm, edges);
    }
    memset(nodes->signed_sum, 0, (size_t)nodes->n_nodes * sizeof(double));
    memset(nodes->abs_sum, 0, (size_t)nodes->n_nodes * sizeof(double));
    nodes->metric_clean_sum = nodes->metric_corrupt_sum = 0;
    nodes->pairs = 0;
    return discovery_node_scores(m, set, 0, comm, nodes);
}

/* Seconds per pass on comm after one warm-up pass: `reps` passes (every rank of comm the same number). */
static int time_passes(struct llama_model *m, const struct pair_set *set, MPI_Comm comm, int reps,
                       struct node_scores *nodes, struct edge_scores *edges, double *per_pass)
{
    int rc = pass(m, set, comm, nodes, edges);
    MPI_Barrier(comm);
    double start = MPI_Wtime();
    for (int i = 0; i < reps && !rc; i++) rc = pass(m, set, comm, nodes, edges);
    MPI_Barrier(comm);
    *per_pass = (MPI_Wtime() - start) / reps;
    return rc;
}

/* Every rank but 0 waits without spinning (Open MPI's blocking barrier polls and would take a core). */
static void idle_until_rank0(int rank)
{
    MPI_Request req;
    MPI_Ibarrier(MPI_COMM_WORLD, &req);
    if (rank == 0) { MPI_Wait(&req, MPI_STATUS_IGNORE); return; }
    int done = 0;
    struct timespec nap = {0, 1000000};
    while (!done) {
        MPI_Test(&req, &done, MPI_STATUS_IGNORE);
        if (!done) nanosleep(&nap, NULL);
    }
}

static double max_relative_difference(const double *a, const double *b, size_t n)
{
    double worst = 0, scale = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(b[i]));
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(a[i] - b[i]) / (scale > 0 ? scale : 1));
    return worst;
}

int bench_atp_scaling(const struct bench_atp_case *bc, int n_batches, double min_seconds, int json)
{
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    struct tokenizer tok;
    struct pair_set set;
    struct llama_model m;
    struct circuit_graph g;
    struct node_scores nodes, nodes1;
    struct edge_scores edges, edges1;
    memset(&set, 0, sizeof set);
    memset(&g, 0, sizeof g);
    memset(&nodes, 0, sizeof nodes);
    memset(&nodes1, 0, sizeof nodes1);
    memset(&edges, 0, sizeof edges);
    memset(&edges1, 0, sizeof edges1);
    int rc = build_pairs(&tok, bc->B * n_batches, bc->B, bc->config.max_seq, &set), have_model = 0;
    struct llama_config cfg = bc->config;
    if (!rc) {
        cfg.vocab_size = tok.vocab_size;
        rc = model_create(&m, &cfg);
        have_model = !rc;
    }
    if (!rc) {
        model_init_random(&m, 4321);
        rc = graph_init(&g, &cfg);
    }
    if (!rc) rc = node_scores_init(&nodes, &cfg);
    if (!rc) rc = node_scores_init(&nodes1, &cfg);
    if (!rc) rc = edge_scores_init(&edges, &g);
    if (!rc) rc = edge_scores_init(&edges1, &g);
    rc = reduce_agree(rc, MPI_COMM_WORLD);
    static const char *const names[2] = {"node AtP", "EAP (edges)"};
    double t1[2] = {0}, tn[2] = {0}, diff[2] = {0};
    if (!rc && rank == 0 && !json)
        printf("AtP scaling: %s config (d_model %d, %d layers), %zu pairs in %d batches of <= %d, %d OpenMP "
               "thread(s) per rank\n%-12s %6s %12s %12s %11s %14s\n", bc->name, cfg.d_model, cfg.n_layers, set.pairs,
               set.n_batches, bc->B, omp_get_max_threads(), "method", "ranks", "s/pass", "pairs/s", "efficiency",
               "max rel diff");
    for (int k = 0; k < 2 && !rc; k++) {
        struct node_scores *n1 = k ? NULL : &nodes1, *nn = k ? NULL : &nodes;
        struct edge_scores *e1 = k ? &edges1 : NULL, *en = k ? &edges : NULL;
        /* Passes to fill a round: min_seconds / ROUNDS on one rank (the first pass measures one). */
        int reps = 1;
        if (rank == 0) {
            double start = MPI_Wtime();
            rc = pass(&m, &set, MPI_COMM_SELF, n1, e1);
            double once = MPI_Wtime() - start;
            reps = once > 0 ? (int)ceil(min_seconds / ROUNDS / once) : 1;
            if (reps < 2) reps = 2;
        }
        MPI_Bcast(&reps, 1, MPI_INT, 0, MPI_COMM_WORLD);
        /* Rounds alternate one rank and all ranks, so that load from elsewhere hits both alike; the fastest round
         * of each counts. */
        t1[k] = tn[k] = INFINITY;
        for (int round = 0; round < ROUNDS && !rc; round++) {
            double t = INFINITY;
            if (rank == 0 && !rc) rc = time_passes(&m, &set, MPI_COMM_SELF, reps, n1, e1, &t); /* rank 0 alone */
            t1[k] = fmin(t1[k], t);
            idle_until_rank0(rank);
            if ((rc = reduce_agree(rc, MPI_COMM_WORLD)) || size == 1) continue;
            /* N times as many passes sharded: each is N times shorter if it scales. */
            rc = time_passes(&m, &set, MPI_COMM_WORLD, reps * size, nn, en, &t);
            tn[k] = fmin(tn[k], t);
        }
        if (!rc && rank == 0 && size > 1)
            diff[k] = k ? max_relative_difference(edges.signed_sum, edges1.signed_sum, (size_t)g.n_up * g.n_down)
                        : max_relative_difference(nodes.signed_sum, nodes1.signed_sum, (size_t)nodes.n_nodes);
    }
    if (!rc && rank == 0) {
        json_t *root = json ? json_object() : NULL;
        for (int k = 0; k < 2; k++) {
            double rate1 = (double)set.pairs / t1[k], rate_n = size > 1 ? (double)set.pairs / tn[k] : NAN;
            double efficiency = size > 1 ? t1[k] / (size * tn[k]) : NAN;
            if (json) {
                json_object_set_new(root, names[k], json_pack("{s:i, s:f, s:f, s:f, s:f, s:f}", "ranks", size,
                                                              "pairs_per_s_1", rate1, "pairs_per_s_n",
                                                              size > 1 ? rate_n : 0.0, "efficiency",
                                                              size > 1 ? efficiency : 0.0, "seconds_1", t1[k],
                                                              "max_relative_difference", diff[k]));
                continue;
            }
            printf("%-12s %6d %12.4f %12.1f %11s %14s\n", names[k], 1, t1[k], rate1, "", "");
            if (size > 1)
                printf("%-12s %6d %12.4f %12.1f %10.1f%% %14.2e\n", names[k], size, tn[k], rate_n, 100 * efficiency,
                       diff[k]);
        }
        if (json) {
            json_object_set_new(root, "pairs", json_integer((json_int_t)set.pairs));
            char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
            if (text) printf("%s\n", text);
            free(text);
            json_decref(root);
        } else if (size == 1) {
            printf("(the scaling part needs 2 ranks: OMP_NUM_THREADS=1 mpirun -np 2 circd bench --atp-scaling)\n");
        } else {
            printf("(efficiency = T1 / (%d T%d); target >= 90%%. max rel diff: the sharded sums against one rank's)\n",
                   size, size);
        }
        fflush(stdout);
    }
    edge_scores_free(&edges);
    edge_scores_free(&edges1);
    node_scores_free(&nodes);
    node_scores_free(&nodes1);
    graph_free(&g);
    if (have_model) model_free(&m);
    if (set.batches) {
        pair_set_free(&set);
        tokenizer_free(&tok);
    }
    return rc;
}
