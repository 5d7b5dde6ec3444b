// The cell interface: parameters found by name, the checks tg_rnn makes on what a step
// returns (shape, dtype, in-place writes), states of different sizes, proj_size.
#include <math.h>
#include <string.h>

#include "tg_test.h"

// A test cell whose step returns what `mode` asks for: one state h = tanh(x W^T + h U^T).
enum { GOOD, ONE_ROW, WIDE, MISSING, FAILS, OVERWRITES };
static int mode;

static bool toy_init(tg_cell *c, tg_rng *rng) {
    // Eleven parameters, more than the old cap of 8, added in an order the step does not follow.
    char name[16];
    for (int i = 9; i >= 2; i--) {
        snprintf(name, sizeof name, "unused_%d", i);
        if (!tg_cell_add_param(c, name, tg_shape1(1), rng)) return false;
    }
    return tg_cell_add_param(c, "weight_hx", tg_shape2(c->input_size, c->hidden_size), rng) &&
           tg_cell_add_param(c, "weight_hh", tg_shape2(c->hidden_size, c->hidden_size), rng) &&
           tg_cell_add_param(c, "weight_ih", tg_shape2(c->hidden_size, c->input_size), rng);
}

static bool toy_step(tg_graph *g, const tg_cell *c, tg_tensor *x, tg_tensor *const *state, tg_tensor **next) {
    tg_tensor *h = state[0]; // [B, H]
    if (mode == FAILS) return false;
    if (mode == OVERWRITES) { // x + h U^T [B, I] written over x's data
        tg_tensor *xh = tg_linear_add_(g, x, h, tg_cell_param(c, "weight_hx"), NULL);
        next[0] = tg_tanh(g, tg_linear(g, xh, tg_cell_param(c, "weight_ih"), NULL));
        return next[0] != NULL;
    }
    tg_tensor *pre = tg_add(g, tg_linear(g, x, tg_cell_param(c, "weight_ih"), NULL),
                            tg_linear(g, h, tg_cell_param(c, "weight_hh"), NULL));
    if (mode == ONE_ROW) pre = tg_slice(g, pre, 0, 0, 1); // [1, H]
    if (mode == WIDE) {
        tg_tensor *two[2] = {pre, pre};
        pre = tg_concat(g, 2, two, 1); // [B, 2H]
    }
    next[0] = mode == MISSING ? NULL : tg_tanh(g, pre);
    return true;
}

static const tg_cell_type TOY = {.name = "TOY", .n_states = 1, .state_names = {"h"}, .init = toy_init, .step = toy_step};
// The same step declared to overwrite its input: the layer must then hand it a copy.
static const tg_cell_type TOY_INPLACE = {.name = "TOY_INPLACE", .n_states = 1, .init = toy_init, .step = toy_step,
                                         .step_overwrites_input = true};

typedef struct {
    tg_params *p;
    tg_rnn rnn;
    tg_graph *g;
    tg_tensor *x; // [T, B, I]
} toy;

static toy make_toy(const tg_cell_type *type, int T, int B) {
    toy t = {.p = tg_params_new(), .g = tg_graph_new()};
    tg_rng rng;
    tg_rng_seed(&rng, 3);
    tg_rnn_config cfg = {.cell = type, .input_size = 3, .hidden_size = 4, .num_layers = 1, .dtype = TG_F64};
    cr_assert(tg_rnn_init(&t.rnn, &cfg, t.p, "", &rng));
    t.x = tg_rand_uniform(t.g, TG_F64, tg_shape3(T, B, 3), &rng, -1, 1);
    return t;
}

static void free_toy(toy *t) {
    tg_graph_free(t->g);
    tg_params_free(t->p);
}

Test(cells, parameters_are_found_by_name_with_no_cap) {
    toy t = make_toy(&TOY, 5, 3);
    cr_assert_eq(tg_params_count(t.p), 11);
    const tg_cell *c = &t.rnn.cells[0][0];
    cr_assert_eq(tg_cell_param(c, "weight_ih"), tg_params_find(t.p, "weight_ih_l0"));
    cr_assert_eq(tg_cell_param(c, "unused_9"), tg_params_find(t.p, "unused_9_l0"));
    mode = GOOD;
    tg_rnn_result r;
    cr_assert(tg_rnn_forward(t.g, &t.rnn, t.x, NULL, NULL, NULL, &r));
    cr_assert(tg_shape_equal(r.output->shape, tg_shape3(5, 3, 4)));
    test_capture_errors();
    cr_assert_null(tg_cell_param(c, "weight_xx"));
    cr_assert(strstr(test_error_message, "TOY") && strstr(test_error_message, "\"weight_xx\""), "%s", test_error_message);
    free_toy(&t);
}

// The shape checks of issue #14: a step returning [1, H] or [B, 2H] (also with T = 1) used to
// give an output of the wrong shape and no error.
Test(cells, a_step_of_the_wrong_shape_names_cell_state_shapes_and_line) {
    test_capture_errors();
    int modes[] = {ONE_ROW, WIDE, WIDE, MISSING, FAILS};
    int steps[] = {5, 5, 1, 5, 5};
    const char *expect[] = {"state \"h\" of float64 [1, 4]; the cell declares float64 [3, 4]",
                            "state \"h\" of float64 [3, 8]; the cell declares float64 [3, 4]",
                            "state \"h\" of float64 [3, 8]; the cell declares float64 [3, 4]",
                            "made no state \"h\" (it must be [3, 4])", "the TOY cell's step failed"};
    for (int k = 0; k < 5; k++) {
        toy t = make_toy(&TOY, steps[k], 3);
        mode = modes[k];
        test_error_count = 0;
        tg_rnn_result r;
        int line = __LINE__ + 1;
        bool ok = tg_rnn_forward(t.g, &t.rnn, t.x, NULL, NULL, NULL, &r);
        char where[64];
        snprintf(where, sizeof where, "test_cells.c:%d)", line);
        cr_assert(!ok && test_error_count >= 1, "case %d", k);
        cr_assert(strstr(test_error_message, "tg_rnn: ") && strstr(test_error_message, "TOY") &&
                      strstr(test_error_message, expect[k]) && strstr(test_error_message, where),
                  "case %d: %s", k, test_error_message);
        free_toy(&t);
    }
}

Test(cells, a_step_may_overwrite_its_input_only_when_its_type_says_so) {
    test_capture_errors();
    mode = OVERWRITES;
    // No project_input: x_t would be a view of the caller's input, which must stay intact.
    toy t = make_toy(&TOY, 4, 2);
    tg_rnn_result r;
    cr_assert(!tg_rnn_forward(t.g, &t.rnn, t.x, NULL, NULL, NULL, &r));
    cr_assert(strstr(test_error_message, "the TOY cell's step wrote over its input"), "%s", test_error_message);
    free_toy(&t);

    test_error_count = 0;
    t = make_toy(&TOY_INPLACE, 4, 2);
    double before[24];
    memcpy(before, t.x->data, sizeof before);
    cr_assert(tg_rnn_forward(t.g, &t.rnn, t.x, NULL, NULL, NULL, &r), "%s", test_error_message);
    cr_assert_eq(test_error_count, 0);
    cr_assert(!memcmp(before, t.x->data, sizeof before), "the caller's input was overwritten");
    free_toy(&t);
}

// Two states of different sizes: h [B, 2] and a wider memory m [B, 5], m' = tanh(x V^T + m),
// h' = m' W^T.
static bool two_size_init(tg_cell *c, tg_rng *rng) {
    c->state_size[0] = 2;
    c->state_size[1] = 5;
    return tg_cell_add_param(c, "weight_xm", tg_shape2(5, c->input_size), rng) &&
           tg_cell_add_param(c, "weight_mh", tg_shape2(2, 5), rng);
}
static bool two_size_step(tg_graph *g, const tg_cell *c, tg_tensor *x, tg_tensor *const *state, tg_tensor **next) {
    next[1] = tg_tanh(g, tg_add(g, tg_linear(g, x, tg_cell_param(c, "weight_xm"), NULL), state[1])); // [B, 5]
    next[0] = tg_linear(g, next[1], tg_cell_param(c, "weight_mh"), NULL);                             // [B, 2]
    return next[0] && next[1];
}
static const tg_cell_type TWO_SIZES = {
    .name = "TWO_SIZES", .n_states = 2, .state_names = {"h", "m"}, .init = two_size_init, .step = two_size_step};

typedef struct {
    tg_rnn rnn;
    tg_tensor *x, *lengths, *init[2];
} net;

static tg_tensor *net_outputs(tg_graph *g, void *ctx) {
    net *n = ctx;
    tg_rnn_result r;
    if (!tg_rnn_forward(g, &n->rnn, n->x, n->lengths, n->init[0] ? n->init : NULL, NULL, &r)) return NULL;
    tg_tensor *parts[3] = {tg_reshape(g, r.output, tg_shape1(-1)), tg_reshape(g, r.state[0], tg_shape1(-1)),
                           tg_reshape(g, r.state[1], tg_shape1(-1))};
    return tg_concat(g, 3, parts, 0);
}

Test(cells, states_of_different_sizes_stack_and_gradcheck) {
    tg_params *p = tg_params_new();
    tg_rng rng;
    tg_rng_seed(&rng, 8);
    net n = {0};
    tg_rnn_config cfg = {.cell = &TWO_SIZES, .input_size = 3, .hidden_size = 9, .num_layers = 2, .bidirectional = true,
                         .dtype = TG_F64};
    cr_assert(tg_rnn_init(&n.rnn, &cfg, p, "", &rng));
    cr_assert_eq(n.rnn.cells[1][0].input_size, 4, "layer 1 reads D * state 0's size");
    n.x = test_input(tg_shape3(4, 3, 3), 1, -1, 1);
    n.init[0] = test_input(tg_shape3(4, 3, 2), 2, -0.5, 0.5);
    n.init[1] = test_input(tg_shape3(4, 3, 5), 3, -0.5, 0.5);
    int32_t len[] = {4, 1, 3};
    n.lengths = tg_tensor_create(TG_I32, tg_shape1(3), false);
    tg_tensor_copy_from(n.lengths, len);
    tg_graph *g = tg_graph_new();
    tg_rnn_result r;
    cr_assert(tg_rnn_forward(g, &n.rnn, n.x, n.lengths, n.init, NULL, &r));
    cr_assert(tg_shape_equal(r.output->shape, tg_shape3(4, 3, 4)));
    cr_assert(tg_shape_equal(r.state[0]->shape, tg_shape3(4, 3, 2)));
    cr_assert(tg_shape_equal(r.state[1]->shape, tg_shape3(4, 3, 5)));
    tg_graph_free(g);
    tg_tensor *wrt[16];
    int k = 0;
    for (int i = 0; i < tg_params_count(p); i++) wrt[k++] = tg_params_at(p, i);
    wrt[k++] = n.x;
    wrt[k++] = n.init[0];
    wrt[k++] = n.init[1];
    ASSERT_GRADCHECK(net_outputs, &n, wrt, k);
    // An initial state of the hidden size where the cell declares 5 is refused.
    test_capture_errors();
    tg_tensor *wrong = test_input(tg_shape3(4, 3, 9), 4, -0.5, 0.5);
    g = tg_graph_new();
    tg_tensor *bad_init[2] = {n.init[0], wrong};
    cr_assert(!tg_rnn_forward(g, &n.rnn, n.x, NULL, bad_init, NULL, &r));
    cr_assert(strstr(test_error_message, "initial state 1 has shape [4, 3, 9]; it must be [4, 3, 5]"), "%s",
              test_error_message);
    tg_graph_free(g);
    tg_tensor_free(wrong);
    tg_tensor_free(n.x);
    tg_tensor_free(n.lengths);
    tg_tensor_free(n.init[0]);
    tg_tensor_free(n.init[1]);
    tg_params_free(p);
}

Test(cells, lstm_proj_size_shapes_names_and_refusals) {
    tg_params *p = tg_params_new();
    tg_rng rng;
    tg_rng_seed(&rng, 9);
    tg_rnn rnn;
    tg_rnn_config cfg = {.cell = &tg_cell_lstm, .input_size = 3, .hidden_size = 5, .num_layers = 2,
                         .bidirectional = true, .proj_size = 2};
    cr_assert(tg_rnn_init(&rnn, &cfg, p, "", &rng));
    // PyTorch's names and shapes: weight_hh_l1 [4H, P], weight_ih_l1 [4H, D*P], weight_hr_l1 [P, H].
    cr_assert(tg_shape_equal(tg_params_find(p, "weight_hh_l1")->shape, tg_shape2(20, 2)));
    cr_assert(tg_shape_equal(tg_params_find(p, "weight_ih_l1")->shape, tg_shape2(20, 4)));
    cr_assert(tg_shape_equal(tg_params_find(p, "weight_hr_l1_reverse")->shape, tg_shape2(2, 5)));
    cr_assert_eq(tg_params_count(p), 20);
    tg_params_free(p);
    test_capture_errors();
    const tg_cell_type *no_proj[] = {&tg_cell_gru, &tg_cell_rnn_tanh, &TOY};
    for (int k = 0; k < 3; k++) {
        p = tg_params_new();
        cfg.cell = no_proj[k];
        cr_assert(!tg_rnn_init(&rnn, &cfg, p, "", &rng));
        cr_assert(strstr(test_error_message, "does not take it") && strstr(test_error_message, no_proj[k]->name), "%s",
                  test_error_message);
        tg_params_free(p);
    }
    p = tg_params_new();
    cfg.cell = &tg_cell_lstm;
    cfg.proj_size = 5;
    cr_assert(!tg_rnn_init(&rnn, &cfg, p, "", &rng));
    cr_assert(strstr(test_error_message, "proj_size must be smaller"), "%s", test_error_message);
    tg_params_free(p);
}

Test(cells, indrnn_clamp_bounds_every_recurrent_weight_and_refuses_other_cells) {
    tg_params *p = tg_params_new();
    tg_rng rng;
    tg_rng_seed(&rng, 10);
    tg_rnn rnn;
    tg_rnn_config cfg = {.cell = &tg_cell_indrnn, .input_size = 3, .hidden_size = 6, .num_layers = 2,
                         .bidirectional = true, .dtype = TG_F64};
    cr_assert(tg_rnn_init(&rnn, &cfg, p, "", &rng));
    const char *names[] = {"weight_hh_l0", "weight_hh_l0_reverse", "weight_hh_l1", "weight_hh_l1_reverse"};
    for (int k = 0; k < 4; k++) { // some inside the bound, some outside on either side
        tg_tensor *u = tg_params_find(p, names[k]);
        double v[6] = {-3, -1.02, 0.5, 1.01, 2.5, -0.2};
        tg_tensor_copy_from(u, v);
    }
    tg_tensor *w = tg_params_find(p, "weight_ih_l0");
    double w0 = tg_tensor_get(w, 0);
    tg_tensor_set(w, 0, 7.0); // not a recurrent weight: left alone
    double bound = pow(2, 1.0 / 5); // 2^(1/T), T = 5: 1.1487
    cr_assert(tg_indrnn_clamp(&rnn, bound));
    double want[6] = {-bound, -1.02, 0.5, 1.01, bound, -0.2};
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < 6; i++)
            cr_assert_eq(tg_tensor_get(tg_params_find(p, names[k]), i), want[i], "%s[%d]", names[k], i);
    cr_assert_eq(tg_tensor_get(w, 0), 7.0);
    tg_tensor_set(w, 0, w0);
    tg_params_free(p);

    test_capture_errors();
    p = tg_params_new();
    cfg.cell = &tg_cell_gru;
    cr_assert(tg_rnn_init(&rnn, &cfg, p, "", &rng));
    cr_assert(!tg_indrnn_clamp(&rnn, 1.0));
    cr_assert(strstr(test_error_message, "tg_indrnn_clamp") && strstr(test_error_message, "GRU"), "%s", test_error_message);
    tg_params_free(p);
}
