// gemm_f32.c: float32 products C += alpha op(A) B, blocked for the caches as BLIS's are, with
// a register tile per vector unit (AVX-512, AVX2, SSE2) chosen once at first use.
//
// A recurrent step multiplies a few rows (the batch) by a weight of a few MB. BLIS packs all
// of B into blocks first, k x n copies whatever m is: for 32 rows that copy and BLIS's fixed
// cost are a large part of the product. These loops follow BLIS's blocking without it:
//   - k is cut into blocks of kc, so that a panel of B (kc rows by one tile's width) stays in
//     cache while every row tile of A multiplies it: B is read from memory once per mc rows,
//     not once per tile (the old loops read all of B again for every 4 rows);
//   - m is cut into blocks of mc rows, and A's block (mc x kc) is copied tile by tile into a
//     buffer that stays in L2 and is read contiguously: one copy of A per product;
//   - B's panel is copied too, but only for products of 256 rows or more (its cost is 1/m of
//     the work; unpacked, a panel whose rows lie a power of two apart thrashes a few L1 sets);
//   - a register tile of MR rows by NV vectors is summed over the k block with fused
//     multiply-adds, then added to C: MR x NV accumulators, sized to the register file
//     (32 vector registers with AVX-512, 16 with AVX2 and SSE2), so that each B vector loaded
//     serves MR rows and each A element broadcast serves NV vectors.
// kc and mc come from the cache sizes the CPU reports (sysconf), not from constants tuned on
// one machine. The sum over k runs in the same order on every call, so the same inputs give
// the same bits; a different CPU (vector width, cache sizes) may round differently.
//
// float32 only: the library is built as ISO C (-std=c11), where GCC does not fuse a*b + c,
// so these functions ask for fused multiply-adds themselves (fp-contract=fast). float64 keeps
// the unfused loops of gemm_small.c, whose results the float64 checks were written against.
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tg_internal.h"

// Every loop over a tile's rows and vectors is unrolled whatever the optimisation level (the
// sanitizer builds use -O2, where GCC would keep them as loops and the sums in memory).
#define TG_UNROLL _Pragma("GCC unroll 8")

// The tile of C at rows [i, i + ROWS), columns [j, j + NV*LANES): C += alpha * sum over the
// k block. a points at op(A)[i, p0], b at B[p0, j], c at C[i, j]. ROWS and NV are literals
// at every call, so the accumulators live in registers.
#define GEMM_F32_TILE(NAME, V, MR, NVMAX)                                                               \
    static inline __attribute__((always_inline)) void NAME##_tile(int ROWS, int NV, bool ta, int64_t kb,  \
                                                                  float alpha, const float *a,          \
                                                                  int64_t lda, const float *b,          \
                                                                  int64_t ldb, float *c, int64_t ldc) { \
        enum { LANES = sizeof(V) / sizeof(float) };                                                     \
        V acc[MR][NVMAX];                                                                               \
        TG_UNROLL for (int r = 0; r < ROWS; r++)                                                        \
            TG_UNROLL for (int v = 0; v < NV; v++) acc[r][v] = (V){0};                                  \
        for (int64_t p = 0; p < kb; p++) {                                                              \
            V bv[NVMAX];                                                                                \
            TG_UNROLL for (int v = 0; v < NV; v++) __builtin_memcpy(&bv[v], b + p * ldb + v * LANES, sizeof(V)); \
            TG_UNROLL for (int r = 0; r < ROWS; r++) {                                                  \
                float ar = ta ? a[p * lda + r] : a[r * lda + p];                                        \
                TG_UNROLL for (int v = 0; v < NV; v++) acc[r][v] += ar * bv[v];                         \
            }                                                                                           \
        }                                                                                               \
        TG_UNROLL for (int r = 0; r < ROWS; r++)                                                        \
            TG_UNROLL for (int v = 0; v < NV; v++) {                                                    \
                float *cp = c + r * ldc + v * LANES;                                                    \
                V cv;                                                                                   \
                __builtin_memcpy(&cv, cp, sizeof cv);                                                   \
                cv += alpha * acc[r][v];                                                                \
                __builtin_memcpy(cp, &cv, sizeof cv);                                                   \
            }                                                                                           \
    }

// The row count of the tile at row `left` rows from the block's end: MR, then 4, 2 and 1
// rows at the bottom edge.
#define GEMM_F32_TILE_ROWS(MR, left) ((left) >= (MR) ? (MR) : (left) >= 4 ? 4 : (left) >= 2 ? 2 : 1)

// Row tiles of the block [i0, i1) for NV vectors of columns starting at j. With A packed
// (ap not NULL), each tile's rows lie in ap as kb x rows, one after the other.
#define GEMM_F32_ROWS(NAME, MR, NV)                                                                     \
    for (int64_t i = i0; i < i1;) {                                                                     \
        int rows = GEMM_F32_TILE_ROWS(MR, i1 - i);                                                      \
        bool tt = ap || ta;                                                                             \
        int64_t ld = ap ? rows : lda;                                                                   \
        const float *ai = ap ? ap + (i - i0) * kb : ta ? a + p0 * lda + i : a + i * lda + p0;           \
        float *ci = c + i * ldc + j;                                                                    \
        const float *bj = bp ? bp : b + p0 * ldb + j;                                                   \
        int64_t ldbj = bp ? NV * LANES : ldb;                                                           \
        switch (rows) {                                                                                 \
        case MR: NAME##_tile(MR, NV, tt, kb, alpha, ai, ld, bj, ldbj, ci, ldc); break;                   \
        case 4: NAME##_tile(4, NV, tt, kb, alpha, ai, ld, bj, ldbj, ci, ldc); break;                     \
        case 2: NAME##_tile(2, NV, tt, kb, alpha, ai, ld, bj, ldbj, ci, ldc); break;                     \
        default: NAME##_tile(1, NV, tt, kb, alpha, ai, ld, bj, ldbj, ci, ldc); break;                    \
        }                                                                                               \
        i += rows;                                                                                      \
    }

// Copies op(A)'s block [i0, i1) x [p0, p0 + kb) into pack, tile by tile as the kernels read it:
// for each row tile (of GEMM_F32_TILE_ROWS rows), kb rows of its `rows` elements. Only the
// vector kernels below read a packed A; __attribute__((unused)) keeps builds without them
// (clang's, say) free of the warning.
__attribute__((unused)) static void gemm_f32_pack_a(int mr, bool ta, const float *a, int64_t lda, int64_t i0, int64_t i1, int64_t p0,
                            int64_t kb, float *pack) {
    for (int64_t i = i0; i < i1;) {
        int rows = GEMM_F32_TILE_ROWS(mr, i1 - i);
        for (int64_t p = 0; p < kb; p++)
            for (int r = 0; r < rows; r++)
                pack[p * rows + r] = ta ? a[(p0 + p) * lda + i + r] : a[(i + r) * lda + p0 + p];
        pack += kb * rows;
        i += rows;
    }
}

// The whole product for one vector unit: V its vector type, MR x NVMAX its register tile
// (MR >= 4), TARGET the instruction set the function is compiled for.
#define GEMM_F32(NAME, TARGET, V, MR, NVMAX)                                                            \
    GEMM_F32_TILE(NAME, V, MR, NVMAX)                                                                   \
    __attribute__((target(TARGET), optimize("fp-contract=fast"))) static void NAME(                     \
        bool ta, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda, const float *b,  \
        int64_t ldb, float *c, int64_t ldc, int64_t kc, int64_t mc, float *pack, float *pack_b) {       \
        enum { LANES = sizeof(V) / sizeof(float) };                                                     \
        int64_t nt = n / LANES * LANES; /* columns in whole vectors; the rest below */                  \
        for (int64_t p0 = 0; p0 < k; p0 += kc) {                                                        \
            int64_t kb = k - p0 < kc ? k - p0 : kc;                                                     \
            for (int64_t i0 = 0; i0 < m; i0 += mc) {                                                    \
                int64_t i1 = m - i0 < mc ? m : i0 + mc;                                                 \
                const float *ap = pack;                                                                 \
                if (pack) gemm_f32_pack_a(MR, ta, a, lda, i0, i1, p0, kb, pack);                        \
                for (int64_t j = 0; j < nt;) {                                                          \
                    int64_t nv = (nt - j) / LANES;                                                      \
                    int64_t w = (nv >= NVMAX ? NVMAX : nv >= 2 ? 2 : 1) * LANES;                        \
                    const float *bp = pack_b;                                                           \
                    if (pack_b)                                                                         \
                        for (int64_t p = 0; p < kb; p++)                                                \
                            __builtin_memcpy(pack_b + p * w, b + (p0 + p) * ldb + j, (size_t)w * sizeof(float)); \
                    if (nv >= NVMAX) {                                                                  \
                        GEMM_F32_ROWS(NAME, MR, NVMAX);                                                 \
                        j += NVMAX * LANES;                                                             \
                    } else if (nv >= 2) {                                                               \
                        GEMM_F32_ROWS(NAME, MR, 2);                                                     \
                        j += 2 * LANES;                                                                 \
                    } else {                                                                            \
                        GEMM_F32_ROWS(NAME, MR, 1);                                                     \
                        j += LANES;                                                                     \
                    }                                                                                   \
                }                                                                                       \
            }                                                                                           \
        }                                                                                               \
        for (int64_t r = 0; r < m && nt < n; r++) /* the last n % LANES columns: C row r += a_rp B row p */  \
            for (int64_t p = 0; p < k; p++) {                                                           \
                float arp = alpha * (ta ? a[p * lda + r] : a[r * lda + p]);                             \
                for (int64_t j = nt; j < n; j++) c[r * ldc + j] += arp * b[p * ldb + j];                \
            }                                                                                           \
    }

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
typedef float tg_f32x16 __attribute__((vector_size(64)));
typedef float tg_f32x8 __attribute__((vector_size(32)));
typedef float tg_f32x4 __attribute__((vector_size(16)));
// AVX-512: 8 x 3 accumulators of the 32 registers, 3 for B, 1 for the broadcast.
GEMM_F32(gemm_f32_avx512, "arch=x86-64-v4", tg_f32x16, 8, 3)
// AVX2: 16 registers, so 6 x 2 (as BLIS's Haswell kernel).
GEMM_F32(gemm_f32_avx2, "arch=x86-64-v3", tg_f32x8, 6, 2)
// SSE2, every x86-64: 16 registers of 4 floats.
GEMM_F32(gemm_f32_sse2, "arch=x86-64", tg_f32x4, 6, 2)
#define TG_GEMM_F32_X86 1
#endif

typedef void gemm_f32_fn(bool ta, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                         const float *b, int64_t ldb, float *c, int64_t ldc, int64_t kc, int64_t mc, float *pack,
                         float *pack_b);

// The portable version: the same blocking, plain loops (the compiler vectorises what it can).
static void gemm_f32_plain(bool ta, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                           const float *b, int64_t ldb, float *c, int64_t ldc, int64_t kc, int64_t mc, float *pack,
                           float *pack_b) {
    (void)mc, (void)pack, (void)pack_b;
    for (int64_t p0 = 0; p0 < k; p0 += kc) {
        int64_t p1 = k - p0 < kc ? k : p0 + kc;
        for (int64_t i = 0; i < m; i++)
            for (int64_t p = p0; p < p1; p++) {
                float aip = alpha * (ta ? a[p * lda + i] : a[i * lda + p]);
                for (int64_t j = 0; j < n; j++) c[i * ldc + j] += aip * b[p * ldb + j];
            }
    }
}

static struct {
    gemm_f32_fn *fn;
    const char *name;
    int64_t tile_cols;        // columns in a full register tile
    int64_t l1, l2;           // data cache sizes in bytes
} kernel;

static int64_t cache_size(int name, int64_t fallback) {
    long s = sysconf(name);
    return s > 0 ? s : fallback;
}

void tg_gemm_f32_init(void) {
    kernel.fn = gemm_f32_plain, kernel.name = "plain", kernel.tile_cols = 1;
#ifdef TG_GEMM_F32_X86
    // TG_GEMM_KERNEL=avx2|sse2|plain runs a narrower kernel than the CPU allows: the tests run
    // every kernel this way on a CPU that has them all.
    const char *want = getenv("TG_GEMM_KERNEL");
    bool any = !want || !*want;
    __builtin_cpu_init();
    bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                  __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
    bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (avx512 && any) {
        kernel.fn = gemm_f32_avx512, kernel.name = "avx512 8x48", kernel.tile_cols = 48;
    } else if (avx2 && (any || !strcmp(want, "avx2"))) {
        kernel.fn = gemm_f32_avx2, kernel.name = "avx2 6x16", kernel.tile_cols = 16;
    } else if (any || !strcmp(want, "sse2")) {
        kernel.fn = gemm_f32_sse2, kernel.name = "sse2 6x8", kernel.tile_cols = 8;
    }
#endif
#ifdef _SC_LEVEL1_DCACHE_SIZE
    kernel.l1 = cache_size(_SC_LEVEL1_DCACHE_SIZE, 32 << 10);
    kernel.l2 = cache_size(_SC_LEVEL2_CACHE_SIZE, 1 << 20);
#else
    kernel.l1 = 32 << 10, kernel.l2 = 1 << 20;
#endif
}

const char *tg_gemm_f32_kernel(void) { return kernel.name; }

int64_t tg_gemm_f32_tile_cols(void) { return kernel.tile_cols; }

// Each thread's buffer for packed blocks of A, kept for the next product (a fresh one per
// product would mean page faults for half an L2's worth of memory each time), freed when the
// thread ends.
static pthread_key_t pack_key;
static pthread_once_t pack_once = PTHREAD_ONCE_INIT;
static _Thread_local struct {
    float *data;
    size_t floats;
} pack_buffer;

static void pack_buffer_free(void *data) { free(data); }
static void pack_key_create(void) { pthread_key_create(&pack_key, pack_buffer_free); }

// This thread's packing buffer of at least `floats` floats, or NULL when out of memory.
static float *pack_buffer_get(size_t floats) {
    if (pack_buffer.floats >= floats) return pack_buffer.data;
    pthread_once(&pack_once, pack_key_create);
    float *data = malloc(floats * sizeof(float));
    if (!data) return NULL; // the loops then read A where it is
    free(pack_buffer.data);
    pack_buffer.data = data, pack_buffer.floats = floats;
    pthread_setspecific(pack_key, data);
    return data;
}

// B's panel is packed (copied contiguous, one tile's width at a time) for products of at
// least this many rows: unpacked, a panel whose rows lie a power of two apart maps onto a
// few of L1's sets and is read from L2 instead; packing costs 1/m of the product.
#define PACK_B_ROWS 256

void tg_gemm_f32(bool trans_a, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                 const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    tg_blas_ensure_init(); // picks the kernel
    if (beta != 1)
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j];
    if (k == 0 || alpha == 0) return;
    // A panel of B (kc rows of one tile's columns) takes half of L1, the rest holds the tile's
    // rows of A; A's block (mc rows of kc) takes half of L2. Rounded to multiples of 8 rows.
    int64_t kc = kernel.l1 / 2 / (kernel.tile_cols * (int64_t)sizeof(float));
    kc = kc < 16 ? 16 : kc / 8 * 8;
    int64_t mc = kernel.l2 / 2 / (kc * (int64_t)sizeof(float));
    mc = mc < 8 ? 8 : mc / 8 * 8;
    // A's block is packed when it is multiplied by more than one register tile's columns: then
    // the tiles read it contiguously from L2, as BLIS's do, instead of MR rows at a stride.
    // The copy costs one read of A per product; without it A would be read n / tile_cols
    // times at a stride.
    float *pack = NULL, *pack_b = NULL;
    size_t a_floats = (size_t)(m < mc ? m : mc) * (size_t)(k < kc ? k : kc), b_floats = (size_t)kc * kernel.tile_cols;
    bool want_b = m >= PACK_B_ROWS;
    if (kernel.fn != gemm_f32_plain && n >= 2 * kernel.tile_cols && m > 8)
        pack = pack_buffer_get(a_floats + (want_b ? b_floats : 0));
    if (pack && want_b) pack_b = pack + a_floats;
    kernel.fn(trans_a, m, n, k, alpha, a, lda, b, ldb, c, ldc, kc, mc, pack, pack_b);
}
