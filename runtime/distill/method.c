/* method.c — implementation of method.h. */
#include "distill/method.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "util/error.h"

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
    struct step_scratch *sc = xcalloc(1, sizeof *sc);
    if (!sc) return CIRCD_ENOMEM;
    s->scratch = sc;
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

/* Strategy A: Σ over mapped pairs of (1 − CKA), gradients into the student's hook buffers. */
static double align_mapped(struct distill_step *s, struct llama_model *m, int B, int T, int *pairs)
{
    const struct distill_setup *su = &s->setup;
    struct step_scratch *sc = s->scratch;
    double sum = 0;
    *pairs = 0;
    for (int i = 0; i < su->map->n; i++) {
        int u = su->map->teacher[i], v = su->map->student[i];
        if (v < 0) continue;
        int dx = component_dim(su->teacher, su->teacher_graph, u), dy = component_dim(m, su->student_graph, v);
        int rows = component_gather(su->teacher, su->teacher_graph, u, sc->z_t, sc->mlp_t, B, T, sc->align_rows,
                                    sc->x, dx);
        component_gather(m, su->student_graph, v, sc->z_s, sc->mlp_s, B, T, sc->align_rows, sc->y, dy);
        vec_zero(sc->dy, (size_t)rows * dy);
        double c = cka(sc->x, rows, dx, sc->y, dy, su->cka_unbiased, -su->lambda_align, sc->dy, &sc->cka);
        if (isnan(c)) continue;
        sum += 1.0 - c;
        (*pairs)++;
        component_scatter_add(m, su->student_graph, v, sc->dz_s, sc->dmlp_s, B, T, sc->align_rows, sc->dy, dy);
    }
    return sum;
}

/* Strategy B: 1 − CKA(teacher circuit state, student circuit state · P). */
static double align_global(struct distill_step *s, struct llama_model *m, int B, int T)
{
    const struct distill_setup *su = &s->setup;
    struct step_scratch *sc = s->scratch;
    int rows = 0, off = 0;
    for (int i = 0; i < su->n_teacher; i++) {
        int u = su->teacher_components[i];
        rows = component_gather(su->teacher, su->teacher_graph, u, sc->z_t, sc->mlp_t, B, T, sc->align_rows,
                                sc->tg + off, sc->d_teacher_total);
        off += component_dim(su->teacher, su->teacher_graph, u);
    }
    off = 0;
    for (int i = 0; i < su->n_student; i++) {
        int v = su->student_components[i];
        component_gather(m, su->student_graph, v, sc->z_s, sc->mlp_s, B, T, sc->align_rows, sc->sg + off,
                         sc->d_student_total);
        off += component_dim(m, su->student_graph, v);
    }
    if (rows < 2) return 0;
    vec_zero(sc->dsg, (size_t)rows * sc->d_student_total);
    memset(su->projection->dp, 0, (size_t)su->projection->d_student * su->projection->d_teacher * sizeof(float));
    double loss = global_projection_loss(su->projection, sc->tg, sc->sg, rows, su->lambda_align, sc->dsg, &sc->cka,
                                         sc->proj_scratch);
    if (isnan(loss)) return 0;
    off = 0;
    for (int i = 0; i < su->n_student; i++) {
        int v = su->student_components[i];
        component_scatter_add(m, su->student_graph, v, sc->dz_s, sc->dmlp_s, B, T, sc->align_rows, sc->dsg + off,
                              sc->d_student_total);
        off += component_dim(m, su->student_graph, v);
    }
    return loss;
}

int distill_train_step(void *ctx, struct llama_model *m, const int32_t *tokens, const int32_t *targets, int B, int T,
                       const struct adamw_config *opt, float lr, float *loss)
{
    struct distill_step *s = ctx;
    const struct distill_setup *su = &s->setup;
    struct step_scratch *sc = s->scratch;
    if (B > s->capacity_B || T > s->capacity_T)
        return err_set(CIRCD_EINTERNAL, "distill step: batch %dx%d over the capacity %dx%d", B, T, s->capacity_B,
                       s->capacity_T);
    size_t N = (size_t)B * T;
    int V = m->config.vocab_size, rc = CIRCD_OK;
    int align = su->lambda_align > 0 && su->strategy != ALIGN_NONE;
    int teacher = su->lambda_kd > 0 || align;
    select_rows(su, tokens, targets, B, T, sc->answer_rows, sc->align_rows);
    const float *teacher_logits = NULL;
    if (teacher && su->teacher_pipeline) {
        struct pipeline_output out = {sc->teacher_logits, align ? sc->z_t : NULL, align ? sc->mlp_t : NULL};
        int M = su->teacher_micro_batches < 1 ? 1 : su->teacher_micro_batches > B ? B : su->teacher_micro_batches;
        rc = pipeline_request_forward(su->teacher_pipeline, tokens, B, T, M, &out);
        teacher_logits = sc->teacher_logits;
    } else if (teacher) {
        model_hooks_clear(su->teacher);
        if (align) rc = register_layers(su->teacher, HOOK_CACHE, sc->z_t, sc->mlp_t);
        if (!rc) rc = model_forward(su->teacher, tokens, NULL, B, T);
        model_hooks_clear(su->teacher);
        teacher_logits = su->teacher->acts.logits;
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
    if (!rc) rc = model_forward(m, tokens, targets, B, T);
    if (rc) { model_hooks_clear(m); return rc; }
    struct distill_terms terms = {m->n_loss_rows ? m->loss : 0, 0, 0, 0};
    vec_zero(sc->dlogits, N * V);
    if (su->lambda_task > 0 && m->n_loss_rows) {
        for (size_t i = 0; i < N; i++) sc->dloss[i] = su->lambda_task / (float)m->n_loss_rows;
        crossentropy_backward(sc->dlogits, m->acts.logits, targets, sc->dloss, (int)N, V);
    }
    if (su->lambda_kd > 0)
        terms.kl = kd_kl(teacher_logits, m->acts.logits, sc->answer_rows, (int)N, V, su->temperature,
                         su->kl_direction, su->lambda_kd, sc->dlogits);
    if (align) {
        if (su->strategy == ALIGN_MAPPED) terms.align = align_mapped(s, m, B, T, &terms.align_pairs);
        else { terms.align = align_global(s, m, B, T); terms.align_pairs = 1; }
    }
    model_zero_grad(m);
    rc = model_backward(m, sc->dlogits);
    model_hooks_clear(m);
    if (rc) return rc;
    model_adamw_step_masked(m, opt, lr, su->mask);
    if (align && su->strategy == ALIGN_GLOBAL) global_projection_step(su->projection, lr, su->projection_weight_decay);
    s->last = terms;
    *loss = (float)(su->lambda_task * terms.ce + su->lambda_kd * terms.kl + su->lambda_align * terms.align);
    return CIRCD_OK;
}
