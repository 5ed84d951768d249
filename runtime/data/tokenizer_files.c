/* tokenizer_files.c — finding a model directory's tokenizer, circd_tokenizer.json (save and load of the
 * arithmetic tokenizers), and the llama2.c tokenizer.bin behind struct tokenizer (see tokenizer_files.h). */
#include "data/tokenizer_files.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/tokenizer_hf.h"
#include "data/tokenizer_llama2c.h"
#include "io/atomic_file.h"
#include "util/error.h"

#define FORMAT_NAME "circd_tokenizer"
#define FORMAT_VERSION 1
#define FIRST_PLAIN_ID 5 /* after <pad> <bos> <eos> <sep> and " " (tokenizer.h) */

/* ---- llama2.c tokenizer.bin ---- */

_Static_assert(sizeof(int) == sizeof(int32_t), "llama2c ids are int, struct tokenizer ids int32_t");

static int llama2c_encode(const struct tokenizer *t, const char *text, int32_t *ids, size_t cap, size_t *n)
{
    const struct tokenizer_llama2c *l = t->state;
    *n = 0;
    if (!text) return err_set(CIRCD_EINPUT, "encode: text is NULL");
    size_t most = strlen(text) + 2; /* one id per byte, plus the dummy prefix */
    int *all = xmalloc(most * sizeof *all), count = 0;
    if (!all) return CIRCD_ENOMEM;
    int rc = tokenizer_llama2c_encode(l, text, 0, all, most > INT32_MAX ? INT32_MAX : (int)most, &count);
    if (!rc) {
        *n = (size_t)count;
        memcpy(ids, all, (*n < cap ? *n : cap) * sizeof *ids);
        if (*n > cap) rc = err_set(CIRCD_EINPUT, "\"%.80s\" needs %zu tokens, room for %zu", text, *n, cap);
    }
    free(all);
    return rc;
}

static const char *llama2c_token_text(const struct tokenizer *t, int32_t id)
{
    const struct tokenizer_llama2c *l = t->state;
    if (id < 0 || id >= l->vocab_size) return NULL;
    if (id == TOKENIZER_LLAMA2C_BOS) return "<s>";
    if (id == TOKENIZER_LLAMA2C_EOS) return "</s>";
    return l->bytes + l->offsets[id];
}

static int llama2c_decode(const struct tokenizer *t, const int32_t *ids, size_t n, char *buf, size_t cap,
                          size_t *len)
{
    const struct tokenizer_llama2c *l = t->state;
    size_t out = 0;
    int strip = 1;
    if (len) *len = 0;
    if (cap) buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const char *p;
        size_t m;
        int rc = tokenizer_llama2c_piece(l, -1, ids[i], &p, &m);
        if (rc) return err_prefix(rc, "token %zu: ", i);
        if (ids[i] == TOKENIZER_LLAMA2C_BOS || ids[i] == TOKENIZER_LLAMA2C_EOS) {
            p = llama2c_token_text(t, ids[i]);
            m = strlen(p);
        }
        if (strip && m > 0) { /* the dummy prefix: one space at the very start */
            strip = 0;
            if (p[0] == ' ') {
                p++;
                m--;
            }
        }
        if (m + 1 > cap - out || cap == 0) {
            if (len) *len = out;
            return err_set(CIRCD_EINPUT, "decoded text of %zu tokens does not fit in %zu bytes", n, cap);
        }
        memcpy(buf + out, p, m);
        out += m;
        buf[out] = '\0';
    }
    if (len) *len = out;
    return 0;
}

static void llama2c_destroy(struct tokenizer *t)
{
    tokenizer_llama2c_free(t->state);
    free(t->state);
}

int tokenizer_llama2c_open(struct tokenizer *t, const char *path, int vocab_size)
{
    memset(t, 0, sizeof *t);
    struct tokenizer_llama2c *l = xcalloc(1, sizeof *l);
    if (!l) return CIRCD_ENOMEM;
    int rc = tokenizer_llama2c_load(l, path, vocab_size);
    if (rc) {
        free(l);
        return rc;
    }
    if (l->vocab_size <= TOKENIZER_LLAMA2C_EOS) {
        rc = err_set(CIRCD_EINPUT, "%s: %d tokens, fewer than BOS (1) and EOS (2) need", path, l->vocab_size);
        tokenizer_llama2c_free(l);
        free(l);
        return rc;
    }
    t->vocab_size = l->vocab_size;
    t->bos_id = TOKENIZER_LLAMA2C_BOS;
    t->eos_id = t->pad_id = TOKENIZER_LLAMA2C_EOS;
    t->sep_id = -1;
    t->kind = TOKENIZER_LLAMA2C;
    t->state = l;
    t->encode = llama2c_encode;
    t->decode = llama2c_decode;
    t->token_text = llama2c_token_text;
    t->destroy = llama2c_destroy;
    return 0;
}

/* ---- circd_tokenizer.json ---- */

static int is_letters(const char *s)
{
    if (!*s) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z'))) return 0;
    return 1;
}

/* A symbol: one printable ASCII character that is not a letter, digit or space. */
static int is_symbol(const char *s)
{
    unsigned char c = (unsigned char)s[0];
    return c > 0x20 && c < 0x7f && s[1] == '\0' && !is_letters(s) && !(c >= '0' && c <= '9');
}

int tokenizer_arith_save(const struct tokenizer *t, const char *path)
{
    if (t->kind != TOKENIZER_DIGITS && t->kind != TOKENIZER_NUMBER_CHUNKS)
        return err_set(CIRCD_EINPUT, "%s: only the arithmetic tokenizers are saved, not %s", path,
                       tokenizer_kind_name(t->kind));
    json_t *root = json_object(), *words = json_array(), *symbols = json_array(), *vocab = json_array();
    int rc = root && words && symbols && vocab ? 0 : err_set(CIRCD_ENOMEM, "%s: out of memory", path);
    for (int32_t id = 0; !rc && id < t->vocab_size; id++) {
        const char *text = tokenizer_token_text(t, id);
        if (!text) {
            rc = err_set(CIRCD_EINTERNAL, "%s: token %d has no text", path, (int)id);
            break;
        }
        /* Plain variants only: the spaced variant " How" follows its plain id, numbers are implied by kind. */
        json_t *set = id < FIRST_PLAIN_ID ? NULL : is_letters(text) ? words : is_symbol(text) ? symbols : NULL;
        if ((set && json_array_append_new(set, json_string(text))) || json_array_append_new(vocab, json_string(text)))
            rc = err_set(CIRCD_ENOMEM, "%s: out of memory", path);
    }
    if (!rc && (json_object_set_new(root, "format", json_string(FORMAT_NAME)) ||
                json_object_set_new(root, "version", json_integer(FORMAT_VERSION)) ||
                json_object_set_new(root, "kind", json_string(tokenizer_kind_name(t->kind))) ||
                json_object_set(root, "words", words) || json_object_set(root, "symbols", symbols) ||
                json_object_set(root, "vocab", vocab)))
        rc = err_set(CIRCD_ENOMEM, "%s: out of memory", path);
    struct atomic_file af;
    if (!rc && !(rc = atomic_file_open(&af, path))) {
        if (json_dumpf(root, af.fp, JSON_INDENT(1) | JSON_PRESERVE_ORDER) || fputc('\n', af.fp) == EOF) {
            atomic_file_abort(&af);
            rc = err_set(CIRCD_EIO, "%s: write failed", path);
        } else {
            rc = atomic_file_commit(&af);
        }
    }
    json_decref(words);
    json_decref(symbols);
    json_decref(vocab);
    json_decref(root);
    return rc;
}

/* root[key] as an array of strings, each passing check (when given). */
static int string_array(const json_t *root, const char *key, const char *path, int (*check)(const char *),
                        const char *what, const json_t **out)
{
    const json_t *a = json_object_get(root, key);
    *out = a;
    if (!json_is_array(a)) return err_set(CIRCD_EINPUT, "%s: %s: missing or not an array", path, key);
    for (size_t i = 0; i < json_array_size(a); i++) {
        const char *s = json_string_value(json_array_get(a, i));
        if (!s) return err_set(CIRCD_EINPUT, "%s: %s[%zu]: not a string", path, key, i);
        if (check && !check(s)) return err_set(CIRCD_EINPUT, "%s: %s[%zu]: \"%.40s\" is not %s", path, key, i, s, what);
    }
    return 0;
}

static int load_arith(struct tokenizer *t, const json_t *root, const char *path)
{
    if (!json_is_object(root)) return err_set(CIRCD_EINPUT, "%s: not a JSON object", path);
    const char *format = json_string_value(json_object_get(root, "format"));
    const char *kind_name = json_string_value(json_object_get(root, "kind"));
    const json_t *version = json_object_get(root, "version"), *words, *symbols, *vocab;
    enum tokenizer_kind kind;
    int rc;
    if (!format || strcmp(format, FORMAT_NAME))
        return err_set(CIRCD_EINPUT, "%s: format: found \"%.40s\", expected \"%s\"", path, format ? format : "",
                       FORMAT_NAME);
    if (!json_is_integer(version) || json_integer_value(version) != FORMAT_VERSION)
        return err_set(CIRCD_EINPUT, "%s: version: expected %d (this circd reads version %d only)", path,
                       FORMAT_VERSION, FORMAT_VERSION);
    if (!kind_name || !strcmp(kind_name, "hf_bpe") || !strcmp(kind_name, "llama2c") ||
        tokenizer_kind_from_name(kind_name, &kind))
        return err_set(CIRCD_EINPUT, "%s: kind: found \"%.40s\", expected \"digits\" or \"number_chunks\"", path,
                       kind_name ? kind_name : "");
    if ((rc = string_array(root, "words", path, is_letters, "a word of ASCII letters", &words)) ||
        (rc = string_array(root, "symbols", path, is_symbol, "one printable ASCII character that is not a letter, "
                           "digit or space", &symbols)) ||
        (rc = string_array(root, "vocab", path, NULL, NULL, &vocab)))
        return rc;
    size_t n = json_array_size(words) + json_array_size(symbols);
    const char **texts = xmalloc((n ? n : 1) * sizeof *texts);
    if (!texts) return CIRCD_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        size_t nw = json_array_size(words);
        texts[i] = json_string_value(i < nw ? json_array_get(words, i) : json_array_get(symbols, i - nw));
    }
    /* texts == NULL would mean MIB's default templates; an empty set of words and symbols is a file error. */
    rc = n ? tokenizer_arith_create(t, kind, texts, n)
           : err_set(CIRCD_EINPUT, "%s: words and symbols are both empty", path);
    free(texts);
    if (rc) return err_prefix(rc, "%s: ", path);
    if ((size_t)t->vocab_size != json_array_size(vocab)) {
        rc = err_set(CIRCD_EINPUT, "%s: vocab: %zu tokens, but the words and symbols build %d", path,
                     json_array_size(vocab), t->vocab_size);
        tokenizer_free(t);
        return rc;
    }
    for (int32_t id = 0; id < t->vocab_size; id++) {
        const char *want = json_string_value(json_array_get(vocab, (size_t)id));
        if (strcmp(want, tokenizer_token_text(t, id))) {
            rc = err_set(CIRCD_EINPUT, "%s: vocab[%d]: \"%.40s\", but the words and symbols build \"%.40s\" there",
                         path, (int)id, want, tokenizer_token_text(t, id));
            tokenizer_free(t);
            return rc;
        }
    }
    return 0;
}

/* json_load_file with CIRCD_EIO for a file that cannot be opened and path:line:column for malformed JSON. */
static int load_json_file(const char *path, json_t **root)
{
    json_error_t error;
    *root = json_load_file(path, JSON_REJECT_DUPLICATES, &error);
    if (*root) return 0;
    if (json_error_code(&error) == json_error_cannot_open_file) return err_set(CIRCD_EIO, "%s: %s", path, error.text);
    return err_set(CIRCD_EINPUT, "%s:%d:%d: %s", path, error.line, error.column, error.text);
}

int tokenizer_arith_load(struct tokenizer *t, const char *path)
{
    memset(t, 0, sizeof *t);
    json_t *root;
    int rc = load_json_file(path, &root);
    if (rc) return rc;
    rc = load_arith(t, root, path);
    json_decref(root);
    return rc;
}

/* ---- model directories ---- */

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The id of a bos_token / eos_token / pad_token entry of tokenizer_config.json (a string, or an object with
 * "content"); -1 when absent or null, -2 (error set) when it names no token. */
static int32_t config_token(const struct tokenizer *t, const json_t *config, const char *key, const char *path)
{
    const json_t *v = json_object_get(config, key);
    if (json_is_object(v)) v = json_object_get(v, "content");
    if (!v || json_is_null(v)) return -1;
    const char *name = json_string_value(v);
    if (!name) {
        err_set(CIRCD_EINPUT, "%s: %s: expected a string or {\"content\": ...}", path, key);
        return -2;
    }
    int32_t id = tokenizer_find(t, name);
    if (id < 0) err_set(CIRCD_EINPUT, "%s: %s: \"%.60s\" is not a token of tokenizer.json", path, key, name);
    return id < 0 ? -2 : id;
}

/* bos / eos / pad from dir/tokenizer_config.json when it exists; a pad that was eos stays eos. */
static int apply_tokenizer_config(struct tokenizer *t, const char *path)
{
    if (!exists(path)) return 0;
    json_t *config;
    int rc = load_json_file(path, &config);
    if (rc) return rc;
    int32_t bos = config_token(t, config, "bos_token", path), eos = config_token(t, config, "eos_token", path),
            pad = config_token(t, config, "pad_token", path);
    json_decref(config);
    if (bos == -2 || eos == -2 || pad == -2) return CIRCD_EINPUT;
    int pad_is_eos = t->pad_id == t->eos_id; /* no pad token of its own: it follows eos */
    if (bos >= 0) t->bos_id = bos;
    if (eos >= 0) t->eos_id = eos;
    if (pad >= 0) t->pad_id = pad;
    else if (pad_is_eos) t->pad_id = t->eos_id;
    return 0;
}

/* The first tok*.bin of dir by name into path (cap bytes); 0 when there is none. */
static int find_tok_bin(const char *dir, char *path, size_t cap)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    char best[256] = "";
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 7 || len >= sizeof best || strncmp(e->d_name, "tok", 3) || strcmp(e->d_name + len - 4, ".bin"))
            continue;
        if (!best[0] || strcmp(e->d_name, best) < 0) memcpy(best, e->d_name, len + 1);
    }
    closedir(d);
    if (!best[0]) return 0;
    snprintf(path, cap, "%s/%s", dir, best);
    return exists(path);
}

int tokenizer_open_model_dir(const char *dir, struct tokenizer *out)
{
    memset(out, 0, sizeof *out);
    char path[4096];
    struct stat st;
    if (stat(dir, &st) != 0) return err_set(CIRCD_EINPUT, "%s: cannot open the model directory: %s", dir,
                                            strerror(errno));
    if (!S_ISDIR(st.st_mode)) return err_set(CIRCD_EINPUT, "%s: not a directory", dir);
    if (strlen(dir) > sizeof path - 64) return err_set(CIRCD_EINPUT, "%.80s...: path too long", dir);

    snprintf(path, sizeof path, "%s/circd_tokenizer.json", dir);
    if (exists(path)) return tokenizer_arith_load(out, path);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    if (exists(path)) {
        int rc = tokenizer_hf_load(out, path);
        snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
        if (!rc && (rc = apply_tokenizer_config(out, path))) tokenizer_free(out);
        return rc;
    }
    snprintf(path, sizeof path, "%s/tokenizer.bin", dir);
    if (exists(path) || find_tok_bin(dir, path, sizeof path)) return tokenizer_llama2c_open(out, path, 0);
    return err_set(CIRCD_EINPUT, "%s: no tokenizer: looked for circd_tokenizer.json, tokenizer.json, tokenizer.bin "
                   "and tok*.bin", dir);
}
