/* plan.h — an experiment spec compiled into its job graph: every stage of the grid (data, train-<role>,
 * eval-<role>, atp-<role>, circuit-<role>, distill-<run>-<seed>, eval-<run>-<seed>, report) with the stages it
 * depends on, a cost estimate, how many ranks it can use, and — for a given number of MPI ranks — a placement:
 * the stages are run in rounds; the ranks of a round are cut into disjoint groups (contiguous rank ranges, one
 * sub-communicator each) that run their stages one after another — the stages ready at the round's start,
 * balanced longest-path-first, then the stages that follow a group's own while the round's busiest group still
 * works (plan_place.c). Stages that scale (attribution patching and evaluation shard their data; distillation
 * with a teacher pipelines the teacher's layers) get several ranks when fewer stages are ready than ranks, or
 * when the spec asks for a pipelined teacher.
 *
 * The stages of a role: train, eval, atp, patch (when atp.exact_patching_samples > 0), circuit. Each stage carries
 * its device (cpu or cuda) from the spec's `device:` and `devices:` (spec/spec.h spec_stage_device).
 * `circd plan SPEC [--ranks N]` prints the plan as text and as Graphviz DOT; `circd run` executes it (sched/).
 * The plan is a pure function of the spec, the rank count and the set of stages already done, so every rank
 * computes the same one without communicating. */
#ifndef CIRCD_PLAN_PLAN_H
#define CIRCD_PLAN_PLAN_H

#include <stdio.h>

#include "spec/spec.h"

#define PLAN_MAX_DEPS 8
#define PLAN_NAME_MAX 64

enum plan_kind {
    PLAN_DATA,          /* the data sets (results /data, <output>/atp.jsonl) */
    PLAN_TRAIN,         /* train-<role> */
    PLAN_EVAL,          /* eval-<role>: accuracy of a trained role */
    PLAN_ATP,           /* atp-<role>: attribution scores over the AtP set */
    PLAN_PATCH,         /* patch-<role>: exact patching on the sample, AtP's agreement with it, AtP* */
    PLAN_CIRCUIT,       /* circuit-<role>: faithfulness curves, CPR, CMD, NFS */
    PLAN_DISTILL,       /* distill-<run>-<seed> */
    PLAN_DISTILL_EVAL,  /* eval-<run>-<seed> */
    PLAN_REPORT,        /* report: the comparison table into results.h5 and <output>/comparison.md */
    PLAN_KIND_COUNT
};

/* The two models the fixed stages produce (same order as stages/experiment.h enum model_role). */
enum plan_role { PLAN_ROLE_TEACHER = 0, PLAN_ROLE_STUDENT_BASE = 1 };

struct plan_stage {
    char name[PLAN_NAME_MAX];
    enum plan_kind kind;
    int role;                 /* PLAN_TRAIN / EVAL / ATP / PATCH / CIRCUIT: enum plan_role */
    int run, seed;            /* PLAN_DISTILL / DISTILL_EVAL: spec distill.methods[run], the seed's value */
    int deps[PLAN_MAX_DEPS];  /* indices of the stages this one reads the results or models of */
    int n_deps;
    int after_all;            /* runs after every other stage (the report) */
    double cost;              /* estimated work in GFLOP (forward + backward), for balancing and display */
    int max_ranks;            /* ranks it can use: 1, or more for sharded / pipelined stages */
    enum spec_device device;  /* where its models compute (spec `device:` / `devices:`; data and report: cpu) */
    int device_rule;          /* what chose it: spec_stage_device's rule (spec_device_origin names it) */
    /* Placement (plan_place): -1 / 0 when the stage is already done. */
    int done;
    int wave;                 /* its round, 0-based among the rounds still to run */
    int group;                /* group index within its round */
    int first_rank, n_ranks;  /* the group's ranks [first_rank, first_rank + n_ranks) */
    int slot;                 /* position in its group's sequence */
};

struct plan {
    struct plan_stage *stages; /* topological order (every dependency comes first) */
    int n_stages;
    int n_ranks;
    int n_waves;               /* rounds */
    double span_estimate;      /* sum over rounds of the busiest group's cost / its ranks' share */
};

/* Builds the graph of `spec` (stages in a topological order) and places it on n_ranks >= 1 ranks with no stage
 * done. CIRCD_EINPUT for n_ranks < 1, CIRCD_ENOMEM. */
int plan_build(struct plan *p, const struct experiment_spec *spec, int n_ranks);
void plan_free(struct plan *p);
/* Index of the stage called `name`, or -1. */
int plan_find(const struct plan *p, const char *name);
/* Re-places the stages not marked done (done[i] != 0) on the plan's ranks. A done stage keeps round (wave) -1. */
void plan_place(struct plan *p, const unsigned char *done);
/* Human-readable plan: one block per round listing each group's ranks and stages (device, cost, dependencies). */
void plan_print_text(const struct plan *p, const struct experiment_spec *spec, FILE *out);
/* Graphviz DOT: one node per stage (label with its ranks and device, clustered by round), one edge per dependency. */
void plan_print_dot(const struct plan *p, const struct experiment_spec *spec, FILE *out);

const char *plan_kind_name(enum plan_kind kind);

#endif
