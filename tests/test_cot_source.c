/* test_cot_source.c — the teacher-generated chain-of-thought pool: rows are the prompt the cot format encodes, <sep>,
 * exactly the ids batched greedy decoding produced, then <eos>; targets only on the generated part; a teacher made
 * to end at once gives "prompt <sep> <eos>"; the batch source is a function of the cursor and covers every row once
 * per epoch; bad inputs are refused. CIRCD_COT_TIMING=1 also times a 512-row pool of a d128/L4 random teacher. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "distill/cot_source.h"
#include "eval/greedy.h"
#include "testing.h"
#include "util/error.h"

enum { N = 20, BATCH = 6, MAX_NEW = 16, SEED = 11 };

static struct llama_config teacher_config(int vocab, int d, int layers, int max_seq)
{
    struct llama_config c = {0};
    c.vocab_size = vocab;
    c.d_model = d;
    c.n_layers = layers;
    c.n_heads = 4;
    c.n_kv_heads = 4;
    c.head_dim = d / 4;
    c.d_ff = 2 * d;
    c.max_seq = max_seq;
    c.rope_theta = 10000.0f;
    c.norm_eps = 1e-5f;
    c.bos_token_id = c.eos_token_id = -1;
    return c;
}

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The pool's rows against an independent replay: the stream's first N problems, grouped as the pool groups them and
 * decoded in the same chunks. */
static void check_rows(const struct cot_pool *p, struct llama_model *m, const struct tokenizer *tok,
                       const struct arith_format *f, const struct arith_stream *stream)
{
    struct arith_item items[N];
    struct rng r;
    int64_t cursor;
    arith_stream_start(SEED, &r, &cursor);
    for (int i = 0; i < N; i++) {
        struct arith_example ex;
        CHECK(arith_stream_next(stream, &r, &cursor, &ex) == 0);
        items[i].problem = ex.clean;
        items[i].template_text = arith_template_text(&stream->options, (size_t)ex.template_index);
    }
    size_t order[N], starts[N + 1], n_groups = 0;
    CHECK(arith_group_by_prompt_length(tok, f, items, N, order, starts, &n_groups) == 0);
    CHECK(n_groups >= 2); /* 1..5-digit operands: several prompt lengths */
    static struct arith_encoded enc;
    int32_t prompts[BATCH * ARITH_SEQ_MAX], out[BATCH * MAX_NEW];
    int out_len[BATCH], rows_checked = 0;
    for (size_t g = 0; g < n_groups; g++)
        for (size_t first = starts[g]; first < starts[g + 1]; first += BATCH) {
            int B = (int)(starts[g + 1] - first < BATCH ? starts[g + 1] - first : BATCH), L = 0;
            for (int b = 0; b < B; b++) {
                CHECK(arith_encode(tok, f, &items[order[first + b]], &enc) == 0);
                L = enc.prompt_len;
                memcpy(prompts + b * L, enc.ids, (size_t)L * sizeof(int32_t));
            }
            CHECK(greedy_decode_batch(m, prompts, B, L, MAX_NEW, tok->eos_id, out, out_len) == 0);
            for (int b = 0; b < B; b++) {
                int i = (int)order[first + b], len = p->lengths[i];
                const int32_t *row = p->tokens + (size_t)i * p->T, *target = p->targets + (size_t)i * p->T;
                CHECK(p->prompt_lengths[i] == L);
                CHECK(memcmp(row, prompts + b * L, (size_t)L * sizeof(int32_t)) == 0);
                CHECK(row[0] == tok->bos_id && row[L - 1] == tok->sep_id);
                /* A random teacher never says <eos> here: all MAX_NEW ids, then the appended <eos>. */
                CHECK(out_len[b] == MAX_NEW && len == L + MAX_NEW + 1);
                CHECK(memcmp(row + L, out + b * MAX_NEW, MAX_NEW * sizeof(int32_t)) == 0);
                CHECK(row[len - 1] == tok->eos_id);
                int ok = 1;
                for (int t = len; t < p->T; t++) ok &= row[t] == tok->pad_id;
                for (int t = 0; t < p->T; t++) {
                    int32_t want = t >= L - 1 && t < len - 1 ? row[t + 1] : -1;
                    ok &= target[t] == want;
                }
                CHECK(ok);
                CHECK(target[L - 2] == -1 && target[L - 1] == row[L] && target[len - 2] == tok->eos_id);
                rows_checked++;
            }
        }
    CHECK(rows_checked == N);
}

/* Batches over whole epochs: row k of the stream is pool row order[k mod n], T = its batch's longest row. */
static void check_batches(const struct cot_pool *p)
{
    enum { B = 7, MAX_T = 128 };
    int32_t tokens[B * MAX_T], targets[B * MAX_T], tokens2[B * MAX_T], targets2[B * MAX_T];
    int seen[N] = {0}, T = 0, T2 = 0;
    struct rng r, r2;
    rng_seed(&r, 1);
    rng_seed(&r2, 999);
    int64_t cursor = 0;
    /* The order is a permutation. */
    for (int i = 0; i < N; i++) CHECK(p->order[i] >= 0 && p->order[i] < N && ++seen[p->order[i]] == 1);
    memset(seen, 0, sizeof seen);
    for (int batch = 0; batch < 6; batch++) { /* 42 rows: two epochs and two rows */
        int64_t start = cursor;
        CHECK(cot_pool_batch((void *)p, &r, &cursor, tokens, targets, B, MAX_T, &T) == 0);
        CHECK(cursor == start + B);
        int longest = 0;
        for (int b = 0; b < B; b++) {
            int row = p->order[(start + b) % N];
            if (p->lengths[row] > longest) longest = p->lengths[row];
            if (start + b < N) seen[row]++;
        }
        CHECK(T == longest && T <= p->T);
        int ok = 1;
        for (int b = 0; b < B; b++) {
            int row = p->order[(start + b) % N];
            ok &= memcmp(tokens + b * T, p->tokens + (size_t)row * p->T, (size_t)T * sizeof(int32_t)) == 0;
            ok &= memcmp(targets + b * T, p->targets + (size_t)row * p->T, (size_t)T * sizeof(int32_t)) == 0;
        }
        CHECK(ok);
    }
    for (int i = 0; i < N; i++) CHECK(seen[i] == 1);
    /* The same cursor with another rng state: the same batch; the rng is left alone. */
    struct rng before = r2;
    int64_t c1 = 33, c2 = 33;
    CHECK(cot_pool_batch((void *)p, &r, &c1, tokens, targets, B, MAX_T, &T) == 0);
    CHECK(cot_pool_batch((void *)p, &r2, &c2, tokens2, targets2, B, MAX_T, &T2) == 0);
    CHECK(c1 == 40 && c2 == 40 && T == T2);
    CHECK(memcmp(tokens, tokens2, (size_t)B * T * sizeof(int32_t)) == 0);
    CHECK(memcmp(targets, targets2, (size_t)B * T * sizeof(int32_t)) == 0);
    CHECK(memcmp(&before, &r2, sizeof before) == 0);
    /* Errors: rows longer than max_T, B <= 0, negative cursor, empty pool. */
    int shortest = p->T;
    for (int i = 0; i < N; i++) shortest = p->lengths[i] < shortest ? p->lengths[i] : shortest;
    c1 = 0;
    CHECK(cot_pool_batch((void *)p, &r, &c1, tokens, targets, B, shortest - 1, &T) == CIRCD_EINPUT && c1 == 0);
    CHECK(cot_pool_batch((void *)p, &r, &c1, tokens, targets, 0, MAX_T, &T) == CIRCD_EINPUT);
    c1 = -1;
    CHECK(cot_pool_batch((void *)p, &r, &c1, tokens, targets, B, MAX_T, &T) == CIRCD_EINPUT);
    struct cot_pool empty = {0};
    c1 = 0;
    CHECK(cot_pool_batch(&empty, &r, &c1, tokens, targets, B, MAX_T, &T) == CIRCD_EINPUT);
}

/* Makes every next token <eos>: the residual stream is the embedding (attention and MLP outputs zeroed), every
 * embedding has a large component 0, and only <eos>'s lm_head row reads it. */
static void make_eos_teacher(struct llama_model *m, int eos)
{
    const struct llama_config *c = &m->config;
    size_t d = (size_t)c->d_model;
    for (int l = 0; l < c->n_layers; l++) {
        memset(m->w.layers[l].wo, 0, d * (size_t)(c->n_heads * c->head_dim) * sizeof(float));
        memset(m->w.layers[l].w_down, 0, d * (size_t)c->d_ff * sizeof(float));
    }
    for (int v = 0; v < c->vocab_size; v++) m->w.embed[(size_t)v * d] = 10.0f;
    memset(m->w.lm_head, 0, (size_t)c->vocab_size * d * sizeof(float));
    m->w.lm_head[(size_t)eos * d] = 1.0f;
}

static void time_pool(const struct tokenizer *tok, const struct arith_format *f, const struct arith_stream *stream)
{
    struct llama_config cfg = teacher_config(tok->vocab_size, 128, 4, 256);
    struct llama_model m;
    struct cot_pool p;
    enum { ROWS = 512, CHUNK = 64, NEW = 64 };
    CHECK(model_create(&m, &cfg) == 0);
    model_init_random(&m, 3);
    double t0 = seconds_now();
    CHECK(cot_pool_build(&p, &m, tok, f, stream, 1, ROWS, CHUNK, NEW) == 0);
    double t1 = seconds_now();
    printf("cot_pool_build: %d rows, d128/L4 random teacher, batch %d, max_new %d (never ends: %d rows cut), "
           "T %d: %.2f s\n", ROWS, CHUNK, NEW, p.n_cut, p.T, t1 - t0);
    cot_pool_free(&p);
    model_free(&m);
}

int main(void)
{
    struct tokenizer tok;
    CHECK(tokenizer_arith_create(&tok, TOKENIZER_DIGITS, NULL, 0) == 0);
    struct arith_splits_options so;
    arith_splits_options_default(&so);
    so.id_test_count = so.ood_test_count = so.atp_count = 20;
    struct arith_splits splits;
    CHECK(arith_splits_build(&so, &splits) == 0);
    struct arith_stream stream;
    arith_stream_from_splits(&stream, &splits, &so);
    struct arith_format cot;
    arith_format_default(&cot);
    cot.answer_order = ARITH_ANSWER_REVERSED;
    cot.chain_of_thought = 1;
    cot.separator = 1;

    struct llama_config cfg = teacher_config(tok.vocab_size, 32, 2, 64);
    struct llama_model m;
    CHECK(model_create(&m, &cfg) == 0);
    model_init_random(&m, 7);

    /* A random teacher: structure of every row, no trace right, every row cut. */
    struct cot_pool p;
    CHECK(cot_pool_build(&p, &m, &tok, &cot, &stream, SEED, N, BATCH, MAX_NEW) == 0);
    CHECK(p.n == N && p.n_cut == N && p.n_correct == 0);
    CHECK_NEAR(p.teacher_correct, 0.0, 0.0);
    int longest = 0, longest_prompt = 0;
    for (int i = 0; i < N; i++) {
        longest = p.lengths[i] > longest ? p.lengths[i] : longest;
        longest_prompt = p.prompt_lengths[i] > longest_prompt ? p.prompt_lengths[i] : longest_prompt;
    }
    CHECK(p.T == longest && longest == longest_prompt + MAX_NEW + 1);
    check_rows(&p, &m, &tok, &cot, &stream);
    check_batches(&p);

    /* The same seed gives the same pool; another seed other problems. */
    struct cot_pool q;
    CHECK(cot_pool_build(&q, &m, &tok, &cot, &stream, SEED, N, 4, MAX_NEW) == 0);
    CHECK(q.T == p.T && memcmp(q.lengths, p.lengths, N * sizeof(int32_t)) == 0);
    /* Prompts and order are exact; decoded ids may differ only if batching changed an argmax (they did not here). */
    CHECK(memcmp(q.tokens, p.tokens, (size_t)N * p.T * sizeof(int32_t)) == 0);
    CHECK(memcmp(q.order, p.order, N * sizeof(int32_t)) == 0);
    cot_pool_free(&q);
    CHECK(cot_pool_build(&q, &m, &tok, &cot, &stream, SEED + 1, N, BATCH, MAX_NEW) == 0);
    int same_prompts = 0;
    for (int i = 0; i < N; i++)
        same_prompts += q.prompt_lengths[i] == p.prompt_lengths[i] &&
                        memcmp(q.tokens + (size_t)i * q.T, p.tokens + (size_t)i * p.T,
                               (size_t)p.prompt_lengths[i] * sizeof(int32_t)) == 0;
    CHECK(same_prompts < N / 2 && memcmp(q.order, p.order, N * sizeof(int32_t)) != 0);
    cot_pool_free(&q);
    cot_pool_free(&p);

    /* max_seq clips generation so a cut row still fits with its <eos>: the longest prompt gets 4 ids. */
    int max_seq = longest_prompt + 5;
    struct llama_config small = teacher_config(tok.vocab_size, 32, 2, max_seq);
    struct llama_model ms;
    CHECK(model_create(&ms, &small) == 0);
    model_init_random(&ms, 7);
    CHECK(cot_pool_build(&p, &ms, &tok, &cot, &stream, SEED, N, BATCH, MAX_NEW) == 0);
    CHECK(p.T == max_seq && p.n_cut == N);
    for (int i = 0; i < N; i++) {
        int want = p.prompt_lengths[i] + MAX_NEW + 1 < max_seq ? p.prompt_lengths[i] + MAX_NEW + 1 : max_seq;
        CHECK(p.lengths[i] == want && p.tokens[(size_t)i * p.T + want - 1] == tok.eos_id);
    }
    cot_pool_free(&p);
    model_free(&ms);

    /* A teacher that ends at once: prompt <sep> <eos>, one target (the <eos>, predicted at <sep>). */
    make_eos_teacher(&m, tok.eos_id);
    CHECK(cot_pool_build(&p, &m, &tok, &cot, &stream, SEED, N, BATCH, MAX_NEW) == 0);
    CHECK(p.n_cut == 0 && p.n_correct == 0);
    CHECK_NEAR(p.teacher_correct, 0.0, 0.0);
    for (int i = 0; i < N; i++) {
        const int32_t *row = p.tokens + (size_t)i * p.T, *target = p.targets + (size_t)i * p.T;
        int L = p.prompt_lengths[i], trained = 0;
        CHECK(p.lengths[i] == L + 1 && row[L - 1] == tok.sep_id && row[L] == tok.eos_id);
        for (int t = 0; t < p.T; t++) trained += target[t] >= 0;
        CHECK(trained == 1 && target[L - 1] == tok.eos_id);
    }
    cot_pool_free(&p);

    /* Errors: n <= 0, batch / max_new <= 0, a format without separator or trace, a mismatched vocabulary. */
    struct arith_format no_sep = cot, no_trace = cot;
    no_sep.separator = 0;
    no_trace.chain_of_thought = 0;
    CHECK(cot_pool_build(&p, &m, &tok, &cot, &stream, SEED, 0, BATCH, MAX_NEW) == CIRCD_EINPUT && p.tokens == NULL);
    CHECK(cot_pool_build(&p, &m, &tok, &cot, &stream, SEED, -3, BATCH, MAX_NEW) == CIRCD_EINPUT);
    CHECK(cot_pool_build(&p, &m, &tok, &cot, &stream, SEED, N, 0, MAX_NEW) == CIRCD_EINPUT);
    CHECK(cot_pool_build(&p, &m, &tok, &cot, &stream, SEED, N, BATCH, 0) == CIRCD_EINPUT);
    CHECK(cot_pool_build(&p, &m, &tok, &no_sep, &stream, SEED, N, BATCH, MAX_NEW) == CIRCD_EINPUT);
    CHECK(strstr(err_msg(), "separator") != NULL);
    CHECK(cot_pool_build(&p, &m, &tok, &no_trace, &stream, SEED, N, BATCH, MAX_NEW) == CIRCD_EINPUT);
    struct llama_config wide = teacher_config(tok.vocab_size + 1, 32, 1, 64);
    struct llama_model mw;
    CHECK(model_create(&mw, &wide) == 0);
    CHECK(cot_pool_build(&p, &mw, &tok, &cot, &stream, SEED, N, BATCH, MAX_NEW) == CIRCD_EINPUT);
    model_free(&mw);
    /* Prompts too long for max_seq: no room to generate. */
    struct llama_config tiny = teacher_config(tok.vocab_size, 32, 1, 8);
    CHECK(model_create(&mw, &tiny) == 0);
    CHECK(cot_pool_build(&p, &mw, &tok, &cot, &stream, SEED, N, BATCH, MAX_NEW) == CIRCD_EINPUT && p.n == 0);
    model_free(&mw);
    cot_pool_free(&p); /* safe on the zeroed pool */

    const char *timing = getenv("CIRCD_COT_TIMING");
    if (timing && timing[0] == '1') time_pool(&tok, &cot, &stream);

    model_free(&m);
    arith_splits_free(&splits);
    tokenizer_free(&tok);
    return testing_finish();
}
