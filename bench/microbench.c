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
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "tapegrad.h"

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

int main(int argc, char **argv) {
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
