// fuzz_check.h: CHECK, how a fuzzed entry point states a reader's promise (targets.c,
// checkpoint.c). A broken promise prints what broke and aborts.
#ifndef TG_FUZZ_CHECK_H
#define TG_FUZZ_CHECK_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noreturn, format(printf, 4, 5), unused)) static void broken(const char *file, int line, const char *cond,
                                                                   const char *fmt, ...) {
    fprintf(stderr, "tg-fuzz: %s:%d: broken promise (%s): ", file, line, cond);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    abort();
}

// CHECK(condition, "printf format", ...): aborts, saying what broke, when condition is false.
#define CHECK(cond, ...)                                                                                     \
    do {                                                                                                     \
        if (!(cond)) broken(__FILE__, __LINE__, #cond, __VA_ARGS__);                                        \
    } while (0)

// A message a reader left in a buffer of len bytes: present and NUL-terminated inside it.
#define CHECK_MESSAGE(buf, len) CHECK((buf)[0] && memchr((buf), 0, (len)), "a refusal without a proper message")

#endif
