/* tokenizer_hf_bpe.c — the hash maps of a tokenizer.json tokenizer (model string -> id, id pair -> merge) and BPE
 * merging by merge rank, a transcription of Hugging Face tokenizers' word.rs merge_all: a min-heap of candidate
 * merges ordered by (rank, position), stale entries skipped when the pair at their position no longer merges into
 * the same id. O(n log n) in the length of a pre-token, so a whole unsplit Llama 2 text is fine. */
#include "data/tokenizer_hf_internal.h"

#include <stdlib.h>
#include <string.h>

#include "io/xxh64.h"
#include "util/error.h"

int hf_arena_add(struct hf_arena *a, const char *s, size_t len, size_t *offset)
{
    if (len + 1 > a->cap - a->len || !a->bytes) {
        size_t cap = a->cap ? a->cap : 4096;
        while (cap - a->len < len + 1) {
            if (cap > SIZE_MAX / 2) return err_set(CIRCD_ENOMEM, "tokenizer strings exceed the address space");
            cap *= 2;
        }
        char *bigger = realloc(a->bytes, cap);
        if (!bigger) return err_set(CIRCD_ENOMEM, "out of memory for %zu bytes of tokenizer strings", cap);
        a->bytes = bigger;
        a->cap = cap;
    }
    *offset = a->len;
    if (len) memcpy(a->bytes + a->len, s, len);
    a->bytes[a->len + len] = '\0';
    a->len += len + 1;
    return 0;
}

const char *hf_model_string(const struct hf_state *s, int32_t id) { return s->model.bytes + s->model_off[id]; }

static size_t table_size(size_t count)
{
    size_t n = 16;
    while (n < 2 * count) n *= 2;
    return n;
}

int hf_vocab_map_build(struct hf_state *s)
{
    size_t count = 0;
    for (int i = 0; i < s->n_ids; i++) count += s->model_len[i] >= 0;
    size_t n = table_size(count);
    s->vocab.slots = xmalloc(n * sizeof *s->vocab.slots);
    if (!s->vocab.slots) return CIRCD_ENOMEM;
    memset(s->vocab.slots, 0xff, n * sizeof *s->vocab.slots); /* -1 everywhere */
    s->vocab.mask = n - 1;
    for (int32_t id = 0; id < s->n_ids; id++) {
        if (s->model_len[id] < 0) continue;
        size_t at = (size_t)xxh64(hf_model_string(s, id), (size_t)s->model_len[id], 0) & s->vocab.mask;
        while (s->vocab.slots[at] >= 0) at = (at + 1) & s->vocab.mask;
        s->vocab.slots[at] = id;
    }
    return 0;
}

int32_t hf_vocab_find(const struct hf_state *s, const char *key, size_t len)
{
    size_t at = (size_t)xxh64(key, len, 0) & s->vocab.mask;
    for (;;) {
        int32_t id = s->vocab.slots[at];
        if (id < 0) return -1;
        if ((size_t)s->model_len[id] == len && !memcmp(hf_model_string(s, id), key, len)) return id;
        at = (at + 1) & s->vocab.mask;
    }
}

static uint64_t pair_key(int32_t left, int32_t right) { return (uint64_t)(uint32_t)left << 32 | (uint32_t)right; }

static size_t pair_hash(uint64_t key)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdULL;
    key ^= key >> 33;
    key *= 0xc4ceb9fe1a85ec53ULL;
    key ^= key >> 33;
    return (size_t)key;
}

int hf_merge_map_init(struct hf_merge_map *m, size_t count)
{
    size_t n = table_size(count);
    m->keys = xmalloc(n * sizeof *m->keys);
    m->ranks = xmalloc(n * sizeof *m->ranks);
    m->merged = xmalloc(n * sizeof *m->merged);
    if (!m->keys || !m->ranks || !m->merged) {
        hf_merge_map_free(m);
        return CIRCD_ENOMEM;
    }
    memset(m->keys, 0xff, n * sizeof *m->keys);
    m->mask = n - 1;
    return 0;
}

/* A pair listed twice keeps the later rank, as Hugging Face's HashMap collect does. */
void hf_merge_map_put(struct hf_merge_map *m, int32_t left, int32_t right, int32_t rank, int32_t merged)
{
    uint64_t key = pair_key(left, right);
    size_t at = pair_hash(key) & m->mask;
    while (m->keys[at] != UINT64_MAX && m->keys[at] != key) at = (at + 1) & m->mask;
    m->keys[at] = key;
    m->ranks[at] = rank;
    m->merged[at] = merged;
}

int hf_merge_find(const struct hf_merge_map *m, int32_t left, int32_t right, int32_t *rank, int32_t *merged)
{
    if (!m->keys) return 0;
    uint64_t key = pair_key(left, right);
    size_t at = pair_hash(key) & m->mask;
    for (;;) {
        if (m->keys[at] == UINT64_MAX) return 0;
        if (m->keys[at] == key) {
            *rank = m->ranks[at];
            *merged = m->merged[at];
            return 1;
        }
        at = (at + 1) & m->mask;
    }
}

void hf_merge_map_free(struct hf_merge_map *m)
{
    free(m->keys);
    free(m->ranks);
    free(m->merged);
    memset(m, 0, sizeof *m);
}

struct hf_merge_entry {
    int32_t rank, merged;
    size_t pos; /* index of the left symbol */
};

int hf_work_init(struct hf_work *w, size_t capacity)
{
    memset(w, 0, sizeof *w);
    if (capacity == 0) capacity = 1;
    w->capacity = capacity;
    w->heap_cap = 3 * capacity; /* n - 1 initial candidates + at most 2 per merge */
    w->ids = xmalloc(capacity * sizeof *w->ids);
    w->prev = xmalloc(capacity * sizeof *w->prev);
    w->next = xmalloc(capacity * sizeof *w->next);
    w->dead = xmalloc(capacity);
    w->heap = xmalloc(w->heap_cap * sizeof *w->heap);
    if (!w->ids || !w->prev || !w->next || !w->dead || !w->heap) {
        hf_work_free(w);
        return CIRCD_ENOMEM;
    }
    return 0;
}

void hf_work_free(struct hf_work *w)
{
    free(w->ids);
    free(w->prev);
    free(w->next);
    free(w->dead);
    free(w->heap);
    memset(w, 0, sizeof *w);
}

static int entry_before(const struct hf_merge_entry *a, const struct hf_merge_entry *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(struct hf_merge_entry *heap, size_t *n, struct hf_merge_entry e)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!entry_before(&e, &heap[parent])) break;
        heap[i] = heap[parent];
        i = parent;
    }
    heap[i] = e;
}

static struct hf_merge_entry heap_pop(struct hf_merge_entry *heap, size_t *n)
{
    struct hf_merge_entry top = heap[0], last = heap[--*n];
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= *n) break;
        if (child + 1 < *n && entry_before(&heap[child + 1], &heap[child])) child++;
        if (!entry_before(&heap[child], &last)) break;
        heap[i] = heap[child];
        i = child;
    }
    if (*n) heap[i] = last;
    return top;
}

/* Pushes the merge of the symbols at left and right (if any) onto the heap. */
static void push_candidate(const struct hf_state *s, struct hf_work *w, size_t *n_heap, size_t left, size_t right)
{
    struct hf_merge_entry e;
    if (hf_merge_find(&s->merges, w->ids[left], w->ids[right], &e.rank, &e.merged)) {
        e.pos = left;
        if (*n_heap < w->heap_cap) heap_push(w->heap, n_heap, e);
    }
}

size_t hf_bpe_merge(const struct hf_state *s, struct hf_work *w, size_t n)
{
    if (n < 2) return n;
    size_t n_heap = 0;
    for (size_t i = 0; i < n; i++) {
        w->prev[i] = (int32_t)i - 1;
        w->next[i] = i + 1 < n ? (int32_t)(i + 1) : -1;
        w->dead[i] = 0;
    }
    for (size_t i = 0; i + 1 < n; i++) push_candidate(s, w, &n_heap, i, i + 1);
    while (n_heap) {
        struct hf_merge_entry top = heap_pop(w->heap, &n_heap);
        if (w->dead[top.pos] || w->next[top.pos] < 0) continue;
        size_t right = (size_t)w->next[top.pos];
        int32_t rank, merged;
        if (!hf_merge_find(&s->merges, w->ids[top.pos], w->ids[right], &rank, &merged) || merged != top.merged)
            continue; /* stale: this position's pair changed */
        w->ids[top.pos] = top.merged;
        w->dead[right] = 1;
        w->next[top.pos] = w->next[right];
        if (w->next[right] >= 0) w->prev[w->next[right]] = (int32_t)top.pos;
        if (w->prev[top.pos] >= 0) push_candidate(s, w, &n_heap, (size_t)w->prev[top.pos], top.pos);
        if (w->next[top.pos] >= 0) push_candidate(s, w, &n_heap, top.pos, (size_t)w->next[top.pos]);
    }
    size_t out = 0;
    for (size_t i = 0; i < n; i++)
        if (!w->dead[i]) w->ids[out++] = w->ids[i];
    return out;
}
