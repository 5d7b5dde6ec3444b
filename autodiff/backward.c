// backward.c: the reverse walk over the tape.
//
// Every node's backward accumulates into its inputs' gradients, so walking the tape from
// the last node to the first visits each node after all the nodes that used its output:
// by the time we reach it, its output's gradient is complete. Fan-out needs nothing more.
// The same order makes a leaf's gradient complete once the walk has passed the first node on
// the tape that reads it, which tg_backward_opts.leaf_ready reports (a data-parallel trainer
// sends each gradient as soon as it is final).
#include <string.h>

#include "tg_autodiff.h"
#include "tg_internal.h"

// Gives x a zeroed gradient: a view's is the region of its input's gradient under its data
// (making that first if need be); any other tensor's is a buffer of its own.
static void make_grad(tg_graph *g, tg_tensor *x) {
    tg_tensor *base = x->node && x->node->op->view ? x->node->in[0] : NULL;
    if (base && !base->grad && base->node) make_grad(g, base); // a leaf's gradient is its own to keep
    if (base && base->grad) // the region under x's data, at the same byte offset
        x->grad = (char *)base->grad + ((const char *)x->data - (const char *)base->data);
    else
        x->grad = tg_grad_alloc(g, (size_t)x->numel * tg_dtype_size(x->dtype));
}

// The leaves to tell tg_backward_opts.leaf_ready about, each with the tape index of the
// last node in walk order (the first on the tape) that reads it: once the walk has passed
// that node, nothing adds to the leaf's gradient any more.
typedef struct {
    tg_tensor *leaf;
    size_t last_reader;
} ready_leaf;

typedef struct {
    tg_leaf_ready_fn fn; // NULL: nobody asked
    void *user;
    ready_leaf *leaves;  // [n]: by last_reader, ascending; the walk tells them from the end
    size_t n;            // leaves not told yet
} ready_plan;

// Adds t to the pointer set slots (mask + 1 of them, open addressing); false when it was in.
static bool set_insert(const tg_tensor **slots, size_t mask, const tg_tensor *t) {
    for (size_t s = (size_t)(((uint64_t)(uintptr_t)t * 0x9E3779B97F4A7C15ull) >> 20) & mask;; s = (s + 1) & mask) {
        if (slots[s] == t) return false;
        if (!slots[s]) {
            slots[s] = t;
            return true;
        }
    }
}

// Finds, before the walk, every leaf that a node it will pass through (reached) reads, and
// the first such node on the tape. Arena memory only: a training loop's walks stay
// allocation-free.
static void plan_ready(tg_graph *g, ready_plan *plan) {
    size_t n_nodes = tg_graph_node_count(g), n_inputs = 0, cap = 16;
    for (size_t i = 0; i < n_nodes; i++) n_inputs += (size_t)tg_graph_node(g, i)->n_in;
    while (cap < 2 * n_inputs) cap *= 2;
    const tg_tensor **seen = tg_graph_alloc(g, cap * sizeof *seen); // [cap]
    plan->leaves = tg_arena_alloc(g, (n_inputs ? n_inputs : 1) * sizeof *plan->leaves);
    plan->n = 0;
    for (size_t i = 0; i < n_nodes; i++) { // ascending: the first reader found is the last one walked
        const tg_node *n = tg_graph_node(g, i);
        if (!n->reached) continue;
        for (int k = 0; k < n->n_in; k++) {
            tg_tensor *x = n->in[k];
            if (x && x->requires_grad && !x->node && set_insert(seen, cap - 1, x))
                plan->leaves[plan->n++] = (ready_leaf){x, i};
        }
    }
}

// Tells the leaves whose last reader the walk has just passed (tape index i). A leaf's
// weight-gradient products may still be staged (ops/weight_grad.c): those run first.
static void tell_ready(tg_graph *g, ready_plan *plan, size_t i) {
    while (plan->n && plan->leaves[plan->n - 1].last_reader >= i) {
        tg_tensor *leaf = plan->leaves[--plan->n].leaf;
        tg_weight_grad_flush_leaf(g, leaf);
        plan->fn(leaf, plan->user);
    }
}

// Passes node n's output gradient on to its inputs and releases it; false when the
// numerics check finds a non-finite gradient.
static bool run_node(tg_graph *g, tg_node *n, int walk_id) {
    if (walk_id) n->spent_by = walk_id;
    for (int k = 0; k < n->n_in; k++) {
        tg_tensor *x = n->in[k];
        if (x && x->requires_grad && !x->grad) make_grad(g, x);
    }
    if (n->op->backward) n->op->backward(g, n);
    if (!tg_check_node_gradients(g, n)) return false;
    // Every consumer of this output came later on the tape and has run: its gradient is
    // spent. As in PyTorch, intermediate gradients are not kept after backward. A view's
    // is part of its input's, still being summed.
    if (!tg_grad_is_alias(n->out))
        tg_grad_release(g, n->out->grad, (size_t)n->out->numel * tg_dtype_size(n->out->dtype));
    n->out->grad = NULL;
    return true;
}

// The walk behind tg_backward, tg_backward_seed and tg_backward_with.
static bool walk(tg_graph *g, tg_tensor *out, const void *seed, bool retain_graph, ready_plan *plan) {
    if (!out) {
        tg_fail(g, "backward", "output is NULL (did an earlier op fail?)");
        return false;
    }
    if (out->dtype == TG_I32) {
        tg_fail(g, "backward", "output is int32; only float outputs have gradients");
        return false;
    }
    if (!out->requires_grad) {
        tg_fail(g, "backward", "output does not require a gradient: no parameter or tensor made with "
                               "requires_grad was used to compute it (or recording was off)");
        return false;
    }
    size_t bytes = (size_t)out->numel * tg_dtype_size(out->dtype);
    if (!out->node) { // a leaf: its gradient is the seed itself
        TG_DISPATCH(out->dtype, {
            T *gr = out->grad;
            const T *s = seed;
            for (int64_t i = 0; i < out->numel; i++) gr[i] += s[i];
        });
        if (plan->fn) plan->fn(out, plan->user);
        return true;
    }

    // A walk through nodes an earlier walk spent would add their gradients into the leaves
    // again: PyTorch refuses it (their buffers are freed) unless the earlier walk retained the
    // graph, and so do we. Which nodes this walk will pass through is found before anything
    // is added, so a refused walk changes no gradient.
    size_t n_nodes = tg_graph_node_count(g);
    const tg_node *spent = NULL;
    out->node->reached = true;
    for (size_t i = n_nodes; i-- > 0;) {
        tg_node *n = tg_graph_node(g, i);
        if (!n->reached) continue;
        if (n->spent_by && !spent) spent = n;
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] && n->in[k]->requires_grad && n->in[k]->node) n->in[k]->node->reached = true;
    }
    if (spent) {
        for (size_t i = 0; i < n_nodes; i++) tg_graph_node(g, i)->reached = false;
        const char *file;
        int line;
        tg_graph_spent_walk_site(g, spent->spent_by, &file, &line);
        tg_fail(g, "backward", "the graph was already walked through %s (made at %s:%d) by the backward called "
                               "at %s:%d, which did not retain it; walking it again would add its gradients "
                               "twice. Retain it in that first backward with tg_backward_with(g, out, "
                               "&(tg_backward_opts){.retain_graph = true}) (PyTorch's retain_graph=True), or "
                               "tg_graph_reset and record again",
                spent->op->name, spent->file ? spent->file : "?", spent->line, file, line);
        return false;
    }
    int walk_id = 0;
    if (!retain_graph) {
        const char *file;
        int line;
        tg_graph_call_site(g, &file, &line);
        walk_id = tg_graph_spend_walk(g, file, line);
    }
    if (plan->fn) plan_ready(g, plan);

    // Intermediate gradients start from zero on every walk; leaves keep accumulating.
    for (size_t i = 0; i < n_nodes; i++) tg_graph_node(g, i)->out->grad = NULL;
    out->grad = tg_arena_alloc(g, bytes);
    memcpy(out->grad, seed, bytes);

    for (size_t i = n_nodes; i-- > 0;) {
        tg_node *n = tg_graph_node(g, i);
        n->reached = false;
        // A node no gradient reached has nothing to pass on.
        if (n->out->grad && !run_node(g, n, walk_id)) {
            for (size_t j = 0; j < i; j++) tg_graph_node(g, j)->reached = false; // not visited now
            tg_weight_grads_flush(g);
            return false;
        }
        if (plan->fn) tell_ready(g, plan, i);
    }
    tg_weight_grads_flush(g); // leaves' gradients are complete only now
    return true;
}

bool(tg_backward_seed)(tg_graph *g, tg_tensor *out, const void *seed) {
    return walk(g, out, seed, false, &(ready_plan){0});
}

bool(tg_backward_with)(tg_graph *g, tg_tensor *out, const tg_backward_opts *opts) {
    tg_backward_opts o = opts ? *opts : (tg_backward_opts){0};
    ready_plan plan = {.fn = o.leaf_ready, .user = o.leaf_ready_user};
    if (o.seed) return walk(g, out, o.seed, o.retain_graph, &plan);
    if (out && out->numel != 1) {
        char s[64];
        tg_fail(g, "backward", "loss has shape %s; backward from a non-scalar needs a seed (tg_backward_seed, "
                               "or tg_backward_with's .seed)", tg_shape_str(out->shape, s, sizeof s));
        return false;
    }
    double one64 = 1.0;
    float one32 = 1.0f;
    return walk(g, out, out && out->dtype == TG_F32 ? (const void *)&one32 : (const void *)&one64, o.retain_graph,
                &plan);
}

bool(tg_backward)(tg_graph *g, tg_tensor *loss) { return (tg_backward_with)(g, loss, NULL); }
