/* cmd_faithfulness.c — `circd faithfulness`: MIB's faithfulness evaluation of circuits on any Hugging Face Llama
 * checkpoint with MIB-format rows. The circuit comes as MIB's circuit JSON (with scores: the whole curve over the
 * sizes, CPR, CMD and NFS, as the circuit stages compute them; with only in_graph marks: the faithfulness of that one
 * circuit) or as the scores a `circd atp` results file holds (/atp/<name>/...). Results go to /circuits/<name>/.
 * Under `mpirun -np N` the evaluation is sharded over MPI_COMM_WORLD's ranks (stages/circuit_job.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "circuits/circuit_json.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/standalone.h"
#include "sched/reduce.h"
#include "stages/circuit_job.h"
#include "util/error.h"

/* "0.1,0.2,1" -> ascending percents in (0, 100]. */
static int parse_sizes(const char *text, double *out, int cap, int *n)
{
    *n = 0;
    const char *p = text;
    while (*p) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || !(v > 0 && v <= 100) || (*end && *end != ',') || *n == cap || (*n && v <= out[*n - 1]))
            return err_set(CIRCD_EINPUT, "--sizes: \"%s\": expected up to %d ascending percents in (0, 100], "
                           "comma-separated", text, cap);
        out[(*n)++] = v;
        p = *end ? end + 1 : end;
    }
    return *n ? CIRCD_OK : err_set(CIRCD_EINPUT, "--sizes: no sizes given");
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* The faithfulness of one given circuit (membership only), as attributes of /circuits/<name>. */
static int evaluate_given(const struct standalone *s, const struct circuit *c, enum ablation_kind ablation,
                          struct results_file *r, int rank)
{
    struct faithfulness f;
    struct faith_shard shard;
    MPI_Comm comm = MPI_COMM_WORLD;
    memset(&f, 0, sizeof f);
    double metric = NAN;
    circuit_job_shard(&s->pairs, &comm, &shard);
    int rc = faithfulness_init_sharded(&f, &s->model, c->g, s->pairs.batches, s->pairs.n_batches, ablation, &shard);
    if (!rc) rc = faithfulness_metrics(&f, c, 1, &metric);
    char dir[128];
    snprintf(dir, sizeof dir, "/circuits/%s", s->name);
    double faith = rc ? NAN : faithfulness_normalise(&f, metric);
    if (!rc) rc = results_set_attr_f64(r, dir, "f", faith);
    if (!rc) rc = results_set_attr_f64(r, dir, "metric_circuit", metric);
    if (!rc) rc = results_set_attr_f64(r, dir, "metric_model", f.metric_model);
    if (!rc) rc = results_set_attr_f64(r, dir, "metric_empty", f.metric_empty);
    if (!rc) rc = results_set_attr_f64(r, dir, "edges_in_graph", (double)circuit_edge_count(c));
    if (!rc && rank == 0)
        printf("circuit of %zu edges, %d nodes: faithfulness %.4f (M circuit %.4f, model %.4f, empty %.4f)\n",
               circuit_edge_count(c), circuit_node_count(c), faith, metric, f.metric_model, f.metric_empty);
    faithfulness_free(&f);
    return rc;
}

int cmd_faithfulness(int argc, char **argv)
{
    const char *model_dir = NULL, *data = NULL, *out = NULL, *circuit_path = NULL, *level_name = NULL;
    const char *ablation_name = "counterfactual", *sizes_text = NULL, *cf = NULL, *name = NULL, *mib_json = NULL;
    const char *device_name = "cpu";
    float nfs_size = 10.0f;
    int batch = 32, limit = 0;
    struct arg_option options[] = {
        {"model", ARG_STRING, &model_dir, "DIR", "Hugging Face checkpoint directory (with its tokenizer)", 1, 0},
        {"data", ARG_STRING, &data, "FILE", "MIB-format rows with counterfactuals", 1, 0},
        {"circuit", ARG_STRING, &circuit_path, "FILE", "MIB circuit JSON, or a `circd atp` results file (.h5)", 1, 0},
        {"out", ARG_STRING, &out, "FILE.h5", "results file (created, or groups replaced)", 1, 0},
        {"level", ARG_STRING, &level_name, "node|edge", "which scores define the circuits (default: node when the "
         "JSON has node scores, else edge; for .h5 input: edge when present)", 0, 0},
        {"ablation", ARG_STRING, &ablation_name, "KIND", "counterfactual (default) or mean", 0, 0},
        {"sizes", ARG_STRING, &sizes_text, "P,P,...", "circuit sizes in percent (default MIB's 0.1 ... 100)", 0, 0},
        {"nfs-size", ARG_FLOAT, &nfs_size, "P", "the fixed circuit size whose NFS is reported (default 10)", 0, 0},
        {"counterfactual", ARG_STRING, &cf, "KIND", "partner kind (default: the first any row has)", 0, 0},
        {"batch", ARG_INT, &batch, "N", "pairs per batch (default 32)", 0, 0},
        {"limit", ARG_INT, &limit, "N", "use only the first N rows (default all)", 0, 0},
        {"name", ARG_STRING, &name, "NAME", "results group /circuits/NAME, and the /atp/NAME scores of an .h5 circuit "
         "(default: the model directory's name)", 0, 0},
        {"mib-json", ARG_STRING, &mib_json, "FILE", "write the NFS circuit as MIB's circuit JSON", 0, 0},
        {"device", ARG_STRING, &device_name, "cpu|cuda", "where the model computes (default cpu; cuda: one GPU per "
         "rank, the node-local rank's)", 0, 0},
    };
    struct arg_spec spec = {"circd faithfulness", "MIB faithfulness (curve, CPR, CMD, NFS) of circuits of a checkpoint.",
                            options, (int)(sizeof options / sizeof options[0]), NULL, 0};
    const char *positional[1];
    int n_positional;
    int rc = args_parse(&spec, argc, argv, positional, &n_positional);
    if (rc == 1) return 0;
    if (rc) return cli_fail("faithfulness", rc);
    double sizes[FAITH_MAX_POINTS];
    int n_sizes = 10;
    memcpy(sizes, faith_mib_percents, sizeof faith_mib_percents);
    enum ablation_kind ablation = ABLATION_COUNTERFACTUAL;
    if (sizes_text && (rc = parse_sizes(sizes_text, sizes, FAITH_MAX_POINTS, &n_sizes))) return cli_fail("faithfulness", rc);
    if (strcmp(ablation_name, "mean") == 0) ablation = ABLATION_MEAN;
    else if (strcmp(ablation_name, "counterfactual") != 0)
        rc = err_set(CIRCD_EINPUT, "--ablation: found \"%s\", expected counterfactual or mean", ablation_name);
    if (!rc && level_name && strcmp(level_name, "node") && strcmp(level_name, "edge"))
        rc = err_set(CIRCD_EINPUT, "--level: found \"%s\", expected node or edge", level_name);
    if (!rc && (!(nfs_size > 0 && nfs_size <= 100) || batch < 1 || limit < 0))
        rc = err_set(CIRCD_EINPUT, "--nfs-size must be in (0, 100], --batch >= 1, --limit >= 0");
    if (!rc) rc = cli_check_name(name);
    if (rc) return cli_fail("faithfulness", rc);
    struct placement device;
    if ((rc = standalone_device(device_name, &device))) return cli_fail("faithfulness", rc);

    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    struct standalone s;
    struct circuit_graph g;
    struct circuit c;
    struct results_file r, in;
    memset(&g, 0, sizeof g);
    memset(&c, 0, sizeof c);
    r.file = in.file = -1;
    double *scores = NULL;
    int given_only = 0;
    enum graph_level level = GRAPH_LEVEL_EDGE;
    rc = standalone_open(&s, model_dir, data, cf, (size_t)limit, batch, name, &device);
    if (!rc) rc = graph_init(&g, &s.model.config);
    if (!rc) rc = circuit_alloc(&c, &g);
    if (!rc && !(scores = xcalloc((size_t)g.n_up * g.n_down, sizeof *scores))) rc = CIRCD_ENOMEM;
    rc = reduce_agree(rc, MPI_COMM_WORLD); /* the results files are opened collectively */
    if (!rc && ends_with(circuit_path, ".h5")) {
        char path[128];
        snprintf(path, sizeof path, "/atp/%s/edges", s.name);
        rc = results_open_readonly(&in, circuit_path, MPI_COMM_WORLD);
        if (!rc) level = level_name ? (strcmp(level_name, "node") ? GRAPH_LEVEL_EDGE : GRAPH_LEVEL_NODE)
                                    : results_exists(&in, path) ? GRAPH_LEVEL_EDGE : GRAPH_LEVEL_NODE;
        if (!rc) rc = circuit_scores_read(&in, s.name, level, &g, scores);
    } else if (!rc) {
        double *node_scores = xmalloc((size_t)g.n_up * sizeof *node_scores);
        int has_nodes = 0;
        rc = node_scores ? circuit_json_read(circuit_path, &c, scores, node_scores, &has_nodes) : CIRCD_ENOMEM;
        level = level_name ? (strcmp(level_name, "node") ? GRAPH_LEVEL_EDGE : GRAPH_LEVEL_NODE)
                           : has_nodes ? GRAPH_LEVEL_NODE : GRAPH_LEVEL_EDGE;
        if (!rc && level == GRAPH_LEVEL_NODE) {
            if (!has_nodes) rc = err_set(CIRCD_EINPUT, "%s: --level node, but the file has no node scores", circuit_path);
            else memcpy(scores, node_scores, (size_t)g.n_up * sizeof *scores);
        }
        if (!rc && level == GRAPH_LEVEL_EDGE) {
            given_only = 1;
            for (size_t i = 0; i < (size_t)g.n_up * g.n_down && given_only; i++) given_only = scores[i] == 0;
        }
        /* MIB files carry MIB's sign (the attribution of its loss -M); circd's scores are of M. */
        for (size_t i = 0; i < (size_t)g.n_up * g.n_down; i++) scores[i] = -scores[i];
        free(node_scores);
    }
    rc = reduce_agree(rc, MPI_COMM_WORLD);
    if (!rc) rc = results_open(&r, out, MPI_COMM_WORLD, NULL);
    if (!rc && given_only) {
        rc = evaluate_given(&s, &c, ablation, &r, rank);
    } else if (!rc) {
        struct circuit_job_options o = {level, ablation, sizes, n_sizes, nfs_size, mib_json};
        rc = circuit_job_run(&s.model, &s.pairs, scores, &o, &r, s.name, MPI_COMM_WORLD, "[faithfulness]");
    }
    if (!rc) {
        char path[128];
        snprintf(path, sizeof path, "/circuits/%s", s.name);
        rc = results_set_attr_str(&r, path, "model", model_dir);
        if (!rc) rc = results_set_attr_str(&r, path, "data", data);
        if (!rc) rc = results_set_attr_str(&r, path, "circuit_file", circuit_path);
        if (!rc && rank == 0) fprintf(stderr, "[faithfulness] results in %s (%s)\n", out, path);
    }
    if (in.file >= 0) results_close(&in);
    if (r.file >= 0) {
        int close_rc = results_close(&r);
        if (!rc) rc = close_rc;
    }
    free(scores);
    circuit_free(&c);
    graph_free(&g);
    standalone_close(&s);
    return rc ? cli_fail("faithfulness", rc) : 0;
}
