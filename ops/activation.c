// activation.c: elementwise nonlinearities. Each backward reads what its derivative is
// cheapest from: tanh, sigmoid and exp their output; the others their input.
#include <math.h>

#include "tg_internal.h"
#include "tg_ops.h"

// The argument of leaky_relu (slope) and elu (alpha). Only a nonzero one is saved: the
// others (tanh, exp, ...) take none, and their nodes carry no state.
typedef struct {
    double a;
} unary_state;

// Declares a unary op NAME: y[i] = FWD with x = xv[i] (and the op's argument a);
// backward adds gy[i] * (DERIV), where DERIV may use x, y and a.
#define UNARY_OP(NAME, FWD, DERIV)                                                                          \
    TG_VECTORIZE static void NAME##_backward(tg_graph *g, tg_node *n) {                                                  \
        (void)g;                                                                                            \
        tg_tensor *in = n->in[0], *out = n->out;                                                            \
        double arg = n->state ? TG_STATE(n, unary_state)->a : 0;                                            \
        TG_DISPATCH(out->dtype, {                                                                           \
            const T *xv = in->data, *yv = out->data, *gy = out->grad;                                       \
            T *gx = in->grad, a = (T)arg;                                                                   \
            (void)a;                                                                                        \
            for (int64_t i = 0; i < out->numel; i++) {                                                      \
                T x = xv[i], y = yv[i];                                                                     \
                (void)x;                                                                                    \
                (void)y;                                                                                    \
                gx[i] += gy[i] * (DERIV);                                                                   \
            }                                                                                               \
        });                                                                                                 \
    }                                                                                                       \
    static const tg_op NAME##_OP = {.name = #NAME, .backward = NAME##_backward};                            \
    TG_VECTORIZE static tg_tensor *NAME##_forward(tg_graph *g, tg_tensor *in, double arg) {                              \
        if (!tg_check_float(g, #NAME, 1, in)) return NULL;                                                  \
        tg_tensor *out = tg_new_tensor(g, in->dtype, in->shape);                                            \
        TG_DISPATCH(out->dtype, {                                                                           \
            const T *xv = in->data;                                                                         \
            T *yv = out->data, a = (T)arg;                                                                  \
            (void)a;                                                                                        \
            for (int64_t i = 0; i < out->numel; i++) {                                                      \
                T x = xv[i];                                                                                \
                yv[i] = (FWD);                                                                              \
            }                                                                                               \
        });                                                                                                 \
        tg_node *n = tg_record(g, &NAME##_OP, out, 1, in);                                                  \
        if (arg != 0) TG_SAVE(g, n, unary_state, {.a = arg});                                               \
        return out;                                                                                         \
    }

UNARY_OP(tanh, (T)TG_TANH(x), 1 - y * y)
UNARY_OP(sigmoid, (T)TG_SIGMOID(x), y * (1 - y))
UNARY_OP(relu, x > 0 ? x : 0, x > 0 ? 1 : 0)
UNARY_OP(leaky_relu, x > 0 ? x : a * x, x > 0 ? 1 : a)
UNARY_OP(elu, x > 0 ? x : a * ((T)TG_EXP(x) - 1), x > 0 ? 1 : y + a)
UNARY_OP(exp, (T)TG_EXP(x), y)
UNARY_OP(log, (T)TG_LOG(x), 1 / x)

tg_tensor *(tg_tanh)(tg_graph *g, tg_tensor *x) { return tanh_forward(g, x, 0); }
tg_tensor *(tg_sigmoid)(tg_graph *g, tg_tensor *x) { return sigmoid_forward(g, x, 0); }
tg_tensor *(tg_relu)(tg_graph *g, tg_tensor *x) { return relu_forward(g, x, 0); }
tg_tensor *(tg_leaky_relu)(tg_graph *g, tg_tensor *x, double slope) { return leaky_relu_forward(g, x, slope); }
tg_tensor *(tg_elu)(tg_graph *g, tg_tensor *x, double alpha) { return elu_forward(g, x, alpha); }
tg_tensor *(tg_exp)(tg_graph *g, tg_tensor *x) { return exp_forward(g, x, 0); }
tg_tensor *(tg_log)(tg_graph *g, tg_tensor *x) { return log_forward(g, x, 0); }
