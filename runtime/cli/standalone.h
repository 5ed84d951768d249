/* standalone.h — what `circd atp` and `circd faithfulness` share: a Hugging Face checkpoint with its own tokenizer
 * (data/tokenizer_files.h) and answer format (circd_format.json beside it, else MIB's: no padding, answers right
 * after the prompt, BOS when the tokenizer has one), MIB-format rows, and their metric pairs with one
 * counterfactual kind; and the --device flag of every command that runs a model. */
#ifndef CIRCD_CLI_STANDALONE_H
#define CIRCD_CLI_STANDALONE_H

#include "data/arith.h"
#include "data/arith_format.h"
#include "data/tokenizer.h"
#include "model/model.h"
#include "stages/pair_set.h"
#include "stages/placement.h"

struct standalone {
    struct llama_model model;
    struct tokenizer tok;
    struct arith_format format;
    struct arith_dataset data;
    enum arith_cf_kind kind;
    struct pair_set pairs;   /* the first `limit` rows with a partner of `kind` */
    char name[64];           /* results group name: --name, else the model directory's last component */
    int opened_model, opened_tok;
};

/* counterfactual: a kind name (either spelling) or NULL for the first kind any row has. The model is moved to
 * `device` (standalone_device) right after it is loaded. */
int standalone_open(struct standalone *s, const char *model_dir, const char *data_path, const char *counterfactual,
                    size_t limit, int batch, const char *name, const struct placement *device);

/* The --device flag every model command takes ("cpu" or "cuda"), opened into *device before the command does any
 * work (a GPU: the one of the rank's node-local rank, fp32 matmuls). Collective over MPI_COMM_WORLD. CIRCD_EINPUT
 * "--device cuda: <why>" when this build or machine cannot (no CUDA in the build, no GPU), or for another value. */
int standalone_device(const char *text, struct placement *device);
void standalone_close(struct standalone *s);

#endif
