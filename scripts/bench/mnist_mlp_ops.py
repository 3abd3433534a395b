#!/usr/bin/env python3
"""PyTorch half of `cargo run --release -p models --example mlp_ops`: the MNIST MLP step's parts
(784-256-256-10, ReLU, batch 64, f32: each layer's forward, the cross-entropy forward, the whole
backward), medians in microseconds. Run the two alternately and compare medians.

    python3 scripts/bench/mnist_mlp_ops.py [THREADS (2)] [ROUNDS (300)]
"""
import sys, time, torch
torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 300
torch.manual_seed(0)
layers = [torch.nn.Linear(784, 256), torch.nn.Linear(256, 256), torch.nn.Linear(256, 10)]
x = torch.rand(64, 784); y = torch.arange(64) % 10
T = [[] for _ in range(5)]
for _ in range(rounds):
    h = x
    for i, l in enumerate(layers):
        t0 = time.perf_counter()
        h = l(h)
        if i < 2: h = torch.relu(h)
        T[i].append(time.perf_counter() - t0)
    t0 = time.perf_counter(); loss = torch.nn.functional.cross_entropy(h, y); T[3].append(time.perf_counter() - t0)
    for l in layers: l.zero_grad()
    t0 = time.perf_counter(); loss.backward(); T[4].append(time.perf_counter() - t0)
names = ["fc1 784-256 + relu", "fc2 256-256 + relu", "fc3 256-10", "cross-entropy forward", "backward (all)"]
med = lambda v: sorted(v)[len(v)//2] * 1e6
print(f"pytorch {torch.__version__}, {torch.get_num_threads()} threads, medians of {rounds} (us)")
for n, v in zip(names, T): print(f"{n:<24} {med(v):>10.1f}")
print(f"{'sum of medians':<24} {sum(med(v) for v in T):>10.1f}")
