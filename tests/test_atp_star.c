/* test_atp_star.c — AtP* node scores on a tiny random GQA model: plain AtP of q/k/v (and z/MLP) nodes equals the
 * directional derivative of M measured by patching; exact patching of a k node equals a hand-made patch; the QK
 * fix's pattern equals the pattern of a forward with that q/k patched, so its score is sum dP · dM/dP; on a model
 * with saturated attention the QK fix is much closer to exact patching than plain AtP; GradDrop's AtP_l equals the
 * directional derivative with layer l's attn_out and mlp_out frozen (dP · dM/dP with that gradient for QK-fixed
 * q/k nodes), and GradDrop is their mean |.|; option errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "circuits/atp_star.h"
#include "testing.h"
#include "util/error.h"

enum { B = 3, T = 6 };

static struct llama_config config(int n_layers)
{
    return (struct llama_config){.vocab_size = 13, .d_model = 16, .n_layers = n_layers, .n_heads = 4,
                                 .n_kv_heads = 2, .head_dim = 4, .d_ff = 24, .max_seq = 16, .rope_theta = 10000,
                                 .norm_eps = 1e-5f, .bos_token_id = -1, .eos_token_id = -1};
}

static void random_model(struct llama_model *m, uint64_t seed)
{
    testing_randomize_model(m, seed, 0.4f, 0.0f);
}

static void random_pairs(struct pair_batch *pb, int vocab, uint64_t seed)
{
    struct rng r;
    rng_seed(&r, seed);
    pb->B = B;
    pb->T = T;
    for (int i = 0; i < B * T; i++) pb->clean[i] = pb->corrupt[i] = (int32_t)rng_below(&r, (uint64_t)vocab);
    for (int b = 0; b < B; b++) { /* the counterfactual changes one or two prompt tokens */
        pb->corrupt[b * T + 1] = (pb->clean[b * T + 1] + 3) % vocab;
        if (b == 2) pb->corrupt[b * T + 3] = (pb->clean[b * T + 3] + 5) % vocab;
        pb->pairs[b] = (struct arith_metric_pair){.length = T - 1 - b % 2, .position = T - 2 - b % 2,
                                                  .prefix_len = 0, .clean_id = 2 + b, .cf_id = 7};
    }
}

static struct hook_id node_hook(struct atp_node node)
{
    static const enum hook_kind kinds[] = {HOOK_ATTN_Z, HOOK_MLP_OUT, HOOK_ATTN_Q, HOOK_ATTN_K, HOOK_ATTN_V};
    return (struct hook_id){kinds[node.kind], node.layer};
}

/* One forward of tokens with the n hook requests registered; with backward, also the backward of the sum of M. */
static void run_hooks(struct llama_model *m, const struct pair_batch *pb, const int32_t *tokens,
                      const struct hook_request *requests, int n, int backward)
{
    static float dlogits[B * T * 13];
    model_hooks_clear(m);
    for (int i = 0; i < n; i++) CHECK(model_hook_add(m, &requests[i]) == 0);
    CHECK(model_forward(m, tokens, NULL, B, T) == 0);
    if (backward) {
        memset(dlogits, 0, sizeof dlogits);
        metric_dlogits(pb, 13, dlogits);
        model_zero_grad(m);
        CHECK(model_backward(m, dlogits) == 0);
    }
    model_hooks_clear(m);
}

/* One request: cache the value at id, or (HOOK_GRAD) read dM/d(value) at id into out. */
static void run_hook(struct llama_model *m, const struct pair_batch *pb, const int32_t *tokens, struct hook_id id,
                     enum hook_action action, float *out)
{
    struct hook_request r = {id, action, out, -1, -1};
    run_hooks(m, pb, tokens, &r, 1, action == HOOK_GRAD);
}

/* The patches that freeze layer l's attn_out and mlp_out to their clean values (held in attn, mlp). */
static void freeze_requests(struct llama_model *m, const struct pair_batch *pb, int l, float *attn, float *mlp,
                            struct hook_request out[2])
{
    run_hook(m, pb, pb->clean, (struct hook_id){HOOK_ATTN_OUT, l}, HOOK_CACHE, attn);
    run_hook(m, pb, pb->clean, (struct hook_id){HOOK_MLP_OUT, l}, HOOK_CACHE, mlp);
    out[0] = (struct hook_request){{HOOK_ATTN_OUT, l}, HOOK_PATCH, attn, -1, -1};
    out[1] = (struct hook_request){{HOOK_MLP_OUT, l}, HOOK_PATCH, mlp, -1, -1};
}

/* M per row after a clean forward with `node` patched to clean + eps (corrupt - clean) and, for freeze >= 0, layer
 * freeze's attn_out and mlp_out frozen. */
static void patched_rows(struct llama_model *m, const struct pair_batch *pb, struct atp_node node, const float *clean,
                         const float *corrupt, double eps, int freeze, double rows[B])
{
    static float buf[4096], frozen_attn[4096], frozen_mlp[4096];
    size_t n = hook_numel(node_hook(node), &m->config, B, T);
    for (size_t i = 0; i < n; i++) buf[i] = (float)(clean[i] + eps * ((double)corrupt[i] - clean[i]));
    struct hook_request requests[3] = {{node_hook(node), HOOK_PATCH, buf, node.head, -1}};
    if (freeze >= 0) freeze_requests(m, pb, freeze, frozen_attn, frozen_mlp, requests + 1);
    run_hooks(m, pb, pb->clean, requests, freeze >= 0 ? 3 : 1, 0);
    metric_rows(m, pb, rows);
}

/* d/d eps of M per row along clean -> corrupt of node (central difference), with layer `freeze` frozen or not. */
static void directional_derivative(struct llama_model *m, const struct pair_batch *pb, struct atp_node node,
                                   int freeze, double out[B])
{
    static float clean[4096], corrupt[4096];
    const double eps = 1e-2;
    double up[B], down[B];
    run_hook(m, pb, pb->clean, node_hook(node), HOOK_CACHE, clean);
    run_hook(m, pb, pb->corrupt, node_hook(node), HOOK_CACHE, corrupt);
    patched_rows(m, pb, node, clean, corrupt, eps, freeze, up);
    patched_rows(m, pb, node, clean, corrupt, -eps, freeze, down);
    for (int b = 0; b < B; b++) out[b] = (up[b] - down[b]) / (2 * eps);
}

static int near(double got, double want, double atol, double rtol)
{
    return fabs(got - want) <= atol + rtol * fabs(want);
}

/* (d) plain AtP = directional derivative for every node, q/k/v included; (e) exact patching of a k node. */
static void test_plain_and_exact(struct llama_model *m, const struct pair_batch *pb)
{
    struct atp_star_options opt = {1, 0, 0};
    struct atp_star_scores atp, exact;
    CHECK(atp_star_scores_init(&atp, &m->config, &opt) == 0 && atp_star_scores_init(&exact, &m->config, &opt) == 0);
    CHECK(atp.n_nodes == 2 * (4 + 1) + 2 * (4 + 2 + 2));
    CHECK(atp_star_batch(m, pb, &atp) == 0);
    CHECK(atp_star_exact_batch(m, pb, &exact) == 0);
    CHECK(atp.pairs == B && exact.pairs == B && atp.qk_signed_sum == NULL && atp.grad_drop_sum == NULL);
    CHECK_NEAR(atp.metric_clean_sum, exact.metric_clean_sum, 1e-5);
    CHECK_NEAR(atp.metric_corrupt_sum, exact.metric_corrupt_sum, 1e-5);
    int bad = 0, counted[5] = {0};
    for (int n = 0; n < atp.n_nodes; n++) {
        struct atp_node node = atp_star_node(&atp, n);
        double d[B], sum = 0;
        directional_derivative(m, pb, node, -1, d);
        for (int b = 0; b < B; b++) sum += d[b];
        char name[64];
        if (!near(atp.signed_sum[n], sum, 2e-3, 2e-2)) {
            bad++;
            fprintf(stderr, "%s: AtP %.6g, directional derivative %.6g\n", atp_star_node_name(&atp, n, name, 64),
                    atp.signed_sum[n], sum);
        }
        counted[node.kind] += fabs(sum) > 1e-3; /* a node kind whose derivatives all vanish would test nothing */
        CHECK(atp.abs_sum[n] >= fabs(atp.signed_sum[n]) - 1e-12);
    }
    CHECK(bad == 0);
    for (int k = 0; k < 5; k++) CHECK(counted[k] >= 2);

    /* (e) kv head 1 of layer 1 by hand: the clean hook_k with that head's columns from the corrupt run */
    static float clean_k[4096], corrupt_k[4096];
    struct hook_id k1 = {HOOK_ATTN_K, 1};
    run_hook(m, pb, pb->clean, k1, HOOK_CACHE, clean_k);
    run_hook(m, pb, pb->corrupt, k1, HOOK_CACHE, corrupt_k);
    for (int row = 0; row < B * T; row++)
        for (int e = 0; e < 4; e++) clean_k[(row * 2 + 1) * 4 + e] = corrupt_k[(row * 2 + 1) * 4 + e];
    struct hook_request whole = {k1, HOOK_PATCH, clean_k, -1, -1};
    double base[B], patched[B], by_hand = 0;
    run_hooks(m, pb, pb->clean, NULL, 0, 0);
    metric_rows(m, pb, base);
    run_hooks(m, pb, pb->clean, &whole, 1, 0);
    metric_rows(m, pb, patched);
    for (int b = 0; b < B; b++) by_hand += patched[b] - base[b];
    int k_node = 2 * 5 + 2 * 4 + 1 * 2 + 1; /* z, MLP, q nodes, then k nodes of layer 0 (2) and kv head 1 */
    char name[64];
    CHECK(strcmp(atp_star_node_name(&exact, k_node, name, sizeof name), "blocks.1.attn.hook_k[1]") == 0);
    CHECK(fabs(by_hand) > 1e-3);
    CHECK_NEAR(exact.signed_sum[k_node], by_hand, 1e-5 + 1e-5 * fabs(by_hand));

    struct atp_star_agreement a, same;
    CHECK(atp_star_agreement(&atp, &exact, &a) == 0);
    atp_star_agreement_print(stdout, &a);
    CHECK(a.n_nodes == atp.n_nodes && a.n_qk_nodes == 2 * (4 + 2));
    CHECK_NEAR(a.atp_pearson, correlation_pearson(atp.signed_sum, exact.signed_sum, atp.n_nodes), 1e-12);
    CHECK(fabs(a.atp_pearson) > 0.1 && isnan(a.qk_fix_pearson) && isnan(a.grad_drop_spearman));
    CHECK(atp_star_agreement(&exact, &exact, &same) == 0);
    CHECK_NEAR(same.atp_pearson, 1, 1e-12);
    CHECK_NEAR(same.abs_atp_spearman, 1, 1e-12);
    exact.pairs++;
    CHECK(atp_star_agreement(&atp, &exact, &a) == CIRCD_EINPUT);
    atp_star_scores_free(&atp);
    atp_star_scores_free(&exact);
}

/* (a) the QK fix's pattern is the pattern of the patched forward; its score is sum (P_patched - P_clean) dM/dP,
 * and with GradDrop dM/dP is read with the dropped layer frozen. */
static void test_qk_fix_pattern(struct llama_model *m, const struct pair_batch *pb)
{
    struct atp_star_options opt = {1, 1, 1};
    struct atp_star_scores s;
    CHECK(atp_star_scores_init(&s, &m->config, &opt) == 0);
    CHECK(atp_star_batch(m, pb, &s) == 0);
    static float clean_pattern[B * 4 * T * T], patched_pattern[B * 4 * T * T], dpattern[B * 4 * T * T];
    static float rot_q[2][B * T * 16], rot_k[2][B * T * 8], head_pattern[B * T * T], scratch[2 * B * T * 4];
    static float corrupt_value[B * T * 16], dpattern_dropped[B * 4 * T * T], frozen_attn[4096], frozen_mlp[4096];
    /* GradDrop with the QK fix: AtP_1 of a layer-0 q/k node is dP · dM/dP with layer 1's outputs frozen */
    double *dropped = calloc((size_t)B * s.n_nodes, sizeof(double));
    CHECK(atp_star_grad_drop_layer(m, pb, &s, 1, dropped) == 0);
    struct hook_request frozen[3];
    freeze_requests(m, pb, 1, frozen_attn, frozen_mlp, frozen);
    frozen[2] = (struct hook_request){{HOOK_ATTN_PATTERN, 0}, HOOK_GRAD, dpattern_dropped, -1, -1};
    run_hooks(m, pb, pb->clean, frozen, 3, 1);
    int checked = 0, differs = 0, nonzero_dropped = 0;
    for (int n = 0; n < s.n_nodes; n++) {
        struct atp_node node = atp_star_node(&s, n);
        if (node.kind != ATP_NODE_Q && node.kind != ATP_NODE_K) {
            CHECK(s.qk_signed_sum[n] == s.signed_sum[n]); /* other nodes keep plain AtP */
            continue;
        }
        int l = node.layer;
        struct hook_id pattern_id = {HOOK_ATTN_PATTERN, l};
        run_hook(m, pb, pb->clean, pattern_id, HOOK_CACHE, clean_pattern);
        run_hook(m, pb, pb->clean, pattern_id, HOOK_GRAD, dpattern);
        for (int run = 0; run < 2; run++) { /* 0 clean, 1 corrupt */
            const int32_t *tokens = run ? pb->corrupt : pb->clean;
            run_hook(m, pb, tokens, (struct hook_id){HOOK_ATTN_ROT_Q, l}, HOOK_CACHE, rot_q[run]);
            run_hook(m, pb, tokens, (struct hook_id){HOOK_ATTN_ROT_K, l}, HOOK_CACHE, rot_k[run]);
        }
        run_hook(m, pb, pb->corrupt, node_hook(node), HOOK_CACHE, corrupt_value);
        struct hook_request patched[2] = {{node_hook(node), HOOK_PATCH, corrupt_value, node.head, -1},
                                          {pattern_id, HOOK_CACHE, patched_pattern, -1, -1}};
        run_hooks(m, pb, pb->clean, patched, 2, 0);
        double score = 0, score_dropped = 0, got_dropped = 0; /* over every head: unaffected ones have dP = 0 */
        for (size_t i = 0; i < sizeof clean_pattern / sizeof(float); i++) {
            score += ((double)patched_pattern[i] - clean_pattern[i]) * dpattern[i];
            score_dropped += ((double)patched_pattern[i] - clean_pattern[i]) * dpattern_dropped[i];
        }
        CHECK(fabs(score) > 1e-4);
        CHECK_NEAR(s.qk_signed_sum[n], score, 1e-6 + 1e-5 * fabs(score));
        for (int b = 0; b < B; b++) got_dropped += dropped[b * s.n_nodes + n];
        if (l == 0) { /* dropping layer 1 changes every layer-0 score; layer-0 q nodes' changes sit at the */
            differs += fabs(score_dropped - score) > 1e-2; /* corrupted positions and reach M only through */
            nonzero_dropped += fabs(score_dropped) > 1e-2; /* layer 1's attention: their AtP_1 is 0 */
        }
        CHECK_NEAR(got_dropped, l == 0 ? score_dropped : 0, 1e-6 + 1e-5 * fabs(score_dropped));
        int first = node.kind == ATP_NODE_Q ? node.head : 2 * node.head, count = node.kind == ATP_NODE_Q ? 1 : 2;
        for (int h = first; h < first + count; h++) {
            attention_head_pattern(head_pattern, rot_q[node.kind == ATP_NODE_Q], rot_k[node.kind == ATP_NODE_K],
                                   &m->config, B, T, h, scratch);
            for (int b = 0; b < B; b++)
                CHECK_CLOSE(head_pattern + b * T * T, patched_pattern + (b * 4 + h) * T * T, T * T, 1e-6, 1e-7);
        }
        checked++;
    }
    CHECK(checked == 2 * (4 + 2));
    CHECK(differs == 4 + 2 && nonzero_dropped == 2);
    free(dropped);
    char name[64];
    CHECK(strcmp(atp_star_node_name(&s, 10 + 4 + 2, name, sizeof name), "blocks.1.attn.hook_q[2]") == 0);
    CHECK(strcmp(atp_star_node_name(&s, 10 + 8 + 2, name, sizeof name), "blocks.1.attn.hook_k[0]") == 0);
    CHECK(strcmp(atp_star_node_name(&s, 10 + 8 + 4 + 3, name, sizeof name), "blocks.1.attn.hook_v[1]") == 0);
    CHECK(strcmp(atp_star_node_name(&s, 9, name, sizeof name), "blocks.1.hook_mlp_out") == 0);
    atp_star_scores_free(&s);
}

/* (b) saturated attention (W_q scaled up): the corrupt input flips argmaxes of near one-hot patterns; the QK fix
 * recovers what plain AtP's vanishing softmax gradient misses. o_proj and down_proj are scaled down so that what
 * follows the pattern is close to linear: the QK fix linearises only there, plain AtP also through the softmax. */
static void scale_weights(struct llama_model *m, float q_scale, float branch_scale)
{
    for (int l = 0; l < m->config.n_layers; l++)
        for (size_t i = 0; i < (size_t)16 * 16; i++) {
            m->w.layers[l].wq[i] *= q_scale;
            m->w.layers[l].wo[i] *= branch_scale;
        }
    for (int l = 0; l < m->config.n_layers; l++)
        for (size_t i = 0; i < (size_t)16 * 24; i++) m->w.layers[l].w_down[i] *= branch_scale;
}

static void test_qk_fix_saturated(struct llama_model *m, const struct pair_batch *pb, float q_scale, float branch_scale)
{
    scale_weights(m, q_scale, branch_scale);
    static float clean_pattern[B * 4 * T * T], corrupt_pattern[B * 4 * T * T];
    int flips = 0, rows = 0;
    double peak = 0;
    for (int l = 0; l < m->config.n_layers; l++) {
        run_hook(m, pb, pb->clean, (struct hook_id){HOOK_ATTN_PATTERN, l}, HOOK_CACHE, clean_pattern);
        run_hook(m, pb, pb->corrupt, (struct hook_id){HOOK_ATTN_PATTERN, l}, HOOK_CACHE, corrupt_pattern);
        for (int r = 0; r < B * 4 * T; r++) {
            const float *p = clean_pattern + r * T, *q = corrupt_pattern + r * T;
            int pa = 0, qa = 0;
            for (int j = 1; j < T; j++) {
                if (p[j] > p[pa]) pa = j;
                if (q[j] > q[qa]) qa = j;
            }
            flips += pa != qa;
            peak += p[pa];
            rows++;
        }
    }
    printf("saturated model: mean top attention weight %.3f, %d of %d argmaxes flip\n", peak / rows, flips, rows);
    CHECK(peak / rows > 0.9);
    CHECK(flips >= 3);

    struct atp_star_options opt = {1, 1, 0};
    struct atp_star_scores atp, exact;
    CHECK(atp_star_scores_init(&atp, &m->config, &opt) == 0 && atp_star_scores_init(&exact, &m->config, &opt) == 0);
    CHECK(atp_star_batch(m, pb, &atp) == 0);
    CHECK(atp_star_exact_batch(m, pb, &exact) == 0);
    double plain_error = 0, fixed_error = 0, size = 0;
    for (int n = 0; n < atp.n_nodes; n++) {
        enum atp_node_kind kind = atp_star_node(&atp, n).kind;
        if (kind != ATP_NODE_Q && kind != ATP_NODE_K) continue;
        plain_error += fabs(atp.signed_sum[n] - exact.signed_sum[n]);
        fixed_error += fabs(atp.qk_signed_sum[n] - exact.signed_sum[n]);
        size += fabs(exact.signed_sum[n]);
    }
    printf("q/k nodes: sum |exact| %.4g, sum |AtP - exact| %.4g, sum |QK-fixed - exact| %.4g\n", size, plain_error,
           fixed_error);
    CHECK(plain_error > 0.5 * size); /* plain AtP is far off here ... */
    CHECK(fixed_error < 0.25 * plain_error); /* ... and the QK fix much closer */
    struct atp_star_agreement a;
    CHECK(atp_star_agreement(&atp, &exact, &a) == 0);
    atp_star_agreement_print(stdout, &a);
    CHECK(a.qk_fix_pearson > a.atp_qk_pearson);
    atp_star_scores_free(&atp);
    atp_star_scores_free(&exact);
    scale_weights(m, 1 / q_scale, 1 / branch_scale);
}

/* (c) GradDrop: AtP_l(n) per pair = the directional derivative with layer l's attn_out and mlp_out frozen to their
 * clean values; 0 for nodes of layer l; GradDrop = mean over l of |AtP_l| per pair. */
static void test_grad_drop(struct llama_model *m, const struct pair_batch *pb)
{
    struct atp_star_options opt = {1, 0, 1};
    struct atp_star_scores s;
    CHECK(atp_star_scores_init(&s, &m->config, &opt) == 0);
    CHECK(atp_star_batch(m, pb, &s) == 0);
    int L = m->config.n_layers, nn = s.n_nodes, bad = 0, nonzero = 0;
    double *per_layer = calloc((size_t)L * B * nn, sizeof(double));
    CHECK(atp_star_grad_drop_layer(m, pb, &s, L, per_layer) == CIRCD_EINPUT);
    for (int l = 0; l < L; l++) {
        double *out = per_layer + (size_t)l * B * nn;
        CHECK(atp_star_grad_drop_layer(m, pb, &s, l, out) == 0);
        for (int n = 0; n < nn; n++) {
            struct atp_node node = atp_star_node(&s, n);
            double d[B];
            if (node.layer == l) {
                for (int b = 0; b < B; b++) CHECK(out[b * nn + n] == 0);
                continue;
            }
            directional_derivative(m, pb, node, l, d);
            for (int b = 0; b < B; b++) {
                nonzero += fabs(d[b]) > 1e-3;
                if (near(out[b * nn + n], d[b], 1e-3, 2e-2)) continue;
                char name[64];
                bad++;
                fprintf(stderr, "%s, layer %d dropped, pair %d: AtP_l %.6g, directional derivative %.6g\n",
                        atp_star_node_name(&s, n, name, sizeof name), l, b, out[b * nn + n], d[b]);
            }
        }
    }
    CHECK(bad == 0);
    CHECK(nonzero > nn);
    /* Dropping layer 1 leaves layer-0 nodes only their direct path: AtP_1 differs from plain AtP there. */
    double moved = 0;
    for (int n = 0; n < nn; n++)
        if (atp_star_node(&s, n).layer == 0)
            for (int b = 0; b < B; b++) moved += fabs(per_layer[(size_t)B * nn + b * nn + n]);
    CHECK(moved > 1e-3);
    for (int n = 0; n < nn; n++) {
        double want = 0;
        for (int l = 0; l < L; l++)
            for (int b = 0; b < B; b++) want += fabs(per_layer[(size_t)l * B * nn + b * nn + n]) / (L - 1);
        CHECK_NEAR(s.grad_drop_sum[n], want, 1e-9 + 1e-9 * want);
    }
    free(per_layer);
    atp_star_scores_free(&s);
}

/* (f) option errors. */
static void test_errors(void)
{
    struct llama_config one = config(1);
    struct atp_star_scores s;
    struct atp_star_options drop = {1, 1, 1}, qk_alone = {0, 1, 0}, plain = {0, 0, 1};
    CHECK(atp_star_scores_init(&s, &one, &drop) == CIRCD_EINPUT);
    CHECK(strstr(err_msg(), "GradDrop") && strstr(err_msg(), "at least 2 layers"));
    CHECK(s.signed_sum == NULL);
    plain.grad_drop = 0;
    CHECK(atp_star_scores_init(&s, &one, &plain) == 0 && s.n_nodes == 4 + 1);
    atp_star_scores_free(&s);
    struct llama_config two = config(2);
    CHECK(atp_star_scores_init(&s, &two, &qk_alone) == CIRCD_EINPUT);
    CHECK(strstr(err_msg(), "attention_inputs") != NULL);
}

int main(void)
{
    struct llama_config cfg = config(2);
    struct llama_model m;
    CHECK(model_create(&m, &cfg) == 0);
    CHECK(model_enable_grads(&m) == 0);
    random_model(&m, 77);
    struct pair_batch pb;
    CHECK(pair_batch_alloc(&pb, B, T) == 0);
    random_pairs(&pb, cfg.vocab_size, 78);

    test_plain_and_exact(&m, &pb);
    test_qk_fix_pattern(&m, &pb);
    test_grad_drop(&m, &pb);
    test_qk_fix_saturated(&m, &pb, 8.0f, 0.02f);
    test_errors();

    pair_batch_free(&pb);
    model_free(&m);
    return testing_finish();
}
