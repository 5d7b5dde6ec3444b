// data_parallel.c: N workers, one set of parameters, gradients summed in a fixed order.
//
// A worker's graph uses the shared parameters in forward (read only), so a model's code runs
// unchanged on every worker. Before its backward walk the worker points every tape input
// that is a parameter at its own shadow of it: a tensor with the parameter's data and its
// own gradient buffer. Backward then accumulates there, never into memory another worker
// writes, and no op needs to know. After all workers are done, the shadows are summed
// element by element in worker order, 0 to N-1, each worker summing a slice of the elements,
// so the result does not depend on which thread ran when.
//
// Worker 0 is the calling thread; workers 1..N-1 are threads of our own that sleep on a
// condition variable between jobs. A step is two jobs: forward and backward, then the sum.
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "tapegrad.h"
#include "tg_internal.h"
#include "tg_parallel.h"

typedef enum { JOB_BACKWARD, JOB_SUM, JOB_QUIT } job_kind;

typedef struct {
    tg_data_parallel *dp;
    int id;
    pthread_t thread;
    tg_graph *g;
    tg_rng rng;
    tg_tensor *shadow;  // [n_params]: the parameters with this worker's gradient buffers
    tg_shard shard;     // this step's; count 0 when the worker sits out
    double loss;        // this step's shard loss, unweighted
    bool ok;            // this step's backward succeeded
} worker;

struct tg_data_parallel {
    tg_params *params;
    int n_params;
    int64_t numel;     // elements over all parameters: the range JOB_SUM splits
    int n_workers;
    worker *w;         // [n_workers]
    const void **slot; // [slot_cap]: open addressing, parameter tensor -> index in index[]
    int *index;        // [slot_cap]
    size_t slot_mask;  // slot_cap - 1

    // The current job, written by the caller under lock before it bumps generation.
    pthread_mutex_t lock;
    pthread_cond_t start, done;
    uint64_t generation; // bumped once per job
    int pending;         // threads still running the current job
    job_kind job;
    tg_shard_loss_fn loss_fn;
    void *user;
    tg_error_handler handler; // the caller's, for the worker threads to report through
    void *handler_user;
    int n_active; // workers with a shard this step: 0 .. n_active-1
};

uint64_t tg_data_parallel_worker_seed(uint64_t seed, int worker) {
    // SplitMix64's output function on the worker's point of seed's sequence.
    uint64_t z = seed + 0x9E3779B97F4A7C15ull * ((uint64_t)worker + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static size_t slot_of(const void *key, size_t mask) {
    uint64_t h = (uint64_t)(uintptr_t)key * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 20) & mask;
}

// The index of parameter t, or -1 when t is not one of ours.
static int param_index(const tg_data_parallel *dp, const tg_tensor *t) {
    for (size_t s = slot_of(t, dp->slot_mask);; s = (s + 1) & dp->slot_mask) {
        if (!dp->slot[s]) return -1;
        if (dp->slot[s] == t) return dp->index[s];
    }
}

// Points every tape input that is a shared parameter at the worker's shadow of it.
static void use_shadows(tg_data_parallel *dp, worker *w) {
    size_t n = tg_graph_node_count(w->g);
    for (size_t i = 0; i < n; i++) {
        tg_node *node = tg_graph_node(w->g, i);
        for (int k = 0; k < node->n_in; k++) {
            tg_tensor *x = node->in[k];
            if (!x || x->node || !x->grad) continue; // only leaves with a gradient can be parameters
            int p = param_index(dp, x);
            if (p >= 0) node->in[k] = &w->shadow[p];
        }
    }
}

// Job 1: the worker's shard, forward and backward, into its shadows' gradients.
static void run_backward(tg_data_parallel *dp, worker *w) {
    w->ok = false;
    w->loss = NAN;
    if (w->id >= dp->n_active) return;
    for (int i = 0; i < dp->n_params; i++) {
        tg_tensor *p = tg_params_at(dp->params, i), *s = &w->shadow[i];
        s->data = p->data; // the same values, even if the caller replaced a buffer since
        s->version = p->version;
        s->requires_grad = p->requires_grad;
        memset(s->grad, 0, (size_t)s->numel * tg_dtype_size(s->dtype));
    }
    tg_graph_reset(w->g);
    tg_tensor *loss = dp->loss_fn(w->g, &w->shard, &w->rng, dp->user);
    if (!loss) {
        if (!tg_graph_last_error(w->g))
            tg_fail(w->g, "data_parallel_backward", "the loss function returned NULL for worker %d's shard", w->id);
        return;
    }
    if (loss->numel != 1 || loss->dtype == TG_I32) {
        tg_fail(w->g, "data_parallel_backward", "worker %d's shard loss has shape %s and dtype %s; it must be a "
                "float scalar", w->id, TG_SHAPE_STR(loss->shape), tg_dtype_name(loss->dtype));
        return;
    }
    use_shadows(dp, w);
    // d(global mean)/d(shard mean) = count / batch, rounded to the loss's dtype.
    double weight = (double)w->shard.count / (double)w->shard.batch;
    float weight32 = (float)weight;
    const void *seed = loss->dtype == TG_F32 ? (const void *)&weight32 : (const void *)&weight;
    if (!tg_backward_seed(w->g, loss, seed)) return;
    w->loss = tg_tensor_get(loss, 0);
    w->ok = true;
}

// Job 2: the worker's slice of all parameters' elements, each summed over the active
// workers in order and added to the parameter's gradient.
static void run_sum(tg_data_parallel *dp, worker *w) {
    int64_t lo = dp->numel * w->id / dp->n_workers, hi = dp->numel * (w->id + 1) / dp->n_workers;
    int64_t first = 0; // flat index of parameter i's element 0
    for (int i = 0; i < dp->n_params && first < hi; i++) {
        tg_tensor *p = tg_params_at(dp->params, i);
        int64_t a = lo > first ? lo - first : 0, b = hi - first < p->numel ? hi - first : p->numel;
        first += p->numel;
        if (a >= b || !p->grad) continue; // a parameter frozen by removing its gradient gets none
        TG_DISPATCH(p->dtype, {
            T *grad = p->grad; // [numel]
            for (int64_t e = a; e < b; e++) {
                T sum = ((const T *)dp->w[0].shadow[i].grad)[e];
                for (int k = 1; k < dp->n_active; k++) sum += ((const T *)dp->w[k].shadow[i].grad)[e];
                grad[e] += sum;
            }
        });
    }
}

static void run_job(tg_data_parallel *dp, worker *w, job_kind job) {
    if (job == JOB_BACKWARD) run_backward(dp, w);
    if (job == JOB_SUM) run_sum(dp, w);
}

static void *worker_main(void *arg) {
    worker *w = arg;
    tg_data_parallel *dp = w->dp;
    uint64_t seen = 0;
    for (;;) {
        pthread_mutex_lock(&dp->lock);
        while (dp->generation == seen) pthread_cond_wait(&dp->start, &dp->lock);
        seen = dp->generation;
        job_kind job = dp->job;
        tg_set_thread_error_handler(dp->handler, dp->handler_user);
        pthread_mutex_unlock(&dp->lock);
        if (job == JOB_QUIT) return NULL;
        run_job(dp, w, job);
        pthread_mutex_lock(&dp->lock);
        if (--dp->pending == 0) pthread_cond_signal(&dp->done);
        pthread_mutex_unlock(&dp->lock);
    }
}

// Runs job on every worker, worker 0 here, and returns when all are done. The lock orders
// everything the caller wrote before it against the workers' reads, and their writes
// against what the caller reads after.
static void run_all(tg_data_parallel *dp, job_kind job) {
    pthread_mutex_lock(&dp->lock);
    dp->job = job;
    dp->pending = dp->n_workers - 1;
    tg_error_handler_current(&dp->handler, &dp->handler_user);
    dp->generation++;
    pthread_cond_broadcast(&dp->start);
    pthread_mutex_unlock(&dp->lock);
    run_job(dp, &dp->w[0], job);
    pthread_mutex_lock(&dp->lock);
    while (dp->pending > 0) pthread_cond_wait(&dp->done, &dp->lock);
    pthread_mutex_unlock(&dp->lock);
}

// Frees a trainer whose threads 1..started-1 are running (0 or 1: none).
static void destroy(tg_data_parallel *dp, int started) {
    if (started > 1) {
        pthread_mutex_lock(&dp->lock);
        dp->job = JOB_QUIT;
        dp->generation++;
        pthread_cond_broadcast(&dp->start);
        pthread_mutex_unlock(&dp->lock);
        for (int k = 1; k < started; k++) pthread_join(dp->w[k].thread, NULL);
    }
    for (int k = 0; dp->w && k < dp->n_workers; k++) {
        worker *w = &dp->w[k];
        for (int i = 0; w->shadow && i < dp->n_params; i++) free(w->shadow[i].grad);
        free(w->shadow);
        tg_graph_free(w->g);
    }
    pthread_mutex_destroy(&dp->lock);
    pthread_cond_destroy(&dp->start);
    pthread_cond_destroy(&dp->done);
    free(dp->w);
    free(dp->slot);
    free(dp->index);
    free(dp);
}

void tg_data_parallel_free(tg_data_parallel *dp) {
    if (dp) destroy(dp, dp->n_workers);
}

tg_data_parallel *tg_data_parallel_new(tg_params *p, tg_data_parallel_opts opts) {
    if (!p) return tg_fail(NULL, "data_parallel_new", "parameters are NULL");
    if (opts.workers < 1 || opts.workers > 1024)
        return tg_fail(NULL, "data_parallel_new", "workers is %d; it must be 1 to 1024", opts.workers);
    tg_data_parallel *dp = calloc(1, sizeof *dp);
    if (!dp) return NULL;
    pthread_mutex_init(&dp->lock, NULL);
    pthread_cond_init(&dp->start, NULL);
    pthread_cond_init(&dp->done, NULL);
    dp->params = p;
    dp->n_params = tg_params_count(p);
    dp->numel = tg_params_numel(p);
    dp->n_workers = opts.workers;
    size_t cap = 16;
    while (cap < 2 * (size_t)dp->n_params) cap *= 2;
    dp->slot_mask = cap - 1;
    dp->slot = calloc(cap, sizeof *dp->slot);
    dp->index = calloc(cap, sizeof *dp->index);
    dp->w = calloc((size_t)dp->n_workers, sizeof *dp->w);
    if (!dp->slot || !dp->index || !dp->w) {
        destroy(dp, 0);
        return NULL;
    }
    for (int i = 0; i < dp->n_params; i++) {
        const tg_tensor *t = tg_params_at(p, i);
        size_t s = slot_of(t, dp->slot_mask);
        while (dp->slot[s]) s = (s + 1) & dp->slot_mask;
        dp->slot[s] = t;
        dp->index[s] = i;
    }
    for (int k = 0; k < dp->n_workers; k++) {
        worker *w = &dp->w[k];
        w->dp = dp;
        w->id = k;
        tg_rng_seed(&w->rng, tg_data_parallel_worker_seed(opts.seed, k));
        w->g = tg_graph_new();
        w->shadow = calloc((size_t)dp->n_params, sizeof *w->shadow);
        if (!w->g || !w->shadow) {
            destroy(dp, 0);
            return NULL;
        }
        for (int i = 0; i < dp->n_params; i++) {
            tg_tensor *s = &w->shadow[i];
            *s = *tg_params_at(p, i); // same name, shape and data; its own gradient below
            s->grad = calloc(s->numel ? (size_t)s->numel : 1, tg_dtype_size(s->dtype)); // calloc(0) may be NULL
            if (!s->grad) {
                destroy(dp, 0);
                return NULL;
            }
        }
    }
    for (int k = 1; k < dp->n_workers; k++) {
        if (pthread_create(&dp->w[k].thread, NULL, worker_main, &dp->w[k]) != 0) {
            destroy(dp, k);
            return tg_fail(NULL, "data_parallel_new", "could not start worker thread %d of %d", k, opts.workers);
        }
    }
    return dp;
}

double tg_data_parallel_backward(tg_data_parallel *dp, int64_t batch, tg_shard_loss_fn loss, void *user) {
    if (!dp || !loss) {
        tg_fail(NULL, "data_parallel_backward", "%s is NULL", dp ? "the loss function" : "the trainer");
        return NAN;
    }
    if (batch < 1) {
        tg_fail(NULL, "data_parallel_backward", "batch is %lld; it must be at least 1", (long long)batch);
        return NAN;
    }
    if (tg_params_count(dp->params) != dp->n_params || tg_params_numel(dp->params) != dp->numel) {
        tg_fail(NULL, "data_parallel_backward", "the parameters changed since the trainer was made (%d then, %d now)",
                dp->n_params, tg_params_count(dp->params));
        return NAN;
    }
    dp->loss_fn = loss;
    dp->user = user;
    dp->n_active = batch < dp->n_workers ? (int)batch : dp->n_workers;
    int64_t base = batch / dp->n_active, extra = batch % dp->n_active, begin = 0;
    for (int k = 0; k < dp->n_workers; k++) {
        int64_t count = k < dp->n_active ? base + (k < extra) : 0;
        dp->w[k].shard = (tg_shard){k, begin, count, batch};
        begin += count;
    }
    run_all(dp, JOB_BACKWARD);
    double total = 0;
    for (int k = 0; k < dp->n_active; k++) {
        if (!dp->w[k].ok) return NAN;
        total += dp->w[k].loss * ((double)dp->w[k].shard.count / (double)batch);
    }
    run_all(dp, JOB_SUM);
    return total;
}

int tg_data_parallel_workers(const tg_data_parallel *dp) { return dp ? dp->n_workers : 0; }

tg_rng *tg_data_parallel_rng(tg_data_parallel *dp, int worker) {
    if (!dp) return tg_fail(NULL, "data_parallel_rng", "the trainer is NULL");
    if (worker < 0 || worker >= dp->n_workers)
        return tg_fail(NULL, "data_parallel_rng", "worker %d of %d does not exist", worker, dp->n_workers);
    return &dp->w[worker].rng;
}
