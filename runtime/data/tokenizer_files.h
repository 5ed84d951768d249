/* tokenizer_files.h — the tokenizer that belongs to a model directory, and circd's own file for the arithmetic
 * tokenizers.
 *
 * tokenizer_open_model_dir looks in the directory, in this order, and opens the first it finds:
 *   circd_tokenizer.json   an arithmetic tokenizer that circd trained with (written by tokenizer_arith_save);
 *   tokenizer.json         a Hugging Face fast tokenizer (tokenizer_hf.h); bos / eos / pad are then taken from
 *                          tokenizer_config.json's bos_token / eos_token / pad_token where it names them (a
 *                          name that is no token is CIRCD_EINPUT; a pad that was eos follows a new eos);
 *   tokenizer.bin, tok*.bin  a llama2.c tokenizer (tokenizer_llama2c.h; of several tok*.bin the first by name).
 *
 * circd_tokenizer.json, version 1:
 *   {"format": "circd_tokenizer", "version": 1, "kind": "digits",        (or "number_chunks")
 *    "words": ["A", "How", ...],                                         (the sets tokenizer_arith_create builds
 *    "symbols": ["+", ",", ...],                                          the vocabulary from, each sorted)
 *    "vocab": ["<pad>", "<bos>", "<eos>", "<sep>", " ", "0", ...]}       (the full token list, id order)
 * The loader rebuilds the tokenizer from kind, words and symbols and checks that it gives exactly "vocab", so a
 * file never silently maps to other ids.
 *
 * The llama2.c tokenizer behind struct tokenizer (kind TOKENIZER_LLAMA2C): encode = llama2.c's encode without BOS
 * (the dummy-prefix space included); decode writes BOS / EOS as "<s>" / "</s>", byte tokens as their raw byte,
 * and drops the space at the very start of the text (the dummy prefix, as Hugging Face's Llama 2 decoder does),
 * so decode(encode(text)) == text; bos 1, eos 2, pad = eos, sep -1.
 */
#ifndef CIRCD_DATA_TOKENIZER_FILES_H
#define CIRCD_DATA_TOKENIZER_FILES_H

#include "data/tokenizer.h"

/* Opens the tokenizer of model directory dir into *out (free with tokenizer_free). CIRCD_EINPUT listing what was
 * looked for when there is none, or the loader's error (naming the file) when the file found is malformed;
 * CIRCD_EIO, CIRCD_ENOMEM. On failure *out is zeroed. */
int tokenizer_open_model_dir(const char *dir, struct tokenizer *out);

/* Writes an arithmetic tokenizer (digits / number_chunks) as circd_tokenizer.json to path, atomically
 * (io/atomic_file.h). CIRCD_EINPUT for another kind of tokenizer, CIRCD_EIO, CIRCD_ENOMEM. */
int tokenizer_arith_save(const struct tokenizer *t, const char *path);
/* Reads a circd_tokenizer.json. CIRCD_EINPUT naming the file and field for anything malformed, an unknown version
 * or a vocabulary that the word and symbol sets do not rebuild; CIRCD_EIO. On failure *t is zeroed. */
int tokenizer_arith_load(struct tokenizer *t, const char *path);

/* A llama2.c tokenizer.bin behind struct tokenizer (vocab_size as tokenizer_llama2c_load). On failure *t is
 * zeroed. */
int tokenizer_llama2c_open(struct tokenizer *t, const char *path, int vocab_size);

#endif
