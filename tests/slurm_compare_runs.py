"""Compares the outputs of adfd job runs, reading them with h5py and csv (no adfd code).

  slurm_compare_runs.py same RUN_A RUN_B
      RUN_B must have ended exactly like RUN_A: grid.tsv equal in every column but the timings
      (seconds), and best.h5 equal in every tensor (bit for bit) and every attribute.
  slurm_compare_runs.py retrain GRID_RUN RETRAIN_RUN RTOL
      RETRAIN_RUN (jobs/retrain.sbatch, one configuration c000) must repeat the epochs of
      GRID_RUN's best configuration: same hyperparameters, losses and AUC within RTOL (the
      retrain runs on another number of ranks).
  slurm_compare_runs.py features FEATURES.h5 CLIPS CHUNKS_PER_CLIP
      the feature file holds CLIPS clips of CHUNKS_PER_CLIP [128,80] chunks each, and all three
      splits (train, test, holdout).
Prints one line per check; exits 1 if any failed."""
import csv
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


def compare_retrain(grid_run, retrain_run, rtol):
    summary = open(f"{grid_run}/summary.txt").read()
    best = summary.split("Best configuration: ")[1].split()[0]
    ta = [r for r in read_tsv(f"{grid_run}/grid.tsv") if r["config"] == best]
    tb = read_tsv(f"{retrain_run}/grid.tsv")
    check(len(ta) > 0 and len(ta) == len(tb), f"{best}: {len(ta)} epochs, retrain {len(tb)}")
    for ra, rb in zip(ta, tb):
        for k in ("channels", "lr", "batch", "max_epochs", "dropout", "seed", "patience", "epoch"):
            if ra[k] != rb[k]:
                check(False, f"epoch {ra['epoch']}: {k} {ra[k]} vs {rb[k]}")
        for k in ("train_loss", "test_loss", "test_auc"):
            if not np.isclose(float(ra[k]), float(rb[k]), rtol=rtol, atol=rtol):
                check(False, f"epoch {ra['epoch']}: {k} {ra[k]} vs {rb[k]} (rtol {rtol})")
    check(not failures, f"retrain repeats {best}'s epochs within rtol {rtol}")


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
    compare_retrain(sys.argv[2], sys.argv[3], float(sys.argv[4]))
elif mode == "features":
    check_features(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
else:
    sys.exit(f"unknown mode {mode}")
sys.exit(1 if failures else 0)
