// attention.c: Bahdanau and Luong attention scores, masking and context. (The heatmap of
// the weights is presentation: examples/common/plot.c draws it.)
//
// Shapes are batch-major inside: keys [B, S, K], so one batched product per step gives all
// scores ([B, S, K] @ [B, K, 1]) and one gives all contexts ([B, 1, S] @ [B, S, K]).
// Additive scores (Bahdanau, concat) split the work: the keys' part, U k + b [B, S, A], is
// computed once in prepare; a step adds the query's part, W q [B, 1, A], broadcast over S.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tapegrad.h"
#include "tg_attention.h"

tg_tensor *tg_attention_add_param(tg_attention *a, tg_params *p, const char *prefix, const char *name, tg_shape shape,
                                  int fan_in, tg_rng *rng) {
    int slot = 0;
    while (slot < TG_ATTENTION_MAX_PARAMS && a->param[slot]) slot++;
    if (slot == TG_ATTENTION_MAX_PARAMS)
        return tg_fail(NULL, "attention", "an attention module has at most %d parameters", TG_ATTENTION_MAX_PARAMS);
    char full[256];
    snprintf(full, sizeof full, "%s%s", prefix ? prefix : "", name);
    tg_tensor *t = tg_params_add(p, full, a->cfg.dtype, shape);
    if (!t) return NULL;
    double k = 1 / sqrt((double)fan_in);
    tg_tensor_fill_uniform(t, rng, -k, k);
    a->param[slot] = t;
    return t;
}

bool tg_attention_init(tg_attention *a, const tg_attention_config *cfg, tg_params *p, const char *prefix,
                       tg_rng *rng) {
    memset(a, 0, sizeof *a);
    if (!cfg->type || cfg->query_size < 1 || cfg->key_size < 1 || cfg->attn_size < 0) {
        tg_fail(NULL, "attention", "%s attention with query size %d, key size %d, attention size %d; it needs a "
                                   "type and positive sizes (attention size 0 means the query size)",
                cfg->type ? cfg->type->name : "untyped", cfg->query_size, cfg->key_size, cfg->attn_size);
        return false;
    }
    if (cfg->dtype == TG_I32) {
        tg_fail(NULL, "attention", "%s attention of dtype int32; attention is float32 or float64", cfg->type->name);
        return false;
    }
    a->cfg = *cfg;
    if (!a->cfg.attn_size) a->cfg.attn_size = cfg->query_size;
    return cfg->type->init(a, p, prefix, rng);
}

// --- The built-in scores ------------------------------------------------------------

enum { ADD_W, ADD_U, ADD_UB, ADD_V };        // Bahdanau's parameter slots
enum { CAT_W, CAT_B, CAT_V };                // concat's
enum { GEN_W };                              // general's

static bool bahdanau_init(tg_attention *a, tg_params *p, const char *prefix, tg_rng *rng) {
    int Q = a->cfg.query_size, K = a->cfg.key_size, A = a->cfg.attn_size;
    return tg_attention_add_param(a, p, prefix, "W.weight", tg_shape2(A, Q), Q, rng) &&
           tg_attention_add_param(a, p, prefix, "U.weight", tg_shape2(A, K), K, rng) &&
           tg_attention_add_param(a, p, prefix, "U.bias", tg_shape1(A), K, rng) &&
           tg_attention_add_param(a, p, prefix, "v.weight", tg_shape2(1, A), A, rng);
}

static bool dot_init(tg_attention *a, tg_params *p, const char *prefix, tg_rng *rng) {
    (void)p, (void)prefix, (void)rng;
    if (a->cfg.query_size == a->cfg.key_size) return true;
    tg_fail(NULL, "attention", "luong_dot attention with query size %d and key size %d; a dot score needs them "
                               "equal (use luong_general for different sizes)",
            a->cfg.query_size, a->cfg.key_size);
    return false;
}

static bool general_init(tg_attention *a, tg_params *p, const char *prefix, tg_rng *rng) {
    int Q = a->cfg.query_size, K = a->cfg.key_size;
    return tg_attention_add_param(a, p, prefix, "W.weight", tg_shape2(Q, K), K, rng);
}

static bool concat_init(tg_attention *a, tg_params *p, const char *prefix, tg_rng *rng) {
    int Q = a->cfg.query_size, K = a->cfg.key_size, A = a->cfg.attn_size;
    return tg_attention_add_param(a, p, prefix, "W.weight", tg_shape2(A, Q + K), Q + K, rng) &&
           tg_attention_add_param(a, p, prefix, "W.bias", tg_shape1(A), Q + K, rng) &&
           tg_attention_add_param(a, p, prefix, "v.weight", tg_shape2(1, A), A, rng);
}

// keys [B, S, K] -> U k + b [B, S, A].
static tg_tensor *bahdanau_keys(tg_graph *g, const tg_attention *a, tg_tensor *keys) {
    return tg_linear(g, keys, a->param[ADD_U], a->param[ADD_UB]);
}

// keys [B, S, K] -> W_k k + b [B, S, A], W_k being the key columns of W = [W_q W_k].
static tg_tensor *concat_keys(tg_graph *g, const tg_attention *a, tg_tensor *keys) {
    tg_tensor *w_k = tg_slice(g, a->param[CAT_W], 1, a->cfg.query_size, a->cfg.key_size); // [A, K]
    return tg_linear(g, keys, w_k, a->param[CAT_B]);
}

// keys [B, S, K] -> W k [B, S, Q], so that a step's q^T (W k) is one batched product.
static tg_tensor *general_keys(tg_graph *g, const tg_attention *a, tg_tensor *keys) {
    return tg_linear(g, keys, a->param[GEN_W], NULL);
}

// v^T tanh(keys_part + query_part): keys_part [B, S, A], query_part [B, A], v [1, A] -> [B, S],
// fused (ops/attention_fused.c; tests/test_attention.c checks it against the ops
// tg_reshape(tg_linear(tg_tanh(tg_add(keys_part, q [B, 1, A])), v), [B, S])).
static tg_tensor *additive(tg_graph *g, tg_tensor *keys_part, tg_tensor *query_part, tg_tensor *v) {
    return tg_additive_scores(g, keys_part, query_part, v);
}

// q^T x_s for every position: x [B, S, X], query [B, X] -> [B, S].
static tg_tensor *bilinear(tg_graph *g, tg_tensor *x, tg_tensor *query) {
    int64_t B = x->shape.d[0], S = x->shape.d[1];
    tg_tensor *q = tg_reshape(g, query, tg_shape3(B, x->shape.d[2], 1));   // [B, X, 1]
    return tg_reshape(g, tg_matmul(g, x, q), tg_shape2(B, S));             // [B, S, 1] -> [B, S]
}

static tg_tensor *bahdanau_score(tg_graph *g, const tg_attention *a, tg_tensor *query, tg_tensor *keys,
                                 tg_tensor *projected) {
    (void)keys;
    return additive(g, projected, tg_linear(g, query, a->param[ADD_W], NULL), a->param[ADD_V]);
}

static tg_tensor *concat_score(tg_graph *g, const tg_attention *a, tg_tensor *query, tg_tensor *keys,
                               tg_tensor *projected) {
    (void)keys;
    tg_tensor *w_q = tg_slice(g, a->param[CAT_W], 1, 0, a->cfg.query_size); // [A, Q]
    return additive(g, projected, tg_linear(g, query, w_q, NULL), a->param[CAT_V]);
}

static tg_tensor *dot_score(tg_graph *g, const tg_attention *a, tg_tensor *query, tg_tensor *keys,
                            tg_tensor *projected) {
    (void)a, (void)projected;
    return bilinear(g, keys, query);
}

static tg_tensor *general_score(tg_graph *g, const tg_attention *a, tg_tensor *query, tg_tensor *keys,
                                tg_tensor *projected) {
    (void)a, (void)keys;
    return bilinear(g, projected, query);
}

const tg_attention_type tg_attention_bahdanau = {"bahdanau", bahdanau_init, bahdanau_keys, bahdanau_score};
const tg_attention_type tg_attention_luong_dot = {"luong_dot", dot_init, NULL, dot_score};
const tg_attention_type tg_attention_luong_general = {"luong_general", general_init, general_keys, general_score};
const tg_attention_type tg_attention_luong_concat = {"luong_concat", concat_init, concat_keys, concat_score};

// --- Prepare, attend, select --------------------------------------------------------

tg_tensor *(tg_attention_length_mask)(tg_graph *g, tg_tensor *lengths, int64_t S) {
    char s[64];
    if (!lengths || lengths->dtype != TG_I32 || lengths->shape.n != 1)
        return tg_fail(g, "attention", "lengths are %s; they must be int32 [B]",
                       lengths ? tg_shape_str(lengths->shape, s, sizeof s) : "NULL");
    int64_t B = lengths->shape.d[0];
    const int32_t *len = lengths->data; // [B]
    tg_tensor *mask = tg_zeros(g, TG_I32, tg_shape2(B, S));
    int32_t *m = mask->data; // [B, S]
    for (int64_t b = 0; b < B; b++) {
        if (len[b] < 1 || len[b] > S)
            return tg_fail(g, "attention", "sequence %lld has length %d; lengths must be in [1, %lld]", (long long)b,
                           len[b], (long long)S);
        for (int64_t j = len[b]; j < S; j++) m[b * S + j] = 1;
    }
    return mask;
}

bool (tg_attention_prepare)(tg_graph *g, const tg_attention *a, tg_tensor *keys, tg_tensor *mask,
                            tg_attention_memory *mem) {
    memset(mem, 0, sizeof *mem);
    char sk[64], sm[64];
    if (!keys) return tg_fail(g, "attention", "keys are NULL (did an earlier op fail?)"), false;
    tg_shape_str(keys->shape, sk, sizeof sk);
    if (keys->shape.n != 3 || keys->shape.d[2] != a->cfg.key_size || keys->dtype != a->cfg.dtype) {
        tg_fail(g, "attention", "keys %s %s; %s attention takes time-major keys [S, B, %d] %s", sk,
                tg_dtype_name(keys->dtype), a->cfg.type->name, a->cfg.key_size, tg_dtype_name(a->cfg.dtype));
        return false;
    }
    int64_t S = keys->shape.d[0], B = keys->shape.d[1];
    if (mask) {
        if (mask->dtype != TG_I32 || !tg_shape_equal(mask->shape, tg_shape2(B, S))) {
            tg_fail(g, "attention", "mask %s %s for keys %s; the mask must be int32 [%lld, %lld] (batch, source)",
                    tg_dtype_name(mask->dtype), tg_shape_str(mask->shape, sm, sizeof sm), sk, (long long)B,
                    (long long)S);
            return false;
        }
        const int32_t *m = mask->data; // [B, S]
        for (int64_t b = 0; b < B; b++) {
            int64_t open = 0;
            for (int64_t j = 0; j < S; j++) open += !m[b * S + j];
            if (!open) { // a softmax over nothing has no zero-weight answer
                tg_fail(g, "attention", "mask row %lld masks every position; each source needs at least one",
                        (long long)b);
                return false;
            }
        }
    }
    mem->attn = a;
    mem->mask = mask;
    mem->keys = tg_transpose(g, keys, 0, 1); // [B, S, K]
    if (a->cfg.type->project_keys) {
        mem->projected = a->cfg.type->project_keys(g, a, mem->keys); // [B, S, P]
        if (!mem->projected) return false;
    }
    return mem->keys != NULL;
}

bool (tg_attention_forward)(tg_graph *g, const tg_attention_memory *mem, tg_tensor *query, tg_tensor **context,
                            tg_tensor **weights) {
    *context = NULL;
    if (weights) *weights = NULL;
    const tg_attention *a = mem->attn;
    if (!a || !mem->keys)
        return tg_fail(g, "attention", "the memory is not prepared (call tg_attention_prepare)"), false;
    int64_t B = mem->keys->shape.d[0], S = mem->keys->shape.d[1], K = mem->keys->shape.d[2];
    char s[64];
    if (!query) return tg_fail(g, "attention", "query is NULL (did an earlier op fail?)"), false;
    if (!tg_shape_equal(query->shape, tg_shape2(B, a->cfg.query_size)) || query->dtype != a->cfg.dtype) {
        tg_fail(g, "attention", "query %s %s; %s attention over a batch of %lld takes [%lld, %d] %s",
                tg_shape_str(query->shape, s, sizeof s), tg_dtype_name(query->dtype), a->cfg.type->name, (long long)B,
                (long long)B, a->cfg.query_size, tg_dtype_name(a->cfg.dtype));
        return false;
    }
    tg_tensor *scores = a->cfg.type->score(g, a, query, mem->keys, mem->projected); // [B, S]
    if (!scores) return false;
    if (!tg_shape_equal(scores->shape, tg_shape2(B, S))) {
        tg_fail(g, "attention", "the %s score gave %s; a score is [%lld, %lld]", a->cfg.type->name,
                tg_shape_str(scores->shape, s, sizeof s), (long long)B, (long long)S);
        return false;
    }
    if (mem->mask) scores = tg_masked_fill(g, scores, mem->mask, TG_ATTENTION_MASKED_SCORE);
    tg_tensor *w = tg_softmax(g, scores, 1);                                         // [B, S]
    tg_tensor *ctx = tg_matmul(g, tg_reshape(g, w, tg_shape3(B, 1, S)), mem->keys); // [B, 1, K]
    *context = tg_reshape(g, ctx, tg_shape2(B, K));
    if (weights) *weights = w;
    return *context != NULL;
}

// Rows of x [B, ...] picked by rows i32 [N]: [N, ...]. A gather through tg_embedding, so
// the gradient flows back to x (summed over repeated rows).
static tg_tensor *pick_rows(tg_graph *g, tg_tensor *x, tg_tensor *rows) {
    if (!x) return NULL;
    tg_shape shape = x->shape;
    tg_tensor *flat = tg_reshape(g, x, tg_shape2(shape.d[0], x->numel / shape.d[0])); // [B, rest]
    shape.d[0] = rows->shape.d[0];
    return tg_reshape(g, tg_embedding(g, flat, rows), shape);
}

bool (tg_attention_memory_select)(tg_graph *g, const tg_attention_memory *mem, tg_tensor *rows,
                                  tg_attention_memory *out) {
    char s[64];
    if (!mem->keys) return tg_fail(g, "attention", "the memory is not prepared (call tg_attention_prepare)"), false;
    int64_t B = mem->keys->shape.d[0], S = mem->keys->shape.d[1];
    if (!rows || rows->dtype != TG_I32 || rows->shape.n != 1 || rows->shape.d[0] < 1) {
        tg_fail(g, "attention", "rows %s; they must be int32 [N >= 1]",
                rows ? tg_shape_str(rows->shape, s, sizeof s) : "NULL");
        return false;
    }
    int64_t N = rows->shape.d[0];
    const int32_t *r = rows->data; // [N]
    for (int64_t i = 0; i < N; i++)
        if (r[i] < 0 || r[i] >= B) {
            tg_fail(g, "attention", "row %d at %lld is out of range for a memory of batch %lld", r[i], (long long)i,
                    (long long)B);
            return false;
        }
    tg_attention_memory res = {mem->attn, pick_rows(g, mem->keys, rows), pick_rows(g, mem->projected, rows), NULL};
    if (mem->mask) { // int32 data: copied here, as no gradient flows through a mask
        res.mask = tg_zeros(g, TG_I32, tg_shape2(N, S));
        for (int64_t i = 0; i < N; i++)
            memcpy((int32_t *)res.mask->data + i * S, (const int32_t *)mem->mask->data + r[i] * S,
                   (size_t)S * sizeof(int32_t));
    }
    *out = res;
    return res.keys && (!mem->projected || res.projected);
}
