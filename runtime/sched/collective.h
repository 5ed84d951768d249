/* collective.h — sums over the ranks of a communicator of buffers that live in a kernels backend's memory
 * (kernels/backend.h): the gradient all-reduce of data-parallel distillation, and AtP score sums where a stage
 * computes on a GPU. On the CPU backend it is MPI_Allreduce (MPI_IN_PLACE) over the communicator. On a GPU backend
 * (a build with CIRCD_HAVE_CUDA) it is NCCL, bootstrapped over MPI as llm.c does: rank 0 makes the ncclUniqueId,
 * MPI_Bcast shares it, every rank joins with ncclCommInitRank at its rank of the communicator, and each sum is an
 * ncclAllReduce on the default stream (the one the CUDA kernels use) followed by cudaStreamSynchronize.
 * One MPI rank drives one GPU: collective_gpu_index picks local rank % GPU count.
 *
 * Determinism: every rank receives the same bits (MPI and NCCL reduce each element along one path and share the
 * result), so replicas that take the same optimizer step stay identical. The result is NOT independent of the
 * rank count: a float sum over R partial sums is added in an order that depends on R and on the library's
 * algorithm, so R ranks match 1 rank only within rounding (a few ulps per element), not bit for bit. Where the
 * order must be fixed, sched/reduce.h adds double partial sums in rank order instead.
 *
 * Errors are returned on the rank that saw them; collective_open agrees on its result over the communicator (every
 * rank fails together). The sums themselves are collective: every rank must call them with the same n. */
#ifndef CIRCD_SCHED_COLLECTIVE_H
#define CIRCD_SCHED_COLLECTIVE_H

#include <mpi.h>
#include <stddef.h>

#include "kernels/backend.h"

struct collective {
    MPI_Comm comm;                          /* borrowed; MPI_COMM_NULL when not open */
    int rank, size;
    const struct kernels_backend *backend;  /* where the buffers live */
    void *nccl;                             /* the ncclComm_t on a GPU backend with more than one rank, else NULL */
};

/* Opens c over comm for buffers in k's memory (k NULL = the CPU backend). Collective over comm: on a GPU backend
 * with several ranks it creates the NCCL communicator (every rank on its own GPU, the one k was opened on). Returns
 * CIRCD_OK on every rank, or the same failure on every rank (CIRCD_EINPUT for MPI_COMM_NULL, a GPU backend in a
 * build without CUDA, or an NCCL failure, named with ncclGetErrorString); c is then closed. */
int collective_open(struct collective *c, MPI_Comm comm, const struct kernels_backend *k);
/* buf[0..n) := the sum over the ranks of their buf, in place, in the backend's memory. Collective; n the same on
 * every rank (n = 0 does nothing). CIRCD_EINPUT for an unopened c or a NULL buffer with n > 0, CIRCD_EIO naming
 * the MPI / NCCL / CUDA failure. */
int collective_allreduce_sum_f32(struct collective *c, float *buf, size_t n);
/* The same for doubles (score sums). */
int collective_allreduce_sum_f64(struct collective *c, double *buf, size_t n);
/* Frees the NCCL communicator (not comm); c is zeroed with comm = MPI_COMM_NULL. Closing twice is harmless. */
void collective_close(struct collective *c);

/* The calling rank's index among the ranks of comm that share its node (MPI_Comm_split_type with
 * MPI_COMM_TYPE_SHARED), or -1 with an error set if MPI fails. Collective over comm. */
int collective_local_rank(MPI_Comm comm);
/* The GPU this rank should drive: local rank % GPU count (kernels_backend_gpu_count), or -1 when this build or
 * node has no GPU (not an error). Collective over comm. Pass the communicator of every rank of the job (the
 * experiment's world communicator, e.g. once at start): with a sub-group's communicator two groups on one node
 * would count local ranks separately and pick the same GPU. */
int collective_gpu_index(MPI_Comm comm);

#endif
