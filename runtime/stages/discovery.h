/* discovery.h — circuit discovery over one model and one set of metric pairs, written to a results file: the job
 * behind both the `atp-<role>` stages of an experiment and the standalone `circd atp` command.
 *
 * Writes under /atp/<name>/ :
 *   nodes       [n_nodes, 2] node AtP (or node AtP-IG): mean signed score, mean |score| per pair; attribute
 *               "nodes" = TransformerLens names (blocks.l.attn.hook_z[h] ..., blocks.l.hook_mlp_out)
 *   edges       (edge level) [n_up, n_down, 2] the same per edge of the MIB graph (circuits/graph.h; NaN where no
 *               edge exists); attributes "upstream" / "downstream" = MIB names
 *   exact       [n_nodes, 2] exact activation patching of every node on the first exact_samples pairs, with the
 *               Pearson / Spearman agreement of AtP on the same pairs as attributes
 * plus the metric means (metric_clean, metric_corrupt), the number of pairs and the options as attributes. */
#ifndef CIRCD_STAGES_DISCOVERY_H
#define CIRCD_STAGES_DISCOVERY_H

#include <mpi.h>

#include "circuits/edges.h"
#include "circuits/graph.h"
#include "circuits/nodes.h"
#include "io/results.h"
#include "model/model.h"
#include "stages/pair_set.h"

/* Which parts of the job run: everything (the `circd atp` command), or the scores over the whole set (the
 * atp-<role> stages) and the exact patching of the sample with AtP* (the patch-<role> stages) separately. */
enum discovery_part { DISCOVERY_ALL = 0, DISCOVERY_SCORES = 1, DISCOVERY_PATCHING = 2 };

struct discovery_options {
    enum graph_level level;
    int ig_steps;          /* 0 = plain AtP / EAP; m >= 1 = integrated gradients over m steps */
    int qk_fix, grad_drop; /* AtP* variants, compared with exact patching on the exact sample */
    size_t exact_samples;  /* pairs for exact patching (0 = none) */
    const char *mib_json;  /* when set (rank 0 writes it): the scores of the level as MIB's circuit JSON, every
                              component in the graph (MIB applies its own top-n to a score file) */
    enum discovery_part part;
};

/* `pairs` is the AtP set and `sample` the first exact_samples pairs of it (both built by the caller, the same on
 * every rank). Collective over comm, on which r must be open: every rank scores its contiguous block of the batches
 * (sched/reduce.h's shard_range) and the sums are added in rank order, so any number of ranks gives one rank's
 * numbers within rounding; a failure on one rank (or inputs that differ between ranks) makes every rank return an
 * error. Prints one summary line per result to stderr on rank 0 (prefix, e.g. "[atp-teacher]"); rank 0 writes
 * the MIB JSON. */
int discovery_run(struct llama_model *m, const struct pair_set *pairs, const struct pair_set *sample,
                  const struct discovery_options *o, struct results_file *r, const char *name, MPI_Comm comm,
                  const char *prefix);

/* The sharded sums behind /atp/<name>/nodes and /edges, on their own (benchmarks): s is initialised by the caller
 * with zero sums; on return it holds the sums over every pair of set, identical on every rank of comm. */
int discovery_node_scores(struct llama_model *m, const struct pair_set *set, int ig_steps, MPI_Comm comm,
                          struct node_scores *s);
int discovery_edge_scores(struct llama_model *m, const struct pair_set *set, int ig_steps, MPI_Comm comm,
                          struct edge_scores *s);

#endif
