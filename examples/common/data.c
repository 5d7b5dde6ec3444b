// data.c: readers for the bundled data sets (formats in data/README.md), hash splits and the
// vocabulary shared by the examples.
//
// Each reader takes the whole file into one buffer, checks it as a text file (size, NUL
// bytes, line lengths, a final newline) and then parses it in place, so an example's data
// costs a handful of allocations however many entries it has.
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "tg_example.h"

// Files above this are not ours: the largest full set (brown.txt) is 11 MB.
#define MAX_FILE_BYTES ((size_t)512 << 20)

static const char *const DAMAGED_HINT =
    "The file looks damaged or is not this data set: restore the bundled one with "
    "`git checkout data/`, or fetch the full sets again with scripts/fetch_data.sh --force.";

static void set_error(tg_ex_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(tg_ex_error *err, const char *fmt, ...) {
    if (!err) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
}

// A problem at line `line` of path (0: the file as a whole), with the advice to restore it.
static void bad_line(tg_ex_error *err, const char *path, int line, const char *what) {
    if (line > 0) set_error(err, "%s:%d: %s. %s", path, line, what, DAMAGED_HINT);
    else set_error(err, "%s: %s. %s", path, what, DAMAGED_HINT);
}

// --- Splits ---

tg_ex_split tg_ex_split_of(const void *key, size_t len) {
    unsigned bucket = (unsigned)(XXH64(key, len, 0) % 100);
    return bucket < 80 ? TG_EX_TRAIN : bucket < 90 ? TG_EX_DEV : TG_EX_TEST;
}

const char *tg_ex_split_name(tg_ex_split split) {
    return split == TG_EX_TRAIN ? "train" : split == TG_EX_DEV ? "dev" : split == TG_EX_TEST ? "test" : "?";
}

// --- Whole files ---

// Reads the whole of f into a NUL-terminated buffer (*size bytes before the NUL); NULL with a
// message when it is too large, memory runs out or reading fails.
static char *read_whole(FILE *f, const char *path, size_t *size, tg_ex_error *err) {
    char *text = NULL;
    size_t cap = 0;
    *size = 0;
    for (;;) {
        if (cap - *size < 65536) {
            if (cap >= MAX_FILE_BYTES)
                return free(text), bad_line(err, path, 0, "the file is larger than 512 MiB"), NULL;
            cap = cap ? cap * 2 : 1 << 20;
            char *grown = realloc(text, cap + 1);
            if (!grown) return free(text), set_error(err, "%s: out of memory reading it", path), NULL;
            text = grown;
        }
        size_t got = fread(text + *size, 1, cap - *size, f);
        *size += got;
        if (got == 0) break;
    }
    if (ferror(f)) return free(text), set_error(err, "%s: read error", path), NULL;
    text[*size] = 0;
    return text;
}

// Checks that text [size] is text of at most max_line bytes a line, each ending with a
// newline; counts its lines. False with a message naming the line.
static bool check_text(const char *text, size_t size, size_t max_line, const char *path, int *n_lines,
                       tg_ex_error *err) {
    if (size == 0) return bad_line(err, path, 0, "the file is empty"), false;
    if (memchr(text, 0, size)) {
        int line = 1;
        for (const char *c = text; *c; c++) line += *c == '\n';
        return bad_line(err, path, line, "a NUL byte: this is binary data, not a text file"), false;
    }
    int lines = 0;
    for (const char *at = text; *at;) {
        const char *end = strchr(at, '\n');
        lines++;
        if (!end) return bad_line(err, path, lines, "the last line has no newline: the file was cut short"), false;
        if ((size_t)(end - at) > max_line) {
            char what[96];
            snprintf(what, sizeof what, "a line of %zu bytes, longer than the %zu this format allows",
                     (size_t)(end - at), max_line);
            return bad_line(err, path, lines, what), false;
        }
        at = end + 1;
    }
    *n_lines = lines;
    return true;
}

// Shared with series.c through tg_example.h.
char *tg_ex_read_text(const char *path, size_t max_line, int *n_lines, tg_ex_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        set_error(err,
                  "cannot open %s: %s. The small data sets ship in the repository under data/ "
                  "(--data DIR points elsewhere); the full ones come from scripts/fetch_data.sh, "
                  "then --data data/full.",
                  path, strerror(errno));
        return NULL;
    }
    size_t size;
    char *text = read_whole(f, path, &size, err);
    fclose(f);
    if (text && !check_text(text, size, max_line, path, n_lines, err)) free(text), text = NULL;
    return text;
}

// Cuts the next line out of *at: NUL-terminates it (dropping a '\r'), advances *at.
static char *next_line(char **at) {
    char *line = *at, *end = strchr(line, '\n');
    *end = 0;
    *at = end + 1;
    if (end > line && end[-1] == '\r') end[-1] = 0;
    return line;
}

static void join_path(char *out, size_t size, const char *dir, const char *file) {
    snprintf(out, size, "%s/%s", dir && *dir ? dir : ".", file);
}

// --- CMUdict ---

enum { CMUDICT_MAX_LINE = 1024, MAX_PHONES = 64 };

// An ARPAbet symbol: capitals, then at most one stress digit 0-2.
static bool is_phone(const char *p) {
    size_t letters = 0;
    while (p[letters] >= 'A' && p[letters] <= 'Z') letters++;
    if (letters == 0 || letters > 3) return false;
    const char *rest = p + letters;
    return !*rest || (rest[0] >= '0' && rest[0] <= '2' && !rest[1]);
}

// Parses line (WORD<TAB>PHONE PHONE ...) in place: *word, and its phones into phones[0..*n).
// False with a message naming path and line_no.
static bool parse_entry(char *line, const char *path, int line_no, bool strip_stress, const char **word,
                        const char **phones, int *n, tg_ex_error *err) {
    char *tab = strchr(line, '\t');
    if (!tab || tab == line || !tab[1] || strchr(tab + 1, '\t'))
        return bad_line(err, path, line_no, "expected WORD<TAB>PHONE PHONE ... (one tab)"), false;
    *tab = 0;
    if (strchr(line, ' ')) return bad_line(err, path, line_no, "a space inside the word"), false;
    *word = line;
    *n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(tab + 1, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        if (*n == MAX_PHONES || !is_phone(tok)) {
            char what[96];
            if (*n == MAX_PHONES) snprintf(what, sizeof what, "more than %d phones", MAX_PHONES);
            else snprintf(what, sizeof what, "'%.16s' is not an ARPAbet phone", tok);
            return bad_line(err, path, line_no, what), false;
        }
        if (strip_stress) {
            size_t len = strlen(tok);
            if (tok[len - 1] >= '0' && tok[len - 1] <= '2') tok[len - 1] = 0;
        }
        phones[(*n)++] = tok;
    }
    if (*n == 0) return bad_line(err, path, line_no, "a word without phones"), false;
    return true;
}

bool tg_ex_cmudict_read(const char *path, bool strip_stress, tg_ex_cmudict *dict, tg_ex_error *err) {
    memset(dict, 0, sizeof *dict);
    int n_lines;
    char *text = tg_ex_read_text(path, CMUDICT_MAX_LINE, &n_lines, err);
    if (!text) return false;
    dict->text_ = text;
    dict->items = calloc((size_t)n_lines, sizeof *dict->items);
    // No line holds more phones than half its bytes, so this bounds the phone storage.
    dict->phones_ = malloc(((size_t)strlen(text) / 2 + 1) * sizeof *dict->phones_);
    if (!dict->items || !dict->phones_) {
        tg_ex_cmudict_free(dict);
        set_error(err, "%s: out of memory", path);
        return false;
    }
    size_t used = 0;
    char *at = text;
    for (int line_no = 1; *at; line_no++) {
        char *line = next_line(&at);
        if (!*line) continue;
        tg_ex_pron *p = &dict->items[dict->n];
        p->phones = dict->phones_ + used;
        if (!parse_entry(line, path, line_no, strip_stress, &p->word, dict->phones_ + used, &p->n_phones, err)) {
            tg_ex_cmudict_free(dict);
            return false;
        }
        used += (size_t)p->n_phones;
        p->split = tg_ex_split_of(p->word, strlen(p->word));
        dict->n++;
    }
    if (dict->n == 0) {
        bad_line(err, path, 0, "no entries");
        tg_ex_cmudict_free(dict);
        return false;
    }
    return true;
}

static int by_word(const void *a, const void *b) {
    return strcmp((*(const tg_ex_pron *const *)a)->word, (*(const tg_ex_pron *const *)b)->word);
}

// The alternates of one file in line order, before they are grouped by word.
typedef struct {
    char *text;          // the file, parsed in place
    const char **phones; // storage behind every line's phones
    tg_ex_phones *line;  // [n] each line's pronunciation
    int *owner;          // [n] the item of dict each line belongs to
    int n;
} alternates;

// Parses every line of the alternates file, finding its word in dict by binary search over
// sorted [dict->n] (pointers into dict->items). False with a message naming path and line.
static bool parse_alternates(alternates *a, const char *path, bool strip_stress, const tg_ex_cmudict *dict,
                             tg_ex_pron **sorted, tg_ex_error *err) {
    size_t used = 0;
    char *at = a->text;
    for (int line_no = 1; *at; line_no++) {
        char *line = next_line(&at);
        if (!*line) continue;
        tg_ex_pron key = {0}, *keyp = &key;
        tg_ex_phones *alt = &a->line[a->n];
        alt->phones = a->phones + used;
        if (!parse_entry(line, path, line_no, strip_stress, &key.word, a->phones + used, &alt->n_phones, err))
            return false;
        tg_ex_pron **found = bsearch(&keyp, sorted, (size_t)dict->n, sizeof *sorted, by_word);
        if (!found) {
            char what[128];
            snprintf(what, sizeof what, "'%.64s' is not a word of the dictionary (cmudict.tsv) it goes with", key.word);
            return bad_line(err, path, line_no, what), false;
        }
        used += (size_t)alt->n_phones;
        a->owner[a->n++] = (int)(*found - dict->items);
    }
    return true;
}

// Groups the parsed lines by word, keeping their order, into dict->alts_ and attaches them.
static void attach_alternates(const alternates *a, tg_ex_cmudict *dict, int *start) {
    memset(start, 0, sizeof *start * (size_t)(dict->n + 1)); // start [n + 1]: of each word's alternates
    for (int k = 0; k < a->n; k++) start[a->owner[k] + 1]++;
    for (int i = 0; i < dict->n; i++) start[i + 1] += start[i];
    for (int i = 0; i < dict->n; i++) {
        dict->items[i].alternates = dict->alts_ + start[i];
        dict->items[i].n_alternates = 0;
    }
    for (int k = 0; k < a->n; k++) {
        tg_ex_pron *p = &dict->items[a->owner[k]];
        dict->alts_[start[a->owner[k]] + p->n_alternates++] = a->line[k];
    }
    dict->n_alternates = a->n;
    dict->has_alternates = true;
}

bool tg_ex_cmudict_read_alternates(const char *path, bool strip_stress, tg_ex_cmudict *dict, tg_ex_error *err) {
    int n_lines;
    alternates a = {.text = tg_ex_read_text(path, CMUDICT_MAX_LINE, &n_lines, err)};
    if (!a.text) return false;
    a.phones = malloc((strlen(a.text) / 2 + 1) * sizeof *a.phones); // half a line's bytes, as above
    a.line = malloc(sizeof *a.line * (size_t)n_lines);
    a.owner = malloc(sizeof *a.owner * (size_t)n_lines);
    tg_ex_pron **sorted = malloc(sizeof *sorted * (size_t)dict->n);  // [dict->n] by word
    int *start = malloc(sizeof *start * ((size_t)dict->n + 1));      // [dict->n + 1]
    tg_ex_phones *alts = malloc(sizeof *alts * (size_t)n_lines);     // [n_lines] grouped by word
    bool ok = a.phones && a.line && a.owner && sorted && start && alts;
    if (!ok) set_error(err, "%s: out of memory", path);
    if (ok) {
        for (int i = 0; i < dict->n; i++) sorted[i] = &dict->items[i];
        qsort(sorted, (size_t)dict->n, sizeof *sorted, by_word);
        ok = parse_alternates(&a, path, strip_stress, dict, sorted, err);
    }
    if (ok) {
        free(dict->alt_text_), free(dict->alt_phones_), free(dict->alts_); // a second file replaces the first
        dict->alt_text_ = a.text, dict->alt_phones_ = a.phones, dict->alts_ = alts;
        attach_alternates(&a, dict, start);
    } else {
        free(a.text), free(a.phones), free(alts);
    }
    free(a.line), free(a.owner), free(sorted), free(start);
    return ok;
}

bool tg_ex_cmudict_load(const char *data_dir, bool strip_stress, tg_ex_cmudict *dict, tg_ex_error *err) {
    char path[4096];
    join_path(path, sizeof path, data_dir, "cmudict/cmudict.tsv");
    if (!tg_ex_cmudict_read(path, strip_stress, dict, err)) return false;
    // Optional: a data folder fetched before the alternates had their file goes on without them.
    join_path(path, sizeof path, data_dir, "cmudict/cmudict-alternates.tsv");
    if (access(path, F_OK) != 0 && errno == ENOENT) return true;
    if (tg_ex_cmudict_read_alternates(path, strip_stress, dict, err)) return true;
    tg_ex_cmudict_free(dict);
    return false;
}

void tg_ex_cmudict_free(tg_ex_cmudict *dict) {
    free(dict->items);
    free(dict->phones_);
    free(dict->text_);
    free(dict->alt_text_);
    free(dict->alt_phones_);
    free(dict->alts_);
    memset(dict, 0, sizeof *dict);
}

// --- Brown ---

enum { BROWN_MAX_LINE = 1 << 16 };

// The tokens of a line: runs of characters between spaces and tabs.
static int count_tokens(const char *line) {
    int n = 0;
    for (const char *c = line; *c;) {
        while (*c == ' ' || *c == '\t') c++;
        if (!*c) break;
        n++;
        while (*c && *c != ' ' && *c != '\t') c++;
    }
    return n;
}

// Splits a line of n word/TAG tokens (in place) into s's words and tags; key receives the
// words joined by spaces (the split's key), *key_len its length. False with a message.
static bool parse_tagged_line(char *line, tg_ex_sentence *s, char *key, size_t *key_len, const char *path,
                              int line_no, tg_ex_error *err) {
    char *save = NULL;
    *key_len = 0;
    for (char *tok = strtok_r(line, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
        char *slash = strrchr(tok, '/');
        if (!slash || slash == tok || !slash[1]) {
            char what[96];
            snprintf(what, sizeof what, "'%.24s' is not word/TAG", tok);
            bad_line(err, path, line_no, what);
            return false;
        }
        *slash = 0;
        s->words[s->n] = tok;
        s->tags[s->n] = slash + 1;
        s->n++;
        size_t len = (size_t)(slash - tok);
        if (*key_len) key[(*key_len)++] = ' ';
        memcpy(key + *key_len, tok, len);
        *key_len += len;
    }
    return true;
}

bool tg_ex_brown_read(const char *path, tg_ex_brown *brown, tg_ex_error *err) {
    memset(brown, 0, sizeof *brown);
    int n_lines;
    char *text = tg_ex_read_text(path, BROWN_MAX_LINE, &n_lines, err);
    if (!text) return false;
    brown->text_ = text;
    size_t bytes = strlen(text), used = 0;
    brown->items = calloc((size_t)n_lines, sizeof *brown->items);
    // A token takes at least 4 bytes ("a/X "), so bytes/2 pointers hold every word and tag.
    brown->tokens_ = malloc((bytes / 2 + 2) * sizeof *brown->tokens_);
    char *key = malloc(BROWN_MAX_LINE + 1); // the words joined by spaces, for the split
    bool ok = brown->items && brown->tokens_ && key;
    if (!ok) set_error(err, "%s: out of memory", path);
    char *at = text;
    for (int line_no = 1; ok && *at; line_no++) {
        char *line = next_line(&at);
        int n = count_tokens(line); // first, so that the words and tags arrays can sit side by side
        if (n == 0) continue;
        tg_ex_sentence *s = &brown->items[brown->n];
        s->words = brown->tokens_ + used;
        s->tags = s->words + n;
        size_t key_len;
        ok = parse_tagged_line(line, s, key, &key_len, path, line_no, err);
        s->split = tg_ex_split_of(key, key_len);
        used += 2 * (size_t)n;
        brown->n_tokens += n;
        brown->n++;
    }
    free(key);
    if (ok && brown->n == 0) ok = false, bad_line(err, path, 0, "no sentences");
    if (!ok) tg_ex_brown_free(brown);
    return ok;
}

bool tg_ex_brown_load(const char *data_dir, tg_ex_brown *brown, tg_ex_error *err) {
    char path[4096];
    join_path(path, sizeof path, data_dir, "brown/brown.txt");
    return tg_ex_brown_read(path, brown, err);
}

void tg_ex_brown_free(tg_ex_brown *brown) {
    free(brown->items);
    free(brown->tokens_);
    free(brown->text_);
    memset(brown, 0, sizeof *brown);
}

// Appends the n bytes at s to buf[size] at *len, keeping buf NUL-terminated; *len counts
// every byte, written or not, like snprintf's return value.
static void append(char *buf, size_t size, size_t *len, const char *s, size_t n) {
    if (*len + 1 < size) {
        size_t room = size - 1 - *len, k = n < room ? n : room;
        memcpy(buf + *len, s, k);
        buf[*len + k] = 0;
    }
    *len += n;
}

size_t tg_ex_sentence_text(const tg_ex_sentence *sentence, char *buf, size_t size) {
    static const char *const no_space_before[] = {",", ".", ";", ":", "?", "!", ")", "]", "''", "'"};
    size_t len = 0;
    bool glue = true; // no space before the first word, nor after an opening bracket or quote
    if (size) buf[0] = 0;
    for (int i = 0; i < sentence->n; i++) {
        const char *w = sentence->words[i];
        bool opening = !strcmp(w, "``") || !strcmp(w, "(") || !strcmp(w, "[");
        bool closing = false;
        for (int k = 0; k < TG_EX_LEN(no_space_before); k++) closing |= !strcmp(w, no_space_before[k]);
        if (!glue && !closing) append(buf, size, &len, " ", 1);
        if (!strcmp(w, "``") || !strcmp(w, "''")) append(buf, size, &len, "\"", 1);
        else append(buf, size, &len, w, strlen(w));
        glue = opening;
    }
    return len;
}

// --- SpamAssassin ---

enum { SPAM_MAX_LINE = 1 << 20 };

// Undoes the escapes of spam.tsv (\\ \t \n) in place; false on any other backslash.
static bool unescape(char *s, int *len) {
    char *out = s;
    for (const char *in = s; *in; in++) {
        if (*in != '\\') {
            *out++ = *in;
            continue;
        }
        in++;
        if (*in == '\\') *out++ = '\\';
        else if (*in == 't') *out++ = '\t';
        else if (*in == 'n') *out++ = '\n';
        else if (*in == 'r') *out++ = '\r';
        else return false;
    }
    *out = 0;
    *len = (int)(out - s);
    return true;
}

bool tg_ex_spam_read(const char *path, tg_ex_spam *spam, tg_ex_error *err) {
    memset(spam, 0, sizeof *spam);
    int n_lines;
    char *text = tg_ex_read_text(path, SPAM_MAX_LINE, &n_lines, err);
    if (!text) return false;
    spam->text_ = text;
    spam->items = calloc((size_t)n_lines, sizeof *spam->items);
    if (!spam->items) {
        tg_ex_spam_free(spam);
        set_error(err, "%s: out of memory", path);
        return false;
    }
    char *at = text;
    for (int line_no = 1; *at; line_no++) {
        char *line = next_line(&at);
        if (!*line) continue;
        char *tab1 = strchr(line, '\t'), *tab2 = tab1 ? strchr(tab1 + 1, '\t') : NULL;
        const char *what = NULL;
        if (!tab2 || strchr(tab2 + 1, '\t')) what = "expected LABEL<TAB>ID<TAB>TEXT (two tabs)";
        else if (tab2 == tab1 + 1) what = "an empty message id";
        else if (!tab2[1]) what = "an empty message text";
        else {
            *tab1 = *tab2 = 0;
            if (strcmp(line, "spam") && strcmp(line, "ham")) what = "the label is neither spam nor ham";
        }
        tg_ex_message *m = &spam->items[spam->n];
        if (!what && !unescape(tab2 + 1, &m->len)) what = "a backslash that is not \\\\, \\t or \\n in the text";
        if (what) {
            bad_line(err, path, line_no, what);
            tg_ex_spam_free(spam);
            return false;
        }
        m->spam = line[0] == 's';
        m->id = tab1 + 1;
        m->text = tab2 + 1;
        m->split = tg_ex_split_of(m->text, (size_t)m->len);
        spam->n_spam += m->spam;
        spam->n++;
    }
    if (spam->n == 0) {
        bad_line(err, path, 0, "no messages");
        tg_ex_spam_free(spam);
        return false;
    }
    return true;
}

bool tg_ex_spam_load(const char *data_dir, tg_ex_spam *spam, tg_ex_error *err) {
    char path[4096];
    join_path(path, sizeof path, data_dir, "spam/spam.tsv");
    return tg_ex_spam_read(path, spam, err);
}

void tg_ex_spam_free(tg_ex_spam *spam) {
    free(spam->items);
    free(spam->text_);
    memset(spam, 0, sizeof *spam);
}

// --- Vocabulary ---

// Tokens in id order, each a NUL-terminated copy; an open-addressing table of ids (-1 free)
// sized to a power of two at most half full.
struct tg_ex_vocab {
    char **tokens;
    size_t *lens;
    int64_t *counts;
    int size, cap;
    int *table;
    size_t mask;
};

static const char *const RESERVED[TG_EX_RESERVED] = {"<pad>", "<unk>", "<s>", "</s>"};

static size_t slot_of(const tg_ex_vocab *v, const char *token, size_t len, bool *found) {
    size_t i = (size_t)XXH64(token, len, 0) & v->mask;
    for (;; i = (i + 1) & v->mask) {
        int id = v->table[i];
        if (id < 0) {
            *found = false;
            return i;
        }
        if (v->lens[id] == len && !memcmp(v->tokens[id], token, len)) {
            *found = true;
            return i;
        }
    }
}

static bool rehash(tg_ex_vocab *v, size_t slots) {
    int *table = malloc(slots * sizeof *table);
    if (!table) return false;
    free(v->table);
    v->table = table;
    v->mask = slots - 1;
    for (size_t i = 0; i < slots; i++) table[i] = -1;
    for (int id = 0; id < v->size; id++) {
        bool found;
        table[slot_of(v, v->tokens[id], v->lens[id], &found)] = id;
    }
    return true;
}

// Appends a token that is not there yet; its id, or -1 when out of memory.
static int push(tg_ex_vocab *v, const char *token, size_t len) {
    if (v->size == v->cap) {
        int cap = v->cap ? v->cap * 2 : 64;
        char **tokens = realloc(v->tokens, (size_t)cap * sizeof *tokens);
        if (tokens) v->tokens = tokens;
        size_t *lens = realloc(v->lens, (size_t)cap * sizeof *lens);
        if (lens) v->lens = lens;
        int64_t *counts = realloc(v->counts, (size_t)cap * sizeof *counts);
        if (counts) v->counts = counts;
        if (!tokens || !lens || !counts) return -1;
        v->cap = cap;
    }
    if ((size_t)(v->size + 1) * 2 > v->mask + 1 && !rehash(v, (v->mask + 1) * 2)) return -1;
    char *copy = malloc(len + 1);
    if (!copy) return -1;
    memcpy(copy, token, len);
    copy[len] = 0;
    int id = v->size++;
    v->tokens[id] = copy;
    v->lens[id] = len;
    v->counts[id] = 0;
    bool found;
    v->table[slot_of(v, copy, len, &found)] = id;
    return id;
}

tg_ex_vocab *tg_ex_vocab_new(void) {
    tg_ex_vocab *v = calloc(1, sizeof *v);
    if (!v || !rehash(v, 128)) {
        free(v);
        return NULL;
    }
    for (int i = 0; i < TG_EX_RESERVED; i++)
        if (push(v, RESERVED[i], strlen(RESERVED[i])) != i) {
            tg_ex_vocab_free(v);
            return NULL;
        }
    return v;
}

void tg_ex_vocab_free(tg_ex_vocab *v) {
    if (!v) return;
    for (int i = 0; i < v->size; i++) free(v->tokens[i]);
    free(v->tokens);
    free(v->lens);
    free(v->counts);
    free(v->table);
    free(v);
}

int tg_ex_vocab_add_n(tg_ex_vocab *v, const char *token, size_t len) {
    if (len == 0) return TG_EX_UNK;
    bool found;
    size_t slot = slot_of(v, token, len, &found);
    int id = found ? v->table[slot] : push(v, token, len);
    if (id >= 0) v->counts[id]++;
    return id;
}

int tg_ex_vocab_add(tg_ex_vocab *v, const char *token) { return tg_ex_vocab_add_n(v, token, strlen(token)); }

int tg_ex_vocab_id_n(const tg_ex_vocab *v, const char *token, size_t len) {
    bool found;
    size_t slot = slot_of(v, token, len, &found);
    return found ? v->table[slot] : TG_EX_UNK;
}

int tg_ex_vocab_id(const tg_ex_vocab *v, const char *token) { return tg_ex_vocab_id_n(v, token, strlen(token)); }

const char *tg_ex_vocab_token(const tg_ex_vocab *v, int id) {
    return id >= 0 && id < v->size ? v->tokens[id] : RESERVED[TG_EX_UNK];
}

int tg_ex_vocab_size(const tg_ex_vocab *v) { return v->size; }

const char *tg_ex_vocab_join(const tg_ex_vocab *v, const int32_t *ids, int n, char *buf, size_t size) {
    size_t at = 0;
    if (size) buf[0] = 0;
    for (int i = 0; i < n && at < size; i++)
        at += (size_t)snprintf(buf + at, size - at, "%s%s", i ? " " : "", tg_ex_vocab_token(v, ids[i]));
    return buf;
}

bool tg_ex_vocab_equal(const tg_ex_vocab *a, const tg_ex_vocab *b) {
    bool same = a->size == b->size;
    for (int i = 0; same && i < a->size; i++) same = !strcmp(a->tokens[i], b->tokens[i]);
    return same;
}

int64_t tg_ex_vocab_count(const tg_ex_vocab *v, int id) { return id >= 0 && id < v->size ? v->counts[id] : 0; }

void tg_ex_vocab_prune(tg_ex_vocab *v, int64_t min_count) {
    int kept = TG_EX_RESERVED;
    for (int id = TG_EX_RESERVED; id < v->size; id++) {
        if (v->counts[id] >= min_count) {
            v->tokens[kept] = v->tokens[id];
            v->lens[kept] = v->lens[id];
            v->counts[kept] = v->counts[id];
            kept++;
        } else {
            free(v->tokens[id]);
        }
    }
    v->size = kept;
    // Refill the table in place rather than rehash, so pruning never allocates or fails.
    for (size_t i = 0; i <= v->mask; i++) v->table[i] = -1;
    for (int id = 0; id < v->size; id++) {
        bool found;
        v->table[slot_of(v, v->tokens[id], v->lens[id], &found)] = id;
    }
}

// Written to path.tmp.<pid>, synced and renamed over path: a run killed while saving leaves
// the previous vocabulary whole.
bool tg_ex_vocab_save(const tg_ex_vocab *v, const char *path, tg_ex_error *err) {
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        set_error(err, "cannot write the vocabulary %s: the path is too long", path);
        return false;
    }
    FILE *f = fopen(tmp, "w");
    if (!f) {
        set_error(err, "cannot write the vocabulary %s: %s", tmp, strerror(errno));
        return false;
    }
    for (int id = 0; id < v->size; id++) {
        for (size_t k = 0; k < v->lens[id]; k++) {
            char c = v->tokens[id][k];
            if (c == '\\') fputs("\\\\", f);
            else if (c == '\n') fputs("\\n", f);
            else if (c == '\t') fputs("\\t", f);
            else if (c == '\r') fputs("\\r", f); // a raw \r before the newline would be read as a line end
            else fputc(c, f);
        }
        fputc('\n', f);
    }
    bool ok = !ferror(f) && fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok &= fclose(f) == 0;
    if (ok && rename(tmp, path) != 0) ok = false;
    if (!ok) {
        set_error(err, "cannot write the vocabulary %s: %s", path, strerror(errno));
        unlink(tmp);
    }
    return ok;
}

tg_ex_vocab *tg_ex_vocab_load(const char *path, tg_ex_error *err) {
    int n_lines;
    char *text = tg_ex_read_text(path, SPAM_MAX_LINE, &n_lines, err);
    if (!text) return NULL;
    tg_ex_vocab *v = tg_ex_vocab_new();
    if (!v) {
        free(text);
        set_error(err, "%s: out of memory", path);
        return NULL;
    }
    char *at = text;
    const char *what = NULL;
    int line_no = 1;
    for (; *at && !what; line_no++) {
        char *line = next_line(&at);
        int len;
        if (!unescape(line, &len)) what = "a backslash that is not \\\\, \\t, \\n or \\r";
        else if (line_no <= TG_EX_RESERVED) {
            if (strcmp(line, RESERVED[line_no - 1])) what = "the first four lines must be <pad>, <unk>, <s>, </s>";
        } else if (len == 0) what = "an empty token";
        // id_n answers UNK for unknown tokens, so <unk> itself is checked by name.
        else if (tg_ex_vocab_id_n(v, line, (size_t)len) != TG_EX_UNK || !strcmp(line, RESERVED[TG_EX_UNK]))
            what = "a token listed twice";
        else if (push(v, line, (size_t)len) < 0) what = "out of memory";
    }
    if (!what && line_no - 1 < TG_EX_RESERVED) what = "fewer than the four reserved tokens";
    free(text);
    if (what) {
        set_error(err, "%s:%d: %s; this is not a vocabulary written by tg_ex_vocab_save (save it again)", path,
                  line_no - 1, what);
        tg_ex_vocab_free(v);
        return NULL;
    }
    return v;
}

void tg_ex_shuffle(int *idx, int n, tg_rng *rng) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)tg_rng_below(rng, (uint64_t)i + 1), t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

static const int64_t *sort_start; // tg_ex_epoch_order's start[]: qsort has no context argument in C11
static int by_length(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    int64_t li = sort_start[i + 1] - sort_start[i], lj = sort_start[j + 1] - sort_start[j];
    return (li > lj) - (li < lj);
}

void tg_ex_epoch_order(const int *train, int n, const int64_t *start, uint64_t seed, int64_t epoch, int window,
                       int *order) {
    memcpy(order, train, sizeof *order * (size_t)n);
    tg_rng r;
    tg_rng_seed(&r, seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)(epoch + 1)));
    tg_ex_shuffle(order, n, &r);
    sort_start = start;
    for (int at = 0; at < n; at += window)
        qsort(order + at, (size_t)(n - at < window ? n - at : window), sizeof *order, by_length);
}
