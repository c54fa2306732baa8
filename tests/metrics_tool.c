/* Test helper: reads "score label" lines from a file and prints every metric as JSON, so that
 * test_metrics_sklearn.py can compare them with scikit-learn and the ASVspoof reference. */
#include <stdio.h>
#include <stdlib.h>

#include "adfd/metrics.h"
#include "adfd/util.h"

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: metrics_tool SCORES THRESHOLD\n");
        return 2;
    }
    FILE *fp = fopen(argv[1], "r");
    if (!fp) return perror(argv[1]), 1;
    int cap = 1024, n = 0;
    float *s = mallocCheck(sizeof(float) * cap);
    int *y = mallocCheck(sizeof(int) * cap);
    float score;
    int label;
    while (fscanf(fp, "%f %d", &score, &label) == 2) {
        if (n == cap) {
            cap *= 2;
            s = realloc(s, sizeof(float) * cap);
            y = realloc(y, sizeof(int) * cap);
        }
        s[n] = score, y[n] = label, n++;
    }
    fclose(fp);
    double threshold = atof(argv[2]), auc, youden, *fpr, *tpr, *th;
    eer_point e;
    int m;
    if (metrics_auc(s, y, n, &auc) || metrics_eer(s, y, n, &e) ||
        metrics_youden_threshold(s, y, n, &youden) ||
        metrics_roc_curve(s, y, n, &fpr, &tpr, &th, &m)) {
        fprintf(stderr, "metrics_tool: %s\n", adfd_error());
        return 1;
    }
    confusion_counts cm;
    metrics_confusion(s, y, n, threshold, &cm);
    printf("{\"auc\": %.17g, \"eer\": %.17g, \"asv_threshold\": %.9g, \"threshold\": %.17g,\n", auc,
           e.eer, e.asv_threshold, e.threshold);
    printf(" \"youden\": %.9g, \"tp\": %ld, \"fn\": %ld, \"fp\": %ld, \"tn\": %ld,\n", youden,
           (long)cm.tp, (long)cm.fn, (long)cm.fp, (long)cm.tn);
    printf(" \"accuracy\": %.17g, \"sensitivity\": %.17g, \"specificity\": %.17g, \"ppv\": %.17g, "
           "\"npv\": %.17g,\n",
           cm.accuracy, cm.sensitivity, cm.specificity, cm.ppv, cm.npv);
    printf(" \"fpr\": [");
    for (int i = 0; i < m; i++)
        printf("%s%.17g", i ? ", " : "", fpr[i]);
    printf("], \"tpr\": [");
    for (int i = 0; i < m; i++)
        printf("%s%.17g", i ? ", " : "", tpr[i]);
    printf("], \"thresholds\": [");
    for (int i = 1; i < m; i++)
        printf("%s%.9g", i > 1 ? ", " : "", th[i]);
    printf("]}\n");
    free(s), free(y), free(fpr), free(tpr), free(th);
    return 0;
}
