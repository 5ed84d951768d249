/* cmd_run.c — `circd run SPEC [--output DIR]`: loads and validates the spec, then runs its stages (data,
 * train-teacher, eval-teacher, train-student-base, eval-student-base for now) into <output>/results.h5, skipping
 * the ones an earlier run finished and continuing an interrupted one from its checkpoint; prints the table. Exit 2
 * for a bad spec, CIRCD_EXIT_REQUEUE (75) when SIGTERM/SIGUSR1 stopped it after a checkpoint. */
#include <mpi.h>
#include <stdio.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "spec/spec.h"
#include "stages/stages.h"
#include "util/error.h"
#include "util/interrupt.h"

int cmd_run(int argc, char **argv)
{
    const char *output = NULL;
    struct arg_option options[] = {
        {"output", ARG_STRING, &output, "DIR", "output directory (overrides the spec's `output`)", 0, 0},
    };
    struct arg_spec spec_args = {"circd run", "Run an experiment: every stage not yet done, then the table.", options,
                                 (int)(sizeof options / sizeof options[0]), "SPEC", 1};
    const char *positional[1];
    int n_positional;
    int rc = args_parse(&spec_args, argc, argv, positional, &n_positional);
    if (rc == 1) return 0;
    if (rc) return cli_fail("run", rc);
    if (n_positional != 1) return cli_fail("run", err_set(CIRCD_EINPUT, "expected one SPEC file (see --help)"));

    /* Every rank loads the spec and runs the plan; only rank 0 speaks for the job when something fails. */
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    struct experiment_spec spec;
    struct spec_errors errs = {0};
    rc = spec_load(positional[0], &spec, &errs);
    if (rc) {
        if (rank == 0) spec_errors_print(&errs, stderr);
        spec_errors_free(&errs);
        return rank == 0 ? cli_fail("run", rc) : cli_exit_code(rc);
    }
    spec_errors_free(&errs);
    interrupt_install();
    struct experiment x;
    rc = experiment_open(&x, &spec, output, MPI_COMM_WORLD);
    if (!rc) {
        rc = experiment_run(&x);
        experiment_close(&x);
    }
    spec_free(&spec);
    if (rc == CIRCD_EINTERRUPTED) {
        if (rank == 0) fprintf(stderr, "circd run: %s; run the same command again to continue\n", err_msg());
        return CIRCD_EXIT_REQUEUE;
    }
    if (rc && rank != 0) return cli_exit_code(rc);
    return rc ? cli_fail("run", rc) : 0;
}
