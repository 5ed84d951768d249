/* test_kernels_grad.c — every *_backward of kernels.h against central finite differences of its forward.
 *
 * For a forward out = f(x, ...) the scalar test loss is L = sum(out * R) with fixed random R, summed in double; the
 * analytic gradient is what backward writes for dout = R. Gradient buffers are pre-filled with random values and
 * the fill is subtracted afterwards, so a backward that overwrites instead of accumulating fails. The numerical
 * gradient is (L(x + h) - L(x - h)) / (x+h - x-h) with the perturbed values as actually rounded to float.
 * Shapes are small and deliberately non-square; a second, larger shape per kernel pushes the kernels over their
 * OpenMP threshold (checked on a random subset of elements).
 *
 * Agreement criterion per element: |num - ana| <= FD_RTOL * |ana| + FD_ATOL * max|ana| (max over the tensor). A
 * wrong factor, a transposed product or a wrong head mapping is off by tens of percent, far outside it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "testing.h"
#include "util/rng.h"

#define FD_RTOL 5e-3
#define FD_ATOL 1e-3
#define FD_MAX_POINTS 240

static struct rng R;

static float *randn(size_t n, float scale) { return testing_randn(&R, n, scale); }
static float *copy_of(const float *x, size_t n) { return testing_copy(x, n); }

/* analytic = after - before (what backward added) */
static void subtract(float *after, const float *before, size_t n)
{
    for (size_t i = 0; i < n; i++) after[i] -= before[i];
}

static double weighted_sum(const float *out, const float *w, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)out[i] * (double)w[i];
    return s;
}

typedef double (*loss_fn)(void);

/* Central differences against analytic gradients (testing.h), with this file's tolerances. */
static void fd_check(const char *what, float *x, size_t n, const float *analytic, loss_fn loss, float h)
{
    testing_fd_check(what, x, n, analytic, loss, h, (struct fd_tolerance){FD_RTOL, FD_ATOL, FD_MAX_POINTS}, &R);
}

/* ---------------------------------------------------------------- matmul */

static struct { float *out, *inp, *w, *r; int N, in, out_dim; } mm;

static double mm_loss(void)
{
    matmul_forward(mm.out, mm.inp, mm.w, mm.N, mm.in, mm.out_dim);
    return weighted_sum(mm.out, mm.r, (size_t)mm.N * mm.out_dim);
}

static void test_matmul(int N, int in, int out_dim)
{
    printf("matmul N=%d in=%d out=%d\n", N, in, out_dim);
    size_t no = (size_t)N * out_dim, ni = (size_t)N * in, nw = (size_t)out_dim * in;
    mm.N = N; mm.in = in; mm.out_dim = out_dim;
    mm.out = randn(no, 1.0f); mm.inp = randn(ni, 1.0f); mm.w = randn(nw, 1.0f); mm.r = randn(no, 1.0f);
    float *dinp0 = randn(ni, 1.0f), *dw0 = randn(nw, 1.0f);
    float *dinp = copy_of(dinp0, ni), *dw = copy_of(dw0, nw);
    matmul_backward(dinp, dw, mm.r, mm.inp, mm.w, N, in, out_dim);
    subtract(dinp, dinp0, ni);
    subtract(dw, dw0, nw);
    fd_check("matmul dinp", mm.inp, ni, dinp, mm_loss, 1e-2f);
    fd_check("matmul dweight", mm.w, nw, dw, mm_loss, 1e-2f);

    /* NULL gradients are skipped and the other one is unchanged */
    float *dinp_only = copy_of(dinp0, ni), *dw_only = copy_of(dw0, nw);
    matmul_backward(dinp_only, NULL, mm.r, mm.inp, mm.w, N, in, out_dim);
    matmul_backward(NULL, dw_only, mm.r, mm.inp, mm.w, N, in, out_dim);
    subtract(dinp_only, dinp0, ni);
    subtract(dw_only, dw0, nw);
    CHECK_CLOSE(dinp_only, dinp, ni, 1e-6, 1e-6);
    CHECK_CLOSE(dw_only, dw, nw, 1e-6, 1e-6);
    free(dinp_only); free(dw_only);
    free(mm.out); free(mm.inp); free(mm.w); free(mm.r); free(dinp0); free(dw0); free(dinp); free(dw);
}

/* ---------------------------------------------------------------- embedding */

static struct { float *out, *table, *r; int32_t *tokens; int N, d; } em;

static double em_loss(void)
{
    embedding_forward(em.out, em.tokens, em.table, em.N, em.d);
    return weighted_sum(em.out, em.r, (size_t)em.N * em.d);
}

static void test_embedding(int V, int N, int d, const int32_t *tokens)
{
    printf("embedding V=%d N=%d d=%d\n", V, N, d);
    size_t nt = (size_t)V * d, no = (size_t)N * d;
    em.N = N; em.d = d;
    em.tokens = malloc((size_t)N * sizeof *em.tokens);
    for (int i = 0; i < N; i++) em.tokens[i] = tokens ? tokens[i] : (int32_t)rng_below(&R, (uint64_t)V);
    em.table = randn(nt, 1.0f); em.out = randn(no, 1.0f); em.r = randn(no, 1.0f);
    float *d0 = randn(nt, 1.0f), *dt = copy_of(d0, nt);
    embedding_backward(dt, em.r, em.tokens, N, d);
    subtract(dt, d0, nt);
    fd_check("embedding dtable", em.table, nt, dt, em_loss, 1e-2f);
    free(em.tokens); free(em.table); free(em.out); free(em.r); free(d0); free(dt);
}

/* ---------------------------------------------------------------- rmsnorm */

static struct { float *out, *rstd, *inp, *w, *r; int N, d; float eps; } rn;

static double rn_loss(void)
{
    rmsnorm_forward(rn.out, rn.rstd, rn.inp, rn.w, rn.N, rn.d, rn.eps);
    return weighted_sum(rn.out, rn.r, (size_t)rn.N * rn.d);
}

static void test_rmsnorm(int N, int d)
{
    printf("rmsnorm N=%d d=%d\n", N, d);
    size_t n = (size_t)N * d;
    rn.N = N; rn.d = d; rn.eps = 1e-5f;
    rn.inp = randn(n, 1.0f); rn.out = randn(n, 1.0f); rn.r = randn(n, 1.0f);
    rn.rstd = randn((size_t)N, 1.0f);
    rn.w = randn((size_t)d, 0.5f);
    for (int j = 0; j < d; j++) rn.w[j] += 1.0f;
    rn_loss(); /* fills rstd */
    float *dx0 = randn(n, 1.0f), *dw0 = randn((size_t)d, 1.0f);
    float *dx = copy_of(dx0, n), *dw = copy_of(dw0, (size_t)d);
    rmsnorm_backward(dx, dw, rn.r, rn.inp, rn.w, rn.rstd, N, d);
    subtract(dx, dx0, n);
    subtract(dw, dw0, (size_t)d);
    fd_check("rmsnorm dinp", rn.inp, n, dx, rn_loss, 1e-3f);
    fd_check("rmsnorm dweight", rn.w, (size_t)d, dw, rn_loss, 1e-2f);

    rn_loss(); /* rstd of the unperturbed input */
    float *dw_only = copy_of(dw0, (size_t)d);
    rmsnorm_backward(NULL, dw_only, rn.r, rn.inp, rn.w, rn.rstd, N, d);
    subtract(dw_only, dw0, (size_t)d);
    CHECK_CLOSE(dw_only, dw, (size_t)d, 1e-6, 1e-6);
    free(dw_only);
    free(rn.inp); free(rn.out); free(rn.r); free(rn.rstd); free(rn.w); free(dx0); free(dw0); free(dx); free(dw);
}

/* ---------------------------------------------------------------- rope */

static struct { float *out, *inp, *r, *cos, *sin; int B, T, H, hd, pos0; } rp;

static double rp_loss(void)
{
    rope_forward(rp.out, rp.inp, rp.cos, rp.sin, rp.B, rp.T, rp.H, rp.hd, rp.pos0);
    return weighted_sum(rp.out, rp.r, (size_t)rp.B * rp.T * rp.H * rp.hd);
}

static void test_rope(int B, int T, int H, int hd, int pos0)
{
    printf("rope B=%d T=%d H=%d hd=%d pos0=%d\n", B, T, H, hd, pos0);
    int max_seq = pos0 + T;
    float *inv_freq = malloc((size_t)(hd / 2) * sizeof *inv_freq);
    for (int i = 0; i < hd / 2; i++) inv_freq[i] = (float)pow(10000.0, -2.0 * i / hd);
    rp.cos = malloc((size_t)max_seq * (hd / 2) * sizeof(float));
    rp.sin = malloc((size_t)max_seq * (hd / 2) * sizeof(float));
    rope_tables(rp.cos, rp.sin, inv_freq, max_seq, hd);
    size_t n = (size_t)B * T * H * hd;
    rp.B = B; rp.T = T; rp.H = H; rp.hd = hd; rp.pos0 = pos0;
    rp.inp = randn(n, 1.0f); rp.out = randn(n, 1.0f); rp.r = randn(n, 1.0f);
    float *dx0 = randn(n, 1.0f), *dx = copy_of(dx0, n);
    rope_backward(dx, rp.r, rp.cos, rp.sin, B, T, H, hd, pos0);
    subtract(dx, dx0, n);
    fd_check("rope dinp", rp.inp, n, dx, rp_loss, 1e-2f);
    free(inv_freq); free(rp.cos); free(rp.sin); free(rp.inp); free(rp.out); free(rp.r); free(dx0); free(dx);
}

/* ---------------------------------------------------------------- attention */

static struct { float *pattern, *z, *q, *k, *v, *r; int B, Tq, Tk, H, KV, hd; } at;

static void at_pattern(void)
{
    attention_pattern_forward(at.pattern, at.q, at.k, at.B, at.Tq, at.Tk, at.H, at.KV, at.hd);
}

static double at_pattern_loss(void)
{
    at_pattern();
    return weighted_sum(at.pattern, at.r, (size_t)at.B * at.H * at.Tq * at.Tk);
}

static double at_mix_loss(void)
{
    attention_mix_forward(at.z, at.pattern, at.v, at.B, at.Tq, at.Tk, at.H, at.KV, at.hd);
    return weighted_sum(at.z, at.r, (size_t)at.B * at.Tq * at.H * at.hd);
}

/* the whole attention: L = sum(z(pattern(q, k), v) * R) */
static double at_full_loss(void)
{
    at_pattern();
    return at_mix_loss();
}

static void test_attention(int B, int Tq, int Tk, int H, int KV, int hd)
{
    printf("attention B=%d Tq=%d Tk=%d H=%d KV=%d hd=%d\n", B, Tq, Tk, H, KV, hd);
    at.B = B; at.Tq = Tq; at.Tk = Tk; at.H = H; at.KV = KV; at.hd = hd;
    size_t nq = (size_t)B * Tq * H * hd, nk = (size_t)B * Tk * KV * hd, np = (size_t)B * H * Tq * Tk;
    at.q = randn(nq, 1.0f); at.k = randn(nk, 1.0f); at.v = randn(nk, 1.0f);
    at.pattern = randn(np, 1.0f); at.z = randn(nq, 1.0f);

    /* pattern: L = sum(pattern * R); R is nonzero above the diagonal too, which backward must ignore. */
    at.r = randn(np, 1.0f);
    at_pattern_loss();
    float *dq0 = randn(nq, 1.0f), *dk0 = randn(nk, 1.0f);
    float *dq = copy_of(dq0, nq), *dk = copy_of(dk0, nk);
    attention_pattern_backward(dq, dk, at.r, at.pattern, at.q, at.k, B, Tq, Tk, H, KV, hd);
    subtract(dq, dq0, nq);
    subtract(dk, dk0, nk);
    fd_check("attention_pattern dq", at.q, nq, dq, at_pattern_loss, 3e-3f);
    fd_check("attention_pattern dk", at.k, nk, dk, at_pattern_loss, 3e-3f);
    at_pattern(); /* fd_check leaves the pattern of its last perturbed evaluation */
    float *dk_only = copy_of(dk0, nk);
    attention_pattern_backward(NULL, dk_only, at.r, at.pattern, at.q, at.k, B, Tq, Tk, H, KV, hd);
    subtract(dk_only, dk0, nk);
    CHECK_CLOSE(dk_only, dk, nk, 1e-6, 1e-6);
    free(at.r);

    /* mix: L = sum(z * R), with the pattern of the forward above (zeros above the diagonal). */
    at.r = randn(nq, 1.0f);
    at_pattern();
    float *dp0 = randn(np, 1.0f), *dv0 = randn(nk, 1.0f);
    float *dp = copy_of(dp0, np), *dv = copy_of(dv0, nk);
    attention_mix_backward(dp, dv, at.r, at.pattern, at.v, B, Tq, Tk, H, KV, hd);
    subtract(dp, dp0, np);
    subtract(dv, dv0, nk);
    fd_check("attention_mix dpattern", at.pattern, np, dp, at_mix_loss, 1e-2f);
    fd_check("attention_mix dv", at.v, nk, dv, at_mix_loss, 1e-2f);

    /* both steps chained, as the model runs them: dz -> dpattern, dv -> dq, dk */
    at_pattern();
    float *dpat = calloc(np, sizeof *dpat);
    float *dq2 = calloc(nq, sizeof *dq2), *dk2 = calloc(nk, sizeof *dk2), *dv2 = calloc(nk, sizeof *dv2);
    attention_mix_backward(dpat, dv2, at.r, at.pattern, at.v, B, Tq, Tk, H, KV, hd);
    attention_pattern_backward(dq2, dk2, dpat, at.pattern, at.q, at.k, B, Tq, Tk, H, KV, hd);
    fd_check("attention chained dq", at.q, nq, dq2, at_full_loss, 3e-3f);
    fd_check("attention chained dk", at.k, nk, dk2, at_full_loss, 3e-3f);
    fd_check("attention chained dv", at.v, nk, dv2, at_full_loss, 1e-2f);

    free(dpat); free(dq2); free(dk2); free(dv2);
    free(dk_only); free(dq0); free(dk0); free(dq); free(dk); free(dp0); free(dv0); free(dp); free(dv);
    free(at.q); free(at.k); free(at.v); free(at.pattern); free(at.z); free(at.r);
}

/* ---------------------------------------------------------------- swiglu */

static struct { float *h, *gate, *up, *r; size_t n; } sg;

static double sg_loss(void)
{
    swiglu_forward(sg.h, sg.gate, sg.up, sg.n);
    return weighted_sum(sg.h, sg.r, sg.n);
}

static void test_swiglu(size_t n)
{
    printf("swiglu n=%zu\n", n);
    sg.n = n;
    sg.gate = randn(n, 3.0f); sg.up = randn(n, 1.0f); sg.h = randn(n, 1.0f); sg.r = randn(n, 1.0f);
    float *dg0 = randn(n, 1.0f), *du0 = randn(n, 1.0f);
    float *dg = copy_of(dg0, n), *du = copy_of(du0, n);
    swiglu_backward(dg, du, sg.r, sg.gate, sg.up, n);
    subtract(dg, dg0, n);
    subtract(du, du0, n);
    fd_check("swiglu dgate", sg.gate, n, dg, sg_loss, 1e-3f);
    fd_check("swiglu dup", sg.up, n, du, sg_loss, 1e-2f);
    /* one of the two gradients alone gives the same values */
    float *dg_only = copy_of(dg0, n), *du_only = copy_of(du0, n);
    swiglu_backward(dg_only, NULL, sg.r, sg.gate, sg.up, n);
    swiglu_backward(NULL, du_only, sg.r, sg.gate, sg.up, n);
    subtract(dg_only, dg0, n);
    subtract(du_only, du0, n);
    CHECK_CLOSE(dg_only, dg, n, 1e-6, 1e-6);
    CHECK_CLOSE(du_only, du, n, 1e-6, 1e-6);
    free(dg_only); free(du_only);
    free(sg.gate); free(sg.up); free(sg.h); free(sg.r); free(dg0); free(du0); free(dg); free(du);
}

/* ---------------------------------------------------------------- cross-entropy */

static struct { float *losses, *logits, *r; int32_t *targets; int N, V; } ce;

static double ce_loss(void)
{
    crossentropy_forward(ce.losses, ce.logits, ce.targets, ce.N, ce.V);
    return weighted_sum(ce.losses, ce.r, (size_t)ce.N);
}

static void test_crossentropy(int N, int V)
{
    printf("crossentropy N=%d V=%d\n", N, V);
    size_t n = (size_t)N * V;
    ce.N = N; ce.V = V;
    ce.logits = randn(n, 2.0f); ce.losses = randn((size_t)N, 1.0f); ce.r = randn((size_t)N, 1.0f);
    ce.targets = malloc((size_t)N * sizeof *ce.targets);
    for (int i = 0; i < N; i++) ce.targets[i] = (int32_t)rng_below(&R, (uint64_t)V);
    ce.targets[1] = -1;              /* ignored rows, two spellings of "negative" */
    ce.targets[N - 1] = -100;
    float *d0 = randn(n, 1.0f), *dl = copy_of(d0, n);
    crossentropy_backward(dl, ce.logits, ce.targets, ce.r, N, V);
    subtract(dl, d0, n);
    fd_check("crossentropy dlogits", ce.logits, n, dl, ce_loss, 1e-3f);
    /* ignored rows: no gradient at all (exactly) */
    int untouched = 1;
    for (int j = 0; j < V; j++)
        untouched &= dl[(size_t)1 * V + j] == 0.0f && dl[(size_t)(N - 1) * V + j] == 0.0f;
    CHECK(untouched);
    free(ce.logits); free(ce.losses); free(ce.r); free(ce.targets); free(d0); free(dl);
}

int main(void)
{
    rng_seed(&R, 1234);

    test_matmul(5, 7, 3);
    test_matmul(3, 4, 9);
    test_matmul(67, 48, 40);

    static const int32_t toks[] = {1, 3, 1, 0, 5, 1, 3, 2}; /* repeated tokens; row 4 of the table is unused */
    test_embedding(6, 8, 5, toks);
    test_embedding(50, 600, 40, NULL); /* over the threading threshold: columns split among threads */

    test_rmsnorm(4, 12);
    test_rmsnorm(200, 100); /* parallel rows, a partial 64-column block for dweight */

    test_rope(2, 3, 2, 8, 0);
    test_rope(2, 5, 3, 8, 3);
    test_rope(4, 32, 4, 32, 7);

    test_attention(2, 5, 5, 4, 2, 8);   /* training shape, GQA group of 2 */
    test_attention(1, 4, 4, 3, 1, 6);   /* multi-query: all heads share one kv head */
    test_attention(2, 3, 7, 4, 4, 4);   /* Tq < Tk (queries at the end of a longer cache), plain MHA */
    test_attention(3, 16, 16, 8, 2, 16); /* over the threading threshold */
    test_attention(1, 20, 20, 2, 1, 8);  /* key chunks of 16: a partial second chunk */
    test_attention(1, 3, 3, 2, 1, 260);  /* head_dim above the 256-wide slice of the chunked dot products */

    test_swiglu(64);
    test_swiglu(50000);

    test_crossentropy(6, 7);
    test_crossentropy(300, 97);

    return testing_finish();
}
