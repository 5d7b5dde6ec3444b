// trainer.c: data-parallel training over MPI ranks, gradients reduced in buckets during backward.
//
// As in models/data_parallel.c, the rank's graph uses the parameters in forward, and before
// backward every tape input that is a parameter is pointed at the rank's shadow of it: the
// parameter's data with a gradient buffer of the trainer's. Those buffers are slices of the
// buckets' contiguous buffers, so a bucket goes to MPI as it lies, with no copy.
//
// Why reduce-scatter plus all-gather rather than MPI_Iallreduce: the sum must be the same
// bits on every rank, or the ranks' parameters drift apart, and MPI does not promise that an
// all-reduce adds in the same order on every rank (Open MPI's recursive doubling, for one,
// does not). After MPI_Ireduce_scatter_block each segment of the bucket has been summed
// once, on one rank; MPI_Iallgather then copies those bits to everyone. It moves the same
// bytes as a ring all-reduce, which is how that is built too.
//
// MPI wants the collectives on a communicator started in the same order on every rank, but
// which bucket fills first depends on the rank's tape (a shard of shorter sequences, a rank
// that sits out). So buckets start strictly in bucket order, each when it and all before it
// are full; reduce-scatters and all-gathers run on two communicators of their own, so that
// when one bucket's all-gather starts relative to another's reduce-scatter is free.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tapegrad.h"
#include "tg_internal.h"
#include "tg_mpi.h"
#include "tg_mpi_internal.h"

uint64_t tg_mpi_now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static MPI_Datatype mpi_type(tg_dtype dtype) { return dtype == TG_F32 ? MPI_FLOAT : MPI_DOUBLE; }

// Points every tape input that is a parameter at this rank's shadow of it.
static void use_shadows(tg_mpi_trainer *tr, tg_graph *g) {
    size_t n = tg_graph_node_count(g);
    for (size_t i = 0; i < n; i++) {
        tg_node *node = tg_graph_node(g, i);
        for (int k = 0; k < node->n_in; k++) {
            tg_tensor *x = node->in[k];
            if (!x || x->node || !x->grad) continue; // only leaves with a gradient can be parameters
            int p = tg_mpi_param_index(tr, x);
            if (p >= 0) node->in[k] = &tr->shadow[p];
        }
    }
}

// Starts the reduce-scatter of every bucket whose turn it is and whose gradients are all final.
static void start_full_buckets(tg_mpi_trainer *tr) {
    while (tr->next_start < tr->n_buckets && tr->bucket[tr->next_start].pending == 0) {
        tg_mpi_bucket *b = &tr->bucket[tr->next_start++];
        MPI_Ireduce_scatter_block(b->buf, b->part, (int)(b->padded / tr->size), mpi_type(b->dtype), MPI_SUM,
                                  tr->reduce_comm, &b->req);
    }
}

// Starts the all-gather of the next buckets whose reduce-scatter is done. MPI_Test is also
// what moves a collective on: Open MPI has no progress thread by default, so without these
// calls during the walk the reductions would only run in the final wait.
static void gather_reduced_buckets(tg_mpi_trainer *tr, bool wait) {
    while (tr->next_gather < tr->next_start) {
        tg_mpi_bucket *b = &tr->bucket[tr->next_gather];
        int done = 1;
        if (wait)
            MPI_Wait(&b->req, MPI_STATUS_IGNORE);
        else
            MPI_Test(&b->req, &done, MPI_STATUS_IGNORE);
        if (!done) return;
        int count = (int)(b->padded / tr->size);
        MPI_Iallgather(b->part, count, mpi_type(b->dtype), b->buf, count, mpi_type(b->dtype), tr->gather_comm,
                       &b->req);
        tr->next_gather++;
    }
}

// tg_backward_opts.leaf_ready: one parameter's gradient is final.
static void on_leaf_ready(tg_tensor *leaf, void *user) {
    tg_mpi_trainer *tr = user;
    uintptr_t at = (uintptr_t)leaf, first = (uintptr_t)tr->shadow;
    if (at < first || at >= first + (uintptr_t)tr->n_params * sizeof *leaf) return; // an input of the caller's
    tg_mpi_bucket *b = &tr->bucket[tr->param_bucket[(at - first) / sizeof *leaf]];
    if (--b->pending == 0) start_full_buckets(tr);
    gather_reduced_buckets(tr, false);
}

// Readies the shadows for a step: the parameters' current data, zero gradients.
static void reset_shadows(tg_mpi_trainer *tr) {
    for (int i = 0; i < tr->n_params; i++) {
        tg_tensor *p = tg_params_at(tr->params, i), *s = &tr->shadow[i];
        s->data = p->data;
        s->version = p->version;
        s->requires_grad = p->requires_grad;
    }
    for (int k = 0; k < tr->n_buckets; k++) {
        tg_mpi_bucket *b = &tr->bucket[k];
        memset(b->buf, 0, (size_t)b->padded * tg_dtype_size(b->dtype));
        b->pending = b->n_params;
    }
    tr->next_start = tr->next_gather = 0;
}

// This rank's shard, forward and backward into the shadows' gradients, starting buckets as
// they fill. Returns the shard's (unweighted) loss, NAN on failure (reported).
static double run_shard(tg_mpi_trainer *tr, const tg_shard *shard, tg_shard_loss_fn loss_fn, void *user) {
    tg_graph_reset(tr->g);
    tg_tensor *loss = loss_fn(tr->g, shard, &tr->rng, user);
    if (!loss) {
        if (!tg_graph_last_error(tr->g))
            tg_fail(tr->g, "mpi_trainer_backward", "the loss function returned NULL for rank %d's shard", tr->rank);
        return NAN;
    }
    if (loss->numel != 1 || loss->dtype == TG_I32) {
        tg_fail(tr->g, "mpi_trainer_backward", "rank %d's shard loss has shape %s and dtype %s; it must be a float "
                "scalar", tr->rank, TG_SHAPE_STR(loss->shape), tg_dtype_name(loss->dtype));
        return NAN;
    }
    use_shadows(tr, tr->g);
    // d(global mean)/d(shard mean) = count / batch, rounded to the loss's dtype.
    double weight = (double)shard->count / (double)shard->batch;
    float weight32 = (float)weight;
    tg_backward_opts opts = {.seed = loss->dtype == TG_F32 ? (const void *)&weight32 : (const void *)&weight,
                             .leaf_ready = on_leaf_ready, .leaf_ready_user = tr};
    if (!tg_backward_with(tr->g, loss, &opts)) return NAN;
    return tg_tensor_get(loss, 0);
}

// Starts what the walk did not (parameters it never reached, a failed walk, a rank without
// a shard: their gradients count as they are), and waits for every bucket.
static void finish_buckets(tg_mpi_trainer *tr) {
    tr->stats.early += tr->next_start;
    for (int k = 0; k < tr->n_buckets; k++) tr->bucket[k].pending = 0;
    start_full_buckets(tr);
    gather_reduced_buckets(tr, true);
    for (int k = 0; k < tr->n_buckets; k++) MPI_Wait(&tr->bucket[k].req, MPI_STATUS_IGNORE);
}

// Adds the summed gradients to the parameters'.
static void add_to_params(tg_mpi_trainer *tr) {
    for (int i = 0; i < tr->n_params; i++) {
        tg_tensor *p = tg_params_at(tr->params, i);
        if (!p->grad) continue; // a parameter frozen by removing its gradient gets none
        TG_DISPATCH(p->dtype, {
            T *grad = p->grad;                     // [numel]
            const T *sum = tr->shadow[i].grad;     // [numel]
            for (int64_t e = 0; e < p->numel; e++) grad[e] += sum[e];
        });
    }
}

static bool check_backward_args(tg_mpi_trainer *tr, int64_t batch, tg_shard_loss_fn loss) {
    if (!tr || !loss) {
        tg_fail(NULL, "mpi_trainer_backward", "%s is NULL", tr ? "the loss function" : "the trainer");
        return false;
    }
    if (batch < 1) {
        tg_fail(NULL, "mpi_trainer_backward", "batch is %lld; it must be at least 1", (long long)batch);
        return false;
    }
    if (tg_params_count(tr->params) != tr->n_params || tg_params_numel(tr->params) != tr->numel) {
        tg_fail(NULL, "mpi_trainer_backward", "the parameters changed since the trainer was made (%d then, %d now)",
                tr->n_params, tg_params_count(tr->params));
        return false;
    }
    return true;
}

double tg_mpi_trainer_backward(tg_mpi_trainer *tr, int64_t batch, tg_shard_loss_fn loss, void *user) {
    // Bad arguments are the same on every rank (batch, parameters) or a programming error
    // that no rank can recover from in step with the others: they fail before any message.
    if (!check_backward_args(tr, batch, loss)) return NAN;
    int active = batch < tr->size ? (int)batch : tr->size;
    int64_t base = batch / active, extra = batch % active, r = tr->rank;
    tg_shard shard = {.worker = 0, .begin = r * base + (r < extra ? r : extra), .count = r < active ? base + (r < extra) : 0,
                      .batch = batch, .index = tr->rank};
    reset_shadows(tr);
    double shard_loss = shard.count ? run_shard(tr, &shard, loss, user) : 0;
    uint64_t t0 = tg_mpi_now_ns();
    finish_buckets(tr);
    // Every rank learns whether every shard succeeded, and the loss, summed in rank order
    // so that every rank returns the same bits.
    double mine[2] = {isnan(shard_loss) ? 0 : 1, shard_loss * ((double)shard.count / (double)batch)};
    MPI_Allgather(mine, 2, MPI_DOUBLE, tr->loss_parts, 2, MPI_DOUBLE, tr->reduce_comm);
    tr->stats.wait_seconds += (double)(tg_mpi_now_ns() - t0) * 1e-9;
    tr->stats.steps++;
    double total = 0;
    for (int k = 0; k < tr->size; k++) {
        if (tr->loss_parts[2 * k] == 0) {
            if (k != tr->rank) tg_fail(NULL, "mpi_trainer_backward", "rank %d's shard failed (its error went to its "
                                       "error handler)", k);
            return NAN;
        }
        total += tr->loss_parts[2 * k + 1];
    }
    add_to_params(tr);
    return total;
}

int tg_mpi_trainer_rank(const tg_mpi_trainer *tr) { return tr ? tr->rank : -1; }
int tg_mpi_trainer_size(const tg_mpi_trainer *tr) { return tr ? tr->size : 0; }
tg_rng *tg_mpi_trainer_rng(tg_mpi_trainer *tr) { return tr ? &tr->rng : NULL; }

tg_mpi_stats tg_mpi_trainer_stats(const tg_mpi_trainer *tr) {
    if (!tr) return (tg_mpi_stats){0};
    tg_mpi_stats s = tr->stats;
    s.buckets = tr->n_buckets;
    return s;
}
