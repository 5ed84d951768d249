/* cot_source.c — implementation of cot_source.h: a pool of teacher-generated chain-of-thought rows and the
 * trainer's batch source over it. */
#include "distill/cot_source.h"

#include <stdlib.h>
#include <string.h>

#include "eval/greedy.h"
#include "util/error.h"

#define COT_ORDER_SALT 0x636f74706f6f6cULL  /* "cotpool": the shuffle's RNG differs from the stream's */

/* Scratch of one build: the drawn problems, their grouping, and one chunk's prompts and generated ids. */
struct cot_scratch {
    struct arith_item *items;  /* [n] */
    size_t *order, *starts;    /* [n], [n + 1] */
    int32_t *prompts;          /* [batch, ARITH_SEQ_MAX] */
    int32_t *out;              /* [batch, max_new] */
    int *out_len;              /* [batch] */
    struct arith_encoded *enc;
};

static void scratch_free(struct cot_scratch *s)
{
    free(s->items);
    free(s->order);
    free(s->starts);
    free(s->prompts);
    free(s->out);
    free(s->out_len);
    free(s->enc);
}

static int check_inputs(const struct llama_model *teacher, const struct tokenizer *tok,
                        const struct arith_format *f, int n, int batch, int max_new)
{
    if (n <= 0 || batch <= 0 || max_new <= 0)
        return err_set(CIRCD_EINPUT, "CoT pool of %d rows in batches of %d with %d new tokens, expected positive "
                       "sizes", n, batch, max_new);
    int rc = arith_format_check(f);
    if (rc) return rc;
    if (!f->chain_of_thought || !f->separator)
        return err_set(CIRCD_EINPUT, "CoT pool needs a format with chain_of_thought and separator (got %d and %d)",
                       f->chain_of_thought, f->separator);
    if (teacher->config.vocab_size != tok->vocab_size)
        return err_set(CIRCD_EINPUT, "CoT pool: the teacher's vocab_size %d does not match the tokenizer's %d tokens",
                       teacher->config.vocab_size, tok->vocab_size);
    return 0;
}

/* items[0..n) = the first n problems of the stream started from seed. */
static int draw_items(const struct arith_stream *stream, uint64_t seed, int n, struct arith_item *items)
{
    struct rng r;
    int64_t cursor;
    arith_stream_start(seed, &r, &cursor);
    for (int i = 0; i < n; i++) {
        struct arith_example ex;
        int rc = arith_stream_next(stream, &r, &cursor, &ex);
        if (rc) return err_prefix(rc, "CoT pool row %d: ", i);
        items[i].problem = ex.clean;
        items[i].template_text = arith_template_text(&stream->options, (size_t)ex.template_index);
        if (!items[i].template_text)
            return err_set(CIRCD_EINPUT, "CoT pool row %d: template index %d outside the stream's %zu templates", i,
                           (int)ex.template_index, arith_template_count(&stream->options));
    }
    return 0;
}

/* Decodes one chunk (rows order[first..first+B), prompts of L tokens) and writes its rows at stride `stride`. */
static int decode_chunk(struct cot_pool *p, struct cot_scratch *s, struct llama_model *teacher,
                        const struct tokenizer *tok, const struct arith_format *f, size_t first, int B, int stride,
                        int max_new)
{
    int L = 0, rc;
    for (int b = 0; b < B; b++) {
        if ((rc = arith_encode(tok, f, &s->items[s->order[first + b]], s->enc)))
            return err_prefix(rc, "CoT pool row %zu: ", s->order[first + b]);
        L = s->enc->prompt_len;
        memcpy(s->prompts + (size_t)b * L, s->enc->ids, (size_t)L * sizeof *s->prompts);
    }
    /* Room for the row's <eos> when the teacher emits none: L + new + 1 <= stride <= max_seq. */
    int new_tokens = stride - L - 1 < max_new ? stride - L - 1 : max_new;
    if (new_tokens <= 0)
        return err_set(CIRCD_EINPUT, "CoT pool: prompts of %d tokens leave no room to generate within max_seq %d", L,
                       teacher->config.max_seq);
    if ((rc = greedy_decode_batch(teacher, s->prompts, B, L, new_tokens, tok->eos_id, s->out, s->out_len)))
        return err_prefix(rc, "CoT pool: ");
    for (int b = 0; b < B; b++) {
        size_t i = s->order[first + b];
        const int32_t *gen = s->out + (size_t)b * new_tokens;
        int len = s->out_len[b];
        struct arith_score score;
        if ((rc = arith_score_generated(tok, f, gen, (size_t)len, &s->items[i].problem, &score)))
            return err_prefix(rc, "CoT pool row %zu: ", i);
        p->n_correct += score.correct;
        int32_t *row = p->tokens + i * (size_t)stride;
        memcpy(row, s->prompts + (size_t)b * L, (size_t)L * sizeof *row);
        memcpy(row + L, gen, (size_t)len * sizeof *row);
        if (len == 0 || gen[len - 1] != tok->eos_id) {
            row[L + len++] = tok->eos_id;
            p->n_cut++;
        }
        p->prompt_lengths[i] = L;
        p->lengths[i] = L + len;
    }
    return 0;
}

/* Packs the rows from stride `stride` to the longest row, pads them and writes the targets. */
static void pack_rows(struct cot_pool *p, const struct tokenizer *tok, int stride)
{
    int T = 0;
    for (int i = 0; i < p->n; i++)
        if (p->lengths[i] > T) T = p->lengths[i];
    for (int i = 0; i < p->n; i++) {
        int32_t *row = p->tokens + (size_t)i * T, *target = p->targets + (size_t)i * T;
        int len = p->lengths[i], prompt = p->prompt_lengths[i];
        memmove(row, p->tokens + (size_t)i * stride, (size_t)len * sizeof *row);
        for (int t = len; t < T; t++) row[t] = tok->pad_id;
        for (int t = 0; t < T; t++) target[t] = t + 1 >= prompt && t + 1 < len ? row[t + 1] : -1;
    }
    p->T = T;
    /* Shrinking cannot lose data; keep the larger buffers if the allocator refuses. */
    int32_t *tokens = realloc(p->tokens, (size_t)p->n * T * sizeof *tokens);
    if (tokens) p->tokens = tokens;
    int32_t *targets = realloc(p->targets, (size_t)p->n * T * sizeof *targets);
    if (targets) p->targets = targets;
}

/* order = a permutation of 0..n) drawn from seed (Fisher-Yates). */
static void shuffle_order(int32_t *order, int n, uint64_t seed)
{
    struct rng r;
    rng_seed(&r, seed ^ COT_ORDER_SALT);
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rng_below(&r, (uint64_t)i + 1);
        int32_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

int cot_pool_build(struct cot_pool *p, struct llama_model *teacher, const struct tokenizer *tok,
                   const struct arith_format *cot_format, const struct arith_stream *stream, uint64_t seed, int n,
                   int batch, int max_new)
{
    memset(p, 0, sizeof *p);
    int rc = check_inputs(teacher, tok, cot_format, n, batch, max_new);
    if (rc) return rc;
    struct cot_scratch s = {0};
    size_t n_groups = 0;
    s.items = xcalloc((size_t)n, sizeof *s.items);
    s.order = xcalloc((size_t)n, sizeof *s.order);
    s.starts = xcalloc((size_t)n + 1, sizeof *s.starts);
    s.prompts = xcalloc((size_t)batch * ARITH_SEQ_MAX, sizeof *s.prompts);
    s.out = xcalloc((size_t)batch * (size_t)max_new, sizeof *s.out);
    s.out_len = xcalloc((size_t)batch, sizeof *s.out_len);
    s.enc = xmalloc(sizeof *s.enc);
    if (!s.items || !s.order || !s.starts || !s.prompts || !s.out || !s.out_len || !s.enc) {
        rc = CIRCD_ENOMEM;
        goto done;
    }
    if ((rc = draw_items(stream, seed, n, s.items))) goto done;
    if ((rc = arith_group_by_prompt_length(tok, cot_format, s.items, (size_t)n, s.order, s.starts, &n_groups)))
        goto done;
    /* Rows are written at a stride with room for the longest prompt, max_new ids and an appended <eos>. */
    int longest_prompt = 0;
    if ((rc = arith_prompt_length(tok, cot_format, &s.items[s.order[n - 1]], &longest_prompt))) goto done;
    int stride = longest_prompt + max_new + 1;
    if (stride > teacher->config.max_seq) stride = teacher->config.max_seq;
    p->n = n;
    p->tokens = xcalloc((size_t)n * (size_t)stride, sizeof *p->tokens);
    p->targets = xcalloc((size_t)n * (size_t)stride, sizeof *p->targets);
    p->lengths = xcalloc((size_t)n, sizeof *p->lengths);
    p->prompt_lengths = xcalloc((size_t)n, sizeof *p->prompt_lengths);
    p->order = xcalloc((size_t)n, sizeof *p->order);
    if (!p->tokens || !p->targets || !p->lengths || !p->prompt_lengths || !p->order) {
        rc = CIRCD_ENOMEM;
        goto done;
    }
    for (size_t g = 0; g < n_groups && !rc; g++)
        for (size_t first = s.starts[g]; first < s.starts[g + 1] && !rc; first += (size_t)batch) {
            size_t last = first + (size_t)batch < s.starts[g + 1] ? first + (size_t)batch : s.starts[g + 1];
            rc = decode_chunk(p, &s, teacher, tok, cot_format, first, (int)(last - first), stride, max_new);
        }
    if (rc) goto done;
    pack_rows(p, tok, stride);
    shuffle_order(p->order, n, seed);
    p->teacher_correct = (double)p->n_correct / (double)n;
done:
    scratch_free(&s);
    if (rc) cot_pool_free(p);
    return rc;
}

void cot_pool_free(struct cot_pool *p)
{
    if (!p) return;
    free(p->tokens);
    free(p->targets);
    free(p->lengths);
    free(p->prompt_lengths);
    free(p->order);
    memset(p, 0, sizeof *p);
}

int cot_pool_batch(void *ctx, struct rng *rng, int64_t *cursor, int32_t *tokens, int32_t *targets, int B, int max_T,
                   int *T)
{
    const struct cot_pool *p = ctx;
    (void)rng;
    if (B <= 0 || *cursor < 0 || p->n <= 0)
        return err_set(CIRCD_EINPUT, "CoT batch of %d rows at cursor %lld from a pool of %d rows", B,
                       (long long)*cursor, p->n);
    int longest = 0;
    for (int b = 0; b < B; b++) {
        int32_t row = p->order[(*cursor + b) % p->n];
        if (p->lengths[row] > max_T)
            return err_set(CIRCD_EINPUT, "CoT pool row %d takes %d tokens, the batch holds %d", (int)row,
                           (int)p->lengths[row], max_T);
        if (p->lengths[row] > longest) longest = p->lengths[row];
    }
    /* Pool rows are padded to p->T >= longest; their first `longest` tokens and targets are the batch row. */
    for (int b = 0; b < B; b++) {
        int32_t row = p->order[(*cursor + b) % p->n];
        memcpy(tokens + (size_t)b * longest, p->tokens + (size_t)row * p->T, (size_t)longest * sizeof *tokens);
        memcpy(targets + (size_t)b * longest, p->targets + (size_t)row * p->T, (size_t)longest * sizeof *targets);
    }
    *cursor += B;
    *T = longest;
    return 0;
}
