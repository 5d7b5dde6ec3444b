// Checkpoints: exact resume, a writer killed at random moments, damaged and mismatched
// files, and weights that travel between tapegrad and PyTorch both ways (tests/data/checkpoint,
// made by scripts/fixtures/make_checkpoint_fixtures.py; see the README there).
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tg_checkpoint.h"
#include "tg_test.h"
#include "tg_test_files.h"

// --- Files: a scratch directory per test, fixtures beside this source file ---

static void make_scratch(void) { test_scratch_make("tg_checkpoint"); }
static void remove_scratch(void) { test_scratch_remove(); }

TestSuite(checkpoint, .init = make_scratch, .fini = remove_scratch);

static const char *fixture(const char *name) { return test_fixture("checkpoint", name); }

// The training-state file the model file at path names (its metadata), as a full path.
static const char *train_file_of(const char *path) {
    static char buf[1024];
    char err[512];
    tg_safetensors *f = tg_safetensors_open(path, err, sizeof err);
    cr_assert_not_null(f, "%s", err);
    const char *name = tg_safetensors_metadata(f, "tapegrad.train_file");
    cr_assert_not_null(name);
    const char *slash = strrchr(path, '/');
    snprintf(buf, sizeof buf, "%.*s%s", slash ? (int)(slash - path + 1) : 0, path, name);
    tg_safetensors_close(f);
    return buf;
}

static tg_shape info_shape(const tg_safetensors_tensor *info) {
    tg_shape shape = {info->ndim, {0}};
    for (int d = 0; d < info->ndim && d < TG_MAX_DIMS; d++) shape.d[d] = info->shape[d];
    return shape;
}

// Number of entries of the scratch directory, other than . and ..
static int count_files(void) {
    DIR *d = opendir(test_scratch_dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

// --- Training state: a snapshot of everything a load may change ---

static char *snapshot(const tg_params *p, const tg_optim *o, const tg_rng *rng, int64_t step, size_t *n) {
    char *buf = NULL;
    FILE *out = open_memstream(&buf, n);
    for (int i = 0; i < tg_params_count(p); i++) {
        const tg_tensor *t = tg_params_at(p, i);
        fwrite(t->data, tg_dtype_size(t->dtype), (size_t)t->numel, out);
    }
    for (int i = 0; o && i < tg_optim_state_count(o); i++) {
        const tg_tensor *t = tg_optim_state_at(o, i, NULL);
        fwrite(t->data, tg_dtype_size(t->dtype), (size_t)t->numel, out);
    }
    int64_t steps = o ? tg_optim_step_count(o) : -1;
    double lr = o ? tg_optim_lr(o) : -1;
    fwrite(&steps, sizeof steps, 1, out);
    fwrite(&lr, sizeof lr, 1, out);
    if (rng) fwrite(rng, sizeof *rng, 1, out);
    fwrite(&step, sizeof step, 1, out);
    fclose(out);
    return buf;
}

// Whether two training states are the same bit for bit (o and rng NULL on both sides or neither).
static bool same_state(const tg_params *p, const tg_optim *o, const tg_rng *rng, int64_t step, const tg_params *q,
                       const tg_optim *qo, const tg_rng *qrng, int64_t qstep) {
    size_t n, m;
    char *a = snapshot(p, o, rng, step, &n), *b = snapshot(q, qo, qrng, qstep, &m);
    bool same = n == m && memcmp(a, b, n) == 0;
    free(a);
    free(b);
    return same;
}

// --- A small recurrent model trained on random data ---
// LSTM (2 layers, bidirectional, dropout between them) + linear head, mean squared error,
// clip_grad_norm_, and one generator for dropout masks and for drawing each batch.

#define SEQ 5
#define BATCH 4
#define IN 4
#define HID 6
#define OUT 3
#define POOL 16

typedef struct {
    tg_params *p;
    tg_rnn rnn;
    tg_tensor *head_w, *head_b;
    tg_optim *opt;
    tg_rng rng;
    tg_graph *g;
    bool adam;
} trainer;

static float pool_x[POOL][SEQ][IN], pool_y[POOL][OUT];

static trainer *trainer_new(bool adam, uint64_t init_seed, uint64_t rng_seed) {
    tg_rng data;
    tg_rng_seed(&data, 5);
    for (int k = 0; k < POOL; k++) {
        for (int s = 0; s < SEQ; s++)
            for (int i = 0; i < IN; i++) pool_x[k][s][i] = (float)tg_rng_normal(&data);
        for (int o = 0; o < OUT; o++) pool_y[k][o] = (float)tg_rng_uniform(&data);
    }
    trainer *t = calloc(1, sizeof *t);
    t->adam = adam;
    t->p = tg_params_new();
    tg_rng init;
    tg_rng_seed(&init, init_seed);
    tg_rnn_config cfg = {.cell = &tg_cell_lstm, .input_size = IN, .hidden_size = HID, .num_layers = 2,
                         .bidirectional = true, .dropout = 0.25};
    cr_assert(tg_rnn_init(&t->rnn, &cfg, t->p, "rnn.", &init));
    t->head_w = tg_params_add(t->p, "head.weight", TG_F32, tg_shape2(OUT, 2 * HID));
    t->head_b = tg_params_add(t->p, "head.bias", TG_F32, tg_shape1(OUT));
    tg_tensor_fill_uniform(t->head_w, &init, -0.3, 0.3);
    tg_tensor_fill_uniform(t->head_b, &init, -0.3, 0.3);
    t->opt = adam ? tg_optim_adam(t->p, (tg_adam_opts){.lr = 0.01, .amsgrad = true})
                  : tg_optim_sgd(t->p, (tg_sgd_opts){.lr = 0.1, .momentum = 0.9, .dampening = 0.1,
                                                     .weight_decay = 1e-3});
    cr_assert_not_null(t->opt);
    tg_rng_seed(&t->rng, rng_seed);
    t->g = tg_graph_new();
    return t;
}

static void trainer_free(trainer *t) {
    tg_graph_free(t->g);
    tg_optim_free(t->opt);
    tg_params_free(t->p);
    free(t);
}

// Training step number `step` (0-based), which the program's step counter drives.
static void train_step(trainer *t, int64_t step) {
    if (t->adam && step == 3) tg_optim_set_lr(t->opt, 0.004); // only the optimizer remembers this
    if (!t->adam) tg_optim_set_lr(t->opt, tg_lr_at(&(tg_lr_schedule){.kind = TG_LR_COSINE, .t_max = 7}, 0.1, step));
    float x[SEQ][BATCH][IN], y[BATCH][OUT];
    for (int b = 0; b < BATCH; b++) {
        uint64_t k = tg_rng_below(&t->rng, POOL);
        for (int s = 0; s < SEQ; s++) memcpy(x[s][b], pool_x[k][s], sizeof x[s][b]);
        memcpy(y[b], pool_y[k], sizeof y[b]);
    }
    tg_graph *g = t->g;
    tg_graph_reset(g);
    tg_rnn_result r;
    cr_assert(tg_rnn_forward(g, &t->rnn, tg_from_data(g, TG_F32, tg_shape3(SEQ, BATCH, IN), x), NULL, NULL, &t->rng,
                             &r));
    tg_tensor *last = tg_reshape(g, tg_slice(g, r.output, 0, SEQ - 1, 1), tg_shape2(BATCH, 2 * HID));
    tg_tensor *loss = tg_mse_loss(g, tg_linear(g, last, t->head_w, t->head_b),
                                  tg_from_data(g, TG_F32, tg_shape2(BATCH, OUT), y), TG_REDUCE_MEAN);
    tg_optim_zero_grad(t->opt);
    cr_assert(tg_backward(g, loss));
    tg_clip_grad_norm(t->p, 0.5);
    tg_optim_step(t->opt);
}

// N steps, save, load into a trainer made from other seeds, M more steps: bit-identical to
// N+M steps at once (parameters, optimizer state, generator). A control resumed from the
// weights alone must differ, or the comparison could not see a lost optimizer or generator.
static void check_resume(bool adam) {
    const int N = 5, M = 4;
    trainer *straight = trainer_new(adam, 1, 2), *first = trainer_new(adam, 1, 2);
    for (int s = 0; s < N + M; s++) train_step(straight, s);
    for (int s = 0; s < N; s++) train_step(first, s);
    const char *path = scratch("resume.safetensors");
    char err[1024];
    cr_assert(tg_checkpoint_save(path, first->p, first->opt, &first->rng, N, "{\"model\": \"test\"}", err, sizeof err),
              "%s", err);
    trainer_free(first);

    trainer *resumed = trainer_new(adam, 99, 98), *weights_only = trainer_new(adam, 99, 98);
    int64_t step = -1;
    char *config = NULL;
    cr_assert(tg_checkpoint_load(path, resumed->p, resumed->opt, &resumed->rng, &step, &config, true, err, sizeof err),
              "%s", err);
    cr_assert_str_eq(err, "");
    cr_assert_eq(step, N);
    cr_assert_str_eq(config, "{\"model\": \"test\"}");
    free(config);
    cr_assert(tg_checkpoint_load(path, weights_only->p, NULL, NULL, NULL, NULL, true, err, sizeof err), "%s", err);
    for (int64_t s = step; s < N + M; s++) train_step(resumed, s), train_step(weights_only, s);
    cr_assert(same_state(resumed->p, resumed->opt, &resumed->rng, 0, straight->p, straight->opt, &straight->rng, 0),
              "resumed training is not bit-identical to training at once");
    cr_assert_not(same_state(weights_only->p, NULL, NULL, 0, straight->p, NULL, NULL, 0),
                  "a resume without optimizer and generator state should not match");
    trainer_free(straight);
    trainer_free(resumed);
    trainer_free(weights_only);
}

Test(checkpoint, resume_adam_amsgrad_clipping_dropout_shuffling_is_bit_identical) { check_resume(true); }
Test(checkpoint, resume_sgd_momentum_cosine_schedule_is_bit_identical) { check_resume(false); }

// --- The files: names, metadata, pairing, clean-up ---

// A small checkpoint's contents: two parameters, Adam after two steps, a used generator.
typedef struct {
    tg_params *p;
    tg_optim *opt;
    tg_rng rng;
} mini;

static mini mini_new(uint64_t seed) {
    mini s;
    s.p = tg_params_new();
    tg_tensor *w = tg_params_add(s.p, "w", TG_F32, tg_shape2(3, 2)), *b = tg_params_add(s.p, "b", TG_F32, tg_shape1(3));
    tg_rng_seed(&s.rng, seed);
    tg_tensor_fill_uniform(w, &s.rng, -1, 1);
    tg_tensor_fill_uniform(b, &s.rng, -1, 1);
    s.opt = tg_optim_adam(s.p, (tg_adam_opts){.lr = 0.05});
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < 2; i++) {
            tg_tensor *t = tg_params_at(s.p, i);
            for (int64_t j = 0; j < t->numel; j++) ((float *)t->grad)[j] = (float)tg_rng_normal(&s.rng);
        }
        tg_optim_step(s.opt);
    }
    return s;
}

static void mini_free(mini *s) {
    tg_optim_free(s->opt);
    tg_params_free(s->p);
}

static const char *mini_save(const mini *s, const char *name, int64_t step) {
    const char *path = scratch(name);
    char err[1024];
    cr_assert(tg_checkpoint_save(path, s->p, s->opt, &s->rng, step, "{\"w\": [3, 2]}", err, sizeof err), "%s", err);
    return path;
}

Test(checkpoint, model_file_holds_exactly_the_state_dict_and_the_pair_metadata) {
    mini s = mini_new(3);
    const char *path = mini_save(&s, "m.safetensors", 42);
    char err[1024];
    tg_safetensors *m = tg_safetensors_open(path, err, sizeof err), *t = NULL;
    cr_assert_not_null(m, "%s", err);
    cr_assert_eq(tg_safetensors_count(m), 2);
    cr_assert_str_eq(tg_safetensors_name(m, 0), "w");
    cr_assert_str_eq(tg_safetensors_name(m, 1), "b");
    cr_assert_str_eq(tg_safetensors_metadata(m, "format_version"), TG_CHECKPOINT_FORMAT);
    cr_assert_str_eq(tg_safetensors_metadata(m, "config"), "{\"w\": [3, 2]}");
    const char *id = tg_safetensors_metadata(m, "tapegrad.checkpoint_id");
    cr_assert(id && strlen(id) == 16, "%s", id);
    char want[128];
    snprintf(want, sizeof want, "m.safetensors.train-%s.safetensors", id);
    cr_assert_str_eq(tg_safetensors_metadata(m, "tapegrad.train_file"), want);
    cr_assert_not_null(t = tg_safetensors_open(train_file_of(path), err, sizeof err), "%s", err);
    cr_assert_str_eq(tg_safetensors_metadata(t, "tapegrad.checkpoint_id"), id);
    cr_assert_str_eq(tg_safetensors_metadata(t, "format_version"), TG_CHECKPOINT_TRAIN_FORMAT);
    cr_assert_str_eq(tg_safetensors_metadata(t, "step"), "42");
    cr_assert_str_eq(tg_safetensors_metadata(t, "optim.step_count"), "2");
    cr_assert_str_eq(tg_safetensors_metadata(t, "optim.lr"), "0.050000000000000003");
    cr_assert_eq(tg_safetensors_count(t), tg_optim_state_count(s.opt));
    for (int i = 0; i < tg_optim_state_count(s.opt); i++) {
        const char *name;
        tg_optim_state_at(s.opt, i, &name);
        cr_assert(tg_safetensors_find(t, name, NULL), "no %s in the training state", name);
    }
    cr_assert_eq(count_files(), 2, "a model file and its training state, nothing else");
    char *config = NULL;
    bool has_train = false;
    cr_assert(tg_checkpoint_read_config(path, &config, &has_train, err, sizeof err), "%s", err);
    cr_assert_str_eq(config, "{\"w\": [3, 2]}");
    cr_assert(has_train);
    free(config);
    tg_safetensors_close(m);
    tg_safetensors_close(t);
    mini_free(&s);
}

Test(checkpoint, saving_again_replaces_the_pair_and_removes_what_crashes_left) {
    mini s = mini_new(4);
    const char *path = mini_save(&s, "m.safetensors", 1);
    char old_train[1024];
    snprintf(old_train, sizeof old_train, "%s", train_file_of(path));
    pid_t child = fork(); // a pid that surely has no process any more once reaped
    if (child == 0) _exit(0);
    waitpid(child, NULL, 0);
    char dead[64], live[64];
    snprintf(dead, sizeof dead, "%d", (int)child);
    snprintf(live, sizeof live, "%d", (int)getppid());
    const char *stale[] = {"m.safetensors.tmp.", "m.safetensors.train-00000000000000aa.safetensors.tmp."};
    const char *kept[] = {"m.safetensors.bak", "m.safetensors.train-xyz.safetensors", "n.safetensors.tmp.1"};
    char name[256];
    for (int i = 0; i < 2; i++) {
        snprintf(name, sizeof name, "%s%s", stale[i], dead);
        write_bytes(scratch(name), "x", 1);
        snprintf(name, sizeof name, "%s%s", stale[i], live); // a writer that still runs: not touched
        write_bytes(scratch(name), "x", 1);
    }
    for (int i = 0; i < 3; i++) write_bytes(scratch(kept[i]), "x", 1);
    write_bytes(scratch("m.safetensors.train-00000000000000bb.safetensors"), "x", 1); // an orphan
    mini_save(&s, "m.safetensors", 2);
    cr_assert_neq(access(old_train, F_OK), 0, "the previous training state must go");
    cr_assert_eq(access(train_file_of(path), F_OK), 0);
    cr_assert_neq(access(scratch("m.safetensors.train-00000000000000bb.safetensors"), F_OK), 0);
    for (int i = 0; i < 2; i++) {
        snprintf(name, sizeof name, "%s%s", stale[i], dead);
        cr_assert_neq(access(scratch(name), F_OK), 0, "%s stayed", name);
        snprintf(name, sizeof name, "%s%s", stale[i], live);
        cr_assert_eq(access(scratch(name), F_OK), 0, "%s was removed", name);
    }
    for (int i = 0; i < 3; i++) cr_assert_eq(access(scratch(kept[i]), F_OK), 0, "%s is not ours to remove", kept[i]);
    cr_assert_eq(count_files(), 2 + 2 + 3);
    mini_free(&s);
}

// A save that fails after its training-state file is written (the model file hits the file
// size limit, a stand-in for a full disk) leaves the previous checkpoint whole and no files.
Test(checkpoint, failed_save_keeps_the_previous_checkpoint) {
    mini s = mini_new(5);
    const char *path = mini_save(&s, "m.safetensors", 7);
    tg_params *big = tg_params_new();
    tg_params_add(big, "huge", TG_F32, tg_shape1(1 << 16));
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit old, lim;
    cr_assert_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = (struct rlimit){64 << 10, old.rlim_max};
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    char err[1024];
    bool saved = tg_checkpoint_save(path, big, NULL, NULL, 8, NULL, err, sizeof err);
    setrlimit(RLIMIT_FSIZE, &old);
    cr_assert_not(saved);
    cr_assert(strstr(err, "File too large"), "%s", err);
    cr_assert_eq(count_files(), 2, "the new training state must not outlive the failed save");
    mini t = mini_new(6);
    int64_t step;
    cr_assert(tg_checkpoint_load(path, t.p, t.opt, &t.rng, &step, NULL, true, err, sizeof err), "%s", err);
    cr_assert(same_state(t.p, t.opt, &t.rng, step, s.p, s.opt, &s.rng, 7));
    tg_params_free(big);
    mini_free(&s);
    mini_free(&t);
}

// --- Damaged and mismatched files: a clear error, and nothing changes ---

// Asserts that loading path into a fresh mini checkpoint fails with want in the message
// and changes nothing, the config pointer included.
static void expect_load_error(const char *path, bool strict, const char *want) {
    mini s = mini_new(11);
    int64_t step = -5;
    char *config = (char *)"untouched";
    size_t n0, n1;
    char *before = snapshot(s.p, s.opt, &s.rng, step, &n0), err[2048] = "";
    cr_assert_not(tg_checkpoint_load(path, s.p, s.opt, &s.rng, &step, &config, strict, err, sizeof err),
                  "%s loaded, but should fail with \"%s\"", path, want);
    char *after = snapshot(s.p, s.opt, &s.rng, step, &n1);
    cr_assert(n0 == n1 && memcmp(before, after, n0) == 0, "a failed load changed something: %s", err);
    cr_assert_str_eq(config, "untouched");
    cr_assert(strstr(err, want), "expected \"%s\" in: %s", want, err);
    free(before);
    free(after);
    mini_free(&s);
}

Test(checkpoint, empty_truncated_and_flipped_files) {
    mini s = mini_new(3);
    const char *path = mini_save(&s, "m.safetensors", 1);
    char train[1024];
    snprintf(train, sizeof train, "%s", train_file_of(path));
    const char *files[] = {path, train};
    for (int f = 0; f < 2; f++) {
        size_t n;
        unsigned char *good = read_bytes(files[f], &n);
        write_bytes(files[f], "", 0);
        expect_load_error(path, true, "file is 0 bytes");
        for (size_t k = 1; k < n; k++) { // every prefix: the length field, the header, the data
            write_bytes(files[f], good, k);
            expect_load_error(path, true, files[f]);
        }
        good[n - 3] ^= 0x20; // in the last tensor's data
        write_bytes(files[f], good, n);
        expect_load_error(path, true, "data is damaged: its XXH3-64 is");
        good[n - 3] ^= 0x20;
        write_bytes(files[f], good, n);
        free(good);
    }
    expect_load_error(scratch("absent.safetensors"), true, "No such file");
    mini_free(&s);
}

// Rewrites a checkpoint file with its tensors and known metadata, except: drop leaves out a
// tensor, reshape gives one the shape [1], add appends a tensor "extra", and key gets value
// (NULL removes it).
static void rewrite(const char *file, const char *drop, const char *reshape, bool add, const char *key,
                    const char *value) {
    static const char *known[] = {"format_version", "config", "tapegrad.checkpoint_id", "tapegrad.train_file",
                                  "step", "optim.step_count", "optim.lr", "rng"};
    char err[1024];
    tg_safetensors *f = tg_safetensors_open(file, err, sizeof err);
    cr_assert_not_null(f, "%s", err);
    const char *names[64], *keys[8], *values[8];
    tg_tensor *ts[64];
    int n = 0, n_meta = 0;
    for (int i = 0; i < tg_safetensors_count(f); i++) {
        const char *name = tg_safetensors_name(f, i);
        tg_safetensors_tensor info;
        tg_safetensors_find(f, name, &info);
        if (drop && !strcmp(name, drop)) continue;
        bool small_shape = reshape && !strcmp(name, reshape);
        ts[n] = tg_tensor_create(TG_F32, small_shape ? tg_shape1(1) : info_shape(&info), false);
        if (!small_shape) cr_assert(tg_safetensors_read_into(f, name, ts[n], err, sizeof err), "%s", err);
        names[n++] = name;
    }
    if (add) ts[n] = tg_tensor_create(TG_F32, tg_shape1(2), false), names[n++] = "extra";
    for (int i = 0; i < 8; i++) {
        const char *v = strcmp(known[i], key ? key : "") == 0 ? value : tg_safetensors_metadata(f, known[i]);
        if (v) keys[n_meta] = known[i], values[n_meta++] = v;
    }
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.rewrite", file); // f still holds pointers into the old file's header
    cr_assert(tg_safetensors_write(tmp, n, names, ts, n_meta, keys, values, err, sizeof err), "%s", err);
    cr_assert_eq(rename(tmp, file), 0);
    for (int i = 0; i < n; i++) tg_tensor_free(ts[i]);
    tg_safetensors_close(f);
}

Test(checkpoint, missing_unexpected_and_wrong_shapes_are_reported_together) {
    mini s = mini_new(3);
    const char *path = mini_save(&s, "m.safetensors", 1);
    char train[1024];
    snprintf(train, sizeof train, "%s", train_file_of(path));
    rewrite(path, "w", "b", true, NULL, NULL);
    rewrite(train, "optim.w.exp_avg", "optim.b.exp_avg_sq", true, NULL, NULL);
    const char *wants[] = {"cannot load the checkpoint (strict)",
                           "missing (in the parameters, not in ",
                           "): \"w\"",
                           "unexpected (in ",
                           "tensor \"b\" has shape [1] in the file but [3] in the destination (the parameters)",
                           "missing (in the optimizer, not in ",
                           "): \"optim.w.exp_avg\"",
                           "tensor \"optim.b.exp_avg_sq\" has shape [1] in the file but [3] in the destination "
                           "(the optimizer)"};
    for (int i = 0; i < 8; i++) expect_load_error(path, true, wants[i]);
    expect_load_error(path, false, "shapes must match even when not strict");
    mini_free(&s);
}

Test(checkpoint, optimizer_state_of_the_wrong_shape_alone) {
    mini s = mini_new(3);
    const char *path = mini_save(&s, "m.safetensors", 1);
    rewrite(train_file_of(path), NULL, "optim.w.exp_avg", false, NULL, NULL);
    expect_load_error(path, true, "tensor \"optim.w.exp_avg\" has shape [1] in the file but [3, 2]");
    mini_free(&s);
}

Test(checkpoint, non_strict_load_skips_names_on_one_side_and_lists_them) {
    mini s = mini_new(3);
    const char *path = mini_save(&s, "m.safetensors", 1);
    rewrite(path, NULL, NULL, true, NULL, NULL);
    rewrite(train_file_of(path), "optim.b.exp_avg", NULL, false, NULL, NULL);
    expect_load_error(path, true, "unexpected (in ");
    mini t = mini_new(12);
    char err[2048];
    int64_t step;
    cr_assert(tg_checkpoint_load(path, t.p, t.opt, &t.rng, &step, NULL, false, err, sizeof err), "%s", err);
    cr_assert(strstr(err, "loaded, skipping names not on both sides") && strstr(err, "\"extra\"") &&
                  strstr(err, "\"optim.b.exp_avg\""),
              "%s", err);
    cr_assert_eq(memcmp(tg_params_at(t.p, 0)->data, tg_params_at(s.p, 0)->data, 6 * sizeof(float)), 0);
    mini_free(&s);
    mini_free(&t);
}

Test(checkpoint, training_state_from_another_save_is_refused) {
    mini a = mini_new(3), b = mini_new(4);
    const char *pa = mini_save(&a, "a.safetensors", 1), *pb = mini_save(&b, "b.safetensors", 2);
    char ta[1024];
    snprintf(ta, sizeof ta, "%s", train_file_of(pa));
    size_t n;
    unsigned char *other = read_bytes(train_file_of(pb), &n);
    write_bytes(ta, other, n); // b's training state under the name a's model file expects
    expect_load_error(pa, true, "belongs to another save (tapegrad.checkpoint_id ");
    expect_load_error(pa, true, "the pair does not match");
    // Weights alone do not need the training state.
    mini c = mini_new(5);
    char err[1024];
    cr_assert(tg_checkpoint_load(pa, c.p, NULL, NULL, NULL, NULL, true, err, sizeof err), "%s", err);
    cr_assert_eq(memcmp(tg_params_at(c.p, 0)->data, tg_params_at(a.p, 0)->data, 6 * sizeof(float)), 0);
    unlink(ta);
    expect_load_error(pa, true, "is missing (copy it along with the model file)");
    free(other);
    mini_free(&a);
    mini_free(&b);
    mini_free(&c);
}

Test(checkpoint, bad_metadata_each_gives_a_clear_error) {
    mini s = mini_new(3);
    static const struct {
        bool train;
        const char *key, *value, *want;
    } cases[] = {
        {false, "format_version", "tapegrad-checkpoint-9", "format_version \"tapegrad-checkpoint-9\" is not"},
        {false, "tapegrad.train_file", "../../etc/passwd", "do not name a training-state file"},
        {false, "tapegrad.checkpoint_id", NULL, "do not name a training-state file"},
        {false, "tapegrad.train_file", NULL, "no training state: a weights-only file"},
        {true, "format_version", NULL, "not a tapegrad-train-state-1 file"},
        {true, "tapegrad.checkpoint_id", "0123456789abcdef", "belongs to another save"},
        {true, "step", "12x", "\"step\" is 12x, not an integer"},
        {true, "step", NULL, "\"step\" is missing"},
        {true, "optim.step_count", "-1", "\"optim.step_count\" is \"-1\", not a count"},
        {true, "optim.lr", "fast", "\"optim.lr\" is \"fast\", not a number"},
        {true, "optim.lr", NULL, "no optimizer state: it was saved without an optimizer"},
        {true, "rng", "0000000000000000 0000000000000000 0000000000000000 0000000000000000", "not four 16-digit hex"},
        {true, "rng", "1 2 3 4", "not four 16-digit hex"},
        {true, "rng", NULL, "no generator state"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *path = mini_save(&s, "m.safetensors", 1);
        rewrite(cases[i].train ? train_file_of(path) : path, NULL, NULL, false, cases[i].key, cases[i].value);
        expect_load_error(path, true, cases[i].want);
    }
    mini_free(&s);
}

// --- A writer killed at random moments ---
// Version k of a checkpoint is derived from k alone (every tensor, the scalars, the config),
// so a load proves the pair is one complete version and not a mix.

#define KILL_PARAMS (1 << 20) // 4 MB of parameters, 8 MB of Adam state per save

static void fill_version(tg_params *p, tg_optim *o, tg_rng *rng, int64_t k) {
    for (int i = 0; i < tg_params_count(p); i++) tg_tensor_fill(tg_params_at(p, i), (double)k + i);
    for (int i = 0; i < tg_optim_state_count(o); i++) tg_tensor_fill(tg_optim_state_at(o, i, NULL), (double)k * 3 + i);
    tg_optim_set_step_count(o, k);
    tg_optim_set_lr(o, 1.0 / (double)(k + 1));
    tg_rng_seed(rng, (uint64_t)k);
}

// Zero-filled parameters of p's names and shapes, with Adam.
static tg_params *params_like(const tg_params *p, tg_optim **o) {
    tg_params *q = tg_params_new();
    for (int i = 0; i < tg_params_count(p); i++)
        tg_params_add(q, tg_params_at(p, i)->name, TG_F32, tg_params_at(p, i)->shape);
    *o = tg_optim_adam(q, (tg_adam_opts){0});
    return q;
}

static void assert_version(tg_params *p, tg_optim *o, const tg_rng *rng, int64_t k, const char *config) {
    tg_optim *wo;
    tg_params *wp = params_like(p, &wo);
    tg_rng wr;
    fill_version(wp, wo, &wr, k);
    cr_assert(same_state(p, o, rng, k, wp, wo, &wr, k), "the checkpoint of step %lld is not that version whole",
              (long long)k);
    char cfg[64];
    snprintf(cfg, sizeof cfg, "{\"version\": %lld}", (long long)k);
    cr_assert_str_eq(config, cfg);
    tg_optim_free(wo);
    tg_params_free(wp);
}

static void save_version(const char *path, tg_params *p, tg_optim *o, int64_t k) {
    tg_rng rng;
    fill_version(p, o, &rng, k);
    char cfg[64], err[1024];
    snprintf(cfg, sizeof cfg, "{\"version\": %lld}", (long long)k);
    if (!tg_checkpoint_save(path, p, o, &rng, k, cfg, err, sizeof err)) {
        fprintf(stderr, "save failed: %s\n", err);
        _exit(3);
    }
}

// Whether name (in the scratch directory) is the model file, the training state it names,
// or a leftover whose pattern tg_checkpoint.h documents.
static bool recognised(const char *name, const char *train_name) {
    const char *rest = name + strlen("m.safetensors");
    if (!strcmp(name, "m.safetensors") || !strcmp(name, train_name)) return true;
    if (strncmp(name, "m.safetensors", strlen("m.safetensors")) != 0) return false;
    if (!strncmp(rest, ".tmp.", 5)) return strspn(rest + 5, "0123456789") == strlen(rest + 5);
    if (strncmp(rest, ".train-", 7) || strspn(rest + 7, "0123456789abcdef") != 16) return false;
    rest += 7 + 16;
    return !strcmp(rest, ".safetensors") ||
           (!strncmp(rest, ".safetensors.tmp.", 17) && strspn(rest + 17, "0123456789") == strlen(rest + 17));
}

Test(checkpoint, sigkill_during_saves_leaves_a_whole_checkpoint) {
    tg_params *p = tg_params_new();
    tg_params_add(p, "encoder.weight", TG_F32, tg_shape2(KILL_PARAMS / 1024, 1024));
    tg_params_add(p, "encoder.bias", TG_F32, tg_shape1(1024));
    tg_optim *o = tg_optim_adam(p, (tg_adam_opts){0});
    const char *path = scratch("m.safetensors");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    save_version(path, p, o, 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double save_us = (double)(t1.tv_sec - t0.tv_sec) * 1e6 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e3;
    tg_rng when;
    tg_rng_seed(&when, 2024);
    int64_t version = 0;
    int interrupted = 0;
    const int rounds = 24;
    for (int r = 0; r < rounds; r++) {
        int fds[2];
        cr_assert_eq(pipe(fds), 0);
        pid_t child = fork();
        cr_assert_neq(child, -1);
        if (child == 0) { // saves versions version+1, version+2, ... and reports each one done
            close(fds[0]);
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            for (int64_t k = version + 1; k < version + 100000; k++) {
                save_version(path, p, o, k);
                if (write(fds[1], &k, sizeof k) != sizeof k) _exit(4);
            }
            _exit(0);
        }
        close(fds[1]);
        // Into the first few saves at a random moment: most kills land inside a save.
        double wait_us = tg_rng_uniform(&when) * 4 * save_us;
        nanosleep(&(struct timespec){(time_t)(wait_us / 1e6), (long)(fmod(wait_us, 1e6) * 1e3)}, NULL);
        kill(child, SIGKILL);
        int status;
        cr_assert_eq(waitpid(child, &status, 0), child);
        cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "the writer ended by itself (status %d)", status);
        int64_t done = version, k;
        while (read(fds[0], &k, sizeof k) == sizeof k) done = k;
        close(fds[0]);

        tg_optim *qo;
        tg_params *q = params_like(p, &qo);
        tg_rng qr;
        int64_t step;
        char *config = NULL, err[1024];
        cr_assert(tg_checkpoint_load(path, q, qo, &qr, &step, &config, true, err, sizeof err), "round %d: %s", r, err);
        // The last save reported done, or the one after it when the kill came after its rename.
        cr_assert(step == done || step == done + 1, "round %d: loaded step %lld, the writer had finished %lld", r,
                  (long long)step, (long long)done);
        assert_version(q, qo, &qr, step, config);
        version = step;
        free(config);
        tg_optim_free(qo);
        tg_params_free(q);

        char train_name[256];
        snprintf(train_name, sizeof train_name, "%s", strrchr(train_file_of(path), '/') + 1);
        DIR *d = opendir(test_scratch_dir);
        int extra = 0;
        for (struct dirent *e; (e = readdir(d));) {
            if (e->d_name[0] == '.') continue;
            cr_assert(recognised(e->d_name, train_name), "round %d: unrecognised file %s", r, e->d_name);
            extra += strcmp(e->d_name, "m.safetensors") && strcmp(e->d_name, train_name);
        }
        closedir(d);
        interrupted += extra > 0;
    }
    cr_assert_gt(interrupted, 0, "no kill landed inside a save (a save takes %.0f us here)", save_us);
    save_version(path, p, o, version + 1); // the next save removes whatever the killed writers left
    cr_assert_eq(count_files(), 2);
    cr_log_info("%d of %d kills interrupted a save of %.0f us", interrupted, rounds, save_us);
    tg_optim_free(o);
    tg_params_free(p);
}

// --- PyTorch, both ways ---

#define LSTM_CONFIG                                                                                        \
    "{\"cell\": \"LSTM\", \"input_size\": 5, \"hidden_size\": 7, \"num_layers\": 2, \"bidirectional\": true}"

static tg_params *lstm_new(tg_rnn *rnn, uint64_t seed) {
    tg_params *p = tg_params_new();
    tg_rng rng;
    tg_rng_seed(&rng, seed);
    tg_rnn_config cfg = {.cell = &tg_cell_lstm, .input_size = 5, .hidden_size = 7, .num_layers = 2,
                         .bidirectional = true};
    cr_assert(tg_rnn_init(rnn, &cfg, p, "", &rng));
    return p;
}

static tg_tensor *read_tensor(const tg_safetensors *f, const char *name) {
    tg_safetensors_tensor info;
    cr_assert(tg_safetensors_find(f, name, &info), "fixture has no %s", name);
    tg_tensor *t = tg_tensor_create(TG_F32, info_shape(&info), false);
    char err[512];
    cr_assert(tg_safetensors_read_into(f, name, t, err, sizeof err), "%s", err);
    return t;
}

// Runs rnn on the fixture's input and initial states; compares with torch's outputs.
static void check_outputs(const tg_rnn *rnn, const char *io_name) {
    char err[1024];
    tg_safetensors *f = tg_safetensors_open(fixture(io_name), err, sizeof err);
    cr_assert_not_null(f, "%s", err);
    tg_tensor *x = read_tensor(f, "input"), *init[2] = {read_tensor(f, "h0"), read_tensor(f, "c0")};
    const char *names[3] = {"output", "h_n", "c_n"};
    tg_graph *g = tg_graph_new();
    tg_graph_set_grad_enabled(g, false);
    tg_rnn_result r;
    cr_assert(tg_rnn_forward(g, rnn, x, NULL, init, NULL, &r));
    tg_tensor *ours[3] = {r.output, r.state[0], r.state[1]};
    for (int k = 0; k < 3; k++) {
        tg_tensor *want = read_tensor(f, names[k]);
        cr_assert(tg_shape_equal(ours[k]->shape, want->shape), "%s: shape", names[k]);
        for (int64_t i = 0; i < want->numel; i++) {
            double a = tg_tensor_get(ours[k], i), e = tg_tensor_get(want, i);
            cr_assert(fabs(a - e) <= 1e-5 + 1e-4 * fabs(e), "%s[%lld] = %.9g, torch %.9g", names[k], (long long)i, a,
                      e);
        }
        tg_tensor_free(want);
    }
    tg_graph_free(g);
    tg_tensor_free(x);
    tg_tensor_free(init[0]);
    tg_tensor_free(init[1]);
    tg_safetensors_close(f);
}

// Our LSTM from a fixed seed, saved, is byte for byte the committed file torch loaded with
// strict=True (so torch's outputs in the fixture are those of these very weights).
// TG_CHECKPOINT_FIXTURE_DIR=<dir> writes the file there instead of to scratch (regeneration).
Test(checkpoint, tapegrad_lstm_checkpoint_is_what_torch_loaded) {
    tg_rnn rnn;
    tg_params *p = lstm_new(&rnn, 1234);
    const char *dir = getenv("TG_CHECKPOINT_FIXTURE_DIR");
    char path[1024], err[1024];
    snprintf(path, sizeof path, "%s/tg_lstm.safetensors", dir ? dir : test_scratch_dir);
    cr_assert(tg_checkpoint_save(path, p, NULL, NULL, 0, LSTM_CONFIG, err, sizeof err), "%s", err);
    if (dir) { // cr_skip_test skips the suite's .fini
        remove_scratch();
        cr_skip_test("wrote %s; now run scripts/fixtures/make_checkpoint_fixtures.py", path);
    }
    tg_safetensors *ours = tg_safetensors_open(path, err, sizeof err), *theirs;
    cr_assert_not_null(ours, "%s", err);
    cr_assert_not_null(theirs = tg_safetensors_open(fixture("tg_lstm.safetensors"), err, sizeof err), "%s", err);
    cr_assert_eq(tg_safetensors_count(ours), tg_safetensors_count(theirs));
    cr_assert_eq(tg_safetensors_count(ours), 16);
    for (int i = 0; i < tg_safetensors_count(ours); i++) {
        tg_safetensors_tensor a, b;
        const char *name = tg_safetensors_name(ours, i);
        cr_assert(tg_safetensors_find(ours, name, &a) && tg_safetensors_find(theirs, name, &b), "%s", name);
        cr_assert(!strcmp(a.dtype, b.dtype) && a.ndim == b.ndim && a.bytes == b.bytes, "%s", name);
        cr_assert_eq(memcmp(a.shape, b.shape, (size_t)a.ndim * sizeof *a.shape), 0, "%s", name);
        cr_assert_eq(memcmp(a.data, b.data, a.bytes), 0, "%s: not the bytes torch loaded", name);
    }
    cr_assert_str_eq(tg_safetensors_metadata(theirs, "config"), LSTM_CONFIG);
    check_outputs(&rnn, "tg_lstm_torch_out.safetensors");
    tg_safetensors_close(ours);
    tg_safetensors_close(theirs);
    tg_params_free(p);
}

// A state_dict saved from torch.nn.LSTM loads (weights only) and gives torch's outputs.
Test(checkpoint, torch_lstm_state_dict_loads_and_matches_torch) {
    tg_rnn rnn;
    tg_params *p = lstm_new(&rnn, 7);
    const char *path = fixture("torch_lstm.safetensors");
    char err[1024], *config = (char *)"untouched";
    bool has_train = true;
    cr_assert(tg_checkpoint_read_config(path, &config, &has_train, err, sizeof err), "%s", err);
    cr_assert(config == NULL && !has_train);
    config = (char *)"untouched";
    expect_load_error(path, true, "no training state: a weights-only file");
    cr_assert(tg_checkpoint_load(path, p, NULL, NULL, NULL, &config, true, err, sizeof err), "%s", err);
    cr_assert_null(config, "a PyTorch file has no config");
    check_outputs(&rnn, "torch_lstm_io.safetensors");
    // The names torch wrote are exactly the ones we write for the same module.
    tg_safetensors *t = tg_safetensors_open(path, err, sizeof err), *o;
    cr_assert_not_null(o = tg_safetensors_open(fixture("tg_lstm.safetensors"), err, sizeof err), "%s", err);
    cr_assert_eq(tg_safetensors_count(t), tg_safetensors_count(o));
    for (int i = 0; i < tg_safetensors_count(t); i++)
        cr_assert(tg_safetensors_find(o, tg_safetensors_name(t, i), NULL), "%s", tg_safetensors_name(t, i));
    tg_safetensors_close(t);
    tg_safetensors_close(o);
    tg_params_free(p);
}

// With Debian's python3-torch present, torch loads a full checkpoint (training state beside
// it) strictly, through the fixture script's --check.
Test(checkpoint, torch_loads_a_full_checkpoint_strictly, .timeout = 120) {
    if (system("/usr/bin/python3 -c 'import torch' 2>/dev/null") != 0) cr_skip_test("no python3-torch here");
    tg_rnn rnn;
    tg_params *p = lstm_new(&rnn, 99);
    tg_optim *o = tg_optim_adamw(p, (tg_adam_opts){0});
    tg_rng rng;
    tg_rng_seed(&rng, 1);
    const char *path = scratch("full.safetensors");
    char err[1024], cmd[4096];
    cr_assert(tg_checkpoint_save(path, p, o, &rng, 10, LSTM_CONFIG, err, sizeof err), "%s", err);
    const char *slash = strrchr(__FILE__, '/');
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %.*s/../scripts/fixtures/make_checkpoint_fixtures.py --check %s",
             (int)(slash - __FILE__), __FILE__, path);
    cr_assert_eq(system(cmd), 0, "PyTorch could not load %s strictly", path);
    tg_optim_free(o);
    tg_params_free(p);
}
