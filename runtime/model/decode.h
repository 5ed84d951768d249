/* decode.h — incremental decoding with a key/value cache: one token at a time at position 0, 1, 2, ..., each step
 * costing one token's worth of work instead of a forward over the whole prefix. Greedy generation builds on it. */
#ifndef CIRCD_MODEL_DECODE_H
#define CIRCD_MODEL_DECODE_H

#include <stdint.h>

#include "model/model.h"

struct decoder {
    const struct llama_model *model;
    int max_len;   /* cache capacity in positions (<= max_seq) */
    int len;       /* positions filled so far */
    float *memory; /* one allocation in the model's backend memory holding everything below but logits */
    float *k_cache, *v_cache; /* [n_layers, max_len, n_kv_heads * head_dim], keys after RoPE */
    float *x, *ln, *q, *q_rot, *k, *k_rot, *v, *pattern, *z, *branch, *gate, *up, *hidden, *compute_logits, *rstd;
    int32_t *token;
    float *logits; /* [vocab] on the host: the last step's logits */
};

int decoder_init(struct decoder *dec, const struct llama_model *m, int max_len);
void decoder_free(struct decoder *dec);
/* Feeds `token` at position dec->len; dec->logits[vocab] then predicts the next token. */
int decoder_step(struct decoder *dec, int32_t token);
/* Greedy decoding: feeds the prompt, then appends `steps` argmax tokens to out (which receives only the new ids).
 * Stops early after emitting eos_id when eos_id >= 0; *n_out is the count written. */
int generate_greedy(const struct llama_model *m, const int32_t *prompt, int n_prompt, int steps, int eos_id,
                    int32_t *out, int *n_out);

#endif
