/* spec_internal.h — what the spec loader's files share: the YAML node tree (yaml_tree.c), the loading context that
 * collects errors (spec_errors.c), the schema tables (spec_schema.c), the table-driven decoder (spec_decode.c) and
 * the cross-field checks (spec_check.c). Not for use outside runtime/spec/. */
#ifndef CIRCD_SPEC_INTERNAL_H
#define CIRCD_SPEC_INTERNAL_H

#include <stddef.h>

#include "spec/spec.h"

/* ---- YAML tree: libyaml events folded into nodes that remember where they started ---- */
enum ynode_kind { YN_SCALAR, YN_SEQ, YN_MAP };

struct ynode {
    enum ynode_kind kind;
    int line, col;            /* 1-based start of the node */
    int plain;                /* scalar written without quotes or block style (so it may be a number, bool, null) */
    char *text;               /* scalar value, NUL-terminated (may contain NULs before len) */
    size_t len;
    struct ynode **child;     /* sequence: items; mapping: key0, value0, key1, value1, ... */
    int n, cap;
};

#define YAML_MAX_DEPTH 64

struct spec_ctx;
/* Parses one YAML document into *root (NULL for an empty stream). Syntax errors, anchors, aliases, tags, several
 * documents and nesting deeper than YAML_MAX_DEPTH are reported through `c` (root may still be partial). Returns
 * CIRCD_ENOMEM on allocation failure, 0 otherwise. */
int ytree_parse(struct spec_ctx *c, const char *text, size_t len, struct ynode **root);
void ytree_free(struct ynode *n);
/* The value of `key` in mapping `map` (NULL if absent or `map` is not a mapping). */
const struct ynode *ytree_get(const struct ynode *map, const char *key);
/* The node at a dotted path ("data.train_digits"), or the deepest ancestor that exists; NULL only for no root. */
const struct ynode *ytree_find(const struct ynode *root, const char *path);

/* Scalar interpretation (YAML 1.2 core schema, plain scalars only). */
int ynode_is_null(const struct ynode *n);
int ynode_bool(const struct ynode *n, int *value);          /* 1 if n is true/false */
int ynode_int(const struct ynode *n, long long *value);     /* 1 if n is an integer (or an integral 1e5) */
int ynode_float(const struct ynode *n, double *value);      /* 1 if n is a number (finite or not) */
/* "integer 5", "string \"abc\"", "a list of 3 items", "a mapping", "null (no value)" — for "found ..." texts. */
const char *ynode_describe(const struct ynode *n, char *buf, size_t size);

/* ---- loading context and error collection ---- */
struct spec_ctx {
    const char *origin;        /* file name in messages */
    const char *dir;           /* base for relative paths */
    struct spec_errors *errs;
    const struct ynode *root;
    int oom;                   /* an allocation failed somewhere: the load fails with CIRCD_ENOMEM */
};

/* Record an error at a node (n may be NULL: line 1, column 1) or at an explicit position; line 0 = no position. */
void spec_err(struct spec_ctx *c, enum spec_error_kind kind, const struct ynode *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void spec_err_at(struct spec_ctx *c, enum spec_error_kind kind, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Record at the node for a dotted key path (or its nearest present ancestor). */
void spec_err_path(struct spec_ctx *c, enum spec_error_kind kind, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void spec_errors_sort(struct spec_errors *errs);
/* The closest of `candidates` (NULL-terminated) to `word` if it is a near miss (small edit distance), else NULL. */
const char *spec_suggest(const char *word, const char *const *candidates);

/* ---- schema ---- */
enum spec_ftype {
    FT_INT,        /* int; range [lo, hi] */
    FT_COUNT,      /* long long; a count in [lo, hi] or the word "infinite" (stored as 0) */
    FT_FLOAT,      /* double; range with FL_LO_OPEN / FL_HI_OPEN */
    FT_BOOL,       /* int 0/1 */
    FT_NAME,       /* char *; [A-Za-z0-9._-]+ */
    FT_STRING,     /* char *; non-empty */
    FT_ENUM,       /* int; one of names[] */
    FT_ENUM_SET,   /* unsigned bit mask over names[]; at least one */
    FT_DIGITS,     /* struct spec_digits; 1 <= lo <= hi <= SPEC_MAX_DIGITS */
    FT_INTS,       /* struct spec_ints; each item in [lo, hi], at least one */
    FT_FLOATS,     /* struct spec_floats; each item in range, may be empty */
    FT_TEMPLATES,  /* struct spec_strings; each with exactly one {x} and one {y}, at least one */
    FT_FILES,      /* struct spec_strings; existing files, resolved */
    FT_SECTION,    /* nested mapping described by `section` */
    FT_MODEL,      /* struct spec_model: a mapping with exactly one of arch / checkpoint */
    FT_CHECKPOINT, /* inside FT_MODEL: a Hugging Face directory */
    FT_METHODS,    /* struct spec_distill's methods[] */
    FT_DEVICES     /* struct spec_devices: stage kind or stage name -> cpu | cuda (spec_devices.c) */
};

enum { FL_REQUIRED = 1, FL_DERIVED = 2, FL_LO_OPEN = 4, FL_HI_OPEN = 8, FL_INHERIT = 16 };

struct spec_section;
struct spec_field {
    const char *key;
    enum spec_ftype type;
    size_t offset;                      /* into the struct the section decodes into */
    double lo, hi;                      /* numeric range (of the items, for lists) */
    unsigned flags;
    const char *const *names;           /* FT_ENUM, FT_ENUM_SET */
    const struct spec_section *section; /* FT_SECTION */
    const char *def;                    /* default as YAML text; NULL with FL_REQUIRED, FL_DERIVED or FL_INHERIT */
    const char *doc;                    /* one line for experiments/README.md */
};

struct spec_section {
    const char *name;
    const struct spec_field *fields;    /* ends with a field whose key is NULL */
};

extern const struct spec_section spec_root_section, spec_method_section;

/* Human text for a field's type and range ("an integer in [1, 65536]"). */
const char *spec_field_expectation(const struct spec_field *f, char *buf, size_t size);

/* ---- decoding (spec_decode.c) and checks (spec_check.c) ---- */
/* Writes every default of `s` (recursively) into base. Returns 0 or CIRCD_ENOMEM / CIRCD_EINTERNAL. */
int spec_apply_defaults(const struct spec_section *s, void *base);
/* Decodes mapping `map` against `s` into base (defaults must already be there); `path` is the key path of the
 * mapping ("" for the root). Returns a bit mask of the fields that were present (bit i = s->fields[i]). */
unsigned long long spec_decode_section(struct spec_ctx *c, const struct spec_section *s, const struct ynode *map,
                                       void *base, const char *path);
/* One choice of f->names for node n at `path`: its index, or -1 after reporting the error (with a suggestion). */
int spec_decode_choice(struct spec_ctx *c, const struct spec_field *f, const struct ynode *n, const char *path);
/* `devices:` (spec_devices.c): decodes the mapping into out (positions kept, keys checked later by
 * spec_check_devices, which needs the whole spec), releases it, and checks keys, values and `precision`. */
void spec_decode_devices(struct spec_ctx *c, const struct spec_field *f, const struct ynode *n,
                         struct spec_devices *out, const char *path);
void spec_release_devices(struct spec_devices *d);
void spec_check_devices(struct spec_ctx *c, struct experiment_spec *spec);
/* Frees the owned strings of a struct decoded with `s`. */
void spec_release_section(const struct spec_section *s, void *base);
/* Per-run loss weights: inherited ones (NaN) from the section, 0 for terms the method does not use. */
void spec_resolve_weights(struct spec_distill *d);
/* Cross-field checks and derived values on a decoded spec. */
void spec_check(struct spec_ctx *c, struct experiment_spec *spec);

#endif
