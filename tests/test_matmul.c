// Gradient checks and values for matmul (2-D, batched, transposed), linear and linear_add.
#include <math.h>

#include "tg_test.h"

typedef enum { MATMUL, LINEAR, LINEAR_ADD, LINEAR_ADD_IN_PLACE } mm_kind;

typedef struct {
    tg_tensor *a, *b, *bias, *addend;
    bool ta, tb;
    mm_kind kind;
} mm_case;

static tg_tensor *run_mm(tg_graph *g, void *ctx) {
    mm_case *c = ctx;
    switch (c->kind) {
    case LINEAR: return tg_linear(g, c->a, c->b, c->bias);
    case LINEAR_ADD: return tg_linear_add(g, c->addend, c->a, c->b, c->bias);
    case LINEAR_ADD_IN_PLACE: // over a fresh non-leaf copy of the addend, whose gradient is checked
        return tg_linear_add_(g, tg_mul_scalar(g, c->addend, 1), c->a, c->b, c->bias);
    default: return tg_matmul_t(g, c->a, c->b, c->ta, c->tb);
    }
}

// Stored shape of an operand: rows x cols, swapped when it is read transposed.
static tg_shape stored(int batch, int64_t rows, int64_t cols, bool t) {
    int64_t r = t ? cols : rows, c = t ? rows : cols;
    return batch ? tg_shape3(batch, r, c) : tg_shape2(r, c);
}

Test(matmul, gradcheck_every_transpose_2d_and_batched) {
    for (int batch = 0; batch <= 3; batch += 3)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                mm_case c = {test_input(stored(batch, 4, 3, ta), 1, -1, 1), test_input(stored(batch, 3, 5, tb), 2, -1, 1),
                             NULL, NULL, ta, tb, MATMUL};
                tg_tensor *wrt[] = {c.a, c.b};
                ASSERT_GRADCHECK(run_mm, &c, wrt, 2);
                tg_tensor_free(c.a);
                tg_tensor_free(c.b);
            }
}

Test(matmul, gradcheck_batched_times_shared_matrix) {
    for (int tb = 0; tb < 2; tb++) {
        mm_case c = {test_input(tg_shape3(2, 3, 4), 5, -1, 1), test_input(stored(0, 4, 2, tb), 6, -1, 1), NULL, NULL, false, tb, MATMUL};
        tg_tensor *wrt[] = {c.a, c.b};
        ASSERT_GRADCHECK(run_mm, &c, wrt, 2);
        tg_tensor_free(c.a);
        tg_tensor_free(c.b);
    }
}

Test(matmul, gradcheck_size_one_dims) {
    mm_case c = {test_input(tg_shape2(1, 3), 8, -1, 1), test_input(tg_shape2(3, 1), 9, -1, 1), NULL, NULL, false, false, MATMUL};
    tg_tensor *wrt[] = {c.a, c.b};
    ASSERT_GRADCHECK(run_mm, &c, wrt, 2);
    tg_tensor_free(c.a);
    tg_tensor_free(c.b);
}

Test(matmul, values_against_naive_product) {
    tg_graph *g = tg_graph_new();
    tg_rng rng;
    tg_rng_seed(&rng, 3);
    tg_tensor *a = tg_rand_uniform(g, TG_F32, tg_shape2(7, 5), &rng, -1, 1);
    tg_tensor *b = tg_rand_uniform(g, TG_F32, tg_shape2(6, 5), &rng, -1, 1);
    tg_tensor *c = tg_matmul_t(g, a, b, false, true); // a b^T: [7, 6]
    cr_assert(tg_shape_equal(c->shape, tg_shape2(7, 6)));
    for (int i = 0; i < 7; i++)
        for (int j = 0; j < 6; j++) {
            double s = 0;
            for (int k = 0; k < 5; k++) s += tg_tensor_get(a, i * 5 + k) * tg_tensor_get(b, j * 5 + k);
            ASSERT_CLOSE(tg_tensor_get(c, i * 6 + j), s, 1e-6, 1e-5);
        }
    tg_graph_free(g);
}

Test(linear, gradcheck_with_and_without_bias) {
    for (int with_bias = 0; with_bias < 2; with_bias++) {
        mm_case c = {test_input(tg_shape3(2, 3, 4), 1, -1, 1), test_input(tg_shape2(5, 4), 2, -1, 1),
                     with_bias ? test_input(tg_shape1(5), 3, -1, 1) : NULL, NULL, false, false, LINEAR};
        tg_tensor *wrt[] = {c.a, c.b, c.bias};
        ASSERT_GRADCHECK(run_mm, &c, wrt, with_bias ? 3 : 2);
        tg_tensor_free(c.a);
        tg_tensor_free(c.b);
        tg_tensor_free(c.bias);
    }
}

Test(linear, values_match_pytorch_layout) {
    tg_graph *g = tg_graph_new();
    double x[] = {1, 2};                // [1, 2]
    double w[] = {1, 0, 0, 1, 1, 1};    // [3, 2]: out = 3, in = 2
    double b[] = {0.5, -0.5, 0};
    tg_tensor *y = tg_linear(g, tg_from_data(g, TG_F64, tg_shape2(1, 2), x), tg_from_data(g, TG_F64, tg_shape2(3, 2), w),
                             tg_from_data(g, TG_F64, tg_shape1(3), b));
    double want[] = {1.5, 1.5, 3};
    for (int i = 0; i < 3; i++) cr_assert_eq(tg_tensor_get(y, i), want[i]);
    tg_graph_free(g);
}

Test(matmul, inner_size_mismatch_is_reported) {
    test_capture_errors();
    tg_graph *g = tg_graph_new();
    cr_assert_null(tg_matmul(g, tg_zeros(g, TG_F32, tg_shape2(2, 3)), tg_zeros(g, TG_F32, tg_shape2(4, 5))));
    cr_assert(strstr(test_error_message, "tg_matmul") && strstr(test_error_message, "[2, 3]") &&
                  strstr(test_error_message, "[4, 5]"),
              "%s", test_error_message);
    cr_assert_null(tg_linear(g, tg_zeros(g, TG_F32, tg_shape2(2, 3)), tg_zeros(g, TG_F32, tg_shape2(4, 5)), NULL));
    cr_assert(strstr(test_error_message, "tg_linear"), "%s", test_error_message);
    tg_graph_free(g);
}

// A linear layer with few rows multiplies by a transposed copy of a leaf weight that the
// graph keeps; the copy must follow every change the library makes to the weight.
Test(linear, transposed_weight_copy_follows_changes_to_the_weight) {
    tg_params *p = tg_params_new();
    tg_tensor *w = tg_params_add(p, "w", TG_F64, tg_shape2(3, 2)); // [out, in]
    for (int i = 0; i < 6; i++) tg_tensor_set(w, i, i + 1);
    tg_graph *g = tg_graph_new();
    double xs[] = {1, 10};
    tg_tensor *x = tg_from_data(g, TG_F64, tg_shape2(1, 2), xs);
    tg_tensor *y = tg_linear(g, x, w, NULL);
    double want[] = {21, 43, 65}; // row i: w[i,0] + 10 w[i,1]
    for (int i = 0; i < 3; i++) cr_assert_eq(tg_tensor_get(y, i), want[i]);
    tg_tensor_set(w, 1, 0); // w[0,1] = 0
    y = tg_linear(g, x, w, NULL);
    cr_assert_eq(tg_tensor_get(y, 0), 1, "a stale transposed copy was used after tg_tensor_set");
    // An optimizer step changes the weight too: SGD with lr 1 and gradient 1 everywhere.
    tg_optim *opt = tg_optim_sgd(p, (tg_sgd_opts){.lr = 1});
    tg_tensor_fill(w, 1);
    for (int i = 0; i < 6; i++) ((double *)w->grad)[i] = 1;
    y = tg_linear(g, x, w, NULL); // caches the copy of the all-ones weight
    cr_assert_eq(tg_tensor_get(y, 2), 11);
    tg_optim_step(opt); // w becomes all zeros
    y = tg_linear(g, x, w, NULL);
    for (int i = 0; i < 3; i++) cr_assert_eq(tg_tensor_get(y, i), 0, "a stale transposed copy was used after a step");
    tg_optim_free(opt);
    tg_graph_free(g);
    tg_params_free(p);
}

// --- linear_add: addend + x W^T + b ---

// Gradchecks linear_add or linear_add_ (kind) of x [rows, 4] (rows = its leading sizes) and
// weight [5, 4], with and without a bias: x, weight, addend [rows, 5] and bias.
static void gradcheck_linear_add(mm_kind kind, tg_shape x, tg_shape sum, uint64_t seed) {
    for (int with_bias = 0; with_bias < 2; with_bias++) {
        mm_case c = {test_input(x, seed, -1, 1), test_input(tg_shape2(5, 4), seed + 1, -1, 1),
                     with_bias ? test_input(tg_shape1(5), seed + 2, -1, 1) : NULL, test_input(sum, seed + 3, -1, 1),
                     false, false, kind};
        tg_tensor *wrt[] = {c.a, c.b, c.addend, c.bias};
        ASSERT_GRADCHECK(run_mm, &c, wrt, with_bias ? 4 : 3);
        tg_tensor_free(c.a);
        tg_tensor_free(c.b);
        tg_tensor_free(c.bias);
        tg_tensor_free(c.addend);
    }
}

Test(linear_add, gradcheck_with_and_without_bias) {
    gradcheck_linear_add(LINEAR_ADD, tg_shape3(2, 3, 4), tg_shape3(2, 3, 5), 11);
}

// The fused op is the recurrent cells' fast path for tg_add(addend, tg_linear(...)): its
// sum must round the same way, so that both paths give bit-identical values, for a leaf
// weight with few rows (multiplied through its transposed copy) and with many.
Test(linear_add, equals_add_of_linear_bit_for_bit) {
    tg_params *p = tg_params_new();
    tg_rng rng;
    tg_rng_seed(&rng, 5);
    tg_tensor *w = tg_params_add(p, "w", TG_F32, tg_shape2(24, 16)), *b = tg_params_add(p, "b", TG_F32, tg_shape1(24));
    tg_tensor_fill_uniform(w, &rng, -1, 1);
    tg_tensor_fill_uniform(b, &rng, -1, 1);
    tg_graph *g = tg_graph_new();
    for (int64_t rows = 3; rows <= 300; rows += 297) {
        tg_tensor *x = tg_rand_uniform(g, TG_F32, tg_shape2(rows, 16), &rng, -1, 1);
        tg_tensor *a = tg_rand_uniform(g, TG_F32, tg_shape2(rows, 24), &rng, -1, 1);
        tg_tensor *fused = tg_linear_add(g, a, x, w, b), *plain = tg_add(g, a, tg_linear(g, x, w, b));
        cr_assert(memcmp(fused->data, plain->data, (size_t)fused->numel * sizeof(float)) == 0, "rows %lld",
                  (long long)rows);
    }
    tg_graph_free(g);
    tg_params_free(p);
}

Test(linear_add, wrong_addend_shape_is_reported) {
    test_capture_errors();
    tg_graph *g = tg_graph_new();
    tg_tensor *x = tg_zeros(g, TG_F32, tg_shape2(2, 3)), *w = tg_zeros(g, TG_F32, tg_shape2(4, 3));
    cr_assert_null(tg_linear_add(g, tg_zeros(g, TG_F32, tg_shape2(2, 5)), x, w, NULL));
    cr_assert(strstr(test_error_message, "tg_linear_add") && strstr(test_error_message, "[2, 5]") &&
                  strstr(test_error_message, "must be [2, 4]"),
              "%s", test_error_message);
    cr_assert_null(tg_linear_add(g, NULL, x, w, NULL));
    cr_assert(strstr(test_error_message, "tg_linear_add") && strstr(test_error_message, "NULL"), "%s",
              test_error_message);
    tg_graph_free(g);
}

// A leaf weight's gradient from few-row products is staged and summed in larger products
// (autodiff/weight_grad.c). 600 one-row uses fill the staging twice over; 20 weights at once
// are more than it keeps. Each gradient must still be the sum of every use's dy^T x.
Test(linear, staged_weight_gradients_sum_every_use) {
    enum { WEIGHTS = 20, USES = 600 };
    tg_tensor *w[WEIGHTS];
    for (int k = 0; k < WEIGHTS; k++) w[k] = test_input(tg_shape2(3, 2), 30 + k, -1, 1); // [out, in]
    tg_graph *g = tg_graph_new();
    tg_tensor *terms[WEIGHTS * USES];
    double want[WEIGHTS][6] = {{0}};
    for (int u = 0; u < USES; u++)
        for (int k = 0; k < WEIGHTS; k++) {
            double xs[2] = {u % 7 - 3, (u * k) % 5 - 2}, scale = 1 + u % 3; // loss term: scale * sum(x W^T)
            tg_tensor *y = tg_linear(g, tg_from_data(g, TG_F64, tg_shape2(1, 2), xs), w[k], NULL); // [1, 3]
            terms[u * WEIGHTS + k] = tg_mul_scalar(g, tg_sum(g, y), scale);
            for (int o = 0; o < 3; o++)
                for (int i = 0; i < 2; i++) want[k][o * 2 + i] += scale * xs[i];
        }
    tg_tensor *loss = tg_sum(g, tg_stack(g, WEIGHTS * USES, terms, 0));
    cr_assert(tg_backward(g, loss));
    for (int k = 0; k < WEIGHTS; k++)
        for (int e = 0; e < 6; e++) cr_assert_eq(((double *)w[k]->grad)[e], want[k][e], "weight %d element %d", k, e);
    tg_graph_free(g);
    for (int k = 0; k < WEIGHTS; k++) tg_tensor_free(w[k]);
}

// --- linear_add_: the same sum, written over the addend ---

Test(linear_add_, gradcheck_with_and_without_bias) {
    gradcheck_linear_add(LINEAR_ADD_IN_PLACE, tg_shape2(3, 4), tg_shape2(3, 5), 21);
}

Test(linear_add_, writes_the_sum_over_the_addend) {
    tg_graph *g = tg_graph_new();
    tg_rng rng;
    tg_rng_seed(&rng, 9);
    tg_tensor *x = tg_rand_uniform(g, TG_F64, tg_shape2(4, 3), &rng, -1, 1);
    tg_tensor *w = tg_rand_uniform(g, TG_F64, tg_shape2(6, 3), &rng, -1, 1);
    tg_tensor *b = tg_rand_uniform(g, TG_F64, tg_shape1(6), &rng, -1, 1);
    tg_tensor *a = tg_rand_uniform(g, TG_F64, tg_shape2(4, 6), &rng, -1, 1);
    tg_tensor *want = tg_linear_add(g, a, x, w, b);
    uint64_t version = a->version;
    tg_tensor *y = tg_linear_add_(g, a, x, w, b);
    cr_assert(y->data == a->data && a->version > version, "the sum was not written over the addend");
    for (int i = 0; i < 24; i++) ASSERT_CLOSE(tg_tensor_get(y, i), tg_tensor_get(want, i), 1e-15, 1e-15);
    tg_graph_free(g);
}

Test(linear_add_, refuses_a_leaf_with_a_gradient_and_shared_data) {
    test_capture_errors();
    tg_graph *g = tg_graph_new();
    tg_tensor *leaf = tg_tensor_create(TG_F32, tg_shape2(2, 2), true);
    tg_tensor *x = tg_zeros(g, TG_F32, tg_shape2(2, 2)), *w = tg_zeros(g, TG_F32, tg_shape2(2, 2));
    cr_assert_null(tg_linear_add_(g, leaf, x, w, NULL));
    cr_assert(strstr(test_error_message, "tg_linear_add_") && strstr(test_error_message, "leaf"), "%s",
              test_error_message);
    cr_assert_null(tg_linear_add_(g, x, x, w, NULL)); // the product would read what it writes
    cr_assert(strstr(test_error_message, "shares data"), "%s", test_error_message);
    cr_assert_null(tg_linear_add_(g, tg_reshape(g, w, tg_shape2(2, 2)), x, w, NULL));
    cr_assert(strstr(test_error_message, "shares data"), "%s", test_error_message);
    tg_graph_free(g);
    tg_tensor_free(leaf);
}

// Products of up to 64 rows run through register tiles of 4 rows by 4 vectors of columns
// (graph/gemm_small.c), with narrower tiles and plain loops at the edges. Every edge case
// (rows not a multiple of 4, columns not a multiple of a vector, k < 4), every transpose and
// both dtypes must match the product summed in long double; linear adds its bias (beta = 1).
Test(matmul, tile_edges_against_a_plain_sum) {
    const int64_t ms[] = {1, 3, 4, 5, 9, 33, 64}, ns[] = {1, 7, 16, 17, 64, 65, 130}, ks[] = {1, 3, 4, 17};
    tg_rng rng;
    tg_rng_seed(&rng, 17);
    for (int dt = 0; dt < 2; dt++) {
        tg_dtype dtype = dt ? TG_F64 : TG_F32;
        double tol = dt ? 1e-12 : 2e-5;
        for (int flags = 0; flags < 4; flags++) {
            bool ta = flags & 1, tb = flags & 2;
            for (int im = 0; im < 7; im++)
                for (int in = 0; in < 7; in++)
                    for (int ik = 0; ik < 4; ik++) {
                        int64_t m = ms[im], n = ns[in], k = ks[ik];
                        tg_graph *g = tg_graph_new();
                        tg_tensor *a = tg_rand_uniform(g, dtype, ta ? tg_shape2(k, m) : tg_shape2(m, k), &rng, -1, 1);
                        tg_tensor *b = tg_rand_uniform(g, dtype, tb ? tg_shape2(n, k) : tg_shape2(k, n), &rng, -1, 1);
                        tg_tensor *c = tg_matmul_t(g, a, b, ta, tb);
                        tg_tensor *bias = tg_rand_uniform(g, dtype, tg_shape1(n), &rng, -1, 1);
                        tg_tensor *lin = ta || tb ? NULL : tg_linear(g, a, tg_transpose(g, b, 0, 1), bias);
                        for (int64_t i = 0; i < m; i++)
                            for (int64_t j = 0; j < n; j++) {
                                long double s = 0;
                                for (int64_t p = 0; p < k; p++)
                                    s += (long double)tg_tensor_get(a, ta ? p * m + i : i * k + p) *
                                         tg_tensor_get(b, tb ? j * k + p : p * n + j);
                                cr_assert(fabs(tg_tensor_get(c, i * n + j) - (double)s) <= tol * (1 + k),
                                          "%s ta %d tb %d %lldx%lldx%lld: C[%lld, %lld] = %g, expected %g",
                                          tg_dtype_name(dtype), ta, tb, (long long)m, (long long)n, (long long)k,
                                          (long long)i, (long long)j, tg_tensor_get(c, i * n + j), (double)s);
                                if (lin)
                                    cr_assert(fabs(tg_tensor_get(lin, i * n + j) - (double)s - tg_tensor_get(bias, j)) <=
                                                  tol * (2 + k),
                                              "linear %lldx%lldx%lld: [%lld, %lld]", (long long)m, (long long)n,
                                              (long long)k, (long long)i, (long long)j);
                            }
                        tg_graph_free(g);
                    }
        }
    }
}
