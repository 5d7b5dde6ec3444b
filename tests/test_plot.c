// test_plot.c: the examples' SVG pictures (examples/common/plot.c): round-number ticks, line
// charts (a chart that cannot be drawn says why and leaves no file), attention heatmaps.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tg_plot.h"
#include "tg_test.h"

// A name in /tmp for a picture, with no file there yet (path ends in XXXXXX; mkstemp fills it in).
static void unused_path(char *path) {
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    unlink(path);
}

// --- Line charts ---

Test(plot, ticks_are_round_numbers_covering_the_range) {
    double t[16], step;
    int n = tg_plot_ticks(0.13, 0.87, 5, t, 16, &step);
    cr_assert_float_eq(step, 0.2, 1e-12);
    cr_assert_eq(n, 6);
    for (int i = 0; i < n; i++) cr_assert_float_eq(t[i], 0.2 * i, 1e-12, "tick %d = %g", i, t[i]);
    n = tg_plot_ticks(2014.25, 2020.25, 8, t, 16, &step);
    cr_assert(step == 1 && n == 8 && t[0] == 2014 && t[7] == 2021, "step %g n %d first %g", step, n, t[0]);
    n = tg_plot_ticks(-84, 28, 8, t, 16, &step);
    cr_assert(step == 20 && t[0] == -100 && t[n - 1] == 40, "step %g from %g to %g", step, t[0], t[n - 1]);
    n = tg_plot_ticks(5, 5, 5, t, 16, &step); // a flat range still gets an axis
    cr_assert(n >= 2 && t[0] <= 5 && t[n - 1] >= 5);
}

Test(plot, a_plot_is_drawn_or_says_why_not) {
    char path[] = "/tmp/tg_forecast_plot_XXXXXX";
    unused_path(path);
    const double x[] = {1, 2, 3}, y[] = {5, NAN, 7}, one[] = {NAN, 4, NAN};
    tg_plot_line lines[] = {{"a <b>", x, y, 3, NULL, false}, {"c", x, one, 3, "#123456", true}};
    tg_plot_panel single = {"only one point", "x", "y", &lines[1], 1};
    tg_ex_error err;
    cr_assert_not(tg_plot_write_svg(path, &single, 1, &err));
    cr_assert(strstr(err.msg, "not drawn") && strstr(err.msg, "only one point"), "%s", err.msg);
    struct stat st;
    cr_assert_neq(stat(path, &st), 0, "a plot that was not drawn left a file");
    tg_plot_panel both = {"t", "x", "y", lines, 2};
    cr_assert(tg_plot_write_svg(path, &both, 1, &err), "%s", err.msg);
    FILE *f = fopen(path, "r");
    char svg[8192] = "";
    size_t got = fread(svg, 1, sizeof svg - 1, f);
    fclose(f);
    unlink(path);
    svg[got] = 0;
    cr_assert(strstr(svg, "a &lt;b&gt;") && strstr(svg, "stroke=\"#123456\"") && strstr(svg, "</svg>\n"), "%s", svg);
    int polylines = 0; // the NaN breaks the first line into two one-point pieces; the second has one
    for (const char *at = svg; (at = strstr(at, "<polyline")); at++) polylines++;
    cr_assert_eq(polylines, 3);
}

// --- Heatmaps ---

static char *svg_of(const double *w, int rows, int cols, const char *const *rl, const char *const *cl) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert(tg_plot_heatmap_svg(f, w, rows, cols, rl, cl));
    fclose(f);
    return buf;
}

static int count(const char *s, const char *what) {
    int n = 0;
    for (const char *at = s; (at = strstr(at, what)); at += strlen(what)) n++;
    return n;
}

Test(plot, heatmap_has_labels_and_one_rect_per_cell) {
    const double w[2 * 3] = {1, 0, 0, 0.25, 0.75, 0};
    const char *src[] = {"7", "&x", "<pad>"}, *tgt[] = {"7", "</s>"};
    char *svg = svg_of(w, 2, 3, tgt, src);
    cr_assert(strncmp(svg, "<?xml", 5) == 0 && strstr(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\""));
    cr_assert(strstr(svg, "</svg>\n") && strstr(svg, "</svg>\n")[7] == 0, "the document does not end with </svg>");
    cr_assert_eq(count(svg, "<rect "), 6);
    cr_assert_eq(count(svg, "</rect>"), 6);
    cr_assert_eq(count(svg, "<text "), 5);
    cr_assert_eq(count(svg, "</text>"), 5);
    cr_assert(strstr(svg, ">&amp;x</text>") && strstr(svg, ">&lt;pad&gt;</text>") && strstr(svg, ">&lt;/s&gt;</text>"),
              "labels missing or not escaped:\n%s", svg);
    cr_assert_null(strstr(svg, "<pad>"));
    cr_assert(strstr(svg, "fill=\"rgb(8,48,107)\"><title>1.0000"), "weight 1 is not the darkest cell");
    cr_assert(strstr(svg, "fill=\"rgb(255,255,255)\"><title>0.0000"), "weight 0 is not white");
    free(svg);
    svg = svg_of(w, 2, 3, NULL, NULL); // indices for labels
    cr_assert(strstr(svg, ">2</text>") && count(svg, "<rect ") == 6);
    free(svg);
}

// --- Training curves ---

// A curve grows past its first allocation, is drawn as two panels once it has two points, and
// says why not before.
Test(plot, a_training_curve_grows_and_is_drawn) {
    char path[] = "/tmp/tg_curve_plot_XXXXXX";
    unused_path(path);
    tg_plot_curve c = {0};
    tg_ex_error err;
    cr_assert(tg_plot_curve_add(&c, 100, 2.5, 0.9));
    cr_assert_not(tg_plot_curve_write(path, &c, "loss", "dev error", &err));
    cr_assert(strstr(err.msg, "not drawn"), "%s", err.msg);
    for (int i = 2; i <= 200; i++) cr_assert(tg_plot_curve_add(&c, 100.0 * i, 2.5 / i, 0.9 / i));
    cr_assert_eq(c.n, 200);
    cr_assert(c.step[199] == 20000 && c.loss[199] == 2.5 / 200 && c.dev[0] == 0.9);
    cr_assert(tg_plot_curve_write(path, &c, "loss", "dev error", &err), "%s", err.msg);
    FILE *f = fopen(path, "r");
    char svg[65536] = "";
    size_t got = fread(svg, 1, sizeof svg - 1, f);
    fclose(f);
    unlink(path);
    svg[got] = 0;
    cr_assert(strstr(svg, ">loss<") && strstr(svg, ">dev error<") && count(svg, "<polyline") == 2, "%.400s", svg);
    tg_plot_curve_free(&c);
    cr_assert(c.n == 0 && c.cap == 0 && !c.step);
}
