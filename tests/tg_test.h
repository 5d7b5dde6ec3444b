// tg_test.h: helpers shared by the Criterion tests.
#ifndef TG_TEST_H
#define TG_TEST_H

#ifdef TG_TEST_STANDALONE
#include "tg_test_standalone.h"
#else
#include <criterion/criterion.h>
#endif
#include <math.h>
#include <string.h>

#include "tg_test_params.h"

#include "tapegrad.h"

// A float64 input with a gradient, filled with U(lo, hi) from a seeded generator.
static inline tg_tensor *test_input(tg_shape shape, uint64_t seed, double lo, double hi) {
    tg_tensor *t = tg_tensor_create(TG_F64, shape, true);
    tg_rng rng;
    tg_rng_seed(&rng, seed);
    tg_tensor_fill_uniform(t, &rng, lo, hi);
    return t;
}

// Runs tg_gradcheck with PyTorch's tolerances and fails the test with its report.
#define ASSERT_GRADCHECK(fn, ctx, wrt, n)                                                                    \
    do {                                                                                                     \
        char report_[1024];                                                                                  \
        bool ok_ = tg_gradcheck((fn), (ctx), (wrt), (n), NULL, report_, sizeof report_);                    \
        cr_assert(ok_, "%s", report_);                                                                       \
    } while (0)

// Asserts two doubles agree within atol + rtol*|expected|.
#define ASSERT_CLOSE(actual, expected, atol, rtol)                                                           \
    do {                                                                                                     \
        double a_ = (actual), e_ = (expected);                                                               \
        cr_assert(fabs(a_ - e_) <= (atol) + (rtol)*fabs(e_), "%s = %.17g, expected %.17g", #actual, a_, e_); \
    } while (0)

// An error handler that records the message and returns, so the op returns NULL and the
// test can inspect the message.
static char test_error_message[1024];
static int test_error_count;
static inline void test_capture_error(const char *message, void *user) {
    (void)user;
    snprintf(test_error_message, sizeof test_error_message, "%s", message);
    test_error_count++;
}
static inline void test_capture_errors(void) {
    test_error_message[0] = 0;
    test_error_count = 0;
    tg_set_error_handler(test_capture_error, NULL);
}

#endif
