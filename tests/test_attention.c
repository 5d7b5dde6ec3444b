// Attention: gradchecks of every score on a masked batch, exact zeros at masked positions,
// each score against a direct computation, memory selection, parameter names, errors, and
// the SVG heatmap.
#include <math.h>
#include <stdio.h>

#include "tg_attention.h"
#include "tg_test.h"

enum { B = 3, S = 4, Q = 5, K = 5, A = 6 };
static const int32_t LENGTHS[B] = {4, 2, 1}; // two of the three sources are padded

static const tg_attention_type *const TYPES[] = {&tg_attention_bahdanau, &tg_attention_luong_dot,
                                                  &tg_attention_luong_general, &tg_attention_luong_concat};

typedef struct {
    tg_params *p;
    tg_attention attn;
    tg_tensor *query, *keys, *mask; // [B, Q], [S, B, K], i32 [B, S]
} attn_case;

static attn_case make_case(const tg_attention_type *type, int key_size, tg_dtype dtype) {
    attn_case c = {0};
    c.p = tg_params_new();
    tg_rng rng;
    tg_rng_seed(&rng, 21);
    tg_attention_config cfg = {type, Q, key_size, A, dtype};
    cr_assert(tg_attention_init(&c.attn, &cfg, c.p, "att.", &rng), "%s", type->name);
    c.query = test_input(tg_shape2(B, Q), 3, -1, 1);
    c.keys = test_input(tg_shape3(S, B, key_size), 4, -1, 1);
    c.mask = tg_tensor_create(TG_I32, tg_shape2(B, S), false);
    for (int b = 0; b < B; b++)
        for (int s = 0; s < S; s++) tg_tensor_set(c.mask, b * S + s, s >= LENGTHS[b]);
    return c;
}

static void free_case(attn_case *c) {
    tg_params_free(c->p);
    tg_tensor_free(c->query);
    tg_tensor_free(c->keys);
    tg_tensor_free(c->mask);
}

// Runs the attention of c: context [B, K] and weights [B, S].
static bool attend(tg_graph *g, attn_case *c, tg_tensor **context, tg_tensor **weights) {
    tg_attention_memory mem;
    return tg_attention_prepare(g, &c->attn, c->keys, c->mask, &mem) &&
           tg_attention_forward(g, &mem, c->query, context, weights);
}

// Context and weights, flattened into one vector.
static tg_tensor *attn_outputs(tg_graph *g, void *ctx) {
    tg_tensor *context, *weights;
    if (!attend(g, ctx, &context, &weights)) return NULL;
    tg_tensor *parts[2] = {tg_reshape(g, context, tg_shape1(-1)), tg_reshape(g, weights, tg_shape1(-1))};
    return tg_concat(g, 2, parts, 0);
}

Test(attention, gradcheck_every_score_on_a_masked_batch) {
    for (int t = 0; t < 4; t++) {
        attn_case c = make_case(TYPES[t], K, TG_F64);
        tg_tensor *wrt[TG_ATTENTION_MAX_PARAMS + 2] = {c.query, c.keys};
        int n = 2;
        for (int i = 0; i < tg_params_count(c.p); i++) wrt[n++] = tg_params_at(c.p, i);
        ASSERT_GRADCHECK(attn_outputs, &c, wrt, n);
        free_case(&c);
    }
}

Test(attention, gradcheck_keys_of_another_size) {
    // Q != K for the scores that allow it: the key and query halves of W stay apart.
    for (int t = 0; t < 4; t++) {
        if (TYPES[t] == &tg_attention_luong_dot) continue;
        attn_case c = make_case(TYPES[t], 3, TG_F64);
        tg_tensor *wrt[TG_ATTENTION_MAX_PARAMS + 2] = {c.query, c.keys};
        int n = 2;
        for (int i = 0; i < tg_params_count(c.p); i++) wrt[n++] = tg_params_at(c.p, i);
        ASSERT_GRADCHECK(attn_outputs, &c, wrt, n);
        free_case(&c);
    }
}

Test(attention, masked_positions_get_exactly_zero_and_rows_sum_to_one) {
    for (int dt = 0; dt < 2; dt++)
        for (int t = 0; t < 4; t++) {
            attn_case c = make_case(TYPES[t], K, dt ? TG_F64 : TG_F32);
            if (dt == 0) { // float32 inputs for a float32 module
                tg_tensor *q = tg_tensor_create(TG_F32, c.query->shape, false);
                tg_tensor *k = tg_tensor_create(TG_F32, c.keys->shape, false);
                for (int64_t i = 0; i < q->numel; i++) tg_tensor_set(q, i, tg_tensor_get(c.query, i) * 8); // peaked
                for (int64_t i = 0; i < k->numel; i++) tg_tensor_set(k, i, tg_tensor_get(c.keys, i));
                tg_tensor_free(c.query);
                tg_tensor_free(c.keys);
                c.query = q, c.keys = k;
            }
            tg_graph *g = tg_graph_new();
            tg_tensor *context, *weights;
            cr_assert(attend(g, &c, &context, &weights));
            cr_assert(tg_shape_equal(weights->shape, tg_shape2(B, S)));
            cr_assert(tg_shape_equal(context->shape, tg_shape2(B, K)));
            for (int b = 0; b < B; b++) {
                double sum = 0;
                for (int s = 0; s < S; s++) {
                    double w = tg_tensor_get(weights, b * S + s);
                    if (s >= LENGTHS[b]) cr_assert_eq(w, 0.0, "%s: padded position %d of source %d has weight %g",
                                                      TYPES[t]->name, s, b, w);
                    else cr_assert_gt(w, 0.0);
                    sum += w;
                }
                ASSERT_CLOSE(sum, 1.0, dt ? 1e-14 : 1e-6, 0);
            }
            tg_graph_free(g);
            free_case(&c);
        }
}

// --- A direct computation of each score, to compare the module with ---

static double param(const attn_case *c, const char *name, int64_t i) {
    char full[64];
    snprintf(full, sizeof full, "att.%s", name);
    tg_tensor *t = tg_params_find(c->p, full);
    cr_assert(t, "no parameter %s", full);
    return tg_tensor_get(t, i);
}

// The score of query b against key s of batch entry b, written out with loops.
static double direct_score(const attn_case *c, int b, int s) {
    double q[Q], k[K], score = 0;
    for (int i = 0; i < Q; i++) q[i] = tg_tensor_get(c->query, b * Q + i);
    for (int j = 0; j < K; j++) k[j] = tg_tensor_get(c->keys, ((int64_t)s * B + b) * K + j);
    const tg_attention_type *type = c->attn.cfg.type;
    if (type == &tg_attention_luong_dot) {
        for (int i = 0; i < Q; i++) score += q[i] * k[i];
    } else if (type == &tg_attention_luong_general) { // q^T W k, W [Q, K]
        for (int i = 0; i < Q; i++)
            for (int j = 0; j < K; j++) score += q[i] * param(c, "W.weight", i * K + j) * k[j];
    } else {
        bool concat = type == &tg_attention_luong_concat;
        for (int a = 0; a < A; a++) {
            double e = param(c, concat ? "W.bias" : "U.bias", a);
            for (int i = 0; i < Q; i++) // W [A, Q], or the query columns of concat's W [A, Q + K]
                e += param(c, "W.weight", concat ? a * (Q + K) + i : a * Q + i) * q[i];
            for (int j = 0; j < K; j++) // U [A, K], or the key columns of concat's W
                e += param(c, concat ? "W.weight" : "U.weight", concat ? a * (Q + K) + Q + j : a * K + j) * k[j];
            score += param(c, "v.weight", a) * tanh(e);
        }
    }
    return score;
}

Test(attention, each_score_matches_a_direct_computation) {
    for (int t = 0; t < 4; t++) {
        attn_case c = make_case(TYPES[t], K, TG_F64);
        tg_graph *g = tg_graph_new();
        tg_tensor *context, *weights;
        cr_assert(attend(g, &c, &context, &weights));
        for (int b = 0; b < B; b++) {
            double e[S], max = -INFINITY, z = 0;
            for (int s = 0; s < LENGTHS[b]; s++) e[s] = direct_score(&c, b, s), max = fmax(max, e[s]);
            for (int s = 0; s < LENGTHS[b]; s++) z += exp(e[s] - max);
            for (int s = 0; s < S; s++) {
                double want = s < LENGTHS[b] ? exp(e[s] - max) / z : 0;
                ASSERT_CLOSE(tg_tensor_get(weights, b * S + s), want, 1e-14, 1e-12);
            }
            for (int j = 0; j < K; j++) {
                double want = 0;
                for (int s = 0; s < LENGTHS[b]; s++)
                    want += exp(e[s] - max) / z * tg_tensor_get(c.keys, ((int64_t)s * B + b) * K + j);
                ASSERT_CLOSE(tg_tensor_get(context, b * K + j), want, 1e-14, 1e-12);
            }
        }
        tg_graph_free(g);
        free_case(&c);
    }
}

Test(attention, length_mask_marks_positions_past_each_length) {
    tg_graph *g = tg_graph_new();
    tg_tensor *len = tg_from_data(g, TG_I32, tg_shape1(B), LENGTHS);
    tg_tensor *mask = tg_attention_length_mask(g, len, S);
    cr_assert(mask && tg_shape_equal(mask->shape, tg_shape2(B, S)));
    for (int b = 0; b < B; b++)
        for (int s = 0; s < S; s++) cr_assert_eq(((int32_t *)mask->data)[b * S + s], s >= LENGTHS[b]);
    tg_graph_free(g);
}

Test(attention, memory_select_reorders_and_repeats_rows) {
    for (int t = 0; t < 4; t++) {
        attn_case c = make_case(TYPES[t], K, TG_F64);
        tg_graph *g = tg_graph_new();
        tg_tensor *context, *weights;
        cr_assert(attend(g, &c, &context, &weights));
        int32_t rows[] = {2, 0, 2, 1};
        tg_attention_memory mem, picked;
        cr_assert(tg_attention_prepare(g, &c.attn, c.keys, c.mask, &mem));
        cr_assert(tg_attention_memory_select(g, &mem, tg_from_data(g, TG_I32, tg_shape1(4), rows), &picked));
        tg_tensor *q = tg_embedding(g, c.query, tg_from_data(g, TG_I32, tg_shape1(4), rows)); // [4, Q]
        tg_tensor *ctx2, *w2;
        cr_assert(tg_attention_forward(g, &picked, q, &ctx2, &w2));
        for (int i = 0; i < 4; i++) {
            for (int s = 0; s < S; s++)
                cr_assert_eq(tg_tensor_get(w2, i * S + s), tg_tensor_get(weights, rows[i] * S + s));
            for (int j = 0; j < K; j++)
                cr_assert_eq(tg_tensor_get(ctx2, i * K + j), tg_tensor_get(context, rows[i] * K + j));
        }
        tg_graph_free(g);
        free_case(&c);
    }
}

Test(attention, parameters_have_pytorch_module_names) {
    struct {
        const tg_attention_type *type;
        const char *names[4];
        tg_shape shapes[4];
    } want[] = {
        {&tg_attention_bahdanau, {"att.W.weight", "att.U.weight", "att.U.bias", "att.v.weight"},
         {tg_shape2(A, Q), tg_shape2(A, 3), tg_shape1(A), tg_shape2(1, A)}},
        {&tg_attention_luong_general, {"att.W.weight"}, {tg_shape2(Q, 3)}},
        {&tg_attention_luong_concat, {"att.W.weight", "att.W.bias", "att.v.weight"},
         {tg_shape2(A, Q + 3), tg_shape1(A), tg_shape2(1, A)}},
    };
    for (size_t t = 0; t < sizeof want / sizeof want[0]; t++) {
        attn_case c = make_case(want[t].type, 3, TG_F32);
        int n = 0;
        while (n < 4 && want[t].names[n]) n++;
        cr_assert_eq(tg_params_count(c.p), n, "%s", want[t].type->name);
        for (int i = 0; i < n; i++) {
            tg_tensor *p = tg_params_at(c.p, i);
            cr_assert_str_eq(p->name, want[t].names[i]);
            cr_assert(tg_shape_equal(p->shape, want[t].shapes[i]), "%s", p->name);
            cr_assert_eq(c.attn.param[i], p);
        }
        free_case(&c);
    }
    attn_case c = make_case(&tg_attention_luong_dot, K, TG_F32);
    cr_assert_eq(tg_params_count(c.p), 0);
    free_case(&c);
}

Test(attention, errors_name_the_problem) {
    test_capture_errors();
    tg_params *p = tg_params_new();
    tg_rng rng;
    tg_rng_seed(&rng, 1);
    tg_attention a;
    tg_attention_config dot = {&tg_attention_luong_dot, 4, 6, 0, TG_F64};
    cr_assert_not(tg_attention_init(&a, &dot, p, "", &rng));
    cr_assert(strstr(test_error_message, "query size 4 and key size 6"), "%s", test_error_message);

    attn_case c = make_case(&tg_attention_bahdanau, K, TG_F64);
    tg_graph *g = tg_graph_new();
    tg_attention_memory mem;
    tg_tensor *context, *weights;
    tg_tensor *all_masked = tg_ones(g, TG_I32, tg_shape2(B, S));
    cr_assert_not(tg_attention_prepare(g, &c.attn, c.keys, all_masked, &mem));
    cr_assert(strstr(test_error_message, "masks every position"), "%s", test_error_message);
    cr_assert_not(tg_attention_prepare(g, &c.attn, c.query, NULL, &mem)); // [B, Q] is not [S, B, K]
    cr_assert(strstr(test_error_message, "time-major keys [S, B, 5]"), "%s", test_error_message);
    cr_assert(tg_attention_prepare(g, &c.attn, c.keys, c.mask, &mem));
    int line = __LINE__ + 1;
    cr_assert_not(tg_attention_forward(g, &mem, tg_zeros(g, TG_F64, tg_shape2(2, Q)), &context, &weights));
    char where[64];
    snprintf(where, sizeof where, "test_attention.c:%d", line);
    cr_assert(strstr(test_error_message, "query [2, 5]") && strstr(test_error_message, where), "%s",
              test_error_message);
    tg_graph_free(g);
    free_case(&c);
    tg_params_free(p);
    tg_set_error_handler(NULL, NULL);
}

// --- The fused additive score against the ops it stands for ---

typedef struct {
    tg_tensor *keys, *query, *v; // [B, S, A], [B, A], [1, A]
    bool fused;
} additive_case;

static tg_tensor *additive_scores(tg_graph *g, void *ctx) {
    additive_case *c = ctx;
    if (c->fused) return tg_additive_scores(g, c->keys, c->query, c->v);
    int64_t b = c->keys->shape.d[0], s = c->keys->shape.d[1], a = c->keys->shape.d[2];
    tg_tensor *e = tg_tanh(g, tg_add(g, c->keys, tg_reshape(g, c->query, tg_shape3(b, 1, a)))); // [B, S, A]
    return tg_reshape(g, tg_linear(g, e, c->v, NULL), tg_shape2(b, s));
}

// A of 37 covers both the 16-lane sums and the tail of the forward loop.
Test(additive_scores, gradcheck_and_agreement_with_the_ops) {
    additive_case c = {test_input(tg_shape3(2, 3, 37), 1, -1.5, 1.5), test_input(tg_shape2(2, 37), 2, -1, 1),
                       test_input(tg_shape2(1, 37), 3, -1, 1), true};
    tg_tensor *wrt[] = {c.keys, c.query, c.v};
    ASSERT_GRADCHECK(additive_scores, &c, wrt, 3);
    double got[2][6 + 222 + 74 + 37]; // scores, then the gradients of keys, query and v
    for (int k = 0; k < 2; k++) {
        c.fused = k == 0;
        for (int i = 0; i < 3; i++) tg_tensor_zero_grad(wrt[i]);
        tg_graph *g = tg_graph_new();
        tg_tensor *y = additive_scores(g, &c);
        double seed[6] = {0.3, -1, 2, 0.5, -0.7, 1.1};
        cr_assert(tg_backward_seed(g, y, seed));
        int at = 0;
        for (int i = 0; i < 6; i++) got[k][at++] = tg_tensor_get(y, i);
        for (int i = 0; i < 3; i++)
            for (int64_t e = 0; e < wrt[i]->numel; e++) got[k][at++] = ((double *)wrt[i]->grad)[e];
        tg_graph_free(g);
    }
    for (size_t i = 0; i < sizeof got[0] / sizeof got[0][0]; i++) ASSERT_CLOSE(got[0][i], got[1][i], 1e-14, 1e-12);
    for (int i = 0; i < 3; i++) tg_tensor_free(wrt[i]);
}

Test(additive_scores, wrong_shapes_are_reported) {
    test_capture_errors();
    tg_graph *g = tg_graph_new();
    tg_tensor *keys = tg_zeros(g, TG_F32, tg_shape3(2, 3, 4));
    cr_assert_null(tg_additive_scores(g, keys, tg_zeros(g, TG_F32, tg_shape2(2, 5)), tg_zeros(g, TG_F32, tg_shape2(1, 4))));
    cr_assert(strstr(test_error_message, "tg_additive_scores") && strstr(test_error_message, "[2, 3, 4]") &&
                  strstr(test_error_message, "[2, 5]"),
              "%s", test_error_message);
    tg_graph_free(g);
}
