// softmax.c: softmax and log_softmax along any axis.
//
// Both split x around the axis into (outer, n, inner): each of the outer*inner rows is n
// elements inner apart. Both subtract the row's max before exp, so no exp overflows, and
// log_softmax is x - max - log(sum exp(x - max)): it never takes the log of a softmax that
// has underflowed to 0, so log_softmax(-1000, 0) is (-1000, 0), not (-inf, 0).
// Backward reads only the output, saved as the node's out:
//   softmax:     gx = y * (gy - sum_a gy*y)
//   log_softmax: gx = gy - exp(y) * sum_a gy
// Row sums accumulate in double. A scalar takes axis 0 or -1, as in PyTorch.
#include <math.h>

#include "tg_internal.h"
#include "tg_ops.h"


// Runs BODY once per row along the axis of split p: the row's elements are at
// base + a*step for a in [0, p.n).
#define FOR_EACH_ROW(p, BODY)                                                                               \
    for (int64_t o_ = 0; o_ < (p).outer; o_++)                                                              \
        for (int64_t i_ = 0; i_ < (p).inner; i_++) {                                                        \
            const int64_t base = o_ * (p).n * (p).inner + i_, step = (p).inner;                             \
            BODY                                                                                            \
        }

typedef struct {
    int axis; // normalised
} softmax_state;

TG_VECTORIZE static void softmax_backward(tg_graph *g, tg_node *n) {
    (void)g;
    tg_tensor *x = n->in[0], *y = n->out;
    if (!x->grad) return;
    tg_axis_split p = tg_split_at(x->shape, TG_STATE(n, softmax_state)->axis);
    TG_DISPATCH(y->dtype, {
        const T *yv = y->data, *gy = y->grad; // [outer, n, inner]
        T *gx = x->grad;                      // [outer, n, inner]
        FOR_EACH_ROW(p, {
            double dot = 0;
            for (int64_t a = 0; a < p.n; a++) dot += (double)gy[base + a * step] * yv[base + a * step];
            for (int64_t a = 0; a < p.n; a++) {
                int64_t k = base + a * step;
                gx[k] += yv[k] * (gy[k] - (T)dot);
            }
        });
    });
}

TG_VECTORIZE static void log_softmax_backward(tg_graph *g, tg_node *n) {
    (void)g;
    tg_tensor *x = n->in[0], *y = n->out;
    if (!x->grad) return;
    tg_axis_split p = tg_split_at(x->shape, TG_STATE(n, softmax_state)->axis);
    TG_DISPATCH(y->dtype, {
        const T *yv = y->data, *gy = y->grad; // [outer, n, inner]
        T *gx = x->grad;                      // [outer, n, inner]
        FOR_EACH_ROW(p, {
            double total = 0;
            for (int64_t a = 0; a < p.n; a++) total += gy[base + a * step];
            for (int64_t a = 0; a < p.n; a++) {
                int64_t k = base + a * step;
                gx[k] += gy[k] - (T)TG_EXP(yv[k]) * (T)total;
            }
        });
    });
}

static const tg_op SOFTMAX_OP = {.name = "softmax", .backward = softmax_backward};
static const tg_op LOG_SOFTMAX_OP = {.name = "log_softmax", .backward = log_softmax_backward};

TG_VECTORIZE static tg_tensor *softmax(tg_graph *g, const tg_op *op, tg_tensor *x, int axis, bool log_space) {
    if (!tg_check_float(g, op->name, 1, x)) return NULL;
    if (x->shape.n == 0) { // a scalar is a row of one
        if (axis != 0 && axis != -1)
            return tg_fail(g, op->name, "axis %d is out of range for a scalar (shape []); a scalar takes axis 0 or -1",
                           axis);
        axis = 0;
    } else if (!tg_check_axis(g, op->name, x->shape, 0, &axis)) {
        return NULL;
    }
    tg_axis_split p = tg_split_at(x->shape, axis);
    tg_tensor *y = tg_new_tensor(g, x->dtype, x->shape);
    TG_DISPATCH(x->dtype, {
        const T *xv = x->data; // [outer, n, inner]
        T *yv = y->data;       // [outer, n, inner]
        FOR_EACH_ROW(p, {
            T max = -(T)INFINITY;
            for (int64_t a = 0; a < p.n; a++) max = xv[base + a * step] > max ? xv[base + a * step] : max;
            double sum = 0;
            if (log_space) {
                for (int64_t a = 0; a < p.n; a++) sum += TG_EXP(xv[base + a * step] - max);
                T log_sum = (T)log(sum); // y = (x - max) - log_sum: no cancellation against max
                for (int64_t a = 0; a < p.n; a++) yv[base + a * step] = (xv[base + a * step] - max) - log_sum;
            } else {
                for (int64_t a = 0; a < p.n; a++) {
                    T e = (T)TG_EXP(xv[base + a * step] - max);
                    yv[base + a * step] = e;
                    sum += e;
                }
                for (int64_t a = 0; a < p.n; a++) yv[base + a * step] = (T)(yv[base + a * step] / sum);
            }
        });
    });
    tg_node *n = tg_record(g, op, y, 1, x);
    TG_SAVE(g, n, softmax_state, {.axis = axis});
    return y;
}

tg_tensor *(tg_softmax)(tg_graph *g, tg_tensor *x, int axis) { return softmax(g, &SOFTMAX_OP, x, axis, false); }
tg_tensor *(tg_log_softmax)(tg_graph *g, tg_tensor *x, int axis) { return softmax(g, &LOG_SOFTMAX_OP, x, axis, true); }
