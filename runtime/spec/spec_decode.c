/* spec_decode.c — the table-driven half of the spec loader: walks a YAML mapping against a schema section
 * (spec_schema.c), decoding each value into its struct field and reporting wrong types, out-of-range values, unknown
 * keys (with a suggestion), duplicate keys and missing required keys — all of them, never stopping at the first.
 * Defaults are YAML text in the same tables and go through the same decoder. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "model/config.h"
#include "spec/spec_internal.h"
#include "util/error.h"

#define AT(base, f, T) ((T *)((char *)(base) + (f)->offset))

_Static_assert(sizeof(enum spec_method) == sizeof(int), "enums are stored as int");

static const char *show(const char *path) { return path[0] ? path : "top level"; }

static void join_path(char *out, size_t size, const char *path, const char *key)
{
    if (path[0]) snprintf(out, size, "%s.%s", path, key);
    else snprintf(out, size, "%s", key);
}

static void type_error(struct spec_ctx *c, const struct ynode *n, const char *path, const char *expected)
{
    char found[256];
    spec_err(c, SPEC_ERR_TYPE, n, "%s: found %s, expected %s", show(path), ynode_describe(n, found, sizeof found),
             expected);
}

static void range_error(struct spec_ctx *c, const struct ynode *n, const char *path, const char *expected)
{
    char found[256];
    spec_err(c, SPEC_ERR_RANGE, n, "%s: found %s, expected %s", show(path), ynode_describe(n, found, sizeof found),
             expected);
}

static int in_range(const struct spec_field *f, double v)
{
    if (!isfinite(v)) return 0;
    if (f->flags & FL_LO_OPEN ? !(v > f->lo) : !(v >= f->lo)) return 0;
    if (f->flags & FL_HI_OPEN ? !(v < f->hi) : !(v <= f->hi)) return 0;
    return 1;
}

static void range_text(const struct spec_field *f, char *buf, size_t size)
{
    snprintf(buf, size, "%c%.10g, %.10g%c", f->flags & FL_LO_OPEN ? '(' : '[', f->lo, f->hi,
             f->flags & FL_HI_OPEN ? ')' : ']');
}

/* An integer item in the field's range; 1 on success (errors reported). */
static int get_int(struct spec_ctx *c, const struct spec_field *f, const struct ynode *n, const char *path,
                   long long *v)
{
    char r[96], exp[160];
    range_text(f, r, sizeof r);
    snprintf(exp, sizeof exp, "an integer in %s", r);
    if (!ynode_int(n, v)) { type_error(c, n, path, exp); return 0; }
    if (!in_range(f, (double)*v)) { range_error(c, n, path, exp); return 0; }
    return 1;
}

static int get_float(struct spec_ctx *c, const struct spec_field *f, const struct ynode *n, const char *path,
                     double *v)
{
    char r[96], exp[160];
    range_text(f, r, sizeof r);
    snprintf(exp, sizeof exp, "a number in %s", r);
    if (!ynode_float(n, v)) { type_error(c, n, path, exp); return 0; }
    if (!in_range(f, *v)) { range_error(c, n, path, exp); return 0; }
    return 1;
}

/* A non-empty string without NUL bytes (any scalar style; plain numbers count as their text). */
static const char *get_string(struct spec_ctx *c, const struct ynode *n, const char *path, const char *expected)
{
    if (n->kind != YN_SCALAR || ynode_is_null(n)) { type_error(c, n, path, expected); return NULL; }
    if (n->len == 0 || strlen(n->text) != n->len) { range_error(c, n, path, expected); return NULL; }
    return n->text;
}

static int set_string(struct spec_ctx *c, char **slot, const char *text)
{
    char *copy = strdup(text);
    if (!copy) { c->oom = 1; return 0; }
    free(*slot);
    *slot = copy;
    return 1;
}

static void clear_strings(struct spec_strings *s)
{
    for (int i = 0; i < s->n; i++) free(s->items[i]);
    memset(s, 0, sizeof *s);
}

static int find_name(const char *const *names, const char *text)
{
    for (int i = 0; names[i]; i++)
        if (!strcmp(names[i], text)) return i;
    return -1;
}

/* One choice of names[]; -1 with a range error (and a suggestion) otherwise. */
int spec_decode_choice(struct spec_ctx *c, const struct spec_field *f, const struct ynode *n, const char *path)
{
    char exp[400], names[300];
    size_t o = 0;
    for (int i = 0; f->names[i]; i++) o += (size_t)snprintf(names + o, sizeof names - o, "%s%s", i ? ", " : "",
                                                            f->names[i]);
    snprintf(exp, sizeof exp, "one of %s", names);
    if (n->kind != YN_SCALAR || ynode_is_null(n)) { type_error(c, n, path, exp); return -1; }
    int k = strlen(n->text) == n->len ? find_name(f->names, n->text) : -1;
    if (k >= 0) return k;
    const char *hint = spec_suggest(n->text, f->names);
    char found[256];
    if (hint) spec_err(c, SPEC_ERR_RANGE, n, "%s: found %s, expected %s (did you mean %s?)", show(path),
                       ynode_describe(n, found, sizeof found), exp, hint);
    else range_error(c, n, path, exp);
    return -1;
}

/* Resolves a path against the spec's directory into a malloc'd string. */
static char *resolve(struct spec_ctx *c, const char *p)
{
    size_t need = strlen(p) + strlen(c->dir) + 2;
    char *out = malloc(need);
    if (!out) { c->oom = 1; return NULL; }
    if (p[0] == '/' || !strcmp(c->dir, ".")) snprintf(out, need, "%s", p);
    else snprintf(out, need, "%s/%s", c->dir, p);
    return out;
}

static void decode_checkpoint(struct spec_ctx *c, const struct ynode *n, struct spec_model *m, const char *path)
{
    const char *exp = "a Hugging Face checkpoint directory containing config.json";
    const char *p = get_string(c, n, path, exp);
    char *dir = p ? resolve(c, p) : NULL;
    if (!dir) return;
    struct stat st;
    char file[4200], found[256];
    ynode_describe(n, found, sizeof found);
    if (stat(dir, &st) != 0)
        spec_err(c, SPEC_ERR_DANGLING, n, "%s: found %s (%s), which does not exist (%s), expected %s", path, found,
                 dir, strerror(errno), exp);
    else if (!S_ISDIR(st.st_mode))
        spec_err(c, SPEC_ERR_DANGLING, n, "%s: found %s (%s), which is not a directory, expected %s", path, found,
                 dir, exp);
    else {
        snprintf(file, sizeof file, "%s/config.json", dir);
        struct stat cs;
        char weights[4200], index[4200];
        snprintf(weights, sizeof weights, "%s/model.safetensors", dir);
        snprintf(index, sizeof index, "%s/model.safetensors.index.json", dir);
        if (stat(file, &cs) != 0)
            spec_err(c, SPEC_ERR_DANGLING, n, "%s: found directory %s without config.json, expected %s", path, dir,
                     exp);
        else if (hf_config_read(&m->config, file) != 0)
            spec_err(c, SPEC_ERR_DANGLING, n, "%s: found a config.json that cannot be used (%s), expected a valid "
                     "Llama config.json", path, err_msg());
        else if (stat(weights, &cs) != 0 && stat(index, &cs) != 0)
            spec_err(c, SPEC_ERR_DANGLING, n, "%s: found directory %s without model.safetensors or "
                     "model.safetensors.index.json, expected the checkpoint's weights", path, dir);
    }
    free(m->checkpoint);
    m->checkpoint = dir;
}

static void decode_files(struct spec_ctx *c, const struct spec_field *f, const struct ynode *n,
                         struct spec_strings *out, const char *path)
{
    char exp[200], item[160];
    spec_field_expectation(f, exp, sizeof exp);
    if (n->kind != YN_SEQ) { type_error(c, n, path, exp); return; }
    if (n->n > SPEC_MAX_LIST) { range_error(c, n, path, exp); return; }
    clear_strings(out);
    for (int i = 0; i < n->n; i++) {
        snprintf(item, sizeof item, "%s[%d]", path, i);
        const struct ynode *e = n->child[i];
        const char *p = get_string(c, e, item, "a path to an existing file");
        char *file = p ? resolve(c, p) : NULL;
        if (!file) continue;
        struct stat st;
        char found[256];
        ynode_describe(e, found, sizeof found);
        if (stat(file, &st) != 0)
            spec_err(c, SPEC_ERR_DANGLING, e, "%s: found %s (%s), which does not exist (%s), expected an existing "
                     "MIB JSONL file", item, found, file, strerror(errno));
        else if (S_ISDIR(st.st_mode))
            spec_err(c, SPEC_ERR_DANGLING, e, "%s: found %s (%s), which is a directory, expected an existing MIB "
                     "JSONL file", item, found, file);
        out->items[out->n++] = file;
    }
}

/* Templates: exactly one {x}, one {y}, no other braces. */
static void decode_templates(struct spec_ctx *c, const struct spec_field *f, const struct ynode *n,
                             struct spec_strings *out, const char *path)
{
    char exp[200], item[160], found[256];
    spec_field_expectation(f, exp, sizeof exp);
    if (n->kind != YN_SEQ) { type_error(c, n, path, exp); return; }
    if (n->n == 0 || n->n > SPEC_MAX_LIST) { range_error(c, n, path, exp); return; }
    struct spec_strings got = {{0}, 0};
    for (int i = 0; i < n->n; i++) {
        snprintf(item, sizeof item, "%s[%d]", path, i);
        const char *t = get_string(c, n->child[i], item, "a prompt template string");
        if (!t) continue;
        int nx = 0, ny = 0, stray = 0;
        for (const char *p = t; *p; p++) {
            if (!strncmp(p, "{x}", 3)) { nx++; p += 2; }
            else if (!strncmp(p, "{y}", 3)) { ny++; p += 2; }
            else if (*p == '{' || *p == '}') stray++;
        }
        if (nx != 1 || ny != 1 || stray) {
            spec_err(c, SPEC_ERR_RANGE, n->child[i], "%s: found %s with %d {x}, %d {y} and %d other brace%s, "
                     "expected exactly one {x}, one {y} and no other braces", item,
                     ynode_describe(n->child[i], found, sizeof found), nx, ny, stray, stray == 1 ? "" : "s");
            continue;
        }
        if (!(got.items[got.n] = strdup(t))) { c->oom = 1; break; }
        got.n++;
    }
    if (got.n == 0) return; /* keep the previous (default) list rather than none */
    clear_strings(out);
    *out = got;
}

static void decode_methods(struct spec_ctx *c, const struct spec_field *f, const struct ynode *n,
                           struct spec_distill *d, const char *path);

static void decode_value(struct spec_ctx *c, const struct spec_field *f, const struct ynode *n, void *base,
                         const char *path)
{
    char exp[400], item[160];
    long long iv;
    double dv;
    switch (f->type) {
    case FT_INT:
        if (get_int(c, f, n, path, &iv)) *AT(base, f, int) = (int)iv;
        break;
    case FT_COUNT:
        if (n->kind == YN_SCALAR && n->plain && !strcmp(n->text, "infinite")) *AT(base, f, long long) = 0;
        else if (!ynode_int(n, &iv)) type_error(c, n, path, spec_field_expectation(f, exp, sizeof exp));
        else if (!in_range(f, (double)iv)) range_error(c, n, path, spec_field_expectation(f, exp, sizeof exp));
        else *AT(base, f, long long) = iv;
        break;
    case FT_FLOAT:
        if (get_float(c, f, n, path, &dv)) *AT(base, f, double) = dv;
        break;
    case FT_BOOL: {
        int b;
        if (ynode_bool(n, &b)) *AT(base, f, int) = b;
        else if (n->kind == YN_SCALAR && n->plain && strlen(n->text) == n->len &&
                 strspn(n->text, "yesnoYESNOfFON") == n->len && n->len <= 3)
            type_error(c, n, path, "true or false (YAML 1.1's yes/no/on/off are strings in YAML 1.2)");
        else type_error(c, n, path, "true or false");
        break;
    }
    case FT_NAME:
    case FT_STRING: {
        static const char name_chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";
        const char *t = get_string(c, n, path, spec_field_expectation(f, exp, sizeof exp));
        if (t && f->type == FT_NAME && (strspn(t, name_chars) != n->len || n->len > 128)) {
            range_error(c, n, path, "a name of at most 128 letters, digits, '.', '_' and '-'");
            t = NULL;
        }
        if (t) set_string(c, AT(base, f, char *), t);
        break;
    }
    case FT_ENUM: {
        int k = spec_decode_choice(c, f, n, path);
        if (k >= 0) *AT(base, f, int) = k;
        break;
    }
    case FT_ENUM_SET: {
        spec_field_expectation(f, exp, sizeof exp);
        if (n->kind != YN_SEQ) { type_error(c, n, path, exp); break; }
        if (n->n == 0) { range_error(c, n, path, exp); break; }
        unsigned mask = 0;
        for (int i = 0; i < n->n; i++) {
            snprintf(item, sizeof item, "%s[%d]", path, i);
            int k = spec_decode_choice(c, f, n->child[i], item);
            if (k < 0) continue;
            if (mask & (1u << k))
                spec_err(c, SPEC_ERR_DUPLICATE, n->child[i], "%s: found %s a second time, expected each item once",
                         item, f->names[k]);
            mask |= 1u << k;
        }
        if (mask) *AT(base, f, unsigned) = mask;
        break;
    }
    case FT_DIGITS: {
        spec_field_expectation(f, exp, sizeof exp);
        long long lo, hi;
        if (ynode_int(n, &lo)) hi = lo;
        else if (n->kind == YN_SEQ && n->n == 2 && ynode_int(n->child[0], &lo) && ynode_int(n->child[1], &hi)) {}
        else { type_error(c, n, path, exp); break; }
        if (lo < 1 || hi > SPEC_MAX_DIGITS || lo > hi) {
            if (n->kind == YN_SEQ)
                spec_err(c, SPEC_ERR_RANGE, n, "%s: found [%lld, %lld], expected %s", path, lo, hi, exp);
            else range_error(c, n, path, exp);
            break;
        }
        *AT(base, f, struct spec_digits) = (struct spec_digits){(int)lo, (int)hi};
        break;
    }
    case FT_INTS:
    case FT_FLOATS: {
        spec_field_expectation(f, exp, sizeof exp);
        if (n->kind != YN_SEQ) { type_error(c, n, path, exp); break; }
        if ((f->type == FT_INTS && n->n == 0) || n->n > SPEC_MAX_LIST) { range_error(c, n, path, exp); break; }
        struct spec_ints ints = {{0}, 0};
        struct spec_floats floats = {{0}, 0};
        int ok = 1;
        for (int i = 0; i < n->n; i++) {
            snprintf(item, sizeof item, "%s[%d]", path, i);
            if (f->type == FT_INTS && get_int(c, f, n->child[i], item, &iv)) ints.items[ints.n++] = (int)iv;
            else if (f->type == FT_FLOATS && get_float(c, f, n->child[i], item, &dv)) floats.items[floats.n++] = dv;
            else ok = 0;
        }
        if (!ok) break; /* keep the default: a partial list would only cause follow-up errors */
        if (f->type == FT_INTS) *AT(base, f, struct spec_ints) = ints;
        else *AT(base, f, struct spec_floats) = floats;
        break;
    }
    case FT_TEMPLATES: decode_templates(c, f, n, AT(base, f, struct spec_strings), path); break;
    case FT_FILES: decode_files(c, f, n, AT(base, f, struct spec_strings), path); break;
    case FT_SECTION: spec_decode_section(c, f->section, n, AT(base, f, char), path); break;
    case FT_MODEL: {
        struct spec_model *m = AT(base, f, struct spec_model);
        if (n->kind != YN_MAP) {
            type_error(c, n, path, "a mapping with either arch: {d_model: ..., ...} or checkpoint: DIR");
            break;
        }
        if (spec_apply_defaults(f->section, m)) { c->oom = 1; break; }
        unsigned long long seen = spec_decode_section(c, f->section, n, m, path);
        int has_arch = (int)(seen & 1), has_checkpoint = (int)((seen >> 1) & 1);
        if (has_arch && has_checkpoint)
            spec_err(c, SPEC_ERR_INCONSISTENT, n, "%s: found both arch and checkpoint, expected exactly one of them",
                     path);
        else if (!has_arch && !has_checkpoint)
            spec_err(c, SPEC_ERR_MISSING, n, "%s: found neither arch nor checkpoint, expected arch: {d_model: ..., "
                     "n_layers: ..., n_heads: ...} or checkpoint: DIR", path);
        m->from_checkpoint = has_checkpoint && !has_arch;
        break;
    }
    case FT_CHECKPOINT: decode_checkpoint(c, n, (struct spec_model *)base, path); break;
    case FT_METHODS: decode_methods(c, f, n, (struct spec_distill *)base, path); break;
    case FT_DEVICES: spec_decode_devices(c, f, n, AT(base, f, struct spec_devices), path); break;
    }
}

/* Every schema path that has `key` ("training.teacher.lr"), up to 3, comma-separated, for misplaced keys. */
static void find_elsewhere(const struct spec_section *s, const char *path, const char *key, char *out, size_t size,
                           int *found)
{
    for (const struct spec_field *f = s->fields; f->key && *found < 3; f++) {
        char p[160];
        join_path(p, sizeof p, path, f->key);
        if (!strcmp(f->key, key)) {
            size_t o = strlen(out);
            snprintf(out + o, size - o, "%s%s", *found ? ", " : "", path[0] ? path : "the top level");
            ++*found;
        }
        if (f->section && (f->type == FT_SECTION || f->type == FT_MODEL))
            find_elsewhere(f->section, p, key, out, size, found);
        if (f->type == FT_METHODS) {
            snprintf(p + strlen(p), sizeof p - strlen(p), "[]");
            find_elsewhere(f->section, p, key, out, size, found);
        }
    }
}

static void unknown_key(struct spec_ctx *c, const struct spec_section *s, const struct ynode *k, const char *path)
{
    const char *keys[65];
    char list[1024], found[256], elsewhere[400] = "";
    int n = 0, where = 0;
    size_t o = 0;
    for (const struct spec_field *f = s->fields; f->key && n < 64; f++) {
        keys[n++] = f->key;
        o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", n > 1 ? ", " : "", f->key);
        if (o >= sizeof list) o = sizeof list - 1;
    }
    keys[n] = NULL;
    snprintf(found, sizeof found, "\"%.100s\"", k->text);
    const char *hint = strlen(k->text) == k->len ? spec_suggest(k->text, keys) : NULL;
    if (hint) {
        spec_err(c, SPEC_ERR_UNKNOWN, k, "%s: found unknown key %s, expected a key of %s (did you mean %s?)",
                 show(path), found, path[0] ? path : "the top level", hint);
        return;
    }
    if (strlen(k->text) == k->len) find_elsewhere(&spec_root_section, "", k->text, elsewhere, sizeof elsewhere, &where);
    if (where)
        spec_err(c, SPEC_ERR_UNKNOWN, k, "%s: found unknown key %s, expected one of %s (a key of that name belongs "
                 "in %s)", show(path), found, list, elsewhere);
    else spec_err(c, SPEC_ERR_UNKNOWN, k, "%s: found unknown key %s, expected one of %s", show(path), found, list);
}

unsigned long long spec_decode_section(struct spec_ctx *c, const struct spec_section *s, const struct ynode *map,
                                       void *base, const char *path)
{
    char list[1024];
    size_t o = 0;
    int nf = 0;
    for (const struct spec_field *f = s->fields; f->key; f++, nf++) {
        o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", nf ? ", " : "", f->key);
        if (o >= sizeof list) o = sizeof list - 1;
    }
    /* A null value ("data:" with every key commented out) is an empty mapping: defaults, but required keys are
     * still required. */
    if (map->kind != YN_MAP && !ynode_is_null(map)) {
        char exp[1100];
        snprintf(exp, sizeof exp, "a mapping with keys %s", list);
        type_error(c, map, path, exp);
        return 0;
    }
    unsigned long long seen = 0;
    const struct ynode *first[64] = {0};
    for (int i = 0; i + 1 < map->n; i += 2) {
        const struct ynode *k = map->child[i], *v = map->child[i + 1];
        if (k->kind != YN_SCALAR || ynode_is_null(k)) {
            char exp[1100];
            snprintf(exp, sizeof exp, "a key name (one of %s)", list);
            type_error(c, k, path, exp);
            continue;
        }
        int j = 0;
        while (j < nf && !(strlen(s->fields[j].key) == k->len && !memcmp(s->fields[j].key, k->text, k->len))) j++;
        if (j == nf) { unknown_key(c, s, k, path); continue; }
        if (seen >> j & 1) {
            spec_err(c, SPEC_ERR_DUPLICATE, k, "%s: found key \"%s\" a second time (first at line %d, column %d), "
                     "expected each key once", show(path), s->fields[j].key, first[j]->line, first[j]->col);
            continue;
        }
        seen |= 1ull << j;
        first[j] = k;
        char child[256];
        join_path(child, sizeof child, path, s->fields[j].key);
        decode_value(c, &s->fields[j], v, base, child);
    }
    for (int j = 0; j < nf; j++) {
        const struct spec_field *f = &s->fields[j];
        if (!(f->flags & FL_REQUIRED) || (seen >> j & 1)) continue;
        char exp[400];
        spec_err(c, SPEC_ERR_MISSING, map, "%s: found no key \"%s\", expected %s: %s (%s)", show(path), f->key,
                 f->key, spec_field_expectation(f, exp, sizeof exp), f->doc);
    }
    return seen;
}

/* ---- distill.methods ---- */
static void decode_methods(struct spec_ctx *c, const struct spec_field *f, const struct ynode *n,
                           struct spec_distill *d, const char *path)
{
    char exp[400], item[160], found[256];
    spec_field_expectation(f, exp, sizeof exp);
    if (n->kind != YN_SEQ) { type_error(c, n, path, exp); return; }
    if (n->n > SPEC_MAX_LIST) { range_error(c, n, path, exp); return; }
    static const char *const names[] = {"sft", "kd", "cot", "cd_a", "cd_b", "sft_subnet", "kd_subnet",
                                        "cot_subnet", "cd_a_subnet", "cd_b_subnet", NULL};
    struct spec_method_run runs[SPEC_MAX_LIST];
    const struct ynode *where[SPEC_MAX_LIST];
    int count = 0;
    for (int i = 0; i < n->n; i++) {
        const struct ynode *e = n->child[i];
        snprintf(item, sizeof item, "%s[%d]", path, i);
        struct spec_method_run r = {SPEC_METHOD_COUNT, 0, NAN, NAN, NAN, ""};
        if (e->kind == YN_SCALAR && !ynode_is_null(e)) {
            int k = strlen(e->text) == e->len ? find_name(names, e->text) : -1;
            if (k < 0) {
                const char *hint = strlen(e->text) == e->len ? spec_suggest(e->text, names) : NULL;
                spec_err(c, SPEC_ERR_RANGE, e, "%s: found %s, expected one of sft, kd, cot, cd_a, cd_b, optionally "
                         "with _subnet, or a mapping with key method%s%s%s", item,
                         ynode_describe(e, found, sizeof found), hint ? " (did you mean " : "", hint ? hint : "",
                         hint ? "?)" : "");
                continue;
            }
            r.method = (enum spec_method)(k % SPEC_METHOD_COUNT);
            r.subnetwork = k >= SPEC_METHOD_COUNT;
        } else if (e->kind == YN_MAP) {
            if (spec_apply_defaults(f->section, &r)) { c->oom = 1; return; }
            spec_decode_section(c, f->section, e, &r, item);
            if (r.method == SPEC_METHOD_COUNT) continue; /* no valid method: already reported */
            int uses_kd = r.method == SPEC_METHOD_KD || r.method == SPEC_METHOD_CD_A || r.method == SPEC_METHOD_CD_B;
            int uses_align = r.method == SPEC_METHOD_CD_A || r.method == SPEC_METHOD_CD_B;
            if (!uses_kd && !isnan(r.lambda_kd))
                spec_err(c, SPEC_ERR_INCONSISTENT, ytree_get(e, "lambda_kd"), "%s.lambda_kd: found a KL weight for "
                         "%s, which has no KL term, expected lambda_kd only on kd, cd_a and cd_b", item,
                         spec_method_names[r.method]);
            if (!uses_align && !isnan(r.lambda_align))
                spec_err(c, SPEC_ERR_INCONSISTENT, ytree_get(e, "lambda_align"), "%s.lambda_align: found an "
                         "alignment weight for %s, which has no CKA term, expected lambda_align only on cd_a and "
                         "cd_b", item, spec_method_names[r.method]);
        } else {
            type_error(c, e, item, "a method name (sft, kd, cot, cd_a, cd_b, optionally with _subnet) or a mapping "
                       "with key method");
            continue;
        }
        snprintf(r.name, sizeof r.name, "%s%s", spec_method_names[r.method], r.subnetwork ? "_subnet" : "");
        int dup = -1;
        for (int j = 0; j < count && dup < 0; j++)
            if (runs[j].method == r.method && runs[j].subnetwork == r.subnetwork) dup = j;
        if (dup >= 0) {
            spec_err(c, SPEC_ERR_DUPLICATE, e, "%s: found run %s a second time (first at line %d, column %d), "
                     "expected each method run once", item, r.name, where[dup]->line, where[dup]->col);
            continue;
        }
        where[count] = e;
        runs[count++] = r;
    }
    memcpy(d->methods, runs, (size_t)count * sizeof runs[0]);
    d->n_methods = count;
}

/* ---- defaults and release ---- */
static int decode_default(const struct spec_field *f, void *base)
{
    struct spec_errors errs = {0};
    struct spec_ctx dc = {"(schema default)", ".", &errs, NULL, 0};
    struct ynode *root = NULL;
    int rc = ytree_parse(&dc, f->def, strlen(f->def), &root);
    if (!rc && root) {
        if (f->type == FT_SECTION) spec_decode_section(&dc, f->section, root, AT(base, f, char), f->key);
        else decode_value(&dc, f, root, base, f->key);
    }
    if (dc.oom) rc = err_set(CIRCD_ENOMEM, "out of memory decoding the default of %s", f->key);
    else if (errs.n || !root) rc = err_set(CIRCD_EINTERNAL, "default of %s: %s", f->key,
                                           errs.n ? errs.items[0].text : "empty");
    ytree_free(root);
    spec_errors_free(&errs);
    return rc;
}

int spec_apply_defaults(const struct spec_section *s, void *base)
{
    int rc;
    for (const struct spec_field *f = s->fields; f->key; f++) {
        if (f->flags & (FL_REQUIRED | FL_DERIVED | FL_INHERIT) || f->type == FT_MODEL) continue;
        if (f->type == FT_SECTION) {
            if ((rc = spec_apply_defaults(f->section, AT(base, f, char)))) return rc;
            if (f->def && (rc = decode_default(f, base))) return rc;
        } else if (f->def && (rc = decode_default(f, base))) return rc;
    }
    return CIRCD_OK;
}

void spec_release_section(const struct spec_section *s, void *base)
{
    for (const struct spec_field *f = s->fields; f->key; f++) {
        switch (f->type) {
        case FT_NAME:
        case FT_STRING: free(*AT(base, f, char *)); *AT(base, f, char *) = NULL; break;
        case FT_TEMPLATES:
        case FT_FILES: clear_strings(AT(base, f, struct spec_strings)); break;
        case FT_SECTION: spec_release_section(f->section, AT(base, f, char)); break;
        case FT_MODEL: spec_release_section(f->section, AT(base, f, char)); break;
        case FT_DEVICES: spec_release_devices(AT(base, f, struct spec_devices)); break;
        case FT_CHECKPOINT: {
            struct spec_model *m = base;
            free(m->checkpoint);
            m->checkpoint = NULL;
            break;
        }
        default: break;
        }
    }
}
