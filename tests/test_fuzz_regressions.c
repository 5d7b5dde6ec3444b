// test_fuzz_regressions.c: replays every committed fuzz input through the fuzz targets'
// entry points (fuzz/targets.c), with any compiler and without libFuzzer.
//
// tests/data/fuzz/<target>/ holds the inputs that once crashed a reader or broke one of its
// promises (scripts/fuzz.sh finds them), plus a few hand-made edge cases. An entry point
// aborts with a message naming the broken promise, and under ASan/UBSan any memory error
// aborts too; either way Criterion reports the test as crashed. Each input's path is printed
// before it runs, so the output of a failing test names the input.
// The checkpoint target's seed generator is run too, and its fresh seeds replayed.
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_fuzz.h"
#include "tg_test.h"
#include "tg_test_files.h"

#ifndef TG_FUZZ_DATA_DIR
#define TG_FUZZ_DATA_DIR "tests/data/fuzz"
#endif

static const tg_fuzz_target *find_target(const char *name) {
    for (const tg_fuzz_target *t = tg_fuzz_targets; t->name; t++)
        if (!strcmp(t->name, name)) return t;
    return NULL;
}

static int not_hidden(const struct dirent *e) { return e->d_name[0] != '.'; }

// The bytes of a file, in an allocation of exactly its size (so ASan sees any overread).
static uint8_t *slurp(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot open %s", path);
    cr_assert(fseek(f, 0, SEEK_END) == 0);
    long n = ftell(f);
    cr_assert(n >= 0 && fseek(f, 0, SEEK_SET) == 0);
    uint8_t *data = malloc(n ? (size_t)n : 1);
    cr_assert(data);
    cr_assert(fread(data, 1, (size_t)n, f) == (size_t)n, "cannot read %s", path);
    fclose(f);
    *size = (size_t)n;
    return data;
}

// Runs every input in dir through the target's entry point.
static void replay_dir(const char *name, const char *dir) {
    const tg_fuzz_target *t = find_target(name);
    cr_assert(t, "no fuzz target named %s", name);
    struct dirent **entries;
    int n = scandir(dir, &entries, not_hidden, alphasort);
    cr_assert(n > 0, "no inputs in %s", dir);
    for (int i = 0; i < n; i++) {
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, entries[i]->d_name);
        size_t size;
        uint8_t *data = slurp(path, &size);
        fprintf(stderr, "replaying %s (%zu bytes)\n", path, size);
        t->run(data, size);
        free(data);
        free(entries[i]);
    }
    free(entries);
}

// Runs every input in TG_FUZZ_DATA_DIR/name through the target's entry point.
static void replay(const char *name) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s", TG_FUZZ_DATA_DIR, name);
    replay_dir(name, dir);
}

Test(fuzz_regressions, safetensors) { replay("safetensors"); }
Test(fuzz_regressions, params_load) { replay("params_load"); }
Test(fuzz_regressions, checkpoint) { replay("checkpoint"); }
Test(fuzz_regressions, cmudict) { replay("cmudict"); }
Test(fuzz_regressions, brown) { replay("brown"); }
Test(fuzz_regressions, spam) { replay("spam"); }
Test(fuzz_regressions, vocab) { replay("vocab"); }

// The checkpoint seeds scripts/fuzz.sh makes afresh (tg-fuzz-checkpoint-seeds) are real
// checkpoints of today's format: they pass the target too.
static void make_seed_dir(void) { test_scratch_make("tg_fuzz_checkpoint_seeds"); }

Test(fuzz_regressions, checkpoint_seeds, .init = make_seed_dir, .fini = test_scratch_remove) {
    cr_assert(tg_fuzz_checkpoint_seeds(test_scratch_dir), "tg_fuzz_checkpoint_seeds failed");
    replay_dir("checkpoint", test_scratch_dir);
}

// Every folder is a target's (a misspelt one would never be replayed), and every target above
// has a test.
Test(fuzz_regressions, folders_name_targets) {
    struct dirent **entries;
    int n = scandir(TG_FUZZ_DATA_DIR, &entries, not_hidden, alphasort), folders = 0;
    cr_assert(n > 0, "cannot list %s", TG_FUZZ_DATA_DIR);
    for (int i = 0; i < n; i++) {
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", TG_FUZZ_DATA_DIR, entries[i]->d_name);
        DIR *d = opendir(path);
        if (d) {
            closedir(d);
            folders++;
            cr_expect(find_target(entries[i]->d_name), "%s is not the folder of a fuzz target", path);
        }
        free(entries[i]);
    }
    free(entries);
    int targets = 0;
    while (tg_fuzz_targets[targets].name) targets++;
    cr_expect_eq(targets, 7, "a new fuzz target needs its Test() here and a folder of inputs");
    cr_expect_eq(folders, targets, "%d folders for %d targets", folders, targets);
}
