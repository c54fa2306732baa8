/* metrics: binary detection metrics on scores (DESIGN.md section 7). Spoof is the positive class
 * (label 1), a score is P(spoof) and the decision rule is "score >= threshold -> spoof".
 *
 *  - ROC AUC: exact, ties count one half (the Mann-Whitney U statistic divided by P*N), equal to
 *    scikit-learn's roc_auc_score.
 *  - ROC curve: one point per distinct score, thresholds descending, starting at (0,0) like
 *    scikit-learn's roc_curve(drop_intermediate=False).
 *  - EER: exactly the ASVspoof 2019/2021 reference (compute_det_curve + compute_eer) with spoof
 *    as the "target" class: scores sorted ascending (stable, targets first on ties), cumulative
 *    FRR/FAR, EER = mean(FRR, FAR) at the first index minimising |FRR - FAR|.
 *  - bootstrap: stratified (spoof and bona fide resampled separately, so every replicate has
 *    both classes), deterministic from a seed, percentile 95 % interval. */
#ifndef ADFD_METRICS_H
#define ADFD_METRICS_H

#include <stdint.h>

typedef struct {
    double eer;
    /* The reference's threshold: the last score the DET point rejects (score <= it -> bona fide).
     */
    double asv_threshold;
    /* For our rule score >= threshold -> spoof: midway between the last rejected score and the
     * next one, so the rule reproduces the DET point whenever no tie straddles it. */
    double threshold;
} eer_point;

typedef struct {
    int64_t tp, fn, fp, tn; /* tp: spoof called spoof; fp: bona fide called spoof */
    double accuracy, sensitivity, specificity, ppv, npv; /* NaN when the denominator is 0 */
} confusion_counts;

typedef struct {
    int n, n_spoof, n_bonafide;
    double auc, auc_lo, auc_hi; /* 95 % bootstrap interval */
    double eer, eer_lo, eer_hi;
    eer_point eer_at;
    double threshold; /* the one the confusion matrix uses */
    confusion_counts cm;
    int bootstrap_replicates;
    uint64_t bootstrap_seed;
} metrics_summary;

/* The functions below return -1 + adfd_fail when a class is missing (AUC/EER undefined).
 * labels are 0 (bona fide) / 1 (spoof). */
int metrics_auc(const float *scores, const int *labels, int n, double *auc);
int metrics_eer(const float *scores, const int *labels, int n, eer_point *out);
/* fpr/tpr/thresholds malloc'ed, *n_points = distinct scores + 1; thresholds[0] = +infinity. */
int metrics_roc_curve(const float *scores, const int *labels, int n, double **fpr, double **tpr,
                      double **thresholds, int *n_points);
/* The ROC threshold maximising TPR - FPR (the first, i.e. highest, on ties). */
int metrics_youden_threshold(const float *scores, const int *labels, int n, double *threshold);
void metrics_confusion(const float *scores, const int *labels, int n, double threshold,
                       confusion_counts *cm);
/* 95 % percentile intervals of AUC and EER over `replicates` stratified resamples. */
int metrics_bootstrap(const float *scores, const int *labels, int n, int replicates, uint64_t seed,
                      double auc_ci[2], double eer_ci[2]);
/* Everything above at one threshold. */
int metrics_summarize(const float *scores, const int *labels, int n, double threshold,
                      int replicates, uint64_t seed, metrics_summary *out);

#endif
