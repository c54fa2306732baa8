#!/usr/bin/python3
"""h5py reference for bench/bench_store.c: the same number of random rows per batch, read with
sorted fancy indexing (h5py's fastest way to read scattered rows).
  bench_store.py FEATURES.h5 BATCH N_BATCHES"""
import sys
import time

import h5py
import numpy as np

f = h5py.File(sys.argv[1], "r")
batch, n_batches = int(sys.argv[2]), int(sys.argv[3])
feats = f["features"]
rng = np.random.default_rng(7)
t0 = time.perf_counter()
for _ in range(n_batches):
    rows = np.unique(rng.integers(0, feats.shape[0], batch))
    x = feats[rows]
print(f"h5py features[sorted rows]: {batch * n_batches / (time.perf_counter() - t0):.0f} rows/s")
