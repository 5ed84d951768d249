/* test_spec_errors.c — every kind of spec error, each checked for its return code, its kind, its exact
 * FILE:LINE:COL and the found/expected text: bad YAML syntax (and anchors, aliases, tags, several documents, deep
 * nesting, non-UTF-8), wrong type, out of range, missing key, unknown key (with suggestions), duplicate key, dangling
 * reference, inconsistent values, several errors in one run, an unreadable file, and the error cap. Inputs live in
 * tests/data/spec/ (files) or inline (in-memory loader). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "spec/spec.h"
#include "testing.h"
#include "util/error.h"

struct want {
    enum spec_error_kind kind;
    int line, col;
    const char *text;   /* must appear after "ORIGIN:LINE:COL: " */
};

static void check_errors(const char *origin, int rc, const struct spec_errors *errs, const struct want *w, int n)
{
    CHECK(rc == CIRCD_EINPUT);
    CHECK(errs->n == n);
    int ok = errs->n == n;
    for (int i = 0; i < n && i < errs->n; i++) {
        const struct spec_error *e = &errs->items[i];
        char prefix[4400];
        snprintf(prefix, sizeof prefix, "%s:%d:%d: ", origin, w[i].line, w[i].col);
        int good = e->kind == w[i].kind && e->line == w[i].line && e->col == w[i].col &&
                   !strncmp(e->text, prefix, strlen(prefix)) && strstr(e->text + strlen(prefix), w[i].text);
        CHECK(good);
        if (!good) {
            ok = 0;
            fprintf(stderr, "  want %s[%s] %s\n", prefix, spec_error_kind_name(w[i].kind), w[i].text);
        }
    }
    if (!ok) spec_errors_print(errs, stderr);
}

static void expect_file(const char *name, const struct want *w, int n)
{
    char rel[256];
    snprintf(rel, sizeof rel, "tests/data/spec/%s", name);
    const char *path = testing_source_path(rel);
    struct experiment_spec s;
    struct spec_errors errs = {0};
    int rc = spec_load(path, &s, &errs);
    check_errors(path, rc, &errs, w, n);
    CHECK(s.name == NULL && s.yaml == NULL); /* nothing left to free */
    /* err_msg() holds the first error and the count of the others. */
    if (errs.n) CHECK(!strncmp(err_msg(), errs.items[0].text, strlen(errs.items[0].text)));
    if (errs.n > 1) CHECK(strstr(err_msg(), "more error") != NULL);
    spec_errors_free(&errs);
}

static void expect_text(const char *text, size_t len, const char *base_dir, const struct want *w, int n)
{
    struct experiment_spec s;
    struct spec_errors errs = {0};
    int rc = spec_load_string(text, len, "mem.yaml", base_dir, &s, &errs);
    check_errors("mem.yaml", rc, &errs, w, n);
    spec_errors_free(&errs);
}
#define EXPECT_TEXT(text, dir, ...)                                                                  \
    do {                                                                                             \
        static const struct want w_[] = {__VA_ARGS__};                                               \
        expect_text(text, sizeof text - 1, dir, w_, (int)(sizeof w_ / sizeof w_[0]));                \
    } while (0)
#define EXPECT_FILE(name, ...)                                                                       \
    do {                                                                                             \
        static const struct want w_[] = {__VA_ARGS__};                                               \
        expect_file(name, w_, (int)(sizeof w_ / sizeof w_[0]));                                      \
    } while (0)

/* Two valid models, to which a test appends its own lines. */
#define MODELS "name: t\nmodels:\n  teacher: {arch: {d_model: 32, n_layers: 2, n_heads: 4}}\n" \
               "  student: {arch: {d_model: 16, n_layers: 1, n_heads: 2}}\n"

static void test_syntax(void)
{
    EXPECT_FILE("syntax.yaml", {SPEC_ERR_SYNTAX, 6, 10, "bad YAML: did not find expected ',' or '}' (while parsing "
                                "a flow mapping at line 5, column 11), expected well-formed YAML"});
    EXPECT_FILE("syntax_indent.yaml", {SPEC_ERR_SYNTAX, 5, 2, "bad YAML: did not find expected key (while parsing a "
                                       "block mapping at line 2, column 1), expected well-formed YAML"});
    EXPECT_FILE("alias.yaml",
                {SPEC_ERR_SYNTAX, 5, 11, "found anchor &small, expected no YAML anchors or aliases"},
                {SPEC_ERR_SYNTAX, 7, 11, "found alias *small, expected no YAML anchors or aliases"});
    EXPECT_TEXT(MODELS "---\nname: u\n", NULL, {SPEC_ERR_SYNTAX, 5, 1, "found a second YAML document, expected "
                                                "exactly one"});
    EXPECT_TEXT(MODELS "data: {seed: !!int 3}\n", NULL, {SPEC_ERR_SYNTAX, 5, 14, "found tag tag:yaml.org,2002:int, "
                                                         "expected an untagged value"});
    EXPECT_TEXT("name: \"caf\xff\"\n", NULL, {SPEC_ERR_SYNTAX, 1, 11, "found invalid leading UTF-8 octet (byte "
                                              "#xFF), expected UTF-8 text"});
    char deep[300];
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    deep[200] = '\0';
    expect_text(deep, 200, NULL, (const struct want[]){{SPEC_ERR_SYNTAX, 1, 65, "found nesting deeper than 64 "
                                                        "levels"}}, 1);
    EXPECT_TEXT("", NULL, {SPEC_ERR_MISSING, 1, 1, "found an empty document, expected a mapping with at least name "
                           "and models"});
    EXPECT_TEXT("# only a comment\n", NULL, {SPEC_ERR_MISSING, 1, 1, "found an empty document"});
}

static void test_type(void)
{
    EXPECT_FILE("type.yaml",
                {SPEC_ERR_TYPE, 5, 35, "models.teacher.arch.n_layers: found string \"two\", expected an integer in "
                                       "[1, 1024]"},
                {SPEC_ERR_TYPE, 9, 19, "data.reverse_answer: found string \"yes\", expected true or false"},
                {SPEC_ERR_TYPE, 10, 15, "data.operations: found string \"add\", expected a list of distinct items "
                                        "from add, sub (at least one)"},
                {SPEC_ERR_TYPE, 13, 12, "training.teacher.steps: found string \"100\", expected an integer in "
                                        "[1, 1000000000]"},
                {SPEC_ERR_TYPE, 14, 9, "training.teacher.lr: found a list of 1 item, expected a number in (0, 1]"});
    EXPECT_TEXT("- name\n- models\n", NULL, {SPEC_ERR_TYPE, 1, 1, "top level: found a list of 2 items, expected a "
                                             "mapping with keys name, output, seeds, models"});
    EXPECT_TEXT(MODELS "training: {teacher: {steps: 1.5, curriculum: on}}\n", NULL,
                {SPEC_ERR_TYPE, 5, 29, "training.teacher.steps: found number 1.5, expected an integer"},
                {SPEC_ERR_TYPE, 5, 46, "training.teacher.curriculum: found string \"on\", expected true or false "
                                       "(YAML 1.1's yes/no/on/off are strings in YAML 1.2)"});
    EXPECT_TEXT(MODELS "? [a, b]\n: 1\n", NULL, {SPEC_ERR_TYPE, 5, 3, "top level: found a list of 2 items, expected "
                                                 "a key name"});
    EXPECT_TEXT("name: t\nmodels:\n  teacher: small\n  student: {arch: {d_model: 16, n_layers: 1, n_heads: 2}}\n",
                NULL, {SPEC_ERR_TYPE, 3, 12, "models.teacher: found string \"small\", expected a mapping with either "
                                             "arch"});
    EXPECT_TEXT(MODELS "distill: {methods: [[sft]]}\n", NULL, {SPEC_ERR_TYPE, 5, 21, "distill.methods[0]: found a "
                                                               "list of 1 item, expected a method name"});
}

static void test_range(void)
{
    EXPECT_FILE("range.yaml",
                {SPEC_ERR_RANGE, 3, 9, "seeds[0]: found integer -1, expected an integer in [0, 2147483647]"},
                {SPEC_ERR_RANGE, 6, 21, "models.teacher.arch.d_model: found integer 1, expected an integer in "
                                        "[2, 65536]"},
                {SPEC_ERR_RANGE, 10, 17, "data.train_digits: found [0, 3], expected a digit count N or a range "
                                         "[LO, HI] with 1 <= LO <= HI <= 9"},
                {SPEC_ERR_RANGE, 11, 14, "data.tokenizer: found string \"bpe\", expected one of digit, "
                                         "llama3_chunks"},
                {SPEC_ERR_RANGE, 14, 9, "training.teacher.lr: found integer 2, expected a number in (0, 1]"},
                {SPEC_ERR_RANGE, 16, 16, "circuit.sizes[1]: found integer 150, expected a number in (0, 100]"},
                {SPEC_ERR_RANGE, 18, 16, "distill.temperature: found integer 0, expected a number in (0, 100]"});
    EXPECT_TEXT(MODELS "name2: x\n", NULL, {SPEC_ERR_UNKNOWN, 5, 1, "did you mean name?"});
    EXPECT_TEXT("name: \"has space\"\n" "models:\n  teacher: {arch: {d_model: 32, n_layers: 2, n_heads: 4}}\n"
                "  student: {arch: {d_model: 16, n_layers: 1, n_heads: 2}}\n",
                NULL, {SPEC_ERR_RANGE, 1, 7, "name: found string \"has space\", expected a name of at most 128"});
    EXPECT_TEXT(MODELS "training: {teacher: {lr: .nan, schedule: cosine}}\ndata: {templates_add: []}\n", NULL,
                {SPEC_ERR_RANGE, 5, 26, "training.teacher.lr: found number .nan, expected a number in (0, 1]"},
                {SPEC_ERR_RANGE, 5, 42, "training.teacher.schedule: found string \"cosine\", expected one of "
                                        "warmup_cosine, constant, constant_then_decay (did you mean warmup_cosine?)"},
                {SPEC_ERR_RANGE, 6, 23, "data.templates_add: found a list of 0 items, expected a list of 1 to 64 "
                                        "strings, each with one {x} and one {y}"});
    EXPECT_TEXT(MODELS "data: {templates_sub: [\"{x} minus {x}\", \"{y} {x} {z}\"]}\n", NULL,
                {SPEC_ERR_RANGE, 5, 24, "data.templates_sub[0]: found string \"{x} minus {x}\" with 2 {x}, 0 {y} and "
                                        "0 other braces, expected exactly one {x}, one {y} and no other braces"},
                {SPEC_ERR_RANGE, 5, 41, "with 1 {x}, 1 {y} and 2 other braces"});
    EXPECT_TEXT(MODELS "distill: {methods: [sft, cd_c, distil]}\n", NULL,
                {SPEC_ERR_RANGE, 5, 26, "distill.methods[1]: found string \"cd_c\", expected one of sft, kd, cot, "
                                        "cd_a, cd_b, optionally with _subnet, or a mapping with key method (did you "
                                        "mean cd_a?)"},
                {SPEC_ERR_RANGE, 5, 32, "distill.methods[2]: found string \"distil\""});
}

static void test_missing(void)
{
    EXPECT_FILE("missing.yaml",
                {SPEC_ERR_MISSING, 2, 1, "top level: found no key \"name\", expected name: a name of letters"},
                {SPEC_ERR_MISSING, 4, 11, "models.teacher.arch: found no key \"n_heads\", expected n_heads: an "
                                          "integer in [1, 1024] (query heads per layer)"},
                {SPEC_ERR_UNKNOWN, 6, 5, "models.student: found unknown key \"tie_embeddings\", expected one of "
                                         "arch, checkpoint (a key of that name belongs in models.teacher.arch, "
                                         "models.student.arch)"},
                {SPEC_ERR_MISSING, 6, 5, "models.student: found neither arch nor checkpoint, expected arch: "
                                         "{d_model: ..., n_layers: ..., n_heads: ...} or checkpoint: DIR"},
                {SPEC_ERR_MISSING, 8, 18, "distill.methods[1]: found no key \"method\", expected method: one of "
                                          "sft, kd, cot, cd_a, cd_b"});
    /* An empty arch is an empty mapping: its required keys are still missing. */
    EXPECT_TEXT("name: t\nmodels:\n  teacher:\n    arch:\n  student: {arch: {d_model: 16, n_layers: 1, n_heads: 2}}\n",
                NULL, {SPEC_ERR_MISSING, 4, 10, "models.teacher.arch: found no key \"d_model\""},
                {SPEC_ERR_MISSING, 4, 10, "models.teacher.arch: found no key \"n_layers\""},
                {SPEC_ERR_MISSING, 4, 10, "models.teacher.arch: found no key \"n_heads\""});
    EXPECT_TEXT("name: t\n", NULL, {SPEC_ERR_MISSING, 1, 1, "top level: found no key \"models\", expected models: "
                                    "a mapping (teacher and student)"});
    EXPECT_TEXT("name: t\nmodels: {teacher: {arch: {d_model: 32, n_layers: 2, n_heads: 4}}}\n", NULL,
                {SPEC_ERR_MISSING, 2, 9, "models: found no key \"student\", expected student: a mapping with either "
                                         "arch or checkpoint"});
}

static void test_unknown(void)
{
    EXPECT_FILE("unknown.yaml",
                {SPEC_ERR_UNKNOWN, 3, 1, "top level: found unknown key \"seed\", expected a key of the top level "
                                         "(did you mean seeds?)"},
                {SPEC_ERR_UNKNOWN, 10, 3, "data: found unknown key \"tokenizr\", expected a key of data (did you "
                                          "mean tokenizer?)"},
                {SPEC_ERR_UNKNOWN, 12, 3, "distill: found unknown key \"lr\", expected one of methods, lambda_task, "
                                          "lambda_kd, lambda_align, temperature, kl_direction, cka_unbiased, "
                                          "align_rows, circuit_size (a key of that name belongs in "
                                          "training.teacher, training.student_base, training.distill)"},
                {SPEC_ERR_UNKNOWN, 13, 3, "distill: found unknown key \"flavour\", expected one of methods"});
    EXPECT_TEXT(MODELS "distill: {methods: [{method: kd, subnet: true}]}\n", NULL,
                {SPEC_ERR_UNKNOWN, 5, 34, "distill.methods[0]: found unknown key \"subnet\", expected a key of "
                                          "distill.methods[0] (did you mean subnetwork?)"});
}

static void test_duplicate(void)
{
    EXPECT_FILE("duplicate.yaml",
                {SPEC_ERR_DUPLICATE, 3, 15, "seeds[2]: found seed 0 a second time, expected distinct seeds"},
                {SPEC_ERR_DUPLICATE, 10, 21, "data.operations[1]: found add a second time, expected each item once"},
                {SPEC_ERR_DUPLICATE, 12, 22, "distill.methods[2]: found run kd a second time (first at line 12, "
                                             "column 18), expected each method run once"},
                {SPEC_ERR_DUPLICATE, 13, 1, "top level: found key \"name\" a second time (first at line 2, column "
                                            "1), expected each key once"});
    EXPECT_TEXT(MODELS "distill: {methods: [cd_a_subnet, {method: cd_a, subnetwork: true}]}\n", NULL,
                {SPEC_ERR_DUPLICATE, 5, 34, "distill.methods[1]: found run cd_a_subnet a second time (first at "
                                            "line 5, column 21)"});
}

static void test_dangling(void)
{
    EXPECT_FILE("dangling.yaml",
                {SPEC_ERR_DANGLING, 5, 17, "models.teacher.checkpoint: found string \"no_such_checkpoint\" ("},
                {SPEC_ERR_DANGLING, 7, 17, "models.student.checkpoint: found directory "},
                {SPEC_ERR_DANGLING, 9, 31, "data.mib_jsonl[1]: found string \"missing.jsonl\" ("});
    EXPECT_FILE("dangling.yaml", {SPEC_ERR_DANGLING, 5, 17, "tests/data/spec/no_such_checkpoint), which does not "
                                  "exist (No such file or directory), expected a Hugging Face checkpoint directory "
                                  "containing config.json"},
                {SPEC_ERR_DANGLING, 7, 17, "tests/data/spec/ckpt_no_config without config.json, expected a Hugging "
                                           "Face checkpoint directory containing config.json"},
                {SPEC_ERR_DANGLING, 9, 31, "tests/data/spec/missing.jsonl), which does not exist"});
    const char *dir = testing_source_path("tests/data/spec");
    EXPECT_TEXT(MODELS "data: {mib_jsonl: [ckpt_no_config]}\n", dir,
                {SPEC_ERR_DANGLING, 5, 20, "ckpt_no_config), which is a directory, expected an existing MIB JSONL"});
    EXPECT_TEXT("name: t\nmodels:\n  teacher: {checkpoint: ckpt_no_weights}\n  student: {checkpoint: minimal.yaml}\n",
                dir, {SPEC_ERR_DANGLING, 3, 25, "ckpt_no_weights without model.safetensors or "
                                                "model.safetensors.index.json, expected the checkpoint's weights"},
                {SPEC_ERR_DANGLING, 4, 25, "minimal.yaml), which is not a directory, expected a Hugging Face"});
    /* A config.json that exists but is not a usable Llama config. */
    char bad[4200], cfg[4300];
    snprintf(bad, sizeof bad, "%s/bad_ckpt", testing_tmpdir());
    mkdir(bad, 0755);
    snprintf(cfg, sizeof cfg, "%s/config.json", bad);
    FILE *f = fopen(cfg, "w");
    fputs("{\"hidden_size\": 8", f);
    fclose(f);
    EXPECT_TEXT(MODELS "models: {teacher: {checkpoint: bad_ckpt}}\n", testing_tmpdir(),
                {SPEC_ERR_DUPLICATE, 5, 1, "found key \"models\" a second time"});
    EXPECT_TEXT("name: t\nmodels:\n  teacher: {checkpoint: bad_ckpt}\n  student: {arch: {d_model: 16, n_layers: 1, "
                "n_heads: 2}}\n", testing_tmpdir(),
                {SPEC_ERR_DANGLING, 3, 25, "models.teacher.checkpoint: found a config.json that cannot be used ("});
}

static void test_inconsistent(void)
{
    EXPECT_FILE("inconsistent.yaml",
                {SPEC_ERR_INCONSISTENT, 5, 62, "models.teacher.arch.n_kv_heads: found 3, which does not divide "
                                               "n_heads = 4, expected a divisor of n_heads"},
                {SPEC_ERR_INCONSISTENT, 7, 11, "models.student.arch: found head_dim = d_model / n_heads = 9, which "
                                               "is odd, expected an even head width"},
                {SPEC_ERR_INCONSISTENT, 9, 3, "data.ood_test_digits: found 5, which the teacher never trains on "
                                              "(data.train_digits = [1, 4]), expected lengths inside train_digits"},
                {SPEC_ERR_INCONSISTENT, 10, 25, "data.student_train_digits: found [1, 5], which overlaps "
                                                "data.ood_test_digits = 5, expected the OOD lengths to stay out of "
                                                "every student-facing training set"},
                {SPEC_ERR_INCONSISTENT, 11, 21, "data.chain_of_thought: found false while distill.methods has cot, "
                                                "expected true"},
                {SPEC_ERR_INCONSISTENT, 15, 19, "training.teacher.warmup_steps: found 100 with steps = 100, expected "
                                                "fewer warm-up steps than steps"},
                {SPEC_ERR_INCONSISTENT, 16, 21, "training.teacher.length_weights: found 2 weights, expected 4: one "
                                                "per operand length 1..4 of data.train_digits"},
                {SPEC_ERR_INCONSISTENT, 18, 10, "circuit.sizes: found 2 after 5, expected strictly increasing sizes"},
                {SPEC_ERR_INCONSISTENT, 22, 28, "parallel.teacher_pipeline_stages: found 3, expected at most the "
                                                "teacher's 2 layers"});
    EXPECT_TEXT("name: t\nmodels:\n  teacher: {arch: {d_model: 32, n_layers: 2, n_heads: 4}, checkpoint: x}\n"
                "  student: {arch: {d_model: 16, n_layers: 1, n_heads: 2}}\n", testing_source_path("tests/data/spec"),
                {SPEC_ERR_INCONSISTENT, 3, 12, "models.teacher: found both arch and checkpoint, expected exactly "
                                               "one"},
                {SPEC_ERR_DANGLING, 3, 71, "models.teacher.checkpoint: found string \"x\""});
    EXPECT_TEXT(MODELS "data: {operations: [add], atp_digits: 1, atp_counterfactuals: [tens_op1], "
                "id_test_digits: [1, 2]}\n"
                "distill: {methods: [{method: sft, lambda_task: 0}, {method: cot, lambda_align: 1}]}\n", NULL,
                {SPEC_ERR_INCONSISTENT, 5, 7, "data.eval_counterfactuals: found a tens_* kind with "
                                              "data.id_test_digits starting at 1 digit"},
                {SPEC_ERR_INCONSISTENT, 5, 63, "data.atp_counterfactuals: found a tens_* kind with "
                                               "data.atp_digits starting at 1 digit"},
                {SPEC_ERR_INCONSISTENT, 6, 20, "distill.methods: found run sft with every loss weight 0, expected a "
                                               "positive lambda_task"},
                {SPEC_ERR_INCONSISTENT, 6, 80, "distill.methods[1].lambda_align: found an alignment weight for cot, "
                                               "which has no CKA term"});
    EXPECT_TEXT(MODELS "training: {distill: {batch: 2}}\n"
                "parallel: {teacher_pipeline_stages: 2, data_parallel_ranks: 3}\n", NULL,
                {SPEC_ERR_INCONSISTENT, 6, 61, "parallel.data_parallel_ranks: found 3 with teacher_pipeline_stages "
                                               "2, expected one of the two to be 1"},
                {SPEC_ERR_INCONSISTENT, 6, 61, "parallel.data_parallel_ranks: found 3, expected at most "
                                               "training.distill.batch = 2 (every rank takes rows of each batch)"});
}

static void test_several_and_limits(void)
{
    EXPECT_FILE("several.yaml",
                {SPEC_ERR_INCONSISTENT, 5, 62, "models.teacher.arch.n_kv_heads: found 3"},
                {SPEC_ERR_DANGLING, 7, 17, "models.student.checkpoint: found string \"no_such_checkpoint\""},
                {SPEC_ERR_TYPE, 10, 17, "data.id_test_size: found string \"lots\", expected an integer"},
                {SPEC_ERR_RANGE, 11, 13, "data.atp_size: found integer 0, expected an integer in [1, 10000000]"},
                {SPEC_ERR_UNKNOWN, 14, 5, "training.teacher: found unknown key \"stepz\", expected a key of "
                                          "training.teacher (did you mean steps?)"},
                {SPEC_ERR_DUPLICATE, 16, 5, "training.teacher: found key \"batch\" a second time (first at line 15, "
                                            "column 5)"},
                {SPEC_ERR_MISSING, 18, 13, "distill.methods[0]: found no key \"method\""});

    /* An unreadable file: CIRCD_EIO and one error without a position. */
    struct experiment_spec s;
    struct spec_errors errs = {0};
    CHECK(spec_load("/nonexistent/spec.yaml", &s, &errs) == CIRCD_EIO);
    CHECK(errs.n == 1 && errs.items[0].kind == SPEC_ERR_IO && errs.items[0].line == 0);
    CHECK(errs.n == 1 && !strcmp(errs.items[0].text, "/nonexistent/spec.yaml: cannot open: No such file or "
                                                      "directory"));
    spec_errors_free(&errs);
    CHECK(spec_load("/nonexistent/spec.yaml", &s, NULL) == CIRCD_EIO);

    /* 300 unknown keys: SPEC_MAX_ERRORS kept, the rest counted. */
    size_t cap = 300 * 16 + 1, n = 0;
    char *text = malloc(cap);
    for (int i = 0; i < 300; i++) n += (size_t)snprintf(text + n, cap - n, "k%03d: 1\n", i);
    CHECK(spec_load_string(text, n, "many.yaml", NULL, &s, &errs) == CIRCD_EINPUT);
    CHECK(errs.n == SPEC_MAX_ERRORS && errs.dropped == 300 + 2 - SPEC_MAX_ERRORS); /* + missing name, models */
    CHECK(strstr(err_msg(), "(and 301 more errors)") != NULL);
    spec_errors_free(&errs);
    free(text);

    /* A text over 1 MiB is refused before parsing. */
    size_t big = (1u << 20) + 10;
    text = malloc(big);
    memset(text, ' ', big);
    CHECK(spec_load_string(text, big, "big.yaml", NULL, &s, &errs) == CIRCD_EINPUT);
    CHECK(errs.n == 1 && errs.items[0].kind == SPEC_ERR_RANGE && strstr(errs.items[0].text, "big.yaml:1:1: found a "
                                                                        "file of 1048586 bytes"));
    spec_errors_free(&errs);
    free(text);

    /* A NUL byte inside a string value is refused, not truncated. */
    static const char nul[] = "name: \"a\\0b\"\n";
    expect_text(nul, sizeof nul - 1, NULL, (const struct want[]){
        {SPEC_ERR_MISSING, 1, 1, "top level: found no key \"models\""},
        {SPEC_ERR_RANGE, 1, 7, "name: found string \"a\\x00b\", expected"}}, 2);
}

int main(void)
{
    test_syntax();
    test_type();
    test_range();
    test_missing();
    test_unknown();
    test_duplicate();
    test_dangling();
    test_inconsistent();
    test_several_and_limits();
    return testing_finish();
}
