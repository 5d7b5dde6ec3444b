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
//   tg-microbench --gemm          the products whose sizes decide tg_gemm's choice
//
// times float32 products of shapes the benchmark models run, through BLIS and through the
// small-matrix loops (graph/gemm_small.c): the measurements behind tg_gemm's choice.
#include <blis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

static const gemm_shape gemm_shapes[] = {
    {false, false, 1, 256, 64, "batch-1 step h @ W_hh^T (lm-lstm-tiny-b1)"},
    {false, false, 1, 64, 256, "its backward, dh = dgates @ W_hh"},
    {true, false, 256, 64, 1, "its weight gradient, one step (an outer product)"},
    {true, false, 256, 64, 50, "the same, all 50 steps in one product"},
    {false, true, 640, 1, 256, "attention scores, [S*B, H] @ v^T (s2s-gru-attn)"},
    {false, false, 50, 256, 32, "input projection, 50 steps x batch 1 (lm-lstm-tiny-b1)"},
    {false, false, 50, 32, 256, "its backward, dx"},
    {false, false, 50, 96, 64, "output layer, 50 rows"},
    {true, false, 96, 64, 50, "its weight gradient"},
    {false, false, 16, 256, 64, "16 rows"},
    {false, false, 64, 256, 256, "64 rows"},
    {false, false, 32, 768, 256, "batch-32 GRU step (s2s-gru-attn)"},
    {false, false, 32, 1024, 256, "batch-32 LSTM step (lm-lstm-small)"},
    {false, false, 32, 256, 1024, "its backward, dh"},
    {true, false, 1024, 256, 256, "its weight gradient, 8 steps staged"},
    {false, false, 32, 2048, 512, "32 rows, a 4 MB right operand"},
    {false, false, 32, 4096, 512, "32 rows, an 8 MB right operand"},
    {false, false, 32, 4096, 1024, "32 rows, a 17 MB right operand (BLIS from here)"},
    {false, false, 64, 2048, 512, "batch-64 LSTM step (lm-lstm-2x512)"},
    {false, false, 64, 512, 2048, "its backward, dh"},
};

// Best ns per call over reps x calls products through tg_gemm_small (small) or BLIS.
static double time_gemm(const gemm_shape *s, bool small, const float *a, const float *b, float *c) {
    int64_t lda = s->ta ? s->m : s->k, ldb = s->tb ? s->k : s->n;
    int calls = (int)(2e7 / (double)(s->m * s->n * s->k + 1000)) + 1;
    float one = 1;
    double best = 1e300;
    for (int r = 0; r < reps; r++) {
        double t0 = now_ns();
        for (int i = 0; i < calls; i++)
            if (small)
                tg_gemm_small(TG_F32, s->ta, s->tb, s->m, s->n, s->k, 1.0, a, lda, b, ldb, 1.0, c, s->n);
            else
                bli_sgemm(s->ta ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, s->tb ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, s->m,
                          s->n, s->k, &one, (float *)a, lda, 1, (float *)b, ldb, 1, &one, c, s->n, 1);
        double t = (now_ns() - t0) / calls;
        if (t < best) best = t;
    }
    sink = c[0];
    return best;
}

// The table of --gemm: each shape through BLIS and through the small-matrix loops.
static int gemm_mode(void) {
    size_t bytes = 1 << 22; // 4M floats (16 MiB) each: every operand above fits
    float *a = malloc(bytes * sizeof(float)), *b = malloc(bytes * sizeof(float)), *c = calloc(bytes, sizeof(float));
    if (!a || !b || !c) return 1;
    for (size_t i = 0; i < bytes; i++) a[i] = b[i] = (float)(i % 7) * 0.1f;
    tg_blas_arch(); // initialise BLIS with tapegrad's choice of kernels
    printf("BLIS %s, kernels: %s; float32, best of %d, ns per product\n", tg_blas_version(), tg_blas_arch(), reps);
    printf("%-5s %-5s %5s %5s %5s %10s %10s  %s\n", "opA", "opB", "m", "n", "k", "BLIS", "small", "");
    for (size_t i = 0; i < sizeof gemm_shapes / sizeof *gemm_shapes; i++) {
        const gemm_shape *s = &gemm_shapes[i];
        double blis = time_gemm(s, false, a, b, c), small = time_gemm(s, true, a, b, c);
        printf("%-5s %-5s %5lld %5lld %5lld %10.0f %10.0f  %s\n", s->ta ? "A^T" : "A", s->tb ? "B^T" : "B",
               (long long)s->m, (long long)s->n, (long long)s->k, blis, small, s->what);
    }
    free(a);
    free(b);
    free(c);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--gemm") == 0) return gemm_mode();
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
