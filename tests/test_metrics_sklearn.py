"""Compares adfd's metrics with scikit-learn (roc_auc_score, roc_curve, confusion_matrix) and with
the ASVspoof 2019/2021 EER reference (compute_det_curve/compute_eer, re-implemented below in
numpy with spoof as the target class) on random scores with many ties.
Usage: test_metrics_sklearn.py METRICS_TOOL"""
import json, os, subprocess, sys
import numpy as np
from sklearn.metrics import confusion_matrix, roc_auc_score, roc_curve


def compute_det_curve(target_scores, nontarget_scores):
    n_scores = target_scores.size + nontarget_scores.size
    all_scores = np.concatenate((target_scores, nontarget_scores))
    labels = np.concatenate((np.ones(target_scores.size), np.zeros(nontarget_scores.size)))
    indices = np.argsort(all_scores, kind="mergesort")
    labels = labels[indices]
    tar_trial_sums = np.cumsum(labels)
    nontarget_trial_sums = nontarget_scores.size - (np.arange(1, n_scores + 1) - tar_trial_sums)
    frr = np.concatenate((np.atleast_1d(0), tar_trial_sums / target_scores.size))
    far = np.concatenate((np.atleast_1d(1), nontarget_trial_sums / nontarget_scores.size))
    thresholds = np.concatenate((np.atleast_1d(all_scores[indices[0]] - 0.001), all_scores[indices]))
    return frr, far, thresholds


def compute_eer(target_scores, nontarget_scores):
    frr, far, thresholds = compute_det_curve(target_scores, nontarget_scores)
    min_index = np.argmin(np.abs(frr - far))
    return np.mean((frr[min_index], far[min_index])), thresholds[min_index], min_index


def main():
    tool = sys.argv[1]
    os.makedirs("metrics_sklearn", exist_ok=True)
    rng = np.random.default_rng(20261126)
    failures = 0
    cases = [(50, 2), (300, 2), (1000, 1), (2000, 3), (17, 1)]
    for case, (n, decimals) in enumerate(cases):
        y = (rng.random(n) < 0.4).astype(int)
        y[0], y[1] = 0, 1
        raw = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1)
        text = [f"{v:.{decimals}f}" for v in raw]  # rounding makes many ties
        s = np.array([np.float32(t) for t in text])
        path = f"metrics_sklearn/case{case}.txt"
        with open(path, "w") as f:
            f.writelines(f"{t} {l}\n" for t, l in zip(text, y))
        threshold = 0.5
        got = json.loads(subprocess.check_output([tool, path, str(threshold)]))

        def check(name, a, b, tol=1e-12):
            nonlocal failures
            a, b = np.asarray(a, float), np.asarray(b, float)
            if a.shape != b.shape or not np.allclose(a, b, rtol=0, atol=tol):
                failures += 1
                print(f"FAIL case {case} {name}: adfd {a} reference {b}")

        check("auc", got["auc"], roc_auc_score(y, s))
        eer, thr, k = compute_eer(s[y == 1], s[y == 0])
        check("eer", got["eer"], eer)
        check("asv_threshold", got["asv_threshold"], thr, 1e-7)
        fpr, tpr, th = roc_curve(y, s, drop_intermediate=False)
        check("roc fpr", got["fpr"], fpr)
        check("roc tpr", got["tpr"], tpr)
        check("roc thresholds", got["thresholds"], th[1:], 1e-7)
        check("youden", got["youden"], th[np.argmax(tpr - fpr)], 1e-7)
        tn, fp, fn, tp = confusion_matrix(y, (s >= threshold).astype(int), labels=[0, 1]).ravel()
        check("confusion", [got["tp"], got["fn"], got["fp"], got["tn"]], [tp, fn, fp, tn])
        check("accuracy", got["accuracy"], (tp + tn) / n)
        check("sensitivity", got["sensitivity"], tp / (tp + fn))
        check("specificity", got["specificity"], tn / (tn + fp))
        check("ppv", got["ppv"], tp / (tp + fp))
        check("npv", got["npv"], tn / (tn + fn))
        # Our EER threshold (rule score >= t) must reproduce the reference's DET point when no
        # tie straddles it: FRR = spoof below t, FAR = bona fide at or above t.
        t = got["threshold"]
        frr, far = np.mean(s[y == 1] < t), np.mean(s[y == 0] >= t)
        straddles = k > 0 and np.sum(s <= np.float32(thr)) != k  # equal scores on both sides
        if not straddles:
            check("eer point reproduced", (frr + far) / 2, eer)
        print(f"case {case}: n={n} auc={got['auc']:.6f} eer={got['eer']:.6f} "
              f"roc points={len(got['fpr'])}")
    if failures:
        print(f"{failures} comparisons FAILED")
        sys.exit(1)
    print("all metrics agree with scikit-learn and the ASVspoof reference")


main()
