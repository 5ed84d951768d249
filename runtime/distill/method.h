/* method.h — one distillation run's training step (train/trainer.h train_step_fn): the student's objective
 *     λ_task · CE(gold answer) + λ_KD · T²·KL(p_T ‖ p_S) + λ_align · Σ_{(u,v)} (1 − CKA(h_u^T, h_v^S))
 * on a batch, its gradient (logit terms through dlogits; the alignment terms injected at the student's hook_z /
 * hook_mlp_out with HOOK_GRAD_ADD), and the update — AdamW on every parameter, or only on the student circuit's
 * (subnetwork fine-tuning: every other parameter stays bit-identical), plus strategy B's projection.
 *
 * The teacher runs forward on the same tokens (same tokenizer and format) when λ_KD or λ_align is non-zero: on this
 * rank with model_forward, or, with setup.teacher_pipeline, pipeline-parallel over that pipeline's ranks with this
 * rank driving it (sched/pipeline.h: the step calls pipeline_request_forward; the caller ends the other ranks'
 * pipeline_serve with pipeline_request_stop). Both give the same logits and caches within OpenBLAS rounding.
 * Alignment rows (spec distill.align_rows): the answer positions (targets >= 0), the last prompt position (the one
 * predicting the first answer token), or every non-padding position. CE and KL use the answer positions.
 *
 * Data parallel (setup.data_parallel open over R > 1 ranks; every rank calls the step with the same whole batch):
 * rank r takes the contiguous block shard_range(B, r, R) of the batch's rows (sched/reduce.h) and runs the
 * teacher's and the student's forwards on those rows only. CE and KL are normalised by the WHOLE batch's answer
 * rows, so the ranks' gradients add up to the 1-rank gradient. CKA is a statistic of the whole batch (columns
 * centred over every row, Gram matrices over every row): it does not split into per-rank terms, so every rank's
 * component activations of its rows are all-gathered in rank order (the 1-rank row order) and every rank computes
 * the 1-rank CKA and its gradient over all rows, then keeps the gradient of its own rows; strategy B's projection
 * gradient comes out of the same whole-batch computation, identical on every rank. The parameter gradients are
 * then summed over the ranks (collective_allreduce_sum_f32 over model_backend_grads, in the model's backend
 * memory) and every rank takes the same AdamW step (same clipping norm) and projection step, so the replicas stay
 * equal and match one rank within float rounding (a sum over rows is split at the rank boundaries). The reported
 * terms are the whole batch's. A failure on any rank fails the step on every rank (agreed before each
 * collective). Not combined with teacher_pipeline.
 *
 * Ownership: the step borrows the models, graphs, component lists, map, mask, projection and collective of its
 * setup; it owns its scratch (allocated once by distill_step_init for [B, T] batches). */
#ifndef CIRCD_DISTILL_METHOD_H
#define CIRCD_DISTILL_METHOD_H

#include "circuits/graph.h"
#include "distill/correspond.h"
#include "distill/losses.h"
#include "model/model.h"
#include "sched/collective.h"
#include "sched/pipeline.h"

enum align_rows { ALIGN_ANSWER = 0, ALIGN_LAST_PROMPT = 1, ALIGN_ALL = 2 };
enum align_strategy { ALIGN_NONE = 0, ALIGN_MAPPED = 1 /* strategy A */, ALIGN_GLOBAL = 2 /* strategy B */ };

struct distill_setup {
    float lambda_task, lambda_kd, lambda_align;
    float temperature;
    enum kl_direction kl_direction;
    int cka_unbiased;
    enum align_rows rows;
    enum align_strategy strategy;
    struct llama_model *teacher;              /* NULL when neither KD nor alignment is used */
    const struct circuit_graph *teacher_graph, *student_graph;
    const struct component_map *map;          /* ALIGN_MAPPED: teacher -> student pairs */
    const int *teacher_components;            /* ALIGN_GLOBAL: the teacher circuit */
    int n_teacher;
    const int *student_components;            /* ALIGN_GLOBAL: the student circuit */
    int n_student;
    struct global_projection *projection;     /* ALIGN_GLOBAL */
    float projection_weight_decay;
    const unsigned char *mask;                /* subnetwork: [n_params]; NULL = every parameter */
    int32_t pad_id;
    struct pipeline *teacher_pipeline;        /* NULL: the teacher runs on this rank; else its pipeline, this rank
                                               * being the destination (teacher is still this rank's copy) */
    int teacher_micro_batches;                /* M of the pipelined forward (at most B is used; < 1 means 1) */
    struct collective *data_parallel;         /* NULL or one rank: this rank takes whole batches; else the ranks
                                               * that split every batch's rows (above), on the student's backend */
};

/* The last step's terms (unweighted means), for progress lines and curves. */
struct distill_terms { double ce, kl, align; int align_pairs; };

struct distill_step {
    struct distill_setup setup;
    int capacity_B, capacity_T;
    struct distill_terms last;
    void *scratch; /* private */
};

int distill_step_init(struct distill_step *s, const struct distill_setup *setup, struct llama_model *student,
                      int capacity_B, int capacity_T);
void distill_step_free(struct distill_step *s);
/* train_step_fn: ctx is a struct distill_step. */
int distill_train_step(void *ctx, struct llama_model *m, const int32_t *tokens, const int32_t *targets, int B, int T,
                       const struct adamw_config *opt, float lr, float *loss);
/* train_stop_fn (train_config.stop), ctx a struct distill_step: the signal that asked to stop (util/interrupt.h),
 * agreed over the data-parallel ranks (the highest), so that every rank stops after the same step; without data
 * parallel, interrupt_requested(). Collective over the data-parallel ranks. */
int distill_stop_requested(void *ctx);
/* Data parallel, on every rank after train_run returned rc: every rank learns whether another failed outside a
 * step (e.g. rank 0's checkpoint write; the others' stop check then ended their training). Returns rc, or
 * CIRCD_EIO when another rank failed. Collective over the data-parallel ranks; without data parallel returns rc. */
int distill_data_parallel_finish(struct distill_step *s, int rc);

#endif
