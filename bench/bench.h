/* bench.h — the benchmarks behind `circd bench` that live in their own files. */
#ifndef CIRCD_BENCH_BENCH_H
#define CIRCD_BENCH_BENCH_H

#include "model/config.h"
#include "spec/spec.h"

/* Shared by the benchmarks (bench.c): a monotonic clock in seconds; a Llama config (head_dim d / heads, RoPE theta
 * 10000, RMSNorm eps 1e-5, untied, no BOS/EOS); forward FLOPs per token of a [*, T] batch — 2 per weight of every
 * matrix product (lm_head included, the embedding lookup not) plus the causal attention products; training is 3x. */
double bench_now_seconds(void);
struct llama_config bench_make_config(int vocab, int d, int layers, int heads, int kv_heads, int d_ff, int T);
double bench_forward_flops_per_token(const struct llama_config *c, int T);

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
/* bench_device.c: training tokens/s of the medium config (tiny: a small one, for tests) on `device` with fp32 and
 * (GPUs) bf16 matmuls, the matmul share of the step, cuBLAS's (the backend's) own matmul peak in the same run and
 * the ratio; batch 0 = the config's default. Exit code of `circd bench` (2 when the device cannot be used). */
int bench_device(enum spec_device device, int tiny, int batch, double min_seconds, int json);

#endif
