// tg_seq2seq.h: an attention-based encoder-decoder (Bahdanau et al. 2015, Luong et al. 2015).
//
//   encoder   src ids [S, B] -> embedding -> any tg_rnn (any cell, stacked, bidirectional)
//             -> outputs [S, B, K] (K = directions * hidden) and final states
//   bridge    decoder state i = tanh(Linear_i(concat of the last layer's forward and reverse
//             final state i)) [B, Hd]; a decoder state the encoder's cell lacks (an LSTM's c
//             after a GRU) is bridged from h
//   decoder   one tg_cell of any type, input [embedding(y_{t-1}); context_{t-1}] (input
//             feeding); its new h queries the attention over the encoder outputs
//   output    logits = Linear([h; context]) over the target vocabulary
// Parameters, named as a PyTorch module tree would name them:
//   encoder.embedding.weight, encoder.rnn.weight_ih_l0 ..., bridge.0.weight, bridge.0.bias
//   (bridge.1.* for an LSTM decoder's c), decoder.embedding.weight, decoder.cell.weight_ih ...,
//   decoder.attention.W.weight ..., decoder.out.weight, decoder.out.bias
// Token sequences are time-major like everything recurrent here: src [S, B], tgt [T, B].
//
//     tg_seq2seq m;
//     tg_seq2seq_init(&m, &(tg_seq2seq_config){.src_vocab = 40, ..., .enc_cell = &tg_cell_lstm,
//                     .dec_cell = &tg_cell_lstm, .attention = &tg_attention_bahdanau, ...}, params, "", &rng);
//     tg_tensor *loss = tg_seq2seq_loss(g, &m, src, src_len, tgt, 0.9, &rng); // then tg_backward
//     tg_seq2seq_greedy(g, &m, src, src_len, &(tg_decode_opts){.max_len = 40}, hyps);         // a batch
//     tg_seq2seq_beam_search(g, &m, one_src, &(tg_decode_opts){.max_len = 40, .beam_size = 5, .alpha = 0.6},
//                            hyps, 5);                                                          // one source
#ifndef TG_SEQ2SEQ_H
#define TG_SEQ2SEQ_H

#include "tg_attention.h"
#include "tg_graph.h"
#include "tg_params.h"
#include "tg_rnn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int src_vocab, tgt_vocab;               // vocabulary sizes (they may differ)
    int src_embed, tgt_embed;               // embedding sizes
    int hidden_size;                        // encoder hidden size per direction
    int dec_hidden;                         // decoder hidden size (0: the keys' size, directions * hidden_size)
    int num_layers;                         // encoder layers (0: 1)
    bool bidirectional;                     // encoder
    const tg_cell_type *enc_cell, *dec_cell; // &tg_cell_gru, &tg_cell_lstm, ... or a user's
    const tg_attention_type *attention;     // &tg_attention_bahdanau, ...
    int attn_size;                          // hidden size of additive and concat scores (0: dec_hidden)
    double dropout;                         // on embeddings, between encoder layers and on [h; context]
    double label_smoothing;                 // of tg_seq2seq_loss, as PyTorch's cross_entropy (0: none)
    int pad_id, bos_id, eos_id;             // target specials, distinct; pad_id is ignored by the loss
    tg_dtype dtype;                         // TG_F32 (0) or TG_F64
} tg_seq2seq_config;

typedef struct {
    tg_seq2seq_config cfg;
    int key_size;                                    // K = directions * hidden_size
    tg_tensor *src_embedding, *tgt_embedding;        // [Vs, Es], [Vt, Et]
    tg_rnn encoder;
    tg_tensor *bridge_w[TG_CELL_MAX_STATES];         // [Hd, K], one per decoder state
    tg_tensor *bridge_b[TG_CELL_MAX_STATES];         // [Hd]
    tg_cell decoder;                                 // input Et + K, hidden Hd
    tg_attention attention;                          // query Hd, keys K
    tg_tensor *out_w, *out_b;                        // [Vt, Hd + K], [Vt]
} tg_seq2seq;

// Creates the model, parameters in p named prefix + the names above, initialised as PyTorch
// does (embeddings N(0, 1), linears U(+-1/sqrt(in))). False (tg_fail) on error.
bool tg_seq2seq_init(tg_seq2seq *m, const tg_seq2seq_config *cfg, tg_params *p, const char *prefix, tg_rng *rng);

// A batch's decoding state: the attention memory and, per hypothesis row, the decoder's
// states and last context. Everything lives in the graph it was made in.
typedef struct {
    tg_attention_memory memory;             // encoder outputs [B, S, K], mask [B, S]
    tg_tensor *state[TG_CELL_MAX_STATES];   // decoder states [B, Hd] (h first)
    tg_tensor *context;                     // last context [B, K]: zeros before the first step
} tg_seq2seq_state;

// Encodes src i32 [S, B] (lengths i32 [B] in [1, S], or NULL: unpadded) and starts the decoder
// from the bridged states; rng drives dropout in training mode. False (tg_fail) on error.
bool tg_seq2seq_encode(tg_graph *g, const tg_seq2seq *m, tg_tensor *src, tg_tensor *src_lengths, tg_rng *rng,
                       tg_seq2seq_state *st);
// One decoder step: previous tokens i32 [B] -> logits [B, Vt]; advances st and writes the
// attention weights [B, S] when weights is not NULL. NULL on error.
tg_tensor *tg_seq2seq_step(tg_graph *g, const tg_seq2seq *m, tg_seq2seq_state *st, tg_tensor *tokens, tg_rng *rng,
                           tg_tensor **weights);
// The state of rows i32 [N] of st (reordering or replicating hypotheses). False on error.
bool tg_seq2seq_state_select(tg_graph *g, const tg_seq2seq *m, const tg_seq2seq_state *st, tg_tensor *rows,
                             tg_seq2seq_state *out);

// Logits [T, B, Vt] for targets tgt i32 [T, B] (EOS included, pad_id after), decoding from BOS;
// weights (if not NULL) gets the attention [T, B, S]. Scheduled sampling: each sequence's next
// input is the gold token with probability teacher_forcing, else the model's argmax, drawn
// from rng (NULL is fine for ratios 0 and 1 without dropout).
tg_tensor *tg_seq2seq_forward(tg_graph *g, const tg_seq2seq *m, tg_tensor *src, tg_tensor *src_lengths, tg_tensor *tgt,
                              double teacher_forcing, tg_rng *rng, tg_tensor **weights);
// The mean cross-entropy (a scalar) over target tokens that are not pad_id, decoding as
// tg_seq2seq_forward does. NULL on error.
tg_tensor *tg_seq2seq_loss(tg_graph *g, const tg_seq2seq *m, tg_tensor *src, tg_tensor *src_lengths, tg_tensor *tgt,
                           double teacher_forcing, tg_rng *rng);

// --- Decoding ---

typedef struct {
    int max_len;    // most tokens a hypothesis may have, EOS included (required, >= 1)
    int beam_size;  // k, for beam search (required there, >= 1)
    double alpha;   // length normalisation: score = log_prob / length^alpha (0: none)
} tg_decode_opts;

// A decoded output; its arrays live in the graph's arena (valid until reset or free).
typedef struct {
    int32_t *tokens;   // [length], EOS last when finished
    int length;
    bool finished;     // ended with EOS (otherwise it was cut at max_len)
    double log_prob;   // sum of the tokens' log-probabilities
    double score;      // log_prob / length^alpha
    double *attention; // [length, src_len]: the weights each token was predicted with
    int src_len;       // the source's own length (padding left out)
} tg_hypothesis;

// Greedy decoding of src i32 [S, B] (lengths as for encode) into out[B], without recording
// and with dropout off for the call. False on error.
bool tg_seq2seq_greedy(tg_graph *g, const tg_seq2seq *m, tg_tensor *src, tg_tensor *src_lengths,
                       const tg_decode_opts *opts, tg_hypothesis *out);
// Beam search over one source src i32 [S] or [S, 1] (finished hypotheses leave the beam, until
// k finish or max_len): up to max_out into out, best score first; returns how many, -1 on error.
int tg_seq2seq_beam_search(tg_graph *g, const tg_seq2seq *m, tg_tensor *src, const tg_decode_opts *opts,
                           tg_hypothesis *out, int max_out);
// Beam search with an ensemble of n_models >= 1 models that share their vocabularies and
// specials: a token's log-probability is the log of the mean of the models' probabilities, a
// hypothesis's attention the mean of theirs. One model gives tg_seq2seq_beam_search's result.
int tg_seq2seq_beam_search_ensemble(tg_graph *g, const tg_seq2seq *const *models, int n_models, tg_tensor *src,
                                    const tg_decode_opts *opts, tg_hypothesis *out, int max_out);

// Call-site recording, as for the ops.
#define tg_seq2seq_encode(g, ...) tg_seq2seq_encode(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_seq2seq_step(g, ...) tg_seq2seq_step(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_seq2seq_state_select(g, ...) tg_seq2seq_state_select(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_seq2seq_forward(g, ...) tg_seq2seq_forward(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_seq2seq_loss(g, ...) tg_seq2seq_loss(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_seq2seq_greedy(g, ...) tg_seq2seq_greedy(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_seq2seq_beam_search(g, ...) tg_seq2seq_beam_search(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)
#define tg_seq2seq_beam_search_ensemble(g, ...) \
    tg_seq2seq_beam_search_ensemble(tg_here((g), __FILE__, __LINE__), __VA_ARGS__)

#ifdef __cplusplus
}
#endif
#endif
