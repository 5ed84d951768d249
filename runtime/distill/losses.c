/* losses.c — the distillation losses of losses.h: temperature-scaled KL between teacher and student logits, and
 * linear CKA between activation matrices, each with its gradient with respect to the student side.
 *
 * KL (per selected row, z = logits / T, p = softmax(z), log-sum-exp in double; 0 · log 0 counts as 0):
 *   forward  L = T² Σ_j p_T,j (log p_T,j − log p_S,j)        dL/ds_j = T (p_S,j − p_T,j)
 *   reverse  L = T² Σ_j p_S,j (log p_S,j − log p_T,j)        dL/ds_j = T p_S,j (log p_S,j − log p_T,j − KL)
 * where KL = L / T² is the row's reverse divergence (the softmax Jacobian p_S,j (δ_jk − p_S,k) applied to
 * a_j = log p_S,j − log p_T,j; the derivative of log p_S inside the sum adds Σ_j p_S,j (δ_jk − p_S,k) = 0).
 * Both are divided by the number of selected rows (the mean) and scaled by the caller's weight.
 *
 * CKA, in feature space (no n × n Gram matrix). Xc, Yc are X, Y with centred columns; A = Xc^T Xc [dx, dx],
 * B = Yc^T Yc [dy, dy], C = Yc^T Xc [dy, dx]; r_i = ‖Xc_i‖², q_i = ‖Yc_i‖² (row norms), R = Σ r_i, Q = Σ q_i.
 * With K = Xc Xc^T and L = Yc Yc^T (so K 1 = L 1 = 0), both estimators of HSIC, up to a factor that cancels in the
 * ratio CKA = h_xy / sqrt(h_xx h_yy), are
 *   h_xy = ‖C‖² + α R Q − β Σ_i r_i q_i       h_xx = ‖A‖² + α R² − β Σ r_i²       h_yy = ‖B‖² + α Q² − β Σ q_i²
 * biased (tr(K L)): α = β = 0. Unbiased (Song et al. 2012, Gram matrices K̃, L̃ with zeroed diagonals,
 *   n(n−3) HSIC_u = tr(K̃ L̃) + 1ᵀK̃1 1ᵀL̃1 / ((n−1)(n−2)) − 2/(n−2) 1ᵀK̃L̃1, with tr(K̃ L̃) = ‖C‖² − Σ r_i q_i,
 *   1ᵀK̃1 = −R and K̃1 = −r): α = 1/((n−1)(n−2)), β = n/(n−2). The unbiased estimator is an inner product of
 * U-centred Gram matrices, so h_xx, h_yy >= 0 and |CKA| <= 1 there as well.
 * Gradient with s = sqrt(h_xx h_yy), row i of Yc:
 *   dCKA/dYc_i = (2/s) (Xc Cᵀ)_i − (2 CKA/h_yy) (Yc B)_i + 2 [(α R − β r_i)/s − CKA (α Q − β q_i)/h_yy] Yc_i
 * and dCKA/dY is that with its columns centred (Y ↦ Yc is the centring projection, which is symmetric). For the
 * biased estimator the columns are already centred; for the unbiased one the Yc_i terms are not.
 * Degenerate: a side whose h is not above DEGENERATE_REL of the sum of its terms' magnitudes (all centred columns
 * zero, or an unbiased h lost in rounding) gives CKA 0 and no gradient. */
#include "distill/losses.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

/* Rows of V logits below this many elements in all run on the calling thread (an OpenMP fork costs microseconds). */
#define KL_PAR_MIN 16384
/* h below this fraction of the magnitude of its terms is rounding noise: the side has no direction to align. */
#define DEGENERATE_REL 1e-10

/* ------------------------------------------------------------------------------------------------ KL */

/* log Σ_j exp(l_j · inv_t), in double */
static double log_sum_exp(const float *l, int V, double inv_t)
{
    double mx = -INFINITY;
    for (int j = 0; j < V; j++) mx = fmax(mx, (double)l[j] * inv_t);
    if (isinf(mx)) return mx; /* every logit −inf (or one +inf): the softmax is undefined, let NaN show */
    double sum = 0.0;
    for (int j = 0; j < V; j++) sum += exp((double)l[j] * inv_t - mx);
    return mx + log(sum);
}

/* One row: returns KL at temperature 1/inv_t (without T²); when g is not NULL adds scale · dKL/dz into it, where z
 * = student / T (the caller folds the 1/T of the chain rule and T², the mean and the weight into scale). The pass
 * over the row that sums KL also writes the forward gradient; the reverse one needs KL first, so a second pass. */
static double kl_row(const float *t, const float *s, int V, double inv_t, enum kl_direction direction,
                     double scale, float *g)
{
    double lse_t = log_sum_exp(t, V, inv_t), lse_s = log_sum_exp(s, V, inv_t);
    double kl = 0.0;
    if (direction == KL_FORWARD) {
        for (int j = 0; j < V; j++) {
            double lt = (double)t[j] * inv_t - lse_t, ls = (double)s[j] * inv_t - lse_s, pt = exp(lt);
            if (pt > 0.0) kl += pt * (lt - ls); /* 0 · log 0 = 0 */
            if (g) g[j] += (float)(scale * (exp(ls) - pt));
        }
        return kl;
    }
    for (int j = 0; j < V; j++) {
        double lt = (double)t[j] * inv_t - lse_t, ls = (double)s[j] * inv_t - lse_s, ps = exp(ls);
        if (ps > 0.0) kl += ps * (ls - lt);
    }
    if (!g) return kl;
    for (int j = 0; j < V; j++) {
        double lt = (double)t[j] * inv_t - lse_t, ls = (double)s[j] * inv_t - lse_s, ps = exp(ls);
        if (ps > 0.0) g[j] += (float)(scale * ps * (ls - lt - kl));
    }
    return kl;
}

double kd_kl(const float *teacher, const float *student, const unsigned char *rows, int N, int V, float temperature,
             enum kl_direction direction, float weight, float *dstudent)
{
    if (N < 0 || V < 1 || !(temperature > 0.0f) || isinf(temperature)) return NAN;
    int n_rows = 0;
    for (int i = 0; i < N; i++) n_rows += !rows || rows[i];
    if (n_rows == 0) return 0.0;
    double T = (double)temperature, inv_t = 1.0 / T;
    /* d(T² KL / n)/ds = T² · (1/T) · dKL/dz / n */
    double scale = (double)weight * T / n_rows;
    double total = 0.0;
#pragma omp parallel for schedule(static) reduction(+ : total) if ((size_t)N * (size_t)V >= KL_PAR_MIN)
    for (int i = 0; i < N; i++) {
        if (rows && !rows[i]) continue;
        size_t off = (size_t)i * (size_t)V;
        total += kl_row(teacher + off, student + off, V, inv_t, direction, scale, dstudent ? dstudent + off : NULL);
    }
    return T * T * total / n_rows;
}

/* ------------------------------------------------------------------------------------------------ CKA */

/* Doubles of the workspace for the given maxima: Xc, Yc, the gradient rows G [n, dy], A, B, C, r, q, means. */
static size_t workspace_doubles(size_t n, size_t dx, size_t dy)
{
    return n * dx + 2 * n * dy + dx * dx + dy * dy + dy * dx + 2 * n + (dx > dy ? dx : dy);
}

int cka_workspace_init(struct cka_workspace *w, int max_n, int max_dx, int max_dy)
{
    memset(w, 0, sizeof *w);
    if (max_n < 1 || max_dx < 1 || max_dy < 1)
        return err_set(CIRCD_EINPUT, "cka workspace: sizes must be positive (n %d, dx %d, dy %d)", max_n, max_dx,
                       max_dy);
    double doubles = (double)max_n * (max_dx + 2.0 * max_dy + 2.0) + (double)max_dx * max_dx +
                     (double)max_dy * max_dy + (double)max_dy * max_dx + max_dx + max_dy;
    if (doubles * sizeof(double) > (double)(SIZE_MAX / 2))
        return err_set(CIRCD_EINPUT, "cka workspace: sizes too large (n %d, dx %d, dy %d)", max_n, max_dx, max_dy);
    w->memory = xmalloc(workspace_doubles((size_t)max_n, (size_t)max_dx, (size_t)max_dy) * sizeof(double));
    if (!w->memory) return err_prefix(CIRCD_ENOMEM, "cka workspace: ");
    w->max_n = max_n;
    w->max_dx = max_dx;
    w->max_dy = max_dy;
    return CIRCD_OK;
}

void cka_workspace_free(struct cka_workspace *w)
{
    if (!w) return;
    free(w->memory);
    memset(w, 0, sizeof *w);
}

/* out[n, d] = M with centred columns, in double; mean[d] is scratch. */
static void centre_columns(double *out, const float *M, int n, int d, double *mean)
{
    for (int k = 0; k < d; k++) mean[k] = 0.0;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < d; k++) mean[k] += (double)M[(size_t)i * d + k];
    for (int k = 0; k < d; k++) mean[k] /= n;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < d; k++) out[(size_t)i * d + k] = (double)M[(size_t)i * d + k] - mean[k];
}

/* gram[d, d] (upper triangle) = Mᵀ M; returns ‖Mᵀ M‖_F², and row norms norms[i] = ‖M_i‖² with their sum. */
static double gram_and_row_norms(double *gram, double *norms, double *norm_sum, const double *M, int n, int d)
{
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, d, n, 1.0, M, d, 0.0, gram, d);
    double frob = 0.0;
    for (int a = 0; a < d; a++) {
        frob += gram[(size_t)a * d + a] * gram[(size_t)a * d + a];
        for (int b = a + 1; b < d; b++) frob += 2.0 * gram[(size_t)a * d + b] * gram[(size_t)a * d + b];
    }
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        double s = 0.0;
        for (int k = 0; k < d; k++) s += M[(size_t)i * d + k] * M[(size_t)i * d + k];
        norms[i] = s;
        sum += s;
    }
    *norm_sum = sum;
    return frob;
}

/* Σ_i a_i b_i */
static double dot(const double *a, const double *b, int n)
{
    double s = 0.0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* A side has nothing to align when its h is rounding noise against the magnitudes of the terms it sums. */
static int degenerate(double h, double magnitude)
{
    return !(magnitude > 0.0) || !(h > DEGENERATE_REL * magnitude);
}

double cka(const float *X, int n, int dx, const float *Y, int dy, int unbiased, float weight, float *dY,
           struct cka_workspace *w)
{
    if (!w || !w->memory || n < 1 || dx < 1 || dy < 1 || n > w->max_n || dx > w->max_dx || dy > w->max_dy)
        return NAN;
    if (unbiased && n < 4) return NAN;
    size_t N = (size_t)n;
    double *Xc = w->memory, *Yc = Xc + N * dx, *G = Yc + N * dy, *A = G + N * dy, *B = A + (size_t)dx * dx,
           *C = B + (size_t)dy * dy, *r = C + (size_t)dy * dx, *q = r + N, *mean = q + N;

    centre_columns(Xc, X, n, dx, mean);
    centre_columns(Yc, Y, n, dy, mean);
    double R, Q;
    double a2 = gram_and_row_norms(A, r, &R, Xc, n, dx), b2 = gram_and_row_norms(B, q, &Q, Yc, n, dy);
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, dy, dx, n, 1.0, Yc, dy, Xc, dx, 0.0, C, dx);
    double c2 = dot(C, C, dy * dx);

    double alpha = unbiased ? 1.0 / ((double)(n - 1) * (double)(n - 2)) : 0.0;
    double beta = unbiased ? (double)n / (double)(n - 2) : 0.0;
    double rq = unbiased ? dot(r, q, n) : 0.0, rr = unbiased ? dot(r, r, n) : 0.0, qq = unbiased ? dot(q, q, n) : 0.0;
    double h_xy = c2 + alpha * R * Q - beta * rq;
    double h_xx = a2 + alpha * R * R - beta * rr;
    double h_yy = b2 + alpha * Q * Q - beta * qq;
    if (!isfinite(h_xy) || !isfinite(h_xx) || !isfinite(h_yy)) return NAN; /* NaN or inf in the inputs */
    if (degenerate(h_xx, a2 + alpha * R * R + beta * rr) || degenerate(h_yy, b2 + alpha * Q * Q + beta * qq))
        return 0.0;
    double s = sqrt(h_xx) * sqrt(h_yy); /* not sqrt(h_xx h_yy): the product can underflow */
    double value = h_xy / s;
    if (!dY || weight == 0.0f) return value;

    /* G = (2/s) Xc Cᵀ − (2 CKA / h_yy) Yc B, then the row terms, then centre the columns */
    double cx = 2.0 / s, cy = -2.0 * value / h_yy;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, dy, dx, cx, Xc, dx, C, dx, 0.0, G, dy);
    cblas_dsymm(CblasRowMajor, CblasRight, CblasUpper, n, dy, cy, B, dy, Yc, dy, 1.0, G, dy);
    if (unbiased) {
        for (int i = 0; i < n; i++) {
            double c = cx * (alpha * R - beta * r[i]) + cy * (alpha * Q - beta * q[i]);
            for (int k = 0; k < dy; k++) G[(size_t)i * dy + k] += c * Yc[(size_t)i * dy + k];
        }
    }
    for (int k = 0; k < dy; k++) mean[k] = 0.0;
    for (size_t i = 0; i < N; i++)
        for (int k = 0; k < dy; k++) mean[k] += G[i * dy + k];
    for (int k = 0; k < dy; k++) mean[k] /= n;
    for (size_t i = 0; i < N; i++)
        for (int k = 0; k < dy; k++) dY[i * dy + k] += (float)((double)weight * (G[i * dy + k] - mean[k]));
    return value;
}
