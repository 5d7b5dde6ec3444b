// The backward walk: fan-out, accumulation, detach, no-grad, skipping, seeds, gradcheck
// itself and the DOT export.
#include <math.h>
#include <stdio.h>

#include "tg_test.h"

static double grad_at(const tg_tensor *t, int i) { return ((const double *)t->grad)[i]; }

// y = [1 1 1] (x*x + x) as a [1, 1] product, so backward can start from it.
static tg_tensor *sum3(tg_graph *g, tg_tensor *v) {
    return tg_matmul(g, tg_ones(g, TG_F64, tg_shape2(1, 3)), tg_reshape(g, v, tg_shape2(3, 1)));
}

Test(autodiff, fan_out_accumulates) {
    tg_tensor *x = tg_tensor_create(TG_F64, tg_shape1(3), true);
    for (int i = 0; i < 3; i++) tg_tensor_set(x, i, i - 1.5);
    tg_graph *g = tg_graph_new();
    tg_tensor *y = sum3(g, tg_add(g, tg_mul(g, x, x), x)); // x used three times
    cr_assert(tg_backward(g, y));
    for (int i = 0; i < 3; i++) cr_assert_eq(grad_at(x, i), 2 * (i - 1.5) + 1);
    tg_graph_free(g);
    tg_tensor_free(x);
}

Test(autodiff, backward_twice_fails_naming_the_first_and_changes_nothing) {
    test_capture_errors();
    tg_tensor *x = tg_tensor_create(TG_F64, tg_shape1(3), true);
    for (int i = 0; i < 3; i++) tg_tensor_set(x, i, 0.5 * i);
    tg_graph *g = tg_graph_new();
    tg_tensor *y = sum3(g, tg_tanh(g, tg_mul(g, x, x)));
    int first_line = __LINE__ + 1;
    cr_assert(tg_backward(g, y));
    double first[3];
    for (int i = 0; i < 3; i++) first[i] = grad_at(x, i);
    cr_assert(!tg_backward(g, y));
    char site[128];
    snprintf(site, sizeof site, "backward called at %s:%d", __FILE__, first_line);
    cr_assert(strstr(test_error_message, site), "%s", test_error_message);
    cr_assert(strstr(test_error_message, "retain_graph"), "%s", test_error_message);
    for (int i = 0; i < 3; i++) cr_assert_eq(grad_at(x, i), first[i], "element %d", i);
    cr_assert(!tg_backward_seed(g, y, (double[]){1.0}), "the seeded walk is refused too");
    tg_graph_reset(g); // a new recording can be walked again
    y = sum3(g, tg_tanh(g, tg_mul(g, x, x)));
    cr_assert(tg_backward(g, y));
    for (int i = 0; i < 3; i++) cr_assert_eq(grad_at(x, i), 2 * first[i], "element %d", i);
    tg_graph_free(g);
    tg_tensor_free(x);
}

// As in PyTorch, what is refused is a walk through spent nodes, not a second walk on a graph.
Test(autodiff, backward_through_new_nodes_of_a_walked_graph_is_allowed) {
    test_capture_errors();
    tg_tensor *x = tg_tensor_create(TG_F64, tg_shape1(3), true);
    tg_graph *g = tg_graph_new();
    tg_tensor *y1 = sum3(g, tg_mul_scalar(g, x, 2));
    cr_assert(tg_backward(g, y1));
    tg_tensor *y2 = sum3(g, tg_mul_scalar(g, x, 3));
    int second_line = __LINE__ + 1;
    cr_assert(tg_backward(g, y2));
    for (int i = 0; i < 3; i++) cr_assert_eq(grad_at(x, i), 5);
    cr_assert(!tg_backward(g, tg_add(g, y1, y2)), "y1 and y2's nodes are spent");
    char site[128];
    snprintf(site, sizeof site, "backward called at %s:%d", __FILE__, second_line);
    cr_assert(strstr(test_error_message, site), "%s", test_error_message);
    cr_assert(strstr(test_error_message, "through matmul"), "%s", test_error_message);
    for (int i = 0; i < 3; i++) cr_assert_eq(grad_at(x, i), 5, "a refused walk adds nothing");
    tg_graph_free(g);
    tg_tensor_free(x);
}

Test(autodiff, retain_graph_lets_backward_accumulate_again_like_pytorch) {
    tg_tensor *x = tg_tensor_create(TG_F64, tg_shape1(3), true);
    for (int i = 0; i < 3; i++) tg_tensor_set(x, i, 0.5 * i);
    tg_graph *g = tg_graph_new();
    tg_tensor *y = sum3(g, tg_tanh(g, tg_mul(g, x, x)));
    cr_assert(tg_backward_with(g, y, &(tg_backward_opts){.retain_graph = true}));
    double first[3];
    for (int i = 0; i < 3; i++) first[i] = grad_at(x, i);
    cr_assert(tg_backward(g, y)); // kept by the first: allowed, and spends the tape
    for (int i = 0; i < 3; i++) cr_assert_eq(grad_at(x, i), 2 * first[i], "element %d", i);
    test_capture_errors();
    cr_assert(!tg_backward_with(g, y, NULL));
    cr_assert(strstr(test_error_message, "already walked"), "%s", test_error_message);
    tg_graph_free(g);
    tg_tensor_free(x);
}

Test(autodiff, detach_stops_the_gradient_and_keeps_the_value) {
    tg_tensor *x = tg_tensor_create(TG_F64, tg_shape1(3), true);
    for (int i = 0; i < 3; i++) tg_tensor_set(x, i, i + 1.0);
    tg_graph *g = tg_graph_new();
    tg_tensor *d = tg_detach(g, x);
    cr_assert_eq(d->data, x->data);
    cr_assert(!d->requires_grad);
    tg_tensor *y = sum3(g, tg_mul(g, x, d)); // d/dx (x * const) = const
    cr_assert(tg_backward(g, y));
    for (int i = 0; i < 3; i++) cr_assert_eq(grad_at(x, i), i + 1.0);
    tg_graph_free(g);
    tg_tensor_free(x);
}

Test(autodiff, no_grad_mode_records_nothing) {
    test_capture_errors();
    tg_tensor *x = tg_tensor_create(TG_F64, tg_shape1(3), true);
    tg_graph *g = tg_graph_new();
    tg_graph_set_grad_enabled(g, false);
    tg_tensor *y = sum3(g, tg_tanh(g, x));
    cr_assert_eq(tg_graph_node_count(g), 0);
    cr_assert(!y->requires_grad);
    cr_assert(!tg_backward(g, y));
    cr_assert(strstr(test_error_message, "does not require a gradient"), "%s", test_error_message);
    tg_graph_set_grad_enabled(g, true);
    cr_assert_not_null(tg_tanh(g, x)->node);
    tg_graph_free(g);
    tg_tensor_free(x);
}

Test(autodiff, constants_record_no_nodes) {
    tg_tensor *w = tg_tensor_create(TG_F64, tg_shape1(3), true);
    tg_graph *g = tg_graph_new();
    tg_tensor *c = tg_ones(g, TG_F64, tg_shape1(3));
    tg_tensor *k = tg_exp(g, tg_mul(g, c, c)); // needs no gradient: not on the tape
    cr_assert_eq(tg_graph_node_count(g), 0);
    cr_assert(!k->requires_grad);
    tg_tensor *y = sum3(g, tg_mul(g, k, w));
    cr_assert(tg_backward(g, y));
    for (int i = 0; i < 3; i++) ASSERT_CLOSE(grad_at(w, i), exp(1.0), 1e-15, 0);
    cr_assert_eq(k->grad, NULL, "no gradient is computed for a constant");
    tg_graph_free(g);
    tg_tensor_free(w);
}

Test(autodiff, unreached_branches_are_skipped) {
    tg_tensor *x = tg_tensor_create(TG_F64, tg_shape1(3), true);
    tg_graph *g = tg_graph_new();
    tg_tensor *unused = tg_tanh(g, x); // on the tape, but the loss does not depend on it
    tg_tensor *y = sum3(g, tg_mul_scalar(g, x, 2));
    cr_assert(tg_backward(g, y));
    cr_assert_eq(unused->grad, NULL);
    for (int i = 0; i < 3; i++) cr_assert_eq(grad_at(x, i), 2);
    tg_graph_free(g);
    tg_tensor_free(x);
}

Test(autodiff, seed_gradient_for_non_scalar_outputs) {
    test_capture_errors();
    tg_tensor *x = tg_tensor_create(TG_F32, tg_shape2(2, 2), true);
    tg_graph *g = tg_graph_new();
    tg_tensor *y = tg_mul_scalar(g, x, 3);
    cr_assert(!tg_backward(g, y));
    cr_assert(strstr(test_error_message, "[2, 2]"), "%s", test_error_message);
    float seed[] = {1, 2, 3, 4};
    cr_assert(tg_backward_seed(g, y, seed));
    for (int i = 0; i < 4; i++) cr_assert_eq(((float *)x->grad)[i], 3 * seed[i]);
    tg_graph_free(g);
    tg_tensor_free(x);
}

typedef struct {
    tg_tensor *x;
    bool wrong;
} square_case;

// x*x; the wrong version hides one factor from the tape, so its gradient is half the truth.
static tg_tensor *square(tg_graph *g, void *ctx) {
    square_case *c = ctx;
    return tg_mul(g, c->x, c->wrong ? tg_detach(g, c->x) : c->x);
}

Test(gradcheck, passes_a_right_gradient_and_reports_a_wrong_one) {
    square_case c = {test_input(tg_shape2(2, 3), 1, 0.5, 2), false};
    char report[512];
    cr_assert(tg_gradcheck(square, &c, &c.x, 1, NULL, report, sizeof report), "%s", report);
    c.wrong = true;
    cr_assert(!tg_gradcheck(square, &c, &c.x, 1, NULL, report, sizeof report));
    cr_assert(strstr(report, "input 0") && strstr(report, "element [0, 0]") && strstr(report, "analytic") &&
                  strstr(report, "6 of 6 elements failed"),
              "%s", report);
    // The inputs are restored after the perturbations.
    tg_tensor *fresh = test_input(tg_shape2(2, 3), 1, 0.5, 2);
    for (int i = 0; i < 6; i++) cr_assert_eq(tg_tensor_get(c.x, i), tg_tensor_get(fresh, i));
    tg_tensor_free(fresh);
    tg_tensor_free(c.x);
}

Test(gradcheck, rejects_float32_inputs) {
    tg_tensor *x = tg_tensor_create(TG_F32, tg_shape1(2), true);
    square_case c = {x, false};
    char report[256];
    cr_assert(!tg_gradcheck(square, &c, &c.x, 1, NULL, report, sizeof report));
    cr_assert(strstr(report, "float64"), "%s", report);
    tg_tensor_free(x);
}

Test(dot, export_names_ops_and_parameters) {
    tg_params *p = tg_params_new();
    tg_tensor *w = tg_params_add(p, "weight_hh_l0", TG_F32, tg_shape2(4, 4));
    tg_graph *g = tg_graph_new();
    tg_tensor *h = tg_ones(g, TG_F32, tg_shape2(2, 4));
    tg_tanh(g, tg_linear(g, h, w, NULL));
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    tg_graph_write_dot(g, f);
    fclose(f);
    cr_assert(strstr(buf, "digraph"), "%s", buf);
    cr_assert(strstr(buf, "linear") && strstr(buf, "tanh"), "%s", buf);
    cr_assert(strstr(buf, "weight_hh_l0") && strstr(buf, "filled"), "%s", buf);
    cr_assert(strstr(buf, "[2, 4]"), "%s", buf);
    free(buf);
    tg_graph_free(g);
    tg_params_free(p);
}
