// cells.c: PyTorch's recurrent cells, each a step written with ordinary ops.
//
// All three share PyTorch's parameter layout: weight_ih [G*H, in], weight_hh [G*H, H],
// bias_ih [G*H], bias_hh [G*H], with G = 1 (RNN), 4 (LSTM) or 3 (GRU). The input half,
// x W_ih^T + b_ih, depends on no state, so layers compute it for many steps in one product
// (project_input) and each step adds only h W_hh^T + b_hh.
#include <math.h>
#include <stdio.h>

#include "tapegrad.h"

enum { W_IH, W_HH, B_IH, B_HH };

tg_tensor *tg_cell_add_param(tg_cell *cell, tg_params *p, const char *prefix, const char *base, const char *suffix,
                             tg_shape shape, tg_rng *rng) {
    int slot = 0;
    while (slot < TG_CELL_MAX_PARAMS && cell->param[slot]) slot++;
    if (slot == TG_CELL_MAX_PARAMS) return tg_fail(NULL, "cell", "a cell has at most %d parameters", TG_CELL_MAX_PARAMS);
    char name[256];
    snprintf(name, sizeof name, "%s%s%s", prefix ? prefix : "", base, suffix ? suffix : "");
    tg_tensor *t = tg_params_add(p, name, cell->dtype, shape);
    if (!t) return NULL;
    double k = 1 / sqrt((double)cell->hidden_size);
    tg_tensor_fill_uniform(t, rng, -k, k);
    cell->param[slot] = t;
    return t;
}

bool tg_cell_init(tg_cell *cell, const tg_cell_type *type, int input_size, int hidden_size, tg_dtype dtype,
                  tg_params *p, const char *prefix, const char *suffix, tg_rng *rng) {
    *cell = (tg_cell){type, input_size, hidden_size, {0}, dtype};
    if (input_size < 1 || hidden_size < 1) {
        tg_fail(NULL, "cell", "%s cell with input size %d and hidden size %d; both must be positive", type->name,
                input_size, hidden_size);
        return false;
    }
    if (dtype == TG_I32) {
        tg_fail(NULL, "cell", "%s cell of dtype int32; cells are float32 or float64", type->name);
        return false;
    }
    if (type->n_states < 1 || type->n_states > TG_CELL_MAX_STATES) {
        tg_fail(NULL, "cell", "%s cell with %d states; cells have 1 to %d", type->name, type->n_states,
                TG_CELL_MAX_STATES);
        return false;
    }
    return type->init(cell, p, prefix, suffix, rng);
}

// weight_ih, weight_hh, bias_ih, bias_hh with G gates, in PyTorch's order.
static bool gated_init(tg_cell *cell, tg_params *p, const char *prefix, const char *suffix, tg_rng *rng, int gates) {
    int64_t rows = (int64_t)gates * cell->hidden_size;
    return tg_cell_add_param(cell, p, prefix, "weight_ih", suffix, tg_shape2(rows, cell->input_size), rng) &&
           tg_cell_add_param(cell, p, prefix, "weight_hh", suffix, tg_shape2(rows, cell->hidden_size), rng) &&
           tg_cell_add_param(cell, p, prefix, "bias_ih", suffix, tg_shape1(rows), rng) &&
           tg_cell_add_param(cell, p, prefix, "bias_hh", suffix, tg_shape1(rows), rng);
}

static bool rnn_init(tg_cell *c, tg_params *p, const char *prefix, const char *suffix, tg_rng *rng) {
    return gated_init(c, p, prefix, suffix, rng, 1);
}
static bool lstm_init(tg_cell *c, tg_params *p, const char *prefix, const char *suffix, tg_rng *rng) {
    return gated_init(c, p, prefix, suffix, rng, 4);
}
static bool gru_init(tg_cell *c, tg_params *p, const char *prefix, const char *suffix, tg_rng *rng) {
    return gated_init(c, p, prefix, suffix, rng, 3);
}

// x [N, in] -> x W_ih^T + b_ih [N, G*H], for all time steps at once.
static tg_tensor *project_input(tg_graph *g, const tg_cell *c, tg_tensor *x) {
    return tg_linear(g, x, c->param[W_IH], c->param[B_IH]);
}

// h [B, H] -> h W_hh^T + b_hh [B, G*H].
static tg_tensor *project_state(tg_graph *g, const tg_cell *c, tg_tensor *h) {
    return tg_linear(g, h, c->param[W_HH], c->param[B_HH]);
}

// xp [B, G*H], h [B, H] -> xp + h W_hh^T + b_hh [B, G*H]: the sum tg_add(xp,
// project_state(h)) makes, written over xp, which is the step's own (tg_cell_type.step).
// Neither the state's product nor a copy of the sum is kept for backward: an LSTM step then
// keeps its gates in its rows of the layer's input projection, and c' and h' beside them.
static tg_tensor *add_projected_state(tg_graph *g, const tg_cell *c, tg_tensor *xp, tg_tensor *h) {
    return tg_linear_add_(g, xp, h, c->param[W_HH], c->param[B_HH]);
}

static void rnn_tanh_step(tg_graph *g, const tg_cell *c, tg_tensor *xp, tg_tensor *const *state, tg_tensor **next) {
    next[0] = tg_tanh(g, add_projected_state(g, c, xp, state[0]));
}

static void rnn_relu_step(tg_graph *g, const tg_cell *c, tg_tensor *xp, tg_tensor *const *state, tg_tensor **next) {
    next[0] = tg_relu(g, add_projected_state(g, c, xp, state[0]));
}

// state = (h, c); gate rows i, f, g, o; the pointwise part fused (ops/rnn_fused.c).
static void lstm_step(tg_graph *g, const tg_cell *c, tg_tensor *xp, tg_tensor *const *state, tg_tensor **next) {
    tg_tensor *gates = add_projected_state(g, c, xp, state[0]); // [B, 4H]
    next[1] = tg_lstm_cell_state(g, gates, state[1]);
    next[0] = tg_lstm_cell_output(g, gates, next[1]);
}

// The same step op by op: the reference the fused path is tested against.
static void lstm_composite_step(tg_graph *g, const tg_cell *c, tg_tensor *xp, tg_tensor *const *state, tg_tensor **next) {
    tg_tensor *gate[4] = {0}; // each [B, H]
    tg_chunk(g, tg_add(g, xp, project_state(g, c, state[0])), 4, 1, gate);
    tg_tensor *i = tg_sigmoid(g, gate[0]), *f = tg_sigmoid(g, gate[1]);
    tg_tensor *cand = tg_tanh(g, gate[2]), *o = tg_sigmoid(g, gate[3]);
    next[1] = tg_add(g, tg_mul(g, f, state[1]), tg_mul(g, i, cand));
    next[0] = tg_mul(g, o, tg_tanh(g, next[1]));
}

// Gate rows r, z, n; r multiplies W_hn h + b_hn, as in PyTorch; fused (ops/rnn_fused.c).
static void gru_step(tg_graph *g, const tg_cell *c, tg_tensor *xp, tg_tensor *const *state, tg_tensor **next) {
    next[0] = tg_gru_cell(g, xp, project_state(g, c, state[0]), state[0]);
}

// The same step op by op: the reference the fused path is tested against.
static void gru_composite_step(tg_graph *g, const tg_cell *c, tg_tensor *xp, tg_tensor *const *state, tg_tensor **next) {
    tg_tensor *xg[3] = {0}, *hg[3] = {0}; // each [B, H]
    tg_chunk(g, xp, 3, 1, xg);
    tg_chunk(g, project_state(g, c, state[0]), 3, 1, hg);
    tg_tensor *r = tg_sigmoid(g, tg_add(g, xg[0], hg[0]));
    tg_tensor *z = tg_sigmoid(g, tg_add(g, xg[1], hg[1]));
    tg_tensor *n = tg_tanh(g, tg_add(g, xg[2], tg_mul(g, r, hg[2])));
    next[0] = tg_add(g, n, tg_mul(g, z, tg_sub(g, state[0], n))); // (1-z)*n + z*h
}

const tg_cell_type tg_cell_rnn_tanh = {"RNN_TANH", 1, rnn_init, project_input, rnn_tanh_step};
const tg_cell_type tg_cell_rnn_relu = {"RNN_RELU", 1, rnn_init, project_input, rnn_relu_step};
const tg_cell_type tg_cell_lstm = {"LSTM", 2, lstm_init, project_input, lstm_step};
const tg_cell_type tg_cell_gru = {"GRU", 1, gru_init, project_input, gru_step};
const tg_cell_type tg_cell_lstm_composite = {"LSTM", 2, lstm_init, project_input, lstm_composite_step};
const tg_cell_type tg_cell_gru_composite = {"GRU", 1, gru_init, project_input, gru_composite_step};
