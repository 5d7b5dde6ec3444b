// tg_example.h: what the examples share, so each of them stays about its model: readers for
// the bundled data sets (formats in data/README.md), deterministic train/dev/test splits by
// hash, a vocabulary, the error rates of predicted sequences (score.c), table-driven
// command-line options, progress reporting and a time budget.
//
// Readers never exit and never crash on bad input: they return false and leave a message in
// a tg_ex_error that names the file (and line) and says how to get good data. Everything a
// reader returns lives in one allocation per category and is released by its _free.
#ifndef TG_EXAMPLE_H
#define TG_EXAMPLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tapegrad.h"

#define TG_EX_LEN(array) ((int)(sizeof(array) / sizeof((array)[0])))

// A reader's error: a complete sentence, ready for fprintf(stderr, "%s\n", err.msg).
typedef struct {
    char msg[640];
} tg_ex_error;

// --- Splits ---------------------------------------------------------------------------

// Train/dev/test by hashing each example's key, so the split never depends on file order,
// on the seed or on which subset was read: a key in the bundled test split is in the full
// set's test split too, and duplicates share a split.
typedef enum { TG_EX_TRAIN = 0, TG_EX_DEV = 1, TG_EX_TEST = 2 } tg_ex_split;

// The split of the key: XXH64(key, seed 0) % 100 below 80 is train, below 90 dev, else test.
tg_ex_split tg_ex_split_of(const void *key, size_t len);
// "train", "dev" or "test".
const char *tg_ex_split_name(tg_ex_split split);

// --- CMUdict: data/cmudict/cmudict.tsv, WORD<TAB>PH1 PH2 ... -----------------------------

// A pronunciation: ARPAbet symbols, "AH0" with stress, "AH" with it stripped.
typedef struct {
    const char **phones; // [n_phones]
    int n_phones;
} tg_ex_phones;

typedef struct {
    const char *word;    // as in the dictionary: upper case A-Z and ' - . ("ZYUGANOV'S")
    const char **phones; // [n_phones] the first pronunciation: "AH0" with stress, "AH" with it stripped
    int n_phones;
    tg_ex_split split; // key: the word
    const tg_ex_phones *alternates; // [n_alternates] the others (cmudict-alternates.tsv), in the dictionary's order
    int n_alternates;
} tg_ex_pron;

typedef struct {
    tg_ex_pron *items; // [n] in file order
    int n;
    bool has_alternates; // an alternates file was read (a word may still have none)
    int n_alternates;    // the sum of items[i].n_alternates
    char *text_;              // the file, parsed in place: the strings above point into it
    const char **phones_;     // storage behind every items[i].phones
    char *alt_text_;          // the alternates file, parsed in place
    const char **alt_phones_; // storage behind the alternates' phones
    tg_ex_phones *alts_;      // [n_alternates] grouped by word: storage behind every items[i].alternates
} tg_ex_cmudict;

// Reads a cmudict.tsv file; strip_stress drops the stress digit of vowels (AH0 -> AH).
bool tg_ex_cmudict_read(const char *path, bool strip_stress, tg_ex_cmudict *dict, tg_ex_error *err);
// Reads an alternates file (WORD<TAB>PHONES, cmudict-alternates.tsv) into a dictionary read
// without them, attaching each line to its word; strip_stress as for the dictionary. False
// when a line is malformed or names a word dict lacks; dict is then as it was.
bool tg_ex_cmudict_read_alternates(const char *path, bool strip_stress, tg_ex_cmudict *dict, tg_ex_error *err);
// Reads data_dir/cmudict/cmudict.tsv and, when the file exists, cmudict-alternates.tsv.
bool tg_ex_cmudict_load(const char *data_dir, bool strip_stress, tg_ex_cmudict *dict, tg_ex_error *err);
void tg_ex_cmudict_free(tg_ex_cmudict *dict);

// --- Brown: data/brown/brown.txt, one sentence a line, word/TAG word/TAG ... --------------

typedef struct {
    const char **words, **tags; // [n]: "Atlanta's", "NOUN"
    int n;
    tg_ex_split split; // key: the words joined by single spaces
} tg_ex_sentence;

typedef struct {
    tg_ex_sentence *items; // [n] in file order
    int n;
    int64_t n_tokens;
    char *text_;          // the file, parsed in place
    const char **tokens_; // storage behind every words and tags array
} tg_ex_brown;

// Reads a tagged file (brown.txt, or brown-original-tags.txt of the full set); a token's
// tag is what follows its last '/', so "1/2/NUM" is the word "1/2".
bool tg_ex_brown_read(const char *path, tg_ex_brown *brown, tg_ex_error *err);
// Reads data_dir/brown/brown.txt.
bool tg_ex_brown_load(const char *data_dir, tg_ex_brown *brown, tg_ex_error *err);
void tg_ex_brown_free(tg_ex_brown *brown);
// Writes the sentence as plain text (the raw text for a character model): words joined by
// spaces, `` and '' as ", no space before , . ; : ? ! ) ] or a closing quote, none after
// ( [ or an opening quote. Returns the length of the whole text, like snprintf.
size_t tg_ex_sentence_text(const tg_ex_sentence *sentence, char *buf, size_t size);

// --- SpamAssassin: data/spam/spam.tsv, label<TAB>id<TAB>escaped text ---------------------

typedef struct {
    bool spam;        // the label: spam or ham
    const char *id;   // the source message: "spam-2/01399.2319643317e2c5193d574e40a71809c2"
    const char *text; // "Subject: ...\n" then the body's text; unescaped, UTF-8
    int len;          // bytes of text
    tg_ex_split split; // key: the text
} tg_ex_message;

typedef struct {
    tg_ex_message *items; // [n] in file order
    int n, n_spam;
    char *text_; // the file, parsed in place
} tg_ex_spam;

// Reads a spam.tsv file.
bool tg_ex_spam_read(const char *path, tg_ex_spam *spam, tg_ex_error *err);
// Reads data_dir/spam/spam.tsv.
bool tg_ex_spam_load(const char *data_dir, tg_ex_spam *spam, tg_ex_error *err);
void tg_ex_spam_free(tg_ex_spam *spam);

// --- Time series: data/co2/co2.csv (monthly) and data/births/births.csv (daily) ----------

typedef enum { TG_EX_MONTHLY, TG_EX_DAILY } tg_ex_frequency;

// A series at a regular step, every step present: a date the file lacks (or whose value is
// empty) is filled by linear interpolation between its neighbours and marked in filled[].
typedef struct {
    double *y;     // [n] the values
    bool *filled;  // [n] true where the file had no value and the reader interpolated it
    int n, n_filled;
    tg_ex_frequency freq;
    int64_t day0;  // y[0]'s date as days since 1970-01-01 (the first of its month when monthly)
} tg_ex_series;

// Reads a CSV file of one of the two formats (told apart by the header): "Date,CO2,..." with
// dates YYYY-MM-01, one a month, or "year,month,date_of_month,day_of_week,births", one a
// day. Dates must increase; a gap of more than a year of steps is refused, not filled.
bool tg_ex_series_read(const char *path, tg_ex_series *series, tg_ex_error *err);
// Reads data_dir/NAME/NAME.csv, NAME "co2" or "births".
bool tg_ex_series_load(const char *data_dir, const char *name, tg_ex_series *series, tg_ex_error *err);
void tg_ex_series_free(tg_ex_series *series);
// The calendar date of step i.
void tg_ex_series_date(const tg_ex_series *series, int i, int *year, int *month, int *day);
// The step of the date (day ignored when monthly), which may lie outside [0, n).
int tg_ex_series_index(const tg_ex_series *series, int year, int month, int day);
// Days since 1970-01-01 of a proleptic Gregorian date, and back; weekday 0 is Monday.
int64_t tg_ex_days_from_civil(int year, int month, int day);
void tg_ex_civil_from_days(int64_t days, int *year, int *month, int *day);
int tg_ex_weekday(int64_t days);

// --- Forecasting: baselines and scores (forecasting.c) ----------------------------------

// Holt-Winters with additive trend and additive season of `period` steps.
typedef struct {
    int period;
    double alpha, beta, gamma; // smoothing of level, trend and season, each in [0, 1]
} tg_ex_hw_params;

// Its states after each step t (for t >= period - 1; the first two seasons initialise them):
// level[t], trend[t], season[t] (of t's place in the period), and one_step[t], the forecast
// of y[t] made at t - 1 (NaN for t < period).
typedef struct {
    double *level, *trend, *season, *one_step; // [n] each, one allocation
    int n, period;
} tg_ex_hw_states;

// Runs the recursions through y[0..n) with fixed parameters; n must be at least 2 periods.
bool tg_ex_hw_run(const double *y, int n, const tg_ex_hw_params *p, tg_ex_hw_states *s);
void tg_ex_hw_free(tg_ex_hw_states *s);
// The forecast made at origin t (after seeing y[t]) for y[t + h], h >= 1.
double tg_ex_hw_forecast(const tg_ex_hw_states *s, int t, int h);
// Sum of squared one-step errors over y[period..n) for the parameters.
double tg_ex_hw_sse(const double *y, int n, const tg_ex_hw_params *p);
// Fits alpha, beta and gamma on y[0..n) by least squares of the one-step errors: a grid, then
// a pattern search inside [0, 1]. False when n is under 3 periods.
bool tg_ex_hw_fit(const double *y, int n, int period, tg_ex_hw_params *p);

// The seasonal naive forecast made at origin t for y[t + h]: the last value one period back.
double tg_ex_seasonal_naive(const double *y, int t, int h, int period);
// The MASE scale: the mean |y[t] - y[t - period]| over t in [period, n), the in-sample error
// of the one-step seasonal naive forecast.
double tg_ex_mase_scale(const double *y, int n, int period);
// One forecast error's share of sMAPE, in percent: 200 |f - y| / (|f| + |y|) (0 when both are 0).
double tg_ex_smape_term(double forecast, double truth);

// Reads path into one NUL-terminated buffer (free it) after checking it is text: no NUL
// byte, lines of at most max_line bytes, a final newline; *n_lines is its line count.
char *tg_ex_read_text(const char *path, size_t max_line, int *n_lines, tg_ex_error *err);

// --- Vocabulary: token strings <-> ids ------------------------------------------------

// Ids 0-3 are reserved, whatever the data: padding, unknown, begin and end of sequence.
// A token never seen in training maps to TG_EX_UNK at prediction time.
enum { TG_EX_PAD = 0, TG_EX_UNK = 1, TG_EX_BOS = 2, TG_EX_EOS = 3, TG_EX_RESERVED = 4 };

typedef struct tg_ex_vocab tg_ex_vocab;

// A vocabulary holding only "<pad>", "<unk>", "<s>" and "</s>"; NULL when out of memory.
tg_ex_vocab *tg_ex_vocab_new(void);
void tg_ex_vocab_free(tg_ex_vocab *vocab);
// The id of token, added if new, and counts one occurrence; -1 when out of memory. The
// empty token and the reserved names give their reserved id.
int tg_ex_vocab_add(tg_ex_vocab *vocab, const char *token);
// The same for the len bytes at token (a character: tg_ex_vocab_add_n(v, &c, 1)).
int tg_ex_vocab_add_n(tg_ex_vocab *vocab, const char *token, size_t len);
// The id of token, or TG_EX_UNK when it is not in the vocabulary.
int tg_ex_vocab_id(const tg_ex_vocab *vocab, const char *token);
int tg_ex_vocab_id_n(const tg_ex_vocab *vocab, const char *token, size_t len);
// The token of id ("<unk>" when id is out of range); NUL-terminated.
const char *tg_ex_vocab_token(const tg_ex_vocab *vocab, int id);
// Tokens including the four reserved ones.
int tg_ex_vocab_size(const tg_ex_vocab *vocab);
// How many times tg_ex_vocab_add counted this id.
int64_t tg_ex_vocab_count(const tg_ex_vocab *vocab, int id);
// Drops the tokens counted fewer than min_count times (so they become UNK); the others keep
// their order and are renumbered densely. The reserved ids stay.
void tg_ex_vocab_prune(tg_ex_vocab *vocab, int64_t min_count);
// Writes one token a line in id order (\\, \t, \n, \r escaped), to keep beside a checkpoint.
bool tg_ex_vocab_save(const tg_ex_vocab *vocab, const char *path, tg_ex_error *err);
// Reads what tg_ex_vocab_save wrote; NULL with a message when the file is missing or damaged.
tg_ex_vocab *tg_ex_vocab_load(const char *path, tg_ex_error *err);
// The tokens of ids [n] joined by spaces ("HH AH L OW") into buf [size], cut short when it is
// full; returns buf.
const char *tg_ex_vocab_join(const tg_ex_vocab *vocab, const int32_t *ids, int n, char *buf, size_t size);
// True when a and b hold the same tokens under the same ids (counts aside).
bool tg_ex_vocab_equal(const tg_ex_vocab *a, const tg_ex_vocab *b);

// --- Scoring predictions (score.c): phoneme and word error rates ------------------------

// Levenshtein distance between token sequences a [n] and b [m] (insertions, deletions,
// substitutions); longer than TG_EX_EDIT_MAX tokens, either gets the bound max(n, m).
enum { TG_EX_EDIT_MAX = 256 };
int tg_ex_edit_distance(const int32_t *a, int n, const int32_t *b, int m);

// Errors of predicted sequences ("words") summed over a set: edits against each one's first
// reference over that reference's length (PER), words with any error (WER), and words that
// are none of their references, the first or an alternate (WER as published g2p results count).
typedef struct {
    int64_t edits, ref, wrong, words;
    int64_t wrong_any;       // words whose prediction is none of their references
    int64_t with_alternates; // words that have alternates
} tg_ex_errors;

// Counts the prediction hyp [n_hyp] against ref [n_ref]; finished: it ended (an unfinished
// one is wrong). Returns whether it was wrong.
bool tg_ex_errors_count(tg_ex_errors *e, const int32_t *hyp, int n_hyp, bool finished, const int32_t *ref,
                        int n_ref);
// Then the same prediction against any pronunciation of p (wrong_first: what
// tg_ex_errors_count returned), the alternates compared as strings of `symbols`' tokens.
void tg_ex_errors_count_any(tg_ex_errors *e, const int32_t *hyp, int n_hyp, bool finished, bool wrong_first,
                            const tg_ex_pron *p, const tg_ex_vocab *symbols);
// Adds the counts of part to sum (the parts of a set scored on several threads).
void tg_ex_errors_add(tg_ex_errors *sum, const tg_ex_errors *part);
// PER, WER against the first reference, WER against any; NAN for an empty set.
double tg_ex_per(tg_ex_errors e);
double tg_ex_wer(tg_ex_errors e);
double tg_ex_wer_any(tg_ex_errors e);

// Shuffles idx[0..n-1] in place (Fisher-Yates with the given generator).
void tg_ex_shuffle(int *idx, int n, tg_rng *rng);
// The training order of an epoch into order[n]: the ids train[n] shuffled by a generator
// seeded from (seed, epoch), so a resumed run sees the same batches, then sorted by length
// (start[id + 1] - start[id]) within windows of `window` ids, so that little of a batch is
// padding while batches still come in random order of length.
void tg_ex_epoch_order(const int *train, int n, const int64_t *start, uint64_t seed, int64_t epoch, int window,
                       int *order);

// --- Command-line options -------------------------------------------------------------

typedef enum { TG_EX_INT, TG_EX_DOUBLE, TG_EX_U64, TG_EX_STRING, TG_EX_FLAG } tg_ex_opt_type;

// One option of a program. value points at the program's variable: int, double, uint64_t,
// const char * or bool for the types above. Its value before parsing is the default that
// --help shows; parsing overwrites it.
typedef struct {
    const char *name; // without dashes: "hidden" is --hidden
    tg_ex_opt_type type;
    void *value;
    const char *help; // one line
    double min, max;  // an INT, DOUBLE or U64 outside [min, max] is an error; unchecked if min >= max
    const char *metavar; // the value's name in --help ("N", "DIR"); NULL: chosen by type
} tg_ex_option;

// The options every example has, in front of its own.
typedef struct {
    const char *data;    // --data DIR: the folder holding cmudict/, brown/, spam/
    uint64_t seed;       // --seed S: initialisation, shuffling, sampling
    int threads;         // --threads N: threads for matrix products
    double minutes;      // --minutes M: the training time budget
    const char *save;    // --save PATH: checkpoint written during and after training; NULL: none
    double save_every;   // --save-every M: minutes between checkpoints while training (0: at the end only)
    const char *load;    // --load PATH: checkpoint read before training; NULL: none
} tg_ex_common;

// Defaults: data_dir, seed 1, 1 thread, the given minutes, no --save or --load, a
// checkpoint every 5 minutes when saving.
tg_ex_common tg_ex_common_defaults(const char *data_dir, double minutes);

typedef struct {
    const char *program;         // "g2p": starts every message
    const char *summary;         // one line for the top of --help
    tg_ex_common *common;        // NULL: the program has no common options
    const tg_ex_option *options; // the program's own [n_options]
    int n_options;
    FILE *out, *err;             // --help and errors go here; NULL: stdout and stderr
} tg_ex_cli;

typedef enum { TG_EX_PARSE_OK, TG_EX_PARSE_HELP, TG_EX_PARSE_ERROR } tg_ex_parse_result;

// Parses --name VALUE and --name=VALUE. --help (or -h) prints every option with its default
// and returns TG_EX_PARSE_HELP (exit 0); an unknown option, a missing or malformed value or
// one out of range prints one line naming it and returns TG_EX_PARSE_ERROR (exit 2).
tg_ex_parse_result tg_ex_parse(const tg_ex_cli *cli, int argc, char **argv);
// Moves the arguments after `flag` that are not options (`--pronounce HELLO WORLD`) to the end
// of argv, in their order, the flag staying among the options, so that argv[0..*argc) is left
// for tg_ex_parse. Returns how many were moved; they start at argv[*argc].
int tg_ex_take_args(int *argc, char **argv, const char *flag);

// --- Ranks: a run under mpirun (mpi_run.c) ------------------------------------------------

// Starts MPI when mpirun started the process (tg_ex_parse calls it once the options are
// read); ranks other than 0 then print nothing. Without MPI support, a run under mpirun with
// several ranks is refused.
void tg_ex_mpi_start(const char *program);
// This process's rank (0 outside mpirun) and the number of ranks (1 outside mpirun).
int tg_ex_rank(void);
int tg_ex_ranks(void);
// Rank 0's value of mine, on every rank: for a decision taken on the clock.
bool tg_ex_agree(bool mine);

// The recurrent cells a --cell option offers, by name: the built-in ones and the published
// ones of tg_rnn.h. NULL for any other name.
#define TG_EX_CELL_NAMES "lstm|gru|rnn_tanh|rnn_relu|peephole_lstm|layer_norm_lstm|indrnn|sru"
const tg_cell_type *tg_ex_cell(const char *name);

// --- Checkpoints ----------------------------------------------------------------------

// An example's checkpoint is tg_checkpoint's pair of files at PATH (the model, with the
// program's config JSON, and the training state) and its vocabularies beside them, one file
// each at PATH.NAME. Every file is replaced atomically, so a run killed at any moment leaves
// the last whole checkpoint; with --save, training saves every --save-every minutes and at
// the end, and a killed run restarted with --load carries on from its last checkpoint.
typedef struct {
    const char *program;            // "charlm": starts every message
    const char *path;               // --save PATH; NULL: this run does not save
    double every;                   // seconds between saves while training; 0: at the end only
    double last;                    // tg_ex_now() at the last save (or when made)
    tg_ex_vocab *const *vocabs;     // [n_vocabs], read when saving
    const char *const *vocab_names; // [n_vocabs] file suffixes: "vocab" is PATH.vocab
    int n_vocabs;
    bool vocabs_saved; // vocabularies are fixed before training: written by the first save only
} tg_ex_saver;

// A saver for --save and --save-every of common; vocabs and names may be NULL when n is 0.
tg_ex_saver tg_ex_saver_make(const char *program, const tg_ex_common *common, tg_ex_vocab *const *vocabs,
                             const char *const *vocab_names, int n_vocabs);
// True when this run saves (on rank 0 alone, under mpirun) and --save-every minutes have
// passed since the last save.
bool tg_ex_saver_due(const tg_ex_saver *saver);
// Writes the vocabularies (first time only), then the checkpoint: params, the training state
// (opt, rng, step) and config. True when saving is off, or on a rank other than 0; false with
// a message on stderr.
bool tg_ex_saver_save(tg_ex_saver *saver, const tg_params *params, const tg_optim *opt, const tg_rng *rng,
                      int64_t step, const char *config);

// tg_ex_saver_save with a parameter average (avg NULL: the same): the model file holds the
// averages, what a user scores and PyTorch loads, and the training state also holds the
// weights training goes on with, as "online.<parameter>". avg may be swapped in or not.
bool tg_ex_saver_save_averaged(tg_ex_saver *saver, const tg_params *params, const tg_optim *opt,
                               tg_param_average *avg, const tg_rng *rng, int64_t step, const char *config);
// Resumes what tg_ex_saver_save_averaged wrote: params get the online weights, avg (made on
// params, its count set by the caller) the averages, not swapped. False with a message.
bool tg_ex_checkpoint_load_averaged(const char *program, const char *path, tg_params *params, tg_optim *opt,
                                    tg_param_average *avg, tg_rng *rng, int64_t *step);

// Reads what the program needs before building its model from the checkpoint at path: its
// config (*config malloc'd; NULL for a weights-only file, from PyTorch say), whether it has a
// training state, and the n vocabularies PATH.NAME into vocabs. False with a message on stderr.
bool tg_ex_checkpoint_config(const char *program, const char *path, char **config, bool *has_state,
                             tg_ex_vocab **vocabs, const char *const *vocab_names, int n_vocabs);
// Loads the weights into params and, when resume is true (the file has a training state and
// the run trains on), the optimizer's state, the generator and *step. False with a message.
bool tg_ex_checkpoint_load(const char *program, const char *path, tg_params *params, bool resume, tg_optim *opt,
                           tg_rng *rng, int64_t *step);

// A checkpoint config of sizes: the JSON object {"model": PROGRAM, NAME: VALUE, ...} of
// integers, written and read with jansson.
typedef struct {
    const char *name; // "hidden"
    int *value;       // the program's variable
} tg_ex_config_int;

// The config's text (malloc'd; NULL when out of memory).
char *tg_ex_config_write(const char *program, const tg_ex_config_int *fields, int n_fields);
// Reads every field from config into its variable; false with a message on stderr naming path
// when config is not JSON, names another program, or lacks a field or holds one that is not
// a positive integer. Other keys are ignored.
bool tg_ex_config_read(const char *program, const char *path, const char *config, const tg_ex_config_int *fields,
                       int n_fields);
// A checkpoint (tg_ex_saver_save) whose config is the fields, named by the saver's program.
bool tg_ex_save_sizes(tg_ex_saver *saver, const tg_params *params, const tg_optim *opt, const tg_rng *rng,
                      int64_t step, const tg_ex_config_int *fields, int n_fields);
// Before the model exists: tg_ex_checkpoint_config, then the config's fields into their
// variables. A weights-only file has no config: the sizes given on the command line stay.
bool tg_ex_load_sizes(const char *program, const char *path, const tg_ex_config_int *fields, int n_fields,
                      tg_ex_vocab **vocabs, const char *const *vocab_names, int n_vocabs, bool *has_state);

// --- Time budget, progress, result ------------------------------------------------------

// Monotonic seconds.
double tg_ex_now(void);

// Train until --minutes is spent: check tg_ex_budget_left before each step.
typedef struct {
    double start, seconds;
} tg_ex_budget;

// Starts the clock with a budget of minutes (0: no training time at all).
void tg_ex_budget_start(tg_ex_budget *budget, double minutes);
// True while time remains.
bool tg_ex_budget_left(const tg_ex_budget *budget);
double tg_ex_budget_elapsed(const tg_ex_budget *budget);
// Seconds left, never negative.
double tg_ex_budget_remaining(const tg_ex_budget *budget);

// Progress through one epoch. On a terminal a bar redrawn in place, at most 10 times a
// second; otherwise (a log, a pipe) one plain line every `interval` seconds, so logs stay
// readable. Both show the step, the epoch's mean loss, units (tokens, examples) per second
// and the time left, capped by the budget when one is set. Fields may be changed after begin.
typedef struct {
    FILE *out;
    bool tty;                   // set by begin from isatty (and TERM != dumb)
    double interval;            // seconds between plain lines; 10 by default
    const tg_ex_budget *budget; // optional: caps the ETA by the time left
    char label[48];             // "epoch 3"
    const char *unit;           // "tok", "ex", ...
    int64_t total, step;        // steps in the epoch (0 when unknown) and steps done
    double units, loss_sum;
    int64_t loss_n;
    double start, last_print;
} tg_ex_progress;

// Starts an epoch of total steps (0 if unknown); out NULL means stdout.
void tg_ex_progress_begin(tg_ex_progress *p, FILE *out, const char *label, int64_t total, const char *unit);
// Records one step: its loss (NaN: none) and how many units it processed; prints when due.
void tg_ex_progress_step(tg_ex_progress *p, double loss, double units);
// Ends the epoch with one summary line (steps, mean loss, rate, seconds); the bar is replaced.
void tg_ex_progress_end(tg_ex_progress *p);
// The epoch's mean loss so far (NaN before any step with a loss).
double tg_ex_progress_loss(const tg_ex_progress *p);

// Prints "RESULT " then the formatted key=value pairs and a newline, and flushes: the last
// line of every example, the one scripts read. out NULL means stdout.
void tg_ex_result(FILE *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
