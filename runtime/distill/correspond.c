/* correspond.c — component activations (gather / scatter over a row mask), Strategy A's CKA matrix and map
 * (component_map_build; the assignment itself is in assignment.c) and Strategy B's global projection (loss with
 * its gradients through cblas, AdamW on P). See correspond.h. */
#include "distill/correspond.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "util/error.h"
#include "util/rng.h"

/* ---- component activations ---- */

/* Where component u's features of row r = b * T + t start inside its layer's hook tensor, and that tensor. Returns
 * the feature count, or -1 (error recorded) for the input node or an index out of range. */
static int component_locate(const struct llama_model *m, const struct circuit_graph *g, int u, float *const *z,
                            float *const *mlp, float **base, size_t *row_stride)
{
    if (u <= 0 || u >= g->n_up) {
        err_set(CIRCD_EINPUT, "component %d is not a head or an MLP (1..%d)", u, g->n_up - 1);
        return -1;
    }
    struct graph_place place = graph_up_place(g, u);
    const struct llama_config *c = &m->config;
    if (place.kind == 1) {
        if (base) *base = z ? z[place.layer] + (size_t)place.head * c->head_dim : NULL;
        if (row_stride) *row_stride = (size_t)c->n_heads * c->head_dim;
        return c->head_dim;
    }
    if (base) *base = mlp ? mlp[place.layer] : NULL;
    if (row_stride) *row_stride = (size_t)c->d_model;
    return c->d_model;
}

int component_dim(const struct llama_model *m, const struct circuit_graph *g, int u)
{
    return component_locate(m, g, u, NULL, NULL, NULL, NULL);
}

int component_gather(const struct llama_model *m, const struct circuit_graph *g, int u, float *const *z,
                     float *const *mlp, int B, int T, const unsigned char *row_mask, float *out, int ld)
{
    float *base;
    size_t stride;
    int dim = component_locate(m, g, u, z, mlp, &base, &stride);
    if (dim < 0) return -1;
    if (ld < dim) {
        err_set(CIRCD_EINPUT, "component %d: row stride %d below its %d features", u, ld, dim);
        return -1;
    }
    int rows = 0;
    for (int r = 0; r < B * T; r++) {
        if (row_mask && !row_mask[r]) continue;
        memcpy(out + (size_t)rows * ld, base + (size_t)r * stride, (size_t)dim * sizeof *out);
        rows++;
    }
    return rows;
}

void component_scatter_add(const struct llama_model *m, const struct circuit_graph *g, int u, float *const *dz,
                           float *const *dmlp, int B, int T, const unsigned char *row_mask, const float *d, int ld)
{
    float *base;
    size_t stride;
    int dim = component_locate(m, g, u, dz, dmlp, &base, &stride);
    if (dim < 0 || ld < dim) return;
    int rows = 0;
    for (int r = 0; r < B * T; r++) {
        if (row_mask && !row_mask[r]) continue;
        float *dst = base + (size_t)r * stride;
        const float *src = d + (size_t)rows * ld;
        for (int k = 0; k < dim; k++) dst[k] += src[k];
        rows++;
    }
}

/* ---- Strategy A: the CKA matrix and the map ---- */

/* Gathers components ups[0..n) of src, each into its own [rows, dim] block of *memory (allocated here), block i at
 * offset[i]. *max_dim receives the widest. */
static int gather_all(const struct component_source *src, const int *ups, int n, int B, int T,
                      const unsigned char *row_mask, int rows, float **memory, size_t *offset, int *dims, int *max_dim)
{
    size_t total = 0;
    *max_dim = 0;
    for (int i = 0; i < n; i++) {
        dims[i] = component_dim(src->model, src->graph, ups[i]);
        if (dims[i] < 0) return CIRCD_EINPUT;
        offset[i] = total;
        total += (size_t)rows * dims[i];
        if (dims[i] > *max_dim) *max_dim = dims[i];
    }
    *memory = xmalloc((total > 0 ? total : 1) * sizeof **memory);
    if (!*memory) return CIRCD_ENOMEM;
    for (int i = 0; i < n; i++)
        component_gather(src->model, src->graph, ups[i], src->z, src->mlp, B, T, row_mask, *memory + offset[i],
                         dims[i]);
    return CIRCD_OK;
}

int component_map_build(const struct component_source *teacher, const int *teacher_ups, int n_teacher,
                        const struct component_source *student, const int *student_ups, int n_student, int B, int T,
                        const unsigned char *row_mask, int unbiased, struct component_map *map, double *sim)
{
    memset(map, 0, sizeof *map);
    if (n_teacher < 0 || n_student < 0 || B < 0 || T < 0)
        return err_set(CIRCD_EINPUT, "component map: negative size (%d teacher, %d student, B %d, T %d)", n_teacher,
                       n_student, B, T);
    int rows = 0;
    for (int r = 0; r < B * T; r++) rows += !row_mask || row_mask[r];
    int min_rows = unbiased ? 4 : 2;
    if (rows < min_rows)
        return err_set(CIRCD_EINPUT, "component map: %d selected rows, CKA needs at least %d", rows, min_rows);

    size_t nt = n_teacher > 0 ? (size_t)n_teacher : 1, ns = n_student > 0 ? (size_t)n_student : 1;
    size_t *t_offset = xmalloc(nt * sizeof *t_offset), *s_offset = xmalloc(ns * sizeof *s_offset);
    int *t_dim = xmalloc(nt * sizeof *t_dim), *s_dim = xmalloc(ns * sizeof *s_dim);
    double *matrix = xmalloc(nt * ns * sizeof *matrix);
    float *t_acts = NULL, *s_acts = NULL;
    struct cka_workspace w = {0};
    int rc = CIRCD_ENOMEM, t_max = 0, s_max = 0;
    if (!t_offset || !s_offset || !t_dim || !s_dim || !matrix) goto done;
    rc = gather_all(teacher, teacher_ups, n_teacher, B, T, row_mask, rows, &t_acts, t_offset, t_dim, &t_max);
    if (rc != CIRCD_OK) { err_prefix(rc, "component map, teacher: "); goto done; }
    rc = gather_all(student, student_ups, n_student, B, T, row_mask, rows, &s_acts, s_offset, s_dim, &s_max);
    if (rc != CIRCD_OK) { err_prefix(rc, "component map, student: "); goto done; }
    rc = cka_workspace_init(&w, rows, t_max > 0 ? t_max : 1, s_max > 0 ? s_max : 1);
    if (rc != CIRCD_OK) goto done;
    for (int i = 0; i < n_teacher; i++)
        for (int j = 0; j < n_student; j++) {
            double c = cka(t_acts + t_offset[i], rows, t_dim[i], s_acts + s_offset[j], s_dim[j], unbiased, 0.0f,
                           NULL, &w);
            if (!isfinite(c)) {
                rc = err_set(CIRCD_EINPUT, "component map: CKA of teacher %d and student %d is not finite",
                             teacher_ups[i], student_ups[j]);
                goto done;
            }
            matrix[(size_t)i * n_student + j] = c;
        }
    rc = component_map_assign(teacher_ups, n_teacher, student_ups, n_student, matrix, map);
    if (rc == CIRCD_OK && sim) memcpy(sim, matrix, (size_t)n_teacher * n_student * sizeof *sim);
done:
    cka_workspace_free(&w);
    free(t_acts); free(s_acts); free(t_offset); free(s_offset); free(t_dim); free(s_dim); free(matrix);
    return rc;
}

/* ---- Strategy B: the global projection ---- */

int global_projection_init(struct global_projection *g, int d_student, int d_teacher, uint64_t seed)
{
    memset(g, 0, sizeof *g);
    if (d_student <= 0 || d_teacher <= 0)
        return err_set(CIRCD_EINPUT, "global projection: bad size %d x %d", d_student, d_teacher);
    size_t n = (size_t)d_student * d_teacher;
    g->p = xmalloc(n * sizeof *g->p);
    g->dp = xcalloc(n, sizeof *g->dp);
    g->m = xcalloc(n, sizeof *g->m);
    g->v = xcalloc(n, sizeof *g->v);
    if (!g->p || !g->dp || !g->m || !g->v) { global_projection_free(g); return CIRCD_ENOMEM; }
    g->d_student = d_student;
    g->d_teacher = d_teacher;
    struct rng r;
    rng_seed(&r, seed);
    float scale = 1.0f / sqrtf((float)d_student);
    for (size_t i = 0; i < n; i++) g->p[i] = scale * rng_normal(&r);
    return CIRCD_OK;
}

void global_projection_free(struct global_projection *g)
{
    free(g->p);
    free(g->dp);
    free(g->m);
    free(g->v);
    memset(g, 0, sizeof *g);
}

double global_projection_loss(struct global_projection *g, const float *T, const float *S, int rows, float weight,
                              float *dS, struct cka_workspace *w, float *scratch)
{
    int ds = g->d_student, dt = g->d_teacher;
    if (rows <= 0 || rows > w->max_n || dt > w->max_dx || dt > w->max_dy || (g->unbiased && rows < 4)) return NAN;
    float *projected = scratch, *grad = scratch + (size_t)rows * dt;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, dt, ds, 1.0f, S, ds, g->p, dt, 0.0f, projected, dt);
    memset(grad, 0, (size_t)rows * dt * sizeof *grad);
    double c = cka(T, rows, dt, projected, dt, g->unbiased, -1.0f, grad, w); /* grad = d(1 − CKA)/d(S · P) */
    if (!isfinite(c)) return NAN;
    /* S · P = Y: dP += weight · S^T G, dS += weight · G P^T */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ds, dt, rows, weight, S, ds, grad, dt, 1.0f, g->dp, dt);
    if (dS)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, ds, dt, weight, grad, dt, g->p, dt, 1.0f, dS, ds);
    return 1.0 - c;
}

void global_projection_step(struct global_projection *g, float lr, float weight_decay)
{
    g->step++;
    adamw_update(g->p, g->dp, g->m, g->v, (size_t)g->d_student * g->d_teacher, lr, 0.9f, 0.999f, 1e-8f, weight_decay,
                 (int)g->step, 1.0f);
}
