/* stage_circuit.c — the `circuit-<role>` stages: MIB's faithfulness evaluation (stages/circuit_job.h) of the
 * circuits the atp stage's scores give, at the spec's attribution level, circuit sizes, ablation and NFS size, on
 * the AtP set's pairs (sharded over the ranks of the stage's communicator); the NFS circuit is also written as MIB's
 * circuit JSON to <output>/circuits/<row>.json by rank 0. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sched/reduce.h"
#include "stages/circuit_job.h"
#include "stages/stages.h"
#include "util/error.h"

int stage_circuit(struct experiment *x, enum model_role role)
{
    char dir[4200], json[4300], prefix[64];
    role_model_dir(x, role, dir, sizeof dir);
    struct llama_model m;
    int rc = model_load_hf(&m, dir);
    if (!rc && (rc = experiment_place_model(x, &m))) model_free(&m);
    if (rc) return reduce_agree(rc, x->comm);
    const struct spec_circuit *sc = &x->spec->circuit;
    enum graph_level level = x->spec->atp.level == SPEC_ATP_EDGE ? GRAPH_LEVEL_EDGE : GRAPH_LEVEL_NODE;
    snprintf(json, sizeof json, "%s/circuits", x->output);
    if (x->rank == 0 && mkdir(json, 0777) != 0 && errno != EEXIST)
        rc = err_set(CIRCD_EIO, "%s: cannot create directory: %s", json, strerror(errno));
    snprintf(json, sizeof json, "%s/circuits/%s.json", x->output, role_row(role));
    struct circuit_job_options o = {level, sc->ablation == SPEC_ABLATION_MEAN ? ABLATION_MEAN : ABLATION_COUNTERFACTUAL,
                                    sc->sizes.items, sc->sizes.n, sc->nfs_size, json};
    struct circuit_graph g;
    struct pair_set pairs;
    memset(&pairs, 0, sizeof pairs);
    double *scores = NULL;
    if (!rc) rc = graph_init(&g, &m.config);
    else memset(&g, 0, sizeof g);
    if (!rc && !(scores = xmalloc((size_t)g.n_up * g.n_down * sizeof *scores))) rc = CIRCD_ENOMEM;
    rc = reduce_agree(rc, x->comm); /* the reads are collective */
    if (!rc) rc = circuit_scores_read(&x->results, role_row(role), level, &g, scores);
    if (!rc) rc = pair_set_build(&pairs, &x->tok, &x->format, &x->splits.atp, 0, experiment_atp_kind(x),
                                 x->spec->atp.batch, m.config.max_seq);
    snprintf(prefix, sizeof prefix, "[circuit-%s]", role_row(role));
    rc = reduce_agree(rc, x->comm);
    if (!rc) rc = circuit_job_run(&m, &pairs, scores, &o, &x->results, role_row(role), x->comm, prefix);
    free(scores);
    pair_set_free(&pairs);
    graph_free(&g);
    model_free(&m);
    return rc;
}
