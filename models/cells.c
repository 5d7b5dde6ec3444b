// cells.c: PyTorch's recurrent cells, each a step written with ordinary ops.
//
// All three share PyTorch's parameter layout: weight_ih [G*H, in], weight_hh [G*H, H],
// bias_ih [G*H], bias_hh [G*H], with G = 1 (RNN), 4 (LSTM) or 3 (GRU). The input half,
// x W_ih^T + b_ih, depends on no state, so layers compute it for many steps in one product
// (project_input) and each step adds only h W_hh^T + b_hh. Parameters are found by name
// (tg_cell_param), so a type's init may add them in any order.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tapegrad.h"

tg_tensor *tg_cell_add_param(tg_cell *cell, const char *name, tg_shape shape, tg_rng *rng) {
    if (!cell->params) return tg_fail(NULL, "cell_add_param", "the cell is not being made (call it from a type's init)");
    char full[256];
    int n = snprintf(full, sizeof full, "%s%s%s", cell->prefix, name, cell->suffix);
    if (n < 0 || (size_t)n >= sizeof full)
        return tg_fail(NULL, "cell_add_param", "the %s cell's parameter name \"%s%s%s\" is longer than %zu characters",
                       cell->type->name, cell->prefix, name, cell->suffix, sizeof full - 1);
    tg_tensor *t = tg_params_add(cell->params, full, cell->dtype, shape);
    if (!t) return NULL;
    double k = 1 / sqrt((double)cell->hidden_size);
    tg_tensor_fill_uniform(t, rng, -k, k);
    cell->n_params = tg_params_count(cell->params) - cell->first_param;
    return t;
}

tg_tensor *tg_cell_param(const tg_cell *cell, const char *name) {
    // A parameter's stored name is prefix + name + suffix; the cell's own are a contiguous run
    // of its collection, so a few comparisons find it with no table to keep.
    size_t np = strlen(cell->prefix), ns = strlen(cell->suffix), nn = strlen(name);
    for (int i = 0; i < cell->n_params; i++) {
        const char *full = tg_params_at(cell->params, cell->first_param + i)->name;
        if (strlen(full) == np + nn + ns && !memcmp(full + np, name, nn))
            return tg_params_at(cell->params, cell->first_param + i);
    }
    return tg_fail(NULL, "cell_param", "the %s cell has no parameter \"%s\" (stored as \"%s%s%s\")", cell->type->name,
                   name, cell->prefix, name, cell->suffix);
}

bool tg_cell_init(tg_cell *cell, const tg_cell_type *type, const tg_cell_config *cfg, tg_params *p,
                  const char *prefix, const char *suffix, tg_rng *rng) {
    memset(cell, 0, sizeof *cell);
    if (!type || !type->name || !type->init || !type->step)
        return tg_fail(NULL, "cell_init", "a cell type needs a name, an init and a step"), false;
    cell->type = type;
    cell->input_size = cfg->input_size;
    cell->hidden_size = cfg->hidden_size;
    cell->proj_size = cfg->proj_size;
    cell->dtype = cfg->dtype;
    if (cfg->input_size < 1 || cfg->hidden_size < 1 || cfg->proj_size < 0) {
        tg_fail(NULL, "cell_init", "%s cell with input size %d, hidden size %d and proj_size %d; the sizes must be "
                "positive (proj_size 0 for none)", type->name, cfg->input_size, cfg->hidden_size, cfg->proj_size);
        return false;
    }
    if (cfg->dtype == TG_I32) {
        tg_fail(NULL, "cell_init", "%s cell of dtype int32; cells are float32 or float64", type->name);
        return false;
    }
    if (type->n_states < 1 || type->n_states > TG_CELL_MAX_STATES) {
        tg_fail(NULL, "cell_init", "%s cell with %d states; cells have 1 to %d", type->name, type->n_states,
                TG_CELL_MAX_STATES);
        return false;
    }
    if (!prefix) prefix = "";
    if (!suffix) suffix = "";
    if (strlen(prefix) >= sizeof cell->prefix || strlen(suffix) >= sizeof cell->suffix) {
        tg_fail(NULL, "cell_init", "%s cell with a name prefix of %zu or suffix of %zu characters; at most %zu and %zu",
                type->name, strlen(prefix), strlen(suffix), sizeof cell->prefix - 1, sizeof cell->suffix - 1);
        return false;
    }
    strcpy(cell->prefix, prefix);
    strcpy(cell->suffix, suffix);
    for (int i = 0; i < TG_CELL_MAX_STATES; i++) cell->state_size[i] = i < type->n_states ? cfg->hidden_size : 0;
    cell->params = p;
    cell->first_param = tg_params_count(p);
    if (!type->init(cell, rng)) return false;
    for (int i = 0; i < type->n_states; i++)
        if (cell->state_size[i] < 1) {
            tg_fail(NULL, "cell_init", "the %s cell's init set state %d's size to %d", type->name, i, cell->state_size[i]);
            return false;
        }
    // A type that takes proj_size makes its output that size; any other cannot take it.
    if (cfg->proj_size && cell->state_size[0] != cfg->proj_size) {
        tg_fail(NULL, "cell_init", "proj_size %d given to a %s cell, which does not take it", cfg->proj_size, type->name);
        return false;
    }
    return true;
}

// weight_ih, weight_hh, bias_ih, bias_hh with G gates, in PyTorch's order; the LSTM's h may
// be projected to proj_size (weight_hr), so weight_hh reads state 0's size.
static bool gated_init(tg_cell *cell, tg_rng *rng, int gates) {
    int64_t rows = (int64_t)gates * cell->hidden_size;
    return tg_cell_add_param(cell, "weight_ih", tg_shape2(rows, cell->input_size), rng) &&
           tg_cell_add_param(cell, "weight_hh", tg_shape2(rows, cell->state_size[0]), rng) &&
           tg_cell_add_param(cell, "bias_ih", tg_shape1(rows), rng) &&
           tg_cell_add_param(cell, "bias_hh", tg_shape1(rows), rng);
}

static bool rnn_init(tg_cell *c, tg_rng *rng) { return gated_init(c, rng, 1); }
static bool gru_init(tg_cell *c, tg_rng *rng) { return gated_init(c, rng, 3); }

static bool lstm_init(tg_cell *c, tg_rng *rng) {
    int P = c->proj_size, H = c->hidden_size;
    if (P && P >= H) {
        tg_fail(NULL, "cell_init", "LSTM with proj_size %d and hidden size %d; proj_size must be smaller", P, H);
        return false;
    }
    if (P) c->state_size[0] = P; // h [B, P]; c stays [B, H]
    // weight_hr last, as in PyTorch's state_dict.
    return gated_init(c, rng, 4) && (!P || tg_cell_add_param(c, "weight_hr", tg_shape2(P, H), rng));
}

// x [N, in] -> x W_ih^T + b_ih [N, G*H], for all time steps at once.
static tg_tensor *project_input(tg_graph *g, const tg_cell *c, tg_tensor *x) {
    return tg_linear(g, x, tg_cell_param(c, "weight_ih"), tg_cell_param(c, "bias_ih"));
}

// h [B, S0] -> h W_hh^T + b_hh [B, G*H].
static tg_tensor *project_state(tg_graph *g, const tg_cell *c, tg_tensor *h) {
    return tg_linear(g, h, tg_cell_param(c, "weight_hh"), tg_cell_param(c, "bias_hh"));
}

// xp [B, G*H], h [B, S0] -> xp + h W_hh^T + b_hh [B, G*H]: the sum tg_add(xp,
// project_state(h)) makes, written over xp, which the type lets the step overwrite
// (.step_overwrites_input). Neither the state's product nor a copy of the sum is kept for
// backward: an LSTM step then keeps its gates in its rows of the layer's input projection,
// and c' and h' beside them.
static tg_tensor *add_projected_state(tg_graph *g, const tg_cell *c, tg_tensor *xp, tg_tensor *h) {
    return tg_linear_add_(g, xp, h, tg_cell_param(c, "weight_hh"), tg_cell_param(c, "bias_hh"));
}

static bool rnn_tanh_step(tg_graph *g, const tg_cell *c, tg_tensor *xp, tg_tensor *const *state, tg_tensor **next) {
    return (next[0] = tg_tanh(g, add_projected_state(g, c, xp, state[0]))) != NULL;
}

static bool rnn_relu_step(tg_graph *g, const tg_cell *c, tg_tensor *xp, tg_tensor *const *state, tg_tensor **next) {
    return (next[0] = tg_relu(g, add_projected_state(g, c, xp, state[0]))) != NULL;
}

// With proj_size, h' = (o*tanh(c')) W_hr^T [B, P], as PyTorch's LSTM with projections.
static tg_tensor *lstm_project_output(tg_graph *g, const tg_cell *c, tg_tensor *h) {
    return c->proj_size ? tg_linear(g, h, tg_cell_param(c, "weight_hr"), NULL) : h;
}

// state = (h, c); gate rows i, f, g, o; the pointwise part fused (ops/rnn_fused.c).
static bool lstm_step(tg_graph *g, const tg_cell *c, tg_tensor *xp, tg_tensor *const *state, tg_tensor **next) {
    tg_tensor *gates = add_projected_state(g, c, xp, state[0]); // [B, 4H]
    next[1] = tg_lstm_cell_state_(g, gates, state[1]);           // [B, H]
    next[0] = lstm_project_output(g, c, tg_lstm_cell_output_(g, gates, next[1])); // [B, S0]
    return next[0] && next[1];
}

// The same step op by op: the reference the fused path is tested against.
static bool lstm_composite_step(tg_graph *g, const tg_cell *c, tg_tensor *xp, tg_tensor *const *state, tg_tensor **next) {
    tg_tensor *gate[4] = {0}; // each [B, H]
    if (!tg_chunk(g, tg_add(g, xp, project_state(g, c, state[0])), 4, 1, gate)) return false;
    tg_tensor *i = tg_sigmoid(g, gate[0]), *f = tg_sigmoid(g, gate[1]);
    tg_tensor *cand = tg_tanh(g, gate[2]), *o = tg_sigmoid(g, gate[3]);
    next[1] = tg_add(g, tg_mul(g, f, state[1]), tg_mul(g, i, cand));          // [B, H]
    next[0] = lstm_project_output(g, c, tg_mul(g, o, tg_tanh(g, next[1]))); // [B, S0]
    return next[0] && next[1];
}

// Gate rows r, z, n; r multiplies W_hn h + b_hn, as in PyTorch; fused (ops/rnn_fused.c).
static bool gru_step(tg_graph *g, const tg_cell *c, tg_tensor *xp, tg_tensor *const *state, tg_tensor **next) {
    return (next[0] = tg_gru_cell(g, xp, project_state(g, c, state[0]), state[0])) != NULL;
}

// The same step op by op: the reference the fused path is tested against.
static bool gru_composite_step(tg_graph *g, const tg_cell *c, tg_tensor *xp, tg_tensor *const *state, tg_tensor **next) {
    tg_tensor *xg[3] = {0}, *hg[3] = {0}; // each [B, H]
    if (!tg_chunk(g, xp, 3, 1, xg) || !tg_chunk(g, project_state(g, c, state[0]), 3, 1, hg)) return false;
    tg_tensor *r = tg_sigmoid(g, tg_add(g, xg[0], hg[0]));
    tg_tensor *z = tg_sigmoid(g, tg_add(g, xg[1], hg[1]));
    tg_tensor *n = tg_tanh(g, tg_add(g, xg[2], tg_mul(g, r, hg[2])));
    next[0] = tg_add(g, n, tg_mul(g, z, tg_sub(g, state[0], n))); // (1-z)*n + z*h
    return next[0] != NULL;
}

const tg_cell_type tg_cell_rnn_tanh = {.name = "RNN_TANH", .n_states = 1, .state_names = {"h"}, .init = rnn_init,
                                       .project_input = project_input, .step = rnn_tanh_step,
                                       .step_overwrites_input = true};
const tg_cell_type tg_cell_rnn_relu = {.name = "RNN_RELU", .n_states = 1, .state_names = {"h"}, .init = rnn_init,
                                       .project_input = project_input, .step = rnn_relu_step,
                                       .step_overwrites_input = true};
const tg_cell_type tg_cell_lstm = {.name = "LSTM", .n_states = 2, .state_names = {"h", "c"}, .init = lstm_init,
                                   .project_input = project_input, .step = lstm_step, .step_overwrites_input = true};
const tg_cell_type tg_cell_gru = {.name = "GRU", .n_states = 1, .state_names = {"h"}, .init = gru_init,
                                  .project_input = project_input, .step = gru_step};
const tg_cell_type tg_cell_lstm_composite = {.name = "LSTM", .n_states = 2, .state_names = {"h", "c"},
                                             .init = lstm_init, .project_input = project_input,
                                             .step = lstm_composite_step};
const tg_cell_type tg_cell_gru_composite = {.name = "GRU", .n_states = 1, .state_names = {"h"}, .init = gru_init,
                                            .project_input = project_input, .step = gru_composite_step};
