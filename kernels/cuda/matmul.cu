/* matmul.cu — the linear layers through cuBLAS, PyTorch nn.Linear layout as kernels.h, in the precision chosen with
 * kernels_cuda_set_precision:
 *   - FP32: cublasSgemm, TF32 off (the handle's CUBLAS_DEFAULT_MATH), as the CPU's cblas_sgemm;
 *   - BF16: the operands of each product are rounded (to nearest even) into bfloat16 copies in the workspace, then
 *     cublasGemmEx with CUDA_R_16BF inputs, CUBLAS_COMPUTE_32F (fp32 accumulation) and an fp32 output, so
 *     activations, master weights and gradients stay fp32 and backward still accumulates (beta = 1) in fp32.
 *     The workspace must hold kernels_cuda_matmul_workspace(N, in_dim, out_dim) bytes (kernels_cuda.h).
 * cuBLAS is column-major: a row-major [r, c] array is the column-major [c, r] matrix, its transpose. So
 *   out[N, out] = inp · W^T          is  out^T  = W^T-view^T · inp^T-view   -> gemm(T, N, out, N, in)
 *   dinp[N, in] += dout · W          is  dinp^T = W^T-view · dout^T-view    -> gemm(N, N, in, N, out)
 *   dW[out, in] += dout^T · inp      is  dW^T   = inp^T-view · dout-view^T  -> gemm(N, T, in, out, N)      */
#include "kernels/cuda/cuda_common.cuh"

#include <cuda_bf16.h>

/* Each bf16 staging array starts on a 256-byte boundary (cuBLAS's preferred alignment). */
#define BF16_ALIGN 256

static size_t bf16_array_bytes(size_t n)
{
    return (n * sizeof(__nv_bfloat16) + BF16_ALIGN - 1) / BF16_ALIGN * BF16_ALIGN;
}

/* Workspace layout of a bf16 product: [inp N x in | weight out x in | dout N x out], each aligned. */
struct bf16_staging {
    __nv_bfloat16 *inp, *weight, *dout;
};

size_t kernels_cuda_matmul_workspace(int N, int in_dim, int out_dim)
{
    if (N <= 0 || in_dim <= 0 || out_dim <= 0) return 0;
    size_t n = (size_t)N, in = (size_t)in_dim, out = (size_t)out_dim;
    return bf16_array_bytes(n * in) + bf16_array_bytes(out * in) + bf16_array_bytes(n * out);
}

/* The staging arrays in the workspace; 0, or -1 with the error recorded when too little is reserved. */
static int bf16_staging_for(struct bf16_staging *s, int N, int in_dim, int out_dim)
{
    char *base = (char *)cuda_workspace(kernels_cuda_matmul_workspace(N, in_dim, out_dim));
    if (!base) return -1;
    size_t n = (size_t)N, in = (size_t)in_dim, out = (size_t)out_dim;
    s->inp = (__nv_bfloat16 *)base;
    s->weight = (__nv_bfloat16 *)(base + bf16_array_bytes(n * in));
    s->dout = (__nv_bfloat16 *)(base + bf16_array_bytes(n * in) + bf16_array_bytes(out * in));
    return 0;
}

__global__ static void to_bf16_kernel(__nv_bfloat16 *dst, const float *src, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        dst[i] = __float2bfloat16_rn(src[i]);
}

static void to_bf16(__nv_bfloat16 *dst, const float *src, size_t n)
{
    to_bf16_kernel<<<cuda_blocks_for(n), CUDA_BLOCK>>>(dst, src, n);
    cuda_check_launch("matmul (rounding to bf16)");
}

/* C[m, n] = alpha op(A) op(B) + beta C (column-major, cuBLAS's arguments): in fp32 from a and b, or, where the
 * bf16 copies a16 / b16 are given, from those with fp32 accumulation and an fp32 C. */
static void gemm(cublasOperation_t op_a, cublasOperation_t op_b, int m, int n, int k, const float *a,
                 const __nv_bfloat16 *a16, int lda, const float *b, const __nv_bfloat16 *b16, int ldb, float beta,
                 float *c, int ldc, const char *what)
{
    const float one = 1.0f;
    cublasStatus_t status;
    if (a16 && b16)
        status = cublasGemmEx(cuda_blas_handle(), op_a, op_b, m, n, k, &one, a16, CUDA_R_16BF, lda, b16,
                              CUDA_R_16BF, ldb, &beta, c, CUDA_R_32F, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    else
        status = cublasSgemm(cuda_blas_handle(), op_a, op_b, m, n, k, &one, a, lda, b, ldb, &beta, c, ldc);
    cuda_check_blas(status, what);
}

void matmul_forward_cuda(float *out, const float *inp, const float *weight, int N, int in_dim, int out_dim)
{
    if (N <= 0 || out_dim <= 0) return;
    if (in_dim <= 0) { /* an empty sum: out = 0 */
        cudaError_t e = cudaMemsetAsync(out, 0, (size_t)N * (size_t)out_dim * sizeof(float), 0);
        if (e != cudaSuccess) cuda_record_error("cudaMemsetAsync (matmul)", cudaGetErrorString(e));
        return;
    }
    struct bf16_staging s = {NULL, NULL, NULL};
    if (cuda_matmul_precision() == KERNELS_BF16) {
        if (bf16_staging_for(&s, N, in_dim, out_dim) != 0) return;
        to_bf16(s.inp, inp, (size_t)N * (size_t)in_dim);
        to_bf16(s.weight, weight, (size_t)out_dim * (size_t)in_dim);
    }
    gemm(CUBLAS_OP_T, CUBLAS_OP_N, out_dim, N, in_dim, weight, s.weight, in_dim, inp, s.inp, in_dim, 0.0f, out,
         out_dim, "matmul_forward");
}

void matmul_backward_cuda(float *dinp, float *dweight, const float *dout, const float *inp, const float *weight,
                          int N, int in_dim, int out_dim)
{
    if ((!dinp && !dweight) || N <= 0 || in_dim <= 0 || out_dim <= 0) return; /* nothing to add */
    struct bf16_staging s = {NULL, NULL, NULL};
    if (cuda_matmul_precision() == KERNELS_BF16) {
        if (bf16_staging_for(&s, N, in_dim, out_dim) != 0) return;
        to_bf16(s.dout, dout, (size_t)N * (size_t)out_dim);
        if (dinp) to_bf16(s.weight, weight, (size_t)out_dim * (size_t)in_dim);
        if (dweight) to_bf16(s.inp, inp, (size_t)N * (size_t)in_dim);
    }
    if (dinp)
        gemm(CUBLAS_OP_N, CUBLAS_OP_N, in_dim, N, out_dim, weight, s.weight, in_dim, dout, s.dout, out_dim, 1.0f,
             dinp, in_dim, "matmul_backward (dinp)");
    if (dweight)
        gemm(CUBLAS_OP_N, CUBLAS_OP_T, in_dim, out_dim, N, inp, s.inp, in_dim, dout, s.dout, out_dim, 1.0f, dweight,
             in_dim, "matmul_backward (dweight)");
}
