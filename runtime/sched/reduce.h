/* reduce.h — deterministic reductions for work sharded over the ranks of a communicator (AtP over the dataset,
 * circuit evaluation, test sets): a contiguous block partition of n items, sums of per-rank partials added in rank
 * order on every rank (never MPI_Allreduce's own order), so that every rank holds bit-identical totals and N ranks
 * equal one rank within rounding; and agreement on errors before collective calls, so that a rank that failed makes
 * every rank of the group return an error (carrying its message) instead of leaving the others blocked.
 *
 * Where a stage computes on a GPU, reduce_sum_f64_on sends the sums through NCCL instead (sched/collective.h).
 *
 * Every function except shard_range is collective over comm; with one rank they cost nothing. */
#ifndef CIRCD_SCHED_REDUCE_H
#define CIRCD_SCHED_REDUCE_H

#include <mpi.h>
#include <stddef.h>

#include "kernels/backend.h"

/* Items [*lo, *hi) of n for rank `rank` of `size`: contiguous blocks in rank order, the first n % size ranks one
 * item longer; ranks past n get an empty block. */
void shard_range(size_t n, int rank, int size, size_t *lo, size_t *hi);
/* shard_range for the calling rank of comm. */
void shard_range_comm(size_t n, MPI_Comm comm, size_t *lo, size_t *hi);

/* v[0..n) := the sum over the ranks of their v, added in double precision in rank order (rank 0's + rank 1's + ...),
 * the same bits on every rank. n must be the same on every rank. CIRCD_ENOMEM on every rank when any rank cannot
 * allocate its gather buffer. */
int reduce_sum_f64_ordered(double *v, size_t n, MPI_Comm comm);

/* reduce_sum_f64_ordered for a stage whose model computes on backend k (AtP score sums): on the CPU (k NULL or
 * host memory) or on one rank, exactly reduce_sum_f64_ordered. On a GPU backend the sums go through NCCL
 * (sched/collective.h): the per-rank partial sums — accumulated on the host, in double, because the hook gradients
 * AtP reads are host buffers — are copied into a device buffer, summed there with collective_allreduce_sum_f64 and
 * copied back. Every rank then holds the same bits, but in NCCL's order of addition, not rank order: N ranks
 * equal one rank within double rounding (far below the 1e-5 the tests ask). The NCCL communicator is created on
 * the first such call on comm (collective over comm) and kept as an attribute of comm until comm is freed. Errors
 * agreed over comm. */
int reduce_sum_f64_on(double *v, size_t n, MPI_Comm comm, const struct kernels_backend *k);

/* Error agreement: every rank passes its own return code; returns 0 on every rank when all are 0. Otherwise every
 * rank returns nonzero: a failed rank its own code and message, the others the code of the lowest failed rank with
 * "rank R of N: <its message>" as their error message (so rank 0 can report what went wrong elsewhere). */
int reduce_agree(int rc, MPI_Comm comm);

/* 0 on every rank when every rank passed the same v[0..n) (n the same everywhere), else CIRCD_EINPUT on every rank
 * with "<what> differ between the ranks ...": for inputs of a sharded job that every rank must agree on. */
int reduce_check_same(const long long *v, int n, const char *what, MPI_Comm comm);

#endif
