/* backend.h — a kernels backend as a table: where a model's buffers live (host memory or one GPU's memory), how
 * bytes move between there and the host, and every kernels.h function over that memory. The model (runtime/model)
 * computes through one table, so the same forward/backward/hook code runs on the CPU (kernels/cpu/backend_cpu.c:
 * malloc + the kernels.h functions) and on a GPU (kernels/cuda/backend_cuda.cu: cudaMalloc + the *_cuda functions
 * of kernels_cuda.h), and a stage picks one by name (`device: cpu | cuda` in the spec).
 *
 * Every kernel pointer has exactly its kernels.h signature and semantics (backward ACCUMULATES, NULL gradient =
 * skipped); pointers are in the backend's memory. Kernels may run asynchronously; copy() to the host and sync()
 * wait for them. Errors of the void kernels are sticky: error() returns the first one (NULL while all is well) and
 * callers check it at the end of a step.
 */
#ifndef CIRCD_KERNELS_BACKEND_H
#define CIRCD_KERNELS_BACKEND_H

#include <stddef.h>
#include <stdint.h>

enum kernels_copy {
    KERNELS_HOST_TO_DEVICE,   /* dst: backend memory, src: host */
    KERNELS_DEVICE_TO_HOST,   /* dst: host, src: backend memory (waits for queued kernels) */
    KERNELS_DEVICE_TO_DEVICE, /* both in backend memory */
};

/* Precision of the matrix products. FP32: plain fp32 (TF32 off on GPUs). BF16: inputs and weights rounded to
 * bfloat16, products accumulated in fp32, results fp32 (master weights, activations and gradients stay fp32).
 * Only GPU backends offer BF16. */
enum kernels_precision { KERNELS_FP32 = 0, KERNELS_BF16 = 1 };

struct kernels_backend {
    const char *name;   /* "cpu" or "cuda" */
    int host_memory;    /* 1: buffers are ordinary host memory (a host pointer is a valid backend pointer) */
    int device_index;   /* the GPU in use (-1 for the CPU) */

    /* ---- memory ---- */
    void *(*alloc)(size_t bytes);  /* zero-filled; NULL on failure (error() says why) */
    void (*release)(void *p);      /* NULL is fine */
    void (*copy)(void *dst, const void *src, size_t bytes, enum kernels_copy direction);
    void (*fill)(float *out, float value, size_t n);
    int (*sync)(void);             /* waits for queued work; 0, or -1 with error() set */
    const char *(*error)(void);    /* the first error since clear_error, or NULL */
    void (*clear_error)(void);
    /* Selects the matmul precision; 0, or -1 where the backend lacks it (error() set). */
    int (*set_precision)(enum kernels_precision precision);
    /* Makes sure kernels that need scratch space (the GPU's attention backward: B * n_heads * Tq floats; bf16
     * matmul staging) have `bytes` of it, allocating outside the hot loop. 0 or -1. */
    int (*reserve_workspace)(size_t bytes);

    /* ---- kernels.h, one for one ---- */
    void (*matmul_forward)(float *out, const float *inp, const float *weight, int N, int in_dim, int out_dim);
    void (*matmul_backward)(float *dinp, float *dweight, const float *dout, const float *inp, const float *weight,
                            int N, int in_dim, int out_dim);
    void (*embedding_forward)(float *out, const int32_t *tokens, const float *table, int N, int d);
    void (*embedding_backward)(float *dtable, const float *dout, const int32_t *tokens, int N, int d);
    void (*rmsnorm_forward)(float *out, float *rstd, const float *inp, const float *weight, int N, int d, float eps);
    void (*rmsnorm_backward)(float *dinp, float *dweight, const float *dout, const float *inp, const float *weight,
                             const float *rstd, int N, int d);
    void (*rope_tables)(float *cos_table, float *sin_table, const float *inv_freq, int max_seq, int head_dim);
    void (*rope_forward)(float *out, const float *inp, const float *cos_table, const float *sin_table, int B, int T,
                         int n_heads, int head_dim, int pos0);
    void (*rope_backward)(float *dinp, const float *dout, const float *cos_table, const float *sin_table, int B,
                          int T, int n_heads, int head_dim, int pos0);
    void (*attention_pattern_forward)(float *pattern, const float *q, const float *k, int B, int Tq, int Tk,
                                      int n_heads, int n_kv_heads, int head_dim);
    void (*attention_pattern_backward)(float *dq, float *dk, const float *dpattern, const float *pattern,
                                       const float *q, const float *k, int B, int Tq, int Tk, int n_heads,
                                       int n_kv_heads, int head_dim);
    void (*attention_mix_forward)(float *z, const float *pattern, const float *v, int B, int Tq, int Tk,
                                  int n_heads, int n_kv_heads, int head_dim);
    void (*attention_mix_backward)(float *dpattern, float *dv, const float *dz, const float *pattern, const float *v,
                                   int B, int Tq, int Tk, int n_heads, int n_kv_heads, int head_dim);
    void (*swiglu_forward)(float *h, const float *gate, const float *up, size_t n);
    void (*swiglu_backward)(float *dgate, float *dup, const float *dh, const float *gate, const float *up, size_t n);
    void (*crossentropy_forward)(float *losses, const float *logits, const int32_t *targets, int N, int V);
    void (*crossentropy_backward)(float *dlogits, const float *logits, const int32_t *targets, const float *dloss,
                                  int N, int V);
    void (*vec_add)(float *out, const float *a, const float *b, size_t n);
    void (*vec_accumulate)(float *out, const float *a, size_t n);
    void (*vec_zero)(float *out, size_t n);
    double (*grad_sum_squares)(const float *grads, size_t n); /* waits for the device */
    void (*adamw_update)(float *params, const float *grads, float *m, float *v, size_t n, float lr, float beta1,
                         float beta2, float eps, float weight_decay, int step, float grad_scale);
};

/* The CPU backend (always there; its kernels are the kernels.h functions themselves). */
const struct kernels_backend *kernels_backend_cpu(void);

/* The backend called `name` ("cpu" or "cuda"), opened on GPU `device_index` where it is a GPU backend (the first
 * open picks the device for the whole process; a later open with another index is an error). NULL with an error
 * set (err_set, CIRCD_EINPUT) when the name is unknown, when this circd was built without CUDA (configure with
 * -DCIRCD_CUDA=ON), or when no usable GPU answers. */
const struct kernels_backend *kernels_backend_open(const char *name, int device_index);

/* 1 when this build has the CUDA backend compiled in (it may still find no GPU at run time). */
int kernels_backend_has_cuda(void);

/* Number of GPUs the CUDA runtime sees (0 without CUDA or without a driver); never fails. */
int kernels_backend_gpu_count(void);

#endif
