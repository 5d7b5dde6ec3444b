// Gradient checks, values and errors for embedding, where, masked_fill and dropout.
#include <math.h>

#include "tg_test.h"

static double *f64(tg_tensor *t) { return t->data; }
static double *g64(tg_tensor *t) { return t->grad; }

// An i32 tensor on the heap (freed with tg_tensor_free) holding values[0..numel).
static tg_tensor *ids_tensor(tg_shape shape, const int32_t *values) {
    tg_tensor *t = tg_tensor_create(TG_I32, shape, false);
    tg_tensor_copy_from(t, values);
    return t;
}

// --- embedding ---

typedef struct {
    tg_tensor *weight, *ids;
} emb_case;

static tg_tensor *run_embedding(tg_graph *g, void *ctx) {
    emb_case *c = ctx;
    return tg_embedding(g, c->weight, c->ids);
}

Test(embedding, gradcheck_ids_of_every_rank_with_repeats) {
    static const int32_t v[8] = {2, 0, 2, 4, 1, 2, 0, 3}; // 2 three times, 0 twice
    tg_shape shapes[] = {tg_shape0(), tg_shape1(8), tg_shape2(2, 4), tg_shape3(2, 2, 2), tg_shape2(1, 1)};
    for (int i = 0; i < 5; i++) {
        emb_case c = {test_input(tg_shape2(5, 3), 70 + i, -1, 1), ids_tensor(shapes[i], v)};
        ASSERT_GRADCHECK(run_embedding, &c, &c.weight, 1);
        tg_tensor_free(c.weight);
        tg_tensor_free(c.ids);
    }
}

Test(embedding, values_are_rows_of_weight) {
    tg_graph *g = tg_graph_new();
    float w[] = {0, 1, 10, 11, 20, 21, 30, 31}; // [4, 2]: row r is (10 r, 10 r + 1)
    int32_t ids[] = {3, 0, 3, 1, 2, 2};
    tg_tensor *y = tg_embedding(g, tg_from_data(g, TG_F32, tg_shape2(4, 2), w), tg_from_data(g, TG_I32, tg_shape2(2, 3), ids));
    cr_assert(tg_shape_equal(y->shape, tg_shape3(2, 3, 2)));
    cr_assert_eq(y->dtype, TG_F32);
    for (int i = 0; i < 6; i++)
        for (int e = 0; e < 2; e++) cr_assert_eq(tg_tensor_get(y, i * 2 + e), 10 * ids[i] + e, "y[%d][%d]", i, e);
    tg_graph_free(g);
}

Test(embedding, repeated_ids_scatter_add_into_weight_grad) {
    tg_graph *g = tg_graph_new();
    tg_tensor *w = tg_tensor_create(TG_F64, tg_shape2(4, 2), true);
    int32_t idv[] = {1, 3, 1, 0};
    tg_tensor *ids = tg_from_data(g, TG_I32, tg_shape1(4), idv);
    // All-ones seed: row 1, used twice, gets twice the gradient of rows 0 and 3; row 2 none.
    double ones[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    cr_assert(tg_backward_seed(g, tg_embedding(g, w, ids), ones));
    double want_ones[] = {1, 1, 2, 2, 0, 0, 1, 1};
    for (int i = 0; i < 8; i++) cr_assert_eq(g64(w)[i], want_ones[i], "grad[%d]", i);
    // A distinct seed per element, on top of what is there: the row sums are exact.
    tg_graph_reset(g);
    ids = tg_from_data(g, TG_I32, tg_shape1(4), idv);
    double seed[8] = {1, 2, 3, 4, 5, 6, 7, 8}; // rows of gy: (1,2) (3,4) (5,6) (7,8)
    cr_assert(tg_backward_seed(g, tg_embedding(g, w, ids), seed));
    double want[] = {1 + 7, 1 + 8, 2 + 1 + 5, 2 + 2 + 6, 0, 0, 1 + 3, 1 + 4};
    for (int i = 0; i < 8; i++) cr_assert_eq(g64(w)[i], want[i], "grad[%d]", i);
    tg_tensor_free(w);
    tg_graph_free(g);
}

Test(embedding, id_out_of_range_names_id_position_and_size) {
    test_capture_errors();
    tg_graph *g = tg_graph_new();
    tg_tensor *w = tg_zeros(g, TG_F32, tg_shape2(5, 3));
    int32_t ids[] = {0, 4, 1, 2, 5, 3};
    tg_tensor *y = tg_embedding(g, w, tg_from_data(g, TG_I32, tg_shape2(2, 3), ids));
    cr_assert_null(y);
    cr_assert(strstr(test_error_message, "tg_embedding") && strstr(test_error_message, "id 5") &&
                  strstr(test_error_message, "position [1, 1]") && strstr(test_error_message, "[0, 5)") &&
                  strstr(test_error_message, "test_index_select.c:"),
              "%s", test_error_message);
    int32_t neg[] = {-1};
    cr_assert_null(tg_embedding(g, w, tg_from_data(g, TG_I32, tg_shape1(1), neg)));
    cr_assert(strstr(test_error_message, "id -1") && strstr(test_error_message, "position [0]"), "%s",
              test_error_message);
    cr_assert_eq(test_error_count, 2);
    tg_graph_free(g);
}

Test(embedding, wrong_dtypes_and_shapes_are_reported) {
    test_capture_errors();
    tg_graph *g = tg_graph_new();
    tg_tensor *w = tg_zeros(g, TG_F32, tg_shape2(5, 3));
    cr_assert_null(tg_embedding(g, w, tg_zeros(g, TG_F32, tg_shape1(2))));
    cr_assert(strstr(test_error_message, "ids must be int32, got float32"), "%s", test_error_message);
    cr_assert_null(tg_embedding(g, tg_zeros(g, TG_I32, tg_shape2(5, 3)), tg_zeros(g, TG_I32, tg_shape1(2))));
    cr_assert(strstr(test_error_message, "int32"), "%s", test_error_message);
    cr_assert_null(tg_embedding(g, tg_zeros(g, TG_F32, tg_shape1(5)), tg_zeros(g, TG_I32, tg_shape1(2))));
    cr_assert(strstr(test_error_message, "weight [5]"), "%s", test_error_message);
    cr_assert_null(tg_embedding(g, w, tg_zeros(g, TG_I32, tg_shape4(1, 1, 1, 2))));
    cr_assert(strstr(test_error_message, "ids [1, 1, 1, 2]"), "%s", test_error_message);
    cr_assert_eq(test_error_count, 4);
    tg_graph_free(g);
}

// --- where ---

typedef struct {
    tg_tensor *cond, *a, *b, *x;
    double value;
} sel_case;

static tg_tensor *run_where(tg_graph *g, void *ctx) {
    sel_case *c = ctx;
    return tg_where(g, c->cond, c->a, c->b);
}

// An i32 tensor of shape whose element i is nonzero when bit i of pattern is set.
static tg_tensor *pattern_mask(tg_shape shape, uint32_t pattern) {
    tg_tensor *t = tg_tensor_create(TG_I32, shape, false);
    for (int64_t i = 0; i < t->numel; i++) tg_tensor_set(t, i, (pattern >> (i % 32)) & 1 ? 3 : 0);
    return t;
}

Test(where, gradcheck_with_broadcasting_of_all_three) {
    struct {
        tg_shape c, a, b;
    } cases[] = {
        {tg_shape2(3, 4), tg_shape2(3, 4), tg_shape2(3, 4)}, {tg_shape2(3, 1), tg_shape2(1, 4), tg_shape2(3, 4)},
        {tg_shape1(4), tg_shape2(3, 4), tg_shape0()},        {tg_shape3(2, 3, 4), tg_shape2(3, 1), tg_shape1(4)},
        {tg_shape0(), tg_shape2(2, 2), tg_shape2(2, 1)},     {tg_shape4(2, 1, 3, 1), tg_shape2(1, 2), tg_shape3(1, 3, 1)},
    };
    uint32_t patterns[] = {0x5a3c96e1u, 0xffffffffu, 0}; // mixed, all true, all false
    for (int i = 0; i < 6; i++)
        for (int k = 0; k < 3; k++) {
            sel_case c = {pattern_mask(cases[i].c, patterns[k]), test_input(cases[i].a, 80, -1, 1),
                          test_input(cases[i].b, 81, -1, 1), NULL, 0};
            tg_tensor *wrt[] = {c.a, c.b};
            ASSERT_GRADCHECK(run_where, &c, wrt, 2);
            tg_tensor_free(c.cond);
            tg_tensor_free(c.a);
            tg_tensor_free(c.b);
        }
}

Test(where, values_and_gradients_with_broadcast_condition) {
    tg_graph *g = tg_graph_new();
    int32_t cv[] = {1, 0, -2};                     // [3]: broadcast over the rows
    tg_tensor *a = tg_tensor_create(TG_F64, tg_shape2(2, 3), true);
    tg_tensor *b = tg_tensor_create(TG_F64, tg_shape2(2, 1), true);
    for (int i = 0; i < 6; i++) f64(a)[i] = i + 1;
    f64(b)[0] = -10, f64(b)[1] = -20;
    tg_tensor *y = tg_where(g, tg_from_data(g, TG_I32, tg_shape1(3), cv), a, b);
    cr_assert(tg_shape_equal(y->shape, tg_shape2(2, 3)));
    double want[] = {1, -10, 3, 4, -20, 6};
    for (int i = 0; i < 6; i++) cr_assert_eq(f64(y)[i], want[i], "y[%d]", i);
    double seed[] = {1, 2, 3, 4, 5, 6};
    cr_assert(tg_backward_seed(g, y, seed));
    double want_ga[] = {1, 0, 3, 4, 0, 6}, want_gb[] = {2, 5}; // b's column summed over where cond is 0
    for (int i = 0; i < 6; i++) cr_assert_eq(g64(a)[i], want_ga[i], "ga[%d]", i);
    for (int i = 0; i < 2; i++) cr_assert_eq(g64(b)[i], want_gb[i], "gb[%d]", i);
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_graph_free(g);
}

Test(where, mismatches_and_dtypes_are_reported) {
    test_capture_errors();
    tg_graph *g = tg_graph_new();
    tg_tensor *c = tg_zeros(g, TG_I32, tg_shape1(3)), *a = tg_zeros(g, TG_F32, tg_shape2(2, 3));
    cr_assert_null(tg_where(g, c, a, tg_zeros(g, TG_F32, tg_shape1(4))));
    cr_assert(strstr(test_error_message, "tg_where") && strstr(test_error_message, "[3]") &&
                  strstr(test_error_message, "[2, 3]") && strstr(test_error_message, "[4]"),
              "%s", test_error_message);
    cr_assert_null(tg_where(g, tg_zeros(g, TG_F32, tg_shape1(3)), a, a));
    cr_assert(strstr(test_error_message, "cond must be int32, got float32"), "%s", test_error_message);
    cr_assert_null(tg_where(g, c, a, tg_zeros(g, TG_F64, tg_shape1(3))));
    cr_assert(strstr(test_error_message, "float32") && strstr(test_error_message, "float64"), "%s",
              test_error_message);
    tg_graph_free(g);
}

// --- masked_fill ---

static tg_tensor *run_masked_fill(tg_graph *g, void *ctx) {
    sel_case *c = ctx;
    return tg_masked_fill(g, c->x, c->cond, c->value);
}

Test(masked_fill, gradcheck_with_broadcast_masks) {
    tg_shape x = tg_shape3(2, 3, 4);
    tg_shape masks[] = {tg_shape3(2, 3, 4), tg_shape1(4), tg_shape2(3, 1), tg_shape1(1), tg_shape0(), tg_shape3(2, 1, 4)};
    for (int i = 0; i < 6; i++) {
        sel_case c = {pattern_mask(masks[i], 0x9e3779b9u), NULL, NULL, test_input(x, 90 + i, -1, 1), 2.5};
        ASSERT_GRADCHECK(run_masked_fill, &c, &c.x, 1);
        tg_tensor_free(c.cond);
        tg_tensor_free(c.x);
    }
}

Test(masked_fill, values_and_gradient_with_row_mask) {
    tg_graph *g = tg_graph_new();
    tg_tensor *x = tg_tensor_create(TG_F64, tg_shape2(2, 3), true);
    for (int i = 0; i < 6; i++) f64(x)[i] = i + 1;
    int32_t mv[] = {0, 7, 0}; // [3]: the middle column of every row
    tg_tensor *y = tg_masked_fill(g, x, tg_from_data(g, TG_I32, tg_shape1(3), mv), -INFINITY);
    cr_assert(tg_shape_equal(y->shape, x->shape));
    double want[] = {1, -INFINITY, 3, 4, -INFINITY, 6};
    for (int i = 0; i < 6; i++) cr_assert_eq(f64(y)[i], want[i], "y[%d]", i);
    double seed[] = {1, 2, 3, 4, 5, 6};
    cr_assert(tg_backward_seed(g, y, seed));
    double want_g[] = {1, 0, 3, 4, 0, 6};
    for (int i = 0; i < 6; i++) cr_assert_eq(g64(x)[i], want_g[i], "gx[%d]", i);
    // float32 keeps its dtype and the fill value is converted.
    float xf[] = {1, 2};
    int32_t mf[] = {1, 0};
    tg_tensor *yf = tg_masked_fill(g, tg_from_data(g, TG_F32, tg_shape1(2), xf), tg_from_data(g, TG_I32, tg_shape1(2), mf), 0.5);
    cr_assert_eq(yf->dtype, TG_F32);
    cr_assert_eq(tg_tensor_get(yf, 0), 0.5);
    cr_assert_eq(tg_tensor_get(yf, 1), 2);
    tg_tensor_free(x);
    tg_graph_free(g);
}

Test(masked_fill, mask_that_does_not_fit_x_is_reported) {
    test_capture_errors();
    tg_graph *g = tg_graph_new();
    tg_tensor *x = tg_zeros(g, TG_F32, tg_shape2(3, 1));
    cr_assert_null(tg_masked_fill(g, x, tg_zeros(g, TG_I32, tg_shape2(3, 4)), 0)); // would widen x
    cr_assert(strstr(test_error_message, "tg_masked_fill") && strstr(test_error_message, "mask [3, 4]") &&
                  strstr(test_error_message, "[3, 1]"),
              "%s", test_error_message);
    cr_assert_null(tg_masked_fill(g, x, tg_zeros(g, TG_I32, tg_shape2(2, 1)), 0));
    cr_assert(strstr(test_error_message, "cannot broadcast"), "%s", test_error_message);
    cr_assert_null(tg_masked_fill(g, x, tg_zeros(g, TG_F32, tg_shape2(3, 1)), 0));
    cr_assert(strstr(test_error_message, "mask must be int32"), "%s", test_error_message);
    cr_assert_eq(test_error_count, 3);
    tg_graph_free(g);
}

// --- dropout ---

typedef struct {
    tg_tensor *x;
    double p;
} drop_case;

// Re-seeds inside the function: every evaluation of the gradient check draws one mask.
static tg_tensor *run_dropout(tg_graph *g, void *ctx) {
    drop_case *c = ctx;
    tg_rng rng;
    tg_rng_seed(&rng, 1234);
    return tg_dropout(g, c->x, c->p, &rng);
}

Test(dropout, gradcheck_with_fixed_mask) {
    double ps[] = {0.3, 0.5, 0.9, 1.0};
    for (int i = 0; i < 4; i++) {
        drop_case c = {test_input(tg_shape2(4, 5), 100 + i, -1, 1), ps[i]};
        ASSERT_GRADCHECK(run_dropout, &c, &c.x, 1);
        tg_tensor_free(c.x);
    }
}

Test(dropout, kept_fraction_and_scaling) {
    tg_graph *g = tg_graph_new();
    const int64_t N = 200000;
    double ps[] = {0.1, 0.3, 0.75};
    for (int k = 0; k < 3; k++) {
        double p = ps[k];
        tg_rng rng;
        tg_rng_seed(&rng, 7 + k);
        tg_tensor *x = tg_full(g, TG_F64, tg_shape1(N), 2.0);
        tg_tensor *y = tg_dropout(g, x, p, &rng);
        cr_assert_neq(y, x);
        int64_t kept = 0;
        for (int64_t i = 0; i < N; i++) {
            double v = f64(y)[i];
            if (v != 0) {
                kept++;
                ASSERT_CLOSE(v, 2.0 / (1 - p), 0, 1e-15);
            }
        }
        // 6 standard deviations of a binomial fraction: a fair mask never fails this.
        double frac = (double)kept / N, sd = sqrt(p * (1 - p) / N);
        cr_assert(fabs(frac - (1 - p)) < 6 * sd, "p = %g: kept %.5f, expected %.5f", p, frac, 1 - p);
    }
    tg_graph_free(g);
}

Test(dropout, backward_uses_the_forward_mask) {
    tg_graph *g = tg_graph_new();
    tg_tensor *x = tg_tensor_create(TG_F64, tg_shape1(64), true);
    for (int i = 0; i < 64; i++) f64(x)[i] = 1 + i;
    tg_rng rng;
    tg_rng_seed(&rng, 5);
    tg_tensor *y = tg_dropout(g, x, 0.5, &rng);
    double seed[64];
    for (int i = 0; i < 64; i++) seed[i] = 0.25 * (i + 1);
    cr_assert(tg_backward_seed(g, y, seed));
    int kept = 0;
    for (int i = 0; i < 64; i++) {
        bool keep = f64(y)[i] != 0;
        kept += keep;
        cr_assert_eq(f64(y)[i], keep ? 2.0 * (1 + i) : 0.0);
        cr_assert_eq(g64(x)[i], keep ? 2.0 * seed[i] : 0.0, "gx[%d]", i);
    }
    cr_assert(kept > 0 && kept < 64);
    tg_tensor_free(x);
    tg_graph_free(g);
}

Test(dropout, same_seed_same_mask_and_stream_advances) {
    tg_graph *g = tg_graph_new();
    tg_tensor *x = tg_ones(g, TG_F32, tg_shape2(8, 16));
    tg_rng r1, r2;
    tg_rng_seed(&r1, 99);
    tg_rng_seed(&r2, 99);
    tg_tensor *a = tg_dropout(g, x, 0.4, &r1), *b = tg_dropout(g, x, 0.4, &r2);
    cr_assert_eq(a->dtype, TG_F32);
    for (int i = 0; i < 128; i++) cr_assert_eq(tg_tensor_get(a, i), tg_tensor_get(b, i), "element %d", i);
    // The mask is one draw per element: element i is kept when the i-th uniform is >= p.
    tg_rng r3;
    tg_rng_seed(&r3, 99);
    for (int i = 0; i < 128; i++) cr_assert_eq(tg_tensor_get(a, i) != 0, tg_rng_uniform(&r3) >= 0.4, "element %d", i);
    // ... and leaves the generator 128 draws on, where r3 is now.
    tg_rng after = r1;
    cr_assert_eq(tg_rng_next(&after), tg_rng_next(&r3));
    // A second call continues the stream: a different mask.
    tg_tensor *c = tg_dropout(g, x, 0.4, &r1);
    int differ = 0;
    for (int i = 0; i < 128; i++) differ += tg_tensor_get(a, i) != tg_tensor_get(c, i);
    cr_assert(differ > 0);
    tg_graph_free(g);
}

Test(dropout, eval_mode_and_zero_p_return_x_itself) {
    tg_graph *g = tg_graph_new();
    tg_tensor *x = tg_tensor_create(TG_F64, tg_shape1(4), true);
    tg_rng rng;
    tg_rng_seed(&rng, 1);
    tg_rng before = rng;
    cr_assert_eq(tg_dropout(g, x, 0.0, &rng), x);
    tg_graph_set_training(g, false);
    cr_assert_eq(tg_dropout(g, x, 0.5, &rng), x);
    cr_assert_eq(tg_dropout(g, x, 0.5, NULL), x, "no generator is needed outside training");
    cr_assert_eq(tg_graph_node_count(g), 0);
    cr_assert(memcmp(&before, &rng, sizeof rng) == 0, "nothing was drawn");
    tg_graph_set_training(g, true);
    cr_assert_neq(tg_dropout(g, x, 0.5, &rng), x);
    cr_assert_eq(tg_graph_node_count(g), 1);
    tg_tensor_free(x);
    tg_graph_free(g);
}

Test(dropout, p_one_gives_zeros_and_zero_gradient) {
    tg_graph *g = tg_graph_new();
    tg_tensor *x = tg_tensor_create(TG_F64, tg_shape1(10), true);
    tg_tensor_fill(x, 3.0);
    tg_rng rng;
    tg_rng_seed(&rng, 2);
    tg_tensor *y = tg_dropout(g, x, 1.0, &rng);
    double seed[10] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    cr_assert(tg_backward_seed(g, y, seed));
    for (int i = 0; i < 10; i++) {
        cr_assert_eq(f64(y)[i], 0.0);
        cr_assert(!isnan(f64(y)[i]));
        cr_assert_eq(g64(x)[i], 0.0);
    }
    tg_tensor_free(x);
    tg_graph_free(g);
}

Test(dropout, bad_p_wrong_dtype_and_missing_rng_are_reported) {
    test_capture_errors();
    tg_graph *g = tg_graph_new();
    tg_tensor *x = tg_zeros(g, TG_F32, tg_shape1(3));
    tg_rng rng;
    tg_rng_seed(&rng, 3);
    cr_assert_null(tg_dropout(g, x, -0.1, &rng));
    cr_assert(strstr(test_error_message, "tg_dropout") && strstr(test_error_message, "p = -0.1"), "%s",
              test_error_message);
    cr_assert_null(tg_dropout(g, x, 1.5, &rng));
    cr_assert(strstr(test_error_message, "p = 1.5"), "%s", test_error_message);
    cr_assert_null(tg_dropout(g, x, NAN, &rng));
    cr_assert(strstr(test_error_message, "nan"), "%s", test_error_message);
    cr_assert_null(tg_dropout(g, x, 0.5, NULL));
    cr_assert(strstr(test_error_message, "rng is NULL"), "%s", test_error_message);
    cr_assert_null(tg_dropout(g, tg_zeros(g, TG_I32, tg_shape1(3)), 0.5, &rng));
    cr_assert(strstr(test_error_message, "int32"), "%s", test_error_message);
    cr_assert_eq(test_error_count, 5);
    tg_graph_free(g);
}
