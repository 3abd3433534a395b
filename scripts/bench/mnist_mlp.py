#!/usr/bin/env python3
"""PyTorch side of the MNIST MLP benchmark: one epoch of the 784-256-256-10 ReLU MLP with Adam
(lr 1e-3, batch 64, shuffled), the same work as `cargo bench -p tasks --bench mnist_mlp`.

    python3 scripts/bench/mnist_mlp.py [--data-dir ../shared/data] [--repeats 3] [--threads 2]
        [--steps N] [--synthetic] [--no-breakdown]

`--steps N` times the first N steps of each epoch and extrapolates to the epoch; `--synthetic`
trains on random images of MNIST's shape (what `optbench bench` does without a data folder).
Ends each epoch with an `OPTBENCH_RESULT` line (benchlib.py) for `optbench bench --torch`.

Needs torch and numpy (scripts/golden/requirements.txt installs them). Prints the median epoch
time and the same step breakdown as the Rust side.
"""
import argparse
import gzip
import time
from pathlib import Path

import numpy as np
import torch

from benchlib import emit


def idx(path, offset):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


def find(d, name):
    for p in (d / name, d / f"{name}.gz"):
        if p.exists():
            return p
    raise SystemExit(f"no {name} in {d}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--synthetic", action="store_true")
    ap.add_argument("--no-breakdown", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.synthetic:
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, (60000, 1, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, 60000).astype(np.int64)
        xt, yt = x[:10000], y[:10000]
    else:
        d = args.data_dir / "mnist"
        x = idx(find(d, "train-images-idx3-ubyte"), 16).reshape(-1, 1, 28, 28)
        y = idx(find(d, "train-labels-idx1-ubyte"), 8).astype(np.int64)
        xt = idx(find(d, "t10k-images-idx3-ubyte"), 16).reshape(-1, 1, 28, 28)
        yt = idx(find(d, "t10k-labels-idx1-ubyte"), 8).astype(np.int64)
    steps = (len(y) + 63) // 64
    timed = min(args.steps or steps, steps)
    times = []
    for r in range(args.repeats):
        torch.manual_seed(r)
        net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 256), torch.nn.ReLU(),
                                  torch.nn.Linear(256, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        order = np.random.default_rng(r).permutation(len(y))
        started = time.perf_counter()
        for i in range(0, timed * 64, 64):
            b = order[i:i + 64]
            xb = torch.from_numpy(x[b].astype(np.float32) / 255.0)
            yb = torch.from_numpy(y[b])
            loss = torch.nn.functional.cross_entropy(net(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            last = loss.item()
        seconds = (time.perf_counter() - started) * steps / timed
        with torch.no_grad():
            acc = (net(torch.from_numpy(xt.astype(np.float32) / 255.0)).argmax(1).numpy() == yt).mean()
        print(f"pytorch: epoch {r + 1} of {steps} steps ({timed} timed): {seconds:.3f} s (last loss {last:.4f}, test accuracy {acc:.4f})")
        times.append(seconds)
    print(f"pytorch median epoch: {sorted(times)[len(times) // 2]:.3f} s")
    emit("mnist-mlp", times, f"{timed} of {steps} steps timed" + (", random data" if args.synthetic else ""))
    if args.no_breakdown:
        return

    net = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256), torch.nn.ReLU(),
                              torch.nn.Linear(256, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    xb = torch.rand(64, 784)
    yb = torch.arange(64) % 10
    fb, st = [], []
    for _ in range(300):
        t0 = time.perf_counter()
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xb), yb).backward()
        t1 = time.perf_counter()
        opt.step()
        t2 = time.perf_counter()
        fb.append((t1 - t0) * 1e3)
        st.append((t2 - t1) * 1e3)
    print(f"pytorch step breakdown (median of 300): forward+backward {sorted(fb)[150]:.3f} ms, "
          f"Adam step {sorted(st)[150]:.3f} ms")


if __name__ == "__main__":
    main()
