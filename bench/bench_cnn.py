"""PyTorch 1.13 reference for bench_cnn: the original module, one thread, the same shapes.
Run with MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736 (bench/bench_cnn.sh does).
Time is the process's CPU time (torch.set_num_threads(1)), as in bench_cnn.c.
Prints "train C=.. B=.. samples_per_s X" and "infer C=.. B=256 samples_per_s X" lines."""
import sys
import time

import torch
from torch import nn

torch.set_num_threads(1)
seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0


class Net(nn.Module):
    def __init__(self, channels, dropout=0.2):
        super().__init__()
        self.layer1 = nn.Sequential(nn.Conv2d(1, channels, 3), nn.BatchNorm2d(channels), nn.ReLU(),
                                    nn.MaxPool2d(2), nn.Dropout(dropout))
        self.layer2 = nn.Linear(channels * 63 * 39, 2)

    def forward(self, x):
        return self.layer2(self.layer1(x).flatten(1))


def timed(fn):
    fn()
    n, t0 = 0, time.process_time()
    while True:
        fn()
        n += 1
        dt = time.process_time() - t0
        if dt >= seconds:
            return n / dt


x_all = torch.rand(256, 1, 128, 80) * 2 - 0.5
y_all = torch.arange(256) % 2
for C in (1, 4, 16, 32):
    for B in (32, 128):
        torch.manual_seed(1)
        net = Net(C).train()
        opt = torch.optim.Adam(net.parameters(), lr=1e-4)
        x, y = x_all[:B], y_all[:B]

        def step():
            opt.zero_grad()
            nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
        print(f"train C={C} B={B} samples_per_s {timed(step) * B:.1f}", flush=True)
    net = Net(C).eval()

    def infer():
        with torch.no_grad():
            torch.softmax(net(x_all), dim=1)
    print(f"infer C={C} B=256 samples_per_s {timed(infer) * 256:.1f}", flush=True)
