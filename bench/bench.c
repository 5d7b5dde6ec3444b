// tg-bench: training steps (forward, backward, Adam) of the models in
// ../shared/anchors/torch_bench.py, at the same sizes, printing the same line format, so
// that ours and PyTorch's can be compared side by side (bench/compare.sh runs both).
//
//   tg-bench CONFIG... [--threads N] [--roofline]
//   mpirun -np N tg-bench --mpi CONFIG... [--threads T]   (bench_mpi.h; --grad-sizes for tg-mpibench)
//   tg-bench --cell lstm|gru|rnn|peephole_lstm|layer_norm_lstm|indrnn|sru --layers L --hidden H --embed E --vocab V --seq T --batch B
//            [--bidirectional] [--threads N] [--roofline]
//   --composite: LSTM and GRU steps, and s2s-gru-attn's attention, op by op instead of the
//   fused ops.
//   --workers N: data-parallel steps over N worker threads (tg_parallel.h), the global batch
//   split between them; tokens/s is the whole job's. --shards S splits it in S shards that
//   the workers claim as they come free (default: one per worker). --merge-alone runs a step
//   the calling thread runs alone (the cores busy) as one shard (tg_data_parallel_opts).
//   --seconds S: time at least S seconds of steps (default 2, as torch_bench.py).
//
// --roofline adds the step's matrix-product FLOPs (counted as BLIS runs them, backward
// included), the sgemm rate BLIS reaches on a 1024^3 product in this process, and the
// fraction of that rate the whole step achieves; also the peak resident memory.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench_cpu.h"
#include "tapegrad.h"
#include "tg_parallel.h"

typedef enum { LM, BI_CLS, S2S } model_kind;

typedef struct {
    const char *name;
    model_kind kind;
    const tg_cell_type *cell;
    int vocab, embed, hidden, layers, seq, batch;
    bool bidirectional;
    int src_seq; // s2s only: source length
} config;

static const config CONFIGS[] = {
    {"lm-lstm-small", LM, &tg_cell_lstm, 96, 64, 256, 1, 64, 32, false, 0},
    // PyTorch's composite LSTMCell loop; ours is always composite, so it is the same model.
    {"lm-lstm-cells", LM, &tg_cell_lstm, 96, 64, 256, 1, 64, 32, false, 0},
    {"lm-gru-small", LM, &tg_cell_gru, 96, 64, 256, 1, 64, 32, false, 0},
    {"lm-rnn-small", LM, &tg_cell_rnn_tanh, 96, 64, 256, 1, 64, 32, false, 0},
    {"lm-lstm-2x512", LM, &tg_cell_lstm, 96, 128, 512, 2, 100, 64, false, 0},
    {"lm-lstm-tiny-b1", LM, &tg_cell_lstm, 96, 32, 64, 1, 50, 1, false, 0},
    {"bilstm-cls", BI_CLS, &tg_cell_lstm, 5000, 64, 128, 1, 128, 32, true, 0},
    {"s2s-gru-attn", S2S, &tg_cell_gru, 64, 64, 256, 1, 20, 32, false, 20},
};

typedef struct {
    const config *cfg;
    tg_params *p;
    tg_rnn rnn;                       // the LM's or classifier's RNN, or the s2s encoder
    tg_tensor *emb, *out_w, *out_b;   // [V, E]; [V or C, H or 2H]; [V or C]
    tg_cell dec;                      // s2s: decoder GRU cell over [E + H]
    tg_tensor *temb;                  // s2s: target embedding
    tg_attention attn;                // s2s: Bahdanau attention, W.weight, U.weight, U.bias, v.weight
    int32_t *src, *in, *out;          // token ids: [S or T, B], [T, B], [T, B] (or [B] targets)
    tg_optim *opt;
} model;

static tg_tensor *param(model *m, const char *name, tg_shape shape, tg_rng *rng, double k) {
    tg_tensor *t = tg_params_add(m->p, name, TG_F32, shape);
    tg_tensor_fill_uniform(t, rng, -k, k);
    return t;
}

static void fill_ids(int32_t *ids, int n, int vocab, tg_rng *rng) {
    for (int i = 0; i < n; i++) ids[i] = (int32_t)tg_rng_below(rng, (uint64_t)vocab);
}

// --composite: the op-by-op LSTM and GRU steps and attention instead of the fused ones, to
// measure the fused path against the composite one in one run.
static bool composite;

// The cells --cell takes: the built-in ones and the published ones of models/cells_published.c.
#define BENCH_CELLS "lstm|gru|rnn|peephole_lstm|layer_norm_lstm|indrnn|sru"
static const tg_cell_type *bench_cell(const char *name) {
    static const struct {
        const char *name;
        const tg_cell_type *type;
    } cells[] = {{"lstm", &tg_cell_lstm},          {"gru", &tg_cell_gru},
                 {"rnn", &tg_cell_rnn_tanh},       {"peephole_lstm", &tg_cell_peephole_lstm},
                 {"layer_norm_lstm", &tg_cell_layer_norm_lstm}, {"indrnn", &tg_cell_indrnn},
                 {"sru", &tg_cell_sru}};
    for (size_t i = 0; i < sizeof cells / sizeof *cells; i++)
        if (!strcmp(name, cells[i].name)) return cells[i].type;
    return NULL;
}

static const tg_cell_type *cell_for(const tg_cell_type *cell) {
    if (!composite) return cell;
    return cell == &tg_cell_lstm ? &tg_cell_lstm_composite : cell == &tg_cell_gru ? &tg_cell_gru_composite : cell;
}

static void model_init(model *m, const config *c) {
    memset(m, 0, sizeof *m);
    m->cfg = c;
    m->p = tg_params_new();
    tg_rng rng;
    tg_rng_seed(&rng, 0);
    int V = c->vocab, E = c->embed, H = c->hidden, T = c->seq, B = c->batch, D = c->bidirectional ? 2 : 1;
    m->emb = param(m, "emb.weight", tg_shape2(V, E), &rng, 1.0);
    tg_rnn_config rc = {.cell = cell_for(c->cell), .input_size = E, .hidden_size = H, .num_layers = c->layers,
                        .bidirectional = c->bidirectional};
    tg_rnn_init(&m->rnn, &rc, m->p, "rnn.", &rng);
    int classes = c->kind == BI_CLS ? 2 : V, out_in = c->kind == S2S ? 2 * H : D * H;
    m->out_w = param(m, "out.weight", tg_shape2(classes, out_in), &rng, 1 / sqrt(out_in));
    m->out_b = param(m, "out.bias", tg_shape1(classes), &rng, 1 / sqrt(out_in));
    if (c->kind == S2S) {
        m->temb = param(m, "temb.weight", tg_shape2(V, E), &rng, 1.0);
        tg_cell_init(&m->dec, cell_for(&tg_cell_gru), &(tg_cell_config){.input_size = E + H, .hidden_size = H}, m->p, "dec.",
                     "", &rng);
        tg_attention_config ac = {&tg_attention_bahdanau, H, H, H, TG_F32};
        tg_attention_init(&m->attn, &ac, m->p, "attn.", &rng);
    }
    int S = c->kind == S2S ? c->src_seq : T;
    m->src = malloc(sizeof(int32_t) * (size_t)(S * B));
    m->in = malloc(sizeof(int32_t) * (size_t)(T * B));
    m->out = malloc(sizeof(int32_t) * (size_t)(T * B));
    fill_ids(m->src, S * B, V, &rng);
    fill_ids(m->in, T * B, V, &rng);
    fill_ids(m->out, T * B, c->kind == BI_CLS ? 2 : V, &rng);
    m->opt = tg_optim_adam(m->p, (tg_adam_opts){.lr = 1e-3});
}

static void model_free(model *m) {
    tg_optim_free(m->opt);
    tg_params_free(m->p);
    free(m->src);
    free(m->in);
    free(m->out);
}

// Columns [begin, begin + B) of ids [rows, batch], as a tensor [rows, B] in g: a shard's share.
static tg_tensor *columns(tg_graph *g, const int32_t *ids, int rows, int batch, int begin, int B) {
    tg_tensor *t = tg_zeros(g, TG_I32, tg_shape2(rows, B));
    for (int r = 0; r < rows; r++)
        memcpy((int32_t *)t->data + (size_t)r * B, ids + (size_t)r * batch + begin, sizeof(int32_t) * (size_t)B);
    return t;
}

// The loss of examples [begin, begin + B) of the batch (all of it, or a worker's shard), as
// torch_bench.py's models compute it: the mean over the examples' tokens.
static tg_tensor *model_loss(tg_graph *g, model *m, int begin, int B) {
    const config *c = m->cfg;
    int T = c->seq, H = c->hidden;
    tg_rnn_result r;
    if (c->kind == LM) {
        tg_tensor *x = tg_embedding(g, m->emb, columns(g, m->in, T, c->batch, begin, B)); // [T, B, E]
        tg_rnn_forward(g, &m->rnn, x, NULL, NULL, NULL, &r);
        tg_tensor *logits = tg_linear(g, tg_reshape(g, r.output, tg_shape2(T * B, -1)), m->out_w, m->out_b);
        tg_tensor *y = tg_reshape(g, columns(g, m->out, T, c->batch, begin, B), tg_shape1(T * B));
        return tg_cross_entropy(g, logits, y, TG_REDUCE_MEAN, -100);
    }
    if (c->kind == BI_CLS) {
        tg_tensor *x = tg_embedding(g, m->emb, columns(g, m->src, T, c->batch, begin, B)); // [T, B, E]
        tg_rnn_forward(g, &m->rnn, x, NULL, NULL, NULL, &r);
        tg_tensor *logits = tg_linear(g, tg_mean_axis(g, r.output, 0, false), m->out_w, m->out_b); // [B, 2]
        tg_tensor *y = tg_reshape(g, columns(g, m->out, 1, c->batch, begin, B), tg_shape1(B));
        return tg_cross_entropy(g, logits, y, TG_REDUCE_MEAN, -100);
    }
    // s2s: GRU encoder; GRU cell decoder over [embedding; context] with additive attention.
    int S = c->src_seq;
    tg_tensor *src = tg_embedding(g, m->emb, columns(g, m->src, S, c->batch, begin, B)); // [S, B, E]
    tg_rnn_forward(g, &m->rnn, src, NULL, NULL, NULL, &r);
    tg_tensor *enc = r.output;                                                         // [S, B, H]
    tg_tensor *h = tg_reshape(g, r.state[0], tg_shape2(B, H));                         // [B, H]
    // Attention through the library's module (tg_attention_bahdanau, whose score is one fused
    // op); with --composite, the same arithmetic op by op, as PyTorch's model writes it.
    tg_tensor *const *w = m->attn.param;                                               // W, U, U.bias, v
    tg_attention_memory mem;
    tg_tensor *keys = composite ? tg_linear(g, enc, w[1], w[2]) : NULL;                // [S, B, H]
    if (!composite) tg_attention_prepare(g, &m->attn, enc, NULL, &mem);
    tg_tensor *temb = tg_embedding(g, m->temb, columns(g, m->in, T, c->batch, begin, B)); // [T, B, E]
    tg_tensor **outs = tg_graph_alloc(g, sizeof(tg_tensor *) * (size_t)T);
    for (int t = 0; t < T; t++) {
        tg_tensor *ctx; // [B, H]
        if (composite) {
            tg_tensor *q = tg_reshape(g, tg_linear(g, h, w[0], NULL), tg_shape3(1, B, H));       // [1, B, H]
            tg_tensor *score = tg_linear(g, tg_tanh(g, tg_add(g, keys, q)), w[3], NULL);          // [S, B, 1]
            ctx = tg_sum_axis(g, tg_mul(g, tg_softmax(g, score, 0), enc), 0, false);
        } else {
            tg_attention_forward(g, &mem, h, &ctx, NULL);
        }
        tg_tensor *e = tg_reshape(g, tg_slice(g, temb, 0, t, 1), tg_shape2(B, -1));          // [B, E]
        tg_tensor *in[2] = {e, ctx}, *next;
        tg_tensor *xt = tg_linear(g, tg_concat(g, 2, in, 1), tg_cell_param(&m->dec, "weight_ih"),
                                  tg_cell_param(&m->dec, "bias_ih")); // [B, 3H]
        m->dec.type->step(g, &m->dec, xt, &h, &next);
        h = next;
        tg_tensor *hc[2] = {h, ctx};
        outs[t] = tg_concat(g, 2, hc, 1);                                                    // [B, 2H]
    }
    tg_tensor *logits = tg_linear(g, tg_reshape(g, tg_stack(g, T, outs, 0), tg_shape2(T * B, -1)), m->out_w, m->out_b);
    tg_tensor *y = tg_reshape(g, columns(g, m->out, T, c->batch, begin, B), tg_shape1(T * B));
    return tg_cross_entropy(g, logits, y, TG_REDUCE_MEAN, -100);
}

// A worker's shard of the batch (a tg_shard_loss_fn): every example has as many tokens, so
// the trainer's weights (count / batch) make the shards' sum the batch's mean.
static tg_tensor *shard_loss(tg_graph *g, const tg_shard *s, tg_rng *rng, void *user) {
    (void)rng; // no dropout
    return model_loss(g, user, (int)s->begin, (int)s->count);
}

// One step on one graph g, or on the workers of dp when it is not NULL.
static void train_step(tg_graph *g, tg_data_parallel *dp, model *m) {
    tg_optim_zero_grad(m->opt);
    bool ok;
    if (dp) {
        ok = !isnan(tg_data_parallel_backward(dp, m->cfg->batch, shard_loss, m));
    } else {
        tg_graph_reset(g);
        tg_tensor *loss = model_loss(g, m, 0, m->cfg->batch);
        ok = loss && tg_backward(g, loss);
    }
    if (!ok) {
        const char *why = dp ? "see the worker's message above" : tg_graph_last_error(g);
        fprintf(stderr, "tg-bench: %s failed: %s\n", m->cfg->name, why);
        exit(1);
    }
    tg_optim_step(m->opt);
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

// BLIS's single-call sgemm rate on 1024^3, in FLOP/s, at the current thread count.
static double gemm_rate(void) {
    enum { N = 1024 };
    float *a = calloc(N * N, sizeof(float)), *b = calloc(N * N, sizeof(float)), *c = calloc(N * N, sizeof(float));
    tg_graph *g = tg_graph_new();
    tg_tensor *ta = tg_from_data(g, TG_F32, tg_shape2(N, N), a), *tb = tg_from_data(g, TG_F32, tg_shape2(N, N), b);
    tg_matmul(g, ta, tb); // warm-up
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now();
        tg_matmul(g, ta, tb);
        double rate = 2.0 * N * N * N / (now() - t0);
        best = rate > best ? rate : best;
    }
    tg_graph_free(g);
    free(a), free(b), free(c);
    return best;
}

// Times steps like torch_bench.py's bench(): 2 warm-up steps, then at least 3 steps and
// min_seconds (2 s unless --seconds asks for more).
static double min_seconds = 2.0;
static bool merge_alone; // --merge-alone: tg_data_parallel_opts.merge_alone
static void run(const config *c, int threads, int workers, int shards, bool roofline, double rate) {
    model m;
    model_init(&m, c);
    tg_graph *g = tg_graph_new();
    tg_data_parallel *dp = NULL;
    tg_data_parallel_opts opts = {.workers = workers, .seed = 0, .shards = shards, .merge_alone = merge_alone};
    if ((workers > 1 || shards > 1) && !(dp = tg_data_parallel_new(m.p, opts))) {
        fprintf(stderr, "tg-bench: cannot start %d workers\n", workers);
        exit(1);
    }
    for (int i = 0; i < 2; i++) train_step(g, dp, &m);
    uint64_t flops0 = tg_blas_flop_count();
    train_step(g, dp, &m);
    uint64_t flops = tg_blas_flop_count() - flops0;
    double t0 = now(), t;
    int n = 0;
    do {
        train_step(g, dp, &m);
        n++;
        t = now() - t0;
    } while (n < 3 || t < min_seconds);
    double s = t / n;
    int toks = c->seq * c->batch;
    printf("%-16s threads=%d", c->name, threads);
    if (dp) printf(" workers=%d shards=%d", workers, tg_data_parallel_shards(dp)); // one graph's line stays as torch_bench.py's
    printf(" %9.2f ms/step %10.0f tokens/s", s * 1e3, toks / s);
    if (dp) {
        tg_data_parallel_stats st = tg_data_parallel_get_stats(dp);
        printf("  steps_together=%lld steps_alone=%lld", (long long)st.steps_together, (long long)st.steps_alone);
        if (merge_alone) printf(" merged=%lld", (long long)st.steps_merged);
        printf(" cores=%.2f", st.last_cores);
    }
    if (roofline) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        printf("  gemm_gflop=%.2f gemm_rate=%.1f roofline=%.2f peak_rss_mb=%.0f", flops * 1e-9, rate * 1e-9,
               flops / s / rate, ru.ru_maxrss / 1024.0);
    }
    printf("\n");
    fflush(stdout);
    tg_data_parallel_free(dp);
    tg_graph_free(g);
    model_free(&m);
}

#include "bench_mpi.h" // tg-bench --mpi: run_mpi, bench_mpi_main

static void usage(void) {
    printf("usage: tg-bench CONFIG... [--threads N] [--workers N [--shards S] [--merge-alone]] [--roofline]\n"
           "                [--seconds S]\n"
           "       mpirun -np N tg-bench --mpi CONFIG... [--threads T]    tg-bench --grad-sizes [CONFIG...]\n"
           "       tg-bench --cell " BENCH_CELLS " --layers L --hidden H --embed E --vocab V --seq T --batch B\n"
           "                [--bidirectional] [--threads N] [--workers N [--shards S]] [--roofline]\nconfigs:");
    for (size_t i = 0; i < sizeof CONFIGS / sizeof *CONFIGS; i++) printf(" %s", CONFIGS[i].name);
    printf("\n");
}

int main(int argc, char **argv) {
    int threads = 1, workers = 1, shards = 0;
    bool roofline = false, custom = false, mpi = false, grad_sizes = false;
    config user = {"lm-custom", LM, &tg_cell_lstm, 96, 64, 256, 1, 64, 32, false, 0};
    const config *chosen[16];
    int n_chosen = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int *size = !strcmp(a, "--layers") ? &user.layers : !strcmp(a, "--hidden") ? &user.hidden
                  : !strcmp(a, "--embed")  ? &user.embed  : !strcmp(a, "--vocab")  ? &user.vocab
                  : !strcmp(a, "--seq")    ? &user.seq    : !strcmp(a, "--batch")  ? &user.batch : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage();
            return 0;
        } else if (!strcmp(a, "--roofline")) {
            roofline = true;
        } else if (!strcmp(a, "--mpi")) {
            mpi = true;
        } else if (!strcmp(a, "--grad-sizes")) {
            grad_sizes = true;
        } else if (!strcmp(a, "--merge-alone")) {
            merge_alone = true;
        } else if (!strcmp(a, "--composite")) {
            composite = true;
        } else if (!strcmp(a, "--bidirectional")) {
            user.bidirectional = custom = true;
        } else if (!strcmp(a, "--threads") && v) {
            threads = atoi(argv[++i]);
        } else if (!strcmp(a, "--workers") && v) {
            workers = atoi(argv[++i]);
        } else if (!strcmp(a, "--seconds") && v) {
            min_seconds = atof(argv[++i]);
        } else if (!strcmp(a, "--shards") && v) {
            shards = atoi(argv[++i]);
        } else if (size && v) {
            *size = atoi(argv[++i]);
            custom = true;
        } else if (!strcmp(a, "--cell") && v) {
            i++;
            user.cell = bench_cell(v);
            custom = true;
            if (!user.cell) return fprintf(stderr, "tg-bench: unknown cell %s (%s)\n", v, BENCH_CELLS), 2;
        } else {
            const config *c = NULL;
            for (size_t k = 0; k < sizeof CONFIGS / sizeof *CONFIGS; k++)
                if (!strcmp(a, CONFIGS[k].name)) c = &CONFIGS[k];
            if (!c || n_chosen == 16) {
                fprintf(stderr, "tg-bench: unknown argument %s\n", a);
                usage();
                return 2;
            }
            chosen[n_chosen++] = c;
        }
    }
    if (user.layers < 1 || user.hidden < 1 || user.embed < 1 || user.vocab < 1 || user.seq < 1 || user.batch < 1 ||
        threads < 1 || workers < 1 || workers > 1024 || shards < 0 || shards > 65536)
        return fprintf(stderr, "tg-bench: sizes and threads must be positive, workers 1 to 1024, shards 0 to 65536\n"), 2;
    if (custom) chosen[n_chosen++] = &user;
    if (n_chosen == 0)
        for (size_t k = 0; k < sizeof CONFIGS / sizeof *CONFIGS; k++) chosen[n_chosen++] = &CONFIGS[k];
    if (grad_sizes) return bench_grad_sizes(chosen, n_chosen);
    if (mpi && workers > 1) return fprintf(stderr, "tg-bench: --mpi runs one worker per rank; drop --workers\n"), 2;
    if (mpi) return bench_mpi_main(chosen, n_chosen, threads);
    tg_set_num_threads(threads);
    double rate = roofline ? gemm_rate() : 0;
    if (roofline)
        printf("# %s; BLIS %s, kernels %s, sgemm 1024^3: %.1f GFLOP/s\n", bench_cpu_name(), tg_blas_version(), tg_blas_arch(),
               rate * 1e-9);
    for (int i = 0; i < n_chosen; i++) run(chosen[i], threads, workers, shards, roofline, rate);
    return 0;
}
