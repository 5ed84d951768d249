/* svg.h — a small SVG writer for circd-report's figures: a canvas, plot panels with linear or log10 axes (ticks,
 * tick labels, axis labels, title), polylines with a legend, and heatmaps (one <rect class="cell"> per value) with a
 * colour bar. Output goes to any stdio stream; text is XML-escaped. No state beyond the panel's scales. */
#ifndef CIRCD_ANALYSIS_SVG_H
#define CIRCD_ANALYSIS_SVG_H

#include <stdio.h>

/* A plot area: the data range [x0, x1] × [y0, y1] drawn into the pixel box (left, top, width, height). */
struct svg_panel {
    FILE *out;
    double left, top, width, height;
    double x0, x1, y0, y1;
    int log_x;              /* x on a log10 scale (x0, x1 > 0) */
    int legend_entries;     /* lines added to the legend so far */
};

/* The document: <svg ...> with a white background, and its closing tag. */
void svg_begin(FILE *out, int width, int height);
void svg_end(FILE *out);
/* Escaped text at (x, y); anchor "start" | "middle" | "end"; size in px. */
void svg_text(FILE *out, double x, double y, const char *anchor, int size, const char *text);
/* A colour for series i (a fixed qualitative palette, cycled). */
const char *svg_series_colour(int i);

/* Sets up the panel and draws its frame, axes, about 5 ticks with labels on each axis, the axis labels and a
 * title above. A degenerate range (x0 == x1) is widened so that nothing divides by zero. */
void svg_panel_begin(struct svg_panel *p, FILE *out, double left, double top, double width, double height,
                     double x0, double x1, double y0, double y1, int log_x, const char *title, const char *x_label,
                     const char *y_label);
/* A <polyline class="series"> through the n points (x[i], y[i]) (non-finite points are skipped), with a legend
 * entry `label` at the panel's top right; dashed when asked. */
void svg_polyline(struct svg_panel *p, const double *x, const double *y, int n, const char *colour, int dashed,
                  const char *label);

/* A heatmap of rows × cols values (row-major; NaN drawn grey) in the box (left, top, width, height): one
 * <rect class="cell"> each, coloured from white (lo) to dark red (hi), row labels on the left, column labels below,
 * and a vertical colour bar with lo / hi labels on the right. */
void svg_heatmap(FILE *out, double left, double top, double width, double height, const double *values, int rows,
                 int cols, double lo, double hi, const char *const *row_labels, const char *const *col_labels,
                 const char *title);

#endif
