// tg_gemm's float32 loops (graph/gemm_f32.c) at every edge of their blocking, products split
// between threads, and the thread pool behind them (graph/threadpool.c).
#define _GNU_SOURCE // sched_setaffinity
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "tg_internal.h"
#include "tg_test.h"

static float *random_floats(int64_t count, tg_rng *rng) {
    float *x = malloc((size_t)count * sizeof *x);
    cr_assert_not_null(x);
    for (int64_t i = 0; i < count; i++) x[i] = (float)(2 * tg_rng_uniform(rng) - 1);
    return x;
}

// C = alpha op(A) B + beta C through tg_gemm_f32, against the same sum in double; the
// float32 rounding of a k-term sum of products of numbers in [-1, 1] stays below k * 2^-23.
static void check_blocked(bool ta, int64_t m, int64_t n, int64_t k, float alpha, float beta, tg_rng *rng) {
    int64_t lda = ta ? m + 3 : k + 5, ldb = n + 2, ldc = n + 7; // strides wider than the rows
    float *a = random_floats(ta ? k * lda : m * lda, rng), *b = random_floats(k * ldb, rng);
    float *c = random_floats(m * ldc, rng);
    double *expected = malloc((size_t)(m * n) * sizeof *expected);
    cr_assert_not_null(expected);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0;
            for (int64_t p = 0; p < k; p++) s += (double)(ta ? a[p * lda + i] : a[i * lda + p]) * b[p * ldb + j];
            expected[i * n + j] = alpha * s + (beta == 0 ? 0 : beta * (double)c[i * ldc + j]);
        }
    tg_gemm_f32(ta, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++)
            cr_assert(fabs(c[i * ldc + j] - expected[i * n + j]) <= 2e-7 * (double)(k + 2),
                      "ta %d %lldx%lldx%lld alpha %g beta %g: C[%lld, %lld] = %.9g, expected %.9g", ta,
                      (long long)m, (long long)n, (long long)k, alpha, beta, (long long)i, (long long)j,
                      c[i * ldc + j], expected[i * n + j]);
    free(a), free(b), free(c), free(expected);
}

// Rows: the full 8-row tiles of AVX-512 and 6-row ones of AVX2, and the 4-, 2- and 1-row
// tiles at the edge. Columns: tiles of 3, 2 and 1 vectors and the columns past the last
// whole vector; enough of them that A is packed. k: past one block (kc is about 80-200).
Test(gemm_f32, every_tile_edge_and_k_block_against_a_double_sum) {
    const int64_t ms[] = {1, 2, 3, 5, 8, 9, 13, 23, 64}, ns[] = {1, 15, 16, 33, 48, 97, 130, 200};
    const int64_t ks[] = {1, 7, 81, 300};
    tg_rng rng;
    tg_rng_seed(&rng, 5);
    for (int ta = 0; ta < 2; ta++)
        for (size_t im = 0; im < sizeof ms / sizeof *ms; im++)
            for (size_t in = 0; in < sizeof ns / sizeof *ns; in++)
                for (size_t ik = 0; ik < sizeof ks / sizeof *ks; ik++)
                    check_blocked(ta, ms[im], ns[in], ks[ik], ik % 2 ? 0.5f : 1.0f, (float)((im + in) % 3) * 0.5f,
                                  &rng);
}

// More rows than any L2 block of A holds (mc rows of kc floats fill half of L2: at most a few
// thousand rows), so the loops cross from one block of rows to the next.
Test(gemm_f32, rows_past_one_cache_block) {
    tg_rng rng;
    tg_rng_seed(&rng, 6);
    check_blocked(false, 4500, 100, 90, 1.0f, 1.0f, &rng);
    check_blocked(true, 4500, 50, 170, 1.0f, 0.0f, &rng);
}

// tg_gemm with two and three threads splits float32 products of at least 2^21 multiply-adds
// along C's larger side; every part sums over k as the whole product does, so the result is
// the same to the bit as on one thread, through the small loops and through BLIS.
Test(gemm_f32, products_split_between_threads_give_the_same_bits) {
    struct {
        bool ta, tb;
        int64_t m, n, k;
    } shapes[] = {
        {false, false, 32, 1024, 256}, // split by columns, small loops
        {false, false, 33, 1000, 129}, // columns not a multiple of a tile
        {true, false, 1024, 256, 256}, // split by rows, small loops
        {false, true, 1024, 300, 64},  // split by rows, BLIS
        {false, true, 40, 2000, 64},   // split by columns, BLIS
    };
    tg_rng rng;
    tg_rng_seed(&rng, 7);
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        bool ta = shapes[s].ta, tb = shapes[s].tb;
        int64_t m = shapes[s].m, n = shapes[s].n, k = shapes[s].k;
        cr_assert_geq(m * n * k, 1 << 21, "shape %zu is too small to be split", s);
        float *a = random_floats(m * k, &rng), *b = random_floats(k * n, &rng), *c0 = random_floats(m * n, &rng);
        float *c1 = malloc((size_t)(m * n) * sizeof *c1);
        cr_assert_not_null(c1);
        memcpy(c1, c0, (size_t)(m * n) * sizeof *c1);
        tg_set_num_threads(1);
        tg_gemm(TG_F32, ta, tb, m, n, k, 1.0, a, ta ? m : k, b, tb ? k : n, 1.0, c0, n);
        for (int threads = 2; threads <= 3; threads++) {
            float *c = malloc((size_t)(m * n) * sizeof *c);
            cr_assert_not_null(c);
            memcpy(c, c1, (size_t)(m * n) * sizeof *c);
            tg_set_num_threads(threads);
            tg_gemm(TG_F32, ta, tb, m, n, k, 1.0, a, ta ? m : k, b, tb ? k : n, 1.0, c, n);
            tg_set_num_threads(1);
            cr_assert(memcmp(c, c0, (size_t)(m * n) * sizeof *c) == 0, "shape %zu (%lldx%lldx%lld) on %d threads", s,
                      (long long)m, (long long)n, (long long)k, threads);
            free(c);
        }
        free(a), free(b), free(c0), free(c1);
    }
}

// --- the pool ---

typedef struct {
    _Atomic int runs[64];
} task_counts;

static void count_task(void *ctx, int task) { atomic_fetch_add(&((task_counts *)ctx)->runs[task], 1); }

// Many jobs in a row, as a training step's products come: every task of every job runs
// exactly once, whatever the number of tasks and threads.
Test(pool, every_task_runs_exactly_once) {
    for (int threads = 1; threads <= 3; threads++) {
        tg_set_num_threads(threads);
        for (int job = 0; job < 2000; job++) {
            task_counts counts = {0};
            int tasks = 1 + job % 17;
            tg_parallel_for(tasks, count_task, &counts);
            for (int t = 0; t < 64; t++)
                cr_assert_eq(atomic_load(&counts.runs[t]), t < tasks, "threads %d, job %d: task %d ran %d times",
                             threads, job, t, atomic_load(&counts.runs[t]));
        }
    }
    tg_set_num_threads(1);
}

static void *jobs_from_another_thread(void *arg) {
    int *failures = arg;
    for (int job = 0; job < 2000; job++) {
        task_counts counts = {0};
        tg_parallel_for(8, count_task, &counts);
        for (int t = 0; t < 8; t++) *failures += atomic_load(&counts.runs[t]) != 1;
    }
    return NULL;
}

// Two threads handing jobs to the pool at once: one gets it, the other runs its own tasks.
Test(pool, two_callers_at_once) {
    tg_set_num_threads(2);
    int failures[2] = {0, 0};
    pthread_t other;
    cr_assert_eq(pthread_create(&other, NULL, jobs_from_another_thread, &failures[1]), 0);
    jobs_from_another_thread(&failures[0]);
    pthread_join(other, NULL);
    tg_set_num_threads(1);
    cr_assert_eq(failures[0] + failures[1], 0, "%d tasks ran other than once", failures[0] + failures[1]);
}

// With the process held to one CPU (the core another process leaves, where the scheduler
// may put the caller and the worker together), splitting cannot pay: after a few products
// the pool runs them in the caller alone, as one product each.
Test(pool, one_cpu_stops_splitting) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu(), &one);
    cr_assert_eq(sched_setaffinity(0, sizeof one, &one), 0); // this test's own process
    enum { M = 32, N = 1024, K = 256 };                       // 2^23 multiply-adds: split on 2 threads
    tg_rng rng;
    tg_rng_seed(&rng, 3);
    float *a = random_floats(M * K, &rng), *b = random_floats(K * N, &rng), *c = random_floats(M * N, &rng);
    tg_set_num_threads(2);
    for (int i = 0; i < 16; i++) tg_gemm(TG_F32, false, false, M, N, K, 1.0, a, K, b, N, 0.0, c, N);
    bool splits = tg_parallel_worth_splitting();
    tg_set_num_threads(1);
    cr_assert(!splits, "the pool still splits products on one CPU");
    free(a), free(b), free(c);
}
