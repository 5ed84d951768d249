/* cmd_atp.c — `circd atp`: circuit discovery on any Hugging Face Llama checkpoint with MIB-format rows (MIB's files
 * or the generator's), outside an experiment: node or edge attribution patching, EAP-IG, AtP* variants and exact
 * patching on a sample, written to a results file (/atp/<name>/..., as the atp stages write) and, on request, as
 * MIB's circuit JSON of scores. The work is the stages' own (stages/discovery.h), sharded over MPI_COMM_WORLD's
 * ranks under `mpirun -np N circd atp ...`. */
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/standalone.h"
#include "sched/reduce.h"
#include "stages/discovery.h"
#include "util/error.h"

int cli_check_name(const char *name)
{
    if (!name) return CIRCD_OK;
    if (!name[0] || strlen(name) > 60 || strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")
                                             != strlen(name))
        return err_set(CIRCD_EINPUT, "--name: \"%s\": expected 1-60 characters of [A-Za-z0-9._-]", name);
    return CIRCD_OK;
}

int cmd_atp(int argc, char **argv)
{
    const char *model_dir = NULL, *data = NULL, *out = NULL, *level = "node", *cf = NULL, *name = NULL;
    const char *mib_json = NULL, *device_name = "cpu";
    int ig_steps = 0, qk_fix = 0, grad_drop = 0, exact = 64, batch = 32, limit = 0;
    struct arg_option options[] = {
        {"model", ARG_STRING, &model_dir, "DIR", "Hugging Face checkpoint directory (config.json, *.safetensors, "
         "and tokenizer.json / circd_tokenizer.json / tokenizer.bin)", 1, 0},
        {"data", ARG_STRING, &data, "FILE", "MIB-format rows (JSON Lines or a JSON array) with counterfactuals", 1, 0},
        {"out", ARG_STRING, &out, "FILE.h5", "results file (created, or groups replaced in an existing one)", 1, 0},
        {"level", ARG_STRING, &level, "node|edge", "node: every head and MLP; edge: every edge of MIB's graph "
         "(default node)", 0, 0},
        {"ig-steps", ARG_INT, &ig_steps, "M", "integrated gradients over M steps (EAP-IG); 0 = plain AtP (default)", 0,
         0},
        {"qk-fix", ARG_SWITCH, &qk_fix, NULL, "AtP*: also score q/k/v nodes, q/k with the QK fix (node level)", 0, 0},
        {"grad-drop", ARG_SWITCH, &grad_drop, NULL, "AtP*: GradDrop estimates (node level)", 0, 0},
        {"exact", ARG_INT, &exact, "N", "exact activation patching of every node on the first N pairs, and the "
         "agreement of AtP with it (default 64; 0 = skip)", 0, 0},
        {"counterfactual", ARG_STRING, &cf, "KIND", "partner kind (random, ones_op1, ...; default: the first any "
         "row has)", 0, 0},
        {"batch", ARG_INT, &batch, "N", "pairs per batch (default 32)", 0, 0},
        {"limit", ARG_INT, &limit, "N", "use only the first N rows (default all)", 0, 0},
        {"name", ARG_STRING, &name, "NAME", "results group /atp/NAME (default: the model directory's name)", 0, 0},
        {"mib-json", ARG_STRING, &mib_json, "FILE", "also write the scores as MIB's circuit JSON", 0, 0},
        {"device", ARG_STRING, &device_name, "cpu|cuda", "where the model computes (default cpu; cuda: one GPU per "
         "rank, the node-local rank's)", 0, 0},
    };
    struct arg_spec spec = {"circd atp", "Attribution patching (nodes or edges) of a checkpoint on MIB rows.",
                            options, (int)(sizeof options / sizeof options[0]), NULL, 0};
    const char *positional[1];
    int n_positional;
    int rc = args_parse(&spec, argc, argv, positional, &n_positional);
    if (rc == 1) return 0;
    if (rc) return cli_fail("atp", rc);
    struct discovery_options o = {GRAPH_LEVEL_NODE, ig_steps, qk_fix, grad_drop, (size_t)(exact > 0 ? exact : 0),
                                  mib_json, DISCOVERY_ALL};
    if (strcmp(level, "edge") == 0) o.level = GRAPH_LEVEL_EDGE;
    else if (strcmp(level, "node") != 0)
        return cli_fail("atp", err_set(CIRCD_EINPUT, "--level: found \"%s\", expected node or edge", level));
    if (ig_steps < 0 || exact < 0 || batch < 1 || limit < 0)
        return cli_fail("atp", err_set(CIRCD_EINPUT, "--ig-steps, --exact and --limit must be >= 0, --batch >= 1"));
    if ((rc = cli_check_name(name))) return cli_fail("atp", rc);
    struct placement device;
    if ((rc = standalone_device(device_name, &device))) return cli_fail("atp", rc);

    struct standalone s;
    struct pair_set sample;
    struct results_file r;
    memset(&sample, 0, sizeof sample);
    r.file = -1;
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    rc = standalone_open(&s, model_dir, data, cf, (size_t)limit, batch, name, &device);
    if (!rc && o.exact_samples)
        rc = pair_set_build(&sample, &s.tok, &s.format, &s.data, o.exact_samples, s.kind, batch,
                            s.model.config.max_seq);
    rc = reduce_agree(rc, MPI_COMM_WORLD); /* every rank opens the results file, or none */
    if (!rc) rc = results_open(&r, out, MPI_COMM_WORLD, NULL);
    if (!rc && rank == 0)
        fprintf(stderr, "[atp] %s: %zu pairs (%s counterfactuals; %zu rows without one skipped)\n", s.name,
                s.pairs.pairs, arith_cf_name(s.kind), s.pairs.skipped);
    if (!rc) rc = discovery_run(&s.model, &s.pairs, &sample, &o, &r, s.name, MPI_COMM_WORLD, "[atp]");
    if (!rc) {
        char path[128];
        snprintf(path, sizeof path, "/atp/%s", s.name);
        rc = results_set_attr_str(&r, path, "model", model_dir);
        if (!rc) rc = results_set_attr_str(&r, path, "data", data);
        if (!rc) rc = results_set_attr_str(&r, path, "counterfactual", arith_cf_name(s.kind));
    }
    if (r.file >= 0) {
        int close_rc = results_close(&r);
        if (!rc) rc = close_rc;
    }
    if (!rc && rank == 0) fprintf(stderr, "[atp] results in %s (/atp/%s)\n", out, s.name);
    pair_set_free(&sample);
    standalone_close(&s);
    return rc ? cli_fail("atp", rc) : 0;
}
