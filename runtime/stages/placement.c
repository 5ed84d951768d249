/* placement.c — implementation of placement.h. */
#include "stages/placement.h"

#include <stdio.h>
#include <string.h>

#include "util/error.h"

const char *placement_unavailable(enum spec_device device)
{
    if (device == SPEC_DEVICE_CPU) return NULL;
    if (!kernels_backend_has_cuda()) return "this circd was built without CUDA (configure with -DCIRCD_CUDA=ON)";
    if (kernels_backend_gpu_count() < 1) return "the CUDA runtime sees no GPU on this machine";
    return NULL;
}

int placement_open(struct placement *p, enum spec_device device, enum spec_precision precision, int local_rank,
                   const char *who)
{
    memset(p, 0, sizeof *p);
    snprintf(p->who, sizeof p->who, "%s", who);
    if (device == SPEC_DEVICE_CPU) {
        if (precision == SPEC_PRECISION_BF16)
            return err_set(CIRCD_EINPUT, "%s: precision bf16 needs device cuda (the CPU computes in fp32)", who);
        return CIRCD_OK;
    }
    const char *why = placement_unavailable(device);
    if (why) return err_set(CIRCD_EINPUT, "%s: %s", who, why);
    int gpus = kernels_backend_gpu_count();
    const struct kernels_backend *b = kernels_backend_open(spec_device_names[device], local_rank % gpus);
    if (!b) return err_prefix(CIRCD_EINPUT, "%s: ", who);
    if (b->set_precision(precision == SPEC_PRECISION_BF16 ? KERNELS_BF16 : KERNELS_FP32) != 0)
        return err_set(CIRCD_EINPUT, "%s: precision %s: %s", who, spec_precision_names[precision],
                       b->error() ? b->error() : "not offered by this backend");
    p->device = device;
    p->precision = precision;
    p->backend = b;
    return CIRCD_OK;
}

int placement_apply(const struct placement *p, struct llama_model *m)
{
    if (!p->backend) return CIRCD_OK;
    int rc = model_use_backend(m, p->backend);
    return rc ? err_prefix(rc, "%s: ", p->who) : CIRCD_OK;
}

int placement_parse_device(const char *text, const char *flag, enum spec_device *device)
{
    for (int i = 0; spec_device_names[i]; i++)
        if (!strcmp(text, spec_device_names[i])) {
            *device = (enum spec_device)i;
            return CIRCD_OK;
        }
    return err_set(CIRCD_EINPUT, "%s: found \"%s\", expected cpu or cuda", flag, text);
}
