// matmul.c: matrix products through BLIS, and linear (x W^T + b).
//
// With C = op(A) op(B), where op is the identity or a transpose:
//   dA = dC op(B)^T   (stored transposed when A is read transposed)
//   dB = op(A)^T dC   (likewise)
// BLIS's transpose flags express every case without copying, and beta = 1 makes the
// products accumulate straight into the gradients.
#include <string.h>

#include "tg_internal.h"
#include "tg_ops.h"

// The sizes of one product, from the stored shapes and the transpose flags: matmul's state.
typedef struct {
    int64_t batch, m, n, k;
    int64_t lda, ldb;      // row strides of A and B as stored
    int64_t stride_a, stride_b; // elements between batch entries (0: shared across the batch)
    bool ta, tb;
} matmul_state;

static void matmul_backward(tg_graph *g, tg_node *n) {
    (void)g;
    const matmul_state *d = TG_STATE(n, matmul_state);
    tg_tensor *a = n->in[0], *b = n->in[1], *c = n->out;
    size_t es = tg_dtype_size(c->dtype);
    for (int64_t i = 0; i < d->batch; i++) {
        const char *A = (const char *)a->data + (size_t)(i * d->stride_a) * es;
        const char *B = (const char *)b->data + (size_t)(i * d->stride_b) * es;
        const char *dC = (const char *)c->grad + (size_t)(i * d->m * d->n) * es;
        if (a->grad) {
            char *dA = (char *)a->grad + (size_t)(i * d->stride_a) * es;
            if (!d->ta) // dA [m, k] += dC [m, n] op(B)^T
                tg_gemm(c->dtype, false, !d->tb, d->m, d->k, d->n, 1.0, dC, d->n, B, d->ldb, 1.0, dA, d->lda);
            else // dA [k, m] += op(B) [k, n] dC^T
                tg_gemm(c->dtype, d->tb, true, d->k, d->m, d->n, 1.0, B, d->ldb, dC, d->n, 1.0, dA, d->lda);
        }
        if (b->grad) {
            char *dB = (char *)b->grad + (size_t)(i * d->stride_b) * es;
            if (!d->tb) // dB [k, n] += op(A)^T [k, m] dC
                tg_gemm(c->dtype, !d->ta, false, d->k, d->n, d->m, 1.0, A, d->lda, dC, d->n, 1.0, dB, d->ldb);
            else // dB [n, k] += dC^T [n, m] op(A)
                tg_gemm(c->dtype, true, d->ta, d->n, d->k, d->m, 1.0, dC, d->n, A, d->lda, 1.0, dB, d->ldb);
        }
    }
}

static const tg_op MATMUL_OP = {.name = "matmul", .backward = matmul_backward};

tg_tensor *(tg_matmul_t)(tg_graph *g, tg_tensor *a, tg_tensor *b, bool trans_a, bool trans_b) {
    if (!tg_check_float(g, "matmul", 2, a, b)) return NULL;
    bool ok_rank = (a->shape.n == 2 && b->shape.n == 2) || (a->shape.n == 3 && (b->shape.n == 3 || b->shape.n == 2));
    if (!ok_rank)
        return tg_fail(g, "matmul", "shapes %s and %s: takes 2-D @ 2-D, 3-D @ 3-D (batched) or 3-D @ 2-D", TG_SHAPE_STR(a->shape), TG_SHAPE_STR(b->shape));
    int ra = a->shape.n - 2, rb = b->shape.n - 2; // index of each one's row axis
    matmul_state dims, *d = &dims;
    d->ta = trans_a;
    d->tb = trans_b;
    d->batch = a->shape.n == 3 ? a->shape.d[0] : 1;
    d->lda = a->shape.d[ra + 1];
    d->ldb = b->shape.d[rb + 1];
    d->m = trans_a ? a->shape.d[ra + 1] : a->shape.d[ra];
    d->k = trans_a ? a->shape.d[ra] : a->shape.d[ra + 1];
    int64_t kb = trans_b ? b->shape.d[rb + 1] : b->shape.d[rb];
    d->n = trans_b ? b->shape.d[rb] : b->shape.d[rb + 1];
    d->stride_a = a->shape.d[ra] * a->shape.d[ra + 1];
    d->stride_b = b->shape.n == 3 ? b->shape.d[rb] * b->shape.d[rb + 1] : 0;
    if (d->k != kb)
        return tg_fail(g, "matmul", "shapes %s%s and %s%s: inner sizes %lld and %lld differ", TG_SHAPE_STR(a->shape),
                       trans_a ? " (transposed)" : "", TG_SHAPE_STR(b->shape), trans_b ? " (transposed)" : "", (long long)d->k,
                       (long long)kb);
    if (b->shape.n == 3 && b->shape.d[0] != d->batch)
        return tg_fail(g, "matmul", "shapes %s and %s: batch sizes differ", TG_SHAPE_STR(a->shape), TG_SHAPE_STR(b->shape));

    tg_shape shape = a->shape.n == 3 ? tg_shape3(d->batch, d->m, d->n) : tg_shape2(d->m, d->n);
    tg_tensor *c = tg_new_tensor(g, a->dtype, shape);
    size_t es = tg_dtype_size(a->dtype);
    for (int64_t i = 0; i < d->batch; i++)
        tg_gemm(a->dtype, trans_a, trans_b, d->m, d->n, d->k, 1.0, (const char *)a->data + (size_t)(i * d->stride_a) * es,
                d->lda, (const char *)b->data + (size_t)(i * d->stride_b) * es, d->ldb, 0.0,
                (char *)c->data + (size_t)(i * d->m * d->n) * es, d->n);
    tg_node *n = tg_record(g, &MATMUL_OP, c, 2, a, b);
    tg_node_save(g, n, &dims, sizeof dims);
    return c;
}

tg_tensor *(tg_matmul)(tg_graph *g, tg_tensor *a, tg_tensor *b) { return (tg_matmul_t)(g, a, b, false, false); }

// --- linear: y [rows, out] = x [rows, in] W^T + b (+ addend), rows being all leading dims of x ---
// Inputs x, weight, then bias and addend when given; the state holds their input positions.

typedef struct {
    int at_bias, at_addend; // positions in the node's inputs (0: absent)
} linear_state;

TG_VECTORIZE static void linear_backward(tg_graph *g, tg_node *n) {
    const linear_state *s = TG_STATE(n, linear_state);
    tg_tensor *x = n->in[0], *w = n->in[1], *y = n->out;
    tg_tensor *bias = s->at_bias ? n->in[s->at_bias] : NULL, *addend = s->at_addend ? n->in[s->at_addend] : NULL;
    int64_t out = w->shape.d[0], in = w->shape.d[1], rows = x->numel / (in ? in : 1);
    if (x->grad) // dx [rows, in] += dy [rows, out] W [out, in]
        tg_gemm(y->dtype, false, false, rows, in, out, 1.0, y->grad, out, w->data, in, 1.0, x->grad, in);
    if (w->grad) tg_weight_grad_add(g, w, y->grad, x->data, rows); // dW [out, in] += dy^T x, maybe staged
    TG_DISPATCH(y->dtype, {
        const T *gy = y->grad; // [rows, out]
        if (bias && bias->grad) {
            T *gb = bias->grad; // [out]
            for (int64_t r = 0; r < rows; r++)
                for (int64_t j = 0; j < out; j++) gb[j] += gy[r * out + j];
        }
        if (addend && addend->grad) {
            T *ga = addend->grad; // [rows, out]
            for (int64_t i = 0; i < y->numel; i++) ga[i] += gy[i];
        }
    });
}

static const tg_op LINEAR_OP = {.name = "linear", .backward = linear_backward};
static const tg_op LINEAR_ADD_OP = {.name = "linear_add", .backward = linear_backward};
static const tg_op LINEAR_ADD_IN_PLACE_OP = {.name = "linear_add_", .backward = linear_backward};

// W^T [in, out] of a leaf weight, made once per graph and reused while the weight's data
// is unchanged. BLIS multiplies by a transposed right operand at half speed when the left
// one has few rows (it packs it by strided gathers), and a recurrent weight meets a few
// rows at every time step: one transposed copy per iteration pays for itself many times.
TG_VECTORIZE static tg_tensor *transposed_weight(tg_graph *g, tg_tensor *w) {
    tg_tensor *wt = tg_graph_memo(g, w);
    if (wt) return wt;
    int64_t out = w->shape.d[0], in = w->shape.d[1];
    wt = tg_new_tensor(g, w->dtype, tg_shape2(in, out));
    TG_DISPATCH(w->dtype, {
        const T *src = w->data; // [out, in]
        T *dst = wt->data;      // [in, out]
        // 32 x 32 tiles keep both sides in cache; within one, the writes run along a row of
        // dst: strided reads from cache cost less than strided writes.
        for (int64_t i0 = 0; i0 < out; i0 += 32)
            for (int64_t j0 = 0; j0 < in; j0 += 32) {
                int64_t i1 = i0 + 32 < out ? i0 + 32 : out, j1 = j0 + 32 < in ? j0 + 32 : in;
                for (int64_t j = j0; j < j1; j++)
                    for (int64_t i = i0; i < i1; i++) dst[j * out + i] = src[i * in + j];
            }
    });
    tg_graph_memo_put(g, w, wt);
    return wt;
}

// Inputs with more rows than this are multiplied by W directly: the transposed operand's
// packing cost is then spread over enough rows not to matter.
#define TRANSPOSE_BELOW_ROWS 256

// True when the data of a and b share a byte.
static bool overlap(const tg_tensor *a, const tg_tensor *b) {
    const char *a0 = a->data, *b0 = b->data;
    size_t na = (size_t)a->numel * tg_dtype_size(a->dtype), nb = (size_t)b->numel * tg_dtype_size(b->dtype);
    return na && nb && a0 < b0 + nb && b0 < a0 + na;
}

// Writing the sum over the addend loses its value: refused for a leaf that requires a
// gradient (as PyTorch refuses), and for an addend that shares data with another input,
// which the product is still reading.
static bool check_in_place(tg_graph *g, tg_tensor *addend, tg_tensor *x, tg_tensor *weight, tg_tensor *bias) {
    if (addend->requires_grad && !addend->node) {
        tg_fail(g, "linear_add_", "the addend %s is a leaf that requires a gradient; writing the sum over it would "
                                  "lose its value (use tg_linear_add)", TG_SHAPE_STR(addend->shape));
        return false;
    }
    if (overlap(addend, x) || overlap(addend, weight) || (bias && overlap(addend, bias))) {
        tg_fail(g, "linear_add_", "the addend %s shares data with the input, weight or bias it is summed with "
                                  "(use tg_linear_add)", TG_SHAPE_STR(addend->shape));
        return false;
    }
    return true;
}

// y = x W^T + bias + addend, for tg_linear (addend NULL), tg_linear_add and, written over
// the addend's data, tg_linear_add_.
TG_VECTORIZE static tg_tensor *linear(tg_graph *g, const tg_op *op, tg_tensor *x, tg_tensor *weight,
                                      tg_tensor *bias, tg_tensor *addend) {
    if (!tg_check_float(g, op->name, 2, x, weight)) return NULL;
    if (bias && !tg_check_float(g, op->name, 2, x, bias)) return NULL;
    if (weight->shape.n != 2 || x->shape.n < 1 || x->shape.d[x->shape.n - 1] != weight->shape.d[1])
        return tg_fail(g, op->name, "input %s and weight %s: the weight must be [out, in] with in = the "
                                    "input's last size", TG_SHAPE_STR(x->shape), TG_SHAPE_STR(weight->shape));
    int64_t out = weight->shape.d[0], in = weight->shape.d[1];
    if (bias && (bias->shape.n != 1 || bias->shape.d[0] != out))
        return tg_fail(g, op->name, "weight %s and bias %s: the bias must be [%lld]", TG_SHAPE_STR(weight->shape),
                       TG_SHAPE_STR(bias->shape), (long long)out);
    tg_shape shape = x->shape;
    shape.d[shape.n - 1] = out;
    bool in_place = op == &LINEAR_ADD_IN_PLACE_OP;
    if (op != &LINEAR_OP && !tg_check_float(g, op->name, 2, x, addend)) return NULL;
    if (addend && !tg_shape_equal(addend->shape, shape))
        return tg_fail(g, op->name, "input %s, weight %s and addend %s: the addend must be %s, the product's shape",
                       TG_SHAPE_STR(x->shape), TG_SHAPE_STR(weight->shape), TG_SHAPE_STR(addend->shape),
                       TG_SHAPE_STR(shape));
    if (in_place && !check_in_place(g, addend, x, weight, bias)) return NULL;
    int64_t rows = x->numel / (in ? in : 1);
    size_t es = tg_dtype_size(x->dtype);
    tg_tensor *y;
    double beta = bias ? 1.0 : 0.0;
    if (in_place) { // y is a new tensor over the addend's data: addend + bias, then the product added on
        y = tg_view(g, addend, shape, 0);
        tg_tensor_touch(addend);
        if (bias)
            TG_DISPATCH(y->dtype, {
                T *yv = y->data;          // [rows, out]
                const T *bv = bias->data; // [out]
                for (int64_t r = 0; r < rows; r++)
                    for (int64_t j = 0; j < out; j++) yv[r * out + j] += bv[j];
            });
        beta = 1.0;
        addend = addend->requires_grad ? addend : NULL; // its gradient is y's; its value is gone
    } else {
        y = tg_new_tensor(g, x->dtype, shape);
        if (bias) // start from the bias in every row, then add the product onto it
            for (int64_t r = 0; r < rows; r++)
                memcpy((char *)y->data + (size_t)(r * out) * es, bias->data, (size_t)out * es);
    }
    tg_tensor *weight_t = !weight->node && rows < TRANSPOSE_BELOW_ROWS ? transposed_weight(g, weight) : NULL;
    if (weight_t) // y [rows, out] (+)= x [rows, in] W^T [in, out]
        tg_gemm(x->dtype, false, false, rows, out, in, 1.0, x->data, in, weight_t->data, out, beta, y->data, out);
    else
        tg_gemm(x->dtype, false, true, rows, out, in, 1.0, x->data, in, weight->data, in, beta, y->data, out);
    if (addend && !in_place) // added last, so the sum rounds as tg_add(addend, tg_linear(...)) does
        TG_DISPATCH(y->dtype, {
            T *yv = y->data;            // [rows, out]
            const T *av = addend->data; // [rows, out]
            for (int64_t i = 0; i < y->numel; i++) yv[i] = av[i] + yv[i];
        });
    // The transposed copy is a constant: gradients go to W itself (linear_backward).
    tg_tensor *in_[4] = {x, weight};
    int n_in = 2, at_bias = 0, at_addend = 0;
    if (bias) in_[at_bias = n_in++] = bias;
    if (addend) in_[at_addend = n_in++] = addend;
    tg_node *n = tg_record_array(g, op, y, n_in, in_);
    TG_SAVE(g, n, linear_state, {.at_bias = at_bias, .at_addend = at_addend});
    return y;
}

tg_tensor *(tg_linear)(tg_graph *g, tg_tensor *x, tg_tensor *weight, tg_tensor *bias) {
    return linear(g, &LINEAR_OP, x, weight, bias, NULL);
}

tg_tensor *(tg_linear_add)(tg_graph *g, tg_tensor *addend, tg_tensor *x, tg_tensor *weight, tg_tensor *bias) {
    return linear(g, &LINEAR_ADD_OP, x, weight, bias, addend);
}

tg_tensor *(tg_linear_add_)(tg_graph *g, tg_tensor *addend, tg_tensor *x, tg_tensor *weight, tg_tensor *bias) {
    return linear(g, &LINEAR_ADD_IN_PLACE_OP, x, weight, bias, addend);
}
