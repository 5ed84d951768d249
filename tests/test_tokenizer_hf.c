/* test_tokenizer_hf.c — Hugging Face tokenizer.json (tokenizer_hf.h):
 *   (a) Llama-2-style tokenizer.json files written from stories260K's tok512.bin in three layouts (Prepend +
 *       Replace normalizer with "a b" merges; the non-legacy Metaspace pre-tokenizer with ["a", "b"] merges; the
 *       old Metaspace with add_prefix_space and split) encode exactly as llama2.c does on fixed and random texts,
 *       and decode(encode(x)) == x;
 *   (b) tests/data/tokenizers/llama2_tiny.json (15 tokens): hand-worked ids with merge ranks, byte fallback and a
 *       fused <unk>; tests/data/tokenizers/llama3_tiny.json (34 tokens, 13 merges): hand-worked ids for numbers in 3-digit
 *       chunks, " the", contractions, newlines, punctuation runs, ignore_merges and merge ranks; the Llama 3 and
 *       GPT-2 splits, Digits and Metaspace splits piece by piece; byte-level round trips of random bytes;
 *   (c) every loader error, each naming the file and the JSON field. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/tokenizer.h"
#include "data/tokenizer_hf.h"
#include "data/tokenizer_hf_internal.h"
#include "data/tokenizer_llama2c.h"
#include "testing.h"
#include "util/error.h"
#include "util/rng.h"

#define MAX_IDS 4096
#define SP "\xE2\x96\x81" /* U+2581, SentencePiece's space */

static const char *tmp_file(const char *name)
{
    static char paths[4][4200];
    static int next;
    char *p = paths[next++ % 4];
    snprintf(p, sizeof paths[0], "%s/%s", testing_tmpdir(), name);
    return p;
}

/* ---- (a) a Llama-2-style tokenizer.json from tok512.bin ---- */

enum layout { LAYOUT_PREPEND, LAYOUT_METASPACE_FIRST, LAYOUT_METASPACE_OLD };

struct merge {
    int left, right;
    float score;
};

static int by_score(const void *pa, const void *pb)
{
    const struct merge *a = pa, *b = pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    if (a->left != b->left) return a->left < b->left ? -1 : 1;
    return (a->right > b->right) - (a->right < b->right);
}

/* The tokenizer.json spelling of a llama2.c piece: specials by name, ' ' as U+2581. */
static json_t *sp_string(const struct tokenizer_llama2c *l, int id)
{
    if (id <= 2) return json_string(id == 0 ? "<unk>" : id == 1 ? "<s>" : "</s>");
    char buf[128];
    size_t n = 0;
    const char *p = l->bytes + l->offsets[id];
    for (int i = 0; i < l->lengths[id] && n + 4 < sizeof buf; i++) {
        if (p[i] == ' ') {
            memcpy(buf + n, SP, 3);
            n += 3;
        } else {
            buf[n++] = p[i];
        }
    }
    return json_stringn(buf, n);
}

/* Writes tok512.bin as a tokenizer.json. The merges make Hugging Face's rank-order BPE reproduce llama2.c's
 * score-order BPE: llama2.c merges, of all adjacent pairs whose concatenation is a piece, the pair whose piece scores
 * highest (leftmost on ties); Hugging Face merges the pair of lowest rank (leftmost on ties). So every split of a
 * piece into two pieces is a merge, ranked by the piece's score, highest first; splits of one piece are ordered by
 * (left id, right id), as transformers' SentencePieceExtractor does. tok512's mergeable pieces have distinct
 * scores (checked below), so at every step both pick a pair that forms the same piece, and they pick the same pair
 * unless two *different* splits of that piece are candidates at once (then llama2.c takes the leftmost, Hugging
 * Face the lower rank) — the comparisons below show that this does not occur in these texts. Specials and the
 * byte tokens <0x00>..<0xFF> (ids 0..258) take part in no merge. */
static int write_stories_json(const char *path, enum layout layout, int *distinct_scores)
{
    struct tokenizer_llama2c l;
    if (tokenizer_llama2c_load(&l, testing_shared_path("models/stories260K/tok512.bin"), 512)) return 0;
    json_t *vocab = json_object(), *merges = json_array(), *added = json_array();
    for (int id = 0; id < l.vocab_size; id++) {
        json_t *s = sp_string(&l, id);
        json_object_set_new(vocab, json_string_value(s), json_integer(id));
        if (id <= 2)
            json_array_append_new(added, json_pack("{s:i, s:O, s:b, s:b, s:b, s:b, s:b}", "id", id, "content", s,
                                                   "single_word", 0, "lstrip", 0, "rstrip", 0, "normalized", 0,
                                                   "special", 1));
        json_decref(s);
    }
    struct merge *list = malloc(4096 * sizeof *list);
    int n = 0;
    *distinct_scores = 1;
    for (int id = 259; id < l.vocab_size; id++) {
        for (int j = 259; j < id; j++) *distinct_scores &= l.scores[j] != l.scores[id];
        const char *p = l.bytes + l.offsets[id];
        for (int k = 1; k < l.lengths[id] && n < 4096; k++) {
            int left = tokenizer_llama2c_lookup(&l, p, (size_t)k);
            int right = tokenizer_llama2c_lookup(&l, p + k, (size_t)(l.lengths[id] - k));
            if (left >= 259 && right >= 259) list[n++] = (struct merge){left, right, l.scores[id]};
        }
    }
    qsort(list, (size_t)n, sizeof *list, by_score);
    for (int i = 0; i < n; i++) {
        json_t *a = sp_string(&l, list[i].left), *b = sp_string(&l, list[i].right);
        if (layout == LAYOUT_PREPEND) {
            char joined[256];
            snprintf(joined, sizeof joined, "%s %s", json_string_value(a), json_string_value(b));
            json_array_append_new(merges, json_string(joined));
            json_decref(a);
            json_decref(b);
        } else {
            json_array_append_new(merges, json_pack("[o, o]", a, b));
        }
    }
    free(list);
    json_t *decoder = json_pack("{s:s, s:[{s:s, s:{s:s}, s:s}, {s:s}, {s:s}, {s:s, s:s, s:i, s:i}]}", "type",
                                "Sequence", "decoders", "type", "Replace", "pattern", "String", SP, "content", " ",
                                "type", "ByteFallback", "type", "Fuse", "type", "Strip", "content", " ", "start", 1,
                                "stop", 0);
    json_t *normalizer = json_null(), *pre = json_null();
    if (layout == LAYOUT_PREPEND)
        normalizer = json_pack("{s:s, s:[{s:s, s:s}, {s:s, s:{s:s}, s:s}]}", "type", "Sequence", "normalizers",
                               "type", "Prepend", "prepend", SP, "type", "Replace", "pattern", "String", " ",
                               "content", SP);
    else if (layout == LAYOUT_METASPACE_FIRST)
        pre = json_pack("{s:s, s:s, s:s, s:b}", "type", "Metaspace", "replacement", SP, "prepend_scheme", "first",
                        "split", 0);
    if (layout == LAYOUT_METASPACE_OLD) {
        pre = json_pack("{s:s, s:s, s:b}", "type", "Metaspace", "replacement", SP, "add_prefix_space", 1);
        json_decref(decoder);
        decoder = json_pack("{s:s, s:s, s:b}", "type", "Metaspace", "replacement", SP, "add_prefix_space", 1);
    }
    json_t *post = json_pack("{s:s, s:[{s:{s:s, s:i}}, {s:{s:s, s:i}}], s:{s:{s:s, s:[i], s:[s]}}}", "type",
                             "TemplateProcessing", "single", "SpecialToken", "id", "<s>", "type_id", 0, "Sequence",
                             "id", "A", "type_id", 0, "special_tokens", "<s>", "id", "<s>", "ids", 1, "tokens", "<s>");
    json_t *model = json_pack("{s:s, s:n, s:s, s:n, s:n, s:b, s:b, s:o, s:o}", "type", "BPE", "dropout", "unk_token",
                              "<unk>", "continuing_subword_prefix", "end_of_word_suffix", "fuse_unk", 1,
                              "byte_fallback", 1, "vocab", vocab, "merges", merges);
    json_t *root = json_pack("{s:s, s:n, s:n, s:o, s:o, s:o, s:o, s:o, s:o}", "version", "1.0", "truncation",
                             "padding", "added_tokens", added, "normalizer", normalizer, "pre_tokenizer", pre,
                             "post_processor", post, "decoder", decoder, "model", model);
    int ok = root && json_dump_file(root, path, JSON_INDENT(1)) == 0;
    json_decref(root);
    tokenizer_llama2c_free(&l);
    return ok;
}

static const char *const story_texts[] = {
    "Once upon a time, there was a little girl named Lily.",
    "She loved to play outside in the park. One day, she saw a big, red ball.",
    "\"Can I play too?\" asked Tom. \"Yes!\" said the dog, and they ran home.",
    "The sum of 15 and 24 is 39.",
    "Q: How much is 27 plus 64? A: 91",
    "12345 + 678 = 13023; 3.14159, 2/3, -7, 1e10",
    "What?! Wow... (really) [yes] {no} <maybe> a|b ~ \\ % $5 & #1 @home",
    "tabs\tand\nnewlines\n\nand  double  spaces   and trailing ",
    "caf\xc3\xa9 na\xc3\xafve \xe2\x80\x94 \xe2\x82\xac 100 \xe2\x84\xa2 \xf0\x9f\x98\x80 \xe6\x97\xa5\xe6\x9c\xac",
    "aaaaaaaaaaaaaaaa bbbbbbbbbb the the the thethethe",
    "Lily and Ben were friends. They liked to share their toys and play games together every day.",
    "x",
    "  leading spaces",
};

/* A random text: vocabulary pieces of tok512, digits, punctuation, spaces and a few characters outside it. */
static void random_text(struct rng *r, const struct tokenizer_llama2c *l, char *out, size_t cap)
{
    static const char *const extra[] = {"0", "7", "42", ".", ",", "!", "?", "'", "\"", "\n", " ", "  ", "\t", "-",
                                        "\xc3\x9f", "\xe2\x80\x94", "\xf0\x9f\x98\x80", "Z", "q"};
    size_t n = 0, parts = 1 + rng_below(r, 14);
    out[0] = '\0';
    for (size_t i = 0; i < parts; i++) {
        const char *p;
        size_t len;
        if (rng_below(r, 4)) {
            int id = 259 + (int)rng_below(r, (uint64_t)(l->vocab_size - 259));
            p = l->bytes + l->offsets[id];
            len = (size_t)l->lengths[id];
        } else {
            p = extra[rng_below(r, sizeof extra / sizeof extra[0])];
            len = strlen(p);
        }
        if (n + len + 1 > cap) break;
        memcpy(out + n, p, len);
        n += len;
        out[n] = '\0';
    }
}

static int same_ids(const int32_t *a, size_t na, const int *b, int nb)
{
    if (na != (size_t)nb) return 0;
    for (size_t i = 0; i < na; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

static int round_trips(const struct tokenizer *t, const char *text)
{
    static int32_t ids[MAX_IDS];
    static char back[4 * MAX_IDS];
    size_t n = 0, len = 0;
    if (tokenizer_encode(t, text, ids, MAX_IDS, &n) || tokenizer_decode(t, ids, n, back, sizeof back, &len))
        return 0;
    if (len != strlen(text) || memcmp(back, text, len)) {
        fprintf(stderr, "round trip: \"%s\" -> \"%s\"\n", text, back);
        return 0;
    }
    return 1;
}

/* Encodes text with both; 1 when the ids agree (and prints both when not). */
static int agrees(const struct tokenizer *hf, const struct tokenizer_llama2c *l, const char *text)
{
    static int32_t got[MAX_IDS];
    static int want[MAX_IDS];
    size_t n = 0;
    int nw = 0;
    if (tokenizer_encode(hf, text, got, MAX_IDS, &n) || tokenizer_llama2c_encode(l, text, 0, want, MAX_IDS, &nw)) {
        fprintf(stderr, "encode failed on \"%s\": %s\n", text, err_msg());
        return 0;
    }
    if (same_ids(got, n, want, nw)) return 1;
    fprintf(stderr, "\"%s\": hf %zu ids, llama2c %d ids\n", text, n, nw);
    return 0;
}

static void test_stories_equivalence(void)
{
    struct tokenizer_llama2c l;
    struct tokenizer a, b, c;
    int distinct = 0;
    CHECK(tokenizer_llama2c_load(&l, testing_shared_path("models/stories260K/tok512.bin"), 512) == 0);
    CHECK(write_stories_json(tmp_file("prepend.json"), LAYOUT_PREPEND, &distinct));
    CHECK(distinct);
    CHECK(write_stories_json(tmp_file("metaspace_first.json"), LAYOUT_METASPACE_FIRST, &distinct));
    CHECK(write_stories_json(tmp_file("metaspace_old.json"), LAYOUT_METASPACE_OLD, &distinct));
    CHECK(tokenizer_hf_load(&a, tmp_file("prepend.json")) == 0);
    CHECK(tokenizer_hf_load(&b, tmp_file("metaspace_first.json")) == 0);
    CHECK(tokenizer_hf_load(&c, tmp_file("metaspace_old.json")) == 0);
    CHECK(a.vocab_size == 512 && a.kind == TOKENIZER_HF_BPE);
    CHECK(a.bos_id == 1 && a.eos_id == 2 && a.pad_id == 2 && a.sep_id == -1);
    CHECK(!strcmp(tokenizer_token_text(&a, 403), " Once") && !strcmp(tokenizer_token_text(&a, 13), "<0x0A>"));
    CHECK(!strcmp(tokenizer_token_text(&a, 1), "<s>") && tokenizer_token_text(&a, 512) == NULL);

    /* The golden prompt of the stories260K README: " Once" " upon" " a" " time". */
    int32_t ids[MAX_IDS];
    size_t n = 0;
    CHECK(tokenizer_encode(&a, "Once upon a time", ids, MAX_IDS, &n) == 0 && n == 4 && ids[0] == 403 &&
          ids[1] == 407 && ids[2] == 261 && ids[3] == 378);
    char buf[256];
    int32_t prompt[] = {1, 403, 407, 261, 378};
    CHECK(tokenizer_decode(&a, prompt + 1, 4, buf, sizeof buf, NULL) == 0 && !strcmp(buf, "Once upon a time"));
    CHECK(tokenizer_decode(&a, prompt, 5, buf, sizeof buf, NULL) == 0 && !strcmp(buf, "<s> Once upon a time"));
    /* "<s>" in a text is text: never the BOS id. */
    CHECK(tokenizer_encode(&a, "<s>", ids, MAX_IDS, &n) == 0 && n > 1);
    for (size_t i = 0; i < n; i++) CHECK(ids[i] != 1);

    int fixed_ok = 1;
    for (size_t i = 0; i < sizeof story_texts / sizeof story_texts[0]; i++) {
        const char *text = story_texts[i];
        fixed_ok &= agrees(&a, &l, text) && round_trips(&a, text);
        if (text[0] != ' ') fixed_ok &= agrees(&b, &l, text) && agrees(&c, &l, text) && round_trips(&b, text);
    }
    CHECK(fixed_ok);

    struct rng r;
    rng_seed(&r, 260);
    int random_ok = 1, compared = 0;
    static char text[512], spaced[514];
    for (int trial = 0; trial < 3000; trial++) {
        random_text(&r, &l, text, sizeof text);
        random_ok &= agrees(&a, &l, text) && round_trips(&a, text);
        if (text[0] != ' ') random_ok &= agrees(&b, &l, text) && agrees(&c, &l, text) && round_trips(&b, text);
        /* The Metaspace pre-tokenizer prepends "▁" only where the text does not start with one. */
        snprintf(spaced, sizeof spaced, " %s", text);
        size_t na = 0, nb = 0;
        static int32_t ia[MAX_IDS], ib[MAX_IDS];
        random_ok &= tokenizer_encode(&a, text, ia, MAX_IDS, &na) == 0 &&
                     tokenizer_encode(&b, spaced, ib, MAX_IDS, &nb) == 0 && na == nb &&
                     !memcmp(ia, ib, na * sizeof *ia);
        compared++;
    }
    CHECK(random_ok && compared == 3000);
    /* The old Metaspace decoder knows no byte fallback: "<0x0A>" stays as it is. */
    CHECK(tokenizer_encode(&c, "a\nb", ids, MAX_IDS, &n) == 0);
    CHECK(tokenizer_decode(&c, ids, n, buf, sizeof buf, NULL) == 0 && !strcmp(buf, "a<0x0A>b"));
    CHECK(round_trips(&c, "Once upon a time"));
    tokenizer_free(&a);
    tokenizer_free(&b);
    tokenizer_free(&c);
    tokenizer_llama2c_free(&l);
}

/* ---- (b) the hand-made Llama 3 tokenizer ---- */

static const char *pieces(const struct tokenizer *t, const char *text)
{
    static char out[1024];
    int32_t ids[256];
    size_t n = 0;
    if (tokenizer_encode(t, text, ids, 256, &n)) return err_msg();
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        char id[16];
        snprintf(id, sizeof id, i ? " %d" : "%d", (int)ids[i]);
        strcat(out, id);
    }
    return out;
}

/* tests/data/tokenizers/llama2_tiny.json: 15 tokens, merges as pairs, byte fallback and a fused <unk>. */
static void test_llama2_tiny(void)
{
    struct tokenizer t;
    CHECK(tokenizer_hf_load(&t, testing_source_path("tests/data/tokenizers/llama2_tiny.json")) == 0);
    CHECK(t.vocab_size == 15 && t.bos_id == 1 && t.eos_id == 2 && t.pad_id == 2);
    /* "▁ab▁ab": "▁ a" (rank 0) at both places, then "▁a b" (rank 2); "a b" (rank 1) is stale by then. */
    CHECK(!strcmp(pieces(&t, "ab ab"), "10 10"));
    CHECK(!strcmp(pieces(&t, "a\n!\xc3\xa9"), "8 3 4 13 14")); /* "\n", "!" and both bytes of "é" fall back */
    CHECK(!strcmp(pieces(&t, "axx"), "8 0"));                    /* 'x' has no byte token: one fused <unk> */
    CHECK(!strcmp(pieces(&t, "12"), "5 11 12"));
    CHECK(!strcmp(pieces(&t, " a"), "5 8"));
    CHECK(round_trips(&t, "a\n!\xc3\xa9 ab") && round_trips(&t, "  ab"));
    CHECK(!strcmp(tokenizer_token_text(&t, 10), " ab") && !strcmp(tokenizer_token_text(&t, 3), "<0x0A>"));
    tokenizer_free(&t);
}

static void test_llama3_ids(void)
{
    struct tokenizer t;
    CHECK(tokenizer_hf_load(&t, testing_source_path("tests/data/tokenizers/llama3_tiny.json")) == 0);
    CHECK(t.vocab_size == 36 && t.bos_id == 34 && t.eos_id == 35 && t.pad_id == 35 && t.sep_id == -1);
    /* Ids by hand: numbers in chunks of 3 (1 2 3 -> "12" by rank 0, then "123" by rank 1; "4 5" -> "45"). */
    CHECK(!strcmp(pieces(&t, "12345"), "21 22"));
    CHECK(!strcmp(pieces(&t, "4123"), "3 20 2")); /* "412" "3": only "1 2" merges in "412" */
    CHECK(!strcmp(pieces(&t, "23"), "32"));
    CHECK(!strcmp(pieces(&t, " 12"), "5 20"));    /* the space before a number is its own piece */
    /* " the": "t h" (rank 3) before "Ġ t" (rank 6), then "Ġ th", "Ġth e". */
    CHECK(!strcmp(pieces(&t, " the"), "25"));
    CHECK(!strcmp(pieces(&t, " tt"), "26 6"));
    CHECK(!strcmp(pieces(&t, "tt the"), "6 6 25"));
    CHECK(!strcmp(pieces(&t, "it's"), "28 27"));     /* "it" "'s" */
    CHECK(!strcmp(pieces(&t, "IT'S"), "17 18 9 19")); /* contractions ignore case: "IT" "'S" */
    CHECK(!strcmp(pieces(&t, "hat"), "33"));          /* ignore_merges: a whole piece in the vocabulary */
    CHECK(!strcmp(pieces(&t, "hats"), "7 15 6 10"));
    CHECK(!strcmp(pieces(&t, "a\n\nb"), "15 29 16"));
    CHECK(!strcmp(pieces(&t, "!!!?"), "31 14"));      /* one punctuation run; "! !" then "!! !" */
    CHECK(!strcmp(pieces(&t, "a  b"), "15 5 5 16"));  /* "a" " " " b" */
    CHECK(!strcmp(tokenizer_token_text(&t, 25), " the") && !strcmp(tokenizer_token_text(&t, 29), "\n\n"));
    CHECK(!strcmp(tokenizer_token_text(&t, 34), "<|begin_of_text|>") && tokenizer_find(&t, " the") == 25);
    CHECK(tokenizer_encode(&t, "x", NULL, 0, &(size_t){0}) == CIRCD_EINPUT && strstr(err_msg(), "0x78"));

    int32_t ids[8];
    size_t n = 0;
    CHECK(tokenizer_encode(&t, "12345 the", ids, 2, &n) == CIRCD_EINPUT && n == 3 && ids[0] == 21 && ids[1] == 22);
    char small[4], buf[64];
    int32_t three[] = {25, 25, 29};
    CHECK(tokenizer_decode(&t, three, 3, buf, sizeof buf, NULL) == 0 && !strcmp(buf, " the the\n\n"));
    CHECK(tokenizer_decode(&t, three, 3, small, sizeof small, NULL) == CIRCD_EINPUT);
    int32_t bad[] = {0, 36};
    CHECK(tokenizer_decode(&t, bad, 2, buf, sizeof buf, NULL) == CIRCD_EINPUT && strstr(err_msg(), "id 36"));
    tokenizer_free(&t);
}

/* llama3_tiny.json plus a token for every byte, so that any text encodes. */
static int write_full_byte_version(const char *path)
{
    json_error_t error;
    json_t *root = json_load_file(testing_source_path("tests/data/tokenizers/llama3_tiny.json"), 0, &error);
    if (!root) return 0;
    json_t *vocab = json_object_get(json_object_get(root, "model"), "vocab");
    int next = 36;
    for (int b = 0; b < 256; b++) {
        char key[3] = {0};
        hf_byte_char((unsigned char)b, key);
        if (!json_object_get(vocab, key)) json_object_set_new(vocab, key, json_integer(next++));
    }
    int ok = json_dump_file(root, path, 0) == 0;
    json_decref(root);
    return ok;
}

static void test_llama3_round_trips(void)
{
    struct tokenizer t;
    CHECK(write_full_byte_version(tmp_file("llama3_full.json")));
    CHECK(tokenizer_hf_load(&t, tmp_file("llama3_full.json")) == 0);
    CHECK(!strcmp(pieces(&t, "12345 the"), "21 22 25"));
    int32_t ids[64];
    size_t n = 0;
    CHECK(tokenizer_encode(&t, "<|begin_of_text|>", ids, 64, &n) == 0 && n > 1);
    int special = 0;
    for (size_t i = 0; i < n; i++) special |= ids[i] == 34 || ids[i] == 35;
    CHECK(!special);
    CHECK(round_trips(&t, "<|begin_of_text|>Hello, world! It's 2024.\n\n  x\r\n\ty"));
    CHECK(round_trips(&t, "na\xc3\xafve caf\xc3\xa9 \xe2\x80\x94 \xf0\x9f\x98\x80 \xe6\x97\xa5\xe6\x9c\xac x\xc2\xb2"));
    CHECK(round_trips(&t, ""));
    struct rng r;
    rng_seed(&r, 3);
    int ok = 1;
    char text[200];
    for (int trial = 0; trial < 2000; trial++) {
        size_t len = rng_below(&r, sizeof text - 1);
        for (size_t i = 0; i < len; i++) /* any byte but NUL: valid and invalid UTF-8 alike */
            text[i] = trial % 2 ? (char)(1 + rng_below(&r, 255)) : " a1'\n!\xc3\xa9"[rng_below(&r, 8)];
        text[len] = '\0';
        ok &= round_trips(&t, text);
    }
    CHECK(ok);
    tokenizer_free(&t);
}

/* The pieces of one split step joined with '|'. */
static int collect(void *ctx, size_t offset, size_t length)
{
    char **at = ctx;
    if (**at) strcat(*at, "|");
    strncat(*at, (const char *)at[1] + offset, length);
    return 0;
}

static const char *split(enum hf_split step, const char *text)
{
    static char out[512];
    out[0] = '\0';
    char *ctx[2] = {out, (char *)text};
    if (hf_split_run(step, text, strlen(text), collect, ctx)) return "(error)";
    return out;
}

static void test_splits(void)
{
    CHECK(!strcmp(split(HF_SPLIT_LLAMA3, "Hello world"), "Hello| world"));
    CHECK(!strcmp(split(HF_SPLIT_LLAMA3, "1234567"), "123|456|7"));
    CHECK(!strcmp(split(HF_SPLIT_LLAMA3, "it's 'sand 'RE"), "it|'s| '|sand| '|RE"));
    CHECK(!strcmp(split(HF_SPLIT_LLAMA3, "'sand"), "'s|and"));
    CHECK(!strcmp(split(HF_SPLIT_LLAMA3, "a\n\nb"), "a|\n\n|b"));
    CHECK(!strcmp(split(HF_SPLIT_LLAMA3, "  two"), " | two"));
    CHECK(!strcmp(split(HF_SPLIT_LLAMA3, "x  \n y"), "x|  \n| y"));
    CHECK(!strcmp(split(HF_SPLIT_LLAMA3, "!!!...\n\nok ..."), "!!!...\n\n|ok| ..."));
    CHECK(!strcmp(split(HF_SPLIT_LLAMA3, "$5.99 (hello)"), "$|5|.|99| (|hello|)"));
    CHECK(!strcmp(split(HF_SPLIT_LLAMA3, "trailing   "), "trailing|   "));
    CHECK(!strcmp(split(HF_SPLIT_LLAMA3, "\t\tTab\r\n"), "\t|\tTab|\r\n"));
    CHECK(!strcmp(split(HF_SPLIT_LLAMA3, "na\xc3\xafve x\xc2\xb2"), "na\xc3\xafve| x|\xc2\xb2"));
    CHECK(!strcmp(split(HF_SPLIT_LLAMA3, "a\xe2\x80\x94" "b \xf0\x9f\x98\x80\xf0\x9f\x98\x80 ok"),
                  "a|\xe2\x80\x94" "b| \xf0\x9f\x98\x80\xf0\x9f\x98\x80| ok"));
    CHECK(!strcmp(split(HF_SPLIT_GPT2, "Hello world's 123 !! IT'S"), "Hello| world|'s| 123| !!| IT|'|S"));
    CHECK(!strcmp(split(HF_SPLIT_GPT2, "  x\n\n"), " | x|\n\n"));
    CHECK(!strcmp(split(HF_SPLIT_DIGITS_INDIVIDUAL, "a12b3"), "a|1|2|b|3"));
    CHECK(!strcmp(split(HF_SPLIT_DIGITS, "a12b3"), "a|12|b|3"));
    CHECK(!strcmp(split(HF_SPLIT_METASPACE, SP "a" SP SP "b"), SP "a|" SP "|" SP "b"));
    CHECK(!strcmp(split(HF_SPLIT_METASPACE, "a" SP "b"), "a|" SP "b"));
}

/* ---- (c) errors ---- */

#define MODEL "\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": [\"a b\"]}"
#define MODEL_WITH(fields) \
    "\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": [\"a b\"], " fields "}"
#define SPLIT(regex, behavior, invert) \
    "\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"" regex "\"}, \"behavior\": \"" behavior \
    "\", \"invert\": " invert "}, "

static const struct {
    const char *json, *message;
} errors[] = {
    {"{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"a\", 0.0]]}}",
     "tokenizer.json: model.type: found \"Unigram\", expected \"BPE\""},
    {"{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}}}", "tokenizer.json: model.type: found \"WordPiece\""},
    {"{\"normalizer\": {\"type\": \"NFKC\"}, " MODEL "}", "tokenizer.json: normalizer.type: found \"NFKC\""},
    {"{\"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Prepend\", \"prepend\": \"_\"}]}, " MODEL
     "}", "normalizer.normalizers[0].prepend: found \"_\", expected \"" SP "\""},
    {"{\"normalizer\": {\"type\": \"Replace\", \"pattern\": {\"Regex\": \" \"}, \"content\": \"" SP "\"}, " MODEL "}",
     "normalizer.pattern.String: missing"},
    {"{\"normalizer\": {\"kind\": \"Prepend\"}, " MODEL "}", "normalizer.type: missing, expected a string"},
    {"{\"pre_tokenizer\": {\"type\": \"Whitespace\"}, " MODEL "}", "tokenizer.json: pre_tokenizer.type: found \"Whitespace\""},
    {"{" SPLIT("\\\\w+", "Isolated", "false") MODEL "}", "pre_tokenizer.pattern.Regex: found \"\\w+\", only the Llama 3"},
    {"{" SPLIT("\\\\w+", "Removed", "false") MODEL "}", "pre_tokenizer.behavior: found \"Removed\", expected \"Isolated\""},
    {"{" SPLIT("\\\\w+", "Isolated", "true") MODEL "}", "pre_tokenizer.invert: true is not supported"},
    {"{\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Metaspace\", \"replacement\": \"" SP
     "\", \"prepend_scheme\": \"sometimes\"}]}, " MODEL "}",
     "pre_tokenizer.pretokenizers[0].prepend_scheme: found \"sometimes\""},
    {"{\"pre_tokenizer\": {\"type\": \"Digits\", \"individual_digits\": 1}, " MODEL "}",
     "pre_tokenizer.individual_digits: found an integer, expected true or false"},
    {"{\"normalizer\": {\"type\": \"Prepend\", \"prepend\": \"" SP "\"}, \"pre_tokenizer\": {\"type\": \"ByteLevel\"}, "
     MODEL "}", "pre_tokenizer: ByteLevel together with"},
    {"{\"decoder\": {\"type\": \"WordPiece\"}, " MODEL "}", "tokenizer.json: decoder.type: found \"WordPiece\""},
    {"{\"decoder\": {\"type\": \"ByteLevel\"}, " MODEL "}", "decoder.type: ByteLevel, but the pre_tokenizer is not"},
    {"{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"decoder\": {\"type\": \"Fuse\"}, " MODEL "}",
     "decoder.type: found \"Fuse\", expected \"ByteLevel\""},
    {"{\"decoder\": {\"type\": \"Sequence\", \"decoders\": [{\"type\": \"Strip\", \"content\": \" \", \"start\": 1, "
     "\"stop\": 1}]}, " MODEL "}", "decoder.decoders[0].stop: found an integer, only 0 is supported"},
    {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a c\"]}}",
     "model.merges[0]: \"c\" is not in model.vocab"},
    {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": [\"a b\", [\"b\", \"a\"]]}}",
     "model.merges[1]: the merged token \"ba\" is not in model.vocab"},
    {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"ab\": 0}, \"merges\": [\"ab\"]}}",
     "model.merges[0]: \"ab\" is not two tokens separated by one space"},
    {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"ab\": 0}, \"merges\": [7]}}",
     "model.merges[0]: found an integer, expected \"a b\" or [\"a\", \"b\"]"},
    {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"ab\": 0}, \"merges\": {}}}", "model.merges: found an object"},
    {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": \"x\"}, \"merges\": []}}",
     "model.vocab[\"a\"]: found a string, expected an id"},
    {"{\"model\": {\"type\": \"BPE\", \"vocab\": [], \"merges\": []}}", "model.vocab: found an array, expected an object"},
    {"{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}}", "model.vocab: is empty"},
    {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 0}, \"merges\": []}}", "is also \""},
    {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 100000}, \"merges\": []}}",
     "model.vocab: id 100000 with only 1 tokens: ids must be (nearly) consecutive"},
    {"{\"normalizer\": null}", "tokenizer.json: model: found nothing, expected an object"},
    {"[1, 2]", "tokenizer.json: (top level): found an array, expected an object"},
    {"{" MODEL_WITH("\"unk_token\": \"<unk>\"") "}", "model.unk_token: \"<unk>\" is not in model.vocab"},
    {"{" MODEL_WITH("\"continuing_subword_prefix\": \"##\"") "}",
     "model.continuing_subword_prefix: found \"##\", only null is supported"},
    {"{" MODEL_WITH("\"dropout\": 0.1") "}", "model.dropout: found a number, only null is supported"},
    {"{" MODEL_WITH("\"byte_fallback\": \"yes\"") "}", "model.byte_fallback: found a string, expected true or false"},
    {"{\"added_tokens\": [{\"id\": \"x\", \"content\": \"<s>\"}], " MODEL "}",
     "added_tokens[0]: id: found a string, expected an id"},
    {"{\"added_tokens\": [{\"id\": 3}], " MODEL "}", "added_tokens[0]: content: found nothing, expected a string"},
    {"{\"added_tokens\": {}, " MODEL "}", "added_tokens: found an object, expected an array"},
    {"{" MODEL ", " MODEL "}", "tokenizer.json:1:"},
    {"{\n  \"model\": {\n    \"type\": \"BPE\",\n  ]\n}", "tokenizer.json:4:3: "},
};

static void test_errors(void)
{
    struct tokenizer t;
    for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++) {
        err_clear();
        int rc = tokenizer_hf_load_buffer(&t, errors[i].json, strlen(errors[i].json), "tokenizer.json");
        int ok = rc == CIRCD_EINPUT && strstr(err_msg(), errors[i].message) && t.state == NULL;
        if (!ok) fprintf(stderr, "error case %zu: rc %d, message \"%s\"\n", i, rc, err_msg());
        CHECK(ok);
    }
    CHECK(tokenizer_hf_load(&t, tmp_file("missing.json")) == CIRCD_EIO && strstr(err_msg(), "missing.json"));
    /* The duplicate key is Jansson's message; the minimal model loads. */
    const char *ok_json = "{" MODEL "}";
    CHECK(tokenizer_hf_load_buffer(&t, ok_json, strlen(ok_json), "tokenizer.json") == 0 && t.vocab_size == 3);
    CHECK(!strcmp(pieces(&t, "abab"), "2 2") && t.bos_id == -1 && t.eos_id == -1 && t.pad_id == -1);
    CHECK(tokenizer_encode(&t, "abc", NULL, 0, &(size_t){0}) == CIRCD_EINPUT &&
          strstr(err_msg(), "\"c\"") && strstr(err_msg(), "neither byte fallback nor an unk_token"));
    tokenizer_free(&t);
    /* With an unk_token and fuse_unk, a run of unknown characters is one <unk>. */
    const char *unk_json = "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"<unk>\": 0, \"a\": 1}, \"merges\": [], "
                           "\"unk_token\": \"<unk>\", \"fuse_unk\": true}}";
    CHECK(tokenizer_hf_load_buffer(&t, unk_json, strlen(unk_json), "tokenizer.json") == 0);
    CHECK(!strcmp(pieces(&t, "axyza"), "1 0 1"));
    tokenizer_free(&t);
}

int main(void)
{
    test_stories_equivalence();
    test_llama2_tiny();
    test_llama3_ids();
    test_llama3_round_trips();
    test_splits();
    test_errors();
    return testing_finish();
}
