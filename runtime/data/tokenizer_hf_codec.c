/* tokenizer_hf_codec.c — encode and decode of a tokenizer.json tokenizer behind struct tokenizer:
 *
 *   encode  normalize (SentencePiece: "▁" in front, spaces -> "▁"; byte-level: optional leading space), split into
 *           pre-tokens (tokenizer_hf_split.c), map each pre-token to initial symbols (SentencePiece: one per UTF-8
 *           character, "<0xAB>" byte tokens or <unk> for characters outside the vocabulary; byte-level: one per
 *           byte), then BPE by merge rank (tokenizer_hf_bpe.c). With ignore_merges a pre-token that is itself in
 *           the vocabulary is one token. Added tokens are never produced: "<s>" in a text is three characters.
 *   decode  the tokens' texts concatenated ("▁" -> ' ', "<0xAB>" -> the raw byte, byte-level characters -> their
 *           bytes, added tokens as their content), then up to strip_leading leading spaces dropped (the Strip
 *           decoder of Llama 2). Raw bytes are kept even where they are not valid UTF-8 (Hugging Face would write
 *           U+FFFD), so decode(encode(text)) == text byte for byte.
 */
#include "data/tokenizer.h"
#include "data/tokenizer_hf_internal.h"

#include <stdlib.h>
#include <string.h>

#include "util/error.h"

#define METASPACE "\xE2\x96\x81"

void hf_state_free(struct hf_state *s)
{
    if (!s) return;
    free(s->model.bytes);
    free(s->text.bytes);
    free(s->model_off);
    free(s->text_off);
    free(s->model_len);
    free(s->text_len);
    free(s->byte_value);
    free(s->vocab.slots);
    hf_merge_map_free(&s->merges);
    free(s);
}

struct span {
    size_t offset, length;
};

struct span_list {
    struct span *items;
    size_t n, cap;
};

static int span_push(void *ctx, size_t offset, size_t length)
{
    struct span_list *l = ctx;
    if (l->n == l->cap) return err_set(CIRCD_EINTERNAL, "pre-tokenizer produced more pieces than bytes");
    l->items[l->n++] = (struct span){offset, length};
    return 0;
}

struct encoder {
    const struct hf_state *s;
    struct hf_work work;
    char *scratch; /* a pre-token in the model alphabet, for ignore_merges */
    int32_t *ids;
    size_t cap, n;
};

static void emit(struct encoder *e, int32_t id)
{
    if (e->n < e->cap) e->ids[e->n] = id;
    e->n++;
}

/* Initial symbols of a SentencePiece-alphabet pre-token into e->work.ids; returns their count or -1 (error set). */
static long metaspace_symbols(struct encoder *e, const char *piece, size_t len, const char *text, size_t base)
{
    const struct hf_state *s = e->s;
    long n = 0;
    int last_unk = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t k = hf_utf8_next(piece + i, len - i, &cp);
        int32_t id = hf_vocab_find(s, piece + i, k);
        if (id >= 0) {
            e->work.ids[n++] = id;
            last_unk = 0;
            i += k;
            continue;
        }
        int all_bytes = s->byte_fallback;
        for (size_t b = 0; all_bytes && b < k; b++) all_bytes = s->byte_token[(unsigned char)piece[i + b]] >= 0;
        if (all_bytes) {
            for (size_t b = 0; b < k; b++) e->work.ids[n++] = s->byte_token[(unsigned char)piece[i + b]];
            last_unk = 0;
        } else if (s->unk_id >= 0) {
            if (!(s->fuse_unk && last_unk)) e->work.ids[n++] = s->unk_id;
            last_unk = 1;
        } else {
            err_set(CIRCD_EINPUT, "encode: the character \"%.*s\" near byte %zu of \"%.60s\" is not in the "
                    "vocabulary and the tokenizer has neither byte fallback nor an unk_token", (int)k, piece + i,
                    base, text);
            return -1;
        }
        i += k;
    }
    return n;
}

static int encode_piece(struct encoder *e, const char *piece, size_t len, const char *text, size_t base)
{
    const struct hf_state *s = e->s;
    const char *model = piece;
    size_t model_len = len;
    if (s->alphabet == HF_ALPHABET_BYTE_LEVEL && s->ignore_merges) {
        model_len = 0;
        for (size_t i = 0; i < len; i++) model_len += (size_t)hf_byte_char((unsigned char)piece[i], e->scratch + model_len);
        model = e->scratch;
    }
    if (s->ignore_merges) {
        int32_t id = hf_vocab_find(s, model, model_len);
        if (id >= 0) {
            emit(e, id);
            return 0;
        }
    }
    long n;
    if (s->alphabet == HF_ALPHABET_BYTE_LEVEL) {
        n = 0;
        for (size_t i = 0; i < len; i++) {
            int32_t id = s->byte_token[(unsigned char)piece[i]];
            if (id < 0 && s->unk_id < 0)
                return err_set(CIRCD_EINPUT, "encode: byte 0x%02X near byte %zu of \"%.60s\" has no token and the "
                               "tokenizer has no unk_token", (unsigned char)piece[i], base + i, text);
            if (id >= 0) e->work.ids[n++] = id;
            else if (!(s->fuse_unk && n > 0 && e->work.ids[n - 1] == s->unk_id)) e->work.ids[n++] = s->unk_id;
        }
    } else if ((n = metaspace_symbols(e, piece, len, text, base)) < 0) {
        return CIRCD_EINPUT;
    }
    size_t kept = hf_bpe_merge(s, &e->work, (size_t)n);
    for (size_t i = 0; i < kept; i++) emit(e, e->work.ids[i]);
    return 0;
}

/* The normalized text: SentencePiece prefix and space replacement, or byte-level's optional prefix space. */
static char *normalize(const struct hf_state *s, const char *text, size_t len, size_t *out_len)
{
    char *out = xmalloc(3 * len + 4);
    if (!out) return NULL;
    size_t n = 0;
    if (len) {
        int starts_with_space = text[0] == ' ' || (s->replace_spaces && len >= 3 && !memcmp(text, METASPACE, 3));
        int prefix = s->prepend_always || (s->prepend_unless_space && !starts_with_space);
        if (prefix && s->alphabet == HF_ALPHABET_BYTE_LEVEL) out[n++] = ' ';
        else if (prefix) {
            memcpy(out, METASPACE, 3);
            n = 3;
        }
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ' && s->replace_spaces) {
            memcpy(out + n, METASPACE, 3);
            n += 3;
        } else {
            out[n++] = text[i];
        }
    }
    *out_len = n;
    return out;
}

static int hf_encode(const struct tokenizer *t, const char *text, int32_t *ids, size_t cap, size_t *n)
{
    const struct hf_state *s = t->state;
    *n = 0;
    if (!text) return err_set(CIRCD_EINPUT, "encode: text is NULL");
    size_t len = strlen(text), norm_len = 0;
    struct encoder e = {.s = s, .ids = ids, .cap = cap};
    struct span_list a = {0}, b = {0};
    char *norm = normalize(s, text, len, &norm_len);
    int rc = norm ? 0 : CIRCD_ENOMEM;
    if (!rc) {
        a.cap = b.cap = norm_len + 1;
        a.items = xmalloc(a.cap * sizeof *a.items);
        b.items = xmalloc(b.cap * sizeof *b.items);
        e.scratch = xmalloc(2 * norm_len + 1);
        if (!a.items || !b.items || !e.scratch) rc = CIRCD_ENOMEM;
    }
    if (!rc) rc = hf_work_init(&e.work, norm_len);
    if (!rc && norm_len) a.items[a.n++] = (struct span){0, norm_len};
    for (int step = 0; !rc && step < s->n_splits; step++) {
        b.n = 0;
        for (size_t i = 0; !rc && i < a.n; i++) {
            struct span_list sub = {b.items + b.n, 0, b.cap - b.n};
            rc = hf_split_run(s->splits[step], norm + a.items[i].offset, a.items[i].length, span_push, &sub);
            for (size_t k = 0; k < sub.n; k++) sub.items[k].offset += a.items[i].offset;
            b.n += sub.n;
        }
        struct span_list swap = a;
        a = b;
        b = swap;
    }
    for (size_t i = 0; !rc && i < a.n; i++)
        rc = encode_piece(&e, norm + a.items[i].offset, a.items[i].length, text, a.items[i].offset);
    free(norm);
    free(a.items);
    free(b.items);
    free(e.scratch);
    hf_work_free(&e.work);
    *n = e.n;
    if (!rc && e.n > cap) rc = err_set(CIRCD_EINPUT, "\"%.80s\" needs %zu tokens, room for %zu", text, e.n, cap);
    return rc;
}

static int hf_decode(const struct tokenizer *t, const int32_t *ids, size_t n, char *buf, size_t cap, size_t *len)
{
    const struct hf_state *s = t->state;
    size_t out = 0;
    int to_strip = s->strip_leading;
    if (len) *len = 0;
    if (cap) buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= s->n_ids || s->text_len[id] < 0)
            return err_set(CIRCD_EINPUT, "token %zu is id %d, %s", i, (int)id,
                           id < 0 || id >= s->n_ids ? "outside the vocabulary" : "which no token has");
        char byte;
        const char *p = s->text.bytes + s->text_off[id];
        size_t m = (size_t)s->text_len[id];
        if (s->decode_bytes && s->byte_value[id] >= 0) {
            byte = (char)s->byte_value[id];
            p = &byte;
            m = 1;
        }
        for (size_t k = 0; k < m; k++) {
            if (out == 0 && to_strip > 0 && p[k] == ' ') {
                to_strip--;
                continue;
            }
            if (out + 1 >= cap) {
                if (len) *len = out;
                return err_set(CIRCD_EINPUT, "decoded text of %zu tokens does not fit in %zu bytes", n, cap);
            }
            buf[out++] = p[k];
            buf[out] = '\0';
        }
    }
    if (len) *len = out;
    return 0;
}

static const char *hf_token_text(const struct tokenizer *t, int32_t id)
{
    const struct hf_state *s = t->state;
    if (id < 0 || id >= s->n_ids || s->text_len[id] < 0) return NULL;
    return s->text.bytes + s->text_off[id];
}

static void hf_destroy(struct tokenizer *t) { hf_state_free(t->state); }

void hf_tokenizer_init(struct tokenizer *t, struct hf_state *s)
{
    t->vocab_size = s->n_ids;
    t->kind = TOKENIZER_HF_BPE;
    t->state = s;
    t->encode = hf_encode;
    t->decode = hf_decode;
    t->token_text = hf_token_text;
    t->destroy = hf_destroy;
}
