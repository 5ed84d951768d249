/* layers.cu — the per-row and elementwise layers on the GPU, semantics as kernels.h and the CPU files of the same
 * names: token embedding, RMSNorm, RoPE, SwiGLU. Row reductions run one block per row (sums in double, as the CPU);
 * column reductions over rows (RMSNorm's dweight, the embedding scatter-add) give each thread whole columns and
 * walk the rows in order, so there are no atomics and the summation order is fixed. */
#include "kernels/cuda/cuda_common.cuh"

#include <math.h>

/* ---- embedding ---- */

__global__ static void embedding_forward_kernel(float *out, const int32_t *tokens, const float *table, int N, int d)
{
    size_t n = (size_t)N * d;
    for (size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x; idx < n; idx += (size_t)gridDim.x * blockDim.x) {
        size_t i = idx / d, c = idx % d;
        out[idx] = table[(size_t)tokens[i] * d + c];
    }
}

/* one thread per column, rows in order: repeated tokens never race */
__global__ static void embedding_backward_kernel(float *dtable, const float *dout, const int32_t *tokens, int N,
                                                 int d)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= d) return;
    for (int i = 0; i < N; i++) dtable[(size_t)tokens[i] * d + c] += dout[(size_t)i * d + c];
}

void embedding_forward_cuda(float *out, const int32_t *tokens, const float *table, int N, int d)
{
    if (N <= 0 || d <= 0) return;
    embedding_forward_kernel<<<cuda_blocks_for((size_t)N * d), CUDA_BLOCK>>>(out, tokens, table, N, d);
    cuda_check_launch("embedding_forward");
}

void embedding_backward_cuda(float *dtable, const float *dout, const int32_t *tokens, int N, int d)
{
    if (!dtable || N <= 0 || d <= 0) return;
    embedding_backward_kernel<<<(d + CUDA_BLOCK - 1) / CUDA_BLOCK, CUDA_BLOCK>>>(dtable, dout, tokens, N, d);
    cuda_check_launch("embedding_backward");
}

/* ---- RMSNorm ---- */

__global__ static void rmsnorm_forward_kernel(float *out, float *rstd, const float *inp, const float *weight, int d,
                                              float eps)
{
    __shared__ double shared[CUDA_WARPS];
    const float *x = inp + (size_t)blockIdx.x * d;
    float *o = out + (size_t)blockIdx.x * d;
    double ss = 0.0;
    for (int j = threadIdx.x; j < d; j += blockDim.x) ss += (double)x[j] * (double)x[j];
    ss = block_sum(ss, shared);
    /* As Hugging Face: variance in float32, then rsqrt(variance + eps), then (x * r) * w. */
    float var = (float)(ss / (double)d);
    float r = (float)(1.0 / sqrt((double)(var + eps)));
    for (int j = threadIdx.x; j < d; j += blockDim.x) o[j] = (x[j] * r) * weight[j];
    if (rstd && threadIdx.x == 0) rstd[blockIdx.x] = r;
}

__global__ static void rmsnorm_backward_dinp_kernel(float *dinp, const float *dout, const float *inp,
                                                    const float *weight, const float *rstd, int d)
{
    __shared__ double shared[CUDA_WARPS];
    size_t off = (size_t)blockIdx.x * d;
    const float *x = inp + off, *g = dout + off;
    float *dx = dinp + off;
    double dot = 0.0;
    for (int j = threadIdx.x; j < d; j += blockDim.x) dot += (double)g[j] * (double)weight[j] * (double)x[j];
    dot = block_sum(dot, shared);
    float r = rstd[blockIdx.x];
    float c = (float)(dot * (double)r * (double)r / (double)d);
    for (int j = threadIdx.x; j < d; j += blockDim.x) dx[j] += r * (weight[j] * g[j] - x[j] * c);
}

__global__ static void rmsnorm_backward_dweight_kernel(float *dweight, const float *dout, const float *inp,
                                                       const float *rstd, int N, int d)
{
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= d) return;
    double acc = 0.0;
    for (int i = 0; i < N; i++) acc += (double)(dout[(size_t)i * d + j] * inp[(size_t)i * d + j]) * (double)rstd[i];
    dweight[j] += (float)acc;
}

void rmsnorm_forward_cuda(float *out, float *rstd, const float *inp, const float *weight, int N, int d, float eps)
{
    if (N <= 0 || d <= 0) return;
    rmsnorm_forward_kernel<<<N, CUDA_BLOCK>>>(out, rstd, inp, weight, d, eps);
    cuda_check_launch("rmsnorm_forward");
}

void rmsnorm_backward_cuda(float *dinp, float *dweight, const float *dout, const float *inp, const float *weight,
                           const float *rstd, int N, int d)
{
    if (N <= 0 || d <= 0) return;
    if (dinp) {
        rmsnorm_backward_dinp_kernel<<<N, CUDA_BLOCK>>>(dinp, dout, inp, weight, rstd, d);
        cuda_check_launch("rmsnorm_backward (dinp)");
    }
    if (dweight) {
        rmsnorm_backward_dweight_kernel<<<(d + CUDA_BLOCK - 1) / CUDA_BLOCK, CUDA_BLOCK>>>(dweight, dout, inp, rstd,
                                                                                          N, d);
        cuda_check_launch("rmsnorm_backward (dweight)");
    }
}

/* ---- RoPE: one thread per (row, head, pair); each pair is read before it is written, so in place is fine ---- */

__global__ static void rope_tables_kernel(float *cos_table, float *sin_table, const float *inv_freq, int max_seq,
                                          int half)
{
    size_t n = (size_t)max_seq * half;
    for (size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x; idx < n; idx += (size_t)gridDim.x * blockDim.x) {
        int t = (int)(idx / half), i = (int)(idx % half);
        float angle = (float)t * inv_freq[i]; /* formed in float as Hugging Face, cos/sin in double */
        cos_table[idx] = (float)cos((double)angle);
        sin_table[idx] = (float)sin((double)angle);
    }
}

/* forward: the rotation, written; backward: the transposed rotation, accumulated into out (= dinp) */
template <bool backward>
__global__ static void rope_kernel(float *out, const float *inp, const float *cos_table, const float *sin_table,
                                   int rows, int T, int n_heads, int head_dim, int pos0)
{
    int half = head_dim / 2;
    size_t n = (size_t)rows * n_heads * half;
    for (size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x; idx < n; idx += (size_t)gridDim.x * blockDim.x) {
        int i = (int)(idx % half);
        size_t rh = idx / half; /* row * n_heads + head */
        int row = (int)(rh / n_heads);
        size_t t = (size_t)(pos0 + row % T) * half + i;
        float c = cos_table[t], s = sin_table[t];
        const float *x = inp + rh * head_dim;
        float *o = out + rh * head_dim;
        float x1 = x[i], x2 = x[i + half];
        if (backward) {
            o[i] += x1 * c + x2 * s;
            o[i + half] += x2 * c - x1 * s;
        } else {
            o[i] = x1 * c - x2 * s;
            o[i + half] = x2 * c + x1 * s;
        }
    }
}

void rope_tables_cuda(float *cos_table, float *sin_table, const float *inv_freq, int max_seq, int head_dim)
{
    int half = head_dim / 2;
    if (max_seq <= 0 || half <= 0) return;
    rope_tables_kernel<<<cuda_blocks_for((size_t)max_seq * half), CUDA_BLOCK>>>(cos_table, sin_table, inv_freq,
                                                                                max_seq, half);
    cuda_check_launch("rope_tables");
}

void rope_forward_cuda(float *out, const float *inp, const float *cos_table, const float *sin_table,
                       int B, int T, int n_heads, int head_dim, int pos0)
{
    int half = head_dim / 2, rows = B * T;
    if (rows <= 0 || n_heads <= 0 || half <= 0) return;
    rope_kernel<false><<<cuda_blocks_for((size_t)rows * n_heads * half), CUDA_BLOCK>>>(
        out, inp, cos_table, sin_table, rows, T, n_heads, head_dim, pos0);
    cuda_check_launch("rope_forward");
}

void rope_backward_cuda(float *dinp, const float *dout, const float *cos_table, const float *sin_table,
                        int B, int T, int n_heads, int head_dim, int pos0)
{
    int half = head_dim / 2, rows = B * T;
    if (!dinp || rows <= 0 || n_heads <= 0 || half <= 0) return;
    rope_kernel<true><<<cuda_blocks_for((size_t)rows * n_heads * half), CUDA_BLOCK>>>(
        dinp, dout, cos_table, sin_table, rows, T, n_heads, head_dim, pos0);
    cuda_check_launch("rope_backward");
}

/* ---- SwiGLU: h = silu(gate) * up; expf (not the fast __expf) to stay within 1e-4 of the CPU ---- */

__global__ static void swiglu_forward_kernel(float *h, const float *gate, const float *up, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float x = gate[i];
        h[i] = x / (1.0f + expf(-x)) * up[i];
    }
}

__global__ static void swiglu_backward_kernel(float *dgate, float *dup, const float *dh, const float *gate,
                                              const float *up, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float x = gate[i];
        float sig = 1.0f / (1.0f + expf(-x));
        if (dgate) dgate[i] += dh[i] * up[i] * (sig * (1.0f + x * (1.0f - sig)));
        if (dup) dup[i] += dh[i] * (x * sig);
    }
}

void swiglu_forward_cuda(float *h, const float *gate, const float *up, size_t n)
{
    if (n == 0) return;
    swiglu_forward_kernel<<<cuda_blocks_for(n), CUDA_BLOCK>>>(h, gate, up, n);
    cuda_check_launch("swiglu_forward");
}

void swiglu_backward_cuda(float *dgate, float *dup, const float *dh, const float *gate, const float *up, size_t n)
{
    if ((!dgate && !dup) || n == 0) return;
    swiglu_backward_kernel<<<cuda_blocks_for(n), CUDA_BLOCK>>>(dgate, dup, dh, gate, up, n);
    cuda_check_launch("swiglu_backward");
}
