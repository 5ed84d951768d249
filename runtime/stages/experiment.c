/* experiment.c — implementation of experiment.h: the spec's data section turned into generator options, splits,
 * streams, the tokenizer and the answer format; the output directory and results.h5; the node-local rank. */
#include "stages/experiment.h"

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "data/mib.h"
#include "sched/collective.h"
#include "util/error.h"

static int make_dirs(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return err_set(CIRCD_EIO, "%s: cannot create directory: %s", buf, strerror(errno));
        *p = saved;
        if (!saved) break;
    }
    return CIRCD_OK;
}

static void set_digits(struct arith_gen_options *o, struct spec_digits d) { o->min_digits = d.lo, o->max_digits = d.hi; }

/* Per-length sampling weights of a training section, one per length lo..hi of the digit range. */
static void set_weights(struct arith_gen_options *o, const struct spec_floats *w)
{
    memset(o->digit_weights, 0, sizeof o->digit_weights);
    for (int i = 0; i < w->n && o->min_digits + i <= ARITH_MAX_DIGITS; i++)
        o->digit_weights[o->min_digits + i] = (float)w->items[i];
}

static void base_options(struct experiment *x, struct arith_gen_options *o)
{
    const struct spec_data *d = &x->spec->data;
    arith_gen_options_default(o);
    o->ops = d->operations; /* spec_operation and arith_op share their order: add, sub */
    o->templates[ARITH_ADD].texts = d->templates_add.n ? x->templates[ARITH_ADD] : NULL;
    o->templates[ARITH_ADD].count = (size_t)d->templates_add.n;
    o->templates[ARITH_SUB].texts = d->templates_sub.n ? x->templates[ARITH_SUB] : NULL;
    o->templates[ARITH_SUB].count = (size_t)d->templates_sub.n;
}

/* data.mib_jsonl: MIB's own rows (one file per operation, typically) become the attribution-patching set, and
 * are held out of every training stream. Templates are re-indexed into one list. */
static int load_mib_rows(struct experiment *x)
{
    const struct spec_strings *files = &x->spec->data.mib_jsonl;
    struct arith_dataset all;
    memset(&all, 0, sizeof all);
    int rc = CIRCD_OK;
    for (int f = 0; f < files->n && !rc; f++) {
        struct arith_dataset part;
        if ((rc = mib_read_file(files->items[f], &part))) break;
        struct arith_example *ex = realloc(all.examples, (all.count + part.count) * sizeof *ex);
        char **tpl = realloc(all.templates, (all.template_count + part.template_count) * sizeof *tpl);
        if (ex) all.examples = ex;
        if (tpl) all.templates = tpl;
        if (!ex || !tpl) { arith_dataset_free(&part); rc = err_set(CIRCD_ENOMEM, "out of memory"); break; }
        for (size_t i = 0; i < part.count; i++) {
            all.examples[all.count + i] = part.examples[i];
            all.examples[all.count + i].template_index += (int32_t)all.template_count;
            arith_problem_set_add(&x->splits.held_out, &part.examples[i].clean, NULL);
        }
        for (size_t i = 0; i < part.template_count; i++) {
            all.templates[all.template_count + i] = part.templates[i];
            part.templates[i] = NULL; /* moved */
        }
        all.count += part.count;
        all.template_count += part.template_count;
        arith_dataset_free(&part);
    }
    if (rc) { arith_dataset_free(&all); return rc; }
    arith_dataset_free(&x->splits.atp);
    x->splits.atp = all;
    return CIRCD_OK;
}

static int build_data(struct experiment *x)
{
    const struct experiment_spec *s = x->spec;
    const struct spec_data *d = &s->data;
    for (int i = 0; i < d->templates_add.n; i++) x->templates[ARITH_ADD][i] = d->templates_add.items[i];
    for (int i = 0; i < d->templates_sub.n; i++) x->templates[ARITH_SUB][i] = d->templates_sub.items[i];

    struct arith_splits_options *o = &x->split_options;
    arith_splits_options_default(o);
    o->seed = d->seed;
    base_options(x, &o->train);
    o->train.pairing = ARITH_DIGITS_INDEPENDENT;
    o->train.same_fraction = (float)d->same_length_fraction;
    o->train.cf_kinds = 0;
    set_digits(&o->train, d->train_digits);
    set_weights(&o->train, &s->training.teacher.length_weights);
    base_options(x, &o->id_test);
    set_digits(&o->id_test, d->id_test_digits);
    o->id_test.cf_kinds = d->eval_counterfactuals;
    base_options(x, &o->ood_test);
    set_digits(&o->ood_test, d->ood_test_digits);
    o->ood_test.cf_kinds = d->eval_counterfactuals;
    base_options(x, &o->atp);
    set_digits(&o->atp, d->atp_digits);
    o->atp.cf_kinds = d->atp_counterfactuals | d->eval_counterfactuals;
    o->id_test_count = (size_t)d->id_test_size;
    o->ood_test_count = (size_t)d->ood_test_size;
    o->atp_count = (size_t)d->atp_size;
    o->train_pool_size = d->train_examples > 0 ? (size_t)d->train_examples : 0;
    int rc = arith_splits_build(o, &x->splits);
    if (rc) return err_prefix(rc, "%s: data: ", s->path);
    if (d->mib_jsonl.n && (rc = load_mib_rows(x))) return rc;
    arith_stream_from_splits(&x->teacher_stream, &x->splits, o);

    /* The student-facing stream: its own digit range, the same held-out problems; always generated on the fly
     * (a finite pool holds the teacher's lengths). */
    x->student_options = *o;
    set_digits(&x->student_options.train, d->student_train_digits);
    set_weights(&x->student_options.train, &s->training.student_base.length_weights);
    arith_stream_from_splits(&x->student_stream, &x->splits, &x->student_options);
    x->student_stream.pool = NULL;

    /* One vocabulary for every model of the experiment, built from every template. */
    const char *texts[2 * SPEC_MAX_LIST];
    size_t n = 0;
    for (size_t i = 0; i < arith_template_count(&o->train); i++) texts[n++] = arith_template_text(&o->train, i);
    for (size_t i = 0; i < x->splits.atp.template_count && n < sizeof texts / sizeof texts[0]; i++)
        texts[n++] = x->splits.atp.templates[i];
    if ((rc = tokenizer_arith_create(&x->tok, d->tokenizer == SPEC_TOKENIZER_DIGIT ? TOKENIZER_DIGITS
                                                                                  : TOKENIZER_NUMBER_CHUNKS,
                                     texts, n)))
        return err_prefix(rc, "%s: tokenizer: ", s->path);

    arith_format_default(&x->format);
    x->format.answer_order = d->reverse_answer ? ARITH_ANSWER_REVERSED : ARITH_ANSWER_MSD_FIRST;
    int widest = d->train_digits.hi;
    if (d->ood_test_digits.hi > widest) widest = d->ood_test_digits.hi;
    x->format.pad_operands = d->zero_pad_operands ? widest : 0;
    x->format.pad_answer = d->zero_pad_operands && d->zero_pad_answer;
    x->cot_format = x->format;
    x->cot_format.chain_of_thought = 1;
    x->cot_format.separator = 1;
    return arith_format_check(&x->format) || arith_format_check(&x->cot_format) ? CIRCD_EINPUT : CIRCD_OK;
}

int experiment_open(struct experiment *x, const struct experiment_spec *spec, const char *output_override,
                    MPI_Comm comm)
{
    memset(x, 0, sizeof *x);
    x->results.file = -1;
    x->spec = spec;
    x->comm = comm;
    MPI_Comm_rank(comm, &x->rank);
    snprintf(x->output, sizeof x->output, "%s", output_override ? output_override : spec->output);
    x->local_rank = collective_local_rank(comm); /* collective: every rank is here */
    int rc = x->local_rank < 0 ? CIRCD_EINTERNAL : build_data(x);
    char path[4200];
    if (!rc && x->rank == 0) rc = make_dirs(x->output);
    if (!rc && x->rank == 0) { snprintf(path, sizeof path, "%s/checkpoints", x->output); rc = make_dirs(path); }
    if (!rc && x->rank == 0) { snprintf(path, sizeof path, "%s/models", x->output); rc = make_dirs(path); }
    if (!rc && x->rank == 0) { snprintf(path, sizeof path, "%s/stages", x->output); rc = make_dirs(path); }
    snprintf(path, sizeof path, "%s/results.h5", x->output);
    if (!rc && x->rank == 0 && results_is_damaged(path)) {
        /* A kill during a merge: every finished stage is in <output>/stages/, results.h5 is rebuilt from them. */
        char aside[4200];
        snprintf(aside, sizeof aside, "%s.damaged", path);
        if (rename(path, aside) != 0) rc = err_set(CIRCD_EIO, "%s is damaged and cannot be moved aside", path);
        else fprintf(stderr, "circd: %s was damaged (interrupted write); moved to %s, rebuilding it from %s/stages\n",
                     path, aside, x->output);
    }
    MPI_Allreduce(MPI_IN_PLACE, &rc, 1, MPI_INT, MPI_MAX, comm);
    if (!rc) rc = results_open(&x->results, path, comm, spec->yaml);
    if (rc) experiment_close(x);
    return rc;
}

void experiment_close(struct experiment *x)
{
    if (x->results.file >= 0) results_close(&x->results);
    arith_splits_free(&x->splits);
    if (x->tok.destroy) tokenizer_free(&x->tok);
}

const char *role_name(enum model_role role) { return role == ROLE_TEACHER ? "teacher" : "student_base"; }
const char *role_row(enum model_role role) { return role == ROLE_TEACHER ? "teacher" : "base"; }

const struct spec_model *role_model(const struct experiment *x, enum model_role role)
{
    return role == ROLE_TEACHER ? &x->spec->teacher : &x->spec->student;
}

const struct spec_train *role_training(const struct experiment *x, enum model_role role)
{
    return role == ROLE_TEACHER ? &x->spec->training.teacher : &x->spec->training.student_base;
}

void role_model_dir(const struct experiment *x, enum model_role role, char *buf, size_t cap)
{
    const struct spec_model *m = role_model(x, role);
    if (m->from_checkpoint) snprintf(buf, cap, "%s", m->checkpoint);
    else snprintf(buf, cap, "%s/models/%s", x->output, role_name(role));
}

void role_config(const struct experiment *x, enum model_role role, struct llama_config *cfg)
{
    const struct spec_model *m = role_model(x, role);
    if (m->from_checkpoint) *cfg = m->config;
    else spec_arch_config(&m->arch, x->tok.vocab_size, cfg);
    cfg->bos_token_id = x->tok.bos_id;
    cfg->eos_token_id = x->tok.eos_id;
}

int experiment_place_model(struct experiment *x, struct llama_model *m) { return placement_apply(&x->placement, m); }
