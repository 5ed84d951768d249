/* plan_place.c — placement of a plan's remaining stages on its ranks (plan.h), round by round.
 *
 * A round starts from the stages whose dependencies are all done ("ready"). Its rank groups: when fewer stages are
 * ready than there are ranks (and none needs several ranks together), every ready stage gets its own group and
 * the spare ranks go one by one to the scalable stage with the most estimated work per rank; otherwise the ranks
 * are cut into groups of a pipelined teacher's size when one is ready (the remainder as single ranks), else
 * into single ranks, and list
 * scheduling places every ready stage: the group that would be free first takes the one with the longest
 * remaining path (its cost plus its most expensive chain of dependents). Then, while the round's busiest group is
 * still at work, the others go on with stages that follow their own — each dependency done before the round or
 * placed earlier in the same group — if they end in time: a rank that trained the student base evaluates it,
 * scores its circuit and runs SFT from it while another rank still trains the teacher. The round ends when every
 * group is through (then everything lands in results.h5 and the next round is planned). Deterministic: ties go to
 * the lower index. */
#include <stdlib.h>
#include <string.h>

#include "plan/plan.h"

#define UNPLACED (-1)
#define DONE_BEFORE (-2)

/* Ranks a stage must have together: a pipelined teacher needs its pipeline's stages; everything else can run on
 * one rank. */
static int min_ranks(const struct plan_stage *s) { return s->kind == PLAN_DISTILL ? s->max_ranks : 1; }

static int usable_ranks(const struct plan_stage *s, int group_ranks)
{
    return s->max_ranks < group_ranks ? s->max_ranks : group_ranks;
}

struct placer {
    struct plan *p;
    int *round_of;       /* per stage: DONE_BEFORE, UNPLACED, or its round */
    double *longest;     /* per stage: cost + the most expensive chain of dependents */
    int round;
    int n_groups;
    int first[512], size[512], slots[512];
    double busy[512];    /* estimated time each group is busy this round */
};

/* 1 if dependency d of a stage lets it run in group q of this round (q < 0: only "done before the round"). */
static int dep_allows(const struct placer *pl, int d, int q)
{
    int r = pl->round_of[d];
    if (r == DONE_BEFORE || (r >= 0 && r < pl->round)) return 1;
    return q >= 0 && r == pl->round && pl->p->stages[d].group == q;
}

/* 1 if stage i needs more ranks together than group q has (it waits for a round with wider groups). */
static int too_wide(const struct placer *pl, int i, int q)
{
    int need = min_ranks(&pl->p->stages[i]);
    return need > pl->size[q] && need <= pl->p->n_ranks;
}

static int may_run(const struct placer *pl, int i, int q)
{
    const struct plan_stage *s = &pl->p->stages[i];
    if (pl->round_of[i] != UNPLACED) return 0;
    if (q >= 0 && too_wide(pl, i, q)) return 0;
    for (int d = 0; d < s->n_deps; d++)
        if (!dep_allows(pl, s->deps[d], q)) return 0;
    if (s->after_all)
        for (int j = 0; j < pl->p->n_stages; j++)
            if (j != i && !dep_allows(pl, j, q)) return 0;
    return 1;
}

static void assign(struct placer *pl, int i, int q)
{
    struct plan_stage *s = &pl->p->stages[i];
    pl->round_of[i] = pl->round;
    s->wave = pl->round;
    s->group = q;
    s->first_rank = pl->first[q];
    s->n_ranks = pl->size[q];
    s->slot = pl->slots[q]++;
    pl->busy[q] += s->cost / usable_ranks(s, pl->size[q]);
}

/* Fewer ready stages than ranks: a group per ready stage, spare ranks to the most loaded scalable ones. */
static void spread(struct placer *pl, const int *ready, int n)
{
    struct plan *p = pl->p;
    int ranks[512], left = p->n_ranks - n;
    for (int k = 0; k < n; k++) ranks[k] = 1;
    while (left > 0) {
        int best = -1;
        double best_load = -1;
        for (int k = 0; k < n; k++) {
            const struct plan_stage *s = &p->stages[ready[k]];
            if (ranks[k] >= s->max_ranks || s->cost / ranks[k] <= best_load) continue;
            best_load = s->cost / ranks[k];
            best = k;
        }
        if (best < 0) break;
        ranks[best]++;
        left--;
    }
    pl->n_groups = n;
    for (int k = 0, next = 0; k < n; k++) {
        pl->first[k] = next;
        pl->size[k] = ranks[k];
        next += ranks[k];
    }
    for (int k = 0; k < n; k++) assign(pl, ready[k], k);
}

/* The open group that would be free first, or -1. */
static int least_busy(const struct placer *pl, const unsigned char *open)
{
    int q = -1;
    for (int k = 0; k < pl->n_groups; k++)
        if (open[k] && (q < 0 || pl->busy[k] < pl->busy[q])) q = k;
    return q;
}

static void place_round(struct placer *pl)
{
    struct plan *p = pl->p;
    int *ready = malloc((size_t)p->n_stages * sizeof *ready), n = 0, g = 1;
    if (!ready) return;
    for (int i = 0; i < p->n_stages; i++) {
        if (!may_run(pl, i, -1)) continue;
        ready[n++] = i;
        int need = min_ranks(&p->stages[i]) < p->n_ranks ? min_ranks(&p->stages[i]) : p->n_ranks;
        if (need > g) g = need;
    }
    memset(pl->busy, 0, sizeof pl->busy);
    memset(pl->slots, 0, sizeof pl->slots);
    if (g == 1 && n < p->n_ranks && n <= 512) {
        spread(pl, ready, n);
    } else {
        /* Groups of g ranks, the remainder as single-rank groups (for the stages that need no pipeline). */
        int wide = p->n_ranks / g, narrow = p->n_ranks % g;
        if (wide > 512) wide = 512, narrow = 0;
        if (wide + narrow > 512) narrow = 512 - wide;
        pl->n_groups = wide + narrow;
        for (int q = 0; q < pl->n_groups; q++) {
            pl->first[q] = q < wide ? q * g : wide * g + (q - wide);
            pl->size[q] = q < wide ? g : 1;
        }
        if (wide * g + narrow < p->n_ranks) pl->size[wide - 1] += p->n_ranks - wide * g - narrow; /* > 512 groups */
    }
    free(ready);
    /* The ready stages: the least busy group takes the one with the longest remaining path, until all are placed
     * (a group whose ranks are too few for every remaining one is passed over). */
    unsigned char open[512];
    memset(open, 1, sizeof open);
    for (int q; (q = least_busy(pl, open)) >= 0;) {
        int best = -1;
        for (int i = 0; i < p->n_stages; i++)
            if (may_run(pl, i, -1) && !too_wide(pl, i, q) && (best < 0 || pl->longest[i] > pl->longest[best]))
                best = i;
        if (best < 0) open[q] = 0;
        else assign(pl, best, q);
    }
    /* Chains: while the round's longest group is still busy, a group that would otherwise wait goes on with
     * stages that follow its own (their other dependencies done before the round), if they end in time. */
    double round_end = 0;
    for (int q = 0; q < pl->n_groups; q++)
        if (pl->busy[q] > round_end) round_end = pl->busy[q];
    memset(open, 1, sizeof open);
    for (int q; (q = least_busy(pl, open)) >= 0;) {
        int best = -1;
        for (int i = 0; i < p->n_stages; i++) {
            const struct plan_stage *s = &p->stages[i];
            if (!may_run(pl, i, q) || pl->busy[q] + s->cost / usable_ranks(s, pl->size[q]) > round_end * (1 + 1e-9))
                continue;
            if (best < 0 || pl->longest[i] > pl->longest[best]) best = i;
        }
        if (best < 0) open[q] = 0;
        else assign(pl, best, q);
    }
}

void plan_place(struct plan *p, const unsigned char *done)
{
    struct placer pl = {p, calloc((size_t)p->n_stages + 1, sizeof(int)),
                        calloc((size_t)p->n_stages + 1, sizeof(double)), 0, 0, {0}, {0}, {0}, {0}};
    p->n_waves = 0;
    p->span_estimate = 0;
    if (!pl.round_of || !pl.longest) { free(pl.round_of); free(pl.longest); return; }
    int left = 0;
    for (int i = 0; i < p->n_stages; i++) {
        struct plan_stage *s = &p->stages[i];
        s->done = done ? done[i] != 0 : 0;
        s->wave = s->group = s->first_rank = -1;
        s->n_ranks = s->slot = 0;
        pl.round_of[i] = s->done ? DONE_BEFORE : UNPLACED;
        left += !s->done;
    }
    /* Longest remaining path, from the last stage back (the order is topological; the report follows all). */
    for (int i = p->n_stages - 1; i >= 0; i--) {
        double tail = 0;
        for (int j = i + 1; j < p->n_stages; j++) {
            const struct plan_stage *t = &p->stages[j];
            int depends = t->after_all;
            for (int d = 0; d < t->n_deps && !depends; d++) depends = t->deps[d] == i;
            if (depends && pl.longest[j] > tail) tail = pl.longest[j];
        }
        pl.longest[i] = p->stages[i].cost + tail;
    }
    while (left > 0) {
        place_round(&pl);
        double worst = 0;
        int placed = 0;
        for (int i = 0; i < p->n_stages; i++) placed += pl.round_of[i] == pl.round;
        for (int q = 0; q < pl.n_groups; q++)
            if (pl.busy[q] > worst) worst = pl.busy[q];
        if (!placed) break; /* cannot happen with an acyclic graph; never loop forever */
        p->span_estimate += worst;
        left -= placed;
        pl.round++;
    }
    p->n_waves = pl.round;
    free(pl.round_of);
    free(pl.longest);
}
