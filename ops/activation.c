// activation.c: elementwise nonlinearities. Each backward reads what its derivative is
// cheapest from: tanh, sigmoid and exp their output; the others their input.
#include <math.h>

#include "tg_internal.h"
#include "tg_ops.h"

// The arguments of leaky_relu (slope a), elu (alpha a) and softplus (beta a, threshold b).
// Only nonzero ones are saved: the others (tanh, exp, ...) take none, and their nodes carry
// no state.
typedef struct {
    double a, b;
} unary_state;

// Declares a unary op NAME: y[i] = FWD with x = xv[i] (and the op's arguments a, b);
// backward adds gy[i] * (DERIV), where DERIV may use x, y, a and b.
#define UNARY_OP(NAME, FWD, DERIV)                                                                          \
    TG_VECTORIZE static void NAME##_backward(tg_graph *g, tg_node *n) {                                                  \
        (void)g;                                                                                            \
        tg_tensor *in = n->in[0], *out = n->out;                                                            \
        double arg = n->state ? TG_STATE(n, unary_state)->a : 0;                                            \
        double arg2 = n->state ? TG_STATE(n, unary_state)->b : 0;                                           \
        TG_DISPATCH(out->dtype, {                                                                           \
            const T *xv = in->data, *yv = out->data, *gy = out->grad;                                       \
            T *gx = in->grad, a = (T)arg, b = (T)arg2;                                                      \
            (void)a;                                                                                        \
            (void)b;                                                                                        \
            for (int64_t i = 0; i < out->numel; i++) {                                                      \
                T x = xv[i], y = yv[i];                                                                     \
                (void)x;                                                                                    \
                (void)y;                                                                                    \
                gx[i] += gy[i] * (DERIV);                                                                   \
            }                                                                                               \
        });                                                                                                 \
    }                                                                                                       \
    static const tg_op NAME##_OP = {.name = #NAME, .backward = NAME##_backward};                            \
    TG_VECTORIZE static tg_tensor *NAME##_forward(tg_graph *g, tg_tensor *in, double arg, double arg2) {                 \
        if (!tg_check_float(g, #NAME, 1, in)) return NULL;                                                  \
        tg_tensor *out = tg_new_tensor(g, in->dtype, in->shape);                                            \
        TG_DISPATCH(out->dtype, {                                                                           \
            const T *xv = in->data;                                                                         \
            T *yv = out->data, a = (T)arg, b = (T)arg2;                                                     \
            (void)a;                                                                                        \
            (void)b;                                                                                        \
            for (int64_t i = 0; i < out->numel; i++) {                                                      \
                T x = xv[i];                                                                                \
                yv[i] = (FWD);                                                                              \
            }                                                                                               \
        });                                                                                                 \
        tg_node *n = tg_record(g, &NAME##_OP, out, 1, in);                                                  \
        if (arg != 0 || arg2 != 0) TG_SAVE(g, n, unary_state, {.a = arg, .b = arg2});                       \
        return out;                                                                                         \
    }

// softplus, gelu and silu, in double whatever the dtype (x and y are T in the macro).
static double softplus_value(double x, double beta, double threshold) {
    return beta * x > threshold ? x : log1p(exp(beta * x)) / beta; // PyTorch's: linear above the threshold
}
static double softplus_grad(double x, double beta, double threshold) {
    if (beta * x > threshold) return 1;
    double z = exp(beta * x);
    return z / (z + 1);
}
static double sigmoid_value(double x) { return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)); }
static double silu_grad(double x) {
    double s = sigmoid_value(x);
    return s * (1 + x * (1 - s));
}
#define SQRT1_2 0.70710678118654752440   // 1/sqrt(2)
#define SQRT_2_PI 0.79788456080286535588 // sqrt(2/pi)
#define INV_SQRT_2PI 0.39894228040143267794 // 1/sqrt(2 pi)
static double gelu_value(double x) { return 0.5 * x * (1 + erf(x * SQRT1_2)); }
static double gelu_grad(double x) { return 0.5 * (1 + erf(x * SQRT1_2)) + x * exp(-0.5 * x * x) * INV_SQRT_2PI; }
static double gelu_tanh_value(double x) { return 0.5 * x * (1 + tanh(SQRT_2_PI * (x + 0.044715 * x * x * x))); }
static double gelu_tanh_grad(double x) { // PyTorch's GeluBackward with approximate='tanh', term by term
    double t = tanh(SQRT_2_PI * (x + 0.044715 * x * x * x));
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SQRT_2_PI * (1 + 3 * 0.044715 * x * x);
}

UNARY_OP(tanh, (T)TG_TANH(x), 1 - y * y)
UNARY_OP(sigmoid, (T)TG_SIGMOID(x), y * (1 - y))
UNARY_OP(relu, x > 0 ? x : 0, x > 0 ? 1 : 0)
UNARY_OP(leaky_relu, x > 0 ? x : a * x, x > 0 ? 1 : a)
UNARY_OP(elu, x > 0 ? x : a * ((T)TG_EXP(x) - 1), x > 0 ? 1 : y + a)
UNARY_OP(exp, (T)TG_EXP(x), y)
UNARY_OP(log, (T)TG_LOG(x), 1 / x)
UNARY_OP(softplus, (T)softplus_value(x, a, b), (T)softplus_grad(x, a, b))
UNARY_OP(gelu, (T)gelu_value(x), (T)gelu_grad(x))
UNARY_OP(gelu_tanh, (T)gelu_tanh_value(x), (T)gelu_tanh_grad(x))
UNARY_OP(silu, (T)(x * sigmoid_value(x)), (T)silu_grad(x))

tg_tensor *(tg_tanh)(tg_graph *g, tg_tensor *x) { return tanh_forward(g, x, 0, 0); }
tg_tensor *(tg_sigmoid)(tg_graph *g, tg_tensor *x) { return sigmoid_forward(g, x, 0, 0); }
tg_tensor *(tg_relu)(tg_graph *g, tg_tensor *x) { return relu_forward(g, x, 0, 0); }
tg_tensor *(tg_leaky_relu)(tg_graph *g, tg_tensor *x, double slope) { return leaky_relu_forward(g, x, slope, 0); }
tg_tensor *(tg_elu)(tg_graph *g, tg_tensor *x, double alpha) { return elu_forward(g, x, alpha, 0); }
tg_tensor *(tg_exp)(tg_graph *g, tg_tensor *x) { return exp_forward(g, x, 0, 0); }
tg_tensor *(tg_log)(tg_graph *g, tg_tensor *x) { return log_forward(g, x, 0, 0); }
tg_tensor *(tg_softplus)(tg_graph *g, tg_tensor *x, double beta, double threshold) {
    if (!(beta != 0) || isnan(threshold))
        return tg_fail(g, "softplus", "beta = %g, threshold = %g; beta must be nonzero and neither NaN", beta, threshold);
    return softplus_forward(g, x, beta, threshold);
}
tg_tensor *(tg_gelu)(tg_graph *g, tg_tensor *x) { return gelu_forward(g, x, 0, 0); }
tg_tensor *(tg_gelu_tanh)(tg_graph *g, tg_tensor *x) { return gelu_tanh_forward(g, x, 0, 0); }
tg_tensor *(tg_silu)(tg_graph *g, tg_tensor *x) { return silu_forward(g, x, 0, 0); }
