/* test_nodes.c — node attribution patching: each AtP score equals the derivative of M along the straight line from
 * the clean to the corrupt activation of that node (measured by patching clean + eps * (corrupt - clean) and
 * differencing), exact patching equals a hand-made patch, the metric sums match forwards, and the correlations. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "circuits/nodes.h"
#include "testing.h"
#include "util/error.h"

enum { B = 3, T = 6 };

static struct llama_config config(void)
{
    return testing_config(13, 16, 2, 4, 2, 4, 24, 16);
}

/* M of every row after a forward of clean tokens with `node` patched to clean + eps * (corrupt - clean). */
static double patched_metric(struct llama_model *m, const struct pair_batch *pb, int node, const float *clean,
                             const float *corrupt, size_t n, double eps, float *buf)
{
    int L = m->config.n_layers, H = m->config.n_heads;
    for (size_t i = 0; i < n; i++) buf[i] = (float)(clean[i] + eps * ((double)corrupt[i] - clean[i]));
    struct hook_request r = node < L * H ? (struct hook_request){{HOOK_ATTN_Z, node / H}, HOOK_PATCH, buf, node % H, -1}
                                         : (struct hook_request){{HOOK_MLP_OUT, node - L * H}, HOOK_PATCH, buf, -1, -1};
    model_hooks_clear(m);
    CHECK(model_hook_add(m, &r) == 0);
    CHECK(model_forward(m, pb->clean, NULL, pb->B, pb->T) == 0);
    model_hooks_clear(m);
    double rows[B], sum = 0;
    metric_rows(m, pb, rows);
    for (int b = 0; b < pb->B; b++) sum += rows[b];
    return sum;
}

static void cache(struct llama_model *m, const int32_t *tokens, struct hook_id id, float *out)
{
    struct hook_request r = {id, HOOK_CACHE, out, -1, -1};
    model_hooks_clear(m);
    CHECK(model_hook_add(m, &r) == 0);
    CHECK(model_forward(m, tokens, NULL, B, T) == 0);
    model_hooks_clear(m);
}

int main(void)
{
    struct llama_config cfg = config();
    struct llama_model m;
    CHECK(model_create(&m, &cfg) == 0);
    struct rng r;
    rng_seed(&r, 77);
    for (size_t i = 0; i < m.n_params; i++) m.params[i] = 0.4f * rng_normal(&r);
    for (int i = 0; i < m.n_tensors; i++)
        if (m.tensors[i].ndim == 1)
            for (size_t j = 0; j < m.tensors[i].numel; j++) m.params[m.tensors[i].offset + j] = 1.0f;

    struct pair_batch pb;
    CHECK(pair_batch_alloc(&pb, B, T) == 0);
    pb.B = B;
    pb.T = T;
    for (int i = 0; i < B * T; i++) {
        pb.clean[i] = (int32_t)rng_below(&r, (uint64_t)cfg.vocab_size);
        pb.corrupt[i] = pb.clean[i];
    }
    for (int b = 0; b < B; b++) { /* the counterfactual changes one or two prompt tokens */
        pb.corrupt[b * T + 1] = (pb.clean[b * T + 1] + 3) % cfg.vocab_size;
        if (b == 2) pb.corrupt[b * T + 3] = (pb.clean[b * T + 3] + 5) % cfg.vocab_size;
        pb.pairs[b] = (struct arith_metric_pair){.length = T - 1 - b % 2, .position = T - 2 - b % 2,
                                                 .prefix_len = 0, .clean_id = 2 + b, .cf_id = 7};
    }

    struct node_scores atp, exact;
    CHECK(node_scores_init(&atp, &cfg) == 0 && node_scores_init(&exact, &cfg) == 0);
    CHECK(atp.n_nodes == 2 * 4 + 2);
    CHECK(atp_nodes_batch(&m, &pb, &atp) == 0);
    CHECK(exact_patch_nodes_batch(&m, &pb, &exact) == 0);
    CHECK(atp.pairs == B && exact.pairs == B);
    CHECK_NEAR(atp.metric_clean_sum, exact.metric_clean_sum, 1e-5);
    CHECK_NEAR(atp.metric_corrupt_sum, exact.metric_corrupt_sum, 1e-5);

    /* Every node: AtP = d/d eps of M(clean + eps (corrupt - clean)) at 0; exact = that at eps = 1 minus eps = 0. */
    size_t nz = hook_numel((struct hook_id){HOOK_ATTN_Z, 0}, &cfg, B, T);
    size_t nm = hook_numel((struct hook_id){HOOK_MLP_OUT, 0}, &cfg, B, T);
    size_t nmax = nz > nm ? nz : nm;
    float *clean = malloc(nmax * sizeof(float)), *corrupt = malloc(nmax * sizeof(float)), *buf = malloc(nmax * sizeof(float));
    int bad_atp = 0, bad_exact = 0;
    const double eps = 1e-2;
    for (int n = 0; n < atp.n_nodes; n++) {
        int is_head = n < cfg.n_layers * cfg.n_heads;
        struct hook_id id = is_head ? (struct hook_id){HOOK_ATTN_Z, n / cfg.n_heads}
                                    : (struct hook_id){HOOK_MLP_OUT, n - cfg.n_layers * cfg.n_heads};
        size_t count = is_head ? nz : nm;
        cache(&m, pb.clean, id, clean);
        cache(&m, pb.corrupt, id, corrupt);
        double base = patched_metric(&m, &pb, n, clean, corrupt, count, 0, buf);
        double up = patched_metric(&m, &pb, n, clean, corrupt, count, eps, buf);
        double down = patched_metric(&m, &pb, n, clean, corrupt, count, -eps, buf);
        double full = patched_metric(&m, &pb, n, clean, corrupt, count, 1, buf);
        double derivative = (up - down) / (2 * eps);
        char name[64];
        if (fabs(derivative - atp.signed_sum[n]) > 2e-3 + 2e-2 * fabs(derivative)) {
            bad_atp++;
            fprintf(stderr, "%s: AtP %.6g, directional derivative %.6g\n", node_name(&atp, n, name, sizeof name),
                    atp.signed_sum[n], derivative);
        }
        if (fabs((full - base) - exact.signed_sum[n]) > 1e-4 + 1e-4 * fabs(full - base)) {
            bad_exact++;
            fprintf(stderr, "%s: exact %.6g, by hand %.6g\n", node_name(&exact, n, name, sizeof name),
                    exact.signed_sum[n], full - base);
        }
        CHECK(atp.abs_sum[n] >= fabs(atp.signed_sum[n]) - 1e-12);
    }
    CHECK(bad_atp == 0);
    CHECK(bad_exact == 0);
    char name[64];
    CHECK(strcmp(node_name(&atp, 5, name, sizeof name), "blocks.1.attn.hook_z[1]") == 0);
    CHECK(strcmp(node_name(&atp, 9, name, sizeof name), "blocks.1.hook_mlp_out") == 0);

    /* The correlations of AtP with exact patching, and their closed forms. */
    double rho = correlation_pearson(atp.signed_sum, exact.signed_sum, atp.n_nodes);
    double sp = correlation_spearman(atp.signed_sum, exact.signed_sum, atp.n_nodes);
    printf("AtP vs exact over %d nodes: Pearson %.3f, Spearman %.3f\n", atp.n_nodes, rho, sp);
    CHECK(rho > -1.0001 && rho < 1.0001 && sp > -1.0001 && sp < 1.0001);
    double x[5] = {1, 2, 3, 4, 5}, y[5] = {2, 4, 6, 8, 10}, z[5] = {5, 4, 3, 2, 1}, w[5] = {1, 8, 27, 64, 125};
    CHECK_NEAR(correlation_pearson(x, y, 5), 1, 1e-12);
    CHECK_NEAR(correlation_pearson(x, z, 5), -1, 1e-12);
    CHECK_NEAR(correlation_spearman(x, w, 5), 1, 1e-12); /* monotone, not linear */
    CHECK(correlation_pearson(x, w, 5) < 0.99);
    double tie[4] = {1, 1, 2, 3}, lin[4] = {1, 2, 3, 4};
    CHECK_NEAR(correlation_spearman(tie, lin, 4), 0.9486832980505138, 1e-12); /* ranks 1.5,1.5,3,4 */

    free(clean); free(corrupt); free(buf);
    node_scores_free(&atp);
    node_scores_free(&exact);
    pair_batch_free(&pb);
    model_free(&m);
    return testing_finish();
}
