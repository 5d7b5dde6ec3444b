// postag: a bidirectional LSTM part-of-speech tagger on the tagged Brown corpus.
//
// Each word is read as three embeddings side by side: the word itself (lower case, digits
// as 0), its last three letters and its shape (Capitalised, ALLCAPS, number, punctuation...).
// The last two are cheap and carry most of what can be known about a word never seen in
// training: "-ing", "-ly", "-ed" and a capital letter say a lot about its tag. A BiLSTM reads
// the sentence both ways and a linear layer tags each word from both directions' states.
// Sentences of different lengths share a batch: tg_rnn_forward takes their lengths, and the
// padding's targets are TG_EX_PAD, which the loss ignores. Reports token accuracy on the
// test split (on words outside the vocabulary too) and tags a sentence given with --tag.
//
//   build/examples/postag --minutes 30 --data data/full --save postag.safetensors
//   build/examples/postag --load postag.safetensors --minutes 0 --tag "The old man the boats ."
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tg_checkpoint.h"
#include "tg_ex_train.h"

#ifndef TG_DATA_DIR
#define TG_DATA_DIR "data"
#endif

enum { N_SHAPES = 8, SHAPE_EMBED = 8, MAX_WORD = 64 };

typedef struct {
    int word_embed, suffix_embed, hidden, layers; // what a checkpoint's config records
} sizes;

// A word's features: ids into the word and suffix vocabularies, and its shape.
typedef struct {
    int32_t word, suffix, shape;
} features;

// --- Features ----------------------------------------------------------------------------

// The word as the vocabulary holds it: lower case, every digit 0 (a year is like any year).
static void normalise(const char *word, char *out) {
    int n = 0;
    for (; word[n] && n < MAX_WORD - 1; n++)
        out[n] = isdigit((unsigned char)word[n]) ? '0' : (char)tolower((unsigned char)word[n]);
    out[n] = 0;
}

// 1..7: what the word looks like, whatever it is (0 is padding).
static int32_t shape_of(const char *w) {
    bool alpha = false, digit = false, hyphen = false, lower = false;
    for (const char *c = w; *c; c++) {
        alpha |= isalpha((unsigned char)*c) != 0;
        digit |= isdigit((unsigned char)*c) != 0;
        hyphen |= *c == '-';
        lower |= islower((unsigned char)*c) != 0;
    }
    bool capital = isupper((unsigned char)w[0]) != 0;
    if (digit) return 1;                 // 1961, 3-by-5, 1/2
    if (!alpha) return 2;                // , . `` --
    if (!lower) return 3;                // I, U.S., NATO
    if (hyphen) return capital ? 4 : 5;  // Anglo-Saxon, well-known
    return capital ? 6 : 7;              // Fulton, jury
}

// The ids of a word's features; unknown words and suffixes are TG_EX_UNK. With grow, the
// word and its suffix are counted into the vocabularies instead (training data only).
static features featurize(const char *word, tg_ex_vocab *words, tg_ex_vocab *suffixes, bool grow) {
    char w[MAX_WORD];
    normalise(word, w);
    size_t len = strlen(w), at = len > 3 ? len - 3 : 0;
    if (grow) return (features){tg_ex_vocab_add(words, w), tg_ex_vocab_add(suffixes, w + at), shape_of(word)};
    return (features){tg_ex_vocab_id(words, w), tg_ex_vocab_id(suffixes, w + at), shape_of(word)};
}

// --- The model -------------------------------------------------------------------------

typedef struct {
    sizes s;
    tg_params *params;
    tg_tensor *word_emb, *suffix_emb, *shape_emb; // [Vw, Ew], [Vs, Es], [N_SHAPES, SHAPE_EMBED]
    tg_rnn lstm;                                  // bidirectional: Ew + Es + 8 -> 2H
    tg_tensor *w_out, *b_out;                     // [n_tags, 2H], [n_tags]
    double dropout;
} model;

static bool model_init(model *m, sizes s, int n_words, int n_suffixes, int n_tags, double dropout, tg_rng *rng) {
    m->s = s;
    m->dropout = dropout;
    m->params = tg_params_new();
    m->word_emb = tg_params_add(m->params, "word_embedding.weight", TG_F32, tg_shape2(n_words, s.word_embed));
    m->suffix_emb = tg_params_add(m->params, "suffix_embedding.weight", TG_F32, tg_shape2(n_suffixes, s.suffix_embed));
    m->shape_emb = tg_params_add(m->params, "shape_embedding.weight", TG_F32, tg_shape2(N_SHAPES, SHAPE_EMBED));
    tg_rnn_config cfg = {.cell = &tg_cell_lstm, .input_size = s.word_embed + s.suffix_embed + SHAPE_EMBED,
                         .hidden_size = s.hidden, .num_layers = s.layers, .bidirectional = true};
    if (!tg_rnn_init(&m->lstm, &cfg, m->params, "lstm.", rng)) return false;
    m->w_out = tg_params_add(m->params, "out.weight", TG_F32, tg_shape2(n_tags, 2 * s.hidden));
    m->b_out = tg_params_add(m->params, "out.bias", TG_F32, tg_shape1(n_tags));
    // PyTorch's defaults: N(0, 1) for embeddings, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for a linear layer.
    tg_tensor *emb[] = {m->word_emb, m->suffix_emb, m->shape_emb};
    for (int i = 0; i < 3; i++) tg_tensor_fill_normal(emb[i], rng, 0, 1);
    double k = 1 / sqrt(2.0 * s.hidden);
    tg_tensor_fill_uniform(m->w_out, rng, -k, k);
    tg_tensor_fill_uniform(m->b_out, rng, -k, k);
    return true;
}

// A batch, time-major: word[t*B + b], suffix and shape are the features of word t of
// sentence b, tags its tag; all are TG_EX_PAD (0) past the sentence's length, lengths[b].
typedef struct {
    int T, B;
    int32_t *word, *suffix, *shape, *tags, *lengths;
} batch;

// Logits [T*B, n_tags] of a batch.
static tg_tensor *model_forward(tg_graph *g, const model *m, const batch *bt, tg_rng *rng) {
    tg_shape tb = tg_shape2(bt->T, bt->B);
    tg_tensor *parts[3] = {
        tg_embedding(g, m->word_emb, tg_from_data(g, TG_I32, tb, bt->word)),     // [T, B, Ew]
        tg_embedding(g, m->suffix_emb, tg_from_data(g, TG_I32, tb, bt->suffix)), // [T, B, Es]
        tg_embedding(g, m->shape_emb, tg_from_data(g, TG_I32, tb, bt->shape)),   // [T, B, 8]
    };
    tg_tensor *x = tg_dropout(g, tg_concat(g, 3, parts, 2), m->dropout, rng); // [T, B, Ew+Es+8]
    tg_rnn_result r;
    tg_tensor *lengths = tg_from_data(g, TG_I32, tg_shape1(bt->B), bt->lengths);
    if (!tg_rnn_forward(g, &m->lstm, x, lengths, NULL, rng, &r)) return NULL;
    tg_tensor *h = tg_reshape(g, tg_dropout(g, r.output, m->dropout, rng), tg_shape2(-1, 2 * m->s.hidden)); // [T*B, 2H]
    return tg_linear(g, h, m->w_out, m->b_out);
}

// --- Data: every sentence's features, flat, and batches of them ----------------------------

typedef struct {
    features *f;      // [n_tokens]
    int32_t *tags;    // [n_tokens]
    int64_t *start;   // [n + 1]: sentence i is tokens start[i] .. start[i+1]-1
    int *split[3], n_split[3]; // sentence indices of train, dev, test
} corpus;

// Fills bt with sentences idx[0..B-1], its arrays in g's arena; returns the real tokens.
static int64_t make_batch(tg_graph *g, const corpus *c, const int *idx, int B, batch *bt) {
    int64_t tokens = 0;
    bt->B = B;
    bt->T = 0;
    bt->lengths = tg_graph_alloc(g, sizeof(int32_t) * (size_t)B); // [B]
    for (int b = 0; b < B; b++) {
        bt->lengths[b] = (int32_t)(c->start[idx[b] + 1] - c->start[idx[b]]);
        bt->T = bt->lengths[b] > bt->T ? bt->lengths[b] : bt->T;
        tokens += bt->lengths[b];
    }
    size_t tb = (size_t)bt->T * (size_t)B;
    bt->word = tg_graph_alloc(g, sizeof(int32_t) * 4 * tb); // [T, B] each of word, suffix, shape, tags
    bt->suffix = bt->word + tb, bt->shape = bt->word + 2 * tb, bt->tags = bt->word + 3 * tb;
    for (int t = 0; t < bt->T; t++)
        for (int b = 0; b < B; b++) {
            bool real = t < bt->lengths[b];
            int64_t at = c->start[idx[b]] + t;
            features f = real ? c->f[at] : (features){0, 0, 0};
            bt->word[t * B + b] = f.word;
            bt->suffix[t * B + b] = f.suffix;
            bt->shape[t * B + b] = f.shape;
            bt->tags[t * B + b] = real ? c->tags[at] : TG_EX_PAD;
        }
    return tokens;
}

// A training batch's loss, shard by shard: the model, and the batch's sentences.
typedef struct {
    const model *m;
    const corpus *c;
    const int *idx; // [batch]: the global batch's sentences
    int64_t tokens; // their real tokens
} batch_job;

// The shard's cross-entropy over its real tokens, weighted so that the shards' sum is the
// mean over the whole batch's tokens (a tg_shard_loss_fn).
static tg_tensor *batch_loss(tg_graph *g, const tg_shard *s, tg_rng *rng, void *user) {
    const batch_job *job = user;
    batch bt;
    int64_t tokens = make_batch(g, job->c, job->idx + s->begin, (int)s->count, &bt);
    tg_tensor *logits = model_forward(g, job->m, &bt, rng);
    tg_tensor *targets = tg_from_data(g, TG_I32, tg_shape1((int64_t)bt.T * bt.B), bt.tags);
    tg_tensor *loss = tg_cross_entropy(g, logits, targets, TG_REDUCE_MEAN, TG_EX_PAD); // padding counts for nothing
    double weight = tg_ex_shard_token_weight(s, tokens, job->tokens);
    return weight == 1 ? loss : tg_mul_scalar(g, loss, weight);
}

// The most likely tag in a row of logits [n_tags]; the reserved ids are never a tag.
static int best_tag(const float *row, int n_tags) {
    int best = TG_EX_RESERVED;
    for (int k = TG_EX_RESERVED + 1; k < n_tags; k++) best = row[k] > row[best] ? k : best;
    return best;
}

// Token accuracy over a split (recording and dropout off); that of the words outside the
// vocabulary (never seen in training, or too rarely) goes to *oov.
static double evaluate(tg_graph *g, const model *m, const corpus *c, tg_ex_split split, int cap, double *oov) {
    int64_t right = 0, total = 0, oov_right = 0, oov_total = 0;
    tg_graph_set_grad_enabled(g, false);
    tg_graph_set_training(g, false);
    for (int at = 0; at < c->n_split[split]; at += cap) {
        batch bt;
        tg_graph_reset(g);
        make_batch(g, c, c->split[split] + at, c->n_split[split] - at < cap ? c->n_split[split] - at : cap, &bt);
        tg_tensor *logits = model_forward(g, m, &bt, NULL);
        int64_t n_tags = logits->shape.d[1];
        for (int64_t i = 0; i < (int64_t)bt.T * bt.B; i++) {
            if (bt.tags[i] == TG_EX_PAD) continue;
            int best = best_tag((const float *)logits->data + i * n_tags, (int)n_tags);
            right += best == bt.tags[i];
            total++;
            oov_right += bt.word[i] == TG_EX_UNK && best == bt.tags[i];
            oov_total += bt.word[i] == TG_EX_UNK;
        }
    }
    tg_graph_set_grad_enabled(g, true);
    tg_graph_set_training(g, true);
    *oov = oov_total ? (double)oov_right / (double)oov_total : NAN;
    return total ? (double)right / (double)total : NAN;
}

// The features and tags of every sentence. Unless they came from a checkpoint (grow false),
// the vocabularies are made from the training split, and words and suffixes seen fewer than
// min_count times are dropped: they become UNK, so training teaches the model what to do
// with words it does not know.
static bool build_corpus(const tg_ex_brown *brown, tg_ex_vocab *words, tg_ex_vocab *suffixes, tg_ex_vocab *tags,
                         bool grow, int min_count, corpus *c) {
    memset(c, 0, sizeof *c);
    for (int i = 0; grow && i < brown->n; i++)
        for (int k = 0; brown->items[i].split == TG_EX_TRAIN && k < brown->items[i].n; k++) {
            featurize(brown->items[i].words[k], words, suffixes, true);
            tg_ex_vocab_add(tags, brown->items[i].tags[k]);
        }
    if (grow) {
        tg_ex_vocab_prune(words, min_count);
        tg_ex_vocab_prune(suffixes, min_count);
    }
    c->f = malloc(sizeof *c->f * (size_t)brown->n_tokens);
    c->tags = malloc(sizeof *c->tags * (size_t)brown->n_tokens);
    c->start = malloc(sizeof *c->start * (size_t)(brown->n + 1));
    for (int s = 0; s < 3; s++) c->split[s] = malloc(sizeof(int) * (size_t)brown->n);
    if (!c->f || !c->tags || !c->start || !c->split[0] || !c->split[1] || !c->split[2]) return false;
    int64_t at = 0;
    for (int i = 0; i < brown->n; i++) {
        const tg_ex_sentence *s = &brown->items[i];
        c->start[i] = at;
        for (int k = 0; k < s->n; k++, at++) {
            c->f[at] = featurize(s->words[k], words, suffixes, false);
            c->tags[at] = tg_ex_vocab_id(tags, s->tags[k]);
        }
        c->split[s->split][c->n_split[s->split]++] = i;
    }
    c->start[brown->n] = at;
    return true;
}

static void corpus_free(corpus *c) {
    free(c->f);
    free(c->tags);
    free(c->start);
    for (int s = 0; s < 3; s++) free(c->split[s]);
}

// Tags a sentence typed by a user. Words are separated by spaces; a final , . ; : ? or ! is
// split off a plain word that the vocabulary does not know with it ("boats." but not "Mr.").
static void tag_sentence(tg_graph *g, const model *m, const char *text, tg_ex_vocab *words, tg_ex_vocab *suffixes,
                         const tg_ex_vocab *tags) {
    static const char *const MARKS = ",.;:?!", *const MARK[] = {",", ".", ";", ":", "?", "!"};
    char *buf = strdup(text);
    const char **tok = malloc(sizeof *tok * (strlen(text) + 1));
    int n = 0;
    for (char *at = buf, *w; (w = strtok(at, " \t\n")); at = NULL) {
        tok[n++] = w;
        size_t wl = strlen(w);
        char norm[MAX_WORD];
        normalise(w, norm);
        const char *mark = wl > 1 ? strchr(MARKS, w[wl - 1]) : NULL;
        for (size_t i = 0; mark && i + 1 < wl; i++) // only after a plain word: not "U.S." nor "..."
            if (!isalnum((unsigned char)w[i]) && (unsigned char)w[i] < 0x80 && !strchr("'-", w[i])) mark = NULL;
        if (mark && tg_ex_vocab_id(words, norm) == TG_EX_UNK) {
            w[wl - 1] = 0;
            tok[n++] = MARK[mark - MARKS];
        }
    }
    if (n == 0) return free(buf), free(tok), (void)printf("--tag: no words to tag\n");
    int32_t *ids = malloc(sizeof *ids * 4 * (size_t)n), length = n;
    batch bt = {n, 1, ids, ids + n, ids + 2 * n, ids + 3 * n, &length};
    bool unknown = false;
    for (int t = 0; t < n; t++) {
        features f = featurize(tok[t], words, suffixes, false);
        bt.word[t] = f.word, bt.suffix[t] = f.suffix, bt.shape[t] = f.shape, bt.tags[t] = TG_EX_PAD;
    }
    tg_graph_set_grad_enabled(g, false);
    tg_graph_set_training(g, false);
    tg_graph_reset(g);
    tg_tensor *logits = model_forward(g, m, &bt, NULL); // [n, n_tags]
    for (int t = 0; t < n; t++) {
        int best = best_tag((const float *)logits->data + (int64_t)t * logits->shape.d[1], (int)logits->shape.d[1]);
        printf("%s%s/%s", t ? " " : "", tok[t], tg_ex_vocab_token(tags, best));
        if (bt.word[t] == TG_EX_UNK) unknown = true, putchar('*');
    }
    printf("\n%s", unknown ? "(* a word outside the vocabulary: tagged from its suffix, shape and context)\n" : "");
    tg_graph_set_grad_enabled(g, true);
    tg_graph_set_training(g, true);
    free(ids);
    free(tok);
    free(buf);
}

// --- Checkpoints: tg_ex_saver's files, the sizes as config, the vocabularies as PATH.words,
// PATH.suffixes and PATH.tags

static const char *const VOCAB_NAME[3] = {"words", "suffixes", "tags"};
enum { N_CONFIG = 4 };
// The config: the sizes, as JSON. f[N_CONFIG] points at the fields of s.
static void config_fields(sizes *s, tg_ex_config_int *f) {
    f[0] = (tg_ex_config_int){"word_embed", &s->word_embed};
    f[1] = (tg_ex_config_int){"suffix_embed", &s->suffix_embed};
    f[2] = (tg_ex_config_int){"hidden", &s->hidden};
    f[3] = (tg_ex_config_int){"layers", &s->layers};
}

static bool save(tg_ex_saver *saver, const model *m, const tg_optim *opt, const tg_rng *rng, int64_t step) {
    sizes z = m->s;
    tg_ex_config_int fields[N_CONFIG];
    config_fields(&z, fields);
    return tg_ex_save_sizes(saver, m->params, opt, rng, step, fields, N_CONFIG);
}

// What the command line sets beyond the common options and the sizes.
typedef struct {
    int batch, min_count, workers;
    uint64_t max_steps;
    double lr, clip, dropout;
    const char *text; // --tag
} settings;

static tg_ex_parse_result parse_settings(int argc, char **argv, tg_ex_common *common, sizes *s, settings *st) {
    const tg_ex_option options[] = {
        {"word-embed", TG_EX_INT, &s->word_embed, "word embedding size", 1, 4096, "E"},
        {"suffix-embed", TG_EX_INT, &s->suffix_embed, "embedding size of a word's last three letters", 1, 4096, "E"},
        {"hidden", TG_EX_INT, &s->hidden, "LSTM hidden units per direction", 1, 8192, "H"},
        {"layers", TG_EX_INT, &s->layers, "stacked bidirectional LSTM layers", 1, TG_RNN_MAX_LAYERS, "L"},
        {"batch", TG_EX_INT, &st->batch, "sentences per batch", 1, 4096, "B"},
        tg_ex_workers_option(&st->workers),
        {"lr", TG_EX_DOUBLE, &st->lr, "Adam learning rate", 1e-6, 1, "R"},
        {"clip", TG_EX_DOUBLE, &st->clip, "clip the gradient norm at this", 1e-3, 1e3, "X"},
        {"dropout", TG_EX_DOUBLE, &st->dropout, "dropout on the embeddings and the LSTM's output", 0, 0.9, "P"},
        {"min-count", TG_EX_INT, &st->min_count, "words and suffixes seen fewer times in training are UNK", 1, 1000,
         "N"},
        {"steps", TG_EX_U64, &st->max_steps, "stop after this many steps, whatever the time (0: no limit)", 0, 0, "N"},
        {"tag", TG_EX_STRING, &st->text, "a sentence to tag, words separated by spaces", 0, 0, "TEXT"},
    };
    tg_ex_cli cli = {"postag", "a bidirectional LSTM part-of-speech tagger on the Brown corpus (universal tags)",
                     common, options, TG_EX_LEN(options), NULL, NULL};
    return tg_ex_parse(&cli, argc, argv);
}

// Reads the corpus (the vocabularies from its training sentences unless a checkpoint brought
// them).
static bool load_corpus(const tg_ex_common *common, int min_count, tg_ex_vocab **vocab, corpus *c) {
    tg_ex_brown brown;
    tg_ex_error err;
    if (!tg_ex_brown_load(common->data, &brown, &err)) return fprintf(stderr, "postag: %s\n", err.msg), false;
    bool grow = !vocab[0];
    for (int i = 0; grow && i < 3; i++) vocab[i] = tg_ex_vocab_new();
    bool ok = build_corpus(&brown, vocab[0], vocab[1], vocab[2], grow, min_count, c);
    if (!ok) fprintf(stderr, "postag: out of memory\n");
    tg_ex_brown_free(&brown);
    if (ok)
        printf("postag: %d train, %d dev, %d test sentences; %d words, %d suffixes, %d tags; BLIS kernels %s\n",
               c->n_split[0], c->n_split[1], c->n_split[2], tg_ex_vocab_size(vocab[0]), tg_ex_vocab_size(vocab[1]),
               tg_ex_vocab_size(vocab[2]) - TG_EX_RESERVED, tg_blas_arch());
    if (ok && !c->n_split[TG_EX_TRAIN] && !common->load)
        ok = false, fprintf(stderr, "postag: no training sentences\n");
    return ok;
}

// A run: the model, its data and trainer, where training is and the dev accuracy it last saw.
typedef struct {
    model m;
    const corpus *c;
    const settings *st;
    tg_optim *opt;
    tg_ex_trainer tr;
    tg_graph *g; // evaluation and tagging
    tg_ex_batches batches; // of the training sentences
    int cap;     // sentences an evaluation batch
    tg_rng rng;
    tg_ex_saver saver;
    tg_ex_run run;
    double dev_acc, dev_oov;
} session;

static void begin_epoch(void *user, int64_t epoch) {
    session *ss = user;
    tg_ex_batches_epoch(&ss->batches, epoch);
}

// One optimizer step on batch k of the epoch; returns the loss, *units its real tokens.
static double step(void *user, int64_t k, double *units) {
    session *ss = user;
    batch_job job = {&ss->m, ss->c, NULL, 0};
    int size = tg_ex_batches_at(&ss->batches, k, &job.idx);
    for (int b = 0; b < size; b++) job.tokens += ss->c->start[job.idx[b] + 1] - ss->c->start[job.idx[b]];
    *units = (double)job.tokens;
    return tg_ex_trainer_step(&ss->tr, size, batch_loss, &job, &ss->rng);
}

static void end_epoch(void *user, int64_t epoch) {
    session *ss = user;
    ss->dev_acc = evaluate(ss->g, &ss->m, ss->c, TG_EX_DEV, ss->cap, &ss->dev_oov);
    printf("epoch %lld: dev accuracy %.4f\n", (long long)epoch + 1, ss->dev_acc);
}

static bool save_now(void *user, int64_t at) {
    session *ss = user;
    return save(&ss->saver, &ss->m, ss->opt, &ss->rng, at);
}

// The model of s (with --load its weights and, when it trains on, its training state), its
// optimizer and trainer. False with a message.
static bool session_start(session *ss, sizes s, tg_ex_vocab *const *vocab, bool has_state,
                          const tg_ex_common *common) {
    const settings *st = ss->st;
    int n_tags = tg_ex_vocab_size(vocab[2]);
    tg_rng_seed(&ss->rng, common->seed);
    if (!model_init(&ss->m, s, tg_ex_vocab_size(vocab[0]), tg_ex_vocab_size(vocab[1]), n_tags, st->dropout, &ss->rng))
        return false;
    ss->opt = tg_optim_adam(ss->m.params, (tg_adam_opts){.lr = st->lr});
    if (!tg_ex_run_start("postag", common, ss->m.params, has_state, ss->opt, &ss->rng, &ss->run)) return false;
    printf("model: embeddings %d + %d + %d -> BiLSTM 2 x %d x %d layer(s) -> %d tags, %lld parameters\n", s.word_embed,
           s.suffix_embed, SHAPE_EMBED, s.hidden, s.layers, n_tags - TG_EX_RESERVED,
           (long long)tg_params_numel(ss->m.params));
    enum { EVAL_BATCH = 64 };
    ss->cap = st->batch > EVAL_BATCH ? st->batch : EVAL_BATCH;
    ss->saver = tg_ex_saver_make("postag", common, vocab, VOCAB_NAME, 3);
    ss->g = tg_graph_new();
    const corpus *c = ss->c;
    bool made = tg_ex_batches_init(&ss->batches, c->split[TG_EX_TRAIN], c->n_split[TG_EX_TRAIN], c->start, st->batch,
                                   16 * st->batch, common->seed);
    if (!made || !ss->g) return fprintf(stderr, "postag: out of memory\n"), false;
    return tg_ex_trainer_init(&ss->tr, "postag", ss->m.params, ss->opt, st->clip, st->workers);
}

static void session_free(session *ss) {
    tg_ex_trainer_free(&ss->tr);
    tg_ex_batches_free(&ss->batches);
    tg_graph_free(ss->g);
    tg_optim_free(ss->opt);
    tg_params_free(ss->m.params);
}

// Trains, saves, scores dev and test, tags --tag's sentence; the RESULT line. False when
// saving failed.
static bool run(session *ss, const tg_ex_common *common, tg_ex_vocab *const *vocab) {
    tg_ex_loop loop = {"tok", tg_ex_batches_per_epoch(&ss->batches), ss->st->max_steps, ss, begin_epoch, step,
                       end_epoch, save_now};
    double t0 = tg_ex_now(), test_oov;
    tg_ex_train_epochs(&loop, common->minutes, &ss->saver, &ss->run);
    bool saved = save(&ss->saver, &ss->m, ss->opt, &ss->rng, ss->run.step);
    if (ss->run.dev_step != ss->run.step)
        ss->dev_acc = evaluate(ss->g, &ss->m, ss->c, TG_EX_DEV, ss->cap, &ss->dev_oov);
    double test_acc = evaluate(ss->g, &ss->m, ss->c, TG_EX_TEST, ss->cap, &test_oov);
    printf("token accuracy: dev %.4f, test %.4f (words outside the vocabulary: %.4f) after %lld steps\n", ss->dev_acc,
           test_acc, test_oov, (long long)ss->run.step);
    if (ss->st->text) tag_sentence(ss->g, &ss->m, ss->st->text, vocab[0], vocab[1], vocab[2]);
    tg_ex_result(NULL,
                 "test_acc=%.4f dev_acc=%.4f test_oov_acc=%.4f first_loss=%.4f last_loss=%.4f steps=%lld seconds=%.0f",
                 test_acc, ss->dev_acc, test_oov, ss->run.first_loss, ss->run.last_loss,
                 (long long)(ss->run.step - ss->run.start_step), tg_ex_now() - t0);
    return saved;
}

int main(int argc, char **argv) {
    tg_ex_common common = tg_ex_common_defaults(TG_DATA_DIR, 1);
    sizes s = {64, 32, 128, 1};
    settings st = {32, 2, 1, 0, 2e-3, 5.0, 0.3, NULL};
    tg_ex_parse_result parsed = parse_settings(argc, argv, &common, &s, &st);
    if (parsed != TG_EX_PARSE_OK) return parsed == TG_EX_PARSE_HELP ? 0 : 2;
    tg_set_num_threads(common.threads);

    tg_ex_vocab *vocab[3] = {NULL, NULL, NULL}; // words, suffixes, tags
    bool has_state = false;
    tg_ex_config_int fields[N_CONFIG];
    config_fields(&s, fields);
    if (common.load && !tg_ex_load_sizes("postag", common.load, fields, N_CONFIG, vocab, VOCAB_NAME, 3, &has_state))
        return 1;
    corpus c = {0};
    session ss = {.c = &c, .st = &st};
    bool ok = load_corpus(&common, st.min_count, vocab, &c) && session_start(&ss, s, vocab, has_state, &common);
    ok = ok && run(&ss, &common, vocab);
    session_free(&ss);
    corpus_free(&c);
    for (int i = 0; i < 3; i++) tg_ex_vocab_free(vocab[i]);
    return ok ? 0 : 1;
}
