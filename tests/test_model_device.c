/* test_model_device.c — the model's device path (model_device.c) without a GPU: an "emulated device" backend is the
 * CPU table with host_memory = 0, so the model keeps separate device buffers, copies between them and the host
 * mirrors, stages hook data and tracks which side is newer — exactly as on a GPU — while computing with the CPU
 * kernels. Every result must then equal the plain CPU model's BIT FOR BIT: any missing upload or download shows as
 * a difference. Also: allocation failure leaves the model on the CPU, every device buffer is released. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/backend.h"
#include "model/decode.h"
#include "model/forward_range.h"
#include "model/model.h"
#include "testing.h"
#include "util/error.h"

static struct kernels_backend emulated;
static long live_allocations, allocations_left = -1, copies[3];

static void *emu_alloc(size_t bytes)
{
    if (allocations_left == 0) return NULL;
    if (allocations_left > 0) allocations_left--;
    live_allocations++;
    return calloc(bytes ? bytes : 1, 1);
}
static void emu_release(void *p)
{
    if (p) live_allocations--;
    free(p);
}
static void emu_copy(void *dst, const void *src, size_t bytes, enum kernels_copy direction)
{
    copies[direction]++;
    kernels_backend_cpu()->copy(dst, src, bytes, direction);
}

static void emulated_init(void)
{
    emulated = *kernels_backend_cpu();
    emulated.name = "emulated";
    emulated.host_memory = 0;
    emulated.device_index = 0;
    emulated.alloc = emu_alloc;
    emulated.release = emu_release;
    emulated.copy = emu_copy;
}

static int same(const float *a, const float *b, size_t n) { return memcmp(a, b, n * sizeof(float)) == 0; }

static const int B = 2, T = 6;

static void make_pair(struct llama_model *cpu, struct llama_model *dev, struct llama_config *cfg)
{
    CHECK(model_create(cpu, cfg) == CIRCD_OK);
    CHECK(model_create(dev, cfg) == CIRCD_OK);
    testing_randomize_model(cpu, 11, 0.2f, 0.1f);
    testing_randomize_model(dev, 11, 0.2f, 0.1f);
    CHECK(model_use_backend(dev, &emulated) == CIRCD_OK);
    CHECK(dev->device != NULL);
    CHECK(strcmp(dev->backend->name, "emulated") == 0);
}

static void batch(int32_t *tokens, int32_t *targets, int vocab, int salt)
{
    for (int i = 0; i < B * T; i++) tokens[i] = (i * 7 + salt) % vocab;
    model_next_token_targets(targets, tokens, B, T);
}

/* forward + loss + backward + three AdamW steps (one masked), then a checkpoint round trip. */
static void test_training_equal(struct llama_config *cfg)
{
    struct llama_model cpu, dev;
    make_pair(&cpu, &dev, cfg);
    CHECK(model_enable_training(&cpu) == CIRCD_OK);
    CHECK(model_enable_training(&dev) == CIRCD_OK);
    int32_t tokens[B * T], targets[B * T];
    struct adamw_config opt = {0.9f, 0.95f, 1e-8f, 0.1f, 1.0f};
    for (int step = 0; step < 3; step++) {
        batch(tokens, targets, cfg->vocab_size, step);
        float lc, ld, nc, nd;
        if (step < 2) {
            CHECK(model_train_step(&cpu, tokens, targets, B, T, &opt, 1e-2f, &lc, &nc) == CIRCD_OK);
            CHECK(model_train_step(&dev, tokens, targets, B, T, &opt, 1e-2f, &ld, &nd) == CIRCD_OK);
        } else { /* a masked step: half the parameters */
            unsigned char *mask = calloc(cpu.n_params, 1);
            for (size_t i = 0; i < cpu.n_params / 2; i++) mask[i] = 1;
            CHECK(model_forward(&cpu, tokens, targets, B, T) == CIRCD_OK);
            CHECK(model_forward(&dev, tokens, targets, B, T) == CIRCD_OK);
            model_zero_grad(&cpu);
            model_zero_grad(&dev);
            CHECK(model_backward(&cpu, NULL) == CIRCD_OK);
            CHECK(model_backward(&dev, NULL) == CIRCD_OK);
            lc = cpu.loss;
            ld = dev.loss;
            nc = model_adamw_step_masked(&cpu, &opt, 1e-2f, mask);
            nd = model_adamw_step_masked(&dev, &opt, 1e-2f, mask);
            free(mask);
        }
        CHECK(lc == ld && nc == nd);
        CHECK(same(model_logits(&cpu), model_logits(&dev), (size_t)B * T * cfg->vocab_size));
        CHECK(same(cpu.acts.losses, dev.acts.losses, (size_t)B * T));
    }
    /* the host mirrors are stale until synced; then equal */
    CHECK(model_sync_host(&dev) == CIRCD_OK);
    CHECK(same(cpu.params, dev.params, cpu.n_params));
    CHECK(same(cpu.grads, dev.grads, cpu.n_params));
    CHECK(same(cpu.adam_m, dev.adam_m, cpu.n_params) && same(cpu.adam_v, dev.adam_v, cpu.n_params));
    CHECK(model_backend_grads(&cpu) == cpu.grads && model_backend_grads(&dev) != dev.grads);

    /* a checkpoint written from the device model, read into a device model, trains on identically */
    char path[512];
    snprintf(path, sizeof path, "%s/device.ckpt", testing_tmpdir());
    struct rng r;
    rng_seed(&r, 5);
    CHECK(model_checkpoint_save(&dev, path, &r, 17) == CIRCD_OK);
    struct llama_model again;
    CHECK(model_create(&again, cfg) == CIRCD_OK);
    CHECK(model_enable_training(&again) == CIRCD_OK);
    CHECK(model_use_backend(&again, &emulated) == CIRCD_OK);
    int64_t cursor = 0;
    CHECK(model_checkpoint_load(&again, path, &r, &cursor) == CIRCD_OK && cursor == 17);
    batch(tokens, targets, cfg->vocab_size, 9);
    float l1, l2;
    CHECK(model_train_step(&cpu, tokens, targets, B, T, &opt, 1e-2f, &l1, NULL) == CIRCD_OK);
    CHECK(model_train_step(&again, tokens, targets, B, T, &opt, 1e-2f, &l2, NULL) == CIRCD_OK);
    CHECK(l1 == l2);
    CHECK(model_sync_host(&again) == CIRCD_OK && same(cpu.params, again.params, cpu.n_params));

    /* back to the CPU: the device's newer state comes along */
    CHECK(model_use_backend(&again, NULL) == CIRCD_OK && again.device == NULL);
    CHECK(same(cpu.params, again.params, cpu.n_params));
    model_free(&again);
    model_free(&cpu);
    model_free(&dev);
}

/* cache, patch (one head at one position), gradient read and gradient add at several points. */
static void test_hooks_equal(struct llama_config *cfg)
{
    struct llama_model cpu, dev;
    make_pair(&cpu, &dev, cfg);
    struct llama_model *ms[2] = {&cpu, &dev};
    int32_t tokens[B * T], targets[B * T];
    batch(tokens, targets, cfg->vocab_size, 3);
    size_t nz = hook_numel((struct hook_id){HOOK_ATTN_Z, 1}, cfg, B, T);
    size_t nr = hook_numel((struct hook_id){HOOK_RESID_MID, 0}, cfg, B, T);
    size_t np = hook_numel((struct hook_id){HOOK_ATTN_PATTERN, 0}, cfg, B, T);
    struct rng r;
    rng_seed(&r, 3);
    float *patch = testing_randn(&r, nz, 1.0f), *add = testing_randn(&r, nr, 0.1f);
    float *cache[2], *grad[2], *pattern[2], *dpattern[2];
    for (int i = 0; i < 2; i++) {
        struct llama_model *m = ms[i];
        cache[i] = calloc(nr, sizeof(float));
        grad[i] = calloc(nz, sizeof(float));
        pattern[i] = calloc(np, sizeof(float));
        dpattern[i] = calloc(np, sizeof(float));
        struct hook_request reqs[] = {
            {{HOOK_ATTN_Z, 1}, HOOK_PATCH, patch, 1, 2},
            {{HOOK_RESID_MID, 0}, HOOK_CACHE, cache[i], -1, -1},
            {{HOOK_ATTN_PATTERN, 0}, HOOK_CACHE, pattern[i], -1, -1},
            {{HOOK_ATTN_PATTERN, 0}, HOOK_GRAD, dpattern[i], -1, -1},
            {{HOOK_ATTN_Z, 1}, HOOK_GRAD, grad[i], -1, -1},
            {{HOOK_RESID_MID, 0}, HOOK_GRAD_ADD, add, -1, -1},
            {{HOOK_MLP_OUT, 1}, HOOK_GRAD_ADD, add, -1, -1},
        };
        for (size_t j = 0; j < sizeof reqs / sizeof reqs[0]; j++) CHECK(model_hook_add(m, &reqs[j]) == CIRCD_OK);
        CHECK(model_forward(m, tokens, targets, B, T) == CIRCD_OK);
        CHECK(model_backward_hooks(m, NULL) == CIRCD_OK);
    }
    CHECK(cpu.loss == dev.loss);
    CHECK(same(cache[0], cache[1], nr) && same(pattern[0], pattern[1], np));
    CHECK(same(grad[0], grad[1], nz) && same(dpattern[0], dpattern[1], np));
    /* the patched element's gradient is zero on both, the rest not all zero */
    float any = 0;
    for (size_t j = 0; j < nz; j++) any += fabsf(grad[1][j]);
    CHECK(any > 0);
    /* every host activation after a sync; model_hook_value syncs itself */
    float *z = model_hook_value(&dev, (struct hook_id){HOOK_ATTN_Z, 1});
    CHECK(z && same(z, model_hook_value(&cpu, (struct hook_id){HOOK_ATTN_Z, 1}), nz));
    CHECK(same(cpu.acts.layers[1].mlp_out, dev.acts.layers[1].mlp_out, nr));

    /* a host write of the parameters reaches the device before its next forward */
    cpu.params[5] += 0.5f;
    dev.params[5] += 0.5f;
    model_params_changed(&dev);
    model_hooks_clear(&cpu);
    model_hooks_clear(&dev);
    CHECK(model_forward(&cpu, tokens, targets, B, T) == CIRCD_OK);
    CHECK(model_forward(&dev, tokens, targets, B, T) == CIRCD_OK);
    CHECK(cpu.loss == dev.loss);

    /* a pipeline stage: layers [1, L) from a residual input, output on the host */
    const float *resid = cpu.acts.layers[1].resid_pre;
    float *resid_copy = testing_copy(resid, nr);
    CHECK(model_forward_range(&cpu, 1, cfg->n_layers, NULL, resid_copy, B, T) == CIRCD_OK);
    CHECK(model_forward_range(&dev, 1, cfg->n_layers, NULL, resid_copy, B, T) == CIRCD_OK);
    CHECK(same(cpu.acts.logits, dev.acts.logits, (size_t)B * T * cfg->vocab_size));
    CHECK(same(model_forward_range_output(&cpu, 2), model_forward_range_output(&dev, 2), nr));
    for (int i = 0; i < 2; i++) { free(cache[i]); free(grad[i]); free(pattern[i]); free(dpattern[i]); }
    free(patch);
    free(add);
    free(resid_copy);
    model_free(&cpu);
    model_free(&dev);
}

/* KV-cache decoding on the device: the same logits each step and the same greedy ids. */
static void test_decode_equal(struct llama_config *cfg)
{
    struct llama_model cpu, dev;
    make_pair(&cpu, &dev, cfg);
    int32_t prompt[3] = {1, 5, 9}, out_cpu[10], out_dev[10];
    int n_cpu = 0, n_dev = 0;
    CHECK(generate_greedy(&cpu, prompt, 3, 10, -1, out_cpu, &n_cpu) == CIRCD_OK);
    CHECK(generate_greedy(&dev, prompt, 3, 10, -1, out_dev, &n_dev) == CIRCD_OK);
    CHECK(n_cpu == 10 && n_dev == 10 && memcmp(out_cpu, out_dev, sizeof out_cpu) == 0);
    struct decoder a, b;
    CHECK(decoder_init(&a, &cpu, 8) == CIRCD_OK && decoder_init(&b, &dev, 8) == CIRCD_OK);
    for (int i = 0; i < 8; i++) {
        CHECK(decoder_step(&a, (i * 5) % cfg->vocab_size) == CIRCD_OK);
        CHECK(decoder_step(&b, (i * 5) % cfg->vocab_size) == CIRCD_OK);
        CHECK(same(a.logits, b.logits, (size_t)cfg->vocab_size));
    }
    decoder_free(&a);
    decoder_free(&b);
    model_free(&cpu);
    model_free(&dev);
}

/* running out of device memory at any allocation: a clean error, the model stays usable on the CPU, no leak. */
static void test_allocation_failure(struct llama_config *cfg)
{
    int32_t tokens[B * T], targets[B * T];
    batch(tokens, targets, cfg->vocab_size, 1);
    for (long fail_at = 0; fail_at < 12; fail_at++) {
        struct llama_model m;
        CHECK(model_create(&m, cfg) == CIRCD_OK);
        CHECK(model_enable_training(&m) == CIRCD_OK);
        testing_randomize_model(&m, 2, 0.2f, 0.1f);
        allocations_left = fail_at;
        int rc = model_use_backend(&m, &emulated);
        if (rc == CIRCD_OK) rc = model_forward(&m, tokens, targets, B, T);
        allocations_left = -1;
        if (rc != CIRCD_OK) {
            CHECK(rc == CIRCD_ENOMEM);
            CHECK(strstr(err_msg(), "emulated") != NULL);
            CHECK(model_use_backend(&m, NULL) == CIRCD_OK);
            CHECK(model_forward(&m, tokens, targets, B, T) == CIRCD_OK && isfinite(m.loss));
        }
        model_free(&m);
        CHECK(live_allocations == 0);
    }
}

int main(void)
{
    emulated_init();
    struct llama_config cfg = testing_config(37, 16, 2, 4, 2, 4, 24, 16); /* GQA: 4 query heads over 2 kv */
    test_training_equal(&cfg);
    test_hooks_equal(&cfg);
    test_decode_equal(&cfg);
    test_allocation_failure(&cfg);
    CHECK(live_allocations == 0);
    CHECK(copies[KERNELS_HOST_TO_DEVICE] > 0 && copies[KERNELS_DEVICE_TO_HOST] > 0);
    return testing_finish();
}
