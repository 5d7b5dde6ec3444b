// gradcheck.c: analytic gradients against central differences, in float64.
//
// A non-scalar output y is scalarised as L = sum(w * y) with fixed random weights w, not a
// plain sum: a backward that swaps or mirrors elements would pass a plain sum unnoticed.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_autodiff.h"
#include "tg_internal.h"
#include "tg_ops.h"

tg_gradcheck_opts tg_gradcheck_defaults(void) {
    tg_gradcheck_opts o = {1e-6, 1e-5, 1e-3, 0x5eed};
    return o;
}

static void say(char *report, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *report, size_t len, const char *fmt, ...) {
    if (!report || !len) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(report, len, fmt, ap);
    va_end(ap);
}

// sum(w * y) for the output of fn at the current values of the inputs.
static bool weighted_output(tg_graph *g, tg_graph_fn fn, void *ctx, const double *w, int64_t n_w, double *value) {
    tg_graph_reset(g);
    tg_graph_set_grad_enabled(g, false);
    tg_tensor *y = fn(g, ctx);
    tg_graph_set_grad_enabled(g, true);
    if (!y || y->dtype != TG_F64 || y->numel != n_w) return false;
    const double *v = y->data;
    double s = 0;
    for (int64_t i = 0; i < n_w; i++) s += w[i] * v[i];
    *value = s;
    return true;
}

bool tg_gradcheck(tg_graph_fn fn, void *ctx, tg_tensor *const *wrt, int n, const tg_gradcheck_opts *opts,
                  char *report, size_t len) {
    tg_gradcheck_opts o = opts ? *opts : tg_gradcheck_defaults();
    say(report, len, "passed");
    for (int i = 0; i < n; i++) {
        if (!wrt[i] || wrt[i]->dtype != TG_F64 || !wrt[i]->grad) {
            say(report, len, "gradcheck: input %d must be a float64 tensor with a gradient "
                             "(tg_tensor_create(TG_F64, shape, true))", i);
            return false;
        }
    }
    tg_graph *g = tg_graph_new();
    if (!g) return false;
    bool ok = false;
    double *w = NULL, *analytic = NULL;

    // Analytic gradients of sum(w * y).
    for (int i = 0; i < n; i++) tg_tensor_zero_grad(wrt[i]);
    tg_tensor *y = fn(g, ctx);
    if (!y || y->dtype != TG_F64) {
        say(report, len, "gradcheck: the function returned %s; it must return a float64 tensor",
            y ? tg_dtype_name(y->dtype) : "NULL");
        goto done;
    }
    int64_t n_w = y->numel;
    w = malloc((size_t)(n_w ? n_w : 1) * sizeof *w);
    if (!w) goto done;
    tg_rng rng;
    tg_rng_seed(&rng, o.seed);
    for (int64_t k = 0; k < n_w; k++) w[k] = tg_rng_normal(&rng);
    if (y->requires_grad && !tg_backward_seed(g, y, w)) goto done;

    int failures = 0;
    int64_t checked = 0;
    for (int i = 0; i < n; i++) {
        tg_tensor *x = wrt[i];
        free(analytic);
        analytic = malloc((size_t)(x->numel ? x->numel : 1) * sizeof *analytic);
        if (!analytic) goto done;
        memcpy(analytic, x->grad, (size_t)x->numel * sizeof *analytic);
        double *v = x->data;
        for (int64_t k = 0; k < x->numel; k++, checked++) {
            double saved = v[k], plus, minus;
            x->version++;
            v[k] = saved + o.eps;
            bool ok_plus = weighted_output(g, fn, ctx, w, n_w, &plus);
            x->version++;
            v[k] = saved - o.eps;
            bool ok_minus = weighted_output(g, fn, ctx, w, n_w, &minus);
            v[k] = saved;
            x->version++;
            if (!ok_plus || !ok_minus) {
                say(report, len, "gradcheck: the function failed or changed its output's shape when input %d "
                                 "was perturbed", i);
                goto done;
            }
            double numeric = (plus - minus) / (2 * o.eps);
            double diff = fabs(analytic[k] - numeric), tol = o.atol + o.rtol * fabs(numeric);
            if (!(diff <= tol)) { // also catches NaN
                if (failures++ == 0) {
                    char idx[96];
                    say(report, len, "gradcheck: input %d%s%s%s element %s: analytic %.10g, numeric %.10g, "
                                     "|difference| %.3g > tolerance %.3g",
                        i, x->name ? " (" : "", x->name ? x->name : "", x->name ? ")" : "",
                        tg_index_str(x->shape, k, idx, sizeof idx), analytic[k], numeric, diff, tol);
                }
            }
        }
    }
    if (failures > 0 && report && len) {
        size_t at = strlen(report);
        if (at < len) snprintf(report + at, len - at, " (%d of %lld elements failed)", failures, (long long)checked);
    }
    ok = failures == 0;
done:
    free(w);
    free(analytic);
    tg_graph_free(g);
    return ok;
}
