/* curve_file.h — a training run's loss curve and its open logging window, kept beside each checkpoint
 * (<checkpoint>.curve), so a run resumed from a checkpoint reports the same curve as an uninterrupted one.
 * Written atomically (atomic_file.h) just before the checkpoint itself; a file from a newer save than the
 * checkpoint (a kill between the two renames) keeps its points up to the checkpoint's step and drops the window. */
#ifndef CIRCD_TRAIN_CURVE_FILE_H
#define CIRCD_TRAIN_CURVE_FILE_H

#include "train/trainer.h"

/* The steps since the last curve point: their summed loss and count, as of `step`. */
struct curve_window {
    int64_t step;
    double loss_sum;
    int loss_count;
};

int train_curve_add(struct train_curve *c, int64_t step, float loss, float lr);
int curve_file_save(const char *path, const struct train_curve *c, const struct curve_window *w);
/* Appends the stored points with step <= checkpoint_step to c and restores the window when it was saved at
 * checkpoint_step (else zeroes it). A missing file is not an error (c and w stay empty); a malformed one is
 * CIRCD_EINPUT naming the file. */
int curve_file_load(const char *path, struct train_curve *c, struct curve_window *w, int64_t checkpoint_step);

#endif
