/* tokenizer_hf_pipeline.c — the normalizer, pre_tokenizer and decoder sections of a tokenizer.json: which of the
 * supported steps apply (tokenizer_hf.h), into the flags of struct hf_state; and the small JSON helpers that name
 * the offending field in every message. */
#include "data/tokenizer_hf_internal.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/error.h"

#define METASPACE "\xE2\x96\x81"
#define PATH_MAX_LEN 160


int hf_fail(const struct hf_loader *L, const char *path, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return err_set(CIRCD_EINPUT, "%s: %s: %s", L->name, path, msg);
}

const char *hf_json_kind(const json_t *v)
{
    if (!v) return "nothing";
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "an unknown value";
}

/* obj[key] as a string into *out (NULL when absent or null and not required). */
int hf_get_string(const struct hf_loader *L, const json_t *obj, const char *key, const char *path, int required,
                  const char **out)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v)) return required ? hf_fail(L, path, "missing, expected a string") : 0;
    if (!json_is_string(v)) return hf_fail(L, path, "found %s, expected a string", hf_json_kind(v));
    *out = json_string_value(v);
    return 0;
}

int hf_get_bool(const struct hf_loader *L, const json_t *obj, const char *key, const char *path, int fallback,
                int *out)
{
    json_t *v = json_object_get(obj, key);
    *out = fallback;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v)) return hf_fail(L, path, "found %s, expected true or false", hf_json_kind(v));
    *out = json_is_true(v);
    return 0;
}

/* The "type" of a component object at path (e.g. "pre_tokenizer"). */
static int get_type(const struct hf_loader *L, const json_t *obj, const char *path, const char **type)
{
    char p[PATH_MAX_LEN];
    if (!json_is_object(obj)) return hf_fail(L, path, "found %s, expected an object", hf_json_kind(obj));
    snprintf(p, sizeof p, "%s.type", path);
    return hf_get_string(L, obj, "type", p, 1, type);
}

/* obj[key] must be exactly the string want. */
static int expect_string(const struct hf_loader *L, const json_t *obj, const char *key, const char *path,
                         const char *want)
{
    char p[PATH_MAX_LEN];
    const char *got;
    snprintf(p, sizeof p, "%s.%s", path, key);
    int rc = hf_get_string(L, obj, key, p, 1, &got);
    if (rc) return rc;
    if (strcmp(got, want)) return hf_fail(L, p, "found \"%.60s\", expected \"%s\"", got, want);
    return 0;
}

/* A Replace {"pattern": {"String": from}, "content": to}. */
static int expect_replace(const struct hf_loader *L, const json_t *obj, const char *path, const char *from,
                          const char *to)
{
    char p[PATH_MAX_LEN];
    snprintf(p, sizeof p, "%s.pattern", path);
    json_t *pattern = json_object_get(obj, "pattern");
    if (!json_is_object(pattern)) return hf_fail(L, p, "found %s, expected {\"String\": \"%s\"}", hf_json_kind(pattern), from);
    int rc = expect_string(L, pattern, "String", p, from);
    return rc ? rc : expect_string(L, obj, "content", path, to);
}

static int add_split(const struct hf_loader *L, const char *path, enum hf_split step)
{
    if (L->s->n_splits == HF_MAX_SPLITS) return hf_fail(L, path, "more than %d pre-tokenizer steps", HF_MAX_SPLITS);
    L->s->splits[L->s->n_splits++] = step;
    return 0;
}

int hf_load_normalizer(struct hf_loader *L, const json_t *n, const char *path)
{
    const char *type;
    char p[PATH_MAX_LEN];
    int rc;
    if (!n || json_is_null(n)) return 0;
    if ((rc = get_type(L, n, path, &type))) return rc;
    if (!strcmp(type, "Sequence")) {
        json_t *list = json_object_get(n, "normalizers");
        snprintf(p, sizeof p, "%s.normalizers", path);
        if (!json_is_array(list)) return hf_fail(L, p, "found %s, expected an array", hf_json_kind(list));
        for (size_t i = 0; i < json_array_size(list); i++) {
            snprintf(p, sizeof p, "%s.normalizers[%zu]", path, i);
            if ((rc = hf_load_normalizer(L, json_array_get(list, i), p))) return rc;
        }
        return 0;
    }
    if (!strcmp(type, "Prepend")) {
        L->s->prepend_always = 1;
        return expect_string(L, n, "prepend", path, METASPACE);
    }
    if (!strcmp(type, "Replace")) {
        L->s->replace_spaces = 1;
        return expect_replace(L, n, path, " ", METASPACE);
    }
    snprintf(p, sizeof p, "%s.type", path);
    return hf_fail(L, p, "found \"%.60s\", expected \"Sequence\", \"Prepend\" or \"Replace\"", type);
}

/* Metaspace's prepend rule (prepend_scheme, or add_prefix_space in older files); *prepend = 0 or 1. */
static int metaspace_prepend(const struct hf_loader *L, const json_t *n, const char *path, int *prepend)
{
    char p[PATH_MAX_LEN];
    const char *scheme;
    snprintf(p, sizeof p, "%s.prepend_scheme", path);
    int rc = hf_get_string(L, n, "prepend_scheme", p, 0, &scheme);
    if (rc) return rc;
    if (!scheme) {
        snprintf(p, sizeof p, "%s.add_prefix_space", path);
        return hf_get_bool(L, n, "add_prefix_space", p, 1, prepend);
    }
    if (strcmp(scheme, "always") && strcmp(scheme, "first") && strcmp(scheme, "never"))
        return hf_fail(L, p, "found \"%.60s\", expected \"always\", \"first\" or \"never\"", scheme);
    *prepend = strcmp(scheme, "never") != 0; /* "first": the text is one section (added tokens are not split) */
    return 0;
}

int hf_load_pre_tokenizer(struct hf_loader *L, const json_t *n, const char *path)
{
    struct hf_state *s = L->s;
    const char *type;
    char p[PATH_MAX_LEN];
    int rc, flag;
    if (!n || json_is_null(n)) return 0;
    if ((rc = get_type(L, n, path, &type))) return rc;
    if (!strcmp(type, "Sequence")) {
        json_t *list = json_object_get(n, "pretokenizers");
        snprintf(p, sizeof p, "%s.pretokenizers", path);
        if (!json_is_array(list)) return hf_fail(L, p, "found %s, expected an array", hf_json_kind(list));
        for (size_t i = 0; i < json_array_size(list); i++) {
            snprintf(p, sizeof p, "%s.pretokenizers[%zu]", path, i);
            if ((rc = hf_load_pre_tokenizer(L, json_array_get(list, i), p))) return rc;
        }
        return 0;
    }
    if (!strcmp(type, "Metaspace")) {
        if ((rc = expect_string(L, n, "replacement", path, METASPACE))) return rc;
        if ((rc = metaspace_prepend(L, n, path, &s->prepend_unless_space))) return rc;
        snprintf(p, sizeof p, "%s.split", path);
        if ((rc = hf_get_bool(L, n, "split", p, 1, &flag))) return rc;
        s->replace_spaces = 1;
        L->metaspace_pre_tokenizer = 1;
        return flag ? add_split(L, path, HF_SPLIT_METASPACE) : 0;
    }
    if (!strcmp(type, "ByteLevel")) {
        snprintf(p, sizeof p, "%s.add_prefix_space", path);
        if ((rc = hf_get_bool(L, n, "add_prefix_space", p, 1, &flag))) return rc;
        s->prepend_unless_space = flag;
        L->byte_level_pre_tokenizer = 1;
        snprintf(p, sizeof p, "%s.use_regex", path);
        if ((rc = hf_get_bool(L, n, "use_regex", p, 1, &flag))) return rc;
        return flag ? add_split(L, path, HF_SPLIT_GPT2) : 0;
    }
    if (!strcmp(type, "Split")) {
        if ((rc = expect_string(L, n, "behavior", path, "Isolated"))) return rc;
        snprintf(p, sizeof p, "%s.invert", path);
        if ((rc = hf_get_bool(L, n, "invert", p, 0, &flag))) return rc;
        if (flag) return hf_fail(L, p, "true is not supported");
        json_t *pattern = json_object_get(n, "pattern");
        const char *regex;
        snprintf(p, sizeof p, "%s.pattern", path);
        if (!json_is_object(pattern)) return hf_fail(L, p, "found %s, expected {\"Regex\": ...}", hf_json_kind(pattern));
        snprintf(p, sizeof p, "%s.pattern.Regex", path);
        if ((rc = hf_get_string(L, pattern, "Regex", p, 1, &regex))) return rc;
        if (!strcmp(regex, hf_llama3_pattern)) return add_split(L, path, HF_SPLIT_LLAMA3);
        if (!strcmp(regex, hf_gpt2_pattern)) return add_split(L, path, HF_SPLIT_GPT2);
        return hf_fail(L, p, "found \"%.80s\", only the Llama 3 and GPT-2 patterns are implemented", regex);
    }
    if (!strcmp(type, "Digits")) {
        snprintf(p, sizeof p, "%s.individual_digits", path);
        if ((rc = hf_get_bool(L, n, "individual_digits", p, 0, &flag))) return rc;
        return add_split(L, path, flag ? HF_SPLIT_DIGITS_INDIVIDUAL : HF_SPLIT_DIGITS);
    }
    snprintf(p, sizeof p, "%s.type", path);
    return hf_fail(L, p, "found \"%.60s\", expected \"Sequence\", \"Metaspace\", \"ByteLevel\", \"Split\" or \"Digits\"",
                type);
}

int hf_load_decoder(struct hf_loader *L, const json_t *n, const char *path)
{
    struct hf_state *s = L->s;
    const char *type;
    char p[PATH_MAX_LEN];
    int rc, flag;
    if (!n || json_is_null(n)) return 0;
    L->decoder_seen = 1;
    if ((rc = get_type(L, n, path, &type))) return rc;
    snprintf(p, sizeof p, "%s.type", path);
    if (!strcmp(type, "Sequence")) {
        json_t *list = json_object_get(n, "decoders");
        snprintf(p, sizeof p, "%s.decoders", path);
        if (!json_is_array(list)) return hf_fail(L, p, "found %s, expected an array", hf_json_kind(list));
        for (size_t i = 0; i < json_array_size(list); i++) {
            snprintf(p, sizeof p, "%s.decoders[%zu]", path, i);
            if ((rc = hf_load_decoder(L, json_array_get(list, i), p))) return rc;
        }
        return 0;
    }
    if (!strcmp(type, "ByteLevel")) {
        if (s->alphabet != HF_ALPHABET_BYTE_LEVEL) return hf_fail(L, p, "ByteLevel, but the pre_tokenizer is not");
        return 0;
    }
    if (s->alphabet == HF_ALPHABET_BYTE_LEVEL)
        return hf_fail(L, p, "found \"%.60s\", expected \"ByteLevel\" for a ByteLevel pre_tokenizer", type);
    if (!strcmp(type, "Metaspace")) {
        if ((rc = expect_string(L, n, "replacement", path, METASPACE))) return rc;
        if ((rc = metaspace_prepend(L, n, path, &flag))) return rc;
        s->decode_replace = 1;
        s->strip_leading = flag;
        return 0;
    }
    if (!strcmp(type, "Replace")) {
        s->decode_replace = 1;
        return expect_replace(L, n, path, METASPACE, " ");
    }
    if (!strcmp(type, "ByteFallback")) {
        s->decode_bytes = 1;
        return 0;
    }
    if (!strcmp(type, "Fuse")) return 0;
    if (!strcmp(type, "Strip")) {
        json_t *start = json_object_get(n, "start"), *stop = json_object_get(n, "stop");
        if ((rc = expect_string(L, n, "content", path, " "))) return rc;
        snprintf(p, sizeof p, "%s.start", path);
        if (!json_is_integer(start) || json_integer_value(start) < 0 || json_integer_value(start) > 64)
            return hf_fail(L, p, "found %s, expected an integer in [0, 64]", hf_json_kind(start));
        snprintf(p, sizeof p, "%s.stop", path);
        if (!json_is_integer(stop) || json_integer_value(stop) != 0)
            return hf_fail(L, p, "found %s, only 0 is supported", hf_json_kind(stop));
        s->strip_leading = (int)json_integer_value(start);
        return 0;
    }
    return hf_fail(L, p, "found \"%.60s\", expected \"Sequence\", \"ByteLevel\", \"Metaspace\", \"Replace\", "
                "\"ByteFallback\", \"Fuse\" or \"Strip\"", type);
}
