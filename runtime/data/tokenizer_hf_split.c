/* tokenizer_hf_split.c — pre-tokenization of tokenizer.json tokenizers without a regex engine: the Llama 3 and
 * GPT-2 split patterns matched by hand (alternatives tried in order, greedy, with the backtracking the patterns
 * need), Digits, the Metaspace split, and GPT-2's byte-to-unicode alphabet.
 *
 * Character classes (\p{L} letter, \p{N} number, \s white space) are exact for ASCII, Latin-1 (U+0080..U+00FF)
 * and the Unicode white space characters; General Punctuation (U+2000..U+206F), arrows, symbols and dingbats
 * (U+2190..U+27BF) and emoji (U+1F000..U+1FAFF) count as punctuation. Every other non-ASCII code point counts as
 * a letter (right for the letters of every script; wrong for non-ASCII digits, e.g. Arabic-Indic, and other
 * punctuation, which Hugging Face would split differently). Invalid UTF-8 bytes count as letters too.
 */
#include "data/tokenizer_hf_internal.h"

#include <string.h>

const char hf_llama3_pattern[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
                                 "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char hf_gpt2_pattern[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

int hf_byte_char(unsigned char b, char out[2])
{
    unsigned cp;
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) cp = b;
    else if (b <= 32) cp = 256u + b;
    else if (b <= 160) cp = 256u + 33u + (b - 127u);
    else cp = 256u + 33u + 34u; /* 173 */
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

int hf_char_byte(uint32_t cp)
{
    if ((cp >= 33 && cp <= 126) || (cp >= 161 && cp <= 172) || (cp >= 174 && cp <= 255)) return (int)cp;
    if (cp >= 256 && cp <= 288) return (int)cp - 256;
    if (cp >= 289 && cp <= 322) return (int)cp - 289 + 127;
    if (cp == 323) return 173;
    return -1;
}

size_t hf_utf8_next(const char *s, size_t len, uint32_t *cp)
{
    const unsigned char *u = (const unsigned char *)s;
    unsigned char c = u[0];
    size_t n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (n == 1) {
        *cp = c;
        return 1;
    }
    if (n == 0 || n > len) goto invalid;
    uint32_t v = c & (0x7F >> n);
    for (size_t k = 1; k < n; k++) {
        if ((u[k] & 0xC0) != 0x80) goto invalid;
        v = v << 6 | (u[k] & 0x3F);
    }
    *cp = v;
    return n;
invalid:
    *cp = 0x110000u + c;
    return 1;
}

enum char_class { CLASS_LETTER, CLASS_NUMBER, CLASS_SPACE, CLASS_OTHER };

static enum char_class classify(uint32_t cp)
{
    if (cp < 0x80) {
        if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') return CLASS_LETTER;
        if (cp >= '0' && cp <= '9') return CLASS_NUMBER;
        if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D)) return CLASS_SPACE;
        return CLASS_OTHER;
    }
    if (cp <= 0xFF) { /* Latin-1 */
        if (cp == 0x85 || cp == 0xA0) return CLASS_SPACE;
        if (cp == 0xAA || cp == 0xB5 || cp == 0xBA || (cp >= 0xC0 && cp != 0xD7 && cp != 0xF7)) return CLASS_LETTER;
        if (cp == 0xB2 || cp == 0xB3 || cp == 0xB9 || (cp >= 0xBC && cp <= 0xBE)) return CLASS_NUMBER;
        return CLASS_OTHER;
    }
    if (cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
        cp == 0x205F || cp == 0x3000)
        return CLASS_SPACE;
    if ((cp >= 0x2000 && cp <= 0x206F) || (cp >= 0x2190 && cp <= 0x27BF) || (cp >= 0x1F000 && cp <= 0x1FAFF))
        return CLASS_OTHER;
    return CLASS_LETTER;
}

/* The class of the character at s[i..len) and its byte length; past the end: CLASS_OTHER with length 0. */
static enum char_class class_at(const char *s, size_t len, size_t i, size_t *n, uint32_t *cp)
{
    if (i >= len) {
        *n = 0;
        *cp = 0;
        return CLASS_OTHER;
    }
    *n = hf_utf8_next(s + i, len - i, cp);
    return classify(*cp);
}

static int is_newline(uint32_t cp) { return cp == '\r' || cp == '\n'; }

/* End of the run of characters of class `want` starting at i (i itself when none). */
static size_t run_end(const char *s, size_t len, size_t i, enum char_class want)
{
    size_t n;
    uint32_t cp;
    while (i < len && class_at(s, len, i, &n, &cp) == want) i += n;
    return i;
}

static char lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c; }

/* 's 't 're 've 'm 'll 'd at i: the match length or 0. */
static size_t contraction(const char *s, size_t len, size_t i, int ignore_case)
{
    if (s[i] != '\'' || i + 1 >= len) return 0;
    char a = ignore_case ? lower(s[i + 1]) : s[i + 1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (i + 2 >= len) return 0;
    char b = ignore_case ? lower(s[i + 2]) : s[i + 2];
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
}

/* \s+(?!\S) then \s+ at i (a white space character): the end of the match. */
static size_t spaces_match(const char *s, size_t len, size_t i)
{
    size_t end = i, last = i, n;
    uint32_t cp;
    while (end < len && class_at(s, len, end, &n, &cp) == CLASS_SPACE) {
        last = end;
        end += n;
    }
    if (end == len || last == i) return end; /* (?!\S) holds at the end; else \s+ alone takes the run */
    return last;                             /* back off one character so that a space, not \S, follows */
}

/* One match of the Llama 3 pattern at i (i < len): its end. */
static size_t match_llama3(const char *s, size_t len, size_t i)
{
    size_t n0, n1, k;
    uint32_t c0, c1;
    enum char_class k0 = class_at(s, len, i, &n0, &c0);
    if ((k = contraction(s, len, i, 1))) return i + k;
    if (k0 == CLASS_LETTER) return run_end(s, len, i, CLASS_LETTER);
    if (k0 != CLASS_NUMBER && !is_newline(c0) && class_at(s, len, i + n0, &n1, &c1) == CLASS_LETTER)
        return run_end(s, len, i + n0, CLASS_LETTER);
    if (k0 == CLASS_NUMBER) {
        size_t end = i + n0;
        for (int count = 1; count < 3 && end < len && class_at(s, len, end, &n1, &c1) == CLASS_NUMBER; count++)
            end += n1;
        return end;
    }
    /* " ?[^\s\p{L}\p{N}]+[\r\n]*" */
    size_t start = i;
    if (c0 == ' ' && class_at(s, len, i + 1, &n1, &c1) == CLASS_OTHER && n1) start = i + 1;
    if (start > i || k0 == CLASS_OTHER) {
        size_t end = run_end(s, len, start, CLASS_OTHER);
        while (end < len && (s[end] == '\r' || s[end] == '\n')) end++;
        return end;
    }
    /* k0 == CLASS_SPACE: \s*[\r\n]+ ends after the last newline of the white space run, if it has one. */
    size_t end = i, after_newline = 0;
    while (end < len && class_at(s, len, end, &n1, &c1) == CLASS_SPACE) {
        end += n1;
        if (is_newline(c1)) after_newline = end;
    }
    if (after_newline) return after_newline;
    return spaces_match(s, len, i);
}

/* One match of the GPT-2 pattern at i: its end. */
static size_t match_gpt2(const char *s, size_t len, size_t i)
{
    size_t n0, n1, k;
    uint32_t c0, c1;
    enum char_class k0 = class_at(s, len, i, &n0, &c0);
    if ((k = contraction(s, len, i, 0))) return i + k;
    enum char_class after = k0;
    size_t start = i;
    if (c0 == ' ') {
        enum char_class k1 = class_at(s, len, i + 1, &n1, &c1);
        if (n1 && k1 != CLASS_SPACE) {
            after = k1;
            start = i + 1;
        }
    }
    if (after != CLASS_SPACE) return run_end(s, len, start, after);
    return spaces_match(s, len, i);
}

int hf_split_run(enum hf_split step, const char *text, size_t len, hf_emit_fn emit, void *ctx)
{
    size_t i = 0;
    int rc;
    while (i < len) {
        size_t end = i + 1, n;
        uint32_t cp;
        switch (step) {
        case HF_SPLIT_LLAMA3: end = match_llama3(text, len, i); break;
        case HF_SPLIT_GPT2: end = match_gpt2(text, len, i); break;
        case HF_SPLIT_METASPACE: /* a piece runs up to the next "▁" (E2 96 81) after its first character */
            end = i + hf_utf8_next(text + i, len - i, &cp);
            while (end < len && !(end + 3 <= len && !memcmp(text + end, "\xE2\x96\x81", 3))) end++;
            break;
        case HF_SPLIT_DIGITS:
        case HF_SPLIT_DIGITS_INDIVIDUAL: {
            int digit = class_at(text, len, i, &n, &cp) == CLASS_NUMBER;
            end = i + n;
            if (digit && step == HF_SPLIT_DIGITS_INDIVIDUAL) break;
            while (end < len) {
                int d = class_at(text, len, end, &n, &cp) == CLASS_NUMBER;
                if (d != digit) break;
                end += n;
            }
            break;
        }
        }
        if (end <= i) end = i + 1; /* cannot happen; never loop forever */
        if (end > len) end = len;
        if ((rc = emit(ctx, i, end - i))) return rc;
        i = end;
    }
    return 0;
}
