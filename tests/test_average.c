// tg_param_average: an exponential moving average of the parameters against a direct
// computation of its definition, exact swaps, and bad use reported.
#include <stdlib.h>

#include "tg_optim.h"
#include "tg_test.h"

// A collection of a float32 [3, 5] and a float64 [7] parameter, filled from seed.
static tg_params *two_params(uint64_t seed) {
    tg_params *p = tg_params_new();
    tg_rng rng;
    tg_rng_seed(&rng, seed);
    tg_tensor_fill_uniform(tg_params_add(p, "w", TG_F32, tg_shape2(3, 5)), &rng, -2, 2);
    tg_tensor_fill_uniform(tg_params_add(p, "b", TG_F64, tg_shape1(7)), &rng, -2, 2);
    return p;
}

// The bytes of every parameter's values (or of the average's buffers), concatenated.
static unsigned char *snapshot(const tg_params *p, const tg_param_average *a, size_t *size) {
    *size = 0;
    for (int i = 0; i < tg_params_count(p); i++)
        *size += (size_t)tg_params_at(p, i)->numel * tg_dtype_size(tg_params_at(p, i)->dtype);
    unsigned char *out = malloc(*size), *at = out;
    for (int i = 0; i < tg_params_count(p); i++) {
        const tg_tensor *t = a ? tg_param_average_at(a, i) : tg_params_at(p, i);
        size_t n = (size_t)t->numel * tg_dtype_size(t->dtype);
        memcpy(at, t->data, n);
        at += n;
    }
    return out;
}

Test(param_average, follows_the_definition_in_float32_and_float64) {
    enum { STEPS = 6 };
    const double decay = 0.9;
    tg_params *p = two_params(1);
    tg_param_average *a = tg_param_average_new(p, decay);
    cr_assert_not_null(a);
    double want[15 + 7]; // the average by its definition, element by element over both parameters
    tg_rng rng;
    tg_rng_seed(&rng, 2);
    for (int step = 0; step < STEPS; step++) {
        for (int i = 0; i < 2; i++) tg_tensor_fill_uniform(tg_params_at(p, i), &rng, -3, 3); // "an optimizer step"
        cr_assert(tg_param_average_update(a));
        for (int i = 0, at = 0; i < 2; i++) {
            const tg_tensor *t = tg_params_at(p, i);
            for (int64_t k = 0; k < t->numel; k++, at++) {
                double v = tg_tensor_get(t, k);
                want[at] = step == 0 ? v : decay * want[at] + (1 - decay) * v;
                if (t->dtype == TG_F32) want[at] = (float)want[at]; // rounded to the parameter's dtype each time
            }
        }
    }
    cr_assert_eq(tg_param_average_count(a), STEPS);
    for (int i = 0, at = 0; i < 2; i++) {
        const tg_tensor *avg = tg_param_average_at(a, i);
        cr_assert_eq(avg->dtype, tg_params_at(p, i)->dtype);
        double rtol = avg->dtype == TG_F32 ? 2e-7 : 1e-15; // one rounding of float or double apart
        for (int64_t k = 0; k < avg->numel; k++, at++) ASSERT_CLOSE(tg_tensor_get(avg, k), want[at], 1e-300, rtol);
    }
    cr_assert_null(tg_param_average_at(a, 2));
    cr_assert_null(tg_param_average_at(a, -1));
    tg_param_average_free(a);
    tg_params_free(p);
}

Test(param_average, small_numbers_by_hand_and_set_count_restarts_with_a_copy) {
    tg_params *p = tg_params_new();
    tg_tensor *x = tg_params_add(p, "x", TG_F64, tg_shape1(1));
    tg_param_average *a = tg_param_average_new(p, 0.75);
    double values[] = {8, 4, 0}, want[] = {8, 7, 5.25}; // copy; 0.75*8 + 0.25*4; 0.75*7 + 0.25*0
    for (int k = 0; k < 3; k++) {
        tg_tensor_set(x, 0, values[k]);
        cr_assert(tg_param_average_update(a));
        cr_assert_eq(tg_tensor_get(tg_param_average_at(a, 0), 0), want[k]);
    }
    cr_assert_eq(tg_param_average_decay(a), 0.75);
    tg_param_average_set_count(a, 0); // as a checkpoint without an average would leave it
    tg_tensor_set(x, 0, -2);
    cr_assert(tg_param_average_update(a));
    cr_assert_eq(tg_tensor_get(tg_param_average_at(a, 0), 0), -2);
    cr_assert_eq(tg_param_average_count(a), 1);
    tg_param_average_free(a);
    tg_params_free(p);
}

Test(param_average, starts_as_a_copy_and_swapping_twice_restores_every_bit) {
    tg_params *p = two_params(3);
    tg_param_average *a = tg_param_average_new(p, 0.99);
    size_t n;
    unsigned char *before = snapshot(p, NULL, &n), *avg0 = snapshot(p, a, &n);
    cr_assert(memcmp(before, avg0, n) == 0, "a new average is not a copy of the parameters");
    tg_rng rng;
    tg_rng_seed(&rng, 4);
    for (int step = 0; step < 3; step++) {
        for (int i = 0; i < 2; i++) tg_tensor_fill_uniform(tg_params_at(p, i), &rng, -1, 1);
        cr_assert(tg_param_average_update(a));
    }
    unsigned char *params = snapshot(p, NULL, &n), *avg = snapshot(p, a, &n);
    cr_assert(memcmp(params, avg, n) != 0);
    uint64_t version = tg_params_at(p, 0)->version;
    tg_param_average_swap(a);
    cr_assert(tg_param_average_swapped(a));
    cr_assert(tg_params_at(p, 0)->version != version, "a swap must mark the parameters changed");
    unsigned char *p1 = snapshot(p, NULL, &n), *a1 = snapshot(p, a, &n);
    cr_assert(memcmp(p1, avg, n) == 0 && memcmp(a1, params, n) == 0, "a swap does not exchange the values");
    tg_param_average_swap(a);
    cr_assert(!tg_param_average_swapped(a));
    unsigned char *p2 = snapshot(p, NULL, &n), *a2 = snapshot(p, a, &n);
    cr_assert(memcmp(p2, params, n) == 0 && memcmp(a2, avg, n) == 0, "two swaps do not restore the bits");
    free(before), free(avg0), free(params), free(avg), free(p1), free(a1), free(p2), free(a2);
    tg_param_average_free(a);
    tg_params_free(p);
}

// use(true) puts the averages in and use(false) the trained values back, each swapping only
// when they are not there already; NULL is no average.
Test(param_average, use_swaps_only_when_needed) {
    tg_params *p = two_params(5);
    tg_param_average *a = tg_param_average_new(p, 0.5);
    tg_rng rng;
    tg_rng_seed(&rng, 6);
    for (int i = 0; i < 2; i++) tg_tensor_fill_uniform(tg_params_at(p, i), &rng, -1, 1);
    cr_assert(tg_param_average_update(a));
    cr_assert(tg_param_average_update(a)); // the average is now unlike the parameters
    size_t n;
    unsigned char *trained = snapshot(p, NULL, &n), *averages = snapshot(p, a, &n);
    for (int twice = 0; twice < 2; twice++) {
        tg_param_average_use(a, true);
        unsigned char *now = snapshot(p, NULL, &n);
        cr_assert(tg_param_average_swapped(a) && memcmp(now, averages, n) == 0, "use(true), call %d", twice + 1);
        free(now);
    }
    for (int twice = 0; twice < 2; twice++) {
        tg_param_average_use(a, false);
        unsigned char *now = snapshot(p, NULL, &n);
        cr_assert(!tg_param_average_swapped(a) && memcmp(now, trained, n) == 0, "use(false), call %d", twice + 1);
        free(now);
    }
    tg_param_average_use(NULL, true);
    free(trained), free(averages);
    tg_param_average_free(a);
    tg_params_free(p);
}

// A graph that already used a weight (and memoised its transpose) sees the swapped values.
Test(param_average, a_graph_uses_the_swapped_values) {
    tg_params *p = tg_params_new();
    tg_tensor *w = tg_params_add(p, "w", TG_F64, tg_shape2(2, 3));
    double ones[] = {1, 1, 1, 1, 1, 1}, twos[] = {2, 2, 2, 2, 2, 2}, xs[] = {1, 2, 3};
    tg_tensor_copy_from(w, ones);
    tg_param_average *a = tg_param_average_new(p, 0.5);
    cr_assert(tg_param_average_update(a));
    tg_tensor_copy_from(w, twos); // the parameter 2, the average 1
    tg_graph *g = tg_graph_new();
    tg_tensor *x = tg_from_data(g, TG_F64, tg_shape2(1, 3), xs);
    cr_assert_eq(tg_tensor_get(tg_linear(g, x, w, NULL), 0), 12);
    tg_param_average_swap(a);
    cr_assert_eq(tg_tensor_get(tg_linear(g, x, w, NULL), 0), 6);
    tg_param_average_swap(a);
    cr_assert_eq(tg_tensor_get(tg_linear(g, x, w, NULL), 1), 12);
    tg_graph_free(g);
    tg_param_average_free(a);
    tg_params_free(p);
}

Test(param_average, bad_decay_null_parameters_and_updates_while_swapped_are_reported) {
    test_capture_errors();
    tg_params *p = two_params(5);
    double bad[] = {-0.1, 1, 1.5, NAN};
    for (int k = 0; k < 4; k++) {
        cr_assert_null(tg_param_average_new(p, bad[k]));
        cr_assert(strstr(test_error_message, "tg_param_average_new:") && strstr(test_error_message, "decay") &&
                      strstr(test_error_message, "[0, 1)"),
                  "%s", test_error_message);
    }
    cr_assert_null(tg_param_average_new(NULL, 0.9));
    cr_assert(strstr(test_error_message, "NULL"), "%s", test_error_message);
    tg_param_average *a = tg_param_average_new(p, 0.9);
    cr_assert(tg_param_average_update(a));
    tg_param_average_swap(a);
    size_t n;
    unsigned char *before = snapshot(p, a, &n);
    cr_assert(!tg_param_average_update(a));
    cr_assert(strstr(test_error_message, "tg_param_average_update:") && strstr(test_error_message, "swap"), "%s",
              test_error_message);
    unsigned char *after = snapshot(p, a, &n);
    cr_assert(memcmp(before, after, n) == 0 && tg_param_average_count(a) == 1, "a refused update changed the average");
    cr_assert_eq(test_error_count, 6);
    free(before), free(after);
    tg_param_average_free(a);
    tg_param_average_free(NULL);
    tg_params_free(p);
}
