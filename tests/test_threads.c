// test_threads.c: separate graphs on separate threads, and the data-parallel trainer.
//
// The reference for the trainer is the plain single-graph loop (tg_backward on the whole
// batch), which the other tests check against PyTorch; N workers must match it. This file is
// also what the ThreadSanitizer build runs (scripts/test.sh), where any data race fails it.
#define _GNU_SOURCE // sched_setaffinity
#include <pthread.h>
#include <sched.h>
#include <time.h>

#include "tg_test.h"

#define T 4 // time steps
#define V 11 // vocabulary
#define E 5 // embedding
#define H 6 // hidden
#define C 3 // classes
#define MAX_BATCH 8

// A tagger: embedding -> 2-layer LSTM (dropout between layers) -> linear, cross-entropy
// over every (step, example); the loss is the mean over the shard's examples' tokens.
typedef struct {
    tg_params *params;
    tg_tensor *embedding, *head_w, *head_b;
    tg_rnn rnn;
    int32_t ids[T][MAX_BATCH];     // [T, B]
    int32_t targets[T][MAX_BATCH]; // [T, B]
} tagger;

static void tagger_init(tagger *m, tg_dtype dtype, double dropout, uint64_t seed) {
    tg_rng rng;
    tg_rng_seed(&rng, seed);
    m->params = tg_params_new();
    m->embedding = tg_params_add(m->params, "embedding.weight", dtype, tg_shape2(V, E));
    tg_tensor_fill_normal(m->embedding, &rng, 0, 1);
    tg_rnn_config cfg = {.cell = &tg_cell_lstm, .input_size = E, .hidden_size = H, .num_layers = 2, .dropout = dropout,
                         .dtype = dtype};
    cr_assert(tg_rnn_init(&m->rnn, &cfg, m->params, "rnn.", &rng));
    m->head_w = tg_params_add(m->params, "head.weight", dtype, tg_shape2(C, H));
    m->head_b = tg_params_add(m->params, "head.bias", dtype, tg_shape1(C));
    tg_tensor_fill_uniform(m->head_w, &rng, -0.4, 0.4);
    tg_tensor_fill_uniform(m->head_b, &rng, -0.4, 0.4);
    for (int t = 0; t < T; t++)
        for (int b = 0; b < MAX_BATCH; b++) {
            m->ids[t][b] = (int32_t)tg_rng_below(&rng, V);
            m->targets[t][b] = (int32_t)tg_rng_below(&rng, C);
        }
}

static tg_tensor *tagger_loss(tg_graph *g, const tg_shard *s, tg_rng *rng, void *user) {
    const tagger *m = user;
    int64_t n = s->count;
    int32_t *ids = tg_graph_alloc(g, sizeof(int32_t) * T * n);     // [T, n]
    int32_t *targets = tg_graph_alloc(g, sizeof(int32_t) * T * n); // [T * n]
    for (int t = 0; t < T; t++)
        for (int64_t b = 0; b < n; b++) {
            ids[t * n + b] = m->ids[t][s->begin + b];
            targets[t * n + b] = m->targets[t][s->begin + b];
        }
    tg_tensor *x = tg_embedding(g, m->embedding, tg_from_data(g, TG_I32, tg_shape2(T, n), ids)); // [T, n, E]
    tg_rnn_result r;
    if (!tg_rnn_forward(g, &m->rnn, x, NULL, NULL, rng, &r)) return NULL;
    tg_tensor *h = tg_reshape(g, r.output, tg_shape2(T * n, H));       // [T*n, H]
    tg_tensor *logits = tg_linear(g, h, m->head_w, m->head_b);         // [T*n, C]
    tg_tensor *y = tg_from_data(g, TG_I32, tg_shape1(T * n), targets); // [T*n]
    return tg_cross_entropy(g, logits, y, TG_REDUCE_MEAN, -100);
}

// Trains m for steps Adam steps on its first batch examples: with workers > 0 through the
// trainer (shards: 0 for one per worker), with workers == 0 by the plain loop on one graph.
static void train_sharded(tagger *m, int workers, int shards, int64_t batch, int steps, uint64_t seed) {
    tg_optim *opt = tg_optim_adam(m->params, (tg_adam_opts){.lr = 0.05});
    if (workers == 0) {
        tg_graph *g = tg_graph_new();
        tg_rng rng;
        tg_rng_seed(&rng, seed);
        for (int i = 0; i < steps; i++) {
            tg_graph_reset(g);
            tg_optim_zero_grad(opt);
            tg_shard whole = {.begin = 0, .count = batch, .batch = batch};
            cr_assert(tg_backward(g, tagger_loss(g, &whole, &rng, m)));
            tg_optim_step(opt);
        }
        tg_graph_free(g);
    } else {
        tg_data_parallel_opts opts = {.workers = workers, .seed = seed, .shards = shards};
        tg_data_parallel *dp = tg_data_parallel_new(m->params, opts);
        cr_assert_not_null(dp);
        for (int i = 0; i < steps; i++) {
            tg_optim_zero_grad(opt);
            double loss = tg_data_parallel_backward(dp, batch, tagger_loss, m);
            cr_assert(isfinite(loss) && loss > 0, "step %d: loss %g", i, loss);
            tg_optim_step(opt);
        }
        tg_data_parallel_free(dp);
    }
    tg_optim_free(opt);
}

static void train(tagger *m, int workers, int64_t batch, int steps, uint64_t seed) {
    train_sharded(m, workers, 0, batch, steps, seed);
}

static bool params_identical(const tg_params *a, const tg_params *b) {
    for (int i = 0; i < tg_params_count(b); i++) {
        const tg_tensor *x = tg_params_at(a, i), *y = tg_params_at(b, i);
        if (memcmp(x->data, y->data, (size_t)y->numel * tg_dtype_size(y->dtype)) != 0) return false;
    }
    return true;
}

// N workers against one graph on the whole batch, after 5 Adam steps, for batches that
// split evenly and ones that do not (7 = 4 + 3 = 3 + 2 + 2; 2 leaves a third worker idle).
static void check_matches_one_graph(tg_dtype dtype, double tolerance) {
    const int64_t batches[] = {6, 7, 2};
    for (int bi = 0; bi < 3; bi++)
        for (int workers = 1; workers <= 3; workers++) {
            tagger ref, dp;
            tagger_init(&ref, dtype, 0, 7);
            tagger_init(&dp, dtype, 0, 7);
            train(&ref, 0, batches[bi], 5, 1);
            train(&dp, workers, batches[bi], 5, 1);
            double err = test_params_max_relative_error(dp.params, ref.params);
            cr_assert(err <= tolerance, "%s, batch %lld, %d workers: relative error %.3g > %.3g",
                      tg_dtype_name(dtype), (long long)batches[bi], workers, err, tolerance);
            tg_params_free(ref.params);
            tg_params_free(dp.params);
        }
}

Test(data_parallel, matches_one_graph_f64) { check_matches_one_graph(TG_F64, 1e-12); }
Test(data_parallel, matches_one_graph_f32) { check_matches_one_graph(TG_F32, 1e-5); }

// The same seed and worker count repeat a run bit for bit, dropout included; another seed
// draws other masks, so the dropout is really drawn from the shards' generators.
Test(data_parallel, same_seed_same_bits) {
    tagger a, b, c;
    tagger_init(&a, TG_F32, 0.3, 7);
    tagger_init(&b, TG_F32, 0.3, 7);
    tagger_init(&c, TG_F32, 0.3, 7);
    train(&a, 3, 7, 3, 42);
    train(&b, 3, 7, 3, 42);
    train(&c, 3, 7, 3, 43);
    cr_assert(params_identical(a.params, b.params), "two runs with seed 42 and 3 workers differ");
    cr_assert(!params_identical(a.params, c.params), "seeds 42 and 43 gave the same parameters");
    tg_params_free(a.params);
    tg_params_free(b.params);
    tg_params_free(c.params);
}

// With dropout, shard k's masks come from tg_rng seeded with tg_data_parallel_shard_seed(
// seed, k): two shards run by hand on one thread with those generators, their losses
// weighted by their share of the batch, give the trainer's gradients.
Test(data_parallel, dropout_from_shard_generators) {
    tagger m;
    tagger_init(&m, TG_F64, 0.5, 7);
    const int64_t batch = 5, counts[2] = {3, 2};
    const int n = tg_params_count(m.params);
    tg_graph *g = tg_graph_new();
    int64_t begin = 0;
    for (int k = 0; k < 2; k++) {
        tg_rng rng;
        tg_rng_seed(&rng, tg_data_parallel_shard_seed(9, k));
        tg_graph_reset(g);
        tg_shard s = {.worker = k, .begin = begin, .count = counts[k], .batch = batch, .index = k};
        double weight = (double)counts[k] / batch;
        cr_assert(tg_backward_seed(g, tagger_loss(g, &s, &rng, &m), &weight));
        begin += counts[k];
    }
    tg_graph_free(g);
    double *expected[64];
    cr_assert(n <= 64);
    for (int i = 0; i < n; i++) {
        tg_tensor *p = tg_params_at(m.params, i);
        expected[i] = malloc((size_t)p->numel * sizeof(double));
        memcpy(expected[i], p->grad, (size_t)p->numel * sizeof(double));
    }
    tg_params_zero_grad(m.params);
    tg_data_parallel *dp = tg_data_parallel_new(m.params, (tg_data_parallel_opts){.workers = 2, .seed = 9});
    for (int k = 0; k < 2; k++) {
        tg_rng rng;
        tg_rng_seed(&rng, tg_data_parallel_shard_seed(9, k));
        cr_assert(memcmp(tg_data_parallel_rng(dp, k), &rng, sizeof rng) == 0, "worker %d's generator", k);
    }
    cr_assert(isfinite(tg_data_parallel_backward(dp, batch, tagger_loss, &m)));
    tg_data_parallel_free(dp);
    for (int i = 0; i < n; i++) {
        tg_tensor *p = tg_params_at(m.params, i);
        const double *got = p->grad;
        for (int64_t e = 0; e < p->numel; e++)
            ASSERT_CLOSE(got[e], expected[i][e], 1e-15, 1e-12);
        free(expected[i]);
    }
    tg_params_free(m.params);
}

// With more shards than workers, the shard count alone decides the bits: 1, 2 and 3 workers
// claiming 5 shards of a batch of 7, dropout included, end identical, and match one graph.
Test(data_parallel, shards_decide_the_bits) {
    tagger runs[3], ref;
    for (int workers = 1; workers <= 3; workers++) {
        tagger_init(&runs[workers - 1], TG_F32, 0.3, 7);
        train_sharded(&runs[workers - 1], workers, 5, 7, 4, 42);
    }
    for (int k = 1; k < 3; k++)
        cr_assert(params_identical(runs[k].params, runs[0].params), "%d workers on 5 shards differ from 1", k + 1);
    for (int k = 0; k < 3; k++) tg_params_free(runs[k].params);

    tagger_init(&ref, TG_F64, 0, 7);
    tagger_init(&runs[0], TG_F64, 0, 7);
    train(&ref, 0, 7, 5, 1);
    train_sharded(&runs[0], 2, 5, 7, 5, 1);
    double err = test_params_max_relative_error(runs[0].params, ref.params);
    cr_assert(err <= 1e-12, "2 workers on 5 shards: relative error %.3g against one graph", err);
    tg_params_free(ref.params);
    tg_params_free(runs[0].params);
}

typedef struct {
    tagger m;
    int ran_on[8]; // [shards]: the worker that ran shard k
} claim_probe;

// Worker 1 is slow (a core shared with another process, say): its shards take 200 ms more.
static tg_tensor *slow_worker_loss(tg_graph *g, const tg_shard *s, tg_rng *rng, void *user) {
    claim_probe *probe = user;
    probe->ran_on[s->index] = s->worker;
    if (s->worker == 1) nanosleep(&(struct timespec){0, 200 * 1000 * 1000}, NULL);
    return tagger_loss(g, s, rng, &probe->m);
}

// Shards go to whichever worker is free: while worker 1 sleeps through one shard, worker 0
// runs the other 7 (with a fixed half each, it would have waited for worker 1's 4).
Test(data_parallel, free_workers_claim_the_shards) {
    claim_probe probe;
    tagger_init(&probe.m, TG_F32, 0, 7);
    tg_data_parallel_opts opts = {.workers = 2, .seed = 1, .shards = 8};
    tg_data_parallel *dp = tg_data_parallel_new(probe.m.params, opts);
    cr_assert_eq(tg_data_parallel_shards(dp), 8);
    cr_assert(isfinite(tg_data_parallel_backward(dp, 8, slow_worker_loss, &probe)));
    int on_worker_0 = 0;
    for (int k = 0; k < 8; k++) on_worker_0 += probe.ran_on[k] == 0;
    cr_assert(on_worker_0 >= 7, "worker 0 ran %d of 8 shards", on_worker_0);
    tg_data_parallel_free(dp);
    tg_params_free(probe.m.params);
}

// With the process held to one CPU (as when the scheduler puts all the workers on the core
// another process leaves), running together cannot pay: the trainer finds its workers had
// one core's worth of CPU time and runs the shards on the calling thread alone, with the
// same bits as together.
Test(data_parallel, one_cpu_runs_alone) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu(), &one);
    cr_assert_eq(sched_setaffinity(0, sizeof one, &one), 0); // this test's own process
    tagger pinned, free_run;
    tagger_init(&pinned, TG_F32, 0.3, 7);
    tagger_init(&free_run, TG_F32, 0.3, 7);
    train_sharded(&free_run, 1, 2, 8, 12, 5); // one worker: every step alone
    tg_optim *opt = tg_optim_adam(pinned.params, (tg_adam_opts){.lr = 0.05});
    tg_data_parallel *dp = tg_data_parallel_new(pinned.params, (tg_data_parallel_opts){.workers = 2, .seed = 5});
    for (int i = 0; i < 12; i++) {
        tg_optim_zero_grad(opt);
        cr_assert(isfinite(tg_data_parallel_backward(dp, 8, tagger_loss, &pinned)));
        tg_optim_step(opt);
    }
    tg_data_parallel_stats st = tg_data_parallel_get_stats(dp);
    cr_assert(st.steps_alone >= 8 && st.last_cores < 1.15, "%lld steps alone of 12, %.2f cores",
              (long long)st.steps_alone, st.last_cores);
    cr_assert(params_identical(pinned.params, free_run.params), "alone and together gave other bits");
    tg_data_parallel_free(dp);
    tg_optim_free(opt);
    tg_params_free(pinned.params);
    tg_params_free(free_run.params);
}

// With merge_alone, a step the calling thread runs alone is the whole batch on one graph:
// one worker over 2 shards then repeats the plain loop on one graph bit for bit, dropout
// drawn from shard 0's generator; and held to one CPU, 2 workers merge the steps they run
// alone.
Test(data_parallel, merge_alone_is_one_graph) {
    tagger merged, plain;
    tagger_init(&merged, TG_F32, 0.3, 7);
    tagger_init(&plain, TG_F32, 0.3, 7);
    const int64_t batch = 7;
    tg_optim *opt = tg_optim_adam(plain.params, (tg_adam_opts){.lr = 0.05});
    tg_graph *g = tg_graph_new();
    tg_rng rng;
    tg_rng_seed(&rng, tg_data_parallel_shard_seed(42, 0));
    for (int i = 0; i < 4; i++) {
        tg_graph_reset(g);
        tg_optim_zero_grad(opt);
        tg_shard whole = {.begin = 0, .count = batch, .batch = batch};
        cr_assert(tg_backward(g, tagger_loss(g, &whole, &rng, &plain)));
        tg_optim_step(opt);
    }
    tg_graph_free(g);
    tg_optim_free(opt);

    opt = tg_optim_adam(merged.params, (tg_adam_opts){.lr = 0.05});
    tg_data_parallel_opts opts = {.workers = 1, .seed = 42, .shards = 2, .merge_alone = true};
    tg_data_parallel *dp = tg_data_parallel_new(merged.params, opts);
    for (int i = 0; i < 4; i++) {
        tg_optim_zero_grad(opt);
        cr_assert(isfinite(tg_data_parallel_backward(dp, batch, tagger_loss, &merged)));
        tg_optim_step(opt);
    }
    cr_assert_eq(tg_data_parallel_get_stats(dp).steps_merged, 4);
    cr_assert(params_identical(merged.params, plain.params), "merged steps differ from one graph");
    tg_data_parallel_free(dp);
    tg_optim_free(opt);

    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu(), &one);
    cr_assert_eq(sched_setaffinity(0, sizeof one, &one), 0); // this test's own process
    opt = tg_optim_adam(merged.params, (tg_adam_opts){.lr = 0.05});
    dp = tg_data_parallel_new(merged.params, (tg_data_parallel_opts){.workers = 2, .seed = 5, .merge_alone = true});
    for (int i = 0; i < 12; i++) {
        tg_optim_zero_grad(opt);
        cr_assert(isfinite(tg_data_parallel_backward(dp, 8, tagger_loss, &merged)));
        tg_optim_step(opt);
    }
    tg_data_parallel_stats st = tg_data_parallel_get_stats(dp);
    cr_assert(st.steps_merged >= 8 && st.steps_merged == st.steps_alone, "%lld steps merged, %lld alone, of 12",
              (long long)st.steps_merged, (long long)st.steps_alone);
    tg_data_parallel_free(dp);
    tg_optim_free(opt);
    tg_params_free(merged.params);
    tg_params_free(plain.params);
}

// --- Separate models on separate threads ---

typedef struct {
    tagger m;
    int workers; // 0: a plain loop on one graph
} training_job;

static void *train_on_thread(void *arg) {
    training_job *job = arg;
    train(&job->m, job->workers, 8, 4, 3);
    return NULL;
}

// Two models train on two threads at once, one of them data-parallel on 3 workers of its
// own; each ends bit-identical to the same training run alone.
Test(threads, two_models_on_two_threads) {
    training_job jobs[2], alone[2];
    for (int i = 0; i < 2; i++) {
        jobs[i].workers = alone[i].workers = i == 0 ? 0 : 3;
        tagger_init(&jobs[i].m, TG_F32, 0.2, 10 + i);
        tagger_init(&alone[i].m, TG_F32, 0.2, 10 + i);
    }
    pthread_t thread[2];
    for (int i = 0; i < 2; i++) cr_assert_eq(pthread_create(&thread[i], NULL, train_on_thread, &jobs[i]), 0);
    for (int i = 0; i < 2; i++) pthread_join(thread[i], NULL);
    for (int i = 0; i < 2; i++) {
        train_on_thread(&alone[i]);
        cr_assert(params_identical(jobs[i].m.params, alone[i].m.params), "model %d differs from its run alone", i);
        tg_params_free(jobs[i].m.params);
        tg_params_free(alone[i].m.params);
    }
}

// --- Errors ---

// A handler for errors that may come from several worker threads at once.
static pthread_mutex_t capture_lock = PTHREAD_MUTEX_INITIALIZER;
static void capture_locked(const char *message, void *user) {
    pthread_mutex_lock(&capture_lock);
    test_capture_error(message, user);
    pthread_mutex_unlock(&capture_lock);
}

static tg_tensor *vector_loss(tg_graph *g, const tg_shard *s, tg_rng *rng, void *user) {
    (void)rng;
    tagger *m = user;
    if (s->index != 1) return tg_sum(g, m->head_b);
    return tg_mul_scalar(g, m->head_b, 2.0); // [C]: not a scalar
}

static tg_tensor *shape_error_loss(tg_graph *g, const tg_shard *s, tg_rng *rng, void *user) {
    (void)rng;
    tagger *m = user;
    if (s->index != 1) return tg_sum(g, m->head_b);
    return tg_matmul(g, m->head_w, m->head_w); // [C, H] x [C, H]: reported on the thread that runs shard 1
}

// Bad input is reported, naming the op and the shapes, through the caller's handler (also
// from a worker thread), and leaves the gradients alone.
Test(data_parallel, errors_are_reported) {
    tagger m;
    tagger_init(&m, TG_F64, 0, 7);
    test_error_message[0] = 0;
    tg_set_thread_error_handler(capture_locked, NULL);
    cr_assert_null(tg_data_parallel_new(m.params, (tg_data_parallel_opts){.workers = 0, .seed = 1}));
    cr_assert(strstr(test_error_message, "tg_data_parallel_new: workers is 0"), "%s", test_error_message);
    cr_assert_null(tg_data_parallel_new(m.params, (tg_data_parallel_opts){.workers = 2, .shards = -1}));
    cr_assert(strstr(test_error_message, "tg_data_parallel_new: shards is -1"), "%s", test_error_message);

    tg_data_parallel *dp = tg_data_parallel_new(m.params, (tg_data_parallel_opts){.workers = 2, .seed = 1});
    cr_assert_null(tg_data_parallel_rng(dp, 2));
    cr_assert(strstr(test_error_message, "tg_data_parallel_rng: shard 2 of 2"), "%s", test_error_message);
    cr_assert(isnan(tg_data_parallel_backward(dp, 0, tagger_loss, &m)));
    cr_assert(strstr(test_error_message, "batch is 0"), "%s", test_error_message);
    test_error_count = 0;
    cr_assert(isnan(tg_data_parallel_backward(dp, 4, vector_loss, &m)));
    cr_assert_eq(test_error_count, 1);
    cr_assert(strstr(test_error_message, "tg_data_parallel_backward: shard 1's loss has shape [3]"), "%s",
              test_error_message);
    test_error_count = 0;
    cr_assert(isnan(tg_data_parallel_backward(dp, 4, shape_error_loss, &m)));
    cr_assert_eq(test_error_count, 1, "reported once, not again by the trainer");
    cr_assert(strstr(test_error_message, "tg_matmul") && strstr(test_error_message, "[3, 6]"), "%s",
              test_error_message);
    for (int i = 0; i < tg_params_count(m.params); i++) {
        const tg_tensor *p = tg_params_at(m.params, i);
        for (int64_t e = 0; e < p->numel; e++) cr_assert_eq(((const double *)p->grad)[e], 0.0, "%s", p->name);
    }
    tg_data_parallel_free(dp);
    tg_set_thread_error_handler(NULL, NULL);
    tg_params_free(m.params);
}

static char other_thread_message[1024];

static void capture_other(const char *message, void *user) {
    (void)user;
    snprintf(other_thread_message, sizeof other_thread_message, "%s", message);
}

static void *fail_on_thread(void *arg) {
    (void)arg;
    tg_graph *g = tg_graph_new();
    tg_tensor *r = tg_add(g, tg_zeros(g, TG_F32, tg_shape1(2)), tg_zeros(g, TG_F32, tg_shape1(3)));
    tg_graph_free(g);
    return r;
}

// A thread's own handler takes its errors; a thread without one uses the process's.
Test(threads, error_handler_per_thread) {
    test_error_message[0] = 0;
    tg_set_error_handler(capture_other, NULL);
    tg_set_thread_error_handler(test_capture_error, NULL);
    pthread_t thread;
    cr_assert_eq(pthread_create(&thread, NULL, fail_on_thread, NULL), 0);
    pthread_join(thread, NULL);
    cr_assert(strstr(other_thread_message, "tg_add"), "%s", other_thread_message);
    cr_assert_eq(test_error_message[0], 0, "%s", test_error_message);
    fail_on_thread(NULL);
    cr_assert(strstr(test_error_message, "tg_add"), "%s", test_error_message);
    tg_set_thread_error_handler(NULL, NULL);
    tg_set_error_handler(NULL, NULL);
}
