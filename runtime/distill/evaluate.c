/* evaluate.c — implementation of evaluate.h: the student's NFS, the CKA correspondence of the teacher circuit and
 * interchange-intervention robustness. */
#include "distill/evaluate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "circuits/faithfulness.h"
#include "circuits/nodes.h"
#include "util/error.h"

/* Full hook_z / hook_mlp_out tensors of a [B, T] batch for the layers some components live in (NULL elsewhere), in
 * the layout component_gather and HOOK_PATCH read. */
struct layer_cache {
    int n_layers;
    float **z, **mlp; /* [n_layers] */
};

static void layer_cache_free(struct layer_cache *c)
{
    for (int l = 0; l < c->n_layers; l++) {
        if (c->z) free(c->z[l]);
        if (c->mlp) free(c->mlp[l]);
    }
    free(c->z);
    free(c->mlp);
    memset(c, 0, sizeof *c);
}

/* Buffers of `rows` (= B*T) positions for the layers of components ups[0..n) (entries < 0 are skipped). */
static int layer_cache_alloc(struct layer_cache *c, const struct llama_model *m, const struct circuit_graph *g,
                             const int *ups, int n, size_t rows)
{
    const struct llama_config *cfg = &m->config;
    memset(c, 0, sizeof *c);
    c->n_layers = cfg->n_layers;
    c->z = xcalloc((size_t)cfg->n_layers, sizeof *c->z);
    c->mlp = xcalloc((size_t)cfg->n_layers, sizeof *c->mlp);
    if (!c->z || !c->mlp) { layer_cache_free(c); return CIRCD_ENOMEM; }
    for (int i = 0; i < n; i++) {
        if (ups[i] < 0) continue; /* an unmapped entry */
        struct graph_place p = graph_up_place(g, ups[i]);
        float **slot = p.kind == 1 ? &c->z[p.layer] : &c->mlp[p.layer];
        size_t width = p.kind == 1 ? (size_t)cfg->n_heads * cfg->head_dim : (size_t)cfg->d_model;
        if (*slot) continue;
        *slot = xmalloc(rows * width * sizeof(float));
        if (!*slot) { layer_cache_free(c); return CIRCD_ENOMEM; }
    }
    return CIRCD_OK;
}

/* One forward of tokens [B, T] caching into every buffer of c; leaves the model's hooks cleared. */
static int cached_forward(struct llama_model *m, const struct layer_cache *c, const int32_t *tokens, int B, int T)
{
    int rc = CIRCD_OK;
    model_hooks_clear(m);
    for (int l = 0; l < c->n_layers && !rc; l++) {
        if (c->z[l]) rc = model_hook_add(m, &(struct hook_request){{HOOK_ATTN_Z, l}, HOOK_CACHE, c->z[l], -1, -1});
        if (!rc && c->mlp[l])
            rc = model_hook_add(m, &(struct hook_request){{HOOK_MLP_OUT, l}, HOOK_CACHE, c->mlp[l], -1, -1});
    }
    if (!rc) rc = model_forward(m, tokens, NULL, B, T);
    model_hooks_clear(m);
    return rc;
}

int32_t distill_argmax_at(const struct llama_model *m, int b, int t)
{
    int V = m->config.vocab_size;
    const float *row = model_logits(m) + ((size_t)b * m->T + t) * V;
    int32_t best = 0;
    for (int v = 1; v < V; v++)
        if (row[v] > row[best]) best = v;
    return best;
}

static int check_components(const struct circuit_graph *g, const int *ups, int n)
{
    if (n < 1) return err_set(CIRCD_EINPUT, "distill evaluation: the teacher circuit has no components (%d)", n);
    if (!ups) return err_set(CIRCD_EINPUT, "distill evaluation: no teacher components given");
    for (int i = 0; i < n; i++) {
        if (ups[i] < 1 || ups[i] >= g->n_up)
            return err_set(CIRCD_EINPUT, "distill evaluation: teacher component %d is %d, not a head or MLP of the "
                           "teacher's graph (1..%d)", i, ups[i], g->n_up - 1);
        for (int j = 0; j < i; j++)
            if (ups[j] == ups[i]) {
                char name[64];
                return err_set(CIRCD_EINPUT, "distill evaluation: teacher component %s (%d) is listed twice",
                               graph_up_name(g, ups[i], name, sizeof name), ups[i]);
            }
    }
    return CIRCD_OK;
}

/* node_values[n_nodes] = the student's mean signed node AtP over every pair. */
static int student_atp(struct llama_model *m, const struct pair_set *pairs, double *node_values)
{
    struct node_scores s;
    int rc = node_scores_init(&s, &m->config);
    for (int k = 0; k < pairs->n_batches && !rc; k++) rc = atp_nodes_batch(m, &pairs->batches[k], &s);
    if (!rc && s.pairs < 1) rc = err_set(CIRCD_EINPUT, "distill evaluation: the pair set has no pairs");
    for (int n = 0; n < s.n_nodes && !rc; n++) node_values[n] = s.signed_sum[n] / (double)s.pairs;
    node_scores_free(&s);
    return rc;
}

static int student_nfs(const struct llama_model *m, const struct circuit_graph *g, const struct pair_set *pairs,
                       const double *node_values, double percent, struct distill_eval *out)
{
    struct faithfulness f;
    struct faith_point point;
    memset(&f, 0, sizeof f);
    double *scores = xmalloc((size_t)g->n_up * sizeof *scores);
    if (!scores) return CIRCD_ENOMEM;
    graph_scores_from_nodes(g, node_values, scores);
    int rc = faithfulness_init(&f, m, g, pairs->batches, pairs->n_batches, ABLATION_COUNTERFACTUAL);
    if (!rc) rc = faithfulness_nfs(&f, GRAPH_LEVEL_NODE, scores, 1, percent, &point);
    if (!rc) {
        out->nfs = point.f;
        out->nfs_nodes = point.nodes;
        out->nfs_metric_model = f.metric_model;
        out->nfs_metric_empty = f.metric_empty;
    }
    faithfulness_free(&f);
    free(scores);
    return rc;
}

/* ups[0..k) = upstream indices of the k nodes with the largest |node_values| (ties and NaN: the lower node). */
static int top_candidates(const struct circuit_graph *g, const double *node_values, int n_nodes, int k, int *ups)
{
    unsigned char *taken = xcalloc((size_t)n_nodes, 1);
    if (!taken) return CIRCD_ENOMEM;
    for (int i = 0; i < k; i++) {
        int best = -1;
        double best_abs = -1;
        for (int n = 0; n < n_nodes; n++) {
            double a = fabs(node_values[n]);
            if (isnan(a)) a = -0.5; /* after every real score, before nothing */
            if (!taken[n] && a > best_abs) { best = n; best_abs = a; }
        }
        taken[best] = 1;
        ups[i] = graph_up_from_node(g, best);
    }
    free(taken);
    return CIRCD_OK;
}

/* Appends the rows t < pairs[b].length of every buffer of `batch` (a cached [pb->B, pb->T] forward) to the same
 * buffers of `all` (one [1, total rows] pseudo-batch) from row row0; returns the rows appended. */
static size_t append_rows(const struct llama_model *m, const struct layer_cache *batch, const struct layer_cache *all,
                          const struct pair_batch *pb, size_t row0)
{
    size_t zw = (size_t)m->config.n_heads * m->config.head_dim, mw = (size_t)m->config.d_model, row = row0;
    for (int b = 0; b < pb->B; b++)
        for (int t = 0; t < pb->T && t < pb->pairs[b].length; t++, row++) {
            size_t r = (size_t)b * pb->T + t;
            for (int l = 0; l < all->n_layers; l++) {
                if (all->z[l]) memcpy(all->z[l] + row * zw, batch->z[l] + r * zw, zw * sizeof(float));
                if (all->mlp[l]) memcpy(all->mlp[l] + row * mw, batch->mlp[l] + r * mw, mw * sizeof(float));
            }
        }
    return row - row0;
}

/* One model's hook_z / hook_mlp_out rows (every position before each pair's length, all batches) for components
 * ups[0..n), as a [1, rows] pseudo-batch in `all` (allocated here). */
static int cache_clean_rows(struct llama_model *m, const struct circuit_graph *g, const int *ups, int n,
                            const struct pair_set *pairs, size_t rows, struct layer_cache *all)
{
    struct layer_cache batch;
    memset(&batch, 0, sizeof batch);
    int rc = layer_cache_alloc(all, m, g, ups, n, rows);
    size_t row0 = 0;
    for (int k = 0; k < pairs->n_batches && !rc; k++) {
        const struct pair_batch *pb = &pairs->batches[k];
        rc = layer_cache_alloc(&batch, m, g, ups, n, (size_t)pb->B * pb->T);
        if (!rc) rc = cached_forward(m, &batch, pb->clean, pb->B, pb->T);
        if (!rc) row0 += append_rows(m, &batch, all, pb, row0);
        layer_cache_free(&batch);
    }
    return rc;
}

/* Strategy A's map of the teacher circuit onto the student candidates by CKA over the clean rows of every pair. */
static int correspondence(struct llama_model *teacher, const struct circuit_graph *gt, const int *tc, int n_teacher,
                          struct llama_model *student, const struct circuit_graph *gs, const int *candidates, int k,
                          const struct pair_set *pairs, struct component_map *map)
{
    struct layer_cache t, s;
    size_t rows = 0;
    for (int i = 0; i < pairs->n_batches; i++) {
        const struct pair_batch *pb = &pairs->batches[i];
        for (int b = 0; b < pb->B; b++) rows += (size_t)(pb->pairs[b].length < pb->T ? pb->pairs[b].length : pb->T);
    }
    if (rows > (size_t)INT32_MAX)
        return err_set(CIRCD_EINPUT, "distill evaluation: %zu activation rows for CKA (at most %d)", rows, INT32_MAX);
    memset(&s, 0, sizeof s);
    int rc = cache_clean_rows(teacher, gt, tc, n_teacher, pairs, rows, &t);
    if (!rc) rc = cache_clean_rows(student, gs, candidates, k, pairs, rows, &s);
    if (!rc) {
        struct component_source ts = {teacher, gt, t.z, t.mlp}, ss = {student, gs, s.z, s.mlp};
        rc = component_map_build(&ts, tc, n_teacher, &ss, candidates, k, 1, (int)rows, NULL, 0, map, NULL);
    }
    layer_cache_free(&t);
    layer_cache_free(&s);
    return rc;
}

/* The HOOK_PATCH of component u (all positions) from a cache of the corrupt forward. */
static struct hook_request component_patch(const struct circuit_graph *g, int u, const struct layer_cache *c)
{
    struct graph_place p = graph_up_place(g, u);
    if (p.kind == 1) return (struct hook_request){{HOOK_ATTN_Z, p.layer}, HOOK_PATCH, c->z[p.layer], p.head, -1};
    return (struct hook_request){{HOOK_MLP_OUT, p.layer}, HOOK_PATCH, c->mlp[p.layer], -1, -1};
}

/* Forward of the first B rows of pb's clean prompts with `patch` (NULL: none); argmax at each metric position. */
static int argmax_forward(struct llama_model *m, const struct pair_batch *pb, int B, const struct hook_request *patch,
                          int32_t *argmax)
{
    model_hooks_clear(m);
    int rc = patch ? model_hook_add(m, patch) : CIRCD_OK;
    if (!rc) rc = model_forward(m, pb->clean, NULL, B, pb->T);
    model_hooks_clear(m);
    for (int b = 0; b < B && !rc; b++) argmax[b] = distill_argmax_at(m, b, pb->pairs[b].position);
    return rc;
}

struct tally { int64_t cases, agree, changed, agree_changed; };

/* Interchange interventions of every mapped pair on the first B rows of pb. */
static int intervene_batch(struct llama_model *teacher, const struct circuit_graph *gt, struct llama_model *student,
                           const struct circuit_graph *gs, const struct component_map *map, const struct pair_batch *pb,
                           int B, struct tally *tally)
{
    struct layer_cache ct, cs;
    memset(&cs, 0, sizeof cs);
    size_t rows = (size_t)B * pb->T;
    int32_t *base = xmalloc((size_t)B * 3 * sizeof *base), *t_arg = base + B, *s_arg = base + 2 * B;
    if (!base) return CIRCD_ENOMEM;
    int rc = layer_cache_alloc(&ct, teacher, gt, map->teacher, map->n, rows);
    if (rc) { free(base); return rc; }
    rc = layer_cache_alloc(&cs, student, gs, map->student, map->n, rows);
    if (!rc) rc = cached_forward(teacher, &ct, pb->corrupt, B, pb->T);
    if (!rc) rc = cached_forward(student, &cs, pb->corrupt, B, pb->T);
    if (!rc) rc = argmax_forward(teacher, pb, B, NULL, base);
    for (int i = 0; i < map->n && !rc; i++) {
        if (map->student[i] < 0) continue;
        struct hook_request pt = component_patch(gt, map->teacher[i], &ct);
        struct hook_request ps = component_patch(gs, map->student[i], &cs);
        rc = argmax_forward(teacher, pb, B, &pt, t_arg);
        if (!rc) rc = argmax_forward(student, pb, B, &ps, s_arg);
        for (int b = 0; b < B && !rc; b++) {
            int changed = t_arg[b] != base[b], agree = s_arg[b] == t_arg[b];
            tally->cases++;
            tally->agree += agree;
            tally->changed += changed;
            tally->agree_changed += changed && agree;
        }
    }
    layer_cache_free(&ct);
    layer_cache_free(&cs);
    free(base);
    return rc;
}

static int robustness(struct llama_model *teacher, const struct circuit_graph *gt, struct llama_model *student,
                      const struct circuit_graph *gs, const struct component_map *map, const struct pair_set *pairs,
                      int n_interventions, struct distill_eval *out)
{
    struct tally tally = {0};
    int rc = CIRCD_OK, left = n_interventions;
    for (int k = 0; k < pairs->n_batches && left > 0 && !rc; k++) {
        const struct pair_batch *pb = &pairs->batches[k];
        int B = pb->B < left ? pb->B : left;
        if (B > 0) rc = intervene_batch(teacher, gt, student, gs, map, pb, B, &tally);
        left -= B;
    }
    if (rc) return rc;
    out->n_cases = tally.cases;
    if (tally.cases > 0) {
        out->robustness = (double)tally.agree / (double)tally.cases;
        out->robustness_teacher_changed = (double)tally.changed / (double)tally.cases;
    }
    if (tally.changed > 0) out->robustness_on_changed = (double)tally.agree_changed / (double)tally.changed;
    return CIRCD_OK;
}

static int check_arguments(const struct llama_model *teacher, const struct llama_model *student,
                           const struct pair_set *pairs, double nfs_percent, int n_interventions)
{
    if (!pairs || pairs->n_batches < 1 || !pairs->batches)
        return err_set(CIRCD_EINPUT, "distill evaluation: no metric pairs");
    if (!(nfs_percent >= 0 && nfs_percent <= 100))
        return err_set(CIRCD_EINPUT, "distill evaluation: NFS size %g%% is outside [0, 100]", nfs_percent);
    if (n_interventions < 0)
        return err_set(CIRCD_EINPUT, "distill evaluation: %d intervention pairs", n_interventions);
    if (teacher->config.vocab_size != student->config.vocab_size)
        return err_set(CIRCD_EINPUT, "distill evaluation: teacher vocabulary %d, student %d (must be the same)",
                       teacher->config.vocab_size, student->config.vocab_size);
    for (int k = 0; k < pairs->n_batches; k++)
        if (pairs->batches[k].B < 1)
            return err_set(CIRCD_EINPUT, "distill evaluation: batch %d of the pairs is empty", k);
    return CIRCD_OK;
}

int distill_evaluate(struct llama_model *teacher, struct llama_model *student, const struct pair_set *pairs,
                     const int *teacher_components, int n_teacher, double nfs_percent, int n_interventions,
                     struct distill_eval *out, struct component_map *map_out)
{
    struct circuit_graph gt, gs;
    struct component_map map;
    memset(&map, 0, sizeof map);
    *out = (struct distill_eval){.nfs = NAN, .nfs_metric_model = NAN, .nfs_metric_empty = NAN, .mean_cka = NAN,
                                 .robustness = NAN, .robustness_teacher_changed = NAN,
                                 .robustness_on_changed = NAN};
    if (map_out) memset(map_out, 0, sizeof *map_out);
    int rc = check_arguments(teacher, student, pairs, nfs_percent, n_interventions);
    if (rc) return rc;
    if ((rc = graph_init(&gt, &teacher->config))) return rc;
    if ((rc = graph_init(&gs, &student->config))) { graph_free(&gt); return rc; }
    rc = check_components(&gt, teacher_components, n_teacher);

    int n_nodes = gs.n_up - 1;
    int k = rc ? 0 : n_teacher <= n_nodes / 2 ? 2 * n_teacher : n_nodes; /* n_teacher <= n_nodes once checked */
    double *node_values = rc ? NULL : xmalloc((size_t)n_nodes * sizeof *node_values);
    int *candidates = rc ? NULL : xmalloc((size_t)k * sizeof *candidates);
    if (!rc && (!node_values || !candidates)) rc = CIRCD_ENOMEM;
    if (!rc) rc = student_atp(student, pairs, node_values);
    if (!rc) rc = student_nfs(student, &gs, pairs, node_values, nfs_percent, out);
    if (!rc) rc = top_candidates(&gs, node_values, n_nodes, k, candidates);
    if (!rc) {
        out->n_candidates = k;
        rc = correspondence(teacher, &gt, teacher_components, n_teacher, student, &gs, candidates, k, pairs, &map);
    }
    if (!rc) {
        double sum = 0;
        for (int i = 0; i < map.n; i++)
            if (map.student[i] >= 0) { sum += map.similarity[i]; out->n_mapped++; }
        if (out->n_mapped > 0) out->mean_cka = sum / out->n_mapped;
        rc = robustness(teacher, &gt, student, &gs, &map, pairs, n_interventions, out);
    }
    if (!rc && map_out) *map_out = map;
    else component_map_free(&map);
    free(node_values);
    free(candidates);
    graph_free(&gt);
    graph_free(&gs);
    return rc;
}
