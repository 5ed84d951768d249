/* faithfulness.h — MIB's evaluation of circuits: the metric M of the model with every edge outside a circuit ablated
 * (edge_forward.h), normalised faithfulness f(C) = (M(C) - M(∅)) / (M(model) - M(∅)), the faithfulness curve over
 * circuit sizes with its areas (CPR and CMD), and the NFS of one fixed-size circuit.
 *
 * Ablation values a'_u (what an ablated edge carries instead of a_u):
 *   counterfactual  the corrupt input's own upstream outputs (an edge_forward of pb->corrupt, nothing ablated);
 *   mean            per position t, the mean of each upstream output over all clean rows of the evaluation set,
 *                   the same for every batch. Prompts of one length are assumed positionally aligned, as in MIB's
 *                   positional mean ablation; a row counts for position t only when t < its pairs[b].length (rows
 *                   are right-padded), and a position no row reaches has mean 0.
 * M is averaged over every row of the whole dataset before normalising (MIB's evaluate_graph(...).mean()).
 *
 * The curve (MIB's evaluate_area_under_curve): for each percent p of a list (MIB: 0.1 0.2 0.5 1 2 5 10 20 50 100),
 * n = floor(p / 100 · n_items) — n_items = real edges at edge level, scored (non-NaN) nodes at node level (n_up - 1
 * with the input unscored: NaN, always kept) — the circuit is circuit_top_edges / circuit_top_nodes (graph.h) of
 * the scores, and x = its in-graph edges after pruning / all real edges (MIB's weighted_edge_count, as a fraction).
 * Trapezoid areas over x (or ln x): area_under = ∫ f dx and area_from_one = ∫ |1 - f| dx (|1 - f| at the points).
 * MIB's two numbers: CPR = area_under of the curve with signed scores (absolute = 0), CMD = area_from_one of the
 * curve with absolute scores (absolute = 1).
 *
 * Ownership: struct faithfulness owns its runner, means and buffers; it reads the model, graph and batches it was
 * given, which must outlive it. */
#ifndef CIRCD_CIRCUITS_FAITHFULNESS_H
#define CIRCD_CIRCUITS_FAITHFULNESS_H

#include <stddef.h>
#include <stdint.h>

#include "circuits/edge_forward.h"
#include "circuits/graph.h"
#include "data/arith_batch.h"
#include "model/model.h"

enum ablation_kind { ABLATION_COUNTERFACTUAL = 0, ABLATION_MEAN = 1 };

/* Per-position means of every upstream output over clean rows: add batches, finish, then fill ablated arrays. */
struct ablation_means {
    int n_up, d_model, max_T;
    double *sum;    /* [n_up, max_T, d_model] */
    int64_t *count; /* [max_T] rows counted at each position */
    float *mean;    /* [n_up, max_T, d_model], valid after ablation_means_finish */
};
int ablation_means_init(struct ablation_means *a, const struct circuit_graph *g, const struct llama_model *m,
                        int max_T);
void ablation_means_free(struct ablation_means *a);
/* Runs pb->clean through r (nothing ablated) and adds its outputs; CIRCD_EINPUT if pb->T > max_T. */
int ablation_means_add(struct ablation_means *a, struct edge_runner *r, const struct llama_model *m,
                       const struct pair_batch *pb);
void ablation_means_finish(struct ablation_means *a);
/* ablated[n_up, B*T, d] (edge_forward's layout) = the mean of node u at position t, for every row (T <= max_T). */
void ablation_means_fill(const struct ablation_means *a, int B, int T, float *ablated);

/* alpha[n_up * n_down] of a circuit: 1 - in_graph on real edges, 0 elsewhere. */
void circuit_alpha(const struct circuit *c, float *alpha);
/* Graph-order node scores scores[n_up] from a node_scores-order vector node_values[L*(H+1)] (nodes.h: heads
 * layer-major, then MLPs; e.g. signed_sum / pairs): scores[0] (the input) = NaN. */
void graph_scores_from_nodes(const struct circuit_graph *g, const double *node_values, double *scores);

/* Sharded evaluation (e.g. over MPI ranks): this process evaluates only batches [first, end) of the dataset it was
 * given — every process is given all of them, so the sizes, n_rows and the means' shape are of the whole set — and
 * `reduce` replaces its per-shard sums (n values) by the sums over every shard, the same on every process. reduce
 * is called the same number of times on every process, also after a local failure (rc != 0; sums are then not
 * to be read), and returns nonzero on every process when any failed. Errors in the arguments (no batches, a bad
 * size) are the same on every process and return before any reduce. */
struct faith_shard {
    int first, end;
    int (*reduce)(void *ctx, int rc, double *sums, size_t n);
    void *ctx;
};

struct faithfulness {
    struct faith_shard shard;  /* {0, n_batches, NULL, NULL} unless sharded */
    const struct llama_model *m;
    const struct circuit_graph *g;
    const struct pair_batch *batches;
    int n_batches;
    enum ablation_kind kind;
    struct edge_runner runner; /* capacity: the largest B and T of the batches */
    struct ablation_means means; /* ABLATION_MEAN only */
    float *ablated;            /* [n_up, B*T, d] replacements of the batch being evaluated */
    float *alpha;              /* [n_up * n_down] */
    double *rows;              /* [largest B] M per row */
    int64_t n_rows;            /* rows of the dataset */
    double metric_model;       /* M(model): mean M with nothing ablated */
    double metric_empty;       /* M(∅): mean M with the empty circuit */
};

/* Prepares the evaluation of batches[0..n_batches) (n_batches >= 1): the means for ABLATION_MEAN, then M(model)
 * and M(∅). CIRCD_EINPUT for no batches, an empty batch or a bad token; CIRCD_ENOMEM. */
int faithfulness_init(struct faithfulness *f, const struct llama_model *m, const struct circuit_graph *g,
                      const struct pair_batch *batches, int n_batches, enum ablation_kind kind);
/* The same, evaluating only shard->first .. shard->end - 1 of the batches and combining with shard->reduce. */
int faithfulness_init_sharded(struct faithfulness *f, const struct llama_model *m, const struct circuit_graph *g,
                              const struct pair_batch *batches, int n_batches, enum ablation_kind kind,
                              const struct faith_shard *shard);
void faithfulness_free(struct faithfulness *f);
/* metrics[i] = M(circuits[i]) averaged over the dataset; one ablation run per batch serves all n circuits. */
int faithfulness_metrics(struct faithfulness *f, const struct circuit *circuits, int n, double *metrics);
/* (metric - M(∅)) / (M(model) - M(∅)); NaN when M(model) = M(∅). */
double faithfulness_normalise(const struct faithfulness *f, double metric);

#define FAITH_MAX_POINTS 32
extern const double faith_mib_percents[10]; /* 0.1 0.2 0.5 1 2 5 10 20 50 100 */

struct faith_point {
    double percent;  /* requested size in percent of the items */
    size_t n;        /* items requested: floor(percent / 100 · n_items) */
    size_t edges;    /* in-graph edges after pruning */
    int nodes;       /* in-graph nodes after pruning */
    double x;        /* edges / real edges */
    double metric;   /* M(C) */
    double f;        /* normalised faithfulness */
};

struct faith_curve {
    int n_points;
    struct faith_point points[FAITH_MAX_POINTS];
    double area_under;    /* trapezoid ∫ f dx: CPR for signed scores */
    double area_from_one; /* trapezoid ∫ |1 - f| dx: CMD for absolute scores */
    double mean_f;        /* average f over the points (MIB reports it) */
};

/* The curve for scores (edge level: [n_up * n_down], non-edges ignored; node level: [n_up], NaN = unscored) at
 * percents[0..n_percents) (ascending; at most FAITH_MAX_POINTS), top-n by |score| when absolute; log_x: areas over
 * ln x (points with x = 0 are left out of them). CIRCD_EINPUT for too many percents or one outside [0, 100]. */
int faithfulness_curve(struct faithfulness *f, enum graph_level level, const double *scores, int absolute,
                       const double *percents, int n_percents, int log_x, struct faith_curve *out);
/* NFS: the point of one circuit of `percent` (the spec's circuit.nfs_size). */
int faithfulness_nfs(struct faithfulness *f, enum graph_level level, const double *scores, int absolute,
                     double percent, struct faith_point *out);
/* The two trapezoid areas of points (x[i], y[i]), i < n, in order (log_x: over ln x, skipping x <= 0). */
void faith_areas(const double *x, const double *y, int n, int log_x, double *area_under, double *area_from_one);

#endif
