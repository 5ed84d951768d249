/* stages.h — the stages of an experiment (DESIGN.md "Stages of the default grid") that exist so far: data,
 * train-teacher, train-student-base, the evaluation of both, node attribution patching of both, and the driver that runs them in order. A stage
 * whose status in results.h5 is "done" is skipped; an unfinished one is redone, a training stage continuing from
 * its latest checkpoint. Each returns CIRCD_OK, a CIRCD_E* code with err_msg(), or CIRCD_EINTERRUPTED. */
#ifndef CIRCD_STAGES_STAGES_H
#define CIRCD_STAGES_STAGES_H

#include <stdio.h>

#include "model/model.h"
#include "stages/experiment.h"

int stage_data(struct experiment *x);
int stage_train(struct experiment *x, enum model_role role);
int stage_eval(struct experiment *x, enum model_role role);
/* Exact-match accuracy of m on the whole ID and OOD sets (overall, per operation) and per operand length, in the
 * given answer format, into /runs/<row>/<seed>/{metrics,accuracy_by_digits}; one summary line labelled `label`. */
int eval_model_accuracy(struct experiment *x, struct llama_model *m, const struct arith_format *format,
                        const char *row, int seed, const char *label);
int stage_atp(struct experiment *x, enum model_role role);   /* attribution scores over the AtP set */
int stage_patch(struct experiment *x, enum model_role role); /* exact patching + AtP* on its sample */
int stage_circuit(struct experiment *x, enum model_role role);
/* The grid: distill-<run>-<seed> trains distill.methods[run] for that seed into <output>/models/<run>-<seed>;
 * eval-<run>-<seed> evaluates it into /runs/<run>/<seed>/metrics (stage_distill.c). */
int stage_distill(struct experiment *x, int run, int seed);
int stage_distill_eval(struct experiment *x, int run, int seed);
/* Part of the report stage: the attention patterns of the top-|AtP| heads of teacher, student base and each
 * method's first-seed student on the first ID test prompts, into /attention/<row>/patterns (stage_attention.c). */
int stage_attention(struct experiment *x);
/* The counterfactual kind attribution patching and circuits use: the first of data.atp_counterfactuals. */
enum arith_cf_kind experiment_atp_kind(const struct experiment *x);

/* Runs every stage in order; prints the comparison table at the end. */
int experiment_run(struct experiment *x);
/* Prints the rows evaluated so far (model, ID / OOD accuracy overall and per operation) as a Markdown table. */
int experiment_print_table(struct experiment *x, FILE *out);

#endif
