// plot.c: line charts and heatmaps as SVG (tg_plot.h). Sizes are in pixels.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tg_plot.h"

enum { PLOT_W = 640, PLOT_H = 220, LEFT = 72, RIGHT = 24, TOP = 34, BOTTOM = 50, MAX_TICKS = 16 };

static const char *const PALETTE[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"};

// Writes s with XML's five special characters escaped.
static void put_escaped(FILE *out, const char *s) {
    for (; *s; s++) switch (*s) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs("&quot;", out); break;
        case '\'': fputs("&apos;", out); break;
        default: fputc(*s, out);
        }
}

int tg_plot_ticks(double lo, double hi, int target, double *ticks, int max, double *step) {
    if (!(hi > lo)) hi = lo + 1; // a flat range still gets an axis
    double raw = (hi - lo) / (target > 1 ? target : 1), unit = pow(10, floor(log10(raw)));
    double s = raw / unit <= 1 ? unit : raw / unit <= 2 ? 2 * unit : raw / unit <= 5 ? 5 * unit : 10 * unit;
    double first = floor(lo / s + 1e-9) * s;
    int n = 0;
    for (double t = first; n < max; t = first + n * s) {
        ticks[n++] = fabs(t) < s * 1e-9 ? 0 : t; // no "-0"
        if (t >= hi - s * 1e-9) break;
    }
    *step = s;
    return n;
}

// The finite range of a panel's points; false when it has fewer than two.
static bool panel_range(const tg_plot_panel *p, double *x0, double *x1, double *y0, double *y1) {
    int points = 0;
    *x0 = *y0 = INFINITY, *x1 = *y1 = -INFINITY;
    for (int l = 0; l < p->n_lines; l++)
        for (int i = 0; i < p->lines[l].n; i++) {
            double x = p->lines[l].x[i], y = p->lines[l].y[i];
            if (!isfinite(x) || !isfinite(y)) continue;
            points++;
            *x0 = fmin(*x0, x), *x1 = fmax(*x1, x), *y0 = fmin(*y0, y), *y1 = fmax(*y1, y);
        }
    return points >= 2;
}

// Tick labels with as many decimals as the step needs.
static void put_number(FILE *f, double v, double step) {
    int decimals = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    fprintf(f, "%.*f", decimals > 6 ? 6 : decimals, v);
}

static void put_text(FILE *f, double x, double y, const char *anchor, const char *extra, const char *s) {
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\"%s>", x, y, anchor, extra);
    put_escaped(f, s);
    fputs("</text>\n", f);
}

// The axes, grid and tick labels of a panel whose plot area starts at (LEFT, oy); returns
// the rounded ranges the points are mapped into.
static void put_axes(FILE *f, const tg_plot_panel *p, double oy, double *x0, double *x1, double *y0, double *y1) {
    double xt[MAX_TICKS], yt[MAX_TICKS], xs, ys;
    int nx = tg_plot_ticks(*x0, *x1, 8, xt, MAX_TICKS, &xs), ny = tg_plot_ticks(*y0, *y1, 5, yt, MAX_TICKS, &ys);
    *x0 = xt[0], *x1 = xt[nx - 1], *y0 = yt[0], *y1 = yt[ny - 1];
    if (*x1 <= *x0) *x1 = *x0 + xs;
    if (*y1 <= *y0) *y1 = *y0 + ys;
    for (int i = 0; i < ny; i++) {
        double py = oy + PLOT_H - PLOT_H * (yt[i] - *y0) / (*y1 - *y0);
        fprintf(f, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", LEFT, LEFT + PLOT_W, py,
                py);
        fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">", LEFT - 6, py + 4);
        put_number(f, yt[i], ys);
        fputs("</text>\n", f);
    }
    for (int i = 0; i < nx; i++) {
        double px = LEFT + PLOT_W * (xt[i] - *x0) / (*x1 - *x0);
        fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>\n", px, px, oy,
                oy + PLOT_H);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", px, oy + PLOT_H + 16);
        put_number(f, xt[i], xs);
        fputs("</text>\n", f);
    }
    fprintf(f, "<rect x=\"%d\" y=\"%.1f\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#999\"/>\n", LEFT, oy,
            PLOT_W, PLOT_H);
    if (p->title) put_text(f, LEFT, oy - 12, "start", " font-weight=\"bold\"", p->title);
    if (p->x_label) put_text(f, LEFT + PLOT_W / 2.0, oy + PLOT_H + 34, "middle", "", p->x_label);
    if (p->y_label) {
        char rotate[96];
        snprintf(rotate, sizeof rotate, " transform=\"rotate(-90 %d %.1f)\"", 16, oy + PLOT_H / 2.0);
        put_text(f, 16, oy + PLOT_H / 2.0, "middle", rotate, p->y_label);
    }
}

static const char *color_of(const tg_plot_line *l, int index) {
    return l->color ? l->color : PALETTE[index % (int)(sizeof PALETTE / sizeof *PALETTE)];
}

static void put_legend_entry(FILE *f, const tg_plot_line *l, int index, double ly) {
    double lx = LEFT + 10;
    fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"%s/>\n", lx,
            lx + 22, ly - 4, ly - 4, color_of(l, index), l->dashed ? " stroke-dasharray=\"6 4\"" : "");
    put_text(f, lx + 28, ly, "start", "", l->label);
}

// A line as polylines, broken where y is not finite.
static void put_line(FILE *f, const tg_plot_line *l, int index, double oy, double x0, double x1, double y0,
                     double y1) {
    const char *color = color_of(l, index);
    const char *dash = l->dashed ? " stroke-dasharray=\"6 4\"" : "";
    bool open = false;
    for (int i = 0; i < l->n; i++) {
        if (!isfinite(l->x[i]) || !isfinite(l->y[i])) {
            if (open) fputs("\"/>\n", f), open = false;
            continue;
        }
        if (!open) {
            fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.8\"%s points=\"", color, dash);
            open = true;
        }
        fprintf(f, "%.1f,%.1f ", LEFT + PLOT_W * (l->x[i] - x0) / (x1 - x0),
                oy + PLOT_H - PLOT_H * (l->y[i] - y0) / (y1 - y0));
    }
    if (open) fputs("\"/>\n", f);
}

// The legend in the top left corner, on white so that lines under it do not hide it.
static void put_legend(FILE *f, const tg_plot_panel *p, double oy) {
    int entries = 0;
    for (int i = 0; i < p->n_lines; i++) entries += p->lines[i].label != NULL;
    if (!entries) return;
    fprintf(f, "<rect x=\"%d\" y=\"%.1f\" width=\"170\" height=\"%d\" fill=\"white\" fill-opacity=\"0.85\"/>\n",
            LEFT + 4, oy + 3, 16 * entries + 6);
    for (int i = 0, row = 0; i < p->n_lines; i++)
        if (p->lines[i].label) put_legend_entry(f, &p->lines[i], i, oy + 14 + 16 * row++);
}

bool tg_plot_write_svg(const char *path, const tg_plot_panel *panels, int n_panels, tg_ex_error *err) {
    double range[16][4];
    if (n_panels < 1 || n_panels > 16)
        return snprintf(err->msg, sizeof err->msg, "%s not drawn: %d panels (1 to 16 fit)", path, n_panels), false;
    for (int k = 0; k < n_panels; k++)
        if (!panel_range(&panels[k], &range[k][0], &range[k][1], &range[k][2], &range[k][3]))
            return snprintf(err->msg, sizeof err->msg, "%s not drawn: the panel \"%s\" has fewer than two points",
                            path, panels[k].title ? panels[k].title : "?"),
                   false;
    FILE *f = fopen(path, "w");
    if (!f) return snprintf(err->msg, sizeof err->msg, "cannot write %s", path), false;
    int height = n_panels * (TOP + PLOT_H + BOTTOM);
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" "
               "font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            LEFT + PLOT_W + RIGHT, height);
    for (int k = 0; k < n_panels; k++) {
        double oy = k * (TOP + PLOT_H + BOTTOM) + TOP, *r = range[k];
        put_axes(f, &panels[k], oy, &r[0], &r[1], &r[2], &r[3]);
        for (int l = 0; l < panels[k].n_lines; l++) put_line(f, &panels[k].lines[l], l, oy, r[0], r[1], r[2], r[3]);
        put_legend(f, &panels[k], oy);
    }
    fputs("</svg>\n", f);
    bool ok = !ferror(f);
    if (fclose(f) != 0 || !ok) return snprintf(err->msg, sizeof err->msg, "cannot write %s", path), false;
    return true;
}

// --- Training curves ---

// *a with room for cap points; false (*a as it was) when out of memory.
static bool grow(double **a, int cap) {
    double *grown = realloc(*a, sizeof(double) * (size_t)cap);
    if (grown) *a = grown;
    return grown != NULL;
}

bool tg_plot_curve_add(tg_plot_curve *c, double step, double loss, double dev) {
    if (c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 64;
        if (!grow(&c->step, cap) || !grow(&c->loss, cap) || !grow(&c->dev, cap)) return false; // cap unchanged
        c->cap = cap;
    }
    c->step[c->n] = step, c->loss[c->n] = loss, c->dev[c->n++] = dev;
    return true;
}

bool tg_plot_curve_write(const char *path, const tg_plot_curve *c, const char *loss_title, const char *dev_title,
                         tg_ex_error *err) {
    tg_plot_line loss = {NULL, c->step, c->loss, c->n, "#1f77b4", false};
    tg_plot_line dev = {NULL, c->step, c->dev, c->n, "#d62728", false};
    tg_plot_panel panels[] = {{loss_title, "step", NULL, &loss, 1}, {dev_title, "step", NULL, &dev, 1}};
    return tg_plot_write_svg(path, panels, 2, err);
}

void tg_plot_curve_free(tg_plot_curve *c) {
    free(c->step), free(c->loss), free(c->dev);
    *c = (tg_plot_curve){0};
}

// --- Heatmap ---

// A label, or its index when there are no labels.
static void put_label(FILE *out, const char *const *labels, int i) {
    if (labels && labels[i]) put_escaped(out, labels[i]);
    else fprintf(out, "%d", i);
}

bool tg_plot_heatmap_svg(FILE *out, const double *weights, int rows, int cols, const char *const *row_labels,
                         const char *const *col_labels) {
    if (!out || !weights || rows < 1 || cols < 1) return false;
    enum { CELL = 28, HM_LEFT = 90, HM_TOP = 90, HM_RIGHT = 70, HM_BOTTOM = 10 }; // slanted labels reach right
    int width = HM_LEFT + cols * CELL + HM_RIGHT, height = HM_TOP + rows * CELL + HM_BOTTOM;
    fprintf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                 "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                 "font-family=\"sans-serif\" font-size=\"12\">\n",
            width, height, width, height);
    for (int c = 0; c < cols; c++) { // source tokens along the top, slanted so long ones fit
        int x = HM_LEFT + c * CELL + CELL / 2, y = HM_TOP - 6;
        fprintf(out, "<text x=\"%d\" y=\"%d\" transform=\"rotate(-45 %d %d)\">", x, y, x, y);
        put_label(out, col_labels, c);
        fputs("</text>\n", out);
    }
    for (int r = 0; r < rows; r++) { // output tokens down the left
        fprintf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" dominant-baseline=\"middle\">", HM_LEFT - 6,
                HM_TOP + r * CELL + CELL / 2);
        put_label(out, row_labels, r);
        fputs("</text>\n", out);
    }
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            double w = weights[(size_t)r * (size_t)cols + (size_t)c];
            double t = w < 0 ? 0 : w > 1 ? 1 : isnan(w) ? 0 : w; // white (0) to dark blue (1)
            int red = (int)lround(255 - t * (255 - 8)), green = (int)lround(255 - t * (255 - 48));
            int blue = (int)lround(255 - t * (255 - 107));
            fprintf(out, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" stroke=\"#ddd\" "
                         "fill=\"rgb(%d,%d,%d)\"><title>%.4f</title></rect>\n",
                    HM_LEFT + c * CELL, HM_TOP + r * CELL, CELL, CELL, red, green, blue, w);
        }
    fputs("</svg>\n", out);
    return !ferror(out);
}
