// tg_autodiff.h: the backward walk, the gradient checker and Graphviz export.
#ifndef TG_AUTODIFF_H
#define TG_AUTODIFF_H

#include <stdio.h>

#include "tg_graph.h"

#ifdef __cplusplus
extern "C" {
#endif

// Back-propagates from a scalar loss: d loss/d loss = 1. Gradients accumulate (+=) into
// every leaf that requires one (parameters, tg_tensor_create'd inputs). As in PyTorch,
// intermediate tensors do not keep their gradients afterwards (the buffers are reused
// during the walk), and the walk spends the nodes it passes through, as PyTorch frees their
// buffers: a later backward through any of them (before tg_graph_reset) fails before adding
// anything, naming the node and the backward that spent it, unless that one retained the
// graph (tg_backward_with, .retain_graph). Returns false (through the error path) when loss
// is not a scalar or its graph is spent.
bool tg_backward(tg_graph *g, tg_tensor *loss);
// Back-propagates from any output, given the gradient of the output (out->numel values of
// its dtype) as the seed. Spends the nodes it walks as tg_backward does.
bool tg_backward_seed(tg_graph *g, tg_tensor *out, const void *seed);

// Told during a walk that leaf's gradient is complete: nothing later in the walk adds to it.
typedef void (*tg_leaf_ready_fn)(tg_tensor *leaf, void *user);

typedef struct {
    const void *seed;  // d out (out->numel values of its dtype); NULL for a scalar's 1
    bool retain_graph; // leave the nodes walkable again, as PyTorch's backward(retain_graph=True)
    // When set, called exactly once per leaf the walk reaches (a tensor without a node that
    // requires a gradient and is an input of a node the walk passes through, or out itself),
    // as soon as the walk has passed the last node on the tape that reads it, with its
    // gradient complete: what a data-parallel trainer needs to start sending a gradient
    // while the walk goes on. Leaves are told in walk order. A walk that fails stops telling.
    tg_leaf_ready_fn leaf_ready;
    void *leaf_ready_user; // passed to leaf_ready
} tg_backward_opts;
// tg_backward or tg_backward_seed with options (opts NULL: the defaults, all zero).
// With retain_graph, a later backward through the same nodes accumulates into the leaves again.
bool tg_backward_with(tg_graph *g, tg_tensor *out, const tg_backward_opts *opts);

// Builds the function to check in g from the tensors being differentiated (kept in ctx)
// and returns its output, of any shape.
typedef tg_tensor *(*tg_graph_fn)(tg_graph *g, void *ctx);

typedef struct {
    double eps;    // central-difference step (default 1e-6)
    double atol;   // pass when |analytic - numeric| <= atol + rtol*|numeric| (default 1e-5)
    double rtol;   // (default 1e-3)
    uint64_t seed; // seeds the random weights that scalarise a non-scalar output
} tg_gradcheck_opts;

// PyTorch's gradcheck defaults: eps 1e-6, atol 1e-5, rtol 1e-3.
tg_gradcheck_opts tg_gradcheck_defaults(void);

// Checks the analytic gradient of sum(w * fn(...)) with respect to each of the n float64
// tensors wrt[i] (made with tg_tensor_create(..., true)) against central differences,
// w being fixed random weights. Returns true when every element passes; otherwise writes
// which input, which element and both values into report (len bytes; may be NULL).
// opts may be NULL for the defaults. The tensors' data is restored afterwards.
bool tg_gradcheck(tg_graph_fn fn, void *ctx, tg_tensor *const *wrt, int n, const tg_gradcheck_opts *opts,
                  char *report, size_t len);

// Call-site recording: the error of a walk through spent nodes names the backward that spent them.
#define tg_backward(g, ...) tg_backward(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_backward_seed(g, ...) tg_backward_seed(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_backward_with(g, ...) tg_backward_with(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)

// Writes the tape as a Graphviz DOT digraph: one box per op with its output's shape,
// parameters (named leaves) as filled ellipses, other leaves as plain ellipses.
void tg_graph_write_dot(const tg_graph *g, FILE *out);

#ifdef __cplusplus
}
#endif
#endif
