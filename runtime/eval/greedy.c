/* greedy.c — implementation of greedy.h. */
#include "eval/greedy.h"

#include <stdlib.h>
#include <string.h>

#include "util/error.h"

int greedy_decode_batch(struct llama_model *m, const int32_t *prompts, int B, int L, int max_new, int stop_id,
                        int32_t *out, int *out_len)
{
    int V = m->config.vocab_size, T_max = L + max_new;
    if (B <= 0 || L <= 0 || max_new < 0 || T_max > m->config.max_seq)
        return err_set(CIRCD_EINPUT, "greedy decoding of [%d, %d] prompts + %d tokens exceeds max_seq %d", B, L,
                       max_new, m->config.max_seq);
    int32_t *seq = malloc((size_t)B * T_max * sizeof *seq);
    int32_t *window = malloc((size_t)B * T_max * sizeof *window);
    char *done = calloc((size_t)B, 1);
    if (!seq || !window || !done) { free(seq); free(window); free(done); return err_set(CIRCD_ENOMEM, "oom"); }
    for (int b = 0; b < B; b++) {
        memcpy(seq + (size_t)b * T_max, prompts + (size_t)b * L, (size_t)L * sizeof *seq);
        out_len[b] = 0;
    }
    int rc = CIRCD_OK, active = B;
    for (int i = 0; i < max_new && active > 0; i++) {
        int T = L + i;
        for (int b = 0; b < B; b++) memcpy(window + (size_t)b * T, seq + (size_t)b * T_max, (size_t)T * sizeof *seq);
        if ((rc = model_forward(m, window, NULL, B, T))) break;
        const float *logits = model_logits(m);
        if (!logits) { rc = CIRCD_EIO; break; }
        for (int b = 0; b < B; b++) {
            const float *row = logits + ((size_t)b * T + T - 1) * V;
            int32_t best = 0;
            for (int v = 1; v < V; v++)
                if (row[v] > row[best]) best = v;
            seq[(size_t)b * T_max + T] = best; /* finished rows keep decoding; their output is frozen */
            if (done[b]) continue;
            out[(size_t)b * max_new + out_len[b]++] = best;
            if (best == stop_id) { done[b] = 1; active--; }
        }
    }
    free(seq);
    free(window);
    free(done);
    return rc;
}
