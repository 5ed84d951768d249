/* matmul.cu — the linear layers through cuBLAS in fp32, PyTorch nn.Linear layout as kernels.h. cuBLAS is
 * column-major: a row-major [r, c] array is the column-major [c, r] matrix, its transpose. So
 *   out[N, out] = inp · W^T          is  out^T  = W^T-view^T · inp^T-view   -> gemm(T, N, out, N, in)
 *   dinp[N, in] += dout · W          is  dinp^T = W^T-view · dout^T-view    -> gemm(N, N, in, N, out)
 *   dW[out, in] += dout^T · inp      is  dW^T   = inp^T-view · dout-view^T  -> gemm(N, T, in, out, N)
 * TODO (issue 8): bf16 weights/activations through cublasGemmEx (CUDA_R_16BF, CUBLAS_COMPUTE_32F). */
#include "kernels/cuda/cuda_common.cuh"

void matmul_forward_cuda(float *out, const float *inp, const float *weight, int N, int in_dim, int out_dim)
{
    if (N <= 0 || out_dim <= 0) return;
    if (in_dim <= 0) { /* an empty sum: out = 0 */
        cudaError_t e = cudaMemsetAsync(out, 0, (size_t)N * (size_t)out_dim * sizeof(float), 0);
        if (e != cudaSuccess) cuda_record_error("cudaMemsetAsync (matmul)", cudaGetErrorString(e));
        return;
    }
    const float one = 1.0f, zero = 0.0f;
    cuda_check_blas(cublasSgemm(cuda_blas_handle(), CUBLAS_OP_T, CUBLAS_OP_N, out_dim, N, in_dim, &one, weight,
                                in_dim, inp, in_dim, &zero, out, out_dim),
                    "cublasSgemm (matmul_forward)");
}

void matmul_backward_cuda(float *dinp, float *dweight, const float *dout, const float *inp, const float *weight,
                          int N, int in_dim, int out_dim)
{
    if (N <= 0 || in_dim <= 0 || out_dim <= 0) return; /* every product is empty: nothing to add */
    const float one = 1.0f;
    if (dinp)
        cuda_check_blas(cublasSgemm(cuda_blas_handle(), CUBLAS_OP_N, CUBLAS_OP_N, in_dim, N, out_dim, &one, weight,
                                    in_dim, dout, out_dim, &one, dinp, in_dim),
                        "cublasSgemm (matmul_backward, dinp)");
    if (dweight)
        cuda_check_blas(cublasSgemm(cuda_blas_handle(), CUBLAS_OP_N, CUBLAS_OP_T, in_dim, out_dim, N, &one, inp,
                                    in_dim, dout, out_dim, &one, dweight, in_dim),
                        "cublasSgemm (matmul_backward, dweight)");
}
