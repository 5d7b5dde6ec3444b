// graph.c: the graph, an arena plus a tape.
//
// The arena is a list of blocks. Allocation bumps a pointer in the current block and moves
// on to the next one when it is full; reset rewinds to the first block and keeps them all.
// The same sequence of allocations after a reset therefore lands in the same blocks, and
// a training loop with fixed shapes stops calling malloc after its first iteration.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_internal.h"

#define ARENA_ALIGN 64
#define ARENA_MIN_BLOCK (1u << 20) // 1 MiB: small graphs fit in one block
#define ERROR_LEN 512

typedef struct arena_block {
    struct arena_block *next;
    size_t size; // usable bytes after the header
    size_t used;
    _Alignas(ARENA_ALIGN) unsigned char data[];
} arena_block;

// A gradient buffer whose node's backward is done, kept for the next one of its size: the
// gradients of an unrolled RNN then take the memory of a few steps, not of all of them.
typedef struct free_grad {
    struct free_grad *next;
    size_t bytes;
    void *ptr;
} free_grad;

#define FREE_BUCKETS 64

// A value a graph derived from a leaf tensor (a weight's transposed copy), valid while the
// leaf's version is unchanged and until reset.
typedef struct {
    const tg_tensor *key;
    const void *data; // key's data when recorded: a tensor freed and made again at the same address differs here
    uint64_t version;
    tg_tensor *value;
} memo_entry;

#define MEMO_SIZE 64

struct tg_graph {
    arena_block *first, *cur; // blocks in use order; cur is the one being filled
    size_t arena_used;        // bytes handed out since reset
    size_t heap_allocs;       // blocks and tape growth, for tg_graph_get_stats
    free_grad *free_grads[FREE_BUCKETS]; // released gradient buffers, by size
    free_grad *spare;                     // list records not in use
    memo_entry memo[MEMO_SIZE];           // derived values of leaves, see tg_graph_memo
    int n_memo;
    struct tg_weight_grads *weight_grads; // staged weight gradients of the current walk, or NULL
    struct spent_walk *spent_walks;       // backward walks that spent nodes since reset, newest first
    int n_spent_walks;
    tg_node **tape;           // nodes in the order they were recorded
    size_t n_nodes, cap_nodes;
    bool grad_enabled, training;
    bool check_numerics;   // stop at the first op whose output or gradient is not finite
    bool numerics_tripped; // one was reported: the NaN's downstream ops are not reported again
    const char *call_file; // set by tg_here before each op
    int call_line;
    char last_error[ERROR_LEN];
    bool has_error;
};

// --- Arena ---

static arena_block *block_new(tg_graph *g, size_t size) {
    arena_block *b = aligned_alloc(ARENA_ALIGN, (sizeof(arena_block) + size + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN);
    if (!b) return NULL;
    g->heap_allocs++;
    b->next = NULL;
    b->size = size;
    b->used = 0;
    return b;
}

void *tg_arena_alloc(tg_graph *g, size_t bytes) {
    bytes = (bytes + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    if (bytes == 0) bytes = ARENA_ALIGN;
    // Blocks after cur are empty. Move on until one has room (skipping any too small for
    // this request); past the last block, add one twice as large as the last.
    while (g->cur->used + bytes > g->cur->size) {
        if (!g->cur->next) {
            size_t size = g->cur->size < (256u << 20) ? g->cur->size * 2 : g->cur->size;
            if (size < bytes) size = bytes;
            arena_block *b = block_new(g, size);
            if (!b) {
                fprintf(stderr, "tapegrad: out of memory growing a graph's arena by %zu bytes\n", size);
                abort();
            }
            g->cur->next = b;
        }
        g->cur = g->cur->next;
    }
    void *p = g->cur->data + g->cur->used;
    g->cur->used += bytes;
    g->arena_used += bytes;
    return p;
}

void *tg_graph_alloc(tg_graph *g, size_t bytes) {
    void *p = tg_arena_alloc(g, bytes);
    memset(p, 0, bytes);
    return p;
}

// --- Gradient buffers, recycled during a backward walk ---

void *tg_grad_alloc(tg_graph *g, size_t bytes) {
    for (free_grad **at = &g->free_grads[bytes % FREE_BUCKETS]; *at; at = &(*at)->next)
        if ((*at)->bytes == bytes) {
            free_grad *f = *at;
            *at = f->next;
            f->next = g->spare;
            g->spare = f;
            memset(f->ptr, 0, bytes);
            return f->ptr;
        }
    return tg_graph_alloc(g, bytes);
}

void *tg_grad_or_scratch(tg_graph *g, tg_tensor *t) {
    if (t->grad) return t->grad;
    size_t bytes = (size_t)t->numel * tg_dtype_size(t->dtype);
    return memset(tg_arena_alloc(g, bytes), 0, bytes);
}

void tg_grad_release(tg_graph *g, void *ptr, size_t bytes) {
    free_grad *f = g->spare;
    if (f) g->spare = f->next;
    else f = tg_arena_alloc(g, sizeof *f);
    *f = (free_grad){g->free_grads[bytes % FREE_BUCKETS], bytes, ptr};
    g->free_grads[bytes % FREE_BUCKETS] = f;
}

// --- Values derived from leaves ---

tg_tensor *tg_graph_memo(tg_graph *g, const tg_tensor *key) {
    for (int i = 0; i < g->n_memo; i++)
        if (g->memo[i].key == key)
            return g->memo[i].version == key->version && g->memo[i].data == key->data ? g->memo[i].value : NULL;
    return NULL;
}

void tg_graph_memo_put(tg_graph *g, const tg_tensor *key, tg_tensor *value) {
    int i = 0;
    while (i < g->n_memo && g->memo[i].key != key) i++;
    if (i == MEMO_SIZE) return; // full: callers recompute, which is only slower
    if (i == g->n_memo) g->n_memo++;
    g->memo[i] = (memo_entry){key, key->data, key->version, value};
}

struct tg_weight_grads **tg_graph_weight_grads(tg_graph *g) { return &g->weight_grads; }

// A backward walk that spent the nodes it passed through, for the error of a later one.
typedef struct spent_walk {
    struct spent_walk *next;
    const char *file;
    int line, id;
} spent_walk;

int tg_graph_spend_walk(tg_graph *g, const char *file, int line) {
    spent_walk *w = tg_arena_alloc(g, sizeof *w);
    *w = (spent_walk){g->spent_walks, file ? file : "?", line, ++g->n_spent_walks};
    g->spent_walks = w;
    return w->id;
}

void tg_graph_spent_walk_site(const tg_graph *g, int id, const char **file, int *line) {
    const spent_walk *w = g->spent_walks;
    while (w && w->id != id) w = w->next;
    *file = w ? w->file : "?";
    *line = w ? w->line : 0;
}

// --- Lifecycle ---

tg_graph *tg_graph_new(void) {
    tg_graph *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->first = g->cur = block_new(g, ARENA_MIN_BLOCK);
    if (!g->first) {
        free(g);
        return NULL;
    }
    g->heap_allocs++; // the graph itself
    g->grad_enabled = true;
    g->training = true;
    const char *check = getenv("TG_CHECK_NUMERICS");
    g->check_numerics = check && *check && strcmp(check, "0") != 0;
    return g;
}

void tg_graph_free(tg_graph *g) {
    if (!g) return;
    for (arena_block *b = g->first, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    free(g->tape);
    free(g);
}

void tg_graph_reset(tg_graph *g) {
    // O(1) in the number of tensors: a handful of blocks are rewound, nothing is freed.
    for (arena_block *b = g->first; b; b = b->next) b->used = 0;
    g->cur = g->first;
    g->arena_used = 0;
    g->n_nodes = 0;
    memset(g->free_grads, 0, sizeof g->free_grads); // they pointed into the rewound arena
    g->spare = NULL;
    g->n_memo = 0;
    g->weight_grads = NULL;
    g->spent_walks = NULL;
    g->n_spent_walks = 0;
    g->has_error = false;
    g->numerics_tripped = false;
}

void tg_graph_set_grad_enabled(tg_graph *g, bool enabled) { g->grad_enabled = enabled; }
bool tg_graph_grad_enabled(const tg_graph *g) { return g->grad_enabled; }
void tg_graph_set_training(tg_graph *g, bool training) { g->training = training; }
bool tg_graph_training(const tg_graph *g) { return g->training; }
void tg_graph_set_check_numerics(tg_graph *g, bool on) { g->check_numerics = on; }
bool tg_graph_check_numerics(const tg_graph *g) { return g->check_numerics; }
size_t tg_graph_node_count(const tg_graph *g) { return g->n_nodes; }
tg_node *tg_graph_node(const tg_graph *g, size_t i) { return g->tape[i]; }

tg_graph_stats tg_graph_get_stats(const tg_graph *g) {
    tg_graph_stats s = {0, g->arena_used, g->heap_allocs};
    for (const arena_block *b = g->first; b; b = b->next) s.arena_reserved += b->size;
    return s;
}

// --- Tensors in the arena ---

tg_tensor *tg_new_tensor(tg_graph *g, tg_dtype dtype, tg_shape shape) {
    tg_tensor *t = tg_arena_alloc(g, sizeof *t);
    memset(t, 0, sizeof *t);
    t->dtype = dtype;
    t->shape = shape;
    t->numel = tg_shape_numel(shape);
    t->data = tg_arena_alloc(g, (size_t)t->numel * tg_dtype_size(dtype));
    return t;
}

static bool check_new(tg_graph *g, const char *op, tg_shape shape) {
    if (shape.n < 0 || shape.n > TG_MAX_DIMS) {
        tg_fail(g, op, "%d dimensions; tensors have 0 to %d", shape.n, TG_MAX_DIMS);
        return false;
    }
    for (int i = 0; i < shape.n; i++)
        if (shape.d[i] < 0) {
            char s[64];
            tg_fail(g, op, "negative size in shape %s", tg_shape_str(shape, s, sizeof s));
            return false;
        }
    if (!tg_shape_fits(shape)) {
        tg_fail(g, op, "shape %s has too many elements to allocate", TG_SHAPE_STR(shape));
        return false;
    }
    return true;
}

tg_tensor *tg_full(tg_graph *g, tg_dtype dtype, tg_shape shape, double value) {
    if (!check_new(g, "full", shape)) return NULL;
    tg_tensor *t = tg_new_tensor(g, dtype, shape);
    tg_tensor_fill(t, value);
    return t;
}

tg_tensor *tg_zeros(tg_graph *g, tg_dtype dtype, tg_shape shape) { return tg_full(g, dtype, shape, 0.0); }
tg_tensor *tg_ones(tg_graph *g, tg_dtype dtype, tg_shape shape) { return tg_full(g, dtype, shape, 1.0); }

tg_tensor *tg_from_data(tg_graph *g, tg_dtype dtype, tg_shape shape, const void *data) {
    if (!check_new(g, "from_data", shape)) return NULL;
    tg_tensor *t = tg_new_tensor(g, dtype, shape);
    tg_tensor_copy_from(t, data);
    return t;
}

tg_tensor *tg_rand_uniform(tg_graph *g, tg_dtype dtype, tg_shape shape, tg_rng *rng, double lo, double hi) {
    if (!check_new(g, "rand_uniform", shape)) return NULL;
    if (dtype == TG_I32) return tg_fail(g, "rand_uniform", "dtype int32; random tensors are float");
    tg_tensor *t = tg_new_tensor(g, dtype, shape);
    tg_tensor_fill_uniform(t, rng, lo, hi);
    return t;
}

tg_tensor *tg_rand_normal(tg_graph *g, tg_dtype dtype, tg_shape shape, tg_rng *rng, double mean, double std) {
    if (!check_new(g, "rand_normal", shape)) return NULL;
    if (dtype == TG_I32) return tg_fail(g, "rand_normal", "dtype int32; random tensors are float");
    tg_tensor *t = tg_new_tensor(g, dtype, shape);
    tg_tensor_fill_normal(t, rng, mean, std);
    return t;
}

// --- The tape ---

// The first element of values (numel of dtype) that is NaN or infinite, or -1.
static int64_t first_non_finite(tg_dtype dtype, const void *values, int64_t numel) {
    if (dtype == TG_I32 || !values) return -1;
    int64_t bad = -1;
    TG_DISPATCH(dtype, {
        const T *v = values;
        for (int64_t i = 0; i < numel && bad < 0; i++)
            if (!isfinite(v[i])) bad = i;
    });
    return bad;
}

// Names the op, the bad element, the inputs' shapes and the call site.
static void report_non_finite(tg_graph *g, const char *op, const char *file, int line, const char *what,
                              const tg_tensor *t, const void *values, int64_t bad, int n_in, tg_tensor *const *in) {
    char shapes[256] = "", idx[64], s[64];
    size_t at = 0;
    for (int i = 0; i < n_in && at < sizeof shapes; i++) {
        int w = snprintf(shapes + at, sizeof shapes - at, "%s%s", i ? ", " : "",
                         in[i] ? tg_shape_str(in[i]->shape, s, sizeof s) : "NULL");
        at += w > 0 ? (size_t)w : 0;
    }
    double v = t->dtype == TG_F32 ? ((const float *)values)[bad] : ((const double *)values)[bad];
    const char *saved_file = g->call_file;
    int saved_line = g->call_line;
    g->call_file = file; // the message names where the node was made, not the latest call
    g->call_line = line;
    g->numerics_tripped = true;
    tg_fail(g, op, "numerics check: %s holds %g at element %s of %s; inputs %s", what, v,
            tg_index_str(t->shape, bad, idx, sizeof idx), tg_shape_str(t->shape, s, sizeof s), shapes);
    g->call_file = saved_file;
    g->call_line = saved_line;
}

bool tg_check_node_gradients(tg_graph *g, const tg_node *n) {
    if (!g->check_numerics || g->numerics_tripped) return true;
    for (int k = 0; k < n->n_in; k++) {
        const tg_tensor *x = n->in[k];
        if (!x || !x->grad) continue;
        int64_t bad = first_non_finite(x->dtype, x->grad, x->numel);
        if (bad >= 0) {
            char what[64];
            snprintf(what, sizeof what, "backward: the gradient of input %d", k);
            report_non_finite(g, n->op->name, n->file, n->line, what, x, x->grad, bad, n->n_in, n->in);
            return false;
        }
    }
    return true;
}

bool tg_will_record(const tg_graph *g, int n_in, tg_tensor *const *in) {
    if (!g->grad_enabled) return false;
    for (int i = 0; i < n_in; i++)
        if (in[i] && in[i]->requires_grad) return true;
    return false;
}

tg_node *tg_record_array(tg_graph *g, const tg_op *op, tg_tensor *out, int n_in, tg_tensor *const *in) {
    if (g->check_numerics && !g->numerics_tripped) { // every op ends here, recorded or not
        int64_t bad = first_non_finite(out->dtype, out->data, out->numel);
        if (bad >= 0) report_non_finite(g, op->name, g->call_file, g->call_line, "forward: the output", out, out->data,
                                        bad, n_in, in);
    }
    if (!tg_will_record(g, n_in, in)) return NULL; // nothing upstream needs a gradient: no node, no backward

    if (g->n_nodes == g->cap_nodes) {
        size_t cap = g->cap_nodes ? g->cap_nodes * 2 : 256;
        tg_node **tape = realloc(g->tape, cap * sizeof *tape);
        if (!tape) {
            fprintf(stderr, "tapegrad: out of memory growing the tape to %zu nodes\n", cap);
            abort();
        }
        g->tape = tape;
        g->cap_nodes = cap;
        g->heap_allocs++;
    }
    tg_node *n = tg_graph_alloc(g, sizeof *n);
    n->op = op;
    n->out = out;
    n->n_in = n_in;
    n->in = tg_arena_alloc(g, (size_t)n_in * sizeof *n->in);
    memcpy(n->in, in, (size_t)n_in * sizeof *n->in);
    n->file = g->call_file;
    n->line = g->call_line;
    out->requires_grad = true;
    out->node = n;
    g->tape[g->n_nodes++] = n;
    return n;
}

tg_node *tg_record(tg_graph *g, const tg_op *op, tg_tensor *out, int n_in, ...) {
    tg_tensor *in[8];
    if (n_in > 8) return tg_fail(g, op->name, "tg_record takes at most 8 inputs; use tg_record_array");
    va_list ap;
    va_start(ap, n_in);
    for (int i = 0; i < n_in; i++) in[i] = va_arg(ap, tg_tensor *);
    va_end(ap);
    return tg_record_array(g, op, out, n_in, in);
}

// --- Errors ---

static void default_error_handler(const char *message, void *user) {
    (void)user;
    fprintf(stderr, "tapegrad error: %s\n", message);
    abort();
}

// The process's handler and its user pointer change together, under a lock: errors are rare,
// so taking it on the error path costs nothing that matters. A thread's own handler, when
// set, comes first and needs no lock.
static pthread_mutex_t error_lock = PTHREAD_MUTEX_INITIALIZER;
static tg_error_handler error_handler = default_error_handler;
static void *error_user;
static _Thread_local tg_error_handler thread_error_handler;
static _Thread_local void *thread_error_user;

void tg_set_error_handler(tg_error_handler handler, void *user) {
    pthread_mutex_lock(&error_lock);
    error_handler = handler ? handler : default_error_handler;
    error_user = handler ? user : NULL;
    pthread_mutex_unlock(&error_lock);
}

void tg_set_thread_error_handler(tg_error_handler handler, void *user) {
    thread_error_handler = handler;
    thread_error_user = handler ? user : NULL;
}

void tg_error_handler_current(tg_error_handler *handler, void **user) {
    if (thread_error_handler) {
        *handler = thread_error_handler;
        *user = thread_error_user;
        return;
    }
    pthread_mutex_lock(&error_lock);
    *handler = error_handler;
    *user = error_user;
    pthread_mutex_unlock(&error_lock);
}

tg_graph *tg_here(tg_graph *g, const char *file, int line) {
    if (g) {
        g->call_file = file;
        g->call_line = line;
    }
    return g;
}

void tg_graph_call_site(const tg_graph *g, const char **file, int *line) {
    *file = g->call_file;
    *line = g->call_line;
}

const char *tg_graph_last_error(const tg_graph *g) { return g->has_error ? g->last_error : NULL; }

void *tg_fail(tg_graph *g, const char *op, const char *fmt, ...) {
    char msg[ERROR_LEN];
    int n = snprintf(msg, sizeof msg, "tg_%s: ", op);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof msg) n += vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
    va_end(ap);
    if (g && g->call_file && n > 0 && (size_t)n < sizeof msg)
        snprintf(msg + n, sizeof msg - (size_t)n, " (called at %s:%d)", g->call_file, g->call_line);
    if (g) {
        memcpy(g->last_error, msg, sizeof msg);
        g->has_error = true;
    }
    tg_error_handler handler;
    void *user;
    tg_error_handler_current(&handler, &user);
    handler(msg, user);
    return NULL;
}

// --- Checks ---

bool tg_check_float(tg_graph *g, const char *op, int n, ...) {
    va_list ap;
    va_start(ap, n);
    const tg_tensor *first = NULL;
    bool ok = true;
    for (int i = 0; i < n && ok; i++) {
        const tg_tensor *t = va_arg(ap, const tg_tensor *);
        if (!t) {
            tg_fail(g, op, "input %d is NULL (did an earlier op fail?)", i);
            ok = false;
        } else if (t->dtype == TG_I32) {
            tg_fail(g, op, "input %d is int32; this op takes float32 or float64", i);
            ok = false;
        } else if (first && t->dtype != first->dtype) {
            tg_fail(g, op, "inputs mix %s and %s; convert one of them", tg_dtype_name(first->dtype),
                    tg_dtype_name(t->dtype));
            ok = false;
        } else if (!first) {
            first = t;
        }
    }
    va_end(ap);
    return ok;
}

bool tg_check_i32(tg_graph *g, const char *op, const tg_tensor *t, const char *role) {
    if (!t) {
        tg_fail(g, op, "%s is NULL (did an earlier op fail?)", role);
        return false;
    }
    if (t->dtype != TG_I32) {
        tg_fail(g, op, "%s must be int32, got %s", role, tg_dtype_name(t->dtype));
        return false;
    }
    return true;
}

bool tg_check_axis(tg_graph *g, const char *op, tg_shape shape, int extra, int *axis) {
    int ndim = shape.n + extra, a = *axis < 0 ? *axis + ndim : *axis;
    if (a < 0 || a >= ndim) {
        char s[64];
        tg_fail(g, op, "axis %d is out of range for shape %s (axes %d to %d)", *axis,
                tg_shape_str(shape, s, sizeof s), -ndim, ndim - 1);
        return false;
    }
    *axis = a;
    return true;
}
