#include "adfd/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "adfd/util.h"

/* Sort key of the ASVspoof reference: ascending score; on equal scores the targets (spoof) come
 * first, because the reference concatenates target scores before non-target scores and sorts
 * with a stable mergesort. The index makes the order total. */
typedef struct {
    float score;
    int label;
    int index;
} scored_item;

static int scored_item_compare(const void *pa, const void *pb) {
    const scored_item *a = pa, *b = pb;
    if (a->score != b->score) return a->score < b->score ? -1 : 1;
    if (a->label != b->label) return a->label > b->label ? -1 : 1;
    return (a->index > b->index) - (a->index < b->index);
}

static int count_classes(const int *labels, int n, int *n_spoof, int *n_bonafide) {
    int p = 0;
    for (int i = 0; i < n; i++)
        p += labels[i] == 1;
    *n_spoof = p;
    *n_bonafide = n - p;
    if (p == 0 || p == n)
        return adfd_fail("AUC and EER need both classes (%d spoof, %d bona fide scores)", p, n - p);
    return 0;
}

static scored_item *sorted_items(const float *scores, const int *labels, int n) {
    scored_item *items = mallocCheck(sizeof(scored_item) * (size_t)(n > 0 ? n : 1));
    for (int i = 0; i < n; i++)
        items[i] = (scored_item){scores[i], labels[i] == 1, i};
    qsort(items, (size_t)n, sizeof *items, scored_item_compare);
    return items;
}

/* items sorted ascending; ties count one half. */
static double auc_sorted(const scored_item *items, int n, int n_spoof, int n_bonafide) {
    double pairs = 0, bonafide_below = 0;
    for (int i = 0; i < n;) {
        int j = i;
        double spoof_here = 0, bonafide_here = 0;
        for (; j < n && items[j].score == items[i].score; j++) {
            if (items[j].label)
                spoof_here++;
            else
                bonafide_here++;
        }
        pairs += spoof_here * bonafide_below + 0.5 * spoof_here * bonafide_here;
        bonafide_below += bonafide_here;
        i = j;
    }
    return pairs / ((double)n_spoof * (double)n_bonafide);
}

/* compute_det_curve + compute_eer of the ASVspoof evaluation package on sorted items. Point k
 * rejects the k lowest scores: FRR(k) = rejected targets / P, FAR(k) = accepted non-targets / N. */
static eer_point eer_sorted(const scored_item *items, int n, int n_spoof, int n_bonafide) {
    int best_k = 0;
    double best_frr = 0, best_far = 1, best_diff = 1;
    double targets_rejected = 0;
    for (int k = 1; k <= n; k++) {
        targets_rejected += items[k - 1].label;
        double frr = targets_rejected / n_spoof;
        double far = ((double)n_bonafide - ((double)k - targets_rejected)) / n_bonafide;
        double diff = fabs(frr - far);
        if (diff < best_diff) {
            best_diff = diff;
            best_k = k;
            best_frr = frr;
            best_far = far;
        }
    }
    eer_point e;
    e.eer = (best_frr + best_far) / 2;
    e.asv_threshold = best_k == 0 ? items[0].score - 0.001 : items[best_k - 1].score;
    if (best_k == 0)
        e.threshold = items[0].score;
    else if (best_k == n)
        e.threshold = nextafterf(items[n - 1].score, INFINITY);
    else
        e.threshold = 0.5 * ((double)items[best_k - 1].score + (double)items[best_k].score);
    return e;
}

int metrics_auc(const float *scores, const int *labels, int n, double *auc) {
    int p, q;
    if (count_classes(labels, n, &p, &q)) return -1;
    scored_item *items = sorted_items(scores, labels, n);
    *auc = auc_sorted(items, n, p, q);
    free(items);
    return 0;
}

int metrics_eer(const float *scores, const int *labels, int n, eer_point *out) {
    int p, q;
    if (count_classes(labels, n, &p, &q)) return -1;
    scored_item *items = sorted_items(scores, labels, n);
    *out = eer_sorted(items, n, p, q);
    free(items);
    return 0;
}

int metrics_roc_curve(const float *scores, const int *labels, int n, double **fpr, double **tpr,
                      double **thresholds, int *n_points) {
    int p, q;
    if (count_classes(labels, n, &p, &q)) return -1;
    scored_item *items = sorted_items(scores, labels, n);
    double *f = mallocCheck(sizeof(double) * (size_t)(n + 1));
    double *t = mallocCheck(sizeof(double) * (size_t)(n + 1));
    double *th = mallocCheck(sizeof(double) * (size_t)(n + 1));
    int m = 0;
    f[m] = 0, t[m] = 0, th[m] = INFINITY, m++;
    double tp = 0, fp = 0;
    for (int i = n - 1; i >= 0;) { /* from the highest score down, one point per distinct score */
        int j = i;
        for (; j >= 0 && items[j].score == items[i].score; j--) {
            if (items[j].label)
                tp++;
            else
                fp++;
        }
        f[m] = fp / q, t[m] = tp / p, th[m] = items[i].score, m++;
        i = j;
    }
    free(items);
    *fpr = f, *tpr = t, *thresholds = th, *n_points = m;
    return 0;
}

int metrics_youden_threshold(const float *scores, const int *labels, int n, double *threshold) {
    double *fpr, *tpr, *th;
    int m;
    if (metrics_roc_curve(scores, labels, n, &fpr, &tpr, &th, &m)) return -1;
    int best = 0;
    for (int i = 1; i < m; i++)
        if (tpr[i] - fpr[i] > tpr[best] - fpr[best]) best = i;
    *threshold = th[best];
    free(fpr), free(tpr), free(th);
    return 0;
}

static double ratio_or_nan(double num, double den) {
    return den > 0 ? num / den : NAN;
}

void metrics_confusion(const float *scores, const int *labels, int n, double threshold,
                       confusion_counts *cm) {
    memset(cm, 0, sizeof *cm);
    for (int i = 0; i < n; i++) {
        int called_spoof = (double)scores[i] >= threshold;
        if (labels[i] == 1)
            called_spoof ? cm->tp++ : cm->fn++;
        else
            called_spoof ? cm->fp++ : cm->tn++;
    }
    double tp = (double)cm->tp, fn = (double)cm->fn, fp = (double)cm->fp, tn = (double)cm->tn;
    cm->accuracy = ratio_or_nan(tp + tn, tp + tn + fp + fn);
    cm->sensitivity = ratio_or_nan(tp, tp + fn);
    cm->specificity = ratio_or_nan(tn, tn + fp);
    cm->ppv = ratio_or_nan(tp, tp + fp);
    cm->npv = ratio_or_nan(tn, tn + fn);
}

static int compare_double(const void *pa, const void *pb) {
    double a = *(const double *)pa, b = *(const double *)pb;
    return (a > b) - (a < b);
}

/* numpy.percentile's default (linear interpolation between closest ranks) on sorted values. */
static double percentile_sorted(const double *v, int n, double q) {
    double pos = q * (n - 1);
    int lo = (int)floor(pos);
    if (lo >= n - 1) return v[n - 1];
    return v[lo] + (pos - lo) * (v[lo + 1] - v[lo]);
}

int metrics_bootstrap(const float *scores, const int *labels, int n, int replicates, uint64_t seed,
                      double auc_ci[2], double eer_ci[2]) {
    int p, q;
    if (count_classes(labels, n, &p, &q)) return -1;
    if (replicates < 1) return adfd_fail("bootstrap needs at least one replicate");
    scored_item *items = sorted_items(scores, labels, n);
    int *spoof_rows = mallocCheck(sizeof(int) * (size_t)p);
    int *bonafide_rows = mallocCheck(sizeof(int) * (size_t)q);
    for (int i = 0, a = 0, b = 0; i < n; i++) { /* positions in the sorted order, per class */
        if (items[i].label)
            spoof_rows[a++] = i;
        else
            bonafide_rows[b++] = i;
    }
    int *copies = mallocCheck(sizeof(int) * (size_t)n);
    scored_item *resample = mallocCheck(sizeof(scored_item) * (size_t)n);
    double *aucs = mallocCheck(sizeof(double) * (size_t)replicates);
    double *eers = mallocCheck(sizeof(double) * (size_t)replicates);
    for (int r = 0; r < replicates; r++) {
        memset(copies, 0, sizeof(int) * (size_t)n);
        for (int j = 0; j < p; j++)
            copies[spoof_rows[rng_hash64(seed, (uint64_t)r, j) % p]]++;
        for (int j = 0; j < q; j++)
            copies[bonafide_rows[rng_hash64(seed, (uint64_t)r, (uint64_t)(p + j)) % q]]++;
        /* Copies of a sorted item stay adjacent, so the resample is sorted as the reference
         * would sort it, without sorting again. */
        int m = 0;
        for (int i = 0; i < n; i++)
            for (int c = 0; c < copies[i]; c++)
                resample[m++] = items[i];
        aucs[r] = auc_sorted(resample, n, p, q);
        eers[r] = eer_sorted(resample, n, p, q).eer;
    }
    qsort(aucs, (size_t)replicates, sizeof(double), compare_double);
    qsort(eers, (size_t)replicates, sizeof(double), compare_double);
    auc_ci[0] = percentile_sorted(aucs, replicates, 0.025);
    auc_ci[1] = percentile_sorted(aucs, replicates, 0.975);
    eer_ci[0] = percentile_sorted(eers, replicates, 0.025);
    eer_ci[1] = percentile_sorted(eers, replicates, 0.975);
    free(items), free(spoof_rows), free(bonafide_rows), free(copies), free(resample);
    free(aucs), free(eers);
    return 0;
}

int metrics_summarize(const float *scores, const int *labels, int n, double threshold,
                      int replicates, uint64_t seed, metrics_summary *out) {
    memset(out, 0, sizeof *out);
    out->n = n;
    if (count_classes(labels, n, &out->n_spoof, &out->n_bonafide)) return -1;
    double auc_ci[2], eer_ci[2];
    if (metrics_auc(scores, labels, n, &out->auc) || metrics_eer(scores, labels, n, &out->eer_at) ||
        metrics_bootstrap(scores, labels, n, replicates, seed, auc_ci, eer_ci))
        return -1;
    out->eer = out->eer_at.eer;
    out->auc_lo = auc_ci[0], out->auc_hi = auc_ci[1];
    out->eer_lo = eer_ci[0], out->eer_hi = eer_ci[1];
    out->threshold = threshold;
    metrics_confusion(scores, labels, n, threshold, &out->cm);
    out->bootstrap_replicates = replicates;
    out->bootstrap_seed = seed;
    return 0;
}
