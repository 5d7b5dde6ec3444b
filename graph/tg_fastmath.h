// tg_fastmath.h: exp, tanh and sigmoid for float32 that the compiler can vectorise.
//
// glibc's expf and tanhf are scalar calls; in an LSTM step they were a fifth of the time.
// These are branch-free (selects, not jumps) so that a loop over them becomes AVX-512 code.
// Their largest error over all 2^32 floats, in ulps of the exact value (units in the last
// place of float: 2^(e-23) for |y| in [2^e, 2^(e+1)), 2^-149 below FLT_MIN), against libm's
// exp and tanh in double; correct rounding would be 0.5. tests/test_fastmath.c asserts these
// bounds (on every 251st float and the edges; TG_FASTMATH_STRIDE=1 for all of them):
//   tg_expf      -87.33654 <= x <= 88.72283 (normal results)             0.991
//                -103.972076 <= x < -87.33654 (subnormal results)         0.751
//                below, +0; above, +inf (correctly rounded)
//   tg_tanhf     |x| < 0.625 (odd polynomial)                             0.776
//                |x| >= 0.625 (from tg_expf; +-1 from |x| = 9.0109)       1.331
//   tg_sigmoidf  x >= 0 (1 from x = 16.6355)                              1.499
//                -87.33654 <= x < 0 (normal results)                      2.402
//                x < -87.33654 (subnormal results as tg_expf's, then +0)  0.751
// NaN stays NaN, so the numerics check still sees it; exp(-inf) = 0, exp(inf) = inf,
// tanh(+-inf) = +-1, tanh(-0) = -0, sigmoid(-inf) = 0, sigmoid(inf) = 1. float64 keeps libm:
// gradient checks and exact comparisons run in float64.
// The polynomials are Cephes's (expf.c and tanhf.c, Stephen L. Moshier).
#ifndef TG_FASTMATH_H
#define TG_FASTMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

// 2^k for k in [-126, 127], from the exponent bits.
static inline float tg_pow2i(int32_t k) {
    uint32_t bits = (uint32_t)(k + 127) << 23;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static inline float tg_expf(float x) {
    // Clamped, and NaN replaced, so that the conversion to an integer below is defined.
    // Below -87.33654 the result is subnormal; below -103.972076 (ln 2^-150) it rounds to 0.
    float xc = x < -103.972076f ? -103.972076f : x > 88.72283f ? 88.72283f : x != x ? 0.0f : x;
    float k = floorf(xc * 1.44269504088896341f + 0.5f); // exp(x) = 2^k exp(r), |r| <= ln2/2
    float r = xc - k * 0.693359375f + k * 2.12194440e-4f;
    float p = 1.9875691500e-4f * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    // Two factors, both in tg_pow2i's range: k runs from -150 to 128. The first product is
    // exact, so a subnormal result is rounded once.
    int32_t ki = (int32_t)k, half = ki >> 1;
    float y = p * tg_pow2i(half) * tg_pow2i(ki - half);
    y = x < -103.972076f ? 0.0f : y;
    y = x > 88.72283f ? INFINITY : y;
    return x != x ? x : y;
}

static inline float tg_tanhf(float x) {
    float a = fabsf(x), z = a * a;
    // |x| < 0.625: an odd polynomial; beyond, 1 - 2/(exp(2|x|) + 1), which has no cancellation
    // there. Both on |x|, the sign put back last, so that tanh(-0) is -0.
    float small = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z + 1.33314422036e-1f) * z -
                   3.33332819422e-1f) * z * a + a;
    float big = 1.0f - 2.0f / (tg_expf(2.0f * a) + 1.0f);
    return copysignf(a < 0.625f ? small : big, x);
}

// 1/(1 + exp(-x)) for x >= 0 and exp(x)/(1 + exp(x)) below, one exp of -|x| for both: for
// very negative x the result is exp(x), down to the subnormals, not 0.
static inline float tg_sigmoidf(float x) {
    float e = tg_expf(-fabsf(x));
    return (x < 0 ? e : 1.0f) / (1.0f + e);
}

// Compiles a hot loop's function for AVX-512, AVX2 and plain x86-64, picked at load time, so
// a portable build still runs the widest vectors the CPU has. Not under ThreadSanitizer: the
// clones' ifunc resolvers run before its runtime starts and crash the program at load.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_THREAD__)
#define TG_VECTORIZE __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define TG_VECTORIZE
#endif

#endif
