/* stage_distill.c — the distillation grid: for every method run of the spec (distill.methods) and every seed, a
 * `distill-<run>-<seed>` stage that fine-tunes a copy of the student base with the run's objective (distill/method.h)
 * on the student-facing stream (or, for cot, on traces the teacher generates: distill/cot_source.h), saving the
 * model under <output>/models/<run>-<seed>, and an `eval-<run>-<seed>` stage: exact-match accuracy on the ID / OOD
 * sets, the NFS of the student's circuit, the mean CKA of the teacher circuit to its best student counterparts and
 * interventional robustness (distill/evaluate.h), as attributes of /runs/<run>/<seed>/metrics.
 *
 * Circuits. The teacher circuit = its top distill.circuit_size % nodes (heads and MLPs) by |AtP| (/atp/teacher/
 * nodes); the student's proto-circuit candidates = its top min(nodes, 2 n) by |AtP| (/atp/base/nodes). CD-A maps
 * the teacher circuit onto the candidates by CKA (one-to-one, on the AtP set's clean prompts) and aligns the pairs;
 * CD-B aligns the teacher circuit's concatenated state with a learned projection of the first n candidates'.
 * Subnetwork runs update only the student components they align (CD-A: the mapped ones; others: the first n
 * candidates).
 *
 * Pipelined teacher. A run whose step uses the teacher (KD, CD with alignment, their subnetwork variants) on a rank
 * group of S = min(group size, parallel.teacher_pipeline_stages) >= 2 ranks trains the student on group rank 0
 * only; the teacher's forward of every step runs pipelined over ranks 0..S-1 (sched/pipeline.h), ranks 1..S-1
 * serving forwards until rank 0's stop word (the end of training, an interruption or a failure: rank 0 decides,
 * the others return its status); ranks past S, if any, wait. Every rank then continues the stage's collective
 * code with rank 0's training curve. The setup before training (models, circuits, the map) runs on every rank as
 * with one rank. With S = 1 nothing changes.
 *
 * Data parallel. With parallel.data_parallel_ranks: R > 1 every run gets P = min(group size, R) ranks that train
 * together (distill/method.h): each takes its contiguous block of every batch's rows (the same batches, in the same
 * order, as one rank), the gradients are all-reduced over the student's backend (sched/collective.h: MPI on the
 * CPU, NCCL on GPUs) and every rank takes the same step. Every one of the P ranks runs the trainer: rank 0 writes
 * the checkpoints, the others resume from them read-only; a stop signal is agreed at every step's start, so all
 * stop after the same step. At the end the replicas' weights are checked to be identical, rank 0 saves the model,
 * and every rank of the group writes rank 0's curve. Ranks past P, if any, wait. Exclusive with the pipelined
 * teacher (the spec refuses both). */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/tokenizer_files.h"
#include "distill/cot_source.h"
#include "distill/evaluate.h"
#include "distill/method.h"
#include "distill/subnet.h"
#include "io/atomic_file.h"
#include "sched/collective.h"
#include "sched/pipeline.h"
#include "sched/reduce.h"
#include "stages/pair_set.h"
#include "stages/stage_source.h"
#include "stages/stages.h"
#include "train/trainer.h"
#include "util/error.h"

#define COT_POOL_MIN 512 /* teacher traces generated for cot runs: at least this many, else steps x batch */
#define TEACHER_MICRO_BATCHES_PER_STAGE 4 /* pipelined teacher: M = 4 S (GPipe bubble (S-1)/(5S-1): 11% at S = 2) */

/* The top-k nodes of /atp/<row>/nodes by |mean signed score| as graph upstream indices (ties to the lower node). */
static int top_nodes(struct experiment *x, const char *row, const struct circuit_graph *g, int k, int *out)
{
    int n = g->n_layers * (g->n_heads + 1);
    float *rows = xmalloc((size_t)n * 2 * sizeof *rows);
    if (!rows) return CIRCD_ENOMEM;
    char path[128];
    int ndim;
    uint64_t dims[4];
    snprintf(path, sizeof path, "/atp/%s/nodes", row);
    int rc = results_read_f32(&x->results, path, rows, (size_t)n * 2, &ndim, dims);
    if (!rc && dims[0] != (uint64_t)n) rc = err_set(CIRCD_EINPUT, "%s: %llu nodes, the model has %d", path,
                                                     (unsigned long long)dims[0], n);
    for (int i = 0; i < k && !rc; i++) {
        int best = -1;
        for (int j = 0; j < n; j++) {
            int taken = 0;
            for (int q = 0; q < i && !taken; q++) taken = out[q] == graph_up_from_node(g, j);
            if (!taken && (best < 0 || fabsf(rows[2 * j]) > fabsf(rows[2 * best]))) best = j;
        }
        out[i] = graph_up_from_node(g, best);
    }
    free(rows);
    return rc;
}

static int teacher_circuit_size(const struct experiment *x, const struct circuit_graph *g)
{
    int n = g->n_layers * (g->n_heads + 1), k = (int)ceil(x->spec->distill.circuit_size / 100.0 * n);
    return k < 1 ? 1 : k > n ? n : k;
}

static void run_label(const struct experiment *x, int run, int seed, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s-%d", x->spec->distill.methods[run].name, seed);
}

/* Strategy A's map on the first batch of the AtP set (clean prompts, every position before each row's length). */
static int build_map(struct experiment *x, struct llama_model *teacher, struct llama_model *student,
                     const struct circuit_graph *tg, const struct circuit_graph *sg, const int *tc, int n_t,
                     const int *cand, int n_c, struct component_map *map)
{
    struct pair_set set;
    int rc = pair_set_build(&set, &x->tok, &x->format, &x->splits.atp, (size_t)x->spec->atp.batch,
                            experiment_atp_kind(x), x->spec->atp.batch, student->config.max_seq);
    if (rc) return rc;
    const struct pair_batch *pb = &set.batches[0];
    struct llama_model *models[2] = {teacher, student};
    float **caches[2][2] = {{NULL, NULL}, {NULL, NULL}};
    unsigned char *rows = xmalloc((size_t)pb->B * pb->T);
    if (!rows) rc = CIRCD_ENOMEM;
    for (int b = 0; b < pb->B && !rc; b++)
        for (int t = 0; t < pb->T; t++) rows[b * pb->T + t] = t < pb->pairs[b].length;
    for (int w = 0; w < 2 && !rc; w++) {
        const struct llama_config *c = &models[w]->config;
        model_hooks_clear(models[w]);
        for (int k = 0; k < 2 && !rc; k++) {
            caches[w][k] = xcalloc((size_t)c->n_layers, sizeof(float *));
            if (!caches[w][k]) { rc = CIRCD_ENOMEM; break; }
            for (int l = 0; l < c->n_layers && !rc; l++) {
                size_t n = (size_t)pb->B * pb->T * (k ? c->d_model : c->n_heads * c->head_dim);
                if (!(caches[w][k][l] = xmalloc(n * sizeof(float)))) { rc = CIRCD_ENOMEM; break; }
                struct hook_request r = {{k ? HOOK_MLP_OUT : HOOK_ATTN_Z, l}, HOOK_CACHE, caches[w][k][l], -1, -1};
                rc = model_hook_add(models[w], &r);
            }
        }
        if (!rc) rc = model_forward(models[w], pb->clean, NULL, pb->B, pb->T);
        model_hooks_clear(models[w]);
    }
    if (!rc) {
        struct component_source ts = {teacher, tg, caches[0][0], caches[0][1]};
        struct component_source ss = {student, sg, caches[1][0], caches[1][1]};
        rc = component_map_build(&ts, tc, n_t, &ss, cand, n_c, pb->B, pb->T, rows, x->spec->distill.cka_unbiased,
                                 map, NULL);
    }
    for (int w = 0; w < 2; w++)
        for (int k = 0; k < 2; k++) {
            if (!caches[w][k]) continue;
            for (int l = 0; l < models[w]->config.n_layers; l++) free(caches[w][k][l]);
            free(caches[w][k]);
        }
    free(rows);
    pair_set_free(&set);
    return rc;
}

static int write_map(struct experiment *x, const char *label, const struct component_map *map,
                     const struct circuit_graph *tg, const struct circuit_graph *sg)
{
    float rows[3 * 256];
    int n = map->n < 256 ? map->n : 256;
    char names[256 * 40] = "", a[32], b[32];
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        rows[3 * i] = (float)map->teacher[i];
        rows[3 * i + 1] = (float)map->student[i];
        rows[3 * i + 2] = (float)map->similarity[i];
        len += (size_t)snprintf(names + len, sizeof names - len, "%s -> %s (CKA %.3f)\n",
                                graph_up_name(tg, map->teacher[i], a, sizeof a),
                                map->student[i] >= 0 ? graph_up_name(sg, map->student[i], b, sizeof b) : "-",
                                map->similarity[i]);
    }
    char path[256];
    snprintf(path, sizeof path, "/distill/%s/map", label);
    uint64_t dims[2] = {(uint64_t)n, 3};
    int rc = results_write_f32(&x->results, path, 2, dims, rows);
    if (!rc) rc = results_set_attr_str(&x->results, path, "pairs", names);
    if (!rc) rc = results_set_attr_str(&x->results, path, "columns", "teacher node, student node, CKA (graph indices)");
    if (!rc && x->rank == 0) fprintf(stderr, "[distill-%s] strategy A map:\n%s", label, names);
    return rc;
}

/* CD-B's projection (P, its AdamW moments and step) beside the model checkpoint: written atomically, read on resume
 * (absent: a fresh start). */
static int projection_extra(void *ctx, const char *path, int save)
{
    struct distill_step *s = ctx;
    struct global_projection *p = s->setup.projection;
    if (!p) return CIRCD_OK;
    size_t n = (size_t)p->d_student * p->d_teacher, done = 0;
    float *bufs[3] = {p->p, p->m, p->v};
    if (save) {
        struct atomic_file af;
        int rc = atomic_file_open(&af, path);
        if (rc) return rc;
        for (int i = 0; i < 3; i++) done += fwrite(bufs[i], sizeof(float), n, af.fp);
        done += fwrite(&p->step, sizeof p->step, 1, af.fp);
        if (done != 3 * n + 1) { atomic_file_abort(&af); return err_set(CIRCD_EIO, "%s: cannot write", path); }
        return atomic_file_commit(&af);
    }
    FILE *f = fopen(path, "rb");
    if (!f) return CIRCD_OK;
    for (int i = 0; i < 3; i++) done += fread(bufs[i], sizeof(float), n, f);
    done += fread(&p->step, sizeof p->step, 1, f);
    int extra = fgetc(f) != EOF;
    fclose(f);
    if (done != 3 * n + 1 || extra)
        return err_set(CIRCD_EINPUT, "%s: projection state of another shape (expected %zu floats x 3 + step)", path, n);
    return CIRCD_OK;
}

static enum lr_shape distill_lr_shape(enum spec_schedule s)
{
    return s == SPEC_SCHEDULE_CONSTANT ? LR_CONSTANT
         : s == SPEC_SCHEDULE_CONSTANT_THEN_DECAY ? LR_CONSTANT_THEN_DECAY : LR_WARMUP_COSINE;
}

/* Everything one run holds while it trains. */
struct distill_run {
    struct llama_model student, teacher;
    int have_teacher;
    struct circuit_graph tg, sg;
    int teacher_ups[256], candidates[256], n_t, n_c;
    struct component_map map;
    struct global_projection projection;
    unsigned char *mask;
    struct cot_pool pool;
    struct distill_step step;
    MPI_Comm pipeline_comm;    /* ranks 0..S-1 of the group when the teacher runs pipelined, else MPI_COMM_NULL */
    struct pipeline pipeline;
    int pipelined;             /* this rank is a stage of an initialised pipeline */
    MPI_Comm data_comm;        /* ranks 0..P-1 of the group when data parallel, else MPI_COMM_NULL */
    struct collective data;    /* the gradient all-reduce over data_comm */
};

static void distill_run_free(struct distill_run *d)
{
    distill_step_free(&d->step);
    cot_pool_free(&d->pool);
    free(d->mask);
    global_projection_free(&d->projection);
    component_map_free(&d->map);
    graph_free(&d->tg);
    graph_free(&d->sg);
    if (d->pipelined) pipeline_free(&d->pipeline);
    if (d->pipeline_comm != MPI_COMM_NULL) MPI_Comm_free(&d->pipeline_comm);
    collective_close(&d->data);
    if (d->data_comm != MPI_COMM_NULL) MPI_Comm_free(&d->data_comm);
    if (d->have_teacher) model_free(&d->teacher);
    model_free(&d->student);
}

/* Ranks the teacher's forward is pipelined over: min(group size, parallel.teacher_pipeline_stages) when the step
 * runs the teacher, else 1 — from the spec and the group alone, so every rank computes the same. */
static int teacher_stages(const struct experiment *x, int step_uses_teacher)
{
    int size, stages = x->spec->parallel.teacher_pipeline_stages;
    MPI_Comm_size(x->comm, &size);
    if (!step_uses_teacher || stages < 2 || size < 2) return 1;
    return stages < size ? stages : size;
}

/* Ranks that train the student data-parallel: min(group size, parallel.data_parallel_ranks), from the spec and the
 * group alone. */
static int data_parallel_ranks(const struct experiment *x)
{
    int size, ranks = x->spec->parallel.data_parallel_ranks;
    MPI_Comm_size(x->comm, &size);
    return ranks < size ? ranks : size;
}

/* Collective over the group: data_comm over its first `ranks` ranks and the gradient collective on it, on the
 * student's backend; then, over data_comm, the checkpoint must look the same from every rank (a directory that
 * is not shared would otherwise let rank 0 resume and the others start afresh). Agreed with the setup's rc. */
static int open_data_parallel(struct experiment *x, struct distill_run *d, int ranks, const char *checkpoint, int rc,
                              const char *name)
{
    MPI_Comm_split(x->comm, x->rank < ranks ? 0 : MPI_UNDEFINED, x->rank, &d->data_comm);
    rc = reduce_agree(rc, x->comm);
    if (!rc && d->data_comm != MPI_COMM_NULL) {
        rc = collective_open(&d->data, d->data_comm, d->student.backend);
        long long seen = access(checkpoint, F_OK) == 0;
        if (!rc) rc = reduce_check_same(&seen, 1, "whether the checkpoint exists (is the output directory shared?)",
                                        d->data_comm);
    }
    rc = reduce_agree(rc, x->comm);
    if (!rc && x->rank == 0)
        fprintf(stderr, "[%s] data parallel over %d ranks (%s all-reduce of %zu gradients per step)\n", name, ranks,
                d->data.nccl ? "NCCL" : "MPI", d->student.n_params);
    return rc;
}

/* Collective over data_comm after training: the replicas must hold the very same weights (they took the same
 * steps from the same all-reduced gradients); a difference is reported, never hidden. */
static int check_replicas(struct distill_run *d)
{
    int rc = reduce_agree(model_sync_host(&d->student), d->data_comm); /* a GPU's weights, to the host */
    if (rc) return rc;
    uint64_t h = 1469598103934665603ULL; /* FNV-1a over the parameters' bytes */
    const unsigned char *p = (const unsigned char *)d->student.params;
    for (size_t i = 0; i < d->student.n_params * sizeof(float); i++) h = (h ^ p[i]) * 1099511628211ULL;
    long long v[2] = {(long long)(h >> 32), (long long)(h & 0xffffffffu)};
    return reduce_check_same(v, 2, "data parallel: the replicas' student weights (checksum)", d->data_comm);
}

/* Collective over the group: the pipeline over its first `stages` ranks (the others get none), agreed on every
 * rank together with the setup's rc. */
static int open_teacher_pipeline(struct experiment *x, struct distill_run *d, int stages, int M, int rc,
                                 const char *name)
{
    MPI_Comm_split(x->comm, x->rank < stages ? 0 : MPI_UNDEFINED, x->rank, &d->pipeline_comm);
    rc = reduce_agree(rc, x->comm);
    if (!rc && d->pipeline_comm != MPI_COMM_NULL) {
        rc = pipeline_init(&d->pipeline, &d->teacher, d->pipeline_comm, 0);
        d->pipelined = !rc;
    }
    rc = reduce_agree(rc, x->comm);
    if (!rc && x->rank == 0)
        fprintf(stderr, "[%s] teacher forward pipelined over %d ranks (%d layers, %d micro-batches per batch)\n", name,
                stages, d->teacher.config.n_layers, M);
    return rc;
}

/* Collective over the pipeline's ranks: rank 0 prints the measured bubble (idle / wall) of the stages, least and
 * most, against GPipe's ideal (S - 1) / (M + S - 1). */
static void report_teacher_pipeline(const struct distill_run *d, int M, const char *name)
{
    const struct pipeline *p = &d->pipeline;
    double bubble = p->stats.wall_s > 0 ? 1.0 - p->stats.compute_s / p->stats.wall_s : 0.0;
    double range[2] = {bubble, -bubble}, all[2];
    MPI_Reduce(range, all, 2, MPI_DOUBLE, MPI_MAX, 0, p->comm);
    if (p->rank != 0) return;
    fprintf(stderr, "[%s] teacher pipeline: %lld forwards, bubble %.1f%% to %.1f%% of the stages' time (rank 0: "
            "%.1f%%; GPipe ideal %.1f%% at M = %d)\n", name, (long long)p->stats.forwards, -100.0 * all[1],
            100.0 * all[0], 100.0 * bubble, 100.0 * (p->size - 1) / (M + p->size - 1), M);
}

int stage_distill(struct experiment *x, int run, int seed)
{
    const struct spec_method_run *mr = &x->spec->distill.methods[run];
    const struct spec_distill *sd = &x->spec->distill;
    const struct spec_train *t = &x->spec->training.distill;
    char label[64], dir[4200], path[4300], name[80];
    run_label(x, run, seed, label, sizeof label);
    snprintf(name, sizeof name, "distill-%s", label);
    struct distill_run *d = xcalloc(1, sizeof *d);
    if (!d) return CIRCD_ENOMEM;
    d->pipeline_comm = MPI_COMM_NULL;
    d->data_comm = MPI_COMM_NULL;
    d->data.comm = MPI_COMM_NULL;
    role_model_dir(x, ROLE_STUDENT_BASE, dir, sizeof dir);
    int rc = model_load_hf(&d->student, dir);
    if (!rc) rc = experiment_place_model(x, &d->student);
    int cot = mr->method == SPEC_METHOD_COT, cd = mr->method == SPEC_METHOD_CD_A || mr->method == SPEC_METHOD_CD_B;
    int need_teacher = cot || mr->lambda_kd > 0 || (cd && mr->lambda_align > 0) || mr->subnetwork;
    if (!rc && need_teacher) {
        role_model_dir(x, ROLE_TEACHER, dir, sizeof dir);
        if (!(rc = model_load_hf(&d->teacher, dir))) d->have_teacher = 1;
        if (!rc) rc = experiment_place_model(x, &d->teacher);
    }
    if (!rc) rc = graph_init(&d->sg, &d->student.config);
    if (!rc && d->have_teacher) rc = graph_init(&d->tg, &d->teacher.config);
    if (!rc && d->have_teacher) {
        d->n_t = teacher_circuit_size(x, &d->tg);
        int ns = d->sg.n_layers * (d->sg.n_heads + 1);
        d->n_c = 2 * d->n_t < ns ? 2 * d->n_t : ns;
        if (d->n_t > 256 || d->n_c > 256) rc = err_set(CIRCD_EINPUT, "distill.circuit_size: %d components, at most 256", d->n_t);
        if (!rc) rc = top_nodes(x, "teacher", &d->tg, d->n_t, d->teacher_ups);
        if (!rc) rc = top_nodes(x, "base", &d->sg, d->n_c, d->candidates);
    }
    enum align_strategy strategy = !cd || mr->lambda_align <= 0 ? ALIGN_NONE
                                 : mr->method == SPEC_METHOD_CD_A ? ALIGN_MAPPED : ALIGN_GLOBAL;
    int n_student = d->n_t < d->n_c ? d->n_t : d->n_c;
    if (!rc && (strategy == ALIGN_MAPPED || (mr->subnetwork && mr->method == SPEC_METHOD_CD_A))) {
        rc = build_map(x, &d->teacher, &d->student, &d->tg, &d->sg, d->teacher_ups, d->n_t, d->candidates, d->n_c,
                       &d->map);
        if (!rc) rc = write_map(x, label, &d->map, &d->tg, &d->sg);
    }
    if (!rc && strategy == ALIGN_GLOBAL) {
        int dt = 0, ds = 0;
        for (int i = 0; i < d->n_t; i++) dt += component_dim(&d->teacher, &d->tg, d->teacher_ups[i]);
        for (int i = 0; i < n_student; i++) ds += component_dim(&d->student, &d->sg, d->candidates[i]);
        rc = global_projection_init(&d->projection, ds, dt, (uint64_t)seed * 7919u + 17u);
    }
    if (!rc && mr->subnetwork) {
        int ups[256], n = 0;
        if (mr->method == SPEC_METHOD_CD_A)
            for (int i = 0; i < d->map.n; i++) { if (d->map.student[i] >= 0) ups[n++] = d->map.student[i]; }
        else
            for (int i = 0; i < n_student; i++) ups[n++] = d->candidates[i];
        if (!(d->mask = xcalloc(d->student.n_params, 1))) rc = CIRCD_ENOMEM;
        if (!rc) rc = subnet_mask_build(&d->student, &d->sg, ups, n, d->mask);
        if (!rc && x->rank == 0)
            fprintf(stderr, "[%s] subnetwork: %zu of %zu parameters (%d components)\n", name,
                    subnet_mask_count(d->mask, d->student.n_params), d->student.n_params, n);
    }
    const struct arith_format *format = cot ? &x->cot_format : &x->format;
    struct stage_source source = {&x->student_stream, &x->tok, &x->format, &x->cot_format, 0, 0};
    if (!rc && cot) {
        int n = t->steps * t->batch > COT_POOL_MIN ? COT_POOL_MIN : (int)(t->steps * t->batch);
        if (n < t->batch) n = t->batch;
        rc = cot_pool_build(&d->pool, &d->teacher, &x->tok, &x->cot_format, &x->student_stream,
                            (uint64_t)seed * 104729u + x->spec->data.seed, n, x->spec->eval.batch,
                            d->student.config.max_seq / 2);
        if (!rc && x->rank == 0)
            fprintf(stderr, "[%s] %d teacher traces, %.1f%% with the right answer\n", name, d->pool.n,
                    100 * d->pool.teacher_correct);
    }
    struct distill_setup setup = {
        .lambda_task = (float)mr->lambda_task, .lambda_kd = (float)mr->lambda_kd,
        .lambda_align = strategy == ALIGN_NONE ? 0.0f : (float)mr->lambda_align,
        .temperature = (float)sd->temperature,
        .kl_direction = sd->kl_direction == SPEC_KL_REVERSE ? KL_REVERSE : KL_FORWARD,
        .cka_unbiased = sd->cka_unbiased,
        .rows = sd->align_rows == SPEC_ALIGN_ALL ? ALIGN_ALL : sd->align_rows == SPEC_ALIGN_LAST_PROMPT
                                                                ? ALIGN_LAST_PROMPT : ALIGN_ANSWER,
        .strategy = strategy,
        .teacher = d->have_teacher && (mr->lambda_kd > 0 || strategy != ALIGN_NONE) ? &d->teacher : NULL,
        .teacher_graph = &d->tg, .student_graph = &d->sg, .map = &d->map,
        .teacher_components = d->teacher_ups, .n_teacher = d->n_t,
        .student_components = d->candidates, .n_student = n_student,
        .projection = strategy == ALIGN_GLOBAL ? &d->projection : NULL,
        .projection_weight_decay = (float)t->weight_decay, .mask = d->mask, .pad_id = x->tok.pad_id,
    };
    if (cot) setup.lambda_kd = 0, setup.teacher = NULL; /* cot learns from the teacher's traces, not its logits */
    int stages = teacher_stages(x, !cot && (mr->lambda_kd > 0 || strategy != ALIGN_NONE));
    int micro = TEACHER_MICRO_BATCHES_PER_STAGE * stages;
    if (micro > t->batch) micro = t->batch;
    if (stages > 1) {
        rc = open_teacher_pipeline(x, d, stages, micro, rc, name);
        setup.teacher_pipeline = d->pipelined ? &d->pipeline : NULL;
        setup.teacher_micro_batches = micro;
    }
    snprintf(path, sizeof path, "%s/checkpoints/%s.ckpt", x->output, label);
    int replicas = data_parallel_ranks(x); /* the spec makes it 1 whenever stages > 1 */
    if (replicas > 1) { /* the student is on its device by now: the collective works in that memory */
        rc = open_data_parallel(x, d, replicas, path, rc, name);
        setup.data_parallel = d->data_comm != MPI_COMM_NULL ? &d->data : NULL;
    }
    int group_size;
    MPI_Comm_size(x->comm, &group_size);
    int shared = group_size > 1; /* rank 0 has the curve and saves; every rank of the group writes the results */
    int trains = stages > 1 ? x->rank == 0 : x->rank < replicas;
    if (!rc && trains) rc = distill_step_init(&d->step, &setup, &d->student, t->batch, d->student.config.max_seq);
    struct train_config tc = {
        .name = name, .steps = t->steps, .batch = t->batch, .max_seq = d->student.config.max_seq,
        .schedule = {distill_lr_shape(t->schedule), (float)t->lr, t->warmup_steps, t->steps, (float)t->min_lr_ratio,
                     (float)t->decay_fraction},
        .opt = {(float)t->beta1, (float)t->beta2, 1e-8f, (float)t->weight_decay, (float)t->grad_clip},
        .data_seed = ((uint64_t)seed + (uint64_t)t->seed_offset) * 0x9e3779b97f4a7c15ULL + x->spec->data.seed,
        .checkpoint_interval = t->checkpoint_interval, .eval_interval = 0,
        .log_interval = x->rank == 0 ? (t->steps >= 20 ? t->steps / 20 : 1) : 0,
        .checkpoint_path = x->rank == 0 || replicas > 1 ? path : NULL, .checkpoint_read_only = x->rank != 0,
        .step = distill_train_step, .step_ctx = &d->step, .extra = strategy == ALIGN_GLOBAL ? projection_extra : NULL,
        .stop = distill_stop_requested,
    };
    struct train_result res;
    memset(&res, 0, sizeof res);
    if (shared) rc = reduce_agree(rc, x->comm);
    if (!rc && stages > 1 && x->rank != 0) {
        if (d->pipelined) rc = pipeline_serve(&d->pipeline); /* ranks past the pipeline go straight on */
    } else if (!rc && trains) { /* ranks past the data-parallel ones go straight on */
        rc = train_run(&d->student, &tc, cot ? cot_pool_batch : stage_source_batch,
                       cot ? (void *)&d->pool : (void *)&source, NULL, NULL, &res);
        if (d->pipelined) pipeline_request_stop(&d->pipeline, rc);
        rc = distill_data_parallel_finish(&d->step, rc); /* agreed over the replicas */
        if (!rc && setup.data_parallel) rc = check_replicas(d);
    }
    if (d->pipelined) report_teacher_pipeline(d, micro, name);
    snprintf(dir, sizeof dir, "%s/models/%s", x->output, label);
    if (!rc && x->rank == 0) rc = model_save_hf(&d->student, dir);
    snprintf(path, sizeof path, "%s/circd_format.json", dir);
    if (!rc && x->rank == 0) rc = arith_format_save(format, path);
    snprintf(path, sizeof path, "%s/circd_tokenizer.json", dir);
    if (!rc && x->rank == 0) rc = tokenizer_arith_save(&x->tok, path);
    if (shared) rc = reduce_agree(rc, x->comm); /* rank 0 alone saved (and, pipelined, trained) */
    if (!rc) {
        float rows[3 * 1024];
        int n = res.curve.n < 1024 ? res.curve.n : 1024;
        for (int i = 0; i < n; i++) {
            rows[3 * i] = (float)res.curve.step[i];
            rows[3 * i + 1] = res.curve.loss[i];
            rows[3 * i + 2] = res.curve.lr[i];
        }
        if (shared) { /* the curve exists on rank 0 only; every rank writes the same data */
            MPI_Bcast(&n, 1, MPI_INT, 0, x->comm);
            MPI_Bcast(rows, 3 * n, MPI_FLOAT, 0, x->comm);
        }
        snprintf(path, sizeof path, "/runs/%s/%d/train_loss", mr->name, seed);
        uint64_t dims[2] = {(uint64_t)n, 3};
        if (n) rc = results_write_f32(&x->results, path, 2, dims, rows);
        if (!rc && x->rank == 0)
            fprintf(stderr, "[%s] %lld steps in %.0fs; last step CE %.4f KL %.4f align %.4f (%d pairs); saved to %s\n",
                    name, (long long)res.steps_done, res.seconds, d->step.last.ce, d->step.last.kl,
                    d->step.last.align, d->step.last.align_pairs, dir);
    }
    train_result_free(&res);
    distill_run_free(d);
    free(d);
    return rc;
}

int stage_distill_eval(struct experiment *x, int run, int seed)
{
    const struct spec_method_run *mr = &x->spec->distill.methods[run];
    char label[64], dir[4200], path[256], tag[80];
    run_label(x, run, seed, label, sizeof label);
    snprintf(tag, sizeof tag, "eval-%s", label);
    snprintf(dir, sizeof dir, "%s/models/%s", x->output, label);
    struct llama_model student, teacher;
    int rc = model_load_hf(&student, dir);
    if (rc) return rc;
    if ((rc = model_load_hf(&teacher, (role_model_dir(x, ROLE_TEACHER, dir, sizeof dir), dir)))) {
        model_free(&student);
        return rc;
    }
    if ((rc = experiment_place_model(x, &student)) || (rc = experiment_place_model(x, &teacher))) {
        model_free(&teacher);
        model_free(&student);
        return rc;
    }
    const struct arith_format *format = mr->method == SPEC_METHOD_COT ? &x->cot_format : &x->format;
    rc = eval_model_accuracy(x, &student, format, mr->name, seed, tag);
    struct circuit_graph tg;
    struct pair_set pairs;
    memset(&pairs, 0, sizeof pairs);
    int ups[256], n = 0;
    if (!rc) rc = graph_init(&tg, &teacher.config);
    else memset(&tg, 0, sizeof tg);
    if (!rc) n = teacher_circuit_size(x, &tg);
    if (!rc && n > 256) n = 256;
    if (!rc) rc = top_nodes(x, "teacher", &tg, n, ups);
    if (!rc) rc = pair_set_build(&pairs, &x->tok, &x->format, &x->splits.atp, 0, experiment_atp_kind(x),
                                 x->spec->atp.batch, student.config.max_seq);
    struct distill_eval ev;
    memset(&ev, 0, sizeof ev);
    if (!rc) rc = distill_evaluate(&teacher, &student, &pairs, ups, n, x->spec->circuit.nfs_size,
                                   x->spec->eval.robustness_interventions, &ev, NULL);
    snprintf(path, sizeof path, "/runs/%s/%d/metrics", mr->name, seed);
    const struct { const char *key; double v; } attrs[] = {
        {"nfs", ev.nfs}, {"mean_cka", ev.mean_cka}, {"robustness", ev.robustness},
        {"robustness_teacher_changed", ev.robustness_teacher_changed}, {"robustness_on_changed", ev.robustness_on_changed},
        {"n_mapped", ev.n_mapped},
    };
    for (size_t i = 0; i < sizeof attrs / sizeof attrs[0] && !rc; i++)
        rc = results_set_attr_f64(&x->results, path, attrs[i].key, attrs[i].v);
    if (!rc) rc = results_set_attr_str(&x->results, path, "model", dir);
    if (!rc && x->rank == 0)
        fprintf(stderr, "[%s] NFS %.3f, mean CKA %.3f (%d mapped), robustness %.3f (teacher changed %.2f)\n", tag,
                ev.nfs, ev.mean_cka, ev.n_mapped, ev.robustness, ev.robustness_teacher_changed);
    pair_set_free(&pairs);
    graph_free(&tg);
    model_free(&teacher);
    model_free(&student);
    return rc;
}
