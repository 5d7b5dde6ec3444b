// tg-parity: checks tapegrad's RNN, GRU and LSTM (with or without proj_size) against
// PyTorch's on fixture files, and the published cells against the fixture script's PyTorch
// implementations of their equations.
//
//   tg-parity FILE...
//
// For each safetensors fixture (format: tests/data/rnn/README.md) it builds the module the
// metadata describes, loads PyTorch's weights by name, runs forward and backward of
// sum(output*grad_output) + sum(h_n*grad_h_n) (+ sum(c_n*grad_c_n)), and compares every
// tensor: float64 within 1e-10 + 1e-8|ref|, float32 within 1e-5 + 1e-4|ref|. One line per
// file; the exit status is 1 when any file fails or cannot be read.
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tapegrad.h"
#include "tg_safetensors.h"

#define ERR_LEN 1024

typedef struct {
    char error[ERR_LEN]; // the first problem, when the file could not be checked
    double worst;        // largest |ours - ref| / (atol + rtol |ref|); <= 1 passes
    char worst_name[128];
    double worst_abs;
} verdict;

static bool fail(verdict *v, const char *fmt, const char *a, const char *b) {
    snprintf(v->error, sizeof v->error, fmt, a, b);
    return false;
}

// A metadata value parsed as an integer in [lo, hi].
static bool meta_int(tg_safetensors *f, const char *key, long lo, long hi, long *out, verdict *v) {
    const char *s = tg_safetensors_metadata(f, key);
    if (!s) return fail(v, "metadata has no \"%s\"%s", key, "");
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (errno || end == s || *end || x < lo || x > hi) return fail(v, "metadata \"%s\" is \"%s\", not a valid size", key, s);
    *out = x;
    return true;
}

// Compares ours (data of dtype, numel) against the file's tensor `name`.
static bool compare(tg_safetensors *f, const char *name, const tg_tensor *ours, const void *values, double atol,
                    double rtol, verdict *v) {
    char err[ERR_LEN];
    tg_tensor *ref = tg_tensor_create(TG_F64, ours->shape, false);
    if (!ref) return fail(v, "out of memory%s%s", "", "");
    tg_tensor view = *ours;
    view.data = (void *)values;
    // The reference is read as float64 whatever its dtype, so both are compared in double.
    if (!tg_safetensors_read_into(f, name, ref, err, sizeof err)) {
        tg_tensor_free(ref);
        return fail(v, "%s%s", err, "");
    }
    for (int64_t i = 0; i < ref->numel; i++) {
        double r = tg_tensor_get(ref, i), a = tg_tensor_get(&view, i), diff = fabs(a - r);
        double score = diff / (atol + rtol * fabs(r));
        if (!(score <= v->worst)) { // NaN counts as worst
            v->worst = isnan(score) ? INFINITY : score;
            v->worst_abs = diff;
            snprintf(v->worst_name, sizeof v->worst_name, "%s", name);
        }
    }
    tg_tensor_free(ref);
    return true;
}

// A heap tensor with a gradient, read from the file.
static tg_tensor *read_leaf(tg_safetensors *f, const char *name, tg_dtype dtype, tg_shape shape, bool grad, verdict *v) {
    char err[ERR_LEN];
    tg_tensor *t = tg_tensor_create(dtype, shape, grad);
    if (t && tg_safetensors_read_into(f, name, t, err, sizeof err)) return t;
    tg_tensor_free(t);
    fail(v, "%s%s", err, "");
    return NULL;
}

static const tg_cell_type *cell_of(const char *module) {
    if (!module) return NULL;
    if (!strcmp(module, "RNN_TANH")) return &tg_cell_rnn_tanh;
    if (!strcmp(module, "RNN_RELU")) return &tg_cell_rnn_relu;
    if (!strcmp(module, "GRU")) return &tg_cell_gru;
    if (!strcmp(module, "LSTM")) return &tg_cell_lstm;
    if (!strcmp(module, "PEEPHOLE_LSTM")) return &tg_cell_peephole_lstm;
    if (!strcmp(module, "LAYER_NORM_LSTM")) return &tg_cell_layer_norm_lstm;
    if (!strcmp(module, "INDRNN")) return &tg_cell_indrnn;
    if (!strcmp(module, "SRU")) return &tg_cell_sru;
    return NULL;
}

static bool check_file(const char *path, verdict *v) {
    char err[ERR_LEN];
    tg_safetensors *f = tg_safetensors_open(path, err, sizeof err);
    if (!f) return fail(v, "%s%s", err, "");
    bool ok = false;
    tg_params *p = tg_params_new();
    tg_graph *g = tg_graph_new();
    tg_tensor *x = NULL, *lengths = NULL, *init[2] = {0}, *up[3] = {0}; // up: grad_output, grad_h_n, grad_c_n
    long I, H, L, T, B;
    const char *module = tg_safetensors_metadata(f, "module"), *bi = tg_safetensors_metadata(f, "bidirectional");
    const char *dt = tg_safetensors_metadata(f, "dtype");
    const tg_cell_type *type = cell_of(module);
    if (!type) {
        fail(v, "metadata \"module\" is %s%s; expected RNN_TANH, RNN_RELU, GRU, LSTM, PEEPHOLE_LSTM, LAYER_NORM_LSTM, "
             "INDRNN or SRU", module ? module : "missing", "");
        goto done;
    }
    if (!bi || (strcmp(bi, "true") && strcmp(bi, "false")) || !dt || (strcmp(dt, "float32") && strcmp(dt, "float64"))) {
        fail(v, "metadata \"bidirectional\" (%s) or \"dtype\" (%s) is missing or invalid", bi ? bi : "missing",
             dt ? dt : "missing");
        goto done;
    }
    if (!meta_int(f, "input_size", 1, 1 << 20, &I, v) || !meta_int(f, "hidden_size", 1, 1 << 20, &H, v) ||
        !meta_int(f, "num_layers", 1, TG_RNN_MAX_LAYERS, &L, v) || !meta_int(f, "seq_len", 1, 1 << 20, &T, v) ||
        !meta_int(f, "batch", 1, 1 << 20, &B, v))
        goto done;
    long P = 0; // proj_size: optional, LSTM only
    if (tg_safetensors_metadata(f, "proj_size") && !meta_int(f, "proj_size", 0, 1 << 20, &P, v)) goto done;
    tg_dtype dtype = !strcmp(dt, "float64") ? TG_F64 : TG_F32;
    int D = !strcmp(bi, "true") ? 2 : 1, S = type->n_states;

    tg_rnn rnn;
    tg_rng rng;
    tg_rng_seed(&rng, 0);
    tg_rnn_config cfg = {.cell = type, .input_size = (int)I, .hidden_size = (int)H, .num_layers = (int)L,
                         .bidirectional = D == 2, .dtype = dtype, .proj_size = (int)P};
    if (!tg_rnn_init(&rnn, &cfg, p, "", &rng)) {
        fail(v, "could not build the module%s%s", "", "");
        goto done;
    }
    for (int i = 0; i < tg_params_count(p); i++) { // every parameter must be in the file, shape and all
        tg_tensor *w = tg_params_at(p, i);
        if (!tg_safetensors_read_into(f, w->name, w, err, sizeof err)) {
            fail(v, "%s%s", err, "");
            goto done;
        }
    }
    const int *size = rnn.cells[0][0].state_size; // h [.., P or H], c [.., H]
    const char *init_names[2] = {"h0", "c0"}, *up_names[3] = {"grad_output", "grad_h_n", "grad_c_n"};
    if (!(x = read_leaf(f, "input", dtype, tg_shape3(T, B, I), true, v))) goto done;
    for (int i = 0; i < S; i++)
        if (!(init[i] = read_leaf(f, init_names[i], dtype, tg_shape3(L * D, B, size[i]), true, v))) goto done;
    if (!(up[0] = read_leaf(f, up_names[0], dtype, tg_shape3(T, B, D * size[0]), false, v))) goto done;
    for (int i = 0; i < S; i++)
        if (!(up[1 + i] = read_leaf(f, up_names[1 + i], dtype, tg_shape3(L * D, B, size[i]), false, v))) goto done;
    tg_safetensors_tensor info;
    if (tg_safetensors_find(f, "lengths", &info) && !(lengths = read_leaf(f, "lengths", TG_I32, tg_shape1(B), false, v)))
        goto done;

    tg_rnn_result r;
    if (!tg_rnn_forward(g, &rnn, x, lengths, init, NULL, &r)) {
        fail(v, "forward failed: %s%s", tg_graph_last_error(g) ? tg_graph_last_error(g) : "", "");
        goto done;
    }
    tg_tensor *loss = tg_sum(g, tg_mul(g, r.output, up[0]));
    for (int i = 0; i < S; i++) loss = tg_add(g, loss, tg_sum(g, tg_mul(g, r.state[i], up[1 + i])));
    if (!loss || !tg_backward(g, loss)) {
        fail(v, "backward failed%s%s", "", "");
        goto done;
    }

    double atol = dtype == TG_F64 ? 1e-10 : 1e-5, rtol = dtype == TG_F64 ? 1e-8 : 1e-4;
    const char *state_names[2] = {"h_n", "c_n"}, *grad_init[2] = {"grad.h0", "grad.c0"};
    ok = compare(f, "output", r.output, r.output->data, atol, rtol, v) && compare(f, "grad.input", x, x->grad, atol, rtol, v);
    for (int i = 0; ok && i < S; i++)
        ok = compare(f, state_names[i], r.state[i], r.state[i]->data, atol, rtol, v) &&
             compare(f, grad_init[i], init[i], init[i]->grad, atol, rtol, v);
    for (int i = 0; ok && i < tg_params_count(p); i++) {
        tg_tensor *w = tg_params_at(p, i);
        char name[160];
        snprintf(name, sizeof name, "grad.%s", w->name);
        ok = compare(f, name, w, w->grad, atol, rtol, v);
    }
done:
    tg_tensor_free(x);
    tg_tensor_free(lengths);
    for (int i = 0; i < 2; i++) tg_tensor_free(init[i]);
    for (int i = 0; i < 3; i++) tg_tensor_free(up[i]);
    tg_graph_free(g);
    tg_params_free(p);
    tg_safetensors_close(f);
    return ok;
}

// Module-building errors go to the verdict instead of aborting, so one bad file cannot stop
// the run.
static void keep_going(const char *message, void *user) { (void)message, (void)user; }

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        printf("usage: tg-parity FILE...\n"
               "Checks tapegrad's recurrent modules against PyTorch fixtures (format: tests/data/rnn/README.md).\n");
        return argc < 2 ? 2 : 0;
    }
    tg_set_error_handler(keep_going, NULL);
    int failed = 0;
    for (int i = 1; i < argc; i++) {
        verdict v = {"", 0, "", 0};
        bool ok = check_file(argv[i], &v);
        if (!ok && v.error[0]) {
            printf("ERROR %s: %s\n", argv[i], v.error);
            failed++;
        } else {
            bool pass = ok && v.worst <= 1;
            printf("%s %s: worst %s |diff| %.3g (%.3g of tolerance)\n", pass ? "ok  " : "FAIL", argv[i], v.worst_name,
                   v.worst_abs, v.worst);
            failed += !pass;
        }
    }
    printf("%d passed, %d failed\n", argc - 1 - failed, failed);
    return failed ? 1 : 0;
}
