/* backend_cpu.c — the CPU as a kernels backend (kernels/backend.h): host memory from calloc, copies as memcpy, and
 * the kernels.h functions themselves, so a model on this table computes exactly what it computed before tables. */
#include "kernels/backend.h"

#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"

static void *cpu_alloc(size_t bytes) { return calloc(bytes ? bytes : 1, 1); }
static void cpu_release(void *p) { free(p); }

static void cpu_copy(void *dst, const void *src, size_t bytes, enum kernels_copy direction)
{
    (void)direction; /* every direction is host to host */
    if (bytes && dst != src) memmove(dst, src, bytes);
}

static void cpu_fill(float *out, float value, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = value;
}

static int cpu_sync(void) { return 0; }
static const char *cpu_error(void) { return NULL; }
static void cpu_clear_error(void) {}
static int cpu_reserve_workspace(size_t bytes) { (void)bytes; return 0; }

static int cpu_set_precision(enum kernels_precision precision)
{
    return precision == KERNELS_FP32 ? 0 : -1; /* bf16 matmuls are a GPU feature */
}

static const struct kernels_backend cpu_backend = {
    .name = "cpu",
    .host_memory = 1,
    .device_index = -1,
    .alloc = cpu_alloc,
    .release = cpu_release,
    .copy = cpu_copy,
    .fill = cpu_fill,
    .sync = cpu_sync,
    .error = cpu_error,
    .clear_error = cpu_clear_error,
    .set_precision = cpu_set_precision,
    .reserve_workspace = cpu_reserve_workspace,
    .matmul_forward = matmul_forward,
    .matmul_backward = matmul_backward,
    .embedding_forward = embedding_forward,
    .embedding_backward = embedding_backward,
    .rmsnorm_forward = rmsnorm_forward,
    .rmsnorm_backward = rmsnorm_backward,
    .rope_tables = rope_tables,
    .rope_forward = rope_forward,
    .rope_backward = rope_backward,
    .attention_pattern_forward = attention_pattern_forward,
    .attention_pattern_backward = attention_pattern_backward,
    .attention_mix_forward = attention_mix_forward,
    .attention_mix_backward = attention_mix_backward,
    .swiglu_forward = swiglu_forward,
    .swiglu_backward = swiglu_backward,
    .crossentropy_forward = crossentropy_forward,
    .crossentropy_backward = crossentropy_backward,
    .vec_add = vec_add,
    .vec_accumulate = vec_accumulate,
    .vec_zero = vec_zero,
    .grad_sum_squares = grad_sum_squares,
    .adamw_update = adamw_update,
};

const struct kernels_backend *kernels_backend_cpu(void) { return &cpu_backend; }
