/* test_losses.c — the distillation losses of distill/losses.h: values worked out by hand, invariances, gradients
 * against central finite differences, degenerate inputs, and the CKA estimators against direct n × n Gram-matrix
 * formulas (the library works in feature space, so this checks its algebra as well).
 *
 * Gradient buffers are pre-filled with random values and the fill is subtracted afterwards, so an implementation
 * that overwrites instead of accumulating fails; rows or columns that must get nothing are compared bitwise. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distill/losses.h"
#include "testing.h"
#include "util/rng.h"

#define FD_RTOL 2e-3
#define FD_ATOL 1e-4
#define FD_MAX_POINTS 200

static struct rng R;

static float *randn(size_t n, float scale) { return testing_randn(&R, n, scale); }

static void subtract(float *after, const float *before, size_t n)
{
    for (size_t i = 0; i < n; i++) after[i] -= before[i];
}

typedef double (*loss_fn)(void);

/* Central differences against analytic gradients (testing.h), with this file's tolerances. */
static void fd_check(const char *what, float *x, size_t n, const float *analytic, loss_fn loss, float h)
{
    testing_fd_check(what, x, n, analytic, loss, h, (struct fd_tolerance){FD_RTOL, FD_ATOL, FD_MAX_POINTS}, &R);
}

/* ================================================================================================ KL */

static void test_kl_hand_values(void)
{
    printf("kl: hand-computed 3-token values\n");
    /* p_T = (1/2, 1/4, 1/4), p_S = (1/3, 1/3, 1/3):
     *   KL(p_T ‖ p_S) = 1/2 ln(3/2) + 2 · 1/4 ln(3/4) = 1/2 ln(9/8)
     *   KL(p_S ‖ p_T) = 1/3 [ln(2/3) + 2 ln(4/3)]       = 1/3 ln(32/27)                                      */
    float teacher[3] = {logf(0.5f), logf(0.25f), logf(0.25f)}, student[3] = {0.3f, 0.3f, 0.3f};
    double forward = 0.5 * log(9.0 / 8.0), reverse = log(32.0 / 27.0) / 3.0;
    CHECK_NEAR(kd_kl(teacher, student, NULL, 1, 3, 1.0f, KL_FORWARD, 1.0f, NULL), forward, 1e-7);
    CHECK_NEAR(kd_kl(teacher, student, NULL, 1, 3, 1.0f, KL_REVERSE, 1.0f, NULL), reverse, 1e-7);
    /* the same distributions at T = 2 (logits doubled): the value carries T² = 4 */
    float teacher2[3] = {2 * teacher[0], 2 * teacher[1], 2 * teacher[2]};
    CHECK_NEAR(kd_kl(teacher2, student, NULL, 1, 3, 2.0f, KL_FORWARD, 1.0f, NULL), 4 * forward, 4e-7);
    CHECK_NEAR(kd_kl(teacher2, student, NULL, 1, 3, 2.0f, KL_REVERSE, 1.0f, NULL), 4 * reverse, 4e-7);
    /* forward gradient T (p_S − p_T) / n at T = 2, one row, weight 3 */
    float g[3] = {0};
    kd_kl(teacher2, student, NULL, 1, 3, 2.0f, KL_FORWARD, 3.0f, g);
    CHECK_NEAR(g[0], 3 * 2 * (1.0 / 3 - 0.5), 1e-6);
    CHECK_NEAR(g[1], 3 * 2 * (1.0 / 3 - 0.25), 1e-6);
    /* reverse gradient T p_S (log p_S − log p_T − KL): for token 0, 2/3 (ln(2/3) − reverse) */
    float gr[3] = {0};
    kd_kl(teacher2, student, NULL, 1, 3, 2.0f, KL_REVERSE, 1.0f, gr);
    CHECK_NEAR(gr[0], 2.0 / 3 * (log(2.0 / 3) - reverse), 1e-6);
    CHECK_NEAR(gr[0] + gr[1] + gr[2], 0.0, 1e-6); /* a softmax gradient sums to zero */
}

static void test_kl_equal_logits(void)
{
    printf("kl: equal logits give 0 and no gradient\n");
    int N = 4, V = 9;
    float *logits = randn((size_t)N * V, 3.0f), *g = calloc((size_t)N * V, sizeof *g);
    for (int direction = KL_FORWARD; direction <= KL_REVERSE; direction++) {
        CHECK_NEAR(kd_kl(logits, logits, NULL, N, V, 1.7f, direction, 1.0f, g), 0.0, 1e-12);
        double gmax = 0.0;
        for (int i = 0; i < N * V; i++) gmax = fmax(gmax, fabs(g[i]));
        CHECK(gmax < 1e-7);
    }
    /* a shift of every logit of a row changes nothing (softmax invariance) */
    float *shifted = testing_copy(logits, (size_t)N * V);
    for (int j = 0; j < V; j++) shifted[V + j] += 40.0f;
    CHECK_NEAR(kd_kl(logits, shifted, NULL, N, V, 1.0f, KL_FORWARD, 1.0f, NULL), 0.0, 1e-10);
    free(logits); free(g); free(shifted);
}

static struct { float *t, *s; unsigned char *rows; int N, V; float T, weight; enum kl_direction dir; } kl;

static double kl_loss(void)
{
    return kl.weight * kd_kl(kl.t, kl.s, kl.rows, kl.N, kl.V, kl.T, kl.dir, 1.0f, NULL);
}

static void test_kl_gradient(enum kl_direction dir, float T)
{
    char what[96];
    snprintf(what, sizeof what, "kl %s T=%.1f dstudent", dir == KL_FORWARD ? "forward" : "reverse", T);
    printf("%s\n", what);
    static unsigned char rows[5] = {1, 0, 1, 1, 0};
    kl.N = 5; kl.V = 7; kl.T = T; kl.weight = -0.7f; kl.dir = dir; kl.rows = rows;
    size_t n = (size_t)kl.N * kl.V;
    kl.t = randn(n, 2.0f); kl.s = randn(n, 2.0f);
    float *g0 = randn(n, 1.0f), *g = testing_copy(g0, n);
    kd_kl(kl.t, kl.s, rows, kl.N, kl.V, T, dir, kl.weight, g);
    CHECK(memcmp(g + 1 * kl.V, g0 + 1 * kl.V, kl.V * sizeof *g) == 0); /* unselected rows: untouched */
    CHECK(memcmp(g + 4 * kl.V, g0 + 4 * kl.V, kl.V * sizeof *g) == 0);
    subtract(g, g0, n);
    for (int i = 0; i < kl.N; i++) {
        if (!rows[i]) continue;
        double sum = 0.0;
        for (int j = 0; j < kl.V; j++) sum += g[(size_t)i * kl.V + j];
        CHECK_NEAR(sum, 0.0, 1e-6);
    }
    fd_check(what, kl.s, n, g, kl_loss, 1e-3f);
    free(kl.t); free(kl.s); free(g0); free(g);
}

static void test_kl_row_selection(void)
{
    printf("kl: row selection and the parallel path\n");
    int N = 64, V = 512; /* N·V over the OpenMP threshold */
    size_t n = (size_t)N * V;
    float *t = randn(n, 2.0f), *s = randn(n, 2.0f);
    unsigned char *rows = malloc((size_t)N);
    for (int i = 0; i < N; i++) rows[i] = (unsigned char)(i % 3 != 0);
    /* the mean over selected rows equals the mean of one-row calls, and the gradients agree */
    float *g = calloc(n, sizeof *g), *g_one = calloc(n, sizeof *g_one);
    double value = kd_kl(t, s, rows, N, V, 1.5f, KL_REVERSE, 1.0f, g);
    double sum = 0.0;
    int selected = 0;
    for (int i = 0; i < N; i++) {
        if (!rows[i]) continue;
        size_t off = (size_t)i * V;
        sum += kd_kl(t + off, s + off, NULL, 1, V, 1.5f, KL_REVERSE, 1.0f, g_one + off);
        selected++;
    }
    for (size_t k = 0; k < n; k++) g_one[k] /= (float)selected;
    CHECK_NEAR(value, sum / selected, 1e-9 * fabs(value));
    CHECK_CLOSE(g, g_one, n, 1e-5, 1e-9);
    CHECK(value > 0.1); /* random logits: a real divergence, not a trivially zero one */
    /* whatever unselected rows hold, even NaN, does not matter */
    for (int j = 0; j < V; j++) { t[j] = NAN; s[V * 3 + j] = 1e30f; }
    CHECK_NEAR(kd_kl(t, s, rows, N, V, 1.5f, KL_REVERSE, 1.0f, NULL), value, 1e-12 * value);
    /* no row selected: 0 and no gradient */
    memset(rows, 0, (size_t)N);
    float *g0 = testing_copy(g, n);
    CHECK(kd_kl(t, s, rows, N, V, 1.5f, KL_FORWARD, 1.0f, g) == 0.0);
    CHECK(memcmp(g, g0, n * sizeof *g) == 0);
    /* a temperature that is not positive is refused */
    CHECK(isnan(kd_kl(t + V, s + V, NULL, 1, V, 0.0f, KL_FORWARD, 1.0f, NULL)));
    CHECK(isnan(kd_kl(t + V, s + V, NULL, 1, V, -1.0f, KL_FORWARD, 1.0f, NULL)));
    free(t); free(s); free(rows); free(g); free(g_one); free(g0);
}

/* ================================================================================================ CKA */

static struct cka_workspace W;

/* Reference CKA from n × n Gram matrices of the raw (uncentred) inputs: biased tr(K H L H), unbiased Song et al.
 * 2012 verbatim — n(n−3) HSIC = tr(K̃L̃) + 1ᵀK̃1 1ᵀL̃1 / ((n−1)(n−2)) − 2/(n−2) 1ᵀK̃L̃1 with zero diagonals. */
static double reference_hsic(const float *X, int dx, const float *Y, int dy, int n, int unbiased)
{
    double *K = malloc(sizeof(double) * n * n), *L = malloc(sizeof(double) * n * n);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double k = 0.0, l = 0.0;
            for (int a = 0; a < dx; a++) k += (double)X[i * dx + a] * X[j * dx + a];
            for (int a = 0; a < dy; a++) l += (double)Y[i * dy + a] * Y[j * dy + a];
            K[i * n + j] = k;
            L[i * n + j] = l;
        }
    double h = 0.0;
    if (!unbiased) { /* tr(K H L H) = Σ_ij (HKH)_ij L_ij */
        double *kr = calloc(n, sizeof *kr), kall = 0.0;
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) kr[i] += K[i * n + j] / n;
            kall += kr[i] / n;
        }
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) h += (K[i * n + j] - kr[i] - kr[j] + kall) * L[i * n + j];
        free(kr);
    } else {
        for (int i = 0; i < n; i++) K[i * n + i] = L[i * n + i] = 0.0;
        double tr = 0.0, ksum = 0.0, lsum = 0.0, kl1 = 0.0;
        for (int i = 0; i < n; i++) {
            double kr = 0.0, lr = 0.0;
            for (int j = 0; j < n; j++) {
                tr += K[i * n + j] * L[j * n + i];
                kr += K[i * n + j];
                lr += L[i * n + j];
            }
            ksum += kr;
            lsum += lr;
            kl1 += kr * lr; /* 1ᵀ K̃ L̃ 1 = (K̃1)·(L̃1), both symmetric */
        }
        h = tr + ksum * lsum / ((n - 1.0) * (n - 2.0)) - 2.0 / (n - 2.0) * kl1;
    }
    free(K); free(L);
    return h;
}

static double reference_cka(const float *X, int dx, const float *Y, int dy, int n, int unbiased)
{
    return reference_hsic(X, dx, Y, dy, n, unbiased) /
           sqrt(reference_hsic(X, dx, X, dx, n, unbiased) * reference_hsic(Y, dy, Y, dy, n, unbiased));
}

/* Y = X M + noise · N(0, 1): a student that shares part of the teacher's directions. */
static float *related(const float *X, int n, int dx, int dy, float noise)
{
    float *M = randn((size_t)dx * dy, 1.0f), *Y = randn((size_t)n * dy, noise);
    for (int i = 0; i < n; i++)
        for (int b = 0; b < dy; b++)
            for (int a = 0; a < dx; a++) Y[i * dy + b] += X[i * dx + a] * M[a * dy + b];
    free(M);
    return Y;
}

/* A random d × d orthogonal matrix (Gram–Schmidt of a Gaussian one), and M[n, d] · Q. */
static float *rotate(const float *M, int n, int d)
{
    double *Q = malloc(sizeof(double) * d * d);
    for (int k = 0; k < d * d; k++) Q[k] = rng_normal(&R);
    for (int c = 0; c < d; c++) { /* columns of Q */
        for (int p = 0; p < c; p++) {
            double proj = 0.0;
            for (int k = 0; k < d; k++) proj += Q[k * d + c] * Q[k * d + p];
            for (int k = 0; k < d; k++) Q[k * d + c] -= proj * Q[k * d + p];
        }
        double norm = 0.0;
        for (int k = 0; k < d; k++) norm += Q[k * d + c] * Q[k * d + c];
        for (int k = 0; k < d; k++) Q[k * d + c] /= sqrt(norm);
    }
    float *out = malloc(sizeof(float) * n * d);
    for (int i = 0; i < n; i++)
        for (int c = 0; c < d; c++) {
            double s = 0.0;
            for (int k = 0; k < d; k++) s += (double)M[i * d + k] * Q[k * d + c];
            out[i * d + c] = (float)s;
        }
    free(Q);
    return out;
}

static float *scaled_and_shifted(const float *M, int n, int d, float scale, int shift_column, float shift)
{
    float *out = testing_copy(M, (size_t)n * d);
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < d; k++) out[i * d + k] *= scale;
        if (shift_column >= 0) out[i * d + shift_column] += shift;
    }
    return out;
}

static void test_cka_hand_values(void)
{
    printf("cka: hand-computed values\n");
    /* one column each: squared Pearson correlation. xc = (−1.5, −.5, .5, 1.5), yc = (−1.75, .25, −.75, 2.25):
     * xc·yc = 5.5, ‖xc‖² = 5, ‖yc‖² = 8.75, so r² = 30.25 / 43.75 = 121/175 */
    float x[4] = {1, 2, 3, 4}, y[4] = {1, 3, 2, 5};
    CHECK_NEAR(cka(x, 4, 1, y, 1, 0, 0.0f, NULL, &W), 121.0 / 175.0, 1e-12);
    /* two columns, u = (1, 1, −1, −1) and v = (1, −1, 1, −1) (centred, orthogonal, ‖·‖² = 4), inputs shifted:
     * X = [u + 1, 2v − 3], Y = [u, v + 10]: A = diag(4, 16), B = diag(4, 4), C = YᵀX = diag(4, 8), so
     * CKA = (16 + 64) / (√(16 + 256) · √32) = 5/√34; against Y = u alone: 16 / (√272 · 4) = 1/√17 */
    float X2[8] = {2, -1, 2, -5, 0, -1, 0, -5}, Y2[8] = {1, 11, 1, 9, -1, 11, -1, 9}, u[4] = {1, 1, -1, -1};
    CHECK_NEAR(cka(X2, 4, 2, Y2, 2, 0, 0.0f, NULL, &W), 5.0 / sqrt(34.0), 1e-12);
    CHECK_NEAR(cka(X2, 4, 2, u, 1, 0, 0.0f, NULL, &W), 1.0 / sqrt(17.0), 1e-12);
    CHECK_NEAR(cka(u, 4, 1, X2, 2, 0, 0.0f, NULL, &W), 1.0 / sqrt(17.0), 1e-12); /* symmetric */
}

static void test_cka_against_gram_reference(int n, int dx, int dy)
{
    printf("cka: against the n x n Gram-matrix formulas, n=%d dx=%d dy=%d\n", n, dx, dy);
    float *X = randn((size_t)n * dx, 1.0f), *Y = related(X, n, dx, dy, 1.0f);
    for (int i = 0; i < n; i++) { X[i * dx] += 5.0f; Y[i * dy + dy - 1] -= 2.0f; } /* uncentred inputs */
    for (int unbiased = 0; unbiased <= 1; unbiased++) {
        double got = cka(X, n, dx, Y, dy, unbiased, 0.0f, NULL, &W), want = reference_cka(X, dx, Y, dy, n, unbiased);
        printf("  %-8s library %.12f  reference %.12f\n", unbiased ? "unbiased" : "biased", got, want);
        CHECK_NEAR(got, want, 1e-9);
        CHECK(got > 0.05 && got < 0.999);
    }
    free(X); free(Y);
}

static void test_cka_invariances(int unbiased)
{
    printf("cka %s: CKA(X, X) = 1 and invariances\n", unbiased ? "unbiased" : "biased");
    int n = 40, dx = 7, dy = 5;
    float *X = randn((size_t)n * dx, 1.0f), *Y = related(X, n, dx, dy, 2.0f);
    CHECK_NEAR(cka(X, n, dx, X, dx, unbiased, 0.0f, NULL, &W), 1.0, 1e-12);
    CHECK_NEAR(cka(Y, n, dy, Y, dy, unbiased, 0.0f, NULL, &W), 1.0, 1e-12);
    double base = cka(X, n, dx, Y, dy, unbiased, 0.0f, NULL, &W);
    printf("  base %.9f\n", base);
    CHECK(base > 0.1 && base < 0.95);
    float *variants[6] = {
        rotate(X, n, dx), rotate(Y, n, dy), scaled_and_shifted(X, n, dx, 3.7f, -1, 0.0f),
        scaled_and_shifted(Y, n, dy, 0.01f, -1, 0.0f), scaled_and_shifted(X, n, dx, 1.0f, 2, 25.0f),
        scaled_and_shifted(Y, n, dy, 1.0f, 0, -8.0f),
    };
    const char *names[6] = {"rotate X", "rotate Y", "scale X", "scale Y", "shift X column", "shift Y column"};
    for (int v = 0; v < 6; v++) {
        int on_x = v % 2 == 0;
        double got = cka(on_x ? variants[v] : X, n, dx, on_x ? Y : variants[v], dy, unbiased, 0.0f, NULL, &W);
        printf("  %-16s %.9f\n", names[v], got);
        CHECK_NEAR(got, base, 2e-6);
        free(variants[v]);
    }
    free(X); free(Y);
}

static struct { float *X, *Y; int n, dx, dy, unbiased; float weight; } ck;

static double cka_loss(void)
{
    return ck.weight * cka(ck.X, ck.n, ck.dx, ck.Y, ck.dy, ck.unbiased, 0.0f, NULL, &W);
}

static void test_cka_gradient(int n, int dx, int dy, int unbiased)
{
    char what[96];
    snprintf(what, sizeof what, "cka %s n=%d dx=%d dy=%d dY", unbiased ? "unbiased" : "biased", n, dx, dy);
    printf("%s\n", what);
    ck.n = n; ck.dx = dx; ck.dy = dy; ck.unbiased = unbiased; ck.weight = -0.5f;
    size_t ny = (size_t)n * dy;
    ck.X = randn((size_t)n * dx, 1.0f);
    ck.Y = related(ck.X, n, dx, dy, 1.5f);
    for (int i = 0; i < n; i++) ck.Y[i * dy] += 3.0f;
    /* the gradient shrinks like 1/n: a fill of that size keeps the float rounding of fill + gradient small */
    float *g0 = randn(ny, 0.1f / n), *g = testing_copy(g0, ny), *fresh = calloc(ny, sizeof *fresh);
    double value = cka(ck.X, n, dx, ck.Y, dy, unbiased, ck.weight, g, &W);
    CHECK(value > 0.05 && value < 0.999);
    subtract(g, g0, ny);
    CHECK(cka(ck.X, n, dx, ck.Y, dy, unbiased, ck.weight, fresh, &W) == value);
    CHECK_CLOSE(g, fresh, ny, 1e-4, 1e-6 / n);
    for (int k = 0; k < dy; k++) { /* CKA does not see column means: the gradient's columns sum to zero */
        double sum = 0.0, mag = 0.0;
        for (int i = 0; i < n; i++) { sum += fresh[i * dy + k]; mag += fabs(fresh[i * dy + k]); }
        CHECK(fabs(sum) <= 1e-6 * mag);
    }
    fd_check(what, ck.Y, ny, g, cka_loss, 1e-3f);
    free(ck.X); free(ck.Y); free(g0); free(g); free(fresh);
}

static void test_cka_degenerate(int unbiased)
{
    printf("cka %s: degenerate inputs\n", unbiased ? "unbiased" : "biased");
    int n = 10, dx = 3, dy = 4;
    size_t ny = (size_t)n * dy;
    float *X = randn((size_t)n * dx, 1.0f), *Y = related(X, n, dx, dy, 1.0f);
    float *g0 = randn(ny, 1.0f), *g = testing_copy(g0, ny);
    /* X with constant columns: no direction on the teacher side */
    float *Xconst = malloc(sizeof(float) * n * dx);
    for (int i = 0; i < n * dx; i++) Xconst[i] = (float)(i % dx) * 1.3f;
    CHECK(cka(Xconst, n, dx, Y, dy, unbiased, 1.0f, g, &W) == 0.0);
    CHECK(memcmp(g, g0, ny * sizeof *g) == 0);
    /* all-zero Y */
    float *Yzero = calloc(ny, sizeof *Yzero);
    CHECK(cka(X, n, dx, Yzero, dy, unbiased, 1.0f, g, &W) == 0.0);
    CHECK(memcmp(g, g0, ny * sizeof *g) == 0);
    /* one constant column among others: the value is CKA without it, its gradient column exactly zero */
    float *Yc = malloc(sizeof(float) * n * (dy + 1));
    for (int i = 0; i < n; i++) {
        memcpy(Yc + i * (dy + 1), Y + i * dy, dy * sizeof *Y);
        Yc[i * (dy + 1) + dy] = 7.25f;
    }
    float *gc = calloc((size_t)n * (dy + 1), sizeof *gc);
    double with = cka(X, n, dx, Yc, dy + 1, unbiased, 1.0f, gc, &W), without = cka(X, n, dx, Y, dy, unbiased, 0.0f,
                                                                                   NULL, &W);
    CHECK(isfinite(with) && with > 0.05);
    CHECK_NEAR(with, without, 1e-12);
    double gmax = 0.0;
    int finite = 1;
    for (int i = 0; i < n; i++) {
        CHECK(gc[i * (dy + 1) + dy] == 0.0f);
        for (int k = 0; k < dy; k++) {
            finite &= isfinite(gc[i * (dy + 1) + k]) != 0;
            gmax = fmax(gmax, fabs(gc[i * (dy + 1) + k]));
        }
    }
    CHECK(finite && gmax > 1e-4);
    /* X whose rows all agree but one: off its diagonal the centred Gram matrix is a_i + a_j, which U-centring
     * removes, so the unbiased h_xx is rounding noise that must not become a ratio; the biased estimator sees a
     * direction. Several draws, since the noise only sometimes lands above zero. */
    float *Xodd = malloc(sizeof(float) * n * dx), base[8], other[8];
    int nonzero = 0;
    for (int trial = 0; trial < 20; trial++) {
        for (int k = 0; k < dx; k++) { base[k] = rng_normal(&R); other[k] = rng_normal(&R); }
        for (int i = 0; i < n; i++)
            for (int k = 0; k < dx; k++) Xodd[i * dx + k] = i == 3 ? other[k] : base[k];
        double odd = cka(Xodd, n, dx, Y, dy, unbiased, 1.0f, unbiased ? g : NULL, &W);
        nonzero += odd != 0.0;
        if (trial == 0) printf("  one distinct row: %.9f\n", odd);
        if (!unbiased) CHECK(odd > 0.01 && odd < 1.0);
    }
    if (unbiased) {
        CHECK(nonzero == 0);
        CHECK(memcmp(g, g0, ny * sizeof *g) == 0);
    }
    free(Xodd);
    /* tiny but genuine variation is still a direction (only the ratio matters) */
    float *Ytiny = scaled_and_shifted(Y, n, dy, 1e-20f, -1, 0.0f);
    CHECK_NEAR(cka(X, n, dx, Ytiny, dy, unbiased, 0.0f, NULL, &W), without, 1e-5);
    /* shapes beyond the workspace (and n < 4 for unbiased) are refused, touching nothing */
    CHECK(isnan(cka(X, W.max_n + 1, dx, Y, dy, unbiased, 1.0f, g, &W)));
    CHECK(isnan(cka(X, n, W.max_dx + 1, Y, dy, unbiased, 1.0f, g, &W)));
    CHECK(isnan(cka(X, n, dx, Y, W.max_dy + 1, unbiased, 1.0f, g, &W)));
    CHECK(memcmp(g, g0, ny * sizeof *g) == 0);
    if (unbiased) CHECK(isnan(cka(X, 3, dx, Y, dy, 1, 0.0f, NULL, &W)));
    else CHECK(isfinite(cka(X, 3, dx, Y, dy, 0, 0.0f, NULL, &W)));
    /* a NaN input is reported, not hidden as a degenerate 0 */
    X[4] = NAN;
    CHECK(isnan(cka(X, n, dx, Y, dy, unbiased, 1.0f, g, &W)));
    CHECK(memcmp(g, g0, ny * sizeof *g) == 0);
    free(X); free(Y); free(g0); free(g); free(Xconst); free(Yzero); free(Yc); free(gc); free(Ytiny);
}

static void test_cka_estimators(void)
{
    printf("cka: unbiased against biased\n");
    /* large n, related data: the two estimators agree to O(d/n) */
    int n = 2000, dx = 8, dy = 6;
    float *X = randn((size_t)n * dx, 1.0f), *Y = related(X, n, dx, dy, 2.0f);
    double b = cka(X, n, dx, Y, dy, 0, 0.0f, NULL, &W), u = cka(X, n, dx, Y, dy, 1, 0.0f, NULL, &W);
    printf("  n=%d related:     biased %.6f  unbiased %.6f\n", n, b, u);
    CHECK(fabs(b - u) < 0.01);
    CHECK(b > 0.2 && b < 0.95);
    free(X); free(Y);
    /* small n, independent data: the biased estimator sees alignment that is not there, the unbiased one not */
    n = 20;
    X = randn((size_t)n * dx, 1.0f);
    Y = randn((size_t)n * dy, 1.0f);
    b = cka(X, n, dx, Y, dy, 0, 0.0f, NULL, &W);
    u = cka(X, n, dx, Y, dy, 1, 0.0f, NULL, &W);
    printf("  n=%d independent: biased %.6f  unbiased %.6f\n", n, b, u);
    CHECK(b - u > 0.15);
    CHECK(fabs(u) < 0.15);
    free(X); free(Y);
}

int main(void)
{
    rng_seed(&R, 20240611);
    test_kl_hand_values();
    test_kl_equal_logits();
    test_kl_gradient(KL_FORWARD, 1.0f);
    test_kl_gradient(KL_REVERSE, 1.0f);
    test_kl_gradient(KL_FORWARD, 2.5f);
    test_kl_gradient(KL_REVERSE, 0.6f);
    test_kl_row_selection();

    struct cka_workspace bad;
    CHECK(cka_workspace_init(&bad, 0, 4, 4) != 0 && bad.memory == NULL);
    CHECK(cka_workspace_init(&W, 2000, 16, 16) == 0);
    test_cka_hand_values();
    test_cka_against_gram_reference(11, 3, 4);
    test_cka_against_gram_reference(30, 6, 2);
    for (int unbiased = 0; unbiased <= 1; unbiased++) {
        test_cka_invariances(unbiased);
        test_cka_gradient(12, 5, 3, unbiased);
        test_cka_gradient(9, 4, 6, unbiased);
        test_cka_gradient(300, 16, 12, unbiased);
        test_cka_degenerate(unbiased);
    }
    test_cka_estimators();
    cka_workspace_free(&W);
    cka_workspace_free(&W); /* freeing twice is harmless */
    return testing_finish();
}
