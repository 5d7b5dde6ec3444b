// tg_graph.h: a graph is an arena plus a tape.
//
// Ops compute their value when called (define-by-run) and append a node to the tape of
// the graph they are given. Every tensor an op makes lives in the graph's arena and is
// valid until tg_graph_reset or tg_graph_free. Reset is O(1): the arena's blocks are kept,
// so a loop that builds a graph of the same shapes each iteration allocates nothing after
// its first iteration.
#ifndef TG_GRAPH_H
#define TG_GRAPH_H

#include "tg_tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tg_graph tg_graph;

// A new, empty graph. Returns NULL only when memory is exhausted.
tg_graph *tg_graph_new(void);
// Frees the graph, its arena and its tape (NULL is fine).
void tg_graph_free(tg_graph *g);
// Forgets every node and tensor of the graph, keeping the memory for the next iteration.
void tg_graph_reset(tg_graph *g);

// Gradient recording on or off (default on). Off is PyTorch's no_grad: ops still compute,
// but record nothing and their outputs require no gradient.
void tg_graph_set_grad_enabled(tg_graph *g, bool enabled);
bool tg_graph_grad_enabled(const tg_graph *g);
// Training mode (default on): dropout is active only in training mode.
void tg_graph_set_training(tg_graph *g, bool training);
bool tg_graph_training(const tg_graph *g);

// Numerics check (default off; on when the environment has TG_CHECK_NUMERICS=1 at
// tg_graph_new): the first op whose output, or whose backward's gradient, holds NaN or Inf
// is reported through the error path with its name, its inputs' shapes and its call site.
void tg_graph_set_check_numerics(tg_graph *g, bool on);
bool tg_graph_check_numerics(const tg_graph *g);

// Number of nodes on the tape.
size_t tg_graph_node_count(const tg_graph *g);

typedef struct {
    size_t arena_reserved; // bytes held by the arena's blocks
    size_t arena_used;     // bytes handed out since the last reset
    size_t heap_allocs;    // heap allocations the graph has made since it was created
} tg_graph_stats;
// Memory figures of the graph.
tg_graph_stats tg_graph_get_stats(const tg_graph *g);

// A zero-filled tensor in the graph's arena; a leaf (no node, no gradient).
tg_tensor *tg_zeros(tg_graph *g, tg_dtype dtype, tg_shape shape);
// A tensor of ones in the arena.
tg_tensor *tg_ones(tg_graph *g, tg_dtype dtype, tg_shape shape);
// A tensor filled with one value in the arena.
tg_tensor *tg_full(tg_graph *g, tg_dtype dtype, tg_shape shape, double value);
// A copy of data (numel values of dtype) in the arena.
tg_tensor *tg_from_data(tg_graph *g, tg_dtype dtype, tg_shape shape, const void *data);
// U(lo, hi) values drawn from rng, in the arena.
tg_tensor *tg_rand_uniform(tg_graph *g, tg_dtype dtype, tg_shape shape, tg_rng *rng, double lo, double hi);
// N(mean, std^2) values drawn from rng, in the arena.
tg_tensor *tg_rand_normal(tg_graph *g, tg_dtype dtype, tg_shape shape, tg_rng *rng, double mean, double std);
// Raw arena memory, 64-byte aligned and zeroed, freed by reset; for modules' scratch data.
void *tg_graph_alloc(tg_graph *g, size_t bytes);

// --- Errors -------------------------------------------------------------------------
// A programming error (a shape or dtype mismatch, an index out of range) is reported
// through one handler, with the op's name, the shapes and the call site. The default
// handler prints the message to stderr and aborts. A handler that returns makes the op
// return NULL; ops given NULL report that too, so errors do not cascade into crashes.
typedef void (*tg_error_handler)(const char *message, void *user);
// Replaces the error handler for the whole process; NULL restores the default. Safe to call
// while other threads run; the handler itself may then be called from any thread at once.
void tg_set_error_handler(tg_error_handler handler, void *user);
// Sets a handler for the calling thread only, which takes precedence over the process's;
// NULL removes it. A data-parallel step's workers adopt the handler of the thread calling it.
void tg_set_thread_error_handler(tg_error_handler handler, void *user);
// Reports a programming error through the handler as "tg_<op>: <message> (called at
// file:line)"; g may be NULL. Returns NULL, so code can `return tg_fail(...)`. For modules
// and cells that check their own inputs.
void *tg_fail(tg_graph *g, const char *op, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
// The last error message reported on this graph, or NULL when there was none.
const char *tg_graph_last_error(const tg_graph *g);

// Records the call site of the next op on g; the op macros in tg_ops.h call it for you.
tg_graph *tg_here(tg_graph *g, const char *file, int line);

#ifdef __cplusplus
}
#endif
#endif
