/* crossentropy.cu — softmax cross-entropy over rows of logits on the GPU, one block per row, as the CPU's
 * crossentropy.c: lse = max + log(sum exp(l - max)) with the sum in double, loss = lse - l_t; a negative target
 * is an ignored row (loss 0, no gradient). Backward recomputes the row statistics. */
#include "kernels/cuda/cuda_common.cuh"

#include <math.h>

/* the row maximum and sum_j exp(l_j - max), known to every thread of the block */
__device__ static void row_stats(const float *l, int V, float *mx_out, double *sum_out)
{
    __shared__ float shared_max[CUDA_WARPS];
    __shared__ double shared_sum[CUDA_WARPS];
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < V; j += blockDim.x) mx = fmaxf(mx, l[j]);
    mx = block_max(mx, shared_max);
    double sum = 0.0;
    for (int j = threadIdx.x; j < V; j += blockDim.x) sum += (double)expf(l[j] - mx);
    *sum_out = block_sum(sum, shared_sum);
    *mx_out = mx;
}

__global__ static void crossentropy_forward_kernel(float *losses, const float *logits, const int32_t *targets, int V)
{
    int i = blockIdx.x, t = targets[i];
    if (t < 0) { /* the whole block takes this branch together */
        if (threadIdx.x == 0) losses[i] = 0.0f;
        return;
    }
    const float *l = logits + (size_t)i * V;
    float mx;
    double sum;
    row_stats(l, V, &mx, &sum);
    if (threadIdx.x == 0) losses[i] = (float)((double)mx + log(sum) - (double)l[t]);
}

__global__ static void crossentropy_backward_kernel(float *dlogits, const float *logits, const int32_t *targets,
                                                    const float *dloss, int V)
{
    int i = blockIdx.x, t = targets[i];
    if (t < 0) return;
    const float *l = logits + (size_t)i * V;
    float *dl = dlogits + (size_t)i * V;
    float mx;
    double sum;
    row_stats(l, V, &mx, &sum);
    float g = dloss[i], scale = (float)(1.0 / sum) * g;
    for (int j = threadIdx.x; j < V; j += blockDim.x) {
        float v = dl[j] + expf(l[j] - mx) * scale;
        dl[j] = j == t ? v - g : v; /* as the CPU: the softmax term added first, then the target's -g */
    }
}

void crossentropy_forward_cuda(float *losses, const float *logits, const int32_t *targets, int N, int V)
{
    if (N <= 0 || V <= 0) return;
    crossentropy_forward_kernel<<<N, CUDA_BLOCK>>>(losses, logits, targets, V);
    cuda_check_launch("crossentropy_forward");
}

void crossentropy_backward_cuda(float *dlogits, const float *logits, const int32_t *targets, const float *dloss,
                                int N, int V)
{
    if (!dlogits || N <= 0 || V <= 0) return;
    crossentropy_backward_kernel<<<N, CUDA_BLOCK>>>(dlogits, logits, targets, dloss, V);
    cuda_check_launch("crossentropy_backward");
}
