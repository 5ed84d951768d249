/* tokenizer_hf_internal.h — the state of a Hugging Face tokenizer.json tokenizer, shared by its four files and
 * private to them: tokenizer_hf.c (reading the JSON), tokenizer_hf_bpe.c (hash maps, BPE merging by rank),
 * tokenizer_hf_split.c (the pre-tokenizer splits, the GPT-2 byte alphabet) and tokenizer_hf_codec.c (encode,
 * decode). The public interface is tokenizer_hf.h.
 *
 * Strings live in two alphabets. The *model* string of an id is its key in model.vocab, in the model's alphabet
 * (SentencePiece "▁the", byte-level "Ġthe"); BPE works on ids and looks model strings up. The *text* of an id is
 * what decoding it gives (" the"), also what token_text returns.
 */
#ifndef CIRCD_DATA_TOKENIZER_HF_INTERNAL_H
#define CIRCD_DATA_TOKENIZER_HF_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

struct tokenizer;

#define HF_MAX_SPLITS 8

enum hf_alphabet {
    HF_ALPHABET_METASPACE = 0, /* text bytes as they are, spaces replaced by U+2581 "▁" (SentencePiece, Llama 2) */
    HF_ALPHABET_BYTE_LEVEL = 1 /* every byte as one character of GPT-2's byte-to-unicode table (Llama 3) */
};

/* One step of pre-tokenization: each piece so far is split further. */
enum hf_split {
    HF_SPLIT_METASPACE,        /* before every "▁" (Metaspace split: true) */
    HF_SPLIT_LLAMA3,           /* the Llama 3 regex, Isolated */
    HF_SPLIT_GPT2,             /* the GPT-2 regex of ByteLevel(use_regex: true), Isolated */
    HF_SPLIT_DIGITS,           /* Digits(individual_digits: false): runs of digits */
    HF_SPLIT_DIGITS_INDIVIDUAL /* Digits(individual_digits: true): each digit alone */
};

/* Model string -> id, open addressing; keys are the ids' model strings in the state. */
struct hf_vocab_map {
    int32_t *slots; /* id, or -1 for an empty slot */
    size_t mask;    /* slot count - 1 (a power of two) */
};

/* (left id, right id) -> (rank, merged id), open addressing. */
struct hf_merge_map {
    uint64_t *keys; /* left << 32 | right, or UINT64_MAX for an empty slot */
    int32_t *ranks, *merged;
    size_t mask;
};

/* A growable byte buffer holding NUL-terminated strings. */
struct hf_arena {
    char *bytes;
    size_t len, cap;
};

struct hf_state {
    enum hf_alphabet alphabet;
    int n_ids;
    struct hf_arena model, text;
    size_t *model_off, *text_off; /* [n_ids] offsets into model.bytes / text.bytes */
    int32_t *model_len;           /* [n_ids] byte length, -1 when the id is not in model.vocab */
    int32_t *text_len;            /* [n_ids] byte length, -1 when the id has no token at all */
    int16_t *byte_value;          /* [n_ids] the byte a "<0xAB>" token decodes to, or -1 */
    struct hf_vocab_map vocab;
    struct hf_merge_map merges;
    int32_t byte_token[256]; /* byte-level: the id of each byte's character; metaspace: the "<0xAB>" ids or -1 */

    /* model */
    int32_t unk_id; /* -1 when none */
    int fuse_unk, byte_fallback, ignore_merges;
    /* normalizer and pre-tokenizer */
    int replace_spaces;      /* ' ' -> "▁" (Replace normalizer or Metaspace pre-tokenizer) */
    int prepend_always;      /* Prepend("▁") normalizer: every non-empty text gets "▁" in front */
    int prepend_unless_space; /* Metaspace prepend / ByteLevel add_prefix_space: unless it starts with a space */
    enum hf_split splits[HF_MAX_SPLITS];
    int n_splits;
    /* decoder */
    int decode_replace;  /* "▁" -> ' ' when decoding */
    int decode_bytes;    /* "<0xAB>" tokens decode to the byte (ByteFallback) */
    int strip_leading;   /* the decoded text loses up to this many leading spaces (Strip decoder, Metaspace) */
};

/* tokenizer_hf_pipeline.c: reading tokenizer.json's sections. */
struct json_t;
struct hf_loader {
    const char *name; /* the file, for messages */
    struct hf_state *s;
    int byte_level_pre_tokenizer, metaspace_pre_tokenizer;
    int decoder_seen;
};
/* CIRCD_EINPUT "name: path: message". */
int hf_fail(const struct hf_loader *L, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
const char *hf_json_kind(const struct json_t *v); /* "an object", "a string", ... for messages */
/* obj[key] as a string (*out NULL when absent or null and not required) / as a boolean (fallback when absent). */
int hf_get_string(const struct hf_loader *L, const struct json_t *obj, const char *key, const char *path,
                  int required, const char **out);
int hf_get_bool(const struct hf_loader *L, const struct json_t *obj, const char *key, const char *path,
                int fallback, int *out);
int hf_load_normalizer(struct hf_loader *L, const struct json_t *n, const char *path);
int hf_load_pre_tokenizer(struct hf_loader *L, const struct json_t *n, const char *path);
/* After the pre-tokenizer (it checks the decoder against the alphabet). */
int hf_load_decoder(struct hf_loader *L, const struct json_t *n, const char *path);

/* tokenizer_hf_codec.c: fills t's fields and functions around s (which t then owns). */
void hf_tokenizer_init(struct tokenizer *t, struct hf_state *s);
void hf_state_free(struct hf_state *s);

/* tokenizer_hf_bpe.c */
int hf_arena_add(struct hf_arena *a, const char *s, size_t len, size_t *offset);
const char *hf_model_string(const struct hf_state *s, int32_t id);
int hf_vocab_map_build(struct hf_state *s);
int32_t hf_vocab_find(const struct hf_state *s, const char *key, size_t len);
int hf_merge_map_init(struct hf_merge_map *m, size_t count);
void hf_merge_map_put(struct hf_merge_map *m, int32_t left, int32_t right, int32_t rank, int32_t merged);
int hf_merge_find(const struct hf_merge_map *m, int32_t left, int32_t right, int32_t *rank, int32_t *merged);
void hf_merge_map_free(struct hf_merge_map *m);

/* Scratch memory of one encode call, sized for a text of `capacity` model-alphabet bytes. */
struct hf_work {
    size_t capacity;
    int32_t *ids;       /* symbol ids */
    int32_t *prev, *next;
    uint8_t *dead;
    struct hf_merge_entry *heap;
    size_t heap_cap;
};
int hf_work_init(struct hf_work *w, size_t capacity);
void hf_work_free(struct hf_work *w);
/* BPE on w->ids[0..n): merges by rank (lowest first, leftmost on ties) exactly as Hugging Face's word.rs
 * merge_all; the surviving ids are compacted into w->ids and their count returned. */
size_t hf_bpe_merge(const struct hf_state *s, struct hf_work *w, size_t n);

/* tokenizer_hf_split.c */
/* The UTF-8 encoding of byte b's character in GPT-2's byte-to-unicode table (1 or 2 bytes) into out; returns its
 * length. */
int hf_byte_char(unsigned char b, char out[2]);
/* The byte whose character is the code point cp, or -1. */
int hf_char_byte(uint32_t cp);
/* Decodes one UTF-8 character at s[0..len) leniently: *cp is the code point and the return value its length (1 for
 * a stray or truncated byte, whose *cp is then the byte value + 0x110000 so that it never equals a real code
 * point). */
size_t hf_utf8_next(const char *s, size_t len, uint32_t *cp);
/* Splits text[0..len) into pieces by one step; calls emit(ctx, offset, length) for each piece in order (pieces
 * cover the text with no gaps, none empty). Returns emit's first non-zero result. */
typedef int (*hf_emit_fn)(void *ctx, size_t offset, size_t length);
int hf_split_run(enum hf_split step, const char *text, size_t len, hf_emit_fn emit, void *ctx);
/* The exact pattern strings of tokenizer.json's Split pre-tokenizers recognised by hf_split_run. */
extern const char hf_llama3_pattern[];
extern const char hf_gpt2_pattern[];

#endif
