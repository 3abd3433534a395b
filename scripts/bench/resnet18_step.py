#!/usr/bin/env python3
"""PyTorch side of the ResNet-18 step benchmark: one training step of the CIFAR ResNet-18 at
batch 128 on 32x32 inputs with SGD (momentum 0.9, weight decay 5e-4), the same work as
`cargo bench -p tasks --bench resnet18_step`.

    python3 scripts/bench/resnet18_step.py [--steps 5] [--batch 128] [--width 1] [--threads 2] [--device cpu|cuda]

`--width` scales every channel count as the Rust side's `width` (`models::scaled`: rounded, at
least 1). Ends with an `OPTBENCH_RESULT` line (benchlib.py) for `optbench bench --torch`.
"""
import argparse
import time

import torch
from torch import nn
import torch.nn.functional as F

from benchlib import emit


def scaled(c, w):
    return max(1, int(round(c * w)))


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.short = nn.Sequential()
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.b1(self.c1(x)))
        return F.relu(self.b2(self.c2(out)) + self.short(x))


class ResNet18(nn.Module):
    def __init__(self, classes=10, width=1.0):
        super().__init__()
        stem = scaled(64, width)
        self.c1, self.b1 = nn.Conv2d(3, stem, 3, 1, 1, bias=False), nn.BatchNorm2d(stem)
        layers, cin = [], stem
        for stage, cout in enumerate([scaled(c, width) for c in (64, 128, 256, 512)]):
            for i in range(2):
                layers.append(Block(cin, cout, 2 if stage > 0 and i == 0 else 1))
                cin = cout
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = self.layers(F.relu(self.b1(self.c1(x))))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    torch.manual_seed(0)
    net = ResNet18(width=args.width).to(dev)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(args.batch, 3, 32, 32, device=dev)
    y = (torch.arange(args.batch) % 10).to(dev)
    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)
    fwd, bwd, upd, tot = [], [], [], []
    for i in range(args.steps + 1):
        t0 = time.perf_counter()
        loss = F.cross_entropy(net(x), y)
        loss.item()
        t1 = time.perf_counter()
        opt.zero_grad()
        loss.backward()
        sync()
        t2 = time.perf_counter()
        opt.step()
        sync()
        t3 = time.perf_counter()
        if i > 0:
            fwd.append(t1 - t0), bwd.append(t2 - t1), upd.append(t3 - t2), tot.append(t3 - t0)
    med = lambda v: sorted(v)[len(v) // 2]
    print(f"pytorch ResNet-18 step, batch {args.batch}, {dev.type}: median {med(tot):.3f} s (forward {med(fwd):.3f} s, "
          f"backward {med(bwd):.3f} s, SGD step {med(upd):.4f} s) over {args.steps} steps")
    emit("resnet18", tot, f"width {args.width}, batch {args.batch}", forward=fwd, backward=bwd, update=upd)


if __name__ == "__main__":
    main()
