// tg_test_files.h: a scratch directory per test and the committed fixtures, for the tests
// that read and write files.
#ifndef TG_TEST_FILES_H
#define TG_TEST_FILES_H

#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char test_scratch_dir[64];

// Makes /tmp/<prefix>_XXXXXX for the test (call from a TestSuite's .init).
static inline void test_scratch_make(const char *prefix) {
    snprintf(test_scratch_dir, sizeof test_scratch_dir, "/tmp/%s_XXXXXX", prefix);
    cr_assert_not_null(mkdtemp(test_scratch_dir));
}

// Removes it; the tests make only files there, so one level of remove() does.
static inline void test_scratch_remove(void) {
    DIR *d = opendir(test_scratch_dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        char path[600];
        snprintf(path, sizeof path, "%s/%s", test_scratch_dir, e->d_name);
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) remove(path);
    }
    if (d) closedir(d);
    rmdir(test_scratch_dir);
}

// A fresh file in /tmp holding len bytes of text; returns its path (free it, unlink it).
static inline char *test_temp_file(const char *text, size_t len) {
    char *path = strdup("/tmp/tg_test_XXXXXX");
    int fd = mkstemp(path);
    cr_assert(fd >= 0, "mkstemp failed");
    cr_assert_eq(write(fd, text, len), (ssize_t)len);
    close(fd);
    return path;
}

static inline char *test_temp_text(const char *text) { return test_temp_file(text, strlen(text)); }

// A path in the scratch directory; each call gets its own buffer of a small ring.
static inline const char *scratch(const char *name) {
    static char buf[16][512];
    static int k;
    char *p = buf[k++ % 16];
    snprintf(p, sizeof buf[0], "%s/%s", test_scratch_dir, name);
    return p;
}

// tests/data/<dir>/<name>: CMake compiles the tests by absolute path, so the fixtures are
// found from __FILE__ (this header sits in tests/ too).
static inline const char *test_fixture(const char *dir, const char *name) {
    static char buf[4][1024];
    static int k;
    char *p = buf[k++ % 4];
    const char *slash = strrchr(__FILE__, '/');
    snprintf(p, sizeof buf[0], "%.*s/data/%s/%s", slash ? (int)(slash - __FILE__) : 1, slash ? __FILE__ : ".", dir,
             name);
    return p;
}

static inline void write_bytes(const char *path, const void *bytes, size_t n) {
    FILE *fp = fopen(path, "wb");
    cr_assert_not_null(fp, "cannot create %s", path);
    cr_assert_eq(fwrite(bytes, 1, n, fp), n);
    cr_assert_eq(fclose(fp), 0);
}

// The whole file in a malloc'd buffer (one spare byte at the end).
static inline unsigned char *read_bytes(const char *path, size_t *n) {
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "cannot stat %s", path);
    FILE *fp = fopen(path, "rb");
    cr_assert_not_null(fp, "cannot open %s", path);
    unsigned char *buf = malloc((size_t)st.st_size + 1);
    *n = fread(buf, 1, (size_t)st.st_size, fp);
    fclose(fp);
    cr_assert_eq(*n, (size_t)st.st_size);
    return buf;
}

#endif
