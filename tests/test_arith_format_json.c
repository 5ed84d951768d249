/* test_arith_format_json.c — circd_format.json: round trips of every field combination, and each malformed file
 * refused naming the file and field (the target untouched). */
#include <stdio.h>
#include <string.h>

#include "data/arith_format.h"
#include "testing.h"
#include "util/error.h"

static const char *write_text(const char *text)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/format.json", testing_tmpdir());
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) { fputs(text, f); fclose(f); }
    return path;
}

static void expect_error(const char *text, int code, const char *want)
{
    struct arith_format f;
    arith_format_default(&f);
    f.pad_operands = 3;
    struct arith_format before = f;
    CHECK(arith_format_load(&f, write_text(text)) == code);
    CHECK(memcmp(&f, &before, sizeof f) == 0);
    if (!strstr(err_msg(), want)) fprintf(stderr, "message \"%s\" lacks \"%s\"\n", err_msg(), want);
    CHECK(strstr(err_msg(), want) != NULL && strstr(err_msg(), "format.json") != NULL);
}

int main(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/circd_format.json", testing_tmpdir());
    for (int order = 0; order < 2; order++)
        for (int pad = 0; pad <= 5; pad += 5)
            for (int flags = 0; flags < 8; flags++) {
                struct arith_format f, g;
                arith_format_default(&f);
                f.answer_order = (enum arith_answer_order)order;
                f.pad_operands = pad;
                f.pad_answer = pad && (flags & 1);
                f.separator = (flags >> 1) & 1;
                f.bos = (flags >> 2) & 1;
                CHECK(arith_format_save(&f, path) == 0);
                memset(&g, 0x55, sizeof g);
                CHECK(arith_format_load(&g, path) == 0);
                CHECK(g.answer_order == f.answer_order && g.pad_operands == f.pad_operands &&
                      g.pad_answer == f.pad_answer && g.separator == f.separator && g.bos == f.bos &&
                      g.chain_of_thought == 0);
            }
    const char *ok = "\"pad_operands\": 5, \"pad_answer\": true, \"separator\": false, \"bos\": true";
    char text[512];
    snprintf(text, sizeof text, "{\"answer_order\": \"backwards\", %s}", ok);
    expect_error(text, CIRCD_EINPUT, "answer_order: expected");
    expect_error("{\"answer_order\": \"msd_first\", \"pad_operands\": 99, \"pad_answer\": false, \"separator\": false, "
                 "\"bos\": true}", CIRCD_EINPUT, "pad_operands: expected an integer in [0, ");
    expect_error("{\"answer_order\": \"msd_first\", \"pad_operands\": 0, \"pad_answer\": 1, \"separator\": false, "
                 "\"bos\": true}", CIRCD_EINPUT, "pad_answer: missing or not true/false");
    snprintf(text, sizeof text, "{\"answer_order\": \"msd_first\", %s, \"cot\": true}", ok);
    expect_error(text, CIRCD_EINPUT, "cot: unknown key");
    expect_error("{\"answer_order\": \"msd_first\",\n \"pad_operands\": }", CIRCD_EINPUT, "format.json:2:");
    expect_error("[1, 2]", CIRCD_EINPUT, "expected a JSON object");
    struct arith_format f;
    CHECK(arith_format_load(&f, "/nonexistent/circd_format.json") == CIRCD_EIO);
    return testing_finish();
}
