// tg_ops.h: the ops. Each computes its output at once and, when a gradient is wanted,
// records a node so that tg_backward can differentiate it.
//
// Conventions, shared by every op:
// - Float inputs of one op share a dtype (f32 or f64); ids and targets are i32.
// - Outputs are fresh, contiguous tensors in the graph's arena (reshape, detach and some
//   slices share their input's data, as documented there). No op writes into its inputs
//   but the one whose name ends in _ (tg_linear_add_), as in PyTorch.
// - A wrong shape or dtype is reported through tg_graph.h's error path, naming the op, the
//   shapes and the call site, and the op returns NULL.
// - Binary elementwise ops broadcast as NumPy does: shapes are aligned on the right and a
//   size-1 (or missing) dimension stretches to the other's size.
// Every op is also a macro of the same name that records its call site for error messages.
#ifndef TG_OPS_H
#define TG_OPS_H

#include "tg_graph.h"

#ifdef __cplusplus
extern "C" {
#endif

// --- Matrix products (ops/matmul.c) ---------------------------------------------------
// a [M, K] @ b [K, N] -> [M, N]; or batched: a [B, M, K] @ b [B, K, N] -> [B, M, N].
tg_tensor *tg_matmul(tg_graph *g, tg_tensor *a, tg_tensor *b);
// As tg_matmul, with a and/or b read transposed (their last two axes swapped), no copy.
tg_tensor *tg_matmul_t(tg_graph *g, tg_tensor *a, tg_tensor *b, bool trans_a, bool trans_b);
// x [..., in] W^T + b: weight [out, in] as PyTorch lays it out, bias [out] or NULL. With few
// rows and a leaf weight, the product runs on a transposed copy of the weight that the graph
// makes once and keeps while the weight's data is unchanged (see tg_tensor_touch).
tg_tensor *tg_linear(tg_graph *g, tg_tensor *x, tg_tensor *weight, tg_tensor *bias);
// addend + x W^T + b in one op (PyTorch's addmm), addend of the output's shape: a recurrent
// step's input projection plus its state's, without keeping the product as its own tensor.
tg_tensor *tg_linear_add(tg_graph *g, tg_tensor *addend, tg_tensor *x, tg_tensor *weight, tg_tensor *bias);
// The same sum written over addend's data (PyTorch's addmm_), returned as a new tensor over
// it: addend's old value is gone, so only for an addend nothing else reads, forward or
// backward (a step's rows of an input projection). Refused for a leaf that requires a
// gradient and for an addend sharing data with x, weight or bias.
tg_tensor *tg_linear_add_(tg_graph *g, tg_tensor *addend, tg_tensor *x, tg_tensor *weight, tg_tensor *bias);

// --- Elementwise arithmetic, broadcasting (ops/arith.c) -------------------------------
tg_tensor *tg_add(tg_graph *g, tg_tensor *a, tg_tensor *b); // a + b
tg_tensor *tg_sub(tg_graph *g, tg_tensor *a, tg_tensor *b); // a - b
tg_tensor *tg_mul(tg_graph *g, tg_tensor *a, tg_tensor *b); // a * b
tg_tensor *tg_div(tg_graph *g, tg_tensor *a, tg_tensor *b); // a / b
tg_tensor *tg_neg(tg_graph *g, tg_tensor *x);               // -x
tg_tensor *tg_add_scalar(tg_graph *g, tg_tensor *x, double c); // x + c
tg_tensor *tg_mul_scalar(tg_graph *g, tg_tensor *x, double c); // x * c

// --- Activations (ops/activation.c) ---------------------------------------------------
tg_tensor *tg_tanh(tg_graph *g, tg_tensor *x);
tg_tensor *tg_sigmoid(tg_graph *g, tg_tensor *x);
tg_tensor *tg_relu(tg_graph *g, tg_tensor *x);
// x for x > 0, slope*x otherwise (PyTorch's default slope is 0.01).
tg_tensor *tg_leaky_relu(tg_graph *g, tg_tensor *x, double slope);
// x for x > 0, alpha*(exp(x)-1) otherwise (PyTorch's default alpha is 1).
tg_tensor *tg_elu(tg_graph *g, tg_tensor *x, double alpha);
tg_tensor *tg_exp(tg_graph *g, tg_tensor *x);
// Natural log; log of a negative number is NaN and of zero -inf, as in C.
tg_tensor *tg_log(tg_graph *g, tg_tensor *x);
// log(1 + exp(beta*x))/beta, and x itself where beta*x > threshold (PyTorch's defaults: beta 1,
// threshold 20), so large inputs neither overflow nor lose digits.
tg_tensor *tg_softplus(tg_graph *g, tg_tensor *x, double beta, double threshold);
// x * Phi(x), Phi the standard normal CDF (PyTorch's gelu, approximate='none').
tg_tensor *tg_gelu(tg_graph *g, tg_tensor *x);
// 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3))) (PyTorch's gelu, approximate='tanh').
tg_tensor *tg_gelu_tanh(tg_graph *g, tg_tensor *x);
// x * sigmoid(x) (PyTorch's silu, or swish).
tg_tensor *tg_silu(tg_graph *g, tg_tensor *x);

// --- Elementwise math (ops/math.c) ------------------------------------------------------
// Gradients at the edges are PyTorch's: sqrt and rsqrt are infinite at 0, abs's is 0 at 0.
tg_tensor *tg_sqrt(tg_graph *g, tg_tensor *x);  // sqrt(x); NaN below 0
tg_tensor *tg_rsqrt(tg_graph *g, tg_tensor *x); // 1/sqrt(x)
// x^exponent for a scalar exponent; the gradient is 0 for exponent 0, as in PyTorch.
tg_tensor *tg_pow_scalar(tg_graph *g, tg_tensor *x, double exponent);
tg_tensor *tg_square(tg_graph *g, tg_tensor *x); // x*x
tg_tensor *tg_abs(tg_graph *g, tg_tensor *x);    // |x|
// min(max(x, min), max) as PyTorch's clamp (-INFINITY or INFINITY for no bound); the
// gradient passes where min <= x <= max.
tg_tensor *tg_clamp(tg_graph *g, tg_tensor *x, double min, double max);
// The elementwise smaller / larger of a and b, broadcasting; a NaN wins; on a tie each
// input gets half the gradient, as in PyTorch.
tg_tensor *tg_minimum(tg_graph *g, tg_tensor *a, tg_tensor *b);
tg_tensor *tg_maximum(tg_graph *g, tg_tensor *a, tg_tensor *b);

// --- Normalisation (ops/norm.c) -------------------------------------------------------
// Layer normalisation over the last axis of x [..., N], fused: (x - mean)/sqrt(var + eps)
// * gain + bias, var biased, gain and bias [N] or NULL (PyTorch's F.layer_norm, eps 1e-5).
tg_tensor *tg_layer_norm(tg_graph *g, tg_tensor *x, tg_tensor *gain, tg_tensor *bias, double eps);

// --- Reductions (ops/reduce.c) --------------------------------------------------------
// Sum of all elements: a scalar (shape []).
tg_tensor *tg_sum(tg_graph *g, tg_tensor *x);
// Mean of all elements: a scalar.
tg_tensor *tg_mean(tg_graph *g, tg_tensor *x);
// Sum over one axis (negative counts from the end); keepdim keeps it with size 1.
tg_tensor *tg_sum_axis(tg_graph *g, tg_tensor *x, int axis, bool keepdim);
// Mean over one axis.
tg_tensor *tg_mean_axis(tg_graph *g, tg_tensor *x, int axis, bool keepdim);

// --- Along one axis (ops/axis.c) ------------------------------------------------------
// The largest (smallest) value along an axis; the first one when several tie, and a NaN
// counts as the extreme; the whole gradient goes to it, as in PyTorch.
tg_tensor *tg_max_axis(tg_graph *g, tg_tensor *x, int axis, bool keepdim);
tg_tensor *tg_min_axis(tg_graph *g, tg_tensor *x, int axis, bool keepdim);
// The index (int32) of tg_max_axis's value along the axis; no gradient.
tg_tensor *tg_argmax(tg_graph *g, tg_tensor *x, int axis, bool keepdim);
// log(sum(exp(x))) along an axis, shifted by the max so it neither overflows nor underflows.
tg_tensor *tg_logsumexp(tg_graph *g, tg_tensor *x, int axis, bool keepdim);
// Variance along an axis, divided by n - 1 when unbiased (PyTorch's default) or by n.
tg_tensor *tg_var(tg_graph *g, tg_tensor *x, int axis, bool unbiased, bool keepdim);
// Standard deviation: the square root of tg_var.
tg_tensor *tg_std(tg_graph *g, tg_tensor *x, int axis, bool unbiased, bool keepdim);
// Cumulative sum along an axis, summed in double.
tg_tensor *tg_cumsum(tg_graph *g, tg_tensor *x, int axis);

// --- Comparisons and cast (ops/compare.c) -----------------------------------------------
// a > b, a >= b, a < b, a <= b, a == b elementwise, broadcasting: an int32 mask (1 where it
// holds; a NaN compares false) for tg_where and tg_masked_fill; no gradient.
tg_tensor *tg_gt(tg_graph *g, tg_tensor *a, tg_tensor *b);
tg_tensor *tg_ge(tg_graph *g, tg_tensor *a, tg_tensor *b);
tg_tensor *tg_lt(tg_graph *g, tg_tensor *a, tg_tensor *b);
tg_tensor *tg_le(tg_graph *g, tg_tensor *a, tg_tensor *b);
tg_tensor *tg_eq(tg_graph *g, tg_tensor *a, tg_tensor *b);
// x as float32 or float64 (x itself when it already is); the gradient is cast back.
tg_tensor *tg_cast(tg_graph *g, tg_tensor *x, tg_dtype dtype);

// --- Softmax and losses (ops/softmax.c, ops/loss.c) -----------------------------------
// Softmax along an axis (negative counts from the end), numerically stable.
tg_tensor *tg_softmax(tg_graph *g, tg_tensor *x, int axis);
// log(softmax(x)) along an axis, computed without forming softmax.
tg_tensor *tg_log_softmax(tg_graph *g, tg_tensor *x, int axis);

typedef enum {
    TG_REDUCE_MEAN, // mean over the elements that count (PyTorch's default)
    TG_REDUCE_SUM,  // sum over the elements that count
    TG_REDUCE_NONE, // one loss per element; ignored elements get 0
} tg_reduction;

// Cross-entropy of logits [N, C] against i32 class ids [N]; targets equal to ignore_index
// count for nothing (pass -100 as PyTorch does, or any id that is never a class).
tg_tensor *tg_cross_entropy(tg_graph *g, tg_tensor *logits, tg_tensor *targets, tg_reduction reduction,
                            int ignore_index);
// tg_cross_entropy with PyTorch's label_smoothing = eps in [0, 1): a row's term is
// (1 - eps)(-log p[target]) + eps * mean over the C classes of -log p[c] (eps = 0: tg_cross_entropy).
tg_tensor *tg_cross_entropy_smoothed(tg_graph *g, tg_tensor *logits, tg_tensor *targets, tg_reduction reduction,
                                     int ignore_index, double label_smoothing);
// Negative log-likelihood of log-probabilities [N, C] against i32 class ids [N].
tg_tensor *tg_nll_loss(tg_graph *g, tg_tensor *log_probs, tg_tensor *targets, tg_reduction reduction,
                       int ignore_index);
// Mean (or sum, or elementwise) squared error between two tensors of the same shape.
tg_tensor *tg_mse_loss(tg_graph *g, tg_tensor *input, tg_tensor *target, tg_reduction reduction);
// Binary cross-entropy of logits against targets in [0, 1] of the same shape, in PyTorch's
// stable form max(x, 0) - x t + log(1 + exp(-|x|)) (binary_cross_entropy_with_logits).
tg_tensor *tg_bce_with_logits(tg_graph *g, tg_tensor *logits, tg_tensor *target, tg_reduction reduction);

// --- Shape ops (ops/shape.c) ----------------------------------------------------------
// Same data, new shape with the same number of elements; one size may be -1 (inferred).
// The output shares x's data.
tg_tensor *tg_reshape(tg_graph *g, tg_tensor *x, tg_shape shape);
// Swaps two axes (negative counts from the end); the output is a contiguous copy.
tg_tensor *tg_transpose(tg_graph *g, tg_tensor *x, int axis0, int axis1);
// Joins n tensors along an existing axis; all other sizes must match.
tg_tensor *tg_concat(tg_graph *g, int n, tg_tensor *const *xs, int axis);
// Elements start .. start+length-1 along an axis. When they are one contiguous run of x
// (axis 0, or only size-1 axes before it) the output shares x's data instead of a copy.
tg_tensor *tg_slice(tg_graph *g, tg_tensor *x, int axis, int64_t start, int64_t length);
// Joins n tensors of one shape along a new axis (0 .. ndim).
tg_tensor *tg_stack(tg_graph *g, int n, tg_tensor *const *xs, int axis);
// Splits x into n equal pieces along an axis, written to out[0..n-1]; false on error.
bool tg_chunk(tg_graph *g, tg_tensor *x, int n, int axis, tg_tensor **out);

// --- Layout (ops/layout.c) --------------------------------------------------------------
// x reversed along an axis.
tg_tensor *tg_flip(tg_graph *g, tg_tensor *x, int axis);
// x with its axes reordered: y's axis d is x's axis perm[d] (n_axes = x's rank, up to 4,
// negative axes counting from the end), a contiguous copy, as PyTorch's permute(...).contiguous().
tg_tensor *tg_permute(tg_graph *g, tg_tensor *x, int n_axes, const int *perm);
// x with `before` and `after` positions of value added along an axis (F.pad, constant mode).
tg_tensor *tg_pad(tg_graph *g, tg_tensor *x, int axis, int64_t before, int64_t after, double value);

// --- Indexing, selection, dropout (ops/index.c, ops/select.c) -------------------------
// Rows of weight [V, E] picked by i32 ids of any shape S: output S + [E]. Backward
// scatter-adds into the weight's gradient, repeated ids included.
tg_tensor *tg_embedding(tg_graph *g, tg_tensor *weight, tg_tensor *ids);
// cond ? a : b elementwise, broadcasting all three; cond is i32 (nonzero = true).
tg_tensor *tg_where(tg_graph *g, tg_tensor *cond, tg_tensor *a, tg_tensor *b);
// x with value wherever mask (i32, broadcast to x) is nonzero.
tg_tensor *tg_masked_fill(tg_graph *g, tg_tensor *x, tg_tensor *mask, double value);
// In training mode zeroes each element with probability p and scales the rest by 1/(1-p),
// drawing from rng; outside training mode (or p = 0) returns x itself.
tg_tensor *tg_dropout(tg_graph *g, tg_tensor *x, double p, tg_rng *rng);

// --- Fused recurrent steps (ops/rnn_fused.c) ------------------------------------------
// The pointwise part of PyTorch's LSTM and GRU steps in one op each, an optional fast path
// for the built-in cells (the same arithmetic as the op-by-op step, in one pass).
// LSTM, gates [B, 4H] = x W_ih^T + b_ih + h W_hh^T + b_hh (rows i, f, g, o), c [B, H]:
// c' = sigmoid(i)*tanh(g) + sigmoid(f)*c. Writes sigmoid(i), sigmoid(f) and tanh(g) over
// those gates, for its backward (so call it once per gates; a leaf wanting a gradient is
// refused).
tg_tensor *tg_lstm_cell_state_(tg_graph *g, tg_tensor *gates, tg_tensor *c);
// h' = sigmoid(o)*tanh(c'), from the same gates and c' [B, H]; writes sigmoid(o) over o.
tg_tensor *tg_lstm_cell_output_(tg_graph *g, tg_tensor *gates, tg_tensor *c_next);
// GRU, xp = x W_ih^T + b_ih and hp = h W_hh^T + b_hh, both [B, 3H] (rows r, z, n), h [B, H]:
// h' = (1-z)*n + z*h with n = tanh(xn + r*hn).
tg_tensor *tg_gru_cell(tg_graph *g, tg_tensor *xp, tg_tensor *hp, tg_tensor *h);

// --- Fused attention score (ops/attention_fused.c) --------------------------------------
// Additive (Bahdanau) scores in one op, an optional fast path for the built-in attention:
// keys [B, S, A], query [B, A] (broadcast over S), v [1, A] -> [B, S] with
// scores[b, s] = sum_a v[a] * tanh(keys[b, s, a] + query[b, a]).
tg_tensor *tg_additive_scores(tg_graph *g, tg_tensor *keys, tg_tensor *query, tg_tensor *v);

// --- Gradient flow (ops/shape.c) -------------------------------------------------------
// Same data as x, cut from the tape: no gradient flows back through it.
tg_tensor *tg_detach(tg_graph *g, tg_tensor *x);

// Call-site recording: each op's macro passes the graph through tg_here first.
#define tg_matmul(g, ...) tg_matmul(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_matmul_t(g, ...) tg_matmul_t(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_linear(g, ...) tg_linear(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_linear_add(g, ...) tg_linear_add(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_linear_add_(g, ...) tg_linear_add_(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_add(g, ...) tg_add(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_sub(g, ...) tg_sub(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_mul(g, ...) tg_mul(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_div(g, ...) tg_div(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_neg(g, ...) tg_neg(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_add_scalar(g, ...) tg_add_scalar(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_mul_scalar(g, ...) tg_mul_scalar(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_tanh(g, ...) tg_tanh(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_sigmoid(g, ...) tg_sigmoid(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_relu(g, ...) tg_relu(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_leaky_relu(g, ...) tg_leaky_relu(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_elu(g, ...) tg_elu(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_exp(g, ...) tg_exp(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_log(g, ...) tg_log(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_softplus(g, ...) tg_softplus(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_gelu(g, ...) tg_gelu(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_gelu_tanh(g, ...) tg_gelu_tanh(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_silu(g, ...) tg_silu(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_sqrt(g, ...) tg_sqrt(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_rsqrt(g, ...) tg_rsqrt(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_pow_scalar(g, ...) tg_pow_scalar(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_square(g, ...) tg_square(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_abs(g, ...) tg_abs(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_clamp(g, ...) tg_clamp(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_minimum(g, ...) tg_minimum(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_maximum(g, ...) tg_maximum(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_layer_norm(g, ...) tg_layer_norm(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_max_axis(g, ...) tg_max_axis(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_min_axis(g, ...) tg_min_axis(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_argmax(g, ...) tg_argmax(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_logsumexp(g, ...) tg_logsumexp(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_var(g, ...) tg_var(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_std(g, ...) tg_std(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_cumsum(g, ...) tg_cumsum(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_gt(g, ...) tg_gt(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_ge(g, ...) tg_ge(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_lt(g, ...) tg_lt(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_le(g, ...) tg_le(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_eq(g, ...) tg_eq(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_cast(g, ...) tg_cast(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_bce_with_logits(g, ...) tg_bce_with_logits(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_flip(g, ...) tg_flip(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_permute(g, ...) tg_permute(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_pad(g, ...) tg_pad(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_sum(g, ...) tg_sum(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_mean(g, ...) tg_mean(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_sum_axis(g, ...) tg_sum_axis(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_mean_axis(g, ...) tg_mean_axis(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_softmax(g, ...) tg_softmax(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_log_softmax(g, ...) tg_log_softmax(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_cross_entropy(g, ...) tg_cross_entropy(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_cross_entropy_smoothed(g, ...) tg_cross_entropy_smoothed(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_nll_loss(g, ...) tg_nll_loss(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_mse_loss(g, ...) tg_mse_loss(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_reshape(g, ...) tg_reshape(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_transpose(g, ...) tg_transpose(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_concat(g, ...) tg_concat(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_slice(g, ...) tg_slice(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_stack(g, ...) tg_stack(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_chunk(g, ...) tg_chunk(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_embedding(g, ...) tg_embedding(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_where(g, ...) tg_where(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_masked_fill(g, ...) tg_masked_fill(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_dropout(g, ...) tg_dropout(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_lstm_cell_state_(g, ...) tg_lstm_cell_state_(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_lstm_cell_output_(g, ...) tg_lstm_cell_output_(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_gru_cell(g, ...) tg_gru_cell(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_additive_scores(g, ...) tg_additive_scores(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_detach(g, ...) tg_detach(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)

#ifdef __cplusplus
}
#endif
#endif
