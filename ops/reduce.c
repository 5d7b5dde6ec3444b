// reduce.c: sum and mean, over all elements or along one axis.
//
// All four are one op: y[o, i] = scale * sum_a x[o, a, i], where (outer, n, inner) splits
// x around the reduced axis (a whole-tensor reduction is outer = inner = 1, n = numel) and
// scale is 1 for sum, 1/n for mean. Backward is the same split read the other way:
// gx[o, a, i] += scale * gy[o, i].
// Sums accumulate in double whatever the dtype: a float32 running sum over many elements
// loses digits (10^5 additions of 0.1f drift by 1.4e-4 relative), a double one does not.
// The mean of nothing (n = 0) is NaN, as in PyTorch; the sum of nothing is 0.
// A scalar takes axis 0 or -1 as if it were [1], and stays a scalar, as in PyTorch.
#include <math.h>
#include <string.h>

#include "tg_internal.h"
#include "tg_ops.h"

// The split of x for a reduction over all of it (all) or along axis.
static tg_axis_split reduce_split(const tg_tensor *x, bool all, int axis) {
    if (all) return (tg_axis_split){1, x->numel, 1};
    return tg_split_at(x->shape, axis);
}

typedef struct {
    int axis;     // normalised; unused when all
    bool all;     // over every element
    double scale; // 1 for a sum, 1/n for a mean
} reduce_state;

TG_VECTORIZE static void reduce_backward(tg_graph *g, tg_node *n) {
    (void)g;
    tg_tensor *x = n->in[0], *y = n->out;
    if (!x->grad) return;
    const reduce_state *s = TG_STATE(n, reduce_state);
    tg_axis_split p = reduce_split(x, s->all, s->axis);
    double scale_ = s->scale;
    TG_DISPATCH(y->dtype, {
        const T *gy = y->grad; // [outer, inner]
        T *gx = x->grad;       // [outer, n, inner]
        T scale = (T)scale_;
        for (int64_t o = 0; o < p.outer; o++)
            for (int64_t a = 0; a < p.n; a++) {
                T *row = gx + (o * p.n + a) * p.inner;
                const T *src = gy + o * p.inner;
                for (int64_t i = 0; i < p.inner; i++) row[i] += scale * src[i];
            }
    });
}

static const tg_op SUM_OP = {.name = "sum", .backward = reduce_backward};
static const tg_op MEAN_OP = {.name = "mean", .backward = reduce_backward};
static const tg_op SUM_AXIS_OP = {.name = "sum_axis", .backward = reduce_backward};
static const tg_op MEAN_AXIS_OP = {.name = "mean_axis", .backward = reduce_backward};

// Normalises axis for x; a scalar takes 0 or -1. False (reported) when out of range.
static bool check_reduce_axis(tg_graph *g, const char *op, const tg_tensor *x, int *axis) {
    if (x->shape.n > 0) return tg_check_axis(g, op, x->shape, 0, axis);
    if (*axis == 0 || *axis == -1) {
        *axis = 0;
        return true;
    }
    tg_fail(g, op, "axis %d is out of range for a scalar (shape []); a scalar takes axis 0 or -1", *axis);
    return false;
}

// Sum (mean = false) or mean of x: of all of it (all) or along axis.
TG_VECTORIZE static tg_tensor *reduce(tg_graph *g, const tg_op *op, tg_tensor *x, bool all, int axis, bool keepdim, bool mean) {
    if (!tg_check_float(g, op->name, 1, x)) return NULL;
    if (!all && !check_reduce_axis(g, op->name, x, &axis)) return NULL;

    tg_shape shape = tg_shape0();
    if (!all && x->shape.n > 0) {
        shape = x->shape;
        if (keepdim) {
            shape.d[axis] = 1;
        } else {
            for (int d = axis; d + 1 < shape.n; d++) shape.d[d] = shape.d[d + 1];
            shape.n--;
        }
    }
    tg_axis_split p = reduce_split(x, all, axis);
    double scale = !mean ? 1.0 : p.n ? 1.0 / (double)p.n : NAN;
    tg_tensor *y = tg_new_tensor(g, x->dtype, shape);

    double *acc = tg_arena_alloc(g, (size_t)(p.outer * p.inner) * sizeof *acc); // [outer, inner]
    memset(acc, 0, (size_t)(p.outer * p.inner) * sizeof *acc);
    TG_DISPATCH(x->dtype, {
        const T *xv = x->data; // [outer, n, inner]
        T *yv = y->data;       // [outer, inner]
        for (int64_t o = 0; o < p.outer; o++)
            for (int64_t a = 0; a < p.n; a++) {
                const T *row = xv + (o * p.n + a) * p.inner;
                double *dst = acc + o * p.inner;
                for (int64_t i = 0; i < p.inner; i++) dst[i] += row[i];
            }
        for (int64_t k = 0; k < p.outer * p.inner; k++) yv[k] = (T)(!mean ? acc[k] : p.n ? acc[k] / (double)p.n : NAN);
    });

    tg_node *n = tg_record(g, op, y, 1, x);
    TG_SAVE(g, n, reduce_state, {.axis = axis, .all = all, .scale = scale});
    return y;
}

tg_tensor *(tg_sum)(tg_graph *g, tg_tensor *x) { return reduce(g, &SUM_OP, x, true, 0, false, false); }
tg_tensor *(tg_mean)(tg_graph *g, tg_tensor *x) { return reduce(g, &MEAN_OP, x, true, 0, false, true); }

tg_tensor *(tg_sum_axis)(tg_graph *g, tg_tensor *x, int axis, bool keepdim) {
    return reduce(g, &SUM_AXIS_OP, x, false, axis, keepdim, false);
}

tg_tensor *(tg_mean_axis)(tg_graph *g, tg_tensor *x, int axis, bool keepdim) {
    return reduce(g, &MEAN_AXIS_OP, x, false, axis, keepdim, true);
}
