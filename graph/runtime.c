// runtime.c: BLIS, chosen and checked in code.
//
// Debian's BLIS 0.9 does not recognise recent AMD CPUs (Zen 4, Zen 5) and falls back to its
// generic kernels, about 6x slower than its AVX-512 "skx" kernels on the same machine. BLIS
// reads BLIS_ARCH_TYPE once, when it initialises, so we set it (unless the user has) when the
// library loads, and at our first BLIS call ask BLIS which kernels it took and warn if they
// are generic.
#include <blis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "tg_internal.h"
#include "tg_runtime.h"

static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
static const char *blas_arch = "unknown";
static _Atomic int num_threads = 1; // read by any thread; set before threads start (see tg_runtime.h)

static bool cpu_has_avx512(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
#else
    return false;
#endif
}

// BLIS 0.9 has no call that selects its kernels (bli_arch_set_id takes no argument and
// reads the environment), so the environment it is. setenv is not thread-safe against any
// other thread's getenv, so it runs here, once, when the library is loaded: constructors
// run before main, where no thread of the program exists yet, and before BLIS can have
// initialised on our behalf. (A program that starts threads from its own constructors and
// calls getenv in them is the one case left; none of ours does.)
//
// BLIS 0.9 reads the variable as an integer, the index of the kernel set in its arch_t enum
// (a name such as "haswell" parses as 0, which is BLIS_ARCH_SKX): so we write the number.
__attribute__((constructor)) static void choose_blis_arch(void) {
    char id[16];
    snprintf(id, sizeof id, "%d", (int)BLIS_ARCH_SKX);
    if (!getenv("BLIS_ARCH_TYPE") && cpu_has_avx512()) setenv("BLIS_ARCH_TYPE", id, 0);
}

static void blas_init(void) {
    tg_gemm_f32_init();
    bli_init();
    arch_t id = bli_arch_query_id();
    blas_arch = bli_arch_string(id);
    if (id == BLIS_ARCH_GENERIC && !getenv("TG_QUIET"))
        fprintf(stderr, "tapegrad: BLIS is using its slow generic kernels on this CPU "
                        "(was BLIS initialised before tapegrad, or BLIS_ARCH_TYPE set?)\n");
    bli_thread_set_num_threads(num_threads);
}

void tg_blas_ensure_init(void) { pthread_once(&blas_once, blas_init); }

void tg_set_num_threads(int n) {
    tg_blas_ensure_init();
    num_threads = n < 1 ? 1 : n;
    bli_thread_set_num_threads(num_threads); // float64 products: BLIS splits them
    tg_pool_resize(num_threads);             // float32 products: tg_gemm splits them
}

int tg_num_threads(void) { return num_threads; }

const char *tg_blas_arch(void) {
    tg_blas_ensure_init();
    return blas_arch;
}

const char *tg_blas_version(void) {
    tg_blas_ensure_init();
    return bli_info_get_version_str();
}
