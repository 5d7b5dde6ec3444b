// norm.c: layer normalisation over the last axis, fused (Ba, Kiros and Hinton 2016, as
// PyTorch's F.layer_norm with normalized_shape = [N]).
//
// Each row of N elements becomes xhat = (x - mean) * rstd with rstd = 1/sqrt(var + eps) and
// var the biased variance, then y = xhat * gain + bias. Mean and variance are summed in
// double (two passes, so no cancellation), and saved per row for backward:
//   dxhat = dy * gain
//   dx    = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
//   dgain += sum over rows of dy * xhat,  dbias += sum over rows of dy.
#include <math.h>

#include "tg_internal.h"
#include "tg_ops.h"

typedef struct {
    const double *stats;    // [rows, 2]: mean and rstd of each row
    int64_t rows, n;        // rows of n elements
    int at_gain, at_bias;   // positions in the node's inputs (0: absent)
} layer_norm_state;

static void layer_norm_backward(tg_graph *g, tg_node *n) {
    (void)g;
    const layer_norm_state *s = TG_STATE(n, layer_norm_state);
    tg_tensor *x = n->in[0], *y = n->out;
    tg_tensor *gain = s->at_gain ? n->in[s->at_gain] : NULL, *bias = s->at_bias ? n->in[s->at_bias] : NULL;
    int64_t N = s->n;
    TG_DISPATCH(y->dtype, {
        const T *xv = x->data, *gy = y->grad;      // [rows, N]
        const T *gv = gain ? gain->data : NULL;    // [N]
        T *gx = x->grad;                           // [rows, N] or NULL
        T *ggain = gain ? gain->grad : NULL;       // [N] or NULL
        T *gbias = bias ? bias->grad : NULL;       // [N] or NULL
        for (int64_t r = 0; r < s->rows; r++) {
            const T *xr = xv + r * N, *dy = gy + r * N;
            double mean = s->stats[2 * r], rstd = s->stats[2 * r + 1];
            if (gx) {
                double m1 = 0, m2 = 0; // mean(dxhat), mean(dxhat * xhat)
                for (int64_t j = 0; j < N; j++) {
                    double dxhat = (double)dy[j] * (gv ? (double)gv[j] : 1.0), xhat = ((double)xr[j] - mean) * rstd;
                    m1 += dxhat;
                    m2 += dxhat * xhat;
                }
                m1 /= (double)N;
                m2 /= (double)N;
                T *dx = gx + r * N;
                for (int64_t j = 0; j < N; j++) {
                    double dxhat = (double)dy[j] * (gv ? (double)gv[j] : 1.0), xhat = ((double)xr[j] - mean) * rstd;
                    dx[j] += (T)(rstd * (dxhat - m1 - xhat * m2));
                }
            }
            if (ggain)
                for (int64_t j = 0; j < N; j++) ggain[j] += (T)((double)dy[j] * (((double)xr[j] - mean) * rstd));
            if (gbias)
                for (int64_t j = 0; j < N; j++) gbias[j] += dy[j];
        }
    });
}

static const tg_op LAYER_NORM_OP = {.name = "layer_norm", .backward = layer_norm_backward};

// Checks that a gain or bias (role) is NULL or a 1-D tensor of x's last size and dtype.
static bool check_affine(tg_graph *g, tg_tensor *x, tg_tensor *t, const char *role) {
    if (!t) return true;
    if (!tg_check_float(g, "layer_norm", 2, x, t)) return false;
    int64_t N = x->shape.d[x->shape.n - 1];
    if (t->shape.n != 1 || t->shape.d[0] != N) {
        tg_fail(g, "layer_norm", "input %s and %s %s: the %s must be [%lld], the input's last size",
                TG_SHAPE_STR(x->shape), role, TG_SHAPE_STR(t->shape), role, (long long)N);
        return false;
    }
    return true;
}

tg_tensor *(tg_layer_norm)(tg_graph *g, tg_tensor *x, tg_tensor *gain, tg_tensor *bias, double eps) {
    if (!tg_check_float(g, "layer_norm", 1, x)) return NULL;
    if (x->shape.n < 1 || x->shape.d[x->shape.n - 1] < 1)
        return tg_fail(g, "layer_norm", "input %s: normalises over the last axis, which must have at least one "
                                        "element", TG_SHAPE_STR(x->shape));
    if (!check_affine(g, x, gain, "gain") || !check_affine(g, x, bias, "bias")) return NULL;
    if (!(eps >= 0)) return tg_fail(g, "layer_norm", "eps = %g; it must be >= 0", eps);
    int64_t N = x->shape.d[x->shape.n - 1], rows = x->numel / N;
    double *stats = tg_arena_alloc(g, (size_t)(2 * rows) * sizeof *stats); // [rows, 2]
    tg_tensor *y = tg_new_tensor(g, x->dtype, x->shape);
    TG_DISPATCH(x->dtype, {
        const T *xv = x->data;                       // [rows, N]
        const T *gv = gain ? gain->data : NULL;      // [N]
        const T *bv = bias ? bias->data : NULL;      // [N]
        T *yv = y->data;                             // [rows, N]
        for (int64_t r = 0; r < rows; r++) {
            const T *xr = xv + r * N;
            double mean = 0, var = 0;
            for (int64_t j = 0; j < N; j++) mean += xr[j];
            mean /= (double)N;
            for (int64_t j = 0; j < N; j++) var += ((double)xr[j] - mean) * ((double)xr[j] - mean);
            var /= (double)N;
            double rstd = 1 / sqrt(var + eps);
            stats[2 * r] = mean;
            stats[2 * r + 1] = rstd;
            for (int64_t j = 0; j < N; j++) {
                double v = ((double)xr[j] - mean) * rstd;
                if (gv) v *= (double)gv[j];
                if (bv) v += (double)bv[j];
                yv[r * N + j] = (T)v;
            }
        }
    });
    tg_tensor *in[3] = {x};
    int n_in = 1, at_gain = 0, at_bias = 0;
    if (gain) in[at_gain = n_in++] = gain;
    if (bias) in[at_bias = n_in++] = bias;
    tg_node *n = tg_record_array(g, &LAYER_NORM_OP, y, n_in, in);
    TG_SAVE(g, n, layer_norm_state, {.stats = stats, .rows = rows, .n = N, .at_gain = at_gain, .at_bias = at_bias});
    return y;
}
