// Gradient checks and values for add, sub, mul, div (with broadcasting), neg and scalars.
#include <math.h>
#include <signal.h>

#include "tg_test.h"

typedef tg_tensor *(*binary_fn)(tg_graph *, tg_tensor *, tg_tensor *);
typedef struct {
    binary_fn op;
    tg_tensor *a, *b;
} binary_case;

static tg_tensor *run_binary(tg_graph *g, void *ctx) {
    binary_case *c = ctx;
    return c->op(g, c->a, c->b);
}

// Gradchecks op on shapes sa and sb; b's values are kept away from 0 for div.
static void check_binary(binary_fn op, tg_shape sa, tg_shape sb) {
    binary_case c = {op, test_input(sa, 1, -1, 1), test_input(sb, 2, 0.5, 1.5)};
    tg_tensor *wrt[] = {c.a, c.b};
    ASSERT_GRADCHECK(run_binary, &c, wrt, 2);
    tg_tensor_free(c.a);
    tg_tensor_free(c.b);
}

static const tg_shape *shape_pairs(int *n) {
    static tg_shape pairs[16];
    int k = 0;
    pairs[k++] = tg_shape2(3, 4), pairs[k++] = tg_shape2(3, 4); // same shape
    pairs[k++] = tg_shape2(3, 4), pairs[k++] = tg_shape1(4);    // row vector
    pairs[k++] = tg_shape2(3, 1), pairs[k++] = tg_shape2(1, 4); // outer broadcast
    pairs[k++] = tg_shape3(2, 3, 4), pairs[k++] = tg_shape0();  // scalar
    pairs[k++] = tg_shape4(2, 1, 3, 1), pairs[k++] = tg_shape3(2, 1, 5); // size-1 dims on both sides
    pairs[k++] = tg_shape1(1), pairs[k++] = tg_shape1(1);                // single element
    *n = k / 2;
    return pairs;
}

Test(arith, gradcheck_all_ops_and_broadcasts) {
    binary_fn ops[] = {(tg_add), (tg_sub), (tg_mul), (tg_div)};
    int n;
    const tg_shape *pairs = shape_pairs(&n);
    for (int o = 0; o < 4; o++)
        for (int i = 0; i < n; i++) {
            check_binary(ops[o], pairs[2 * i], pairs[2 * i + 1]);
            check_binary(ops[o], pairs[2 * i + 1], pairs[2 * i]); // broadcast on the other side
        }
}

Test(arith, broadcast_values) {
    tg_graph *g = tg_graph_new();
    double a[] = {1, 2, 3, 4, 5, 6}; // [2, 3]
    double b[] = {10, 20};            // [2, 1]
    tg_tensor *y = tg_sub(g, tg_from_data(g, TG_F64, tg_shape2(2, 3), a), tg_from_data(g, TG_F64, tg_shape2(2, 1), b));
    cr_assert(tg_shape_equal(y->shape, tg_shape2(2, 3)));
    double want[] = {-9, -8, -7, -16, -15, -14};
    for (int i = 0; i < 6; i++) cr_assert_eq(((double *)y->data)[i], want[i]);
    tg_graph_free(g);
}

Test(arith, float32_matches_float64) {
    tg_graph *g = tg_graph_new();
    float a32[] = {0.5f, -1.25f, 2.0f}, b32[] = {4.0f};
    double a64[] = {0.5, -1.25, 2.0}, b64[] = {4.0};
    tg_tensor *y32 = tg_div(g, tg_from_data(g, TG_F32, tg_shape1(3), a32), tg_from_data(g, TG_F32, tg_shape1(1), b32));
    tg_tensor *y64 = tg_div(g, tg_from_data(g, TG_F64, tg_shape1(3), a64), tg_from_data(g, TG_F64, tg_shape1(1), b64));
    cr_assert_eq(y32->dtype, TG_F32);
    for (int i = 0; i < 3; i++) ASSERT_CLOSE(tg_tensor_get(y32, i), tg_tensor_get(y64, i), 1e-7, 1e-6);
    tg_graph_free(g);
}

typedef struct {
    int which;
    tg_tensor *x;
} unary_case;

static tg_tensor *run_scalar_op(tg_graph *g, void *ctx) {
    unary_case *c = ctx;
    switch (c->which) {
    case 0: return tg_neg(g, c->x);
    case 1: return tg_add_scalar(g, c->x, 2.5);
    default: return tg_mul_scalar(g, c->x, -3.0);
    }
}

Test(arith, gradcheck_neg_and_scalars) {
    for (int which = 0; which < 3; which++) {
        unary_case c = {which, test_input(tg_shape3(2, 3, 2), 3, -2, 2)};
        ASSERT_GRADCHECK(run_scalar_op, &c, &c.x, 1);
        tg_tensor_free(c.x);
    }
}

Test(arith, shape_mismatch_names_op_shapes_and_call_site) {
    test_capture_errors();
    tg_graph *g = tg_graph_new();
    tg_tensor *y = tg_add(g, tg_zeros(g, TG_F32, tg_shape2(2, 3)), tg_zeros(g, TG_F32, tg_shape2(4, 3)));
    cr_assert_null(y);
    cr_assert(strstr(test_error_message, "tg_add") != NULL, "%s", test_error_message);
    cr_assert(strstr(test_error_message, "[2, 3]") && strstr(test_error_message, "[4, 3]"), "%s", test_error_message);
    cr_assert(strstr(test_error_message, "test_arith.c:"), "%s", test_error_message);
    tg_graph_free(g);
}

Test(arith, dtype_mismatch_is_reported) {
    test_capture_errors();
    tg_graph *g = tg_graph_new();
    tg_tensor *y = tg_mul(g, tg_zeros(g, TG_F32, tg_shape1(3)), tg_zeros(g, TG_F64, tg_shape1(3)));
    cr_assert_null(y);
    cr_assert(strstr(test_error_message, "float32") && strstr(test_error_message, "float64"), "%s",
              test_error_message);
    // A NULL input (from an earlier failure) is reported, not dereferenced.
    cr_assert_null(tg_add(g, y, y));
    cr_assert(strstr(test_error_message, "NULL"), "%s", test_error_message);
    tg_graph_free(g);
}

Test(arith, default_handler_aborts, .signal = SIGABRT) {
    tg_graph *g = tg_graph_new();
    tg_add(g, tg_zeros(g, TG_F32, tg_shape1(2)), tg_zeros(g, TG_F32, tg_shape1(3)));
}
