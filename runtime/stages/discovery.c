/* discovery.c — implementation of discovery.h. */
#include "stages/discovery.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "circuits/nodes.h"
#include "util/error.h"

static int over_batches(struct llama_model *m, const struct pair_set *set, int exact, struct node_scores *s)
{
    int rc = CIRCD_OK;
    for (int b = 0; b < set->n_batches && !rc; b++)
        rc = exact ? exact_patch_nodes_batch(m, &set->batches[b], s) : atp_nodes_batch(m, &set->batches[b], s);
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
    if (!rows || !names) { free(rows); free(names); return CIRCD_ENOMEM; }
    for (int n = 0; n < s->n_nodes; n++) {
        rows[2 * n] = (float)(s->signed_sum[n] / (double)s->pairs);
        rows[2 * n + 1] = (float)(s->abs_sum[n] / (double)s->pairs);
    }
    uint64_t dims[2] = {(uint64_t)s->n_nodes, 2};
    int rc = results_write_f32(r, path, 2, dims, rows);
    if (!rc) rc = results_set_attr_str(r, path, "nodes", names);
    if (!rc) rc = results_set_attr_str(r, path, "columns", "mean signed score, mean |score|");
    if (!rc) rc = write_metric_attrs(r, path, s->metric_clean_sum, s->metric_corrupt_sum, s->pairs);
    free(rows);
    free(names);
    return rc;
}

/* Exact patching of the sample and the agreement of plain AtP with it. */
static int run_exact(struct llama_model *m, const struct pair_set *sample, struct results_file *r, const char *name,
                     int rank, const char *prefix)
{
    struct node_scores atp, exact;
    char path[256];
    int rc = node_scores_init(&atp, &m->config);
    if (rc) return rc;
    if ((rc = node_scores_init(&exact, &m->config))) { node_scores_free(&atp); return rc; }
    rc = over_batches(m, sample, 0, &atp);
    if (!rc) rc = over_batches(m, sample, 1, &exact);
    snprintf(path, sizeof path, "/atp/%s/exact", name);
    if (!rc) rc = write_node_scores(r, path, &exact);
    if (!rc) {
        double pearson = correlation_pearson(atp.signed_sum, exact.signed_sum, exact.n_nodes);
        double spearman = correlation_spearman(atp.signed_sum, exact.signed_sum, exact.n_nodes);
        rc = results_set_attr_f64(r, path, "pearson_with_atp", pearson);
        if (!rc) rc = results_set_attr_f64(r, path, "spearman_with_atp", spearman);
        if (!rc && rank == 0)
            fprintf(stderr, "%s AtP vs exact patching on %lld pairs, %d nodes: Pearson %.3f, Spearman %.3f\n", prefix,
                    (long long)exact.pairs, exact.n_nodes, pearson, spearman);
    }
    node_scores_free(&atp);
    node_scores_free(&exact);
    return rc;
}

int discovery_run(struct llama_model *m, const struct pair_set *pairs, const struct pair_set *sample,
                  const struct discovery_options *o, struct results_file *r, const char *name, int rank,
                  const char *prefix)
{
    char path[256];
    struct node_scores nodes;
    if (o->ig_steps < 0) return err_set(CIRCD_EINPUT, "ig_steps: found %d, expected >= 0", o->ig_steps);
    int rc = node_scores_init(&nodes, &m->config);
    if (rc) return rc;
    rc = over_batches(m, pairs, 0, &nodes);
    snprintf(path, sizeof path, "/atp/%s/nodes", name);
    if (!rc) rc = write_node_scores(r, path, &nodes);
    if (!rc && rank == 0)
        fprintf(stderr, "%s node AtP over %lld pairs, %d nodes (M clean %.3f, corrupt %.3f)\n", prefix,
                (long long)nodes.pairs, nodes.n_nodes, nodes.metric_clean_sum / (double)nodes.pairs,
                nodes.metric_corrupt_sum / (double)nodes.pairs);
    node_scores_free(&nodes);
    if (!rc && sample && sample->pairs && o->exact_samples) rc = run_exact(m, sample, r, name, rank, prefix);
    return rc;
}
