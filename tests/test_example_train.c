// test_example_train.c: the examples' shared loop of epochs, their batches, the weight of a
// shard's tokens and the threads that share work (examples/common/train.c). The steps
// themselves, on one and on N workers, are test_example_shards.c's.
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "tg_ex_train.h"
#include "tg_test.h"

// What the loop called, in order.
typedef struct {
    int64_t epoch;            // the epoch begin_epoch last started
    int64_t begun[8], ended[8];
    int n_begun, n_ended;
    int64_t seen[32]; // 100 * epoch + k of every step
    int n_seen;
} calls;

static void begin_epoch(void *user, int64_t epoch) {
    calls *c = user;
    c->epoch = epoch;
    c->begun[c->n_begun++] = epoch;
}

static double step(void *user, int64_t k, double *units) {
    calls *c = user;
    c->seen[c->n_seen++] = 100 * c->epoch + k;
    *units = 1;
    return (double)(10 * c->epoch + k); // a loss that says which step it was
}

static void end_epoch(void *user, int64_t epoch) {
    calls *c = user;
    c->ended[c->n_ended++] = epoch;
}

static bool save(void *user, int64_t step) {
    (void)user, (void)step;
    cr_assert_fail("a saver without a path is never due");
    return false;
}

// A run resumed at step 3 of epochs of 4 steps, stopped by max_steps 6: the rest of epoch 0,
// all of epoch 1, the first step of epoch 2; dev after epochs 0 and 1 only.
Test(train_loop, resumes_mid_epoch_and_stops_after_max_steps) {
    calls c = {0};
    tg_ex_loop loop = {"ex", 4, 6, &c, begin_epoch, step, end_epoch, save};
    tg_ex_saver saver = {0};
    tg_ex_run run = tg_ex_run_at(3);
    tg_ex_train_epochs(&loop, 1.0, &saver, &run);
    const int64_t seen[] = {3, 100, 101, 102, 103, 200};
    cr_assert_eq(c.n_seen, 6);
    for (int i = 0; i < 6; i++) cr_assert_eq(c.seen[i], seen[i], "step %d was %lld", i, (long long)c.seen[i]);
    cr_assert_eq(c.n_begun, 3);
    for (int i = 0; i < 3; i++) cr_assert_eq(c.begun[i], i);
    cr_assert_eq(c.n_ended, 2);
    cr_assert(c.ended[0] == 0 && c.ended[1] == 1);
    cr_assert_eq(run.step, 9);
    cr_assert_eq(run.start_step, 3);
    cr_assert_eq(run.dev_step, 8);
    cr_assert_eq(run.first_loss, 3.0);  // epoch 0, k 3
    cr_assert_eq(run.last_loss, 20.0); // the mean over the last (partial) epoch: its one step
}

// No batches (an empty training split): no epoch starts, the run stays where it was.
Test(train_loop, nothing_to_train_on) {
    calls c = {0};
    tg_ex_loop loop = {"ex", 0, 0, &c, begin_epoch, step, end_epoch, save};
    tg_ex_saver saver = {0};
    tg_ex_run run = tg_ex_run_at(5);
    tg_ex_train_epochs(&loop, 1.0, &saver, &run);
    cr_assert(c.n_begun == 0 && c.n_seen == 0 && c.n_ended == 0);
    cr_assert_eq(run.step, 5);
    cr_assert_eq(run.dev_step, -1);
}

// 10 examples in batches of 4: 4 + 4 + 2, each example once an epoch, epochs in other orders.
Test(train_loop, batches_cover_each_example_once) {
    int train[10];
    int64_t start[11];
    for (int i = 0; i < 10; i++) train[i] = i, start[i] = 3 * i;
    start[10] = 30;
    tg_ex_batches b;
    cr_assert(tg_ex_batches_init(&b, train, 10, start, 4, 8, 1));
    cr_assert_eq(tg_ex_batches_per_epoch(&b), 3);
    int first[10];
    for (int64_t epoch = 0; epoch < 2; epoch++) {
        tg_ex_batches_epoch(&b, epoch);
        int count[10] = {0}, sizes[3];
        for (int k = 0; k < 3; k++) {
            const int *idx;
            sizes[k] = tg_ex_batches_at(&b, k, &idx);
            for (int i = 0; i < sizes[k]; i++) count[idx[i]]++;
            if (epoch == 0) memcpy(first + 4 * k, idx, sizeof(int) * (size_t)sizes[k]);
        }
        cr_assert(sizes[0] == 4 && sizes[1] == 4 && sizes[2] == 2);
        for (int i = 0; i < 10; i++) cr_assert_eq(count[i], 1, "epoch %lld: example %d", (long long)epoch, i);
    }
    cr_assert(memcmp(first, b.order, sizeof first) != 0, "epochs 0 and 1 came in the same order");
    tg_ex_batches_free(&b);
}

// A shard's token mean counts as its tokens' share of the batch's: shards of 3 and 4
// examples holding 10 and 20 of 30 tokens weigh (10/30)(7/3) and (20/30)(7/4), so that with
// the trainer's weights count/batch they add up to 1. The whole batch weighs 1.
Test(train_loop, shard_token_weight) {
    tg_shard a = {.worker = 0, .begin = 0, .count = 3, .batch = 7, .index = 0},
             b = {.worker = 1, .begin = 3, .count = 4, .batch = 7, .index = 1}, whole = {.begin = 0, .count = 7, .batch = 7};
    double wa = tg_ex_shard_token_weight(&a, 10, 30), wb = tg_ex_shard_token_weight(&b, 20, 30);
    ASSERT_CLOSE(wa, 10.0 / 30 * 7 / 3, 0, 1e-15);
    ASSERT_CLOSE(wb, 20.0 / 30 * 7 / 4, 0, 1e-15);
    ASSERT_CLOSE(wa * 3 / 7 + wb * 4 / 7, 1.0, 0, 1e-15);
    cr_assert_eq(tg_ex_shard_token_weight(&whole, 30, 30), 1.0);
}

// --- Work for several threads ---

typedef struct {
    atomic_int runs[64];      // [tasks]: times each task ran
    atomic_int thread_of[64]; // [tasks]: the thread number it ran on
    atomic_int started;       // tasks begun, for the test that two run at once
    atomic_bool overlap;      // two tasks ran at the same time
} task_log;

static void log_task(void *user, int task, int thread) {
    task_log *l = user;
    atomic_fetch_add(&l->runs[task], 1);
    atomic_store(&l->thread_of[task], thread);
}

// Every task runs once, on a thread numbered below the count, whatever the count (more
// threads than tasks, one thread, none to run).
Test(parallel_for, every_task_runs_once) {
    const int threads[] = {1, 2, 4, 100};
    for (int k = 0; k < 4; k++) {
        static task_log l;
        memset(&l, 0, sizeof l);
        tg_ex_parallel_for(threads[k], 37, log_task, &l);
        for (int t = 0; t < 37; t++) {
            cr_assert_eq(atomic_load(&l.runs[t]), 1, "%d threads: task %d ran %d times", threads[k], t,
                         atomic_load(&l.runs[t]));
            cr_assert(atomic_load(&l.thread_of[t]) < threads[k]);
        }
    }
    tg_ex_parallel_for(2, 0, log_task, NULL); // nothing to run: fn is never called
}

// Each of two tasks waits (up to 10 s) for the other to begin: they can only both see it on
// two threads at once.
static void wait_for_the_other(void *user, int task, int thread) {
    (void)task, (void)thread;
    task_log *l = user;
    atomic_fetch_add(&l->started, 1);
    for (int ms = 0; ms < 10000 && atomic_load(&l->started) < 2; ms++) nanosleep(&(struct timespec){0, 1000000}, NULL);
    if (atomic_load(&l->started) == 2) atomic_store(&l->overlap, true);
}

Test(parallel_for, two_threads_run_at_once) {
    static task_log l;
    memset(&l, 0, sizeof l);
    tg_ex_parallel_for(2, 2, wait_for_the_other, &l);
    cr_assert(atomic_load(&l.overlap), "the two tasks never ran at the same time");
}

// A graph per thread: the caller's on its own thread, others elsewhere; two tasks running at
// once never share one, and each graph works (a tensor made on it).
typedef struct {
    tg_graph *graph_of[64]; // [tasks]: the graph the task got
    atomic_int started;
    bool wait; // each task waits (up to 10 s) for a second to begin, so two run at once
} graph_log;

static void log_graph(void *user, int task, tg_graph *g) {
    graph_log *l = user;
    l->graph_of[task] = tg_zeros(g, TG_F32, tg_shape1(4)) ? g : NULL;
    atomic_fetch_add(&l->started, 1);
    for (int ms = 0; l->wait && ms < 10000 && atomic_load(&l->started) < 2; ms++)
        nanosleep(&(struct timespec){0, 1000000}, NULL);
}

Test(parallel_for, a_graph_per_thread) {
    tg_graph *g = tg_graph_new();
    static graph_log l;
    memset(&l, 0, sizeof l);
    cr_assert(tg_ex_parallel_for_graphs(g, 1, 5, log_graph, &l));
    for (int t = 0; t < 5; t++) cr_assert_eq(l.graph_of[t], g, "one thread: every task on the caller's graph");
    memset(&l, 0, sizeof l);
    l.wait = true;
    cr_assert(tg_ex_parallel_for_graphs(g, 2, 2, log_graph, &l)); // the two wait for each other: both threads run
    cr_assert(l.graph_of[0] && l.graph_of[1] && l.graph_of[0] != l.graph_of[1], "two threads shared a graph");
    cr_assert(l.graph_of[0] == g || l.graph_of[1] == g, "the caller's graph went unused");
    cr_assert(tg_ex_parallel_for_graphs(g, 4, 0, log_graph, NULL)); // nothing to run: fn is never called
    tg_graph_free(g);
}
