#!/usr/bin/python3
"""Reference for test_cnn_ref: the original PyTorch module of the seed project, one batch.

Builds nn.Sequential layer1 = Conv2d(1,C,3), BatchNorm2d(C), ReLU, MaxPool2d(2), Dropout(p);
layer2 = Linear(C*63*39, 2) with dropout off (p=0: the masks are tested in test_layers), in float64, runs
one training step on a random batch and dumps, for C=2 (cnn_ref.h5) and C=8 (cnn_ref_c8.h5, the
patch-moment path of adfd's trainer):
  input [B,1,128,80], labels [B], init/<state_dict names> (weights before any step),
  logits [B,2], loss (scalar), grad/<parameter names>, and after 3 Adam steps (lr 1e-3, PyTorch
  defaults) on the same batch: adam3/<state_dict names> and eval_p_spoof [B] (eval-mode P(spoof)).

The conv bias gradient: with batch statistics the loss does not depend on the conv bias, so its
true gradient is exactly 0; PyTorch returns float rounding noise which Adam amplifies to +-lr
steps. adfd uses the exact 0, so this script zeroes that gradient before each Adam step (the
noise itself is dumped under grad/ and compared with an absolute tolerance).

Run: /usr/bin/python3 tests/ref/make_cnn_ref.py  (torch 1.13, h5py)."""
import os

import h5py
import numpy as np
import torch
from torch import nn

B, P_DROP, LR = 4, 0.0, 1e-3


class Net(nn.Module):
    def __init__(self, channels, dropout):
        super().__init__()
        self.layer1 = nn.Sequential(nn.Conv2d(1, channels, 3), nn.BatchNorm2d(channels), nn.ReLU(),
                                    nn.MaxPool2d(2), nn.Dropout(dropout))
        self.layer2 = nn.Linear(channels * 63 * 39, 2)

    def forward(self, x):
        return self.layer2(self.layer1(x).flatten(1))


def dump(C, name):
    torch.manual_seed(1234)
    net = Net(C, P_DROP)
    with torch.no_grad():  # non-trivial BatchNorm affine parameters
        net.layer1[1].weight.uniform_(0.5, 1.5)
        net.layer1[1].bias.uniform_(-0.2, 0.2)
    # float32 initial weights and input, then the computation in float64: float32 PyTorch is
    # itself off by up to 2e-4 relative on the small conv-weight gradients (BatchNorm's backward
    # subtracts large terms), so the reference is the exact float64 result
    net = net.double()
    x = (torch.randn(B, 1, 128, 80) * 2.0 + 0.5).double()
    labels = torch.tensor([0, 1, 1, 0])
    init = {k: v.detach().clone() for k, v in net.state_dict().items()}

    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    logits = net(x)
    loss = nn.functional.cross_entropy(logits, labels)
    opt.zero_grad()
    loss.backward()
    grads = {k: p.grad.detach().clone() for k, p in net.named_parameters()}
    first_logits, first_loss = logits.detach().clone(), loss.item()
    for step in range(3):
        if step > 0:
            opt.zero_grad()
            nn.functional.cross_entropy(net(x), labels).backward()
        net.layer1[0].bias.grad.zero_()
        opt.step()
    net.eval()
    with torch.no_grad():
        p_spoof = torch.softmax(net(x), dim=1)[:, 1]

    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), name)
    with h5py.File(out, "w") as f:
        f.attrs["channels"] = C
        f.attrs["batch"] = B
        f.attrs["lr"] = LR
        f["input"] = x.numpy().astype(np.float32)  # exactly representable (made in float32)
        f["labels"] = labels.numpy().astype(np.int32)
        for k, v in init.items():
            f["init/" + k] = v.numpy().astype(np.float32) if v.is_floating_point() else v.numpy()
        f["logits"] = first_logits.numpy().astype(np.float32)
        f["loss"] = np.float32(first_loss)
        for k, v in grads.items():
            f["grad/" + k] = v.numpy().astype(np.float32)
        for k, v in net.state_dict().items():
            f["adam3/" + k] = v.numpy().astype(np.float32) if v.is_floating_point() else v.numpy()
        f["eval_p_spoof"] = p_spoof.numpy().astype(np.float32)
    print("wrote", out, os.path.getsize(out), "bytes")


dump(2, "cnn_ref.h5")
dump(8, "cnn_ref_c8.h5")
