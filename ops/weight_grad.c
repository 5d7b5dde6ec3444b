// weight_grad.c: a leaf weight's gradient from many few-row products, summed in few large ones.
//
// A recurrent weight is used once per time step, and each use adds dy^T x to its gradient:
// at batch 1 an outer product, [4H, 1] x [1, H], which passes over all of dW (64 KB at
// H = 64: more than L1 holds) for a few thousand multiply-adds. Summed step by step these
// passes took a third of lm-lstm-tiny-b1's training step. At batch 64 each step's product
// still reads and writes all of dW (4 MB for a 2048 x 512 weight) for 64 rows of work: four
// steps staged into one product made lm-lstm-2x512's step 6% faster. Here the rows of dy and x are
// copied side by side into staging buffers instead, and dW += DY^T X runs as one product of
// up to STAGE_ROWS rows, when the buffers fill and at the end of the backward walk.
//
// Only leaves are staged: nothing reads a leaf's gradient during the walk (a non-leaf's
// gradient is read by its own node's backward, which could run before the flush).
#include <string.h>

#include "tg_internal.h"
#include "tg_ops.h"

#define STAGE_ROWS 256 // rows per product: enough for BLIS to run near its peak
#define MAX_STAGED 16  // weights staged at once; others are summed at once, which is only slower

typedef struct {
    tg_tensor *w; // the leaf weight [out, in]
    int64_t rows; // rows staged so far
    void *dy;     // [STAGE_ROWS, out]
    void *x;      // [STAGE_ROWS, in]
} staged_weight;

struct tg_weight_grads {
    staged_weight s[MAX_STAGED];
    int n;
};

// dW [out, in] += dy^T [out, rows] x [rows, in]
static void add_product(tg_tensor *w, const void *dy, const void *x, int64_t rows) {
    int64_t out = w->shape.d[0], in = w->shape.d[1];
    tg_gemm(w->dtype, true, false, out, in, rows, 1.0, dy, out, x, in, 1.0, w->grad, in);
}

static void flush(staged_weight *s) {
    if (s->rows) add_product(s->w, s->dy, s->x, s->rows);
    s->rows = 0;
}

void tg_weight_grad_add(tg_graph *g, tg_tensor *w, const void *dy, const void *x, int64_t rows) {
    struct tg_weight_grads **all = tg_graph_weight_grads(g);
    if (w->node || rows > STAGE_ROWS / 4) { // a non-leaf, or enough rows to run well as it is
        add_product(w, dy, x, rows);
        return;
    }
    if (!*all) *all = tg_graph_alloc(g, sizeof **all);
    struct tg_weight_grads *wg = *all;
    int i = 0;
    while (i < wg->n && wg->s[i].w != w) i++;
    if (i == MAX_STAGED) {
        add_product(w, dy, x, rows);
        return;
    }
    int64_t out = w->shape.d[0], in = w->shape.d[1];
    size_t es = tg_dtype_size(w->dtype);
    staged_weight *s = &wg->s[i];
    if (i == wg->n) {
        wg->n++;
        *s = (staged_weight){w, 0, tg_arena_alloc(g, (size_t)(STAGE_ROWS * out) * es),
                             tg_arena_alloc(g, (size_t)(STAGE_ROWS * in) * es)};
    }
    if (s->rows + rows > STAGE_ROWS) flush(s);
    memcpy((char *)s->dy + (size_t)(s->rows * out) * es, dy, (size_t)(rows * out) * es);
    memcpy((char *)s->x + (size_t)(s->rows * in) * es, x, (size_t)(rows * in) * es);
    s->rows += rows;
}

void tg_weight_grad_flush_leaf(tg_graph *g, const tg_tensor *w) {
    struct tg_weight_grads *wg = *tg_graph_weight_grads(g);
    for (int i = 0; wg && i < wg->n; i++)
        if (wg->s[i].w == w) flush(&wg->s[i]);
}

void tg_weight_grads_flush(tg_graph *g) {
    struct tg_weight_grads **all = tg_graph_weight_grads(g);
    if (!*all) return;
    for (int i = 0; i < (*all)->n; i++) flush(&(*all)->s[i]);
    *all = NULL; // the buffers stay in the arena until reset; the next walk makes its own
}
