// Gradient checks, values and errors for softmax, log_softmax, cross_entropy (with label
// smoothing too, against PyTorch's values), nll_loss and mse_loss.
#include <math.h>
#include <stdio.h>

#include "tg_safetensors.h"
#include "tg_test.h"

// tests/data/ops/<name>: CMake compiles the tests by absolute path, so fixtures are found from __FILE__.
static const char *test_fixture_path(const char *name) {
    static char path[1024];
    const char *slash = strrchr(__FILE__, '/');
    snprintf(path, sizeof path, "%.*sdata/ops/%s", slash ? (int)(slash - __FILE__ + 1) : 0, __FILE__, name);
    return path;
}

// --- softmax and log_softmax ---

typedef struct {
    bool log_space;
    tg_tensor *x;
    int axis;
} softmax_case;

static tg_tensor *run_softmax(tg_graph *g, void *ctx) {
    softmax_case *c = ctx;
    return c->log_space ? tg_log_softmax(g, c->x, c->axis) : tg_softmax(g, c->x, c->axis);
}

Test(softmax, gradcheck_every_axis_both_ops) {
    tg_shape shapes[] = {tg_shape1(1), tg_shape1(5), tg_shape2(2, 3), tg_shape3(2, 3, 4), tg_shape4(2, 1, 3, 2)};
    for (int s = 0; s < 5; s++)
        for (int axis = -shapes[s].n; axis < shapes[s].n; axis++)
            for (int log_space = 0; log_space < 2; log_space++) {
                softmax_case c = {log_space, test_input(shapes[s], 30 + s, -3, 3), axis};
                ASSERT_GRADCHECK(run_softmax, &c, &c.x, 1);
                tg_tensor_free(c.x);
            }
}

Test(softmax, gradcheck_scalar) {
    for (int axis = -1; axis <= 0; axis++)
        for (int log_space = 0; log_space < 2; log_space++) {
            softmax_case c = {log_space, test_input(tg_shape0(), 3, -1, 1), axis};
            ASSERT_GRADCHECK(run_softmax, &c, &c.x, 1);
            tg_tensor_free(c.x);
        }
}

// Flat index of x[idx] with idx[axis] replaced by j, for a row-major shape.
static int64_t with_axis(tg_shape shape, int64_t k, int axis, int64_t j) {
    int64_t idx[4];
    for (int d = shape.n - 1; d >= 0; d--) {
        idx[d] = k % shape.d[d];
        k /= shape.d[d];
    }
    idx[axis] = j;
    int64_t pos = 0;
    for (int d = 0; d < shape.n; d++) pos = pos * shape.d[d] + idx[d];
    return pos;
}

Test(softmax, values_along_every_axis_match_the_formula) {
    tg_graph *g = tg_graph_new();
    tg_rng rng;
    tg_rng_seed(&rng, 5);
    tg_shape shape = tg_shape3(3, 4, 5);
    tg_tensor *x = tg_rand_uniform(g, TG_F64, shape, &rng, -4, 4);
    const double *xv = x->data;
    for (int axis = -3; axis < 3; axis++) {
        int ax = axis < 0 ? axis + 3 : axis;
        tg_tensor *y = tg_softmax(g, x, axis), *ly = tg_log_softmax(g, x, axis);
        cr_assert(tg_shape_equal(y->shape, shape) && tg_shape_equal(ly->shape, shape));
        for (int64_t k = 0; k < x->numel; k++) {
            double z = 0;
            for (int64_t j = 0; j < shape.d[ax]; j++) z += exp(xv[with_axis(shape, k, ax, j)]);
            ASSERT_CLOSE(tg_tensor_get(y, k), exp(xv[k]) / z, 1e-15, 1e-13);
            ASSERT_CLOSE(tg_tensor_get(ly, k), xv[k] - log(z), 1e-13, 1e-13);
        }
    }
    tg_graph_free(g);
}

Test(softmax, large_and_tiny_logits_stay_finite) {
    tg_graph *g = tg_graph_new();
    for (int dt = 0; dt < 2; dt++) {
        tg_dtype dtype = dt ? TG_F64 : TG_F32;
        double big[] = {1000, 1001, 1002}, tiny[] = {-1000, 0};
        float big32[] = {1000, 1001, 1002}, tiny32[] = {-1000, 0};
        tg_tensor *xb = tg_from_data(g, dtype, tg_shape1(3), dt ? (void *)big : (void *)big32);
        tg_tensor *xt = tg_from_data(g, dtype, tg_shape1(2), dt ? (void *)tiny : (void *)tiny32);
        tg_tensor *y = tg_softmax(g, xb, 0), *ly = tg_log_softmax(g, xb, -1), *lt = tg_log_softmax(g, xt, 0);
        double z = 1 + exp(1) + exp(2), tol = dt ? 1e-15 : 1e-6;
        for (int i = 0; i < 3; i++) {
            ASSERT_CLOSE(tg_tensor_get(y, i), exp(i) / z, tol, tol);
            ASSERT_CLOSE(tg_tensor_get(ly, i), i - log(z), tol, tol);
        }
        // log(softmax) would give -inf here; log(1 + e^-1000) is 0 in double.
        ASSERT_CLOSE(tg_tensor_get(lt, 0), -1000, 0, 1e-15);
        ASSERT_CLOSE(tg_tensor_get(lt, 1), 0, 0, 0);
    }
    tg_graph_free(g);
}

Test(softmax, size_one_axis_gives_one_and_zero) {
    tg_graph *g = tg_graph_new();
    double xs[] = {-3, 0.5, 7};
    tg_tensor *x = tg_from_data(g, TG_F64, tg_shape2(3, 1), xs);
    tg_tensor *y = tg_softmax(g, x, 1), *ly = tg_log_softmax(g, x, -1);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(tg_tensor_get(y, i), 1);
        cr_assert_eq(tg_tensor_get(ly, i), 0);
    }
    tg_graph_free(g);
}

Test(softmax, float32_matches_float64) {
    tg_graph *g = tg_graph_new();
    tg_rng rng;
    tg_rng_seed(&rng, 9);
    tg_tensor *x64 = tg_rand_uniform(g, TG_F64, tg_shape2(4, 6), &rng, -5, 5);
    float x32[24];
    for (int i = 0; i < 24; i++) x32[i] = (float)tg_tensor_get(x64, i);
    tg_tensor *x = tg_from_data(g, TG_F32, tg_shape2(4, 6), x32);
    for (int axis = 0; axis < 2; axis++) {
        tg_tensor *a = tg_softmax(g, x, axis), *b = tg_softmax(g, x64, axis);
        tg_tensor *la = tg_log_softmax(g, x, axis), *lb = tg_log_softmax(g, x64, axis);
        cr_assert_eq(a->dtype, TG_F32);
        for (int i = 0; i < 24; i++) {
            ASSERT_CLOSE(tg_tensor_get(a, i), tg_tensor_get(b, i), 1e-6, 1e-5);
            ASSERT_CLOSE(tg_tensor_get(la, i), tg_tensor_get(lb, i), 1e-6, 1e-5);
        }
    }
    tg_graph_free(g);
}

Test(softmax, backward_adds_to_existing_gradient) {
    tg_graph *g = tg_graph_new();
    tg_tensor *x = tg_tensor_create(TG_F64, tg_shape1(3), true);
    double *gx = x->grad, seed[] = {1, 0, 0};
    for (int i = 0; i < 3; i++) gx[i] = 5;
    // x = 0: softmax = 1/3 each; d y0 / d x = y0 (e0 - y) = (2/9, -1/9, -1/9).
    cr_assert(tg_backward_seed(g, tg_softmax(g, x, 0), seed));
    ASSERT_CLOSE(gx[0], 5 + 2.0 / 9, 1e-15, 0);
    ASSERT_CLOSE(gx[1], 5 - 1.0 / 9, 1e-15, 0);
    // d log_softmax(x)_0 / d x = e0 - softmax = (2/3, -1/3, -1/3).
    tg_graph_reset(g);
    cr_assert(tg_backward_seed(g, tg_log_softmax(g, x, 0), seed));
    ASSERT_CLOSE(gx[0], 5 + 2.0 / 9 + 2.0 / 3, 1e-15, 0);
    ASSERT_CLOSE(gx[2], 5 - 1.0 / 9 - 1.0 / 3, 1e-15, 0);
    tg_tensor_free(x);
    tg_graph_free(g);
}

Test(softmax, bad_axis_is_reported) {
    test_capture_errors();
    tg_graph *g = tg_graph_new();
    tg_tensor *x = tg_zeros(g, TG_F32, tg_shape3(2, 3, 4));
    cr_assert_null(tg_softmax(g, x, 3));
    cr_assert(strstr(test_error_message, "tg_softmax:") && strstr(test_error_message, "axis 3"), "%s",
              test_error_message);
    cr_assert_null(tg_log_softmax(g, x, -4));
    cr_assert(strstr(test_error_message, "tg_log_softmax:") && strstr(test_error_message, "axis -4") &&
                  strstr(test_error_message, "test_softmax_loss.c:"),
              "%s", test_error_message);
    cr_assert_null(tg_softmax(g, tg_zeros(g, TG_F64, tg_shape0()), 1));
    cr_assert(strstr(test_error_message, "scalar"), "%s", test_error_message);
    cr_assert_null(tg_softmax(g, tg_zeros(g, TG_I32, tg_shape1(2)), 0));
    cr_assert(strstr(test_error_message, "int32"), "%s", test_error_message);
    cr_assert_eq(test_error_count, 4);
    tg_graph_free(g);
}

// --- cross_entropy and nll_loss ---

static const tg_reduction REDUCTIONS[] = {TG_REDUCE_MEAN, TG_REDUCE_SUM, TG_REDUCE_NONE};

typedef struct {
    bool nll;
    tg_tensor *x, *targets;
    tg_reduction reduction;
    int ignore_index;
} class_case;

static tg_tensor *run_class_loss(tg_graph *g, void *ctx) {
    class_case *c = ctx;
    if (c->nll) return tg_nll_loss(g, c->x, c->targets, c->reduction, c->ignore_index);
    return tg_cross_entropy(g, c->x, c->targets, c->reduction, c->ignore_index);
}

// Class ids as an int32 heap tensor.
static tg_tensor *make_targets(int n, const int32_t *ids) {
    tg_tensor *t = tg_tensor_create(TG_I32, tg_shape1(n), false);
    tg_tensor_copy_from(t, ids);
    return t;
}

// Gradchecks REDUCTIONS[first ..] (MEAN is NaN when every row is ignored, so such a case
// starts at SUM).
static void check_class_loss(bool nll, int n, int classes, const int32_t *ids, int ignore_index, uint64_t seed,
                             int first) {
    for (int r = first; r < 3; r++) {
        class_case c = {nll, test_input(tg_shape2(n, classes), seed, -3, nll ? 0 : 3), make_targets(n, ids),
                        REDUCTIONS[r], ignore_index};
        ASSERT_GRADCHECK(run_class_loss, &c, &c.x, 1);
        tg_tensor_free(c.x);
        tg_tensor_free(c.targets);
    }
}

Test(cross_entropy, gradcheck_every_reduction_with_and_without_ignored_rows) {
    for (int nll = 0; nll < 2; nll++) {
        int32_t plain[] = {1, 0, 4, 2, 3};
        check_class_loss(nll, 5, 5, plain, -100, 1, 0);
        int32_t some_ignored[] = {1, -100, 4, -100, 0};
        check_class_loss(nll, 5, 5, some_ignored, -100, 2, 0);
        int32_t class_ignored[] = {2, 0, 2, 1}; // ignore_index may be a class id
        check_class_loss(nll, 4, 3, class_ignored, 2, 3, 0);
        int32_t one[] = {0};
        check_class_loss(nll, 1, 1, one, -100, 4, 0); // N = 1, C = 1
        int32_t all_ignored[] = {-1, -1};
        check_class_loss(nll, 2, 3, all_ignored, -1, 5, 1);
    }
}

// -log softmax(x[r])[t] straight from the definition.
static double direct_ce(const double *row, int classes, int t) {
    double z = 0;
    for (int c = 0; c < classes; c++) z += exp(row[c]);
    return log(z) - row[t];
}

Test(cross_entropy, values_match_the_formula_and_mean_skips_ignored_rows) {
    tg_graph *g = tg_graph_new();
    tg_rng rng;
    tg_rng_seed(&rng, 17);
    enum { N = 6, C = 4 };
    tg_tensor *x = tg_rand_uniform(g, TG_F64, tg_shape2(N, C), &rng, -4, 4);
    int32_t ids[N] = {3, -100, 0, 2, -100, 1};
    tg_tensor *t = tg_from_data(g, TG_I32, tg_shape1(N), ids);
    double want[N], total = 0;
    for (int r = 0; r < N; r++) {
        want[r] = ids[r] == -100 ? 0 : direct_ce((const double *)x->data + r * C, C, ids[r]);
        total += want[r];
    }
    tg_tensor *none = tg_cross_entropy(g, x, t, TG_REDUCE_NONE, -100);
    tg_tensor *sum = tg_cross_entropy(g, x, t, TG_REDUCE_SUM, -100);
    tg_tensor *mean = tg_cross_entropy(g, x, t, TG_REDUCE_MEAN, -100);
    cr_assert(tg_shape_equal(none->shape, tg_shape1(N)));
    cr_assert_eq(sum->shape.n, 0);
    cr_assert_eq(mean->shape.n, 0);
    for (int r = 0; r < N; r++) ASSERT_CLOSE(tg_tensor_get(none, r), want[r], 1e-14, 1e-14);
    ASSERT_CLOSE(tg_tensor_get(sum, 0), total, 1e-13, 1e-14);
    ASSERT_CLOSE(tg_tensor_get(mean, 0), total / 4, 1e-13, 1e-14); // 4 rows count, not 6
    tg_graph_free(g);
}

Test(cross_entropy, large_logits_stay_finite) {
    tg_graph *g = tg_graph_new();
    double x64[] = {1000, 0, -1000, 0};
    float x32[] = {1000, 0, -1000, 0};
    int32_t ids[] = {1, 1};
    for (int dt = 0; dt < 2; dt++) {
        tg_tensor *x = tg_from_data(g, dt ? TG_F64 : TG_F32, tg_shape2(2, 2), dt ? (void *)x64 : (void *)x32);
        tg_tensor *y = tg_cross_entropy(g, x, tg_from_data(g, TG_I32, tg_shape1(2), ids), TG_REDUCE_NONE, -100);
        ASSERT_CLOSE(tg_tensor_get(y, 0), 1000, 0, 1e-7);
        ASSERT_CLOSE(tg_tensor_get(y, 1), 0, 1e-30, 0); // log(1 + e^-1000)
    }
    tg_graph_free(g);
}

Test(cross_entropy, every_row_ignored_gives_nan_mean_and_zero_gradient) {
    tg_graph *g = tg_graph_new();
    tg_tensor *x = tg_tensor_create(TG_F64, tg_shape2(2, 3), true);
    int32_t ids[] = {-100, -100};
    tg_tensor *t = tg_from_data(g, TG_I32, tg_shape1(2), ids);
    tg_tensor *mean = tg_cross_entropy(g, x, t, TG_REDUCE_MEAN, -100);
    cr_assert(isnan(tg_tensor_get(mean, 0)));
    cr_assert_eq(tg_tensor_get(tg_cross_entropy(g, x, t, TG_REDUCE_SUM, -100), 0), 0);
    tg_tensor *none = tg_cross_entropy(g, x, t, TG_REDUCE_NONE, -100);
    cr_assert(tg_tensor_get(none, 0) == 0 && tg_tensor_get(none, 1) == 0);
    cr_assert(isnan(tg_tensor_get(tg_nll_loss(g, x, t, TG_REDUCE_MEAN, -100), 0)));
    cr_assert(tg_backward(g, mean));
    for (int i = 0; i < 6; i++) cr_assert_eq(((double *)x->grad)[i], 0);
    tg_tensor_free(x);
    tg_graph_free(g);
}

// Loss and gradient of x for cross_entropy and for nll_loss(log_softmax(x)) must agree.
Test(cross_entropy, equals_nll_of_log_softmax) {
    int32_t ids[] = {2, -100, 0, 4, 1, -100, 3};
    for (int r = 0; r < 3; r++) {
        tg_tensor *x = test_input(tg_shape2(7, 5), 23, -5, 5), *t = make_targets(7, ids);
        double seed[7];
        for (int i = 0; i < 7; i++) seed[i] = 0.5 + i;
        tg_graph *g = tg_graph_new();
        tg_tensor *fused = tg_cross_entropy(g, x, t, REDUCTIONS[r], -100);
        cr_assert(tg_backward_seed(g, fused, seed));
        double fused_grad[35];
        memcpy(fused_grad, x->grad, sizeof fused_grad);
        tg_tensor_zero_grad(x);
        tg_tensor *composite = tg_nll_loss(g, tg_log_softmax(g, x, 1), t, REDUCTIONS[r], -100);
        cr_assert(tg_backward_seed(g, composite, seed));
        cr_assert(tg_shape_equal(fused->shape, composite->shape));
        for (int64_t i = 0; i < fused->numel; i++)
            ASSERT_CLOSE(tg_tensor_get(fused, i), tg_tensor_get(composite, i), 1e-14, 1e-14);
        for (int i = 0; i < 35; i++) ASSERT_CLOSE(fused_grad[i], ((double *)x->grad)[i], 1e-15, 1e-13);
        tg_graph_free(g);
        tg_tensor_free(x);
        tg_tensor_free(t);
    }
}

Test(cross_entropy, float32_matches_float64) {
    tg_graph *g = tg_graph_new();
    tg_rng rng;
    tg_rng_seed(&rng, 31);
    tg_tensor *x64 = tg_rand_uniform(g, TG_F64, tg_shape2(5, 7), &rng, -6, 6);
    float x32[35];
    for (int i = 0; i < 35; i++) x32[i] = (float)tg_tensor_get(x64, i);
    tg_tensor *x = tg_from_data(g, TG_F32, tg_shape2(5, 7), x32);
    int32_t ids[] = {6, 0, 3, -100, 5};
    tg_tensor *t = tg_from_data(g, TG_I32, tg_shape1(5), ids);
    for (int r = 0; r < 3; r++) {
        tg_tensor *a = tg_cross_entropy(g, x, t, REDUCTIONS[r], -100), *b = tg_cross_entropy(g, x64, t, REDUCTIONS[r], -100);
        cr_assert_eq(a->dtype, TG_F32);
        for (int64_t i = 0; i < b->numel; i++) ASSERT_CLOSE(tg_tensor_get(a, i), tg_tensor_get(b, i), 1e-6, 1e-5);
    }
    tg_graph_free(g);
}

Test(nll_loss, values_pick_minus_the_target_entry) {
    tg_graph *g = tg_graph_new();
    double lp[] = {-0.1, -2.0, -3.0, -1.5, -0.7, -1.2, -0.4, -0.9, -2.2}; // [3, 3]
    int32_t ids[] = {1, 7, 2};                                          // 7 is ignored
    tg_tensor *x = tg_from_data(g, TG_F64, tg_shape2(3, 3), lp), *t = tg_from_data(g, TG_I32, tg_shape1(3), ids);
    tg_tensor *none = tg_nll_loss(g, x, t, TG_REDUCE_NONE, 7);
    cr_assert_eq(tg_tensor_get(none, 0), 2.0);
    cr_assert_eq(tg_tensor_get(none, 1), 0);
    cr_assert_eq(tg_tensor_get(none, 2), 2.2);
    ASSERT_CLOSE(tg_tensor_get(tg_nll_loss(g, x, t, TG_REDUCE_SUM, 7), 0), 4.2, 1e-15, 0);
    ASSERT_CLOSE(tg_tensor_get(tg_nll_loss(g, x, t, TG_REDUCE_MEAN, 7), 0), 2.1, 1e-15, 0);
    tg_graph_free(g);
}

Test(cross_entropy, backward_adds_to_existing_gradient) {
    tg_graph *g = tg_graph_new();
    tg_tensor *x = tg_tensor_create(TG_F64, tg_shape2(2, 2), true); // zeros: softmax = 1/2
    double *gx = x->grad;
    for (int i = 0; i < 4; i++) gx[i] = 1;
    int32_t ids[] = {0, 1};
    tg_tensor *t = tg_from_data(g, TG_I32, tg_shape1(2), ids);
    cr_assert(tg_backward(g, tg_cross_entropy(g, x, t, TG_REDUCE_MEAN, -100)));
    double want[] = {1 - 0.25, 1 + 0.25, 1 + 0.25, 1 - 0.25}; // (softmax - onehot) / 2
    for (int i = 0; i < 4; i++) ASSERT_CLOSE(gx[i], want[i], 1e-15, 0);
    tg_graph_reset(g);
    t = tg_from_data(g, TG_I32, tg_shape1(2), ids);
    cr_assert(tg_backward(g, tg_nll_loss(g, x, t, TG_REDUCE_SUM, -100)));
    ASSERT_CLOSE(gx[0], want[0] - 1, 1e-15, 0);
    ASSERT_CLOSE(gx[1], want[1], 1e-15, 0);
    ASSERT_CLOSE(gx[3], want[3] - 1, 1e-15, 0);
    tg_tensor_free(x);
    tg_graph_free(g);
}

Test(cross_entropy, out_of_range_targets_are_reported) {
    test_capture_errors();
    tg_graph *g = tg_graph_new();
    tg_tensor *x = tg_zeros(g, TG_F32, tg_shape2(3, 4));
    int32_t high[] = {0, 3, 4}, low[] = {-100, -3, 1};
    cr_assert_null(tg_cross_entropy(g, x, tg_from_data(g, TG_I32, tg_shape1(3), high), TG_REDUCE_MEAN, -100));
    cr_assert(strstr(test_error_message, "tg_cross_entropy:") && strstr(test_error_message, "target 4") &&
                  strstr(test_error_message, "row 2") && strstr(test_error_message, "C = 4") &&
                  strstr(test_error_message, "test_softmax_loss.c:"),
              "%s", test_error_message);
    cr_assert_null(tg_nll_loss(g, x, tg_from_data(g, TG_I32, tg_shape1(3), low), TG_REDUCE_SUM, -100));
    cr_assert(strstr(test_error_message, "tg_nll_loss:") && strstr(test_error_message, "target -3") &&
                  strstr(test_error_message, "row 1") && strstr(test_error_message, "C = 4"),
              "%s", test_error_message);
    // -100 is a bad target when ignore_index is something else.
    cr_assert_null(tg_cross_entropy(g, x, tg_from_data(g, TG_I32, tg_shape1(3), low), TG_REDUCE_NONE, -1));
    cr_assert(strstr(test_error_message, "target -100") && strstr(test_error_message, "row 0"), "%s",
              test_error_message);
    cr_assert_eq(test_error_count, 3);
    tg_graph_free(g);
}

Test(cross_entropy, wrong_target_dtype_and_shapes_are_reported) {
    test_capture_errors();
    tg_graph *g = tg_graph_new();
    tg_tensor *x = tg_zeros(g, TG_F32, tg_shape2(3, 4));
    cr_assert_null(tg_cross_entropy(g, x, tg_zeros(g, TG_F32, tg_shape1(3)), TG_REDUCE_MEAN, -100));
    cr_assert(strstr(test_error_message, "tg_cross_entropy:") && strstr(test_error_message, "targets") &&
                  strstr(test_error_message, "int32") && strstr(test_error_message, "float32"),
              "%s", test_error_message);
    cr_assert_null(tg_nll_loss(g, x, tg_zeros(g, TG_I32, tg_shape1(2)), TG_REDUCE_MEAN, -100));
    cr_assert(strstr(test_error_message, "tg_nll_loss:") && strstr(test_error_message, "[3, 4]") &&
                  strstr(test_error_message, "[2]"),
              "%s", test_error_message);
    cr_assert_null(tg_cross_entropy(g, tg_zeros(g, TG_F32, tg_shape1(4)), tg_zeros(g, TG_I32, tg_shape0()),
                                    TG_REDUCE_MEAN, -100));
    cr_assert(strstr(test_error_message, "[4]") && strstr(test_error_message, "[N, C]"), "%s", test_error_message);
    cr_assert_null(tg_cross_entropy(g, x, tg_zeros(g, TG_I32, tg_shape1(3)), (tg_reduction)7, -100));
    cr_assert(strstr(test_error_message, "reduction 7"), "%s", test_error_message);
    cr_assert_null(tg_cross_entropy(g, NULL, tg_zeros(g, TG_I32, tg_shape1(3)), TG_REDUCE_MEAN, -100));
    cr_assert(strstr(test_error_message, "NULL"), "%s", test_error_message);
    cr_assert_eq(test_error_count, 5);
    tg_graph_free(g);
}

// --- cross_entropy_smoothed: label smoothing, against PyTorch ---
// tests/data/ops/cross_entropy.safetensors, written by scripts/fixtures/make_op_fixtures.py.

// The fixture's tensor name as a new tensor of dtype (float64 data converted when dtype is
// float32), with a gradient when grad.
static tg_tensor *load_fixture_tensor(const tg_safetensors *f, const char *name, tg_dtype dtype, bool grad) {
    tg_safetensors_tensor info;
    cr_assert(tg_safetensors_find(f, name, &info), "the fixture has no %s", name);
    tg_shape shape = {info.ndim, {0}};
    for (int d = 0; d < info.ndim; d++) shape.d[d] = info.shape[d];
    tg_tensor *t = tg_tensor_create(dtype == TG_I32 ? TG_I32 : TG_F64, shape, grad && dtype == TG_F64);
    char err[512];
    cr_assert(tg_safetensors_read_into(f, name, t, err, sizeof err), "%s", err);
    if (dtype != TG_F32) return t;
    tg_tensor *t32 = tg_tensor_create(TG_F32, shape, grad);
    for (int64_t i = 0; i < t->numel; i++) tg_tensor_set(t32, i, tg_tensor_get(t, i));
    tg_tensor_free(t);
    return t32;
}

// The label-smoothing cases this file knows; the fixture must list exactly these.
static const char SMOOTHED_CASES[] =
    "ls_mean ls_sum ls_none ls_class_ignored ls_zero ls_near_one ls_edges ls_one_class ls_wide";

// One fixture case in one dtype: output and gradient of sum(w * out) against PyTorch's.
static void check_smoothed_case(const tg_safetensors *f, const char *name, tg_dtype dtype) {
    char key[128];
    snprintf(key, sizeof key, "case.%s", name);
    const char *spec = tg_safetensors_metadata(f, key);
    cr_assert_not_null(spec, "no %s", key);
    int reduction, ignore_index;
    double eps;
    cr_assert_eq(sscanf(spec, "cross_entropy_smoothed %d %lf %d", &reduction, &eps, &ignore_index), 3, "%s", spec);
    tg_tensor *in[5]; // x, targets, out, w, grad.x
    const char *parts[] = {"x", "targets", "out", "w", "grad.x"};
    for (int k = 0; k < 5; k++) {
        snprintf(key, sizeof key, "%s.%s", name, parts[k]);
        in[k] = load_fixture_tensor(f, key, k == 1 ? TG_I32 : k == 0 || k == 3 ? dtype : TG_F64, k == 0);
    }
    // float64 as the op tests against PyTorch (1e-10 + 1e-8|ref|); float32 to its precision
    double atol = dtype == TG_F64 ? 1e-10 : 1e-5, rtol = dtype == TG_F64 ? 1e-8 : 1e-5;
    tg_graph *g = tg_graph_new();
    tg_tensor *y = tg_cross_entropy_smoothed(g, in[0], in[1], (tg_reduction)reduction, ignore_index, eps);
    cr_assert_not_null(y, "%s: the op failed", name);
    cr_assert(tg_shape_equal(y->shape, in[2]->shape), "%s: shape differs from PyTorch's", name);
    for (int64_t i = 0; i < y->numel; i++)
        cr_assert(fabs(tg_tensor_get(y, i) - tg_tensor_get(in[2], i)) <= atol + rtol * fabs(tg_tensor_get(in[2], i)),
                  "%s (%s, %s): out[%lld] = %.17g, PyTorch gives %.17g", name, spec, tg_dtype_name(dtype),
                  (long long)i, tg_tensor_get(y, i), tg_tensor_get(in[2], i));
    cr_assert(tg_backward_seed(g, y, in[3]->data));
    for (int64_t i = 0; i < in[0]->numel; i++) {
        double got = dtype == TG_F64 ? ((double *)in[0]->grad)[i] : ((float *)in[0]->grad)[i];
        double want = tg_tensor_get(in[4], i);
        cr_assert(fabs(got - want) <= atol + rtol * fabs(want), "%s (%s, %s): grad[%lld] = %.17g, PyTorch gives %.17g",
                  name, spec, tg_dtype_name(dtype), (long long)i, got, want);
    }
    tg_graph_free(g);
    for (int k = 0; k < 5; k++) tg_tensor_free(in[k]);
}

Test(cross_entropy_smoothed, matches_pytorch_label_smoothing_in_float64_and_float32) {
    char err[512];
    tg_safetensors *f = tg_safetensors_open(test_fixture_path("cross_entropy.safetensors"), err, sizeof err);
    cr_assert_not_null(f, "%s", err);
    const char *listed = tg_safetensors_metadata(f, "cases");
    cr_assert(listed && strcmp(listed, SMOOTHED_CASES) == 0, "the fixture's cases (%s) differ from this test's",
              listed ? listed : "none");
    char names[sizeof SMOOTHED_CASES];
    memcpy(names, SMOOTHED_CASES, sizeof names);
    for (char *save = NULL, *name = strtok_r(names, " ", &save); name; name = strtok_r(NULL, " ", &save)) {
        check_smoothed_case(f, name, TG_F64);
        check_smoothed_case(f, name, TG_F32);
    }
    tg_safetensors_close(f);
}

typedef struct {
    tg_tensor *x, *targets;
    tg_reduction reduction;
    int ignore_index;
    double eps;
} smoothed_case;

static tg_tensor *run_smoothed(tg_graph *g, void *ctx) {
    smoothed_case *c = ctx;
    return tg_cross_entropy_smoothed(g, c->x, c->targets, c->reduction, c->ignore_index, c->eps);
}

Test(cross_entropy_smoothed, gradcheck_every_reduction_and_ignored_rows) {
    struct {
        int n, classes, ignore_index;
        int32_t ids[5];
        double eps;
        int first; // MEAN is NaN when every row is ignored: such a case starts at SUM
    } cases[] = {{5, 5, -100, {1, 0, 4, 2, 3}, 0.1, 0},   {5, 5, -100, {1, -100, 4, -100, 0}, 0.3, 0},
                 {4, 3, 2, {2, 0, 2, 1}, 0.6, 0},         {1, 1, -100, {0}, 0.2, 0},
                 {2, 3, -1, {-1, -1}, 0.1, 1},            {3, 11, -100, {10, 0, 5}, 0.9, 0}};
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++)
        for (int r = cases[k].first; r < 3; r++) {
            smoothed_case c = {test_input(tg_shape2(cases[k].n, cases[k].classes), 60 + k, -3, 3),
                               make_targets(cases[k].n, cases[k].ids), REDUCTIONS[r], cases[k].ignore_index,
                               cases[k].eps};
            ASSERT_GRADCHECK(run_smoothed, &c, &c.x, 1);
            tg_tensor_free(c.x);
            tg_tensor_free(c.targets);
        }
}

// eps = 0 is tg_cross_entropy, bit for bit, forward and backward, in both dtypes.
Test(cross_entropy_smoothed, zero_smoothing_gives_the_plain_ops_bits) {
    int32_t ids[] = {6, 0, -100, 3, 5, 1};
    for (int dt = 0; dt < 2; dt++)
        for (int r = 0; r < 3; r++) {
            tg_dtype dtype = dt ? TG_F64 : TG_F32;
            tg_tensor *x[2], *y[2];
            tg_graph *g = tg_graph_new();
            tg_tensor *t = tg_from_data(g, TG_I32, tg_shape1(6), ids);
            for (int k = 0; k < 2; k++) {
                tg_rng rng;
                tg_rng_seed(&rng, 77);
                x[k] = tg_tensor_create(dtype, tg_shape2(6, 13), true);
                tg_tensor_fill_uniform(x[k], &rng, -5, 5);
                y[k] = k ? tg_cross_entropy_smoothed(g, x[k], t, REDUCTIONS[r], -100, 0)
                         : tg_cross_entropy(g, x[k], t, REDUCTIONS[r], -100);
                double seed[6] = {0.5, -1, 2, 0.25, 3, -0.75};
                float seed32[6] = {0.5f, -1, 2, 0.25f, 3, -0.75f};
                cr_assert(tg_backward_seed(g, y[k], dt ? (void *)seed : (void *)seed32));
            }
            size_t size = tg_dtype_size(dtype);
            cr_assert(memcmp(y[0]->data, y[1]->data, (size_t)y[0]->numel * size) == 0, "values differ");
            cr_assert(memcmp(x[0]->grad, x[1]->grad, (size_t)x[0]->numel * size) == 0, "gradients differ");
            tg_tensor_free(x[0]), tg_tensor_free(x[1]);
            tg_graph_free(g);
        }
}

Test(cross_entropy_smoothed, every_row_ignored_gives_nan_mean_and_zero_gradient) {
    tg_graph *g = tg_graph_new();
    tg_tensor *x = tg_tensor_create(TG_F64, tg_shape2(2, 3), true);
    int32_t ids[] = {-100, -100};
    tg_tensor *mean = tg_cross_entropy_smoothed(g, x, tg_from_data(g, TG_I32, tg_shape1(2), ids), TG_REDUCE_MEAN,
                                                -100, 0.1);
    cr_assert(isnan(tg_tensor_get(mean, 0)));
    cr_assert(tg_backward(g, mean));
    for (int i = 0; i < 6; i++) cr_assert_eq(((double *)x->grad)[i], 0); // as PyTorch
    tg_tensor_free(x);
    tg_graph_free(g);
}

Test(cross_entropy_smoothed, smoothing_outside_zero_to_one_is_reported) {
    test_capture_errors();
    tg_graph *g = tg_graph_new();
    tg_tensor *x = tg_zeros(g, TG_F32, tg_shape2(3, 4));
    int32_t ids[] = {0, 3, 1};
    tg_tensor *t = tg_from_data(g, TG_I32, tg_shape1(3), ids);
    double bad[] = {-0.1, 1, 1.5, NAN, -INFINITY};
    for (int k = 0; k < 5; k++) {
        cr_assert_null(tg_cross_entropy_smoothed(g, x, t, TG_REDUCE_MEAN, -100, bad[k]));
        cr_assert(strstr(test_error_message, "tg_cross_entropy_smoothed:") &&
                      strstr(test_error_message, "label_smoothing") && strstr(test_error_message, "[0, 1)") &&
                      strstr(test_error_message, "test_softmax_loss.c:"),
                  "%s", test_error_message);
    }
    // The plain op's checks name the function called too.
    cr_assert_null(tg_cross_entropy_smoothed(g, x, tg_zeros(g, TG_I32, tg_shape1(2)), TG_REDUCE_MEAN, -100, 0.1));
    cr_assert(strstr(test_error_message, "tg_cross_entropy_smoothed:") && strstr(test_error_message, "[2]"), "%s",
              test_error_message);
    cr_assert_eq(test_error_count, 6);
    tg_graph_free(g);
}

// --- mse_loss ---

typedef struct {
    tg_tensor *x, *t;
    tg_reduction reduction;
} mse_case;

static tg_tensor *run_mse(tg_graph *g, void *ctx) {
    mse_case *c = ctx;
    return tg_mse_loss(g, c->x, c->t, c->reduction);
}

Test(mse_loss, gradcheck_every_reduction_both_inputs) {
    tg_shape shapes[] = {tg_shape0(), tg_shape1(1), tg_shape1(4), tg_shape2(2, 3), tg_shape3(2, 1, 3)};
    for (int s = 0; s < 5; s++)
        for (int r = 0; r < 3; r++) {
            mse_case c = {test_input(shapes[s], 40 + s, -2, 2), test_input(shapes[s], 50 + s, -2, 2), REDUCTIONS[r]};
            tg_tensor *wrt[] = {c.x, c.t};
            ASSERT_GRADCHECK(run_mse, &c, wrt, 2);
            tg_tensor_free(c.x);
            tg_tensor_free(c.t);
        }
}

Test(mse_loss, values_match_the_formula) {
    tg_graph *g = tg_graph_new();
    double a[] = {1, -2, 0.5, 4, 0, 3}, b[] = {0, 1, 0.5, 2, -1, 3}; // [2, 3]
    tg_tensor *x = tg_from_data(g, TG_F64, tg_shape2(2, 3), a), *t = tg_from_data(g, TG_F64, tg_shape2(2, 3), b);
    tg_tensor *none = tg_mse_loss(g, x, t, TG_REDUCE_NONE);
    cr_assert(tg_shape_equal(none->shape, tg_shape2(2, 3)));
    double total = 0;
    for (int i = 0; i < 6; i++) {
        double d = a[i] - b[i];
        cr_assert_eq(tg_tensor_get(none, i), d * d);
        total += d * d;
    }
    cr_assert_eq(total, 15);
    cr_assert_eq(tg_tensor_get(tg_mse_loss(g, x, t, TG_REDUCE_SUM), 0), 15);
    cr_assert_eq(tg_tensor_get(tg_mse_loss(g, x, t, TG_REDUCE_MEAN), 0), 2.5);
    tg_graph_free(g);
}

Test(mse_loss, backward_into_input_and_target) {
    tg_graph *g = tg_graph_new();
    tg_tensor *x = tg_tensor_create(TG_F32, tg_shape1(2), true), *t = tg_tensor_create(TG_F32, tg_shape1(2), true);
    float xs[] = {3, 1}, ts[] = {1, 2};
    tg_tensor_copy_from(x, xs);
    tg_tensor_copy_from(t, ts);
    ((float *)x->grad)[0] = 1;
    cr_assert(tg_backward(g, tg_mse_loss(g, x, t, TG_REDUCE_MEAN))); // d/dx = (x - t), d/dt = -(x - t)
    float *gx = x->grad, *gt = t->grad;
    cr_assert(gx[0] == 3 && gx[1] == -1 && gt[0] == -2 && gt[1] == 1, "gx %g %g gt %g %g", gx[0], gx[1], gt[0], gt[1]);
    tg_tensor_free(x);
    tg_tensor_free(t);
    tg_graph_free(g);
}

Test(mse_loss, shape_and_dtype_mismatch_are_reported) {
    test_capture_errors();
    tg_graph *g = tg_graph_new();
    cr_assert_null(tg_mse_loss(g, tg_zeros(g, TG_F32, tg_shape2(2, 3)), tg_zeros(g, TG_F32, tg_shape2(3, 2)),
                               TG_REDUCE_MEAN));
    cr_assert(strstr(test_error_message, "tg_mse_loss:") && strstr(test_error_message, "[2, 3]") &&
                  strstr(test_error_message, "[3, 2]"),
              "%s", test_error_message);
    cr_assert_null(tg_mse_loss(g, tg_zeros(g, TG_F32, tg_shape1(3)), tg_zeros(g, TG_F64, tg_shape1(3)), TG_REDUCE_SUM));
    cr_assert(strstr(test_error_message, "float32") && strstr(test_error_message, "float64"), "%s",
              test_error_message);
    cr_assert_null(tg_mse_loss(g, tg_zeros(g, TG_F32, tg_shape1(3)), tg_zeros(g, TG_F32, tg_shape1(3)), (tg_reduction)-1));
    cr_assert(strstr(test_error_message, "reduction -1"), "%s", test_error_message);
    cr_assert_eq(test_error_count, 3);
    tg_graph_free(g);
}
