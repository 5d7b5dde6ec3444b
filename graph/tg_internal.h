// tg_internal.h: what ops/ and autodiff/ share with graph/, and nothing else sees.
//
// The layers call downward only: graph <- ops <- autodiff <- models. graph/ knows tensors,
// the arena, the tape and views; ops/ computes values and their gradients; autodiff/ walks
// the tape; models/ composes public ops. This header therefore names nothing above graph/
// but the op contract itself.
//
// The op contract (DyNet's and llm.c's):
// - Forward checks its inputs (a wrong shape names the op and the shapes), writes a fresh
//   output from tg_new_tensor (or a view of its input from tg_view, for an op whose tg_op
//   says .view) and calls tg_record, which appends a node {op, inputs, output} to the tape
//   when a gradient is wanted and returns it (NULL otherwise).
// - What backward needs besides the inputs and the output is the op's own state: a struct
//   of its own, named `<op>_state`, saved on the node with TG_SAVE and read back with
//   TG_STATE. A node holds no untyped parameter slots.
// - Backward, defined just above its forward, *accumulates* (+=) into the gradients of the
//   inputs.
// - A missing gradient, one idiom: an input that needs none (a constant, an int32 id, a
//   tensor without requires_grad) has grad == NULL when backward runs, and backward skips
//   it by testing that pointer (`if (x->grad) ...`, or `if (!x->grad) return;`). A fused
//   loop that updates several gradients in one pass takes tg_grad_or_scratch instead: the
//   same test, made once outside the loop. (An op whose only differentiable input is x is
//   recorded only when x wants a gradient, so its x->grad is never NULL.)
// A new op is therefore one file in ops/ (a tg_op {name, backward}, its state struct, its
// forward and backward) plus its declaration in include/tg_ops.h and its test; a new file
// (a new op family) is also listed in CMakeLists.txt's TG_SOURCES.
#ifndef TG_INTERNAL_H
#define TG_INTERNAL_H

#include <math.h>
#include <stdarg.h>

#include "tg_fastmath.h"
#include "tg_graph.h"
#include "tg_runtime.h"
#include "tg_tensor.h"

typedef struct tg_node tg_node;

// Accumulates d loss/d input into the inputs of n, given n->out->grad.
typedef void (*tg_backward_fn)(tg_graph *g, tg_node *n);

typedef struct {
    const char *name;        // "add", "matmul", ...: for errors, DOT and the numerics check
    tg_backward_fn backward; // NULL for ops without a gradient
    // The output is a view (tg_view): its data lies inside in[0]'s (reshape, a contiguous
    // slice). The backward walk then gives it the matching region of in[0]'s gradient as its
    // own, so gradients land where they belong with no buffer or copy, and backward has
    // nothing left to do unless the view's gradient is a buffer of its own (tg_grad_is_alias).
    bool view;
} tg_op;

struct tg_node {
    const tg_op *op;
    tg_tensor *out;    // the value this node computed
    int n_in;
    int spent_by;      // the backward walk that spent it (tg_graph_spend_walk), or 0
    tg_tensor **in;    // n_in inputs
    void *state;       // the op's saved state (TG_SAVE), in the arena, or NULL
    size_t state_size; // its size, which TG_STATE checks against the type it reads
    const char *file;  // where the op was called
    int line;
    bool reached;      // the backward walk under way will pass through it
};

// Saves a copy of the op's state on n: TG_SAVE(g, n, slice_state, {.axis = a, .start = s}).
// n may be NULL (nothing was recorded): then nothing is saved.
#define TG_SAVE(g, n, type, ...) tg_node_save((g), (n), &(type)__VA_ARGS__, sizeof(type))
void tg_node_save(tg_graph *g, tg_node *n, const void *state, size_t size);
// The state n's op saved, as the struct type it saved: TG_STATE(n, slice_state)->axis.
#define TG_STATE(n, type) ((const type *)tg_node_state((n), sizeof(type)))
// n's state, after checking that it was saved with this size (aborts, naming the op, if not:
// a backward reading another op's state is a bug in the library).
const void *tg_node_state(const tg_node *n, size_t size);

// --- The generator, inline ---
// xoshiro256** (Blackman and Vigna), tg_rng_next's step: inline for loops that draw a number
// an element (dropout's masks), so that the state stays in registers.
static inline uint64_t tg_rng_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
static inline uint64_t tg_rng_step(uint64_t s[4]) {
    uint64_t result = tg_rng_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = tg_rng_rotl(s[3], 45);
    return result;
}
// tg_rng_uniform's double from 64 random bits: their top 53 over 2^53, in [0, 1).
static inline double tg_rng_bits_to_uniform(uint64_t x) { return (double)(x >> 11) * 0x1.0p-53; }

// --- Graph internals used by ops ---
// Arena memory, 64-byte aligned, not zeroed; freed by reset.
void *tg_arena_alloc(tg_graph *g, size_t bytes);
// A new arena tensor, contents undefined: the op writes every element.
tg_tensor *tg_new_tensor(tg_graph *g, tg_dtype dtype, tg_shape shape);
// Appends a node for op to the tape when any input requires a gradient and recording is
// on; marks out as requiring a gradient. Returns the node (to save values on) or NULL.
tg_node *tg_record(tg_graph *g, const tg_op *op, tg_tensor *out, int n_in, ...);
tg_node *tg_record_array(tg_graph *g, const tg_op *op, tg_tensor *out, int n_in, tg_tensor *const *in);
// True when tg_record with these inputs would append a node: an op that keeps values for its
// backward (activations it would otherwise recompute) computes them only then.
bool tg_will_record(const tg_graph *g, int n_in, tg_tensor *const *in);
// True when a tensor of this (non-negative) shape can be allocated: its element count times
// 8 bytes fits in a size_t.
bool tg_shape_fits(tg_shape shape);
// A shape as a string in a temporary buffer, for error messages only: formatting on the
// hot path would cost more than a small op.
#define TG_SHAPE_STR(s) tg_shape_str((s), (char[80]){0}, 80)
// Writes the multi-index of flat element i of shape into buf, e.g. "[1, 0, 2]".
char *tg_index_str(tg_shape shape, int64_t i, char *buf, size_t len);
// With the numerics check on, reports the first non-finite gradient n's backward left in
// its inputs and returns false.
bool tg_check_node_gradients(tg_graph *g, const tg_node *n);
// The tape: node i of tg_graph_node_count(g).
tg_node *tg_graph_node(const tg_graph *g, size_t i);
// The handler an error on the calling thread goes to (its own, else the process's), so a
// library thread can adopt the one of the thread that started it.
void tg_error_handler_current(tg_error_handler *handler, void **user);
// The call site recorded by the last tg_here.
void tg_graph_call_site(const tg_graph *g, const char **file, int *line);

// --- Views (graph/view.c) ---
// The one constructor of a tensor over another's data: shape over base's elements from
// element offset on (offset + numel of shape <= base->numel; the caller checks). It has no
// node and wants no gradient until an op records it (tg_record, with an op whose .view is
// set when the backward walk should alias its gradient too).
tg_tensor *tg_view(tg_graph *g, tg_tensor *base, tg_shape shape, int64_t offset);
// True when the backward walk made t's gradient a region of its view input's (see tg_op.view).
bool tg_grad_is_alias(const tg_tensor *t);

// A zeroed gradient buffer for the backward walk, reusing one released earlier in the walk
// when one of the size is free; and the release of a buffer no node will read again.
void *tg_grad_alloc(tg_graph *g, size_t bytes);
void tg_grad_release(tg_graph *g, void *ptr, size_t bytes);
// The gradient buffer of t or, when t needs none (the zero initial state, say), a zeroed
// scratch buffer of its size from the arena, so that a fused op's backward loop writes
// without a branch: with TG_IVDEP, it vectorizes.
void *tg_grad_or_scratch(tg_graph *g, tg_tensor *t);

// Adds dy^T x (dy [rows, out], x [rows, in]) to the gradient of weight w [out, in]. For a
// leaf and few rows the sum may be staged and done later in one larger product
// (ops/weight_grad.c, the matmul family's); tg_weight_grads_flush, at the end of every
// backward walk, does what is staged; tg_weight_grad_flush_leaf does what is staged for w
// alone (its gradient is wanted complete before the walk ends). tg_graph_weight_grads is
// where a graph keeps the staging (NULL at reset).
void tg_weight_grad_add(tg_graph *g, tg_tensor *w, const void *dy, const void *x, int64_t rows);
void tg_weight_grads_flush(tg_graph *g);
void tg_weight_grad_flush_leaf(tg_graph *g, const tg_tensor *w);
struct tg_weight_grads **tg_graph_weight_grads(tg_graph *g);

// A backward walk that does not retain the graph spends the nodes it passes through (PyTorch
// frees their buffers then): tg_graph_spend_walk records where it was called and returns the
// id its nodes keep (tg_node.spent_by); tg_graph_spent_walk_site gives that place back.
int tg_graph_spend_walk(tg_graph *g, const char *file, int line);
void tg_graph_spent_walk_site(const tg_graph *g, int id, const char **file, int *line);

// A tensor the graph derived from the leaf key (a weight's transposed copy), or NULL when
// there is none or key's data has changed since (its version); put records one. Entries
// last until reset.
tg_tensor *tg_graph_memo(tg_graph *g, const tg_tensor *key);
void tg_graph_memo_put(tg_graph *g, const tg_tensor *key, tg_tensor *value);

// Writes "path: message" into err (path may be NULL; err may be NULL) and returns false,
// so that every failure of a file reader or writer is one `return tg_file_fail(...)`.
bool tg_file_fail(char *err, size_t len, const char *path, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

// --- Checks every op starts with ---
// The n tensors are non-NULL, float (f32 or f64) and of one dtype.
bool tg_check_float(tg_graph *g, const char *op, int n, ...);
// t is non-NULL and of dtype i32; role names it in the message ("targets", "ids").
bool tg_check_i32(tg_graph *g, const char *op, const tg_tensor *t, const char *role);
// Normalises a possibly negative axis of a tensor of this shape, which has shape.n + extra
// axes (extra = 1 where the op inserts one, as stack does); false (reported, naming the
// shape) when out of range.
bool tg_check_axis(tg_graph *g, const char *op, tg_shape shape, int extra, int *axis);

// The sizes around one axis of a contiguous tensor: element (o, a, i) is at (o*n + a)*inner + i.
typedef struct {
    int64_t outer, n, inner;
} tg_axis_split;
// The split of shape at axis (a scalar is one element: {1, 1, 1}).
tg_axis_split tg_split_at(tg_shape shape, int axis);

// T-generic math for TG_DISPATCH bodies: the vectorisable float versions of tg_fastmath.h
// for float, libm's for double. Sigmoid in double takes the form that cannot overflow.
#define TG_EXP(x) (sizeof(x) == sizeof(float) ? tg_expf((float)(x)) : exp((double)(x)))
#define TG_TANH(x) (sizeof(x) == sizeof(float) ? tg_tanhf((float)(x)) : tanh((double)(x)))
#define TG_LOG(x) (sizeof(x) == sizeof(float) ? logf((float)(x)) : log((double)(x)))
#define TG_SIGMOID(x)                                                                                       \
    (sizeof(x) == sizeof(float) ? tg_sigmoidf((float)(x))                                                   \
                                : ((x) >= 0 ? 1 / (1 + exp(-(double)(x))) : exp((double)(x)) / (1 + exp((double)(x)))))

// Before a loop over j that reads and writes rows of one buffer at offsets H apart (x[j],
// x[H + j]): the iterations are independent, but GCC cannot prove it and would not
// vectorize the loop.
#if defined(__GNUC__) && !defined(__clang__)
#define TG_IVDEP _Pragma("GCC ivdep")
#else
#define TG_IVDEP
#endif

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
// Strides of inputs n..2 are zero.
bool tg_broadcast(tg_graph *g, const char *op, int n, const tg_shape *shapes, tg_shape *out, tg_bcast *plan);

// Visits every output element o of plan p with X0, X1, X2 (names the caller picks): the
// elements of inputs 0, 1 and 2 it reads. BODY runs once per output element, in order.
// Innermost strides are 1, or 0 where an input is stretched. The inner loop is written
// once per pair of inputs 0 and 1's strides there, as literals, so that the compiler
// vectorizes it (same shapes, a bias over rows, a [S, B, 1] weight over [S, B, H]).
#define TG_BCAST_LOOP(p, X0, X1, X2, BODY)                                                                  \
    do {                                                                                                    \
        const int64_t(*st_)[4] = (p)->stride, n3_ = (p)->out[3];                                            \
        int64_t o_ = 0;                                                                                     \
        for (int64_t i0 = 0; i0 < (p)->out[0]; i0++)                                                        \
            for (int64_t i1 = 0; i1 < (p)->out[1]; i1++)                                                    \
                for (int64_t i2 = 0; i2 < (p)->out[2]; i2++, o_ += n3_) {                                   \
                    const int64_t b0_ = i0 * st_[0][0] + i1 * st_[0][1] + i2 * st_[0][2];                   \
                    const int64_t b1_ = i0 * st_[1][0] + i1 * st_[1][1] + i2 * st_[1][2];                   \
                    const int64_t b2_ = i0 * st_[2][0] + i1 * st_[2][1] + i2 * st_[2][2];                   \
                    switch (2 * st_[0][3] + st_[1][3]) {                                                    \
                    case 3: TG_BCAST_INNER_(1, 1, X0, X1, X2, BODY); break;                                 \
                    case 2: TG_BCAST_INNER_(1, 0, X0, X1, X2, BODY); break;                                 \
                    case 1: TG_BCAST_INNER_(0, 1, X0, X1, X2, BODY); break;                                 \
                    default: TG_BCAST_INNER_(0, 0, X0, X1, X2, BODY); break;                                \
                    }                                                                                       \
                }                                                                                           \
    } while (0)
// The inner loop of TG_BCAST_LOOP with inputs 0 and 1 at the literal strides S0 and S1.
#define TG_BCAST_INNER_(S0, S1, X0, X1, X2, BODY)                                                           \
    for (int64_t i3 = 0; i3 < n3_; i3++) {                                                                  \
        const int64_t o = o_ + i3, X0 = b0_ + i3 * (S0), X1 = b1_ + i3 * (S1), X2 = b2_ + i3 * st_[2][3];  \
        (void)X0, (void)X1, (void)X2;                                                                       \
        BODY                                                                                                \
    }

// --- Threads (graph/threadpool.c) ---
// One task of a parallel loop: task i of the job whose context is ctx.
typedef void tg_parallel_fn(void *ctx, int task);
// Runs fn(ctx, i) for i in [0, tasks), split between the calling thread and the library's
// workers; returns when all are done. Runs them all in the caller when there are no
// workers, or when another thread's job holds them.
void tg_parallel_for(int tasks, tg_parallel_fn *fn, void *ctx);
// Whether the next job would be split (workers, idle, and splitting has paid lately); a
// false answer counts as a job run alone, so the caller should then not split it at all.
bool tg_parallel_worth_splitting(void);
// Starts or stops workers so that `threads` threads (the caller's included) share a job.
void tg_pool_resize(int threads);

// --- Matrix products (graph/gemm.c) ---
// Configures BLIS (kernels, threads) once per process; tg_gemm calls it first.
void tg_blas_ensure_init(void);
// C = alpha * op(A) op(B) + beta * C for row-major A, B, C with leading dims lda, ldb,
// ldc; op(X) is X or X^T. One call handles float or double by dtype.
void tg_gemm(tg_dtype dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
             const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c, int64_t ldc);
// How tg_gemm runs a product: BLIS, or the loops that skip its packing (tg_gemm_small).
typedef enum { TG_GEMM_BLIS, TG_GEMM_SMALL } tg_gemm_path;
// The path tg_gemm takes for a product of this shape (graph/gemm.c says why).
tg_gemm_path tg_gemm_choose(tg_dtype dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k);
// The same product through BLIS, whatever its shape.
void tg_gemm_blis(tg_dtype dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                  const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c, int64_t ldc);
// The same product by plain loops, for sizes where BLIS's fixed cost per call dominates
// (graph/gemm_small.c); tg_gemm chooses between the two.
void tg_gemm_small(tg_dtype dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                   const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c, int64_t ldc);
// float32 C = alpha op(A) B + beta C without packing, blocked for the cache (graph/gemm_f32.c);
// tg_gemm_small's float32 products with B read as stored.
void tg_gemm_f32(bool trans_a, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                 const float *b, int64_t ldb, float beta, float *c, int64_t ldc);
// Picks tg_gemm_f32's kernel for this CPU; called once, by tg_blas_ensure_init.
void tg_gemm_f32_init(void);
// The kernel tg_gemm_f32 runs, e.g. "avx512 8x48".
const char *tg_gemm_f32_kernel(void);
// The columns of its register tile: splitting C's columns at multiples of it keeps every
// tile whole.
int64_t tg_gemm_f32_tile_cols(void);

#endif
