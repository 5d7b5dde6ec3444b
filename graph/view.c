// view.c: tensors over another tensor's data, and their gradients.
//
// A view shares its base's data: reshape, a slice that is one contiguous run, detach and
// the in-place linear_add_ all make one here, so that what a view is (which fields it
// shares, which it starts afresh) is decided in one place.
#include <string.h>

#include "tg_internal.h"

tg_tensor *tg_view(tg_graph *g, tg_tensor *base, tg_shape shape, int64_t offset) {
    tg_tensor *v = tg_arena_alloc(g, sizeof *v);
    memset(v, 0, sizeof *v); // no gradient, no node, no name: those belong to base
    v->dtype = base->dtype;
    v->shape = shape;
    v->numel = tg_shape_numel(shape);
    v->data = (char *)base->data + (size_t)offset * tg_dtype_size(base->dtype);
    v->version = base->version; // the same data: a value derived from base is stale for v when it is for base
    return v;
}

// The byte offset of view v's data in its input's, whose gradient has the same layout.
static ptrdiff_t view_offset(const tg_tensor *v) { return (const char *)v->data - (const char *)v->node->in[0]->data; }

bool tg_grad_is_alias(const tg_tensor *t) {
    const tg_tensor *base = t->node && t->node->op->view ? t->node->in[0] : NULL;
    return base && base->grad && t->grad == (const char *)base->grad + view_offset(t);
}
