/* kernels_cuda.h — the CUDA backend of kernels/kernels.h: the same functions with the same semantics and argument
 * order, named with a `_cuda` suffix, over DEVICE pointers (every float / int32 array argument lives in GPU memory;
 * scalars and sizes are host values). The backend table of kernels/backend.h (kernels_cuda_backend, in
 * backend_cuda.cu) is built over these names, so a model computes on the GPU through the same calls as on the CPU.
 *
 * Semantics are those documented in kernels.h: *_backward ACCUMULATES into its gradients, a NULL gradient pointer is
 * skipped, the attention pattern has exact zeros above the causal diagonal, a negative cross-entropy target is an
 * ignored row, query head h reads kv head h / (n_heads / n_kv_heads). Every reduction runs in a fixed order (no
 * floating-point atomics), so results are reproducible run to run; in fp32 they differ from the CPU path only by
 * summation order, fused multiply-adds and the CPU's polynomial exp (target: relative error <= 1e-4).
 *
 * All work is queued on the default (legacy) stream, in order. Matrix products run in fp32 (cublasSgemm, TF32 off)
 * or, after kernels_cuda_set_precision(KERNELS_BF16), with bf16 inputs and fp32 accumulation (cublasGemmEx; target
 * relative error <= 2e-2 against fp32); every other kernel is fp32 in both modes. The functions that wait for the
 * GPU are grad_sum_squares_cuda (it returns a host double), kernels_cuda_sync and the table's device-to-host copy.
 * Not here yet (issue 8): streams per rank, NCCL collectives, tiled / fused attention.
 *
 * Status: compiles in CI (CIRCD_CUDA=ON) — NOT YET RUN ON A GPU; tests/gpu/test_gpu_kernels.c checks every function
 * against the CPU where a GPU answers.
 *
 * Errors: the kernel functions return void like their CPU twins; a failed launch or cuBLAS call is recorded as a
 * sticky error that kernels_cuda_error() returns (the FIRST one since kernels_cuda_clear_error; NULL while all is
 * well). Callers check it after a step and turn it into err_set(CIRCD_E..., ...). Nothing here allocates except
 * kernels_cuda_init and kernels_cuda_reserve_workspace, which are called at setup, never in a hot loop.
 *
 * Workspace: one device scratch buffer shared by the kernels that need one (calls run in stream order, so they never
 * overlap). Reserve, before the first step, the largest of
 *   - attention_pattern_backward_cuda:  B * n_heads * Tq * sizeof(float)
 *   - bf16 matmuls (forward or backward): kernels_cuda_matmul_workspace(N, in_dim, out_dim)
 *                                        = the three operands in bf16, 2 (N in + out in + N out) bytes, each array
 *                                          rounded up to 256 bytes
 *   - grad_sum_squares_cuda: (1024 + 1) * sizeof(double) (kernels_cuda_init reserves 512 KiB, more than that).
 * A kernel whose need exceeds the reservation does nothing and records an error naming both sizes. */
#ifndef CIRCD_KERNELS_CUDA_H
#define CIRCD_KERNELS_CUDA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "kernels/backend.h"

/* ---- backend context ----
 * kernels_cuda_init selects `device`, creates the cuBLAS handle and a small workspace, precision FP32; 0 on success
 * (also when that device is already initialised), -1 on failure or when the process already uses ANOTHER device
 * (one GPU per process, one MPI rank per GPU) — the message in kernels_cuda_error(). kernels_cuda_shutdown frees
 * the workspace and the handle (a later init may pick any device).
 * kernels_cuda_reserve_workspace grows the device workspace to at least `bytes` (see "Workspace" above; it only
 * grows, and waits for queued work before it frees the old buffer); 0 or -1.
 * kernels_cuda_set_precision selects the matmul precision (KERNELS_FP32 or KERNELS_BF16); 0, or -1 for an unknown
 * value. kernels_cuda_matmul_workspace: the workspace bytes a bf16 product of that shape needs (0 for empty ones).
 * kernels_cuda_sync waits for all queued work and returns 0, or -1 when an error is recorded (then or before). */
int kernels_cuda_init(int device);
void kernels_cuda_shutdown(void);
int kernels_cuda_reserve_workspace(size_t bytes);
int kernels_cuda_set_precision(enum kernels_precision precision);
size_t kernels_cuda_matmul_workspace(int N, int in_dim, int out_dim);
int kernels_cuda_sync(void);
const char *kernels_cuda_error(void);
void kernels_cuda_clear_error(void);

/* ---- the backend table (kernels/backend.h) over these functions ----
 * kernels_cuda_backend initialises device `device_index` (kernels_cuda_init) on first use and returns the table
 * (name "cuda", host_memory 0, device_index): alloc = cudaMalloc + zero fill, release = cudaFree, copy =
 * cudaMemcpy of the given direction (device to host waits for queued kernels; regions must not overlap unless
 * identical), fill = a kernel, sync / error / clear_error / reserve_workspace / set_precision = the functions above.
 * NULL with kernels_cuda_error() set when no GPU answers, the index is out of range, or another device was opened
 * before. kernels_cuda_device_count: GPUs the runtime sees, 0 without a driver or on any error (never fails). */
const struct kernels_backend *kernels_cuda_backend(int device_index);
int kernels_cuda_device_count(void);

/* ---- matrix product through cuBLAS (fp32, or bf16 inputs with fp32 accumulation: see above) ---- */
void matmul_forward_cuda(float *out, const float *inp, const float *weight, int N, int in_dim, int out_dim);
void matmul_backward_cuda(float *dinp, float *dweight, const float *dout, const float *inp, const float *weight,
                          int N, int in_dim, int out_dim);

/* ---- token embedding ---- */
void embedding_forward_cuda(float *out, const int32_t *tokens, const float *table, int N, int d);
void embedding_backward_cuda(float *dtable, const float *dout, const int32_t *tokens, int N, int d);

/* ---- RMSNorm ---- */
void rmsnorm_forward_cuda(float *out, float *rstd, const float *inp, const float *weight, int N, int d, float eps);
void rmsnorm_backward_cuda(float *dinp, float *dweight, const float *dout, const float *inp, const float *weight,
                           const float *rstd, int N, int d);

/* ---- RoPE (rope_forward_cuda may run in place; the tables live on the device, inv_freq too) ---- */
void rope_tables_cuda(float *cos_table, float *sin_table, const float *inv_freq, int max_seq, int head_dim);
void rope_forward_cuda(float *out, const float *inp, const float *cos_table, const float *sin_table,
                       int B, int T, int n_heads, int head_dim, int pos0);
void rope_backward_cuda(float *dinp, const float *dout, const float *cos_table, const float *sin_table,
                        int B, int T, int n_heads, int head_dim, int pos0);

/* ---- causal grouped-query attention, pattern and z exposed for hooks (Tq <= Tk; the pattern backward uses the
 *      workspace) ---- */
void attention_pattern_forward_cuda(float *pattern, const float *q, const float *k, int B, int Tq, int Tk,
                                    int n_heads, int n_kv_heads, int head_dim);
void attention_pattern_backward_cuda(float *dq, float *dk, const float *dpattern, const float *pattern,
                                     const float *q, const float *k, int B, int Tq, int Tk,
                                     int n_heads, int n_kv_heads, int head_dim);
void attention_mix_forward_cuda(float *z, const float *pattern, const float *v, int B, int Tq, int Tk,
                                int n_heads, int n_kv_heads, int head_dim);
void attention_mix_backward_cuda(float *dpattern, float *dv, const float *dz, const float *pattern, const float *v,
                                 int B, int Tq, int Tk, int n_heads, int n_kv_heads, int head_dim);

/* ---- SwiGLU ---- */
void swiglu_forward_cuda(float *h, const float *gate, const float *up, size_t n);
void swiglu_backward_cuda(float *dgate, float *dup, const float *dh, const float *gate, const float *up, size_t n);

/* ---- softmax cross-entropy ---- */
void crossentropy_forward_cuda(float *losses, const float *logits, const int32_t *targets, int N, int V);
void crossentropy_backward_cuda(float *dlogits, const float *logits, const int32_t *targets, const float *dloss,
                                int N, int V);

/* ---- elementwise helpers ---- */
void vec_add_cuda(float *out, const float *a, const float *b, size_t n);
void vec_accumulate_cuda(float *out, const float *a, size_t n);
void vec_zero_cuda(float *out, size_t n);

/* ---- optimizer (grad_sum_squares_cuda waits for the GPU; returns -1.0 on an error) ---- */
double grad_sum_squares_cuda(const float *grads, size_t n);
void adamw_update_cuda(float *params, const float *grads, float *m, float *v, size_t n, float lr, float beta1,
                       float beta2, float eps, float weight_decay, int step, float grad_scale);

#ifdef __cplusplus
}
#endif

#endif
