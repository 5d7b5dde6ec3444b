// rnn_fused.c: the pointwise part of an LSTM or GRU step as single ops.
//
// Written with ordinary ops, an LSTM step's pointwise part is a dozen nodes (chunk, three
// sigmoids, two tanh, products, a sum), each with an output and a gradient buffer to fill.
// These ops do the same arithmetic in one pass forward and one backward, recomputing the
// activations from the gates in backward instead of saving them. They are an optional fast
// path: the built-in cells use them, tg_cell_lstm_composite and tg_cell_gru_composite keep
// the op-by-op steps, and tests/test_rnn.c checks that both agree.
#include "tg_internal.h"
#include "tg_ops.h"

// --- LSTM: gates [B, 4H] in PyTorch's row order i, f, g, o ---

// c' = sigmoid(i)*tanh(g) + sigmoid(f)*c
TG_VECTORIZE static void lstm_c_backward(tg_graph *g, tg_node *n) {
    tg_tensor *gates = n->in[0], *c = n->in[1], *cn = n->out;
    int64_t B = c->shape.d[0], H = c->shape.d[1];
    TG_DISPATCH(cn->dtype, {
        const T *gv = gates->data, *cv = c->data, *dcn = cn->grad;     // [B, 4H], [B, H] x2
        T *dg = tg_grad_or_scratch(g, gates), *dc = tg_grad_or_scratch(g, c); // [B, 4H], [B, H]
        for (int64_t b = 0; b < B; b++) {
            const T *gi = gv + b * 4 * H, *gf = gi + H, *gg = gi + 2 * H, *cb = cv + b * H, *d = dcn + b * H; // [H]
            T *di = dg + b * 4 * H, *df = di + H, *du = di + 2 * H, *dcb = dc + b * H;                      // [H]
            TG_IVDEP for (int64_t j = 0; j < H; j++) {
                T i = (T)TG_SIGMOID(gi[j]), f = (T)TG_SIGMOID(gf[j]), u = (T)TG_TANH(gg[j]);
                di[j] += d[j] * u * i * (1 - i);
                df[j] += d[j] * cb[j] * f * (1 - f);
                du[j] += d[j] * i * (1 - u * u);
                dcb[j] += d[j] * f;
            }
        }
    });
}

static const tg_op LSTM_C_OP = {.name = "lstm_cell_state", .backward = lstm_c_backward};

// h' = sigmoid(o)*tanh(c')
TG_VECTORIZE static void lstm_h_backward(tg_graph *g, tg_node *n) {
    (void)g;
    tg_tensor *gates = n->in[0], *cn = n->in[1], *h = n->out;
    int64_t B = cn->shape.d[0], H = cn->shape.d[1];
    TG_DISPATCH(h->dtype, {
        const T *gv = gates->data, *cv = cn->data, *dh = h->grad;        // [B, 4H], [B, H] x2
        T *dg = tg_grad_or_scratch(g, gates), *dc = tg_grad_or_scratch(g, cn); // [B, 4H], [B, H]
        for (int64_t b = 0; b < B; b++)
            for (int64_t j = 0; j < H; j++) {
                T o = (T)TG_SIGMOID(gv[b * 4 * H + 3 * H + j]), t = (T)TG_TANH(cv[b * H + j]), d = dh[b * H + j];
                dg[b * 4 * H + 3 * H + j] += d * t * o * (1 - o);
                dc[b * H + j] += d * o * (1 - t * t);
            }
    });
}

static const tg_op LSTM_H_OP = {.name = "lstm_cell_output", .backward = lstm_h_backward};

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
    tg_tensor *xp = n->in[0], *hp = n->in[1], *h = n->in[2], *hn = n->out;
    int64_t B = h->shape.d[0], H = h->shape.d[1];
    TG_DISPATCH(hn->dtype, {
        const T *xv = xp->data, *hv = hp->data, *prev = h->data, *d = hn->grad; // [B, 3H] x2, [B, H] x2
        T *dx = tg_grad_or_scratch(g, xp), *dhp = tg_grad_or_scratch(g, hp), *dh = tg_grad_or_scratch(g, h); // [B, 3H] x2, [B, H]
        for (int64_t b = 0; b < B; b++) {
            const T *xr = xv + b * 3 * H, *xz = xr + H, *xn = xr + 2 * H; // [H] each
            const T *hr = hv + b * 3 * H, *hz = hr + H, *hn_ = hr + 2 * H, *hb = prev + b * H, *db = d + b * H;
            T *dxr = dx + b * 3 * H, *dxz = dxr + H, *dxn = dxr + 2 * H;
            T *dhr = dhp + b * 3 * H, *dhz = dhr + H, *dhn = dhr + 2 * H, *dhb = dh + b * H;
            TG_IVDEP for (int64_t j = 0; j < H; j++) {
                T r = (T)TG_SIGMOID(xr[j] + hr[j]), z = (T)TG_SIGMOID(xz[j] + hz[j]);
                T nn = (T)TG_TANH(xn[j] + r * hn_[j]);
                T dn = db[j] * (1 - z), dz = db[j] * (hb[j] - nn);
                T dpre_n = dn * (1 - nn * nn), dr = dpre_n * hn_[j];
                T dpre_r = dr * r * (1 - r), dpre_z = dz * z * (1 - z);
                dxr[j] += dpre_r;
                dxz[j] += dpre_z;
                dxn[j] += dpre_n;
                dhr[j] += dpre_r;
                dhz[j] += dpre_z;
                dhn[j] += dpre_n * r;
                dhb[j] += db[j] * z;
            }
        }
    });
}

static const tg_op GRU_OP = {.name = "gru_cell", .backward = gru_backward};

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
