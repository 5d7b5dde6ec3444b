// checkpoint_seeds.c: tg-fuzz-checkpoint-seeds DIR writes the checkpoint target's seeds into
// DIR (tg_fuzz_checkpoint_seeds in targets.c): real checkpoints that tg_checkpoint_save wrote,
// each packed into one input. scripts/fuzz.sh seeds the target with them on every run.
#include <stdio.h>

#include "tg_fuzz.h"

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    return tg_fuzz_checkpoint_seeds(argv[1]) ? 0 : 1;
}
