// tg_runtime.h: threads and the matrix-multiply backend (BLIS).
//
// When it is loaded tapegrad configures BLIS itself: on a CPU with AVX-512 that BLIS does not
// recognise (its generic kernels are about 6x slower there) it selects the AVX-512 "skx"
// kernels, unless the user has set BLIS_ARCH_TYPE. Nothing needs to be set by hand.
#ifndef TG_RUNTIME_H
#define TG_RUNTIME_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Sets the number of threads that share each large matrix product (default 1): tapegrad's
// own workers for float32, BLIS's for float64. Process-wide: set it before starting threads
// that run graphs, not while they run.
void tg_set_num_threads(int n);
// The number of threads set by tg_set_num_threads.
int tg_num_threads(void);
// The BLIS kernel set in use, e.g. "skx" or "zen3"; "generic" means the slow fallback.
const char *tg_blas_arch(void);
// BLIS's version string.
const char *tg_blas_version(void);
// Floating-point operations (2*m*n*k each) of all matrix products so far, from any thread
// that called them; for measuring how close a training step gets to the GEMM rate.
uint64_t tg_blas_flop_count(void);

#ifdef __cplusplus
}
#endif
#endif
