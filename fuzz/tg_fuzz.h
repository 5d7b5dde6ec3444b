// tg_fuzz.h: the fuzzed entry points, shared by the libFuzzer targets (fuzz_main.c) and by
// the regression test that replays every committed input (tests/test_fuzz_regressions.c).
//
// Each entry point writes the bytes to an in-memory file (memfd) and runs one reader on its
// path, exactly as a program would open a file, then checks what the reader promises: a bad
// file is refused with a message, a good one is consistent (sizes, offsets, round trips).
// A broken promise prints what broke and aborts, so libFuzzer and Criterion both see a crash.
#ifndef TG_FUZZ_H
#define TG_FUZZ_H

#include <stddef.h>
#include <stdint.h>

// One fuzz target: the name is also its folder under tests/data/fuzz/.
typedef struct {
    const char *name;
    int (*run)(const uint8_t *data, size_t size); // always returns 0, as libFuzzer wants
} tg_fuzz_target;

int tg_fuzz_safetensors(const uint8_t *data, size_t size); // tg_safetensors_open and its queries
int tg_fuzz_params_load(const uint8_t *data, size_t size); // tg_params_load, strict and not
int tg_fuzz_cmudict(const uint8_t *data, size_t size);     // tg_ex_cmudict_read
int tg_fuzz_brown(const uint8_t *data, size_t size);       // tg_ex_brown_read, tg_ex_sentence_text
int tg_fuzz_spam(const uint8_t *data, size_t size);        // tg_ex_spam_read
int tg_fuzz_vocab(const uint8_t *data, size_t size);       // tg_ex_vocab_load, save, load again

// Every target, in a table ending with {NULL, NULL}.
extern const tg_fuzz_target tg_fuzz_targets[];

#endif
