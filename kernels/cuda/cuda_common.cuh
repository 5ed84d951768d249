/* cuda_common.cuh — what the .cu files of kernels/cuda share and nothing outside uses: the backend context (cuBLAS
 * handle, matmul precision, workspace, sticky error) kept in context.cu, launch checking, grid sizing and the block
 * reductions (warp shuffles, then one value per warp through shared memory; a fixed order, so results are
 * reproducible). The reductions assume blockDim.x == CUDA_BLOCK. */
#ifndef CIRCD_CUDA_COMMON_CUH
#define CIRCD_CUDA_COMMON_CUH

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stddef.h>

#include "kernels/cuda/kernels_cuda.h"

#define CUDA_BLOCK 256 /* threads per block for every kernel here (a multiple of 32, at most 1024) */
#define CUDA_WARPS (CUDA_BLOCK / 32)

/* context.cu */
cublasHandle_t cuda_blas_handle(void);
enum kernels_precision cuda_matmul_precision(void); /* kernels_cuda_set_precision's choice, FP32 at init */
void *cuda_workspace(size_t bytes); /* NULL (error recorded) when the reserved workspace is smaller */
void cuda_record_error(const char *what, const char *detail);
void cuda_check_launch(const char *kernel); /* records cudaGetLastError() after a launch */
void cuda_check_blas(cublasStatus_t status, const char *call);

/* blocks for a grid-stride loop over n elements (capped; the loop covers the rest) */
static inline unsigned cuda_blocks_for(size_t n)
{
    size_t b = (n + CUDA_BLOCK - 1) / CUDA_BLOCK;
    if (b > 65536) b = 65536;
    return b ? (unsigned)b : 1u;
}

/* Sum of one value per thread over the block; every thread gets the total. `shared` holds CUDA_WARPS values. */
template <typename T> __device__ inline T block_sum(T x, T *shared)
{
    for (int off = 16; off > 0; off >>= 1) x += __shfl_down_sync(0xffffffffu, x, off);
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads(); /* shared may still be read by a previous reduction */
    if (lane == 0) shared[warp] = x;
    __syncthreads();
    T total = 0;
    for (int w = 0; w < CUDA_WARPS; w++) total += shared[w];
    return total;
}

/* Maximum of one value per thread over the block; every thread gets it. */
__device__ inline float block_max(float x, float *shared)
{
    for (int off = 16; off > 0; off >>= 1) x = fmaxf(x, __shfl_down_sync(0xffffffffu, x, off));
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) shared[warp] = x;
    __syncthreads();
    float m = shared[0];
    for (int w = 1; w < CUDA_WARPS; w++) m = fmaxf(m, shared[w]);
    return m;
}

#endif
