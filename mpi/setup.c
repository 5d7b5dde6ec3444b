// setup.c: making and freeing an MPI trainer: its buckets, its shadows, rank 0's values on every rank.
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "tapegrad.h"
#include "tg_internal.h"
#include "tg_mpi_internal.h"

#define DEFAULT_BUCKET_BYTES ((size_t)1 << 20) // PyTorch DDP's first bucket is 1 MB, the rest 25 MB

static size_t slot_of(const void *key, size_t mask) {
    uint64_t h = (uint64_t)(uintptr_t)key * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 20) & mask;
}

int tg_mpi_param_index(const tg_mpi_trainer *tr, const tg_tensor *t) {
    for (size_t s = slot_of(t, tr->slot_mask);; s = (s + 1) & tr->slot_mask) {
        if (!tr->slot[s]) return -1;
        if (tr->slot[s] == t) return tr->index[s];
    }
}

static bool make_index(tg_mpi_trainer *tr) {
    size_t cap = 16;
    while (cap < 2 * (size_t)tr->n_params) cap *= 2;
    tr->slot_mask = cap - 1;
    tr->slot = calloc(cap, sizeof *tr->slot);
    tr->index = calloc(cap, sizeof *tr->index);
    if (!tr->slot || !tr->index) return false;
    for (int i = 0; i < tr->n_params; i++) {
        const tg_tensor *t = tg_params_at(tr->params, i);
        size_t s = slot_of(t, tr->slot_mask);
        while (tr->slot[s]) s = (s + 1) & tr->slot_mask;
        tr->slot[s] = t;
        tr->index[s] = i;
    }
    return true;
}

// Assigns parameters to buckets, from the last registered on (backward finishes the output
// layers first), starting a new bucket where the next parameter would take it past
// bucket_bytes (a larger parameter gets a bucket of its own), where the dtype changes, or
// where MPI's int counts would overflow. Sets param_bucket and n_buckets.
static bool assign_buckets(tg_mpi_trainer *tr, size_t bucket_bytes) {
    size_t bytes = 0;
    int64_t elements = 0;
    tg_dtype dtype = TG_F32;
    tr->n_buckets = 0;
    for (int i = tr->n_params - 1; i >= 0; i--) {
        const tg_tensor *p = tg_params_at(tr->params, i);
        if (p->dtype == TG_I32) {
            tg_fail(NULL, "mpi_trainer_new", "parameter %s is int32; only float parameters have gradients", p->name);
            return false;
        }
        if (p->numel > INT_MAX - tr->size) {
            tg_fail(NULL, "mpi_trainer_new", "parameter %s has %lld elements; MPI counts stop at %d", p->name,
                    (long long)p->numel, INT_MAX - tr->size);
            return false;
        }
        size_t size = (size_t)p->numel * tg_dtype_size(p->dtype);
        if (tr->n_buckets == 0 || p->dtype != dtype || (bytes && bytes + size > bucket_bytes) ||
            elements + p->numel > INT_MAX - tr->size) {
            tr->n_buckets++;
            bytes = 0;
            elements = 0;
            dtype = p->dtype;
        }
        bytes += size;
        elements += p->numel;
        tr->param_bucket[i] = tr->n_buckets - 1;
    }
    return true;
}

// Allocates the buckets' buffers and points the shadows' gradients into them.
static bool make_buckets(tg_mpi_trainer *tr) {
    tr->bucket = calloc((size_t)(tr->n_buckets ? tr->n_buckets : 1), sizeof *tr->bucket);
    if (!tr->bucket) return false;
    for (int i = tr->n_params - 1; i >= 0; i--) {
        tg_mpi_bucket *b = &tr->bucket[tr->param_bucket[i]];
        b->dtype = tg_params_at(tr->params, i)->dtype;
        b->n_params++;
        b->padded += tg_params_at(tr->params, i)->numel;
    }
    for (int k = 0; k < tr->n_buckets; k++) {
        tg_mpi_bucket *b = &tr->bucket[k];
        b->padded = (b->padded + tr->size - 1) / tr->size * tr->size; // reduce_scatter_block: equal segments
        size_t es = tg_dtype_size(b->dtype);
        b->buf = calloc((size_t)(b->padded ? b->padded : 1), es);
        b->part = calloc((size_t)(b->padded / tr->size ? b->padded / tr->size : 1), es);
        b->req = MPI_REQUEST_NULL;
        if (!b->buf || !b->part) return false;
    }
    int64_t *offset = calloc((size_t)(tr->n_buckets ? tr->n_buckets : 1), sizeof *offset); // [n_buckets]
    if (!offset) return false;
    for (int i = tr->n_params - 1; i >= 0; i--) {
        tg_tensor *s = &tr->shadow[i];
        *s = *tg_params_at(tr->params, i); // same name, shape and data; its gradient in the bucket
        int k = tr->param_bucket[i];
        s->grad = (char *)tr->bucket[k].buf + (size_t)offset[k] * tg_dtype_size(s->dtype);
        offset[k] += s->numel;
    }
    free(offset);
    return true;
}

// The hash of the parameters' names, dtypes and shapes in order: what must agree between
// ranks for their buckets to line up.
static uint64_t layout_hash(const tg_params *p) {
    XXH64_state_t *h = XXH64_createState();
    XXH64_reset(h, 0);
    for (int i = 0; i < tg_params_count(p); i++) {
        const tg_tensor *t = tg_params_at(p, i);
        XXH64_update(h, t->name, strlen(t->name) + 1);
        XXH64_update(h, &t->dtype, sizeof t->dtype);
        XXH64_update(h, &t->shape.n, sizeof t->shape.n);
        XXH64_update(h, t->shape.d, sizeof t->shape.d[0] * (size_t)t->shape.n);
    }
    uint64_t sum = XXH64_digest(h);
    XXH64_freeState(h);
    return sum;
}

// Names the first rank whose parameter layout differs from rank 0's; false on every rank then.
static bool same_layout_everywhere(tg_mpi_trainer *tr) {
    unsigned long long mine = layout_hash(tr->params), root = mine;
    MPI_Bcast(&root, 1, MPI_UNSIGNED_LONG_LONG, 0, tr->reduce_comm);
    int ok = mine == root, *all = malloc(sizeof(int) * (size_t)tr->size); // [size]
    if (!all) abort(); // a few bytes: nothing sensible to do in step with the other ranks
    MPI_Allgather(&ok, 1, MPI_INT, all, 1, MPI_INT, tr->reduce_comm);
    int bad = -1;
    for (int k = tr->size - 1; k > 0; k--)
        if (!all[k]) bad = k;
    free(all);
    if (bad < 0) return true;
    tg_fail(NULL, "mpi_trainer_new", "rank %d's parameters differ from rank 0's in names, shapes or dtypes: every "
            "rank must build the same model", bad);
    return false;
}

// Sends n elements from rank 0's data to everyone's, in pieces MPI's int counts can hold.
void tg_mpi_bcast_elements(void *data, int64_t n, tg_dtype dtype, MPI_Comm comm) {
    const int64_t piece = (int64_t)1 << 30;
    size_t es = tg_dtype_size(dtype);
    MPI_Datatype type = dtype == TG_F32 ? MPI_FLOAT : dtype == TG_F64 ? MPI_DOUBLE : MPI_INT32_T;
    for (int64_t at = 0; at < n; at += piece)
        MPI_Bcast((char *)data + (size_t)at * es, (int)(n - at < piece ? n - at : piece), type, 0, comm);
}

void tg_mpi_trainer_free(tg_mpi_trainer *tr) {
    if (!tr) return;
    for (int k = 0; tr->bucket && k < tr->n_buckets; k++) {
        free(tr->bucket[k].buf);
        free(tr->bucket[k].part);
    }
    if (tr->reduce_comm != MPI_COMM_NULL) MPI_Comm_free(&tr->reduce_comm);
    if (tr->gather_comm != MPI_COMM_NULL) MPI_Comm_free(&tr->gather_comm);
    tg_graph_free(tr->g);
    free(tr->bucket);
    free(tr->shadow);
    free(tr->param_bucket);
    free(tr->loss_parts);
    free(tr->slot);
    free(tr->index);
    free(tr);
}

static tg_mpi_trainer *fail_new(tg_mpi_trainer *tr, const char *why) {
    tg_mpi_trainer_free(tr);
    return why ? tg_fail(NULL, "mpi_trainer_new", "%s", why) : NULL;
}

tg_mpi_trainer *tg_mpi_trainer_new(tg_params *p, MPI_Comm comm, tg_mpi_opts opts) {
    int initialized = 0, finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    if (!initialized || finalized)
        return tg_fail(NULL, "mpi_trainer_new", "MPI is %s: call MPI_Init first", finalized ? "finalized" : "not initialized");
    if (!p) return tg_fail(NULL, "mpi_trainer_new", "parameters are NULL");
    if (comm == MPI_COMM_NULL) return tg_fail(NULL, "mpi_trainer_new", "the communicator is MPI_COMM_NULL");
    tg_mpi_trainer *tr = calloc(1, sizeof *tr);
    if (!tr) return NULL;
    tr->reduce_comm = tr->gather_comm = MPI_COMM_NULL;
    tr->params = p;
    tr->n_params = tg_params_count(p);
    tr->numel = tg_params_numel(p);
    MPI_Comm_rank(comm, &tr->rank);
    MPI_Comm_size(comm, &tr->size);
    MPI_Comm_dup(comm, &tr->reduce_comm);
    MPI_Comm_dup(comm, &tr->gather_comm);
    if (!same_layout_everywhere(tr)) return fail_new(tr, NULL);
    tg_rng_seed(&tr->rng, tg_data_parallel_shard_seed(opts.seed, tr->rank));
    tr->g = tg_graph_new();
    tr->shadow = calloc((size_t)(tr->n_params ? tr->n_params : 1), sizeof *tr->shadow);
    tr->param_bucket = calloc((size_t)(tr->n_params ? tr->n_params : 1), sizeof *tr->param_bucket);
    tr->loss_parts = calloc(2 * (size_t)tr->size, sizeof *tr->loss_parts);
    if (!tr->g || !tr->shadow || !tr->param_bucket || !tr->loss_parts || !make_index(tr))
        return fail_new(tr, "out of memory");
    // Layouts agree, so every rank fails here alike, or none does.
    if (!assign_buckets(tr, opts.bucket_bytes ? opts.bucket_bytes : DEFAULT_BUCKET_BYTES)) return fail_new(tr, NULL);
    if (!make_buckets(tr)) return fail_new(tr, "out of memory");
    for (int i = 0; i < tr->n_params; i++) {
        tg_tensor *t = tg_params_at(p, i);
        tg_mpi_bcast_elements(t->data, t->numel, t->dtype, tr->reduce_comm);
        tg_tensor_touch(t);
    }
    return tr;
}
