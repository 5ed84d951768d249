/* backend_cuda.cu — the GPU as a kernels backend (kernels/backend.h): device memory from cudaMalloc (zero-filled),
 * copies through cudaMemcpy (device to host synchronous, so the host may read at once), a fill kernel, and the
 * *_cuda functions of kernels_cuda.h, all on the default stream. One device per process: the first
 * kernels_cuda_backend call initialises it, a call naming another device fails with the error recorded. */
#include "kernels/cuda/cuda_common.cuh"

#include <stdio.h>

static void *cuda_alloc(size_t bytes)
{
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1); /* a valid pointer even for 0 bytes, as the CPU's calloc */
    if (e != cudaSuccess) {
        char detail[160];
        snprintf(detail, sizeof detail, "%zu bytes: %s", bytes, cudaGetErrorString(e));
        cuda_record_error("cudaMalloc", detail);
        return NULL;
    }
    e = cudaMemset(p, 0, bytes);
    if (e != cudaSuccess) {
        cuda_record_error("cudaMemset (alloc)", cudaGetErrorString(e));
        cudaFree(p);
        return NULL;
    }
    return p;
}

static void cuda_release(void *p)
{
    if (!p) return;
    cudaError_t e = cudaFree(p);
    if (e != cudaSuccess) cuda_record_error("cudaFree", cudaGetErrorString(e));
}

static void cuda_copy(void *dst, const void *src, size_t bytes, enum kernels_copy direction)
{
    if (bytes == 0 || dst == src) return;
    cudaMemcpyKind kind = direction == KERNELS_HOST_TO_DEVICE   ? cudaMemcpyHostToDevice
                          : direction == KERNELS_DEVICE_TO_HOST ? cudaMemcpyDeviceToHost
                                                                : cudaMemcpyDeviceToDevice;
    /* on the legacy default stream: ordered after the queued kernels; device to host returns once the bytes
     * have arrived */
    cudaError_t e = cudaMemcpy(dst, src, bytes, kind);
    if (e != cudaSuccess) cuda_record_error("cudaMemcpy", cudaGetErrorString(e));
}

__global__ static void fill_kernel(float *out, float value, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        out[i] = value;
}

static void cuda_fill(float *out, float value, size_t n)
{
    if (n == 0) return;
    fill_kernel<<<cuda_blocks_for(n), CUDA_BLOCK>>>(out, value, n);
    cuda_check_launch("fill");
}

int kernels_cuda_device_count(void)
{
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        (void)cudaGetLastError(); /* no driver / no device: clear it so no later launch check reports it */
        return 0;
    }
    return count;
}

/* Filled field by field (C++17 has no designated initialisers); the pointers are the same on every call. */
static struct kernels_backend table;

const struct kernels_backend *kernels_cuda_backend(int device_index)
{
    int count = kernels_cuda_device_count();
    if (device_index < 0 || device_index >= count) {
        char detail[96];
        if (count == 0)
            snprintf(detail, sizeof detail, "no CUDA device answers (no GPU or no driver)");
        else
            snprintf(detail, sizeof detail, "device %d requested, %d visible", device_index, count);
        cuda_record_error("kernels_cuda_backend", detail);
        return NULL;
    }
    if (kernels_cuda_init(device_index) != 0) return NULL; /* also refuses a second device */
    table.name = "cuda";
    table.host_memory = 0;
    table.device_index = device_index;
    table.alloc = cuda_alloc;
    table.release = cuda_release;
    table.copy = cuda_copy;
    table.fill = cuda_fill;
    table.sync = kernels_cuda_sync;
    table.error = kernels_cuda_error;
    table.clear_error = kernels_cuda_clear_error;
    table.set_precision = kernels_cuda_set_precision;
    table.reserve_workspace = kernels_cuda_reserve_workspace;
    table.matmul_forward = matmul_forward_cuda;
    table.matmul_backward = matmul_backward_cuda;
    table.embedding_forward = embedding_forward_cuda;
    table.embedding_backward = embedding_backward_cuda;
    table.rmsnorm_forward = rmsnorm_forward_cuda;
    table.rmsnorm_backward = rmsnorm_backward_cuda;
    table.rope_tables = rope_tables_cuda;
    table.rope_forward = rope_forward_cuda;
    table.rope_backward = rope_backward_cuda;
    table.attention_pattern_forward = attention_pattern_forward_cuda;
    table.attention_pattern_backward = attention_pattern_backward_cuda;
    table.attention_mix_forward = attention_mix_forward_cuda;
    table.attention_mix_backward = attention_mix_backward_cuda;
    table.swiglu_forward = swiglu_forward_cuda;
    table.swiglu_backward = swiglu_backward_cuda;
    table.crossentropy_forward = crossentropy_forward_cuda;
    table.crossentropy_backward = crossentropy_backward_cuda;
    table.vec_add = vec_add_cuda;
    table.vec_accumulate = vec_accumulate_cuda;
    table.vec_zero = vec_zero_cuda;
    table.grad_sum_squares = grad_sum_squares_cuda;
    table.adamw_update = adamw_update_cuda;
    return &table;
}
