/* cmd_forward.c — `circd forward`: one forward (and optionally backward) pass of a Hugging Face checkpoint over a
 * [B, T] int32 token tensor, writing logits, the loss and every parameter gradient to a safetensors file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/standalone.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "util/error.h"

int cmd_forward(int argc, char **argv)
{
    const char *model_dir = NULL, *tokens_path = NULL, *out_path = NULL, *device_name = "cpu";
    int want_grad = 0;
    struct arg_option options[] = {
        {"model", ARG_STRING, &model_dir, "DIR", "Hugging Face checkpoint directory (config.json + *.safetensors)", 1, 0},
        {"tokens", ARG_STRING, &tokens_path, "IN.safetensors", "int32 tensor \"tokens\" of shape [B, T]", 1, 0},
        {"out", ARG_STRING, &out_path, "OUT.safetensors", "receives \"logits\" [B, T, vocab] (F32)", 1, 0},
        {"grad", ARG_SWITCH, &want_grad, NULL,
         "also write \"loss\" (mean next-token cross-entropy) and grad.<tensor> for every parameter", 0, 0},
        {"device", ARG_STRING, &device_name, "cpu|cuda", "where the model computes (default cpu)", 0, 0},
    };
    struct arg_spec spec = {"circd forward", "Run the model on a batch of token ids and save the logits.", options,
                            (int)(sizeof options / sizeof options[0]), NULL, 0};
    const char *positional[1];
    int n_positional;
    int rc = args_parse(&spec, argc, argv, positional, &n_positional);
    if (rc == 1) return 0;
    if (rc) return cli_fail("forward", rc);

    struct llama_model m;
    struct st_file in;
    memset(&in, 0, sizeof in);
    int32_t *tokens = NULL, *targets = NULL;
    struct placement device;
    if ((rc = standalone_device(device_name, &device))) return cli_fail("forward", rc);
    if ((rc = model_load_hf(&m, model_dir))) return cli_fail("forward", rc);
    if ((rc = placement_apply(&device, &m))) goto done;
    if ((rc = st_open(&in, tokens_path))) goto done;
    const struct st_tensor *t;
    if ((rc = st_get(&in, "tokens", &t))) goto done;
    if (t->ndim != 2 || t->shape[0] <= 0 || t->shape[1] <= 0) {
        char shape[64];
        rc = err_set(CIRCD_EINPUT, "%s: tensor \"tokens\" has shape %s, expected [B, T] with B, T > 0", tokens_path,
                     st_format_shape(shape, sizeof shape, t->ndim, t->shape));
        goto done;
    }
    int B = (int)t->shape[0], T = (int)t->shape[1];
    if (T > m.config.max_seq) {
        rc = err_set(CIRCD_EINPUT, "%s: T = %d exceeds the model's max_position_embeddings %d", tokens_path, T,
                     m.config.max_seq);
        goto done;
    }
    tokens = malloc((size_t)B * T * sizeof *tokens);
    targets = malloc((size_t)B * T * sizeof *targets);
    if (!tokens || !targets) { rc = err_set(CIRCD_ENOMEM, "out of memory for [%d, %d] tokens", B, T); goto done; }
    if ((rc = st_read_i32(&in, "tokens", 2, t->shape, tokens))) goto done;
    model_next_token_targets(targets, tokens, B, T);
    if (want_grad && (rc = model_enable_grads(&m))) goto done;
    if ((rc = model_forward(&m, tokens, want_grad ? targets : NULL, B, T))) {
        err_prefix(rc, "%s: ", tokens_path);
        goto done;
    }
    if (want_grad) {
        model_zero_grad(&m);
        if (T < 2) { rc = err_set(CIRCD_EINPUT, "%s: --grad needs T >= 2 (next-token loss)", tokens_path); goto done; }
        if ((rc = model_backward(&m, NULL))) goto done;
    }

    if ((rc = model_sync_host(&m))) goto done; /* the gradients, where a device computed them */
    struct st_writer w;
    st_writer_init(&w);
    int64_t logits_shape[3] = {B, T, m.config.vocab_size}, scalar_shape[1] = {1};
    rc = st_writer_add(&w, "logits", ST_F32, 3, logits_shape, model_logits(&m));
    float loss = m.loss;
    char (*names)[MODEL_MAX_NAME + 8] = NULL;
    if (!rc && want_grad) {
        rc = st_writer_add(&w, "loss", ST_F32, 1, scalar_shape, &loss);
        names = calloc((size_t)m.n_tensors, sizeof *names);
        if (!names) rc = err_set(CIRCD_ENOMEM, "out of memory");
        for (int i = 0; i < m.n_tensors && !rc; i++) {
            const struct param_tensor *p = &m.tensors[i];
            int64_t shape[2] = {p->shape[0], p->shape[1]};
            snprintf(names[i], sizeof names[i], "grad.%s", p->name);
            rc = st_writer_add(&w, names[i], ST_F32, p->ndim, shape, m.grads + p->offset);
        }
    }
    if (!rc) rc = st_writer_write(&w, out_path);
    st_writer_free(&w);
    free(names);
done:
    free(tokens);
    free(targets);
    st_close(&in);
    model_free(&m);
    return rc ? cli_fail("forward", rc) : 0;
}
