/* cot_source.h — the data of chain-of-thought distillation: the student trains on traces the TEACHER generates, not
 * on the gold traces. A pool is built once: n problems drawn from the training stream, the teacher decoded greedily
 * from "[<bos>] prompt <sep>" until <eos> or max_new tokens, and each row stored as
 *     [<bos>] prompt <sep> teacher ids ... <eos>        (right-padded with <pad> to the pool's T)
 * Wrong traces are kept (they are what CoT distillation trains on); teacher_correct says how many were right. A
 * teacher that never emitted <eos> gets one appended where decoding stopped. Targets follow arith_batch.h: target[t]
 * = token[t+1] when t+1 is a generated position (the teacher's ids and the final <eos>), else -1 — so the <sep>
 * position predicts the first trace token and nothing before it is trained on.
 *
 * The trainer reads the pool through cot_pool_batch (train/trainer.h batch_source_fn): row k of the stream is pool
 * row order[k mod n], a permutation fixed by the pool's seed, so a batch depends only on the cursor and a resumed
 * run sees the same batches; every row appears once per epoch of n examples.
 *
 * Ownership: the pool owns its arrays; cot_pool_free releases them (safe on a zeroed pool). The teacher, tokenizer,
 * format and stream are only read during cot_pool_build. */
#ifndef CIRCD_DISTILL_COT_SOURCE_H
#define CIRCD_DISTILL_COT_SOURCE_H

#include <stdint.h>

#include "data/arith_batch.h"
#include "model/model.h"

struct cot_pool {
    int n, T;                  /* rows, and the row stride (the longest row) */
    int32_t *tokens, *targets; /* [n, T]; row i is the i-th problem drawn from the stream */
    int32_t *lengths;          /* [n] tokens before padding (ends with <eos>) */
    int32_t *prompt_lengths;   /* [n] [<bos>] prompt <sep> */
    int32_t *order;            /* [n] the fixed shuffled order cot_pool_batch reads rows in */
    int n_correct;             /* traces whose final answer is right (arith_score_generated) */
    int n_cut;                 /* rows where the teacher emitted no <eos> and one was appended */
    double teacher_correct;    /* n_correct / n */
};

/* Draws n problems from `stream` (its state started from `seed`, arith_stream_start), groups them by prompt length,
 * decodes the teacher greedily in chunks of `batch` equal-length prompts (eval/greedy.h) for at most max_new tokens
 * (fewer when the row would not fit the teacher's max_seq with its <eos>), and fills *p. The format must have
 * chain_of_thought = 1 and separator = 1, and the teacher's vocab_size must equal the tokenizer's. CIRCD_EINPUT for
 * n, batch or max_new <= 0, a wrong format or vocabulary, prompts that leave no room to generate; CIRCD_ENOMEM. On
 * failure *p is zeroed. */
int cot_pool_build(struct cot_pool *p, struct llama_model *teacher, const struct tokenizer *tok,
                   const struct arith_format *cot_format, const struct arith_stream *stream, uint64_t seed, int n,
                   int batch, int max_new);
void cot_pool_free(struct cot_pool *p);

/* batch_source_fn over a pool (ctx = const struct cot_pool *): batch row i is pool row order[(*cursor + i) mod n],
 * tokens/targets [B, *T] with T = the longest row of the batch; *cursor += B. rng is not used (the order comes from
 * the pool's seed), so the batch is a function of the cursor alone. CIRCD_EINPUT for B <= 0, a negative cursor, an
 * empty pool, or a row longer than max_T (naming it). */
int cot_pool_batch(void *ctx, struct rng *rng, int64_t *cursor, int32_t *tokens, int32_t *targets, int B, int max_T,
                   int *T);

#endif
