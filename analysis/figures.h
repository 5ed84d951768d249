/* figures.h — circd-report's figures (SVG) from results.h5: AtP heatmaps (layer × head |AtP|, MLP as an extra
 * column), accuracy by digit count per row, faithfulness curves with CPR / CMD, training curves, and the attention
 * patterns of the top circuit heads when the file has /attention. Each figure is written atomically into the
 * report directory and listed in a `struct figure_list` for the index; a figure whose data are absent is skipped. */
#ifndef CIRCD_ANALYSIS_FIGURES_H
#define CIRCD_ANALYSIS_FIGURES_H

#include "io/results.h"
#include "spec/spec.h"

#define FIGURE_MAX 64

struct figure_list {
    int n;
    char file[FIGURE_MAX][64];      /* name inside the report directory */
    char caption[FIGURE_MAX][160];
};

/* Writes every figure the file has data for into dir. Errors (CIRCD_EINPUT naming the dataset when a dataset has
 * an unexpected shape, CIRCD_EIO when a file cannot be written) stop the report. */
int figures_write_all(struct results_file *r, const struct experiment_spec *spec, const char *dir,
                      struct figure_list *list);

#endif
