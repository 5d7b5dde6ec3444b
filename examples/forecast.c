// forecast: a recurrent forecaster of real time series, scored the way forecasters score.
//
// Two series: monthly CO2 at Mauna Loa (1958-2020, a trend and a yearly cycle; 12 months
// ahead) and daily US births (1969-1988, weekly and yearly cycles and holidays; 28 days
// ahead). The model is a hybrid in the spirit of Smyl's ES-RNN, the M4 winner: Holt-Winters
// (additive trend and season, fitted on the training part) normalises the series, level and
// season, and a GRU encoder reads a window of the normalised series with calendar features
// (position in the year, and in the week for births); its decoder, given last year's errors
// at the same calendar points, emits the whole horizon as corrections to Holt-Winters'
// forecast, in units of the seasonal naive error of the training part (each horizon scaled
// by its typical size). Five such models are trained side by side and averaged, and training
// stops when the held-out end of the training part stops improving.
//
// Evaluation: rolling origin over the last years (10 for CO2, 2 for births), one origin a
// step, nothing refitted after the split date (Holt-Winters' states follow the data, its
// parameters stay). MASE (scaled by the in-sample seasonal naive error) and sMAPE of the
// model and of the two baselines, seasonal naive and Holt-Winters, overall and by horizon.
// The last origin's forecasts are drawn with the history and the truth as an SVG.
//
//   build/examples/forecast --series co2 --minutes 2
//   build/examples/forecast --series births --data data/full --minutes 3 --save births.safetensors
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tg_example.h"
#include "tg_plot.h"

#ifndef TG_DATA_DIR
#define TG_DATA_DIR "data"
#endif

enum { N_BUCKETS = 3, EVAL_BATCH = 256 };
static const double PI = 3.14159265358979323846;

// What a checkpoint's config records: the model's shape and the series it was trained on.
typedef struct {
    char series[16]; // "co2" or "births"
    int window, hidden, members;
} sizes;

// --- The problem: a series, its split, the Holt-Winters that normalises it -----------------

typedef struct {
    tg_ex_series s;
    int split;         // y[0..split) is the training part; origins from split - 1 on are scored
    int dev_start;     // y[dev_start..split): the training part's end, held out to stop training
    int horizon;       // H: steps forecast at each origin
    int period;        // m: the season of Holt-Winters and of seasonal naive (12 months, 7 days)
    int year_lag;      // P: steps back to the same calendar point a year earlier (12, 364)
    int window;        // W: steps the encoder reads
    int n_features;    // F: per window step
    double scale;      // MASE's scale: in-sample seasonal naive error on the training part
    tg_ex_hw_params hw;
    tg_ex_hw_states hw_states; // run through the whole series with the training part's parameters
    double *target_rms;        // [H] Holt-Winters' scaled error h steps ahead, root mean square over training
} problem;

// The first step after the split date: the last `years` years are the test part.
static int split_index(const tg_ex_series *s, int years) {
    int y, m, d;
    tg_ex_series_date(s, s->n - 1, &y, &m, &d);
    if (s->freq == TG_EX_MONTHLY) return s->n - 12 * years;
    return tg_ex_series_index(s, y - years, m, d) + 1;
}

// The first origin whose window and last-year context lie where Holt-Winters has errors.
static int first_origin(const problem *p) {
    int need = p->window > p->year_lag ? p->window : p->year_lag;
    return need + p->period - 1;
}

// Each horizon's target is divided by its typical size, so that the loss weighs the first
// steps ahead (small errors) as much as the last (large ones).
static bool measure_targets(problem *p) {
    int H = p->horizon, n = 0;
    p->target_rms = calloc((size_t)H, sizeof *p->target_rms);
    if (!p->target_rms) return false;
    for (int t = first_origin(p); t + H < p->dev_start; t++, n++)
        for (int h = 1; h <= H; h++) {
            double e = (p->s.y[t + h] - tg_ex_hw_forecast(&p->hw_states, t, h)) / p->scale;
            p->target_rms[h - 1] += e * e;
        }
    for (int h = 0; h < H; h++) p->target_rms[h] = n ? sqrt(p->target_rms[h] / n) : 1;
    return n > 0;
}

static bool problem_init(problem *p, const char *data_dir, const char *name, int window, int test_years) {
    tg_ex_error err;
    if (!tg_ex_series_load(data_dir, name, &p->s, &err)) return fprintf(stderr, "forecast: %s\n", err.msg), false;
    bool monthly = p->s.freq == TG_EX_MONTHLY;
    p->horizon = monthly ? 12 : 28;
    p->period = monthly ? 12 : 7;
    p->year_lag = monthly ? 12 : 364; // 52 weeks: the same weekday a year earlier
    p->window = window;
    p->n_features = monthly ? 4 : 6;
    p->split = split_index(&p->s, test_years);
    p->dev_start = p->split - (monthly ? 60 : 365); // 5 years of months, a year of days
    int min_train =
        (window > p->year_lag ? window : p->year_lag) + p->period + p->horizon + 64 + p->split - p->dev_start;
    if (p->split < min_train || p->split >= p->s.n - 1)
        return fprintf(stderr, "forecast: %s has %d steps: too few for %d test years and %d training steps\n", name,
                       p->s.n, test_years, min_train),
               false;
    p->scale = tg_ex_mase_scale(p->s.y, p->split, p->period);
    if (!tg_ex_hw_fit(p->s.y, p->split, p->period, &p->hw) || !tg_ex_hw_run(p->s.y, p->s.n, &p->hw, &p->hw_states))
        return fprintf(stderr, "forecast: Holt-Winters could not be fitted on %s\n", name), false;
    return measure_targets(p);
}

static void problem_free(problem *p) {
    tg_ex_series_free(&p->s);
    tg_ex_hw_free(&p->hw_states);
    free(p->target_rms);
}

// Holt-Winters' one-step error at i, in units of the scale (0 where it has none).
static double scaled_error(const problem *p, int i) {
    double f = p->hw_states.one_step[i];
    return isnan(f) ? 0 : (p->s.y[i] - f) / p->scale;
}

// The position of step i in the year and in the week, as angles.
static void calendar(const problem *p, int i, double *year_angle, double *week_angle) {
    int y, m, d;
    tg_ex_series_date(&p->s, i, &y, &m, &d);
    int64_t days = tg_ex_days_from_civil(y, m, d);
    double day_of_year = (double)(days - tg_ex_days_from_civil(y, 1, 1));
    *year_angle = 2 * PI * (p->s.freq == TG_EX_MONTHLY ? (m - 1) / 12.0 : day_of_year / 365.25);
    *week_angle = 2 * PI * tg_ex_weekday(days) / 7.0;
}

// The model's inputs at origin t, for batch entry b of B: the window x [W, B, F] (the
// normalised series relative to the current level, Holt-Winters' errors, the calendar) and
// the context [B, H] (Holt-Winters' errors a year before each target). With target non-NULL
// also the target [B, H]: the scaled error of Holt-Winters' forecast, what the model learns.
static void make_example(const problem *p, int t, int b, int B, float *x, float *context, float *target) {
    const tg_ex_hw_states *hw = &p->hw_states;
    int W = p->window, F = p->n_features, H = p->horizon;
    for (int k = 0; k < W; k++) {
        int i = t - W + 1 + k;
        float *f = x + ((size_t)k * B + b) * F; // [F]
        double year, week;
        calendar(p, i, &year, &week);
        f[0] = (float)((p->s.y[i] - hw->season[i] - hw->level[t]) / (4 * p->scale));
        f[1] = (float)scaled_error(p, i);
        f[2] = (float)sin(year), f[3] = (float)cos(year);
        if (F > 4) f[4] = (float)sin(week), f[5] = (float)cos(week);
    }
    for (int h = 1; h <= H; h++) {
        context[b * H + h - 1] = (float)scaled_error(p, t + h - p->year_lag);
        if (target)
            target[b * H + h - 1] =
                (float)((p->s.y[t + h] - tg_ex_hw_forecast(hw, t, h)) / (p->scale * p->target_rms[h - 1]));
    }
}

// --- The model: an ensemble of GRU encoders with decoders emitting the whole horizon -------

enum { MAX_MEMBERS = 16 };

// One member: a GRU encoder, then a two-layer decoder from its state and the context.
typedef struct {
    tg_rnn encoder;     // F -> hidden
    tg_tensor *w1, *b1; // [hidden, hidden + H], [hidden]
    tg_tensor *w2, *b2; // [H, hidden], [H]
} member;

// Members differ only in their initialisation and all see the same batches; the forecast is
// their mean, which is steadier than any one of them (ES-RNN averaged its models too).
typedef struct {
    tg_params *params; // every member's, named member<k>.encoder..., member<k>.decoder...
    member members[MAX_MEMBERS];
    int n_members;
} model;

static bool member_init(member *mb, tg_params *params, int k, const problem *p, int hidden, tg_rng *rng) {
    char prefix[32], name[64];
    snprintf(prefix, sizeof prefix, "member%d.encoder.", k);
    tg_rnn_config cfg = {.cell = &tg_cell_gru, .input_size = p->n_features, .hidden_size = hidden, .num_layers = 1};
    if (!tg_rnn_init(&mb->encoder, &cfg, params, prefix, rng)) return false;
    int H = p->horizon;
    tg_tensor **slot[] = {&mb->w1, &mb->b1, &mb->w2, &mb->b2};
    const char *suffix[] = {"0.weight", "0.bias", "2.weight", "2.bias"};
    tg_shape shape[] = {tg_shape2(hidden, hidden + H), tg_shape1(hidden), tg_shape2(H, hidden), tg_shape1(H)};
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "member%d.decoder.%s", k, suffix[i]);
        if (!(*slot[i] = tg_params_add(params, name, TG_F32, shape[i]))) return false;
    }
    double k1 = 1 / sqrt(hidden + H), k2 = 1 / sqrt(hidden);
    tg_tensor_fill_uniform(mb->w1, rng, -k1, k1);
    tg_tensor_fill_uniform(mb->b1, rng, -k1, k1);
    // A tenth of PyTorch's range: the untrained model's corrections are small, so training
    // starts from Holt-Winters' forecast rather than from noise around it.
    tg_tensor_fill_uniform(mb->w2, rng, -k2 / 10, k2 / 10);
    tg_tensor_fill_uniform(mb->b2, rng, -k2 / 10, k2 / 10);
    return true;
}

static bool model_init(model *m, const problem *p, int n_members, int hidden, tg_rng *rng) {
    m->params = tg_params_new();
    m->n_members = n_members;
    for (int k = 0; k < n_members; k++)
        if (!member_init(&m->members[k], m->params, k, p, hidden, rng)) return false;
    return true;
}

// Member k's scaled corrections [B, H] for windows xs [W, B, F] and contexts [B, H].
static tg_tensor *member_forward(tg_graph *g, const member *mb, int B, tg_tensor *xs, tg_tensor *context) {
    tg_rnn_result r;
    if (!tg_rnn_forward(g, &mb->encoder, xs, NULL, NULL, NULL, &r)) return NULL;
    tg_tensor *parts[] = {tg_reshape(g, r.state[0], tg_shape2(B, -1)), context};   // [B, hidden], [B, H]
    tg_tensor *hidden = tg_tanh(g, tg_linear(g, tg_concat(g, 2, parts, 1), mb->w1, mb->b1)); // [B, hidden]
    return tg_linear(g, hidden, mb->w2, mb->b2);                                             // [B, H]
}

// The ensemble's corrections [B, H], the mean of its members'; each member's into
// outs[n_members] when outs is not NULL (training gives each its own loss).
static tg_tensor *model_forward(tg_graph *g, const model *m, const problem *p, int B, const float *x,
                                const float *context, tg_tensor **outs) {
    tg_tensor *xs = tg_from_data(g, TG_F32, tg_shape3(p->window, B, p->n_features), x); // [W, B, F]
    tg_tensor *ctx = tg_from_data(g, TG_F32, tg_shape2(B, p->horizon), context);         // [B, H]
    tg_tensor *each[MAX_MEMBERS];
    for (int k = 0; k < m->n_members; k++) {
        each[k] = member_forward(g, &m->members[k], B, xs, ctx);
        if (outs) outs[k] = each[k];
    }
    return tg_mean_axis(g, tg_stack(g, m->n_members, each, 0), 0, false); // [B, H]
}

// --- Evaluation: rolling origin over the test part -----------------------------------------

typedef struct {
    double abs_err[N_BUCKETS], smape[N_BUCKETS]; // sums over scored forecasts
    int64_t count[N_BUCKETS];
} scores;

enum { MODEL, HOLT_WINTERS, SEASONAL_NAIVE, N_METHODS };
static const char *const METHOD_NAME[N_METHODS] = {"model", "Holt-Winters", "seasonal naive"};

// Horizon buckets: the first quarter of the horizon, the second, the second half.
static int bucket_of(int h, int H) { return h <= H / 4 ? 0 : h <= H / 2 ? 1 : 2; }

static void score(scores *s, int h, int H, double forecast, double truth) {
    int k = bucket_of(h, H);
    s->abs_err[k] += fabs(forecast - truth);
    s->smape[k] += tg_ex_smape_term(forecast, truth);
    s->count[k]++;
}

static double mase_of(const scores *s, const problem *p, int bucket) { // bucket -1: all
    double sum = 0;
    int64_t n = 0;
    for (int k = 0; k < N_BUCKETS; k++)
        if (bucket < 0 || k == bucket) sum += s->abs_err[k], n += s->count[k];
    return n ? sum / (double)n / p->scale : NAN;
}

static double smape_of(const scores *s) {
    double sum = 0;
    int64_t n = 0;
    for (int k = 0; k < N_BUCKETS; k++) sum += s->smape[k], n += s->count[k];
    return n ? sum / (double)n : NAN;
}

// The model's forecasts y[t + 1 .. t + H] for origins t0 .. t0 + B - 1, into out [B, H].
static void model_forecasts(tg_graph *g, const model *m, const problem *p, int t0, int B, float *x, float *context,
                            double *out) {
    for (int b = 0; b < B; b++) make_example(p, t0 + b, b, B, x, context, NULL);
    tg_graph_reset(g);
    tg_tensor *corr = model_forward(g, m, p, B, x, context, NULL); // [B, H]
    for (int b = 0; b < B; b++)
        for (int h = 1; h <= p->horizon; h++)
            out[b * p->horizon + h - 1] =
                tg_ex_hw_forecast(&p->hw_states, t0 + b, h) +
                p->scale * p->target_rms[h - 1] * tg_tensor_get(corr, b * p->horizon + h - 1);
}

// Scores origins [from, to) against the truth they can see before `end` (interpolated values
// are not truth, and are skipped). Recording off.
static void evaluate(tg_graph *g, const model *m, const problem *p, int from, int to, int end, scores *s) {
    int H = p->horizon, W = p->window, F = p->n_features;
    float *x = malloc(sizeof *x * (size_t)W * EVAL_BATCH * F), *context = malloc(sizeof *context * EVAL_BATCH * H);
    double *f = malloc(sizeof *f * EVAL_BATCH * H); // [EVAL_BATCH, H]
    memset(s, 0, sizeof *s * N_METHODS);
    tg_graph_set_grad_enabled(g, false);
    for (int t0 = from; t0 < to; t0 += EVAL_BATCH) {
        int B = to - t0 < EVAL_BATCH ? to - t0 : EVAL_BATCH;
        model_forecasts(g, m, p, t0, B, x, context, f);
        for (int b = 0; b < B; b++)
            for (int t = t0 + b, h = 1; h <= H && t + h < end; h++) {
                if (p->s.filled[t + h]) continue;
                double truth = p->s.y[t + h];
                score(&s[MODEL], h, H, f[b * H + h - 1], truth);
                score(&s[HOLT_WINTERS], h, H, tg_ex_hw_forecast(&p->hw_states, t, h), truth);
                score(&s[SEASONAL_NAIVE], h, H, tg_ex_seasonal_naive(p->s.y, t, h, p->period), truth);
            }
    }
    tg_graph_set_grad_enabled(g, true);
    free(x), free(context), free(f);
}

// The test: every origin from the last training step on, against the rest of the series.
static void evaluate_test(tg_graph *g, const model *m, const problem *p, scores *s) {
    evaluate(g, m, p, p->split - 1, p->s.n - 1, p->s.n, s);
}

// The held-out end of the training part, the same way.
static void evaluate_dev(tg_graph *g, const model *m, const problem *p, scores *s) {
    evaluate(g, m, p, p->dev_start - 1, p->split - 1, p->split, s);
}

static void print_scores(const scores *s, const problem *p) {
    int H = p->horizon;
    printf("%-16s %8s  MASE h 1-%d  h %d-%d  h %d-%d  sMAPE %%\n", "", "MASE", H / 4, H / 4 + 1, H / 2, H / 2 + 1, H);
    for (int k = 0; k < N_METHODS; k++)
        printf("%-16s %8.4f  %10.4f  %6.4f  %7.4f  %7.3f\n", METHOD_NAME[k], mase_of(&s[k], p, -1),
               mase_of(&s[k], p, 0), mase_of(&s[k], p, 1), mase_of(&s[k], p, 2), smape_of(&s[k]));
}

// --- The picture: history, truth and the forecasts of the last full origin ----------------

// x coordinates: years (monthly) or days from the origin (daily).
static double plot_x(const problem *p, int i, int origin) {
    if (p->s.freq == TG_EX_DAILY) return i - origin;
    int y, m, d;
    tg_ex_series_date(&p->s, i, &y, &m, &d);
    return y + (m - 1) / 12.0;
}

static void write_plot(tg_graph *g, const model *m, const problem *p, const char *name, const char *path) {
    int H = p->horizon, t = p->s.n - 1 - H, back = p->s.freq == TG_EX_MONTHLY ? 60 : 84, n = back + 1 + H;
    float *x = malloc(sizeof *x * (size_t)p->window * p->n_features), *context = malloc(sizeof *context * H);
    double *xs = malloc(sizeof *xs * (size_t)n * 5), *y[4] = {xs + n, xs + 2 * n, xs + 3 * n, xs + 4 * n};
    double *model_f = malloc(sizeof *model_f * H);
    tg_graph_set_grad_enabled(g, false);
    model_forecasts(g, m, p, t, 1, x, context, model_f);
    tg_graph_set_grad_enabled(g, true);
    for (int k = 0; k < n; k++) { // y[0] history and truth; y[1..3] forecasts from the origin on
        int i = t - back + k, h = i - t;
        xs[k] = plot_x(p, i, t);
        y[0][k] = p->s.y[i];
        y[1][k] = h < 0 ? NAN : h == 0 ? p->s.y[t] : model_f[h - 1];
        y[2][k] = h < 0 ? NAN : h == 0 ? p->s.y[t] : tg_ex_hw_forecast(&p->hw_states, t, h);
        y[3][k] = h < 0 ? NAN : h == 0 ? p->s.y[t] : tg_ex_seasonal_naive(p->s.y, t, h, p->period);
    }
    int year, month, day;
    tg_ex_series_date(&p->s, t, &year, &month, &day);
    char title[128], x_label[96];
    snprintf(title, sizeof title, "%s: forecasts made at %04d-%02d-%02d, the last origin", name, year, month, day);
    snprintf(x_label, sizeof x_label, "%s", p->s.freq == TG_EX_DAILY ? "days from the origin" : "year");
    tg_plot_line lines[] = {{"history and truth", xs, y[0], n, "#444", false},
                            {"model", xs, y[1], n, "#d62728", false},
                            {"Holt-Winters", xs, y[2], n, "#1f77b4", true},
                            {"seasonal naive", xs, y[3], n, "#2ca02c", true}};
    tg_plot_panel panel = {title, x_label, p->s.freq == TG_EX_DAILY ? "births a day" : "CO2, ppm", lines, 4};
    tg_ex_error err;
    if (tg_plot_write_svg(path, &panel, 1, &err)) printf("forecasts of the last origin drawn in %s\n", path);
    else fprintf(stderr, "forecast: %s\n", err.msg);
    free(x), free(context), free(xs), free(model_f);
}

// --- Checkpoints: the config as JSON ------------------------------------------------------

static char *config_json(const sizes *z) {
    json_t *o = json_pack("{s:s, s:s, s:i, s:i, s:i}", "model", "forecast", "series", z->series, "window",
                          z->window, "hidden", z->hidden, "members", z->members);
    char *text = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(o);
    return text;
}

// Before the model exists: its sizes from the checkpoint. A weights-only file has no config:
// the sizes given on the command line must then match it.
static bool load_config(const char *path, sizes *z, bool *has_state) {
    char *config;
    if (!tg_ex_checkpoint_config("forecast", path, &config, has_state, NULL, NULL, 0)) return false;
    if (!config) return true;
    json_error_t jerr;
    json_t *o = json_loads(config, 0, &jerr);
    const char *kind = NULL, *series = NULL;
    bool ok = o &&
              json_unpack(o, "{s:s, s:s, s:i, s:i, s:i}", "model", &kind, "series", &series, "window", &z->window,
                          "hidden", &z->hidden, "members", &z->members) == 0 &&
              !strcmp(kind, "forecast") && z->window > 0 && z->hidden > 0 && z->members > 0 &&
              z->members <= MAX_MEMBERS;
    if (ok && strcmp(series, z->series))
        ok = false, fprintf(stderr, "forecast: %s was trained on %s, not on --series %s\n", path, series, z->series);
    else if (!ok)
        fprintf(stderr, "forecast: %s was not written by forecast (its config is %s)\n", path, config);
    json_decref(o);
    free(config);
    return ok;
}

// --- Training -------------------------------------------------------------------------

typedef struct {
    int B;
    float *x, *context, *target; // [W, B, F], [B, H], [B, H]
    int *origins, n_origins;     // the training origins, in this epoch's order
} trainer;

static bool trainer_init(trainer *tr, const problem *p, int B) {
    tr->B = B;
    tr->n_origins = p->dev_start - 1 - p->horizon - first_origin(p) + 1; // targets before the held-out part
    tr->x = malloc(sizeof *tr->x * (size_t)p->window * B * p->n_features);
    tr->context = malloc(sizeof *tr->context * (size_t)B * p->horizon);
    tr->target = malloc(sizeof *tr->target * (size_t)B * p->horizon);
    tr->origins = malloc(sizeof *tr->origins * (size_t)(tr->n_origins > 0 ? tr->n_origins : 1));
    return tr->x && tr->context && tr->target && tr->origins && tr->n_origins >= B;
}

static void trainer_free(trainer *tr) { free(tr->x), free(tr->context), free(tr->target), free(tr->origins); }

// One optimizer step on origins[at .. at + B); returns the loss.
static double train_step(tg_graph *g, model *m, const problem *p, trainer *tr, int at, tg_optim *opt, double clip) {
    for (int b = 0; b < tr->B; b++) make_example(p, tr->origins[at + b], b, tr->B, tr->x, tr->context, tr->target);
    tg_graph_reset(g);
    tg_tensor *each[MAX_MEMBERS];
    model_forward(g, m, p, tr->B, tr->x, tr->context, each); // [B, H] each
    tg_tensor *target = tg_from_data(g, TG_F32, tg_shape2(tr->B, p->horizon), tr->target);
    tg_tensor *loss = NULL; // the members' mean loss: each learns alone, as if trained apart
    for (int k = 0; k < m->n_members; k++) {
        tg_tensor *member_loss = tg_mse_loss(g, each[k], target, TG_REDUCE_MEAN);
        loss = loss ? tg_add(g, loss, member_loss) : member_loss;
    }
    loss = tg_mul_scalar(g, loss, 1.0 / m->n_members);
    tg_optim_zero_grad(opt);
    tg_backward(g, loss);
    tg_clip_grad_norm(m->params, clip);
    tg_optim_step(opt);
    return tg_tensor_get(loss, 0);
}

static bool save(tg_ex_saver *saver, const model *m, const tg_optim *opt, const tg_rng *rng, int64_t step,
                 const sizes *z) {
    char *config = config_json(z);
    bool ok = config && tg_ex_saver_save(saver, m->params, opt, rng, step, config);
    free(config);
    return ok;
}

typedef struct {
    int64_t step, start_step;
    double first_loss, last_loss, best_dev; // best_dev: the lowest dev MASE, NaN before any
    float *best;                            // [numel] the parameters that scored it
} progress_state;

// Copies every parameter into or out of buf [numel], in the collection's order.
static void snapshot(tg_params *params, float *buf, bool restore) {
    for (int i = 0; i < tg_params_count(params); i++) {
        tg_tensor *t = tg_params_at(params, i);
        if (restore) memcpy(t->data, buf, sizeof *buf * (size_t)t->numel);
        else memcpy(buf, t->data, sizeof *buf * (size_t)t->numel);
        buf += t->numel;
    }
}

// After a round: scores the held-out part and keeps the parameters when they are the best.
// Returns true when they are.
static bool keep_if_best(tg_graph *g, model *m, const problem *p, progress_state *ps) {
    scores s[N_METHODS];
    evaluate_dev(g, m, p, s);
    double dev = mase_of(&s[MODEL], p, -1);
    bool best = isnan(ps->best_dev) || dev < ps->best_dev;
    if (best) ps->best_dev = dev, snapshot(m->params, ps->best, false);
    printf("step %lld: dev MASE %.4f (Holt-Winters %.4f)%s\n", (long long)ps->step, dev,
           mase_of(&s[HOLT_WINTERS], p, -1), best ? ", the best so far: kept" : "");
    return best;
}

// The training order from step on: origins shuffled by a generator seeded from (seed,
// epoch), so that a resumed run sees the batches a whole one would have.
static void epoch_order(trainer *tr, const problem *p, uint64_t seed, int64_t epoch) {
    tg_rng order_rng;
    tg_rng_seed(&order_rng, seed * 1000003u + (uint64_t)epoch);
    for (int i = 0; i < tr->n_origins; i++) tr->origins[i] = first_origin(p) + i;
    tg_ex_shuffle(tr->origins, tr->n_origins, &order_rng);
}

typedef struct {
    double clip;
    int patience;    // rounds without a better dev score before training stops
    int round_steps; // steps between dev evaluations (rounded up to whole epochs)
    uint64_t max_steps; // stop after this many steps (0: no limit)
} train_opts;

static bool steps_done(const train_opts *o, const progress_state *ps) {
    return o->max_steps && (uint64_t)ps->step >= o->max_steps;
}

// Trains in rounds of whole epochs until the budget is spent or the dev score has not
// improved for `patience` rounds, saving when due; ends with the best parameters restored.
static void train(tg_graph *g, model *m, const problem *p, trainer *tr, tg_optim *opt, const tg_rng *rng,
                  const train_opts *o, const tg_ex_common *common, tg_ex_saver *saver, const sizes *z,
                  progress_state *ps) {
    int64_t n_batches = tr->n_origins / tr->B;
    int64_t per_round = ((o->round_steps + n_batches - 1) / n_batches) * n_batches;
    tg_ex_budget budget;
    tg_ex_budget_start(&budget, common->minutes);
    for (int stale = 0; tg_ex_budget_left(&budget) && stale < o->patience && !steps_done(o, ps);) {
        int64_t k = ps->step % per_round;
        char label[48];
        snprintf(label, sizeof label, "round %lld", (long long)(ps->step / per_round) + 1);
        tg_ex_progress bar;
        tg_ex_progress_begin(&bar, stdout, label, per_round - k, "origins");
        bar.budget = &budget;
        for (; k < per_round && tg_ex_budget_left(&budget) && !steps_done(o, ps); k++, ps->step++) {
            if (ps->step == ps->start_step || ps->step % n_batches == 0)
                epoch_order(tr, p, common->seed, ps->step / n_batches);
            if (tg_ex_saver_due(saver)) save(saver, m, opt, rng, ps->step, z); // a failure is reported; on we go
            double loss = train_step(g, m, p, tr, (int)(ps->step % n_batches * tr->B), opt, o->clip);
            if (ps->step == ps->start_step) ps->first_loss = loss;
            tg_ex_progress_step(&bar, loss, tr->B);
        }
        tg_ex_progress_end(&bar);
        ps->last_loss = tg_ex_progress_loss(&bar);
        if (k == per_round) stale = keep_if_best(g, m, p, ps) ? 0 : stale + 1;
    }
    if (!isnan(ps->best_dev)) snapshot(m->params, ps->best, true);
}

// Scores the model and the baselines, draws the last origin, prints the RESULT line.
static void report(tg_graph *g, const model *m, const problem *p, const sizes *z, const char *svg,
                   const progress_state *ps, double seconds) {
    scores s[N_METHODS];
    evaluate_test(g, m, p, s);
    int y, mo, d;
    tg_ex_series_date(&p->s, p->split, &y, &mo, &d);
    printf("rolling origin from %04d-%02d-%02d on, one origin a step, %d steps ahead (MASE scale %.4g):\n", y, mo, d,
           p->horizon, p->scale);
    print_scores(s, p);
    char path[256];
    if (!svg) snprintf(path, sizeof path, "forecast_%s.svg", z->series), svg = path;
    if (*svg) write_plot(g, m, p, z->series, svg);
    tg_ex_result(NULL,
                 "series=%s mase=%.4f mase_hw=%.4f mase_snaive=%.4f smape=%.4f smape_hw=%.4f smape_snaive=%.4f "
                 "dev_mase=%.4f first_loss=%.4f last_loss=%.4f steps=%lld seconds=%.0f",
                 z->series, mase_of(&s[MODEL], p, -1), mase_of(&s[HOLT_WINTERS], p, -1),
                 mase_of(&s[SEASONAL_NAIVE], p, -1), smape_of(&s[MODEL]), smape_of(&s[HOLT_WINTERS]),
                 smape_of(&s[SEASONAL_NAIVE]), ps->best_dev, ps->first_loss, ps->last_loss,
                 (long long)(ps->step - ps->start_step), seconds);
}

static void describe(const problem *p, const char *name, const model *m) {
    int y0, m0, d0, y1, m1, d1;
    tg_ex_series_date(&p->s, 0, &y0, &m0, &d0);
    tg_ex_series_date(&p->s, p->s.n - 1, &y1, &m1, &d1);
    printf("forecast: %s, %d %s from %04d-%02d-%02d to %04d-%02d-%02d (%d filled by linear interpolation); "
           "training part %d steps\n",
           name, p->s.n, p->s.freq == TG_EX_MONTHLY ? "months" : "days", y0, m0, d0, y1, m1, d1, p->s.n_filled,
           p->split);
    printf("Holt-Winters fitted on the training part: period %d, alpha %.4f, beta %.4f, gamma %.4f\n", p->period,
           p->hw.alpha, p->hw.beta, p->hw.gamma);
    int hidden = m->members[0].encoder.cfg.hidden_size;
    printf("model: the mean of %d x (window %d x %d features -> GRU %d -> [state, last year's errors] -> %d -> %d "
           "steps), %lld parameters; BLIS kernels %s\n",
           m->n_members, p->window, p->n_features, hidden, hidden, p->horizon, (long long)tg_params_numel(m->params),
           tg_blas_arch());
}

// What the command line sets beyond the common options and the sizes.
typedef struct {
    int batch, test_years;
    double lr, weight_decay;
    train_opts train;
    const char *svg;
} settings;

static int run(const tg_ex_common *common, sizes *z, const settings *set) {
    bool has_state = false, monthly = !strcmp(z->series, "co2");
    if (common->load && !load_config(common->load, z, &has_state)) return 1;
    if (!z->window) z->window = monthly ? 24 : 56;
    problem p = {0};
    int test_years = set->test_years ? set->test_years : monthly ? 10 : 2;
    if (!problem_init(&p, common->data, z->series, z->window, test_years)) return problem_free(&p), 1;
    tg_rng rng;
    tg_rng_seed(&rng, common->seed);
    model m;
    trainer tr = {0};
    if (!model_init(&m, &p, z->members, z->hidden, &rng)) return problem_free(&p), tg_params_free(m.params), 1;
    double wd = set->weight_decay ? set->weight_decay : TG_OPTIM_ZERO;
    tg_optim *opt = tg_optim_adamw(m.params, (tg_adam_opts){.lr = set->lr, .weight_decay = wd});
    progress_state ps = {0, 0, NAN, NAN, NAN, malloc(sizeof(float) * (size_t)tg_params_numel(m.params))};
    bool ok = ps.best && (!common->load || tg_ex_checkpoint_load("forecast", common->load, m.params, has_state, opt,
                                                                 &rng, &ps.step));
    if (ok && common->load) printf("loaded %s, %lld steps trained\n", common->load, (long long)ps.step);
    if (ok && !trainer_init(&tr, &p, set->batch))
        ok = false, fprintf(stderr, "forecast: %d training origins, fewer than a batch of %d\n", tr.n_origins,
                            set->batch);
    tg_graph *g = tg_graph_new();
    if (ok) {
        describe(&p, z->series, &m);
        tg_ex_saver saver = tg_ex_saver_make("forecast", common, NULL, NULL, 0);
        ps.start_step = ps.step;
        double start = tg_ex_now();
        train(g, &m, &p, &tr, opt, &rng, &set->train, common, &saver, z, &ps);
        ok = save(&saver, &m, opt, &rng, ps.step, z);
        report(g, &m, &p, z, set->svg, &ps, tg_ex_now() - start);
    }
    free(ps.best);
    trainer_free(&tr);
    tg_graph_free(g);
    tg_optim_free(opt);
    tg_params_free(m.params);
    problem_free(&p);
    return ok ? 0 : 1;
}

int main(int argc, char **argv) {
    tg_ex_common common = tg_ex_common_defaults(TG_DATA_DIR, 1);
    sizes z = {"co2", 0, 32, 5};
    settings set = {32, 0, 1e-3, 1e-4, {1.0, 10, 50, 0}, NULL};
    const char *series = "co2";
    const tg_ex_option options[] = {
        {"series", TG_EX_STRING, &series, "co2 (monthly, 12 months ahead) or births (daily, 28 days ahead)", 0, 0,
         "NAME"},
        {"window", TG_EX_INT, &z.window, "steps the encoder reads (0: 24 months or 56 days)", 0, 4096, "W"},
        {"hidden", TG_EX_INT, &z.hidden, "GRU hidden units", 1, 4096, "H"},
        {"members", TG_EX_INT, &z.members, "models in the ensemble, trained side by side", 1, MAX_MEMBERS, "K"},
        {"test-years", TG_EX_INT, &set.test_years, "years at the end scored by rolling origin (0: 10 or 2)", 0, 50,
         "Y"},
        {"batch", TG_EX_INT, &set.batch, "origins per batch", 1, 4096, "B"},
        {"lr", TG_EX_DOUBLE, &set.lr, "AdamW learning rate", 1e-6, 1, "R"},
        {"weight-decay", TG_EX_DOUBLE, &set.weight_decay, "AdamW weight decay", 0, 1, "D"},
        {"clip", TG_EX_DOUBLE, &set.train.clip, "clip the gradient norm at this", 1e-3, 1e3, "X"},
        {"round", TG_EX_INT, &set.train.round_steps, "steps between dev evaluations (whole epochs)", 1, 1000000, "N"},
        {"patience", TG_EX_INT, &set.train.patience, "stop after this many rounds without a better dev MASE", 1,
         1000000, "N"},
        {"steps", TG_EX_U64, &set.train.max_steps, "stop after this many steps, whatever the time (0: no limit)", 0, 0,
         "N"},
        {"svg", TG_EX_STRING, &set.svg,
         "picture of the last origin's forecasts (default forecast_NAME.svg; \"\": none)", 0, 0, "FILE"},
    };
    tg_ex_cli cli = {"forecast",
                     "a Holt-Winters + GRU forecaster of monthly CO2 or daily US births, against seasonal naive and "
                     "Holt-Winters",
                     &common, options, TG_EX_LEN(options), NULL, NULL};
    tg_ex_parse_result parsed = tg_ex_parse(&cli, argc, argv);
    if (parsed != TG_EX_PARSE_OK) return parsed == TG_EX_PARSE_HELP ? 0 : 2;
    if (strcmp(series, "co2") && strcmp(series, "births"))
        return fprintf(stderr, "forecast: --series is co2 or births, not %s\n", series), 2;
    snprintf(z.series, sizeof z.series, "%s", series);
    tg_set_num_threads(common.threads);
    return run(&common, &z, &set);
}
