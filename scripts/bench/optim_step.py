#!/usr/bin/env python3
"""PyTorch half of `optbench bench`'s optimizer rows: one step of each optimizer over one f32
parameter of NUMEL elements with a fixed gradient, medians of REPEATS steps after WARMUP, on the
threads given: torch.optim Adam (fused and foreach), SGD with momentum 0.9 (weight decay 5e-4),
and the papers' reference optimizers where they import: adabelief-pytorch (`AdaBelief`, its
0.2.1 defaults), adamod (`AdaMod`), torch-optimizer's `DiffGrad`, and Adai from the authors'
`adai_optim` package in a folder given with `--reference` (e.g. a checkout of
github.com/zeke-xie/adaptive-inertia-adai). Nothing of theirs is copied here.

    python3 scripts/bench/optim_step.py [--numel 11000000] [--warmup 2] [--repeats 10]
        [--threads 2] [--rounds 1] [--reference DIR]...

Prints a human line and an `OPTBENCH_RESULT` line (benchlib.py) per optimizer, named
`optim:<label>`; an optimizer that does not import is reported on stderr and skipped.
"""
import argparse
import sys
import time

import torch

from benchlib import emit


def candidates(refs):
    """(label, factory(params)) for every optimizer that imports."""
    for ref in refs:
        sys.path.insert(0, ref)
    found = [
        ("adam-fused", lambda p: torch.optim.Adam(p, lr=1e-3, fused=True)),
        ("adam-foreach", lambda p: torch.optim.Adam(p, lr=1e-3, foreach=True)),
        ("sgd-momentum", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=5e-4)),
    ]
    missing = []
    try:
        from adabelief_pytorch import AdaBelief
        found.append(("adabelief", lambda p: AdaBelief(p, lr=1e-3, eps=1e-16, print_change_log=False)))
    except ImportError as e:
        missing.append(f"adabelief (pip install adabelief-pytorch==0.2.1): {e}")
    try:
        from adamod import AdaMod
        found.append(("adamod", lambda p: AdaMod(p, lr=1e-3)))
    except ImportError as e:
        missing.append(f"adamod (pip install adamod): {e}")
    try:
        from torch_optimizer import DiffGrad
        found.append(("diffgrad", lambda p: DiffGrad(p, lr=1e-3)))
    except ImportError as e:
        missing.append(f"diffgrad (pip install torch-optimizer): {e}")
    try:
        from adai_optim import Adai
        found.append(("adai", lambda p: Adai(p, lr=0.1, weight_decay=5e-4)))
    except ImportError as e:
        missing.append(f"adai (--reference a checkout of zeke-xie/adaptive-inertia-adai): {e}")
    for m in missing:
        print(f"optim_step.py: skipped {m}", file=sys.stderr)
    return found


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--numel", type=int, default=11_000_000)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reference", action="append", default=[])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    start = torch.rand(args.numel, generator=g) * 2 - 1
    grad = (torch.rand(args.numel, generator=g) * 2 - 1) * 1e-3
    for label, make in candidates(args.reference):
        p = torch.nn.Parameter(start.clone())
        p.grad = grad.clone()
        opt = make([p])
        times = []
        for i in range(args.warmup + args.repeats):
            t0 = time.perf_counter()
            opt.step()
            if i >= args.warmup:
                times.append(time.perf_counter() - t0)
        med = sorted(times)[len(times) // 2]
        print(f"pytorch {label} step over {args.numel} elements: median {med * 1e3:.3f} ms over {args.repeats} steps")
        emit(f"optim:{label}", times, f"{args.numel} elements")


if __name__ == "__main__":
    main()
