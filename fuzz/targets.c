// targets.c: the fuzzed entry points (tg_fuzz.h). Each one hands the input to a reader as a
// file, then checks the reader's promises; CHECK aborts with a message when one is broken.
//
// The input goes into a memfd, opened by the readers through /proc/self/fd/N: the same
// fopen/fstat/fread path as a file on disk, without touching the disk or leaving files behind.
// A checkpoint is the exception: its model file names its training-state file beside it, so
// both are real files in a directory of the process's own (see "Checkpoints").
#define _GNU_SOURCE // memfd_create
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tapegrad.h"
#include "tg_example.h"
#include "fuzz_check.h"
#include "tg_fuzz.h"
#include "tg_safetensors.h"

const tg_fuzz_target tg_fuzz_targets[] = {
    {"safetensors", tg_fuzz_safetensors},
    {"params_load", tg_fuzz_params_load},
    {"checkpoint", tg_fuzz_checkpoint},
    {"cmudict", tg_fuzz_cmudict},
    {"brown", tg_fuzz_brown},
    {"spam", tg_fuzz_spam},
    {"vocab", tg_fuzz_vocab},
    {NULL, NULL},
};

// --- Files ---

typedef struct {
    int fd;
    char path[64];
} memfile;

// An in-memory file holding size bytes of data; its path opens like a file's.
static memfile memfile_new(const uint8_t *data, size_t size) {
    memfile m;
    m.fd = memfd_create("tg-fuzz", MFD_CLOEXEC);
    if (m.fd < 0) {
        perror("tg-fuzz: memfd_create");
        abort();
    }
    for (size_t at = 0; at < size;) {
        ssize_t put = write(m.fd, data + at, size - at);
        if (put <= 0) {
            perror("tg-fuzz: write");
            abort();
        }
        at += (size_t)put;
    }
    snprintf(m.path, sizeof m.path, "/proc/self/fd/%d", m.fd);
    return m;
}

static void memfile_free(memfile *m) {
    close(m->fd);
    m->fd = -1;
}

// --- safetensors ---

static const struct {
    const char *name;
    size_t size;
} DTYPES[] = {
    {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"U16", 2}, {"I16", 2}, {"F16", 2}, {"BF16", 2},
    {"U32", 4},  {"I32", 4}, {"F32", 4}, {"U64", 8}, {"I64", 8}, {"F64", 8},
};

static size_t dtype_size(const char *name) {
    for (size_t i = 0; i < sizeof DTYPES / sizeof DTYPES[0]; i++)
        if (strcmp(DTYPES[i].name, name) == 0) return DTYPES[i].size;
    return 0;
}

// A tensor of tapegrad's to read the file's tensor into, or NULL when its shape cannot be
// one (more than TG_MAX_DIMS dims, or an empty tensor with sizes no real tensor has).
static tg_tensor *tensor_like(const tg_safetensors_tensor *info, tg_dtype dtype, int extra_dim) {
    tg_shape s = {info->ndim + extra_dim, {0}};
    if (s.n > TG_MAX_DIMS) return NULL;
    for (int i = 0; i < info->ndim; i++) {
        if (info->shape[i] > ((int64_t)1 << 24)) return NULL;
        s.d[i] = info->shape[i];
    }
    if (extra_dim) s.d[s.n - 1] = 1;
    tg_tensor *t = tg_tensor_create(dtype, s, false);
    CHECK(t, "tg_tensor_create failed for a %d-dim tensor", s.n);
    if (t->numel) memset(t->data, 0x5a, (size_t)t->numel * tg_dtype_size(dtype));
    return t;
}

static bool all_bytes(const void *p, size_t n, unsigned char byte) {
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i] != byte) return false;
    return true;
}

// read_into on one tensor: succeeds exactly for the conversions it documents, copies the
// values exactly, and leaves the destination alone when it refuses.
static void check_read_into(const tg_safetensors *f, const char *name, const tg_safetensors_tensor *info) {
    bool is_float = !strcmp(info->dtype, "F32") || !strcmp(info->dtype, "F64");
    bool is_int = !strcmp(info->dtype, "I32") || !strcmp(info->dtype, "I64");
    bool int_fits = true;
    if (!strcmp(info->dtype, "I64"))
        for (int64_t i = 0; i < info->numel; i++) {
            int64_t v;
            memcpy(&v, (const unsigned char *)info->data + 8 * i, 8);
            int_fits &= v >= INT32_MIN && v <= INT32_MAX;
        }
    const tg_dtype dests[] = {TG_F64, TG_F32, TG_I32};
    for (size_t k = 0; k < sizeof dests / sizeof dests[0]; k++) {
        tg_tensor *t = tensor_like(info, dests[k], 0);
        if (!t) return;
        size_t bytes = (size_t)t->numel * tg_dtype_size(dests[k]);
        char err[160] = "";
        bool ok = tg_safetensors_read_into(f, name, t, err, sizeof err);
        bool want = dests[k] == TG_I32 ? is_int && int_fits : is_float;
        CHECK(ok == want, "read_into \"%s\" (%s) into %s: %s, expected %s (%s)", name, info->dtype,
              tg_dtype_name(dests[k]), ok ? "ok" : "refused", want ? "ok" : "refused", err);
        if (!ok) {
            CHECK_MESSAGE(err, sizeof err);
            CHECK(all_bytes(t->data, bytes, 0x5a), "a refused read_into changed the destination");
        } else {
            const unsigned char *src = info->data;
            for (int64_t i = 0; i < t->numel; i++) {
                double want_v = 0, got_v = tg_tensor_get(t, i);
                if (!strcmp(info->dtype, "F32")) {
                    float v;
                    memcpy(&v, src + 4 * i, 4);
                    want_v = dests[k] == TG_F32 ? (double)v : v;
                } else if (!strcmp(info->dtype, "F64")) {
                    double v;
                    memcpy(&v, src + 8 * i, 8);
                    want_v = dests[k] == TG_F32 ? (double)(float)v : v;
                } else if (!strcmp(info->dtype, "I32")) {
                    int32_t v;
                    memcpy(&v, src + 4 * i, 4);
                    want_v = v;
                } else {
                    int64_t v;
                    memcpy(&v, src + 8 * i, 8);
                    want_v = (double)v;
                }
                CHECK(memcmp(&want_v, &got_v, sizeof got_v) == 0 || (want_v != want_v && got_v != got_v),
                      "read_into \"%s\" element %lld: got %g, the file holds %g", name, (long long)i, got_v, want_v);
            }
        }
        tg_tensor_free(t);
    }
    // A destination of another shape is refused.
    tg_tensor *t = tensor_like(info, TG_F64, 1);
    if (t) {
        char err[160] = "";
        CHECK(!tg_safetensors_read_into(f, name, t, err, sizeof err), "read_into \"%s\" accepted a wrong shape", name);
        CHECK_MESSAGE(err, sizeof err);
        tg_tensor_free(t);
    }
}

int tg_fuzz_safetensors(const uint8_t *data, size_t size) {
    memfile m = memfile_new(data, size);
    char err[256] = "";
    tg_safetensors *f = tg_safetensors_open(m.path, err, sizeof err);
    if (!f) {
        CHECK_MESSAGE(err, sizeof err);
        // A tiny buffer and no buffer at all are fine too.
        char small[6];
        CHECK(!tg_safetensors_open(m.path, small, sizeof small) && memchr(small, 0, sizeof small),
              "second open disagrees or overran a small message buffer");
        CHECK(!tg_safetensors_open(m.path, NULL, 0), "second open disagrees");
        memfile_free(&m);
        return 0;
    }
    CHECK(size >= 8, "accepted a %zu-byte file", size);
    uint64_t header = 0;
    for (int i = 7; i >= 0; i--) header = header << 8 | data[i];
    CHECK(header <= size - 8, "header length %llu past the end", (unsigned long long)header);
    size_t data_size = size - 8 - (size_t)header, covered = 0;

    int n = tg_safetensors_count(f);
    CHECK(n >= 0 && !tg_safetensors_name(f, n) && !tg_safetensors_name(f, -1), "count %d and names disagree", n);
    const unsigned char *prev_end = NULL;
    volatile unsigned char sink = 0;
    for (int i = 0; i < n; i++) {
        const char *name = tg_safetensors_name(f, i);
        tg_safetensors_tensor info;
        CHECK(name && tg_safetensors_find(f, name, &info), "tensor %d has no name or cannot be found by it", i);
        size_t elem = dtype_size(info.dtype);
        CHECK(elem, "tensor \"%s\": unknown dtype \"%s\" accepted", name, info.dtype);
        CHECK(info.ndim >= 0 && info.ndim <= TG_SAFETENSORS_MAX_DIMS, "tensor \"%s\": %d dims", name, info.ndim);
        int64_t numel = 1;
        bool empty = false;
        for (int d = 0; d < info.ndim; d++) {
            CHECK(info.shape[d] >= 0, "tensor \"%s\": negative size", name);
            empty |= info.shape[d] == 0;
        }
        for (int d = 0; d < info.ndim && !empty; d++)
            CHECK(!__builtin_mul_overflow(numel, info.shape[d], &numel), "tensor \"%s\": numel overflows", name);
        if (empty) numel = 0;
        CHECK(info.numel == numel, "tensor \"%s\": numel %lld, shape says %lld", name, (long long)info.numel,
              (long long)numel);
        CHECK(info.bytes == (size_t)numel * elem, "tensor \"%s\": %zu bytes for %lld %s", name, info.bytes,
              (long long)numel, info.dtype);
        // Sorted by offset and tiling the data section: each starts where the previous ended.
        CHECK(!prev_end || (const unsigned char *)info.data == prev_end, "tensor \"%s\" does not follow its predecessor",
              name);
        prev_end = (const unsigned char *)info.data + info.bytes;
        covered += info.bytes;
        for (size_t b = 0; b < info.bytes; b++) sink ^= ((const unsigned char *)info.data)[b]; // ASan sees them all
        check_read_into(f, name, &info);
    }
    (void)sink;
    CHECK(covered == data_size, "tensors cover %zu bytes of a %zu-byte data section", covered, data_size);
    CHECK(!tg_safetensors_find(f, NULL, NULL), "found a NULL name");
    const char *sum = tg_safetensors_metadata(f, TG_SAFETENSORS_CHECKSUM_KEY);
    CHECK(!sum || strlen(sum) == 16, "a checksum of %zu characters accepted", strlen(sum));
    CHECK(!tg_safetensors_metadata(f, NULL), "metadata for a NULL key");
    char err2[64];
    CHECK(!tg_safetensors_read_into(f, "\x01no such tensor", NULL, err2, sizeof err2), "read_into a missing name");
    tg_safetensors_close(f);
    memfile_free(&m);
    return 0;
}

// --- tg_params_load ---

// Names and shapes of the bundled fixtures (tests/data/rnn/lstm_l1_uni_f32, gru_*_lengths,
// tests/data/safetensors/mixed and lstm), with dtypes that make the loader convert (F32 and
// F64 both ways) or refuse (the int tensors "lengths" and "ids": parameters are float).
static const struct {
    const char *name;
    tg_dtype dtype;
    tg_shape shape;
} PARAMS[] = {
    {"weight_ih_l0", TG_F32, {2, {20, 3}}}, {"weight_hh_l0", TG_F64, {2, {20, 5}}}, {"bias_ih_l0", TG_F32, {1, {20}}},
    {"bias_hh_l0", TG_F64, {1, {20}}},      {"lengths", TG_F32, {1, {4}}},         {"scalar", TG_F32, {0, {0}}},
    {"ids", TG_F64, {2, {2, 3}}},           {"f64", TG_F32, {2, {2, 3}}},          {"empty", TG_F64, {2, {0, 3}}},
};
#define N_PARAMS (int)(sizeof PARAMS / sizeof PARAMS[0])

static tg_params *fuzz_params(void) {
    tg_params *p = tg_params_new();
    CHECK(p, "tg_params_new failed");
    for (int i = 0; i < N_PARAMS; i++) {
        tg_tensor *t = tg_params_add(p, PARAMS[i].name, PARAMS[i].dtype, PARAMS[i].shape);
        CHECK(t, "tg_params_add failed");
        unsigned char *b = t->data;
        for (size_t k = 0; k < (size_t)t->numel * tg_dtype_size(t->dtype); k++) b[k] = (unsigned char)(i * 37 + k);
    }
    return p;
}

// True when every parameter of p holds what fuzz_params put there.
static bool params_untouched(const tg_params *p) {
    tg_params *fresh = fuzz_params();
    bool same = true;
    for (int i = 0; i < N_PARAMS; i++) {
        tg_tensor *a = tg_params_at(p, i), *b = tg_params_at(fresh, i);
        same &= memcmp(a->data, b->data, (size_t)a->numel * tg_dtype_size(a->dtype)) == 0;
    }
    tg_params_free(fresh);
    return same;
}

int tg_fuzz_params_load(const uint8_t *data, size_t size) {
    memfile m = memfile_new(data, size);
    char loose_err[1024] = "", strict_err[1024] = "";
    tg_params *loose = fuzz_params(), *strict = fuzz_params();
    bool loose_ok = tg_params_load(loose, m.path, false, loose_err, sizeof loose_err);
    bool strict_ok = tg_params_load(strict, m.path, true, strict_err, sizeof strict_err);
    CHECK(memchr(loose_err, 0, sizeof loose_err) && memchr(strict_err, 0, sizeof strict_err), "unterminated message");
    // Strict loads exactly when a loose load matches every name.
    CHECK(strict_ok == (loose_ok && !loose_err[0]), "strict %s, loose %s with \"%s\"", strict_ok ? "ok" : "refused",
          loose_ok ? "ok" : "refused", loose_err);
    if (!strict_ok) {
        CHECK_MESSAGE(strict_err, sizeof strict_err);
        CHECK(params_untouched(strict), "a refused strict load changed the parameters");
    } else {
        CHECK(!strict_err[0], "a strict load succeeded with a message: %s", strict_err);
    }
    if (!loose_ok) {
        CHECK_MESSAGE(loose_err, sizeof loose_err);
        CHECK(params_untouched(loose), "a refused load changed the parameters");
    } else {
        // Every parameter holds the file's tensor of its name, or what it held before.
        tg_safetensors *f = tg_safetensors_open(m.path, NULL, 0);
        CHECK(f, "tg_params_load accepted a file tg_safetensors_open refuses");
        tg_params *fresh = fuzz_params();
        for (int i = 0; i < N_PARAMS; i++) {
            tg_tensor *got = tg_params_at(loose, i), *want = tg_params_at(fresh, i);
            char err[256] = "";
            if (tg_safetensors_find(f, PARAMS[i].name, NULL))
                CHECK(tg_safetensors_read_into(f, PARAMS[i].name, want, err, sizeof err),
                      "loaded \"%s\", which read_into refuses: %s", PARAMS[i].name, err);
            CHECK(!memcmp(got->data, want->data, (size_t)got->numel * tg_dtype_size(got->dtype)),
                  "\"%s\" does not hold what the file holds", PARAMS[i].name);
        }
        tg_params_free(fresh);
        tg_safetensors_close(f);
    }
    // The same load with a tiny message buffer and with none.
    char small[5];
    tg_params *p = fuzz_params();
    CHECK(tg_params_load(p, m.path, false, small, sizeof small) == loose_ok && memchr(small, 0, sizeof small),
          "a small message buffer changed the result or was overrun");
    CHECK(tg_params_load(p, m.path, true, NULL, 0) == strict_ok, "no message buffer changed the result");
    tg_params_free(p);
    tg_params_free(loose);
    tg_params_free(strict);
    memfile_free(&m);
    return 0;
}

// --- CMUdict ---

static bool is_phone(const char *p, bool stripped) {
    size_t letters = strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
    if (letters == 0 || letters > 3) return false;
    const char *rest = p + letters;
    return !*rest || (!stripped && rest[0] >= '0' && rest[0] <= '2' && !rest[1]);
}

// A dictionary read as its own alternates file (tg_ex_cmudict_read_alternates): every line
// names a word it has, so all of them attach, one alternate a line.
static void check_own_alternates(const char *path, bool strip, tg_ex_cmudict *d) {
    tg_ex_error err = {""};
    bool ok = tg_ex_cmudict_read_alternates(path, strip, d, &err);
    CHECK(ok, "a dictionary refused as its own alternates: %s", err.msg);
    CHECK(d->has_alternates && d->n_alternates == d->n, "%d alternates of %d entries", d->n_alternates, d->n);
    int total = 0;
    for (int i = 0; i < d->n; i++)
        for (int k = 0; k < d->items[i].n_alternates; k++, total++)
            for (int j = 0; j < d->items[i].alternates[k].n_phones; j++)
                CHECK(is_phone(d->items[i].alternates[k].phones[j], strip), "entry %d: alternate phone not ARPAbet", i);
    CHECK(total == d->n, "%d alternates attached, %d read", total, d->n);
}

int tg_fuzz_cmudict(const uint8_t *data, size_t size) {
    memfile m = memfile_new(data, size);
    tg_ex_cmudict dicts[2];
    bool ok[2];
    for (int strip = 0; strip < 2; strip++) {
        tg_ex_error err = {""};
        tg_ex_cmudict *d = &dicts[strip];
        ok[strip] = tg_ex_cmudict_read(m.path, strip, d, &err);
        if (!ok[strip]) {
            CHECK_MESSAGE(err.msg, sizeof err.msg);
            CHECK(!d->items && !d->n, "a refused read left entries behind");
            continue;
        }
        CHECK(d->n > 0 && (size_t)d->n <= size, "%d entries from %zu bytes", d->n, size);
        for (int i = 0; i < d->n; i++) {
            const tg_ex_pron *p = &d->items[i];
            CHECK(p->word && p->word[0] && !strpbrk(p->word, " \t\n"), "entry %d: bad word", i);
            CHECK(p->n_phones >= 1 && p->n_phones <= 64, "entry %d: %d phones", i, p->n_phones);
            for (int k = 0; k < p->n_phones; k++)
                CHECK(is_phone(p->phones[k], strip), "entry %d: phone %d \"%s\" is not ARPAbet", i, k, p->phones[k]);
            CHECK(p->split == tg_ex_split_of(p->word, strlen(p->word)), "entry %d: wrong split", i);
        }
        check_own_alternates(m.path, strip, d);
    }
    CHECK(ok[0] == ok[1], "strip_stress changed whether the file reads");
    if (ok[0]) {
        CHECK(dicts[0].n == dicts[1].n, "strip_stress changed the number of entries");
        for (int i = 0; i < dicts[0].n; i++) {
            CHECK(!strcmp(dicts[0].items[i].word, dicts[1].items[i].word), "strip_stress changed word %d", i);
            CHECK(dicts[0].items[i].n_phones == dicts[1].items[i].n_phones, "strip_stress changed phones of %d", i);
        }
        tg_ex_cmudict_free(&dicts[0]);
        tg_ex_cmudict_free(&dicts[1]);
    }
    memfile_free(&m);
    return 0;
}

// --- Brown ---

int tg_fuzz_brown(const uint8_t *data, size_t size) {
    memfile m = memfile_new(data, size);
    tg_ex_brown b;
    tg_ex_error err = {""};
    if (!tg_ex_brown_read(m.path, &b, &err)) {
        CHECK_MESSAGE(err.msg, sizeof err.msg);
        CHECK(!b.items && !b.n, "a refused read left sentences behind");
        memfile_free(&m);
        return 0;
    }
    CHECK(b.n > 0, "no sentences accepted");
    int64_t tokens = 0;
    char small[7], *buf = NULL;
    size_t cap = 0;
    for (int i = 0; i < b.n; i++) {
        const tg_ex_sentence *s = &b.items[i];
        CHECK(s->n > 0, "sentence %d is empty", i);
        tokens += s->n;
        for (int k = 0; k < s->n; k++) {
            CHECK(s->words[k][0] && !strpbrk(s->words[k], " \t\n"), "sentence %d word %d", i, k);
            CHECK(s->tags[k][0] && !strpbrk(s->tags[k], " \t\n/"), "sentence %d tag %d", i, k);
        }
        size_t len = tg_ex_sentence_text(s, NULL, 0);
        if (len + 1 > cap) {
            cap = len + 1;
            free(buf);
            buf = malloc(cap);
            CHECK(buf, "out of memory");
        }
        CHECK(tg_ex_sentence_text(s, buf, len + 1) == len && strlen(buf) == len, "sentence %d: text length", i);
        CHECK(tg_ex_sentence_text(s, small, sizeof small) == len &&
                  strlen(small) == (len < sizeof small ? len : sizeof small - 1) && !strncmp(small, buf, strlen(small)),
              "sentence %d: text cut to a small buffer", i);
    }
    free(buf);
    CHECK(tokens == b.n_tokens, "n_tokens %lld, sentences hold %lld", (long long)b.n_tokens, (long long)tokens);
    tg_ex_brown_free(&b);
    memfile_free(&m);
    return 0;
}

// --- SpamAssassin ---

int tg_fuzz_spam(const uint8_t *data, size_t size) {
    memfile m = memfile_new(data, size);
    tg_ex_spam s;
    tg_ex_error err = {""};
    if (!tg_ex_spam_read(m.path, &s, &err)) {
        CHECK_MESSAGE(err.msg, sizeof err.msg);
        CHECK(!s.items && !s.n, "a refused read left messages behind");
        memfile_free(&m);
        return 0;
    }
    CHECK(s.n > 0, "no messages accepted");
    int n_spam = 0;
    for (int i = 0; i < s.n; i++) {
        const tg_ex_message *msg = &s.items[i];
        n_spam += msg->spam;
        CHECK(msg->id[0] && !strpbrk(msg->id, "\t\n"), "message %d: bad id", i);
        CHECK(msg->len > 0 && (size_t)msg->len == strlen(msg->text), "message %d: len %d, text %zu bytes", i, msg->len,
              strlen(msg->text));
        CHECK(msg->split == tg_ex_split_of(msg->text, (size_t)msg->len), "message %d: wrong split", i);
    }
    CHECK(n_spam == s.n_spam, "n_spam %d, labels say %d", s.n_spam, n_spam);
    tg_ex_spam_free(&s);
    memfile_free(&m);
    return 0;
}

// --- Vocabulary ---

// The promises of a vocabulary: reserved ids first, and id and token map to each other.
static void check_vocab(const tg_ex_vocab *v, const char *what) {
    static const char *const reserved[] = {"<pad>", "<unk>", "<s>", "</s>"};
    int n = tg_ex_vocab_size(v);
    CHECK(n >= TG_EX_RESERVED, "%s: size %d", what, n);
    for (int id = 0; id < TG_EX_RESERVED; id++)
        CHECK(!strcmp(tg_ex_vocab_token(v, id), reserved[id]), "%s: reserved id %d is \"%s\"", what, id,
              tg_ex_vocab_token(v, id));
    for (int id = 0; id < n; id++) {
        const char *token = tg_ex_vocab_token(v, id);
        CHECK(token && token[0], "%s: id %d has an empty token", what, id);
        CHECK(tg_ex_vocab_id(v, token) == id, "%s: token %d \"%s\" maps back to id %d", what, id, token,
              tg_ex_vocab_id(v, token));
    }
    CHECK(!strcmp(tg_ex_vocab_token(v, n), "<unk>") && !strcmp(tg_ex_vocab_token(v, -1), "<unk>"),
          "%s: an id out of range is not <unk>", what);
}

int tg_fuzz_vocab(const uint8_t *data, size_t size) {
    memfile m = memfile_new(data, size);
    tg_ex_error err = {""};
    tg_ex_vocab *v = tg_ex_vocab_load(m.path, &err);
    if (!v) {
        CHECK_MESSAGE(err.msg, sizeof err.msg);
        memfile_free(&m);
        return 0;
    }
    check_vocab(v, "loaded");
    // What tg_ex_vocab_save writes, tg_ex_vocab_load reads back as it was.
    // A real file: the save writes a temporary file beside it and renames it into place.
    char copy[TG_FUZZ_DIR_MAX + 16];
    snprintf(copy, sizeof copy, "%s/vocab", tg_fuzz_dir());
    CHECK(tg_ex_vocab_save(v, copy, &err), "cannot save a loaded vocabulary: %s", err.msg);
    tg_ex_vocab *again = tg_ex_vocab_load(copy, &err);
    unlink(copy);
    CHECK(again, "cannot load the vocabulary just saved: %s", err.msg);
    check_vocab(again, "saved and loaded again");
    CHECK(tg_ex_vocab_size(again) == tg_ex_vocab_size(v), "size %d after a round trip, %d before",
          tg_ex_vocab_size(again), tg_ex_vocab_size(v));
    for (int id = 0; id < tg_ex_vocab_size(v); id++)
        CHECK(!strcmp(tg_ex_vocab_token(v, id), tg_ex_vocab_token(again, id)), "token %d changed in a round trip", id);
    // Counting every token once more keeps the ids; pruning below 2 then keeps only the reserved.
    for (int id = TG_EX_RESERVED; id < tg_ex_vocab_size(again); id++)
        CHECK(tg_ex_vocab_add(again, tg_ex_vocab_token(v, id)) == id, "adding token %d gave another id", id);
    tg_ex_vocab_prune(again, 1);
    CHECK(tg_ex_vocab_size(again) == tg_ex_vocab_size(v), "prune(1) dropped counted tokens");
    tg_ex_vocab_prune(again, 2);
    CHECK(tg_ex_vocab_size(again) == TG_EX_RESERVED, "prune(2) kept tokens counted once");
    check_vocab(again, "pruned");
    tg_ex_vocab_free(again);
    tg_ex_vocab_free(v);
    memfile_free(&m);
    return 0;
}
