// Safetensors I/O: round trips, files written from PyTorch (tests/data/safetensors, made by
// make_fixtures.py there), damaged files of every kind, state_dict-style loading, and the
// writer's atomicity when something fails.
#include <dirent.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tg_safetensors.h"
#include "tg_test.h"
#include "tg_test_files.h"

// --- Files: a scratch directory per test, fixtures beside this source file ---

static void make_scratch(void) { test_scratch_make("tg_safetensors"); }
static void remove_scratch(void) { test_scratch_remove(); }

TestSuite(safetensors, .init = make_scratch, .fini = remove_scratch);

static const char *fixture(const char *name) { return test_fixture("safetensors", name); }

// A file with a hand-written header and data_len bytes of data (value 1 each).
static const char *raw_file(const char *name, const char *header, size_t data_len) {
    size_t h = strlen(header);
    unsigned char *buf = calloc(8 + h + data_len + 1, 1);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)h >> (8 * i));
    memcpy(buf + 8, header, h);
    memset(buf + 8 + h, 1, data_len);
    const char *path = scratch(name);
    write_bytes(path, buf, 8 + h + data_len);
    free(buf);
    return path;
}

// Asserts that opening path fails with a message naming the file and containing want.
static void expect_open_error(const char *path, const char *want) {
    char err[1024] = "";
    tg_safetensors *f = tg_safetensors_open(path, err, sizeof err);
    cr_assert_null(f, "%s opened, but should fail with \"%s\"", path, want);
    cr_assert(strstr(err, path) == err, "message does not start with the path: %s", err);
    cr_assert(strstr(err, want), "expected \"%s\" in: %s", want, err);
}

static bool has_temp_file(void) {
    DIR *d = opendir(test_scratch_dir);
    cr_assert_not_null(d);
    bool found = false;
    for (struct dirent *e; (e = readdir(d));) found |= strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return found;
}

// --- Tensors ---

static tg_tensor *tensor_of(tg_dtype dtype, tg_shape shape, const double *values) {
    tg_tensor *t = tg_tensor_create(dtype, shape, false);
    for (int64_t i = 0; values && i < t->numel; i++) tg_tensor_set(t, i, values[i]);
    return t;
}

static void assert_same_data(const tg_tensor *a, const tg_tensor *b) {
    cr_assert_eq(a->dtype, b->dtype);
    cr_assert(tg_shape_equal(a->shape, b->shape));
    cr_assert_eq(memcmp(a->data, b->data, (size_t)a->numel * tg_dtype_size(a->dtype)), 0);
}

// Writes two small tensors and one metadata entry to name; returns the path.
static const char *small_file(const char *name) {
    double v[6] = {1, -2, 3.5, 0.25, -0.0, 1e-3};
    tg_tensor *a = tensor_of(TG_F32, tg_shape2(2, 3), v), *b = tensor_of(TG_I32, tg_shape1(2), v);
    const char *names[] = {"a", "b"}, *keys[] = {"note"}, *values[] = {"small"};
    tg_tensor *ts[] = {a, b};
    char err[512];
    const char *path = scratch(name);
    cr_assert(tg_safetensors_write(path, 2, names, ts, 1, keys, values, err, sizeof err), "%s", err);
    tg_tensor_free(a);
    tg_tensor_free(b);
    return path;
}

// --- Round trips ---

Test(safetensors, round_trip_every_dtype_scalar_empty_and_metadata) {
    double v[12] = {1.5, -2.25, 3e-7, 4e10, -0.0, 6, 7, 8, 9, 10, 11, 12};
    tg_tensor *ts[] = {tensor_of(TG_F32, tg_shape2(2, 3), v),
                       tensor_of(TG_F64, tg_shape1(4), v),
                       tensor_of(TG_F32, tg_shape2(0, 5), NULL),
                       tensor_of(TG_I32, tg_shape3(3, 1, 2), (double[]){-2147483648.0, 2147483647, 0, -1, 5, 7}),
                       tensor_of(TG_F64, tg_shape0(), (double[]){3.141592653589793}),
                       tensor_of(TG_F32, tg_shape4(1, 2, 1, 2), v)};
    const char *names[] = {"encoder.weight", "bias", "empty", "ids", "scalar", "four.dims"};
    const char *keys[] = {"format", "epoch", "note"}, *values[] = {"pt", "3", "héllo \"quoted\""};
    const char *path = scratch("all.safetensors");
    char err[512];
    cr_assert(tg_safetensors_write(path, 6, names, ts, 3, keys, values, err, sizeof err), "%s", err);

    tg_safetensors *f = tg_safetensors_open(path, err, sizeof err);
    cr_assert_not_null(f, "%s", err);
    cr_assert_eq(tg_safetensors_count(f), 6);
    for (int i = 0; i < 6; i++) { // written in this order, so the offsets sort the same way
        cr_assert_str_eq(tg_safetensors_name(f, i), names[i]);
        tg_safetensors_tensor info;
        cr_assert(tg_safetensors_find(f, names[i], &info));
        cr_assert_str_eq(info.dtype, ts[i]->dtype == TG_F32 ? "F32" : ts[i]->dtype == TG_F64 ? "F64" : "I32");
        cr_assert_eq(info.ndim, ts[i]->shape.n);
        for (int d = 0; d < info.ndim; d++) cr_assert_eq(info.shape[d], ts[i]->shape.d[d]);
        cr_assert_eq(info.numel, ts[i]->numel);
        cr_assert_eq(info.bytes, (size_t)ts[i]->numel * tg_dtype_size(ts[i]->dtype));
        cr_assert_eq(memcmp(info.data, ts[i]->data, info.bytes), 0);
        tg_tensor *back = tensor_of(ts[i]->dtype, ts[i]->shape, NULL);
        cr_assert(tg_safetensors_read_into(f, names[i], back, err, sizeof err), "%s", err);
        assert_same_data(back, ts[i]);
        tg_tensor_free(back);
    }
    cr_assert_null(tg_safetensors_name(f, 6));
    cr_assert_null(tg_safetensors_name(f, -1));
    cr_assert_not(tg_safetensors_find(f, "nope", NULL));
    for (int i = 0; i < 3; i++) cr_assert_str_eq(tg_safetensors_metadata(f, keys[i]), values[i]);
    const char *sum = tg_safetensors_metadata(f, TG_SAFETENSORS_CHECKSUM_KEY);
    cr_assert(sum && strlen(sum) == 16 && strspn(sum, "0123456789abcdef") == 16);
    cr_assert_null(tg_safetensors_metadata(f, "absent"));
    tg_safetensors_close(f);
    for (int i = 0; i < 6; i++) tg_tensor_free(ts[i]);
}

Test(safetensors, header_is_compact_json_padded_with_spaces_to_8) {
    const char *path = small_file("small.safetensors");
    size_t n;
    unsigned char *b = read_bytes(path, &n);
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--) h = h << 8 | b[i];
    cr_assert_eq(h % 8, 0);
    cr_assert_eq(n, 8 + h + 6 * 4 + 2 * 4);
    const char *start = "{\"__metadata__\":{\"note\":\"small\",\"tapegrad.checksum\":\"";
    cr_assert_eq(memcmp(b + 8, start, strlen(start)), 0);
    cr_assert(strstr((char *)b + 8, "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}"));
    size_t end = 8 + h;
    while (end > 8 && b[end - 1] == ' ') end--;
    cr_assert_eq(b[end - 1], '}');
    cr_assert_lt(8 + h - end, 8);
    free(b);
}

Test(safetensors, empty_file_of_no_tensors_round_trips) {
    const char *path = scratch("none.safetensors");
    char err[512];
    cr_assert(tg_safetensors_write(path, 0, NULL, NULL, 0, NULL, NULL, err, sizeof err), "%s", err);
    tg_safetensors *f = tg_safetensors_open(path, err, sizeof err);
    cr_assert_not_null(f, "%s", err);
    cr_assert_eq(tg_safetensors_count(f), 0);
    cr_assert_not_null(tg_safetensors_metadata(f, TG_SAFETENSORS_CHECKSUM_KEY));
    tg_safetensors_close(f);
}

Test(safetensors, read_into_converts_floats_and_refuses_the_rest) {
    double v[4] = {0.1, -1e-30, 3.0, 1e300};
    tg_tensor *f32 = tensor_of(TG_F32, tg_shape2(2, 2), v), *f64 = tensor_of(TG_F64, tg_shape2(2, 2), v);
    tg_tensor *i32 = tensor_of(TG_I32, tg_shape1(3), v);
    const char *names[] = {"f32", "f64", "i32"};
    tg_tensor *ts[] = {f32, f64, i32};
    char err[512];
    const char *path = scratch("conv.safetensors");
    cr_assert(tg_safetensors_write(path, 3, names, ts, 0, NULL, NULL, err, sizeof err), "%s", err);
    tg_safetensors *f = tg_safetensors_open(path, err, sizeof err);
    cr_assert_not_null(f, "%s", err);

    tg_tensor *d = tensor_of(TG_F64, tg_shape2(2, 2), NULL), *s = tensor_of(TG_F32, tg_shape2(2, 2), NULL);
    cr_assert(tg_safetensors_read_into(f, "f32", d, err, sizeof err), "%s", err);
    for (int i = 0; i < 4; i++) cr_assert_eq(((double *)d->data)[i], (double)((float *)f32->data)[i]);
    cr_assert(tg_safetensors_read_into(f, "f64", s, err, sizeof err), "%s", err);
    for (int i = 0; i < 4; i++) cr_assert_eq(((float *)s->data)[i], (float)v[i]);

    tg_tensor *wrong = tensor_of(TG_F32, tg_shape2(4, 1), NULL), *ints = tensor_of(TG_I32, tg_shape2(2, 2), NULL);
    cr_assert_not(tg_safetensors_read_into(f, "f32", wrong, err, sizeof err));
    cr_assert(strstr(err, path) && strstr(err, "\"f32\"") && strstr(err, "[2, 2]") && strstr(err, "[4, 1]"), "%s", err);
    cr_assert_not(tg_safetensors_read_into(f, "f32", ints, err, sizeof err));
    cr_assert(strstr(err, "cannot read F32 into a tensor of int32"), "%s", err);
    cr_assert_eq(((int32_t *)ints->data)[0], 0); // untouched
    tg_tensor *fl3 = tensor_of(TG_F32, tg_shape1(3), NULL);
    cr_assert_not(tg_safetensors_read_into(f, "i32", fl3, err, sizeof err));
    cr_assert(strstr(err, "cannot read I32 into a tensor of float32"), "%s", err);
    cr_assert_not(tg_safetensors_read_into(f, "missing", fl3, err, sizeof err));
    cr_assert(strstr(err, "no tensor named \"missing\""), "%s", err);
    tg_tensor *ts2[] = {d, s, wrong, ints, fl3, f32, f64, i32};
    for (int i = 0; i < 8; i++) tg_tensor_free(ts2[i]);
    tg_safetensors_close(f);
}

// --- Files written from PyTorch ---

// The sidecar's "values" of name as doubles (exact: float32 values widen to double exactly).
static double *sidecar_values(json_t *side, const char *name, size_t *n) {
    json_t *values = json_object_get(json_object_get(side, name), "values");
    cr_assert(json_is_array(values), "no values for %s", name);
    *n = json_array_size(values);
    double *out = calloc(*n + 1, sizeof *out);
    for (size_t i = 0; i < *n; i++) out[i] = json_number_value(json_array_get(values, i));
    return out;
}

static tg_shape sidecar_shape(json_t *side, const char *name) {
    json_t *shape = json_object_get(json_object_get(side, name), "shape");
    tg_shape s = {(int)json_array_size(shape), {0}};
    for (int d = 0; d < s.n; d++) s.d[d] = json_integer_value(json_array_get(shape, (size_t)d));
    return s;
}

static json_t *load_sidecar(const char *name) {
    json_error_t je;
    json_t *side = json_load_file(fixture(name), 0, &je);
    cr_assert_not_null(side, "%s: %s", fixture(name), je.text);
    return side;
}

static const char *lstm_names[] = {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"};

// A tg_params with torch.nn.LSTM(3, 4)'s names and shapes.
static tg_params *lstm_params(void) {
    tg_params *p = tg_params_new();
    tg_params_add(p, "weight_ih_l0", TG_F32, tg_shape2(16, 3));
    tg_params_add(p, "weight_hh_l0", TG_F32, tg_shape2(16, 4));
    tg_params_add(p, "bias_ih_l0", TG_F32, tg_shape1(16));
    tg_params_add(p, "bias_hh_l0", TG_F32, tg_shape1(16));
    return p;
}

static void assert_matches_sidecar(const tg_tensor *t, json_t *side, const char *name) {
    size_t n;
    double *want = sidecar_values(side, name, &n);
    cr_assert(tg_shape_equal(t->shape, sidecar_shape(side, name)), "%s: shape", name);
    cr_assert_eq((int64_t)n, t->numel, "%s", name);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(tg_tensor_get(t, (int64_t)i), t->dtype == TG_F32 ? (double)(float)want[i] : want[i], "%s[%zu]",
                     name, i);
    free(want);
}

Test(safetensors, pytorch_lstm_state_dict_loads_with_its_values) {
    char err[1024];
    tg_safetensors *f = tg_safetensors_open(fixture("lstm.safetensors"), err, sizeof err);
    cr_assert_not_null(f, "%s", err);
    json_t *side = load_sidecar("lstm.json");
    cr_assert_str_eq(tg_safetensors_metadata(f, "format"), "pt");
    cr_assert_eq(tg_safetensors_count(f), 4);
    cr_assert_str_eq(tg_safetensors_name(f, 0), "bias_hh_l0"); // the script sorts names, like save_file
    tg_params *p = lstm_params();
    cr_assert(tg_params_load(p, fixture("lstm.safetensors"), true, err, sizeof err), "%s", err);
    cr_assert_str_eq(err, "");
    for (int i = 0; i < 4; i++) assert_matches_sidecar(tg_params_find(p, lstm_names[i]), side, lstm_names[i]);
    tg_params_free(p);
    json_decref(side);
    tg_safetensors_close(f);
}

Test(safetensors, pytorch_mixed_dtypes_unpadded_header_unaligned_data) {
    char err[1024];
    const char *path = fixture("mixed.safetensors");
    tg_safetensors *f = tg_safetensors_open(path, err, sizeof err);
    cr_assert_not_null(f, "%s", err);
    json_t *side = load_sidecar("mixed.json");
    struct {
        const char *name;
        tg_dtype dtype;
    } ok[] = {{"scalar", TG_F32}, {"f64", TG_F64}, {"f64", TG_F32}, {"ids", TG_I32},
              {"empty", TG_F32},  {"f32", TG_F32}, {"f32", TG_F64}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        tg_tensor *t = tensor_of(ok[i].dtype, sidecar_shape(side, ok[i].name), NULL);
        cr_assert(tg_safetensors_read_into(f, ok[i].name, t, err, sizeof err), "%s", err);
        assert_matches_sidecar(t, side, ok[i].name);
        tg_tensor_free(t);
    }
    tg_safetensors_tensor info;
    cr_assert(tg_safetensors_find(f, "mask", &info));
    cr_assert(strcmp(info.dtype, "BOOL") == 0 && info.bytes == 3 && ((const uint8_t *)info.data)[1] == 0);
    tg_tensor *i2 = tensor_of(TG_I32, tg_shape1(2), NULL), *h = tensor_of(TG_F32, tg_shape1(2), NULL);
    cr_assert_not(tg_safetensors_read_into(f, "big_ids", i2, err, sizeof err));
    cr_assert(strstr(err, "value 2147483648 at index 1 does not fit in int32"), "%s", err);
    cr_assert_eq(((int32_t *)i2->data)[0], 0, "a failed read must not write");
    cr_assert_not(tg_safetensors_read_into(f, "half", h, err, sizeof err));
    cr_assert(strstr(err, "cannot read BF16 into a tensor of float32"), "%s", err);
    tg_tensor_free(i2);
    tg_tensor_free(h);
    json_decref(side);
    tg_safetensors_close(f);
}

Test(safetensors, pytorch_loads_what_we_write, .timeout = 120) {
    if (system("/usr/bin/python3 -c 'import torch' 2>/dev/null") != 0) cr_skip_test("no python3-torch here");
    char err[1024];
    tg_params *p = lstm_params();
    cr_assert(tg_params_load(p, fixture("lstm.safetensors"), true, err, sizeof err), "%s", err);
    const char *out = scratch("ours.safetensors");
    cr_assert(tg_params_save(p, out, 0, NULL, NULL, err, sizeof err), "%s", err);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s --check %s", fixture("make_fixtures.py"), out);
    cr_assert_eq(system(cmd), 0, "PyTorch could not load %s", out);
    tg_params_free(p);
}

// --- Damaged files ---

Test(safetensors, missing_and_empty_files) {
    expect_open_error(scratch("absent.safetensors"), "cannot open: No such file");
    const char *path = scratch("empty.safetensors");
    write_bytes(path, "", 0);
    expect_open_error(path, "file is 0 bytes, too short");
    expect_open_error(test_scratch_dir, "not a regular file");
}

Test(safetensors, truncated_at_every_byte) {
    size_t n;
    unsigned char *good = read_bytes(small_file("good.safetensors"), &n);
    const char *path = scratch("cut.safetensors");
    for (size_t k = 0; k < n; k++) {
        write_bytes(path, good, k);
        char err[1024] = "";
        tg_safetensors *f = tg_safetensors_open(path, err, sizeof err);
        cr_assert_null(f, "a prefix of %zu of %zu bytes opened", k, n);
        cr_assert(strstr(err, path) == err && strlen(err) > strlen(path) + 10, "prefix %zu: %s", k, err);
    }
    free(good);
}

Test(safetensors, flipped_data_byte_fails_the_checksum) {
    size_t n;
    const char *path = small_file("flip.safetensors");
    unsigned char *b = read_bytes(path, &n);
    b[n - 5] ^= 0x10;
    write_bytes(path, b, n);
    expect_open_error(path, "data is damaged: its XXH3-64 is ");
    free(b);
}

Test(safetensors, header_length_beyond_limit_or_file) {
    unsigned char huge[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}'};
    const char *path = scratch("huge.safetensors");
    write_bytes(path, huge, 10);
    expect_open_error(path, "header length 18446744073709551615 is over the 100 MB limit");
    unsigned char longer[16] = {100, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '};
    write_bytes(path, longer, 16);
    expect_open_error(path, "header length 100 is more than the 8 bytes that follow it");
}

Test(safetensors, size_mismatch_message_names_tensor_offsets_dtype_and_shape) {
    const char *path = raw_file("size.safetensors",
                                "{\"weight_ih_l0\":{\"dtype\":\"F32\",\"shape\":[4,8],\"data_offsets\":[0,96]}}", 96);
    char err[1024], want[1024];
    cr_assert_null(tg_safetensors_open(path, err, sizeof err));
    snprintf(want, sizeof want,
             "%s: tensor \"weight_ih_l0\": data_offsets [0, 96] hold 96 bytes, but F32 [4, 8] needs 128", path);
    cr_assert_str_eq(err, want);
}

#define T(name, dtype, shape, offsets)                                                                                 \
    "\"" name "\":{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":" offsets "}"

Test(safetensors, damaged_headers_each_give_a_clear_error) {
    static const struct {
        const char *header;
        size_t data;
        const char *want;
    } cases[] = {
        {"{\"a\": ", 0, "header is not valid JSON: "},
        {"{\"a\":{}}   x", 0, "line 1, column"},
        {"[1, 2]", 0, "header is an array, not an object"},
        {"", 0, "header is not valid JSON"},
        {"{" T("a", "F32", "[1]", "[0,4]") "," T("a", "F32", "[1]", "[4,8]") "}", 8, "duplicate object key"},
        {"{" T("a", "F32", "[2]", "[0,8]") "," T("b", "F32", "[2]", "[4,12]") "}", 12,
         "tensor \"b\" at data_offsets [4, 12] overlaps tensor \"a\" at [0, 8]"},
        {"{" T("a", "F32", "[2]", "[0,8]") "," T("e", "F32", "[0]", "[4,4]") "}", 8, "overlaps"},
        {"{" T("a", "F32", "[2]", "[0,8]") "," T("b", "F32", "[2]", "[12,20]") "}", 20,
         "gap in the data section: bytes [8, 12) before tensor \"b\""},
        {"{" T("b", "F32", "[2]", "[4,12]") "}", 12, "gap in the data section: bytes [0, 4)"},
        {"{" T("a", "F32", "[2]", "[0,8]") "}", 4, "data_offsets [0, 8] reach past the 4-byte data section"},
        {"{" T("a", "F32", "[1]", "[0,4]") "}", 8, "data section is 8 bytes, but the tensors cover only 4"},
        {"{}", 3, "data section is 3 bytes, but the tensors cover only 0"},
        {"{" T("a", "F32", "[1]", "[4,0]") "}", 4, "data_offsets [4, 0] are not 0 <= begin <= end"},
        {"{" T("a", "F32", "[1]", "[-4,0]") "}", 4, "are not 0 <= begin <= end"},
        {"{" T("a", "F32", "[1]", "[0]") "}", 4, "\"data_offsets\" is missing or not two integers"},
        {"{" T("a", "F32", "[1]", "[0,4.0]") "}", 4, "\"data_offsets\" is missing or not two integers"},
        {"{" T("a", "F8", "[1]", "[0,1]") "}", 1, "tensor \"a\": unknown dtype \"F8\""},
        {"{" T("a", "f32", "[1]", "[0,4]") "}", 4, "unknown dtype \"f32\""},
        {"{\"a\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "\"dtype\" is missing or not a string"},
        {"{" T("a", "F32", "[4294967296,4294967296,4294967296]", "[0,4]") "}", 4,
         "shape [4294967296, 4294967296, 4294967296] of F32 is too large"},
        {"{" T("a", "F64", "[2305843009213693952]", "[0,8]") "}", 8, "is too large: its byte size overflows"},
        {"{" T("a", "F32", "[-1,2]", "[0,4]") "}", 4, "tensor \"a\": shape [-1, 2] has a negative size"},
        {"{" T("a", "F32", "[2.0]", "[0,8]") "}", 8, "shape[0] is a real number, not an integer"},
        {"{" T("a", "F32", "[1,1,1,1,1,1,1,1,1]", "[0,4]") "}", 4, "shape has 9 dims, more than 8"},
        {"{" T("a", "F32", "{}", "[0,4]") "}", 4, "\"shape\" is missing or not an array"},
        {"{" T("a", "F32", "[99999999999999999999]", "[0,4]") "}", 4, "too big integer"},
        {"{\"a\":[1]}", 0, "tensor \"a\": entry is an array, not an object"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4],\"offset\":1}}", 4, "unknown field \"offset\""},
        {"{\"__metadata__\":{\"epoch\":3}}", 0, "__metadata__ \"epoch\" is an integer, not a string"},
        {"{\"__metadata__\":[\"x\"]}", 0, "\"__metadata__\" is an array, not an object"},
        {"{\"__metadata__\":{\"tapegrad.checksum\":\"ABC\"}}", 0, "tapegrad.checksum \"ABC\" is not 16 lowercase hex"},
        {"{\"__metadata__\":{\"tapegrad.checksum\":\"0000000000000000\"}}", 0, "data is damaged"},
        {"{\"a\\u0000b\":1}", 0, "header is not valid JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "case%zu.safetensors", i);
        expect_open_error(raw_file(name, cases[i].header, cases[i].data), cases[i].want);
    }
}

// Every byte of a valid file replaced by bytes that matter to a JSON parser: each mutant
// either opens with a consistent index or fails with a message, and never crashes.
Test(safetensors, mutated_bytes_never_crash) {
    size_t n;
    unsigned char *good = read_bytes(small_file("good.safetensors"), &n);
    const unsigned char subst[] = {0, 0xff, '"', '{', '}', '[', ',', '9', '-', ' ', 'e'};
    const char *path = scratch("mutant.safetensors");
    int opened = 0;
    for (size_t k = 0; k < n; k++)
        for (size_t s = 0; s < sizeof subst; s++) {
            unsigned char save = good[k];
            good[k] = subst[s];
            write_bytes(path, good, n);
            good[k] = save;
            char err[1024] = "";
            tg_safetensors *f = tg_safetensors_open(path, err, sizeof err);
            if (!f) {
                cr_assert(strstr(err, path) == err && err[strlen(path) + 2], "byte %zu: %s", k, err);
                continue;
            }
            opened++;
            for (int i = 0; i < tg_safetensors_count(f); i++) {
                tg_safetensors_tensor info;
                cr_assert(tg_safetensors_find(f, tg_safetensors_name(f, i), &info));
                cr_assert_leq(info.bytes, n);
            }
            tg_safetensors_close(f);
        }
    cr_assert_gt(opened, 0, "some mutants (a space for a space) must still open");
    free(good);
}

// --- Parameters ---

// A file "a" [2, 3] = 1..6, "b" [5], "d" [1].
static const char *state_file(void) {
    double v[6] = {1, 2, 3, 4, 5, 6};
    tg_tensor *ts[] = {tensor_of(TG_F32, tg_shape2(2, 3), v), tensor_of(TG_F32, tg_shape1(5), v),
                       tensor_of(TG_F64, tg_shape1(1), v)};
    const char *names[] = {"a", "b", "d"};
    const char *path = scratch("state.safetensors");
    char err[512];
    cr_assert(tg_safetensors_write(path, 3, names, ts, 0, NULL, NULL, err, sizeof err), "%s", err);
    for (int i = 0; i < 3; i++) tg_tensor_free(ts[i]);
    return path;
}

static bool all_zero(const tg_params *p) {
    for (int i = 0; i < tg_params_count(p); i++)
        for (int64_t j = 0; j < tg_params_at(p, i)->numel; j++)
            if (tg_tensor_get(tg_params_at(p, i), j) != 0) return false;
    return true;
}

Test(safetensors, strict_load_reports_missing_unexpected_and_wrong_shapes_at_once) {
    const char *path = state_file();
    tg_params *p = tg_params_new();
    tg_params_add(p, "a", TG_F32, tg_shape2(2, 3));
    tg_params_add(p, "b", TG_F32, tg_shape1(4));
    tg_params_add(p, "c", TG_F32, tg_shape1(2));
    tg_params_add(p, "e", TG_F64, tg_shape0());
    char err[1024];
    cr_assert_not(tg_params_load(p, path, true, err, sizeof err));
    cr_assert(strstr(err, path) == err, "%s", err);
    cr_assert(strstr(err, "missing (in the parameters, not in the file): \"c\", \"e\""), "%s", err);
    cr_assert(strstr(err, "unexpected (in the file, not in the parameters): \"d\""), "%s", err);
    cr_assert(strstr(err, "tensor \"b\" has shape [5] in the file but [4] in the parameters"), "%s", err);
    cr_assert(all_zero(p), "a failed load must change nothing, not even the matching \"a\"");
    // Not strict: missing and unexpected are fine, but the shape of "b" still fails.
    cr_assert_not(tg_params_load(p, path, false, err, sizeof err));
    cr_assert(strstr(err, "shapes must match even when not strict") && strstr(err, "tensor \"b\" has shape [5]"), "%s",
              err);
    cr_assert(all_zero(p));
    tg_params_free(p);
}

Test(safetensors, non_strict_load_takes_matching_names_and_lists_the_rest) {
    const char *path = state_file();
    tg_params *p = tg_params_new();
    tg_tensor *a = tg_params_add(p, "a", TG_F64, tg_shape2(2, 3)); // F32 in the file: converted
    tg_tensor *c = tg_params_add(p, "c", TG_F32, tg_shape1(2));
    char err[1024];
    cr_assert_not(tg_params_load(p, path, true, err, sizeof err));
    cr_assert(all_zero(p));
    cr_assert(tg_params_load(p, path, false, err, sizeof err), "%s", err);
    for (int i = 0; i < 6; i++) cr_assert_eq(tg_tensor_get(a, i), i + 1);
    cr_assert_eq(tg_tensor_get(c, 0), 0);
    cr_assert(strstr(err, "missing (in the parameters, not in the file): \"c\""), "%s", err);
    cr_assert(strstr(err, "unexpected (in the file, not in the parameters): \"b\", \"d\""), "%s", err);
    tg_params_free(p);
}

Test(safetensors, params_save_then_load_round_trips) {
    tg_params *p = lstm_params(), *q = lstm_params();
    tg_rng rng;
    tg_rng_seed(&rng, 7);
    for (int i = 0; i < tg_params_count(p); i++) tg_tensor_fill_uniform(tg_params_at(p, i), &rng, -1, 1);
    const char *keys[] = {"step"}, *values[] = {"100"};
    const char *path = scratch("params.safetensors");
    char err[512];
    cr_assert(tg_params_save(p, path, 1, keys, values, err, sizeof err), "%s", err);
    cr_assert(tg_params_load(q, path, true, err, sizeof err), "%s", err);
    for (int i = 0; i < tg_params_count(p); i++) assert_same_data(tg_params_at(q, i), tg_params_at(p, i));
    tg_safetensors *f = tg_safetensors_open(path, err, sizeof err);
    cr_assert_str_eq(tg_safetensors_metadata(f, "step"), "100");
    cr_assert_str_eq(tg_safetensors_name(f, 0), "weight_ih_l0");
    tg_safetensors_close(f);
    tg_params_free(p);
    tg_params_free(q);
}

// --- Atomic writes ---

// Asserts that path still holds small_file(): "a" starts with 1.0.
static void assert_old_file_intact(const char *path) {
    char err[512];
    tg_safetensors *f = tg_safetensors_open(path, err, sizeof err);
    cr_assert_not_null(f, "the old file was damaged: %s", err);
    tg_tensor *a = tensor_of(TG_F32, tg_shape2(2, 3), NULL);
    cr_assert(tg_safetensors_read_into(f, "a", a, err, sizeof err), "%s", err);
    cr_assert_eq(tg_tensor_get(a, 0), 1.0);
    tg_tensor_free(a);
    tg_safetensors_close(f);
    cr_assert_not(has_temp_file(), "a temporary file was left behind");
}

Test(safetensors, write_into_a_missing_directory_fails_cleanly) {
    tg_tensor *t = tensor_of(TG_F32, tg_shape1(2), NULL);
    const char *names[] = {"t"};
    char err[512], path[600];
    snprintf(path, sizeof path, "%s/no/such/dir/x.safetensors", test_scratch_dir);
    cr_assert_not(tg_safetensors_write(path, 1, names, &t, 0, NULL, NULL, err, sizeof err));
    cr_assert(strstr(err, path) == err && strstr(err, "cannot create the temporary file") &&
                  strstr(err, "No such file"),
              "%s", err);
    cr_assert_not(has_temp_file());
    tg_tensor_free(t);
}

Test(safetensors, bad_arguments_leave_the_old_file_and_no_temp_file) {
    const char *path = small_file("keep.safetensors");
    tg_tensor *t = tensor_of(TG_F32, tg_shape2(2, 3), (double[]){9, 9, 9, 9, 9, 9}),
              *hollow = tensor_of(TG_F32, tg_shape1(3), NULL);
    free(hollow->data);
    hollow->data = NULL;
    tg_tensor *bad_dtype = tensor_of(TG_F32, tg_shape1(1), NULL);
    bad_dtype->dtype = (tg_dtype)42;
    struct {
        const char *names[2];
        tg_tensor *ts[2];
        const char *key;
        const char *want;
    } cases[] = {
        {{"a", "a"}, {t, t}, "k", "two tensors are named \"a\""},
        {{"a", "h"}, {t, hollow}, "k", "tensor \"h\" has no data"},
        {{"a", NULL}, {t, t}, "k", "tensor 1 has no name"},
        {{"a", "__metadata__"}, {t, t}, "k", "\"__metadata__\" is reserved"},
        {{"a", "b"}, {t, NULL}, "k", "tensor \"b\" is NULL"},
        {{"a", "b"}, {t, bad_dtype}, "k", "tensor \"b\" has an unknown dtype 42"},
        {{"a", "\xff\xfe"}, {t, t}, "k", "is not valid UTF-8"},
        {{"a", "b"}, {t, t}, TG_SAFETENSORS_CHECKSUM_KEY, "metadata key \"tapegrad.checksum\" is reserved"},
        {{"a", "b"}, {t, t}, "\xc3", "metadata \"\xc3\": key or value is not valid UTF-8"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *keys[] = {cases[i].key}, *values[] = {"v"};
        char err[512];
        cr_assert_not(tg_safetensors_write(path, 2, cases[i].names, cases[i].ts, 1, keys, values, err, sizeof err),
                      "case %zu wrote", i);
        cr_assert(strstr(err, path) == err && strstr(err, cases[i].want), "case %zu: %s", i, err);
        assert_old_file_intact(path);
    }
    const char *keys[] = {"k", "k"}, *values[] = {"1", "2"};
    char err[512];
    cr_assert_not(tg_safetensors_write(path, 1, cases[0].names, &t, 2, keys, values, err, sizeof err));
    cr_assert(strstr(err, "metadata key \"k\" appears twice"), "%s", err);
    assert_old_file_intact(path);
    tg_tensor_free(t);
    tg_tensor_free(hollow);
    tg_tensor_free(bad_dtype);
}

// A write that fails half way (the file size limit stands in for a full disk) and a rename
// that fails (the target is a directory) both remove the temporary file.
Test(safetensors, failures_after_the_temp_file_exists_clean_it_up) {
    const char *path = small_file("keep.safetensors");
    tg_tensor *big = tensor_of(TG_F32, tg_shape2(2, 3), NULL), *huge = tensor_of(TG_F64, tg_shape1(1 << 17), NULL);
    const char *names[] = {"a", "huge"};
    tg_tensor *ts[] = {big, huge};
    char err[512];
    cr_assert_eq(mkdir(scratch("dir.safetensors"), 0700), 0);
    cr_assert_not(tg_safetensors_write(scratch("dir.safetensors"), 1, names, ts, 0, NULL, NULL, err, sizeof err));
    cr_assert(strstr(err, "cannot replace it with") && strstr(err, ".tmp."), "%s", err);
    cr_assert_not(has_temp_file());

    signal(SIGXFSZ, SIG_IGN); // a write past the limit then fails with EFBIG instead of killing us
    struct rlimit old, lim;
    cr_assert_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = (struct rlimit){64 << 10, old.rlim_max};
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    bool wrote = tg_safetensors_write(path, 2, names, ts, 0, NULL, NULL, err, sizeof err);
    setrlimit(RLIMIT_FSIZE, &old);
    cr_assert_not(wrote);
    cr_assert(strstr(err, path) == err && strstr(err, "cannot write") && strstr(err, "File too large"), "%s", err);
    assert_old_file_intact(path);
    tg_tensor_free(big);
    tg_tensor_free(huge);
}
