// The numerics check: the first op whose output or gradient is not finite is named, with
// its inputs' shapes and where it was made, in forward and in backward.
#include <stdlib.h>

#include "tg_test.h"

enum { T = 12, B = 2, I = 3, H = 4, BAD_STEP = 9 };

// An LSTM unrolled by hand from the built-in cell; at BAD_STEP a log of a negative number
// sneaks into the cell state.
static int unroll_with_bad_log(tg_graph *g, const tg_cell *cell, tg_tensor *x) {
    tg_tensor *state[2] = {tg_zeros(g, TG_F32, tg_shape2(B, H)), tg_zeros(g, TG_F32, tg_shape2(B, H))};
    int bad_line = 0;
    for (int t = 0; t < T; t++) {
        tg_tensor *next[2];
        tg_tensor *xt = tg_reshape(g, tg_slice(g, x, 0, t, 1), tg_shape2(B, I));
        cell->type->step(g, cell, cell->type->project_input(g, cell, xt), state, next);
        if (t == BAD_STEP) {
            tg_tensor *shifted = tg_add_scalar(g, next[1], -5.0); // |c| < 5, so this is negative
            bad_line = __LINE__ + 1;
            next[1] = tg_add(g, next[1], tg_log(g, shifted));
        }
        state[0] = next[0], state[1] = next[1];
    }
    return bad_line;
}

static tg_cell make_lstm(tg_params *p) {
    tg_rng rng;
    tg_rng_seed(&rng, 4);
    tg_cell cell;
    cr_assert(tg_cell_init(&cell, &tg_cell_lstm, &(tg_cell_config){.input_size = I, .hidden_size = H}, p, "", "_l0", &rng));
    return cell;
}

Test(numerics, names_the_op_that_made_a_nan_deep_in_an_lstm) {
    test_capture_errors();
    tg_params *p = tg_params_new();
    tg_cell cell = make_lstm(p);
    tg_graph *g = tg_graph_new();
    tg_rng rng;
    tg_rng_seed(&rng, 5);
    tg_tensor *x = tg_rand_uniform(g, TG_F32, tg_shape3(T, B, I), &rng, -1, 1);
    tg_graph_set_check_numerics(g, true);
    int line = unroll_with_bad_log(g, &cell, x);
    cr_assert_eq(test_error_count, 1, "only the first bad op is reported, got %d", test_error_count);
    char where[64];
    snprintf(where, sizeof where, "test_numerics.c:%d", line);
    cr_assert(strstr(test_error_message, "tg_log: numerics check: forward") && strstr(test_error_message, "nan") &&
                  strstr(test_error_message, "[2, 4]") && strstr(test_error_message, where),
              "%s", test_error_message);
    tg_graph_free(g);
    tg_params_free(p);
}

Test(numerics, off_by_default_and_on_through_the_environment) {
    test_capture_errors();
    tg_params *p = tg_params_new();
    tg_cell cell = make_lstm(p);
    unsetenv("TG_CHECK_NUMERICS");
    tg_graph *g = tg_graph_new();
    cr_assert(!tg_graph_check_numerics(g));
    tg_tensor *x = tg_zeros(g, TG_F32, tg_shape3(T, B, I));
    unroll_with_bad_log(g, &cell, x);
    cr_assert_eq(test_error_count, 0, "the check is off unless asked for: %s", test_error_message);
    tg_graph_free(g);
    setenv("TG_CHECK_NUMERICS", "1", 1);
    g = tg_graph_new();
    cr_assert(tg_graph_check_numerics(g));
    x = tg_zeros(g, TG_F32, tg_shape3(T, B, I));
    unroll_with_bad_log(g, &cell, x);
    cr_assert_eq(test_error_count, 1);
    unsetenv("TG_CHECK_NUMERICS");
    tg_graph_free(g);
    tg_params_free(p);
}

Test(numerics, names_the_backward_that_made_a_nan) {
    // 0 / 1e-200 is 0 going forward, but its gradient for the divisor, -0/(1e-200)^2, is 0/0.
    test_capture_errors();
    tg_tensor *a = tg_tensor_create(TG_F64, tg_shape1(3), true);
    tg_tensor *b = tg_tensor_create(TG_F64, tg_shape1(3), true);
    tg_tensor_fill(b, 1e-200);
    tg_graph *g = tg_graph_new();
    tg_graph_set_check_numerics(g, true);
    tg_tensor *y = tg_sum(g, tg_tanh(g, tg_div(g, a, b)));
    cr_assert_eq(test_error_count, 0, "forward is finite: %s", test_error_message);
    cr_assert(!tg_backward(g, y));
    cr_assert(strstr(test_error_message, "tg_div: numerics check: backward: the gradient of input 1") &&
                  strstr(test_error_message, "test_numerics.c:"),
              "%s", test_error_message);
    tg_graph_free(g);
    tg_tensor_free(a);
    tg_tensor_free(b);
}
