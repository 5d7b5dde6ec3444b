// charlm: a character-level LSTM language model of the Brown corpus's raw text.
//
// The training text is one long stream of characters (every training sentence, one a line),
// cut into B parallel rows that are read T characters at a time: truncated back-propagation
// through time. The state at the end of one chunk starts the next, cut from the tape by
// tg_detach, so gradients flow back T steps while the model still sees the whole text.
// It reports bits per character on the dev split and writes text sampled from a prime.
//
//   build/examples/charlm --minutes 20 --data data/full --save charlm.safetensors
//   build/examples/charlm --load charlm.safetensors --minutes 0 --prime "The jury" --temperature 0.6
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tg_checkpoint.h"
#include "tg_ex_train.h"

#ifndef TG_DATA_DIR
#define TG_DATA_DIR "data"
#endif

typedef struct {
    int embed, hidden, layers; // what a checkpoint's config records
} sizes;

typedef struct {
    sizes s;
    int vocab;
    tg_params *params;
    tg_tensor *embedding;     // [V, E]
    tg_rnn lstm;              // E -> H, s.layers deep
    tg_tensor *w_out, *b_out; // [V, H], [V]
} model;

static bool model_init(model *m, sizes s, int vocab, tg_rng *rng) {
    m->s = s;
    m->vocab = vocab;
    m->params = tg_params_new();
    m->embedding = tg_params_add(m->params, "embedding.weight", TG_F32, tg_shape2(vocab, s.embed));
    tg_rnn_config cfg = {.cell = &tg_cell_lstm, .input_size = s.embed, .hidden_size = s.hidden, .num_layers = s.layers};
    if (!tg_rnn_init(&m->lstm, &cfg, m->params, "lstm.", rng)) return false;
    m->w_out = tg_params_add(m->params, "out.weight", TG_F32, tg_shape2(vocab, s.hidden));
    m->b_out = tg_params_add(m->params, "out.bias", TG_F32, tg_shape1(vocab));
    // PyTorch's defaults: N(0, 1) for an embedding, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for a linear layer.
    tg_tensor_fill_normal(m->embedding, rng, 0, 1);
    tg_tensor_fill_uniform(m->w_out, rng, -1 / sqrt(s.hidden), 1 / sqrt(s.hidden));
    tg_tensor_fill_uniform(m->b_out, rng, -1 / sqrt(s.hidden), 1 / sqrt(s.hidden));
    return true;
}

// Logits [T*B, V] for the character after each of ids [T, B], starting from the states
// init = {h, c}, each [L, B, H] (NULL or {NULL, NULL}: zeros); the final states go to fin[0..1].
static tg_tensor *model_forward(tg_graph *g, const model *m, tg_tensor *ids, tg_tensor *const *init, tg_tensor **fin) {
    tg_tensor *x = tg_embedding(g, m->embedding, ids); // [T, B, E]
    tg_rnn_result r;
    if (!tg_rnn_forward(g, &m->lstm, x, NULL, init && init[0] ? init : NULL, NULL, &r)) return NULL;
    fin[0] = r.state[0];
    fin[1] = r.state[1];
    tg_tensor *h = tg_reshape(g, r.output, tg_shape2(-1, m->s.hidden)); // [T*B, H]
    return tg_linear(g, h, m->w_out, m->b_out);                         // [T*B, V]
}

// Truncated BPTT: the states every row of text ended the last chunk in, kept outside any
// graph, so that a chunk starts from them as constants (backward stops at the chunk's start)
// whichever graph it runs in. A worker reads and writes only the rows of its shard.
typedef struct {
    float *state[2]; // {h, c}, [L, B, H] each
    int L, B, H;
    bool valid; // false: the next chunk starts from zeros
} carry;

static bool carry_init(carry *c, int L, int B, int H) {
    *c = (carry){{NULL, NULL}, L, B, H, false};
    for (int i = 0; i < 2; i++) c->state[i] = malloc(sizeof(float) * (size_t)L * (size_t)B * (size_t)H);
    return c->state[0] && c->state[1];
}

static void carry_free(carry *c) { free(c->state[0]), free(c->state[1]); }

// The states of rows [begin, begin + n) as tensors [L, n, H] in g; NULL when not valid.
static void carry_in(tg_graph *g, const carry *c, int begin, int n, tg_tensor **init) {
    for (int i = 0; i < 2; i++) {
        init[i] = c->valid ? tg_zeros(g, TG_F32, tg_shape3(c->L, n, c->H)) : NULL;
        for (int l = 0; init[i] && l < c->L; l++)
            memcpy((float *)init[i]->data + (size_t)l * n * c->H, c->state[i] + ((size_t)l * c->B + begin) * c->H,
                   sizeof(float) * (size_t)n * c->H);
    }
}

// Keeps the final states fin = {h, c} [L, n, H] of rows [begin, begin + n).
static void carry_out(carry *c, tg_tensor *const *fin, int begin, int n) {
    for (int i = 0; i < 2; i++)
        for (int l = 0; l < c->L; l++)
            memcpy(c->state[i] + ((size_t)l * c->B + begin) * c->H, (const float *)fin[i]->data + (size_t)l * n * c->H,
                   sizeof(float) * (size_t)n * c->H);
}

// --- Data: the raw text of a split, as one stream of character ids ---------------------

// The sentences of one split in file order, each followed by '\n', as ids [*n]; characters
// are added to vocab when grow is set, and map to UNK when they are not in it.
static int32_t *encode_split(const tg_ex_brown *brown, tg_ex_split split, tg_ex_vocab *vocab, bool grow, int64_t *n) {
    int64_t total = 0;
    size_t longest = 0;
    for (int i = 0; i < brown->n; i++) {
        if (brown->items[i].split != split) continue;
        size_t len = tg_ex_sentence_text(&brown->items[i], NULL, 0);
        total += (int64_t)len + 1;
        longest = len > longest ? len : longest;
    }
    int32_t *ids = malloc(sizeof *ids * (size_t)(total + 1));
    char *line = malloc(longest + 2);
    *n = 0;
    for (int i = 0; ids && line && i < brown->n; i++) {
        if (brown->items[i].split != split) continue;
        size_t len = tg_ex_sentence_text(&brown->items[i], line, longest + 2);
        line[len] = '\n';
        for (size_t k = 0; k <= len; k++)
            ids[(*n)++] = grow ? tg_ex_vocab_add_n(vocab, &line[k], 1) : tg_ex_vocab_id_n(vocab, &line[k], 1);
    }
    free(line);
    return ids;
}

// The stream cut into B rows of `cols` characters: element (b, j) is ids[b*cols + j]. Chunk k
// of rows [begin, begin + n) holds inputs x[t, b] = (begin + b, kT + t) and targets
// y[t, b] = (begin + b, kT + t + 1), both [T, n].
typedef struct {
    const int32_t *ids;
    int64_t cols, chunks;
    int B, T;
} rows;

static rows rows_of(const int32_t *ids, int64_t n, int B, int T) {
    rows r = {ids, n / B, 0, B, T};
    r.chunks = r.cols > 1 ? (r.cols - 1) / T : 0;
    return r;
}

// A chunk's loss, shard by shard: what each shard reads, and the carry it writes its rows of.
typedef struct {
    const model *m;
    const rows *r;
    int64_t k; // the chunk
    carry *c;
} chunk_job;

// The mean cross-entropy, in nats, of the shard's rows of the chunk (a tg_shard_loss_fn).
static tg_tensor *chunk_loss(tg_graph *g, const tg_shard *s, tg_rng *rng, void *user) {
    (void)rng; // no dropout
    chunk_job *job = user;
    const rows *r = job->r;
    int T = r->T, n = (int)s->count, begin = (int)s->begin;
    tg_tensor *x = tg_zeros(g, TG_I32, tg_shape2(T, n)), *y = tg_zeros(g, TG_I32, tg_shape1((int64_t)T * n));
    int32_t *xs = x->data, *ys = y->data; // [T, n] each
    for (int t = 0; t < T; t++)
        for (int b = 0; b < n; b++) {
            const int32_t *at = r->ids + (begin + b) * r->cols + job->k * T + t;
            xs[t * n + b] = at[0];
            ys[t * n + b] = at[1];
        }
    tg_tensor *init[2], *fin[2];
    carry_in(g, job->c, begin, n, init);
    tg_tensor *logits = model_forward(g, job->m, x, init, fin); // [T*n, V]
    if (!logits) return NULL;
    carry_out(job->c, fin, begin, n);
    return tg_cross_entropy(g, logits, y, TG_REDUCE_MEAN, -100);
}

// Bits per character over a whole stream, recording off, state carried from chunk to chunk.
static double evaluate(tg_graph *g, const model *m, const rows *r, carry *c) {
    double nats = 0;
    chunk_job job = {m, r, 0, c};
    tg_shard whole = {.begin = 0, .count = r->B, .batch = r->B};
    c->valid = false;
    tg_graph_set_grad_enabled(g, false);
    for (; job.k < r->chunks; job.k++, c->valid = true) {
        tg_graph_reset(g);
        nats += tg_tensor_get(chunk_loss(g, &whole, NULL, &job), 0);
    }
    tg_graph_set_grad_enabled(g, true);
    c->valid = false;
    return r->chunks ? nats / (double)r->chunks / log(2.0) : NAN;
}

// A character drawn from softmax(logits / temperature) over logits [V]; reserved ids never.
static int draw(const float *logits, int V, double temperature, double *p, tg_rng *rng) {
    double max = -INFINITY, sum = 0, u = tg_rng_uniform(rng);
    for (int v = TG_EX_RESERVED; v < V; v++) max = logits[v] > max ? logits[v] : max;
    for (int v = 0; v < V; v++) // reserved ids are never a character: probability 0
        sum += p[v] = v < TG_EX_RESERVED ? 0 : exp((logits[v] - max) / temperature);
    for (int v = 0; v < V; v++)
        if ((u -= p[v] / sum) < 0) return v;
    return V - 1;
}

// Feeds the prime, then draws n characters one at a time (row 0 of the carry holds the state).
static void sample(tg_graph *g, carry *c, const model *m, const tg_ex_vocab *vocab, const char *prime, int n,
                   double temperature, tg_rng *rng) {
    int len = (int)strlen(prime), unknown = 0;
    int32_t *ids = malloc(sizeof *ids * (size_t)(len + 1));
    for (int i = 0; i < len; i++) unknown += (ids[i] = tg_ex_vocab_id_n(vocab, &prime[i], 1)) == TG_EX_UNK;
    if (len == 0) ids[len++] = tg_ex_vocab_id(vocab, "\n"); // no prime: start as after a sentence
    if (unknown) printf("(%d byte%s of the prime never occur in the training text; read as <unk>)\n", unknown,
                        unknown > 1 ? "s" : "");
    printf("--- sample, temperature %g ---\n%s", temperature, prime);
    c->valid = false;
    tg_graph_set_grad_enabled(g, false);
    double *p = malloc(sizeof *p * (size_t)m->vocab);
    for (int k = 0; k < n; k++, c->valid = true) {
        tg_tensor *init[2], *fin[2];
        tg_graph_reset(g);
        carry_in(g, c, 0, 1, init);
        tg_tensor *logits = model_forward(g, m, tg_from_data(g, TG_I32, tg_shape2(len, 1), ids), init, fin);
        carry_out(c, fin, 0, 1);
        int pick = draw((const float *)logits->data + (int64_t)(len - 1) * m->vocab, m->vocab, temperature, p, rng);
        fputs(tg_ex_vocab_token(vocab, pick), stdout);
        ids[0] = pick; // from now on the model reads one character a step
        len = 1;
    }
    printf("\n---\n");
    tg_graph_set_grad_enabled(g, true);
    free(p);
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
    int seq, batch, sample_len, workers;
    uint64_t max_steps;
    double lr, lr_decay, clip, temperature;
    const char *prime;
} settings;

static tg_ex_parse_result parse_settings(int argc, char **argv, tg_ex_common *common, sizes *s, settings *st) {
    const tg_ex_option options[] = {
        {"embed", TG_EX_INT, &s->embed, "character embedding size", 1, 4096, "E"},
        {"hidden", TG_EX_INT, &s->hidden, "LSTM hidden units", 1, 8192, "H"},
        {"layers", TG_EX_INT, &s->layers, "stacked LSTM layers", 1, TG_RNN_MAX_LAYERS, "L"},
        {"seq", TG_EX_INT, &st->seq, "characters per chunk: how far back gradients flow", 1, 4096, "T"},
        {"batch", TG_EX_INT, &st->batch, "parallel rows of text", 1, 4096, "B"},
        tg_ex_workers_option(&st->workers),
        {"lr", TG_EX_DOUBLE, &st->lr, "Adam learning rate of the first epoch", 1e-6, 1, "R"},
        {"lr-decay", TG_EX_DOUBLE, &st->lr_decay, "the learning rate is multiplied by this after each epoch", 1e-3, 1,
         "X"},
        {"clip", TG_EX_DOUBLE, &st->clip, "clip the gradient norm at this", 1e-3, 1e3, "X"},
        {"steps", TG_EX_U64, &st->max_steps, "stop after this many steps, whatever the time (0: no limit)", 0, 0, "N"},
        {"prime", TG_EX_STRING, &st->prime, "text the sample starts from", 0, 0, "TEXT"},
        {"temperature", TG_EX_DOUBLE, &st->temperature, "sampling temperature: lower is safer, higher wilder", 0.01,
         10, "X"},
        {"sample-len", TG_EX_INT, &st->sample_len, "characters to sample (0: none)", 0, 100000, "N"},
    };
    tg_ex_cli cli = {"charlm", "a character-level LSTM language model of the Brown corpus, trained with truncated BPTT",
                     common, options, TG_EX_LEN(options), NULL, NULL};
    return tg_ex_parse(&cli, argc, argv);
}

// The text of each split as ids, and its rows of chunks.
typedef struct {
    int32_t *ids[3]; // train, dev, test
    int64_t n[3];
    rows r[3];
} texts;

static void texts_free(texts *t) {
    for (int i = 0; i < 3; i++) free(t->ids[i]);
}

// Reads the text (the vocabulary from the training split unless a checkpoint brought it).
static bool load_texts(const tg_ex_common *common, const settings *st, tg_ex_vocab **vocab, texts *t) {
    tg_ex_brown brown;
    tg_ex_error err;
    if (!tg_ex_brown_load(common->data, &brown, &err)) return fprintf(stderr, "charlm: %s\n", err.msg), false;
    bool grow = !*vocab;
    if (grow) *vocab = tg_ex_vocab_new();
    for (int i = 0; i < 3; i++) // the vocabulary grows on the training text only
        t->ids[i] = encode_split(&brown, (tg_ex_split)i, *vocab, grow && i == TG_EX_TRAIN, &t->n[i]);
    tg_ex_brown_free(&brown);
    if (!t->ids[0] || !t->ids[1] || !t->ids[2]) return fprintf(stderr, "charlm: out of memory\n"), false;
    for (int i = 0; i < 3; i++) t->r[i] = rows_of(t->ids[i], t->n[i], st->batch, st->seq);
    if (!t->r[0].chunks || !t->r[1].chunks || !t->r[2].chunks)
        return fprintf(stderr, "charlm: a split of %s has too little text for --batch %d --seq %d\n", common->data,
                       st->batch, st->seq),
               false;
    printf("charlm: %lld train, %lld dev, %lld test characters; %d symbols; BLIS kernels %s\n", (long long)t->n[0],
           (long long)t->n[1], (long long)t->n[2], tg_ex_vocab_size(*vocab) - TG_EX_RESERVED, tg_blas_arch());
    return true;
}

// A run: the model, its data and trainer, where training is and the dev score it last saw.
typedef struct {
    model m;
    const texts *t;
    const settings *st;
    tg_optim *opt;
    tg_ex_trainer tr;
    carry c;
    tg_graph *g; // evaluation and sampling
    tg_rng rng;
    tg_ex_saver saver;
    tg_ex_run run;
    double dev_bpc;
} session;

// The learning rate, a fast start and then smaller steps to settle, is a function of the
// epoch alone; each epoch starts its rows from zero states (so does a resumed run).
static void begin_epoch(void *user, int64_t epoch) {
    session *ss = user;
    tg_lr_schedule schedule = {.kind = TG_LR_EXPONENTIAL, .gamma = ss->st->lr_decay};
    tg_optim_set_lr(ss->opt, tg_lr_at(&schedule, ss->st->lr, epoch));
    ss->c.valid = false;
}

// One optimizer step on chunk k of the training rows; returns bits per character.
static double step(void *user, int64_t k, double *units) {
    session *ss = user;
    chunk_job job = {&ss->m, &ss->t->r[TG_EX_TRAIN], k, &ss->c};
    double nats = tg_ex_trainer_step(&ss->tr, ss->st->batch, chunk_loss, &job, &ss->rng);
    ss->c.valid = true;
    *units = (double)ss->st->seq * ss->st->batch;
    return nats / log(2.0);
}

static void end_epoch(void *user, int64_t epoch) {
    session *ss = user;
    ss->dev_bpc = evaluate(ss->g, &ss->m, &ss->t->r[TG_EX_DEV], &ss->c);
    printf("epoch %lld: dev %.4f bits/char\n", (long long)epoch + 1, ss->dev_bpc);
}

static bool save_now(void *user, int64_t at) {
    session *ss = user;
    return save(&ss->saver, &ss->m, ss->opt, &ss->rng, at);
}

// The model (with --load its weights and, when it trains on, its training state), its
// optimizer, trainer and carry. False with a message.
static bool session_start(session *ss, sizes s, tg_ex_vocab *const *vocabs, bool has_state,
                          const tg_ex_common *common) {
    const settings *st = ss->st;
    int vocab = tg_ex_vocab_size(*vocabs);
    tg_rng_seed(&ss->rng, common->seed);
    if (!model_init(&ss->m, s, vocab, &ss->rng)) return false;
    ss->opt = tg_optim_adam(ss->m.params, (tg_adam_opts){.lr = st->lr});
    if (!tg_ex_run_start("charlm", common, ss->m.params, has_state, ss->opt, &ss->rng, &ss->run)) return false;
    printf("model: embedding %d -> LSTM %d x %d layer(s) -> %d symbols, %lld parameters; chunks of %d x %d "
           "characters, %d worker(s)\n",
           s.embed, s.hidden, s.layers, vocab, (long long)tg_params_numel(ss->m.params), st->seq, st->batch,
           st->workers);
    ss->saver = tg_ex_saver_make("charlm", common, vocabs, VOCAB_NAME, 1);
    ss->g = tg_graph_new();
    if (!carry_init(&ss->c, s.layers, st->batch, s.hidden) || !ss->g)
        return fprintf(stderr, "charlm: out of memory\n"), false;
    return tg_ex_trainer_init(&ss->tr, "charlm", ss->m.params, ss->opt, st->clip, st->workers);
}

static void session_free(session *ss) {
    tg_ex_trainer_free(&ss->tr);
    carry_free(&ss->c);
    tg_graph_free(ss->g);
    tg_optim_free(ss->opt);
    tg_params_free(ss->m.params);
}

// Trains, saves, scores dev and test, samples; the RESULT line. False when saving failed.
static bool run(session *ss, const tg_ex_common *common, const tg_ex_vocab *vocab) {
    const settings *st = ss->st;
    tg_ex_loop loop = {"char", ss->t->r[TG_EX_TRAIN].chunks, st->max_steps, ss, begin_epoch, step, end_epoch, save_now};
    double t0 = tg_ex_now();
    tg_ex_train_epochs(&loop, common->minutes, &ss->saver, &ss->run);
    bool saved = save(&ss->saver, &ss->m, ss->opt, &ss->rng, ss->run.step); // before sampling draws from rng
    if (ss->run.dev_step != ss->run.step) ss->dev_bpc = evaluate(ss->g, &ss->m, &ss->t->r[TG_EX_DEV], &ss->c);
    double test_bpc = evaluate(ss->g, &ss->m, &ss->t->r[TG_EX_TEST], &ss->c);
    printf("dev %.4f bits/char, test %.4f bits/char after %lld steps\n", ss->dev_bpc, test_bpc,
           (long long)ss->run.step);
    if (st->sample_len > 0) sample(ss->g, &ss->c, &ss->m, vocab, st->prime, st->sample_len, st->temperature, &ss->rng);
    tg_ex_result(NULL, "dev_bpc=%.4f test_bpc=%.4f first_loss=%.4f last_loss=%.4f steps=%lld seconds=%.0f",
                 ss->dev_bpc, test_bpc, ss->run.first_loss, ss->run.last_loss,
                 (long long)(ss->run.step - ss->run.start_step), tg_ex_now() - t0);
    return saved;
}

int main(int argc, char **argv) {
    tg_ex_common common = tg_ex_common_defaults(TG_DATA_DIR, 1);
    sizes s = {32, 256, 1};
    settings st = {64, 32, 300, 1, 0, 8e-3, 0.7, 1.0, 0.8, "The "};
    tg_ex_parse_result parsed = parse_settings(argc, argv, &common, &s, &st);
    if (parsed != TG_EX_PARSE_OK) return parsed == TG_EX_PARSE_HELP ? 0 : 2;
    tg_set_num_threads(common.threads);

    tg_ex_vocab *vocab = NULL;
    bool has_state = false;
    tg_ex_config_int fields[N_CONFIG];
    config_fields(&s, fields);
    if (common.load && !tg_ex_load_sizes("charlm", common.load, fields, N_CONFIG, &vocab, VOCAB_NAME, 1, &has_state))
        return 1;
    texts t = {0};
    session ss = {.t = &t, .st = &st};
    bool ok = load_texts(&common, &st, &vocab, &t) && session_start(&ss, s, &vocab, has_state, &common);
    ok = ok && run(&ss, &common, vocab);
    session_free(&ss);
    texts_free(&t);
    tg_ex_vocab_free(vocab);
    return ok ? 0 : 1;
}
