// test_forecast.c: what the forecast example stands on (examples/common): the time-series
// reader (gaps, empty values, damaged files, the bundled series), the calendar, the
// baselines (seasonal naive, Holt-Winters) and the scores (MASE's scale, sMAPE).
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "tg_example.h"
#include "tg_test.h"

#ifndef TG_DATA_DIR
#define TG_DATA_DIR "data"
#endif

// A fresh file in /tmp holding text; returns its path (free it, unlink it).
static char *temp_text(const char *text) {
    char *path = strdup("/tmp/tg_forecast_XXXXXX");
    int fd = mkstemp(path);
    cr_assert(fd >= 0, "mkstemp failed");
    size_t len = strlen(text);
    cr_assert_eq(write(fd, text, len), (ssize_t)len);
    close(fd);
    return path;
}

// Reads text as a series file; returns whether it was accepted, the message in err.
static bool read_text_series(const char *text, tg_ex_series *s, tg_ex_error *err) {
    char *path = temp_text(text);
    bool ok = tg_ex_series_read(path, s, err);
    unlink(path);
    free(path);
    return ok;
}

// --- Calendar ---

Test(forecast, calendar_matches_known_dates) {
    cr_assert_eq(tg_ex_days_from_civil(1970, 1, 1), 0);
    cr_assert_eq(tg_ex_days_from_civil(2000, 3, 1), 11017); // after a leap day of a year divisible by 400
    cr_assert_eq(tg_ex_weekday(tg_ex_days_from_civil(1988, 12, 31)), 5); // a Saturday
    cr_assert_eq(tg_ex_weekday(tg_ex_days_from_civil(1969, 1, 1)), 2);  // a Wednesday
    for (int64_t d = -800000; d < 800000; d += 997) {
        int y, m, day;
        tg_ex_civil_from_days(d, &y, &m, &day);
        cr_assert_eq(tg_ex_days_from_civil(y, m, day), d, "day %lld does not round-trip", (long long)d);
    }
}

// --- The reader ---

Test(forecast, monthly_gaps_and_empty_values_are_interpolated_and_marked) {
    // March missing from the file, May present with an empty value.
    tg_ex_series s;
    tg_ex_error err;
    cr_assert(read_text_series("Date,CO2,adjusted CO2\n1990-01-01,10,0\n1990-02-01,12,0\n1990-04-01,18,0\n"
                               "1990-05-01,,0\n1990-06-01,30,0\n",
                               &s, &err),
              "%s", err.msg);
    cr_assert_eq(s.freq, TG_EX_MONTHLY);
    cr_assert_eq(s.n, 6);
    cr_assert_eq(s.n_filled, 2);
    const double want[] = {10, 12, 15, 18, 24, 30};
    const bool filled[] = {false, false, true, false, true, false};
    for (int i = 0; i < 6; i++) {
        cr_assert_float_eq(s.y[i], want[i], 1e-12, "y[%d] = %g", i, s.y[i]);
        cr_assert_eq(s.filled[i], filled[i], "filled[%d]", i);
    }
    int y, m, d;
    tg_ex_series_date(&s, 2, &y, &m, &d);
    cr_assert(y == 1990 && m == 3 && d == 1);
    cr_assert_eq(tg_ex_series_index(&s, 1991, 1, 1), 12);
    tg_ex_series_free(&s);
}

Test(forecast, daily_file_is_read_and_its_weekdays_checked) {
    tg_ex_series s;
    tg_ex_error err;
    const char *head = "year,month,date_of_month,day_of_week,births\n";
    char text[512];
    snprintf(text, sizeof text, "%s1988,12,30,5,100\n1988,12,31,6,90\n1989,1,2,1,120\n", head);
    cr_assert(read_text_series(text, &s, &err), "%s", err.msg);
    cr_assert(s.freq == TG_EX_DAILY && s.n == 4 && s.n_filled == 1 && s.filled[2]);
    cr_assert_float_eq(s.y[2], 105, 1e-12);
    cr_assert_eq(s.day0, tg_ex_days_from_civil(1988, 12, 30));
    tg_ex_series_free(&s);

    snprintf(text, sizeof text, "%s1988,12,30,5,100\n1988,12,31,7,90\n", head); // the 31st was a Saturday
    cr_assert_not(read_text_series(text, &s, &err));
    cr_assert(strstr(err.msg, ":3:") && strstr(err.msg, "weekday 6"), "%s", err.msg);
}

Test(forecast, damaged_files_are_refused_with_the_line) {
    static const struct {
        const char *text, *line, *what;
    } cases[] = {
        {"Date,CO2,adjusted CO2\n1990-02-01,1,0\n1990-01-01,2,0\n", ":3:", "backwards"},
        {"Date,CO2,adjusted CO2\n1990-01-01,1,0\n1990-01-01,2,0\n", ":3:", "repeat"},
        {"Date,CO2,adjusted CO2\n1990-01-01,1,0\n1990-01-15,2,0\n", ":3:", "first day of a month"},
        {"Date,CO2,adjusted CO2\n1990-01-01,1,0\n1990-02-01,abc,0\n", ":3:", "not a number"},
        {"Date,CO2,adjusted CO2\n1990-01-01,1,0\n1995-01-01,2,0\n", ":3:", "steps missing"},
        {"Date,CO2,adjusted CO2\n1990-01-01,,0\n1990-02-01,2,0\n", ":2:", "starts without a value"},
        {"Date,CO2,adjusted CO2\n1990-01-01,1,0\n", ":2:", "fewer than two"},
        {"date,value\n1990-01-01,1\n", ":1:", "header"},
        {"Date,CO2,adjusted CO2\n1990-01-01,1,0\n1990-02-01,2,0", ":3:", "cut short"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        tg_ex_series s;
        tg_ex_error err;
        cr_assert_not(read_text_series(cases[i].text, &s, &err), "case %zu accepted", i);
        cr_assert(strstr(err.msg, cases[i].line) && strstr(err.msg, cases[i].what), "case %zu: %s", i, err.msg);
        cr_assert_null(s.y, "case %zu left memory behind", i);
    }
    tg_ex_series s;
    tg_ex_error err;
    cr_assert_not(tg_ex_series_load("/nonexistent", "co2", &s, &err));
    cr_assert(strstr(err.msg, "cannot open /nonexistent/co2/co2.csv"), "%s", err.msg);
}

Test(forecast, bundled_series_read_whole) {
    tg_ex_series s;
    tg_ex_error err;
    cr_assert(tg_ex_series_load(TG_DATA_DIR, "co2", &s, &err), "%s", err.msg);
    // 741 rows from 1958-03 to 2020-04: 746 months, 5 of them missing in the source.
    cr_assert(s.freq == TG_EX_MONTHLY && s.n == 746 && s.n_filled == 5, "n %d, filled %d", s.n, s.n_filled);
    cr_assert_float_eq(s.y[0], 315.70, 1e-9);
    cr_assert_float_eq(s.y[s.n - 1], 416.18, 1e-9);
    cr_assert(s.filled[tg_ex_series_index(&s, 1958, 6, 1)] && s.filled[tg_ex_series_index(&s, 1964, 4, 1)]);
    tg_ex_series_free(&s);
    cr_assert(tg_ex_series_load(TG_DATA_DIR, "births", &s, &err), "%s", err.msg);
    cr_assert(s.freq == TG_EX_DAILY && s.n == 2192 && s.n_filled == 0, "n %d, filled %d", s.n, s.n_filled);
    cr_assert_eq(s.day0, tg_ex_days_from_civil(1983, 1, 1));
    cr_assert_float_eq(s.y[s.n - 1], 9133, 1e-9);
    tg_ex_series_free(&s);
}

// --- Baselines and scores ---

Test(forecast, seasonal_naive_mase_scale_and_smape) {
    const double y[] = {1, 2, 4, 7, 11, 16};
    cr_assert_float_eq(tg_ex_mase_scale(y, 6, 1), (1 + 2 + 3 + 4 + 5) / 5.0, 1e-12);
    cr_assert_float_eq(tg_ex_mase_scale(y, 6, 2), (3 + 5 + 7 + 9) / 4.0, 1e-12);
    // Origin t = 3 (y = 7), period 2: h = 1, 2 repeat the last season, h = 3, 4 repeat it again.
    cr_assert_float_eq(tg_ex_seasonal_naive(y, 3, 1, 2), 4, 0);
    cr_assert_float_eq(tg_ex_seasonal_naive(y, 3, 2, 2), 7, 0);
    cr_assert_float_eq(tg_ex_seasonal_naive(y, 3, 3, 2), 4, 0);
    cr_assert_float_eq(tg_ex_seasonal_naive(y, 3, 4, 2), 7, 0);
    cr_assert_float_eq(tg_ex_smape_term(110, 100), 200.0 * 10 / 210, 1e-12);
    cr_assert_float_eq(tg_ex_smape_term(-1, 1), 200, 1e-12);
    cr_assert_float_eq(tg_ex_smape_term(0, 0), 0, 0);
}

Test(forecast, holt_winters_follows_the_recursions) {
    // Worked by hand (and by an independent Python loop): period 2, alpha = beta = gamma = 0.5.
    // The seasons' means 2 and 3 give trend (3 - 2) / 2 = 0.5, level 2 + 0.5 / 2 = 2.25 at
    // t = 1, and season (1 - 1.75, 3 - 2.25) = (-0.75, 0.75).
    const double y[] = {1, 3, 2, 4, 5, 7};
    tg_ex_hw_params p = {2, 0.5, 0.5, 0.5};
    tg_ex_hw_states s;
    cr_assert(tg_ex_hw_run(y, 6, &p, &s));
    const double one_step[] = {NAN, NAN, 2, 4, 3, 6.5};
    const double level[] = {NAN, 2.25, 2.75, 3.25, 4.75, 6};
    const double trend[] = {NAN, 0.5, 0.5, 0.5, 1, 1.125};
    const double season[] = {-0.75, 0.75, -0.75, 0.75, -0.25, 0.875};
    cr_assert_float_eq(s.level[1], level[1], 1e-12);
    cr_assert_float_eq(s.trend[1], trend[1], 1e-12);
    for (int t = 2; t < 6; t++) {
        cr_assert_float_eq(s.one_step[t], one_step[t], 1e-12, "one_step[%d] = %.10g", t, s.one_step[t]);
        cr_assert_float_eq(s.level[t], level[t], 1e-12, "level[%d]", t);
        cr_assert_float_eq(s.trend[t], trend[t], 1e-12, "trend[%d]", t);
        cr_assert_float_eq(s.season[t], season[t], 1e-12, "season[%d]", t);
    }
    cr_assert(isnan(s.one_step[0]) && isnan(s.one_step[1]));
    cr_assert_float_eq(tg_ex_hw_forecast(&s, 5, 1), 6.875, 1e-12);
    cr_assert_float_eq(tg_ex_hw_forecast(&s, 5, 2), 9.125, 1e-12);
    cr_assert_float_eq(tg_ex_hw_forecast(&s, 5, 3), 9.125, 1e-12);
    cr_assert_float_eq(tg_ex_hw_sse(y, 6, &p), 4.25, 1e-12);
    tg_ex_hw_free(&s);
    cr_assert_not(tg_ex_hw_run(y, 3, &p, &s), "fewer than two periods");
}

Test(forecast, holt_winters_forecasts_a_trend_and_season_exactly) {
    enum { N = 60, M = 4 };
    const double season[M] = {3, -1, -4, 2}; // sums to 0, as the initialisation assumes
    double y[N];
    for (int t = 0; t < N; t++) y[t] = 10 + 0.5 * t + season[t % M];
    tg_ex_hw_params p = {M, 0.3, 0.2, 0.4};
    tg_ex_hw_states s;
    cr_assert(tg_ex_hw_run(y, N, &p, &s));
    for (int t = M; t < N - 8; t += 5)
        for (int h = 1; h <= 8; h++)
            cr_assert_float_eq(tg_ex_hw_forecast(&s, t, h), y[t + h], 1e-9, "t %d h %d", t, h);
    tg_ex_hw_free(&s);
    tg_ex_hw_params fit;
    cr_assert(tg_ex_hw_fit(y, N, M, &fit));
    cr_assert_float_eq(tg_ex_hw_sse(y, N, &fit), 0, 1e-12);
}

Test(forecast, holt_winters_fit_is_no_worse_than_random_parameters) {
    enum { N = 240, M = 12 };
    double y[N];
    tg_rng rng;
    tg_rng_seed(&rng, 7);
    double level = 100, slope = 0.2;
    for (int t = 0; t < N; t++) { // a wandering trend, a yearly cycle, noise
        slope += 0.02 * (tg_rng_uniform(&rng) - 0.5);
        level += slope;
        y[t] = level + 5 * sin(2 * 3.14159265358979 * t / M) + 2 * (tg_rng_uniform(&rng) - 0.5);
    }
    tg_ex_hw_params fit;
    cr_assert(tg_ex_hw_fit(y, N, M, &fit));
    cr_assert(fit.alpha >= 0 && fit.alpha <= 1 && fit.beta >= 0 && fit.beta <= 1 && fit.gamma >= 0 && fit.gamma <= 1);
    double best = tg_ex_hw_sse(y, N, &fit);
    for (int i = 0; i < 500; i++) {
        tg_ex_hw_params p = {M, tg_rng_uniform(&rng), tg_rng_uniform(&rng), tg_rng_uniform(&rng)};
        double sse = tg_ex_hw_sse(y, N, &p);
        cr_assert_geq(sse, best, "alpha %g beta %g gamma %g: %g below the fit's %g", p.alpha, p.beta, p.gamma, sse,
                      best);
    }
    cr_assert_not(tg_ex_hw_fit(y, 2 * M, M, &fit), "fewer than three periods");
}
