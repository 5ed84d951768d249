/* scheduler.c — wave-by-wave MPI execution of a plan with per-stage results files (scheduler.h). */
#include "sched/scheduler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "io/atomic_file.h"
#include "util/error.h"
#include "util/interrupt.h"

#define FAILURE_MAX 1024

void sched_stage_file(const char *output, const char *stage, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/stages/%s.h5", output, stage);
}

static void results_path(const struct experiment *x, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/results.h5", x->output);
}

/* Rank 0 looks at the file system, everyone gets its answer (one view of a shared directory). */
static int exists_on_rank0(const char *path, MPI_Comm comm)
{
    int rank, yes = 0;
    MPI_Comm_rank(comm, &rank);
    if (rank == 0) yes = access(path, F_OK) == 0;
    MPI_Bcast(&yes, 1, MPI_INT, 0, comm);
    return yes;
}

int sched_find_done(const struct plan *p, const char *output, struct results_file *results, unsigned char *done)
{
    for (int i = 0; i < p->n_stages; i++) {
        char path[4200], status[32] = "";
        sched_stage_file(output, p->stages[i].name, path, sizeof path);
        done[i] = results ? exists_on_rank0(path, results->comm) : access(path, F_OK) == 0;
        if (!done[i] && results) {
            int rc = results_stage_status(results, p->stages[i].name, status, sizeof status);
            if (rc) return rc;
            done[i] = strcmp(status, "done") == 0;
        }
    }
    return CIRCD_OK;
}

/* Merges the stage's file into results.h5 and marks the stage done, unless results.h5 already says so. */
static int merge_stage(struct experiment *x, const struct plan_stage *s)
{
    char path[4200], status[32];
    sched_stage_file(x->output, s->name, path, sizeof path);
    int rc = results_stage_status(&x->results, s->name, status, sizeof status);
    if (rc || strcmp(status, "done") == 0 || !exists_on_rank0(path, x->comm)) return rc;
    if ((rc = results_merge_file(&x->results, path))) return rc;
    return results_stage_done(&x->results, s->name);
}

/* Waits for every rank of comm without spinning a core (idle ranks sleep while others compute). */
static void wait_all(MPI_Comm comm)
{
    MPI_Request req;
    int flag = 0;
    MPI_Ibarrier(comm, &req);
    struct timespec nap = {0, 2000000};
    for (MPI_Test(&req, &flag, MPI_STATUS_IGNORE); !flag; MPI_Test(&req, &flag, MPI_STATUS_IGNORE))
        nanosleep(&nap, NULL);
}

/* Errors outrank an interruption, which outranks success: the code every rank returns after a wave. */
static int severity(int rc) { return rc == CIRCD_OK ? 0 : rc == CIRCD_EINTERRUPTED ? 1 : 10 + rc; }
static int from_severity(int s) { return s == 0 ? CIRCD_OK : s == 1 ? CIRCD_EINTERRUPTED : s - 10; }

static int agree(int rc, MPI_Comm comm)
{
    int s = severity(rc);
    MPI_Allreduce(MPI_IN_PLACE, &s, 1, MPI_INT, MPI_MAX, comm);
    return from_severity(s);
}

struct group_ctx {
    struct experiment *x;
    const struct plan_stage *stage;
    MPI_Comm comm;
    int rank;
    struct results_file *base;
    int resumed;
    char *failure; /* this rank's own error, for rank 0 to print */
};

static void rank_range(const struct plan_stage *s, char *buf, size_t cap)
{
    if (s->n_ranks > 1) snprintf(buf, cap, "ranks %d-%d", s->first_rank, s->first_rank + s->n_ranks - 1);
    else snprintf(buf, cap, "rank %d", s->first_rank);
}

/* Records this rank's own failure (not the echo of another rank's) as "[stage] on ranks a-b: message". */
static void note_failure(struct group_ctx *g, int own)
{
    if (!own || g->failure[0]) return;
    char ranks[48];
    rank_range(g->stage, ranks, sizeof ranks);
    if (own == CIRCD_EINTERRUPTED) snprintf(g->failure, FAILURE_MAX, "[%s] %s", g->stage->name, err_msg());
    else snprintf(g->failure, FAILURE_MAX, "[%s] failed on %s: %s", g->stage->name, ranks, err_msg());
}

/* One stage on its group: its own results file, renamed into place when complete. */
static int run_stage(struct group_ctx *g, sched_stage_fn run)
{
    const struct plan_stage *s = g->stage;
    char final[4200], tmp[4300];
    sched_stage_file(g->x->output, s->name, final, sizeof final);
    snprintf(tmp, sizeof tmp, "%s.tmp", final);
    if (g->rank == 0) {
        char ranks[48];
        rank_range(s, ranks, sizeof ranks);
        unlink(tmp); /* left by a run that died inside this stage */
        fprintf(stderr, "[%s] %s on %s\n", s->name, g->resumed ? "continuing" : "starting", ranks);
    }
    MPI_Barrier(g->comm);
    struct experiment sx = *g->x;
    int own = results_open(&sx.results, tmp, g->comm, g->x->spec->yaml), rc;
    note_failure(g, own);
    if ((rc = agree(own, g->comm))) return rc;
    sx.results.base = g->base;
    sx.comm = g->comm;
    sx.rank = g->rank;
    double t0 = MPI_Wtime();
    own = run(&sx, s);
    note_failure(g, own);
    rc = agree(own, g->comm);
    if (rc && !own) err_set(rc, "another rank of the group failed");
    int mine = CIRCD_OK; /* failures from here on are this rank's own */
    if (!rc) {
        char path[256];
        snprintf(path, sizeof path, "/stages/%s", s->name);
        double seconds = MPI_Wtime() - t0;
        MPI_Bcast(&seconds, 1, MPI_DOUBLE, 0, g->comm);
        if (!(mine = results_set_attr_f64(&sx.results, path, "seconds", seconds)) &&
            !(mine = results_set_attr_i64(&sx.results, path, "first_rank", s->first_rank)))
            mine = results_set_attr_i64(&sx.results, path, "rank_count", s->n_ranks);
    }
    int closed = results_close(&sx.results);
    if (!mine && !rc) mine = closed;
    if (!mine && !rc && g->rank == 0) {
        if (rename(tmp, final) != 0) mine = err_set(CIRCD_EIO, "cannot rename %s to %s", tmp, final);
        else mine = atomic_fsync_parent_dir(final);
    }
    note_failure(g, mine);
    if (!rc) rc = mine;
    return agree(rc, g->comm);
}

/* The group's stages of the round, one after another; stops at the first failure or interruption. A stage reads
 * through the files of the group's stages finished earlier in the round (they may be its dependencies), then
 * results.h5. */
static int run_group(struct experiment *x, struct plan *p, int wave, int group, MPI_Comm comm,
                     const unsigned char *resumed, sched_stage_fn run, char *failure)
{
    char path[4200];
    int n = 0;
    for (int i = 0; i < p->n_stages; i++) n += p->stages[i].wave == wave && p->stages[i].group == group;
    struct results_file *chain = xcalloc((size_t)n + 1, sizeof *chain); /* [0] = results.h5, then the stages' */
    if (!chain) { snprintf(failure, FAILURE_MAX, "%s", err_msg()); return agree(CIRCD_ENOMEM, comm); }
    results_path(x, path, sizeof path);
    int opened = 0, rc = agree(results_open_readonly(&chain[0], path, MPI_COMM_SELF), comm);
    if (rc) { snprintf(failure, FAILURE_MAX, "%s", err_msg()); free(chain); return rc; }
    opened = 1;
    struct group_ctx g = {x, NULL, comm, 0, &chain[0], 0, failure};
    MPI_Comm_rank(comm, &g.rank);
    for (int slot = 0; !rc; slot++) {
        int i = 0;
        while (i < p->n_stages && !(p->stages[i].wave == wave && p->stages[i].group == group &&
                                    p->stages[i].slot == slot))
            i++;
        if (i == p->n_stages) break;
        if (agree(interrupt_requested() ? CIRCD_EINTERRUPTED : CIRCD_OK, comm)) {
            rc = err_set(CIRCD_EINTERRUPTED, "interrupted by a signal before [%s] started", p->stages[i].name);
            if (g.rank == 0) snprintf(failure, FAILURE_MAX, "%s", err_msg());
            break;
        }
        g.stage = &p->stages[i];
        g.resumed = resumed[i];
        if ((rc = run_stage(&g, run)) || opened > n) break;
        sched_stage_file(x->output, g.stage->name, path, sizeof path);
        int own = results_open_readonly(&chain[opened], path, MPI_COMM_SELF);
        if (own) note_failure(&g, own);
        if ((rc = agree(own, comm))) break;
        chain[opened].base = g.base;
        g.base = &chain[opened++];
    }
    while (opened > 0) results_close(&chain[--opened]);
    free(chain);
    return rc;
}

/* Rank 0 learns every group's failure: it prints all but the first, which becomes its err_msg(). */
static void collect_failures(MPI_Comm comm, int rank, int size, const char *failure, int rc)
{
    char *all = rank == 0 ? calloc((size_t)size, FAILURE_MAX) : NULL;
    MPI_Gather(failure, FAILURE_MAX, MPI_CHAR, all, FAILURE_MAX, MPI_CHAR, 0, comm);
    if (rank != 0 || !all) { free(all); return; }
    int first = -1;
    for (int r = 0; r < size; r++) {
        const char *m = all + (size_t)r * FAILURE_MAX;
        int seen = 0; /* the ranks of one group usually fail alike: say it once */
        for (int q = 0; q < r && !seen; q++) seen = strcmp(m, all + (size_t)q * FAILURE_MAX) == 0;
        if (!m[0] || seen) continue;
        if (first < 0) first = r;
        else fprintf(stderr, "circd run: %s\n", m);
    }
    if (first >= 0) err_set(rc, "%s", all + (size_t)first * FAILURE_MAX);
    free(all);
}

/* The wave's stages marked running (remembering which ran before: those continue from checkpoints). */
static int begin_wave(struct experiment *x, const struct plan *p, unsigned char *resumed)
{
    int rc = CIRCD_OK;
    for (int i = 0; i < p->n_stages && !rc; i++) {
        const struct plan_stage *s = &p->stages[i];
        char status[32];
        resumed[i] = 0;
        if (s->wave != 0) continue;
        if ((rc = results_stage_status(&x->results, s->name, status, sizeof status))) break;
        resumed[i] = status[0] != '\0';
        rc = results_stage_begin(&x->results, s->name, s->n_ranks);
    }
    return rc;
}

int sched_run(struct experiment *x, struct plan *p, sched_stage_fn run)
{
    int rank, size, rc = CIRCD_OK, first = 1;
    MPI_Comm world = x->comm;
    MPI_Comm_rank(world, &rank);
    MPI_Comm_size(world, &size);
    if (size != p->n_ranks)
        return err_set(CIRCD_EINTERNAL, "plan for %d ranks run on %d", p->n_ranks, size);
    unsigned char *done = xcalloc((size_t)p->n_stages, 1), *resumed = xcalloc((size_t)p->n_stages, 1);
    char path[4200];
    results_path(x, path, sizeof path);
    if (!done || !resumed) rc = CIRCD_ENOMEM;
    while (!rc) {
        if ((rc = sched_find_done(p, x->output, &x->results, done))) break;
        /* Stage files a crash left unmerged (after their rename, before the merge) land now. */
        for (int i = 0; i < p->n_stages && !rc; i++)
            if (done[i]) rc = merge_stage(x, &p->stages[i]);
        if (rc) break;
        for (int i = 0; i < p->n_stages && first && rank == 0; i++)
            if (done[i]) fprintf(stderr, "[%s] done in an earlier run: skipped\n", p->stages[i].name);
        first = 0;
        plan_place(p, done);
        if (p->n_waves == 0) break;
        if (agree(interrupt_requested() ? CIRCD_EINTERRUPTED : CIRCD_OK, world)) {
            rc = err_set(CIRCD_EINTERRUPTED, "interrupted by a signal between waves");
            break;
        }
        if ((rc = begin_wave(x, p, resumed)) || (rc = results_close(&x->results))) break;

        int group = MPI_UNDEFINED;
        for (int i = 0; i < p->n_stages; i++) {
            const struct plan_stage *s = &p->stages[i];
            if (s->wave == 0 && rank >= s->first_rank && rank < s->first_rank + s->n_ranks) group = s->group;
        }
        MPI_Comm comm;
        MPI_Comm_split(world, group, rank, &comm);
        char failure[FAILURE_MAX] = "";
        int wave_rc = CIRCD_OK;
        if (comm != MPI_COMM_NULL) {
            wave_rc = run_group(x, p, 0, group, comm, resumed, run, failure);
            MPI_Comm_free(&comm);
        }
        wait_all(world);
        wave_rc = agree(wave_rc, world);
        collect_failures(world, rank, size, failure, wave_rc);
        char message[FAILURE_MAX];
        snprintf(message, sizeof message, "%s", err_msg());

        /* What finished lands in results.h5 even when another group failed or was interrupted. */
        if ((rc = results_open(&x->results, path, world, x->spec->yaml))) break;
        for (int i = 0; i < p->n_stages && !rc; i++)
            if (p->stages[i].wave == 0) rc = merge_stage(x, &p->stages[i]);
        if (!rc && wave_rc) rc = err_set(wave_rc, "%s", message);
    }
    free(done);
    free(resumed);
    return rc;
}
