/* losses.h — the distillation losses over flat arrays, each returning its value and accumulating its gradient with
 * respect to the student side:
 *   KL   T² · KL(p_T ‖ p_S) at temperature T (forward, the default) or T² · KL(p_S ‖ p_T) (reverse) between teacher
 *        and student logits, averaged over the selected rows (Hinton et al.'s T² keeps gradient scales comparable
 *        across temperatures);
 *   CKA  linear centred kernel alignment (Kornblith et al. 2019) between a teacher activation matrix X [n, dx] and a
 *        student one Y [n, dy] (rows = examples × positions, columns = features; columns centred inside), with the
 *        biased HSIC estimator or, for small n, the unbiased one (Song et al. 2012; needs n >= 4). A matrix whose
 *        centred columns are all zero has no direction to align: CKA is then 0 and its gradient 0 (never NaN).
 * The align loss of the mission is Σ (1 − CKA); callers pass weight = −λ_align to accumulate its gradient. */
#ifndef CIRCD_DISTILL_LOSSES_H
#define CIRCD_DISTILL_LOSSES_H

#include <stddef.h>

enum kl_direction { KL_FORWARD = 0, KL_REVERSE = 1 };

/* Mean over rows i with rows[i] != 0 (every row when rows is NULL) of T² · KL between softmax(teacher_i / T) and
 * softmax(student_i / T), logits [N, V]. When dstudent is not NULL, adds weight · d(mean)/d(student logits) into
 * it (rows not selected get nothing). Returns the mean (0 when no row is selected). Computed in double.
 * Per row, with n the number of selected rows: forward d/ds_j = T (p_S,j − p_T,j) / n; reverse
 * d/ds_j = T p_S,j (log p_S,j − log p_T,j − KL_row) / n with KL_row = KL(p_S ‖ p_T) (without T²).
 * A temperature that is not a positive finite number, N < 0 or V < 1: NAN, nothing touched. */
double kd_kl(const float *teacher, const float *student, const unsigned char *rows, int N, int V, float temperature,
             enum kl_direction direction, float weight, float *dstudent);

/* Scratch for CKA, sized once for the largest n, dx, dy a caller uses (no allocation per call). */
struct cka_workspace {
    int max_n, max_dx, max_dy;
    double *memory;
};
/* CIRCD_EINPUT for a size below 1 (or absurdly large), CIRCD_ENOMEM; on failure *w is zeroed. */
int cka_workspace_init(struct cka_workspace *w, int max_n, int max_dx, int max_dy);
void cka_workspace_free(struct cka_workspace *w); /* zeroes *w: freeing twice is harmless */

/* CKA(X, Y) in [0, 1] (the unbiased estimator in [−1, 1]: near 0, either side, for unrelated X and Y). When dY is
 * not NULL, adds weight · dCKA/dY into dY [n, dy]. CIRCD_EINPUT-free by design: shapes beyond the workspace, or
 * n < 4 with unbiased, return NAN and touch nothing (callers size the workspace); so does a NaN or infinity in X
 * or Y. The gradient has centred columns (CKA does not see column means). Cost O(n (dx² + dy² + dx dy)), no n × n
 * matrix. */
double cka(const float *X, int n, int dx, const float *Y, int dy, int unbiased, float weight, float *dY,
           struct cka_workspace *w);

#endif
