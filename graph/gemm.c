// gemm.c: tg_gemm, every matrix product of the library, and the choice of how to run it:
// BLIS, or the small-matrix loops of gemm_small.c.
#include <blis.h>
#include <stdatomic.h>

#include "tg_internal.h"

static _Atomic uint64_t flop_count; // 2*m*n*k summed over every product, for the benchmark's roofline

uint64_t tg_blas_flop_count(void) { return atomic_load_explicit(&flop_count, memory_order_relaxed); }

// With more than one thread, products of at least this many multiply-adds go to BLIS, which
// splits them. lm-lstm-2x512's 64-row step products (64 x 2048 x 512) ran 1.21x faster on
// two threads than on one while they stayed in the one-thread loops, 1.89x split by BLIS.
// Below it (a batch-1 step's) splitting costs more than it saves.
#define SPLIT_FLOPS (1 << 20)
// The largest right operand of a product of up to 64 rows for the small loops' tiles.
#define SMALL_B_BYTES (8u << 20)

void tg_gemm(tg_dtype dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
             const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c, int64_t ldc) {
    tg_blas_ensure_init();
    if (m == 0 || n == 0) return;
    atomic_fetch_add_explicit(&flop_count, (uint64_t)(2 * m * n * k), memory_order_relaxed);
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
    bool one_thread = tg_num_threads() == 1 || m * n * k < SPLIT_FLOPS;
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
