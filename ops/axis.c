// axis.c: reductions and scans along one axis beyond sum and mean: max, min and argmax,
// logsumexp, var and std, cumsum.
//
// x is seen around the axis as [outer, n, inner] (tg_split_at); element (o, a, i) is at
// (o*n + a)*inner + i, and a reduction writes [outer, inner]. Sums run in double. As in
// PyTorch: max and min return the first extreme value along the axis (a NaN counts as the
// extreme) and send the whole gradient to it; logsumexp of a row whose max is infinite shifts
// by 0 instead; var divides by n - 1 when unbiased (NaN or inf when that is not positive).
#include <math.h>
#include <string.h>

#include "tg_internal.h"
#include "tg_ops.h"

// The output shape of reducing shape along axis.
static tg_shape reduced_shape(tg_shape s, int axis, bool keepdim) {
    if (keepdim) {
        s.d[axis] = 1;
    } else {
        for (int d = axis; d + 1 < s.n; d++) s.d[d] = s.d[d + 1];
        s.n--;
    }
    return s;
}

// Checks x (float unless any_dtype) and normalises axis; a reduction over an empty axis is
// refused where it has no value (max, min, argmax).
static bool check_axis_op(tg_graph *g, const char *op, tg_tensor *x, int *axis, bool need_elements) {
    if (!tg_check_float(g, op, 1, x)) return false;
    if (x->shape.n == 0) {
        tg_fail(g, op, "input is a scalar (shape []); this op works along an axis of a tensor of at least one dimension");
        return false;
    }
    if (!tg_check_axis(g, op, x->shape, 0, axis)) return false;
    if (need_elements && x->shape.d[*axis] == 0) {
        tg_fail(g, op, "axis %d of %s is empty: there is no extreme value to take", *axis, TG_SHAPE_STR(x->shape));
        return false;
    }
    return true;
}

// --- max and min: the first extreme along the axis, and its index ---

typedef struct {
    int axis;
    const int32_t *index; // [outer, inner]: where each output came from along the axis
} extreme_state;

static void extreme_backward(tg_graph *g, tg_node *n) {
    (void)g;
    tg_tensor *x = n->in[0], *y = n->out;
    const extreme_state *s = TG_STATE(n, extreme_state);
    tg_axis_split p = tg_split_at(x->shape, s->axis);
    TG_DISPATCH(y->dtype, {
        const T *gy = y->grad; // [outer, inner]
        T *gx = x->grad;       // [outer, n, inner]
        for (int64_t o = 0; o < p.outer; o++)
            for (int64_t i = 0; i < p.inner; i++) gx[(o * p.n + s->index[o * p.inner + i]) * p.inner + i] += gy[o * p.inner + i];
    });
}

static const tg_op MAX_AXIS_OP = {.name = "max_axis", .backward = extreme_backward};
static const tg_op MIN_AXIS_OP = {.name = "min_axis", .backward = extreme_backward};

// Index along the axis of the first maximum (max) or minimum of each [outer, inner] row.
static int32_t *find_extremes(tg_graph *g, const tg_tensor *x, tg_axis_split p, bool max) {
    int32_t *index = tg_arena_alloc(g, (size_t)(p.outer * p.inner) * sizeof *index); // [outer, inner]
    TG_DISPATCH(x->dtype, {
        const T *xv = x->data; // [outer, n, inner]
        for (int64_t o = 0; o < p.outer; o++)
            for (int64_t i = 0; i < p.inner; i++) {
                int32_t at = 0;
                T best = xv[o * p.n * p.inner + i];
                for (int64_t a = 1; a < p.n && best == best; a++) { // a NaN, once found, stays
                    T v = xv[(o * p.n + a) * p.inner + i];
                    if ((max ? v > best : v < best) || v != v) {
                        best = v;
                        at = (int32_t)a;
                    }
                }
                index[o * p.inner + i] = at;
            }
    });
    return index;
}

static tg_tensor *extreme(tg_graph *g, const tg_op *op, tg_tensor *x, int axis, bool keepdim, bool max) {
    if (!check_axis_op(g, op->name, x, &axis, true)) return NULL;
    tg_axis_split p = tg_split_at(x->shape, axis);
    int32_t *index = find_extremes(g, x, p, max);
    tg_tensor *y = tg_new_tensor(g, x->dtype, reduced_shape(x->shape, axis, keepdim));
    size_t es = tg_dtype_size(x->dtype);
    for (int64_t o = 0; o < p.outer; o++)
        for (int64_t i = 0; i < p.inner; i++)
            memcpy((char *)y->data + (size_t)(o * p.inner + i) * es,
                   (const char *)x->data + (size_t)((o * p.n + index[o * p.inner + i]) * p.inner + i) * es, es);
    tg_node *n = tg_record(g, op, y, 1, x);
    TG_SAVE(g, n, extreme_state, {.axis = axis, .index = index});
    return y;
}

tg_tensor *(tg_max_axis)(tg_graph *g, tg_tensor *x, int axis, bool keepdim) {
    return extreme(g, &MAX_AXIS_OP, x, axis, keepdim, true);
}
tg_tensor *(tg_min_axis)(tg_graph *g, tg_tensor *x, int axis, bool keepdim) {
    return extreme(g, &MIN_AXIS_OP, x, axis, keepdim, false);
}

tg_tensor *(tg_argmax)(tg_graph *g, tg_tensor *x, int axis, bool keepdim) {
    if (!check_axis_op(g, "argmax", x, &axis, true)) return NULL;
    tg_axis_split p = tg_split_at(x->shape, axis);
    tg_tensor *y = tg_new_tensor(g, TG_I32, reduced_shape(x->shape, axis, keepdim));
    memcpy(y->data, find_extremes(g, x, p, true), (size_t)y->numel * sizeof(int32_t));
    return y; // int32: no gradient, no node
}

// --- logsumexp: y = m + log(sum exp(x - m)), m the row's max (0 where that is infinite) ---

typedef struct {
    int axis;
} logsumexp_state;

static void logsumexp_backward(tg_graph *g, tg_node *n) {
    (void)g;
    tg_tensor *x = n->in[0], *y = n->out;
    tg_axis_split p = tg_split_at(x->shape, TG_STATE(n, logsumexp_state)->axis);
    TG_DISPATCH(y->dtype, {
        const T *xv = x->data, *yv = y->data, *gy = y->grad; // [outer, n, inner], [outer, inner] x2
        T *gx = x->grad;                                     // [outer, n, inner]
        for (int64_t o = 0; o < p.outer; o++)
            for (int64_t a = 0; a < p.n; a++)
                for (int64_t i = 0; i < p.inner; i++) {
                    int64_t k = (o * p.n + a) * p.inner + i, r = o * p.inner + i;
                    gx[k] += (T)((double)gy[r] * exp((double)xv[k] - (double)yv[r]));
                }
    });
}

static const tg_op LOGSUMEXP_OP = {.name = "logsumexp", .backward = logsumexp_backward};

tg_tensor *(tg_logsumexp)(tg_graph *g, tg_tensor *x, int axis, bool keepdim) {
    if (!check_axis_op(g, "logsumexp", x, &axis, false)) return NULL;
    tg_axis_split p = tg_split_at(x->shape, axis);
    tg_tensor *y = tg_new_tensor(g, x->dtype, reduced_shape(x->shape, axis, keepdim));
    TG_DISPATCH(x->dtype, {
        const T *xv = x->data; // [outer, n, inner]
        T *yv = y->data;       // [outer, inner]
        for (int64_t o = 0; o < p.outer; o++)
            for (int64_t i = 0; i < p.inner; i++) {
                double m = -INFINITY, s = 0;
                for (int64_t a = 0; a < p.n; a++) m = fmax(m, (double)xv[(o * p.n + a) * p.inner + i]);
                if (isinf(m)) m = 0;
                for (int64_t a = 0; a < p.n; a++) s += exp((double)xv[(o * p.n + a) * p.inner + i] - m);
                yv[o * p.inner + i] = (T)(log(s) + m);
            }
    });
    tg_node *n = tg_record(g, &LOGSUMEXP_OP, y, 1, x);
    TG_SAVE(g, n, logsumexp_state, {.axis = axis});
    return y;
}

// --- var and std: sum (x - mean)^2 / (n - correction), and its square root ---

typedef struct {
    int axis;
    bool is_std;
    double divisor;      // n - correction
    const double *mean;  // [outer, inner]
} moments_state;

static void moments_backward(tg_graph *g, tg_node *n) {
    (void)g;
    tg_tensor *x = n->in[0], *y = n->out;
    const moments_state *s = TG_STATE(n, moments_state);
    tg_axis_split p = tg_split_at(x->shape, s->axis);
    TG_DISPATCH(y->dtype, {
        const T *xv = x->data, *yv = y->data, *gy = y->grad; // [outer, n, inner], [outer, inner] x2
        T *gx = x->grad;                                     // [outer, n, inner]
        for (int64_t o = 0; o < p.outer; o++)
            for (int64_t a = 0; a < p.n; a++)
                for (int64_t i = 0; i < p.inner; i++) {
                    int64_t k = (o * p.n + a) * p.inner + i, r = o * p.inner + i;
                    double d = (double)xv[k] - s->mean[r]; // d var / d x = 2 d / divisor
                    double dv = 2 * d / s->divisor;
                    gx[k] += (T)((double)gy[r] * (s->is_std ? dv / (2 * (double)yv[r]) : dv));
                }
    });
}

static const tg_op VAR_OP = {.name = "var", .backward = moments_backward};
static const tg_op STD_OP = {.name = "std", .backward = moments_backward};

static tg_tensor *moments(tg_graph *g, const tg_op *op, tg_tensor *x, int axis, bool unbiased, bool keepdim) {
    bool is_std = op == &STD_OP;
    if (!check_axis_op(g, op->name, x, &axis, false)) return NULL;
    tg_axis_split p = tg_split_at(x->shape, axis);
    double divisor = (double)p.n - (unbiased ? 1 : 0);
    double *mean = tg_arena_alloc(g, (size_t)(p.outer * p.inner) * sizeof *mean); // [outer, inner]
    tg_tensor *y = tg_new_tensor(g, x->dtype, reduced_shape(x->shape, axis, keepdim));
    TG_DISPATCH(x->dtype, {
        const T *xv = x->data; // [outer, n, inner]
        T *yv = y->data;       // [outer, inner]
        for (int64_t o = 0; o < p.outer; o++)
            for (int64_t i = 0; i < p.inner; i++) {
                double m = 0, ss = 0;
                for (int64_t a = 0; a < p.n; a++) m += xv[(o * p.n + a) * p.inner + i];
                m /= (double)p.n;
                for (int64_t a = 0; a < p.n; a++) {
                    double d = (double)xv[(o * p.n + a) * p.inner + i] - m;
                    ss += d * d;
                }
                double v = ss / divisor; // divisor 0: inf, or NaN for 0/0, as PyTorch
                mean[o * p.inner + i] = m;
                yv[o * p.inner + i] = (T)(is_std ? sqrt(v) : v);
            }
    });
    tg_node *n = tg_record(g, op, y, 1, x);
    TG_SAVE(g, n, moments_state, {.axis = axis, .is_std = is_std, .divisor = divisor, .mean = mean});
    return y;
}

tg_tensor *(tg_var)(tg_graph *g, tg_tensor *x, int axis, bool unbiased, bool keepdim) {
    return moments(g, &VAR_OP, x, axis, unbiased, keepdim);
}
tg_tensor *(tg_std)(tg_graph *g, tg_tensor *x, int axis, bool unbiased, bool keepdim) {
    return moments(g, &STD_OP, x, axis, unbiased, keepdim);
}

// --- cumsum: y[.., a, ..] = sum of x[.., 0..a, ..]; backward is the reverse cumulative sum ---

typedef struct {
    int axis;
} cumsum_state;

static void cumsum_backward(tg_graph *g, tg_node *n) {
    (void)g;
    tg_tensor *x = n->in[0], *y = n->out;
    tg_axis_split p = tg_split_at(x->shape, TG_STATE(n, cumsum_state)->axis);
    TG_DISPATCH(y->dtype, {
        const T *gy = y->grad; // [outer, n, inner]
        T *gx = x->grad;       // [outer, n, inner]
        for (int64_t o = 0; o < p.outer; o++)
            for (int64_t i = 0; i < p.inner; i++) {
                double s = 0;
                for (int64_t a = p.n; a-- > 0;) {
                    s += gy[(o * p.n + a) * p.inner + i];
                    gx[(o * p.n + a) * p.inner + i] += (T)s;
                }
            }
    });
}

static const tg_op CUMSUM_OP = {.name = "cumsum", .backward = cumsum_backward};

tg_tensor *(tg_cumsum)(tg_graph *g, tg_tensor *x, int axis) {
    if (!check_axis_op(g, "cumsum", x, &axis, false)) return NULL;
    tg_axis_split p = tg_split_at(x->shape, axis);
    tg_tensor *y = tg_new_tensor(g, x->dtype, x->shape);
    TG_DISPATCH(x->dtype, {
        const T *xv = x->data; // [outer, n, inner]
        T *yv = y->data;       // [outer, n, inner]
        for (int64_t o = 0; o < p.outer; o++)
            for (int64_t i = 0; i < p.inner; i++) {
                double s = 0;
                for (int64_t a = 0; a < p.n; a++) {
                    s += xv[(o * p.n + a) * p.inner + i];
                    yv[(o * p.n + a) * p.inner + i] = (T)s;
                }
            }
    });
    tg_node *n = tg_record(g, &CUMSUM_OP, y, 1, x);
    TG_SAVE(g, n, cumsum_state, {.axis = axis});
    return y;
}
