// tg_rnn.h: recurrent networks as composite graph modules.
//
// A cell is parameters plus a step written with ordinary ops: (x_t, state_{t-1}) -> state_t.
// Layers unroll any cell over time; stacking and bidirectional run layers of cells.
// Nothing here differentiates anything: the ops record the unrolled graph and tg_backward
// walks it, so back-propagation through time works for a user's cell exactly as for ours.
//
// The built-in cells follow PyTorch's equations, gate order and parameter layout:
//   RNN   h' = act(W_ih x + b_ih + W_hh h + b_hh), act = tanh or relu
//   LSTM  gate rows i, f, g, o:  c' = f*c + i*g,  h' = o*tanh(c')
//   GRU   gate rows r, z, n:     n = tanh(W_in x + b_in + r*(W_hn h + b_hn)),  h' = (1-z)*n + z*h
// (Some texts apply r before the product with W_hn, or swap z and 1-z; PyTorch and cuDNN do
// as above, and so do we.)
#ifndef TG_RNN_H
#define TG_RNN_H

#include "tg_graph.h"
#include "tg_params.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TG_CELL_MAX_STATES 4
#define TG_CELL_MAX_PARAMS 8
#define TG_RNN_MAX_LAYERS 16

typedef struct tg_cell tg_cell;

// What makes a kind of cell. A user's cell fills one of these in (see examples/custom_cell.c).
typedef struct {
    const char *name; // "LSTM", "GRU", ...
    int n_states;     // state tensors, each [B, hidden]; state 0 is the output h (LSTM: h, c)
    // Creates the cell's parameters in p, each named prefix + its own name + suffix (suffix is
    // like "_l0" or "_l1_reverse"), initialised from rng. Returns false on error.
    bool (*init)(tg_cell *cell, tg_params *p, const char *prefix, const char *suffix, tg_rng *rng);
    // Optional (may be NULL): the part of a step that depends on the input alone, for many
    // steps at once: x [N, input] -> [N, P]. A layer calls it on the rows of many steps at a
    // time (about 1024 rows) and hands each step its rows; without it, step gets x_t itself.
    tg_tensor *(*project_input)(tg_graph *g, const tg_cell *cell, tg_tensor *x);
    // One step: x [B, input] (or [B, P] when projected) and state[i] [B, hidden] ->
    // next[i] [B, hidden]. Written with ordinary ops. x is the step's own: a step may write
    // over it (the built-in RNN and LSTM steps add the state's product onto it in place),
    // so callers pass a value nothing else reads, such as the step's rows of the projection.
    void (*step)(tg_graph *g, const tg_cell *cell, tg_tensor *x, tg_tensor *const *state, tg_tensor **next);
} tg_cell_type;

struct tg_cell {
    const tg_cell_type *type;
    int input_size, hidden_size;
    tg_tensor *param[TG_CELL_MAX_PARAMS]; // the cell's parameters, in the order its init made them
    tg_dtype dtype;
};

// PyTorch's nn.RNN (tanh and relu), nn.LSTM and nn.GRU cells, with parameters
// weight_ih, weight_hh, bias_ih, bias_hh ([G*H, in], [G*H, H], [G*H], [G*H]).
extern const tg_cell_type tg_cell_rnn_tanh;
extern const tg_cell_type tg_cell_rnn_relu;
extern const tg_cell_type tg_cell_lstm;
extern const tg_cell_type tg_cell_gru;
// The LSTM and GRU steps op by op, without the fused pointwise ops: the same results (to
// rounding), slower; the reference the fused cells are tested against.
extern const tg_cell_type tg_cell_lstm_composite;
extern const tg_cell_type tg_cell_gru_composite;

// Makes a cell of the given type with its parameters in p (dtype f32 or f64); false on error.
bool tg_cell_init(tg_cell *cell, const tg_cell_type *type, int input_size, int hidden_size, tg_dtype dtype,
                  tg_params *p, const char *prefix, const char *suffix, tg_rng *rng);
// Adds a parameter of the cell named prefix + base + suffix, U(-1/sqrt(hidden), 1/sqrt(hidden))
// as PyTorch initialises recurrent weights; for a cell type's init. NULL on error.
tg_tensor *tg_cell_add_param(tg_cell *cell, tg_params *p, const char *prefix, const char *base, const char *suffix,
                             tg_shape shape, tg_rng *rng);

// --- Layers ---

typedef struct {
    const tg_cell_type *cell; // &tg_cell_lstm, &tg_cell_gru, ... or a user's
    int input_size, hidden_size;
    int num_layers;           // >= 1
    bool bidirectional;
    double dropout;           // on the outputs of each layer but the last, in training mode only
    tg_dtype dtype;           // TG_F32 (0, the default) or TG_F64
} tg_rnn_config;

typedef struct {
    tg_rnn_config cfg;
    int n_dirs;                                // 1, or 2 when bidirectional
    tg_cell cells[TG_RNN_MAX_LAYERS][2];       // [layer][direction]
} tg_rnn;

// Creates a stacked (and maybe bidirectional) RNN of any cell, with parameters in p named as
// PyTorch's: prefix + "weight_ih_l0", ..., "bias_hh_l1_reverse". Returns false on error.
bool tg_rnn_init(tg_rnn *rnn, const tg_rnn_config *cfg, tg_params *p, const char *prefix, tg_rng *rng);

typedef struct {
    tg_tensor *output;                      // [T, B, D*H]: concat(forward, reverse) per step
    tg_tensor *state[TG_CELL_MAX_STATES];   // final states [L*D, B, H]: h_n, and c_n for an LSTM
} tg_rnn_result;

// Runs the RNN over x [T, B, input] (time-major). init: NULL (zeros) or n_states tensors
// [L*D, B, H]. lengths: NULL, or i32 [B] with 1 <= lengths[b] <= T: steps past a sequence's
// length neither change its state nor produce output (zeros there), its final state is the
// one at its own last step, and the reverse direction starts at its last real element, as
// PyTorch's packed sequences do, without sorting the batch. rng drives dropout (may be NULL
// when dropout is 0 or outside training). Returns false (through the error path) on error.
bool tg_rnn_forward(tg_graph *g, const tg_rnn *rnn, tg_tensor *x, tg_tensor *lengths, tg_tensor *const *init,
                    tg_rng *rng, tg_rnn_result *out);

// Unrolls one cell over x [T, B, input] in one direction, from states init[i] [B, H] (NULL:
// zeros). Writes outputs [T, B, H] and the final states [B, H]. lengths as above.
bool tg_rnn_unroll(tg_graph *g, const tg_cell *cell, tg_tensor *x, tg_tensor *lengths, tg_tensor *const *init,
                   bool reverse, tg_tensor **outputs, tg_tensor **final);

// Call-site recording, as for the ops: errors in the input name the caller's line.
#define tg_rnn_forward(g, ...) tg_rnn_forward(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_rnn_unroll(g, ...) tg_rnn_unroll(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)

#ifdef __cplusplus
}
#endif
#endif
