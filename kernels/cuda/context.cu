/* context.cu — the CUDA backend's state: the chosen device (one per process), one cuBLAS handle (pure fp32, TF32
 * off, default stream), the matmul precision (fp32 or bf16), a device workspace grown only by
 * kernels_cuda_reserve_workspace, and the first error seen (sticky until cleared), which the void kernel functions
 * record and callers read with kernels_cuda_error(). */
#include "kernels/cuda/cuda_common.cuh"

#include <stdio.h>

static cublasHandle_t blas_handle;
static int initialised;
static int current_device = -1;
static enum kernels_precision matmul_precision = KERNELS_FP32;
static void *workspace;
static size_t workspace_bytes;
static char error_message[256];
static int has_error;

void cuda_record_error(const char *what, const char *detail)
{
    if (has_error) return; /* keep the first: later failures are usually its consequences */
    snprintf(error_message, sizeof error_message, "cuda: %s: %s", what, detail ? detail : "failed");
    has_error = 1;
}

void cuda_check_launch(const char *kernel)
{
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) cuda_record_error(kernel, cudaGetErrorString(e));
}

void cuda_check_blas(cublasStatus_t status, const char *call)
{
    if (status != CUBLAS_STATUS_SUCCESS) cuda_record_error(call, cublasGetStatusString(status));
}

cublasHandle_t cuda_blas_handle(void)
{
    if (!initialised) cuda_record_error("cuBLAS", "kernels_cuda_init was not called");
    return blas_handle;
}

void *cuda_workspace(size_t bytes)
{
    if (bytes > workspace_bytes) {
        char detail[160];
        snprintf(detail, sizeof detail, "needs %zu bytes, %zu reserved (kernels_cuda_reserve_workspace)", bytes,
                 workspace_bytes);
        cuda_record_error("workspace", detail);
        return NULL;
    }
    return workspace;
}

int kernels_cuda_reserve_workspace(size_t bytes)
{
    if (bytes <= workspace_bytes) return 0;
    void *grown = NULL;
    cudaError_t e = cudaMalloc(&grown, bytes);
    if (e != cudaSuccess) {
        cuda_record_error("cudaMalloc (workspace)", cudaGetErrorString(e));
        return -1;
    }
    if (workspace) cudaFree(workspace); /* cudaFree waits for queued work that may still use the old one */
    workspace = grown;
    workspace_bytes = bytes;
    return 0;
}

int kernels_cuda_init(int device)
{
    if (initialised) {
        if (device == current_device) return 0;
        char detail[128];
        snprintf(detail, sizeof detail, "this process already uses GPU %d; it cannot also open GPU %d",
                 current_device, device);
        cuda_record_error("kernels_cuda_init", detail);
        return -1;
    }
    cudaError_t e = cudaSetDevice(device);
    if (e != cudaSuccess) {
        cuda_record_error("cudaSetDevice", cudaGetErrorString(e));
        return -1;
    }
    cublasStatus_t s = cublasCreate(&blas_handle);
    if (s != CUBLAS_STATUS_SUCCESS) {
        cuda_record_error("cublasCreate", cublasGetStatusString(s));
        return -1;
    }
    /* plain fp32 as on the CPU, no TF32 tensor-core rounding (the CPU-equality target is 1e-4) */
    s = cublasSetMathMode(blas_handle, CUBLAS_DEFAULT_MATH);
    if (s != CUBLAS_STATUS_SUCCESS) {
        cuda_record_error("cublasSetMathMode", cublasGetStatusString(s));
        cublasDestroy(blas_handle);
        return -1;
    }
    initialised = 1;
    current_device = device;
    matmul_precision = KERNELS_FP32;
    /* room for grad_sum_squares_cuda's per-block partial sums */
    if (kernels_cuda_reserve_workspace(65536 * sizeof(double)) != 0) {
        kernels_cuda_shutdown();
        return -1;
    }
    return 0;
}

void kernels_cuda_shutdown(void)
{
    if (workspace) cudaFree(workspace);
    workspace = NULL;
    workspace_bytes = 0;
    if (initialised) cublasDestroy(blas_handle);
    initialised = 0;
    current_device = -1;
}

int kernels_cuda_set_precision(enum kernels_precision precision)
{
    if (precision != KERNELS_FP32 && precision != KERNELS_BF16) {
        char detail[64];
        snprintf(detail, sizeof detail, "unknown precision %d", (int)precision);
        cuda_record_error("kernels_cuda_set_precision", detail);
        return -1;
    }
    matmul_precision = precision;
    return 0;
}

enum kernels_precision cuda_matmul_precision(void) { return matmul_precision; }

int kernels_cuda_sync(void)
{
    cudaError_t e = cudaDeviceSynchronize();
    if (e != cudaSuccess) cuda_record_error("cudaDeviceSynchronize", cudaGetErrorString(e));
    return has_error ? -1 : 0;
}

const char *kernels_cuda_error(void) { return has_error ? error_message : NULL; }

void kernels_cuda_clear_error(void)
{
    has_error = 0;
    error_message[0] = '\0';
}
