/* test_model.c — whole-model checks: parameter gradients against central finite differences (GQA, MQA, tied and
 * untied embeddings), hook gradients against finite differences taken through hook patching, patching
 * identities, and KV-cache decoding against the full forward. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/decode.h"
#include "model/model.h"
#include "testing.h"
#include "util/error.h"

static struct llama_config small_config(int n_kv_heads, int head_dim, int tie)
{
    struct llama_config c = {0};
    c.vocab_size = 11;
    c.d_model = 8;
    c.n_layers = 2;
    c.n_heads = 4;
    c.n_kv_heads = n_kv_heads;
    c.head_dim = head_dim;
    c.d_ff = 12;
    c.max_seq = 8;
    c.rope_theta = 10000.0f;
    c.norm_eps = 1e-5f;
    c.tie_embeddings = tie;
    c.bos_token_id = c.eos_token_id = -1;
    return c;
}

/* Random weights large enough that every nonlinearity matters. */
static void randomize(struct llama_model *m, uint64_t seed)
{
    testing_randomize_model(m, seed, 0.5f, 0.2f);
}

static void random_tokens(int32_t *tokens, int n, int vocab, uint64_t seed)
{
    struct rng r;
    rng_seed(&r, seed);
    for (int i = 0; i < n; i++) tokens[i] = (int32_t)rng_below(&r, (uint64_t)vocab);
}

static double loss_at(struct llama_model *m, const int32_t *tokens, const int32_t *targets, int B, int T)
{
    int rc = model_forward(m, tokens, targets, B, T);
    CHECK(rc == 0);
    return m->loss;
}

/* Auxiliary terms <c_k, value at hook k> added to the cross-entropy: add[k] is the HOOK_GRAD_ADD registration
 * (data = c_k), cache[k] the HOOK_CACHE one that reads the value on every forward. */
struct aux_terms {
    int n;
    struct hook_request add[2], cache[2];
};

static double objective_at(struct llama_model *m, const int32_t *tokens, const int32_t *targets, int B, int T,
                           const struct aux_terms *aux)
{
    double value = loss_at(m, tokens, targets, B, T);
    for (int k = 0; aux && k < aux->n; k++) {
        size_t n = hook_numel(aux->cache[k].id, &m->config, B, T);
        for (size_t i = 0; i < n; i++) value += (double)aux->add[k].data[i] * aux->cache[k].data[i];
    }
    return value;
}

/* Compares the analytic parameter gradient with central differences of the objective (cross-entropy plus the
 * auxiliary terms, whose hooks the caller registered): four entries of every tensor, plus a random direction over
 * all parameters. */
static void check_against_differences(struct llama_model *m, const int32_t *tokens, const int32_t *targets, int B,
                                      int T, const struct aux_terms *aux, const float *analytic, const char *label)
{
    const float h = 3e-3f; /* truncation error (curvature of the auxiliary terms) and float rounding both < tol */
    struct rng r;
    rng_seed(&r, 11);
    int bad = 0, checked = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const struct param_tensor *t = &m->tensors[i];
        for (int k = 0; k < 4; k++) {
            size_t j = t->offset + rng_below(&r, t->numel);
            float saved = m->params[j];
            m->params[j] = saved + h;
            double up = objective_at(m, tokens, targets, B, T, aux);
            m->params[j] = saved - h;
            double down = objective_at(m, tokens, targets, B, T, aux);
            m->params[j] = saved;
            double numeric = (up - down) / (2.0 * h);
            checked++;
            if (fabs(numeric - analytic[j]) > 2e-3 + 2e-2 * fabs(numeric)) {
                bad++;
                fprintf(stderr, "%s: %s[%zu]: analytic %.6g numeric %.6g\n", label, t->name, j - t->offset,
                        analytic[j], numeric);
            }
        }
    }
    CHECK(bad == 0);
    CHECK(checked == 4 * m->n_tensors);

    /* Directional derivative along a random unit direction over all parameters. */
    float *dir = malloc(m->n_params * sizeof(float));
    double norm = 0, dot = 0;
    for (size_t j = 0; j < m->n_params; j++) { dir[j] = rng_normal(&r); norm += (double)dir[j] * dir[j]; }
    norm = sqrt(norm);
    for (size_t j = 0; j < m->n_params; j++) { dir[j] = (float)(dir[j] / norm); dot += (double)dir[j] * analytic[j]; }
    float *saved = testing_copy(m->params, m->n_params);
    for (size_t j = 0; j < m->n_params; j++) m->params[j] = saved[j] + h * dir[j];
    double up = objective_at(m, tokens, targets, B, T, aux);
    for (size_t j = 0; j < m->n_params; j++) m->params[j] = saved[j] - h * dir[j];
    double down = objective_at(m, tokens, targets, B, T, aux);
    memcpy(m->params, saved, m->n_params * sizeof(float));
    if (fabs((up - down) / (2.0 * h) - dot) > 2e-3 + 1e-2 * fabs(dot))
        fprintf(stderr, "%s: directional analytic %.6g numeric %.6g\n", label, dot, (up - down) / (2.0 * h));
    CHECK_NEAR((up - down) / (2.0 * h), dot, 2e-3 + 1e-2 * fabs(dot));
    free(saved);
    free(dir);
}

static void check_param_gradients(struct llama_config cfg, const char *label)
{
    struct llama_model m;
    CHECK(model_create(&m, &cfg) == 0);
    CHECK(model_enable_grads(&m) == 0);
    randomize(&m, 7);
    enum { B = 2, T = 6 };
    int32_t tokens[B * T], targets[B * T];
    random_tokens(tokens, B * T, cfg.vocab_size, 3);
    model_next_token_targets(targets, tokens, B, T);
    targets[2] = -1; /* an ignored position inside the sequence */

    CHECK(model_forward(&m, tokens, targets, B, T) == 0);
    model_zero_grad(&m);
    CHECK(model_backward(&m, NULL) == 0);
    float *analytic = testing_copy(m.grads, m.n_params);
    check_against_differences(&m, tokens, targets, B, T, NULL, analytic, label);
    free(analytic);
    model_free(&m);
}

/* One hook point of every kind, on a 2-layer model. */
static const char *const every_kind[] = {
    "hook_embed", "blocks.0.hook_resid_pre", "blocks.0.attn.hook_q", "blocks.0.attn.hook_k",
    "blocks.0.attn.hook_v", "blocks.1.attn.hook_rot_q", "blocks.1.attn.hook_rot_k", "blocks.0.attn.hook_pattern",
    "blocks.1.attn.hook_z", "blocks.0.hook_attn_out", "blocks.0.hook_resid_mid", "blocks.1.mlp.hook_pre",
    "blocks.1.mlp.hook_pre_linear", "blocks.0.mlp.hook_post", "blocks.1.hook_mlp_out", "blocks.0.hook_resid_post",
    "blocks.1.hook_resid_post", "ln_final.hook_normalized", "hook_logits"};
enum { N_EVERY_KIND = sizeof every_kind / sizeof every_kind[0] };

/* The gradient read at a hook equals d loss / d value, measured by patching the cached value +- h. */
static void check_hook_gradient(struct llama_model *m, const char *name, const int32_t *tokens,
                                const int32_t *targets, int B, int T)
{
    struct hook_id id;
    CHECK(hook_parse(name, &m->config, &id) == 0);
    size_t n = hook_numel(id, &m->config, B, T);
    float *value = malloc(n * sizeof(float)), *grad = malloc(n * sizeof(float));
    float *patched = malloc(n * sizeof(float));
    struct hook_request cache = {id, HOOK_CACHE, value, -1, -1}, gradreq = {id, HOOK_GRAD, grad, -1, -1};
    model_hooks_clear(m);
    CHECK(model_hook_add(m, &cache) == 0);
    CHECK(model_hook_add(m, &gradreq) == 0);
    CHECK(model_forward(m, tokens, targets, B, T) == 0);
    model_zero_grad(m);
    CHECK(model_backward(m, NULL) == 0);
    model_hooks_clear(m);

    struct hook_request patch = {id, HOOK_PATCH, patched, -1, -1};
    CHECK(model_hook_add(m, &patch) == 0);
    struct rng r;
    rng_seed(&r, 5);
    const float h = 1e-2f;
    int bad = 0;
    for (int k = 0; k < 6; k++) {
        size_t j = rng_below(&r, n);
        if (id.kind == HOOK_ATTN_PATTERN && grad[j] == 0.0f && value[j] == 0.0f) continue; /* masked entry */
        memcpy(patched, value, n * sizeof(float));
        patched[j] = value[j] + h;
        double up = loss_at(m, tokens, targets, B, T);
        patched[j] = value[j] - h;
        double down = loss_at(m, tokens, targets, B, T);
        double numeric = (up - down) / (2.0 * h);
        if (fabs(numeric - grad[j]) > 2e-3 + 2e-2 * fabs(numeric)) {
            bad++;
            fprintf(stderr, "hook %s[%zu]: analytic %.6g numeric %.6g\n", name, j, grad[j], numeric);
        }
    }
    CHECK(bad == 0);
    model_hooks_clear(m);
    free(value);
    free(grad);
    free(patched);
}

static void check_hooks(void)
{
    struct llama_config cfg = small_config(2, 4, 0);
    struct llama_model m;
    CHECK(model_create(&m, &cfg) == 0);
    CHECK(model_enable_grads(&m) == 0);
    randomize(&m, 9);
    enum { B = 2, T = 5 };
    int32_t tokens[B * T], other[B * T], targets[B * T];
    random_tokens(tokens, B * T, cfg.vocab_size, 21);
    random_tokens(other, B * T, cfg.vocab_size, 22);
    model_next_token_targets(targets, tokens, B, T);

    const char *const *names = every_kind;
    size_t V = (size_t)cfg.vocab_size, N = (size_t)B * T;
    float *logits = malloc(N * V * sizeof(float));
    CHECK(model_forward(&m, tokens, targets, B, T) == 0);
    memcpy(logits, m.acts.logits, N * V * sizeof(float));

    for (size_t i = 0; i < N_EVERY_KIND; i++) {
        struct hook_id id;
        CHECK(hook_parse(names[i], &cfg, &id) == 0);
        char back[64];
        CHECK(strcmp(hook_name(id, back, sizeof back), names[i]) == 0);
        /* Patching a hook with its own cached value leaves the logits bit-identical. */
        size_t n = hook_numel(id, &cfg, B, T);
        float *cached = malloc(n * sizeof(float));
        struct hook_request cache = {id, HOOK_CACHE, cached, -1, -1}, patch = {id, HOOK_PATCH, cached, -1, -1};
        model_hooks_clear(&m);
        CHECK(model_hook_add(&m, &cache) == 0);
        CHECK(model_forward(&m, tokens, targets, B, T) == 0);
        CHECK(memcmp(cached, model_hook_value(&m, id), n * sizeof(float)) == 0);
        model_hooks_clear(&m);
        CHECK(model_hook_add(&m, &patch) == 0);
        CHECK(model_forward(&m, tokens, targets, B, T) == 0);
        CHECK(memcmp(logits, m.acts.logits, N * V * sizeof(float)) == 0);
        free(cached);
        check_hook_gradient(&m, names[i], tokens, targets, B, T);
    }

    /* Patching blocks.0.hook_resid_pre with another input's cache reproduces that input's logits. */
    struct hook_id resid0 = {HOOK_RESID_PRE, 0};
    float *other_resid = malloc(N * cfg.d_model * sizeof(float)), *other_logits = malloc(N * V * sizeof(float));
    struct hook_request cache = {resid0, HOOK_CACHE, other_resid, -1, -1};
    model_hooks_clear(&m);
    CHECK(model_hook_add(&m, &cache) == 0);
    CHECK(model_forward(&m, other, NULL, B, T) == 0);
    memcpy(other_logits, m.acts.logits, N * V * sizeof(float));
    model_hooks_clear(&m);
    struct hook_request patch = {resid0, HOOK_PATCH, other_resid, -1, -1};
    CHECK(model_hook_add(&m, &patch) == 0);
    CHECK(model_forward(&m, tokens, NULL, B, T) == 0);
    CHECK(memcmp(other_logits, m.acts.logits, N * V * sizeof(float)) == 0);

    /* Per-head, per-position patch of z: only that slice takes the other input's values; nothing upstream of
     * the patched slice receives gradient from it. */
    struct hook_id z1 = {HOOK_ATTN_Z, 1};
    size_t nz = hook_numel(z1, &cfg, B, T);
    float *z_other = malloc(nz * sizeof(float)), *z_clean = malloc(nz * sizeof(float));
    float *z_seen = malloc(nz * sizeof(float)), *dz = malloc(nz * sizeof(float));
    model_hooks_clear(&m);
    struct hook_request cz = {z1, HOOK_CACHE, z_other, -1, -1};
    CHECK(model_hook_add(&m, &cz) == 0);
    CHECK(model_forward(&m, other, NULL, B, T) == 0);
    model_hooks_clear(&m);
    cz.data = z_clean;
    CHECK(model_hook_add(&m, &cz) == 0);
    CHECK(model_forward(&m, tokens, targets, B, T) == 0);
    model_hooks_clear(&m);
    const int head = 2, pos = 3, hd = cfg.head_dim, nh = cfg.n_heads;
    struct hook_request pz = {z1, HOOK_PATCH, z_other, head, pos}, sz = {z1, HOOK_CACHE, z_seen, -1, -1};
    struct hook_request gz = {{HOOK_ATTN_Z, 1}, HOOK_GRAD, dz, -1, -1};
    struct hook_id v1 = {HOOK_ATTN_V, 1};
    CHECK(model_hook_add(&m, &pz) == 0);
    CHECK(model_hook_add(&m, &sz) == 0);
    CHECK(model_hook_add(&m, &gz) == 0);
    CHECK(model_forward(&m, tokens, targets, B, T) == 0);
    int slice_ok = 1;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int h = 0; h < nh; h++)
                for (int e = 0; e < hd; e++) {
                    size_t j = (((size_t)b * T + t) * nh + h) * hd + e;
                    float want = (h == head && t == pos) ? z_other[j] : z_clean[j];
                    if (z_seen[j] != want) slice_ok = 0;
                }
    CHECK(slice_ok);
    model_zero_grad(&m);
    CHECK(model_backward(&m, NULL) == 0);
    (void)v1;
    /* Bad selections are refused with a message. */
    struct hook_request bad_head = {z1, HOOK_PATCH, z_other, nh, -1};
    CHECK(model_hook_add(&m, &bad_head) == CIRCD_EINPUT);
    struct hook_request bad_axis = {resid0, HOOK_PATCH, other_resid, 0, -1};
    CHECK(model_hook_add(&m, &bad_axis) == CIRCD_EINPUT);
    struct hook_id parsed;
    CHECK(hook_parse("blocks.2.attn.hook_z", &cfg, &parsed) == CIRCD_EINPUT);
    CHECK(strstr(err_msg(), "out of range") != NULL);
    CHECK(hook_parse("blocks.0.attn.hook_zz", &cfg, &parsed) == CIRCD_EINPUT);
    model_hooks_clear(&m);

    free(z_other); free(z_clean); free(z_seen); free(dz);
    free(other_resid); free(other_logits); free(logits);
    model_free(&m);
}

/* With a patched head, the gradient reaching the parameters that produced it must not include that path: compare
 * the gradient of wv (layer 1) with the patch against FD of the patched forward. */
static void check_patched_gradient(void)
{
    struct llama_config cfg = small_config(2, 4, 1);
    struct llama_model m;
    CHECK(model_create(&m, &cfg) == 0);
    CHECK(model_enable_grads(&m) == 0);
    randomize(&m, 13);
    enum { B = 1, T = 5 };
    int32_t tokens[B * T], targets[B * T], other[B * T];
    random_tokens(tokens, B * T, cfg.vocab_size, 31);
    random_tokens(other, B * T, cfg.vocab_size, 32);
    model_next_token_targets(targets, tokens, B, T);
    struct hook_id z1 = {HOOK_ATTN_Z, 1};
    size_t nz = hook_numel(z1, &cfg, B, T);
    float *z_other = malloc(nz * sizeof(float));
    struct hook_request cz = {z1, HOOK_CACHE, z_other, -1, -1};
    CHECK(model_hook_add(&m, &cz) == 0);
    CHECK(model_forward(&m, other, NULL, B, T) == 0);
    model_hooks_clear(&m);
    struct hook_request pz = {z1, HOOK_PATCH, z_other, -1, -1}; /* every head of layer 1 patched */
    CHECK(model_hook_add(&m, &pz) == 0);
    CHECK(model_forward(&m, tokens, targets, B, T) == 0);
    model_zero_grad(&m);
    CHECK(model_backward(&m, NULL) == 0);
    /* All of layer 1's q/k/v weights are upstream of z only: their gradients must be exactly zero. */
    size_t kvd = (size_t)cfg.n_kv_heads * cfg.head_dim, d = cfg.d_model;
    int zero = 1;
    for (size_t j = 0; j < kvd * d; j++)
        if (m.dw.layers[1].wv[j] != 0.0f || m.dw.layers[1].wk[j] != 0.0f) zero = 0;
    CHECK(zero);
    int nonzero = 0;
    for (size_t j = 0; j < kvd * d; j++) nonzero |= m.dw.layers[0].wv[j] != 0.0f;
    CHECK(nonzero);
    free(z_other);
    model_free(&m);
}

/* Registers HOOK_GRAD_ADD of a random c (and a cache of the value) at each named point; the caller frees the data. */
static void add_aux_terms(struct llama_model *m, struct aux_terms *aux, const char *const *names, int n, int B,
                          int T, struct rng *r)
{
    aux->n = n;
    for (int k = 0; k < n; k++) {
        struct hook_id id;
        CHECK(hook_parse(names[k], &m->config, &id) == 0);
        size_t numel = hook_numel(id, &m->config, B, T);
        aux->add[k] = (struct hook_request){id, HOOK_GRAD_ADD, testing_randn(r, numel, 0.3f), -1, -1};
        aux->cache[k] = (struct hook_request){id, HOOK_CACHE, calloc(numel, sizeof(float)), -1, -1};
        CHECK(model_hook_add(m, &aux->add[k]) == 0);
        CHECK(model_hook_add(m, &aux->cache[k]) == 0);
    }
}

static void free_aux_terms(struct aux_terms *aux)
{
    for (int k = 0; k < aux->n; k++) {
        free(aux->add[k].data);
        free(aux->cache[k].data);
    }
}

/* Forward, backward from the cross-entropy with the registered hooks; returns a malloc'd copy of the gradients. */
static float *gradients(struct llama_model *m, const int32_t *tokens, const int32_t *targets, int B, int T)
{
    CHECK(model_forward(m, tokens, targets, B, T) == 0);
    model_zero_grad(m);
    CHECK(model_backward(m, NULL) == 0);
    return testing_copy(m->grads, m->n_params);
}

/* HOOK_GRAD_ADD: a backward from the cross-entropy with c added at a hook point gives the parameter gradient of
 * CE + <c, value> — at every hook kind, and at blocks.0.attn.hook_z with blocks.1.hook_mlp_out together. Each of
 * those two alone changes exactly the gradients upstream of its point, by the term's closed form where a weight
 * meets it first: d<c, mlp_out>/d down_proj = c^T hidden; d<c, z>/d v_proj[g*hd+e, j] =
 * sum over b, query t, heads h of group g, key s of c[b,t,h,e] pattern[b,h,t,s] ln1[b,s,j]. */
static void check_grad_add(void)
{
    struct llama_config cfg = small_config(2, 4, 0);
    struct llama_model m;
    CHECK(model_create(&m, &cfg) == 0);
    CHECK(model_enable_grads(&m) == 0);
    randomize(&m, 23);
    enum { B = 2, T = 5 };
    int32_t tokens[B * T], targets[B * T];
    random_tokens(tokens, B * T, cfg.vocab_size, 51);
    model_next_token_targets(targets, tokens, B, T);
    struct rng r;
    rng_seed(&r, 52);
    struct aux_terms aux;
    for (int i = 0; i < N_EVERY_KIND; i++) {
        model_hooks_clear(&m);
        add_aux_terms(&m, &aux, &every_kind[i], 1, B, T, &r);
        float *analytic = gradients(&m, tokens, targets, B, T);
        check_against_differences(&m, tokens, targets, B, T, &aux, analytic, every_kind[i]);
        free(analytic);
        free_aux_terms(&aux);
    }

    static const char *const pair[] = {"blocks.0.attn.hook_z", "blocks.1.hook_mlp_out"};
    model_hooks_clear(&m);
    float *ce = gradients(&m, tokens, targets, B, T);
    add_aux_terms(&m, &aux, pair, 2, B, T, &r);
    float *both = gradients(&m, tokens, targets, B, T);
    check_against_differences(&m, tokens, targets, B, T, &aux, both, "z0 + mlp_out1");
    struct hook_request z_add = aux.add[0], mlp_add = aux.add[1];

    /* mlp_out of layer 1 alone: down_proj gains c^T hidden; the final norm and lm_head, downstream, do not move. */
    int d = cfg.d_model, ff = cfg.d_ff, nh = cfg.n_heads, hd = cfg.head_dim, group = nh / cfg.n_kv_heads;
    size_t n = (size_t)B * T, kvd = (size_t)cfg.n_kv_heads * hd;
    model_hooks_clear(&m);
    CHECK(model_hook_add(&m, &mlp_add) == 0);
    float *g = gradients(&m, tokens, targets, B, T);
    size_t down = (size_t)(m.w.layers[1].w_down - m.params), lm = (size_t)(m.w.lm_head - m.params);
    float *want = calloc((size_t)d * ff, sizeof(float)), *got = calloc((size_t)d * ff, sizeof(float));
    for (int i = 0; i < d; i++)
        for (int j = 0; j < ff; j++) {
            double sum = 0;
            for (size_t t = 0; t < n; t++) sum += (double)mlp_add.data[t * d + i] * m.acts.layers[1].hidden[t * ff + j];
            want[i * ff + j] = (float)sum;
            got[i * ff + j] = g[down + i * ff + j] - ce[down + i * ff + j];
        }
    CHECK_CLOSE(got, want, (size_t)d * ff, 1e-3, 1e-5);
    CHECK(memcmp(g + lm, ce + lm, (size_t)cfg.vocab_size * d * sizeof(float)) == 0);
    free(g);

    /* z of layer 0 alone: v_proj gains the closed form; o_proj and everything stored after it (layer 0's MLP, layer 1,
     * the final norm, lm_head) are downstream of z and unchanged. */
    model_hooks_clear(&m);
    CHECK(model_hook_add(&m, &z_add) == 0);
    g = gradients(&m, tokens, targets, B, T);
    const struct layer_acts *a = &m.acts.layers[0];
    size_t wv = (size_t)(m.w.layers[0].wv - m.params), wo = (size_t)(m.w.layers[0].wo - m.params);
    for (size_t row = 0; row < kvd; row++)
        for (int j = 0; j < d; j++) {
            size_t kv = row / hd, e = row % hd;
            double sum = 0;
            for (int b = 0; b < B; b++)
                for (int t = 0; t < T; t++)
                    for (int h = (int)kv * group; h < (int)(kv + 1) * group; h++)
                        for (int s = 0; s <= t; s++)
                            sum += (double)z_add.data[(((size_t)b * T + t) * nh + h) * hd + e] *
                                   a->pattern[(((size_t)b * nh + h) * T + t) * T + s] *
                                   a->ln1[((size_t)b * T + s) * d + j];
            want[row * d + j] = (float)sum;
            got[row * d + j] = g[wv + row * d + j] - ce[wv + row * d + j];
        }
    CHECK_CLOSE(got, want, kvd * d, 1e-3, 1e-5);
    CHECK(memcmp(g + wo, ce + wo, (m.n_params - wo) * sizeof(float)) == 0); /* o_proj .. layer 0's MLP, layer 1 */
    CHECK(memcmp(g + wv, ce + wv, kvd * d * sizeof(float)) != 0);
    double moved = 0;
    for (size_t j = 0; j < kvd * d; j++) moved += fabs(want[j]);
    CHECK(moved > 1e-2);
    free(g);
    free(want);
    free(got);
    free(both);
    free(ce);
    free_aux_terms(&aux);
    model_hooks_clear(&m);
    model_free(&m);
}

/* KV-cache decoding gives the same logits as the full forward, position by position. */
static void check_decoder(void)
{
    struct llama_config cfg = small_config(2, 4, 1);
    struct llama_model m;
    CHECK(model_create(&m, &cfg) == 0);
    randomize(&m, 17);
    enum { T = 8 };
    int32_t tokens[T];
    random_tokens(tokens, T, cfg.vocab_size, 41);
    CHECK(model_forward(&m, tokens, NULL, 1, T) == 0);
    struct decoder dec;
    CHECK(decoder_init(&dec, &m, T) == 0);
    for (int t = 0; t < T; t++) {
        CHECK(decoder_step(&dec, tokens[t]) == 0);
        CHECK_CLOSE(dec.logits, m.acts.logits + (size_t)t * cfg.vocab_size, (size_t)cfg.vocab_size, 1e-4, 1e-5);
    }
    CHECK(decoder_step(&dec, tokens[0]) == CIRCD_EINPUT); /* cache full */
    decoder_free(&dec);
    int32_t out[4];
    int n_out;
    CHECK(generate_greedy(&m, tokens, 3, 4, -1, out, &n_out) == 0);
    CHECK(n_out == 4);
    /* The first generated id is the argmax of the full forward's logits at position 2. */
    const float *row = m.acts.logits + 2 * (size_t)cfg.vocab_size;
    int best = 0;
    for (int v = 1; v < cfg.vocab_size; v++)
        if (row[v] > row[best]) best = v;
    CHECK(out[0] == best);
    model_free(&m);
}

static void check_training_reduces_loss(void)
{
    struct llama_config cfg = small_config(2, 4, 0);
    struct llama_model m;
    CHECK(model_create(&m, &cfg) == 0);
    CHECK(model_enable_training(&m) == 0);
    model_init_random(&m, 1);
    enum { B = 4, T = 8 };
    int32_t tokens[B * T], targets[B * T];
    for (int i = 0; i < B * T; i++) tokens[i] = (i * 3) % cfg.vocab_size; /* a fixed periodic sequence */
    model_next_token_targets(targets, tokens, B, T);
    struct adamw_config opt = {0.9f, 0.95f, 1e-8f, 0.0f, 1.0f};
    float first = 0, last = 0;
    for (int s = 0; s < 200; s++) {
        CHECK(model_forward(&m, tokens, targets, B, T) == 0);
        if (s == 0) first = m.loss;
        last = m.loss;
        model_zero_grad(&m);
        model_backward(&m, NULL);
        model_adamw_step(&m, &opt, 1e-2f);
    }
    CHECK_NEAR(first, logf((float)cfg.vocab_size), 0.1);
    CHECK(last < 0.1f);
    CHECK(m.step == 200);
    model_free(&m);
}

/* model_backward_hooks: the hook gradients of model_backward, bit for bit, without touching parameter gradients
 * (and without needing them allocated). */
static void check_backward_hooks(void)
{
    struct llama_config cfg = small_config(2, 4, 0);
    struct llama_model a, b;
    CHECK(model_create(&a, &cfg) == 0 && model_create(&b, &cfg) == 0);
    CHECK(model_enable_grads(&a) == 0);
    randomize(&a, 21);
    memcpy(b.params, a.params, a.n_params * sizeof(float));
    enum { B = 2, T = 5 };
    int32_t tokens[B * T], targets[B * T];
    random_tokens(tokens, B * T, cfg.vocab_size, 5);
    model_next_token_targets(targets, tokens, B, T);
    static const enum hook_kind kinds[] = {HOOK_EMBED, HOOK_ATTN_Z, HOOK_ATTN_PATTERN, HOOK_ATTN_K, HOOK_MLP_PRE,
                                           HOOK_RESID_MID};
    enum { K = sizeof kinds / sizeof kinds[0] };
    float *grads[2][K];
    struct llama_model *models[2] = {&a, &b};
    for (int w = 0; w < 2; w++) {
        for (int k = 0; k < K; k++) {
            struct hook_id id = {kinds[k], kinds[k] == HOOK_EMBED ? -1 : 1};
            grads[w][k] = calloc(hook_numel(id, &cfg, B, T), sizeof(float));
            struct hook_request req = {id, HOOK_GRAD, grads[w][k], -1, -1};
            CHECK(model_hook_add(models[w], &req) == 0);
        }
        CHECK(model_forward(models[w], tokens, targets, B, T) == 0);
    }
    model_zero_grad(&a);
    CHECK(model_backward(&a, NULL) == 0);
    CHECK(b.grads == NULL);
    CHECK(model_backward_hooks(&b, NULL) == 0);
    CHECK(b.grads == NULL);
    for (int k = 0; k < K; k++) {
        struct hook_id id = {kinds[k], kinds[k] == HOOK_EMBED ? -1 : 1};
        size_t n = hook_numel(id, &cfg, B, T);
        CHECK(memcmp(grads[0][k], grads[1][k], n * sizeof(float)) == 0);
        double norm = 0;
        for (size_t i = 0; i < n; i++) norm += fabs(grads[1][k][i]);
        CHECK(norm > 0);
        free(grads[0][k]);
        free(grads[1][k]);
    }
    model_free(&a);
    model_free(&b);
}

int main(void)
{
    check_backward_hooks();
    check_param_gradients(small_config(2, 4, 0), "GQA 4:2 untied");
    check_param_gradients(small_config(2, 4, 1), "GQA 4:2 tied");
    check_param_gradients(small_config(1, 6, 0), "MQA 4:1, head_dim 6");
    check_param_gradients(small_config(4, 2, 1), "MHA 4:4, head_dim 2");
    check_hooks();
    check_patched_gradient();
    check_grad_add();
    check_decoder();
    check_training_reduces_loss();
    return testing_finish();
}
