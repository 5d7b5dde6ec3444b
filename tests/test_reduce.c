// Gradient checks, values and errors for sum, mean, sum_axis and mean_axis.
#include <math.h>

#include "tg_test.h"

enum { SUM, MEAN, SUM_AXIS, MEAN_AXIS };

typedef struct {
    int which;
    tg_tensor *x;
    int axis;
    bool keepdim;
} reduce_case;

static tg_tensor *run_reduce(tg_graph *g, void *ctx) {
    reduce_case *c = ctx;
    switch (c->which) {
    case SUM: return tg_sum(g, c->x);
    case MEAN: return tg_mean(g, c->x);
    case SUM_AXIS: return tg_sum_axis(g, c->x, c->axis, c->keepdim);
    default: return tg_mean_axis(g, c->x, c->axis, c->keepdim);
    }
}

static void check_reduce(int which, tg_shape shape, int axis, bool keepdim, uint64_t seed) {
    reduce_case c = {which, test_input(shape, seed, -2, 2), axis, keepdim};
    ASSERT_GRADCHECK(run_reduce, &c, &c.x, 1);
    tg_tensor_free(c.x);
}

// --- Gradient checks ---

Test(reduce, gradcheck_sum_and_mean_of_everything) {
    tg_shape shapes[] = {tg_shape0(), tg_shape1(1), tg_shape1(5), tg_shape2(2, 3), tg_shape3(2, 1, 3),
                         tg_shape4(2, 3, 1, 2)};
    for (int s = 0; s < 6; s++) {
        check_reduce(SUM, shapes[s], 0, false, 10 + s);
        check_reduce(MEAN, shapes[s], 0, false, 20 + s);
    }
}

Test(reduce, gradcheck_every_axis_negative_too_keepdim_both_ways) {
    tg_shape shapes[] = {tg_shape1(1), tg_shape1(4), tg_shape2(2, 3), tg_shape3(3, 1, 2), tg_shape4(2, 3, 1, 2)};
    for (int s = 0; s < 5; s++)
        for (int axis = -shapes[s].n; axis < shapes[s].n; axis++)
            for (int keep = 0; keep < 2; keep++) {
                check_reduce(SUM_AXIS, shapes[s], axis, keep, 100 + s);
                check_reduce(MEAN_AXIS, shapes[s], axis, keep, 200 + s);
            }
}

Test(reduce, gradcheck_scalar_takes_axis_0_and_minus_1) {
    for (int axis = -1; axis <= 0; axis++)
        for (int keep = 0; keep < 2; keep++) {
            check_reduce(SUM_AXIS, tg_shape0(), axis, keep, 7);
            check_reduce(MEAN_AXIS, tg_shape0(), axis, keep, 8);
        }
}

// --- Values against direct sums over multi-indices ---

// Multi-index of flat element k of shape (row-major), into idx[0 .. shape.n-1].
static void unravel(tg_shape shape, int64_t k, int64_t *idx) {
    for (int d = shape.n - 1; d >= 0; d--) {
        idx[d] = k % shape.d[d];
        k /= shape.d[d];
    }
}

// Flat position in the reduced output of the element of x at idx: idx without the axis,
// read row-major over the remaining sizes.
static int64_t reduced_pos(tg_shape shape, const int64_t *idx, int axis) {
    int64_t pos = 0;
    for (int d = 0; d < shape.n; d++)
        if (d != axis) pos = pos * shape.d[d] + idx[d];
    return pos;
}

Test(reduce, axis_values_and_shapes_match_direct_sums) {
    tg_graph *g = tg_graph_new();
    tg_rng rng;
    tg_rng_seed(&rng, 42);
    tg_shape shape = tg_shape4(2, 3, 4, 5);
    tg_tensor *x = tg_rand_uniform(g, TG_F64, shape, &rng, -3, 3);
    const double *xv = x->data;
    for (int axis = -4; axis < 4; axis++) {
        int ax = axis < 0 ? axis + 4 : axis;
        double want[120] = {0};
        int64_t idx[4];
        for (int64_t k = 0; k < 120; k++) {
            unravel(shape, k, idx);
            want[reduced_pos(shape, idx, ax)] += xv[k];
        }
        for (int keep = 0; keep < 2; keep++) {
            tg_tensor *s = tg_sum_axis(g, x, axis, keep), *m = tg_mean_axis(g, x, axis, keep);
            tg_shape expect = keep ? shape : tg_shape3(0, 0, 0);
            if (keep) {
                expect.d[ax] = 1;
            } else {
                for (int d = 0, j = 0; d < 4; d++)
                    if (d != ax) expect.d[j++] = shape.d[d];
            }
            char got[64], exp_s[64];
            cr_assert(tg_shape_equal(s->shape, expect), "axis %d keepdim %d: sum shape %s, expected %s", axis, keep,
                      tg_shape_str(s->shape, got, sizeof got), tg_shape_str(expect, exp_s, sizeof exp_s));
            cr_assert(tg_shape_equal(m->shape, expect), "axis %d keepdim %d: mean shape %s", axis, keep,
                      tg_shape_str(m->shape, got, sizeof got));
            for (int64_t k = 0; k < s->numel; k++) {
                ASSERT_CLOSE(tg_tensor_get(s, k), want[k], 1e-13, 1e-13);
                ASSERT_CLOSE(tg_tensor_get(m, k), want[k] / (double)shape.d[ax], 1e-13, 1e-13);
            }
        }
    }
    tg_graph_free(g);
}

Test(reduce, small_literal_values) {
    tg_graph *g = tg_graph_new();
    double xs[] = {1, 2, 3, 4, 5, 6}; // [[1, 2, 3], [4, 5, 6]]
    tg_tensor *x = tg_from_data(g, TG_F64, tg_shape2(2, 3), xs);
    tg_tensor *s = tg_sum(g, x), *m = tg_mean(g, x);
    cr_assert_eq(s->shape.n, 0);
    cr_assert_eq(m->shape.n, 0);
    cr_assert_eq(tg_tensor_get(s, 0), 21);
    cr_assert_eq(tg_tensor_get(m, 0), 3.5);
    tg_tensor *c = tg_sum_axis(g, x, 0, false), *r = tg_mean_axis(g, x, -1, true);
    cr_assert(tg_shape_equal(c->shape, tg_shape1(3)));
    cr_assert(tg_shape_equal(r->shape, tg_shape2(2, 1)));
    double cols[] = {5, 7, 9}, rows[] = {2, 5};
    for (int i = 0; i < 3; i++) cr_assert_eq(tg_tensor_get(c, i), cols[i]);
    for (int i = 0; i < 2; i++) cr_assert_eq(tg_tensor_get(r, i), rows[i]);
    // A scalar stays a scalar, keepdim or not.
    tg_tensor *sc = tg_full(g, TG_F64, tg_shape0(), 2.5);
    tg_tensor *a = tg_sum_axis(g, sc, -1, true), *b = tg_mean_axis(g, sc, 0, false);
    cr_assert_eq(a->shape.n, 0);
    cr_assert_eq(b->shape.n, 0);
    cr_assert_eq(tg_tensor_get(a, 0), 2.5);
    cr_assert_eq(tg_tensor_get(b, 0), 2.5);
    tg_graph_free(g);
}

Test(reduce, float32_sum_keeps_its_digits) {
    // 10^5 additions of 0.1f in a float running sum drift by 1.4e-4 relative.
    enum { N = 100000 };
    tg_graph *g = tg_graph_new();
    tg_tensor *x = tg_full(g, TG_F32, tg_shape2(2, N / 2), 0.1);
    double want = N * (double)0.1f;
    tg_tensor *s = tg_sum(g, x), *m = tg_mean(g, x), *r = tg_sum_axis(g, x, 1, false);
    cr_assert_eq(s->dtype, TG_F32);
    ASSERT_CLOSE(tg_tensor_get(s, 0), want, 0, 1e-7);
    ASSERT_CLOSE(tg_tensor_get(m, 0), (double)0.1f, 0, 1e-7);
    ASSERT_CLOSE(tg_tensor_get(r, 1), want / 2, 0, 1e-7);
    tg_graph_free(g);
}

Test(reduce, empty_tensors_sum_to_zero_and_mean_to_nan) {
    tg_graph *g = tg_graph_new();
    tg_tensor *x = tg_zeros(g, TG_F64, tg_shape2(0, 3));
    cr_assert_eq(tg_tensor_get(tg_sum(g, x), 0), 0);
    cr_assert(isnan(tg_tensor_get(tg_mean(g, x), 0)));
    tg_tensor *s = tg_sum_axis(g, x, 0, false), *m = tg_mean_axis(g, x, 0, true), *r = tg_sum_axis(g, x, 1, false);
    cr_assert(tg_shape_equal(s->shape, tg_shape1(3)));
    cr_assert(tg_shape_equal(m->shape, tg_shape2(1, 3)));
    cr_assert(tg_shape_equal(r->shape, tg_shape1(0)));
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(tg_tensor_get(s, i), 0);
        cr_assert(isnan(tg_tensor_get(m, i)));
    }
    tg_graph_free(g);
}

// --- Backward accumulates ---

Test(reduce, backward_adds_to_existing_gradient) {
    tg_graph *g = tg_graph_new();
    tg_tensor *x = tg_tensor_create(TG_F64, tg_shape3(2, 3, 2), true);
    double *gx = x->grad;
    for (int i = 0; i < 12; i++) gx[i] = 1;
    double seed[] = {10, 20, 30, 40}; // [2, 2]: one per (i0, i2)
    cr_assert(tg_backward_seed(g, tg_mean_axis(g, x, 1, false), seed));
    for (int i0 = 0; i0 < 2; i0++)
        for (int i1 = 0; i1 < 3; i1++)
            for (int i2 = 0; i2 < 2; i2++)
                ASSERT_CLOSE(gx[(i0 * 3 + i1) * 2 + i2], 1 + seed[i0 * 2 + i2] / 3, 0, 1e-15);
    tg_graph_reset(g);
    cr_assert(tg_backward(g, tg_sum(g, x)));
    for (int i = 0; i < 12; i++) ASSERT_CLOSE(gx[i], 2 + seed[(i / 6) * 2 + i % 2] / 3, 0, 1e-15);
    tg_tensor_free(x);
    tg_graph_free(g);
}

Test(reduce, float32_backward) {
    tg_graph *g = tg_graph_new();
    tg_tensor *x = tg_tensor_create(TG_F32, tg_shape2(4, 2), true);
    cr_assert(tg_backward(g, tg_mean(g, x)));
    for (int i = 0; i < 8; i++) cr_assert_eq(((float *)x->grad)[i], 0.125f);
    tg_tensor_free(x);
    tg_graph_free(g);
}

// --- Errors ---

Test(reduce, bad_axis_is_reported) {
    test_capture_errors();
    tg_graph *g = tg_graph_new();
    tg_tensor *x = tg_zeros(g, TG_F32, tg_shape2(2, 3));
    cr_assert_null(tg_sum_axis(g, x, 2, false));
    cr_assert(strstr(test_error_message, "tg_sum_axis") && strstr(test_error_message, "axis 2") &&
                  strstr(test_error_message, "test_reduce.c:"),
              "%s", test_error_message);
    cr_assert_null(tg_mean_axis(g, x, -3, true));
    cr_assert(strstr(test_error_message, "tg_mean_axis") && strstr(test_error_message, "axis -3"), "%s",
              test_error_message);
    cr_assert_null(tg_sum_axis(g, tg_zeros(g, TG_F32, tg_shape0()), 1, false));
    cr_assert(strstr(test_error_message, "tg_sum_axis") && strstr(test_error_message, "axis 1") &&
                  strstr(test_error_message, "scalar"),
              "%s", test_error_message);
    cr_assert_eq(test_error_count, 3);
    tg_graph_free(g);
}

Test(reduce, int32_and_null_inputs_are_reported) {
    test_capture_errors();
    tg_graph *g = tg_graph_new();
    cr_assert_null(tg_sum(g, tg_zeros(g, TG_I32, tg_shape1(3))));
    cr_assert(strstr(test_error_message, "tg_sum:") && strstr(test_error_message, "int32"), "%s", test_error_message);
    cr_assert_null(tg_mean(g, NULL));
    cr_assert(strstr(test_error_message, "tg_mean:") && strstr(test_error_message, "NULL"), "%s", test_error_message);
    cr_assert_eq(test_error_count, 2);
    tg_graph_free(g);
}
