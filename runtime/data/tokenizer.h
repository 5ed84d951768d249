/* tokenizer.h — the tokenizer interface the data, training, AtP and evaluation code use (a struct of function
 * pointers, so the full Llama 3 BPE tokenizer can come later behind it), and the two small arithmetic tokenizers:
 *
 *   TOKENIZER_DIGITS (the default)  every digit is one token. The PyTorch run in ../shared/notes/
 *                                   arithmetic-training.md learned with digits and not with 3-digit chunks.
 *   TOKENIZER_NUMBER_CHUNKS         Llama-3 style: a number is split left to right into chunks of at most three
 *                                   digits, each chunk one token ("12345" -> "123" "45"), so 2-digit answers are
 *                                   single tokens as in MIB with Llama 3. All 1110 strings of 1..3 digits are tokens
 *                                   (zero-padded operands need "000").
 *
 * Text is split into words (runs of ASCII letters), numbers (runs of digits), symbols (any other printable ASCII
 * character) and spaces. Words and symbols are whole tokens in two variants, plain ("How") and with one leading
 * space (" How"); numbers never carry a space, a space before a number (or any further space) is the lone space
 * token " ". So decode(encode(text)) == text for every text built from vocabulary words, symbols, digits and spaces.
 *
 * Vocabulary, built deterministically from the *set* of words and symbols (the order of the given texts does not
 * matter): ids 0..3 = <pad> <bos> <eos> <sep> (special; never produced by encode), 4 = " ", then the number tokens
 * ("0".."9"; for chunks also "00".."99", "000".."999"), then the symbols in byte order, then the words in byte
 * order, each as its plain id followed by its spaced id (plain + 1). Symbols: those of the texts plus the base set ":?+-=;|,." ; words: those of
 * the texts plus the chain-of-thought marks "c" and "b". {x} and {y} in a template are placeholders, not text.
 * With MIB's 8 default templates: 15 words + 2 marks, 9 symbols -> 4 + 1 + 10 + 2*(9+17) = 67 tokens (digits),
 * 1167 (chunks). An unknown word or character is CIRCD_EINPUT naming it.
 */
#ifndef CIRCD_DATA_TOKENIZER_H
#define CIRCD_DATA_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

/* HF_BPE (a model's tokenizer.json, tokenizer_hf.h) and LLAMA2C (tokenizer.bin, tokenizer_files.h) are read from
 * files, never built by tokenizer_arith_create. */
enum tokenizer_kind { TOKENIZER_DIGITS = 0, TOKENIZER_NUMBER_CHUNKS = 1, TOKENIZER_HF_BPE = 2, TOKENIZER_LLAMA2C = 3 };

struct tokenizer {
    int vocab_size;
    int32_t pad_id, bos_id, eos_id, sep_id; /* eos = end of answer; sep = optional prompt/answer separator */
    enum tokenizer_kind kind;
    void *state;
    /* Writes min(*n, cap) ids and sets *n to the number the text needs. CIRCD_EINPUT for an unknown word or
     * character (naming it and its byte offset) or when *n > cap. */
    int (*encode)(const struct tokenizer *t, const char *text, int32_t *ids, size_t cap, size_t *n);
    /* Concatenates the tokens' texts (specials as "<eos>" etc.) into buf (cap bytes with the NUL); *len (may be
     * NULL) = text length. CIRCD_EINPUT for an id outside the vocabulary or when the text does not fit. */
    int (*decode)(const struct tokenizer *t, const int32_t *ids, size_t n, char *buf, size_t cap, size_t *len);
    /* The text of one token (" How", "7", "<eos>"), or NULL outside the vocabulary. For reports. */
    const char *(*token_text)(const struct tokenizer *t, int32_t id);
    void (*destroy)(struct tokenizer *t);
};

static inline int tokenizer_encode(const struct tokenizer *t, const char *text, int32_t *ids, size_t cap,
                                   size_t *n)
{
    return t->encode(t, text, ids, cap, n);
}
static inline int tokenizer_decode(const struct tokenizer *t, const int32_t *ids, size_t n, char *buf, size_t cap,
                                   size_t *len)
{
    return t->decode(t, ids, n, buf, cap, len);
}
static inline const char *tokenizer_token_text(const struct tokenizer *t, int32_t id)
{
    return t->token_text(t, id);
}
/* Frees the tokenizer's state and zeroes *t; safe on a zeroed struct. */
void tokenizer_free(struct tokenizer *t);

/* Builds an arithmetic tokenizer whose words and symbols come from texts[0..n) (templates: {x}/{y} skipped);
 * texts NULL or n 0 = MIB's default templates of both operations. CIRCD_EINPUT for a character outside printable
 * ASCII (naming text and offset), CIRCD_ENOMEM. On failure *t is zeroed. */
int tokenizer_arith_create(struct tokenizer *t, enum tokenizer_kind kind, const char *const *texts, size_t n);

/* "digits" / "number_chunks" (/ "hf_bpe" / "llama2c") and back (the parser accepts only the arithmetic kinds, also
 * as "digit" and "chunks"). */
const char *tokenizer_kind_name(enum tokenizer_kind kind);
int tokenizer_kind_from_name(const char *name, enum tokenizer_kind *kind);

/* The id of a token with exactly this text, or -1 (e.g. tokenizer_find(t, "7")). */
int32_t tokenizer_find(const struct tokenizer *t, const char *token);

#endif
