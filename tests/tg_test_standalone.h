// tg_test_standalone.h: the few Criterion macros test_threads.c and test_gemm.c use, for the ThreadSanitizer
// build, where Criterion cannot start: its runner's shared arena (BoxFort) fails to map
// under TSan ("Could not initialize inheritable arena", Snaipe/Criterion#274). Test()
// registers a function; main runs them all in one process, in order, and the first failed
// assertion prints its condition and message and exits 1.
#ifndef TG_TEST_STANDALONE_H
#define TG_TEST_STANDALONE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct {
    const char *suite, *name;
    void (*fn)(void);
} tg_standalone_test;

static tg_standalone_test tg_standalone_tests[64];
static int tg_standalone_count;

#define Test(suite, name)                                                                                   \
    static void suite##_##name(void);                                                                       \
    __attribute__((constructor)) static void suite##_##name##_register(void) {                              \
        if (tg_standalone_count < 64)                                                                       \
            tg_standalone_tests[tg_standalone_count++] = (tg_standalone_test){#suite, #name, suite##_##name}; \
    }                                                                                                       \
    static void suite##_##name(void)

static inline void tg_standalone_check(bool ok, const char *file, int line, const char *cond, const char *fmt, ...) {
    if (ok) return;
    fprintf(stderr, "%s:%d: assertion failed: %s\n  ", file, line, cond);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    exit(1);
}

#define cr_assert(cond, ...) tg_standalone_check((cond), __FILE__, __LINE__, #cond, "" __VA_ARGS__)
#define cr_assert_null(x, ...) cr_assert((x) == NULL, "" __VA_ARGS__)
#define cr_assert_not_null(x, ...) cr_assert((x) != NULL, "" __VA_ARGS__)
#define cr_assert_eq(a, b, ...) cr_assert((a) == (b), "" __VA_ARGS__)
#define cr_assert_geq(a, b, ...) cr_assert((a) >= (b), "" __VA_ARGS__)

int main(void) {
    for (int i = 0; i < tg_standalone_count; i++) {
        const tg_standalone_test *t = &tg_standalone_tests[i];
        fprintf(stderr, "[RUN ] %s::%s\n", t->suite, t->name);
        t->fn();
        fprintf(stderr, "[PASS] %s::%s\n", t->suite, t->name);
    }
    fprintf(stderr, "%d tests passed\n", tg_standalone_count);
    return tg_standalone_count > 0 ? 0 : 1;
}

#endif
