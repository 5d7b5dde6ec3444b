// index.c: embedding, a lookup of rows of a weight matrix by i32 ids.
//
// Every id is checked before anything is written, so a bad id leaves no half-made output.
// Backward scatter-adds: a row looked up k times receives the sum of its k output
// gradients, which is why it accumulates instead of assigning.
#include <string.h>

#include "tg_internal.h"
#include "tg_ops.h"

TG_VECTORIZE static void embedding_backward(tg_graph *g, tg_node *n) {
    (void)g;
    tg_tensor *w = n->in[0], *ids = n->in[1], *y = n->out;
    if (!w->grad) return;
    int64_t E = w->shape.d[1];
    const int32_t *id = ids->data; // [S]
    TG_DISPATCH(y->dtype, {
        const T *gy = y->grad; // [S, E]
        T *gw = w->grad;       // [V, E]
        for (int64_t i = 0; i < ids->numel; i++) {
            T *row = gw + (int64_t)id[i] * E;
            const T *src = gy + i * E;
            for (int64_t e = 0; e < E; e++) row[e] += src[e];
        }
    });
}

static const tg_op EMBEDDING_OP = {.name = "embedding", .backward = embedding_backward};

tg_tensor *(tg_embedding)(tg_graph *g, tg_tensor *weight, tg_tensor *ids) {
    if (!tg_check_float(g, "embedding", 1, weight) || !tg_check_i32(g, "embedding", ids, "ids")) return NULL;
    if (weight->shape.n != 2)
        return tg_fail(g, "embedding", "weight %s must be [num_embeddings, embedding_dim]", TG_SHAPE_STR(weight->shape));
    if (ids->shape.n > TG_MAX_DIMS - 1)
        return tg_fail(g, "embedding", "ids %s have %d dimensions; at most %d, as the output adds one", TG_SHAPE_STR(ids->shape),
                       ids->shape.n, TG_MAX_DIMS - 1);
    int64_t V = weight->shape.d[0], E = weight->shape.d[1];
    const int32_t *id = ids->data; // [S]
    for (int64_t i = 0; i < ids->numel; i++)
        if (id[i] < 0 || id[i] >= V) {
            char at[96];
            return tg_fail(g, "embedding", "id %d at position %s of ids %s is out of range [0, %lld) for weight %s",
                           (int)id[i], tg_index_str(ids->shape, i, at, sizeof at), TG_SHAPE_STR(ids->shape), (long long)V, TG_SHAPE_STR(weight->shape));
        }
    tg_shape ys = ids->shape; // [S, E]
    ys.d[ys.n++] = E;
    tg_tensor *y = tg_new_tensor(g, weight->dtype, ys);
    size_t row = (size_t)E * tg_dtype_size(weight->dtype);
    for (int64_t i = 0; i < ids->numel; i++)
        if (row) memcpy((char *)y->data + (size_t)i * row, (const char *)weight->data + (size_t)id[i] * row, row);
    tg_record(g, &EMBEDDING_OP, y, 2, weight, ids);
    return y;
}
