// checkpoint.c: a checkpoint is a model file PyTorch can load strictly plus a training-state
// file tied to it by a random id (tg_checkpoint.h describes the pair and the write order).
//
// All file I/O is io/safetensors.c's: its reader validates each file (header, offsets,
// checksum) and its writer makes each write atomic. What this file adds is the pairing, the
// order of the two writes, the clean-up of what a crash leaves behind, and a load that checks
// both files whole before it changes anything.
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "tg_checkpoint.h"
#include "tg_internal.h" // tg_file_fail: one error format for every file problem
#include "tg_safetensors.h"

// Metadata keys. The model file's are the ones a PyTorch user sees next to the weights.
#define KEY_FORMAT "format_version"
#define KEY_CONFIG "config"
#define KEY_ID "tapegrad.checkpoint_id"
#define KEY_TRAIN_FILE "tapegrad.train_file"
#define KEY_STEP "step"
#define KEY_OPT_STEPS "optim.step_count"
#define KEY_OPT_LR "optim.lr"
#define KEY_RNG "rng"

#define TRAIN_INFIX ".train-"  // PATH + TRAIN_INFIX + id + TRAIN_EXT is the training-state file
#define TRAIN_EXT ".safetensors"
#define TMP_INFIX ".tmp."      // tg_safetensors_write's temporary files: target + TMP_INFIX + pid
#define ID_LEN 16              // hex digits of the 64-bit id
#define RNG_LEN (4 * 17 - 1)   // four 16-digit hex words separated by spaces


// a + b + c in a new string, or NULL when out of memory.
static char *concat3(const char *a, const char *b, const char *c) {
    size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s%s%s", a, b, c);
    return s;
}

static bool is_hex(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!s[i] || !strchr("0123456789abcdef", s[i])) return false;
    return true;
}

// --- Ids ---

// A fresh id per save: random, so two saves never share one, even of identical weights.
static void new_id(char out[ID_LEN + 1]) {
    uint64_t id = 0;
    if (getrandom(&id, sizeof id, 0) != (ssize_t)sizeof id) {
        // No entropy source: the clock, the pid and a counter still differ between saves.
        static _Atomic uint64_t counter; // saves may run on several threads
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t seed[4] = {(uint64_t)ts.tv_sec, (uint64_t)ts.tv_nsec, (uint64_t)getpid(), ++counter};
        id = XXH3_64bits(seed, sizeof seed);
    }
    snprintf(out, ID_LEN + 1, "%016llx", (unsigned long long)id);
}

// --- Saving ---

// The training-state file: the optimizer's buffers, the caller's extra tensors, and scalars
// as exact decimal or hex text.
static bool write_train(const char *train_path, const tg_optim *opt, const tg_checkpoint_extra *extra,
                        const tg_rng *rng, int64_t step, const char *id, char *err, size_t len) {
    int n_opt = opt ? tg_optim_state_count(opt) : 0, n = n_opt + (extra ? extra->n : 0);
    const char **names = malloc(((size_t)n + 1) * sizeof *names);
    tg_tensor **tensors = malloc(((size_t)n + 1) * sizeof *tensors);
    if (!names || !tensors) {
        free(names);
        free(tensors);
        return tg_file_fail(err, len, train_path, "out of memory");
    }
    for (int i = 0; i < n_opt; i++) tensors[i] = tg_optim_state_at(opt, i, &names[i]);
    for (int i = n_opt; i < n; i++) names[i] = extra->names[i - n_opt], tensors[i] = extra->tensors[i - n_opt];
    char step_s[24], steps_s[24], lr_s[32], rng_s[RNG_LEN + 1];
    const char *keys[6] = {KEY_FORMAT, KEY_ID, KEY_STEP}, *values[6] = {TG_CHECKPOINT_TRAIN_FORMAT, id, step_s};
    int n_meta = 3;
    snprintf(step_s, sizeof step_s, "%lld", (long long)step);
    if (opt) {
        snprintf(steps_s, sizeof steps_s, "%lld", (long long)tg_optim_step_count(opt));
        snprintf(lr_s, sizeof lr_s, "%.17g", tg_optim_lr(opt)); // 17 digits: strtod gives the same double back
        keys[n_meta] = KEY_OPT_STEPS, values[n_meta++] = steps_s;
        keys[n_meta] = KEY_OPT_LR, values[n_meta++] = lr_s;
    }
    if (rng) {
        snprintf(rng_s, sizeof rng_s, "%016llx %016llx %016llx %016llx", (unsigned long long)rng->s[0],
                 (unsigned long long)rng->s[1], (unsigned long long)rng->s[2], (unsigned long long)rng->s[3]);
        keys[n_meta] = KEY_RNG, values[n_meta++] = rng_s;
    }
    bool ok = tg_safetensors_write(train_path, n, names, tensors, n_meta, keys, values, err, len);
    free(names);
    free(tensors);
    return ok;
}

// The pid in "<digits>" when the writer that made a temporary file with it has ended.
static bool writer_gone(const char *digits) {
    if (!*digits || strlen(digits) > 9 || strspn(digits, "0123456789") != strlen(digits)) return false;
    pid_t pid = (pid_t)atol(digits);
    // Our own pid: this process is not writing path now (one writer per path), so it is stale.
    return pid > 0 && (pid == getpid() || (kill(pid, 0) != 0 && errno == ESRCH));
}

// Whether rest (an entry's name after "<base>") is something a save to base leaves behind
// after a crash: a temporary file of a writer that has ended, or a training-state file
// other than keep (the one the model file now names).
static bool is_leftover(const char *rest, const char *keep_rest) {
    if (strncmp(rest, TMP_INFIX, strlen(TMP_INFIX)) == 0) return writer_gone(rest + strlen(TMP_INFIX));
    size_t infix = strlen(TRAIN_INFIX), ext = strlen(TRAIN_EXT);
    if (strncmp(rest, TRAIN_INFIX, infix) != 0 || !is_hex(rest + infix, ID_LEN) ||
        strncmp(rest + infix + ID_LEN, TRAIN_EXT, ext) != 0)
        return false;
    const char *after = rest + infix + ID_LEN + ext;
    if (!*after) return strcmp(rest, keep_rest) != 0;
    return strncmp(after, TMP_INFIX, strlen(TMP_INFIX)) == 0 && writer_gone(after + strlen(TMP_INFIX));
}

// Deletes every leftover of earlier saves to path (see is_leftover). Best effort: a file
// that stays is harmless, as loads never read it, and the next save tries again.
static void remove_leftovers(const char *path, const char *keep) {
    const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
    char *dir = !slash ? strdup(".") : strndup(path, slash == path ? 1 : (size_t)(slash - path));
    DIR *d = dir ? opendir(dir) : NULL;
    size_t blen = strlen(base);
    const char *keep_rest = keep + strlen(path); // keep is path + ".train-<id>.safetensors"
    for (struct dirent *e; d && (e = readdir(d));) {
        if (strncmp(e->d_name, base, blen) != 0 || !is_leftover(e->d_name + blen, keep_rest)) continue;
        char *victim = concat3(dir, "/", e->d_name);
        if (victim) unlink(victim);
        free(victim);
    }
    if (d) closedir(d);
    free(dir);
}

bool tg_checkpoint_save(const char *path, const tg_params *p, const tg_optim *opt, const tg_rng *rng, int64_t step,
                        const char *config_json, char *err, size_t len) {
    return tg_checkpoint_save_extra(path, p, opt, NULL, rng, step, config_json, err, len);
}

// An extra of n > 0 tensors without names or tensors, or with a NULL among them.
static bool bad_extra(const tg_checkpoint_extra *extra) {
    if (!extra || extra->n == 0) return false;
    if (extra->n < 0 || !extra->names || !extra->tensors) return true;
    for (int i = 0; i < extra->n; i++)
        if (!extra->names[i] || !extra->tensors[i]) return true;
    return false;
}

bool tg_checkpoint_save_extra(const char *path, const tg_params *p, const tg_optim *opt,
                              const tg_checkpoint_extra *extra, const tg_rng *rng, int64_t step,
                              const char *config_json, char *err, size_t len) {
    if (!path || !p) return tg_file_fail(err, len, path, "tg_checkpoint_save: no %s given", path ? "parameters" : "path");
    if (bad_extra(extra))
        return tg_file_fail(err, len, path, "tg_checkpoint_save: extra has %d tensors, and NULL names or tensors",
                            extra->n);
    char id[ID_LEN + 1];
    new_id(id);
    size_t n = strlen(path) + strlen(TRAIN_INFIX) + ID_LEN + strlen(TRAIN_EXT) + 1;
    char *full = malloc(n);
    if (!full) return tg_file_fail(err, len, path, "out of memory");
    snprintf(full, n, "%s%s%s%s", path, TRAIN_INFIX, id, TRAIN_EXT);
    const char *train_name = strrchr(full, '/') ? strrchr(full, '/') + 1 : full;
    const char *keys[4] = {KEY_FORMAT, KEY_ID, KEY_TRAIN_FILE, KEY_CONFIG};
    const char *values[4] = {TG_CHECKPOINT_FORMAT, id, train_name, config_json};
    // Training state first, under its new name, so the model file never names a file that
    // is not complete on disk; the old pair stays whole until the rename of the model file.
    bool ok = write_train(full, opt, extra, rng, step, id, err, len);
    if (ok && !(ok = tg_params_save(p, path, config_json ? 4 : 3, keys, values, err, len)))
        unlink(full); // nothing names it: the previous checkpoint stays as it was
    if (ok) remove_leftovers(path, full);
    free(full);
    return ok;
}

// --- Loading: the files ---

// Checks "format_version". A model file may lack it or carry a foreign one (PyTorch and other
// tools write weights-only files); a "tapegrad-..." value other than ours is refused.
static bool check_format(const tg_safetensors *f, const char *file, const char *want, bool required, char *err,
                         size_t len) {
    const char *v = tg_safetensors_metadata(f, KEY_FORMAT);
    if (v && strcmp(v, want) == 0) return true;
    if (!required && (!v || strncmp(v, "tapegrad-", 9) != 0)) return true;
    if (!v) return tg_file_fail(err, len, file, "no \"%s\" in the metadata: not a %s file", KEY_FORMAT, want);
    return tg_file_fail(err, len, file, "%s \"%s\" is not \"%s\" (a file of another kind, or from another tapegrad version)",
                KEY_FORMAT, v, want);
}

static tg_safetensors *open_model(const char *path, char *err, size_t len) {
    tg_safetensors *f = tg_safetensors_open(path, err, len);
    if (f && !check_format(f, path, TG_CHECKPOINT_FORMAT, false, err, len)) {
        tg_safetensors_close(f);
        return NULL;
    }
    return f;
}

// Opens the training-state file the model file names and checks that it is this save's.
static tg_safetensors *open_train(const char *path, const tg_safetensors *model, char **train_path, char *err,
                                  size_t len) {
    const char *name = tg_safetensors_metadata(model, KEY_TRAIN_FILE);
    const char *id = tg_safetensors_metadata(model, KEY_ID);
    if (!name)
        return tg_file_fail(err, len, path,
                    "no training state: a weights-only file (from PyTorch or tg_params_save); load it with opt, "
                    "rng and step NULL"),
               NULL;
    // The name must be this id's training-state file beside the model: never a path elsewhere.
    char tail[64] = "";
    if (id && strlen(id) == ID_LEN && is_hex(id, ID_LEN)) snprintf(tail, sizeof tail, TRAIN_INFIX "%s" TRAIN_EXT, id);
    size_t n = strlen(name), t = strlen(tail);
    if (!t || strchr(name, '/') || n <= t || strcmp(name + n - t, tail) != 0)
        return tg_file_fail(err, len, path, "damaged metadata: %s \"%s\" and %s \"%s\" do not name a training-state file",
                    KEY_TRAIN_FILE, name, KEY_ID, id ? id : "(none)"),
               NULL;
    const char *slash = strrchr(path, '/');
    size_t dir = slash ? (size_t)(slash - path) + 1 : 0;
    char *full = malloc(dir + n + 1);
    if (!full) return tg_file_fail(err, len, path, "out of memory"), NULL;
    snprintf(full, dir + n + 1, "%.*s%s", (int)dir, path, name);
    *train_path = full;
    if (access(full, F_OK) != 0 && errno == ENOENT)
        return tg_file_fail(err, len, path, "its training state %s is missing (copy it along with the model file)", full),
               NULL;
    tg_safetensors *f = tg_safetensors_open(full, err, len);
    if (!f) return NULL;
    const char *got = tg_safetensors_metadata(f, KEY_ID);
    bool ok = check_format(f, full, TG_CHECKPOINT_TRAIN_FORMAT, true, err, len);
    if (ok && (!got || strcmp(got, id) != 0))
        ok = tg_file_fail(err, len, full,
                  "belongs to another save (%s %s, but the model file %s has %s): the pair does not match, so "
                  "training cannot resume from it",
                  KEY_ID, got ? got : "(none)", path, id);
    if (ok) return f;
    tg_safetensors_close(f);
    return NULL;
}

// --- Loading: the training state's scalars ---

typedef struct {
    int64_t step, opt_steps;
    double lr;
    tg_rng rng;
} train_scalars;

static bool parse_i64(const char *s, int64_t *out) {
    if (!s || !(*s == '-' || (*s >= '0' && *s <= '9'))) return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end) return false;
    *out = v;
    return true;
}

static bool parse_rng(const char *s, tg_rng *rng) {
    if (!s || strlen(s) != RNG_LEN) return false;
    uint64_t any = 0;
    for (int i = 0; i < 4; i++) {
        const char *w = s + 17 * i;
        if (!is_hex(w, ID_LEN) || (i < 3 && w[ID_LEN] != ' ')) return false;
        rng->s[i] = strtoull(w, NULL, 16);
        any |= rng->s[i];
    }
    return any != 0; // xoshiro's all-zero state is a fixed point: no generator is ever in it
}

// Reads the scalars the caller asked for; a missing or malformed one is an error.
static bool parse_scalars(const tg_safetensors *f, const char *file, bool want_opt, bool want_rng, train_scalars *out,
                          char *err, size_t len) {
    const char *step = tg_safetensors_metadata(f, KEY_STEP);
    if (!parse_i64(step, &out->step))
        return tg_file_fail(err, len, file, "\"%s\" is %s, not an integer", KEY_STEP, step ? step : "missing");
    if (want_opt) {
        const char *steps = tg_safetensors_metadata(f, KEY_OPT_STEPS), *lr = tg_safetensors_metadata(f, KEY_OPT_LR);
        char *end = NULL;
        if (!steps || !lr)
            return tg_file_fail(err, len, file, "no optimizer state: it was saved without an optimizer (opt NULL)");
        if (!parse_i64(steps, &out->opt_steps) || out->opt_steps < 0)
            return tg_file_fail(err, len, file, "\"%s\" is \"%s\", not a count", KEY_OPT_STEPS, steps);
        out->lr = strtod(lr, &end);
        if (!*lr || *end) return tg_file_fail(err, len, file, "\"%s\" is \"%s\", not a number", KEY_OPT_LR, lr);
    }
    if (want_rng) {
        const char *r = tg_safetensors_metadata(f, KEY_RNG);
        if (!r) return tg_file_fail(err, len, file, "no generator state: it was saved without a generator (rng NULL)");
        if (!parse_rng(r, &out->rng))
            return tg_file_fail(err, len, file, "\"%s\" is \"%s\", not four 16-digit hex words of a generator state", KEY_RNG,
                        r);
    }
    return true;
}

// --- Loading: tensors, all checked before any is copied ---

typedef struct {
    const char *name;
    tg_tensor *t;
} slot;

// The bytes of the largest tensor of n slots (at least 1).
static size_t max_bytes(const slot *s, int n) {
    size_t m = 1;
    for (int i = 0; i < n; i++) {
        size_t b = (size_t)s[i].t->numel * tg_dtype_size(s[i].t->dtype);
        if (b > m) m = b;
    }
    return m;
}

// Appends the problems between n slots (owned by `owner`) and the tensors of f (the file
// `file`) to out: names on one side only, and tensors the reader would refuse to copy
// (shape, dtype). The reader's own checks decide the last, by reading into scratch, so
// this agrees exactly with the copy that follows. Returns the count of one-sided names and
// adds the refusals to *bad.
static int check_slots(FILE *out, const tg_safetensors *f, const char *file, const slot *s, int n, const char *owner,
                       void *scratch, int *bad) {
    int missing = 0, unexpected = 0;
    for (int i = 0; i < n; i++) {
        if (tg_safetensors_find(f, s[i].name, NULL)) continue;
        if (!missing++) fprintf(out, "\n  missing (in %s, not in %s):", owner, file);
        fprintf(out, "%s \"%s\"", missing > 1 ? "," : "", s[i].name);
    }
    for (int j = 0; j < tg_safetensors_count(f); j++) {
        const char *name = tg_safetensors_name(f, j);
        int i = 0;
        while (i < n && strcmp(s[i].name, name) != 0) i++;
        if (i < n) continue;
        if (!unexpected++) fprintf(out, "\n  unexpected (in %s, not in %s):", file, owner);
        fprintf(out, "%s \"%s\"", unexpected > 1 ? "," : "", name);
    }
    for (int i = 0; i < n; i++) {
        if (!tg_safetensors_find(f, s[i].name, NULL)) continue;
        tg_tensor view = *s[i].t;
        view.data = scratch;
        char msg[600];
        if (tg_safetensors_read_into(f, s[i].name, &view, msg, sizeof msg)) continue;
        size_t skip = strncmp(msg, file, strlen(file)) == 0 && msg[strlen(file)] == ':' ? strlen(file) + 2 : 0;
        fprintf(out, "\n  %s (%s)", msg + skip, owner);
        (*bad)++;
    }
    return missing + unexpected;
}

// Copies every slot f has; check_slots has passed, so the reads cannot fail.
static bool copy_slots(const tg_safetensors *f, const slot *s, int n, char *err, size_t len) {
    for (int i = 0; i < n; i++)
        if (tg_safetensors_find(f, s[i].name, NULL) && !tg_safetensors_read_into(f, s[i].name, s[i].t, err, len))
            return false;
    return true;
}

// The parameters' slots, then the training state's (from n_param on): the optimizer's
// buffers and the caller's extra tensors, n_train in all.
static slot *make_slots(const tg_params *p, const tg_optim *opt, const tg_checkpoint_extra *extra, int *n_param,
                        int *n_train) {
    *n_param = tg_params_count(p);
    int n_opt = opt ? tg_optim_state_count(opt) : 0;
    *n_train = n_opt + (extra ? extra->n : 0);
    slot *s = malloc(((size_t)*n_param + (size_t)*n_train + 1) * sizeof *s);
    for (int i = 0; s && i < *n_param; i++) s[i] = (slot){tg_params_at(p, i)->name, tg_params_at(p, i)};
    for (int i = 0; s && i < n_opt; i++) s[*n_param + i].t = tg_optim_state_at(opt, i, &s[*n_param + i].name);
    for (int i = n_opt; s && i < *n_train; i++)
        s[*n_param + i] = (slot){extra->names[i - n_opt], extra->tensors[i - n_opt]};
    return s;
}

// Everything a load reads, so validation and the final copy are separate steps.
typedef struct {
    tg_safetensors *model, *train;
    char *train_path;
    train_scalars scalars;
    slot *slots;
    int n_param, n_train; // slots of the model file, then of the training-state file
    char *config;
} load_state;

static void load_state_free(load_state *L) {
    tg_safetensors_close(L->model);
    tg_safetensors_close(L->train);
    free(L->train_path);
    free(L->slots);
    free(L->config);
}

// Opens and checks both files and every tensor; on success the load can only succeed.
static bool prepare(load_state *L, const char *path, tg_params *p, tg_optim *opt, const tg_checkpoint_extra *extra,
                    bool want_train, bool want_rng, bool want_config, bool strict, char *err, size_t len) {
    if (!(L->model = open_model(path, err, len))) return false;
    if (want_train && !(L->train = open_train(path, L->model, &L->train_path, err, len))) return false;
    if (want_train &&
        !parse_scalars(L->train, L->train_path, opt != NULL, want_rng, &L->scalars, err, len))
        return false;
    const char *config = tg_safetensors_metadata(L->model, KEY_CONFIG);
    if (want_config && config && !(L->config = strdup(config))) return tg_file_fail(err, len, path, "out of memory");
    if (!(L->slots = make_slots(p, opt, extra, &L->n_param, &L->n_train)))
        return tg_file_fail(err, len, path, "out of memory");
    void *scratch = malloc(max_bytes(L->slots, L->n_param + L->n_train));
    char *report = NULL;
    size_t size = 0;
    FILE *out = scratch ? open_memstream(&report, &size) : NULL;
    if (!out) {
        free(scratch);
        return tg_file_fail(err, len, path, "out of memory");
    }
    int bad = 0, skipped = check_slots(out, L->model, path, L->slots, L->n_param, "the parameters", scratch, &bad);
    if (opt) skipped += check_slots(out, L->train, L->train_path, L->slots + L->n_param, L->n_train,
                                    extra && extra->n ? "the optimizer and extra" : "the optimizer", scratch, &bad);
    free(scratch);
    bool ok = fclose(out) == 0 && bad == 0 && (!strict || skipped == 0);
    if (!ok)
        tg_file_fail(err, len, path, "cannot load the checkpoint (%s):%s",
             strict ? "strict" : "shapes must match even when not strict", report ? report : "");
    else if (skipped)
        tg_file_fail(err, len, path, "loaded, skipping names not on both sides:%s", report);
    else if (err && len)
        err[0] = 0;
    free(report);
    return ok;
}

bool tg_checkpoint_load(const char *path, tg_params *p, tg_optim *opt, tg_rng *rng, int64_t *step,
                        char **config_json, bool strict, char *err, size_t len) {
    return tg_checkpoint_load_extra(path, p, opt, NULL, rng, step, config_json, strict, err, len);
}

bool tg_checkpoint_load_extra(const char *path, tg_params *p, tg_optim *opt, const tg_checkpoint_extra *extra,
                              tg_rng *rng, int64_t *step, char **config_json, bool strict, char *err, size_t len) {
    if (!path || !p) return tg_file_fail(err, len, path, "tg_checkpoint_load: no %s given", path ? "parameters" : "path");
    if (bad_extra(extra) || (extra && extra->n && !opt))
        return tg_file_fail(err, len, path, "tg_checkpoint_load: extra has %d tensors, and %s", extra->n,
                            opt ? "NULL names or tensors" : "no optimizer (extra is read with the optimizer's state)");
    load_state L = {0};
    bool want_train = opt || rng || step;
    bool ok = prepare(&L, path, p, opt, extra, want_train, rng != NULL, config_json != NULL, strict, err, len);
    if (ok) {
        // Validated as a whole, so from here on every part of the load succeeds together.
        char copy_err[600];
        ok = copy_slots(L.model, L.slots, L.n_param, copy_err, sizeof copy_err) &&
             (!opt || copy_slots(L.train, L.slots + L.n_param, L.n_train, copy_err, sizeof copy_err));
        if (!ok) tg_file_fail(err, len, path, "internal error after validation: %s", copy_err);
    }
    if (ok && opt) {
        tg_optim_set_step_count(opt, L.scalars.opt_steps);
        tg_optim_set_lr(opt, L.scalars.lr);
    }
    if (ok && rng) *rng = L.scalars.rng;
    if (ok && step) *step = L.scalars.step;
    if (ok && config_json) *config_json = L.config, L.config = NULL;
    load_state_free(&L);
    return ok;
}

bool tg_checkpoint_read_config(const char *path, char **config_json, bool *has_train_state, char *err, size_t len) {
    if (!path || !config_json) return tg_file_fail(err, len, path, "tg_checkpoint_read_config: no %s given",
                                           path ? "config_json" : "path");
    tg_safetensors *f = open_model(path, err, len);
    if (!f) return false;
    const char *config = tg_safetensors_metadata(f, KEY_CONFIG);
    char *copy = config ? strdup(config) : NULL;
    bool ok = !config || copy;
    if (ok) {
        *config_json = copy;
        if (has_train_state) *has_train_state = tg_safetensors_metadata(f, KEY_TRAIN_FILE) != NULL;
        if (err && len) err[0] = 0;
    } else {
        tg_file_fail(err, len, path, "out of memory");
    }
    tg_safetensors_close(f);
    return ok;
}
