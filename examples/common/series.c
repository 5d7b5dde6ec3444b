// series.c: the reader of the two time series (formats in data/README.md) and the calendar
// arithmetic the forecasting example needs.
//
// A series comes out at a regular step with every step present: forecasting code indexes by
// step, and the baselines (seasonal naive, Holt-Winters) need a value at every step. The
// monthly CO2 file leaves out the five months without valid data; they are filled by linear
// interpolation and marked, so that nothing scores a forecast against a made-up value.
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "tg_example.h"

enum { SERIES_MAX_LINE = 256, MAX_GAP_MONTHS = 12, MAX_GAP_DAYS = 366 };

static const char *const MONTHLY_HEADER = "Date,CO2,adjusted CO2";
static const char *const DAILY_HEADER = "year,month,date_of_month,day_of_week,births";

static void series_error(tg_ex_error *err, const char *path, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void series_error(tg_ex_error *err, const char *path, int line, const char *fmt, ...) {
    if (!err) return;
    char what[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(err->msg, sizeof err->msg,
             "%s:%d: %s. The file looks damaged or is not this data set: restore the bundled one with "
             "`git checkout data/`, or fetch the full sets again with scripts/fetch_data.sh --force.",
             path, line, what);
}

static bool out_of_memory(tg_ex_error *err, const char *path) {
    if (err) snprintf(err->msg, sizeof err->msg, "%s: out of memory reading it", path);
    return false;
}

// --- Calendar (Howard Hinnant's days_from_civil, proleptic Gregorian) ---

int64_t tg_ex_days_from_civil(int year, int month, int day) {
    int64_t y = year - (month <= 2);
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;                                     // [0, 399]
    int64_t doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1; // [0, 365]
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;            // [0, 146096]
    return era * 146097 + doe - 719468;
}

void tg_ex_civil_from_days(int64_t days, int *year, int *month, int *day) {
    days += 719468;
    int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    int64_t doe = days - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *day = (int)(doy - (153 * mp + 2) / 5 + 1);
    *month = (int)(mp < 10 ? mp + 3 : mp - 9);
    *year = (int)(yoe + era * 400 + (*month <= 2));
}

int tg_ex_weekday(int64_t days) { return (int)(((days + 3) % 7 + 7) % 7); } // 1970-01-01 was a Thursday

static int64_t month_number(int year, int month) { return (int64_t)year * 12 + month - 1; }

void tg_ex_series_date(const tg_ex_series *s, int i, int *year, int *month, int *day) {
    if (s->freq == TG_EX_DAILY) return tg_ex_civil_from_days(s->day0 + i, year, month, day);
    int y0, m0, d0;
    tg_ex_civil_from_days(s->day0, &y0, &m0, &d0);
    int64_t m = month_number(y0, m0) + i;
    *year = (int)(m >= 0 ? m / 12 : (m - 11) / 12);
    *month = (int)(m - (int64_t)*year * 12) + 1;
    *day = 1;
}

int tg_ex_series_index(const tg_ex_series *s, int year, int month, int day) {
    if (s->freq == TG_EX_DAILY) return (int)(tg_ex_days_from_civil(year, month, day) - s->day0);
    int y0, m0, d0;
    tg_ex_civil_from_days(s->day0, &y0, &m0, &d0);
    return (int)(month_number(year, month) - month_number(y0, m0));
}

// --- Reading ---

// One parsed row: its step number (months or days since 1970) and its value (NaN: empty).
typedef struct {
    int64_t step;
    double value;
} row;

static bool valid_date(int year, int month, int day) {
    if (year < 1000 || year > 9999 || month < 1 || month > 12 || day < 1 || day > 31) return false;
    int y, m, d; // a date that does not round-trip (February 30) is not one
    tg_ex_civil_from_days(tg_ex_days_from_civil(year, month, day), &y, &m, &d);
    return y == year && m == month && d == day;
}

// A value field: a finite number, or empty for a missing value (NaN).
static bool parse_value(const char *field, double *value) {
    if (!*field) return *value = NAN, true;
    char *end;
    errno = 0;
    *value = strtod(field, &end);
    return end != field && !*end && errno == 0 && isfinite(*value);
}

// Parses one data line of the given format into r; false with a message.
static bool parse_row(char *line, tg_ex_frequency freq, const char *path, int lineno, row *r, tg_ex_error *err) {
    int year, month, day, weekday, used = 0;
    char value[64] = "";
    if (freq == TG_EX_MONTHLY) {
        // Date,CO2,adjusted CO2: only CO2 is read; the adjusted column is the series minus its season.
        if (sscanf(line, "%4d-%2d-%2d,%n", &year, &month, &day, &used) != 3 || used == 0)
            return series_error(err, path, lineno, "expected YYYY-MM-DD,CO2,adjusted, found \"%.60s\"", line), false;
        if (!valid_date(year, month, day) || day != 1)
            return series_error(err, path, lineno, "%.10s is not the first day of a month", line), false;
        size_t len = strcspn(line + used, ",");
        if (len >= sizeof value || !line[used + len])
            return series_error(err, path, lineno, "expected three fields, found \"%.60s\"", line), false;
        memcpy(value, line + used, len);
        value[len] = 0;
        r->step = month_number(year, month);
    } else {
        if (sscanf(line, "%d,%d,%d,%d,%n", &year, &month, &day, &weekday, &used) != 4 || used == 0 ||
            strlen(line + used) >= sizeof value)
            return series_error(err, path, lineno, "expected year,month,day,weekday,births, found \"%.60s\"", line),
                   false;
        if (!valid_date(year, month, day))
            return series_error(err, path, lineno, "%d-%d-%d is not a date", year, month, day), false;
        r->step = tg_ex_days_from_civil(year, month, day);
        if (weekday != tg_ex_weekday(r->step) + 1)
            return series_error(err, path, lineno, "%04d-%02d-%02d is weekday %d (1 = Monday), not %d", year, month,
                                day, tg_ex_weekday(r->step) + 1, weekday),
                   false;
        strcpy(value, line + used);
    }
    if (!parse_value(value, &r->value))
        return series_error(err, path, lineno, "the value \"%s\" is not a number", value), false;
    return true;
}

// Lays the rows out at one step each, interpolating gaps and empty values linearly.
static bool fill_series(const row *rows, int n_rows, tg_ex_frequency freq, const char *path, tg_ex_series *s,
                        tg_ex_error *err) {
    int64_t first = rows[0].step, n = rows[n_rows - 1].step - first + 1;
    s->y = malloc(sizeof *s->y * (size_t)n);
    s->filled = calloc((size_t)n, sizeof *s->filled);
    if (!s->y || !s->filled) return out_of_memory(err, path);
    s->n = (int)n;
    for (int i = 0; i < n; i++) s->y[i] = NAN;
    for (int i = 0; i < n_rows; i++) s->y[rows[i].step - first] = rows[i].value;
    int last = -1; // the last step with a value
    for (int i = 0; i < n; i++) {
        if (isnan(s->y[i])) continue;
        if (last < 0 && i > 0)
            return series_error(err, path, 2, "the series starts without a value: nothing to fill it from"), false;
        for (int j = last + 1; j < i; j++) {
            s->y[j] = s->y[last] + (s->y[i] - s->y[last]) * (j - last) / (i - last);
            s->filled[j] = true;
            s->n_filled++;
        }
        last = i;
    }
    if (last != n - 1)
        return series_error(err, path, n_rows + 1, "the series ends without a value: nothing to fill it from"), false;
    s->day0 = freq == TG_EX_DAILY ? first : tg_ex_days_from_civil((int)(first / 12), (int)(first % 12) + 1, 1);
    return true;
}

static bool parse_series(char *text, int n_lines, const char *path, tg_ex_series *s, tg_ex_error *err) {
    char *at = text, *line = at;
    at = strchr(at, '\n') + 1; // tg_ex_read_text checked that every line ends in one
    at[-1] = 0;
    line[strcspn(line, "\r")] = 0;
    if (!strcmp(line, MONTHLY_HEADER)) s->freq = TG_EX_MONTHLY;
    else if (!strcmp(line, DAILY_HEADER)) s->freq = TG_EX_DAILY;
    else
        return series_error(err, path, 1, "the header \"%.60s\" is neither \"%s\" nor \"%s\"", line, MONTHLY_HEADER,
                            DAILY_HEADER),
               false;
    row *rows = malloc(sizeof *rows * (size_t)n_lines);
    if (!rows) return out_of_memory(err, path);
    int n_rows = 0, max_gap = s->freq == TG_EX_MONTHLY ? MAX_GAP_MONTHS : MAX_GAP_DAYS;
    bool ok = true;
    for (int lineno = 2; ok && *at; lineno++) {
        line = at;
        at = strchr(at, '\n') + 1;
        at[-1] = 0;
        line[strcspn(line, "\r")] = 0;
        if (!*line) continue; // blank lines are skipped, as in the other formats
        ok = parse_row(line, s->freq, path, lineno, &rows[n_rows], err);
        if (ok && n_rows > 0 && rows[n_rows].step <= rows[n_rows - 1].step)
            ok = false, series_error(err, path, lineno, "the dates go backwards or repeat");
        else if (ok && n_rows > 0 && rows[n_rows].step - rows[n_rows - 1].step > max_gap)
            ok = false, series_error(err, path, lineno, "%lld steps missing before this line, more than the %d "
                                                        "the reader fills",
                                     (long long)(rows[n_rows].step - rows[n_rows - 1].step - 1), max_gap);
        n_rows += ok;
    }
    if (ok && n_rows < 2) ok = false, series_error(err, path, n_lines, "fewer than two values");
    ok = ok && fill_series(rows, n_rows, s->freq, path, s, err);
    free(rows);
    return ok;
}

bool tg_ex_series_read(const char *path, tg_ex_series *s, tg_ex_error *err) {
    memset(s, 0, sizeof *s);
    int n_lines;
    char *text = tg_ex_read_text(path, SERIES_MAX_LINE, &n_lines, err);
    if (!text) return false;
    bool ok = parse_series(text, n_lines, path, s, err);
    free(text);
    if (!ok) tg_ex_series_free(s);
    return ok;
}

bool tg_ex_series_load(const char *data_dir, const char *name, tg_ex_series *s, tg_ex_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/%s.csv", data_dir && *data_dir ? data_dir : ".", name, name);
    return tg_ex_series_read(path, s, err);
}

void tg_ex_series_free(tg_ex_series *s) {
    free(s->y);
    free(s->filled);
    memset(s, 0, sizeof *s);
}
