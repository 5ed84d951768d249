/* tokenizer_hf.c — reading a Hugging Face tokenizer.json (see tokenizer_hf.h for what is supported) into the state
 * of tokenizer_hf_internal.h: the vocabulary and added tokens, the merges, which normalizer / pre-tokenizer /
 * decoder steps apply, and the special ids. Everything not understood is CIRCD_EINPUT naming the JSON field. */
#include "data/tokenizer_hf.h"
#include "data/tokenizer_hf_internal.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

#define METASPACE "\xE2\x96\x81"
#define PATH_MAX_LEN 160

/* The id of the added token with this content, or -1. */
static int32_t added_id(const json_t *added, const char *content)
{
    for (size_t i = 0; i < json_array_size(added); i++) {
        const json_t *a = json_array_get(added, i);
        const char *c = json_string_value(json_object_get(a, "content"));
        if (c && !strcmp(c, content)) return (int32_t)json_integer_value(json_object_get(a, "id"));
    }
    return -1;
}

static int32_t first_added(const json_t *added, const char *const *names)
{
    for (int i = 0; names[i]; i++) {
        int32_t id = added_id(added, names[i]);
        if (id >= 0) return id;
    }
    return -1;
}

/* bos from a TemplateProcessing post_processor (also inside a Sequence) whose "single" starts with a special
 * token; -1 when there is none. The post_processor is otherwise not needed (encode adds no special tokens). */
static int32_t template_bos(const json_t *pp, const json_t *added, int n_ids)
{
    const char *type = json_string_value(json_object_get(pp, "type"));
    if (!type) return -1;
    if (!strcmp(type, "Sequence")) {
        const json_t *list = json_object_get(pp, "processors");
        for (size_t i = 0; i < json_array_size(list); i++) {
            int32_t id = template_bos(json_array_get(list, i), added, n_ids);
            if (id >= 0) return id;
        }
        return -1;
    }
    if (strcmp(type, "TemplateProcessing")) return -1;
    const json_t *first = json_array_get(json_object_get(pp, "single"), 0);
    const char *name = json_string_value(json_object_get(json_object_get(first, "SpecialToken"), "id"));
    if (!name) return -1;
    const json_t *ids = json_object_get(json_object_get(json_object_get(pp, "special_tokens"), name), "ids");
    json_int_t id = json_is_integer(json_array_get(ids, 0)) ? json_integer_value(json_array_get(ids, 0))
                                                             : added_id(added, name);
    return id >= 0 && id < n_ids ? (int32_t)id : -1;
}

/* First pass over model.vocab and added_tokens: types, and the largest id. */
static int count_ids(const struct hf_loader *L, const json_t *vocab, const json_t *added, int *n_ids)
{
    const char *key;
    json_t *value;
    char p[PATH_MAX_LEN];
    json_int_t max_id = -1;
    size_t entries = 0;
    json_object_foreach((json_t *)vocab, key, value) {
        json_int_t id = json_is_integer(value) ? json_integer_value(value) : -1;
        if (id < 0 || id >= INT32_MAX / 2) {
            snprintf(p, sizeof p, "model.vocab[\"%.40s\"]", key);
            return hf_fail(L, p, "found %s, expected an id in [0, %d)", json_is_integer(value) ? "an out-of-range integer"
                        : hf_json_kind(value), INT32_MAX / 2);
        }
        if (id > max_id) max_id = id;
        entries++;
    }
    if (added && !json_is_null(added) && !json_is_array(added))
        return hf_fail(L, "added_tokens", "found %s, expected an array", hf_json_kind(added));
    for (size_t i = 0; i < json_array_size(added); i++) {
        const json_t *a = json_array_get(added, i);
        const json_t *id = json_object_get(a, "id");
        snprintf(p, sizeof p, "added_tokens[%zu]", i);
        if (!json_is_object(a)) return hf_fail(L, p, "found %s, expected an object", hf_json_kind(a));
        if (!json_is_string(json_object_get(a, "content")))
            return hf_fail(L, p, "content: found %s, expected a string", hf_json_kind(json_object_get(a, "content")));
        if (!json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) >= INT32_MAX / 2)
            return hf_fail(L, p, "id: found %s, expected an id in [0, %d)", hf_json_kind(id), INT32_MAX / 2);
        if (json_integer_value(id) > max_id) max_id = json_integer_value(id);
        entries++;
    }
    if (max_id < 0) return hf_fail(L, "model.vocab", "is empty");
    if ((size_t)max_id >= 2 * entries + 1024)
        return hf_fail(L, "model.vocab", "id %lld with only %zu tokens: ids must be (nearly) consecutive",
                    (long long)max_id, entries);
    *n_ids = (int)max_id + 1;
    return 0;
}

static int alloc_ids(struct hf_state *s, int n_ids)
{
    size_t n = (size_t)n_ids;
    s->n_ids = n_ids;
    s->model_off = xcalloc(n, sizeof *s->model_off);
    s->text_off = xcalloc(n, sizeof *s->text_off);
    s->model_len = xmalloc(n * sizeof *s->model_len);
    s->text_len = xmalloc(n * sizeof *s->text_len);
    s->byte_value = xmalloc(n * sizeof *s->byte_value);
    if (!s->model_off || !s->text_off || !s->model_len || !s->text_len || !s->byte_value) return CIRCD_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        s->model_len[i] = s->text_len[i] = -1;
        s->byte_value[i] = -1;
    }
    return 0;
}

static int hex_value(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                                                                        : -1;
}

/* The decoded text of every vocabulary id, then the added tokens' contents over them. */
static int build_texts(struct hf_state *s, const json_t *added)
{
    size_t longest = 0;
    for (int id = 0; id < s->n_ids; id++)
        if (s->model_len[id] > (int32_t)longest) longest = (size_t)s->model_len[id];
    char *buf = xmalloc(longest + 1);
    if (!buf) return CIRCD_ENOMEM;
    int rc = 0;
    for (int32_t id = 0; !rc && id < s->n_ids; id++) {
        if (s->model_len[id] < 0) continue;
        const char *m = hf_model_string(s, id);
        size_t len = (size_t)s->model_len[id], n = 0;
        if (s->alphabet == HF_ALPHABET_BYTE_LEVEL) {
            for (size_t i = 0; i < len;) {
                uint32_t cp;
                size_t k = hf_utf8_next(m + i, len - i, &cp);
                int b = hf_char_byte(cp);
                if (b < 0) { /* not a byte-level string: kept as it is, as Hugging Face does */
                    memcpy(buf, m, len);
                    n = len;
                    break;
                }
                buf[n++] = (char)b;
                i += k;
            }
        } else {
            if (len == 6 && !memcmp(m, "<0x", 3) && m[5] == '>' && hex_value(m[3]) >= 0 && hex_value(m[4]) >= 0)
                s->byte_value[id] = (int16_t)(hex_value(m[3]) * 16 + hex_value(m[4]));
            for (size_t i = 0; i < len;) {
                if (s->decode_replace && i + 3 <= len && !memcmp(m + i, METASPACE, 3)) {
                    buf[n++] = ' ';
                    i += 3;
                } else {
                    buf[n++] = m[i++];
                }
            }
        }
        s->text_len[id] = (int32_t)n;
        rc = hf_arena_add(&s->text, buf, n, &s->text_off[id]);
    }
    free(buf);
    for (size_t i = 0; !rc && i < json_array_size(added); i++) {
        const json_t *a = json_array_get(added, i);
        int32_t id = (int32_t)json_integer_value(json_object_get(a, "id"));
        const char *content = json_string_value(json_object_get(a, "content"));
        size_t len = json_string_length(json_object_get(a, "content"));
        s->text_len[id] = (int32_t)len;
        s->byte_value[id] = -1;
        rc = hf_arena_add(&s->text, content, len, &s->text_off[id]);
    }
    return rc;
}

static int load_merges(struct hf_loader *L, const json_t *merges)
{
    struct hf_state *s = L->s;
    char p[PATH_MAX_LEN];
    if (!json_is_array(merges)) return hf_fail(L, "model.merges", "found %s, expected an array", hf_json_kind(merges));
    size_t count = json_array_size(merges);
    if (count >= INT32_MAX) return hf_fail(L, "model.merges", "%zu merges, too many", count);
    int rc = hf_merge_map_init(&s->merges, count);
    if (rc) return rc;
    char *joined = NULL;
    size_t joined_cap = 0;
    for (size_t i = 0; i < count; i++) {
        const json_t *m = json_array_get(merges, i);
        const char *a = NULL, *b = NULL;
        size_t alen = 0, blen = 0;
        snprintf(p, sizeof p, "model.merges[%zu]", i);
        if (json_is_string(m)) {
            const char *str = json_string_value(m), *space = strchr(str, ' ');
            if (!space || strchr(space + 1, ' ') || strlen(str) != json_string_length(m)) {
                rc = hf_fail(L, p, "\"%.60s\" is not two tokens separated by one space", str);
                break;
            }
            a = str;
            alen = (size_t)(space - str);
            b = space + 1;
            blen = strlen(b);
        } else if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
                   json_is_string(json_array_get(m, 1))) {
            a = json_string_value(json_array_get(m, 0));
            alen = json_string_length(json_array_get(m, 0));
            b = json_string_value(json_array_get(m, 1));
            blen = json_string_length(json_array_get(m, 1));
        } else {
            rc = hf_fail(L, p, "found %s, expected \"a b\" or [\"a\", \"b\"]", hf_json_kind(m));
            break;
        }
        int32_t left = hf_vocab_find(s, a, alen), right = hf_vocab_find(s, b, blen);
        if (left < 0 || right < 0) {
            rc = hf_fail(L, p, "\"%.*s\" is not in model.vocab", (int)(left < 0 ? alen : blen), left < 0 ? a : b);
            break;
        }
        if (alen + blen > joined_cap) {
            free(joined);
            joined_cap = 2 * (alen + blen);
            if (!(joined = xmalloc(joined_cap))) {
                rc = CIRCD_ENOMEM;
                break;
            }
        }
        memcpy(joined, a, alen);
        memcpy(joined + alen, b, blen);
        int32_t merged = hf_vocab_find(s, joined, alen + blen);
        if (merged < 0) {
            rc = hf_fail(L, p, "the merged token \"%.*s\" is not in model.vocab", (int)(alen + blen), joined);
            break;
        }
        hf_merge_map_put(&s->merges, left, right, (int32_t)i, merged);
    }
    free(joined);
    return rc;
}

/* model: its type and options, the vocabulary strings (after count_ids allocated the ids). */
static int load_model_vocab(struct hf_loader *L, const json_t *model)
{
    struct hf_state *s = L->s;
    const char *key, *type, *unk, *text;
    json_t *value;
    char p[PATH_MAX_LEN];
    int rc;
    json_object_foreach((json_t *)json_object_get(model, "vocab"), key, value) {
        int32_t id = (int32_t)json_integer_value(value);
        if (s->model_len[id] >= 0) {
            snprintf(p, sizeof p, "model.vocab[\"%.40s\"]", key);
            return hf_fail(L, p, "id %d is also \"%.40s\"", (int)id, hf_model_string(s, id));
        }
        s->model_len[id] = (int32_t)strlen(key);
        if ((rc = hf_arena_add(&s->model, key, strlen(key), &s->model_off[id]))) return rc;
    }
    if ((rc = hf_vocab_map_build(s))) return rc;
    if ((rc = hf_get_string(L, model, "type", "model.type", 0, &type))) return rc;
    if (type && strcmp(type, "BPE")) return hf_fail(L, "model.type", "found \"%.60s\", expected \"BPE\"", type);
    if ((rc = hf_get_string(L, model, "unk_token", "model.unk_token", 0, &unk))) return rc;
    s->unk_id = unk ? hf_vocab_find(s, unk, strlen(unk)) : -1;
    if (unk && s->unk_id < 0) return hf_fail(L, "model.unk_token", "\"%.60s\" is not in model.vocab", unk);
    if ((rc = hf_get_bool(L, model, "byte_fallback", "model.byte_fallback", 0, &s->byte_fallback))) return rc;
    if ((rc = hf_get_bool(L, model, "fuse_unk", "model.fuse_unk", 0, &s->fuse_unk))) return rc;
    if ((rc = hf_get_bool(L, model, "ignore_merges", "model.ignore_merges", 0, &s->ignore_merges))) return rc;
    const char *affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "model.%s", affixes[i]);
        if ((rc = hf_get_string(L, model, affixes[i], p, 0, &text))) return rc;
        if (text && text[0]) return hf_fail(L, p, "found \"%.40s\", only null is supported", text);
    }
    json_t *dropout = json_object_get(model, "dropout");
    if (dropout && !json_is_null(dropout) && !(json_is_number(dropout) && json_number_value(dropout) == 0.0))
        return hf_fail(L, "model.dropout", "found %s, only null is supported", hf_json_kind(dropout));
    return 0;
}

static int load_root(struct hf_loader *L, const json_t *root)
{
    struct hf_state *s = L->s;
    int rc;
    if (!json_is_object(root)) return hf_fail(L, "(top level)", "found %s, expected an object", hf_json_kind(root));
    const json_t *model = json_object_get(root, "model"), *added = json_object_get(root, "added_tokens");
    if (!json_is_object(model)) return hf_fail(L, "model", "found %s, expected an object", hf_json_kind(model));
    const char *type = json_string_value(json_object_get(model, "type"));
    if (type && strcmp(type, "BPE")) return hf_fail(L, "model.type", "found \"%.60s\", expected \"BPE\"", type);
    const json_t *vocab = json_object_get(model, "vocab");
    if (!json_is_object(vocab)) return hf_fail(L, "model.vocab", "found %s, expected an object", hf_json_kind(vocab));
    int n_ids = 0;
    if ((rc = count_ids(L, vocab, added, &n_ids)) || (rc = alloc_ids(s, n_ids))) return rc;
    if ((rc = load_model_vocab(L, model))) return rc;

    if ((rc = hf_load_normalizer(L, json_object_get(root, "normalizer"), "normalizer"))) return rc;
    if ((rc = hf_load_pre_tokenizer(L, json_object_get(root, "pre_tokenizer"), "pre_tokenizer"))) return rc;
    if (L->byte_level_pre_tokenizer && (L->metaspace_pre_tokenizer || s->replace_spaces || s->prepend_always))
        return hf_fail(L, "pre_tokenizer", "ByteLevel together with a Metaspace pre_tokenizer or a Prepend / Replace "
                    "normalizer is not supported");
    s->alphabet = L->byte_level_pre_tokenizer ? HF_ALPHABET_BYTE_LEVEL : HF_ALPHABET_METASPACE;
    if ((rc = hf_load_decoder(L, json_object_get(root, "decoder"), "decoder"))) return rc;
    if (!L->decoder_seen && s->alphabet == HF_ALPHABET_METASPACE) { /* no decoder: undo what encode did */
        s->decode_replace = s->replace_spaces;
        s->decode_bytes = s->byte_fallback;
        s->strip_leading = s->prepend_always || s->prepend_unless_space;
    }

    for (int b = 0; b < 256; b++) {
        char key[8];
        int len;
        if (s->alphabet == HF_ALPHABET_BYTE_LEVEL) {
            len = hf_byte_char((unsigned char)b, key);
        } else {
            snprintf(key, sizeof key, "<0x%02X>", b);
            len = 6;
        }
        s->byte_token[b] = hf_vocab_find(s, key, (size_t)len); /* -1: encoding this byte needs unk_token */
    }
    if ((rc = load_merges(L, json_object_get(model, "merges")))) return rc;
    if ((rc = build_texts(s, added))) return rc;
    return 0;
}

static void set_special_ids(struct tokenizer *t, const json_t *root)
{
    static const char *const bos_names[] = {"<s>", "<|begin_of_text|>", "<|startoftext|>", NULL};
    static const char *const eos_names[] = {"</s>", "<|end_of_text|>", "<|endoftext|>", NULL};
    static const char *const pad_names[] = {"<pad>", "<|pad|>", NULL};
    const json_t *added = json_object_get(root, "added_tokens");
    t->bos_id = template_bos(json_object_get(root, "post_processor"), added, t->vocab_size);
    if (t->bos_id < 0) t->bos_id = first_added(added, bos_names);
    t->eos_id = first_added(added, eos_names);
    t->pad_id = first_added(added, pad_names);
    if (t->pad_id < 0) t->pad_id = t->eos_id;
    t->sep_id = -1;
}

/* Builds t from a parsed file; root stays the caller's. */
static int load_json(struct tokenizer *t, const json_t *root, const char *name)
{
    struct hf_state *s = xcalloc(1, sizeof *s);
    if (!s) return CIRCD_ENOMEM;
    struct hf_loader L = {.name = name, .s = s};
    int rc = load_root(&L, root);
    if (rc) {
        hf_state_free(s);
        return rc;
    }
    hf_tokenizer_init(t, s);
    set_special_ids(t, root);
    return 0;
}

int tokenizer_hf_load_buffer(struct tokenizer *t, const char *json, size_t len, const char *name)
{
    memset(t, 0, sizeof *t);
    json_error_t error;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &error);
    if (!root) return err_set(CIRCD_EINPUT, "%s:%d:%d: %s", name, error.line, error.column, error.text);
    int rc = load_json(t, root, name);
    json_decref(root);
    return rc;
}

int tokenizer_hf_load(struct tokenizer *t, const char *path)
{
    memset(t, 0, sizeof *t);
    json_error_t error;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &error);
    if (!root && json_error_code(&error) == json_error_cannot_open_file)
        return err_set(CIRCD_EIO, "%s: %s", path, error.text);
    if (!root) return err_set(CIRCD_EINPUT, "%s:%d:%d: %s", path, error.line, error.column, error.text);
    int rc = load_json(t, root, path);
    json_decref(root);
    return rc;
}
