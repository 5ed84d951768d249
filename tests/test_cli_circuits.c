/* test_cli_circuits.c — `circd atp` and `circd faithfulness` as an interpretability user runs them on a real Hugging
 * Face checkpoint (stories260K with its llama2.c tokenizer beside it) and generated MIB-format rows: the results
 * file holds what the stages write and the node scores equal the library's own AtP-IG over the same pairs (the
 * command reuses the stage code); the MIB JSON round-trips into `faithfulness`; a full circuit scores 1 and the empty
 * one 0 through the command; and bad input exits 2 naming the flag, file or field. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include "circuits/circuit_json.h"
#include "circuits/edges.h"
#include "data/mib.h"
#include "data/tokenizer_files.h"
#include "io/results.h"
#include "stages/pair_set.h"
#include "testing.h"
#include "util/error.h"
#include "util/rng.h"

static char output[1 << 16];

static int run(const char *args) { return testing_run_circd(args, output, sizeof output); }

static void expect(const char *args, int code, const char *needle)
{
    int rc = run(args);
    int found = !needle || strstr(output, needle) != NULL;
    CHECK(rc == code && found);
    if (rc != code || !found) fprintf(stderr, "  circd %s -> %d (want %d, \"%s\"): %s\n", args, rc, code,
                                      needle ? needle : "", output);
}

static char model_dir[4096], data_path[4096], h5[4096], json[4096], args[16384];

static void setup(void)
{
    snprintf(model_dir, sizeof model_dir, "%s/st260", testing_tmpdir());
    snprintf(args, sizeof args, "mkdir -p %s && cp %s/* %s/ && cp %s %s/", model_dir,
             testing_shared_path("models/stories260K/hf"), model_dir,
             testing_shared_path("models/stories260K/tok512.bin"), model_dir);
    CHECK(system(args) == 0);
    /* 8 generated 2-digit problems with random partners, as MIB rows. */
    struct arith_gen_options o;
    arith_gen_options_default(&o);
    o.min_digits = o.max_digits = 2;
    o.cf_kinds = 1u << ARITH_CF_RANDOM;
    struct arith_dataset d;
    memset(&d, 0, sizeof d);
    CHECK(arith_dataset_set_templates(&d, &o) == 0);
    d.count = 8;
    d.examples = calloc(d.count, sizeof *d.examples);
    struct rng r;
    rng_seed(&r, 3);
    for (size_t i = 0; i < d.count; i++) {
        arith_draw_example(&o, &r, &d.examples[i]);
        d.examples[i].id = (int64_t)i;
    }
    snprintf(data_path, sizeof data_path, "%s/rows.jsonl", testing_tmpdir());
    CHECK(mib_write_file(data_path, &d) == 0);
    arith_dataset_free(&d);
    snprintf(h5, sizeof h5, "%s/atp.h5", testing_tmpdir());
    snprintf(json, sizeof json, "%s/scores.json", testing_tmpdir());
}

/* The library's node AtP-IG over the same pairs, for comparison with what the command stored. */
static void library_node_scores(int ig_steps, double *means, int *n_nodes)
{
    struct llama_model m;
    struct tokenizer tok;
    struct arith_dataset d;
    struct arith_format f;
    struct pair_set set;
    CHECK(model_load_hf(&m, model_dir) == 0);
    CHECK(tokenizer_open_model_dir(model_dir, &tok) == 0);
    CHECK(mib_read_file(data_path, &d) == 0);
    arith_format_default(&f);
    f.bos = 1;
    CHECK(pair_set_build(&set, &tok, &f, &d, 0, ARITH_CF_RANDOM, 5, m.config.max_seq) == 0);
    struct node_scores s;
    CHECK(node_scores_init(&s, &m.config) == 0);
    for (int b = 0; b < set.n_batches; b++) CHECK(atp_nodes_ig_batch(&m, &set.batches[b], ig_steps, &s) == 0);
    *n_nodes = s.n_nodes;
    for (int i = 0; i < s.n_nodes; i++) means[i] = s.signed_sum[i] / (double)s.pairs;
    node_scores_free(&s);
    pair_set_free(&set);
    arith_dataset_free(&d);
    tokenizer_free(&tok);
    model_free(&m);
}

static void test_atp(void)
{
    snprintf(args, sizeof args, "atp --model %s --data %s --level edge --ig-steps 2 --exact 2 --qk-fix --grad-drop "
             "--batch 5 --out %s --mib-json %s", model_dir, data_path, h5, json);
    expect(args, 0, "[atp] results in");
    CHECK(strstr(output, "8 pairs") && strstr(output, "EAP-IG over 8 pairs") && strstr(output, "GradDrop vs"));
    struct results_file r;
    CHECK(results_open_readonly(&r, h5, MPI_COMM_WORLD) == 0);
    static float nodes[64 * 2], edges[46 * 151 * 2];
    int ndim;
    uint64_t dims[4];
    /* stories260K: 5 layers of 8 heads: 45 nodes; MIB graph 1 + 5 * 9 = 46 upstream, 5 * 25 + 1 = 126 downstream */
    CHECK(results_read_f32(&r, "/atp/st260/nodes", nodes, 64 * 2, &ndim, dims) == 0 && dims[0] == 45);
    CHECK(results_read_f32(&r, "/atp/st260/edges", edges, 46 * 151 * 2, &ndim, dims) == 0);
    CHECK(ndim == 3 && dims[0] == 46 && dims[1] == 126);
    double v;
    CHECK(results_get_attr_f64(&r, "/atp/st260/exact", "pearson_with_atp", &v) == 0 && v > 0.5);
    CHECK(results_get_attr_f64(&r, "/atp/st260/atp_star", "grad_drop_spearman", &v) == 0 && fabs(v) <= 1);
    char text[256];
    CHECK(results_get_attr_str(&r, "/atp/st260", "counterfactual", text, sizeof text) == 0 &&
          strcmp(text, "random_counterfactual") == 0);
    results_close(&r);
    double lib[64];
    int n = 0;
    library_node_scores(2, lib, &n);
    CHECK(n == 45);
    for (int i = 0; i < n; i++) CHECK_NEAR(nodes[2 * i], lib[i], 1e-5 + 1e-4 * fabs(lib[i]));
    size_t len;
    char *file = testing_read_file(json, &len);
    CHECK(file && strstr(file, "\"n_layers\":5") && strstr(file, "\"a4.h7->logits\""));
    free(file);
}

static void test_faithfulness(void)
{
    /* Scores from the .h5 of `circd atp` and from its MIB JSON give the same curve. */
    char out2[4096];
    snprintf(out2, sizeof out2, "%s/faith.h5", testing_tmpdir());
    snprintf(args, sizeof args, "faithfulness --model %s --data %s --circuit %s --out %s --sizes 5,50,100 --batch 5",
             model_dir, data_path, h5, out2);
    expect(args, 0, "CPR");
    snprintf(args, sizeof args, "faithfulness --model %s --data %s --circuit %s --out %s --sizes 5,50,100 --batch 5 "
             "--name fromjson", model_dir, data_path, json, out2);
    expect(args, 0, "CPR");
    struct results_file r;
    float a[3 * 7], b[3 * 7];
    int ndim;
    uint64_t dims[4];
    CHECK(results_open_readonly(&r, out2, MPI_COMM_WORLD) == 0);
    CHECK(results_read_f32(&r, "/circuits/st260/curve_abs", a, 21, &ndim, dims) == 0 && dims[0] == 3);
    CHECK(results_read_f32(&r, "/circuits/fromjson/curve_abs", b, 21, &ndim, dims) == 0 && dims[0] == 3);
    for (int i = 0; i < 21; i++) CHECK_NEAR(a[i], b[i], 1e-4 * (1 + fabsf(a[i])));
    CHECK(fabsf(a[2 * 7 + 6] - 1) < 1e-4f); /* 100 %: f = 1 */
    results_close(&r);

    /* Membership-only circuits: the full one scores 1, the empty one 0 (both ablation kinds). */
    struct llama_config cfg = {0};
    cfg.n_layers = 5;
    cfg.n_heads = 8;
    cfg.n_kv_heads = 4;
    struct circuit_graph g;
    struct circuit c;
    CHECK(graph_init(&g, &cfg) == 0 && circuit_alloc(&c, &g) == 0);
    char path[4096];
    const char *ablations[] = {"counterfactual", "mean"};
    for (int full = 0; full < 2; full++)
        for (int k = 0; k < 2; k++) {
            if (full) circuit_set_full(&c);
            else circuit_set_empty(&c);
            snprintf(path, sizeof path, "%s/given.json", testing_tmpdir());
            CHECK(circuit_json_write(path, &c, 64, NULL, NULL) == 0);
            snprintf(args, sizeof args, "faithfulness --model %s --data %s --circuit %s --out %s --ablation %s "
                     "--name given", model_dir, data_path, path, out2, ablations[k]);
            expect(args, 0, "faithfulness");
            const char *f = strstr(output, "faithfulness ");
            double value = f ? strtod(f + strlen("faithfulness "), NULL) : NAN;
            CHECK_NEAR(value, full ? 1.0 : 0.0, 1e-4);
        }
    circuit_free(&c);
    graph_free(&g);
}

static void test_errors(void)
{
    char bad[4096];
    expect("atp --data x.jsonl --out y.h5", 2, "--model");
    snprintf(args, sizeof args, "atp --model %s --data %s --out %s --level edges", model_dir, data_path, h5);
    expect(args, 2, "--level: found \"edges\"");
    snprintf(args, sizeof args, "atp --model %s --data %s --out %s --name a/b", model_dir, data_path, h5);
    expect(args, 2, "--name");
    snprintf(args, sizeof args, "atp --model %s --data %s --out %s --counterfactual ones_op9", model_dir, data_path, h5);
    expect(args, 2, "--counterfactual");
    snprintf(args, sizeof args, "atp --model %s --data %s --out %s", testing_shared_path("models/stories260K/hf"),
             data_path, h5);
    expect(args, 2, "tokenizer");
    snprintf(args, sizeof args, "atp --model %s --data %s/missing.jsonl --out %s", model_dir, testing_tmpdir(), h5);
    expect(args, 2, "missing.jsonl");
    snprintf(args, sizeof args, "faithfulness --model %s --data %s --circuit %s --out %s --sizes 5,1", model_dir,
             data_path, json, h5);
    expect(args, 2, "--sizes");
    /* A circuit of another model. */
    snprintf(bad, sizeof bad, "%s/other.json", testing_tmpdir());
    FILE *fp = fopen(bad, "w");
    CHECK(fp != NULL);
    if (fp) { fputs("{\"cfg\":{\"n_layers\":2,\"n_heads\":8},\"nodes\":{},\"edges\":{}}", fp); fclose(fp); }
    snprintf(args, sizeof args, "faithfulness --model %s --data %s --circuit %s --out %s", model_dir, data_path, bad,
             h5);
    expect(args, 2, "cfg.n_layers: found 2, expected 5");
}

int main(void)
{
    int argc = 0;
    char **argv = NULL;
    MPI_Init(&argc, &argv);
    setup();
    test_atp();
    test_faithfulness();
    test_errors();
    int rc = testing_finish();
    MPI_Finalize();
    return rc;
}
