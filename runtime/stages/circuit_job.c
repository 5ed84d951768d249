/* circuit_job.c — implementation of circuit_job.h. The evaluation is sharded over the communicator's ranks through
 * faithfulness.h's shard reduction (sched/reduce.h: rank-order sums); every collective call follows an agreement
 * on errors. */
#include "stages/circuit_job.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "circuits/circuit_json.h"
#include "sched/reduce.h"
#include "util/error.h"

int circuit_scores_read(struct results_file *r, const char *name, enum graph_level level,
                        const struct circuit_graph *g, double *scores)
{
    char path[256];
    int edges = level == GRAPH_LEVEL_EDGE, nodes = g->n_layers * (g->n_heads + 1);
    size_t want = edges ? (size_t)g->n_up * g->n_down : (size_t)nodes;
    snprintf(path, sizeof path, "/atp/%s/%s", name, edges ? "edges" : "nodes");
    if (!results_exists(r, path))
        return err_set(CIRCD_EINPUT, "%s: no %s (run %s attribution patching first)", r->path, path,
                       edges ? "edge-level" : "node-level");
    float *buf = xmalloc(want * 2 * sizeof *buf);
    double *node_values = edges ? NULL : xmalloc(want * sizeof *node_values);
    if (!buf || (!edges && !node_values)) { free(buf); free(node_values); return CIRCD_ENOMEM; }
    int ndim = 0;
    uint64_t dims[4] = {0};
    int rc = results_read_f32(r, path, buf, want * 2, &ndim, dims);
    uint64_t got = ndim >= 2 ? dims[0] * (ndim == 3 ? dims[1] : 1) : 0;
    if (!rc && (got != want || dims[ndim - 1] != 2))
        rc = err_set(CIRCD_EINPUT, "%s: %s holds %llu scores, the model's graph has %zu", r->path, path,
                     (unsigned long long)got, want);
    for (size_t i = 0; i < want && !rc; i++) {
        if (edges) scores[i] = g->real[i] ? buf[2 * i] : 0.0;
        else node_values[i] = buf[2 * i];
    }
    if (!rc && !edges) graph_scores_from_nodes(g, node_values, scores);
    free(buf);
    free(node_values);
    return rc;
}

static int write_curve(struct results_file *r, const char *path, const struct faith_curve *c)
{
    float rows[FAITH_MAX_POINTS * 7];
    for (int i = 0; i < c->n_points; i++) {
        const struct faith_point *p = &c->points[i];
        float *row = rows + 7 * i;
        row[0] = (float)p->percent;
        row[1] = (float)p->n;
        row[2] = (float)p->edges;
        row[3] = (float)p->nodes;
        row[4] = (float)p->x;
        row[5] = (float)p->metric;
        row[6] = (float)p->f;
    }
    uint64_t dims[2] = {(uint64_t)c->n_points, 7};
    int rc = results_write_f32(r, path, 2, dims, rows);
    if (!rc) rc = results_set_attr_str(r, path, "columns", "percent, items, edges, nodes, x (edge fraction), M(C), f");
    return rc;
}

/* The NFS circuit: as faithfulness_nfs chose it (top point.n by |score|, pruned). */
static void nfs_circuit(struct circuit *c, enum graph_level level, const double *scores, size_t n)
{
    if (level == GRAPH_LEVEL_EDGE) circuit_top_edges(c, scores, n, 1);
    else circuit_top_nodes(c, scores, n, 1);
}

static int write_nfs(struct results_file *r, const char *dir, const struct circuit *c)
{
    const struct circuit_graph *g = c->g;
    size_t n = (size_t)g->n_up * g->n_down;
    int32_t *cells = xmalloc(n * sizeof *cells);
    int rc = reduce_agree(cells ? CIRCD_OK : CIRCD_ENOMEM, r->comm);
    if (rc) return rc;
    char path[300];
    for (size_t i = 0; i < n; i++) cells[i] = c->edges[i];
    uint64_t dims[2] = {(uint64_t)g->n_up, (uint64_t)g->n_down};
    snprintf(path, sizeof path, "%s/nfs_edges", dir);
    rc = results_write_i32(r, path, 2, dims, cells);
    for (int u = 0; u < g->n_up; u++) cells[u] = c->nodes[u];
    snprintf(path, sizeof path, "%s/nfs_nodes", dir);
    if (!rc) rc = results_write_i32(r, path, 1, dims, cells);
    free(cells);
    return rc;
}

/* faith_shard's reduce over an MPI communicator (ctx: the MPI_Comm). */
static int reduce_over_comm(void *ctx, int rc, double *sums, size_t n)
{
    MPI_Comm comm = *(MPI_Comm *)ctx;
    rc = reduce_agree(rc, comm);
    return rc ? rc : reduce_sum_f64_ordered(sums, n, comm);
}

void circuit_job_shard(const struct pair_set *pairs, MPI_Comm *comm, struct faith_shard *shard)
{
    size_t lo, hi;
    shard_range_comm((size_t)pairs->n_batches, *comm, &lo, &hi);
    *shard = (struct faith_shard){(int)lo, (int)hi, reduce_over_comm, comm};
}

int circuit_job_run(const struct llama_model *m, const struct pair_set *pairs, const double *scores,
                    const struct circuit_job_options *o, struct results_file *r, const char *name, MPI_Comm comm,
                    const char *prefix)
{
    struct circuit_graph g;
    struct faithfulness f;
    struct circuit c;
    struct faith_curve signed_curve, abs_curve;
    struct faith_point nfs;
    char dir[256];
    memset(&f, 0, sizeof f);
    memset(&c, 0, sizeof c);
    int rank, same = MPI_UNEQUAL;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_compare(comm, r->comm, &same);
    int rc = same == MPI_IDENT || same == MPI_CONGRUENT
                 ? CIRCD_OK
                 : err_set(CIRCD_EINTERNAL, "circuits: %s is open on another communicator than the job's", r->path);
    const long long same_inputs[] = {pairs->n_batches, (long long)pairs->pairs, o->level, o->ablation, o->n_percents,
                                     !!o->json_path};
    if ((rc = reduce_agree(rc, comm)) ||
        (rc = reduce_check_same(same_inputs, (int)(sizeof same_inputs / sizeof same_inputs[0]),
                                "circuits: the pair sets or options", comm)))
        return rc;
    if ((rc = reduce_agree(graph_init(&g, &m->config), comm))) { graph_free(&g); return rc; }
    /* MIB attributes its loss, -M: its signed ranking (CPR's curve) and its files use the negated scores. */
    size_t n_scores = o->level == GRAPH_LEVEL_EDGE ? (size_t)g.n_up * g.n_down : (size_t)g.n_up;
    double *mib = xmalloc(n_scores * sizeof *mib);
    if (!mib) rc = CIRCD_ENOMEM;
    for (size_t i = 0; i < n_scores && !rc; i++) mib[i] = -scores[i];
    struct faith_shard shard;
    circuit_job_shard(pairs, &comm, &shard);
    if (!(rc = reduce_agree(rc, comm)))
        rc = faithfulness_init_sharded(&f, m, &g, pairs->batches, pairs->n_batches, o->ablation, &shard);
    if (!rc) rc = faithfulness_curve(&f, o->level, mib, 0, o->percents, o->n_percents, 0, &signed_curve);
    if (!rc) rc = faithfulness_curve(&f, o->level, scores, 1, o->percents, o->n_percents, 0, &abs_curve);
    if (!rc) rc = faithfulness_nfs(&f, o->level, scores, 1, o->nfs_percent, &nfs);
    if (!rc) {
        rc = reduce_agree(circuit_alloc(&c, &g), comm);
        if (!rc) nfs_circuit(&c, o->level, scores, nfs.n);
    }
    snprintf(dir, sizeof dir, "/circuits/%s", name);
    char path[300];
    snprintf(path, sizeof path, "%s/curve_signed", dir);
    if (!rc) rc = write_curve(r, path, &signed_curve);
    snprintf(path, sizeof path, "%s/curve_abs", dir);
    if (!rc) rc = write_curve(r, path, &abs_curve);
    if (!rc) rc = write_nfs(r, dir, &c);
    const struct { const char *key; double value; } attrs[] = {
        {"cpr", signed_curve.area_under}, {"cmd", abs_curve.area_from_one},
        {"mean_f_signed", signed_curve.mean_f}, {"mean_f_abs", abs_curve.mean_f},
        {"nfs", nfs.f}, {"nfs_percent", o->nfs_percent}, {"nfs_edges_in_graph", (double)nfs.edges},
        {"metric_model", f.metric_model}, {"metric_empty", f.metric_empty}, {"pairs", (double)f.n_rows},
    };
    for (size_t i = 0; i < sizeof attrs / sizeof attrs[0] && !rc; i++)
        rc = results_set_attr_f64(r, dir, attrs[i].key, attrs[i].value);
    if (!rc) rc = results_set_attr_str(r, dir, "level", o->level == GRAPH_LEVEL_EDGE ? "edge" : "node");
    if (!rc) rc = results_set_attr_str(r, dir, "ablation", o->ablation == ABLATION_MEAN ? "mean" : "counterfactual");
    if (!rc && o->json_path) {
        if (rank == 0)
            rc = circuit_json_write(o->json_path, &c, m->config.d_model, o->level == GRAPH_LEVEL_EDGE ? mib : NULL,
                                    o->level == GRAPH_LEVEL_NODE ? mib : NULL);
        rc = reduce_agree(rc, comm); /* rank 0 alone wrote it */
    }
    if (!rc && rank == 0) {
        fprintf(stderr, "%s %s circuits, %s ablation, %lld pairs: CPR %.3f, CMD %.3f, NFS(%g%%) %.3f "
                "(M model %.3f, empty %.3f)\n%s   size %%:", prefix, o->level == GRAPH_LEVEL_EDGE ? "edge" : "node",
                o->ablation == ABLATION_MEAN ? "mean" : "counterfactual", (long long)f.n_rows,
                signed_curve.area_under, abs_curve.area_from_one, o->nfs_percent, nfs.f, f.metric_model,
                f.metric_empty, prefix);
        for (int i = 0; i < abs_curve.n_points; i++) fprintf(stderr, " %7g", abs_curve.points[i].percent);
        fprintf(stderr, "\n%s   f |top|:", prefix);
        for (int i = 0; i < abs_curve.n_points; i++) fprintf(stderr, " %7.3f", abs_curve.points[i].f);
        fprintf(stderr, "\n");
    }
    free(mib);
    circuit_free(&c);
    faithfulness_free(&f);
    graph_free(&g);
    return rc;
}
