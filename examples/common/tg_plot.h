// tg_plot.h: the examples' pictures, as small hand-written SVG files: line charts in stacked
// panels with round-number axis ticks (training curves, forecasts) and heatmaps (attention).
// Presentation only: nothing in the library draws.
//
// A picture that cannot be drawn (too few points, nothing finite) is not written, and the
// writer says why in err, for the example to print: a missing picture is never silent.
#ifndef TG_PLOT_H
#define TG_PLOT_H

#include <stdbool.h>
#include <stdio.h>

#include "tg_example.h"

// One line of a chart: points (x[i], y[i]); a NaN y leaves a gap.
typedef struct {
    const char *label; // in the legend; NULL: none. Escaped as XML.
    const double *x, *y; // [n] each
    int n;
    const char *color;   // an SVG colour ("#1f77b4"); NULL: one of a fixed palette by position
    bool dashed;
} tg_plot_line;

// One panel: axes with their own ranges, the lines drawn on them.
typedef struct {
    const char *title, *x_label, *y_label; // NULL: none
    const tg_plot_line *lines;             // [n_lines]
    int n_lines;
} tg_plot_panel;

// Writes the panels one above the other, each 640 x 220 pixels of plot, to path. False, with
// the reason in err and no file written, when a panel has fewer than two finite points or the
// file cannot be written.
bool tg_plot_write_svg(const char *path, const tg_plot_panel *panels, int n_panels, tg_ex_error *err);

// A training curve, a point per dev evaluation: by step, the mean training loss since the
// previous point and the dev score. Zero-initialised is empty.
typedef struct {
    double *step, *loss, *dev; // [n] each
    int n, cap;
} tg_plot_curve;

// Adds a point; false (the curve unchanged) when out of memory.
bool tg_plot_curve_add(tg_plot_curve *c, double step, double loss, double dev);
// Writes the curve as two panels over the steps, the loss above the dev score, each with its
// own y range (a loss and an error rate differ in scale). False as tg_plot_write_svg.
bool tg_plot_curve_write(const char *path, const tg_plot_curve *c, const char *loss_title, const char *dev_title,
                         tg_ex_error *err);
// Frees the points; the curve is empty again.
void tg_plot_curve_free(tg_plot_curve *c);

// Round ticks for an axis over [lo, hi]: multiples of a step of 1, 2 or 5 times a power of
// ten, about `target` of them, the first at or below lo and the last at or above hi. Writes
// at most max ticks and returns how many; *step receives the step.
int tg_plot_ticks(double lo, double hi, int target, double *ticks, int max, double *step);

// Writes an SVG heatmap of weights [rows, cols] (attention: a row per output token, a column
// per source token), labels XML-escaped (NULL: indices), each cell titled with its value.
// False on a write error or an empty matrix.
bool tg_plot_heatmap_svg(FILE *out, const double *weights, int rows, int cols, const char *const *row_labels,
                         const char *const *col_labels);

#endif
