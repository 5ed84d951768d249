/* stage_atp.c — the `atp-<role>` and `patch-<role>` stages: circuit discovery (stages/discovery.h) of a trained
 * model with the experiment's first AtP counterfactual kind, sharded over the ranks of the stage's communicator —
 * atp: the attribution scores over the whole AtP set at the spec's level and options; patch: exact activation
 * patching of every node on the first atp.exact_patching_samples pairs, the agreement of AtP with it, and the AtP*
 * variants. The two are independent and may run side by side on different ranks. */
#include <stdio.h>
#include <string.h>

#include "sched/reduce.h"
#include "stages/discovery.h"
#include "stages/stages.h"
#include "util/error.h"

enum arith_cf_kind experiment_atp_kind(const struct experiment *x)
{
    unsigned mask = x->spec->data.atp_counterfactuals;
    for (int k = 0; k < ARITH_CF_COUNT; k++)
        if (mask & (1u << k)) return (enum arith_cf_kind)k;
    return ARITH_CF_RANDOM;
}

static int run_part(struct experiment *x, enum model_role role, enum discovery_part part)
{
    char dir[4200], prefix[64];
    role_model_dir(x, role, dir, sizeof dir);
    struct llama_model m;
    int rc = model_load_hf(&m, dir);
    if (!rc && (rc = experiment_place_model(x, &m))) model_free(&m);
    if (rc) return reduce_agree(rc, x->comm);
    const struct spec_atp *a = &x->spec->atp;
    struct discovery_options o = {a->level == SPEC_ATP_EDGE ? GRAPH_LEVEL_EDGE : GRAPH_LEVEL_NODE, a->ig_steps,
                                  a->qk_fix, a->grad_drop, (size_t)a->exact_patching_samples, NULL, part};
    struct pair_set pairs, sample;
    memset(&sample, 0, sizeof sample);
    enum arith_cf_kind kind = experiment_atp_kind(x);
    /* The patch stage needs only the sample: it stands in for the whole set there. */
    size_t limit = part == DISCOVERY_PATCHING ? o.exact_samples : 0;
    rc = pair_set_build(&pairs, &x->tok, &x->format, &x->splits.atp, limit, kind, a->batch, m.config.max_seq);
    if (!rc && o.exact_samples)
        rc = pair_set_build(&sample, &x->tok, &x->format, &x->splits.atp, o.exact_samples, kind, a->batch,
                            m.config.max_seq);
    snprintf(prefix, sizeof prefix, "[%s-%s]", part == DISCOVERY_PATCHING ? "patch" : "atp", role_row(role));
    rc = reduce_agree(rc, x->comm);
    if (!rc) rc = discovery_run(&m, &pairs, &sample, &o, &x->results, role_row(role), x->comm, prefix);
    pair_set_free(&pairs);
    pair_set_free(&sample);
    model_free(&m);
    return rc;
}

int stage_atp(struct experiment *x, enum model_role role) { return run_part(x, role, DISCOVERY_SCORES); }

int stage_patch(struct experiment *x, enum model_role role) { return run_part(x, role, DISCOVERY_PATCHING); }
