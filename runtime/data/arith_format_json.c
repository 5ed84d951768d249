/* arith_format_json.c — arith_format_save / arith_format_load (arith_format.h): the answer format a model was
 * trained with, stored beside it so standalone commands (circd atp, circd faithfulness) encode prompts the same. */
#include <jansson.h>
#include <string.h>

#include "data/arith_format.h"
#include "io/atomic_file.h"
#include "util/error.h"

int arith_format_save(const struct arith_format *f, const char *path)
{
    json_t *root = json_pack("{s:s, s:i, s:b, s:b, s:b}", "answer_order",
                             f->answer_order == ARITH_ANSWER_REVERSED ? "reversed" : "msd_first", "pad_operands",
                             f->pad_operands, "pad_answer", f->pad_answer, "separator", f->separator, "bos", f->bos);
    if (!root) return err_set(CIRCD_ENOMEM, "%s: out of memory", path);
    struct atomic_file af;
    int rc = atomic_file_open(&af, path);
    if (!rc) {
        if (json_dumpf(root, af.fp, JSON_INDENT(2) | JSON_PRESERVE_ORDER) || fputc('\n', af.fp) == EOF) {
            atomic_file_abort(&af);
            rc = err_set(CIRCD_EIO, "%s: cannot write", path);
        } else {
            rc = atomic_file_commit(&af);
        }
    }
    json_decref(root);
    return rc;
}

static int read_flag(const char *path, json_t *root, const char *key, int *out)
{
    json_t *v = json_object_get(root, key);
    if (!json_is_boolean(v)) return err_set(CIRCD_EINPUT, "%s: %s: missing or not true/false", path, key);
    *out = json_is_true(v);
    return CIRCD_OK;
}

int arith_format_load(struct arith_format *f, const char *path)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (jerr.line < 0) return err_set(CIRCD_EIO, "%s: %s", path, jerr.text);
        return err_set(CIRCD_EINPUT, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
    }
    struct arith_format g;
    arith_format_default(&g);
    int rc = CIRCD_OK;
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (strcmp(key, "answer_order") && strcmp(key, "pad_operands") && strcmp(key, "pad_answer") &&
            strcmp(key, "separator") && strcmp(key, "bos")) {
            rc = err_set(CIRCD_EINPUT, "%s: %s: unknown key, expected answer_order, pad_operands, pad_answer, "
                         "separator or bos", path, key);
            break;
        }
    }
    json_t *order = json_object_get(root, "answer_order"), *pad = json_object_get(root, "pad_operands");
    if (!rc && !json_is_object(root)) rc = err_set(CIRCD_EINPUT, "%s: expected a JSON object", path);
    if (!rc && (!json_is_string(order) || (strcmp(json_string_value(order), "msd_first") &&
                                           strcmp(json_string_value(order), "reversed"))))
        rc = err_set(CIRCD_EINPUT, "%s: answer_order: expected \"msd_first\" or \"reversed\"", path);
    if (!rc) g.answer_order = strcmp(json_string_value(order), "reversed") ? ARITH_ANSWER_MSD_FIRST
                                                                           : ARITH_ANSWER_REVERSED;
    if (!rc && (!json_is_integer(pad) || json_integer_value(pad) < 0 || json_integer_value(pad) > ARITH_MAX_DIGITS))
        rc = err_set(CIRCD_EINPUT, "%s: pad_operands: expected an integer in [0, %d]", path, ARITH_MAX_DIGITS);
    if (!rc) g.pad_operands = (int)json_integer_value(pad);
    if (!rc) rc = read_flag(path, root, "pad_answer", &g.pad_answer);
    if (!rc) rc = read_flag(path, root, "separator", &g.separator);
    if (!rc) rc = read_flag(path, root, "bos", &g.bos);
    json_decref(root);
    if (!rc && (rc = arith_format_check(&g))) rc = err_prefix(rc, "%s: ", path);
    if (!rc) *f = g;
    return rc;
}
