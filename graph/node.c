// node.c: the saved state of a tape node (see TG_SAVE and TG_STATE in tg_internal.h).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_internal.h"

void tg_node_save(tg_graph *g, tg_node *n, const void *state, size_t size) {
    if (!n) return;
    n->state = tg_arena_alloc(g, size);
    memcpy(n->state, state, size);
    n->state_size = size;
}

const void *tg_node_state(const tg_node *n, size_t size) {
    if (n->state_size != size) { // a library bug, not a user's: no handler can make it right
        fprintf(stderr, "tapegrad: internal error: op %s's backward reads a state of %zu bytes; it saved %zu\n",
                n->op->name, size, n->state_size);
        abort();
    }
    return n->state;
}
