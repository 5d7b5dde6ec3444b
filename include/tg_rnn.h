// tg_rnn.h: recurrent networks as composite graph modules.
//
// A cell is parameters plus a step written with ordinary ops: (x_t, state_{t-1}) -> state_t.
// Layers unroll any cell over time; stacking and bidirectional run layers of cells.
// Nothing here differentiates anything: the ops record the unrolled graph and tg_backward
// walks it, so back-propagation through time works for a user's cell exactly as for ours.
//
// The built-in cells follow PyTorch's equations, gate order and parameter layout:
//   RNN   h' = act(W_ih x + b_ih + W_hh h + b_hh), act = tanh or relu
//   LSTM  gate rows i, f, g, o:  c' = f*c + i*g,  h' = o*tanh(c')  (then h' W_hr^T with proj_size)
//   GRU   gate rows r, z, n:     n = tanh(W_in x + b_in + r*(W_hn h + b_hn)),  h' = (1-z)*n + z*h
// (Some texts apply r before the product with W_hn, or swap z and 1-z; PyTorch and cuDNN do
// as above, and so do we.)
// Cells from the literature (peephole and layer-norm LSTM, IndRNN, SRU) are declared below.
#ifndef TG_RNN_H
#define TG_RNN_H

#include "tg_graph.h"
#include "tg_params.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TG_CELL_MAX_STATES 4 // states per cell (LSTM: h and c)
#define TG_RNN_MAX_LAYERS 16

typedef struct tg_cell tg_cell;

// What makes a kind of cell. A user's cell fills one in with designated initialisers (see
// examples/custom_cell.c); fields left out are 0, NULL or false.
typedef struct {
    const char *name;                            // "LSTM", "GRU", ...: error messages name it
    int n_states;                                // 1 to TG_CELL_MAX_STATES; state 0 is the output h
    const char *state_names[TG_CELL_MAX_STATES]; // optional: {"h", "c"}, for error messages
    // Creates the cell's parameters with tg_cell_add_param, initialised from rng, and may set
    // cell->state_size[i] (each starts as hidden_size). Returns false on error.
    bool (*init)(tg_cell *cell, tg_rng *rng);
    // Optional (may be NULL): the part of a step that depends on the input alone, for many
    // steps at once: x [N, input] -> [N, P]. A layer calls it on the rows of many steps at a
    // time (about 1024 rows) and hands each step its rows; without it, step gets x_t itself.
    tg_tensor *(*project_input)(tg_graph *g, const tg_cell *cell, tg_tensor *x);
    // One step, written with ordinary ops: x [B, input] (or [B, P] when projected) and
    // state[i] [B, state_size[i]] -> next[i] of the same shapes. Returns false on error
    // (after reporting it through tg_fail, as ops do). tg_cell_step checks what it made.
    bool (*step)(tg_graph *g, const tg_cell *cell, tg_tensor *x, tg_tensor *const *state, tg_tensor **next);
    // True when step may write over x (an in-place op such as tg_linear_add_): the layer then
    // hands each step a value nothing else reads. A step that writes over x without saying
    // so here is an error, reported by tg_cell_step.
    bool step_overwrites_input;
} tg_cell_type;

// The sizes a cell is made with.
typedef struct {
    int input_size, hidden_size; // both >= 1
    int proj_size;               // LSTM only (PyTorch's proj_size): h is [B, proj_size]; 0 = none
    tg_dtype dtype;              // TG_F32 (0, the default) or TG_F64
} tg_cell_config;

// A cell: its type, its sizes and where its parameters are. Read the fields; make it with
// tg_cell_init and find its parameters with tg_cell_param.
struct tg_cell {
    const tg_cell_type *type;
    int input_size, hidden_size, proj_size;
    int state_size[TG_CELL_MAX_STATES]; // state i is [B, state_size[i]]; state 0 is the output
    tg_dtype dtype;
    // Private: the cell's parameters are entries first_param .. first_param+n_params-1 of
    // params, named prefix + their own name + suffix.
    tg_params *params;
    int first_param, n_params;
    char prefix[192], suffix[32];
};

// PyTorch's nn.RNN (tanh and relu), nn.LSTM and nn.GRU cells, with parameters
// weight_ih, weight_hh, bias_ih, bias_hh ([G*H, in], [G*H, H], [G*H], [G*H]). The LSTM also
// takes proj_size P (PyTorch's LSTM with projections): weight_hh is then [4H, P], a
// parameter weight_hr [P, H] maps o*tanh(c') to h' [B, P], and c stays [B, H].
extern const tg_cell_type tg_cell_rnn_tanh;
extern const tg_cell_type tg_cell_rnn_relu;
extern const tg_cell_type tg_cell_lstm;
extern const tg_cell_type tg_cell_gru;
// The LSTM and GRU steps op by op, without the fused pointwise ops: the same results (to
// rounding), slower; the reference the fused cells are tested against.
extern const tg_cell_type tg_cell_lstm_composite;
extern const tg_cell_type tg_cell_gru_composite;

// Cells from the literature, written with the public ops only (models/cells_published.c):
// - Peephole LSTM (Gers and Schmidhuber 2000): the LSTM's parameters plus diagonal peephole
//   weights weight_ci, weight_cf, weight_co [H]; i and f see c, o sees c'.
// - Layer-norm LSTM (Ba, Kiros and Hinton 2016): W_ih x and W_hh h each layer-normalised over
//   the 4H gate rows (weight_ln_ih/bias_ln_ih, weight_ln_hh/bias_ln_hh [4H]) plus bias [4H],
//   and h' = o*tanh(LN(c')) (weight_ln_c, bias_ln_c [H]); eps 1e-5.
// - IndRNN (Li et al. 2018): h' = relu(W_ih x + b_ih + weight_hh*h), weight_hh [H] one
//   recurrent weight per unit; keep it bounded with tg_indrnn_clamp.
// - SRU (Lei et al. 2017, the EMNLP 2018 form): f, r = sigmoid(W_f/r x + v_f/r*c + b_f/r),
//   c' = f*c + (1-f)*W x, h' = r*c' + (1-r)*x', x' = x or W_hw x when in != H; every product
//   reads the input only, so the step is pointwise.
extern const tg_cell_type tg_cell_peephole_lstm;
extern const tg_cell_type tg_cell_layer_norm_lstm;
extern const tg_cell_type tg_cell_indrnn;
extern const tg_cell_type tg_cell_sru;

// Makes a cell of the given type with its parameters in p, each named prefix + its own name
// + suffix (suffix like "_l0" or "_l1_reverse"; either may be NULL); false on error.
bool tg_cell_init(tg_cell *cell, const tg_cell_type *type, const tg_cell_config *cfg, tg_params *p,
                  const char *prefix, const char *suffix, tg_rng *rng);
// For a cell type's init: adds the parameter `name` (stored as prefix + name + suffix),
// U(-1/sqrt(hidden), 1/sqrt(hidden)) as PyTorch initialises recurrent weights. NULL on error.
tg_tensor *tg_cell_add_param(tg_cell *cell, const char *name, tg_shape shape, tg_rng *rng);
// The cell's parameter `name` (as given to tg_cell_add_param); NULL, through the error path
// naming the cell and the parameter, when it has none of that name.
tg_tensor *tg_cell_param(const tg_cell *cell, const char *name);
// Runs one step of the cell (its type's step) and checks what it made: every next[i] must
// be [B, state_size[i]] of the cell's dtype, B = x's rows, and x must be left alone unless
// the type says otherwise. False on error, naming the cell, the state, the shapes and the
// caller's line.
bool tg_cell_step(tg_graph *g, const tg_cell *cell, tg_tensor *x, tg_tensor *const *state, tg_tensor **next);

// --- Layers ---

typedef struct {
    const tg_cell_type *cell; // &tg_cell_lstm, &tg_cell_gru, ... or a user's
    int input_size, hidden_size;
    int num_layers;           // >= 1
    bool bidirectional;
    double dropout;           // on the outputs of each layer but the last, in training mode only
    tg_dtype dtype;           // TG_F32 (0, the default) or TG_F64
    int proj_size;            // LSTM only: PyTorch's proj_size (0 = none); layer k>0 then reads D*proj_size
} tg_rnn_config;

typedef struct {
    tg_rnn_config cfg;
    int n_dirs;                                // 1, or 2 when bidirectional
    tg_cell cells[TG_RNN_MAX_LAYERS][2];       // [layer][direction]
} tg_rnn;

// Creates a stacked (and maybe bidirectional) RNN of any cell, with parameters in p named as
// PyTorch's: prefix + "weight_ih_l0", ..., "bias_hh_l1_reverse". Layer k>0 reads D times the
// size of state 0 (the output) of the layer below. Returns false on error.
bool tg_rnn_init(tg_rnn *rnn, const tg_rnn_config *cfg, tg_params *p, const char *prefix, tg_rng *rng);

typedef struct {
    tg_tensor *output;                      // [T, B, D*S0]: concat(forward, reverse) per step
    tg_tensor *state[TG_CELL_MAX_STATES];   // final states [L*D, B, S_i]: h_n, and c_n for an LSTM
} tg_rnn_result;

// Runs the RNN over x [T, B, input] (time-major). S_i is the size of the cell's state i
// (hidden_size, or proj_size for an LSTM's h). init: NULL (zeros) or n_states tensors
// [L*D, B, S_i]. lengths: NULL, or i32 [B] with 1 <= lengths[b] <= T: steps past a sequence's
// length neither change its state nor produce output (zeros there), its final state is the
// one at its own last step, and the reverse direction starts at its last real element, as
// PyTorch's packed sequences do, without sorting the batch. rng drives dropout (may be NULL
// when dropout is 0 or outside training). Returns false (through the error path) on error.
bool tg_rnn_forward(tg_graph *g, const tg_rnn *rnn, tg_tensor *x, tg_tensor *lengths, tg_tensor *const *init,
                    tg_rng *rng, tg_rnn_result *out);

// Unrolls one cell over x [T, B, input] in one direction, from states init[i] [B, S_i] (NULL:
// zeros). Writes outputs [T, B, S_0] and the final states [B, S_i]. lengths as above.
bool tg_rnn_unroll(tg_graph *g, const tg_cell *cell, tg_tensor *x, tg_tensor *lengths, tg_tensor *const *init,
                   bool reverse, tg_tensor **outputs, tg_tensor **final);

// Clamps every recurrent weight of an IndRNN to [-max_abs, max_abs], in place; call it after
// each optimizer step. Li et al. use max_abs = 2^(1/T) for relu over T steps. False (through
// the error path) for an RNN of another cell or a negative bound.
bool tg_indrnn_clamp(const tg_rnn *rnn, double max_abs);

// Call-site recording, as for the ops: errors in the input name the caller's line.
#define tg_rnn_forward(g, ...) tg_rnn_forward(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_rnn_unroll(g, ...) tg_rnn_unroll(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_cell_step(g, ...) tg_cell_step(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)

#ifdef __cplusplus
}
#endif
#endif
