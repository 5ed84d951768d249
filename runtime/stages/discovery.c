/* discovery.c — implementation of discovery.h. Every pass over a pair set is sharded: each rank of the communicator
 * scores its contiguous block of batches in order (sums in double precision), the per-rank sums are added in rank
 * order (sched/reduce.h), and every collective call (reductions, results writes) is preceded by an agreement on
 * errors, so one failed rank makes every rank return an error. */
#include "stages/discovery.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "circuits/atp_star.h"
#include "circuits/circuit_json.h"
#include "circuits/edges.h"
#include "circuits/nodes.h"
#include "sched/reduce.h"
#include "util/error.h"

/* The block of set's batches this rank scores. */
static void my_batches(const struct pair_set *set, MPI_Comm comm, int *lo, int *hi)
{
    size_t first, end;
    shard_range_comm((size_t)set->n_batches, comm, &first, &end);
    *lo = (int)first;
    *hi = (int)end;
}

/* Adds the per-rank sums of a score vector pair (n each), the two metric sums and the pair count over comm, in rank
 * order (through NCCL when the model computes on a GPU: sched/reduce.h reduce_sum_f64_on); rc: this rank's result
 * so far (agreed first). */
static int reduce_sums(int rc, double *signed_sum, double *abs_sum, size_t n, double *metric_clean_sum,
                       double *metric_corrupt_sum, int64_t *pairs, MPI_Comm comm, const struct kernels_backend *k)
{
    double tail[3] = {*metric_clean_sum, *metric_corrupt_sum, (double)*pairs};
    rc = reduce_agree(rc, comm);
    if (!rc) rc = reduce_sum_f64_on(signed_sum, n, comm, k);
    if (!rc) rc = reduce_sum_f64_on(abs_sum, n, comm, k);
    if (!rc) rc = reduce_sum_f64_on(tail, 3, comm, k);
    if (!rc) {
        *metric_clean_sum = tail[0];
        *metric_corrupt_sum = tail[1];
        *pairs = (int64_t)tail[2];
    }
    return rc;
}

/* exact: exact patching; else AtP, integrated over ig_steps when > 0. Sharded over comm, summed into s. */
static int over_batches(struct llama_model *m, const struct pair_set *set, int exact, int ig_steps,
                        struct node_scores *s, MPI_Comm comm)
{
    int rc = CIRCD_OK, lo, hi;
    my_batches(set, comm, &lo, &hi);
    for (int b = lo; b < hi && !rc; b++)
        rc = exact ? exact_patch_nodes_batch(m, &set->batches[b], s)
                   : atp_nodes_ig_batch(m, &set->batches[b], ig_steps, s);
    return reduce_sums(rc, s->signed_sum, s->abs_sum, (size_t)s->n_nodes, &s->metric_clean_sum,
                       &s->metric_corrupt_sum, &s->pairs, comm, m->backend);
}

int discovery_node_scores(struct llama_model *m, const struct pair_set *set, int ig_steps, MPI_Comm comm,
                          struct node_scores *s)
{
    return over_batches(m, set, 0, ig_steps, s, comm);
}

int discovery_edge_scores(struct llama_model *m, const struct pair_set *set, int ig_steps, MPI_Comm comm,
                          struct edge_scores *s)
{
    int rc = CIRCD_OK, lo, hi;
    my_batches(set, comm, &lo, &hi);
    for (int b = lo; b < hi && !rc; b++) rc = eap_edges_batch(m, &set->batches[b], ig_steps, s);
    return reduce_sums(rc, s->signed_sum, s->abs_sum, (size_t)s->g->n_up * s->g->n_down, &s->metric_clean_sum,
                       &s->metric_corrupt_sum, &s->pairs, comm, m->backend);
}

/* reduce_sums over every sum an AtP* score set holds (its options are the same on every rank). */
static int reduce_atp_star(int rc, struct atp_star_scores *s, MPI_Comm comm, const struct kernels_backend *k)
{
    size_t n = (size_t)s->n_nodes;
    rc = reduce_sums(rc, s->signed_sum, s->abs_sum, n, &s->metric_clean_sum, &s->metric_corrupt_sum, &s->pairs, comm,
                     k);
    if (!rc && s->qk_signed_sum) rc = reduce_sum_f64_on(s->qk_signed_sum, n, comm, k);
    if (!rc && s->qk_abs_sum) rc = reduce_sum_f64_on(s->qk_abs_sum, n, comm, k);
    if (!rc && s->grad_drop_sum) rc = reduce_sum_f64_on(s->grad_drop_sum, n, comm, k);
    return rc;
}

/* Newline-separated names of a node_scores vector, malloc'd. */
static char *node_names(const struct node_scores *s)
{
    size_t cap = (size_t)s->n_nodes * 40 + 1, len = 0;
    char *names = xmalloc(cap);
    if (!names) return NULL;
    names[0] = '\0';
    for (int n = 0; n < s->n_nodes; n++) {
        char name[40];
        len += (size_t)snprintf(names + len, cap - len, "%s\n", node_name(s, n, name, sizeof name));
    }
    return names;
}

static int write_metric_attrs(struct results_file *r, const char *path, double clean_sum, double corrupt_sum,
                              int64_t pairs)
{
    int rc = results_set_attr_f64(r, path, "pairs", (double)pairs);
    if (!rc) rc = results_set_attr_f64(r, path, "metric_clean", clean_sum / (double)pairs);
    if (!rc) rc = results_set_attr_f64(r, path, "metric_corrupt", corrupt_sum / (double)pairs);
    return rc;
}

static int write_node_scores(struct results_file *r, const char *path, const struct node_scores *s)
{
    float *rows = xmalloc((size_t)s->n_nodes * 2 * sizeof *rows);
    char *names = node_names(s);
    int rc = reduce_agree(rows && names ? CIRCD_OK : CIRCD_ENOMEM, r->comm);
    if (rc) { free(rows); free(names); return rc; }
    for (int n = 0; n < s->n_nodes; n++) {
        rows[2 * n] = (float)(s->signed_sum[n] / (double)s->pairs);
        rows[2 * n + 1] = (float)(s->abs_sum[n] / (double)s->pairs);
    }
    uint64_t dims[2] = {(uint64_t)s->n_nodes, 2};
    rc = results_write_f32(r, path, 2, dims, rows);
    if (!rc) rc = results_set_attr_str(r, path, "nodes", names);
    if (!rc) rc = results_set_attr_str(r, path, "columns", "mean signed score, mean |score|");
    if (!rc) rc = write_metric_attrs(r, path, s->metric_clean_sum, s->metric_corrupt_sum, s->pairs);
    free(rows);
    free(names);
    return rc;
}

/* Exact patching of the sample and the agreement of plain AtP with it. `exact` holds the exact effects when AtP*
 * already patched these nodes (its first n_nodes are the same nodes in the same order); else it is computed here. */
static int run_exact(struct llama_model *m, const struct pair_set *sample, struct node_scores *exact,
                     struct results_file *r, const char *name, const char *prefix)
{
    struct node_scores atp;
    char path[256];
    int rc = reduce_agree(node_scores_init(&atp, &m->config), r->comm);
    if (rc) { node_scores_free(&atp); return rc; }
    rc = over_batches(m, sample, 0, 0, &atp, r->comm);
    if (!rc && !exact->pairs) rc = over_batches(m, sample, 1, 0, exact, r->comm);
    snprintf(path, sizeof path, "/atp/%s/exact", name);
    if (!rc) rc = write_node_scores(r, path, exact);
    if (!rc) {
        double pearson = correlation_pearson(atp.signed_sum, exact->signed_sum, exact->n_nodes);
        double spearman = correlation_spearman(atp.signed_sum, exact->signed_sum, exact->n_nodes);
        rc = results_set_attr_f64(r, path, "pearson_with_atp", pearson);
        if (!rc) rc = results_set_attr_f64(r, path, "spearman_with_atp", spearman);
        if (!rc && r->rank == 0)
            fprintf(stderr, "%s AtP vs exact patching on %lld pairs, %d nodes: Pearson %.3f, Spearman %.3f\n", prefix,
                    (long long)exact->pairs, exact->n_nodes, pearson, spearman);
    }
    node_scores_free(&atp);
    return rc;
}

/* AtP* on the exact sample: every variant the options ask for next to exact patching of the same nodes, stored as
 * /atp/<name>/atp_star [n_nodes, 5] (AtP, QK-fixed, GradDrop, exact, |exact| per-pair means; NaN where off) with
 * the agreement as attributes. */
static int run_atp_star(struct llama_model *m, const struct pair_set *sample, const struct discovery_options *o,
                        struct results_file *r, const char *name, const char *prefix,
                        struct node_scores *exact_nodes)
{
    /* GradDrop needs two layers to drop one of; a one-layer model gets the other variants. */
    struct atp_star_options so = {o->qk_fix, o->qk_fix, o->grad_drop && m->config.n_layers >= 2};
    if (o->grad_drop && !so.grad_drop && r->rank == 0)
        fprintf(stderr, "%s GradDrop skipped: the model has one layer\n", prefix);
    if (!so.qk_fix && !so.grad_drop) return CIRCD_OK;
    struct atp_star_scores est, exact;
    struct atp_star_agreement ag;
    memset(&exact, 0, sizeof exact);
    int rc = atp_star_scores_init(&est, &m->config, &so), lo, hi;
    if (!rc) rc = atp_star_scores_init(&exact, &m->config, &so);
    my_batches(sample, r->comm, &lo, &hi);
    for (int b = lo; b < hi && !rc; b++) {
        rc = atp_star_batch(m, &sample->batches[b], &est);
        if (!rc) rc = atp_star_exact_batch(m, &sample->batches[b], &exact);
    }
    rc = reduce_atp_star(rc, &est, r->comm, m->backend);
    rc = reduce_atp_star(rc, &exact, r->comm, m->backend);
    if (!rc) rc = atp_star_agreement(&est, &exact, &ag);
    if (!rc) { /* the z / MLP nodes' exact effects, for /atp/<name>/exact */
        for (int i = 0; i < exact_nodes->n_nodes; i++) {
            exact_nodes->signed_sum[i] = exact.signed_sum[i];
            exact_nodes->abs_sum[i] = exact.abs_sum[i];
        }
        exact_nodes->metric_clean_sum = exact.metric_clean_sum;
        exact_nodes->metric_corrupt_sum = exact.metric_corrupt_sum;
        exact_nodes->pairs = exact.pairs;
    }
    int n = est.n_nodes;
    float *rows = rc ? NULL : xmalloc((size_t)n * 5 * sizeof *rows);
    char *names = rc ? NULL : xmalloc((size_t)n * 40 + 1);
    if (!rc && (!rows || !names)) rc = CIRCD_ENOMEM;
    rc = reduce_agree(rc, r->comm);
    if (!rc) {
        double pairs = (double)est.pairs;
        size_t len = 0;
        names[0] = '\0';
        for (int i = 0; i < n; i++) {
            rows[5 * i] = (float)(est.signed_sum[i] / pairs);
            rows[5 * i + 1] = est.qk_signed_sum ? (float)(est.qk_signed_sum[i] / pairs) : NAN;
            rows[5 * i + 2] = est.grad_drop_sum ? (float)(est.grad_drop_sum[i] / pairs) : NAN;
            rows[5 * i + 3] = (float)(exact.signed_sum[i] / pairs);
            rows[5 * i + 4] = (float)(exact.abs_sum[i] / pairs);
            char node[40];
            len += (size_t)snprintf(names + len, (size_t)n * 40 + 1 - len, "%s\n",
                                    atp_star_node_name(&est, i, node, sizeof node));
        }
        char path[256];
        snprintf(path, sizeof path, "/atp/%s/atp_star", name);
        uint64_t dims[2] = {(uint64_t)n, 5};
        rc = results_write_f32(r, path, 2, dims, rows);
        if (!rc) rc = results_set_attr_str(r, path, "nodes", names);
        if (!rc) rc = results_set_attr_str(r, path, "columns", "AtP, QK-fixed AtP, GradDrop, exact, |exact| "
                                           "(per-pair means; NaN where off)");
        const struct { const char *key; double value; } attrs[] = {
            {"atp_pearson", ag.atp_pearson}, {"atp_spearman", ag.atp_spearman},
            {"atp_qk_pearson", ag.atp_qk_pearson}, {"atp_qk_spearman", ag.atp_qk_spearman},
            {"qk_fix_pearson", ag.qk_fix_pearson}, {"qk_fix_spearman", ag.qk_fix_spearman},
            {"abs_atp_pearson", ag.abs_atp_pearson}, {"abs_atp_spearman", ag.abs_atp_spearman},
            {"grad_drop_pearson", ag.grad_drop_pearson}, {"grad_drop_spearman", ag.grad_drop_spearman},
        };
        for (size_t i = 0; i < sizeof attrs / sizeof attrs[0] && !rc; i++)
            rc = results_set_attr_f64(r, path, attrs[i].key, attrs[i].value);
        if (!rc) rc = write_metric_attrs(r, path, est.metric_clean_sum, est.metric_corrupt_sum, est.pairs);
        if (!rc && r->rank == 0) {
            fprintf(stderr, "%s AtP* on %lld pairs: ", prefix, (long long)est.pairs);
            atp_star_agreement_print(stderr, &ag);
        }
    }
    free(rows);
    free(names);
    atp_star_scores_free(&est);
    atp_star_scores_free(&exact);
    return rc;
}

/* Names of the graph's upstream (or downstream) places, newline-separated, malloc'd. */
static char *graph_names(const struct circuit_graph *g, int downstream)
{
    int n = downstream ? g->n_down : g->n_up;
    size_t cap = (size_t)n * 24 + 1, len = 0;
    char *names = xmalloc(cap);
    if (!names) return NULL;
    names[0] = '\0';
    for (int i = 0; i < n; i++) {
        char name[24];
        if (downstream) graph_down_name(g, i, name, sizeof name);
        else graph_up_name(g, i, name, sizeof name);
        len += (size_t)snprintf(names + len, cap - len, "%s\n", name);
    }
    return names;
}

/* HDF5 keeps attributes compact below 64 KiB; bigger name lists are left out (the indices are documented). */
static int set_names_attr(struct results_file *r, const char *path, const char *key, char *names)
{
    int rc = !names ? CIRCD_ENOMEM : strlen(names) < 60000 ? results_set_attr_str(r, path, key, names) : CIRCD_OK;
    free(names);
    return rc;
}

static int write_edge_scores(struct results_file *r, const char *path, const struct edge_scores *s)
{
    const struct circuit_graph *g = s->g;
    size_t n = (size_t)g->n_up * g->n_down;
    float *rows = xmalloc(n * 2 * sizeof *rows);
    int rc = reduce_agree(rows ? CIRCD_OK : CIRCD_ENOMEM, r->comm);
    if (rc) return rc;
    for (size_t i = 0; i < n; i++) {
        rows[2 * i] = g->real[i] ? (float)(s->signed_sum[i] / (double)s->pairs) : NAN;
        rows[2 * i + 1] = g->real[i] ? (float)(s->abs_sum[i] / (double)s->pairs) : NAN;
    }
    uint64_t dims[3] = {(uint64_t)g->n_up, (uint64_t)g->n_down, 2};
    rc = results_write_f32(r, path, 3, dims, rows);
    free(rows);
    if (!rc) rc = set_names_attr(r, path, "upstream", graph_names(g, 0));
    if (!rc) rc = set_names_attr(r, path, "downstream", graph_names(g, 1));
    if (!rc) rc = results_set_attr_str(r, path, "columns", "mean signed score, mean |score| (NaN: not an edge); "
                                       "upstream u = 0 input, 1 + l(H+1) + h head, 1 + l(H+1) + H MLP; downstream "
                                       "l(3H+1) + jH + h q/k/v input j of head h, l(3H+1) + 3H MLP, L(3H+1) logits");
    if (!rc) rc = write_metric_attrs(r, path, s->metric_clean_sum, s->metric_corrupt_sum, s->pairs);
    return rc;
}

/* Mean signed scores as MIB's circuit JSON (MIB's sign: it attributes its loss -M, so -score), everything in the
 * graph. */
static int write_mib_json(const char *path, const struct llama_config *cfg, const struct node_scores *nodes,
                          const struct edge_scores *edges)
{
    struct circuit_graph g;
    struct circuit c;
    int rc = graph_init(&g, cfg);
    if (rc) return rc;
    if ((rc = circuit_alloc(&c, &g))) { graph_free(&g); return rc; }
    circuit_set_full(&c);
    size_t n = (size_t)g.n_up * g.n_down;
    double *scores = xcalloc(edges ? n : (size_t)g.n_up, sizeof *scores);
    if (!scores) rc = CIRCD_ENOMEM;
    if (!rc && edges) {
        for (size_t i = 0; i < n; i++) scores[i] = -edges->signed_sum[i] / (double)edges->pairs;
        rc = circuit_json_write(path, &c, cfg->d_model, scores, NULL);
    } else if (!rc) {
        scores[0] = NAN; /* the input node is not scored: MIB keeps it */
        for (int i = 0; i < nodes->n_nodes; i++)
            scores[graph_up_from_node(&g, i)] = -nodes->signed_sum[i] / (double)nodes->pairs;
        rc = circuit_json_write(path, &c, cfg->d_model, NULL, scores);
    }
    free(scores);
    circuit_free(&c);
    graph_free(&g);
    return rc;
}

/* Edge-level scores over the AtP set, written and (optionally) exported. */
static int run_edges(struct llama_model *m, const struct pair_set *pairs, const struct discovery_options *o,
                     struct results_file *r, const char *name, const char *prefix)
{
    struct circuit_graph g;
    struct edge_scores s;
    char path[256];
    memset(&s, 0, sizeof s);
    int rc = graph_init(&g, &m->config);
    if (!rc && (rc = edge_scores_init(&s, &g))) graph_free(&g);
    if ((rc = reduce_agree(rc, r->comm))) return rc;
    rc = discovery_edge_scores(m, pairs, o->ig_steps, r->comm, &s);
    snprintf(path, sizeof path, "/atp/%s/edges", name);
    if (!rc) rc = write_edge_scores(r, path, &s);
    if (!rc && r->rank == 0) {
        size_t top = 0;
        double best = -1;
        for (size_t i = 0; i < (size_t)g.n_up * g.n_down; i++)
            if (g.real[i] && fabs(s.signed_sum[i]) > best) { best = fabs(s.signed_sum[i]); top = i; }
        char edge[64];
        fprintf(stderr, "%s %s over %lld pairs: %zu edges; strongest %s (%.4f)\n", prefix,
                o->ig_steps ? "EAP-IG" : "EAP", (long long)s.pairs, g.n_edges,
                graph_edge_name(&g, (int)(top / (size_t)g.n_down), (int)(top % (size_t)g.n_down), edge, sizeof edge),
                s.signed_sum[top] / (double)s.pairs);
    }
    if (!rc && o->mib_json && r->rank == 0) rc = write_mib_json(o->mib_json, &m->config, NULL, &s);
    if (!rc && o->mib_json) rc = reduce_agree(rc, r->comm); /* rank 0 alone wrote it */
    edge_scores_free(&s);
    graph_free(&g);
    return rc;
}

int discovery_run(struct llama_model *m, const struct pair_set *pairs, const struct pair_set *sample,
                  const struct discovery_options *o, struct results_file *r, const char *name, MPI_Comm comm,
                  const char *prefix)
{
    char path[256];
    struct node_scores nodes;
    int same = MPI_UNEQUAL, rc = CIRCD_OK;
    MPI_Comm_compare(comm, r->comm, &same);
    memset(&nodes, 0, sizeof nodes);
    if (same != MPI_IDENT && same != MPI_CONGRUENT)
        rc = err_set(CIRCD_EINTERNAL, "discovery: %s is open on another communicator than the discovery's", r->path);
    else if (o->ig_steps < 0)
        rc = err_set(CIRCD_EINPUT, "ig_steps: found %d, expected >= 0", o->ig_steps);
    else if ((o->qk_fix || o->grad_drop) && !o->exact_samples)
        rc = err_set(CIRCD_EINPUT, "the AtP* variants (QK fix, GradDrop) are reported against exact patching: "
                     "they need exact patching samples > 0");
    else
        rc = node_scores_init(&nodes, &m->config);
    /* Past here every rank takes the same branches: all agree before each collective call. */
    const long long same_inputs[] = {pairs->n_batches, (long long)pairs->pairs, sample ? sample->n_batches : -1,
                                     sample ? (long long)sample->pairs : -1, o->level, o->ig_steps, o->qk_fix,
                                     o->grad_drop, (long long)o->exact_samples, !!o->mib_json};
    rc = reduce_agree(rc, comm);
    if (!rc) rc = reduce_check_same(same_inputs, (int)(sizeof same_inputs / sizeof same_inputs[0]),
                                    "discovery: the pair sets or options", comm);
    if (rc) { node_scores_free(&nodes); return rc; }
    if (o->part != DISCOVERY_PATCHING) { /* the scores over the whole set */
        rc = over_batches(m, pairs, 0, o->ig_steps, &nodes, comm);
        snprintf(path, sizeof path, "/atp/%s/nodes", name);
        if (!rc) rc = write_node_scores(r, path, &nodes);
        if (!rc) rc = results_set_attr_i64(r, path, "ig_steps", o->ig_steps);
        if (!rc && o->mib_json && o->level == GRAPH_LEVEL_NODE) {
            if (r->rank == 0) rc = write_mib_json(o->mib_json, &m->config, &nodes, NULL);
            rc = reduce_agree(rc, comm); /* rank 0 alone wrote it */
        }
        if (!rc && r->rank == 0)
            fprintf(stderr, "%s node AtP%s over %lld pairs, %d nodes (M clean %.3f, corrupt %.3f)\n", prefix,
                    o->ig_steps ? "-IG" : "", (long long)nodes.pairs, nodes.n_nodes,
                    nodes.metric_clean_sum / (double)nodes.pairs, nodes.metric_corrupt_sum / (double)nodes.pairs);
        if (!rc && o->level == GRAPH_LEVEL_EDGE) rc = run_edges(m, pairs, o, r, name, prefix);
    }
    node_scores_free(&nodes);
    if (o->part == DISCOVERY_SCORES) return rc;
    /* sample->pairs is the same on every rank: the branch is taken together. */
    if (!rc && sample && sample->pairs && o->exact_samples) {
        struct node_scores exact;
        rc = reduce_agree(node_scores_init(&exact, &m->config), comm);
        if (!rc && (o->qk_fix || o->grad_drop)) rc = run_atp_star(m, sample, o, r, name, prefix, &exact);
        if (!rc) rc = run_exact(m, sample, &exact, r, name, prefix);
        node_scores_free(&exact);
    }
    return rc;
}
