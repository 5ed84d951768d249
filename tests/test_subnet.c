/* test_subnet.c — subnetwork masks (distill/subnet.h) and the masked AdamW step (model_adamw_step_masked): mask
 * sizes against closed forms on a GQA model, the exact rows and columns a head owns, training that leaves every
 * parameter and moment outside the mask bit-identical (weight decay and clipping on), and refused indices. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distill/subnet.h"
#include "testing.h"
#include "util/error.h"

/* GQA 4:2 (two query heads per kv head); n_heads * head_dim = 16 != d_model = 8, so rows and columns differ. */
static struct llama_config gqa_config(void)
{
    return testing_config(13, 8, 2, 4, 2, 4, 10, 8);
}

static size_t count_of(const struct llama_model *m, const struct circuit_graph *g, const int *ups, int n,
                       unsigned char *mask)
{
    CHECK(subnet_mask_build(m, g, ups, n, mask) == 0);
    return subnet_mask_count(mask, m->n_params);
}

static void check_counts(void)
{
    struct llama_config cfg = gqa_config();
    struct llama_model m;
    struct circuit_graph g;
    CHECK(model_create(&m, &cfg) == 0);
    CHECK(graph_init(&g, &cfg) == 0);
    unsigned char *mask = malloc(m.n_params);
    const size_t d = 8, hd = 4, ff = 10, V = 13, L = 2, nh = 4, nkv = 2, qd = nh * hd;
    const size_t head = 2 * hd * d, kv = 2 * hd * d, mlp = 3 * ff * d; /* q rows + o columns; k + v rows */

    int one[] = {graph_up_head(&g, 0, 1)};
    CHECK(count_of(&m, &g, one, 1, mask) == head + kv);
    CHECK(count_of(&m, &g, one, 1, mask) == 4 * 4 * 8);
    int same_group[] = {graph_up_head(&g, 1, 0), graph_up_head(&g, 1, 1)};
    CHECK(count_of(&m, &g, same_group, 2, mask) == 2 * head + kv);
    int mixed[] = {graph_up_head(&g, 0, 0), graph_up_head(&g, 0, 3), graph_up_mlp(&g, 1), graph_up_head(&g, 0, 0)};
    CHECK(count_of(&m, &g, mixed, 4, mask) == 2 * head + 2 * kv + mlp);
    CHECK(count_of(&m, &g, mixed, 0, mask) == 0);

    /* Every component: everything but the embeddings, lm_head and the 2L + 1 norms. */
    int all[16], n_all = 0;
    for (int u = 1; u < g.n_up; u++) all[n_all++] = u;
    CHECK(n_all == (int)(L * (nh + 1)));
    size_t every = count_of(&m, &g, all, n_all, mask);
    CHECK(every == L * (nh * head + nkv * kv + mlp));
    CHECK(every == m.n_params - 2 * V * d - (2 * L + 1) * d);
    CHECK(every == 2 * (2 * 16 * 8 + 2 * 8 * 8 + 3 * 10 * 8));

    /* Head 2 of layer 1 (kv head 1): its q rows, kv head 1's k/v rows, its o_proj columns, nothing else. */
    int h2[] = {graph_up_head(&g, 1, 2)};
    CHECK(subnet_mask_build(&m, &g, h2, 1, mask) == 0);
    const struct layer_params *p = &m.w.layers[1];
    const unsigned char *mq = mask + (p->wq - m.params), *mk = mask + (p->wk - m.params);
    const unsigned char *mv = mask + (p->wv - m.params), *mo = mask + (p->wo - m.params);
    int exact = 1;
    for (size_t i = 0; i < qd * d; i++) exact &= mq[i] == (i / (hd * d) == 2);
    for (size_t i = 0; i < nkv * hd * d; i++) exact &= mk[i] == (i / (hd * d) == 1) && mv[i] == mk[i];
    for (size_t i = 0; i < d * qd; i++) exact &= mo[i] == ((i % qd) / hd == 2);
    CHECK(exact);
    CHECK(subnet_mask_count(mask, m.n_params) == head + kv);
    CHECK(mask[m.w.layers[1].ln1 - m.params] == 0 && mask[m.w.layers[1].ln2 - m.params] == 0);

    free(mask);
    graph_free(&g);
    model_free(&m);
}

/* Bad indices are refused naming the problem, and the mask is left as it was. */
static void check_refused(void)
{
    struct llama_config cfg = gqa_config();
    struct llama_model m;
    struct circuit_graph g, other;
    CHECK(model_create(&m, &cfg) == 0);
    CHECK(graph_init(&g, &cfg) == 0);
    unsigned char *mask = malloc(m.n_params);
    memset(mask, 7, m.n_params);
    int input[] = {graph_up_head(&g, 0, 0), 0};
    CHECK(subnet_mask_build(&m, &g, input, 2, mask) == CIRCD_EINPUT);
    CHECK(strstr(err_msg(), "input node") != NULL);
    int past[] = {g.n_up};
    CHECK(subnet_mask_build(&m, &g, past, 1, mask) == CIRCD_EINPUT);
    CHECK(strstr(err_msg(), "outside [1, 11)") != NULL);
    int negative[] = {-1};
    CHECK(subnet_mask_build(&m, &g, negative, 1, mask) == CIRCD_EINPUT);
    CHECK(subnet_mask_build(&m, &g, NULL, 1, mask) == CIRCD_EINPUT);
    CHECK(subnet_mask_build(&m, &g, negative, -1, mask) == CIRCD_EINPUT);
    struct llama_config three = cfg;
    three.n_layers = 3;
    CHECK(graph_init(&other, &three) == 0);
    int last[] = {graph_up_mlp(&other, 2)};
    CHECK(subnet_mask_build(&m, &other, last, 1, mask) == CIRCD_EINPUT);
    CHECK(strstr(err_msg(), "not the model's") != NULL);
    CHECK(subnet_mask_count(mask, m.n_params) == m.n_params);
    int untouched = 1;
    for (size_t i = 0; i < m.n_params; i++) untouched &= mask[i] == 7;
    CHECK(untouched);
    graph_free(&other);
    free(mask);
    graph_free(&g);
    model_free(&m);
}

static int same_bits(const float *a, const float *b) { return memcmp(a, b, sizeof *a) == 0; }

/* Five training steps with weight decay and clipping on: every parameter and AdamW moment outside the mask keeps
 * its exact bits; every one inside changes. The first step's norm is the masked gradients' norm, and the masked
 * parameters move exactly as the unmasked step moves them when the other gradients are zero. */
static void check_masked_training(void)
{
    struct llama_config cfg = gqa_config();
    struct llama_model m, ref;
    struct circuit_graph g;
    CHECK(model_create(&m, &cfg) == 0 && model_create(&ref, &cfg) == 0);
    CHECK(model_enable_training(&m) == 0 && model_enable_training(&ref) == 0);
    CHECK(graph_init(&g, &cfg) == 0);
    model_init_random(&m, 3);
    memcpy(ref.params, m.params, m.n_params * sizeof(float));
    size_t P = m.n_params;
    unsigned char *mask = malloc(P);
    int ups[] = {graph_up_head(&g, 0, 1), graph_up_mlp(&g, 1)}; /* head 1 trains kv head 0, shared with head 0 */
    CHECK(subnet_mask_build(&m, &g, ups, 2, mask) == 0);
    enum { B = 2, T = 8 };
    int32_t tokens[B * T], targets[B * T];
    for (int i = 0; i < B * T; i++) tokens[i] = (i * 5 + 1) % cfg.vocab_size;
    model_next_token_targets(targets, tokens, B, T);
    float *p0 = testing_copy(m.params, P), *m0 = testing_copy(m.adam_m, P), *v0 = testing_copy(m.adam_v, P);

    struct adamw_config opt = {0.9f, 0.95f, 1e-8f, 0.1f, 0.0f}; /* no clipping: scale 1 in both steps */
    for (int step = 0; step < 5; step++) {
        CHECK(model_forward(&m, tokens, targets, B, T) == 0);
        model_zero_grad(&m);
        CHECK(model_backward(&m, NULL) == 0);
        if (step == 0) {
            double sum = 0;
            for (size_t i = 0; i < P; i++) sum += mask[i] ? (double)m.grads[i] * m.grads[i] : 0.0;
            memcpy(ref.grads, m.grads, P * sizeof(float));
            for (size_t i = 0; i < P; i++)
                if (!mask[i]) ref.grads[i] = 0.0f;
            float norm = model_adamw_step_masked(&m, &opt, 1e-2f, mask);
            CHECK_NEAR(norm, sqrt(sum), 1e-5 * sqrt(sum));
            CHECK(sum > 0);
            CHECK_NEAR(model_adamw_step(&ref, &opt, 1e-2f), sqrt(sum), 1e-5 * sqrt(sum));
            int equal = 1;
            for (size_t i = 0; i < P; i++) equal &= !mask[i] || same_bits(&m.params[i], &ref.params[i]);
            CHECK(equal);
            opt.max_grad_norm = 0.05f; /* from step 2 on, clip by the (masked) norm */
            continue;
        }
        float norm = model_adamw_step_masked(&m, &opt, 1e-2f, mask);
        CHECK(norm > opt.max_grad_norm); /* clipping is active */
    }
    CHECK(m.step == 5);
    size_t kept = 0, moved = 0, selected = subnet_mask_count(mask, P);
    for (size_t i = 0; i < P; i++) {
        int same = same_bits(&m.params[i], &p0[i]) && same_bits(&m.adam_m[i], &m0[i]) &&
                   same_bits(&m.adam_v[i], &v0[i]);
        if (!mask[i]) kept += same;
        else moved += !same_bits(&m.params[i], &p0[i]);
    }
    CHECK(kept == P - selected);
    CHECK(moved == selected);
    CHECK(selected == (2 * 4 * 8 + 2 * 4 * 8) + 3 * 10 * 8);
    /* The kv head of the group moved with head 1; kv head 1 and head 0's q rows did not. */
    const struct layer_params *w = &m.w.layers[0];
    size_t hd_d = 4 * 8, k0 = (size_t)(w->wk - m.params), q0 = (size_t)(w->wq - m.params);
    CHECK(!same_bits(&m.params[k0], &p0[k0]) && !same_bits(&m.params[k0 + hd_d - 1], &p0[k0 + hd_d - 1]));
    CHECK(memcmp(m.params + k0 + hd_d, p0 + k0 + hd_d, hd_d * sizeof(float)) == 0);
    CHECK(memcmp(m.params + q0, p0 + q0, hd_d * sizeof(float)) == 0);
    CHECK(memcmp(m.params, p0, (size_t)cfg.vocab_size * 8 * sizeof(float)) == 0); /* embeddings */

    free(p0);
    free(m0);
    free(v0);
    free(mask);
    graph_free(&g);
    model_free(&m);
    model_free(&ref);
}

int main(void)
{
    check_counts();
    check_refused();
    check_masked_training();
    return testing_finish();
}
