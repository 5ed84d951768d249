/* cmd_compare.c — `circd compare A.h5 B.h5 [--rtol R] [--atol A] [--ignore GLOBS]`: are two results files the
 * same numbers? Every dataset and number attribute of A must be in B with |a − b| <= atol + rtol·|b| (NaN equals
 * NaN), every string attribute equal. Timing and placement attributes (seconds, tokens_per_s, started, finished,
 * created, first_rank, rank_count, resumed_from_step) and the model directories (model, source) are not compared, nor paths matching one of the
 * comma-separated --ignore globs (fnmatch, e.g. /runs/STAR/train/STAR with STAR = *). Prints each difference (the first few per
 * object) and exits 0 when equal, 1 when not, 2 for unreadable files. For checking that runs on N ranks, or
 * interrupted and resumed runs, reproduce a reference run. */
#include <fnmatch.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "util/error.h"

struct compare {
    hid_t a, b;
    double rtol, atol;
    const char *ignore;
    long differences, values;
};

static int ignored_path(const struct compare *c, const char *path)
{
    if (!c->ignore) return 0;
    char globs[1024];
    snprintf(globs, sizeof globs, "%s", c->ignore);
    for (char *save = NULL, *g = strtok_r(globs, ",", &save); g; g = strtok_r(NULL, ",", &save))
        if (fnmatch(g, path, 0) == 0) return 1;
    return 0;
}

static int ignored_attr(const char *name)
{
    static const char *const names[] = {"seconds", "tokens_per_s", "started", "finished", "created",
                                        "first_rank", "rank_count", "resumed_from_step",
                                        "model", "source" /* directories: differ between output directories */};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i]) == 0) return 1;
    return 0;
}

static int close_enough(const struct compare *c, double a, double b)
{
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    return fabs(a - b) <= c->atol + c->rtol * fabs(b);
}

static void differ(struct compare *c, const char *fmt, const char *path, const char *what, double a, double b)
{
    if (++c->differences <= 20) printf(fmt, path, what, a, b);
}

/* Reads a whole numeric dataset or attribute as doubles (malloc'd); n = its element count. */
static double *read_doubles(hid_t obj, int is_attr, size_t *n)
{
    hid_t space = is_attr ? H5Aget_space(obj) : H5Dget_space(obj);
    hssize_t count = H5Sget_simple_extent_npoints(space);
    H5Sclose(space);
    *n = count > 0 ? (size_t)count : 0;
    double *v = malloc((*n ? *n : 1) * sizeof *v);
    if (!v) return NULL;
    herr_t e = !*n ? 0 : is_attr ? H5Aread(obj, H5T_NATIVE_DOUBLE, v)
                                 : H5Dread(obj, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    if (e < 0) { free(v); return NULL; }
    return v;
}

static void compare_values(struct compare *c, const char *path, const char *what, hid_t oa, hid_t ob, int is_attr)
{
    size_t na, nb;
    double *va = read_doubles(oa, is_attr, &na), *vb = read_doubles(ob, is_attr, &nb);
    if (!va || !vb || na != nb) {
        if (++c->differences <= 20) printf("%s%s: %zu values in A, %zu in B (or unreadable)\n", path, what, na, nb);
    } else {
        long shown = 0;
        for (size_t i = 0; i < na; i++) {
            c->values++;
            if (close_enough(c, va[i], vb[i])) continue;
            if (shown++ < 3) differ(c, "%s%s: A %.9g, B %.9g\n", path, what, va[i], vb[i]);
            else c->differences++;
        }
    }
    free(va);
    free(vb);
}

struct attr_walk { struct compare *c; const char *path; hid_t ob; };

static herr_t compare_attr(hid_t oa, const char *name, const H5A_info_t *info, void *data)
{
    struct attr_walk *w = data;
    (void)info;
    if (ignored_attr(name)) return 0;
    char what[300];
    snprintf(what, sizeof what, " @%s", name);
    if (H5Aexists(w->ob, name) <= 0) {
        if (++w->c->differences <= 20) printf("%s%s: only in A\n", w->path, what);
        return 0;
    }
    hid_t aa = H5Aopen(oa, name, H5P_DEFAULT), ab = H5Aopen(w->ob, name, H5P_DEFAULT);
    hid_t ta = H5Aget_type(aa);
    if (H5Tget_class(ta) == H5T_STRING) {
        hid_t tb = H5Aget_type(ab);
        size_t sa = H5Tget_size(ta), sb = H5Tget_size(tb);
        char *a = calloc(sa + 1, 1), *b = calloc(sb + 1, 1);
        if (a && b && H5Tis_variable_str(ta) <= 0 && H5Tis_variable_str(tb) <= 0 && H5Aread(aa, ta, a) >= 0 &&
            H5Aread(ab, tb, b) >= 0 && strcmp(a, b) != 0 && ++w->c->differences <= 20)
            printf("%s%s: strings differ\n", w->path, what);
        free(a);
        free(b);
        H5Tclose(tb);
    } else {
        compare_values(w->c, w->path, what, aa, ab, 1);
    }
    H5Tclose(ta);
    H5Aclose(aa);
    H5Aclose(ab);
    return 0;
}

static herr_t compare_object(hid_t root, const char *name, const H5O_info_t *info, void *data)
{
    struct compare *c = data;
    (void)root;
    char path[1100];
    snprintf(path, sizeof path, "/%s", strcmp(name, ".") == 0 ? "" : name);
    if (ignored_path(c, path) || (info->type != H5O_TYPE_GROUP && info->type != H5O_TYPE_DATASET)) return 0;
    if (strcmp(path, "/") != 0 && H5Lexists(c->b, path, H5P_DEFAULT) <= 0) {
        if (++c->differences <= 20) printf("%s: only in A\n", path);
        return 0;
    }
    hid_t oa = H5Oopen(c->a, path, H5P_DEFAULT), ob = H5Oopen(c->b, path, H5P_DEFAULT);
    if (oa < 0 || ob < 0) {
        if (++c->differences <= 20) printf("%s: cannot open\n", path);
    } else {
        if (info->type == H5O_TYPE_DATASET) compare_values(c, path, "", oa, ob, 0);
        struct attr_walk w = {c, path, ob};
        H5Aiterate2(oa, H5_INDEX_NAME, H5_ITER_INC, NULL, compare_attr, &w);
    }
    if (oa >= 0) H5Oclose(oa);
    if (ob >= 0) H5Oclose(ob);
    return 0;
}

int cmd_compare(int argc, char **argv)
{
    float rtol = 1e-5f, atol = 1e-6f;
    const char *ignore = NULL;
    struct arg_option options[] = {
        {"rtol", ARG_FLOAT, &rtol, "R", "relative tolerance (default 1e-5)", 0, 0},
        {"atol", ARG_FLOAT, &atol, "A", "absolute tolerance (default 1e-6)", 0, 0},
        {"ignore", ARG_STRING, &ignore, "GLOBS", "comma-separated path globs not to compare", 0, 0},
    };
    struct arg_spec spec = {"circd compare", "Compare the numbers of two results files (A's contents must be in B).",
                            options, (int)(sizeof options / sizeof options[0]), "A.h5 B.h5", 2};
    const char *positional[2];
    int n_positional;
    int rc = args_parse(&spec, argc, argv, positional, &n_positional);
    if (rc == 1) return 0;
    if (rc) return cli_fail("compare", rc);
    if (n_positional != 2) return cli_fail("compare", err_set(CIRCD_EINPUT, "expected two results files"));
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    struct compare c = {H5Fopen(positional[0], H5F_ACC_RDONLY, H5P_DEFAULT),
                        H5Fopen(positional[1], H5F_ACC_RDONLY, H5P_DEFAULT), rtol, atol, ignore, 0, 0};
    if (c.a < 0 || c.b < 0) {
        if (c.a >= 0) H5Fclose(c.a);
        if (c.b >= 0) H5Fclose(c.b);
        return cli_fail("compare", err_set(CIRCD_EINPUT, "%s: cannot open it as HDF5",
                                           c.a < 0 ? positional[0] : positional[1]));
    }
    H5Ovisit(c.a, H5_INDEX_NAME, H5_ITER_INC, compare_object, &c);
    H5Fclose(c.a);
    H5Fclose(c.b);
    if (c.differences) printf("%ld difference%s (rtol %g, atol %g)\n", c.differences, c.differences == 1 ? "" : "s",
                              rtol, atol);
    else printf("same: %ld values within rtol %g, atol %g\n", c.values, rtol, atol);
    return c.differences ? 1 : 0;
}
