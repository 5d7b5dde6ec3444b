// tg_internal.h: what ops/ and autodiff/ share with graph/, and nothing else sees.
//
// The op contract (DyNet's and llm.c's):
// - forward checks shapes, writes a fresh output and calls tg_record, which appends a
//   node {op, inputs, output} to the tape when a gradient is wanted;
// - values backward needs later are saved on the node (node->saved, node->arg);
// - backward *accumulates* (+=) into the grad of every input whose grad is not NULL.
// A new op is a tg_op {name, backward} plus a function that does the above.
#ifndef TG_INTERNAL_H
#define TG_INTERNAL_H

#include <stdarg.h>

#include "tapegrad.h"

typedef struct tg_node tg_node;

// Accumulates d loss/d input into the inputs of n, given n->out->grad.
typedef void (*tg_backward_fn)(tg_graph *g, tg_node *n);

typedef struct {
    const char *name;        // "add", "matmul", ...: for errors, DOT and the numerics check
    tg_backward_fn backward; // NULL for ops without a gradient
} tg_op;

struct tg_node {
    const tg_op *op;
    tg_tensor *out;   // the value this node computed
    int n_in;
    tg_tensor **in;   // n_in inputs
    void *saved;      // op-specific values saved for backward (arena memory), or NULL
    double arg[2];    // small op parameters (a scalar, a slope, a probability)
    int iarg[4];      // integer op parameters (axes, flags, an ignore index)
    const char *file; // where the op was called
    int line;
};

// --- Graph internals used by ops ---
// Arena memory, 64-byte aligned, not zeroed; freed by reset.
void *tg_arena_alloc(tg_graph *g, size_t bytes);
// A new arena tensor, contents undefined: the op writes every element.
tg_tensor *tg_new_tensor(tg_graph *g, tg_dtype dtype, tg_shape shape);
// Appends a node for op to the tape when any input requires a gradient and recording is
// on; marks out as requiring a gradient. Returns the node (to save values on) or NULL.
tg_node *tg_record(tg_graph *g, const tg_op *op, tg_tensor *out, int n_in, ...);
tg_node *tg_record_array(tg_graph *g, const tg_op *op, tg_tensor *out, int n_in, tg_tensor *const *in);
// The tape: node i of tg_graph_node_count(g).
tg_node *tg_graph_node(const tg_graph *g, size_t i);
// Reports a programming error on g for op: the message gets the op's name in front and the
// call site after it, and goes to the error handler. Always returns NULL, so ops can
// `return tg_fail(...)`.
void *tg_fail(tg_graph *g, const char *op, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
// The call site recorded by the last tg_here.
void tg_graph_call_site(const tg_graph *g, const char **file, int *line);

// --- Checks every op starts with ---
// The n tensors are non-NULL, float (f32 or f64) and of one dtype.
bool tg_check_float(tg_graph *g, const char *op, int n, ...);
// t is non-NULL and of dtype i32; role names it in the message ("targets", "ids").
bool tg_check_i32(tg_graph *g, const char *op, const tg_tensor *t, const char *role);
// Normalises a possibly negative axis for ndim dims; false (reported) when out of range.
bool tg_check_axis(tg_graph *g, const char *op, int ndim, int *axis);

// Runs BODY once with T as the float type of dtype (float or double).
#define TG_DISPATCH(dtype, ...)                                                                              \
    do {                                                                                                     \
        if ((dtype) == TG_F32) {                                                                             \
            typedef float T;                                                                                 \
            __VA_ARGS__                                                                                      \
        } else {                                                                                             \
            typedef double T;                                                                                \
            __VA_ARGS__                                                                                      \
        }                                                                                                    \
    } while (0)

// --- Broadcasting (ops/broadcast.c) ---
// Two or three shapes aligned on the right, padded to 4 dims, with element strides that
// are 0 along stretched dims: loops over out[4] visit each input with its own strides.
typedef struct {
    int64_t out[4];       // output sizes, padded on the left with 1
    int64_t stride[3][4]; // element strides of each input, 0 where it is broadcast
} tg_bcast;
// Output shape of broadcasting n (2 or 3) shapes; false (reported) when they don't fit.
bool tg_broadcast(tg_graph *g, const char *op, int n, const tg_shape *shapes, tg_shape *out, tg_bcast *plan);

// --- Matrix product through BLIS (graph/runtime.c) ---
// C = alpha * op(A) op(B) + beta * C for row-major A, B, C with leading dims lda, ldb,
// ldc; op(X) is X or X^T. One call handles float or double by dtype.
void tg_gemm(tg_dtype dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
             const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c, int64_t ldc);

#endif
