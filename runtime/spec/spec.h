/* spec.h — the experiment spec: a YAML file (experiments/arith.yaml, smoke.yaml; schema in experiments/README.md)
 * loaded into a validated `struct experiment_spec` that every later layer (plan, stages, results) reads.
 *
 * Loading never stops at the first problem: every error is collected into a `struct spec_errors`, each one a line
 * "FILE:LINE:COL: KEY.PATH: found ..., expected ..." (1-based line and column of the offending YAML node). Kinds:
 * bad YAML syntax, wrong type, out of range, missing required key, unknown key (with a "did you mean" hint), duplicate
 * key, dangling reference (a checkpoint directory or mib_jsonl file that does not exist; relative paths are resolved
 * against the spec file's directory), and inconsistent values (n_kv_heads not dividing n_heads, OOD digits the
 * teacher never saw, ...). YAML anchors, aliases and tags are rejected with an error that says so.
 *
 * Every key has a type, a default and a range; the table lives in spec_schema.c and `circd validate --schema`
 * prints it. Numbers are stored as int or double, switches as int 0/1, choices as enums, sets as bit masks. */
#ifndef CIRCD_SPEC_SPEC_H
#define CIRCD_SPEC_SPEC_H

#include <stddef.h>
#include <stdio.h>

#include "model/config.h"

#define SPEC_MAX_LIST 64   /* most items in any list (seeds, templates, sizes, methods, files, weights) */
#define SPEC_MAX_DIGITS 9  /* longest operand in digits (answers then fit easily in 64-bit arithmetic) */

enum spec_operation { SPEC_OP_ADD, SPEC_OP_SUB, SPEC_OP_COUNT };
enum spec_counterfactual {
    SPEC_CF_RANDOM, SPEC_CF_ONES_OP1, SPEC_CF_ONES_OP2, SPEC_CF_TENS_OP1, SPEC_CF_TENS_OP2, SPEC_CF_ONES_CARRY,
    SPEC_CF_TENS_CARRY, SPEC_CF_COUNT
};
enum spec_tokenizer { SPEC_TOKENIZER_DIGIT, SPEC_TOKENIZER_LLAMA3_CHUNKS };
enum spec_schedule { SPEC_SCHEDULE_WARMUP_COSINE, SPEC_SCHEDULE_CONSTANT, SPEC_SCHEDULE_CONSTANT_THEN_DECAY };
enum spec_atp_level { SPEC_ATP_NODE, SPEC_ATP_EDGE };
enum spec_ablation { SPEC_ABLATION_COUNTERFACTUAL, SPEC_ABLATION_MEAN };
enum spec_method { SPEC_METHOD_SFT, SPEC_METHOD_KD, SPEC_METHOD_COT, SPEC_METHOD_CD_A, SPEC_METHOD_CD_B,
                   SPEC_METHOD_COUNT };
enum spec_kl_direction { SPEC_KL_FORWARD, SPEC_KL_REVERSE };
enum spec_align_rows { SPEC_ALIGN_ANSWER, SPEC_ALIGN_LAST_PROMPT, SPEC_ALIGN_ALL };
enum spec_device { SPEC_DEVICE_CPU, SPEC_DEVICE_CUDA };
enum spec_precision { SPEC_PRECISION_FP32, SPEC_PRECISION_BF16 };

/* The YAML spelling of each enum value, indexed by the enum ("add", "ones_op1", "warmup_cosine", "cd_a", ...);
 * each table ends with NULL. */
extern const char *const spec_operation_names[];
extern const char *const spec_counterfactual_names[];
extern const char *const spec_tokenizer_names[];
extern const char *const spec_schedule_names[];
extern const char *const spec_atp_level_names[];
extern const char *const spec_ablation_names[];
extern const char *const spec_method_names[];
extern const char *const spec_kl_direction_names[];
extern const char *const spec_align_rows_names[];
extern const char *const spec_device_names[];    /* "cpu", "cuda" */
extern const char *const spec_precision_names[]; /* "fp32", "bf16" */
/* The stage kinds `devices:` accepts as keys, in the order of plan/plan.h's enum plan_kind ("data", "train", "eval",
 * "atp", "patch", "circuit", "distill", "distill-eval", "report"). */
extern const char *const spec_stage_kind_names[];

struct spec_ints { int items[SPEC_MAX_LIST]; int n; };
struct spec_floats { double items[SPEC_MAX_LIST]; int n; };
struct spec_strings { char *items[SPEC_MAX_LIST]; int n; };  /* owned, NUL-terminated */

/* Operand lengths in digits, both ends included (YAML: `2` or `[1, 5]`). */
struct spec_digits { int lo, hi; };

/* An architecture trained from scratch (vocab_size comes from the tokenizer). After loading, n_kv_heads, head_dim
 * and d_ff hold their derived values when the spec left them out (n_heads, d_model / n_heads, 4 * d_model). */
struct spec_arch {
    int d_model, n_layers, n_heads, n_kv_heads, head_dim, d_ff, max_seq;
    double rope_theta, norm_eps;
    int tie_embeddings;
};

struct spec_model {
    int from_checkpoint;         /* 0: `arch:` below; 1: `checkpoint:` */
    struct spec_arch arch;       /* from_checkpoint == 0 */
    char *checkpoint;            /* from_checkpoint == 1: the directory, resolved against the spec's directory */
    struct llama_config config;  /* from_checkpoint == 1: its config.json, already validated */
};

struct spec_data {
    unsigned operations;                     /* bit (1u << enum spec_operation); never empty */
    int seed;                                /* splits and examples are a function of this seed only */
    struct spec_digits train_digits;         /* the teacher's training operands (default 1-5) */
    struct spec_digits student_train_digits; /* the student base and every distillation method (default 1-3) */
    struct spec_digits id_test_digits;       /* in-distribution test (default 2) */
    struct spec_digits ood_test_digits;      /* out-of-distribution test (default 5) */
    struct spec_digits atp_digits;           /* the attribution-patching set (default 2, as MIB) */
    struct spec_strings templates_add;       /* prompts with exactly one {x} and one {y} */
    struct spec_strings templates_sub;
    unsigned atp_counterfactuals;            /* bit (1u << enum spec_counterfactual) */
    unsigned eval_counterfactuals;
    double same_length_fraction;             /* training problems whose two operands get the same length */
    long long train_examples;                /* 0 = an infinite stream of fresh examples */
    int id_test_size, ood_test_size, atp_size;
    enum spec_tokenizer tokenizer;
    int zero_pad_operands, zero_pad_answer, reverse_answer, answer_only_loss;
    int chain_of_thought;                    /* the teacher also learns the chain-of-thought format ... */
    double cot_fraction;                     /* ... on this fraction of its training examples */
    struct spec_strings mib_jsonl;           /* existing files, resolved against the spec's directory */
};

/* One training recipe: training.teacher, training.student_base and training.distill. */
struct spec_train {
    int steps, batch;
    double lr;
    enum spec_schedule schedule;
    int warmup_steps;
    double min_lr_ratio;                     /* final lr / peak lr */
    double decay_fraction;                   /* constant_then_decay: last fraction of the steps that decays */
    double weight_decay, beta1, beta2, grad_clip;
    int checkpoint_interval, eval_interval;  /* in steps; 0 = never */
    int seed_offset;                         /* added to the experiment seed */
    struct spec_floats length_weights;       /* sampling weight per operand length lo..hi of the stage's range;
                                                n == 0: uniform */
    int curriculum;                          /* grow the longest operand length over the first part of training */
    double curriculum_fraction;              /* ... over this fraction of the steps */
};

struct spec_atp {
    enum spec_atp_level level;
    int ig_steps;                 /* 0: plain AtP; m >= 1: EAP-IG with m interpolation steps */
    int qk_fix, grad_drop;        /* AtP* options */
    int batch;
    int exact_patching_samples;   /* examples for exact activation patching; 0 = skip the patch stage */
};

struct spec_circuit {
    struct spec_floats sizes;     /* percent of components, strictly increasing, in (0, 100] */
    enum spec_ablation ablation;
    double nfs_size;              /* percent: the fixed circuit size whose NFS eval reports */
};

/* One distillation run of the grid (each is run once per seed). Weights are resolved: the method's own override or
 * the distill section's value for the loss terms the method uses, 0 for the terms it does not. */
struct spec_method_run {
    enum spec_method method;
    int subnetwork;               /* update only the student's circuit parameters */
    double lambda_task, lambda_kd, lambda_align;
    char name[24];                /* "cd_a", "cd_a_subnet", ...: the results group /runs/<name> */
};

struct spec_distill {
    struct spec_method_run methods[SPEC_MAX_LIST];
    int n_methods;
    double lambda_task, lambda_kd, lambda_align;
    double temperature;
    enum spec_kl_direction kl_direction;
    int cka_unbiased;
    enum spec_align_rows align_rows;
    double circuit_size;          /* percent: the teacher circuit whose components are aligned */
};

struct spec_eval { int batch, max_new_tokens, robustness_interventions; };

/* One entry of `devices:`: a stage kind or an exact stage name, its device, and where the file says so. */
struct spec_device_rule {
    char *key;                    /* owned */
    enum spec_device device;
    int line, col;
};
struct spec_devices { struct spec_device_rule *items; int n; }; /* items owned */

struct spec_parallel {
    int ranks;                    /* hint for `circd plan`; 0 = whatever the launcher gives */
    int teacher_pipeline_stages;  /* split of the teacher's layers for pipelined forwards */
    int data_parallel_ranks;      /* ranks each distillation run trains on, splitting every batch by rows */
    int atp_shards;               /* 0 = one shard per rank */
};

struct experiment_spec {
    char *name;                   /* [A-Za-z0-9._-]+ */
    char *output;                 /* as written (relative to the working directory); default "runs/<name>" */
    struct spec_ints seeds;       /* distinct, >= 0; the teacher and student base use seeds.items[0] */
    struct spec_model teacher, student;
    struct spec_data data;
    struct { struct spec_train teacher, student_base, distill; } training;
    struct spec_atp atp;
    struct spec_circuit circuit;
    struct spec_distill distill;
    struct spec_eval eval;
    struct spec_parallel parallel;
    enum spec_device device;      /* `device:` every stage that can use it computes on (default cpu) */
    int device_line;              /* where `device:` is written (0: left to its default) */
    struct spec_devices devices;  /* per-kind / per-stage overrides: an exact stage name wins over its kind */
    enum spec_precision precision;/* matmul precision of the stages on cuda */
    char *path;                   /* the spec file as named (spec_load) or the origin (spec_load_string) */
    char *dir;                    /* directory relative paths were resolved against */
    char *yaml;                   /* the raw YAML text, NUL-terminated (results.h5 stores it as /spec) */
    size_t yaml_len;
};

/* ---- errors ---- */
enum spec_error_kind {
    SPEC_ERR_IO,            /* the spec file cannot be read */
    SPEC_ERR_SYNTAX,        /* not well-formed YAML, or anchors/aliases/tags/several documents */
    SPEC_ERR_TYPE,          /* e.g. a string where an integer belongs */
    SPEC_ERR_RANGE,         /* a number outside its range, an unknown choice, an empty list */
    SPEC_ERR_MISSING,       /* a required key is absent */
    SPEC_ERR_UNKNOWN,       /* a key the schema does not know */
    SPEC_ERR_DUPLICATE,     /* a key (or list item) given twice */
    SPEC_ERR_DANGLING,      /* a referenced directory/file that does not exist or is unusable */
    SPEC_ERR_INCONSISTENT   /* values that contradict each other */
};

struct spec_error {
    enum spec_error_kind kind;
    int line, col;          /* 1-based; 0 when the error has no position (SPEC_ERR_IO) */
    char *text;             /* the whole line: "FILE:LINE:COL: KEY.PATH: found ..., expected ..." */
};

struct spec_errors {
    struct spec_error *items;   /* sorted by position */
    int n, cap;
    int dropped;                /* errors beyond SPEC_MAX_ERRORS, counted but not kept */
};
#define SPEC_MAX_ERRORS 200

const char *spec_error_kind_name(enum spec_error_kind kind);  /* "syntax", "type", ... */
void spec_errors_print(const struct spec_errors *errs, FILE *out);
void spec_errors_free(struct spec_errors *errs);              /* leaves an empty, reusable list */

/* ---- loading ---- */
/* Reads and validates the spec at `path`. Returns 0, or CIRCD_EINPUT when the spec has errors (all of them in
 * `errs`; err_msg() holds the first with a count of the rest), CIRCD_EIO when the file cannot be read, CIRCD_ENOMEM.
 * `errs` may be NULL; when given it must be zero-initialised (or freed) and receives the errors. On failure `out` is
 * left zeroed; on success release it with spec_free. */
int spec_load(const char *path, struct experiment_spec *out, struct spec_errors *errs);
/* The same over an in-memory text of `len` bytes; `origin` names it in messages, relative paths resolve against
 * `base_dir` (NULL: the current directory). */
int spec_load_string(const char *text, size_t len, const char *origin, const char *base_dir,
                     struct experiment_spec *out, struct spec_errors *errs);
/* Fills every key with its default (models stay zeroed, name/output NULL, no raw text). */
int spec_defaults(struct experiment_spec *out);
void spec_free(struct experiment_spec *spec);  /* safe on a zeroed or already freed spec */

/* ---- helpers for the stages ---- */
/* The llama_config of an `arch:` model for a tokenizer of `vocab_size` tokens (bos/eos unset). */
void spec_arch_config(const struct spec_arch *arch, int vocab_size, struct llama_config *out);
/* Parameters without the embedding and lm_head (which depend on the tokenizer's vocabulary). */
long long spec_arch_parameters(const struct spec_arch *arch);
/* The device of the plan stage `stage` of kind `kind` (a spec_stage_kind_names entry): devices.<stage>, else
 * devices.<kind> (an eval-<run>-<seed> stage, kind distill-eval, also listens to devices.eval), else `device:` —
 * except that data and report stages, which compute with no model, stay on the CPU. *rule (may be NULL) receives
 * the index into devices.items that decided, or SPEC_DEVICE_FROM_TOP (`device:`), or SPEC_DEVICE_FROM_DEFAULT. */
#define SPEC_DEVICE_FROM_TOP (-1)
#define SPEC_DEVICE_FROM_DEFAULT (-2)
enum spec_device spec_stage_device(const struct experiment_spec *spec, const char *stage, const char *kind, int *rule);
/* Where a stage's device was chosen, for messages: "FILE:LINE: devices.atp", "FILE:LINE: device" or "the default
 * device". */
void spec_device_origin(const struct experiment_spec *spec, int rule, char *buf, size_t cap);
/* 1 when kind (a spec_stage_kind_names entry) computes with a model and so can run on a GPU. */
int spec_stage_kind_uses_device(const char *kind);
/* Prints the key table (key, type, default, range, meaning) as Markdown, as experiments/README.md holds it. */
void spec_print_schema(FILE *out);

#endif
