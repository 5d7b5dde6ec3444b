// loss.c: cross_entropy (with or without label smoothing), nll_loss, mse_loss and
// bce_with_logits, each reduced by MEAN, SUM or NONE.
//
// Each loss is made of terms, one per row for cross_entropy and nll_loss (rows of [N, C]
// against class ids [N]) and one per element for mse_loss. The reduction turns the terms
// into the output: NONE keeps them, SUM adds them, MEAN divides their sum by the number of
// terms that count. A row whose target is ignore_index gives a term of 0 and does not
// count, so MEAN averages over the other rows as PyTorch does; with every row ignored it
// is 0/0 = NaN, as in PyTorch, and the gradient is 0.
//
// cross_entropy is one fused op rather than nll_loss(log_softmax(x)): it saves per row
// the max and log(sum exp(x - max)), from which log_softmax(x) = (x - max) - log_sum is
// exact, so the forward writes no [N, C] buffer. Its backward is
//   gx[r, c] += w_r * (softmax(x)[r, c] - [c == target_r]),
// w_r being d output / d term r (gy[r] for NONE, gy for SUM, gy/count for MEAN).
#include <math.h>

#include "tg_internal.h"
#include "tg_ops.h"


// --- Shared by the three losses ---

static bool check_reduction(tg_graph *g, const char *op, tg_reduction reduction) {
    if (reduction == TG_REDUCE_MEAN || reduction == TG_REDUCE_SUM || reduction == TG_REDUCE_NONE) return true;
    tg_fail(g, op, "reduction %d is not TG_REDUCE_MEAN, TG_REDUCE_SUM or TG_REDUCE_NONE", (int)reduction);
    return false;
}

// Checks x [N, C] (role: "logits", "log_probs") against int32 targets [N] whose values are
// classes 0 .. C-1 or ignore_index.
static bool check_class_targets(tg_graph *g, const char *op, const char *role, const tg_tensor *x,
                                const tg_tensor *targets, int ignore_index) {
    if (!tg_check_float(g, op, 1, x) || !tg_check_i32(g, op, targets, "targets")) return false;
    if (x->shape.n != 2 || targets->shape.n != 1 || targets->shape.d[0] != x->shape.d[0]) {
        char sx[64], st[64];
        tg_fail(g, op, "%s %s and targets %s: takes %s [N, C] and targets [N]", role,
                tg_shape_str(x->shape, sx, sizeof sx), tg_shape_str(targets->shape, st, sizeof st), role);
        return false;
    }
    int64_t rows = x->shape.d[0], classes = x->shape.d[1];
    const int32_t *t = targets->data; // [N]
    for (int64_t r = 0; r < rows; r++)
        if (t[r] != ignore_index && (t[r] < 0 || t[r] >= classes)) {
            tg_fail(g, op, "target %d in row %lld is out of range for C = %lld classes (a target is 0 to C-1, "
                           "or ignore_index %d)", (int)t[r], (long long)r, (long long)classes, ignore_index);
            return false;
        }
    return true;
}

// The loss output from its terms [m]: NONE gives the terms, shaped none_shape; SUM their
// sum; MEAN their sum over count, the number of terms that count (NaN when none does).
static tg_tensor *reduce_terms(tg_graph *g, tg_dtype dtype, const double *terms, int64_t m, tg_shape none_shape,
                               tg_reduction reduction, int64_t count) {
    tg_tensor *y = tg_new_tensor(g, dtype, reduction == TG_REDUCE_NONE ? none_shape : tg_shape0());
    TG_DISPATCH(dtype, {
        T *yv = y->data;
        if (reduction == TG_REDUCE_NONE) {
            for (int64_t k = 0; k < m; k++) yv[k] = (T)terms[k];
        } else {
            double s = 0;
            for (int64_t k = 0; k < m; k++) s += terms[k];
            yv[0] = (T)(reduction == TG_REDUCE_SUM ? s : count ? s / (double)count : NAN);
        }
    });
    return y;
}

// How a loss reduced its terms; the first field of every loss's state.
typedef struct {
    tg_reduction reduction;
    int64_t count; // the terms that count (MEAN divides by it)
} loss_reduction;

// d output / d term is gy[k] for NONE, and this value, the same for every term, for SUM
// and MEAN.
static double shared_term_grad(const tg_node *n, const loss_reduction *r) {
    const tg_tensor *y = n->out;
    if (r->reduction == TG_REDUCE_NONE) return 0;
    double gy = y->dtype == TG_F32 ? ((const float *)y->grad)[0] : ((const double *)y->grad)[0];
    if (r->reduction == TG_REDUCE_SUM) return gy;
    return r->count > 0 ? gy / (double)r->count : 0;
}

// --- cross_entropy: logits [N, C], targets [N], label smoothing eps ---
// With eps > 0 a row's term is PyTorch's label_smoothing one,
//   (1 - eps) (-log p[t]) + eps mean_c(-log p[c]),  mean_c(-log p[c]) = max + log_sum - mean_c(x),
// and its backward puts (1 - eps) on the target and eps/C on every class:
//   gx[r, c] += w_r * (softmax(x)[r, c] - eps/C - (1 - eps) [c == target_r]).
// eps = 0 takes the plain path, so tg_cross_entropy's bits do not depend on the smoothing.

typedef struct {
    loss_reduction r;
    int ignore_index;
    double eps;          // label smoothing, in [0, 1)
    const double *stats; // [N, 2]: max and log_sum of each row
} cross_entropy_state;

TG_VECTORIZE static void cross_entropy_backward(tg_graph *g, tg_node *n) {
    (void)g;
    tg_tensor *x = n->in[0], *targets = n->in[1], *y = n->out;
    if (!x->grad) return;
    const cross_entropy_state *s = TG_STATE(n, cross_entropy_state);
    int64_t rows = x->shape.d[0], classes = x->shape.d[1];
    const double *stats = s->stats; // [N, 2]: max and log_sum of each row
    const int32_t *t = targets->data;
    int ignore_index = s->ignore_index;
    bool each = s->r.reduction == TG_REDUCE_NONE, smoothed = s->eps > 0;
    TG_DISPATCH(x->dtype, {
        const T *xv = x->data, *gy = y->grad; // [N, C]; [N] or []
        T *gx = x->grad;                      // [N, C]
        T w_all = (T)shared_term_grad(n, &s->r), spread = (T)(s->eps / (double)classes), on = (T)(1 - s->eps);
        for (int64_t r = 0; r < rows; r++) {
            if (t[r] == ignore_index) continue;
            T w = each ? gy[r] : w_all, max = (T)stats[2 * r], log_sum = (T)stats[2 * r + 1];
            const T *row = xv + r * classes;
            T *grow = gx + r * classes;
            if (smoothed) {
                for (int64_t c = 0; c < classes; c++) grow[c] += w * ((T)TG_EXP((row[c] - max) - log_sum) - spread);
                grow[t[r]] -= w * on;
                continue;
            }
            for (int64_t c = 0; c < classes; c++) grow[c] += w * (T)TG_EXP((row[c] - max) - log_sum);
            grow[t[r]] -= w;
        }
    });
}

static const tg_op CROSS_ENTROPY_OP = {.name = "cross_entropy", .backward = cross_entropy_backward};

// The loss terms [N] of logits [N, C] (see the top of the file), each row's max and log_sum
// into stats [N, 2]; returns how many rows count.
TG_VECTORIZE static int64_t cross_entropy_terms(const tg_tensor *logits, const int32_t *t, int ignore_index,
                                                double eps, double *stats, double *terms) {
    int64_t rows = logits->shape.d[0], classes = logits->shape.d[1], count = 0;
    TG_DISPATCH(logits->dtype, {
        const T *xv = logits->data; // [N, C]
        for (int64_t r = 0; r < rows; r++) {
            stats[2 * r] = stats[2 * r + 1] = terms[r] = 0;
            if (t[r] == ignore_index) continue; // padding rows cost nothing
            const T *row = xv + r * classes;
            T max = row[0];
            for (int64_t c = 1; c < classes; c++) max = row[c] > max ? row[c] : max;
            double lane[8] = {0}, s = 0; // 8 partial sums, so the loop vectorises
            int64_t c = 0;
            for (; c + 8 <= classes; c += 8)
                for (int l = 0; l < 8; l++) lane[l] += TG_EXP((T)(row[c + l] - max));
            for (; c < classes; c++) s += TG_EXP((T)(row[c] - max));
            for (int l = 0; l < 8; l++) s += lane[l];
            stats[2 * r] = max;
            stats[2 * r + 1] = log(s);
            terms[r] = ((double)max - (double)row[t[r]]) + log(s); // -log_softmax(x)[r, t]
            if (eps > 0) {
                double sum_x = 0;
                for (int64_t k = 0; k < classes; k++) sum_x += (double)row[k];
                double uniform = ((double)max - sum_x / (double)classes) + log(s); // mean_c -log_softmax(x)[r, c]
                terms[r] = (1 - eps) * terms[r] + eps * uniform;
            }
            count++;
        }
    });
    return count;
}

// Both entry points: op names the function the caller called, for its errors.
static tg_tensor *cross_entropy(tg_graph *g, const char *op, tg_tensor *logits, tg_tensor *targets,
                                tg_reduction reduction, int ignore_index, double eps) {
    if (!check_class_targets(g, op, "logits", logits, targets, ignore_index) || !check_reduction(g, op, reduction))
        return NULL;
    if (!(eps >= 0 && eps < 1)) // NaN fails too
        return tg_fail(g, op, "label_smoothing %g is not in [0, 1)", eps);
    int64_t rows = logits->shape.d[0];
    double *stats = tg_arena_alloc(g, (size_t)(2 * rows) * sizeof *stats); // [N, 2]: max, log_sum
    double *terms = tg_arena_alloc(g, (size_t)rows * sizeof *terms);       // [N]
    int64_t count = cross_entropy_terms(logits, targets->data, ignore_index, eps, stats, terms);
    tg_tensor *y = reduce_terms(g, logits->dtype, terms, rows, tg_shape1(rows), reduction, count);
    tg_node *n = tg_record(g, &CROSS_ENTROPY_OP, y, 2, logits, targets);
    TG_SAVE(g, n, cross_entropy_state,
            {.r = {reduction, count}, .ignore_index = ignore_index, .eps = eps, .stats = stats});
    return y;
}

tg_tensor *(tg_cross_entropy)(tg_graph *g, tg_tensor *logits, tg_tensor *targets, tg_reduction reduction,
                              int ignore_index) {
    return cross_entropy(g, "cross_entropy", logits, targets, reduction, ignore_index, 0);
}

tg_tensor *(tg_cross_entropy_smoothed)(tg_graph *g, tg_tensor *logits, tg_tensor *targets, tg_reduction reduction,
                                       int ignore_index, double label_smoothing) {
    return cross_entropy(g, "cross_entropy_smoothed", logits, targets, reduction, ignore_index, label_smoothing);
}

// --- nll_loss: log_probs [N, C], targets [N] ---

typedef struct {
    loss_reduction r;
    int ignore_index;
} nll_loss_state;

static void nll_loss_backward(tg_graph *g, tg_node *n) {
    (void)g;
    tg_tensor *x = n->in[0], *targets = n->in[1], *y = n->out;
    if (!x->grad) return;
    const nll_loss_state *s = TG_STATE(n, nll_loss_state);
    int64_t rows = x->shape.d[0], classes = x->shape.d[1];
    const int32_t *t = targets->data;
    int ignore_index = s->ignore_index;
    bool each = s->r.reduction == TG_REDUCE_NONE;
    TG_DISPATCH(x->dtype, {
        const T *gy = y->grad; // [N] or []
        T *gx = x->grad;       // [N, C]
        T w_all = (T)shared_term_grad(n, &s->r);
        for (int64_t r = 0; r < rows; r++)
            if (t[r] != ignore_index) gx[r * classes + t[r]] -= each ? gy[r] : w_all;
    });
}

static const tg_op NLL_LOSS_OP = {.name = "nll_loss", .backward = nll_loss_backward};

tg_tensor *(tg_nll_loss)(tg_graph *g, tg_tensor *log_probs, tg_tensor *targets, tg_reduction reduction,
                         int ignore_index) {
    if (!check_class_targets(g, "nll_loss", "log_probs", log_probs, targets, ignore_index) ||
        !check_reduction(g, "nll_loss", reduction))
        return NULL;
    int64_t rows = log_probs->shape.d[0], classes = log_probs->shape.d[1], count = 0;
    const int32_t *t = targets->data;
    double *terms = tg_arena_alloc(g, (size_t)rows * sizeof *terms); // [N]
    TG_DISPATCH(log_probs->dtype, {
        const T *xv = log_probs->data; // [N, C]
        for (int64_t r = 0; r < rows; r++) {
            terms[r] = t[r] == ignore_index ? 0 : -(double)xv[r * classes + t[r]];
            count += t[r] != ignore_index;
        }
    });
    tg_tensor *y = reduce_terms(g, log_probs->dtype, terms, rows, tg_shape1(rows), reduction, count);
    tg_node *n = tg_record(g, &NLL_LOSS_OP, y, 2, log_probs, targets);
    TG_SAVE(g, n, nll_loss_state, {.r = {reduction, count}, .ignore_index = ignore_index});
    return y;
}

// --- mse_loss: (input - target)^2, both of one shape ---

typedef struct {
    loss_reduction r;
} mse_loss_state;

TG_VECTORIZE static void mse_loss_backward(tg_graph *g, tg_node *n) {
    (void)g;
    tg_tensor *x = n->in[0], *target = n->in[1], *y = n->out;
    const mse_loss_state *s = TG_STATE(n, mse_loss_state);
    bool each = s->r.reduction == TG_REDUCE_NONE;
    TG_DISPATCH(x->dtype, {
        const T *xv = x->data, *tv = target->data, *gy = y->grad; // gy: x's shape, or []
        T *gx = x->grad, *gt = target->grad;
        T w_all = (T)shared_term_grad(n, &s->r);
        for (int64_t k = 0; k < x->numel; k++) {
            T d = 2 * (each ? gy[k] : w_all) * (xv[k] - tv[k]);
            if (gx) gx[k] += d;
            if (gt) gt[k] -= d;
        }
    });
}

static const tg_op MSE_LOSS_OP = {.name = "mse_loss", .backward = mse_loss_backward};

tg_tensor *(tg_mse_loss)(tg_graph *g, tg_tensor *input, tg_tensor *target, tg_reduction reduction) {
    if (!tg_check_float(g, "mse_loss", 2, input, target) || !check_reduction(g, "mse_loss", reduction)) return NULL;
    if (!tg_shape_equal(input->shape, target->shape)) {
        char si[64], st[64];
        return tg_fail(g, "mse_loss", "input %s and target %s: the shapes must be equal",
                       tg_shape_str(input->shape, si, sizeof si), tg_shape_str(target->shape, st, sizeof st));
    }
    double *terms = tg_arena_alloc(g, (size_t)input->numel * sizeof *terms); // input's shape
    TG_DISPATCH(input->dtype, {
        const T *xv = input->data, *tv = target->data;
        for (int64_t k = 0; k < input->numel; k++) {
            double d = (double)xv[k] - (double)tv[k];
            terms[k] = d * d;
        }
    });
    tg_tensor *y = reduce_terms(g, input->dtype, terms, input->numel, input->shape, reduction, input->numel);
    tg_node *n = tg_record(g, &MSE_LOSS_OP, y, 2, input, target);
    TG_SAVE(g, n, mse_loss_state, {.r = {reduction, input->numel}});
    return y;
}

// --- binary_cross_entropy_with_logits: t log sigmoid(x) + (1-t) log(1 - sigmoid(x)), negated ---
// Written as max(x, 0) - x t + log1p(exp(-|x|)), PyTorch's form, which neither overflows nor
// loses the small terms for large |x|. d/dx = sigmoid(x) - t, d/dt = -x.

typedef struct {
    loss_reduction r;
} bce_with_logits_state;

static void bce_with_logits_backward(tg_graph *g, tg_node *n) {
    (void)g;
    tg_tensor *x = n->in[0], *target = n->in[1], *y = n->out;
    const bce_with_logits_state *s = TG_STATE(n, bce_with_logits_state);
    bool each = s->r.reduction == TG_REDUCE_NONE;
    double w_all = shared_term_grad(n, &s->r);
    TG_DISPATCH(x->dtype, {
        const T *xv = x->data, *tv = target->data, *gy = y->grad; // gy: x's shape, or []
        T *gx = x->grad, *gt = target->grad;
        for (int64_t k = 0; k < x->numel; k++) {
            double w = each ? (double)gy[k] : w_all, xk = xv[k];
            double sig = xk >= 0 ? 1 / (1 + exp(-xk)) : exp(xk) / (1 + exp(xk));
            if (gx) gx[k] += (T)(w * (sig - (double)tv[k]));
            if (gt) gt[k] += (T)(-w * xk);
        }
    });
}

static const tg_op BCE_WITH_LOGITS_OP = {.name = "bce_with_logits", .backward = bce_with_logits_backward};

tg_tensor *(tg_bce_with_logits)(tg_graph *g, tg_tensor *logits, tg_tensor *target, tg_reduction reduction) {
    if (!tg_check_float(g, "bce_with_logits", 2, logits, target) || !check_reduction(g, "bce_with_logits", reduction))
        return NULL;
    if (!tg_shape_equal(logits->shape, target->shape))
        return tg_fail(g, "bce_with_logits", "logits %s and target %s: the shapes must be equal",
                       TG_SHAPE_STR(logits->shape), TG_SHAPE_STR(target->shape));
    double *terms = tg_arena_alloc(g, (size_t)logits->numel * sizeof *terms); // logits' shape
    TG_DISPATCH(logits->dtype, {
        const T *xv = logits->data, *tv = target->data;
        for (int64_t k = 0; k < logits->numel; k++) {
            double x = xv[k];
            terms[k] = fmax(x, 0) - x * (double)tv[k] + log1p(exp(-fabs(x)));
        }
    });
    tg_tensor *y = reduce_terms(g, logits->dtype, terms, logits->numel, logits->shape, reduction, logits->numel);
    tg_node *n = tg_record(g, &BCE_WITH_LOGITS_OP, y, 2, logits, target);
    TG_SAVE(g, n, bce_with_logits_state, {.r = {reduction, logits->numel}});
    return y;
}
