/* correspond.h — which student component each teacher circuit component is aligned with, and the activations the
 * alignment compares.
 *
 * Component activations (rows = the positions a row mask selects, over a [B, T] batch, row-major b then t):
 * head h of layer l = its blocks.l.attn.hook_z slice [rows, head_dim]; MLP l = blocks.l.hook_mlp_out [rows, d_model].
 * Components are named by their graph upstream index (circuits/graph.h), the input node excluded.
 *
 * Strategy A (functional correspondence): the student's proto-circuit (its own AtP's top components) is matched to
 * the teacher circuit one-to-one by functional similarity — linear CKA between the two components' activations on
 * the same inputs — maximising the total CKA of the assignment (Hungarian algorithm on the rectangular matrix; with
 * fewer student candidates than teacher components, the weakest teacher components stay unmapped). The map and the
 * CKA matrix are stored in results.h5 and printed.
 *
 * Strategy B (global projection): the teacher circuit's activations are concatenated into one global state per row,
 * [rows, D_T]; the student circuit's likewise [rows, D_S]; a learnable projection P [D_S, D_T] (trained jointly with
 * the student, AdamW) maps the student's state, and the loss is 1 − CKA(teacher state, student state · P). */
#ifndef CIRCD_DISTILL_CORRESPOND_H
#define CIRCD_DISTILL_CORRESPOND_H

#include <stddef.h>
#include <stdint.h>

#include "circuits/graph.h"
#include "distill/losses.h"
#include "model/model.h"

/* Feature count of component u (head_dim for a head, d_model for an MLP); -1 with CIRCD_EINPUT recorded when u is
 * the input node or out of range. */
int component_dim(const struct llama_model *m, const struct circuit_graph *g, int u);
/* After a forward whose hook_z / hook_mlp_out of the needed layers were cached into z[l] / mlp[l] (full hook
 * tensors for a [B, T] batch), gathers component u's rows selected by row_mask[B*T] into out [rows, dim] (row stride
 * ld >= dim, so several components can share one concatenated matrix). row_mask NULL selects every row. Returns the
 * number of rows, or -1 with CIRCD_EINPUT recorded for a bad u or ld < dim (out untouched). */
int component_gather(const struct llama_model *m, const struct circuit_graph *g, int u, float *const *z,
                     float *const *mlp, int B, int T, const unsigned char *row_mask, float *out, int ld);
/* The reverse: adds d (rows selected, [rows, dim] with stride ld) into full-tensor gradient buffers dz[l] / dmlp[l]
 * (the ones a HOOK_GRAD_ADD registration feeds into backward). The adjoint of component_gather: for any x, y,
 * <gather(x), y> == <x, scatter_add(y)>. A bad u or ld < dim adds nothing. */
void component_scatter_add(const struct llama_model *m, const struct circuit_graph *g, int u, float *const *dz,
                           float *const *dmlp, int B, int T, const unsigned char *row_mask, const float *d, int ld);

/* Strategy A's result. */
struct component_map {
    int n;               /* teacher components */
    int *teacher;        /* [n] teacher upstream indices */
    int *student;        /* [n] mapped student upstream index, or -1 when unmapped */
    double *similarity;  /* [n] CKA of the mapped pair (NaN when unmapped) */
};
void component_map_free(struct component_map *map);
/* sim[i * n_student + j] = CKA(teacher component i, student candidate j) computed over the same rows; the one-to-one
 * assignment maximising the total similarity (Hungarian, O(n^3)). */
int component_map_assign(const int *teacher, int n_teacher, const int *student, int n_student, const double *sim,
                         struct component_map *map);
/* The rectangular assignment problem behind it (Kuhn–Munkres with potentials, O(min² · max)): pairs rows with
 * columns one-to-one, min(n_rows, n_cols) pairs, maximising the total w[i * n_cols + j] (finite values; NaN or
 * infinite entries are CIRCD_EINPUT). row_col[i] receives the column of row i, or -1 when row i is left over
 * (n_rows > n_cols). CIRCD_ENOMEM on allocation failure; row_col is then untouched. */
int assignment_maximise(const double *w, int n_rows, int n_cols, int *row_col);

/* One model's cached activations for component_map_build: the per-layer full hook tensors of one [B, T] batch,
 * z[l] = blocks.l.attn.hook_z [B, T, H, hd] and mlp[l] = blocks.l.hook_mlp_out [B, T, d] (HOOK_CACHE targets;
 * only the layers of the requested components are read). Borrowed, never freed here. */
struct component_source {
    const struct llama_model *model;
    const struct circuit_graph *graph;
    float *const *z;
    float *const *mlp;
};
/* Strategy A end to end for the distillation driver, after the caller ran the teacher's and the student's forwards
 * on the same [B, T] batch with those hooks cached: gathers every teacher component teacher_ups[0..n_teacher) and
 * every student candidate student_ups[0..n_student) over the rows row_mask selects (NULL = all), computes the CKA
 * matrix (biased estimator, or unbiased when `unbiased`; needs >= 2 rows, >= 4 unbiased) and assigns
 * (component_map_assign) into map. sim, when not NULL, receives the matrix [n_teacher * n_student]
 * (sim[i * n_student + j] = CKA(teacher i, student j)). Allocates its own scratch. CIRCD_EINPUT for a bad component
 * index or too few rows, CIRCD_ENOMEM; map is left empty (zeroed) on failure. */
int component_map_build(const struct component_source *teacher, const int *teacher_ups, int n_teacher,
                        const struct component_source *student, const int *student_ups, int n_student, int B, int T,
                        const unsigned char *row_mask, int unbiased, struct component_map *map, double *sim);

/* Strategy B's projection P [D_S, D_T], its gradient and AdamW moments (owned). */
struct global_projection {
    int d_student, d_teacher;
    float *p, *dp, *m, *v;
    int64_t step;
    int unbiased; /* CKA estimator of global_projection_loss: 0 (biased, init's choice) or 1 */
};
/* P ~ N(0, 1/D_S) from seed (so S · P keeps S's scale), dp and the moments zero, step 0. CIRCD_EINPUT for
 * non-positive sizes, CIRCD_ENOMEM; *g is zeroed on failure. */
int global_projection_init(struct global_projection *g, int d_student, int d_teacher, uint64_t seed);
void global_projection_free(struct global_projection *g);
/* 1 − CKA(T [rows, D_T], S [rows, D_S] · P); adds weight · d(1 − CKA)/dS into dS [rows, D_S] and
 * weight · d(1 − CKA)/dP into g->dp (caller zeroes dp per step). scratch holds 2 * rows * D_T floats (the projected
 * state S · P and the gradient of the loss with respect to it). dS may be NULL (P alone is trained). Returns NAN,
 * adding nothing, when the CKA workspace is too small for rows × D_T (or rows < 4 with g->unbiased). */
double global_projection_loss(struct global_projection *g, const float *T, const float *S, int rows, float weight,
                              float *dS, struct cka_workspace *w, float *scratch);
/* One AdamW step on P from g->dp (β1 0.9, β2 0.999, ε 1e-8, bias correction, decoupled weight decay); step++.
 * Does not zero dp. */
void global_projection_step(struct global_projection *g, float lr, float weight_decay);

#endif
