/* model_device.c — a model computing on a GPU backend (model.h, "devices"): the device copies of its parameters,
 * gradients, AdamW moments, activations and scratch, the compute view forward/backward/hooks use, and the
 * host <-> device synchronisation. On the CPU backend nothing here allocates: the compute view is the host buffers.
 *
 * Ownership: the model owns its struct model_device and every device buffer in it (released with the backend's
 * release, in model_device_free). Which side is newer is tracked by flags, so a reader never sees stale numbers:
 * host writers call model_params_changed; the device marks itself newer after backward / AdamW; savers download. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_internal.h"
#include "util/error.h"

void model_compute_view(struct llama_model *m, struct model_compute *c)
{
    struct model_device *dv = m->device;
    if (!dv) {
        *c = (struct model_compute){m->backend, m->params, m->grads, m->adam_m, m->adam_v, &m->w, &m->dw,
                                    &m->acts, &m->scratch, m->rope_cos, m->rope_sin, NULL};
        return;
    }
    *c = (struct model_compute){dv->k, dv->params, dv->grads, dv->adam_m, dv->adam_v, &dv->w, &dv->dw, &dv->acts,
                                &dv->scratch, dv->rope_cos, dv->rope_sin, dv->staging};
}

int model_device_check(const struct llama_model *m, const char *what)
{
    const struct kernels_backend *k = m->backend;
    const char *e = k->error();
    if (!e) return CIRCD_OK;
    return err_set(CIRCD_EIO, "%s on device %s:%d: %s", what, k->name, k->device_index, e);
}

static void *device_alloc(struct model_device *dv, size_t count, size_t size)
{
    return dv->k->alloc(count * size);
}

static int no_room(const struct kernels_backend *k, const char *what)
{
    return err_set(CIRCD_ENOMEM, "device %s:%d: no room for %s (%s)", k->name, k->device_index, what,
                   k->error() ? k->error() : "out of memory");
}

static void release_buffers(struct model_device *dv)
{
    const struct kernels_backend *k = dv->k;
    void *owned[] = {dv->params, dv->grads, dv->adam_m, dv->adam_v, dv->rope_cos, dv->rope_sin,
                     dv->act_memory, dv->grad_memory, dv->staging, dv->tokens, dv->targets};
    for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++) k->release(owned[i]);
}

void model_device_free(struct llama_model *m)
{
    struct model_device *dv = m->device;
    if (!dv) return;
    release_buffers(dv);
    free(dv->w.layers);
    free(dv->dw.layers);
    free(dv->acts.layers);
    free(dv);
    m->device = NULL;
}

static size_t bytes(size_t floats) { return floats * sizeof(float); }

int model_device_enable(struct llama_model *m)
{
    struct model_device *dv = m->device;
    if (!dv) return CIRCD_OK;
    const struct kernels_backend *k = dv->k;
    if (m->grads && !dv->grads) {
        if (!(dv->grads = device_alloc(dv, m->n_params, sizeof(float)))) return no_room(k, "the gradients");
        model_bind_views(m, &dv->dw, dv->grads);
        k->copy(dv->grads, m->grads, bytes(m->n_params), KERNELS_HOST_TO_DEVICE);
    }
    if (m->adam_m && !dv->adam_m) {
        dv->adam_m = device_alloc(dv, m->n_params, sizeof(float));
        dv->adam_v = device_alloc(dv, m->n_params, sizeof(float));
        if (!dv->adam_m || !dv->adam_v) return no_room(k, "the AdamW moments");
        k->copy(dv->adam_m, m->adam_m, bytes(m->n_params), KERNELS_HOST_TO_DEVICE);
        k->copy(dv->adam_v, m->adam_v, bytes(m->n_params), KERNELS_HOST_TO_DEVICE);
    }
    return model_device_check(m, "uploading the training state");
}

/* The scratch the GPU kernels need for the largest products of a [B, T] forward/backward (kernels_cuda.h,
 * "Workspace"): the attention backward's B * n_heads * T floats, and the bf16 copies of a matmul's three operands,
 * 2 (N in + out in + N out) bytes, bounded over every product of the model (one side of each is d or n_heads*hd,
 * the other at most the widest of V, d_ff and n_heads*hd). */
static size_t workspace_bytes(const struct llama_config *c, size_t rows, size_t T)
{
    size_t B = rows / T;
    size_t d = c->d_model, qd = (size_t)c->n_heads * c->head_dim, ff = c->d_ff, V = c->vocab_size;
    size_t widest = V > ff ? V : ff;
    if (qd > widest) widest = qd;
    size_t matrix = widest * (d > qd ? d : qd);
    size_t bf16 = 2 * (rows * widest + rows * (d > qd ? d : qd) + matrix) + 3 * 256; /* 256-byte aligned arrays */
    size_t attention = bytes(B * c->n_heads * T);
    return bf16 > attention ? bf16 : attention;
}

int model_device_reserve(struct llama_model *m, size_t act_floats, size_t grad_floats, size_t staging_floats,
                         int B, int T)
{
    size_t rows = (size_t)B * T;
    struct model_device *dv = m->device;
    if (!dv) return CIRCD_OK;
    const struct kernels_backend *k = dv->k;
    k->release(dv->act_memory);
    k->release(dv->grad_memory);
    k->release(dv->staging);
    k->release(dv->tokens);
    k->release(dv->targets);
    dv->act_memory = device_alloc(dv, act_floats, sizeof(float));
    dv->grad_memory = device_alloc(dv, grad_floats, sizeof(float));
    dv->staging = device_alloc(dv, staging_floats, sizeof(float));
    dv->tokens = device_alloc(dv, rows, sizeof(int32_t));
    dv->targets = device_alloc(dv, rows, sizeof(int32_t));
    dv->act_floats = dv->grad_floats = dv->staging_floats = dv->token_capacity = 0;
    if (!dv->act_memory || !dv->grad_memory || !dv->staging || !dv->tokens || !dv->targets)
        return no_room(k, "the activations");
    dv->act_floats = act_floats;
    dv->grad_floats = grad_floats;
    dv->staging_floats = staging_floats;
    dv->token_capacity = rows;
    model_carve_acts(&m->config, &dv->acts, &dv->scratch, dv->act_memory, dv->grad_memory, B, T);
    dv->acts.tokens = dv->tokens;
    dv->acts.targets = dv->targets;
    if (k->reserve_workspace(workspace_bytes(&m->config, rows, (size_t)T)) != 0)
        return model_device_check(m, "reserving the kernel workspace");
    return CIRCD_OK;
}

static int upload_state(const struct llama_model *m)
{
    struct model_device *dv = m->device;
    const struct kernels_backend *k = dv->k;
    k->copy(dv->params, m->params, bytes(m->n_params), KERNELS_HOST_TO_DEVICE);
    if (dv->adam_m) {
        k->copy(dv->adam_m, m->adam_m, bytes(m->n_params), KERNELS_HOST_TO_DEVICE);
        k->copy(dv->adam_v, m->adam_v, bytes(m->n_params), KERNELS_HOST_TO_DEVICE);
    }
    dv->host_newer = 0;
    return model_device_check(m, "uploading the parameters");
}

int model_device_refresh(const struct llama_model *m)
{
    struct model_device *dv = m->device;
    if (!dv || !dv->host_newer) return CIRCD_OK;
    return upload_state(m);
}

int model_device_download(const struct llama_model *m)
{
    struct model_device *dv = m->device;
    if (!dv || !dv->device_newer) return CIRCD_OK;
    const struct kernels_backend *k = dv->k;
    k->copy(m->params, dv->params, bytes(m->n_params), KERNELS_DEVICE_TO_HOST);
    if (dv->grads) k->copy(m->grads, dv->grads, bytes(m->n_params), KERNELS_DEVICE_TO_HOST);
    if (dv->adam_m) {
        k->copy(m->adam_m, dv->adam_m, bytes(m->n_params), KERNELS_DEVICE_TO_HOST);
        k->copy(m->adam_v, dv->adam_v, bytes(m->n_params), KERNELS_DEVICE_TO_HOST);
    }
    dv->device_newer = 0;
    return model_device_check(m, "downloading the parameters");
}

int model_sync_host(struct llama_model *m) { return model_device_download(m); }

void model_params_changed(struct llama_model *m)
{
    if (m->device) m->device->host_newer = 1;
}

float *model_backend_grads(struct llama_model *m)
{
    return m->device ? m->device->grads : m->grads;
}

int model_sync_acts_host(const struct llama_model *m)
{
    struct model_device *dv = m->device;
    if (!dv || !m->act_capacity_rows || !dv->acts_stale) return CIRCD_OK;
    dv->k->copy(m->act_memory, dv->act_memory, bytes(dv->act_floats), KERNELS_DEVICE_TO_HOST);
    dv->acts_stale = dv->logits_stale = 0;
    return model_device_check(m, "downloading the activations");
}

/* Leaves the current device (downloading what it holds newer) and frees its buffers. */
static int leave_device(struct llama_model *m)
{
    int rc = model_device_download(m);
    model_device_free(m);
    m->backend = kernels_backend_cpu();
    return rc;
}

int model_use_backend(struct llama_model *m, const struct kernels_backend *backend)
{
    if (!backend) backend = kernels_backend_cpu();
    if (backend == m->backend) return CIRCD_OK;
    int rc = leave_device(m);
    if (rc) return rc;
    /* the activation buffers are re-reserved (host and device alike) by the next forward */
    free(m->act_memory);
    free(m->grad_memory);
    m->act_memory = m->grad_memory = NULL;
    m->act_capacity_rows = 0;
    m->act_T = 0;
    m->B = m->T = 0;
    if (backend->host_memory) { m->backend = backend; return CIRCD_OK; }

    const struct llama_config *c = &m->config;
    struct model_device *dv = calloc(1, sizeof *dv);
    if (!dv) return err_set(CIRCD_ENOMEM, "out of memory placing the model on %s", backend->name);
    dv->k = backend;
    m->device = dv;
    m->backend = backend;
    size_t rope = (size_t)c->max_seq * (c->head_dim / 2);
    dv->w.layers = calloc((size_t)c->n_layers, sizeof *dv->w.layers);
    dv->dw.layers = calloc((size_t)c->n_layers, sizeof *dv->dw.layers);
    dv->acts.layers = calloc((size_t)c->n_layers, sizeof *dv->acts.layers);
    dv->params = device_alloc(dv, m->n_params, sizeof(float));
    dv->rope_cos = device_alloc(dv, rope, sizeof(float));
    dv->rope_sin = device_alloc(dv, rope, sizeof(float));
    if (!dv->w.layers || !dv->dw.layers || !dv->acts.layers || !dv->params || !dv->rope_cos || !dv->rope_sin) {
        rc = no_room(backend, "the parameters");
        goto fail;
    }
    model_bind_views(m, &dv->w, dv->params);
    backend->copy(dv->rope_cos, m->rope_cos, bytes(rope), KERNELS_HOST_TO_DEVICE);
    backend->copy(dv->rope_sin, m->rope_sin, bytes(rope), KERNELS_HOST_TO_DEVICE);
    if ((rc = model_device_enable(m)) || (rc = upload_state(m))) goto fail;
    return CIRCD_OK;
fail:
    model_device_free(m);
    m->backend = kernels_backend_cpu();
    return rc;
}
