/* report_main.c — the `circd-report RESULTS.h5 [--out DIR]` command: reads an experiment's results.h5 (read-only,
 * on one process) and writes the comparison table (comparison.md, comparison.csv), the figures (SVG) and an index
 * report.md into DIR (default: the results file's directory + /report). Bad input exits 2 naming the file. */
#include <errno.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "analysis/figures.h"
#include "analysis/table.h"
#include "cli/args.h"
#include "io/atomic_file.h"
#include "io/results.h"
#include "spec/spec.h"
#include "util/error.h"

#define SPEC_TEXT_MAX (1 << 20)

static int write_table(const struct report_table *t, const char *dir, const char *file, int csv)
{
    char path[4200];
    struct atomic_file af;
    snprintf(path, sizeof path, "%s/%s", dir, file);
    int rc = atomic_file_open(&af, path);
    if (rc) return rc;
    if (csv) report_table_csv(t, af.fp);
    else report_table_markdown(t, af.fp);
    return atomic_file_commit(&af);
}

static int write_index(const struct report_table *t, const struct figure_list *figures,
                       const struct experiment_spec *spec, const char *results_path, const char *dir)
{
    char path[4200];
    struct atomic_file af;
    snprintf(path, sizeof path, "%s/report.md", dir);
    int rc = atomic_file_open(&af, path);
    if (rc) return rc;
    fprintf(af.fp, "# circd report: %s\n\nFrom `%s`. Seeds:", spec->name ? spec->name : "experiment", results_path);
    for (int s = 0; s < spec->seeds.n; s++) fprintf(af.fp, " %d", spec->seeds.items[s]);
    fprintf(af.fp, ".\n\n## Comparison\n\n");
    report_table_markdown(t, af.fp);
    fprintf(af.fp, "\nMean ± sample standard deviation over the n seeds evaluated, in percent (ID: %d-%d digit "
                   "operands, OOD: %d-%d). Also as [Markdown](comparison.md) and [CSV](comparison.csv).\n\n"
                   "## Figures\n\n",
            spec->data.id_test_digits.lo, spec->data.id_test_digits.hi, spec->data.ood_test_digits.lo,
            spec->data.ood_test_digits.hi);
    for (int i = 0; i < figures->n; i++)
        fprintf(af.fp, "### %s\n\n![%s](%s)\n\n", figures->caption[i], figures->caption[i], figures->file[i]);
    return atomic_file_commit(&af);
}

static int make_dir(const char *dir)
{
    if (mkdir(dir, 0777) == 0 || errno == EEXIST) {
        struct stat st;
        if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode)) return CIRCD_OK;
    }
    return err_set(CIRCD_EIO, "cannot create the output directory %s: %s", dir, strerror(errno ? errno : ENOTDIR));
}

static int report(const char *results_path, const char *out_dir)
{
    struct results_file r;
    struct experiment_spec spec = {0};
    struct spec_errors errs = {0};
    struct report_table *table = NULL;
    struct figure_list *figures = NULL;
    char *spec_text = NULL;
    struct stat st;
    if (stat(results_path, &st) != 0)
        return err_set(CIRCD_EINPUT, "%s: cannot read the results file: %s", results_path, strerror(errno));
    int rc = results_open_readonly(&r, results_path, MPI_COMM_SELF);
    if (rc) return rc;
    if (!(spec_text = xmalloc(SPEC_TEXT_MAX))) { rc = CIRCD_ENOMEM; goto done; }
    if ((rc = results_get_attr_str(&r, "/spec", "yaml", spec_text, SPEC_TEXT_MAX))) goto done;
    if ((rc = spec_load_string(spec_text, strlen(spec_text), results_path, NULL, &spec, &errs))) {
        err_prefix(rc, "%s: the experiment spec stored in /spec does not load: ", results_path);
        goto done;
    }
    if (!(table = xcalloc(1, sizeof *table)) || !(figures = xcalloc(1, sizeof *figures))) {
        rc = CIRCD_ENOMEM;
        goto done;
    }
    if ((rc = make_dir(out_dir))) goto done;
    if ((rc = report_table_collect(&r, &spec, table))) goto done;
    if ((rc = write_table(table, out_dir, "comparison.md", 0))) goto done;
    if ((rc = write_table(table, out_dir, "comparison.csv", 1))) goto done;
    if ((rc = figures_write_all(&r, &spec, out_dir, figures))) goto done;
    if ((rc = write_index(table, figures, &spec, results_path, out_dir))) goto done;
    report_table_markdown(table, stdout);
    printf("\ncircd-report: %d figure%s, table and index in %s/report.md\n", figures->n, figures->n == 1 ? "" : "s",
           out_dir);
done:
    results_close(&r);
    spec_errors_free(&errs);
    spec_free(&spec);
    free(spec_text);
    free(table);
    free(figures);
    return rc;
}

int main(int argc, char **argv)
{
    const char *out_dir = NULL, *positional[1] = {NULL};
    struct arg_option options[] = {
        {"out", ARG_STRING, &out_dir, "DIR", "output directory (default: RESULTS.h5's directory + /report)", 0, 0},
    };
    struct arg_spec spec = {"circd-report",
                            "the comparison table (Markdown, CSV) and figures (SVG) of an experiment's results.h5",
                            options, 1, "RESULTS.h5", 1};
    int n_positional = 0, rc = args_parse(&spec, argc, argv, positional, &n_positional);
    if (rc == 1) return 0;
    if (!rc && n_positional != 1) rc = err_set(CIRCD_EINPUT, "expected one RESULTS.h5 argument");
    if (rc) {
        fprintf(stderr, "circd-report: %s\n(circd-report --help for usage)\n", err_msg());
        return 2;
    }
    char default_dir[4200];
    if (!out_dir) {
        const char *slash = strrchr(positional[0], '/');
        if (slash) snprintf(default_dir, sizeof default_dir, "%.*s/report", (int)(slash - positional[0]), positional[0]);
        else snprintf(default_dir, sizeof default_dir, "report");
        out_dir = default_dir;
    }
    MPI_Init(&argc, &argv);
    rc = report(positional[0], out_dir);
    if (rc) fprintf(stderr, "circd-report: %s\n", err_msg()[0] ? err_msg() : "failed");
    MPI_Finalize();
    return rc == CIRCD_OK ? 0 : rc == CIRCD_EINPUT || rc == CIRCD_EIO ? 2 : 1;
}
