// forecasting.c: the classical baselines a forecaster has to beat, computed the textbook way
// (Hyndman and Athanasopoulos, Forecasting: Principles and Practice, 3rd ed., 8.3 and 5.8),
// and the scores forecasting competitions use (MASE and sMAPE, as in M4).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tg_example.h"

// --- Holt-Winters, additive trend and season ---

// The recursions over y[0..n). The first two seasons initialise them: trend = the mean
// change per step from the first season's mean to the second's; the first season's mean is
// the level at its middle, so the level at its end is that plus (m - 1) / 2 steps of trend,
// and each season term is y minus the trend line through that middle.
// Then for t >= m: one_step = l[t-1] + b[t-1] + s[t-m], and
//   l[t] = alpha (y[t] - s[t-m]) + (1 - alpha) (l[t-1] + b[t-1])
//   b[t] = beta (l[t] - l[t-1]) + (1 - beta) b[t-1]
//   s[t] = gamma (y[t] - l[t]) + (1 - gamma) s[t-m]
// With states NULL only the sum of squared one-step errors is computed, in a ring of the last
// season (season_ring [m]).
static double hw_recursion(const double *y, int n, const tg_ex_hw_params *p, tg_ex_hw_states *st,
                           double *season_ring) {
    int m = p->period;
    double first = 0, second = 0;
    for (int i = 0; i < m; i++) first += y[i] / m, second += y[m + i] / m;
    double trend = (second - first) / m, level = first + trend * (m - 1) / 2, sse = 0;
    for (int i = 0; i < m; i++) {
        season_ring[i] = y[i] - (first + trend * (i - (m - 1) / 2.0));
        if (st) st->level[i] = NAN, st->trend[i] = NAN, st->season[i] = season_ring[i], st->one_step[i] = NAN;
    }
    if (st) st->level[m - 1] = level, st->trend[m - 1] = trend;
    for (int t = m; t < n; t++) {
        double *s = &season_ring[t % m]; // holds s[t-m] until overwritten with s[t]
        double forecast = level + trend + *s, prev_level = level;
        sse += (y[t] - forecast) * (y[t] - forecast);
        level = p->alpha * (y[t] - *s) + (1 - p->alpha) * (level + trend);
        trend = p->beta * (level - prev_level) + (1 - p->beta) * trend;
        *s = p->gamma * (y[t] - level) + (1 - p->gamma) * *s;
        if (st) st->level[t] = level, st->trend[t] = trend, st->season[t] = *s, st->one_step[t] = forecast;
    }
    return sse;
}

bool tg_ex_hw_run(const double *y, int n, const tg_ex_hw_params *p, tg_ex_hw_states *st) {
    memset(st, 0, sizeof *st);
    if (p->period < 1 || n < 2 * p->period) return false;
    double *all = malloc(sizeof *all * (4 * (size_t)n + (size_t)p->period));
    if (!all) return false;
    *st = (tg_ex_hw_states){all, all + n, all + 2 * (size_t)n, all + 3 * (size_t)n, n, p->period};
    hw_recursion(y, n, p, st, all + 4 * (size_t)n);
    return true;
}

void tg_ex_hw_free(tg_ex_hw_states *st) {
    free(st->level);
    memset(st, 0, sizeof *st);
}

double tg_ex_hw_forecast(const tg_ex_hw_states *st, int t, int h) {
    int m = st->period;
    return st->level[t] + h * st->trend[t] + st->season[t - m + 1 + (h - 1) % m];
}

double tg_ex_hw_sse(const double *y, int n, const tg_ex_hw_params *p) {
    if (p->period < 1 || n < 2 * p->period) return NAN;
    double *ring = malloc(sizeof *ring * (size_t)p->period);
    if (!ring) return NAN;
    double sse = hw_recursion(y, n, p, NULL, ring);
    free(ring);
    return sse;
}

static double clamp01(double x) { return x < 0 ? 0 : x > 1 ? 1 : x; }

bool tg_ex_hw_fit(const double *y, int n, int period, tg_ex_hw_params *best) {
    if (period < 1 || n < 3 * period) return false;
    // A coarse grid finds the basin (the error surface has several), then a pattern search
    // refines it: deterministic, and no derivative of the recursions is needed.
    static const double grid[] = {0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99};
    enum { G = sizeof grid / sizeof grid[0] };
    double best_sse = INFINITY;
    for (int a = 0; a < G; a++)
        for (int b = 0; b < G; b++)
            for (int c = 0; c < G; c++) {
                tg_ex_hw_params p = {period, grid[a], grid[b], grid[c]};
                double sse = tg_ex_hw_sse(y, n, &p);
                if (sse < best_sse) best_sse = sse, *best = p;
            }
    for (double step = 0.05; step > 1e-4;) {
        bool moved = false;
        for (int k = 0; k < 6; k++) {
            tg_ex_hw_params p = *best;
            double *x = k / 2 == 0 ? &p.alpha : k / 2 == 1 ? &p.beta : &p.gamma;
            *x = clamp01(*x + (k % 2 ? -step : step));
            double sse = tg_ex_hw_sse(y, n, &p);
            if (sse < best_sse) best_sse = sse, *best = p, moved = true;
        }
        if (!moved) step /= 2;
    }
    return isfinite(best_sse);
}

// --- Seasonal naive and the scores ---

double tg_ex_seasonal_naive(const double *y, int t, int h, int period) {
    return y[t + h - period * ((h - 1) / period + 1)];
}

double tg_ex_mase_scale(const double *y, int n, int period) {
    double sum = 0;
    for (int t = period; t < n; t++) sum += fabs(y[t] - y[t - period]);
    return n > period ? sum / (n - period) : NAN;
}

double tg_ex_smape_term(double forecast, double truth) {
    double denominator = fabs(forecast) + fabs(truth);
    return denominator > 0 ? 200 * fabs(forecast - truth) / denominator : 0;
}
