/* bench_pipeline.c — `circd bench --pipeline` (under mpirun -np S): the teacher's forward pipelined over the S ranks
 * (sched/pipeline.h) at M = 1, 2, 4, 8 micro-batches against one rank running model_forward alone on the same batch,
 * in tokens/s, and each rank's measured bubble (idle / wall inside pipeline_forward) against GPipe's ideal
 * (S - 1) / (M + S - 1). Random weights and tokens: the cost does not depend on what the model learned. Each figure
 * is the fastest of ROUNDS equal rounds, so that a neighbour's job on a shared machine does not decide it. */
#include <jansson.h>
#include <mpi.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "sched/pipeline.h"
#include "sched/reduce.h"
#include "util/error.h"
#include "util/rng.h"

#define ROUNDS 5

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* A barrier the waiting ranks sit in with short sleeps, so they leave rank 0's single-rank measurement its core. */
static void barrier_patiently(MPI_Comm comm)
{
    MPI_Request r;
    int done = 0;
    MPI_Ibarrier(comm, &r);
    MPI_Test(&r, &done, MPI_STATUS_IGNORE);
    while (!done) {
        struct timespec pause = {0, 200000};
        nanosleep(&pause, NULL);
        MPI_Test(&r, &done, MPI_STATUS_IGNORE);
    }
}

/* Rank 0 alone: seconds per model_forward of the batch after one warm-up, the fastest of ROUNDS rounds of at least
 * min_seconds / ROUNDS (and 2 forwards) each. */
static int time_single(struct llama_model *m, const int32_t *tokens, int B, int T, double min_seconds, double *per)
{
    int rc = model_forward(m, tokens, NULL, B, T);
    *per = 0;
    for (int round = 0; round < ROUNDS && !rc; round++) {
        int calls = 0;
        double start = seconds_now(), elapsed = 0;
        while (!rc && (elapsed < min_seconds / ROUNDS || calls < 2)) {
            rc = model_forward(m, tokens, NULL, B, T);
            calls++;
            elapsed = seconds_now() - start;
        }
        if (*per == 0 || elapsed / calls < *per) *per = elapsed / calls;
    }
    return rc;
}

struct pipeline_row {
    int M;
    double tokens_per_s, bubble_min, bubble_max, bubble_rank0, ideal;
};

/* ROUNDS rounds of `calls` pipelined forwards after one warm-up; rank 0 gets the fastest round's throughput and the
 * ranks' bubbles in that round. */
static int time_pipelined(struct pipeline *p, const int32_t *tokens, int B, int T, int M, int calls,
                          const struct pipeline_output *out, struct pipeline_row *row)
{
    int rc = pipeline_forward(p, tokens, B, T, M, out);
    memset(row, 0, sizeof *row);
    row->M = M;
    row->ideal = (double)(p->size - 1) / (M + p->size - 1);
    for (int round = 0; round < ROUNDS && !rc; round++) {
        memset(&p->stats, 0, sizeof p->stats);
        MPI_Barrier(p->comm);
        double start = seconds_now();
        for (int i = 0; i < calls && !rc; i++) rc = pipeline_forward(p, tokens, B, T, M, out);
        double rate = (double)calls * B * T / (seconds_now() - start);
        double bubble = p->stats.wall_s > 0 ? 1.0 - p->stats.compute_s / p->stats.wall_s : 0;
        double range[2] = {bubble, -bubble};
        MPI_Allreduce(MPI_IN_PLACE, range, 2, MPI_DOUBLE, MPI_MAX, p->comm);
        MPI_Bcast(&rate, 1, MPI_DOUBLE, 0, p->comm); /* rank 0's clock decides for every rank */
        if (rate > row->tokens_per_s) {
            row->tokens_per_s = rate;
            row->bubble_max = range[0];
            row->bubble_min = -range[1];
            row->bubble_rank0 = bubble;
        }
    }
    return rc;
}

int bench_pipeline(const struct llama_config *config, int B, int T, double min_seconds, int json)
{
    MPI_Comm comm = MPI_COMM_WORLD;
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    struct llama_model m;
    size_t N = (size_t)B * T;
    int rc = model_create(&m, config);
    int32_t *tokens = xmalloc(N * sizeof *tokens);
    float *logits = xmalloc(N * (size_t)config->vocab_size * sizeof *logits);
    if (!rc && (!tokens || !logits)) rc = CIRCD_ENOMEM;
    if ((rc = reduce_agree(rc, comm))) goto done;
    model_init_random(&m, 2024);
    struct rng r;
    rng_seed(&r, 7);
    for (size_t i = 0; i < N; i++) tokens[i] = (int32_t)rng_below(&r, (uint64_t)config->vocab_size);

    double single = 0; /* seconds per forward, one rank alone (the others wait without spinning) */
    if (rank == 0) rc = time_single(&m, tokens, B, T, min_seconds, &single);
    barrier_patiently(comm);
    if ((rc = reduce_agree(rc, comm))) goto done;
    MPI_Bcast(&single, 1, MPI_DOUBLE, 0, comm);
    int calls = (int)(min_seconds / ROUNDS / (single > 1e-6 ? single : 1e-6)); /* per round */
    if (calls < 2) calls = 2;

    struct pipeline p;
    if ((rc = pipeline_init(&p, &m, comm, 0))) goto done;
    int first, last;
    if (rank == 0 && !json) {
        printf("teacher: d_model %d, %d layers, %d heads (%d kv), d_ff %d, vocab %d; batch B %d x T %d; %d ranks, "
               "%d OpenMP thread(s) each; layers per stage:", config->d_model, config->n_layers, config->n_heads,
               config->n_kv_heads, config->d_ff, config->vocab_size, B, T, size, omp_get_max_threads());
        for (int s = 0; s < size; s++) {
            pipeline_split(config->n_layers, size, s, &first, &last);
            printf(" %d", last - first);
        }
        if (size == 1) printf("\n(one rank: the micro-batches run one after another; run under mpirun -np 2)");
        printf("\none rank, model_forward alone: %.0f tok/s (%.2f ms per batch); each figure the fastest of %d "
               "rounds\n", N / single, single * 1e3, ROUNDS);
        printf("%4s %14s %9s %11s %15s %12s\n", "M", "pipelined tok/s", "speedup", "bubble r0", "bubble min-max",
               "GPipe ideal");
    }
    json_t *root = json && rank == 0 ? json_pack("{s:i, s:i, s:i, s:f, s:[]}", "ranks", size, "B", B, "T", T,
                                                 "single_rank_tokens_per_s", N / single, "pipelined") : NULL;
    const int micro[] = {1, 2, 4, 8};
    struct pipeline_output out = {logits, NULL, NULL};
    for (size_t i = 0; i < sizeof micro / sizeof micro[0] && !rc; i++) {
        if (micro[i] > B) break;
        struct pipeline_row row;
        if ((rc = time_pipelined(&p, tokens, B, T, micro[i], calls, &out, &row))) break;
        if (rank != 0) continue;
        double speedup = row.tokens_per_s * single / N;
        if (root)
            json_array_append_new(json_object_get(root, "pipelined"),
                                  json_pack("{s:i, s:f, s:f, s:f, s:f, s:f, s:f}", "M", row.M, "tokens_per_s",
                                            row.tokens_per_s, "speedup", speedup, "bubble_rank0", row.bubble_rank0,
                                            "bubble_min", row.bubble_min, "bubble_max", row.bubble_max,
                                            "gpipe_ideal", row.ideal));
        else
            printf("%4d %14.0f %8.2fx %10.1f%% %7.1f-%5.1f%% %11.1f%%\n", row.M, row.tokens_per_s, speedup,
                   100 * row.bubble_rank0, 100 * row.bubble_min, 100 * row.bubble_max, 100 * row.ideal);
        fflush(stdout);
    }
    if (root && !rc) {
        char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (text) printf("%s\n", text);
        free(text);
    }
    json_decref(root);
    pipeline_free(&p);
done:
    free(tokens);
    free(logits);
    model_free(&m);
    return rc;
}
