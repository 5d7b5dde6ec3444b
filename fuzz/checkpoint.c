// checkpoint.c: the fuzzed entry point of tg_checkpoint_read_config and tg_checkpoint_load,
// and the real checkpoints that seed it (tg_fuzz.h).
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_check.h"
#include "tapegrad.h"
#include "tg_checkpoint.h"
#include "tg_fuzz.h"
#include "tg_safetensors.h"

// --- Checkpoints ---

// A checkpoint is two files, so one input holds both: a 4-byte little-endian length n, the
// model file (its n bytes, or as many as there are), then the training-state file (the rest;
// no file at all when that is empty). They are written to a directory of this process's own,
// made once and removed at exit (a process that crashes leaves it): the model file as
// CK_MODEL, the training-state file under the name the model file's metadata gives it, so
// that a real pair stays a pair. Both are deleted again after each input. The seeds are real
// pairs (tg_fuzz_checkpoint_seeds), so mutations of them reach the pairing, the scalars and
// every name, shape and dtype check.
#define CK_MODEL "model.safetensors"
#define CK_TRAIN_ANY CK_MODEL ".train-0000000000000000.safetensors" // when the model file names none
#define CK_NAME_MAX 255                                               // of a file name (NAME_MAX)
#define CK_CONFIG "{\"model\": \"fuzz\", \"hidden\": 4, \"layers\": [\"linear\", \"scale\"]}"

static char ck_dir_path[TG_FUZZ_DIR_MAX];

static void ck_dir_remove(void) { rmdir(ck_dir_path); }

// $TMPDIR (or /tmp)/tg-fuzz-checkpoint-XXXXXX; each target deletes its files after an input.
const char *tg_fuzz_dir(void) {
    if (!ck_dir_path[0]) {
        const char *tmp = getenv("TMPDIR");
        int n = snprintf(ck_dir_path, sizeof ck_dir_path, "%s/tg-fuzz-checkpoint-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (n < 0 || (size_t)n >= sizeof ck_dir_path || !mkdtemp(ck_dir_path)) {
            fprintf(stderr, "tg-fuzz: cannot make the directory %s: %s\n", ck_dir_path, strerror(errno));
            abort();
        }
        atexit(ck_dir_remove);
    }
    return ck_dir_path;
}

static void write_file(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        fprintf(stderr, "tg-fuzz: cannot write %s: %s\n", path, strerror(errno));
        abort();
    }
}

// The name the model file at path gives its training-state file (read as the loader reads
// it) when that is a plain name in the same directory, otherwise CK_TRAIN_ANY.
static void ck_train_name(const char *path, char out[CK_NAME_MAX + 1]) {
    tg_safetensors *f = tg_safetensors_open(path, NULL, 0);
    const char *name = f ? tg_safetensors_metadata(f, "tapegrad.train_file") : NULL;
    bool plain = name && name[0] && strlen(name) <= CK_NAME_MAX && !strchr(name, '/') && strcmp(name, ".") &&
                 strcmp(name, "..") && strcmp(name, CK_MODEL);
    snprintf(out, CK_NAME_MAX + 1, "%s", plain ? name : CK_TRAIN_ANY);
    tg_safetensors_close(f);
}

typedef struct {
    char model[sizeof ck_dir_path + CK_NAME_MAX + 2], train[sizeof ck_dir_path + CK_NAME_MAX + 2];
    bool has_train; // the input held a training-state file
} ck_files;

// Writes the two files of an input (see above).
static ck_files ck_files_write(const uint8_t *data, size_t size) {
    static const uint8_t none[1];
    if (!data) data = none; // an empty input may come without a buffer
    ck_files cf;
    size_t head = size < 4 ? size : 4, rest = size - head, n = rest;
    if (size >= 4) {
        uint32_t prefix = data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 | (uint32_t)data[3] << 24;
        if (prefix < n) n = prefix;
    }
    snprintf(cf.model, sizeof cf.model, "%s/" CK_MODEL, tg_fuzz_dir());
    write_file(cf.model, data + head, n);
    char name[CK_NAME_MAX + 1];
    ck_train_name(cf.model, name);
    snprintf(cf.train, sizeof cf.train, "%s/%s", tg_fuzz_dir(), name);
    cf.has_train = rest > n;
    if (cf.has_train) write_file(cf.train, data + head + n, rest - n);
    return cf;
}

static void ck_files_remove(const ck_files *cf) {
    unlink(cf->model);
    if (cf->has_train) unlink(cf->train);
}

// The parameters the seeds are saved from and every load fills (all float64 in the "f64"
// seed, so loads convert).
static const struct {
    const char *name;
    tg_dtype dtype;
    tg_shape shape;
} CK_PARAMS[] = {
    {"layer.weight", TG_F32, {2, {4, 3}}},
    {"layer.bias", TG_F32, {1, {4}}},
    {"scale", TG_F64, {0, {0}}},
};
#define N_CK_PARAMS (int)(sizeof CK_PARAMS / sizeof CK_PARAMS[0])

static void fill_bytes(tg_tensor *t, unsigned seed) {
    unsigned char *b = t->data;
    for (size_t k = 0; k < (size_t)t->numel * tg_dtype_size(t->dtype); k++) b[k] = (unsigned char)(seed * 37 + k);
}

// Everything a load may change. config is ck_unset until a load sets it.
typedef struct {
    tg_params *p;
    tg_optim *opt; // Adam
    tg_rng rng;
    int64_t step;
    char *config;
} ck_state;

static char ck_unset[] = "(not set)";

// A training state that is the same in every call, and like no file's.
static ck_state ck_state_new(void) {
    ck_state s = {tg_params_new(), NULL, {{1, 2, 3, 4}}, -5, ck_unset};
    CHECK(s.p, "tg_params_new failed");
    for (int i = 0; i < N_CK_PARAMS; i++) {
        tg_tensor *t = tg_params_add(s.p, CK_PARAMS[i].name, CK_PARAMS[i].dtype, CK_PARAMS[i].shape);
        CHECK(t, "tg_params_add failed");
        fill_bytes(t, (unsigned)i);
    }
    s.opt = tg_optim_adam(s.p, (tg_adam_opts){.lr = 0.25});
    CHECK(s.opt, "tg_optim_adam failed");
    for (int i = 0; i < tg_optim_state_count(s.opt); i++)
        fill_bytes(tg_optim_state_at(s.opt, i, NULL), 100u + (unsigned)i);
    tg_optim_set_step_count(s.opt, 11);
    return s;
}

static void ck_state_free(ck_state *s) {
    tg_optim_free(s->opt);
    tg_params_free(s->p);
    if (s->config != ck_unset) free(s->config);
}

static bool same_data(const tg_tensor *a, const tg_tensor *b) {
    return !memcmp(a->data, b->data, (size_t)a->numel * tg_dtype_size(a->dtype));
}

// Whether s still holds what ck_state_new put there, bit for bit.
static bool ck_untouched(const ck_state *s) {
    ck_state fresh = ck_state_new();
    double lr = tg_optim_lr(s->opt), fresh_lr = tg_optim_lr(fresh.opt);
    bool same = s->step == fresh.step && !memcmp(&s->rng, &fresh.rng, sizeof s->rng) && s->config == ck_unset &&
                tg_optim_step_count(s->opt) == tg_optim_step_count(fresh.opt) && !memcmp(&lr, &fresh_lr, sizeof lr);
    for (int i = 0; i < N_CK_PARAMS; i++) same &= same_data(tg_params_at(s->p, i), tg_params_at(fresh.p, i));
    for (int i = 0; i < tg_optim_state_count(s->opt); i++)
        same &= same_data(tg_optim_state_at(s->opt, i, NULL), tg_optim_state_at(fresh.opt, i, NULL));
    ck_state_free(&fresh);
    return same;
}

// Loads the checkpoint at path into s: the whole of it, or (full false) the weights alone.
static bool ck_load(ck_state *s, const char *path, bool full, bool strict, char *err, size_t len) {
    char *config = ck_unset;
    bool ok = full ? tg_checkpoint_load(path, s->p, s->opt, &s->rng, &s->step, &config, strict, err, len)
                   : tg_checkpoint_load(path, s->p, NULL, NULL, NULL, &config, strict, err, len);
    CHECK(ok == (config != ck_unset), "a load that %s %s the config", ok ? "succeeded" : "was refused",
          ok ? "did not set" : "set");
    if (ok) {
        if (s->config != ck_unset) free(s->config);
        s->config = config;
    }
    return ok;
}

// After a load: t (named name) holds f's tensor of that name, or what it held before (was).
static void check_holds(const tg_safetensors *f, const char *name, const tg_tensor *t, const tg_tensor *was) {
    tg_tensor *want = tg_tensor_create(was->dtype, was->shape, false);
    CHECK(want, "tg_tensor_create failed");
    memcpy(want->data, was->data, (size_t)was->numel * tg_dtype_size(was->dtype));
    char err[256] = "";
    if (tg_safetensors_find(f, name, NULL))
        CHECK(tg_safetensors_read_into(f, name, want, err, sizeof err), "loaded \"%s\", which read_into refuses: %s",
              name, err);
    CHECK(same_data(t, want), "\"%s\" does not hold what the file holds", name);
    tg_tensor_free(want);
}

// The promises of one load into s: refused with a message and nothing changed, or every
// parameter (and, for a full load, every optimizer buffer and scalar) holds the file's.
static void check_load(const ck_state *s, const ck_files *cf, bool full, bool ok, const char *err, size_t len,
                       const char *what) {
    CHECK(memchr(err, 0, len), "%s: unterminated message", what);
    if (!ok) {
        CHECK_MESSAGE(err, len);
        CHECK(ck_untouched(s), "%s: refused, but it changed the training state: %s", what, err);
        return;
    }
    ck_state was = ck_state_new();
    tg_safetensors *model = tg_safetensors_open(cf->model, NULL, 0);
    CHECK(model, "%s: loaded a model file tg_safetensors_open refuses", what);
    for (int i = 0; i < N_CK_PARAMS; i++)
        check_holds(model, CK_PARAMS[i].name, tg_params_at(s->p, i), tg_params_at(was.p, i));
    tg_safetensors_close(model);
    if (full) {
        tg_safetensors *train = cf->has_train ? tg_safetensors_open(cf->train, NULL, 0) : NULL;
        CHECK(train, "%s: loaded without a training-state file tg_safetensors_open accepts", what);
        for (int i = 0; i < tg_optim_state_count(s->opt); i++) {
            const char *name;
            const tg_tensor *t = tg_optim_state_at(s->opt, i, &name);
            check_holds(train, name, t, tg_optim_state_at(was.opt, i, NULL));
        }
        const char *step = tg_safetensors_metadata(train, "step");
        const char *steps = tg_safetensors_metadata(train, "optim.step_count");
        const char *lr = tg_safetensors_metadata(train, "optim.lr"), *rng = tg_safetensors_metadata(train, "rng");
        CHECK(step && s->step == strtoll(step, NULL, 10), "%s: step %lld, the file says %s", what, (long long)s->step,
              step ? step : "(none)");
        CHECK(steps && tg_optim_step_count(s->opt) == strtoll(steps, NULL, 10), "%s: step count %lld, the file says %s",
              what, (long long)tg_optim_step_count(s->opt), steps ? steps : "(none)");
        double want_lr = lr ? strtod(lr, NULL) : 0, got_lr = tg_optim_lr(s->opt);
        CHECK(lr && (!memcmp(&want_lr, &got_lr, sizeof got_lr) || (want_lr != want_lr && got_lr != got_lr)),
              "%s: lr %.17g, the file says %s", what, got_lr, lr ? lr : "(none)");
        CHECK(rng && strlen(rng) == 4 * 17 - 1, "%s: loaded a generator state \"%s\"", what, rng ? rng : "(none)");
        for (int k = 0; k < 4; k++)
            CHECK(s->rng.s[k] == strtoull(rng + 17 * k, NULL, 16), "%s: generator word %d differs from the file's",
                  what, k);
        tg_safetensors_close(train);
    }
    ck_state_free(&was);
}

// Config strings agree: both absent, or equal.
static bool same_config(const char *a, const char *b) { return a == b || (a && b && !strcmp(a, b)); }

int tg_fuzz_checkpoint(const uint8_t *data, size_t size) {
    ck_files cf = ck_files_write(data, size);
    char *config = ck_unset, config_err[1024] = "";
    bool has_train = false;
    bool config_ok = tg_checkpoint_read_config(cf.model, &config, &has_train, config_err, sizeof config_err);
    CHECK(memchr(config_err, 0, sizeof config_err), "read_config: unterminated message");
    if (!config_ok) {
        CHECK_MESSAGE(config_err, sizeof config_err);
        CHECK(config == ck_unset, "a refused read_config set the config");
    } else {
        CHECK(config != ck_unset && !config_err[0], "read_config succeeded without setting the config, or with "
              "a message: %s", config_err);
    }

    // The whole checkpoint, strict and not, and the weights alone.
    ck_state strict = ck_state_new(), loose = ck_state_new(), weights = ck_state_new();
    char strict_err[2048] = "", loose_err[2048] = "", weights_err[2048] = "";
    bool strict_ok = ck_load(&strict, cf.model, true, true, strict_err, sizeof strict_err);
    bool loose_ok = ck_load(&loose, cf.model, true, false, loose_err, sizeof loose_err);
    bool weights_ok = ck_load(&weights, cf.model, false, false, weights_err, sizeof weights_err);
    check_load(&strict, &cf, true, strict_ok, strict_err, sizeof strict_err, "strict load");
    check_load(&loose, &cf, true, loose_ok, loose_err, sizeof loose_err, "load");
    check_load(&weights, &cf, false, weights_ok, weights_err, sizeof weights_err, "weights-only load");
    // Strict loads exactly when a loose load matches every name; a whole load passes the
    // checks of the weights alone, and those include read_config's.
    CHECK(strict_ok == (loose_ok && !loose_err[0]), "strict %s, loose %s with \"%s\"", strict_ok ? "ok" : "refused",
          loose_ok ? "ok" : "refused", loose_err);
    CHECK(!loose_ok || (weights_ok && has_train), "the checkpoint loads, but %s",
          !weights_ok ? "its weights alone do not" : "read_config says it has no training state");
    CHECK(!weights_ok || config_ok, "the weights load, but read_config refuses the file: %s", config_err);
    CHECK(!strict_ok || same_config(strict.config, config), "a strict load and read_config disagree on the config");
    CHECK(!loose_ok || same_config(loose.config, config), "a load and read_config disagree on the config");
    CHECK(!weights_ok || same_config(weights.config, config),
          "a weights-only load and read_config disagree on the config");

    // The same loads with a tiny message buffer and with none.
    char small[5];
    ck_state again = ck_state_new();
    CHECK(ck_load(&again, cf.model, true, false, small, sizeof small) == loose_ok && memchr(small, 0, sizeof small),
          "a small message buffer changed the result or was overrun");
    CHECK(ck_load(&again, cf.model, true, true, NULL, 0) == strict_ok, "no message buffer changed the result");

    ck_state_free(&again);
    ck_state_free(&weights);
    ck_state_free(&loose);
    ck_state_free(&strict);
    if (config != ck_unset) free(config);
    ck_files_remove(&cf);
    return 0;
}

// --- Checkpoint seeds ---

// What a seed's checkpoint is saved with.
enum {
    SEED_ADAM = 1,        // an Adam optimizer, one step taken (moments not zero)
    SEED_AMSGRAD = 2,     // ... with amsgrad: a third buffer per parameter, which loads skip
    SEED_RNG = 4,         // a generator
    SEED_CONFIG = 8,      // CK_CONFIG
    SEED_EXTRA = 16,      // one parameter more than the loads have
    SEED_F64 = 32,        // every parameter float64
    SEED_WEIGHTS = 64,    // tg_params_save's weights-only file, no training state
    SEED_TWO_SAVES = 128, // the training state of another save
    SEED_NO_TRAIN = 256,  // the model file alone
};

static const struct {
    const char *name;
    unsigned what;
} CK_SEEDS[] = {
    {"adam", SEED_ADAM | SEED_RNG | SEED_CONFIG},
    {"adam-no-config", SEED_ADAM | SEED_RNG},
    {"amsgrad", SEED_ADAM | SEED_AMSGRAD | SEED_RNG | SEED_CONFIG},
    {"extra-param", SEED_ADAM | SEED_RNG | SEED_CONFIG | SEED_EXTRA},
    {"f64", SEED_ADAM | SEED_RNG | SEED_CONFIG | SEED_F64},
    {"no-optimizer-no-rng", SEED_CONFIG},
    {"weights-only", SEED_WEIGHTS},
    {"pair-of-two-saves", SEED_ADAM | SEED_RNG | SEED_CONFIG | SEED_TWO_SAVES},
    {"train-state-missing", SEED_ADAM | SEED_RNG | SEED_CONFIG | SEED_NO_TRAIN},
};

typedef struct {
    uint8_t *data;
    size_t size;
} ck_bytes;

static bool read_whole(const char *path, ck_bytes *out) {
    FILE *f = fopen(path, "rb");
    long n = f && fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    out->data = n >= 0 && fseek(f, 0, SEEK_SET) == 0 ? malloc(n ? (size_t)n : 1) : NULL;
    out->size = out->data && fread(out->data, 1, (size_t)n, f) == (size_t)n ? (size_t)n : 0;
    if (f) fclose(f);
    if (!out->data || out->size != (size_t)n) {
        fprintf(stderr, "tg-fuzz: cannot read %s\n", path);
        free(out->data);
        return false;
    }
    return true;
}

// Saves a checkpoint of CK_PARAMS as what says, in this process's directory, and reads its
// two files back (the training state is empty for a weights-only file).
static bool ck_save(unsigned what, uint64_t seed, ck_bytes *model, ck_bytes *train) {
    tg_rng rng;
    tg_rng_seed(&rng, seed);
    tg_params *p = tg_params_new();
    CHECK(p, "tg_params_new failed");
    for (int i = 0; i <= N_CK_PARAMS; i++) {
        if (i == N_CK_PARAMS && !(what & SEED_EXTRA)) break;
        tg_dtype dtype = what & SEED_F64 ? TG_F64 : i < N_CK_PARAMS ? CK_PARAMS[i].dtype : TG_F32;
        tg_tensor *t = i < N_CK_PARAMS ? tg_params_add(p, CK_PARAMS[i].name, dtype, CK_PARAMS[i].shape)
                                       : tg_params_add(p, "extra", dtype, (tg_shape){1, {2}});
        CHECK(t, "tg_params_add failed");
        tg_tensor_fill_uniform(t, &rng, -1, 1);
        tg_tensor grad = *t; // the gradient, seen as a tensor of its own to fill it
        grad.data = t->grad;
        tg_tensor_fill_uniform(&grad, &rng, -1, 1);
    }
    tg_adam_opts adam = {.lr = 0.01, .amsgrad = what & SEED_AMSGRAD};
    tg_optim *opt = what & SEED_ADAM ? tg_optim_adam(p, adam) : NULL;
    CHECK(opt || !(what & SEED_ADAM), "tg_optim_adam failed");
    if (opt) tg_optim_step(opt);
    char path[sizeof ck_dir_path + sizeof CK_MODEL + 1], train_path[sizeof ck_dir_path + CK_NAME_MAX + 2],
        name[CK_NAME_MAX + 1], err[512] = "";
    snprintf(path, sizeof path, "%s/" CK_MODEL, tg_fuzz_dir());
    const char *keys[] = {"format"}, *values[] = {"pt"}; // as PyTorch users write weights
    bool ok = what & SEED_WEIGHTS ? tg_params_save(p, path, 1, keys, values, err, sizeof err)
                                  : tg_checkpoint_save(path, p, opt, what & SEED_RNG ? &rng : NULL, 7,
                                                       what & SEED_CONFIG ? CK_CONFIG : NULL, err, sizeof err);
    if (!ok) fprintf(stderr, "tg-fuzz: %s\n", err);
    ck_train_name(path, name);
    snprintf(train_path, sizeof train_path, "%s/%s", tg_fuzz_dir(), name);
    *train = (ck_bytes){NULL, 0};
    ok = ok && read_whole(path, model);
    if (ok && !(what & SEED_WEIGHTS) && !read_whole(train_path, train)) {
        free(model->data);
        ok = false;
    }
    unlink(path);
    unlink(train_path);
    tg_optim_free(opt);
    tg_params_free(p);
    return ok;
}

bool tg_fuzz_checkpoint_seeds(const char *dir) {
    bool ok = true;
    for (size_t i = 0; ok && i < sizeof CK_SEEDS / sizeof CK_SEEDS[0]; i++) {
        unsigned what = CK_SEEDS[i].what;
        ck_bytes model, train, other_model = {NULL, 0}, other_train = {NULL, 0};
        if (!(ok = ck_save(what, 1000 + i, &model, &train))) break;
        if (what & SEED_TWO_SAVES && !(ok = ck_save(what, 2000 + i, &other_model, &other_train))) {
            free(model.data);
            free(train.data);
            break;
        }
        const ck_bytes *second = what & SEED_TWO_SAVES ? &other_train : &train;
        size_t second_size = what & SEED_NO_TRAIN ? 0 : second->size;
        uint8_t prefix[4] = {(uint8_t)model.size, (uint8_t)(model.size >> 8), (uint8_t)(model.size >> 16),
                             (uint8_t)(model.size >> 24)};
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, CK_SEEDS[i].name);
        FILE *f = fopen(path, "wb");
        ok = f && fwrite(prefix, 1, 4, f) == 4 && fwrite(model.data, 1, model.size, f) == model.size &&
             (!second_size || fwrite(second->data, 1, second_size, f) == second_size);
        if (f && fclose(f) != 0) ok = false;
        if (!ok) fprintf(stderr, "tg-fuzz: cannot write %s: %s\n", path, strerror(errno));
        free(model.data);
        free(train.data);
        free(other_model.data);
        free(other_train.data);
    }
    return ok;
}

