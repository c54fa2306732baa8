/* Metrics on two small examples computed by hand (derivations in the comments). */
#include <stdlib.h>

#include "adfd/metrics.h"
#include "check.h"

/* Example A (ties): spoof 0.9 0.8 0.4 0.4, bona fide 0.7 0.4 0.2 0.1 (P = N = 4). */
static void example_with_ties(void) {
    const float s[8] = {0.9f, 0.8f, 0.4f, 0.4f, 0.7f, 0.4f, 0.2f, 0.1f};
    const int y[8] = {1, 1, 1, 1, 0, 0, 0, 0};
    /* AUC = pairs spoof > bona fide (+1/2 per tie) / 16:
     * 0.9 beats 4, 0.8 beats 4, each 0.4 beats 0.2 and 0.1 and ties 0.4 -> 2.5; 13/16. */
    double auc;
    CHECK(metrics_auc(s, y, 8, &auc) == 0, "auc");
    CHECK_CLOSE(auc, 0.8125, 0, 1e-12);
    /* ASVspoof order (ascending, spoof first on ties): .1b .2b .4s .4s .4b .7b .8s .9s.
     * k:   0    1    2    3    4    5    6    7    8
     * FRR: 0    0    0    .25  .5   .5   .5   .75  1
     * FAR: 1    .75  .5   .5   .5   .25  0    0    0
     * |d|: 1    .75  .5   .25  0    .25  .5   .75  1   -> k = 4, EER = .5, threshold 0.4 */
    eer_point e;
    CHECK(metrics_eer(s, y, 8, &e) == 0, "eer");
    CHECK_CLOSE(e.eer, 0.5, 0, 1e-12);
    CHECK_CLOSE(e.asv_threshold, 0.4f, 0, 0);
    CHECK_CLOSE(e.threshold, 0.4f, 0, 1e-7); /* a tie straddles the point: midway is 0.4 */
    /* ROC, thresholds descending: inf (0,0); .9 (0,.25); .8 (0,.5); .7 (.25,.5);
     * .4 (.5,1); .2 (.75,1); .1 (1,1). */
    double *fpr, *tpr, *th;
    int m;
    CHECK(metrics_roc_curve(s, y, 8, &fpr, &tpr, &th, &m) == 0, "roc");
    const double want_fpr[7] = {0, 0, 0, .25, .5, .75, 1}, want_tpr[7] = {0, .25, .5, .5, 1, 1, 1};
    const float want_th[7] = {0, .9f, .8f, .7f, .4f, .2f, .1f};
    CHECK(m == 7, "points %d", m);
    for (int i = 0; i < 7 && m == 7; i++) {
        CHECK_CLOSE(fpr[i], want_fpr[i], 0, 1e-12);
        CHECK_CLOSE(tpr[i], want_tpr[i], 0, 1e-12);
        if (i > 0) CHECK_CLOSE(th[i], want_th[i], 0, 0);
    }
    CHECK(isinf(th[0]), "first threshold is +inf");
    free(fpr), free(tpr), free(th);
    /* Youden J = TPR - FPR along the curve: 0 .25 .5 .25 .5 .25 0 -> first max at 0.8. */
    double youden;
    CHECK(metrics_youden_threshold(s, y, 8, &youden) == 0, "youden");
    CHECK_CLOSE(youden, 0.8f, 0, 0);
    /* At 0.5: spoof .9 .8 called spoof (tp 2), .4 .4 missed (fn 2); bona fide .7 called spoof
     * (fp 1), .4 .2 .1 right (tn 3). acc 5/8, sens 2/4, spec 3/4, PPV 2/3, NPV 3/5. */
    confusion_counts cm;
    metrics_confusion(s, y, 8, 0.5, &cm);
    CHECK(cm.tp == 2 && cm.fn == 2 && cm.fp == 1 && cm.tn == 3, "cm %ld %ld %ld %ld", (long)cm.tp,
          (long)cm.fn, (long)cm.fp, (long)cm.tn);
    CHECK_CLOSE(cm.accuracy, 0.625, 0, 1e-12);
    CHECK_CLOSE(cm.sensitivity, 0.5, 0, 1e-12);
    CHECK_CLOSE(cm.specificity, 0.75, 0, 1e-12);
    CHECK_CLOSE(cm.ppv, 2.0 / 3.0, 0, 1e-12);
    CHECK_CLOSE(cm.npv, 0.6, 0, 1e-12);
    /* Threshold exactly 0.7 (a bona fide score): score >= threshold is spoof, so still fp 1. */
    metrics_confusion(s, y, 8, 0.7f, &cm);
    CHECK(cm.tp == 2 && cm.fp == 1 && cm.tn == 3, "a score equal to the threshold is spoof");
    /* Threshold 0.95: nothing called spoof, PPV undefined. */
    metrics_confusion(s, y, 8, 0.95, &cm);
    CHECK(cm.tp == 0 && cm.fp == 0 && isnan(cm.ppv), "nothing called spoof");
}

/* Example B (no ties): spoof .9 .6 .3, bona fide .5 .2 .1. Sorted: .1b .2b .3s .5b .6s .9s;
 * FRR 0 0 0 1/3 1/3 2/3 1, FAR 1 2/3 1/3 1/3 0 0 0 -> k = 3, EER = 1/3, reference threshold
 * .3, ours midway (.3+.5)/2 = .4; at .4: tp 2 (.9 .6), fn 1, fp 1 (.5), tn 2: the same point. */
static void example_without_ties(void) {
    const float s[6] = {0.9f, 0.6f, 0.3f, 0.5f, 0.2f, 0.1f};
    const int y[6] = {1, 1, 1, 0, 0, 0};
    eer_point e;
    CHECK(metrics_eer(s, y, 6, &e) == 0, "eer");
    CHECK_CLOSE(e.eer, 1.0 / 3.0, 0, 1e-12);
    CHECK_CLOSE(e.asv_threshold, 0.3f, 0, 0);
    CHECK_CLOSE(e.threshold, 0.4, 0, 1e-7);
    confusion_counts cm;
    metrics_confusion(s, y, 6, e.threshold, &cm);
    CHECK(cm.tp == 2 && cm.fn == 1 && cm.fp == 1 && cm.tn == 2, "cm at the EER threshold");
    /* AUC: .9 beats all 3, .6 beats .5 .2 .1 (3), .3 beats .2 .1 (2): (3 + 3 + 2) / 9. */
    double auc;
    CHECK(metrics_auc(s, y, 6, &auc) == 0, "auc");
    CHECK_CLOSE(auc, 8.0 / 9.0, 0, 1e-12);
}

static void bootstrap_properties(void) {
    enum { N = 400 };
    float s[N];
    int y[N];
    for (int i = 0; i < N; i++) { /* overlapping classes: AUC well inside (0.5, 1) */
        y[i] = i % 3 == 0;
        s[i] = (float)((i * 7919 % 1000) / 1000.0 * 0.7 + 0.3 * y[i]);
    }
    metrics_summary a, b, c;
    CHECK(metrics_summarize(s, y, N, 0.5, 500, 7, &a) == 0, "summary");
    CHECK(metrics_summarize(s, y, N, 0.5, 500, 7, &b) == 0, "summary again");
    CHECK(metrics_summarize(s, y, N, 0.5, 500, 8, &c) == 0, "another seed");
    CHECK(a.auc_lo == b.auc_lo && a.auc_hi == b.auc_hi && a.eer_lo == b.eer_lo, "deterministic");
    CHECK(a.auc_lo != c.auc_lo || a.auc_hi != c.auc_hi, "the seed matters");
    CHECK(a.auc_lo < a.auc && a.auc < a.auc_hi, "AUC %g in [%g, %g]", a.auc, a.auc_lo, a.auc_hi);
    CHECK(a.eer_lo < a.eer && a.eer < a.eer_hi, "EER %g in [%g, %g]", a.eer, a.eer_lo, a.eer_hi);
    CHECK(a.auc_hi - a.auc_lo < 0.2, "interval width %g", a.auc_hi - a.auc_lo);
    int one_class[3] = {1, 1, 1};
    double auc;
    CHECK(metrics_auc(s, one_class, 3, &auc) == -1, "one class is an error");
}

int main(void) {
    example_with_ties();
    example_without_ties();
    bootstrap_properties();
    return check_exit_status("test_metrics");
}
