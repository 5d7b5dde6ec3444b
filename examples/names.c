// names: a character-level Elman RNN, unrolled by hand, learns to invent first names.
//
// It trains on the bundled lists of English first names (data/names), reports bits per
// character on held-out names, and samples new ones. Everything the model does is a few
// ops per time step; back-propagation through time comes from the tape.
//
//   build/examples/names [--minutes M] [--hidden H] [--seed S] [--threads N] [--data DIR]
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "tapegrad.h"

#ifndef TG_DATA_DIR
#define TG_DATA_DIR "data"
#endif

enum { MAX_NAMES = 20000, MAX_LEN = 32, VOCAB_MAX = 64, BATCH = 32 };

typedef struct {
    char *text[MAX_NAMES];
    int n;
} name_list;

typedef struct {
    char chars[VOCAB_MAX]; // chars[0] is the boundary symbol '.', which starts and ends a name
    int size;
} vocabulary;

typedef struct {
    double minutes, lr;
    int hidden, embed, threads, samples;
    uint64_t seed;
    const char *data;
} options;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

// --- Data: read, clean, split by hash ---

// Reads one name per line from dir/file into list; returns false with a message on error.
static bool read_names(const char *dir, const char *file, name_list *list) {
    char path[1024], line[256];
    snprintf(path, sizeof path, "%s/names/%s", dir, file);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "names: cannot open %s: %m\n(the data ships in the repository under data/names; "
                        "pass --data DIR if it lives elsewhere)\n", path);
        return false;
    }
    while (fgets(line, sizeof line, f) && list->n < MAX_NAMES) {
        size_t len = strcspn(line, "\r\n");
        line[len] = 0;
        if (len == 0 || len >= MAX_LEN) continue;
        for (size_t i = 0; i < len; i++) line[i] = (char)tolower((unsigned char)line[i]);
        list->text[list->n++] = strdup(line);
    }
    fclose(f);
    return true;
}

static int vocab_index(const vocabulary *v, char c) {
    for (int i = 0; i < v->size; i++)
        if (v->chars[i] == c) return i;
    return -1;
}

// The split of a name is fixed by its hash, whatever order the lists come in: 10% test,
// 10% dev, the rest train. A name in both lists lands in one split.
static int split_of(const char *name) { return (int)(XXH64(name, strlen(name), 0) % 10); }

// --- The model ---

typedef struct {
    tg_params *params;
    tg_tensor *embedding, *w_ih, *w_hh, *b_ih, *b_hh, *w_out, *b_out;
} model;

static void model_init(model *m, int vocab, int embed, int hidden, tg_rng *rng) {
    m->params = tg_params_new();
    m->embedding = tg_params_add(m->params, "embedding.weight", TG_F32, tg_shape2(vocab, embed));
    m->w_ih = tg_params_add(m->params, "rnn.weight_ih_l0", TG_F32, tg_shape2(hidden, embed));
    m->w_hh = tg_params_add(m->params, "rnn.weight_hh_l0", TG_F32, tg_shape2(hidden, hidden));
    m->b_ih = tg_params_add(m->params, "rnn.bias_ih_l0", TG_F32, tg_shape1(hidden));
    m->b_hh = tg_params_add(m->params, "rnn.bias_hh_l0", TG_F32, tg_shape1(hidden));
    m->w_out = tg_params_add(m->params, "out.weight", TG_F32, tg_shape2(vocab, hidden));
    m->b_out = tg_params_add(m->params, "out.bias", TG_F32, tg_shape1(vocab));
    // PyTorch's initialisation: N(0, 1) for embeddings, U(-1/sqrt(fan), 1/sqrt(fan)) otherwise.
    tg_tensor_fill_normal(m->embedding, rng, 0, 1);
    double k = 1 / sqrt(hidden);
    tg_tensor *rnn[] = {m->w_ih, m->w_hh, m->b_ih, m->b_hh, m->w_out, m->b_out};
    for (int i = 0; i < 6; i++) tg_tensor_fill_uniform(rnn[i], rng, -k, k);
}

// Mean cross-entropy (nats per character) of a batch: inputs [T, B] and targets [T, B]
// (i32, -1 for padding) are the name shifted by one.
static tg_tensor *model_loss(tg_graph *g, const model *m, int T, int B, const int32_t *inputs, const int32_t *targets) {
    tg_tensor *h = tg_zeros(g, TG_F32, tg_shape2(B, m->w_hh->shape.d[0]));
    tg_tensor *logits[MAX_LEN + 1];
    for (int t = 0; t < T; t++) {
        tg_tensor *x = tg_embedding(g, m->embedding, tg_from_data(g, TG_I32, tg_shape1(B), inputs + t * B)); // [B, E]
        h = tg_tanh(g, tg_add(g, tg_linear(g, x, m->w_ih, m->b_ih), tg_linear(g, h, m->w_hh, m->b_hh)));    // [B, H]
        logits[t] = tg_linear(g, h, m->w_out, m->b_out);                                                   // [B, V]
    }
    tg_tensor *all = tg_reshape(g, tg_stack(g, T, logits, 0), tg_shape2(T * B, -1)); // [T*B, V]
    return tg_cross_entropy(g, all, tg_from_data(g, TG_I32, tg_shape1(T * B), targets), TG_REDUCE_MEAN, -1);
}

// Fills inputs and targets [T, B] for names idx[0..B-1]; returns T.
static int make_batch(const name_list *names, const int *idx, int B, const vocabulary *v, int32_t *inputs,
                      int32_t *targets) {
    int T = 0;
    for (int b = 0; b < B; b++) {
        int len = (int)strlen(names->text[idx[b]]) + 1;
        T = len > T ? len : T;
    }
    for (int b = 0; b < B; b++) {
        const char *s = names->text[idx[b]];
        int len = (int)strlen(s);
        for (int t = 0; t < T; t++) {
            inputs[t * B + b] = t == 0 ? 0 : t <= len ? vocab_index(v, s[t - 1]) : 0;
            targets[t * B + b] = t < len ? vocab_index(v, s[t]) : t == len ? 0 : -1;
        }
    }
    return T;
}

// Bits per character over a list of names, with recording off.
static double evaluate(tg_graph *g, const model *m, const name_list *names, const int *idx, int n, const vocabulary *v) {
    int32_t inputs[(MAX_LEN + 1) * BATCH], targets[(MAX_LEN + 1) * BATCH];
    double nats = 0;
    long chars = 0;
    tg_graph_set_grad_enabled(g, false);
    for (int at = 0; at + BATCH <= n; at += BATCH) {
        tg_graph_reset(g);
        int T = make_batch(names, idx + at, BATCH, v, inputs, targets);
        long count = 0;
        for (int i = 0; i < T * BATCH; i++) count += targets[i] >= 0;
        nats += tg_tensor_get(model_loss(g, m, T, BATCH, inputs, targets), 0) * (double)count;
        chars += count;
    }
    tg_graph_set_grad_enabled(g, true);
    return nats / (double)chars / log(2.0);
}

// Samples one name at temperature 0.8.
static void sample(tg_graph *g, const model *m, const vocabulary *v, tg_rng *rng, char *out) {
    tg_graph_set_grad_enabled(g, false);
    tg_graph_reset(g);
    tg_tensor *h = tg_zeros(g, TG_F32, tg_shape2(1, m->w_hh->shape.d[0]));
    int32_t prev = 0;
    int len = 0;
    while (len < MAX_LEN - 1) {
        tg_tensor *x = tg_embedding(g, m->embedding, tg_from_data(g, TG_I32, tg_shape1(1), &prev));
        h = tg_tanh(g, tg_add(g, tg_linear(g, x, m->w_ih, m->b_ih), tg_linear(g, h, m->w_hh, m->b_hh)));
        tg_tensor *p = tg_softmax(g, tg_mul_scalar(g, tg_linear(g, h, m->w_out, m->b_out), 1 / 0.8), -1);
        double u = tg_rng_uniform(rng), acc = 0;
        int c = v->size - 1;
        for (int i = 0; i < v->size; i++)
            if ((acc += tg_tensor_get(p, i)) > u) {
                c = i;
                break;
            }
        if (c == 0) break;
        out[len++] = v->chars[c];
        prev = c;
    }
    out[len] = 0;
    tg_graph_set_grad_enabled(g, true);
}

static void usage(void) {
    printf("names: a character-level RNN that learns to invent first names\n\n"
           "  --minutes M   training time budget (default 0.5)\n"
           "  --hidden H    hidden units (default 128)\n"
           "  --embed E     embedding size (default 16)\n"
           "  --lr R        Adam learning rate (default 0.005)\n"
           "  --samples N   names to sample at the end (default 10)\n"
           "  --seed S      seed for initialisation, shuffling and sampling (default 1)\n"
           "  --threads N   threads for matrix products (default 1)\n"
           "  --data DIR    data folder holding names/female.txt and names/male.txt (default %s)\n",
           TG_DATA_DIR);
}

static bool parse(int argc, char **argv, options *o) {
    *o = (options){0.5, 0.005, 128, 16, 1, 10, 1, TG_DATA_DIR};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage();
            exit(0);
        }
        if (!val) {
            fprintf(stderr, "names: %s needs a value (see --help)\n", a);
            return false;
        }
        i++;
        if (!strcmp(a, "--minutes")) o->minutes = atof(val);
        else if (!strcmp(a, "--hidden")) o->hidden = atoi(val);
        else if (!strcmp(a, "--embed")) o->embed = atoi(val);
        else if (!strcmp(a, "--lr")) o->lr = atof(val);
        else if (!strcmp(a, "--samples")) o->samples = atoi(val);
        else if (!strcmp(a, "--seed")) o->seed = strtoull(val, NULL, 10);
        else if (!strcmp(a, "--threads")) o->threads = atoi(val);
        else if (!strcmp(a, "--data")) o->data = val;
        else {
            fprintf(stderr, "names: unknown option %s (see --help)\n", a);
            return false;
        }
    }
    if (o->hidden < 1 || o->embed < 1 || o->minutes < 0 || o->lr <= 0) {
        fprintf(stderr, "names: sizes, minutes and the learning rate must be positive\n");
        return false;
    }
    return true;
}

// The distinct names into split[0..2] (train, dev, test), and their characters into v.
static void split_names(const name_list *names, vocabulary *v, int split[3][MAX_NAMES], int n_split[3]) {
    for (int i = 0; i < names->n; i++) {
        bool duplicate = false;
        for (int j = 0; j < i && !duplicate; j++) duplicate = !strcmp(names->text[i], names->text[j]);
        if (duplicate) continue;
        for (const char *c = names->text[i]; *c; c++)
            if (vocab_index(v, *c) < 0 && v->size < VOCAB_MAX) v->chars[v->size++] = *c;
        int s = split_of(names->text[i]), which = s == 0 ? 2 : s == 1 ? 1 : 0;
        split[which][n_split[which]++] = i;
    }
}

typedef struct {
    int steps;
    double first_loss, last_loss; // nats per character
} training;

// Trains on the names train[0..n) until the budget of o->minutes is spent, shuffling them
// each epoch, and prints each epoch's train and dev bits per character.
static training train(tg_graph *g, model *m, tg_optim *opt, const name_list *names, int *train_idx, int n,
                      const int *dev_idx, int n_dev, const vocabulary *v, const options *o, tg_rng *rng) {
    int32_t inputs[(MAX_LEN + 1) * BATCH], targets[(MAX_LEN + 1) * BATCH];
    double start = now(), budget = o->minutes * 60;
    training tr = {0, 0, 0};
    for (int epoch = 1; now() - start < budget; epoch++) {
        for (int i = n - 1; i > 0; i--) { // shuffle the training names
            int j = (int)tg_rng_below(rng, (uint64_t)i + 1), tmp = train_idx[i];
            train_idx[i] = train_idx[j];
            train_idx[j] = tmp;
        }
        double epoch_loss = 0;
        int batches = 0;
        for (int at = 0; at + BATCH <= n && now() - start < budget; at += BATCH) {
            tg_graph_reset(g);
            int T = make_batch(names, train_idx + at, BATCH, v, inputs, targets);
            tg_tensor *loss = model_loss(g, m, T, BATCH, inputs, targets);
            tg_optim_zero_grad(opt);
            tg_backward(g, loss);
            tg_clip_grad_norm(m->params, 5.0);
            tg_optim_step(opt);
            tr.last_loss = tg_tensor_get(loss, 0);
            if (tr.steps++ == 0) tr.first_loss = tr.last_loss;
            epoch_loss += tr.last_loss;
            batches++;
        }
        printf("epoch %2d  train %.3f bits/char  dev %.3f bits/char  (%.0f s)\n", epoch,
               epoch_loss / (batches ? batches : 1) / log(2.0), evaluate(g, m, names, dev_idx, n_dev, v),
               now() - start);
        fflush(stdout);
    }
    return tr;
}

int main(int argc, char **argv) {
    options o;
    if (!parse(argc, argv, &o)) return 2;
    tg_set_num_threads(o.threads);

    static name_list names;
    if (!read_names(o.data, "female.txt", &names) || !read_names(o.data, "male.txt", &names)) return 1;
    vocabulary v = {{'.'}, 1};
    static int split[3][MAX_NAMES], n_split[3]; // train, dev, test
    split_names(&names, &v, split, n_split);
    printf("names: %d train, %d dev, %d test names, %d symbols; BLIS kernels: %s\n", n_split[0], n_split[1],
           n_split[2], v.size, tg_blas_arch());

    tg_rng rng;
    tg_rng_seed(&rng, o.seed);
    model m;
    model_init(&m, v.size, o.embed, o.hidden, &rng);
    tg_optim *opt = tg_optim_adam(m.params, (tg_adam_opts){.lr = o.lr});
    tg_graph *g = tg_graph_new();
    training tr = train(g, &m, opt, &names, split[0], n_split[0], split[1], n_split[1], &v, &o, &rng);
    double test_bpc = evaluate(g, &m, &names, split[2], n_split[2], &v);
    printf("\nnew names (temperature 0.8; * = not in the training lists):\n");
    for (int i = 0; i < o.samples; i++) {
        char s[MAX_LEN];
        sample(g, &m, &v, &rng, s);
        bool known = false;
        for (int j = 0; j < names.n && !known; j++) known = !strcmp(names.text[j], s);
        printf("  %s%s\n", s, known ? "" : " *");
    }
    printf("RESULT test_bpc=%.4f first_loss=%.4f last_loss=%.4f steps=%d\n", test_bpc, tr.first_loss / log(2.0),
           tr.last_loss / log(2.0), tr.steps);

    tg_graph_free(g);
    tg_params_free(m.params);
    tg_optim_free(opt);
    for (int i = 0; i < names.n; i++) free(names.text[i]);
    return 0;
}
