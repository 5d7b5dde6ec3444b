// fuzz_main.c: the libFuzzer entry point of one target; fuzz/CMakeLists.txt compiles this
// file once per target with TG_FUZZ_ENTRY set to that target's function in targets.c.
#include <stddef.h>
#include <stdint.h>

#include "tg_fuzz.h"

#ifndef TG_FUZZ_ENTRY
#error "compile with -DTG_FUZZ_ENTRY=tg_fuzz_<target>"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return TG_FUZZ_ENTRY(data, size); }
