#!/usr/bin/env python3
"""PyTorch's half of `resnet18_ops.rs`: the same rows (convolution forward, input gradient,
kernel gradient, BatchNorm (+ ReLU) forward and backward of a ResNet-18 CIFAR step) timed with
`aten.convolution_backward` and autograd, medians.

    python3 models/examples/resnet18_ops.py [--batch 128] [--reps 5] [--threads 2]
"""
import argparse
import time

import torch
import torch.nn.functional as F

CONVS = [(3, 32, 64, 3, 1, 1), (64, 32, 64, 3, 1, 4), (64, 32, 128, 3, 2, 1), (128, 16, 128, 3, 1, 3),
         (64, 32, 128, 1, 2, 1), (128, 16, 256, 3, 2, 1), (256, 8, 256, 3, 1, 3), (128, 16, 256, 1, 2, 1),
         (256, 8, 512, 3, 2, 1), (512, 4, 512, 3, 1, 3), (256, 8, 512, 1, 2, 1)]
NORMS = [(64, 32, 3, 2), (128, 16, 2, 3), (256, 8, 2, 3), (512, 4, 2, 3)]


def median_ms(reps, f):
    f()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        times.append((time.perf_counter() - t) * 1e3)
    return sorted(times)[len(times) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    n, totals = a.batch, [0.0] * 5
    print(f"op shape (batch {n}): count x median ms = ms per step")
    with torch.no_grad():
        for ci, h, co, k, s, count in CONVS:
            p = k // 2
            ho = (h + 2 * p - k) // s + 1
            x, w, dout = torch.randn(n, ci, h, h), torch.randn(co, ci, k, k), torch.randn(n, co, ho, ho)

            def back(mask):
                return torch.ops.aten.convolution_backward(dout, x, w, None, [s, s], [p, p], [1, 1], False, [0, 0],
                                                           1, mask)

            fwd = median_ms(a.reps, lambda: F.conv2d(x, w, None, s, p))
            dx = median_ms(a.reps, lambda: back([True, False, False]))
            dw = median_ms(a.reps, lambda: back([False, True, False]))
            shape = f"{ci}x{h}x{h} -> {co} k{k} s{s}"
            print(f"conv forward      {shape:<24} {count} x {fwd:8.2f} = {count * fwd:8.1f}")
            print(f"conv input grad   {shape:<24} {count} x {dx:8.2f} = {count * dx:8.1f}")
            print(f"conv kernel grad  {shape:<24} {count} x {dw:8.2f} = {count * dw:8.1f}")
            totals[0] += count * fwd
            totals[1] += count * dx
            totals[2] += count * dw
    for ch, h, with_relu, without in NORMS:
        for relu, count in ((True, with_relu), (False, without)):
            x = torch.randn(n, ch, h, h, requires_grad=True)
            bn = torch.nn.BatchNorm2d(ch)

            def forward():
                y = bn(x)
                return F.relu(y) if relu else y

            fwd = median_ms(a.reps, forward)
            both = median_ms(a.reps, lambda: forward().sum().backward())
            shape = f"{ch}x{h}x{h} relu {str(relu).lower()}"
            print(f"bn forward        {shape:<24} {count} x {fwd:8.2f} = {count * fwd:8.1f}")
            print(f"bn fwd + backward {shape:<24} {count} x {both:8.2f} = {count * both:8.1f}")
            totals[3] += count * fwd
            totals[4] += count * (both - fwd)
    print(f"per step: conv forward {totals[0]:.0f} ms, input grad {totals[1]:.0f} ms, kernel grad {totals[2]:.0f} ms, "
          f"bn forward {totals[3]:.0f} ms, bn backward (+ a sum) {totals[4]:.0f} ms")


if __name__ == "__main__":
    main()
