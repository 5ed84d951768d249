/* pipeline.c — implementation of pipeline.h: layer split, argument agreement, the GPipe forward schedule with
 * status words, delivery of logits and hook caches to the destination rank, and the driver / server protocol. */
#include "sched/pipeline.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/forward_range.h"
#include "sched/reduce.h"
#include "util/error.h"

enum { TAG_RESID = 1, TAG_LOGITS = 2, TAG_CACHE = 3, TAG_TOKENS = 4 };
enum { CMD_FORWARD = 1, CMD_STOP = 2 };
#define MESSAGE_CAP 480

/* What the driver broadcasts to the serving ranks before each forward, and at the end. */
struct request_word {
    int32_t cmd, B, T, M, status;
    char message[MESSAGE_CAP];
};

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void pipeline_split(int n_layers, int S, int s, int *first, int *last)
{
    int base = n_layers / S, extra = n_layers % S;
    *first = s * base + (s < extra ? s : extra);
    *last = *first + base + (s < extra);
}

/* Micro-batch m of a B-row batch cut in M: rows [*b0, *b0 + *bm). */
static void micro_batch(int B, int M, int m, int *b0, int *bm)
{
    int base = B / M, extra = B % M;
    *b0 = m * base + (m < extra ? m : extra);
    *bm = base + (m < extra);
}

int pipeline_init(struct pipeline *p, struct llama_model *model, MPI_Comm comm, int dest)
{
    memset(p, 0, sizeof *p);
    MPI_Comm_dup(comm, &p->comm);
    MPI_Comm_rank(p->comm, &p->rank);
    MPI_Comm_size(p->comm, &p->size);
    p->model = model;
    p->dest = dest;
    const struct llama_config *c = &model->config;
    int rc = CIRCD_OK;
    if (p->size > c->n_layers)
        rc = err_set(CIRCD_EINPUT, "pipeline: %d ranks for a %d-layer model; a stage needs at least one layer (use "
                     "at most %d ranks)", p->size, c->n_layers, c->n_layers);
    else if (dest < 0 || dest >= p->size)
        rc = err_set(CIRCD_EINPUT, "pipeline: destination rank %d outside [0, %d)", dest, p->size);
    long long shape[4] = {c->n_layers, c->d_model, c->vocab_size, (long long)c->n_heads * c->head_dim};
    int same = reduce_check_same(shape, 4, "pipeline: the models' shapes (layers, d_model, vocab, heads x head_dim)",
                                 p->comm);
    if (!rc) rc = same;
    if ((rc = reduce_agree(rc, p->comm))) {
        pipeline_free(p);
        return rc;
    }
    pipeline_split(c->n_layers, p->size, p->rank, &p->first_layer, &p->last_layer);
    return CIRCD_OK;
}

void pipeline_free(struct pipeline *p)
{
    if (p->comm != MPI_COMM_NULL && p->comm != 0) MPI_Comm_free(&p->comm);
    free(p->resid_send);
    free(p->resid_recv);
    free(p->logits_send);
    free(p->cache_send);
    free(p->requests);
    free(p->tokens);
    memset(p, 0, sizeof *p);
    p->comm = MPI_COMM_NULL;
}

/* Makes the buffers hold a [B, T] forward in M micro-batches (and the model one micro-batch). */
static int grow(struct pipeline *p, int B, int T, int M, int caches)
{
    const struct llama_config *c = &p->model->config;
    size_t N = (size_t)B * T, d = c->d_model, V = c->vocab_size, qd = (size_t)c->n_heads * c->head_dim;
    int last_stage = p->rank == p->size - 1, is_dest = p->rank == p->dest;
    if (N > p->cap_rows || (size_t)M > p->cap_micro) {
        size_t rows = N > p->cap_rows ? N : p->cap_rows, micro = (size_t)M > p->cap_micro ? (size_t)M : p->cap_micro;
        free(p->resid_send);
        free(p->resid_recv);
        free(p->logits_send);
        free(p->requests);
        free(p->tokens);
        p->resid_send = p->resid_recv = p->logits_send = NULL;
        p->tokens = NULL;
        p->cap_rows = p->cap_micro = 0;
        int ok = 1;
        if (!last_stage) ok &= (p->resid_send = xmalloc((rows * d + micro) * sizeof(float))) != NULL;
        if (p->rank > 0) ok &= (p->resid_recv = xmalloc((rows * d + 1) * sizeof(float))) != NULL;
        if (last_stage && !is_dest) ok &= (p->logits_send = xmalloc(rows * V * sizeof(float))) != NULL;
        if (p->rank == 0 && !is_dest) ok &= (p->tokens = xmalloc(rows * sizeof(int32_t))) != NULL;
        ok &= (p->requests = xmalloc((micro * (2 + 2 * (size_t)c->n_layers) + 1) * sizeof(MPI_Request))) != NULL;
        if (!ok) return CIRCD_ENOMEM;
        p->cap_rows = rows;
        p->cap_micro = micro;
    }
    if (caches && !is_dest && N > p->cap_cache_rows) {
        free(p->cache_send);
        p->cap_cache_rows = 0;
        size_t layers = (size_t)(p->last_layer - p->first_layer);
        if (!(p->cache_send = xmalloc(layers * N * (qd + d) * sizeof(float)))) return CIRCD_ENOMEM;
        p->cap_cache_rows = N;
    }
    return model_reserve(p->model, (B + M - 1) / M, T);
}

/* Every rank checks the same arguments and grows its buffers; the ranks agree on the result. */
static int prepare(struct pipeline *p, const int32_t *tokens, int B, int T, int M, const struct pipeline_output *out,
                   int *caches)
{
    const struct llama_config *c = &p->model->config;
    int is_dest = p->rank == p->dest, rc = CIRCD_OK;
    if (is_dest && (!out || !out->logits))
        rc = err_set(CIRCD_EINPUT, "pipeline forward: no logits buffer on the destination rank %d", p->dest);
    else if (is_dest && !tokens)
        rc = err_set(CIRCD_EINPUT, "pipeline forward: no tokens on the destination rank %d", p->dest);
    int v[7] = {B, -B, T, -T, M, -M, is_dest && out && out->z && out->mlp_out};
    MPI_Allreduce(MPI_IN_PLACE, v, 7, MPI_INT, MPI_MAX, p->comm);
    *caches = v[6];
    size_t widest = (size_t)(c->vocab_size > c->d_model ? c->vocab_size : c->d_model);
    if ((size_t)c->n_heads * c->head_dim > widest) widest = (size_t)c->n_heads * c->head_dim;
    if (!rc && (v[0] != -v[1] || v[2] != -v[3] || v[4] != -v[5]))
        rc = err_set(CIRCD_EINPUT, "pipeline forward: the ranks disagree on the batch (B %d..%d, T %d..%d, M %d..%d)",
                     -v[1], v[0], -v[3], v[2], -v[5], v[4]);
    else if (!rc && (B < 1 || T < 1 || T > c->max_seq))
        rc = err_set(CIRCD_EINPUT, "pipeline forward: batch [%d, %d] must be positive with T <= %d", B, T, c->max_seq);
    else if (!rc && (M < 1 || M > B))
        rc = err_set(CIRCD_EINPUT, "pipeline forward: %d micro-batches for a batch of %d rows; expected 1 to %d", M,
                     B, B);
    else if (!rc && (size_t)B * T * widest > INT_MAX)
        rc = err_set(CIRCD_EINPUT, "pipeline forward: batch [%d, %d] too large for one message", B, T);
    if (!rc) rc = grow(p, B, T, M, *caches);
    return reduce_agree(rc, p->comm);
}

int pipeline_forward(struct pipeline *p, const int32_t *tokens, int B, int T, int M, const struct pipeline_output *out)
{
    int caches, rc = prepare(p, tokens, B, T, M, out, &caches);
    if (rc) return rc;
    const struct llama_config *c = &p->model->config;
    MPI_Comm comm = p->comm;
    int S = p->size, s = p->rank, first = p->first_layer, last = p->last_layer, is_dest = s == p->dest;
    size_t N = (size_t)B * T, d = c->d_model, V = c->vocab_size, qd = (size_t)c->n_heads * c->head_dim;
    MPI_Request *req = p->requests;
    int n_req = 0, b0, bm;
    double start = now_seconds(), compute = 0;

    const int32_t *stage_tokens = tokens; /* the tokens go from the destination to stage 0 */
    if (p->dest != 0 && is_dest) MPI_Isend(tokens, (int)N, MPI_INT32_T, 0, TAG_TOKENS, comm, &req[n_req++]);
    if (p->dest != 0 && s == 0) {
        MPI_Recv(p->tokens, (int)N, MPI_INT32_T, p->dest, TAG_TOKENS, comm, MPI_STATUS_IGNORE);
        stage_tokens = p->tokens;
    }
    /* The destination posts every receive up front, straight into the output buffers, in the order each stage
     * sends (micro-batch, then its layers, z before mlp_out): messages of one tag between two ranks arrive in order. */
    for (int m = 0; is_dest && m < M; m++) {
        micro_batch(B, M, m, &b0, &bm);
        size_t row0 = (size_t)b0 * T, rows = (size_t)bm * T;
        if (S - 1 != s)
            MPI_Irecv(out->logits + row0 * V, (int)(rows * V), MPI_FLOAT, S - 1, TAG_LOGITS, comm, &req[n_req++]);
        for (int r = 0; caches && r < S; r++) {
            int rf, rl;
            pipeline_split(c->n_layers, S, r, &rf, &rl);
            for (int l = rf; r != s && l < rl; l++) {
                MPI_Irecv(out->z[l] + row0 * qd, (int)(rows * qd), MPI_FLOAT, r, TAG_CACHE, comm, &req[n_req++]);
                MPI_Irecv(out->mlp_out[l] + row0 * d, (int)(rows * d), MPI_FLOAT, r, TAG_CACHE, comm, &req[n_req++]);
            }
        }
    }

    int own_rc = CIRCD_OK;
    for (int m = 0; m < M; m++) {
        micro_batch(B, M, m, &b0, &bm);
        size_t row0 = (size_t)b0 * T, rows = (size_t)bm * T;
        int status = CIRCD_OK; /* non-zero: a stage up to this one failed; pass the word on, compute nothing */
        if (s > 0) {
            MPI_Recv(p->resid_recv, (int)(rows * d + 1), MPI_FLOAT, s - 1, TAG_RESID, comm, MPI_STATUS_IGNORE);
            status = (int)p->resid_recv[rows * d];
        }
        double t0 = now_seconds();
        if (own_rc) status = own_rc;
        if (!status) {
            own_rc = model_forward_range(p->model, first, last, s == 0 ? stage_tokens + row0 : NULL, p->resid_recv,
                                         bm, T);
            if (own_rc)
                err_prefix(own_rc, "pipeline stage %d (layers %d-%d), micro-batch %d (batch rows %d-%d): ", s, first,
                           last - 1, m, b0, b0 + bm - 1);
            status = own_rc;
        }
        if (s < S - 1) { /* the residual stream and the status word to the next stage */
            float *msg = p->resid_send + row0 * d + m;
            if (!status) memcpy(msg, model_forward_range_output(p->model, last), rows * d * sizeof(float));
            msg[rows * d] = (float)status;
            MPI_Isend(msg, (int)(rows * d + 1), MPI_FLOAT, s + 1, TAG_RESID, comm, &req[n_req++]);
        } else { /* the logits to the destination */
            float *dst = (is_dest ? out->logits : p->logits_send) + row0 * V;
            if (!status) memcpy(dst, p->model->acts.logits, rows * V * sizeof(float));
            if (!is_dest) MPI_Isend(dst, (int)(rows * V), MPI_FLOAT, p->dest, TAG_LOGITS, comm, &req[n_req++]);
        }
        for (int l = first; caches && l < last; l++) {
            const struct layer_acts *a = &p->model->acts.layers[l];
            float *z, *mlp;
            if (is_dest) {
                z = out->z[l] + row0 * qd;
                mlp = out->mlp_out[l] + row0 * d;
            } else {
                float *base = p->cache_send + (size_t)(l - first) * N * (qd + d);
                z = base + row0 * qd;
                mlp = base + N * qd + row0 * d;
            }
            if (!status) {
                memcpy(z, a->z, rows * qd * sizeof(float));
                memcpy(mlp, a->mlp_out, rows * d * sizeof(float));
            }
            if (!is_dest) {
                MPI_Isend(z, (int)(rows * qd), MPI_FLOAT, p->dest, TAG_CACHE, comm, &req[n_req++]);
                MPI_Isend(mlp, (int)(rows * d), MPI_FLOAT, p->dest, TAG_CACHE, comm, &req[n_req++]);
            }
        }
        compute += now_seconds() - t0;
    }
    MPI_Waitall(n_req, req, MPI_STATUSES_IGNORE);
    p->stats.compute_s += compute;
    p->stats.wall_s += now_seconds() - start;
    p->stats.forwards++;
    /* Only the stage where a failure began reports it (the later ones merely passed its word on). */
    return reduce_agree(own_rc, comm);
}

/* An MPI_Ibcast completed by polling with short sleeps: a serving rank waits for its driver without spinning a core
 * the driver's own compute may want. */
static void bcast_patiently(void *buf, int bytes, int root, MPI_Comm comm)
{
    MPI_Request r;
    MPI_Ibcast(buf, bytes, MPI_BYTE, root, comm, &r);
    int done = 0;
    MPI_Test(&r, &done, MPI_STATUS_IGNORE);
    while (!done) {
        struct timespec pause = {0, 200000};
        nanosleep(&pause, NULL);
        MPI_Test(&r, &done, MPI_STATUS_IGNORE);
    }
}

int pipeline_request_forward(struct pipeline *p, const int32_t *tokens, int B, int T, int M,
                             const struct pipeline_output *out)
{
    struct request_word w;
    memset(&w, 0, sizeof w);
    w.cmd = CMD_FORWARD;
    w.B = B;
    w.T = T;
    w.M = M;
    bcast_patiently(&w, (int)sizeof w, p->dest, p->comm);
    return pipeline_forward(p, tokens, B, T, M, out);
}

void pipeline_request_stop(struct pipeline *p, int status)
{
    struct request_word w;
    memset(&w, 0, sizeof w);
    w.cmd = CMD_STOP;
    w.status = status;
    if (status) snprintf(w.message, sizeof w.message, "%s", err_msg()[0] ? err_msg() : "failed");
    bcast_patiently(&w, (int)sizeof w, p->dest, p->comm);
}

int pipeline_serve(struct pipeline *p)
{
    for (;;) {
        struct request_word w;
        bcast_patiently(&w, (int)sizeof w, p->dest, p->comm);
        if (w.cmd == CMD_STOP)
            return w.status ? err_set(w.status, "rank %d: %s", p->dest, w.message) : CIRCD_OK;
        if (w.cmd != CMD_FORWARD)
            return err_set(CIRCD_EINTERNAL, "pipeline: unknown request %d from rank %d", (int)w.cmd, p->dest);
        /* A failed forward fails on every rank alike; the driver decides what follows and tells us. */
        pipeline_forward(p, NULL, w.B, w.T, w.M, NULL);
    }
}
