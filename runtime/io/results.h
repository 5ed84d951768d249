/* results.h — the experiment's one results file, results.h5 (parallel HDF5 through the MPI-IO driver), in the
 * layout of DESIGN.md: /spec (the YAML text), /stages/<name> (status, started, finished, rank_count), and data under
 * any path (/atp/<model>/nodes, /circuits/<model>, /runs/<method>/<seed>/metrics, /tables/comparison, ...).
 *
 * Every function is COLLECTIVE over the communicator the file was opened with: all ranks call it in the same order
 * with the same path arguments (HDF5 metadata operations are collective). Data passed to results_write_f32 and the
 * attribute setters must be the same on every rank; results_write_f32_rows lets each rank write its own rows.
 *
 * Completion protocol: a stage's data are written, the file is flushed, and only then is the stage's `status`
 * attribute set to "done" and flushed again; a stage whose status is not "done" is redone (from its checkpoint).
 * Errors are CIRCD_EIO (the file) or CIRCD_EINPUT (a foreign or inconsistent file) with the path in the message. */
#ifndef CIRCD_IO_RESULTS_H
#define CIRCD_IO_RESULTS_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#define RESULTS_FORMAT "circd-results"
#define RESULTS_VERSION 1

struct results_file {
    int64_t file;     /* hid_t */
    MPI_Comm comm;
    int rank, size;
    char path[4096];
    /* Read fallback (not owned): when set, the readers (results_exists, results_read_f32, results_get_attr_*)
     * look here for what this file does not hold. The scheduler gives a stage its own file on its rank group's
     * communicator, layered over the experiment's results.h5 opened read-only. */
    struct results_file *base;
};

/* Opens `path` for writing, creating it if needed. A new file gets /spec with `spec_text` (the experiment YAML);
 * an existing one must carry the same spec text (CIRCD_EINPUT otherwise: a results file of another experiment). */
int results_open(struct results_file *r, const char *path, MPI_Comm comm, const char *spec_text);
/* Opens an existing file read-only (analysis); CIRCD_EINPUT if it is not a circd results file. */
int results_open_readonly(struct results_file *r, const char *path, MPI_Comm comm);
int results_close(struct results_file *r);
int results_flush(struct results_file *r);

/* Stage status: "" when the stage was never started, else "running" or "done". */
int results_stage_status(struct results_file *r, const char *stage, char *status, size_t cap);
int results_stage_begin(struct results_file *r, const char *stage, int rank_count);
/* Flushes everything written so far, then marks the stage done (with its finish time) and flushes again. */
int results_stage_done(struct results_file *r, const char *stage);

/* Datasets of float32, created (with intermediate groups) or replaced. dims has ndim entries (ndim <= 4). */
int results_write_f32(struct results_file *r, const char *path, int ndim, const uint64_t *dims, const float *data);
/* Each rank writes rows [row0, row0 + n_rows) of a [total_rows, dims...] dataset (collective transfer). */
int results_write_f32_rows(struct results_file *r, const char *path, int ndim, const uint64_t *dims,
                           uint64_t row0, uint64_t n_rows, const float *rows);
int results_write_i32(struct results_file *r, const char *path, int ndim, const uint64_t *dims, const int32_t *data);
int results_write_i32_rows(struct results_file *r, const char *path, int ndim, const uint64_t *dims,
                           uint64_t row0, uint64_t n_rows, const int32_t *rows);
/* Reads a float32/int dataset into data (converted to float), which holds `cap` values; the dims are returned. */
int results_read_f32(struct results_file *r, const char *path, float *data, size_t cap, int *ndim, uint64_t *dims);
/* 1 if an object (group or dataset) exists at path, else 0. */
int results_exists(struct results_file *r, const char *path);

/* Attributes on a group or dataset at `path` (a missing group is created for the setters). */
int results_set_attr_str(struct results_file *r, const char *path, const char *name, const char *value);
int results_set_attr_f64(struct results_file *r, const char *path, const char *name, double value);
int results_set_attr_i64(struct results_file *r, const char *path, const char *name, int64_t value);
/* Getters: CIRCD_EINPUT naming the path and attribute when missing or of another type. */
int results_get_attr_str(struct results_file *r, const char *path, const char *name, char *value, size_t cap);
int results_get_attr_f64(struct results_file *r, const char *path, const char *name, double *value);

/* Copies everything the results file at src_path holds (groups, float / int datasets, string / number attributes;
 * not its /format, /version, /created or /spec) into r, replacing what r has at the same paths. Collective over
 * r's communicator: every rank reads src_path and writes its own block of each dataset's rows. */
int results_merge_file(struct results_file *r, const char *src_path);
/* 1 if path exists but HDF5 cannot open it (a write interrupted by a crash), else 0. Not collective. */
int results_is_damaged(const char *path);

#endif
