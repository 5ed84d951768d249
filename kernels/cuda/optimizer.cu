/* optimizer.cu — the elementwise helpers (add, accumulate, zero), the squared gradient norm and AdamW on the GPU,
 * as the CPU's elementwise.c and adamw.c. grad_sum_squares_cuda is deterministic: a fixed grid writes one double
 * partial sum per block into the workspace, one block adds them in order, and the host reads the total back
 * (the one place that waits for the GPU). AdamW's bias corrections are formed on the host in double, as the CPU. */
#include "kernels/cuda/cuda_common.cuh"

#include <math.h>

#define SUMSQ_BLOCKS 1024 /* fixed, so the summation order does not depend on n */

__global__ static void vec_add_kernel(float *out, const float *a, const float *b, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        out[i] = a[i] + b[i]; /* out may alias a or b: each element is read before it is written */
}

__global__ static void vec_accumulate_kernel(float *out, const float *a, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        out[i] += a[i];
}

void vec_add_cuda(float *out, const float *a, const float *b, size_t n)
{
    if (n == 0) return;
    vec_add_kernel<<<cuda_blocks_for(n), CUDA_BLOCK>>>(out, a, b, n);
    cuda_check_launch("vec_add");
}

void vec_accumulate_cuda(float *out, const float *a, size_t n)
{
    if (n == 0) return;
    vec_accumulate_kernel<<<cuda_blocks_for(n), CUDA_BLOCK>>>(out, a, n);
    cuda_check_launch("vec_accumulate");
}

void vec_zero_cuda(float *out, size_t n)
{
    if (n == 0) return;
    cudaError_t e = cudaMemsetAsync(out, 0, n * sizeof(float), 0); /* all-zero bytes are 0.0f */
    if (e != cudaSuccess) cuda_record_error("cudaMemsetAsync (vec_zero)", cudaGetErrorString(e));
}

__global__ static void sum_squares_partial_kernel(double *partial, const float *g, size_t n)
{
    __shared__ double shared[CUDA_WARPS];
    double s = 0.0;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        s += (double)g[i] * (double)g[i];
    s = block_sum(s, shared);
    if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

__global__ static void sum_partials_kernel(double *total, const double *partial, int count)
{
    __shared__ double shared[CUDA_WARPS];
    double s = 0.0;
    for (int i = threadIdx.x; i < count; i += blockDim.x) s += partial[i];
    s = block_sum(s, shared);
    if (threadIdx.x == 0) *total = s;
}

double grad_sum_squares_cuda(const float *grads, size_t n)
{
    if (n == 0) return 0.0;
    double *partial = (double *)cuda_workspace((SUMSQ_BLOCKS + 1) * sizeof(double));
    if (!partial) return -1.0;
    sum_squares_partial_kernel<<<SUMSQ_BLOCKS, CUDA_BLOCK>>>(partial, grads, n);
    cuda_check_launch("grad_sum_squares (partials)");
    sum_partials_kernel<<<1, CUDA_BLOCK>>>(partial + SUMSQ_BLOCKS, partial, SUMSQ_BLOCKS);
    cuda_check_launch("grad_sum_squares (total)");
    double total = -1.0;
    cudaError_t e = cudaMemcpy(&total, partial + SUMSQ_BLOCKS, sizeof total, cudaMemcpyDeviceToHost);
    if (e != cudaSuccess) {
        cuda_record_error("cudaMemcpy (grad_sum_squares)", cudaGetErrorString(e));
        return -1.0;
    }
    return total;
}

__global__ static void adamw_kernel(float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1,
                                    float beta2, float eps, float weight_decay, float inv_bc1, float inv_bc2,
                                    float grad_scale)
{
    const float a1 = 1.0f - beta1, a2 = 1.0f - beta2;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float gi = grad_scale * g[i];
        float mi = beta1 * m[i] + a1 * gi;
        float vi = beta2 * v[i] + a2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float mhat = mi * inv_bc1, vhat = vi * inv_bc2;
        p[i] -= lr * (mhat / (sqrtf(vhat) + eps) + weight_decay * p[i]);
    }
}

void adamw_update_cuda(float *params, const float *grads, float *m, float *v, size_t n, float lr, float beta1,
                       float beta2, float eps, float weight_decay, int step, float grad_scale)
{
    if (n == 0) return;
    const float inv_bc1 = (float)(1.0 / (1.0 - pow((double)beta1, (double)step)));
    const float inv_bc2 = (float)(1.0 / (1.0 - pow((double)beta2, (double)step)));
    adamw_kernel<<<cuda_blocks_for(n), CUDA_BLOCK>>>(params, grads, m, v, n, lr, beta1, beta2, eps, weight_decay,
                                                     inv_bc1, inv_bc2, grad_scale);
    cuda_check_launch("adamw_update");
}
