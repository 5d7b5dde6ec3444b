// The accuracy that graph/tg_fastmath.h documents for tg_expf, tg_tanhf and tg_sigmoidf,
// checked against libm: the exact value is libm's exp or tanh in double, whose own error
// (under a double ulp, 2^-29 float ulps) is negligible here, and the error of a result y is
// |y - exact| in float ulps of the exact value (2^-149 below FLT_MIN).
//
// The suite sweeps every 251st float (bit pattern; about 17 million, in every binade of
// either sign), every float within 4096 of each edge the header names, and the special
// values. TG_FASTMATH_STRIDE=1 build/tests/test_fastmath sweeps all 2^32 floats, a few
// minutes per function: that is how the header's bounds were measured.
//
// The functions run in a TG_VECTORIZE loop, as in ops/ (this file is compiled with the
// library's -fno-trapping-math -fno-math-errno, so at -O3 the loops become AVX2/AVX-512
// code), and each result must equal the scalar call's bit for bit.
#include <criterion/logging.h>
#include <float.h>
#include <stdint.h>
#include <stdlib.h>

#include "tg_fastmath.h"
#include "tg_test.h"

enum { BLOCK = 4096, DEFAULT_STRIDE = 251, EDGE_HALF_WIDTH = 4096 };

static float float_from_bits(uint32_t bits) {
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static uint32_t bits_of_float(float f) {
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return bits;
}

// The size of one float ulp at the magnitude of r: 2^(e - 23) for |r| in [2^e, 2^(e+1)).
static double float_ulp_at(double r) {
    r = fabs(r);
    if (r < FLT_MIN) return 0x1p-149;
    int e;
    frexp(r, &e); // r = m 2^e, m in [0.5, 1)
    return ldexp(1.0, e - 24);
}

// Error of y in float ulps of exact; 0 when both are the same infinity or both NaN,
// infinite when only one of them is infinite (or NaN) after rounding exact to float.
static double ulp_error(float y, double exact) {
    if (isnan(exact) || isnan(y)) return isnan(exact) && isnan(y) ? 0 : INFINITY;
    float rounded = (float)exact;
    if (isinf(rounded) || isinf(y)) return y == rounded ? 0 : INFINITY;
    return fabs((double)y - exact) / float_ulp_at(exact);
}

// --- The functions, their references and the bounds of tg_fastmath.h's comment ---

typedef enum { FN_EXP, FN_TANH, FN_SIGMOID, FN_COUNT } fn_id;

// A range of x with its own documented bound; 0.5 means correctly rounded.
typedef struct {
    const char *what;
    double max_ulp;
} ulp_range;

enum { MAX_RANGES = 4 };

typedef struct {
    const char *name;
    ulp_range ranges[MAX_RANGES];
    int (*range_of)(float x); // index into ranges (x not NaN)
    double (*exact)(double x);
} fn_spec;

static int exp_range(float x) {
    if (x < -103.972076f) return 0;
    if (x < -87.33654f) return 1;
    return x <= 88.72283f ? 2 : 3;
}
static int tanh_range(float x) { return fabsf(x) < 0.625f ? 0 : 1; }
static int sigmoid_range(float x) {
    if (x >= 0) return 0;
    return x >= -87.33654f ? 1 : 2;
}
static double exact_exp(double x) { return exp(x); }
static double exact_tanh(double x) { return tanh(x); }
// The form that neither overflows nor cancels, for either sign.
static double exact_sigmoid(double x) { return x < 0 ? exp(x) / (1 + exp(x)) : 1 / (1 + exp(-x)); }

static const fn_spec specs[FN_COUNT] = {
    [FN_EXP] = {"tg_expf",
                {{"x < -103.972076 (result +0)", 0.5},
                 {"-103.972076 <= x < -87.33654 (subnormal results)", 0.751},
                 {"-87.33654 <= x <= 88.72283 (normal results)", 0.991},
                 {"x > 88.72283 (result +inf)", 0.5}},
                exp_range, exact_exp},
    [FN_TANH] = {"tg_tanhf", {{"|x| < 0.625", 0.776}, {"|x| >= 0.625", 1.331}}, tanh_range, exact_tanh},
    [FN_SIGMOID] = {"tg_sigmoidf",
                    {{"x >= 0", 1.499},
                     {"-87.33654 <= x < 0 (normal results)", 2.402},
                     {"x < -87.33654 (subnormal results, then +0)", 0.751}},
                    sigmoid_range, exact_sigmoid},
};

// The vectorised loops: the same shape as ops/activation.c's forward loops.
TG_VECTORIZE static void exp_loop(float *y, const float *x, int n) { // y, x: [n]
    for (int i = 0; i < n; i++) y[i] = tg_expf(x[i]);
}
TG_VECTORIZE static void tanh_loop(float *y, const float *x, int n) { // y, x: [n]
    for (int i = 0; i < n; i++) y[i] = tg_tanhf(x[i]);
}
TG_VECTORIZE static void sigmoid_loop(float *y, const float *x, int n) { // y, x: [n]
    for (int i = 0; i < n; i++) y[i] = tg_sigmoidf(x[i]);
}

static float scalar_call(fn_id fn, float x) {
    // volatile keeps GCC from moving these calls into a loop of their own (loop
    // distribution) and vectorising it: the comparison is with scalar code.
    volatile float xv = x;
    switch (fn) {
    case FN_EXP: return tg_expf(xv);
    case FN_TANH: return tg_tanhf(xv);
    default: return tg_sigmoidf(xv);
    }
}

// --- The sweep ---

typedef struct {
    double worst[MAX_RANGES];
    float worst_x[MAX_RANGES];
    float worst_y[MAX_RANGES];
    int64_t count[MAX_RANGES];
    int64_t nan_count; // NaN inputs, whose results must be NaN
    int64_t vector_scalar_differences;
    float first_difference_x;
} sweep_stats;

// Evaluates fn on xs[0..n) in its vectorised loop and adds each result's error to stats.
static void check_block(fn_id fn, const float *xs, int n, sweep_stats *st) {
    float ys[BLOCK]; // [n]
    switch (fn) {
    case FN_EXP: exp_loop(ys, xs, n); break;
    case FN_TANH: tanh_loop(ys, xs, n); break;
    default: sigmoid_loop(ys, xs, n); break;
    }
    const fn_spec *spec = &specs[fn];
    for (int i = 0; i < n; i++) {
        float x = xs[i], y = ys[i], s = scalar_call(fn, x);
        if (bits_of_float(s) != bits_of_float(y) && !(isnan(s) && isnan(y))) {
            if (st->vector_scalar_differences++ == 0) st->first_difference_x = x;
        }
        if (isnan(x)) {
            st->nan_count++;
            cr_assert(isnan(y), "%s(NaN 0x%08x) = %a, not NaN", spec->name, (unsigned)bits_of_float(x), y);
            continue;
        }
        int r = spec->range_of(x);
        double err = ulp_error(y, spec->exact(x));
        st->count[r]++;
        if (err > st->worst[r] || st->count[r] == 1) {
            st->worst[r] = err;
            st->worst_x[r] = x;
            st->worst_y[r] = y;
        }
    }
}

// Every bit pattern b = k*stride below 2^32, in blocks.
static void sweep_strided(fn_id fn, uint64_t stride, sweep_stats *st) {
    float xs[BLOCK]; // [BLOCK]
    uint64_t b = 0;
    while (b < (UINT64_C(1) << 32)) {
        int n = 0;
        for (; n < BLOCK && b < (UINT64_C(1) << 32); n++, b += stride) xs[n] = float_from_bits((uint32_t)b);
        check_block(fn, xs, n, st);
    }
}

// Every float whose bit pattern is within EDGE_HALF_WIDTH of center's (same sign).
static void sweep_around(fn_id fn, float center, sweep_stats *st) {
    float xs[2 * EDGE_HALF_WIDTH + 1]; // [2 * EDGE_HALF_WIDTH + 1]
    uint32_t c = bits_of_float(center), sign = c & 0x80000000u, mag = c & 0x7fffffffu;
    int n = 0;
    for (int64_t d = -EDGE_HALF_WIDTH; d <= EDGE_HALF_WIDTH; d++) {
        int64_t m = (int64_t)mag + d;
        if (m < 0 || m > 0x7f800000) continue; // stays within the finite floats and inf of that sign
        xs[n++] = float_from_bits(sign | (uint32_t)m);
    }
    for (int i = 0; i < n; i += BLOCK) check_block(fn, xs + i, n - i < BLOCK ? n - i : BLOCK, st);
}

static const float special_values[] = {
    0.0f, -0.0f, 0x1p-149f, -0x1p-149f, 0x1.fffffcp-127f, -0x1.fffffcp-127f, FLT_MIN, -FLT_MIN,
    FLT_EPSILON, -FLT_EPSILON, 1.0f, -1.0f, FLT_MAX, -FLT_MAX, INFINITY, -INFINITY, NAN, -NAN};

// The edges of the documented ranges and of the functions' own branches, both signs: where
// exp's results turn subnormal, 0 and inf, where tanh switches to exp and saturates (and its
// exp(2|x|) overflows, at 44.36), where sigmoid saturates to 1.
static const float edges[] = {
    0.0f,        -0.0f,        FLT_MIN,       -FLT_MIN,       0.625f,     -0.625f,     -103.972076f,
    103.972076f, -87.33654f,   87.33654f,     88.72283f,      -88.72283f, 44.361419f,  -44.361419f,
    0x1.205968p+3f, -0x1.205968p+3f, 0x1.0a2b24p+4f, -0x1.0a2b24p+4f, FLT_MAX, -FLT_MAX, INFINITY,
    -INFINITY};

static uint64_t sweep_stride(void) {
    const char *s = getenv("TG_FASTMATH_STRIDE");
    if (!s || !*s) return DEFAULT_STRIDE;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    cr_assert(*end == 0 && v >= 1 && v <= (1ull << 32), "TG_FASTMATH_STRIDE must be an integer in [1, 2^32], not '%s'", s);
    return v;
}

static void check_function(fn_id fn) {
    sweep_stats st = {0};
    uint64_t stride = sweep_stride();
    sweep_strided(fn, stride, &st);
    for (size_t i = 0; i < sizeof edges / sizeof *edges; i++) sweep_around(fn, edges[i], &st);
    check_block(fn, special_values, (int)(sizeof special_values / sizeof *special_values), &st);

    const fn_spec *spec = &specs[fn];
    cr_assert_eq(st.vector_scalar_differences, 0, "%s: the vectorised loop and the scalar call differ on %lld inputs, first at %a",
                 spec->name, (long long)st.vector_scalar_differences, st.first_difference_x);
    cr_assert(st.nan_count > 0, "%s: no NaN was swept", spec->name);
    for (int r = 0; r < MAX_RANGES && spec->ranges[r].what; r++) {
        cr_assert(st.count[r] > 0, "%s: nothing swept in %s", spec->name, spec->ranges[r].what);
        cr_log_info("%s, %s: %lld floats, worst %.4f ulp at x = %a", spec->name, spec->ranges[r].what, (long long)st.count[r],
                    st.worst[r], st.worst_x[r]);
        cr_expect(st.worst[r] <= spec->ranges[r].max_ulp, "%s, %s: %.4f ulp > %.3f documented, at x = %a (%.9g): %a, exact %.17g",
                  spec->name, spec->ranges[r].what, st.worst[r], spec->ranges[r].max_ulp, st.worst_x[r], st.worst_x[r],
                  st.worst_y[r], spec->exact(st.worst_x[r]));
    }
}

Test(fastmath, exp_sweep_within_documented_ulps) { check_function(FN_EXP); }
Test(fastmath, tanh_sweep_within_documented_ulps) { check_function(FN_TANH); }
Test(fastmath, sigmoid_sweep_within_documented_ulps) { check_function(FN_SIGMOID); }

// The error measure itself: a test that could not fail would be worthless.
Test(fastmath, ulp_error_measures_in_float_ulps) {
    cr_assert_eq(ulp_error(1.0f, 1.0), 0);
    cr_assert_eq(ulp_error(nextafterf(1.0f, 2.0f), 1.0), 1);             // ulp at 1 is 2^-23
    cr_assert_eq(ulp_error(nextafterf(1.0f, 0.0f), 1.0), 0.5);           // one float below 1 is half an ulp of 1
    cr_assert_eq(ulp_error(0x1p-149f, 0.0), 1);                          // subnormal ulp
    cr_assert_eq(ulp_error(0.0f, 0x1p-150), 0.5);                        // a tie, rounded to 0
    cr_assert_eq(ulp_error(1.5f, 1.5 + 0x1p-24), 0.5);
    cr_assert(isinf(ulp_error(FLT_MAX, 1e39)));                          // inf expected
    cr_assert(isinf(ulp_error(INFINITY, (double)FLT_MAX)));              // inf not expected
    cr_assert_eq(ulp_error(INFINITY, 1e39), 0);
    cr_assert(isinf(ulp_error(NAN, 1.0)) && isinf(ulp_error(1.0f, NAN)) && ulp_error(NAN, NAN) == 0);
}

// --- Special values ---

static bool same_bits(float a, float b) { return bits_of_float(a) == bits_of_float(b); }

Test(fastmath, exp_special_values) {
    cr_assert(isnan(tg_expf(NAN)) && isnan(tg_expf(-NAN)));
    cr_assert(same_bits(tg_expf(-INFINITY), 0.0f), "exp(-inf) = %a", tg_expf(-INFINITY));
    cr_assert(same_bits(tg_expf(INFINITY), INFINITY));
    cr_assert_eq(tg_expf(0.0f), 1.0f);
    cr_assert_eq(tg_expf(-0.0f), 1.0f);
    cr_assert(same_bits(tg_expf(-FLT_MAX), 0.0f));
    cr_assert(same_bits(tg_expf(FLT_MAX), INFINITY));
    // The largest float whose exp is finite, and the next.
    cr_assert(isfinite(tg_expf(88.72283f)) && tg_expf(88.72283f) > 3.4e38f, "%a", tg_expf(88.72283f));
    cr_assert(same_bits(tg_expf(nextafterf(88.72283f, INFINITY)), INFINITY));
    // The smallest float whose exp rounds to the smallest subnormal, and the next below: 0.
    cr_assert_eq(tg_expf(-103.972076f), 0x1p-149f, "%a", tg_expf(-103.972076f));
    cr_assert(same_bits(tg_expf(nextafterf(-103.972076f, -INFINITY)), 0.0f));
    // Subnormal results are not flushed to zero.
    float y = tg_expf(-100.0f);
    cr_assert(y > 0 && y < FLT_MIN && fabs(y - exp(-100.0)) <= 0x1p-149, "exp(-100) = %a", y);
}

Test(fastmath, tanh_special_values) {
    cr_assert(isnan(tg_tanhf(NAN)) && isnan(tg_tanhf(-NAN)));
    cr_assert(same_bits(tg_tanhf(0.0f), 0.0f));
    cr_assert(same_bits(tg_tanhf(-0.0f), -0.0f), "tanh(-0) = %a", tg_tanhf(-0.0f));
    cr_assert_eq(tg_tanhf(INFINITY), 1.0f);
    cr_assert_eq(tg_tanhf(-INFINITY), -1.0f);
    cr_assert_eq(tg_tanhf(FLT_MAX), 1.0f);
    cr_assert_eq(tg_tanhf(-FLT_MAX), -1.0f);
    // +-1 from |x| = 9.0109 (0x1.205968p+3), as correct rounding gives; just below, not yet.
    cr_assert_eq(tg_tanhf(0x1.205968p+3f), 1.0f);
    cr_assert_eq(tg_tanhf(-0x1.205968p+3f), -1.0f);
    cr_assert_lt(tg_tanhf(0x1.205966p+3f), 1.0f);
    // Tiny and subnormal x: tanh(x) = x.
    cr_assert_eq(tg_tanhf(0x1p-149f), 0x1p-149f);
    cr_assert_eq(tg_tanhf(-FLT_MIN), -FLT_MIN);
    cr_assert_eq(tg_tanhf(0x1p-20f), 0x1p-20f);
    // Odd, bit for bit, on both sides of the 0.625 switch.
    float xs[] = {0.1f, 0.6249999f, 0.625f, 0.7f, 3.0f};
    for (size_t i = 0; i < sizeof xs / sizeof *xs; i++)
        cr_assert(same_bits(tg_tanhf(-xs[i]), -tg_tanhf(xs[i])), "tanh(-%a) != -tanh(%a)", xs[i], xs[i]);
}

Test(fastmath, sigmoid_special_values) {
    cr_assert(isnan(tg_sigmoidf(NAN)) && isnan(tg_sigmoidf(-NAN)));
    cr_assert_eq(tg_sigmoidf(0.0f), 0.5f);
    cr_assert_eq(tg_sigmoidf(-0.0f), 0.5f);
    cr_assert_eq(tg_sigmoidf(INFINITY), 1.0f);
    cr_assert(same_bits(tg_sigmoidf(-INFINITY), 0.0f), "sigmoid(-inf) = %a", tg_sigmoidf(-INFINITY));
    cr_assert_eq(tg_sigmoidf(FLT_MAX), 1.0f);
    cr_assert(same_bits(tg_sigmoidf(-FLT_MAX), 0.0f));
    // 1 from x = 16.6355 (0x1.0a2b24p+4), as correct rounding gives; just below, not yet.
    cr_assert_eq(tg_sigmoidf(0x1.0a2b24p+4f), 1.0f);
    cr_assert_lt(tg_sigmoidf(0x1.0a2b22p+4f), 1.0f);
    // Very negative x: sigmoid(x) is exp(x), subnormal, not 0.
    float y = tg_sigmoidf(-100.0f);
    cr_assert(y > 0 && y < FLT_MIN && fabs(y - exp(-100.0)) <= 0x1p-149, "sigmoid(-100) = %a", y);
    cr_assert(same_bits(tg_sigmoidf(nextafterf(-103.972076f, -INFINITY)), 0.0f));
    // sigmoid(-x) = 1 - sigmoid(x), to the documented ulps of each side.
    for (float x = 0.25f; x < 16; x *= 2) {
        double sum = (double)tg_sigmoidf(x) + tg_sigmoidf(-x);
        cr_assert(fabs(sum - 1) <= 1.499 * 0x1p-24 + 2.402 * float_ulp_at(exact_sigmoid(-x)), "x = %g: sum %.17g", x, sum);
    }
}

// --- The library's ops use these functions ---

// tg_exp, tg_tanh and tg_sigmoid on float32 tensors give tg_expf's, tg_tanhf's and
// tg_sigmoidf's results bit for bit.
Test(fastmath, float_ops_use_these_functions) {
    enum { N = 65536 + sizeof special_values / sizeof *special_values };
    static float xs[N]; // [N]
    for (int i = 0; i < 65536; i++) xs[i] = float_from_bits((uint32_t)i * 65537u + 12345u);
    memcpy(xs + 65536, special_values, sizeof special_values);
    tg_graph *g = tg_graph_new();
    tg_tensor *x = tg_from_data(g, TG_F32, tg_shape1(N), xs);
    const float *e = tg_exp(g, x)->data, *t = tg_tanh(g, x)->data, *s = tg_sigmoid(g, x)->data;
    for (int i = 0; i < N; i++) {
        float want[3] = {tg_expf(xs[i]), tg_tanhf(xs[i]), tg_sigmoidf(xs[i])}, got[3] = {e[i], t[i], s[i]};
        for (int f = 0; f < 3; f++)
            cr_assert(same_bits(got[f], want[f]) || (isnan(got[f]) && isnan(want[f])), "%s(%a): op gives %a, function %a",
                      specs[f].name, xs[i], got[f], want[f]);
    }
    tg_graph_free(g);
}
