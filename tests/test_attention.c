/* test_attention.c — the report stage's attention patterns (runtime/stages/stage_attention.c) on a cut-down smoke
 * experiment (one seed, methods sft and kd, node-level AtP): /attention/<row>/patterns [k, P, T, T] for teacher,
 * base, sft and kd; every row of a prompt's own tokens is a distribution over the causal part and 0 above the
 * diagonal, everything outside the prompt is 0; the teacher's heads are the top |mean signed AtP| heads of
 * /atp/teacher/nodes; the tokens joined are the prompt texts; a missing student model is skipped, not a failure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include "io/results.h"
#include "testing.h"

static char output[1 << 16];

/* smoke.yaml with each line starting with from[i] replaced by to[i]. */
static void write_spec(const char *path)
{
    static const char *const from[] = {"seeds:", "  methods:", "atp:", "  chain_of_thought:"};
    static const char *const to[] = {
        "seeds: [0]\n", "  methods: [sft, kd]\n",
        "atp: {level: node, ig_steps: 0, batch: 8, exact_patching_samples: 0, qk_fix: false, grad_drop: false}\n",
        "  chain_of_thought: false\n"};
    FILE *in = fopen(testing_source_path("experiments/smoke.yaml"), "r"), *out = fopen(path, "w");
    CHECK(in && out);
    char line[1024];
    int replaced = 0;
    while (in && out && fgets(line, sizeof line, in)) {
        size_t i = 0;
        while (i < sizeof from / sizeof *from && strncmp(line, from[i], strlen(from[i]))) i++;
        fputs(i < sizeof from / sizeof *from ? to[i] : line, out);
        replaced += i < sizeof from / sizeof *from;
    }
    CHECK(replaced == 4);
    if (in) fclose(in);
    if (out) fclose(out);
}

/* Token counts of each prompt line of the `tokens` attribute (tokens joined by U+001F); returns the prompt count. */
static int token_counts(const char *tokens, int *counts, int cap)
{
    int n = 0;
    for (const char *line = tokens; *line && n < cap; n++) {
        counts[n] = 1;
        for (; *line && *line != '\n'; line++) counts[n] += *line == '\x1f';
        if (*line) line++;
    }
    return n;
}

/* The tokens of each prompt, special tokens dropped, concatenated, must read as that prompt. */
static void check_tokens_spell_prompts(const char *tokens, const char *prompts)
{
    char joined[4096];
    size_t n = 0;
    for (const char *c = tokens; *c && n + 1 < sizeof joined; c++) {
        if (!strncmp(c, "<bos>", 5) || !strncmp(c, "<sep>", 5)) { c += 4; continue; }
        if (*c != '\x1f') joined[n++] = *c;
    }
    joined[n] = '\0';
    CHECK(strcmp(joined, prompts) == 0);
    if (strcmp(joined, prompts)) printf("tokens read \"%s\", prompts \"%s\"\n", joined, prompts);
}

/* Checks /attention/<row>/patterns; returns k (0 when missing) and the heads attribute in heads. */
static int check_row(struct results_file *r, const char *row, int want_k, char *heads, size_t cap)
{
    char path[128], prompts[2048], tokens[4096], sep[32];
    snprintf(path, sizeof path, "/attention/%s/patterns", row);
    static float patterns[4 * 3 * 128 * 128];
    int ndim = 0, counts[8];
    uint64_t dims[4] = {0};
    CHECK(results_read_f32(r, path, patterns, sizeof patterns / sizeof *patterns, &ndim, dims) == 0);
    CHECK(ndim == 4 && dims[0] == (uint64_t)want_k && dims[1] == 3 && dims[2] == dims[3] && dims[2] > 5);
    if (ndim != 4 || dims[0] != (uint64_t)want_k || dims[1] != 3) return 0;
    CHECK(results_get_attr_str(r, path, "heads", heads, cap) == 0);
    CHECK(results_get_attr_str(r, path, "prompts", prompts, sizeof prompts) == 0);
    CHECK(results_get_attr_str(r, path, "tokens", tokens, sizeof tokens) == 0);
    CHECK(results_get_attr_str(r, path, "token_separator", sep, sizeof sep) == 0 && !strcmp(sep, "U+001F"));
    double seed = -1;
    CHECK(results_get_attr_f64(r, path, "seed", &seed) == 0 && seed == 0);
    check_tokens_spell_prompts(tokens, prompts);
    CHECK(token_counts(tokens, counts, 8) == 3);
    int T = (int)dims[2], longest = 0, lines = 0;
    for (const char *c = heads; *c; c++) lines += *c == '\n';
    CHECK(lines == want_k);
    for (int p = 0; p < 3; p++) longest = counts[p] > longest ? counts[p] : longest;
    CHECK(longest == T);
    double worst_sum = 0, above = 0, outside = 0;
    for (int k = 0; k < want_k; k++)
        for (int p = 0; p < 3; p++) {
            const float *a = patterns + ((size_t)k * 3 + p) * T * T;
            for (int q = 0; q < T; q++) {
                double sum = 0;
                for (int j = 0; j < T; j++) {
                    double v = a[q * T + j];
                    if (q >= counts[p] || j >= counts[p]) outside = fmax(outside, fabs(v));
                    else if (j > q) above = fmax(above, fabs(v));
                    else {
                        CHECK(v >= 0);
                        sum += v;
                    }
                }
                if (q < counts[p]) worst_sum = fmax(worst_sum, fabs(sum - 1));
            }
        }
    printf("%s: %d heads on 3 prompts of up to %d tokens; max |row sum - 1| %.2g\n", row, want_k, T, worst_sum);
    CHECK(worst_sum < 1e-5);
    CHECK(above == 0);
    CHECK(outside == 0);
    return want_k;
}

/* The top-4 heads by |mean signed score| in /atp/teacher/nodes, as the heads attribute writes them. */
static void expected_teacher_heads(struct results_file *r, char *want, size_t cap)
{
    float scores[64];
    char names[2048];
    int ndim = 0, taken[32] = {0}, layer[32], head[32];
    uint64_t dims[4] = {0};
    CHECK(results_read_f32(r, "/atp/teacher/nodes", scores, 64, &ndim, dims) == 0);
    CHECK(results_get_attr_str(r, "/atp/teacher/nodes", "nodes", names, sizeof names) == 0);
    int n = (int)dims[0], heads = 0;
    CHECK(n == 10); /* 2 layers x (4 heads + MLP) */
    char *line = names;
    for (int i = 0; i < n && i < 32; i++) {
        if (sscanf(line, "blocks.%d.attn.hook_z[%d]", &layer[i], &head[i]) != 2) taken[i] = 1; /* an MLP */
        else heads++;
        line = strchr(line, '\n') + 1;
    }
    CHECK(heads == 8);
    want[0] = '\0';
    for (int k = 0; k < 4; k++) {
        int best = -1;
        for (int i = 0; i < n; i++)
            if (!taken[i] && (best < 0 || fabsf(scores[2 * i]) > fabsf(scores[2 * best]))) best = i;
        taken[best] = 1;
        snprintf(want + strlen(want), cap - strlen(want), "blocks.%d.attn.hook_pattern[%d]\n", layer[best],
                 head[best]);
    }
}

int main(int argc, char **argv)
{
    char spec[4200], out_dir[4200], args[9000], path[4400], heads[512], want[512], yaml[8192];
    const char *tmp = testing_tmpdir();
    snprintf(spec, sizeof spec, "%s/attention.yaml", tmp);
    write_spec(spec);
    snprintf(out_dir, sizeof out_dir, "%s/attention", tmp);
    snprintf(args, sizeof args, "run %s --output %s", spec, out_dir);
    CHECK(testing_run_circd(args, output, sizeof output) == 0);
    CHECK(strstr(output, "[report] attention patterns of teacher: 4 heads on 3 prompts") != NULL);

    MPI_Init(&argc, &argv);
    struct results_file r;
    snprintf(path, sizeof path, "%s/results.h5", out_dir);
    CHECK(results_open_readonly(&r, path, MPI_COMM_WORLD) == 0);
    CHECK(check_row(&r, "teacher", 4, heads, sizeof heads) == 4);
    expected_teacher_heads(&r, want, sizeof want);
    CHECK(strcmp(heads, want) == 0);
    if (strcmp(heads, want)) printf("teacher heads:\n%swanted:\n%s", heads, want);
    /* The student has 2 heads in all: k is 2; every student row uses the student base's heads. */
    char student_heads[512];
    CHECK(check_row(&r, "base", 2, heads, sizeof heads) == 2);
    CHECK(check_row(&r, "sft", 2, student_heads, sizeof student_heads) == 2 && !strcmp(heads, student_heads));
    CHECK(check_row(&r, "kd", 2, student_heads, sizeof student_heads) == 2 && !strcmp(heads, student_heads));
    CHECK(results_get_attr_str(&r, "/spec", "yaml", yaml, sizeof yaml) == 0);
    CHECK(results_close(&r) == 0);

    /* A report redone with kd's model gone: the row is skipped with a line on stderr, the run still succeeds. */
    snprintf(args, sizeof args, "rm -rf %s/models/kd-0 %s/stages/report.h5", out_dir, out_dir);
    CHECK(system(args) == 0);
    CHECK(results_open(&r, path, MPI_COMM_WORLD, yaml) == 0);
    CHECK(results_set_attr_str(&r, "/stages/report", "status", "running") == 0);
    CHECK(results_close(&r) == 0);
    snprintf(args, sizeof args, "run %s --output %s", spec, out_dir);
    CHECK(testing_run_circd(args, output, sizeof output) == 0);
    CHECK(strstr(output, "[report] attention patterns of sft: 2 heads") != NULL);
    CHECK(strstr(output, "kd-0; row kd skipped") != NULL);
    MPI_Finalize();
    return testing_finish();
}
