// microbench.c: what the tape costs per op, on ops so small that the arithmetic is nothing.
//
//   tg-microbench [ops [reps]]    (defaults: 1000000 ops per measurement, best of 5)
//
// Each measurement runs chains of CHAIN ops, h = op(h, ...) on float32 [4] tensors that
// require a gradient, resetting the graph after each chain, and reports the best of several
// repetitions (reps) in nanoseconds per op:
//   record+forward   the op computes its value and records its node on the tape;
//   backward         tg_backward_seed over a recorded chain, divided by its length (the
//                    chain is built outside the timed region);
//   no-grad fwd      the same ops with recording off (tg_graph_set_grad_enabled false).
// The reset after each chain is inside the timed region (one per CHAIN ops).
//
//   tg-microbench --gemm [reps]   the products whose sizes decide tg_gemm's choice
//
// times float32 products of the shapes the benchmark models run, through BLIS, through the
// loops that skip its packing (graph/gemm_f32.c, gemm_small.c) and through tg_gemm, which
// chooses one of the two: the measurements behind tg_gemm's choice.
#include <blis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_cpu.h"
#include "tapegrad.h"
#include "tg_internal.h"

#define CHAIN 1000
#define SIZE 4

typedef enum { OP_ADD, OP_TANH } op_kind;
static const char *const op_names[] = {"add", "tanh"};

static int reps = 5;
static tg_tensor *x, *w; // leaves: the chain's start and the addend, both with gradients
static volatile float sink;

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

// Records (or, with recording off, just computes) a chain of CHAIN ops starting at x.
static tg_tensor *chain(tg_graph *g, op_kind op) {
    tg_tensor *h = x;
    for (int i = 0; i < CHAIN; i++) h = op == OP_ADD ? tg_add(g, h, w) : tg_tanh(g, h);
    if (!h) {
        fprintf(stderr, "tg-microbench: an op failed: %s\n", tg_graph_last_error(g));
        exit(1);
    }
    return h;
}

// Best ns/op over reps repetitions of `ops` ops of forward (recording or not).
static double bench_forward(tg_graph *g, op_kind op, long ops, bool record) {
    tg_graph_set_grad_enabled(g, record);
    double best = 1e300;
    for (int r = 0; r < reps; r++) {
        tg_graph_reset(g);
        double t0 = now_ns();
        for (long done = 0; done < ops; done += CHAIN) {
            tg_tensor *h = chain(g, op);
            sink = ((const float *)h->data)[0];
            tg_graph_reset(g);
        }
        double t = (now_ns() - t0) / (double)ops;
        if (t < best) best = t;
    }
    tg_graph_set_grad_enabled(g, true);
    return best;
}

// Best ns/op over reps repetitions of backward through `ops` recorded ops, CHAIN at a time.
static double bench_backward(tg_graph *g, op_kind op, long ops) {
    static const float seed[SIZE] = {1, 1, 1, 1};
    double best = 1e300;
    for (int r = 0; r < reps; r++) {
        double total = 0;
        for (long done = 0; done < ops; done += CHAIN) {
            tg_graph_reset(g);
            tg_tensor *h = chain(g, op);
            tg_tensor_zero_grad(x);
            tg_tensor_zero_grad(w);
            double t0 = now_ns();
            if (!tg_backward_seed(g, h, seed)) exit(1);
            total += now_ns() - t0;
        }
        sink = ((const float *)x->grad)[0];
        double t = total / (double)ops;
        if (t < best) best = t;
    }
    tg_graph_reset(g);
    return best;
}

// One product's shape: C [m, n] = op(A) op(B) with inner size k.
typedef struct {
    bool ta, tb;
    int64_t m, n, k;
    const char *what;
} gemm_shape;

// Every product shape of tg-bench's configurations that takes more than 1% of a step's
// FLOPs, and the few-row shapes around them.
static const gemm_shape gemm_shapes[] = {
    {false, false, 1, 256, 64, "lm-lstm-tiny-b1: step h @ W_hh^T"},
    {false, false, 1, 64, 256, "lm-lstm-tiny-b1: its backward, dh = dgates @ W_hh"},
    {true, false, 256, 64, 1, "an outer product (one step's weight gradient)"},
    {true, false, 256, 64, 50, "lm-lstm-tiny-b1: 50 steps' weight gradient"},
    {false, false, 50, 256, 32, "lm-lstm-tiny-b1: input projection"},
    {false, false, 50, 32, 256, "lm-lstm-tiny-b1: its backward, dx"},
    {false, false, 50, 96, 64, "lm-lstm-tiny-b1: output layer"},
    {true, false, 96, 64, 50, "lm-lstm-tiny-b1: its weight gradient"},
    {false, true, 640, 1, 256, "s2s-gru-attn: attention scores, [S*B, H] @ v^T"},
    {false, false, 16, 256, 64, "16 rows"},
    {false, false, 32, 256, 256, "lm-rnn-small: step"},
    {true, false, 256, 256, 256, "lm-rnn-small: weight gradient, 8 steps staged"},
    {false, false, 32, 512, 128, "bilstm-cls: step"},
    {false, false, 32, 128, 512, "bilstm-cls: its backward, dh"},
    {true, false, 512, 128, 256, "bilstm-cls: weight gradient, 8 steps staged"},
    {false, false, 32, 768, 256, "lm-gru-small, s2s-gru-attn: GRU step"},
    {false, false, 32, 256, 768, "lm-gru-small, s2s-gru-attn: its backward, dh"},
    {false, false, 32, 768, 320, "s2s-gru-attn: decoder step with input feeding"},
    {false, false, 32, 320, 768, "s2s-gru-attn: its backward"},
    {true, false, 768, 256, 256, "lm-gru-small: weight gradient, 8 steps staged"},
    {false, false, 32, 1024, 256, "lm-lstm-small: step"},
    {false, false, 32, 256, 1024, "lm-lstm-small: its backward, dh"},
    {true, false, 1024, 256, 256, "lm-lstm-small: weight gradient, 8 steps staged"},
    {false, true, 1024, 1024, 64, "lm-lstm-small: input projection, x @ W_ih^T"},
    {false, false, 1024, 64, 1024, "lm-lstm-small: its backward, dx"},
    {true, false, 1024, 64, 1024, "lm-lstm-small: its weight gradient"},
    {false, true, 2048, 96, 256, "lm-*-small: output layer"},
    {true, false, 96, 256, 2048, "lm-*-small: its weight gradient"},
    {false, false, 32, 4096, 1024, "32 rows, a 17 MB right operand"},
    {false, false, 64, 2048, 512, "lm-lstm-2x512: step"},
    {false, false, 64, 512, 2048, "lm-lstm-2x512: its backward, dh"},
    {true, false, 2048, 512, 64, "lm-lstm-2x512: one step's weight gradient"},
    {false, true, 1024, 2048, 512, "lm-lstm-2x512: layer 2's input projection"},
    {false, false, 1024, 512, 2048, "lm-lstm-2x512: its backward, dx"},
    {true, false, 2048, 512, 1024, "lm-lstm-2x512: its weight gradient"},
};

typedef enum { RUN_BLIS, RUN_SMALL, RUN_CHOSEN } gemm_run;

// CPU time of this thread: a product's own time, less the time the machine gave to others.
static double thread_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

// ns per call of one timed batch of products, through BLIS, the small loops or tg_gemm. One
// untimed call first: the path measured before this one leaves the caches in its own state.
// Without it a 1024 x 1024 x 64 BLIS product timed 7-8% slower as "chosen" (after the small
// loops) than as "BLIS" (after itself), on Zen 4; with it the two agree within 1.3%.
static double time_gemm_once(const gemm_shape *s, gemm_run run, const float *a, const float *b, float *c) {
    int64_t lda = s->ta ? s->m : s->k, ldb = s->tb ? s->k : s->n;
    int calls = (int)(4e6 / (double)(s->m * s->n * s->k + 1000)) + 1;
    double t0 = 0;
    for (int i = -1; i < calls; i++) {
        if (i == 0) t0 = thread_ns();
        if (run == RUN_SMALL)
            tg_gemm_small(TG_F32, s->ta, s->tb, s->m, s->n, s->k, 1.0, a, lda, b, ldb, 1.0, c, s->n);
        else if (run == RUN_BLIS)
            tg_gemm_blis(TG_F32, s->ta, s->tb, s->m, s->n, s->k, 1.0, a, lda, b, ldb, 1.0, c, s->n);
        else
            tg_gemm(TG_F32, s->ta, s->tb, s->m, s->n, s->k, 1.0, a, lda, b, ldb, 1.0, c, s->n);
    }
    sink = c[0];
    return (thread_ns() - t0) / calls;
}

// The table of --gemm: each shape through BLIS, the small loops and tg_gemm's choice, the
// three interleaved, best of reps each. The last column checks the choice: its time within
// 5% of the faster of the other two.
static int gemm_mode(void) {
    size_t floats = 1 << 22; // 4M floats (16 MiB) each: every operand above fits
    float *a = malloc(floats * sizeof(float)), *b = malloc(floats * sizeof(float)), *c = calloc(floats, sizeof(float));
    if (!a || !b || !c) return 1;
    for (size_t i = 0; i < floats; i++) a[i] = b[i] = (float)(i % 7) * 0.1f;
    tg_blas_arch(); // initialise BLIS with tapegrad's choice of kernels
    printf("%s\nBLIS %s, kernels: %s; small loops: %s; float32, one thread, best of %d, ns per product\n",
           bench_cpu_name(), tg_blas_version(), tg_blas_arch(), tg_gemm_f32_kernel(), reps);
    printf("%-3s %-3s %5s %5s %5s %10s %10s %10s %-6s %5s  %s\n", "A", "B", "m", "n", "k", "BLIS", "small",
           "chosen", "choice", "ok", "");
    int bad = 0;
    for (size_t i = 0; i < sizeof gemm_shapes / sizeof *gemm_shapes; i++) {
        const gemm_shape *s = &gemm_shapes[i];
        double best[3] = {1e300, 1e300, 1e300};
        for (int r = 0; r < reps; r++)
            for (int run = RUN_BLIS; run <= RUN_CHOSEN; run++) {
                double t = time_gemm_once(s, (gemm_run)run, a, b, c);
                if (t < best[run]) best[run] = t;
            }
        bool small = tg_gemm_choose(TG_F32, s->ta, s->tb, s->m, s->n, s->k) == TG_GEMM_SMALL;
        double faster = best[RUN_BLIS] < best[RUN_SMALL] ? best[RUN_BLIS] : best[RUN_SMALL];
        bool ok = best[RUN_CHOSEN] <= 1.05 * faster;
        bad += !ok;
        printf("%-3s %-3s %5lld %5lld %5lld %10.0f %10.0f %10.0f %-6s %5s  %s\n", s->ta ? "T" : "N", s->tb ? "T" : "N",
               (long long)s->m, (long long)s->n, (long long)s->k, best[RUN_BLIS], best[RUN_SMALL], best[RUN_CHOSEN],
               small ? "small" : "BLIS", ok ? "yes" : "NO", s->what);
    }
    printf("%d of %zu choices within 5%% of the faster path\n", (int)(sizeof gemm_shapes / sizeof *gemm_shapes) - bad,
           sizeof gemm_shapes / sizeof *gemm_shapes);
    free(a);
    free(b);
    free(c);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--gemm") == 0) {
        if (argc > 2) reps = atoi(argv[2]) > 0 ? atoi(argv[2]) : 1;
        return gemm_mode();
    }
    long ops = argc > 1 ? atol(argv[1]) : 1000000;
    if (argc > 2) reps = atoi(argv[2]);
    if (reps < 1) reps = 1;
    if (ops < CHAIN) ops = CHAIN;
    ops = ops / CHAIN * CHAIN;

    printf("tapegrad %s, BLIS %s, kernels: %s\n", TAPEGRAD_VERSION, tg_blas_version(), tg_blas_arch());
    printf("float32 [%d] tensors, chains of %d ops, %ld ops per measurement, best of %d\n", SIZE, CHAIN, ops,
           reps);

    tg_graph *g = tg_graph_new();
    x = tg_tensor_create(TG_F32, tg_shape1(SIZE), true);
    w = tg_tensor_create(TG_F32, tg_shape1(SIZE), true);
    if (!g || !x || !w) {
        fprintf(stderr, "tg-microbench: out of memory\n");
        return 1;
    }
    tg_tensor_fill(x, 0.5);
    tg_tensor_fill(w, 0.001);

    for (int op = OP_ADD; op <= OP_TANH; op++) {
        // One untimed chain first, so the arena and the tape have grown to size.
        bench_forward(g, (op_kind)op, CHAIN, true);
        printf("record+forward %-5s ns/op=%.1f\n", op_names[op], bench_forward(g, (op_kind)op, ops, true));
        printf("backward       %-5s ns/op=%.1f\n", op_names[op], bench_backward(g, (op_kind)op, ops));
        printf("no-grad fwd    %-5s ns/op=%.1f\n", op_names[op], bench_forward(g, (op_kind)op, ops, false));
    }

    tg_graph_free(g);
    tg_tensor_free(x);
    tg_tensor_free(w);
    return 0;
}
