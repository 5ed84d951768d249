/* plan.c — the job graph of an experiment spec: its stages, their dependencies, cost estimates and how many ranks
 * each can use (plan.h). Placement is in plan_place.c, printing in plan_print.c. */
#include "plan/plan.h"

#include <stdlib.h>
#include <string.h>

#include "util/error.h"

#define TYPICAL_TOKENS 32 /* tokens per sequence the estimates assume */
#define TYPICAL_VOCAB 64  /* vocabulary of the built-in tokenizers, roughly */

const char *plan_kind_name(enum plan_kind kind)
{
    /* The spec's `devices:` keys: spec_stage_kind_names holds them in this enum's order. */
    return kind < PLAN_KIND_COUNT ? spec_stage_kind_names[kind] : "?";
}

static const char *role_label(int role) { return role == PLAN_ROLE_TEACHER ? "teacher" : "student-base"; }

/* Forward GFLOP per token of a model: 2 flops per weight of every matrix product, plus attention over a typical
 * context. */
static double forward_gflop_per_token(const struct spec_model *m)
{
    struct spec_arch a;
    int vocab = TYPICAL_VOCAB;
    if (m->from_checkpoint) {
        const struct llama_config *c = &m->config;
        a = (struct spec_arch){c->d_model, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim, c->d_ff,
                               c->max_seq, 0, 0, 0};
        vocab = c->vocab_size;
    } else {
        a = m->arch;
    }
    if (!a.head_dim && a.n_heads) a.head_dim = a.d_model / a.n_heads;
    double weights = (double)spec_arch_parameters(&a) + (double)a.d_model * vocab;
    double attention = 2.0 * a.n_layers * (double)a.n_heads * a.head_dim * TYPICAL_TOKENS;
    return 2.0 * (weights + attention) * 1e-9;
}

static int method_uses_teacher_forward(const struct spec_method_run *r)
{
    int cd = r->method == SPEC_METHOD_CD_A || r->method == SPEC_METHOD_CD_B;
    return r->method != SPEC_METHOD_COT && (r->lambda_kd > 0 || (cd && r->lambda_align > 0));
}

static int method_needs_teacher(const struct spec_method_run *r)
{
    return r->method == SPEC_METHOD_COT || method_uses_teacher_forward(r) || r->subnetwork;
}


struct builder {
    struct plan *p;
};

static struct plan_stage *add(struct builder *b, enum plan_kind kind, const char *name)
{
    struct plan_stage *s = &b->p->stages[b->p->n_stages++];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->kind = kind;
    s->max_ranks = 1;
    s->wave = s->group = s->first_rank = -1;
    return s;
}

static void depend(struct plan *p, struct plan_stage *s, const char *on)
{
    int i = plan_find(p, on);
    if (i >= 0 && s->n_deps < PLAN_MAX_DEPS) s->deps[s->n_deps++] = i;
}

int plan_find(const struct plan *p, const char *name)
{
    for (int i = 0; i < p->n_stages; i++)
        if (strcmp(p->stages[i].name, name) == 0) return i;
    return -1;
}

/* The fixed stages of one role: train, eval, atp, circuit. */
static void add_role(struct builder *b, const struct experiment_spec *spec, int role)
{
    struct plan *p = b->p;
    const struct spec_model *m = role == PLAN_ROLE_TEACHER ? &spec->teacher : &spec->student;
    const struct spec_train *t = role == PLAN_ROLE_TEACHER ? &spec->training.teacher : &spec->training.student_base;
    double fwd = forward_gflop_per_token(m);
    char name[PLAN_NAME_MAX], train[PLAN_NAME_MAX], atp[PLAN_NAME_MAX];
    int ranks = p->n_ranks;

    snprintf(train, sizeof train, "train-%s", role_label(role));
    struct plan_stage *s = add(b, PLAN_TRAIN, train);
    s->role = role;
    s->cost = m->from_checkpoint ? 0 : 3.0 * fwd * t->steps * t->batch * TYPICAL_TOKENS;
    depend(p, s, "data");

    snprintf(name, sizeof name, "eval-%s", role_label(role));
    s = add(b, PLAN_EVAL, name);
    s->role = role;
    s->cost = fwd * (spec->data.id_test_size + spec->data.ood_test_size) * TYPICAL_TOKENS * spec->eval.max_new_tokens;
    s->max_ranks = ranks;
    depend(p, s, train);

    snprintf(atp, sizeof atp, "atp-%s", role_label(role));
    s = add(b, PLAN_ATP, atp);
    s->role = role;
    const struct spec_atp *a = &spec->atp;
    double passes = 3.0 * (a->ig_steps > 0 ? a->ig_steps : 1) * (a->level == SPEC_ATP_EDGE ? 2 : 1);
    const struct spec_arch *arch = &m->arch;
    int nodes = m->from_checkpoint ? m->config.n_layers * (m->config.n_heads + 1) : arch->n_layers * (arch->n_heads + 1);
    s->cost = fwd * TYPICAL_TOKENS * spec->data.atp_size * passes;
    s->max_ranks = spec->parallel.atp_shards > 0 ? spec->parallel.atp_shards : ranks;
    depend(p, s, train);

    if (a->exact_patching_samples > 0) {
        snprintf(name, sizeof name, "patch-%s", role_label(role));
        s = add(b, PLAN_PATCH, name);
        s->role = role;
        double star = (a->qk_fix ? 2.0 : 0) + (a->grad_drop ? 2.0 * (m->from_checkpoint ? m->config.n_layers
                                                                                          : arch->n_layers) : 0);
        s->cost = fwd * TYPICAL_TOKENS * a->exact_patching_samples * (2.0 * nodes + 3.0 + star);
        s->max_ranks = spec->parallel.atp_shards > 0 ? spec->parallel.atp_shards : ranks;
        depend(p, s, train);
    }

    snprintf(name, sizeof name, "circuit-%s", role_label(role));
    s = add(b, PLAN_CIRCUIT, name);
    s->role = role;
    s->cost = fwd * TYPICAL_TOKENS * spec->data.atp_size * 2.0 * (spec->circuit.sizes.n + 2);
    s->max_ranks = ranks;
    depend(p, s, atp);
}

static void add_method_run(struct builder *b, const struct experiment_spec *spec, int run, int seed)
{
    struct plan *p = b->p;
    const struct spec_method_run *r = &spec->distill.methods[run];
    const struct spec_train *t = &spec->training.distill;
    double fwd_s = forward_gflop_per_token(&spec->student), fwd_t = forward_gflop_per_token(&spec->teacher);
    char distill[PLAN_NAME_MAX], name[PLAN_NAME_MAX];
    snprintf(distill, sizeof distill, "distill-%s-%d", r->name, seed);
    struct plan_stage *s = add(b, PLAN_DISTILL, distill);
    s->run = run;
    s->seed = seed;
    double tokens = (double)t->steps * t->batch * TYPICAL_TOKENS * (r->method == SPEC_METHOD_COT ? 2 : 1);
    s->cost = tokens * (3.0 * fwd_s + (method_uses_teacher_forward(r) ? fwd_t : 0));
    if (method_uses_teacher_forward(r)) {
        int stages = spec->parallel.teacher_pipeline_stages;
        s->max_ranks = stages < p->n_ranks ? stages : p->n_ranks;
    }
    int replicas = spec->parallel.data_parallel_ranks; /* any method: every batch split by rows over them */
    if (replicas > 1) s->max_ranks = replicas < p->n_ranks ? replicas : p->n_ranks;
    depend(p, s, "train-student-base");
    if (method_needs_teacher(r)) { /* it loads the teacher and reads both models' node scores */
        depend(p, s, "train-teacher");
        depend(p, s, "atp-teacher");
        depend(p, s, "atp-student-base");
    }

    snprintf(name, sizeof name, "eval-%s-%d", r->name, seed);
    s = add(b, PLAN_DISTILL_EVAL, name);
    s->run = run;
    s->seed = seed;
    s->cost = fwd_s * TYPICAL_TOKENS *
              ((spec->data.id_test_size + spec->data.ood_test_size) * spec->eval.max_new_tokens +
               spec->data.atp_size * 4.0 + spec->eval.robustness_interventions * 2.0) +
              fwd_t * TYPICAL_TOKENS * spec->eval.robustness_interventions;
    s->max_ranks = p->n_ranks;
    depend(p, s, distill);
    depend(p, s, "train-teacher");
    depend(p, s, "atp-teacher");
}

int plan_build(struct plan *p, const struct experiment_spec *spec, int n_ranks)
{
    memset(p, 0, sizeof *p);
    if (n_ranks < 1) return err_set(CIRCD_EINPUT, "plan: found %d ranks, expected at least 1", n_ranks);
    int cap = 2 + 10 + 2 * spec->distill.n_methods * spec->seeds.n;
    p->stages = xcalloc((size_t)cap, sizeof *p->stages);
    if (!p->stages) return CIRCD_ENOMEM;
    p->n_ranks = n_ranks;
    struct builder b = {p};

    struct plan_stage *s = add(&b, PLAN_DATA, "data");
    s->cost = 1e-3;
    add_role(&b, spec, PLAN_ROLE_TEACHER);
    add_role(&b, spec, PLAN_ROLE_STUDENT_BASE);
    for (int r = 0; r < spec->distill.n_methods; r++)
        for (int k = 0; k < spec->seeds.n; k++) add_method_run(&b, spec, r, spec->seeds.items[k]);
    s = add(&b, PLAN_REPORT, "report");
    s->cost = 1e-3;
    s->after_all = 1; /* it reads every evaluation */
    for (int i = 0; i < p->n_stages; i++) {
        s = &p->stages[i];
        s->device = spec_stage_device(spec, s->name, plan_kind_name(s->kind), &s->device_rule);
    }
    plan_place(p, NULL);
    return CIRCD_OK;
}

void plan_free(struct plan *p)
{
    free(p->stages);
    memset(p, 0, sizeof *p);
}
