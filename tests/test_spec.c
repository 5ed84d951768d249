/* test_spec.c — the experiment spec loader on good input: experiments/arith.yaml and smoke.yaml load with the
 * values they spell out, derived values (head_dim, n_kv_heads, d_ff, output, per-run loss weights) and every default
 * are applied, checkpoint models read their config.json, the raw text is kept, the in-memory entry point works, and
 * every row of the schema table (`circd validate --schema`) appears verbatim in experiments/README.md. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec/spec.h"
#include "spec/spec_internal.h"
#include "testing.h"
#include "util/error.h"

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = malloc(1 << 20);
    *len = fread(buf, 1, (1 << 20) - 1, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

static int load(const char *relative, struct experiment_spec *s)
{
    struct spec_errors errs = {0};
    int rc = spec_load(testing_source_path(relative), s, &errs);
    if (rc) {
        fprintf(stderr, "%s: rc %d\n", relative, rc);
        spec_errors_print(&errs, stderr);
    }
    CHECK(errs.n == 0);
    spec_errors_free(&errs);
    return rc;
}

static const struct spec_method_run *find_run(const struct experiment_spec *s, const char *name)
{
    for (int i = 0; i < s->distill.n_methods; i++)
        if (!strcmp(s->distill.methods[i].name, name)) return &s->distill.methods[i];
    return NULL;
}

static void test_arith(void)
{
    struct experiment_spec s;
    CHECK(load("experiments/arith.yaml", &s) == 0);
    CHECK(!strcmp(s.name, "arith") && !strcmp(s.output, "runs/arith"));
    CHECK(s.seeds.n == 3 && s.seeds.items[0] == 0 && s.seeds.items[2] == 2);
    const struct spec_arch *t = &s.teacher.arch, *st = &s.student.arch;
    CHECK(!s.teacher.from_checkpoint && !s.student.from_checkpoint);
    CHECK(t->d_model == 128 && t->n_layers == 4 && t->n_heads == 4 && t->n_kv_heads == 2 && t->d_ff == 512);
    CHECK(t->head_dim == 32);                       /* derived: 128 / 4 */
    CHECK(st->d_model == 64 && st->n_layers == 2 && st->head_dim == 16 && st->max_seq == 128);
    CHECK(t->d_model > st->d_model && t->n_layers > st->n_layers);
    CHECK_NEAR(t->rope_theta, 10000, 0);
    CHECK_NEAR(t->norm_eps, 1e-5, 1e-12);
    CHECK(spec_arch_parameters(t) > 5 * spec_arch_parameters(st));

    const struct spec_data *d = &s.data;
    CHECK(d->operations == (1u << SPEC_OP_ADD | 1u << SPEC_OP_SUB));
    CHECK(d->train_digits.lo == 1 && d->train_digits.hi == 5);
    CHECK(d->student_train_digits.lo == 1 && d->student_train_digits.hi == 3);
    CHECK(d->id_test_digits.lo == 2 && d->id_test_digits.hi == 2);
    CHECK(d->ood_test_digits.lo == 5 && d->ood_test_digits.hi == 5);
    CHECK(d->templates_add.n == 4 && !strcmp(d->templates_add.items[0], "Q: How much is {x} plus {y}? A:"));
    CHECK(d->templates_sub.n == 4 && !strcmp(d->templates_sub.items[3], "{x} - {y} ="));
    CHECK(d->atp_counterfactuals == 1u << SPEC_CF_RANDOM);
    CHECK(d->eval_counterfactuals == (1u << SPEC_CF_COUNT) - 1);
    CHECK(d->train_examples == 0 && d->tokenizer == SPEC_TOKENIZER_DIGIT);
    CHECK(d->zero_pad_operands && d->zero_pad_answer && !d->reverse_answer && d->answer_only_loss && d->chain_of_thought);

    const struct spec_train *tt = &s.training.teacher;
    CHECK(tt->steps == 2500 && tt->batch == 128 && tt->schedule == SPEC_SCHEDULE_WARMUP_COSINE);
    CHECK_NEAR(tt->lr, 2e-3, 1e-12);
    CHECK_NEAR(tt->beta1, 0.9, 0) ;
    CHECK_NEAR(tt->beta2, 0.95, 0);
    CHECK_NEAR(tt->weight_decay, 0.1, 0);
    CHECK_NEAR(tt->grad_clip, 1.0, 0);
    CHECK(tt->length_weights.n == 5 && tt->length_weights.items[4] > tt->length_weights.items[0]);
    CHECK(s.training.student_base.seed_offset == 1000 && s.training.distill.seed_offset == 2000);

    CHECK(s.distill.n_methods == 10);
    const char *names[] = {"sft", "kd", "cot", "cd_a", "cd_b", "sft_subnet", "kd_subnet", "cot_subnet",
                           "cd_a_subnet", "cd_b_subnet"};
    for (int i = 0; i < 10; i++) CHECK(find_run(&s, names[i]) != NULL);
    const struct spec_method_run *sft = find_run(&s, "sft"), *cdb = find_run(&s, "cd_b_subnet");
    CHECK(sft && sft->method == SPEC_METHOD_SFT && !sft->subnetwork && sft->lambda_task == 1 && sft->lambda_kd == 0
          && sft->lambda_align == 0);
    CHECK(cdb && cdb->method == SPEC_METHOD_CD_B && cdb->subnetwork && cdb->lambda_kd == 1 && cdb->lambda_align == 1);
    CHECK(s.circuit.sizes.n == 10 && s.circuit.sizes.items[0] == 0.1 && s.circuit.sizes.items[9] == 100);
    CHECK(s.atp.level == SPEC_ATP_EDGE && s.atp.ig_steps == 5 && s.atp.qk_fix && s.atp.grad_drop &&
          s.parallel.teacher_pipeline_stages == 1);

    /* The raw text is the file's text. */
    size_t len;
    char *text = read_all(testing_source_path("experiments/arith.yaml"), &len);
    CHECK(text && s.yaml_len == len && !memcmp(s.yaml, text, len) && s.yaml[len] == '\0');
    free(text);
    CHECK(strstr(s.dir, "experiments") != NULL);

    struct llama_config cfg;
    spec_arch_config(t, 20, &cfg);
    CHECK(config_validate(&cfg) == 0 && cfg.head_dim == 32 && cfg.vocab_size == 20);
    spec_free(&s);
    spec_free(&s); /* twice is harmless */
}

static void test_smoke(void)
{
    struct experiment_spec s;
    CHECK(load("experiments/smoke.yaml", &s) == 0);
    CHECK(!strcmp(s.name, "smoke") && s.seeds.n == 2);
    CHECK(s.teacher.arch.d_model == 32 && s.student.arch.d_model == 16 && s.student.arch.n_kv_heads == 1);
    CHECK(s.training.teacher.steps <= 50 && s.training.student_base.steps <= 50 && s.training.distill.steps <= 50);
    CHECK(s.data.id_test_size <= 64 && s.data.ood_test_size <= 64 && s.data.atp_size <= 64);
    CHECK(s.distill.n_methods == 10); /* the same shape as arith.yaml */
    CHECK(s.data.eval_counterfactuals == (1u << SPEC_CF_RANDOM | 1u << SPEC_CF_ONES_OP1 | 1u << SPEC_CF_TENS_OP1));
    spec_free(&s);
}

/* minimal.yaml names two architectures and nothing else: everything else is the schema's default. */
static void test_defaults(void)
{
    struct experiment_spec s, def;
    CHECK(load("tests/data/spec/minimal.yaml", &s) == 0);
    CHECK(!strcmp(s.output, "runs/minimal"));
    CHECK(s.seeds.n == 1 && s.seeds.items[0] == 0);
    const struct spec_arch *a = &s.teacher.arch;
    CHECK(a->n_kv_heads == 4 && a->head_dim == 16 && a->d_ff == 256 && a->max_seq == 128 && !a->tie_embeddings);
    CHECK_NEAR(a->rope_theta, 10000, 0);
    CHECK(s.student.arch.head_dim == 16 && s.student.arch.d_ff == 128);
    const struct spec_data *d = &s.data;
    CHECK(d->operations == 3 && d->seed == 1234);
    CHECK(d->train_digits.lo == 1 && d->train_digits.hi == 5 && d->student_train_digits.hi == 3);
    CHECK(d->id_test_digits.lo == 2 && d->ood_test_digits.lo == 5 && d->atp_digits.lo == 2);
    CHECK(d->templates_add.n == 4 && d->templates_sub.n == 4);
    CHECK(!strcmp(d->templates_add.items[2], "The sum of {x} and {y} is"));
    CHECK(!strcmp(d->templates_sub.items[1], "Q: What is the difference between {x} and {y}? A:"));
    CHECK(d->atp_counterfactuals == 1u << SPEC_CF_RANDOM && d->eval_counterfactuals == 127);
    CHECK(d->train_examples == 0 && d->id_test_size == 1000 && d->ood_test_size == 1000 && d->atp_size == 512);
    CHECK(d->tokenizer == SPEC_TOKENIZER_DIGIT && d->zero_pad_operands && d->zero_pad_answer && !d->reverse_answer &&
          d->answer_only_loss);
    CHECK(d->chain_of_thought && d->cot_fraction == 0.125 && d->mib_jsonl.n == 0);
    const struct spec_train *t = &s.training.teacher;
    CHECK(t->steps == 2000 && t->batch == 64 && t->lr == 1e-3 && t->warmup_steps == 100 && t->min_lr_ratio == 0.1);
    CHECK(t->schedule == SPEC_SCHEDULE_WARMUP_COSINE && t->decay_fraction == 0.2 && t->weight_decay == 0.1);
    CHECK(t->beta1 == 0.9 && t->beta2 == 0.95 && t->grad_clip == 1.0 && t->checkpoint_interval == 500);
    CHECK(t->eval_interval == 250 && t->seed_offset == 0 && t->length_weights.n == 0 && !t->curriculum);
    CHECK(t->curriculum_fraction == 0.3);
    CHECK(s.training.student_base.seed_offset == 1000 && s.training.student_base.steps == 2000);
    CHECK(s.training.distill.seed_offset == 2000 && s.training.distill.steps == 1000);
    CHECK(s.atp.level == SPEC_ATP_NODE && s.atp.ig_steps == 0 && !s.atp.qk_fix && !s.atp.grad_drop);
    CHECK(s.atp.batch == 32 && s.atp.exact_patching_samples == 64);
    CHECK(s.circuit.sizes.n == 10 && s.circuit.ablation == SPEC_ABLATION_COUNTERFACTUAL && s.circuit.nfs_size == 10);
    CHECK(s.distill.n_methods == 5 && !strcmp(s.distill.methods[4].name, "cd_b"));
    CHECK(s.distill.lambda_task == 1 && s.distill.lambda_kd == 1 && s.distill.lambda_align == 1);
    CHECK(s.distill.temperature == 2 && s.distill.kl_direction == SPEC_KL_FORWARD && !s.distill.cka_unbiased);
    CHECK(s.distill.align_rows == SPEC_ALIGN_ANSWER && s.distill.circuit_size == 10);
    CHECK(s.distill.methods[1].lambda_kd == 1 && s.distill.methods[1].lambda_align == 0);
    CHECK(s.eval.batch == 64 && s.eval.max_new_tokens == 16 && s.eval.robustness_interventions == 256);
    CHECK(s.parallel.ranks == 0 && s.parallel.teacher_pipeline_stages == 1 && s.parallel.atp_shards == 0);

    /* spec_defaults gives the same values for everything but the models and names. */
    CHECK(spec_defaults(&def) == 0);
    CHECK(!def.name && !def.output && def.teacher.arch.d_model == 0);
    CHECK(def.training.teacher.steps == 2000 && def.training.distill.steps == 1000);
    CHECK(def.training.student_base.seed_offset == 1000 && def.training.teacher.lr == 1e-3);
    CHECK(!memcmp(&def.atp, &s.atp, sizeof def.atp) && !memcmp(&def.eval, &s.eval, sizeof def.eval));
    CHECK(def.distill.n_methods == 5 && def.distill.methods[2].method == SPEC_METHOD_COT);
    CHECK(def.distill.methods[3].lambda_align == 1 && def.distill.methods[0].lambda_kd == 0);
    CHECK(def.data.templates_add.n == 4 && !strcmp(def.data.templates_add.items[3], "{x} + {y} ="));
    spec_free(&def);
    spec_free(&s);
}

static void test_checkpoints(void)
{
    struct experiment_spec s;
    CHECK(load("tests/data/spec/checkpoint.yaml", &s) == 0);
    CHECK(s.teacher.from_checkpoint && s.student.from_checkpoint);
    CHECK(strstr(s.teacher.checkpoint, "tests/data/spec/../reference/gqa_untied") != NULL);
    CHECK(s.teacher.config.vocab_size > 0 && s.teacher.config.n_layers > 0);
    CHECK(s.student.config.d_model > 0);
    CHECK(s.data.mib_jsonl.n == 1 && strstr(s.data.mib_jsonl.items[0], "tests/data/spec/mib_rows.jsonl"));
    spec_free(&s);
}

static void test_string_entry(void)
{
    static const char text[] = "name: mem\nmodels:\n  teacher: {arch: {d_model: 64, n_layers: 2, n_heads: 4}}\n"
                               "  student: {checkpoint: gqa_untied}\ndata:\ndistill: {methods: []}\n";
    struct experiment_spec s;
    struct spec_errors errs = {0};
    /* Relative paths resolve against base_dir. */
    CHECK(spec_load_string(text, strlen(text), "mem.yaml", testing_source_path("tests/data/reference"), &s,
                           &errs) == 0);
    CHECK(errs.n == 0 && s.student.from_checkpoint && s.distill.n_methods == 0);
    CHECK(!strcmp(s.path, "mem.yaml") && s.yaml_len == strlen(text) && !strcmp(s.yaml, text));
    spec_free(&s);
    /* Without errs, the first error and a count are in err_msg(); out is left zeroed. */
    CHECK(spec_load_string(text, strlen(text), "mem.yaml", NULL, &s, NULL) == CIRCD_EINPUT);
    CHECK(strstr(err_msg(), "mem.yaml:4:25: models.student.checkpoint: found string \"gqa_untied\"") != NULL);
    CHECK(s.name == NULL && s.yaml == NULL);
    spec_errors_free(&errs);
}

/* Each Markdown row of the schema appears verbatim in experiments/README.md, so the docs cannot drift. */
static void test_schema_documented(void)
{
    char *table = NULL;
    size_t table_len = 0, readme_len = 0;
    FILE *mem = open_memstream(&table, &table_len);
    spec_print_schema(mem);
    fclose(mem);
    char *readme = read_all(testing_source_path("experiments/README.md"), &readme_len);
    CHECK(readme != NULL);
    int rows = 0, missing = 0;
    for (char *line = strtok(table, "\n"); line && readme; line = strtok(NULL, "\n")) {
        rows++;
        if (!strstr(readme, line)) { missing++; fprintf(stderr, "not in README: %s\n", line); }
    }
    CHECK(rows > 90 && missing == 0);
    free(table);
    free(readme);

    /* Every section fits the decoder's 64-bit "seen" mask; every key is documented. */
    const struct spec_section *stack[32] = {&spec_root_section, &spec_method_section};
    int n = 2, sections = 0;
    while (n > 0) {
        const struct spec_section *sec = stack[--n];
        int fields = 0;
        sections++;
        for (const struct spec_field *f = sec->fields; f->key; f++, fields++) {
            CHECK(f->doc && f->doc[0]);
            if (f->type == FT_SECTION && n < 32) stack[n++] = f->section;
        }
        CHECK(fields > 0 && fields <= 64);
    }
    CHECK(sections >= 10);
}

int main(void)
{
    test_arith();
    test_smoke();
    test_defaults();
    test_checkpoints();
    test_string_entry();
    test_schema_documented();
    return testing_finish();
}
