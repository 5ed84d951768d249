/* attention.cu — causal grouped-query attention on the GPU in the CPU's two steps (kernels.h, attention.c), so the
 * pattern and per-head z stay hook points: pattern = softmax((q . k) * scale) with exact zeros above the causal
 * diagonal, z = pattern · v. Query row i sits at position Tk - Tq + i and sees keys 0 .. Tk - Tq + i; entries above
 * the diagonal are structural zeros (never read by mix_forward, no gradient written for them by mix_backward,
 * dpattern there ignored by pattern_backward).
 *
 * Work split, with no atomics (a fixed summation order, reproducible):
 *   - a block per query row (b, h, i) for pattern_forward, mix_forward, the dpattern part of mix_backward and the
 *     dq part of pattern_backward;
 *   - a block per key row (b, kv head, j) for dk and dv, walking the group's heads and the rows that see j in
 *     order, so the gradients a group shares are written by one block only.
 * pattern_backward keeps each row's sum_k p_k dp_k (softmax backward) in the workspace between its two kernels:
 * B * n_heads * Tq floats, reserved with kernels_cuda_reserve_workspace.
 * These are straightforward kernels (one dot product per thread, rows from global memory); a tiled / fused
 * version is the performance work of issue 8, once a GPU can measure it. */
#include "kernels/cuda/cuda_common.cuh"

#include <math.h>

/* threads for a kernel that gives one thread per element of a head_dim row */
static inline int head_threads(int head_dim)
{
    int t = (head_dim + 31) / 32 * 32;
    return t > 1024 ? 1024 : (t < 32 ? 32 : t);
}

__global__ static void pattern_forward_kernel(float *pattern, const float *q, const float *k, int Tq, int Tk,
                                              int n_heads, int n_kv_heads, int hd, float scale)
{
    extern __shared__ float qrow[];
    __shared__ float shared_max[CUDA_WARPS];
    __shared__ double shared_sum[CUDA_WARPS];
    int i = blockIdx.x % Tq, h = (blockIdx.x / Tq) % n_heads, b = blockIdx.x / (Tq * n_heads);
    int kvh = h / (n_heads / n_kv_heads), last = Tk - Tq + i;
    size_t ks = (size_t)n_kv_heads * hd;
    const float *qi = q + ((size_t)b * Tq + i) * n_heads * hd + (size_t)h * hd;
    const float *kb = k + (size_t)b * Tk * ks + (size_t)kvh * hd;
    float *p = pattern + (size_t)blockIdx.x * Tk; /* blockIdx.x = (b * n_heads + h) * Tq + i */
    for (int d = threadIdx.x; d < hd; d += blockDim.x) qrow[d] = qi[d];
    __syncthreads();
    float mx = -INFINITY;
    for (int j = threadIdx.x; j <= last; j += blockDim.x) {
        const float *kj = kb + (size_t)j * ks;
        float s = 0.0f;
        for (int d = 0; d < hd; d++) s = fmaf(qrow[d], kj[d], s);
        s *= scale; /* after the dot product, as Hugging Face */
        p[j] = s;
        mx = fmaxf(mx, s);
    }
    mx = block_max(mx, shared_max);
    double sum = 0.0;
    for (int j = threadIdx.x; j <= last; j += blockDim.x) { /* each thread revisits its own entries */
        float e = expf(p[j] - mx);
        p[j] = e;
        sum += e;
    }
    sum = block_sum(sum, shared_sum);
    float inv = (float)(1.0 / sum);
    for (int j = threadIdx.x; j < Tk; j += blockDim.x) p[j] = j <= last ? p[j] * inv : 0.0f;
}

/* per query row: rd = sum_j p_j dp_j saved for the dk kernel; dq_i += scale * sum_j p_j (dp_j - rd) k_j */
__global__ static void pattern_backward_rows_kernel(float *dq, float *row_dot, const float *dpattern,
                                                    const float *pattern, const float *k, int Tq, int Tk,
                                                    int n_heads, int n_kv_heads, int hd, float scale)
{
    __shared__ double shared[CUDA_WARPS];
    int i = blockIdx.x % Tq, h = (blockIdx.x / Tq) % n_heads, b = blockIdx.x / (Tq * n_heads);
    int kvh = h / (n_heads / n_kv_heads), last = Tk - Tq + i;
    const float *p = pattern + (size_t)blockIdx.x * Tk, *dp = dpattern + (size_t)blockIdx.x * Tk;
    double acc = 0.0;
    for (int j = threadIdx.x; j <= last; j += blockDim.x) acc += (double)p[j] * (double)dp[j];
    float rd = (float)block_sum(acc, shared);
    if (threadIdx.x == 0) row_dot[blockIdx.x] = rd;
    if (!dq) return;
    size_t ks = (size_t)n_kv_heads * hd;
    const float *kb = k + (size_t)b * Tk * ks + (size_t)kvh * hd;
    float *dqi = dq + ((size_t)b * Tq + i) * n_heads * hd + (size_t)h * hd;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float g = dqi[d];
        for (int j = 0; j <= last; j++) g = fmaf(p[j] * (dp[j] - rd) * scale, kb[(size_t)j * ks + d], g);
        dqi[d] = g;
    }
}

/* per key row j of a kv head: dk_j += scale * sum over the group's heads and the rows i that see j of
 * p_ij (dp_ij - rd_i) q_i */
__global__ static void pattern_backward_keys_kernel(float *dk, const float *row_dot, const float *dpattern,
                                                    const float *pattern, const float *q, int Tq, int Tk,
                                                    int n_heads, int n_kv_heads, int hd, float scale)
{
    int j = blockIdx.x % Tk, kvh = (blockIdx.x / Tk) % n_kv_heads, b = blockIdx.x / (Tk * n_kv_heads);
    int group = n_heads / n_kv_heads, i0 = j - (Tk - Tq) > 0 ? j - (Tk - Tq) : 0;
    size_t qs = (size_t)n_heads * hd;
    float *dkj = dk + ((size_t)b * Tk + j) * n_kv_heads * hd + (size_t)kvh * hd;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float g = dkj[d];
        for (int h = kvh * group; h < (kvh + 1) * group; h++) {
            size_t row0 = ((size_t)b * n_heads + h) * Tq; /* pattern row index of (b, h, 0) */
            const float *qb = q + (size_t)b * Tq * qs + (size_t)h * hd + d;
            for (int i = i0; i < Tq; i++) {
                size_t at = (row0 + i) * Tk + j;
                g = fmaf(pattern[at] * (dpattern[at] - row_dot[row0 + i]) * scale, qb[(size_t)i * qs], g);
            }
        }
        dkj[d] = g;
    }
}

/* z_i = sum_j p_ij v_j, summed in key order from 0 as the CPU */
__global__ static void mix_forward_kernel(float *z, const float *pattern, const float *v, int Tq, int Tk,
                                          int n_heads, int n_kv_heads, int hd)
{
    int i = blockIdx.x % Tq, h = (blockIdx.x / Tq) % n_heads, b = blockIdx.x / (Tq * n_heads);
    int kvh = h / (n_heads / n_kv_heads), last = Tk - Tq + i;
    size_t vs = (size_t)n_kv_heads * hd;
    const float *p = pattern + (size_t)blockIdx.x * Tk;
    const float *vb = v + (size_t)b * Tk * vs + (size_t)kvh * hd;
    float *zi = z + ((size_t)b * Tq + i) * n_heads * hd + (size_t)h * hd;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float acc = 0.0f;
        for (int j = 0; j <= last; j++) acc = fmaf(p[j], vb[(size_t)j * vs + d], acc);
        zi[d] = acc;
    }
}

/* dpattern_ij += dz_i . v_j on the causal part */
__global__ static void mix_backward_pattern_kernel(float *dpattern, const float *dz, const float *v, int Tq, int Tk,
                                                   int n_heads, int n_kv_heads, int hd)
{
    extern __shared__ float dzrow[];
    int i = blockIdx.x % Tq, h = (blockIdx.x / Tq) % n_heads, b = blockIdx.x / (Tq * n_heads);
    int kvh = h / (n_heads / n_kv_heads), last = Tk - Tq + i;
    size_t vs = (size_t)n_kv_heads * hd;
    const float *dzi = dz + ((size_t)b * Tq + i) * n_heads * hd + (size_t)h * hd;
    const float *vb = v + (size_t)b * Tk * vs + (size_t)kvh * hd;
    float *dp = dpattern + (size_t)blockIdx.x * Tk;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) dzrow[d] = dzi[d];
    __syncthreads();
    for (int j = threadIdx.x; j <= last; j += blockDim.x) {
        const float *vj = vb + (size_t)j * vs;
        float s = 0.0f;
        for (int d = 0; d < hd; d++) s = fmaf(dzrow[d], vj[d], s);
        dp[j] += s;
    }
}

/* dv_j += sum over the group's heads and the rows i that see j of p_ij dz_i */
__global__ static void mix_backward_values_kernel(float *dv, const float *dz, const float *pattern, int Tq, int Tk,
                                                  int n_heads, int n_kv_heads, int hd)
{
    int j = blockIdx.x % Tk, kvh = (blockIdx.x / Tk) % n_kv_heads, b = blockIdx.x / (Tk * n_kv_heads);
    int group = n_heads / n_kv_heads, i0 = j - (Tk - Tq) > 0 ? j - (Tk - Tq) : 0;
    size_t zs = (size_t)n_heads * hd;
    float *dvj = dv + ((size_t)b * Tk + j) * n_kv_heads * hd + (size_t)kvh * hd;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float g = dvj[d];
        for (int h = kvh * group; h < (kvh + 1) * group; h++) {
            const float *pb = pattern + ((size_t)b * n_heads + h) * Tq * Tk + j;
            const float *dzb = dz + (size_t)b * Tq * zs + (size_t)h * hd + d;
            for (int i = i0; i < Tq; i++) g = fmaf(pb[(size_t)i * Tk], dzb[(size_t)i * zs], g);
        }
        dvj[d] = g;
    }
}

static int shapes_ok(int B, int Tq, int Tk, int n_heads, int n_kv_heads, int head_dim)
{
    return B > 0 && Tq > 0 && Tk >= Tq && n_heads > 0 && n_kv_heads > 0 && head_dim > 0 &&
           n_heads % n_kv_heads == 0;
}

void attention_pattern_forward_cuda(float *pattern, const float *q, const float *k, int B, int Tq, int Tk,
                                    int n_heads, int n_kv_heads, int head_dim)
{
    if (!shapes_ok(B, Tq, Tk, n_heads, n_kv_heads, head_dim)) return;
    const float scale = (float)(1.0 / sqrt((double)head_dim));
    unsigned rows = (unsigned)((size_t)B * n_heads * Tq);
    pattern_forward_kernel<<<rows, CUDA_BLOCK, head_dim * sizeof(float)>>>(pattern, q, k, Tq, Tk, n_heads,
                                                                           n_kv_heads, head_dim, scale);
    cuda_check_launch("attention_pattern_forward");
}

void attention_pattern_backward_cuda(float *dq, float *dk, const float *dpattern, const float *pattern,
                                     const float *q, const float *k, int B, int Tq, int Tk,
                                     int n_heads, int n_kv_heads, int head_dim)
{
    if ((!dq && !dk) || !shapes_ok(B, Tq, Tk, n_heads, n_kv_heads, head_dim)) return;
    const float scale = (float)(1.0 / sqrt((double)head_dim));
    size_t rows = (size_t)B * n_heads * Tq;
    float *row_dot = (float *)cuda_workspace(rows * sizeof(float));
    if (!row_dot) return;
    pattern_backward_rows_kernel<<<(unsigned)rows, CUDA_BLOCK>>>(dq, row_dot, dpattern, pattern, k, Tq, Tk, n_heads,
                                                                 n_kv_heads, head_dim, scale);
    cuda_check_launch("attention_pattern_backward (dq)");
    if (dk) {
        unsigned keys = (unsigned)((size_t)B * n_kv_heads * Tk);
        pattern_backward_keys_kernel<<<keys, head_threads(head_dim)>>>(dk, row_dot, dpattern, pattern, q, Tq, Tk,
                                                                       n_heads, n_kv_heads, head_dim, scale);
        cuda_check_launch("attention_pattern_backward (dk)");
    }
}

void attention_mix_forward_cuda(float *z, const float *pattern, const float *v, int B, int Tq, int Tk,
                                int n_heads, int n_kv_heads, int head_dim)
{
    if (!shapes_ok(B, Tq, Tk, n_heads, n_kv_heads, head_dim)) return;
    unsigned rows = (unsigned)((size_t)B * n_heads * Tq);
    mix_forward_kernel<<<rows, head_threads(head_dim)>>>(z, pattern, v, Tq, Tk, n_heads, n_kv_heads, head_dim);
    cuda_check_launch("attention_mix_forward");
}

void attention_mix_backward_cuda(float *dpattern, float *dv, const float *dz, const float *pattern, const float *v,
                                 int B, int Tq, int Tk, int n_heads, int n_kv_heads, int head_dim)
{
    if ((!dpattern && !dv) || !shapes_ok(B, Tq, Tk, n_heads, n_kv_heads, head_dim)) return;
    if (dpattern) {
        unsigned rows = (unsigned)((size_t)B * n_heads * Tq);
        mix_backward_pattern_kernel<<<rows, CUDA_BLOCK, head_dim * sizeof(float)>>>(dpattern, dz, v, Tq, Tk,
                                                                                    n_heads, n_kv_heads, head_dim);
        cuda_check_launch("attention_mix_backward (dpattern)");
    }
    if (dv) {
        unsigned keys = (unsigned)((size_t)B * n_kv_heads * Tk);
        mix_backward_values_kernel<<<keys, head_threads(head_dim)>>>(dv, dz, pattern, Tq, Tk, n_heads, n_kv_heads,
                                                                     head_dim);
        cuda_check_launch("attention_mix_backward (dv)");
    }
}
