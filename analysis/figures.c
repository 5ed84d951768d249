/* figures.c — the figures of figures.h, each drawn with svg.h from the datasets of results.h5. */
#include "analysis/figures.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/svg.h"
#include "analysis/table.h"
#include "io/atomic_file.h"
#include "util/error.h"

/* A whole dataset as floats (malloc'd into *data) with its shape. */
static int read_dataset(struct results_file *r, const char *path, float **data, int *ndim, uint64_t *dims)
{
    *data = NULL;
    *ndim = 0;
    int rc = results_read_f32(r, path, NULL, 0, ndim, dims);
    if (rc && *ndim < 1) return rc;
    size_t n = 1;
    for (int i = 0; i < *ndim; i++) n *= dims[i];
    err_clear();
    if (!(*data = xmalloc((n ? n : 1) * sizeof **data))) return CIRCD_ENOMEM;
    if ((rc = results_read_f32(r, path, *data, n, ndim, dims))) { free(*data); *data = NULL; }
    return rc;
}

/* A [rows, >= min_cols] matrix, or CIRCD_EINPUT naming the dataset and the shape expected. */
static int read_matrix(struct results_file *r, const char *path, int min_cols, float **data, int *rows, int *cols)
{
    int ndim = 0;
    uint64_t dims[4];
    *rows = *cols = 0;
    int rc = read_dataset(r, path, data, &ndim, dims);
    if (rc) return rc;
    if (ndim != 2 || dims[1] < (uint64_t)min_cols || dims[0] == 0) {
        free(*data);
        *data = NULL;
        return err_set(CIRCD_EINPUT, "%s: dataset %s has the wrong shape, expected [rows >= 1, %d or more columns]",
                       r->path, path, min_cols);
    }
    *rows = (int)dims[0];
    *cols = (int)dims[1];
    return CIRCD_OK;
}

static int figure_open(struct atomic_file *af, const char *dir, const char *file)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    return atomic_file_open(af, path);
}

static int figure_commit(struct atomic_file *af, struct figure_list *list, const char *file, const char *caption)
{
    int rc = atomic_file_commit(af);
    if (rc || list->n >= FIGURE_MAX) return rc;
    snprintf(list->file[list->n], sizeof list->file[0], "%s", file);
    snprintf(list->caption[list->n], sizeof list->caption[0], "%s", caption);
    list->n++;
    return CIRCD_OK;
}

/* ---- AtP heatmap: layer × head mean |score|, MLP as the last column ---- */

static int figure_atp_heatmap(struct results_file *r, const char *dir, const char *row, struct figure_list *list)
{
    char path[128], names[16384], file[64], title[128];
    snprintf(path, sizeof path, "/atp/%s/nodes", row);
    if (!results_exists(r, path)) return CIRCD_OK;
    float *scores;
    int n = 0, cols = 0, rc = read_matrix(r, path, 2, &scores, &n, &cols);
    if (rc) return rc;
    if ((rc = results_get_attr_str(r, path, "nodes", names, sizeof names))) { free(scores); return rc; }
    /* first pass: the shape (layers, heads) from the names */
    int layers = 0, heads = 0, layer, head;
    char *line = names;
    for (int i = 0; i < n && line && *line; i++) {
        if (sscanf(line, "blocks.%d.attn.hook_z[%d]", &layer, &head) == 2) {
            if (layer + 1 > layers) layers = layer + 1;
            if (head + 1 > heads) heads = head + 1;
        } else if (sscanf(line, "blocks.%d.hook_mlp_out", &layer) == 1 && layer + 1 > layers) {
            layers = layer + 1;
        }
        line = strchr(line, '\n');
        if (line) line++;
    }
    if (layers < 1 || layers > 1024 || heads > 1024) {
        free(scores);
        return err_set(CIRCD_EINPUT, "%s: %s: attribute \"nodes\" names no blocks.L.attn.hook_z[H] / "
                       "blocks.L.hook_mlp_out nodes", r->path, path);
    }
    int grid_cols = heads + 1;
    double *grid = xmalloc((size_t)layers * grid_cols * sizeof *grid), hi = 0;
    char (*col_text)[16] = xmalloc((size_t)grid_cols * sizeof *col_text);
    char (*row_text)[16] = xmalloc((size_t)layers * sizeof *row_text);
    const char **col_labels = xmalloc((size_t)grid_cols * sizeof *col_labels);
    const char **row_labels = xmalloc((size_t)layers * sizeof *row_labels);
    if (!grid || !col_text || !row_text || !col_labels || !row_labels) { rc = CIRCD_ENOMEM; goto done; }
    for (int i = 0; i < layers * grid_cols; i++) grid[i] = NAN;
    line = names;
    for (int i = 0; i < n && line && *line; i++) {
        int c = -1;
        if (sscanf(line, "blocks.%d.attn.hook_z[%d]", &layer, &head) == 2) c = head;
        else if (sscanf(line, "blocks.%d.hook_mlp_out", &layer) == 1) c = heads;
        if (c >= 0 && layer >= 0) {
            grid[(size_t)layer * grid_cols + c] = scores[(size_t)i * cols + 1];
            if (scores[(size_t)i * cols + 1] > hi) hi = scores[(size_t)i * cols + 1];
        }
        line = strchr(line, '\n');
        if (line) line++;
    }
    for (int c = 0; c < heads; c++) {
        snprintf(col_text[c], sizeof col_text[c], "H%d", c);
        col_labels[c] = col_text[c];
    }
    col_labels[heads] = "MLP";
    for (int l = 0; l < layers; l++) {
        snprintf(row_text[l], sizeof row_text[l], "L%d", l);
        row_labels[l] = row_text[l];
    }
    struct atomic_file af;
    snprintf(file, sizeof file, "atp_heatmap_%s.svg", row);
    if ((rc = figure_open(&af, dir, file))) goto done;
    /* Small models give narrow grids: centre them in a figure wide enough for the title. */
    double cell = 36, width = cell * grid_cols, height = cell * layers;
    double left = width < 380 ? 50 + (380 - width) / 2 : 50;
    svg_begin(af.fp, (int)(left + width + 110), (int)(height + 110));
    snprintf(title, sizeof title, "%s: mean |AtP| per head (hook_z) and MLP", row);
    svg_heatmap(af.fp, left, 50, width, height, grid, layers, grid_cols, 0, hi, row_labels, col_labels, title);
    svg_text(af.fp, left + width / 2, 50 + height + 36, "middle", 12, "head (last column: MLP)");
    svg_end(af.fp);
    snprintf(title, sizeof title, "AtP heatmap of %s (layer × head mean |score|, MLP column)", row);
    rc = figure_commit(&af, list, file, title);
done:
    free(scores);
    free(grid);
    free(col_text);
    free(row_text);
    free(col_labels);
    free(row_labels);
    return rc;
}

/* ---- accuracy by digit count: [digits, add, sub, all] per seed, mean over seeds ---- */

static int figure_accuracy_by_digits(struct results_file *r, const struct experiment_spec *spec, const char *dir,
                                     struct figure_list *list)
{
    char names[REPORT_MAX_ROWS][32];
    int n_rows = report_row_names(spec, names, REPORT_MAX_ROWS), rc = CIRCD_OK, drawn = 0;
    double x[SPEC_MAX_DIGITS + 1][REPORT_MAX_ROWS], y[SPEC_MAX_DIGITS + 1][REPORT_MAX_ROWS];
    int points[REPORT_MAX_ROWS] = {0}, lo = SPEC_MAX_DIGITS, hi = 1;
    for (int i = 0; i < n_rows && !rc; i++) {
        double sum[SPEC_MAX_DIGITS + 1] = {0};
        int count[SPEC_MAX_DIGITS + 1] = {0};
        for (int s = 0; s < spec->seeds.n && !rc; s++) {
            char path[128];
            float *acc;
            int rows = 0, cols = 0;
            snprintf(path, sizeof path, "/runs/%s/%d/accuracy_by_digits", names[i], spec->seeds.items[s]);
            if (!results_exists(r, path)) continue;
            if ((rc = read_matrix(r, path, 4, &acc, &rows, &cols))) break;
            for (int k = 0; k < rows; k++) {
                int d = (int)lroundf(acc[(size_t)k * cols]);
                if (d < 1 || d > SPEC_MAX_DIGITS || !isfinite(acc[(size_t)k * cols + 3])) continue;
                sum[d] += 100.0 * acc[(size_t)k * cols + 3];
                count[d]++;
            }
            free(acc);
        }
        for (int d = 1; d <= SPEC_MAX_DIGITS; d++) {
            if (!count[d]) continue;
            x[points[i]][i] = d;
            y[points[i]][i] = sum[d] / count[d];
            points[i]++;
            if (d < lo) lo = d;
            if (d > hi) hi = d;
        }
        drawn += points[i] > 0;
    }
    if (rc || !drawn) return rc;
    struct atomic_file af;
    if ((rc = figure_open(&af, dir, "accuracy_by_digits.svg"))) return rc;
    struct svg_panel p;
    svg_begin(af.fp, 760, 420);
    svg_panel_begin(&p, af.fp, 70, 40, 520, 320, lo, hi, 0, 100, 0, "Exact-match accuracy by operand length",
                    "digits per operand", "accuracy % (mean over seeds)");
    for (int i = 0; i < n_rows; i++) {
        if (!points[i]) continue;
        double xs[SPEC_MAX_DIGITS + 1], ys[SPEC_MAX_DIGITS + 1];
        for (int k = 0; k < points[i]; k++) { xs[k] = x[k][i]; ys[k] = y[k][i]; }
        svg_polyline(&p, xs, ys, points[i], svg_series_colour(i), strstr(names[i], "_subnet") != NULL, names[i]);
    }
    svg_end(af.fp);
    return figure_commit(&af, list, "accuracy_by_digits.svg", "Accuracy versus digit count per method");
}

/* ---- faithfulness curves: f against circuit size (percent, log scale), signed and |score| circuits ---- */

static int figure_faithfulness(struct results_file *r, const char *dir, const char *row, struct figure_list *list)
{
    char signed_path[128], abs_path[128], group[128], file[64], title[160];
    snprintf(group, sizeof group, "/circuits/%s", row);
    snprintf(signed_path, sizeof signed_path, "%s/curve_signed", group);
    snprintf(abs_path, sizeof abs_path, "%s/curve_abs", group);
    if (!results_exists(r, signed_path) || !results_exists(r, abs_path)) return CIRCD_OK;
    float *curve[2] = {NULL, NULL};
    int rows[2] = {0, 0}, cols[2] = {0, 0}, rc = read_matrix(r, signed_path, 7, &curve[0], &rows[0], &cols[0]);
    if (!rc) rc = read_matrix(r, abs_path, 7, &curve[1], &rows[1], &cols[1]);
    double cpr = NAN, cmd = NAN;
    if (!rc && (results_get_attr_f64(r, group, "cpr", &cpr) || results_get_attr_f64(r, group, "cmd", &cmd)))
        err_clear(); /* drawn without the area in the title */
    double *xs = NULL, *ys = NULL, x0 = INFINITY, x1 = 0, y0 = 0, y1 = 1;
    if (!rc && (!(xs = xmalloc((size_t)(rows[0] + rows[1]) * sizeof *xs)) ||
                !(ys = xmalloc((size_t)(rows[0] + rows[1]) * sizeof *ys))))
        rc = CIRCD_ENOMEM;
    for (int c = 0; c < 2 && !rc; c++)
        for (int k = 0; k < rows[c]; k++) {
            double x = curve[c][(size_t)k * cols[c]], y = curve[c][(size_t)k * cols[c] + 6];
            if (x > 0 && x < x0) x0 = x;
            if (x > x1) x1 = x;
            if (isfinite(y) && y < y0) y0 = y;
            if (isfinite(y) && y > y1) y1 = y;
        }
    struct atomic_file af;
    snprintf(file, sizeof file, "faithfulness_%s.svg", row);
    if (!rc) rc = figure_open(&af, dir, file);
    if (!rc) {
        struct svg_panel p;
        static const char *const labels[2] = {"signed scores (CPR)", "|scores| (CMD)"};
        svg_begin(af.fp, 760, 420);
        snprintf(title, sizeof title, "%s: faithfulness — CPR %.3f, CMD %.3f", row, cpr, cmd);
        svg_panel_begin(&p, af.fp, 70, 40, 500, 320, x0, x1, y0, y1, 1, title, "circuit size (% of edges)",
                        "faithfulness f(C)");
        for (int c = 0; c < 2; c++) {
            for (int k = 0; k < rows[c]; k++) {
                xs[k] = curve[c][(size_t)k * cols[c]];
                ys[k] = curve[c][(size_t)k * cols[c] + 6];
            }
            svg_polyline(&p, xs, ys, rows[c], svg_series_colour(c), c == 1, labels[c]);
        }
        svg_end(af.fp);
        snprintf(title, sizeof title, "Faithfulness of the %s circuit versus size (CPR %.3f, CMD %.3f)", row, cpr, cmd);
        rc = figure_commit(&af, list, file, title);
    }
    free(curve[0]);
    free(curve[1]);
    free(xs);
    free(ys);
    return rc;
}

/* ---- training curves: loss against step for teacher, base and each method's first seed ---- */

static int figure_training_curves(struct results_file *r, const struct experiment_spec *spec, const char *dir,
                                  struct figure_list *list)
{
    char names[REPORT_MAX_ROWS][32], paths[REPORT_MAX_ROWS][128];
    int n_rows = report_row_names(spec, names, REPORT_MAX_ROWS), rc = CIRCD_OK, drawn = 0;
    float *curves[REPORT_MAX_ROWS] = {NULL};
    int rows[REPORT_MAX_ROWS] = {0}, cols[REPORT_MAX_ROWS] = {0};
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int i = 0; i < n_rows && !rc; i++) {
        if (!strcmp(names[i], "base") || !strcmp(names[i], "teacher"))
            snprintf(paths[i], sizeof paths[i], "/runs/%s/train/loss", names[i]);
        else
            snprintf(paths[i], sizeof paths[i], "/runs/%s/%d/train_loss", names[i], spec->seeds.items[0]);
        if (!results_exists(r, paths[i])) continue;
        if ((rc = read_matrix(r, paths[i], 2, &curves[i], &rows[i], &cols[i]))) break;
        drawn++;
        for (int k = 0; k < rows[i]; k++) {
            double x = curves[i][(size_t)k * cols[i]], y = curves[i][(size_t)k * cols[i] + 1];
            if (!isfinite(x) || !isfinite(y)) continue;
            x0 = fmin(x0, x); x1 = fmax(x1, x); y0 = fmin(y0, y); y1 = fmax(y1, y);
        }
    }
    struct atomic_file af;
    if (!rc && drawn && !(rc = figure_open(&af, dir, "training_curves.svg"))) {
        struct svg_panel p;
        double xs[4096], ys[4096];
        svg_begin(af.fp, 760, 420);
        svg_panel_begin(&p, af.fp, 70, 40, 520, 320, isfinite(x0) ? x0 : 0, isfinite(x1) ? x1 : 1,
                        isfinite(y0) ? fmin(0, y0) : 0, isfinite(y1) ? y1 : 1, 0,
                        "Training loss (teacher, base, first seed of each method)", "step", "loss");
        for (int i = 0; i < n_rows; i++) {
            if (!curves[i]) continue;
            /* at most 4096 points, evenly strided */
            int stride = (rows[i] + 4095) / 4096, n = 0;
            for (int k = 0; k < rows[i]; k += stride, n++) {
                xs[n] = curves[i][(size_t)k * cols[i]];
                ys[n] = curves[i][(size_t)k * cols[i] + 1];
            }
            svg_polyline(&p, xs, ys, n, svg_series_colour(i), strstr(names[i], "_subnet") != NULL, names[i]);
        }
        svg_end(af.fp);
        rc = figure_commit(&af, list, "training_curves.svg", "Training loss versus step");
    }
    for (int i = 0; i < n_rows; i++) free(curves[i]);
    return rc;
}

/* ---- attention patterns of the top circuit heads (/attention/<row>/patterns [k, P, T, T], when present) ---- */

#define ATTENTION_MAX_PROMPTS 16
#define ATTENTION_LABEL 24

/* Splits a newline-separated attribute in place into at most cap lines; returns the count. */
static int split_lines(char *text, char **lines, int cap)
{
    int n = 0;
    for (char *line = text; *line && n < cap;) {
        char *end = strchr(line, '\n');
        lines[n++] = line;
        if (!end) break;
        *end = '\0';
        line = end + 1;
    }
    return n;
}

static int figure_attention_row(struct results_file *r, const char *dir, const char *row, struct figure_list *list)
{
    char path[128], file[64], title[160];
    snprintf(path, sizeof path, "/attention/%s/patterns", row);
    if (!results_exists(r, path)) return CIRCD_OK;
    float *patterns = NULL;
    int ndim = 0;
    uint64_t dims[4];
    char *heads_text = xmalloc(8192), *tokens_text = xmalloc(65536), *heads[64], *prompts[ATTENTION_MAX_PROMPTS];
    char (*labels)[ATTENTION_LABEL] = NULL;
    double *cells = NULL;
    int rc = heads_text && tokens_text ? read_dataset(r, path, &patterns, &ndim, dims) : CIRCD_ENOMEM;
    if (!rc && (ndim != 4 || dims[2] != dims[3] || dims[0] < 1 || dims[0] > 64 || dims[1] < 1 || dims[2] > 4096))
        rc = err_set(CIRCD_EINPUT, "%s: dataset %s has the wrong shape, expected [heads <= 64, prompts, T, T]",
                     r->path, path);
    if (!rc) rc = results_get_attr_str(r, path, "heads", heads_text, 8192);
    if (!rc) rc = results_get_attr_str(r, path, "tokens", tokens_text, 65536);
    int k = rc ? 0 : (int)dims[0], n_prompts = 0, T = rc ? 0 : (int)dims[2], lengths[ATTENTION_MAX_PROMPTS];
    if (!rc && split_lines(heads_text, heads, 64) < k)
        rc = err_set(CIRCD_EINPUT, "%s: %s: attribute \"heads\" names fewer than %d heads", r->path, path, k);
    if (!rc) {
        n_prompts = split_lines(tokens_text, prompts, ATTENTION_MAX_PROMPTS);
        if (n_prompts > (int)dims[1]) n_prompts = (int)dims[1];
        if (!(labels = xmalloc((size_t)(T ? T : 1) * sizeof *labels)) || !(cells = xmalloc((size_t)T * T * sizeof *cells)))
            rc = CIRCD_ENOMEM;
    }
    for (int p = 0; p < n_prompts; p++) { /* tokens are separated by U+001F */
        lengths[p] = 1;
        for (const char *c = prompts[p]; *c; c++) lengths[p] += *c == '\x1f';
        if (lengths[p] > T) lengths[p] = T;
    }
    struct atomic_file af;
    snprintf(file, sizeof file, "attention_%s.svg", row);
    if (!rc && n_prompts > 0 && !(rc = figure_open(&af, dir, file))) {
        double cell = 10, panel = cell * T + 110;
        svg_begin(af.fp, (int)(panel * k + 40), (int)((cell * T + 90) * n_prompts + 50));
        snprintf(title, sizeof title, "%s: attention patterns of the top-|AtP| heads (query rows, key columns)", row);
        svg_text(af.fp, 20, 24, "start", 15, title);
        for (int p = 0; p < n_prompts; p++) {
            const char *row_labels[4096];
            char *token = prompts[p];
            for (int t = 0; t < lengths[p]; t++) { /* the token strings as the row labels */
                char *end = strchr(token, '\x1f');
                size_t len = end ? (size_t)(end - token) : strlen(token);
                snprintf(labels[t], ATTENTION_LABEL, "%.*s", (int)(len < ATTENTION_LABEL - 1 ? len : ATTENTION_LABEL - 1),
                         token);
                row_labels[t] = labels[t];
                token = end ? end + 1 : token + len;
            }
            for (int h = 0; h < k; h++) {
                int L = lengths[p];
                const float *src = patterns + (((size_t)h * dims[1] + p) * T) * T;
                for (int q = 0; q < L; q++)
                    for (int key = 0; key < L; key++) cells[(size_t)q * L + key] = src[(size_t)q * T + key];
                int layer, head;
                if (sscanf(heads[h], "blocks.%d.attn.hook_pattern[%d]", &layer, &head) == 2)
                    snprintf(title, sizeof title, "L%d H%d, prompt %d", layer, head, p + 1);
                else snprintf(title, sizeof title, "%s, prompt %d", heads[h], p + 1);
                svg_heatmap(af.fp, 70 + h * panel, 70 + p * (cell * T + 90), cell * L, cell * L, cells, L, L, 0, 1,
                            h == 0 ? row_labels : NULL, NULL, title);
            }
        }
        svg_end(af.fp);
        snprintf(title, sizeof title, "Attention patterns of %s's top circuit heads on %d prompts", row, n_prompts);
        rc = figure_commit(&af, list, file, title);
    }
    free(patterns);
    free(heads_text);
    free(tokens_text);
    free(labels);
    free(cells);
    return rc;
}

static int figure_attention(struct results_file *r, const struct experiment_spec *spec, const char *dir,
                            struct figure_list *list)
{
    char names[REPORT_MAX_ROWS][32];
    int n_rows = report_row_names(spec, names, REPORT_MAX_ROWS), rc = CIRCD_OK;
    if (!results_exists(r, "/attention")) return CIRCD_OK;
    for (int i = 0; i < n_rows && !rc; i++) rc = figure_attention_row(r, dir, names[i], list);
    return rc;
}

int figures_write_all(struct results_file *r, const struct experiment_spec *spec, const char *dir,
                      struct figure_list *list)
{
    static const char *const models[] = {"teacher", "base"};
    int rc = CIRCD_OK;
    list->n = 0;
    for (int i = 0; i < 2 && !rc; i++) rc = figure_atp_heatmap(r, dir, models[i], list);
    if (!rc) rc = figure_accuracy_by_digits(r, spec, dir, list);
    for (int i = 0; i < 2 && !rc; i++) rc = figure_faithfulness(r, dir, models[i], list);
    if (!rc) rc = figure_training_curves(r, spec, dir, list);
    if (!rc) rc = figure_attention(r, spec, dir, list);
    return rc;
}
