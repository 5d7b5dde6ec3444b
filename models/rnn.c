// rnn.c: unrolling any cell over time, stacking layers, both directions, masking.
//
// Variable lengths without sorting: at step t, a sequence whose length is <= t keeps its
// state (where(mask, new, old)) and outputs zeros. Run forwards, each sequence's final state
// is then the one at its own last step. Run backwards from t = T-1, a sequence's state stays
// at its initial value until t reaches its last real element: the reverse direction starts
// where PyTorch's packed sequences start it.
#include <stdio.h>
#include <string.h>

#include "tapegrad.h"
#include "tg_internal.h" // tg_graph_call_site: errors found after a step name the caller's line
#include "tg_rnn.h"

#define PROJECT_ROWS 1024 // rows of input per product of the input projection

// The caller's line, kept while the step's own ops record theirs: errors found after the
// step name where the caller called from, not the step's last op.
static bool step_checked(tg_graph *g, const tg_cell *cell, tg_tensor *x, tg_tensor *const *state, tg_tensor **next,
                          const char *file, int line) {
    const tg_cell_type *type = cell->type;
    char got[64], want[64];
    if (!x || x->shape.n != 2)
        return tg_fail(tg_here(g, file, line), "rnn", "the %s cell's step input is %s; it takes [B, features]",
                       type->name, x ? tg_shape_str(x->shape, got, sizeof got) : "NULL (did an earlier op fail?)"), false;
    int64_t B = x->shape.d[0];
    uint64_t x_version = x->version;
    for (int i = 0; i < type->n_states; i++) next[i] = NULL;
    bool ok = type->step(g, cell, x, state, next);
    tg_here(g, file, line);
    if (!ok) return tg_fail(g, "rnn", "the %s cell's step failed", type->name), false;
    if (x->version != x_version && !type->step_overwrites_input)
        return tg_fail(g, "rnn", "the %s cell's step wrote over its input; a type whose step does that must say "
                       "so (.step_overwrites_input = true)", type->name), false;
    for (int i = 0; i < type->n_states; i++) {
        tg_shape shape = tg_shape2(B, cell->state_size[i]); // [B, S_i]
        if (next[i] && tg_shape_equal(next[i]->shape, shape) && next[i]->dtype == cell->dtype) continue;
        // Formatted only on failure: at batch 1, formatting at every step took 5% of a training step.
        char name[32];
        if (type->state_names[i]) snprintf(name, sizeof name, "\"%s\"", type->state_names[i]);
        else snprintf(name, sizeof name, "%d", i);
        tg_shape_str(shape, want, sizeof want);
        if (!next[i])
            return tg_fail(g, "rnn", "the %s cell's step made no state %s (it must be %s)", type->name, name, want), false;
        return tg_fail(g, "rnn", "the %s cell's step made state %s of %s %s; the cell declares %s %s", type->name, name,
                       tg_dtype_name(next[i]->dtype), tg_shape_str(next[i]->shape, got, sizeof got),
                       tg_dtype_name(cell->dtype), want), false;
    }
    return true;
}

bool (tg_cell_step)(tg_graph *g, const tg_cell *cell, tg_tensor *x, tg_tensor *const *state, tg_tensor **next) {
    const char *file;
    int line;
    tg_graph_call_site(g, &file, &line);
    return step_checked(g, cell, x, state, next, file, line);
}

bool tg_rnn_init(tg_rnn *rnn, const tg_rnn_config *cfg, tg_params *p, const char *prefix, tg_rng *rng) {
    memset(rnn, 0, sizeof *rnn);
    if (!cfg->cell || cfg->num_layers < 1 || cfg->num_layers > TG_RNN_MAX_LAYERS) {
        tg_fail(NULL, "rnn", "%d layers%s; an RNN has a cell type and 1 to %d layers", cfg->num_layers,
                cfg->cell ? "" : " and no cell type", TG_RNN_MAX_LAYERS);
        return false;
    }
    if (cfg->dropout < 0 || cfg->dropout >= 1) {
        tg_fail(NULL, "rnn", "dropout %g; it must be in [0, 1)", cfg->dropout);
        return false;
    }
    rnn->cfg = *cfg;
    rnn->n_dirs = cfg->bidirectional ? 2 : 1;
    for (int l = 0; l < cfg->num_layers; l++)
        for (int d = 0; d < rnn->n_dirs; d++) {
            char suffix[32];
            snprintf(suffix, sizeof suffix, "_l%d%s", l, d ? "_reverse" : "");
            // Layer k>0 reads D times the output size of the layer below (D*H, or D*proj_size).
            int in = l == 0 ? cfg->input_size : rnn->n_dirs * rnn->cells[l - 1][0].state_size[0];
            tg_cell_config cc = {.input_size = in, .hidden_size = cfg->hidden_size, .proj_size = cfg->proj_size,
                                 .dtype = cfg->dtype};
            if (!tg_cell_init(&rnn->cells[l][d], cfg->cell, &cc, p, prefix, suffix, rng)) return false;
        }
    return true;
}

// The i32 mask [B, 1] of the sequences still running at step t; NULL when all are.
static tg_tensor *step_mask(tg_graph *g, const int32_t *len, int64_t B, int64_t t) {
    if (!len) return NULL;
    tg_tensor *mask = tg_zeros(g, TG_I32, tg_shape2(B, 1));
    int32_t *m = mask->data;
    bool all = true;
    for (int64_t b = 0; b < B; b++) {
        m[b] = t < len[b];
        all &= m[b] != 0;
    }
    return all ? NULL : mask;
}

static bool check_lengths(tg_graph *g, tg_tensor *lengths, int64_t T, int64_t B) {
    if (!lengths) return true;
    char s[64];
    if (lengths->dtype != TG_I32 || lengths->shape.n != 1 || lengths->shape.d[0] != B) {
        tg_fail(g, "rnn", "lengths are %s %s; they must be int32 [%lld], one per sequence of the batch",
                tg_dtype_name(lengths->dtype), tg_shape_str(lengths->shape, s, sizeof s), (long long)B);
        return false;
    }
    const int32_t *len = lengths->data;
    for (int64_t b = 0; b < B; b++)
        if (len[b] < 1 || len[b] > T) {
            tg_fail(g, "rnn", "sequence %lld has length %d; lengths must be in [1, %lld]", (long long)b, len[b],
                    (long long)T);
            return false;
        }
    return true;
}

// tg_rnn_unroll with the caller's call site passed down, as its own ops overwrite the graph's.
static bool unroll(tg_graph *g, const tg_cell *cell, tg_tensor *x, tg_tensor *lengths, tg_tensor *const *init,
                   bool reverse, tg_tensor **outputs, tg_tensor **final, const char *file, int line) {
    char s[64];
    if (!x) return tg_fail(g, "rnn", "input is NULL (did an earlier op fail?)"), false;
    if (x->shape.n != 3 || x->shape.d[2] != cell->input_size || x->shape.d[0] < 1 || x->dtype != cell->dtype) {
        tg_fail(g, "rnn", "input %s %s; the %s cell takes [T >= 1, B, %d] %s", tg_shape_str(x->shape, s, sizeof s),
                tg_dtype_name(x->dtype), cell->type->name, cell->input_size, tg_dtype_name(cell->dtype));
        return false;
    }
    int64_t T = x->shape.d[0], B = x->shape.d[1];
    if (!check_lengths(g, lengths, T, B)) return false;
    const tg_cell_type *type = cell->type;
    int n_states = type->n_states;
    tg_tensor *state[TG_CELL_MAX_STATES], *next[TG_CELL_MAX_STATES];
    for (int i = 0; i < n_states; i++) {
        tg_shape shape = tg_shape2(B, cell->state_size[i]); // [B, S_i]
        state[i] = init && init[i] ? init[i] : tg_zeros(g, cell->dtype, shape);
        if (!tg_shape_equal(state[i]->shape, shape)) {
            tg_fail(g, "rnn", "initial state %d of the %s cell has shape %s; it must be [%lld, %d]", i, type->name,
                    tg_shape_str(state[i]->shape, s, sizeof s), (long long)B, cell->state_size[i]);
            return false;
        }
    }
    // Input projections, one product per chunk of steps (about PROJECT_ROWS rows), made when
    // the walk over time reaches the chunk. A product that large runs near BLIS's peak, and
    // backward then holds one chunk's projection gradient at a time, not all T*B rows of it.
    tg_tensor *rows = type->project_input ? tg_reshape(g, x, tg_shape2(T * B, cell->input_size)) : NULL;
    if (type->project_input && !rows) return false;
    int64_t chunk = B < PROJECT_ROWS ? PROJECT_ROWS / B : 1; // steps per chunk
    tg_tensor *proj = NULL; // [steps of the chunk * B, P]
    int64_t proj_first = -1; // the chunk's first step
    const int32_t *len = lengths ? lengths->data : NULL;
    tg_tensor **out = tg_graph_alloc(g, (size_t)T * sizeof *out);
    tg_tensor *zero = len ? tg_zeros(g, cell->dtype, tg_shape0()) : NULL;
    for (int64_t k = 0; k < T; k++) {
        int64_t t = reverse ? T - 1 - k : k;
        if (rows && t / chunk * chunk != proj_first) {
            proj_first = t / chunk * chunk;
            int64_t steps = T - proj_first < chunk ? T - proj_first : chunk;
            proj = type->project_input(g, cell, tg_slice(g, rows, 0, proj_first * B, steps * B));
            if (!proj) return false;
        }
        tg_tensor *xt = proj ? tg_slice(g, proj, 0, (t - proj_first) * B, B) // [B, P]: the step's own rows
                             : tg_reshape(g, tg_slice(g, x, 0, t, 1), tg_shape2(B, cell->input_size));
        // Without a projection x_t is a view of the caller's input: a step that overwrites
        // its input gets a copy.
        if (!proj && type->step_overwrites_input) xt = tg_add_scalar(g, xt, 0.0);
        if (!step_checked(g, cell, xt, state, next, file, line)) return false;
        tg_tensor *mask = step_mask(g, len, B, t);
        out[t] = mask ? tg_where(g, mask, next[0], zero) : next[0];
        for (int i = 0; i < n_states; i++) state[i] = mask ? tg_where(g, mask, next[i], state[i]) : next[i];
    }
    *outputs = tg_stack(g, (int)T, out, 0); // [T, B, S0]
    for (int i = 0; i < n_states; i++) final[i] = state[i];
    return *outputs != NULL;
}

bool (tg_rnn_unroll)(tg_graph *g, const tg_cell *cell, tg_tensor *x, tg_tensor *lengths, tg_tensor *const *init,
                     bool reverse, tg_tensor **outputs, tg_tensor **final) {
    const char *file;
    int line;
    tg_graph_call_site(g, &file, &line);
    return unroll(g, cell, x, lengths, init, reverse, outputs, final, file, line);
}

bool (tg_rnn_forward)(tg_graph *g, const tg_rnn *rnn, tg_tensor *x, tg_tensor *lengths, tg_tensor *const *init,
                      tg_rng *rng, tg_rnn_result *out) {
    memset(out, 0, sizeof *out);
    const char *file;
    int line;
    tg_graph_call_site(g, &file, &line);
    const tg_rnn_config *cfg = &rnn->cfg;
    int L = cfg->num_layers, D = rnn->n_dirs, n_states = cfg->cell->n_states;
    char s[64];
    if (!x) return tg_fail(g, "rnn", "input is NULL (did an earlier op fail?)"), false;
    if (x->shape.n != 3) {
        tg_fail(g, "rnn", "input %s; an RNN takes time-major input [T, B, %d]", tg_shape_str(x->shape, s, sizeof s),
                cfg->input_size);
        return false;
    }
    int64_t B = x->shape.d[1];
    const int *S = rnn->cells[0][0].state_size; // every layer's states have the same sizes
    for (int i = 0; init && i < n_states; i++)
        if (!init[i] || !tg_shape_equal(init[i]->shape, tg_shape3(L * D, B, S[i]))) {
            tg_fail(g, "rnn", "initial state %d has shape %s; it must be [%d, %lld, %d] (layers x directions, "
                              "batch, state size)",
                    i, init[i] ? tg_shape_str(init[i]->shape, s, sizeof s) : "NULL", L * D, (long long)B, S[i]);
            return false;
        }

    tg_tensor *layer_in = x;
    tg_tensor **finals = tg_graph_alloc(g, (size_t)(n_states * L * D) * sizeof *finals); // [state][l*D + d]
    for (int l = 0; l < L; l++) {
        tg_tensor *dir_out[2];
        for (int d = 0; d < D; d++) {
            tg_tensor *h0[TG_CELL_MAX_STATES] = {0}, *fin[TG_CELL_MAX_STATES];
            for (int i = 0; init && i < n_states; i++) // this layer and direction's [B, S_i]
                h0[i] = tg_reshape(g, tg_slice(g, init[i], 0, l * D + d, 1), tg_shape2(B, S[i]));
            tg_here(g, file, line); // the checks of the layer's input name the caller's line
            if (!unroll(g, &rnn->cells[l][d], layer_in, lengths, init ? h0 : NULL, d == 1, &dir_out[d], fin, file, line))
                return false;
            for (int i = 0; i < n_states; i++) finals[i * L * D + l * D + d] = fin[i];
        }
        layer_in = D == 2 ? tg_concat(g, 2, dir_out, 2) : dir_out[0]; // [T, B, D*S0]
        if (l < L - 1 && cfg->dropout > 0 && tg_graph_training(g)) {
            if (!rng) return tg_fail(tg_here(g, file, line), "rnn", "dropout %g in training mode needs a generator",
                                     cfg->dropout), false;
            layer_in = tg_dropout(g, layer_in, cfg->dropout, rng);
        }
    }
    out->output = layer_in;
    for (int i = 0; i < n_states; i++) out->state[i] = tg_stack(g, L * D, finals + i * L * D, 0); // [L*D, B, S_i]
    return out->output != NULL;
}
