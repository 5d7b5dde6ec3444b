// tg-soak: trains a small LSTM language model for many steps and compares resident memory
// after warm-up with the end of the run: a training loop that leaks, or whose arena keeps
// growing, shows up here as growth. scripts/soak.sh builds and runs it.
//
//   tg-soak [--steps N] [--warmup N] [--max-growth PCT] [--threads N]
//
// Each step is a batch of 8 sequences of a random length from 8 to 32 (so graphs change shape
// from step to step), half of the steps with per-sequence lengths (packed, padded targets
// ignored), forward, backward, gradient clipping and Adam; the first two steps are of the
// longest length. Every 50 steps a no-grad evaluation and a checkpoint saved and loaded back.
// Defaults: 20000 steps, memory first measured after step 100.
//
// Memory: Rss from /proc/self/smaps_rollup (exact; VmRSS, also shown, is a batched counter
// that can be off by a few hundred kB), read after malloc_trim, and the bytes malloc has
// handed out and not had back (mallinfo2), which only a leak grows. Prints them every 2000
// steps, then
//   RESULT steps=... rss_start_kb=... rss_end_kb=... growth_pct=... vmrss_...=... heap_...=...
// and exits 1 when Rss grew by max-growth percent (default 1) or more.
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tapegrad.h"
#include "tg_safetensors.h"

enum { V = 48, E = 16, H = 64, LAYERS = 2, B = 8, T_MIN = 8, T_MAX = 32 };

typedef struct {
    tg_params *p;
    tg_tensor *emb, *out_w, *out_b; // [V, E], [V, H], [V]
    tg_rnn rnn;
    tg_optim *opt;
} model;

// The value of "key" (e.g. "VmRSS:") in a /proc file of kB figures; -1 when unreadable.
static long proc_kb(const char *path, const char *key) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[256];
    long kb = -1;
    size_t n = strlen(key);
    while (kb < 0 && fgets(line, sizeof line, f))
        if (!strncmp(line, key, n)) kb = atol(line + n);
    fclose(f);
    return kb;
}

// Resident memory in kB, exact: the kernel counts the pages mapped now (smaps_rollup walks
// the page tables). VmRSS in /proc/self/status comes from a batched counter that can be off
// by tens of pages per CPU, too coarse to see 1% of a 16 MB process; both are reported.
// Before each reading, malloc_trim hands free heap pages back to the system, so the figure
// does not swing by whether glibc happens to be keeping the last checkpoint's freed buffers
// (about 0.2 MB either way here); live memory, leaked or fragmented, stays resident.
static long rss_kb(void) {
    malloc_trim(0);
    long kb = proc_kb("/proc/self/smaps_rollup", "Rss:");
    return kb >= 0 ? kb : proc_kb("/proc/self/status", "VmRSS:");
}

static long vmrss_kb(void) {
    malloc_trim(0);
    return proc_kb("/proc/self/status", "VmRSS:");
}

// Bytes malloc has handed out and not had back, in kB: a leak grows this, while VmRSS also
// moves with fragmentation and pages touched for the first time.
static long heap_kb(void) { return (long)(mallinfo2().uordblks / 1024); }

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void model_init(model *m, tg_rng *rng) {
    m->p = tg_params_new();
    m->emb = tg_params_add(m->p, "emb.weight", TG_F32, tg_shape2(V, E));
    tg_tensor_fill_uniform(m->emb, rng, -1, 1);
    tg_rnn_config rc = {.cell = &tg_cell_lstm, .input_size = E, .hidden_size = H, .num_layers = LAYERS, .dropout = 0.1};
    if (!tg_rnn_init(&m->rnn, &rc, m->p, "rnn.", rng)) exit(1);
    m->out_w = tg_params_add(m->p, "out.weight", TG_F32, tg_shape2(V, H));
    m->out_b = tg_params_add(m->p, "out.bias", TG_F32, tg_shape1(V));
    tg_tensor_fill_uniform(m->out_w, rng, -0.125, 0.125);
    tg_tensor_fill_uniform(m->out_b, rng, -0.125, 0.125);
    m->opt = tg_optim_adam(m->p, (tg_adam_opts){.lr = 3e-3});
}

// A batch of text from a noisy cycle through the vocabulary, which the model can learn:
// in [T, B] and the next tokens out [T, B], -100 past each row's length.
static void make_batch(tg_rng *rng, int T, bool packed, int32_t *in, int32_t *out, int32_t *lengths) {
    for (int b = 0; b < B; b++) {
        lengths[b] = packed ? (int32_t)(T_MIN / 2 + (int)tg_rng_below(rng, (uint64_t)(T - T_MIN / 2 + 1))) : T;
        int32_t tok = (int32_t)tg_rng_below(rng, V);
        for (int t = 0; t <= T; t++) {
            int32_t next = (tok * 5 + 1 + (tg_rng_below(rng, 8) == 0 ? (int32_t)tg_rng_below(rng, V) : 0)) % V;
            if (t < T) in[t * B + b] = tok;
            if (t > 0) out[(t - 1) * B + b] = t - 1 < lengths[b] ? tok : -100;
            tok = next;
        }
    }
}

// The mean cross-entropy of one batch, or NULL (with the graph's error) on failure.
static tg_tensor *model_loss(tg_graph *g, model *m, tg_rng *rng, int T, bool packed) {
    int32_t *in = tg_graph_alloc(g, sizeof(int32_t) * T * B), *out = tg_graph_alloc(g, sizeof(int32_t) * T * B);
    int32_t *len = tg_graph_alloc(g, sizeof(int32_t) * B);
    make_batch(rng, T, packed, in, out, len);
    tg_tensor *x = tg_embedding(g, m->emb, tg_from_data(g, TG_I32, tg_shape2(T, B), in)); // [T, B, E]
    tg_tensor *lengths = packed ? tg_from_data(g, TG_I32, tg_shape1(B), len) : NULL;      // [B]
    tg_rnn_result r;
    if (!tg_rnn_forward(g, &m->rnn, x, lengths, NULL, rng, &r)) return NULL;
    tg_tensor *logits = tg_linear(g, tg_reshape(g, r.output, tg_shape2(T * B, H)), m->out_w, m->out_b); // [T*B, V]
    return tg_cross_entropy(g, logits, tg_from_data(g, TG_I32, tg_shape1(T * B), out), TG_REDUCE_MEAN, -100);
}

static void die(const char *what, const char *msg) {
    fprintf(stderr, "tg-soak: %s: %s\n", what, msg ? msg : "(no message)");
    exit(1);
}

int main(int argc, char **argv) {
    long steps = 20000, warmup = 100;
    double max_growth = 1.0;
    int threads = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: tg-soak [--steps N] [--warmup N] [--max-growth PCT] [--threads N]\n");
            return 0;
        } else if (!strcmp(a, "--steps") && v) {
            steps = atol(argv[++i]);
        } else if (!strcmp(a, "--warmup") && v) {
            warmup = atol(argv[++i]);
        } else if (!strcmp(a, "--max-growth") && v) {
            max_growth = atof(argv[++i]);
        } else if (!strcmp(a, "--threads") && v) {
            threads = atoi(argv[++i]);
        } else {
            fprintf(stderr, "tg-soak: unknown argument %s (see --help)\n", a);
            return 2;
        }
    }
    if (steps < 1 || warmup < 1 || warmup >= steps || threads < 1 || max_growth <= 0)
        return fprintf(stderr, "tg-soak: need 1 <= warmup < steps, threads >= 1, max-growth > 0\n"), 2;
    tg_set_num_threads(threads);

    char ckpt[] = "/tmp/tg-soak-XXXXXX";
    int fd = mkstemp(ckpt);
    if (fd < 0) die("mkstemp", "cannot create a temporary checkpoint file");
    close(fd);

    tg_rng rng;
    tg_rng_seed(&rng, 1);
    model m;
    model_init(&m, &rng);
    tg_graph *g = tg_graph_new(), *eval = tg_graph_new();
    tg_graph_set_training(eval, false);
    tg_graph_set_grad_enabled(eval, false);
    long rss_start = -1, vmrss_start = -1, heap_start = -1;
    double first_loss = 0, last_loss = 0, loss_sum = 0, t0 = now();
    int loss_n = 0;
    char err[1024];
    printf("tg-soak: %ld steps, LSTM %d layers x %d, batch %d, lengths %d..%d, memory from step %ld on\n", steps,
           LAYERS, H, B, T_MIN, T_MAX, warmup);
    for (long step = 1; step <= steps; step++) {
        // The longest batches first, packed and not, so warm-up has seen the largest graphs.
        int T = step <= 2 ? T_MAX : T_MIN + (int)tg_rng_below(&rng, T_MAX - T_MIN + 1);
        tg_graph_reset(g);
        tg_tensor *loss = model_loss(g, &m, &rng, T, step % 2 == 0);
        tg_optim_zero_grad(m.opt);
        if (!loss || !tg_backward(g, loss)) die("training step", tg_graph_last_error(g));
        tg_clip_grad_norm(m.p, 1.0);
        tg_optim_step(m.opt);
        double l = tg_tensor_get(loss, 0);
        if (step == 1) first_loss = l;
        loss_sum += l;
        loss_n++;
        if (step % 50 == 0) { // a no-grad evaluation, then a checkpoint round trip
            tg_graph_reset(eval);
            tg_tensor *dev = model_loss(eval, &m, &rng, T_MAX, true);
            if (!dev) die("evaluation", tg_graph_last_error(eval));
            if (!tg_params_save(m.p, ckpt, 0, NULL, NULL, err, sizeof err)) die("save", err);
            if (!tg_params_load(m.p, ckpt, true, err, sizeof err)) die("load", err);
        }
        if (step % 2000 == 0 || step == warmup) {
            last_loss = loss_sum / loss_n; // the mean since the last line
            printf("step %6ld  loss %.4f  Rss %ld kB  VmRSS %ld kB  malloc in use %ld kB  %.1f s\n", step, last_loss,
                   rss_kb(), vmrss_kb(), heap_kb(), now() - t0);
            fflush(stdout);
            loss_sum = 0, loss_n = 0;
        }
        if (step == warmup) // after printing, as at the end
            rss_start = rss_kb(), vmrss_start = vmrss_kb(), heap_start = heap_kb();
    }
    long rss_end = rss_kb(), vmrss_end = vmrss_kb(), heap_end = heap_kb();
    if (loss_n) last_loss = loss_sum / loss_n;
    double growth = rss_start > 0 ? 100.0 * (double)(rss_end - rss_start) / (double)rss_start : 1e9;
    double vm_growth = vmrss_start > 0 ? 100.0 * (double)(vmrss_end - vmrss_start) / (double)vmrss_start : 1e9;
    printf("RESULT steps=%ld rss_start_kb=%ld rss_end_kb=%ld growth_pct=%.3f vmrss_start_kb=%ld vmrss_end_kb=%ld "
           "vmrss_growth_pct=%.3f heap_start_kb=%ld heap_end_kb=%ld first_loss=%.4f last_loss=%.4f seconds=%.1f\n",
           steps, rss_start, rss_end, growth, vmrss_start, vmrss_end, vm_growth, heap_start, heap_end, first_loss,
           last_loss, now() - t0);
    unlink(ckpt);
    tg_graph_free(eval);
    tg_graph_free(g);
    tg_optim_free(m.opt);
    tg_params_free(m.p);
    if (growth >= max_growth) {
        fprintf(stderr, "tg-soak: resident memory (Rss) grew %.3f%% (limit %.3g%%)\n", growth, max_growth);
        return 1;
    }
    return 0;
}
