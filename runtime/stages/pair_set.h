/* pair_set.h — a dataset's metric pairs (clean prompt, counterfactual partner of one kind) tokenized once into
 * batches, for attribution patching and circuit evaluation. Examples without a partner of the kind (MIB drops the
 * partners whose answer equals the clean one) are skipped and counted. */
#ifndef CIRCD_STAGES_PAIR_SET_H
#define CIRCD_STAGES_PAIR_SET_H

#include <stddef.h>

#include "data/arith.h"
#include "data/arith_batch.h"
#include "data/arith_format.h"
#include "data/tokenizer.h"

struct pair_set {
    struct pair_batch *batches;
    int n_batches;
    size_t pairs;    /* rows over all batches */
    size_t skipped;  /* examples among the first `limit` without the partner */
};

/* The first `limit` examples of d (all when limit is 0 or larger than the set) with a partner of `kind`, in batches
 * of at most `batch` rows whose T is at most max_seq. CIRCD_EINPUT when no example has the partner or a row is
 * longer than max_seq (naming the example). */
int pair_set_build(struct pair_set *s, const struct tokenizer *tok, const struct arith_format *f,
                   const struct arith_dataset *d, size_t limit, enum arith_cf_kind kind, int batch, int max_seq);
void pair_set_free(struct pair_set *s);

#endif
