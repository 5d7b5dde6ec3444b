// data_parallel.c: N workers, S shards, one set of parameters, gradients summed in a fixed order.
//
// A worker's graph uses the shared parameters in forward (read only), so a model's code runs
// unchanged on every worker. Before its backward walk the worker points every tape input
// that is a parameter at the shard's shadow of it: a tensor with the parameter's data and
// the shard's own gradient buffer. Backward then accumulates there, never into memory another
// worker writes, and no op needs to know. After all shards are done, the shadows are summed
// element by element in shard order, 0 to S-1, so the result depends on the shards, never on
// which thread ran which shard when.
//
// Workers claim shards from a counter, so with more shards than workers a worker that
// shares its core with another process runs fewer of them instead of holding the step up.
// Worker 0 is the calling thread; workers 1..N-1 are threads of our own that sleep on a
// condition variable between jobs. A step is two jobs: forward and backward of the shards,
// then the sum, whose chunks of elements are claimed the same way.
//
// When another process keeps the cores busy, the scheduler may run all our workers on one
// core, where they only add switching and cache misses to the same work. So the trainer
// measures, on every step it runs together, how many cores the workers really had (their
// threads' CPU time over the step's wall time); after two steps with less than
// TOGETHER_MIN_CORES, the calling thread runs every shard alone for a stretch of steps,
// then tries together again. Which thread runs a shard never changes its bits. With
// opts.merge_alone, a step alone runs the whole batch as one shard instead, as fast as one
// thread, at the price of bits that depend on the machine's load.
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "tapegrad.h"
#include "tg_internal.h"
#include "tg_parallel.h"

typedef enum { JOB_BACKWARD, JOB_SUM, JOB_QUIT } job_kind;

// Below this many cores' worth of CPU time during a step, running together does not pay
// for its own costs (the sum job, waking the threads, sharing a core's caches).
#define TOGETHER_MIN_CORES 1.15
// Steps run alone after running together did not pay: the first stretch, and the longest
// it grows to (doubling) while it keeps not paying, which bounds what probing costs.
enum { ALONE_FIRST = 8, ALONE_MAX = 256 };

// Elements of the gradients a worker sums at a time: large enough that claiming costs
// nothing, small enough that a slow worker holds the sum up by little.
enum { SUM_CHUNK = 1 << 15 };

typedef struct {
    tg_shard shard;    // this step's; count 0 when the shard sits out
    tg_rng rng;        // its dropout's
    tg_tensor *shadow; // [n_params]: the parameters with this shard's gradient buffers
    double loss;       // this step's shard loss, unweighted
    bool ok;           // this step's backward succeeded
} shard_state;

typedef struct {
    struct tg_data_parallel *dp;
    int id;
    pthread_t thread;
    tg_graph *g;     // reset for every shard the worker runs
    int64_t cpu_ns;  // the thread's CPU time in its last job
} worker;

struct tg_data_parallel {
    tg_params *params;
    int n_params;
    int64_t numel; // elements over all parameters: the range JOB_SUM splits
    int n_workers, n_shards;
    bool merge_alone; // opts.merge_alone: a step alone runs the whole batch as one shard
    worker *w;         // [n_workers]
    shard_state *s;    // [n_shards]
    const void **slot; // [slot_cap]: open addressing, parameter tensor -> index in index[]
    int *index;        // [slot_cap]
    size_t slot_mask;  // slot_cap - 1

    // The current job, written by the caller under lock before it bumps generation.
    pthread_mutex_t lock;
    pthread_cond_t start, done;
    uint64_t generation; // bumped once per job
    int pending;         // threads still running the current job
    job_kind job;
    atomic_int next; // the job's next unclaimed shard, or chunk of elements
    tg_shard_loss_fn loss_fn;
    void *user;
    tg_error_handler handler; // the caller's, for the worker threads to report through
    void *handler_user;
    int n_active; // shards with examples this step: 0 .. n_active-1

    // Running together or alone (see the top of the file).
    int alone_left;     // steps still to run alone
    int alone_stretch;  // the next stretch's length
    int slow_together;  // consecutive together steps below TOGETHER_MIN_CORES
    tg_data_parallel_stats stats;
};

uint64_t tg_data_parallel_shard_seed(uint64_t seed, int shard) {
    // SplitMix64's output function on the shard's point of seed's sequence.
    uint64_t z = seed + 0x9E3779B97F4A7C15ull * ((uint64_t)shard + 1);
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

// Points every tape input of g that is a shared parameter at the shard's shadow of it.
static void use_shadows(tg_data_parallel *dp, tg_graph *g, tg_tensor *shadow) {
    size_t n = tg_graph_node_count(g);
    for (size_t i = 0; i < n; i++) {
        tg_node *node = tg_graph_node(g, i);
        for (int k = 0; k < node->n_in; k++) {
            tg_tensor *x = node->in[k];
            if (!x || x->node || !x->grad) continue; // only leaves with a gradient can be parameters
            int p = param_index(dp, x);
            if (p >= 0) node->in[k] = &shadow[p];
        }
    }
}

// The loss function's result for shard on g, or NULL (reported) when it failed or is not a
// float scalar.
static tg_tensor *shard_loss(tg_data_parallel *dp, tg_graph *g, const tg_shard *shard, tg_rng *rng) {
    tg_graph_reset(g);
    tg_tensor *loss = dp->loss_fn(g, shard, rng, dp->user);
    if (!loss) {
        if (!tg_graph_last_error(g))
            tg_fail(g, "data_parallel_backward", "the loss function returned NULL for shard %d", shard->index);
        return NULL;
    }
    if (loss->numel != 1 || loss->dtype == TG_I32) {
        tg_fail(g, "data_parallel_backward", "shard %d's loss has shape %s and dtype %s; it must be a float scalar",
                shard->index, TG_SHAPE_STR(loss->shape), tg_dtype_name(loss->dtype));
        return NULL;
    }
    return loss;
}

// One shard, forward and backward on the worker's graph, into the shard's shadows' gradients.
static void run_shard(tg_data_parallel *dp, worker *w, shard_state *st) {
    st->ok = false;
    st->loss = NAN;
    st->shard.worker = w->id;
    for (int i = 0; i < dp->n_params; i++) {
        tg_tensor *p = tg_params_at(dp->params, i), *s = &st->shadow[i];
        s->data = p->data; // the same values, even if the caller replaced a buffer since
        s->version = p->version;
        s->requires_grad = p->requires_grad;
        memset(s->grad, 0, (size_t)s->numel * tg_dtype_size(s->dtype));
    }
    tg_tensor *loss = shard_loss(dp, w->g, &st->shard, &st->rng);
    if (!loss) return;
    use_shadows(dp, w->g, st->shadow);
    // d(global mean)/d(shard mean) = count / batch, rounded to the loss's dtype.
    double weight = (double)st->shard.count / (double)st->shard.batch;
    float weight32 = (float)weight;
    const void *seed = loss->dtype == TG_F32 ? (const void *)&weight32 : (const void *)&weight;
    if (!tg_backward_seed(w->g, loss, seed)) return;
    st->loss = tg_tensor_get(loss, 0);
    st->ok = true;
}

// Elements [lo, hi) of the parameters, flattened in order: each summed over the active
// shards in shard order and added to the parameter's gradient.
TG_VECTORIZE static void sum_range(tg_data_parallel *dp, int64_t lo, int64_t hi) {
    int64_t first = 0; // flat index of parameter i's element 0
    for (int i = 0; i < dp->n_params && first < hi; i++) {
        tg_tensor *p = tg_params_at(dp->params, i);
        int64_t a = lo > first ? lo - first : 0, b = hi - first < p->numel ? hi - first : p->numel;
        first += p->numel;
        if (a >= b || !p->grad) continue; // a parameter frozen by removing its gradient gets none
        TG_DISPATCH(p->dtype, {
            T *grad = p->grad; // [numel]
            for (int64_t e = a; e < b; e++) {
                T sum = ((const T *)dp->s[0].shadow[i].grad)[e];
                for (int k = 1; k < dp->n_active; k++) sum += ((const T *)dp->s[k].shadow[i].grad)[e];
                grad[e] += sum;
            }
        });
    }
}

static int64_t thread_cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t wall_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

// A job on one worker: claims shards (or chunks of the sum) until none are left.
static void run_job(tg_data_parallel *dp, worker *w, job_kind job) {
    int64_t start = thread_cpu_ns();
    if (job == JOB_BACKWARD) {
        for (int k; (k = atomic_fetch_add(&dp->next, 1)) < dp->n_active;) run_shard(dp, w, &dp->s[k]);
    } else if (job == JOB_SUM) {
        for (int64_t c; (c = atomic_fetch_add(&dp->next, 1)) * (int64_t)SUM_CHUNK < dp->numel;) {
            int64_t lo = c * SUM_CHUNK, hi = lo + SUM_CHUNK < dp->numel ? lo + SUM_CHUNK : dp->numel;
            sum_range(dp, lo, hi);
        }
    }
    w->cpu_ns = thread_cpu_ns() - start;
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

// Runs job on every worker, worker 0 here, or with together false on worker 0 alone, and
// returns when all are done. The lock orders everything the caller wrote before it against
// the workers' reads, and their writes against what the caller reads after.
static void run_all(tg_data_parallel *dp, job_kind job, bool together) {
    if (!together) {
        atomic_store(&dp->next, 0);
        run_job(dp, &dp->w[0], job);
        return;
    }
    pthread_mutex_lock(&dp->lock);
    dp->job = job;
    atomic_store(&dp->next, 0);
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
    for (int k = 0; dp->w && k < dp->n_workers; k++) tg_graph_free(dp->w[k].g);
    for (int k = 0; dp->s && k < dp->n_shards; k++) {
        shard_state *st = &dp->s[k];
        for (int i = 0; st->shadow && i < dp->n_params; i++) free(st->shadow[i].grad);
        free(st->shadow);
    }
    pthread_mutex_destroy(&dp->lock);
    pthread_cond_destroy(&dp->start);
    pthread_cond_destroy(&dp->done);
    free(dp->w);
    free(dp->s);
    free(dp->slot);
    free(dp->index);
    free(dp);
}

void tg_data_parallel_free(tg_data_parallel *dp) {
    if (dp) destroy(dp, dp->n_workers);
}

// The parameters' slots, the workers' graphs and the shards' generators and shadows.
static bool allocate(tg_data_parallel *dp, uint64_t seed) {
    size_t cap = 16;
    while (cap < 2 * (size_t)dp->n_params) cap *= 2;
    dp->slot_mask = cap - 1;
    dp->slot = calloc(cap, sizeof *dp->slot);
    dp->index = calloc(cap, sizeof *dp->index);
    dp->w = calloc((size_t)dp->n_workers, sizeof *dp->w);
    dp->s = calloc((size_t)dp->n_shards, sizeof *dp->s);
    if (!dp->slot || !dp->index || !dp->w || !dp->s) return false;
    for (int i = 0; i < dp->n_params; i++) {
        const tg_tensor *t = tg_params_at(dp->params, i);
        size_t s = slot_of(t, dp->slot_mask);
        while (dp->slot[s]) s = (s + 1) & dp->slot_mask;
        dp->slot[s] = t;
        dp->index[s] = i;
    }
    for (int k = 0; k < dp->n_workers; k++) {
        dp->w[k] = (worker){.dp = dp, .id = k, .g = tg_graph_new()};
        if (!dp->w[k].g) return false;
    }
    for (int k = 0; k < dp->n_shards; k++) {
        shard_state *st = &dp->s[k];
        tg_rng_seed(&st->rng, tg_data_parallel_shard_seed(seed, k));
        st->shadow = calloc((size_t)dp->n_params, sizeof *st->shadow);
        if (!st->shadow) return false;
        for (int i = 0; i < dp->n_params; i++) {
            tg_tensor *s = &st->shadow[i];
            *s = *tg_params_at(dp->params, i); // same name, shape and data; its own gradient below
            s->grad = calloc(s->numel ? (size_t)s->numel : 1, tg_dtype_size(s->dtype)); // calloc(0) may be NULL
            if (!s->grad) return false;
        }
    }
    return true;
}

tg_data_parallel *tg_data_parallel_new(tg_params *p, tg_data_parallel_opts opts) {
    if (!p) return tg_fail(NULL, "data_parallel_new", "parameters are NULL");
    if (opts.workers < 1 || opts.workers > 1024)
        return tg_fail(NULL, "data_parallel_new", "workers is %d; it must be 1 to 1024", opts.workers);
    if (opts.shards < 0 || opts.shards > 65536)
        return tg_fail(NULL, "data_parallel_new", "shards is %d; it must be 1 to 65536, or 0 for one per worker",
                       opts.shards);
    tg_data_parallel *dp = calloc(1, sizeof *dp);
    if (!dp) return NULL;
    pthread_mutex_init(&dp->lock, NULL);
    pthread_cond_init(&dp->start, NULL);
    pthread_cond_init(&dp->done, NULL);
    dp->params = p;
    dp->n_params = tg_params_count(p);
    dp->numel = tg_params_numel(p);
    dp->n_workers = opts.workers;
    dp->n_shards = opts.shards ? opts.shards : opts.workers;
    dp->merge_alone = opts.merge_alone;
    dp->alone_stretch = ALONE_FIRST;
    if (!allocate(dp, opts.seed)) {
        destroy(dp, 0);
        return NULL;
    }
    for (int k = 1; k < dp->n_workers; k++) {
        if (pthread_create(&dp->w[k].thread, NULL, worker_main, &dp->w[k]) != 0) {
            destroy(dp, k);
            return tg_fail(NULL, "data_parallel_new", "could not start worker thread %d of %d", k, opts.workers);
        }
    }
    return dp;
}

// After a step run together in wall_ns: how many cores' worth of CPU time the workers had;
// the second step in a row below TOGETHER_MIN_CORES starts a stretch alone.
static void judge_together(tg_data_parallel *dp, int64_t wall_ns) {
    int64_t cpu = 0;
    for (int k = 0; k < dp->n_workers; k++) cpu += dp->w[k].cpu_ns;
    double cores = (double)cpu / (double)(wall_ns > 0 ? wall_ns : 1);
    dp->stats.last_cores = cores;
    if (cores >= TOGETHER_MIN_CORES) {
        dp->slow_together = 0;
        dp->alone_stretch = ALONE_FIRST;
        return;
    }
    if (++dp->slow_together < 2) return;
    dp->slow_together = 0;
    dp->alone_left = dp->alone_stretch;
    dp->alone_stretch = dp->alone_stretch * 2 < ALONE_MAX ? dp->alone_stretch * 2 : ALONE_MAX;
}

// A step alone with opts.merge_alone: the whole batch as one shard on the calling thread's
// graph (dropout from shard 0's generator), backward straight into the parameters'
// gradients, as one graph on one thread would run it: no smaller products, no shadows to
// zero and sum. Its bits differ from the shards' (sums over the batch in another order).
static double merged_step(tg_data_parallel *dp, int64_t batch) {
    if (dp->alone_left > 0) dp->alone_left--;
    dp->stats.steps_alone++;
    dp->stats.steps_merged++;
    tg_shard whole = {.worker = 0, .begin = 0, .count = batch, .batch = batch, .index = 0};
    tg_tensor *loss = shard_loss(dp, dp->w[0].g, &whole, &dp->s[0].rng);
    return loss && tg_backward(dp->w[0].g, loss) ? tg_tensor_get(loss, 0) : NAN;
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
    dp->n_active = batch < dp->n_shards ? (int)batch : dp->n_shards;
    int64_t base = batch / dp->n_active, extra = batch % dp->n_active, begin = 0;
    for (int k = 0; k < dp->n_shards; k++) {
        int64_t count = k < dp->n_active ? base + (k < extra) : 0;
        dp->s[k].shard = (tg_shard){.worker = 0, .begin = begin, .count = count, .batch = batch, .index = k};
        begin += count;
    }
    bool together = dp->n_workers > 1 && dp->n_active > 1 && dp->alone_left == 0;
    if (!together && dp->merge_alone && dp->n_active > 1) return merged_step(dp, batch);
    int64_t start = wall_ns();
    run_all(dp, JOB_BACKWARD, together);
    if (together) judge_together(dp, wall_ns() - start);
    else if (dp->alone_left > 0) dp->alone_left--;
    dp->stats.steps_together += together;
    dp->stats.steps_alone += !together;
    double total = 0;
    for (int k = 0; k < dp->n_active; k++) {
        if (!dp->s[k].ok) return NAN;
        total += dp->s[k].loss * ((double)dp->s[k].shard.count / (double)batch);
    }
    run_all(dp, JOB_SUM, together);
    return total;
}

int tg_data_parallel_workers(const tg_data_parallel *dp) { return dp ? dp->n_workers : 0; }

int tg_data_parallel_shards(const tg_data_parallel *dp) { return dp ? dp->n_shards : 0; }

tg_data_parallel_stats tg_data_parallel_get_stats(const tg_data_parallel *dp) {
    return dp ? dp->stats : (tg_data_parallel_stats){0};
}

tg_rng *tg_data_parallel_rng(tg_data_parallel *dp, int shard) {
    if (!dp) return tg_fail(NULL, "data_parallel_rng", "the trainer is NULL");
    if (shard < 0 || shard >= dp->n_shards)
        return tg_fail(NULL, "data_parallel_rng", "shard %d of %d does not exist", shard, dp->n_shards);
    return &dp->s[shard].rng;
}
