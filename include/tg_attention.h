// tg_attention.h: attention over encoder states, as composite graph modules.
//
// A decoder's query q [B, Q] scores every source position's key k [K]; a softmax over the
// positions (padded ones masked out, so they get exactly zero weight) gives the weights
// a [B, S], and the context is the weighted sum of the keys, sum_s a_s k_s [B, K].
// The built-in scores, with parameters named as the PyTorch modules they stand for:
//   Bahdanau (additive)  v^T tanh(W q + U k + b)   W.weight [A, Q], U.weight [A, K], U.bias [A],
//                                                  v.weight [1, A]
//   Luong dot            q^T k  (needs Q == K)     no parameters
//   Luong general        q^T W k                   W.weight [Q, K]  (nn.Linear(K, Q, bias=False))
//   Luong concat         v^T tanh(W [q; k] + b)    W.weight [A, Q+K], W.bias [A], v.weight [1, A]
// Biases that would add the same amount to every position's score (on W q, on v) are left out:
// softmax cannot see them. Everything is ordinary ops, so backward comes from the tape, and a
// new score is a tg_attention_type written with ops, exactly as a new cell is a tg_cell_type.
//
// Keys arrive time-major, [S, B, K], as tg_rnn_forward's output. What depends on the keys
// alone (their batch-major copy [B, S, K], U k + b for all positions, the mask) is computed
// once per source batch by tg_attention_prepare; each decoder step then costs one query.
#ifndef TG_ATTENTION_H
#define TG_ATTENTION_H

#include "tg_graph.h"
#include "tg_params.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TG_ATTENTION_MAX_PARAMS 8
// The score given to masked positions before the softmax: finite, so the numerics check does
// not flag it, and low enough that exp underflows to exactly 0 in float32 and float64.
#define TG_ATTENTION_MASKED_SCORE (-1e30)

typedef struct tg_attention tg_attention;

// What makes a kind of attention score. A user's score fills one of these in.
typedef struct {
    const char *name; // "bahdanau", "luong_dot", ...
    // Checks the sizes and creates the parameters in p, each named prefix + its own name
    // ("W.weight"), initialised from rng. Returns false (through tg_fail) on error.
    bool (*init)(tg_attention *a, tg_params *p, const char *prefix, tg_rng *rng);
    // Optional (may be NULL): what the score needs from the keys alone, for all positions at
    // once: keys [B, S, K] -> [B, S, P]. Called once per source batch by tg_attention_prepare.
    tg_tensor *(*project_keys)(tg_graph *g, const tg_attention *a, tg_tensor *keys);
    // Scores [B, S] of query [B, Q] against keys [B, S, K] and their projection [B, S, P]
    // (NULL without project_keys), before masking. Written with ordinary ops.
    tg_tensor *(*score)(tg_graph *g, const tg_attention *a, tg_tensor *query, tg_tensor *keys, tg_tensor *projected);
} tg_attention_type;

extern const tg_attention_type tg_attention_bahdanau;
extern const tg_attention_type tg_attention_luong_dot;
extern const tg_attention_type tg_attention_luong_general;
extern const tg_attention_type tg_attention_luong_concat;

typedef struct {
    const tg_attention_type *type; // &tg_attention_bahdanau, ... or a user's
    int query_size, key_size;      // Q (the decoder's hidden size), K (the encoder's output size)
    int attn_size;                 // A, the hidden size of additive and concat scores (0: Q)
    tg_dtype dtype;                // TG_F32 (0, the default) or TG_F64
} tg_attention_config;

struct tg_attention {
    tg_attention_config cfg;
    tg_tensor *param[TG_ATTENTION_MAX_PARAMS]; // the score's parameters, in the order its init made them
};

// Creates an attention module, parameters in p named prefix + "W.weight", ...; false (through
// tg_fail) on a bad configuration, e.g. a dot score with Q != K.
bool tg_attention_init(tg_attention *a, const tg_attention_config *cfg, tg_params *p, const char *prefix,
                       tg_rng *rng);
// Adds a parameter prefix + name to a (for a score type's init), initialised
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) as nn.Linear initialises weights and biases. NULL on error.
tg_tensor *tg_attention_add_param(tg_attention *a, tg_params *p, const char *prefix, const char *name, tg_shape shape,
                                  int fan_in, tg_rng *rng);

// What every decoder step of one source batch attends over, made by tg_attention_prepare.
typedef struct {
    const tg_attention *attn;
    tg_tensor *keys;      // [B, S, K], batch-major
    tg_tensor *projected; // [B, S, P] from the type's project_keys, or NULL
    tg_tensor *mask;      // i32 [B, S], nonzero at padded positions; NULL when nothing is padded
} tg_attention_memory;

// The i32 mask [B, S] of positions at or past each sequence's length (lengths i32 [B], each
// in [1, S]); NULL on error.
tg_tensor *tg_attention_length_mask(tg_graph *g, tg_tensor *lengths, int64_t S);
// Prepares attention over keys [S, B, K] (time-major); mask: NULL, or i32 [B, S] nonzero at
// padded positions (every row keeps at least one position). False (through tg_fail) on error.
bool tg_attention_prepare(tg_graph *g, const tg_attention *a, tg_tensor *keys, tg_tensor *mask,
                          tg_attention_memory *mem);
// One query [B, Q]: writes the context [B, K] and, when weights is not NULL, the attention
// weights [B, S] (0 exactly at masked positions, each row summing to 1). False on error.
bool tg_attention_forward(tg_graph *g, const tg_attention_memory *mem, tg_tensor *query, tg_tensor **context,
                          tg_tensor **weights);
// The memory of batch entries rows (i32 [N], each in [0, B), repeats allowed), e.g. to
// reorder or replicate it for the hypotheses of a beam search. False on error.
bool tg_attention_memory_select(tg_graph *g, const tg_attention_memory *mem, tg_tensor *rows,
                                tg_attention_memory *out);

// Call-site recording, as for the ops: errors in the input name the caller's line.
#define tg_attention_length_mask(g, ...) tg_attention_length_mask(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_attention_prepare(g, ...) tg_attention_prepare(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_attention_forward(g, ...) tg_attention_forward(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_attention_memory_select(g, ...) tg_attention_memory_select(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)

#ifdef __cplusplus
}
#endif
#endif
