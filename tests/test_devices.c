/* test_devices.c — where stages compute: the spec's `device:`, `devices:` and `precision:` (good values, resolution
 * with an exact stage name winning over its kind and a kind over `device:`, the default; bad values, unknown stages
 * with a suggestion, duplicates, cuda on data / report, bf16 with every stage on the CPU — each as FILE:LINE:COL);
 * the plan's stage names and kinds agree with the spec's (every plan stage can be named in devices:, and only it
 * moves); `circd plan` prints each stage's device; and, where this process cannot use a GPU, `circd run` with a
 * cuda stage and `--device cuda` on forward / generate / atp / faithfulness exit 2 naming the stage, the spec field
 * and the reason before any work. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "plan/plan.h"
#include "spec/spec.h"
#include "stages/placement.h"
#include "testing.h"

static const char *base_yaml =
    "name: dev\n"
    "models:\n"
    "  teacher: {arch: {d_model: 32, n_layers: 2, n_heads: 4}}\n"
    "  student: {arch: {d_model: 16, n_layers: 1, n_heads: 2}}\n"
    "seeds: [0, 1]\n"
    "distill: {methods: [sft, kd]}\n";

static char output[1 << 16];

/* Loads base_yaml + extra; returns the rc, errors into *errs (caller frees). */
static int load(const char *extra, struct experiment_spec *s, struct spec_errors *errs)
{
    char text[4096];
    snprintf(text, sizeof text, "%s%s", base_yaml, extra);
    memset(errs, 0, sizeof *errs);
    return spec_load_string(text, strlen(text), "dev.yaml", NULL, s, errs);
}

/* The spec errors with `extra` must be exactly one, containing `want`. */
static void expect_error(const char *extra, const char *want)
{
    struct experiment_spec s;
    struct spec_errors errs;
    int rc = load(extra, &s, &errs);
    int found = errs.n == 1 && strstr(errs.items[0].text, want) != NULL;
    CHECK(rc == 2 && found);
    if (!found) {
        fprintf(stderr, "  spec tail:\n%s  wanted one error with: %s\n  got:\n", extra, want);
        spec_errors_print(&errs, stderr);
    }
    spec_errors_free(&errs);
    spec_free(&s);
}

static enum spec_device device_of(const struct plan *p, const char *stage)
{
    int i = plan_find(p, stage);
    CHECK(i >= 0);
    return i >= 0 ? p->stages[i].device : (enum spec_device)-1;
}

static void test_defaults_and_resolution(void)
{
    struct experiment_spec s;
    struct spec_errors errs;
    CHECK(load("", &s, &errs) == 0);
    CHECK(s.device == SPEC_DEVICE_CPU && s.precision == SPEC_PRECISION_FP32 && s.devices.n == 0);
    int rule = 0;
    CHECK(spec_stage_device(&s, "atp-teacher", "atp", &rule) == SPEC_DEVICE_CPU && rule == SPEC_DEVICE_FROM_DEFAULT);
    spec_errors_free(&errs);
    spec_free(&s);

    /* Line 7: device, line 8: devices, 9-12 its entries, 13: precision. */
    CHECK(load("device: cuda\n"
               "devices:\n"
               "  atp: cpu\n"
               "  atp-teacher: cuda\n"
               "  eval: cpu\n"
               "  distill-kd-1: cpu\n"
               "precision: bf16\n", &s, &errs) == 0);
    spec_errors_print(&errs, stderr);
    CHECK(s.device == SPEC_DEVICE_CUDA && s.precision == SPEC_PRECISION_BF16 && s.devices.n == 4);
    CHECK(s.device_line == 7 && s.devices.items[1].line == 10 && !strcmp(s.devices.items[1].key, "atp-teacher"));
    /* The exact name wins over the kind, the kind over device:, eval covers eval-<run>-<seed>. */
    CHECK(spec_stage_device(&s, "atp-teacher", "atp", &rule) == SPEC_DEVICE_CUDA && rule == 1);
    CHECK(spec_stage_device(&s, "atp-student-base", "atp", &rule) == SPEC_DEVICE_CPU && rule == 0);
    CHECK(spec_stage_device(&s, "train-teacher", "train", &rule) == SPEC_DEVICE_CUDA && rule == SPEC_DEVICE_FROM_TOP);
    CHECK(spec_stage_device(&s, "eval-kd-0", "distill-eval", &rule) == SPEC_DEVICE_CPU && rule == 2);
    CHECK(spec_stage_device(&s, "distill-kd-1", "distill", &rule) == SPEC_DEVICE_CPU && rule == 3);
    CHECK(spec_stage_device(&s, "distill-kd-0", "distill", &rule) == SPEC_DEVICE_CUDA);
    /* data and report stay on the CPU whatever device: says. */
    CHECK(spec_stage_device(&s, "data", "data", &rule) == SPEC_DEVICE_CPU && rule == SPEC_DEVICE_FROM_DEFAULT);
    CHECK(spec_stage_device(&s, "report", "report", NULL) == SPEC_DEVICE_CPU);
    char origin[256];
    spec_device_origin(&s, 1, origin, sizeof origin);
    CHECK(!strcmp(origin, "dev.yaml:10: devices.atp-teacher"));
    spec_device_origin(&s, SPEC_DEVICE_FROM_TOP, origin, sizeof origin);
    CHECK(!strcmp(origin, "dev.yaml:7: device"));

    /* The plan carries the same devices. */
    struct plan p;
    CHECK(plan_build(&p, &s, 2) == 0);
    CHECK(device_of(&p, "atp-teacher") == SPEC_DEVICE_CUDA && device_of(&p, "atp-student-base") == SPEC_DEVICE_CPU);
    CHECK(device_of(&p, "eval-teacher") == SPEC_DEVICE_CPU && device_of(&p, "eval-sft-1") == SPEC_DEVICE_CPU);
    CHECK(device_of(&p, "train-student-base") == SPEC_DEVICE_CUDA && device_of(&p, "data") == SPEC_DEVICE_CPU);
    CHECK(device_of(&p, "distill-kd-1") == SPEC_DEVICE_CPU && device_of(&p, "distill-sft-0") == SPEC_DEVICE_CUDA);
    CHECK(p.stages[plan_find(&p, "atp-teacher")].device_rule == 1);
    /* Text and DOT show them. */
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    plan_print_text(&p, &s, mem);
    plan_print_dot(&p, &s, mem);
    fclose(mem);
    CHECK(strstr(text, "atp-teacher                  cuda") != NULL);
    CHECK(strstr(text, "atp-student-base             cpu ") != NULL);
    CHECK(strstr(text, "\"distill-sft-0\" [label=\"distill-sft-0\\n") && strstr(text, ", cuda\"];"));
    free(text);
    plan_free(&p);
    spec_errors_free(&errs);
    spec_free(&s);
}

/* Every stage of the plan can be named in devices: (the spec's list of names matches the plan's), and naming it
 * moves that stage alone; the plan's kind names are the spec's. */
static void test_every_stage_nameable(void)
{
    struct experiment_spec s;
    struct spec_errors errs;
    CHECK(load("", &s, &errs) == 0);
    struct plan p;
    CHECK(plan_build(&p, &s, 1) == 0);
    for (int k = 0; k < PLAN_KIND_COUNT; k++) CHECK(!strcmp(plan_kind_name(k), spec_stage_kind_names[k]));
    CHECK(spec_stage_kind_names[PLAN_KIND_COUNT] == NULL);
    int bad = 0;
    for (int i = 0; i < p.n_stages; i++) {
        const char *name = p.stages[i].name;
        int usable = spec_stage_kind_uses_device(plan_kind_name(p.stages[i].kind));
        char extra[256];
        snprintf(extra, sizeof extra, "devices: {%s: cuda}\n", name);
        struct experiment_spec one;
        struct spec_errors e;
        int rc = load(extra, &one, &e);
        if (!usable) { /* data, report: refused */
            bad += rc == 0;
            spec_errors_free(&e);
            spec_free(&one);
            continue;
        }
        struct plan q;
        if (rc || plan_build(&q, &one, 1)) {
            fprintf(stderr, "  devices: {%s: cuda} refused: %s\n", name, e.n ? e.items[0].text : "plan");
            bad++;
        } else {
            for (int j = 0; j < q.n_stages; j++)
                bad += q.stages[j].device != (j == i ? SPEC_DEVICE_CUDA : SPEC_DEVICE_CPU);
            plan_free(&q);
        }
        spec_errors_free(&e);
        spec_free(&one);
    }
    CHECK(bad == 0);
    plan_free(&p);
    spec_errors_free(&errs);
    spec_free(&s);
}

static void test_errors(void)
{
    expect_error("device: gpu\n", "dev.yaml:7:9: device: found string \"gpu\", expected one of cpu, cuda");
    expect_error("devices: {atp: gpu}\n", "dev.yaml:7:16: devices.atp: found string \"gpu\", expected one of cpu, cuda");
    expect_error("devices: [atp]\n", "dev.yaml:7:10: devices: found a list");
    expect_error("precision: fp16\n", "precision: found string \"fp16\", expected one of fp32, bf16");
    expect_error("precision: bf16\n", "dev.yaml:7:12: precision: found bf16 with every stage on the CPU, expected fp32");
    expect_error("device: cpu\ndevices: {atp: cpu}\nprecision: bf16\n", "precision: found bf16 with every stage");
    expect_error("devices: {report: cuda}\n", "dev.yaml:7:11: devices.report: found cuda, expected cpu: the report "
                 "stage computes with no model");
    expect_error("devices:\n  data: cuda\n", "dev.yaml:8:3: devices.data: found cuda, expected cpu");
    expect_error("devices: {atp-techer: cuda}\n", "dev.yaml:7:11: devices: found unknown stage \"atp-techer\", "
                 "expected a stage kind");
    expect_error("devices: {atp-techer: cuda}\n", "(did you mean atp-teacher?)");
    expect_error("devices: {distill-kd-7: cuda}\n", "unknown stage \"distill-kd-7\""); /* seed 7 is not in seeds */
    expect_error("devices: {patch-teacher: cuda}\natp: {exact_patching_samples: 0}\n", "unknown stage \"patch-teacher\"");
    expect_error("devices:\n  atp: cuda\n  atp: cpu\n", "dev.yaml:9:3: devices: found key \"atp\" a second time (first "
                 "at line 8, column 3)");
    expect_error("devicez: cuda\n", "(did you mean device");
    /* bf16 with one stage on cuda is fine; data: cpu explicitly is fine. */
    struct experiment_spec s;
    struct spec_errors errs;
    CHECK(load("devices: {distill: cuda, data: cpu, report: cpu}\nprecision: bf16\n", &s, &errs) == 0);
    spec_errors_free(&errs);
    spec_free(&s);
}

static int run(const char *args) { return testing_run_circd(args, output, sizeof output); }

static void expect_run(const char *args, int code, const char *want)
{
    int rc = run(args);
    int found = strstr(output, want) != NULL;
    CHECK(rc == code && found);
    if (rc != code || !found) fprintf(stderr, "  circd %s -> %d (wanted %d, \"%s\"):\n%s\n", args, rc, code, want, output);
}

static void test_commands(void)
{
    const char *dir = testing_tmpdir();
    char spec[4200], args[8400], want[4400], stages[4300];
    snprintf(spec, sizeof spec, "%s/devices.yaml", dir);
    FILE *f = fopen(spec, "w");
    CHECK(f != NULL);
    if (!f) return;
    fprintf(f, "%sdevices:\n  atp-teacher: cuda\n", base_yaml); /* line 8 */
    fclose(f);

    snprintf(args, sizeof args, "plan %s --ranks 1 --output %s/none", spec, dir);
    expect_run(args, 0, "atp-teacher                  cuda");
    expect_run(args, 0, "train-teacher                cpu ");

    if (!placement_unavailable(SPEC_DEVICE_CUDA)) {
        printf("a GPU answers: the no-GPU exits are not checked here (tests/gpu covers the GPU runs)\n");
        return;
    }
    /* circd run: exit 2 naming the stage, the spec line and the reason, before any stage (no stage file). */
    snprintf(args, sizeof args, "run %s --output %s/run", spec, dir);
    snprintf(want, sizeof want, "circd run: [atp-teacher] device cuda (%s:8: devices.atp-teacher): %s", spec,
             placement_unavailable(SPEC_DEVICE_CUDA));
    expect_run(args, 2, want);
    snprintf(stages, sizeof stages, "%s/run/stages/data.h5", dir);
    struct stat st;
    CHECK(stat(stages, &st) != 0);

    /* The commands: exit 2 before reading anything (the model directory does not even exist). */
    static const char *const commands[] = {
        "forward --model %s/nomodel --tokens t.safetensors --out o.safetensors --device cuda",
        "generate --model %s/nomodel --prompt-ids 1,2 --device cuda",
        "atp --model %s/nomodel --data rows.jsonl --out o.h5 --device cuda",
        "faithfulness --model %s/nomodel --data rows.jsonl --circuit c.json --out o.h5 --device cuda",
    };
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        snprintf(args, sizeof args, commands[i], dir);
        snprintf(want, sizeof want, ": --device cuda: %s", placement_unavailable(SPEC_DEVICE_CUDA));
        expect_run(args, 2, want);
    }
    snprintf(args, sizeof args, "generate --model %s/nomodel --prompt-ids 1 --device gpu", dir);
    expect_run(args, 2, "circd generate: --device: found \"gpu\", expected cpu or cuda");
}

int main(void)
{
    test_defaults_and_resolution();
    test_every_stage_nameable();
    test_errors();
    test_commands();
    return testing_finish();
}
