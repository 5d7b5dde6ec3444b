// tensor.c: dtypes, shapes, heap tensors and the seeded generator.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_internal.h"

size_t tg_dtype_size(tg_dtype dtype) { return dtype == TG_F64 ? 8 : 4; }

const char *tg_dtype_name(tg_dtype dtype) {
    switch (dtype) {
    case TG_F32: return "float32";
    case TG_F64: return "float64";
    case TG_I32: return "int32";
    }
    return "unknown";
}

bool tg_shape_fits(tg_shape shape) {
    int64_t count = 1; // its byte count must fit in a size_t, and the product never overflow
    for (int i = 0; i < shape.n; i++) {
        if (shape.d[i] && count > (int64_t)(SIZE_MAX / 8) / shape.d[i]) return false;
        count *= shape.d[i];
    }
    return true;
}

int64_t tg_shape_numel(tg_shape shape) {
    int64_t n = 1;
    for (int i = 0; i < shape.n; i++) n *= shape.d[i];
    return n;
}

bool tg_shape_equal(tg_shape a, tg_shape b) {
    if (a.n != b.n) return false;
    for (int i = 0; i < a.n; i++)
        if (a.d[i] != b.d[i]) return false;
    return true;
}

char *tg_shape_str(tg_shape shape, char *buf, size_t len) {
    size_t at = 0;
    int w = snprintf(buf, len, "[");
    at = w > 0 ? (size_t)w : 0;
    for (int i = 0; i < shape.n && at < len; i++) {
        w = snprintf(buf + at, len - at, i ? ", %lld" : "%lld", (long long)shape.d[i]);
        at += w > 0 ? (size_t)w : 0;
    }
    if (at < len) snprintf(buf + at, len - at, "]");
    return buf;
}

char *tg_index_str(tg_shape shape, int64_t i, char *buf, size_t len) {
    tg_shape idx = shape;
    for (int d = shape.n - 1; d >= 0; d--) {
        idx.d[d] = shape.d[d] ? i % shape.d[d] : 0;
        i = shape.d[d] ? i / shape.d[d] : 0;
    }
    return tg_shape_str(idx, buf, len);
}

tg_axis_split tg_split_at(tg_shape shape, int axis) {
    tg_axis_split p = {1, shape.n ? shape.d[axis] : 1, 1};
    for (int d = 0; d < axis; d++) p.outer *= shape.d[d];
    for (int d = axis + 1; d < shape.n; d++) p.inner *= shape.d[d];
    return p;
}

// --- Heap tensors ---

tg_tensor *tg_tensor_create(tg_dtype dtype, tg_shape shape, bool requires_grad) {
    if (shape.n < 0 || shape.n > TG_MAX_DIMS) return tg_fail(NULL, "tensor_create", "%d dimensions", shape.n);
    for (int i = 0; i < shape.n; i++)
        if (shape.d[i] < 0) return tg_fail(NULL, "tensor_create", "negative size %lld", (long long)shape.d[i]);
    if (requires_grad && dtype == TG_I32)
        return tg_fail(NULL, "tensor_create", "an int32 tensor cannot require a gradient");
    if (!tg_shape_fits(shape))
        return tg_fail(NULL, "tensor_create", "shape %s has too many elements to allocate", TG_SHAPE_STR(shape));
    tg_tensor *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->dtype = dtype;
    t->shape = shape;
    t->numel = tg_shape_numel(shape);
    size_t bytes = (size_t)t->numel * tg_dtype_size(dtype);
    t->data = calloc(bytes ? bytes : 1, 1);
    t->grad = requires_grad ? calloc(bytes ? bytes : 1, 1) : NULL;
    if (!t->data || (requires_grad && !t->grad)) {
        tg_tensor_free(t);
        return NULL;
    }
    t->requires_grad = requires_grad;
    return t;
}

void tg_tensor_free(tg_tensor *t) {
    if (!t) return;
    free(t->data);
    free(t->grad);
    free(t);
}

double tg_tensor_get(const tg_tensor *t, int64_t i) {
    switch (t->dtype) {
    case TG_F32: return ((const float *)t->data)[i];
    case TG_F64: return ((const double *)t->data)[i];
    case TG_I32: return ((const int32_t *)t->data)[i];
    }
    return 0;
}

void tg_tensor_touch(tg_tensor *t) { t->version++; }

void tg_tensor_set(tg_tensor *t, int64_t i, double value) {
    t->version++;
    switch (t->dtype) {
    case TG_F32: ((float *)t->data)[i] = (float)value; break;
    case TG_F64: ((double *)t->data)[i] = value; break;
    case TG_I32: ((int32_t *)t->data)[i] = (int32_t)value; break;
    }
}

void tg_tensor_copy_from(tg_tensor *t, const void *src) {
    t->version++;
    if (t->numel) memcpy(t->data, src, (size_t)t->numel * tg_dtype_size(t->dtype));
}

void tg_tensor_zero_grad(tg_tensor *t) {
    if (t->grad && t->numel) memset(t->grad, 0, (size_t)t->numel * tg_dtype_size(t->dtype));
}

void tg_tensor_fill(tg_tensor *t, double value) {
    for (int64_t i = 0; i < t->numel; i++) tg_tensor_set(t, i, value);
}

void tg_tensor_fill_uniform(tg_tensor *t, tg_rng *rng, double lo, double hi) {
    for (int64_t i = 0; i < t->numel; i++) tg_tensor_set(t, i, lo + (hi - lo) * tg_rng_uniform(rng));
}

void tg_tensor_fill_normal(tg_tensor *t, tg_rng *rng, double mean, double std) {
    for (int64_t i = 0; i < t->numel; i++) tg_tensor_set(t, i, mean + std * tg_rng_normal(rng));
}

// --- xoshiro256** (Blackman and Vigna), seeded through splitmix64 ---

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void tg_rng_seed(tg_rng *rng, uint64_t seed) {
    for (int i = 0; i < 4; i++) rng->s[i] = splitmix64(&seed);
}

uint64_t tg_rng_next(tg_rng *rng) { return tg_rng_step(rng->s); }

double tg_rng_uniform(tg_rng *rng) { return tg_rng_bits_to_uniform(tg_rng_step(rng->s)); }

double tg_rng_normal(tg_rng *rng) {
    // Box-Muller; 1 - u keeps the log's argument in (0, 1].
    double u = 1.0 - tg_rng_uniform(rng), v = tg_rng_uniform(rng);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

uint64_t tg_rng_below(tg_rng *rng, uint64_t n) {
    // Rejection keeps the result unbiased for any n.
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = tg_rng_next(rng);
    while (x >= limit);
    return x % n;
}
