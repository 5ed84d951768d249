/* test_run.c — `circd run` end to end on experiments/smoke.yaml: every stage runs and writes results.h5 with the
 * comparison table; a second run skips every stage; a run stopped by SIGTERM mid-training exits 75 and, run again,
 * continues from its checkpoint to the same final weights as an uninterrupted run; a bad spec exits 2. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <mpi.h>

#include "io/results.h"
#include "testing.h"

static char output[1 << 16];

static int run(const char *args) { return testing_run_circd(args, output, sizeof output); }

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static char *slurp(const char *path, size_t *n) { return testing_read_file(path, n); }

/* Writes `text` to path with the first occurrence of `from` replaced by `to`. */
static void write_replaced(const char *path, const char *text, const char *from, const char *to)
{
    const char *at = text ? strstr(text, from) : NULL;
    CHECK(at != NULL);
    FILE *f = fopen(path, "w");
    if (!f || !at) { if (f) fclose(f); return; }
    fwrite(text, 1, (size_t)(at - text), f);
    fputs(to, f);
    fputs(at + strlen(from), f);
    fclose(f);
}

/* The distillation grid of smoke.yaml cut to one method (the variants below test other things). */
static char *smoke_one_method(const char *method)
{
    static const char *methods = "methods: [sft, kd, cot, cd_a, cd_b, sft_subnet, kd_subnet, cot_subnet, cd_a_subnet, "
                                 "cd_b_subnet]";
    size_t n;
    char *text = slurp(testing_source_path("experiments/smoke.yaml"), &n);
    char *at = text ? strstr(text, methods) : NULL;
    CHECK(at != NULL);
    if (!at) return text;
    char one[64];
    snprintf(one, sizeof one, "methods: [%s]", method);
    memmove(at + strlen(one), at + strlen(methods), strlen(at + strlen(methods)) + 1);
    memcpy(at, one, strlen(one));
    return text;
}

/* A copy of smoke.yaml with a longer teacher run, so that a signal can arrive mid-training. */
static void write_long_spec(const char *path)
{
    char *text = smoke_one_method("sft");
    write_replaced(path, text, "teacher: {steps: 20,", "teacher: {steps: 150,");
    free(text);
}

/* The same with one CD-B run of 150 steps: its projection lives beside the model checkpoint. */
static void write_long_distill_spec(const char *path)
{
    char *text = smoke_one_method("cd_b");
    write_replaced(path, text, "distill: {steps: 5,", "distill: {steps: 150,");
    free(text);
}

/* Runs spec straight into <tmp>/<label>-straight and, into <tmp>/<label>-broken, with SIGTERM as soon as checkpoint
 * `ckpt` (relative to the output) exists, then again to finish: `model` (relative) must be bit-identical. */
static void check_resume(const char *tmp, const char *spec, const char *label, const char *ckpt_rel,
                         const char *model_rel)
{
    char args[8192], straight[4200], broken[4200], ckpt[4400], path[4400];
    snprintf(straight, sizeof straight, "%s/%s-straight", tmp, label);
    snprintf(args, sizeof args, "run %s --output %s", spec, straight);
    CHECK(run(args) == 0);
    snprintf(broken, sizeof broken, "%s/%s-broken", tmp, label);
    snprintf(ckpt, sizeof ckpt, "%s/%s", broken, ckpt_rel);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        const char *bin = getenv("CIRCD_BINARY");
        freopen("/dev/null", "w", stderr);
        freopen("/dev/null", "w", stdout);
        execl(bin ? bin : "./circd", "circd", "run", spec, "--output", broken, (char *)NULL);
        _exit(127);
    }
    /* Up to 5 minutes: a loaded CI machine can take that long to reach the first checkpoint. */
    for (int i = 0; i < 30000 && !file_exists(ckpt); i++) nanosleep(&(struct timespec){0, 10000000}, NULL);
    CHECK(file_exists(ckpt));
    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    CHECK(code == 75 || code == 0); /* 0 only if it finished before the signal arrived */
    printf("%s: first run exited with %d\n", label, code);
    snprintf(args, sizeof args, "run %s --output %s", spec, broken);
    CHECK(run(args) == 0);
    if (code == 75) CHECK(strstr(output, "resuming from") != NULL && strstr(output, "[data] done") != NULL);
    size_t na = 0, nb = 0;
    snprintf(path, sizeof path, "%s/%s", straight, model_rel);
    char *a = slurp(path, &na);
    snprintf(path, sizeof path, "%s/%s", broken, model_rel);
    char *b = slurp(path, &nb);
    CHECK(a && b && na == nb && memcmp(a, b, na) == 0);
    free(a);
    free(b);
}

int main(void)
{
    char args[8192], out_dir[4200], path[4400];
    const char *tmp = testing_tmpdir();

    /* The whole smoke experiment. */
    snprintf(out_dir, sizeof out_dir, "%s/smoke", tmp);
    snprintf(args, sizeof args, "run %s --output %s", testing_source_path("experiments/smoke.yaml"), out_dir);
    CHECK(run(args) == 0);
    CHECK(strstr(output, "| teacher |") && strstr(output, "| base |"));
    /* Every method of the grid trained and evaluated for both seeds. */
    static const char *const methods[] = {"sft", "kd", "cot", "cd_a", "cd_b", "sft_subnet", "kd_subnet", "cot_subnet",
                                          "cd_a_subnet", "cd_b_subnet"};
    for (size_t i = 0; i < sizeof methods / sizeof *methods; i++) {
        char row[64];
        snprintf(row, sizeof row, "| %s |", methods[i]);
        CHECK(strstr(output, row) != NULL);
        for (int seed = 0; seed < 2; seed++) {
            snprintf(path, sizeof path, "%s/models/%s-%d/model.safetensors", out_dir, methods[i], seed);
            CHECK(file_exists(path));
        }
    }
    CHECK(strstr(output, "strategy A map:") != NULL && strstr(output, "teacher traces") != NULL);
    snprintf(path, sizeof path, "%s/models/teacher/model.safetensors", out_dir);
    CHECK(file_exists(path));
    snprintf(path, sizeof path, "%s/models/student_base/config.json", out_dir);
    CHECK(file_exists(path));

    /* Again: every stage is skipped, the table is printed from the file. */
    CHECK(run(args) == 0);
    CHECK(strstr(output, "[train-teacher] done in an earlier run: skipped") != NULL);
    CHECK(strstr(output, "[eval-student-base] done in an earlier run: skipped") != NULL);
    CHECK(strstr(output, "[eval-cd_b_subnet-1] done in an earlier run: skipped") != NULL);
    CHECK(strstr(output, "step 1/") == NULL);
    CHECK(strstr(output, "| teacher |") != NULL);

    /* Interrupted and resumed == uninterrupted: a teacher mid-training, and a CD-B run mid-distillation (its
     * projection state is checkpointed beside the model). */
    char spec[4200];
    snprintf(spec, sizeof spec, "%s/long.yaml", tmp);
    write_long_spec(spec);
    check_resume(tmp, spec, "teacher", "checkpoints/teacher.ckpt", "models/teacher/model.safetensors");
    snprintf(spec, sizeof spec, "%s/long-distill.yaml", tmp);
    write_long_distill_spec(spec);
    check_resume(tmp, spec, "cd_b", "checkpoints/cd_b-0.ckpt", "models/cd_b-0/model.safetensors");
    snprintf(path, sizeof path, "%s/cd_b-broken/checkpoints/cd_b-0.ckpt.extra", tmp);
    CHECK(file_exists(path));

    /* MIB's own rows as the attribution-patching set. */
    char mib_spec[4200], mib_out[4200];
    snprintf(mib_spec, sizeof mib_spec, "%s/mib.yaml", tmp);
    {
        char *text = smoke_one_method("sft"), line[4400];
        snprintf(line, sizeof line, "\ndata:\n  mib_jsonl: [\"%s\"]\n",
                 testing_shared_path("data/mib_arithmetic/mib_arithmetic_addition_sample3.json"));
        write_replaced(mib_spec, text, "\ndata:\n", line);
        free(text);
    }
    snprintf(mib_out, sizeof mib_out, "%s/mib", tmp);
    snprintf(args, sizeof args, "run %s --output %s", mib_spec, mib_out);
    CHECK(run(args) == 0);
    if (!strstr(output, "| teacher |")) fprintf(stderr, "%s\n", output);

    /* A bad spec: exit 2 with file:line:col. */
    snprintf(path, sizeof path, "%s/bad.yaml", tmp);
    FILE *f = fopen(path, "w");
    fputs("name: bad\nseeds: [0]\nmodels: {teacher: {arch: {d_model: -3}}}\nbogus_key: 1\n", f);
    fclose(f);
    snprintf(args, sizeof args, "run %s --output %s/badout", path, tmp);
    CHECK(run(args) == 2);
    CHECK(strstr(output, "bad.yaml:") != NULL);

    /* The smoke run's results.h5 (read last: MPI is initialised only after every child circd has run, so that
     * they do not inherit this process's MPI environment). */
    int argc = 0;
    char **argv = NULL;
    MPI_Init(&argc, &argv);
    snprintf(path, sizeof path, "%s/results.h5", out_dir);
    struct results_file r;
    CHECK(results_open_readonly(&r, path, MPI_COMM_WORLD) == 0);
    const char *stages[] = {"data", "train-teacher", "eval-teacher", "train-student-base", "eval-student-base",
                            "atp-teacher", "atp-student-base", "circuit-teacher", "circuit-student-base",
                            "distill-cd_a-0", "eval-cd_a-0", "distill-cot_subnet-1", "eval-cd_b_subnet-1"};
    for (size_t i = 0; i < sizeof stages / sizeof stages[0]; i++) {
        char status[32];
        CHECK(results_stage_status(&r, stages[i], status, sizeof status) == 0 && strcmp(status, "done") == 0);
    }
    double v = -1;
    size_t n_circuit;
    CHECK(results_get_attr_f64(&r, "/runs/teacher/0/metrics", "id_accuracy", &v) == 0 && v >= 0 && v <= 1);
    CHECK(results_get_attr_f64(&r, "/runs/base/0/metrics", "ood_examples", &v) == 0 && v == 16);
    CHECK(results_get_attr_f64(&r, "/runs/teacher/train", "steps", &v) == 0 && v == 20);
    CHECK(results_exists(&r, "/runs/teacher/train/loss") && results_exists(&r, "/runs/teacher/train/accuracy"));
    float by_digits[32];
    int ndim = 0;
    uint64_t dims[4];
    CHECK(results_read_f32(&r, "/runs/teacher/0/accuracy_by_digits", by_digits, 32, &ndim, dims) == 0);
    CHECK(ndim == 2 && dims[0] == 5 && dims[1] == 4 && by_digits[0] == 1 && by_digits[16] == 5);
    float scores[64];
    CHECK(results_read_f32(&r, "/atp/teacher/nodes", scores, 64, &ndim, dims) == 0);
    CHECK(ndim == 2 && dims[0] == 2 * 4 + 2 && dims[1] == 2); /* smoke teacher: 2 layers x 4 heads + 2 MLPs */
    for (int i = 0; i < 10; i++) CHECK(scores[2 * i + 1] >= fabsf(scores[2 * i]) - 1e-6f);
    CHECK(results_get_attr_f64(&r, "/atp/teacher/exact", "spearman_with_atp", &v) == 0 && v >= -1 && v <= 1);
    /* Edge level (smoke.yaml): the MIB graph of 2 layers x 4 heads: 1 + 2 * 5 upstream, 2 * 13 + 1 downstream. */
    static float edges[11 * 27 * 2];
    CHECK(results_read_f32(&r, "/atp/teacher/edges", edges, 11 * 27 * 2, &ndim, dims) == 0);
    CHECK(ndim == 3 && dims[0] == 11 && dims[1] == 27 && dims[2] == 2);
    /* a0.h0 -> a0.h0<q> is no edge (NaN); input -> a0.h1<q> and input -> logits are. */
    CHECK(isnan(edges[2 * (1 * 27 + 0)]) && !isnan(edges[2 * 1]) && !isnan(edges[2 * 26]));
    CHECK(results_get_attr_f64(&r, "/atp/teacher/atp_star", "qk_fix_spearman", &v) == 0 && (isnan(v) || fabs(v) <= 1));
    /* Circuits: the full circuit (100 %) has f = 1, CPR and CMD in range, the NFS circuit stored. */
    float curve[10 * 7];
    CHECK(results_read_f32(&r, "/circuits/teacher/curve_abs", curve, 70, &ndim, dims) == 0);
    CHECK(ndim == 2 && dims[0] == 10 && dims[1] == 7 && curve[9 * 7] == 100);
    CHECK(fabsf(curve[9 * 7 + 6] - 1) < 1e-4f && curve[9 * 7 + 4] == 1);
    CHECK(results_get_attr_f64(&r, "/circuits/teacher", "cpr", &v) == 0 && isfinite(v));
    CHECK(results_get_attr_f64(&r, "/circuits/base", "cmd", &v) == 0 && isfinite(v) && v >= 0);
    CHECK(results_exists(&r, "/circuits/teacher/nfs_edges") && results_exists(&r, "/circuits/teacher/nfs_nodes"));
    /* Distillation: metrics per method and seed, strategy A's map. */
    CHECK(results_get_attr_f64(&r, "/runs/cd_a/0/metrics", "mean_cka", &v) == 0 && v >= 0 && v <= 1.0001);
    CHECK(results_get_attr_f64(&r, "/runs/cd_b/1/metrics", "robustness", &v) == 0 && v >= 0 && v <= 1);
    CHECK(results_get_attr_f64(&r, "/runs/kd_subnet/0/metrics", "ood_accuracy", &v) == 0 && v >= 0 && v <= 1);
    CHECK(results_get_attr_f64(&r, "/runs/sft/1/metrics", "nfs", &v) == 0);
    CHECK(results_exists(&r, "/distill/cd_a-0/map") && results_exists(&r, "/runs/cot/0/train_loss"));
    snprintf(path, sizeof path, "%s/circuits/teacher.json", out_dir);
    char *circuit = slurp(path, &n_circuit);
    CHECK(circuit && strstr(circuit, "\"edges\":{\"input->a0.h0<q>\""));
    free(circuit);
    CHECK(results_exists(&r, "/data/id_test/problems") && results_exists(&r, "/data/ood_test/problems"));
    size_t n;
    char *yaml = slurp(testing_source_path("experiments/smoke.yaml"), &n), stored[16384];
    CHECK(results_get_attr_str(&r, "/spec", "yaml", stored, sizeof stored) == 0);
    CHECK(yaml && strncmp(stored, yaml, n) == 0);
    free(yaml);
    results_close(&r);
    snprintf(path, sizeof path, "%s/results.h5", mib_out);
    CHECK(results_open_readonly(&r, path, MPI_COMM_WORLD) == 0);
    CHECK(results_get_attr_f64(&r, "/data/atp", "count", &v) == 0 && v == 3);
    results_close(&r);
    int rc = testing_finish();
    MPI_Finalize();
    return rc;
}
