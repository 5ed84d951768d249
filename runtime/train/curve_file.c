/* curve_file.c — implementation of curve_file.h. Layout: the line "circd-curve 1\n", then little-endian binary
 * int64 window step, float64 window loss sum, int32 window count, int32 n, and n records of (int64 step,
 * float32 loss, float32 lr). */
#include "train/curve_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/atomic_file.h"
#include "util/error.h"

#define CURVE_MAGIC "circd-curve 1\n"

int train_curve_add(struct train_curve *c, int64_t step, float loss, float lr)
{
    if (c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 64;
        int64_t *s = realloc(c->step, (size_t)cap * sizeof *s);
        if (s) c->step = s;
        float *l = realloc(c->loss, (size_t)cap * sizeof *l);
        if (l) c->loss = l;
        float *r = realloc(c->lr, (size_t)cap * sizeof *r);
        if (r) c->lr = r;
        if (!s || !l || !r) return err_set(CIRCD_ENOMEM, "out of memory for the training curve");
        c->cap = cap;
    }
    c->step[c->n] = step;
    c->loss[c->n] = loss;
    c->lr[c->n] = lr;
    c->n++;
    return CIRCD_OK;
}

int curve_file_save(const char *path, const struct train_curve *c, const struct curve_window *w)
{
    struct atomic_file af;
    int rc = atomic_file_open(&af, path);
    if (rc) return rc;
    int32_t count = w->loss_count, n = c->n;
    fputs(CURVE_MAGIC, af.fp);
    fwrite(&w->step, sizeof w->step, 1, af.fp);
    fwrite(&w->loss_sum, sizeof w->loss_sum, 1, af.fp);
    fwrite(&count, sizeof count, 1, af.fp);
    fwrite(&n, sizeof n, 1, af.fp);
    for (int i = 0; i < c->n; i++) {
        fwrite(&c->step[i], sizeof c->step[i], 1, af.fp);
        fwrite(&c->loss[i], sizeof c->loss[i], 1, af.fp);
        fwrite(&c->lr[i], sizeof c->lr[i], 1, af.fp);
    }
    return atomic_file_commit(&af);
}

int curve_file_load(const char *path, struct train_curve *c, struct curve_window *w, int64_t checkpoint_step)
{
    memset(w, 0, sizeof *w);
    FILE *fp = fopen(path, "rb");
    if (!fp) return errno == ENOENT ? CIRCD_OK : err_set(CIRCD_EIO, "%s: cannot open: %s", path, strerror(errno));
    char magic[sizeof CURVE_MAGIC] = "";
    struct curve_window saved;
    int32_t count = 0, n = 0;
    int ok = fread(magic, 1, strlen(CURVE_MAGIC), fp) == strlen(CURVE_MAGIC) &&
             memcmp(magic, CURVE_MAGIC, strlen(CURVE_MAGIC)) == 0 && fread(&saved.step, sizeof saved.step, 1, fp) == 1 &&
             fread(&saved.loss_sum, sizeof saved.loss_sum, 1, fp) == 1 && fread(&count, sizeof count, 1, fp) == 1 &&
             fread(&n, sizeof n, 1, fp) == 1 && n >= 0 && count >= 0;
    int rc = ok ? CIRCD_OK : err_set(CIRCD_EINPUT, "%s: not a circd curve file (or truncated header)", path);
    for (int i = 0; i < n && !rc; i++) {
        int64_t step;
        float loss, lr;
        if (fread(&step, sizeof step, 1, fp) != 1 || fread(&loss, sizeof loss, 1, fp) != 1 ||
            fread(&lr, sizeof lr, 1, fp) != 1)
            rc = err_set(CIRCD_EINPUT, "%s: truncated at point %d of %d", path, i, (int)n);
        else if (step <= checkpoint_step)
            rc = train_curve_add(c, step, loss, lr);
    }
    fclose(fp);
    if (!rc && saved.step == checkpoint_step) {
        saved.loss_count = count;
        *w = saved;
    }
    return rc;
}
