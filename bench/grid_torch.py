"""PyTorch reference for bench/grid: one configuration-epoch of the seed CNN (train with Adam on
the train rows + evaluate the test rows), 1 thread, on the same feature file. Prints the seconds
of the median of 3 epochs. Usage: grid_torch.py FEATURES.h5 CHANNELS BATCH"""
import sys, time
import h5py
import numpy as np
import torch

torch.set_num_threads(1)
path, C, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with h5py.File(path, "r") as f:
    x = torch.from_numpy(f["features"][()][:, None])
    split = f["clips/split"][()][f["clip"][()]]
    y = torch.from_numpy(f["clips/label"][()][f["clip"][()]].astype(np.int64))
train, test = np.nonzero(split == 0)[0], np.nonzero(split == 1)[0]
net = torch.nn.Sequential(torch.nn.Conv2d(1, C, 3), torch.nn.BatchNorm2d(C), torch.nn.ReLU(),
                          torch.nn.MaxPool2d(2), torch.nn.Dropout(0.5), torch.nn.Flatten(),
                          torch.nn.Linear(C * 63 * 39, 2))
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
loss_fn = torch.nn.CrossEntropyLoss()
times = []
for epoch in range(3):
    t0 = time.perf_counter()
    net.train()
    order = np.random.default_rng(epoch).permutation(train)
    for s in range(0, len(order), batch):
        idx = order[s:s + batch]
        opt.zero_grad()
        loss = loss_fn(net(x[idx]), y[idx])
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        for s in range(0, len(test), 256):
            loss_fn(net(x[test[s:s + 256]]), y[test[s:s + 256]])
    times.append(time.perf_counter() - t0)
print(f"{sorted(times)[1]:.4f}")
