/* plan_print.c — the plan as text (rounds, rank groups, stages with their device, costs and dependencies) and as
 * Graphviz DOT (`circd plan`). */
#include <stdio.h>
#include <string.h>

#include "plan/plan.h"

static void rank_range(char *buf, size_t cap, int first, int n)
{
    if (n <= 1) snprintf(buf, cap, "rank %d", first);
    else snprintf(buf, cap, "ranks %d-%d", first, first + n - 1);
}

/* How the stage uses several ranks, if it does. */
static void how(const struct plan_stage *s, const struct experiment_spec *spec, char *buf, size_t cap)
{
    int used = s->max_ranks < s->n_ranks ? s->max_ranks : s->n_ranks;
    buf[0] = '\0';
    if (s->n_ranks <= 1) return;
    if (used <= 1) snprintf(buf, cap, " (runs on the group's first rank's data; others follow)");
    else if (s->kind == PLAN_DISTILL && spec->parallel.data_parallel_ranks > 1)
        snprintf(buf, cap, " (data parallel over %d ranks)", used);
    else if (s->kind == PLAN_DISTILL) snprintf(buf, cap, " (teacher pipelined over %d ranks)", used);
    else snprintf(buf, cap, " (data sharded over %d ranks)", used);
}

static int reads_into_report(const struct plan_stage *s)
{
    return s->kind == PLAN_EVAL || s->kind == PLAN_DISTILL_EVAL || s->kind == PLAN_CIRCUIT || s->kind == PLAN_PATCH;
}

void plan_print_text(const struct plan *p, const struct experiment_spec *spec, FILE *out)
{
    double total = 0;
    int todo = 0;
    for (int i = 0; i < p->n_stages; i++)
        if (!p->stages[i].done) { total += p->stages[i].cost; todo++; }
    fprintf(out, "plan of experiment '%s' on %d rank%s: %d stages (%d to run) in %d round%s\n", spec->name,
            p->n_ranks, p->n_ranks == 1 ? "" : "s", p->n_stages, todo, p->n_waves, p->n_waves == 1 ? "" : "s");
    fprintf(out, "estimated work %.3g GFLOP; the rounds' busiest groups add up to %.3g GFLOP per rank (%.2fx the "
            "1-rank time)\n", total, p->span_estimate, total > 0 ? p->span_estimate / total : 1.0);
    for (int i = 0; i < p->n_stages; i++)
        if (p->stages[i].done) fprintf(out, "  done   %s\n", p->stages[i].name);
    for (int w = 0; w < p->n_waves; w++) {
        fprintf(out, "round %d\n", w);
        for (int g = 0; g < p->n_ranks; g++)
            for (int slot = 0, i = 0; i < p->n_stages; i++) {
                const struct plan_stage *s = &p->stages[i];
                if (s->wave != w || s->group != g || s->slot != slot) continue;
                slot++;
                i = -1; /* the next slot may come earlier in the list */
                char ranks[32], extra[96];
                rank_range(ranks, sizeof ranks, s->first_rank, s->n_ranks);
                how(s, spec, extra, sizeof extra);
                fprintf(out, "  %-11s %-28s %-4s %10.3g GFLOP%s", ranks, s->name, spec_device_names[s->device],
                        s->cost, extra);
                if (s->after_all) fprintf(out, "  after every evaluation");
                for (int d = 0; d < s->n_deps; d++)
                    fprintf(out, "%s%s", d ? ", " : "  after ", p->stages[s->deps[d]].name);
                fprintf(out, "\n");
            }
    }
}

void plan_print_dot(const struct plan *p, const struct experiment_spec *spec, FILE *out)
{
    fprintf(out, "digraph \"%s\" {\n  rankdir=LR;\n  node [shape=box, fontname=\"Helvetica\"];\n", spec->name);
    for (int w = -1; w < p->n_waves; w++) {
        if (w >= 0) fprintf(out, "  subgraph cluster_round_%d {\n    label=\"round %d\";\n", w, w);
        else fprintf(out, "  subgraph cluster_done {\n    label=\"done\";\n    style=dashed;\n");
        for (int i = 0; i < p->n_stages; i++) {
            const struct plan_stage *s = &p->stages[i];
            if (s->wave != w) continue;
            char ranks[32] = "done";
            if (!s->done) rank_range(ranks, sizeof ranks, s->first_rank, s->n_ranks);
            fprintf(out, "    \"%s\" [label=\"%s\\n%s, %s\"%s];\n", s->name, s->name, ranks,
                    spec_device_names[s->device], s->done ? ", style=dashed" : "");
        }
        fprintf(out, "  }\n");
    }
    for (int i = 0; i < p->n_stages; i++) {
        const struct plan_stage *s = &p->stages[i];
        for (int d = 0; d < s->n_deps; d++)
            fprintf(out, "  \"%s\" -> \"%s\";\n", p->stages[s->deps[d]].name, s->name);
        if (s->after_all)
            for (int j = 0; j < p->n_stages; j++)
                if (reads_into_report(&p->stages[j])) fprintf(out, "  \"%s\" -> \"%s\";\n", p->stages[j].name, s->name);
    }
    fprintf(out, "}\n");
}
