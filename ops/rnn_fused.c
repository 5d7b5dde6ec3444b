// rnn_fused.c: the pointwise part of an LSTM or GRU step as single ops.
//
// Written with ordinary ops, an LSTM step's pointwise part is a dozen nodes (chunk, three
// sigmoids, two tanh, products, a sum), each with an output and a gradient buffer to fill.
// These ops do the same arithmetic in one pass forward and one backward, recomputing the
// activations from the gates in backward instead of saving them. They are an optional fast
// path: the built-in cells use them, tg_cell_lstm_composite and tg_cell_gru_composite keep
// the op-by-op steps, and tests/test_rnn.c checks that both agree.
#include "tg_internal.h"

// --- LSTM: gates [B, 4H] in PyTorch's row order i, f, g, o ---

// c' = sigmoid(i)*tanh(g) + sigmoid(f)*c
TG_VECTORIZE static void lstm_c_backward(tg_graph *g, tg_node *n) {
    (void)g;
    tg_tensor *gates = n->in[0], *c = n->in[1], *cn = n->out;
    int64_t B = c->shape.d[0], H = c->shape.d[1];
    TG_DISPATCH(cn->dtype, {
        const T *gv = gates->data, *cv = c->data, *dcn = cn->grad; // [B, 4H], [B, H], [B, H]
        T *dg = gates->grad, *dc = c->grad;                       // [B, 4H] or NULL, [B, H] or NULL
        for (int64_t b = 0; b < B; b++) {
            const T *row = gv + b * 4 * H;
            for (int64_t j = 0; j < H; j++) {
                T i = (T)TG_SIGMOID(row[j]), f = (T)TG_SIGMOID(row[H + j]), u = (T)TG_TANH(row[2 * H + j]);
                T d = dcn[b * H + j];
                if (dg) {
                    T *drow = dg + b * 4 * H;
                    drow[j] += d * u * i * (1 - i);
                    drow[H + j] += d * cv[b * H + j] * f * (1 - f);
                    drow[2 * H + j] += d * i * (1 - u * u);
                }
                if (dc) dc[b * H + j] += d * f;
            }
        }
    });
}

static const tg_op LSTM_C_OP = {"lstm_cell_state", lstm_c_backward};

// h' = sigmoid(o)*tanh(c')
TG_VECTORIZE static void lstm_h_backward(tg_graph *g, tg_node *n) {
    (void)g;
    tg_tensor *gates = n->in[0], *cn = n->in[1], *h = n->out;
    int64_t B = cn->shape.d[0], H = cn->shape.d[1];
    TG_DISPATCH(h->dtype, {
        const T *gv = gates->data, *cv = cn->data, *dh = h->grad; // [B, 4H], [B, H], [B, H]
        T *dg = gates->grad, *dc = cn->grad;
        for (int64_t b = 0; b < B; b++)
            for (int64_t j = 0; j < H; j++) {
                T o = (T)TG_SIGMOID(gv[b * 4 * H + 3 * H + j]), t = (T)TG_TANH(cv[b * H + j]), d = dh[b * H + j];
                if (dg) dg[b * 4 * H + 3 * H + j] += d * t * o * (1 - o);
                if (dc) dc[b * H + j] += d * o * (1 - t * t);
            }
    });
}

static const tg_op LSTM_H_OP = {"lstm_cell_output", lstm_h_backward};

// The shapes every fused op checks: gates [B, G*H] against a state [B, H].
static bool check_gates(tg_graph *g, const char *op, tg_tensor *gates, tg_tensor *state, int G) {
    if (!tg_check_float(g, op, 2, gates, state)) return false;
    if (state->shape.n != 2 || gates->shape.n != 2 || gates->shape.d[0] != state->shape.d[0] ||
        gates->shape.d[1] != G * state->shape.d[1]) {
        tg_fail(g, op, "gates %s and state %s: the gates must be [B, %d*H] for a state [B, H]",
                TG_SHAPE_STR(gates->shape), TG_SHAPE_STR(state->shape), G);
        return false;
    }
    return true;
}

TG_VECTORIZE tg_tensor *(tg_lstm_cell_state)(tg_graph *g, tg_tensor *gates, tg_tensor *c) {
    if (!check_gates(g, "lstm_cell_state", gates, c, 4)) return NULL;
    int64_t B = c->shape.d[0], H = c->shape.d[1];
    tg_tensor *cn = tg_new_tensor(g, c->dtype, c->shape);
    TG_DISPATCH(c->dtype, {
        const T *gv = gates->data, *cv = c->data; // [B, 4H], [B, H]
        T *out = cn->data;                        // [B, H]
        for (int64_t b = 0; b < B; b++) {
            const T *row = gv + b * 4 * H;
            for (int64_t j = 0; j < H; j++)
                out[b * H + j] = (T)TG_SIGMOID(row[H + j]) * cv[b * H + j] +
                                 (T)TG_SIGMOID(row[j]) * (T)TG_TANH(row[2 * H + j]);
        }
    });
    tg_record(g, &LSTM_C_OP, cn, 2, gates, c);
    return cn;
}

TG_VECTORIZE tg_tensor *(tg_lstm_cell_output)(tg_graph *g, tg_tensor *gates, tg_tensor *c_next) {
    if (!check_gates(g, "lstm_cell_output", gates, c_next, 4)) return NULL;
    int64_t B = c_next->shape.d[0], H = c_next->shape.d[1];
    tg_tensor *h = tg_new_tensor(g, c_next->dtype, c_next->shape);
    TG_DISPATCH(h->dtype, {
        const T *gv = gates->data, *cv = c_next->data; // [B, 4H], [B, H]
        T *out = h->data;                              // [B, H]
        for (int64_t b = 0; b < B; b++)
            for (int64_t j = 0; j < H; j++)
                out[b * H + j] = (T)TG_SIGMOID(gv[b * 4 * H + 3 * H + j]) * (T)TG_TANH(cv[b * H + j]);
    });
    tg_record(g, &LSTM_H_OP, h, 2, gates, c_next);
    return h;
}

// --- GRU: input part xp [B, 3H] and state part hp [B, 3H] in rows r, z, n ---
// r = sigmoid(xr + hr), z = sigmoid(xz + hz), n = tanh(xn + r*hn), h' = n + z*(h - n)

TG_VECTORIZE static void gru_backward(tg_graph *g, tg_node *n) {
    (void)g;
    tg_tensor *xp = n->in[0], *hp = n->in[1], *h = n->in[2], *hn = n->out;
    int64_t B = h->shape.d[0], H = h->shape.d[1];
    TG_DISPATCH(hn->dtype, {
        const T *xv = xp->data, *hv = hp->data, *prev = h->data, *d = hn->grad; // [B, 3H] x2, [B, H] x2
        T *dx = xp->grad, *dhp = hp->grad, *dh = h->grad;
        for (int64_t b = 0; b < B; b++)
            for (int64_t j = 0; j < H; j++) {
                int64_t k = b * 3 * H + j, s = b * H + j;
                T r = (T)TG_SIGMOID(xv[k] + hv[k]), z = (T)TG_SIGMOID(xv[k + H] + hv[k + H]);
                T nn = (T)TG_TANH(xv[k + 2 * H] + r * hv[k + 2 * H]);
                T dn = d[s] * (1 - z), dz = d[s] * (prev[s] - nn);
                T dpre_n = dn * (1 - nn * nn), dr = dpre_n * hv[k + 2 * H];
                T dpre_r = dr * r * (1 - r), dpre_z = dz * z * (1 - z);
                if (dx) {
                    dx[k] += dpre_r;
                    dx[k + H] += dpre_z;
                    dx[k + 2 * H] += dpre_n;
                }
                if (dhp) {
                    dhp[k] += dpre_r;
                    dhp[k + H] += dpre_z;
                    dhp[k + 2 * H] += dpre_n * r;
                }
                if (dh) dh[s] += d[s] * z;
            }
    });
}

static const tg_op GRU_OP = {"gru_cell", gru_backward};

TG_VECTORIZE tg_tensor *(tg_gru_cell)(tg_graph *g, tg_tensor *xp, tg_tensor *hp, tg_tensor *h) {
    if (!check_gates(g, "gru_cell", xp, h, 3) || !check_gates(g, "gru_cell", hp, h, 3)) return NULL;
    int64_t B = h->shape.d[0], H = h->shape.d[1];
    tg_tensor *hn = tg_new_tensor(g, h->dtype, h->shape);
    TG_DISPATCH(h->dtype, {
        const T *xv = xp->data, *hv = hp->data, *prev = h->data; // [B, 3H], [B, 3H], [B, H]
        T *out = hn->data;                                       // [B, H]
        for (int64_t b = 0; b < B; b++)
            for (int64_t j = 0; j < H; j++) {
                int64_t k = b * 3 * H + j;
                T r = (T)TG_SIGMOID(xv[k] + hv[k]), z = (T)TG_SIGMOID(xv[k + H] + hv[k + H]);
                T nn = (T)TG_TANH(xv[k + 2 * H] + r * hv[k + 2 * H]);
                out[b * H + j] = nn + z * (prev[b * H + j] - nn);
            }
    });
    tg_record(g, &GRU_OP, hn, 3, xp, hp, h);
    return hn;
}
