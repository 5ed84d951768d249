/* accuracy.c — implementation of accuracy.h. */
#include "eval/accuracy.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/arith_batch.h"
#include "eval/greedy.h"
#include "util/error.h"

int eval_accuracy(struct llama_model *m, const struct tokenizer *tok, const struct arith_format *f,
                  const struct arith_dataset *d, size_t limit, int batch, int max_new, struct accuracy_counts *counts)
{
    return eval_accuracy_each(m, tok, f, d, limit, batch, max_new, counts, NULL);
}

int eval_accuracy_each(struct llama_model *m, const struct tokenizer *tok, const struct arith_format *f,
                       const struct arith_dataset *d, size_t limit, int batch, int max_new,
                       struct accuracy_counts *counts, unsigned char *correct)
{
    size_t n = limit && limit < d->count ? limit : d->count;
    if (n == 0) return CIRCD_OK;
    struct arith_item *items = malloc(n * sizeof *items);
    size_t *order = malloc(n * sizeof *order), *starts = malloc((n + 1) * sizeof *starts), n_groups = 0;
    int32_t *prompts = malloc((size_t)batch * ARITH_SEQ_MAX * sizeof *prompts);
    int32_t *out = malloc((size_t)batch * max_new * sizeof *out);
    int *out_len = malloc((size_t)batch * sizeof *out_len);
    struct arith_encoded *enc = malloc(sizeof *enc);
    int rc = CIRCD_OK;
    if (!items || !order || !starts || !prompts || !out || !out_len || !enc) {
        rc = err_set(CIRCD_ENOMEM, "out of memory for evaluation");
        goto done;
    }
    for (size_t i = 0; i < n && !rc; i++) rc = arith_dataset_item(d, i, -1, &items[i]);
    if (!rc) rc = arith_group_by_prompt_length(tok, f, items, n, order, starts, &n_groups);
    for (size_t g = 0; g < n_groups && !rc; g++) {
        for (size_t first = starts[g]; first < starts[g + 1] && !rc; first += (size_t)batch) {
            size_t last = first + (size_t)batch < starts[g + 1] ? first + (size_t)batch : starts[g + 1];
            int B = (int)(last - first), L = 0;
            for (int b = 0; b < B && !rc; b++) {
                rc = arith_encode(tok, f, &items[order[first + b]], enc);
                L = enc->prompt_len;
                memcpy(prompts + (size_t)b * L, enc->ids, (size_t)L * sizeof *prompts);
            }
            if (rc) break;
            int new_tokens = max_new;
            if (L + new_tokens > m->config.max_seq) new_tokens = m->config.max_seq - L;
            if (new_tokens <= 0) {
                rc = err_set(CIRCD_EINPUT, "prompts of %d tokens leave no room to answer within max_seq %d", L,
                             m->config.max_seq);
                break;
            }
            if ((rc = greedy_decode_batch(m, prompts, B, L, new_tokens, tok->eos_id, out, out_len))) break;
            for (int b = 0; b < B && !rc; b++) {
                const struct arith_problem *p = &items[order[first + b]].problem;
                struct arith_score score;
                rc = arith_score_generated(tok, f, out + (size_t)b * new_tokens, (size_t)out_len[b], p, &score);
                int digits = arith_digit_count(p->a > p->b ? p->a : p->b);
                counts->total[p->op][digits]++;
                counts->correct[p->op][digits] += score.correct;
                if (correct) correct[order[first + b]] = (unsigned char)(score.correct != 0);
            }
        }
    }
done:
    free(items); free(order); free(starts); free(prompts); free(out); free(out_len); free(enc);
    return rc;
}

double accuracy_of(const struct accuracy_counts *c, int op, int digits)
{
    long correct = 0, total = 0;
    for (int o = 0; o < ARITH_OP_COUNT; o++) {
        if (op >= 0 && o != op) continue;
        for (int dgt = 0; dgt <= ARITH_MAX_DIGITS; dgt++) {
            if (digits > 0 && dgt != digits) continue;
            correct += c->correct[o][dgt];
            total += c->total[o][dgt];
        }
    }
    return total ? (double)correct / (double)total : NAN;
}
