// backward.c: the reverse walk over the tape.
//
// Every node's backward accumulates into its inputs' gradients, so walking the tape from
// the last node to the first visits each node after all the nodes that used its output:
// by the time we reach it, its output's gradient is complete. Fan-out needs nothing more.
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

// The walk behind tg_backward, tg_backward_seed and tg_backward_with.
static bool walk(tg_graph *g, tg_tensor *out, const void *seed, bool retain_graph) {
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

    // Intermediate gradients start from zero on every walk; leaves keep accumulating.
    for (size_t i = 0; i < n_nodes; i++) tg_graph_node(g, i)->out->grad = NULL;
    out->grad = tg_arena_alloc(g, bytes);
    memcpy(out->grad, seed, bytes);

    for (size_t i = n_nodes; i-- > 0;) {
        tg_node *n = tg_graph_node(g, i);
        n->reached = false;
        if (!n->out->grad) continue; // no gradient reached this node: nothing to pass on
        if (walk_id) n->spent_by = walk_id;
        for (int k = 0; k < n->n_in; k++) {
            tg_tensor *x = n->in[k];
            if (x && x->requires_grad && !x->grad) make_grad(g, x);
        }
        if (n->op->backward) n->op->backward(g, n);
        if (!tg_check_node_gradients(g, n)) {
            for (size_t j = 0; j < i; j++) tg_graph_node(g, j)->reached = false; // not visited now
            tg_weight_grads_flush(g);
            return false;
        }
        // Every consumer of this output came later on the tape and has run: its gradient is
        // spent. As in PyTorch, intermediate gradients are not kept after backward. A view's
        // is part of its input's, still being summed.
        if (!tg_grad_is_alias(n->out))
            tg_grad_release(g, n->out->grad, (size_t)n->out->numel * tg_dtype_size(n->out->dtype));
        n->out->grad = NULL;
    }
    tg_weight_grads_flush(g); // leaves' gradients are complete only now
    return true;
}

bool(tg_backward_seed)(tg_graph *g, tg_tensor *out, const void *seed) { return walk(g, out, seed, false); }

bool(tg_backward_with)(tg_graph *g, tg_tensor *out, const tg_backward_opts *opts) {
    tg_backward_opts o = opts ? *opts : (tg_backward_opts){0};
    if (o.seed) return walk(g, out, o.seed, o.retain_graph);
    if (out && out->numel != 1) {
        char s[64];
        tg_fail(g, "backward", "loss has shape %s; backward from a non-scalar needs a seed (tg_backward_seed, "
                               "or tg_backward_with's .seed)", tg_shape_str(out->shape, s, sizeof s));
        return false;
    }
    double one64 = 1.0;
    float one32 = 1.0f;
    return walk(g, out, out && out->dtype == TG_F32 ? (const void *)&one32 : (const void *)&one64, o.retain_graph);
}

bool(tg_backward)(tg_graph *g, tg_tensor *loss) { return (tg_backward_with)(g, loss, NULL); }
