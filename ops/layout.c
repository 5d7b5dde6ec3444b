// layout.c: flip, permute and constant padding: ops that move elements to new places.
//
// Each forward is a copy through an index map and each backward adds the output's gradient
// back through the same map. x is seen around an axis as [outer, n, inner] (tg_split_at).
#include <string.h>

#include "tg_internal.h"
#include "tg_ops.h"

// --- flip: y[o, a, i] = x[o, n-1-a, i] ---

typedef struct {
    int axis;
} flip_state;

static void flip_backward(tg_graph *g, tg_node *n) {
    (void)g;
    tg_tensor *x = n->in[0], *y = n->out;
    tg_axis_split p = tg_split_at(x->shape, TG_STATE(n, flip_state)->axis);
    TG_DISPATCH(y->dtype, {
        const T *gy = y->grad; // [outer, n, inner]
        T *gx = x->grad;       // [outer, n, inner]
        for (int64_t o = 0; o < p.outer; o++)
            for (int64_t a = 0; a < p.n; a++)
                for (int64_t i = 0; i < p.inner; i++)
                    gx[(o * p.n + (p.n - 1 - a)) * p.inner + i] += gy[(o * p.n + a) * p.inner + i];
    });
}

static const tg_op FLIP_OP = {.name = "flip", .backward = flip_backward};

tg_tensor *(tg_flip)(tg_graph *g, tg_tensor *x, int axis) {
    if (!x) return tg_fail(g, "flip", "input is NULL (did an earlier op fail?)");
    if (!tg_check_axis(g, "flip", x->shape, 0, &axis)) return NULL;
    tg_axis_split p = tg_split_at(x->shape, axis);
    tg_tensor *y = tg_new_tensor(g, x->dtype, x->shape);
    size_t run = (size_t)p.inner * tg_dtype_size(x->dtype); // one [inner] run, moved whole
    for (int64_t o = 0; o < p.outer; o++)
        for (int64_t a = 0; a < p.n; a++)
            if (run)
                memcpy((char *)y->data + (size_t)(o * p.n + a) * run,
                       (const char *)x->data + (size_t)(o * p.n + (p.n - 1 - a)) * run, run);
    tg_node *n = tg_record(g, &FLIP_OP, y, 1, x);
    TG_SAVE(g, n, flip_state, {.axis = axis});
    return y;
}

// --- permute: y's axis d is x's axis perm[d] ---

typedef struct {
    int64_t size[4];    // y's sizes, padded on the left with 1
    int64_t xstride[4]; // the element stride in x of each of y's (padded) axes
} permute_state;

// Visits y's elements in order with k their offset in x.
#define PERMUTE_LOOP(s, BODY)                                                                                \
    do {                                                                                                     \
        int64_t o = 0;                                                                                       \
        for (int64_t i0 = 0; i0 < (s)->size[0]; i0++)                                                        \
            for (int64_t i1 = 0; i1 < (s)->size[1]; i1++)                                                    \
                for (int64_t i2 = 0; i2 < (s)->size[2]; i2++)                                                \
                    for (int64_t i3 = 0; i3 < (s)->size[3]; i3++, o++) {                                     \
                        int64_t k = i0 * (s)->xstride[0] + i1 * (s)->xstride[1] + i2 * (s)->xstride[2] +     \
                                    i3 * (s)->xstride[3];                                                    \
                        BODY                                                                                 \
                    }                                                                                        \
    } while (0)

static void permute_backward(tg_graph *g, tg_node *n) {
    (void)g;
    tg_tensor *x = n->in[0], *y = n->out;
    const permute_state *s = TG_STATE(n, permute_state);
    TG_DISPATCH(y->dtype, {
        const T *gy = y->grad; // y's shape
        T *gx = x->grad;       // x's shape
        PERMUTE_LOOP(s, gx[k] += gy[o];);
    });
}

static const tg_op PERMUTE_OP = {.name = "permute", .backward = permute_backward};

tg_tensor *(tg_permute)(tg_graph *g, tg_tensor *x, int n_axes, const int *perm) {
    if (!x) return tg_fail(g, "permute", "input is NULL (did an earlier op fail?)");
    if (!perm || n_axes != x->shape.n)
        return tg_fail(g, "permute", "input %s has %d axes; perm must list each of them once (got %d)",
                       TG_SHAPE_STR(x->shape), x->shape.n, perm ? n_axes : 0);
    int nd = x->shape.n, seen = 0, axes[4];
    int64_t stride[4], s = 1;
    for (int d = nd; d-- > 0;) {
        stride[d] = s;
        s *= x->shape.d[d];
    }
    for (int d = 0; d < nd; d++) {
        axes[d] = perm[d];
        if (!tg_check_axis(g, "permute", x->shape, 0, &axes[d])) return NULL;
        if (seen & (1 << axes[d]))
            return tg_fail(g, "permute", "perm names axis %d of %s twice", axes[d], TG_SHAPE_STR(x->shape));
        seen |= 1 << axes[d];
    }
    permute_state st = {{1, 1, 1, 1}, {0, 0, 0, 0}};
    tg_shape ys = x->shape;
    for (int d = 0; d < nd; d++) {
        ys.d[d] = x->shape.d[axes[d]];
        st.size[4 - nd + d] = ys.d[d];
        st.xstride[4 - nd + d] = stride[axes[d]];
    }
    tg_tensor *y = tg_new_tensor(g, x->dtype, ys);
    size_t es = tg_dtype_size(x->dtype);
    const permute_state *sp = &st;
    PERMUTE_LOOP(sp, memcpy((char *)y->data + (size_t)o * es, (const char *)x->data + (size_t)k * es, es););
    tg_node *n = tg_record(g, &PERMUTE_OP, y, 1, x);
    tg_node_save(g, n, &st, sizeof st);
    return y;
}

// --- pad: before values, x, after values along an axis ---

typedef struct {
    int axis;
    int64_t before; // positions added before x's along axis
} pad_state;

static void pad_backward(tg_graph *g, tg_node *n) {
    (void)g;
    tg_tensor *x = n->in[0], *y = n->out;
    const pad_state *s = TG_STATE(n, pad_state);
    tg_axis_split px = tg_split_at(x->shape, s->axis), py = tg_split_at(y->shape, s->axis);
    TG_DISPATCH(y->dtype, {
        const T *gy = y->grad; // [outer, before + n + after, inner]
        T *gx = x->grad;       // [outer, n, inner]
        for (int64_t o = 0; o < px.outer; o++)
            for (int64_t a = 0; a < px.n; a++)
                for (int64_t i = 0; i < px.inner; i++)
                    gx[(o * px.n + a) * px.inner + i] += gy[(o * py.n + s->before + a) * px.inner + i];
    });
}

static const tg_op PAD_OP = {.name = "pad", .backward = pad_backward};

tg_tensor *(tg_pad)(tg_graph *g, tg_tensor *x, int axis, int64_t before, int64_t after, double value) {
    if (!tg_check_float(g, "pad", 1, x)) return NULL;
    if (!tg_check_axis(g, "pad", x->shape, 0, &axis)) return NULL;
    if (before < 0 || after < 0 || before > INT32_MAX || after > INT32_MAX)
        return tg_fail(g, "pad", "before %lld and after %lld along axis %d of %s: each must be 0 to 2^31-1",
                       (long long)before, (long long)after, axis, TG_SHAPE_STR(x->shape));
    tg_shape ys = x->shape;
    ys.d[axis] += before + after;
    if (!tg_shape_fits(ys)) return tg_fail(g, "pad", "the padded shape %s is too large", TG_SHAPE_STR(ys));
    tg_axis_split px = tg_split_at(x->shape, axis), py = tg_split_at(ys, axis);
    tg_tensor *y = tg_new_tensor(g, x->dtype, ys);
    TG_DISPATCH(x->dtype, {
        const T *xv = x->data; // [outer, n, inner]
        T *yv = y->data;       // [outer, before + n + after, inner]
        for (int64_t o = 0; o < py.outer; o++)
            for (int64_t a = 0; a < py.n; a++) {
                int64_t from = a - before; // position in x, or outside it
                for (int64_t i = 0; i < py.inner; i++)
                    yv[(o * py.n + a) * py.inner + i] =
                        from >= 0 && from < px.n ? xv[(o * px.n + from) * px.inner + i] : (T)value;
            }
    });
    tg_node *n = tg_record(g, &PAD_OP, y, 1, x);
    TG_SAVE(g, n, pad_state, {.axis = axis, .before = before});
    return y;
}
