// math.c: elementwise math beyond arithmetic: sqrt, rsqrt, pow with a scalar exponent,
// square, abs, clamp, and the elementwise minimum and maximum of two broadcast tensors.
//
// Gradients at the edges are PyTorch's: sqrt and rsqrt are infinite at 0, pow's is 0 for
// exponent 0, abs's is 0 at 0, clamp passes the gradient where min <= x <= max (bounds
// included), and minimum and maximum split it in half between tied inputs. NaN inputs give
// NaN outputs. Values are computed in double and rounded once to the tensor's dtype.
#include <math.h>

#include "tg_internal.h"
#include "tg_ops.h"

// The scalars of a unary op: pow's exponent (a), clamp's bounds (a, b).
typedef struct {
    double a, b;
} math_state;

// Declares a unary op NAME: y[i] = FWD with double x = xv[i] and the op's scalars a, b;
// backward adds gy[i] * (DERIV), where DERIV may use x, y (the output, as double), a and b.
#define MATH_UNARY(NAME, FWD, DERIV)                                                                         \
    static void NAME##_backward(tg_graph *g, tg_node *n) {                                                   \
        (void)g;                                                                                             \
        tg_tensor *in = n->in[0], *out = n->out;                                                             \
        const math_state *s = TG_STATE(n, math_state);                                                       \
        double a = s->a, b = s->b;                                                                           \
        (void)a, (void)b;                                                                                    \
        TG_DISPATCH(out->dtype, {                                                                            \
            const T *xv = in->data, *yv = out->data, *gy = out->grad; /* [numel] */                          \
            T *gx = in->grad;                                         /* [numel] */                          \
            for (int64_t i = 0; i < out->numel; i++) {                                                       \
                double x = xv[i], y = yv[i];                                                                 \
                (void)x, (void)y;                                                                            \
                gx[i] += (T)((double)gy[i] * (DERIV));                                                       \
            }                                                                                                \
        });                                                                                                  \
    }                                                                                                        \
    static const tg_op NAME##_OP = {.name = #NAME, .backward = NAME##_backward};                             \
    static tg_tensor *NAME##_forward(tg_graph *g, tg_tensor *in, double a, double b) {                       \
        if (!tg_check_float(g, #NAME, 1, in)) return NULL;                                                   \
        tg_tensor *out = tg_new_tensor(g, in->dtype, in->shape);                                             \
        TG_DISPATCH(out->dtype, {                                                                            \
            const T *xv = in->data; /* [numel] */                                                            \
            T *yv = out->data;      /* [numel] */                                                            \
            for (int64_t i = 0; i < out->numel; i++) {                                                       \
                double x = xv[i];                                                                            \
                yv[i] = (T)(FWD);                                                                            \
            }                                                                                                \
        });                                                                                                  \
        tg_node *n = tg_record(g, &NAME##_OP, out, 1, in);                                                   \
        TG_SAVE(g, n, math_state, {.a = a, .b = b});                                                         \
        return out;                                                                                          \
    }

// x^p as PyTorch computes it: exponents 0.5 and -0.5 by sqrt and 1/sqrt, small integers by
// products, so signed zeros give what PyTorch gives (pow(-0.0, 0.5) is +0, sqrt(-0.0) -0).
static double torch_pow(double x, double p) {
    if (p == 0.5) return sqrt(x);
    if (p == -0.5) return 1 / sqrt(x);
    if (p == 1) return x;
    if (p == 2) return x * x;
    if (p == 3) return x * x * x;
    if (p == -1) return 1 / x;
    if (p == -2) return 1 / (x * x);
    return pow(x, p);
}

// PyTorch's clamp: max(x, lo) first, then min with hi, so lo > hi gives hi everywhere; a NaN
// fails both comparisons and passes through.
static double clamp_value(double x, double lo, double hi) {
    double t = x < lo ? lo : x;
    return t > hi ? hi : t;
}

MATH_UNARY(sqrt, sqrt(x), 0.5 / y)
MATH_UNARY(rsqrt, 1 / sqrt(x), -0.5 * y * y * y)
MATH_UNARY(pow, torch_pow(x, a), a == 0 ? 0 : a * torch_pow(x, a - 1))
MATH_UNARY(square, x * x, 2 * x)
MATH_UNARY(abs, fabs(x), x > 0 ? 1 : x < 0 ? -1 : 0)
MATH_UNARY(clamp, clamp_value(x, a, b), x >= a && x <= b ? 1 : 0)

tg_tensor *(tg_sqrt)(tg_graph *g, tg_tensor *x) { return sqrt_forward(g, x, 0, 0); }
tg_tensor *(tg_rsqrt)(tg_graph *g, tg_tensor *x) { return rsqrt_forward(g, x, 0, 0); }
tg_tensor *(tg_pow_scalar)(tg_graph *g, tg_tensor *x, double exponent) { return pow_forward(g, x, exponent, 0); }
tg_tensor *(tg_square)(tg_graph *g, tg_tensor *x) { return square_forward(g, x, 0, 0); }
tg_tensor *(tg_abs)(tg_graph *g, tg_tensor *x) { return abs_forward(g, x, 0, 0); }

tg_tensor *(tg_clamp)(tg_graph *g, tg_tensor *x, double min, double max) {
    if (isnan(min) || isnan(max)) return tg_fail(g, "clamp", "bounds [%g, %g]: a bound is NaN", min, max);
    return clamp_forward(g, x, min, max);
}

// --- minimum and maximum: y = the smaller (larger) of a and b, broadcast ---

typedef struct {
    tg_bcast plan; // how a and b broadcast to y
    bool max;      // maximum, else minimum
} minmax_state;

// The share of y's gradient that goes to an input of value u, against the other's v:
// all of it where u wins (or where a NaN makes neither win), half on a tie, none where it loses.
static double minmax_share(double u, double v, bool max) {
    if (u == v) return 0.5;
    return (max ? u < v : u > v) ? 0 : 1;
}

static void minmax_backward(tg_graph *g, tg_node *n) {
    (void)g;
    const minmax_state *s = TG_STATE(n, minmax_state);
    const tg_bcast *p = &s->plan;
    tg_tensor *a = n->in[0], *b = n->in[1], *y = n->out;
    bool max = s->max;
    TG_DISPATCH(y->dtype, {
        const T *av = a->data, *bv = b->data, *gy = y->grad; // broadcast to y's shape
        T *ga = a->grad, *gb = b->grad;
        if (ga) TG_BCAST_LOOP(p, ia, ib, unused_, ga[ia] += (T)(gy[o] * minmax_share(av[ia], bv[ib], max)););
        if (gb) TG_BCAST_LOOP(p, ia, ib, unused_, gb[ib] += (T)(gy[o] * minmax_share(bv[ib], av[ia], max)););
    });
}

static const tg_op MINIMUM_OP = {.name = "minimum", .backward = minmax_backward};
static const tg_op MAXIMUM_OP = {.name = "maximum", .backward = minmax_backward};

static tg_tensor *minmax(tg_graph *g, const tg_op *op, tg_tensor *a, tg_tensor *b, bool max) {
    if (!tg_check_float(g, op->name, 2, a, b)) return NULL;
    tg_shape shapes[2] = {a->shape, b->shape}, shape;
    tg_bcast plan;
    if (!tg_broadcast(g, op->name, 2, shapes, &shape, &plan)) return NULL;
    tg_tensor *y = tg_new_tensor(g, a->dtype, shape);
    const tg_bcast *p = &plan;
    TG_DISPATCH(y->dtype, {
        const T *av = a->data, *bv = b->data;
        T *yv = y->data;
        // a NaN on either side wins, as in PyTorch
        if (max) TG_BCAST_LOOP(p, ia, ib, unused_, yv[o] = av[ia] > bv[ib] || av[ia] != av[ia] ? av[ia] : bv[ib];);
        else TG_BCAST_LOOP(p, ia, ib, unused_, yv[o] = av[ia] < bv[ib] || av[ia] != av[ia] ? av[ia] : bv[ib];);
    });
    tg_node *n = tg_record(g, op, y, 2, a, b);
    TG_SAVE(g, n, minmax_state, {.plan = plan, .max = max});
    return y;
}

tg_tensor *(tg_minimum)(tg_graph *g, tg_tensor *a, tg_tensor *b) { return minmax(g, &MINIMUM_OP, a, b, false); }
tg_tensor *(tg_maximum)(tg_graph *g, tg_tensor *a, tg_tensor *b) { return minmax(g, &MAXIMUM_OP, a, b, true); }
