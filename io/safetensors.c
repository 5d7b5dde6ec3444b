// safetensors.c: safetensors files: a reader that validates everything before trusting it,
// an atomic writer, and PyTorch-style state_dict save/load for a parameter collection.
//
// The reader keeps the whole file in memory and the parsed header alive, so tensor names
// and metadata strings point into jansson's objects and tensor data into the file buffer.
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "tg_internal.h" // tg_file_fail
#include "tg_safetensors.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian, and this file copies it as host-order bytes"
#endif

#define MAX_HEADER ((uint64_t)100 << 20) // a longer header is damage, not a model
#define METADATA_KEY "__metadata__"
#define DIMS_STR 192 // room for "[d0, ..., d7]" with 20-digit sizes

// Every dtype of the format, with its element size: the reader validates files of any of
// them, though read_into converts only a few.
static const struct {
    const char *name;
    size_t size;
} dtypes[] = {
    {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"U16", 2}, {"I16", 2}, {"F16", 2}, {"BF16", 2},
    {"U32", 4},  {"I32", 4}, {"F32", 4}, {"U64", 8}, {"I64", 8}, {"F64", 8},
};
#define N_DTYPES (int)(sizeof dtypes / sizeof dtypes[0])

typedef struct {
    const char *name; // a key of the parsed header
    int dtype;        // index into dtypes
    int ndim;
    int64_t shape[TG_SAFETENSORS_MAX_DIMS];
    int64_t numel;
    size_t begin, end; // byte offsets into the data section
    int order;         // position in the header: breaks ties between empty tensors stably
} entry;

struct tg_safetensors {
    char *path;
    json_t *root;       // the header
    json_t *meta;       // its "__metadata__" object, or NULL
    unsigned char *buf; // the file after its length field, placed so the data is 64-byte aligned
    const unsigned char *data;
    size_t data_size;
    entry *entries; // sorted by data offsets
    int n;
};

// --- Helpers shared by reading and writing ---

bool tg_file_fail(char *err, size_t len, const char *path, const char *fmt, ...) {
    if (!err || !len) return false;
    int at = path ? snprintf(err, len, "%s: ", path) : 0;
    if (at < 0 || (size_t)at >= len) return false;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + at, len - (size_t)at, fmt, ap);
    va_end(ap);
    return false;
}

// "[4, 8]" for n sizes, into buf (DIMS_STR bytes).
static const char *dims_str(const int64_t *d, int n, char *buf) {
    size_t at = (size_t)snprintf(buf, DIMS_STR, "[");
    for (int i = 0; i < n && at < DIMS_STR; i++)
        at += (size_t)snprintf(buf + at, DIMS_STR - at, i ? ", %lld" : "%lld", (long long)d[i]);
    if (at < DIMS_STR) snprintf(buf + at, DIMS_STR - at, "]");
    return buf;
}

// Number of elements of n sizes, or -1 when a size is negative or numel * elem bytes does not
// fit in int64_t and size_t. An empty dim makes any product valid: it holds no bytes.
static int64_t checked_numel(const int64_t *d, int n, size_t elem) {
    for (int i = 0; i < n; i++) {
        if (d[i] < 0) return -1;
        if (d[i] == 0) return 0;
    }
    int64_t limit = (int64_t)((uint64_t)INT64_MAX < SIZE_MAX ? (uint64_t)INT64_MAX : SIZE_MAX) / (int64_t)elem;
    int64_t numel = 1;
    for (int i = 0; i < n; i++) {
        if (numel > limit / d[i]) return -1;
        numel *= d[i];
    }
    return numel;
}

static int dtype_index(const char *name) {
    for (int i = 0; i < N_DTYPES; i++)
        if (strcmp(dtypes[i].name, name) == 0) return i;
    return -1;
}

// The file's name for a tapegrad dtype, or NULL for a value outside the enum.
static const char *file_dtype(tg_dtype dtype) {
    switch (dtype) {
    case TG_F32: return "F32";
    case TG_F64: return "F64";
    case TG_I32: return "I32";
    }
    return NULL;
}

static void hex64(uint64_t x, char out[17]) { snprintf(out, 17, "%016llx", (unsigned long long)x); }

// --- Reading: the file into memory ---

// Reads the length field and the rest of fp into f->buf; *header gets the header text.
static bool read_contents(tg_safetensors *f, FILE *fp, const char **header, size_t *header_len, char *err, size_t len) {
    struct stat st;
    if (fstat(fileno(fp), &st) != 0) return tg_file_fail(err, len, f->path, "cannot stat: %s", strerror(errno));
    if (!S_ISREG(st.st_mode)) return tg_file_fail(err, len, f->path, "not a regular file");
    uint64_t size = (uint64_t)st.st_size;
    if (size < 8)
        return tg_file_fail(err, len, f->path, "file is %llu bytes, too short for the 8-byte header length",
                    (unsigned long long)size);
    unsigned char le[8];
    if (fread(le, 1, 8, fp) != 8) return tg_file_fail(err, len, f->path, "cannot read the header length");
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | le[i];
    if (n > MAX_HEADER)
        return tg_file_fail(err, len, f->path, "header length %llu is over the 100 MB limit (damaged file?)",
                    (unsigned long long)n);
    if (n > size - 8)
        return tg_file_fail(err, len, f->path, "header length %llu is more than the %llu bytes that follow it",
                    (unsigned long long)n, (unsigned long long)(size - 8));
    if (size - 8 > SIZE_MAX - 128) return tg_file_fail(err, len, f->path, "file too large for memory");
    size_t rest = (size_t)(size - 8), pad = (size_t)((64 - n % 64) % 64);
    f->buf = aligned_alloc(64, (pad + rest + 64) / 64 * 64);
    if (!f->buf) return tg_file_fail(err, len, f->path, "out of memory reading %zu bytes", rest);
    if (fread(f->buf + pad, 1, rest, fp) != rest)
        return tg_file_fail(err, len, f->path, "file ended before its %llu bytes (is it being written?)",
                    (unsigned long long)size);
    *header = (const char *)f->buf + pad;
    *header_len = (size_t)n;
    f->data = f->buf + pad + n;
    f->data_size = rest - (size_t)n;
    return true;
}

static bool read_file(tg_safetensors *f, const char **header, size_t *header_len, char *err, size_t len) {
    FILE *fp = fopen(f->path, "rb");
    if (!fp) return tg_file_fail(err, len, f->path, "cannot open: %s", strerror(errno));
    bool ok = read_contents(f, fp, header, header_len, err, len);
    fclose(fp);
    return ok;
}

// --- Reading: validating the header ---

static const char *json_kind(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "unknown";
}

static bool parse_dtype(const tg_safetensors *f, entry *e, json_t *v, char *err, size_t len) {
    json_t *d = json_object_get(v, "dtype");
    if (!json_is_string(d))
        return tg_file_fail(err, len, f->path, "tensor \"%s\": \"dtype\" is missing or not a string", e->name);
    e->dtype = dtype_index(json_string_value(d));
    if (e->dtype < 0)
        return tg_file_fail(err, len, f->path, "tensor \"%s\": unknown dtype \"%s\"", e->name, json_string_value(d));
    return true;
}

static bool parse_shape(const tg_safetensors *f, entry *e, json_t *v, char *err, size_t len) {
    json_t *s = json_object_get(v, "shape");
    if (!json_is_array(s))
        return tg_file_fail(err, len, f->path, "tensor \"%s\": \"shape\" is missing or not an array", e->name);
    size_t ndim = json_array_size(s);
    if (ndim > TG_SAFETENSORS_MAX_DIMS)
        return tg_file_fail(err, len, f->path, "tensor \"%s\": shape has %zu dims, more than %d", e->name, ndim,
                    TG_SAFETENSORS_MAX_DIMS);
    e->ndim = (int)ndim;
    for (size_t i = 0; i < ndim; i++) {
        json_t *x = json_array_get(s, i);
        if (!json_is_integer(x))
            return tg_file_fail(err, len, f->path, "tensor \"%s\": shape[%zu] is %s, not an integer", e->name, i, json_kind(x));
        e->shape[i] = json_integer_value(x);
    }
    char a[DIMS_STR];
    for (int i = 0; i < e->ndim; i++)
        if (e->shape[i] < 0)
            return tg_file_fail(err, len, f->path, "tensor \"%s\": shape %s has a negative size", e->name,
                        dims_str(e->shape, e->ndim, a));
    e->numel = checked_numel(e->shape, e->ndim, dtypes[e->dtype].size);
    if (e->numel < 0)
        return tg_file_fail(err, len, f->path, "tensor \"%s\": shape %s of %s is too large: its byte size overflows", e->name,
                    dims_str(e->shape, e->ndim, a), dtypes[e->dtype].name);
    return true;
}

static bool parse_offsets(const tg_safetensors *f, entry *e, json_t *v, char *err, size_t len) {
    json_t *o = json_object_get(v, "data_offsets");
    if (!json_is_array(o) || json_array_size(o) != 2 || !json_is_integer(json_array_get(o, 0)) ||
        !json_is_integer(json_array_get(o, 1)))
        return tg_file_fail(err, len, f->path, "tensor \"%s\": \"data_offsets\" is missing or not two integers", e->name);
    long long b = json_integer_value(json_array_get(o, 0)), end = json_integer_value(json_array_get(o, 1));
    if (b < 0 || end < b)
        return tg_file_fail(err, len, f->path, "tensor \"%s\": data_offsets [%lld, %lld] are not 0 <= begin <= end", e->name, b,
                    end);
    if ((unsigned long long)end > f->data_size)
        return tg_file_fail(err, len, f->path, "tensor \"%s\": data_offsets [%lld, %lld] reach past the %zu-byte data section",
                    e->name, b, end, f->data_size);
    e->begin = (size_t)b;
    e->end = (size_t)end;
    uint64_t need = (uint64_t)e->numel * dtypes[e->dtype].size;
    char a[DIMS_STR];
    if (e->end - e->begin != need)
        return tg_file_fail(err, len, f->path, "tensor \"%s\": data_offsets [%lld, %lld] hold %lld bytes, but %s %s needs %llu",
                    e->name, b, end, end - b, dtypes[e->dtype].name, dims_str(e->shape, e->ndim, a),
                    (unsigned long long)need);
    return true;
}

static bool parse_entry(const tg_safetensors *f, entry *e, json_t *v, char *err, size_t len) {
    if (!json_is_object(v))
        return tg_file_fail(err, len, f->path, "tensor \"%s\": entry is %s, not an object", e->name, json_kind(v));
    const char *key;
    json_t *field;
    // An unknown field is most likely a misspelt known one, so it is an error, not ignored.
    json_object_foreach(v, key, field) {
        if (strcmp(key, "dtype") && strcmp(key, "shape") && strcmp(key, "data_offsets"))
            return tg_file_fail(err, len, f->path, "tensor \"%s\": unknown field \"%s\"", e->name, key);
    }
    return parse_dtype(f, e, v, err, len) && parse_shape(f, e, v, err, len) && parse_offsets(f, e, v, err, len);
}

static bool parse_metadata(tg_safetensors *f, json_t *m, char *err, size_t len) {
    if (!json_is_object(m)) return tg_file_fail(err, len, f->path, "\"%s\" is %s, not an object", METADATA_KEY, json_kind(m));
    const char *key;
    json_t *v;
    json_object_foreach(m, key, v) {
        if (!json_is_string(v))
            return tg_file_fail(err, len, f->path, "%s \"%s\" is %s, not a string", METADATA_KEY, key, json_kind(v));
    }
    f->meta = m;
    return true;
}

static bool parse_header(tg_safetensors *f, const char *text, size_t n, char *err, size_t len) {
    json_error_t je;
    f->root = json_loadb(text, n, JSON_REJECT_DUPLICATES, &je);
    if (!f->root)
        return tg_file_fail(err, len, f->path, "header is not valid JSON: %s (line %d, column %d)", je.text, je.line,
                    je.column);
    if (!json_is_object(f->root)) return tg_file_fail(err, len, f->path, "header is %s, not an object", json_kind(f->root));
    f->entries = calloc(json_object_size(f->root) + 1, sizeof *f->entries);
    if (!f->entries) return tg_file_fail(err, len, f->path, "out of memory");
    const char *key;
    json_t *v;
    json_object_foreach(f->root, key, v) {
        if (strcmp(key, METADATA_KEY) == 0) {
            if (!parse_metadata(f, v, err, len)) return false;
            continue;
        }
        entry *e = &f->entries[f->n];
        e->name = key;
        e->order = f->n;
        if (!parse_entry(f, e, v, err, len)) return false;
        f->n++;
    }
    return true;
}

static int by_offset(const void *pa, const void *pb) {
    const entry *a = pa, *b = pb;
    if (a->begin != b->begin) return a->begin < b->begin ? -1 : 1;
    if (a->end != b->end) return a->end < b->end ? -1 : 1;
    return a->order - b->order;
}

// Sorts the tensors by offset and checks they tile the data section exactly: any gap or
// overlap means the header and the data disagree.
static bool check_layout(tg_safetensors *f, char *err, size_t len) {
    qsort(f->entries, (size_t)f->n, sizeof *f->entries, by_offset);
    size_t at = 0;
    const entry *prev = NULL;
    for (int i = 0; i < f->n; i++) {
        const entry *e = &f->entries[i];
        if (e->begin > at)
            return tg_file_fail(err, len, f->path,
                        "gap in the data section: bytes [%zu, %zu) before tensor \"%s\" belong to no tensor", at,
                        e->begin, e->name);
        if (e->begin < at)
            return tg_file_fail(err, len, f->path,
                        "tensor \"%s\" at data_offsets [%zu, %zu] overlaps tensor \"%s\" at [%zu, %zu]", e->name,
                        e->begin, e->end, prev->name, prev->begin, prev->end);
        at = e->end;
        prev = e;
    }
    if (at != f->data_size)
        return tg_file_fail(err, len, f->path, "data section is %zu bytes, but the tensors cover only %zu", f->data_size, at);
    return true;
}

static bool check_checksum(const tg_safetensors *f, char *err, size_t len) {
    const char *want = tg_safetensors_metadata(f, TG_SAFETENSORS_CHECKSUM_KEY);
    if (!want) return true;
    if (strlen(want) != 16 || strspn(want, "0123456789abcdef") != 16)
        return tg_file_fail(err, len, f->path, "%s \"%s\" is not 16 lowercase hex digits", TG_SAFETENSORS_CHECKSUM_KEY, want);
    char got[17];
    hex64(XXH3_64bits(f->data, f->data_size), got);
    if (strcmp(got, want) != 0)
        return tg_file_fail(err, len, f->path, "data is damaged: its XXH3-64 is %s, but %s says %s", got,
                    TG_SAFETENSORS_CHECKSUM_KEY, want);
    return true;
}

tg_safetensors *tg_safetensors_open(const char *path, char *err, size_t len) {
    if (!path) return tg_file_fail(err, len, NULL, "tg_safetensors_open: no path given"), NULL;
    tg_safetensors *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        return tg_file_fail(err, len, path, "out of memory"), NULL;
    }
    const char *header = NULL;
    size_t header_len = 0;
    if (!read_file(f, &header, &header_len, err, len) || !parse_header(f, header, header_len, err, len) ||
        !check_layout(f, err, len) || !check_checksum(f, err, len)) {
        tg_safetensors_close(f);
        return NULL;
    }
    return f;
}

void tg_safetensors_close(tg_safetensors *f) {
    if (!f) return;
    json_decref(f->root);
    free(f->entries);
    free(f->buf);
    free(f->path);
    free(f);
}

// --- Reading: queries ---

int tg_safetensors_count(const tg_safetensors *f) { return f ? f->n : 0; }

const char *tg_safetensors_name(const tg_safetensors *f, int i) {
    return f && i >= 0 && i < f->n ? f->entries[i].name : NULL;
}

// A linear scan: files hold at most a few thousand tensors, each looked up once.
static const entry *find_entry(const tg_safetensors *f, const char *name) {
    for (int i = 0; f && name && i < f->n; i++)
        if (strcmp(f->entries[i].name, name) == 0) return &f->entries[i];
    return NULL;
}

bool tg_safetensors_find(const tg_safetensors *f, const char *name, tg_safetensors_tensor *info) {
    const entry *e = find_entry(f, name);
    if (!e) return false;
    if (info) {
        memset(info, 0, sizeof *info);
        info->dtype = dtypes[e->dtype].name;
        info->ndim = e->ndim;
        memcpy(info->shape, e->shape, sizeof e->shape);
        info->numel = e->numel;
        info->bytes = e->end - e->begin;
        info->data = f->data + e->begin;
    }
    return true;
}

const char *tg_safetensors_metadata(const tg_safetensors *f, const char *key) {
    return f && f->meta && key ? json_string_value(json_object_get(f->meta, key)) : NULL;
}

static bool is_dtype(const entry *e, const char *name) { return strcmp(dtypes[e->dtype].name, name) == 0; }

// Checks that e can be copied into t: same shape, a dtype pair we convert, int values in
// range. path prefixes the message (NULL for none: a load report lists several); dest
// names t in it.
static bool check_into(const tg_safetensors *f, const entry *e, const tg_tensor *t, const char *path, const char *dest,
                       char *err, size_t len) {
    if (!t || (!t->data && t->numel)) return tg_file_fail(err, len, path, "tensor \"%s\": no tensor to read into", e->name);
    char a[DIMS_STR], b[DIMS_STR];
    int tn = t->shape.n < 0 || t->shape.n > TG_MAX_DIMS ? 0 : t->shape.n;
    if (tn != t->shape.n || e->ndim != tn || memcmp(e->shape, t->shape.d, (size_t)tn * sizeof *e->shape) != 0)
        return tg_file_fail(err, len, path, "tensor \"%s\" has shape %s in the file but %s in %s", e->name,
                    dims_str(e->shape, e->ndim, a), dims_str(t->shape.d, tn, b), dest);
    bool to_float = t->dtype == TG_F32 || t->dtype == TG_F64;
    bool ok = to_float ? is_dtype(e, "F32") || is_dtype(e, "F64")
                       : t->dtype == TG_I32 && (is_dtype(e, "I32") || is_dtype(e, "I64"));
    if (!ok)
        return tg_file_fail(
            err, len, path,
            "tensor \"%s\": cannot read %s into a tensor of %s (F32/F64 convert to float32/float64, I32/I64 to int32)",
            e->name, dtypes[e->dtype].name, tg_dtype_name(t->dtype));
    if (t->dtype != TG_I32 || !is_dtype(e, "I64")) return true;
    for (int64_t i = 0; i < e->numel; i++) {
        int64_t v;
        memcpy(&v, f->data + e->begin + 8 * (size_t)i, 8);
        if (v < INT32_MIN || v > INT32_MAX)
            return tg_file_fail(err, len, path, "tensor \"%s\": value %lld at index %lld does not fit in int32", e->name,
                        (long long)v, (long long)i);
    }
    return true;
}

// Copies e into t, converting the dtype; check_into has passed. memcpy per element because
// a tensor's bytes need not be aligned in the file.
static void copy_into(const tg_safetensors *f, const entry *e, tg_tensor *t) {
    const unsigned char *src = f->data + e->begin;
    size_t n = (size_t)e->numel;
    tg_tensor_touch(t);
    if (dtypes[e->dtype].size == tg_dtype_size(t->dtype)) {
        if (n) memcpy(t->data, src, e->end - e->begin);
    } else if (t->dtype == TG_I32) {
        for (size_t i = 0; i < n; i++) {
            int64_t v;
            memcpy(&v, src + 8 * i, 8);
            ((int32_t *)t->data)[i] = (int32_t)v;
        }
    } else if (t->dtype == TG_F64) {
        for (size_t i = 0; i < n; i++) {
            float v;
            memcpy(&v, src + 4 * i, 4);
            ((double *)t->data)[i] = v;
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            double v;
            memcpy(&v, src + 8 * i, 8);
            ((float *)t->data)[i] = (float)v;
        }
    }
}

bool tg_safetensors_read_into(const tg_safetensors *f, const char *name, tg_tensor *t, char *err, size_t len) {
    if (!f) return tg_file_fail(err, len, NULL, "tg_safetensors_read_into: no file given");
    const entry *e = find_entry(f, name);
    if (!e) return tg_file_fail(err, len, f->path, "no tensor named \"%s\"", name ? name : "(null)");
    if (!check_into(f, e, t, f->path, "the destination", err, len)) return false;
    copy_into(f, e, t);
    return true;
}

// --- Writing ---

// Bytes of a tensor whose shape add_tensor has checked.
static size_t tensor_bytes(const tg_tensor *t) { return (size_t)tg_shape_numel(t->shape) * tg_dtype_size(t->dtype); }

// Appends tensor i's entry to header at data offset *at, checking what the format needs.
static bool add_tensor(json_t *header, const char *path, int i, const char *name, const tg_tensor *t, size_t *at,
                       char *err, size_t len) {
    if (!name) return tg_file_fail(err, len, path, "tensor %d has no name", i);
    if (strcmp(name, METADATA_KEY) == 0) return tg_file_fail(err, len, path, "\"%s\" is reserved, not a tensor name", name);
    if (json_object_get(header, name)) return tg_file_fail(err, len, path, "two tensors are named \"%s\"", name);
    if (!t) return tg_file_fail(err, len, path, "tensor \"%s\" is NULL", name);
    const char *dtype = file_dtype(t->dtype);
    if (!dtype) return tg_file_fail(err, len, path, "tensor \"%s\" has an unknown dtype %d", name, (int)t->dtype);
    if (t->shape.n < 0 || t->shape.n > TG_MAX_DIMS)
        return tg_file_fail(err, len, path, "tensor \"%s\" has %d dims", name, t->shape.n);
    char a[DIMS_STR];
    int64_t numel = checked_numel(t->shape.d, t->shape.n, tg_dtype_size(t->dtype));
    if (numel < 0)
        return tg_file_fail(err, len, path, "tensor \"%s\" has an invalid shape %s", name, dims_str(t->shape.d, t->shape.n, a));
    size_t bytes = (size_t)numel * tg_dtype_size(t->dtype);
    if (bytes && !t->data) return tg_file_fail(err, len, path, "tensor \"%s\" has no data", name);
    json_t *shape = json_array();
    for (int d = 0; shape && d < t->shape.n; d++) json_array_append_new(shape, json_integer(t->shape.d[d]));
    json_t *e = json_pack("{s:s, s:o, s:[I, I]}", "dtype", dtype, "shape", shape, "data_offsets", (json_int_t)*at,
                          (json_int_t)(*at + bytes));
    if (json_object_set_new(header, name, e) != 0)
        return tg_file_fail(err, len, path, "tensor \"%s\": the name is not valid UTF-8 (or out of memory)", name);
    *at += bytes;
    return true;
}

static bool add_metadata(json_t *meta, const char *path, int n, const char *const *keys, const char *const *values,
                         char *err, size_t len) {
    for (int i = 0; i < n; i++) {
        if (!keys[i] || !values[i]) return tg_file_fail(err, len, path, "metadata entry %d has a NULL key or value", i);
        if (strcmp(keys[i], TG_SAFETENSORS_CHECKSUM_KEY) == 0)
            return tg_file_fail(err, len, path, "metadata key \"%s\" is reserved: the writer sets it", keys[i]);
        if (json_object_get(meta, keys[i])) return tg_file_fail(err, len, path, "metadata key \"%s\" appears twice", keys[i]);
        if (json_object_set_new(meta, keys[i], json_string(values[i])) != 0)
            return tg_file_fail(err, len, path, "metadata \"%s\": key or value is not valid UTF-8 (or out of memory)", keys[i]);
    }
    return true;
}

// XXH3-64 of the data section, streamed over the tensors.
static bool data_checksum(int n, tg_tensor *const *tensors, char out[17]) {
    XXH3_state_t *s = XXH3_createState();
    if (!s || XXH3_64bits_reset(s) != XXH_OK) return XXH3_freeState(s), false;
    for (int i = 0; i < n; i++)
        if (tensor_bytes(tensors[i])) XXH3_64bits_update(s, tensors[i]->data, tensor_bytes(tensors[i]));
    hex64(XXH3_64bits_digest(s), out);
    XXH3_freeState(s);
    return true;
}

// The header JSON, in a stable key order: "__metadata__" first (the user's keys in their
// order, then the checksum), then the tensors in the order given, which is also data order.
static char *build_header(const char *path, int n, const char *const *names, tg_tensor *const *tensors, int n_meta,
                          const char *const *keys, const char *const *values, char *err, size_t len) {
    json_t *header = json_object(), *meta = json_object();
    char sum[17];
    char *text = NULL;
    size_t at = 0;
    bool ok = header && meta && json_object_set(header, METADATA_KEY, meta) == 0;
    if (!ok) tg_file_fail(err, len, path, "out of memory");
    for (int i = 0; ok && i < n; i++) ok = add_tensor(header, path, i, names[i], tensors[i], &at, err, len);
    ok = ok && add_metadata(meta, path, n_meta, keys, values, err, len);
    if (ok &&
        (!data_checksum(n, tensors, sum) || json_object_set_new(meta, TG_SAFETENSORS_CHECKSUM_KEY, json_string(sum))))
        ok = tg_file_fail(err, len, path, "out of memory");
    if (ok && !(text = json_dumps(header, JSON_COMPACT))) tg_file_fail(err, len, path, "out of memory");
    json_decref(meta);
    json_decref(header);
    return text;
}

// Writes length field, padded header and data to fp, then syncs it to disk. On failure
// errno says why.
static bool write_synced(FILE *fp, const char *header, int n, tg_tensor *const *tensors) {
    size_t text = strlen(header), padded = (text + 7) / 8 * 8;
    unsigned char le[8];
    for (int i = 0; i < 8; i++) le[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    if (fwrite(le, 1, 8, fp) != 8 || fwrite(header, 1, text, fp) != text ||
        fwrite("       ", 1, padded - text, fp) != padded - text)
        return false;
    for (int i = 0; i < n; i++) {
        size_t bytes = tensor_bytes(tensors[i]);
        if (bytes && fwrite(tensors[i]->data, 1, bytes, fp) != bytes) return false;
    }
    return fflush(fp) == 0 && fsync(fileno(fp)) == 0;
}

// Makes the rename itself durable. Best effort: the new file is already in place, and some
// file systems cannot sync a directory, so a failure here is not reported.
static void sync_dir(const char *path) {
    char *dir = strdup(path);
    if (!dir) return;
    char *slash = strrchr(dir, '/');
    const char *d = !slash ? "." : slash == dir ? "/" : (*slash = 0, dir);
    int fd = open(d, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(dir);
}

// Writes to path + ".tmp.<pid>" in the same directory and renames it over path, so a reader
// sees the old file or the new one, never a part; the temporary file never outlives a failure.
static bool write_atomically(const char *path, const char *header, int n, tg_tensor *const *tensors, char *err,
                             size_t len) {
    size_t size = strlen(path) + 32;
    char *tmp = malloc(size);
    if (!tmp) return tg_file_fail(err, len, path, "out of memory");
    snprintf(tmp, size, "%s.tmp.%ld", path, (long)getpid());
    bool ok = false;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    FILE *fp = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!fp) {
        tg_file_fail(err, len, path, "cannot create the temporary file %s: %s", tmp, strerror(errno));
        if (fd >= 0) close(fd), unlink(tmp);
    } else if (!write_synced(fp, header, n, tensors)) {
        tg_file_fail(err, len, path, "cannot write %s: %s", tmp, strerror(errno));
        fclose(fp);
        unlink(tmp);
    } else if (fclose(fp) != 0 || rename(tmp, path) != 0) {
        tg_file_fail(err, len, path, "cannot replace it with %s: %s", tmp, strerror(errno));
        unlink(tmp);
    } else {
        sync_dir(path);
        ok = true;
    }
    free(tmp);
    return ok;
}

bool tg_safetensors_write(const char *path, int n, const char *const *names, tg_tensor *const *tensors, int n_meta,
                          const char *const *keys, const char *const *values, char *err, size_t len) {
    if (!path) return tg_file_fail(err, len, NULL, "tg_safetensors_write: no path given");
    if (n < 0 || n_meta < 0 || (n && (!names || !tensors)) || (n_meta && (!keys || !values)))
        return tg_file_fail(err, len, path, "bad arguments: %d tensors, %d metadata entries, or a NULL array", n, n_meta);
    char *header = build_header(path, n, names, tensors, n_meta, keys, values, err, len);
    if (!header) return false;
    bool ok = strlen(header) <= MAX_HEADER
                  ? write_atomically(path, header, n, tensors, err, len)
                  : tg_file_fail(err, len, path, "header of %zu bytes is over the 100 MB limit", strlen(header));
    free(header);
    return ok;
}

// --- Parameters ---

bool tg_params_save(const tg_params *p, const char *path, int n_meta, const char *const *keys,
                    const char *const *values, char *err, size_t len) {
    if (!p) return tg_file_fail(err, len, path, "tg_params_save: no parameters given");
    int n = tg_params_count(p);
    const char **names = malloc(((size_t)n + 1) * sizeof *names);
    tg_tensor **tensors = malloc(((size_t)n + 1) * sizeof *tensors);
    bool ok = names && tensors;
    for (int i = 0; ok && i < n; i++) {
        tensors[i] = tg_params_at(p, i);
        names[i] = tensors[i]->name;
    }
    ok = ok ? tg_safetensors_write(path, n, names, tensors, n_meta, keys, values, err, len)
            : tg_file_fail(err, len, path, "out of memory");
    free(names);
    free(tensors);
    return ok;
}

// Appends to out a line of the names in p that f lacks; returns how many.
static int report_missing(FILE *out, const tg_params *p, const tg_safetensors *f) {
    int k = 0;
    for (int i = 0; i < tg_params_count(p); i++) {
        const char *name = tg_params_at(p, i)->name;
        if (!find_entry(f, name))
            fprintf(out, k++ ? ", \"%s\"" : "\n  missing (in the parameters, not in the file): \"%s\"", name);
    }
    return k;
}

// Appends to out a line of the names in f that p lacks; returns how many.
static int report_unexpected(FILE *out, const tg_params *p, const tg_safetensors *f) {
    int k = 0;
    for (int i = 0; i < f->n; i++) {
        const char *name = f->entries[i].name;
        if (!tg_params_find(p, name))
            fprintf(out, k++ ? ", \"%s\"" : "\n  unexpected (in the file, not in the parameters): \"%s\"", name);
    }
    return k;
}

// Appends to out a line per parameter whose shape or dtype does not match f's; returns how many.
static int report_mismatched(FILE *out, const tg_params *p, const tg_safetensors *f) {
    int k = 0;
    for (int i = 0; i < tg_params_count(p); i++) {
        tg_tensor *t = tg_params_at(p, i);
        const entry *e = find_entry(f, t->name);
        char msg[512];
        if (e && !check_into(f, e, t, NULL, "the parameters", msg, sizeof msg)) fprintf(out, "\n  %s", msg), k++;
    }
    return k;
}

bool tg_params_load(tg_params *p, const char *path, bool strict, char *err, size_t len) {
    if (!p) return tg_file_fail(err, len, path, "tg_params_load: no parameters given");
    tg_safetensors *f = tg_safetensors_open(path, err, len);
    if (!f) return false;
    char *report = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&report, &size);
    if (!out) {
        tg_safetensors_close(f);
        return tg_file_fail(err, len, path, "out of memory");
    }
    int skipped = report_missing(out, p, f) + report_unexpected(out, p, f);
    int bad = report_mismatched(out, p, f);
    bool ok = fclose(out) == 0 && bad == 0 && (!strict || skipped == 0);
    if (ok) {
        // Validated as a whole above, so no parameter changes unless all of them can.
        for (int i = 0; i < tg_params_count(p); i++) {
            const entry *e = find_entry(f, tg_params_at(p, i)->name);
            if (e) copy_into(f, e, tg_params_at(p, i));
        }
        if (skipped)
            tg_file_fail(err, len, path, "loaded, skipping names not on both sides:%s", report);
        else if (err && len)
            err[0] = 0;
    } else {
        tg_file_fail(err, len, path, "cannot load parameters (%s):%s",
             strict ? "strict" : "shapes must match even when not strict", report ? report : "");
    }
    free(report);
    tg_safetensors_close(f);
    return ok;
}
