/* stage_attention.c — the attention patterns of the top circuit heads, recorded by the report stage: for the first
 * few problems of the ID test set, the pattern (blocks.L.attn.hook_pattern) of the ATTENTION_HEADS heads with the
 * largest |mean signed AtP score| of the model's own node scores — the teacher's (/atp/teacher/nodes), the student
 * base's (/atp/base/nodes), and, with the student base's heads (same architecture), the first seed of every
 * distillation method — into /attention/<row>/patterns [k, P, T, T] with the heads, prompts, tokens and seed as
 * attributes. A row whose model or node scores are missing is skipped with a line on stderr. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sched/reduce.h"
#include "stages/stages.h"
#include "util/error.h"

#define ATTENTION_HEADS 4
#define ATTENTION_PROMPTS 3
#define ATTENTION_TOKEN_SEPARATOR "\x1f" /* U+001F between the tokens of one prompt; prompts are lines */

/* The prompts, tokenized once: tokens [n, T] right-padded with <pad> (id 0), lengths[n] real tokens. */
struct attention_prompts {
    int n, T;
    int32_t tokens[ATTENTION_PROMPTS * ARITH_SEQ_MAX];
    int lengths[ATTENTION_PROMPTS];
    char *texts, *token_texts; /* newline-separated prompts; per prompt its token strings joined by U+001F */
};

/* The heads chosen for a row: layer and head of each, best first. */
struct attention_heads {
    int k, layer[ATTENTION_HEADS], head[ATTENTION_HEADS];
    char names[ATTENTION_HEADS * 48];
};

/* Appends text to the growing string *buf (NUL-terminated, *len bytes before the NUL). */
static int append(char **buf, size_t *len, size_t *cap, const char *text)
{
    size_t n = strlen(text);
    if (*len + n + 1 > *cap) {
        size_t want = (*len + n + 1) * 2;
        char *grown = realloc(*buf, want);
        if (!grown) return err_set(CIRCD_ENOMEM, "attention: out of memory for the prompt texts");
        *buf = grown;
        *cap = want;
    }
    memcpy(*buf + *len, text, n + 1);
    *len += n;
    return CIRCD_OK;
}

static void prompts_free(struct attention_prompts *p)
{
    free(p->texts);
    free(p->token_texts);
    p->texts = p->token_texts = NULL;
}

static int prompts_build(struct experiment *x, struct attention_prompts *p)
{
    const struct arith_dataset *set = &x->splits.id_test;
    size_t texts_len = 0, texts_cap = 0, tokens_len = 0, tokens_cap = 0;
    int rc = CIRCD_OK;
    memset(p, 0, sizeof *p);
    p->n = set->count < ATTENTION_PROMPTS ? (int)set->count : ATTENTION_PROMPTS;
    static struct arith_encoded enc[ATTENTION_PROMPTS]; /* 2 KiB each: off the stack */
    for (int i = 0; i < p->n && !rc; i++) {
        struct arith_item item;
        char text[ARITH_TEXT_MAX];
        rc = arith_dataset_item(set, (size_t)i, -1, &item);
        if (!rc) rc = arith_encode(&x->tok, &x->format, &item, &enc[i]);
        if (!rc) rc = arith_prompt_text(item.template_text, &item.problem, &x->format, text, sizeof text, NULL);
        if (!rc) rc = append(&p->texts, &texts_len, &texts_cap, text);
        if (!rc) rc = append(&p->texts, &texts_len, &texts_cap, "\n");
        for (int t = 0; t < enc[i].prompt_len && !rc; t++) {
            const char *tt = tokenizer_token_text(&x->tok, enc[i].ids[t]);
            if (t) rc = append(&p->token_texts, &tokens_len, &tokens_cap, ATTENTION_TOKEN_SEPARATOR);
            for (const char *c = tt ? tt : "?"; *c && !rc; c++) /* a newline inside a token would split the list */
                rc = append(&p->token_texts, &tokens_len, &tokens_cap, *c == '\n' ? "\\n" : (char[2]){*c, 0});
        }
        if (!rc) rc = append(&p->token_texts, &tokens_len, &tokens_cap, "\n");
        if (!rc) {
            p->lengths[i] = enc[i].prompt_len;
            if (enc[i].prompt_len > p->T) p->T = enc[i].prompt_len;
        }
    }
    if (!rc && !p->n) rc = err_set(CIRCD_EINPUT, "attention: the ID test set is empty");
    for (int i = 0; i < p->n && !rc; i++)
        for (int t = 0; t < p->T; t++) p->tokens[i * p->T + t] = t < p->lengths[i] ? enc[i].ids[t] : 0;
    if (rc) prompts_free(p);
    return rc;
}

/* The top heads by |mean signed score| of /atp/<row>/nodes (MLP nodes skipped). 1 (nothing chosen, a line on
 * stderr) when the scores are missing; CIRCD_OK; or an error code. */
static int top_heads(struct experiment *x, const char *row, struct attention_heads *out)
{
    char path[128];
    snprintf(path, sizeof path, "/atp/%s/nodes", row);
    memset(out, 0, sizeof *out);
    if (!results_exists(&x->results, path)) {
        if (x->rank == 0) fprintf(stderr, "[report] attention: no %s; heads of %s skipped\n", path, row);
        return 1;
    }
    int ndim = 0;
    uint64_t dims[4] = {0};
    results_read_f32(&x->results, path, NULL, 0, &ndim, dims); /* with no room: only the shape */
    if (ndim != 2 || dims[1] != 2 || dims[0] == 0)
        return err_set(CIRCD_EINPUT, "%s: expected [nodes, 2] scores", path);
    size_t n = (size_t)dims[0], cap = n * 48 + 64;
    float *scores = xmalloc(n * 2 * sizeof *scores);
    char *names = xmalloc(cap);
    int rc = scores && names ? CIRCD_OK : CIRCD_ENOMEM;
    if (!rc) rc = results_read_f32(&x->results, path, scores, n * 2, &ndim, dims);
    if (!rc) rc = results_get_attr_str(&x->results, path, "nodes", names, cap);
    int *layer = xmalloc(n * sizeof *layer), *head = xmalloc(n * sizeof *head);
    if (!rc && (!layer || !head)) rc = CIRCD_ENOMEM;
    char *line = names;
    for (size_t i = 0; i < n && !rc; i++) { /* -1: an MLP (or any other) node */
        if (!line || sscanf(line, "blocks.%d.attn.hook_z[%d]", &layer[i], &head[i]) != 2) layer[i] = head[i] = -1;
        line = line ? strchr(line, '\n') : NULL;
        if (line) line++;
    }
    while (!rc && out->k < ATTENTION_HEADS) {
        size_t best = n;
        for (size_t i = 0; i < n; i++) /* ties: the earlier node */
            if (layer[i] >= 0 && !isnan(scores[2 * i]) &&
                (best == n || fabsf(scores[2 * i]) > fabsf(scores[2 * best])))
                best = i;
        if (best == n) break;
        out->layer[out->k] = layer[best];
        out->head[out->k++] = head[best];
        layer[best] = -1;
    }
    if (!rc && !out->k) rc = err_set(CIRCD_EINPUT, "%s: no attention head among the nodes", path);
    for (int i = 0; i < out->k && !rc; i++) {
        size_t len = strlen(out->names);
        snprintf(out->names + len, sizeof out->names - len, "blocks.%d.attn.hook_pattern[%d]\n", out->layer[i],
                 out->head[i]);
    }
    free(scores);
    free(names);
    free(layer);
    free(head);
    return rc;
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* The patterns [k, P, T, T] of the chosen heads in m (zero outside each prompt's own tokens). */
static int head_patterns(struct llama_model *m, const struct attention_prompts *p, const struct attention_heads *h,
                         float *patterns)
{
    const struct llama_config *c = &m->config;
    for (int i = 0; i < h->k; i++)
        if (h->layer[i] >= c->n_layers || h->head[i] >= c->n_heads)
            return err_set(CIRCD_EINPUT, "attention: head %d of layer %d is not in a model of %d layers x %d heads",
                           h->head[i], h->layer[i], c->n_layers, c->n_heads);
    if (p->T > c->max_seq)
        return err_set(CIRCD_EINPUT, "attention: prompts of %d tokens, max_seq is %d", p->T, c->max_seq);
    size_t per_layer = (size_t)p->n * c->n_heads * p->T * p->T;
    float *cache = xmalloc((size_t)h->k * per_layer * sizeof *cache);
    if (!cache) return CIRCD_ENOMEM;
    int rc = CIRCD_OK;
    model_hooks_clear(m);
    for (int i = 0; i < h->k && !rc; i++) {
        struct hook_request r = {{HOOK_ATTN_PATTERN, h->layer[i]}, HOOK_CACHE, cache + (size_t)i * per_layer, -1, -1};
        rc = model_hook_add(m, &r);
    }
    if (!rc) rc = model_forward(m, p->tokens, NULL, p->n, p->T);
    model_hooks_clear(m);
    size_t TT = (size_t)p->T * p->T;
    for (int i = 0; i < h->k && !rc; i++)
        for (int b = 0; b < p->n; b++) {
            const float *src = cache + (size_t)i * per_layer + ((size_t)b * c->n_heads + h->head[i]) * TT;
            float *dst = patterns + ((size_t)i * p->n + b) * TT;
            for (int q = 0; q < p->T; q++)
                for (int k = 0; k < p->T; k++)
                    dst[q * p->T + k] = q < p->lengths[b] && k < p->lengths[b] ? src[q * p->T + k] : 0.0f;
        }
    free(cache);
    return rc;
}

/* One row: the model in dir (skipped with a line on stderr when it is not there) with the heads h. */
static int attention_row(struct experiment *x, const char *row, const char *dir, const struct attention_prompts *p,
                         const struct attention_heads *h, int seed)
{
    char path[4300];
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (!file_exists(path)) {
        if (x->rank == 0) fprintf(stderr, "[report] attention: no model in %s; row %s skipped\n", dir, row);
        return CIRCD_OK;
    }
    struct llama_model m;
    int rc = model_load_hf(&m, dir);
    if (rc) return reduce_agree(rc, x->comm);
    float *patterns = xmalloc((size_t)h->k * p->n * p->T * p->T * sizeof *patterns);
    if (!patterns) rc = CIRCD_ENOMEM;
    else if (m.config.vocab_size != x->tok.vocab_size)
        rc = err_set(CIRCD_EINPUT, "attention: %s has vocab_size %d, the experiment's tokenizer %d tokens", dir,
                     m.config.vocab_size, x->tok.vocab_size);
    if (!rc) rc = head_patterns(&m, p, h, patterns);
    model_free(&m);
    rc = reduce_agree(rc, x->comm);
    snprintf(path, sizeof path, "/attention/%s/patterns", row);
    uint64_t dims[4] = {(uint64_t)h->k, (uint64_t)p->n, (uint64_t)p->T, (uint64_t)p->T};
    if (!rc) rc = results_write_f32(&x->results, path, 4, dims, patterns);
    free(patterns);
    if (!rc) rc = results_set_attr_str(&x->results, path, "heads", h->names);
    if (!rc) rc = results_set_attr_str(&x->results, path, "prompts", p->texts);
    if (!rc) rc = results_set_attr_str(&x->results, path, "tokens", p->token_texts);
    if (!rc) rc = results_set_attr_str(&x->results, path, "token_separator", "U+001F");
    if (!rc) rc = results_set_attr_i64(&x->results, path, "seed", seed);
    if (!rc) rc = results_set_attr_str(&x->results, path, "model", dir);
    if (!rc) rc = results_set_attr_str(&x->results, path, "layout", "[head, prompt, query position, key position]; "
                                       "zero outside each prompt's tokens (prompts right-padded to the longest)");
    if (!rc && x->rank == 0) fprintf(stderr, "[report] attention patterns of %s: %d heads on %d prompts\n", row, h->k,
                                     p->n);
    return rc;
}

int stage_attention(struct experiment *x)
{
    struct attention_prompts *p = xmalloc(sizeof *p);
    if (!p) return CIRCD_ENOMEM;
    int rc = prompts_build(x, p), seed = x->spec->seeds.items[0];
    if (rc) { free(p); return rc; }
    char dir[4200];
    struct attention_heads teacher, base;
    int have = top_heads(x, "teacher", &teacher);
    if (have == CIRCD_OK) {
        role_model_dir(x, ROLE_TEACHER, dir, sizeof dir);
        rc = attention_row(x, role_row(ROLE_TEACHER), dir, p, &teacher, seed);
    } else if (have != 1) rc = have;
    have = rc ? rc : top_heads(x, "base", &base);
    if (!rc && have == CIRCD_OK) {
        role_model_dir(x, ROLE_STUDENT_BASE, dir, sizeof dir);
        rc = attention_row(x, role_row(ROLE_STUDENT_BASE), dir, p, &base, seed);
        for (int m = 0; m < x->spec->distill.n_methods && !rc; m++) {
            snprintf(dir, sizeof dir, "%s/models/%s-%d", x->output, x->spec->distill.methods[m].name, seed);
            rc = attention_row(x, x->spec->distill.methods[m].name, dir, p, &base, seed);
        }
    } else if (!rc && have != 1) rc = have;
    prompts_free(p);
    free(p);
    return rc;
}
