/* model_checkpoint.c — a model's training state (parameters, AdamW moments, step) plus the caller's RNG and data
 * cursor, to and from one checkpoint file (io/checkpoint.h does the format, atomicity and checksum). */
#include "io/checkpoint.h"
#include "model/model.h"
#include "model/model_internal.h"
#include "util/error.h"

int model_checkpoint_save(const struct llama_model *m, const char *path, const struct rng *rng, int64_t data_cursor)
{
    if (!m->adam_m || !m->adam_v)
        return err_set(CIRCD_EINTERNAL, "%s: checkpointing needs training state (model_enable_training)", path);
    int rc = model_device_download(m); /* the host copies are what is written */
    if (rc) return rc;
    struct checkpoint c = {m->params, m->adam_m, m->adam_v, m->n_params, m->step, data_cursor, *rng};
    return checkpoint_write(path, &c);
}

int model_checkpoint_load(struct llama_model *m, const char *path, struct rng *rng, int64_t *data_cursor)
{
    int rc = model_enable_training(m);
    if (rc) return rc;
    struct checkpoint c = {m->params, m->adam_m, m->adam_v, m->n_params, 0, 0, {{0}}};
    if ((rc = checkpoint_read(path, &c))) return rc;
    model_params_changed(m);
    m->step = c.step;
    if (rng) *rng = c.rng;
    if (data_cursor) *data_cursor = c.data_cursor;
    return CIRCD_OK;
}
