// select.c: where, masked_fill and dropout: elementwise choices between values.
//
// where and masked_fill broadcast through a tg_bcast plan, like arith.c: backward writes
// through the same plan, so a gradient landing on a stride-0 (broadcast) position sums over
// that dimension by itself. Dropout keeps its mask on the node, one byte an element, so
// backward multiplies by exactly the mask forward drew.
#include <string.h>

#include "tg_internal.h"
#include "tg_ops.h"

// Inputs in plan order: the condition or mask (ic), then a (ia) and b (ib).
#define BCAST3_LOOP(p, BODY) TG_BCAST_LOOP(p, ic, ia, ib, BODY)

// --- where: y = cond ? a : b, all three broadcast ---

typedef struct {
    tg_bcast plan; // how the condition or mask and the values broadcast to y
} select_state;

TG_VECTORIZE static void where_backward(tg_graph *g, tg_node *n) {
    (void)g;
    const tg_bcast *p = &TG_STATE(n, select_state)->plan;
    tg_tensor *cond = n->in[0], *a = n->in[1], *b = n->in[2], *y = n->out;
    const int32_t *c = cond->data;
    TG_DISPATCH(y->dtype, {
        const T *gy = y->grad;
        T *ga = a->grad, *gb = b->grad;
        if (ga) BCAST3_LOOP(p, if (c[ic]) ga[ia] += gy[o];);
        if (gb) BCAST3_LOOP(p, if (!c[ic]) gb[ib] += gy[o];);
    });
}

static const tg_op WHERE_OP = {.name = "where", .backward = where_backward};

TG_VECTORIZE tg_tensor *(tg_where)(tg_graph *g, tg_tensor *cond, tg_tensor *a, tg_tensor *b) {
    if (!tg_check_i32(g, "where", cond, "cond") || !tg_check_float(g, "where", 2, a, b)) return NULL;
    tg_shape shapes[3] = {cond->shape, a->shape, b->shape}, shape;
    tg_bcast plan, *p = &plan;
    if (!tg_broadcast(g, "where", 3, shapes, &shape, p)) return NULL;
    tg_tensor *y = tg_new_tensor(g, a->dtype, shape);
    const int32_t *c = cond->data;
    TG_DISPATCH(y->dtype, {
        const T *av = a->data, *bv = b->data;
        T *yv = y->data;
        BCAST3_LOOP(p, yv[o] = c[ic] ? av[ia] : bv[ib];);
    });
    tg_node *n = tg_record(g, &WHERE_OP, y, 3, cond, a, b);
    TG_SAVE(g, n, select_state, {.plan = plan});
    return y;
}

// --- masked_fill: y = mask ? value : x, mask broadcast to x's shape ---
// The plan has the mask as input 0; x has the output's shape, so x's element is o itself.

TG_VECTORIZE static void masked_fill_backward(tg_graph *g, tg_node *n) {
    (void)g;
    const tg_bcast *p = &TG_STATE(n, select_state)->plan;
    tg_tensor *x = n->in[0], *mask = n->in[1], *y = n->out;
    const int32_t *m = mask->data;
    if (!x->grad) return;
    TG_DISPATCH(y->dtype, {
        const T *gy = y->grad;
        T *gx = x->grad;
        BCAST3_LOOP(p, if (!m[ic]) gx[o] += gy[o];);
    });
}

static const tg_op MASKED_FILL_OP = {.name = "masked_fill", .backward = masked_fill_backward};

TG_VECTORIZE tg_tensor *(tg_masked_fill)(tg_graph *g, tg_tensor *x, tg_tensor *mask, double value) {
    if (!tg_check_float(g, "masked_fill", 1, x) || !tg_check_i32(g, "masked_fill", mask, "mask")) return NULL;
    tg_shape shapes[2] = {mask->shape, x->shape}, shape;
    tg_bcast plan, *p = &plan;
    if (!tg_broadcast(g, "masked_fill", 2, shapes, &shape, p)) return NULL;
    if (!tg_shape_equal(shape, x->shape)) {
        char sm[64], sx[64];
        return tg_fail(g, "masked_fill", "mask %s does not broadcast to x's shape %s; the output keeps x's shape",
                       tg_shape_str(mask->shape, sm, sizeof sm), tg_shape_str(x->shape, sx, sizeof sx));
    }
    tg_tensor *y = tg_new_tensor(g, x->dtype, x->shape);
    const int32_t *m = mask->data;
    TG_DISPATCH(y->dtype, {
        const T *xv = x->data;
        T *yv = y->data, v = (T)value;
        BCAST3_LOOP(p, yv[o] = m[ic] ? v : xv[o];);
    });
    tg_node *n = tg_record(g, &MASKED_FILL_OP, y, 2, x, mask);
    TG_SAVE(g, n, select_state, {.plan = plan});
    return y;
}

// --- dropout: y = keep * x / (1 - p), keep drawn once per element ---

typedef struct {
    const unsigned char *keep; // [numel]: 1 where the element was kept
    double scale;              // 1/(1-p), or 0 for p = 1
} dropout_state;

TG_VECTORIZE static void dropout_backward(tg_graph *g, tg_node *n) {
    (void)g;
    tg_tensor *x = n->in[0], *y = n->out;
    const dropout_state *st = TG_STATE(n, dropout_state);
    const unsigned char *keep = st->keep; // [numel]
    if (!x->grad) return;
    TG_DISPATCH(y->dtype, {
        const T *gy = y->grad;
        T *gx = x->grad, s = (T)st->scale;
        // A select, which vectorizes, not a branch; adding -0 leaves every value as it was
        // (+0 too), so the result is the branch's bit for bit.
        for (int64_t i = 0; i < y->numel; i++) gx[i] += keep[i] ? gy[i] * s : (T)-0.0;
    });
}

static const tg_op DROPOUT_OP = {.name = "dropout", .backward = dropout_backward};

TG_VECTORIZE tg_tensor *(tg_dropout)(tg_graph *g, tg_tensor *x, double p, tg_rng *rng) {
    if (!tg_check_float(g, "dropout", 1, x)) return NULL;
    if (!(p >= 0 && p <= 1)) return tg_fail(g, "dropout", "p = %g; the drop probability must be in [0, 1]", p);
    if (!tg_graph_training(g) || p == 0) return x;
    if (!rng) return tg_fail(g, "dropout", "rng is NULL; training-mode dropout draws its mask from a generator");
    // One uniform draw per element in row-major order, kept when >= p: the same seed gives
    // the same mask. p = 1 keeps nothing; its scale is 0, not 1/0, as in PyTorch.
    double scale = p < 1 ? 1 / (1 - p) : 0;
    unsigned char *keep = tg_arena_alloc(g, (size_t)x->numel); // [numel]
    tg_rng r = *rng; // a local copy: its state stays in registers through the loop
    for (int64_t i = 0; i < x->numel; i++) keep[i] = tg_rng_bits_to_uniform(tg_rng_step(r.s)) >= p;
    *rng = r;
    tg_tensor *y = tg_new_tensor(g, x->dtype, x->shape);
    TG_DISPATCH(y->dtype, {
        const T *xv = x->data;
        T *yv = y->data, s = (T)scale;
        for (int64_t i = 0; i < y->numel; i++) yv[i] = keep[i] ? xv[i] * s : 0;
    });
    tg_node *n = tg_record(g, &DROPOUT_OP, y, 1, x);
    TG_SAVE(g, n, dropout_state, {.keep = keep, .scale = scale});
    return y;
}
