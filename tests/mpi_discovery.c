/* mpi_discovery.c — (2 ranks) circuit discovery and circuit evaluation sharded over the ranks give one rank's
 * numbers: node AtP, EAP edges, EAP-IG, exact patching, AtP* and the faithfulness curves (counterfactual and mean
 * ablation) of a small random model, run on MPI_COMM_WORLD into one shared results file, read back and compared
 * within 1e-5 with the same jobs run by each rank alone on MPI_COMM_SELF; with an uneven split (5 batches over 2
 * ranks) and with fewer batches than ranks (rank 1 idle). The pair counts show that no batch was counted twice.
 * Errors: a bad token in rank 1's batches, a bad option or a different pair set on one rank make both ranks return
 * an error naming the failed rank — no hang (an alarm fails the test instead of hanging). Also the shard
 * partition and the ordered sum themselves. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mpi.h>

#include "sched/reduce.h"
#include "stages/circuit_job.h"
#include "stages/discovery.h"
#include "testing.h"
#include "util/error.h"
#include "util/rng.h"

enum { VOCAB = 13 };

static int rank, size;
static char shared_dir[4096];

/* Batches of random token rows (sizes vary: the last rows shorter), the counterfactual changing one or two prompt
 * tokens, as test_edges.c builds them. */
static void random_set(struct pair_set *s, int n_batches, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    s->batches = calloc((size_t)n_batches, sizeof *s->batches);
    struct rng r;
    rng_seed(&r, seed);
    for (int k = 0; k < n_batches; k++) {
        int B = 2 + k % 3, T = 5 + k % 2;
        struct pair_batch *pb = &s->batches[k];
        CHECK(pair_batch_alloc(pb, B, T) == 0);
        pb->B = B;
        pb->T = T;
        for (int i = 0; i < B * T; i++) pb->corrupt[i] = pb->clean[i] = (int32_t)rng_below(&r, VOCAB);
        for (int b = 0; b < B; b++) {
            pb->corrupt[b * T + 1] = (pb->clean[b * T + 1] + 3) % VOCAB;
            if (b % 3 == 2) pb->corrupt[b * T + 3] = (pb->clean[b * T + 3] + 5) % VOCAB;
            pb->pairs[b] = (struct arith_metric_pair){.length = T - 1 - b % 2, .position = T - 2 - b % 2,
                                                      .prefix_len = 0, .clean_id = 2 + (b + k) % 5, .cf_id = 7};
        }
        s->pairs += (size_t)B;
        s->n_batches = k + 1;
    }
}

static void open_file(struct results_file *r, const char *file, MPI_Comm comm)
{
    char path[4300];
    if (comm == MPI_COMM_SELF) snprintf(path, sizeof path, "%s/alone-%s", testing_tmpdir(), file);
    else snprintf(path, sizeof path, "%s/%s", shared_dir, file);
    CHECK(results_open(r, path, comm, "test") == 0);
}

/* Dataset `path` of both files, compared element by element (NaN where both are NaN). */
static void compare_dataset(struct results_file *sharded, struct results_file *single, const char *path)
{
    enum { CAP = 1 << 16 };
    static float a[CAP], b[CAP];
    int na = 0, nb = 0;
    uint64_t da[4] = {0}, db[4] = {0};
    int ra = results_read_f32(sharded, path, a, CAP, &na, da), rb = results_read_f32(single, path, b, CAP, &nb, db);
    CHECK(ra == 0 && rb == 0 && na == nb && da[0] == db[0] && da[0] > 0);
    if (ra || rb || na != nb) { fprintf(stderr, "  %s: %s\n", path, err_msg()); return; }
    size_t n = 1;
    for (int i = 0; i < na; i++) n *= da[i];
    for (size_t i = 0; i < n; i++)
        if (isnan(a[i]) && isnan(b[i])) a[i] = b[i] = 0;
    CHECK_CLOSE(a, b, n, 1e-5, 1e-7);
    int nonzero = 0;
    for (size_t i = 0; i < n; i++) nonzero += b[i] != 0;
    CHECK(nonzero > 0); /* a real comparison, not of two empty tables */
}

static void compare_attr(struct results_file *sharded, struct results_file *single, const char *path,
                         const char *key)
{
    double a = NAN, b = NAN;
    CHECK(results_get_attr_f64(sharded, path, key, &a) == 0 && results_get_attr_f64(single, path, key, &b) == 0);
    if (!(isnan(a) && isnan(b))) CHECK_NEAR(a, b, 1e-5 * fabs(b) + 1e-9);
}

/* Discovery (edge level, AtP* on) and the circuit evaluation of its edge scores, sharded and alone; then compared. */
static void check_job(struct llama_model *m, int n_batches, int n_sample, enum ablation_kind ablation,
                      const char *file)
{
    struct pair_set pairs, sample;
    random_set(&pairs, n_batches, 100 + (uint64_t)n_batches);
    random_set(&sample, n_sample, 200 + (uint64_t)n_sample);
    struct discovery_options o = {GRAPH_LEVEL_EDGE, 0, 1, 1, sample.pairs, NULL, DISCOVERY_ALL};
    struct discovery_options ig = {GRAPH_LEVEL_EDGE, 2, 0, 0, 0, NULL, DISCOVERY_ALL};
    static const double percents[] = {1, 5, 20, 50, 100};
    struct circuit_job_options co = {GRAPH_LEVEL_EDGE, ablation, percents, 5, 20, NULL};
    struct results_file shared, alone;
    open_file(&shared, file, MPI_COMM_WORLD);
    open_file(&alone, file, MPI_COMM_SELF);
    struct results_file *files[2] = {&shared, &alone};
    MPI_Comm comms[2] = {MPI_COMM_WORLD, MPI_COMM_SELF};
    struct circuit_graph g;
    CHECK(graph_init(&g, &m->config) == 0);
    double *scores = calloc((size_t)g.n_up * g.n_down, sizeof *scores);
    for (int i = 0; i < 2; i++) {
        const char *prefix = i == 0 ? "[2 ranks]" : "[1 rank]";
        CHECK(discovery_run(m, &pairs, &sample, &o, files[i], "eap", comms[i], prefix) == 0);
        CHECK(discovery_run(m, &pairs, NULL, &ig, files[i], "ig", comms[i], prefix) == 0);
        CHECK(circuit_scores_read(files[i], "eap", GRAPH_LEVEL_EDGE, &g, scores) == 0);
        CHECK(circuit_job_run(m, &pairs, scores, &co, files[i], "eap", comms[i], prefix) == 0);
    }
    static const char *const datasets[] = {"/atp/eap/nodes", "/atp/eap/edges", "/atp/eap/exact", "/atp/eap/atp_star",
                                           "/atp/ig/nodes", "/atp/ig/edges", "/circuits/eap/curve_signed",
                                           "/circuits/eap/curve_abs", "/circuits/eap/nfs_edges"};
    for (size_t i = 0; i < sizeof datasets / sizeof datasets[0]; i++) compare_dataset(&shared, &alone, datasets[i]);
    static const char *const atp_attrs[][2] = {
        {"/atp/eap/nodes", "metric_clean"}, {"/atp/eap/edges", "metric_corrupt"},
        {"/atp/eap/exact", "pearson_with_atp"}, {"/atp/eap/exact", "spearman_with_atp"},
        {"/atp/eap/atp_star", "qk_fix_pearson"}, {"/atp/eap/atp_star", "grad_drop_spearman"},
        {"/circuits/eap", "cpr"}, {"/circuits/eap", "cmd"}, {"/circuits/eap", "nfs"},
        {"/circuits/eap", "metric_model"}, {"/circuits/eap", "metric_empty"}, {"/circuits/eap", "mean_f_abs"}};
    for (size_t i = 0; i < sizeof atp_attrs / sizeof atp_attrs[0]; i++)
        compare_attr(&shared, &alone, atp_attrs[i][0], atp_attrs[i][1]);
    /* Every pair counted once: the sums cover the whole set, not a rank's share or each rank's copy. */
    double pairs_seen = 0, exact_pairs = 0, rows = 0;
    CHECK(results_get_attr_f64(&shared, "/atp/eap/edges", "pairs", &pairs_seen) == 0 &&
          pairs_seen == (double)pairs.pairs);
    CHECK(results_get_attr_f64(&shared, "/atp/eap/exact", "pairs", &exact_pairs) == 0 &&
          exact_pairs == (double)sample.pairs);
    CHECK(results_get_attr_f64(&shared, "/circuits/eap", "pairs", &rows) == 0 && rows == (double)pairs.pairs);
    /* The full circuit is the model, the empty one the ablated model (f = 1 at 100%). */
    float curve[5 * 7];
    int ndim;
    uint64_t dims[4];
    CHECK(results_read_f32(&shared, "/circuits/eap/curve_abs", curve, 35, &ndim, dims) == 0 && dims[0] == 5);
    CHECK_NEAR(curve[4 * 7 + 6], 1.0, 1e-4);
    free(scores);
    graph_free(&g);
    results_close(&shared);
    results_close(&alone);
    pair_set_free(&pairs);
    pair_set_free(&sample);
}

/* Every rank must return an error, and rank 0's message must name the rank that failed. */
static void expect_both_fail(int rc, const char *what, const char *needle)
{
    int failed = rc != 0, all = 0;
    MPI_Allreduce(&failed, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    CHECK(all == 1);
    if (rank == 0 && needle) {
        CHECK(strstr(err_msg(), needle) != NULL);
        fprintf(stderr, "  %s -> %s\n", what, err_msg());
    }
}

static void check_errors(struct llama_model *m)
{
    struct pair_set pairs;
    random_set(&pairs, 5, 7);
    struct results_file shared;
    open_file(&shared, "errors.h5", MPI_COMM_WORLD);
    struct discovery_options o = {GRAPH_LEVEL_EDGE, 0, 0, 0, 0, NULL, DISCOVERY_ALL};
    /* A token outside the vocabulary in the last batch: rank 1's block (batches 3, 4). */
    struct pair_set bad = pairs;
    struct pair_batch last = pairs.batches[4], broken;
    CHECK(pair_batch_alloc(&broken, last.B, last.T) == 0);
    broken.B = last.B;
    broken.T = last.T;
    memcpy(broken.clean, last.clean, (size_t)last.B * last.T * sizeof *last.clean);
    memcpy(broken.corrupt, last.corrupt, (size_t)last.B * last.T * sizeof *last.corrupt);
    memcpy(broken.pairs, last.pairs, (size_t)last.B * sizeof *last.pairs);
    broken.clean[1] = VOCAB + 4;
    bad.batches = malloc((size_t)pairs.n_batches * sizeof *bad.batches);
    memcpy(bad.batches, pairs.batches, (size_t)pairs.n_batches * sizeof *bad.batches);
    bad.batches[4] = broken;
    const struct pair_set *mine = rank == 1 ? &bad : &pairs;
    expect_both_fail(discovery_run(m, mine, NULL, &o, &shared, "bad", MPI_COMM_WORLD, "[bad]"), "bad token, AtP",
                     "rank 1 of 2");
    struct circuit_graph g;
    CHECK(graph_init(&g, &m->config) == 0);
    double *scores = calloc((size_t)g.n_up * g.n_down, sizeof *scores);
    for (size_t i = 0; i < (size_t)g.n_up * g.n_down; i++) scores[i] = g.real[i] ? (double)(i % 7) - 3 : 0;
    static const double percents[] = {10, 100};
    struct circuit_job_options co = {GRAPH_LEVEL_EDGE, ABLATION_MEAN, percents, 2, 10, NULL};
    expect_both_fail(circuit_job_run(m, mine, scores, &co, &shared, "bad", MPI_COMM_WORLD, "[bad]"),
                     "bad token, circuits", "rank 1 of 2");
    /* A bad option on rank 1 only. */
    struct discovery_options bad_option = o;
    if (rank == 1) bad_option.ig_steps = -1;
    expect_both_fail(discovery_run(m, &pairs, NULL, &bad_option, &shared, "bad", MPI_COMM_WORLD, "[bad]"),
                     "ig_steps -1 on rank 1", "ig_steps");
    /* Rank 1 with a pair set of another size. */
    struct pair_set shorter = pairs;
    if (rank == 1) { shorter.n_batches = 4; shorter.pairs -= (size_t)pairs.batches[4].B; }
    expect_both_fail(discovery_run(m, &shorter, NULL, &o, &shared, "bad", MPI_COMM_WORLD, "[bad]"),
                     "different pair sets", "differ between the 2 ranks");
    expect_both_fail(circuit_job_run(m, &shorter, scores, &co, &shared, "bad", MPI_COMM_WORLD, "[bad]"),
                     "different pair sets, circuits", "differ between the 2 ranks");
    /* After all that, the file and the ranks still work together. */
    CHECK(discovery_run(m, &pairs, NULL, &o, &shared, "good", MPI_COMM_WORLD, "[after errors]") == 0);
    free(scores);
    graph_free(&g);
    free(bad.batches);
    pair_batch_free(&broken);
    results_close(&shared);
    pair_set_free(&pairs);
}

static void check_reduce(void)
{
    size_t lo, hi, covered = 0;
    for (int r = 0; r < 3; r++) { /* 7 over 3: 3, 2, 2 */
        shard_range(7, r, 3, &lo, &hi);
        CHECK(lo == covered && hi - lo == (r == 0 ? 3u : 2u));
        covered = hi;
    }
    shard_range(1, 1, 2, &lo, &hi);
    CHECK(lo == hi); /* fewer items than ranks: an empty block */
    /* Rank-order sum, bit-identical on both ranks: 1e16 + 1 - 1e16 depends on the order of the additions. */
    double v[3] = {rank == 0 ? 1e16 : -1e16, rank == 0 ? 1.0 : 2.0, (double)rank}, all[6];
    CHECK(reduce_sum_f64_ordered(v, 3, MPI_COMM_WORLD) == 0);
    CHECK(v[0] == 0 && v[1] == 3 && v[2] == 1);
    MPI_Allgather(v, 3, MPI_DOUBLE, all, 3, MPI_DOUBLE, MPI_COMM_WORLD);
    CHECK(memcmp(all, all + 3, 3 * sizeof *all) == 0);
    CHECK(reduce_agree(CIRCD_OK, MPI_COMM_WORLD) == 0);
    int rc = reduce_agree(rank == 1 ? err_set(CIRCD_EIO, "disk full") : CIRCD_OK, MPI_COMM_WORLD);
    CHECK(rc == CIRCD_EIO && strstr(err_msg(), "disk full") != NULL);
    if (rank == 0) CHECK(strstr(err_msg(), "rank 1 of 2: disk full") != NULL);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    alarm(300); /* a hang fails the test */
    CHECK(size == 2);
    snprintf(shared_dir, sizeof shared_dir, "%s", testing_tmpdir());
    MPI_Bcast(shared_dir, (int)sizeof shared_dir, MPI_CHAR, 0, MPI_COMM_WORLD);
    if (rank == 1) { /* a directory of its own for the single-rank files */
        static char own[4096];
        snprintf(own, sizeof own, "%s", testing_tmpdir());
        CHECK(strcmp(own, shared_dir) != 0);
    }
    check_reduce();
    struct llama_config cfg = testing_config(VOCAB, 16, 2, 4, 2, 4, 24, 32);
    struct llama_model m;
    CHECK(model_create(&m, &cfg) == 0);
    testing_randomize_model(&m, 11, 0.4f, 0.1f);
    check_job(&m, 5, 3, ABLATION_COUNTERFACTUAL, "uneven.h5"); /* 3 + 2 batches; AtP* sample 2 + 1 */
    check_job(&m, 1, 1, ABLATION_MEAN, "idle.h5");             /* rank 1 has no batch */
    check_errors(&m);
    model_free(&m);
    int code = testing_finish();
    MPI_Allreduce(MPI_IN_PLACE, &code, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Finalize();
    return code;
}
