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
#include "tg_example.h"

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

// Truncated BPTT across graphs. Each chunk runs on one of two graphs in turn, so the state
// the previous chunk left (in the other graph's arena) is still valid while this one uses it;
// tg_detach makes it a constant here, so backward stops at the chunk's start.
typedef struct {
    tg_graph *g[2];
    int turn;
    tg_tensor *state[2]; // {h, c} [L, B, H] from the last chunk, or NULL: start from zeros
} carry;

static tg_graph *carry_next(carry *c, tg_tensor **init) {
    tg_graph *g = c->g[c->turn ^= 1];
    tg_graph_reset(g); // this graph held the chunk before last: nothing refers to it any more
    for (int i = 0; i < 2; i++) init[i] = c->state[0] ? tg_detach(g, c->state[i]) : NULL;
    return g;
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
// holds inputs x[t, b] = (b, kT + t) and targets y[t, b] = (b, kT + t + 1), both [T, B].
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

static void rows_chunk(const rows *r, int64_t k, int32_t *x, int32_t *y) {
    for (int t = 0; t < r->T; t++)
        for (int b = 0; b < r->B; b++) {
            const int32_t *at = r->ids + b * r->cols + k * r->T + t;
            x[t * r->B + b] = at[0];
            y[t * r->B + b] = at[1];
        }
}

// Bits per character over a whole stream, recording off, state carried from chunk to chunk.
static double evaluate(carry *c, const model *m, const rows *r, int32_t *x, int32_t *y) {
    double nats = 0;
    c->state[0] = c->state[1] = NULL;
    for (int i = 0; i < 2; i++) tg_graph_set_grad_enabled(c->g[i], false);
    for (int64_t k = 0; k < r->chunks; k++) {
        tg_tensor *init[2];
        tg_graph *g = carry_next(c, init);
        rows_chunk(r, k, x, y);
        tg_tensor *logits = model_forward(g, m, tg_from_data(g, TG_I32, tg_shape2(r->T, r->B), x), init, c->state);
        nats += tg_tensor_get(tg_cross_entropy(g, logits, tg_from_data(g, TG_I32, tg_shape1(r->T * r->B), y),
                                               TG_REDUCE_MEAN, -100), 0);
    }
    for (int i = 0; i < 2; i++) tg_graph_set_grad_enabled(c->g[i], true);
    c->state[0] = c->state[1] = NULL;
    return r->chunks ? nats / (double)r->chunks / log(2.0) : NAN;
}

// Feeds the prime, then draws n characters one at a time from softmax(logits / temperature).
static void sample(carry *c, const model *m, const tg_ex_vocab *vocab, const char *prime, int n, double temperature,
                   tg_rng *rng) {
    int len = (int)strlen(prime), unknown = 0;
    int32_t *ids = malloc(sizeof *ids * (size_t)(len + 1));
    for (int i = 0; i < len; i++) unknown += (ids[i] = tg_ex_vocab_id_n(vocab, &prime[i], 1)) == TG_EX_UNK;
    if (len == 0) ids[len++] = tg_ex_vocab_id(vocab, "\n"); // no prime: start as after a sentence
    if (unknown) printf("(%d byte%s of the prime never occur in the training text; read as <unk>)\n", unknown,
                        unknown > 1 ? "s" : "");
    printf("--- sample, temperature %g ---\n%s", temperature, prime);
    c->state[0] = c->state[1] = NULL;
    for (int i = 0; i < 2; i++) tg_graph_set_grad_enabled(c->g[i], false);
    double *p = malloc(sizeof *p * (size_t)m->vocab);
    for (int k = 0; k < n; k++) {
        tg_tensor *init[2];
        tg_graph *g = carry_next(c, init);
        tg_tensor *logits = model_forward(g, m, tg_from_data(g, TG_I32, tg_shape2(len, 1), ids), init, c->state);
        const float *last = (const float *)logits->data + (int64_t)(len - 1) * m->vocab; // the last step's [V]
        double max = -INFINITY, sum = 0, u = tg_rng_uniform(rng);
        for (int v = TG_EX_RESERVED; v < m->vocab; v++) max = last[v] > max ? last[v] : max;
        for (int v = 0; v < m->vocab; v++) // reserved ids are never a character: probability 0
            sum += p[v] = v < TG_EX_RESERVED ? 0 : exp((last[v] - max) / temperature);
        int pick = m->vocab - 1;
        for (int v = 0; v < m->vocab; v++)
            if ((u -= p[v] / sum) < 0) {
                pick = v;
                break;
            }
        fputs(tg_ex_vocab_token(vocab, pick), stdout);
        ids[0] = pick; // from now on the model reads one character a step
        len = 1;
    }
    printf("\n---\n");
    for (int i = 0; i < 2; i++) tg_graph_set_grad_enabled(c->g[i], true);
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
    char *config = tg_ex_config_write("charlm", fields, N_CONFIG);
    bool ok = config && tg_ex_saver_save(saver, m->params, opt, rng, step, config);
    free(config);
    return ok;
}

// Before the model exists: its sizes and vocabulary. A weights-only file (from PyTorch, say)
// has no config: the sizes given on the command line must then match it.
static bool load_config(const char *path, sizes *s, tg_ex_vocab **vocab, bool *has_state) {
    char *config;
    if (!tg_ex_checkpoint_config("charlm", path, &config, has_state, vocab, VOCAB_NAME, 1)) return false;
    tg_ex_config_int fields[N_CONFIG];
    config_fields(s, fields);
    bool ok = !config || tg_ex_config_read("charlm", path, config, fields, N_CONFIG);
    free(config);
    return ok;
}

// What the command line sets beyond the common options and the sizes.
typedef struct {
    int seq, batch, sample_len;
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
        {"lr", TG_EX_DOUBLE, &st->lr, "Adam learning rate of the first epoch", 1e-6, 1, "R"},
        {"lr-decay", TG_EX_DOUBLE, &st->lr_decay, "the learning rate is multiplied by this after each epoch", 1e-3, 1,
         "X"},
        {"clip", TG_EX_DOUBLE, &st->clip, "clip the gradient norm at this", 1e-3, 1e3, "X"},
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

// Where training is, and the dev score it last saw.
typedef struct {
    int64_t step, start_step, dev_step; // dev_step: the step dev was last scored at (-1: never)
    double first_loss, last_loss, dev_bpc;
} progress;

// One optimizer step on chunk k of the training rows (x, y [T, B]); returns bits per character.
static double train_step(carry *c, model *m, const rows *r, int64_t k, int32_t *x, int32_t *y, tg_optim *opt,
                         const settings *st) {
    int T = st->seq, B = st->batch;
    tg_tensor *init[2];
    tg_graph *g = carry_next(c, init);
    rows_chunk(r, k, x, y);
    tg_tensor *logits = model_forward(g, m, tg_from_data(g, TG_I32, tg_shape2(T, B), x), init, c->state);
    tg_tensor *loss = tg_cross_entropy(g, logits, tg_from_data(g, TG_I32, tg_shape1(T * B), y), TG_REDUCE_MEAN, -100);
    tg_optim_zero_grad(opt);
    tg_backward(g, loss);
    tg_clip_grad_norm(m->params, st->clip);
    tg_optim_step(opt);
    return tg_tensor_get(loss, 0) / log(2.0);
}

// Trains until the budget is spent, scoring dev after each whole epoch and saving when due.
// The position in the text follows from the step count, so a resumed run carries on where
// the saved one stopped (its carried state starts again from zeros); so does the learning
// rate, a fast start and then smaller steps to settle, a function of the epoch alone.
static void train(carry *c, model *m, const texts *t, int32_t *x, int32_t *y, tg_optim *opt, tg_rng *rng,
                  const settings *st, const tg_ex_common *common, tg_ex_saver *saver, progress *pr) {
    const rows *r = &t->r[TG_EX_TRAIN];
    tg_lr_schedule schedule = {.kind = TG_LR_EXPONENTIAL, .gamma = st->lr_decay};
    tg_ex_budget budget;
    tg_ex_budget_start(&budget, common->minutes);
    while (tg_ex_budget_left(&budget)) {
        int64_t epoch = pr->step / r->chunks, k = pr->step % r->chunks;
        tg_optim_set_lr(opt, tg_lr_at(&schedule, st->lr, epoch));
        char label[48];
        snprintf(label, sizeof label, "epoch %lld", (long long)epoch + 1);
        tg_ex_progress p;
        tg_ex_progress_begin(&p, stdout, label, r->chunks - k, "char");
        p.budget = &budget;
        c->state[0] = c->state[1] = NULL;
        for (; k < r->chunks && tg_ex_budget_left(&budget); k++, pr->step++) {
            if (tg_ex_saver_due(saver)) save(saver, m, opt, rng, pr->step); // a failure is reported; on we go
            double bits = train_step(c, m, r, k, x, y, opt, st);
            if (pr->step == pr->start_step) pr->first_loss = bits;
            tg_ex_progress_step(&p, bits, st->seq * st->batch);
        }
        tg_ex_progress_end(&p);
        pr->last_loss = tg_ex_progress_loss(&p); // the mean over the (last) epoch's steps, in bits per character
        if (k == r->chunks) {
            pr->dev_bpc = evaluate(c, m, &t->r[TG_EX_DEV], x, y);
            pr->dev_step = pr->step;
            printf("epoch %lld: dev %.4f bits/char\n", (long long)epoch + 1, pr->dev_bpc);
        }
    }
}

int main(int argc, char **argv) {
    tg_ex_common common = tg_ex_common_defaults(TG_DATA_DIR, 1);
    sizes s = {32, 256, 1};
    settings st = {64, 32, 300, 8e-3, 0.7, 1.0, 0.8, "The "};
    tg_ex_parse_result parsed = parse_settings(argc, argv, &common, &s, &st);
    if (parsed != TG_EX_PARSE_OK) return parsed == TG_EX_PARSE_HELP ? 0 : 2;
    tg_set_num_threads(common.threads);

    tg_ex_vocab *vocab = NULL;
    bool has_state = false;
    if (common.load && !load_config(common.load, &s, &vocab, &has_state)) return 1;
    texts t = {0};
    if (!load_texts(&common, &st, &vocab, &t)) return texts_free(&t), tg_ex_vocab_free(vocab), 1;
    tg_rng rng;
    tg_rng_seed(&rng, common.seed);
    model m;
    if (!model_init(&m, s, tg_ex_vocab_size(vocab), &rng)) return 1;
    tg_optim *opt = tg_optim_adam(m.params, (tg_adam_opts){.lr = st.lr});
    progress pr = {0, 0, -1, NAN, NAN, NAN};
    if (common.load) {
        if (!tg_ex_checkpoint_load("charlm", common.load, m.params, has_state, opt, &rng, &pr.step)) return 1;
        printf("loaded %s: embed %d, hidden %d, %d layer(s), %lld steps trained\n", common.load, s.embed, s.hidden,
               s.layers, (long long)pr.step);
    }
    printf(
        "model: embedding %d -> LSTM %d x %d layer(s) -> %d symbols, %lld parameters; chunks of %d x %d characters\n",
        s.embed, s.hidden, s.layers, m.vocab, (long long)tg_params_numel(m.params), st.seq, st.batch);

    carry c = {{tg_graph_new(), tg_graph_new()}, 0, {NULL, NULL}};
    size_t chunk = (size_t)st.seq * (size_t)st.batch;
    int32_t *x = malloc(sizeof *x * chunk), *y = malloc(sizeof *y * chunk); // [T, B] each
    tg_ex_saver saver = tg_ex_saver_make("charlm", &common, &vocab, VOCAB_NAME, 1);
    double t0 = tg_ex_now();
    pr.start_step = pr.step;
    train(&c, &m, &t, x, y, opt, &rng, &st, &common, &saver, &pr);
    bool saved = save(&saver, &m, opt, &rng, pr.step); // before sampling draws from rng
    if (pr.dev_step != pr.step) pr.dev_bpc = evaluate(&c, &m, &t.r[TG_EX_DEV], x, y);
    double test_bpc = evaluate(&c, &m, &t.r[TG_EX_TEST], x, y);
    printf("dev %.4f bits/char, test %.4f bits/char after %lld steps\n", pr.dev_bpc, test_bpc, (long long)pr.step);
    if (st.sample_len > 0) sample(&c, &m, vocab, st.prime, st.sample_len, st.temperature, &rng);
    tg_ex_result(NULL, "dev_bpc=%.4f test_bpc=%.4f first_loss=%.4f last_loss=%.4f steps=%lld seconds=%.0f", pr.dev_bpc,
                 test_bpc, pr.first_loss, pr.last_loss, (long long)(pr.step - pr.start_step), tg_ex_now() - t0);

    free(x), free(y);
    texts_free(&t);
    for (int i = 0; i < 2; i++) tg_graph_free(c.g[i]);
    tg_optim_free(opt);
    tg_params_free(m.params);
    tg_ex_vocab_free(vocab);
    return saved ? 0 : 1;
}
