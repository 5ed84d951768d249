/* kernels_cuda.h — the CUDA backend of kernels/kernels.h: the same functions with the same semantics and argument
 * order, named with a `_cuda` suffix, over DEVICE pointers (every float / int32 array argument lives in GPU memory;
 * scalars and sizes are host values). A suffix rather than a dispatch table: the CPU path stays untouched and a
 * caller (a stage with `device: cuda`) picks the backend once, at compile-visible call sites; a table can be built
 * on top of these names later without changing them.
 *
 * Semantics are those documented in kernels.h: *_backward ACCUMULATES into its gradients, a NULL gradient pointer is
 * skipped, the attention pattern has exact zeros above the causal diagonal, etc. Every reduction runs in a fixed
 * order (no floating-point atomics), so results are reproducible run to run; they differ from the CPU path only by
 * summation order (target: relative error <= 1e-4 in fp32).
 *
 * All work is queued on the default (legacy) stream, in order; cuBLAS runs in pure fp32 (TF32 off). The only
 * functions that wait for the GPU are grad_sum_squares_cuda (it returns a host double) and kernels_cuda_sync.
 * TODO (issue 8): bf16 matmuls (cublasGemmEx, CUDA_R_16BF in, fp32 accumulate), streams per rank, NCCL.
 *
 * Status: compile-only groundwork — NOT YET RUN ON A GPU.
 *
 * Errors: the kernel functions return void like their CPU twins; a failed launch or cuBLAS call is recorded as a
 * sticky error that kernels_cuda_error() returns (NULL while all is well). Callers check it after a step and turn
 * it into err_set(CIRCD_E..., ...). Nothing here allocates except kernels_cuda_init and
 * kernels_cuda_reserve_workspace, which are called at setup, never in a hot loop. */
#ifndef CIRCD_KERNELS_CUDA_H
#define CIRCD_KERNELS_CUDA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- backend context ----
 * kernels_cuda_init selects `device`, creates the cuBLAS handle and a small workspace; 0 on success, -1 on failure
 * (message in kernels_cuda_error()). kernels_cuda_reserve_workspace grows the device workspace to at least `bytes`
 * (attention_pattern_backward_cuda needs B * n_heads * Tq floats; call it with the largest shape up front).
 * kernels_cuda_sync waits for all queued work and returns 0, or -1 with the error recorded. */
int kernels_cuda_init(int device);
void kernels_cuda_shutdown(void);
int kernels_cuda_reserve_workspace(size_t bytes);
int kernels_cuda_sync(void);
const char *kernels_cuda_error(void);
void kernels_cuda_clear_error(void);

/* ---- the backend table (kernels/backend.h) over these functions ----
 * kernels_cuda_backend initialises device `device_index` (kernels_cuda_init) on first use and returns the table;
 * NULL with kernels_cuda_error() set when no GPU answers or another device was opened before.
 * kernels_cuda_device_count: GPUs the runtime sees, 0 without a driver (never fails). */
struct kernels_backend;
const struct kernels_backend *kernels_cuda_backend(int device_index);
int kernels_cuda_device_count(void);

/* ---- matrix product through cuBLAS (fp32) ---- */
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

/* ---- RoPE (rope_forward_cuda may run in place) ---- */
void rope_tables_cuda(float *cos_table, float *sin_table, const float *inv_freq, int max_seq, int head_dim);
void rope_forward_cuda(float *out, const float *inp, const float *cos_table, const float *sin_table,
                       int B, int T, int n_heads, int head_dim, int pos0);
void rope_backward_cuda(float *dinp, const float *dout, const float *cos_table, const float *sin_table,
                        int B, int T, int n_heads, int head_dim, int pos0);

/* ---- causal grouped-query attention, pattern and z exposed for hooks ---- */
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
