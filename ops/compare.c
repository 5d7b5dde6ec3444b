// compare.c: comparisons that make int32 masks for tg_where and tg_masked_fill, and the cast
// between float32 and float64.
//
// A comparison broadcasts as the arithmetic ops do and writes 1 where it holds, 0 elsewhere
// (a NaN compares false, so `ne` is not offered: write 1 - eq). Its output is an int32
// constant: no gradient flows through a comparison, as none does in PyTorch.
// The cast writes its input's values in the other float dtype; its gradient is cast back.
#include "tg_internal.h"
#include "tg_ops.h"

typedef enum { GT, GE, LT, LE, EQ } compare_kind;

static tg_tensor *compare(tg_graph *g, const char *op, compare_kind kind, tg_tensor *a, tg_tensor *b) {
    if (!tg_check_float(g, op, 2, a, b)) return NULL;
    tg_shape shapes[2] = {a->shape, b->shape}, shape;
    tg_bcast plan;
    if (!tg_broadcast(g, op, 2, shapes, &shape, &plan)) return NULL;
    tg_tensor *y = tg_new_tensor(g, TG_I32, shape);
    const tg_bcast *p = &plan;
    int32_t *yv = y->data; // [y's shape]
    TG_DISPATCH(a->dtype, {
        const T *av = a->data, *bv = b->data;
        switch (kind) {
        case GT: TG_BCAST_LOOP(p, ia, ib, unused_, yv[o] = av[ia] > bv[ib];); break;
        case GE: TG_BCAST_LOOP(p, ia, ib, unused_, yv[o] = av[ia] >= bv[ib];); break;
        case LT: TG_BCAST_LOOP(p, ia, ib, unused_, yv[o] = av[ia] < bv[ib];); break;
        case LE: TG_BCAST_LOOP(p, ia, ib, unused_, yv[o] = av[ia] <= bv[ib];); break;
        case EQ: TG_BCAST_LOOP(p, ia, ib, unused_, yv[o] = av[ia] == bv[ib];); break;
        }
    });
    return y;
}

tg_tensor *(tg_gt)(tg_graph *g, tg_tensor *a, tg_tensor *b) { return compare(g, "gt", GT, a, b); }
tg_tensor *(tg_ge)(tg_graph *g, tg_tensor *a, tg_tensor *b) { return compare(g, "ge", GE, a, b); }
tg_tensor *(tg_lt)(tg_graph *g, tg_tensor *a, tg_tensor *b) { return compare(g, "lt", LT, a, b); }
tg_tensor *(tg_le)(tg_graph *g, tg_tensor *a, tg_tensor *b) { return compare(g, "le", LE, a, b); }
tg_tensor *(tg_eq)(tg_graph *g, tg_tensor *a, tg_tensor *b) { return compare(g, "eq", EQ, a, b); }

// --- cast: float32 <-> float64 ---

static void cast_backward(tg_graph *g, tg_node *n) {
    (void)g;
    tg_tensor *x = n->in[0], *y = n->out;
    if (x->dtype == TG_F32) {
        const double *gy = y->grad; // [numel]
        float *gx = x->grad;        // [numel]
        for (int64_t i = 0; i < y->numel; i++) gx[i] += (float)gy[i];
    } else {
        const float *gy = y->grad; // [numel]
        double *gx = x->grad;      // [numel]
        for (int64_t i = 0; i < y->numel; i++) gx[i] += gy[i];
    }
}

static const tg_op CAST_OP = {.name = "cast", .backward = cast_backward};

tg_tensor *(tg_cast)(tg_graph *g, tg_tensor *x, tg_dtype dtype) {
    if (!tg_check_float(g, "cast", 1, x)) return NULL;
    if (dtype != TG_F32 && dtype != TG_F64)
        return tg_fail(g, "cast", "to %s: casts go between float32 and float64", tg_dtype_name(dtype));
    if (dtype == x->dtype) return x; // as PyTorch's .to(): the tensor itself
    tg_tensor *y = tg_new_tensor(g, dtype, x->shape);
    if (dtype == TG_F64) {
        const float *xv = x->data; // [numel]
        double *yv = y->data;      // [numel]
        for (int64_t i = 0; i < x->numel; i++) yv[i] = xv[i];
    } else {
        const double *xv = x->data; // [numel]
        float *yv = y->data;        // [numel]
        for (int64_t i = 0; i < x->numel; i++) yv[i] = (float)xv[i];
    }
    tg_record(g, &CAST_OP, y, 1, x);
    return y;
}
