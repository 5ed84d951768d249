/* test_edge_forward.c — the edge-ablation forward against the model's own forward and hook patching, on tiny random
 * GQA and MHA models: no ablation reproduces the logits, the captured outputs add up to the residual stream and
 * equal z_h · W_O per head, ablating every edge replays the corrupt run, ablating a node's outgoing edges equals
 * patching its hook_z / hook_mlp_out, single q/k/v edges change only their own head, bad shapes are refused. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "circuits/edge_forward.h"
#include "testing.h"
#include "util/error.h"

enum { B = 3, T = 6, CAP_B = 4, CAP_T = 8, N = B * T };

struct fixture {
    struct llama_config cfg;
    struct llama_model m;
    struct circuit_graph g;
    struct edge_runner r;
    int32_t clean[N], corrupt[N];
    size_t n_out, n_logits, n_alpha;
    float *clean_outputs, *corrupt_outputs; /* edge_forward captures */
    float *clean_logits, *corrupt_logits;   /* model_forward */
    float *alpha;
};

static void fixture_init(struct fixture *f, int n_kv_heads, uint64_t seed)
{
    struct llama_config c = {.vocab_size = 13, .d_model = 16, .n_layers = 2, .n_heads = 4, .n_kv_heads = n_kv_heads,
                             .head_dim = 4, .d_ff = 24, .max_seq = 16, .rope_theta = 10000, .norm_eps = 1e-5f,
                             .bos_token_id = -1, .eos_token_id = -1};
    f->cfg = c;
    CHECK(model_create(&f->m, &c) == 0);
    struct rng r;
    rng_seed(&r, seed);
    /* Norm weights away from 1, so a head normalising with the wrong weight shows. */
    for (size_t i = 0; i < f->m.n_params; i++) f->m.params[i] = 0.4f * rng_normal(&r);
    for (int i = 0; i < f->m.n_tensors; i++)
        if (f->m.tensors[i].ndim == 1)
            for (size_t j = 0; j < f->m.tensors[i].numel; j++)
                f->m.params[f->m.tensors[i].offset + j] = 1.0f + 0.3f * rng_normal(&r);
    for (int i = 0; i < N; i++) {
        f->clean[i] = (int32_t)rng_below(&r, (uint64_t)c.vocab_size);
        f->corrupt[i] = i % T == 1 || i % T == 3 ? (f->clean[i] + 1 + i % 5) % c.vocab_size : f->clean[i];
    }
    CHECK(graph_init(&f->g, &c) == 0);
    CHECK(edge_runner_init(&f->r, &f->m, &f->g, CAP_B, CAP_T) == 0);
    f->n_out = edge_outputs_numel(&f->r, &f->m, B, T);
    f->n_logits = (size_t)N * c.vocab_size;
    f->n_alpha = (size_t)f->g.n_up * f->g.n_down;
    CHECK(f->n_out == (size_t)f->g.n_up * N * c.d_model);
    CHECK(edge_forward(&f->r, &f->m, f->corrupt, B, T, NULL, NULL) == 0);
    f->corrupt_outputs = testing_copy(f->r.outputs, f->n_out);
    CHECK(edge_forward(&f->r, &f->m, f->clean, B, T, NULL, NULL) == 0);
    f->clean_outputs = testing_copy(f->r.outputs, f->n_out);
    CHECK(model_forward(&f->m, f->corrupt, NULL, B, T) == 0);
    f->corrupt_logits = testing_copy(f->m.acts.logits, f->n_logits);
    CHECK(model_forward(&f->m, f->clean, NULL, B, T) == 0);
    f->clean_logits = testing_copy(f->m.acts.logits, f->n_logits);
    f->alpha = calloc(f->n_alpha, sizeof(float));
}

static void fixture_free(struct fixture *f)
{
    free(f->clean_outputs);
    free(f->corrupt_outputs);
    free(f->clean_logits);
    free(f->corrupt_logits);
    free(f->alpha);
    edge_runner_free(&f->r);
    graph_free(&f->g);
    model_free(&f->m);
}

/* Model forward of tokens with one hook registration. */
static void hooked_forward(struct fixture *f, const int32_t *tokens, const struct hook_request *req)
{
    model_hooks_clear(&f->m);
    CHECK(model_hook_add(&f->m, req) == 0);
    CHECK(model_forward(&f->m, tokens, NULL, B, T) == 0);
    model_hooks_clear(&f->m);
}

/* A hook point's value in a forward of tokens (malloc'd). */
static float *cached(struct fixture *f, const int32_t *tokens, struct hook_id id)
{
    float *out = malloc(hook_numel(id, &f->cfg, B, T) * sizeof(float));
    struct hook_request r = {id, HOOK_CACHE, out, -1, -1};
    hooked_forward(f, tokens, &r);
    return out;
}

static void set_outgoing(struct fixture *f, int u, float value)
{
    for (int d = 0; d < f->g.n_down; d++) {
        size_t i = graph_edge_index(&f->g, u, d);
        if (f->g.real[i]) f->alpha[i] = value;
    }
}

/* (a) no ablation reproduces model_forward, with alpha NULL and with alpha all zero. */
static void check_plain(struct fixture *f)
{
    CHECK(edge_forward(&f->r, &f->m, f->clean, B, T, NULL, NULL) == 0);
    CHECK_CLOSE(f->r.logits, f->clean_logits, f->n_logits, 1e-5, 1e-5);
    memset(f->alpha, 0, f->n_alpha * sizeof(float));
    CHECK(edge_forward(&f->r, &f->m, f->clean, B, T, f->alpha, f->corrupt_outputs) == 0);
    CHECK_CLOSE(f->r.logits, f->clean_logits, f->n_logits, 1e-5, 1e-5);
    CHECK_CLOSE(f->r.outputs, f->clean_outputs, f->n_out, 0, 0);
}

/* (b) embedding + every head result + every MLP output = the last resid_post; head results = z_h · W_O slice. */
static void check_outputs(struct fixture *f)
{
    const struct llama_config *c = &f->cfg;
    int d = c->d_model, hd = c->head_dim, qd = c->n_heads * hd, L = c->n_layers;
    float *resid = cached(f, f->clean, (struct hook_id){HOOK_RESID_POST, L - 1});
    float *sum = calloc((size_t)N * d, sizeof(float));
    for (int u = 0; u < f->g.n_up; u++)
        for (size_t i = 0; i < (size_t)N * d; i++) sum[i] += f->clean_outputs[(size_t)u * N * d + i];
    CHECK_CLOSE(sum, resid, (size_t)N * d, 1e-5, 1e-5);
    float *by_hand = malloc((size_t)N * d * sizeof(float));
    for (int l = 0; l < L; l++) {
        float *z = cached(f, f->clean, (struct hook_id){HOOK_ATTN_Z, l});
        const float *wo = f->m.w.layers[l].wo;
        for (int h = 0; h < c->n_heads; h++) {
            for (int i = 0; i < N; i++)
                for (int o = 0; o < d; o++) {
                    double acc = 0;
                    for (int e = 0; e < hd; e++) acc += (double)z[(size_t)i * qd + h * hd + e] * wo[(size_t)o * qd + h * hd + e];
                    by_hand[(size_t)i * d + o] = (float)acc;
                }
            CHECK_CLOSE(f->clean_outputs + (size_t)graph_up_head(&f->g, l, h) * N * d, by_hand, (size_t)N * d, 1e-5, 1e-6);
        }
        free(z);
        float *mlp = cached(f, f->clean, (struct hook_id){HOOK_MLP_OUT, l});
        CHECK_CLOSE(f->clean_outputs + (size_t)graph_up_mlp(&f->g, l) * N * d, mlp, (size_t)N * d, 1e-5, 1e-5);
        free(mlp);
    }
    float *embed = cached(f, f->clean, (struct hook_id){HOOK_EMBED, -1});
    CHECK_CLOSE(f->clean_outputs, embed, (size_t)N * d, 0, 0);
    free(embed);
    free(by_hand);
    free(sum);
    free(resid);
}

/* (c) alpha = 1 on every real edge with the corrupt run's outputs replays the corrupt run. */
static void check_full_ablation(struct fixture *f)
{
    for (size_t i = 0; i < f->n_alpha; i++) f->alpha[i] = f->g.real[i] ? 1.0f : 0.0f;
    CHECK(edge_forward(&f->r, &f->m, f->clean, B, T, f->alpha, f->corrupt_outputs) == 0);
    CHECK_CLOSE(f->r.logits, f->corrupt_logits, f->n_logits, 1e-4, 1e-5);
    /* every node after the input reads only replaced inputs, so it recomputes its corrupt output; the input node's
     * own output stays the clean embedding */
    size_t n_embed = f->n_out / f->g.n_up;
    CHECK_CLOSE(f->r.outputs + n_embed, f->corrupt_outputs + n_embed, f->n_out - n_embed, 1e-4, 1e-5);
    CHECK_CLOSE(f->r.outputs, f->clean_outputs, n_embed, 0, 0);
}

/* (d) ablating all outgoing edges of a node = patching its hook_z head / hook_mlp_out with the corrupt values. */
static void check_nodes_vs_hooks(struct fixture *f)
{
    const struct llama_config *c = &f->cfg;
    int bad = 0;
    for (int l = 0; l < c->n_layers; l++) {
        float *z = cached(f, f->corrupt, (struct hook_id){HOOK_ATTN_Z, l});
        float *mlp = cached(f, f->corrupt, (struct hook_id){HOOK_MLP_OUT, l});
        for (int h = 0; h <= c->n_heads; h++) {
            int u = h < c->n_heads ? graph_up_head(&f->g, l, h) : graph_up_mlp(&f->g, l);
            struct hook_request patch = h < c->n_heads
                ? (struct hook_request){{HOOK_ATTN_Z, l}, HOOK_PATCH, z, h, -1}
                : (struct hook_request){{HOOK_MLP_OUT, l}, HOOK_PATCH, mlp, -1, -1};
            hooked_forward(f, f->clean, &patch);
            memset(f->alpha, 0, f->n_alpha * sizeof(float));
            set_outgoing(f, u, 1.0f);
            CHECK(edge_forward(&f->r, &f->m, f->clean, B, T, f->alpha, f->corrupt_outputs) == 0);
            int before = testing_failed;
            CHECK_CLOSE(f->r.logits, f->m.acts.logits, f->n_logits, 1e-4, 1e-5);
            bad += testing_failed > before;
            /* the patch changes something (else the check above proves nothing) */
            double change = 0;
            for (size_t i = 0; i < f->n_logits; i++) change = fmax(change, fabs(f->r.logits[i] - f->clean_logits[i]));
            CHECK(change > 1e-4);
        }
        free(z);
        free(mlp);
    }
    CHECK(bad == 0);
}

/* x[N, d] = resid_pre of layer 1 with the embedding replaced by the corrupt one, RMSNorm'd with layer 1's ln1, times
 * rows [row0, row0 + hd) of w: the q/k/v of a head whose input -> a1 edge is ablated, computed in double. */
static void ablated_projection(struct fixture *f, const float *w, int row0, float *out)
{
    const struct llama_config *c = &f->cfg;
    int d = c->d_model, hd = c->head_dim;
    float *resid = cached(f, f->clean, (struct hook_id){HOOK_RESID_PRE, 1});
    const float *emb = f->clean_outputs, *emb_corrupt = f->corrupt_outputs, *ln1 = f->m.w.layers[1].ln1;
    double x[64];
    for (int i = 0; i < N; i++) {
        double ss = 0;
        for (int e = 0; e < d; e++) {
            size_t j = (size_t)i * d + e;
            x[e] = (double)resid[j] - emb[j] + emb_corrupt[j];
            ss += x[e] * x[e];
        }
        double rstd = 1.0 / sqrt(ss / d + c->norm_eps);
        for (int o = 0; o < hd; o++) {
            double acc = 0;
            for (int e = 0; e < d; e++) acc += x[e] * rstd * ln1[e] * w[(size_t)(row0 + o) * d + e];
            out[(size_t)i * hd + o] = (float)acc;
        }
    }
    free(resid);
}

/* Patches head `head` (hd columns of a [N, heads*hd] hook tensor of the clean run) with by_hand and runs. */
static void patch_head_columns(struct fixture *f, struct hook_id id, int heads, int head, const float *by_hand)
{
    int hd = f->cfg.head_dim;
    float *value = cached(f, f->clean, id);
    for (int i = 0; i < N; i++) memcpy(value + ((size_t)i * heads + head) * hd, by_hand + (size_t)i * hd, hd * sizeof(float));
    struct hook_request patch = {id, HOOK_PATCH, value, -1, -1};
    hooked_forward(f, f->clean, &patch);
    free(value);
}

static double max_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

/* (e) single edges from the input into layer 1's head 0: q against a hand-computed q patch; k of head 0 differs
 * from k of its group partner, and k of the whole kv group equals a hand-computed hook_k patch; alpha 0.5 equals
 * alpha 1 with the midpoint as the replacement. */
static void check_single_edges(struct fixture *f)
{
    const struct llama_config *c = &f->cfg;
    const struct circuit_graph *g = &f->g;
    int d = c->d_model, hd = c->head_dim, group = c->n_heads / c->n_kv_heads;
    float by_hand[N * 16];
    float *logits = malloc(f->n_logits * sizeof(float));

    memset(f->alpha, 0, f->n_alpha * sizeof(float));
    f->alpha[graph_edge_index(g, 0, graph_down_head(g, 1, 0, GRAPH_Q))] = 1.0f;
    CHECK(edge_forward(&f->r, &f->m, f->clean, B, T, f->alpha, f->corrupt_outputs) == 0);
    ablated_projection(f, f->m.w.layers[1].wq, 0, by_hand);
    patch_head_columns(f, (struct hook_id){HOOK_ATTN_Q, 1}, c->n_heads, 0, by_hand);
    CHECK_CLOSE(f->r.logits, f->m.acts.logits, f->n_logits, 1e-4, 1e-5);
    CHECK(max_diff(f->r.logits, f->clean_logits, f->n_logits) > 1e-3);
    /* only head 0 of layer 1 (and what reads it) changed: layer 0 and the other heads of layer 1 are untouched */
    for (int u = 0; u < g->n_up; u++) {
        struct graph_place p = graph_up_place(g, u);
        size_t off = (size_t)u * N * d;
        double diff = max_diff(f->r.outputs + off, f->clean_outputs + off, (size_t)N * d);
        if (p.layer < 1 || (p.kind == 1 && p.head != 0)) CHECK(diff == 0);
        else CHECK(diff > 1e-4);
    }

    /* two q edges at once, into heads 0 and 1 of layer 1 from different nodes: each head's output is what the
     * single ablation gives (a head of the last layer depends only on its own inputs) */
    size_t e0 = graph_edge_index(g, 0, graph_down_head(g, 1, 0, GRAPH_Q));
    size_t e1 = graph_edge_index(g, graph_up_head(g, 0, 2), graph_down_head(g, 1, 1, GRAPH_Q));
    float *head_out[2];
    for (int k = 0; k < 2; k++) {
        memset(f->alpha, 0, f->n_alpha * sizeof(float));
        f->alpha[k ? e1 : e0] = 1.0f;
        CHECK(edge_forward(&f->r, &f->m, f->clean, B, T, f->alpha, f->corrupt_outputs) == 0);
        head_out[k] = testing_copy(f->r.outputs + (size_t)graph_up_head(g, 1, k) * N * d, (size_t)N * d);
    }
    f->alpha[e0] = 1.0f;
    CHECK(edge_forward(&f->r, &f->m, f->clean, B, T, f->alpha, f->corrupt_outputs) == 0);
    for (int k = 0; k < 2; k++) {
        CHECK_CLOSE(f->r.outputs + (size_t)graph_up_head(g, 1, k) * N * d, head_out[k], (size_t)N * d, 0, 0);
        CHECK(max_diff(head_out[k], f->clean_outputs + (size_t)graph_up_head(g, 1, k) * N * d, (size_t)N * d) > 1e-4);
        free(head_out[k]);
    }

    /* k of head 0 alone, of its partner alone (GQA), and of the whole kv group = a hook_k patch of kv head 0 */
    memset(f->alpha, 0, f->n_alpha * sizeof(float));
    f->alpha[graph_edge_index(g, 0, graph_down_head(g, 1, 0, GRAPH_K))] = 1.0f;
    CHECK(edge_forward(&f->r, &f->m, f->clean, B, T, f->alpha, f->corrupt_outputs) == 0);
    memcpy(logits, f->r.logits, f->n_logits * sizeof(float));
    CHECK(max_diff(logits, f->clean_logits, f->n_logits) > 1e-3);
    if (group > 1) {
        memset(f->alpha, 0, f->n_alpha * sizeof(float));
        f->alpha[graph_edge_index(g, 0, graph_down_head(g, 1, 1, GRAPH_K))] = 1.0f;
        CHECK(edge_forward(&f->r, &f->m, f->clean, B, T, f->alpha, f->corrupt_outputs) == 0);
        CHECK(max_diff(logits, f->r.logits, f->n_logits) > 1e-3);
    }
    memset(f->alpha, 0, f->n_alpha * sizeof(float));
    for (int h = 0; h < group; h++) f->alpha[graph_edge_index(g, 0, graph_down_head(g, 1, h, GRAPH_K))] = 1.0f;
    CHECK(edge_forward(&f->r, &f->m, f->clean, B, T, f->alpha, f->corrupt_outputs) == 0);
    ablated_projection(f, f->m.w.layers[1].wk, 0, by_hand);
    patch_head_columns(f, (struct hook_id){HOOK_ATTN_K, 1}, c->n_kv_heads, 0, by_hand);
    CHECK_CLOSE(f->r.logits, f->m.acts.logits, f->n_logits, 1e-4, 1e-5);

    /* the same for v, and for v of the second kv group */
    int last_kv = c->n_kv_heads - 1;
    memset(f->alpha, 0, f->n_alpha * sizeof(float));
    for (int h = last_kv * group; h < c->n_heads; h++)
        f->alpha[graph_edge_index(g, 0, graph_down_head(g, 1, h, GRAPH_V))] = 1.0f;
    CHECK(edge_forward(&f->r, &f->m, f->clean, B, T, f->alpha, f->corrupt_outputs) == 0);
    ablated_projection(f, f->m.w.layers[1].wv, last_kv * hd, by_hand);
    patch_head_columns(f, (struct hook_id){HOOK_ATTN_V, 1}, c->n_kv_heads, last_kv, by_hand);
    CHECK_CLOSE(f->r.logits, f->m.acts.logits, f->n_logits, 1e-4, 1e-5);

    /* alpha 0.5 on a0.h1 -> a1.h0<v> = alpha 1 with (a + a') / 2 as a0.h1's replacement */
    int u = graph_up_head(g, 0, 1);
    size_t edge = graph_edge_index(g, u, graph_down_head(g, 1, 0, GRAPH_V));
    memset(f->alpha, 0, f->n_alpha * sizeof(float));
    f->alpha[edge] = 0.5f;
    CHECK(edge_forward(&f->r, &f->m, f->clean, B, T, f->alpha, f->corrupt_outputs) == 0);
    memcpy(logits, f->r.logits, f->n_logits * sizeof(float));
    float *midpoint = testing_copy(f->corrupt_outputs, f->n_out);
    for (size_t i = 0; i < (size_t)N * d; i++) {
        size_t j = (size_t)u * N * d + i;
        midpoint[j] = 0.5f * (f->clean_outputs[j] + f->corrupt_outputs[j]);
    }
    f->alpha[edge] = 1.0f;
    CHECK(edge_forward(&f->r, &f->m, f->clean, B, T, f->alpha, midpoint) == 0);
    CHECK_CLOSE(f->r.logits, logits, f->n_logits, 1e-5, 1e-6);
    CHECK(max_diff(logits, f->clean_logits, f->n_logits) > 1e-4);

    /* mostly ablated inputs (built from the replacements): every edge at 1 but the input's at 0.75 = every edge at
     * 1 with 0.75 a' + 0.25 a as the input's replacement (its output a is the clean embedding in every run) */
    for (size_t i = 0; i < f->n_alpha; i++) f->alpha[i] = f->g.real[i] ? 1.0f : 0.0f;
    set_outgoing(f, 0, 0.75f);
    CHECK(edge_forward(&f->r, &f->m, f->clean, B, T, f->alpha, f->corrupt_outputs) == 0);
    memcpy(logits, f->r.logits, f->n_logits * sizeof(float));
    memcpy(midpoint, f->corrupt_outputs, f->n_out * sizeof(float));
    for (size_t i = 0; i < (size_t)N * d; i++) midpoint[i] = 0.75f * f->corrupt_outputs[i] + 0.25f * f->clean_outputs[i];
    set_outgoing(f, 0, 1.0f);
    CHECK(edge_forward(&f->r, &f->m, f->clean, B, T, f->alpha, midpoint) == 0);
    CHECK_CLOSE(f->r.logits, logits, f->n_logits, 1e-4, 1e-5);
    CHECK(max_diff(logits, f->corrupt_logits, f->n_logits) > 1e-4);
    free(midpoint);
    free(logits);
}

/* (f) shapes over the capacity, bad tokens, and weights without replacements are refused. */
static void check_errors(struct fixture *f)
{
    int32_t tokens[CAP_B * (CAP_T + 1)] = {0};
    CHECK(edge_forward(&f->r, &f->m, tokens, CAP_B + 1, 2, NULL, NULL) == CIRCD_EINPUT);
    CHECK(edge_forward(&f->r, &f->m, tokens, 1, CAP_T + 1, NULL, NULL) == CIRCD_EINPUT);
    CHECK(edge_forward(&f->r, &f->m, tokens, 0, 2, NULL, NULL) == CIRCD_EINPUT);
    tokens[3] = (int32_t)f->cfg.vocab_size;
    CHECK(edge_forward(&f->r, &f->m, tokens, 1, 4, NULL, NULL) == CIRCD_EINPUT);
    CHECK(strstr(err_msg(), "tokens[3]") != NULL);
    tokens[3] = -1;
    CHECK(edge_forward(&f->r, &f->m, tokens, 1, 4, NULL, NULL) == CIRCD_EINPUT);
    tokens[3] = 0;
    CHECK(edge_forward(&f->r, &f->m, tokens, CAP_B, CAP_T, f->alpha, NULL) == CIRCD_EINPUT);
    CHECK(edge_forward(&f->r, &f->m, tokens, CAP_B, CAP_T, NULL, NULL) == CIRCD_OK);
    struct edge_runner big;
    CHECK(edge_runner_init(&big, &f->m, &f->g, 1, f->cfg.max_seq + 1) == CIRCD_EINPUT);
}

int main(void)
{
    for (int kv = 2; kv <= 4; kv += 2) { /* GQA (2 kv heads for 4 query heads), then MHA */
        struct fixture f;
        fixture_init(&f, kv, 100 + kv);
        check_plain(&f);
        check_outputs(&f);
        check_full_ablation(&f);
        check_nodes_vs_hooks(&f);
        check_single_edges(&f);
        check_errors(&f);
        fixture_free(&f);
    }
    return testing_finish();
}
