/* test_distill_evaluate.c — the evaluation of a student against its teacher on a tiny random GQA model: a student
 * that is an exact copy maps every circuit component to itself with CKA 1, agrees on every interchange
 * intervention, and has the teacher's own NFS computed directly (and NFS 1 at 100 %); a copy with one circuit head's
 * o_proj columns zeroed loses that head from its candidates (AtP exactly 0), so CKA drops, and its robustness equals
 * a pair-by-pair recount and is below 1; a smaller student leaves teacher components unmapped; refused arguments. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "circuits/faithfulness.h"
#include "circuits/nodes.h"
#include "distill/evaluate.h"
#include "testing.h"
#include "util/error.h"

enum { N_BATCHES = 2, MAX_B = 4, MAX_T = 6, N_TEACHER = 3, N_INTERVENTIONS = 6 };
static const int batch_B[N_BATCHES] = {4, 3}, batch_T[N_BATCHES] = {6, 5};

static struct llama_config teacher_config(void)
{
    return (struct llama_config){.vocab_size = 13, .d_model = 16, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                                 .head_dim = 4, .d_ff = 24, .max_seq = 16, .rope_theta = 10000, .norm_eps = 1e-5f,
                                 .bos_token_id = -1, .eos_token_id = -1};
}

static void randomise(struct llama_model *m, uint64_t seed)
{
    testing_randomize_model(m, seed, 0.4f, 0.0f);
}

static void pairs_init(struct pair_set *ps, struct pair_batch *pb, int vocab)
{
    struct rng r;
    rng_seed(&r, 11);
    for (int k = 0; k < N_BATCHES; k++) {
        CHECK(pair_batch_alloc(&pb[k], MAX_B, MAX_T) == 0);
        pb[k].B = batch_B[k];
        pb[k].T = batch_T[k];
        for (int b = 0; b < pb[k].B; b++) {
            int length = pb[k].T - (b + k) % 2, T = pb[k].T;
            for (int t = 0; t < T; t++) {
                int32_t *clean = &pb[k].clean[b * T + t], *corrupt = &pb[k].corrupt[b * T + t];
                *clean = t < length ? (int32_t)rng_below(&r, (uint64_t)vocab) : 0;
                *corrupt = t == 1 || t == 3 ? (*clean + 1 + b) % vocab : *clean;
            }
            pb[k].pairs[b] = (struct arith_metric_pair){.length = length, .position = length - 1, .prefix_len = 0,
                                                        .clean_id = 2 + b + k, .cf_id = 9};
        }
    }
    *ps = (struct pair_set){.batches = pb, .n_batches = N_BATCHES, .pairs = 7};
}

/* The teacher's mean signed node AtP over the pairs. */
static void node_atp(struct llama_model *m, const struct pair_set *ps, double *values)
{
    struct node_scores s;
    CHECK(node_scores_init(&s, &m->config) == 0);
    for (int k = 0; k < ps->n_batches; k++) CHECK(atp_nodes_batch(m, &ps->batches[k], &s) == 0);
    for (int n = 0; n < s.n_nodes; n++) values[n] = s.signed_sum[n] / (double)s.pairs;
    node_scores_free(&s);
}

/* NFS of m's own node circuit, computed with faithfulness.h directly. */
static double direct_nfs(struct llama_model *m, const struct pair_set *ps, double percent)
{
    struct circuit_graph g;
    struct faithfulness f;
    struct faith_point point = {.f = NAN};
    CHECK(graph_init(&g, &m->config) == 0);
    double values[64], scores[64];
    node_atp(m, ps, values);
    graph_scores_from_nodes(&g, values, scores);
    CHECK(faithfulness_init(&f, m, &g, ps->batches, ps->n_batches, ABLATION_COUNTERFACTUAL) == 0);
    CHECK(faithfulness_nfs(&f, GRAPH_LEVEL_NODE, scores, 1, percent, &point) == 0);
    faithfulness_free(&f);
    graph_free(&g);
    return point.f;
}

static int argmax(const float *row, int V)
{
    int best = 0;
    for (int v = 1; v < V; v++)
        if (row[v] > row[best]) best = v;
    return best;
}

/* Argmax at row b's metric position of a one-row forward of its clean prompt, with component u patched from the
 * corrupt prompt's forward when u > 0. */
static int one_row_argmax(struct llama_model *m, const struct pair_batch *pb, int b, int u)
{
    struct circuit_graph g;
    CHECK(graph_init(&g, &m->config) == 0);
    int T = pb->T, V = m->config.vocab_size;
    float *corrupt = malloc((size_t)T * (m->config.n_heads * m->config.head_dim + m->config.d_model) * sizeof *corrupt);
    struct hook_request patch = {{HOOK_MLP_OUT, 0}, HOOK_PATCH, corrupt, -1, -1};
    if (u > 0) {
        struct graph_place p = graph_up_place(&g, u);
        patch.id = (struct hook_id){p.kind == 1 ? HOOK_ATTN_Z : HOOK_MLP_OUT, p.layer};
        patch.head = p.kind == 1 ? p.head : -1;
        struct hook_request cache = {patch.id, HOOK_CACHE, corrupt, -1, -1};
        model_hooks_clear(m);
        CHECK(model_hook_add(m, &cache) == 0);
        CHECK(model_forward(m, pb->corrupt + (size_t)b * T, NULL, 1, T) == 0);
        model_hooks_clear(m);
        CHECK(model_hook_add(m, &patch) == 0);
    }
    CHECK(model_forward(m, pb->clean + (size_t)b * T, NULL, 1, T) == 0);
    model_hooks_clear(m);
    int best = argmax(m->acts.logits + (size_t)pb->pairs[b].position * V, V);
    free(corrupt);
    graph_free(&g);
    return best;
}

/* Robustness and teacher-changed fractions recounted pair by pair (one-row forwards). */
static void recount(struct llama_model *teacher, struct llama_model *student, const struct pair_set *ps,
                    const struct component_map *map, int n_pairs, double *agree, double *changed)
{
    int cases = 0, n_agree = 0, n_changed = 0, seen = 0;
    for (int k = 0; k < ps->n_batches; k++)
        for (int b = 0; b < ps->batches[k].B && seen < n_pairs; b++, seen++) {
            int base = one_row_argmax(teacher, &ps->batches[k], b, 0);
            for (int i = 0; i < map->n; i++) {
                if (map->student[i] < 0) continue;
                int t = one_row_argmax(teacher, &ps->batches[k], b, map->teacher[i]);
                int s = one_row_argmax(student, &ps->batches[k], b, map->student[i]);
                cases++;
                n_agree += s == t;
                n_changed += t != base;
            }
        }
    *agree = (double)n_agree / cases;
    *changed = (double)n_changed / cases;
}

static void copy_model(struct llama_model *dst, const struct llama_model *src)
{
    CHECK(model_create(dst, &src->config) == 0);
    memcpy(dst->params, src->params, src->n_params * sizeof *src->params);
}

int main(void)
{
    struct llama_config cfg = teacher_config();
    struct llama_model teacher, student;
    struct pair_batch pb[N_BATCHES];
    struct pair_set ps;
    struct circuit_graph g;
    CHECK(model_create(&teacher, &cfg) == 0);
    randomise(&teacher, 5);
    pairs_init(&ps, pb, cfg.vocab_size);
    CHECK(graph_init(&g, &cfg) == 0);

    /* The teacher circuit: its top N_TEACHER nodes by |AtP|; the strongest head among them is zeroed later. */
    double values[64];
    int n_nodes = g.n_up - 1, circuit[N_TEACHER], strongest_head = -1;
    node_atp(&teacher, &ps, values);
    unsigned char taken[64] = {0};
    for (int i = 0; i < N_TEACHER; i++) {
        int best = -1;
        for (int n = 0; n < n_nodes; n++)
            if (!taken[n] && (best < 0 || fabs(values[n]) > fabs(values[best]))) best = n;
        taken[best] = 1;
        circuit[i] = graph_up_from_node(&g, best);
        if (strongest_head < 0 && best < cfg.n_layers * cfg.n_heads) strongest_head = i;
    }
    CHECK(strongest_head >= 0);
    char name[64];
    printf("teacher circuit:");
    for (int i = 0; i < N_TEACHER; i++) printf(" %s", graph_up_name(&g, circuit[i], name, sizeof name));
    printf("\n");

    /* 1. An exact copy. */
    struct distill_eval ev;
    struct component_map map;
    copy_model(&student, &teacher);
    CHECK(distill_evaluate(&teacher, &student, &ps, circuit, N_TEACHER, 30, N_INTERVENTIONS, &ev, &map) == 0);
    printf("copy: NFS %.6f, mean CKA %.9f, robustness %.3f (teacher changed %.3f) over %lld cases\n", ev.nfs,
           ev.mean_cka, ev.robustness, ev.robustness_teacher_changed, (long long)ev.n_cases);
    CHECK(ev.n_mapped == N_TEACHER && ev.n_candidates == 2 * N_TEACHER && map.n == N_TEACHER);
    for (int i = 0; i < map.n; i++) {
        CHECK(map.teacher[i] == circuit[i]);
        CHECK(map.student[i] == circuit[i]);
        CHECK_NEAR(map.similarity[i], 1, 1e-5);
    }
    CHECK_NEAR(ev.mean_cka, 1, 1e-5);
    CHECK(ev.n_cases == (int64_t)N_INTERVENTIONS * N_TEACHER);
    CHECK(ev.robustness == 1.0);
    double agree, changed;
    recount(&teacher, &student, &ps, &map, N_INTERVENTIONS, &agree, &changed);
    CHECK_NEAR(ev.robustness_teacher_changed, changed, 1e-12);
    CHECK(changed > 0); /* some intervention moves the teacher's argmax: agreement is not only clean agreement */
    CHECK(ev.robustness_on_changed == 1.0);
    double nfs30 = direct_nfs(&teacher, &ps, 30);
    CHECK(isfinite(nfs30));
    CHECK_NEAR(ev.nfs, nfs30, 1e-12);
    CHECK(ev.nfs_nodes >= 2 && ev.nfs_nodes <= 1 + 3); /* floor(0.3 * 10) = 3 nodes and the input */
    component_map_free(&map);

    /* NFS of the full circuit is 1; map_out may be NULL; n_interventions beyond the set means every pair. */
    CHECK(distill_evaluate(&teacher, &student, &ps, circuit, N_TEACHER, 100, 1000, &ev, NULL) == 0);
    CHECK_NEAR(ev.nfs, 1, 1e-9);
    CHECK(ev.nfs_nodes == g.n_up);
    CHECK(ev.n_cases == 7 * N_TEACHER && ev.robustness == 1.0);
    CHECK(distill_evaluate(&teacher, &student, &ps, circuit, N_TEACHER, 0, 0, &ev, NULL) == 0);
    CHECK(ev.n_cases == 0 && isnan(ev.robustness) && isnan(ev.robustness_on_changed));
    CHECK_NEAR(ev.nfs, direct_nfs(&teacher, &ps, 0), 1e-12); /* the input alone: its edges to every node stay */

    /* 2. The copy with the strongest circuit head's o_proj columns zeroed. Its z is unchanged but no longer reaches
     * the logits, so its AtP is exactly 0 and it drops out of the top-6 candidates (the other 9 nodes score
     * nonzero): its teacher head must map to another component, whose CKA is below 1, and mean CKA over the three
     * is at most (2 + that) / 3. */
    int zeroed = circuit[strongest_head];
    struct graph_place place = graph_up_place(&g, zeroed);
    int hd = cfg.head_dim, width = cfg.n_heads * hd;
    for (int r = 0; r < cfg.d_model; r++)
        for (int e = 0; e < hd; e++) student.w.layers[place.layer].wo[(size_t)r * width + place.head * hd + e] = 0;
    CHECK(distill_evaluate(&teacher, &student, &ps, circuit, N_TEACHER, 30, N_INTERVENTIONS, &ev, &map) == 0);
    printf("zeroed %s: NFS %.6f, mean CKA %.6f, robustness %.3f (teacher changed %.3f, agreement there %.3f)\n",
           graph_up_name(&g, zeroed, name, sizeof name), ev.nfs, ev.mean_cka, ev.robustness,
           ev.robustness_teacher_changed, ev.robustness_on_changed);
    CHECK(ev.n_mapped == N_TEACHER);
    CHECK(map.student[strongest_head] != zeroed && map.student[strongest_head] >= 1);
    for (int i = 0; i < map.n; i++) CHECK(map.student[i] != zeroed);
    CHECK(map.similarity[strongest_head] < 1 - 1e-3);
    CHECK(ev.mean_cka <= (2 + map.similarity[strongest_head]) / 3 + 1e-9);
    CHECK(ev.mean_cka < 1 - 1e-4);
    recount(&teacher, &student, &ps, &map, N_INTERVENTIONS, &agree, &changed);
    CHECK_NEAR(ev.robustness, agree, 1e-12);
    CHECK_NEAR(ev.robustness_teacher_changed, changed, 1e-12);
    CHECK(ev.robustness < 1);
    component_map_free(&map);
    model_free(&student);

    /* 3. A smaller student (one layer, two heads: 3 nodes) for a 5-component teacher circuit: k = 3, so two teacher
     * components stay unmapped and the mean is over the three mapped ones. */
    struct llama_config small = {.vocab_size = 13, .d_model = 8, .n_layers = 1, .n_heads = 2, .n_kv_heads = 1,
                                 .head_dim = 4, .d_ff = 12, .max_seq = 16, .rope_theta = 10000, .norm_eps = 1e-5f,
                                 .bos_token_id = -1, .eos_token_id = -1};
    CHECK(model_create(&student, &small) == 0);
    randomise(&student, 9);
    int five[5] = {graph_up_head(&g, 0, 0), graph_up_head(&g, 1, 2), graph_up_mlp(&g, 0), graph_up_mlp(&g, 1),
                   graph_up_head(&g, 0, 3)};
    CHECK(distill_evaluate(&teacher, &student, &ps, five, 5, 50, N_INTERVENTIONS, &ev, &map) == 0);
    printf("small student: mean CKA %.4f over %d mapped, robustness %.3f over %lld cases\n", ev.mean_cka, ev.n_mapped,
           ev.robustness, (long long)ev.n_cases);
    CHECK(ev.n_candidates == 3 && ev.n_mapped == 3 && map.n == 5);
    CHECK(ev.n_cases == (int64_t)N_INTERVENTIONS * 3);
    int unmapped = 0;
    double sum = 0;
    for (int i = 0; i < map.n; i++) {
        if (map.student[i] < 0) { unmapped++; CHECK(isnan(map.similarity[i])); continue; }
        CHECK(map.student[i] >= 1 && map.student[i] <= 3);
        sum += map.similarity[i];
    }
    CHECK(unmapped == 2);
    CHECK_NEAR(ev.mean_cka, sum / 3, 1e-12);
    CHECK(ev.mean_cka > 0 && ev.mean_cka <= 1 + 1e-9);
    recount(&teacher, &student, &ps, &map, N_INTERVENTIONS, &agree, &changed);
    CHECK_NEAR(ev.robustness, agree, 1e-12);
    CHECK_NEAR(ev.robustness_teacher_changed, changed, 1e-12);
    component_map_free(&map);

    /* 4. Refused arguments. */
    int bad_input[1] = {0}, bad_range[1] = {g.n_up}, twice[2] = {circuit[0], circuit[0]};
    struct pair_set none = {0};
    CHECK(distill_evaluate(&teacher, &student, &ps, circuit, 0, 30, 1, &ev, NULL) == CIRCD_EINPUT);
    CHECK(distill_evaluate(&teacher, &student, &ps, bad_input, 1, 30, 1, &ev, NULL) == CIRCD_EINPUT);
    CHECK(distill_evaluate(&teacher, &student, &ps, bad_range, 1, 30, 1, &ev, NULL) == CIRCD_EINPUT);
    CHECK(strstr(err_msg(), "not a head or MLP") != NULL);
    CHECK(distill_evaluate(&teacher, &student, &ps, twice, 2, 30, 1, &ev, NULL) == CIRCD_EINPUT);
    CHECK(distill_evaluate(&teacher, &student, &ps, circuit, N_TEACHER, 130, 1, &ev, NULL) == CIRCD_EINPUT);
    CHECK(distill_evaluate(&teacher, &student, &ps, circuit, N_TEACHER, 30, -1, &ev, NULL) == CIRCD_EINPUT);
    CHECK(distill_evaluate(&teacher, &student, &none, circuit, N_TEACHER, 30, 1, &ev, NULL) == CIRCD_EINPUT);
    CHECK(isnan(ev.nfs) && isnan(ev.mean_cka));
    model_free(&student);
    small.vocab_size = 17;
    CHECK(model_create(&student, &small) == 0);
    CHECK(distill_evaluate(&teacher, &student, &ps, circuit, N_TEACHER, 30, 1, &ev, NULL) == CIRCD_EINPUT);

    model_free(&student);
    for (int k = 0; k < N_BATCHES; k++) pair_batch_free(&pb[k]);
    graph_free(&g);
    model_free(&teacher);
    return testing_finish();
}
