// Gradient checks and values for tanh, sigmoid, relu, leaky_relu, elu, exp and log.
#include <math.h>

#include "tg_test.h"

typedef struct {
    int which;
    tg_tensor *x;
} act_case;

static tg_tensor *run_act(tg_graph *g, void *ctx) {
    act_case *c = ctx;
    switch (c->which) {
    case 0: return tg_tanh(g, c->x);
    case 1: return tg_sigmoid(g, c->x);
    case 2: return tg_relu(g, c->x);
    case 3: return tg_leaky_relu(g, c->x, 0.01);
    case 4: return tg_elu(g, c->x, 1.3);
    case 5: return tg_exp(g, c->x);
    default: return tg_log(g, c->x);
    }
}

Test(activation, gradcheck_every_activation) {
    for (int which = 0; which < 7; which++) {
        // log needs positive inputs. relu-like kinks at 0: U(-2, 2) never lands within eps of it.
        act_case c = {which, which == 6 ? test_input(tg_shape2(3, 5), 7, 0.2, 3) : test_input(tg_shape2(3, 5), 7, -2, 2)};
        ASSERT_GRADCHECK(run_act, &c, &c.x, 1);
        tg_tensor_free(c.x);
    }
}

Test(activation, gradcheck_scalar_and_4d) {
    tg_shape shapes[] = {tg_shape0(), tg_shape4(2, 1, 2, 3)};
    for (int s = 0; s < 2; s++)
        for (int which = 0; which < 6; which++) {
            act_case c = {which, test_input(shapes[s], 11 + which, -1.5, 1.5)};
            ASSERT_GRADCHECK(run_act, &c, &c.x, 1);
            tg_tensor_free(c.x);
        }
}

Test(activation, values) {
    tg_graph *g = tg_graph_new();
    double xs[] = {-2, -0.5, 0, 0.5, 2};
    tg_tensor *x = tg_from_data(g, TG_F64, tg_shape1(5), xs);
    tg_tensor *t = tg_tanh(g, x), *s = tg_sigmoid(g, x), *r = tg_relu(g, x), *l = tg_leaky_relu(g, x, 0.1),
              *e = tg_elu(g, x, 1.0), *ex = tg_exp(g, x);
    for (int i = 0; i < 5; i++) {
        ASSERT_CLOSE(tg_tensor_get(t, i), tanh(xs[i]), 1e-15, 0);
        ASSERT_CLOSE(tg_tensor_get(s, i), 1 / (1 + exp(-xs[i])), 1e-15, 0);
        ASSERT_CLOSE(tg_tensor_get(r, i), xs[i] > 0 ? xs[i] : 0, 0, 0);
        ASSERT_CLOSE(tg_tensor_get(l, i), xs[i] > 0 ? xs[i] : 0.1 * xs[i], 1e-16, 0);
        ASSERT_CLOSE(tg_tensor_get(e, i), xs[i] > 0 ? xs[i] : exp(xs[i]) - 1, 1e-15, 0);
        ASSERT_CLOSE(tg_tensor_get(ex, i), exp(xs[i]), 0, 1e-15);
    }
    tg_graph_free(g);
}

Test(activation, sigmoid_does_not_overflow) {
    tg_graph *g = tg_graph_new();
    float xs[] = {-1000.0f, 1000.0f};
    tg_tensor *s = tg_sigmoid(g, tg_from_data(g, TG_F32, tg_shape1(2), xs));
    cr_assert_eq(tg_tensor_get(s, 0), 0.0);
    cr_assert_eq(tg_tensor_get(s, 1), 1.0);
    tg_graph_free(g);
}

Test(activation, int_input_is_reported) {
    test_capture_errors();
    tg_graph *g = tg_graph_new();
    cr_assert_null(tg_tanh(g, tg_zeros(g, TG_I32, tg_shape1(3))));
    cr_assert(strstr(test_error_message, "tg_tanh") && strstr(test_error_message, "int32"), "%s", test_error_message);
    tg_graph_free(g);
}
