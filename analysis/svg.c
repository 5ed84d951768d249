/* svg.c — the SVG writer of svg.h: panels with axes and ticks, polylines with a legend, heatmaps with a colour bar. */
#include "analysis/svg.h"

#include <math.h>
#include <stdio.h>

void svg_begin(FILE *out, int width, int height)
{
    fprintf(out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
            "font-family=\"sans-serif\">\n<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"white\"/>\n",
            width, height, width, height, width, height);
}

void svg_end(FILE *out) { fputs("</svg>\n", out); }

static void escaped(FILE *out, const char *text)
{
    for (const char *c = text; *c; c++) {
        switch (*c) {
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '&': fputs("&amp;", out); break;
        case '"': fputs("&quot;", out); break;
        default:
            /* control characters are not allowed in XML 1.0 text */
            if ((unsigned char)*c < 0x20 && *c != '\t') fputc(' ', out);
            else fputc(*c, out);
        }
    }
}

void svg_text(FILE *out, double x, double y, const char *anchor, int size, const char *text)
{
    fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" font-size=\"%d\">", x, y, anchor, size);
    escaped(out, text);
    fputs("</text>\n", out);
}

const char *svg_series_colour(int i)
{
    static const char *const palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                                          "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#000000", "#aec7e8"};
    int n = (int)(sizeof palette / sizeof palette[0]);
    return palette[((i % n) + n) % n];
}

static double map_x(const struct svg_panel *p, double x)
{
    double t = p->log_x ? (log10(x) - log10(p->x0)) / (log10(p->x1) - log10(p->x0)) : (x - p->x0) / (p->x1 - p->x0);
    return p->left + t * p->width;
}

static double map_y(const struct svg_panel *p, double y)
{
    return p->top + p->height - (y - p->y0) / (p->y1 - p->y0) * p->height;
}

/* A "nice" tick step (1, 2 or 5 times a power of ten) for about 5 ticks over span. */
static double tick_step(double span)
{
    double raw = span / 5, mag = pow(10, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
}

static void tick_x(struct svg_panel *p, double v)
{
    char label[32];
    double x = map_x(p, v), y = p->top + p->height;
    snprintf(label, sizeof label, "%g", v);
    fprintf(p->out, "<line class=\"tick\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n", x, y,
            x, y + 5);
    svg_text(p->out, x, y + 18, "middle", 11, label);
}

void svg_panel_begin(struct svg_panel *p, FILE *out, double left, double top, double width, double height,
                     double x0, double x1, double y0, double y1, int log_x, const char *title, const char *x_label,
                     const char *y_label)
{
    if (log_x && (!(x0 > 0) || !(x1 > 0))) log_x = 0;
    if (!(x1 > x0)) x1 = log_x ? x0 * 10 : x0 + 1;
    if (!(y1 > y0)) { y0 -= 0.5; y1 = y0 + 1; }
    *p = (struct svg_panel){out, left, top, width, height, x0, x1, y0, y1, log_x, 0};
    fprintf(out, "<g class=\"panel\">\n<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
                 "stroke=\"black\"/>\n", left, top, width, height);
    if (log_x) {
        for (double v = pow(10, ceil(log10(x0) - 1e-9)); v <= x1 * (1 + 1e-9); v *= 10) tick_x(p, v);
    } else {
        double step = tick_step(x1 - x0);
        for (double v = ceil(x0 / step) * step; v <= x1 + step * 1e-9; v += step) tick_x(p, fabs(v) < step * 1e-9 ? 0 : v);
    }
    double step = tick_step(y1 - y0);
    for (double v = ceil(y0 / step) * step; v <= y1 + step * 1e-9; v += step) {
        char label[32];
        double y = map_y(p, v);
        snprintf(label, sizeof label, "%g", fabs(v) < step * 1e-9 ? 0 : v);
        fprintf(out, "<line class=\"tick\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n", left - 5,
                y, left, y);
        svg_text(out, left - 8, y + 4, "end", 11, label);
    }
    svg_text(out, left + width / 2, top - 10, "middle", 14, title);
    svg_text(out, left + width / 2, top + height + 38, "middle", 12, x_label);
    fprintf(out, "<g transform=\"translate(%.1f %.1f) rotate(-90)\">\n", left - 48, top + height / 2);
    svg_text(out, 0, 0, "middle", 12, y_label);
    fputs("</g>\n</g>\n", out);
}

void svg_polyline(struct svg_panel *p, const double *x, const double *y, int n, const char *colour, int dashed,
                  const char *label)
{
    fprintf(p->out, "<polyline class=\"series\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"", colour,
            dashed ? " stroke-dasharray=\"6 4\"" : "");
    int first = 1;
    for (int i = 0; i < n; i++) {
        if (!isfinite(x[i]) || !isfinite(y[i]) || (p->log_x && !(x[i] > 0))) continue;
        fprintf(p->out, "%s%.1f,%.1f", first ? "" : " ", map_x(p, x[i]), map_y(p, y[i]));
        first = 0;
    }
    fputs("\"/>\n", p->out);
    if (!label) return;
    double ly = p->top + 14 + 16 * p->legend_entries++, lx = p->left + p->width + 12;
    fprintf(p->out, "<line class=\"legend\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                    "stroke-width=\"2\"%s/>\n", lx, ly - 4, lx + 24, ly - 4, colour,
            dashed ? " stroke-dasharray=\"6 4\"" : "");
    svg_text(p->out, lx + 30, ly, "start", 11, label);
}

/* White (t = 0) to dark red (t = 1). */
static void heat_colour(double t, char *buf, size_t cap)
{
    if (!isfinite(t)) { snprintf(buf, cap, "#cccccc"); return; }
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    int r = (int)lround(255 - t * (255 - 165)), g = (int)lround(255 * (1 - t)), b = (int)lround(255 * (1 - t));
    snprintf(buf, cap, "#%02x%02x%02x", r, g, b);
}

void svg_heatmap(FILE *out, double left, double top, double width, double height, const double *values, int rows,
                 int cols, double lo, double hi, const char *const *row_labels, const char *const *col_labels,
                 const char *title)
{
    char colour[16], label[32];
    double cw = width / (cols > 0 ? cols : 1), ch = height / (rows > 0 ? rows : 1), span = hi > lo ? hi - lo : 1;
    svg_text(out, left + width / 2, top - 10, "middle", 14, title);
    for (int r = 0; r < rows; r++) {
        for (int c = 0; c < cols; c++) {
            heat_colour((values[(size_t)r * cols + c] - lo) / span, colour, sizeof colour);
            fprintf(out, "<rect class=\"cell\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\" "
                         "stroke=\"white\"><title>%g</title></rect>\n", left + c * cw, top + r * ch, cw, ch, colour,
                    values[(size_t)r * cols + c]);
        }
        if (row_labels) svg_text(out, left - 6, top + (r + 0.5) * ch + 4, "end", 11, row_labels[r]);
    }
    for (int c = 0; c < cols && col_labels; c++) svg_text(out, left + (c + 0.5) * cw, top + height + 16, "middle", 11,
                                                          col_labels[c]);
    /* the colour bar: 20 steps from hi (top) to lo (bottom) */
    double bx = left + width + 20, bh = height / 20;
    for (int i = 0; i < 20; i++) {
        heat_colour(1 - (i + 0.5) / 20, colour, sizeof colour);
        fprintf(out, "<rect class=\"colorbar\" x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"%.2f\" fill=\"%s\"/>\n", bx,
                top + i * bh, bh + 0.5, colour);
    }
    snprintf(label, sizeof label, "%.3g", hi);
    svg_text(out, bx + 18, top + 10, "start", 11, label);
    snprintf(label, sizeof label, "%.3g", lo);
    svg_text(out, bx + 18, top + height, "start", 11, label);
}
