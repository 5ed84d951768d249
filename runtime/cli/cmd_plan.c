/* cmd_plan.c — `circd plan SPEC [--ranks N] [--dot] [--output DIR]`: the experiment's job graph and its placement
 * on N ranks (plan/plan.h), as text or as Graphviz DOT, without running anything. With the output directory of an
 * earlier run (the spec's `output` by default), stages already finished there are shown done and the placement is
 * the one a resumed `circd run` would use. */
#include <stdio.h>
#include <stdlib.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "plan/plan.h"
#include "sched/scheduler.h"
#include "spec/spec.h"
#include "util/error.h"

int cmd_plan(int argc, char **argv)
{
    int ranks = 0, dot = 0;
    const char *output = NULL;
    struct arg_option options[] = {
        {"ranks", ARG_INT, &ranks, "N", "ranks to lay the plan out for (default: the spec's parallel.ranks, else the "
         "ranks this command was started on)", 0, 0},
        {"dot", ARG_SWITCH, &dot, NULL, "print Graphviz DOT instead of text (`circd plan SPEC --dot | dot -Tsvg`)", 0, 0},
        {"output", ARG_STRING, &output, "DIR", "output directory whose finished stages count as done (default: the "
         "spec's `output`)", 0, 0},
    };
    struct arg_spec spec_args = {"circd plan", "Print the stages of an experiment, their dependencies and their "
                                 "placement on MPI ranks.", options, (int)(sizeof options / sizeof options[0]), "SPEC", 1};
    const char *positional[1];
    int n_positional;
    int rc = args_parse(&spec_args, argc, argv, positional, &n_positional);
    if (rc == 1) return 0;
    if (rc) return cli_fail("plan", rc);
    if (n_positional != 1) return cli_fail("plan", err_set(CIRCD_EINPUT, "expected one SPEC file (see --help)"));
    if (ranks < 0) return cli_fail("plan", err_set(CIRCD_EINPUT, "--ranks: found %d, expected >= 1", ranks));

    struct experiment_spec spec;
    struct spec_errors errs = {0};
    rc = spec_load(positional[0], &spec, &errs);
    if (rc) {
        spec_errors_print(&errs, stderr);
        spec_errors_free(&errs);
        return cli_fail("plan", rc);
    }
    spec_errors_free(&errs);
    if (!ranks) ranks = spec.parallel.ranks;
    if (!ranks) MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    struct plan p;
    rc = plan_build(&p, &spec, ranks);
    unsigned char *done = rc ? NULL : calloc((size_t)p.n_stages, 1);
    if (!rc && !done) rc = err_set(CIRCD_ENOMEM, "out of memory");
    if (!rc) {
        rc = sched_find_done(&p, output ? output : spec.output, NULL, done);
        if (!rc) plan_place(&p, done);
    }
    if (!rc && rank == 0) {
        if (dot) plan_print_dot(&p, &spec, stdout);
        else plan_print_text(&p, &spec, stdout);
    }
    free(done);
    plan_free(&p);
    spec_free(&spec);
    return rc ? cli_fail("plan", rc) : 0;
}
