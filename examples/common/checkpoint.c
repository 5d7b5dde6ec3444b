// checkpoint.c: the examples' checkpoints, tg_checkpoint plus vocabularies beside it, saved
// periodically while training so that a killed run can be restarted with --load.
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tg_checkpoint.h"
#include "tg_example.h"

// PATH.NAME, the file of one vocabulary; false when it does not fit.
static bool vocab_path(const char *program, const char *path, const char *name, char *buf, size_t size) {
    if (snprintf(buf, size, "%s.%s", path, name) < (int)size) return true;
    fprintf(stderr, "%s: the checkpoint path %s is too long\n", program, path);
    return false;
}

tg_ex_saver tg_ex_saver_make(const char *program, const tg_ex_common *common, tg_ex_vocab *const *vocabs,
                             const char *const *vocab_names, int n_vocabs) {
    return (tg_ex_saver){.program = program,
                         .path = common->save,
                         .every = common->save_every * 60,
                         .last = tg_ex_now(),
                         .vocabs = vocabs,
                         .vocab_names = vocab_names,
                         .n_vocabs = n_vocabs};
}

// Under mpirun every rank holds the same parameters; rank 0 alone writes them.
bool tg_ex_saver_due(const tg_ex_saver *s) {
    return s->path && s->every > 0 && tg_ex_rank() == 0 && tg_ex_now() - s->last >= s->every;
}

bool tg_ex_saver_save(tg_ex_saver *s, const tg_params *params, const tg_optim *opt, const tg_rng *rng, int64_t step,
                      const char *config) {
    return tg_ex_saver_save_averaged(s, params, opt, NULL, rng, step, config);
}

// --- Averaged checkpoints: the averages in the model file, the trained weights beside ---

// avg's buffers named "online.<parameter>", for the training state (*names malloc'd, each
// name too; NULL names when out of memory).
static tg_checkpoint_extra online_weights(const tg_param_average *avg, char ***names) {
    int n = tg_param_average_size(avg);
    tg_tensor **tensors = malloc(sizeof *tensors * (size_t)(n + 1)); // [n]
    char **owned = calloc((size_t)n + 1, sizeof *owned);             // [n]
    bool ok = tensors && owned;
    for (int i = 0; ok && i < n; i++) {
        tensors[i] = tg_param_average_at(avg, i);
        size_t len = strlen(tensors[i]->name) + sizeof "online.";
        if ((ok = (owned[i] = malloc(len)) != NULL)) snprintf(owned[i], len, "online.%s", tensors[i]->name);
    }
    for (int i = 0; !ok && owned && i < n; i++) free(owned[i]);
    if (!ok) free(owned), free(tensors), owned = NULL, tensors = NULL;
    *names = owned;
    return (tg_checkpoint_extra){n, (const char *const *)owned, tensors};
}

static void online_weights_free(tg_checkpoint_extra *x, char **names) {
    for (int i = 0; names && i < x->n; i++) free(names[i]);
    free(names);
    free((void *)x->tensors);
}

bool tg_ex_saver_save_averaged(tg_ex_saver *s, const tg_params *params, const tg_optim *opt, tg_param_average *avg,
                               const tg_rng *rng, int64_t step, const char *config) {
    if (!s->path || tg_ex_rank() != 0) return true;
    char file[4096], err[1024];
    // The vocabularies first: a checkpoint file never names ids its vocabulary lacks.
    for (int i = 0; i < s->n_vocabs && !s->vocabs_saved; i++) {
        tg_ex_error verr;
        if (!vocab_path(s->program, s->path, s->vocab_names[i], file, sizeof file)) return false;
        if (!tg_ex_vocab_save(s->vocabs[i], file, &verr)) return fprintf(stderr, "%s: %s\n", s->program, verr.msg), false;
    }
    s->vocabs_saved = true;
    s->last = tg_ex_now(); // after a failure too: the next try comes after another period, not every step
    char **names = NULL;
    tg_checkpoint_extra online = {0};
    if (avg && !(online = online_weights(avg, &names)).names)
        return fprintf(stderr, "%s: out of memory saving %s\n", s->program, s->path), false;
    bool was_in = avg && tg_param_average_swapped(avg);
    tg_param_average_use(avg, true); // the model file holds the averages, the training state what trains on
    bool ok = tg_checkpoint_save_extra(s->path, params, opt, avg ? &online : NULL, rng, step, config, err, sizeof err);
    tg_param_average_use(avg, was_in);
    if (avg) online_weights_free(&online, names);
    if (!ok) return fprintf(stderr, "%s: %s\n", s->program, err), false;
    bool tty = isatty(fileno(stdout)); // then a progress bar may be on the line: replace it
    printf("%ssaved %s at step %lld\n", tty ? "\r\033[K" : "", s->path, (long long)step);
    fflush(stdout); // a log read while the run goes on (or after it is killed) shows the save
    return true;
}

bool tg_ex_checkpoint_config(const char *program, const char *path, char **config, bool *has_state,
                             tg_ex_vocab **vocabs, const char *const *vocab_names, int n_vocabs) {
    char err[1024], file[4096];
    *config = NULL;
    if (!tg_checkpoint_read_config(path, config, has_state, err, sizeof err))
        return fprintf(stderr, "%s: %s\n", program, err), false;
    for (int i = 0; i < n_vocabs; i++) vocabs[i] = NULL;
    bool ok = true;
    for (int i = 0; ok && i < n_vocabs; i++) {
        tg_ex_error verr;
        ok = vocab_path(program, path, vocab_names[i], file, sizeof file);
        if (ok && !(vocabs[i] = tg_ex_vocab_load(file, &verr))) ok = false, fprintf(stderr, "%s: %s\n", program, verr.msg);
    }
    if (!ok) {
        for (int i = 0; i < n_vocabs; i++) tg_ex_vocab_free(vocabs[i]), vocabs[i] = NULL;
        free(*config);
        *config = NULL;
    }
    return ok;
}

bool tg_ex_checkpoint_load(const char *program, const char *path, tg_params *params, bool resume, tg_optim *opt,
                           tg_rng *rng, int64_t *step) {
    char err[1024];
    bool ok = resume ? tg_checkpoint_load(path, params, opt, rng, step, NULL, true, err, sizeof err)
                     : tg_checkpoint_load(path, params, NULL, NULL, NULL, NULL, true, err, sizeof err);
    if (!ok) fprintf(stderr, "%s: %s\n", program, err);
    return ok;
}

bool tg_ex_checkpoint_load_averaged(const char *program, const char *path, tg_params *params, tg_optim *opt,
                                    tg_param_average *avg, tg_rng *rng, int64_t *step) {
    char err[1024], **names = NULL;
    tg_checkpoint_extra online = online_weights(avg, &names);
    if (!online.names) return fprintf(stderr, "%s: out of memory loading %s\n", program, path), false;
    tg_param_average_use(avg, true); // the parameters take the model file's averages, avg's buffers the online weights
    bool ok = tg_checkpoint_load_extra(path, params, opt, &online, rng, step, NULL, true, err, sizeof err);
    tg_param_average_swap(avg); // and the other way round: train on the online weights
    if (!ok) fprintf(stderr, "%s: %s\n", program, err);
    online_weights_free(&online, names);
    return ok;
}

char *tg_ex_config_write(const char *program, const tg_ex_config_int *fields, int n_fields) {
    json_t *o = json_object();
    bool ok = o && json_object_set_new(o, "model", json_string(program)) == 0;
    for (int i = 0; ok && i < n_fields; i++)
        ok = json_object_set_new(o, fields[i].name, json_integer(*fields[i].value)) == 0;
    char *text = ok ? json_dumps(o, JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    return text;
}

bool tg_ex_config_read(const char *program, const char *path, const char *config, const tg_ex_config_int *fields,
                       int n_fields) {
    json_error_t jerr;
    json_t *o = json_loads(config, 0, &jerr), *model = json_object_get(o, "model");
    bool ok = json_is_object(o) && json_is_string(model) && !strcmp(json_string_value(model), program);
    for (int i = 0; ok && i < n_fields; i++) {
        json_t *v = json_object_get(o, fields[i].name);
        ok = json_is_integer(v) && json_integer_value(v) > 0 && json_integer_value(v) <= INT_MAX;
        if (ok) *fields[i].value = (int)json_integer_value(v);
    }
    if (!ok) fprintf(stderr, "%s: %s was not written by %s (its config is %s)\n", program, path, program, config);
    json_decref(o);
    return ok;
}

bool tg_ex_save_sizes(tg_ex_saver *saver, const tg_params *params, const tg_optim *opt, const tg_rng *rng,
                      int64_t step, const tg_ex_config_int *fields, int n_fields) {
    char *config = tg_ex_config_write(saver->program, fields, n_fields);
    if (!config) return fprintf(stderr, "%s: out of memory writing the checkpoint's config\n", saver->program), false;
    bool ok = tg_ex_saver_save(saver, params, opt, rng, step, config);
    free(config);
    return ok;
}

bool tg_ex_load_sizes(const char *program, const char *path, const tg_ex_config_int *fields, int n_fields,
                      tg_ex_vocab **vocabs, const char *const *vocab_names, int n_vocabs, bool *has_state) {
    char *config;
    if (!tg_ex_checkpoint_config(program, path, &config, has_state, vocabs, vocab_names, n_vocabs)) return false;
    bool ok = !config || tg_ex_config_read(program, path, config, fields, n_fields);
    free(config);
    return ok;
}
