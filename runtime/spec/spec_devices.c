/* spec_devices.c — where each stage computes: the `devices:` mapping (a stage kind or an exact stage name -> cpu |
 * cuda) decoded with the position of every entry, its checks once the whole spec is known (every key names a kind or
 * a stage this experiment has; data and report, which compute with no model, refuse cuda; `precision: bf16` needs a
 * stage on cuda), and the resolution the plan uses: exact stage name, then kind, then the top-level `device:`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec/spec_internal.h"

const char *const spec_stage_kind_names[] = {"data", "train", "eval", "atp", "patch", "circuit", "distill",
                                             "distill-eval", "report", NULL};

int spec_stage_kind_uses_device(const char *kind) { return strcmp(kind, "data") != 0 && strcmp(kind, "report") != 0; }

void spec_release_devices(struct spec_devices *d)
{
    for (int i = 0; i < d->n; i++) free(d->items[i].key);
    free(d->items);
    memset(d, 0, sizeof *d);
}

void spec_decode_devices(struct spec_ctx *c, const struct spec_field *f, const struct ynode *n,
                         struct spec_devices *out, const char *path)
{
    char found[256], item[200], exp[200];
    spec_release_devices(out);
    if (ynode_is_null(n)) return;
    if (n->kind != YN_MAP) {
        spec_err(c, SPEC_ERR_TYPE, n, "%s: found %s, expected %s", path, ynode_describe(n, found, sizeof found),
                 spec_field_expectation(f, exp, sizeof exp));
        return;
    }
    int pairs = n->n / 2;
    if (pairs && !(out->items = calloc((size_t)pairs, sizeof *out->items))) { c->oom = 1; return; }
    for (int i = 0; i + 1 < n->n; i += 2) {
        const struct ynode *k = n->child[i], *v = n->child[i + 1];
        if (k->kind != YN_SCALAR || ynode_is_null(k) || k->len == 0 || strlen(k->text) != k->len || k->len > 60) {
            spec_err(c, SPEC_ERR_TYPE, k, "%s: found %s as a key, expected a stage kind or a stage name", path,
                     ynode_describe(k, found, sizeof found));
            continue;
        }
        int first = -1;
        for (int j = 0; j < out->n && first < 0; j++)
            if (!strcmp(out->items[j].key, k->text)) first = j;
        if (first >= 0) {
            spec_err(c, SPEC_ERR_DUPLICATE, k, "%s: found key \"%s\" a second time (first at line %d, column %d), "
                     "expected each stage kind or name once", path, k->text, out->items[first].line,
                     out->items[first].col);
            continue;
        }
        snprintf(item, sizeof item, "%s.%s", path, k->text);
        int device = spec_decode_choice(c, f, v, item);
        if (device < 0) continue;
        struct spec_device_rule *r = &out->items[out->n];
        if (!(r->key = strdup(k->text))) { c->oom = 1; return; }
        r->device = (enum spec_device)device;
        r->line = k->line;
        r->col = k->col;
        out->n++;
    }
}

/* The stage kinds, then the names of the stages plan/plan.c builds for this spec in its order (tests/test_devices.c
 * checks that the two agree): a malloc'd NULL-terminated list of malloc'd names, NULL when out of memory. */
static void free_candidates(char **names)
{
    for (size_t i = 0; names && names[i]; i++) free(names[i]);
    free(names);
}

static char **stage_candidates(const struct experiment_spec *s)
{
    static const char *const roles[] = {"teacher", "student-base"};
    static const char *const per_role[] = {"train", "eval", "atp", "patch", "circuit"};
    size_t cap = 9 + 2 + 10 + 2 * (size_t)s->distill.n_methods * (size_t)s->seeds.n + 1, n = 0;
    char **names = calloc(cap, sizeof *names), buf[96];
    if (!names) return NULL;
#define ADD(text) do { if (!(names[n++] = strdup(text))) { free_candidates(names); return NULL; } } while (0)
    for (int i = 0; spec_stage_kind_names[i]; i++) ADD(spec_stage_kind_names[i]);
    for (int r = 0; r < 2; r++)
        for (int k = 0; k < 5; k++) {
            if (!strcmp(per_role[k], "patch") && s->atp.exact_patching_samples <= 0) continue;
            snprintf(buf, sizeof buf, "%s-%s", per_role[k], roles[r]);
            ADD(buf);
        }
    for (int m = 0; m < s->distill.n_methods; m++)
        for (int k = 0; k < s->seeds.n; k++)
            for (int e = 0; e < 2; e++) {
                snprintf(buf, sizeof buf, "%s-%s-%d", e ? "eval" : "distill", s->distill.methods[m].name,
                         s->seeds.items[k]);
                ADD(buf);
            }
#undef ADD
    return names; /* "data" and "report" are kinds and stage names at once */
}

static int is_kind(const char *key)
{
    for (int i = 0; spec_stage_kind_names[i]; i++)
        if (!strcmp(spec_stage_kind_names[i], key)) return 1;
    return 0;
}

void spec_check_devices(struct spec_ctx *c, struct experiment_spec *s)
{
    const struct ynode *top = c->root ? ytree_get(c->root, "device") : NULL;
    s->device_line = top ? top->line : 0;
    int any_cuda = s->device == SPEC_DEVICE_CUDA;
    char **names = NULL;
    for (int i = 0; i < s->devices.n; i++) {
        const struct spec_device_rule *r = &s->devices.items[i];
        if (!is_kind(r->key)) {
            if (!names && !(names = stage_candidates(s))) { c->oom = 1; return; }
            int known = 0;
            for (int j = 0; names[j] && !known; j++) known = !strcmp(names[j], r->key);
            if (!known) {
                const char *hint = spec_suggest(r->key, (const char *const *)names);
                spec_err_at(c, SPEC_ERR_UNKNOWN, r->line, r->col, "devices: found unknown stage \"%s\", expected a "
                            "stage kind (train, eval, atp, patch, circuit, distill, distill-eval) or the name of one "
                            "of this experiment's stages (`circd plan` lists them)%s%s%s", r->key,
                            hint ? " (did you mean " : "", hint ? hint : "", hint ? "?)" : "");
                continue;
            }
        }
        if (r->device == SPEC_DEVICE_CUDA && !spec_stage_kind_uses_device(r->key)) {
            spec_err_at(c, SPEC_ERR_INCONSISTENT, r->line, r->col, "devices.%s: found cuda, expected cpu: the %s stage "
                        "computes with no model, so it always runs on the CPU", r->key, r->key);
            continue;
        }
        if (r->device == SPEC_DEVICE_CUDA) any_cuda = 1;
    }
    free_candidates(names);
    if (s->precision == SPEC_PRECISION_BF16 && !any_cuda)
        spec_err_path(c, SPEC_ERR_INCONSISTENT, "precision", "precision: found bf16 with every stage on the CPU, "
                      "expected fp32: bf16 matmuls exist only on GPUs (set device: cuda, or a devices: entry to cuda)");
}

enum spec_device spec_stage_device(const struct experiment_spec *spec, const char *stage, const char *kind, int *rule)
{
    int which = SPEC_DEVICE_FROM_DEFAULT;
    enum spec_device device = SPEC_DEVICE_CPU;
    if (spec_stage_kind_uses_device(kind)) {
        const char *keys[3] = {stage, kind, !strcmp(kind, "distill-eval") ? "eval" : NULL};
        for (int k = 0; k < 3 && which == SPEC_DEVICE_FROM_DEFAULT && keys[k]; k++)
            for (int i = 0; i < spec->devices.n; i++)
                if (!strcmp(spec->devices.items[i].key, keys[k])) {
                    which = i;
                    device = spec->devices.items[i].device;
                    break;
                }
        if (which == SPEC_DEVICE_FROM_DEFAULT) {
            device = spec->device;
            if (spec->device_line > 0) which = SPEC_DEVICE_FROM_TOP;
        }
    }
    if (rule) *rule = which;
    return device;
}

void spec_device_origin(const struct experiment_spec *spec, int rule, char *buf, size_t cap)
{
    const char *file = spec->path ? spec->path : "(spec)";
    if (rule >= 0 && rule < spec->devices.n)
        snprintf(buf, cap, "%s:%d: devices.%s", file, spec->devices.items[rule].line, spec->devices.items[rule].key);
    else if (rule == SPEC_DEVICE_FROM_TOP) snprintf(buf, cap, "%s:%d: device", file, spec->device_line);
    else snprintf(buf, cap, "the default device");
}
