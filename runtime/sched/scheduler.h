/* scheduler.h — MPI execution of an experiment's plan (plan/plan.h) on the ranks of x->comm.
 *
 * Round by round (plan_place): the stages of the round are marked "running" in results.h5; the ranks split into
 * the round's groups (one sub-communicator each); each group runs its stages one after another, every stage
 * writing into its own results file <output>/stages/<stage>.h5 (parallel HDF5 on the group's communicator, reads
 * falling back to the group's earlier stage files of the round, then to results.h5 opened read-only), which is
 * renamed into place only once complete — the stage's durable "done" marker. When every group is through, all
 * ranks merge the round's stage files into results.h5 collectively and mark those stages done (data flushed
 * first); then the rest is planned again. A stage file that exists is never redone; results.h5 can always be
 * rebuilt from the stage files (a damaged one, e.g. from a kill during a merge, is set aside and rebuilt).
 *
 * Failures: a stage's error ends its group's sequence; at the end of the round every rank learns the outcome (no
 * rank is left waiting), finished stages are still merged, and rank 0 holds "[stage] (ranks a-b): message" in
 * err_msg() for the command to print. SIGTERM / SIGUSR1: running training stages checkpoint and return
 * CIRCD_EINTERRUPTED; groups start no further stage; the round's finished stages are merged; the run returns
 * CIRCD_EINTERRUPTED everywhere. */
#ifndef CIRCD_SCHED_SCHEDULER_H
#define CIRCD_SCHED_SCHEDULER_H

#include "plan/plan.h"
#include "stages/experiment.h"

/* Runs one stage of the plan with x->comm / x->rank / x->results set to its group's. */
typedef int (*sched_stage_fn)(struct experiment *x, const struct plan_stage *stage);

/* Runs every stage of `p` not yet done (p is re-placed as rounds finish). Collective over x->comm, whose size must
 * be p->n_ranks. */
int sched_run(struct experiment *x, struct plan *p, sched_stage_fn run);

/* <output>/stages/<stage>.h5 */
void sched_stage_file(const char *output, const char *stage, char *buf, size_t cap);
/* done[i] = 1 for every stage whose stage file exists or whose status in results (NULL: not consulted) is "done".
 * Collective over comm when results is given (else each rank looks at the file system itself). */
int sched_find_done(const struct plan *p, const char *output, struct results_file *results, unsigned char *done);

#endif
