/* experiment.h — everything the stages of one experiment share, derived once from the spec: the output directory
 * and results.h5, the tokenizer and answer format, the data splits (deterministic from the data seed, so every run
 * and every rank rebuilds the same sets), the training streams of the teacher and of the student-facing stages,
 * where each role's model lives, and the device the running stage computes on. The stages themselves are in
 * stages.h. */
#ifndef CIRCD_STAGES_EXPERIMENT_H
#define CIRCD_STAGES_EXPERIMENT_H

#include <mpi.h>

#include "data/arith.h"
#include "data/arith_batch.h"
#include "data/arith_format.h"
#include "data/arith_splits.h"
#include "data/tokenizer.h"
#include "io/results.h"
#include "spec/spec.h"
#include "stages/placement.h"

/* The models the early stages produce; distillation methods (issue 5) add their own rows. */
enum model_role { ROLE_TEACHER, ROLE_STUDENT_BASE, ROLE_COUNT };

struct experiment {
    const struct experiment_spec *spec;
    MPI_Comm comm;
    int rank;
    char output[4096];
    struct results_file results;
    struct tokenizer tok;
    struct arith_format format;              /* direct answers, the spec's padding and answer order */
    struct arith_format cot_format;          /* the same with <sep> and the chain-of-thought trace */
    const char *templates[ARITH_OP_COUNT][SPEC_MAX_LIST];
    struct arith_splits_options split_options; /* train = the teacher's training distribution */
    struct arith_splits splits;
    struct arith_splits_options student_options; /* train = the student-facing distribution */
    struct arith_stream teacher_stream, student_stream;
    int local_rank;                          /* among the ranks on this node: picks the GPU */
    struct placement placement;              /* the running stage's device (run.c opens it; zeroed = the CPU) */
};

/* Builds the context and opens <output>/results.h5 (output_override, when not NULL, replaces spec->output). */
int experiment_open(struct experiment *x, const struct experiment_spec *spec, const char *output_override,
                    MPI_Comm comm);
void experiment_close(struct experiment *x);

const char *role_name(enum model_role role);      /* "teacher", "student_base" */
const char *role_row(enum model_role role);       /* comparison-table row: "teacher", "base" */
const struct spec_model *role_model(const struct experiment *x, enum model_role role);
const struct spec_train *role_training(const struct experiment *x, enum model_role role);
/* Directory of the role's trained model (a Hugging Face directory): the spec's checkpoint for a `checkpoint:`
 * model, else <output>/models/<role>. */
void role_model_dir(const struct experiment *x, enum model_role role, char *buf, size_t cap);
/* The model's llama_config for this experiment's tokenizer. */
void role_config(const struct experiment *x, enum model_role role, struct llama_config *cfg);
/* Moves a model the running stage just loaded or created onto the stage's device (x->placement; the CPU: no-op). */
int experiment_place_model(struct experiment *x, struct llama_model *m);

#endif
