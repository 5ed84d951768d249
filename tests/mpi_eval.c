/* mpi_eval.c — (2 ranks) evaluation sharded over ranks: eval_model_accuracy on smoke.yaml's test sets (batches of
 * 3, so the decode batches split unevenly over the ranks) writes the same accuracies, per-length curve and
 * per-example tables into one shared results file as each rank alone writes on MPI_COMM_SELF, every example in
 * exactly one row. The model is a hand-built bigram machine (one-hot embeddings, zero attention and MLPs, lm_head
 * mapping each token to the next one it must say): it answers "0" to every prompt, so exactly the problems a - a
 * are right — which the rows must show, example by example. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mpi.h>

#include "data/arith_batch.h"
#include "stages/stages.h"
#include "testing.h"
#include "util/error.h"

static int rank;

/* Answers "0" and stops: after any token but "0" comes "0", after "0" comes <eos>. */
static void bigram_model(struct llama_model *m, const struct tokenizer *tok)
{
    int V = tok->vocab_size, d = 128;
    struct llama_config cfg = testing_config(V, d, 1, 2, 1, 64, 32, 128);
    CHECK(V <= d && model_create(m, &cfg) == 0);
    memset(m->params, 0, m->n_params * sizeof *m->params);
    for (int i = 0; i < m->n_tensors; i++)
        if (m->tensors[i].ndim == 1)
            for (size_t j = 0; j < m->tensors[i].numel; j++) m->params[m->tensors[i].offset + j] = 1.0f;
    const struct param_tensor *embed = model_find_tensor(m, "model.embed_tokens.weight");
    const struct param_tensor *head = model_find_tensor(m, "lm_head.weight");
    int32_t zero = tokenizer_find(tok, "0");
    CHECK(embed && head && zero >= 0 && tok->eos_id >= 0);
    if (!embed || !head || zero < 0) return;
    for (int t = 0; t < V; t++) {
        m->params[embed->offset + (size_t)t * d + t] = 1.0f;
        int next = t == zero ? tok->eos_id : zero;
        m->params[head->offset + (size_t)next * d + t] = 1.0f;
    }
}

/* Every third problem becomes a - a (answer 0), in both experiments alike. */
static void some_zero_answers(struct arith_dataset *d)
{
    for (size_t i = 0; i < d->count; i += 3) {
        struct arith_problem *p = &d->examples[i].clean;
        p->op = ARITH_SUB;
        p->b = p->a;
        p->answer = 0;
    }
}

/* Whether the bigram machine answers example i right: the answer is 0 and the prompt does not end in "0". */
static int expected_correct(const struct experiment *x, const struct arith_format *f, const struct arith_dataset *d,
                            size_t i)
{
    struct arith_item item;
    struct arith_encoded enc;
    CHECK(arith_dataset_item(d, i, -1, &item) == 0 && arith_encode(&x->tok, f, &item, &enc) == 0);
    return d->examples[i].clean.answer == 0 && enc.ids[enc.prompt_len - 1] != tokenizer_find(&x->tok, "0");
}

static void compare_tables(struct experiment *world, struct experiment *self, const struct arith_format *f,
                           const char *set_name, const struct arith_dataset *d)
{
    char path[128];
    snprintf(path, sizeof path, "/runs/bigram/0/examples_%s", set_name);
    size_t n = d->count;
    float *a = calloc(n * 4, sizeof *a), *b = calloc(n * 4, sizeof *b);
    int na = 0, nb = 0;
    uint64_t da[4] = {0}, db[4] = {0};
    CHECK(results_read_f32(&world->results, path, a, n * 4, &na, da) == 0 && na == 2 && da[0] == n && da[1] == 4);
    CHECK(results_read_f32(&self->results, path, b, n * 4, &nb, db) == 0 && da[0] == db[0]);
    CHECK(memcmp(a, b, n * 4 * sizeof *a) == 0); /* the same rows in the same (evaluation) order */
    int *seen = calloc(n, sizeof *seen), right = 0, wrong_expectation = 0;
    for (size_t r = 0; r < n; r++) {
        size_t i = (size_t)a[4 * r];
        CHECK(a[4 * r] >= 0 && i < n);
        if (i >= n) continue;
        seen[i]++;
        const struct arith_problem *p = &d->examples[i].clean;
        CHECK(a[4 * r + 1] == (float)p->op && a[4 * r + 2] == (float)arith_digit_count(p->a > p->b ? p->a : p->b));
        wrong_expectation += a[4 * r + 3] != (float)expected_correct(world, f, d, i);
        right += a[4 * r + 3] == 1.0f;
    }
    for (size_t i = 0; i < n; i++) CHECK(seen[i] == 1);
    CHECK(wrong_expectation == 0);
    CHECK(right > 0 && right < (int)n); /* some right, some wrong: a real table */
    double accuracy = NAN;
    snprintf(path, sizeof path, "/runs/bigram/0/metrics");
    char key[32];
    snprintf(key, sizeof key, "%s_accuracy", set_name);
    CHECK(results_get_attr_f64(&world->results, path, key, &accuracy) == 0);
    CHECK_NEAR(accuracy, (double)right / (double)n, 1e-12);
    double correct = -1; /* gathered counts: each example decoded by one rank only */
    snprintf(key, sizeof key, "%s_correct", set_name);
    CHECK(results_get_attr_f64(&world->results, path, key, &correct) == 0 && correct == right);
    if (rank == 0) fprintf(stderr, "  %s: %d of %zu right, as expected\n", set_name, right, n);
    free(seen);
    free(a);
    free(b);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    alarm(300); /* a hang fails the test */
    static char shared[4096], own[4200];
    snprintf(shared, sizeof shared, "%s/world", testing_tmpdir());
    MPI_Bcast(shared, (int)sizeof shared, MPI_CHAR, 0, MPI_COMM_WORLD);
    snprintf(own, sizeof own, "%s/self-%d", testing_tmpdir(), rank);
    struct experiment_spec spec;
    struct spec_errors errs = {0};
    CHECK(spec_load(testing_source_path("experiments/smoke.yaml"), &spec, &errs) == 0);
    spec_errors_free(&errs);
    spec.eval.batch = 3;
    struct experiment world, self;
    CHECK(experiment_open(&world, &spec, shared, MPI_COMM_WORLD) == 0);
    CHECK(experiment_open(&self, &spec, own, MPI_COMM_SELF) == 0);
    struct experiment *both[2] = {&world, &self};
    for (int i = 0; i < 2; i++) {
        some_zero_answers(&both[i]->splits.id_test);
        some_zero_answers(&both[i]->splits.ood_test);
    }
    struct arith_format f = world.format;
    f.pad_answer = 0; /* "0", not "000" */
    struct llama_model m;
    bigram_model(&m, &world.tok);
    CHECK(eval_model_accuracy(&world, &m, &f, "bigram", 0, "eval 2 ranks") == 0);
    CHECK(eval_model_accuracy(&self, &m, &f, "bigram", 0, "eval 1 rank") == 0);
    compare_tables(&world, &self, &f, "id", &world.splits.id_test);
    compare_tables(&world, &self, &f, "ood", &world.splits.ood_test);
    static const char *const keys[] = {"id_accuracy", "ood_accuracy", "id_accuracy_add", "id_accuracy_sub",
                                       "ood_accuracy_add", "ood_accuracy_sub", "id_examples", "ood_examples"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        double a = NAN, b = NAN;
        CHECK(results_get_attr_f64(&world.results, "/runs/bigram/0/metrics", keys[k], &a) == 0 &&
              results_get_attr_f64(&self.results, "/runs/bigram/0/metrics", keys[k], &b) == 0);
        CHECK(a == b || (isnan(a) && isnan(b)));
    }
    float ca[4 * ARITH_MAX_DIGITS], cb[4 * ARITH_MAX_DIGITS];
    int nd = 0;
    uint64_t dims[4];
    CHECK(results_read_f32(&world.results, "/runs/bigram/0/accuracy_by_digits", ca, 4 * ARITH_MAX_DIGITS, &nd,
                           dims) == 0 && dims[0] == 5);
    CHECK(results_read_f32(&self.results, "/runs/bigram/0/accuracy_by_digits", cb, 4 * ARITH_MAX_DIGITS, &nd,
                           dims) == 0 && memcmp(ca, cb, 4 * dims[0] * sizeof *ca) == 0);
    model_free(&m);
    experiment_close(&world);
    experiment_close(&self);
    spec_free(&spec);
    int code = testing_finish();
    MPI_Allreduce(MPI_IN_PLACE, &code, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Finalize();
    return code;
}
