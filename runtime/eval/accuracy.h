/* accuracy.h — exact-match accuracy of greedy answers on an arithmetic set, broken down by operation and by operand
 * length (the longer operand's digit count), decoding equal-length prompts together (eval/greedy.h). */
#ifndef CIRCD_EVAL_ACCURACY_H
#define CIRCD_EVAL_ACCURACY_H

#include <stddef.h>

#include "data/arith.h"
#include "data/arith_format.h"
#include "data/tokenizer.h"
#include "model/model.h"

struct accuracy_counts {
    int correct[ARITH_OP_COUNT][ARITH_MAX_DIGITS + 1];
    int total[ARITH_OP_COUNT][ARITH_MAX_DIGITS + 1];
};

/* Evaluates the first `limit` examples of d (0 = all) in batches of `batch`, generating at most max_new tokens
 * (stopping at <eos>); adds into *counts (zero it first). */
int eval_accuracy(struct llama_model *m, const struct tokenizer *tok, const struct arith_format *f,
                  const struct arith_dataset *d, size_t limit, int batch, int max_new, struct accuracy_counts *counts);

/* The same, also recording each example's outcome: correct[i] = 1 when example i (of the first `limit`) was
 * answered exactly, else 0 (correct: that many entries). */
int eval_accuracy_each(struct llama_model *m, const struct tokenizer *tok, const struct arith_format *f,
                       const struct arith_dataset *d, size_t limit, int batch, int max_new,
                       struct accuracy_counts *counts, unsigned char *correct);

/* Fractions in [0, 1] (NAN when nothing was counted): everything, one operation (op < 0: all), one length. */
double accuracy_of(const struct accuracy_counts *c, int op, int digits);

#endif
