/* cmd_validate.c — `circd validate SPEC...`: loads each experiment spec and prints "SPEC: ok" with a summary of
 * the models, the stages a run would execute and their devices (exit 0), or every error as FILE:LINE:COL: ...
 * (exit 2).
 * `--schema` prints the table of every key (type, range, default, meaning) as experiments/README.md holds it. */
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "spec/spec.h"
#include "util/error.h"

static void print_model(const char *role, const struct spec_model *m)
{
    if (m->from_checkpoint) {
        const struct llama_config *c = &m->config;
        printf("  %-8s checkpoint %s (d_model %d, %d layers, %d heads / %d kv, d_ff %d, vocab %d)\n", role,
               m->checkpoint, c->d_model, c->n_layers, c->n_heads, c->n_kv_heads, c->d_ff, c->vocab_size);
        return;
    }
    const struct spec_arch *a = &m->arch;
    double p = (double)spec_arch_parameters(a);
    printf("  %-8s arch d_model %d, %d layer%s, %d heads / %d kv x %d, d_ff %d, max_seq %d: %.3g%s parameters "
           "without embeddings\n", role, a->d_model, a->n_layers, a->n_layers == 1 ? "" : "s", a->n_heads,
           a->n_kv_heads, a->head_dim, a->d_ff, a->max_seq, p >= 1e6 ? p / 1e6 : p / 1e3, p >= 1e6 ? "M" : "k");
}

static void digits(const char *label, struct spec_digits d)
{
    if (d.lo == d.hi) printf("%s %d", label, d.lo);
    else printf("%s %d-%d", label, d.lo, d.hi);
}

static void print_summary(const struct experiment_spec *s)
{
    printf("  name     %s -> %s, seeds", s->name, s->output);
    for (int i = 0; i < s->seeds.n; i++) printf(" %d", s->seeds.items[i]);
    printf("\n");
    print_model("teacher", &s->teacher);
    print_model("student", &s->student);
    const struct spec_data *d = &s->data;
    printf("  data     ");
    for (int op = 0, first = 1; op < SPEC_OP_COUNT; op++)
        if (d->operations >> op & 1) { printf("%s%s", first ? "" : "+", spec_operation_names[op]); first = 0; }
    printf(", %s tokens;", spec_tokenizer_names[d->tokenizer]);
    digits(" operand digits: teacher trains", d->train_digits);
    digits(", students train", d->student_train_digits);
    digits(", ID test", d->id_test_digits);
    digits(", OOD test", d->ood_test_digits);
    digits(", AtP", d->atp_digits);
    printf("\n  runs     ");
    for (int i = 0; i < s->distill.n_methods; i++) printf("%s%s", i ? ", " : "", s->distill.methods[i].name);
    if (!s->distill.n_methods) printf("(none)");
    printf("\n");

    /* The stages a run executes, in order (the plan of the distributed issue adds placement). */
    int runs = s->distill.n_methods * s->seeds.n, n = 0;
    printf("  stages   data");
    n++;
    if (!s->teacher.from_checkpoint) { printf(", train-teacher"); n++; }
    if (!s->student.from_checkpoint) { printf(", train-student-base"); n++; }
    printf(", eval-teacher, eval-student-base, atp");
    n += 3;
    if (s->atp.exact_patching_samples > 0) { printf(", patch"); n++; }
    printf(", circuit");
    n++;
    if (runs) { printf(", distill x%d, eval x%d", runs, runs); n += 2 * runs; }
    printf(", report (%d stages)\n", n + 1);
    printf("  device   %s%s", spec_device_names[s->device],
           s->precision == SPEC_PRECISION_BF16 ? ", bf16 matmuls" : "");
    for (int i = 0; i < s->devices.n; i++)
        printf("%s%s %s", i ? ", " : "; devices: ", s->devices.items[i].key,
               spec_device_names[s->devices.items[i].device]);
    printf(" (`circd plan` shows each stage's)\n");
}

int cmd_validate(int argc, char **argv)
{
    int schema = 0;
    struct arg_option options[] = {
        {"schema", ARG_SWITCH, &schema, NULL, "print every key's type, range, default and meaning (Markdown)", 0, 0},
    };
    struct arg_spec spec = {"circd validate", "Check experiment specs: \"SPEC: ok\" and a summary, or every error "
                            "as FILE:LINE:COL (exit 2).", options, (int)(sizeof options / sizeof options[0]),
                            "SPEC...", 16};
    const char *positional[16];
    int n_positional;
    int rc = args_parse(&spec, argc, argv, positional, &n_positional);
    if (rc == 1) return 0;
    if (rc) return cli_fail("validate", rc);
    if (schema) {
        spec_print_schema(stdout);
        return 0;
    }
    if (n_positional == 0) return cli_fail("validate", err_set(CIRCD_EINPUT, "no SPEC given (see --help)"));
    int exit_code = 0;
    for (int i = 0; i < n_positional; i++) {
        struct experiment_spec s;
        struct spec_errors errs = {0};
        rc = spec_load(positional[i], &s, &errs);
        if (rc == 0) {
            printf("%s: ok\n", positional[i]);
            print_summary(&s);
            spec_free(&s);
        } else if (rc == CIRCD_ENOMEM || rc == CIRCD_EINTERNAL) {
            fprintf(stderr, "circd validate: %s\n", err_msg());
            exit_code = 1;
        } else {
            spec_errors_print(&errs, stderr);
            fprintf(stderr, "%s: %d error%s\n", positional[i], errs.n + errs.dropped,
                    errs.n + errs.dropped == 1 ? "" : "s");
            if (!exit_code) exit_code = 2;
        }
        spec_errors_free(&errs);
    }
    fflush(stdout);
    return exit_code;
}
