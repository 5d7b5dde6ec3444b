// shape.c: reshape, detach, transpose, concat, slice, stack and chunk.
//
// Every op here moves elements without computing on them, so forward works on element
// bytes (memcpy of contiguous runs) and takes any dtype, int32 included; only backward,
// which runs for float tensors alone, adds. A tensor is seen around one axis as
// [outer, n, inner] (span() gives the products), and one routine, move_block, copies or
// accumulates a block along that axis: concat, stack and slice are all made of it, in
// both directions. Stack is concat of inputs seen with a size-1 axis inserted; chunk is n
// slices. Reshape shares its input's data instead of copying it, and so does a slice that is
// one contiguous run of its input (along the first axis, or any axis after size-1 ones).
#include <string.h>

#include "tg_internal.h"
#include "tg_ops.h"

// Product of the sizes d[from .. to-1] (1 for an empty range).
static int64_t span(tg_shape s, int from, int to) {
    int64_t p = 1;
    for (int i = from; i < to; i++) p *= s.d[i];
    return p;
}

// dst[0..n) = src[0..n), or += when acc (float dtypes only).
TG_VECTORIZE static void put_run(tg_dtype dtype, bool acc, void *dst, const void *src, int64_t n) {
    if (n <= 0) return;
    if (!acc) {
        memcpy(dst, src, (size_t)n * tg_dtype_size(dtype));
        return;
    }
    TG_DISPATCH(dtype, {
        T *d = dst;
        const T *s = src;
        for (int64_t i = 0; i < n; i++) d[i] += s[i];
    });
}

// Copies (acc: adds) count positions along the middle axis of src [outer, src_n, inner],
// starting at src_at, into dst [outer, dst_n, inner] starting at dst_at.
static void move_block(tg_dtype dtype, bool acc, int64_t outer, int64_t inner, int64_t count, void *dst,
                       int64_t dst_n, int64_t dst_at, const void *src, int64_t src_n, int64_t src_at) {
    size_t es = tg_dtype_size(dtype);
    for (int64_t o = 0; o < outer; o++)
        put_run(dtype, acc, (char *)dst + (size_t)((o * dst_n + dst_at) * inner) * es,
                (const char *)src + (size_t)((o * src_n + src_at) * inner) * es, count * inner);
}

static bool check_present(tg_graph *g, const char *op, const tg_tensor *x) {
    if (x) return true;
    tg_fail(g, op, "input is NULL (did an earlier op fail?)");
    return false;
}

// --- reshape: a view of x's data with another shape ---

static void reshape_backward(tg_graph *g, tg_node *n) {
    (void)g;
    tg_tensor *x = n->in[0], *y = n->out;
    if (x->grad && !tg_grad_is_alias(y)) put_run(y->dtype, true, x->grad, y->grad, y->numel); // same element order
}

static const tg_op RESHAPE_OP = {.name = "reshape", .backward = reshape_backward, .view = true};

tg_tensor *(tg_reshape)(tg_graph *g, tg_tensor *x, tg_shape shape) {
    if (!check_present(g, "reshape", x)) return NULL;
    if (shape.n < 0 || shape.n > TG_MAX_DIMS)
        return tg_fail(g, "reshape", "cannot reshape %s into %d dimensions; tensors have 0 to %d", TG_SHAPE_STR(x->shape), shape.n,
                       TG_MAX_DIMS);
    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < shape.n; i++) {
        if (shape.d[i] == -1 && infer < 0) {
            infer = i;
        } else if (shape.d[i] == -1) {
            return tg_fail(g, "reshape", "cannot reshape %s into %s: only one size may be -1", TG_SHAPE_STR(x->shape), TG_SHAPE_STR(shape));
        } else if (shape.d[i] < 0) {
            return tg_fail(g, "reshape", "cannot reshape %s into %s: negative size %lld", TG_SHAPE_STR(x->shape), TG_SHAPE_STR(shape),
                           (long long)shape.d[i]);
        } else {
            known *= shape.d[i];
        }
    }
    if (infer >= 0) {
        if (known == 0 || x->numel % known != 0)
            return tg_fail(g, "reshape", "cannot reshape %s (%lld elements) into %s: no size for -1 fits", TG_SHAPE_STR(x->shape),
                           (long long)x->numel, TG_SHAPE_STR(shape));
        shape.d[infer] = x->numel / known;
    } else if (known != x->numel) {
        return tg_fail(g, "reshape", "cannot reshape %s (%lld elements) into %s (%lld elements)", TG_SHAPE_STR(x->shape),
                       (long long)x->numel, TG_SHAPE_STR(shape), (long long)known);
    }
    tg_tensor *y = tg_view(g, x, shape, 0); // a reshape of a contiguous tensor is only a new shape
    tg_record(g, &RESHAPE_OP, y, 1, x);
    return y;
}

// --- detach: a view with no node, cut from the tape ---

tg_tensor *(tg_detach)(tg_graph *g, tg_tensor *x) {
    if (!check_present(g, "detach", x)) return NULL;
    return tg_view(g, x, x->shape, 0);
}

// --- transpose: x [A, d0, B, d1, C] -> y [A, d1, B, d0, C] for axes a0 < a1 ---

// dst [A, d1, B, d0, C] = (acc: +=) src [A, d0, B, d1, C] with the d0 and d1 axes swapped.
TG_VECTORIZE static void swap_axes(tg_dtype dtype, bool acc, void *dst, const void *src, int64_t A, int64_t d0, int64_t B,
                      int64_t d1, int64_t C) {
    size_t es = tg_dtype_size(dtype);
    for (int64_t a = 0; a < A; a++)
        for (int64_t i = 0; i < d1; i++)
            for (int64_t b = 0; b < B; b++)
                for (int64_t j = 0; j < d0; j++)
                    put_run(dtype, acc, (char *)dst + (size_t)((((a * d1 + i) * B + b) * d0 + j) * C) * es,
                            (const char *)src + (size_t)((((a * d0 + j) * B + b) * d1 + i) * C) * es, C);
}

// x's shape seen as [A, d0, B, d1, C] around axes a0 <= a1. With a0 == a1 the second axis
// is a size-1 one after it, and the swap is a plain copy.
static void swap_dims(tg_shape s, int a0, int a1, int64_t dims[5]) {
    if (a0 == a1) {
        int64_t same[5] = {span(s, 0, a0), s.d[a0], 1, 1, span(s, a0 + 1, s.n)};
        memcpy(dims, same, sizeof same);
    } else {
        int64_t apart[5] = {span(s, 0, a0), s.d[a0], span(s, a0 + 1, a1), s.d[a1], span(s, a1 + 1, s.n)};
        memcpy(dims, apart, sizeof apart);
    }
}

typedef struct {
    int a0, a1; // the swapped axes, a0 <= a1
} transpose_state;

static void transpose_backward(tg_graph *g, tg_node *n) {
    (void)g;
    tg_tensor *x = n->in[0], *y = n->out;
    const transpose_state *s = TG_STATE(n, transpose_state);
    int64_t d[5];
    swap_dims(x->shape, s->a0, s->a1, d);
    if (x->grad) // gy is [A, d1, B, d0, C]: swapping back lands on x's layout
        swap_axes(y->dtype, true, x->grad, y->grad, d[0], d[3], d[2], d[1], d[4]);
}

static const tg_op TRANSPOSE_OP = {.name = "transpose", .backward = transpose_backward};

tg_tensor *(tg_transpose)(tg_graph *g, tg_tensor *x, int axis0, int axis1) {
    if (!check_present(g, "transpose", x)) return NULL;
    if (!tg_check_axis(g, "transpose", x->shape, 0, &axis0) || !tg_check_axis(g, "transpose", x->shape, 0, &axis1))
        return NULL;
    int a0 = axis0 < axis1 ? axis0 : axis1, a1 = axis0 < axis1 ? axis1 : axis0;
    tg_shape s = x->shape, ys = s;
    ys.d[a0] = s.d[a1];
    ys.d[a1] = s.d[a0];
    tg_tensor *y = tg_new_tensor(g, x->dtype, ys);
    int64_t d[5];
    swap_dims(s, a0, a1, d);
    swap_axes(x->dtype, false, y->data, x->data, d[0], d[1], d[2], d[3], d[4]);
    tg_node *n = tg_record(g, &TRANSPOSE_OP, y, 1, x);
    TG_SAVE(g, n, transpose_state, {.a0 = a0, .a1 = a1});
    return y;
}

// --- concat and stack: inputs [outer, len_k, inner] side by side in y [outer, total, inner] ---

// Copies every input into y (or, with acc, adds y's gradient into every input's gradient).
// A concat input has y's rank and len_k = its size along axis; a stack input has one dim
// fewer and len_k = 1, the new axis.
static void join_runs(tg_tensor *y, int n, tg_tensor *const *xs, int axis, bool acc) {
    tg_shape s = y->shape;
    int64_t outer = span(s, 0, axis), inner = span(s, axis + 1, s.n), total = s.d[axis], at = 0;
    for (int k = 0; k < n; k++) {
        tg_tensor *x = xs[k];
        int64_t len = x->shape.n == s.n ? x->shape.d[axis] : 1;
        if (!acc)
            move_block(y->dtype, false, outer, inner, len, y->data, total, at, x->data, len, 0);
        else if (x->grad)
            move_block(y->dtype, true, outer, inner, len, x->grad, len, 0, y->grad, total, at);
        at += len;
    }
}

typedef struct {
    int axis; // the output's axis the inputs are joined along
} join_state;

static void join_backward(tg_graph *g, tg_node *n) {
    (void)g;
    join_runs(n->out, n->n_in, n->in, TG_STATE(n, join_state)->axis, true);
}

static const tg_op CONCAT_OP = {.name = "concat", .backward = join_backward};
static const tg_op STACK_OP = {.name = "stack", .backward = join_backward};

// concat (new_axis false) or stack (true) of n tensors of one dtype.
static tg_tensor *join(tg_graph *g, const tg_op *op, int n, tg_tensor *const *xs, int axis, bool new_axis) {
    const char *name = op->name;
    if (n < 1 || !xs) return tg_fail(g, name, "needs at least one input (got n = %d%s)", n, xs ? "" : ", xs NULL");
    for (int k = 0; k < n; k++)
        if (!xs[k]) return tg_fail(g, name, "input %d is NULL (did an earlier op fail?)", k);
    tg_shape s0 = xs[0]->shape;
    if (new_axis && s0.n >= TG_MAX_DIMS)
        return tg_fail(g, name, "inputs of shape %s already have %d dimensions; the result would have %d", TG_SHAPE_STR(s0), s0.n,
                       s0.n + 1);
    if (!tg_check_axis(g, name, s0, new_axis, &axis)) return NULL;
    tg_shape ys = s0;
    if (new_axis) { // insert the new axis of size n
        ys.n = s0.n + 1;
        for (int d = s0.n; d > axis; d--) ys.d[d] = s0.d[d - 1];
        ys.d[axis] = n;
    }
    for (int k = 1; k < n; k++) {
        tg_shape sk = xs[k]->shape;
        if (xs[k]->dtype != xs[0]->dtype)
            return tg_fail(g, name, "input %d is %s %s but input 0 is %s %s; convert one of them", k,
                           tg_dtype_name(xs[k]->dtype), TG_SHAPE_STR(sk), tg_dtype_name(xs[0]->dtype), TG_SHAPE_STR(s0));
        bool fits = sk.n == s0.n;
        for (int d = 0; fits && d < s0.n; d++) fits = sk.d[d] == s0.d[d] || (!new_axis && d == axis);
        if (!fits) {
            if (new_axis) return tg_fail(g, name, "input %d has shape %s but input 0 has %s; all must match", k, TG_SHAPE_STR(sk), TG_SHAPE_STR(s0));
            return tg_fail(g, name, "input %d has shape %s but input 0 has %s; sizes must match except along axis %d",
                           k, TG_SHAPE_STR(sk), TG_SHAPE_STR(s0), axis);
        }
        if (!new_axis) ys.d[axis] += sk.d[axis];
    }
    tg_tensor *y = tg_new_tensor(g, xs[0]->dtype, ys);
    join_runs(y, n, xs, axis, false);
    tg_node *node = tg_record_array(g, op, y, n, xs);
    TG_SAVE(g, node, join_state, {.axis = axis});
    return y;
}

tg_tensor *(tg_concat)(tg_graph *g, int n, tg_tensor *const *xs, int axis) {
    return join(g, &CONCAT_OP, n, xs, axis, false);
}

tg_tensor *(tg_stack)(tg_graph *g, int n, tg_tensor *const *xs, int axis) {
    return join(g, &STACK_OP, n, xs, axis, true);
}

// --- slice: y [outer, length, inner] = x [outer, size, inner] from position start ---

typedef struct {
    int axis;      // normalised
    int64_t start; // first position taken along axis
} slice_state;

static void slice_backward(tg_graph *g, tg_node *n) {
    (void)g;
    tg_tensor *x = n->in[0], *y = n->out;
    const slice_state *s = TG_STATE(n, slice_state);
    int axis = s->axis;
    int64_t start = s->start, size = x->shape.d[axis], length = y->shape.d[axis];
    if (x->grad && !tg_grad_is_alias(y))
        move_block(y->dtype, true, span(x->shape, 0, axis), span(x->shape, axis + 1, x->shape.n), length, x->grad,
                   size, start, y->grad, length, 0);
}

static const tg_op SLICE_OP = {.name = "slice", .backward = slice_backward};
// A slice that is one run of its input, and shares it: its gradient is that run of x's.
static const tg_op SLICE_VIEW_OP = {.name = "slice", .backward = slice_backward, .view = true};

tg_tensor *(tg_slice)(tg_graph *g, tg_tensor *x, int axis, int64_t start, int64_t length) {
    if (!check_present(g, "slice", x)) return NULL;
    int given = axis;
    if (!tg_check_axis(g, "slice", x->shape, 0, &axis)) return NULL;
    int64_t size = x->shape.d[axis];
    if (start < 0 || length < 0 || start > size || length > size - start) {
        char s[64];
        return tg_fail(g, "slice", "start %lld, length %lld is out of range for size %lld along axis %d of %s",
                       (long long)start, (long long)length, (long long)size, given,
                       tg_shape_str(x->shape, s, sizeof s));
    }
    tg_shape ys = x->shape;
    ys.d[axis] = length;
    int64_t outer = span(ys, 0, axis), inner = span(ys, axis + 1, ys.n);
    tg_tensor *y;
    if (outer == 1) { // one contiguous run of x: share it, as reshape does (a step's rows of a projection)
        y = tg_view(g, x, ys, start * inner);
    } else {
        y = tg_new_tensor(g, x->dtype, ys);
        move_block(x->dtype, false, outer, inner, length, y->data, length, 0, x->data, size, start);
    }
    tg_node *n = tg_record(g, outer == 1 ? &SLICE_VIEW_OP : &SLICE_OP, y, 1, x);
    TG_SAVE(g, n, slice_state, {.axis = axis, .start = start});
    return y;
}

// --- chunk: n slices of equal size ---

bool(tg_chunk)(tg_graph *g, tg_tensor *x, int n, int axis, tg_tensor **out) {
    if (!out) {
        tg_fail(g, "chunk", "out is NULL; pass an array of n tensor pointers");
        return false;
    }
    for (int k = 0; k < n; k++) out[k] = NULL;
    if (!check_present(g, "chunk", x)) return false;
    if (n < 1) {
        tg_fail(g, "chunk", "n = %d; the number of pieces must be at least 1", n);
        return false;
    }
    int given = axis;
    if (!tg_check_axis(g, "chunk", x->shape, 0, &axis)) return false;
    int64_t size = x->shape.d[axis];
    if (size % n != 0) {
        char s[64];
        tg_fail(g, "chunk", "size %lld along axis %d of %s does not split into %d equal pieces", (long long)size,
                given, tg_shape_str(x->shape, s, sizeof s), n);
        return false;
    }
    int64_t piece = size / n;
    for (int k = 0; k < n; k++)
        if (!(out[k] = (tg_slice)(g, x, axis, k * piece, piece))) return false;
    return true;
}
