#!/usr/bin/python3
"""Shortcut check of a corpus in the In-the-Wild layout: can a logistic regression on clip length,
RMS level and spectral bandwidth alone tell spoof from bona fide? Cross-validated with folds grouped
by speaker (the model never sees the test speakers), it prints the clip ROC AUC of each feature set.
A corpus whose AUC is near 0.5 gives a detector no easy way out; the builder aims below 0.65.

usage: shortcut_check.py DIR [--max-auc A] [--folds K]   (exit 1 when the AUC is above --max-auc)"""
import argparse
import csv
import os
import sys
import wave

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

FEATURES = ["log_seconds", "rms_dbfs", "bandwidth_hz", "rolloff_hz"]


def clip_features(path):
    with wave.open(path, "rb") as w:
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64) / 32768
    if len(x) < 512:
        x = np.pad(x, (0, 512 - len(x)))
    rms = np.sqrt(np.mean(x ** 2)) + 1e-10
    frames = x[: len(x) // 512 * 512].reshape(-1, 512) * np.hanning(512)
    # Long-term magnitude spectrum; bandwidth and roll-off as librosa defines them.
    mag = np.abs(np.fft.rfft(frames, axis=1)).sum(axis=0) + 1e-20
    freqs = np.fft.rfftfreq(512, 1.0 / rate)
    centroid = (freqs * mag).sum() / mag.sum()
    bandwidth = np.sqrt(((freqs - centroid) ** 2 * mag).sum() / mag.sum())
    rolloff = freqs[np.searchsorted(np.cumsum(mag) / mag.sum(), 0.85)]
    return [np.log(len(x) / rate), 20 * np.log10(rms), bandwidth, rolloff]


def cross_validated_auc(X, y, groups, folds):
    scores = np.zeros(len(y))
    for train, test in GroupKFold(n_splits=folds).split(X, y, groups):
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        model.fit(X[train], y[train])
        scores[test] = model.predict_proba(X[test])[:, 1]
    return roc_auc_score(y, scores)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data")
    ap.add_argument("--max-auc", type=float, default=None)
    ap.add_argument("--folds", type=int, default=5)
    args = ap.parse_args()
    meta = os.path.join(args.data, "meta.csv")
    with open(meta, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        sys.exit("%s: no clips" % meta)
    X = np.array([clip_features(os.path.join(args.data, r["file"])) for r in rows])
    y = np.array([1 if r["label"] == "spoof" else 0 for r in rows])
    speakers = sorted({r["speaker"] for r in rows})
    groups = np.array([speakers.index(r["speaker"]) for r in rows])
    folds = min(args.folds, len(speakers))
    print("clips %d, speakers %d, spoof %d, %d folds grouped by speaker"
          % (len(y), len(speakers), y.sum(), folds))
    for i, name in enumerate(FEATURES):
        print("  %-13s mean bona fide %9.3f  spoof %9.3f" % (name, X[y == 0, i].mean(),
                                                            X[y == 1, i].mean()))
    auc_main = cross_validated_auc(X[:, :3], y, groups, folds)
    auc_all = cross_validated_auc(X, y, groups, folds)
    # Standardised within each speaker: catches a fake that differs from its own speaker's real
    # clips even when the speakers differ among themselves more than the classes do.
    Z = X.copy()
    for g in np.unique(groups):
        Z[groups == g] = (X[groups == g] - X[groups == g].mean(0)) / (X[groups == g].std(0) + 1e-9)
    auc_speaker = cross_validated_auc(Z, y, groups, folds)
    print("AUC length+rms+bandwidth %.3f" % auc_main)
    print("AUC length+rms+bandwidth+rolloff %.3f" % auc_all)
    print("AUC all four, standardised per speaker %.3f" % auc_speaker)
    # An AUC far below 0.5 separates the classes as well (the folds learned the opposite sign).
    worst = max(max(a, 1 - a) for a in (auc_main, auc_all, auc_speaker))
    if args.max_auc is not None and worst > args.max_auc:
        print("FAIL: a length/level/bandwidth classifier separates the classes (AUC > %.2f)"
              % args.max_auc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
