/* results.c — results.h5 through parallel HDF5 (MPI-IO driver): open/create with the spec check, stage status
 * attributes, float/int datasets (whole or by rows), and string/number attributes. */
#include "io/results.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/error.h"

static int io_error(const struct results_file *r, const char *what, const char *path)
{
    return err_set(CIRCD_EIO, "%s: cannot %s %s", r->path, what, path);
}

/* 1 if every component of `path` exists (H5Lexists needs the parents to exist). */
static int path_exists(hid_t file, const char *path)
{
    char partial[1024];
    size_t n = strlen(path);
    if (n >= sizeof partial) return 0;
    if (strcmp(path, "/") == 0) return 1;
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0') continue;
        memcpy(partial, path, i);
        partial[i] = '\0';
        if (H5Lexists(file, partial, H5P_DEFAULT) <= 0) return 0;
    }
    return 1;
}

static hid_t link_create_plist(void)
{
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    return lcpl;
}

static int ensure_group(struct results_file *r, const char *path)
{
    if (path_exists((hid_t)r->file, path)) return CIRCD_OK;
    hid_t lcpl = link_create_plist();
    hid_t g = H5Gcreate2((hid_t)r->file, path, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    H5Pclose(lcpl);
    if (g < 0) return io_error(r, "create group", path);
    H5Gclose(g);
    return CIRCD_OK;
}

/* The current UTC time as ISO 8601, taken on rank 0 so every rank writes the same attribute. */
static void now_iso(struct results_file *r, char buf[32])
{
    if (r->rank == 0) {
        time_t t = time(NULL);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    MPI_Bcast(buf, 32, MPI_CHAR, 0, r->comm);
}

static hid_t file_access_plist(MPI_Comm comm)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL);
    H5Pset_all_coll_metadata_ops(fapl, 1);
    H5Pset_coll_metadata_write(fapl, 1);
    H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST); /* large (dense) attributes, e.g. /spec */
    return fapl;
}

static int check_format(struct results_file *r)
{
    char format[64];
    if (results_get_attr_str(r, "/", "format", format, sizeof format) || strcmp(format, RESULTS_FORMAT) != 0)
        return err_set(CIRCD_EINPUT, "%s: not a circd results file (attribute /format is not \"%s\")", r->path,
                       RESULTS_FORMAT);
    return CIRCD_OK;
}

static int open_common(struct results_file *r, const char *path, MPI_Comm comm, int create, unsigned flags)
{
    memset(r, 0, sizeof *r);
    r->file = -1;
    r->comm = comm;
    MPI_Comm_rank(comm, &r->rank);
    MPI_Comm_size(comm, &r->size);
    snprintf(r->path, sizeof r->path, "%s", path);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* our own messages instead of HDF5's error stack dumps */
    hid_t fapl = file_access_plist(comm);
    hid_t f = create ? H5Fcreate(path, H5F_ACC_EXCL, H5P_DEFAULT, fapl) : H5Fopen(path, flags, fapl);
    H5Pclose(fapl);
    if (f < 0) {
        if (!create && access(path, F_OK) == 0)
            return err_set(CIRCD_EINPUT, "%s: not an HDF5 file, or damaged (cannot open it with HDF5)", path);
        return err_set(CIRCD_EIO, "%s: cannot %s the results file", path, create ? "create" : "open");
    }
    r->file = (int64_t)f;
    return CIRCD_OK;
}

int results_open(struct results_file *r, const char *path, MPI_Comm comm, const char *spec_text)
{
    int exists = access(path, F_OK) == 0, any_exists = 0;
    MPI_Allreduce(&exists, &any_exists, 1, MPI_INT, MPI_MAX, comm);
    int rc = open_common(r, path, comm, !any_exists, H5F_ACC_RDWR);
    if (rc) return rc;
    if (!any_exists) {
        char created[32];
        now_iso(r, created);
        if ((rc = results_set_attr_str(r, "/", "format", RESULTS_FORMAT)) ||
            (rc = results_set_attr_i64(r, "/", "version", RESULTS_VERSION)) ||
            (rc = results_set_attr_str(r, "/", "created", created)) ||
            (rc = results_set_attr_str(r, "/spec", "yaml", spec_text ? spec_text : "")) ||
            (rc = ensure_group(r, "/stages")) || (rc = results_flush(r))) {
            results_close(r);
            return rc;
        }
        return CIRCD_OK;
    }
    if ((rc = check_format(r))) { results_close(r); return rc; }
    if (spec_text) {
        size_t cap = strlen(spec_text) + 2;
        char *stored = malloc(cap);
        rc = stored ? results_get_attr_str(r, "/spec", "yaml", stored, cap) : err_set(CIRCD_ENOMEM, "out of memory");
        if (!rc && strcmp(stored, spec_text) != 0)
            rc = err_set(CIRCD_EINPUT, "%s was written by a different experiment spec; use another output "
                         "directory, or remove the file to start over", path);
        else if (rc == CIRCD_EINPUT)
            rc = err_set(CIRCD_EINPUT, "%s was written by a different experiment spec (its /spec differs)", path);
        free(stored);
        if (rc) { results_close(r); return rc; }
    }
    return CIRCD_OK;
}

int results_open_readonly(struct results_file *r, const char *path, MPI_Comm comm)
{
    int rc = open_common(r, path, comm, 0, H5F_ACC_RDONLY);
    if (rc) return rc;
    if ((rc = check_format(r))) results_close(r);
    return rc;
}

int results_close(struct results_file *r)
{
    if (r->file < 0) return CIRCD_OK;
    herr_t e = H5Fclose((hid_t)r->file);
    r->file = -1;
    return e < 0 ? err_set(CIRCD_EIO, "%s: closing the results file failed", r->path) : CIRCD_OK;
}

int results_flush(struct results_file *r)
{
    return H5Fflush((hid_t)r->file, H5F_SCOPE_GLOBAL) < 0 ? io_error(r, "flush", "the file") : CIRCD_OK;
}

int results_exists(struct results_file *r, const char *path)
{
    return path_exists((hid_t)r->file, path) || (r->base && results_exists(r->base, path));
}

/* 1 when a read of `path` (attribute `attr`, or the dataset itself when attr is NULL) must go to the base file. */
static int read_from_base(struct results_file *r, const char *path, const char *attr)
{
    if (!r->base) return 0;
    hid_t file = (hid_t)r->file;
    if (!path_exists(file, path)) return 1;
    return attr && H5Aexists_by_name(file, path, attr, H5P_DEFAULT) <= 0;
}

/* ---- stages ---- */

static void stage_path(char *buf, size_t cap, const char *stage) { snprintf(buf, cap, "/stages/%s", stage); }

int results_stage_status(struct results_file *r, const char *stage, char *status, size_t cap)
{
    char path[512];
    stage_path(path, sizeof path, stage);
    status[0] = '\0';
    if (!path_exists((hid_t)r->file, path) || H5Aexists_by_name((hid_t)r->file, path, "status", H5P_DEFAULT) <= 0)
        return CIRCD_OK;
    return results_get_attr_str(r, path, "status", status, cap);
}

int results_stage_begin(struct results_file *r, const char *stage, int rank_count)
{
    char path[512], started[32];
    stage_path(path, sizeof path, stage);
    now_iso(r, started);
    int rc;
    if ((rc = results_set_attr_str(r, path, "status", "running")) ||
        (rc = results_set_attr_str(r, path, "started", started)) ||
        (rc = results_set_attr_i64(r, path, "rank_count", rank_count)))
        return rc;
    return results_flush(r);
}

int results_stage_done(struct results_file *r, const char *stage)
{
    char path[512], finished[32];
    stage_path(path, sizeof path, stage);
    int rc = results_flush(r); /* the stage's data reach the file before its status says so */
    if (rc) return rc;
    now_iso(r, finished);
    if ((rc = results_set_attr_str(r, path, "finished", finished)) ||
        (rc = results_set_attr_str(r, path, "status", "done")))
        return rc;
    return results_flush(r);
}

/* ---- datasets ---- */

static hid_t create_dataset(struct results_file *r, const char *path, hid_t type, int ndim, const uint64_t *dims)
{
    if (ndim < 1 || ndim > 4) { err_set(CIRCD_EINTERNAL, "%s: dataset %s: rank %d", r->path, path, ndim); return -1; }
    if (path_exists((hid_t)r->file, path) && H5Ldelete((hid_t)r->file, path, H5P_DEFAULT) < 0) {
        io_error(r, "replace dataset", path);
        return -1;
    }
    hsize_t hd[4];
    for (int i = 0; i < ndim; i++) hd[i] = dims[i];
    hid_t space = H5Screate_simple(ndim, hd, NULL), lcpl = link_create_plist();
    hid_t d = H5Dcreate2((hid_t)r->file, path, type, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    H5Pclose(lcpl);
    H5Sclose(space);
    if (d < 0) io_error(r, "create dataset", path);
    return d;
}

/* Writes rows [row0, row0+n_rows) from `data` (memory type mtype) with a collective transfer. */
static int write_rows(struct results_file *r, hid_t d, const char *path, hid_t mtype, int ndim,
                      const uint64_t *dims, uint64_t row0, uint64_t n_rows, const void *data)
{
    hsize_t start[4] = {0}, count[4];
    for (int i = 0; i < ndim; i++) count[i] = dims[i];
    start[0] = row0;
    count[0] = n_rows;
    hid_t fspace = H5Dget_space(d), mspace = H5Screate_simple(ndim, count, NULL);
    if (n_rows == 0) {
        H5Sselect_none(fspace);
        H5Sselect_none(mspace);
    } else {
        H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL);
    }
    hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
    H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE);
    herr_t e = H5Dwrite(d, mtype, mspace, fspace, dxpl, data);
    H5Pclose(dxpl);
    H5Sclose(mspace);
    H5Sclose(fspace);
    return e < 0 ? io_error(r, "write", path) : CIRCD_OK;
}

static int write_whole(struct results_file *r, const char *path, hid_t ftype, hid_t mtype, int ndim,
                       const uint64_t *dims, const void *data)
{
    hid_t d = create_dataset(r, path, ftype, ndim, dims);
    if (d < 0) return CIRCD_EIO;
    /* Every rank holds the same data; rank 0 writes it, the others join the collective call with nothing. */
    int rc = write_rows(r, d, path, mtype, ndim, dims, 0, r->rank == 0 ? dims[0] : 0, data);
    H5Dclose(d);
    return rc;
}

int results_write_f32(struct results_file *r, const char *path, int ndim, const uint64_t *dims, const float *data)
{
    return write_whole(r, path, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, ndim, dims, data);
}

int results_write_i32(struct results_file *r, const char *path, int ndim, const uint64_t *dims, const int32_t *data)
{
    return write_whole(r, path, H5T_STD_I32LE, H5T_NATIVE_INT32, ndim, dims, data);
}

static int write_rows_new(struct results_file *r, const char *path, hid_t ftype, hid_t mtype, int ndim,
                          const uint64_t *dims, uint64_t row0, uint64_t n_rows, const void *rows)
{
    if (row0 + n_rows > dims[0])
        return err_set(CIRCD_EINTERNAL, "%s: rows [%llu, %llu) outside dataset %s of %llu rows", r->path,
                       (unsigned long long)row0, (unsigned long long)(row0 + n_rows), path,
                       (unsigned long long)dims[0]);
    hid_t d = create_dataset(r, path, ftype, ndim, dims);
    if (d < 0) return CIRCD_EIO;
    int rc = write_rows(r, d, path, mtype, ndim, dims, row0, n_rows, rows);
    H5Dclose(d);
    return rc;
}

int results_write_f32_rows(struct results_file *r, const char *path, int ndim, const uint64_t *dims,
                           uint64_t row0, uint64_t n_rows, const float *rows)
{
    return write_rows_new(r, path, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, ndim, dims, row0, n_rows, rows);
}

int results_write_i32_rows(struct results_file *r, const char *path, int ndim, const uint64_t *dims,
                           uint64_t row0, uint64_t n_rows, const int32_t *rows)
{
    return write_rows_new(r, path, H5T_STD_I32LE, H5T_NATIVE_INT32, ndim, dims, row0, n_rows, rows);
}

int results_read_f32(struct results_file *r, const char *path, float *data, size_t cap, int *ndim, uint64_t *dims)
{
    if (read_from_base(r, path, NULL)) return results_read_f32(r->base, path, data, cap, ndim, dims);
    if (!path_exists((hid_t)r->file, path))
        return err_set(CIRCD_EINPUT, "%s: no dataset %s", r->path, path);
    hid_t d = H5Dopen2((hid_t)r->file, path, H5P_DEFAULT);
    if (d < 0) return err_set(CIRCD_EINPUT, "%s: %s is not a dataset", r->path, path);
    hid_t space = H5Dget_space(d);
    hsize_t hd[4];
    int rank = H5Sget_simple_extent_ndims(space);
    int rc = CIRCD_OK;
    if (rank < 1 || rank > 4) {
        rc = err_set(CIRCD_EINPUT, "%s: dataset %s has rank %d, expected 1 to 4", r->path, path, rank);
    } else {
        H5Sget_simple_extent_dims(space, hd, NULL);
        size_t n = 1;
        for (int i = 0; i < rank; i++) { dims[i] = hd[i]; n *= hd[i]; }
        *ndim = rank;
        if (n > cap) rc = err_set(CIRCD_EINPUT, "%s: dataset %s holds %zu values, room for %zu", r->path, path, n, cap);
        else if (H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
            rc = err_set(CIRCD_EINPUT, "%s: dataset %s cannot be read as float", r->path, path);
    }
    H5Sclose(space);
    H5Dclose(d);
    return rc;
}

/* ---- attributes ---- */

static int write_attr(struct results_file *r, const char *path, const char *name, hid_t type, const void *value)
{
    int rc = ensure_group(r, path);
    if (rc) return rc;
    hid_t file = (hid_t)r->file;
    if (H5Aexists_by_name(file, path, name, H5P_DEFAULT) > 0 && H5Adelete_by_name(file, path, name, H5P_DEFAULT) < 0)
        return io_error(r, "replace attribute on", path);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate_by_name(file, path, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Sclose(space);
    if (a < 0) return io_error(r, "create attribute on", path);
    herr_t e = H5Awrite(a, type, value);
    H5Aclose(a);
    return e < 0 ? io_error(r, "write attribute on", path) : CIRCD_OK;
}

int results_set_attr_str(struct results_file *r, const char *path, const char *name, const char *value)
{
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, strlen(value) + 1);
    H5Tset_strpad(type, H5T_STR_NULLTERM);
    H5Tset_cset(type, H5T_CSET_UTF8);
    int rc = write_attr(r, path, name, type, value);
    H5Tclose(type);
    return rc;
}

int results_set_attr_f64(struct results_file *r, const char *path, const char *name, double value)
{
    return write_attr(r, path, name, H5T_NATIVE_DOUBLE, &value);
}

int results_set_attr_i64(struct results_file *r, const char *path, const char *name, int64_t value)
{
    return write_attr(r, path, name, H5T_NATIVE_INT64, &value);
}

static hid_t open_attr(struct results_file *r, const char *path, const char *name)
{
    hid_t file = (hid_t)r->file;
    if (!path_exists(file, path) || H5Aexists_by_name(file, path, name, H5P_DEFAULT) <= 0) {
        err_set(CIRCD_EINPUT, "%s: %s has no attribute \"%s\"", r->path, path, name);
        return -1;
    }
    hid_t a = H5Aopen_by_name(file, path, name, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0) err_set(CIRCD_EINPUT, "%s: cannot open attribute \"%s\" of %s", r->path, name, path);
    return a;
}

int results_get_attr_str(struct results_file *r, const char *path, const char *name, char *value, size_t cap)
{
    if (read_from_base(r, path, name)) return results_get_attr_str(r->base, path, name, value, cap);
    hid_t a = open_attr(r, path, name);
    if (a < 0) return CIRCD_EINPUT;
    hid_t type = H5Aget_type(a);
    int rc = CIRCD_OK;
    if (H5Tget_class(type) != H5T_STRING || H5Tis_variable_str(type) > 0) {
        rc = err_set(CIRCD_EINPUT, "%s: attribute \"%s\" of %s is not a fixed-length string", r->path, name, path);
    } else {
        size_t size = H5Tget_size(type);
        char *buf = malloc(size + 1);
        if (!buf) rc = err_set(CIRCD_ENOMEM, "out of memory");
        else if (H5Aread(a, type, buf) < 0) rc = io_error(r, "read attribute of", path);
        if (!rc) {
            buf[size] = '\0';
            if (strlen(buf) + 1 > cap)
                rc = err_set(CIRCD_EINPUT, "%s: attribute \"%s\" of %s is longer than %zu bytes", r->path, name,
                             path, cap - 1);
            else memcpy(value, buf, strlen(buf) + 1);
        }
        free(buf);
    }
    H5Tclose(type);
    H5Aclose(a);
    return rc;
}

int results_get_attr_f64(struct results_file *r, const char *path, const char *name, double *value)
{
    if (read_from_base(r, path, name)) return results_get_attr_f64(r->base, path, name, value);
    hid_t a = open_attr(r, path, name);
    if (a < 0) return CIRCD_EINPUT;
    hid_t type = H5Aget_type(a);
    H5T_class_t cls = H5Tget_class(type);
    int rc = CIRCD_OK;
    if (cls != H5T_FLOAT && cls != H5T_INTEGER)
        rc = err_set(CIRCD_EINPUT, "%s: attribute \"%s\" of %s is not a number", r->path, name, path);
    else if (H5Aread(a, H5T_NATIVE_DOUBLE, value) < 0)
        rc = io_error(r, "read attribute of", path);
    H5Tclose(type);
    H5Aclose(a);
    return rc;
}
