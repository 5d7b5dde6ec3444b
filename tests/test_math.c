// Elementwise math (sqrt, rsqrt, pow_scalar, square, abs, clamp, minimum, maximum), the
// activations softplus, gelu, gelu_tanh and silu, layer_norm, the ops along an axis (max,
// min, argmax, logsumexp, var, std, cumsum), comparisons, cast, bce_with_logits, flip,
// permute and pad: against PyTorch's values
// (tests/data/ops/ops.safetensors, written by scripts/fixtures/make_op_fixtures.py), by
// float64 gradient checks at edge values, in float32 against float64, and on bad input.
#include <stdio.h>
#include <stdlib.h>

#include "tg_safetensors.h"
#include "tg_test.h"

// --- The fixture ---

static tg_safetensors *open_fixture(void) {
    char path[1024], err[512];
    const char *slash = strrchr(__FILE__, '/');
    snprintf(path, sizeof path, "%.*sdata/ops/ops.safetensors", slash ? (int)(slash - __FILE__ + 1) : 0, __FILE__);
    tg_safetensors *f = tg_safetensors_open(path, err, sizeof err);
    cr_assert_not_null(f, "%s", err);
    return f;
}

// The fixture's tensor name as a new float64 tensor (with a gradient when grad), or NULL
// when the fixture has none of that name.
static tg_tensor *load(const tg_safetensors *f, const char *name, bool grad) {
    tg_safetensors_tensor info;
    if (!tg_safetensors_find(f, name, &info)) return NULL;
    cr_assert(info.ndim <= TG_MAX_DIMS, "%s has %d dimensions", name, info.ndim);
    tg_shape shape = {info.ndim, {0}};
    for (int d = 0; d < info.ndim; d++) shape.d[d] = info.shape[d];
    tg_tensor *t = tg_tensor_create(TG_F64, shape, grad);
    char err[512];
    cr_assert(tg_safetensors_read_into(f, name, t, err, sizeof err), "%s", err);
    return t;
}

// Equal within 1e-10 + 1e-8|ref|, or the same infinity, or both NaN.
static void assert_matches(const char *what, int64_t i, double got, double want) {
    if (isnan(want)) {
        cr_assert(isnan(got), "%s[%lld] = %.17g, PyTorch gives NaN", what, (long long)i, got);
    } else if (isinf(want)) {
        cr_assert_eq(got, want, "%s[%lld] = %.17g, PyTorch gives %g", what, (long long)i, got, want);
    } else {
        cr_assert(fabs(got - want) <= 1e-10 + 1e-8 * fabs(want), "%s[%lld] = %.17g, PyTorch gives %.17g", what,
                  (long long)i, got, want);
    }
}

// got's values (its data, or its gradient when grad) against want's; int32 (an index or a
// mask) is compared as numbers.
static void assert_tensor_matches(const char *what, const tg_tensor *got, bool grad, const tg_tensor *want) {
    cr_assert(tg_shape_equal(got->shape, want->shape), "%s: shape differs from PyTorch's", what);
    for (int64_t i = 0; i < want->numel; i++) {
        double v = got->dtype == TG_I32 ? ((const int32_t *)got->data)[i]
                   : grad              ? ((const double *)got->grad)[i]
                                       : tg_tensor_get(got, i);
        assert_matches(what, i, v, tg_tensor_get(want, i));
    }
}

// Applies the op a case's spec names ("clamp -0.5 0.7", "layer_norm 1e-05 gain", ...).
static tg_tensor *apply(tg_graph *g, const char *spec, tg_tensor *x, tg_tensor *b, tg_tensor *gain, tg_tensor *bias) {
    char op[32] = "";
    double p = 0, q = 0, r = 0, s = 0;
    int n = sscanf(spec, "%31s %lf %lf %lf %lf", op, &p, &q, &r, &s);
    cr_assert(n >= 1, "bad spec '%s'", spec);
    if (!strcmp(op, "sqrt")) return tg_sqrt(g, x);
    if (!strcmp(op, "rsqrt")) return tg_rsqrt(g, x);
    if (!strcmp(op, "pow_scalar")) return tg_pow_scalar(g, x, p);
    if (!strcmp(op, "square")) return tg_square(g, x);
    if (!strcmp(op, "abs")) return tg_abs(g, x);
    if (!strcmp(op, "clamp")) return tg_clamp(g, x, p, q);
    if (!strcmp(op, "minimum")) return tg_minimum(g, x, b);
    if (!strcmp(op, "maximum")) return tg_maximum(g, x, b);
    if (!strcmp(op, "softplus")) return tg_softplus(g, x, p, q);
    if (!strcmp(op, "gelu")) return tg_gelu(g, x);
    if (!strcmp(op, "gelu_tanh")) return tg_gelu_tanh(g, x);
    if (!strcmp(op, "silu")) return tg_silu(g, x);
    if (!strcmp(op, "layer_norm")) return tg_layer_norm(g, x, gain, bias, p);
    if (!strcmp(op, "max_axis")) return tg_max_axis(g, x, (int)p, q != 0);
    if (!strcmp(op, "min_axis")) return tg_min_axis(g, x, (int)p, q != 0);
    if (!strcmp(op, "argmax")) return tg_argmax(g, x, (int)p, q != 0);
    if (!strcmp(op, "logsumexp")) return tg_logsumexp(g, x, (int)p, q != 0);
    if (!strcmp(op, "var")) return tg_var(g, x, (int)p, q != 0, r != 0);
    if (!strcmp(op, "std")) return tg_std(g, x, (int)p, q != 0, r != 0);
    if (!strcmp(op, "cumsum")) return tg_cumsum(g, x, (int)p);
    if (!strcmp(op, "gt")) return tg_gt(g, x, b);
    if (!strcmp(op, "ge")) return tg_ge(g, x, b);
    if (!strcmp(op, "lt")) return tg_lt(g, x, b);
    if (!strcmp(op, "le")) return tg_le(g, x, b);
    if (!strcmp(op, "eq")) return tg_eq(g, x, b);
    if (!strcmp(op, "bce_with_logits")) return tg_bce_with_logits(g, x, b, (tg_reduction)p);
    if (!strcmp(op, "flip")) return tg_flip(g, x, (int)p);
    if (!strcmp(op, "permute")) return tg_permute(g, x, n - 1, (const int[]){(int)p, (int)q, (int)r, (int)s});
    if (!strcmp(op, "pad")) return tg_pad(g, x, (int)p, (int64_t)q, (int64_t)r, s);
    cr_assert_fail("unknown op in spec '%s'", spec);
    return NULL;
}

// The cases this file knows; the fixture must list exactly these.
static const char *const CASES[] = {"sqrt", "rsqrt", "pow_2", "pow_3", "pow_half", "pow_m1_5", "pow_0",
                                    "square", "abs", "clamp", "clamp_min", "clamp_crossed", "minimum", "maximum",
                                    "softplus", "softplus_beta", "gelu", "gelu_tanh", "silu", "layer_norm",
                                    "layer_norm_plain", "layer_norm_gain", "max_axis", "min_axis",
                                    "max_axis_last", "argmax", "logsumexp", "logsumexp_keep", "var", "var_biased",
                                    "std", "std_biased", "var_single", "cumsum", "cumsum_first", "gt", "ge", "lt",
                                    "le", "eq", "bce_with_logits_mean", "bce_with_logits_sum",
                                    "bce_with_logits_none", "flip", "flip_last", "permute", "permute4", "pad",
                                    "pad_last"};

Test(math, matches_pytorch_forward_and_backward_in_float64) {
    tg_safetensors *f = open_fixture();
    const char *listed = tg_safetensors_metadata(f, "cases");
    cr_assert_not_null(listed);
    char all[1024] = "";
    for (size_t c = 0; c < sizeof CASES / sizeof *CASES; c++) {
        if (c) strcat(all, " ");
        strcat(all, CASES[c]);
    }
    cr_assert_str_eq(listed, all, "the fixture's cases differ from this test's");
    for (size_t c = 0; c < sizeof CASES / sizeof *CASES; c++) {
        const char *name = CASES[c];
        char key[128], what[160];
        snprintf(key, sizeof key, "case.%s", name);
        const char *spec = tg_safetensors_metadata(f, key);
        cr_assert_not_null(spec, "no %s", key);
        const char *input_names[] = {"x", "a", "b", "gain", "bias"};
        tg_tensor *in[5], *grad_want[5];
        for (int k = 0; k < 5; k++) {
            snprintf(key, sizeof key, "%s.%s", name, input_names[k]);
            in[k] = load(f, key, true);
            snprintf(key, sizeof key, "%s.grad.%s", name, input_names[k]);
            grad_want[k] = load(f, key, false);
        }
        snprintf(key, sizeof key, "%s.out", name);
        tg_tensor *out_want = load(f, key, false);
        snprintf(key, sizeof key, "%s.w", name);
        tg_tensor *w = load(f, key, false);
        cr_assert_not_null(out_want, "case %s lacks its output", name);
        tg_graph *g = tg_graph_new();
        tg_tensor *x = in[0] ? in[0] : in[1]; // "a" for the binary ops
        tg_tensor *y = apply(g, spec, x, in[2], in[3], in[4]);
        cr_assert_not_null(y, "%s: the op failed", name);
        snprintf(what, sizeof what, "%s (%s): output", name, spec);
        assert_tensor_matches(what, y, false, out_want);
        if (y->dtype == TG_I32) { // an index or a mask: nothing recorded, nothing to differentiate
            cr_assert_null(w, "case %s has an upstream gradient for an int32 output", name);
            cr_assert_eq(tg_graph_node_count(g), 0);
        } else {
            cr_assert_not_null(w, "case %s lacks its upstream gradient", name);
            cr_assert(tg_backward_seed(g, y, w->data));
        }
        for (int k = 0; k < 5; k++) {
            if (!in[k] || y->dtype == TG_I32) continue;
            cr_assert_not_null(grad_want[k], "case %s has input %s but no gradient", name, input_names[k]);
            snprintf(what, sizeof what, "%s (%s): gradient of %s", name, spec, input_names[k]);
            assert_tensor_matches(what, in[k], true, grad_want[k]);
        }
        tg_graph_free(g);
        for (int k = 0; k < 5; k++) {
            tg_tensor_free(in[k]);
            tg_tensor_free(grad_want[k]);
        }
        tg_tensor_free(out_want);
        tg_tensor_free(w);
    }
    tg_safetensors_close(f);
}

// --- Gradient checks in float64, at edge values where the op is differentiable ---

typedef struct {
    const char *spec;
    tg_tensor *x, *b, *gain, *bias;
} case_ctx;

static tg_tensor *case_fn(tg_graph *g, void *ctx) {
    case_ctx *c = ctx;
    return apply(g, c->spec, c->x, c->b, c->gain, c->bias);
}

// x [3, 5] of U(lo, hi), its first elements set to edges.
static tg_tensor *edge_input(double lo, double hi, const double *edges, int n_edges, uint64_t seed) {
    tg_tensor *x = test_input(tg_shape2(3, 5), seed, lo, hi);
    for (int i = 0; i < n_edges; i++) tg_tensor_set(x, i, edges[i]);
    return x;
}

static void gradcheck_unary(const char *spec, double lo, double hi, const double *edges, int n_edges) {
    tg_tensor *x = edge_input(lo, hi, edges, n_edges, 11);
    case_ctx c = {spec, x, NULL, NULL, NULL};
    char report[1024];
    cr_assert(tg_gradcheck(case_fn, &c, &x, 1, NULL, report, sizeof report), "%s: %s", spec, report);
    tg_tensor_free(x);
}

Test(math, unary_ops_pass_gradcheck_at_edge_values) {
    const double positive[] = {1e-3, 1e3, 1.0, 0.25};
    gradcheck_unary("sqrt", 0.1, 4, positive, 4);
    gradcheck_unary("rsqrt", 0.1, 4, positive, 4);
    const double mixed[] = {0.0, -1.0, 1.0, 30.0, -30.0};
    gradcheck_unary("pow_scalar 2", -2, 2, mixed, 5);
    gradcheck_unary("pow_scalar 3", -2, 2, mixed, 5);
    gradcheck_unary("pow_scalar 0", -2, 2, mixed, 5);
    gradcheck_unary("pow_scalar -1.5", 0.2, 3, positive, 4);
    gradcheck_unary("pow_scalar 0.5", 0.2, 3, positive, 4);
    gradcheck_unary("square", -2, 2, mixed, 5);
    const double off_zero[] = {1e-3, -1e-3, 1e3, -1e3};
    gradcheck_unary("abs", -2, 2, off_zero, 4);
    const double inside_and_out[] = {-0.49, 0.69, -5.0, 5.0, 0.0};
    gradcheck_unary("clamp -0.5 0.7", -2, 2, inside_and_out, 5);
    const double large[] = {0.0, 30.0, -30.0, 19.9, 20.1, -700.0};
    gradcheck_unary("softplus 1 20", -5, 5, large, 6);
    gradcheck_unary("softplus 2 5", -5, 5, large, 6);
    gradcheck_unary("gelu", -5, 5, large, 6);
    gradcheck_unary("gelu_tanh", -5, 5, large, 6);
    gradcheck_unary("silu", -5, 5, large, 6);
}

Test(math, minimum_and_maximum_pass_gradcheck_broadcasting) {
    tg_tensor *a = test_input(tg_shape3(2, 3, 4), 3, -2, 2), *b = test_input(tg_shape2(3, 1), 4, -2, 2);
    // Large magnitudes on both sides; not 1e6 and more, where central differences of the
    // weighted output lose the digits the check needs (the fixture covers 1e300).
    tg_tensor_set(a, 0, 1e3);
    tg_tensor_set(b, 1, -1e3);
    tg_tensor *wrt[] = {a, b};
    for (int m = 0; m < 2; m++) {
        case_ctx c = {m ? "maximum" : "minimum", a, b, NULL, NULL};
        ASSERT_GRADCHECK(case_fn, &c, wrt, 2);
    }
    tg_tensor_free(a);
    tg_tensor_free(b);
}

Test(math, ties_split_the_gradient_in_half) {
    tg_tensor *a = tg_tensor_create(TG_F64, tg_shape1(3), true), *b = tg_tensor_create(TG_F64, tg_shape1(3), true);
    double av[] = {1, 2, 3}, bv[] = {1, 5, 0};
    tg_tensor_copy_from(a, av);
    tg_tensor_copy_from(b, bv);
    tg_graph *g = tg_graph_new();
    cr_assert(tg_backward(g, tg_sum(g, tg_maximum(g, a, b))));
    double want_a[] = {0.5, 0, 1}, want_b[] = {0.5, 1, 0};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(((double *)a->grad)[i], want_a[i], "a[%d]", i);
        cr_assert_eq(((double *)b->grad)[i], want_b[i], "b[%d]", i);
    }
    tg_graph_free(g);
    tg_tensor_free(a);
    tg_tensor_free(b);
}

Test(math, layer_norm_passes_gradcheck) {
    tg_tensor *x = test_input(tg_shape3(2, 3, 5), 5, -2, 2), *gain = test_input(tg_shape1(5), 6, 0.5, 1.5),
              *bias = test_input(tg_shape1(5), 7, -1, 1);
    for (int j = 0; j < 5; j++) tg_tensor_set(x, 5 + j, tg_tensor_get(x, 5 + j) + 1e4); // a large offset
    tg_tensor *wrt[] = {x, gain, bias};
    case_ctx c = {"layer_norm 1e-5", x, NULL, gain, bias};
    ASSERT_GRADCHECK(case_fn, &c, wrt, 3);
    case_ctx plain = {"layer_norm 0", x, NULL, NULL, NULL};
    ASSERT_GRADCHECK(case_fn, &plain, wrt, 1);
    tg_tensor_free(x);
    tg_tensor_free(gain);
    tg_tensor_free(bias);
}

Test(math, axis_ops_pass_gradcheck) {
    tg_tensor *x = test_input(tg_shape3(2, 4, 3), 21, -2, 2);
    tg_tensor_set(x, 0, 600); // large magnitudes, for logsumexp's shift
    tg_tensor_set(x, 4, -600);
    const char *specs[] = {"max_axis 1 0", "min_axis -1 1", "logsumexp 1 0", "logsumexp 2 1", "var 1 1 0",
                           "var 0 0 1", "std 1 1 1", "std 2 0 0", "cumsum 1", "cumsum 0", "flip 1", "flip -1",
                           "permute 2 0 1", "permute 1 2 0", "pad 1 2 3 7", "pad 0 0 1 0"};
    for (size_t s = 0; s < sizeof specs / sizeof *specs; s++) {
        case_ctx c = {specs[s], x, NULL, NULL, NULL};
        char report[1024];
        cr_assert(tg_gradcheck(case_fn, &c, &x, 1, NULL, report, sizeof report), "%s: %s", specs[s], report);
    }
    tg_tensor_free(x);
}

Test(math, comparisons_make_masks_for_where) {
    tg_tensor *x = tg_tensor_create(TG_F64, tg_shape2(2, 3), true);
    double xv[] = {-1, 0, 2, 3, -4, 0.5};
    tg_tensor_copy_from(x, xv);
    tg_graph *g = tg_graph_new();
    tg_tensor *zero = tg_zeros(g, TG_F64, tg_shape0());
    tg_tensor *relu = tg_where(g, tg_gt(g, x, zero), x, zero); // relu written with a mask
    cr_assert(tg_backward(g, tg_sum(g, relu)));
    for (int i = 0; i < 6; i++) {
        cr_assert_eq(tg_tensor_get(relu, i), xv[i] > 0 ? xv[i] : 0);
        cr_assert_eq(((double *)x->grad)[i], xv[i] > 0 ? 1 : 0, "grad[%d]", i);
    }
    tg_tensor *m = tg_le(g, x, tg_full(g, TG_F64, tg_shape1(3), 0));
    cr_assert_eq(m->dtype, TG_I32);
    cr_assert(!m->requires_grad);
    tg_graph_free(g);
    tg_tensor_free(x);
}

Test(math, cast_converts_values_and_casts_the_gradient_back) {
    tg_tensor *x = tg_tensor_create(TG_F64, tg_shape1(3), true);
    double xv[] = {0.1, -2.5, 1e-3};
    tg_tensor_copy_from(x, xv);
    tg_graph *g = tg_graph_new();
    tg_tensor *y = tg_cast(g, x, TG_F32);
    cr_assert_eq(y->dtype, TG_F32);
    for (int i = 0; i < 3; i++) cr_assert_eq(((float *)y->data)[i], (float)xv[i]);
    cr_assert_eq(tg_cast(g, y, TG_F32), y, "a cast to the same dtype is the tensor itself");
    tg_tensor *back = tg_cast(g, tg_mul_scalar(g, y, 3), TG_F64);
    cr_assert_eq(back->dtype, TG_F64);
    cr_assert(tg_backward_seed(g, back, (double[]){1, 2, 0.5}));
    double want[] = {3, 6, 1.5};
    for (int i = 0; i < 3; i++) cr_assert_eq(((double *)x->grad)[i], want[i], "grad[%d]", i);
    tg_graph_free(g);
    tg_tensor_free(x);
}

Test(math, bce_with_logits_passes_gradcheck_for_logits_and_targets) {
    tg_tensor *x = test_input(tg_shape2(3, 4), 31, -4, 4), *t = test_input(tg_shape2(3, 4), 32, 0, 1);
    tg_tensor_set(x, 0, 30); // large magnitudes, where the naive form loses its digits
    tg_tensor_set(x, 1, -30);
    tg_tensor *wrt[] = {x, t};
    const char *specs[] = {"bce_with_logits 0", "bce_with_logits 1", "bce_with_logits 2"};
    for (int s = 0; s < 3; s++) {
        case_ctx c = {specs[s], x, t, NULL, NULL};
        char report[1024];
        cr_assert(tg_gradcheck(case_fn, &c, wrt, 2, NULL, report, sizeof report), "%s: %s", specs[s], report);
    }
    tg_tensor_free(x);
    tg_tensor_free(t);
}

// --- float32: the same values as float64, to float32's precision ---

Test(math, float32_agrees_with_float64) {
    const char *specs[] = {"sqrt", "rsqrt", "pow_scalar 3", "pow_scalar -1.5", "square", "abs", "clamp -0.5 0.7",
                           "minimum", "maximum", "softplus 1 20", "gelu", "gelu_tanh", "silu", "layer_norm 1e-5",
                           "max_axis 1 0", "min_axis 0 1", "logsumexp 1 0", "var 1 1 0", "std 0 0 1", "cumsum 1",
                           "flip 0", "permute 1 0", "pad 1 1 2 0.5"};
    tg_tensor *x64 = test_input(tg_shape2(4, 6), 9, 0.1, 3), *b64 = test_input(tg_shape2(1, 6), 10, 0.1, 3);
    tg_tensor *gain64 = test_input(tg_shape1(6), 12, 0.5, 1.5), *bias64 = test_input(tg_shape1(6), 13, -1, 1);
    tg_tensor *x32 = tg_tensor_create(TG_F32, x64->shape, true), *b32 = tg_tensor_create(TG_F32, b64->shape, true);
    tg_tensor *gain32 = tg_tensor_create(TG_F32, gain64->shape, true), *bias32 = tg_tensor_create(TG_F32, bias64->shape, true);
    tg_tensor *pairs[][2] = {{x64, x32}, {b64, b32}, {gain64, gain32}, {bias64, bias32}};
    for (int k = 0; k < 4; k++)
        for (int64_t i = 0; i < pairs[k][0]->numel; i++) tg_tensor_set(pairs[k][1], i, tg_tensor_get(pairs[k][0], i));
    tg_graph *g = tg_graph_new();
    for (size_t s = 0; s < sizeof specs / sizeof *specs; s++) {
        tg_graph_reset(g);
        for (int k = 0; k < 4; k++) {
            tg_tensor_zero_grad(pairs[k][0]);
            tg_tensor_zero_grad(pairs[k][1]);
        }
        tg_tensor *y64 = apply(g, specs[s], x64, b64, gain64, bias64);
        tg_tensor *y32 = apply(g, specs[s], x32, b32, gain32, bias32);
        cr_assert(y32->dtype == TG_F32);
        for (int64_t i = 0; i < y64->numel; i++)
            ASSERT_CLOSE(tg_tensor_get(y32, i), tg_tensor_get(y64, i), 1e-6, 1e-5);
        // the same upstream gradient: the sum of y * (1 + i/10)
        tg_tensor *w64 = tg_tensor_create(TG_F64, y64->shape, false), *w32 = tg_tensor_create(TG_F32, y32->shape, false);
        for (int64_t i = 0; i < y64->numel; i++) {
            tg_tensor_set(w64, i, 1 + (double)i / 10);
            tg_tensor_set(w32, i, 1 + (double)i / 10);
        }
        cr_assert(tg_backward_seed(g, y64, w64->data));
        cr_assert(tg_backward_seed(g, y32, w32->data));
        for (int k = 0; k < 4; k++)
            for (int64_t i = 0; i < pairs[k][0]->numel; i++)
                ASSERT_CLOSE(((float *)pairs[k][1]->grad)[i], ((double *)pairs[k][0]->grad)[i], 1e-5, 1e-4);
        tg_tensor_free(w64);
        tg_tensor_free(w32);
    }
    tg_graph_free(g);
    for (int k = 0; k < 4; k++) {
        tg_tensor_free(pairs[k][0]);
        tg_tensor_free(pairs[k][1]);
    }
}

// --- Bad input: an error naming the op and the shapes, never a crash ---

Test(math, bad_input_names_the_op_and_the_shapes) {
    test_capture_errors();
    tg_graph *g = tg_graph_new();
    tg_tensor *x = tg_zeros(g, TG_F64, tg_shape2(3, 5)), *gain = tg_ones(g, TG_F64, tg_shape1(4));
    cr_assert_null(tg_layer_norm(g, x, gain, NULL, 1e-5));
    cr_assert(strstr(test_error_message, "tg_layer_norm") && strstr(test_error_message, "[3, 5]") &&
                  strstr(test_error_message, "[4]"), "%s", test_error_message);
    cr_assert_null(tg_maximum(g, x, tg_zeros(g, TG_F64, tg_shape1(4))));
    cr_assert(strstr(test_error_message, "tg_maximum") && strstr(test_error_message, "[3, 5]"), "%s",
              test_error_message);
    cr_assert_null(tg_minimum(g, x, tg_zeros(g, TG_F32, tg_shape1(5))));
    cr_assert(strstr(test_error_message, "tg_minimum"), "%s", test_error_message);
    cr_assert_null(tg_clamp(g, x, NAN, 1));
    cr_assert(strstr(test_error_message, "tg_clamp"), "%s", test_error_message);
    cr_assert_null(tg_softplus(g, x, 0, 20));
    cr_assert(strstr(test_error_message, "tg_softplus"), "%s", test_error_message);
    cr_assert_null(tg_sqrt(g, NULL));
    cr_assert(strstr(test_error_message, "tg_sqrt"), "%s", test_error_message);
    cr_assert_null(tg_layer_norm(g, tg_zeros(g, TG_F64, tg_shape0()), NULL, NULL, 1e-5));
    cr_assert(strstr(test_error_message, "tg_layer_norm"), "%s", test_error_message);
    cr_assert_null(tg_max_axis(g, x, 2, false));
    cr_assert(strstr(test_error_message, "tg_max_axis") && strstr(test_error_message, "[3, 5]"), "%s",
              test_error_message);
    cr_assert_null(tg_argmax(g, tg_zeros(g, TG_F64, tg_shape2(3, 0)), 1, false));
    cr_assert(strstr(test_error_message, "tg_argmax") && strstr(test_error_message, "[3, 0]"), "%s",
              test_error_message);
    cr_assert_null(tg_var(g, tg_zeros(g, TG_F64, tg_shape0()), 0, true, false));
    cr_assert(strstr(test_error_message, "tg_var"), "%s", test_error_message);
    cr_assert_null(tg_gt(g, x, tg_zeros(g, TG_F64, tg_shape1(4))));
    cr_assert(strstr(test_error_message, "tg_gt") && strstr(test_error_message, "[3, 5]"), "%s", test_error_message);
    cr_assert_null(tg_permute(g, x, 2, (const int[]){0, 0}));
    cr_assert(strstr(test_error_message, "tg_permute") && strstr(test_error_message, "[3, 5]"), "%s",
              test_error_message);
    cr_assert_null(tg_pad(g, x, 1, -1, 0, 0));
    cr_assert(strstr(test_error_message, "tg_pad") && strstr(test_error_message, "[3, 5]"), "%s", test_error_message);
    cr_assert_null(tg_bce_with_logits(g, x, tg_zeros(g, TG_F64, tg_shape2(5, 3)), TG_REDUCE_MEAN));
    cr_assert(strstr(test_error_message, "tg_bce_with_logits") && strstr(test_error_message, "[5, 3]"), "%s",
              test_error_message);
    cr_assert_null(tg_cast(g, x, TG_I32));
    cr_assert(strstr(test_error_message, "tg_cast"), "%s", test_error_message);
    tg_graph_free(g);
}
