/* bench.c — `circd bench`: training and forward throughput of two reference configs (tiny, small) on this machine,
 * the model's achieved GFLOP/s, and the GFLOP/s of cblas_sgemm on exactly the matrix shapes one training step
 * uses, measured in the same run, with their ratio; the flags that choose another benchmark (--atp, --atp-scaling,
 * --pipeline, --device: bench_*.c). Speed targets live here, not in timed tests. */
#include <cblas.h>
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "model/model.h"
#include "stages/placement.h"
#include "util/error.h"

struct bench_case {
    const char *name;
    struct llama_config config;
    int B, T;
};

struct bench_result {
    double train_tokens_per_s, forward_tokens_per_s, model_gflops, sgemm_gflops;
    double train_flops_per_token, step_ms, forward_ms, adamw_ms;
};

double bench_now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

struct llama_config bench_make_config(int vocab, int d, int layers, int heads, int kv_heads, int d_ff, int T)
{
    struct llama_config c = {0};
    c.vocab_size = vocab;
    c.d_model = d;
    c.n_layers = layers;
    c.n_heads = heads;
    c.n_kv_heads = kv_heads;
    c.head_dim = d / heads;
    c.d_ff = d_ff;
    c.max_seq = T;
    c.rope_theta = 10000.0f;
    c.norm_eps = 1e-5f;
    c.bos_token_id = c.eos_token_id = -1;
    return c;
}

/* Forward FLOPs per token: 2 per weight of every matrix product (the lm_head included, the embedding lookup not)
 * plus the causal attention products (q·k and pattern·v over (T+1)/2 keys on average). Training is 3x. */
double bench_forward_flops_per_token(const struct llama_config *c, int T)
{
    double d = c->d_model, qd = (double)c->n_heads * c->head_dim, kvd = (double)c->n_kv_heads * c->head_dim;
    double per_layer = 2.0 * (d * qd + 2.0 * d * kvd + qd * d + 3.0 * d * c->d_ff);
    double attention = 2.0 * 2.0 * qd * (T + 1) / 2.0;
    return c->n_layers * (per_layer + attention) + 2.0 * d * c->vocab_size;
}

/* One training step's sgemm calls, timed on their own: forward out = x W^T, backward dx += dy W, dW += dy^T x. */
static double sgemm_gflops(const struct llama_config *c, int N, double min_seconds)
{
    int d = c->d_model, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim, ff = c->d_ff;
    int shapes[][2] = {{d, qd}, {d, kvd}, {d, kvd}, {qd, d}, {d, ff}, {d, ff}, {ff, d}}; /* {in, out} */
    int n_shapes = (int)(sizeof shapes / sizeof shapes[0]);
    int max_in = ff > qd ? ff : qd, max_out = ff > c->vocab_size ? ff : c->vocab_size;
    if (d > max_in) max_in = d;
    if (qd > max_out) max_out = qd;
    if (d > max_out) max_out = d;
    /* x: layer input (read only), y: layer output, dx: input gradient (accumulated), w / dw: weight and its
     * gradient. Growth stays linear in the repetitions, so no value overflows or becomes subnormal. */
    size_t nx = (size_t)N * max_in, ny = (size_t)N * max_out, nw = (size_t)max_in * max_out;
    float *x = malloc(nx * sizeof(float)), *y = malloc(ny * sizeof(float)), *dx = calloc(nx, sizeof(float));
    float *w = malloc(nw * sizeof(float)), *dw = calloc(nw, sizeof(float));
    if (!x || !y || !dx || !w || !dw) { free(x); free(y); free(dx); free(w); free(dw); return NAN; }
    for (size_t i = 0; i < nx; i++) x[i] = 0.01f * (float)(i % 97) - 0.48f;
    for (size_t i = 0; i < ny; i++) y[i] = 0.01f * (float)(i % 89) - 0.44f;
    for (size_t i = 0; i < nw; i++) w[i] = 0.001f * (float)(i % 83) - 0.041f;
    double flops = 0, start = bench_now_seconds(), elapsed;
    int reps = 0;
    do {
        for (int l = 0; l <= c->n_layers; l++) {
            int count = l < c->n_layers ? n_shapes : 1;
            for (int s = 0; s < count; s++) {
                int in = l < c->n_layers ? shapes[s][0] : d, out = l < c->n_layers ? shapes[s][1] : c->vocab_size;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, out, in, 1.0f, x, in, w, in, 0.0f, y, out);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, in, out, 1.0f, y, out, w, in, 1.0f, dx,
                            in);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, N, 1.0f, y, out, x, in, 1.0f, dw, in);
                flops += 3.0 * 2.0 * N * (double)in * out;
            }
        }
        reps++;
        elapsed = bench_now_seconds() - start;
    } while (elapsed < min_seconds || reps < 2);
    free(x); free(y); free(dx); free(w); free(dw);
    return flops / elapsed * 1e-9;
}

static int run_case(const struct bench_case *bc, double min_seconds, struct bench_result *r)
{
    struct llama_model m;
    int rc = model_create(&m, &bc->config);
    if (rc) return rc;
    if ((rc = model_enable_training(&m)) || (rc = model_reserve(&m, bc->B, bc->T))) { model_free(&m); return rc; }
    model_init_random(&m, 1234);
    size_t N = (size_t)bc->B * bc->T;
    int32_t *tokens = malloc(N * sizeof *tokens), *targets = malloc(N * sizeof *targets);
    if (!tokens || !targets) { free(tokens); free(targets); model_free(&m); return err_set(CIRCD_ENOMEM, "oom"); }
    struct rng g;
    rng_seed(&g, 99);
    for (size_t i = 0; i < N; i++) tokens[i] = (int32_t)rng_below(&g, (uint64_t)bc->config.vocab_size);
    model_next_token_targets(targets, tokens, bc->B, bc->T);
    struct adamw_config opt = {0.9f, 0.95f, 1e-8f, 0.1f, 1.0f};

    for (int i = 0; i < 2; i++) { /* warm-up: page in buffers, spin up thread pools */
        model_forward(&m, tokens, targets, bc->B, bc->T);
        model_zero_grad(&m);
        model_backward(&m, NULL);
        model_adamw_step(&m, &opt, 1e-4f);
    }
    double start = bench_now_seconds(), elapsed, t_adam = 0;
    int steps = 0;
    do {
        model_forward(&m, tokens, targets, bc->B, bc->T);
        model_zero_grad(&m);
        model_backward(&m, NULL);
        double t0 = bench_now_seconds();
        model_adamw_step(&m, &opt, 1e-4f);
        t_adam += bench_now_seconds() - t0;
        steps++;
        elapsed = bench_now_seconds() - start;
    } while (elapsed < min_seconds || steps < 3);
    r->train_tokens_per_s = steps * (double)N / elapsed;
    r->step_ms = elapsed / steps * 1e3;
    r->adamw_ms = t_adam / steps * 1e3;

    start = bench_now_seconds();
    steps = 0;
    do {
        model_forward(&m, tokens, NULL, bc->B, bc->T);
        steps++;
        elapsed = bench_now_seconds() - start;
    } while (elapsed < min_seconds / 2 || steps < 3);
    r->forward_tokens_per_s = steps * (double)N / elapsed;
    r->forward_ms = elapsed / steps * 1e3;
    r->train_flops_per_token = 3.0 * bench_forward_flops_per_token(&bc->config, bc->T);
    r->model_gflops = r->train_tokens_per_s * r->train_flops_per_token * 1e-9;
    r->sgemm_gflops = sgemm_gflops(&bc->config, (int)N, min_seconds / 2);
    free(tokens);
    free(targets);
    model_free(&m);
    return CIRCD_OK;
}

int cmd_bench(int argc, char **argv)
{
    int json = 0, atp = 0, atp_scaling = 0, pipeline = 0, tiny = 0, batch = 0;
    float seconds = 3.0f;
    const char *device = NULL;
    struct arg_option options[] = {
        {"json", ARG_SWITCH, &json, NULL, "print one JSON object {tiny: {...}, small: {...}}", 0, 0},
        {"seconds", ARG_FLOAT, &seconds, "S", "minimum measuring time per figure (default 3)", 0, 0},
        {"atp", ARG_SWITCH, &atp, NULL, "instead: the cost of circuit discovery (node/edge AtP, EAP-IG, AtP*, exact "
         "patching) in units of one forward pass", 0, 0},
        {"atp-scaling", ARG_SWITCH, &atp_scaling, NULL, "instead: node AtP / EAP pairs/s on 1 rank and sharded over "
         "all ranks, and the parallel efficiency (run under mpirun -np 2 with OMP_NUM_THREADS=1)", 0, 0},
        {"pipeline", ARG_SWITCH, &pipeline, NULL, "instead: the teacher's forward pipelined over all ranks at 1, 2, 4, "
         "8 micro-batches: tok/s against one rank, bubble per rank against GPipe's ideal (mpirun -np 2)", 0, 0},
        {"device", ARG_STRING, &device, "cpu|cuda", "instead: training tok/s of the medium config (d 1024, 16 layers, "
         "seq 512) on that device with fp32 and bf16 matmuls, the matmul share of the step, and the device's own matmul "
         "peak in the same run", 0, 0},
        {"tiny", ARG_SWITCH, &tiny, NULL, "with --device: a small config instead of the medium one (seconds on a CPU)",
         0, 0},
        {"batch", ARG_INT, &batch, "N", "with --device: sequences per step (default 16; tiny 4)", 0, 0},
    };
    struct arg_spec spec = {"circd bench",
                            "Training tokens/s (forward+backward+AdamW), forward tokens/s and model GFLOP/s of the "
                            "tiny and small configs, against cblas_sgemm on the same shapes in the same run.",
                            options, (int)(sizeof options / sizeof options[0]), NULL, 0};
    const char *positional[1];
    int n_positional;
    int rc = args_parse(&spec, argc, argv, positional, &n_positional);
    if (rc == 1) return 0;
    if (rc) return cli_fail("bench", rc);
    if (!(seconds > 0)) return cli_fail("bench", err_set(CIRCD_EINPUT, "--seconds must be > 0"));
    if ((tiny || batch) && !device) return cli_fail("bench", err_set(CIRCD_EINPUT, "--tiny and --batch go with --device"));
    if (batch < 0) return cli_fail("bench", err_set(CIRCD_EINPUT, "--batch: found %d, expected >= 1", batch));
    if (device) {
        enum spec_device d;
        if ((rc = placement_parse_device(device, "--device", &d))) return cli_fail("bench", rc);
        return bench_device(d, tiny, batch, seconds, json);
    }
    if (atp_scaling) { /* arith.yaml's teacher and AtP set: 16 batches of 32 pairs */
        struct bench_atp_case teacher = {"teacher", bench_make_config(67, 128, 4, 4, 2, 512, 64), 32, 0};
        rc = bench_atp_scaling(&teacher, 16, seconds, json);
        return rc ? cli_fail("bench", rc) : 0;
    }
    if (pipeline) { /* experiments/arith.yaml's teacher (the digit tokenizer's vocabulary), B 64 x T 24 */
        struct llama_config teacher = bench_make_config(67, 128, 4, 4, 2, 512, 128);
        rc = bench_pipeline(&teacher, 64, 24, seconds, json);
        return rc ? cli_fail("bench", rc) : 0;
    }
    if (atp) {
        /* The default teacher (vocabulary of the digit tokenizer, prompts of the padded format) and a larger one. */
        const struct bench_atp_case atp_cases[] = {
            {"teacher", bench_make_config(67, 128, 4, 4, 2, 512, 32), 32, 24},
            {"small", bench_make_config(128, 256, 6, 8, 2, 1024, 32), 32, 24},
        };
        rc = bench_atp(atp_cases, (int)(sizeof atp_cases / sizeof atp_cases[0]), seconds, json);
        return rc ? cli_fail("bench", rc) : 0;
    }

    struct bench_case cases[] = {
        {"tiny", bench_make_config(128, 128, 2, 4, 2, 512, 32), 64, 32},
        {"small", bench_make_config(128, 256, 6, 8, 2, 1024, 32), 64, 32},
    };
    json_t *root = json_object();
    if (!json)
        printf("threads %d (OpenMP; OpenBLAS OpenMP build)\n%-6s %12s %12s %10s %10s %7s %9s %9s %9s\n",
               omp_get_max_threads(), "config", "train tok/s", "fwd tok/s", "model GF/s", "sgemm GF/s", "ratio",
               "step ms", "fwd ms", "adamw ms");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct bench_result r;
        memset(&r, 0, sizeof r);
        if ((rc = run_case(&cases[i], seconds, &r))) { json_decref(root); return cli_fail("bench", rc); }
        double ratio = r.model_gflops / r.sgemm_gflops;
        if (json) {
            json_object_set_new(root, cases[i].name,
                                json_pack("{s:f, s:f, s:f, s:f, s:f, s:f}", "train_tokens_per_s", r.train_tokens_per_s,
                                          "forward_tokens_per_s", r.forward_tokens_per_s, "model_gflops",
                                          r.model_gflops, "sgemm_gflops", r.sgemm_gflops, "ratio", ratio,
                                          "train_mflop_per_token", r.train_flops_per_token * 1e-6));
        } else {
            printf("%-6s %12.0f %12.0f %10.1f %10.1f %6.0f%% %9.2f %9.2f %9.2f\n", cases[i].name,
                   r.train_tokens_per_s, r.forward_tokens_per_s, r.model_gflops, r.sgemm_gflops, 100.0 * ratio,
                   r.step_ms, r.forward_ms, r.adamw_ms);
            fflush(stdout);
        }
    }
    if (json) {
        char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (text) printf("%s\n", text);
        free(text);
    }
    json_decref(root);
    return 0;
}
