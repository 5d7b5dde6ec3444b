// rnn_fused.c: the pointwise part of an LSTM or GRU step as single ops.
//
// Written with ordinary ops, an LSTM step's pointwise part is a dozen nodes (chunk, three
// sigmoids, two tanh, products, a sum), each with an output and a gradient buffer to fill.
// These ops do the same arithmetic in one pass forward and one backward, which reads the
// activations forward computed instead of recomputing them (three to five transcendentals
// per element, a tenth of a bidirectional LSTM's step): the LSTM ops write them over the
// gates (the step's own rows of the layer's input projection, which nothing else reads
// again), the GRU keeps them beside its output, [B, 3H] a step. They are an optional fast
// path: the built-in cells use them, tg_cell_lstm_composite and tg_cell_gru_composite keep
// the op-by-op steps, and tests/test_rnn.c checks that both agree.
#include "tg_internal.h"
#include "tg_ops.h"

// --- LSTM: gates [B, 4H] in PyTorch's row order i, f, g, o ---
// Both ops write the activations of the gates they read over those gates: backward reads
// them there, and an LSTM step keeps no more memory than its gates.

// c' = sigmoid(i)*tanh(g) + sigmoid(f)*c; gates' i, f, g already activated by forward.
TG_VECTORIZE static void lstm_c_backward(tg_graph *g, tg_node *n) {
    tg_tensor *gates = n->in[0], *c = n->in[1], *cn = n->out;
    int64_t B = c->shape.d[0], H = c->shape.d[1];
    TG_DISPATCH(cn->dtype, {
        const T *act = gates->data, *cv = c->data, *dcn = cn->grad;          // [B, 4H], [B, H] x2
        T *dg = tg_grad_or_scratch(g, gates), *dc = tg_grad_or_scratch(g, c); // [B, 4H], [B, H]
        for (int64_t b = 0; b < B; b++) {
            const T *ai = act + b * 4 * H, *af = ai + H, *au = ai + 2 * H, *cb = cv + b * H, *d = dcn + b * H; // [H]
            T *di = dg + b * 4 * H, *df = di + H, *du = di + 2 * H, *dcb = dc + b * H;                      // [H]
            TG_IVDEP for (int64_t j = 0; j < H; j++) {
                T i = ai[j], f = af[j], u = au[j];
                di[j] += d[j] * u * i * (1 - i);
                df[j] += d[j] * cb[j] * f * (1 - f);
                du[j] += d[j] * i * (1 - u * u);
                dcb[j] += d[j] * f;
            }
        }
    });
}

static const tg_op LSTM_C_OP = {.name = "lstm_cell_state_", .backward = lstm_c_backward};

// h' = sigmoid(o)*tanh(c'); gates' o already activated by forward. tanh(c') is recomputed:
// keeping it would cost [B, H] a step for one transcendental per element.
TG_VECTORIZE static void lstm_h_backward(tg_graph *g, tg_node *n) {
    tg_tensor *gates = n->in[0], *cn = n->in[1], *h = n->out;
    int64_t B = cn->shape.d[0], H = cn->shape.d[1];
    TG_DISPATCH(h->dtype, {
        const T *act = gates->data, *cv = cn->data, *dh = h->grad;             // [B, 4H], [B, H] x2
        T *dg = tg_grad_or_scratch(g, gates), *dc = tg_grad_or_scratch(g, cn); // [B, 4H], [B, H]
        for (int64_t b = 0; b < B; b++) {
            const T *ao = act + b * 4 * H + 3 * H, *cb = cv + b * H, *d = dh + b * H; // [H] each
            T *dgo = dg + b * 4 * H + 3 * H, *dcb = dc + b * H;                      // [H] each
            TG_IVDEP for (int64_t j = 0; j < H; j++) {
                T o = ao[j], t = (T)TG_TANH(cb[j]);
                dgo[j] += d[j] * t * o * (1 - o);
                dcb[j] += d[j] * o * (1 - t * t);
            }
        }
    });
}

static const tg_op LSTM_H_OP = {.name = "lstm_cell_output_", .backward = lstm_h_backward};

// Writing the activations over the gates loses their values: refused for a leaf that
// requires a gradient, as tg_linear_add_ refuses.
static bool check_overwritable(tg_graph *g, const char *op, tg_tensor *gates) {
    if (gates->requires_grad && !gates->node) {
        tg_fail(g, op, "the gates %s are a leaf that requires a gradient; writing their activations over them "
                       "would lose their values", TG_SHAPE_STR(gates->shape));
        return false;
    }
    return true;
}

// Room for the GRU's activations: all of them, [rows, width], when the op is recorded (its
// backward reads them instead of recomputing two sigmoids and a tanh per element), else one
// row, rewritten for each row of the batch.
static void *activations(tg_graph *g, tg_dtype dtype, bool keep, int64_t rows, int64_t width) {
    return tg_arena_alloc(g, (size_t)(keep ? rows : 1) * (size_t)width * tg_dtype_size(dtype));
}

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

TG_VECTORIZE tg_tensor *(tg_lstm_cell_state_)(tg_graph *g, tg_tensor *gates, tg_tensor *c) {
    if (!check_gates(g, "lstm_cell_state_", gates, c, 4) || !check_overwritable(g, "lstm_cell_state_", gates))
        return NULL;
    int64_t B = c->shape.d[0], H = c->shape.d[1];
    tg_tensor *cn = tg_new_tensor(g, c->dtype, c->shape);
    TG_DISPATCH(c->dtype, {
        T *gv = gates->data;         // [B, 4H]: i, f, g become their activations
        const T *cv = c->data;       // [B, H]
        T *out = cn->data;           // [B, H]
        for (int64_t b = 0; b < B; b++) {
            T *gi = gv + b * 4 * H, *gf = gi + H, *gu = gi + 2 * H; // [H] each
            const T *cb = cv + b * H;
            T *ob = out + b * H;
            TG_IVDEP for (int64_t j = 0; j < H; j++) {
                T i = (T)TG_SIGMOID(gi[j]), f = (T)TG_SIGMOID(gf[j]), u = (T)TG_TANH(gu[j]);
                ob[j] = f * cb[j] + i * u;
                gi[j] = i, gf[j] = f, gu[j] = u;
            }
        }
    });
    tg_tensor_touch(gates);
    tg_record(g, &LSTM_C_OP, cn, 2, gates, c);
    return cn;
}

TG_VECTORIZE tg_tensor *(tg_lstm_cell_output_)(tg_graph *g, tg_tensor *gates, tg_tensor *c_next) {
    if (!check_gates(g, "lstm_cell_output_", gates, c_next, 4) || !check_overwritable(g, "lstm_cell_output_", gates))
        return NULL;
    int64_t B = c_next->shape.d[0], H = c_next->shape.d[1];
    tg_tensor *h = tg_new_tensor(g, c_next->dtype, c_next->shape);
    TG_DISPATCH(h->dtype, {
        T *gv = gates->data;           // [B, 4H]: o becomes its activation
        const T *cv = c_next->data;    // [B, H]
        T *out = h->data;              // [B, H]
        for (int64_t b = 0; b < B; b++) {
            T *go = gv + b * 4 * H + 3 * H; // [H]
            const T *cb = cv + b * H;
            T *ob = out + b * H;
            TG_IVDEP for (int64_t j = 0; j < H; j++) {
                T o = (T)TG_SIGMOID(go[j]);
                ob[j] = o * (T)TG_TANH(cb[j]);
                go[j] = o;
            }
        }
    });
    tg_tensor_touch(gates);
    tg_record(g, &LSTM_H_OP, h, 2, gates, c_next);
    return h;
}

// --- GRU: input part xp [B, 3H] and state part hp [B, 3H] in rows r, z, n ---
// r = sigmoid(xr + hr), z = sigmoid(xz + hz), n = tanh(xn + r*hn), h' = n + z*(h - n)

// What forward keeps for backward: r, z and n.
typedef struct {
    const void *act; // [B, 3H]
} gru_cell_state;

TG_VECTORIZE static void gru_backward(tg_graph *g, tg_node *n) {
    tg_tensor *xp = n->in[0], *hp = n->in[1], *h = n->in[2], *hn = n->out;
    int64_t B = h->shape.d[0], H = h->shape.d[1];
    TG_DISPATCH(hn->dtype, {
        const T *act = TG_STATE(n, gru_cell_state)->act;                      // [B, 3H]
        const T *hv = hp->data, *prev = h->data, *d = hn->grad;               // [B, 3H], [B, H] x2
        T *dx = tg_grad_or_scratch(g, xp), *dhp = tg_grad_or_scratch(g, hp), *dh = tg_grad_or_scratch(g, h); // [B, 3H] x2, [B, H]
        for (int64_t b = 0; b < B; b++) {
            const T *ar = act + b * 3 * H, *az = ar + H, *an = ar + 2 * H; // [H] each
            const T *hn_ = hv + b * 3 * H + 2 * H, *hb = prev + b * H, *db = d + b * H;
            T *dxr = dx + b * 3 * H, *dxz = dxr + H, *dxn = dxr + 2 * H;
            T *dhr = dhp + b * 3 * H, *dhz = dhr + H, *dhn = dhr + 2 * H, *dhb = dh + b * H;
            TG_IVDEP for (int64_t j = 0; j < H; j++) {
                T r = ar[j], z = az[j], nn = an[j];
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
    bool keep = tg_will_record(g, 3, (tg_tensor *[]){xp, hp, h});
    void *act = activations(g, h->dtype, keep, B, 3 * H);
    TG_DISPATCH(h->dtype, {
        const T *xv = xp->data, *hv = hp->data, *prev = h->data; // [B, 3H], [B, 3H], [B, H]
        T *out = hn->data;                                       // [B, H]
        for (int64_t b = 0; b < B; b++) {
            const T *xr = xv + b * 3 * H, *xz = xr + H, *xn = xr + 2 * H; // [H] each
            const T *hr = hv + b * 3 * H, *hz = hr + H, *hn_ = hr + 2 * H, *hb = prev + b * H;
            T *ar = (T *)act + (keep ? b : 0) * 3 * H, *az = ar + H, *an = ar + 2 * H, *ob = out + b * H;
            TG_IVDEP for (int64_t j = 0; j < H; j++) {
                ar[j] = (T)TG_SIGMOID(xr[j] + hr[j]);
                az[j] = (T)TG_SIGMOID(xz[j] + hz[j]);
                an[j] = (T)TG_TANH(xn[j] + ar[j] * hn_[j]);
                ob[j] = an[j] + az[j] * (hb[j] - an[j]);
            }
        }
    });
    tg_node *n = tg_record(g, &GRU_OP, hn, 3, xp, hp, h);
    TG_SAVE(g, n, gru_cell_state, {.act = act});
    return hn;
}
