/* pipeline.h — the teacher's forward pass, pipeline-parallel over the S ranks of a communicator (GPipe's forward
 * schedule): group rank s holds layers [first_layer, last_layer) of a balanced contiguous split (rank 0 also embeds
 * the tokens, rank S-1 also applies the final RMSNorm and lm_head); a [B, T] batch is cut along B into M
 * micro-batches, and micro-batch m+1 runs on stage s while m runs on stage s+1: the [b_m*T, d_model] residual
 * stream goes from stage to stage with MPI_Isend / MPI_Recv, the send of m overlapping the compute of m+1. The
 * outputs — logits [B*T, V] and, when asked, every layer's hook_z [B*T, n_heads*head_dim] and hook_mlp_out
 * [B*T, d_model] (what the distillation step caches) — are delivered on ONE rank, `dest`, straight into the
 * caller's buffers. Values are those of model_forward on the whole batch (model_forward_range shares its per-layer
 * code); only OpenBLAS may round a product of b_m rows differently from one of B rows (M = 1: bit-identical).
 *
 * Every call is COLLECTIVE over the pipeline's communicator and returns the same code on every rank: arguments
 * are agreed (the same B, T, M everywhere) before any activation moves; a stage that fails mid-schedule sends a
 * status word with its residual stream, so the stages after it skip their compute instead of blocking, and the
 * ranks agree on the first failure after the schedule (sched/reduce.h's reduce_agree: the others report "rank r of
 * S: <its message>").
 *
 * Driving it from one rank (the distillation step): the dest rank calls pipeline_request_forward for each batch
 * and pipeline_request_stop(status) at the end; every other rank sits in pipeline_serve until the stop word
 * (waiting without spinning a core) and returns the status the driver sent.
 *
 * Memory: every rank holds the whole model here (simple; a real 70B teacher would load only its stage's layers'
 * tensors) and activation buffers for one micro-batch. Hooks registered on the model fire per micro-batch with the
 * micro-batch's shape on the rank owning the layer, so caches of the whole batch come from pipeline_output, not
 * from HOOK_CACHE. */
#ifndef CIRCD_SCHED_PIPELINE_H
#define CIRCD_SCHED_PIPELINE_H

#include <mpi.h>
#include <stdint.h>

#include "model/model.h"

/* Time one rank spent over its pipeline_forward calls: compute = its stage's layers (and the copies of its outputs
 * into send or output buffers), wall = the schedule from the agreed start to its last message; bubble = 1 -
 * compute / wall (GPipe's ideal: (S - 1) / (M + S - 1)). */
struct pipeline_stats {
    double compute_s, wall_s;
    int64_t forwards;
};

/* Where the outputs land on the dest rank (ignored elsewhere). z and mlp_out: NULL for logits only, else arrays of
 * n_layers buffers. */
struct pipeline_output {
    float *logits;          /* [B*T, vocab] */
    float **z, **mlp_out;   /* per layer [B*T, n_heads*head_dim], [B*T, d_model] */
};

struct pipeline {
    MPI_Comm comm;                   /* a duplicate of the caller's: the pipeline's messages never meet the caller's */
    int rank, size, dest;
    struct llama_model *model;       /* borrowed */
    int first_layer, last_layer;     /* this rank's stage */
    struct pipeline_stats stats;
    /* Private: buffers grown by pipeline_forward (never inside the schedule). */
    size_t cap_rows, cap_micro, cap_cache_rows;
    float *resid_send, *resid_recv, *logits_send, *cache_send;
    MPI_Request *requests;
    int32_t *tokens;
};

/* Collective over comm (its S ranks become stages 0..S-1, outputs go to rank dest). CIRCD_EINPUT on every rank when
 * S exceeds the model's layers (at most one stage per layer), dest is out of range, or the ranks' models differ in
 * shape. The model is borrowed and must outlive the pipeline. */
int pipeline_init(struct pipeline *p, struct llama_model *model, MPI_Comm comm, int dest);
void pipeline_free(struct pipeline *p);
/* Stage s's layers [*first, *last) of an n_layers model split over S stages (balanced, contiguous: the first
 * n_layers % S stages get one more). */
void pipeline_split(int n_layers, int S, int s, int *first, int *last);

/* One pipelined forward of tokens [B*T] (read on dest only; NULL elsewhere is fine) in M micro-batches (1 <= M <= B;
 * micro-batch m has B/M rows, one more for the first B % M). out: on dest the output buffers (out->logits
 * required), elsewhere ignored. Collective; CIRCD_OK or the same error code on every rank. */
int pipeline_forward(struct pipeline *p, const int32_t *tokens, int B, int T, int M, const struct pipeline_output *out);

/* The driver side (dest only): tells the serving ranks to run a forward, then runs it (same contract as
 * pipeline_forward). */
int pipeline_request_forward(struct pipeline *p, const int32_t *tokens, int B, int T, int M,
                             const struct pipeline_output *out);
/* The driver side (dest only): ends pipeline_serve on every other rank, handing them `status` (a CIRCD_* code) and,
 * when it is not CIRCD_OK, the driver's current error message. */
void pipeline_request_stop(struct pipeline *p, int status);
/* Every rank but dest: runs the forwards the driver requests until it stops; returns the driver's status (with its
 * message as this rank's error). */
int pipeline_serve(struct pipeline *p);

#endif
