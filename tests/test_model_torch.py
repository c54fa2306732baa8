"""The model file read by h5py + torch: the snippet of docs/train.md loads model.h5 into the
original PyTorch module, which must reproduce adfd's model_predict scores (written by
cnn_tool predict) on every row of the feature file. Usage: test_model_torch.py CNN_TOOL"""
import os
import re
import subprocess
import sys

import h5py
import numpy as np
import torch

tool, adfd = sys.argv[1], os.environ["ADFD"]
work = "test_model_torch"
os.makedirs(work, exist_ok=True)
feat, model, scores = (os.path.join(work, n) for n in ("f.h5", "m.h5", "scores.txt"))
# the default preset: a non-trivial per-band normalisation stored in the model
subprocess.run([tool, "features", feat, "10", "4", "3", "default"], check=True)
subprocess.run([adfd, "train", "--features", feat, "--channels", "3", "--lr", "1e-3", "--batch",
                "6", "--epochs", "2", "--seed", "3", "--out", model], check=True)
subprocess.run([tool, "predict", model, feat, scores], check=True)
ours = np.loadtxt(scores)

doc = open(os.path.join(os.environ["ADFD_SOURCE_DIR"], "docs", "train.md")).read()
snippet = re.search(r"```python\n(.*?)```", doc, re.S).group(1)
ns = {}
exec(snippet, ns)
net, mean, std = ns["load_adfd_model"](model)
with h5py.File(feat, "r") as f:
    chunks = torch.from_numpy(f["features"][()])
    assert f["normalization/mean"][0] != 0.0
with h5py.File(model, "r") as f:
    preset = f.attrs["preset"]
    assert f.attrs["format_version"] == 1
    assert (preset.decode() if isinstance(preset, bytes) else preset) == "default"
    assert f["layer1.1.num_batches_tracked"][()] > 0
    assert f["layer2.weight"].shape == (2, 3 * 63 * 39)
with torch.no_grad():
    theirs = torch.softmax(net(((chunks - mean) / std)[:, None]), dim=1)[:, 1].numpy()
err = np.abs(ours - theirs)
print("rows", len(ours), "max |adfd - torch|", err.max(), "score range", ours.min(), ours.max())
ok = len(ours) == len(theirs) and np.all(err <= 1e-5 + 1e-4 * np.abs(theirs))
ok = ok and ours.std() > 1e-3  # scores that differ between chunks: a real comparison
print("test_model_torch:", "passed" if ok else "FAILED")
sys.exit(0 if ok else 1)
