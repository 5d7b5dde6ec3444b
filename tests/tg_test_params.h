// tg_test_params.h: comparing two parameter sets, for the Criterion tests and the
// plain-C MPI test alike (no Criterion here).
#ifndef TG_TEST_PARAMS_H
#define TG_TEST_PARAMS_H

#include <math.h>

#include "tapegrad.h"

// max |a - b| / max |b| over each parameter: the relative error of the tensor as a whole,
// the largest over all parameters (a and b hold the same parameters in the same order).
static inline double test_params_max_relative_error(const tg_params *a, const tg_params *b) {
    double worst = 0;
    for (int i = 0; i < tg_params_count(b); i++) {
        const tg_tensor *x = tg_params_at(a, i), *y = tg_params_at(b, i);
        double diff = 0, scale = 0;
        for (int64_t e = 0; e < y->numel; e++) {
            diff = fmax(diff, fabs(tg_tensor_get(x, e) - tg_tensor_get(y, e)));
            scale = fmax(scale, fabs(tg_tensor_get(y, e)));
        }
        worst = fmax(worst, scale > 0 ? diff / scale : diff);
    }
    return worst;
}

#endif
