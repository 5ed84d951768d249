/* arith_format.h — the text of an arithmetic example: the prompt (template with {x} and {y} replaced), the answer
 * (MIB-style most significant digit first, or reversed digits as in Lee et al. 2023 "Teaching Arithmetic to Small
 * Transformers"), zero-padded operands, and a chain-of-thought trace, plus the parser that reads a generated answer.
 *
 * Chain of thought (used to train the teacher so that it can generate traces for the CoT-distillation baseline).
 * Columns run from the ones place up to the highest digit of the longer operand (for subtraction, of the minuend),
 * separated by "; ", then " | " and the final answer (in the format's digit order):
 *   addition, column digits x of a and y of b, carry-in c:   "x+y=s" or, when c = 1, "x+y+1=s", where s is the
 *       column sum in decimal (0..19); " c1" follows when the column carries (s >= 10).
 *       25+17 -> "5+7=12 c1; 2+1+1=4 | 42"        99+1 -> "9+1=10 c1; 9+0+1=10 c1 | 100"
 *   subtraction a - b with a >= b, borrow-in c: t = x - c; when t >= y: "x-y=d" (c = 0) or "x-y-1=d" (c = 1);
 *       when t < y the column borrows ten: "1x-y=d b1" or "1x-y-1=d b1", with d = 10 + t - y written as one digit.
 *       42-17 -> "12-7=5 b1; 4-1-1=2 | 25"        100-99 -> "10-9=1 b1; 10-9-1=0 b1; 1-0-1=0 | 1"
 *       (the "1x" of a borrowing column is the digit x with the borrowed ten in front: 2 -> 12, 0 -> 10)
 *   a < b (only with ARITH_SUB_SIGNED): the trace of b - a, and the final answer gets a leading '-'.
 * A missing digit of the shorter operand is 0. Zero padding does not change the trace (it has the same columns).
 */
#ifndef CIRCD_DATA_ARITH_FORMAT_H
#define CIRCD_DATA_ARITH_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "data/arith.h"

#define ARITH_TEXT_MAX 512  /* room for any prompt (template <= ARITH_TEMPLATE_MAX) or answer / trace */

enum arith_answer_order { ARITH_ANSWER_MSD_FIRST = 0, ARITH_ANSWER_REVERSED = 1 };

struct arith_format {
    enum arith_answer_order answer_order;
    int pad_operands;      /* 0 = operands as written; n > 0 = zero-padded to at least n digits in the prompt */
    int pad_answer;        /* 1 (with pad_operands = n) = direct answers zero-padded to a fixed width: n + 1 digits
                            * for addition, n for subtraction, so answer digit j always sits at the same distance
                            * from operand digit j (what RoPE's relative positions make learnable) */
    int chain_of_thought;  /* 1 = the answer is the trace above (its final answer in answer_order) */
    int separator;         /* 1 = a separator token between prompt and answer (token level, see arith_batch.h) */
    int bos;               /* 1 = every sequence starts with the BOS token */
};

/* MIB-style: most significant digit first, no padding, no trace, no separator, BOS on. */
void arith_format_default(struct arith_format *f);
/* CIRCD_EINPUT for an unknown answer order or pad_operands outside [0, ARITH_MAX_DIGITS]. */
int arith_format_check(const struct arith_format *f);
/* The format as JSON beside a trained model (circd_format.json: answer_order "msd_first" / "reversed",
 * pad_operands, pad_answer, separator, bos), written atomically; reading checks every field and names the file and
 * field (CIRCD_EINPUT), CIRCD_EIO when the file cannot be read. chain_of_thought is not stored (always 0). */
int arith_format_save(const struct arith_format *f, const char *path);
int arith_format_load(struct arith_format *f, const char *path);

/* Each writer fills buf (cap bytes with the NUL) and sets *len (may be NULL). CIRCD_EINPUT when the text does not
 * fit or the template is bad; buf then holds "". */
int arith_prompt_text(const char *template_text, const struct arith_problem *p, const struct arith_format *f,
                      char *buf, size_t cap, size_t *len);
/* The answer as the model should produce it (no end token): "42", reversed "24", or the trace. */
/* The fixed answer width of `op` under f (0 = unpadded): see pad_answer. */
int arith_answer_width(const struct arith_format *f, enum arith_op op);
int arith_answer_text(const struct arith_problem *p, const struct arith_format *f, char *buf, size_t cap,
                      size_t *len);
/* Only the final answer in the format's digit order ("-" first when negative), whatever chain_of_thought says. */
int arith_final_answer_text(int64_t answer, enum arith_answer_order order, char *buf, size_t cap, size_t *len);
/* The chain-of-thought trace of p (final answer in `order`). */
int arith_cot_text(const struct arith_problem *p, enum arith_answer_order order, char *buf, size_t cap,
                   size_t *len);

/* The final-answer part of generated answer text: with chain_of_thought the text after the last '|', else the
 * whole text; leading and trailing spaces trimmed. Points into text; *len its length. CIRCD_EINPUT if a trace has
 * no '|'. */
int arith_answer_part(const char *text, const struct arith_format *f, const char **part, size_t *len);
/* Parses generated answer text into a value: the answer part must be an optional '-' then 1..18 digits (reversed
 * order read back). CIRCD_EINPUT with what was found otherwise. */
int arith_parse_answer(const char *text, const struct arith_format *f, int64_t *value);
/* Exact match: 1 when the answer part equals the canonical final answer of p in the format's order (so "042"
 * never matches 42 and a reversed answer is compared reversed back), else 0. */
int arith_answer_matches(const char *text, const struct arith_format *f, const struct arith_problem *p);

#endif
