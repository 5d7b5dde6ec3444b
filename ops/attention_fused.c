// attention_fused.c: an additive attention score as a single op.
//
// Written with ordinary ops, v^T tanh(k + q) over every source position is a broadcast sum
// and a tanh, each keeping a [B, S, A] tensor for backward, and a product with v: per
// decoder step, two passes that write [B, S, A] and two more in backward. This op reads the
// keys once, forward, and keeps tanh(k + q), which backward reads instead of recomputing it
// (that was a third of the op's time).
// It is an optional fast path: the Bahdanau and concat scores use it, and
// tests/test_attention.c checks it against the op-by-op expression.
#include "tg_internal.h"
#include "tg_ops.h"

// --- scores [B, S] = sum_a v_a tanh(keys_ba + query_ba): keys [B, S, A], query [B, A], v [1, A] ---

// What forward keeps for backward: e = tanh(keys + query).
typedef struct {
    const void *e; // [B, S, A]
} additive_scores_state;

TG_VECTORIZE static void additive_backward(tg_graph *g, tg_node *n) {
    tg_tensor *keys = n->in[0], *query = n->in[1], *v = n->in[2], *out = n->out;
    int64_t B = keys->shape.d[0], S = keys->shape.d[1], A = keys->shape.d[2];
    TG_DISPATCH(out->dtype, {
        const T *ev = TG_STATE(n, additive_scores_state)->e, *vv = v->data, *ds = out->grad; // [B, S, A], [A], [B, S]
        T *dk = tg_grad_or_scratch(g, keys), *dq = tg_grad_or_scratch(g, query), *dv = tg_grad_or_scratch(g, v);
        for (int64_t b = 0; b < B; b++)
            for (int64_t s = 0; s < S; s++) {
                const T *e = ev + (b * S + s) * A;                   // [A]
                T *dkr = dk + (b * S + s) * A, *dqr = dq + b * A;     // [A] each
                T d = ds[b * S + s];
                TG_IVDEP for (int64_t a = 0; a < A; a++) {
                    T dpre = d * vv[a] * (1 - e[a] * e[a]);
                    dv[a] += d * e[a];
                    dkr[a] += dpre;
                    dqr[a] += dpre;
                }
            }
    });
}

static const tg_op ADDITIVE_OP = {.name = "additive_scores", .backward = additive_backward};

TG_VECTORIZE tg_tensor *(tg_additive_scores)(tg_graph *g, tg_tensor *keys, tg_tensor *query, tg_tensor *v) {
    if (!tg_check_float(g, "additive_scores", 3, keys, query, v)) return NULL;
    if (keys->shape.n != 3 || query->shape.n != 2 || query->shape.d[0] != keys->shape.d[0] ||
        query->shape.d[1] != keys->shape.d[2] || !tg_shape_equal(v->shape, tg_shape2(1, keys->shape.d[2])))
        return tg_fail(g, "additive_scores", "keys %s, query %s and v %s; they must be [B, S, A], [B, A] and [1, A]",
                       TG_SHAPE_STR(keys->shape), TG_SHAPE_STR(query->shape), TG_SHAPE_STR(v->shape));
    int64_t B = keys->shape.d[0], S = keys->shape.d[1], A = keys->shape.d[2];
    tg_tensor *out = tg_new_tensor(g, keys->dtype, tg_shape2(B, S));
    // All of e when the op is recorded; else one row, rewritten for each (b, s).
    bool keep = tg_will_record(g, 3, (tg_tensor *[]){keys, query, v});
    void *e_all = tg_arena_alloc(g, (size_t)(keep ? B * S : 1) * (size_t)A * tg_dtype_size(keys->dtype));
    TG_DISPATCH(out->dtype, {
        const T *kv = keys->data, *qv = query->data, *vv = v->data; // [B, S, A], [B, A], [A]
        T *sv = out->data;                                           // [B, S]
        for (int64_t b = 0; b < B; b++)
            for (int64_t s = 0; s < S; s++) {
                const T *k = kv + (b * S + s) * A, *q = qv + b * A; // [A] each
                T *e = (T *)e_all + (keep ? b * S + s : 0) * A;      // [A]
                TG_IVDEP for (int64_t a = 0; a < A; a++) e[a] = (T)TG_TANH(k[a] + q[a]);
                // 16 running sums, so that the loop vectorizes without reordering a sum
                // the compiler must keep in order.
                T lane[16] = {0}, sum = 0;
                int64_t a = 0;
                for (; a + 16 <= A; a += 16)
                    for (int l = 0; l < 16; l++) lane[l] += vv[a + l] * e[a + l];
                for (; a < A; a++) sum += vv[a] * e[a];
                for (int l = 0; l < 16; l++) sum += lane[l];
                sv[b * S + s] = sum;
            }
    });
    tg_node *n = tg_record(g, &ADDITIVE_OP, out, 3, keys, query, v);
    TG_SAVE(g, n, additive_scores_state, {.e = e_all});
    return out;
}
