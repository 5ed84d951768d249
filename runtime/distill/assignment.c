/* assignment.c — the one-to-one assignment of Strategy A (correspond.h): the rectangular assignment problem solved
 * by the Hungarian algorithm (Kuhn–Munkres with row/column potentials and shortest augmenting paths, O(n² m) for
 * n <= m), and the component map built from it.
 *
 * The solver minimises cost = −w over an n × m matrix with n <= m (a wider-than-tall problem is transposed first),
 * adding one row at a time: Dijkstra-like growth over the columns with reduced costs a[i][j] − u[i] − v[j] >= 0
 * until a free column is reached, then the augmenting path is flipped. Indices inside are 1-based, column 0 being
 * the virtual start of each search (as in the classic e-maxx formulation). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "distill/correspond.h"
#include "util/error.h"

/* Minimum-cost assignment of every row of cost [n, m] (n <= m) into row_col[n]. */
static int hungarian_min(const double *cost, int n, int m, int *row_col)
{
    size_t cols = (size_t)m + 1;
    double *u = xcalloc((size_t)n + 1, sizeof *u), *v = xcalloc(cols, sizeof *v), *minv = xmalloc(cols * sizeof *minv);
    int *p = xcalloc(cols, sizeof *p), *way = xcalloc(cols, sizeof *way);
    unsigned char *used = xmalloc(cols);
    if (!u || !v || !minv || !p || !way || !used) {
        free(u); free(v); free(minv); free(p); free(way); free(used);
        return CIRCD_ENOMEM;
    }
    for (int i = 1; i <= n; i++) {
        p[0] = i;
        int j0 = 0;
        for (size_t j = 0; j < cols; j++) { minv[j] = INFINITY; used[j] = 0; }
        do { /* grow the alternating tree until it reaches a free column j0 */
            used[j0] = 1;
            int i0 = p[j0], j1 = 0;
            double delta = INFINITY;
            for (int j = 1; j <= m; j++) {
                if (used[j]) continue;
                double reduced = cost[(size_t)(i0 - 1) * m + (j - 1)] - u[i0] - v[j];
                if (reduced < minv[j]) { minv[j] = reduced; way[j] = j0; }
                if (minv[j] < delta) { delta = minv[j]; j1 = j; }
            }
            for (int j = 0; j <= m; j++) {
                if (used[j]) { u[p[j]] += delta; v[j] -= delta; }
                else minv[j] -= delta;
            }
            j0 = j1;
        } while (p[j0] != 0);
        do { /* flip the augmenting path back to the start */
            int j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
        } while (j0 != 0);
    }
    for (int j = 1; j <= m; j++)
        if (p[j] != 0) row_col[p[j] - 1] = j - 1;
    free(u); free(v); free(minv); free(p); free(way); free(used);
    return CIRCD_OK;
}

int assignment_maximise(const double *w, int n_rows, int n_cols, int *row_col)
{
    if (n_rows < 0 || n_cols < 0) return err_set(CIRCD_EINPUT, "assignment: negative size %d x %d", n_rows, n_cols);
    size_t count = (size_t)n_rows * (size_t)n_cols;
    for (size_t k = 0; k < count; k++)
        if (!isfinite(w[k]))
            return err_set(CIRCD_EINPUT, "assignment: similarity [%zu, %zu] is not finite", k / (size_t)n_cols,
                           k % (size_t)n_cols);
    if (n_rows == 0) return CIRCD_OK;
    if (n_cols == 0) {
        for (int i = 0; i < n_rows; i++) row_col[i] = -1;
        return CIRCD_OK;
    }
    int transpose = n_rows > n_cols;
    int n = transpose ? n_cols : n_rows, m = transpose ? n_rows : n_cols;
    double *cost = xmalloc(count * sizeof *cost);
    int *match = xmalloc((size_t)n * sizeof *match);
    if (!cost || !match) { free(cost); free(match); return CIRCD_ENOMEM; }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < m; j++)
            cost[(size_t)i * m + j] = -(transpose ? w[(size_t)j * n_cols + i] : w[(size_t)i * n_cols + j]);
    int rc = hungarian_min(cost, n, m, match);
    if (rc == CIRCD_OK) {
        if (!transpose) memcpy(row_col, match, (size_t)n * sizeof *match);
        else {
            for (int i = 0; i < n_rows; i++) row_col[i] = -1;
            for (int j = 0; j < n; j++) row_col[match[j]] = j; /* column j of w got row match[j] */
        }
    }
    free(cost);
    free(match);
    return rc;
}

void component_map_free(struct component_map *map)
{
    free(map->teacher);
    free(map->student);
    free(map->similarity);
    memset(map, 0, sizeof *map);
}

int component_map_assign(const int *teacher, int n_teacher, const int *student, int n_student, const double *sim,
                         struct component_map *map)
{
    memset(map, 0, sizeof *map);
    if (n_teacher < 0 || n_student < 0)
        return err_set(CIRCD_EINPUT, "component map: negative component count (%d teacher, %d student)", n_teacher,
                       n_student);
    size_t n = n_teacher > 0 ? (size_t)n_teacher : 1; /* never a zero-sized allocation */
    map->teacher = xmalloc(n * sizeof *map->teacher);
    map->student = xmalloc(n * sizeof *map->student);
    map->similarity = xmalloc(n * sizeof *map->similarity);
    int *col = xmalloc(n * sizeof *col);
    if (!map->teacher || !map->student || !map->similarity || !col) {
        free(col);
        component_map_free(map);
        return CIRCD_ENOMEM;
    }
    int rc = assignment_maximise(sim, n_teacher, n_student, col);
    if (rc != CIRCD_OK) {
        free(col);
        component_map_free(map);
        return err_prefix(rc, "component map: ");
    }
    map->n = n_teacher;
    for (int i = 0; i < n_teacher; i++) {
        map->teacher[i] = teacher[i];
        map->student[i] = col[i] >= 0 ? student[col[i]] : -1;
        map->similarity[i] = col[i] >= 0 ? sim[(size_t)i * n_student + col[i]] : NAN;
    }
    free(col);
    return CIRCD_OK;
}
