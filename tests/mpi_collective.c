/* mpi_collective.c — sched/collective.h on 2 ranks with the CPU backend: float and double all-reduces sum exactly
 * (integer-valued numbers, so any order gives the same bits) in place on every rank, sizes 1, odd and large;
 * n = 0 does nothing; bad arguments (no collective, an unopened or closed one, a NULL buffer, MPI_COMM_NULL) are
 * CIRCD_EINPUT; a sub-communicator of one rank sums nothing away; AtP score sums through reduce_sum_f64_on are the
 * rank-ordered sums on the CPU; the local rank on one node is the world rank; and a GPU backend in a build without
 * CUDA is refused on every rank, by the collective and by the score sums. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched/collective.h"
#include "sched/reduce.h"
#include "testing.h"
#include "util/error.h"

static int rank, size;

/* rank r holds buf[i] = (i % 97) * (r + 1) - r: the sum over R ranks is (i % 97) R(R+1)/2 - R(R-1)/2. */
static double expected(size_t i)
{
    return (double)(i % 97) * size * (size + 1) / 2.0 - size * (size - 1) / 2.0;
}

static void test_sums(struct collective *c, size_t n)
{
    float *f = malloc((n ? n : 1) * sizeof *f);
    double *d = malloc((n ? n : 1) * sizeof *d);
    for (size_t i = 0; i < n; i++) f[i] = (float)(d[i] = (double)(i % 97) * (rank + 1) - rank);
    CHECK(collective_allreduce_sum_f32(c, f, n) == 0);
    CHECK(collective_allreduce_sum_f64(c, d, n) == 0);
    size_t wrong_f = 0, wrong_d = 0;
    for (size_t i = 0; i < n; i++) {
        wrong_f += f[i] != (float)expected(i);
        wrong_d += d[i] != expected(i);
    }
    if (rank == 0) printf("all-reduce of %zu values on %d ranks: %zu / %zu wrong (f32 / f64)\n", n, size, wrong_f,
                          wrong_d);
    CHECK(wrong_f == 0 && wrong_d == 0);
    free(f);
    free(d);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);

    struct collective c;
    CHECK(collective_open(&c, MPI_COMM_WORLD, NULL) == 0);
    CHECK(c.rank == rank && c.size == size && c.backend == kernels_backend_cpu() && c.nccl == NULL);
    test_sums(&c, 1);
    test_sums(&c, 1001);
    test_sums(&c, (size_t)1 << 20);

    /* n = 0 touches nothing, even with a NULL buffer; a NULL buffer with values is refused before any MPI call */
    float keep = 3.0f;
    CHECK(collective_allreduce_sum_f32(&c, &keep, 0) == 0 && keep == 3.0f);
    CHECK(collective_allreduce_sum_f32(&c, NULL, 0) == 0);
    CHECK(collective_allreduce_sum_f32(&c, NULL, 4) == CIRCD_EINPUT && strstr(err_msg(), "NULL") != NULL);
    CHECK(collective_allreduce_sum_f64(&c, NULL, 4) == CIRCD_EINPUT);
    collective_close(&c);
    CHECK(c.comm == MPI_COMM_NULL && c.backend == NULL);
    collective_close(&c); /* twice is harmless */
    CHECK(collective_allreduce_sum_f32(&c, &keep, 1) == CIRCD_EINPUT && strstr(err_msg(), "not open") != NULL);
    CHECK(keep == 3.0f);
    struct collective zeroed;
    memset(&zeroed, 0, sizeof zeroed);
    CHECK(collective_allreduce_sum_f32(&zeroed, &keep, 1) == CIRCD_EINPUT);
    CHECK(collective_allreduce_sum_f32(NULL, &keep, 1) == CIRCD_EINPUT);
    CHECK(collective_open(NULL, MPI_COMM_WORLD, NULL) == CIRCD_EINPUT);
    CHECK(collective_open(&c, MPI_COMM_NULL, NULL) == CIRCD_EINPUT && c.comm == MPI_COMM_NULL);

    /* each rank alone: the sum is its own buffer */
    MPI_Comm self;
    MPI_Comm_split(MPI_COMM_WORLD, rank, 0, &self);
    CHECK(collective_open(&c, self, kernels_backend_cpu()) == 0 && c.size == 1);
    float mine[3] = {1.5f, (float)rank, -2.0f};
    CHECK(collective_allreduce_sum_f32(&c, mine, 3) == 0);
    CHECK(mine[0] == 1.5f && mine[1] == (float)rank && mine[2] == -2.0f);
    collective_close(&c);
    MPI_Comm_free(&self);

    /* AtP score sums: on the CPU (or no backend) reduce_sum_f64_on is the rank-ordered sum, bit for bit */
    double ordered[3] = {0.1 * (rank + 1), 1e16, -(double)rank}, on_cpu[3], none[3];
    memcpy(on_cpu, ordered, sizeof ordered);
    memcpy(none, ordered, sizeof ordered);
    CHECK(reduce_sum_f64_ordered(ordered, 3, MPI_COMM_WORLD) == 0);
    CHECK(reduce_sum_f64_on(on_cpu, 3, MPI_COMM_WORLD, kernels_backend_cpu()) == 0);
    CHECK(reduce_sum_f64_on(none, 3, MPI_COMM_WORLD, NULL) == 0);
    CHECK(memcmp(on_cpu, ordered, sizeof ordered) == 0 && memcmp(none, ordered, sizeof ordered) == 0);
    CHECK(ordered[0] == 0.1 * 1 + 0.1 * 2 && ordered[2] == -(double)size * (size - 1) / 2);

    /* one node under the test's mpirun: local rank = world rank; no GPU in a CPU-only build */
    CHECK(collective_local_rank(MPI_COMM_WORLD) == rank);
    CHECK(collective_local_rank(MPI_COMM_NULL) == -1);
    if (!kernels_backend_has_cuda()) {
        CHECK(collective_gpu_index(MPI_COMM_WORLD) == -1);
        /* a GPU backend table (only its memory kind matters here) is refused on every rank without CUDA */
        struct kernels_backend fake = *kernels_backend_cpu();
        fake.name = "cuda";
        fake.host_memory = 0;
        fake.device_index = 0;
        int rc = collective_open(&c, MPI_COMM_WORLD, &fake);
        if (rank == 0) printf("GPU collective without CUDA: %s\n", err_msg());
        CHECK(rc == CIRCD_EINPUT && strstr(err_msg(), "without CUDA") != NULL && c.comm == MPI_COMM_NULL);
        double sums[2] = {1, 2};
        CHECK(reduce_sum_f64_on(sums, 2, MPI_COMM_WORLD, &fake) == CIRCD_EINPUT && sums[0] == 1 && sums[1] == 2);
    } else {
        int gpu = collective_gpu_index(MPI_COMM_WORLD), gpus = kernels_backend_gpu_count();
        CHECK(gpus > 0 ? gpu == rank % gpus : gpu == -1);
    }

    int failed = testing_finish();
    MPI_Finalize();
    return failed;
}
