// cells_published.c: recurrent cells from the literature that researchers compare against,
// each a step written only with the public ops, as a user would write it (see README, "a
// new recurrent architecture"): peephole LSTM, layer-norm LSTM, IndRNN and SRU.
//
// Gates keep PyTorch's LSTM row order i, f, g, o where a cell has them; parameters are
// named as the built-in cells' (weight_ih, weight_hh, bias_ih, bias_hh) plus their own.
#include <math.h>

#include "tapegrad.h"

// x [N, in] -> x W_ih^T + b_ih [N, G*H], for all time steps at once.
static tg_tensor *project_input(tg_graph *g, const tg_cell *c, tg_tensor *x) {
    return tg_linear(g, x, tg_cell_param(c, "weight_ih"), tg_cell_param(c, "bias_ih"));
}

// ---- Peephole LSTM (Gers and Schmidhuber 2000) -----------------------------------------
// The gates also look at the cell: i and f at c, o at c' (diagonal peephole weights, as in
// Gers, Schraudolph and Schmidhuber 2002 and Graves 2013):
//   i = sigmoid(xi + hi + w_ci*c),  f = sigmoid(xf + hf + w_cf*c),  g = tanh(xg + hg)
//   c' = f*c + i*g,  o = sigmoid(xo + ho + w_co*c'),  h' = o*tanh(c')

static bool peephole_init(tg_cell *c, tg_rng *rng) {
    int64_t H = c->hidden_size;
    return tg_cell_add_param(c, "weight_ih", tg_shape2(4 * H, c->input_size), rng) &&
           tg_cell_add_param(c, "weight_hh", tg_shape2(4 * H, H), rng) &&
           tg_cell_add_param(c, "bias_ih", tg_shape1(4 * H), rng) &&
           tg_cell_add_param(c, "bias_hh", tg_shape1(4 * H), rng) &&
           tg_cell_add_param(c, "weight_ci", tg_shape1(H), rng) && tg_cell_add_param(c, "weight_cf", tg_shape1(H), rng) &&
           tg_cell_add_param(c, "weight_co", tg_shape1(H), rng);
}

static bool peephole_step(tg_graph *g, const tg_cell *c, tg_tensor *xp, tg_tensor *const *state, tg_tensor **next) {
    tg_tensor *h = state[0], *cell = state[1], *gate[4]; // each [B, H]
    // xp is the step's own rows of the input projection (.step_overwrites_input): the sum
    // goes over them, as the built-in LSTM's does.
    tg_tensor *gates = tg_linear_add_(g, xp, h, tg_cell_param(c, "weight_hh"), tg_cell_param(c, "bias_hh")); // [B, 4H]
    if (!tg_chunk(g, gates, 4, 1, gate)) return false;
    tg_tensor *i = tg_sigmoid(g, tg_add(g, gate[0], tg_mul(g, cell, tg_cell_param(c, "weight_ci"))));
    tg_tensor *f = tg_sigmoid(g, tg_add(g, gate[1], tg_mul(g, cell, tg_cell_param(c, "weight_cf"))));
    next[1] = tg_add(g, tg_mul(g, f, cell), tg_mul(g, i, tg_tanh(g, gate[2]))); // c' [B, H]
    tg_tensor *o = tg_sigmoid(g, tg_add(g, gate[3], tg_mul(g, next[1], tg_cell_param(c, "weight_co"))));
    next[0] = tg_mul(g, o, tg_tanh(g, next[1])); // h' [B, H]
    return next[0] && next[1];
}

const tg_cell_type tg_cell_peephole_lstm = {.name = "PEEPHOLE_LSTM", .n_states = 2, .state_names = {"h", "c"},
                                            .init = peephole_init, .project_input = project_input,
                                            .step = peephole_step, .step_overwrites_input = true};

// ---- Layer-norm LSTM (Ba, Kiros and Hinton 2016, eqs. 20-22) ----------------------------
// Both products are normalised over all 4H gate rows, each with its own gain and bias, and
// the cell is normalised before its tanh:
//   gates = LN(W_hh h; ln_hh) + LN(W_ih x; ln_ih) + b,   c' = f*c + i*g,
//   h' = o*tanh(LN(c'; ln_c))
// Nine parameters: weight_ih, weight_hh, bias, and a gain and bias for each normalisation
// (weight_ln_ih, bias_ln_ih, weight_ln_hh, bias_ln_hh, weight_ln_c, bias_ln_c).

#define LN_EPS 1e-5 // PyTorch's nn.LayerNorm default

// LN over the last axis, x [N, F], gain and bias [F]: (x - mean) / sqrt(var + eps) * gain
// + bias, var biased as in PyTorch's layer_norm; fused (ops/norm.c), one op where the
// composed form took ten.
static tg_tensor *layer_norm(tg_graph *g, tg_tensor *x, tg_tensor *gain, tg_tensor *bias) {
    return tg_layer_norm(g, x, gain, bias, LN_EPS);
}

// The gains start at 1 and the normalisations' biases at 0, as nn.LayerNorm's.
static tg_tensor *add_filled(tg_cell *c, const char *name, int64_t n, double value, tg_rng *rng) {
    tg_tensor *t = tg_cell_add_param(c, name, tg_shape1(n), rng);
    if (t) tg_tensor_fill(t, value);
    return t;
}

static bool layer_norm_init(tg_cell *c, tg_rng *rng) {
    int64_t H = c->hidden_size;
    return tg_cell_add_param(c, "weight_ih", tg_shape2(4 * H, c->input_size), rng) &&
           tg_cell_add_param(c, "weight_hh", tg_shape2(4 * H, H), rng) &&
           tg_cell_add_param(c, "bias", tg_shape1(4 * H), rng) &&
           add_filled(c, "weight_ln_ih", 4 * H, 1, rng) && add_filled(c, "bias_ln_ih", 4 * H, 0, rng) &&
           add_filled(c, "weight_ln_hh", 4 * H, 1, rng) && add_filled(c, "bias_ln_hh", 4 * H, 0, rng) &&
           add_filled(c, "weight_ln_c", H, 1, rng) && add_filled(c, "bias_ln_c", H, 0, rng);
}

// LN(W_ih x) + b [N, 4H] for all time steps at once: a row's normalisation reads its row only.
static tg_tensor *layer_norm_project(tg_graph *g, const tg_cell *c, tg_tensor *x) {
    tg_tensor *wx = tg_linear(g, x, tg_cell_param(c, "weight_ih"), NULL); // [N, 4H]
    tg_tensor *normed = layer_norm(g, wx, tg_cell_param(c, "weight_ln_ih"), tg_cell_param(c, "bias_ln_ih"));
    return tg_add(g, normed, tg_cell_param(c, "bias"));
}

static bool layer_norm_step(tg_graph *g, const tg_cell *c, tg_tensor *xp, tg_tensor *const *state, tg_tensor **next) {
    tg_tensor *wh = tg_linear(g, state[0], tg_cell_param(c, "weight_hh"), NULL); // [B, 4H]
    tg_tensor *gates = tg_add(g, xp, layer_norm(g, wh, tg_cell_param(c, "weight_ln_hh"), tg_cell_param(c, "bias_ln_hh")));
    // The LSTM's own pointwise ops: c' = sigmoid(f)*c + sigmoid(i)*tanh(g), and
    // h' = sigmoid(o)*tanh(LN(c')).
    next[1] = tg_lstm_cell_state_(g, gates, state[1]); // [B, H]
    tg_tensor *c_normed = layer_norm(g, next[1], tg_cell_param(c, "weight_ln_c"), tg_cell_param(c, "bias_ln_c"));
    next[0] = tg_lstm_cell_output_(g, gates, c_normed); // [B, H]
    return next[0] && next[1];
}

const tg_cell_type tg_cell_layer_norm_lstm = {.name = "LAYER_NORM_LSTM", .n_states = 2, .state_names = {"h", "c"},
                                              .init = layer_norm_init, .project_input = layer_norm_project,
                                              .step = layer_norm_step};

// ---- IndRNN (Li, Li, Cook, Zhu and Gao 2018) -------------------------------------------
// Each unit has one recurrent weight, its own: h' = relu(W_ih x + b_ih + weight_hh * h),
// weight_hh [H]. Keeping |weight_hh| <= 2^(1/T) after each update (tg_indrnn_clamp) keeps
// the gradient over T steps from exploding, as the paper does.

static bool indrnn_init(tg_cell *c, tg_rng *rng) {
    int64_t H = c->hidden_size;
    tg_tensor *u = tg_cell_add_param(c, "weight_hh", tg_shape1(H), rng);
    if (u) tg_tensor_fill_uniform(u, rng, 0, 1); // the paper's U(0, 1) for relu
    return u && tg_cell_add_param(c, "weight_ih", tg_shape2(H, c->input_size), rng) &&
           tg_cell_add_param(c, "bias_ih", tg_shape1(H), rng);
}

static bool indrnn_step(tg_graph *g, const tg_cell *c, tg_tensor *xp, tg_tensor *const *state, tg_tensor **next) {
    next[0] = tg_relu(g, tg_add(g, xp, tg_mul(g, state[0], tg_cell_param(c, "weight_hh")))); // [B, H]
    return next[0] != NULL;
}

const tg_cell_type tg_cell_indrnn = {.name = "INDRNN", .n_states = 1, .state_names = {"h"}, .init = indrnn_init,
                                     .project_input = project_input, .step = indrnn_step};

bool tg_indrnn_clamp(const tg_rnn *rnn, double max_abs) {
    if (rnn->cfg.cell != &tg_cell_indrnn || !(max_abs >= 0)) {
        tg_fail(NULL, "indrnn_clamp", "a %s RNN and bound %g; it clamps an IndRNN's recurrent weights to a bound >= 0",
                rnn->cfg.cell ? rnn->cfg.cell->name : "cell-less", max_abs);
        return false;
    }
    for (int l = 0; l < rnn->cfg.num_layers; l++)
        for (int d = 0; d < rnn->n_dirs; d++) {
            tg_tensor *u = tg_cell_param(&rnn->cells[l][d], "weight_hh"); // [H]
            for (int64_t i = 0; i < u->numel; i++) {
                double v = tg_tensor_get(u, i);
                if (fabs(v) > max_abs) tg_tensor_set(u, i, v > 0 ? max_abs : -max_abs);
            }
            tg_tensor_touch(u);
        }
    return true;
}

// ---- SRU (Lei, Zhang, Wang, Dai and Artzi 2017; the EMNLP 2018 form) --------------------
// Every product reads the input alone, so all of them run for many steps at once; the step
// is pointwise:
//   f = sigmoid(W_f x + v_f*c + b_f),  r = sigmoid(W_r x + v_r*c + b_r)
//   c' = f*c + (1-f)*(W x),  h' = r*c' + (1-r)*x'
// with the highway x' = x when input and hidden sizes match, else W_hw x (as the authors'
// code does). weight_ih stacks W, W_f, W_r.

static bool sru_init(tg_cell *c, tg_rng *rng) {
    int64_t H = c->hidden_size;
    return tg_cell_add_param(c, "weight_ih", tg_shape2(3 * H, c->input_size), rng) &&
           (c->input_size == H || tg_cell_add_param(c, "weight_hw", tg_shape2(H, c->input_size), rng)) &&
           tg_cell_add_param(c, "weight_vf", tg_shape1(H), rng) && tg_cell_add_param(c, "weight_vr", tg_shape1(H), rng) &&
           tg_cell_add_param(c, "bias_f", tg_shape1(H), rng) && tg_cell_add_param(c, "bias_r", tg_shape1(H), rng);
}

// x [N, in] -> [W x, W_f x, W_r x, x'] [N, 4H].
static tg_tensor *sru_project(tg_graph *g, const tg_cell *c, tg_tensor *x) {
    tg_tensor *parts[2] = {tg_linear(g, x, tg_cell_param(c, "weight_ih"), NULL), // [N, 3H]
                           c->input_size == c->hidden_size ? x : tg_linear(g, x, tg_cell_param(c, "weight_hw"), NULL)};
    return tg_concat(g, 2, parts, 1);
}

static bool sru_step(tg_graph *g, const tg_cell *c, tg_tensor *xp, tg_tensor *const *state, tg_tensor **next) {
    tg_tensor *part[4], *cell = state[1]; // W x, W_f x, W_r x, x': each [B, H]
    if (!tg_chunk(g, xp, 4, 1, part)) return false;
    tg_tensor *f = tg_sigmoid(g, tg_add(g, tg_add(g, part[1], tg_mul(g, cell, tg_cell_param(c, "weight_vf"))),
                                        tg_cell_param(c, "bias_f")));
    tg_tensor *r = tg_sigmoid(g, tg_add(g, tg_add(g, part[2], tg_mul(g, cell, tg_cell_param(c, "weight_vr"))),
                                        tg_cell_param(c, "bias_r")));
    next[1] = tg_add(g, part[0], tg_mul(g, f, tg_sub(g, cell, part[0]))); // f*c + (1-f)*Wx
    next[0] = tg_add(g, part[3], tg_mul(g, r, tg_sub(g, next[1], part[3]))); // r*c' + (1-r)*x'
    return next[0] && next[1];
}

const tg_cell_type tg_cell_sru = {.name = "SRU", .n_states = 2, .state_names = {"h", "c"}, .init = sru_init,
                                  .project_input = sru_project, .step = sru_step};
