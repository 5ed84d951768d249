/* test_plan.c — the job graph and its placement (plan/plan.h): the smoke grid's stages and dependencies, the
 * placement invariants on 1 to 6 ranks and with random sets of finished stages (every stage placed once; its
 * dependencies done, in an earlier round, or earlier in its own group; groups of a round disjoint), the 2-rank
 * layout of the smoke grid (trainings side by side, the student base's chain beside the teacher's training),
 * pipelined distillation groups, and bad rank counts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan/plan.h"
#include "spec/spec.h"
#include "testing.h"
#include "util/error.h"
#include "util/rng.h"

/* Checks every placement invariant; returns the number of violations. */
static int check_placement(const struct plan *p, const unsigned char *done)
{
    int bad = 0;
    for (int i = 0; i < p->n_stages; i++) {
        const struct plan_stage *s = &p->stages[i];
        if (done && done[i]) { bad += s->wave != -1; continue; }
        if (s->wave < 0 || s->wave >= p->n_waves || s->n_ranks < 1 || s->first_rank < 0 ||
            s->first_rank + s->n_ranks > p->n_ranks) { bad++; continue; }
        for (int d = 0; d < s->n_deps; d++) {
            const struct plan_stage *t = &p->stages[s->deps[d]];
            if (t->done) continue;
            int before = t->wave < s->wave || (t->wave == s->wave && t->group == s->group && t->slot < s->slot);
            bad += !before;
        }
        for (int j = 0; j < p->n_stages; j++) { /* groups of one round: same ranks or disjoint ranks */
            const struct plan_stage *t = &p->stages[j];
            if (j == i || t->done || t->wave != s->wave) continue;
            int overlap = t->first_rank < s->first_rank + s->n_ranks && s->first_rank < t->first_rank + t->n_ranks;
            if (t->group == s->group) bad += t->first_rank != s->first_rank || t->slot == s->slot;
            else bad += overlap;
        }
        if (s->after_all)
            for (int j = 0; j < p->n_stages; j++)
                bad += j != i && !p->stages[j].done && p->stages[j].wave >= s->wave;
    }
    return bad;
}

static const struct plan_stage *stage(const struct plan *p, const char *name)
{
    int i = plan_find(p, name);
    CHECK(i >= 0);
    return i >= 0 ? &p->stages[i] : &p->stages[0];
}

int main(void)
{
    struct experiment_spec spec;
    struct spec_errors errs = {0};
    CHECK(spec_load(testing_source_path("experiments/smoke.yaml"), &spec, &errs) == 0);
    spec_errors_free(&errs);

    /* The graph: 1 data + 2 x 5 role stages (train, eval, atp, patch, circuit) + 10 methods x 2 seeds x 2 +
     * report; without exact patching samples there is no patch stage. */
    struct plan p;
    spec.atp.exact_patching_samples = 0;
    CHECK(plan_build(&p, &spec, 1) == 0);
    CHECK(p.n_stages == 50 && plan_find(&p, "patch-teacher") < 0);
    plan_free(&p);
    spec.atp.exact_patching_samples = 4;
    CHECK(plan_build(&p, &spec, 1) == 0);
    CHECK(p.n_stages == 52);
    const struct plan_stage *patch = stage(&p, "patch-student-base");
    CHECK(patch->kind == PLAN_PATCH && patch->n_deps == 1 && strcmp(p.stages[patch->deps[0]].name,
                                                                    "train-student-base") == 0);
    CHECK(check_placement(&p, NULL) == 0);
    const struct plan_stage *kd = stage(&p, "distill-kd-1"), *sft = stage(&p, "distill-sft-0");
    CHECK(kd->n_deps == 4 && sft->n_deps == 1);
    CHECK(strcmp(p.stages[sft->deps[0]].name, "train-student-base") == 0);
    CHECK(stage(&p, "report")->after_all == 1);
    CHECK(stage(&p, "atp-teacher")->max_ranks == 1 && stage(&p, "train-teacher")->max_ranks == 1);
    double total = 0;
    for (int i = 0; i < p.n_stages; i++) total += p.stages[i].cost;
    CHECK_NEAR(p.span_estimate, total, 1e-9 * total); /* one rank: the whole work, in one group per round */
    plan_free(&p);

    /* Two ranks: the trainings side by side, the student base's chain beside the teacher's training, less span. */
    CHECK(plan_build(&p, &spec, 2) == 0);
    CHECK(check_placement(&p, NULL) == 0);
    const struct plan_stage *tt = stage(&p, "train-teacher"), *ts = stage(&p, "train-student-base");
    CHECK(tt->wave == ts->wave && tt->first_rank != ts->first_rank && tt->n_ranks == 1 && ts->n_ranks == 1);
    const struct plan_stage *es = stage(&p, "eval-student-base");
    CHECK(es->wave == ts->wave && es->group == ts->group && es->slot > ts->slot);
    CHECK(stage(&p, "atp-teacher")->wave > tt->wave);
    CHECK(p.span_estimate < 0.6 * total);
    CHECK(stage(&p, "report")->wave == p.n_waves - 1);
    plan_free(&p);

    /* Invariants on 1-6 ranks, and with random finished sets closed under dependencies. */
    struct rng r;
    rng_seed(&r, 7);
    for (int ranks = 1; ranks <= 6; ranks++) {
        CHECK(plan_build(&p, &spec, ranks) == 0);
        int placed_bad = check_placement(&p, NULL);
        CHECK(placed_bad == 0);
        unsigned char done[80] = {0};
        for (int trial = 0; trial < 20; trial++) {
            for (int i = 0; i < p.n_stages; i++) {
                int deps_done = 1;
                for (int d = 0; d < p.stages[i].n_deps; d++) deps_done &= done[p.stages[i].deps[d]];
                done[i] = deps_done && !p.stages[i].after_all && rng_uniform(&r) < 0.5;
            }
            plan_place(&p, done);
            int bad = check_placement(&p, done);
            if (bad) printf("ranks %d trial %d: %d violations\n", ranks, trial, bad);
            CHECK(bad == 0);
        }
        memset(done, 1, sizeof done);
        plan_place(&p, done);
        CHECK(p.n_waves == 0);
        plan_free(&p);
    }

    /* A teacher pipelined over 2 stages: KD / CD runs get 2-rank groups, SFT and CoT one rank; on one rank the
     * pipeline folds to 1. */
    spec.parallel.teacher_pipeline_stages = 2;
    CHECK(plan_build(&p, &spec, 3) == 0);
    CHECK(check_placement(&p, NULL) == 0);
    CHECK(stage(&p, "distill-kd-0")->n_ranks == 2 && stage(&p, "distill-cd_b_subnet-1")->n_ranks == 2);
    CHECK(stage(&p, "distill-cot-0")->max_ranks == 1 && stage(&p, "distill-sft-0")->max_ranks == 1);
    plan_free(&p);
    CHECK(plan_build(&p, &spec, 1) == 0);
    CHECK(stage(&p, "distill-kd-0")->n_ranks == 1 && check_placement(&p, NULL) == 0);
    plan_free(&p);

    /* Data parallel over 2 ranks: every run gets a 2-rank group, SFT and CoT too, and the text says so. */
    spec.parallel.teacher_pipeline_stages = 1;
    spec.parallel.data_parallel_ranks = 2;
    CHECK(plan_build(&p, &spec, 3) == 0);
    CHECK(check_placement(&p, NULL) == 0);
    CHECK(stage(&p, "distill-kd-0")->n_ranks == 2 && stage(&p, "distill-cot-1")->n_ranks == 2 &&
          stage(&p, "distill-sft-0")->max_ranks == 2);
    char *dp_text = NULL;
    size_t dp_len = 0;
    FILE *dp_mem = open_memstream(&dp_text, &dp_len);
    plan_print_text(&p, &spec, dp_mem);
    fclose(dp_mem);
    CHECK(dp_text && strstr(dp_text, "(data parallel over 2 ranks)") && !strstr(dp_text, "pipelined"));
    free(dp_text);
    plan_free(&p);
    spec.parallel.data_parallel_ranks = 1;
    spec.parallel.teacher_pipeline_stages = 2;

    /* Text and DOT name every stage. */
    CHECK(plan_build(&p, &spec, 2) == 0);
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    plan_print_text(&p, &spec, mem);
    plan_print_dot(&p, &spec, mem);
    fclose(mem);
    int named = 0;
    for (int i = 0; i < p.n_stages; i++) {
        char quoted[80];
        snprintf(quoted, sizeof quoted, "\"%s\" [label=", p.stages[i].name);
        named += strstr(text, quoted) != NULL;
    }
    CHECK(named == p.n_stages);
    CHECK(strstr(text, "\"atp-teacher\" -> \"circuit-teacher\";") != NULL);
    free(text);
    plan_free(&p);

    /* Bad rank counts. */
    CHECK(plan_build(&p, &spec, 0) == CIRCD_EINPUT && strstr(err_msg(), "ranks") != NULL);
    spec_free(&spec);
    return testing_finish();
}
