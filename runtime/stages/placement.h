/* placement.h — where models compute: a stage's device (spec `device:` / `devices:`, carried by its plan stage) or
 * a command's (`--device`). The backend is opened once per process on the GPU of the rank's node-local rank
 * (collective_local_rank of sched/collective.h, modulo the GPUs it sees: one MPI rank per GPU, as llm.c does), the
 * matmul precision is set on it, and each model is moved there right after it is loaded or created
 * (model_use_backend). On the CPU all of it is a no-op. A device this process cannot use is an input error naming
 * who asked for it and why, before any work. */
#ifndef CIRCD_STAGES_PLACEMENT_H
#define CIRCD_STAGES_PLACEMENT_H

#include "kernels/backend.h"
#include "model/model.h"
#include "spec/spec.h"

struct placement {
    enum spec_device device;
    enum spec_precision precision;
    const struct kernels_backend *backend; /* NULL on the CPU */
    char who[400];  /* the asker, for messages: "[atp-teacher] device cuda (x.yaml:12: devices.atp)", "--device cuda" */
};

/* NULL when this process can compute on `device`; else why not: "this circd was built without CUDA (configure with
 * -DCIRCD_CUDA=ON)" or "the CUDA runtime sees no GPU on this machine". */
const char *placement_unavailable(enum spec_device device);
/* Opens `device` (the GPU local_rank % GPU count) with `precision` for its matmuls into p; `who` names the asker.
 * CIRCD_EINPUT "<who>: <reason>" when the device cannot be used (also bf16 on the CPU). A zeroed placement is the
 * CPU. */
int placement_open(struct placement *p, enum spec_device device, enum spec_precision precision, int local_rank,
                   const char *who);
/* Moves m's computation to p's device (no-op on the CPU); errors are prefixed with p->who. */
int placement_apply(const struct placement *p, struct llama_model *m);
/* A --device value: "cpu" or "cuda"; CIRCD_EINPUT naming `flag` and the choices otherwise. */
int placement_parse_device(const char *text, const char *flag, enum spec_device *device);

#endif
