/* fuzz_tokenizer_hf.c — libFuzzer harness for the tokenizer.json loader (tokenizer_hf_load_buffer) and encode /
 * decode: any input is either rejected with CIRCD_EINPUT / CIRCD_ENOMEM and a message that names the file, or
 * yields a tokenizer whose encode of a few fixed texts and of the input itself fails cleanly or gives ids inside
 * the vocabulary that decode accepts; a byte-level tokenizer with a token for every byte and no prefix or strip
 * must give decode(encode(x)) == x. Seeds: tests/data/tokenizers/*.json; dictionary tokenizer_hf.dict. */
#include "data/tokenizer_hf.h"
#include "data/tokenizer_hf_internal.h"
#include "util/error.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const texts[] = {
    "Once upon a time", " The sum of 15 and 24 is", "12345 it's\n\n  !!!?", "caf\xc3\xa9 \xe2\x80\x94 \xf0\x9f\x98\x80",
    "<s> <0x0A> \xe2\x96\x81", "\xff\xfe\x80", "",
};

static int exact_bytes(const struct tokenizer *t)
{
    const struct hf_state *s = t->state;
    if (s->alphabet != HF_ALPHABET_BYTE_LEVEL || s->prepend_unless_space || s->strip_leading) return 0;
    for (int b = 0; b < 256; b++)
        if (s->byte_token[b] < 0) return 0;
    return 1;
}

static void exercise(const struct tokenizer *t, const char *text)
{
    enum { CAP = 2048 };
    static int32_t ids[CAP];
    static char back[8 * CAP];
    size_t n = 0, len = 0;
    err_clear();
    int rc = tokenizer_encode(t, text, ids, CAP, &n);
    if (rc) {
        if ((rc != CIRCD_EINPUT && rc != CIRCD_ENOMEM) || !err_msg()[0]) abort();
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= t->vocab_size || !tokenizer_token_text(t, ids[i])) abort();
    rc = tokenizer_decode(t, ids, n, back, sizeof back, &len);
    if (rc && rc != CIRCD_EINPUT) abort();
    if (!rc && exact_bytes(t) && (len != strlen(text) || memcmp(back, text, len))) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tokenizer t;
    err_clear();
    int rc = tokenizer_hf_load_buffer(&t, (const char *)data, size, "fuzz/tokenizer.json");
    if (rc) {
        if (rc != CIRCD_EINPUT && rc != CIRCD_ENOMEM) abort();
        if (rc == CIRCD_EINPUT && strncmp(err_msg(), "fuzz/tokenizer.json", 19)) abort();
        if (t.state) abort();
        return 0;
    }
    if (t.vocab_size <= 0 || t.bos_id >= t.vocab_size || t.eos_id >= t.vocab_size || t.pad_id >= t.vocab_size)
        abort();
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) exercise(&t, texts[i]);
    char *own = malloc(size + 1);
    if (!own) abort();
    memcpy(own, data, size);
    own[size] = '\0';
    exercise(&t, own);
    free(own);
    for (int32_t id = -1; id <= t.vocab_size; id++) tokenizer_token_text(&t, id);
    tokenizer_free(&t);
    return 0;
}
