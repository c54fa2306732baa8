/* Test helper: writes metrics.json, the table and every plot for the hand-worked example of
 * test_metrics.c into DIR; test_report.py checks them. */
#include <stdio.h>

#include "adfd/report.h"
#include "adfd/util.h"

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    const char *dir = argv[1];
    const float s[8] = {0.9f, 0.8f, 0.4f, 0.4f, 0.7f, 0.4f, 0.2f, 0.1f};
    const int y[8] = {1, 1, 1, 1, 0, 0, 0, 0};
    eval_metrics m = {.split = "holdout",
                      .model_path = "m\"odel.h5",
                      .features_path = "features.h5",
                      .threshold = 0.5,
                      .threshold_method = "eer on test split",
                      .aggregate = "rms"};
    grid_epoch_row rows[6] = {
        {0, {.epoch = 1, .test_loss = 0.7}},  {0, {.epoch = 2, .test_loss = 0.6}},
        {1, {.epoch = 1, .test_loss = 0.69}}, {1, {.epoch = 2, .test_loss = 0.4}},
        {1, {.epoch = 3, .test_loss = 0.3}},  {2, {.epoch = 1, .test_loss = 0.5}}};
    if (make_dirs(dir) || metrics_summarize(s, y, 8, 0.5, 200, 1, &m.clip) ||
        metrics_summarize(s, y, 8, 0.5, 200, 1, &m.chunk) ||
        report_write_metrics_json(ADFD_SOURCE_DIR "/../nonexistent-dir/x/metrics.json", &m) == 0) {
        fprintf(stderr, "report_tool: setup failed (%s)\n", adfd_error());
        return 1;
    }
    char path[4200];
    path_join(path, sizeof path, dir, "metrics.json");
    if (report_write_metrics_json(path, &m) ||
        report_plot_roc(dir, s, y, 8, s, y, 8, m.threshold, "holdout split") ||
        report_plot_confusion(dir, "confusion", &m.clip.cm, "clips") ||
        report_plot_score_histograms(dir, s, y, 8, m.threshold, "clip scores") ||
        report_plot_learning_curves(dir, rows, 6, 1)) {
        fprintf(stderr, "report_tool: %s\n", adfd_error());
        return 1;
    }
    report_print_table(stdout, &m);
    return 0;
}
