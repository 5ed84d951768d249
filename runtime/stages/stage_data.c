/* stage_data.c — the `data` stage: records the experiment's data in results.h5 (/data/<split>/problems as
 * [n, 4] int32 rows of operation, a, b, template index, with the partners used, and the tokenizer's vocabulary),
 * so every later stage and every reader sees exactly which problems were held out. The sets themselves are rebuilt
 * deterministically from the data seed by every run (experiment.c). The AtP set is also written as MIB rows to
 * <output>/atp.jsonl, so `circd atp --data` and `circd faithfulness --data` can use the generator's own pairs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/mib.h"
#include "stages/stages.h"
#include "util/error.h"

static int write_split(struct experiment *x, const char *name, const struct arith_dataset *d)
{
    char path[256];
    size_t n = d->count;
    int32_t *rows = calloc(n ? n * 4 : 4, sizeof *rows);
    if (!rows) return err_set(CIRCD_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const struct arith_example *e = &d->examples[i];
        rows[i * 4 + 0] = (int32_t)e->clean.op;
        rows[i * 4 + 1] = (int32_t)e->clean.a;
        rows[i * 4 + 2] = (int32_t)e->clean.b;
        rows[i * 4 + 3] = e->template_index;
    }
    snprintf(path, sizeof path, "/data/%s/problems", name);
    uint64_t dims[2] = {n, 4};
    int rc = n ? results_write_i32(&x->results, path, 2, dims, rows) : CIRCD_OK;
    free(rows);
    snprintf(path, sizeof path, "/data/%s", name);
    if (!rc) rc = results_set_attr_i64(&x->results, path, "count", (int64_t)n);
    if (!rc) rc = results_set_attr_str(&x->results, path, "columns", "operation (0 add, 1 sub), a, b, template");
    return rc;
}

int stage_data(struct experiment *x)
{
    int rc;
    if ((rc = write_split(x, "id_test", &x->splits.id_test)) || (rc = write_split(x, "ood_test", &x->splits.ood_test)) ||
        (rc = write_split(x, "atp", &x->splits.atp)))
        return rc;
    size_t cap = 16, len = 0;
    for (int i = 0; i < x->tok.vocab_size; i++) cap += strlen(tokenizer_token_text(&x->tok, i)) + 1;
    char *vocab = malloc(cap);
    if (!vocab) return err_set(CIRCD_ENOMEM, "out of memory");
    for (int i = 0; i < x->tok.vocab_size; i++) {
        const char *t = tokenizer_token_text(&x->tok, i);
        memcpy(vocab + len, t, strlen(t));
        len += strlen(t);
        vocab[len++] = '\n';
    }
    vocab[len] = '\0';
    rc = results_set_attr_str(&x->results, "/data/tokenizer", "vocabulary", vocab);
    free(vocab);
    if (!rc) rc = results_set_attr_str(&x->results, "/data/tokenizer", "kind", tokenizer_kind_name(x->tok.kind));
    if (!rc) rc = results_set_attr_i64(&x->results, "/data/tokenizer", "vocab_size", x->tok.vocab_size);
    if (!rc) rc = results_set_attr_str(&x->results, "/data", "answer_order",
                                       x->format.answer_order == ARITH_ANSWER_REVERSED ? "reversed" : "msd_first");
    if (!rc) rc = results_set_attr_i64(&x->results, "/data", "pad_operands", x->format.pad_operands);
    if (!rc && x->rank == 0) {
        char path[4200];
        snprintf(path, sizeof path, "%s/atp.jsonl", x->output);
        rc = mib_write_file(path, &x->splits.atp);
    }
    return rc;
}
