// test_example_cli.c: the examples' vocabulary, command-line options, progress bar, time
// budget, RESULT line and checkpoint configs (examples/common: data.c, cli.c, checkpoint.c).
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tg_example.h"
#include "tg_test.h"
#include "tg_test_files.h"

// --- Vocabulary ---

Test(vocab, reserved_ids_add_lookup_unknown) {
    tg_ex_vocab *v = tg_ex_vocab_new();
    cr_assert_eq(tg_ex_vocab_size(v), TG_EX_RESERVED);
    cr_assert_str_eq(tg_ex_vocab_token(v, TG_EX_PAD), "<pad>");
    cr_assert_str_eq(tg_ex_vocab_token(v, TG_EX_UNK), "<unk>");
    cr_assert_str_eq(tg_ex_vocab_token(v, TG_EX_BOS), "<s>");
    cr_assert_str_eq(tg_ex_vocab_token(v, TG_EX_EOS), "</s>");
    cr_assert_eq(tg_ex_vocab_add(v, "the"), 4);
    cr_assert_eq(tg_ex_vocab_add(v, "cat"), 5);
    cr_assert_eq(tg_ex_vocab_add(v, "the"), 4);
    cr_assert_eq(tg_ex_vocab_add_n(v, "catalogue", 3), 5);
    cr_assert_eq(tg_ex_vocab_count(v, 4), 2);
    cr_assert_eq(tg_ex_vocab_count(v, 5), 2);
    cr_assert_eq(tg_ex_vocab_id(v, "cat"), 5);
    cr_assert_eq(tg_ex_vocab_id(v, "dog"), TG_EX_UNK);
    cr_assert_eq(tg_ex_vocab_id(v, "</s>"), TG_EX_EOS);
    cr_assert_eq(tg_ex_vocab_add(v, ""), TG_EX_UNK);
    cr_assert_str_eq(tg_ex_vocab_token(v, 99), "<unk>");
    cr_assert_str_eq(tg_ex_vocab_token(v, -1), "<unk>");
    // Enough tokens to grow the table several times; all stay findable.
    char tok[16];
    for (int i = 0; i < 5000; i++) {
        snprintf(tok, sizeof tok, "w%d", i);
        cr_assert_eq(tg_ex_vocab_add(v, tok), 6 + i);
    }
    for (int i = 0; i < 5000; i++) {
        snprintf(tok, sizeof tok, "w%d", i);
        cr_assert_eq(tg_ex_vocab_id(v, tok), 6 + i);
    }
    tg_ex_vocab_free(v);
}

Test(vocab, prune_renumbers_and_unknowns_become_unk) {
    tg_ex_vocab *v = tg_ex_vocab_new();
    const char *words[] = {"a", "rare", "b", "a", "b", "once", "a"};
    for (int i = 0; i < 7; i++) tg_ex_vocab_add(v, words[i]);
    tg_ex_vocab_prune(v, 2);
    cr_assert_eq(tg_ex_vocab_size(v), 6);
    cr_assert_eq(tg_ex_vocab_id(v, "a"), 4);
    cr_assert_eq(tg_ex_vocab_id(v, "b"), 5);
    cr_assert_eq(tg_ex_vocab_id(v, "rare"), TG_EX_UNK);
    cr_assert_eq(tg_ex_vocab_count(v, 4), 3);
    cr_assert_eq(tg_ex_vocab_id(v, "<unk>"), TG_EX_UNK);
    tg_ex_vocab_free(v);
}

Test(vocab, save_load_round_trip_and_damaged_files) {
    tg_ex_vocab *v = tg_ex_vocab_new();
    const char *tokens[] = {"plain", "new\nline", "tab\there", "back\\slash", "\n"};
    for (int i = 0; i < 5; i++) tg_ex_vocab_add(v, tokens[i]);
    char *path = test_temp_text("");
    tg_ex_error err;
    cr_assert(tg_ex_vocab_save(v, path, &err), "%s", err.msg);
    tg_ex_vocab *back = tg_ex_vocab_load(path, &err);
    cr_assert(back, "%s", err.msg);
    cr_assert_eq(tg_ex_vocab_size(back), tg_ex_vocab_size(v));
    for (int i = 0; i < tg_ex_vocab_size(v); i++) cr_assert_str_eq(tg_ex_vocab_token(back, i), tg_ex_vocab_token(v, i));
    cr_assert_eq(tg_ex_vocab_id(back, "tab\there"), 6);
    tg_ex_vocab_free(back);
    tg_ex_vocab_free(v);
    unlink(path);
    free(path);

    const char *damaged[] = {"<pad>\n<unk>\n<s>\n</s>\na\na\n", "<pad>\n<unk>\n", "<pad>\n<s>\n<unk>\n</s>\n",
                             "<pad>\n<unk>\n<s>\n</s>\nbad\\q\n", "<pad>\n<unk>\n<s>\n</s>\n\n"};
    const char *needles[] = {":6: a token listed twice", "fewer than", ":2: the first four", "backslash", "empty token"};
    for (int i = 0; i < 5; i++) {
        char *bad = test_temp_text(damaged[i]);
        cr_assert_null(tg_ex_vocab_load(bad, &err), "accepted %s", damaged[i]);
        cr_assert(strstr(err.msg, needles[i]) && strstr(err.msg, bad), "%s", err.msg);
        unlink(bad);
        free(bad);
    }
    cr_assert_null(tg_ex_vocab_load("/nonexistent/vocab.txt", &err));
    cr_assert(strstr(err.msg, "/nonexistent/vocab.txt"), "%s", err.msg);
}

Test(vocab, shuffle_is_a_seeded_permutation) {
    int a[100], b[100], seen[100] = {0};
    for (int i = 0; i < 100; i++) a[i] = b[i] = i;
    tg_rng r1, r2;
    tg_rng_seed(&r1, 5);
    tg_rng_seed(&r2, 5);
    tg_ex_shuffle(a, 100, &r1);
    tg_ex_shuffle(b, 100, &r2);
    int moved = 0;
    for (int i = 0; i < 100; i++) {
        cr_assert_eq(a[i], b[i]);
        seen[a[i]]++;
        moved += a[i] != i;
    }
    for (int i = 0; i < 100; i++) cr_assert_eq(seen[i], 1);
    cr_assert_gt(moved, 50);
}

// Items 0..59 of lengths i % 7 + 1; train holds the even ones (30 ids), windows of 8.
Test(vocab, epoch_order_is_a_seeded_permutation_sorted_within_windows) {
    int64_t start[61] = {0};
    for (int i = 0; i < 60; i++) start[i + 1] = start[i] + i % 7 + 1;
    int train[30], a[30], b[30], other[30];
    for (int i = 0; i < 30; i++) train[i] = 2 * i;
    tg_ex_epoch_order(train, 30, start, 9, 3, 8, a);
    tg_ex_epoch_order(train, 30, start, 9, 3, 8, b);
    tg_ex_epoch_order(train, 30, start, 9, 4, 8, other);
    int seen[60] = {0}, differ = 0;
    for (int i = 0; i < 30; i++) {
        cr_assert_eq(a[i], b[i], "the same seed and epoch give the same order");
        cr_assert(a[i] >= 0 && a[i] < 60 && a[i] % 2 == 0, "position %d holds %d, not a training id", i, a[i]);
        seen[a[i]]++;
        differ += a[i] != other[i];
        if (i % 8) // sorted by length inside each window of 8
            cr_assert_leq(start[a[i - 1] + 1] - start[a[i - 1]], start[a[i] + 1] - start[a[i]], "window order at %d", i);
    }
    for (int i = 0; i < 60; i += 2) cr_assert_eq(seen[i], 1, "id %d appears %d times", i, seen[i]);
    cr_assert_gt(differ, 0, "another epoch gives another order");
}

// --- Command-line options ---

typedef struct {
    tg_ex_common common;
    int hidden;
    double lr;
    bool verbose;
    const char *mode;
    tg_ex_option opts[4];
    tg_ex_cli cli;
    char *out_text, *err_text;
    size_t out_len, err_len;
} parse_fixture;

// Parses argv (NULL-terminated after the program name) with an example-like table,
// capturing what --help and the errors print.
static tg_ex_parse_result parse_with(parse_fixture *f, const char *const *args) {
    f->common = tg_ex_common_defaults("/data", 0.5);
    f->hidden = 128;
    f->lr = 0.005;
    f->verbose = false;
    f->mode = "greedy";
    f->opts[0] = (tg_ex_option){"hidden", TG_EX_INT, &f->hidden, "hidden units", 1, 4096, NULL};
    f->opts[1] = (tg_ex_option){"lr", TG_EX_DOUBLE, &f->lr, "Adam learning rate", 0, 1, NULL};
    f->opts[2] = (tg_ex_option){"verbose", TG_EX_FLAG, &f->verbose, "print more", 0, 0, NULL};
    f->opts[3] = (tg_ex_option){"mode", TG_EX_STRING, &f->mode, "decoding", 0, 0, "NAME"};
    FILE *out = open_memstream(&f->out_text, &f->out_len), *err = open_memstream(&f->err_text, &f->err_len);
    f->cli = (tg_ex_cli){"toy", "a toy example", &f->common, f->opts, 4, out, err};
    char *argv[32] = {"toy"};
    int argc = 1;
    for (; args[argc - 1]; argc++) argv[argc] = (char *)args[argc - 1];
    tg_ex_parse_result r = tg_ex_parse(&f->cli, argc, argv);
    fclose(out);
    fclose(err);
    return r;
}

static void fixture_free(parse_fixture *f) {
    free(f->out_text);
    free(f->err_text);
}

Test(options, defaults_stay_without_arguments) {
    parse_fixture f;
    const char *args[] = {NULL};
    cr_assert_eq(parse_with(&f, args), TG_EX_PARSE_OK);
    cr_assert_str_eq(f.common.data, "/data");
    cr_assert_eq(f.common.seed, 1);
    cr_assert_eq(f.common.threads, 1);
    cr_assert_eq(f.common.minutes, 0.5);
    cr_assert_null(f.common.save);
    cr_assert_null(f.common.load);
    cr_assert_eq(f.hidden, 128);
    cr_assert_eq(f.lr, 0.005);
    cr_assert_not(f.verbose);
    cr_assert_eq(f.err_len, 0);
    fixture_free(&f);
}

Test(options, overrides_in_both_spellings) {
    parse_fixture f;
    const char *args[] = {"--hidden", "64", "--lr=0.01", "--seed", "18446744073709551615", "--data=/x",
                          "--minutes", "2.5", "--save", "m.safetensors", "--load", "old.safetensors",
                          "--threads", "3", "--verbose", "--mode", "beam", NULL};
    cr_assert_eq(parse_with(&f, args), TG_EX_PARSE_OK, "%s", f.err_text);
    cr_assert_eq(f.hidden, 64);
    cr_assert_eq(f.lr, 0.01);
    cr_assert_eq(f.common.seed, UINT64_MAX);
    cr_assert_str_eq(f.common.data, "/x");
    cr_assert_eq(f.common.minutes, 2.5);
    cr_assert_str_eq(f.common.save, "m.safetensors");
    cr_assert_str_eq(f.common.load, "old.safetensors");
    cr_assert_eq(f.common.threads, 3);
    cr_assert(f.verbose);
    cr_assert_str_eq(f.mode, "beam");
    fixture_free(&f);
}

Test(options, errors_name_the_option) {
    struct {
        const char *args[4], *needle;
    } cases[] = {
        {{"--bogus", "1"}, "unknown option --bogus"},
        {{"--hidden"}, "--hidden needs a value"},
        {{"--hidden", "abc"}, "--hidden needs a whole number, not 'abc'"},
        {{"--hidden", "12x"}, "not '12x'"},
        {{"--hidden", "0"}, "--hidden 0 is out of range"},
        {{"--lr", "fast"}, "--lr needs a number"},
        {{"--seed", "-3"}, "--seed needs a non-negative"},
        {{"--threads", "0"}, "--threads 0 is out of range"},
        {{"--minutes", "-1"}, "out of range"},
        {{"--verbose=yes"}, "--verbose takes no value"},
        {{"positional"}, "unexpected argument 'positional'"},
    };
    for (int i = 0; i < TG_EX_LEN(cases); i++) {
        parse_fixture f;
        cr_assert_eq(parse_with(&f, cases[i].args), TG_EX_PARSE_ERROR, "case %d accepted", i);
        cr_assert(strstr(f.err_text, cases[i].needle), "case %d: %s", i, f.err_text);
        cr_assert(!strncmp(f.err_text, "toy: ", 5), "%s", f.err_text);
        fixture_free(&f);
    }
}

Test(options, help_lists_every_option_with_its_default) {
    parse_fixture f;
    const char *args[] = {"--hidden", "oops", "--help", NULL};
    cr_assert_eq(parse_with(&f, args), TG_EX_PARSE_HELP);
    const char *expected[] = {"toy: a toy example", "usage: toy [options]", "--data DIR", "(default /data)",
                              "--seed S", "--threads N", "--minutes M", "(default 0.5)", "--save PATH",
                              "(default none)", "--load PATH", "options of toy", "--hidden N", "hidden units (default 128)",
                              "--lr X", "(default 0.005)", "--verbose ", "(default off)", "--mode NAME", "--help"};
    for (int i = 0; i < TG_EX_LEN(expected); i++)
        cr_assert(strstr(f.out_text, expected[i]), "no '%s' in:\n%s", expected[i], f.out_text);
    cr_assert_eq(f.err_len, 0);
    fixture_free(&f);
}

Test(options, an_option_declared_twice_is_reported) {
    parse_fixture f;
    const char *args[] = {NULL};
    parse_with(&f, args); // fills the table
    fixture_free(&f);
    tg_ex_option twice[] = {{"seed", TG_EX_INT, &f.hidden, "clashes with --seed", 0, 0, NULL}};
    char *err_text = NULL;
    size_t err_len = 0;
    FILE *err = open_memstream(&err_text, &err_len);
    tg_ex_cli cli = {"toy", "", &f.common, twice, 1, NULL, err};
    char *argv[] = {"toy"};
    cr_assert_eq(tg_ex_parse(&cli, 1, argv), TG_EX_PARSE_ERROR);
    fclose(err);
    cr_assert(strstr(err_text, "--seed is declared twice"), "%s", err_text);
    free(err_text);
}

// The words after --pronounce go to the end, in order; the options, the flag among them, stay
// in front for the parser.
Test(options, take_args_moves_the_words_after_a_flag) {
    char *argv[] = {"toy", "--load", "m", "--pronounce", "HELLO", "WORLD", "--beam", "3", "--pronounce", "AGAIN"};
    int argc = 10, n = tg_ex_take_args(&argc, argv, "--pronounce");
    const char *want[] = {"toy", "--load", "m", "--pronounce", "--beam", "3", "--pronounce", "HELLO", "WORLD", "AGAIN"};
    cr_assert_eq(n, 3);
    cr_assert_eq(argc, 7);
    for (int i = 0; i < 10; i++) cr_assert_str_eq(argv[i], want[i], "argv[%d]", i);
    char *none[] = {"toy", "--beam", "3"};
    argc = 3;
    cr_assert_eq(tg_ex_take_args(&argc, none, "--pronounce"), 0);
    cr_assert(argc == 3 && !strcmp(none[1], "--beam") && !strcmp(none[2], "3"));
}

// --- Budget, progress, result ---

Test(progress, budget) {
    tg_ex_budget b;
    tg_ex_budget_start(&b, 0);
    cr_assert_not(tg_ex_budget_left(&b));
    cr_assert_eq(tg_ex_budget_remaining(&b), 0);
    tg_ex_budget_start(&b, 1);
    cr_assert(tg_ex_budget_left(&b));
    double left = tg_ex_budget_remaining(&b);
    cr_assert(left > 59 && left <= 60, "%g", left);
    cr_assert(tg_ex_budget_elapsed(&b) >= 0);
}

Test(progress, plain_lines_when_not_a_terminal) {
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    tg_ex_progress p;
    tg_ex_progress_begin(&p, out, "epoch 1", 3, "tok");
    cr_assert_not(p.tty);
    p.interval = 0; // a line at every step
    tg_ex_progress_step(&p, 2.0, 100);
    tg_ex_progress_step(&p, 1.0, 100);
    tg_ex_progress_step(&p, NAN, 100); // a step without a loss leaves the mean alone
    ASSERT_CLOSE(tg_ex_progress_loss(&p), 1.5, 1e-12, 0);
    tg_ex_progress_end(&p);
    fclose(out);
    cr_assert_null(strchr(text, '\r'), "%s", text);
    cr_assert_null(strchr(text, '\033'), "%s", text);
    cr_assert(strstr(text, "epoch 1  step 1/3  loss 2.0000  "), "%s", text);
    cr_assert(strstr(text, "epoch 1  step 2/3  loss 1.5000  "), "%s", text);
    cr_assert(strstr(text, "tok/s  eta "), "%s", text);
    cr_assert(strstr(text, "epoch 1  3 steps  loss 1.5000  "), "%s", text);
    int lines = 0;
    for (char *c = text; *c; c++) lines += *c == '\n';
    cr_assert_eq(lines, 4, "%s", text);
    free(text);
}

Test(progress, quiet_between_intervals_and_bar_on_a_terminal) {
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    tg_ex_progress p;
    tg_ex_progress_begin(&p, out, "epoch 2", 4, "ex");
    for (int i = 0; i < 3; i++) tg_ex_progress_step(&p, 1.0, 8); // within the 10 s interval: silent
    fflush(out);
    cr_assert_eq(len, 0, "%s", text);
    p.tty = true; // as on a terminal: the bar is drawn over itself
    tg_ex_progress_step(&p, 1.0, 8);
    tg_ex_progress_end(&p);
    fclose(out);
    cr_assert(strstr(text, "\repoch 2 [########################] 4/4  loss 1.0000"), "%s", text);
    cr_assert(strstr(text, "\033[K"), "%s", text);
    free(text);
}

Test(progress, result_line) {
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    tg_ex_result(out, "test_acc=%.4f steps=%d", 0.95, 12);
    fclose(out);
    cr_assert_str_eq(text, "RESULT test_acc=0.9500 steps=12\n");
    free(text);
}

// --- Checkpoint configs ---

Test(checkpoint_config, round_trip_and_refusals) {
    int embed = 64, hidden = 128, layers = 2;
    const tg_ex_config_int fields[] = {{"embed", &embed}, {"hidden", &hidden}, {"layers", &layers}};
    char *text = tg_ex_config_write("charlm", fields, 3);
    cr_assert_str_eq(text, "{\"model\": \"charlm\", \"embed\": 64, \"hidden\": 128, \"layers\": 2}");
    embed = hidden = layers = 0;
    cr_assert(tg_ex_config_read("charlm", "x", text, fields, 3));
    cr_assert(embed == 64 && hidden == 128 && layers == 2);
    free(text);
    // Written by the snprintf format of before: the same text, so old checkpoints still load.
    cr_assert(tg_ex_config_read("charlm", "x", "{\"model\": \"charlm\", \"embed\": 8, \"hidden\": 9, \"layers\": 1}",
                                fields, 3));
    cr_assert(embed == 8 && hidden == 9 && layers == 1);
    static const char *const bad[] = {
        "{\"model\": \"spam\", \"embed\": 8, \"hidden\": 9, \"layers\": 1}", // another program's
        "{\"model\": \"charlm\", \"embed\": 8, \"hidden\": 9}",               // a field missing
        "{\"model\": \"charlm\", \"embed\": 8, \"hidden\": -9, \"layers\": 1}", // not positive
        "{\"model\": \"charlm\", \"embed\": 8, \"hidden\": 9.5, \"layers\": 1}", // not an integer
        "{\"model\": \"charlm\", \"embed\": 8, \"hidden\": 9, \"layers\": 1",   // not JSON
        "[1, 2]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_not(tg_ex_config_read("charlm", "x", bad[i], fields, 3), "accepted %s", bad[i]);
}
