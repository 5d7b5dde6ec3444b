// gemm_small.c: matrix products too small for BLIS's fixed cost per call.
//
// BLIS packs its operands into blocks before multiplying, which pays off on large products
// and costs a few microseconds whatever the size. A batch-1 RNN step's products ([1, 64] by
// [64, 256], say) take less time than that to compute. These loops skip the packing: each
// case of the transpose flags gets the loop order whose inner loop runs along contiguous
// memory, so it vectorises. tg_gemm sends a product here when it is below a size measured
// to favour these loops (see tg-microbench).
#include "tg_internal.h"

// C[m, n] = alpha * op(A) op(B) + beta * C, row-major, op() per the flags (see tg_gemm).
// V is a vector of 64 bytes of T (one AVX-512 register; the compiler splits it where the
// CPU's are narrower).
#define GEMM_SMALL(T, V, NAME)                                                                               \
    TG_VECTORIZE static void NAME(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T *a,  \
                                  int64_t lda, const T *b, int64_t ldb, T beta, T *c, int64_t ldc) {        \
        enum { LANES = sizeof(V) / sizeof(T), BLOCK = 4 * LANES };                                          \
        for (int64_t i = 0; i < m; i++) {                                                                   \
            T *ci = c + i * ldc;                                                                            \
            if (beta != 1)                                                                                  \
                for (int64_t j = 0; j < n; j++) ci[j] = beta == 0 ? 0 : beta * ci[j];                       \
            if (!tb) { /* B [k, n]: C row i += sum over p of a_ip * B row p */                              \
                int64_t j = 0;                                                                              \
                /* BLOCK columns at a time, summed in four registers over all of k: C is read and */        \
                /* written once, not once per p (the batch-1 step's h [1, H] @ W^T [H, 4H]). */              \
                for (; k >= 4 && j + BLOCK <= n; j += BLOCK) {                                            \
                    V acc[4] = {{0}};                                                                       \
                    for (int64_t p = 0; p < k; p++) {                                                       \
                        T aip = ta ? a[p * lda + i] : a[i * lda + p];                                       \
                        const T *bp = b + p * ldb + j;                                                      \
                        for (int r = 0; r < 4; r++) {                                                       \
                            V bv;                                                                           \
                            __builtin_memcpy(&bv, bp + r * LANES, sizeof bv);                               \
                            acc[r] += aip * bv;                                                             \
                        }                                                                                   \
                    }                                                                                       \
                    for (int r = 0; r < 4; r++) {                                                           \
                        V cv;                                                                               \
                        __builtin_memcpy(&cv, ci + j + r * LANES, sizeof cv);                               \
                        cv += alpha * acc[r];                                                               \
                        __builtin_memcpy(ci + j + r * LANES, &cv, sizeof cv);                               \
                    }                                                                                       \
                }                                                                                           \
                for (int64_t p = 0; p < k && j < n; p++) { /* the last n % BLOCK columns */                 \
                    T aip = alpha * (ta ? a[p * lda + i] : a[i * lda + p]);                                  \
                    const T *bp = b + p * ldb;                                                              \
                    for (int64_t jj = j; jj < n; jj++) ci[jj] += aip * bp[jj];                              \
                }                                                                                           \
            } else { /* B [n, k]: c_ij += dot(op(A) row i, B row j), in 16 lanes so it vectorises */        \
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
        }                                                                                                   \
    }

typedef float tg_f32x16 __attribute__((vector_size(64)));
typedef double tg_f64x8 __attribute__((vector_size(64)));

GEMM_SMALL(float, tg_f32x16, gemm_small_f32)
GEMM_SMALL(double, tg_f64x8, gemm_small_f64)

void tg_gemm_small(tg_dtype dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                   const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c, int64_t ldc) {
    if (dtype == TG_F32)
        gemm_small_f32(trans_a, trans_b, m, n, k, (float)alpha, a, lda, b, ldb, (float)beta, c, ldc);
    else
        gemm_small_f64(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
