/* method.c — implementation of method.h. */
#include "distill/method.h"

#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "sched/reduce.h"
#include "util/error.h"
#include "util/interrupt.h"

struct step_scratch {
    float **z_t, **mlp_t;        /* teacher hook caches per layer */
    float **z_s, **mlp_s;        /* student hook caches per layer */
    float **dz_s, **dmlp_s;      /* gradients added at the student's hooks */
    float *dlogits, *dloss;      /* [N, V], [N] */
    float *teacher_logits;       /* [N, V] when the teacher runs pipelined */
    unsigned char *answer_rows, *align_rows; /* [N] */
    float *x, *y, *dy;           /* gathered component matrices [N, max dim] (strategy A) */
    float *tg, *sg, *dsg, *proj_scratch; /* strategy B: [N, D_T], [N, D_S], [N, D_S], 2 [N, D_T] */
    int d_teacher_total, d_student_total;
    int *rank_rows, *rank_first; /* data parallel: each rank's alignment rows and the first of them in the batch */
    int *counts, *displs;        /* data parallel: MPI_Allgatherv's counts and displacements (floats) */
    int peer_failed;             /* data parallel: the stop check saw a rank leave training with an error */
    struct cka_workspace cka;
    float *memory;               /* one block for the per-layer buffers */
};

/* Floats of one set of per-layer z + mlp_out buffers of a model for N rows. */
static size_t layer_floats(const struct llama_config *c, int N)
{
    return (size_t)c->n_layers * N * (c->n_heads * c->head_dim + c->d_model);
}

/* Carves per-layer z / mlp views out of *cur: z[l] [N, H*hd], mlp[l] [N, d]. */
static void carve_layers(float **cur, const struct llama_config *c, int N, float **z, float **mlp)
{
    for (int l = 0; l < c->n_layers; l++) {
        z[l] = *cur;
        *cur += (size_t)N * c->n_heads * c->head_dim;
        mlp[l] = *cur;
        *cur += (size_t)N * c->d_model;
    }
}

static int total_dim(const struct llama_model *m, const struct circuit_graph *g, const int *ups, int n)
{
    int total = 0;
    for (int i = 0; i < n; i++) total += component_dim(m, g, ups[i]);
    return total;
}

static void scratch_free(struct step_scratch *sc)
{
    if (!sc) return;
    free(sc->z_t); free(sc->mlp_t); free(sc->z_s); free(sc->mlp_s); free(sc->dz_s); free(sc->dmlp_s);
    free(sc->dlogits); free(sc->dloss); free(sc->teacher_logits); free(sc->answer_rows); free(sc->align_rows);
    free(sc->x); free(sc->y); free(sc->dy); free(sc->tg); free(sc->sg); free(sc->dsg); free(sc->proj_scratch);
    cka_workspace_free(&sc->cka);
    free(sc->rank_rows); /* one block with rank_first, counts and displs */
    free(sc->memory);
    free(sc);
}

int distill_step_init(struct distill_step *s, const struct distill_setup *setup, struct llama_model *student,
                      int capacity_B, int capacity_T)
{
    memset(s, 0, sizeof *s);
    s->setup = *setup;
    s->capacity_B = capacity_B;
    s->capacity_T = capacity_T;
    const struct distill_setup *su = &s->setup;
    int align = su->lambda_align > 0 && su->strategy != ALIGN_NONE;
    if ((su->lambda_kd > 0 || align) && !su->teacher)
        return err_set(CIRCD_EINPUT, "distillation: KL or alignment needs the teacher");
    if (su->teacher && su->teacher->config.vocab_size != student->config.vocab_size)
        return err_set(CIRCD_EINPUT, "distillation: teacher and student vocabularies differ (%d vs %d)",
                       su->teacher->config.vocab_size, student->config.vocab_size);
    if (align && su->strategy == ALIGN_MAPPED && !su->map)
        return err_set(CIRCD_EINPUT, "distillation: strategy A needs the component map");
    if (align && su->strategy == ALIGN_GLOBAL && (!su->projection || su->n_teacher < 1 || su->n_student < 1))
        return err_set(CIRCD_EINPUT, "distillation: strategy B needs both circuits and the projection");
    if (su->data_parallel && su->data_parallel->size > 1 && su->teacher_pipeline)
        return err_set(CIRCD_EINPUT, "distillation: data parallel and a pipelined teacher exclude each other");
    struct step_scratch *sc = xcalloc(1, sizeof *sc);
    if (!sc) return CIRCD_ENOMEM;
    s->scratch = sc;
    if (su->data_parallel && su->data_parallel->size > 1) {
        int R = su->data_parallel->size;
        if (!(sc->rank_rows = xcalloc(4 * (size_t)R, sizeof(int)))) {
            distill_step_free(s);
            return CIRCD_ENOMEM;
        }
        sc->rank_first = sc->rank_rows + R;
        sc->counts = sc->rank_first + R;
        sc->displs = sc->counts + R;
    }
    int N = capacity_B * capacity_T, V = student->config.vocab_size;
    const struct llama_config *tc = su->teacher ? &su->teacher->config : NULL, *scfg = &student->config;
    size_t floats = layer_floats(scfg, N) * 2 + (tc ? layer_floats(tc, N) : 0);
    int Lt = tc ? tc->n_layers : 0, Ls = scfg->n_layers;
    sc->memory = xmalloc((floats ? floats : 1) * sizeof(float));
    sc->z_t = xcalloc((size_t)Lt + 1, sizeof(float *));
    sc->mlp_t = xcalloc((size_t)Lt + 1, sizeof(float *));
    sc->z_s = xcalloc((size_t)Ls, sizeof(float *));
    sc->mlp_s = xcalloc((size_t)Ls, sizeof(float *));
    sc->dz_s = xcalloc((size_t)Ls, sizeof(float *));
    sc->dmlp_s = xcalloc((size_t)Ls, sizeof(float *));
    sc->dlogits = xmalloc((size_t)N * V * sizeof(float));
    sc->dloss = xmalloc((size_t)N * sizeof(float));
    sc->answer_rows = xmalloc((size_t)N);
    sc->align_rows = xmalloc((size_t)N);
    if (su->teacher_pipeline && tc && !(sc->teacher_logits = xmalloc((size_t)N * V * sizeof(float)))) {
        distill_step_free(s);
        return CIRCD_ENOMEM;
    }
    if (!sc->memory || !sc->z_t || !sc->mlp_t || !sc->z_s || !sc->mlp_s || !sc->dz_s || !sc->dmlp_s || !sc->dlogits ||
        !sc->dloss || !sc->answer_rows || !sc->align_rows) {
        distill_step_free(s);
        return CIRCD_ENOMEM;
    }
    float *cur = sc->memory;
    carve_layers(&cur, scfg, N, sc->z_s, sc->mlp_s);
    carve_layers(&cur, scfg, N, sc->dz_s, sc->dmlp_s);
    if (tc) carve_layers(&cur, tc, N, sc->z_t, sc->mlp_t);
    int rc = CIRCD_OK;
    if (align) {
        int max_t = tc->d_model > tc->head_dim ? tc->d_model : tc->head_dim;
        int max_s = scfg->d_model > scfg->head_dim ? scfg->d_model : scfg->head_dim;
        if (su->strategy == ALIGN_GLOBAL) {
            sc->d_teacher_total = total_dim(su->teacher, su->teacher_graph, su->teacher_components, su->n_teacher);
            sc->d_student_total = total_dim(student, su->student_graph, su->student_components, su->n_student);
            if (su->projection->d_student != sc->d_student_total || su->projection->d_teacher != sc->d_teacher_total)
                rc = err_set(CIRCD_EINPUT, "distillation: projection is %d x %d, the circuits need %d x %d",
                             su->projection->d_student, su->projection->d_teacher, sc->d_student_total,
                             sc->d_teacher_total);
            max_t = sc->d_teacher_total;
            max_s = sc->d_teacher_total; /* CKA compares the teacher state with the projected student state */
            sc->tg = xmalloc((size_t)N * sc->d_teacher_total * sizeof(float));
            sc->sg = xmalloc((size_t)N * sc->d_student_total * sizeof(float));
            sc->dsg = xmalloc((size_t)N * sc->d_student_total * sizeof(float));
            sc->proj_scratch = xmalloc((size_t)2 * N * sc->d_teacher_total * sizeof(float));
            if (!rc && (!sc->tg || !sc->sg || !sc->dsg || !sc->proj_scratch)) rc = CIRCD_ENOMEM;
        } else {
            sc->x = xmalloc((size_t)N * max_t * sizeof(float));
            sc->y = xmalloc((size_t)N * max_s * sizeof(float));
            sc->dy = xmalloc((size_t)N * max_s * sizeof(float));
            if (!sc->x || !sc->y || !sc->dy) rc = CIRCD_ENOMEM;
        }
        if (!rc) rc = cka_workspace_init(&sc->cka, N, max_t, max_s);
    }
    if (rc) distill_step_free(s);
    return rc;
}

void distill_step_free(struct distill_step *s)
{
    scratch_free(s->scratch);
    s->scratch = NULL;
}

/* Registers `action` on hook_z and hook_mlp_out of every layer with the given buffers. */
static int register_layers(struct llama_model *m, enum hook_action action, float **z, float **mlp)
{
    int rc = CIRCD_OK;
    for (int l = 0; l < m->config.n_layers && !rc; l++) {
        struct hook_request rz = {{HOOK_ATTN_Z, l}, action, z[l], -1, -1};
        struct hook_request rm = {{HOOK_MLP_OUT, l}, action, mlp[l], -1, -1};
        rc = model_hook_add(m, &rz);
        if (!rc) rc = model_hook_add(m, &rm);
    }
    return rc;
}

static void select_rows(const struct distill_setup *su, const int32_t *tokens, const int32_t *targets, int B, int T,
                        unsigned char *answer, unsigned char *align)
{
    for (int b = 0; b < B; b++) {
        int first = -1;
        for (int t = 0; t < T; t++) {
            size_t i = (size_t)b * T + t;
            answer[i] = targets[i] >= 0;
            if (answer[i] && first < 0) first = t;
            align[i] = su->rows == ALIGN_ANSWER ? answer[i] : su->rows == ALIGN_ALL ? tokens[i] != su->pad_id : 0;
        }
        if (su->rows == ALIGN_LAST_PROMPT && first >= 0) align[(size_t)b * T + first] = 1;
    }
}

/* The rows of a step this rank computes: its block [b0, b0 + B) of the batch (all of it without data parallel),
 * the alignment mask of those rows, and where its alignment rows start among the whole batch's. */
struct row_block {
    int b0, B, T;
    const unsigned char *align;
    int first;
};

/* The data-parallel collective when there is more than one rank, else NULL. */
static struct collective *data_parallel(const struct distill_setup *su)
{
    return su->data_parallel && su->data_parallel->size > 1 ? su->data_parallel : NULL;
}

/* Data parallel: every rank's alignment rows of a [rows, ld] matrix, each written at its rank's first row, all
 * gathered in place in rank order (the 1-rank row order). *rows := the whole batch's alignment rows. The counts are
 * the same on every rank, so a failure here is the same everywhere. */
static int gather_rows(struct step_scratch *sc, const struct collective *dp, float *matrix, int ld, int *rows)
{
    long long total = 0;
    for (int r = 0; r < dp->size; r++) {
        long long count = (long long)sc->rank_rows[r] * ld, first = (long long)sc->rank_first[r] * ld;
        if (count > INT_MAX || first > INT_MAX)
            return err_set(CIRCD_EINPUT, "data parallel: %lld alignment values per rank, MPI counts stop at %d",
                           first + count, INT_MAX);
        sc->counts[r] = (int)count;
        sc->displs[r] = (int)first;
        total += sc->rank_rows[r];
    }
    int e = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, matrix, sc->counts, sc->displs, MPI_FLOAT, dp->comm);
    if (e != MPI_SUCCESS) return err_set(CIRCD_EIO, "data parallel: MPI_Allgatherv of alignment rows failed");
    *rows = (int)total;
    return CIRCD_OK;
}

/* Strategy A: Σ over mapped pairs of (1 − CKA) into *sum, gradients into the student's hook buffers (this rank's
 * rows). With data parallel the pair's activations of every rank are gathered and CKA is the whole batch's. */
static int align_mapped(struct distill_step *s, struct llama_model *m, const struct row_block *rb, double *sum,
                        int *pairs)
{
    const struct distill_setup *su = &s->setup;
    struct step_scratch *sc = s->scratch;
    struct collective *dp = data_parallel(su);
    *sum = 0;
    *pairs = 0;
    for (int i = 0; i < su->map->n; i++) {
        int u = su->map->teacher[i], v = su->map->student[i];
        if (v < 0) continue;
        int dx = component_dim(su->teacher, su->teacher_graph, u), dy = component_dim(m, su->student_graph, v);
        if (dx < 1 || dy < 1) continue; /* not a component: no pair (the same on every rank) */
        int rows = component_gather(su->teacher, su->teacher_graph, u, sc->z_t, sc->mlp_t, rb->B, rb->T, rb->align,
                                    sc->x + (size_t)rb->first * dx, dx);
        component_gather(m, su->student_graph, v, sc->z_s, sc->mlp_s, rb->B, rb->T, rb->align,
                         sc->y + (size_t)rb->first * dy, dy);
        if (dp) {
            int rc = gather_rows(sc, dp, sc->x, dx, &rows);
            if (!rc) rc = gather_rows(sc, dp, sc->y, dy, &rows);
            if (rc) return rc;
        }
        vec_zero(sc->dy, (size_t)rows * dy);
        double c = cka(sc->x, rows, dx, sc->y, dy, su->cka_unbiased, -su->lambda_align, sc->dy, &sc->cka);
        if (isnan(c)) continue;
        *sum += 1.0 - c;
        (*pairs)++;
        component_scatter_add(m, su->student_graph, v, sc->dz_s, sc->dmlp_s, rb->B, rb->T, rb->align,
                              sc->dy + (size_t)rb->first * dy, dy);
    }
    return CIRCD_OK;
}

/* Strategy B: 1 − CKA(teacher circuit state, student circuit state · P) into *loss; with data parallel over the
 * gathered states of the whole batch (P's gradient then the same on every rank). */
static int align_global(struct distill_step *s, struct llama_model *m, const struct row_block *rb, double *loss)
{
    const struct distill_setup *su = &s->setup;
    struct step_scratch *sc = s->scratch;
    struct collective *dp = data_parallel(su);
    int rows = 0, off = 0, dt = sc->d_teacher_total, ds = sc->d_student_total;
    float *tg = sc->tg + (size_t)rb->first * dt, *sg = sc->sg + (size_t)rb->first * ds;
    *loss = 0;
    for (int i = 0; i < su->n_teacher; i++) {
        int u = su->teacher_components[i];
        rows = component_gather(su->teacher, su->teacher_graph, u, sc->z_t, sc->mlp_t, rb->B, rb->T, rb->align,
                                tg + off, dt);
        off += component_dim(su->teacher, su->teacher_graph, u);
    }
    off = 0;
    for (int i = 0; i < su->n_student; i++) {
        int v = su->student_components[i];
        component_gather(m, su->student_graph, v, sc->z_s, sc->mlp_s, rb->B, rb->T, rb->align, sg + off, ds);
        off += component_dim(m, su->student_graph, v);
    }
    if (dp) {
        int rc = gather_rows(sc, dp, sc->tg, dt, &rows);
        if (!rc) rc = gather_rows(sc, dp, sc->sg, ds, &rows);
        if (rc) return rc;
    }
    if (rows < 2) return CIRCD_OK;
    vec_zero(sc->dsg, (size_t)rows * ds);
    memset(su->projection->dp, 0, (size_t)su->projection->d_student * su->projection->d_teacher * sizeof(float));
    double value = global_projection_loss(su->projection, sc->tg, sc->sg, rows, su->lambda_align, sc->dsg, &sc->cka,
                                          sc->proj_scratch);
    if (isnan(value)) return CIRCD_OK;
    *loss = value;
    off = 0;
    for (int i = 0; i < su->n_student; i++) {
        int v = su->student_components[i];
        component_scatter_add(m, su->student_graph, v, sc->dz_s, sc->dmlp_s, rb->B, rb->T, rb->align,
                              sc->dsg + (size_t)rb->first * ds + off, ds);
        off += component_dim(m, su->student_graph, v);
    }
    return CIRCD_OK;
}

/* This rank's block of a B-row batch and, with data parallel, every rank's alignment rows (counts and offsets for
 * gather_rows). CIRCD_EINPUT, the same on every rank, when a rank would get no row. */
static int split_rows(struct distill_step *s, int B, int T, struct row_block *rb)
{
    struct step_scratch *sc = s->scratch;
    struct collective *dp = data_parallel(&s->setup);
    *rb = (struct row_block){0, B, T, sc->align_rows, 0};
    if (!dp) return CIRCD_OK;
    if (B < dp->size)
        return err_set(CIRCD_EINPUT, "data parallel: a batch of %d rows over %d ranks leaves a rank without rows", B,
                       dp->size);
    int first = 0;
    for (int r = 0; r < dp->size; r++) {
        size_t lo, hi;
        shard_range((size_t)B, r, dp->size, &lo, &hi);
        int n = 0;
        for (size_t i = lo * T; i < hi * T; i++) n += sc->align_rows[i] != 0;
        sc->rank_rows[r] = n;
        sc->rank_first[r] = first;
        if (r == dp->rank) *rb = (struct row_block){(int)lo, (int)(hi - lo), T, sc->align_rows + lo * T, first};
        first += n;
    }
    return CIRCD_OK;
}

/* Data parallel: the whole batch's terms from each rank's sums over its rows (CE and KL weighted by the rank's
 * answer rows), added in rank order so that every rank reports the same numbers. */
static int whole_batch_terms(struct collective *dp, struct distill_terms *terms, int local_rows, int whole_rows)
{
    double sums[2] = {terms->ce * local_rows, terms->kl * local_rows};
    int rc = reduce_sum_f64_ordered(sums, 2, dp->comm);
    if (rc) return rc;
    terms->ce = whole_rows ? sums[0] / whole_rows : 0;
    terms->kl = whole_rows ? sums[1] / whole_rows : 0;
    return CIRCD_OK;
}

int distill_train_step(void *ctx, struct llama_model *m, const int32_t *tokens, const int32_t *targets, int B, int T,
                       const struct adamw_config *opt, float lr, float *loss)
{
    struct distill_step *s = ctx;
    const struct distill_setup *su = &s->setup;
    struct step_scratch *sc = s->scratch;
    struct collective *dp = data_parallel(su);
    if (B > s->capacity_B || T > s->capacity_T)
        return err_set(CIRCD_EINTERNAL, "distill step: batch %dx%d over the capacity %dx%d", B, T, s->capacity_B,
                       s->capacity_T);
    int V = m->config.vocab_size, rc = CIRCD_OK;
    int align = su->lambda_align > 0 && su->strategy != ALIGN_NONE;
    int teacher = su->lambda_kd > 0 || align;
    select_rows(su, tokens, targets, B, T, sc->answer_rows, sc->align_rows);
    struct row_block rb;
    if ((rc = split_rows(s, B, T, &rb))) return rc;
    /* From here on: this rank's rows (the whole batch without data parallel). */
    const int32_t *tok = tokens + (size_t)rb.b0 * T, *tgt = targets + (size_t)rb.b0 * T;
    const unsigned char *answer = sc->answer_rows + (size_t)rb.b0 * T;
    size_t N = (size_t)rb.B * T;
    int whole_rows = 0; /* answer rows of the whole batch: CE and KL are means over them */
    for (size_t i = 0; dp && i < (size_t)B * T; i++) whole_rows += sc->answer_rows[i] != 0;
    const float *teacher_logits = NULL;
    if (teacher && su->teacher_pipeline) {
        struct pipeline_output out = {sc->teacher_logits, align ? sc->z_t : NULL, align ? sc->mlp_t : NULL};
        int M = su->teacher_micro_batches < 1 ? 1 : su->teacher_micro_batches > B ? B : su->teacher_micro_batches;
        rc = pipeline_request_forward(su->teacher_pipeline, tokens, B, T, M, &out);
        teacher_logits = sc->teacher_logits;
    } else if (teacher) {
        model_hooks_clear(su->teacher);
        if (align) rc = register_layers(su->teacher, HOOK_CACHE, sc->z_t, sc->mlp_t);
        if (!rc) rc = model_forward(su->teacher, tok, NULL, rb.B, T);
        model_hooks_clear(su->teacher);
        if (!rc && !(teacher_logits = model_logits(su->teacher))) rc = CIRCD_EIO;
    }
    model_hooks_clear(m);
    if (!rc && align) {
        for (int l = 0; l < m->config.n_layers; l++) {
            vec_zero(sc->dz_s[l], N * m->config.n_heads * m->config.head_dim);
            vec_zero(sc->dmlp_s[l], N * m->config.d_model);
        }
        rc = register_layers(m, HOOK_CACHE, sc->z_s, sc->mlp_s);
        if (!rc) rc = register_layers(m, HOOK_GRAD_ADD, sc->dz_s, sc->dmlp_s);
    }
    if (!rc) rc = model_forward(m, tok, tgt, rb.B, T);
    if (dp) rc = reduce_agree(rc, dp->comm); /* before the alignment's gathers */
    if (rc) { model_hooks_clear(m); return rc; }
    const float *logits = model_logits(m);
    int loss_rows = dp ? whole_rows : m->n_loss_rows;
    struct distill_terms terms = {m->n_loss_rows ? m->loss : 0, 0, 0, 0};
    vec_zero(sc->dlogits, N * V);
    if (su->lambda_task > 0 && loss_rows) {
        for (size_t i = 0; i < N; i++) sc->dloss[i] = su->lambda_task / (float)loss_rows;
        crossentropy_backward(sc->dlogits, logits, tgt, sc->dloss, (int)N, V);
    }
    if (su->lambda_kd > 0) { /* kd_kl averages over this rank's answer rows: reweigh to the whole batch's */
        float weight = dp ? (whole_rows ? su->lambda_kd * (float)m->n_loss_rows / (float)whole_rows : 0)
                          : su->lambda_kd;
        terms.kl = kd_kl(teacher_logits, logits, answer, (int)N, V, su->temperature, su->kl_direction, weight,
                         sc->dlogits);
    }
    if (align) {
        if (su->strategy == ALIGN_MAPPED) rc = align_mapped(s, m, &rb, &terms.align, &terms.align_pairs);
        else { rc = align_global(s, m, &rb, &terms.align); terms.align_pairs = 1; }
    }
    if (!rc) {
        model_zero_grad(m);
        rc = model_backward(m, sc->dlogits);
    }
    model_hooks_clear(m);
    if (dp) {
        rc = reduce_agree(rc, dp->comm);
        if (!rc) rc = reduce_agree(collective_allreduce_sum_f32(dp, model_backend_grads(m), m->n_params), dp->comm);
        if (!rc) rc = whole_batch_terms(dp, &terms, m->n_loss_rows, whole_rows);
    }
    if (rc) return rc;
    model_adamw_step_masked(m, opt, lr, su->mask);
    if (align && su->strategy == ALIGN_GLOBAL) global_projection_step(su->projection, lr, su->projection_weight_decay);
    s->last = terms;
    *loss = (float)(su->lambda_task * terms.ce + su->lambda_kd * terms.kl + su->lambda_align * terms.align);
    return CIRCD_OK;
}

/* Data parallel: the one collective the ranks share between steps, {signal, a rank failed} maximised over them. A
 * rank that leaves training with an error outside a step (rank 0's checkpoint write) takes part once more with
 * distill_data_parallel_finish, which meets the others' next stop check. */
static void agree_between_steps(const struct collective *dp, int v[2])
{
    int mine[2] = {v[0], v[1]};
    MPI_Allreduce(mine, v, 2, MPI_INT, MPI_MAX, dp->comm);
}

int distill_stop_requested(void *ctx)
{
    struct distill_step *s = ctx;
    struct step_scratch *sc = s->scratch;
    int sig = interrupt_requested();
    struct collective *dp = data_parallel(&s->setup);
    if (!dp) return sig;
    int v[2] = {sig, 0};
    agree_between_steps(dp, v);
    if (v[0] && !sig) interrupt_request(v[0]); /* the rest of the run sees the stop on this rank too */
    if (v[1]) sc->peer_failed = 1;
    return v[0] ? v[0] : v[1] ? SIGTERM : 0;
}

int distill_data_parallel_finish(struct distill_step *s, int rc)
{
    struct step_scratch *sc = s->scratch;
    struct collective *dp = sc ? data_parallel(&s->setup) : NULL;
    if (!dp) return rc;
    if (!sc->peer_failed) {
        int v[2] = {0, rc != CIRCD_OK};
        agree_between_steps(dp, v);
        sc->peer_failed = v[1] && !rc;
    }
    if (sc->peer_failed)
        rc = err_set(CIRCD_EIO, "data parallel: another rank of the %d stopped training with an error", dp->size);
    return rc;
}
