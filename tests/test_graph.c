// The graph: arena and reset, no allocation in a steady loop, parameters, generator, runtime.
#include <math.h>
#include <stdlib.h>

#include "tg_test.h"

// --wrap=malloc (tests/CMakeLists.txt) routes every allocation of tapegrad's own code and of
// this file through these counters.
static size_t heap_calls;
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t a, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);
void *__wrap_aligned_alloc(size_t a, size_t n);
void *__wrap_malloc(size_t n) { heap_calls++; return __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t m) { heap_calls++; return __real_calloc(n, m); }
void *__wrap_realloc(void *p, size_t n) { heap_calls++; return __real_realloc(p, n); }
void *__wrap_aligned_alloc(size_t a, size_t n) { heap_calls++; return __real_aligned_alloc(a, n); }

// One training iteration of a small unrolled tanh RNN; returns the loss [1, 1].
static tg_tensor *rnn_iteration(tg_graph *g, tg_tensor *w_ih, tg_tensor *w_hh, tg_tensor *b, tg_tensor *v, int T) {
    tg_rng rng;
    tg_rng_seed(&rng, 1);
    tg_tensor *h = tg_zeros(g, TG_F32, tg_shape2(4, 32));
    for (int t = 0; t < T; t++) {
        tg_tensor *x = tg_rand_uniform(g, TG_F32, tg_shape2(4, 16), &rng, -1, 1);
        h = tg_tanh(g, tg_add(g, tg_linear(g, x, w_ih, b), tg_linear(g, h, w_hh, NULL)));
    }
    tg_tensor *score = tg_matmul(g, h, v); // [4, 1]
    tg_tensor *ones = tg_ones(g, TG_F32, tg_shape2(1, 4));
    return tg_matmul(g, ones, tg_mul(g, score, score)); // [1, 1]
}

Test(graph, steady_loop_allocates_nothing_after_first_iteration) {
    tg_tensor *w_ih = tg_tensor_create(TG_F32, tg_shape2(32, 16), true);
    tg_tensor *w_hh = tg_tensor_create(TG_F32, tg_shape2(32, 32), true);
    tg_tensor *b = tg_tensor_create(TG_F32, tg_shape1(32), true);
    tg_tensor *v = tg_tensor_create(TG_F32, tg_shape2(32, 1), true);
    tg_rng rng;
    tg_rng_seed(&rng, 7);
    tg_tensor *ps[] = {w_ih, w_hh, b, v};
    for (int i = 0; i < 4; i++) tg_tensor_fill_uniform(ps[i], &rng, -0.2, 0.2);
    size_t calls_before = heap_calls;
    tg_graph *g = tg_graph_new();
    cr_assert_gt(heap_calls, calls_before, "the allocation counter sees tapegrad's allocations");
    // T = 300 makes the tape outgrow its first capacity and the arena its first block.
    size_t calls_after_first = 0, used_first = 0, reserved_first = 0;
    for (int it = 0; it < 5; it++) {
        tg_graph_reset(g);
        tg_tensor *loss = rnn_iteration(g, w_ih, w_hh, b, v, 300);
        cr_assert(tg_backward(g, loss));
        tg_graph_stats s = tg_graph_get_stats(g);
        if (it == 0) {
            calls_after_first = heap_calls;
            used_first = s.arena_used;
            reserved_first = s.arena_reserved;
            cr_assert(reserved_first > (1u << 20), "the test should make the arena grow past one block");
        } else {
            cr_assert_eq(heap_calls, calls_after_first, "iteration %d made %zu heap allocations", it,
                         heap_calls - calls_after_first);
            cr_assert_eq(s.arena_used, used_first);
            cr_assert_eq(s.arena_reserved, reserved_first);
        }
    }
    tg_graph_free(g);
    for (int i = 0; i < 4; i++) tg_tensor_free(ps[i]);
}

Test(graph, reset_forgets_nodes_and_keeps_memory) {
    tg_graph *g = tg_graph_new();
    tg_tensor *w = tg_tensor_create(TG_F64, tg_shape2(3, 3), true);
    tg_tensor *y = tg_tanh(g, tg_matmul(g, w, w));
    cr_assert_not_null(y);
    cr_assert_eq(tg_graph_node_count(g), 2);
    tg_graph_stats before = tg_graph_get_stats(g);
    cr_assert(before.arena_used > 0);
    tg_graph_reset(g);
    tg_graph_stats after = tg_graph_get_stats(g);
    cr_assert_eq(tg_graph_node_count(g), 0);
    cr_assert_eq(after.arena_used, 0);
    cr_assert_eq(after.arena_reserved, before.arena_reserved);
    tg_tensor_free(w);
    tg_graph_free(g);
}

Test(graph, large_tensors_get_their_own_block) {
    tg_graph *g = tg_graph_new();
    for (int it = 0; it < 3; it++) {
        tg_graph_reset(g);
        tg_tensor *small = tg_ones(g, TG_F32, tg_shape1(10));
        tg_tensor *big = tg_full(g, TG_F64, tg_shape2(1000, 1000), 2.0); // 8 MB, more than a block
        tg_tensor *small2 = tg_ones(g, TG_F32, tg_shape1(10));
        cr_assert_eq(tg_tensor_get(big, 999999), 2.0);
        cr_assert_eq(tg_tensor_get(small, 9) + tg_tensor_get(small2, 0), 2.0);
        cr_assert_eq((uintptr_t)big->data % 64, 0, "arena memory is 64-byte aligned");
    }
    tg_graph_free(g);
}

Test(graph, creation_helpers) {
    tg_graph *g = tg_graph_new();
    int32_t ids[] = {3, 1, 4};
    tg_tensor *t = tg_from_data(g, TG_I32, tg_shape1(3), ids);
    cr_assert_eq(tg_tensor_get(t, 2), 4);
    cr_assert_eq(t->node, NULL);
    cr_assert_eq(t->requires_grad, false);
    tg_tensor *s = tg_full(g, TG_F32, tg_shape0(), 1.5);
    cr_assert_eq(s->numel, 1);
    cr_assert_eq(tg_tensor_get(s, 0), 1.5);
    tg_tensor *e = tg_zeros(g, TG_F32, tg_shape2(0, 5)); // empty tensors are allowed
    cr_assert_eq(e->numel, 0);
    char buf[64];
    cr_assert_str_eq(tg_shape_str(tg_shape3(2, 0, 7), buf, sizeof buf), "[2, 0, 7]");
    cr_assert_str_eq(tg_shape_str(tg_shape0(), buf, sizeof buf), "[]");
    tg_graph_free(g);
}

Test(graph, bad_shapes_at_creation_are_reported) {
    test_capture_errors();
    tg_graph *g = tg_graph_new();
    cr_assert_null(tg_zeros(g, TG_F32, tg_shape2(-1, 3)));
    cr_assert(strstr(test_error_message, "negative"), "%s", test_error_message);
    tg_shape five = {5, {1, 1, 1, 1}};
    cr_assert_null(tg_ones(g, TG_F32, five));
    cr_assert(strstr(test_error_message, "5 dimensions"), "%s", test_error_message);
    cr_assert_not_null(tg_graph_last_error(g));
    tg_graph_reset(g);
    cr_assert_null(tg_graph_last_error(g));
    tg_graph_free(g);
}

Test(params, named_collection) {
    test_capture_errors();
    tg_params *p = tg_params_new();
    tg_tensor *w = tg_params_add(p, "encoder.weight_ih_l0", TG_F32, tg_shape2(8, 3));
    tg_tensor *b = tg_params_add(p, "encoder.bias_ih_l0", TG_F32, tg_shape1(8));
    cr_assert_not_null(w);
    cr_assert_str_eq(w->name, "encoder.weight_ih_l0");
    cr_assert(w->requires_grad && w->grad);
    cr_assert_eq(tg_params_find(p, "encoder.bias_ih_l0"), b);
    cr_assert_null(tg_params_find(p, "missing"));
    cr_assert_eq(tg_params_count(p), 2);
    cr_assert_eq(tg_params_at(p, 1), b);
    cr_assert_eq(tg_params_numel(p), 32);
    cr_assert_null(tg_params_add(p, "encoder.bias_ih_l0", TG_F32, tg_shape1(8)));
    cr_assert(strstr(test_error_message, "exists already"), "%s", test_error_message);
    ((float *)w->grad)[5] = 3;
    tg_params_zero_grad(p);
    cr_assert_eq(((float *)w->grad)[5], 0);
    tg_params_free(p);
}

Test(params, used_without_copying_and_gradient_accumulates_into_them) {
    tg_params *p = tg_params_new();
    tg_tensor *w = tg_params_add(p, "w", TG_F64, tg_shape2(1, 2));
    tg_tensor_set(w, 0, 2);
    tg_tensor_set(w, 1, -1);
    tg_graph *g = tg_graph_new();
    double xs[] = {3, 5};
    tg_tensor *y = tg_linear(g, tg_from_data(g, TG_F64, tg_shape2(1, 2), xs), w, NULL); // [1, 1]
    cr_assert(tg_backward(g, y));
    cr_assert_eq(((double *)w->grad)[0], 3);
    cr_assert_eq(((double *)w->grad)[1], 5);
    tg_graph_free(g);
    tg_params_free(p);
}

Test(rng, seeded_streams) {
    tg_rng a, b, c;
    tg_rng_seed(&a, 42);
    tg_rng_seed(&b, 42);
    tg_rng_seed(&c, 43);
    int same = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t x = tg_rng_next(&a);
        cr_assert_eq(x, tg_rng_next(&b));
        same += x == tg_rng_next(&c);
    }
    cr_assert_eq(same, 0);
    double sum = 0, sum2 = 0, lo = 1, hi = 0;
    int n = 200000;
    for (int i = 0; i < n; i++) {
        double u = tg_rng_uniform(&a);
        lo = fmin(lo, u);
        hi = fmax(hi, u);
        double z = tg_rng_normal(&a);
        sum += z;
        sum2 += z * z;
        cr_assert_lt(tg_rng_below(&a, 7), 7);
    }
    cr_assert(lo >= 0 && hi < 1 && lo < 0.001 && hi > 0.999);
    // Standard normal: the mean's standard error is 1/sqrt(n) ~ 0.0022.
    cr_assert(fabs(sum / n) < 0.01, "mean %g", sum / n);
    cr_assert(fabs(sum2 / n - 1) < 0.02, "variance %g", sum2 / n);
}

Test(runtime, fast_blis_kernels_chosen_without_any_setting) {
    const char *arch = tg_blas_arch();
    cr_assert_not_null(arch);
    cr_assert_str_neq(arch, "generic", "BLIS fell back to its slow generic kernels");
#if defined(__x86_64__)
    __builtin_cpu_init();
    // The library set BLIS_ARCH_TYPE when it loaded, to BLIS_ARCH_SKX's number (0 in BLIS 0.9),
    // unless the user had set it: then BLIS must have taken the AVX-512 kernels.
    const char *chosen = getenv("BLIS_ARCH_TYPE");
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && chosen && !strcmp(chosen, "0"))
        cr_assert_str_eq(arch, "skx");
#endif
    tg_set_num_threads(2);
    cr_assert_eq(tg_num_threads(), 2);
    tg_set_num_threads(1);
}

Test(graph, shapes_too_large_to_allocate_are_reported) {
    test_capture_errors();
    tg_shape huge = tg_shape4(65536, 65536, 65536, 65536); // the element count overflows int64
    cr_assert_null(tg_tensor_create(TG_F32, huge, false));
    cr_assert(strstr(test_error_message, "too many elements"), "%s", test_error_message);
    tg_graph *g = tg_graph_new();
    cr_assert_null(tg_zeros(g, TG_F64, huge));
    cr_assert(strstr(test_error_message, "tg_full") && strstr(test_error_message, "too many"), "%s",
              test_error_message);
    tg_graph_free(g);
}
