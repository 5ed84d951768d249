/* collective.c — implementation of collective.h: MPI_Allreduce in place on host memory, NCCL (bootstrapped over MPI)
 * on a GPU backend in a CIRCD_HAVE_CUDA build. */
#include "sched/collective.h"

#include <string.h>

#include "sched/reduce.h"
#include "util/error.h"

#ifdef CIRCD_HAVE_CUDA
#include <cuda_runtime_api.h>
#include <nccl.h>
#endif

#define MPI_CHUNK ((size_t)1 << 30) /* elements per MPI_Allreduce call: MPI counts are ints */

static int opened(const struct collective *c)
{
    return c && c->comm != MPI_COMM_NULL && c->backend;
}

#ifdef CIRCD_HAVE_CUDA
/* The NCCL communicator over c's ranks (c->rank, c->size set): rank 0's unique id broadcast over MPI, then every
 * rank joins on the GPU its backend drives. Collective over c->comm; the result is agreed by the caller. */
static int nccl_open(struct collective *c)
{
    ncclUniqueId id;
    memset(&id, 0, sizeof id);
    int rc = CIRCD_OK;
    if (c->rank == 0) {
        ncclResult_t r = ncclGetUniqueId(&id);
        if (r != ncclSuccess) rc = err_set(CIRCD_EINPUT, "NCCL: ncclGetUniqueId: %s", ncclGetErrorString(r));
    }
    if ((rc = reduce_agree(rc, c->comm))) return rc;
    MPI_Bcast(&id, (int)sizeof id, MPI_BYTE, 0, c->comm);
    cudaError_t e = cudaSetDevice(c->backend->device_index);
    if (e != cudaSuccess)
        rc = err_set(CIRCD_EINPUT, "NCCL: cudaSetDevice(%d): %s", c->backend->device_index, cudaGetErrorString(e));
    if ((rc = reduce_agree(rc, c->comm))) return rc; /* every rank joins ncclCommInitRank, or none does */
    ncclComm_t comm;
    ncclResult_t r = ncclCommInitRank(&comm, c->size, id, c->rank);
    if (r != ncclSuccess)
        return err_set(CIRCD_EINPUT, "NCCL: ncclCommInitRank (rank %d of %d, GPU %d): %s", c->rank, c->size,
                       c->backend->device_index, ncclGetErrorString(r));
    c->nccl = comm;
    return CIRCD_OK;
}

static int nccl_allreduce(struct collective *c, void *buf, size_t n, ncclDataType_t type)
{
    if (c->backend->sync && c->backend->sync())
        return err_set(CIRCD_EIO, "all-reduce: the GPU failed before it: %s",
                       c->backend->error && c->backend->error() ? c->backend->error() : "unknown error");
    ncclResult_t r = ncclAllReduce(buf, buf, n, type, ncclSum, (ncclComm_t)c->nccl, 0);
    if (r != ncclSuccess)
        return err_set(CIRCD_EIO, "NCCL: ncclAllReduce of %zu values (rank %d of %d): %s", n, c->rank, c->size,
                       ncclGetErrorString(r));
    cudaError_t e = cudaStreamSynchronize(0);
    if (e != cudaSuccess)
        return err_set(CIRCD_EIO, "NCCL: cudaStreamSynchronize after ncclAllReduce: %s", cudaGetErrorString(e));
    return CIRCD_OK;
}
#endif

int collective_open(struct collective *c, MPI_Comm comm, const struct kernels_backend *k)
{
    if (!c) return err_set(CIRCD_EINPUT, "collective_open: no collective");
    memset(c, 0, sizeof *c);
    c->comm = MPI_COMM_NULL;
    if (comm == MPI_COMM_NULL) return err_set(CIRCD_EINPUT, "collective_open: MPI_COMM_NULL");
    if (!k) k = kernels_backend_cpu();
    MPI_Comm_rank(comm, &c->rank);
    MPI_Comm_size(comm, &c->size);
    c->comm = comm;
    c->backend = k;
    int rc = CIRCD_OK;
    if (!k->host_memory && c->size > 1) {
#ifdef CIRCD_HAVE_CUDA
        rc = nccl_open(c);
#else
        rc = err_set(CIRCD_EINPUT, "collective on device %s: this circd was built without CUDA/NCCL (configure with "
                     "-DCIRCD_CUDA=ON)", k->name);
#endif
    }
    rc = reduce_agree(rc, comm);
    if (rc) collective_close(c);
    return rc;
}

static int allreduce(struct collective *c, void *buf, size_t n, int is_double)
{
    if (!opened(c)) return err_set(CIRCD_EINPUT, "all-reduce on a collective that is not open");
    if (n == 0) return CIRCD_OK;
    if (!buf) return err_set(CIRCD_EINPUT, "all-reduce of %zu values from a NULL buffer", n);
    if (c->size == 1) return CIRCD_OK;
#ifdef CIRCD_HAVE_CUDA
    if (c->nccl) return nccl_allreduce(c, buf, n, is_double ? ncclFloat64 : ncclFloat32);
#endif
    if (!c->backend->host_memory)
        return err_set(CIRCD_EINTERNAL, "all-reduce: device %s without its NCCL communicator", c->backend->name);
    size_t width = is_double ? sizeof(double) : sizeof(float);
    for (size_t first = 0; first < n; first += MPI_CHUNK) {
        size_t count = n - first < MPI_CHUNK ? n - first : MPI_CHUNK;
        int e = MPI_Allreduce(MPI_IN_PLACE, (char *)buf + first * width, (int)count,
                              is_double ? MPI_DOUBLE : MPI_FLOAT, MPI_SUM, c->comm);
        if (e != MPI_SUCCESS) {
            char text[MPI_MAX_ERROR_STRING];
            int len = 0;
            MPI_Error_string(e, text, &len);
            return err_set(CIRCD_EIO, "MPI_Allreduce of %zu values (rank %d of %d): %s", count, c->rank, c->size,
                           text);
        }
    }
    return CIRCD_OK;
}

int collective_allreduce_sum_f32(struct collective *c, float *buf, size_t n)
{
    return allreduce(c, buf, n, 0);
}

int collective_allreduce_sum_f64(struct collective *c, double *buf, size_t n)
{
    return allreduce(c, buf, n, 1);
}

void collective_close(struct collective *c)
{
    if (!c) return;
#ifdef CIRCD_HAVE_CUDA
    if (c->nccl) ncclCommDestroy((ncclComm_t)c->nccl);
#endif
    memset(c, 0, sizeof *c);
    c->comm = MPI_COMM_NULL;
}

int collective_local_rank(MPI_Comm comm)
{
    MPI_Comm node;
    if (comm == MPI_COMM_NULL) { err_set(CIRCD_EINPUT, "collective_local_rank: MPI_COMM_NULL"); return -1; }
    if (MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) != MPI_SUCCESS) {
        err_set(CIRCD_EIO, "MPI_Comm_split_type(MPI_COMM_TYPE_SHARED) failed");
        return -1;
    }
    int local;
    MPI_Comm_rank(node, &local);
    MPI_Comm_free(&node);
    return local;
}

int collective_gpu_index(MPI_Comm comm)
{
    int local = collective_local_rank(comm), gpus = kernels_backend_gpu_count();
    return local < 0 || gpus < 1 ? -1 : local % gpus;
}
