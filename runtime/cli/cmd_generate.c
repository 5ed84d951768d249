/* cmd_generate.c — `circd generate`: greedy decoding with a KV cache from a Hugging Face checkpoint; prints the
 * new token ids and, with a llama2.c tokenizer, the decoded text. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/standalone.h"
#include "data/tokenizer_llama2c.h"
#include "model/decode.h"
#include "model/model.h"
#include "util/error.h"

/* "1,403,407" -> ids; CIRCD_EINPUT naming the bad element. */
static int parse_ids(const char *text, int32_t **ids, int *n)
{
    int cap = 16;
    *n = 0;
    *ids = malloc((size_t)cap * sizeof **ids);
    if (!*ids) return err_set(CIRCD_ENOMEM, "out of memory");
    const char *p = text;
    while (*p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > 0x7fffffff || (*end && *end != ','))
            return err_set(CIRCD_EINPUT, "--prompt-ids: element %d of \"%s\" is not a non-negative integer", *n + 1,
                           text);
        if (*n == cap) {
            int32_t *grown = realloc(*ids, (size_t)(cap *= 2) * sizeof **ids);
            if (!grown) return err_set(CIRCD_ENOMEM, "out of memory");
            *ids = grown;
        }
        (*ids)[(*n)++] = (int32_t)v;
        p = *end ? end + 1 : end;
        if (*end == ',' && !*p) return err_set(CIRCD_EINPUT, "--prompt-ids: trailing comma in \"%s\"", text);
    }
    if (!*n) return err_set(CIRCD_EINPUT, "--prompt-ids: no ids given");
    return CIRCD_OK;
}

int cmd_generate(int argc, char **argv)
{
    const char *model_dir = NULL, *prompt_text = NULL, *tokenizer_path = NULL, *device_name = "cpu";
    int steps = 32, stop_at_eos = 0;
    struct arg_option options[] = {
        {"model", ARG_STRING, &model_dir, "DIR", "Hugging Face checkpoint directory", 1, 0},
        {"prompt-ids", ARG_STRING, &prompt_text, "ID,ID,...", "prompt token ids, comma-separated", 1, 0},
        {"steps", ARG_INT, &steps, "N", "number of tokens to generate (default 32)", 0, 0},
        {"tokenizer", ARG_STRING, &tokenizer_path, "FILE", "llama2.c tokenizer.bin, to print the text too", 0, 0},
        {"stop-at-eos", ARG_SWITCH, &stop_at_eos, NULL, "stop after the config's eos_token_id", 0, 0},
        {"device", ARG_STRING, &device_name, "cpu|cuda", "where the model computes (default cpu)", 0, 0},
    };
    struct arg_spec spec = {"circd generate", "Greedy decoding with a key/value cache.", options,
                            (int)(sizeof options / sizeof options[0]), NULL, 0};
    const char *positional[1];
    int n_positional;
    int rc = args_parse(&spec, argc, argv, positional, &n_positional);
    if (rc == 1) return 0;
    if (rc) return cli_fail("generate", rc);
    if (steps < 0) return cli_fail("generate", err_set(CIRCD_EINPUT, "--steps must be >= 0, got %d", steps));
    struct placement device;
    if ((rc = standalone_device(device_name, &device))) return cli_fail("generate", rc);

    struct llama_model m;
    struct tokenizer_llama2c tok;
    memset(&tok, 0, sizeof tok);
    int32_t *prompt = NULL, *out = NULL;
    int n_prompt = 0, n_out = 0;
    char *text = NULL;
    if ((rc = parse_ids(prompt_text, &prompt, &n_prompt))) { free(prompt); return cli_fail("generate", rc); }
    if ((rc = model_load_hf(&m, model_dir))) { free(prompt); return cli_fail("generate", rc); }
    if ((rc = placement_apply(&device, &m))) goto done;
    if (tokenizer_path && (rc = tokenizer_llama2c_load(&tok, tokenizer_path, m.config.vocab_size))) goto done;
    out = malloc(((size_t)steps + 1) * sizeof *out);
    if (!out) { rc = err_set(CIRCD_ENOMEM, "out of memory"); goto done; }
    if ((rc = generate_greedy(&m, prompt, n_prompt, steps, stop_at_eos ? m.config.eos_token_id : -1, out, &n_out)))
        goto done;
    for (int i = 0; i < n_out; i++) printf("%s%d", i ? "," : "", (int)out[i]);
    printf("\n");
    if (tokenizer_path) {
        int *ids = malloc((size_t)(n_prompt + n_out) * sizeof *ids);
        size_t cap = 16 * (size_t)(n_prompt + n_out) * (size_t)(tok.longest_piece + 1) + 1, len = 0;
        text = malloc(cap);
        if (!ids || !text) rc = err_set(CIRCD_ENOMEM, "out of memory");
        for (int i = 0; !rc && i < n_prompt + n_out; i++) ids[i] = i < n_prompt ? prompt[i] : out[i - n_prompt];
        if (!rc) rc = tokenizer_llama2c_decode(&tok, -1, ids, n_prompt + n_out, text, cap, &len);
        if (!rc) printf("%.*s\n", (int)len, text);
        free(ids);
    }
done:
    free(text);
    free(out);
    free(prompt);
    tokenizer_llama2c_free(&tok);
    model_free(&m);
    return rc ? cli_fail("generate", rc) : 0;
}
