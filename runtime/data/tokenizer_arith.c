/* tokenizer_arith.c — the two arithmetic tokenizers of tokenizer.h (digit tokens, Llama-3-style number chunks) with
 * whole-word tokens for template words, and the generic helpers of the interface. */
#include "data/tokenizer.h"

#include <stdlib.h>
#include <string.h>

#include "data/arith.h"
#include "util/error.h"

#define N_SPECIAL 4
#define SPACE_ID 4
#define NUMBER_BASE 5
static const char *const special_names[N_SPECIAL] = {"<pad>", "<bos>", "<eos>", "<sep>"};
static const char base_symbols[] = ":?+-=;|,.";
static const char *const cot_words[] = {"b", "c"};

struct arith_vocab {
    int size;
    char **pieces;        /* [size] token texts */
    int chunked;          /* number chunks of up to 3 digits instead of single digits */
    int symbol_id[128];   /* plain id of a symbol character (spaced = +1), -1 if absent */
    char **words;         /* sorted */
    int n_words, word_base;
};

static int is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_placeholder(const char *s) { return s[0] == '{' && (s[1] == 'x' || s[1] == 'y') && s[2] == '}'; }

static void vocab_free(struct arith_vocab *v)
{
    if (!v) return;
    for (int i = 0; v->pieces && i < v->size; i++) free(v->pieces[i]);
    free(v->pieces);
    for (int i = 0; v->words && i < v->n_words; i++) free(v->words[i]);
    free(v->words);
    free(v);
}

static int compare_words(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Word of `len` bytes at s, or -1: index into the sorted list. */
static int find_word(const struct arith_vocab *v, const char *s, size_t len)
{
    int lo = 0, hi = v->n_words - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        int c = strncmp(v->words[mid], s, len);
        if (c == 0) c = v->words[mid][len] ? 1 : 0;
        if (c == 0) return mid;
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

static int add_word(struct arith_vocab *v, int *cap, const char *s, size_t len)
{
    for (int i = 0; i < v->n_words; i++)
        if (strlen(v->words[i]) == len && !strncmp(v->words[i], s, len)) return 0;
    if (v->n_words == *cap) {
        int ncap = *cap ? *cap * 2 : 32;
        char **w = realloc(v->words, (size_t)ncap * sizeof *w);
        if (!w) return err_set(CIRCD_ENOMEM, "out of memory for the tokenizer's word list");
        v->words = w;
        *cap = ncap;
    }
    char *copy = xmalloc(len + 1);
    if (!copy) return CIRCD_ENOMEM;
    memcpy(copy, s, len);
    copy[len] = '\0';
    v->words[v->n_words++] = copy;
    return 0;
}

static int set_piece(struct arith_vocab *v, int id, const char *prefix, const char *text, size_t len)
{
    size_t plen = strlen(prefix);
    char *p = xmalloc(plen + len + 1);
    if (!p) return CIRCD_ENOMEM;
    memcpy(p, prefix, plen);
    memcpy(p + plen, text, len);
    p[plen + len] = '\0';
    v->pieces[id] = p;
    return 0;
}

static int build_vocab(struct arith_vocab *v, enum tokenizer_kind kind, const char *const *texts, size_t n)
{
    int word_cap = 0, rc;
    int have_symbol[128] = {0};
    for (const char *s = base_symbols; *s; s++) have_symbol[(unsigned char)*s] = 1;
    for (size_t i = 0; i < sizeof cot_words / sizeof cot_words[0]; i++)
        if ((rc = add_word(v, &word_cap, cot_words[i], strlen(cot_words[i])))) return rc;
    for (size_t t = 0; t < n; t++) {
        const char *text = texts[t];
        for (size_t i = 0; text[i];) {
            unsigned char c = (unsigned char)text[i];
            if (c < 0x20 || c > 0x7e)
                return err_set(CIRCD_EINPUT, "tokenizer text %zu (\"%.60s\") has byte 0x%02x at offset %zu, expected "
                               "printable ASCII", t, text, c, i);
            if (is_placeholder(text + i)) {
                i += 3;
            } else if (is_letter((char)c)) {
                size_t j = i;
                while (is_letter(text[j])) j++;
                if ((rc = add_word(v, &word_cap, text + i, j - i))) return rc;
                i = j;
            } else {
                if (c != ' ' && !is_digit((char)c)) have_symbol[c] = 1;
                i++;
            }
        }
    }
    qsort(v->words, (size_t)v->n_words, sizeof *v->words, compare_words);
    int n_numbers = kind == TOKENIZER_NUMBER_CHUNKS ? 1110 : 10, n_symbols = 0;
    for (int c = 0; c < 128; c++) n_symbols += have_symbol[c];
    v->chunked = kind == TOKENIZER_NUMBER_CHUNKS;
    v->size = NUMBER_BASE + n_numbers + 2 * n_symbols + 2 * v->n_words;
    v->pieces = xcalloc((size_t)v->size, sizeof *v->pieces);
    if (!v->pieces) return CIRCD_ENOMEM;
    for (int i = 0; i < N_SPECIAL; i++)
        if ((rc = set_piece(v, i, "", special_names[i], strlen(special_names[i])))) return rc;
    if ((rc = set_piece(v, SPACE_ID, " ", "", 0))) return rc;
    int id = NUMBER_BASE;
    for (int width = 1; width <= (v->chunked ? 3 : 1); width++) {
        int count = width == 1 ? 10 : width == 2 ? 100 : 1000;
        for (int value = 0; value < count; value++) {
            char digits[4];
            for (int k = width - 1, x = value; k >= 0; k--, x /= 10) digits[k] = (char)('0' + x % 10);
            if ((rc = set_piece(v, id++, "", digits, (size_t)width))) return rc;
        }
    }
    for (int c = 0; c < 128; c++) {
        v->symbol_id[c] = -1;
        if (!have_symbol[c]) continue;
        char ch = (char)c;
        v->symbol_id[c] = id;
        if ((rc = set_piece(v, id++, "", &ch, 1)) || (rc = set_piece(v, id++, " ", &ch, 1))) return rc;
    }
    v->word_base = id;
    for (int w = 0; w < v->n_words; w++) {
        size_t len = strlen(v->words[w]);
        if ((rc = set_piece(v, id++, "", v->words[w], len)) || (rc = set_piece(v, id++, " ", v->words[w], len)))
            return rc;
    }
    return 0;
}

struct emitter {
    int32_t *ids;
    size_t cap, n;
};

static void emit(struct emitter *e, int32_t id)
{
    if (e->n < e->cap) e->ids[e->n] = id;
    e->n++;
}

/* A token that has a spaced variant (plain id p, spaced p + 1) after `spaces` spaces. */
static void emit_spaced(struct emitter *e, int32_t plain, int spaces)
{
    if (spaces == 0) {
        emit(e, plain);
        return;
    }
    for (int i = 1; i < spaces; i++) emit(e, SPACE_ID);
    emit(e, plain + 1);
}

static void emit_number(struct emitter *e, const struct arith_vocab *v, const char *s, size_t len)
{
    if (!v->chunked) {
        for (size_t i = 0; i < len; i++) emit(e, NUMBER_BASE + (s[i] - '0'));
        return;
    }
    for (size_t i = 0; i < len; i += 3) {
        size_t w = len - i < 3 ? len - i : 3;
        int value = 0;
        for (size_t k = 0; k < w; k++) value = value * 10 + (s[i + k] - '0');
        int offset = w == 1 ? 0 : w == 2 ? 10 : 110;
        emit(e, NUMBER_BASE + offset + value);
    }
}

static int arith_encode_text(const struct tokenizer *t, const char *text, int32_t *ids, size_t cap, size_t *n)
{
    const struct arith_vocab *v = t->state;
    struct emitter e = {ids, cap, 0};
    int spaces = 0;
    for (size_t i = 0; text[i];) {
        char c = text[i];
        if (c == ' ') {
            spaces++;
            i++;
        } else if (is_letter(c)) {
            size_t j = i;
            while (is_letter(text[j])) j++;
            int w = find_word(v, text + i, j - i);
            if (w < 0) {
                *n = e.n;
                return err_set(CIRCD_EINPUT, "unknown word \"%.*s\" at offset %zu of \"%.80s\": the vocabulary holds "
                               "the template words only", (int)(j - i > 40 ? 40 : j - i), text + i, i, text);
            }
            emit_spaced(&e, v->word_base + 2 * w, spaces);
            spaces = 0;
            i = j;
        } else if (is_digit(c)) {
            for (; spaces; spaces--) emit(&e, SPACE_ID);
            size_t j = i;
            while (is_digit(text[j])) j++;
            emit_number(&e, v, text + i, j - i);
            i = j;
        } else {
            unsigned char uc = (unsigned char)c;
            if (uc >= 128 || v->symbol_id[uc] < 0) {
                *n = e.n;
                return err_set(CIRCD_EINPUT, "unknown character '%c' (0x%02x) at offset %zu of \"%.80s\"",
                               uc >= 0x20 && uc < 0x7f ? c : '?', uc, i, text);
            }
            emit_spaced(&e, v->symbol_id[uc], spaces);
            spaces = 0;
            i++;
        }
    }
    for (; spaces; spaces--) emit(&e, SPACE_ID);
    *n = e.n;
    if (e.n > cap) return err_set(CIRCD_EINPUT, "\"%.80s\" needs %zu tokens, room for %zu", text, e.n, cap);
    return 0;
}

static int arith_decode(const struct tokenizer *t, const int32_t *ids, size_t n, char *buf, size_t cap,
                        size_t *len)
{
    const struct arith_vocab *v = t->state;
    size_t out = 0;
    if (cap) buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= v->size) {
            if (len) *len = out;
            return err_set(CIRCD_EINPUT, "token %zu is id %d, expected 0..%d", i, (int)ids[i], v->size - 1);
        }
        const char *piece = v->pieces[ids[i]];
        size_t pl = strlen(piece);
        if (out + pl + 1 > cap) {
            if (len) *len = out;
            return err_set(CIRCD_EINPUT, "decoded text of %zu tokens does not fit in %zu bytes", n, cap);
        }
        memcpy(buf + out, piece, pl + 1);
        out += pl;
    }
    if (len) *len = out;
    return 0;
}

static const char *arith_token_text(const struct tokenizer *t, int32_t id)
{
    const struct arith_vocab *v = t->state;
    return id >= 0 && id < v->size ? v->pieces[id] : NULL;
}

static void arith_destroy(struct tokenizer *t) { vocab_free(t->state); }

int tokenizer_arith_create(struct tokenizer *t, enum tokenizer_kind kind, const char *const *texts, size_t n)
{
    memset(t, 0, sizeof *t);
    if (kind != TOKENIZER_DIGITS && kind != TOKENIZER_NUMBER_CHUNKS)
        return err_set(CIRCD_EINPUT, "tokenizer kind %d, expected digits (0) or number_chunks (1)", (int)kind);
    const char *defaults[2 * ARITH_DEFAULT_TEMPLATE_COUNT];
    if (!texts || !n) {
        for (int op = 0; op < ARITH_OP_COUNT; op++)
            for (int i = 0; i < ARITH_DEFAULT_TEMPLATE_COUNT; i++)
                defaults[op * ARITH_DEFAULT_TEMPLATE_COUNT + i] = arith_default_templates[op][i];
        texts = defaults;
        n = 2 * ARITH_DEFAULT_TEMPLATE_COUNT;
    }
    struct arith_vocab *v = xcalloc(1, sizeof *v);
    if (!v) return CIRCD_ENOMEM;
    int rc = build_vocab(v, kind, texts, n);
    if (rc) {
        vocab_free(v);
        return rc;
    }
    t->vocab_size = v->size;
    t->pad_id = 0;
    t->bos_id = 1;
    t->eos_id = 2;
    t->sep_id = 3;
    t->kind = kind;
    t->state = v;
    t->encode = arith_encode_text;
    t->decode = arith_decode;
    t->token_text = arith_token_text;
    t->destroy = arith_destroy;
    return 0;
}

void tokenizer_free(struct tokenizer *t)
{
    if (!t) return;
    if (t->destroy) t->destroy(t);
    memset(t, 0, sizeof *t);
}

const char *tokenizer_kind_name(enum tokenizer_kind kind)
{
    switch (kind) {
    case TOKENIZER_DIGITS: return "digits";
    case TOKENIZER_NUMBER_CHUNKS: return "number_chunks";
    case TOKENIZER_HF_BPE: return "hf_bpe";
    case TOKENIZER_LLAMA2C: return "llama2c";
    }
    return "unknown";
}

int tokenizer_kind_from_name(const char *name, enum tokenizer_kind *kind)
{
    if (name && (!strcmp(name, "digits") || !strcmp(name, "digit"))) {
        *kind = TOKENIZER_DIGITS;
        return 0;
    }
    if (name && (!strcmp(name, "number_chunks") || !strcmp(name, "chunks"))) {
        *kind = TOKENIZER_NUMBER_CHUNKS;
        return 0;
    }
    return err_set(CIRCD_EINPUT, "tokenizer \"%s\", expected digits or number_chunks", name ? name : "(null)");
}

int32_t tokenizer_find(const struct tokenizer *t, const char *token)
{
    for (int32_t id = 0; id < t->vocab_size; id++) {
        const char *s = tokenizer_token_text(t, id);
        if (s && !strcmp(s, token)) return id;
    }
    return -1;
}
