/* bench.h — the benchmarks behind `circd bench` that live in their own files. */
#ifndef CIRCD_BENCH_BENCH_H
#define CIRCD_BENCH_BENCH_H

#include "model/config.h"

struct bench_atp_case {
    const char *name;
    struct llama_config config;
    int B, T;
};

/* Prints (or, with json, prints one JSON object of) the cost of each discovery method per batch, in milliseconds
 * and in units of one forward pass of the same batch. */
int bench_atp(const struct bench_atp_case *cases, int n_cases, double min_seconds, int json);
/* Collective over MPI_COMM_WORLD (bench_atp_scaling.c): node AtP and EAP pairs/s over n_batches batches of the
 * case's B real arithmetic pairs on one rank, then sharded over every rank, and the parallel efficiency. */
int bench_atp_scaling(const struct bench_atp_case *c, int n_batches, double min_seconds, int json);
/* Collective over MPI_COMM_WORLD (bench_pipeline.c): the forward of a [B, T] batch pipelined over every rank at M =
 * 1, 2, 4, 8 micro-batches against one rank alone (tok/s), and each rank's bubble against GPipe's ideal. */
int bench_pipeline(const struct llama_config *config, int B, int T, double min_seconds, int json);

#endif
