// arith.c: add, sub, mul, div with broadcasting; neg and scalar add/mul.
#include "tg_internal.h"
#include "tg_ops.h"

#define BCAST_LOOP(p, BODY) TG_BCAST_LOOP(p, ia, ib, unused_, BODY)

typedef enum { ADD, SUB, MUL, DIV } binary_kind;

typedef struct {
    tg_bcast plan; // how a and b broadcast to y
    binary_kind kind;
} binary_state;

TG_VECTORIZE static void binary_backward(tg_graph *g, tg_node *n) {
    (void)g;
    const binary_state *s = TG_STATE(n, binary_state);
    const tg_bcast *p = &s->plan;
    tg_tensor *a = n->in[0], *b = n->in[1], *y = n->out;
    binary_kind kind = s->kind;
    TG_DISPATCH(y->dtype, {
        const T *av = a->data, *bv = b->data, *gy = y->grad;
        T *ga = a->grad, *gb = b->grad;
        switch (kind) {
        case ADD:
            if (ga) BCAST_LOOP(p, ga[ia] += gy[o];);
            if (gb) BCAST_LOOP(p, gb[ib] += gy[o];);
            break;
        case SUB:
            if (ga) BCAST_LOOP(p, ga[ia] += gy[o];);
            if (gb) BCAST_LOOP(p, gb[ib] -= gy[o];);
            break;
        case MUL:
            if (ga) BCAST_LOOP(p, ga[ia] += gy[o] * bv[ib];);
            if (gb) BCAST_LOOP(p, gb[ib] += gy[o] * av[ia];);
            break;
        case DIV:
            if (ga) BCAST_LOOP(p, ga[ia] += gy[o] / bv[ib];);
            if (gb) BCAST_LOOP(p, gb[ib] -= gy[o] * av[ia] / (bv[ib] * bv[ib]););
            break;
        }
    });
}

static const tg_op ADD_OP = {.name = "add", .backward = binary_backward};
static const tg_op SUB_OP = {.name = "sub", .backward = binary_backward};
static const tg_op MUL_OP = {.name = "mul", .backward = binary_backward};
static const tg_op DIV_OP = {.name = "div", .backward = binary_backward};

TG_VECTORIZE static tg_tensor *binary(tg_graph *g, const tg_op *op, binary_kind kind, tg_tensor *a, tg_tensor *b) {
    if (!tg_check_float(g, op->name, 2, a, b)) return NULL;
    tg_shape shapes[2] = {a->shape, b->shape}, shape;
    tg_bcast plan, *p = &plan;
    if (!tg_broadcast(g, op->name, 2, shapes, &shape, p)) return NULL;
    tg_tensor *y = tg_new_tensor(g, a->dtype, shape);
    TG_DISPATCH(y->dtype, {
        const T *av = a->data, *bv = b->data;
        T *yv = y->data;
        switch (kind) {
        case ADD: BCAST_LOOP(p, yv[o] = av[ia] + bv[ib];); break;
        case SUB: BCAST_LOOP(p, yv[o] = av[ia] - bv[ib];); break;
        case MUL: BCAST_LOOP(p, yv[o] = av[ia] * bv[ib];); break;
        case DIV: BCAST_LOOP(p, yv[o] = av[ia] / bv[ib];); break;
        }
    });
    tg_node *n = tg_record(g, op, y, 2, a, b);
    TG_SAVE(g, n, binary_state, {.plan = plan, .kind = kind});
    return y;
}

tg_tensor *(tg_add)(tg_graph *g, tg_tensor *a, tg_tensor *b) { return binary(g, &ADD_OP, ADD, a, b); }
tg_tensor *(tg_sub)(tg_graph *g, tg_tensor *a, tg_tensor *b) { return binary(g, &SUB_OP, SUB, a, b); }
tg_tensor *(tg_mul)(tg_graph *g, tg_tensor *a, tg_tensor *b) { return binary(g, &MUL_OP, MUL, a, b); }
tg_tensor *(tg_div)(tg_graph *g, tg_tensor *a, tg_tensor *b) { return binary(g, &DIV_OP, DIV, a, b); }

// --- y = scale * x + shift: neg, add_scalar and mul_scalar ---

typedef struct {
    double scale; // d y / d x
} affine_state;

TG_VECTORIZE static void affine_backward(tg_graph *g, tg_node *n) {
    (void)g;
    tg_tensor *x = n->in[0], *y = n->out;
    double scale_ = TG_STATE(n, affine_state)->scale;
    TG_DISPATCH(y->dtype, {
        const T *gy = y->grad;
        T *gx = x->grad, scale = (T)scale_;
        for (int64_t i = 0; i < y->numel; i++) gx[i] += scale * gy[i];
    });
}

static const tg_op NEG_OP = {.name = "neg", .backward = affine_backward};
static const tg_op ADD_SCALAR_OP = {.name = "add_scalar", .backward = affine_backward};
static const tg_op MUL_SCALAR_OP = {.name = "mul_scalar", .backward = affine_backward};

TG_VECTORIZE static tg_tensor *affine(tg_graph *g, const tg_op *op, tg_tensor *x, double scale, double shift) {
    if (!tg_check_float(g, op->name, 1, x)) return NULL;
    tg_tensor *y = tg_new_tensor(g, x->dtype, x->shape);
    TG_DISPATCH(y->dtype, {
        const T *xv = x->data;
        T *yv = y->data, s = (T)scale, c = (T)shift;
        for (int64_t i = 0; i < y->numel; i++) yv[i] = s * xv[i] + c;
    });
    tg_node *n = tg_record(g, op, y, 1, x);
    TG_SAVE(g, n, affine_state, {.scale = scale});
    return y;
}

tg_tensor *(tg_neg)(tg_graph *g, tg_tensor *x) { return affine(g, &NEG_OP, x, -1.0, 0.0); }
tg_tensor *(tg_add_scalar)(tg_graph *g, tg_tensor *x, double c) { return affine(g, &ADD_SCALAR_OP, x, 1.0, c); }
tg_tensor *(tg_mul_scalar)(tg_graph *g, tg_tensor *x, double c) { return affine(g, &MUL_SCALAR_OP, x, c, 0.0); }
