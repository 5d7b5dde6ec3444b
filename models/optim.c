// optim.c: SGD, Adam and AdamW as torch.optim's single-tensor path computes them, closed-form
// learning-rate schedules, and gradient clipping.
//
// Each update below follows torch's operations in torch's order (mul_ then add_ with alpha,
// addcmul, addcdiv), with the scalars rounded to the parameter's dtype as torch rounds
// them, so float64 runs agree with PyTorch to rounding and float32 runs to float precision.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_internal.h" // TG_DISPATCH, TG_VECTORIZE: the update loops are kernels over tensor data, like ops
#include "tg_optim.h"

typedef enum { OPT_SGD, OPT_ADAM, OPT_ADAMW } opt_kind;

// State buffers per parameter, in state order, under torch's state_dict names.
static const char *const SGD_BUFFERS[] = {"momentum_buffer"};
static const char *const ADAM_BUFFERS[] = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};

struct tg_optim {
    opt_kind kind;
    double lr;
    tg_sgd_opts sgd;   // resolved options (kind OPT_SGD)
    tg_adam_opts adam; // resolved options (OPT_ADAM, OPT_ADAMW)
    int64_t steps;
    int n;             // parameters
    tg_tensor **param; // [n], borrowed from the tg_params collection
    int per;           // state tensors per parameter: 0 to 3
    tg_tensor **state; // [n*per]: state[i*per + j] is buffer j of param[i], same dtype and shape
    char **names;      // [n*per]: "optim.<param>.<buffer>"
};

// An option field: 0 means the default d, and TG_OPTIM_ZERO (negative zero) means 0.
static double opt_or(double v, double d) {
    if (v == 0) return signbit(v) ? 0.0 : d;
    return v;
}

// Frees what new_optim built so far (also the normal free path).
static void optim_destroy(tg_optim *o) {
    for (int i = 0; i < o->n * o->per; i++) {
        if (o->state) tg_tensor_free(o->state[i]);
        if (o->names) free(o->names[i]);
    }
    free(o->state);
    free(o->names);
    free(o->param);
    free(o);
}

// Allocates the optimizer and all its state, zero-filled (torch's zeros_like), once.
static tg_optim *new_optim(tg_params *p, opt_kind kind, double lr, int per, const char *const *buffers) {
    const char *op = kind == OPT_SGD ? "optim_sgd" : kind == OPT_ADAM ? "optim_adam" : "optim_adamw";
    if (!p) return tg_fail(NULL, op, "parameters are NULL");
    int n = tg_params_count(p); // all float: tg_params_add cannot make an int32 tensor with a gradient
    tg_optim *o = calloc(1, sizeof *o);
    if (!o) return NULL;
    o->kind = kind;
    o->lr = lr;
    o->n = n;
    o->per = per;
    size_t n_state = (size_t)n * (size_t)per + 1; // + 1: calloc(0) may return NULL
    o->param = calloc((size_t)n + 1, sizeof *o->param);
    o->state = calloc(n_state, sizeof *o->state);
    o->names = calloc(n_state, sizeof *o->names);
    if (!o->param || !o->state || !o->names) {
        optim_destroy(o);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        tg_tensor *t = tg_params_at(p, i);
        o->param[i] = t;
        for (int j = 0; j < per; j++) {
            size_t len = (size_t)snprintf(NULL, 0, "optim.%s.%s", t->name, buffers[j]) + 1;
            char *name = malloc(len);
            tg_tensor *s = tg_tensor_create(t->dtype, t->shape, false);
            o->names[i * per + j] = name;
            o->state[i * per + j] = s;
            if (!name || !s) {
                optim_destroy(o);
                return NULL;
            }
            snprintf(name, len, "optim.%s.%s", t->name, buffers[j]);
            s->name = name;
        }
    }
    return o;
}

tg_optim *tg_optim_sgd(tg_params *p, tg_sgd_opts opts) {
    if (opts.lr == 0 && !signbit(opts.lr))
        return tg_fail(NULL, "optim_sgd", "lr is required (torch.optim.SGD has no default); TG_OPTIM_ZERO for 0");
    if (opts.lr < 0 || opts.momentum < 0 || opts.weight_decay < 0 || isnan(opts.lr + opts.momentum + opts.weight_decay))
        return tg_fail(NULL, "optim_sgd", "lr %g, momentum %g, weight_decay %g: all must be >= 0", opts.lr,
                       opts.momentum, opts.weight_decay);
    if (opts.nesterov && (opts.momentum <= 0 || opts.dampening != 0))
        return tg_fail(NULL, "optim_sgd", "nesterov needs momentum > 0 and dampening 0 (momentum %g, dampening %g)",
                       opts.momentum, opts.dampening);
    // Negative zeros become plain zeros so the kernel's "!= 0" tests read naturally.
    opts.lr = opt_or(opts.lr, 0);
    opts.momentum = opt_or(opts.momentum, 0);
    opts.dampening = opt_or(opts.dampening, 0);
    opts.weight_decay = opt_or(opts.weight_decay, 0);
    tg_optim *o = new_optim(p, OPT_SGD, opts.lr, opts.momentum != 0 ? 1 : 0, SGD_BUFFERS);
    if (o) o->sgd = opts;
    return o;
}

// Resolves Adam/AdamW defaults and checks them as torch's constructors do.
static tg_optim *new_adam(tg_params *p, tg_adam_opts opts, opt_kind kind) {
    const char *op = kind == OPT_ADAM ? "optim_adam" : "optim_adamw";
    opts.lr = opt_or(opts.lr, 1e-3);
    opts.beta1 = opt_or(opts.beta1, 0.9);
    opts.beta2 = opt_or(opts.beta2, 0.999);
    opts.eps = opt_or(opts.eps, 1e-8);
    opts.weight_decay = opt_or(opts.weight_decay, kind == OPT_ADAMW ? 1e-2 : 0);
    if (!(opts.lr >= 0 && opts.eps >= 0 && opts.weight_decay >= 0))
        return tg_fail(NULL, op, "lr %g, eps %g, weight_decay %g: all must be >= 0", opts.lr, opts.eps,
                       opts.weight_decay);
    if (!(opts.beta1 >= 0 && opts.beta1 < 1 && opts.beta2 >= 0 && opts.beta2 < 1))
        return tg_fail(NULL, op, "betas (%g, %g): each must be in [0, 1)", opts.beta1, opts.beta2);
    tg_optim *o = new_optim(p, kind, opts.lr, opts.amsgrad ? 3 : 2, ADAM_BUFFERS);
    if (o) o->adam = opts;
    return o;
}

tg_optim *tg_optim_adam(tg_params *p, tg_adam_opts opts) { return new_adam(p, opts, OPT_ADAM); }
tg_optim *tg_optim_adamw(tg_params *p, tg_adam_opts opts) { return new_adam(p, opts, OPT_ADAMW); }

void tg_optim_free(tg_optim *o) {
    if (o) optim_destroy(o);
}

// torch's _single_tensor_sgd for one parameter; buf is NULL without momentum.
TG_VECTORIZE static void sgd_update(const tg_optim *o, tg_tensor *t, tg_tensor *buf_t) {
    const tg_sgd_opts *s = &o->sgd;
    bool first = o->steps == 0; // torch: the buffer is None until the first step clones d_p
    TG_DISPATCH(t->dtype, {
        T *p = t->data;                       // (numel)
        const T *g = t->grad;                 // (numel)
        T *buf = buf_t ? buf_t->data : NULL;  // (numel) momentum_buffer
        const T wd = (T)s->weight_decay, mom = (T)s->momentum, damp1 = (T)(1 - s->dampening), neg_lr = (T)-o->lr;
        for (int64_t i = 0; i < t->numel; i++) {
            T d = g[i];
            if (s->weight_decay != 0) d = d + wd * p[i];
            if (buf) {
                buf[i] = first ? d : buf[i] * mom + damp1 * d;
                d = s->nesterov ? d + mom * buf[i] : buf[i];
            }
            p[i] = p[i] + neg_lr * d;
        }
    });
}

// adam_update's loop over one parameter's elements, written once for each combination of
// the flags with the flags constant, so that the compiler drops the branches and vectorises.
#define ADAM_LOOP(COUPLED, AMSGRAD)                                                                         \
    for (int64_t i = 0; i < t->numel; i++) {                                                                \
        T gi = g[i];                                                                                        \
        if (COUPLED) gi = gi + wd * p[i];                                                                   \
        m[i] = m[i] * b1 + one_b1 * gi;                                                                     \
        v[i] = v[i] * b2 + one_b2 * gi * gi;                                                                \
        T vi = v[i];                                                                                        \
        if (AMSGRAD) { /* torch.maximum propagates NaN (from either side), so it is not dropped here */    \
            vmax[i] = vmax[i] > vi || vmax[i] != vmax[i] ? vmax[i] : vi;                                     \
            vi = vmax[i];                                                                                   \
        }                                                                                                   \
        T denom = (T)sqrt((double)vi) / bc2s + eps; /* sqrt in double rounds to the same float as sqrtf */ \
        p[i] = p[i] + neg_step * m[i] / denom;                                                              \
    }

// torch's _single_tensor_adam / _single_tensor_adamw (capturable=False) for one parameter
// at step number `step` (1 on the first step); st holds exp_avg, exp_avg_sq[, max_exp_avg_sq].
TG_VECTORIZE static void adam_update(const tg_optim *o, tg_tensor *t, tg_tensor *const *st, int64_t step) {
    const tg_adam_opts *a = &o->adam;
    // Scalars in double, as Python computes them; the kernel rounds them to T as torch does.
    const double bc1 = 1 - pow(a->beta1, (double)step), bc2 = 1 - pow(a->beta2, (double)step);
    const double step_size = o->lr / bc1, bc2_sqrt = sqrt(bc2);
    const bool coupled_wd = o->kind == OPT_ADAM && a->weight_decay != 0, decoupled = o->kind == OPT_ADAMW;
    TG_DISPATCH(t->dtype, {
        T *p = t->data;                                     // (numel)
        const T *g = t->grad;                               // (numel)
        T *m = st[0]->data, *v = st[1]->data;               // (numel) exp_avg, exp_avg_sq
        T *vmax = a->amsgrad ? st[2]->data : NULL;          // (numel) max_exp_avg_sq
        const T b1 = (T)a->beta1, one_b1 = (T)(1 - a->beta1), b2 = (T)a->beta2, one_b2 = (T)(1 - a->beta2);
        const T wd = (T)a->weight_decay, decay = (T)(1 - o->lr * a->weight_decay);
        const T eps = (T)a->eps, bc2s = (T)bc2_sqrt, neg_step = (T)-step_size;
        if (decoupled) // AdamW decays before anything else reads p
            for (int64_t i = 0; i < t->numel; i++) p[i] = p[i] * decay;
        if (coupled_wd && vmax) ADAM_LOOP(true, true)
        else if (coupled_wd) ADAM_LOOP(true, false)
        else if (vmax) ADAM_LOOP(false, true)
        else ADAM_LOOP(false, false)
    });
}

void tg_optim_step(tg_optim *o) {
    int64_t step = o->steps + 1;
    for (int i = 0; i < o->n; i++) {
        tg_tensor *t = o->param[i];
        if (!t->grad) continue; // torch skips parameters whose grad is None
        tg_tensor *const *st = o->state + (size_t)i * (size_t)o->per;
        t->version++; // a graph's transposed copy of this weight is stale now
        if (o->kind == OPT_SGD) sgd_update(o, t, o->per ? st[0] : NULL);
        else adam_update(o, t, st, step);
    }
    o->steps = step;
}

void tg_optim_zero_grad(tg_optim *o) {
    for (int i = 0; i < o->n; i++) tg_tensor_zero_grad(o->param[i]);
}

double tg_optim_lr(const tg_optim *o) { return o->lr; }
void tg_optim_set_lr(tg_optim *o, double lr) { o->lr = lr; }
int64_t tg_optim_step_count(const tg_optim *o) { return o->steps; }
void tg_optim_set_step_count(tg_optim *o, int64_t steps) { o->steps = steps < 0 ? 0 : steps; }
int tg_optim_state_count(const tg_optim *o) { return o->n * o->per; }

tg_tensor *tg_optim_state_at(const tg_optim *o, int i, const char **name) {
    if (i < 0 || i >= o->n * o->per) return NULL;
    if (name) *name = o->names[i];
    return o->state[i];
}

tg_tensor *tg_optim_state_find(const tg_optim *o, const char *name) {
    for (int i = 0; i < o->n * o->per; i++)
        if (strcmp(o->names[i], name) == 0) return o->state[i];
    return NULL;
}

// --- Schedules ---

static const double PI = 3.14159265358979323846; // Python's math.pi (M_PI is not C11)

double tg_lr_at(const tg_lr_schedule *s, double base_lr, int64_t epoch) {
    if (!s) return tg_fail(NULL, "lr_at", "schedule is NULL"), NAN;
    if (epoch < 0) return tg_fail(NULL, "lr_at", "epoch %lld; epochs start at 0", (long long)epoch), NAN;
    switch (s->kind) {
    case TG_LR_CONSTANT: return base_lr;
    case TG_LR_STEP: {
        if (s->step_size <= 0)
            return tg_fail(NULL, "lr_at", "StepLR needs step_size > 0, got %lld", (long long)s->step_size), NAN;
        return base_lr * pow(opt_or(s->gamma, 0.1), (double)(epoch / s->step_size));
    }
    case TG_LR_EXPONENTIAL:
        if (s->gamma == 0 && !signbit(s->gamma))
            return tg_fail(NULL, "lr_at", "ExponentialLR needs gamma (torch has no default)"), NAN;
        return base_lr * pow(opt_or(s->gamma, 0), (double)epoch);
    case TG_LR_COSINE: {
        if (s->t_max <= 0)
            return tg_fail(NULL, "lr_at", "CosineAnnealingLR needs t_max > 0, got %lld", (long long)s->t_max), NAN;
        double eta_min = s->eta_min;
        return eta_min + (base_lr - eta_min) * (1 + cos(PI * (double)epoch / (double)s->t_max)) / 2;
    }
    case TG_LR_LINEAR: {
        double start = opt_or(s->start_factor, 1.0 / 3), end = opt_or(s->end_factor, 1.0);
        int64_t total = s->total_iters ? s->total_iters : 5;
        if (!(start >= 0 && start <= 1 && end >= 0 && end <= 1) || total < 0)
            return tg_fail(NULL, "lr_at", "LinearLR needs factors in [0, 1] and total_iters >= 0 (%g, %g, %lld)", start,
                           end, (long long)total),
                   NAN;
        return base_lr * (start + (end - start) * (double)(epoch < total ? epoch : total) / (double)total);
    }
    }
    return tg_fail(NULL, "lr_at", "unknown schedule kind %d", (int)s->kind), NAN;
}

// --- Clipping ---

// The sum of the squares of g [n] in double, in 8 running sums (one a lane of an AVX-512
// register) added in a fixed order at the end: the same bits on every machine, and 8 times
// fewer dependent additions than one running sum.
#define SQUARES(T)                                                                                                     \
    TG_VECTORIZE static double sum_squares_##T(const T *g, int64_t n) {                                              \
        double lane[8] = {0}, sum = 0;                                                                                 \
        int64_t i = 0;                                                                                                 \
        for (; i + 8 <= n; i += 8)                                                                                     \
            for (int l = 0; l < 8; l++) lane[l] += (double)g[i + l] * (double)g[i + l];                                \
        for (; i < n; i++) sum += (double)g[i] * (double)g[i];                                                         \
        for (int l = 0; l < 8; l++) sum += lane[l];                                                                    \
        return sum;                                                                                                    \
    }
SQUARES(float)
SQUARES(double)

double tg_clip_grad_norm(tg_params *p, double max_norm) {
    // Sum of squares in double over every gradient, whatever its dtype: the norm of the
    // concatenation, which is torch's norm of the per-tensor norms.
    double sq = 0;
    for (int k = 0; k < tg_params_count(p); k++) {
        tg_tensor *t = tg_params_at(p, k);
        if (!t->grad) continue;
        sq += t->dtype == TG_F32 ? sum_squares_float(t->grad, t->numel) : sum_squares_double(t->grad, t->numel);
    }
    double total = sqrt(sq);
    double coef = max_norm / (total + 1e-6);
    // torch multiplies by min(coef, 1) without a branch, so a NaN norm makes every gradient
    // NaN; "not >= 1" keeps that, and a bad gradient does not pass unnoticed.
    if (!(coef >= 1)) {
        for (int k = 0; k < tg_params_count(p); k++) {
            tg_tensor *t = tg_params_at(p, k);
            if (!t->grad) continue;
            TG_DISPATCH(t->dtype, {
                T *g = t->grad; // (numel)
                const T c = (T)coef;
                for (int64_t i = 0; i < t->numel; i++) g[i] = g[i] * c;
            });
        }
    }
    return total;
}

void tg_clip_grad_value(tg_params *p, double clip) {
    for (int k = 0; k < tg_params_count(p); k++) {
        tg_tensor *t = tg_params_at(p, k);
        if (!t->grad) continue;
        TG_DISPATCH(t->dtype, {
            T *g = t->grad; // (numel)
            const T hi = (T)clip, lo = (T)-clip;
            // Comparisons, not fmin/fmax, which would turn a NaN into the bound.
            for (int64_t i = 0; i < t->numel; i++) g[i] = g[i] > hi ? hi : g[i] < lo ? lo : g[i];
        });
    }
}
