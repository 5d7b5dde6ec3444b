// Recurrent modules: gradchecks of every cell, stacked and bidirectional layers and masked
// batches; packed-sequence semantics; truncated BPTT; PyTorch's parameter names.
#include <math.h>

#include "tg_test.h"

typedef struct {
    tg_params *p;
    tg_rnn rnn;
    tg_tensor *x, *lengths, *init[2]; // x [T, B, I]; init [L*D, B, H] or NULL
    tg_rng rng;                       // re-seeded on every call, so dropout masks repeat
    uint64_t dropout_seed;
} rnn_case;

// Everything the module returns, flattened into one vector: output, then each final state.
static tg_tensor *rnn_all_outputs(tg_graph *g, void *ctx) {
    rnn_case *c = ctx;
    tg_rng_seed(&c->rng, c->dropout_seed);
    tg_rnn_result r;
    if (!tg_rnn_forward(g, &c->rnn, c->x, c->lengths, c->init[0] ? c->init : NULL, &c->rng, &r)) return NULL;
    tg_tensor *parts[3] = {tg_reshape(g, r.output, tg_shape1(-1))};
    int n = 1;
    for (int i = 0; i < c->rnn.cfg.cell->n_states; i++) parts[n++] = tg_reshape(g, r.state[i], tg_shape1(-1));
    return tg_concat(g, n, parts, 0);
}

// A float64 RNN with random inputs (and initial states when with_init).
static rnn_case make_case(const tg_cell_type *cell, int L, bool bi, int T, int B, bool with_init) {
    rnn_case c = {0};
    c.p = tg_params_new();
    tg_rng rng;
    tg_rng_seed(&rng, 11);
    tg_rnn_config cfg = {.cell = cell, .input_size = 3, .hidden_size = 4, .num_layers = L, .bidirectional = bi,
                         .dtype = TG_F64};
    cr_assert(tg_rnn_init(&c.rnn, &cfg, c.p, "", &rng));
    c.x = test_input(tg_shape3(T, B, 3), 5, -1, 1);
    for (int i = 0; with_init && i < cell->n_states; i++)
        c.init[i] = test_input(tg_shape3(L * (bi ? 2 : 1), B, 4), 6 + i, -0.8, 0.8);
    return c;
}

static void free_case(rnn_case *c) {
    tg_params_free(c->p);
    tg_tensor_free(c->x);
    tg_tensor_free(c->lengths);
    tg_tensor_free(c->init[0]);
    tg_tensor_free(c->init[1]);
}

// Gradchecks all parameters, the input and the initial states.
static void gradcheck_case(rnn_case *c) {
    tg_tensor *wrt[64];
    int n = 0;
    for (int i = 0; i < tg_params_count(c->p); i++) wrt[n++] = tg_params_at(c->p, i);
    wrt[n++] = c->x;
    for (int i = 0; i < 2; i++)
        if (c->init[i]) wrt[n++] = c->init[i];
    ASSERT_GRADCHECK(rnn_all_outputs, c, wrt, n);
}

static const tg_cell_type *const CELLS[] = {&tg_cell_rnn_tanh, &tg_cell_rnn_relu, &tg_cell_gru, &tg_cell_lstm};

Test(rnn, gradcheck_every_cell_one_layer) {
    for (int k = 0; k < 4; k++) {
        rnn_case c = make_case(CELLS[k], 1, false, 4, 2, true);
        gradcheck_case(&c);
        free_case(&c);
    }
}

Test(rnn, gradcheck_stacked_bidirectional) {
    for (int k = 0; k < 4; k++) {
        rnn_case c = make_case(CELLS[k], 2, true, 3, 2, k % 2 == 0); // with and without initial states
        gradcheck_case(&c);
        free_case(&c);
    }
}

Test(rnn, gradcheck_masked_variable_length_batch) {
    for (int k = 0; k < 4; k++) {
        rnn_case c = make_case(CELLS[k], 2, true, 4, 3, true);
        int32_t len[] = {2, 4, 1};
        c.lengths = tg_tensor_create(TG_I32, tg_shape1(3), false);
        tg_tensor_copy_from(c.lengths, len);
        gradcheck_case(&c);
        free_case(&c);
    }
}

// The cells from the literature (models/cells_published.c), each as a 2-layer bidirectional
// network on a masked batch, with initial states.
static const tg_cell_type *const PUBLISHED[] = {&tg_cell_peephole_lstm, &tg_cell_layer_norm_lstm, &tg_cell_indrnn,
                                                &tg_cell_sru};

Test(rnn, gradcheck_published_cells_stacked_bidirectional_masked) {
    for (int k = 0; k < 4; k++) {
        rnn_case c = make_case(PUBLISHED[k], 2, true, 4, 3, true);
        int32_t len[] = {2, 4, 1};
        c.lengths = tg_tensor_create(TG_I32, tg_shape1(3), false);
        tg_tensor_copy_from(c.lengths, len);
        gradcheck_case(&c);
        free_case(&c);
    }
}

Test(rnn, gradcheck_with_dropout_between_layers) {
    rnn_case c = make_case(&tg_cell_lstm, 3, false, 3, 2, false);
    c.rnn.cfg.dropout = 0.4;
    c.dropout_seed = 99;
    gradcheck_case(&c);
    free_case(&c);
}

// Runs c and returns a copy of output [T, B, D*H] and state 0 [L*D, B, H] into heap arrays.
static void run(rnn_case *c, tg_graph *g, tg_rnn_result *r) {
    tg_graph_reset(g);
    cr_assert(tg_rnn_forward(g, &c->rnn, c->x, c->lengths, c->init[0] ? c->init : NULL, &c->rng, r));
}

Test(rnn, packed_sequence_semantics_match_running_each_sequence_alone) {
    // A masked batch gives, for each sequence, what that sequence alone (cut to its length) gives.
    for (int k = 0; k < 8; k++) {
        enum { T = 5, B = 3 };
        int32_t len[B] = {3, 5, 1};
        const tg_cell_type *type = k < 4 ? CELLS[k] : PUBLISHED[k - 4];
        rnn_case c = make_case(type, 2, true, T, B, true);
        c.lengths = tg_tensor_create(TG_I32, tg_shape1(B), false);
        tg_tensor_copy_from(c.lengths, len);
        tg_graph *g = tg_graph_new(), *g1 = tg_graph_new();
        tg_rnn_result all;
        run(&c, g, &all);
        int S = type->n_states, LD = 4, H = 4;
        for (int b = 0; b < B; b++) {
            rnn_case one = c; // same parameters; one sequence, no mask
            tg_graph_reset(g1);
            one.x = tg_slice(g1, tg_slice(g1, c.x, 1, b, 1), 0, 0, len[b]); // [len, 1, I]
            tg_tensor *init[2] = {0};
            for (int i = 0; i < S; i++) init[i] = tg_slice(g1, c.init[i], 1, b, 1);
            tg_rnn_result alone;
            cr_assert(tg_rnn_forward(g1, &c.rnn, one.x, NULL, init, NULL, &alone));
            for (int t = 0; t < T; t++)
                for (int j = 0; j < 2 * H; j++) {
                    double got = tg_tensor_get(all.output, (t * B + b) * 2 * H + j);
                    double want = t < len[b] ? tg_tensor_get(alone.output, t * 2 * H + j) : 0.0;
                    ASSERT_CLOSE(got, want, 1e-14, 1e-12);
                }
            for (int i = 0; i < S; i++)
                for (int l = 0; l < LD; l++)
                    for (int j = 0; j < H; j++)
                        ASSERT_CLOSE(tg_tensor_get(all.state[i], (l * B + b) * H + j),
                                     tg_tensor_get(alone.state[i], l * H + j), 1e-14, 1e-12);
        }
        tg_graph_free(g);
        tg_graph_free(g1);
        free_case(&c);
    }
}

Test(rnn, truncated_bptt_values_continue_and_gradient_stops) {
    enum { T = 8, B = 2, H = 4 };
    rnn_case c = make_case(&tg_cell_lstm, 1, false, T, B, false);
    tg_graph *g = tg_graph_new();
    tg_rnn_result whole, first, second;
    cr_assert(tg_rnn_forward(g, &c.rnn, c.x, NULL, NULL, NULL, &whole));
    tg_tensor *x1 = tg_slice(g, c.x, 0, 0, T / 2), *x2 = tg_slice(g, c.x, 0, T / 2, T / 2);
    cr_assert(tg_rnn_forward(g, &c.rnn, x1, NULL, NULL, NULL, &first));
    tg_tensor *carried[2] = {tg_detach(g, first.state[0]), tg_detach(g, first.state[1])};
    cr_assert(tg_rnn_forward(g, &c.rnn, x2, NULL, carried, NULL, &second));
    // Values: the second chunk continues exactly where the whole sequence is.
    for (int i = 0; i < T / 2 * B * H; i++)
        cr_assert_eq(tg_tensor_get(second.output, i), tg_tensor_get(whole.output, T / 2 * B * H + i), "element %d", i);
    // Gradient: a loss on the second chunk reaches x2's steps but not x1's.
    tg_tensor *loss = tg_sum(g, second.output);
    // Retained: the second walk below passes through x2's slice again.
    cr_assert(tg_backward_with(g, loss, &(tg_backward_opts){.retain_graph = true}));
    double first_half = 0, second_half = 0;
    for (int i = 0; i < T * B * 3; i++) {
        double v = fabs(((double *)c.x->grad)[i]);
        if (i < T / 2 * B * 3) first_half += v;
        else second_half += v;
    }
    cr_assert_eq(first_half, 0.0, "the gradient crossed the detached chunk boundary");
    cr_assert_gt(second_half, 0.0);
    // Without the detach, it does cross.
    tg_tensor_zero_grad(c.x);
    tg_tensor *through[2] = {first.state[0], first.state[1]};
    cr_assert(tg_rnn_forward(g, &c.rnn, x2, NULL, through, NULL, &second));
    cr_assert(tg_backward(g, tg_sum(g, second.output)));
    first_half = 0;
    for (int i = 0; i < T / 2 * B * 3; i++) first_half += fabs(((double *)c.x->grad)[i]);
    cr_assert_gt(first_half, 0.0);
    tg_graph_free(g);
    free_case(&c);
}

Test(rnn, dropout_only_in_training) {
    rnn_case c = make_case(&tg_cell_gru, 2, false, 3, 2, false);
    tg_graph *g = tg_graph_new();
    tg_rnn_result plain, dropped, eval;
    run(&c, g, &plain);
    double *want = malloc((size_t)plain.output->numel * sizeof *want);
    for (int64_t i = 0; i < plain.output->numel; i++) want[i] = tg_tensor_get(plain.output, i);
    c.rnn.cfg.dropout = 0.5;
    tg_rng_seed(&c.rng, 3);
    run(&c, g, &dropped);
    int differ = 0;
    for (int64_t i = 0; i < dropped.output->numel; i++) differ += tg_tensor_get(dropped.output, i) != want[i];
    cr_assert_gt(differ, 0, "dropout between layers changed nothing in training mode");
    tg_graph_set_training(g, false);
    run(&c, g, &eval);
    for (int64_t i = 0; i < eval.output->numel; i++) cr_assert_eq(tg_tensor_get(eval.output, i), want[i]);
    free(want);
    tg_graph_free(g);
    free_case(&c);
}

Test(rnn, parameters_have_pytorch_names_and_shapes) {
    tg_params *p = tg_params_new();
    tg_rng rng;
    tg_rng_seed(&rng, 1);
    tg_rnn rnn;
    tg_rnn_config cfg = {.cell = &tg_cell_lstm, .input_size = 10, .hidden_size = 20, .num_layers = 2, .bidirectional = true};
    cr_assert(tg_rnn_init(&rnn, &cfg, p, "encoder.", &rng));
    const char *names[] = {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
                           "weight_ih_l0_reverse", "weight_hh_l0_reverse", "bias_ih_l0_reverse", "bias_hh_l0_reverse",
                           "weight_ih_l1", "weight_hh_l1", "bias_ih_l1", "bias_hh_l1",
                           "weight_ih_l1_reverse", "weight_hh_l1_reverse", "bias_ih_l1_reverse", "bias_hh_l1_reverse"};
    cr_assert_eq(tg_params_count(p), 16);
    for (int i = 0; i < 16; i++) {
        char want[64];
        snprintf(want, sizeof want, "encoder.%s", names[i]);
        cr_assert_str_eq(tg_params_at(p, i)->name, want); // PyTorch's state_dict order too
    }
    cr_assert(tg_shape_equal(tg_params_find(p, "encoder.weight_ih_l0")->shape, tg_shape2(80, 10)));
    cr_assert(tg_shape_equal(tg_params_find(p, "encoder.weight_ih_l1_reverse")->shape, tg_shape2(80, 40)));
    cr_assert(tg_shape_equal(tg_params_find(p, "encoder.weight_hh_l1")->shape, tg_shape2(80, 20)));
    cr_assert(tg_shape_equal(tg_params_find(p, "encoder.bias_hh_l0")->shape, tg_shape1(80)));
    // PyTorch's initialisation: U(-1/sqrt(H), 1/sqrt(H)), and it is not all zeros.
    tg_tensor *w = tg_params_find(p, "encoder.weight_hh_l0");
    double k = 1 / sqrt(20.0), lo = 1, hi = -1;
    for (int64_t i = 0; i < w->numel; i++) {
        lo = fmin(lo, tg_tensor_get(w, i));
        hi = fmax(hi, tg_tensor_get(w, i));
    }
    cr_assert(lo >= -k && hi <= k && lo < -0.9 * k && hi > 0.9 * k, "range [%g, %g] for k = %g", lo, hi, k);
    tg_params_free(p);
}

Test(rnn, bad_inputs_are_reported) {
    test_capture_errors();
    rnn_case c = make_case(&tg_cell_gru, 1, true, 3, 2, false);
    tg_graph *g = tg_graph_new();
    tg_rnn_result r;
    cr_assert(!tg_rnn_forward(g, &c.rnn, tg_zeros(g, TG_F64, tg_shape3(3, 2, 5)), NULL, NULL, NULL, &r));
    cr_assert(strstr(test_error_message, "tg_rnn") && strstr(test_error_message, "[3, 2, 5]") &&
                  strstr(test_error_message, "test_rnn.c"),
              "%s", test_error_message);
    int32_t bad[] = {3, 4};
    tg_tensor *len = tg_from_data(g, TG_I32, tg_shape1(2), bad);
    cr_assert(!tg_rnn_forward(g, &c.rnn, c.x, len, NULL, NULL, &r));
    cr_assert(strstr(test_error_message, "length 4"), "%s", test_error_message);
    tg_tensor *h0 = tg_zeros(g, TG_F64, tg_shape3(1, 2, 4)); // a bidirectional layer needs [2, 2, 4]
    cr_assert(!tg_rnn_forward(g, &c.rnn, c.x, NULL, &h0, NULL, &r));
    cr_assert(strstr(test_error_message, "[1, 2, 4]") && strstr(test_error_message, "[2, 2, 4]"), "%s",
              test_error_message);
    tg_graph_free(g);
    free_case(&c);
}

// --- The fused pointwise ops (ops/rnn_fused.c) ---

typedef struct {
    int which; // 0: lstm_cell_state, 1: lstm_cell_output, 2: gru_cell
    tg_tensor *a, *b, *c;
} fused_case;

// The LSTM ops write over their gates, which therefore cannot be the leaf gradcheck
// perturbs: they get a copy of it (a * 1).
static tg_tensor *run_fused(tg_graph *g, void *ctx) {
    fused_case *f = ctx;
    if (f->which == 0) return tg_lstm_cell_state_(g, tg_mul_scalar(g, f->a, 1.0), f->b);
    if (f->which == 1) return tg_lstm_cell_output_(g, tg_mul_scalar(g, f->a, 1.0), f->b);
    return tg_gru_cell(g, f->a, f->b, f->c);
}

Test(rnn_fused, gradcheck_each_fused_op) {
    enum { B = 3, H = 4 };
    for (int which = 0; which < 3; which++) {
        int G = which == 2 ? 3 : 4;
        fused_case f = {which, test_input(tg_shape2(B, G * H), 1, -2, 2), NULL, NULL};
        f.b = which == 2 ? test_input(tg_shape2(B, G * H), 2, -2, 2) : test_input(tg_shape2(B, H), 2, -1.5, 1.5);
        if (which == 2) f.c = test_input(tg_shape2(B, H), 3, -1, 1);
        tg_tensor *wrt[] = {f.a, f.b, f.c};
        ASSERT_GRADCHECK(run_fused, &f, wrt, which == 2 ? 3 : 2);
        tg_tensor_free(f.a);
        tg_tensor_free(f.b);
        tg_tensor_free(f.c);
    }
}

// Their activations go over the gates: a leaf whose gradient is wanted is refused, naming the op.
Test(rnn_fused, lstm_ops_refuse_to_overwrite_a_leaf) {
    test_capture_errors();
    tg_graph *g = tg_graph_new();
    tg_tensor *gates = test_input(tg_shape2(2, 8), 1, -1, 1), *c = test_input(tg_shape2(2, 2), 2, -1, 1);
    cr_assert_null(tg_lstm_cell_state_(g, gates, c));
    cr_assert(strstr(test_error_message, "lstm_cell_state_") && strstr(test_error_message, "[2, 8]"), "%s",
              test_error_message);
    cr_assert_null(tg_lstm_cell_output_(g, gates, c));
    cr_assert(strstr(test_error_message, "lstm_cell_output_"), "%s", test_error_message);
    tg_graph_free(g);
    tg_tensor_free(gates);
    tg_tensor_free(c);
}

// Runs rnn_all_outputs and backward with a fixed seed; returns the output values and all
// gradients (parameters, input, initial states), concatenated, in a malloc'd array.
static double *outputs_and_gradients(rnn_case *c, int64_t *count) {
    tg_graph *g = tg_graph_new();
    tg_params_zero_grad(c->p);
    tg_tensor_zero_grad(c->x);
    for (int i = 0; i < 2; i++)
        if (c->init[i]) tg_tensor_zero_grad(c->init[i]);
    tg_tensor *y = rnn_all_outputs(g, c);
    double *seed = malloc((size_t)y->numel * sizeof *seed);
    for (int64_t i = 0; i < y->numel; i++) seed[i] = sin(0.7 * (double)i + 0.3);
    cr_assert(tg_backward_seed(g, y, seed));
    tg_tensor *grads[64];
    int n = 0;
    for (int i = 0; i < tg_params_count(c->p); i++) grads[n++] = tg_params_at(c->p, i);
    grads[n++] = c->x;
    for (int i = 0; i < 2; i++)
        if (c->init[i]) grads[n++] = c->init[i];
    int64_t total = y->numel;
    for (int i = 0; i < n; i++) total += grads[i]->numel;
    double *all = malloc((size_t)total * sizeof *all);
    int64_t at = 0;
    for (int64_t i = 0; i < y->numel; i++) all[at++] = tg_tensor_get(y, i);
    for (int i = 0; i < n; i++)
        for (int64_t k = 0; k < grads[i]->numel; k++) all[at++] = ((double *)grads[i]->grad)[k];
    *count = total;
    free(seed);
    tg_graph_free(g);
    return all;
}

// Runs two cases of the same batch size B over sequences of lengths len[B] and asserts that
// their outputs and gradients agree within atol + rtol*|b's|; frees both cases.
static void assert_cases_agree(rnn_case *a, rnn_case *b, const int32_t *len, int64_t B, double atol, double rtol) {
    a->lengths = tg_tensor_create(TG_I32, tg_shape1(B), false);
    b->lengths = tg_tensor_create(TG_I32, tg_shape1(B), false);
    tg_tensor_copy_from(a->lengths, len);
    tg_tensor_copy_from(b->lengths, len);
    int64_t na, nb;
    double *va = outputs_and_gradients(a, &na), *vb = outputs_and_gradients(b, &nb);
    cr_assert_eq(na, nb);
    for (int64_t i = 0; i < na; i++) ASSERT_CLOSE(va[i], vb[i], atol, rtol);
    free(va);
    free(vb);
    free_case(a);
    free_case(b);
}

Test(rnn_fused, fused_cells_agree_with_the_composite_steps) {
    const tg_cell_type *fused[] = {&tg_cell_lstm, &tg_cell_gru}, *composite[] = {&tg_cell_lstm_composite, &tg_cell_gru_composite};
    for (int k = 0; k < 2; k++) {
        rnn_case a = make_case(fused[k], 2, true, 5, 3, true), b = make_case(composite[k], 2, true, 5, 3, true);
        int32_t len[] = {5, 2, 4};
        assert_cases_agree(&a, &b, len, 3, 1e-13, 1e-11);
    }
}

// A layer projects its input one chunk of steps at a time (about 1024 rows per product). The
// same cells with the projection inside each step (no project_input, so no chunks) must give
// the same outputs and gradients over 1200 rows (chunks of 341 steps), forwards, backwards
// and with sequences of different lengths.
static const tg_cell_type *stepwise_base;
static bool stepwise_step(tg_graph *g, const tg_cell *c, tg_tensor *x, tg_tensor *const *state, tg_tensor **next) {
    tg_tensor *xp = tg_linear(g, x, tg_cell_param(c, "weight_ih"), tg_cell_param(c, "bias_ih")); // x W_ih^T + b_ih
    return stepwise_base->step(g, c, xp, state, next);
}

Test(rnn, chunked_input_projection_matches_projection_per_step) {
    const tg_cell_type *cells[] = {&tg_cell_lstm, &tg_cell_gru};
    for (int k = 0; k < 2; k++) {
        stepwise_base = cells[k];
        tg_cell_type stepwise = *cells[k];
        stepwise.project_input = NULL;
        stepwise.step = stepwise_step;
        rnn_case a = make_case(cells[k], 1, true, 400, 3, false), b = make_case(&stepwise, 1, true, 400, 3, false);
        int32_t len[] = {400, 350, 17};
        assert_cases_agree(&a, &b, len, 3, 1e-12, 1e-10);
    }
}
