// gemm_small.c: matrix products of few rows, without BLIS's packing.
//
// BLIS packs its operands into blocks before multiplying, which pays off on large products
// and costs a few microseconds whatever the size. A batch-1 RNN step's products ([1, 64] by
// [64, 256], say) take less time than that to compute. These loops skip it: for float32 with
// B read as stored, gemm_f32.c's cache-blocked loops; for float64 with B read as stored,
// register tiles of 4 rows by 4 vectors (the loops the float64 results were checked
// against, kept as they were); with B read transposed, dot products. tg_gemm (gemm.c) says
// which products come here.
#include "tg_internal.h"

typedef double tg_f64x8 __attribute__((vector_size(64)));

// C[m, n] = alpha * op(A) B + beta * C, row-major, op() per the flag (see tg_gemm).
// V is a vector of 64 bytes of T (one AVX-512 register; the compiler splits it where the
// CPU's are narrower).
//
// With B [k, n] (not transposed), C is computed a tile at a time: ROWS rows by NV vectors of
// columns, summed in ROWS x NV registers over all of k, then added to C once. Each element
// of B loaded serves ROWS rows, and C is read and written once, not once per p. The tile
// sizes are literals (NAME##_tile is inlined into each case), so the compiler keeps the
// sums in registers: 4 x 4 vectors, with 4 x 1, 1 x 4 and 1 x 1 at the edges.
#define GEMM_SMALL_TILES(T, V, NAME)                                                                            \
    enum { NAME##_LANES = sizeof(V) / sizeof(T) };                                                      \
    static inline __attribute__((always_inline)) void NAME##_tile(                                      \
        int ROWS, int NV, bool ta, int64_t i0, int64_t j0, int64_t k, T alpha, const T *a, int64_t lda, \
        const T *b, int64_t ldb, T *c, int64_t ldc) {                                                   \
        V acc[4][4] = {{{0}}};                                                                          \
        for (int64_t p = 0; p < k; p++) {                                                               \
            V bv[4];                                                                                    \
            for (int v = 0; v < NV; v++) __builtin_memcpy(&bv[v], b + p * ldb + j0 + v * NAME##_LANES, sizeof(V));  \
            for (int r = 0; r < ROWS; r++) {                                                            \
                T ar = ta ? a[p * lda + i0 + r] : a[(i0 + r) * lda + p];                                \
                for (int v = 0; v < NV; v++) acc[r][v] += ar * bv[v];                                   \
            }                                                                                           \
        }                                                                                               \
        for (int r = 0; r < ROWS; r++)                                                                  \
            for (int v = 0; v < NV; v++) {                                                              \
                T *cp = c + (i0 + r) * ldc + j0 + v * NAME##_LANES;                                     \
                V cv;                                                                                   \
                __builtin_memcpy(&cv, cp, sizeof cv);                                                   \
                cv += alpha * acc[r][v];                                                                \
                __builtin_memcpy(cp, &cv, sizeof cv);                                                   \
            }                                                                                           \
    }                                                                                                   \
    TG_VECTORIZE static void NAME(bool ta, int64_t m, int64_t n, int64_t k, T alpha, const T *a,        \
                                  int64_t lda, const T *b, int64_t ldb, T beta, T *c, int64_t ldc) {    \
        enum { LANES = NAME##_LANES, BLOCK = 4 * LANES };                                               \
        if (beta != 1)                                                                                  \
            for (int64_t i = 0; i < m; i++)                                                             \
                for (int64_t j = 0; j < n; j++) c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j]; \
        /* Tiles cover whole vectors of columns; the rest, and rank-1 updates (k < 4), where */         \
        /* a tile saves nothing, go through the plain loop: C row i += a_ip * B row p. */               \
        int64_t nt = k >= 4 ? n / LANES * LANES : 0;                                                    \
        int64_t i = 0;                                                                                  \
        for (; i + 4 <= m && nt; i += 4) {                                                              \
            int64_t j = 0;                                                                              \
            for (; j + BLOCK <= nt; j += BLOCK) NAME##_tile(4, 4, ta, i, j, k, alpha, a, lda, b, ldb, c, ldc);  \
            for (; j < nt; j += LANES) NAME##_tile(4, 1, ta, i, j, k, alpha, a, lda, b, ldb, c, ldc);   \
        }                                                                                               \
        for (; i < m && nt; i++) {                                                                      \
            int64_t j = 0;                                                                              \
            for (; j + BLOCK <= nt; j += BLOCK) NAME##_tile(1, 4, ta, i, j, k, alpha, a, lda, b, ldb, c, ldc);  \
            for (; j < nt; j += LANES) NAME##_tile(1, 1, ta, i, j, k, alpha, a, lda, b, ldb, c, ldc);   \
        }                                                                                               \
        for (int64_t r = 0; r < m && nt < n; r++)                                                       \
            for (int64_t p = 0; p < k; p++) {                                                           \
                T arp = alpha * (ta ? a[p * lda + r] : a[r * lda + p]);                                 \
                const T *bp = b + p * ldb;                                                              \
                T *cr = c + r * ldc;                                                                    \
                for (int64_t j = nt; j < n; j++) cr[j] += arp * bp[j];                                  \
            }                                                                                           \
    }

// With B read transposed (B [n, k]): c_ij += dot(op(A) row i, B row j), in 16 lanes.
#define GEMM_SMALL_DOTS(T, NAME)                                                                        \
    TG_VECTORIZE static void NAME(bool ta, int64_t m, int64_t n, int64_t k, T alpha, const T *a, int64_t lda,  \
                                  const T *b, int64_t ldb, T beta, T *c, int64_t ldc) {                 \
        if (beta != 1)                                                                                  \
            for (int64_t i = 0; i < m; i++)                                                             \
                for (int64_t j = 0; j < n; j++) c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j]; \
        for (int64_t i = 0; i < m; i++) {                                                               \
            T *ci = c + i * ldc;                                                                        \
            for (int64_t j = 0; j < n; j++) {                                                           \
                const T *bj = b + j * ldb;                                                              \
                T lane[16] = {0}, sum = 0;                                                              \
                int64_t p = 0;                                                                          \
                if (!ta)                                                                                \
                    for (; p + 16 <= k; p += 16)                                                        \
                        for (int l = 0; l < 16; l++) lane[l] += a[i * lda + p + l] * bj[p + l];         \
                for (; p < k; p++) sum += (ta ? a[p * lda + i] : a[i * lda + p]) * bj[p];               \
                for (int l = 0; l < 16; l++) sum += lane[l];                                            \
                ci[j] += alpha * sum;                                                                   \
            }                                                                                           \
        }                                                                                               \
    }

GEMM_SMALL_TILES(double, tg_f64x8, gemm_tiles_f64)
GEMM_SMALL_DOTS(float, gemm_dots_f32)
GEMM_SMALL_DOTS(double, gemm_dots_f64)

void tg_gemm_small(tg_dtype dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                   const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c, int64_t ldc) {
    if (dtype == TG_F32 && !trans_b)
        tg_gemm_f32(trans_a, m, n, k, (float)alpha, a, lda, b, ldb, (float)beta, c, ldc);
    else if (dtype == TG_F32)
        gemm_dots_f32(trans_a, m, n, k, (float)alpha, a, lda, b, ldb, (float)beta, c, ldc);
    else if (!trans_b)
        gemm_tiles_f64(trans_a, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    else
        gemm_dots_f64(trans_a, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
