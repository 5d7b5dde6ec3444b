// seq2seq.c: the attention encoder-decoder, teacher forcing, greedy decoding and beam search.
//
// Training decodes a whole target batch on one tape: the loss is one cross_entropy over all
// [T*B] steps with pad_id ignored, so back-propagation through the decoder, the attention and
// the encoder comes from the tape. Decoding records nothing (no_grad) and runs in eval mode;
// its results are copied out of the tensors into plain arrays in the graph's arena.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tapegrad.h"
#include "tg_seq2seq.h"

// A parameter prefix + name: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) like nn.Linear, or N(0, 1)
// like nn.Embedding when fan_in is 0.
static tg_tensor *add_param(tg_params *p, const char *prefix, const char *name, tg_dtype dtype, tg_shape shape,
                            int fan_in, tg_rng *rng) {
    char full[256];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    tg_tensor *t = tg_params_add(p, full, dtype, shape);
    if (!t) return NULL;
    if (fan_in) tg_tensor_fill_uniform(t, rng, -1 / sqrt((double)fan_in), 1 / sqrt((double)fan_in));
    else tg_tensor_fill_normal(t, rng, 0, 1);
    return t;
}

static bool check_config(const tg_seq2seq_config *c) {
    if (c->src_vocab < 1 || c->tgt_vocab < 1 || c->src_embed < 1 || c->tgt_embed < 1 || c->hidden_size < 1 ||
        c->dec_hidden < 0 || c->num_layers < 0 || c->attn_size < 0) {
        tg_fail(NULL, "seq2seq", "vocabularies %d and %d, embeddings %d and %d, hidden %d, decoder hidden %d, %d "
                                 "layers, attention size %d; sizes must be positive (0 for defaults where allowed)",
                c->src_vocab, c->tgt_vocab, c->src_embed, c->tgt_embed, c->hidden_size, c->dec_hidden, c->num_layers,
                c->attn_size);
        return false;
    }
    if (!c->enc_cell || !c->dec_cell || !c->attention) {
        tg_fail(NULL, "seq2seq", "the configuration needs enc_cell, dec_cell and attention (e.g. &tg_cell_gru, "
                                 "&tg_attention_bahdanau)");
        return false;
    }
    int ids[3] = {c->pad_id, c->bos_id, c->eos_id};
    for (int i = 0; i < 3; i++)
        if (ids[i] < 0 || ids[i] >= c->tgt_vocab || ids[i] == ids[(i + 1) % 3]) {
            tg_fail(NULL, "seq2seq", "pad %d, bos %d, eos %d; they must be distinct ids of the target vocabulary "
                                     "(0 to %d)",
                    c->pad_id, c->bos_id, c->eos_id, c->tgt_vocab - 1);
            return false;
        }
    if (!(c->dropout >= 0 && c->dropout < 1)) {
        tg_fail(NULL, "seq2seq", "dropout %g; it must be in [0, 1)", c->dropout);
        return false;
    }
    if (!(c->label_smoothing >= 0 && c->label_smoothing < 1)) {
        tg_fail(NULL, "seq2seq", "label smoothing %g; it must be in [0, 1)", c->label_smoothing);
        return false;
    }
    return true;
}

bool tg_seq2seq_init(tg_seq2seq *m, const tg_seq2seq_config *cfg, tg_params *p, const char *prefix, tg_rng *rng) {
    memset(m, 0, sizeof *m);
    if (!check_config(cfg)) return false;
    tg_seq2seq_config c = *cfg;
    if (!prefix) prefix = "";
    if (!c.num_layers) c.num_layers = 1;
    m->key_size = (c.bidirectional ? 2 : 1) * c.hidden_size;
    if (!c.dec_hidden) c.dec_hidden = m->key_size;
    if (!c.attn_size) c.attn_size = c.dec_hidden;
    m->cfg = c;
    int K = m->key_size, Hd = c.dec_hidden;
    char name[256];

    snprintf(name, sizeof name, "%sencoder.rnn.", prefix);
    tg_rnn_config rc = {.cell = c.enc_cell, .input_size = c.src_embed, .hidden_size = c.hidden_size,
                        .num_layers = c.num_layers, .bidirectional = c.bidirectional, .dropout = c.dropout,
                        .dtype = c.dtype};
    if (!(m->src_embedding = add_param(p, prefix, "encoder.embedding.weight", c.dtype,
                                       tg_shape2(c.src_vocab, c.src_embed), 0, rng)) ||
        !tg_rnn_init(&m->encoder, &rc, p, name, rng))
        return false;
    for (int i = 0; i < c.dec_cell->n_states; i++) {
        char w[64], b[64];
        snprintf(w, sizeof w, "bridge.%d.weight", i);
        snprintf(b, sizeof b, "bridge.%d.bias", i);
        if (!(m->bridge_w[i] = add_param(p, prefix, w, c.dtype, tg_shape2(Hd, K), K, rng)) ||
            !(m->bridge_b[i] = add_param(p, prefix, b, c.dtype, tg_shape1(Hd), K, rng)))
            return false;
    }
    if (!(m->tgt_embedding = add_param(p, prefix, "decoder.embedding.weight", c.dtype,
                                       tg_shape2(c.tgt_vocab, c.tgt_embed), 0, rng)))
        return false;
    snprintf(name, sizeof name, "%sdecoder.cell.", prefix);
    tg_cell_config dc = {.input_size = c.tgt_embed + K, .hidden_size = Hd, .dtype = c.dtype};
    if (!tg_cell_init(&m->decoder, c.dec_cell, &dc, p, name, "", rng)) return false;
    snprintf(name, sizeof name, "%sdecoder.attention.", prefix);
    tg_attention_config ac = {c.attention, Hd, K, c.attn_size, c.dtype};
    if (!tg_attention_init(&m->attention, &ac, p, name, rng)) return false;
    m->out_w = add_param(p, prefix, "decoder.out.weight", c.dtype, tg_shape2(c.tgt_vocab, Hd + K), Hd + K, rng);
    m->out_b = add_param(p, prefix, "decoder.out.bias", c.dtype, tg_shape1(c.tgt_vocab), Hd + K, rng);
    return m->out_w && m->out_b;
}

// --- Encoder, decoder step ----------------------------------------------------------

// The last layer's final state i [L*D, B, H] as [B, D*H]: forward and reverse concatenated.
static tg_tensor *last_layer(tg_graph *g, const tg_seq2seq *m, tg_tensor *state) {
    int D = m->encoder.n_dirs, L = m->cfg.num_layers;
    tg_tensor *last = tg_slice(g, state, 0, (int64_t)(L - 1) * D, D);                         // [D, B, H]
    return tg_reshape(g, tg_transpose(g, last, 0, 1), tg_shape2(state->shape.d[1], m->key_size)); // [B, D*H]
}

bool (tg_seq2seq_encode)(tg_graph *g, const tg_seq2seq *m, tg_tensor *src, tg_tensor *src_lengths, tg_rng *rng,
                         tg_seq2seq_state *st) {
    memset(st, 0, sizeof *st);
    char s[64];
    if (!src || src->dtype != TG_I32 || src->shape.n != 2 || src->shape.d[0] < 1 || src->shape.d[1] < 1) {
        tg_fail(g, "seq2seq", "source %s; it must be int32 ids [S, B], time-major",
                src ? tg_shape_str(src->shape, s, sizeof s) : "NULL");
        return false;
    }
    int64_t S = src->shape.d[0], B = src->shape.d[1];
    const tg_seq2seq_config *c = &m->cfg;
    tg_tensor *x = tg_dropout(g, tg_embedding(g, m->src_embedding, src), c->dropout, rng); // [S, B, Es]
    tg_rnn_result r;
    if (!x || !(tg_rnn_forward)(g, &m->encoder, x, src_lengths, NULL, rng, &r)) return false;
    tg_tensor *mask = NULL; // [B, S]; left out when nothing is padded, sparing a step's masked_fill
    if (src_lengths) {
        const int32_t *len = src_lengths->data; // [B]
        for (int64_t b = 0; b < B && !mask; b++)
            if (len[b] < S) mask = (tg_attention_length_mask)(g, src_lengths, S);
    }
    if (!(tg_attention_prepare)(g, &m->attention, r.output, mask, &st->memory)) return false;
    int enc_states = c->enc_cell->n_states;
    for (int i = 0; i < c->dec_cell->n_states; i++) {
        tg_tensor *from = last_layer(g, m, r.state[i < enc_states ? i : 0]); // [B, K]
        st->state[i] = tg_tanh(g, tg_linear(g, from, m->bridge_w[i], m->bridge_b[i]));
        if (!st->state[i]) return false;
    }
    st->context = tg_zeros(g, c->dtype, tg_shape2(B, m->key_size));
    return true;
}

tg_tensor *(tg_seq2seq_step)(tg_graph *g, const tg_seq2seq *m, tg_seq2seq_state *st, tg_tensor *tokens, tg_rng *rng,
                             tg_tensor **weights) {
    if (weights) *weights = NULL;
    if (!st->memory.keys || !st->context)
        return tg_fail(g, "seq2seq", "the state is not made (call tg_seq2seq_encode)");
    int64_t B = st->memory.keys->shape.d[0];
    char s[64];
    if (!tokens || tokens->dtype != TG_I32 || !tg_shape_equal(tokens->shape, tg_shape1(B)))
        return tg_fail(g, "seq2seq", "tokens %s; a step takes int32 [%lld], one previous token per row",
                       tokens ? tg_shape_str(tokens->shape, s, sizeof s) : "NULL", (long long)B);
    const tg_cell *cell = &m->decoder;
    double p = m->cfg.dropout;
    tg_tensor *in[2] = {tg_dropout(g, tg_embedding(g, m->tgt_embedding, tokens), p, rng), st->context};
    tg_tensor *x = tg_concat(g, 2, in, 1); // [B, Et + K]: input feeding
    if (x && cell->type->project_input) x = cell->type->project_input(g, cell, x);
    if (!x) return NULL;
    tg_tensor *next[TG_CELL_MAX_STATES] = {0}; // each [B, Hd]
    if (!tg_cell_step(g, cell, x, st->state, next)) return NULL;
    tg_tensor *context, *w; // [B, K], [B, S]
    if (!(tg_attention_forward)(g, &st->memory, next[0], &context, &w)) return NULL;
    tg_tensor *feat[2] = {next[0], context};
    tg_tensor *logits = tg_linear(g, tg_dropout(g, tg_concat(g, 2, feat, 1), p, rng), m->out_w, m->out_b); // [B, Vt]
    for (int i = 0; i < cell->type->n_states; i++) st->state[i] = next[i];
    st->context = context;
    if (weights) *weights = w;
    return logits;
}

bool (tg_seq2seq_state_select)(tg_graph *g, const tg_seq2seq *m, const tg_seq2seq_state *st, tg_tensor *rows,
                               tg_seq2seq_state *out) {
    tg_seq2seq_state res = {0};
    if (!(tg_attention_memory_select)(g, &st->memory, rows, &res.memory)) return false;
    for (int i = 0; i < m->decoder.type->n_states; i++) // a gather of rows, as the memory's
        if (!(res.state[i] = tg_embedding(g, st->state[i], rows))) return false;
    res.context = tg_embedding(g, st->context, rows);
    *out = res;
    return res.context != NULL;
}

// --- Training -----------------------------------------------------------------------

// A float tensor's values as doubles, in the arena.
static double *to_doubles(tg_graph *g, const tg_tensor *t) {
    double *v = tg_graph_alloc(g, (size_t)t->numel * sizeof *v);
    for (int64_t i = 0; i < t->numel; i++) v[i] = tg_tensor_get(t, i);
    return v;
}

// Index of the largest of v[0..n) (the first, on ties).
static int32_t argmax(const double *v, int64_t n) {
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return (int32_t)best;
}

tg_tensor *(tg_seq2seq_forward)(tg_graph *g, const tg_seq2seq *m, tg_tensor *src, tg_tensor *src_lengths,
                                tg_tensor *tgt, double teacher_forcing, tg_rng *rng, tg_tensor **weights) {
    if (weights) *weights = NULL;
    char s[64];
    if (!tgt || tgt->dtype != TG_I32 || tgt->shape.n != 2 || tgt->shape.d[0] < 1 ||
        (src && src->shape.n == 2 && tgt->shape.d[1] != src->shape.d[1])) // a bad source is encode's to report
        return tg_fail(g, "seq2seq", "targets %s; they must be int32 ids [T >= 1, B], time-major, B as the source's",
                       tgt ? tg_shape_str(tgt->shape, s, sizeof s) : "NULL");
    if (!(teacher_forcing >= 0 && teacher_forcing <= 1))
        return tg_fail(g, "seq2seq", "teacher forcing ratio %g; it must be in [0, 1]", teacher_forcing);
    bool sampled = teacher_forcing > 0 && teacher_forcing < 1;
    if (sampled && !rng)
        return tg_fail(g, "seq2seq", "teacher forcing ratio %g draws from a generator, and rng is NULL",
                       teacher_forcing);
    tg_seq2seq_state st;
    if (!(tg_seq2seq_encode)(g, m, src, src_lengths, rng, &st)) return NULL;
    int64_t T = tgt->shape.d[0], B = tgt->shape.d[1], V = m->cfg.tgt_vocab;
    const int32_t *gold = tgt->data;                                  // [T, B]
    tg_tensor **logits = tg_graph_alloc(g, (size_t)T * sizeof *logits); // T of [B, V]
    tg_tensor **w = tg_graph_alloc(g, (size_t)T * sizeof *w);           // T of [B, S]
    tg_tensor *tokens = tg_full(g, TG_I32, tg_shape1(B), m->cfg.bos_id); // [B]
    for (int64_t t = 0; t < T; t++) {
        if (!(logits[t] = (tg_seq2seq_step)(g, m, &st, tokens, rng, &w[t]))) return NULL;
        if (t + 1 == T) break;
        tokens = tg_zeros(g, TG_I32, tg_shape1(B)); // [B], fresh: the last step's embedding keeps its ids for backward
        int32_t *next = tokens->data;
        const double *pred = teacher_forcing < 1 ? to_doubles(g, logits[t]) : NULL; // [B, V]
        for (int64_t b = 0; b < B; b++) {
            bool use_gold = teacher_forcing >= 1 || (sampled && tg_rng_uniform(rng) < teacher_forcing);
            next[b] = use_gold ? gold[t * B + b] : argmax(pred + b * V, V);
        }
    }
    if (weights) *weights = tg_stack(g, (int)T, w, 0); // [T, B, S]
    return tg_stack(g, (int)T, logits, 0);             // [T, B, V]
}

tg_tensor *(tg_seq2seq_loss)(tg_graph *g, const tg_seq2seq *m, tg_tensor *src, tg_tensor *src_lengths, tg_tensor *tgt,
                             double teacher_forcing, tg_rng *rng) {
    tg_tensor *logits = (tg_seq2seq_forward)(g, m, src, src_lengths, tgt, teacher_forcing, rng, NULL); // [T, B, V]
    if (!logits) return NULL;
    int64_t TB = tgt->numel;
    // label_smoothing 0 gives tg_cross_entropy's bits
    return tg_cross_entropy_smoothed(g, tg_reshape(g, logits, tg_shape2(TB, m->cfg.tgt_vocab)),
                                     tg_reshape(g, tgt, tg_shape1(TB)), TG_REDUCE_MEAN, m->cfg.pad_id,
                                     m->cfg.label_smoothing);
}

// --- Decoding -----------------------------------------------------------------------

typedef struct {
    bool grad, training;
} saved_modes;

// no_grad and eval mode for a decoding call; the caller's modes come back with restore_modes.
static saved_modes inference_modes(tg_graph *g) {
    saved_modes s = {tg_graph_grad_enabled(g), tg_graph_training(g)};
    tg_graph_set_grad_enabled(g, false);
    tg_graph_set_training(g, false);
    return s;
}

static void restore_modes(tg_graph *g, saved_modes s) {
    tg_graph_set_grad_enabled(g, s.grad);
    tg_graph_set_training(g, s.training);
}

static double normalised(double log_prob, int length, double alpha) {
    return alpha == 0 ? log_prob : log_prob / pow((double)length, alpha);
}

static bool check_opts(tg_graph *g, const tg_decode_opts *o, bool beam) {
    if (o && o->max_len >= 1 && (!beam || o->beam_size >= 1) && o->alpha >= 0) return true;
    tg_fail(g, "seq2seq", "decoding options: max_len %d, beam_size %d, alpha %g; max_len%s must be at least 1 and "
                          "alpha not negative",
            o ? o->max_len : 0, o ? o->beam_size : 0, o ? o->alpha : 0.0, beam ? " and beam_size" : "");
    return false;
}

// One decoding step for n rows from the previous tokens prev[n]: log-probabilities [n, V]
// and attention weights [n, S] as doubles. False on error.
static bool decode_step(tg_graph *g, const tg_seq2seq *m, tg_seq2seq_state *st, const int32_t *prev, int64_t n,
                        double **log_probs, double **attn) {
    tg_tensor *w, *logits = (tg_seq2seq_step)(g, m, st, tg_from_data(g, TG_I32, tg_shape1(n), prev), NULL, &w);
    if (!logits) return false;
    *log_probs = to_doubles(g, tg_log_softmax(g, logits, 1));
    *attn = to_doubles(g, w);
    return true;
}

bool (tg_seq2seq_greedy)(tg_graph *g, const tg_seq2seq *m, tg_tensor *src, tg_tensor *src_lengths,
                         const tg_decode_opts *opts, tg_hypothesis *out) {
    if (!check_opts(g, opts, false)) return false;
    saved_modes modes = inference_modes(g);
    tg_seq2seq_state st;
    bool ok = (tg_seq2seq_encode)(g, m, src, src_lengths, NULL, &st);
    int64_t S = ok ? src->shape.d[0] : 0, B = ok ? src->shape.d[1] : 0, V = m->cfg.tgt_vocab;
    int max_len = opts->max_len, eos = m->cfg.eos_id;
    int32_t *prev = tg_graph_alloc(g, (size_t)B * sizeof *prev); // [B]
    for (int64_t b = 0; ok && b < B; b++) {
        int src_len = src_lengths ? ((const int32_t *)src_lengths->data)[b] : (int)S;
        out[b] = (tg_hypothesis){.tokens = tg_graph_alloc(g, (size_t)max_len * sizeof(int32_t)),
                                 .attention = tg_graph_alloc(g, (size_t)max_len * (size_t)src_len * sizeof(double)),
                                 .src_len = src_len};
        prev[b] = m->cfg.bos_id;
    }
    for (int t = 0, running = (int)B; ok && t < max_len && running > 0; t++) {
        double *lp, *w; // [B, V], [B, S]
        if (!(ok = decode_step(g, m, &st, prev, B, &lp, &w))) break;
        for (int64_t b = 0; b < B; b++) {
            tg_hypothesis *h = &out[b];
            if (h->finished) continue; // it keeps feeding EOS, which nobody reads
            int32_t y = argmax(lp + b * V, V);
            h->tokens[h->length] = prev[b] = y;
            h->log_prob += lp[b * V + y];
            memcpy(h->attention + (size_t)h->length * (size_t)h->src_len, w + b * S, (size_t)h->src_len * sizeof *w);
            h->length++;
            if (y == eos) h->finished = true, running--;
        }
    }
    for (int64_t b = 0; ok && b < B; b++) out[b].score = normalised(out[b].log_prob, out[b].length, opts->alpha);
    restore_modes(g, modes);
    return ok;
}

// Beam search keeps its hypotheses as a tree of nodes: each token points to the one before.
typedef struct {
    int32_t token;
    int parent;         // node of the previous token; -1 for the first
    const double *attn; // [S]: the weights the token was predicted with
} beam_node;

typedef struct {
    double log_prob;
    int node;           // last token's node (-1 before the first step)
    int row;            // row of the decoder state it extends (candidates)
    int32_t token;      // the token it adds (candidates)
} beam_entry;

// Inserts c into best[0..*n) (sorted by log_prob, descending, at most cap kept); an equal
// log_prob goes after the entries already there, so earlier rows and tokens win ties.
static void keep_best(beam_entry *best, int *n, int cap, beam_entry c) {
    if (*n == cap && !(c.log_prob > best[cap - 1].log_prob)) return;
    int i = *n < cap ? (*n)++ : cap - 1;
    for (; i > 0 && c.log_prob > best[i - 1].log_prob; i--) best[i] = best[i - 1];
    best[i] = c;
}

// Writes the hypothesis that ends at node into h, walking the tree back.
static void backtrack(tg_graph *g, const beam_node *nodes, const beam_entry *e, int length, int S, double alpha,
                      int eos, tg_hypothesis *h) {
    *h = (tg_hypothesis){.tokens = tg_graph_alloc(g, (size_t)length * sizeof(int32_t)),
                         .length = length,
                         .log_prob = e->log_prob,
                         .score = normalised(e->log_prob, length, alpha),
                         .attention = tg_graph_alloc(g, (size_t)length * (size_t)S * sizeof(double)),
                         .src_len = S};
    int i = length;
    for (int k = e->node; k >= 0; k = nodes[k].parent) {
        h->tokens[--i] = nodes[k].token;
        memcpy(h->attention + (size_t)i * (size_t)S, nodes[k].attn, (size_t)S * sizeof(double));
    }
    h->finished = h->tokens[length - 1] == eos;
}

// Models that can be decoded together: the same source ids, target ids and specials.
static bool check_ensemble(tg_graph *g, const tg_seq2seq *const *models, int n_models) {
    if (!models || n_models < 1 || !models[0])
        return tg_fail(g, "seq2seq", "beam search over %d models; it needs at least one", models ? n_models : 0), false;
    const tg_seq2seq_config *a = &models[0]->cfg;
    for (int i = 1; i < n_models; i++) {
        const tg_seq2seq_config *b = models[i] ? &models[i]->cfg : NULL;
        if (!b || b->src_vocab != a->src_vocab || b->tgt_vocab != a->tgt_vocab || b->bos_id != a->bos_id ||
            b->eos_id != a->eos_id) {
            tg_fail(g, "seq2seq", "ensemble model %d (vocabularies %d, %d, BOS %d, EOS %d) does not match model 0 "
                                  "(%d, %d, BOS %d, EOS %d)", i, b ? b->src_vocab : 0, b ? b->tgt_vocab : 0,
                    b ? b->bos_id : 0, b ? b->eos_id : 0, a->src_vocab, a->tgt_vocab, a->bos_id, a->eos_id);
            return false;
        }
    }
    return true;
}

// One step of every model for n rows: the log of the mean of their probabilities [n, V] (the
// rule of fairseq's ensembles) and the mean of their attention weights [n, S]. One model's
// values pass through untouched. False on error.
static bool ensemble_step(tg_graph *g, const tg_seq2seq *const *models, int n_models, tg_seq2seq_state *st,
                          const int32_t *prev, int64_t n, int64_t S, double **log_probs, double **attn) {
    if (n_models == 1) return decode_step(g, models[0], &st[0], prev, n, log_probs, attn);
    int64_t V = models[0]->cfg.tgt_vocab;
    double **lp = tg_graph_alloc(g, (size_t)n_models * sizeof *lp); // each [n, V]
    double *mean_lp = tg_graph_alloc(g, (size_t)(n * V) * sizeof *mean_lp), // [n, V]
        *mean_w = tg_graph_alloc(g, (size_t)(n * S) * sizeof *mean_w);      // [n, S]
    memset(mean_w, 0, (size_t)(n * S) * sizeof *mean_w);
    for (int i = 0; i < n_models; i++) {
        double *w; // [n, S]
        if (!decode_step(g, models[i], &st[i], prev, n, &lp[i], &w)) return false;
        for (int64_t j = 0; j < n * S; j++) mean_w[j] += w[j] / n_models;
    }
    for (int64_t j = 0; j < n * V; j++) { // log(mean of exp), shifted by the largest for range
        double top = lp[0][j], sum = 0;
        for (int i = 1; i < n_models; i++) top = lp[i][j] > top ? lp[i][j] : top;
        for (int i = 0; i < n_models; i++) sum += exp(lp[i][j] - top);
        mean_lp[j] = top == -INFINITY ? -INFINITY : top + log(sum / n_models);
    }
    *log_probs = mean_lp;
    *attn = mean_w;
    return true;
}

int (tg_seq2seq_beam_search)(tg_graph *g, const tg_seq2seq *m, tg_tensor *src, const tg_decode_opts *opts,
                             tg_hypothesis *out, int max_out) {
    return (tg_seq2seq_beam_search_ensemble)(g, &m, 1, src, opts, out, max_out);
}

int (tg_seq2seq_beam_search_ensemble)(tg_graph *g, const tg_seq2seq *const *models, int n_models, tg_tensor *src,
                                      const tg_decode_opts *opts, tg_hypothesis *out, int max_out) {
    char s[64];
    if (!check_opts(g, opts, true) || !check_ensemble(g, models, n_models)) return -1;
    if (!src || src->dtype != TG_I32 || src->shape.n < 1 || src->shape.n > 2 ||
        (src->shape.n == 2 && src->shape.d[1] != 1)) {
        tg_fail(g, "seq2seq", "beam search source %s; it takes one sequence, int32 [S] or [S, 1]",
                src ? tg_shape_str(src->shape, s, sizeof s) : "NULL");
        return -1;
    }
    if (!out || max_out < 1) return tg_fail(g, "seq2seq", "beam search needs room for at least one hypothesis"), -1;
    saved_modes modes = inference_modes(g);
    const tg_seq2seq *m = models[0]; // for the specials and the vocabulary, which all share
    int k = opts->beam_size, max_len = opts->max_len, eos = m->cfg.eos_id, S = (int)src->shape.d[0];
    int V = m->cfg.tgt_vocab;
    tg_seq2seq_state *st = tg_graph_alloc(g, (size_t)n_models * sizeof *st); // one per model
    bool ok = true;
    for (int i = 0; ok && i < n_models; i++)
        ok = (tg_seq2seq_encode)(g, models[i], tg_reshape(g, src, tg_shape2(S, 1)), NULL, NULL, &st[i]);
    beam_node *nodes = tg_graph_alloc(g, (size_t)max_len * (size_t)k * sizeof *nodes); // at most k a step
    beam_entry *live = tg_graph_alloc(g, (size_t)k * sizeof *live), *cand = tg_graph_alloc(g, (size_t)k * sizeof *cand);
    beam_entry *done = tg_graph_alloc(g, (size_t)k * sizeof *done); // finished, in the order they finished
    int32_t *prev = tg_graph_alloc(g, (size_t)k * sizeof *prev), *rows = tg_graph_alloc(g, (size_t)k * sizeof *rows);
    int *length = tg_graph_alloc(g, (size_t)k * sizeof *length); // of done[i]
    int n_live = 1, n_done = 0, n_nodes = 0;
    live[0] = (beam_entry){0, -1, 0, m->cfg.bos_id};
    prev[0] = m->cfg.bos_id;
    for (int t = 0; ok && t < max_len && n_done < k && n_live > 0; t++) {
        double *lp, *w; // [n_live, V], [n_live, S]
        if (!(ok = ensemble_step(g, models, n_models, st, prev, n_live, S, &lp, &w))) break;
        int want = k - n_done, n_cand = 0; // the beam narrows as hypotheses finish
        for (int r = 0; r < n_live; r++)
            for (int v = 0; v < V; v++)
                keep_best(cand, &n_cand, want, (beam_entry){live[r].log_prob + lp[r * V + v], -1, r, v});
        int n_next = 0;
        for (int i = 0; i < n_cand; i++) { // live[] is rewritten below, after its last read here
            cand[i].node = n_nodes;
            nodes[n_nodes++] = (beam_node){cand[i].token, live[cand[i].row].node, w + (size_t)cand[i].row * (size_t)S};
        }
        for (int i = 0; i < n_cand; i++) {
            if (cand[i].token == eos || t + 1 == max_len) { // finished, or cut: it leaves the beam
                length[n_done] = t + 1;
                done[n_done++] = cand[i];
            } else {
                rows[n_next] = cand[i].row;
                prev[n_next] = cand[i].token;
                live[n_next++] = cand[i];
            }
        }
        n_live = n_next;
        tg_tensor *kept = n_live > 0 && n_done < k ? tg_from_data(g, TG_I32, tg_shape1(n_live), rows) : NULL;
        for (int i = 0; ok && kept && i < n_models; i++) // every model's state follows the surviving rows
            ok = (tg_seq2seq_state_select)(g, models[i], &st[i], kept, &st[i]);
    }
    int *order = tg_graph_alloc(g, (size_t)k * sizeof *order); // done[] by normalised score, best first
    for (int i = 0; i < n_done; i++) {
        int j = i;
        double score = normalised(done[i].log_prob, length[i], opts->alpha);
        for (; j > 0 && score > normalised(done[order[j - 1]].log_prob, length[order[j - 1]], opts->alpha); j--)
            order[j] = order[j - 1];
        order[j] = i;
    }
    int n_out = ok ? (n_done < max_out ? n_done : max_out) : -1;
    for (int i = 0; i < n_out; i++)
        backtrack(g, nodes, &done[order[i]], length[order[i]], S, opts->alpha, eos, &out[i]);
    restore_modes(g, modes);
    return n_out;
}
