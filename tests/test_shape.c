// Gradient checks, values and errors for reshape, transpose, concat, slice, stack, chunk.
#include <math.h>

#include "tg_test.h"

typedef enum { RESHAPE, TRANSPOSE, CONCAT, SLICE, STACK, CHUNK_REVERSED } shape_kind;

typedef struct {
    shape_kind kind;
    int n;           // inputs used (concat, stack) or pieces (chunk)
    tg_tensor *x[3]; // the inputs being differentiated
    int axis, axis1;
    int64_t start, length;
    tg_shape shape; // reshape's target
} shape_case;

static tg_tensor *run_shape(tg_graph *g, void *ctx) {
    shape_case *c = ctx;
    switch (c->kind) {
    case RESHAPE: // tanh after the reshape: the shared-data output feeds a real op
        return tg_tanh(g, tg_reshape(g, c->x[0], c->shape));
    case TRANSPOSE: return tg_transpose(g, c->x[0], c->axis, c->axis1);
    case CONCAT: return tg_concat(g, c->n, c->x, c->axis);
    case SLICE: return tg_slice(g, c->x[0], c->axis, c->start, c->length);
    case STACK: return tg_stack(g, c->n, c->x, c->axis);
    case CHUNK_REVERSED: { // pieces joined back in reverse order, so each piece must land right
        tg_tensor *pieces[4], *rev[4];
        if (!tg_chunk(g, c->x[0], c->n, c->axis, pieces)) return NULL;
        for (int k = 0; k < c->n; k++) rev[k] = pieces[c->n - 1 - k];
        return tg_concat(g, c->n, rev, c->axis);
    }
    }
    return NULL;
}

static void gradcheck_case(shape_case *c, int n_wrt) {
    ASSERT_GRADCHECK(run_shape, c, c->x, n_wrt);
    for (int k = 0; k < n_wrt; k++) tg_tensor_free(c->x[k]);
}

static double *f64(tg_tensor *t) { return t->data; }

// --- reshape ---

Test(reshape, gradcheck_with_inferred_and_size_one_dims) {
    struct {
        tg_shape from, to;
    } cases[] = {
        {tg_shape3(2, 3, 4), tg_shape2(4, 6)},  {tg_shape3(2, 3, 4), tg_shape2(-1, 4)},
        {tg_shape2(6, 4), tg_shape4(1, 6, 1, -1)}, {tg_shape1(1), tg_shape0()},
        {tg_shape0(), tg_shape3(1, 1, 1)},        {tg_shape4(2, 1, 3, 1), tg_shape1(-1)},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        shape_case c = {.kind = RESHAPE, .shape = cases[i].to};
        c.x[0] = test_input(cases[i].from, 10 + i, -1, 1);
        gradcheck_case(&c, 1);
    }
}

Test(reshape, shares_data_and_infers_size) {
    tg_graph *g = tg_graph_new();
    tg_tensor *x = tg_zeros(g, TG_F32, tg_shape3(2, 3, 4));
    tg_tensor *y = tg_reshape(g, x, tg_shape2(-1, 8));
    cr_assert(tg_shape_equal(y->shape, tg_shape2(3, 8)));
    cr_assert_eq(y->numel, 24);
    cr_assert_eq(y->data, x->data, "reshape must share its input's data");
    cr_assert_eq(y->dtype, TG_F32);
    int32_t ids[] = {1, 2, 3, 4, 5, 6};
    tg_tensor *yi = tg_reshape(g, tg_from_data(g, TG_I32, tg_shape1(6), ids), tg_shape2(3, 2));
    cr_assert(tg_shape_equal(yi->shape, tg_shape2(3, 2)));
    cr_assert_eq(((int32_t *)yi->data)[5], 6);
    tg_graph_free(g);
}

Test(reshape, backward_accumulates_into_input_grad) {
    tg_graph *g = tg_graph_new();
    tg_tensor *x = tg_tensor_create(TG_F64, tg_shape2(2, 3), true);
    for (int i = 0; i < 6; i++) f64(x)[i] = i, ((double *)x->grad)[i] = 100; // grad already holds 100
    tg_tensor *y = tg_reshape(g, x, tg_shape1(6));
    cr_assert(y->requires_grad && y->grad == NULL);
    double seed[6] = {1, 2, 3, 4, 5, 6};
    cr_assert(tg_backward_seed(g, y, seed));
    cr_assert_neq(y->grad, x->grad, "the output has its own gradient buffer");
    for (int i = 0; i < 6; i++) cr_assert_eq(((double *)x->grad)[i], 100 + seed[i]);
    tg_tensor_free(x);
    tg_graph_free(g);
}

Test(reshape, wrong_numel_and_two_inferred_sizes_are_reported) {
    test_capture_errors();
    tg_graph *g = tg_graph_new();
    tg_tensor *x = tg_zeros(g, TG_F32, tg_shape2(2, 3));
    cr_assert_null(tg_reshape(g, x, tg_shape2(4, 2)));
    cr_assert(strstr(test_error_message, "tg_reshape") && strstr(test_error_message, "[2, 3]") &&
                  strstr(test_error_message, "[4, 2]") && strstr(test_error_message, "test_shape.c:"),
              "%s", test_error_message);
    cr_assert_null(tg_reshape(g, x, tg_shape2(-1, -1)));
    cr_assert(strstr(test_error_message, "only one size may be -1"), "%s", test_error_message);
    cr_assert_null(tg_reshape(g, x, tg_shape2(4, -1)));
    cr_assert(strstr(test_error_message, "[4, -1]"), "%s", test_error_message);
    cr_assert_null(tg_reshape(g, NULL, tg_shape1(1)));
    cr_assert(strstr(test_error_message, "NULL"), "%s", test_error_message);
    cr_assert_eq(test_error_count, 4);
    tg_graph_free(g);
}

// --- transpose ---

Test(transpose, gradcheck_every_axis_pair_including_negative) {
    tg_shape s = tg_shape4(2, 3, 1, 4);
    for (int a0 = -4; a0 < 4; a0++)
        for (int a1 = -4; a1 < 4; a1++) {
            shape_case c = {.kind = TRANSPOSE, .axis = a0, .axis1 = a1};
            c.x[0] = test_input(s, 20, -1, 1);
            gradcheck_case(&c, 1);
        }
    shape_case c = {.kind = TRANSPOSE, .axis = 0, .axis1 = -1};
    c.x[0] = test_input(tg_shape2(3, 5), 21, -1, 1);
    gradcheck_case(&c, 1);
}

// x[i][j][k] = 100 i + 10 j + k of shape [2, 3, 4], as dtype.
static tg_tensor *iota3(tg_graph *g, tg_dtype dtype) {
    tg_tensor *x = tg_zeros(g, dtype, tg_shape3(2, 3, 4));
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++) tg_tensor_set(x, (i * 3 + j) * 4 + k, 100 * i + 10 * j + k);
    return x;
}

Test(transpose, values_swap_indices_for_every_dtype) {
    tg_graph *g = tg_graph_new();
    tg_dtype dtypes[] = {TG_F32, TG_F64, TG_I32};
    for (int t = 0; t < 3; t++) {
        tg_tensor *y = tg_transpose(g, iota3(g, dtypes[t]), 2, -3); // [4, 3, 2]
        cr_assert(tg_shape_equal(y->shape, tg_shape3(4, 3, 2)));
        cr_assert_eq(y->dtype, dtypes[t]);
        for (int k = 0; k < 4; k++)
            for (int j = 0; j < 3; j++)
                for (int i = 0; i < 2; i++)
                    cr_assert_eq(tg_tensor_get(y, (k * 3 + j) * 2 + i), 100 * i + 10 * j + k);
        tg_tensor *z = tg_transpose(g, iota3(g, dtypes[t]), -1, 1); // [2, 4, 3]
        cr_assert(tg_shape_equal(z->shape, tg_shape3(2, 4, 3)));
        for (int i = 0; i < 2; i++)
            for (int k = 0; k < 4; k++)
                for (int j = 0; j < 3; j++)
                    cr_assert_eq(tg_tensor_get(z, (i * 4 + k) * 3 + j), 100 * i + 10 * j + k);
    }
    tg_graph_free(g);
}

Test(transpose, same_axis_is_a_copy) {
    tg_graph *g = tg_graph_new();
    tg_tensor *x = iota3(g, TG_F64), *y = tg_transpose(g, x, 1, -2);
    cr_assert(tg_shape_equal(y->shape, x->shape));
    cr_assert_neq(y->data, x->data, "transpose returns a fresh copy");
    for (int i = 0; i < 24; i++) cr_assert_eq(f64(y)[i], f64(x)[i]);
    tg_graph_free(g);
}

Test(transpose, float32_backward_transposes_the_gradient) {
    tg_graph *g = tg_graph_new();
    tg_tensor *x = tg_tensor_create(TG_F32, tg_shape2(2, 3), true);
    tg_tensor *y = tg_transpose(g, x, 0, 1); // [3, 2]
    float seed[] = {1, 2, 3, 4, 5, 6};
    cr_assert(tg_backward_seed(g, y, seed));
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++) cr_assert_eq(((float *)x->grad)[i * 3 + j], seed[j * 2 + i]);
    tg_tensor_free(x);
    tg_graph_free(g);
}

Test(transpose, bad_axis_is_reported) {
    test_capture_errors();
    tg_graph *g = tg_graph_new();
    cr_assert_null(tg_transpose(g, tg_zeros(g, TG_F32, tg_shape2(2, 3)), 0, 2));
    cr_assert(strstr(test_error_message, "tg_transpose") && strstr(test_error_message, "axis 2"), "%s",
              test_error_message);
    cr_assert_null(tg_transpose(g, tg_zeros(g, TG_F32, tg_shape2(2, 3)), -3, 0));
    cr_assert(strstr(test_error_message, "axis -3"), "%s", test_error_message);
    tg_graph_free(g);
}

// --- concat ---

Test(concat, gradcheck_three_inputs_of_different_sizes_on_every_axis) {
    for (int axis = -3; axis < 3; axis++) {
        int a = axis < 0 ? axis + 3 : axis;
        shape_case c = {.kind = CONCAT, .n = 3, .axis = axis};
        for (int k = 0; k < 3; k++) {
            tg_shape s = tg_shape3(2, 3, 2);
            s.d[a] = k + 1; // sizes 1, 2, 3 along the axis
            c.x[k] = test_input(s, 30 + k, -1, 1);
        }
        gradcheck_case(&c, 3);
    }
}

Test(concat, gradcheck_single_input_and_size_one_dims) {
    shape_case one = {.kind = CONCAT, .n = 1, .axis = 0};
    one.x[0] = test_input(tg_shape2(1, 3), 33, -1, 1);
    gradcheck_case(&one, 1);
    shape_case c = {.kind = CONCAT, .n = 2, .axis = -1};
    c.x[0] = test_input(tg_shape3(1, 2, 1), 34, -1, 1);
    c.x[1] = test_input(tg_shape3(1, 2, 1), 35, -1, 1);
    gradcheck_case(&c, 2);
}

Test(concat, values_along_middle_axis) {
    tg_graph *g = tg_graph_new();
    // a [2, 1, 2], b [2, 2, 2]: y[i][j][k] = a[i][j][k] for j < 1, else b[i][j-1][k].
    double av[] = {1, 2, 3, 4}, bv[] = {10, 20, 30, 40, 50, 60, 70, 80};
    tg_tensor *xs[] = {tg_from_data(g, TG_F64, tg_shape3(2, 1, 2), av), tg_from_data(g, TG_F64, tg_shape3(2, 2, 2), bv)};
    tg_tensor *y = tg_concat(g, 2, xs, 1);
    cr_assert(tg_shape_equal(y->shape, tg_shape3(2, 3, 2)));
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 2; k++) {
                double want = j < 1 ? av[(i * 1 + j) * 2 + k] : bv[(i * 2 + j - 1) * 2 + k];
                cr_assert_eq(f64(y)[(i * 3 + j) * 2 + k], want, "y[%d][%d][%d]", i, j, k);
            }
    int32_t ia[] = {1, 2}, ib[] = {3, 4, 5};
    tg_tensor *is[] = {tg_from_data(g, TG_I32, tg_shape1(2), ia), tg_from_data(g, TG_I32, tg_shape1(3), ib)};
    tg_tensor *yi = tg_concat(g, 2, is, 0);
    cr_assert_eq(yi->dtype, TG_I32);
    for (int i = 0; i < 5; i++) cr_assert_eq(((int32_t *)yi->data)[i], i + 1);
    cr_assert_eq(tg_graph_node_count(g), 0, "no gradient wanted, no node");
    tg_graph_free(g);
}

Test(concat, same_input_twice_gets_both_gradients) {
    tg_graph *g = tg_graph_new();
    tg_tensor *a = tg_tensor_create(TG_F64, tg_shape1(2), true);
    tg_tensor *xs[] = {a, a};
    tg_tensor *y = tg_concat(g, 2, xs, 0);
    double seed[] = {1, 2, 30, 40};
    cr_assert(tg_backward_seed(g, y, seed));
    cr_assert_eq(((double *)a->grad)[0], 31);
    cr_assert_eq(((double *)a->grad)[1], 42);
    tg_tensor_free(a);
    tg_graph_free(g);
}

Test(concat, mismatched_shapes_dtypes_and_bad_axis_are_reported) {
    test_capture_errors();
    tg_graph *g = tg_graph_new();
    tg_tensor *xs[] = {tg_zeros(g, TG_F32, tg_shape2(2, 3)), tg_zeros(g, TG_F32, tg_shape2(4, 5))};
    cr_assert_null(tg_concat(g, 2, xs, 1));
    cr_assert(strstr(test_error_message, "tg_concat") && strstr(test_error_message, "[2, 3]") &&
                  strstr(test_error_message, "[4, 5]") && strstr(test_error_message, "test_shape.c:"),
              "%s", test_error_message);
    xs[1] = tg_zeros(g, TG_F64, tg_shape2(2, 3));
    cr_assert_null(tg_concat(g, 2, xs, 0));
    cr_assert(strstr(test_error_message, "float32") && strstr(test_error_message, "float64"), "%s",
              test_error_message);
    xs[1] = tg_zeros(g, TG_F32, tg_shape2(2, 3));
    cr_assert_null(tg_concat(g, 2, xs, 2));
    cr_assert(strstr(test_error_message, "axis 2"), "%s", test_error_message);
    cr_assert_null(tg_concat(g, 0, xs, 0));
    cr_assert(strstr(test_error_message, "at least one"), "%s", test_error_message);
    xs[1] = NULL;
    cr_assert_null(tg_concat(g, 2, xs, 0));
    cr_assert(strstr(test_error_message, "input 1 is NULL"), "%s", test_error_message);
    tg_graph_free(g);
}

// --- slice ---

Test(slice, gradcheck_every_axis_start_and_length) {
    tg_shape s = tg_shape3(3, 1, 4);
    for (int axis = -3; axis < 3; axis++) {
        int64_t size = s.d[axis < 0 ? axis + 3 : axis];
        for (int64_t start = 0; start < size; start++)
            for (int64_t length = 1; start + length <= size; length++) {
                shape_case c = {.kind = SLICE, .axis = axis, .start = start, .length = length};
                c.x[0] = test_input(s, 40, -1, 1);
                gradcheck_case(&c, 1);
            }
    }
}

Test(slice, values_and_backward_positions) {
    tg_graph *g = tg_graph_new();
    tg_tensor *y = tg_slice(g, iota3(g, TG_I32), -1, 1, 2); // [2, 3, 2]: k = 1, 2
    cr_assert(tg_shape_equal(y->shape, tg_shape3(2, 3, 2)));
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 2; k++) cr_assert_eq(tg_tensor_get(y, (i * 3 + j) * 2 + k), 100 * i + 10 * j + k + 1);
    // The gradient of a slice goes to the sliced positions and nowhere else.
    tg_tensor *x = tg_tensor_create(TG_F64, tg_shape2(2, 4), true);
    tg_tensor *z = tg_slice(g, x, 1, 2, 2); // columns 2, 3
    double seed[] = {1, 2, 3, 4};
    cr_assert(tg_backward_seed(g, z, seed));
    double want[] = {0, 0, 1, 2, 0, 0, 3, 4};
    for (int i = 0; i < 8; i++) cr_assert_eq(((double *)x->grad)[i], want[i], "grad[%d]", i);
    tg_tensor *empty = tg_slice(g, x, 0, 2, 0);
    cr_assert(empty && tg_shape_equal(empty->shape, tg_shape2(0, 4)));
    tg_tensor_free(x);
    tg_graph_free(g);
}

// A slice that is one contiguous run of its input shares the input's data (a time step's
// rows of a projection); any other slice is a copy. The values are the same either way.
Test(slice, contiguous_slices_share_their_input) {
    tg_graph *g = tg_graph_new();
    tg_tensor *x = iota3(g, TG_I32); // [2, 3, 4]
    tg_tensor *rows = tg_slice(g, x, 0, 1, 1);
    cr_assert_eq(rows->data, (int32_t *)x->data + 12);
    cr_assert_eq(tg_tensor_get(rows, 0), 100);
    tg_tensor *inner = tg_slice(g, tg_slice(g, x, 0, 1, 1), 1, 2, 1); // [1, 1, 4]: only size 1 before axis 1
    cr_assert_eq(inner->data, (int32_t *)x->data + 20);
    cr_assert_eq(tg_tensor_get(inner, 3), 123);
    tg_tensor *cols = tg_slice(g, x, 1, 1, 2); // [2, 2, 4]: two runs, so a copy
    uintptr_t at = (uintptr_t)cols->data, from = (uintptr_t)x->data, to = from + 24 * sizeof(int32_t);
    cr_assert(at < from || at >= to, "a slice of two runs shares its input's data");
    cr_assert_eq(tg_tensor_get(cols, 8), 110);
    tg_graph_free(g);
}

Test(slice, out_of_range_is_reported) {
    test_capture_errors();
    tg_graph *g = tg_graph_new();
    tg_tensor *x = tg_zeros(g, TG_F32, tg_shape2(2, 5));
    cr_assert_null(tg_slice(g, x, 1, 3, 3));
    cr_assert(strstr(test_error_message, "tg_slice") && strstr(test_error_message, "start 3, length 3") &&
                  strstr(test_error_message, "size 5") && strstr(test_error_message, "[2, 5]"),
              "%s", test_error_message);
    cr_assert_null(tg_slice(g, x, 0, -1, 1));
    cr_assert(strstr(test_error_message, "start -1"), "%s", test_error_message);
    cr_assert_null(tg_slice(g, x, 0, 0, -1));
    cr_assert(strstr(test_error_message, "length -1"), "%s", test_error_message);
    cr_assert_null(tg_slice(g, x, 0, 3, 0));
    cr_assert(strstr(test_error_message, "start 3"), "%s", test_error_message);
    cr_assert_null(tg_slice(g, x, 2, 0, 1));
    cr_assert(strstr(test_error_message, "axis 2 is out of range"), "%s", test_error_message);
    cr_assert_eq(test_error_count, 5);
    tg_graph_free(g);
}

// --- stack ---

Test(stack, gradcheck_first_middle_last_and_negative_axes) {
    int axes[] = {0, 1, 2, -1, -3};
    for (int i = 0; i < 5; i++) {
        shape_case c = {.kind = STACK, .n = 3, .axis = axes[i]};
        for (int k = 0; k < 3; k++) c.x[k] = test_input(tg_shape2(2, 3), 50 + k, -1, 1);
        gradcheck_case(&c, 3);
    }
    shape_case one = {.kind = STACK, .n = 1, .axis = 0};
    one.x[0] = test_input(tg_shape1(1), 53, -1, 1);
    gradcheck_case(&one, 1);
}

Test(stack, values_on_each_axis) {
    tg_graph *g = tg_graph_new();
    double av[] = {1, 2, 3, 4, 5, 6}, bv[] = {-1, -2, -3, -4, -5, -6}; // [2, 3]
    tg_tensor *xs[] = {tg_from_data(g, TG_F64, tg_shape2(2, 3), av), tg_from_data(g, TG_F64, tg_shape2(2, 3), bv)};
    const double *v[] = {av, bv};
    tg_tensor *y0 = tg_stack(g, 2, xs, 0), *y1 = tg_stack(g, 2, xs, 1), *y2 = tg_stack(g, 2, xs, 2);
    cr_assert(tg_shape_equal(y0->shape, tg_shape3(2, 2, 3)));
    cr_assert(tg_shape_equal(y1->shape, tg_shape3(2, 2, 3)));
    cr_assert(tg_shape_equal(y2->shape, tg_shape3(2, 3, 2)));
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3; j++) {
                double want = v[s][i * 3 + j];
                cr_assert_eq(f64(y0)[(s * 2 + i) * 3 + j], want);
                cr_assert_eq(f64(y1)[(i * 2 + s) * 3 + j], want);
                cr_assert_eq(f64(y2)[(i * 3 + j) * 2 + s], want);
            }
    tg_graph_free(g);
}

Test(stack, mismatched_shapes_and_bad_axis_are_reported) {
    test_capture_errors();
    tg_graph *g = tg_graph_new();
    tg_tensor *xs[] = {tg_zeros(g, TG_F32, tg_shape2(2, 3)), tg_zeros(g, TG_F32, tg_shape2(2, 4))};
    cr_assert_null(tg_stack(g, 2, xs, 0));
    cr_assert(strstr(test_error_message, "tg_stack") && strstr(test_error_message, "[2, 3]") &&
                  strstr(test_error_message, "[2, 4]"),
              "%s", test_error_message);
    xs[1] = xs[0];
    cr_assert_null(tg_stack(g, 2, xs, 3)); // 0 .. 2 for 2-D inputs
    cr_assert(strstr(test_error_message, "axis 3"), "%s", test_error_message);
    cr_assert_null(tg_stack(g, 2, xs, -4));
    cr_assert(strstr(test_error_message, "axis -4"), "%s", test_error_message);
    tg_tensor *big[] = {tg_zeros(g, TG_F32, tg_shape4(1, 1, 1, 1))};
    cr_assert_null(tg_stack(g, 1, big, 0));
    cr_assert(strstr(test_error_message, "already have 4 dimensions"), "%s", test_error_message);
    tg_graph_free(g);
}

// --- chunk ---

Test(chunk, gradcheck_pieces_rejoined_in_reverse_on_every_axis) {
    tg_shape s = tg_shape3(4, 6, 2);
    int axes[] = {0, 1, -2, -1}, pieces[] = {2, 3, 3, 2};
    for (int i = 0; i < 4; i++) {
        shape_case c = {.kind = CHUNK_REVERSED, .n = pieces[i], .axis = axes[i]};
        c.x[0] = test_input(s, 60 + i, -1, 1);
        gradcheck_case(&c, 1);
    }
}

Test(chunk, pieces_are_equal_consecutive_slices) {
    tg_graph *g = tg_graph_new();
    tg_tensor *x = iota3(g, TG_F64), *p[3];
    cr_assert(tg_chunk(g, x, 3, 1, p));
    for (int q = 0; q < 3; q++) {
        cr_assert(tg_shape_equal(p[q]->shape, tg_shape3(2, 1, 4)));
        for (int i = 0; i < 2; i++)
            for (int k = 0; k < 4; k++) cr_assert_eq(f64(p[q])[i * 4 + k], 100 * i + 10 * q + k);
    }
    tg_tensor *whole[1];
    cr_assert(tg_chunk(g, x, 1, 0, whole));
    cr_assert(tg_shape_equal(whole[0]->shape, x->shape));
    tg_graph_free(g);
}

Test(chunk, uneven_split_and_bad_axis_are_reported) {
    test_capture_errors();
    tg_graph *g = tg_graph_new();
    tg_tensor *x = tg_zeros(g, TG_F32, tg_shape2(2, 5)), *p[2] = {x, x};
    cr_assert_not(tg_chunk(g, x, 2, 1, p));
    cr_assert(strstr(test_error_message, "tg_chunk") && strstr(test_error_message, "size 5") &&
                  strstr(test_error_message, "[2, 5]") && strstr(test_error_message, "2 equal pieces") &&
                  strstr(test_error_message, "test_shape.c:"),
              "%s", test_error_message);
    cr_assert(p[0] == NULL && p[1] == NULL, "out[] is cleared on failure");
    cr_assert_not(tg_chunk(g, x, 2, -3, p));
    cr_assert(strstr(test_error_message, "axis -3"), "%s", test_error_message);
    cr_assert_not(tg_chunk(g, x, 0, 0, p));
    cr_assert(strstr(test_error_message, "n = 0"), "%s", test_error_message);
    tg_graph_free(g);
}

// Backward gives a view (reshape, contiguous slice) the region of its input's gradient as its
// own. Gradients through views of views, beside direct uses of the input, must sum into the
// right elements of a leaf that already holds a gradient; a seed placed on a view itself is
// a buffer of its own and must still reach the input.
Test(slice, gradients_of_views_land_in_their_inputs_gradient) {
    tg_graph *g = tg_graph_new();
    tg_tensor *x = tg_tensor_create(TG_F64, tg_shape2(4, 3), true);
    tg_tensor_fill(x, 2);
    for (int i = 0; i < 12; i++) ((double *)x->grad)[i] = 100; // accumulated earlier
    tg_tensor *h = tg_mul_scalar(g, x, 1);                      // a non-leaf with the same values
    tg_tensor *rows = tg_slice(g, h, 0, 1, 2);                  // rows 1, 2: a view
    tg_tensor *flat = tg_reshape(g, rows, tg_shape1(6));        // a view of a view
    tg_tensor *last = tg_slice(g, tg_reshape(g, x, tg_shape1(12)), 0, 9, 3); // a view of a leaf: row 3
    double w[6] = {1, 2, 3, 4, 5, 6};
    tg_tensor *terms[] = {tg_sum(g, tg_mul(g, flat, tg_from_data(g, TG_F64, tg_shape1(6), w))),
                          tg_mul_scalar(g, tg_sum(g, last), 10), tg_sum(g, h)};
    cr_assert(tg_backward(g, tg_sum(g, tg_stack(g, 3, terms, 0))));
    double want[12] = {1, 1, 1, 2, 3, 4, 5, 6, 7, 11, 11, 11}; // sum(h): 1 each; rows 1-2 add w; row 3 adds 10
    for (int i = 0; i < 12; i++) cr_assert_eq(((double *)x->grad)[i], 100 + want[i], "grad[%d]", i);

    tg_tensor_zero_grad(x);
    tg_tensor *view = tg_slice(g, tg_mul_scalar(g, x, 3), 0, 2, 1); // [1, 3]: row 2
    double seed[3] = {1, 2, 3};
    cr_assert(tg_backward_seed(g, view, seed));
    for (int i = 0; i < 12; i++)
        cr_assert_eq(((double *)x->grad)[i], i >= 6 && i < 9 ? 3 * seed[i - 6] : 0, "seeded: grad[%d]", i);
    tg_tensor_free(x);
    tg_graph_free(g);
}
