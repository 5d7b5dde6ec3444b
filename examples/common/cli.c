// cli.c: the examples' command line (a table of options with defaults and help), their time
// budget, progress reporting and RESULT line.
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tg_example.h"

// --- Options ---

tg_ex_common tg_ex_common_defaults(const char *data_dir, double minutes) {
    return (tg_ex_common){.data = data_dir, .seed = 1, .threads = 1, .minutes = minutes, .save = NULL,
                          .save_every = 5, .load = NULL};
}

// The common options as a table over the fields of c, so they parse and print like the rest.
static int common_table(tg_ex_common *c, tg_ex_option *t) {
    if (!c) return 0;
    t[0] = (tg_ex_option){"data", TG_EX_STRING, &c->data, "folder holding cmudict/, brown/ and spam/", 0, 0, "DIR"};
    t[1] = (tg_ex_option){"seed", TG_EX_U64, &c->seed, "seed for initialisation, shuffling and sampling", 0, 0, "S"};
    t[2] = (tg_ex_option){"threads", TG_EX_INT, &c->threads, "threads for matrix products", 1, 1024, "N"};
    t[3] = (tg_ex_option){"minutes", TG_EX_DOUBLE, &c->minutes, "training time budget in minutes", 0, 1e6, "M"};
    t[4] = (tg_ex_option){"save", TG_EX_STRING, &c->save, "write a checkpoint here during and after training", 0, 0,
                          "PATH"};
    t[5] = (tg_ex_option){"save-every", TG_EX_DOUBLE, &c->save_every, "minutes between checkpoints (0: at the end only)",
                          0, 1e6, "M"};
    t[6] = (tg_ex_option){"load", TG_EX_STRING, &c->load, "start from this checkpoint", 0, 0, "PATH"};
    return 7;
}

static const char *metavar(const tg_ex_option *o) {
    if (o->metavar) return o->metavar;
    switch (o->type) {
    case TG_EX_INT:
    case TG_EX_U64: return "N";
    case TG_EX_DOUBLE: return "X";
    case TG_EX_STRING: return "TEXT";
    case TG_EX_FLAG: return "";
    }
    return "";
}

// Writes the option's present value (its default, before parsing) into buf.
static void format_value(const tg_ex_option *o, char *buf, size_t size) {
    switch (o->type) {
    case TG_EX_INT: snprintf(buf, size, "%d", *(const int *)o->value); break;
    case TG_EX_DOUBLE: snprintf(buf, size, "%g", *(const double *)o->value); break;
    case TG_EX_U64: snprintf(buf, size, "%llu", (unsigned long long)*(const uint64_t *)o->value); break;
    case TG_EX_STRING: {
        const char *s = *(const char *const *)o->value;
        snprintf(buf, size, "%s", s ? s : "none");
        break;
    }
    case TG_EX_FLAG: snprintf(buf, size, "%s", *(const bool *)o->value ? "on" : "off"); break;
    }
}

static void print_options(FILE *out, const char *title, const tg_ex_option *o, int n, int width) {
    if (n == 0) return;
    fprintf(out, "\n%s:\n", title);
    for (int i = 0; i < n; i++) {
        char head[96], value[256];
        snprintf(head, sizeof head, "--%s%s%s", o[i].name, o[i].type == TG_EX_FLAG ? "" : " ", metavar(&o[i]));
        format_value(&o[i], value, sizeof value);
        fprintf(out, "  %-*s  %s (default %s)\n", width, head, o[i].help ? o[i].help : "", value);
    }
}

static int head_width(const tg_ex_option *o, int n, int width) {
    for (int i = 0; i < n; i++) {
        int w = 2 + (int)strlen(o[i].name) + (o[i].type == TG_EX_FLAG ? 0 : 1 + (int)strlen(metavar(&o[i])));
        width = w > width ? w : width;
    }
    return width;
}

static void print_help(const tg_ex_cli *cli, const tg_ex_option *common, int n_common) {
    FILE *out = cli->out ? cli->out : stdout;
    fprintf(out, "%s: %s\n\nusage: %s [options]\n", cli->program, cli->summary ? cli->summary : "", cli->program);
    int width = head_width(cli->options, cli->n_options, head_width(common, n_common, 0));
    print_options(out, "options shared by the examples", common, n_common, width);
    char title[128];
    snprintf(title, sizeof title, "options of %s", cli->program);
    print_options(out, title, cli->options, cli->n_options, width);
    fprintf(out, "  %-*s  print this help and exit\n", width, "--help");
}

// Stores text as the option's value; false with a message naming the option when it is
// not a number of the right kind or lies outside the option's range.
static bool set_value(const tg_ex_cli *cli, const tg_ex_option *o, const char *text) {
    FILE *err = cli->err ? cli->err : stderr;
    char *end = NULL;
    double number = 0;
    errno = 0;
    switch (o->type) {
    case TG_EX_STRING: *(const char **)o->value = text; return true;
    case TG_EX_FLAG: return true;
    case TG_EX_INT: {
        long v = strtol(text, &end, 10);
        if (end == text || *end || errno || v < INT_MIN || v > INT_MAX) {
            fprintf(err, "%s: --%s needs a whole number, not '%s' (see --help)\n", cli->program, o->name, text);
            return false;
        }
        number = (double)v;
        break;
    }
    case TG_EX_U64: {
        unsigned long long v = strtoull(text, &end, 10);
        if (end == text || *end || errno || strchr(text, '-')) {
            fprintf(err, "%s: --%s needs a non-negative whole number, not '%s' (see --help)\n", cli->program,
                    o->name, text);
            return false;
        }
        number = (double)v;
        break;
    }
    case TG_EX_DOUBLE:
        number = strtod(text, &end);
        if (end == text || *end || errno || !isfinite(number)) {
            fprintf(err, "%s: --%s needs a number, not '%s' (see --help)\n", cli->program, o->name, text);
            return false;
        }
        break;
    }
    if (o->min < o->max && (number < o->min || number > o->max)) {
        fprintf(err, "%s: --%s %s is out of range: it must lie in [%g, %g]\n", cli->program, o->name, text, o->min,
                o->max);
        return false;
    }
    if (o->type == TG_EX_INT) *(int *)o->value = (int)strtol(text, NULL, 10);
    else if (o->type == TG_EX_U64) *(uint64_t *)o->value = (uint64_t)strtoull(text, NULL, 10);
    else *(double *)o->value = number;
    return true;
}

static const tg_ex_option *find(const tg_ex_option *o, int n, const char *name, size_t len) {
    for (int i = 0; i < n; i++)
        if (strlen(o[i].name) == len && !strncmp(o[i].name, name, len)) return &o[i];
    return NULL;
}

int tg_ex_take_args(int *argc, char **argv, const char *flag) {
    int kept = 1;
    bool taking = false;
    for (int i = 1; i < *argc; i++) {
        if (!strncmp(argv[i], "--", 2)) taking = !strcmp(argv[i], flag);
        if (taking && strncmp(argv[i], "--", 2)) continue;
        char *option = argv[i]; // to the front, past the options so far
        memmove(&argv[kept + 1], &argv[kept], sizeof *argv * (size_t)(i - kept));
        argv[kept++] = option;
    }
    int n = *argc - kept;
    *argc = kept;
    return n;
}

tg_ex_parse_result tg_ex_parse(const tg_ex_cli *cli, int argc, char **argv) {
    FILE *err = cli->err ? cli->err : stderr;
    tg_ex_option common[8];
    int n_common = common_table(cli->common, common);
    // A program option named like a common one would silently never be set: say so.
    for (int i = 0; i < cli->n_options; i++)
        if (find(common, n_common, cli->options[i].name, strlen(cli->options[i].name)) ||
            find(cli->options, i, cli->options[i].name, strlen(cli->options[i].name))) {
            fprintf(err, "%s: the option --%s is declared twice (a bug in the program)\n", cli->program,
                    cli->options[i].name);
            return TG_EX_PARSE_ERROR;
        }
    // --help wins wherever it stands, so a bad option before it still shows the help.
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            print_help(cli, common, n_common);
            return TG_EX_PARSE_HELP;
        }
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) || !arg[2]) {
            fprintf(err, "%s: unexpected argument '%s': options start with -- (see --help)\n", cli->program, arg);
            return TG_EX_PARSE_ERROR;
        }
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const tg_ex_option *o = find(common, n_common, name, len);
        if (!o) o = find(cli->options, cli->n_options, name, len);
        if (!o) {
            fprintf(err, "%s: unknown option --%.*s (see --help)\n", cli->program, (int)len, name);
            return TG_EX_PARSE_ERROR;
        }
        if (o->type == TG_EX_FLAG) {
            if (eq) {
                fprintf(err, "%s: --%s takes no value\n", cli->program, o->name);
                return TG_EX_PARSE_ERROR;
            }
            *(bool *)o->value = true;
            continue;
        }
        const char *value = eq ? eq + 1 : i + 1 < argc ? argv[++i] : NULL;
        if (!value) {
            fprintf(err, "%s: --%s needs a value: --%s %s (see --help)\n", cli->program, o->name, o->name, metavar(o));
            return TG_EX_PARSE_ERROR;
        }
        if (!set_value(cli, o, value)) return TG_EX_PARSE_ERROR;
    }
    tg_ex_mpi_start(cli->program);
    return TG_EX_PARSE_OK;
}

// --- Time ---

double tg_ex_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

void tg_ex_budget_start(tg_ex_budget *b, double minutes) {
    b->start = tg_ex_now();
    b->seconds = minutes > 0 ? minutes * 60 : 0;
}

double tg_ex_budget_elapsed(const tg_ex_budget *b) { return tg_ex_now() - b->start; }

double tg_ex_budget_remaining(const tg_ex_budget *b) {
    double left = b->seconds - tg_ex_budget_elapsed(b);
    return left > 0 ? left : 0;
}

bool tg_ex_budget_left(const tg_ex_budget *b) { return tg_ex_budget_elapsed(b) < b->seconds; }

// --- Progress ---

void tg_ex_progress_begin(tg_ex_progress *p, FILE *out, const char *label, int64_t total, const char *unit) {
    memset(p, 0, sizeof *p);
    p->out = out ? out : stdout;
    const char *term = getenv("TERM");
    p->tty = isatty(fileno(p->out)) && !(term && !strcmp(term, "dumb"));
    p->interval = 10;
    snprintf(p->label, sizeof p->label, "%s", label ? label : "");
    p->unit = unit ? unit : "ex";
    p->total = total > 0 ? total : 0;
    p->start = p->last_print = tg_ex_now();
}

double tg_ex_progress_loss(const tg_ex_progress *p) { return p->loss_n ? p->loss_sum / (double)p->loss_n : NAN; }

// "1:02:03" or "2:03".
static void format_duration(double seconds, char *buf, size_t size) {
    long s = seconds > 0 && seconds < 1e9 ? (long)(seconds + 0.5) : 0;
    if (s >= 3600) snprintf(buf, size, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else snprintf(buf, size, "%ld:%02ld", s / 60, s % 60);
}

// The fields both modes show after the step: loss, rate, ETA.
static void format_stats(const tg_ex_progress *p, double now, char *buf, size_t size) {
    double elapsed = now - p->start, rate = elapsed > 0 ? p->units / elapsed : 0, eta = -1;
    if (p->total > 0 && p->step > 0) eta = (double)(p->total - p->step) * elapsed / (double)p->step;
    if (p->budget) {
        double left = tg_ex_budget_remaining(p->budget);
        eta = eta < 0 || left < eta ? left : eta;
    }
    char loss[32] = "", when[32] = "?";
    if (p->loss_n) snprintf(loss, sizeof loss, "loss %.4f  ", tg_ex_progress_loss(p));
    if (eta >= 0) format_duration(eta, when, sizeof when);
    snprintf(buf, size, "%s%.0f %s/s  eta %s", loss, rate, p->unit, when);
}

static void format_step(const tg_ex_progress *p, char *buf, size_t size) {
    if (p->total > 0) snprintf(buf, size, "%lld/%lld", (long long)p->step, (long long)p->total);
    else snprintf(buf, size, "%lld", (long long)p->step);
}

void tg_ex_progress_step(tg_ex_progress *p, double loss, double units) {
    p->step++;
    p->units += units;
    if (!isnan(loss)) {
        p->loss_sum += loss;
        p->loss_n++;
    }
    double now = tg_ex_now();
    char step[48], stats[128];
    if (p->tty) {
        if (now - p->last_print < 0.1 && p->step != p->total) return;
        p->last_print = now;
        enum { WIDTH = 24 };
        char bar[WIDTH + 1];
        int filled = p->total > 0 ? (int)(WIDTH * (p->step > p->total ? p->total : p->step) / p->total) : 0;
        for (int i = 0; i < WIDTH; i++) bar[i] = i < filled ? '#' : p->total > 0 ? '.' : ' ';
        bar[WIDTH] = 0;
        format_step(p, step, sizeof step);
        format_stats(p, now, stats, sizeof stats);
        // \r returns to the start of the line; ESC[K clears what a longer line left behind.
        fprintf(p->out, "\r%s [%s] %s  %s\033[K", p->label, bar, step, stats);
        fflush(p->out);
    } else {
        if (now - p->last_print < p->interval) return;
        p->last_print = now;
        format_step(p, step, sizeof step);
        format_stats(p, now, stats, sizeof stats);
        fprintf(p->out, "%s  step %s  %s\n", p->label, step, stats);
        fflush(p->out);
    }
}

void tg_ex_progress_end(tg_ex_progress *p) {
    double elapsed = tg_ex_now() - p->start;
    char loss[32] = "";
    if (p->loss_n) snprintf(loss, sizeof loss, "  loss %.4f", tg_ex_progress_loss(p));
    fprintf(p->out, "%s%s  %lld steps%s  %.0f %s/s  %.1f s%s\n", p->tty ? "\r" : "", p->label, (long long)p->step,
            loss, elapsed > 0 ? p->units / elapsed : 0, p->unit, elapsed, p->tty ? "\033[K" : "");
    fflush(p->out);
}

void tg_ex_result(FILE *out, const char *fmt, ...) {
    out = out ? out : stdout;
    va_list ap;
    va_start(ap, fmt);
    fputs("RESULT ", out);
    vfprintf(out, fmt, ap);
    fputc('\n', out);
    va_end(ap);
    fflush(out);
}

const tg_cell_type *tg_ex_cell(const char *name) {
    static const struct {
        const char *name;
        const tg_cell_type *type;
    } cells[] = {{"lstm", &tg_cell_lstm},
                 {"gru", &tg_cell_gru},
                 {"rnn_tanh", &tg_cell_rnn_tanh},
                 {"rnn_relu", &tg_cell_rnn_relu},
                 {"peephole_lstm", &tg_cell_peephole_lstm},
                 {"layer_norm_lstm", &tg_cell_layer_norm_lstm},
                 {"indrnn", &tg_cell_indrnn},
                 {"sru", &tg_cell_sru}};
    for (int i = 0; name && i < TG_EX_LEN(cells); i++)
        if (!strcmp(name, cells[i].name)) return cells[i].type;
    return NULL;
}
