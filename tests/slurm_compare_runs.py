"""Compares the outputs of adfd job runs, reading them with h5py and csv (no adfd code).

  slurm_compare_runs.py same RUN_A RUN_B
      RUN_B must have ended exactly like RUN_A: grid.tsv equal in every column but the timings
      (seconds), and best.h5 equal in every tensor (bit for bit) and every attribute.
  slurm_compare_runs.py retrain GRID_RUN FEATURES.h5 NAME
      jobs/retrain.sbatch wrote GRID_RUN/NAME.h5: trained on train + test (BatchNorm step count
      = best epoch x ceil((train + test rows) / batch)), threshold copied from best.h5, weights
      unlike best.h5's and equal within 1e-5 to a 1-rank adfd train run here; and the held-out
      evaluation GRID_RUN/NAME-holdout/metrics.json. Needs $ADFD.
  slurm_compare_runs.py features FEATURES.h5 CLIPS CHUNKS_PER_CLIP
      the feature file holds CLIPS clips of CHUNKS_PER_CLIP [128,80] chunks each, and all three
      splits (train, test, holdout).
Prints one line per check; exits 1 if any failed."""
import csv
import json
import os
import subprocess
import sys

import h5py
import numpy as np

failures = []


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what)
    if not cond:
        failures.append(what)


def read_tsv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def h5_contents(path):
    datasets, attrs = {}, {}
    with h5py.File(path, "r") as f:
        attrs["/"] = dict(f.attrs)

        def visit(name, obj):
            attrs[name] = dict(obj.attrs)
            if isinstance(obj, h5py.Dataset):
                datasets[name] = obj[()]

        f.visititems(visit)
    return datasets, attrs


def same_attrs(a, b):
    if a.keys() != b.keys():
        return False
    return all(np.array_equal(np.asarray(a[k]), np.asarray(b[k])) for k in a)


def compare_same(run_a, run_b):
    ta, tb = read_tsv(f"{run_a}/grid.tsv"), read_tsv(f"{run_b}/grid.tsv")
    check(len(ta) > 0 and len(ta) == len(tb), f"grid.tsv rows: {len(ta)} and {len(tb)}")
    for ra, rb in zip(ta, tb):
        differ = [k for k in ra if k != "seconds" and ra[k] != rb.get(k)]
        if differ:
            check(False, f"grid.tsv {ra['config']} epoch {ra['epoch']}: {differ} differ")
            break
    else:
        check(True, "grid.tsv equal in every column but seconds")
    da, aa = h5_contents(f"{run_a}/best.h5")
    db, ab = h5_contents(f"{run_b}/best.h5")
    check(len(da) > 0 and da.keys() == db.keys(), f"best.h5 tensors: {sorted(da)} / {sorted(db)}")
    for name in sorted(da.keys() & db.keys()):
        check(da[name].shape == db[name].shape and np.array_equal(da[name], db[name]),
              f"best.h5 {name} {da[name].shape} bit-identical")
    check(aa.keys() == ab.keys() and all(same_attrs(aa[k], ab[k]) for k in aa),
          "best.h5 attributes equal (threshold, architecture, features)")


def compare_retrain(grid_run, features, name):
    """jobs/retrain.sbatch's outputs in GRID_RUN, checked against the grid's own files and a
    1-rank adfd train on this machine with the hyperparameters read here from grid.tsv."""
    summary = open(f"{grid_run}/summary.txt").read()
    best = summary.split("Best configuration: ")[1].split()[0]
    best_epoch = int(summary.split("best epoch ")[1].split(",")[0])
    row = [r for r in read_tsv(f"{grid_run}/grid.tsv") if r["config"] == best][0]
    batch = int(row["batch"])
    with h5py.File(features, "r") as f:
        split = f["clips/split"][()][f["clip"][()]]  # split of every row
    n_train, n_test = int(np.sum(split == 0)), int(np.sum(split == 1))
    retrained, _ = h5_contents(f"{grid_run}/{name}.h5")
    best_h5, best_attrs = h5_contents(f"{grid_run}/best.h5")
    with h5py.File(f"{grid_run}/{name}.h5", "r") as f:
        attrs = dict(f.attrs)
    steps = best_epoch * -(-(n_train + n_test) // batch)
    tracked = int(retrained["layer1.1.num_batches_tracked"])
    check(tracked == steps, f"{name}.h5: {tracked} BatchNorm steps = {best_epoch} epochs x "
          f"ceil(({n_train} train + {n_test} test rows) / batch {batch}) = {steps}")
    check(int(attrs["channels"]) == int(row["channels"]), f"{name}.h5 channels {attrs['channels']}")
    check(attrs["threshold"] == best_attrs["/"]["threshold"],
          f"threshold {attrs['threshold']} copied from best.h5")
    check(str(attrs["threshold_method"]).find("copied: ") >= 0,
          f"threshold_method says so: {attrs['threshold_method']}")
    check(not np.array_equal(retrained["layer2.weight"], best_h5["layer2.weight"]),
          "the retrained weights differ from best.h5's")
    metrics = json.load(open(f"{grid_run}/{name}-holdout/metrics.json"))
    check(metrics["split"] == "holdout" and metrics["model"].endswith(f"{name}.h5"),
          f"{name}-holdout/metrics.json: split {metrics['split']}, model {metrics['model']}")
    # the same training on 1 rank here (the job ran 2): equal up to the order of float sums
    ref = f"{grid_run}/{name}-reference.h5"
    cmd = [os.environ["ADFD"], "train", "--features", features, "--train-splits", "train,test",
           "--channels", row["channels"], "--lr", row["lr"], "--batch", row["batch"],
           "--dropout", row["dropout"], "--seed", row["seed"], "--epochs", str(best_epoch),
           "--out", ref]
    env = dict(os.environ, SLURM_NTASKS="1")
    check(subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL).returncode == 0,
          "adfd train --train-splits train,test on 1 rank")
    # 1e-5 of each tensor's largest value: 8 Adam epochs at lr 1e-2 carry the 1e-7 rounding
    # differences of the sums into near-zero weights (seen: 2.2e-7 on a scale of 0.2)
    one_rank, _ = h5_contents(ref)
    worst = 0.0
    for k in sorted(one_rank):
        a, b = np.asarray(one_rank[k], np.float64), np.asarray(retrained[k], np.float64)
        scale = max(np.abs(a).max(), 1e-30)
        if a.shape != b.shape or np.any(np.abs(a - b) > 1e-5 * scale):
            check(False, f"{k}: 1 rank vs the job's 2 ranks differ by {np.abs(a - b).max()}")
        elif a.size:
            worst = max(worst, np.abs(a - b).max() / scale)
    check(not failures, f"{name}.h5 = a 1-rank train,test run within 1e-5 of each tensor's "
          f"scale (largest difference {worst:.2g})")


def check_features(path, clips, chunks_per_clip):
    with h5py.File(path, "r") as f:
        shape = f["features"].shape
        split = f["clips/split"][()]
        clip = f["clip"][()]
    check(shape == (clips * chunks_per_clip, 128, 80), f"/features shape {shape}")
    check(len(split) == clips, f"{len(split)} clips")
    check(sorted(set(split.tolist())) == [0, 1, 2], f"splits present: {sorted(set(split.tolist()))}")
    counts = np.bincount(clip, minlength=clips)
    check(np.all(counts == chunks_per_clip), f"chunks per clip: {sorted(set(counts.tolist()))}")


mode = sys.argv[1]
if mode == "same":
    compare_same(sys.argv[2], sys.argv[3])
elif mode == "retrain":
    compare_retrain(sys.argv[2], sys.argv[3], sys.argv[4])
elif mode == "features":
    check_features(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
else:
    sys.exit(f"unknown mode {mode}")
sys.exit(1 if failures else 0)
