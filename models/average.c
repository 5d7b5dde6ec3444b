// average.c: an exponential moving average of the parameters (Polyak averaging), as
// torch.optim.swa_utils.AveragedModel keeps one with an EMA avg_fn.
//
// Like AveragedModel, the average starts as a copy of the parameters and its first update
// copies them again, so it never mixes in the values they had before training began; every
// later update is the plain, bias-free avg = decay*avg + (1 - decay)*param. (A warm-up of the
// decay, TensorFlow's min(decay, (1+n)/(10+n)), solves the same problem for averages that
// start at zero; starting from a copy has no such bias to correct.) Each element is computed
// in double and rounded once to its parameter's dtype, so a float32 average at decay 0.9999
// keeps the small (1 - decay) share of each update instead of losing it to float rounding.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tg_internal.h" // TG_DISPATCH
#include "tg_optim.h"

struct tg_param_average {
    double decay;
    int64_t updates;   // update() calls so far; the first copies
    bool swapped;      // the parameters hold the averages, avg[] the trained values
    int n;             // parameters
    tg_tensor **param; // [n], borrowed from the tg_params collection
    tg_tensor **avg;   // [n]: avg[i] has param[i]'s dtype and shape
};

void tg_param_average_free(tg_param_average *a) {
    if (!a) return;
    for (int i = 0; i < a->n; i++)
        if (a->avg) tg_tensor_free(a->avg[i]);
    free(a->avg);
    free(a->param);
    free(a);
}

tg_param_average *tg_param_average_new(tg_params *p, double decay) {
    if (!p) return tg_fail(NULL, "param_average_new", "parameters are NULL");
    if (!(decay >= 0 && decay < 1)) // NaN fails too
        return tg_fail(NULL, "param_average_new", "decay %g is not in [0, 1)", decay);
    tg_param_average *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->decay = decay;
    a->n = tg_params_count(p);
    a->param = calloc((size_t)a->n + 1, sizeof *a->param); // + 1: calloc(0) may return NULL
    a->avg = calloc((size_t)a->n + 1, sizeof *a->avg);
    if (!a->param || !a->avg) return tg_param_average_free(a), NULL;
    for (int i = 0; i < a->n; i++) {
        a->param[i] = tg_params_at(p, i);
        if (!(a->avg[i] = tg_tensor_create(a->param[i]->dtype, a->param[i]->shape, false)))
            return tg_param_average_free(a), NULL;
        tg_tensor_copy_from(a->avg[i], a->param[i]->data); // AveragedModel starts as a deep copy
        a->avg[i]->name = a->param[i]->name;
    }
    return a;
}

TG_VECTORIZE bool tg_param_average_update(tg_param_average *a) {
    if (a->swapped)
        return tg_fail(NULL, "param_average_update", "the averages are swapped into the parameters: swap them back "
                                                     "before averaging in a new step"),
               false;
    double keep = a->decay, take = 1 - a->decay;
    for (int i = 0; i < a->n; i++) {
        tg_tensor *avg = a->avg[i];
        if (a->updates == 0) {
            tg_tensor_copy_from(avg, a->param[i]->data);
            continue;
        }
        avg->version++;
        TG_DISPATCH(avg->dtype, {
            const T *p = a->param[i]->data; // param's shape
            T *v = avg->data;               // the same
            for (int64_t k = 0; k < avg->numel; k++) v[k] = (T)(keep * (double)v[k] + take * (double)p[k]);
        });
    }
    a->updates++;
    return true;
}

void tg_param_average_swap(tg_param_average *a) {
    for (int i = 0; i < a->n; i++) {
        tg_tensor *p = a->param[i], *avg = a->avg[i];
        size_t bytes = tg_dtype_size(p->dtype);
        unsigned char *x = p->data, *y = avg->data; // numel * bytes each, exchanged byte by byte: exact
        for (size_t k = 0; k < (size_t)p->numel * bytes; k++) {
            unsigned char t = x[k];
            x[k] = y[k];
            y[k] = t;
        }
        p->version++, avg->version++; // a graph's transposed copy of this weight is stale now
    }
    a->swapped = !a->swapped;
}

bool tg_param_average_swapped(const tg_param_average *a) { return a->swapped; }

void tg_param_average_use(tg_param_average *a, bool averages) {
    if (a && a->swapped != averages) tg_param_average_swap(a);
}
double tg_param_average_decay(const tg_param_average *a) { return a->decay; }
int64_t tg_param_average_count(const tg_param_average *a) { return a->updates; }

void tg_param_average_set_count(tg_param_average *a, int64_t updates) { a->updates = updates < 0 ? 0 : updates; }

int tg_param_average_size(const tg_param_average *a) { return a->n; }

tg_tensor *tg_param_average_at(const tg_param_average *a, int i) { return i >= 0 && i < a->n ? a->avg[i] : NULL; }
