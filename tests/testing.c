/* testing.c — implementation of testing.h. */
#include "testing.h"
#include "model/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "util/rng.h"

int testing_passed, testing_failed;

void testing_check(int ok, const char *file, int line, const char *expr)
{
    if (ok) { testing_passed++; return; }
    testing_failed++;
    fprintf(stderr, "%s:%d: check failed: %s\n", file, line, expr);
}

void testing_check_near(double got, double want, double tol, const char *file, int line, const char *expr)
{
    int ok = fabs(got - want) <= tol && !isnan(got) && !isnan(want);
    if (ok) { testing_passed++; return; }
    testing_failed++;
    fprintf(stderr, "%s:%d: check failed: %s (got %.9g, want %.9g, tol %.3g)\n", file, line, expr, got, want, tol);
}

void testing_check_close(const float *got, const float *want, size_t n, double rtol, double atol,
                         const char *file, int line, const char *what)
{
    size_t worst = 0, bad = 0;
    double worst_excess = -1.0;
    for (size_t i = 0; i < n; i++) {
        double diff = fabs((double)got[i] - (double)want[i]);
        double allowed = atol + rtol * fabs((double)want[i]);
        double excess = isnan(diff) ? INFINITY : diff - allowed;
        if (excess > 0) bad++;
        if (excess > worst_excess) { worst_excess = excess; worst = i; }
    }
    if (!bad) { testing_passed++; return; }
    testing_failed++;
    fprintf(stderr, "%s:%d: %s: %zu of %zu elements differ; worst [%zu] got %.9g want %.9g (rtol %.2g atol %.2g)\n",
            file, line, what, bad, n, worst, got[worst], want[worst], rtol, atol);
}

int testing_finish(void)
{
    printf("%d passed, %d failed\n", testing_passed, testing_failed);
    return testing_failed ? 1 : 0;
}

static const char *join(const char *base, const char *relative)
{
    static char bufs[8][4096];
    static int next;
    char *buf = bufs[next++ % 8];
    snprintf(buf, sizeof bufs[0], "%s/%s", base, relative);
    return buf;
}

const char *testing_source_path(const char *relative)
{
    const char *root = getenv("CIRCD_SOURCE_DIR");
    return join(root ? root : ".", relative);
}

const char *testing_shared_path(const char *relative)
{
    static char shared[4096];
    const char *root = getenv("CIRCD_SOURCE_DIR");
    snprintf(shared, sizeof shared, "%s/../shared", root ? root : ".");
    return join(shared, relative);
}

const char *testing_tmpdir(void)
{
    static char dir[4096 + 32];
    if (!dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%.4000s/circd-test-XXXXXX", base ? base : "/tmp");
        if (!mkdtemp(dir)) { perror("mkdtemp"); exit(1); }
    }
    return dir;
}

float *testing_randn(struct rng *r, size_t n, float scale)
{
    float *x = malloc((n ? n : 1) * sizeof *x);
    if (!x) { perror("malloc"); exit(1); }
    for (size_t i = 0; i < n; i++) x[i] = scale * rng_normal(r);
    return x;
}

float testing_scaled_diff(const float *a, const float *b, size_t n)
{
    float worst = 0, scale = 1;
    for (size_t i = 0; i < n; i++) {
        float e = fabsf(a[i] - b[i]);
        if (!(e <= worst)) worst = e;
        scale = fmaxf(scale, fabsf(b[i]));
    }
    return worst / scale;
}

float *testing_copy(const float *x, size_t n)
{
    float *y = malloc((n ? n : 1) * sizeof *y);
    if (!y) { perror("malloc"); exit(1); }
    memcpy(y, x, n * sizeof *y);
    return y;
}

int testing_run_circd(const char *args, char *output, size_t cap)
{
    const char *bin = getenv("CIRCD_BINARY");
    size_t len = strlen(args) + 4096;
    char *cmd = malloc(len);
    if (!cmd) return -1;
    snprintf(cmd, len, "%s %s 2>&1", bin ? bin : "./circd", args);
    FILE *p = popen(cmd, "r");
    free(cmd);
    if (!p) return -1;
    size_t n = fread(output, 1, cap - 1, p);
    output[n] = '\0';
    char sink[4096];
    while (fread(sink, 1, sizeof sink, p) > 0) {} /* drain the rest so the child never blocks */
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

char *testing_read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = size >= 0 ? malloc((size_t)size + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)size, f) == (size_t)size) {
        buf[size] = '\0';
        *n = (size_t)size;
    } else {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

struct llama_config testing_config(int vocab, int d_model, int n_layers, int n_heads, int n_kv_heads, int head_dim,
                                   int d_ff, int max_seq)
{
    struct llama_config c = {0};
    c.vocab_size = vocab;
    c.d_model = d_model;
    c.n_layers = n_layers;
    c.n_heads = n_heads;
    c.n_kv_heads = n_kv_heads;
    c.head_dim = head_dim;
    c.d_ff = d_ff;
    c.max_seq = max_seq;
    c.rope_theta = 10000.0f;
    c.norm_eps = 1e-5f;
    c.bos_token_id = c.eos_token_id = -1;
    return c;
}

void testing_randomize_model(struct llama_model *m, uint64_t seed, float scale, float norm_spread)
{
    struct rng r;
    rng_seed(&r, seed);
    for (int i = 0; i < m->n_tensors; i++) {
        const struct param_tensor *t = &m->tensors[i];
        for (size_t j = 0; j < t->numel; j++) {
            float z = rng_normal(&r);
            m->params[t->offset + j] = t->ndim == 1 ? 1.0f + norm_spread * z : scale * z;
        }
    }
}

void testing_fd_check(const char *what, float *x, size_t n, const float *analytic, double (*loss)(void), float h,
                      struct fd_tolerance tol, struct rng *r)
{
    double scale = 0.0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(analytic[i]));
    size_t points = n <= tol.max_points ? n : tol.max_points, bad = 0, worst = 0;
    double worst_excess = -INFINITY, worst_num = 0.0, max_err = 0.0;
    for (size_t k = 0; k < points; k++) {
        size_t i = n <= tol.max_points ? k : (size_t)rng_below(r, n);
        float x0 = x[i], xp = x0 + h, xm = x0 - h;
        x[i] = xp;
        double lp = loss();
        x[i] = xm;
        double lm = loss();
        x[i] = x0;
        double num = (lp - lm) / ((double)xp - (double)xm);
        double err = fabs(num - (double)analytic[i]);
        double excess = err - (tol.rtol * fabs((double)analytic[i]) + tol.atol * scale);
        max_err = fmax(max_err, err);
        if (excess > 0) bad++;
        if (excess > worst_excess) { worst_excess = excess; worst = i; worst_num = num; }
    }
    printf("  %-44s %5zu points, max|grad| %.3e, max err %.3e (%.2e relative)\n", what, points, scale, max_err,
           scale > 0 ? max_err / scale : 0.0);
    if (bad) fprintf(stderr, "  %s: %zu bad; worst [%zu] analytic %.9g numerical %.9g\n", what, bad, worst,
                     analytic[worst], worst_num);
    CHECK(bad == 0);
    CHECK(scale > 0.0); /* an identically zero gradient tests nothing */
}
