// gemm.c: tg_gemm, every matrix product of the library, and the choice of how to run it:
// BLIS, or the loops of gemm_f32.c / gemm_small.c that skip BLIS's packing.
#include <blis.h>
#include <stdatomic.h>

#include "tg_internal.h"

static _Atomic uint64_t flop_count; // 2*m*n*k summed over every product, for the benchmark's roofline

uint64_t tg_blas_flop_count(void) { return atomic_load_explicit(&flop_count, memory_order_relaxed); }

// float64's old rule: with more than one thread, products of at least this many multiply-adds
// go to BLIS, which splits them (float32 products are split by tg_gemm, from SPLIT_MACS).
#define F64_SPLIT_MACS (1 << 20)
// The largest right operand of a float64 product of up to 64 rows for the small loops.
#define SMALL_B_BYTES (8u << 20)

// float64: the rule the float64 results (gradient checks, PyTorch parity) were written
// against, kept as it was so that they stay bit for bit. Below these sizes BLIS's packing
// and call overhead cost more than the product; the loops' 4-row tiles read B once per 4
// rows, so large right operands go to BLIS.
static tg_gemm_path choose_f64(bool ta, bool tb, int64_t m, int64_t n, int64_t k) {
    bool one_thread = tg_num_threads() == 1 || m * n * k < F64_SPLIT_MACS;
    bool b_cached = (uint64_t)(k * n) * sizeof(double) <= SMALL_B_BYTES;
    if (!(ta && tb) &&
        (m <= 4 || n == 1 || (tb && m <= 16) || (k == 1 && !tb) || (!tb && m <= 64 && one_thread && b_cached)))
        return TG_GEMM_SMALL;
    return TG_GEMM_BLIS;
}

// float32, B read as stored: gemm_f32.c's loops do what BLIS does, less the packing of B
// (they block k and m for the caches, pack A's block, and read B where it lies). BLIS packs
// B for every product, k x n copies whatever m is: a recurrent step's product (32 rows) pays
// that for little reuse, and the loops win by construction (0.6-0.8 of BLIS's time on Zen 4).
// Once C is large both ways (m >= 512 rows and n >= 256 columns) packing costs BLIS under
// 1/256 of the work and its kernels, tuned per CPU, are as fast or faster (0.9-1.0 of the
// loops' time): those go to BLIS.
// B read transposed (B [n, k]): one dot product per element of C for the few-row cases
// (m <= 16, or one column: attention's scores, where BLIS would pack all of A for one pass
// over it), BLIS for the rest.
// tg-microbench --gemm prints both paths and the choice for every shape the benchmarks run.
static tg_gemm_path choose_f32(bool ta, bool tb, int64_t m, int64_t n) {
    if (ta && tb) return TG_GEMM_BLIS;
    if (!tb) return m >= 512 && n >= 256 ? TG_GEMM_BLIS : TG_GEMM_SMALL;
    return m <= 16 || n == 1 ? TG_GEMM_SMALL : TG_GEMM_BLIS;
}

tg_gemm_path tg_gemm_choose(tg_dtype dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k) {
    return dtype == TG_F32 ? choose_f32(trans_a, trans_b, m, n) : choose_f64(trans_a, trans_b, m, n, k);
}

void tg_gemm_blis(tg_dtype dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                  const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c, int64_t ldc) {
    trans_t ta = trans_a ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE;
    trans_t tb = trans_b ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE;
    // Row-major storage: row stride = leading dimension, column stride = 1.
    if (dtype == TG_F32) { // on one thread: tg_gemm splits float32 products itself
        float al = (float)alpha, be = (float)beta;
        rntm_t one_thread = BLIS_RNTM_INITIALIZER;
        bli_rntm_set_num_threads(1, &one_thread);
        bli_sgemm_ex(ta, tb, m, n, k, &al, (float *)a, lda, 1, (float *)b, ldb, 1, &be, c, ldc, 1, NULL, &one_thread);
    } else {
        bli_dgemm(ta, tb, m, n, k, &alpha, (double *)a, lda, 1, (double *)b, ldb, 1, &beta, c, ldc, 1);
    }
}

// --- float32 products split between threads ---
// A product of at least this many multiply-adds is split (about 50 us of work on one core):
// below it, handing half to another thread costs about what it saves.
#define SPLIT_MACS (1 << 21)

// One float32 product, cut along its larger side (C's rows or columns) into parts of `step`.
typedef struct {
    tg_gemm_path path;
    bool ta, tb, by_rows;
    int64_t m, n, k, lda, ldb, ldc, step;
    float alpha, beta;
    const float *a, *b;
    float *c;
} split_product;

static void split_part(void *ctx, int part) {
    const split_product *s = ctx;
    int64_t lo = part * s->step, size = s->by_rows ? s->m : s->n;
    int64_t len = size - lo < s->step ? size - lo : s->step;
    const float *a = s->a, *b = s->b;
    float *c = s->c;
    int64_t m = s->m, n = s->n;
    if (s->by_rows) { // rows [lo, lo + len) of C and of op(A)
        a += s->ta ? lo : lo * s->lda;
        c += lo * s->ldc;
        m = len;
    } else { // columns [lo, lo + len) of C and of op(B)
        b += s->tb ? lo * s->ldb : lo;
        c += lo;
        n = len;
    }
    if (s->path == TG_GEMM_SMALL)
        tg_gemm_small(TG_F32, s->ta, s->tb, m, n, s->k, s->alpha, a, s->lda, b, s->ldb, s->beta, c, s->ldc);
    else
        tg_gemm_blis(TG_F32, s->ta, s->tb, m, n, s->k, s->alpha, a, s->lda, b, s->ldb, s->beta, c, s->ldc);
}

// Splits C along its larger side into two parts per thread (a late thread then leaves less
// to wait for), each a whole number of the small loops' register tiles. Each part is summed
// over k exactly as the whole product would be, so the result does not depend on the split.
static void gemm_f32_split(tg_gemm_path path, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                           const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                           int64_t ldc, int threads) {
    split_product s = {path, ta, tb, m >= n, m, n, k, lda, ldb, ldc, 0, alpha, beta, a, b, c};
    int64_t size = s.by_rows ? m : n, unit = s.by_rows ? 8 : tg_gemm_f32_tile_cols();
    int64_t parts = 2 * (int64_t)threads;
    s.step = (size + parts - 1) / parts;
    s.step = (s.step + unit - 1) / unit * unit;
    tg_parallel_for((int)((size + s.step - 1) / s.step), split_part, &s);
}

void tg_gemm(tg_dtype dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
             const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c, int64_t ldc) {
    tg_blas_ensure_init();
    if (m == 0 || n == 0) return;
    atomic_fetch_add_explicit(&flop_count, (uint64_t)(2 * m * n * k), memory_order_relaxed);
    tg_gemm_path path = tg_gemm_choose(dtype, trans_a, trans_b, m, n, k);
    int threads = tg_num_threads();
    // A job that would run alone runs as one product: its parts one after the other would
    // each be a smaller, less efficient product.
    if (dtype == TG_F32 && threads > 1 && m * n * k >= SPLIT_MACS && tg_parallel_worth_splitting()) {
        gemm_f32_split(path, trans_a, trans_b, m, n, k, (float)alpha, a, lda, b, ldb, (float)beta, c, ldc, threads);
        return;
    }
    if (path == TG_GEMM_SMALL)
        tg_gemm_small(dtype, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    else
        tg_gemm_blis(dtype, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
