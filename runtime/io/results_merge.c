/* results_merge.c — copying one results file into another (results.h): how a stage's own file, written by its
 * rank group while other groups run other stages, lands in the experiment's results.h5 once the wave is over.
 * Every rank of the destination reads the source (read-only, serial driver) and writes its own block of rows of
 * each dataset in one collective transfer, so no rank funnels the data. */
#include <hdf5.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/results.h"
#include "util/error.h"

#define MERGE_PATH_MAX 1024

struct object_list {
    char (*paths)[MERGE_PATH_MAX];
    int *is_dataset;
    int n, cap;
};

static herr_t collect(hid_t root, const char *name, const H5O_info_t *info, void *data)
{
    struct object_list *l = data;
    (void)root;
    if (info->type != H5O_TYPE_GROUP && info->type != H5O_TYPE_DATASET) return 0;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        void *p = realloc(l->paths, (size_t)cap * sizeof *l->paths), *d = realloc(l->is_dataset, (size_t)cap * sizeof(int));
        if (p) l->paths = p;
        if (d) l->is_dataset = d;
        if (!p || !d) return -1;
        l->cap = cap;
    }
    snprintf(l->paths[l->n], MERGE_PATH_MAX, "/%s", strcmp(name, ".") == 0 ? "" : name);
    l->is_dataset[l->n++] = info->type == H5O_TYPE_DATASET;
    return 0;
}

struct attr_ctx {
    struct results_file *dst;
    const char *path;
    int root, rc;
};

/* One attribute of the source object copied onto the destination (strings, floats and integers). */
static herr_t copy_attr(hid_t obj, const char *name, const H5A_info_t *info, void *data)
{
    struct attr_ctx *c = data;
    (void)info;
    if (c->root && (!strcmp(name, "format") || !strcmp(name, "version") || !strcmp(name, "created"))) return 0;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) { c->rc = err_set(CIRCD_EIO, "%s: cannot open attribute %s", c->path, name); return -1; }
    hid_t type = H5Aget_type(a);
    H5T_class_t cls = H5Tget_class(type);
    if (cls == H5T_STRING && H5Tis_variable_str(type) <= 0) {
        size_t size = H5Tget_size(type);
        char *buf = calloc(size + 1, 1);
        if (!buf) c->rc = err_set(CIRCD_ENOMEM, "out of memory");
        else if (H5Aread(a, type, buf) < 0) c->rc = err_set(CIRCD_EIO, "%s: cannot read attribute %s", c->path, name);
        else c->rc = results_set_attr_str(c->dst, c->path, name, buf);
        free(buf);
    } else if (cls == H5T_FLOAT) {
        double v;
        c->rc = H5Aread(a, H5T_NATIVE_DOUBLE, &v) < 0 ? err_set(CIRCD_EIO, "%s: cannot read %s", c->path, name)
                                                      : results_set_attr_f64(c->dst, c->path, name, v);
    } else if (cls == H5T_INTEGER) {
        int64_t v;
        c->rc = H5Aread(a, H5T_NATIVE_INT64, &v) < 0 ? err_set(CIRCD_EIO, "%s: cannot read %s", c->path, name)
                                                     : results_set_attr_i64(c->dst, c->path, name, v);
    } else {
        c->rc = err_set(CIRCD_EINPUT, "%s: attribute %s has a type results files do not use", c->path, name);
    }
    H5Tclose(type);
    H5Aclose(a);
    return c->rc ? -1 : 0;
}

/* The dataset at path: read whole on every rank, each rank writing rows [lo, hi) of an even split. */
static int copy_dataset(struct results_file *dst, hid_t src, const char *path)
{
    hid_t d = H5Dopen2(src, path, H5P_DEFAULT);
    if (d < 0) return err_set(CIRCD_EIO, "%s: cannot open dataset", path);
    hid_t space = H5Dget_space(d), type = H5Dget_type(d);
    int ndim = H5Sget_simple_extent_ndims(space), is_float = H5Tget_class(type) == H5T_FLOAT;
    int is_int = H5Tget_class(type) == H5T_INTEGER, rc = CIRCD_OK;
    hsize_t hd[4];
    uint64_t dims[4];
    size_t n = 1, row = 1;
    if (ndim < 1 || ndim > 4 || (!is_float && !is_int)) {
        rc = err_set(CIRCD_EINPUT, "%s: dataset of a kind results files do not use", path);
    } else {
        H5Sget_simple_extent_dims(space, hd, NULL);
        for (int i = 0; i < ndim; i++) { dims[i] = hd[i]; n *= hd[i]; if (i) row *= hd[i]; }
    }
    void *buf = rc ? NULL : malloc(n ? n * 4 : 4);
    if (!rc && !buf) rc = err_set(CIRCD_ENOMEM, "out of memory");
    if (!rc && n && H5Dread(d, is_float ? H5T_NATIVE_FLOAT : H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
        rc = err_set(CIRCD_EIO, "%s: cannot read dataset", path);
    H5Tclose(type);
    H5Sclose(space);
    H5Dclose(d);
    int bad = rc != CIRCD_OK; /* every rank reads the same file: agree before the collective writes */
    MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MAX, dst->comm);
    if (bad) { free(buf); return rc ? rc : err_set(CIRCD_EIO, "%s: another rank could not read it", path); }
    uint64_t lo = dims[0] * (uint64_t)dst->rank / (uint64_t)dst->size;
    uint64_t hi = dims[0] * (uint64_t)(dst->rank + 1) / (uint64_t)dst->size;
    if (is_float)
        rc = results_write_f32_rows(dst, path, ndim, dims, lo, hi - lo, (const float *)buf + lo * row);
    else
        rc = results_write_i32_rows(dst, path, ndim, dims, lo, hi - lo, (const int32_t *)buf + lo * row);
    free(buf);
    return rc;
}

int results_merge_file(struct results_file *r, const char *src_path)
{
    hid_t src = H5Fopen(src_path, H5F_ACC_RDONLY, H5P_DEFAULT);
    int bad = src < 0;
    MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MAX, r->comm);
    if (bad) {
        if (src >= 0) H5Fclose(src);
        return err_set(CIRCD_EIO, "%s: cannot open it to merge into %s", src_path, r->path);
    }
    struct object_list l = {0};
    int rc = H5Ovisit(src, H5_INDEX_NAME, H5_ITER_INC, collect, &l) < 0
                 ? err_set(CIRCD_EIO, "%s: cannot list its objects", src_path) : CIRCD_OK;
    for (int i = 0; i < l.n && !rc; i++) {
        const char *path = l.paths[i];
        if (!strcmp(path, "/spec") || !strncmp(path, "/spec/", 6)) continue;
        if (l.is_dataset[i]) rc = copy_dataset(r, src, path);
        if (rc) break;
        hid_t obj = H5Oopen(src, path, H5P_DEFAULT);
        if (obj < 0) { rc = err_set(CIRCD_EIO, "%s: cannot open %s", src_path, path); break; }
        struct attr_ctx c = {r, path, strcmp(path, "/") == 0, CIRCD_OK};
        H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_INC, NULL, copy_attr, &c);
        H5Oclose(obj);
        rc = c.rc;
    }
    free(l.paths);
    free(l.is_dataset);
    H5Fclose(src);
    return rc;
}

int results_is_damaged(const char *path)
{
    if (access(path, F_OK) != 0) return 0;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return 1;
    H5Fclose(f);
    return 0;
}
