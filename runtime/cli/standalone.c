/* standalone.c — implementation of standalone.h. */
#include "cli/standalone.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "data/mib.h"
#include "data/tokenizer_files.h"
#include "sched/collective.h"
#include "util/error.h"

static void default_name(char *buf, size_t cap, const char *dir)
{
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/') len--;
    size_t start = len;
    while (start > 0 && dir[start - 1] != '/') start--;
    snprintf(buf, cap, "%.*s", (int)(len - start), dir + start);
    for (char *p = buf; *p; p++)
        if (*p == '.' && p == buf) *p = '_';
    if (!buf[0]) snprintf(buf, cap, "model");
}

static int first_kind_present(const struct arith_dataset *d, enum arith_cf_kind *kind)
{
    for (int k = 0; k < ARITH_CF_COUNT; k++)
        for (size_t i = 0; i < d->count; i++)
            if (arith_example_has(&d->examples[i], (enum arith_cf_kind)k)) { *kind = (enum arith_cf_kind)k; return 0; }
    return err_set(CIRCD_EINPUT, "no row has a counterfactual partner (expected \"random_counterfactual\" or another "
                   "*_counterfactual object whose answer differs)");
}

int standalone_device(const char *text, struct placement *device)
{
    enum spec_device d;
    memset(device, 0, sizeof *device);
    int rc = placement_parse_device(text, "--device", &d);
    if (rc) return rc;
    int local = collective_local_rank(MPI_COMM_WORLD);
    if (local < 0) return CIRCD_EINTERNAL;
    char who[64];
    snprintf(who, sizeof who, "--device %s", text);
    return placement_open(device, d, SPEC_PRECISION_FP32, local, who);
}

int standalone_open(struct standalone *s, const char *model_dir, const char *data_path, const char *counterfactual,
                    size_t limit, int batch, const char *name, const struct placement *device)
{
    memset(s, 0, sizeof *s);
    char path[4200];
    int rc = model_load_hf(&s->model, model_dir);
    if (rc) return rc;
    s->opened_model = 1;
    if ((rc = placement_apply(device, &s->model))) return rc;
    if ((rc = tokenizer_open_model_dir(model_dir, &s->tok))) return rc;
    s->opened_tok = 1;
    if (s->tok.vocab_size > s->model.config.vocab_size)
        return err_set(CIRCD_EINPUT, "%s: the tokenizer has %d tokens, the model's vocab_size is %d", model_dir,
                       s->tok.vocab_size, s->model.config.vocab_size);
    snprintf(path, sizeof path, "%s/circd_format.json", model_dir);
    if (access(path, F_OK) == 0) {
        if ((rc = arith_format_load(&s->format, path))) return rc;
    } else {
        arith_format_default(&s->format);
        s->format.bos = s->tok.bos_id >= 0;
    }
    if (s->format.separator && s->tok.sep_id < 0)
        return err_set(CIRCD_EINPUT, "%s: separator is true, but the model's tokenizer has no separator token", path);
    if (s->format.bos && s->tok.bos_id < 0)
        return err_set(CIRCD_EINPUT, "%s: bos is true, but the model's tokenizer has no BOS token", path);
    if ((rc = mib_read_file(data_path, &s->data))) return rc;
    if (counterfactual) rc = arith_cf_from_name(counterfactual, &s->kind);
    else rc = first_kind_present(&s->data, &s->kind);
    if (rc) return err_prefix(rc, "--counterfactual: ");
    rc = pair_set_build(&s->pairs, &s->tok, &s->format, &s->data, limit, s->kind, batch, s->model.config.max_seq);
    if (rc) return err_prefix(rc, "%s: ", data_path);
    if (name) snprintf(s->name, sizeof s->name, "%s", name);
    else default_name(s->name, sizeof s->name, model_dir);
    return CIRCD_OK;
}

void standalone_close(struct standalone *s)
{
    pair_set_free(&s->pairs);
    arith_dataset_free(&s->data);
    if (s->opened_tok && s->tok.destroy) tokenizer_free(&s->tok);
    if (s->opened_model) model_free(&s->model);
    memset(s, 0, sizeof *s);
}
