// g2p: how do you say a word you have never seen? Spelling in, phonemes out.
//
// Trained on the CMU Pronouncing Dictionary (HELLO -> HH AH L OW). A bidirectional LSTM reads
// the letters; an LSTM decoder writes one ARPAbet phoneme at a time and, before each, looks
// back at the letters through Bahdanau attention, so it learns which letters it is sounding
// out. tg_seq2seq is the whole model; back-propagation through decoder, attention and
// encoder comes from the tape. Reports phoneme and word error rates of a beam search on the
// held-out test words (against each word's first pronunciation, and word error rate against
// any of its pronunciations too, as published results are scored), shows some of them, and
// draws the attention of one word and the training curve as SVG pictures.
//
//   build/examples/g2p --minutes 2                                      # the bundled 15k words
//   build/examples/g2p --minutes 60 --data data/full --hidden 192 --threads 2 --save g2p.safetensors
//   build/examples/g2p --load g2p.safetensors --data data/full --minutes 0   # score it, no training
//   build/examples/g2p --load g2p.safetensors --pronounce hello world tapegrad
//   build/examples/g2p --load a.safetensors --ensemble b.safetensors --data data/full  # two models together
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "tg_checkpoint.h"
#include "tg_ex_train.h"
#include "tg_plot.h"

#ifndef TG_DATA_DIR
#define TG_DATA_DIR "data"
#endif

enum { MAX_TOKENS = TG_EX_EDIT_MAX }; // longest output a decode may produce (and the edit distance takes)

typedef struct {
    char cell[24]; // a tg_ex_cell name ("lstm", "gru", ...): what a checkpoint's config records
    int embed, hidden, layers;
    int stress; // phones keep their stress digit (AH0, AH1): 69 symbols instead of 39
} sizes;

typedef struct {
    sizes s;
    tg_ex_vocab *letters, *phones;
    tg_params *params;
    tg_seq2seq net;
    double indrnn_bound[2]; // IndRNN only: |weight_hh| bounds of encoder and decoder (0: no clamp)
    tg_param_average *avg;  // --average: the weights' moving average, evaluated and saved (NULL: none)
    const tg_seq2seq *partner; // --ensemble: a second net the beam search decodes with (NULL: none)
} model;

// The average a checkpoint's config records: its decay (0: saved without one) and updates.
typedef struct {
    double decay;
    int64_t updates;
} average_state;

// A word of the dictionary as ids: letters [src_len], phones [tgt_len] ending in EOS.
typedef struct {
    const char *word;
    int32_t *src, *tgt;
    int src_len, tgt_len;
} example;

// Reduce-on-plateau: the rate halves when the dev error has not improved for `patience`
// evaluations. It is a function of the evaluations alone (they come every N steps), so a
// run is deterministic, and a checkpoint carries the two numbers it needs to resume.
typedef struct {
    double best;
    int stale;
} plateau;

static bool model_init(model *m, double dropout, double label_smoothing, tg_rng *rng) {
    m->params = tg_params_new();
    const tg_cell_type *cell = tg_ex_cell(m->s.cell);
    tg_seq2seq_config c = {
        .src_vocab = tg_ex_vocab_size(m->letters), .tgt_vocab = tg_ex_vocab_size(m->phones),
        .src_embed = m->s.embed, .tgt_embed = m->s.embed,
        .hidden_size = m->s.hidden, .num_layers = m->s.layers, .bidirectional = true, // keys K = 2H
        .dec_hidden = 2 * m->s.hidden, .attn_size = m->s.hidden,
        .enc_cell = cell, .dec_cell = cell, .attention = &tg_attention_bahdanau, .dropout = dropout,
        .label_smoothing = label_smoothing, .pad_id = TG_EX_PAD, .bos_id = TG_EX_BOS, .eos_id = TG_EX_EOS,
        .dtype = TG_F32};
    return tg_seq2seq_init(&m->net, &c, m->params, "", rng);
}

// Bounds an IndRNN's recurrent weights after an optimizer step, as Li et al. (2018) do: the
// gradient through T steps of relu(... + u*h) grows as u^T, so |u| <= 2^(1/T) (bounds set by
// set_indrnn_bounds). The decoder is one cell, not a tg_rnn: it is clamped through a one-layer
// view of it (the copy names the same parameters). Other cells: nothing to do.
static void clamp_indrnn(model *m) {
    if (!m->indrnn_bound[0]) return;
    (void)tg_indrnn_clamp(&m->net.encoder, m->indrnn_bound[0]);
    tg_rnn decoder = {.cfg = {.cell = &tg_cell_indrnn, .num_layers = 1}, .n_dirs = 1};
    decoder.cells[0][0] = m->net.decoder;
    (void)tg_indrnn_clamp(&decoder, m->indrnn_bound[1]);
}

// --- Data: words as ids, batches of words of similar length --------------------------------

// Letter ids of word (at most strlen(word) of them), upper-cased as the dictionary is. A
// character never seen in training is UNK, and so is a whole UTF-8 sequence ("ö"): one id per
// character. Returns how many ids; *unknown (when not NULL) counts the UNKs.
static int spell(const tg_ex_vocab *letters, const char *word, int32_t *ids, int *unknown) {
    int n = 0;
    for (const char *c = word; *c; c++) {
        if ((*c & 0xC0) == 0x80) continue; // a UTF-8 continuation byte: part of the character before
        char up = (char)toupper((unsigned char)*c);
        ids[n] = tg_ex_vocab_id_n(letters, &up, 1);
        if (unknown) *unknown += ids[n] == TG_EX_UNK;
        n++;
    }
    return n;
}

// Every pronunciation as ids, in one allocation (*ids). When grow is set the vocabularies are
// made first, from the training words alone: a symbol only dev or test have is UNK, as it
// would be for a user's word.
static example *encode(const tg_ex_cmudict *dict, model *m, bool grow, int32_t **ids) {
    size_t total = 0;
    for (int i = 0; i < dict->n; i++) {
        const tg_ex_pron *p = &dict->items[i];
        total += strlen(p->word) + (size_t)p->n_phones + 1;
        if (!grow || p->split != TG_EX_TRAIN) continue;
        for (int k = 0; p->word[k]; k++) tg_ex_vocab_add_n(m->letters, &p->word[k], 1);
        for (int k = 0; k < p->n_phones; k++) tg_ex_vocab_add(m->phones, p->phones[k]);
    }
    example *ex = malloc(sizeof *ex * (size_t)dict->n);
    int32_t *at = *ids = malloc(sizeof *at * total);
    for (int i = 0; ex && at && i < dict->n; i++) {
        const tg_ex_pron *p = &dict->items[i];
        ex[i] = (example){.word = p->word, .src = at, .tgt_len = p->n_phones + 1};
        ex[i].src_len = spell(m->letters, p->word, ex[i].src, NULL);
        ex[i].tgt = at + ex[i].src_len;
        for (int k = 0; k < p->n_phones; k++) ex[i].tgt[k] = tg_ex_vocab_id(m->phones, p->phones[k]);
        ex[i].tgt[p->n_phones] = TG_EX_EOS;
        at += ex[i].src_len + ex[i].tgt_len;
    }
    return ex;
}

// Sorts idx[0..n) by word length, stably (a counting pass per length: words are short).
static void sort_by_length(const example *ex, int *idx, int n) {
    int *tmp = malloc(sizeof *tmp * (size_t)n), k = 0, longest = 0;
    for (int i = 0; i < n; i++) longest = ex[idx[i]].src_len > longest ? ex[idx[i]].src_len : longest;
    for (int len = 0; len <= longest; len++)
        for (int i = 0; i < n; i++)
            if (ex[idx[i]].src_len == len) tmp[k++] = idx[i];
    memcpy(idx, tmp, sizeof *tmp * (size_t)n);
    free(tmp);
}

// The training order of one epoch, a function of (seed, epoch) alone so that a resumed run
// carries on exactly: shuffle, sort windows of 32 batches by length (a batch of similar
// lengths wastes little on padding), then shuffle the batches. order holds n words; batch k
// of the epoch is order[start[k] * B ...].
static void epoch_order(const example *ex, const int *train, int n, int B, uint64_t seed, int64_t epoch, int *order,
                        int *start) {
    tg_rng r;
    tg_rng_seed(&r, seed * 1000003u + (uint64_t)epoch);
    memcpy(order, train, sizeof *order * (size_t)n);
    tg_ex_shuffle(order, n, &r);
    for (int at = 0; at < n; at += 32 * B) sort_by_length(ex, order + at, n - at < 32 * B ? n - at : 32 * B);
    for (int k = 0; k < n / B; k++) start[k] = k;
    tg_ex_shuffle(start, n / B, &r);
}

// A batch of B words: letters [S, B], their lengths [B], phones [T, B]; PAD (0) after the end.
static void make_batch(tg_graph *g, const example *ex, const int *idx, int B, tg_tensor **src, tg_tensor **len,
                       tg_tensor **tgt) {
    int S = 1, T = 1;
    for (int b = 0; b < B; b++) {
        S = ex[idx[b]].src_len > S ? ex[idx[b]].src_len : S;
        T = ex[idx[b]].tgt_len > T ? ex[idx[b]].tgt_len : T;
    }
    *src = tg_zeros(g, TG_I32, tg_shape2(S, B));
    *tgt = tg_zeros(g, TG_I32, tg_shape2(T, B));
    *len = tg_zeros(g, TG_I32, tg_shape1(B));
    int32_t *s = (*src)->data, *t = (*tgt)->data, *l = (*len)->data;
    for (int b = 0; b < B; b++) {
        const example *e = &ex[idx[b]];
        l[b] = e->src_len;
        for (int i = 0; i < e->src_len; i++) s[i * B + b] = e->src[i];
        for (int i = 0; i < e->tgt_len; i++) t[i * B + b] = e->tgt[i];
    }
}

// --- Decoding and scoring ----------------------------------------------------------------

// Room for the longest plausible pronunciation: "X" is EH K S, so 2 a letter and a margin.
static tg_decode_opts decode_opts(int src_len, int beam) {
    int max_len = 2 * src_len + 5;
    return (tg_decode_opts){.max_len = max_len < MAX_TOKENS ? max_len : MAX_TOKENS, .beam_size = beam};
}

// The best hypothesis of a beam search over letters ids [n] (with --ensemble, of both nets
// together); valid until g is reset.
static tg_hypothesis decode_word(tg_graph *g, const model *m, const int32_t *ids, int n, int beam) {
    tg_hypothesis h = {0};
    tg_decode_opts o = decode_opts(n, beam);
    const tg_seq2seq *nets[2] = {&m->net, m->partner};
    tg_tensor *src = tg_from_data(g, TG_I32, tg_shape1(n), ids);
    if (tg_seq2seq_beam_search_ensemble(g, nets, m->partner ? 2 : 1, src, &o, &h, 1) < 1)
        h = (tg_hypothesis){0};
    return h;
}

// Phones of a hypothesis, EOS left out.
static int phones_of(const tg_hypothesis *h) { return h->length - (h->length > 0 && h->finished); }

// A hypothesis scored against a word's first pronunciation (tg_ex_errors); returns whether
// it was wrong.
static bool count(tg_ex_errors *e, const tg_hypothesis *h, const example *ex) {
    return tg_ex_errors_count(e, h->tokens, phones_of(h), h->finished, ex->tgt, ex->tgt_len - 1);
}

// Words idx[0..n) scored on `threads` threads, a task of words at a time, each thread with its
// own graph (tg_ex_parallel_for_graphs): greedily in batches of 256 against the first
// pronunciation (prons NULL; idx sorted by length, so batches pad little), or by beam search
// word by word, 64 a task, against the first and any (prons: the dictionary's entries, as ex).
enum { GREEDY_BATCH = 256, BEAM_TASK = 64 };
typedef struct {
    const model *m;
    const example *ex;
    const tg_ex_pron *prons; // NULL: greedy
    const int *idx;
    int n, beam;
    tg_ex_errors *e; // [tasks]: each task's own
} score_job;

static void score_greedy_batch(void *user, int task, tg_graph *g) {
    score_job *job = user;
    tg_hypothesis hyps[GREEDY_BATCH];
    int at = task * GREEDY_BATCH, b = job->n - at < GREEDY_BATCH ? job->n - at : GREEDY_BATCH;
    tg_tensor *src, *len, *tgt;
    tg_graph_reset(g);
    make_batch(g, job->ex, job->idx + at, b, &src, &len, &tgt);
    tg_decode_opts o = decode_opts((int)src->shape.d[0], 1);
    if (!tg_seq2seq_greedy(g, &job->m->net, src, len, &o, hyps)) return; // reported; the batch counts nothing
    for (int i = 0; i < b; i++) count(&job->e[task], &hyps[i], &job->ex[job->idx[at + i]]);
}

static void score_beam_task(void *user, int task, tg_graph *g) {
    score_job *job = user;
    tg_graph_reset(g); // once a task, not a word: the graph keeps its transposed weights
    for (int i = task * BEAM_TASK; i < job->n && i < (task + 1) * BEAM_TASK; i++) {
        const example *x = &job->ex[job->idx[i]];
        tg_hypothesis h = decode_word(g, job->m, x->src, x->src_len, job->beam);
        bool wrong = count(&job->e[task], &h, x);
        tg_ex_errors_count_any(&job->e[task], h.tokens, phones_of(&h), h.finished, wrong, &job->prons[job->idx[i]],
                               job->m->phones);
    }
}

static tg_ex_errors score_words(tg_graph *g, int threads, const model *m, const example *ex, const tg_ex_pron *prons,
                                const int *idx, int n, int beam) {
    int per_task = prons ? BEAM_TASK : GREEDY_BATCH, tasks = (n + per_task - 1) / per_task;
    score_job job = {m, ex, prons, idx, n, beam, calloc((size_t)tasks + 1, sizeof(tg_ex_errors))};
    tg_ex_errors e = {0};
    if (!job.e || !tg_ex_parallel_for_graphs(g, threads, tasks, prons ? score_beam_task : score_greedy_batch, &job))
        fprintf(stderr, "g2p: out of memory scoring %d words\n", n);
    for (int k = 0; job.e && k < tasks; k++) tg_ex_errors_add(&e, &job.e[k]);
    free(job.e);
    return e;
}

// --- Pictures (examples/common/plot.c draws them) -------------------------------------------

// The attention of hypothesis h over the letters ids [h->src_len] of word, as an SVG heatmap:
// a row per output phone (EOS included), a column per letter (<unk> for unknown ones).
static void write_heatmap(const char *path, const model *m, const char *word, const int32_t *ids,
                          const tg_hypothesis *h) {
    FILE *f = fopen(path, "w");
    if (!f) return (void)fprintf(stderr, "g2p: cannot write %s\n", path);
    const char **cols = malloc(sizeof *cols * (size_t)h->src_len), **rows = malloc(sizeof *rows * (size_t)h->length);
    for (int i = 0; i < h->src_len; i++) cols[i] = tg_ex_vocab_token(m->letters, ids[i]);
    for (int i = 0; i < h->length; i++) rows[i] = tg_ex_vocab_token(m->phones, h->tokens[i]);
    bool ok = tg_plot_heatmap_svg(f, h->attention, h->length, h->src_len, rows, cols);
    if (fclose(f) == 0 && ok) printf("attention of %s written to %s\n", word, path);
    else fprintf(stderr, "g2p: cannot write %s\n", path);
    free(cols), free(rows);
}

// The training curve (examples/common/plot.c). With fewer than two evaluations there is none,
// and the message says so.
static void write_curve(const char *path, const tg_plot_curve *c) {
    if (c->n < 2) {
        printf("g2p: training curve not drawn in %s: %d dev evaluation%s, and a curve takes two (train longer, or "
               "lower --eval-every)\n",
               path, c->n, c->n == 1 ? "" : "s");
        return;
    }
    tg_ex_error err;
    if (tg_plot_curve_write(path, c, "training loss (nats per phoneme)", "dev phoneme error rate (greedy)", &err))
        printf("training curve written to %s\n", path);
    else fprintf(stderr, "g2p: %s\n", err.msg);
}

// --- What a trained model is for ---------------------------------------------------------

// Pronounces words given by a user (upper-cased in place), by beam search; unknown characters
// are read as <unk>. The heatmap shows the first word.
static void pronounce_words(tg_graph *g, const model *m, char **words, int n_words, int beam, const char *heatmap) {
    for (int w = 0; w < n_words; w++) {
        int32_t *ids = malloc(sizeof *ids * (strlen(words[w]) + 1));
        for (char *c = words[w]; *c; c++) *c = (char)toupper((unsigned char)*c);
        int unknown = 0, n = spell(m->letters, words[w], ids, &unknown);
        tg_graph_reset(g);
        tg_hypothesis h = n ? decode_word(g, m, ids, n, beam) : (tg_hypothesis){0};
        char said[1024];
        printf("%-16s %s", words[w], tg_ex_vocab_join(m->phones, h.tokens, phones_of(&h), said, sizeof said));
        if (unknown)
            printf("   (%d character%s never seen in training, read as <unk>)", unknown, unknown > 1 ? "s" : "");
        printf("\n");
        if (w == 0 && heatmap && h.length) write_heatmap(heatmap, m, words[w], ids, &h);
        free(ids);
    }
}

// Beam search over the test words idx[0..n), none seen in training, on `threads` threads
// (score_words). Then shows `show` of them, evenly spread, beside the first pronunciation
// (* wrong; "= an alternate" when the prediction is one of the others), decoded again; the
// heatmap shows one of those (with show 0: the first word long enough to be interesting).
static tg_ex_errors test_words(tg_graph *g, int threads, const model *m, const example *ex, const tg_ex_pron *prons,
                               const int *idx, int n, int beam, int show, const char *heatmap) {
    tg_ex_errors e = score_words(g, threads, m, ex, prons, idx, n, beam);
    int every = show ? (n + show - 1) / show : 0;
    bool drawn = !heatmap;
    if (show) printf("%-16s %-28s %s\n", "word", "predicted", "dictionary (first pronunciation)");
    for (int i = 0; i < n && (every || !drawn); i += every ? every : 1) {
        const example *x = &ex[idx[i]];
        if (!every && x->src_len < 7) continue;
        tg_graph_reset(g);
        tg_hypothesis h = decode_word(g, m, x->src, x->src_len, beam);
        if (!drawn && x->src_len >= 7 && h.length) write_heatmap(heatmap, m, x->word, x->src, &h), drawn = true;
        if (!every) continue;
        tg_ex_errors one = {0};
        bool wrong = count(&one, &h, x);
        tg_ex_errors_count_any(&one, h.tokens, phones_of(&h), h.finished, wrong, &prons[idx[i]], m->phones);
        const char *mark = !one.wrong ? "" : one.wrong_any ? "   *" : "   * (= an alternate)";
        char said[1024], ref[1024];
        printf("%-16s %-28s %s%s\n", x->word, tg_ex_vocab_join(m->phones, h.tokens, phones_of(&h), said, sizeof said),
               tg_ex_vocab_join(m->phones, x->tgt, x->tgt_len - 1, ref, sizeof ref), mark);
    }
    return e;
}

// --- Checkpoints: tg_checkpoint, with sizes, vocabularies and the schedule's state as config --

// The config, a JSON object: {"cell", "embed", "hidden", "layers", "stress", "letters" (the
// letters in id order, one string), "phones" (space-separated, in id order), "best_dev_per",
// "stale_evals", "average_decay" (0: no --average), "average_updates"}. With --average the
// model file holds the averaged weights and the training state the trained ones.
static char *config_json(const model *m, plateau pl) {
    char letters[256] = "", phones[2048] = "";
    for (int i = TG_EX_RESERVED, n = 0; i < tg_ex_vocab_size(m->letters) && n < 255; i++)
        letters[n++] = tg_ex_vocab_token(m->letters, i)[0], letters[n] = 0;
    for (int i = TG_EX_RESERVED; i < tg_ex_vocab_size(m->phones); i++)
        snprintf(phones + strlen(phones), sizeof phones - strlen(phones), "%s%s", i > TG_EX_RESERVED ? " " : "",
                 tg_ex_vocab_token(m->phones, i));
    json_t *o = json_pack("{s:s, s:i, s:i, s:i, s:i, s:s, s:s, s:f, s:i, s:f, s:I}", "cell", m->s.cell, "embed",
                          m->s.embed, "hidden", m->s.hidden, "layers", m->s.layers, "stress", m->s.stress, "letters",
                          letters, "phones", phones, "best_dev_per", pl.best, "stale_evals", pl.stale, "average_decay",
                          m->avg ? tg_param_average_decay(m->avg) : 0.0, "average_updates",
                          (json_int_t)(m->avg ? tg_param_average_count(m->avg) : 0));
    char *text = o ? json_dumps(o, JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    return text;
}

static bool save(tg_ex_saver *saver, const model *m, const tg_optim *opt, const tg_rng *rng, int64_t step,
                 plateau pl) {
    char *config = config_json(m, pl);
    bool ok = config && tg_ex_saver_save_averaged(saver, m->params, opt, m->avg, rng, step, config);
    if (!config) fprintf(stderr, "g2p: out of memory writing the checkpoint's config\n");
    free(config);
    return ok;
}

// The sizes, vocabularies, schedule and average from a config (a checkpoint from before
// --average has none); false when it is not g2p's.
static bool parse_config(const char *config, model *m, plateau *pl, average_state *av) {
    json_error_t jerr;
    json_t *o = json_loads(config, 0, &jerr);
    const char *cell = "", *letters = "", *phones = "";
    json_int_t updates = 0;
    bool ok = o &&
              json_unpack(o, "{s:s, s:i, s:i, s:i, s:i, s:s, s:s, s:F, s:i, s?F, s?I}", "cell", &cell, "embed",
                          &m->s.embed, "hidden", &m->s.hidden, "layers", &m->s.layers, "stress", &m->s.stress,
                          "letters", &letters, "phones", &phones, "best_dev_per", &pl->best, "stale_evals", &pl->stale,
                          "average_decay", &av->decay, "average_updates", &updates) == 0 &&
              tg_ex_cell(cell) && m->s.embed > 0 && m->s.hidden > 0 && m->s.layers > 0 &&
              m->s.layers <= TG_RNN_MAX_LAYERS && av->decay >= 0 && av->decay < 1 && updates >= 0;
    av->updates = updates;
    if (ok) {
        snprintf(m->s.cell, sizeof m->s.cell, "%s", cell);
        m->letters = tg_ex_vocab_new();
        m->phones = tg_ex_vocab_new();
        for (int i = 0; letters[i]; i++) tg_ex_vocab_add_n(m->letters, &letters[i], 1);
        for (const char *p = phones; *p;) {
            size_t len = strcspn(p, " ");
            if (len) tg_ex_vocab_add_n(m->phones, p, len);
            p += len + (p[len] == ' ');
        }
    }
    json_decref(o);
    return ok;
}

// Before the model exists: its sizes and vocabularies, from the checkpoint's config.
static bool load_config(const char *path, model *m, plateau *pl, average_state *av, bool *has_state) {
    char *config = NULL, err[512];
    if (!tg_checkpoint_read_config(path, &config, has_state, err, sizeof err))
        return fprintf(stderr, "g2p: %s\n", err), false;
    bool ok = config && parse_config(config, m, pl, av);
    if (!ok) fprintf(stderr, "g2p: %s was not written by g2p (its config is %s)\n", path, config ? config : "missing");
    free(config);
    return ok;
}

// --- The program: options, data, training, testing -------------------------------------------

// What the command line sets beyond the common options and the model's sizes.
typedef struct {
    bool pronounce, stress;
    const char *cell, *heatmap, *curve; // heatmap and curve NULL: not drawn
    const char *schedule;               // of the learning rate: "plateau" or "cosine"
    const char *ensemble;               // a second saved model to decode with (NULL: none)
    const char *split;                  // the words the beam search scores at the end: "test" or "dev"
    int batch, workers, beam, eval_every, patience, show;
    uint64_t max_steps;
    double lr, clip, dropout;
    double label_smoothing; // of the training loss (--label-smoothing; 0: plain cross-entropy)
    double average; // --average: decay of the weights' moving average (0: none)
} settings;

static tg_ex_parse_result parse_settings(int argc, char **argv, tg_ex_common *common, model *m, settings *st) {
    const tg_ex_option options[] = {
        {"pronounce", TG_EX_FLAG, &st->pronounce, "pronounce the words after it (with --load: no training)", 0, 0,
         NULL},
        {"cell", TG_EX_STRING, &st->cell, "recurrent cell of encoder and decoder: " TG_EX_CELL_NAMES, 0, 0, "CELL"},
        {"embed", TG_EX_INT, &m->s.embed, "letter and phoneme embedding size", 1, 4096, "E"},
        {"hidden", TG_EX_INT, &m->s.hidden, "encoder units per direction (the decoder has twice as many)", 1, 4096,
         "H"},
        {"layers", TG_EX_INT, &m->s.layers, "stacked encoder layers", 1, TG_RNN_MAX_LAYERS, "L"},
        {"stress", TG_EX_FLAG, &st->stress, "keep the vowels' stress digits: 69 phonemes, not 39", 0, 0, NULL},
        {"batch", TG_EX_INT, &st->batch, "words per training step", 1, 4096, "B"},
        tg_ex_workers_option(&st->workers),
        {"lr", TG_EX_DOUBLE, &st->lr, "Adam learning rate", 1e-6, 1, "R"},
        {"clip", TG_EX_DOUBLE, &st->clip, "clip the gradient norm at this", 1e-3, 1e3, "X"},
        {"dropout", TG_EX_DOUBLE, &st->dropout, "dropout on embeddings, between layers, before the output", 0, 0.9,
         "P"},
        {"label-smoothing", TG_EX_DOUBLE, &st->label_smoothing,
         "label smoothing of the training loss, as PyTorch's cross_entropy label_smoothing", 0, 0.99, "EPS"},
        {"average", TG_EX_DOUBLE, &st->average,
         "decay of an exponential moving average of the weights, which dev, test, --pronounce and the saved model "
         "use (0: none)", 0, 0.999999, "DECAY"},
        {"eval-every", TG_EX_INT, &st->eval_every, "steps between dev evaluations (0: twice an epoch)", 0, 1e9, "N"},
        {"schedule", TG_EX_STRING, &st->schedule,
         "learning rate: plateau (halved after --patience evaluations without progress) or cosine (from --lr down to 0 "
         "over this run's --steps if given, else its --minutes)", 0, 0, "NAME"},
        {"patience", TG_EX_INT, &st->patience, "halve the learning rate after N evaluations without progress", 1, 1e3,
         "N"},
        {"steps", TG_EX_U64, &st->max_steps, "stop after this many steps, whatever the time (0: no limit)", 0, 0, "N"},
        {"beam", TG_EX_INT, &st->beam, "beam size for the test words and --pronounce", 1, 64, "K"},
        {"ensemble", TG_EX_STRING, &st->ensemble, "a second saved model, whose probabilities the beam search "
         "averages with --load's (no training)", 0, 0, "FILE"},
        {"split", TG_EX_STRING, &st->split, "the words the beam search scores at the end: test, or dev (to compare "
         "settings without looking at the test words)", 0, 0, "NAME"},
        {"show", TG_EX_INT, &st->show, "scored words to show with their predicted pronunciation", 0, 1000, "N"},
        {"heatmap", TG_EX_STRING, &st->heatmap, "SVG of the attention for one word (\"\": none)", 0, 0, "FILE"},
        {"curve", TG_EX_STRING, &st->curve, "SVG of training loss and dev error by step (\"\": none)", 0, 0, "FILE"},
    };
    tg_ex_cli cli = {"g2p", "spelling -> pronunciation (CMUdict) with a bidirectional encoder and attention decoder",
                     common, options, TG_EX_LEN(options), NULL, NULL};
    tg_ex_parse_result parsed = tg_ex_parse(&cli, argc, argv);
    if (parsed != TG_EX_PARSE_OK) return parsed;
    if (!tg_ex_cell(st->cell))
        return fprintf(stderr, "g2p: --cell is one of %s\n", TG_EX_CELL_NAMES), TG_EX_PARSE_ERROR;
    snprintf(m->s.cell, sizeof m->s.cell, "%s", st->cell);
    m->s.stress = st->stress;
    if (strcmp(st->schedule, "plateau") && strcmp(st->schedule, "cosine"))
        return fprintf(stderr, "g2p: --schedule is plateau or cosine\n"), TG_EX_PARSE_ERROR;
    if (strcmp(st->split, "test") && strcmp(st->split, "dev"))
        return fprintf(stderr, "g2p: --split is test or dev\n"), TG_EX_PARSE_ERROR;
    if (st->heatmap && !*st->heatmap) st->heatmap = NULL; // --heatmap "": none
    if (st->curve && !*st->curve) st->curve = NULL;
    return TG_EX_PARSE_OK;
}

// The dictionary as examples, split train/dev/test (the dev words sorted by length for
// batched greedy decoding).
typedef struct {
    const char *data_dir; // --data: the folder holding cmudict/
    tg_ex_cmudict dict;
    example *ex;   // [dict.n]
    int32_t *ids;  // storage behind every example's ids
    int *split[3], n_split[3];
} corpus;

// T for clamp_indrnn: the most steps encoder (letters) and decoder (phones and EOS) take on a
// training word.
static void set_indrnn_bounds(model *m, const corpus *c) {
    int longest[2] = {1, 1};
    for (int i = 0; i < c->n_split[TG_EX_TRAIN]; i++) {
        const example *x = &c->ex[c->split[TG_EX_TRAIN][i]];
        longest[0] = x->src_len > longest[0] ? x->src_len : longest[0];
        longest[1] = x->tgt_len > longest[1] ? x->tgt_len : longest[1];
    }
    bool indrnn = tg_ex_cell(m->s.cell) == &tg_cell_indrnn;
    for (int k = 0; k < 2; k++) m->indrnn_bound[k] = indrnn ? pow(2, 1.0 / longest[k]) : 0;
}

// Reads the dictionary; makes the vocabularies from its training words unless a checkpoint
// brought them.
static bool load_corpus(const char *data_dir, model *m, corpus *c) {
    tg_ex_error err;
    c->data_dir = data_dir;
    if (!tg_ex_cmudict_load(data_dir, !m->s.stress, &c->dict, &err))
        return fprintf(stderr, "g2p: %s\n", err.msg), false;
    bool grow = !m->letters;
    if (grow) m->letters = tg_ex_vocab_new(), m->phones = tg_ex_vocab_new();
    c->ex = encode(&c->dict, m, grow, &c->ids);
    for (int s = 0; s < 3; s++) {
        c->split[s] = malloc(sizeof(int) * (size_t)c->dict.n);
        for (int i = 0; i < c->dict.n; i++)
            if (c->dict.items[i].split == (tg_ex_split)s) c->split[s][c->n_split[s]++] = i;
    }
    sort_by_length(c->ex, c->split[TG_EX_DEV], c->n_split[TG_EX_DEV]);
    set_indrnn_bounds(m, c);
    printf("g2p: %d train, %d dev, %d test words; %d letters, %d phonemes%s; BLIS kernels %s\n", c->n_split[0],
           c->n_split[1], c->n_split[2], tg_ex_vocab_size(m->letters) - TG_EX_RESERVED,
           tg_ex_vocab_size(m->phones) - TG_EX_RESERVED, m->s.stress ? " with stress" : "", tg_blas_arch());
    return true;
}

static void corpus_free(corpus *c) {
    free(c->ex), free(c->ids);
    for (int s = 0; s < 3; s++) free(c->split[s]);
    tg_ex_cmudict_free(&c->dict);
}

// Where training is: what a checkpoint resumes and what the RESULT line reports.
typedef struct {
    int64_t step, start_step;
    double first_loss, last_loss;
    plateau pl;
    tg_plot_curve c;
} progress;

// A training batch's loss, shard by shard: the model, and the batch's words.
typedef struct {
    const model *m;
    const example *ex;
    const int *idx; // [batch]: the global batch's words
    int64_t tokens; // their target phonemes, EOS included
} batch_job;

// The shard's cross-entropy with teacher forcing over its target phonemes, weighted so that
// the shards' sum is the mean over the whole batch's phonemes (a tg_shard_loss_fn).
static tg_tensor *batch_loss(tg_graph *g, const tg_shard *s, tg_rng *rng, void *user) {
    const batch_job *job = user;
    const int *idx = job->idx + s->begin;
    tg_tensor *src, *len, *tgt; // [S, n], [n], [T, n]
    make_batch(g, job->ex, idx, (int)s->count, &src, &len, &tgt);
    tg_tensor *loss = tg_seq2seq_loss(g, &job->m->net, src, len, tgt, 1.0, rng);
    int64_t tokens = 0;
    for (int64_t b = 0; b < s->count; b++) tokens += job->ex[idx[b]].tgt_len;
    double weight = tg_ex_shard_token_weight(s, tokens, job->tokens);
    return weight == 1 || !loss ? loss : tg_mul_scalar(g, loss, weight);
}

// One optimizer step on the words idx[0..B) with teacher forcing; returns the loss.
static double train_step(tg_ex_trainer *tr, model *m, const example *ex, const int *idx, int B, tg_rng *rng) {
    batch_job job = {m, ex, idx, 0};
    for (int b = 0; b < B; b++) job.tokens += ex[idx[b]].tgt_len;
    double loss = tg_ex_trainer_step(tr, B, batch_loss, &job, rng);
    clamp_indrnn(m);
    if (m->avg) tg_param_average_update(m->avg); // not swapped in here: cannot fail
    return loss;
}

// Dev error (greedy; of the averaged weights with --average): a point of the curve and, at the
// regular evaluations, the schedule's signal (reduce-on-plateau).
static void dev_point(tg_graph *g, const model *m, const corpus *c, tg_optim *opt, const settings *st,
                      double mean_loss, bool tty, progress *pr) {
    double t0 = tg_ex_now();
    tg_param_average_use(m->avg, true);
    const int *words = c->split[TG_EX_DEV];
    double dev = tg_ex_per(score_words(g, st->workers, m, c->ex, NULL, words, c->n_split[TG_EX_DEV], 1));
    tg_param_average_use(m->avg, false);
    pr->last_loss = mean_loss;
    tg_plot_curve_add(&pr->c, (double)pr->step, mean_loss, dev); // a point short when out of memory
    if (pr->step % st->eval_every == 0) { // not the extra point at the end of training
        if (dev < pr->pl.best) pr->pl.best = dev, pr->pl.stale = 0;
        else if (++pr->pl.stale >= st->patience && !strcmp(st->schedule, "plateau"))
            tg_optim_set_lr(opt, tg_optim_lr(opt) / 2), pr->pl.stale = 0;
    }
    printf("%sstep %lld  train loss %.4f  dev PER %.4f (greedy, %.1f s)  lr %.2g%s\n", tty ? "\r" : "",
           (long long)pr->step, mean_loss, dev, tg_ex_now() - t0, tg_optim_lr(opt), tty ? "\033[K" : "");
}

// --schedule cosine: CosineAnnealingLR from --lr down to 0 over this run, counted in steps
// with --steps (deterministic), else in millionths of --minutes. A resumed run starts at --lr.
static double cosine_lr(const settings *st, const tg_ex_budget *budget, double minutes, const progress *pr) {
    tg_lr_schedule s = {.kind = TG_LR_COSINE, .t_max = st->max_steps ? (int64_t)st->max_steps : 1000000};
    int64_t at = st->max_steps ? pr->step - pr->start_step
                               : (int64_t)(1e6 * tg_ex_budget_elapsed(budget) / (60 * minutes));
    return tg_lr_at(&s, st->lr, at < s.t_max ? at : s.t_max);
}

// Trains until the budget or --steps is spent, an epoch's order a function of (seed, epoch),
// saving when due. Needs st->eval_every set.
static void train(tg_graph *g, model *m, const corpus *c, tg_optim *opt, tg_rng *rng, const settings *st,
                  const tg_ex_common *common, tg_ex_saver *saver, progress *pr) {
    int B = st->batch, n_train = c->n_split[TG_EX_TRAIN], per_epoch = n_train / B;
    int *order = malloc(sizeof *order * (size_t)(n_train + 1));   // the epoch's words
    int *start = malloc(sizeof *start * (size_t)(per_epoch + 1)); // its batches, in the order they come
    double window = 0;                                            // losses since the last dev point
    int64_t in_window = 0;
    tg_ex_trainer tr;
    tg_ex_budget budget;
    tg_ex_budget_start(&budget, common->minutes);
    bool done = !tg_ex_trainer_init(&tr, "g2p", m->params, opt, st->clip, st->workers);
    while (!done) {
        int64_t epoch = pr->step / per_epoch, k = pr->step % per_epoch;
        epoch_order(c->ex, c->split[TG_EX_TRAIN], n_train, B, common->seed, epoch, order, start);
        char label[48];
        snprintf(label, sizeof label, "epoch %lld", (long long)epoch + 1);
        tg_ex_progress p;
        tg_ex_progress_begin(&p, stdout, label, per_epoch - k, "word");
        p.budget = &budget;
        for (; k < per_epoch && !done; k++) {
            if (tg_ex_saver_due(saver)) save(saver, m, opt, rng, pr->step, pr->pl); // a failure is reported; on we go
            if (!strcmp(st->schedule, "cosine")) tg_optim_set_lr(opt, cosine_lr(st, &budget, common->minutes, pr));
            double l = train_step(&tr, m, c->ex, order + start[k] * B, B, rng);
            if (pr->step++ == pr->start_step) pr->first_loss = l;
            window += l, in_window++;
            tg_ex_progress_step(&p, l, B);
            done = !tg_ex_agree(tg_ex_budget_left(&budget)) || (uint64_t)(pr->step - pr->start_step) == st->max_steps;
            if (pr->step % st->eval_every && !done) continue;
            dev_point(g, m, c, opt, st, window / (double)in_window, p.tty, pr);
            window = 0, in_window = 0;
        }
        tg_ex_progress_end(&p);
    }
    tg_ex_trainer_free(&tr);
    free(order), free(start);
}

// Beam search over the test words (or --split dev's); their error rates and the RESULT line.
// PER and the first WER (wer=) score against each word's first pronunciation, as before the
// alternates were read; wer_any= against any of its pronunciations (nan without
// cmudict-alternates.tsv); split= names the words.
static void test(tg_graph *g, const model *m, const corpus *c, const settings *st, const progress *pr,
                 double seconds) {
    double t0 = tg_ex_now();
    tg_ex_split split = strcmp(st->split, "dev") ? TG_EX_TEST : TG_EX_DEV;
    const char *name = tg_ex_split_name(split);
    tg_ex_errors e = test_words(g, st->workers, m, c->ex, c->dict.items, c->split[split], c->n_split[split], st->beam,
                                st->show, st->heatmap);
    double any = c->dict.has_alternates ? tg_ex_wer_any(e) : NAN;
    printf("%s: %lld words, beam %d, against each word's first pronunciation: phoneme error rate %.4f, word error "
           "rate %.4f (%.0f s)\n",
           name, (long long)e.words, st->beam, tg_ex_per(e), tg_ex_wer(e), tg_ex_now() - t0);
    if (c->dict.has_alternates)
        printf("%s: against any of a word's pronunciations (%lld of the %lld words have alternates): word error rate "
               "%.4f\n",
               name, (long long)e.with_alternates, (long long)e.words, any);
    else
        printf("%s: word error rate against any pronunciation not measured: %s/cmudict/cmudict-alternates.tsv is "
               "missing (scripts/fetch_data.sh cmudict adds it)\n",
               name, c->data_dir);
    tg_ex_result(NULL,
                 "per=%.4f wer=%.4f dev_per=%.4f first_loss=%.4f last_loss=%.4f steps=%lld seconds=%.0f wer_any=%.4f "
                 "split=%s",
                 tg_ex_per(e), tg_ex_wer(e), pr->c.n ? pr->c.dev[pr->c.n - 1] : NAN, pr->first_loss, pr->last_loss,
                 (long long)(pr->step - pr->start_step), seconds, any, name);
}

// --load: the weights (the averaged ones, of a checkpoint saved with --average) and, when opt
// is given, the optimizer's moments and the generator (step: when not NULL). A run that trains
// on from an averaged checkpoint resumes both the trained weights and their average (with its
// own --average decay, or the checkpoint's).
static bool load_checkpoint(model *m, const char *path, double decay, average_state saved, tg_optim *opt,
                            tg_rng *rng, int64_t *step) {
    if (opt && saved.decay > 0) {
        if (!(m->avg = tg_param_average_new(m->params, decay > 0 ? decay : saved.decay))) return false;
        tg_param_average_set_count(m->avg, saved.updates);
        return tg_ex_checkpoint_load_averaged("g2p", path, m->params, opt, m->avg, rng, step);
    }
    char msg[1024];
    if (!tg_checkpoint_load(path, m->params, opt, opt ? rng : NULL, step, NULL, true, msg, sizeof msg))
        return fprintf(stderr, "g2p: %s\n", msg), false;
    return true;
}

// The model of m->s, with --load its weights (and, when it trains on, the optimizer's moments,
// the generator and the step: a resumed run carries on exactly), and with --average, when it
// trains, the weights' average.
static tg_optim *build_model(model *m, const settings *st, const tg_ex_common *common, bool resume, tg_rng *rng,
                             int64_t *step, average_state saved) {
    if (!model_init(m, st->dropout, st->label_smoothing, rng)) return NULL;
    tg_optim *opt = tg_optim_adam(m->params, (tg_adam_opts){.lr = st->lr});
    if (common->load) {
        if (!load_checkpoint(m, common->load, st->average, saved, resume ? opt : NULL, rng, step))
            return tg_optim_free(opt), NULL;
        printf("loaded %s: %s, embed %d, hidden %d x %d layer(s), %lld steps trained%s\n", common->load, m->s.cell,
               m->s.embed, m->s.hidden, m->s.layers, (long long)(step ? *step : 0),
               saved.decay > 0 ? " (the weights of its model file are averaged)" : "");
    }
    if (!m->avg && st->average > 0 && common->minutes > 0 && !(m->avg = tg_param_average_new(m->params, st->average)))
        return tg_optim_free(opt), NULL;
    if (m->avg)
        printf("averaging the weights: decay %g, %lld updates so far; dev, test and checkpoints use the average\n",
               tg_param_average_decay(m->avg), (long long)tg_param_average_count(m->avg));
    printf("model: %s encoder %d x 2 directions x %d layer(s), %s decoder %d, Bahdanau attention; %lld parameters\n",
           m->s.cell, m->s.hidden, m->s.layers, m->s.cell, 2 * m->s.hidden, (long long)tg_params_numel(m->params));
    return opt;
}

// --ensemble: the second model, from its checkpoint (its sizes may differ from m's, its
// letters and phonemes may not), decoded together with m.
static bool load_partner(const char *path, model *m, model *partner) {
    plateau pl;
    average_state saved = {0, 0};
    bool has_state;
    tg_rng rng;
    tg_rng_seed(&rng, 1); // the weights are then read over the initial ones
    if (!load_config(path, partner, &pl, &saved, &has_state) || !model_init(partner, 0, 0, &rng) ||
        !load_checkpoint(partner, path, 0, saved, NULL, NULL, NULL))
        return false;
    if (!tg_ex_vocab_equal(m->letters, partner->letters) || !tg_ex_vocab_equal(m->phones, partner->phones))
        return fprintf(stderr, "g2p: %s has other letters or phonemes than the --load model\n", path), false;
    m->partner = &partner->net;
    printf("ensemble with %s: %s, embed %d, hidden %d x %d layer(s)\n", path, partner->s.cell, partner->s.embed,
           partner->s.hidden, partner->s.layers);
    return true;
}

static void model_free(model *m) {
    tg_param_average_free(m->avg);
    tg_params_free(m->params);
    tg_ex_vocab_free(m->letters);
    tg_ex_vocab_free(m->phones);
}

int main(int argc, char **argv) {
    bool minutes_given = false; // --pronounce with --load trains only when asked to
    for (int i = 1; i < argc; i++) minutes_given |= !strncmp(argv[i], "--minutes", 9);
    int n_words = tg_ex_take_args(&argc, argv, "--pronounce");
    char **words = argv + argc;
    tg_ex_common common = tg_ex_common_defaults(TG_DATA_DIR, 2);
    model m = {.s = {"lstm", 64, 128, 1, 0}}, partner = {0};
    settings st = {false, false, "lstm", "g2p_attention.svg", "g2p_curve.svg", "plateau", NULL, "test", 64, 1, 5, 0,
                   2, 10, 0, 3e-3, 5, 0.3, 0, 0};
    tg_ex_parse_result parsed = parse_settings(argc, argv, &common, &m, &st);
    if (parsed != TG_EX_PARSE_OK) return parsed == TG_EX_PARSE_HELP ? 0 : 2;
    if (st.pronounce != (n_words > 0)) return fprintf(stderr, "g2p: --pronounce takes the words after it\n"), 2;
    tg_set_num_threads(common.threads);

    // A saved model pronounces words without any data; training and testing read the dictionary.
    progress pr = {0, 0, NAN, NAN, {1e9, 0}, {0}}; // best 1e9: no evaluation yet (INFINITY is not JSON)
    bool has_state = false;
    average_state saved = {0, 0}; // the checkpoint's average
    if (common.load && !load_config(common.load, &m, &pr.pl, &saved, &has_state)) return 1;
    if (common.load && (st.pronounce || st.ensemble) && !minutes_given) common.minutes = 0;
    if (st.ensemble && (!common.load || common.minutes > 0))
        return fprintf(stderr, "g2p: --ensemble needs --load, and does not train\n"), model_free(&m), 2;
    bool trains = common.minutes > 0, tests = !st.pronounce;
    corpus c = {0};
    if ((trains || tests) && !load_corpus(common.data, &m, &c)) return model_free(&m), 1;
    if (trains && c.n_split[TG_EX_TRAIN] < st.batch)
        return fprintf(stderr, "g2p: %s has fewer training words than --batch %d\n", common.data, st.batch),
               corpus_free(&c), model_free(&m), 1;
    tg_rng rng;
    tg_rng_seed(&rng, common.seed);
    tg_optim *opt = build_model(&m, &st, &common, has_state && trains, &rng, has_state ? &pr.step : NULL, saved);
    if (!opt || (st.ensemble && !load_partner(st.ensemble, &m, &partner)))
        return tg_optim_free(opt), corpus_free(&c), model_free(&m), model_free(&partner), 1;

    tg_graph *g = tg_graph_new();
    tg_ex_saver saver = tg_ex_saver_make("g2p", &common, NULL, NULL, 0); // the vocabularies are in the config
    double t0 = tg_ex_now();
    pr.start_step = pr.step;
    int per_epoch = c.n_split[TG_EX_TRAIN] / st.batch;
    if (!st.eval_every) st.eval_every = per_epoch / 2 > 0 ? per_epoch / 2 : 1;
    if (trains) train(g, &m, &c, opt, &rng, &st, &common, &saver, &pr);
    bool ok = save(&saver, &m, opt, &rng, pr.step, pr.pl);
    if (trains && st.curve) write_curve(st.curve, &pr.c);
    tg_param_average_use(m.avg, true); // what was saved is what is scored
    pronounce_words(g, &m, words, n_words, st.beam, st.heatmap);
    if (tests) test(g, &m, &c, &st, &pr, tg_ex_now() - t0);

    tg_plot_curve_free(&pr.c);
    corpus_free(&c);
    tg_graph_free(g);
    tg_optim_free(opt);
    model_free(&m);
    model_free(&partner);
    return ok ? 0 : 1;
}
