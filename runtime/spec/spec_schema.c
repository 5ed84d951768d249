/* spec_schema.c — the experiment spec's schema as data: for every key its type, where it is stored, its range, its
 * default (as YAML text, decoded by the same code as the user's values) and one line of documentation. The loader,
 * the defaults, `circd validate --schema` and the key tables of experiments/README.md all come from these tables. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "spec/spec_internal.h"

const char *const spec_operation_names[] = {"add", "sub", NULL};
const char *const spec_counterfactual_names[] = {"random_counterfactual", "ones_op1", "ones_op2", "tens_op1",
                                                 "tens_op2", "ones_carry", "tens_carry", NULL};
const char *const spec_tokenizer_names[] = {"digit", "llama3_chunks", NULL};
const char *const spec_schedule_names[] = {"warmup_cosine", "constant", "constant_then_decay", NULL};
const char *const spec_atp_level_names[] = {"node", "edge", NULL};
const char *const spec_ablation_names[] = {"counterfactual", "mean", NULL};
const char *const spec_method_names[] = {"sft", "kd", "cot", "cd_a", "cd_b", NULL};
const char *const spec_kl_direction_names[] = {"forward", "reverse", NULL};
const char *const spec_align_rows_names[] = {"answer", "last_prompt", "all", NULL};
const char *const spec_device_names[] = {"cpu", "cuda", NULL};
const char *const spec_precision_names[] = {"fp32", "bf16", NULL};

#define BIG 1e9
#define F(key, type, T, member, lo, hi, flags, names, section, def, doc) \
    {key, type, offsetof(T, member), lo, hi, flags, names, section, def, doc}
/* A mapping without a struct of its own: its keys' offsets are relative to the enclosing struct. */
#define GROUP(key, flags, section, doc) {key, FT_SECTION, 0, 0, 0, flags, NULL, section, NULL, doc}
#define END {NULL, FT_INT, 0, 0, 0, 0, NULL, NULL, NULL, NULL}

/* ---- models ---- */
static const struct spec_field arch_fields[] = {
    F("d_model", FT_INT, struct spec_arch, d_model, 2, 65536, FL_REQUIRED, NULL, NULL, NULL,
      "residual stream width (hidden_size)"),
    F("n_layers", FT_INT, struct spec_arch, n_layers, 1, 1024, FL_REQUIRED, NULL, NULL, NULL, "transformer blocks"),
    F("n_heads", FT_INT, struct spec_arch, n_heads, 1, 1024, FL_REQUIRED, NULL, NULL, NULL, "query heads per layer"),
    F("n_kv_heads", FT_INT, struct spec_arch, n_kv_heads, 1, 1024, FL_DERIVED, NULL, NULL, "n_heads",
      "key/value heads (grouped-query attention); must divide n_heads"),
    F("head_dim", FT_INT, struct spec_arch, head_dim, 2, 1024, FL_DERIVED, NULL, NULL, "d_model / n_heads",
      "width of one head; even (RoPE rotates pairs)"),
    F("d_ff", FT_INT, struct spec_arch, d_ff, 1, 1 << 20, FL_DERIVED, NULL, NULL, "4 * d_model",
      "SwiGLU hidden width (intermediate_size)"),
    F("max_seq", FT_INT, struct spec_arch, max_seq, 8, 65536, 0, NULL, NULL, "128",
      "longest sequence (prompt + answer or chain of thought) in tokens"),
    F("rope_theta", FT_FLOAT, struct spec_arch, rope_theta, 1, BIG, 0, NULL, NULL, "10000", "RoPE base"),
    F("norm_eps", FT_FLOAT, struct spec_arch, norm_eps, 0, 0.1, FL_LO_OPEN, NULL, NULL, "1e-5", "RMSNorm epsilon"),
    F("tie_embeddings", FT_BOOL, struct spec_arch, tie_embeddings, 0, 1, 0, NULL, NULL, "false",
      "share the token embedding with lm_head"),
    END};
static const struct spec_section arch_section = {"arch", arch_fields};

static const struct spec_field model_fields[] = {
    F("arch", FT_SECTION, struct spec_model, arch, 0, 0, 0, NULL, &arch_section, NULL,
      "train this architecture from scratch (exclusive with checkpoint)"),
    F("checkpoint", FT_CHECKPOINT, struct spec_model, checkpoint, 0, 0, 0, NULL, NULL, NULL,
      "start from this Hugging Face directory (config.json + safetensors), relative to the spec's directory"),
    END};
static const struct spec_section model_section = {"model", model_fields};

static const struct spec_field models_fields[] = {
    F("teacher", FT_MODEL, struct experiment_spec, teacher, 0, 0, FL_REQUIRED, NULL, &model_section, NULL,
      "the larger model whose circuit is distilled: arch or checkpoint"),
    F("student", FT_MODEL, struct experiment_spec, student, 0, 0, FL_REQUIRED, NULL, &model_section, NULL,
      "the smaller model: arch (its weak base is trained first) or checkpoint"),
    END};
static const struct spec_section models_section = {"models", models_fields};

/* ---- data ---- */
#define D struct spec_data
static const struct spec_field data_fields[] = {
    F("operations", FT_ENUM_SET, D, operations, 0, 0, 0, spec_operation_names, NULL, "[add, sub]",
      "which operations every set mixes"),
    F("seed", FT_INT, D, seed, 0, 2147483647, 0, NULL, NULL, "1234",
      "the data RNG seed: splits and examples depend on it alone"),
    F("train_digits", FT_DIGITS, D, train_digits, 1, SPEC_MAX_DIGITS, 0, NULL, NULL, "[1, 5]",
      "operand lengths the teacher trains on (it must see every test length)"),
    F("student_train_digits", FT_DIGITS, D, student_train_digits, 1, SPEC_MAX_DIGITS, 0, NULL, NULL, "[1, 3]",
      "operand lengths of every student-facing training set (student base and all methods); excludes OOD"),
    F("id_test_digits", FT_DIGITS, D, id_test_digits, 1, SPEC_MAX_DIGITS, 0, NULL, NULL, "2",
      "operand lengths of the in-distribution test set"),
    F("ood_test_digits", FT_DIGITS, D, ood_test_digits, 1, SPEC_MAX_DIGITS, 0, NULL, NULL, "5",
      "operand lengths of the out-of-distribution test set"),
    F("atp_digits", FT_DIGITS, D, atp_digits, 1, SPEC_MAX_DIGITS, 0, NULL, NULL, "2",
      "operand lengths of the attribution-patching set (MIB: 2)"),
    F("templates_add", FT_TEMPLATES, D, templates_add, 0, 0, 0, NULL, NULL,
      "[\"Q: How much is {x} plus {y}? A:\", \"Q: What is the sum of {x} and {y}? A:\", "
      "\"The sum of {x} and {y} is\", \"{x} + {y} =\"]",
      "addition prompts (MIB's list); {x} and {y} are the operands"),
    F("templates_sub", FT_TEMPLATES, D, templates_sub, 0, 0, 0, NULL, NULL,
      "[\"Q: How much is {x} minus {y}? A:\", \"Q: What is the difference between {x} and {y}? A:\", "
      "\"The difference between {x} and {y} is\", \"{x} - {y} =\"]",
      "subtraction prompts (MIB's list)"),
    F("atp_counterfactuals", FT_ENUM_SET, D, atp_counterfactuals, 0, 0, 0, spec_counterfactual_names, NULL,
      "[random_counterfactual]", "counterfactual partners attribution patching contrasts (MIB circuit track)"),
    F("eval_counterfactuals", FT_ENUM_SET, D, eval_counterfactuals, 0, 0, 0, spec_counterfactual_names, NULL,
      "[random_counterfactual, ones_op1, ones_op2, tens_op1, tens_op2, ones_carry, tens_carry]",
      "counterfactual partners of the interventional-robustness evaluation"),
    F("train_examples", FT_COUNT, D, train_examples, 1, 1e12, 0, NULL, NULL, "infinite",
      "size of the training set, or infinite: fresh examples every step"),
    F("id_test_size", FT_INT, D, id_test_size, 1, 10000000, 0, NULL, NULL, "1000", "in-distribution test problems"),
    F("ood_test_size", FT_INT, D, ood_test_size, 1, 10000000, 0, NULL, NULL, "1000",
      "out-of-distribution test problems"),
    F("atp_size", FT_INT, D, atp_size, 1, 10000000, 0, NULL, NULL, "512", "problems in the attribution-patching set"),
    F("same_length_fraction", FT_FLOAT, D, same_length_fraction, 0, 1, 0, NULL, NULL, "0.5",
      "fraction of training problems whose operands share one length (the rest draw each length independently)"),
    F("tokenizer", FT_ENUM, D, tokenizer, 0, 0, 0, spec_tokenizer_names, NULL, "digit",
      "digit: one token per digit; llama3_chunks: numbers in chunks of up to 3 digits, left to right"),
    F("zero_pad_operands", FT_BOOL, D, zero_pad_operands, 0, 1, 0, NULL, NULL, "true",
      "pad both operands with leading zeros to the longest operand length of the set"),
    F("zero_pad_answer", FT_BOOL, D, zero_pad_answer, 0, 1, 0, NULL, NULL, "true",
      "with zero_pad_operands: answers zero-padded to a fixed width (operand length + 1 for add, operand length for sub)"),
    F("reverse_answer", FT_BOOL, D, reverse_answer, 0, 1, 0, NULL, NULL, "false",
      "answer digits least-significant first (MIB: false; with RoPE it hinders learning, see docs/arith-recipe.md)"),
    F("answer_only_loss", FT_BOOL, D, answer_only_loss, 0, 1, 0, NULL, NULL, "true",
      "training loss on answer tokens only, not on the prompt"),
    F("chain_of_thought", FT_BOOL, D, chain_of_thought, 0, 1, 0, NULL, NULL, "true",
      "the teacher also learns the digit-wise chain-of-thought format (needed by the cot method)"),
    F("cot_fraction", FT_FLOAT, D, cot_fraction, 0, 1, FL_HI_OPEN, NULL, NULL, "0.125",
      "fraction of the teacher's training examples in chain-of-thought format"),
    F("mib_jsonl", FT_FILES, D, mib_jsonl, 0, 0, 0, NULL, NULL, "[]",
      "MIB-format JSONL files whose rows replace the generated AtP set (and are held out of every training stream)"),
    END};
#undef D
static const struct spec_section data_section = {"data", data_fields};

/* ---- training ---- */
#define T struct spec_train
static const struct spec_field train_fields[] = {
    F("steps", FT_INT, T, steps, 1, BIG, 0, NULL, NULL, "2000", "optimizer steps"),
    F("batch", FT_INT, T, batch, 1, 65536, 0, NULL, NULL, "64", "examples per step"),
    F("lr", FT_FLOAT, T, lr, 0, 1, FL_LO_OPEN, NULL, NULL, "1e-3", "peak learning rate"),
    F("schedule", FT_ENUM, T, schedule, 0, 0, 0, spec_schedule_names, NULL, "warmup_cosine",
      "learning-rate schedule after the warm-up"),
    F("warmup_steps", FT_INT, T, warmup_steps, 0, BIG, 0, NULL, NULL, "100", "linear warm-up from 0; < steps"),
    F("min_lr_ratio", FT_FLOAT, T, min_lr_ratio, 0, 1, 0, NULL, NULL, "0.1", "final lr as a fraction of lr"),
    F("decay_fraction", FT_FLOAT, T, decay_fraction, 0, 1, FL_LO_OPEN, NULL, NULL, "0.2",
      "constant_then_decay: the last fraction of steps, cosine-decayed to min_lr_ratio"),
    F("weight_decay", FT_FLOAT, T, weight_decay, 0, 10, 0, NULL, NULL, "0.1", "AdamW decoupled weight decay"),
    F("beta1", FT_FLOAT, T, beta1, 0, 1, FL_HI_OPEN, NULL, NULL, "0.9", "AdamW first-moment decay"),
    F("beta2", FT_FLOAT, T, beta2, 0, 1, FL_HI_OPEN, NULL, NULL, "0.95", "AdamW second-moment decay"),
    F("grad_clip", FT_FLOAT, T, grad_clip, 0, 1e6, 0, NULL, NULL, "1.0", "global gradient-norm clip; 0 = off"),
    F("checkpoint_interval", FT_INT, T, checkpoint_interval, 0, BIG, 0, NULL, NULL, "500",
      "steps between checkpoints; 0 = only at the end and on a signal"),
    F("eval_interval", FT_INT, T, eval_interval, 0, BIG, 0, NULL, NULL, "250",
      "steps between held-out accuracy evaluations; 0 = only at the end"),
    F("seed_offset", FT_INT, T, seed_offset, 0, 1000000, 0, NULL, NULL, "0",
      "added to the experiment seed for this stage's initialisation and sampling"),
    F("length_weights", FT_FLOATS, T, length_weights, 0, 1e6, 0, NULL, NULL, "[]",
      "sampling weight per operand length, one per length of the stage's range; [] = uniform"),
    F("curriculum", FT_BOOL, T, curriculum, 0, 1, 0, NULL, NULL, "false",
      "start with the shortest operands and add longer lengths over curriculum_fraction of the steps"),
    F("curriculum_fraction", FT_FLOAT, T, curriculum_fraction, 0, 1, FL_LO_OPEN, NULL, NULL, "0.3",
      "fraction of the steps after which every length is in play"),
    END};
#undef T
static const struct spec_section train_section = {"train", train_fields};

#define S struct experiment_spec
static const struct spec_field training_fields[] = {
    F("teacher", FT_SECTION, S, training.teacher, 0, 0, 0, NULL, &train_section, NULL,
      "the teacher's recipe (arch teachers only), on train_digits"),
    F("student_base", FT_SECTION, S, training.student_base, 0, 0, 0, NULL, &train_section, "{seed_offset: 1000}",
      "the weak student base's recipe, on student_train_digits"),
    F("distill", FT_SECTION, S, training.distill, 0, 0, 0, NULL, &train_section,
      "{steps: 1000, seed_offset: 2000}", "the recipe of every distillation run, on student_train_digits"),
    END};
static const struct spec_section training_section = {"training", training_fields};

/* ---- atp, circuit, distill, eval, parallel ---- */
static const struct spec_field atp_fields[] = {
    F("level", FT_ENUM, struct spec_atp, level, 0, 0, 0, spec_atp_level_names, NULL, "node",
      "score nodes (heads, MLPs) or edges between them"),
    F("ig_steps", FT_INT, struct spec_atp, ig_steps, 0, 1000, 0, NULL, NULL, "0",
      "0: plain attribution patching; m: EAP-IG with m interpolation steps"),
    F("qk_fix", FT_BOOL, struct spec_atp, qk_fix, 0, 1, 0, NULL, NULL, "false",
      "AtP*: exact softmax for query/key patches"),
    F("grad_drop", FT_BOOL, struct spec_atp, grad_drop, 0, 1, 0, NULL, NULL, "false", "AtP*: GradDrop"),
    F("batch", FT_INT, struct spec_atp, batch, 1, 65536, 0, NULL, NULL, "32", "examples per AtP forward/backward"),
    F("exact_patching_samples", FT_INT, struct spec_atp, exact_patching_samples, 0, 10000000, 0, NULL, NULL, "64",
      "examples for exact activation patching (AtP agreement); 0 = no patch stage"),
    END};
static const struct spec_section atp_section = {"atp", atp_fields};

static const struct spec_field circuit_fields[] = {
    F("sizes", FT_FLOATS, struct spec_circuit, sizes, 0, 100, FL_LO_OPEN, NULL, NULL,
      "[0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100]",
      "circuit sizes in percent of components, strictly increasing (MIB's list)"),
    F("ablation", FT_ENUM, struct spec_circuit, ablation, 0, 0, 0, spec_ablation_names, NULL, "counterfactual",
      "what replaces components outside the circuit"),
    F("nfs_size", FT_FLOAT, struct spec_circuit, nfs_size, 0, 100, FL_LO_OPEN, NULL, NULL, "10",
      "percent: the fixed-size circuit whose normalized faithfulness eval reports"),
    END};
static const struct spec_section circuit_section = {"circuit", circuit_fields};

static const struct spec_field method_fields[] = {
    F("method", FT_ENUM, struct spec_method_run, method, 0, 0, FL_REQUIRED, spec_method_names, NULL, NULL,
      "the distillation method"),
    F("subnetwork", FT_BOOL, struct spec_method_run, subnetwork, 0, 1, 0, NULL, NULL, "false",
      "update only the student circuit's parameters"),
    F("lambda_task", FT_FLOAT, struct spec_method_run, lambda_task, 0, 1000, FL_INHERIT, NULL, NULL,
      "distill.lambda_task", "this run's task-loss weight"),
    F("lambda_kd", FT_FLOAT, struct spec_method_run, lambda_kd, 0, 1000, FL_INHERIT, NULL, NULL,
      "distill.lambda_kd", "this run's KL weight (kd, cd_a, cd_b only)"),
    F("lambda_align", FT_FLOAT, struct spec_method_run, lambda_align, 0, 1000, FL_INHERIT, NULL, NULL,
      "distill.lambda_align", "this run's CKA-alignment weight (cd_a, cd_b only)"),
    END};
const struct spec_section spec_method_section = {"distill.methods[]", method_fields};

#define DI struct spec_distill
static const struct spec_field distill_fields[] = {
    F("methods", FT_METHODS, DI, methods, 0, 0, 0, NULL, &spec_method_section, "[sft, kd, cot, cd_a, cd_b]",
      "the runs of the grid, each once per seed: a name (sft, kd, cot, cd_a, cd_b, or one of them + _subnet) or "
      "a mapping (keys below)"),
    F("lambda_task", FT_FLOAT, DI, lambda_task, 0, 1000, 0, NULL, NULL, "1", "weight of CE on the gold answer"),
    F("lambda_kd", FT_FLOAT, DI, lambda_kd, 0, 1000, 0, NULL, NULL, "1", "weight of KL to the teacher's logits"),
    F("lambda_align", FT_FLOAT, DI, lambda_align, 0, 1000, 0, NULL, NULL, "1",
      "weight of the sum of (1 - CKA) over mapped circuit components"),
    F("temperature", FT_FLOAT, DI, temperature, 0, 100, FL_LO_OPEN, NULL, NULL, "2",
      "KL softmax temperature (loss scaled by T^2)"),
    F("kl_direction", FT_ENUM, DI, kl_direction, 0, 0, 0, spec_kl_direction_names, NULL, "forward",
      "forward: KL(p_T || p_S); reverse: KL(p_S || p_T)"),
    F("cka_unbiased", FT_BOOL, DI, cka_unbiased, 0, 1, 0, NULL, NULL, "false",
      "unbiased-HSIC CKA (small batches) instead of linear CKA"),
    F("align_rows", FT_ENUM, DI, align_rows, 0, 0, 0, spec_align_rows_names, NULL, "answer",
      "positions that give CKA rows: answer tokens, the last prompt token, or all positions"),
    F("circuit_size", FT_FLOAT, DI, circuit_size, 0, 100, FL_LO_OPEN, NULL, NULL, "10",
      "percent: the teacher circuit whose components are mapped and aligned"),
    END};
#undef DI
static const struct spec_section distill_section = {"distill", distill_fields};

static const struct spec_field eval_fields[] = {
    F("batch", FT_INT, struct spec_eval, batch, 1, 65536, 0, NULL, NULL, "64", "examples per evaluation batch"),
    F("max_new_tokens", FT_INT, struct spec_eval, max_new_tokens, 1, 4096, 0, NULL, NULL, "16",
      "greedy decoding limit per answer"),
    F("robustness_interventions", FT_INT, struct spec_eval, robustness_interventions, 0, 10000000, 0, NULL, NULL,
      "256", "interchange interventions per run for interventional robustness; 0 = skip"),
    END};
static const struct spec_section eval_section = {"eval", eval_fields};

static const struct spec_field parallel_fields[] = {
    F("ranks", FT_INT, struct spec_parallel, ranks, 0, 65536, 0, NULL, NULL, "0",
      "ranks `circd plan` lays out for; 0 = as many as the launcher starts"),
    F("teacher_pipeline_stages", FT_INT, struct spec_parallel, teacher_pipeline_stages, 1, 1024, 0, NULL, NULL,
      "1", "pipeline stages the teacher's layers are split into"),
    F("data_parallel_ranks", FT_INT, struct spec_parallel, data_parallel_ranks, 1, 1024, 0, NULL, NULL, "1",
      "ranks each distillation run trains on: every batch split by rows, gradients all-reduced (MPI or NCCL); not "
      "with teacher_pipeline_stages > 1"),
    F("atp_shards", FT_INT, struct spec_parallel, atp_shards, 0, 65536, 0, NULL, NULL, "0",
      "dataset shards of attribution patching; 0 = one per rank"),
    END};
static const struct spec_section parallel_section = {"parallel", parallel_fields};

/* ---- the top level ---- */
static const struct spec_field root_fields[] = {
    F("name", FT_NAME, S, name, 0, 0, FL_REQUIRED, NULL, NULL, NULL, "the experiment's name"),
    F("output", FT_STRING, S, output, 0, 0, FL_DERIVED, NULL, NULL, "runs/<name>",
      "output directory (results.h5, checkpoints), relative to the working directory; `circd run --output` wins"),
    F("seeds", FT_INTS, S, seeds, 0, 2147483647, 0, NULL, NULL, "[0]",
      "distinct seeds; every distillation run repeats per seed, teacher and base use the first"),
    GROUP("models", FL_REQUIRED, &models_section, "teacher and student"),
    F("data", FT_SECTION, S, data, 0, 0, 0, NULL, &data_section, NULL, "the arithmetic task"),
    GROUP("training", 0, &training_section, "training recipes"),
    F("atp", FT_SECTION, S, atp, 0, 0, 0, NULL, &atp_section, NULL, "circuit discovery"),
    F("circuit", FT_SECTION, S, circuit, 0, 0, 0, NULL, &circuit_section, NULL, "circuits and faithfulness"),
    F("distill", FT_SECTION, S, distill, 0, 0, 0, NULL, &distill_section, NULL, "distillation methods and losses"),
    F("eval", FT_SECTION, S, eval, 0, 0, 0, NULL, &eval_section, NULL, "evaluation"),
    F("parallel", FT_SECTION, S, parallel, 0, 0, 0, NULL, &parallel_section, NULL, "MPI layout"),
    F("device", FT_ENUM, S, device, 0, 0, 0, spec_device_names, NULL, "cpu",
      "where the stages that compute with a model run: cpu, or cuda (each MPI rank on the GPU of its node-local "
      "rank; needs a circd built with -DCIRCD_CUDA=ON); data and report always run on the CPU"),
    F("devices", FT_DEVICES, S, devices, 0, 0, 0, spec_device_names, NULL, "{}",
      "per-stage devices: a stage kind (train, eval, atp, patch, circuit, distill, distill-eval) or an exact stage "
      "name (atp-teacher, distill-cd_a-0, ...) mapped to cpu or cuda; a name wins over its kind, a kind over device"),
    F("precision", FT_ENUM, S, precision, 0, 0, 0, spec_precision_names, NULL, "fp32",
      "matmul precision of the stages on cuda: fp32, or bf16 (bfloat16 inputs, fp32 accumulation, fp32 weights and "
      "gradients); bf16 needs a stage on cuda"),
    END};
#undef S
const struct spec_section spec_root_section = {"", root_fields};

static void list_names(const char *const *names, char *buf, size_t size)
{
    size_t o = 0;
    buf[0] = '\0';
    for (int i = 0; names[i] && o < size; i++)
        o += (size_t)snprintf(buf + o, size - o, "%s%s", i ? ", " : "", names[i]);
}

static void range_text(const struct spec_field *f, char *buf, size_t size)
{
    snprintf(buf, size, "%c%.10g, %.10g%c", f->flags & FL_LO_OPEN ? '(' : '[', f->lo, f->hi,
             f->flags & FL_HI_OPEN ? ')' : ']');
}

const char *spec_field_expectation(const struct spec_field *f, char *buf, size_t size)
{
    char r[96], names[256];
    range_text(f, r, sizeof r);
    if (f->names) list_names(f->names, names, sizeof names);
    switch (f->type) {
    case FT_INT: snprintf(buf, size, "an integer in %s", r); break;
    case FT_COUNT: snprintf(buf, size, "an integer in %s or infinite", r); break;
    case FT_FLOAT: snprintf(buf, size, "a number in %s", r); break;
    case FT_BOOL: snprintf(buf, size, "true or false"); break;
    case FT_NAME: snprintf(buf, size, "a name of letters, digits, '.', '_' and '-'"); break;
    case FT_STRING: snprintf(buf, size, "a non-empty string"); break;
    case FT_ENUM: snprintf(buf, size, "one of %s", names); break;
    case FT_ENUM_SET: snprintf(buf, size, "a list of distinct items from %s (at least one)", names); break;
    case FT_DIGITS:
        snprintf(buf, size, "a digit count N or a range [LO, HI] with 1 <= LO <= HI <= %d", SPEC_MAX_DIGITS);
        break;
    case FT_INTS: snprintf(buf, size, "a list of 1 to %d integers in %s", SPEC_MAX_LIST, r); break;
    case FT_FLOATS: snprintf(buf, size, "a list of up to %d numbers in %s", SPEC_MAX_LIST, r); break;
    case FT_TEMPLATES:
        snprintf(buf, size, "a list of 1 to %d strings, each with one {x} and one {y}", SPEC_MAX_LIST);
        break;
    case FT_FILES: snprintf(buf, size, "a list of paths to existing files"); break;
    case FT_SECTION: snprintf(buf, size, "a mapping"); break;
    case FT_MODEL: snprintf(buf, size, "a mapping with either arch or checkpoint"); break;
    case FT_CHECKPOINT: snprintf(buf, size, "a Hugging Face checkpoint directory containing config.json"); break;
    case FT_METHODS: snprintf(buf, size, "a list of up to %d method runs", SPEC_MAX_LIST); break;
    case FT_DEVICES: snprintf(buf, size, "a mapping from stage kinds or stage names to cpu or cuda"); break;
    }
    return buf;
}

/* Markdown cell text: '|' escaped so that it stays inside its column. */
static void cell(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '|') fputc('\\', out);
        fputc(*s, out);
    }
}

struct printed { const struct spec_section *section; char path[96]; };

static void print_section(FILE *out, const struct spec_section *s, const char *path, struct printed *seen,
                          int *n_seen)
{
    for (const struct spec_field *f = s->fields; f->key; f++) {
        char p[128], exp[256];
        if (path[0]) snprintf(p, sizeof p, "%s.%s", path, f->key);
        else snprintf(p, sizeof p, "%s", f->key);
        const struct spec_section *sub = f->type == FT_SECTION || f->type == FT_MODEL ? f->section : NULL;
        const char *same_as = NULL;
        for (int i = 0; sub && i < *n_seen; i++)
            if (seen[i].section == sub) same_as = seen[i].path;
        fprintf(out, "| `%s` | ", p);
        spec_field_expectation(f, exp, sizeof exp);
        cell(out, exp);
        if (same_as) fprintf(out, " with the keys of `%s`", same_as);
        fprintf(out, " | ");
        if (f->flags & FL_REQUIRED) fprintf(out, "required");
        else if (f->flags & (FL_DERIVED | FL_INHERIT)) {
            fprintf(out, "= ");
            cell(out, f->def);
        } else if (f->def) {
            fputc('`', out);
            cell(out, f->def);
            fputc('`', out);
            if (sub) fprintf(out, " over the keys' defaults");
        } else if (sub) fprintf(out, "(the keys' defaults)");
        else fprintf(out, "none");
        fprintf(out, " | ");
        cell(out, f->doc);
        fprintf(out, " |\n");
        if (sub && !same_as) {
            if (*n_seen < 16) {
                seen[*n_seen].section = sub;
                snprintf(seen[*n_seen].path, sizeof seen[0].path, "%s", p);
                ++*n_seen;
            }
            print_section(out, sub, p, seen, n_seen);
        }
        if (f->type == FT_METHODS) {
            snprintf(p + strlen(p), sizeof p - strlen(p), "[]");
            print_section(out, f->section, p, seen, n_seen);
        }
    }
}

void spec_print_schema(FILE *out)
{
    struct printed seen[16];
    int n_seen = 0;
    fprintf(out, "| key | type and range | default | meaning |\n|---|---|---|---|\n");
    print_section(out, &spec_root_section, "", seen, &n_seen);
}
