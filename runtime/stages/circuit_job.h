/* circuit_job.h — MIB's evaluation of the circuits a discovery found (circuits/faithfulness.h), written to a results
 * file: the job behind the `circuit-<role>` stages and `circd faithfulness`.
 *
 * Writes under /circuits/<name>/ :
 *   curve_signed, curve_abs  [n_sizes, 7]: percent, items requested, edges and nodes in the pruned circuit, x (edge
 *                            fraction), M(C), f(C) — top-n by signed score (CPR's curve) and by |score| (CMD's).
 *                            Signed as MIB: MIB attributes its loss -M, so its top-n takes the components whose
 *                            patching lowers M most, i.e. the most negative circd scores (circd's score is the
 *                            issue's (h_corr - h_clean) · dM/dh); MIB JSON files carry MIB's sign (-score).
 *   nfs_edges [n_up, n_down] int32 and nfs_nodes [n_up]: the circuit of nfs_percent by |score| (the one eval and
 *                            distillation use), in the graph's indices (circuits/graph.h)
 * and attributes cpr, cmd, mean_f_signed, mean_f_abs, nfs, nfs_percent, metric_model, metric_empty, level,
 * ablation, pairs. With json_path, the NFS circuit (with every score) is also written as MIB's circuit JSON. */
#ifndef CIRCD_STAGES_CIRCUIT_JOB_H
#define CIRCD_STAGES_CIRCUIT_JOB_H

#include <mpi.h>

#include "circuits/faithfulness.h"
#include "io/results.h"
#include "stages/pair_set.h"

struct circuit_job_options {
    enum graph_level level;
    enum ablation_kind ablation;
    const double *percents;  /* ascending, in (0, 100] */
    int n_percents;
    double nfs_percent;
    const char *json_path;   /* NULL: no MIB JSON */
};

/* Scores in graph order of the level (edge: [n_up * n_down]; node: [n_up], NaN for the input) from a results file
 * written by discovery (/atp/<name>/edges or /nodes, column 0: mean signed score). CIRCD_EINPUT when absent. */
int circuit_scores_read(struct results_file *r, const char *name, enum graph_level level,
                        const struct circuit_graph *g, double *scores);

/* Collective over comm, on which r must be open: every rank evaluates its contiguous block of the pair batches for
 * each circuit size (the per-batch sums of M added in rank order, sched/reduce.h), so any number of ranks gives one
 * rank's numbers within rounding; a failure on one rank makes every rank return an error. Rank 0 prints the
 * summary and writes the JSON. */
int circuit_job_run(const struct llama_model *m, const struct pair_set *pairs, const double *scores,
                    const struct circuit_job_options *o, struct results_file *r, const char *name, MPI_Comm comm,
                    const char *prefix);
/* The faithfulness shard of the calling rank of *comm over pairs' batches (for faithfulness_init_sharded); comm
 * must outlive the faithfulness that uses it. */
void circuit_job_shard(const struct pair_set *pairs, MPI_Comm *comm, struct faith_shard *shard);

#endif
