/* test_tokenizer_files.c — circd_tokenizer.json (tokenizer_files.h): save / load round trips of both arithmetic
 * kinds with default and custom templates (same vocabulary, same ids on prompts, answers and traces), the file's
 * fields, atomic replacement and every load error; the llama2.c tokenizer behind struct tokenizer (stories260K's
 * golden prompt ids, agreement with tokenizer_llama2c_encode, round trips); and tokenizer_open_model_dir's search
 * order, tokenizer_config.json special tokens, and its errors. */
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/arith.h"
#include "data/arith_format.h"
#include "data/tokenizer.h"
#include "data/tokenizer_files.h"
#include "data/tokenizer_llama2c.h"
#include "testing.h"
#include "util/error.h"
#include "util/rng.h"

static const char *tok512(void) { return testing_shared_path("models/stories260K/tok512.bin"); }

/* A fresh directory under the test's temporary directory. */
static const char *make_dir(const char *name)
{
    static char paths[8][4200];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, sizeof paths[0], "%s/%s", testing_tmpdir(), name);
    mkdir(p, 0777);
    return p;
}

static const char *join(const char *dir, const char *name)
{
    static char paths[8][4300];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, sizeof paths[0], "%s/%s", dir, name);
    return p;
}

static int write_bytes(const char *path, const char *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(data, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

static int copy_file(const char *from, const char *to)
{
    size_t n = 0;
    char *data = testing_read_file(from, &n);
    int ok = data && write_bytes(to, data, n);
    free(data);
    return ok;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    if (d) closedir(d);
    return n;
}

static int same_vocabulary(const struct tokenizer *a, const struct tokenizer *b)
{
    if (a->vocab_size != b->vocab_size || a->kind != b->kind || a->pad_id != b->pad_id || a->bos_id != b->bos_id ||
        a->eos_id != b->eos_id || a->sep_id != b->sep_id)
        return 0;
    for (int32_t id = 0; id < a->vocab_size; id++)
        if (strcmp(tokenizer_token_text(a, id), tokenizer_token_text(b, id))) return 0;
    return 1;
}

static int same_encoding(const struct tokenizer *a, const struct tokenizer *b, const char *text)
{
    int32_t ia[512], ib[512];
    size_t na = 0, nb = 0;
    int ra = tokenizer_encode(a, text, ia, 512, &na), rb = tokenizer_encode(b, text, ib, 512, &nb);
    return ra == 0 && rb == 0 && na == nb && na > 0 && !memcmp(ia, ib, na * sizeof *ia);
}

/* Prompts, answers and traces of random problems under each template; 1 when a and b give the same ids. */
static int same_on_problems(const struct tokenizer *a, const struct tokenizer *b, const char *const *templates,
                            size_t n_templates)
{
    struct rng r;
    rng_seed(&r, 11);
    struct arith_gen_options o;
    arith_gen_options_default(&o);
    o.pairing = ARITH_DIGITS_INDEPENDENT;
    o.max_digits = ARITH_MAX_DIGITS;
    int ok = 1;
    for (size_t i = 0; i < n_templates; i++) {
        for (int trial = 0; trial < 20; trial++) {
            struct arith_problem p;
            arith_draw_problem(&o, &r, &p);
            struct arith_format f;
            arith_format_default(&f);
            char text[ARITH_TEXT_MAX];
            ok &= arith_prompt_text(templates[i], &p, &f, text, sizeof text, NULL) == 0 && same_encoding(a, b, text);
            ok &= arith_answer_text(&p, &f, text, sizeof text, NULL) == 0 && same_encoding(a, b, text);
            ok &= arith_cot_text(&p, f.answer_order, text, sizeof text, NULL) == 0 && same_encoding(a, b, text);
        }
    }
    return ok;
}

static void test_arith_round_trip(void)
{
    const char *defaults[2 * ARITH_DEFAULT_TEMPLATE_COUNT];
    for (int op = 0; op < ARITH_OP_COUNT; op++)
        for (int i = 0; i < ARITH_DEFAULT_TEMPLATE_COUNT; i++)
            defaults[op * ARITH_DEFAULT_TEMPLATE_COUNT + i] = arith_default_templates[op][i];
    const char *custom[] = {"What is {x} times {y}, exactly?", "{x} * {y} = ", "Compute: {x} % {y} ->"};
    const char *dir = make_dir("arith");
    const char *path = join(dir, "circd_tokenizer.json");
    for (int kind = 0; kind < 2; kind++) {
        for (int set = 0; set < 2; set++) {
            struct tokenizer t, u;
            const char *const *templates = set ? custom : defaults;
            size_t n = set ? 3 : 2 * ARITH_DEFAULT_TEMPLATE_COUNT;
            CHECK(tokenizer_arith_create(&t, (enum tokenizer_kind)kind, set ? custom : NULL, set ? 3 : 0) == 0);
            CHECK(tokenizer_arith_save(&t, path) == 0);
            CHECK(count_entries(dir) == 1); /* no temporary file left beside it */
            CHECK(tokenizer_arith_load(&u, path) == 0);
            CHECK(same_vocabulary(&t, &u));
            CHECK(same_on_problems(&t, &u, templates, n));
            CHECK(set == 0 ? t.vocab_size == (kind ? 1167 : 67) : tokenizer_find(&u, " times") > 0);
            tokenizer_free(&t);
            tokenizer_free(&u);
        }
    }

    /* The fields of the file the last iteration did not overwrite: write the default digits one again. */
    struct tokenizer d;
    CHECK(tokenizer_arith_create(&d, TOKENIZER_DIGITS, NULL, 0) == 0);
    CHECK(tokenizer_arith_save(&d, path) == 0);
    json_error_t error;
    json_t *root = json_load_file(path, 0, &error);
    CHECK(root != NULL);
    const json_t *words = json_object_get(root, "words"), *symbols = json_object_get(root, "symbols");
    const json_t *vocab = json_object_get(root, "vocab");
    CHECK(!strcmp(json_string_value(json_object_get(root, "format")), "circd_tokenizer"));
    CHECK(json_integer_value(json_object_get(root, "version")) == 1);
    CHECK(!strcmp(json_string_value(json_object_get(root, "kind")), "digits"));
    CHECK(json_array_size(words) == 17 && json_array_size(symbols) == 9 && json_array_size(vocab) == 67);
    CHECK(!strcmp(json_string_value(json_array_get(vocab, 4)), " ") &&
          !strcmp(json_string_value(json_array_get(vocab, 2)), "<eos>"));
    CHECK(!strcmp(json_string_value(json_array_get(words, 0)), "A") &&
          !strcmp(json_string_value(json_array_get(symbols, 0)), "+"));
    json_decref(root);
    tokenizer_free(&d);

    struct tokenizer l;
    CHECK(tokenizer_llama2c_open(&l, tok512(), 0) == 0);
    CHECK(tokenizer_arith_save(&l, join(dir, "other.json")) == CIRCD_EINPUT && strstr(err_msg(), "llama2c"));
    CHECK(count_entries(dir) == 1);
    tokenizer_free(&l);
}

/* The saved default digits tokenizer with root[key] replaced by value (NULL: removed), written to name. */
static const char *mutated(const char *dir, const char *name, const char *key, json_t *value)
{
    json_error_t error;
    json_t *root = json_load_file(join(dir, "good.json"), 0, &error);
    if (value) json_object_set_new(root, key, value);
    else json_object_del(root, key);
    const char *path = join(dir, name);
    json_dump_file(root, path, JSON_PRESERVE_ORDER);
    json_decref(root);
    return path;
}

static void test_arith_errors(void)
{
    const char *dir = make_dir("arith_errors");
    struct tokenizer t;
    CHECK(tokenizer_arith_create(&t, TOKENIZER_DIGITS, NULL, 0) == 0);
    CHECK(tokenizer_arith_save(&t, join(dir, "good.json")) == 0);
    tokenizer_free(&t);
    json_error_t error;
    json_t *good = json_load_file(join(dir, "good.json"), 0, &error);
    json_t *changed = json_deep_copy(json_object_get(good, "vocab"));
    json_t *short_vocab = json_pack("[s, s, s]", "<pad>", "<bos>", "<eos>");
    json_array_set_new(changed, 5, json_string("5"));
    json_decref(good);
    static const struct {
        const char *key;
        const char *value; /* JSON text, NULL = field removed */
        const char *message;
    } cases[] = {
        {"format", "\"tokenizer\"", "format: found \"tokenizer\", expected \"circd_tokenizer\""},
        {"version", "2", "version: expected 1"},
        {"version", NULL, "version: expected 1"},
        {"kind", "\"bpe\"", "kind: found \"bpe\", expected \"digits\" or \"number_chunks\""},
        {"kind", "\"llama2c\"", "kind: found \"llama2c\""},
        {"words", "[\"How\", \"x1\"]", "words[1]: \"x1\" is not a word of ASCII letters"},
        {"words", "\"How\"", "words: missing or not an array"},
        {"symbols", "[\"ab\"]", "symbols[0]: \"ab\" is not one printable ASCII character"},
        {"symbols", "[7]", "symbols[0]: not a string"},
        {"vocab", NULL, "vocab: missing or not an array"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "bad%zu.json", i);
        json_t *value = cases[i].value ? json_loads(cases[i].value, JSON_DECODE_ANY, &error) : NULL;
        const char *path = mutated(dir, name, cases[i].key, value);
        int rc = tokenizer_arith_load(&t, path);
        int ok = rc == CIRCD_EINPUT && strstr(err_msg(), name) && strstr(err_msg(), cases[i].message) && !t.state;
        if (!ok) fprintf(stderr, "case %zu: rc %d \"%s\"\n", i, rc, err_msg());
        CHECK(ok);
    }
    CHECK(tokenizer_arith_load(&t, mutated(dir, "v1.json", "vocab", changed)) == CIRCD_EINPUT &&
          strstr(err_msg(), "vocab[5]: \"5\", but the words and symbols build \"0\" there"));
    CHECK(tokenizer_arith_load(&t, mutated(dir, "v2.json", "vocab", short_vocab)) == CIRCD_EINPUT &&
          strstr(err_msg(), "vocab: 3 tokens, but the words and symbols build 67"));
    json_t *empty_words = json_array(), *empty_symbols = json_array();
    mutated(dir, "e1.json", "words", empty_words);
    json_t *root = json_load_file(join(dir, "e1.json"), 0, &error);
    json_object_set_new(root, "symbols", empty_symbols);
    json_dump_file(root, join(dir, "e2.json"), 0);
    json_decref(root);
    CHECK(tokenizer_arith_load(&t, join(dir, "e2.json")) == CIRCD_EINPUT && strstr(err_msg(), "both empty"));
    CHECK(write_bytes(join(dir, "syntax.json"), "{\n \"format\": \"circd_tokenizer\",\n \"version\" 1\n}", 44));
    CHECK(tokenizer_arith_load(&t, join(dir, "syntax.json")) == CIRCD_EINPUT && strstr(err_msg(), "syntax.json:3:"));
    CHECK(tokenizer_arith_load(&t, join(dir, "absent.json")) == CIRCD_EIO && strstr(err_msg(), "absent.json"));
    CHECK(tokenizer_arith_save(&(struct tokenizer){.kind = TOKENIZER_HF_BPE}, join(dir, "x.json")) == CIRCD_EINPUT);
}

static void test_llama2c(void)
{
    struct tokenizer t;
    struct tokenizer_llama2c l;
    CHECK(tokenizer_llama2c_open(&t, tok512(), 0) == 0);
    CHECK(tokenizer_llama2c_load(&l, tok512(), 512) == 0);
    CHECK(t.vocab_size == 512 && t.kind == TOKENIZER_LLAMA2C && !strcmp(tokenizer_kind_name(t.kind), "llama2c"));
    CHECK(t.bos_id == 1 && t.eos_id == 2 && t.pad_id == 2 && t.sep_id == -1);
    CHECK(!strcmp(tokenizer_token_text(&t, 1), "<s>") && !strcmp(tokenizer_token_text(&t, 403), " Once"));
    CHECK(!strcmp(tokenizer_token_text(&t, 13), "<0x0A>") && tokenizer_token_text(&t, 512) == NULL);
    CHECK(tokenizer_find(&t, " Once") == 403);

    int32_t ids[256];
    size_t n = 0;
    CHECK(tokenizer_encode(&t, "Once upon a time", ids, 256, &n) == 0 && n == 4 && ids[0] == 403 &&
          ids[1] == 407 && ids[2] == 261 && ids[3] == 378);
    char buf[512];
    size_t len = 0;
    int32_t prompt[] = {1, 403, 407, 261, 378, 2};
    CHECK(tokenizer_decode(&t, prompt, 6, buf, sizeof buf, &len) == 0 && !strcmp(buf, "<s> Once upon a time</s>"));
    CHECK(len == strlen("<s> Once upon a time</s>"));
    const char *texts[] = {"Lily saw a big, red ball.", "a\nb \xc3\x9f \xf0\x9f\x98\x80", "  two spaces", "x", "12+34=46"};
    int ok = 1;
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        int want[256], nw = 0;
        ok &= tokenizer_encode(&t, texts[i], ids, 256, &n) == 0;
        ok &= tokenizer_llama2c_encode(&l, texts[i], 0, want, 256, &nw) == 0 && (size_t)nw == n;
        ok &= !memcmp(ids, want, n * sizeof *ids);
        ok &= tokenizer_decode(&t, ids, n, buf, sizeof buf, &len) == 0 && !strcmp(buf, texts[i]);
        if (!ok) fprintf(stderr, "llama2c: \"%s\" -> \"%s\" (%zu ids)\n", texts[i], buf, n);
    }
    CHECK(ok);
    CHECK(tokenizer_encode(&t, "Once upon a time", ids, 2, &n) == CIRCD_EINPUT && n == 4 && ids[1] == 407);
    CHECK(tokenizer_encode(&t, "", ids, 2, &n) == 0 && n == 0);
    CHECK(tokenizer_decode(&t, prompt, 6, buf, 8, &len) == CIRCD_EINPUT);
    int32_t bad[] = {403, 512};
    CHECK(tokenizer_decode(&t, bad, 2, buf, sizeof buf, NULL) == CIRCD_EINPUT && strstr(err_msg(), "token 1"));
    tokenizer_llama2c_free(&l);
    tokenizer_free(&t);
    CHECK(tokenizer_llama2c_open(&t, "/nonexistent/tok.bin", 0) == CIRCD_EIO && t.state == NULL);
}

static void test_model_dir(void)
{
    struct tokenizer t;
    const char *empty = make_dir("empty");
    CHECK(tokenizer_open_model_dir(empty, &t) == CIRCD_EINPUT && strstr(err_msg(), "empty: no tokenizer") &&
          strstr(err_msg(), "circd_tokenizer.json, tokenizer.json, tokenizer.bin and tok*.bin"));
    CHECK(tokenizer_open_model_dir(join(empty, "absent"), &t) == CIRCD_EINPUT && strstr(err_msg(), "absent"));

    const char *l2c = make_dir("llama2c");
    CHECK(copy_file(tok512(), join(l2c, "tok512.bin")) && copy_file(tok512(), join(l2c, "tok999.bin")));
    CHECK(tokenizer_open_model_dir(l2c, &t) == 0 && t.kind == TOKENIZER_LLAMA2C && t.vocab_size == 512);
    tokenizer_free(&t);
    CHECK(write_bytes(join(l2c, "tokenizer.bin"), "\1\0\0", 3)); /* tokenizer.bin wins over tok*.bin */
    CHECK(tokenizer_open_model_dir(l2c, &t) == CIRCD_EINPUT && strstr(err_msg(), "tokenizer.bin: truncated"));

    const char *hf = make_dir("hf");
    CHECK(copy_file(tok512(), join(hf, "tokenizer.bin")));
    CHECK(copy_file(testing_source_path("tests/data/tokenizers/llama3_tiny.json"), join(hf, "tokenizer.json")));
    CHECK(tokenizer_open_model_dir(hf, &t) == 0 && t.kind == TOKENIZER_HF_BPE && t.vocab_size == 36);
    CHECK(t.bos_id == 34 && t.eos_id == 35 && t.pad_id == 35);
    tokenizer_free(&t);
    const char *config = "{\"bos_token\": {\"__type\": \"AddedToken\", \"content\": \"<|end_of_text|>\"}, "
                         "\"eos_token\": \"<|begin_of_text|>\", \"pad_token\": null}";
    CHECK(write_bytes(join(hf, "tokenizer_config.json"), config, strlen(config)));
    CHECK(tokenizer_open_model_dir(hf, &t) == 0 && t.bos_id == 35 && t.eos_id == 34 && t.pad_id == 34);
    tokenizer_free(&t);
    config = "{\"pad_token\": \"<|begin_of_text|>\"}";
    CHECK(write_bytes(join(hf, "tokenizer_config.json"), config, strlen(config)));
    CHECK(tokenizer_open_model_dir(hf, &t) == 0 && t.bos_id == 34 && t.eos_id == 35 && t.pad_id == 34);
    tokenizer_free(&t);
    config = "{\"eos_token\": \"<|eot_id|>\"}";
    CHECK(write_bytes(join(hf, "tokenizer_config.json"), config, strlen(config)));
    CHECK(tokenizer_open_model_dir(hf, &t) == CIRCD_EINPUT && t.state == NULL &&
          strstr(err_msg(), "tokenizer_config.json: eos_token: \"<|eot_id|>\" is not a token of tokenizer.json"));
    CHECK(write_bytes(join(hf, "tokenizer_config.json"), "{\"eos_token\": 5}", 16));
    CHECK(tokenizer_open_model_dir(hf, &t) == CIRCD_EINPUT && strstr(err_msg(), "eos_token: expected a string"));
    CHECK(write_bytes(join(hf, "tokenizer_config.json"), "{", 1));
    CHECK(tokenizer_open_model_dir(hf, &t) == CIRCD_EINPUT && strstr(err_msg(), "tokenizer_config.json:1:"));
    CHECK(write_bytes(join(hf, "tokenizer.json"), "{\"model\": 3}", 12));
    CHECK(tokenizer_open_model_dir(hf, &t) == CIRCD_EINPUT && strstr(err_msg(), "hf/tokenizer.json: model: found"));

    /* circd_tokenizer.json comes first. */
    struct tokenizer c;
    CHECK(tokenizer_arith_create(&c, TOKENIZER_NUMBER_CHUNKS, NULL, 0) == 0);
    CHECK(tokenizer_arith_save(&c, join(hf, "circd_tokenizer.json")) == 0);
    CHECK(tokenizer_open_model_dir(hf, &t) == 0 && t.kind == TOKENIZER_NUMBER_CHUNKS && same_vocabulary(&t, &c));
    tokenizer_free(&t);
    tokenizer_free(&c);
}

int main(void)
{
    test_arith_round_trip();
    test_arith_errors();
    test_llama2c();
    test_model_dir();
    return testing_finish();
}
