// The backward walk: fan-out, accumulation, detach, no-grad, skipping, seeds, gradcheck
// itself and the DOT export.
#include <math.h>
#include <stdio.h>

#include "tg_test.h"

static double grad_at(const tg_tensor *t, int i) { return ((const double *)t->grad)[i]; }

// y = [1 1 1] (x*x + x) as a [1, 1] product, so backward can start from it.
static tg_tensor *sum3(tg_graph *g, tg_tensor *v) {
    return tg_matmul(g, tg_ones(g, TG_F64, tg_shape2(1, 3)), tg_reshape(g, v, tg_shape2(3, 1)));
}

Test(autodiff, fan_out_accumulates) {
    tg_tensor *x = tg_tensor_create(TG_F64, tg_shape1(3), true);
    for (int i = 0; i < 3; i++) tg_tensor_set(x, i, i - 1.5);
    tg_graph *g = tg_graph_new();
    tg_tensor *y = sum3(g, tg_add(g, tg_mul(g, x, x), x)); // x used three times
    cr_assert(tg_backward(g, y));
    for (int i = 0; i < 3; i++) cr_assert_eq(grad_at(x, i), 2 * (i - 1.5) + 1);
    tg_graph_free(g);
    tg_tensor_free(x);
}

Test(autodiff, backward_twice_fails_naming_the_first_and_changes_nothing) {
    test_capture_errors();
    tg_tensor *x = tg_tensor_create(TG_F64, tg_shape1(3), true);
    for (int i = 0; i < 3; i++) tg_tensor_set(x, i, 0.5 * i);
    tg_graph *g = tg_graph_new();
    tg_tensor *y = sum3(g, tg_tanh(g, tg_mul(g, x, x)));
    int first_line = __LINE__ + 1;
    cr_assert(tg_backward(g, y));
    double first[3];
    for (int i = 0; i < 3; i++) first[i] = grad_at(x, i);
    cr_assert(!tg_backward(g, y));
    char site[128];
    snprintf(site, sizeof site, "backward called at %s:%d", __FILE__, first_line);
    cr_assert(strstr(test_error_message, site), "%s", test_error_message);
    cr_assert(strstr(test_error_message, "retain_graph"), "%s", test_error_message);
    for (int i = 0; i < 3; i++) cr_assert_eq(grad_at(x, i), first[i], "element %d", i);
    cr_assert(!tg_backward_seed(g, y, (double[]){1.0}), "the seeded walk is refused too");
    tg_graph_reset(g); // a new recording can be walked again
    y = sum3(g, tg_tanh(g, tg_mul(g, x, x)));
    cr_assert(tg_backward(g, y));
    for (int i = 0; i < 3; i++) cr_assert_eq(grad_at(x, i), 2 * first[i], "element %d", i);
    tg_graph_free(g);
    tg_tensor_free(x);
}

// As in PyTorch, what is refused is a walk through spent nodes, not a second walk on a graph.
Test(autodiff, backward_through_new_nodes_of_a_walked_graph_is_allowed) {
    test_capture_errors();
    tg_tensor *x = tg_tensor_create(TG_F64, tg_shape1(3), true);
    tg_graph *g = tg_graph_new();
    tg_tensor *y1 = sum3(g, tg_mul_scalar(g, x, 2));
    cr_assert(tg_backward(g, y1));
    tg_tensor *y2 = sum3(g, tg_mul_scalar(g, x, 3));
    int second_line = __LINE__ + 1;
    cr_assert(tg_backward(g, y2));
    for (int i = 0; i < 3; i++) cr_assert_eq(grad_at(x, i), 5);
    cr_assert(!tg_backward(g, tg_add(g, y1, y2)), "y1 and y2's nodes are spent");
    char site[128];
    snprintf(site, sizeof site, "backward called at %s:%d", __FILE__, second_line);
    cr_assert(strstr(test_error_message, site), "%s", test_error_message);
    cr_assert(strstr(test_error_message, "through matmul"), "%s", test_error_message);
    for (int i = 0; i < 3; i++) cr_assert_eq(grad_at(x, i), 5, "a refused walk adds nothing");
    tg_graph_free(g);
    tg_tensor_free(x);
}

Test(autodiff, retain_graph_lets_backward_accumulate_again_like_pytorch) {
    tg_tensor *x = tg_tensor_create(TG_F64, tg_shape1(3), true);
    for (int i = 0; i < 3; i++) tg_tensor_set(x, i, 0.5 * i);
    tg_graph *g = tg_graph_new();
    tg_tensor *y = sum3(g, tg_tanh(g, tg_mul(g, x, x)));
    cr_assert(tg_backward_with(g, y, &(tg_backward_opts){.retain_graph = true}));
    double first[3];
    for (int i = 0; i < 3; i++) first[i] = grad_at(x, i);
    cr_assert(tg_backward(g, y)); // kept by the first: allowed, and spends the tape
    for (int i = 0; i < 3; i++) cr_assert_eq(grad_at(x, i), 2 * first[i], "element %d", i);
    test_capture_errors();
    cr_assert(!tg_backward_with(g, y, NULL));
    cr_assert(strstr(test_error_message, "already walked"), "%s", test_error_message);
    tg_graph_free(g);
    tg_tensor_free(x);
}

Test(autodiff, detach_stops_the_gradient_and_keeps_the_value) {
    tg_tensor *x = tg_tensor_create(TG_F64, tg_shape1(3), true);
    for (int i = 0; i < 3; i++) tg_tensor_set(x, i, i + 1.0);
    tg_graph *g = tg_graph_new();
    tg_tensor *d = tg_detach(g, x);
    cr_assert_eq(d->data, x->data);
    cr_assert(!d->requires_grad);
    tg_tensor *y = sum3(g, tg_mul(g, x, d)); // d/dx (x * const) = const
    cr_assert(tg_backward(g, y));
    for (int i = 0; i < 3; i++) cr_assert_eq(grad_at(x, i), i + 1.0);
    tg_graph_free(g);
    tg_tensor_free(x);
}

Test(autodiff, no_grad_mode_records_nothing) {
    test_capture_errors();
    tg_tensor *x = tg_tensor_create(TG_F64, tg_shape1(3), true);
    tg_graph *g = tg_graph_new();
    tg_graph_set_grad_enabled(g, false);
    tg_tensor *y = sum3(g, tg_tanh(g, x));
    cr_assert_eq(tg_graph_node_count(g), 0);
    cr_assert(!y->requires_grad);
    cr_assert(!tg_backward(g, y));
    cr_assert(strstr(test_error_message, "does not require a gradient"), "%s", test_error_message);
    tg_graph_set_grad_enabled(g, true);
    cr_assert_not_null(tg_tanh(g, x)->node);
    tg_graph_free(g);
    tg_tensor_free(x);
}

Test(autodiff, constants_record_no_nodes) {
    tg_tensor *w = tg_tensor_create(TG_F64, tg_shape1(3), true);
    tg_graph *g = tg_graph_new();
    tg_tensor *c = tg_ones(g, TG_F64, tg_shape1(3));
    tg_tensor *k = tg_exp(g, tg_mul(g, c, c)); // needs no gradient: not on the tape
    cr_assert_eq(tg_graph_node_count(g), 0);
    cr_assert(!k->requires_grad);
    tg_tensor *y = sum3(g, tg_mul(g, k, w));
    cr_assert(tg_backward(g, y));
    for (int i = 0; i < 3; i++) ASSERT_CLOSE(grad_at(w, i), exp(1.0), 1e-15, 0);
    cr_assert_eq(k->grad, NULL, "no gradient is computed for a constant");
    tg_graph_free(g);
    tg_tensor_free(w);
}

Test(autodiff, unreached_branches_are_skipped) {
    tg_tensor *x = tg_tensor_create(TG_F64, tg_shape1(3), true);
    tg_graph *g = tg_graph_new();
    tg_tensor *unused = tg_tanh(g, x); // on the tape, but the loss does not depend on it
    tg_tensor *y = sum3(g, tg_mul_scalar(g, x, 2));
    cr_assert(tg_backward(g, y));
    cr_assert_eq(unused->grad, NULL);
    for (int i = 0; i < 3; i++) cr_assert_eq(grad_at(x, i), 2);
    tg_graph_free(g);
    tg_tensor_free(x);
}

Test(autodiff, seed_gradient_for_non_scalar_outputs) {
    test_capture_errors();
    tg_tensor *x = tg_tensor_create(TG_F32, tg_shape2(2, 2), true);
    tg_graph *g = tg_graph_new();
    tg_tensor *y = tg_mul_scalar(g, x, 3);
    cr_assert(!tg_backward(g, y));
    cr_assert(strstr(test_error_message, "[2, 2]"), "%s", test_error_message);
    float seed[] = {1, 2, 3, 4};
    cr_assert(tg_backward_seed(g, y, seed));
    for (int i = 0; i < 4; i++) cr_assert_eq(((float *)x->grad)[i], 3 * seed[i]);
    tg_graph_free(g);
    tg_tensor_free(x);
}

// --- tg_backward_opts.leaf_ready ---

#define MAX_TOLD 32

// What leaf_ready was told: each leaf, in order, with a copy of its gradient at that moment.
typedef struct {
    tg_tensor *leaf[MAX_TOLD];
    double *grad_then[MAX_TOLD]; // [leaf's numel] each, malloc'd
    int n;
} told_leaves;

static void record_ready(tg_tensor *leaf, void *user) {
    told_leaves *t = user;
    cr_assert(t->n < MAX_TOLD);
    size_t bytes = (size_t)leaf->numel * sizeof(double);
    t->leaf[t->n] = leaf;
    t->grad_then[t->n] = memcpy(malloc(bytes), leaf->grad, bytes);
    t->n++;
}

static int told_index(const told_leaves *t, const tg_tensor *leaf) {
    for (int i = 0; i < t->n; i++)
        if (t->leaf[i] == leaf) return i;
    return -1;
}

static void told_free(told_leaves *t) {
    for (int i = 0; i < t->n; i++) free(t->grad_then[i]);
}

// A 2-layer LSTM tagger over 6 steps at batch 2, so that every weight is read at every step
// and its gradient products are staged (ops/weight_grad.c): each parameter is told exactly
// once, with the gradient it ends the walk with, equal to a plain walk's; the head, read
// last in forward, is told before the recurrent weights and the embedding, read from the
// first step on; a parameter the loss does not use is not told.
Test(autodiff, leaf_ready_once_per_leaf_with_its_final_gradient) {
    enum { T = 6, B = 2, V = 7, E = 3, H = 4 };
    tg_rng rng;
    tg_rng_seed(&rng, 5);
    tg_params *p = tg_params_new();
    tg_tensor *emb = tg_params_add(p, "emb", TG_F64, tg_shape2(V, E));
    tg_tensor_fill_normal(emb, &rng, 0, 1);
    tg_rnn rnn;
    tg_rnn_config cfg = {.cell = &tg_cell_lstm, .input_size = E, .hidden_size = H, .num_layers = 2, .dtype = TG_F64};
    cr_assert(tg_rnn_init(&rnn, &cfg, p, "rnn.", &rng));
    tg_tensor *head = tg_params_add(p, "head", TG_F64, tg_shape2(V, H));
    tg_tensor *unused = tg_params_add(p, "unused", TG_F64, tg_shape1(3));
    tg_tensor_fill_uniform(head, &rng, -0.5, 0.5);
    int32_t ids[T * B], targets[T * B]; // [T, B]
    for (int i = 0; i < T * B; i++) ids[i] = (int32_t)tg_rng_below(&rng, V), targets[i] = (int32_t)tg_rng_below(&rng, V);
    double *plain[MAX_TOLD];
    told_leaves told = {0};
    const int n = tg_params_count(p);
    cr_assert(n <= MAX_TOLD);
    for (int run = 0; run < 2; run++) { // 0: a plain walk; 1: with leaf_ready
        tg_params_zero_grad(p);
        tg_graph *g = tg_graph_new();
        tg_tensor *x = tg_embedding(g, emb, tg_from_data(g, TG_I32, tg_shape2(T, B), ids)); // [T, B, E]
        tg_rnn_result r;
        cr_assert(tg_rnn_forward(g, &rnn, x, NULL, NULL, NULL, &r));
        tg_tensor *logits = tg_linear(g, tg_reshape(g, r.output, tg_shape2(T * B, H)), head, NULL); // [T*B, V]
        tg_tensor *loss = tg_cross_entropy(g, logits, tg_from_data(g, TG_I32, tg_shape1(T * B), targets),
                                           TG_REDUCE_MEAN, -100);
        tg_backward_opts opts = {.leaf_ready = run ? record_ready : NULL, .leaf_ready_user = &told};
        cr_assert(tg_backward_with(g, loss, &opts));
        tg_graph_free(g);
        for (int i = 0; i < n && run == 0; i++) {
            const tg_tensor *t = tg_params_at(p, i);
            plain[i] = memcpy(malloc((size_t)t->numel * sizeof(double)), t->grad, (size_t)t->numel * sizeof(double));
        }
    }
    cr_assert_eq(told.n, n - 1, "told %d leaves; %d parameters are used", told.n, n - 1);
    cr_assert_eq(told_index(&told, unused), -1);
    for (int i = 0; i < n; i++) {
        tg_tensor *t = tg_params_at(p, i);
        int k = told_index(&told, t);
        if (t == unused) {
            free(plain[i]);
            continue;
        }
        cr_assert(k >= 0, "%s was not told", t->name);
        for (int j = k + 1; j < told.n; j++) cr_assert_neq(told.leaf[j], t, "%s told twice", t->name);
        cr_assert(memcmp(told.grad_then[k], t->grad, (size_t)t->numel * sizeof(double)) == 0,
                  "%s's gradient changed after it was told", t->name);
        cr_assert(memcmp(plain[i], t->grad, (size_t)t->numel * sizeof(double)) == 0, "%s differs from a plain walk",
                  t->name);
        free(plain[i]);
    }
    cr_assert_eq(told_index(&told, head), 0, "the head, read last, is told first");
    cr_assert_eq(told_index(&told, emb), n - 2, "the embedding, read first, is told last");
    told_free(&told);
    tg_params_free(p);
}

// A leaf read twice by one node, and through a view of it, is told once, after the view's
// readers; a leaf that only an unreached branch reads is not told; a leaf that is the
// output itself is told.
Test(autodiff, leaf_ready_views_repeats_and_unreached_leaves) {
    tg_tensor *x = tg_tensor_create(TG_F64, tg_shape1(3), true), *lone = tg_tensor_create(TG_F64, tg_shape1(3), true);
    for (int i = 0; i < 3; i++) tg_tensor_set(x, i, i - 1.5);
    tg_graph *g = tg_graph_new();
    tg_tensor *unreached = tg_tanh(g, lone);
    tg_tensor *y = tg_add(g, sum3(g, x), sum3(g, tg_mul(g, x, x))); // x through a reshape view, and twice in mul
    told_leaves told = {0};
    cr_assert(tg_backward_with(g, y, &(tg_backward_opts){.leaf_ready = record_ready, .leaf_ready_user = &told}));
    cr_assert_eq(told.n, 1);
    cr_assert_eq(told.leaf[0], x);
    for (int i = 0; i < 3; i++) cr_assert_eq(told.grad_then[0][i], 2 * (i - 1.5) + 1);
    cr_assert_null(unreached->grad);
    told_free(&told);
    told.n = 0;
    double seed[3] = {1, 2, 3};
    cr_assert(tg_backward_with(g, x, &(tg_backward_opts){.seed = seed, .leaf_ready = record_ready,
                                                         .leaf_ready_user = &told}));
    cr_assert_eq(told.n, 1);
    cr_assert_eq(told.leaf[0], x);
    told_free(&told);
    tg_graph_free(g);
    tg_tensor_free(x);
    tg_tensor_free(lone);
}

typedef struct {
    tg_tensor *x;
    bool wrong;
} square_case;

// x*x; the wrong version hides one factor from the tape, so its gradient is half the truth.
static tg_tensor *square(tg_graph *g, void *ctx) {
    square_case *c = ctx;
    return tg_mul(g, c->x, c->wrong ? tg_detach(g, c->x) : c->x);
}

Test(gradcheck, passes_a_right_gradient_and_reports_a_wrong_one) {
    square_case c = {test_input(tg_shape2(2, 3), 1, 0.5, 2), false};
    char report[512];
    cr_assert(tg_gradcheck(square, &c, &c.x, 1, NULL, report, sizeof report), "%s", report);
    c.wrong = true;
    cr_assert(!tg_gradcheck(square, &c, &c.x, 1, NULL, report, sizeof report));
    cr_assert(strstr(report, "input 0") && strstr(report, "element [0, 0]") && strstr(report, "analytic") &&
                  strstr(report, "6 of 6 elements failed"),
              "%s", report);
    // The inputs are restored after the perturbations.
    tg_tensor *fresh = test_input(tg_shape2(2, 3), 1, 0.5, 2);
    for (int i = 0; i < 6; i++) cr_assert_eq(tg_tensor_get(c.x, i), tg_tensor_get(fresh, i));
    tg_tensor_free(fresh);
    tg_tensor_free(c.x);
}

Test(gradcheck, rejects_float32_inputs) {
    tg_tensor *x = tg_tensor_create(TG_F32, tg_shape1(2), true);
    square_case c = {x, false};
    char report[256];
    cr_assert(!tg_gradcheck(square, &c, &c.x, 1, NULL, report, sizeof report));
    cr_assert(strstr(report, "float64"), "%s", report);
    tg_tensor_free(x);
}

Test(dot, export_names_ops_and_parameters) {
    tg_params *p = tg_params_new();
    tg_tensor *w = tg_params_add(p, "weight_hh_l0", TG_F32, tg_shape2(4, 4));
    tg_graph *g = tg_graph_new();
    tg_tensor *h = tg_ones(g, TG_F32, tg_shape2(2, 4));
    tg_tanh(g, tg_linear(g, h, w, NULL));
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    tg_graph_write_dot(g, f);
    fclose(f);
    cr_assert(strstr(buf, "digraph"), "%s", buf);
    cr_assert(strstr(buf, "linear") && strstr(buf, "tanh"), "%s", buf);
    cr_assert(strstr(buf, "weight_hh_l0") && strstr(buf, "filled"), "%s", buf);
    cr_assert(strstr(buf, "[2, 4]"), "%s", buf);
    free(buf);
    tg_graph_free(g);
    tg_params_free(p);
}
