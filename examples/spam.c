// spam: a recurrent classifier of e-mail, ham or spam, on the SpamAssassin corpus.
//
// A message is its first few hundred tokens (lower-case words, digits as 0, and each mark
// of punctuation: "$", "!" and "%" say a lot here). A bidirectional GRU reads them and the
// mean of its outputs over the message's own length says ham or spam. Messages of different
// lengths share a batch: tg_rnn_forward takes their lengths and outputs zeros past each
// one's end, so a sum over time divided by the length is the mean over real tokens only.
// Reports accuracy, precision and recall (spam is the positive class) on the test split, and
// classifies a message given with --classify.
//
//   build/examples/spam --minutes 5 --data data/full --save spam.safetensors
//   build/examples/spam --load spam.safetensors --minutes 0 --classify "Subject: WIN \$1000 now!!!"
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tg_checkpoint.h"
#include "tg_ex_train.h"

#ifndef TG_DATA_DIR
#define TG_DATA_DIR "data"
#endif

enum { MAX_WORD = 32, HAM = 0, SPAM = 1 };

typedef struct {
    int embed, hidden, layers; // what a checkpoint's config records
} sizes;

// --- Tokens --------------------------------------------------------------------------------

// Writes the ids of text's first max tokens into ids and returns how many there are. A word is
// a run of letters, digits, inner apostrophes and UTF-8 bytes, lower-cased, digits as 0 (a
// price is any price), cut at MAX_WORD bytes; any other visible character is a token of its
// own. With grow the tokens are counted into vocab (training data only); otherwise a token it
// does not hold is TG_EX_UNK.
static int tokenize(const char *text, int len, tg_ex_vocab *vocab, bool grow, int32_t *ids, int max) {
    int n = 0;
    for (int i = 0; i < len && n < max;) {
        unsigned char c = (unsigned char)text[i];
        char word[MAX_WORD];
        int w = 0;
        if (isspace(c) || c < 32) { // spaces and control characters separate tokens
            i++;
            continue;
        }
        if (isalnum(c) || c >= 0x80) {
            for (; i < len; i++) {
                unsigned char d = (unsigned char)text[i];
                bool inner_quote = d == '\'' && i + 1 < len && isalpha((unsigned char)text[i + 1]);
                if (!isalnum(d) && d < 0x80 && !inner_quote) break;
                if (w < MAX_WORD) word[w++] = isdigit(d) ? '0' : (char)tolower(d);
            }
        } else {
            word[w++] = text[i++];
        }
        ids[n++] = grow ? tg_ex_vocab_add_n(vocab, word, (size_t)w) : tg_ex_vocab_id_n(vocab, word, (size_t)w);
    }
    return n;
}

// --- The model -------------------------------------------------------------------------

typedef struct {
    sizes s;
    tg_params *params;
    tg_tensor *embedding;     // [V, E]
    tg_rnn gru;               // bidirectional: E -> 2H
    tg_tensor *w_out, *b_out; // [2, 2H], [2]
    double dropout;
} model;

static bool model_init(model *m, sizes s, int vocab, double dropout, tg_rng *rng) {
    m->s = s;
    m->dropout = dropout;
    m->params = tg_params_new();
    m->embedding = tg_params_add(m->params, "embedding.weight", TG_F32, tg_shape2(vocab, s.embed));
    tg_rnn_config cfg = {.cell = &tg_cell_gru, .input_size = s.embed, .hidden_size = s.hidden, .num_layers = s.layers,
                         .bidirectional = true};
    if (!tg_rnn_init(&m->gru, &cfg, m->params, "gru.", rng)) return false;
    m->w_out = tg_params_add(m->params, "out.weight", TG_F32, tg_shape2(2, 2 * s.hidden));
    m->b_out = tg_params_add(m->params, "out.bias", TG_F32, tg_shape1(2));
    // PyTorch's defaults: N(0, 1) for an embedding, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for a linear layer.
    tg_tensor_fill_normal(m->embedding, rng, 0, 1);
    double k = 1 / sqrt(2.0 * s.hidden);
    tg_tensor_fill_uniform(m->w_out, rng, -k, k);
    tg_tensor_fill_uniform(m->b_out, rng, -k, k);
    return true;
}

// A batch, time-major: ids[t*B + b] is token t of message b (TG_EX_PAD past its length).
typedef struct {
    int T, B;
    int32_t *ids, *lengths, *labels; // [T*B], [B], [B]
    float *inv_len;                  // [B]: 1 / lengths
} batch;

// Logits [B, 2] (ham, spam) of a batch.
static tg_tensor *model_forward(tg_graph *g, const model *m, const batch *bt, tg_rng *rng) {
    tg_tensor *x =
        tg_embedding(g, m->embedding, tg_from_data(g, TG_I32, tg_shape2(bt->T, bt->B), bt->ids)); // [T, B, E]
    x = tg_dropout(g, x, m->dropout, rng);
    tg_rnn_result r;
    tg_tensor *lengths = tg_from_data(g, TG_I32, tg_shape1(bt->B), bt->lengths);
    if (!tg_rnn_forward(g, &m->gru, x, lengths, NULL, rng, &r)) return NULL;
    // Outputs past a message's length are zeros, so this sum over time holds its real tokens only.
    tg_tensor *sum = tg_sum_axis(g, r.output, 0, false);                                          // [B, 2H]
    tg_tensor *mean = tg_mul(g, sum, tg_from_data(g, TG_F32, tg_shape2(bt->B, 1), bt->inv_len)); // [B, 2H]
    return tg_linear(g, tg_dropout(g, mean, m->dropout, rng), m->w_out, m->b_out);              // [B, 2]
}

// --- Data: every message's tokens, flat, and batches of them --------------------------------

typedef struct {
    int32_t *ids;    // [n_tokens]
    int64_t *start;  // [n + 1]: message i is tokens start[i] .. start[i+1]-1
    bool *spam;      // [n]
    int *split[3], n_split[3];
} corpus;

// Tokens of every message, at most max_tokens each. Unless it came from a checkpoint (grow
// false), the vocabulary is made from the training split, and tokens seen fewer than
// min_count times there are dropped: they become UNK, which the model thus learns to read.
static bool build_corpus(const tg_ex_spam *mail, tg_ex_vocab *vocab, bool grow, int min_count, int max_tokens,
                         corpus *c) {
    memset(c, 0, sizeof *c);
    c->ids = malloc(sizeof *c->ids * (size_t)mail->n * (size_t)max_tokens);
    c->start = malloc(sizeof *c->start * (size_t)(mail->n + 1));
    c->spam = malloc(sizeof *c->spam * (size_t)mail->n);
    for (int s = 0; s < 3; s++) c->split[s] = malloc(sizeof(int) * (size_t)mail->n);
    if (!c->ids || !c->start || !c->spam || !c->split[0] || !c->split[1] || !c->split[2]) return false;
    for (int i = 0; grow && i < mail->n; i++)
        if (mail->items[i].split == TG_EX_TRAIN)
            tokenize(mail->items[i].text, mail->items[i].len, vocab, true, c->ids, max_tokens);
    if (grow) tg_ex_vocab_prune(vocab, min_count);
    int64_t at = 0;
    for (int i = 0; i < mail->n; i++) {
        const tg_ex_message *msg = &mail->items[i];
        c->start[i] = at;
        at += tokenize(msg->text, msg->len, vocab, false, c->ids + at, max_tokens);
        if (at == c->start[i]) c->ids[at++] = TG_EX_UNK; // a message of no tokens still has length 1
        c->spam[i] = msg->spam;
        c->split[msg->split][c->n_split[msg->split]++] = i;
    }
    c->start[mail->n] = at;
    return true;
}

static void corpus_free(corpus *c) {
    free(c->ids);
    free(c->start);
    free(c->spam);
    for (int s = 0; s < 3; s++) free(c->split[s]);
}

// Fills bt with messages idx[0..B-1], its arrays in g's arena.
static void make_batch(tg_graph *g, const corpus *c, const int *idx, int B, batch *bt) {
    bt->B = B;
    bt->T = 0;
    bt->lengths = tg_graph_alloc(g, sizeof(int32_t) * 2 * (size_t)B); // [B] lengths, then [B] labels
    bt->labels = bt->lengths + B;
    bt->inv_len = tg_graph_alloc(g, sizeof(float) * (size_t)B);
    for (int b = 0; b < B; b++) {
        bt->lengths[b] = (int32_t)(c->start[idx[b] + 1] - c->start[idx[b]]);
        bt->T = bt->lengths[b] > bt->T ? bt->lengths[b] : bt->T;
        bt->inv_len[b] = 1.0f / (float)bt->lengths[b];
        bt->labels[b] = c->spam[idx[b]] ? SPAM : HAM;
    }
    bt->ids = tg_graph_alloc(g, sizeof(int32_t) * (size_t)bt->T * (size_t)B); // [T, B]
    for (int t = 0; t < bt->T; t++)
        for (int b = 0; b < B; b++) bt->ids[t * B + b] = t < bt->lengths[b] ? c->ids[c->start[idx[b]] + t] : TG_EX_PAD;
}

// A training batch's loss, shard by shard: the model, and the batch's messages.
typedef struct {
    const model *m;
    const corpus *c;
    const int *idx; // [batch]: the global batch's messages
} batch_job;

// The shard's mean cross-entropy over its messages (a tg_shard_loss_fn).
static tg_tensor *batch_loss(tg_graph *g, const tg_shard *s, tg_rng *rng, void *user) {
    const batch_job *job = user;
    batch bt;
    make_batch(g, job->c, job->idx + s->begin, (int)s->count, &bt);
    tg_tensor *logits = model_forward(g, job->m, &bt, rng);
    return tg_cross_entropy(g, logits, tg_from_data(g, TG_I32, tg_shape1(bt.B), bt.labels), TG_REDUCE_MEAN, -100);
}

typedef struct {
    double accuracy, precision, recall;
} scores;

// Scores over a split, recording and dropout off.
static scores evaluate(tg_graph *g, const model *m, const corpus *c, tg_ex_split split, int cap) {
    int64_t tp = 0, fp = 0, fn = 0, right = 0;
    tg_graph_set_grad_enabled(g, false);
    tg_graph_set_training(g, false);
    for (int at = 0; at < c->n_split[split]; at += cap) {
        batch bt;
        tg_graph_reset(g);
        make_batch(g, c, c->split[split] + at, c->n_split[split] - at < cap ? c->n_split[split] - at : cap, &bt);
        const float *logits = model_forward(g, m, &bt, NULL)->data; // [B, 2]
        for (int b = 0; b < bt.B; b++) {
            int said = logits[2 * b + SPAM] > logits[2 * b + HAM] ? SPAM : HAM, truth = bt.labels[b];
            right += said == truth;
            tp += said == SPAM && truth == SPAM;
            fp += said == SPAM && truth == HAM;
            fn += said == HAM && truth == SPAM;
        }
    }
    tg_graph_set_grad_enabled(g, true);
    tg_graph_set_training(g, true);
    int n = c->n_split[split];
    return (scores){n ? (double)right / n : NAN, tp + fp ? (double)tp / (double)(tp + fp) : NAN,
                    tp + fn ? (double)tp / (double)(tp + fn) : NAN};
}

// Classifies one message typed by a user; tokens never seen in training are read as UNK.
static void classify(tg_graph *g, const model *m, const char *text, const tg_ex_vocab *vocab, int max_tokens) {
    int len = (int)strlen(text), unknown = 0;
    int32_t *ids = malloc(sizeof *ids * (size_t)(max_tokens + 1)), length, label = HAM;
    int n = tokenize(text, len, (tg_ex_vocab *)vocab, false, ids, max_tokens); // grow false: vocab unchanged
    if (n == 0) ids[n++] = TG_EX_UNK;
    for (int i = 0; i < n; i++) unknown += ids[i] == TG_EX_UNK;
    length = n;
    float inv_len = 1.0f / (float)n;
    batch bt = {n, 1, ids, &length, &label, &inv_len};
    tg_graph_set_grad_enabled(g, false);
    tg_graph_set_training(g, false);
    tg_graph_reset(g);
    tg_tensor *p = tg_softmax(g, model_forward(g, m, &bt, NULL), -1); // [1, 2]
    double spam = tg_tensor_get(p, SPAM);
    printf("%s (p(spam) = %.3f; %d tokens, %d never seen in training)\n", spam > 0.5 ? "SPAM" : "HAM", spam, n,
           unknown);
    tg_graph_set_grad_enabled(g, true);
    tg_graph_set_training(g, true);
    free(ids);
}

// --- Checkpoints: tg_ex_saver's files, the sizes as config, the vocabulary as PATH.vocab

static const char *const VOCAB_NAME[] = {"vocab"};
enum { N_CONFIG = 3 };
// The config: the sizes, as JSON. f[N_CONFIG] points at the fields of s.
static void config_fields(sizes *s, tg_ex_config_int *f) {
    f[0] = (tg_ex_config_int){"embed", &s->embed};
    f[1] = (tg_ex_config_int){"hidden", &s->hidden};
    f[2] = (tg_ex_config_int){"layers", &s->layers};
}

static bool save(tg_ex_saver *saver, const model *m, const tg_optim *opt, const tg_rng *rng, int64_t step) {
    sizes z = m->s;
    tg_ex_config_int fields[N_CONFIG];
    config_fields(&z, fields);
    return tg_ex_save_sizes(saver, m->params, opt, rng, step, fields, N_CONFIG);
}

// What the command line sets beyond the common options and the sizes.
typedef struct {
    int batch, min_count, max_tokens, workers;
    uint64_t max_steps;
    double lr, clip, dropout;
    const char *text; // --classify
} settings;

static tg_ex_parse_result parse_settings(int argc, char **argv, tg_ex_common *common, sizes *s, settings *st) {
    const tg_ex_option options[] = {
        {"embed", TG_EX_INT, &s->embed, "token embedding size", 1, 4096, "E"},
        {"hidden", TG_EX_INT, &s->hidden, "GRU hidden units per direction", 1, 8192, "H"},
        {"layers", TG_EX_INT, &s->layers, "stacked bidirectional GRU layers", 1, TG_RNN_MAX_LAYERS, "L"},
        {"max-tokens", TG_EX_INT, &st->max_tokens, "read at most this many tokens of a message", 1, 100000, "N"},
        {"batch", TG_EX_INT, &st->batch, "messages per batch", 1, 4096, "B"},
        tg_ex_workers_option(&st->workers),
        {"lr", TG_EX_DOUBLE, &st->lr, "Adam learning rate", 1e-6, 1, "R"},
        {"clip", TG_EX_DOUBLE, &st->clip, "clip the gradient norm at this", 1e-3, 1e3, "X"},
        {"dropout", TG_EX_DOUBLE, &st->dropout, "dropout on the embeddings and the pooled state", 0, 0.9, "P"},
        {"min-count", TG_EX_INT, &st->min_count, "tokens seen fewer times in training are UNK", 1, 1000, "N"},
        {"steps", TG_EX_U64, &st->max_steps, "stop after this many steps, whatever the time (0: no limit)", 0, 0, "N"},
        {"classify", TG_EX_STRING, &st->text, "a message to classify (\"Subject: ...\" then the body)", 0, 0, "TEXT"},
    };
    tg_ex_cli cli = {"spam", "a bidirectional GRU that tells spam from ham in the SpamAssassin corpus",
                     common, options, TG_EX_LEN(options), NULL, NULL};
    return tg_ex_parse(&cli, argc, argv);
}

// Reads the corpus (the vocabulary from its training messages unless a checkpoint brought it).
static bool load_corpus(const tg_ex_common *common, const settings *st, tg_ex_vocab **vocab, corpus *c) {
    tg_ex_spam mail;
    tg_ex_error err;
    if (!tg_ex_spam_load(common->data, &mail, &err)) return fprintf(stderr, "spam: %s\n", err.msg), false;
    bool grow = !*vocab;
    if (grow) *vocab = tg_ex_vocab_new();
    bool ok = build_corpus(&mail, *vocab, grow, st->min_count, st->max_tokens, c);
    if (!ok) fprintf(stderr, "spam: out of memory\n");
    else
        printf("spam: %d train, %d dev, %d test messages (%d spam in all); %d tokens in the vocabulary; BLIS kernels "
               "%s\n",
               c->n_split[0], c->n_split[1], c->n_split[2], mail.n_spam, tg_ex_vocab_size(*vocab), tg_blas_arch());
    tg_ex_spam_free(&mail);
    if (ok && !c->n_split[TG_EX_TRAIN] && !common->load) ok = false, fprintf(stderr, "spam: no training messages\n");
    return ok;
}

// A run: the model, its data and trainer, where training is and the dev scores it last saw.
typedef struct {
    model m;
    const corpus *c;
    const settings *st;
    tg_optim *opt;
    tg_ex_trainer tr;
    tg_graph *g; // evaluation and --classify
    tg_ex_batches batches; // of the training messages
    int cap;     // messages an evaluation batch
    tg_rng rng;
    tg_ex_saver saver;
    tg_ex_run run;
    scores dev;
} session;

static void begin_epoch(void *user, int64_t epoch) {
    session *ss = user;
    tg_ex_batches_epoch(&ss->batches, epoch);
}

// One optimizer step on batch k of the epoch; returns the loss, *units its messages.
static double step(void *user, int64_t k, double *units) {
    session *ss = user;
    batch_job job = {&ss->m, ss->c, NULL};
    int size = tg_ex_batches_at(&ss->batches, k, &job.idx);
    *units = size;
    return tg_ex_trainer_step(&ss->tr, size, batch_loss, &job, &ss->rng);
}

static void end_epoch(void *user, int64_t epoch) {
    session *ss = user;
    ss->dev = evaluate(ss->g, &ss->m, ss->c, TG_EX_DEV, ss->cap);
    printf("epoch %lld: dev accuracy %.4f, precision %.4f, recall %.4f\n", (long long)epoch + 1, ss->dev.accuracy,
           ss->dev.precision, ss->dev.recall);
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
    tg_rng_seed(&ss->rng, common->seed);
    if (!model_init(&ss->m, s, tg_ex_vocab_size(*vocab), st->dropout, &ss->rng)) return false;
    ss->opt = tg_optim_adam(ss->m.params, (tg_adam_opts){.lr = st->lr});
    if (!tg_ex_run_start("spam", common, ss->m.params, has_state, ss->opt, &ss->rng, &ss->run)) return false;
    printf("model: embedding %d -> BiGRU 2 x %d x %d layer(s) -> mean over the message -> ham/spam, %lld parameters\n",
           s.embed, s.hidden, s.layers, (long long)tg_params_numel(ss->m.params));
    enum { EVAL_BATCH = 64 };
    ss->cap = st->batch > EVAL_BATCH ? st->batch : EVAL_BATCH;
    ss->saver = tg_ex_saver_make("spam", common, vocab, VOCAB_NAME, 1);
    ss->g = tg_graph_new();
    const corpus *c = ss->c;
    bool made = tg_ex_batches_init(&ss->batches, c->split[TG_EX_TRAIN], c->n_split[TG_EX_TRAIN], c->start, st->batch,
                                   8 * st->batch, common->seed);
    if (!made || !ss->g) return fprintf(stderr, "spam: out of memory\n"), false;
    return tg_ex_trainer_init(&ss->tr, "spam", ss->m.params, ss->opt, st->clip, st->workers);
}

static void session_free(session *ss) {
    tg_ex_trainer_free(&ss->tr);
    tg_ex_batches_free(&ss->batches);
    tg_graph_free(ss->g);
    tg_optim_free(ss->opt);
    tg_params_free(ss->m.params);
}

// Trains, saves, scores dev and test, classifies --classify's message; the RESULT line.
// False when saving failed.
static bool run(session *ss, const tg_ex_common *common, const tg_ex_vocab *vocab) {
    const settings *st = ss->st;
    tg_ex_loop loop = {"msg", tg_ex_batches_per_epoch(&ss->batches), st->max_steps, ss, begin_epoch, step,
                       end_epoch, save_now};
    double t0 = tg_ex_now();
    tg_ex_train_epochs(&loop, common->minutes, &ss->saver, &ss->run);
    bool saved = save(&ss->saver, &ss->m, ss->opt, &ss->rng, ss->run.step);
    if (ss->run.dev_step != ss->run.step) ss->dev = evaluate(ss->g, &ss->m, ss->c, TG_EX_DEV, ss->cap);
    scores test = evaluate(ss->g, &ss->m, ss->c, TG_EX_TEST, ss->cap);
    printf("test: accuracy %.4f, precision %.4f, recall %.4f (dev accuracy %.4f) after %lld steps\n", test.accuracy,
           test.precision, test.recall, ss->dev.accuracy, (long long)ss->run.step);
    if (st->text) classify(ss->g, &ss->m, st->text, vocab, st->max_tokens);
    tg_ex_result(NULL,
                 "test_acc=%.4f test_precision=%.4f test_recall=%.4f dev_acc=%.4f first_loss=%.4f last_loss=%.4f "
                 "steps=%lld seconds=%.0f",
                 test.accuracy, test.precision, test.recall, ss->dev.accuracy, ss->run.first_loss, ss->run.last_loss,
                 (long long)(ss->run.step - ss->run.start_step), tg_ex_now() - t0);
    return saved;
}

int main(int argc, char **argv) {
    tg_ex_common common = tg_ex_common_defaults(TG_DATA_DIR, 1);
    sizes s = {64, 64, 1};
    settings st = {32, 2, 300, 1, 0, 2e-3, 5.0, 0.2, NULL};
    tg_ex_parse_result parsed = parse_settings(argc, argv, &common, &s, &st);
    if (parsed != TG_EX_PARSE_OK) return parsed == TG_EX_PARSE_HELP ? 0 : 2;
    tg_set_num_threads(common.threads);

    tg_ex_vocab *vocab = NULL;
    bool has_state = false;
    tg_ex_config_int fields[N_CONFIG];
    config_fields(&s, fields);
    if (common.load && !tg_ex_load_sizes("spam", common.load, fields, N_CONFIG, &vocab, VOCAB_NAME, 1, &has_state))
        return 1;
    corpus c = {0};
    session ss = {.c = &c, .st = &st, .dev = {NAN, NAN, NAN}};
    bool ok = load_corpus(&common, &st, &vocab, &c) && session_start(&ss, s, &vocab, has_state, &common);
    ok = ok && run(&ss, &common, vocab);
    session_free(&ss);
    corpus_free(&c);
    tg_ex_vocab_free(vocab);
    return ok ? 0 : 1;
}
