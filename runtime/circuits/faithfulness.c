/* faithfulness.c — implementation of faithfulness.h. */
#include "circuits/faithfulness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

const double faith_mib_percents[10] = {0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100};

int ablation_means_init(struct ablation_means *a, const struct circuit_graph *g, const struct llama_model *m,
                        int max_T)
{
    memset(a, 0, sizeof *a);
    if (max_T < 1) return err_set(CIRCD_EINPUT, "ablation means over %d positions", max_T);
    a->n_up = g->n_up;
    a->d_model = m->config.d_model;
    a->max_T = max_T;
    size_t n = (size_t)a->n_up * max_T * a->d_model;
    a->sum = xcalloc(n, sizeof *a->sum);
    a->count = xcalloc((size_t)max_T, sizeof *a->count);
    a->mean = xcalloc(n, sizeof *a->mean);
    if (!a->sum || !a->count || !a->mean) { ablation_means_free(a); return CIRCD_ENOMEM; }
    return CIRCD_OK;
}

void ablation_means_free(struct ablation_means *a)
{
    free(a->sum);
    free(a->count);
    free(a->mean);
    memset(a, 0, sizeof *a);
}

int ablation_means_add(struct ablation_means *a, struct edge_runner *r, const struct llama_model *m,
                       const struct pair_batch *pb)
{
    if (pb->T > a->max_T)
        return err_set(CIRCD_EINPUT, "ablation means: a batch of %d positions, the means hold %d", pb->T, a->max_T);
    int rc = edge_forward(r, m, pb->clean, pb->B, pb->T, NULL, NULL);
    if (rc) return rc;
    size_t d = (size_t)a->d_model, N = (size_t)pb->B * pb->T;
    for (int b = 0; b < pb->B; b++) {
        int length = pb->pairs[b].length < pb->T ? pb->pairs[b].length : pb->T;
        for (int t = 0; t < length; t++) {
            a->count[t]++;
            for (int u = 0; u < a->n_up; u++) {
                const float *x = r->outputs + ((size_t)u * N + (size_t)b * pb->T + t) * d;
                double *s = a->sum + ((size_t)u * a->max_T + t) * d;
                for (size_t e = 0; e < d; e++) s[e] += x[e];
            }
        }
    }
    return CIRCD_OK;
}

void ablation_means_finish(struct ablation_means *a)
{
    size_t d = (size_t)a->d_model;
    for (int u = 0; u < a->n_up; u++)
        for (int t = 0; t < a->max_T; t++) {
            size_t off = ((size_t)u * a->max_T + t) * d;
            for (size_t e = 0; e < d; e++)
                a->mean[off + e] = a->count[t] ? (float)(a->sum[off + e] / (double)a->count[t]) : 0.0f;
        }
}

void ablation_means_fill(const struct ablation_means *a, int B, int T, float *ablated)
{
    size_t d = (size_t)a->d_model, N = (size_t)B * T;
    for (int u = 0; u < a->n_up; u++)
        for (int b = 0; b < B; b++)
            memcpy(ablated + ((size_t)u * N + (size_t)b * T) * d, a->mean + (size_t)u * a->max_T * d,
                   (size_t)T * d * sizeof(float));
}

void circuit_alpha(const struct circuit *c, float *alpha)
{
    size_t total = (size_t)c->g->n_up * c->g->n_down;
    for (size_t i = 0; i < total; i++) alpha[i] = c->g->real[i] && !c->edges[i] ? 1.0f : 0.0f;
}

void graph_scores_from_nodes(const struct circuit_graph *g, const double *node_values, double *scores)
{
    scores[0] = NAN;
    for (int n = 0; n < g->n_up - 1; n++) scores[graph_up_from_node(g, n)] = node_values[n];
}

/* Mean M over the dataset of each circuit (NULL: nothing ablated): metrics[i]. rc: a local failure so far, passed
 * to the shard reduction instead of evaluating (the other shards must hear of it). */
static int evaluate(struct faithfulness *f, const struct circuit *const *circuits, int n, double *metrics, int rc)
{
    int any_ablation = 0;
    for (int i = 0; i < n; i++) { metrics[i] = 0; any_ablation |= !rc && circuits[i] != NULL; }
    for (int k = f->shard.first; k < f->shard.end && !rc; k++) {
        const struct pair_batch *pb = &f->batches[k];
        if (any_ablation && f->kind == ABLATION_MEAN) ablation_means_fill(&f->means, pb->B, pb->T, f->ablated);
        if (any_ablation && f->kind == ABLATION_COUNTERFACTUAL) {
            rc = edge_forward(&f->runner, f->m, pb->corrupt, pb->B, pb->T, NULL, NULL);
            if (rc) break;
            memcpy(f->ablated, f->runner.outputs, edge_outputs_numel(&f->runner, f->m, pb->B, pb->T) * sizeof(float));
        }
        for (int i = 0; i < n && !rc; i++) {
            if (circuits[i]) circuit_alpha(circuits[i], f->alpha);
            rc = edge_forward(&f->runner, f->m, pb->clean, pb->B, pb->T, circuits[i] ? f->alpha : NULL,
                              circuits[i] ? f->ablated : NULL);
            if (rc) break;
            edge_metric_rows(&f->runner, f->m, pb, f->rows);
            for (int b = 0; b < pb->B; b++) metrics[i] += f->rows[b];
        }
    }
    if (f->shard.reduce) rc = f->shard.reduce(f->shard.ctx, rc, metrics, (size_t)n);
    for (int i = 0; i < n; i++) metrics[i] /= (double)f->n_rows;
    return rc;
}

/* Sharded mean ablation: the means' sums and counts over every shard (rc as for evaluate). */
static int reduce_means(struct faithfulness *f, int rc)
{
    struct ablation_means *a = &f->means;
    double *count = rc ? NULL : xmalloc((size_t)a->max_T * sizeof *count);
    if (!rc && !count) rc = CIRCD_ENOMEM;
    for (int t = 0; t < a->max_T && !rc; t++) count[t] = (double)a->count[t];
    rc = f->shard.reduce(f->shard.ctx, rc, a->sum, (size_t)a->n_up * a->max_T * a->d_model);
    if (!rc) rc = f->shard.reduce(f->shard.ctx, rc, count, (size_t)a->max_T);
    for (int t = 0; t < a->max_T && !rc; t++) a->count[t] = (int64_t)count[t];
    free(count);
    return rc;
}

int faithfulness_init_sharded(struct faithfulness *f, const struct llama_model *m, const struct circuit_graph *g,
                              const struct pair_batch *batches, int n_batches, enum ablation_kind kind,
                              const struct faith_shard *shard)
{
    memset(f, 0, sizeof *f);
    if (n_batches < 1) return err_set(CIRCD_EINPUT, "faithfulness needs at least one batch of pairs");
    if (shard && !(shard->first >= 0 && shard->first <= shard->end && shard->end <= n_batches))
        return err_set(CIRCD_EINPUT, "faithfulness: shard [%d, %d) of %d batches", shard->first, shard->end,
                       n_batches);
    int max_B = 0, max_T = 0;
    for (int k = 0; k < n_batches; k++) {
        if (batches[k].B < 1 || batches[k].T < 1)
            return err_set(CIRCD_EINPUT, "faithfulness: batch %d is empty ([%d, %d])", k, batches[k].B, batches[k].T);
        if (batches[k].B > max_B) max_B = batches[k].B;
        if (batches[k].T > max_T) max_T = batches[k].T;
        f->n_rows += batches[k].B;
    }
    f->shard = shard ? *shard : (struct faith_shard){0, n_batches, NULL, NULL};
    f->m = m;
    f->g = g;
    f->batches = batches;
    f->n_batches = n_batches;
    f->kind = kind;
    /* Local failures from here on travel through the shard reductions (evaluate's rc). */
    int rc = edge_runner_init(&f->runner, m, g, max_B, max_T);
    if (!rc) {
        f->ablated = xmalloc(edge_outputs_numel(&f->runner, m, max_B, max_T) * sizeof(float));
        f->alpha = xmalloc((size_t)g->n_up * g->n_down * sizeof(float));
        f->rows = xmalloc((size_t)max_B * sizeof(double));
        if (!f->ablated || !f->alpha || !f->rows) rc = CIRCD_ENOMEM;
    }
    if (kind == ABLATION_MEAN) {
        if (!rc) rc = ablation_means_init(&f->means, g, m, max_T);
        for (int k = f->shard.first; k < f->shard.end && !rc; k++)
            rc = ablation_means_add(&f->means, &f->runner, m, &batches[k]);
        if (f->shard.reduce && (rc = reduce_means(f, rc))) { faithfulness_free(f); return rc; } /* failed everywhere */
        if (!rc) ablation_means_finish(&f->means);
    }
    struct circuit empty = {0};
    if (!rc) rc = circuit_alloc(&empty, g);
    if (!rc) circuit_set_empty(&empty);
    const struct circuit *both[2] = {NULL, &empty};
    double metrics[2];
    rc = evaluate(f, both, 2, metrics, rc);
    f->metric_model = metrics[0];
    f->metric_empty = metrics[1];
    circuit_free(&empty);
    if (rc) faithfulness_free(f);
    return rc;
}

int faithfulness_init(struct faithfulness *f, const struct llama_model *m, const struct circuit_graph *g,
                      const struct pair_batch *batches, int n_batches, enum ablation_kind kind)
{
    return faithfulness_init_sharded(f, m, g, batches, n_batches, kind, NULL);
}

void faithfulness_free(struct faithfulness *f)
{
    edge_runner_free(&f->runner);
    ablation_means_free(&f->means);
    free(f->ablated);
    free(f->alpha);
    free(f->rows);
    memset(f, 0, sizeof *f);
}

/* faithfulness_metrics after a local failure rc (passed on to the shards). */
static int metrics_of(struct faithfulness *f, const struct circuit *circuits, int n, double *metrics, int rc)
{
    const struct circuit **list = rc ? NULL : xmalloc((size_t)(n > 0 ? n : 1) * sizeof *list);
    if (!rc && !list) rc = CIRCD_ENOMEM;
    for (int i = 0; i < n && !rc; i++) list[i] = &circuits[i];
    rc = evaluate(f, list, n, metrics, rc);
    free(list);
    return rc;
}

int faithfulness_metrics(struct faithfulness *f, const struct circuit *circuits, int n, double *metrics)
{
    return metrics_of(f, circuits, n, metrics, CIRCD_OK);
}

double faithfulness_normalise(const struct faithfulness *f, double metric)
{
    double range = f->metric_model - f->metric_empty;
    return range != 0 ? (metric - f->metric_empty) / range : NAN;
}

void faith_areas(const double *x, const double *y, int n, int log_x, double *area_under, double *area_from_one)
{
    *area_under = *area_from_one = 0;
    int prev = -1;
    for (int i = 0; i < n; i++) {
        if (log_x && !(x[i] > 0)) continue;
        if (prev >= 0) {
            double width = log_x ? log(x[i]) - log(x[prev]) : x[i] - x[prev];
            *area_under += width * (y[prev] + y[i]) / 2;
            *area_from_one += width * (fabs(1 - y[prev]) + fabs(1 - y[i])) / 2;
        }
        prev = i;
    }
}

/* Items the percents count: real edges, or scored nodes. */
static size_t item_count(const struct circuit_graph *g, enum graph_level level, const double *scores)
{
    if (level == GRAPH_LEVEL_EDGE) return g->n_edges;
    size_t n = 0;
    for (int u = 0; u < g->n_up; u++) n += !isnan(scores[u]);
    return n;
}

/* Builds the circuit of each percent into circuits[i] and the size fields of points[i]. */
static void build_circuits(const struct circuit_graph *g, enum graph_level level, const double *scores,
                           int absolute, const double *percents, int n, struct circuit *circuits,
                           struct faith_point *points)
{
    size_t items = item_count(g, level, scores);
    for (int i = 0; i < n; i++) {
        struct faith_point *p = &points[i];
        p->percent = percents[i];
        p->n = (size_t)floor(percents[i] / 100.0 * (double)items);
        if (level == GRAPH_LEVEL_EDGE) circuit_top_edges(&circuits[i], scores, p->n, absolute);
        else circuit_top_nodes(&circuits[i], scores, p->n, absolute);
        p->edges = circuit_edge_count(&circuits[i]);
        p->nodes = circuit_node_count(&circuits[i]);
        p->x = (double)p->edges / (double)g->n_edges;
    }
}

/* Evaluates points[0..n) at percents: builds, runs and normalises. */
static int evaluate_points(struct faithfulness *f, enum graph_level level, const double *scores, int absolute,
                           const double *percents, int n, struct faith_point *points)
{
    if (n < 0 || n > FAITH_MAX_POINTS)
        return err_set(CIRCD_EINPUT, "faithfulness: %d circuit sizes (at most %d)", n, FAITH_MAX_POINTS);
    for (int i = 0; i < n; i++)
        if (!(percents[i] >= 0 && percents[i] <= 100))
            return err_set(CIRCD_EINPUT, "faithfulness: circuit size %g%% is outside [0, 100]", percents[i]);
    struct circuit circuits[FAITH_MAX_POINTS] = {{0}};
    double metrics[FAITH_MAX_POINTS];
    int built = 0, rc = CIRCD_OK;
    for (; built < n && !rc; built++) rc = circuit_alloc(&circuits[built], f->g);
    if (rc) built--; /* the failed one freed itself */
    if (!rc) build_circuits(f->g, level, scores, absolute, percents, n, circuits, points);
    rc = metrics_of(f, circuits, n, metrics, rc);
    for (int i = 0; i < n && !rc; i++) {
        points[i].metric = metrics[i];
        points[i].f = faithfulness_normalise(f, metrics[i]);
    }
    for (int i = 0; i < built; i++) circuit_free(&circuits[i]);
    return rc;
}

int faithfulness_curve(struct faithfulness *f, enum graph_level level, const double *scores, int absolute,
                       const double *percents, int n_percents, int log_x, struct faith_curve *out)
{
    memset(out, 0, sizeof *out);
    int rc = evaluate_points(f, level, scores, absolute, percents, n_percents, out->points);
    if (rc) return rc;
    out->n_points = n_percents;
    double x[FAITH_MAX_POINTS] = {0}, y[FAITH_MAX_POINTS] = {0}, sum = 0;
    for (int i = 0; i < n_percents; i++) {
        x[i] = out->points[i].x;
        y[i] = out->points[i].f;
        sum += y[i];
    }
    faith_areas(x, y, n_percents, log_x, &out->area_under, &out->area_from_one);
    out->mean_f = n_percents ? sum / n_percents : NAN;
    return CIRCD_OK;
}

int faithfulness_nfs(struct faithfulness *f, enum graph_level level, const double *scores, int absolute,
                     double percent, struct faith_point *out)
{
    return evaluate_points(f, level, scores, absolute, &percent, 1, out);
}
