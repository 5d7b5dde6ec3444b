// tg_tensor.h: dtypes, shapes, tensors and the seeded random generator.
//
// A tensor is row-major and contiguous: element (i0, i1, ...) of a tensor of shape
// [d0, d1, ...] lives at data[((i0*d1 + i1)*d2 + i2)...]. Up to TG_MAX_DIMS dims.
#ifndef TG_TENSOR_H
#define TG_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TG_MAX_DIMS 4

typedef enum {
    TG_F32, // float: the default for training
    TG_F64, // double: gradient checks and exact comparisons
    TG_I32, // int32_t: token ids, class targets, lengths
} tg_dtype;

// A shape: n dimensions (0 for a scalar), sizes in d[0..n-1].
typedef struct {
    int n;
    int64_t d[TG_MAX_DIMS];
} tg_shape;

static inline tg_shape tg_shape0(void) { tg_shape s = {0, {0}}; return s; }
static inline tg_shape tg_shape1(int64_t a) { tg_shape s = {1, {a}}; return s; }
static inline tg_shape tg_shape2(int64_t a, int64_t b) { tg_shape s = {2, {a, b}}; return s; }
static inline tg_shape tg_shape3(int64_t a, int64_t b, int64_t c) { tg_shape s = {3, {a, b, c}}; return s; }
static inline tg_shape tg_shape4(int64_t a, int64_t b, int64_t c, int64_t d) {
    tg_shape s = {4, {a, b, c, d}};
    return s;
}

struct tg_node;

typedef struct tg_tensor {
    tg_dtype dtype;
    tg_shape shape;
    int64_t numel;        // product of the sizes (1 for a scalar)
    void *data;           // numel values of dtype, row-major
    void *grad;           // same layout as data; NULL when no gradient flows into this tensor
    bool requires_grad;   // a gradient is wanted here (a parameter, or computed from one)
    const char *name;     // a parameter's name, or NULL
    struct tg_node *node; // the tape node that computed it; NULL for leaves and detached tensors
    uint64_t version;     // bumped whenever the library changes data in place (see tg_tensor_touch)
} tg_tensor;

// Size in bytes of one element of dtype.
size_t tg_dtype_size(tg_dtype dtype);
// "float32", "float64" or "int32".
const char *tg_dtype_name(tg_dtype dtype);
// Number of elements of a shape (1 for a scalar).
int64_t tg_shape_numel(tg_shape shape);
// True when both shapes have the same dims and sizes.
bool tg_shape_equal(tg_shape a, tg_shape b);
// Writes "[2, 3, 4]" into buf (at most len bytes) and returns buf.
char *tg_shape_str(tg_shape shape, char *buf, size_t len);

// A heap tensor owned by the caller, zero-filled, with a zeroed gradient when requires_grad.
// Use it for parameters and for inputs a gradient check differentiates.
tg_tensor *tg_tensor_create(tg_dtype dtype, tg_shape shape, bool requires_grad);
// Frees a tensor made by tg_tensor_create (NULL is fine).
void tg_tensor_free(tg_tensor *t);
// Element i (flat, row-major) of a float tensor, as double.
double tg_tensor_get(const tg_tensor *t, int64_t i);
// Sets element i (flat, row-major) of a float or int tensor.
void tg_tensor_set(tg_tensor *t, int64_t i, double value);
// Copies numel values of t's dtype from src into t->data.
void tg_tensor_copy_from(tg_tensor *t, const void *src);
// Marks t's data as changed. The library calls it whenever it writes data in place (setters,
// fills, loads, optimizer steps); call it after writing t->data yourself, so that a graph
// does not reuse what it derived from the old values (a transposed copy of a weight).
void tg_tensor_touch(tg_tensor *t);
// Sets every gradient element to zero (no-op when t has no gradient).
void tg_tensor_zero_grad(tg_tensor *t);

// The seeded generator (xoshiro256**). Its state is plain data, so a checkpoint can save it.
typedef struct {
    uint64_t s[4];
} tg_rng;

// Seeds a generator; the same seed gives the same stream on every machine.
void tg_rng_seed(tg_rng *rng, uint64_t seed);
// The next 64 random bits.
uint64_t tg_rng_next(tg_rng *rng);
// Uniform double in [0, 1).
double tg_rng_uniform(tg_rng *rng);
// Standard normal double (Box-Muller).
double tg_rng_normal(tg_rng *rng);
// Uniform integer in [0, n).
uint64_t tg_rng_below(tg_rng *rng, uint64_t n);
// Fills a float tensor with U(lo, hi).
void tg_tensor_fill_uniform(tg_tensor *t, tg_rng *rng, double lo, double hi);
// Fills a float tensor with N(mean, std^2).
void tg_tensor_fill_normal(tg_tensor *t, tg_rng *rng, double mean, double std);
// Fills any tensor with one value.
void tg_tensor_fill(tg_tensor *t, double value);

#ifdef __cplusplus
}
#endif
#endif
