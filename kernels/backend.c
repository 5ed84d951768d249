/* backend.c — finding a kernels backend by name (kernels/backend.h): the CPU always, the CUDA backend where this
 * build has it (CIRCD_HAVE_CUDA, from -DCIRCD_CUDA=ON) and a GPU answers. */
#include "kernels/backend.h"

#include <string.h>

#include "util/error.h"
#ifdef CIRCD_HAVE_CUDA
#include "kernels/cuda/kernels_cuda.h"
#endif

int kernels_backend_has_cuda(void)
{
#ifdef CIRCD_HAVE_CUDA
    return 1;
#else
    return 0;
#endif
}

int kernels_backend_gpu_count(void)
{
#ifdef CIRCD_HAVE_CUDA
    return kernels_cuda_device_count();
#else
    return 0;
#endif
}

const struct kernels_backend *kernels_backend_open(const char *name, int device_index)
{
    if (!name || strcmp(name, "cpu") == 0) return kernels_backend_cpu();
    if (strcmp(name, "cuda") != 0) {
        err_set(CIRCD_EINPUT, "unknown device \"%s\": expected cpu or cuda", name);
        return NULL;
    }
#ifdef CIRCD_HAVE_CUDA
    const struct kernels_backend *k = kernels_cuda_backend(device_index);
    if (!k) err_set(CIRCD_EINPUT, "device cuda:%d: %s", device_index,
                    kernels_cuda_error() ? kernels_cuda_error() : "no usable GPU");
    return k;
#else
    (void)device_index;
    err_set(CIRCD_EINPUT, "device cuda: this circd was built without CUDA (configure with -DCIRCD_CUDA=ON)");
    return NULL;
#endif
}
