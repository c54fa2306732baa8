/* report: what evaluation and grid search show a user — metrics.json, the plain-text table, and
 * PNG plots drawn by gnuplot (Debian gnuplot-nox) from the data files and scripts written here
 * (kept next to the PNGs, so a plot can be restyled by editing its .gp file and rerunning it).
 *
 * metrics.json schema (format_version 1):
 *   { "format_version": 1, "split": "holdout", "model": PATH, "features": PATH,
 *     "threshold": T, "threshold_method": "...", "aggregate": "rms",
 *     "clip":  LEVEL,  "chunk": LEVEL }
 *   LEVEL = { "n", "n_spoof", "n_bonafide", "auc", "auc_ci95": [lo, hi], "eer",
 *             "eer_ci95": [lo, hi], "eer_threshold", "threshold", "accuracy", "sensitivity",
 *             "specificity", "ppv", "npv", "confusion": {"tp", "fn", "fp", "tn"},
 *             "bootstrap": {"replicates", "seed"} }
 *   Spoof is the positive class; a ratio with a zero denominator is null. */
#ifndef ADFD_REPORT_H
#define ADFD_REPORT_H

#include <stdio.h>

#include "adfd/metrics.h"
#include "adfd/train.h"

typedef struct {
    const char *split, *model_path, *features_path;
    double threshold;
    const char *threshold_method, *aggregate;
    metrics_summary clip, chunk;
} eval_metrics;

int report_write_metrics_json(const char *path, const eval_metrics *m);
void report_print_table(FILE *out, const eval_metrics *m);

/* One epoch of one grid configuration (config = its index in the grid). */
typedef struct {
    int config;
    epoch_result r;
} grid_epoch_row;

/* Runs `gnuplot [-e DEFINE] SCRIPT` in folder DIR (NULL: the current folder) and waits for it.
 * -1 + message when gnuplot is missing or fails. Every PNG of adfd is drawn through it. */
int report_run_gnuplot(const char *dir, const char *define, const char *script);

/* Each plot writes DIR/NAME.dat, DIR/NAME.gp and DIR/NAME.png (the PNG under a temporary name,
 * renamed when gnuplot succeeded). -1 + message when gnuplot is missing or fails. */
/* ROC curves at clip and chunk level, with the decision point of each at `threshold`. */
int report_plot_roc(const char *dir, const float *clip_scores, const int *clip_labels, int n_clips,
                    const float *chunk_scores, const int *chunk_labels, int n_chunks,
                    double threshold, const char *title);
int report_plot_confusion(const char *dir, const char *name, const confusion_counts *cm,
                          const char *title);
/* Clip score histograms of the two classes and the threshold. */
int report_plot_score_histograms(const char *dir, const float *scores, const int *labels, int n,
                                 double threshold, const char *title);
/* Test loss against epoch for every configuration, the best one highlighted. */
int report_plot_learning_curves(const char *dir, const grid_epoch_row *rows, int n_rows,
                                int best_config);

#endif
