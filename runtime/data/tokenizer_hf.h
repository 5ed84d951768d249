/* tokenizer_hf.h — a Hugging Face fast-tokenizer file (tokenizer.json) of the two Llama families behind the
 * struct tokenizer interface of tokenizer.h:
 *
 *   Llama 2 / TinyLlama / SentencePiece conversions: model BPE with byte_fallback ("<0x0A>" tokens), normalizer
 *     Sequence[Prepend("▁"), Replace(" " -> "▁")] or the Metaspace pre-tokenizer (add_prefix_space or
 *     prepend_scheme, split), decoder Replace + ByteFallback + Fuse + Strip or Metaspace;
 *   Llama 3: model BPE with ignore_merges, pre-tokenizer Sequence[Split(the Llama 3 regex, Isolated),
 *     ByteLevel(use_regex false)], decoder ByteLevel. The regex is matched by hand (tokenizer_hf_split.c: exact
 *     for ASCII and Latin-1; most other non-ASCII characters count as letters). ByteLevel(use_regex true) with the
 *     GPT-2 pattern and Digits (SmolLM-style Llama checkpoints) work the same way.
 *
 * Merges are read as "a b" strings or as ["a", "b"] pairs; the merge of rank r is the r-th in the list, and BPE
 * applies the lowest rank first (leftmost on ties) within each pre-token, as Hugging Face does.
 *
 * Special ids: bos = the leading SpecialToken of the post_processor's TemplateProcessing "single" template, else
 * the added token "<s>" / "<|begin_of_text|>" / "<|startoftext|>"; eos = the added token "</s>" /
 * "<|end_of_text|>" / "<|endoftext|>"; pad = "<pad>" / "<|pad|>", else eos. Each is -1 when absent; sep is always
 * -1 (these tokenizers have no prompt/answer separator). tokenizer_files.h overrides them from
 * tokenizer_config.json. kind = TOKENIZER_HF_BPE, vocab_size = the largest id + 1 (model vocab and added tokens).
 *
 * Added tokens are never produced by encode: "<s>" in a text is encoded as its three characters. A character (or, in
 * byte-level files, a byte) without a token becomes byte-fallback tokens, else unk_token, else CIRCD_EINPUT. token_text is the
 * decoded text (" the", "\n" in byte-level), "<0x0A>" for a byte-fallback token, the content for added tokens.
 *
 * Errors are CIRCD_EINPUT naming the file and the JSON field, e.g.
 *   tokenizer.json: model.type: found "Unigram", expected "BPE"
 *   tokenizer.json:3:14: '}' expected near ']'          (malformed JSON: line:column from Jansson)
 */
#ifndef CIRCD_DATA_TOKENIZER_HF_H
#define CIRCD_DATA_TOKENIZER_HF_H

#include <stddef.h>

#include "data/tokenizer.h"

/* Loads path (a tokenizer.json). CIRCD_EIO when it cannot be read, CIRCD_EINPUT for what is malformed or not
 * supported, CIRCD_ENOMEM. On failure *t is zeroed. Free with tokenizer_free. */
int tokenizer_hf_load(struct tokenizer *t, const char *path);
/* The same from json[0..len); name is used in messages. */
int tokenizer_hf_load_buffer(struct tokenizer *t, const char *json, size_t len, const char *name);

#endif
