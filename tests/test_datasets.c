// test_datasets.c: the examples' dataset readers (examples/common/data.c) on the bundled
// data, their hash splits, and damaged, missing and truncated files; the error rates g2p
// scores pronunciations by (examples/common/score.c). The vocabulary, options,
// progress and checkpoint configs are test_example_cli.c's.
#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tg_example.h"
#include "tg_test.h"
#include "tg_test_files.h"

#ifndef TG_DATA_DIR
#define TG_DATA_DIR "data"
#endif

// The first n bytes of a file of the bundled data.
static char *head_of(const char *relative, size_t n, size_t *got) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", TG_DATA_DIR, relative);
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot open %s", path);
    char *buf = malloc(n);
    *got = fread(buf, 1, n, f);
    fclose(f);
    return buf;
}

// --- CMUdict ---

static const tg_ex_pron *find_word(const tg_ex_cmudict *d, const char *word) {
    for (int i = 0; i < d->n; i++)
        if (!strcmp(d->items[i].word, word)) return &d->items[i];
    return NULL;
}

static void assert_joined(const char **phones, int n, const char *expected, const char *word) {
    char joined[256] = "";
    for (int i = 0; i < n; i++) {
        if (i) strcat(joined, " ");
        strcat(joined, phones[i]);
    }
    cr_assert_str_eq(joined, expected, "%s", word);
}

static void assert_phones(const tg_ex_pron *p, const char *expected) {
    assert_joined(p->phones, p->n_phones, expected, p->word);
}

// The k-th alternate pronunciation of p.
static void assert_alternate(const tg_ex_pron *p, int k, const char *expected) {
    cr_assert_lt(k, p->n_alternates, "%s has %d alternates", p->word, p->n_alternates);
    assert_joined(p->alternates[k].phones, p->alternates[k].n_phones, expected, p->word);
}

Test(cmudict, bundled_counts_and_known_entries) {
    tg_ex_cmudict d;
    tg_ex_error err;
    cr_assert(tg_ex_cmudict_load(TG_DATA_DIR, false, &d, &err), "%s", err.msg);
    cr_assert_eq(d.n, 15612);
    cr_assert_str_eq(d.items[0].word, "A");
    assert_phones(&d.items[0], "AH0"); // the first pronunciation; A(1) EY1 is left out
    assert_phones(find_word(&d, "HELLO"), "HH AH0 L OW1");
    assert_phones(find_word(&d, "BAROMETERS"), "B ER0 AA1 M IH0 T ER0 Z");
    cr_assert_str_eq(d.items[d.n - 1].word, "ZYUGANOV'S");
    for (int i = 0; i < d.n; i++) cr_assert(!strchr(d.items[i].word, '('), "alternate %s", d.items[i].word);
    tg_ex_cmudict_free(&d);
    cr_assert_null(d.items);
}

Test(cmudict, strip_stress) {
    tg_ex_cmudict d;
    tg_ex_error err;
    cr_assert(tg_ex_cmudict_load(TG_DATA_DIR, true, &d, &err), "%s", err.msg);
    assert_phones(find_word(&d, "HELLO"), "HH AH L OW");
    for (int i = 0; i < d.n; i++)
        for (int k = 0; k < d.items[i].n_phones; k++) {
            const char *p = d.items[i].phones[k];
            cr_assert(p[strlen(p) - 1] > '9', "%s keeps a digit in %s", d.items[i].word, p);
        }
    tg_ex_cmudict_free(&d);
}

Test(cmudict, crlf_and_blank_lines_are_accepted) {
    char *path = test_temp_text("HELLO\tHH AH0 L OW1\r\n\nWORLD\tW ER1 L D\r\n");
    tg_ex_cmudict d;
    tg_ex_error err;
    cr_assert(tg_ex_cmudict_read(path, false, &d, &err), "%s", err.msg);
    cr_assert_eq(d.n, 2);
    assert_phones(&d.items[1], "W ER1 L D");
    tg_ex_cmudict_free(&d);
    unlink(path);
    free(path);
}

// A data folder in /tmp holding cmudict/cmudict.tsv and, unless alternates is NULL,
// cmudict/cmudict-alternates.tsv (len bytes of it); returns its path (free it).
static char *temp_cmudict_dir(const char *main, const char *alternates, size_t len) {
    char *dir = strdup("/tmp/tg_cmudict_XXXXXX"), path[256];
    cr_assert(mkdtemp(dir), "mkdtemp failed");
    snprintf(path, sizeof path, "%s/cmudict", dir);
    cr_assert_eq(mkdir(path, 0700), 0);
    const char *names[2] = {"cmudict.tsv", "cmudict-alternates.tsv"}, *texts[2] = {main, alternates};
    size_t lens[2] = {strlen(main), len};
    for (int i = 0; i < 2 && texts[i]; i++) {
        snprintf(path, sizeof path, "%s/cmudict/%s", dir, names[i]);
        FILE *f = fopen(path, "wb");
        cr_assert(f && fwrite(texts[i], 1, lens[i], f) == lens[i] && fclose(f) == 0, "cannot write %s", path);
    }
    return dir;
}

static void remove_cmudict_dir(char *dir) {
    const char *parts[] = {"/cmudict/cmudict.tsv", "/cmudict/cmudict-alternates.tsv", "/cmudict", ""};
    for (int i = 0; i < TG_EX_LEN(parts); i++) {
        char path[256];
        snprintf(path, sizeof path, "%s%s", dir, parts[i]);
        remove(path); // files, then the emptied folders
    }
    free(dir);
}

Test(cmudict, bundled_alternates_attached_to_their_words) {
    for (int strip = 0; strip < 2; strip++) {
        tg_ex_cmudict d;
        tg_ex_error err;
        cr_assert(tg_ex_cmudict_load(TG_DATA_DIR, strip, &d, &err), "%s", err.msg);
        cr_assert(d.has_alternates);
        cr_assert_eq(d.n_alternates, 1110);
        int total = 0;
        for (int i = 0; i < d.n; i++) total += d.items[i].n_alternates;
        cr_assert_eq(total, 1110);
        cr_assert_eq(d.items[0].n_alternates, 1);
        assert_alternate(&d.items[0], 0, strip ? "EY" : "EY1"); // A(1)
        const tg_ex_pron *p = find_word(&d, "PERCENTAGE");
        assert_phones(p, strip ? "P ER S EH N T AH JH" : "P ER0 S EH1 N T AH0 JH");
        cr_assert_eq(p->n_alternates, 3);
        assert_alternate(p, 0, strip ? "P ER S EH N AH JH" : "P ER0 S EH1 N AH0 JH");
        assert_alternate(p, 2, strip ? "P ER S EH N IH JH" : "P ER0 S EH1 N IH0 JH");
        assert_alternate(find_word(&d, "HELLO"), 0, strip ? "HH EH L OW" : "HH EH0 L OW1");
        cr_assert_eq(find_word(&d, "BAROMETERS")->n_alternates, 0);
        tg_ex_cmudict_free(&d);
        cr_assert_null(d.alts_);
    }
}

// --- Scoring pronunciations (score.c) ---

Test(score, edit_distance_counts_insertions_deletions_and_substitutions) {
    const int32_t kitten[] = {'k', 'i', 't', 't', 'e', 'n'}, sitting[] = {'s', 'i', 't', 't', 'i', 'n', 'g'};
    cr_assert_eq(tg_ex_edit_distance(kitten, 6, sitting, 7), 3);
    cr_assert_eq(tg_ex_edit_distance(sitting, 7, kitten, 6), 3);
    cr_assert_eq(tg_ex_edit_distance(kitten, 6, kitten, 6), 0);
    cr_assert_eq(tg_ex_edit_distance(kitten, 0, sitting, 7), 7);
    cr_assert_eq(tg_ex_edit_distance(kitten, 6, sitting, 0), 6);
    cr_assert_eq(tg_ex_edit_distance(kitten + 1, 5, kitten, 6), 1); // one deletion
    int32_t *longer = calloc(TG_EX_EDIT_MAX + 1, sizeof *longer);
    cr_assert_eq(tg_ex_edit_distance(longer, TG_EX_EDIT_MAX + 1, kitten, 6), TG_EX_EDIT_MAX + 1); // the bound
    free(longer);
}

Test(score, phoneme_and_word_error_rates) {
    const int32_t ref[] = {4, 5, 6, 7}, sub[] = {4, 9, 6, 7}, short_[] = {4, 5, 6};
    tg_ex_errors e = {0};
    cr_assert(isnan(tg_ex_per(e)) && isnan(tg_ex_wer(e)) && isnan(tg_ex_wer_any(e)), "an empty set has no rate");
    cr_assert_not(tg_ex_errors_count(&e, ref, 4, true, ref, 4));
    cr_assert(tg_ex_errors_count(&e, sub, 4, true, ref, 4));      // one substitution
    cr_assert(tg_ex_errors_count(&e, short_, 3, true, ref, 4));   // one deletion
    cr_assert(tg_ex_errors_count(&e, ref, 4, false, ref, 4));     // cut off by the length limit: wrong, 0 edits
    cr_assert_eq(e.edits, 2);
    cr_assert_eq(e.ref, 16);
    cr_assert_eq(e.words, 4);
    cr_assert_eq(e.wrong, 3);
    cr_assert_float_eq(tg_ex_per(e), 2.0 / 16, 1e-15);
    cr_assert_float_eq(tg_ex_wer(e), 3.0 / 4, 1e-15);
    tg_ex_errors sum = {1, 2, 3, 4, 5, 6};
    tg_ex_errors_add(&sum, &e);
    cr_assert(sum.edits == 3 && sum.ref == 18 && sum.wrong == 6 && sum.words == 8 && sum.wrong_any == 5 &&
              sum.with_alternates == 6);
}

// Ids of the phones of pron in vocabulary v (added when new).
static int ids_of(tg_ex_vocab *v, const char **phones, int n, int32_t *ids) {
    for (int i = 0; i < n; i++) ids[i] = tg_ex_vocab_add(v, phones[i]);
    return n;
}

Test(score, word_error_against_any_pronunciation) {
    tg_ex_cmudict d;
    tg_ex_error err;
    cr_assert(tg_ex_cmudict_load(TG_DATA_DIR, true, &d, &err), "%s", err.msg);
    const tg_ex_pron *p = find_word(&d, "PERCENTAGE"), *plain = find_word(&d, "BAROMETERS");
    tg_ex_vocab *v = tg_ex_vocab_new();
    int32_t first[32], alt[32], none[32];
    int n_first = ids_of(v, p->phones, p->n_phones, first);
    int n_alt = ids_of(v, p->alternates[2].phones, p->alternates[2].n_phones, alt);
    int n_none = ids_of(v, plain->phones, plain->n_phones, none);
    tg_ex_errors e = {0};
    bool wrong = tg_ex_errors_count(&e, first, n_first, true, first, n_first); // the first: right both ways
    tg_ex_errors_count_any(&e, first, n_first, true, wrong, p, v);
    wrong = tg_ex_errors_count(&e, alt, n_alt, true, first, n_first); // an alternate: right against any
    tg_ex_errors_count_any(&e, alt, n_alt, true, wrong, p, v);
    cr_assert(wrong);
    cr_assert_eq(e.wrong_any, 0);
    wrong = tg_ex_errors_count(&e, alt, n_alt, false, first, n_first); // unfinished: wrong both ways
    tg_ex_errors_count_any(&e, alt, n_alt, false, wrong, p, v);
    wrong = tg_ex_errors_count(&e, none, n_none, true, first, n_first); // another word's: wrong both ways
    tg_ex_errors_count_any(&e, none, n_none, true, wrong, p, v);
    wrong = tg_ex_errors_count(&e, alt, n_alt - 1, true, first, n_first); // the alternate less its last phone
    tg_ex_errors_count_any(&e, alt, n_alt - 1, true, wrong, p, v);
    wrong = tg_ex_errors_count(&e, none, n_none, true, none, n_none); // right, for a word without alternates
    tg_ex_errors_count_any(&e, none, n_none, true, wrong, plain, v);
    cr_assert_eq(e.words, 6);
    cr_assert_eq(e.wrong, 4);
    cr_assert_eq(e.wrong_any, 3);
    cr_assert_eq(e.with_alternates, 5);
    cr_assert_float_eq(tg_ex_wer_any(e), 3.0 / 6, 1e-15);
    tg_ex_vocab_free(v);
    tg_ex_cmudict_free(&d);
}

Test(score, vocabularies_equal_by_tokens_and_ids_not_counts) {
    tg_ex_vocab *a = tg_ex_vocab_new(), *b = tg_ex_vocab_new();
    cr_assert(tg_ex_vocab_equal(a, b));
    tg_ex_vocab_add(a, "AH"), tg_ex_vocab_add(a, "B"), tg_ex_vocab_add(a, "AH");
    tg_ex_vocab_add(b, "AH");
    cr_assert_not(tg_ex_vocab_equal(a, b), "one token fewer");
    tg_ex_vocab_add(b, "B");
    cr_assert(tg_ex_vocab_equal(a, b), "the same tokens, counted differently");
    tg_ex_vocab *c = tg_ex_vocab_new();
    tg_ex_vocab_add(c, "B"), tg_ex_vocab_add(c, "AH");
    cr_assert_not(tg_ex_vocab_equal(a, c), "the same tokens under other ids");
    tg_ex_vocab_free(a), tg_ex_vocab_free(b), tg_ex_vocab_free(c);
}

Test(score, tokens_joined_by_spaces_and_cut_to_the_buffer) {
    tg_ex_vocab *v = tg_ex_vocab_new();
    int32_t ids[] = {tg_ex_vocab_add(v, "HH"), tg_ex_vocab_add(v, "AH"), tg_ex_vocab_add(v, "L"), 0};
    ids[3] = tg_ex_vocab_add(v, "OW");
    char buf[32], small[6];
    cr_assert_str_eq(tg_ex_vocab_join(v, ids, 4, buf, sizeof buf), "HH AH L OW");
    cr_assert_str_eq(tg_ex_vocab_join(v, ids, 0, buf, sizeof buf), "");
    cr_assert_str_eq(tg_ex_vocab_join(v, ids, 4, small, sizeof small), "HH AH"); // 5 characters and the NUL
    int32_t unknown = 999;
    cr_assert_str_eq(tg_ex_vocab_join(v, &unknown, 1, buf, sizeof buf), "<unk>");
    tg_ex_vocab_free(v);
}

Test(cmudict, alternates_grouped_by_word_in_file_order_and_optional) {
    const char *alternates = "READ\tR IY1 D\nA\tEY1\r\n\nREAD\tR EH2 D\n";
    char *dir = temp_cmudict_dir("A\tAH0\nREAD\tR EH1 D\nZED\tZ EH1 D\n", alternates, strlen(alternates));
    tg_ex_cmudict d;
    tg_ex_error err;
    cr_assert(tg_ex_cmudict_load(dir, false, &d, &err), "%s", err.msg);
    cr_assert(d.has_alternates && d.n_alternates == 3);
    cr_assert(d.items[1].n_alternates == 2 && d.items[0].n_alternates == 1 && d.items[2].n_alternates == 0);
    assert_alternate(&d.items[1], 0, "R IY1 D");
    assert_alternate(&d.items[1], 1, "R EH2 D");
    assert_alternate(&d.items[0], 0, "EY1");
    tg_ex_cmudict_free(&d);
    remove_cmudict_dir(dir);

    dir = temp_cmudict_dir("A\tAH0\nREAD\tR EH1 D\n", NULL, 0); // no alternates file: none, no error
    cr_assert(tg_ex_cmudict_load(dir, true, &d, &err), "%s", err.msg);
    cr_assert(!d.has_alternates && d.n_alternates == 0 && d.items[1].n_alternates == 0);
    tg_ex_cmudict_free(&d);
    remove_cmudict_dir(dir);
}

// --- Brown ---

static const char *const UNIVERSAL_TAGS[] = {"ADJ", "ADP", "ADV", "CONJ", "DET", "NOUN",
                                             "NUM", "PRON", "PRT", "VERB", "X", "."};

Test(brown, bundled_counts_tags_and_text) {
    tg_ex_brown b;
    tg_ex_error err;
    cr_assert(tg_ex_brown_load(TG_DATA_DIR, &b, &err), "%s", err.msg);
    cr_assert_eq(b.n, 7362);
    cr_assert_eq(b.n_tokens, 146310);
    const tg_ex_sentence *s = &b.items[0];
    cr_assert_eq(s->n, 25);
    cr_assert_str_eq(s->words[1], "Fulton");
    cr_assert_str_eq(s->tags[1], "NOUN");
    cr_assert_str_eq(s->words[9], "of");
    cr_assert_str_eq(s->tags[9], "ADP");
    cr_assert_str_eq(s->words[10], "Atlanta's");
    int64_t tokens = 0;
    for (int i = 0; i < b.n; i++) {
        tokens += b.items[i].n;
        for (int k = 0; k < b.items[i].n; k++) {
            bool known = false;
            for (int t = 0; t < TG_EX_LEN(UNIVERSAL_TAGS); t++) known |= !strcmp(b.items[i].tags[k], UNIVERSAL_TAGS[t]);
            cr_assert(known, "sentence %d: tag %s", i, b.items[i].tags[k]);
        }
    }
    cr_assert_eq(tokens, b.n_tokens);
    char text[1024];
    size_t len = tg_ex_sentence_text(s, text, sizeof text);
    cr_assert_str_eq(text, "The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary "
                           "election produced \"no evidence\" that any irregularities took place.");
    cr_assert_eq(len, strlen(text));
    tg_ex_brown_free(&b);
}

Test(brown, word_with_slash_and_small_text_buffer) {
    char *path = test_temp_text("Add/VERB 1/2/NUM cup/NOUN (/. sugar/NOUN )/. ,/. ``/. now/ADV ''/. !/.\n");
    tg_ex_brown b;
    tg_ex_error err;
    cr_assert(tg_ex_brown_read(path, &b, &err), "%s", err.msg);
    cr_assert_eq(b.n, 1);
    cr_assert_str_eq(b.items[0].words[1], "1/2");
    cr_assert_str_eq(b.items[0].tags[1], "NUM");
    char text[128];
    tg_ex_sentence_text(&b.items[0], text, sizeof text);
    cr_assert_str_eq(text, "Add 1/2 cup (sugar), \"now\"!");
    char tiny[8];
    size_t len = tg_ex_sentence_text(&b.items[0], tiny, sizeof tiny);
    cr_assert_eq(len, strlen(text));
    cr_assert_str_eq(tiny, "Add 1/2");
    tg_ex_brown_free(&b);
    unlink(path);
    free(path);
}

// A token without a tag is an error naming its line.
Test(brown, token_without_tag_is_an_error) {
    char *path = test_temp_text("The/DET cat/NOUN\nAdd 1/2/NUM\n");
    tg_ex_brown b;
    tg_ex_error err;
    cr_assert_not(tg_ex_brown_read(path, &b, &err));
    cr_assert(strstr(err.msg, ":2: 'Add' is not word/TAG"), "%s", err.msg);
    cr_assert_null(b.items);
    unlink(path);
    free(path);
}

// --- Spam ---

Test(spam, bundled_counts_and_first_message) {
    tg_ex_spam s;
    tg_ex_error err;
    cr_assert(tg_ex_spam_load(TG_DATA_DIR, &s, &err), "%s", err.msg);
    cr_assert_eq(s.n, 1499);
    cr_assert_eq(s.n_spam, 464);
    cr_assert_str_eq(s.items[0].id, "easy-ham-1/00001.7c53336b37003a9286aba55d2945844c");
    cr_assert_not(s.items[0].spam);
    cr_assert(!strncmp(s.items[0].text, "Subject: Re: New Sequences Window\n", 34), "%.60s", s.items[0].text);
    cr_assert(s.items[s.n - 1].spam);
    int spam = 0;
    for (int i = 0; i < s.n; i++) {
        const tg_ex_message *m = &s.items[i];
        spam += m->spam;
        cr_assert_eq((size_t)m->len, strlen(m->text));
        cr_assert(!strncmp(m->text, "Subject: ", 9), "%s", m->id);
        cr_assert_null(strchr(m->text, '\t'));
        cr_assert_eq(m->spam, !strncmp(m->id, "spam-", 5), "%s", m->id);
    }
    cr_assert_eq(spam, s.n_spam);
    tg_ex_spam_free(&s);
}

Test(spam, escapes_are_undone) {
    char *path = test_temp_text("spam\tx/1\tSubject: hi\\nline\\ttab \\\\ back\nham\tx/2\tSubject: \\\\n\n");
    tg_ex_spam s;
    tg_ex_error err;
    cr_assert(tg_ex_spam_read(path, &s, &err), "%s", err.msg);
    cr_assert_eq(s.n, 2);
    cr_assert_str_eq(s.items[0].text, "Subject: hi\nline\ttab \\ back");
    cr_assert_eq(s.items[0].len, 27);
    cr_assert_str_eq(s.items[1].text, "Subject: \\n");
    cr_assert_eq(s.n_spam, 1);
    tg_ex_spam_free(&s);
    unlink(path);
    free(path);
}

// --- Splits ---

Test(split, fixed_by_the_key) {
    // Deterministic, and 80/10/10 over many keys.
    cr_assert_eq(tg_ex_split_of("HELLO", 5), tg_ex_split_of("HELLO", 5));
    int counts[3] = {0};
    char key[16];
    for (int i = 0; i < 100000; i++) {
        int len = snprintf(key, sizeof key, "key%d", i);
        counts[tg_ex_split_of(key, (size_t)len)]++;
    }
    ASSERT_CLOSE(counts[TG_EX_TRAIN] / 1e5, 0.8, 0.01, 0);
    ASSERT_CLOSE(counts[TG_EX_DEV] / 1e5, 0.1, 0.01, 0);
    ASSERT_CLOSE(counts[TG_EX_TEST] / 1e5, 0.1, 0.01, 0);
    cr_assert_str_eq(tg_ex_split_name(TG_EX_DEV), "dev");
}

Test(split, readers_split_by_documented_keys) {
    tg_ex_cmudict d;
    tg_ex_error err;
    cr_assert(tg_ex_cmudict_load(TG_DATA_DIR, false, &d, &err), "%s", err.msg);
    int counts[3] = {0};
    for (int i = 0; i < d.n; i++) {
        counts[d.items[i].split]++;
        cr_assert_eq(d.items[i].split, tg_ex_split_of(d.items[i].word, strlen(d.items[i].word)));
    }
    ASSERT_CLOSE((double)counts[TG_EX_TRAIN] / d.n, 0.8, 0.015, 0);
    ASSERT_CLOSE((double)counts[TG_EX_DEV] / d.n, 0.1, 0.015, 0);
    ASSERT_CLOSE((double)counts[TG_EX_TEST] / d.n, 0.1, 0.015, 0);
    // The exact counts pin the scheme (hash, seed, key, cut points): a change would silently
    // move examples between train and test, and published figures with them.
    cr_assert(counts[0] == 12548 && counts[1] == 1551 && counts[2] == 1513, "%d/%d/%d", counts[0], counts[1],
              counts[2]);
    // The same file read again (with stress stripped, which is not part of the key) splits the same.
    tg_ex_cmudict again;
    cr_assert(tg_ex_cmudict_load(TG_DATA_DIR, true, &again, &err), "%s", err.msg);
    for (int i = 0; i < d.n; i++) cr_assert_eq(d.items[i].split, again.items[i].split);
    tg_ex_cmudict_free(&again);
    tg_ex_cmudict_free(&d);

    tg_ex_brown b;
    cr_assert(tg_ex_brown_load(TG_DATA_DIR, &b, &err), "%s", err.msg);
    const char *first = "The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary "
                        "election produced `` no evidence '' that any irregularities took place .";
    cr_assert_eq(b.items[0].split, tg_ex_split_of(first, strlen(first)));
    int brown_counts[3] = {0};
    for (int i = 0; i < b.n; i++) brown_counts[b.items[i].split]++;
    cr_assert(brown_counts[0] == 5865 && brown_counts[1] == 718 && brown_counts[2] == 779, "%d/%d/%d",
              brown_counts[0], brown_counts[1], brown_counts[2]);
    tg_ex_brown_free(&b);

    tg_ex_spam s;
    cr_assert(tg_ex_spam_load(TG_DATA_DIR, &s, &err), "%s", err.msg);
    int per_class[3][2] = {{0}};
    for (int i = 0; i < s.n; i++) {
        per_class[s.items[i].split][s.items[i].spam]++;
        cr_assert_eq(s.items[i].split, tg_ex_split_of(s.items[i].text, (size_t)s.items[i].len));
    }
    for (int k = 0; k < 3; k++) cr_assert(per_class[k][0] > 20 && per_class[k][1] > 20, "split %d lacks a class", k);
    cr_assert_eq(per_class[0][0] + per_class[0][1], 1184);
    cr_assert_eq(per_class[2][0] + per_class[2][1], 158);
    tg_ex_spam_free(&s);
}

// --- Damaged, missing and truncated files ---

// Expects the reader for `kind` to fail on text with a message holding the path and `needle`.
static void expect_error(const char *kind, const char *text, size_t len, const char *needle) {
    char *path = test_temp_file(text, len);
    tg_ex_error err = {{0}};
    bool ok;
    if (!strcmp(kind, "cmudict")) {
        tg_ex_cmudict d;
        ok = tg_ex_cmudict_read(path, false, &d, &err);
        if (ok) tg_ex_cmudict_free(&d);
        else cr_assert_null(d.items);
    } else if (!strcmp(kind, "brown")) {
        tg_ex_brown b;
        ok = tg_ex_brown_read(path, &b, &err);
        if (ok) tg_ex_brown_free(&b);
    } else {
        tg_ex_spam s;
        ok = tg_ex_spam_read(path, &s, &err);
        if (ok) tg_ex_spam_free(&s);
    }
    cr_assert_not(ok, "%s reader accepted %.40s", kind, text);
    cr_assert(strstr(err.msg, path), "no path in: %s", err.msg);
    cr_assert(strstr(err.msg, needle), "expected '%s' in: %s", needle, err.msg);
    cr_assert(strstr(err.msg, "scripts/fetch_data.sh"), "no advice in: %s", err.msg);
    unlink(path);
    free(path);
}

Test(damaged, missing_file_names_it_and_the_fetch_script) {
    tg_ex_cmudict d;
    tg_ex_error err;
    cr_assert_not(tg_ex_cmudict_load("/nonexistent/tapegrad", false, &d, &err));
    cr_assert(strstr(err.msg, "/nonexistent/tapegrad/cmudict/cmudict.tsv"), "%s", err.msg);
    cr_assert(strstr(err.msg, "scripts/fetch_data.sh"), "%s", err.msg);
    tg_ex_brown b;
    cr_assert_not(tg_ex_brown_load("/nonexistent/tapegrad", &b, &err));
    cr_assert(strstr(err.msg, "brown/brown.txt"), "%s", err.msg);
    tg_ex_spam s;
    cr_assert_not(tg_ex_spam_load("/nonexistent/tapegrad", &s, &err));
    cr_assert(strstr(err.msg, "spam/spam.tsv"), "%s", err.msg);
}

Test(damaged, malformed_cmudict) {
    expect_error("cmudict", "", 0, "empty");
    expect_error("cmudict", "\n\n", 2, "no entries");
    expect_error("cmudict", "HELLO HH AH0 L OW1\n", 19, ":1: expected WORD<TAB>PHONE");
    expect_error("cmudict", "A\tAH0\nHELLO\thh ah0\n", 19, ":2: 'hh' is not an ARPAbet phone");
    expect_error("cmudict", "A\tAH0\tEY1\n", 10, "one tab");
    expect_error("cmudict", "A\tAH0\nB\tB\0IY1\n", 15, "NUL byte");
    char long_line[3000];
    memset(long_line, 'A', sizeof long_line);
    long_line[5] = '\t';
    long_line[sizeof long_line - 1] = '\n';
    expect_error("cmudict", long_line, sizeof long_line, "longer than");
    // The Brown file handed to the CMUdict reader.
    expect_error("cmudict", "The/DET jury/NOUN said/VERB\n", 28, "expected WORD<TAB>PHONE");
}

// Expects the alternates text [len] beside a good cmudict.tsv to be refused, with a message
// naming the alternates file and holding needle, by the loader and by the reader alone.
static void expect_alternates_error(const char *text, size_t len, const char *needle) {
    char *dir = temp_cmudict_dir("A\tAH0\nREAD\tR EH1 D\n", text, len), path[256];
    snprintf(path, sizeof path, "%s/cmudict/cmudict-alternates.tsv", dir);
    tg_ex_cmudict d;
    tg_ex_error err = {{0}};
    cr_assert_not(tg_ex_cmudict_load(dir, false, &d, &err), "accepted %.40s", text);
    cr_assert_null(d.items);
    cr_assert(strstr(err.msg, path) && strstr(err.msg, needle), "expected %s and '%s' in: %s", path, needle, err.msg);
    cr_assert(strstr(err.msg, "scripts/fetch_data.sh"), "no advice in: %s", err.msg);
    snprintf(path, sizeof path, "%s/cmudict/cmudict.tsv", dir);
    cr_assert(tg_ex_cmudict_read(path, true, &d, &err), "%s", err.msg);
    snprintf(path, sizeof path, "%s/cmudict/cmudict-alternates.tsv", dir);
    cr_assert_not(tg_ex_cmudict_read_alternates(path, true, &d, &err));
    cr_assert(d.n == 2 && !d.has_alternates && d.items[1].n_alternates == 0, "the dictionary was changed");
    tg_ex_cmudict_free(&d);
    remove_cmudict_dir(dir);
}

Test(damaged, malformed_cmudict_alternates) {
#define EXPECT_ALTERNATES_ERROR(text, needle) expect_alternates_error(text, sizeof text - 1, needle)
    EXPECT_ALTERNATES_ERROR("A\tEY1\nWORLD\tW ER1 L D\n", ":2: 'WORLD' is not a word of the dictionary");
    EXPECT_ALTERNATES_ERROR("A(1)\tEY1\n", ":1: 'A(1)' is not a word"); // the dictionary's own spelling
    EXPECT_ALTERNATES_ERROR("READ R IY1 D\n", ":1: expected WORD<TAB>PHONE");
    EXPECT_ALTERNATES_ERROR("A\tey1\n", ":1: 'ey1' is not an ARPAbet phone");
    EXPECT_ALTERNATES_ERROR("A\tEY1\nREAD\tR IY1", ":2: the last line has no newline");
    EXPECT_ALTERNATES_ERROR("", "empty");
    EXPECT_ALTERNATES_ERROR("A\tEY1\0\n", "NUL byte");
#undef EXPECT_ALTERNATES_ERROR
}

Test(damaged, truncated_bundled_files) {
    // Each bundled file cut in the middle of a line, as an interrupted download would leave it.
    const char *files[] = {"cmudict/cmudict.tsv", "brown/brown.txt", "spam/spam.tsv"};
    const char *kinds[] = {"cmudict", "brown", "spam"};
    for (int i = 0; i < 3; i++) {
        size_t got;
        char *head = head_of(files[i], 100000, &got);
        cr_assert_eq(got, 100000);
        size_t cut = got;
        while (head[cut - 1] == '\n' || head[cut - 2] == '\n') cut--; // not at a line's end
        expect_error(kinds[i], head, cut, "cut short");
        free(head);
    }
}

Test(damaged, malformed_brown_and_spam) {
    expect_error("brown", "The/DET /NOUN\n", 14, "is not word/TAG");
    expect_error("brown", "The/DET jury/\n", 14, "is not word/TAG");
    expect_error("brown", "   \n\t\n", 6, "no sentences");
    expect_error("spam", "spam\tid\n", 8, "two tabs");
    expect_error("spam", "eggs\tid\ttext\n", 13, "neither spam nor ham");
    expect_error("spam", "ham\tid\ttext\nham\t\ttext\n", 22, ":2: an empty message id");
    expect_error("spam", "ham\tid\t\n", 8, "empty message text");
    expect_error("spam", "ham\tid\tbad \\x escape\n", 21, "backslash");
    expect_error("spam", "ham\tid\ttext\tmore\n", 17, "two tabs");
}
