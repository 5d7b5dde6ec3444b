// tg_fuzz.h: the fuzzed entry points, shared by the libFuzzer targets (fuzz_main.c) and by
// the regression test that replays every committed input (tests/test_fuzz_regressions.c).
//
// Each entry point writes the bytes to an in-memory file (memfd; a checkpoint's two files and
// the vocabulary's saved copy go to a private temporary directory, tg_fuzz_dir) and runs one
// reader on its path, exactly as a program would open a file, then checks what the reader
// promises: a bad file is refused with a message, a good one is consistent (sizes, offsets,
// round trips).
// A broken promise prints what broke and aborts, so libFuzzer and Criterion both see a crash.
#ifndef TG_FUZZ_H
#define TG_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// One fuzz target: the name is also its folder under tests/data/fuzz/.
typedef struct {
    const char *name;
    int (*run)(const uint8_t *data, size_t size); // always returns 0, as libFuzzer wants
} tg_fuzz_target;

int tg_fuzz_safetensors(const uint8_t *data, size_t size); // tg_safetensors_open and its queries
int tg_fuzz_params_load(const uint8_t *data, size_t size); // tg_params_load, strict and not
int tg_fuzz_checkpoint(const uint8_t *data, size_t size);  // tg_checkpoint_read_config, tg_checkpoint_load
int tg_fuzz_cmudict(const uint8_t *data, size_t size);     // tg_ex_cmudict_read, the file as its own alternates
int tg_fuzz_brown(const uint8_t *data, size_t size);       // tg_ex_brown_read, tg_ex_sentence_text
int tg_fuzz_spam(const uint8_t *data, size_t size);        // tg_ex_spam_read
int tg_fuzz_vocab(const uint8_t *data, size_t size);       // tg_ex_vocab_load, save, load again

// Writes the checkpoint target's seeds into dir: real checkpoints of its parameters, saved
// with and without an Adam optimizer, generator and config, packed as that target reads them.
bool tg_fuzz_checkpoint_seeds(const char *dir);

// Room for the path tg_fuzz_dir returns, with its NUL.
#define TG_FUZZ_DIR_MAX 1024
// This process's private directory for files a target must write as real files (a
// checkpoint's pair, a saved vocabulary): made on first use, removed at exit.
const char *tg_fuzz_dir(void);

// Every target, in a table ending with {NULL, NULL}.
extern const tg_fuzz_target tg_fuzz_targets[];

#endif
