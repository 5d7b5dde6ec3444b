// runtime.c: BLIS, chosen and checked in code.
//
// Debian's BLIS 0.9 does not recognise recent AMD CPUs (Zen 4, Zen 5) and falls back to its
// generic kernels, about 6x slower than its AVX-512 "skx" kernels on the same machine. BLIS
// reads BLIS_ARCH_TYPE once, when it initialises, so we set it (unless the user has) before
// our first BLIS call, then ask BLIS which kernels it took and warn if they are generic.
#include <blis.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "tg_internal.h"

static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
static const char *blas_arch = "unknown";
static int num_threads = 1;
static uint64_t flop_count; // 2*m*n*k summed over every product, for the benchmark's roofline

static bool cpu_has_avx512(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
#else
    return false;
#endif
}

static void blas_init(void) {
    if (!getenv("BLIS_ARCH_TYPE") && cpu_has_avx512()) setenv("BLIS_ARCH_TYPE", "skx", 0);
    bli_init();
    arch_t id = bli_arch_query_id();
    blas_arch = bli_arch_string(id);
    if (id == BLIS_ARCH_GENERIC && !getenv("TG_QUIET"))
        fprintf(stderr, "tapegrad: BLIS is using its slow generic kernels on this CPU "
                        "(was BLIS initialised before tapegrad, or BLIS_ARCH_TYPE set?)\n");
    bli_thread_set_num_threads(num_threads);
}

static void ensure_init(void) { pthread_once(&blas_once, blas_init); }

void tg_set_num_threads(int n) {
    ensure_init();
    num_threads = n < 1 ? 1 : n;
    bli_thread_set_num_threads(num_threads);
}

int tg_num_threads(void) { return num_threads; }

const char *tg_blas_arch(void) {
    ensure_init();
    return blas_arch;
}

uint64_t tg_blas_flop_count(void) { return flop_count; }

const char *tg_blas_version(void) {
    ensure_init();
    return bli_info_get_version_str();
}

// With more than one thread, products of at least this many multiply-adds go to BLIS, which
// splits them. lm-lstm-2x512's 64-row step products (64 x 2048 x 512) ran 1.21x faster on
// two threads than on one while they stayed in the one-thread loops, 1.89x split by BLIS.
// Below it (a batch-1 step's) splitting costs more than it saves.
#define SPLIT_FLOPS (1 << 20)
// The largest right operand of a product of up to 64 rows for the small loops' tiles.
#define SMALL_B_BYTES (8u << 20)

void tg_gemm(tg_dtype dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
             const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c, int64_t ldc) {
    ensure_init();
    if (m == 0 || n == 0) return;
    flop_count += (uint64_t)(2 * m * n * k);
    // Measured (tg-microbench --gemm): below these sizes BLIS's packing and call overhead cost
    // more than the product (an outer product, k = 1: 2.2 against 4.7 us at 256 x 64). Up to
    // 64 rows, the small loops' register tiles match or beat BLIS (32 x 1024 x 256: 192
    // against 219 us; 50 x 256 x 32: 9.6 against 13.8 us). With one column (attention's
    // scores, [S*B, H] @ v^T) BLIS packs all of A for a product of one pass over it: 106 us
    // against 12 us at 640 x 1 x 256.
    // The small loops run on one thread: with more, BLIS takes every product that is worth
    // splitting between them. Their tiles also read B once per 4 rows, which costs more than
    // BLIS's packing once B no longer stays in cache (tg-microbench --gemm, 32 x 4096 x 1024,
    // B 17 MB: 15.5 against BLIS's 5.6 ms; 32 x 4096 x 512, B 8 MB: 1.9 against 2.7 ms).
    bool one_thread = num_threads == 1 || m * n * k < SPLIT_FLOPS;
    bool b_cached = (uint64_t)(k * n) * tg_dtype_size(dtype) <= SMALL_B_BYTES;
    if (!(trans_a && trans_b) &&
        (m <= 4 || n == 1 || (trans_b && m <= 16) || (k == 1 && !trans_b) ||
         (!trans_b && m <= 64 && one_thread && b_cached))) {
        tg_gemm_small(dtype, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    trans_t ta = trans_a ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE;
    trans_t tb = trans_b ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE;
    // Row-major storage: row stride = leading dimension, column stride = 1.
    if (dtype == TG_F32) {
        float al = (float)alpha, be = (float)beta;
        bli_sgemm(ta, tb, m, n, k, &al, (float *)a, lda, 1, (float *)b, ldb, 1, &be, c, ldc, 1);
    } else {
        bli_dgemm(ta, tb, m, n, k, &alpha, (double *)a, lda, 1, (double *)b, ldb, 1, &beta, c, ldc, 1);
    }
}
