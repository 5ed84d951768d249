/* evaluate.h — how well a distilled student carries the teacher's circuit, beyond answer accuracy: three numbers
 * over one set of metric pairs (stages/pair_set.h; clean and counterfactual prompts of equal length).
 *
 *   nfs         MIB's normalised faithfulness of the student's own node circuit: node AtP of the student over the
 *               pairs (circuits/nodes.h; mean signed score per node), its top nfs_percent nodes by |score|
 *               (graph.h circuit_top_nodes, input always kept) and f of that circuit with counterfactual ablation
 *               (faithfulness.h faithfulness_nfs, GRAPH_LEVEL_NODE, absolute = 1).
 *   mean_cka    functional correspondence (distill/correspond.h, strategy A): the student's candidates are its top
 *               k = min(student nodes, 2 · n_teacher) components by |AtP| (ties to the lower node); both models run
 *               the clean prompts caching blocks.l.attn.hook_z (a head's slice) and blocks.l.hook_mlp_out; rows =
 *               every position t < pairs[b].length of every pair, all batches as one; component_map_build
 *               (correspond.h: linear CKA, biased estimator, of every (teacher component, candidate) and the
 *               one-to-one assignment maximising total CKA; at least 2 rows); mean CKA over the mapped teacher
 *               components (n_mapped of them; with fewer candidates than teacher components the weakest stay
 *               unmapped).
 *   robustness  interchange interventions on the first n_interventions pairs: for every mapped teacher u -> student
 *               v, the teacher runs the clean prompt with u (its hook_z head slice, or its hook_mlp_out, at every
 *               position) replaced by u's value on the corrupt prompt, and the student likewise with v; a case
 *               (pair, component) agrees when both argmaxes of the logits at the pair's metric position (ties to
 *               the lower id) are equal. robustness = agreeing cases / cases. robustness_teacher_changed = the
 *               fraction of cases where the intervention moved the teacher's argmax away from its clean one (when
 *               it rarely does, agreement mostly measures agreement on clean inputs); robustness_on_changed = the
 *               agreement over those cases only (NaN when there are none).
 *
 * Cost: one AtP pass of the student (two forwards and a backward per batch), the faithfulness evaluation, one
 * cached clean forward of each model per batch, and per batch of intervention pairs a clean forward of the
 * teacher, a cached corrupt forward of each model and one patched forward of each model per mapped component (all
 * rows of the batch at once). Memory:
 * for CKA, every clean row of the pairs for each layer holding a component of either side (n_heads · head_dim
 * floats a row for a layer's heads, d_model for its MLP), then component_map_build's own copies: callers evaluate
 * on a sample of pairs.
 *
 * Ownership: distill_evaluate reads both models' weights and clears their hooks (it runs forwards, so their
 * activation buffers change); the map it fills (when map_out is not NULL) is the caller's to component_map_free.
 */
#ifndef CIRCD_DISTILL_EVALUATE_H
#define CIRCD_DISTILL_EVALUATE_H

#include <stdint.h>

#include "distill/correspond.h"
#include "model/model.h"
#include "stages/pair_set.h"

struct distill_eval {
    double nfs;                        /* f of the student's nfs_percent node circuit (NaN if M(model) = M(∅)) */
    double nfs_metric_model, nfs_metric_empty; /* the student's M(model) and M(∅) behind nfs */
    int nfs_nodes;                     /* nodes in that circuit after pruning, the input included */
    double mean_cka;                   /* over mapped components (NaN when none is mapped) */
    int n_mapped;                      /* teacher components with a student partner */
    int n_candidates;                  /* k: student components considered */
    double robustness;                 /* agreeing cases / cases (NaN when there are no cases) */
    double robustness_teacher_changed; /* cases where the teacher's argmax moved / cases */
    double robustness_on_changed;      /* agreeing cases among those / their count (NaN when none) */
    int64_t n_cases;                   /* intervention pairs × n_mapped */
};

/* Evaluates student against teacher (same vocabulary; the pairs' T within both max_seq) on pairs. teacher_components
 * [n_teacher]: the teacher circuit as graph upstream indices (circuits/graph.h; heads and MLPs, not the input, no
 * repeats). n_interventions: pairs used for robustness (the first ones in batch order; more than the set = all;
 * 0 = no interventions, robustness NaN). map_out (may be NULL) receives the correspondence on success.
 * CIRCD_EINPUT for n_teacher < 1, a bad or repeated component (naming it), an empty pair set, a percent outside
 * [0, 100], n_interventions < 0 or different vocabularies; CIRCD_ENOMEM; a model's own errors. */
int distill_evaluate(struct llama_model *teacher, struct llama_model *student, const struct pair_set *pairs,
                     const int *teacher_components, int n_teacher, double nfs_percent, int n_interventions,
                     struct distill_eval *out, struct component_map *map_out);

/* The argmax over the vocabulary of the logits of the last forward at row b, position t (ties to the lower id). */
int32_t distill_argmax_at(const struct llama_model *m, int b, int t);

#endif
