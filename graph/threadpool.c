// threadpool.c: the threads that split one large product (or loop) between cores.
//
// tg_set_num_threads(n) gives the library n - 1 worker threads; tg_parallel_for hands them
// the tasks of one job, and the calling thread takes tasks too. Tasks are claimed one at a
// time from a shared counter, so nobody waits for a thread that has not started: on a
// machine where another process holds a core, a worker that is not running claims nothing
// and the caller does its share, so two threads are never much slower than one. Between
// jobs a worker spins for a short while (a recurrent step's next product follows within
// tens of microseconds, and waking a sleeping thread costs about as much), then sleeps on a
// condition variable: no thread burns a core while the library is idle, unlike OpenMP's
// default wait policy.
//
// Whether splitting pays is measured, job by job: the caller knows how long its own tasks
// took, so it can tell how long the whole job would have taken it alone, and compares that
// with how long the job took. When another process holds a core, a worker may be descheduled
// holding a task and the caller waits for it: when that makes splitting no faster than one
// thread on average, the next jobs run in the caller alone for a while, then it tries again.
//
// The measure is made of wall times, which a core shared between the caller and a worker
// (the scheduler's choice when another process holds the other core) distorts: both threads
// then run at half speed and the caller's own tasks look twice as long as they are. So a
// worker that runs a task on the caller's CPU marks the job as one that did not pay.
//
// One job at a time: a second thread that calls tg_parallel_for while a job is running
// runs its own tasks itself, so graphs on separate threads never wait for each other here.
#define _GNU_SOURCE // sched_getcpu
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "tg_internal.h"

// How long a worker (or the caller, waiting for the last task) spins before it sleeps
// (or yields): long enough to catch a recurrent step's next product.
#define SPIN_NS 100000
// Jobs run in the caller alone once splitting has not paid, before measuring again.
#define ALONE_JOBS 256
// Split jobs measured before the average may send jobs back to the caller alone: one job
// proves little (a worker woken on the caller's CPU moves to an idle one soon after).
#define MIN_SAMPLES 4

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake; // workers sleep on it between jobs
    pthread_t *threads;
    int workers;  // running worker threads
    int sleeping; // workers waiting on `wake`
    bool stop;    // tells the workers to end (tg_set_num_threads lowering the count)
    // The current job, written under `lock` while no worker is inside a job.
    tg_parallel_fn *fn;
    void *ctx;
    int tasks;
    _Atomic unsigned generation; // bumped for each job
    _Atomic int next;            // the next task to claim
    _Atomic int done;            // tasks finished
    _Atomic int inside;          // workers that took the job and may still touch next/done
    _Atomic int caller_cpu;      // the CPU the caller started the job on
    _Atomic bool shared_cpu;     // a worker ran one of the job's tasks on caller_cpu
    atomic_flag busy;            // a caller holds the pool
    // Written only by the caller that holds `busy`:
    double speedup;  // running average of (the job's time alone) / (its time split)
    int samples;     // jobs in that average since it was last reset
    int alone_jobs;  // jobs left to run in the caller alone, since splitting did not pay
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER, .busy = ATOMIC_FLAG_INIT};

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

// Runs tasks of the current job until none is left; returns how many it ran.
static int run_tasks(tg_parallel_fn *fn, void *ctx, int tasks) {
    int ran = 0;
    for (int i; (i = atomic_fetch_add(&pool.next, 1)) < tasks; ran++) {
        fn(ctx, i);
        atomic_fetch_add_explicit(&pool.done, 1, memory_order_release);
    }
    return ran;
}

// A worker's run_tasks, which also tells whether it shared the caller's CPU.
static void run_worker_tasks(tg_parallel_fn *fn, void *ctx, int tasks) {
    if (run_tasks(fn, ctx, tasks) > 0 && sched_getcpu() == atomic_load_explicit(&pool.caller_cpu, memory_order_relaxed))
        atomic_store_explicit(&pool.shared_cpu, true, memory_order_relaxed);
}

static void *worker_main(void *arg) {
    (void)arg;
    unsigned seen = atomic_load(&pool.generation);
    for (;;) {
        // Spin a little for the next job, then sleep until one comes.
        double t0 = now_ns();
        for (int i = 0; atomic_load_explicit(&pool.generation, memory_order_relaxed) == seen; i++) {
            sched_yield(); // a thread that shares this core (the caller, on a loaded machine) goes first
            if ((i & 15) == 15 && now_ns() - t0 > SPIN_NS) break;
        }
        pthread_mutex_lock(&pool.lock);
        while (atomic_load(&pool.generation) == seen && !pool.stop) {
            pool.sleeping++;
            pthread_cond_wait(&pool.wake, &pool.lock);
            pool.sleeping--;
        }
        if (pool.stop) {
            pthread_mutex_unlock(&pool.lock);
            return NULL;
        }
        seen = atomic_load(&pool.generation);
        tg_parallel_fn *fn = pool.fn;
        void *ctx = pool.ctx;
        int tasks = pool.tasks;
        atomic_fetch_add(&pool.inside, 1);
        pthread_mutex_unlock(&pool.lock);
        run_worker_tasks(fn, ctx, tasks);
        atomic_fetch_sub_explicit(&pool.inside, 1, memory_order_release);
    }
}

static void stop_workers(void) {
    pthread_mutex_lock(&pool.lock);
    pool.stop = true;
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);
    for (int i = 0; i < pool.workers; i++) pthread_join(pool.threads[i], NULL);
    free(pool.threads);
    pool.threads = NULL;
    pool.workers = 0;
    pool.stop = false;
}

void tg_pool_resize(int threads) {
    while (atomic_flag_test_and_set(&pool.busy)) sched_yield(); // no job may be running
    int want = threads - 1 < 0 ? 0 : threads - 1;
    if (want != pool.workers) {
        stop_workers();
        pthread_t *t = want ? malloc((size_t)want * sizeof *t) : NULL;
        int started = 0;
        for (; t && started < want; started++)
            if (pthread_create(&t[started], NULL, worker_main, NULL) != 0) break; // fewer workers, still correct
        pool.threads = t;
        pool.workers = started;
    }
    atomic_flag_clear(&pool.busy);
}

// With the pool held: false when the next job is to run in the caller alone (no workers,
// or splitting has not paid lately), counting that job.
static bool split_pays(void) {
    if (pool.workers > 0 && pool.alone_jobs == 0) return true;
    if (pool.alone_jobs > 0 && --pool.alone_jobs == 0) pool.samples = 0; // then measure afresh
    return false;
}

bool tg_parallel_worth_splitting(void) {
    if (atomic_flag_test_and_set(&pool.busy)) return false; // another thread's job is running
    bool pays = split_pays();
    atomic_flag_clear(&pool.busy);
    return pays;
}

void tg_parallel_for(int tasks, tg_parallel_fn *fn, void *ctx) {
    if (tasks <= 0) return;
    bool alone = tasks == 1 || atomic_flag_test_and_set(&pool.busy); // or the pool is another thread's
    if (!alone && !split_pays()) {
        atomic_flag_clear(&pool.busy);
        alone = true;
    }
    if (alone) {
        for (int i = 0; i < tasks; i++) fn(ctx, i);
        return;
    }
    pthread_mutex_lock(&pool.lock);
    // A worker that took the last job's fields after that job was done (by the caller alone)
    // is still inside it, about to find no task left: the counters are reset only after it
    // leaves. Workers enter only under the lock, so none enters while we wait here.
    while (atomic_load(&pool.inside) > 0) {
        pthread_mutex_unlock(&pool.lock);
        cpu_relax();
        pthread_mutex_lock(&pool.lock);
    }
    pool.fn = fn, pool.ctx = ctx, pool.tasks = tasks;
    atomic_store(&pool.next, 0);
    atomic_store(&pool.done, 0);
    atomic_store(&pool.caller_cpu, sched_getcpu());
    atomic_store(&pool.shared_cpu, false);
    atomic_fetch_add(&pool.generation, 1);
    if (pool.sleeping) pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);
    double start = now_ns();
    int own = run_tasks(fn, ctx, tasks);
    double own_end = now_ns();
    // The tasks other threads claimed, and their last look at the counters. Yield rather than
    // spin once the wait is long: the thread we wait for may need this core.
    double t0 = now_ns();
    for (int i = 0; atomic_load_explicit(&pool.done, memory_order_acquire) < tasks || atomic_load(&pool.inside) > 0;
         i++) {
        if (i < 1024 || now_ns() - t0 < SPIN_NS / 10) cpu_relax();
        else sched_yield();
    }
    double split = now_ns() - start, alone_estimate = own ? (own_end - start) / own * tasks : split;
    double speedup = alone_estimate / (split > 0 ? split : 1);
    // A worker ran on the CPU the caller started and ended the job on: our threads took
    // turns on one CPU (a caller that moved between CPUs proves nothing either way).
    if (atomic_load(&pool.shared_cpu) && sched_getcpu() == atomic_load(&pool.caller_cpu))
        speedup = speedup < 0.5 ? speedup : 0.5;
    pool.speedup = pool.samples++ == 0 ? speedup : 0.9 * pool.speedup + 0.1 * speedup;
    if (pool.samples >= MIN_SAMPLES && pool.speedup < 1.0) pool.alone_jobs = ALONE_JOBS;
    atomic_flag_clear(&pool.busy);
}
