/* pair_set.c — implementation of pair_set.h. Each batch is encoded into one scratch batch as long as the model
 * allows (capped at PAIR_SET_MAX_T tokens), then copied into a batch of exactly its own size. */
#include "stages/pair_set.h"

#include <stdlib.h>
#include <string.h>

#include "util/error.h"

#define PAIR_SET_MAX_T 1024

static int copy_batch(struct pair_batch *dst, const struct pair_batch *src)
{
    int rc = pair_batch_alloc(dst, src->B, src->T);
    if (rc) return rc;
    size_t cells = (size_t)src->B * src->T;
    memcpy(dst->clean, src->clean, cells * sizeof *dst->clean);
    memcpy(dst->corrupt, src->corrupt, cells * sizeof *dst->corrupt);
    memcpy(dst->pairs, src->pairs, (size_t)src->B * sizeof *dst->pairs);
    dst->B = src->B;
    dst->T = src->T;
    return CIRCD_OK;
}

int pair_set_build(struct pair_set *s, const struct tokenizer *tok, const struct arith_format *f,
                   const struct arith_dataset *d, size_t limit, enum arith_cf_kind kind, int batch, int max_seq)
{
    memset(s, 0, sizeof *s);
    if (batch <= 0) return err_set(CIRCD_EINPUT, "pair batches of %d rows, expected at least 1", batch);
    size_t n = limit && limit < d->count ? limit : d->count, usable = 0;
    size_t *indices = xmalloc((n ? n : 1) * sizeof *indices);
    if (!indices) return CIRCD_ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (arith_example_has(&d->examples[i], kind)) indices[usable++] = i;
    s->skipped = n - usable;
    if (!usable) {
        free(indices);
        return err_set(CIRCD_EINPUT, "none of the %zu examples has a %s counterfactual", n, arith_cf_name(kind));
    }
    int n_batches = (int)((usable + (size_t)batch - 1) / (size_t)batch);
    struct pair_batch scratch;
    int rc = pair_batch_alloc(&scratch, batch, max_seq < PAIR_SET_MAX_T ? max_seq : PAIR_SET_MAX_T);
    if (!rc && !(s->batches = xcalloc((size_t)n_batches, sizeof *s->batches))) rc = CIRCD_ENOMEM;
    for (int b = 0; b < n_batches && !rc; b++) {
        size_t first = (size_t)b * (size_t)batch;
        int rows = (int)(usable - first < (size_t)batch ? usable - first : (size_t)batch);
        rc = pair_batch_build(&scratch, tok, f, d, indices + first, rows, kind);
        if (!rc) rc = copy_batch(&s->batches[b], &scratch);
        if (!rc) {
            s->n_batches = b + 1;
            s->pairs += (size_t)rows;
        }
    }
    if (scratch.clean) pair_batch_free(&scratch);
    free(indices);
    if (rc) pair_set_free(s);
    return rc;
}

void pair_set_free(struct pair_set *s)
{
    for (int b = 0; b < s->n_batches; b++) pair_batch_free(&s->batches[b]);
    free(s->batches);
    memset(s, 0, sizeof *s);
}
