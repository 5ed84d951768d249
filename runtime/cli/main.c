/* main.c — the `circd` program: initialises MPI (a singleton start needs no launcher), dispatches to a subcommand,
 * finalises MPI. */
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "util/error.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: circd <command> [options]\n\n"
            "commands:\n"
            "  forward    run a Hugging Face Llama checkpoint on int32 tokens; write logits (and gradients)\n"
            "  generate   greedy decoding with a KV cache\n"
            "  bench      training / forward throughput against the in-run cblas_sgemm rate\n"
            "  validate   check an experiment spec; every error as file:line:col\n"
            "  compare    are two results files the same numbers (within a tolerance)?\n"
            "  plan       an experiment's job graph and its placement on MPI ranks (text or Graphviz DOT)\n"
            "  run        run an experiment spec's stages (skipping those already done), print the table\n"
            "  atp        attribution patching (nodes / edges, EAP-IG, AtP*) of a checkpoint on MIB rows\n"
            "  faithfulness  MIB faithfulness (curve, CPR, CMD, NFS) of circuits of a checkpoint\n\n"
            "`circd <command> --help` describes each command's options.\n");
}

int cli_exit_code(int code)
{
    /* Bad input and unreadable/unwritable paths exit 2; anything else (memory, internal) exits 1. */
    return code == CIRCD_EINPUT || code == CIRCD_EIO ? 2 : 1;
}

int cli_fail(const char *command, int code)
{
    fprintf(stderr, "circd %s: %s\n", command, err_msg()[0] ? err_msg() : "failed");
    return cli_exit_code(code);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    static const struct { const char *name; int (*run)(int, char **); } commands[] = {
        {"forward", cmd_forward},
        {"generate", cmd_generate},
        {"bench", cmd_bench},
        {"validate", cmd_validate},
        {"plan", cmd_plan},
        {"compare", cmd_compare},
        {"run", cmd_run},
        {"atp", cmd_atp},
        {"faithfulness", cmd_faithfulness},
    };
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[1], commands[i].name) != 0) continue;
        MPI_Init(&argc, &argv);
        int code = commands[i].run(argc - 1, argv + 1);
        MPI_Finalize();
        return code;
    }
    fprintf(stderr, "circd: unknown command \"%s\"\n", argv[1]);
    usage(stderr);
    return 2;
}
