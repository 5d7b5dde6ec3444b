// tg_checkpoint.h: checkpoints that resume training exactly and trade weights with PyTorch.
//
// A checkpoint at PATH is a pair of safetensors files:
//
//   PATH                                   the model: exactly the parameters, under their
//                                          state_dict names, so PyTorch loads it with
//                                          load_state_dict(sd, strict=True); metadata
//                                          "format_version" (TG_CHECKPOINT_FORMAT), "config"
//                                          (the caller's JSON, opaque here), the pair id and
//                                          the name of the training-state file, and the
//                                          writer's XXH3-64 data checksum.
//   PATH.train-<id>.safetensors            the training state: the optimizer's buffers (named
//                                          as tg_optim_state_at names them), its step count
//                                          and learning rate, the generator's state and the
//                                          program's step counter, with the same id.
//
// The id is a fresh random 64-bit number per save, so a training-state file from another
// save is refused. A save writes the new training-state file under its new name first, then
// replaces PATH, then deletes what earlier saves to PATH left behind (the previous
// training-state file; temporary files of writers that no longer run). Each step is an atomic
// write (temporary file, fsync, rename, directory fsync), so a crash at any moment leaves
// PATH naming a training-state file that exists and matches it: the previous checkpoint or
// the new one, whole, and never a mix. Files a crash can leave, all recognised and removed
// by the next save to PATH and never read by a load:
//   PATH.tmp.<pid>                          a model file being written
//   PATH.train-<id>.safetensors.tmp.<pid>   a training-state file being written
//   PATH.train-<id>.safetensors             a training-state file PATH does not name
// One process at a time may save to a given PATH. Copy both files to move a checkpoint;
// the model file alone still loads as weights.
#ifndef TG_CHECKPOINT_H
#define TG_CHECKPOINT_H

#include "tg_optim.h"
#include "tg_params.h"
#include "tg_tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

// "format_version" of the model file and of the training-state file.
#define TG_CHECKPOINT_FORMAT "tapegrad-checkpoint-1"
#define TG_CHECKPOINT_TRAIN_FORMAT "tapegrad-train-state-1"

// Saves p (and, when not NULL, the optimizer's state and the generator's state), the
// program's step counter and config_json (nullable, stored as given) as described above.
// On failure the previous checkpoint at path is untouched; err (len bytes) says why.
bool tg_checkpoint_save(const char *path, const tg_params *p, const tg_optim *opt, const tg_rng *rng, int64_t step,
                        const char *config_json, char *err, size_t len);

// Loads a checkpoint into p, and into opt, rng, *step and *config_json (malloc'd; NULL when
// the file has none) for each that is not NULL. Both files are validated (checksums, pair
// id, every name, shape and dtype) before anything changes; problems are reported together
// in err. strict: as tg_params_load, for the parameters and the optimizer's buffers alike
// (names on one side only are skipped and listed in err when not strict; shapes must always
// match). A weights-only file (written by PyTorch or tg_params_save) loads when opt, rng and
// step are NULL, and fails with "no training state" otherwise.
bool tg_checkpoint_load(const char *path, tg_params *p, tg_optim *opt, tg_rng *rng, int64_t *step,
                        char **config_json, bool strict, char *err, size_t len);

// Named tensors a program keeps in the training-state file beside the optimizer's buffers:
// what training needs to resume and the model file is not (the trained weights behind a
// parameter average whose values the model file holds, say). Names other than "optim.*".
typedef struct {
    int n;
    const char *const *names;  // [n]
    tg_tensor *const *tensors; // [n]
} tg_checkpoint_extra;

// tg_checkpoint_save with extra's tensors in the training-state file (extra NULL: none).
bool tg_checkpoint_save_extra(const char *path, const tg_params *p, const tg_optim *opt,
                              const tg_checkpoint_extra *extra, const tg_rng *rng, int64_t step,
                              const char *config_json, char *err, size_t len);
// tg_checkpoint_load that also reads extra's tensors from the training-state file, checked
// with the optimizer's buffers as one set (so extra, when not empty, needs opt).
bool tg_checkpoint_load_extra(const char *path, tg_params *p, tg_optim *opt, const tg_checkpoint_extra *extra,
                              tg_rng *rng, int64_t *step, char **config_json, bool strict, char *err, size_t len);

// Reads only what a program needs before it builds the model: *config_json (malloc'd; NULL
// when the file has none) and, when has_train_state is not NULL, whether the file names a
// training-state file. Validates the model file as a load would.
bool tg_checkpoint_read_config(const char *path, char **config_json, bool *has_train_state, char *err, size_t len);

#ifdef __cplusplus
}
#endif
#endif
