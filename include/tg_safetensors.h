// tg_safetensors.h: reading and writing safetensors files (checkpoints, PyTorch fixtures).
//
// The format: an 8-byte little-endian header length N, N bytes of JSON mapping each tensor
// name to {"dtype", "shape", "data_offsets": [begin, end]} (plus an optional "__metadata__"
// object of strings), then the data section of dense little-endian row-major bytes.
// Bad files never crash the reader: every function that can fail returns NULL/false and
// writes a message naming the file and the problem into err (len bytes, may be 0).
#ifndef TG_SAFETENSORS_H
#define TG_SAFETENSORS_H

#include "tg_params.h"
#include "tg_tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

// The most dims a tensor in a file may have (tg_tensor itself holds TG_MAX_DIMS).
#define TG_SAFETENSORS_MAX_DIMS 8
// Metadata key under which the writer stores the XXH3-64 of the data section (16 hex digits).
#define TG_SAFETENSORS_CHECKSUM_KEY "tapegrad.checksum"

typedef struct tg_safetensors tg_safetensors;

// One tensor of an open file; its pointers live as long as the file stays open.
typedef struct {
    const char *dtype;                      // "F32", "I64", "BF16", ... as in the file
    int ndim;                               // 0 for a scalar
    int64_t shape[TG_SAFETENSORS_MAX_DIMS]; // sizes in shape[0..ndim-1]
    int64_t numel;                          // product of the sizes (1 for a scalar)
    size_t bytes;                           // numel * size of dtype
    const void *data;                       // the raw bytes; may be unaligned, so memcpy them
} tg_safetensors_tensor;

// --- Reading ---
// Reads the whole file and validates header, shapes, offsets and checksum before trusting
// any of it; NULL with a message in err on any problem.
tg_safetensors *tg_safetensors_open(const char *path, char *err, size_t len);
// Frees everything the file owns (NULL is fine).
void tg_safetensors_close(tg_safetensors *f);
// Number of tensors in the file.
int tg_safetensors_count(const tg_safetensors *f);
// Name of the i-th tensor, in the order of their data offsets; NULL when i is out of range.
const char *tg_safetensors_name(const tg_safetensors *f, int i);
// Looks a tensor up by name; fills info (when not NULL) and returns true when found.
bool tg_safetensors_find(const tg_safetensors *f, const char *name, tg_safetensors_tensor *info);
// The "__metadata__" value for key, or NULL when absent.
const char *tg_safetensors_metadata(const tg_safetensors *f, const char *key);
// Copies tensor name into t, whose shape must equal the file's. Converts F32/F64 to either
// float dtype and I32/I64 to int32 (range-checked); other pairs are refused. On failure t is
// left unchanged.
bool tg_safetensors_read_into(const tg_safetensors *f, const char *name, tg_tensor *t, char *err, size_t len);

// --- Writing ---
// Writes n tensors (f32, f64 or i32) under unique names, with n_meta metadata strings plus
// TG_SAFETENSORS_CHECKSUM_KEY. Atomic: a temporary file beside path is synced and renamed
// over it, so on failure an existing file at path is left as it was.
bool tg_safetensors_write(const char *path, int n, const char *const *names, tg_tensor *const *tensors, int n_meta,
                          const char *const *keys, const char *const *values, char *err, size_t len);

// --- Parameters (PyTorch's state_dict / load_state_dict) ---
// Writes every parameter under its name, in the order they were added.
bool tg_params_save(const tg_params *p, const char *path, int n_meta, const char *const *keys,
                    const char *const *values, char *err, size_t len);
// Loads parameters from a file. All problems (missing names, unexpected names, wrong shapes or
// dtypes) are reported together in err. strict fails on any of them; otherwise names missing
// on either side are skipped (and listed in err, which is "" after a full match), but a
// shape mismatch still fails. Nothing changes unless the whole load succeeds.
bool tg_params_load(tg_params *p, const char *path, bool strict, char *err, size_t len);

#ifdef __cplusplus
}
#endif
#endif
