/* plan_place.c — placement of a plan's remaining stages on its ranks (plan.h): waves by longest path over the
 * stages not yet done, then per wave either a spread (fewer stages than ranks: every stage gets a group, the extra
 * ranks go one by one to the scalable stage with the most estimated work per rank) or a longest-processing-time-
 * first assignment of the stages to equal groups. Deterministic: ties go to the lower index. */
#include <stdlib.h>
#include <string.h>

#include "plan/plan.h"

/* Ranks a stage must have together: a pipelined teacher needs its pipeline's stages; everything else can run on
 * one rank. */
static int min_ranks(const struct plan_stage *s) { return s->kind == PLAN_DISTILL ? s->max_ranks : 1; }

static int usable_ranks(const struct plan_stage *s, int group_ranks)
{
    return s->max_ranks < group_ranks ? s->max_ranks : group_ranks;
}

/* Every stage of the wave gets its own contiguous group; extra ranks go to the stage with the highest cost per
 * rank that can still use one more. */
static void spread(struct plan *p, const int *idx, int n, int wave)
{
    int *ranks = calloc((size_t)n, sizeof *ranks);
    if (!ranks) return; /* left unplaced: the caller's check reports it */
    int left = p->n_ranks - n;
    for (int k = 0; k < n; k++) ranks[k] = 1;
    while (left > 0) {
        int best = -1;
        double best_load = -1;
        for (int k = 0; k < n; k++) {
            const struct plan_stage *s = &p->stages[idx[k]];
            if (ranks[k] >= s->max_ranks) continue;
            double load = s->cost / ranks[k];
            if (load > best_load) { best_load = load; best = k; }
        }
        if (best < 0) break;
        ranks[best]++;
        left--;
    }
    int next = 0;
    for (int k = 0; k < n; k++) {
        struct plan_stage *s = &p->stages[idx[k]];
        s->wave = wave;
        s->group = k;
        s->first_rank = next;
        s->n_ranks = ranks[k];
        s->slot = 0;
        next += ranks[k];
    }
    free(ranks);
}

static const struct plan *sort_plan; /* qsort has no context argument */

static int by_cost_desc(const void *a, const void *b)
{
    int i = *(const int *)a, j = *(const int *)b;
    double ci = sort_plan->stages[i].cost, cj = sort_plan->stages[j].cost;
    if (ci != cj) return ci > cj ? -1 : 1;
    return i - j;
}

/* Groups of g ranks (the last one takes the remainder); stages longest first onto the least loaded group. */
static void balance(struct plan *p, int *idx, int n, int wave, int g)
{
    int n_groups = p->n_ranks / g;
    double *load = calloc((size_t)n_groups, sizeof *load);
    int *slots = calloc((size_t)n_groups, sizeof *slots);
    if (!load || !slots) { free(load); free(slots); return; }
    sort_plan = p;
    qsort(idx, (size_t)n, sizeof *idx, by_cost_desc);
    for (int k = 0; k < n; k++) {
        struct plan_stage *s = &p->stages[idx[k]];
        int best = 0;
        for (int q = 1; q < n_groups; q++)
            if (load[q] < load[best]) best = q;
        int size = best == n_groups - 1 ? p->n_ranks - best * g : g;
        s->wave = wave;
        s->group = best;
        s->first_rank = best * g;
        s->n_ranks = size;
        load[best] += s->cost / usable_ranks(s, size);
    }
    /* Slots in topological order within each group. */
    for (int i = 0; i < p->n_stages; i++) {
        struct plan_stage *s = &p->stages[i];
        if (s->wave == wave) s->slot = slots[s->group]++;
    }
    free(load);
    free(slots);
}

static void place_wave(struct plan *p, int wave)
{
    int *idx = malloc((size_t)p->n_stages * sizeof *idx), n = 0, g = 1;
    if (!idx) return;
    for (int i = 0; i < p->n_stages; i++) {
        const struct plan_stage *s = &p->stages[i];
        if (s->done || s->wave != wave) continue;
        idx[n++] = i;
        int need = min_ranks(s) < p->n_ranks ? min_ranks(s) : p->n_ranks;
        if (need > g) g = need;
    }
    if (g == 1 && n < p->n_ranks) spread(p, idx, n, wave);
    else balance(p, idx, n, wave, g);
    free(idx);
}

void plan_place(struct plan *p, const unsigned char *done)
{
    p->n_waves = 0;
    for (int i = 0; i < p->n_stages; i++) {
        struct plan_stage *s = &p->stages[i];
        s->done = done ? done[i] != 0 : 0;
        s->wave = s->group = s->first_rank = -1;
        s->n_ranks = s->slot = 0;
        if (s->done) continue;
        int wave = 0;
        for (int d = 0; d < s->n_deps; d++) {
            const struct plan_stage *dep = &p->stages[s->deps[d]];
            if (!dep->done && dep->wave + 1 > wave) wave = dep->wave + 1;
        }
        if (s->after_all)
            for (int j = 0; j < i; j++)
                if (!p->stages[j].done && p->stages[j].wave + 1 > wave) wave = p->stages[j].wave + 1;
        s->wave = wave;
        if (wave + 1 > p->n_waves) p->n_waves = wave + 1;
    }
    p->span_estimate = 0;
    for (int w = 0; w < p->n_waves; w++) {
        place_wave(p, w);
        double worst = 0, *group_load = calloc((size_t)p->n_ranks, sizeof *group_load);
        if (!group_load) continue;
        for (int i = 0; i < p->n_stages; i++) {
            const struct plan_stage *s = &p->stages[i];
            if (s->wave != w || s->group < 0) continue;
            group_load[s->group] += s->cost / usable_ranks(s, s->n_ranks);
            if (group_load[s->group] > worst) worst = group_load[s->group];
        }
        free(group_load);
        p->span_estimate += worst;
    }
}

int plan_wave_groups(const struct plan *p, int wave, int *first_rank, int *n_ranks, int cap)
{
    int n = 0;
    for (int i = 0; i < p->n_stages; i++) {
        const struct plan_stage *s = &p->stages[i];
        if (s->wave != wave || s->group < 0 || s->group >= cap) continue;
        if (s->group + 1 > n) {
            for (int q = n; q < s->group; q++) first_rank[q] = n_ranks[q] = -1;
            n = s->group + 1;
        }
        first_rank[s->group] = s->first_rank;
        n_ranks[s->group] = s->n_ranks;
    }
    return n;
}
