/* reduce.c — implementation of reduce.h: partials gathered with MPI_Allgather in bounded chunks and summed in rank
 * order; errors agreed with one MPI_Allreduce (MAXLOC finds the lowest failed rank) and, on failure, its code and
 * message broadcast; on a GPU backend, sums staged through a device buffer and NCCL, the collective cached on the
 * communicator (an MPI attribute whose delete callback closes it). */
#include "sched/reduce.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched/collective.h"
#include "util/error.h"

#define REDUCE_CHUNK ((size_t)1 << 16) /* doubles per rank per gather round: the buffer is size * 512 KiB */

void shard_range(size_t n, int rank, int size, size_t *lo, size_t *hi)
{
    if (size < 1 || rank < 0 || rank >= size) { *lo = *hi = 0; return; }
    size_t base = n / (size_t)size, extra = n % (size_t)size, r = (size_t)rank;
    *lo = r * base + (r < extra ? r : extra);
    *hi = *lo + base + (r < extra);
}

void shard_range_comm(size_t n, MPI_Comm comm, size_t *lo, size_t *hi)
{
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    shard_range(n, rank, size, lo, hi);
}

int reduce_agree(int rc, MPI_Comm comm)
{
    int size, rank;
    MPI_Comm_size(comm, &size);
    if (size == 1) return rc;
    MPI_Comm_rank(comm, &rank);
    struct { int failed, rank; } mine = {rc != 0, rank}, first;
    MPI_Allreduce(&mine, &first, 1, MPI_2INT, MPI_MAXLOC, comm);
    if (!first.failed) return CIRCD_OK;
    int code = rc;
    char message[1024];
    snprintf(message, sizeof message, "%s", rank == first.rank ? err_msg() : "");
    MPI_Bcast(&code, 1, MPI_INT, first.rank, comm);
    MPI_Bcast(message, (int)sizeof message, MPI_CHAR, first.rank, comm);
    if (rc) return rc;
    return err_set(code ? code : CIRCD_EINTERNAL, "rank %d of %d: %s", first.rank, size, message);
}

int reduce_sum_f64_ordered(double *v, size_t n, MPI_Comm comm)
{
    int size;
    MPI_Comm_size(comm, &size);
    if (size == 1 || n == 0) return CIRCD_OK;
    size_t chunk = n < REDUCE_CHUNK ? n : REDUCE_CHUNK;
    double *all = xmalloc(chunk * (size_t)size * sizeof *all);
    int rc = reduce_agree(all ? CIRCD_OK : CIRCD_ENOMEM, comm);
    if (rc) { free(all); return rc; }
    for (size_t first = 0; first < n; first += chunk) {
        size_t count = n - first < chunk ? n - first : chunk;
        MPI_Allgather(v + first, (int)count, MPI_DOUBLE, all, (int)count, MPI_DOUBLE, comm);
        for (size_t i = 0; i < count; i++) {
            double sum = all[i];
            for (int r = 1; r < size; r++) sum += all[(size_t)r * count + i];
            v[first + i] = sum;
        }
    }
    free(all);
    return CIRCD_OK;
}

int reduce_check_same(const long long *v, int n, const char *what, MPI_Comm comm)
{
    int size;
    MPI_Comm_size(comm, &size);
    if (size == 1 || n <= 0) return CIRCD_OK;
    long long *lo = xmalloc(2 * (size_t)n * sizeof *lo);
    int rc = reduce_agree(lo ? CIRCD_OK : CIRCD_ENOMEM, comm);
    if (rc) { free(lo); return rc; }
    long long *hi = lo + n;
    MPI_Allreduce(v, lo, n, MPI_LONG_LONG, MPI_MIN, comm);
    MPI_Allreduce(v, hi, n, MPI_LONG_LONG, MPI_MAX, comm);
    for (int i = 0; i < n && !rc; i++)
        if (lo[i] != hi[i])
            rc = err_set(CIRCD_EINPUT, "%s differ between the %d ranks (value %d: from %lld to %lld)", what, size, i,
                         lo[i], hi[i]);
    free(lo);
    return rc;
}

/* ---- sums through NCCL where the stage computes on a GPU ---- */

static int collective_key = MPI_KEYVAL_INVALID;

static int drop_collective(MPI_Comm comm, int key, void *value, void *extra)
{
    (void)comm; (void)key; (void)extra;
    collective_close(value);
    free(value);
    return MPI_SUCCESS;
}

/* MPI_Finalize deletes MPI_COMM_SELF's attributes first (MPI's hook for work at termination): the key goes then. */
static int release_key(MPI_Comm comm, int key, void *value, void *extra)
{
    (void)comm; (void)key; (void)value; (void)extra;
    if (collective_key != MPI_KEYVAL_INVALID) MPI_Comm_free_keyval(&collective_key);
    return MPI_SUCCESS;
}

static int make_key(void)
{
    int finalizer;
    if (MPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, drop_collective, &collective_key, NULL) != MPI_SUCCESS)
        return err_set(CIRCD_EINTERNAL, "MPI_Comm_create_keyval failed");
    if (MPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, release_key, &finalizer, NULL) == MPI_SUCCESS) {
        MPI_Comm_set_attr(MPI_COMM_SELF, finalizer, NULL);
        MPI_Comm_free_keyval(&finalizer); /* gone for good once MPI_Finalize has deleted the attribute */
    }
    return CIRCD_OK;
}

/* The collective for backend k cached on comm, opened on the first call (collective over comm; every rank of comm
 * reaches the same reductions in the same order, so they create it together). */
static int cached_collective(MPI_Comm comm, const struct kernels_backend *k, struct collective **out)
{
    if (collective_key == MPI_KEYVAL_INVALID) {
        int rc = reduce_agree(make_key(), comm);
        if (rc) return rc;
    }
    struct collective *c = NULL;
    int found = 0;
    MPI_Comm_get_attr(comm, collective_key, &c, &found);
    if (found && c->backend == k) { *out = c; return CIRCD_OK; }
    if (found) MPI_Comm_delete_attr(comm, collective_key); /* another backend: reopen */
    c = xcalloc(1, sizeof *c);
    int rc = reduce_agree(c ? CIRCD_OK : CIRCD_ENOMEM, comm);
    if (!rc) rc = collective_open(c, comm, k); /* agreed inside */
    if (rc) { free(c); return rc; }
    MPI_Comm_set_attr(comm, collective_key, c);
    *out = c;
    return CIRCD_OK;
}

int reduce_sum_f64_on(double *v, size_t n, MPI_Comm comm, const struct kernels_backend *k)
{
    int size;
    MPI_Comm_size(comm, &size);
    if (!k || k->host_memory || size == 1 || n == 0) return reduce_sum_f64_ordered(v, n, comm);
    struct collective *c = NULL;
    int rc = cached_collective(comm, k, &c);
    if (rc) return rc;
    size_t bytes = n * sizeof *v;
    double *dev = k->alloc(bytes);
    if (!dev) rc = err_set(CIRCD_ENOMEM, "device %s: no room for %zu score sums (%s)", k->name, n,
                           k->error && k->error() ? k->error() : "allocation failed");
    if ((rc = reduce_agree(rc, comm))) return rc;
    k->copy(dev, v, bytes, KERNELS_HOST_TO_DEVICE);
    rc = collective_allreduce_sum_f64(c, dev, n);
    if (!rc) k->copy(v, dev, bytes, KERNELS_DEVICE_TO_HOST);
    if (!rc && k->error && k->error()) rc = err_set(CIRCD_EIO, "device %s: score sums: %s", k->name, k->error());
    k->release(dev);
    return reduce_agree(rc, comm);
}
