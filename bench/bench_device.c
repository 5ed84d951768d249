/* bench_device.c — `circd bench --device cuda|cpu`: training throughput of one Llama config on one device, with
 * fp32 and (on a GPU) bf16 matmuls, measured against the device's own matmul rate in the same run:
 *   - train tok/s: forward + backward + AdamW steps (model_train_step) on random tokens, the model on the device;
 *   - the matmuls of one step replayed alone on the step's exact shapes (backend->matmul_forward / _backward, every
 *     linear layer and the lm_head): their time, their share of the step time, their TFLOP/s;
 *   - the peak: backend->matmul_forward on large square products (cuBLAS on a GPU, OpenBLAS on the CPU);
 *   - the ratios: the step's matmuls against the peak (target >= 60% on a GPU), and the model's training FLOP/s
 *     against the peak (model FLOPs utilisation).
 * The medium config is d 1024, 16 layers, 16 heads / 4 kv, d_ff 2816, vocab 32000, seq 512, batch 16 (--batch);
 * --tiny is a small one that runs in seconds on a CPU, so the code path is tested without a GPU.
 * bench/torch_reference.py trains the same config in PyTorch; CIRCD_TORCH_TOKENS_PER_S=FP32[,BF16] (its tokens/s)
 * adds the ratio circd / PyTorch. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "model/model.h"
#include "stages/placement.h"
#include "util/error.h"

#define TARGET_MATMUL_PEAK_RATIO 0.60

struct device_case {
    const char *name;
    struct llama_config config;
    int B, T;
    int peak_dim; /* the square products of the peak measurement */
};

struct precision_result {
    double tokens_per_s, step_ms, model_tflops;
    double matmul_ms, matmul_tflops, peak_tflops;
};

/* The {in, out} shapes of one training step's linear layers, in the order the model runs them: per layer q, k, v,
 * o, gate, up, down, then the lm_head. Returns their count (<= 7 * layers + 1; cap entries). */
static int step_shapes(const struct llama_config *c, int (*shapes)[2], int cap)
{
    int d = c->d_model, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim, ff = c->d_ff, n = 0;
    const int layer[7][2] = {{d, qd}, {d, kvd}, {d, kvd}, {qd, d}, {d, ff}, {d, ff}, {ff, d}};
    for (int l = 0; l < c->n_layers; l++)
        for (int s = 0; s < 7 && n < cap; s++) { shapes[n][0] = layer[s][0]; shapes[n][1] = layer[s][1]; n++; }
    if (n < cap) { shapes[n][0] = d; shapes[n][1] = c->vocab_size; n++; }
    return n;
}

/* Bytes of bf16 staging a product of this shape needs (kernels/cuda: the three operands rounded to bf16, each
 * array aligned to 256 bytes). */
static size_t bf16_staging_bytes(size_t N, size_t in, size_t out)
{
    return 2 * (N * in + out * in + N * out) + 3 * 256;
}

/* Device buffers for the matmul measurements (allocated once, outside the timed loops). */
struct operands { float *x, *y, *w, *dx, *dw; };

static void operands_free(const struct kernels_backend *k, struct operands *o)
{
    k->release(o->x); k->release(o->y); k->release(o->w); k->release(o->dx); k->release(o->dw);
    memset(o, 0, sizeof *o);
}

static int operands_alloc(const struct kernels_backend *k, struct operands *o, size_t N, size_t max_in,
                          size_t max_out)
{
    memset(o, 0, sizeof *o);
    o->x = k->alloc(N * max_in * sizeof(float));
    o->y = k->alloc(N * max_out * sizeof(float));
    o->w = k->alloc(max_in * max_out * sizeof(float));
    o->dx = k->alloc(N * max_in * sizeof(float));
    o->dw = k->alloc(max_in * max_out * sizeof(float));
    if (!o->x || !o->y || !o->w || !o->dx || !o->dw) {
        operands_free(k, o);
        return err_set(CIRCD_ENOMEM, "bench: cannot allocate %.2f GB of matmul operands on %s (%s)",
                       4e-9 * (double)(2 * N * max_in + N * max_out + 2 * max_in * max_out), k->name,
                       k->error() ? k->error() : "out of memory");
    }
    /* Small values, so that nothing overflows or turns subnormal over the repetitions. */
    k->fill(o->x, 0.01f, N * max_in);
    k->fill(o->y, 0.02f, N * max_out);
    k->fill(o->w, 0.001f, max_in * max_out);
    return CIRCD_OK;
}

static int backend_check(const struct kernels_backend *k, const char *what)
{
    if (k->sync() == 0 && !k->error()) return CIRCD_OK;
    return err_set(CIRCD_EIO, "bench: %s on %s: %s", what, k->name, k->error() ? k->error() : "failed");
}

/* The step's matmuls alone (forward, then backward with both gradients, every shape), repeated for at least
 * min_seconds: milliseconds per step and TFLOP/s. */
static int time_step_matmuls(const struct kernels_backend *k, struct operands *o, int N, int (*shapes)[2],
                             int n_shapes, double min_seconds, double *ms, double *tflops)
{
    double flops = 0;
    for (int s = 0; s < n_shapes; s++) flops += 6.0 * N * (double)shapes[s][0] * shapes[s][1];
    int rc = backend_check(k, "before the matmuls");
    double start = bench_now_seconds(), elapsed;
    int reps = 0;
    do {
        for (int s = 0; s < n_shapes && !rc; s++)
            k->matmul_forward(o->y, o->x, o->w, N, shapes[s][0], shapes[s][1]);
        for (int s = n_shapes - 1; s >= 0 && !rc; s--)
            k->matmul_backward(o->dx, o->dw, o->y, o->x, o->w, N, shapes[s][0], shapes[s][1]);
        if (!rc) rc = backend_check(k, "the step's matmuls");
        reps++;
        elapsed = bench_now_seconds() - start;
    } while (!rc && (elapsed < min_seconds || reps < 2));
    *ms = elapsed / reps * 1e3;
    *tflops = flops * reps / elapsed * 1e-12;
    return rc;
}

/* The backend's own rate: out = x W^T on [dim, dim] x [dim, dim], at least min_seconds. */
static int time_peak(const struct kernels_backend *k, struct operands *o, int dim, double min_seconds,
                     double *tflops)
{
    int rc = backend_check(k, "before the peak");
    k->matmul_forward(o->y, o->x, o->w, dim, dim, dim); /* warm-up: cuBLAS picks its kernel */
    if (!rc) rc = backend_check(k, "the peak warm-up");
    double start = bench_now_seconds(), elapsed;
    int reps = 0;
    do {
        for (int i = 0; i < 4; i++) k->matmul_forward(o->y, o->x, o->w, dim, dim, dim);
        if (!rc) rc = backend_check(k, "the peak products");
        reps += 4;
        elapsed = bench_now_seconds() - start;
    } while (!rc && (elapsed < min_seconds || reps < 8));
    *tflops = 2.0 * dim * (double)dim * dim * reps / elapsed * 1e-12;
    return rc;
}

/* Training steps of m for at least min_seconds after two warm-up steps. */
static int time_training(struct llama_model *m, const struct kernels_backend *k, const int32_t *tokens,
                         const int32_t *targets, int B, int T, double min_seconds, double *tokens_per_s,
                         double *step_ms)
{
    struct adamw_config opt = {0.9f, 0.95f, 1e-8f, 0.1f, 1.0f};
    int rc = CIRCD_OK;
    for (int i = 0; i < 2 && !rc; i++) rc = model_train_step(m, tokens, targets, B, T, &opt, 1e-4f, NULL, NULL);
    if (!rc) rc = backend_check(k, "the warm-up steps");
    double start = bench_now_seconds(), elapsed = 0;
    int steps = 0;
    while (!rc && (elapsed < min_seconds || steps < 3)) {
        float loss;
        rc = model_train_step(m, tokens, targets, B, T, &opt, 1e-4f, &loss, NULL);
        if (!rc && !isfinite(loss)) rc = err_set(CIRCD_EINTERNAL, "bench: training loss %g at step %d", loss, steps);
        if (!rc) rc = backend_check(k, "a training step");
        steps++;
        elapsed = bench_now_seconds() - start;
    }
    *tokens_per_s = steps * (double)B * T / elapsed;
    *step_ms = elapsed / steps * 1e3;
    return rc;
}

/* The PyTorch figures the user measured with bench/torch_reference.py: "FP32[,BF16]" tokens/s (0 where absent). */
static void torch_reference(double *fp32, double *bf16)
{
    const char *v = getenv("CIRCD_TORCH_TOKENS_PER_S");
    *fp32 = *bf16 = 0;
    if (!v || !*v) return;
    char *end;
    *fp32 = strtod(v, &end);
    if (*end == ',') *bf16 = strtod(end + 1, &end);
    if (*end || !(*fp32 >= 0) || !(*bf16 >= 0)) {
        fprintf(stderr, "circd bench: CIRCD_TORCH_TOKENS_PER_S=\"%s\" ignored (expected FP32[,BF16] tokens/s)\n", v);
        *fp32 = *bf16 = 0;
    }
}

static void print_row(const char *precision, const struct precision_result *r, double matmul_flop_share,
                      double torch)
{
    double mm_ratio = r->matmul_tflops / r->peak_tflops, mfu = r->model_tflops / r->peak_tflops;
    printf("%-5s %11.0f %9.2f %8.3g %9.2f %7.0f%% %7.0f%% %8.3g %8.3g %7.0f%% %s %6.0f%%", precision,
           r->tokens_per_s, r->step_ms, r->model_tflops, r->matmul_ms, 100.0 * r->matmul_ms / r->step_ms,
           100.0 * matmul_flop_share, r->matmul_tflops, r->peak_tflops, 100.0 * mm_ratio,
           mm_ratio >= TARGET_MATMUL_PEAK_RATIO ? "(>= 60%)" : "(< 60%) ", 100.0 * mfu);
    if (torch > 0) printf("  %.2fx PyTorch (%.0f tok/s)", r->tokens_per_s / torch, torch);
    printf("\n");
}

static json_t *row_json(const struct precision_result *r, double matmul_flop_share, double torch)
{
    json_t *o = json_pack("{s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f}", "train_tokens_per_s", r->tokens_per_s,
                          "step_ms", r->step_ms, "model_tflops", r->model_tflops, "matmul_ms", r->matmul_ms,
                          "matmul_time_share", r->matmul_ms / r->step_ms, "matmul_flop_share", matmul_flop_share,
                          "matmul_tflops", r->matmul_tflops, "peak_tflops", r->peak_tflops,
                          "matmul_peak_ratio", r->matmul_tflops / r->peak_tflops, "model_peak_ratio",
                          r->model_tflops / r->peak_tflops);
    if (o && torch > 0) json_object_set_new(o, "torch_ratio", json_real(r->tokens_per_s / torch));
    return o;
}

static int run_device(const struct device_case *dc, const struct placement *pl, double min_seconds, int json)
{
    const struct kernels_backend *k = pl->backend ? pl->backend : kernels_backend_cpu();
    const struct llama_config *c = &dc->config;
    int B = dc->B, T = dc->T, N = B * T, shapes[7 * 1024 + 1][2];
    int n_shapes = step_shapes(c, shapes, (int)(sizeof shapes / sizeof shapes[0]));
    size_t max_in = (size_t)dc->peak_dim, max_out = (size_t)dc->peak_dim, staging = 0, rows = (size_t)N;
    for (int s = 0; s < n_shapes; s++) {
        if ((size_t)shapes[s][0] > max_in) max_in = (size_t)shapes[s][0];
        if ((size_t)shapes[s][1] > max_out) max_out = (size_t)shapes[s][1];
        size_t need = bf16_staging_bytes((size_t)N, (size_t)shapes[s][0], (size_t)shapes[s][1]);
        if (need > staging) staging = need;
    }
    if ((size_t)dc->peak_dim > rows) rows = (size_t)dc->peak_dim;
    size_t peak_staging = bf16_staging_bytes((size_t)dc->peak_dim, (size_t)dc->peak_dim, (size_t)dc->peak_dim);
    if (peak_staging > staging) staging = peak_staging;

    double fwd = bench_forward_flops_per_token(c, T), matmul_flops = 0;
    for (int s = 0; s < n_shapes; s++) matmul_flops += 2.0 * shapes[s][0] * (double)shapes[s][1];
    double matmul_flop_share = matmul_flops / fwd, torch[2];
    torch_reference(&torch[0], &torch[1]);

    struct llama_model m;
    memset(&m, 0, sizeof m);
    struct operands o;
    memset(&o, 0, sizeof o);
    int32_t *tokens = malloc((size_t)N * sizeof *tokens), *targets = malloc((size_t)N * sizeof *targets);
    int rc = tokens && targets ? CIRCD_OK : err_set(CIRCD_ENOMEM, "bench: out of memory for %d tokens", N);
    int have_model = 0;
    if (!rc && !(rc = model_create(&m, c))) have_model = 1;
    if (!rc) rc = model_enable_training(&m);
    if (!rc) rc = model_reserve(&m, B, T);
    if (!rc) {
        model_init_random(&m, 1234);
        rc = placement_apply(pl, &m);
    }
    if (!rc && k->reserve_workspace(staging) != 0)
        rc = err_set(CIRCD_ENOMEM, "bench: %.2f GB of matmul workspace on %s: %s", staging * 1e-9, k->name,
                     k->error() ? k->error() : "failed");
    if (!rc) rc = operands_alloc(k, &o, rows, max_in, max_out);
    if (!rc) {
        struct rng g;
        rng_seed(&g, 99);
        for (int i = 0; i < N; i++) tokens[i] = (int32_t)rng_below(&g, (uint64_t)c->vocab_size);
        model_next_token_targets(targets, tokens, B, T);
    }
    char where[32];
    if (pl->backend) snprintf(where, sizeof where, "%s:%d", k->name, k->device_index);
    else snprintf(where, sizeof where, "%s", k->name);
    if (!rc && !json) {
        printf("device %s: %s config: d %d, %d layers, %d heads / %d kv, d_ff %d, vocab %d, seq %d, batch %d "
               "(%.3g M parameters, %.3g GFLOP per token trained)\n", where, dc->name, c->d_model, c->n_layers, c->n_heads, c->n_kv_heads,
               c->d_ff, c->vocab_size, T, B, m.n_params * 1e-6, 3.0 * fwd * 1e-9);
        printf("%-5s %11s %9s %8s %9s %8s %8s %8s %8s %17s %7s\n", "", "train tok/s", "step ms", "model TF", "matmul ms",
               "mm time", "mm FLOP", "mm TF/s", "peak TF", "mm / peak", "MFU");
    }
    json_t *root = json ? json_object() : NULL;
    int n_precisions = pl->backend ? 2 : 1; /* the CPU computes in fp32 only */
    for (int p = 0; p < n_precisions && !rc; p++) {
        struct precision_result r;
        memset(&r, 0, sizeof r);
        enum kernels_precision kp = p ? KERNELS_BF16 : KERNELS_FP32;
        if (k->set_precision(kp) != 0)
            rc = err_set(CIRCD_EINPUT, "bench: %s has no %s matmuls: %s", k->name, spec_precision_names[p],
                         k->error() ? k->error() : "refused");
        if (!rc) rc = time_training(&m, k, tokens, targets, B, T, min_seconds, &r.tokens_per_s, &r.step_ms);
        if (!rc) rc = time_step_matmuls(k, &o, N, shapes, n_shapes, min_seconds / 2, &r.matmul_ms, &r.matmul_tflops);
        if (!rc) rc = time_peak(k, &o, dc->peak_dim, min_seconds / 2, &r.peak_tflops);
        if (rc) break;
        r.model_tflops = r.tokens_per_s * 3.0 * fwd * 1e-12;
        if (json) json_object_set_new(root, spec_precision_names[p], row_json(&r, matmul_flop_share, torch[p]));
        else print_row(spec_precision_names[p], &r, matmul_flop_share, torch[p]);
        fflush(stdout);
    }
    if (pl->backend) k->set_precision(KERNELS_FP32);
    if (!rc && json) {
        json_object_set_new(root, "device", json_string(where));
        json_object_set_new(root, "config", json_string(dc->name));
        json_object_set_new(root, "batch", json_integer(B));
        json_object_set_new(root, "seq", json_integer(T));
        char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (text) printf("%s\n", text);
        free(text);
    } else if (!rc) {
        printf("(mm: the step's matmuls replayed alone on its shapes; peak: %s's own rate on %d x %d x %d products "
               "in the same run; MFU: model training FLOP/s / peak)\n", pl->backend ? "cuBLAS" : "OpenBLAS",
               dc->peak_dim, dc->peak_dim, dc->peak_dim);
        printf("PyTorch: run `python3 bench/torch_reference.py --d %d --layers %d --heads %d --kv-heads %d --d-ff %d "
               "--vocab %d --seq %d --batch %d --device %s` on this machine, then set CIRCD_TORCH_TOKENS_PER_S=FP32,BF16 "
               "(its tokens/s) to see circd / PyTorch%s\n", c->d_model, c->n_layers, c->n_heads, c->n_kv_heads, c->d_ff,
               c->vocab_size, T, B, pl->backend ? "cuda" : "cpu", torch[0] > 0 ? " (given: see the rows)" : "");
    }
    json_decref(root);
    operands_free(k, &o);
    if (have_model) model_free(&m);
    free(tokens);
    free(targets);
    return rc;
}

int bench_device(enum spec_device device, int tiny, int batch, double min_seconds, int json)
{
    struct device_case dc = {"medium", bench_make_config(32000, 1024, 16, 16, 4, 2816, 512), 16, 512, 8192};
    if (tiny) dc = (struct device_case){"tiny", bench_make_config(256, 64, 2, 4, 2, 176, 32), 4, 32, 256};
    if (batch > 0) dc.B = batch;
    const char *why = placement_unavailable(device);
    if (why) {
        fprintf(stderr, "circd bench --device %s: no GPU (%s)\n", spec_device_names[device], why);
        return 2;
    }
    struct placement pl;
    char who[64];
    snprintf(who, sizeof who, "bench --device %s", spec_device_names[device]);
    int rc = placement_open(&pl, device, SPEC_PRECISION_FP32, 0, who); /* one process: the first GPU */
    if (!rc) rc = run_device(&dc, &pl, min_seconds, json);
    if (!rc) return 0;
    fprintf(stderr, "circd bench: %s\n", err_msg());
    return rc == CIRCD_EINPUT || rc == CIRCD_EIO ? 2 : 1;
}
